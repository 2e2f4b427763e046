//! `nexcage pause` / `nexcage resume`: freeze and thaw a container's cgroup.

use anyhow::{bail, Result};

use super::Ctx;
use crate::backend;
use crate::container::status;
use crate::state::Status;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Container id
    pub id: String,
}

pub fn pause(a: Args, ctx: &Ctx) -> Result<i32> {
    let locked = ctx.store()?.lock(&a.id)?;
    let mut rec = locked.load()?;
    match status(&rec) {
        Status::Running => {}
        Status::Paused => bail!("container {} is already paused", a.id),
        _ => bail!("container not running"),
    }
    backend::for_kind(rec.backend, ctx.config_path.as_deref())?.pause(&rec, &locked.dir)?;
    rec.paused = true;
    locked.save(&rec)?;
    Ok(0)
}

pub fn resume(a: Args, ctx: &Ctx) -> Result<i32> {
    let locked = ctx.store()?.lock(&a.id)?;
    let mut rec = locked.load()?;
    if status(&rec) != Status::Paused {
        bail!("container {} is not paused", a.id);
    }
    backend::for_kind(rec.backend, ctx.config_path.as_deref())?.resume(&rec, &locked.dir)?;
    rec.paused = false;
    locked.save(&rec)?;
    Ok(0)
}
