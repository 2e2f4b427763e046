//! The monitor (conmon's role) of an admin container: a session leader that
//! outlives the nexcage command, creates the container with stdout/stderr
//! pipes it owns (through the ordinary `nexcage create`), optionally starts
//! it, logs every output line with a timestamp, reaps the container (it is
//! the child subreaper) and records the exit status.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

use anyhow::{bail, Context, Result};

use super::logfile::{self, EXIT, LOG};
use crate::context::Ctx;

const MONITOR_LOG: &str = "monitor.log";

/// The hidden subcommand that runs a monitor (`cli::monitor`).
pub const SUBCOMMAND: &str = "__monitor";

/// `nexcage` with the global flags this command was given.
pub fn nexcage(ctx: &Ctx) -> Result<Command> {
    let mut c = Command::new(std::env::current_exe().context("cannot find the nexcage binary")?);
    // Absolute paths: the monitor runs in / so it keeps no directory busy.
    c.arg("--root").arg(std::path::absolute(&ctx.root)?).current_dir("/");
    if let Some(p) = &ctx.config_path {
        c.arg("--config").arg(std::path::absolute(p)?);
    }
    if ctx.rootless {
        c.args(["--rootless", "true"]);
    }
    Ok(c)
}

/// Starts a detached monitor for `id` (bundle `dir`) and waits until it says
/// the container exists (and runs, with `start`), or why not.
pub fn spawn(ctx: &Ctx, id: &str, dir: &Path, start: bool) -> Result<()> {
    let mlog = std::fs::OpenOptions::new().create(true).append(true).open(dir.join(MONITOR_LOG))
        .with_context(|| format!("opening {}", dir.join(MONITOR_LOG).display()))?;
    let mut cmd = nexcage(ctx)?;
    cmd.arg(SUBCOMMAND).arg("--bundle").arg(std::path::absolute(dir)?);
    if start {
        cmd.arg("--start");
    }
    cmd.arg(id).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(mlog);
    // SAFETY: setsid(2) is async-signal-safe and touches no memory shared
    // with the parent; it detaches the monitor from our terminal and session.
    unsafe {
        cmd.pre_exec(|| nix::unistd::setsid().map(|_| ()).map_err(std::io::Error::from));
    }
    let mut child = cmd.spawn().context("cannot start the monitor")?;
    let mut line = String::new();
    if let Some(out) = child.stdout.take() {
        BufReader::new(out).read_line(&mut line).context("reading from the monitor")?;
    }
    match line.trim_end() {
        "ok" => Ok(()),
        l if l.starts_with("error: ") => bail!("{}", &l[7..]),
        _ => {
            let _ = child.wait();
            bail!("the monitor of {id} failed; see {}", dir.join(MONITOR_LOG).display())
        }
    }
}

/// Copies one stream into the log; returns the last line (for errors).
fn pump(r: impl Read, stream: &'static str, log: Arc<Mutex<std::fs::File>>) -> String {
    let mut r = BufReader::new(r);
    let mut buf = Vec::new();
    let mut last = String::new();
    loop {
        buf.clear();
        match r.read_until(b'\n', &mut buf) {
            Ok(0) | Err(_) => return last,
            Ok(_) => {}
        }
        let text = String::from_utf8_lossy(&buf);
        let text = text.trim_end_matches('\n');
        if let Ok(mut f) = log.lock() {
            if let Err(e) = logfile::write_line(&mut *f, stream, text) {
                tracing::warn!("writing the container log: {e}");
            }
        }
        last = text.to_string();
    }
}

fn write_exit(dir: &Path, code: i32, signal: Option<String>) {
    let v = serde_json::json!({"exitCode": code, "signal": signal, "finishedAt": logfile::now()});
    let tmp = dir.join(".exit.json.tmp");
    let ok = std::fs::write(&tmp, v.to_string()).and_then(|_| std::fs::rename(&tmp, dir.join(EXIT)));
    if let Err(e) = ok {
        tracing::warn!("recording the exit status: {e}");
    }
}

/// A pipe whose ends are not inherited by anything but the child given one.
fn pipe() -> Result<(std::fs::File, std::fs::File)> {
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).context("pipe")?;
    Ok((std::fs::File::from(r), std::fs::File::from(w)))
}

