//! `nexcage run`: create + start; in the foreground, wait and return the
//! container's exit status, then delete it (as runc does).

use anyhow::Result;

use super::Ctx;
use crate::container::Container;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub flags: super::create::Flags,
    /// Detach from the container's process
    #[arg(short, long)]
    pub detach: bool,
    /// Keep the container's state after it exits
    #[arg(long)]
    pub keep: bool,
    /// Container id
    pub id: String,
}

pub fn run(a: Args, ctx: &Ctx) -> Result<i32> {
    let c = Container::create(ctx, &a.flags.to_create_args(&a.id, !a.detach))?;
    a.flags.handoff.send_pidfd(c.record().reaped_pid())?;
    c.run(ctx, a.detach, a.keep)
}
