//! The double itself is strict: malformed requests are rejected like
//! Proxmox rejects them, and logged in violations.log.

mod common;

use common::Double;
use nexcage_pve::driver::{ControlPlane, PveError};
use std::collections::BTreeMap;

fn p(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn create_params(extra: &[(&str, &str)]) -> BTreeMap<String, String> {
    let mut m = p(&[
        ("vmid", "150"),
        ("ostemplate", "local:vztmpl/x.tar"),
        ("rootfs", "local-zfs:1"),
    ]);
    m.extend(p(extra));
    m
}

type Case = (
    &'static [(&'static str, &'static str)],
    u16,
    &'static str,
    &'static str,
);

#[test]
fn rejects_malformed_api_requests() {
    let d = Double::start();
    let api = d.api();
    let cases: &[Case] = &[
        (
            &[("memory", "8")],
            400,
            "memory",
            "value must have a minimum value of 16",
        ),
        (
            &[("bogus", "1")],
            400,
            "bogus",
            "property is not defined in schema",
        ),
        (
            &[("net0", "name=eth0,bridgee=vmbr0")],
            400,
            "net0",
            "invalid key in comma-separated list property: bridgee",
        ),
        (
            &[("net0", "name=eth0,tag=99999")],
            400,
            "net0.tag",
            "maximum value of 4094",
        ),
        (
            &[("lxc.init.cmd", "/bin/sh")],
            400,
            "lxc.init.cmd",
            "property is not defined in schema",
        ),
        (&[("vmid", "99")], 400, "vmid", "minimum value of 100"),
        (
            &[("vmid", "abc")],
            400,
            "vmid",
            "type check ('integer') failed",
        ),
    ];
    for (extra, status, key, msg) in cases {
        let e = api
            .call("POST", "/nodes/pve/lxc", &create_params(extra))
            .unwrap_err();
        match e {
            PveError::Api {
                status: s, errors, ..
            } => {
                assert_eq!(s, *status, "{extra:?}");
                assert!(
                    errors.get(*key).is_some_and(|m| m.contains(msg)),
                    "{extra:?}: {errors:?}"
                );
            }
            other => panic!("{extra:?}: {other}"),
        }
    }
    let log = d.violations();
    assert_eq!(log.lines().count(), cases.len(), "{log}");
    assert!(api.list().unwrap().is_empty());
}

#[test]
fn token_may_not_bind_mount_or_pass_devices() {
    let d = Double::start();
    let api = d.api();
    for (k, v, msg) in [
        (
            "mp0",
            "/srv,mp=/srv",
            "mount point type bind is only allowed for root@pam",
        ),
        (
            "mp1",
            "/dev/sdb,mp=/disk",
            "mount point type device is only allowed for root@pam",
        ),
        (
            "dev0",
            "/dev/ttyUSB0",
            "device passthrough is only allowed for root@pam",
        ),
        ("features", "keyctl=1", "only allowed for root@pam"),
    ] {
        let e = api
            .call("POST", "/nodes/pve/lxc", &create_params(&[(k, v)]))
            .unwrap_err();
        assert!(
            matches!(&e, PveError::Api { status: 403, message, .. } if message.contains(msg)),
            "{k}: {e}"
        );
    }
    d.assert_no_violations();
}

#[test]
fn unauthenticated_gets_401_and_unknown_paths_501() {
    let d = Double::start();
    let o = d.api_opts(nexcage_pve::driver::api::Auth::Token {
        id: "nobody@pve!x".into(),
        secret: nexcage_config::Secret::new("s"),
    });
    let e = nexcage_pve::driver::api::ApiDriver::new(o)
        .unwrap()
        .call("GET", "/version", &BTreeMap::new())
        .unwrap_err();
    assert!(matches!(e, PveError::Auth { status: 401, .. }));
    let e = d
        .api()
        .call("GET", "/nodes/pve/qemu", &BTreeMap::new())
        .unwrap_err();
    assert!(matches!(e, PveError::Api { status: 501, .. }), "{e}");
    assert!(d.violations().contains("not implemented"));
}

#[test]
fn task_endpoints_and_upids() {
    let d = Double::start();
    let api = d.api();
    let upid = api
        .call("POST", "/nodes/pve/lxc", &create_params(&[]))
        .unwrap();
    let upid = upid.as_str().unwrap().to_string();
    let u = nexcage_pve::driver::Upid::parse(&upid).unwrap();
    assert_eq!(
        (
            u.node.as_str(),
            u.kind.as_str(),
            u.id.as_str(),
            u.user.as_str()
        ),
        ("pve", "vzcreate", "150", "root@pam!nexcage")
    );
    let enc: String = form_urlencoded::byte_serialize(upid.as_bytes()).collect();
    let st = api
        .call(
            "GET",
            &format!("/nodes/pve/tasks/{enc}/status"),
            &BTreeMap::new(),
        )
        .unwrap();
    assert_eq!(st["status"], "stopped");
    assert_eq!(st["exitstatus"], "OK");
    assert_eq!(st["user"], "root@pam");
    assert_eq!(st["tokenid"], "nexcage");
    let log = api
        .call(
            "GET",
            &format!("/nodes/pve/tasks/{enc}/log"),
            &p(&[("start", "0"), ("limit", "50")]),
        )
        .unwrap();
    assert_eq!(log.as_array().unwrap().last().unwrap()["t"], "TASK OK");
    let e = api
        .call("GET", "/nodes/pve/tasks/garbage/status", &BTreeMap::new())
        .unwrap_err();
    assert!(e.to_string().contains("unable to parse worker upid"), "{e}");
    // nextid with an explicit, taken vmid.
    let e = api
        .call("GET", "/cluster/nextid", &p(&[("vmid", "150")]))
        .unwrap_err();
    assert!(e.to_string().contains("VM 150 already exists"), "{e}");
    d.assert_no_violations();
}

fn pct(d: &Double, args: &[&str]) -> (i32, String, String) {
    d.cli("pct", args)
}

#[test]
fn pct_cli_formats() {
    let d = Double::start();
    let (code, out, err) = pct(&d, &["list"]);
    assert_eq!(
        (code, out.as_str(), err.as_str()),
        (0, "", ""),
        "empty list prints nothing"
    );
    let (code, _, err) = pct(
        &d,
        &["create", "120", "local:vztmpl/x.tar", "--memory", "8"],
    );
    assert_eq!(code, 255);
    assert_eq!(err, "400 Parameter verification failed.\nmemory: value must have a minimum value of 16\npct create <vmid> <ostemplate> [OPTIONS]\n");
    let (code, _, err) = pct(
        &d,
        &[
            "create",
            "120",
            "local:vztmpl/x.tar",
            "--memory",
            "64",
            "--hostname",
            "web",
            "--rootfs",
            "local-zfs:1",
            "--description",
            "a: b",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = pct(&d, &["create", "120", "local:vztmpl/x.tar"]);
    assert_eq!(
        (code, err.trim()),
        (
            255,
            "unable to create CT 120 - CT 120 already exists on node 'pve'"
        )
    );
    let (_, out, _) = pct(&d, &["list"]);
    assert_eq!(
        out,
        format!(
            "{:<10} {:<10} {:<12} {:<20}\n{:<10} {:<10} {:<12} {:<20}\n",
            "VMID", "Status", "Lock", "Name", "120", "stopped", "", "web"
        )
    );
    let (_, out, _) = pct(&d, &["status", "120"]);
    assert_eq!(out, "status: stopped\n");
    let (_, out, _) = pct(&d, &["config", "120"]);
    // `#` lines read back with a trailing newline, as in Proxmox.
    assert!(
        out.starts_with("arch: amd64\ndescription: a%3A b%0A\nhostname: web\nmemory: 64\n"),
        "{out}"
    );
    let (code, _, err) = pct(&d, &["stop", "120"]);
    assert_eq!((code, err.trim()), (255, "CT 120 not running"));
    let (code, _, _) = pct(&d, &["destroy", "120", "--purge"]);
    assert_eq!(code, 0);
    let (code, _, err) = pct(&d, &["config", "120"]);
    assert_eq!(
        (code, err.trim()),
        (
            255,
            "Configuration file 'nodes/pve/lxc/120.conf' does not exist"
        )
    );
    // The malformed create above is the only violation.
    assert_eq!(d.violations().lines().count(), 1);
}
