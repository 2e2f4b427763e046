//! Process: args, env, cwd, user, umask, capabilities, rlimits,
//! noNewPrivileges, oomScoreAdj, terminal, exit status, stdio, fds
//! (config.md "Process", runtime.md "start", runc's --preserve-fds/LISTEN_FDS).

use super::*;
use crate::console;
use crate::ctx::{judge_checker, Opts};
use crate::host::{Host, CAP_SYS_RESOURCE};
use crate::suite::{case, Case};
use crate::sys::Exit;
use anyhow::{ensure, Context};
use serde_json::json;

pub fn cases() -> Vec<Case> {
    vec![
        case("process.args", "args reach the program verbatim", args),
        case("process.args.not_found", "a program that does not exist: create or start fails, nothing runs", args_not_found),
        case("process.env", "env is exactly what config.json says", env),
        case("process.env.no_leak", "the runtime's own environment does not leak in", env_no_leak),
        case("process.cwd", "cwd is the working directory", cwd),
        case("process.user.uid_gid", "user.uid/gid set real, effective, saved and fs ids", user_uid_gid),
        case("process.user.additional_gids", "user.additionalGids are the supplementary groups", additional_gids),
        case("process.user.umask", "user.umask is the umask", umask),
        case("process.caps.bounding", "capabilities.bounding is exactly the bounding set", caps_bounding),
        case("process.caps.effective", "capabilities.effective is exactly the effective set", caps_effective),
        case("process.caps.permitted", "capabilities.permitted is exactly the permitted set", caps_permitted),
        case("process.caps.inheritable", "capabilities.inheritable is exactly the inheritable set", caps_inheritable),
        case("process.caps.ambient", "ambient capabilities survive exec as a non-root user", caps_ambient),
        case("process.caps.unavailable_fails", "CAP_SYS_RESOURCE (not in the host bounding set) fails clearly", caps_unavailable)
            .requires(no_sys_resource),
        case("process.rlimits.lower", "rlimits below the host's hard limit are applied", rlimits_lower),
        case("process.rlimits.raise_nofile_fails", "NOFILE above the host hard limit (20000) fails clearly", rlimits_raise)
            .requires(nofile_capped),
        case("process.nnp.true", "noNewPrivileges true sets NoNewPrivs", nnp_true),
        case("process.nnp.false", "noNewPrivileges false leaves NoNewPrivs unset", nnp_false),
        case("process.oom_score_adj", "oomScoreAdj (raising) is applied", oom_score_adj),
        case("process.terminal.console_socket", "terminal: pty master over --console-socket (one SCM_RIGHTS fd), stdio are the tty", terminal),
        case("process.terminal.off", "without terminal, stdio are not ttys", terminal_off),
        case("process.exit_code", "the reaped status is the program's exit code", exit_code),
        case("process.exit_signal", "a container killed with KILL is reaped as signalled 9", exit_signal),
        case("process.stdio.passthrough", "create's stdin/stdout/stderr are the program's", stdio_passthrough),
        case("process.stdio.pipes", "pipes given to `run` reach the program as pipes, stdout and stderr apart", stdio_pipes),
        case("process.fds.no_leak", "fds the runtime inherited beyond 0-2 do not reach the program", fds_no_leak),
        case("process.fds.preserve_fds", "--preserve-fds N passes fds 3..3+N", preserve_fds),
        case("process.signals.default", "the process starts with every signal at SIG_DFL and none blocked, whatever the runtime had (SigIgn/SigBlk 0)", signals_default),
        case("process.fds.listen_fds", "LISTEN_FDS/LISTEN_PID socket activation passes fds and sets LISTEN_FDS", listen_fds),
    ]
}

pub fn no_sys_resource(h: &Host) -> Option<String> {
    if h.cap_bnd & CAP_SYS_RESOURCE != 0 {
        Some("host bounding set has CAP_SYS_RESOURCE, so it can be granted here".into())
    } else {
        None
    }
}

