//! Inputs engines and people really send, where runtimes have differed
//! (nexcage issue 14): a seccomp profile denying what the runtime itself
//! calls, a missing cwd, unknown capability names, what `exec` inherits,
//! `HOME`, `update` that must take effect or fail, hook state, the words
//! of exec/run failures, and errors that keep their cause. Each case is
//! named in the area it belongs to.

use super::*;
use crate::ctx::{judge_checker, Opts};
use super::process::no_sys_resource;
use crate::host::Host;
use crate::suite::{case, Case};
use crate::sys::Exit;
use anyhow::ensure;
use serde_json::json;

pub fn cases() -> Vec<Case> {
    vec![
        case("misc.seccomp.runtime_syscalls", "a profile denying getcwd (which the runtime may still call) runs; the program sees EPERM", seccomp_getcwd),
        case("misc.seccomp.runtime_syscalls_no_nnp", "the same without noNewPrivileges (engines' default): runs, exact capability sets, NoNewPrivs 0", seccomp_getcwd_no_nnp),
        case("process.cwd.created", "a process.cwd missing from the rootfs is created", cwd_created),
        case("process.caps.unknown_skipped", "an unknown capability name is warned about and skipped; the known ones apply", caps_unknown),
        case("misc.exec.inherits", "exec without -p inherits user, additionalGids, cwd, env, caps, noNewPrivileges, rlimits", exec_inherits),
        case("misc.exec.seccomp", "exec'd processes get the container's seccomp profile, with and without noNewPrivileges, and exact capability sets", exec_seccomp),
        case("misc.exec.inherits_umask", "exec without -p inherits process.user.umask", exec_umask),
        case("process.env.home", "without HOME in env: HOME from the rootfs /etc/passwd for the uid, else /", env_home),
        case("misc.exec.home_user", "exec --user without HOME: the user's home from /etc/passwd, else /", exec_home),
        case("cgroups.update.read_back", "update --memory/--pids-limit and --resources disableOOMKiller reach the cgroup files", update_read_back)
            .requires(v1_memory_pids),
        case("cgroups.update.below_usage_fails", "update --memory below current usage fails and changes nothing", update_below_usage)
            .requires(v1_memory_pids),
        case("cgroups.update.blkio_weight", "update --blkio-weight takes effect (blkio.weight or blkio.bfq.weight reads 300) or fails, never a silent exit 0", update_blkio_weight)
            .requires(v1_blkio),
        case("hooks.prestart.state_created", "prestart and createRuntime hooks get status created with the pid", prestart_created),
        case("misc.exec.paused_fails", "exec into a paused container fails at once, saying it is paused", exec_paused),
        case("misc.exec.created", "exec into a created container runs (runc allows it)", exec_created),
        case("misc.pause.created", "pause and resume of a created container work (runc allows it)", pause_created),
        case("misc.pause.kill", "kill KILL of a paused container ends it within 5 s: reaped as SIGKILL, state stopped (runc thaws after SIGKILL; Podman's kill of a paused container)", pause_kill),
        case("misc.pause.kill_all", "kill --all TERM of a paused container thaws it (runc freezes, signals, thaws): state running at once, and a USR1 trap then ends it with status 3", pause_kill_all),
        case("process.args.not_executable", "a program without x bit: refused saying permission denied", not_executable),
        case("process.args.not_found_words", "a missing program: refused saying no such file or directory / not found", not_found_words),
        case("process.args.no_path", "a program named without '/' and an env without PATH: refused, executable file not found in $PATH (runc looks it up in the process's environment only)", args_no_path),
        case("process.args.directory", "a directory as the program: refused saying permission denied (execve's EACCES, as runc says it)", args_directory),
        case("process.terminal.console_socket_without_tty", "--console-socket with terminal false: refused, nothing made (runc: cannot use console socket if runc will not detach or allocate tty)", console_socket_without_tty),
        case("process.terminal.tty_without_console_socket", "create with terminal true and no --console-socket: refused, nothing made (runc: cannot allocate tty if runc will detach without setting console socket)", tty_without_console_socket),
        case("misc.exec.detach_tty_without_console_socket", "exec --detach --tty without --console-socket: refused with a message, nothing runs (runc: cannot allocate tty if runc will detach without setting console socket)", exec_detach_tty_without_console_socket),
        case("process.user.id_range", "uid/gid/additionalGids 4294967295 or above 2147483647 (config and exec -u) are refused, never run as root (runc: uids and gids must be in range 0-2147483647)", id_range),
        case("process.env.invalid", "an env entry without a name or without '=' (config and exec -e) is refused before the process runs", env_invalid),
        case("process.oom_score_adj.denied", "oomScoreAdj -998 without CAP_SYS_RESOURCE fails naming /proc/self/oom_score_adj and the OS error", oom_denied)
            .requires(no_sys_resource),
    ]
}

