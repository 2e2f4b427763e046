//! pause and resume: the freezer of the guest's own cgroup (its init's),
//! written by nexcage (`guest_cgroup::freeze`). Not `lxc-freeze`: LXC
//! freezes the limit cgroup, where the holder sits on cgroup v1 (README.md
//! here, *The guest's cgroup*), and a frozen holder could not answer
//! `lxc-unfreeze` through LXC's command socket.

use std::path::Path;

use anyhow::Result;

use super::journal::CreateJournal;
use super::{guest_cgroup, lxc};
use crate::backend::BackendError;

pub fn pause(dir: &Path) -> Result<()> {
    freeze(dir, true)
}

pub fn resume(dir: &Path) -> Result<()> {
    freeze(dir, false)
}

fn freeze(dir: &Path, frozen: bool) -> Result<()> {
    let Some(init) = lxc::init_pid(&CreateJournal::load(dir)?) else { return Err(BackendError::NotRunning.into()) };
    guest_cgroup::freeze(init, frozen)
}
