//! gc: collects what crashed or abandoned containers left behind, and
//! only that.
//!
//! 1. State dirs of Proxmox containers, in every root nexcage used on this
//!    host (`roots.rs`), whose holder is gone (or whose create died) are
//!    deleted like `delete --force` (guest, dataset, LXC dir, state).
//! 2. Guests whose owner record (`owner.rs`) names this host and a
//!    registered root, and whose state dir there is gone, are destroyed
//!    with their dataset and LXC dir (the boot-time cleanup: roots under
//!    /run are empty after a reboot).
//! 3. Registered roots that hold no state and that no remaining guest's
//!    owner record names are dropped from the registry.
//!
//! A guest without nexcage's owner record (an operator's), another host's,
//! or one of a root never registered here is never touched. Nothing
//! younger than `proxmox.gc_grace` (default 60 s) is touched: it may be a
//! create in progress, or an engine about to delete it itself.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::Result;

use super::journal::{CreateJournal, CreateStep};
use super::owner::{host_identity, Owner};
use super::Proxmox;

/// A state dir gc looked at.
#[derive(Debug, Clone)]
pub struct StateDir {
    pub root: PathBuf,
    pub id: String,
    /// Whether the container's process (the record's pid, the guest's PID 1) still runs.
    pub holder_alive: bool,
}

/// One thing gc collected (or, with `--dry-run`, would collect).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Collected {
    /// A container's state dir, deleted like `delete --force`.
    Container { root: PathBuf, id: String, why: String },
    /// A guest no state dir refers to, destroyed with its dataset.
    Guest { vmid: u32, owner: Owner, why: String },
}

/// What gc did, for the command's output.
#[derive(Default, Debug)]
pub struct Report {
    pub collected: Vec<Collected>,
    /// Roots dropped from the registry: no container state in them and no
    /// guest's owner record names them (never with `--dry-run`).
    pub forgotten_roots: Vec<PathBuf>,
}

/// `delete_container(root, id)` deletes a container's state like `delete
/// --force` (the CLI passes container::delete). `roots`: the registered
/// roots plus the command's own; `dirs`: the Proxmox state dirs in them.
/// With `dry_run` nothing is changed; the report says what would be.
pub fn collect(
    px: &Proxmox,
    roots: &[PathBuf],
    dirs: &[StateDir],
    dry_run: bool,
    mut delete_container: impl FnMut(&Path, &str) -> Result<()>,
) -> Result<Report> {
    let grace = px.config().gc_grace();
    let mut rep = Report::default();
    for d in dirs {
        let dir = d.root.join(&d.id);
        let Ok(p) = CreateJournal::load(&dir) else { continue };
        if p.step == CreateStep::NotBegun || d.holder_alive || age(&CreateJournal::path(&dir)) < grace {
            continue;
        }
        let why = match p.step {
            CreateStep::Done => "its holder is gone".to_string(),
            s => format!("its create died at step {:?}", s.name()),
        };
        if !dry_run {
            if let Err(e) = delete_container(&d.root, &d.id) {
                tracing::warn!("gc: container {} in {}: {e:#}", d.id, d.root.display());
                continue;
            }
        }
        rep.collected.push(Collected::Container { root: d.root.clone(), id: d.id.clone(), why });
    }
    let cp = px.driver()?;
    let host = host_identity();
    let parent = px.config().storage.zfs_parent();
    // Roots a guest of this host still names (gc must keep finding them);
    // `None` once a guest could not be read (then no root is dropped).
    let mut needed = Some(std::collections::BTreeSet::new());
    for g in cp.list()? {
        if g.tags.as_ref().is_some_and(|t| !t.split([';', ',', ' ']).any(|t| t == "nexcage")) {
            continue;
        }
        let desc = match cp.config(g.vmid) {
            Ok(c) => c.keys.get("description").cloned().unwrap_or_default(),
            Err(e) => {
                tracing::warn!("gc: guest {}: {e}", g.vmid);
                needed = None;
                continue;
            }
        };
        let Some(owner) = Owner::from_description(&desc) else { continue };
        let mut keep_root = |o: &Owner| {
            if let Some(n) = needed.as_mut().filter(|_| o.host == host) {
                n.insert(o.root.clone());
            }
        };
        let journal = CreateJournal::load(&owner.root.join(&owner.id)).ok();
        let Some(why) = orphaned(&owner, &host, roots, grace, journal.as_ref()) else {
            keep_root(&owner);
            continue;
        };
        if !dry_run {
            let p = CreateJournal {
                step: CreateStep::Gc,
                vmid: Some(g.vmid),
                guest: true,
                dataset: parent.as_ref().map(|pa| nexcage_zfs::subvol_name(pa, g.vmid, 0)),
                lxc_path: Some(px.lxc_path()),
                owner: Some(owner.clone()),
                ..CreateJournal::default()
            };
            if let Err(e) = super::delete::undo(px, &p) {
                tracing::warn!("gc: guest {}: {e:#}", g.vmid);
                keep_root(&owner);
                continue;
            }
        } else {
            keep_root(&owner);
        }
        rep.collected.push(Collected::Guest { vmid: g.vmid, owner, why });
    }
    if let (false, Some(needed)) = (dry_run, needed) {
        rep.forgotten_roots = forget_roots(px, &needed);
    }
    Ok(rep)
}

