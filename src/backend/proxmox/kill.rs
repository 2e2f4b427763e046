//! kill: the holder before start, the guest's processes after.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use super::journal::CreateJournal;
use super::{guest_cgroup, holder, lxc};
use crate::backend::oci;
use crate::proc;
use crate::state::Record;

/// Before start only the holder exists: signalling it ends the container.
/// After start, signals go to the command under LXC's init (init then exits
/// with the command's status; killing the init itself would make lxc-execute
/// report 1, and lxc-init turns its own SIGTERM into a SIGKILL of everything
/// after 1 s), to the init only when it has no child. `all`: every pid of
/// the guest's cgroup.
pub fn kill(rec: &Record, dir: &Path, sig: i32, all: bool) -> Result<()> {
    let p = CreateJournal::load(dir)?;
    let holder = rec.pid.filter(|pid| proc::is_same_alive(*pid, rec.pid_start));
    if !rec.started {
        if let Some(h) = holder {
            send(h, sig)?;
        }
        return Ok(());
    }
    if sig == libc::SIGKILL {
        std::fs::write(dir.join(holder::KILLED_MARK), b"9").context("record kill")?;
    }
    // start returns once the holder is released; LXC may need a moment.
    let deadline = Instant::now() + Duration::from_secs(3);
    let init = loop {
        if let Some(i) = lxc::init_pid(&p) {
            break Some(i);
        }
        if holder.is_none_or(|h| !proc::is_same_alive(h, rec.pid_start)) || Instant::now() > deadline {
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let Some(init) = init else {
        // Not running under LXC (anymore): the holder is all there is.
        if let Some(h) = holder {
            send(h, sig)?;
        }
        return Ok(());
    };
    if all {
        return oci::kill::all(&guest_cgroup::pids_of(init).unwrap_or_default(), sig);
    }
    // Every signal goes to the command under LXC's init: lxc-init answers a
    // SIGTERM of its own by forwarding it and SIGKILLing everything a second
    // later (so a grace period would end after 1 s with 137).
    let kids = lxc::children(init);
    if !kids.is_empty() {
        for k in kids {
            let _ = proc::signal(k, sig);
        }
        return Ok(());
    }
    send(init, sig)
}

fn send(pid: i32, sig: i32) -> Result<()> {
    match proc::signal(pid, sig) {
        Ok(()) | Err(nix::errno::Errno::ESRCH) => Ok(()),
        Err(e) => Err(anyhow::anyhow!("kill({pid}, {sig}): {e}")),
    }
}
