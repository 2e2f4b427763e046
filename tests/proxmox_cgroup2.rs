//! The Proxmox backend on a cgroup-v2-only host, as Proxmox VE 8/9 nodes
//! are (src/backend/proxmox/README.md, *The guest's cgroup*). The test
//! machines are hybrid (v1 controllers), so `proxmox_on_cgroup2` runs the
//! `in_vm_*` tests of this file inside a VM that mounts cgroup2 alone
//! (scripts/cgroup2-vm.sh: QEMU, Debian's kernel, the host's / read-only),
//! or directly on a pure v2 host. In there: real LXC, real zfs-fuse, the
//! double (tests/proxmox_support).
//!
//! What they show: the guest runs in its `linux.cgroupsPath` with its
//! limits (`lxc.cgroup2.*`); the holder (the pid-file pid) is in that
//! cgroup from create on, so the cgroup an engine's shim reads from
//! `/proc/<pid-file pid>/cgroup` after create is the guest's: its
//! `memory.current` holds the app's 25 MiB in /dev/shm, and an OOM kill at
//! the guest's limit counts in its `memory.events` `oom_kill` (containerd's
//! `OOMKilled`) while the holder ends with SIGKILL (exit 137). ps, kill
//! --all and pause leave the holder out; nothing is left in the cgroup
//! tree, whether the guest ends by itself or `delete --force` kills it.

mod proxmox_support;

use proxmox_support::{out, wait_until, Env};
use std::path::{Path, PathBuf};
use std::process::Command;

const MIB: u64 = 1024 * 1024;

fn pure_v2() -> bool {
    Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
}

/// The unified cgroup of `pid` (its `0::` line), from the root.
fn cgroup_of(pid: i32) -> String {
    let cg = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
    cg.lines().find_map(|l| l.strip_prefix("0::")).unwrap_or_default().to_string()
}

/// The dir of a cgroup path (from the root).
fn dir(path: &str) -> PathBuf {
    Path::new("/sys/fs/cgroup").join(path.trim_start_matches('/'))
}

fn read(p: PathBuf) -> String {
    std::fs::read_to_string(&p).unwrap_or_default().trim().to_string()
}

fn number(p: PathBuf) -> u64 {
    read(p).parse().unwrap_or(0)
}

/// A key's count in a flat-keyed cgroup file (`memory.events`).
fn key_of(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| l.strip_prefix(key)?.strip_prefix(' ')?.trim().parse().ok())
}

/// A busybox rootfs the VM reads from the host (through its overlay).
fn prepared_rootfs() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("cgroup2-rootfs")
}

/// `env.bundle`, with its rootfs copied from [`prepared_rootfs`] when there.
fn bundle(env: &Env, name: &str, args: &[&str], edit: impl FnOnce(&mut serde_json::Value)) -> PathBuf {
    let rootfs = env.dir.join("bundles").join(name).join("rootfs");
    if prepared_rootfs().join("bin/busybox").exists() && !rootfs.exists() {
        std::fs::create_dir_all(rootfs.parent().unwrap()).unwrap();
        let st = Command::new("cp").arg("-a").arg(prepared_rootfs()).arg(&rootfs).status().expect("cp");
        assert!(st.success(), "cp -a {}", prepared_rootfs().display());
    }
    env.bundle(name, args, edit)
}

/// Waits for the holder, our child once orphaned (the test is a child
/// subreaper, as the shim and conmon are): the exit status the engine
/// sees, 128+N for a signal.
fn reap(holder: i32) -> i32 {
    let mut status = 0;
    // SAFETY: waitpid on our (adopted) child with a valid out pointer.
    let r = unsafe { libc::waitpid(holder, &mut status, 0) };
    assert_eq!(r, holder, "waitpid holder");
    if libc::WIFSIGNALED(status) {
        128 + libc::WTERMSIG(status)
    } else {
        libc::WEXITSTATUS(status)
    }
}

