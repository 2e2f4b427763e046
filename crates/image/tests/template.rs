//! `image template`: the OCI archive Proxmox VE >= 9.1 takes and the rootfs
//! `.tar.zst` older releases extract, checked with GNU tar and skopeo.

mod common;

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;

use common::*;
use nexcage_image::archive::import;
use nexcage_image::platform::Platform;
use nexcage_image::template::{self, TemplateError, TemplateFormat};
use nexcage_image::{Error, Store};

/// Three layers with whiteouts, owners (one beyond the octal uid field),
/// setuid, a fifo, a device, hard and symbolic links, and names and link
/// targets longer than the 100-byte tar fields.
fn layers() -> Vec<Vec<u8>> {
    let long_dir = format!("long/{}", "d".repeat(90));
    let long_file = format!("{long_dir}/{}", "f".repeat(60));
    let long_target = format!("/{}", "t".repeat(150));
    let l1 = tar_layer(&[
        E::Dir("bin", 0o755),
        E::File("bin/tool", 0o755, b"#!/bin/sh\necho tool\n"),
        E::Link("bin/sh", "tool"),
        E::Hard("bin/echo", "bin/tool"),
        E::Dir("a", 0o755),
        E::File("a/keep", 0o644, b"keep"),
        E::File("a/gone", 0o644, b"gone"),
        E::Dir("opq", 0o750),
        E::File("opq/old", 0o600, b"old"),
        E::Owned("owned", 0o640, 1000, 2000, b"owned"),
        E::Owned("bigid", 0o600, 3_000_000, 3_000_001, b"big ids"),
        E::Owned("suid", 0o4755, 0, 0, b"#!/bin/sh\n"),
        E::Fifo("fifo"),
        E::Char("null", 1, 3),
        E::Hard("hard", "a/keep"),
        E::Link("lnk", "a/keep"),
        E::Link("abs", "/etc/passwd"),
        E::Dir("tmp", 0o1777),
        E::Dir("long", 0o755),
        E::Dir(&long_dir, 0o700),
        E::File(&long_file, 0o644, b"long name"),
        E::Link("longlink", &long_target),
        E::Hard("hardlong", &long_file),
    ]);
    let l2 = tar_layer(&[
        E::File("a/.wh.gone", 0o644, b""),
        E::File("opq/.wh..wh..opq", 0o644, b""),
        E::File("opq/new", 0o644, b"new"),
        E::Dir("b", 0o711),
        E::Owned("b/file", 0o600, 5, 6, b"bfile"),
        E::File(".wh.owned", 0o644, b""),
    ]);
    vec![l1, l2, xattr_layer("xattr", 1_700_000_000)]
}

/// A store holding `image` (built from `layers`, with `config` merged into
/// the image config) as `docker.io/library/nginx:latest`.
fn store_with(layers: &[Vec<u8>], config: serde_json::Value) -> (tempfile::TempDir, Store) {
    let src = tempfile::tempdir().unwrap();
    let mut l = Layout::new(src.path());
    let b = l.image(layers, "amd64", config, true);
    l.tag(&b, "localhost/src:1");
    let sd = tempfile::tempdir().unwrap();
    let store = Store::open(sd.path()).unwrap();
    let name = Some("docker.io/library/nginx:latest");
    import(&store, src.path(), name, &Platform::default()).unwrap();
    (sd, store)
}

fn listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    v.sort();
    v
}

/// Paths grouped by inode (groups of two or more): hardlink identity.
fn link_groups(root: &Path) -> Vec<Vec<String>> {
    let mut by_ino: BTreeMap<u64, Vec<String>> = BTreeMap::new();
    for rel in tree(root).keys() {
        let md = std::fs::symlink_metadata(root.join(rel)).unwrap();
        if !md.is_dir() {
            by_ino.entry(md.ino()).or_default().push(rel.clone());
        }
    }
    let mut g: Vec<Vec<String>> = by_ino.into_values().filter(|v| v.len() > 1).collect();
    g.sort();
    g
}

