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
    // One lock and read on the common path: a container with a record that
    // is not an admin container is started right here.
    let dir = match Container::load(ctx, &a.id) {
        Ok(mut c) if !crate::admin::is_admin(c.record()) => {
            c.start(ctx)?;
            return Ok(0);
        }
        Ok(c) => c.record().bundle.clone(),
        Err(e) => crate::admin::startable_dir(ctx, &a.id).ok_or(e)?,
    };
    if a.attach {
        return crate::admin::follow::start_attached(ctx, &a.id, &dir);
    }
    crate::admin::lifecycle::launch(ctx, &a.id, &dir)?;
    Ok(0)
}
