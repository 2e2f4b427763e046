//! pause and resume: the guest's freezer cgroup via lxc-freeze / lxc-unfreeze.

use std::path::Path;

use anyhow::Result;

use super::journal::CreateJournal;
use super::lxc;

pub fn pause(dir: &Path) -> Result<()> {
    lxc::tool(&CreateJournal::load(dir)?, "lxc-freeze")
}

pub fn resume(dir: &Path) -> Result<()> {
    lxc::tool(&CreateJournal::load(dir)?, "lxc-unfreeze")
}
