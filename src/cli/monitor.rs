//! `nexcage __monitor` (internal, hidden): the detached supervisor of an
//! admin container, started by `create --name` and `start NAME`
//! (admin::monitor::spawn). `nexcage monitor` is `stats`, the user guide's.

use std::path::PathBuf;

use anyhow::Result;

use super::Ctx;

/// The hidden subcommand's name; admin::monitor::spawn invokes it.
pub const NAME: &str = crate::admin::monitor::SUBCOMMAND;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The container's bundle
    #[arg(long, value_name = "DIR")]
    pub bundle: PathBuf,
    /// Start the container once created
    #[arg(long)]
    pub start: bool,
    /// Container id
    pub id: String,
}

pub fn run(a: Args, ctx: &Ctx) -> Result<i32> {
    crate::admin::monitor::run(ctx, &a.id, &a.bundle, a.start)
}
