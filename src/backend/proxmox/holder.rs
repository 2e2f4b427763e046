//! The holder: the process whose pid the engine sees from create on.
//!
//! create forks it (double fork + setsid when detached, so it is re-parented
//! to the engine's subreaper — conmon, the containerd shim — and not left as a
//! child of a short-lived nexcage). It keeps the engine's stdio (or a pty
//! slave), closes every other fd (notably the state-dir lock, whose flock
//! would otherwise be shared), and blocks opening `start.fifo`. `start` writes
//! one byte; the holder then runs `lxc-execute` as its child and exits with
//! the container's real status (128+N for signal N).

use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{fork, ForkResult};

use super::journal::CreateJournal;

const FIFO: &str = "start.fifo";
/// Written by kill when it SIGKILLs the container: lxc-execute reports 1
/// for an init killed by SIGKILL, the holder reports 137.
pub const KILLED_MARK: &str = "killed";

pub fn fifo(dir: &Path) -> PathBuf {
    dir.join(FIFO)
}

/// Forks the holder; returns its pid. `tty` is the pty slave for
/// `process.terminal`. `foreground`: `run` waits for it, so it stays our child.
pub fn spawn(dir: &Path, foreground: bool, tty: Option<OwnedFd>, preserve_fds: i32) -> Result<i32> {
    let f = fifo(dir);
    if !f.exists() {
        nix::unistd::mkfifo(&f, nix::sys::stat::Mode::from_bits_truncate(0o600)).with_context(|| format!("mkfifo {}", f.display()))?;
    }
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
        let _ = nix::unistd::setsid();
        for fd in 0..3 {
            let _ = nix::unistd::dup2(t.as_raw_fd(), fd);
        }
        // SAFETY: TIOCSCTTY on our own pty slave fd, no pointers involved.
        unsafe { libc::ioctl(0, libc::TIOCSCTTY, 0) };
    }
    drop(tty);
    // Blocks until start (or delete) opens the FIFO for writing.
    let mut byte = [0u8; 1];
    let got = std::fs::File::open(fifo(dir)).and_then(|mut f| f.read(&mut byte));
    if !matches!(got, Ok(1)) || byte[0] != b's' {
        return 0;
    }
    let p = match CreateJournal::load(dir) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("nexcage holder: {e:#}");
            return 127;
        }
    };
    match run_container(dir, &p) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("nexcage holder: {e:#}");
            127
        }
    }
}

fn run_container(dir: &Path, p: &CreateJournal) -> Result<i32> {
    let (Some(vmid), Some(lxc_path), Some(lxc_dir)) = (p.vmid, &p.lxc_path, p.lxc_dir()) else { bail!("create did not finish") };
    let mut cmd = Command::new("lxc-execute");
    cmd.arg("-n").arg(vmid.to_string()).arg("-P").arg(lxc_path).arg("-q");
    // nexcage's settings, whatever PVE last rendered into `config` (include.rs).
    cmd.arg("-f").arg(super::include::start_path(&lxc_dir));
    for (kind, path) in &p.shares {
        cmd.arg(format!("--share-{kind}")).arg(path);
    }
    // How the guest's init ended is only in LXC's log (lxc-execute exits 1).
    cmd.arg("-l").arg("INFO").arg("-o").arg(dir.join(LXC_LOG));
    cmd.arg("--").args(&p.args);
    if let Some(m) = p.umask {
        nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(m as libc::mode_t));
    }
    let child = cmd.spawn().context("cannot run lxc-execute")?;
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    // Signals sent to the holder (e.g. by `nexcage run` in the foreground)
    // go to lxc-execute, whose monitor forwards them to the container's init.
    {
        use signal_hook::consts::*;
        let mut signals = signal_hook::iterator::Signals::new([SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH])?;
        let target = pid.as_raw();
        std::thread::spawn(move || {
            for sig in signals.forever() {
                let _ = crate::proc::signal(target, sig);
            }
        });
    }
    let code = loop {
        match waitpid(pid, None) {
            Ok(WaitStatus::Exited(_, c)) => break c,
            Ok(WaitStatus::Signaled(_, s, _)) => break 128 + s as i32,
            Ok(_) => continue,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => bail!("wait for lxc-execute: {e}"),
        }
    };
    if code == 1 && dir.join(KILLED_MARK).exists() {
        return Ok(128 + libc::SIGKILL);
    }
    if code == 1 {
        // The init itself killed (e.g. `pct stop`, which is `lxc-stop --kill`):
        // 128 + its signal, as for a killed process.
        if let Some(sig) = init_signal(&std::fs::read_to_string(dir.join(LXC_LOG)).unwrap_or_default()) {
            return Ok(128 + sig);
        }
    }
    Ok(code)
}

/// lxc-execute's log in the state dir (level INFO).
const LXC_LOG: &str = "lxc.log";

/// The signal that ended the guest's init, from LXC's log line
/// `... Child <pid> ended on signal Killed(9)` (LXC error.c
/// `lxc_error_set_and_log`).
fn init_signal(log: &str) -> Option<i32> {
    let line = log.lines().rev().find(|l| l.contains("ended on signal"))?;
    let (_, rest) = line.rsplit_once('(')?;
    rest.strip_suffix(')')?.parse().ok()
}

/// start: wakes the holder. Fails when no holder is waiting.
pub fn release(dir: &Path) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let f = fifo(dir);
    // The holder may not have reached its open() yet (start right after create).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let mut w = loop {
        match std::fs::OpenOptions::new().write(true).custom_flags(libc::O_NONBLOCK).open(&f) {
            Ok(w) => break w,
            Err(e) if e.raw_os_error() == Some(libc::ENXIO) && std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            Err(e) => return Err(e).with_context(|| format!("the container's holder is not waiting on {}", f.display())),
        }
    };
    w.write_all(b"s").context("cannot release the holder")?;
    Ok(())
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
    fn init_signal_from_lxc_log() {
        let log = "lxc-execute 100 20261129232138.156 INFO     error - ../src/lxc/error.c:lxc_error_set_and_log:34 - Child <26841> ended on signal Killed(9)\n\
                   lxc-execute 100 20261129232138.318 TRACE    start - ../src/lxc/start.c:lxc_end:974 - Set container state to \"STOPPED\"\n";
        assert_eq!(super::init_signal(log), Some(9));
        assert_eq!(super::init_signal("lxc-execute 100 x INFO error - Child <1> ended with error 1\n"), None);
    }
}
