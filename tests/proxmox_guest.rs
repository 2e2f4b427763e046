//! The guest exists at create (issue 13): LXC sets it up with nexcage-init
//! as PID 1 waiting for start; start hands it the process, which becomes
//! the guest's PID 1 and gets the stop signal itself; the holder exits with
//! the application's status; setup errors fail create with LXC's words.

mod proxmox_support;
use proxmox_support::*;

/// A `runc spec` bundle whose rootfs has only /bin/busybox (no /dev, /proc,
/// /sys; root read-only, as `runc spec` writes it) runs and prints.
#[test]
fn runc_spec_bundle_with_only_busybox() {
    let env = env_or_skip!("minimal", "pct", "runc");
    let full = env.bundle("full", &["true"], |_| {});
    let b = env.dir.join("bundles/minimal");
    std::fs::create_dir_all(b.join("rootfs/bin")).unwrap();
    std::fs::copy(full.join("rootfs/bin/busybox"), b.join("rootfs/bin/busybox")).unwrap();
    let o = env.cmd("runc").arg("spec").current_dir(&b).output().unwrap();
    assert!(o.status.success(), "runc spec: {}", out(&o));
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(b.join("config.json")).unwrap()).unwrap();
    assert_eq!(v["root"]["readonly"], true);
    v["process"]["terminal"] = false.into();
    v["process"]["args"] = serde_json::json!(["busybox", "echo", "hello from busybox"]);
    std::fs::write(b.join("config.json"), serde_json::to_vec(&v).unwrap()).unwrap();
    // With --log (as engines run it), runtime noise goes there, not to the container's stderr.
    let log = env.dir.join("nx.log");
    let o = env.nx(&["--log", log.to_str().unwrap(), "run", "-b", b.to_str().unwrap(), "mini"]);
    assert_eq!(o.status.code(), Some(0), "{}", out(&o));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "hello from busybox\n", "{}", out(&o));
    // Only the application's output: no runtime or LXC line.
    assert_eq!(String::from_utf8_lossy(&o.stderr), "", "{}", out(&o));
    env.assert_clean("after run");
}

/// A `runc spec` bundle as written (`process.terminal` true) runs in the
/// foreground without --console-socket, as under runc: nexcage relays the
/// guest's pty to its stdio; `exec -t` alike.
#[test]
fn foreground_terminal_is_relayed() {
    let env = env_or_skip!("tty", "api");
    let b = env.bundle("tty", &["sh", "-c", "tty; echo out; exit 5"], |v| v["process"]["terminal"] = true.into());
    let o = env.nx(&["run", "-b", b.to_str().unwrap(), "tty"]);
    assert_eq!(o.status.code(), Some(5), "{}", out(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("/dev/") && !text.contains("not a tty") && text.contains("out"), "{}", out(&o));
    let b = env.bundle("ttyexec", &["sleep", "100"], |_| {});
    let o = env.nx(&["run", "-d", "-b", b.to_str().unwrap(), "ttye"]);
    assert!(o.status.success(), "{}", out(&o));
    let o = env.nx(&["exec", "-t", "ttye", "sh", "-c", "tty; exit 4"]);
    assert_eq!(o.status.code(), Some(4), "{}", out(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("/dev/pts/"), "{}", out(&o));
    assert!(env.nx(&["delete", "-f", "ttye"]).status.success());
    // The pty is the shell's controlling terminal (as under runc): ^C
    // interrupts its foreground job. `script` gives nexcage a terminal and
    // passes what the test types.
    let b = env.bundle("ttyctl", &["sh"], |v| v["process"]["terminal"] = true.into());
    let cmd = format!("{} --root {} run -b {} ttyc", nexcage().display(), env.root.display(), b.display());
    let mut child = env.cmd("script").args(["-qec", &cmd, "/dev/null"]).stdin(std::process::Stdio::piped()).stdout(std::process::Stdio::piped()).spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let typed = |w: &mut std::process::ChildStdin, s: &[u8], pause: u64| {
        std::io::Write::write_all(w, s).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(pause));
    };
    std::thread::sleep(std::time::Duration::from_secs(3));
    typed(&mut stdin, b"sleep 100\n", 1000);
    typed(&mut stdin, b"\x03", 1000);
    typed(&mut stdin, b"echo rc=$?; exit 3\n", 0);
    let o = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("rc=130"), "^C did not interrupt the shell's job: {text}");
    env.assert_clean("after the terminal runs");
}

