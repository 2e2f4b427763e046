//! delete / undo: removes exactly what the create journal says create began:
//! the running guest (processes, holder), the Proxmox registration, the ZFS
//! dataset, the LXC config dir. Every step tolerates "already gone", so it
//! is idempotent and works after a crash at any point of create.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use super::journal::{CreateJournal, CreateStep};
use super::{guest_cgroup, hooks, lxc, stage, Proxmox};
use crate::backend::oci::hooks::Phase;
use crate::proc;
use crate::state::Record;

/// Stops the guest, undoes create, then runs the poststop hooks.
pub fn delete(px: &Proxmox, rec: &Record, dir: &Path) -> Result<()> {
    let j = CreateJournal::load(dir)?;
    stop(&j, rec.pid.map(|pid| (pid, rec.pid_start)))?;
    undo(&px.for_journal(&j)?, &j)?;
    hooks::run_recorded(rec, Phase::Poststop)
}

/// Kills the guest's processes and the holder, and waits until LXC has
/// let go of the rootfs (else the dataset stays busy).
fn stop(p: &CreateJournal, holder: Option<(i32, Option<u64>)>) -> Result<()> {
    if let Some(init) = lxc::init_pid(p) {
        for pid in guest_cgroup::pids_of(init).unwrap_or_else(|_| vec![init]) {
            let _ = proc::signal(pid, libc::SIGKILL);
        }
        // A paused guest's processes die only once thawed.
        guest_cgroup::thaw(init);
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

/// Undoes create's side effects per the journal (not the processes).
pub fn undo(px: &Proxmox, p: &CreateJournal) -> Result<()> {
    if p.step == CreateStep::NotBegun {
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
        guest_cgroup::remove_leftovers(vmid);
        // A guest that stays (e.g. under `lock: backup`) still uses its
        // dataset and LXC dir: leave them (PROXMOX-FACTS §10).
        destroy_guest(px, vmid).with_context(|| format!("destroy guest {vmid}"))?;
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

/// Unregisters the guest; one that does not exist (anymore) counts as done.
fn destroy_guest(px: &Proxmox, vmid: u32) -> Result<()> {
    match px.driver()?.destroy(vmid, true) {
        Err(e) if !e.is_not_found() => Err(e.into()),
        _ => Ok(()),
    }
}

/// Destroys the dataset create made (retrying while busy).
pub fn undo_storage(p: &CreateJournal) -> Result<()> {
    if let Some(ds) = &p.dataset {
        nexcage_zfs::Zfs::new().destroy(ds, true).with_context(|| format!("destroy dataset {ds}"))?;
    }
    Ok(())
}
