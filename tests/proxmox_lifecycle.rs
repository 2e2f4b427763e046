//! The Proxmox backend driven directly (as an engine would): lifecycle,
//! exit statuses, kill before/after start, exec, pause, ps, stats, delete,
//! the three rootfs strategies — for both control-plane drivers.

mod proxmox_support;
use proxmox_support::*;

fn lifecycle(driver: &str) {
    let env = env_or_skip!("lifecycle", driver);
    let b = env.bundle("sleep", &["sleep", "100"], |_| {});
    let pidf = env.dir.join("pid");
    let o = env.nx(&["create", "-b", b.to_str().unwrap(), "--pid-file", pidf.to_str().unwrap(), "c1"]);
    assert!(o.status.success(), "create: {}", out(&o));
    let st: serde_json::Value = serde_json::from_slice(&env.nx(&["state", "c1"]).stdout).unwrap();
    assert_eq!(st["status"], "created");
    assert_eq!(st["backend"], "proxmox");
    // The pid file names the holder (what the engine reaps); `state` the
    // guest's PID 1, the holder's child (src/backend/proxmox/README.md, *Pids*).
    let holder = std::fs::read_to_string(&pidf).unwrap().trim().to_string();
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", st["pid"])).unwrap();
    let ppid = stat.rsplit_once(')').and_then(|(_, r)| r.split_whitespace().nth(1)).unwrap_or_default().to_string();
    assert_eq!(ppid, holder, "state pid {}: its parent is not the pid file's holder", st["pid"]);
    let nspid = std::fs::read_to_string(format!("/proc/{}/status", st["pid"])).unwrap();
    assert!(nspid.lines().any(|l| l.starts_with("NSpid:") && l.ends_with("\t1")), "state pid is not the guest's PID 1: {nspid}");
    // Registered, on its own subvol, with an LXC dir.
    let guests = env.guests();
    assert_eq!(guests.len(), 1, "{}", env.pct_list());
    let vmid = guests[0];
    assert_eq!(env.datasets(), vec![format!("{}/data/subvol-{vmid}-disk-0", env.pool)]);
    assert_eq!(env.lxc_dirs(), vec![vmid.to_string()]);

    assert!(env.nx(&["start", "c1"]).status.success());
    let st: serde_json::Value = serde_json::from_slice(&env.nx(&["state", "c1"]).stdout).unwrap();
    assert_eq!(st["status"], "running");
    // An unprivileged guest, as `pct create` makes by default: registered so,
    // and running in Proxmox's id map with its files owned by mapped ids.
    let pc = env.cmd("pct").args(["config", &vmid.to_string()]).output().unwrap();
    assert!(String::from_utf8_lossy(&pc.stdout).contains("unprivileged: 1"), "{}", out(&pc));
    let e = env.nx(&["exec", "c1", "sh", "-c", "cat /proc/self/uid_map; stat -c %u /bin/busybox"]);
    let words: Vec<String> = String::from_utf8_lossy(&e.stdout).split_whitespace().map(String::from).collect();
    assert_eq!(words, ["0", "100000", "65536", "0"], "{}", out(&e));
    // exec runs in the guest (its hostname, its rootfs) and passes the exit status.
    let e = env.nx(&["exec", "c1", "sh", "-c", "cat /proc/1/cmdline | tr '\\0' ' '; exit 3"]);
    assert_eq!(e.status.code(), Some(3), "{}", out(&e));
    // exec --detach: the pid file's process ends the exec when killed.
    let epid = env.dir.join("epid");
    let e = env.nx(&["exec", "--detach", "--pid-file", epid.to_str().unwrap(), "c1", "sleep", "81"]);
    assert!(e.status.success(), "{}", out(&e));
    let p: i32 = std::fs::read_to_string(&epid).unwrap().trim().parse().unwrap();
    assert!(wait_until(5, || String::from_utf8_lossy(&env.nx(&["ps", "c1"]).stdout).contains("sleep 81")));
    assert_eq!(unsafe { libc::kill(p, libc::SIGTERM) }, 0);
    assert!(wait_until(5, || !String::from_utf8_lossy(&env.nx(&["ps", "c1"]).stdout).contains("sleep 81")), "exec'd process survived");
    // The pid is the process itself: SIGKILL (which nothing can forward) ends it too.
    let e = env.nx(&["exec", "--detach", "--pid-file", epid.to_str().unwrap(), "c1", "sleep", "83"]);
    assert!(e.status.success(), "{}", out(&e));
    let p: i32 = std::fs::read_to_string(&epid).unwrap().trim().parse().unwrap();
    assert_eq!(std::fs::read_to_string(format!("/proc/{p}/cmdline")).unwrap(), "sleep\x0083\x00");
    assert_eq!(unsafe { libc::kill(p, libc::SIGKILL) }, 0);
    assert!(wait_until(5, || !String::from_utf8_lossy(&env.nx(&["ps", "c1"]).stdout).contains("sleep 83")), "exec'd process survived SIGKILL");
    // cwd, user and the guest's capability bounding set (its init's) apply to exec.
    let e = env.nx(&["exec", "--cwd", "/etc", "--user", "1000:1000", "c1", "sh", "-c",
        "pwd; id -u; a=$(grep CapBnd /proc/1/status); b=$(grep CapBnd /proc/self/status); [ \"$a\" = \"$b\" ] && echo same-bounding"]);
    assert!(e.status.success(), "{}", out(&e));
    assert_eq!(String::from_utf8_lossy(&e.stdout), "/etc\n1000\nsame-bounding\n", "{}", out(&e));
    // root.readonly (the example bundle's) holds in the guest.
    let e = env.nx(&["exec", "c1", "touch", "/x"]);
    assert!(!e.status.success() && String::from_utf8_lossy(&e.stderr).contains("Read-only file system"), "{}", out(&e));
    let e = env.nx(&["exec", "c1", "no-such-command"]);
    assert!(!e.status.success());
    assert!(String::from_utf8_lossy(&e.stderr).contains("executable file not found in $PATH"), "{}", out(&e));
    let ps = env.nx(&["ps", "c1"]);
    assert!(ps.status.success() && String::from_utf8_lossy(&ps.stdout).contains("sleep"), "{}", out(&ps));
    let stats = env.nx(&["events", "--stats", "c1"]);
    assert!(stats.status.success(), "{}", out(&stats));
    let sv: serde_json::Value = serde_json::from_slice(&stats.stdout).unwrap();
    assert!(sv["data"]["memory"]["usage"]["usage"].as_u64().unwrap_or(0) > 0, "{sv}");
    assert!(sv["data"]["pids"]["current"].as_u64().unwrap_or(0) >= 1, "{sv}");
    assert!(env.nx(&["pause", "c1"]).status.success());
    let st: serde_json::Value = serde_json::from_slice(&env.nx(&["state", "c1"]).stdout).unwrap();
    assert_eq!(st["status"], "paused");
    assert!(env.nx(&["resume", "c1"]).status.success());
    // delete --force of a paused guest: frozen processes die only once thawed.
    let b2 = env.bundle("paused", &["sleep", "100"], |_| {});
    assert!(env.nx(&["create", "-b", b2.to_str().unwrap(), "c2"]).status.success());
    assert!(env.nx(&["start", "c2"]).status.success());
    assert!(env.nx(&["pause", "c2"]).status.success());
    let d = env.nx(&["delete", "--force", "c2"]);
    assert!(d.status.success(), "{}", out(&d));
    assert_eq!(env.guests().len(), 1, "{}", env.pct_list());
    assert_eq!(env.datasets().len(), 1, "paused guest's dataset left: {:?}", env.datasets());

    // --all reaches every process of the guest's cgroup.
    let e = env.nx(&["exec", "--detach", "c1", "sleep", "82"]);
    assert!(e.status.success(), "{}", out(&e));
    assert!(env.nx(&["kill", "--all", "c1", "KILL"]).status.success());
    assert!(wait_until(10, || String::from_utf8_lossy(&env.nx(&["state", "c1"]).stdout).contains("stopped")));
    let d = env.nx(&["delete", "c1"]);
    assert!(d.status.success(), "{}", out(&d));
    env.assert_clean("after delete");
    // delete --force of a gone container succeeds.
    assert!(env.nx(&["delete", "--force", "c1"]).status.success());
}

