//! Hotplug of `memory`/`swap` on a running guest: a config PUT (`pct set
//! --memory 256`, the UI's slider) writes the new limits into the guest's
//! cgroup at once (PROXMOX-FACTS §4 "On a running CT hot-pluggable keys
//! apply immediately"; pve-container Config.pm `vmconfig_hotplug_pending`
//! → pve-common PVE::CGroup `change_memory_limit`). The cgroup is the one
//! LXC's command socket names for the guest (§10: paths "asked from the
//! command socket (LXC/Command.pm `get_cgroup_path`)", the *limiting*
//! path), whatever layout the guest's LXC config chose. The double asks
//! the same socket through `lxc-cgroup -n VMID -P <lxcpath>`, which reads
//! and writes the files there.
//!
//! `cores` is not hot-pluggable (no branch in `vmconfig_hotplug_pending`):
//! its cpuset is rendered at the next start (§2 item 24).

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::lxcconf::memory_high_bytes;

const MIB: u64 = 1024 * 1024;

/// Applies new `memory`/`swap` (MiB; `None`: unchanged) to guest `vmid`'s
/// memory cgroup, as `change_memory_limit` does: cgroup v2 writes
/// `memory.swap.max`, `memory.high`, `memory.max`; v1 writes
/// `memory.limit_in_bytes` and `memory.memsw.limit_in_bytes` (memory +
/// swap) in the order that keeps memsw ≥ mem (growing: memsw first).
/// Errors name the file, as PVE's "unable to hotplug memory: …".
pub fn memory(lxc_path: &Path, vmid: u32, memory: Option<u64>, swap: Option<u64>) -> Result<(), String> {
    let mem_bytes = memory.map(|m| m * MIB);
    let swap_bytes = swap.map(|s| s * MIB);
    // PVE::CGroup `find_cgroup_controller`: a v1 `memory` mount wins.
    if !Path::new("/sys/fs/cgroup/memory").is_dir() {
        if let Some(s) = swap_bytes {
            set(lxc_path, vmid, "memory.swap.max", s)?;
        }
        if let (Some(m), Some(mib)) = (mem_bytes, memory) {
            set(lxc_path, vmid, "memory.high", memory_high_bytes(mib))?;
            set(lxc_path, vmid, "memory.max", m)?;
        }
        return Ok(());
    }
    let old_mem = get(lxc_path, vmid, "memory.limit_in_bytes")?;
    let old_memsw = get(lxc_path, vmid, "memory.memsw.limit_in_bytes")?;
    let mem = mem_bytes.unwrap_or(old_mem);
    let memsw = mem.saturating_add(swap_bytes.unwrap_or(old_memsw.saturating_sub(old_mem)));
    if memsw > old_memsw {
        set(lxc_path, vmid, "memory.memsw.limit_in_bytes", memsw)?;
        set(lxc_path, vmid, "memory.limit_in_bytes", mem)
    } else {
        set(lxc_path, vmid, "memory.limit_in_bytes", mem)?;
        set(lxc_path, vmid, "memory.memsw.limit_in_bytes", memsw)
    }
}

fn lxc_cgroup(lxc_path: &Path, vmid: u32) -> Command {
    let mut c = Command::new("lxc-cgroup");
    c.args(["-n", &vmid.to_string(), "-P"]).arg(lxc_path);
    c
}

fn get(lxc_path: &Path, vmid: u32, key: &str) -> Result<u64, String> {
    let out = crate::lxc::run(lxc_cgroup(lxc_path, vmid).arg(key), Duration::from_secs(5))?;
    out.trim().parse().map_err(|_| format!("{key}: unexpected value {:?}", out.trim()))
}

fn set(lxc_path: &Path, vmid: u32, key: &str, value: u64) -> Result<(), String> {
    crate::lxc::run(lxc_cgroup(lxc_path, vmid).args([key, &value.to_string()]), Duration::from_secs(5)).map(|_| ())
}