fn nofile_capped(h: &Host) -> Option<String> {
    if h.cap_eff & CAP_SYS_RESOURCE != 0 || h.nofile_hard >= 30000 {
        Some(format!("host can raise RLIMIT_NOFILE to 30000 (hard {}, CAP_SYS_RESOURCE held)", h.nofile_hard))
    } else {
        None
    }
}

fn args(ctx: &mut Ctx) -> Result<()> {
    let mut b = ctx.bundle()?;
    b.args(&["/bin/sh", "-c", "printf '[%s]' \"$@\"", "sh", "one", "two words", "", "$HOME"]);
    let (e, out, err) = ctx.run_detached(&b, &Opts::default())?;
    ensure!(e == Exit::Code(0), "program {e}: {err}");
    ensure!(out == "[one][two words][][$HOME]", "argv seen as {out:?}");
    Ok(())
}

fn args_not_found(ctx: &mut Ctx) -> Result<()> {
    let mut b = ctx.bundle()?;
    b.args(&["/no/such/program"]);
    expect_refused(ctx, &b, "a missing program")?;
    Ok(())
}

fn env(ctx: &mut Ctx) -> Result<()> {
    let mut b = ctx.bundle()?;
    b.set("/process/env", json!(["PATH=/bin", "RTT_A=1", "RTT_SPACES=a b  c", "RTT_EQ=x=y", "RTT_EMPTY="]));
    b.checks_file(&["env=PATH=/bin", "env=RTT_A=1", "env=RTT_SPACES=a b  c", "env=RTT_EQ=x=y", "env=RTT_EMPTY=", "noenv=TERM"])?;
    ctx.expect_checks(&b)?;
    Ok(())
}

fn env_no_leak(ctx: &mut Ctx) -> Result<()> {
    let mut b = ctx.bundle()?;
    b.checks(&["noenv=RTT_LEAK", "env=TERM=xterm"]);
    let opts = Opts { env: vec![("RTT_LEAK".into(), "leaked".into())], ..Default::default() };
    let (e, out, err) = ctx.run_detached(&b, &opts)?;
    judge_checker(e, &out, &err)?;
    Ok(())
}

fn cwd(ctx: &mut Ctx) -> Result<()> {
    let mut b = ctx.bundle()?;
    b.set("/process/cwd", json!("/home/user"));
    b.checks(&["cwd=/home/user"]);
    ctx.expect_checks(&b)?;
    Ok(())
}

fn user_uid_gid(ctx: &mut Ctx) -> Result<()> {
    let mut b = ctx.bundle()?;
    b.set("/process/user", json!({"uid": 1000, "gid": 1001}));
    b.checks(&["uid=1000", "gid=1001"]);
    ctx.expect_checks(&b)?;
    Ok(())
}

fn additional_gids(ctx: &mut Ctx) -> Result<()> {
    let mut b = ctx.bundle()?;
    b.set("/process/user", json!({"uid": 1000, "gid": 1000, "additionalGids": [5, 1234, 4000]}));
    b.checks(&["uid=1000", "gid=1000", "groups=5,1234,4000"]);
    ctx.expect_checks(&b)?;
    Ok(())
}

fn umask(ctx: &mut Ctx) -> Result<()> {
    let mut b = ctx.bundle()?;
    b.set("/process/user/umask", json!(0o027));
    b.checks(&["umask=0027"]);
    ctx.expect_checks(&b)?;
    Ok(())
}

const CAPS3: [&str; 3] = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"];

/// Sets all sets to the defaults, then one set to `set`; checks `key`.
fn caps_case(ctx: &mut Ctx, which: &str, set: &[&str], key: &str, extra: &[&str]) -> Result<()> {
    let mut b = ctx.bundle()?;
    b.set("/process/capabilities", json!({"bounding": CAPS3, "effective": CAPS3, "permitted": CAPS3, "inheritable": [], "ambient": []}));
    b.set(&format!("/process/capabilities/{which}"), json!(set));
    let want = format!("{key}={}", set.join(","));
    let mut checks = vec![want.as_str()];
    checks.extend_from_slice(extra);
    b.checks(&checks);
    ctx.expect_checks(&b)?;
    Ok(())
}

