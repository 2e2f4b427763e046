//! `nexcage logs NAME`: the output of an admin container, as its monitor
//! recorded it.

use anyhow::{bail, Result};

use super::Ctx;
use crate::admin::{self, follow};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Keep printing new lines until the container stops
    #[arg(short, long)]
    pub follow: bool,
    /// Prefix each line with its time and stream
    #[arg(short, long)]
    pub timestamps: bool,
    /// Only the last N lines
    #[arg(long, value_name = "N")]
    pub tail: Option<usize>,
    /// Only lines since T (RFC3339, or 30s/10m/2h ago)
    #[arg(long, value_name = "T")]
    pub since: Option<String>,
    /// Container name
    pub name: String,
}

pub fn run(a: Args, ctx: &Ctx) -> Result<i32> {
    crate::state::id::validate(&a.name)?;
    let Some(dir) = admin::log_dir(ctx, &a.name) else {
        bail!("container {} does not exist (or was not created with --name)", a.name);
    };
    let f = follow::Filter { follow: a.follow, timestamps: a.timestamps, tail: a.tail, since: a.since };
    follow::follow_file(ctx, &a.name, &dir.join(admin::logfile::LOG), &f, None)
}
