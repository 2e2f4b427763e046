//! kill: the guest's PID 1 — nexcage-init before start (which ends with
//! 128+N for the stop signals), the application after — as runc signals
//! its container's init. From an ancestor namespace a PID 1 gets SIGKILL
//! always and other signals only when it handles them (pid_namespaces(7)),
//! as under runc. `--all`: every pid of the guest's cgroup. A paused
//! guest's thaw after it is `Container::kill`'s (runc's rule).

use std::path::Path;

use anyhow::Result;

use super::journal::CreateJournal;
use super::{guest_cgroup, holder, lxc};
use crate::backend::oci;
use crate::proc;

pub fn kill(dir: &Path, sig: i32, all: bool) -> Result<()> {
    let p = CreateJournal::load(dir)?;
    let Some(init) = lxc::from_holder(&p) else {
        // No guest (anymore): the holder is all there is.
        if let Some(h) = holder::alive(&p) {
            send(h, sig)?;
        }
        return Ok(());
    };
    if all {
        oci::kill::all(&guest_cgroup::pids_of(init).unwrap_or_else(|_| vec![init]), sig)?;
    } else {
        send(init, sig)?;
    }
    Ok(())
}

fn send(pid: i32, sig: i32) -> Result<()> {
    match proc::signal(pid, sig) {
        Ok(()) | Err(nix::errno::Errno::ESRCH) => Ok(()),
        Err(e) => Err(anyhow::anyhow!("kill({pid}, {sig}): {e}")),
    }
}
