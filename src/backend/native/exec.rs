//! exec: a new process in the container (libcontainer's tenant), always
//! from a process file nexcage writes: the `--process` file, or without one
//! the container's own process with the flags laid over it
//! (`backend::oci::exec_process`, runc's rule; libcontainer's tenant
//! builder alone would drop the user, groups, umask, rlimits,
//! AppArmor/SELinux labels and more). The container's seccomp profile is
//! loaded by nexcage's executor right before execve (libcontainer's tenant
//! gets none); without noNewPrivileges the process is lent CAP_SYS_ADMIN
//! for it, as the init is. A paused container (`--ignore-paused`) is
//! frozen by nexcage's cgroup freezer, not libcontainer's state, so the
//! tenant builder lets it in.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context, Result};
use libcontainer::container::builder::ContainerBuilder;
use libcontainer::container::{Container, ContainerStatus};
use libcontainer::oci_spec::runtime::Process;
use libcontainer::syscall::syscall::SyscallType;
use serde_json::Value;

use super::executor::{lend, Executor};
use crate::backend::oci::seccomp_bpf::has_notify;
use super::{bundle, describe, init_errors, lc_root};
use crate::backend::{oci, ExecOpts};
use crate::state::Record;

/// Returns the new process's pid.
pub fn exec(rec: &Record, dir: &Path, o: &ExecOpts) -> Result<i32> {
    let mut c = Container::load(lc_root(dir).join(&rec.id)).with_context(|| format!("cannot load native state of {}", rec.id))?;
    let cfg = read_json(&c.bundle().join("config.json"))?;
    let mut process = match &o.process_file {
        Some(f) => read_json(f)?,
        None => oci::exec_process::from_container(&bundle::process_of(c.bundle(), &cfg)?, o, false, None),
    };
    let dropped = oci::caps::drop_unknown(&mut process);
    if o.process_file.is_some() && !dropped.is_empty() {
        tracing::warn!("{}", oci::caps::warning(&dropped));
    }
    let pid = rec.pid.ok_or_else(|| anyhow!("container {} has no process", rec.id))?;
    let mut executor = Executor::default();
    // HOME as runc sets it (also for a --process file without one).
    let env: Vec<String> = serde_json::from_value(process["env"].clone()).unwrap_or_default();
    let uid = process["user"]["uid"].as_u64().and_then(|u| u32::try_from(u).ok()).unwrap_or(0);
    executor.home = oci::home::missing_home(&env, Path::new(&format!("/proc/{pid}/root")), uid);
    executor.seccomp = bundle::seccomp_of(c.bundle(), &cfg)?.filter(|s| !has_notify(s));
    if executor.seccomp.is_some() {
        let mut p: Process = serde_json::from_value(process.clone()).context("the exec'd process is not a valid OCI process")?;
        executor.lent = lend(&mut p);
        if !executor.lent.is_empty() {
            process = serde_json::to_value(&p)?;
        }
    }
    let file = dir.join(format!("exec-{}.json", std::process::id()));
    std::fs::write(&file, serde_json::to_vec(&process)?).with_context(|| format!("failed to write {}", file.display()))?;
    // runc execs into a created container (its init waits for start);
    // libcontainer's tenant wants `Running`, so it reads that while the
    // front end's lock keeps start out, then `Created` again.
    let created = c.status() == ContainerStatus::Created;
    if created {
        c.set_status(ContainerStatus::Running).save().map_err(describe)?;
    }
    let res = run_tenant(rec, dir, o, file.clone(), executor);
    if created {
        c.set_status(ContainerStatus::Created).save().map_err(describe)?;
    }
    let _ = std::fs::remove_file(file);
    res
}

fn read_json(f: &Path) -> Result<Value> {
    let data = std::fs::read(f).with_context(|| format!("failed to read {}", f.display()))?;
    serde_json::from_slice(&data).with_context(|| format!("{}: malformed JSON", f.display()))
}

fn run_tenant(rec: &Record, dir: &Path, o: &ExecOpts, process_file: PathBuf, executor: Executor) -> Result<i32> {
    let mut b = ContainerBuilder::new(rec.id.clone(), SyscallType::default())
        .with_root_path(lc_root(dir))
        .map_err(describe)?
        .with_executor(executor)
        .with_console_socket(o.console_socket.as_ref())
        .with_preserved_fds(o.preserve_fds);
    if let Some(p) = &o.pid_file {
        b = b.with_pid_file(Some(p)).map_err(describe)?;
    }
    let causes = init_errors::file_in(dir);
    let built = init_errors::capture(&causes, || b.as_tenant().with_detach(o.detach || o.console_socket.is_some()).with_process(Some(process_file)).build());
    let causes = init_errors::take(&causes);
    match built {
        Ok(pid) => Ok(pid.as_raw()),
        Err(e) => {
            reap_children(std::time::Duration::from_secs(1));
            Err(init_errors::with_causes(describe(e), &causes))
        }
    }
}

/// After a failed tenant build, libcontainer's intermediate and init
/// processes (both this process's children: the init is cloned with
/// CLONE_PARENT) are exiting or have exited; reaps them so they are not left
/// as zombies for the system's reaper (a later `kill` waited ~1.3 s on them
/// under an engine's subreaper). Nothing else of this process has children
/// at that point. Bounded by `within`; one still running then is left.
fn reap_children(within: std::time::Duration) {
    use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
    let deadline = std::time::Instant::now() + within;
    loop {
        match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) if std::time::Instant::now() < deadline => std::thread::sleep(std::time::Duration::from_millis(2)),
            Ok(WaitStatus::StillAlive) => {
                tracing::warn!("exec: a libcontainer process of the failed exec is still running after {within:?}");
                return;
            }
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(_) => return, // ECHILD: all reaped
        }
    }
}
