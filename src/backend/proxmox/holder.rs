//! The holder: the process the engine reaps (`--pid-file`), from create
//! on. It is the guest's LXC monitor; the guest's PID 1 is its child and is
//! the container process `state` reports (README.md here, *Pids*).
//!
//! create forks it (double fork + setsid when detached, so it is re-parented
//! to the engine's subreaper — conmon, the containerd shim — and not left as a
//! child of a short-lived nexcage). It keeps the engine's stdio (or a pty
//! slave), closes every other fd but the preserved ones (notably the
//! state-dir lock, whose flock would otherwise be shared), sends liblxc's
//! log to `<state>/lxc.log` and starts the guest through liblxc in the
//! foreground (`liblxc.rs`) with nexcage-init as its PID 1, which waits for
//! start (`guest_init.rs`). It ends as the guest's PID 1 (after start, the
//! application) ended: exit 7 for `exit 7`, killed by signal N for signal N
//! (engines report 128+N, 137 for SIGKILL whoever sent it); the code is
//! also recorded in `<state>/status`. Signals sent to the holder are
//! forwarded by LXC's monitor loop to the guest's PID 1.

use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use nix::sys::wait::waitpid;
use nix::unistd::{fork, ForkResult};

use super::journal::CreateJournal;
use super::{guest_cgroup, guest_init, liblxc};

/// Forks the holder; returns its pid. `tty` is the pty slave for
/// `process.terminal`. `foreground`: `run` waits for it, so it stays our child.
pub fn spawn(dir: &Path, foreground: bool, tty: Option<OwnedFd>, preserve_fds: i32) -> Result<i32> {
    let (rd, wr) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).context("pipe")?;
    // SAFETY: nexcage is single-threaded here (no runtime, no worker
    // threads), so the child may run arbitrary Rust code after fork.
    match unsafe { fork() }.context("fork holder")? {
        ForkResult::Parent { child } => {
            drop(wr);
            let mut buf = [0u8; 4];
            let mut r = std::fs::File::from(rd);
            let got = r.read_exact(&mut buf);
            if !foreground {
                // The intermediate child exits right after reporting.
                let _ = waitpid(child, None);
            }
            got.context("holder did not report its pid")?;
            Ok(i32::from_ne_bytes(buf))
        }
        ForkResult::Child => {
            drop(rd);
            if !foreground {
                let _ = nix::unistd::setsid();
                // SAFETY: as above, single-threaded child.
                match unsafe { fork() } {
                    Ok(ForkResult::Parent { .. }) => std::process::exit(0),
                    Ok(ForkResult::Child) => {}
                    Err(_) => std::process::exit(1),
                }
            }
            let me = std::process::id() as i32;
            let mut w = std::fs::File::from(wr);
            let _ = std::io::Write::write_all(&mut w, &me.to_ne_bytes());
            drop(w);
            let code = holder_main(dir, tty, preserve_fds);
            std::process::exit(code);
        }
    }
}

/// Closes every fd but stdio, the preserved ones and `keep`.
fn close_other_fds(preserve_fds: i32, keep: Option<i32>) {
    let Ok(rd) = std::fs::read_dir("/proc/self/fd") else { return };
    let fds: Vec<i32> = rd.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok()).collect();
    for fd in fds {
        if fd > 2 + preserve_fds.max(0) && Some(fd) != keep {
            let _ = nix::unistd::close(fd);
        }
    }
}

fn holder_main(dir: &Path, tty: Option<OwnedFd>, preserve_fds: i32) -> i32 {
    close_other_fds(preserve_fds, tty.as_ref().map(|t| t.as_raw_fd()));
    if let Some(t) = &tty {
        // A session of its own, without the pty as its controlling
        // terminal: that is the guest init's (nexcage-init takes it), as a
        // tty belongs to one session only.
        let _ = nix::unistd::setsid();
        for fd in 0..3 {
            let _ = nix::unistd::dup2(t.as_raw_fd(), fd);
        }
    }
    drop(tty);
    let (code, signal) = match CreateJournal::load(dir).and_then(|p| run_guest(dir, &p)) {
        Ok(status) => (liblxc::exit_code(status), liblxc::signal(status)),
        Err(e) => {
            tracing::error!("nexcage monitor: {e:#}");
            (MONITOR_FAILED, None)
        }
    };
    let tmp = dir.join(format!("{STATUS}.tmp"));
    if std::fs::write(&tmp, code.to_string()).and_then(|()| std::fs::rename(&tmp, dir.join(STATUS))).is_err() {
        tracing::warn!("cannot record the container's status in {}", dir.display());
    }
    if let Some(sig) = signal {
        die_by(sig);
    }
    code
}

