//! Both drivers against the double: create, configure, list, read,
//! start/stop, volumes, destroy; every request valid per the schema.

mod common;

use common::Double;
use nexcage_pve::driver::{
    allocate_and_create, ControlPlane, CreateRequest, GuestStatus, NewVolume, NodeVersions,
};
use nexcage_pve::mapping::{map_spec, MapOptions};
use oci_spec::runtime::Spec;
use std::collections::BTreeMap;

fn request(raw: bool) -> (CreateRequest, Vec<(String, String)>) {
    let mut spec = Spec::default();
    let mut process = spec.process().clone().unwrap();
    process.set_args(Some(vec![
        "/bin/sh".into(),
        "-c".into(),
        "echo 'hello world'".into(),
    ]));
    process.set_env(Some(vec![
        "PATH=/usr/bin:/bin".into(),
        "GREETING=hi there".into(),
    ]));
    spec.set_process(Some(process));
    let mut o = MapOptions::new(100, "ctr-drivers", "local-zfs", 2048);
    o.bridge = Some("vmbr0".into());
    let cfg = map_spec(&spec, &o).unwrap();
    let req = CreateRequest {
        ostemplate: "local:vztmpl/nexcage-empty.tar".into(),
        params: cfg.api_params(),
        raw_lxc: if raw { cfg.lxc.clone() } else { Vec::new() },
        owner_line: None,
    };
    (req, cfg.lxc)
}

fn lifecycle(d: &Double, cp: &dyn ControlPlane, raw: bool) {
    NodeVersions::from_manager(&cp.version().unwrap().version).check_supported().unwrap();
    let before = cp.calls();
    let (req, lxc) = request(raw);
    let vmid = allocate_and_create(cp, &req).unwrap();
    let per_create = cp.calls() - before;
    eprintln!("control-plane calls per create: {per_create}");
    assert!(per_create >= 2);
    assert!(d.conf_exists(vmid));

    let list = cp.list().unwrap();
    let g = list.iter().find(|g| g.vmid == vmid).expect("listed");
    assert_eq!(g.status, GuestStatus::Stopped);
    assert_eq!(g.lock, None);

    let cfg = cp.config(vmid).unwrap();
    assert_eq!(cfg.keys["memory"], "2048");
    assert_eq!(cfg.keys["ostype"], "unmanaged");
    assert_eq!(cfg.keys["tags"], "nexcage");
    assert!(
        cfg.keys["rootfs"].starts_with("local-zfs:subvol-"),
        "{}",
        cfg.keys["rootfs"]
    );
    assert!(cfg.keys["description"].contains("nexcage oci-id: ctr-drivers"));
    assert_eq!(cfg.keys["env"], "PATH=/usr/bin:/bin\0GREETING=hi there");
    assert_eq!(
        cfg.keys["entrypoint"],
        "/bin/sh -c 'echo '\"'\"'hello world'\"'\"''"
    );
    if raw {
        assert_eq!(cfg.lxc, lxc, "raw lxc keys persisted in order");
    } else {
        assert!(cfg.lxc.is_empty());
    }
    // The file is what write_pct_config would write.
    let text =
        std::fs::read_to_string(d.path().join(format!("nodes/pve/lxc/{vmid}.conf"))).unwrap();
    assert!(
        text.starts_with("#nexcage oci-id%3A ctr-drivers\n"),
        "{text}"
    );
    assert!(text.contains("lxc.environment.runtime: GREETING=hi there\n"));

    let mut set = BTreeMap::new();
    set.insert("memory".to_string(), "256".to_string());
    set.insert("cores".to_string(), "2".to_string());
    cp.set_config(vmid, &set, &["cmode".to_string()]).unwrap();
    let cfg = cp.config(vmid).unwrap();
    assert_eq!(
        (cfg.keys["memory"].as_str(), cfg.keys["cores"].as_str()),
        ("256", "2")
    );
    assert!(!cfg.keys.contains_key("cmode"));

    assert_eq!(cp.status(vmid).unwrap(), GuestStatus::Stopped);
    cp.start(vmid).unwrap();
    assert_eq!(cp.status(vmid).unwrap(), GuestStatus::Running);
    cp.stop(vmid).unwrap();
    assert_eq!(cp.status(vmid).unwrap(), GuestStatus::Stopped);

    let vol = cp
        .alloc_volume(&NewVolume {
            storage: "local-zfs",
            vmid,
            filename: &format!("subvol-{vmid}-disk-5"),
            size: "1G",
        })
        .unwrap();
    assert_eq!(vol, format!("local-zfs:subvol-{vmid}-disk-5"));
    assert!(d
        .path()
        .join(format!("storage/local-zfs/subvol-{vmid}-disk-5"))
        .exists());
    cp.free_volume("local-zfs", &vol).unwrap();
    assert!(!d
        .path()
        .join(format!("storage/local-zfs/subvol-{vmid}-disk-5"))
        .exists());

    cp.destroy(vmid, true).unwrap();
    assert!(!cp.list().unwrap().iter().any(|g| g.vmid == vmid));
    assert!(!d.conf_exists(vmid));
    assert!(
        !d.path()
            .join(format!("storage/local-zfs/subvol-{vmid}-disk-0"))
            .exists(),
        "rootfs volume freed"
    );
    let e = cp.config(vmid).unwrap_err();
    assert!(e.is_not_found(), "{e}");
}

