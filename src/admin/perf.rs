//! `nexcage performance metrics|check` and `nexcage memory stats`: what
//! the kernel says about load and pressure (PSI, Documentation/accounting/
//! psi.rst), what the containers and nexcage's own processes use.

use serde_json::{json, Value};

use super::report::{Level, Report};
use crate::context::Ctx;

/// `/proc/pressure/<what>`'s `some avg10` (percent of time stalled), if
/// the kernel has PSI.
fn psi(what: &str) -> Option<f64> {
    let t = std::fs::read_to_string(format!("/proc/pressure/{what}")).ok()?;
    let some = t.lines().find(|l| l.starts_with("some "))?;
    some.split_whitespace().find_map(|f| f.strip_prefix("avg10="))?.parse().ok()
}

fn loadavg() -> Vec<f64> {
    std::fs::read_to_string("/proc/loadavg").unwrap_or_default().split_whitespace().take(3).filter_map(|x| x.parse().ok()).collect()
}

pub fn cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn running(ctx: &Ctx) -> usize {
    let Ok(store) = ctx.store() else { return 0 };
    store.ids().unwrap_or_default().iter()
        .filter_map(|id| crate::container::Container::load_from(&store, id).ok())
        .filter(|c| c.status().to_string() == "running")
        .count()
}

/// `performance metrics`: CPUs, load averages, PSI `some avg10` of cpu,
/// memory and io (percent; null without PSI), running containers.
pub fn metrics(ctx: &Ctx) -> Value {
    json!({
        "cpus": cpus(),
        "loadAverage": loadavg(),
        "pressure": {"cpu": psi("cpu"), "memory": psi("memory"), "io": psi("io")},
        "runningContainers": running(ctx),
    })
}

/// `performance check`: ok / warn lines from [`metrics`]: load above the
/// CPU count, or more than 10% of time stalled on a resource.
pub fn check(ctx: &Ctx) -> bool {
    let m = metrics(ctx);
    let mut r = Report::default();
    let load = m["loadAverage"][0].as_f64().unwrap_or(0.0);
    let n = cpus();
    let msg = format!("{load:.2} over 1 min on {n} CPUs");
    if load > n as f64 {
        r.line(Level::Warn, "load", &msg, "more runnable tasks than CPUs: limit containers with --cores / update --cpu-quota");
    } else {
        r.line(Level::Ok, "load", &msg, "");
    }
    for what in ["cpu", "memory", "io"] {
        match m["pressure"][what].as_f64() {
            None => r.line(Level::Warn, "pressure", &format!("{what}: the kernel has no PSI"), "boot with psi=1 for stall figures"),
            Some(p) if p > 10.0 => r.line(Level::Warn, "pressure", &format!("{what}: {p:.1}% of the last 10 s stalled"), "see nexcage stats for the containers using it"),
            Some(p) => r.line(Level::Ok, "pressure", &format!("{what}: {p:.1}% of the last 10 s stalled"), ""),
        }
    }
    r.line(Level::Ok, "containers", &format!("{} running", m["runningContainers"]), "");
    r.failed
}

/// Resident memory of `pid` in bytes (`VmRSS`).
fn rss(pid: i32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb: u64 = s.lines().find_map(|l| l.strip_prefix("VmRSS:"))?.split_whitespace().next()?.parse().ok()?;
    Some(kb * 1024)
}

/// `memory stats`: rows `{what, id, bytes}`: this command and every other
/// running nexcage process (the monitors of admin containers), then each
/// running container's cgroup memory usage.
pub fn memory(ctx: &Ctx) -> anyhow::Result<Vec<Value>> {
    let me = std::fs::read_link("/proc/self/exe").ok();
    let mut rows = Vec::new();
    for e in std::fs::read_dir("/proc")?.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else { continue };
        if me.is_some() && std::fs::read_link(e.path().join("exe")).ok() == me {
            let cmd = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
            let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ").trim().to_string();
            rows.push(json!({"what": "nexcage", "id": format!("{pid} {cmd}"), "bytes": rss(pid)}));
        }
    }
    for (id, s) in super::stats::sample(ctx, &[])? {
        rows.push(json!({"what": "container", "id": id, "bytes": s.memory.as_ref().map(|m| m.usage.usage)}));
    }
    Ok(rows)
}
