//! The administrator's path on the Proxmox backend (pct driver, the
//! pve-double control plane, real LXC and zfs-fuse): `create --name
//! --backend proxmox` with resources and `--start`, logs, info (VMID,
//! dataset), exec, stats, zfs snapshot/list/clone, stop with its timeout,
//! delete leaving nothing behind.

mod proxmox_support;
use proxmox_support::*;

use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

fn nx(env: &Env, store: &std::path::Path, args: &[&str]) -> Output {
    env.cmd(nexcage()).env("NEXCAGE_STORAGE_PATH", store).arg("--root").arg(&env.root).args(args)
        .stdin(Stdio::null()).output().expect("run nexcage")
}

fn ok(env: &Env, store: &std::path::Path, args: &[&str]) -> String {
    let o = nx(env, store, args);
    assert!(o.status.success(), "nexcage {args:?}: {}", out(&o));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn admin_on_proxmox() {
    let env = env_or_skip!("admin-px", "pct");
    let store = env.dir.join("store");
    let b = env.bundle("adm", &["sh", "-c", "echo app $APP starting; trap '' TERM; while true; do sleep 1; done"], |_| {});
    let b = b.to_str().unwrap();
    // The node check sees the double's Proxmox and the test pool.
    let check = nx(&env, &store, &["system", "check"]);
    let text = String::from_utf8_lossy(&check.stdout).into_owned();
    assert!(text.lines().any(|l| l.starts_with("ok") && l.contains("proxmox: pve-manager")), "{text}");
    assert!(text.lines().any(|l| l.starts_with("ok") && l.contains(&format!("{} ONLINE", env.pool))), "{text}");
    assert!(check.status.success(), "{text}");
    ok(&env, &store, &["create", "--name", "pxweb", "--image", b, "--backend", "proxmox", "--memory", "128", "--cores", "1",
        "--env", "APP=web", "--storage-size", "256M", "--start"]);
    assert!(wait_until(15, || ok(&env, &store, &["logs", "pxweb"]).contains("app web starting")), "{}", ok(&env, &store, &["logs", "pxweb"]));

    let info: serde_json::Value = serde_json::from_str(&ok(&env, &store, &["info", "--format", "json", "pxweb"])).unwrap();
    assert_eq!(info["backend"], "proxmox");
    let vmid = info["vmid"].as_u64().unwrap_or_else(|| panic!("no vmid: {info}"));
    assert_eq!(env.guests(), vec![vmid as u32]);
    // Read back from the guest's cgroup.
    assert_eq!(info["enforced"]["memoryLimit"], 128 * 1024 * 1024, "{info}");
    assert_eq!(info["enforced"]["cpus"], "0", "{info}");
    let ds = info["dataset"].as_str().unwrap_or_else(|| panic!("no dataset: {info}")).to_string();
    assert!(ds.ends_with(&format!("subvol-{vmid}-disk-0")), "{ds}");
    let list = ok(&env, &store, &["list"]);
    assert!(list.contains(&vmid.to_string()), "{list}");

    assert_eq!(ok(&env, &store, &["exec", "pxweb", "echo", "inside"]).trim(), "inside");
    let stats: serde_json::Value = serde_json::from_str(&ok(&env, &store, &["stats", "--no-stream", "--format", "json", "pxweb"])).unwrap();
    assert_eq!(stats[0]["id"], "pxweb", "{stats}");

    ok(&env, &store, &["zfs", "snapshot", "pxweb@s1"]);
    let zl = ok(&env, &store, &["zfs", "list"]);
    assert!(zl.contains(&format!("{ds}@s1")), "{zl}");
    ok(&env, &store, &["zfs", "clone", "pxweb@s1", "pxweb2"]);
    let zi: serde_json::Value = serde_json::from_str(&ok(&env, &store, &["zfs", "info", "pxweb2"])).unwrap();
    assert_eq!(zi["origin"], format!("{ds}@s1"), "{zi}");
    let o = nx(&env, &store, &["zfs", "rollback", "pxweb@s1"]);
    assert!(!o.status.success() && out(&o).contains("stop it"), "{}", out(&o));

    let t0 = Instant::now();
    ok(&env, &store, &["stop", "--timeout", "2", "pxweb"]);
    let took = t0.elapsed();
    // lxc-execute's init (lxc-init) answers TERM itself: it forwards it and
    // kills everything 1 s later, so a guest stops within ~1 s of TERM even
    // when its process ignores it (the native test checks the timeout path).
    assert!(took < Duration::from_secs(15), "stop took {took:?}");
    let st: serde_json::Value = serde_json::from_str(&ok(&env, &store, &["state", "pxweb"])).unwrap();
    assert_eq!(st["status"], "stopped");
    ok(&env, &store, &["zfs", "rollback", "pxweb@s1"]);

    ok(&env, &store, &["delete", "--force", "pxweb2"]);
    ok(&env, &store, &["zfs", "list"]);
    // The snapshot belongs to pxweb's dataset: delete takes both.
    let o = nx(&env, &store, &["delete", "pxweb"]);
    assert!(o.status.success(), "{}", out(&o));
    assert!(!store.join("bundles/pxweb").exists());
    env.assert_clean("after admin delete");
}
