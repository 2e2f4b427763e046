//! `image unpack` (into a directory, or once into a ZFS base dataset that
//! Proxmox guests clone) and `image bundle` (an OCI runtime bundle).

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use nexcage_image::unpack::{self, ApplyOptions};
use nexcage_image::{bundle, zfs_base, Store};

use super::human;

#[derive(Debug, clap::Args)]
pub struct Args {
    reference: String,
    #[arg(required_unless_present = "zfs")]
    dir: Option<PathBuf>,
    /// Do not set owners from the layers (default: set them when root).
    #[arg(long)]
    no_chown: bool,
    /// Unpack into `<dataset>/basevol-<digest>-disk-0` and snapshot it
    /// (idempotent); prints the snapshot to clone.
    #[arg(long, conflicts_with_all = ["dir", "no_chown"])]
    pub zfs: bool,
    /// Parent dataset for --zfs (default: storage.pool/dataset of the nexcage config).
    #[arg(long, requires = "zfs", value_name = "POOL[/DATASET]")]
    pub dataset: Option<String>,
    /// For unprivileged Proxmox guests: owners shifted by 100000 (a
    /// separate `...u-disk-0` base). Default: the config's `unprivileged`.
    #[arg(long, requires = "zfs", value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub unprivileged: Option<bool>,
}

#[derive(Debug, clap::Args)]
pub struct BundleArgs {
    reference: String,
    dir: PathBuf,
    #[arg(long)]
    no_chown: bool,
}

fn apply_options(no_chown: bool) -> ApplyOptions {
    let mut o = ApplyOptions::default();
    o.chown &= !no_chown;
    o
}

pub fn unpack(a: Args, store: &Store) -> Result<()> {
    if a.zfs {
        let parent = a.dataset.context("--zfs needs --dataset POOL[/DATASET] or storage.pool in the nexcage config")?;
        let e = store.resolve(&a.reference)?;
        let shift = a.unprivileged.unwrap_or(false).then_some(zfs_base::PROXMOX_SHIFT);
        let b = zfs_base::ensure(store, &e, &nexcage_zfs::Zfs::new(), &parent, shift)?;
        let how = if b.created { "unpacked into" } else { "already in" };
        eprintln!("{} {how} {} ({})", e.name, b.dataset, b.mountpoint.display());
        println!("{}", b.snapshot);
        return Ok(());
    }
    let Some(dir) = a.dir else { bail!("image unpack needs DIR or --zfs") };
    let e = store.resolve(&a.reference)?;
    let s = unpack::unpack_rootfs(store, &e, &dir, &apply_options(a.no_chown))?;
    eprintln!("unpacked {} entries ({}) into {}", s.entries, human(s.bytes), dir.display());
    Ok(())
}

pub fn bundle(a: BundleArgs, store: &Store) -> Result<()> {
    let e = store.resolve(&a.reference)?;
    bundle::create_bundle(store, &e, &a.dir, &apply_options(a.no_chown))?;
    eprintln!("bundle for {} in {}", e.name, a.dir.display());
    Ok(())
}
