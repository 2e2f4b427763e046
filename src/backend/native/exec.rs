//! exec: a new process in the running container (libcontainer's tenant).
//! Without `--process` the process is the container's own with the flags
//! laid over it (`backend::oci::exec_process`, runc's rule), written to a
//! process file: libcontainer's tenant builder alone would drop the user,
//! groups, umask, rlimits, AppArmor/SELinux labels and more. A paused
//! container (`--ignore-paused`) is frozen by nexcage's cgroup freezer, not
//! libcontainer's state, so the tenant builder lets it in.

use std::path::Path;

use anyhow::{anyhow, Context, Result};
use libcontainer::container::builder::ContainerBuilder;
use libcontainer::container::{Container, ContainerStatus};
use libcontainer::syscall::syscall::SyscallType;

use super::executor::{has_notify, Executor};
use super::{bundle, describe, init_errors, lc_root};
use crate::backend::{oci, ExecOpts};
use crate::state::Record;

/// Returns the new process's pid.
pub fn exec(rec: &Record, dir: &Path, o: &ExecOpts) -> Result<i32> {
    let mut c = Container::load(lc_root(dir).join(&rec.id)).with_context(|| format!("cannot load native state of {}", rec.id))?;
    let cfg_path = c.bundle().join("config.json");
    let cfg: serde_json::Value = serde_json::from_slice(
        &std::fs::read(&cfg_path).with_context(|| format!("failed to read {}", cfg_path.display()))?,
    )
    .with_context(|| format!("{}: malformed JSON", cfg_path.display()))?;
    let written = match &o.process_file {
        Some(_) => None,
        None => {
            let p = oci::exec_process::from_container(&cfg["process"], o, false, None);
            let f = dir.join(format!("exec-{}.json", std::process::id()));
            std::fs::write(&f, serde_json::to_vec(&p)?).with_context(|| format!("failed to write {}", f.display()))?;
            Some(f)
        }
    };
    let process_file = written.clone().or_else(|| o.process_file.clone());
    // runc execs into a created container (its init waits for start);
    // libcontainer's tenant wants `Running`, so it reads that while the
    // front end's lock keeps start out, then `Created` again.
    let created = c.status() == ContainerStatus::Created;
    if created {
        c.set_status(ContainerStatus::Running).save().map_err(describe)?;
    }
    let res = run_tenant(rec, dir, o, process_file.as_deref(), &c, &cfg);
    if created {
        c.set_status(ContainerStatus::Created).save().map_err(describe)?;
    }
    if let Some(f) = written {
        let _ = std::fs::remove_file(f);
    }
    res
}

fn run_tenant(rec: &Record, dir: &Path, o: &ExecOpts, process_file: Option<&Path>, c: &Container, cfg: &serde_json::Value) -> Result<i32> {
    let process: serde_json::Value = match process_file {
        Some(f) => serde_json::from_slice(&std::fs::read(f).with_context(|| format!("failed to read {}", f.display()))?)
            .with_context(|| format!("{}: malformed JSON", f.display()))?,
        None => cfg["process"].clone(),
    };
    // libcontainer's tenant gets no seccomp profile; nexcage's executor loads
    // the container's before execve where the process has noNewPrivileges
    // (without it, loading needs CAP_SYS_ADMIN the process may not keep).
    let seccomp = match process["noNewPrivileges"].as_bool() {
        Some(true) => bundle::seccomp_of(c.bundle(), cfg)?.filter(|s| !has_notify(s)),
        _ => None,
    };
    // HOME as runc sets it (also for a --process file without one).
    let pid = rec.pid.ok_or_else(|| anyhow!("container {} has no process", rec.id))?;
    let env: Vec<String> = serde_json::from_value(process["env"].clone()).unwrap_or_default();
    let uid = process["user"]["uid"].as_u64().and_then(|u| u32::try_from(u).ok()).unwrap_or(0);
    let home = oci::home::missing_home(&env, Path::new(&format!("/proc/{pid}/root")), uid);
    let mut b = ContainerBuilder::new(rec.id.clone(), SyscallType::default())
        .with_root_path(lc_root(dir))
        .map_err(describe)?
        .with_executor(Executor { seccomp, home, ..Default::default() })
        .with_console_socket(o.console_socket.as_ref())
        .with_preserved_fds(o.preserve_fds);
    if let Some(p) = &o.pid_file {
        b = b.with_pid_file(Some(p)).map_err(describe)?;
    }
    let causes = init_errors::file_in(dir);
    let built = init_errors::capture(&causes, || b.as_tenant().with_detach(o.detach).with_process(process_file).build());
    let causes = init_errors::take(&causes);
    Ok(built.map_err(|e| init_errors::with_causes(describe(e), &causes))?.as_raw())
}
