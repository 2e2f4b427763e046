//! `nexcage exec`: run a new process in a running container.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};

use super::Ctx;
use crate::backend::{self, ExecOpts};
use crate::container::{status, wait_forwarding};
use crate::state::Status;

#[derive(clap::Args, Debug)]
#[command(trailing_var_arg = true)]
pub struct Args {
    /// JSON file describing the process (OCI process object)
    #[arg(short, long, value_name = "FILE")]
    pub process: Option<PathBuf>,
    /// Detach from the process
    #[arg(short, long)]
    pub detach: bool,
    /// File to write the process's pid to
    #[arg(long, value_name = "FILE")]
    pub pid_file: Option<PathBuf>,
    /// Unix socket that receives the pty master
    #[arg(long, value_name = "SOCKET")]
    pub console_socket: Option<PathBuf>,
    /// Unix socket that receives a pidfd of the process
    #[arg(long, value_name = "SOCKET")]
    pub pidfd_socket: Option<PathBuf>,
    /// Allocate a pseudo-TTY
    #[arg(short, long)]
    pub tty: bool,
    /// Working directory inside the container
    #[arg(long, visible_alias = "workdir", value_name = "DIR")]
    pub cwd: Option<PathBuf>,
    /// Keep stdin attached (it always is unless --detach; accepted for admins' habits)
    #[arg(short, long)]
    pub interactive: bool,
    /// Environment variable KEY=VALUE (repeatable)
    #[arg(short, long, value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// User as UID[:GID]
    #[arg(short, long, value_name = "UID[:GID]")]
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
    /// Ignored (runc compatibility)
    #[arg(long)]
    pub ignore_paused: bool,
    /// Container id
    pub id: String,
    /// Command and arguments (unless --process is given)
    pub command: Vec<String>,
}

fn parse_user(u: &str) -> Result<(u32, Option<u32>)> {
    let (uid, gid) = match u.split_once(':') {
        Some((a, b)) => (a, Some(b)),
        None => (u, None),
    };
    let uid = uid.parse().with_context(|| format!("--user {u:?}: expected numeric UID[:GID]"))?;
    let gid = gid.map(|g| g.parse().with_context(|| format!("--user {u:?}: expected numeric GID"))).transpose()?;
    Ok((uid, gid))
}

fn write_tty_process(bundle: &std::path::Path, o: &ExecOpts, out: &std::path::Path) -> Result<()> {
    let cfg: serde_json::Value = serde_json::from_slice(&std::fs::read(bundle.join("config.json"))?)
        .context("config.json of the container is not valid JSON")?;
    let mut p = cfg.get("process").cloned().unwrap_or_else(|| serde_json::json!({}));
    p["terminal"] = true.into();
    p["args"] = serde_json::json!(o.args);
    if let Some(cwd) = &o.cwd {
        p["cwd"] = serde_json::json!(cwd);
    }
    let mut env: Vec<serde_json::Value> = p["env"].as_array().cloned().unwrap_or_default();
    env.extend(o.env.iter().map(|e| serde_json::json!(e)));
    p["env"] = env.into();
    if let Some(uid) = o.uid {
        p["user"]["uid"] = uid.into();
    }
    if let Some(gid) = o.gid {
        p["user"]["gid"] = gid.into();
    }
    if !o.additional_gids.is_empty() {
        p["user"]["additionalGids"] = serde_json::json!(o.additional_gids);
    }
    if o.no_new_privs {
        p["noNewPrivileges"] = true.into();
    }
    std::fs::write(out, serde_json::to_vec(&p)?)?;
    Ok(())
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
        serde_json::from_slice::<serde_json::Value>(&data)
            .with_context(|| format!("process file {}: malformed JSON", p.display()))?;
    }
    let (uid, gid) = match &a.user {
        Some(u) => {
            let (u, g) = parse_user(u)?;
            (Some(u), g)
        }
        None => (None, None),
    };
    let locked = ctx.store()?.lock(&a.id)?;
    let rec = locked.load()?;
    if status(&rec) != Status::Running {
        bail!("container not running");
    }
    let opts = ExecOpts {
        process_file: a.process.map(|p| std::path::absolute(&p).unwrap_or(p)),
        args: a.command,
        env: a.env,
        cwd: a.cwd,
        uid,
        gid,
        additional_gids: a.additional_gids,
        caps: a.cap,
        no_new_privs: a.no_new_privs,
        console_socket: a.console_socket,
        pid_file: a.pid_file.map(|p| std::path::absolute(&p).unwrap_or(p)),
        detach: a.detach,
        preserve_fds: a.preserve_fds,
    };
    let mut opts = opts;
    // libcontainer only takes a terminal through a process file: build one
    // from the container's process, as runc does for `exec -t CMD`.
    let tty_file = if a.tty && opts.process_file.is_none() {
        let f = locked.dir.join(format!("exec-{}.json", std::process::id()));
        write_tty_process(&rec.bundle, &opts, &f)?;
        opts.process_file = Some(f.clone());
        Some(f)
    } else {
        None
    };
    let be = backend::for_kind(rec.backend, ctx.config_path.as_deref())?;
    let res = be.exec(&rec, &locked.dir, &opts);
    if let Some(f) = tty_file {
        let _ = std::fs::remove_file(f);
    }
    let pid = res?;
    drop(locked);
    if let Some(sock) = &a.pidfd_socket {
        crate::proc::send_pidfd(sock, pid)?;
    }
    if opts.detach {
        return Ok(0);
    }
    wait_forwarding(pid)
}
