//! exec: a new process in the running guest, attached the way runc's exec
//! is (not through `lxc-attach`): nexcage enters the guest's pid namespace
//! for its children and forks; the child joins the guest's cgroups and
//! other namespaces, becomes the process's user with its capabilities and
//! seccomp profile, and execs (`attach.rs`). The pid the engine gets is the
//! process itself, so wait(2) and kill(2) of it (SIGKILL included) reach
//! it; it is nexcage's child, re-parented to the engine's subreaper when a
//! detached exec returns.

use std::io::Read;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;

use anyhow::{bail, Context, Result};
use libcontainer::oci_spec::runtime::{Capability, LinuxCapabilities, Process, Spec, User};
use nix::sched::CloneFlags;
use nix::unistd::{fork, ForkResult};

use super::attach::{self, Target};
use super::lxc;
use super::journal::CreateJournal;
use crate::backend::ExecOpts;
use crate::state::Record;

pub fn exec(rec: &Record, dir: &Path, opts: &ExecOpts) -> Result<i32> {
    let p = CreateJournal::load(dir)?;
    let Some(init) = lxc::init_pid(&p) else { return Err(crate::backend::BackendError::NotRunning.into()) };
    // The shared loader: unknown capability names are dropped (runc's rule).
    let spec = crate::spec::load(&rec.bundle).context("cannot read the container's config.json")?.spec;
    let process = process(&spec, opts)?;
    if process.args().as_ref().is_none_or(|a| a.is_empty()) {
        bail!("exec: no command given");
    }
    let console = match process.terminal() {
        Some(true) => {
            let sock = opts.console_socket.as_ref().context("exec with a terminal needs --console-socket")?;
            Some(UnixStream::connect(sock).with_context(|| format!("cannot connect to console socket {}", sock.display()))?)
        }
        _ => None,
    };
    let target = Target::open(init, &process, spec.linux().as_ref().and_then(|l| l.seccomp().as_ref().map(crate::backend::oci::seccomp_bpf::loadable)), console, opts.preserve_fds)?;
    let child = spawn(&target).map_err(|e| anyhow::anyhow!("exec failed: {e:#}"))?;
    if let Some(pf) = &opts.pid_file {
        std::fs::write(pf, child.to_string()).with_context(|| format!("write {}", pf.display()))?;
    }
    Ok(child)
}

/// Starts `t`'s process in the guest; its pid (nexcage's child). Fails
/// with what the child reported when it could not exec.
pub fn spawn(t: &Target) -> Result<i32> {
    let (rd, wr) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).context("pipe")?;
    let child = fork_in_pid_ns(t, wr)?;
    // The child writes why it failed, or nothing: the pipe closes at its exec.
    let mut msg = String::new();
    let _ = std::fs::File::from(rd).read_to_string(&mut msg);
    if !msg.is_empty() {
        let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(child), None);
        bail!("{msg}");
    }
    Ok(child)
}

/// Forks with the guest's pid namespace for the child, then restores ours
/// for later children. Returns the child's pid (in our namespace).
fn fork_in_pid_ns(t: &Target, err_pipe: OwnedFd) -> Result<i32> {
    let own = std::fs::File::open("/proc/self/ns/pid_for_children").context("open /proc/self/ns/pid_for_children")?;
    if let Some(pidns) = &t.pid_ns {
        nix::sched::setns(pidns.as_fd(), CloneFlags::CLONE_NEWPID).context("cannot enter the guest's pid namespace")?;
    }
    // SAFETY: nexcage is single-threaded here (no runtime, no worker threads
    // yet), so the child may run arbitrary code; it never returns (_exit).
    let forked = unsafe { fork() };
    match forked {
        Ok(ForkResult::Child) => attach::child(t, err_pipe),
        Ok(ForkResult::Parent { child }) => {
            drop(err_pipe);
            nix::sched::setns(own.as_fd(), CloneFlags::CLONE_NEWPID).context("cannot return to our pid namespace")?;
            Ok(child.as_raw())
        }
        Err(e) => {
            let _ = nix::sched::setns(own.as_fd(), CloneFlags::CLONE_NEWPID);
            Err(e).context("fork exec process")
        }
    }
}

/// The process to run: `--process` as given (like runc), or the container's
/// process with the command line's args, env, cwd, user and caps applied.
fn process(spec: &Spec, opts: &ExecOpts) -> Result<Process> {
    if let Some(f) = &opts.process_file {
        let text = std::fs::read_to_string(f).with_context(|| format!("read {}", f.display()))?;
        return serde_json::from_str(&text).with_context(|| format!("process file {}: not an OCI process", f.display()));
    }
    let mut p = spec.process().clone().unwrap_or_default();
    p.set_args(Some(opts.args.clone()));
    p.set_terminal(Some(false));
    let mut env = p.env().clone().unwrap_or_default();
    env.extend(opts.env.iter().cloned());
    p.set_env(Some(env));
    if let Some(cwd) = &opts.cwd {
        p.set_cwd(cwd.clone());
    }
    let mut user: User = p.user().clone();
    // Like runc: --user UID keeps the container's gid unless one is given.
    if let Some(uid) = opts.uid {
        user.set_uid(uid);
    }
    if let Some(gid) = opts.gid {
        user.set_gid(gid);
    }
    if !opts.additional_gids.is_empty() {
        user.set_additional_gids(Some(opts.additional_gids.clone()));
    }
    p.set_user(user);
    if !opts.caps.is_empty() {
        let mut caps: LinuxCapabilities = p.capabilities().clone().unwrap_or_default();
        for c in &opts.caps {
            let cap: Capability = serde_json::from_value(c.as_str().into()).map_err(|_| anyhow::anyhow!("--cap {c}: unknown capability"))?;
            let add = |s: &Option<std::collections::HashSet<Capability>>| {
                let mut s = s.clone().unwrap_or_default();
                s.insert(cap);
                Some(s)
            };
            caps.set_bounding(add(caps.bounding()));
            caps.set_effective(add(caps.effective()));
            caps.set_permitted(add(caps.permitted()));
        }
        p.set_capabilities(Some(caps));
    }
    if opts.no_new_privs {
        p.set_no_new_privileges(Some(true));
    }
    Ok(p)
}
