//! `image remove` and `image prune`: drop names, collect unreferenced
//! blobs and the ZFS bases of images that are gone.

use anyhow::Result;
use nexcage_image::{remove, zfs_base, Store};

use super::human;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[arg(required = true)]
    references: Vec<String>,
    /// Remove even if a container uses the image.
    #[arg(long, short = 'f')]
    force: bool,
}

/// Images named in `<store>/in-use` count as used by containers.
pub fn remove(a: Args, store: &Store) -> Result<()> {
    let in_use = remove::in_use(store);
    for r in &a.references {
        let name = remove::remove(store, r, a.force, &|n| in_use.iter().any(|u| u == n))?;
        println!("removed {name}");
    }
    if store.gc(false)?.is_none() {
        eprintln!("blobs not collected now: another command is writing to the store (run `image prune` later)");
    }
    collect_bases(store)
}

pub fn prune(store: &Store) -> Result<()> {
    if let Some(r) = store.gc(true)? {
        println!("removed {} blobs, freed {}", r.removed_blobs, human(r.freed_bytes));
    }
    collect_bases(store)
}

fn collect_bases(store: &Store) -> Result<()> {
    for snap in zfs_base::collect_unused(store)? {
        println!("destroyed base {snap}");
    }
    Ok(())
}
