//! The admin container's own bundle: from an image in the store (unpacked
//! by nexcage-image) or from a given bundle directory (its config.json is
//! copied, its rootfs used in place).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde_json::Value;

use super::{CLONE_ANNOTATION, STRATEGY_ANNOTATION};
use crate::context::Ctx;

/// Where the source came from, for the `org.nexcage.image` annotation.
pub struct Source {
    pub image: String,
}

/// From an image's annotations: `(parent dataset, unprivileged)` of the ZFS
/// base its guest will clone, or None when it will not clone one.
pub type BaseFor<'a> = dyn Fn(&BTreeMap<String, String>) -> Option<(String, bool)> + 'a;

/// Fills `dir` (which must not exist) with `config.json` (+ `rootfs/` for
/// images) and returns the spec as JSON for editing. `base_parent` says,
/// from the image's annotations, whether the container will clone a ZFS
/// base under that dataset (Proxmox backend with a zfs pool): the image
/// is then unpacked once into its base and not into the bundle.
pub fn build(ctx: &Ctx, source: &str, dir: &Path, base_parent: &BaseFor) -> Result<(Value, Source)> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let src = Path::new(source);
    if src.join("config.json").is_file() {
        return from_bundle_dir(src);
    }
    if source.contains('/') && src.is_dir() {
        bail!("--image {source}: a directory without config.json is not a bundle");
    }
    let store = nexcage_image::Store::open(&ctx.image_store()?)?;
    let entry = store.resolve(source).with_context(|| format!("--image {source}"))?;
    let anns = BTreeMap::from([
        ("org.opencontainers.image.ref.name".to_string(), entry.name.clone()),
        ("org.opencontainers.image.digest".to_string(), entry.descriptor.digest().to_string()),
    ]);
    if let Some((parent, unprivileged)) = base_parent(&anns) {
        let spec = on_base(&store, &entry, &parent, unprivileged)?;
        return Ok((spec, Source { image: entry.name }));
    }
    nexcage_image::bundle::create_bundle(&store, &entry, dir, &Default::default())
        .with_context(|| format!("making a bundle from {}", entry.name))?;
    let spec = read_spec(&dir.join("config.json"))?;
    Ok((spec, Source { image: entry.name }))
}

/// The spec of a container that clones the image's ZFS base: its user is
/// resolved in the base (shifted for unprivileged guests), its root is the base (never written: the guest
/// gets a clone, per the annotations).
fn on_base(store: &nexcage_image::Store, entry: &nexcage_image::store::ImageEntry, parent: &str, unprivileged: bool) -> Result<Value> {
    use nexcage_image::zfs_base;
    let shift = unprivileged.then_some(zfs_base::PROXMOX_SHIFT);
    let base = zfs_base::ensure(store, entry, &nexcage_zfs::Zfs::new(), parent, shift)
        .with_context(|| format!("making the ZFS base of {}", entry.name))?;
    let cfg = store.config(&store.image_manifest(entry)?)?;
    let root = nexcage_image::unpack::Root::open(&base.mountpoint).with_context(|| format!("open {}", base.mountpoint.display()))?;
    let spec = nexcage_image::bundle::runtime_spec(&cfg, Some(&root), &entry.name, entry.descriptor.digest().as_ref())?;
    let mut spec = serde_json::to_value(spec)?;
    spec["root"]["path"] = Value::String(base.mountpoint.display().to_string());
    spec["annotations"][STRATEGY_ANNOTATION] = Value::String("clone".into());
    spec["annotations"][CLONE_ANNOTATION] = Value::String(base.snapshot);
    Ok(spec)
}

fn read_spec(p: &Path) -> Result<Value> {
    let data = std::fs::read(p).with_context(|| format!("reading {}", p.display()))?;
    serde_json::from_slice(&data).with_context(|| format!("{} is not valid JSON", p.display()))
}

fn from_bundle_dir(src: &Path) -> Result<(Value, Source)> {
    let src = std::path::absolute(src)?;
    let mut spec = read_spec(&src.join("config.json"))?;
    let root = spec["root"]["path"].as_str().unwrap_or("rootfs");
    let rootfs: PathBuf = if Path::new(root).is_absolute() { root.into() } else { src.join(root) };
    if !rootfs.is_dir() {
        bail!("bundle {}: rootfs {} does not exist", src.display(), rootfs.display());
    }
    // The copy lives elsewhere, so the rootfs path must be absolute.
    spec["root"]["path"] = Value::String(rootfs.display().to_string());
    Ok((spec, Source { image: src.display().to_string() }))
}

pub fn write_spec(dir: &Path, spec: &Value) -> Result<()> {
    let p = dir.join("config.json");
    let tmp = dir.join(".config.json.tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(spec)?).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, &p).with_context(|| format!("writing {}", p.display()))
}
