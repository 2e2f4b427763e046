//! Where the holder and the guest sit in the cgroup tree on cgroup v1
//! (src/backend/proxmox/README.md, *The guest's cgroup*): the guest's
//! processes in `<cgroupsPath>/ns`, the holder (the pid-file pid, whose
//! cgroup containerd's shim loads for metrics and OOM events) in
//! `<cgroupsPath>`, the limit cgroup. ps, pause and update act on the
//! guest alone (update on its limit cgroup), the holder keeps answering
//! LXC's command socket while the guest is paused, and LXC removes every
//! dir itself when the guest ends (the holder leaves first, through its
//! stop hook). Real LXC + zfs-fuse + the double.

mod proxmox_support;

use proxmox_support::{out, wait_until, Env};
use std::path::{Path, PathBuf};

const MIB: u64 = 1024 * 1024;

/// The memory cgroup of `pid`, from the hierarchy's root.
fn memory_path(pid: i32) -> String {
    let cg = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
    cg.lines().find_map(|l| l.split_once(":memory:").map(|(_, p)| p.to_string())).unwrap_or_default()
}

fn memory_dir(path: &str) -> PathBuf {
    Path::new("/sys/fs/cgroup/memory").join(path.trim_start_matches('/'))
}

fn read(p: PathBuf) -> String {
    std::fs::read_to_string(&p).unwrap_or_default().trim().to_string()
}

/// Every hierarchy dir of `path` that exists.
fn dirs_of(path: &str) -> Vec<PathBuf> {
    let roots = std::fs::read_dir("/sys/fs/cgroup").into_iter().flatten().flatten().map(|e| e.path()).filter(|p| !p.is_symlink());
    roots.map(|r| r.join(path.trim_start_matches('/'))).filter(|d| d.is_dir()).collect()
}

#[test]
fn holder_in_the_limit_cgroup_guest_below() {
    let env: Env = env_or_skip!("cgroup", "pct", "lxc-info");
    if !Path::new("/sys/fs/cgroup/memory").is_dir() {
        eprintln!("SKIP holder_in_the_limit_cgroup_guest_below: no cgroup v1 memory hierarchy (the holder stays in LXC's monitor cgroup on v2)");
        return;
    }
    let parent = format!("/nexcage-cgtest-{}", std::process::id());
    let cg = format!("{parent}/c1");
    let b = env.bundle("cg", &["sh", "-c", "trap 'exit 3' TERM; while :; do sleep 0.1; done"], |v| {
        v["linux"]["cgroupsPath"] = serde_json::json!(cg);
        v["linux"]["resources"] = serde_json::json!({"memory": {"limit": 64 * MIB}});
    });
    let pidf = env.dir.join("cg.pid");
    let o = env.nx(&["create", "-b", b.to_str().unwrap(), "--pid-file", pidf.to_str().unwrap(), "c1"]);
    assert!(o.status.success(), "create: {}", out(&o));
    let holder: i32 = std::fs::read_to_string(&pidf).unwrap().trim().parse().unwrap();
    let st: serde_json::Value = serde_json::from_slice(&env.nx(&["state", "c1"]).stdout).unwrap();
    let init = st["pid"].as_i64().unwrap() as i32;
    // Placement, already at create (when the engine reads the pid file).
    assert_eq!(memory_path(holder), cg, "the holder is not in the limit cgroup");
    assert_eq!(memory_path(init), format!("{cg}/ns"), "the guest is not in LXC's inner dir");
    assert_eq!(read(memory_dir(&cg).join("memory.limit_in_bytes")), (64 * MIB).to_string(), "LXC's limit is not on the limit cgroup");
    assert!(env.nx(&["start", "c1"]).status.success());

    // ps: the guest alone.
    let ps = env.nx(&["ps", "--format", "json", "c1"]);
    let pids: Vec<i32> = serde_json::from_slice(&ps.stdout).unwrap_or_else(|_| panic!("ps: {}", out(&ps)));
    assert!(pids.contains(&init) && !pids.contains(&holder), "ps {pids:?} (init {init}, holder {holder})");
    // pause freezes the guest's own cgroup, not the holder's, which still
    // answers LXC's command socket.
    assert!(env.nx(&["pause", "c1"]).status.success());
    assert_eq!(read(Path::new("/sys/fs/cgroup/freezer").join(format!("{}/ns/freezer.state", cg.trim_start_matches('/')))), "FROZEN");
    assert_eq!(read(Path::new("/sys/fs/cgroup/freezer").join(format!("{}/freezer.state", cg.trim_start_matches('/')))), "THAWED");
    let vmid = env.guests()[0].to_string();
    let mut info = env.cmd("lxc-info");
    info.args(["-n", &vmid, "-s", "-H", "-P"]).arg(env.dir.join("lxc"));
    let o = proxmox_support::run_to_files(&mut info, &env.dir);
    // (LXC's own state stays RUNNING: only its freeze command changes it.)
    assert!(o.status.success() && !o.stdout.is_empty(), "lxc-info while paused: {}", out(&o));
    assert!(env.nx(&["resume", "c1"]).status.success());
    assert_eq!(read(Path::new("/sys/fs/cgroup/freezer").join(format!("{}/ns/freezer.state", cg.trim_start_matches('/')))), "THAWED");
    // update and events --stats: the limit cgroup's limit.
    let o = env.nx(&["update", "--memory", "96m", "c1"]);
    assert!(o.status.success(), "update: {}", out(&o));
    assert_eq!(read(memory_dir(&cg).join("memory.limit_in_bytes")), (96 * MIB).to_string());
    let stats = env.nx(&["events", "--stats", "c1"]);
    let sv: serde_json::Value = serde_json::from_slice(&stats.stdout).unwrap_or_else(|_| panic!("stats: {}", out(&stats)));
    assert_eq!(sv["data"]["memory"]["usage"]["limit"], 96 * MIB, "{sv}");

    // The application ends by itself: LXC removes the dirs (the holder left them first).
    assert!(env.nx(&["kill", "c1", "TERM"]).status.success());
    assert!(wait_until(10, || !Path::new(&format!("/proc/{holder}")).exists() || std::fs::read_to_string(format!("/proc/{holder}/stat")).is_ok_and(|s| s.contains(") Z "))), "holder still runs");
    let left = || dirs_of(&cg).into_iter().chain(dirs_of(&format!("lxc.monitor.{vmid}"))).collect::<Vec<_>>();
    assert!(wait_until(5, || left().is_empty()), "LXC left cgroups after the guest ended: {:?}", left());
    let st: serde_json::Value = serde_json::from_slice(&env.nx(&["state", "c1"]).stdout).unwrap();
    assert_eq!(st["status"], "stopped");
    let o = env.nx(&["delete", "c1"]);
    assert!(o.status.success(), "delete: {}", out(&o));
    for d in dirs_of(&parent) {
        let _ = std::fs::remove_dir(d);
    }
    env.assert_clean("cgroup");
}