/// Ends the holder by signal `sig`, as the guest's PID 1 ended, so the
/// engine reaps "killed by signal N" as it would reap runc's container
/// init (engines report 128+N). Returns only for a signal whose default
/// action is not to terminate (the caller then exits with 128+N). No core
/// file: RLIMIT_CORE is set to 0 first.
fn die_by(sig: i32) {
    use nix::sys::signal::{self, SigHandler, SigSet, Signal};
    let Ok(s) = Signal::try_from(sig) else { return };
    if matches!(s, Signal::SIGCHLD | Signal::SIGCONT | Signal::SIGURG | Signal::SIGWINCH | Signal::SIGSTOP | Signal::SIGTSTP | Signal::SIGTTIN | Signal::SIGTTOU) {
        return;
    }
    let _ = nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_CORE, 0, 0);
    // SAFETY: restores the default disposition; no handler code runs.
    let _ = unsafe { signal::signal(s, SigHandler::SigDfl) };
    let mut set = SigSet::empty();
    set.add(s);
    let _ = set.thread_unblock();
    let _ = signal::raise(s);
}

/// The holder create recorded, if that same process still runs (a zombie
/// its engine has not reaped yet counts as gone).
pub fn alive(j: &CreateJournal) -> Option<i32> {
    let h = j.holder?;
    crate::proc::is_same_alive(h, j.holder_start).then_some(h)
}

/// `<state>/status`: the holder's exit code, written as it ends.
const STATUS: &str = "status";

/// The holder's exit code, once it has ended.
pub fn status(dir: &Path) -> Option<i32> {
    std::fs::read_to_string(dir.join(STATUS)).ok()?.trim().parse().ok()
}

/// The holder's status when the guest could not be started at all.
const MONITOR_FAILED: i32 = 255;

/// liblxc's log in the state dir (what create quotes when the guest fails).
pub const LXC_LOG: &str = "lxc.log";

/// Runs the guest until its PID 1 ends; liblxc's status for it (`liblxc::exit_code`).
fn run_guest(dir: &Path, p: &CreateJournal) -> Result<i32> {
    let (Some(vmid), Some(lxc_path), Some(lxc_dir)) = (p.vmid, &p.lxc_path, p.lxc_dir()) else { bail!("create did not finish") };
    let name = vmid.to_string();
    liblxc::log_level("INFO")?;
    let mut c = liblxc::Container::new(&name, lxc_path)?;
    // nexcage's settings, whatever PVE last rendered into `config` (include.rs).
    c.clear_config()?;
    // Before the config, so that its errors are in the file too.
    let log = dir.join(LXC_LOG);
    c.set("lxc.log.file", &log.to_string_lossy())?;
    c.load_config(&super::include::start_path(&lxc_dir))?;
    for (kind, path) in &p.shares {
        c.set(&format!("lxc.namespace.share.{kind}"), path)?;
    }
    let stats = guest_cgroup::stats_hierarchies();
    if !stats.is_empty() && has_container_dir(&lxc_dir) {
        c.set("lxc.hook.stop", &leave_guest_hook(vmid, &stats))?;
    }
    c.foreground()?;
    let test_argv = test_init_argv();
    let argv: Vec<&str> = match &test_argv {
        Some(a) => a.split(' ').collect(),
        None => guest_init::WAIT_ARGV.to_vec(),
    };
    let (ok, status) = c.start(&argv)?;
    if !ok && status == 0 {
        bail!("LXC could not run guest {vmid} (see {})", dir.join(LXC_LOG).display());
    }
    Ok(status)
}

/// Whether the guest's cgroup is the bundle's path (`lxc.cgroup.dir.container`,
/// `lxcconf::cgroup_dirs`): then create moves the holder into it (v1: in
/// the stats hierarchies; v2: the one hierarchy; `guest_cgroup::enter_stats`).
fn has_container_dir(lxc_dir: &Path) -> bool {
    let conf = std::fs::read_to_string(super::include::path(lxc_dir)).unwrap_or_default();
    conf.lines().any(|l| l.split_once('=').is_some_and(|(k, v)| k.trim() == "lxc.cgroup.dir.container" && !v.trim().is_empty()))
}

