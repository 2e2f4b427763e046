//! Keeps `<image store>/in-use` (read by `image remove`) equal to the images
//! of the admin bundles that exist, so an image cannot be removed under a
//! container. Recomputed, not patched: a crash cannot leave it stale for long.

use std::io::Write;

use anyhow::{Context, Result};

use crate::context::Ctx;

pub fn refresh(ctx: &Ctx) -> Result<()> {
    let store = ctx.image_store()?;
    let bundles = store.join("bundles");
    std::fs::create_dir_all(&bundles).with_context(|| format!("creating {}", bundles.display()))?;
    let lock = std::fs::File::create(bundles.join(".in-use.lock")).context("in-use lock")?;
    let _lock = nix::fcntl::Flock::lock(lock, nix::fcntl::FlockArg::LockExclusive).map_err(|(_, e)| e).context("in-use lock")?;
    let mut images = std::collections::BTreeSet::new();
    for e in std::fs::read_dir(&bundles)?.flatten() {
        let Ok(data) = std::fs::read(e.path().join("config.json")) else { continue };
        let Ok(spec) = serde_json::from_slice::<serde_json::Value>(&data) else { continue };
        if let Some(i) = spec["annotations"][super::IMAGE_ANNOTATION].as_str() {
            // Bundle directories are not images.
            if !i.starts_with('/') {
                images.insert(i.to_string());
            }
        }
    }
    let path = store.join(nexcage_image::remove::IN_USE_FILE);
    let tmp = store.join(".in-use.tmp");
    let mut f = std::fs::File::create(&tmp).with_context(|| format!("writing {}", tmp.display()))?;
    for i in &images {
        writeln!(f, "{i}")?;
    }
    f.sync_all()?;
    std::fs::rename(&tmp, &path).with_context(|| format!("writing {}", path.display()))
}

/// `(container id, image reference)` of every container under `--root`
/// that was created from an image (`create --image REF`), for `layer
/// dependencies`. Containers deleted meanwhile drop out.
pub fn containers_with_images(ctx: &Ctx) -> Result<Vec<(String, String)>> {
    let store = ctx.store()?;
    Ok(store
        .ids()?
        .iter()
        .filter_map(|id| crate::container::Container::load_from(&store, id).ok())
        .filter_map(|c| {
            let r = c.record();
            r.annotations.get(super::IMAGE_ANNOTATION).filter(|i| !i.starts_with('/')).map(|i| (r.id.clone(), i.clone()))
        })
        .collect())
}
