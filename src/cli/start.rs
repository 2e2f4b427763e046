//! `nexcage start`: run the user process of a created container.

use anyhow::Result;

use super::Ctx;
use crate::container::Container;

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
            return crate::admin::follow::start_attached(ctx, &a.id, &dir);
        }
        crate::admin::lifecycle::launch(ctx, &a.id, &dir)?;
        return Ok(0);
    }
    Container::load(ctx, &a.id)?.start(ctx)?;
    Ok(0)
}
