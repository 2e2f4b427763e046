//! `nexcage kill`: signal the container's init, or every process with --all.

use anyhow::Result;

use super::Ctx;
use crate::container::Container;
use crate::signal::Sig;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Send the signal to all processes of the container
    #[arg(short, long)]
    pub all: bool,
    /// Container id
    pub id: String,
    /// Signal: a number, a name (TERM) or SIG-prefixed (SIGTERM)
    #[arg(default_value = "SIGTERM")]
    pub signal: Sig,
}

pub fn run(a: Args, ctx: &Ctx) -> Result<i32> {
    Container::load(ctx, &a.id)?.kill(ctx, a.signal.0, a.all)?;
    Ok(0)
}
