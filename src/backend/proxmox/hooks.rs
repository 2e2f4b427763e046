//! OCI hooks on the Proxmox path, with the container's state on stdin
//! (failure rules: `backend::oci::hooks`): `prestart` and `createRuntime`
//! at the end of create, `poststart` after start and `poststop` after
//! delete, in the runtime's namespaces; `createContainer` (end of create)
//! and `startContainer` (start, before the process runs) in the guest's
//! namespaces and cgroups, as root of the guest, the way `exec` enters
//! it (`exec.rs`, `attach.rs`). The state's pid is the guest's PID 1.
//!
//! Unlike runc, a `createContainer` hook's path resolves in the guest (the
//! guest is already pivoted into its rootfs when the hook runs), and its
//! `argv[0]` is its path.

use std::collections::HashMap;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use libcontainer::container::{ContainerStatus, State};
use libcontainer::oci_spec::runtime::{Hook, Process, Spec, User};

use crate::backend::oci::hooks::{self, Phase};

/// The guest-side hooks: which list, and the state's status.
#[derive(Clone, Copy)]
pub enum GuestPhase {
    /// `createContainer`, end of create: a failure fails create.
    CreateContainer,
    /// `startContainer`, at start before the process: a failure fails start.
    StartContainer,
}

/// Runs the spec's `createContainer` or `startContainer` hooks in the
/// guest whose PID 1 is `init` (host pid); the first failure is the error.
pub fn run_in_guest(spec: &Spec, id: &str, bundle: &Path, init: i32, phase: GuestPhase) -> Result<()> {
    let Some(h) = spec.hooks() else { return Ok(()) };
    let (list, name) = match phase {
        GuestPhase::CreateContainer => (h.create_container(), "createContainer"),
        GuestPhase::StartContainer => (h.start_container(), "startContainer"),
    };
    let state = state(spec, id, bundle, Some(init), ContainerStatus::Created);
    let json = serde_json::to_vec(&state)?;
    for hook in list.iter().flatten() {
        let path = hook.path().display().to_string();
        run_one(hook, init, &json).with_context(|| format!("{name} hook {path} failed"))?;
    }
    Ok(())
}

/// One hook as an exec into the guest: `json` on its stdin, its timeout
/// (seconds) enforced with SIGKILL.
fn run_one(hook: &Hook, init: i32, json: &[u8]) -> Result<()> {
    let mut args = vec![hook.path().display().to_string()];
    args.extend(hook.args().iter().flatten().skip(1).cloned());
    let mut p = Process::default();
    p.set_args(Some(args));
    p.set_env(Some(hook.env().clone().unwrap_or_default()));
    p.set_cwd("/".into());
    p.set_user(User::default());
    p.set_capabilities(None);
    p.set_terminal(Some(false));
    p.set_rlimits(None);
    let target = super::attach::Target::open(init, &p, None, None, 0)?;
    // The state on the hook's stdin: a pipe in place of our fd 0 across the
    // fork (nexcage is single-threaded here).
    let (rd, wr) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).context("pipe")?;
    std::fs::File::from(wr).write_all(json).context("write the hook's state")?;
    let saved = nix::unistd::dup(0).context("dup stdin")?;
    nix::unistd::dup2(rd.as_raw_fd(), 0).context("dup2 the hook's stdin")?;
    let spawned = super::exec::spawn(&target);
    let _ = nix::unistd::dup2(saved, 0);
    let _ = nix::unistd::close(saved);
    let pid = nix::unistd::Pid::from_raw(spawned?);
    let deadline = hook.timeout().map(|t| Instant::now() + Duration::from_secs(t.max(1) as u64));
    use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
    loop {
        match waitpid(pid, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(_, 0)) => return Ok(()),
            Ok(WaitStatus::Exited(_, c)) => bail!("exit status {c}"),
            Ok(WaitStatus::Signaled(_, s, _)) => bail!("signal: {s}"),
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => {}
            Err(e) => bail!("wait: {e}"),
        }
        if deadline.is_some_and(|d| Instant::now() > d) {
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
            let _ = waitpid(pid, None);
            bail!("timeout");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The hooks of a recorded container (poststart, poststop), from its
/// bundle's config.json, with the record's pid (the guest's PID 1) in the
/// state; a config that cannot be read has none to run.
pub fn run_recorded(rec: &crate::state::Record, phase: Phase) -> Result<()> {
    match crate::spec::load(&rec.bundle) {
        Ok(b) => run(&b.spec, &rec.id, &rec.bundle, rec.pid, phase),
        Err(_) => Ok(()),
    }
}

/// Runs the spec's hooks of `phase` with the state the spec gives them.
pub fn run(spec: &Spec, id: &str, bundle: &Path, pid: Option<i32>, phase: Phase) -> Result<()> {
    let Some(h) = spec.hooks() else { return Ok(()) };
    let (list, status): (Vec<Hook>, ContainerStatus) = match phase {
        Phase::Create => {
            let mut v = h.prestart().clone().unwrap_or_default();
            v.extend(h.create_runtime().clone().unwrap_or_default());
            (v, ContainerStatus::Created)
        }
        Phase::Poststart => (h.poststart().clone().unwrap_or_default(), ContainerStatus::Running),
        Phase::Poststop => (h.poststop().clone().unwrap_or_default(), ContainerStatus::Stopped),
    };
    if list.is_empty() {
        return Ok(());
    }
    let state = state(spec, id, bundle, pid, status);
    hooks::run(list, &state, phase)
}

fn state(spec: &Spec, id: &str, bundle: &Path, pid: Option<i32>, status: ContainerStatus) -> State {
    State {
        oci_version: spec.version().clone(),
        id: id.to_string(),
        status,
        pid,
        bundle: bundle.to_path_buf(),
        annotations: spec.annotations().clone().map(|a| a.into_iter().collect::<HashMap<_, _>>()),
        ..Default::default()
    }
}
