//! kill: the init, or (`--all`) every process of the container's cgroup.
//! A paused container's thaw after it is `Container::kill`'s (runc's rule).

use std::path::Path;

use anyhow::{anyhow, Result};

use super::{cgroup_manager, load};
use crate::backend::oci;
use crate::backend::BackendError;
use crate::state::Record;

pub fn kill(rec: &Record, dir: &Path, signal: i32, all: bool) -> Result<()> {
    if all {
        let c = load(rec, dir)?;
        let mgr = cgroup_manager::manager(&c)?;
        let pids = cgroup_manager::pids(&mgr)?;
        return oci::kill::all(&pids, signal);
    }
    let pid = rec.pid.ok_or(BackendError::NotRunning)?;
    crate::proc::signal(pid, signal).map_err(|e| match e {
        nix::errno::Errno::ESRCH => BackendError::NoSuchProcess.into(),
        e => anyhow!("kill {pid}: {e}"),
    })?;
    Ok(())
}