/// `lxc.hook.stop` that moves the holder back out of the guest's cgroup, in
/// the hierarchies it joined, into its monitor cgroup `lxc.monitor.<vmid>`
/// (into the hierarchy's root where that is gone: nothing kept the empty
/// dir). LXC runs stop hooks after the guest's PID 1 has ended and right
/// before it removes the container dir (lxc start.c `lxc_end`: hooks, then
/// `payload_destroy`, then `monitor_destroy`, which takes the monitor to
/// `lxc.pivot` and removes its cgroup), and rmdir refuses a cgroup a
/// process is in. The hook is a child of the holder; LXC runs it as
/// `exec <hook> <name> lxc stop ...` through /bin/sh (lxc conf.c
/// `run_script_argv`), so the extra words are the inner shell's positional
/// parameters. (On cgroup v2 the hook itself starts in the guest's
/// cgroup, as the holder's child, and has ended before LXC's rmdir.)
/// `stats`: [`guest_cgroup::stats_hierarchies`]; the file written is
/// `guest_cgroup`'s `monitor_procs`.
fn leave_guest_hook(vmid: u32, stats: &[PathBuf]) -> String {
    let roots: Vec<String> = stats.iter().map(|h| h.display().to_string()).collect();
    format!(
        "/bin/sh -c 'for h in {}; do f=$h/lxc.monitor.{vmid}/cgroup.procs; [ -e $f ] || f=$h/cgroup.procs; echo {} > $f; done; exit 0'",
        roots.join(" "),
        std::process::id()
    )
}

/// TEST ONLY: `NEXCAGE_TEST_INIT_ARGV="/bin/sleep 1000"` starts the guest
/// with that init instead of nexcage-init, i.e. an init that never waits
/// for start (tests/proxmox_guest.rs checks create's bound with it).
fn test_init_argv() -> Option<String> {
    std::env::var("NEXCAGE_TEST_INIT_ARGV").ok().filter(|a| !a.is_empty())
}

/// LXC's ERROR lines from `<dir>/lxc.log` (what create quotes), at most
/// the last `max`.
pub fn lxc_errors(dir: &Path, max: usize) -> Vec<String> {
    let log = std::fs::read_to_string(dir.join(LXC_LOG)).unwrap_or_default();
    let errs: Vec<String> = log
        .lines()
        .filter(|l| l.contains(" ERROR "))
        .map(|l| l.split_once(" - ").map_or(l, |(_, m)| m).trim().to_string())
        .map(|l| l.split_once(" - ").map_or(l.clone(), |(_, m)| m.to_string()))
        .collect();
    errs[errs.len().saturating_sub(max)..].to_vec()
}

/// Sends a pty master to the engine's console socket (SCM_RIGHTS), as runc does.
pub fn send_console(socket: &Path, master: &OwnedFd) -> Result<()> {
    use std::os::unix::net::UnixStream;
    let sock = UnixStream::connect(socket).with_context(|| format!("cannot connect to console socket {}", socket.display()))?;
    send_master(&sock, master)
}

/// Sends a pty master on an already connected console socket.
pub fn send_master(sock: &std::os::unix::net::UnixStream, master: &impl AsRawFd) -> Result<()> {
    use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
    use std::io::IoSlice;
    let fds = [master.as_raw_fd()];
    sendmsg::<()>(sock.as_raw_fd(), &[IoSlice::new(b"/dev/ptmx")], &[ControlMessage::ScmRights(&fds)], MsgFlags::empty(), None)
        .context("cannot send the pty master")?;
    Ok(())
}

/// A new pty: (master, slave).
pub fn open_pty() -> Result<(OwnedFd, OwnedFd)> {
    let p = nix::pty::openpty(None, None).context("openpty")?;
    Ok((p.master, p.slave))
}

#[cfg(test)]
mod tests {
    #[test]
    fn lxc_error_lines_without_their_prefix() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(super::LXC_LOG), "nexcage-monitor 100 20261130 INFO     start - ../src/lxc/start.c:x:1 - ok\n\
            nexcage-monitor 100 20261130 ERROR    conf - ../src/lxc/conf.c:lxc_mount_auto:9 - Read-only file system - Failed to create \"/dev\"\n").unwrap();
        assert_eq!(super::lxc_errors(dir.path(), 5), ["Read-only file system - Failed to create \"/dev\""]);
    }
}