#[test]
fn lifecycle_pct() {
    lifecycle("pct");
}

#[test]
fn lifecycle_api() {
    lifecycle("api");
}

/// Exit statuses through `run` (the holder's status is the container's).
#[test]
fn run_exit_status() {
    let env = env_or_skip!("run_exit_status", "pct");
    let b = env.bundle("seven", &["sh", "-c", "echo out; echo err >&2; exit 7"], |_| {});
    let o = env.nx(&["run", "-b", b.to_str().unwrap(), "r7"]);
    assert_eq!(o.status.code(), Some(7), "{}", out(&o));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "out\n");
    assert!(String::from_utf8_lossy(&o.stderr).contains("err"));
    env.assert_clean("after run");
}

/// SIGKILL of the container reports 137, not lxc-execute's 1.
#[test]
fn sigkill_reports_137() {
    let env = env_or_skip!("sigkill", "pct");
    let b = env.bundle("sleep", &["sleep", "100"], |_| {});
    let log = env.dir.join("create.log");
    let f = std::fs::File::create(&log).unwrap();
    let mut c = env.cmd(nexcage());
    c.arg("--root").arg(&env.root).args(["run", "-b", b.to_str().unwrap(), "k9"]).stdout(f.try_clone().unwrap()).stderr(f);
    let mut child = c.spawn().unwrap();
    assert!(wait_until(10, || String::from_utf8_lossy(&env.nx(&["state", "k9"]).stdout).contains("running")));
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(env.nx(&["kill", "k9", "9"]).status.success());
    let st = child.wait().unwrap();
    assert_eq!(st.code(), Some(137), "{}", std::fs::read_to_string(&log).unwrap_or_default());
    env.assert_clean("after run");
}

