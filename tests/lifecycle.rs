//! Direct bundle use, as an engine drives it: create -> created with a live
//! pid -> start -> running -> kill -> stopped -> delete -> gone; `run` exit codes.

mod support;
use support::*;

#[test]
fn create_start_kill_delete() {
    let s = Scratch::new("life");
    let root = s.path().join("root");
    let b = bundle(s.path(), "b", &["sleep", "100"], |_| {});
    let pid_file = s.path().join("pid");
    let st = nx_detached(&root, &["create", "--bundle", b.to_str().unwrap(), "--pid-file", pid_file.to_str().unwrap(), "life-c1"], &s.path().join("out"));
    assert!(st.success(), "create: {}", std::fs::read_to_string(s.path().join("out")).unwrap());

    let v = state(&root, "life-c1").expect("state after create");
    assert_eq!(v["status"], "created");
    assert_eq!(v["id"], "life-c1");
    assert_eq!(v["bundle"], b.to_str().unwrap());
    let pid = v["pid"].as_i64().unwrap();
    assert!(pid > 0);
    assert_eq!(std::fs::read_to_string(&pid_file).unwrap().trim(), pid.to_string(), "pid file is a bare decimal");
    assert!(std::path::Path::new(&format!("/proc/{pid}")).exists(), "created pid is alive");

    assert!(nx(&root, &["start", "life-c1"]).status.success());
    assert_eq!(status_of(&root, "life-c1"), "running");
    let again = nx(&root, &["start", "life-c1"]);
    assert!(!again.status.success(), "start twice must fail");

    // sleep is PID 1 of its namespace and ignores TERM: KILL it.
    assert!(nx(&root, &["kill", "life-c1", "KILL"]).status.success());
    assert!(wait_status(&root, "life-c1", "stopped"));
    let k = nx(&root, &["kill", "life-c1", "TERM"]);
    assert!(!k.status.success() && stderr(&k).contains("container not running"), "{}", stderr(&k));

    assert!(nx(&root, &["delete", "life-c1"]).status.success());
    let gone = nx(&root, &["state", "life-c1"]);
    assert!(!gone.status.success());
    assert!(stderr(&gone).contains("does not exist"), "{}", stderr(&gone));
    assert!(!root.join("life-c1").exists());
}

#[test]
fn run_returns_exit_status() {
    let s = Scratch::new("runexit");
    let root = s.path().join("root");
    let b = bundle(s.path(), "b7", &["sh", "-c", "echo out; echo err >&2; exit 7"], |_| {});
    let o = nx(&root, &["run", "--bundle", b.to_str().unwrap(), "life-r7"]);
    assert_eq!(o.status.code(), Some(7));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "out\n");
    assert!(stderr(&o).contains("err"));
    assert!(!root.join("life-r7").exists(), "run removes the container afterwards");
}

/// `run` in the foreground with `process.terminal` and no
/// --console-socket: as runc, nexcage takes the pty and relays it (the
/// process's stdio is a pty; its output reaches nexcage's stdout), also
/// without a terminal of nexcage's own; `exec -t` alike.
#[test]
fn foreground_terminal_is_relayed() {
    let s = Scratch::new("runtty");
    let root = s.path().join("root");
    let b = bundle(s.path(), "bt", &["sh", "-c", "tty; echo out; exit 5"], |spec| spec["process"]["terminal"] = true.into());
    let o = nx(&root, &["run", "--bundle", b.to_str().unwrap(), "life-tty"]);
    assert_eq!(o.status.code(), Some(5), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("/dev/pts/") && text.contains("out"), "{text}");
    let b = bundle(s.path(), "bs", &["sleep", "100"], |_| {});
    assert!(nx_detached(&root, &["run", "-d", "--bundle", b.to_str().unwrap(), "life-ttye"], &s.path().join("out")).success());
    let o = nx(&root, &["exec", "-t", "life-ttye", "sh", "-c", "tty; exit 4"]);
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("/dev/pts/"), "{}", String::from_utf8_lossy(&o.stdout));
    assert!(nx(&root, &["delete", "-f", "life-ttye"]).status.success());
}

#[test]
fn run_killed_by_sigterm_gives_143() {
    let s = Scratch::new("run143");
    let root = s.path().join("root");
    // Without a pid namespace the shell is not PID 1, so TERM's default action applies.
    let b = bundle(s.path(), "b", &["sh", "-c", "kill -TERM $$; sleep 5"], |spec| {
        let ns = spec["linux"]["namespaces"].as_array_mut().unwrap();
        ns.retain(|n| n["type"] != "pid");
    });
    let o = nx(&root, &["run", "--bundle", b.to_str().unwrap(), "life-r143"]);
    assert_eq!(o.status.code(), Some(143), "{}", stderr(&o));
}

