//! `nexcage stats [NAME...]`: CPU, memory, pids and block I/O of running
//! containers from their backend's `stats()`, refreshed every second
//! unless --no-stream.

use std::time::{Duration, Instant};

use anyhow::Result;
use serde_json::Value;

use super::Ctx;
use crate::admin::stats::{row, sample};

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
            let header = ["NAME", "CPU %", "MEM USAGE / LIMIT", "PIDS", "BLOCK I/O (R / W)"];
            super::table::print(&header, &header[1..], rows.iter().map(|r| vec![
                r["id"].as_str().unwrap_or("").to_string(),
                r["cpuPercent"].as_f64().map(|p| format!("{p:.2}")).unwrap_or_else(|| "-".into()),
                format!("{} / {}", mib(&r["memoryUsage"]), mib(&r["memoryLimit"])),
                r["pids"].to_string(),
                format!("{} / {}", mib(&r["ioReadBytes"]), mib(&r["ioWriteBytes"])),
            ]));
        }
        if a.no_stream {
            return Ok(0);
        }
        prev = now;
    }
}
