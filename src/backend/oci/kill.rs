//! `kill --all` (runc's): the signal goes to every process of the
//! container's cgroup.

use anyhow::{anyhow, Result};

/// Sends `signal` to each of `pids`. A process that is already gone
/// (ESRCH) is skipped; any other failure stops with "kill PID: ERRNO".
pub fn all(pids: &[i32], signal: i32) -> Result<()> {
    for &p in pids {
        match crate::proc::signal(p, signal) {
            Ok(()) | Err(nix::errno::Errno::ESRCH) => {}
            Err(e) => return Err(anyhow!("kill {p}: {e}")),
        }
    }
    Ok(())
}
