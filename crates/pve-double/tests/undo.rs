//! A failed create's cleanup removes only what that create made (issue 12:
//! "a create's undo only ever removes what that create itself made"). The
//! drivers remove a half-created guest (`lock: create`) at the VMID only
//! when its description carries the create's owner line; another
//! creator's guest under the same id is left as it was. Both drivers, with
//! injected failures (`DIR/faults`).

mod common;

use common::Double;
use nexcage_pve::driver::{ControlPlane, CreateRequest};

const OURS: &str = r#"nexcage-owner: {"id":"a","root":"/run/nexcage","host":"h","created":1}"#;

fn req() -> CreateRequest {
    CreateRequest {
        ostemplate: "local:vztmpl/nexcage-empty.tar".into(),
        params: [("memory", "64"), ("rootfs", "local-zfs:1"), ("description", &format!("nexcage oci-id: a\n{OURS}\n"))]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        raw_lxc: vec![],
        owner_line: Some(OURS.into()),
    }
}

/// Someone else's guest `vmid` that is still being created (`lock: create`),
/// as an operator's `pct create` leaves it mid-way.
fn half_created(d: &Double, vmid: u32, description: &str) -> String {
    let v = vmid.to_string();
    let (rc, _, err) = d.cli("pct", &["create", &v, "local:vztmpl/x.tar", "--rootfs", "local-zfs:1", "--description", description]);
    assert_eq!(rc, 0, "pct create: {err}");
    let (rc, _, err) = d.cli("pct", &["set", &v, "--lock", "create"]);
    assert_eq!(rc, 0, "pct set --lock: {err}");
    std::fs::read_to_string(d.path().join(format!("nodes/pve/lxc/{vmid}.conf"))).unwrap()
}

fn foreign_guest_survives(d: &Double, cp: &dyn ControlPlane) {
    let before = half_created(d, 100, "the operator's guest");
    // The create's request fails before the node answers for the guest.
    d.set_faults("POST /nodes/{node}/lxc\n");
    let e = cp.create(100, &req()).unwrap_err();
    assert!(e.to_string().contains("injected fault"), "{e}");
    let after = std::fs::read_to_string(d.path().join("nodes/pve/lxc/100.conf")).expect("the operator's guest was destroyed");
    assert_eq!(after, before, "the operator's guest changed");
    assert!(d.path().join("storage/local-zfs/subvol-100-disk-0").exists(), "the operator's volume was freed");
    d.set_faults("");
    let (rc, _, err) = d.cli("pct", &["unlock", "100"]);
    assert_eq!(rc, 0, "{err}");
    cp.destroy(100, true).unwrap();
}

fn own_half_created_guest_goes(d: &Double, cp: &dyn ControlPlane) {
    // A guest left under `lock: create` with this create's owner line (a
    // create whose worker died) is this create's: removed.
    half_created(d, 101, &format!("nexcage oci-id: a\n{OURS}\n"));
    d.set_faults("POST /nodes/{node}/lxc\n");
    assert!(cp.create(101, &req()).is_err());
    assert!(!d.conf_exists(101), "the create's own half-created guest stayed");
    d.set_faults("");
}

#[test]
fn api_cleanup_touches_only_its_own_guest() {
    let d = Double::start();
    let api = d.api();
    foreign_guest_survives(&d, &api);
    own_half_created_guest_goes(&d, &api);
    d.assert_no_violations();
}

#[test]
fn pct_cleanup_touches_only_its_own_guest() {
    let d = Double::start();
    let pct = d.pct();
    foreign_guest_survives(&d, &pct);
    own_half_created_guest_goes(&d, &pct);
    d.assert_no_violations();
}