fn v1_memory_pids(h: &Host) -> Option<String> {
    h.need_v1(&["memory", "pids"])
}

fn v1_blkio(h: &Host) -> Option<String> {
    h.need_v1(&["blkio"])
}

fn seccomp_getcwd(ctx: &mut Ctx) -> Result<()> {
    let mut b = ctx.bundle()?;
    b.set("/process/noNewPrivileges", json!(true));
    b.set("/linux/seccomp", seccomp_profile(json!([{"names": ["getcwd"], "action": "SCMP_ACT_ERRNO"}])));
    b.checks(&["seccomp.mode=2", "seccomp=getcwd:EPERM", "seccomp=getppid:OK"]);
    ctx.expect_checks(&b)?;
    Ok(())
}

fn seccomp_getcwd_no_nnp(ctx: &mut Ctx) -> Result<()> {
    let mut b = ctx.bundle()?;
    b.set("/process/noNewPrivileges", json!(false));
    for set in ["bounding", "effective", "permitted"] {
        b.set(&format!("/process/capabilities/{set}"), json!(["CAP_KILL", "CAP_NET_BIND_SERVICE"]));
    }
    b.set("/linux/seccomp", seccomp_profile(json!([{"names": ["getcwd"], "action": "SCMP_ACT_ERRNO"}])));
    b.checks(&["seccomp.mode=2", "seccomp=getcwd:EPERM", "nnp=0", "cap.bnd=KILL,NET_BIND_SERVICE", "cap.eff=KILL,NET_BIND_SERVICE", "cap.prm=KILL,NET_BIND_SERVICE"]);
    ctx.expect_checks(&b)?;
    Ok(())
}

fn cwd_created(ctx: &mut Ctx) -> Result<()> {
    let mut b = ctx.bundle()?;
    b.set("/process/cwd", json!("/rtt-new/a/b"));
    b.checks(&["cwd=/rtt-new/a/b"]);
    ctx.expect_checks(&b)?;
    Ok(())
}

fn caps_unknown(ctx: &mut Ctx) -> Result<()> {
    let mut b = ctx.bundle()?;
    for set in ["bounding", "effective", "permitted"] {
        b.set(&format!("/process/capabilities/{set}"), json!(["CAP_KILL", "CAP_RTT_BOGUS"]));
    }
    b.checks(&["cap.bnd=KILL", "cap.eff=KILL", "cap.prm=KILL"]);
    let (e, out, err) = ctx.run_detached(&b, &Opts::default())?;
    judge_checker(e, &out, &err)?;
    ensure!(err.contains("CAP_RTT_BOGUS"), "no warning naming CAP_RTT_BOGUS on stderr: {err:?}");
    Ok(())
}

/// A running container whose process sets everything exec must inherit.
fn rich_container(ctx: &mut Ctx) -> Result<Created> {
    let mut b = sleeper(ctx)?;
    b.set("/process/user", json!({"uid": 1000, "gid": 1000, "additionalGids": [5, 1234], "umask": 23}));
    b.set("/process/cwd", json!("/tmp"));
    b.set("/process/env", json!(["PATH=/bin:/usr/bin", "RTT_FOO=bar"]));
    b.set("/process/noNewPrivileges", json!(true));
    b.set("/process/rlimits", json!([{"type": "RLIMIT_NOFILE", "hard": 512, "soft": 256}]));
    for set in ["bounding", "effective", "permitted"] {
        b.set(&format!("/process/capabilities/{set}"), json!(["CAP_KILL"]));
    }
    started(ctx, &b)
}

