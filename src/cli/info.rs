//! `nexcage info NAME`: one container in detail: backend (and VMID/dataset
//! when the backend has them), image, resources asked for and enforced
//! (read back from the cgroup), pids, uptime, last exit.

use anyhow::{Context, Result};
use serde_json::{json, Value};

use super::Ctx;
use crate::admin::{self, logfile::EXIT};
use crate::backend;
use crate::container::{state_json, status};
use crate::state::Status;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Output format
    #[arg(long, default_value = "text", value_parser = ["text", "json"])]
    pub format: String,
    /// Container name
    pub name: String,
}

fn uptime_secs(pid: i32) -> Option<u64> {
    let ticks = crate::proc::start_time(pid)?;
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let btime: u64 = stat.lines().find_map(|l| l.strip_prefix("btime "))?.trim().parse().ok()?;
    // SAFETY: sysconf has no memory effects; it only reads a constant.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).ok()?.as_secs();
    Some(now.saturating_sub(btime + ticks / hz))
}

fn disk_usage(data: &crate::backend::BackendData) -> Option<Value> {
    let ds = data.dataset()?;
    let z = nexcage_zfs::Zfs::new();
    Some(json!({"dataset": ds, "used": z.get(ds, "used").ok(), "refquota": z.get(ds, "refquota").ok()}))
}

pub fn collect(ctx: &Ctx, id: &str) -> Result<Value> {
    let locked = ctx.store()?.lock(id)?;
    let rec = locked.load()?;
    let st = status(&rec);
    let mut v = state_json(&rec);
    let spec: Value = std::fs::read(rec.bundle.join("config.json")).ok()
        .and_then(|d| serde_json::from_slice(&d).ok()).unwrap_or(Value::Null);
    v["routedBy"] = json!(rec.routed_by);
    v["image"] = json!(rec.annotations.get(admin::IMAGE_ANNOTATION));
    v["autoStart"] = json!(rec.annotations.get(admin::AUTOSTART_ANNOTATION).is_some_and(|s| s == "true"));
    v["vmid"] = json!(rec.backend_data.vmid());
    v["dataset"] = json!(rec.backend_data.dataset());
    if let Some(d) = disk_usage(&rec.backend_data) {
        v["disk"] = d;
    }
    v["resources"] = spec["linux"]["resources"].clone();
    if matches!(st, Status::Running | Status::Created | Status::Paused) {
        let pid = rec.pid.unwrap_or(0);
        let pids = backend::for_kind(rec.backend, ctx.config_path.as_deref())?.pids(&rec, &locked.dir).unwrap_or_default();
        // A Proxmox guest's limits are on its own cgroup, not the holder's.
        let in_cgroup = match rec.backend {
            crate::state::BackendKind::Proxmox => pids.iter().copied().find(|p| *p != pid).unwrap_or(pid),
            crate::state::BackendKind::Native => pid,
        };
        v["enforced"] = admin::cgroup::enforced(in_cgroup);
        v["uptimeSeconds"] = json!(uptime_secs(pid));
        v["pids"] = json!(pids);
    }
    if admin::is_admin(&rec) {
        v["log"] = json!(rec.bundle.join(admin::logfile::LOG));
        if let Ok(d) = std::fs::read(rec.bundle.join(EXIT)) {
            v["exit"] = serde_json::from_slice(&d).context("exit.json")?;
        }
    }
    Ok(v)
}

pub fn run(a: Args, ctx: &Ctx) -> Result<i32> {
    let v = collect(ctx, &a.name)?;
    if a.format == "json" {
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(0);
    }
    let s = |k: &str| match &v[k] {
        Value::Null => "-".to_string(),
        Value::String(s) => s.clone(),
        o => o.to_string(),
    };
    for (label, key) in [("Name", "id"), ("Status", "status"), ("Backend", "backend"), ("Routed by", "routedBy"),
        ("VMID", "vmid"), ("Dataset", "dataset"), ("Image", "image"), ("Bundle", "bundle"), ("Created", "created"),
        ("Pid", "pid"), ("Uptime (s)", "uptimeSeconds"), ("Auto-start", "autoStart"), ("Log", "log")] {
        println!("{label:<12} {}", s(key));
    }
    if let Some(d) = v.get("disk") {
        println!("{:<12} used {} of {}", "Disk", d["used"].as_str().unwrap_or("-"), d["refquota"].as_str().unwrap_or("-"));
    }
    if let Some(p) = v["pids"].as_array() {
        println!("{:<12} {}", "Processes", p.iter().map(|x| x.to_string()).collect::<Vec<_>>().join(" "));
    }
    if let Some(e) = v["enforced"].as_object() {
        for (k, x) in e {
            println!("{:<12} {k} = {}", "Enforced", if x.is_null() { "unlimited".into() } else { x.to_string() });
        }
    }
    if let Some(e) = v.get("exit") {
        println!("{:<12} code {} at {}", "Last exit", e["exitCode"], e["finishedAt"].as_str().unwrap_or("-"));
    }
    Ok(0)
}
