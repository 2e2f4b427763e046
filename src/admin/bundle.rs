//! The admin container's own bundle: from an image in the store (unpacked
//! by nexcage-image) or from a given bundle directory (its config.json is
//! copied, its rootfs used in place).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde_json::Value;

use crate::cli::Ctx;

/// Where the source came from, for the `org.nexcage.image` annotation.
pub struct Source {
    pub image: String,
}

/// Fills `dir` (which must not exist) with `config.json` (+ `rootfs/` for
/// images) and returns the spec as JSON for editing.
pub fn build(ctx: &Ctx, source: &str, dir: &Path) -> Result<(Value, Source)> {
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
    nexcage_image::bundle::create_bundle(&store, &entry, dir, &Default::default())
        .with_context(|| format!("making a bundle from {}", entry.name))?;
    let spec = read_spec(&dir.join("config.json"))?;
    Ok((spec, Source { image: entry.name }))
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
