//! `nexcage info NAME`: one container in detail: backend (and VMID/dataset
//! when the backend has them), image, resources asked for and enforced
//! (read back from the cgroup), pids, uptime, last exit.

use anyhow::{Context, Result};
use serde_json::{json, Value};

use super::logfile::{EXIT, LOG};
use crate::container::Container;
use crate::context::Ctx;
use crate::state::{BackendKind, Record};

/// Seconds since `pid` started (its start time after boot, /proc/stat btime).
fn uptime_secs(pid: i32) -> Option<u64> {
    let ticks = crate::proc::start_time(pid)?;
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let btime: u64 = stat.lines().find_map(|l| l.strip_prefix("btime "))?.trim().parse().ok()?;
    let hz = crate::proc::clock_ticks_per_second();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).ok()?.as_secs();
    Some(now.saturating_sub(btime + ticks / hz))
}

/// `{dataset, used, refquota}` of the rootfs dataset (ZFS's own strings).
fn disk_usage(rec: &Record) -> Option<Value> {
    let ds = rec.dataset()?;
    let z = nexcage_zfs::Zfs::new();
    Some(json!({"dataset": ds, "used": z.get(ds, "used").ok(), "refquota": z.get(ds, "refquota").ok()}))
}

/// The state document plus routedBy, image, autoStart, vmid, dataset,
/// disk, resources (asked for), and for a container with a process:
/// enforced (see `enforced`), uptimeSeconds, pids; for admin containers
/// log, exit (the monitor's exit.json) and network (bridge, address,
/// ports: see `network::describe`).
pub fn collect(ctx: &Ctx, id: &str) -> Result<Value> {
    let c = Container::load(ctx, id)?;
    let rec = c.record();
    let mut v = c.state_json();
    let spec: Value = std::fs::read(rec.bundle.join("config.json")).ok()
        .and_then(|d| serde_json::from_slice(&d).ok()).unwrap_or(Value::Null);
    v["routedBy"] = json!(rec.routed_by);
    v["image"] = json!(rec.annotations.get(super::IMAGE_ANNOTATION));
    v["autoStart"] = json!(rec.annotations.get(super::AUTOSTART_ANNOTATION).is_some_and(|s| s == "true"));
    v["vmid"] = json!(rec.vmid());
    v["dataset"] = json!(rec.dataset());
    if let Some(d) = disk_usage(rec) {
        v["disk"] = d;
    }
    v["resources"] = spec["linux"]["resources"].clone();
    if c.status().has_process() {
        let pid = rec.pid.unwrap_or(0);
        let pids = c.pids(ctx).unwrap_or_default();
        // A Proxmox guest's limits are on its own cgroup, not the holder's.
        let in_cgroup = match rec.backend {
            BackendKind::Proxmox => pids.iter().copied().find(|p| *p != pid).unwrap_or(pid),
            BackendKind::Native => pid,
        };
        v["enforced"] = super::enforced::enforced(in_cgroup);
        v["uptimeSeconds"] = json!(uptime_secs(pid));
        v["pids"] = json!(pids);
    }
    if super::is_admin(rec) {
        if let Some(n) = crate::network::plan::load(&rec.bundle)? {
            v["network"] = crate::network::describe(id, rec.vmid(), &n);
        }
        v["log"] = json!(rec.bundle.join(LOG));
        if let Ok(d) = std::fs::read(rec.bundle.join(EXIT)) {
            v["exit"] = serde_json::from_slice(&d).context("exit.json")?;
        }
    }
    Ok(v)
}
