//! The native container's cgroup manager, through libcgroups (the same manager
//! libcontainer used to create it, so v1, hybrid and v2 all work).

use anyhow::{anyhow, Result};
use libcgroups::common::{create_cgroup_manager, AnyCgroupManager, CgroupConfig, CgroupManager, ControllerOpt};
use libcontainer::container::Container;

use crate::backend::stats::Hierarchy;
use libcontainer::oci_spec::runtime::LinuxResources;

pub fn manager(c: &Container) -> Result<AnyCgroupManager> {
    let cfg = c.spec().map_err(super::describe)?;
    create_cgroup_manager(CgroupConfig {
        cgroup_path: cfg.cgroup_path,
        systemd_cgroup: c.systemd(),
        container_name: c.id().to_string(),
    })
    .map_err(|e| anyhow!("cgroup of {}: {e}", c.id()))
}

pub fn pids(m: &AnyCgroupManager) -> Result<Vec<i32>> {
    let mut v: Vec<i32> = m.get_all_pids().map_err(|e| anyhow!("cannot list cgroup pids: {e}"))?.into_iter().map(|p| p.as_raw()).collect();
    v.sort_unstable();
    Ok(v)
}

/// `disable_oom_killer`: libcgroups writes it (v1 `memory.oom_control`)
/// whenever `resources` has a memory section.
pub fn apply(m: &AnyCgroupManager, resources: &LinuxResources, disable_oom_killer: bool) -> Result<()> {
    m.apply(&ControllerOpt { resources, disable_oom_killer, oom_score_adj: None, freezer_state: None })
        .map_err(|e| anyhow!("cannot update cgroup: {e}"))
}

pub fn stats(m: &AnyCgroupManager) -> Result<crate::backend::Stats> {
    let s = m.stats().map_err(|e| anyhow!("cannot read cgroup stats: {e}"))?;
    let h = if matches!(m, AnyCgroupManager::V1(_)) { Hierarchy::V1 } else { Hierarchy::V2 };
    Ok(crate::backend::stats::from_libcgroups(&s, h))
}
