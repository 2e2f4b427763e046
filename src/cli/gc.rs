//! `nexcage gc`: remove what crashed or abandoned Proxmox containers left
//! (state dirs whose holder is gone, guests tagged `nexcage` without state).

use anyhow::Result;

use super::Ctx;
use crate::backend::proxmox::{gc, Proxmox};
use crate::container;
use crate::proc;
use crate::state::BackendKind;

#[derive(clap::Args, Debug)]
pub struct Args {}

pub fn run(_a: Args, ctx: &Ctx) -> Result<i32> {
    let px = Proxmox::load(ctx.config_path.as_deref())?;
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
        let alive = rec.pid.is_some_and(|p| proc::is_same_alive(p, rec.pid_start));
        dirs.push((id, dir, alive));
    }
    let rep = gc::collect(&px, &dirs, |id| container::delete(ctx, id, true))?;
    for id in &rep.containers {
        println!("container {id}");
    }
    for v in &rep.guests {
        println!("guest {v}");
    }
    Ok(0)
}
