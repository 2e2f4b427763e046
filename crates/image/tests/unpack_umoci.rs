//! Our unpack against `umoci unpack` on the same layered image.

mod common;

use std::process::Command;

use common::*;
use nexcage_image::archive::import;
use nexcage_image::platform::Platform;
use nexcage_image::Store;

fn layers() -> Vec<Vec<u8>> {
    let l1 = {
        let mut v = busybox_layer();
        // Strip the two trailing zero blocks so more entries can follow.
        v.truncate(v.len() - 1024);
        let more = tar_layer(&[
            E::Dir("a", 0o755),
            E::File("a/keep", 0o644, b"keep"),
            E::File("a/gone", 0o644, b"gone"),
            E::Dir("opq", 0o750),
            E::File("opq/old1", 0o600, b"old1"),
            E::Dir("opq/sub", 0o755),
            E::File("opq/sub/old2", 0o644, b"old2"),
            E::Owned("owned", 0o640, 1000, 2000, b"owned"),
            E::Owned("suid", 0o4755, 0, 0, b"#!/bin/sh\n"),
            E::Fifo("fifo"),
            E::Char("null", 1, 3),
            E::Hard("hard", "a/keep"),
            E::Link("lnk", "a/keep"),
            E::Link("abs", "/etc/passwd"),
            E::Link("lnkdir", "/a"),
            E::Link("escape", "../../../.."),
            E::Dir("d", 0o700),
            E::File("d/inner", 0o644, b"inner"),
            E::File("modified", 0o644, b"v1"),
        ]);
        v.extend_from_slice(&more);
        v
    };
    let l2 = tar_layer(&[
        E::File("a/.wh.gone", 0o644, b""),
        // Entry of this layer before the opaque marker: must survive it.
        E::File("opq/new1", 0o644, b"new1"),
        E::File("opq/.wh..wh..opq", 0o644, b""),
        E::Dir("b", 0o711),
        E::Owned("b/file", 0o600, 5, 6, b"bfile"),
        E::File("modified", 0o755, b"v2"),
        E::File("d", 0o644, b"dir replaced by file"),
        E::Dir("lnk", 0o755),
    ]);
    let l3 = tar_layer(&[
        E::File("b/.wh.file", 0o644, b""),
        E::File(".wh.owned", 0o644, b""),
        E::Dir("opq/sub2", 0o755),
        E::File("opq/sub2/x", 0o644, b"x"),
        E::File("a/gone", 0o644, b"back again"),
        E::Owned("a/owned2", 0o640, 65534, 65534, b"nobody"),
        // Through symlinks: resolved inside the rootfs, as umoci does.
        E::File("lnkdir/through", 0o644, b"through"),
        E::File("escape/a/escaped", 0o644, b"escaped"),
    ]);
    vec![l1, l2, l3]
}

#[test]
fn unpack_matches_umoci() {
    if !have("unpack_matches_umoci", &["umoci", "busybox"]) {
        return;
    }
    let src = tempfile::tempdir().unwrap();
    let mut l = Layout::new(src.path());
    let b = l.image(&layers(), "amd64", serde_json::json!({}), true);
    l.tag(&b, "layered");

    let work = tempfile::tempdir().unwrap();
    let umoci_bundle = work.path().join("umoci");
    run(Command::new("umoci")
        .args(["unpack", "--image"])
        .arg(format!("{}:layered", src.path().display()))
        .arg(&umoci_bundle));

    let sd = tempfile::tempdir().unwrap();
    let store = Store::open(sd.path()).unwrap();
    import(
        &store,
        src.path(),
        Some("localhost/layered:1"),
        &Platform::default(),
    )
    .unwrap();
    let ours = work.path().join("ours");
    let img = store.resolve("localhost/layered:1").unwrap();
    let stats =
        nexcage_image::unpack::unpack_rootfs(&store, &img, &ours, &Default::default()).unwrap();
    assert_eq!(stats.whiteouts, 4);

    let a = tree(&umoci_bundle.join("rootfs"));
    let o = tree(&ours);
    let d = diff_trees(&a, &o);
    assert!(
        d.is_empty(),
        "differences (umoci vs nexcage):\n{}",
        d.join("\n")
    );

    // Spot checks that the layering did what the image says.
    assert!(
        !ours.join("a/gone").exists()
            || std::fs::read(ours.join("a/gone")).unwrap() == b"back again"
    );
    assert!(
        ours.join("opq/new1").exists()
            && !ours.join("opq/old1").exists()
            && !ours.join("opq/sub").exists()
    );
    assert!(!ours.join("owned").exists() && !ours.join("b/file").exists());
    assert!(ours.join("lnk").is_dir() && ours.join("d").is_file());
    assert!(a.len() > 20, "tree has {} entries", a.len());
    assert_eq!(std::fs::read(ours.join("a/through")).unwrap(), b"through");
    assert_eq!(std::fs::read(ours.join("a/escaped")).unwrap(), b"escaped");
}

