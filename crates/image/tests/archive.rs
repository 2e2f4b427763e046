//! Import/export round trips with archives made and consumed by podman and skopeo.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;
use nexcage_image::archive::{export, import, ArchiveFormat};
use nexcage_image::platform::Platform;
use nexcage_image::Store;

struct Podman {
    dir: tempfile::TempDir,
}

impl Podman {
    fn new() -> Podman {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("containers.conf"),
            "[containers]\ndefault_ulimits = [\"nofile=1024:1024\",\"nproc=1024:1024\"]\n",
        )
        .unwrap();
        Podman { dir }
    }
    fn cmd(&self) -> Command {
        let mut c = Command::new("podman");
        c.env("CONTAINERS_CONF", self.dir.path().join("containers.conf"));
        c.arg("--root").arg(self.dir.path().join("root"));
        c.arg("--runroot").arg(self.dir.path().join("run"));
        c.arg("--storage-driver").arg("vfs");
        c
    }
}

/// Everything the digests of an image in a store are: manifest, config, layers.
fn digests(store: &Store, name: &str) -> (String, String, Vec<String>) {
    let e = store.resolve(name).unwrap();
    let m = store.image_manifest(&e).unwrap();
    (
        e.descriptor.digest().to_string(),
        m.config().digest().to_string(),
        m.layers().iter().map(|l| l.digest().to_string()).collect(),
    )
}

