//! Hostile layers: nothing may be written outside the target, and errors
//! name the offending entry.

mod common;

use std::path::Path;

use common::*;
use nexcage_image::unpack::{apply_layer, ApplyOptions, Root};
use tar::EntryType::{Directory, Link, Regular, Symlink};

struct Sandbox {
    dir: tempfile::TempDir,
}

impl Sandbox {
    fn new() -> Sandbox {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("root")).unwrap();
        std::fs::create_dir(dir.path().join("outside")).unwrap();
        std::fs::write(dir.path().join("outside/secret"), b"secret").unwrap();
        Sandbox { dir }
    }
    fn root(&self) -> std::path::PathBuf {
        self.dir.path().join("root")
    }
    fn apply(&self, tar: &[u8]) -> nexcage_image::Result<nexcage_image::unpack::LayerStats> {
        let r = Root::open(&self.root()).unwrap();
        apply_layer(&r, tar, &ApplyOptions::default())
    }
    /// The sandbox outside root/ still has exactly root/, outside/secret.
    fn assert_outside_untouched(&self) {
        let names: Vec<_> = std::fs::read_dir(self.dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 2, "unexpected files next to root: {names:?}");
        let o: Vec<_> = std::fs::read_dir(self.dir.path().join("outside"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(o, vec![std::ffi::OsString::from("secret")]);
        assert_eq!(
            std::fs::read(self.dir.path().join("outside/secret")).unwrap(),
            b"secret"
        );
        use std::os::unix::fs::MetadataExt;
        assert_eq!(
            std::fs::metadata(self.dir.path().join("outside/secret"))
                .unwrap()
                .nlink(),
            1
        );
    }
}

fn err_names(r: nexcage_image::Result<nexcage_image::unpack::LayerStats>, entry: &str) {
    let e = r.expect_err("layer must be refused").to_string();
    assert!(e.contains(entry), "error {e:?} should name {entry:?}");
}

#[test]
fn dotdot_entries_are_refused() {
    for name in [
        "../evil",
        "a/../../evil",
        "./../outside/secret",
        "x/../../../../tmp/evil",
    ] {
        let s = Sandbox::new();
        err_names(s.apply(&raw_tar(&[(name, Regular, "", b"pwned")])), name);
        s.assert_outside_untouched();
    }
}

#[test]
fn absolute_paths_land_inside() {
    let s = Sandbox::new();
    let abs = format!("{}/outside/abs", s.dir.path().display());
    s.apply(&raw_tar(&[(&abs, Regular, "", b"inside")]))
        .unwrap();
    s.assert_outside_untouched();
    let inside = s.root().join(abs.trim_start_matches('/'));
    assert_eq!(std::fs::read(inside).unwrap(), b"inside");
}

#[test]
fn symlink_escapes_are_resolved_within_the_root() {
    let s = Sandbox::new();
    let outside = format!("{}/outside", s.dir.path().display());
    s.apply(&raw_tar(&[
        ("toroot", Symlink, "/", b""),
        ("toout", Symlink, &outside, b""),
        ("up", Symlink, "../../../../..", b""),
        ("toroot/pwned1", Regular, "", b"1"),
        ("toout/secret", Regular, "", b"overwritten?"),
        ("up/pwned3", Regular, "", b"3"),
        ("up/deep/er/pwned4", Regular, "", b"4"),
        ("toout/.wh.secret", Regular, "", b""),
    ]))
    .unwrap();
    s.assert_outside_untouched();
    // Followed as a chroot would: everything ended up inside.
    assert_eq!(std::fs::read(s.root().join("pwned1")).unwrap(), b"1");
    assert_eq!(std::fs::read(s.root().join("pwned3")).unwrap(), b"3");
    assert_eq!(
        std::fs::read(s.root().join("deep/er/pwned4")).unwrap(),
        b"4"
    );
    // toout/secret went to root/<abs outside>/secret and its whiteout removed it there.
    assert!(!s
        .root()
        .join(outside.trim_start_matches('/'))
        .join("secret")
        .exists());
    assert!(s.root().join(outside.trim_start_matches('/')).is_dir());
}

#[test]
fn hardlinks_cannot_reach_outside() {
    let s = Sandbox::new();
    err_names(
        s.apply(&raw_tar(&[("hl", Link, "../outside/secret", b"")])),
        "hl",
    );
    s.assert_outside_untouched();

    let s = Sandbox::new();
    let outside = format!("{}/outside", s.dir.path().display());
    let r = s.apply(&raw_tar(&[
        ("esc", Symlink, &outside, b""),
        ("hl2", Link, "esc/secret", b""),
    ]));
    err_names(r, "hl2");
    s.assert_outside_untouched();

    let s = Sandbox::new();
    let r = s.apply(&raw_tar(&[(
        "hl3",
        Link,
        &format!("{outside}/secret"),
        b"",
    )]));
    err_names(r, "hl3");
    s.assert_outside_untouched();
}

#[test]
fn whiteouts_cannot_escape() {
    let s = Sandbox::new();
    err_names(
        s.apply(&raw_tar(&[("../outside/.wh.secret", Regular, "", b"")])),
        "../outside/.wh.secret",
    );
    s.assert_outside_untouched();

    let s = Sandbox::new();
    err_names(
        s.apply(&raw_tar(&[("a/.wh..", Regular, "", b"")])),
        "a/.wh..",
    );
    s.assert_outside_untouched();

    let s = Sandbox::new();
    let outside = format!("{}/outside", s.dir.path().display());
    s.apply(&raw_tar(&[
        ("esc", Symlink, &outside, b""),
        ("esc/.wh..wh..opq", Regular, "", b""),
        ("esc/.wh.secret", Regular, "", b""),
        ("up", Symlink, "../..", b""),
        ("up/.wh.outside", Regular, "", b""),
    ]))
    .unwrap();
    s.assert_outside_untouched();
}

#[test]
fn symlink_replacing_a_directory_does_not_redirect_later_entries() {
    // dir, then a symlink of the same name to the outside, then a file "through" it.
    let s = Sandbox::new();
    let outside = format!("{}/outside", s.dir.path().display());
    s.apply(&raw_tar(&[
        ("d", Directory, "", b""),
        ("d", Symlink, &outside, b""),
        ("d/secret", Regular, "", b"nope"),
    ]))
    .unwrap();
    s.assert_outside_untouched();
    assert!(Path::new(
        &s.root()
            .join(outside.trim_start_matches('/'))
            .join("secret")
    )
    .is_file());
}