#[test]
fn bundle_config_from_image() {
    if !have("bundle_config_from_image", &["busybox"]) {
        return;
    }
    let src = tempfile::tempdir().unwrap();
    let mut l = Layout::new(src.path());
    let extra = serde_json::json!({
        "Entrypoint": ["/bin/sh", "-c"], "Cmd": ["echo hi"], "Env": ["FOO=bar"],
        "WorkingDir": "/tmp", "User": "web", "ExposedPorts": {"80/tcp": {}}, "Volumes": {"/data": {}},
    });
    let b = l.image(&[busybox_layer()], "amd64", extra, false);
    l.tag(&b, "localhost/cfg:1");
    let sd = tempfile::tempdir().unwrap();
    let store = Store::open(sd.path()).unwrap();
    import(&store, src.path(), None, &Platform::default()).unwrap();
    let out = tempfile::tempdir().unwrap();
    let img = store.resolve("localhost/cfg:1").unwrap();
    nexcage_image::bundle::create_bundle(&store, &img, out.path(), &Default::default()).unwrap();
    let spec: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.path().join("config.json")).unwrap()).unwrap();
    let p = &spec["process"];
    assert_eq!(p["args"], serde_json::json!(["/bin/sh", "-c", "echo hi"]));
    assert_eq!(p["cwd"], "/tmp");
    assert_eq!(p["user"]["uid"], 33);
    assert_eq!(p["user"]["gid"], 44);
    let env: Vec<&str> = p["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap())
        .collect();
    assert!(
        env.contains(&"FOO=bar") && env.iter().any(|e| e.starts_with("PATH=")),
        "{env:?}"
    );
    assert_eq!(spec["root"]["path"], "rootfs");
    let ns: Vec<&str> = spec["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["type"].as_str().unwrap())
        .collect();
    for want in ["pid", "ipc", "uts", "mount", "network"] {
        assert!(ns.contains(&want), "{ns:?}");
    }
    assert!(spec["linux"]["maskedPaths"].as_array().unwrap().len() > 3);
    assert!(spec["mounts"]
        .as_array()
        .unwrap()
        .iter()
        .any(|m| m["destination"] == "/proc"));
    assert_eq!(
        spec["annotations"]["org.opencontainers.image.exposedPorts"],
        "80/tcp"
    );
    assert_eq!(
        spec["annotations"]["org.opencontainers.image.volumes"],
        "/data"
    );
    assert!(out.path().join("rootfs/bin/busybox").is_file());
    assert!(!ns.contains(&"cgroup"), "runc spec has no cgroup namespace");

    // The bundle really runs.
    if have("bundle_config_from_image (runc run)", &["runc"]) {
        let state = tempfile::tempdir().unwrap();
        let id = format!("nexcage-image-test-{}", std::process::id());
        let o = std::process::Command::new("runc")
            .arg("--root")
            .arg(state.path())
            .args(["run", "--bundle"])
            .arg(out.path())
            .arg(&id)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "runc run: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert_eq!(String::from_utf8_lossy(&o.stdout), "hi\n");
    }
}
