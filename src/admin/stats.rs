//! `nexcage stats`: samples of running containers' backend `stats()`, and
//! the rows (CPU %, memory, pids, block I/O) computed from two of them.

use std::time::Duration;

use anyhow::Result;
use serde_json::{json, Value};

use crate::container::Container;
use crate::context::Ctx;

/// `(id, runc-shaped stats)` of each container in `names` (which must be
/// running or paused), or of every running or paused one when empty.
pub fn sample(ctx: &Ctx, names: &[String]) -> Result<Vec<(String, Value)>> {
    let store = ctx.store()?;
    let ids = if names.is_empty() { store.ids()? } else { names.to_vec() };
    let mut out = Vec::new();
    for id in ids {
        let c = match Container::load_from(&store, &id) {
            Ok(c) => c,
            Err(e) if names.is_empty() => { tracing::debug!("{e:#}"); continue }
            Err(e) => return Err(e),
        };
        if !c.status().is_active() {
            if !names.is_empty() {
                anyhow::bail!("container {id} is not running");
            }
            continue;
        }
        out.push((id, c.stats(ctx)?));
    }
    Ok(out)
}

fn io_bytes(s: &Value) -> (u64, u64) {
    let mut r = (0, 0);
    for e in s["blkio"]["ioServiceBytesRecursive"].as_array().into_iter().flatten() {
        match e["op"].as_str().unwrap_or("").to_ascii_lowercase().as_str() {
            "read" => r.0 += e["value"].as_u64().unwrap_or(0),
            "write" => r.1 += e["value"].as_u64().unwrap_or(0),
            _ => {}
        }
    }
    r
}

/// `{id, cpuPercent, cpuTotalNs, memoryUsage, memoryLimit, pids,
/// ioReadBytes, ioWriteBytes}`: CPU % over `elapsed` since `before`
/// (null without one), bytes, limit null when unlimited.
pub fn row(id: &str, before: Option<&Value>, now: &Value, elapsed: Duration) -> Value {
    let cpu = |v: &Value| v["cpu"]["usage"]["total"].as_u64().unwrap_or(0);
    let pct = before.map(|b| cpu(now).saturating_sub(cpu(b)) as f64 / elapsed.as_nanos().max(1) as f64 * 100.0);
    let (r, w) = io_bytes(now);
    let limit = now["memory"]["usage"]["limit"].as_u64().filter(|l| *l < (1u64 << 62));
    json!({
        "id": id,
        "cpuPercent": pct.map(|p| (p * 100.0).round() / 100.0),
        "cpuTotalNs": cpu(now),
        "memoryUsage": now["memory"]["usage"]["usage"],
        "memoryLimit": limit,
        "pids": now["pids"]["current"],
        "ioReadBytes": r,
        "ioWriteBytes": w,
    })
}
