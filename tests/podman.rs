//! Podman 4 drives nexcage as its OCI runtime (`podman --runtime <abs nexcage>`),
//! through conmon, on a busybox image imported from a local rootfs.
//!
//! Every test has its own `--root/--runroot/--tmpdir` and containers.conf
//! (`CONTAINERS_CONF`) in a scratch directory; a Drop guard removes all its
//! containers and storage mounts even when the test fails.
mod support;

use std::path::PathBuf;
use std::process::Output;
use support::*;

const IMAGE: &str = "localhost/busybox";

struct Podman {
    dir: Scratch,
    conf: PathBuf,
}

impl Podman {
    /// Sets up storage and imports the busybox image; None (after printing
    /// SKIP) when podman/conmon/busybox are missing.
    fn new(test: &str) -> Option<Podman> {
        if !is_root() {
            skip(test, "needs root");
            return None;
        }
        if let Some(m) = missing(&["podman", "conmon", "tar", "timeout"]) {
            skip(test, &m);
            return None;
        }
        if which("/bin/busybox").is_none() {
            skip(test, "busybox-static not installed");
            return None;
        }
        // short: podman refuses a runroot longer than 50 characters
        let dir = Scratch::new("pm");
        let conf = dir.join("containers.conf");
        // runtime_supports_json is keyed by the runtime's name, which for
        // `--runtime /abs/path` is the path's basename.
        std::fs::write(
            &conf,
            "[containers]\n\
             default_ulimits = [\"nofile=1024:1024\", \"nproc=1024:1024\"]\n\
             [engine]\n\
             runtime_supports_json = [\"nexcage\"]\n\
             cgroup_manager = \"cgroupfs\"\n\
             events_logger = \"file\"\n",
        )
        .unwrap();
        let p = Podman { dir, conf };
        let rootfs = rootfs(p.dir.path());
        let sh = format!(
            "tar -C {} -c . | podman --root {} --runroot {} --tmpdir {} import - {IMAGE}",
            rootfs.display(),
            p.dir.join("root").display(),
            p.dir.join("runroot").display(),
            p.dir.join("tmp").display()
        );
        let o = run_timeout(120, "sh", &["-c", &sh], &[("CONTAINERS_CONF", p.conf.to_str().unwrap())]);
        assert!(o.status.success(), "podman import: {}", show(&o));
        Some(p)
    }

    fn args(&self) -> Vec<String> {
        vec![
            "--root".into(),
            self.dir.join("root").display().to_string(),
            "--runroot".into(),
            self.dir.join("runroot").display().to_string(),
            "--tmpdir".into(),
            self.dir.join("tmp").display().to_string(),
            "--runtime".into(),
            nexcage().into(),
        ]
    }

    /// `podman <global args> <args>`, 120 s timeout, stdin /dev/null.
    fn run(&self, args: &[&str]) -> Output {
        let mut a = self.args();
        a.extend(args.iter().map(|s| s.to_string()));
        let a: Vec<&str> = a.iter().map(|s| s.as_str()).collect();
        run_timeout(120, "podman", &a, &[("CONTAINERS_CONF", self.conf.to_str().unwrap())])
    }

    fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert!(o.status.success(), "podman {args:?}: {}", show(&o));
        text(&o.stdout)
    }

    fn inspect(&self, name: &str, fmt: &str) -> String {
        self.ok(&["inspect", "-f", fmt, name]).trim().to_string()
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        let _ = self.run(&["rm", "-a", "-f", "-t", "0"]);
        let _ = self.run(&["system", "reset", "-f"]);
        // conmon of a container that outlived podman rm (should not happen)
        kill_procs_with(&self.dir.path().display().to_string());
        // Scratch's own Drop unmounts what is left and removes the directory.
    }
}