fn caps_bounding(ctx: &mut Ctx) -> Result<()> {
    let bnd = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_CHOWN", "CAP_SYS_CHROOT"];
    caps_case(ctx, "bounding", &bnd, "cap.bnd", &["cap.eff=AUDIT_WRITE,KILL,NET_BIND_SERVICE"])
}

fn caps_effective(ctx: &mut Ctx) -> Result<()> {
    // After execve as uid 0 under noNewPrivileges the effective set equals the
    // permitted set, so effective is observed together with permitted.
    let mut b = ctx.bundle()?;
    let set = ["CAP_KILL", "CAP_NET_BIND_SERVICE"];
    b.set("/process/capabilities", json!({"bounding": CAPS3, "effective": set, "permitted": set, "inheritable": [], "ambient": []}));
    b.checks(&["cap.eff=KILL,NET_BIND_SERVICE", "cap.bnd=AUDIT_WRITE,KILL,NET_BIND_SERVICE"]);
    ctx.expect_checks(&b)?;
    Ok(())
}

fn caps_permitted(ctx: &mut Ctx) -> Result<()> {
    let mut b = ctx.bundle()?;
    let set = ["CAP_KILL", "CAP_AUDIT_WRITE"];
    b.set("/process/capabilities", json!({"bounding": CAPS3, "effective": set, "permitted": set, "inheritable": [], "ambient": []}));
    b.checks(&["cap.prm=KILL,AUDIT_WRITE", "cap.bnd=AUDIT_WRITE,KILL,NET_BIND_SERVICE"]);
    ctx.expect_checks(&b)?;
    Ok(())
}

fn caps_inheritable(ctx: &mut Ctx) -> Result<()> {
    caps_case(ctx, "inheritable", &["CAP_KILL", "CAP_NET_BIND_SERVICE"], "cap.inh", &["cap.amb="])
}

fn caps_ambient(ctx: &mut Ctx) -> Result<()> {
    let mut b = ctx.bundle()?;
    let nb = ["CAP_NET_BIND_SERVICE"];
    b.set("/process/user", json!({"uid": 1000, "gid": 1000}));
    b.set("/process/capabilities", json!({"bounding": CAPS3, "effective": nb, "permitted": nb, "inheritable": nb, "ambient": nb}));
    b.checks(&["uid=1000", "cap.amb=NET_BIND_SERVICE", "cap.eff=NET_BIND_SERVICE", "cap.prm=NET_BIND_SERVICE"]);
    ctx.expect_checks(&b)?;
    Ok(())
}

fn caps_unavailable(ctx: &mut Ctx) -> Result<()> {
    let mut b = ctx.bundle()?;
    let set = ["CAP_KILL", "CAP_SYS_RESOURCE"];
    b.set("/process/capabilities", json!({"bounding": set, "effective": set, "permitted": set}));
    b.checks(&["cap.eff=KILL,SYS_RESOURCE"]);
    expect_refused(ctx, &b, "CAP_SYS_RESOURCE outside the host bounding set")?;
    Ok(())
}

fn rlimits_lower(ctx: &mut Ctx) -> Result<()> {
    let mut b = ctx.bundle()?;
    b.set(
        "/process/rlimits",
        json!([
            {"type": "RLIMIT_NOFILE", "soft": 256, "hard": 512},
            {"type": "RLIMIT_CORE", "soft": 0, "hard": 0},
            {"type": "RLIMIT_NPROC", "soft": 1000, "hard": 2000},
            {"type": "RLIMIT_MSGQUEUE", "soft": 4096, "hard": 8192}
        ]),
    );
    b.checks(&["rlimit=NOFILE:256:512", "rlimit=CORE:0:0", "rlimit=NPROC:1000:2000", "rlimit=MSGQUEUE:4096:8192"]);
    ctx.expect_checks(&b)?;
    Ok(())
}

