//! `nexcage start`: run the user process of a created container.

use anyhow::Result;

use super::Ctx;
use crate::container::Container;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Admin containers: print their output until they stop
    #[arg(long, conflicts_with = "detach")]
    pub attach: bool,
    /// The user guide's flag; start always returns once the process runs (as runc's)
    #[arg(short, long)]
    pub detach: bool,
    /// The user guide's flag; the process's stdio (a terminal with
    /// --console-socket) is set up by create, so start has nothing to add
    #[arg(short, long)]
    pub interactive: bool,
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
