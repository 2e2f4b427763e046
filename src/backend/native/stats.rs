//! ps and stats: the container's cgroup, read through libcgroups.

use std::path::Path;

use anyhow::Result;

use super::{cgroup_manager, load};
use crate::backend::Stats;
use crate::state::Record;

/// Every pid of the container's cgroup, sorted.
pub fn pids(rec: &Record, dir: &Path) -> Result<Vec<i32>> {
    let c = load(rec, dir)?;
    cgroup_manager::pids(&cgroup_manager::manager(&c)?)
}

pub fn stats(rec: &Record, dir: &Path) -> Result<Stats> {
    let c = load(rec, dir)?;
    cgroup_manager::stats(&cgroup_manager::manager(&c)?)
}
