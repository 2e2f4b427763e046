//! `nexcage performance metrics|check|benchmark` (see admin::perf, admin::bench).

use std::path::PathBuf;

use anyhow::{Context, Result};

use super::Ctx;
use crate::admin::{bench, perf};

#[derive(clap::Subcommand, Debug)]
pub enum Cmd {
    /// CPUs, load, pressure stall (PSI) of cpu/memory/io, running containers
    Metrics {
        #[arg(long, default_value = "table", value_parser = ["table", "json"])]
        format: String,
    },
    /// ok/warn lines: load above the CPU count, more than 10% stalled
    Check,
    /// Timed create/start/exit/delete cycles with the configured backend
    Benchmark {
        /// Number of cycles
        #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=1000))]
        cycles: u32,
        /// Bundle to run (default: one that runs the host's /bin/true)
        #[arg(long, value_name = "DIR")]
        bundle: Option<PathBuf>,
        #[arg(long, default_value = "table", value_parser = ["table", "json"])]
        format: String,
    },
}

pub fn run(cmd: Cmd, ctx: &Ctx) -> Result<i32> {
    match cmd {
        Cmd::Metrics { format } => {
            let m = perf::metrics(ctx);
            if format == "json" {
                println!("{}", serde_json::to_string(&m)?);
            } else {
                let p = |k: &str| m["pressure"][k].as_f64().map_or("-".into(), |v| format!("{v:.1}%"));
                let load: Vec<String> = m["loadAverage"].as_array().into_iter().flatten().map(|v| v.to_string()).collect();
                println!("cpus:                {}\nload average:        {}", m["cpus"], load.join(" "));
                println!("pressure (avg10):    cpu {}, memory {}, io {}", p("cpu"), p("memory"), p("io"));
                println!("running containers:  {}", m["runningContainers"]);
            }
        }
        Cmd::Check => return Ok(if perf::check(ctx) { 1 } else { 0 }),
        Cmd::Benchmark { cycles, bundle, format } => {
            let tmp = tempfile_dir()?;
            let dir = match bundle {
                Some(b) => b,
                None => {
                    bench::host_bundle(&tmp, super::spec::default_spec(ctx.rootless))?;
                    tmp.clone()
                }
            };
            let r = bench::run(ctx, &dir, cycles);
            let _ = std::fs::remove_dir_all(&tmp);
            let rows = r?;
            if format == "json" {
                println!("{}", serde_json::to_string(&rows)?);
            } else {
                println!("{cycles} cycles");
                let ms = |v: f64| format!("{v:.1}");
                super::table::print(&["STEP", "MEDIAN ms", "MIN ms", "MAX ms"], &["MEDIAN ms", "MIN ms", "MAX ms"],
                    rows.iter().map(|s| vec![s.step.to_string(), ms(s.median_ms), ms(s.min_ms), ms(s.max_ms)]));
            }
        }
    }
    Ok(0)
}

/// A fresh directory for the benchmark's bundle, removed afterwards.
fn tempfile_dir() -> Result<PathBuf> {
    let d = std::env::temp_dir().join(format!("nexcage-bench-{}", std::process::id()));
    std::fs::create_dir_all(&d).with_context(|| format!("creating {}", d.display()))?;
    Ok(d)
}