fn exec_checker(ctx: &mut Ctx, args: &[&str]) -> Result<String> {
    let o = ctx.rt(args)?;
    ensure!(!o.timed_out, "exec timed out");
    judge_checker(if o.code == Some(0) { Exit::Code(0) } else { Exit::Code(o.code.unwrap_or(-1)) }, &o.stdout, &o.stderr)
}

fn exec_inherits(ctx: &mut Ctx) -> Result<()> {
    let c = rich_container(ctx)?;
    exec_checker(ctx, &["exec", &c.id, "/rtt-checker", "uid=1000", "gid=1000", "groups=5,1234", "cwd=/tmp", "env=RTT_FOO=bar",
        "cap.bnd=KILL", "cap.eff=", "nnp=1", "rlimit=NOFILE:256:512"])?;
    Ok(())
}

fn exec_seccomp(ctx: &mut Ctx) -> Result<()> {
    for nnp in [true, false] {
        let mut b = sleeper(ctx)?;
        b.set("/process/noNewPrivileges", json!(nnp));
        for set in ["bounding", "effective", "permitted"] {
            b.set(&format!("/process/capabilities/{set}"), json!(["CAP_KILL"]));
        }
        b.set("/linux/seccomp", seccomp_profile(json!([{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}])));
        let c = started(ctx, &b)?;
        let nnp_want = format!("nnp={}", u8::from(nnp));
        exec_checker(ctx, &["exec", &c.id, "/rtt-checker", "seccomp.mode=2", "seccomp=mkdir:EPERM", "seccomp=getppid:OK", &nnp_want, "cap.bnd=KILL", "cap.eff=KILL"])
            .map_err(|e| anyhow::anyhow!("noNewPrivileges {nnp}: {e}"))?;
    }
    Ok(())
}

fn seccomp_profile(syscalls: serde_json::Value) -> serde_json::Value {
    json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"], "syscalls": syscalls})
}

fn exec_umask(ctx: &mut Ctx) -> Result<()> {
    let c = rich_container(ctx)?;
    exec_checker(ctx, &["exec", &c.id, "/rtt-checker", "umask=0027"])?;
    Ok(())
}

fn env_home(ctx: &mut Ctx) -> Result<()> {
    for (uid, home) in [(1000, "/home/user"), (4242, "/")] {
        let mut b = ctx.bundle()?;
        b.set("/process/user", json!({"uid": uid, "gid": uid}));
        b.set("/process/env", json!(["PATH=/bin"]));
        b.checks(&[&format!("env=HOME={home}")]);
        ctx.expect_checks(&b).map_err(|e| anyhow::anyhow!("uid {uid}: {e}"))?;
    }
    Ok(())
}

fn exec_home(ctx: &mut Ctx) -> Result<()> {
    let mut b = sleeper(ctx)?;
    b.set("/process/env", json!(["PATH=/bin"]));
    let c = started(ctx, &b)?;
    for (user, home) in [("1000", "/home/user"), ("4242", "/")] {
        exec_checker(ctx, &["exec", "--user", user, &c.id, "/rtt-checker", &format!("env=HOME={home}")])
            .map_err(|e| anyhow::anyhow!("exec --user {user}: {e}"))?;
    }
    Ok(())
}

fn update_read_back(ctx: &mut Ctx) -> Result<()> {
    let b = sleeper(ctx)?;
    let c = started(ctx, &b)?;
    ctx.rt(&["update", "--memory", "64M", "--pids-limit", "33", &c.id])?.must()?;
    let res = ctx.path("oom.json");
    std::fs::write(&res, json!({"memory": {"disableOOMKiller": true}}).to_string())?;
    ctx.rt_opts(&["update", "--resources", "-", &c.id], &Opts { stdin: Some(res), ..Default::default() })?.must()?;
    let mem = ctx.host.cgroup_dir(c.state_pid, "memory")?;
    let limit = crate::sys::read_trim(mem.join("memory.limit_in_bytes"))?;
    ensure!(limit == "67108864", "memory.limit_in_bytes = {limit} after update --memory 64M");
    let pids = crate::sys::read_trim(ctx.host.cgroup_dir(c.state_pid, "pids")?.join("pids.max"))?;
    ensure!(pids == "33", "pids.max = {pids} after update --pids-limit 33");
    let oom = std::fs::read_to_string(mem.join("memory.oom_control"))?;
    ensure!(oom.lines().any(|l| l.trim() == "oom_kill_disable 1"), "disableOOMKiller: memory.oom_control is {oom:?}");
    Ok(())
}

