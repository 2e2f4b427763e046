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
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    use std::os::unix::net::UnixStream;

    // SAFETY: pidfd_open takes two integers and returns a new fd or -1.
    let raw = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if raw < 0 {
        anyhow::bail!("pidfd_open({pid}): {}", std::io::Error::last_os_error());
    }
    // SAFETY: raw is a freshly opened fd that nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(raw as i32) };
    let sock = UnixStream::connect(path)
        .map_err(|e| anyhow::anyhow!("cannot connect to pidfd socket {}: {e}", path.display()))?;
    let fds = [fd.as_raw_fd()];
    let name = format!("pidfd:{pid}");
    sendmsg::<()>(sock.as_raw_fd(), &[IoSlice::new(name.as_bytes())], &[ControlMessage::ScmRights(&fds)], MsgFlags::empty(), None)
        .map_err(|e| anyhow::anyhow!("cannot send pidfd: {e}"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_process_is_alive_and_stable() {
        let me = std::process::id() as i32;
        let st = start_time(me).unwrap();
        assert!(is_same_alive(me, Some(st)));
        assert!(!is_same_alive(me, Some(st + 1)));
        assert!(!is_same_alive(0, None));
    }
}