/// The handshake line, then stdout goes to /dev/null (the parent is gone).
fn report(msg: &str) {
    let mut out = std::io::stdout();
    let _ = writeln!(out, "{msg}");
    let _ = out.flush();
    if let Ok(null) = std::fs::File::open("/dev/null") {
        use std::os::fd::AsRawFd;
        let _ = nix::unistd::dup2(null.as_raw_fd(), 1);
    }
}

/// The monitor process itself (`nexcage monitor`).
pub fn run(ctx: &Ctx, id: &str, dir: &Path, start: bool) -> Result<i32> {
    match supervise(ctx, id, dir, start) {
        Ok(code) => Ok(code),
        Err(e) => {
            report(&format!("error: {}", crate::logging::error_text(&e)));
            Ok(1)
        }
    }
}

fn supervise(ctx: &Ctx, id: &str, dir: &Path, start: bool) -> Result<i32> {
    // Orphaned container processes are re-parented to us, so we can reap them.
    nix::sys::prctl::set_child_subreaper(true).context("PR_SET_CHILD_SUBREAPER")?;
    let _ = std::fs::remove_file(dir.join(EXIT));
    let log = std::fs::OpenOptions::new().create(true).append(true).open(dir.join(LOG))
        .with_context(|| format!("opening {}", dir.join(LOG).display()))?;
    let log = Arc::new(Mutex::new(log));
    let (out_r, out_w) = pipe()?;
    let (err_r, err_w) = pipe()?;
    let l1 = log.clone();
    let t_out = std::thread::spawn(move || pump(out_r, "stdout", l1));
    let l2 = log.clone();
    let t_err = std::thread::spawn(move || pump(err_r, "stderr", l2));
    // The ordinary create: the container inherits the pipes as stdout/stderr.
    let st = nexcage(ctx)?
        .arg("create").arg("--bundle").arg(dir).arg(id)
        .stdin(Stdio::null()).stdout(out_w).stderr(err_w)
        .status().context("running nexcage create")?;
    if !st.success() {
        let _ = t_out.join();
        let last = t_err.join().unwrap_or_default();
        bail!("{}", last.trim_start_matches("nexcage: "));
    }
    // The container's process (its namespaces) and the one we reap: the
    // same natively; on the Proxmox backend the guest's PID 1 and its holder.
    let (pid, reaped) = {
        let c = crate::container::Container::load(ctx, id)?;
        (c.record().pid.unwrap_or(0), c.record().reaped_pid().unwrap_or(0))
    };
    // Its namespaces exist and its process waits for start: the network now.
    if let Err(e) = crate::network::attach(ctx, id, dir, pid) {
        let _ = nexcage(ctx)?.args(["delete", "--force", id]).stdin(Stdio::null()).output();
        bail!("{e:#}");
    }
    if start {
        let o = nexcage(ctx)?.arg("start").arg(id).stdin(Stdio::null()).output().context("running nexcage start")?;
        if !o.status.success() {
            let msg = String::from_utf8_lossy(&o.stderr).trim().trim_start_matches("nexcage: ").to_string();
            let _ = nexcage(ctx)?.args(["delete", "--force", id]).stdin(Stdio::null()).output();
            bail!("{msg}");
        }
    }
    report("ok");
    reap(dir, reaped);
    if let Err(e) = crate::network::detach(ctx, id, dir, Some(pid)) {
        tracing::warn!("removing the network of {id}: {e:#}");
    }
    let _ = t_out.join();
    let _ = t_err.join();
    Ok(0)
}

/// Reaps every child until none is left; records the container's status.
fn reap(dir: &Path, pid: i32) {
    use nix::sys::wait::{waitpid, WaitStatus};
    loop {
        match waitpid(None, None) {
            Ok(WaitStatus::Exited(p, c)) if p.as_raw() == pid => write_exit(dir, c, None),
            Ok(WaitStatus::Signaled(p, s, _)) if p.as_raw() == pid => write_exit(dir, 128 + s as i32, Some(s.as_str().to_string())),
            Ok(_) | Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return,
        }
    }
}
