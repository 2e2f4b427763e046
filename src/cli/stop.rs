//! `nexcage stop NAME`: SIGTERM, then SIGKILL after the timeout.

use std::time::Duration;

use anyhow::Result;

use super::Ctx;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Seconds to wait after SIGTERM before SIGKILL
    #[arg(short, long, default_value_t = 10, value_name = "S")]
    pub timeout: u64,
    /// SIGKILL at once
    #[arg(short, long)]
    pub force: bool,
    /// Container name
    pub name: String,
}

pub fn run(a: Args, ctx: &Ctx) -> Result<i32> {
    if !crate::admin::lifecycle::stop(ctx, &a.name, Duration::from_secs(a.timeout), a.force)? {
        tracing::info!("{} is not running", a.name);
    }
    Ok(0)
}
