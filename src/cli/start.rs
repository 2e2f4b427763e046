//! `nexcage start`: run the user process of a created container.

use anyhow::{bail, Result};

use super::Ctx;
use crate::backend;
use crate::container::status;
use crate::state::Status;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Admin containers: print their output until they stop
    #[arg(long)]
    pub attach: bool,
    /// Container id
    pub id: String,
}

pub fn run(a: Args, ctx: &Ctx) -> Result<i32> {
    if let Some(dir) = crate::admin::startable_dir(ctx, &a.id) {
        if a.attach {
            return super::logs::start_attached(ctx, &a.id, &dir);
        }
        crate::admin::lifecycle::launch(ctx, &a.id, &dir)?;
        return Ok(0);
    }
    let locked = ctx.store()?.lock(&a.id)?;
    let mut rec = locked.load()?;
    match status(&rec) {
        Status::Created => {}
        Status::Stopped => bail!("cannot start a container that has stopped"),
        st => bail!("cannot start an already {st} container"),
    }
    backend::for_kind(rec.backend, ctx.config_path.as_deref())?.start(&rec, &locked.dir)?;
    rec.started = true;
    locked.save(&rec)?;
    Ok(0)
}
