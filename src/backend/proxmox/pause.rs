//! pause and resume: the freezer of the guest's cgroup (its init's),
//! written by nexcage (`guest_cgroup::freeze`), which never freezes the
//! holder (README.md here, *The guest's cgroup*), so LXC's command socket
//! keeps answering while the guest is paused.

use std::path::Path;

use anyhow::Result;

use super::journal::CreateJournal;
use super::{guest_cgroup, holder, lxc};
use crate::backend::BackendError;

pub fn pause(dir: &Path) -> Result<()> {
    freeze(dir, true)
}

pub fn resume(dir: &Path) -> Result<()> {
    freeze(dir, false)
}

fn freeze(dir: &Path, frozen: bool) -> Result<()> {
    let j = CreateJournal::load(dir)?;
    let Some(init) = lxc::init_pid(&j) else { return Err(BackendError::NotRunning.into()) };
    // The holder in the guest's cgroup (create's `enter_stats`, with a cgroupsPath).
    let holder = holder::alive(&j).zip(j.vmid).filter(|_| j.cgroup_dir.is_some()).map(|(pid, vmid)| guest_cgroup::Holder { pid, vmid });
    guest_cgroup::freeze(init, frozen, holder.as_ref())
}