fn update_below_usage(ctx: &mut Ctx) -> Result<()> {
    let mut b = sleeper(ctx)?;
    b.set("/linux/resources/memory", json!({"limit": 67108864}));
    let c = started(ctx, &b)?;
    let o = ctx.rt(&["update", "--memory", "4096", &c.id])?;
    o.must_fail("update --memory 4096 (below usage)")?;
    let limit = crate::sys::read_trim(ctx.host.cgroup_dir(c.state_pid, "memory")?.join("memory.limit_in_bytes"))?;
    ensure!(limit == "67108864", "the failed update changed memory.limit_in_bytes to {limit}");
    Ok(())
}

fn update_blkio_weight(ctx: &mut Ctx) -> Result<()> {
    let b = sleeper(ctx)?;
    let c = started(ctx, &b)?;
    let o = ctx.rt(&["update", "--blkio-weight", "300", &c.id])?;
    if !o.ok() {
        ensure!(!o.stderr.trim().is_empty(), "update --blkio-weight failed without a word");
        return Ok(());
    }
    let dir = ctx.host.cgroup_dir(c.state_pid, "blkio")?;
    let read = |f: &str| crate::sys::read_trim(dir.join(f)).ok();
    let got = read("blkio.weight").or_else(|| read("blkio.bfq.weight"));
    ensure!(got.as_deref() == Some("300"), "update --blkio-weight 300 exited 0 but the weight reads {got:?}");
    Ok(())
}

fn prestart_created(ctx: &mut Ctx) -> Result<()> {
    let mut b = ctx.bundle()?;
    let d = b.host_dir("hk")?;
    for k in ["prestart", "createRuntime"] {
        let script = format!("cat > {}/{k}.json", d.display());
        b.push(&format!("/hooks/{k}"), json!({"path": "/bin/sh", "args": ["sh", "-c", script]}));
    }
    b.args(&["/bin/true"]);
    let c = ctx.create(&b)?;
    for k in ["prestart", "createRuntime"] {
        let s = std::fs::read_to_string(d.join(format!("{k}.json")))?;
        let v: serde_json::Value = serde_json::from_str(&s)?;
        ensure!(v["status"] == "created", "{k}: status {} (want created)", v["status"]);
        ensure!(v["pid"].as_i64() == Some(c.state_pid as i64), "{k}: pid {} (want {})", v["pid"], c.state_pid);
    }
    Ok(())
}

fn exec_paused(ctx: &mut Ctx) -> Result<()> {
    let b = sleeper(ctx)?;
    let c = started(ctx, &b)?;
    ctx.rt(&["pause", &c.id])?.must()?;
    let o = ctx.rt(&["exec", &c.id, "/bin/true"])?;
    let _ = ctx.rt(&["resume", &c.id]);
    ensure!(!o.timed_out, "exec into a paused container hung");
    ensure!(o.elapsed < std::time::Duration::from_secs(5), "exec into a paused container took {:?}", o.elapsed);
    let o = o.must_fail("exec into a paused container")?;
    ensure!(o.stderr.contains("paused"), "the error does not say paused: {:?}", o.stderr.trim());
    Ok(())
}

fn exec_created(ctx: &mut Ctx) -> Result<()> {
    let b = sleeper(ctx)?;
    let c = ctx.create(&b)?;
    let o = ctx.rt(&["exec", &c.id, "/bin/sh", "-c", "echo in-created"])?;
    ensure!(o.code == Some(0) && o.stdout == "in-created\n", "exec into a created container: {}", o.describe());
    ensure!(ctx.status(&c.id)? == "created", "the container is no longer created after exec");
    Ok(())
}

fn pause_created(ctx: &mut Ctx) -> Result<()> {
    let b = sleeper(ctx)?;
    let c = ctx.create(&b)?;
    ctx.rt(&["pause", &c.id])?.must()?;
    ensure!(ctx.status(&c.id)? == "paused", "after pause the status is not paused");
    ctx.rt(&["resume", &c.id])?.must()?;
    ensure!(ctx.status(&c.id)? == "created", "after resume the status is not created");
    Ok(())
}

