//! delete / undo: removes exactly what the progress file says create began:
//! the running guest (processes, holder), the Proxmox registration, the ZFS
//! dataset, the LXC config dir. Every step tolerates "already gone", so it
//! is idempotent and works after a crash at any point of create.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use super::progress::Progress;
use super::{cgroup, lxc, stage, Proxmox};
use crate::proc;
use crate::state::Record;

pub fn delete(px: &Proxmox, rec: &Record, dir: &Path, _force: bool) -> Result<()> {
    let p = Progress::load(dir)?;
    stop(&p, rec.pid.map(|pid| (pid, rec.pid_start)))?;
    undo(&px.for_progress(&p)?, &p, dir)
}

/// Kills the guest's processes and the holder, and waits until LXC has
/// let go of the rootfs (else the dataset stays busy).
fn stop(p: &Progress, holder: Option<(i32, Option<u64>)>) -> Result<()> {
    if let Some(init) = lxc::init_pid(p) {
        for pid in cgroup::pids_of(init).unwrap_or_else(|_| vec![init]) {
            let _ = proc::signal(pid, libc::SIGKILL);
        }
        // A paused guest's processes die only once thawed.
        cgroup::thaw(init);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    if let Some((h, start)) = holder {
        if proc::is_same_alive(h, start) {
            let _ = proc::signal(h, libc::SIGKILL);
        }
        while proc::is_same_alive(h, start) && Instant::now() < deadline {
            // Our own child only in `run`'s foreground mode; reap if so.
            let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(h), Some(nix::sys::wait::WaitPidFlag::WNOHANG));
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    while lxc::init_pid(p).is_some() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

/// Undoes create's side effects per the progress record (not the processes).
pub fn undo(px: &Proxmox, p: &Progress, _dir: &Path) -> Result<()> {
    if p.step.is_empty() {
        return Ok(());
    }
    if let Some(h) = p.holder {
        // A holder from a failed create (not yet in any record): it is our
        // child or our grandchild and still blocked on the FIFO.
        stop(p, Some((h, proc::start_time(h))))?;
    } else if lxc::init_pid(p).is_some() {
        stop(p, None)?;
    }
    let mut errors = Vec::new();
    if let (true, Some(vmid)) = (p.guest, p.vmid) {
        // While the VMID is still ours (registered, not yet destroyed).
        cgroup::remove_leftovers(vmid);
        match px.driver().and_then(|cp| Ok(cp.destroy(vmid, true)?)) {
            Ok(()) => {}
            Err(e) if is_not_found(&e) => {}
            Err(e) => errors.push(format!("destroy guest {vmid}: {e:#}")),
        }
    }
    if let Err(e) = undo_storage(p) {
        errors.push(format!("{e:#}"));
    }
    if let Some(d) = p.lxc_dir() {
        // Never remove the dir through a staged mount into the host.
        if let Err(e) = stage::unstage(&d) {
            errors.push(format!("{e:#}"));
        } else {
            match std::fs::remove_dir_all(&d) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => errors.push(format!("remove {}: {e}", d.display())),
            }
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        anyhow::bail!("{}", errors.join("; "))
    }
}

fn is_not_found(e: &anyhow::Error) -> bool {
    e.downcast_ref::<nexcage_pve::driver::PveError>().is_some_and(|pe| pe.is_not_found())
        || e.to_string().contains("does not exist")
}

/// Destroys the dataset create made (retrying while busy).
pub fn undo_storage(p: &Progress) -> Result<()> {
    if let Some(ds) = &p.dataset {
        nexcage_zfs::Zfs::new().destroy(ds, true).with_context(|| format!("destroy dataset {ds}"))?;
    }
    Ok(())
}
