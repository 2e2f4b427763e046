//! gc: collects what crashed or abandoned containers left behind.
//!
//! 1. State dirs of Proxmox containers whose holder is gone are deleted
//!    like `delete --force` (guest, dataset, LXC dir, state).
//! 2. Guests tagged `nexcage` that no remaining state dir refers to are
//!    destroyed, with their `subvol-<vmid>-disk-0` dataset and LXC dir.
//!
//! A create younger than `GRACE` is never touched: it may be in progress.

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime};

use anyhow::Result;

use super::journal::{CreateJournal, CreateStep};
use super::Proxmox;

pub const GRACE: Duration = Duration::from_secs(60);

/// What gc did, for the command's output.
#[derive(Default, Debug)]
pub struct Report {
    pub containers: Vec<String>,
    pub guests: Vec<u32>,
}

/// `delete_container(id)` deletes a container's state (the CLI passes
/// container::delete with force). `dirs` lists (id, state dir, holder alive).
pub fn collect(
    px: &Proxmox,
    dirs: &[(String, std::path::PathBuf, bool)],
    mut delete_container: impl FnMut(&str) -> Result<()>,
) -> Result<Report> {
    let mut rep = Report::default();
    let mut kept = BTreeSet::new();
    for (id, dir, holder_alive) in dirs {
        let Ok(p) = CreateJournal::load(dir) else { continue };
        if p.step == CreateStep::NotBegun {
            continue;
        }
        let young = std::fs::metadata(CreateJournal::path(dir))
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| SystemTime::now().duration_since(t).ok())
            .is_some_and(|age| age < GRACE);
        if *holder_alive || (young && p.step != CreateStep::Done) {
            if let Some(v) = p.vmid {
                kept.insert(v);
            }
            continue;
        }
        match delete_container(id) {
            Ok(()) => rep.containers.push(id.clone()),
            Err(e) => {
                tracing::warn!("gc: container {id}: {e:#}");
                if let Some(v) = p.vmid {
                    kept.insert(v);
                }
            }
        }
    }
    let cp = px.driver()?;
    let parent = px.config().storage.zfs_parent();
    for g in cp.list()? {
        if kept.contains(&g.vmid) {
            continue;
        }
        // `pct list` has no tags column: read them from the config then.
        let tags = match g.tags.clone() {
            Some(t) => t,
            None => cp.config(g.vmid).ok().and_then(|c| c.keys.get("tags").cloned()).unwrap_or_default(),
        };
        let tagged = tags.split([';', ',', ' ']).any(|t| t == "nexcage");
        if !tagged {
            continue;
        }
        let p = CreateJournal {
            step: CreateStep::Gc,
            vmid: Some(g.vmid),
            guest: true,
            dataset: parent.as_ref().map(|pa| nexcage_zfs::subvol_name(pa, g.vmid, 0)),
            lxc_path: Some(px.lxc_path()),
            ..CreateJournal::default()
        };
        match super::delete::undo(px, &p) {
            Ok(()) => rep.guests.push(g.vmid),
            Err(e) => tracing::warn!("gc: guest {}: {e:#}", g.vmid),
        }
    }
    Ok(rep)
}