/// Runs the `in_vm_*` tests on a cgroup-v2-only host: inside the VM of
/// scripts/cgroup2-vm.sh here (hybrid), or directly on a pure v2 host.
#[test]
fn proxmox_on_cgroup2() {
    let name = "proxmox_on_cgroup2";
    if let Some(why) = proxmox_support::missing(&["lxc-info"]) {
        eprintln!("SKIP {name}: {why}");
        return;
    }
    let exe = std::env::current_exe().expect("test binary path");
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    // The busybox rootfs, made here: ~400 symlinks by as many `ln`
    // processes take minutes under software emulation.
    let rootfs = prepared_rootfs();
    if !rootfs.join("bin/busybox").exists() {
        let st = Command::new(repo.join("bundles/make-rootfs.sh")).arg(&rootfs).stdout(std::process::Stdio::null()).status().expect("make-rootfs.sh");
        assert!(st.success(), "make-rootfs.sh {}", rootfs.display());
    }
    let mut c = if pure_v2() {
        Command::new(&exe)
    } else {
        let mut c = Command::new(repo.join("scripts/cgroup2-vm.sh"));
        // The test binary and the prepared rootfs, wherever the target dir is.
        let target = Path::new(env!("CARGO_TARGET_TMPDIR")).parent().unwrap_or(repo);
        let exe_dir = exe.parent().unwrap_or(repo);
        c.env("NEXCAGE_VM_KEEP", format!("{}:{}", target.display(), exe_dir.display()));
        c.arg(&exe);
        c
    };
    c.args(["--ignored", "--nocapture", "--test-threads=1", "in_vm_"]).current_dir(repo);
    let t = std::time::Instant::now();
    let o = c.output().expect("run scripts/cgroup2-vm.sh");
    let text = format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    if o.status.code() == Some(77) {
        let why = text.lines().find_map(|l| l.strip_prefix("SKIP cgroup2-vm: ")).unwrap_or("the VM cannot run here").to_string();
        if std::env::var("NEXCAGE_REQUIRE_ENGINES").is_ok_and(|v| v == "1") {
            panic!("SKIP {name}: {why} (NEXCAGE_REQUIRE_ENGINES=1 forbids skipping)");
        }
        eprintln!("SKIP {name}: {why}");
        return;
    }
    // What the inner tests measured, and how long the VM took.
    for l in text.lines().filter(|l| l.starts_with("cgroup2:") || l.starts_with("cgroup2-vm:") || l.starts_with("test ")) {
        eprintln!("{l}");
    }
    eprintln!("{name}: {:.0} s", t.elapsed().as_secs_f64());
    assert!(o.status.success() && text.contains("test result: ok. 1 passed"), "in the cgroup-v2 VM (status {:?}):\n{text}", o.status.code());
}

/// The guest in its cgroupsPath with its limits; the holder there too from
/// create on (the shim's read), out of ps, kill --all and pause; the app's
/// /dev/shm in the cgroup the shim read; nothing left afterwards.
#[test]
#[ignore = "needs a cgroup-v2-only host: run by proxmox_on_cgroup2"]
fn in_vm_proxmox_backend_on_cgroup2() {
    assert!(pure_v2(), "not a cgroup-v2-only host");
    // The holder (double-forked by create) becomes our child, as it becomes
    // the shim's or conmon's, so its wait status is the engine's.
    // SAFETY: prctl with integer arguments only.
    assert_eq!(unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) }, 0, "PR_SET_CHILD_SUBREAPER");
    let env: Env = env_or_skip!("cgroup2", "pct", "lxc-info");
    guest_and_holder_share_the_cgroups_path(&env);
    oom_kill_reaches_the_holders_cgroup(&env);
    forced_delete_leaves_no_cgroup(&env);
    for d in [dir(&format!("/kubepods/pod{}", std::process::id())), dir("/kubepods")] {
        let _ = std::fs::remove_dir(d);
    }
    env.assert_clean("cgroup2");
}

