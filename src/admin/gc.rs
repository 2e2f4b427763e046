//! `nexcage gc`: finds the state dirs of Proxmox-backend containers (and
//! of creates that died before writing a record) in every state root
//! nexcage used on this host, and lets the backend collect what crashed or
//! abandoned ones left behind.

use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::backend::{self, GcReport, GcStateDir};
use crate::container::Container;
use crate::context::Ctx;
use crate::state::{BackendKind, Store};

pub fn collect(ctx: &Ctx, dry_run: bool) -> Result<GcReport> {
    let roots = backend::gc_roots(ctx.config_path.as_deref(), &ctx.root)?;
    let mut dirs = Vec::new();
    for root in &roots {
        // Another root that no longer exists (e.g. after a reboot) has no state dirs.
        if *root != ctx.root && !root.is_dir() {
            continue;
        }
        state_dirs(&Store::open(root)?, root, &mut dirs)?;
    }
    backend::collect_garbage(ctx.config_path.as_deref(), &roots, &dirs, dry_run, |root, id| {
        Container::delete(&in_root(ctx, root), id, true)
    })
}

/// The Proxmox containers' state dirs in `root`.
fn state_dirs(store: &Store, root: &Path, dirs: &mut Vec<GcStateDir>) -> Result<()> {
    for id in store.ids()? {
        let Ok(locked) = store.lock(&id) else { continue };
        let Ok(rec) = locked.load() else {
            // Died before its record: only collectable when it has progress.
            dirs.push(GcStateDir { root: root.to_path_buf(), id, holder_alive: false });
            continue;
        };
        if rec.backend != BackendKind::Proxmox {
            continue;
        }
        let alive = rec.pid.is_some_and(|p| crate::proc::is_same_alive(p, rec.pid_start));
        dirs.push(GcStateDir { root: root.to_path_buf(), id, holder_alive: alive });
    }
    Ok(())
}

/// `ctx` with another state root.
fn in_root(ctx: &Ctx, root: &Path) -> Ctx {
    Ctx { root: PathBuf::from(root), systemd_cgroup: ctx.systemd_cgroup, rootless: ctx.rootless, config_path: ctx.config_path.clone() }
}
