//! Everything else: sysctl, seccomp, kill signal forms and --all,
//! pause/resume, exec, ps/list/events, --log JSON errors, version, and the
//! LSM cases this host cannot run.

use super::*;
use crate::ctx::Opts;
use crate::host::Host;
use crate::suite::{case, Case};
use crate::sys::{self, Exit};
use anyhow::{ensure, Context};
use serde_json::{json, Value};

pub fn cases() -> Vec<Case> {
    vec![
        case("misc.sysctl", "linux.sysctl values are set inside, the host's unchanged", sysctl),
        case("misc.seccomp.errno", "a seccomp SCMP_ACT_ERRNO rule: the syscall fails with EPERM inside", seccomp_errno),
        case("misc.seccomp.errno_ret", "a seccomp rule with errnoRet returns that errno", seccomp_errno_ret),
        case("misc.seccomp.kill", "a seccomp SCMP_ACT_KILL rule kills the process with SIGSYS", seccomp_kill),
        case("misc.seccomp.flags", "seccomp flags LOG, SPEC_ALLOW, TSYNC and WAIT_KILLABLE_RECV (no listener) with an SCMP_ACT_LOG rule: the profile loads and applies", seccomp_flags),
        case("misc.kill.signal_forms", "kill takes USR1, SIGUSR2 and 10 alike", kill_forms),
        case("misc.kill.default_term", "kill without a signal sends SIGTERM", kill_default),
        case("misc.kill.all", "kill --all signals every process in the container, plain kill only init", |c| kill_all(c, "--all")),
        case("misc.kill.all_short", "kill -a (CRI-O's form) is kill --all", |c| kill_all(c, "-a")),
        case("misc.pause_resume", "pause freezes (state paused, freezer FROZEN), resume thaws", pause_resume).requires(freezer),
        case("misc.exec", "exec runs a process in the container; its output and exit code come back", exec),
        case("misc.exec.stopped_fails", "exec into a stopped container fails", exec_stopped),
        case("misc.exec.detach", "exec --process F --detach --pid-file P: the process is ours to reap", exec_detach),
        case("misc.ps.json", "ps --format json lists the container's pids", ps_json),
        case("misc.list.json", "list --format json shows the container with its status", list_json),
        case("misc.events.stats", "events --stats prints one stats JSON object", events_stats),
        case("misc.log.json_error", "--log F --log-format json: an error is the last level=error line with msg", log_json_error),
        case("misc.log.create_error", "a failed create with --log leaves exactly one level=error JSON line (podman reads one object)", log_create_error),
        case("misc.exec.tty", "exec --tty --console-socket: the pty master arrives, the process has a tty", exec_tty),
        case("misc.version", "--version exits 0 and names the spec version", version),
        case("misc.apparmor", "process.apparmorProfile is applied", apparmor).requires(need_apparmor),
        case("misc.apparmor.unavailable", "process.apparmorProfile on a host without AppArmor is refused, never dropped (runc: unable to apply apparmor profile)", apparmor_unavailable).requires(no_apparmor),
        case("misc.exec.apparmor_unavailable", "exec -p with an apparmorProfile on a host without AppArmor fails (runc: apparmor failed to apply profile), never runs unconfined", exec_apparmor_unavailable).requires(no_apparmor),
        case("misc.selinux.unavailable", "process.selinuxLabel on a host without SELinux is refused (runc: selinux label is specified in config, but selinux is disabled or not supported)", selinux_unavailable).requires(no_selinux),
        case("misc.selinux", "process.selinuxLabel is applied", selinux).requires(need_selinux),
    ]
}

fn freezer(h: &Host) -> Option<String> {
    if h.cgroup_v1.contains_key("freezer") || !h.cgroup_v2_controllers.is_empty() {
        None
    } else {
        Some("no freezer cgroup".into())
    }
}

fn need_apparmor(h: &Host) -> Option<String> {
    if h.apparmor {
        None
    } else {
        Some("AppArmor is not enabled in this kernel".into())
    }
}

fn no_apparmor(h: &Host) -> Option<String> {
    h.apparmor.then(|| "AppArmor is enabled here: the profile would apply".into())
}

fn no_selinux(h: &Host) -> Option<String> {
    h.selinux.then(|| "SELinux is enabled here: the label would apply".into())
}

fn need_selinux(h: &Host) -> Option<String> {
    if h.selinux {
        None
    } else {
        Some("SELinux is not enabled on this host".into())
    }
}

