//! An OCI image layout made from a rootfs directory (one uncompressed
//! layer), for tests that import an image into nexcage's store.

use std::path::{Path, PathBuf};
use std::process::Command;

fn sha256(p: &Path) -> String {
    let o = Command::new("sha256sum").arg(p).output().expect("sha256sum");
    String::from_utf8_lossy(&o.stdout).split_whitespace().next().expect("sha256sum output").to_string()
}

/// Copies `file` into the layout as a blob; returns its descriptor.
fn blob(layout: &Path, media: &str, file: &Path) -> serde_json::Value {
    let d = sha256(file);
    let size = std::fs::metadata(file).expect("blob size").len();
    std::fs::copy(file, layout.join("blobs/sha256").join(&d)).expect("copy blob");
    serde_json::json!({"mediaType": media, "digest": format!("sha256:{d}"), "size": size})
}

/// `<dir>/layout`: `rootfs` as one layer, with the image config's `config`
/// object (Cmd, Env, ...) as given.
pub fn oci_layout(rootfs: &Path, dir: &Path, config: serde_json::Value) -> PathBuf {
    let layout = dir.join("layout");
    std::fs::create_dir_all(layout.join("blobs/sha256")).expect("layout dir");
    let tar = dir.join("layer.tar");
    let st = Command::new("tar").arg("-C").arg(rootfs).args(["-cf"]).arg(&tar).arg(".").status().expect("tar");
    assert!(st.success());
    let diff = format!("sha256:{}", sha256(&tar));
    let layer = blob(&layout, "application/vnd.oci.image.layer.v1.tar", &tar);
    let config = serde_json::json!({
        "architecture": "amd64", "os": "linux", "config": config,
        "rootfs": {"type": "layers", "diff_ids": [diff]},
    });
    let cfg_file = dir.join("image-config.json");
    std::fs::write(&cfg_file, serde_json::to_vec(&config).expect("json")).expect("write config");
    let cfg = blob(&layout, "application/vnd.oci.image.config.v1+json", &cfg_file);
    let manifest = serde_json::json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json", "config": cfg, "layers": [layer]});
    let man_file = dir.join("manifest.json");
    std::fs::write(&man_file, serde_json::to_vec(&manifest).expect("json")).expect("write manifest");
    let mut man = blob(&layout, "application/vnd.oci.image.manifest.v1+json", &man_file);
    man["annotations"] = serde_json::json!({"org.opencontainers.image.ref.name": "fixture"});
    let index = serde_json::json!({"schemaVersion": 2, "manifests": [man]});
    std::fs::write(layout.join("index.json"), serde_json::to_vec(&index).expect("json")).expect("write index");
    std::fs::write(layout.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).expect("write oci-layout");
    layout
}