/// A created container has only the holder: killing it stops the container.
#[test]
fn kill_before_start() {
    let env = env_or_skip!("kill_before_start", "pct");
    let b = env.bundle("sleep", &["sleep", "100"], |_| {});
    assert!(env.nx(&["create", "-b", b.to_str().unwrap(), "kb"]).status.success());
    assert!(env.nx(&["kill", "kb", "TERM"]).status.success());
    assert!(wait_until(5, || String::from_utf8_lossy(&env.nx(&["state", "kb"]).stdout).contains("stopped")));
    assert!(env.nx(&["delete", "kb"]).status.success());
    env.assert_clean("after delete");
}

/// copy, clone and bind strategies.
#[test]
fn strategies() {
    let env = env_or_skip!("strategies", "pct");
    for strat in ["copy", "clone", "bind"] {
        // Unprivileged (Proxmox's id map, owners shifted) except bind, whose
        // rootfs cannot be shifted: that guest keeps the host's ids.
        let b = env.bundle(&format!("s-{strat}"), &["sh", "-c", "test -x /bin/busybox && touch /w && cat /proc/self/uid_map"], |v| {
            v["annotations"] = serde_json::json!({"org.nexcage.rootfs-strategy": strat, "org.nexcage.disk-size": "256M"});
            v["root"]["readonly"] = false.into();
        });
        let o = env.nx(&["run", "-b", b.to_str().unwrap(), &format!("s-{strat}")]);
        assert_eq!(o.status.code(), Some(0), "{strat}: {}", out(&o));
        let map: Vec<String> = String::from_utf8_lossy(&o.stdout).split_whitespace().map(String::from).collect();
        let want = if strat == "bind" { ["0", "0", "4294967295"] } else { ["0", "100000", "65536"] };
        assert_eq!(map, want, "{strat}: {}", out(&o));
        env.assert_clean(strat);
    }
    // The clone base stays for the next clone (that is what makes it O(1)).
    let o = std::process::Command::new("zfs").args(["list", "-H", "-t", "snapshot", "-o", "name", "-r"]).arg(&env.pool).output().unwrap();
    assert!(String::from_utf8_lossy(&o.stdout).contains("@__base__"));
}

/// The host's network (`podman --network host`): unprivileged still, with
/// the host's /sys bound read-only (sysfs cannot be mounted for a network
/// namespace the guest's user namespace does not own).
#[test]
fn host_network() {
    let env = env_or_skip!("hostnet", "pct");
    let b = env.bundle("hostnet", &["sh", "-c", "cat /proc/self/uid_map; test -d /sys/class/net && echo sys"], |v| {
        let ns = v["linux"]["namespaces"].as_array_mut().unwrap();
        ns.retain(|n| n["type"] != "network");
    });
    let o = env.nx(&["run", "-b", b.to_str().unwrap(), "hn"]);
    assert_eq!(o.status.code(), Some(0), "{}", out(&o));
    let words: Vec<String> = String::from_utf8_lossy(&o.stdout).split_whitespace().map(String::from).collect();
    assert_eq!(words, ["0", "100000", "65536", "sys"], "{}", out(&o));
    env.assert_clean("host network");
}

