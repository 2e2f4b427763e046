//! `nexcage memory stats`; the user guide's `memory optimize` and `memory
//! check` belonged to the earlier implementation's allocator and are
//! refused with what to use instead.

use anyhow::{bail, Result};

use super::Ctx;

#[derive(clap::Subcommand, Debug)]
pub enum Cmd {
    /// Memory of nexcage's own processes (monitors) and of running containers
    Stats {
        #[arg(long, default_value = "table", value_parser = ["table", "json"])]
        format: String,
    },
    /// Refused: nexcage has no memory pools to tune
    Optimize,
    /// Refused: nexcage has no leak checker
    Check,
}

pub fn run(cmd: Cmd, ctx: &Ctx) -> Result<i32> {
    match cmd {
        Cmd::Stats { format } => {
            let rows = crate::admin::perf::memory(ctx)?;
            if format == "json" {
                println!("{}", serde_json::to_string(&rows)?);
                return Ok(0);
            }
            let mib = |v: &serde_json::Value| v.as_u64().map_or("-".into(), |b| format!("{:.1}MiB", b as f64 / 1048576.0));
            super::table::print(&["WHAT", "ID", "MEMORY"], &["MEMORY"], rows.iter().map(|r| {
                vec![r["what"].as_str().unwrap_or("").into(), r["id"].as_str().unwrap_or("").into(), mib(&r["bytes"])]
            }));
            Ok(0)
        }
        Cmd::Optimize => bail!("memory optimize: nexcage holds no memory between commands, so there is nothing to optimize; limit a container with `nexcage update --memory BYTES ID`"),
        Cmd::Check => bail!("memory check: nexcage keeps no allocator of its own to check for leaks; `nexcage memory stats` shows what its monitors and the containers use"),
    }
}
