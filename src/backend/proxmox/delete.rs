//! delete / undo: removes exactly what the create journal says create began:
//! the running guest (processes, holder), the Proxmox registration, the ZFS
//! dataset, the LXC config dir. Every step tolerates "already gone", so it
//! is idempotent and works after a crash at any point of create.
//!
//! Each of guest, dataset and LXC dir is removed only when it carries the
//! container's owner record (`owner.rs`): a VMID an operator freed and
//! Proxmox gave to another guest, or another root's guest, is left alone
//! with a warning, and delete still succeeds.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use super::journal::{CreateJournal, CreateStep, RootfsMount};
use super::owner::{Owner, Verdict};
use super::{guest_cgroup, hooks, lxc, stage, Proxmox};
use crate::backend::oci::hooks::Phase;
use crate::proc;
use crate::state::Record;

/// Stops the guest, undoes create, then runs the poststop hooks.
pub fn delete(px: &Proxmox, rec: &Record, dir: &Path) -> Result<()> {
    let j = CreateJournal::load(dir)?;
    if j.step != CreateStep::NotBegun {
        let lxc_ours = lxc_dir_ours(&j);
        stop(&j, j.holder.map(|h| (h, j.holder_start)), lxc_ours)?;
        remove(&px.for_journal(&j)?, &j, lxc_ours)?;
    }
    hooks::run_recorded(rec, Phase::Poststop)
}

/// Whether the LXC dir `<lxc_path>/<vmid>` is this container's (then LXC's
/// view of that name is too); warns when it is someone else's.
fn lxc_dir_ours(p: &CreateJournal) -> bool {
    let (Some(d), Some(o)) = (p.lxc_dir(), &p.owner) else { return false };
    match o.check_lxc_dir(&d) {
        Verdict::Ours => true,
        Verdict::Gone => false,
        Verdict::Foreign(why) => {
            tracing::warn!("left {} alone: {why}", d.display());
            false
        }
    }
}

/// Kills the guest's processes and the holder, and waits until LXC has
/// let go of the rootfs (else the dataset stays busy). LXC is asked about
/// the VMID only when `lxc_ours` (else only the holder's own guest counts).
fn stop(p: &CreateJournal, holder: Option<(i32, Option<u64>)>, lxc_ours: bool) -> Result<()> {
    let init_pid = |p: &CreateJournal| if lxc_ours { lxc::init_pid(p) } else { lxc::from_holder(p) };
    if let Some(init) = init_pid(p) {
        for pid in guest_cgroup::pids_of(init).unwrap_or_else(|_| vec![init]) {
            let _ = proc::signal(pid, libc::SIGKILL);
        }
        // A paused guest's processes die only once thawed.
        guest_cgroup::thaw(init);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    let left = || deadline.saturating_duration_since(Instant::now());
    if let Some((h, start)) = holder {
        if proc::is_same_alive(h, start) {
            let _ = proc::signal(h, libc::SIGKILL);
        }
        proc::wait_for_exit(h, start, left());
        // Our own child only in `run`'s foreground mode; reap if so.
        let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(h), Some(nix::sys::wait::WaitPidFlag::WNOHANG));
    }
    // The guest's mounts (its rootfs among them) go with its PID 1, whose
    // exit waits for every other process of its pid namespace.
    while let Some(init) = init_pid(p).filter(|_| !left().is_zero()) {
        proc::wait_for_exit(init, proc::start_time(init), left());
    }
    Ok(())
}

/// Undoes a failed create per its journal: stops what it started, then [`remove`].
pub fn undo(px: &Proxmox, p: &CreateJournal) -> Result<()> {
    if p.step == CreateStep::NotBegun {
        return Ok(());
    }
    let lxc_ours = lxc_dir_ours(p);
    if let Some(h) = p.holder {
        // A holder from a failed create (not yet in any record): it is our
        // child or our grandchild and still blocked on the FIFO.
        stop(p, Some((h, proc::start_time(h))), lxc_ours)?;
    } else if lxc_ours && lxc::init_pid(p).is_some() {
        stop(p, None, lxc_ours)?;
    }
    remove(px, p, lxc_ours)
}

