//! `nexcage run`: create + start; in the foreground, wait and return the
//! container's exit status, then delete it (as runc does).

use std::path::PathBuf;

use anyhow::Result;

use super::Ctx;
use crate::backend;
use crate::container::{self, CreateArgs};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Path to the bundle directory
    #[arg(short, long, default_value = ".", value_name = "DIR")]
    pub bundle: PathBuf,
    /// File to write the container process's pid to
    #[arg(long, value_name = "FILE")]
    pub pid_file: Option<PathBuf>,
    /// Unix socket that receives the pty master when process.terminal is set
    #[arg(long, value_name = "SOCKET")]
    pub console_socket: Option<PathBuf>,
    /// Unix socket that receives a pidfd of the container process
    #[arg(long, value_name = "SOCKET")]
    pub pidfd_socket: Option<PathBuf>,
    /// Detach from the container's process
    #[arg(short, long)]
    pub detach: bool,
    /// Keep the container's state after it exits
    #[arg(long)]
    pub keep: bool,
    /// Do not use pivot_root
    #[arg(long)]
    pub no_pivot: bool,
    /// Do not create a new session keyring (always the case: libcontainer never creates one)
    #[arg(long)]
    pub no_new_keyring: bool,
    /// Pass N additional file descriptors to the container
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub preserve_fds: i32,
    /// Container id
    pub id: String,
}

pub fn run(a: Args, ctx: &Ctx) -> Result<i32> {
    let (locked, mut rec) = container::create(ctx, &CreateArgs {
        id: a.id.clone(),
        bundle: a.bundle,
        pid_file: a.pid_file,
        console_socket: a.console_socket,
        preserve_fds: a.preserve_fds,
        no_pivot: a.no_pivot,
        foreground: !a.detach,
    })?;
    if let (Some(sock), Some(pid)) = (&a.pidfd_socket, rec.pid) {
        crate::proc::send_pidfd(sock, pid)?;
    }
    let be = backend::for_kind(rec.backend)?;
    if let Err(e) = be.start(&rec, &locked.dir) {
        let _ = be.delete(&rec, &locked.dir, true);
        let _ = locked.remove();
        return Err(e);
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
