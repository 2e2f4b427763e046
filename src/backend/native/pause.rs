//! pause and resume: the container's cgroup freezer. Through libcgroups,
//! not libcontainer's pause (which refuses a created container; runc
//! freezes it, and so does nexcage).

use std::path::Path;

use anyhow::{anyhow, Result};
use libcgroups::common::{CgroupManager, FreezerState};

use super::{cgroup_manager, load};
use crate::state::Record;

pub fn pause(rec: &Record, dir: &Path) -> Result<()> {
    freeze(rec, dir, FreezerState::Frozen)
}

pub fn resume(rec: &Record, dir: &Path) -> Result<()> {
    freeze(rec, dir, FreezerState::Thawed)
}

fn freeze(rec: &Record, dir: &Path, state: FreezerState) -> Result<()> {
    let m = cgroup_manager::manager(&load(rec, dir)?)?;
    m.freeze(state).map_err(|e| anyhow!("failed to set the freezer of {} to {state:?}: {e}", rec.id))
}