/// Removes what create made per the journal, its processes stopped: the
/// guest's cgroup, the guest, the dataset, the LXC dir (when `lxc_ours`,
/// or once our guest is destroyed).
fn remove(px: &Proxmox, p: &CreateJournal, lxc_ours: bool) -> Result<()> {
    if let Some(d) = &p.cgroup_dir {
        guest_cgroup::remove_dir(d);
    }
    let mut errors = Vec::new();
    if p.owner.is_none() && (p.guest || p.dataset.is_some()) {
        tracing::warn!("left guest {:?} and dataset {:?} alone: the create journal has no owner record (an older nexcage made it)", p.vmid, p.dataset);
    }
    // Clearing protection makes PVE regenerate `<lxc_path>/<vmid>` from
    // the guest config: once our guest is destroyed, that dir is ours too.
    let mut guest_destroyed = false;
    // The config of a guest left alone (not provably ours), if it exists.
    let mut kept = None;
    let mut verdict = None;
    // The dataset's owner is read while the guest is destroyed (one zfs
    // round trip off the delete), under the VMID's claim lock, held until
    // undo ends (past the dataset's destroy): no create on this host claims
    // the id the destroy frees meanwhile (vmid.rs). Without the lock (a
    // create is looking at this id right now, or /run cannot hold it), it
    // is read afterwards. Once the guest is found ready to go (ours and
    // unlocked, or not ours at all), a dataset of ours (or the very mount
    // create made) is unmounted on the same thread, so that zfs-fuse lets
    // go of it (5-16 ms) during the destroy's API calls; should Proxmox
    // still refuse the destroy, it is mounted again.
    let claim = p.vmid.filter(|_| p.guest && p.owner.is_some()).and_then(|v| super::vmid::lock_vmid(v).ok().flatten());
    if let (true, Some(vmid), Some(owner)) = (p.guest, p.vmid, &p.owner) {
        let (go, gate) = std::sync::mpsc::channel::<bool>();
        let (guest, checked) = std::thread::scope(|s| {
            let checked = claim.as_ref().map(|_| s.spawn(move || verdict_then_unmount(p, &gate)));
            // A guest that stays (e.g. under `lock: backup`) still uses its
            // dataset and LXC dir: leave them (PROXMOX-FACTS §10).
            let guest = destroy_guest(px, vmid, owner, go).with_context(|| format!("destroy guest {vmid}"));
            (guest, checked.map(|h| h.join().unwrap_or_else(|_| (Err(anyhow::anyhow!("the dataset owner check panicked")), false))))
        });
        let unmounted = checked.as_ref().is_some_and(|c| c.1);
        verdict = checked.map(|c| c.0);
        guest_destroyed = match guest {
            Ok(GuestOutcome::Destroyed) => true,
            Ok(GuestOutcome::Gone) => false,
            Ok(GuestOutcome::LeftAlone(c)) => {
                kept = Some(c);
                false
            }
            Err(e) => {
                if let (true, Some(ds)) = (unmounted, &p.dataset) {
                    if let Err(me) = nexcage_zfs::Zfs::new().mount(ds) {
                        tracing::warn!("could not mount {ds} again: {me}");
                    }
                }
                return Err(e);
            }
        };
    }
    // A guest left alone that still has the dataset as a volume (an
    // operator replaced its Notes, and with them the owner line) keeps it,
    // and its LXC dir (its config includes nexcage's): never a registered
    // guest whose disk is gone.
    if let (Some(c), Some(ds), Some(vmid)) = (&kept, &p.dataset, p.vmid) {
        if uses_dataset(c, ds) {
            // Its processes, our holder's, were stopped above: LXC's empty
            // cgroups of them go (rmdir leaves any cgroup in use).
            guest_cgroup::remove_leftovers(vmid);
            tracing::warn!("left dataset {ds} and {} alone: guest {vmid}, which stays, has it as a volume", p.lxc_dir().map(|d| d.display().to_string()).unwrap_or_default());
            return Ok(());
        }
    }
    // The LXC dir goes while zfs destroys the dataset (neither needs the other).
    let lxc_dir = p.lxc_dir().filter(|_| lxc_ours || guest_destroyed);
    let (undone, removed) = std::thread::scope(|s| {
        let removed = lxc_dir.as_deref().map(|d| s.spawn(move || remove_lxc_dir(d)));
        let undone = verdict.unwrap_or_else(|| dataset_verdict(p)).and_then(|v| destroy_dataset(p, v));
        (undone, removed.map(|h| h.join().unwrap_or_else(|_| Err(anyhow::anyhow!("removing the LXC dir panicked")))))
    });
    for e in [Some(undone), removed].into_iter().flatten().filter_map(Result::err) {
        errors.push(format!("{e:#}"));
    }
    if errors.is_empty() {
        Ok(())
    } else {
        anyhow::bail!("{}", errors.join("; "))
    }
}