/// OCI hooks run on the host with the state on stdin: prestart and
/// createRuntime at create (a failure fails create and leaves nothing),
/// poststart after start, poststop after delete; createContainer and
/// startContainer in the guest.
#[test]
fn hooks() {
    let env = env_or_skip!("hooks", "pct");
    let out_dir = env.dir.join("hooks-out");
    std::fs::create_dir_all(&out_dir).unwrap();
    let hook = |name: &str| serde_json::json!({"path": "/bin/sh", "args": ["sh", "-c", format!("cat > {}/{name}.json", out_dir.display())]});
    let b = env.bundle("hooked", &["true"], |v| {
        v["hooks"] = serde_json::json!({"prestart": [hook("prestart")], "createRuntime": [hook("createRuntime")],
            "poststart": [hook("poststart")], "poststop": [hook("poststop")]});
    });
    let o = env.nx(&["run", "-b", b.to_str().unwrap(), "hk"]);
    assert_eq!(o.status.code(), Some(0), "{}", out(&o));
    for (name, status) in [("prestart", "created"), ("createRuntime", "created"), ("poststart", "running"), ("poststop", "stopped")] {
        let text = std::fs::read_to_string(out_dir.join(format!("{name}.json"))).unwrap_or_else(|e| panic!("{name} did not run: {e}"));
        let st: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!((st["id"].as_str(), st["status"].as_str()), (Some("hk"), Some(status)), "{name}: {st}");
    }
    env.assert_clean("after a hooked run");
    let b = env.bundle("badhook", &["true"], |v| {
        v["hooks"] = serde_json::json!({"createRuntime": [{"path": "/bin/false"}]});
    });
    let o = env.nx(&["create", "-b", b.to_str().unwrap(), "bad"]);
    assert!(!o.status.success() && String::from_utf8_lossy(&o.stderr).contains("hook /bin/false failed"), "{}", out(&o));
    env.assert_clean("after a failing createRuntime hook");
    // createContainer and startContainer run in the guest (its pid and
    // mount namespaces: /proc/1 is the guest's PID 1), with the state on stdin.
    let guest_hook = |name: &str| {
        let d = out_dir.display();
        serde_json::json!({"path": "/bin/sh", "args": ["sh", "-c", format!("cat > {d}/{name}.json; tr '\\0' ' ' < /proc/1/cmdline > {d}/{name}.init")]})
    };
    let b = env.bundle("cchook", &["sh", "-c", &format!("echo process > {}/process", out_dir.display())], |v| {
        v["mounts"].as_array_mut().unwrap().push(serde_json::json!({"destination": out_dir, "type": "bind", "source": out_dir, "options": ["rbind", "rw"]}));
        v["hooks"] = serde_json::json!({"createContainer": [guest_hook("createContainer")], "startContainer": [guest_hook("startContainer")]});
    });
    std::fs::set_permissions(&out_dir, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    let o = env.nx(&["run", "-b", b.to_str().unwrap(), "cc"]);
    assert_eq!(o.status.code(), Some(0), "{}", out(&o));
    for name in ["createContainer", "startContainer"] {
        let init = std::fs::read_to_string(out_dir.join(format!("{name}.init"))).unwrap_or_else(|e| panic!("{name} did not run: {e}"));
        assert_eq!(init, "/.nexcage/nexcage-init wait ", "{name} did not run in the guest");
        let st: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out_dir.join(format!("{name}.json"))).unwrap()).unwrap();
        assert!(st["pid"].as_i64().is_some_and(|p| p > 0), "{name}: {st}");
    }
    assert!(out_dir.join("process").exists());
    env.assert_clean("after guest hooks");
    // A failing startContainer hook fails start; the process never runs.
    let _ = std::fs::remove_file(out_dir.join("process"));
    let b = env.bundle("schook", &["sh", "-c", &format!("echo process > {}/process", out_dir.display())], |v| {
        v["mounts"].as_array_mut().unwrap().push(serde_json::json!({"destination": out_dir, "type": "bind", "source": out_dir, "options": ["rbind", "rw"]}));
        v["hooks"] = serde_json::json!({"startContainer": [{"path": "/bin/false"}]});
    });
    assert!(env.nx(&["create", "-b", b.to_str().unwrap(), "sc"]).status.success());
    let o = env.nx(&["start", "sc"]);
    assert!(!o.status.success() && String::from_utf8_lossy(&o.stderr).contains("startContainer hook /bin/false failed"), "{}", out(&o));
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(!out_dir.join("process").exists(), "the process ran after a failing startContainer hook");
    assert!(env.nx(&["delete", "-f", "sc"]).status.success());
    env.assert_clean("after a failing startContainer hook");
}

/// A program the rootfs does not have fails create (as with runc), and
/// nothing is left: no guest that starts and exits 1.
#[test]
fn missing_program() {
    let env = env_or_skip!("noprog", "pct");
    let b = env.bundle("noprog", &["no-such-program"], |_| {});
    let o = env.nx(&["create", "-b", b.to_str().unwrap(), "np"]);
    assert!(!o.status.success(), "{}", out(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("\"no-such-program\": executable file not found in $PATH"), "{}", out(&o));
    env.assert_clean("after a missing program");
}
