//! exec: `lxc-attach` into the guest, as nexcage's child (so the engine's
//! wait and plain kill(2) of the returned pid both work).

use std::os::fd::OwnedFd;
use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};

use super::progress::Progress;
use super::{holder, lxc};
use crate::backend::ExecOpts;
use crate::state::Record;

/// The process to run, from `--process` or the flags.
struct Proc {
    args: Vec<String>,
    env: Vec<String>,
    cwd: Option<String>,
    uid: Option<u32>,
    gid: Option<u32>,
    terminal: bool,
}

fn process(opts: &ExecOpts) -> Result<Proc> {
    if let Some(f) = &opts.process_file {
        let text = std::fs::read_to_string(f).with_context(|| format!("read {}", f.display()))?;
        let v: serde_json::Value = serde_json::from_str(&text).with_context(|| format!("parse {}", f.display()))?;
        let strs = |k: &str| -> Vec<String> {
            v.get(k).and_then(|a| a.as_array()).map(|a| a.iter().filter_map(|s| s.as_str().map(String::from)).collect()).unwrap_or_default()
        };
        let user = v.get("user");
        let id = |k: &str| user.and_then(|u| u.get(k)).and_then(|x| x.as_u64()).and_then(|x| u32::try_from(x).ok());
        return Ok(Proc {
            args: strs("args"),
            env: strs("env"),
            cwd: v.get("cwd").and_then(|c| c.as_str()).map(String::from),
            uid: id("uid"),
            gid: id("gid"),
            terminal: v.get("terminal").and_then(|t| t.as_bool()).unwrap_or(false),
        });
    }
    Ok(Proc {
        args: opts.args.clone(),
        env: opts.env.clone(),
        cwd: opts.cwd.as_ref().map(|c| c.display().to_string()),
        uid: opts.uid,
        gid: opts.gid,
        terminal: false,
    })
}

pub fn exec(_rec: &Record, dir: &Path, opts: &ExecOpts) -> Result<i32> {
    let p = Progress::load(dir)?;
    let (name, path) = lxc::name(&p)?;
    if lxc::init_pid(&p).is_none() {
        bail!("container is not running");
    }
    let pr = process(opts)?;
    if pr.args.is_empty() {
        bail!("exec: no command given");
    }
    let mut cmd = Command::new("lxc-attach");
    cmd.args(["-n", &name, "-P"]).arg(path).arg("--clear-env");
    for e in &pr.env {
        cmd.arg("-v").arg(e);
    }
    if let Some(u) = pr.uid {
        cmd.arg("-u").arg(u.to_string());
    }
    if let Some(g) = pr.gid {
        cmd.arg("-g").arg(g.to_string());
    }
    cmd.arg("--");
    // lxc-attach has no working-directory option: a shell inside changes it.
    match pr.cwd.as_deref().filter(|c| *c != "/" && !c.is_empty()) {
        Some(cwd) => {
            cmd.args(["/bin/sh", "-c", "cd \"$0\" && exec \"$@\"", cwd]).args(&pr.args);
        }
        None => {
            cmd.args(&pr.args);
        }
    }
    let mut _master: Option<OwnedFd> = None;
    if pr.terminal {
        let sock = opts.console_socket.as_ref().context("exec with a terminal needs --console-socket")?;
        let (master, slave) = holder::open_pty()?;
        holder::send_console(sock, &master)?;
        let s2 = slave.try_clone()?;
        let s3 = slave.try_clone()?;
        cmd.stdin(Stdio::from(slave)).stdout(Stdio::from(s2)).stderr(Stdio::from(s3));
        // SAFETY: setsid/ioctl in the child before exec touch no Rust state.
        unsafe {
            use std::os::unix::process::CommandExt;
            cmd.pre_exec(|| {
                libc::setsid();
                libc::ioctl(0, libc::TIOCSCTTY, 0);
                Ok(())
            });
        }
        _master = Some(master);
    }
    let pid = spawn_forwarder(cmd)?;
    drop(_master);
    if let Some(pf) = &opts.pid_file {
        std::fs::write(pf, pid.to_string()).with_context(|| format!("write {}", pf.display()))?;
    }
    Ok(pid)
}

/// lxc-attach forwards no signals (without a pty) and its death leaves the
/// attached process running. So the exec's pid is a small forwarder (our
/// child): it runs lxc-attach, passes catchable signals on to the process
/// in the guest, and exits with lxc-attach's status. Its SIGKILL cannot be
/// passed on: the process in the guest then keeps running (README).
fn spawn_forwarder(mut cmd: Command) -> Result<i32> {
    use nix::sys::wait::{waitpid, WaitStatus};
    use nix::unistd::{fork, ForkResult};
    // SAFETY: nexcage is single-threaded here, so the child may run any code.
    match unsafe { fork() }.context("fork exec forwarder")? {
        ForkResult::Parent { child } => Ok(child.as_raw()),
        ForkResult::Child => {
            let code = (|| -> Result<i32> {
                let child = cmd.spawn().context("cannot run lxc-attach")?;
                let attach = child.id() as i32;
                use signal_hook::consts::*;
                let mut signals = signal_hook::iterator::Signals::new([SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH])?;
                std::thread::spawn(move || {
                    for sig in signals.forever() {
                        // The attached process is lxc-attach's child.
                        let targets = lxc::children(attach);
                        for t in if targets.is_empty() { vec![attach] } else { targets } {
                            let _ = crate::proc::signal(t, sig);
                        }
                    }
                });
                loop {
                    match waitpid(nix::unistd::Pid::from_raw(attach), None) {
                        Ok(WaitStatus::Exited(_, c)) => return Ok(c),
                        Ok(WaitStatus::Signaled(_, s, _)) => return Ok(128 + s as i32),
                        Ok(_) | Err(nix::errno::Errno::EINTR) => continue,
                        Err(e) => bail!("wait for lxc-attach: {e}"),
                    }
                }
            })();
            match code {
                Ok(c) => std::process::exit(c),
                Err(e) => {
                    eprintln!("nexcage exec: {e:#}");
                    std::process::exit(127)
                }
            }
        }
    }
}
