//! 50 concurrent VMID allocations (nextid + create, retried on "already
//! exists") through each driver give 50 distinct VMIDs.

mod common;

use common::Double;
use nexcage_pve::driver::{allocate_and_create, ControlPlane, CreateRequest};
use std::collections::BTreeSet;
use std::sync::Arc;

fn fifty(d: &Double, cp: Arc<dyn ControlPlane>) {
    let req = CreateRequest {
        ostemplate: "local:vztmpl/nexcage-empty.tar".into(),
        params: [
            ("memory", "64"),
            ("swap", "0"),
            ("rootfs", "local-zfs:1"),
            ("tags", "nexcage"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect(),
        raw_lxc: vec![],
        owner_line: None,
    };
    let handles: Vec<_> = (0..50)
        .map(|_| {
            let (cp, req) = (cp.clone(), req.clone());
            std::thread::spawn(move || allocate_and_create(cp.as_ref(), &req))
        })
        .collect();
    let ids: Vec<u32> = handles
        .into_iter()
        .map(|h| h.join().unwrap().unwrap())
        .collect();
    let distinct: BTreeSet<u32> = ids.iter().copied().collect();
    assert_eq!(distinct.len(), 50, "{ids:?}");
    let listed: BTreeSet<u32> = cp.list().unwrap().iter().map(|g| g.vmid).collect();
    assert_eq!(listed, distinct);
    for id in &distinct {
        assert!(d.conf_exists(*id));
    }
    eprintln!("calls for 50 concurrent creates: {}", cp.calls());
    d.assert_no_violations();
}

#[test]
fn fifty_concurrent_allocations_api() {
    let d = Double::start();
    let cp: Arc<dyn ControlPlane> = Arc::new(d.api());
    fifty(&d, cp);
}

#[test]
fn fifty_concurrent_allocations_pct() {
    let d = Double::start();
    let cp: Arc<dyn ControlPlane> = Arc::new(d.pct());
    fifty(&d, cp);
}