/// Removes an LXC dir of ours (gone already counts as done), never
/// through a staged mount into the host: those are unmounted first.
pub(super) fn remove_lxc_dir(d: &Path) -> Result<()> {
    stage::unstage(d)?;
    match std::fs::remove_dir_all(d) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e).with_context(|| format!("remove {}", d.display())),
        _ => Ok(()),
    }
}

/// What [`destroy_guest`] did.
enum GuestOutcome {
    Destroyed,
    /// It did not exist (anymore).
    Gone,
    /// Someone else's, or no longer provably ours: left, with its config.
    LeftAlone(nexcage_pve::driver::GuestConfig),
}

/// Whether the guest has dataset `ds` as a volume (`rootfs`, `mpN`,
/// `unusedN`: `<storage>:<volume name>[,options]`, the volume named as the
/// dataset's last component: PROXMOX-FACTS §7).
fn uses_dataset(c: &nexcage_pve::driver::GuestConfig, ds: &str) -> bool {
    let name = ds.rsplit('/').next().unwrap_or(ds);
    c.keys.iter().filter(|(k, _)| *k == "rootfs" || k.starts_with("mp") || k.starts_with("unused")).any(|(_, v)| {
        let volume = v.split(',').next().unwrap_or_default();
        volume.split_once(':').is_some_and(|(_, n)| n == name)
    })
}

/// Unregisters the guest when it carries `owner`'s record (clearing its
/// protection first). One that does not exist (anymore) counts as done,
/// someone else's is left alone with a warning. `go` gets true once the
/// guest is known ours and unlocked (only the API calls of its destroy are
/// left), false once it is known gone or someone else's.
fn destroy_guest(px: &Proxmox, vmid: u32, owner: &Owner, go: std::sync::mpsc::Sender<bool>) -> Result<GuestOutcome> {
    let cp = px.driver()?;
    let config = match owner.check_guest(&*cp, vmid)? {
        (Verdict::Ours, Some(c)) => c,
        (verdict, config) => {
            if let Verdict::Foreign(why) = &verdict {
                tracing::warn!("left guest {vmid} alone: {why}");
            }
            let _ = go.send(false);
            // Gone comes without a config, a guest someone else's with one.
            return Ok(config.map_or(GuestOutcome::Gone, GuestOutcome::LeftAlone));
        }
    };
    if wait_for_lock(&*cp, vmid, &config, px.config().lock_wait()) {
        let _ = go.send(true);
    }
    let gone = |r: Result<(), nexcage_pve::driver::PveError>| match r {
        Err(e) if !e.is_not_found() => Err(e),
        _ => Ok(()),
    };
    // LXC's leftover cgroups go while the VMID is still ours (registered,
    // not yet destroyed): beside the protection PUT (a scan of every
    // hierarchy, 2-4 ms).
    let cleared = std::thread::scope(|s| {
        let cgroups = s.spawn(|| guest_cgroup::remove_leftovers(vmid));
        let cleared = gone(cp.set_config(vmid, &Default::default(), &["protection".to_string()]));
        let _ = cgroups.join();
        cleared
    });
    cleared.context("clear protection")?;
    gone(cp.destroy(vmid, true))?;
    Ok(GuestOutcome::Destroyed)
}

/// Waits up to `wait` for the guest's Proxmox lock to go (`create`, a
/// create of ours that died in Proxmox, is not waited for). A backup holds
/// `lock: backup` while it reads the dataset, and every lock but `mounted`
/// refuses the protection PUT and the destroy (PROXMOX-FACTS section 10):
/// an engine's `rm` right after a backup began should not fail, and one
/// that does fail may forget the container (Podman does). After `wait` the
/// destroy is tried anyway and fails with Proxmox's words. `config` is the
/// guest's config just read (the owner check's): asked again only while
/// locked. True when no blocking lock is left.
fn wait_for_lock(cp: &dyn nexcage_pve::driver::ControlPlane, vmid: u32, config: &nexcage_pve::driver::GuestConfig, wait: Duration) -> bool {
    let deadline = Instant::now() + wait;
    let blocking = |c: &nexcage_pve::driver::GuestConfig| c.keys.get("lock").cloned().filter(|l| l != "mounted" && l != "create");
    let locked = || cp.config(vmid).ok().as_ref().and_then(blocking).is_some();
    let Some(first) = blocking(config) else { return true };
    tracing::info!(vmid, lock = %first, "guest is locked; waiting up to {}s for the lock to go", wait.as_secs());
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(500).min(deadline.saturating_duration_since(Instant::now())));
        if !locked() {
            return true;
        }
    }
    false
}

