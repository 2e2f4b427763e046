//! exec: run a new process in a running container.

use std::path::Path;

use anyhow::{Context, Result};

use super::console_relay::{ConsoleSocket, Relay};
use super::Container;
use crate::backend::ExecOpts;
use crate::context::Ctx;

impl Container {
    /// Starts the process and returns its pid. With `tty` and no process
    /// file, one is written from the container's own process (libcontainer
    /// takes a terminal only through a process file, as runc's `exec -t CMD`).
    /// A foreground `tty` exec without `--console-socket` gets its pty
    /// relayed to nexcage's stdio, as runc does (the [`Relay`] returned;
    /// the caller finishes it once the process has ended).
    pub fn exec(&self, ctx: &Ctx, mut opts: ExecOpts, tty: bool) -> Result<(i32, Option<Relay>)> {
        self.status().can_exec(opts.ignore_paused)?;
        // runc reads `terminal` from the --process file, -t otherwise.
        let terminal = match &opts.process_file {
            Some(f) => process_file_terminal(f)?,
            None => tty,
        };
        super::terminal::check(opts.detach, terminal, opts.console_socket.is_some())?;
        if let Some(cwd) = &opts.cwd {
            crate::backend::oci::exec_process::check_cwd(cwd)?;
        }
        let tty_file = if tty && opts.process_file.is_none() {
            let f = self.dir().join(format!("exec-{}.json", std::process::id()));
            write_tty_process(&self.rec.bundle, &opts, &f)?;
            opts.process_file = Some(f.clone());
            Some(f)
        } else {
            None
        };
        let console = if tty && !opts.detach && opts.console_socket.is_none() {
            let s = ConsoleSocket::bind()?;
            opts.console_socket = Some(s.path().to_path_buf());
            Some(s)
        } else {
            None
        };
        let res = self.backend(ctx).and_then(|be| Ok(be.exec(&self.rec, self.dir(), &opts)?));
        if let Some(f) = tty_file {
            let _ = std::fs::remove_file(f);
        }
        let pid = res?;
        Ok((pid, console.map(|s| s.relay_for(pid)).transpose()?))
    }
}

/// `terminal` of the process file `f` (false when absent). Errors: the
/// file cannot be read or is not JSON.
fn process_file_terminal(f: &Path) -> Result<bool> {
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(f).with_context(|| format!("read {}", f.display()))?)
        .with_context(|| format!("{} is not valid JSON", f.display()))?;
    Ok(v["terminal"].as_bool().unwrap_or(false))
}

/// The container's `process` from its config.json with the exec request
/// laid over it and `terminal` set (`backend::oci::exec_process`), written
/// to `out`.
/// `HOME`, when missing, is the backend's to add (the container's root is
/// not the recorded process's for every backend).
fn write_tty_process(bundle: &Path, o: &ExecOpts, out: &Path) -> Result<()> {
    let cfg: serde_json::Value = serde_json::from_slice(&std::fs::read(bundle.join("config.json"))?)
        .context("config.json of the container is not valid JSON")?;
    let p = crate::backend::oci::exec_process::from_container(&cfg["process"], o, true, None);
    std::fs::write(out, serde_json::to_vec(&p)?)?;
    Ok(())
}
