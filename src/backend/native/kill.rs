//! kill: the init, or (`--all`) every process of the container's cgroup.

use std::path::Path;

use anyhow::{anyhow, Result};
use libcgroups::common::{CgroupManager, FreezerState};

use super::{cgroup_manager, load};
use crate::backend::oci;
use crate::backend::BackendError;
use crate::state::Record;

pub fn kill(rec: &Record, dir: &Path, signal: i32, all: bool) -> Result<()> {
    if all {
        let c = load(rec, dir)?;
        let mgr = cgroup_manager::manager(&c)?;
        let pids = cgroup_manager::pids(&mgr)?;
        // Frozen (v1) tasks cannot take signals; thaw for kill.
        if rec.paused {
            let _ = mgr.freeze(FreezerState::Thawed);
        }
        return oci::kill::all(&pids, signal);
    }
    let pid = rec.pid.ok_or(BackendError::NotRunning)?;
    crate::proc::signal(pid, signal).map_err(|e| match e {
        nix::errno::Errno::ESRCH => BackendError::NoSuchProcess.into(),
        e => anyhow!("kill {pid}: {e}"),
    })?;
    if rec.paused && signal == libc::SIGKILL {
        let c = load(rec, dir)?;
        let _ = cgroup_manager::manager(&c)?.freeze(FreezerState::Thawed);
    }
    Ok(())
}