fn guest_and_holder_share_the_cgroups_path(env: &Env) {
    let parent = format!("/kubepods/pod{}", std::process::id());
    let cg = format!("{parent}/c1");
    let fill = "head -c 26214400 /dev/zero > /dev/shm/hog && echo filled; trap 'exit 3' TERM; while :; do sleep 0.1; done";
    let b = bundle(env, "cg2", &["sh", "-c", fill], |v| {
        v["linux"]["cgroupsPath"] = serde_json::json!(cg);
        v["linux"]["resources"] = serde_json::json!({"memory": {"limit": 64 * MIB}, "pids": {"limit": 50}});
    });
    let pidf = env.dir.join("cg2.pid");
    let o = env.nx(&["create", "-b", b.to_str().unwrap(), "--pid-file", pidf.to_str().unwrap(), "c1"]);
    assert!(o.status.success(), "create: {}", out(&o));
    let holder: i32 = std::fs::read_to_string(&pidf).unwrap().trim().parse().unwrap();
    let st: serde_json::Value = serde_json::from_slice(&env.nx(&["state", "c1"]).stdout).unwrap();
    let init = st["pid"].as_i64().unwrap() as i32;
    let vmid = env.guests()[0];
    // What the shim reads once, right after create.
    let shim = cgroup_of(holder);
    assert_eq!(shim, cg, "the holder's cgroup after create is not the cgroupsPath");
    assert_eq!(cgroup_of(init), cg, "the guest's cgroup is not the cgroupsPath");
    assert_eq!(read(dir(&cg).join("memory.max")), (64 * MIB).to_string(), "lxc.cgroup2.memory.max");
    assert_eq!(read(dir(&cg).join("pids.max")), "50", "lxc.cgroup2.pids.max");
    let o = env.nx(&["start", "c1"]);
    assert!(o.status.success(), "start: {}", out(&o));
    // It stays (Podman reads /proc/<pid>/cgroup at every `podman stats`).
    assert_eq!(cgroup_of(holder), cg, "the holder's cgroup after start");

    // The app's 25 MiB of /dev/shm in the cgroup the shim read.
    let mut cur = 0;
    let full = wait_until(60, || {
        cur = number(dir(&shim).join("memory.current"));
        cur >= 25 * MIB
    });
    eprintln!("cgroup2: memory.current of the holder's cgroup with 25 MiB in /dev/shm: {:.1} MiB", cur as f64 / MIB as f64);
    assert!(full, "memory.current {cur} B of {shim} does not hold the app's 25 MiB");
    let stats = env.nx(&["events", "--stats", "c1"]);
    let sv: serde_json::Value = serde_json::from_slice(&stats.stdout).unwrap_or_else(|_| panic!("stats: {}", out(&stats)));
    assert!(sv["data"]["memory"]["usage"]["usage"].as_u64().unwrap_or(0) >= 25 * MIB, "{sv}");
    assert_eq!(sv["data"]["memory"]["usage"]["limit"], 64 * MIB, "{sv}");

    // ps and kill --all: the guest alone.
    let ps = env.nx(&["ps", "--format", "json", "c1"]);
    let pids: Vec<i32> = serde_json::from_slice(&ps.stdout).unwrap_or_else(|_| panic!("ps: {}", out(&ps)));
    assert!(pids.contains(&init) && !pids.contains(&holder), "ps {pids:?} (init {init}, holder {holder})");
    // From inside: the container's own cgroup, at its namespace's root, with its limits.
    // The holder shows there as pid 0 (outside the guest's pid namespace).
    let o = env.nx(&["exec", "c1", "sh", "-c", "cat /proc/self/cgroup /sys/fs/cgroup/memory.max /sys/fs/cgroup/pids.max; echo procs; cat /sys/fs/cgroup/cgroup.procs"]);
    assert!(o.status.success(), "exec: {}", out(&o));
    let inside = String::from_utf8_lossy(&o.stdout).into_owned();
    let (head, procs) = inside.split_once("procs\n").unwrap_or_default();
    assert_eq!(head, format!("0::/\n{}\n50\n", 64 * MIB), "from inside: {inside}");
    assert!(procs.lines().any(|l| l == "0") && procs.lines().any(|l| l == "1"), "cgroup.procs from inside: {procs}");

    // pause: the guest frozen, the holder not (it steps into its monitor
    // cgroup, answers LXC's command socket, and comes back at resume).
    assert!(env.nx(&["pause", "c1"]).status.success());
    assert!(read(dir(&cg).join("cgroup.events")).lines().any(|l| l == "frozen 1"), "not frozen");
    assert_eq!(cgroup_of(holder), format!("/lxc.monitor.{vmid}"), "the holder during pause");
    let mut info = env.cmd("lxc-info");
    info.args(["-n", &vmid.to_string(), "-s", "-H", "-P"]).arg(env.dir.join("lxc"));
    let o = proxmox_support::run_to_files(&mut info, &env.dir);
    assert!(o.status.success() && !o.stdout.is_empty(), "lxc-info while paused: {}", out(&o));
    let st: serde_json::Value = serde_json::from_slice(&env.nx(&["state", "c1"]).stdout).unwrap();
    assert_eq!(st["status"], "paused");
    assert!(env.nx(&["resume", "c1"]).status.success());
    assert!(read(dir(&cg).join("cgroup.events")).lines().any(|l| l == "frozen 0"), "not thawed");
    assert_eq!(cgroup_of(holder), cg, "the holder after resume");

    // kill --all reaches the guest's processes, not the holder: it ends as
    // its guest's PID 1 did and records that (a killed holder could not).
    let o = env.nx(&["kill", "--all", "c1", "KILL"]);
    assert!(o.status.success(), "kill --all: {}", out(&o));
    assert!(wait_until(20, || std::fs::read_to_string(format!("/proc/{holder}/stat")).is_ok_and(|s| s.contains(") Z "))), "holder still runs");
    assert_eq!(read(env.root.join("c1/status")), "137", "the holder's recorded status");
    assert_eq!(reap(holder), 137, "the engine-visible exit");
    // LXC removed the guest's and the monitor's dirs (the holder left first).
    let left = || [dir(&cg), dir(&format!("lxc.monitor.{vmid}"))].into_iter().filter(|d| d.exists()).collect::<Vec<_>>();
    assert!(wait_until(10, || left().is_empty()), "cgroups left after the guest ended: {:?}", left());
    let st: serde_json::Value = serde_json::from_slice(&env.nx(&["state", "c1"]).stdout).unwrap();
    assert_eq!(st["status"], "stopped");
    let o = env.nx(&["delete", "c1"]);
    assert!(o.status.success(), "delete: {}", out(&o));
}