/// Destroys the dataset create made (retrying while busy), when it carries
/// the container's owner record; someone else's is left with a warning.
pub fn undo_storage(p: &CreateJournal) -> Result<()> {
    dataset_verdict(p).and_then(|v| destroy_dataset(p, v))
}

/// The dataset's [`dataset_verdict`]; when it is ours and `gate` opens
/// (the guest's destroy has only its API calls left, or the guest is gone
/// or someone else's), the dataset is unmounted for its destroy: true
/// then. What the unmount looks up (mount table, zfs-fuse's fd of the
/// mount) is looked up while zfs answers. The very mount create made (the
/// kernel's unique mount id of this boot, `rootfs_mount` of the journal)
/// is unmounted once `gate` says the guest is ours and unlocked, without
/// waiting for the owner record: only that guest, now stopped, used it.
/// Should the record then say the dataset is not ours (changed since
/// create), it is mounted again and left alone. Its id is read through
/// the mountpoint's path, as the unmount's own `umount2` walks it.
fn verdict_then_unmount(p: &CreateJournal, gate: &std::sync::mpsc::Receiver<bool>) -> (Result<Verdict>, bool) {
    let Some(ds) = p.dataset.as_deref() else { return (dataset_verdict(p), false) };
    let zfs = nexcage_zfs::Zfs::new();
    let made_by_create = |prep: &nexcage_zfs::PreparedUnmount| p.rootfs_mount.is_some() && prep.mount_id().and_then(RootfsMount::in_this_boot) == p.rootfs_mount;
    std::thread::scope(|s| {
        let verdict = s.spawn(|| dataset_verdict(p));
        let mut prepared = Some(nexcage_zfs::Zfs::prepare_unmount(ds));
        // The gate's word, read once (None: it closed unsaid).
        let said = std::cell::OnceCell::new();
        let word = || *said.get_or_init(|| gate.recv().ok());
        let mut early = false;
        // Still that mount after the wait, and zfs has not answered yet.
        if prepared.as_ref().is_some_and(made_by_create) && word() == Some(true) && !verdict.is_finished() && prepared.as_ref().is_some_and(made_by_create) {
            if let Some(prep) = prepared.take() {
                early = zfs.unmount_prepared(ds, prep);
            }
        }
        let verdict = verdict.join().unwrap_or_else(|_| Err(anyhow::anyhow!("the dataset owner check panicked")));
        let unmounted = match (&verdict, prepared) {
            (Ok(Verdict::Ours), None) => early,
            (Ok(Verdict::Ours), Some(prep)) => word().is_some() && zfs.unmount_prepared(ds, prep),
            _ => {
                if early {
                    if let Err(e) = zfs.mount(ds) {
                        tracing::warn!("could not mount {ds} again: {e}");
                    }
                }
                false
            }
        };
        (verdict, unmounted)
    })
}

/// Whose the dataset create made is (`Gone` when the journal names none).
fn dataset_verdict(p: &CreateJournal) -> Result<Verdict> {
    let (Some(ds), Some(owner)) = (&p.dataset, &p.owner) else { return Ok(Verdict::Gone) };
    owner.check_dataset(&nexcage_zfs::Zfs::new(), ds)
}

/// Destroys the journal's dataset when `verdict` says it is ours; warns
/// when it is someone else's.
fn destroy_dataset(p: &CreateJournal, verdict: Verdict) -> Result<()> {
    let Some(ds) = &p.dataset else { return Ok(()) };
    match verdict {
        Verdict::Ours => nexcage_zfs::Zfs::new().destroy(ds, true).with_context(|| format!("destroy dataset {ds}"))?,
        Verdict::Gone => {}
        Verdict::Foreign(why) => tracing::warn!("left dataset {ds} alone: {why}"),
    }
    Ok(())
}
