//! Proxmox errors become one clear error naming the call; nothing stays
//! registered after a failed create.

mod common;

use common::Double;
use nexcage_config::Secret;
use nexcage_pve::driver::api::{ApiDriver, Auth};
use nexcage_pve::driver::{allocate_and_create, ControlPlane, CreateRequest, NodeVersions, PveError};
use std::collections::BTreeMap;

fn req() -> CreateRequest {
    CreateRequest {
        ostemplate: "local:vztmpl/nexcage-empty.tar".into(),
        params: [("memory", "64"), ("rootfs", "local-zfs:1")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        raw_lxc: vec![],
        owner_line: None,
    }
}

fn nothing_registered(d: &Double, cp: &dyn ControlPlane) {
    assert!(cp.list().unwrap().is_empty(), "guest left registered");
    let vols = std::fs::read_dir(d.path().join("storage/local-zfs"))
        .unwrap()
        .count();
    assert_eq!(vols, 0, "volume left allocated");
}

#[test]
fn http_400_names_call_and_parameter() {
    let d = Double::start();
    let api = d.api();
    let vmid = allocate_and_create(&api, &req()).unwrap();
    let mut set = BTreeMap::new();
    set.insert("memory".to_string(), "8".to_string());
    let e = api.set_config(vmid, &set, &[]).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!("proxmox api PUT /nodes/pve/lxc/{vmid}/config: 400 Parameter verification failed: memory: value must have a minimum value of 16")
    );
    // The double logged the violation it rejected.
    assert!(d
        .violations()
        .contains("value must have a minimum value of 16"));

    let mut bad = req();
    bad.params.insert("memory".into(), "8".into());
    let e = allocate_and_create(&api, &bad).unwrap_err();
    assert_eq!(e.to_string(), "proxmox api POST /nodes/pve/lxc: 400 Parameter verification failed: memory: value must have a minimum value of 16");
    // pct reports the same through its exit status and stderr.
    let e = allocate_and_create(&d.pct(), &bad).unwrap_err();
    let s = e.to_string();
    assert!(
        s.starts_with("pct create")
            && s.contains("exit status 255")
            && s.contains("memory: value must have a minimum value of 16"),
        "{s}"
    );
}

#[test]
fn http_500_names_call() {
    let d = Double::start();
    let api = d.api();
    let e = api.start(4242).unwrap_err();
    assert!(matches!(e, PveError::Task { .. }), "{e:?}");
    d.set_faults("POST /nodes/{node}/lxc\n");
    let e = allocate_and_create(&api, &req()).unwrap_err();
    assert_eq!(
        e.to_string(),
        "proxmox api POST /nodes/pve/lxc: 500 injected fault for POST /nodes/{node}/lxc"
    );
    let e = allocate_and_create(&d.pct(), &req()).unwrap_err();
    assert!(e.to_string().contains("injected fault"), "{e}");
    nothing_registered(&d, &api);
    d.assert_no_violations();
}

#[test]
fn failed_task_is_clear_and_leaves_nothing() {
    let d = Double::start();
    d.set_faults("task POST /nodes/{node}/lxc\n");
    let api = d.api();
    let e = allocate_and_create(&api, &req()).unwrap_err();
    let s = e.to_string();
    assert!(s.starts_with("proxmox task UPID:pve:"), "{s}");
    assert!(
        s.contains("of POST /nodes/pve/lxc failed: unable to create CT 100 - injected task fault"),
        "{s}"
    );
    assert!(s.contains("task log tail: extracting archive"), "{s}");
    nothing_registered(&d, &api);

    let e = allocate_and_create(&d.pct(), &req()).unwrap_err();
    assert!(e.to_string().contains("injected task fault"), "{e}");
    nothing_registered(&d, &api);
    d.assert_no_violations();
}

#[test]
fn wrong_fingerprint_is_refused() {
    let d = Double::start();
    let mut o = d.api_opts(Double::token());
    o.fingerprint = Some([0xAB; 32]);
    let e = ApiDriver::new(o).unwrap().version().unwrap_err();
    assert!(matches!(e, PveError::Tls { .. }), "{e:?}");
    let s = e.to_string();
    assert!(
        s.starts_with("proxmox api GET /version: TLS:") && s.contains("fingerprint mismatch"),
        "{s}"
    );
}

#[test]
fn bad_token_and_bad_password_are_auth_errors() {
    let d = Double::start();
    let o = d.api_opts(Auth::Token {
        id: common::TOKEN_ID.into(),
        secret: Secret::new("wrong-secret"),
    });
    let e = ApiDriver::new(o).unwrap().next_vmid().unwrap_err();
    assert_eq!(e.to_string(), "proxmox api GET /cluster/nextid: 401 authentication failed (check the API token or user/password)");
    assert!(!e.to_string().contains("wrong-secret"));
    let o = d.api_opts(Auth::Password {
        username: "root@pam".into(),
        password: Secret::new("nope-nope"),
    });
    let e = ApiDriver::new(o).unwrap().list().unwrap_err();
    assert!(matches!(e, PveError::Auth { .. }), "{e:?}");
    assert!(e.to_string().contains("POST /access/ticket"), "{e}");
}

#[test]
fn unsupported_version_is_named() {
    // Create works from PVE 8.0 on (issue 12: PVE 8 and 9); older is named.
    let d = Double::start();
    std::fs::write(d.path().join("version"), "7.4.17").unwrap();
    let v = d.api().version().unwrap();
    let e = NodeVersions::from_manager(&v.version).check_supported().unwrap_err();
    assert_eq!(
        e.to_string(),
        "Proxmox VE 7.4.17 is not supported: nexcage needs pve-manager 8.0 or newer"
    );
    let v = d.pct().version().unwrap();
    assert_eq!(v.version, "7.4.17");
    std::fs::write(d.path().join("version"), "8.2.4").unwrap();
    let v = d.api().version().unwrap();
    NodeVersions::from_manager(&v.version).check_supported().unwrap();
}

#[test]
fn destroy_of_running_guest_is_refused() {
    let d = Double::start();
    let api = d.api();
    let vmid = allocate_and_create(&api, &req()).unwrap();
    api.start(vmid).unwrap();
    let e = api.destroy(vmid, true).unwrap_err();
    assert_eq!(e.to_string(), format!("proxmox api DELETE /nodes/pve/lxc/{vmid}: 500 unable to destroy CT {vmid} - container is running"));
    let e = api.start(vmid).unwrap_err();
    assert!(e.to_string().contains("already running"));
    d.assert_no_violations();
}