/// A container over its memory limit is OOM-killed: the `oom_kill` count
/// of the cgroup the shim read from the holder's /proc/<pid>/cgroup after
/// create goes up (containerd's `OOMKilled`), and the holder, which the
/// engine reaps, ends by SIGKILL (exit 137).
fn oom_kill_reaches_the_holders_cgroup(env: &Env) {
    let parent = format!("/kubepods/pod{}", std::process::id());
    let cg = format!("{parent}/oom");
    // 64 MiB read into dd's buffer under a 32 MiB limit.
    let b = bundle(env, "oom", &["sh", "-c", "exec dd if=/dev/zero of=/dev/null bs=64M count=1"], |v| {
        v["linux"]["cgroupsPath"] = serde_json::json!(cg);
        v["linux"]["resources"] = serde_json::json!({"memory": {"limit": 32 * MIB}});
    });
    let pidf = env.dir.join("oom.pid");
    let o = env.nx(&["create", "-b", b.to_str().unwrap(), "--pid-file", pidf.to_str().unwrap(), "oom"]);
    assert!(o.status.success(), "create: {}", out(&o));
    let holder: i32 = std::fs::read_to_string(&pidf).unwrap().trim().parse().unwrap();
    let shim = dir(&cgroup_of(holder));
    assert_eq!(shim, dir(&cg), "the holder's cgroup after create");
    let events = shim.join("memory.events");
    assert_eq!(key_of(&read(events.clone()), "oom_kill"), Some(0), "{}", read(events.clone()));
    // The shim watches memory.events for as long as the cgroup exists
    // (LXC removes it once the guest has ended).
    let watch = std::thread::spawn(move || {
        let mut most = 0;
        while let Ok(t) = std::fs::read_to_string(&events) {
            most = most.max(key_of(&t, "oom_kill").unwrap_or(0));
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        most
    });
    let o = env.nx(&["start", "oom"]);
    assert!(o.status.success(), "start: {}", out(&o));
    let code = reap(holder);
    let oom_kills = watch.join().expect("watcher");
    eprintln!("cgroup2: OOM: the holder's exit {code}, oom_kill of its cgroup {oom_kills}");
    assert_eq!(code, 137, "the engine-visible exit");
    assert!(oom_kills >= 1, "no oom_kill in {}", shim.display());
    let o = env.nx(&["delete", "oom"]);
    assert!(o.status.success(), "delete: {}", out(&o));
}

/// `delete --force` of a running privileged guest (the `bind` strategy):
/// its monitor is killed, so LXC removes nothing; delete removes the
/// guest's cgroup (once its dying init has left it) and LXC's monitor cgroup.
fn forced_delete_leaves_no_cgroup(env: &Env) {
    let cg = format!("/kubepods/pod{}/forced", std::process::id());
    let b = bundle(env, "forced", &["sleep", "1000"], |v| {
        v["linux"]["cgroupsPath"] = serde_json::json!(cg);
        v["annotations"]["org.nexcage.rootfs-strategy"] = "bind".into();
    });
    let pidf = env.dir.join("forced.pid");
    let o = env.nx(&["create", "-b", b.to_str().unwrap(), "--pid-file", pidf.to_str().unwrap(), "forced"]);
    assert!(o.status.success(), "create: {}", out(&o));
    let holder: i32 = std::fs::read_to_string(&pidf).unwrap().trim().parse().unwrap();
    assert_eq!(cgroup_of(holder), cg, "the holder's cgroup after create");
    let vmid = env.guests()[0];
    assert!(env.nx(&["start", "forced"]).status.success());
    let o = env.nx(&["delete", "--force", "forced"]);
    assert!(o.status.success(), "delete --force: {}", out(&o));
    let left: Vec<PathBuf> = [dir(&cg), dir(&format!("lxc.monitor.{vmid}"))].into_iter().filter(|d| d.exists()).collect();
    assert!(left.is_empty(), "cgroups left by delete --force: {left:?}");
    assert_eq!(reap(holder), 137, "the killed holder");
}
