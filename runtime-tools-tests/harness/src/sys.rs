//! Thin wrappers over the few system calls the harness needs.

use anyhow::{bail, Context, Result};
use std::path::Path;
use std::time::{Duration, Instant};

/// How a process ended, as seen by its reaper.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Code(i32),
    Signal(i32),
}

impl Exit {
    /// The shell convention (128+signal), what `run` is expected to return.
    pub fn shell_code(self) -> i32 {
        match self {
            Exit::Code(c) => c,
            Exit::Signal(s) => 128 + s,
        }
    }
}

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Exit::Code(c) => write!(f, "exit code {c}"),
            Exit::Signal(s) => write!(f, "killed by signal {s}"),
        }
    }
}

/// Make this process a child subreaper, so that a container's init, whose
/// runtime parent exits after `create`, is re-parented to us and we learn its
/// exit status by reaping it, exactly as containerd's shim and conmon do.
pub fn become_subreaper() -> Result<()> {
    // SAFETY: prctl(PR_SET_CHILD_SUBREAPER, 1) takes no pointers.
    let r = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    if r != 0 {
        bail!("prctl(PR_SET_CHILD_SUBREAPER): {}", std::io::Error::last_os_error());
    }
    Ok(())
}

/// Waits for `pid` (which must be our child, possibly by re-parenting) to
/// exit, up to `timeout`. Ok(None) on timeout.
pub fn wait_pid(pid: i32, timeout: Duration) -> Result<Option<Exit>> {
    let start = Instant::now();
    loop {
        let mut st: libc::c_int = 0;
        // SAFETY: st is a valid out-pointer; WNOHANG makes this non-blocking.
        let r = unsafe { libc::waitpid(pid, &mut st, libc::WNOHANG) };
        if r == pid {
            if libc::WIFEXITED(st) {
                return Ok(Some(Exit::Code(libc::WEXITSTATUS(st))));
            }
            if libc::WIFSIGNALED(st) {
                return Ok(Some(Exit::Signal(libc::WTERMSIG(st))));
            }
            continue;
        }
        if r < 0 {
            let e = std::io::Error::last_os_error();
            bail!("waitpid({pid}): {e} (the container process is not our child: was it re-parented to us?)");
        }
        if start.elapsed() > timeout {
            return Ok(None);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Reaps any exited children without blocking (orphans re-parented to us).
/// Only call when no `std::process::Child` is outstanding.
pub fn reap_zombies() {
    loop {
        // SAFETY: null status pointer is allowed; WNOHANG never blocks.
        let r = unsafe { libc::waitpid(-1, std::ptr::null_mut(), libc::WNOHANG) };
        if r <= 0 {
            break;
        }
    }
}

pub fn kill(pid: i32, sig: i32) -> bool {
    // SAFETY: kill(2) takes no pointers.
    unsafe { libc::kill(pid, sig) == 0 }
}

/// True when /proc/<pid> exists and is not a zombie.
pub fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => {
            let st = s.rsplit_once(")").and_then(|(_, r)| r.trim_start().chars().next());
            !matches!(st, Some('Z') | Some('X'))
        }
        Err(_) => false,
    }
}

/// Waits until `pid` is gone or a zombie.
pub fn wait_dead(pid: i32, timeout: Duration) -> bool {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if !alive(pid) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    !alive(pid)
}

/// Inode of /proc/<pid>/ns/<ns> ("self" allowed), to compare namespaces.
pub fn ns_inode(pid: &str, ns: &str) -> Result<String> {
    let p = format!("/proc/{pid}/ns/{ns}");
    let l = std::fs::read_link(&p).with_context(|| format!("readlink {p}"))?;
    Ok(l.to_string_lossy().into_owned())
}

/// Parent of a process (from /proc/<pid>/stat), -1 when unreadable.
pub fn ppid(pid: i32) -> i32 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    stat.rsplit_once(')').and_then(|(_, r)| r.split_whitespace().nth(1)).and_then(|x| x.parse().ok()).unwrap_or(-1)
}

/// Children of a process (from /proc/<pid>/task/*/children).
pub fn children(pid: i32) -> Vec<i32> {
    let mut v = Vec::new();
    if let Ok(rd) = std::fs::read_dir(format!("/proc/{pid}/task")) {
        for t in rd.flatten() {
            if let Ok(s) = std::fs::read_to_string(t.path().join("children")) {
                v.extend(s.split_whitespace().filter_map(|x| x.parse::<i32>().ok()));
            }
        }
    }
    v
}

pub fn read_trim(p: impl AsRef<Path>) -> Result<String> {
    let p = p.as_ref();
    Ok(std::fs::read_to_string(p).with_context(|| format!("read {}", p.display()))?.trim().to_string())
}

pub fn signal_number(name: &str) -> Option<i32> {
    let n = name.trim_start_matches("SIG");
    Some(match n {
        "HUP" => libc::SIGHUP,
        "INT" => libc::SIGINT,
        "QUIT" => libc::SIGQUIT,
        "KILL" => libc::SIGKILL,
        "USR1" => libc::SIGUSR1,
        "USR2" => libc::SIGUSR2,
        "TERM" => libc::SIGTERM,
        "SYS" => libc::SIGSYS,
        _ => return None,
    })
}
