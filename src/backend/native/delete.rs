//! delete: everything libcontainer made (process, cgroup, its state dir),
//! then the poststop hooks.

use std::path::Path;

use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use libcgroups::common::{CgroupManager, FreezerState};
use libcontainer::container::{Container, ContainerStatus};

use super::hooks::take_hooks;
use super::{cgroup_manager, describe, lc_root};
use crate::backend::oci::{self, hooks::{self, Phase}};
use crate::state::Record;

pub fn delete(rec: &Record, dir: &Path) -> Result<()> {
    let lc_dir = lc_root(dir).join(&rec.id);
    if !lc_dir.exists() {
        return Ok(());
    }
    let mut c = match Container::load(lc_dir.clone()) {
        Ok(c) => c,
        Err(_) => return Ok(std::fs::remove_dir_all(&lc_dir)?),
    };
    // libcontainer stops at the first failing poststop hook and fails the
    // delete; the spec says each failure is a warning and the rest still
    // run. So nexcage takes the poststop hooks out and runs them itself.
    let poststop = take_hooks(&lc_dir, Phase::Poststop);
    // The front end has already checked status; here everything must go.
    c.refresh_status().map_err(describe)?;
    if c.status() != ContainerStatus::Stopped {
        kill_and_reap(&c)?;
    }
    c.delete(true).map_err(describe)?;
    c.state.status = ContainerStatus::Stopped;
    c.state.bundle = rec.bundle.clone(); // libcontainer's may be nexcage's copy (bundle.rs)
    hooks::run(poststop, &c.state, Phase::Poststop)
}

/// How long `delete --force` waits for the killed processes to leave the
/// cgroup. Exit of a large process (its memory torn down) on a loaded host
/// takes tens to hundreds of milliseconds; a process that survives SIGKILL
/// this long is stuck in the kernel (uninterruptible sleep).
const KILL_BOUND: Duration = Duration::from_secs(10);

/// SIGKILLs every process in the container's cgroup and waits, bounded,
/// until the cgroup is empty. libcontainer's own forced delete sends SIGKILL
/// and then gives the cgroup about 100 ms to become removable (libcgroups
/// `remove`: four `rmdir` tries), so under load a delete could fail with
/// "could not delete" and leave the container half removed; runc waits for
/// the processes it killed (`signalAllProcesses`). Processes that fork while
/// being killed are caught by the next pass; the cgroup is thawed first (a
/// paused container's v1-frozen tasks would not take the signal). A signal
/// that cannot be sent (but to a process already gone) fails the delete.
fn kill_and_reap(c: &Container) -> Result<()> {
    let mgr = cgroup_manager::manager(c)?;
    // Thawed whatever the status says: `pause` froze the cgroup, and v1
    // frozen tasks do not take SIGKILL (a paused container's delete
    // failed after the whole bound).
    let _ = mgr.freeze(FreezerState::Thawed);
    let deadline = Instant::now() + KILL_BOUND;
    loop {
        let pids = cgroup_manager::pids(&mgr)?;
        if pids.is_empty() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            bail!("processes {pids:?} of {} did not exit within {}s of SIGKILL", c.id(), KILL_BOUND.as_secs());
        }
        oci::kill::all(&pids, libc::SIGKILL)?;
        std::thread::sleep(Duration::from_millis(2));
    }
}