fn sysctl(ctx: &mut Ctx) -> Result<()> {
    let mut b = ctx.bundle()?;
    b.set("/linux/sysctl", json!({"net.ipv4.ip_forward": "1", "kernel.shmmax": "123456789", "net.core.somaxconn": "777"}));
    b.checks(&["sysctl=net.ipv4.ip_forward:1", "sysctl=kernel.shmmax:123456789", "sysctl=net.core.somaxconn:777"]);
    let host_before = sys::read_trim("/proc/sys/kernel/shmmax")?;
    ctx.expect_checks(&b)?;
    ensure!(sys::read_trim("/proc/sys/kernel/shmmax")? == host_before, "the host's kernel.shmmax changed");
    Ok(())
}

fn seccomp(rules: Value) -> Value {
    json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"], "syscalls": rules})
}

fn seccomp_errno(ctx: &mut Ctx) -> Result<()> {
    let mut b = ctx.bundle()?;
    b.set("/linux/seccomp", seccomp(json!([{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}])));
    b.checks(&["seccomp.mode=2", "seccomp=mkdir:EPERM", "seccomp=mkdirat:EPERM", "seccomp=getppid:OK"]);
    ctx.expect_checks(&b)?;
    Ok(())
}

fn seccomp_errno_ret(ctx: &mut Ctx) -> Result<()> {
    let mut b = ctx.bundle()?;
    b.set("/linux/seccomp", seccomp(json!([{"names": ["getppid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}])));
    b.checks(&["seccomp=getppid:ENOSYS", "seccomp=mkdir:OK"]);
    ctx.expect_checks(&b)?;
    Ok(())
}

fn seccomp_flags(ctx: &mut Ctx) -> Result<()> {
    let mut b = ctx.bundle()?;
    let mut profile = seccomp(json!([{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}, {"names": ["getppid"], "action": "SCMP_ACT_LOG"}]));
    profile["flags"] = json!(["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]);
    b.set("/linux/seccomp", profile);
    b.checks(&["seccomp.mode=2", "seccomp=mkdir:EPERM", "seccomp=getppid:OK"]);
    ctx.expect_checks(&b)?;
    Ok(())
}

fn seccomp_kill(ctx: &mut Ctx) -> Result<()> {
    let mut b = ctx.bundle()?;
    b.set("/linux/seccomp", seccomp(json!([{"names": ["sync"], "action": "SCMP_ACT_KILL"}])));
    b.checks(&["seccomp=getppid:OK", "seccomp=sync:killed"]);
    let (e, out, _) = ctx.run_detached(&b, &Opts::default())?;
    ensure!(e == Exit::Signal(libc::SIGSYS), "calling sync under SCMP_ACT_KILL: {e}, want SIGSYS; output {out:?}");
    ensure!(out.starts_with("ok 1"), "the allowed syscall did not pass first: {out:?}");
    Ok(())
}

fn kill_forms(ctx: &mut Ctx) -> Result<()> {
    for (sig, want) in [("USR1", 4), ("SIGUSR2", 5), ("10", 4), ("SIGHUP", 6)] {
        let b = trapper(ctx)?;
        let c = started(ctx, &b)?;
        let o = ctx.kill(&c.id, sig)?;
        ensure!(o.ok(), "kill {sig}: {}", o.describe());
        let e = ctx.wait(c.pid)?;
        ensure!(e == Exit::Code(want), "after kill {sig} the process {e}, want exit {want} from its trap");
    }
    Ok(())
}

fn kill_default(ctx: &mut Ctx) -> Result<()> {
    let b = trapper(ctx)?;
    let c = started(ctx, &b)?;
    ctx.rt(&["kill", &c.id])?.must()?;
    let e = ctx.wait(c.pid)?;
    ensure!(e == Exit::Code(3), "after kill without a signal the process {e}, want exit 3 (TERM trap)");
    Ok(())
}

fn kill_all(ctx: &mut Ctx, flag: &str) -> Result<()> {
    let mut b = ctx.bundle()?;
    // init (a pid-namespace init without a TERM handler) ignores TERM; its children do not
    b.sh("sleep 1000 & sleep 1000 & wait");
    let c = started(ctx, &b)?;
    let t = std::time::Instant::now();
    let kids = loop {
        let k = sys::children(c.state_pid);
        if k.len() >= 2 {
            break k;
        }
        ensure!(t.elapsed() < Duration::from_secs(5), "the two sleeps did not start: {k:?}");
        std::thread::sleep(Duration::from_millis(10));
    };
    ctx.kill(&c.id, "TERM")?.must()?;
    std::thread::sleep(Duration::from_millis(300));
    ensure!(kids.iter().all(|k| sys::alive(*k)), "plain kill reached processes other than init");
    let o = ctx.rt(&["kill", flag, &c.id, "TERM"])?;
    ensure!(o.ok(), "kill {flag}: {}", o.describe());
    for k in &kids {
        ensure!(sys::wait_dead(*k, Duration::from_secs(5)), "process {k} survived kill {flag} TERM");
    }
    let e = ctx.wait(c.pid)?;
    ensure!(e == Exit::Code(0), "init {e} after its children died, want exit 0");
    Ok(())
}

fn pause_resume(ctx: &mut Ctx) -> Result<()> {
    let b = sleeper(ctx)?;
    let c = started(ctx, &b)?;
    ctx.rt(&["pause", &c.id])?.must()?;
    ensure!(ctx.status(&c.id)? == "paused", "status after pause is {}", ctx.status(&c.id)?);
    if ctx.host.cgroup_v1.contains_key("freezer") {
        let f = sys::read_trim(ctx.host.cgroup_dir(c.state_pid, "freezer")?.join("freezer.state"))?;
        ensure!(f == "FROZEN", "freezer.state {f} after pause");
    }
    let st = std::fs::read_to_string(format!("/proc/{}/status", c.state_pid))?;
    ensure!(st.lines().any(|l| l.starts_with("State:") && (l.contains("D") || l.contains("S"))), "process not stopped");
    ctx.rt(&["resume", &c.id])?.must()?;
    ensure!(ctx.status(&c.id)? == "running", "status after resume is {}", ctx.status(&c.id)?);
    if ctx.host.cgroup_v1.contains_key("freezer") {
        let f = sys::read_trim(ctx.host.cgroup_dir(c.state_pid, "freezer")?.join("freezer.state"))?;
        ensure!(f == "THAWED", "freezer.state {f} after resume");
    }
    Ok(())
}

fn exec(ctx: &mut Ctx) -> Result<()> {
    let b = sleeper(ctx)?;
    let c = started(ctx, &b)?;
    let o = ctx.rt(&["exec", &c.id, "/bin/sh", "-c", "echo exec-out; echo exec-err >&2; cat /etc/marker; exit 3"])?;
    ensure!(!o.timed_out, "exec timed out");
    ensure!(o.code == Some(3), "exec returned {:?}, want 3 ({})", o.code, o.describe());
    ensure!(o.stdout == "exec-out\nrootfs\n", "exec stdout {:?}", o.stdout);
    ensure!(o.stderr.contains("exec-err"), "exec stderr {:?}", o.stderr);
    Ok(())
}

fn exec_stopped(ctx: &mut Ctx) -> Result<()> {
    let mut b = ctx.bundle()?;
    b.args(&["/bin/true"]);
    let c = ctx.create(&b)?;
    ctx.start(&c.id)?;
    ctx.wait(c.pid)?;
    ctx.wait_status(&c.id, "stopped")?;
    ctx.rt(&["exec", &c.id, "/bin/true"])?.must_fail("exec into a stopped container")?;
    Ok(())
}

fn exec_detach(ctx: &mut Ctx) -> Result<()> {
    let b = sleeper(ctx)?;
    let c = started(ctx, &b)?;
    let pf = ctx.path("exec.pid");
    let proc_json = ctx.path("process.json");
    let p = json!({
        "terminal": false, "user": {"uid": 0, "gid": 0}, "cwd": "/",
        "args": ["/bin/sh", "-c", "echo detached > /tmp/exec-mark; exec sleep 1000"],
        "env": ["PATH=/bin"]
    });
    std::fs::write(&proc_json, serde_json::to_string(&p)?)?;
    let o = ctx.rt(&["exec", "--process", &proc_json.to_string_lossy(), "--detach", "--pid-file", &pf.to_string_lossy(), &c.id])?;
    ensure!(o.ok(), "exec --detach: {}", o.describe());
    let pid: i32 = sys::read_trim(&pf)?.parse().context("exec pid file is not a number")?;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).context("exec'd process not found")?;
    let ppid: i32 = stat.rsplit_once(')').and_then(|(_, r)| r.split_whitespace().nth(1)).and_then(|x| x.parse().ok()).unwrap_or(-1);
    ensure!(ppid == std::process::id() as i32, "exec'd process {pid} has parent {ppid}, not the caller (the shim must be able to reap it)");
    sys::kill(pid, libc::SIGTERM);
    let e = ctx.wait(pid)?;
    ensure!(e == Exit::Signal(libc::SIGTERM), "exec'd process reaped as {e}, want signal 15");
    ensure!(sys::alive(c.state_pid), "the container's init died with the exec'd process");
    Ok(())
}

fn ps_json(ctx: &mut Ctx) -> Result<()> {
    let b = sleeper(ctx)?;
    let c = started(ctx, &b)?;
    let o = ctx.rt(&["ps", "--format", "json", &c.id])?.must()?;
    let v: Value = serde_json::from_str(o.stdout.trim()).with_context(|| format!("ps output is not JSON: {:?}", o.stdout))?;
    let pids: Vec<i64> = v.as_array().context("ps JSON is not an array")?.iter().filter_map(|x| x.as_i64()).collect();
    ensure!(pids.contains(&(c.state_pid as i64)), "ps lists {pids:?}, not the init pid {}", c.state_pid);
    Ok(())
}

fn list_json(ctx: &mut Ctx) -> Result<()> {
    let b = sleeper(ctx)?;
    let c = started(ctx, &b)?;
    let o = ctx.rt(&["list", "--format", "json"])?.must()?;
    let v: Value = serde_json::from_str(o.stdout.trim()).with_context(|| format!("list output is not JSON: {:?}", o.stdout))?;
    let e = v.as_array().context("list JSON is not an array")?.iter().find(|x| x["id"] == c.id.as_str());
    let e = e.with_context(|| format!("{} missing from list: {v}", c.id))?;
    ensure!(e["status"] == "running", "list status {}", e["status"]);
    ensure!(e["pid"].as_i64() == Some(c.state_pid as i64), "list pid {}", e["pid"]);
    Ok(())
}

fn events_stats(ctx: &mut Ctx) -> Result<()> {
    let mut b = sleeper(ctx)?;
    b.set("/linux/resources/memory", json!({"limit": 67108864}));
    let c = started(ctx, &b)?;
    let o = ctx.rt(&["events", "--stats", &c.id])?.must()?;
    let v: Value = serde_json::from_str(o.stdout.trim()).with_context(|| format!("events --stats is not one JSON object: {:?}", o.stdout))?;
    ensure!(v["type"] == "stats", "type {}", v["type"]);
    ensure!(v["id"] == c.id.as_str(), "id {}", v["id"]);
    let lim = v["data"]["memory"]["usage"]["limit"].as_u64();
    ensure!(lim == Some(67108864), "data.memory.usage.limit {lim:?}, want 67108864");
    Ok(())
}

fn log_json_error(ctx: &mut Ctx) -> Result<()> {
    let log = ctx.path("log.json");
    let opts = Opts { global: vec!["--log".into(), log.to_string_lossy().into_owned(), "--log-format".into(), "json".into()], ..Default::default() };
    let o = ctx.rt_opts(&["state", "rtt-no-such-container"], &opts)?;
    o.must_fail("state of an unknown id")?;
    let s = std::fs::read_to_string(&log).context("the --log file was not written")?;
    let last = s
        .lines()
        .rev()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| v["level"] == "error")
        .with_context(|| format!("no JSON line with \"level\":\"error\" in {s:?}"))?;
    let msg = last["msg"].as_str().unwrap_or("");
    ensure!(!msg.is_empty(), "the error line has no msg: {last}");
    ensure!(last["time"].is_string(), "the error line has no time: {last}");
    Ok(())
}

fn log_create_error(ctx: &mut Ctx) -> Result<()> {
    let mut b = ctx.bundle()?;
    b.set("/root/path", json!("no-such-rootfs"));
    let log = ctx.path("create-log.json");
    let opts = Opts { global: vec!["--log".into(), log.to_string_lossy().into_owned(), "--log-format".into(), "json".into()], ..Default::default() };
    let (c, ok) = ctx.try_create(&b, &opts)?;
    ensure!(!ok, "create with a missing rootfs succeeded");
    let s = std::fs::read_to_string(&log).context("the --log file does not exist after the failed create")?;
    let errors: Vec<Value> = s.lines().filter_map(|l| serde_json::from_str::<Value>(l).ok()).filter(|v| v["level"] == "error").collect();
    ensure!(errors.len() == 1, "{} level=error lines in the log, want exactly 1: {s:?}", errors.len());
    ensure!(errors[0]["msg"].as_str().map(|m| !m.is_empty()).unwrap_or(false), "error line without msg: {}", errors[0]);
    ensure!(!c.stderr().trim().is_empty(), "the error was not printed to stderr as well");
    Ok(())
}

fn exec_tty(ctx: &mut Ctx) -> Result<()> {
    let b = sleeper(ctx)?;
    let c = started(ctx, &b)?;
    let sock = ctx.path("exec-console.sock");
    let listener = crate::console::listen(&sock)?;
    let rx = std::thread::spawn(move || crate::console::receive(listener, Duration::from_secs(20)));
    let pf = ctx.path("exec.pid");
    let proc_json = ctx.path("process.json");
    let p = json!({
        "terminal": true, "user": {"uid": 0, "gid": 0}, "cwd": "/",
        "args": ["/rtt-checker", "tty=0,1,2"], "env": ["PATH=/bin", "TERM=xterm"]
    });
    std::fs::write(&proc_json, serde_json::to_string(&p)?)?;
    let o = ctx.rt(&[
        "exec", "--process", &proc_json.to_string_lossy(), "--detach", "--tty", "--console-socket", &sock.to_string_lossy(),
        "--pid-file", &pf.to_string_lossy(), &c.id,
    ])?;
    if !o.ok() {
        let _ = std::os::unix::net::UnixStream::connect(&sock);
        let _ = rx.join();
        anyhow::bail!("exec --tty: {}", o.describe());
    }
    let got = rx.join().map_err(|_| anyhow::anyhow!("console receiver panicked"))??;
    ensure!(got.nfds == 1, "console message carried {} fds", got.nfds);
    let pid: i32 = sys::read_trim(&pf)?.parse().context("exec pid file")?;
    let e = ctx.wait(pid)?;
    let out = crate::console::drain(got.master, Duration::from_secs(5));
    crate::ctx::judge_checker(e, &out, "")?;
    Ok(())
}

fn version(ctx: &mut Ctx) -> Result<()> {
    let o = ctx.rt(&["--version"])?.must()?;
    ensure!(o.stdout.lines().any(|l| l.starts_with("spec:")), "--version lacks a `spec: X` line: {:?}", o.stdout);
    Ok(())
}

fn apparmor(ctx: &mut Ctx) -> Result<()> {
    label_applied(ctx, "/process/apparmorProfile", "unconfined", "filehas=/proc/self/attr/current:unconfined")
}

fn apparmor_unavailable(ctx: &mut Ctx) -> Result<()> {
    label_refused(ctx, "/process/apparmorProfile", "rtt-no-such-profile", "an AppArmor profile without AppArmor")
}

fn exec_apparmor_unavailable(ctx: &mut Ctx) -> Result<()> {
    let b = sleeper(ctx)?;
    let c = started(ctx, &b)?;
    let proc_json = ctx.path("process-aa.json");
    let p = json!({
        "terminal": false, "user": {"uid": 0, "gid": 0}, "cwd": "/",
        "args": ["/bin/sh", "-c", "echo ran-unconfined"], "env": ["PATH=/bin"],
        "apparmorProfile": "rtt-no-such-profile"
    });
    std::fs::write(&proc_json, serde_json::to_string(&p)?)?;
    let o = ctx.rt(&["exec", "--process", &proc_json.to_string_lossy(), &c.id])?;
    ensure!(!o.ok() && !o.stdout.contains("ran-unconfined"), "exec with an AppArmor profile and no AppArmor ran: {}", o.describe());
    ensure!(!o.stderr.trim().is_empty(), "refused without a word on stderr");
    Ok(())
}

fn selinux_unavailable(ctx: &mut Ctx) -> Result<()> {
    label_refused(ctx, "/process/selinuxLabel", SELINUX_LABEL, "an SELinux label without SELinux")
}

fn selinux(ctx: &mut Ctx) -> Result<()> {
    label_applied(ctx, "/process/selinuxLabel", SELINUX_LABEL, "filehas=/proc/self/attr/current:container_t")
}

const SELINUX_LABEL: &str = "system_u:system_r:container_t:s0:c1,c2";

/// A bundle with the security label at `pointer` runs, and `check` holds inside.
fn label_applied(ctx: &mut Ctx, pointer: &str, label: &str, check: &str) -> Result<()> {
    let mut b = ctx.bundle()?;
    b.set(pointer, json!(label));
    b.checks(&[check]);
    ctx.expect_checks(&b)?;
    Ok(())
}

/// A bundle with the security label at `pointer` is refused (`what` names it).
fn label_refused(ctx: &mut Ctx, pointer: &str, label: &str, what: &str) -> Result<()> {
    let mut b = ctx.bundle()?;
    b.set(pointer, json!(label));
    expect_refused(ctx, &b, what)?;
    Ok(())
}