#[test]
fn kill_signal_forms_and_all() {
    let s = Scratch::new("killforms");
    let root = s.path().join("root");
    let b = bundle(s.path(), "b", &["sh", "-c", "trap 'echo got-usr1' USR1; sleep 100 & while kill -0 $! 2>/dev/null; do wait; done"], |_| {});
    let out = s.path().join("out");
    assert!(nx_detached(&root, &["create", "--bundle", b.to_str().unwrap(), "life-k1"], &out).success());
    assert!(nx(&root, &["start", "life-k1"]).status.success());
    // 0 as in runc: only checks that the init exists
    for sig in ["10", "USR1", "SIGUSR1", "0"] {
        let o = nx(&root, &["kill", "life-k1", sig]);
        assert!(o.status.success(), "kill {sig}: {}", stderr(&o));
    }
    let bad = nx(&root, &["kill", "life-k1", "NOPE"]);
    assert!(!bad.status.success());
    assert_eq!(status_of(&root, "life-k1"), "running");
    // The shell forks `sleep` after start returns: under load that can take
    // a moment, so wait (bounded) for ps to list both.
    let mut pids: Vec<i32> = Vec::new();
    for _ in 0..50 {
        let ps = nx(&root, &["ps", "--format", "json", "life-k1"]);
        pids = serde_json::from_slice(&ps.stdout).unwrap();
        if pids.len() >= 2 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(pids.len() >= 2, "sh and sleep: {pids:?}");
    assert!(nx(&root, &["kill", "--all", "life-k1", "KILL"]).status.success());
    assert!(wait_status(&root, "life-k1", "stopped"));
    assert!(nx(&root, &["delete", "life-k1"]).status.success());
}

#[test]
fn pause_resume_and_stats() {
    let s = Scratch::new("pause");
    let root = s.path().join("root");
    let b = bundle(s.path(), "b", &["sleep", "100"], |_| {});
    assert!(nx_detached(&root, &["create", "--bundle", b.to_str().unwrap(), "life-p1"], &s.path().join("out")).success());
    assert!(nx(&root, &["start", "life-p1"]).status.success());
    assert!(nx(&root, &["pause", "life-p1"]).status.success());
    assert_eq!(status_of(&root, "life-p1"), "paused");
    let ev = nx(&root, &["events", "--stats", "life-p1"]);
    let v: serde_json::Value = serde_json::from_slice(&ev.stdout).unwrap();
    assert_eq!(v["type"], "stats");
    assert!(v["data"]["pids"]["current"].as_u64().unwrap() >= 1, "{v}");
    assert!(nx(&root, &["resume", "life-p1"]).status.success());
    assert_eq!(status_of(&root, "life-p1"), "running");
    assert!(nx(&root, &["update", "--memory", "64m", "--pids-limit", "50", "life-p1"]).status.success());
    assert!(nx(&root, &["delete", "--force", "life-p1"]).status.success());
    assert!(!cgroup_exists("life-p1"), "delete removes the cgroup");
}

/// `delete --force` of a paused container with children: all killed, the
/// cgroup gone (v1 frozen tasks take no SIGKILL: it once failed after its
/// 10 s bound and left the container).
#[test]
fn delete_force_of_paused_container() {
    let s = Scratch::new("pausedel");
    let root = s.path().join("root");
    let b = bundle(s.path(), "b", &["sh", "-c", "for i in 1 2 3 4 5; do sleep 100 & done; wait"], |_| {});
    assert!(nx_detached(&root, &["create", "--bundle", b.to_str().unwrap(), "life-pd"], &s.path().join("out")).success());
    assert!(nx(&root, &["start", "life-pd"]).status.success());
    assert!(nx(&root, &["pause", "life-pd"]).status.success());
    let t = std::time::Instant::now();
    let d = nx(&root, &["delete", "--force", "life-pd"]);
    assert!(d.status.success(), "{}", stderr(&d));
    assert!(t.elapsed() < std::time::Duration::from_secs(5), "took {:?}", t.elapsed());
    assert!(nx(&root, &["list", "-q"]).stdout.is_empty());
    assert!(!cgroup_exists("life-pd"), "delete removes the cgroup");
}

/// The container's cgroup v1 `controller` directory (None on cgroup v2).
fn v1_cgroup_dir(pid: i64, controller: &str) -> Option<std::path::PathBuf> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    let line = text.lines().find(|l| l.split(':').nth(1).is_some_and(|c| c.split(',').any(|x| x == controller)))?;
    let path = line.splitn(3, ':').nth(2)?;
    Some(std::path::Path::new("/sys/fs/cgroup").join(controller).join(path.trim_start_matches('/')))
}