/// A guest LXC cannot start fails create with LXC's own words in one
/// line on stderr: nexcage's, quoting them; none of LXC's lines reach
/// stderr themselves (the holder's stderr is the container's).
#[test]
fn lxc_failure_is_one_line() {
    let env = env_or_skip!("lxcfail", "api");
    let b = env.bundle("lxcfail", &["true"], |v| v["process"]["rlimits"] = serde_json::json!([{"type":"RLIMIT_NOFILE","hard":1,"soft":2}]));
    let o = env.nx(&["create", "-b", b.to_str().unwrap(), "lf"]);
    assert!(!o.status.success(), "{}", out(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("nexcage: LXC could not start the guest: ") && err.contains("limit"), "{err}");
    env.assert_clean("after the failed create");
}

/// A program the rootfs lacks fails create with runc's words, on stderr and
/// in the JSON log, and nothing is left.
#[test]
fn missing_program_in_json_log() {
    let env = env_or_skip!("noprog-log", "pct");
    let b = env.bundle("noprog", &["/no/such/program"], |_| {});
    let log = env.dir.join("nx.log");
    let o = env.nx(&["--log", log.to_str().unwrap(), "--log-format", "json", "create", "-b", b.to_str().unwrap(), "np"]);
    assert!(!o.status.success(), "{}", out(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("no such file or directory"), "{}", out(&o));
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    let line = text.lines().filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok()).find(|j| j["level"] == "error");
    assert!(line.is_some_and(|j| j["msg"].as_str().unwrap_or_default().contains("no such file or directory")), "{text}");
    env.assert_clean("after a missing program");
}

/// The created guest runs nexcage-init as PID 1 (the state's pid is the
/// holder, the engine's to reap); after start the application is PID 1 and
/// its grace period is its own: TERM → it prints, sleeps 3 s, exits 0.
#[test]
fn grace_period_is_the_applications() {
    let env = env_or_skip!("grace", "pct");
    let script = "trap 'echo got-term; sleep 3; echo bye; exit 0' TERM; echo ready; sleep 1000 & wait";
    let b = env.bundle("grace", &["sh", "-c", script], |_| {});
    let log = env.dir.join("run.out");
    let f = std::fs::File::create(&log).unwrap();
    let mut c = env.cmd(nexcage());
    let nxlog = env.dir.join("nx.log");
    c.arg("--root").arg(&env.root).arg("--log").arg(&nxlog).args(["run", "-b", b.to_str().unwrap(), "g1"]).stdout(f.try_clone().unwrap()).stderr(f);
    let mut child = c.spawn().unwrap();
    assert!(wait_until(20, || std::fs::read_to_string(&log).unwrap_or_default().contains("ready")), "{}", std::fs::read_to_string(&log).unwrap_or_default());
    // The application is the guest's PID 1.
    let e = env.nx(&["exec", "g1", "cat", "/proc/1/cmdline"]);
    assert!(String::from_utf8_lossy(&e.stdout).starts_with("sh\0-c\0trap"), "{}", out(&e));
    let t0 = std::time::Instant::now();
    assert!(env.nx(&["kill", "g1", "TERM"]).status.success());
    let st = child.wait().unwrap();
    let took = t0.elapsed();
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert_eq!(st.code(), Some(0), "{text}");
    assert!(took >= std::time::Duration::from_millis(2800), "stopped after {took:?}: {text}");
    assert_eq!(text, "ready\ngot-term\nbye\n");
    env.assert_clean("after run");
}

/// An exec that fails in the guest at start (a script whose interpreter
/// the rootfs lacks: the program exists, so create accepts it, as runc's
/// does) fails start every time with the status the engine will see, 127;
/// start never exits 0 with a dead container. Before the fix, 2 to 21 of
/// 25 such starts exited 0: the exiting init, whose `/proc/<pid>/exe` was
/// already gone, counted as one that had exec'd the process.
#[test]
fn exec_failure_fails_start_every_time() {
    let env = env_or_skip!("execfail", "pct");
    let b = env.bundle("noint", &["/bin/noint"], |_| {});
    let prog = b.join("rootfs/bin/noint");
    std::fs::write(&prog, "#!/no/such/interpreter\necho hi\n").unwrap();
    std::fs::set_permissions(&prog, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    create_start_delete(&env, &b, "ef", |i, s| {
        assert!(!s.status.success(), "start {i} exited 0 though the exec failed: {}", out(s));
        assert!(String::from_utf8_lossy(&s.stderr).contains("did not start (status 127"), "start {i}: {}", out(s));
    });
    env.assert_clean("after failed starts");
}

/// A program that runs and exits at once with 127 (a shell that cannot find
/// a command) did start: start exits 0 as runc's does, every time. The
/// init tells its own failed exec apart by
/// writing to its `ready` FIFO; `/proc` alone cannot tell the two once the
/// process is exiting.
#[test]
fn quick_exit_127_is_a_start() {
    let env = env_or_skip!("quick127", "pct");
    let b = env.bundle("quick127", &["sh", "-c", "exit 127"], |_| {});
    create_start_delete(&env, &b, "q", |i, s| assert!(s.status.success(), "start {i} failed though the program ran: {}", out(s)));
    env.assert_clean("after quick exits");
}

/// Eight rounds of create, start and delete -f of bundle `b` (ids
/// `<prefix><n>`); `judge` checks each start's output.
fn create_start_delete(env: &Env, b: &std::path::Path, prefix: &str, judge: impl Fn(usize, &std::process::Output)) {
    for i in 0..8 {
        let id = format!("{prefix}{i}");
        let o = env.nx(&["create", "-b", b.to_str().unwrap(), &id]);
        assert!(o.status.success(), "create {i}: {}", out(&o));
        judge(i, &env.nx(&["start", &id]));
        let d = env.nx(&["delete", "-f", &id]);
        assert!(d.status.success(), "delete {i}: {}", out(&d));
    }
}

/// Before start the guest exists: its PID 1 is nexcage-init (in the guest's
/// pid namespace), `ps` lists it, and kill TERM ends it (status 143).
#[test]
fn created_guest_waits_in_its_init() {
    let env = env_or_skip!("created", "pct");
    let b = env.bundle("sleep", &["sleep", "100"], |_| {});
    let pidf = env.dir.join("pid");
    let o = env.nx(&["create", "-b", b.to_str().unwrap(), "--pid-file", pidf.to_str().unwrap(), "w1"]);
    assert!(o.status.success(), "{}", out(&o));
    let ps = env.nx(&["ps", "w1"]);
    assert!(String::from_utf8_lossy(&ps.stdout).contains("/.nexcage/nexcage-init wait"), "{}", out(&ps));
    assert!(env.nx(&["kill", "w1", "TERM"]).status.success());
    assert!(wait_until(5, || String::from_utf8_lossy(&env.nx(&["state", "w1"]).stdout).contains("stopped")));
    assert!(env.nx(&["delete", "w1"]).status.success());
    env.assert_clean("after delete");
}

/// An unprivileged guest writes a root-owned host dir bound read-write
/// (an id-mapped bind mount, `idmap=container`), and what it creates is
/// owned by host root, as under runc. The dir is on ext4 or tmpfs.
#[test]
fn idmapped_bind_mount() {
    let env = env_or_skip!("idmap", "pct");
    let data = env.dir.join("data-root");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::set_permissions(&data, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    std::os::unix::fs::chown(&data, Some(0), Some(0)).unwrap();
    let b = env.bundle("idmap", &["sh", "-c", "echo x > /data/f && stat -c %u /data/f"], |v| {
        v["mounts"].as_array_mut().unwrap().push(serde_json::json!({"destination": "/data", "type": "bind", "source": data, "options": ["rbind", "rw"]}));
    });
    let log = env.dir.join("nx.log");
    let o = env.nx(&["--log", log.to_str().unwrap(), "run", "-b", b.to_str().unwrap(), "im"]);
    assert_eq!(o.status.code(), Some(0), "{}\n{}", out(&o), std::fs::read_to_string(&log).unwrap_or_default());
    assert_eq!(String::from_utf8_lossy(&o.stdout), "0\n");
    let m = std::fs::metadata(data.join("f")).expect("the guest's file");
    assert_eq!(std::os::unix::fs::MetadataExt::uid(&m), 0, "owned by host root");
    env.assert_clean("after run");
}

/// A guest whose init never waits for start (TEST ONLY hook: `sleep` as
/// its init) makes create fail within its bound, naming what it waited
/// for; nothing is left, no guest, dataset, LXC dir, state or process.
#[test]
fn init_that_never_waits_is_bounded() {
    let env = env_or_skip!("initbound", "pct");
    let b = env.bundle("sleep", &["sleep", "100"], |_| {});
    let t0 = std::time::Instant::now();
    let o = run_to_files(env.cmd(nexcage()).arg("--root").arg(&env.root).args(["create", "-b", b.to_str().unwrap(), "nb"])
        .env("NEXCAGE_TEST_INIT_ARGV", "/bin/sleep 1000").env("NEXCAGE_TEST_INIT_BOUND", "3"), &env.dir);
    let took = t0.elapsed();
    assert!(!o.status.success(), "{}", out(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("timed out after 3 s waiting for the guest's init"), "{}", out(&o));
    assert!(took < std::time::Duration::from_secs(20), "create took {took:?}");
    let ps = std::process::Command::new("pgrep").args(["-f", "^/bin/sleep 1000$"]).output().unwrap();
    assert!(ps.stdout.is_empty(), "the guest's init survived: {}", String::from_utf8_lossy(&ps.stdout));
    env.assert_clean("after a create whose init never waited");
}

/// nexcage-init: unprivileged guests share one copy per build, a hard link
/// to `<data dir>/init/nexcage-init-<digest>`; a copy cut short (a crash)
/// is replaced, not linked; a privileged guest (`bind` strategy), whose
/// root could write the shared file through a remount, gets its own copy.
#[test]
fn init_binary_shared_by_unprivileged_guests() {
    use std::os::unix::fs::MetadataExt;
    let env = env_or_skip!("sharedinit", "pct");
    let lxc = env.dir.join("lxc");
    let shared_dir = env.dir.join("data/init");
    // The guest dir a create made: the LXC dir that was not there before.
    let create = |id: &str, b: &std::path::Path| -> std::fs::Metadata {
        let before = env.lxc_dirs();
        let o = run_to_files(env.cmd(nexcage()).arg("--root").arg(&env.root).args(["create", "-b", b.to_str().unwrap(), id]), &env.dir);
        assert!(o.status.success(), "create {id}: {}", out(&o));
        let new: Vec<String> = env.lxc_dirs().into_iter().filter(|d| !before.contains(d)).collect();
        assert_eq!(new.len(), 1, "one new LXC dir for {id}: {new:?}");
        std::fs::metadata(lxc.join(&new[0]).join("init/nexcage-init")).expect("the guest's nexcage-init")
    };
    let shared = || {
        let files: Vec<_> = std::fs::read_dir(&shared_dir).expect("shared init dir").flatten().map(|e| e.path()).collect();
        assert_eq!(files.len(), 1, "one shared copy: {files:?}");
        files[0].clone()
    };
    let b = env.bundle("sleep", &["sleep", "100"], |_| {});
    let u1 = create("u1", &b);
    let s = std::fs::metadata(shared()).expect("shared copy");
    assert_eq!((u1.ino(), u1.nlink()), (s.ino(), 2), "u1's init is the shared copy");
    // A copy cut short, as a crash before its data reached the disk could
    // leave it (a new file under the name: u1 runs the old one).
    let (name, short) = (shared(), shared_dir.join(".short"));
    std::fs::write(&short, b"cut short").expect("write short copy");
    std::fs::rename(&short, name).expect("replace shared copy");
    let u2 = create("u2", &b);
    let s2 = std::fs::metadata(shared()).expect("shared copy");
    assert_eq!((u2.ino(), u2.len()), (s2.ino(), s.len()), "u2 links a whole new copy");
    assert_ne!(u2.ino(), u1.ino());
    let pb = env.bundle("bind", &["sleep", "100"], |v| v["annotations"]["org.nexcage.rootfs-strategy"] = "bind".into());
    let p1 = create("p1", &pb);
    assert_eq!((p1.nlink(), p1.len()), (1, s.len()), "a privileged guest has its own whole copy");
    for id in ["u1", "u2", "p1"] {
        let o = env.nx(&["delete", "--force", id]);
        assert!(o.status.success(), "delete {id}: {}", out(&o));
    }
    env.assert_clean("after the deletes");
}
