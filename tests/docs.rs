//! The man page and completions are generated from the clap definition;
//! the committed man page must be that output (regenerate with
//! `nexcage man > man/nexcage.8`).

mod support;
use support::*;
use std::path::Path;

#[test]
fn man_page_is_current_and_complete() {
    let o = nx(Path::new("/nonexistent"), &["man"]);
    assert!(o.status.success());
    let generated = String::from_utf8(o.stdout).unwrap();
    let committed = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/man/nexcage.8")).unwrap();
    assert!(generated == committed, "man/nexcage.8 is stale: run `nexcage man > man/nexcage.8`");
    for cmd in ["create", "start", "state", "kill", "delete", "run", "exec", "ps", "list", "pause", "resume", "events", "update", "features", "spec", "image pull"] {
        assert!(committed.contains(&format!(".SS \"nexcage {cmd}\"")), "man page lacks {cmd}");
    }
    for flag in ["\\-\\-pid\\-file", "\\-\\-console\\-socket", "\\-\\-preserve\\-fds", "\\-\\-log\\-format", "\\-\\-systemd\\-cgroup"] {
        assert!(committed.contains(flag), "man page lacks {flag}");
    }
}

#[test]
fn completions_generate() {
    for shell in ["bash", "zsh", "fish"] {
        let o = nx(Path::new("/nonexistent"), &["completion", shell]);
        assert!(o.status.success(), "{shell}");
        let text = String::from_utf8_lossy(&o.stdout);
        assert!(text.contains("pid-file") && text.contains("console-socket"), "{shell} completion lacks flags");
    }
}

#[test]
fn features_and_spec() {
    let s = Scratch::new("features");
    let o = nx(s.path(), &["features"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["ociVersionMin"], "1.0.0");
    assert!(v["linux"]["namespaces"].as_array().unwrap().iter().any(|n| n == "pid"));
    assert_eq!(v["linux"]["seccomp"]["enabled"], true);
    let o = nx(s.path(), &["spec", "--bundle", s.path().to_str().unwrap()]);
    assert!(o.status.success());
    let spec: serde_json::Value = serde_json::from_slice(&std::fs::read(s.path().join("config.json")).unwrap()).unwrap();
    assert_eq!(spec["root"]["path"], "rootfs");
    let again = nx(s.path(), &["spec", "--bundle", s.path().to_str().unwrap()]);
    assert!(!again.status.success(), "spec refuses to overwrite");
}
