//! pause and resume: the freezer of the guest's cgroup (its init's),
//! written by nexcage (`guest_cgroup::freeze`), which the holder never
//! joins (README.md here, *The guest's cgroup*), so LXC's command socket
//! keeps answering while the guest is paused.

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
