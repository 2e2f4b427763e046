//! nexcage-zfs against real zfs-fuse: subvol with refquota (and the
//! Proxmox-property fallback), snapshot, rollback, clone, list, destroy
//! (idempotent), pool health and usage.

mod proxmox_support;
use nexcage_zfs::{subvol_name, Zfs};

#[test]
fn zfs_api() {
    let env = env_or_skip!("zfs", "pct");
    let z = Zfs::new();
    let parent = format!("{}/data", env.pool);
    let ds = subvol_name(&parent, 900, 0);
    let skipped = z.create_subvol(&ds, Some(64 << 20)).unwrap();
    // zfs-fuse refuses acltype/xattr=sa; real OpenZFS takes them.
    assert!(skipped.0.is_empty() || skipped.0.contains(&"xattr=sa".to_string()));
    assert!(z.exists(&ds).unwrap());
    assert!(z.create_subvol(&ds, None).unwrap_err().is_already_exists());
    let mp = z.mountpoint(&ds).unwrap();
    std::fs::write(mp.join("f"), b"one").unwrap();
    z.snapshot(&format!("{ds}@s1")).unwrap();
    std::fs::write(mp.join("f"), b"two").unwrap();
    z.rollback(&format!("{ds}@s1"), false).unwrap();
    assert_eq!(std::fs::read(mp.join("f")).unwrap(), b"one");
    let cl = subvol_name(&parent, 901, 0);
    z.clone_to(&format!("{ds}@s1"), &cl, Some(32 << 20)).unwrap();
    assert_eq!(std::fs::read(z.mountpoint(&cl).unwrap().join("f")).unwrap(), b"one");
    let list = z.list(&parent).unwrap();
    let c = list.iter().find(|d| d.name == cl).expect("clone listed");
    assert_eq!(c.origin.as_deref(), Some(format!("{ds}@s1").as_str()));
    assert_eq!(c.refquota, Some(32 << 20));
    assert!(list.iter().any(|d| d.name == format!("{ds}@s1") && d.kind == "snapshot"));
    // refquota is enforced: 80 MiB into a 64 MiB dataset fails.
    let big = vec![0x5au8; 80 << 20];
    assert!(std::fs::write(mp.join("big"), &big).and_then(|_| std::fs::File::open(mp.join("big"))?.sync_all()).is_err());
    z.destroy(&cl, true).unwrap();
    z.destroy(&ds, true).unwrap();
    z.destroy(&ds, true).unwrap(); // gone = success
    assert!(!z.exists(&ds).unwrap());
    assert_eq!(z.pool_health(&env.pool).unwrap(), "ONLINE");
    let u = z.pool_usage(&env.pool).unwrap();
    assert!(u.size > 1 << 30 && u.free > 0 && u.free <= u.size, "{u:?}");
    assert!(z.exists("nxnopool/x").is_err() || !z.exists("nxnopool/x").unwrap());
}
