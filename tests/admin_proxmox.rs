//! The administrator's path on the Proxmox backend (pct driver, the
//! pve-double control plane, real LXC and zfs-fuse): `create --name
//! --backend proxmox` with resources and `--start`, logs, info (VMID,
//! dataset), exec, stats, zfs snapshot/list/clone, stop with its timeout,
//! delete leaving nothing behind.

mod oci_fixture;
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
    // The application is the guest's PID 1 and ignores TERM: SIGKILL after
    // the 2 s timeout.
    assert!(took >= Duration::from_secs(2) && took < Duration::from_secs(15), "stop took {took:?}");
    let st: serde_json::Value = serde_json::from_str(&ok(&env, &store, &["state", "pxweb"])).unwrap();
    assert_eq!(st["status"], "stopped");
    // The monitor reaped the holder (not the guest's PID 1, which is not its
    // child) and recorded the status: killed by SIGKILL.
    let exited = || serde_json::from_str::<serde_json::Value>(&ok(&env, &store, &["info", "--format", "json", "pxweb"])).unwrap()["exit"].clone();
    assert!(wait_until(10, || exited()["exitCode"] == 137), "info's exit: {}", exited());
    ok(&env, &store, &["zfs", "rollback", "pxweb@s1"]);

    ok(&env, &store, &["delete", "--force", "pxweb2"]);
    ok(&env, &store, &["zfs", "list"]);
    // The snapshot belongs to pxweb's dataset: delete takes both.
    let o = nx(&env, &store, &["delete", "pxweb"]);
    assert!(o.status.success(), "{}", out(&o));
    assert!(!store.join("bundles/pxweb").exists());
    env.assert_clean("after admin delete");
}

/// An image from the store on Proxmox with a zfs pool: unpacked once into a
/// base dataset (`image unpack --zfs`, or on first use), each guest a clone
/// of its snapshot; the base goes with the image's last name.
#[test]
fn image_clone_on_proxmox() {
    let env = env_or_skip!("admin-pximg", "pct");
    let store = env.dir.join("store");
    let b = env.bundle("img", &["true"], |_| {});
    let layout = oci_fixture::oci_layout(&b.join("rootfs"), &env.dir, serde_json::json!({
        "Env": ["PATH=/bin:/usr/bin:/sbin", "APP=img"], "Cmd": ["sh", "-c", "echo app $APP from base; while true; do sleep 1; done"]}));
    ok(&env, &store, &["image", "import", layout.to_str().unwrap(), "--name", "localhost/pxbase:1"]);
    let snap = ok(&env, &store, &["image", "unpack", "--zfs", "localhost/pxbase:1"]).trim().to_string();
    assert!(snap.starts_with(&format!("{}/data/basevol-", env.pool)) && snap.ends_with("-disk-0@__base__"), "{snap}");
    // Idempotent: the same snapshot, nothing unpacked again.
    let again = nx(&env, &store, &["image", "unpack", "--zfs", "localhost/pxbase:1"]);
    assert_eq!(String::from_utf8_lossy(&again.stdout).trim(), snap);
    assert!(String::from_utf8_lossy(&again.stderr).contains("already in"), "{}", out(&again));

    ok(&env, &store, &["create", "--name", "pxc", "--image", "localhost/pxbase:1", "--backend", "proxmox", "--start"]);
    assert!(wait_until(15, || ok(&env, &store, &["logs", "pxc"]).contains("app img from base")), "{}", ok(&env, &store, &["logs", "pxc"]));
    let info: serde_json::Value = serde_json::from_str(&ok(&env, &store, &["info", "--format", "json", "pxc"])).unwrap();
    let ds = info["dataset"].as_str().unwrap_or_else(|| panic!("no dataset: {info}")).to_string();
    let zi: serde_json::Value = serde_json::from_str(&ok(&env, &store, &["zfs", "info", "pxc"])).unwrap();
    assert_eq!(zi["origin"], snap, "{zi}");
    // The clone is writable, the base is not touched.
    assert_eq!(ok(&env, &store, &["exec", "pxc", "sh", "-c", "echo x > /written && cat /written"]).trim(), "x");
    let base = snap.split('@').next().unwrap();
    let zget = |prop: &str, ds: &str| {
        let o = std::process::Command::new("zfs").args(["get", "-H", "-o", "value", prop, ds]).output().unwrap();
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    };
    let base_mp = std::path::PathBuf::from(zget("mountpoint", base));
    // Read-only (zfs-fuse reports the property as off, but enforces it).
    assert!(std::fs::write(base_mp.join("probe"), "x").is_err(), "base {base} is writable");
    assert!(base_mp.join("bin/busybox").exists() && !base_mp.join("written").exists(), "{}", base_mp.display());

    let o = nx(&env, &store, &["image", "remove", "localhost/pxbase:1"]);
    assert!(!o.status.success() && out(&o).contains("in use"), "{}", out(&o));
    ok(&env, &store, &["stop", "--timeout", "2", "pxc"]);
    ok(&env, &store, &["delete", "pxc"]);
    assert!(!env.datasets().contains(&ds));
    let rm = ok(&env, &store, &["image", "remove", "localhost/pxbase:1"]);
    assert!(rm.contains(&format!("destroyed base {snap}")), "{rm}");
    assert_eq!(zget("name", base), "", "base {base} not destroyed");
    env.assert_clean("after image remove");
}
