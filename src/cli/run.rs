//! `nexcage run`: create + start; in the foreground, wait and return the
//! container's exit status, then delete it (as runc does).

use anyhow::Result;

use super::Ctx;
use crate::backend;
use crate::container;

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
    let (locked, mut rec) = container::create(ctx, &a.flags.to_create_args(&a.id, !a.detach))?;
    if let (Some(sock), Some(pid)) = (&a.flags.pidfd_socket, rec.pid) {
        crate::proc::send_pidfd(sock, pid)?;
    }
    let be = backend::for_kind(rec.backend, ctx.config_path.as_deref())?;
    if let Err(e) = be.start(&rec, &locked.dir) {
        let _ = be.delete(&rec, &locked.dir);
        let _ = locked.remove();
        return Err(e.into());
    }
    rec.started = true;
    locked.save(&rec)?;
    drop(locked);
    if a.detach {
        return Ok(0);
    }
    let code = container::wait_forwarding(rec.pid.unwrap_or(0))?;
    if !a.keep {
        container::delete(ctx, &a.id, true)?;
    }
    Ok(code)
}