#[test]
fn oci_archive_and_rootfs_tarball() {
    if !have("oci_archive_and_rootfs_tarball", &["tar", "zstd"]) {
        return;
    }
    let (_sd, store) = store_with(&layers(), serde_json::json!({}));
    let out = tempfile::tempdir().unwrap();
    // What `image template nginx --output-dir OUT` does (tests/image_cli.rs
    // runs the command itself).
    let nginx = store.resolve("nginx").unwrap();
    assert_eq!(
        template::write(&store, &nginx, out.path(), TemplateFormat::Both, None)
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        listing(out.path()),
        ["nginx_latest.tar", "nginx_latest.tar.zst"]
    );
    let oci = out.path().join("nginx_latest.tar");
    let zst = out.path().join("nginx_latest.tar.zst");
    for p in [&oci, &zst] {
        assert_eq!(
            std::fs::metadata(p).unwrap().mode() & 0o777,
            0o644,
            "{}",
            p.display()
        );
    }
    assert!(
        listing(&store.tmp_dir()).is_empty(),
        "temp dir left in the store"
    );

    // (a) What pct create looks for in an OCI archive.
    let names = run(Command::new("tar").arg("-tf").arg(&oci));
    let names: Vec<&str> = names.lines().collect();
    assert!(
        names.contains(&"oci-layout") && names.contains(&"index.json"),
        "{names:?}"
    );
    assert!(
        names.iter().any(|n| n.starts_with("blobs/sha256/")),
        "{names:?}"
    );
    if std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join("skopeo").is_file()))
    {
        run(Command::new("skopeo")
            .arg("inspect")
            .arg(format!("oci-archive:{}", oci.display())));
    } else {
        eprintln!("NOT RUN oci_archive_and_rootfs_tarball: `skopeo inspect oci-archive:` needs skopeo (apt-get install -y skopeo)");
    }

    // (b) The rootfs tarball, extracted the way older Proxmox releases do,
    // gives the tree unpack_rootfs gives.
    let listed = run(Command::new("tar").arg("--zstd").arg("-tvf").arg(&zst));
    let first: Vec<&str> = listed.lines().take(2).collect();
    assert!(first[0].ends_with(" ./"), "{first:?}");
    for line in listed.lines() {
        assert!(line.contains(" ./"), "entry without ./ prefix: {line}");
    }
    let work = tempfile::tempdir().unwrap();
    let extracted = work.path().join("extracted");
    std::fs::create_dir(&extracted).unwrap();
    let x = Command::new("tar")
        .args(["--zstd", "-xpf"])
        .arg(&zst)
        .args(["--numeric-owner", "--xattrs", "--xattrs-include=*", "-C"])
        .arg(&extracted)
        .output()
        .unwrap();
    let warnings = String::from_utf8_lossy(&x.stderr);
    assert!(
        x.status.success() && warnings.is_empty(),
        "tar -x: {warnings}"
    );
    let direct = work.path().join("direct");
    let img = store.resolve("docker.io/library/nginx:latest").unwrap();
    nexcage_image::unpack::unpack_rootfs(&store, &img, &direct, &Default::default()).unwrap();
    let (t, d) = (tree(&extracted), tree(&direct));
    let diff = diff_trees(&d, &t);
    assert!(
        diff.is_empty(),
        "unpack_rootfs vs template:\n{}",
        diff.join("\n")
    );
    assert!(t.len() > 20, "{t:#?}");
    assert_eq!(link_groups(&extracted), link_groups(&direct));
    assert_eq!(
        link_groups(&extracted).len(),
        3,
        "{:?}",
        link_groups(&extracted)
    );
    assert_eq!(
        std::fs::metadata(&extracted).unwrap().mode() & 0o7777,
        0o755
    );
    let big = std::fs::metadata(extracted.join("bigid")).unwrap();
    assert_eq!((big.uid(), big.gid()), (3_000_000, 3_000_001));
    let mut buf = [0u8; 16];
    match rustix::fs::getxattr(direct.join("xattr").as_path(), "user.nexcage", &mut buf[..]) {
        Ok(_) => {
            let n = rustix::fs::getxattr(
                extracted.join("xattr").as_path(),
                "user.nexcage",
                &mut buf[..],
            )
            .expect("xattr kept in the template");
            assert_eq!(&buf[..n], b"works");
        }
        Err(e) => eprintln!("NOT RUN xattr check: this file system refused user xattrs ({e})"),
    }
}

#[test]
fn control_characters_refused() {
    let extra = serde_json::json!({"Env": ["PATH=/bin", "BAD=a\u{1b}[31mred"]});
    let (_sd, store) = store_with(&layers(), extra);
    let img = store.resolve("nginx").unwrap();
    let out = tempfile::tempdir().unwrap();
    let err = template::write(&store, &img, out.path(), TemplateFormat::Both, None).unwrap_err();
    assert!(
        matches!(
            &err,
            Error::Template(TemplateError::ControlCharacters { field: "Env" })
        ),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains("'Env'") && msg.contains("Proxmox would refuse"),
        "{msg}"
    );
    assert!(listing(out.path()).is_empty(), "{:?}", listing(out.path()));
}

#[test]
fn existing_file_not_overwritten() {
    let (_sd, store) = store_with(&layers(), serde_json::json!({}));
    let img = store.resolve("nginx").unwrap();
    let out = tempfile::tempdir().unwrap();
    let zst = out.path().join("nginx_latest.tar.zst");
    std::fs::write(&zst, b"keep me").unwrap();
    let err = template::write(&store, &img, out.path(), TemplateFormat::Both, None).unwrap_err();
    assert!(
        matches!(&err, Error::Template(TemplateError::Exists(p)) if *p == zst),
        "{err:?}"
    );
    assert!(err.to_string().contains("already exists"), "{err}");
    assert_eq!(std::fs::read(&zst).unwrap(), b"keep me");
    // Checked before anything is written: no .tar either, no temp files.
    assert_eq!(listing(out.path()), ["nginx_latest.tar.zst"]);

    // --name picks another stem; --format oci writes only the archive.
    let written =
        template::write(&store, &img, out.path(), TemplateFormat::Oci, Some("web-1")).unwrap();
    assert_eq!(written, [out.path().join("web-1.tar")]);
    let err = template::write(&store, &img, out.path(), TemplateFormat::Oci, Some("web-1"));
    assert!(matches!(
        err,
        Err(Error::Template(TemplateError::Exists(_)))
    ));
    let bad = template::write(&store, &img, out.path(), TemplateFormat::Oci, Some("../x"));
    assert!(matches!(
        bad,
        Err(Error::Template(TemplateError::InvalidName(_)))
    ));
}