fn rlimits_raise(ctx: &mut Ctx) -> Result<()> {
    let mut b = ctx.bundle()?;
    b.set("/process/rlimits", json!([{"type": "RLIMIT_NOFILE", "soft": 30000, "hard": 30000}]));
    b.checks(&["rlimit=NOFILE:30000:30000"]);
    expect_refused(ctx, &b, "RLIMIT_NOFILE 30000 above the hard limit")?;
    Ok(())
}

fn nnp_true(ctx: &mut Ctx) -> Result<()> {
    let mut b = ctx.bundle()?;
    b.set("/process/noNewPrivileges", json!(true));
    b.checks(&["nnp=1"]);
    ctx.expect_checks(&b)?;
    Ok(())
}

fn nnp_false(ctx: &mut Ctx) -> Result<()> {
    let mut b = ctx.bundle()?;
    b.set("/process/noNewPrivileges", json!(false));
    b.checks(&["nnp=0"]);
    ctx.expect_checks(&b)?;
    Ok(())
}

fn oom_score_adj(ctx: &mut Ctx) -> Result<()> {
    let mut b = ctx.bundle()?;
    b.set("/process/oomScoreAdj", json!(500));
    b.checks(&["oom=500"]);
    ctx.expect_checks(&b)?;
    Ok(())
}

fn terminal(ctx: &mut Ctx) -> Result<()> {
    let mut b = ctx.bundle()?;
    b.set("/process/terminal", json!(true));
    b.checks(&["tty=0,1,2", "exists=/dev/console", "mount=/dev/console:devpts"]);
    let sock = ctx.path("console.sock");
    let listener = console::listen(&sock)?;
    let rx = std::thread::spawn(move || console::receive(listener, Duration::from_secs(20)));
    let opts = Opts { console_socket: Some(sock.clone()), ..Default::default() };
    let (c, ok) = ctx.try_create(&b, &opts)?;
    if !ok {
        // unblock the receiver thread before failing
        let _ = std::os::unix::net::UnixStream::connect(&sock);
        let _ = rx.join();
        anyhow::bail!("create with --console-socket failed: {}", c.out.describe());
    }
    let got = rx.join().map_err(|_| anyhow::anyhow!("console receiver panicked"))??;
    ensure!(got.nfds == 1, "console socket message carried {} fds, want exactly 1", got.nfds);
    ctx.start(&c.id)?;
    let e = ctx.wait(c.pid)?;
    let out = console::drain(got.master, Duration::from_secs(5));
    ctx.delete(&c.id)?.must()?;
    judge_checker(e, &out, &c.stderr()).context("output read from the pty master")?;
    Ok(())
}

fn terminal_off(ctx: &mut Ctx) -> Result<()> {
    let mut b = ctx.bundle()?;
    b.checks(&["notty=0,1,2"]);
    ctx.expect_checks(&b)?;
    Ok(())
}

fn exit_code(ctx: &mut Ctx) -> Result<()> {
    for code in [0, 1, 42, 255] {
        let mut b = ctx.bundle()?;
        b.sh(&format!("exit {code}"));
        let (e, _, _) = ctx.run_detached(&b, &Opts::default())?;
        ensure!(e == Exit::Code(code), "`exit {code}` reaped as {e}");
    }
    Ok(())
}

fn exit_signal(ctx: &mut Ctx) -> Result<()> {
    let b = sleeper(ctx)?;
    let c = started(ctx, &b)?;
    ctx.kill(&c.id, "KILL")?.must()?;
    let e = ctx.wait(c.pid)?;
    ensure!(e == Exit::Signal(9), "reaped as {e}, want signal 9");
    Ok(())
}

fn stdio_passthrough(ctx: &mut Ctx) -> Result<()> {
    let mut b = ctx.bundle()?;
    let stdin = ctx.path("stdin.txt");
    std::fs::write(&stdin, "line one\nline two\n")?;
    b.sh("cat; echo to-stderr >&2; echo to-stdout");
    let opts = Opts { stdin: Some(stdin), ..Default::default() };
    let (e, out, err) = ctx.run_detached(&b, &opts)?;
    ensure!(e == Exit::Code(0), "program {e}");
    ensure!(out == "line one\nline two\nto-stdout\n", "stdout {out:?}");
    ensure!(err.contains("to-stderr") && !err.contains("to-stdout"), "stderr {err:?}");
    ensure!(!out.contains("to-stderr"), "stderr output landed in stdout");
    Ok(())
}