fn pause_kill(ctx: &mut Ctx) -> Result<()> {
    let b = sleeper(ctx)?;
    let c = started(ctx, &b)?;
    ctx.rt(&["pause", &c.id])?.must()?;
    ctx.kill(&c.id, "KILL")?.must()?;
    let e = exit_within_5s(ctx, &c, "kill KILL of the paused container")?;
    ensure!(e == Exit::Signal(libc::SIGKILL), "the process {e}, want killed by signal 9");
    ensure!(ctx.status(&c.id)? == "stopped", "status after kill KILL of a paused container is {}", ctx.status(&c.id)?);
    Ok(())
}

fn pause_kill_all(ctx: &mut Ctx) -> Result<()> {
    let mut b = ctx.bundle()?;
    // TERM ignored (the loop survives it), USR1 ends the loop with 3.
    b.sh("trap '' TERM; trap 'exit 3' USR1; while :; do sleep 0.05; done");
    let c = started(ctx, &b)?;
    ctx.rt(&["pause", &c.id])?.must()?;
    ctx.rt(&["kill", "--all", &c.id, "TERM"])?.must()?;
    let after = ctx.status(&c.id)?;
    if after != "running" {
        let _ = ctx.rt(&["resume", &c.id]);
        anyhow::bail!("status after kill --all TERM of a paused container is {after}, want running (thawed)");
    }
    // Only a thawed process runs its trap.
    ctx.kill(&c.id, "USR1")?.must()?;
    let e = exit_within_5s(ctx, &c, "USR1 after kill --all")?;
    ensure!(e == Exit::Code(3), "the process {e}, want exit status 3 from its USR1 trap");
    Ok(())
}

/// How the container's process ended, within 5 s of `what`; if it is still
/// there (frozen), the container is resumed for the next case and this fails.
fn exit_within_5s(ctx: &mut Ctx, c: &Created, what: &str) -> Result<Exit> {
    match crate::sys::wait_pid(c.pid, Duration::from_secs(5))? {
        Some(e) => Ok(e),
        None => {
            let _ = ctx.rt(&["resume", &c.id]);
            anyhow::bail!("the process {} was still there 5 s after {what}: still frozen?", c.pid);
        }
    }
}

fn not_executable(ctx: &mut Ctx) -> Result<()> {
    refused_permission_denied(ctx, "/etc/passwd", "a program without x bit")
}

/// `prog` as the program is refused, in runc's words "permission denied".
fn refused_permission_denied(ctx: &mut Ctx, prog: &str, what: &str) -> Result<()> {
    let mut b = ctx.bundle()?;
    b.args(&[prog]);
    let err = expect_refused(ctx, &b, what)?;
    ensure!(err.to_lowercase().contains("permission denied"), "the error does not say permission denied: {}", excerpt(&err));
    Ok(())
}

fn not_found_words(ctx: &mut Ctx) -> Result<()> {
    for prog in ["/no/such/program", "no-such-program"] {
        let mut b = ctx.bundle()?;
        b.args(&[prog]);
        let err = expect_refused(ctx, &b, "a missing program")?.to_lowercase();
        ensure!(err.contains("no such file or directory") || err.contains("not found"), "{prog}: the error does not say not found: {}", excerpt(&err));
    }
    Ok(())
}

fn args_no_path(ctx: &mut Ctx) -> Result<()> {
    let mut b = ctx.bundle()?;
    b.args(&["sh", "-c", "true"]);
    b.set("/process/env", json!(["TERM=xterm"]));
    let err = expect_refused(ctx, &b, "no PATH to find sh in")?.to_lowercase();
    ensure!(err.contains("not found"), "the error does not say not found: {}", excerpt(&err));
    Ok(())
}

fn args_directory(ctx: &mut Ctx) -> Result<()> {
    refused_permission_denied(ctx, "/bin", "a directory as the program")
}

