//! `nexcage image|layer|cache ...` end to end through the real binary
//! (the store in a temp dir via NEXCAGE_STORAGE_PATH). The fixtures are
//! nexcage-image's own test fixtures.

#[path = "../crates/image/tests/common/mod.rs"]
mod common;

use std::path::Path;
use std::process::{Command, Output, Stdio};

use common::*;

/// Runs `nexcage ARGS` on the image store `store` with an empty config.
fn nx(store: &Path, args: &[&str]) -> Output {
    let cfg = store.with_extension("config.json");
    std::fs::write(&cfg, "{}").unwrap();
    Command::new(env!("CARGO_BIN_EXE_nexcage"))
        .arg("--root")
        .arg(store.with_extension("state"))
        .arg("--config")
        .arg(&cfg)
        .args(args)
        .env("NEXCAGE_STORAGE_PATH", store)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// The exit status of `nexcage ARGS`; what it printed goes to the test log.
fn code(store: &Path, args: &[&str]) -> i32 {
    let o = nx(store, args);
    eprintln!(
        "nexcage {args:?}: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    o.status.code().unwrap_or(-1)
}

#[test]
fn commands_end_to_end() {
    if !have("commands_end_to_end", &["busybox"]) {
        return;
    }
    let src = tempfile::tempdir().unwrap();
    let mut l = Layout::new(src.path());
    let b = l.image(
        &[busybox_layer(), tar_layer(&[E::File("f", 0o644, b"f")])],
        "amd64",
        serde_json::json!({}),
        true,
    );
    l.tag(&b, "localhost/cli:1");
    let sd = tempfile::tempdir().unwrap();
    let root = &sd.path().join("store");

    assert_eq!(code(root, &["image", "import", src.path().to_str().unwrap()]), 0);
    assert_eq!(code(root, &["image", "tag", "localhost/cli:1", "localhost/cli:alias"]), 0);
    assert_eq!(code(root, &["image", "list", "--format", "json", "--show-layers"]), 0);
    let list: serde_json::Value =
        serde_json::from_slice(&nx(root, &["image", "list", "--format", "json"]).stdout).unwrap();
    assert_eq!(list.as_array().map(Vec::len), Some(2), "{list}");

    // In use by a container (listed in <store>/in-use): refused unless forced.
    std::fs::write(root.join("in-use"), "localhost/cli:alias\n").unwrap();
    let o = nx(root, &["image", "remove", "localhost/cli:alias"]);
    assert_eq!(o.status.code(), Some(1));
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(e.contains("in use"), "{e}");
    assert_ne!(code(root, &["image", "rm", "localhost/cli:alias"]), 0);
    assert_eq!(code(root, &["image", "rm", "--force", "localhost/cli:alias"]), 0);
    std::fs::remove_file(root.join("in-use")).unwrap();

    // The other name keeps every blob.
    assert_eq!(code(root, &["layer", "validate", "localhost/cli:1"]), 0);
    assert_eq!(code(root, &["layer", "list", "--format", "json"]), 0);

    // `image inspect` (every form: no clap id clash with the global --config).
    for extra in [&[][..], &["--config"], &["--layers"], &["--config", "--layers"]] {
        let o = nx(root, &[&["image", "inspect", "localhost/cli:1"][..], extra].concat());
        assert_eq!(o.status.code(), Some(0), "{extra:?}: {}", String::from_utf8_lossy(&o.stderr));
        serde_json::from_slice::<serde_json::Value>(&o.stdout).unwrap();
    }
    let o = nx(root, &["image", "validate", "localhost/cli:1"]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success() && out.contains("2 diff_ids checked, 0 wrong; chain id sha256:"), "{out}");

    // Corrupt a layer in the store: validate reports it (exit 1), and its
    // diff_id no longer matches.
    let p = root.join("blobs/sha256").join(&b.layer_digests[1][7..]);
    let mut data = std::fs::read(&p).unwrap();
    data[0] ^= 1;
    std::fs::write(&p, data).unwrap();
    assert_eq!(code(root, &["layer", "validate"]), 1);
    let o = nx(root, &["image", "validate", "localhost/cli:1"]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(out.contains(&format!("CORRUPT {}", b.layer_digests[1])) && out.contains("1 wrong"), "{out}");

    // An unreferenced blob is collected by cache clear; --all empties the store.
    std::fs::write(root.join("blobs/sha256").join("a".repeat(64)), b"junk").unwrap();
    assert_eq!(code(root, &["cache", "stats", "--format", "json"]), 0);
    assert_eq!(code(root, &["cache", "clear"]), 0);
    assert!(!root.join("blobs/sha256").join("a".repeat(64)).exists());
    assert!(root.join("blobs/sha256").join(&b.config_digest[7..]).exists());
    assert_eq!(code(root, &["cache", "clear", "--all"]), 0);
    assert_eq!(std::fs::read_dir(root.join("blobs/sha256")).unwrap().count(), 0);
    assert_eq!(code(root, &["cache", "list"]), 0);
}

#[test]
fn template_writes_both_files_by_default() {
    if !have("template_writes_both_files_by_default", &["tar", "zstd"]) {
        return;
    }
    let src = tempfile::tempdir().unwrap();
    let mut l = Layout::new(src.path());
    let b = l.image(&[tar_layer(&[E::File("f", 0o644, b"f")])], "amd64", serde_json::json!({}), true);
    l.tag(&b, "localhost/src:1");
    let sd = tempfile::tempdir().unwrap();
    let root = &sd.path().join("store");
    let import = ["image", "import", src.path().to_str().unwrap(), "--name", "docker.io/library/nginx:latest"];
    assert_eq!(code(root, &import), 0);
    let out = tempfile::tempdir().unwrap();
    let od = out.path().to_str().unwrap();
    let o = nx(root, &["image", "template", "nginx", "--output-dir", od]);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let mut listing: Vec<String> = std::fs::read_dir(out.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    listing.sort();
    assert_eq!(listing, ["nginx_latest.tar", "nginx_latest.tar.zst"]);
    let printed = String::from_utf8_lossy(&o.stdout);
    assert_eq!(printed.lines().count(), 2, "{printed}");
}
