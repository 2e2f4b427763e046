//! Operator actions on a node, seen from the engine's side (issue 12):
//! `pct status` says running exactly while the OCI process runs, `pct stop`
//! ends the container with status 137, and a guest under `lock: backup`
//! (`vzdump`) makes `nexcage delete -f` fail naming the lock, leaving the
//! dataset behind the backup in place. Real LXC + zfs-fuse + the double
//! (PROXMOX-FACTS §10).

mod proxmox_support;

use proxmox_support::{nexcage, out, wait_until, Env};
use std::path::PathBuf;
use std::process::{Command, Stdio};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn vmid(env: &Env, id: &str) -> Option<u32> {
    let j = std::fs::read_to_string(env.root.join(id).join("proxmox.json")).ok()?;
    let v: serde_json::Value = serde_json::from_str(&j).ok()?;
    v["vmid"].as_u64().and_then(|v| u32::try_from(v).ok())
}

fn pct_status(env: &Env, vmid: u32) -> String {
    let o = env.cmd("pct").args(["status", &vmid.to_string()]).output().expect("pct status");
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

/// The pid `pct status --verbose` shows (the guest's init, from LXC), if any.
fn pct_pid(env: &Env, vmid: u32) -> Option<i64> {
    let o = env.cmd("pct").args(["status", &vmid.to_string(), "--verbose"]).output().expect("pct status --verbose");
    String::from_utf8_lossy(&o.stdout).lines().find_map(|l| l.strip_prefix("pid: ")?.trim().parse().ok())
}

/// `nexcage state`'s pid.
fn state_pid(env: &Env, id: &str) -> Option<i64> {
    let v: serde_json::Value = serde_json::from_slice(&env.nx(&["state", id]).stdout).ok()?;
    v["pid"].as_i64()
}

/// `vzdump VMID --hold-ms N` of the double: `lock: backup` for N ms.
fn vzdump(env: &Env, vmid: u32, hold_ms: u32) -> std::process::Child {
    Command::new(repo().join("target/debug/pve-double"))
        .args(["vzdump", &vmid.to_string(), "--hold-ms", &hold_ms.to_string()])
        .env("PVE_DOUBLE_STATE", env.dir.join("state"))
        .env("PVE_DOUBLE_SCHEMA", repo().join("crates/pve/schema/pve-api-subset.json"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("vzdump")
}

#[test]
fn operator_actions() {
    let env = env_or_skip!("operator", "pct");
    let b = env.bundle("sleep", &["sleep", "1000"], |_| {});

    // Running from create (the guest exists, its init waits for start)
    // until the OCI process ends.
    let o = env.nx(&["create", "--bundle", b.to_str().unwrap(), "o1"]);
    assert!(o.status.success(), "create: {}", out(&o));
    let id = vmid(&env, "o1").expect("vmid");
    assert_eq!(pct_status(&env, id), "status: running", "created: the guest runs nexcage-init");
    // Proxmox's pid and the OCI state's pid are the same process: the guest's PID 1.
    let created = state_pid(&env, "o1");
    assert!(created.is_some_and(|p| p > 0), "state pid after create: {created:?}");
    assert_eq!(pct_pid(&env, id), created, "created: pct status --verbose pid vs nexcage state pid");
    let o = env.nx(&["start", "o1"]);
    assert!(o.status.success(), "start: {}", out(&o));
    assert!(wait_until(10, || pct_status(&env, id) == "status: running"), "started: {}", pct_status(&env, id));
    assert_eq!(pct_pid(&env, id), state_pid(&env, "o1"), "started: pct status --verbose pid vs nexcage state pid");
    assert_eq!(state_pid(&env, "o1"), created, "the application is the guest's PID 1: the pid stays");

    // A backup holds `lock: backup`: delete waits `proxmox.lock_wait` (1 s
    // here), then fails naming it; the dataset stays.
    let mut cfg: serde_json::Value = serde_json::from_slice(&std::fs::read(env.config()).unwrap()).unwrap();
    cfg["proxmox"]["lock_wait"] = 1.into();
    std::fs::write(env.config(), serde_json::to_vec(&cfg).unwrap()).unwrap();
    let mut dump = vzdump(&env, id, 6000);
    let conf = env.dir.join(format!("state/nodes/pve/lxc/{id}.conf"));
    assert!(wait_until(10, || std::fs::read_to_string(&conf).unwrap_or_default().contains("lock: backup")), "no backup lock");
    let o = env.nx(&["delete", "-f", "o1"]);
    assert!(!o.status.success(), "delete under a backup must fail: {}", out(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("CT is locked (backup)"), "{}", out(&o));
    assert!(env.datasets().iter().any(|d| d.ends_with(&format!("subvol-{id}-disk-0"))), "the dataset behind the backup was destroyed");
    assert!(env.guests().contains(&id), "guest gone: {}", env.pct_list());
    assert!(env.lxc_dirs().contains(&id.to_string()), "LXC dir gone: {:?}", env.lxc_dirs());
    assert!(dump.wait().expect("vzdump").success(), "vzdump failed");
    let o = env.nx(&["delete", "-f", "o1"]);
    assert!(o.status.success(), "delete after the backup: {}", out(&o));

    // `pct stop` (lxc-stop --kill) ends the container: run exits 137.
    let mut c = env.cmd(nexcage());
    c.arg("--root").arg(&env.root).args(["run", "--bundle", b.to_str().unwrap(), "o2"]);
    let mut run = c.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("nexcage run");
    let mut id = 0;
    assert!(wait_until(20, || vmid(&env, "o2").is_some_and(|v| {
        id = v;
        pct_status(&env, v) == "status: running"
    })), "run did not start");
    let o = env.cmd("pct").args(["stop", &id.to_string()]).output().expect("pct stop");
    assert!(o.status.success(), "pct stop: {}", out(&o));
    let st = run.wait().expect("wait run");
    assert_eq!(st.code(), Some(137), "run's status after pct stop");
    // (run deletes the container once it ended.)

    // `pct shutdown` sends the halt signal, SIGTERM like an engine's stop,
    // to the application (the guest's PID 1): run exits with its own status.
    let b = env.bundle("trap", &["sh", "-c", "trap 'exit 5' TERM; sleep 1000 & wait"], |_| {});
    let mut c = env.cmd(nexcage());
    c.arg("--root").arg(&env.root).args(["run", "--bundle", b.to_str().unwrap(), "o4"]);
    let mut run = c.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("nexcage run");
    let mut id = 0;
    assert!(wait_until(20, || vmid(&env, "o4").is_some_and(|v| {
        id = v;
        String::from_utf8_lossy(&env.nx(&["state", "o4"]).stdout).contains("\"running\"")
    })), "run did not start");
    std::thread::sleep(std::time::Duration::from_millis(300));
    let o = env.cmd("pct").args(["shutdown", &id.to_string()]).output().expect("pct shutdown");
    assert!(o.status.success(), "pct shutdown: {}", out(&o));
    assert_eq!(run.wait().expect("wait run").code(), Some(5), "run's status after pct shutdown");

    // The OCI process ends by itself: stopped in both views. A later
    // `pct start` runs nexcage-init's refusal, never the bundle's process.
    let marks = env.dir.join("marks");
    std::fs::create_dir_all(&marks).unwrap();
    std::fs::set_permissions(&marks, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    let b = env.bundle("short", &["sh", "-c", "echo ran >> /mnt/marks/ran; sleep 1"], |v| {
        v["mounts"].as_array_mut().unwrap().push(serde_json::json!({"destination": "/mnt/marks", "type": "bind", "source": marks, "options": ["rbind", "rw"]}));
    });
    let o = env.nx(&["create", "--bundle", b.to_str().unwrap(), "o3"]);
    assert!(o.status.success(), "create: {}", out(&o));
    let id = vmid(&env, "o3").expect("vmid");
    let o = env.nx(&["start", "o3"]);
    assert!(o.status.success(), "start: {}", out(&o));
    let stopped = || String::from_utf8_lossy(&env.nx(&["state", "o3"]).stdout).contains("\"status\": \"stopped\"");
    assert!(wait_until(20, stopped), "o3 did not stop");
    assert_eq!(pct_status(&env, id), "status: stopped", "the OCI process has ended");
    assert_eq!(pct_pid(&env, id), None, "a stopped guest has no pid in Proxmox's view");
    // The double runs `lxc-start` on PVE's regenerated config, as a node does.
    std::fs::write(env.dir.join("state/real-start"), b"").unwrap();
    let _ = env.cmd("pct").args(["start", &id.to_string()]).output().expect("pct start");
    std::thread::sleep(std::time::Duration::from_secs(2));
    assert_eq!(std::fs::read_to_string(marks.join("ran")).unwrap_or_default(), "ran\n", "pct start ran the bundle's process");
    assert!(wait_until(10, || pct_status(&env, id) == "status: stopped"), "after pct start: {}", pct_status(&env, id));
    let o = env.nx(&["delete", "o3"]);
    assert!(o.status.success(), "delete: {}", out(&o));
    env.assert_clean("operator");
}