fn stdio_pipes(ctx: &mut Ctx) -> Result<()> {
    let mut b = ctx.bundle()?;
    b.args(&["/bin/sh", "-c", "/rtt-checker fdtype=1:pipe fdtype=2:pipe; s=$?; echo err-line >&2; exit $s"]);
    let (_, o) = ctx.run_fg(&b, &Opts { pipes: true, ..Default::default() })?;
    ensure!(!o.timed_out, "run timed out");
    judge_checker(Exit::Code(o.code.unwrap_or(-1)), &o.stdout, &o.stderr)?;
    ensure!(o.stderr.contains("err-line") && !o.stdout.contains("err-line"), "stderr not apart: stdout {:?} stderr {:?}", o.stdout, o.stderr);
    Ok(())
}

fn fds_no_leak(ctx: &mut Ctx) -> Result<()> {
    let mut b = ctx.bundle()?;
    let f = ctx.path("leak.txt");
    std::fs::write(&f, "leak")?;
    b.checks(&["fds=0,1,2"]);
    let opts = Opts { extra_fds: vec![f.clone(), f], ..Default::default() };
    let (e, out, err) = ctx.run_detached(&b, &opts)?;
    judge_checker(e, &out, &err)?;
    Ok(())
}

fn preserve_fds(ctx: &mut Ctx) -> Result<()> {
    let mut b = ctx.bundle()?;
    let (f1, f2, f3) = (ctx.path("fd3.txt"), ctx.path("fd4.txt"), ctx.path("fd5.txt"));
    std::fs::write(&f1, "three")?;
    std::fs::write(&f2, "four")?;
    std::fs::write(&f3, "five")?;
    b.checks(&["fds=0,1,2,3,4", "fdread=3:three", "fdread=4:four"]);
    let opts = Opts { extra_fds: vec![f1, f2, f3], preserve_fds: Some(2), ..Default::default() };
    let (e, out, err) = ctx.run_detached(&b, &opts)?;
    judge_checker(e, &out, &err)?;
    Ok(())
}

fn listen_fds(ctx: &mut Ctx) -> Result<()> {
    let mut b = ctx.bundle()?;
    let f1 = ctx.path("fd3.txt");
    std::fs::write(&f1, "socket")?;
    b.checks(&["env=LISTEN_FDS=1", "fds=0,1,2,3", "fdread=3:socket"]);
    let opts = Opts { extra_fds: vec![f1], env: vec![("LISTEN_FDS".into(), "1".into())], listen_pid: true, ..Default::default() };
    let (e, out, err) = ctx.run_detached(&b, &opts)?;
    judge_checker(e, &out, &err)?;
    Ok(())
}

fn signals_default(ctx: &mut Ctx) -> Result<()> {
    // busybox cat, not the checker: Rust's runtime ignores SIGPIPE before main.
    let mut b = ctx.bundle()?;
    b.args(&["/bin/cat", "/proc/self/status"]);
    let (e, out, err) = ctx.run_detached(&b, &Opts { ignored_signals: true, ..Default::default() })?;
    ensure!(e == Exit::Code(0), "cat /proc/self/status {e}: {err}");
    for field in ["SigIgn", "SigBlk"] {
        let v = out.lines().find_map(|l| l.strip_prefix(field)?.strip_prefix(':')).map(str::trim);
        let v = v.with_context(|| format!("no {field} in the process's /proc/self/status: {out:?}"))?;
        ensure!(u64::from_str_radix(v, 16).ok() == Some(0), "{field} {v}, want 0 (the runtime started with SIGINT/SIGQUIT ignored, SIGUSR1 blocked)");
    }
    Ok(())
}
