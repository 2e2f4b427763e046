//! `nexcage gc`: finds the state dirs of Proxmox-backend containers (and
//! of creates that died before writing a record) and lets the backend
//! collect what crashed or abandoned ones left behind.

use anyhow::Result;

use crate::backend::{self, GcReport};
use crate::container::Container;
use crate::context::Ctx;
use crate::state::BackendKind;

pub fn collect(ctx: &Ctx) -> Result<GcReport> {
    let store = ctx.store()?;
    let mut dirs = Vec::new();
    for id in store.ids()? {
        let dir = ctx.root.join(&id);
        let Ok(locked) = store.lock(&id) else { continue };
        let Ok(rec) = locked.load() else {
            // Died before its record: only collectable when it has progress.
            dirs.push((id, dir, false));
            continue;
        };
        if rec.backend != BackendKind::Proxmox {
            continue;
        }
        let alive = rec.pid.is_some_and(|p| crate::proc::is_same_alive(p, rec.pid_start));
        dirs.push((id, dir, alive));
    }
    backend::collect_garbage(ctx.config_path.as_deref(), &dirs, |id| Container::delete(ctx, id, true))
}
