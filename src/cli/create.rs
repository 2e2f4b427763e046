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

/// For `create` and `run`: the container's first cgroup.procs write waits
/// for an RCU grace period; this starts that wait before anything else,
/// the command line's parsing included (backend::native::attach_lock).
pub fn early_attach_lock(args: &[String]) -> Option<crate::backend::native::attach_lock::Early> {
    starts_container(args).then(crate::backend::native::attach_lock::early)
}

/// The top-level options that take a value (as a separate argument).
const VALUED_TOP: [&str; 5] = ["--root", "--log", "--log-format", "--rootless", "--config"];

/// Whether the command word of `args` (the program's arguments, before
/// clap has seen them) is `create` or `run`: the first one that is neither
/// a global option nor the value of one.
fn starts_container(args: &[String]) -> bool {
    let mut it = args.iter().skip(1);
    while let Some(a) = it.next() {
        if VALUED_TOP.contains(&a.as_str()) {
            it.next();
        } else if !a.starts_with('-') {
            return a == "create" || a == "run";
        }
    }
    false
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

#[cfg(test)]
mod tests {
    #[test]
    fn container_starting_commands_found_before_parsing() {
        let yes = |s: &str| super::starts_container(&s.split(' ').map(String::from).collect::<Vec<_>>());
        assert!(yes("nexcage create x") && yes("nexcage --root create --debug run --bundle b x"));
        assert!(yes("nexcage --log=/l --log-format json create x"));
        assert!(!yes("nexcage --root create state x") && !yes("nexcage spec") && !yes("nexcage --debug"));
        // Every top-level option with a value is known to the scan.
        let root = crate::cli::command();
        for a in root.get_arguments().filter(|a| a.get_action().takes_values()) {
            let long = format!("--{}", a.get_long().unwrap_or_default());
            assert!(super::VALUED_TOP.contains(&long.as_str()), "{long} missing from VALUED_TOP");
        }
    }
}