/// `run --rm`: the container's stdout reaches the user, stderr stays
/// separate, exit codes pass through, and the container is gone afterwards.
#[test]
fn podman_run_output_and_exit_code() {
    let Some(p) = Podman::new("podman_run_output_and_exit_code") else { return };
    let o = p.run(&["run", "--rm", "--network", "none", IMAGE, "sh", "-c", "echo out-line; echo err-line >&2; exit 7"]);
    assert_eq!(o.status.code(), Some(7), "{}", show(&o));
    assert_eq!(text(&o.stdout), "out-line\n", "{}", show(&o));
    assert!(text(&o.stderr).contains("err-line"), "{}", show(&o));
    assert!(!text(&o.stdout).contains("err-line"));

    let o = p.run(&["run", "--rm", "--network", "none", IMAGE, "echo", "hello from nexcage"]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert_eq!(text(&o.stdout), "hello from nexcage\n");

    // the runtime's JSON error (runtime_supports_json) reaches podman's message;
    // 127 for a missing executable, as with runc
    let o = p.run(&["run", "--rm", "--network", "none", IMAGE, "/no-such-binary"]);
    assert_eq!(o.status.code(), Some(127), "{}", show(&o));
    assert!(text(&o.stderr).contains("/no-such-binary"), "{}", show(&o));

    assert_eq!(p.ok(&["ps", "-a", "-q"]).trim(), "", "run --rm left a container");
}

/// `run -d`, `exec`, `logs`, `stop`, `rm`; the runtime is nexcage.
#[test]
fn podman_detached_exec_logs_stop_rm() {
    let Some(p) = Podman::new("podman_detached_exec_logs_stop_rm") else { return };
    let name = unique("pd");
    p.ok(&["run", "-d", "--name", &name, "--network", "none", IMAGE, "sh", "-c", "echo started; exec sleep 1000"]);
    assert_eq!(p.inspect(&name, "{{.OCIRuntime}}"), nexcage());
    assert_eq!(p.inspect(&name, "{{.State.Status}}"), "running");
    let pid: i32 = p.inspect(&name, "{{.State.Pid}}").parse().unwrap();
    assert!(pid > 0);

    let o = p.run(&["exec", &name, "sh", "-c", "echo in-exec; cat /proc/1/cmdline | tr '\\0' ' '; exit 3"]);
    assert_eq!(o.status.code(), Some(3), "{}", show(&o));
    assert_eq!(text(&o.stdout), "in-exec\nsleep 1000 ", "exec runs inside the container's pid namespace");

    assert!(wait_until(10, || p.ok(&["logs", &name]).contains("started")), "logs: {:?}", p.ok(&["logs", &name]));

    // `sleep` is PID 1 of its pid namespace with no SIGTERM handler, so the
    // kernel drops SIGTERM; podman stop falls back to SIGKILL: 137.
    let t = std::time::Instant::now();
    p.ok(&["stop", "-t", "1", &name]);
    assert!(t.elapsed().as_secs() < 15);
    assert_eq!(p.inspect(&name, "{{.State.Status}} {{.State.ExitCode}}"), "exited 137");
    assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists(), "container process survived stop");

    p.ok(&["rm", &name]);
    assert_eq!(p.ok(&["ps", "-a", "-q"]).trim(), "");
}

/// A container that handles SIGTERM: `podman stop` delivers SIGTERM through
/// `nexcage kill ID 15` and the handler's exit status (143) passes through.
#[test]
fn podman_stop_sigterm_handler() {
    let Some(p) = Podman::new("podman_stop_sigterm_handler") else { return };
    let name = unique("pt");
    p.ok(&[
        "run", "-d", "--name", &name, "--network", "none", IMAGE, "sh", "-c",
        "trap 'echo got-term; exit 143' TERM; echo ready; while :; do sleep 0.1; done",
    ]);
    assert!(wait_until(10, || p.ok(&["logs", &name]).contains("ready")));
    let t = std::time::Instant::now();
    p.ok(&["stop", "-t", "20", &name]);
    assert!(t.elapsed().as_secs() < 10, "SIGTERM was not delivered (stop took {:?})", t.elapsed());
    assert_eq!(p.inspect(&name, "{{.State.Status}} {{.State.ExitCode}}"), "exited 143");
    assert!(p.ok(&["logs", &name]).contains("got-term"));
    p.ok(&["rm", &name]);
}