/// Step 3: drops registered roots that hold no state and that no guest
/// still names (`needed`), so the registry does not grow with every root
/// ever used (`roots::prune`). A failure only costs a warning.
fn forget_roots(px: &Proxmox, needed: &std::collections::BTreeSet<PathBuf>) -> Vec<PathBuf> {
    match super::roots::prune(&px.config().data_dir(), |r| needed.contains(r)) {
        Ok(dropped) => {
            for r in &dropped {
                tracing::info!("gc: forgot state root {} (no container state, no guest names it)", r.display());
            }
            dropped
        }
        Err(e) => {
            tracing::warn!("gc: pruning the roots registry: {e:#}");
            Vec::new()
        }
    }
}

/// Why the guest whose description holds `owner` is an orphan gc may
/// collect, or `None` to keep it: it must be this `host`'s, of a root in
/// `roots`, older than `grace`, and its container's state dir (whose
/// journal is `journal`) gone or another container's.
fn orphaned(owner: &Owner, host: &str, roots: &[PathBuf], grace: Duration, journal: Option<&CreateJournal>) -> Option<String> {
    if owner.host != host || !roots.contains(&owner.root) || owner.age() < grace {
        return None;
    }
    let state = owner.root.join(&owner.id);
    match journal.and_then(|j| j.owner.as_ref()) {
        // Its container still exists: the state-dir pass decides.
        Some(o) if o == owner => None,
        Some(_) => Some(format!("state dir {} belongs to a newer container", state.display())),
        None => Some(format!("state dir {} is gone", state.display())),
    }
}

/// How long ago `path` was modified (zero if unknown).
fn age(path: &Path) -> Duration {
    std::fs::metadata(path).and_then(|m| m.modified()).ok().and_then(|t| SystemTime::now().duration_since(t).ok()).unwrap_or_default()
}

/// The roots gc looks in: `own` first, then every registered one.
pub fn roots(px: &Proxmox, own: &Path) -> Vec<PathBuf> {
    let mut v = vec![own.to_path_buf()];
    for r in super::roots::list(&px.config().data_dir()) {
        if !v.contains(&r) {
            v.push(r);
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_gone_containers_of_this_host_and_its_roots_are_orphans() {
        let roots = vec![PathBuf::from("/run/nexcage"), PathBuf::from("/run/containerd/runc/k8s.io")];
        let mut o = Owner::new("a", Path::new("/run/containerd/runc/k8s.io"));
        o.created -= 120;
        let (host, grace) = (o.host.clone(), Duration::from_secs(60));
        let live = CreateJournal { owner: Some(o.clone()), ..CreateJournal::default() };
        assert_eq!(orphaned(&o, &host, &roots, grace, Some(&live)), None, "its container exists");
        assert!(orphaned(&o, &host, &roots, grace, None).is_some_and(|w| w.contains("is gone")));
        let mut newer = live.clone();
        newer.owner.as_mut().unwrap().created += 1;
        assert!(orphaned(&o, &host, &roots, grace, Some(&newer)).is_some_and(|w| w.contains("newer container")));
        assert_eq!(orphaned(&o, "another-host", &roots, grace, None), None, "another host's");
        assert_eq!(orphaned(&o, &host, &roots[..1], grace, None), None, "a root not registered here");
        assert_eq!(orphaned(&o, &host, &roots, Duration::from_secs(600), None), None, "younger than the grace period");
    }
}
