//! `nexcage create`: the container's process exists (waiting for start) when this returns.

use std::path::PathBuf;

use anyhow::Result;

use super::handoff::Handoff;
use super::Ctx;
use crate::container::{Container, CreateArgs};

/// The flags `create` and `run` share.
#[derive(clap::Args, Debug)]
pub struct Flags {
    /// Path to the bundle directory
    #[arg(short, long, default_value = ".", value_name = "DIR")]
    pub bundle: PathBuf,
    #[command(flatten)]
    pub handoff: Handoff,
    /// Do not use pivot_root to jail the process inside rootfs
    #[arg(long)]
    pub no_pivot: bool,
    /// Do not create a new session keyring (always the case: libcontainer never creates one)
    #[arg(long)]
    pub no_new_keyring: bool,
    /// Pass N additional file descriptors (3..3+N) to the container
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub preserve_fds: i32,
}

impl Flags {
    pub fn to_create_args(&self, id: &str, foreground: bool) -> CreateArgs {
        CreateArgs {
            id: id.to_string(),
            bundle: self.bundle.clone(),
            pid_file: self.handoff.pid_file.clone(),
            console_socket: self.handoff.console_socket.clone(),
            preserve_fds: self.preserve_fds,
            no_pivot: self.no_pivot,
            foreground,
        }
    }
}

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub flags: Flags,
    /// Accepted for runc compatibility: create always detaches
    #[arg(short, long)]
    pub detach: bool,
    #[command(flatten)]
    pub admin: crate::admin::AdminArgs,
    /// Container id (or --name)
    #[arg(required_unless_present = "name")]
    pub id: Option<String>,
}

pub fn run(a: Args, ctx: &Ctx) -> Result<i32> {
    if let Some(name) = &a.admin.name {
        let mut admin = a.admin.clone();
        if let Some(id) = a.id.as_ref().filter(|id| *id != name) {
            if admin.image.is_some() {
                anyhow::bail!("--name {name} and ID {id} differ: they are the same thing");
            }
            // The user guide's `create --name N IMAGE`: the operand is the image.
            admin.image = Some(id.clone());
        }
        let source = admin.image.clone().map(PathBuf::from).unwrap_or_else(|| a.flags.bundle.clone());
        crate::admin::lifecycle::create(ctx, name, &source, &admin)?;
        println!("{name}");
        return Ok(0);
    }
    let id = a.id.as_deref().unwrap_or_default();
    let c = Container::create(ctx, &a.flags.to_create_args(id, false))?;
    a.flags.handoff.send_pidfd(c.record().reaped_pid())?;
    Ok(0)
}
