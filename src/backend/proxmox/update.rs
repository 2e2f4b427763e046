//! update: new limits for the guest's cgroup (the one its PID 1 is in:
//! `linux.cgroupsPath`, else LXC's `lxc.payload.<vmid>`), applied through
//! libcgroups and read back as the native backend does
//! (`native::update::update_cgroup`): memory with swap in the order the
//! kernel accepts, pids, cpu, cpuset, blkio, `disableOOMKiller`; a file the
//! host lacks or a value the kernel refuses fails the update clearly.

use std::path::Path;

use anyhow::{anyhow, Context, Result};
use libcgroups::common::{create_cgroup_manager, CgroupConfig};
use libcontainer::oci_spec::runtime::LinuxResources;

use super::journal::CreateJournal;
use super::{guest_cgroup, lxc};
use crate::backend::native::update::update_cgroup;
use crate::backend::BackendError;

pub fn update(dir: &Path, r: &LinuxResources) -> Result<()> {
    let j = CreateJournal::load(dir)?;
    let Some(init) = lxc::init_pid(&j) else { return Err(BackendError::NotRunning.into()) };
    let path = guest_cgroup::path_of(init).context("the guest is in no memory cgroup")?;
    let m = create_cgroup_manager(CgroupConfig { cgroup_path: path.clone(), systemd_cgroup: false, container_name: j.vmid.unwrap_or(0).to_string() })
        .map_err(|e| anyhow!("the guest's cgroup {}: {e}", path.display()))?;
    // Device rules stay LXC's, as runc's update changes none (containerd
    // passes the spec's whole list again, led by "deny a").
    let mut r = r.clone();
    r.set_devices(None);
    update_cgroup(&m, init, &r)
}
