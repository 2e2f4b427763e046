//! `nexcage stats [NAME...]`: CPU, memory, pids and block I/O of running
//! containers from their backend's `stats()`, refreshed every second
//! unless --no-stream.

use std::time::{Duration, Instant};

use anyhow::Result;
use serde_json::{json, Value};

use super::Ctx;
use crate::backend;
use crate::container::status;
use crate::state::Status;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Print one sample and exit
    #[arg(long)]
    pub no_stream: bool,
    /// Output format
    #[arg(long, default_value = "table", value_parser = ["table", "json"])]
    pub format: String,
    /// Containers (default: all running)
    pub names: Vec<String>,
}

fn sample(ctx: &Ctx, names: &[String]) -> Result<Vec<(String, Value)>> {
    let store = ctx.store()?;
    let ids = if names.is_empty() { store.ids()? } else { names.to_vec() };
    let mut out = Vec::new();
    for id in ids {
        let locked = match store.lock(&id) {
            Ok(l) => l,
            Err(e) if names.is_empty() => { tracing::debug!("{e:#}"); continue }
            Err(e) => return Err(e),
        };
        let Ok(rec) = locked.load() else { continue };
        if status(&rec) != Status::Running && status(&rec) != Status::Paused {
            if !names.is_empty() {
                anyhow::bail!("container {id} is not running");
            }
            continue;
        }
        out.push((id, serde_json::to_value(backend::for_kind(rec.backend, ctx.config_path.as_deref())?.stats(&rec, &locked.dir)?)?));
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

fn row(id: &str, before: Option<&Value>, now: &Value, elapsed: Duration) -> Value {
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

fn mib(v: &Value) -> String {
    v.as_u64().map(|b| format!("{:.1}MiB", b as f64 / 1048576.0)).unwrap_or_else(|| "-".into())
}

pub fn run(a: Args, ctx: &Ctx) -> Result<i32> {
    let mut prev = sample(ctx, &a.names)?;
    let mut t = Instant::now();
    loop {
        // CPU% needs two samples.
        std::thread::sleep(Duration::from_millis(if a.no_stream { 500 } else { 1000 }));
        let now = sample(ctx, &a.names)?;
        let elapsed = t.elapsed();
        t = Instant::now();
        let rows: Vec<Value> = now.iter()
            .map(|(id, s)| row(id, prev.iter().find(|(p, _)| p == id).map(|(_, v)| v), s, elapsed))
            .collect();
        if a.format == "json" {
            println!("{}", serde_json::to_string(&rows)?);
        } else {
            println!("{:<24} {:>8} {:>24} {:>6} {:>22}", "NAME", "CPU %", "MEM USAGE / LIMIT", "PIDS", "BLOCK I/O (R / W)");
            for r in &rows {
                println!("{:<24} {:>8} {:>24} {:>6} {:>22}", r["id"].as_str().unwrap_or(""),
                    r["cpuPercent"].as_f64().map(|p| format!("{p:.2}")).unwrap_or_else(|| "-".into()),
                    format!("{} / {}", mib(&r["memoryUsage"]), mib(&r["memoryLimit"])), r["pids"],
                    format!("{} / {}", mib(&r["ioReadBytes"]), mib(&r["ioWriteBytes"])));
            }
        }
        if a.no_stream {
            return Ok(0);
        }
        prev = now;
    }
}
