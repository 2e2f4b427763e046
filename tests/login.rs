//! `nexcage login` tries the credentials against a real registry with
//! htpasswd auth on 127.0.0.1 before storing them (as `podman login`):
//! a wrong password is an error and writes nothing; `logout` removes them.

#[path = "../crates/image/tests/common/mod.rs"]
mod common;

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use common::*;

fn nx(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_nexcage")).args(args).env_remove("REGISTRY_AUTH_FILE").output().unwrap()
}

#[test]
fn login_verifies_then_stores() {
    if !have("login_verifies_then_stores", &["docker-registry", "htpasswd"]) {
        return;
    }
    let reg = Registry::start(Some(("user", "pass")));
    let d = tempfile::tempdir().unwrap();
    let auth = d.path().join("auth.json");
    let a = auth.to_str().unwrap();
    let host = reg.host();

    let o = nx(&["login", "--authfile", a, "--tls-verify=false", "-u", "user", "-p", "wrong", &host]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains("401") || err.contains("rejected"), "{err}");
    assert!(!auth.exists(), "a rejected login wrote {}", auth.display());

    let o = nx(&["login", "--authfile", a, "--tls-verify=false", "-u", "user", "-p", "pass", &host]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(std::fs::metadata(&auth).unwrap().permissions().mode() & 0o777, 0o600);
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&auth).unwrap()).unwrap();
    assert_eq!(v["auths"][&host]["auth"], "dXNlcjpwYXNz");

    // Without --tls-verify=false a plain-http registry is refused, nothing changes.
    let o = nx(&["login", "--authfile", a, "-u", "user", "-p", "other", &host]);
    assert!(!o.status.success());
    let v2: serde_json::Value = serde_json::from_slice(&std::fs::read(&auth).unwrap()).unwrap();
    assert_eq!(v, v2);

    assert!(nx(&["logout", "--authfile", a, &host]).status.success());
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&auth).unwrap()).unwrap();
    assert!(v["auths"].as_object().unwrap().is_empty());
    assert!(!nx(&["logout", "--authfile", a, &host]).status.success());
}
