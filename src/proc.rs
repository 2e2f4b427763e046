//! Process identity: a pid plus its start time, so a reused pid is never
//! mistaken for the container's process.

use nix::sys::signal::kill;
use nix::unistd::Pid;

/// Clock ticks per second (`sysconf(_SC_CLK_TCK)`, USER_HZ; 100 on Linux):
/// the unit of /proc/PID/stat times and of cgroup v1's `cpuacct.stat`.
pub fn clock_ticks_per_second() -> u64 {
    // SAFETY: sysconf has no memory effects; it only reads a constant.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    u64::try_from(hz).ok().filter(|h| *h > 0).unwrap_or(100)
}

/// Start time of `pid` in clock ticks since boot (field 22 of /proc/PID/stat),
/// or None when the process is gone.
pub fn start_time(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // comm may contain spaces and parentheses: fields start after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split(' ').nth(19)?.parse().ok()
}

/// The one-letter state of `pid` (R, S, Z, ...).
pub fn state_letter(pid: i32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat[stat.rfind(')')? + 2..].chars().next()
}

/// True when `pid` is alive (not a zombie) and is the process that started at `start`.
pub fn is_same_alive(pid: i32, start: Option<u64>) -> bool {
    if pid <= 0 {
        return false;
    }
    match (start_time(pid), start) {
        (Some(now), Some(then)) if now != then => false,
        (None, _) => false,
        _ => !matches!(state_letter(pid), Some('Z') | Some('X') | None),
    }
}

/// Sends `sig` to `pid`; Err(ESRCH) means "no such process".
pub fn signal(pid: i32, sig: i32) -> nix::Result<()> {
    let s = nix::sys::signal::Signal::try_from(sig).ok();
    match s {
        Some(s) => kill(Pid::from_raw(pid), s),
        // real-time signals have no nix enum variant
        None => {
            // SAFETY: kill(2) with a plain pid and signal number touches no memory.
            let r = unsafe { libc::kill(pid, sig) };
            if r == 0 { Ok(()) } else { Err(nix::errno::Errno::last()) }
        }
    }
}

/// Sends a pidfd for `pid` over the unix socket at `path` (runc's
/// `--pidfd-socket`): one message, SCM_RIGHTS carrying the fd.
pub fn send_pidfd(path: &std::path::Path, pid: i32) -> anyhow::Result<()> {
    use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
    use std::io::IoSlice;
    use std::os::fd::AsRawFd;
    use std::os::unix::net::UnixStream;

    let fd = pidfd_open(pid).map_err(|e| anyhow::anyhow!("pidfd_open({pid}): {e}"))?;
    let sock = UnixStream::connect(path)
        .map_err(|e| anyhow::anyhow!("cannot connect to pidfd socket {}: {e}", path.display()))?;
    let fds = [fd.as_raw_fd()];
    let name = format!("pidfd:{pid}");
    sendmsg::<()>(sock.as_raw_fd(), &[IoSlice::new(name.as_bytes())], &[ControlMessage::ScmRights(&fds)], MsgFlags::empty(), None)
        .map_err(|e| anyhow::anyhow!("cannot send pidfd: {e}"))?;
    Ok(())
}

/// A pidfd for `pid` (pidfd_open(2), Linux 5.3): readable once it exits.
pub fn pidfd_open(pid: i32) -> std::io::Result<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    // SAFETY: pidfd_open takes two integers and returns a new fd or -1.
    let raw = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if raw < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: raw is a freshly opened fd that nothing else owns.
    Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(raw as i32) })
}

/// Waits until process `pid` (the one that started at `start`, clock
/// ticks, when given) has exited, for at most `bound`: true once it is gone
/// (or a zombie), false when it still runs. An event wait (its pidfd turns
/// readable when it exits), not a poll loop; any process, not only a child.
pub fn wait_for_exit(pid: i32, start: Option<u64>, bound: std::time::Duration) -> bool {
    use std::os::fd::AsRawFd;
    let Ok(fd) = pidfd_open(pid) else { return !is_same_alive(pid, start) };
    // The pid may have been reused before the pidfd was opened.
    if !is_same_alive(pid, start) {
        return true;
    }
    let deadline = std::time::Instant::now() + bound;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        // Rounded up: the whole bound is waited, not a millisecond less.
        let ms = i32::try_from(left.as_micros().div_ceil(1000)).unwrap_or(i32::MAX);
        let mut pfd = libc::pollfd { fd: fd.as_raw_fd(), events: libc::POLLIN, revents: 0 };
        // SAFETY: one valid pollfd on the stack, its fd owned by `fd` for the call.
        let n = unsafe { libc::poll(&mut pfd, 1, ms) };
        if n > 0 {
            return true;
        }
        if n < 0 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
            continue;
        }
        return !is_same_alive(pid, start);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_for_exit_sees_an_exit_and_bounds_a_runner() {
        let mut c = std::process::Command::new("sleep").arg("5").spawn().unwrap();
        let pid = c.id() as i32;
        let t = std::time::Instant::now();
        assert!(!wait_for_exit(pid, start_time(pid), std::time::Duration::from_millis(50)));
        assert!(t.elapsed() >= std::time::Duration::from_millis(50));
        c.kill().unwrap();
        assert!(wait_for_exit(pid, None, std::time::Duration::from_secs(5)));
        c.wait().unwrap();
        assert!(wait_for_exit(pid, None, std::time::Duration::from_secs(5)));
    }

    #[test]
    fn own_process_is_alive_and_stable() {
        let me = std::process::id() as i32;
        let st = start_time(me).unwrap();
        assert!(is_same_alive(me, Some(st)));
        assert!(!is_same_alive(me, Some(st + 1)));
        assert!(!is_same_alive(0, None));
    }
}
