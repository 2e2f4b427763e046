//! `nexcage restart NAME`: stop (as `stop`), then start again from the
//! container's own bundle under a new monitor.

use std::time::Duration;

use anyhow::{bail, Result};

use super::Ctx;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Seconds to wait after SIGTERM before SIGKILL
    #[arg(short, long, default_value_t = 10, value_name = "S")]
    pub timeout: u64,
    /// Container name
    pub name: String,
}

pub fn run(a: Args, ctx: &Ctx) -> Result<i32> {
    let Some(dir) = crate::admin::admin_dir_of(ctx, &a.name) else {
        bail!("container {} does not exist (or was not created with --name)", a.name);
    };
    crate::admin::lifecycle::stop(ctx, &a.name, Duration::from_secs(a.timeout), false)?;
    crate::admin::lifecycle::launch(ctx, &a.name, &dir)?;
    Ok(0)
}