#[test]
fn api_driver_lifecycle() {
    let d = Double::start();
    lifecycle(&d, &d.api(), false);
    // Raw lxc keys cannot go through the API: refused before any request.
    let (req, _) = request(true);
    let e = d.api().create(999, &req).unwrap_err();
    assert!(
        e.to_string()
            .contains("raw lxc.* keys cannot be set through the API"),
        "{e}"
    );
    d.assert_no_violations();
}

#[test]
fn api_driver_with_ticket_auth() {
    let d = Double::start();
    lifecycle(&d, &d.api_root_ticket(), false);
    d.assert_no_violations();
}

#[test]
fn pct_driver_lifecycle() {
    let d = Double::start();
    lifecycle(&d, &d.pct(), true);
    d.assert_no_violations();
}

#[test]
fn bind_mounts_need_root_pam() {
    let d = Double::start();
    let (mut req, _) = request(false);
    req.params
        .insert("mp0".into(), "/srv/data,mp=/data,ro=1".into());
    // An API token is never root@pam.
    let e = allocate_and_create(&d.api(), &req).unwrap_err();
    assert!(
        e.to_string().contains(
            "403 Permission check failed (mount point type bind is only allowed for root@pam)"
        ),
        "{e}"
    );
    assert!(d.api().list().unwrap().is_empty(), "nothing registered");
    // A root@pam ticket and the CLI may.
    let vmid = allocate_and_create(&d.api_root_ticket(), &req).unwrap();
    assert_eq!(
        d.api().config(vmid).unwrap().keys["mp0"],
        "/srv/data,mp=/data,ro=1"
    );
    let vmid2 = allocate_and_create(&d.pct(), &req).unwrap();
    assert_ne!(vmid, vmid2);
    d.assert_no_violations();
}

#[test]
fn api_driver_waits_for_slow_tasks() {
    let d = Double::start_with_env(&[("PVE_DOUBLE_TASK_DELAY_MS", "400")]);
    let api = d.api();
    let t = std::time::Instant::now();
    let (req, _) = request(false);
    let vmid = allocate_and_create(&api, &req).unwrap();
    assert!(
        t.elapsed() >= std::time::Duration::from_millis(400),
        "returned before the task stopped"
    );
    // nextid + create + several status polls.
    assert!(api.calls() > 3, "{}", api.calls());
    api.destroy(vmid, true).unwrap();
    d.assert_no_violations();
}

/// A body and an answer far larger than the API connection's 16 KiB
/// buffers stream through them: a 1 MiB template upload, then a content
/// listing of 400 templates on the same connection.
#[test]
fn api_driver_streams_past_its_buffers() {
    let d = Double::start();
    let cp = d.api();
    let big: Vec<u8> = (0..(1u32 << 20)).map(|i| (i % 251) as u8).collect();
    let vol = cp.upload_template("local", "big.tar", &big).unwrap();
    assert_eq!(vol, "local:vztmpl/big.tar");
    let stored = std::fs::read(d.path().join("storage/local/vztmpl/big.tar")).unwrap();
    assert!(stored == big, "upload arrived changed ({} bytes)", stored.len());
    for i in 0..400 {
        std::fs::write(d.path().join(format!("storage/local/vztmpl/template-with-a-long-name-{i:04}.tar")), b"").unwrap();
    }
    let listed = cp.templates("local").unwrap();
    assert!(listed.len() > 400, "{}", listed.len());
    d.assert_no_violations();
}
