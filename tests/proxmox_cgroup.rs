//! Where the holder and the guest sit in the cgroup tree on cgroup v1
//! (src/backend/proxmox/README.md, *The guest's cgroup*): the guest in
//! `<cgroupsPath>` itself with its limits there, as under runc; the holder
//! (the pid-file pid, whose cgroups containerd's shim loads for metrics and
//! OOM events) joins `<cgroupsPath>` in the memory, cpu, cpuacct and blkio
//! hierarchies only, never freezer or pids. ps, pause and pids act on the
//! guest alone, the holder keeps answering LXC's command socket while the
//! guest is paused, the guest sees the holder as pid 0 in its memory
//! cgroup, and LXC removes every dir itself when the guest ends (the holder
//! leaves first, through its stop hook). Real LXC + zfs-fuse + the double.

mod proxmox_support;

use proxmox_support::{out, wait_until, Env};
use std::path::{Path, PathBuf};

const MIB: u64 = 1024 * 1024;

/// The cgroup of `pid` in the v1 hierarchy listing `ctrl`, from its root.
fn path_in(pid: i32, ctrl: &str) -> String {
    let cg = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
    cg.lines()
        .find_map(|l| {
            let mut f = l.splitn(3, ':');
            let (_, ctrls, path) = (f.next()?, f.next()?, f.next()?);
            ctrls.split(',').any(|c| c == ctrl).then(|| path.to_string())
        })
        .unwrap_or_default()
}

fn dir_in(hierarchy: &str, path: &str) -> PathBuf {
    Path::new("/sys/fs/cgroup").join(hierarchy).join(path.trim_start_matches('/'))
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
fn guest_in_cgroups_path_holder_in_its_stats_hierarchies() {
    let env: Env = env_or_skip!("cgroup", "pct", "lxc-info");
    if !Path::new("/sys/fs/cgroup/memory").is_dir() {
        eprintln!("SKIP guest_in_cgroups_path_holder_in_its_stats_hierarchies: no cgroup v1 memory hierarchy (cgroup v2: tests/proxmox_cgroup2.rs)");
        return;
    }
    let parent = format!("/nexcage-cgtest-{}", std::process::id());
    let cg = format!("{parent}/c1");
    let b = env.bundle("cg", &["sh", "-c", "trap 'exit 3' TERM; while :; do sleep 0.1; done"], |v| {
        v["linux"]["cgroupsPath"] = serde_json::json!(cg);
        v["linux"]["resources"] = serde_json::json!({"memory": {"limit": 64 * MIB}, "pids": {"limit": 50}});
    });
    let pidf = env.dir.join("cg.pid");
    let o = env.nx(&["create", "-b", b.to_str().unwrap(), "--pid-file", pidf.to_str().unwrap(), "c1"]);
    assert!(o.status.success(), "create: {}", out(&o));
    let holder: i32 = std::fs::read_to_string(&pidf).unwrap().trim().parse().unwrap();
    let st: serde_json::Value = serde_json::from_slice(&env.nx(&["state", "c1"]).stdout).unwrap();
    let init = st["pid"].as_i64().unwrap() as i32;
    let vmid = env.guests()[0].to_string();
    // Placement, already at create (when the engine reads the pid file).
    for ctrl in ["memory", "cpu", "cpuacct", "blkio", "freezer", "pids", "devices"] {
        assert_eq!(path_in(init, ctrl), cg, "the guest's {ctrl} cgroup is not the cgroupsPath");
    }
    for ctrl in ["memory", "cpu", "cpuacct", "blkio"] {
        assert_eq!(path_in(holder, ctrl), cg, "the holder is not in the guest's {ctrl} cgroup");
    }
    for ctrl in ["freezer", "pids", "devices"] {
        assert_eq!(path_in(holder, ctrl), format!("/lxc.monitor.{vmid}"), "the holder left its monitor cgroup in {ctrl}");
    }
    assert_eq!(read(dir_in("memory", &cg).join("memory.limit_in_bytes")), (64 * MIB).to_string(), "LXC's limit is not on the cgroupsPath");
    assert!(env.nx(&["start", "c1"]).status.success());

    // ps and pids: the guest alone.
    let ps = env.nx(&["ps", "--format", "json", "c1"]);
    let pids: Vec<i32> = serde_json::from_slice(&ps.stdout).unwrap_or_else(|_| panic!("ps: {}", out(&ps)));
    assert!(pids.contains(&init) && !pids.contains(&holder), "ps {pids:?} (init {init}, holder {holder})");
    let procs = read(dir_in("pids", &cg).join("cgroup.procs"));
    assert!(!procs.split_whitespace().any(|p| p == holder.to_string()), "holder in pids cgroup.procs {procs}");
    // From inside: the container's own cgroups (the limits there), where the
    // holder does not show: v1's cgroup.procs leaves out pids outside the
    // reader's pid namespace (kernel cgroup-v1.c `pidlist_array_load`).
    let o = env.nx(&["exec", "c1", "sh", "-c", "cat /proc/self/cgroup; echo mem; cat /sys/fs/cgroup/memory/cgroup.procs; echo pids; cat /sys/fs/cgroup/pids/cgroup.procs; echo lim; cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max"]);
    let inside = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(o.status.success(), "exec: {}", out(&o));
    let section = |name: &str, next: &str| inside.split(&format!("{name}\n")).nth(1).and_then(|r| r.split(&format!("{next}\n")).next()).unwrap_or_default().to_string();
    let (mem, pids_in) = (section("mem", "pids"), section("pids", "lim"));
    assert!(inside.contains(":memory:/\n") && inside.contains(":pids:/\n"), "the container is not at its cgroup namespace root: {inside}");
    assert!(!mem.lines().any(|l| l == "0") && mem.lines().count() == pids_in.lines().count(), "the holder shows inside: {inside}");
    assert!(inside.ends_with(&format!("{}\n50\n", 64 * MIB)), "limits from inside: {inside}");
    // pause freezes the guest's cgroup; the holder, in no freezer cgroup of
    // the guest, still answers LXC's command socket.
    assert!(env.nx(&["pause", "c1"]).status.success());
    assert_eq!(read(dir_in("freezer", &cg).join("freezer.state")), "FROZEN");
    let mut info = env.cmd("lxc-info");
    info.args(["-n", &vmid, "-s", "-H", "-P"]).arg(env.dir.join("lxc"));
    let o = proxmox_support::run_to_files(&mut info, &env.dir);
    // (LXC's own state stays RUNNING: only its freeze command changes it.)
    assert!(o.status.success() && !o.stdout.is_empty(), "lxc-info while paused: {}", out(&o));
    assert!(env.nx(&["resume", "c1"]).status.success());
    assert_eq!(read(dir_in("freezer", &cg).join("freezer.state")), "THAWED");
    // update and events --stats: the cgroupsPath.
    let o = env.nx(&["update", "--memory", "96m", "c1"]);
    assert!(o.status.success(), "update: {}", out(&o));
    assert_eq!(read(dir_in("memory", &cg).join("memory.limit_in_bytes")), (96 * MIB).to_string());
    // Proxmox's view follows (its config, what the GUI and `pct config` show).
    let o = env.cmd("pct").args(["config", &vmid]).output().unwrap();
    assert!(String::from_utf8_lossy(&o.stdout).lines().any(|l| l == "memory: 96"), "pct config after update: {}", out(&o));
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