fn skopeo_layers(transport: &str, file: &Path) -> Vec<String> {
    let out =
        run(Command::new("skopeo").args(["inspect", &format!("{transport}:{}", file.display())]));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    v["Layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn podman_archives_round_trip() {
    if !have(
        "podman_archives_round_trip",
        &["podman", "skopeo", "busybox"],
    ) {
        return;
    }
    let pm = Podman::new();
    let work = tempfile::tempdir().unwrap();
    let rootfs = work.path().join("rootfs");
    std::fs::create_dir_all(rootfs.join("bin")).unwrap();
    std::fs::copy("/bin/busybox", rootfs.join("bin/busybox")).unwrap();
    std::os::unix::fs::symlink("busybox", rootfs.join("bin/sh")).unwrap();
    let tarball = work.path().join("rootfs.tar");
    run(Command::new("tar")
        .arg("-C")
        .arg(&rootfs)
        .arg("-cf")
        .arg(&tarball)
        .arg("."));
    run(pm
        .cmd()
        .args(["import", "--quiet"])
        .arg(&tarball)
        .arg("localhost/rt:1"));

    for (fmt, ours) in [
        ("oci-archive", ArchiveFormat::OciArchive),
        ("docker-archive", ArchiveFormat::DockerArchive),
    ] {
        let saved = work.path().join(format!("saved-{fmt}.tar"));
        run(pm
            .cmd()
            .args(["save", "--quiet", "--format", fmt, "-o"])
            .arg(&saved)
            .arg("localhost/rt:1"));

        let s1 = tempfile::tempdir().unwrap();
        let st1 = Store::open(s1.path()).unwrap();
        let imported = import(&st1, &saved, None, &Platform::default()).unwrap();
        assert_eq!(imported.len(), 1);
        assert_eq!(imported[0].name, "localhost/rt:1");
        let d1 = digests(&st1, "localhost/rt:1");
        if fmt == "oci-archive" {
            // The manifest is kept byte for byte.
            let idx: serde_json::Value = serde_json::from_str(&run(Command::new("tar")
                .arg("xOf")
                .arg(&saved)
                .arg("index.json")))
            .unwrap();
            assert_eq!(d1.0, idx["manifests"][0]["digest"].as_str().unwrap());
        }

        // Export and re-import into a fresh store: identical digests.
        let out = work.path().join(format!("exported-{fmt}.tar"));
        export(&st1, &st1.resolve("localhost/rt:1").unwrap(), &out, ours).unwrap();
        let s2 = tempfile::tempdir().unwrap();
        let st2 = Store::open(s2.path()).unwrap();
        import(&st2, &out, None, &Platform::default()).unwrap();
        assert_eq!(
            digests(&st2, "localhost/rt:1"),
            d1,
            "{fmt}: re-import keeps digests"
        );

        // Other tools read what we wrote.
        assert_eq!(
            skopeo_layers(fmt, &out),
            d1.2,
            "{fmt}: skopeo sees our layers"
        );
        let pm2 = Podman::new();
        run(pm2.cmd().args(["load", "--quiet", "-i"]).arg(&out));
        let ids = run(pm2.cmd().args([
            "images",
            "--no-trunc",
            "--format",
            "{{.ID}} {{.Repository}}:{{.Tag}}",
        ]));
        let cfg_hex = d1.1.strip_prefix("sha256:").unwrap();
        assert!(
            ids.contains(cfg_hex) && ids.contains("localhost/rt:1"),
            "{fmt}: podman loaded {ids}"
        );
        let out =
            run(pm2
                .cmd()
                .args(["image", "inspect", "--format", "{{.Id}}", "localhost/rt:1"]));
        assert!(out.contains(cfg_hex));

        // The imported image unpacks.
        let r = tempfile::tempdir().unwrap();
        nexcage_image::unpack::unpack_rootfs(
            &st1,
            &st1.resolve("localhost/rt:1").unwrap(),
            r.path(),
            &Default::default(),
        )
        .unwrap();
        assert!(r.path().join("bin/busybox").is_file());
        assert_eq!(
            std::fs::read_link(r.path().join("bin/sh")).unwrap(),
            Path::new("busybox")
        );
    }
}

#[test]
fn layout_dir_import_and_gzip_docker_export() {
    if !have(
        "layout_dir_import_and_gzip_docker_export",
        &["skopeo", "podman", "busybox"],
    ) {
        return;
    }
    let src = tempfile::tempdir().unwrap();
    let mut l = Layout::new(src.path());
    let b = l.image(
        &[busybox_layer(), tar_layer(&[E::File("x", 0o644, b"x")])],
        "amd64",
        serde_json::json!({}),
        true,
    );
    l.tag(&b, "localhost/gz:2");

    let s = tempfile::tempdir().unwrap();
    let st = Store::open(s.path()).unwrap();
    let i = import(&st, src.path(), None, &Platform::default()).unwrap();
    assert_eq!(i[0].manifest_digest, b.manifest_digest);
    // --name overrides.
    import(
        &st,
        src.path(),
        Some("example.org/renamed:v9"),
        &Platform::default(),
    )
    .unwrap();
    assert!(st.resolve("example.org/renamed:v9").is_ok());

    // docker-archive layers are written uncompressed: their digests are the diff IDs.
    let out = s.path().join("d.tar");
    export(
        &st,
        &st.resolve("localhost/gz:2").unwrap(),
        &out,
        ArchiveFormat::DockerArchive,
    )
    .unwrap();
    let cfg = st
        .config(
            &st.image_manifest(&st.resolve("localhost/gz:2").unwrap())
                .unwrap(),
        )
        .unwrap();
    let diff_ids: Vec<String> = cfg.rootfs().diff_ids().clone();
    assert_eq!(skopeo_layers("docker-archive", &out), diff_ids);
    let pm = Podman::new();
    run(pm.cmd().args(["load", "--quiet", "-i"]).arg(&out));
}

/// A docker-archive as `docker save` writes it when two layers are equal
/// (a symlink to the first copy), and a hostile one whose layer links out.
#[test]
fn docker_archive_symlinked_layers() {
    let layer = tar_layer(&[E::File("same", 0o644, b"same")]);
    let cfg = serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64", "os": "linux", "config": {},
        "rootfs": {"type": "layers", "diff_ids": [sha(&layer), sha(&layer)]}
    }))
    .unwrap();
    let build = |link_target: &str| {
        let mut b = tar::Builder::new(Vec::new());
        let mut add = |p: &str, d: &[u8]| {
            let mut h = tar::Header::new_ustar();
            h.set_size(d.len() as u64);
            h.set_mode(0o644);
            h.set_entry_type(tar::EntryType::Regular);
            b.append_data(&mut h, p, d).unwrap();
        };
        add("cfg.json", &cfg);
        add("a/layer.tar", &layer);
        add(
            "manifest.json",
            br#"[{"Config":"cfg.json","RepoTags":["shared:1"],"Layers":["a/layer.tar","b/layer.tar"]}]"#,
        );
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_mode(0o777);
        h.set_size(0);
        b.append_link(&mut h, "b/layer.tar", link_target).unwrap();
        b.into_inner().unwrap()
    };
    let d = tempfile::tempdir().unwrap();
    let good = d.path().join("good.tar");
    std::fs::write(&good, build("../a/layer.tar")).unwrap();
    let st = Store::open(&d.path().join("s")).unwrap();
    let i = import(&st, &good, None, &Platform::default()).unwrap();
    assert_eq!(i[0].name, "docker.io/library/shared:1");
    let (_, _, layers) = digests(&st, "shared:1");
    assert_eq!(layers, vec![sha(&layer), sha(&layer)]);

    // Linking to a host file must not pull it into the store.
    let bad = d.path().join("bad.tar");
    std::fs::write(&bad, build("/etc/hostname")).unwrap();
    let st2 = Store::open(&d.path().join("s2")).unwrap();
    assert!(import(&st2, &bad, None, &Platform::default()).is_err());
    assert!(st2.images().unwrap().is_empty());
}