/// As runc 1.1.5: `update` with 0 or "" leaves a limit unchanged and exits 0;
/// `events --stats` gives cpu user/kernel in nanoseconds (cgroup v1
/// `cpuacct.stat` counts clock ticks: nexcage once printed "user":39 where
/// runc printed 410000000).
#[test]
fn update_zero_keeps_limits_and_stats_cpu_is_ns() {
    let s = Scratch::new("updzero");
    let root = s.path().join("root");
    let burn = "i=0; while [ $i -lt 400000 ]; do i=$((i+1)); done; sleep 100";
    let b = bundle(s.path(), "b", &["sh", "-c", burn], |_| {});
    assert!(nx_detached(&root, &["create", "--bundle", b.to_str().unwrap(), "life-u0"], &s.path().join("out")).success());
    assert!(nx(&root, &["start", "life-u0"]).status.success());
    let o = nx(&root, &["update", "--memory", "64m", "--cpu-period", "100000", "--cpuset-cpus", "0", "life-u0"]);
    assert!(o.status.success(), "{}", stderr(&o));
    for flags in [&["--memory", "0"][..], &["--memory", ""], &["--cpu-period", "0"], &["--cpuset-cpus", ""], &["--cpu-shares", "0", "--cpu-quota", "0", "--pids-limit", "0", "--blkio-weight", "0", "--memory-reservation", ""]] {
        let o = nx(&root, &[&["update"], flags, &["life-u0"]].concat());
        assert!(o.status.success(), "update {flags:?}: {}", stderr(&o));
    }
    let pid = state(&root, "life-u0").unwrap()["pid"].as_i64().unwrap();
    if let Some(mem) = v1_cgroup_dir(pid, "memory") {
        assert_eq!(std::fs::read_to_string(mem.join("memory.limit_in_bytes")).unwrap().trim(), (64 << 20).to_string());
        let cpus = v1_cgroup_dir(pid, "cpuset").unwrap().join("cpuset.cpus");
        assert_eq!(std::fs::read_to_string(cpus).unwrap().trim(), "0");
    }
    let mut u = serde_json::Value::Null;
    let busy = wait_until(60, || {
        let ev = nx(&root, &["events", "--stats", "life-u0"]);
        let v: serde_json::Value = serde_json::from_slice(&ev.stdout).unwrap();
        u = v["data"]["cpu"]["usage"].clone();
        u["total"].as_u64().unwrap() > 300_000_000
    });
    assert!(busy, "the loop used cpu: {u}");
    let (total, user, kernel) = (u["total"].as_u64().unwrap(), u["user"].as_u64().unwrap(), u["kernel"].as_u64().unwrap());
    // Ticks are 10 ms: user+kernel is the total to within a few ticks, not
    // a billionth of it.
    assert!(user + kernel > total / 2 && user + kernel < total * 2 + 100_000_000, "{u}");
    assert!(nx(&root, &["delete", "--force", "life-u0"]).status.success());
}

#[test]
fn exec_runs_in_the_container() {
    let s = Scratch::new("exec");
    let root = s.path().join("root");
    let b = bundle(s.path(), "b", &["sleep", "100"], |spec| spec["hostname"] = "exechost".into());
    assert!(nx_detached(&root, &["create", "--bundle", b.to_str().unwrap(), "life-e1"], &s.path().join("out")).success());
    assert!(nx(&root, &["start", "life-e1"]).status.success());
    let o = nx(&root, &["exec", "--env", "X=42", "--cwd", "/tmp", "life-e1", "sh", "-c", "echo $(hostname) $X $(pwd); exit 3"]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "exechost 42 /tmp");
    // A relative --cwd is refused in runc's words, with exec's 255.
    let o = nx(&root, &["exec", "--cwd", "tmp", "life-e1", "pwd"]);
    assert_eq!(o.status.code(), Some(255), "{}", stderr(&o));
    assert!(stderr(&o).contains("Cwd must be an absolute path"), "{}", stderr(&o));
    let l = nx(&root, &["list", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&l.stdout).unwrap();
    assert_eq!(v[0]["id"], "life-e1");
    // A failed exec reaps libcontainer's intermediate and init: under a
    // subreaper that never reaps (as an engine's shim may be late to), none
    // of them is left a zombie (they were, and a later kill waited on them).
    let script = r#"
import ctypes, os, subprocess, sys, time
ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
rc = subprocess.run(sys.argv[1:], stderr=subprocess.DEVNULL).returncode
time.sleep(0.3)
zombies = []
for p in filter(str.isdigit, os.listdir('/proc')):
    try:
        st = open(f'/proc/{p}/stat').read()
    except OSError:
        continue
    rest = st[st.rindex(')') + 2:].split()
    if rest[0] == 'Z' and int(rest[1]) == os.getpid():
        zombies.append(st[:st.rindex(')') + 1])
print(rc, zombies)
"#;
    let o = std::process::Command::new("python3")
        .args(["-c", script, env!("CARGO_BIN_EXE_nexcage"), "--root", root.to_str().unwrap(), "exec", "life-e1", "/no/such/program"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "255 []", "{}", String::from_utf8_lossy(&o.stderr));
    assert!(nx(&root, &["delete", "--force", "life-e1"]).status.success());
    let o = nx(&root, &["exec", "life-e1", "true"]);
    assert!(stderr(&o).contains("does not exist"));
}

#[test]
fn loopback_is_up_in_a_new_network_namespace() {
    let s = Scratch::new("loopback");
    let root = s.path().join("root");
    let b = bundle(s.path(), "b", &["ip", "link", "show", "lo"], |_| {});
    let o = nx(&root, &["run", "--bundle", b.to_str().unwrap(), "life-lo"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("LOOPBACK,UP"), "lo must be up, as runc leaves it: {out}");
}