fn console_socket_without_tty(ctx: &mut Ctx) -> Result<()> {
    let b = ctx.bundle()?;
    // A socket that listens, so that a runtime that uses it is not stopped by connect().
    let sock = ctx.path("console.sock");
    let _listener = crate::console::listen(&sock)?;
    let (c, ok) = ctx.try_create(&b, &Opts { console_socket: Some(sock), ..Default::default() })?;
    if ok {
        let _ = ctx.rt(&["delete", "--force", &c.id]);
        anyhow::bail!("create with --console-socket and process.terminal false succeeded");
    }
    ensure!(!c.out.stderr.trim().is_empty(), "refused, but without any error message on stderr");
    ensure!(!ctx.rt(&["state", &c.id])?.ok(), "refused, but state finds {}", c.id);
    Ok(())
}

fn tty_without_console_socket(ctx: &mut Ctx) -> Result<()> {
    let mut b = ctx.bundle()?;
    b.set("/process/terminal", json!(true));
    let (c, ok) = ctx.try_create(&b, &Opts::default())?;
    if ok {
        let _ = ctx.rt(&["delete", "--force", &c.id]);
        anyhow::bail!("create with process.terminal true and no --console-socket succeeded");
    }
    ensure!(c.out.stderr.contains("console"), "the error does not name the console socket: {}", excerpt(&c.out.stderr));
    ensure!(!ctx.rt(&["state", &c.id])?.ok(), "refused, but state finds {}", c.id);
    Ok(())
}

fn exec_detach_tty_without_console_socket(ctx: &mut Ctx) -> Result<()> {
    let b = sleeper(ctx)?;
    let c = started(ctx, &b)?;
    let marker = "/tmp/rtt-exec-tty-ran";
    let o = ctx.rt(&["exec", "--detach", "--tty", &c.id, "/bin/sh", "-c", &format!("touch {marker}")])?;
    ensure!(!o.timed_out, "exec --detach --tty without a console socket hung");
    let o = o.must_fail("exec --detach --tty without --console-socket")?;
    ensure!(o.stderr.contains("console"), "the error does not name the console socket: {}", excerpt(&o.stderr));
    std::thread::sleep(std::time::Duration::from_millis(300));
    let ran = ctx.rt(&["exec", &c.id, "/bin/sh", "-c", &format!("test -e {marker}")])?;
    ensure!(!ran.ok(), "refused, but the process ran ({marker} exists in the container)");
    Ok(())
}

fn oom_denied(ctx: &mut Ctx) -> Result<()> {
    let mut b = ctx.bundle()?;
    b.set("/process/oomScoreAdj", json!(-998));
    let err = expect_refused(ctx, &b, "oomScoreAdj -998 without CAP_SYS_RESOURCE")?;
    ensure!(err.contains("/proc/self/oom_score_adj"), "the error does not name /proc/self/oom_score_adj: {}", excerpt(&err));
    ensure!(err.to_lowercase().contains("permission denied"), "the error does not give the OS error: {}", excerpt(&err));
    Ok(())
}

fn id_range(ctx: &mut Ctx) -> Result<()> {
    for (ptr, v) in [("/process/user/uid", json!(4294967295u32)), ("/process/user/gid", json!(2147483648u32)), ("/process/user/additionalGids", json!([4294967295u32]))] {
        let mut b = ctx.bundle()?;
        b.set(ptr, v.clone());
        expect_refused(ctx, &b, &format!("{ptr} {v}"))?;
    }
    let b = sleeper(ctx)?;
    let c = started(ctx, &b)?;
    for user in ["4294967295", "2147483648", "0:4294967295"] {
        let o = ctx.rt(&["exec", "-u", user, &c.id, "/bin/id"])?;
        ensure!(!o.stdout.contains("uid="), "exec -u {user} ran: {}", o.stdout.trim());
        o.must_fail(&format!("exec -u {user}"))?;
    }
    Ok(())
}

fn env_invalid(ctx: &mut Ctx) -> Result<()> {
    for entry in ["=x", "x"] {
        let mut b = ctx.bundle()?;
        b.set("/process/env", json!(["PATH=/bin", entry]));
        expect_refused(ctx, &b, &format!("env entry {entry:?}"))?;
    }
    let b = sleeper(ctx)?;
    let c = started(ctx, &b)?;
    for entry in ["=x", ""] {
        let o = ctx.rt(&["exec", "-e", entry, &c.id, "/bin/true"])?;
        o.must_fail(&format!("exec -e {entry:?}"))?;
    }
    Ok(())
}
