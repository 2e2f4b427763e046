//! Hotplug of `memory`/`swap` on a running guest: a config PUT (`pct set
//! --memory 256`, the UI's slider) writes the new limits into the guest's
//! cgroup at once (PROXMOX-FACTS §4 "On a running CT hot-pluggable keys
//! apply immediately"; pve-container Config.pm `vmconfig_hotplug_pending`
//! → pve-common PVE::CGroup `change_memory_limit`). The cgroup is the one
//! LXC's command socket names for the guest (§10: paths "asked from the
//! command socket (LXC/Command.pm `get_cgroup_path`)", the *limiting*
//! path), whatever layout the guest's LXC config chose. That path is the
//! container dir (`cgfsng_get_limit_cgroup`: `path_lim`), the parent of
//! the guest's processes when the config has an inner dir
//! (`lxc.cgroup.dir.container.inner`, PVE's own `ns`); the double finds it
//! from the init's cgroup (`lxc-info -p`) and that key (`lxc-info -c`).
//! (`lxc-cgroup` cannot stand in for it: LXC 5.0.2's `prepare_cgroup_fd`
//! hands out the inner dir for the limit fd.)
//!
//! `cores` is not hot-pluggable (no branch in `vmconfig_hotplug_pending`):
//! its cpuset is rendered at the next start (§2 item 24).

use std::path::{Path, PathBuf};
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
    let dir = limit_dir(lxc_path, vmid)?;
    let (get, set) = (|k: &str| read_value(&dir, k), |k: &str, v: u64| write_value(&dir, k, v));
    let mem_bytes = memory.map(|m| m * MIB);
    let swap_bytes = swap.map(|s| s * MIB);
    // PVE::CGroup `find_cgroup_controller`: a v1 `memory` mount wins.
    if !Path::new("/sys/fs/cgroup/memory").is_dir() {
        if let Some(s) = swap_bytes {
            set("memory.swap.max", s)?;
        }
        if let (Some(m), Some(mib)) = (mem_bytes, memory) {
            set("memory.high", memory_high_bytes(mib))?;
            set("memory.max", m)?;
        }
        return Ok(());
    }
    let old_mem = get("memory.limit_in_bytes")?;
    let old_memsw = get("memory.memsw.limit_in_bytes")?;
    let mem = mem_bytes.unwrap_or(old_mem);
    let memsw = mem.saturating_add(swap_bytes.unwrap_or(old_memsw.saturating_sub(old_mem)));
    if memsw > old_memsw {
        set("memory.memsw.limit_in_bytes", memsw)?;
        set("memory.limit_in_bytes", mem)
    } else {
        set("memory.limit_in_bytes", mem)?;
        set("memory.memsw.limit_in_bytes", memsw)
    }
}

/// The guest's limit cgroup dir for `memory` (see the module docs).
fn limit_dir(lxc_path: &Path, vmid: u32) -> Result<PathBuf, String> {
    let info = |args: &[&str]| {
        crate::lxc::run(Command::new("lxc-info").args(["-n", &vmid.to_string(), "-P"]).arg(lxc_path).args(args), Duration::from_secs(5))
    };
    let pid = info(&["-p", "-H"])?.trim().to_string();
    let inner = info(&["-c", "lxc.cgroup.dir.container.inner"])?.split_once('=').map(|(_, v)| v.trim().to_string()).unwrap_or_default();
    let cg = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).map_err(|e| format!("guest {vmid} (pid {pid:?}) is not running: {e}"))?;
    let v1 = Path::new("/sys/fs/cgroup/memory").is_dir();
    let line = cg.lines().find_map(|l| {
        let mut f = l.splitn(3, ':');
        let (_, ctrls, path) = (f.next()?, f.next()?, f.next()?);
        let hit = if v1 { ctrls.split(',').any(|c| c == "memory") } else { ctrls.is_empty() };
        hit.then(|| path.to_string())
    });
    let path = line.ok_or_else(|| format!("guest {vmid} is in no memory cgroup"))?;
    let path = Path::new(&path);
    let path = if !inner.is_empty() && path.file_name().is_some_and(|n| n == inner.as_str()) { path.parent().unwrap_or(path) } else { path };
    let root = if v1 { "/sys/fs/cgroup/memory" } else { "/sys/fs/cgroup" };
    Ok(Path::new(root).join(path.strip_prefix("/").unwrap_or(path)))
}

fn read_value(dir: &Path, key: &str) -> Result<u64, String> {
    let f = dir.join(key);
    let out = std::fs::read_to_string(&f).map_err(|e| format!("{}: {e}", f.display()))?;
    out.trim().parse().map_err(|_| format!("{key}: unexpected value {:?}", out.trim()))
}

fn write_value(dir: &Path, key: &str, value: u64) -> Result<(), String> {
    let f = dir.join(key);
    std::fs::write(&f, value.to_string()).map_err(|e| format!("{}: {e}", f.display()))
}
