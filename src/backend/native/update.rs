//! update: new resource limits applied to the container's cgroup.

use std::path::Path;

use anyhow::Result;
use libcontainer::oci_spec::runtime::LinuxResources;

use super::{cgroup_manager, load};
use crate::state::Record;

pub fn update(rec: &Record, dir: &Path, resources: &LinuxResources) -> Result<()> {
    let c = load(rec, dir)?;
    cgroup_manager::apply(&cgroup_manager::manager(&c)?, resources)
}
