//! update: new limits for the guest's cgroup (the one its PID 1 is in:
//! `linux.cgroupsPath`, else LXC's `lxc.payload.<vmid>`), applied through
//! libcgroups and read back as the native backend does
//! (`native::update::update_cgroup`): memory with swap in the order the
//! kernel accepts, pids, cpu, cpuset, blkio, `disableOOMKiller`; a file the
//! host lacks or a value the kernel refuses fails the update clearly. The
//! guest's Proxmox config gets the same memory, swap and CPU values first.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{anyhow, Context, Result};
use libcgroups::common::{create_cgroup_manager, CgroupConfig};
use libcontainer::oci_spec::runtime::LinuxResources;

use nexcage_pve::driver::ControlPlane;

use super::journal::CreateJournal;
use super::owner::Verdict;
use super::{guest_cgroup, lxc, Proxmox};
use crate::backend::native::update::update_cgroup;
use crate::backend::BackendError;

pub fn update(px: &Proxmox, dir: &Path, r: &LinuxResources) -> Result<()> {
    let j = CreateJournal::load(dir)?;
    let Some(init) = lxc::init_pid(&j) else { return Err(BackendError::NotRunning.into()) };
    let path = guest_cgroup::path_of(init).context("the guest is in no memory cgroup")?;
    let m = create_cgroup_manager(CgroupConfig { cgroup_path: path.clone(), systemd_cgroup: false, container_name: j.vmid.unwrap_or(0).to_string() })
        .map_err(|e| anyhow!("the guest's cgroup {}: {e}", path.display()))?;
    // Device rules stay LXC's, as runc's update changes none (containerd
    // passes the spec's whole list again, led by "deny a").
    let mut r = r.clone();
    r.set_devices(None);
    // Proxmox's view first, so that its refusal (a lock, a bound) changes
    // nothing; put back should the cgroup refuse the new limits.
    let registered = registered_view(px, &j, &r)?;
    if let Err(e) = update_cgroup(&m, init, &r) {
        if let Some(view) = registered {
            view.restore();
        }
        return Err(e);
    }
    Ok(())
}

/// The guest's Proxmox config before an update changed its `memory`,
/// `swap`, `cpuunits`, `cpulimit` or `cores` (PUT, as `pct set` would: on a
/// node PVE applies them to the running guest's cgroups too, through LXC's
/// command socket, which the holder answers).
struct RegisteredView {
    cp: Box<dyn ControlPlane>,
    vmid: u32,
    before: BTreeMap<String, Option<String>>,
}

impl RegisteredView {
    fn restore(self) {
        let set = self.before.iter().filter_map(|(k, v)| Some((k.clone(), v.clone()?))).collect();
        let delete: Vec<String> = self.before.iter().filter(|(_, v)| v.is_none()).map(|(k, _)| k.clone()).collect();
        if let Err(e) = self.cp.set_config(self.vmid, &set, &delete) {
            tracing::warn!("could not put guest {}'s config back: {e}", self.vmid);
        }
    }
}

/// Writes the update's keys into the guest's Proxmox config when the guest
/// is this container's (the owner record; a VMID an operator reused is
/// left alone). None when nothing was written.
fn registered_view(px: &Proxmox, j: &CreateJournal, r: &LinuxResources) -> Result<Option<RegisteredView>> {
    let update = serde_json::to_value(r)?;
    let touches = nexcage_pve::mapping::update_touches_config(&update);
    let (Some(vmid), Some(owner), true) = (j.vmid.filter(|_| j.guest), &j.owner, touches) else { return Ok(None) };
    let cp = px.for_journal(j)?.driver()?;
    let config = match owner.check_guest(&*cp, vmid)? {
        (Verdict::Ours, Some(c)) => c,
        _ => return Ok(None),
    };
    let host = nexcage_pve::mapping::host_memory_mib().unwrap_or((1 << 20, 0));
    let base = nexcage_pve::mapping::UpdateBase { memory_mib: config.keys.get("memory").and_then(|m| m.parse().ok()), host_memory_mib: host.0, host_swap_mib: host.1 };
    let (set, delete) = nexcage_pve::mapping::update_keys(&update, base)?;
    if set.is_empty() && delete.is_empty() {
        return Ok(None);
    }
    let before = set.keys().chain(delete.iter()).map(|k| (k.clone(), config.keys.get(k).cloned())).collect();
    cp.set_config(vmid, &set, &delete).with_context(|| format!("update guest {vmid}'s config"))?;
    Ok(Some(RegisteredView { cp, vmid, before }))
}
