//! `nexcage kill`: signal the container's init, or every process with --all.

use anyhow::{bail, Result};

use super::Ctx;
use crate::backend;
use crate::container::status;
use crate::signal::Sig;
use crate::state::Status;

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
    let locked = ctx.store()?.lock(&a.id)?;
    let rec = locked.load()?;
    let st = status(&rec);
    // runc lets --all reach leftovers of a stopped container's cgroup.
    if !matches!(st, Status::Created | Status::Running | Status::Paused) && !a.all {
        bail!("container not running");
    }
    backend::for_kind(rec.backend, ctx.config_path.as_deref())?.kill(&rec, &locked.dir, a.signal.0, a.all)?;
    Ok(0)
}
