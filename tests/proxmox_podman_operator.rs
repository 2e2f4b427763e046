//! Operator actions seen from Podman's side (issue 12, must show 3): a
//! container started with `podman run -d` on the Proxmox backend, then the
//! operator acts on its guest through the double (PROXMOX-FACTS §10), then
//! `podman wait`/`inspect`/`rm` see what src/backend/proxmox/README.md's
//! table says. Real Podman, LXC and zfs-fuse; the double is the node.
//!
//! * `pct stop` (lxc-stop --kill): Podman sees exit 137; `podman rm` works.
//! * `pct destroy` of the protected guest: refused with PVE's message;
//!   after the operator forces it, `podman rm` succeeds and another
//!   container's guest, dataset and LXC dir are untouched.
//! * `vzdump` holding `lock: backup`: `podman rm -f` fails naming the lock
//!   and the dataset behind the backup stays; once the backup is over it
//!   succeeds.

mod proxmox_support;
use proxmox_support::podman::{podman_env, Podman};
use proxmox_support::*;
use std::path::PathBuf;
use std::process::{Command, Stdio};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `podman run -d` of a long sleep named `name`: its VMID.
fn run_d(pm: &Podman, name: &str) -> u32 {
    let o = pm.run(&["run", "-d", "--name", name, "--network", "none", "localhost/busybox", "sleep", "1000"]);
    assert!(o.status.success(), "{}", out(&o));
    let id = String::from_utf8_lossy(&o.stdout).trim().to_string();
    let j = std::fs::read_to_string(pm.env.root.join(&id).join("proxmox.json")).expect("the container's create journal");
    let v: serde_json::Value = serde_json::from_str(&j).expect("journal json");
    let vmid = v["vmid"].as_u64().and_then(|v| u32::try_from(v).ok()).expect("vmid");
    assert!(wait_until(10, || pct(pm.env, &["status", &vmid.to_string()]).1 == "status: running"), "guest {vmid} not running");
    vmid
}

/// The operator's `pct ...`: (success, stdout trimmed, stderr).
fn pct(env: &Env, args: &[&str]) -> (bool, String, String) {
    let o = env.cmd("pct").args(args).output().expect("pct");
    (o.status.success(), String::from_utf8_lossy(&o.stdout).trim().to_string(), String::from_utf8_lossy(&o.stderr).into_owned())
}

fn inspect(pm: &Podman, name: &str, format: &str) -> String {
    let o = pm.run(&["inspect", "--format", format, name]);
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

/// No LXC process runs the bundle's command for guest `vmid` (nothing left
/// outside Podman): its command socket is gone (the guest is stopped, or
/// already gone: Podman's cleanup deletes the runtime's container once it
/// exited).
fn nothing_runs(env: &Env, vmid: u32) -> bool {
    let stopped = || {
        let (ok, status, err) = pct(env, &["status", &vmid.to_string()]);
        (ok && status == "status: stopped") || (!ok && err.contains("does not exist"))
    };
    if !wait_until(10, stopped) {
        eprintln!("guest {vmid}: {:?}", pct(env, &["status", &vmid.to_string()]));
        return false;
    }
    true
}

#[test]
fn podman_sees_operator_actions() {
    let Some(env) = podman_env("podop", "pct") else { return };
    let pm = Podman::new(&env);

    // pct stop: the engine sees 137, rm works.
    let v = run_d(&pm, "stopped");
    let (ok, _, err) = pct(&env, &["stop", &v.to_string()]);
    assert!(ok, "pct stop: {err}");
    let w = pm.run(&["wait", "stopped"]);
    assert_eq!(String::from_utf8_lossy(&w.stdout).trim(), "137", "{}", out(&w));
    assert_eq!(inspect(&pm, "stopped", "{{.State.Status}} {{.State.ExitCode}}"), "exited 137");
    assert!(nothing_runs(&env, v));
    let r = pm.run(&["rm", "stopped"]);
    assert!(r.status.success(), "{}", out(&r));
    env.assert_clean("after pct stop + podman rm");

    // pct destroy: refused while protected; forced, rm touches nothing else.
    let other = run_d(&pm, "bystander");
    let v = run_d(&pm, "destroyed");
    let (ok, _, err) = pct(&env, &["destroy", &v.to_string()]);
    assert!(!ok && err.contains(&format!("can't remove CT {v} - protection mode enabled")), "{err}");
    assert_eq!(inspect(&pm, "destroyed", "{{.State.Status}}"), "running", "a refused destroy changed the container");
    let (ok, _, err) = pct(&env, &["set", &v.to_string(), "--delete", "protection"]);
    assert!(ok, "{err}");
    let (ok, _, err) = pct(&env, &["destroy", &v.to_string(), "--force"]);
    assert!(ok, "pct destroy --force: {err}");
    let w = pm.run(&["wait", "destroyed"]);
    assert_eq!(String::from_utf8_lossy(&w.stdout).trim(), "137", "{}", out(&w));
    assert!(nothing_runs(&env, v));
    let other_conf = pct(&env, &["config", &other.to_string()]).1;
    let r = pm.run(&["rm", "destroyed"]);
    assert!(r.status.success(), "{}", out(&r));
    assert_eq!(env.guests(), vec![other], "only the bystander's guest is left: {}", env.pct_list());
    assert_eq!(pct(&env, &["config", &other.to_string()]).1, other_conf, "the bystander's config changed");
    assert_eq!(env.datasets(), vec![format!("{}/data/subvol-{other}-disk-0", env.pool)]);
    assert_eq!(env.lxc_dirs(), vec![other.to_string()]);
    assert_eq!(inspect(&pm, "bystander", "{{.State.Status}}"), "running");

    // vzdump: lock: backup; rm -f waits for it (proxmox.lock_wait, 60 s by
    // default) and never destroys the dataset behind the backup.
    let mut dump = Command::new(repo().join("target/debug/pve-double"))
        .args(["vzdump", &other.to_string(), "--hold-ms", "6000"])
        .env("PVE_DOUBLE_STATE", env.dir.join("state"))
        .env("PVE_DOUBLE_SCHEMA", repo().join("crates/pve/schema/pve-api-subset.json"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("vzdump");
    let conf = env.dir.join(format!("state/nodes/pve/lxc/{other}.conf"));
    assert!(wait_until(10, || std::fs::read_to_string(&conf).unwrap_or_default().contains("lock: backup")), "no backup lock");
    let rm = {
        let mut c = pm.cmd();
        c.args(["rm", "-f", "bystander"]);
        let dir = pm.dir.clone();
        std::thread::spawn(move || run_to_files(&mut c, &dir))
    };
    std::thread::sleep(std::time::Duration::from_secs(3));
    assert!(!rm.is_finished(), "rm -f did not wait for the backup");
    assert!(std::fs::read_to_string(&conf).unwrap_or_default().contains("lock: backup"), "the backup ended early");
    assert_eq!(env.datasets(), vec![format!("{}/data/subvol-{other}-disk-0", env.pool)], "the dataset behind the backup");
    assert!(env.guests().contains(&other) && env.lxc_dirs().contains(&other.to_string()));
    assert!(nothing_runs(&env, other), "the bundle's process still runs");
    assert!(dump.wait().expect("vzdump").success(), "vzdump failed");
    let r = rm.join().expect("rm thread");
    assert!(r.status.success(), "rm -f once the backup was over: {}", out(&r));
    env.assert_clean("after the backup");
}