/// `run -t`: the pty master travels over conmon's console socket; the
/// process sees a terminal on stdin and stdout.
#[test]
fn podman_run_tty() {
    let Some(p) = Podman::new("podman_run_tty") else { return };
    let o = p.run(&[
        "run", "--rm", "-t", "--network", "none", IMAGE, "sh", "-c",
        "tty; test -t 0 && echo stdin-tty; test -t 1 && echo stdout-tty; exit 4",
    ]);
    assert_eq!(o.status.code(), Some(4), "{}", show(&o));
    let out = text(&o.stdout);
    assert!(out.contains("/dev/pts/"), "{}", show(&o));
    assert!(out.contains("stdin-tty\r\n") && out.contains("stdout-tty\r\n"), "pty line discipline expected: {}", show(&o));
}

/// Freezer state of a process's v1 freezer cgroup (None on cgroup v2 / no freezer).
fn freezer_state(pid: i32) -> Option<String> {
    let cg = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    let path = cg.lines().find_map(|l| {
        let mut f = l.splitn(3, ':');
        let (_, ctrl, path) = (f.next()?, f.next()?, f.next()?);
        (ctrl.split(',').any(|c| c == "freezer")).then(|| path.to_string())
    })?;
    std::fs::read_to_string(format!("/sys/fs/cgroup/freezer{path}/freezer.state")).ok().map(|s| s.trim().to_string())
}

/// `pause`/`unpause`: podman's status and the container's freezer cgroup follow.
#[test]
fn podman_pause_unpause() {
    let Some(p) = Podman::new("podman_pause_unpause") else { return };
    let name = unique("pp");
    p.ok(&["run", "-d", "--name", &name, "--network", "none", IMAGE, "sleep", "1000"]);
    let pid: i32 = p.inspect(&name, "{{.State.Pid}}").parse().unwrap();
    p.ok(&["pause", &name]);
    assert_eq!(p.inspect(&name, "{{.State.Status}}"), "paused");
    if let Some(s) = freezer_state(pid) {
        assert_eq!(s, "FROZEN");
    }
    p.ok(&["unpause", &name]);
    assert_eq!(p.inspect(&name, "{{.State.Status}}"), "running");
    if let Some(s) = freezer_state(pid) {
        assert_eq!(s, "THAWED");
    }
    let o = p.run(&["exec", &name, "echo", "alive"]);
    assert_eq!(text(&o.stdout), "alive\n", "{}", show(&o));
    p.ok(&["rm", "-f", "-t", "0", &name]);
}

/// Podman maps the runtime's words to exit codes: a program that is not
/// executable is 126, a missing one 127, for `run` and for `exec` (runc's
/// "permission denied" / "executable file not found" / "no such file or
/// directory"); `exec` into a paused container fails at once (Podman 4
/// refuses it before asking the runtime; the runtime's own words are the
/// conformance case `misc.exec.paused_fails`).
#[test]
fn podman_run_exec_126_127_paused() {
    let Some(p) = Podman::new("podman_run_exec_126_127_paused") else { return };
    let run = |prog: &str| p.run(&["run", "--rm", "--network", "none", IMAGE, prog]);
    for (prog, code) in [("/etc/passwd", 126), ("/no-such-binary", 127), ("no-such-binary", 127)] {
        let o = run(prog);
        assert_eq!(o.status.code(), Some(code), "run {prog}: {}", show(&o));
    }
    let name = unique("px");
    p.ok(&["run", "-d", "--network", "none", "--name", &name, IMAGE, "sleep", "1000"]);
    for (prog, code) in [("/etc/passwd", 126), ("/no-such-binary", 127), ("no-such-binary", 127)] {
        let o = p.run(&["exec", &name, prog]);
        assert_eq!(o.status.code(), Some(code), "exec {prog}: {}", show(&o));
    }
    p.ok(&["pause", &name]);
    let t = std::time::Instant::now();
    let o = p.run(&["exec", &name, "true"]);
    assert!(!o.status.success(), "exec into a paused container succeeded: {}", show(&o));
    assert!(t.elapsed() < std::time::Duration::from_secs(30), "exec into a paused container took {:?}", t.elapsed());
    p.ok(&["unpause", &name]);
    p.ok(&["rm", "-f", "-t", "0", &name]);
}
