//! `nexcage exec`: run a new process in a running container.

use std::path::PathBuf;

use anyhow::{anyhow, bail, Context, Result};
use serde_json::json;

use super::handoff::Handoff;
use super::Ctx;
use crate::backend::oci::process_user_env;
use crate::backend::ExecOpts;
use crate::container::{wait_relayed, Container};

#[derive(clap::Args, Debug)]
#[command(trailing_var_arg = true)]
#[command(mut_args = Handoff::for_exec)]
pub struct Args {
    /// JSON file describing the process (OCI process object)
    #[arg(short, long, value_name = "FILE")]
    pub process: Option<PathBuf>,
    /// Detach from the process
    #[arg(short, long)]
    pub detach: bool,
    #[command(flatten)]
    pub handoff: Handoff,
    /// Allocate a pseudo-TTY
    #[arg(short, long)]
    pub tty: bool,
    /// Working directory inside the container
    #[arg(long, visible_alias = "workdir", value_name = "DIR")]
    pub cwd: Option<PathBuf>,
    /// Keep stdin attached (it always is unless --detach; accepted for admins' habits)
    #[arg(short, long)]
    pub interactive: bool,
    /// Environment variable KEY=VALUE (repeatable; KEY must not be empty, as in runc)
    #[arg(short, long, value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// User as UID[:GID] (0-2147483647, as in runc), or NAME[:GROUP] from the container's /etc/passwd and /etc/group
    #[arg(short, long, value_name = "USER[:GROUP]")]
    pub user: Option<String>,
    /// Additional group id (repeatable)
    #[arg(short = 'g', long = "additional-gids", value_name = "GID")]
    pub additional_gids: Vec<u32>,
    /// Add a capability (repeatable)
    #[arg(short, long, value_name = "CAP")]
    pub cap: Vec<String>,
    /// Set no_new_privs for the process
    #[arg(long)]
    pub no_new_privs: bool,
    /// Pass N additional file descriptors
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub preserve_fds: i32,
    /// Exec even into a paused container (the process waits until resume)
    #[arg(long)]
    pub ignore_paused: bool,
    /// Container id
    pub id: String,
    /// Command and arguments (unless --process is given)
    pub command: Vec<String>,
}

/// `UID[:GID]` as runc takes it, or `NAME[:GROUP]` looked up in the
/// container's own /etc/passwd and /etc/group (as `docker exec --user`;
/// the host's NSS knows nothing of them), with the user's other groups.
fn user(spec: &str, rootfs: &std::path::Path) -> Result<(u32, Option<u32>, Vec<u32>)> {
    let numeric = |s: &str| s.parse::<u32>().is_ok();
    match spec.split_once(':') {
        Some((u, g)) if numeric(u) && numeric(g) => return Ok((u.parse()?, Some(g.parse()?), Vec::new())),
        None if numeric(spec) => return Ok((spec.parse()?, None, Vec::new())),
        _ => {}
    }
    let root = nexcage_image::unpack::Root::open(rootfs).with_context(|| format!("--user {spec}: the container's rootfs {}", rootfs.display()))?;
    let (u, g, extra) = nexcage_image::bundle::resolve_user(Some(&root), spec).with_context(|| format!("--user {spec}"))?;
    Ok((u, Some(g), extra))
}

pub fn run(a: Args, ctx: &Ctx) -> Result<i32> {
    if a.process.is_none() && a.command.is_empty() {
        bail!("exec requires a command or --process");
    }
    if a.process.is_some() && !a.command.is_empty() {
        bail!("exec takes either --process or a command, not both");
    }
    if let Some(p) = &a.process {
        let data = std::fs::read(p).with_context(|| format!("cannot read process file {}", p.display()))?;
        let process = serde_json::from_slice::<serde_json::Value>(&data)
            .with_context(|| format!("process file {}: malformed JSON", p.display()))?;
        process_user_env::check(&process).map_err(|m| anyhow!("process file {}: {m}", p.display()))?;
        if let Some(cwd) = process["cwd"].as_str() {
            crate::backend::oci::exec_process::check_cwd(std::path::Path::new(cwd))?;
        }
    }
    let c = Container::load(ctx, &a.id)?;
    let mut additional_gids = a.additional_gids;
    let (uid, gid) = match &a.user {
        Some(u) => {
            let (u, g, extra) = user(u, &c.record().rootfs)?;
            additional_gids.extend(extra);
            (Some(u), g)
        }
        None => (None, None),
    };
    let flags = json!({"user": {"uid": uid, "gid": gid, "additionalGids": additional_gids}, "env": a.env});
    process_user_env::check(&flags).map_err(|m| anyhow!("exec: {m}"))?;
    let opts = ExecOpts {
        process_file: a.process.map(|p| std::path::absolute(&p).unwrap_or(p)),
        args: a.command,
        env: a.env,
        cwd: a.cwd,
        uid,
        gid,
        additional_gids,
        caps: a.cap,
        no_new_privs: a.no_new_privs,
        console_socket: a.handoff.console_socket.clone(),
        pid_file: a.handoff.pid_file.clone().map(|p| std::path::absolute(&p).unwrap_or(p)),
        detach: a.detach,
        preserve_fds: a.preserve_fds,
        ignore_paused: a.ignore_paused,
    };
    let (pid, relay) = c.exec(ctx, opts, a.tty)?;
    a.handoff.send_pidfd(Some(pid))?;
    if a.detach {
        return Ok(0);
    }
    wait_relayed(pid, relay)
}
