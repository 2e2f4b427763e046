//! Which images use which blobs, and how much the store holds: what
//! `layer list`, `cache stats` and `cache list` show. Sizes are in bytes.

use std::collections::{BTreeMap, HashMap};

use crate::digest::Digest;
use crate::error::Result;
use crate::store::Store;

/// A layer blob and the images whose manifests list it (`layer list`).
#[derive(Clone, Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LayerUse {
    /// `sha256:<hex>`.
    pub digest: String,
    pub size: u64,
    pub media_type: String,
    pub images: Vec<String>,
}

/// A blob of the store, its size on disk and the images using it (as
/// manifest, config or layer; empty when unreferenced) (`cache list`).
#[derive(Clone, Debug, serde::Serialize)]
pub struct BlobUse {
    pub digest: String,
    pub size: u64,
    pub images: Vec<String>,
}

/// Blob counts and bytes of the store, split into referenced (reachable
/// from index.json) and unreferenced (`cache stats`).
#[derive(Clone, Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CacheStats {
    pub path: String,
    pub images: usize,
    pub blobs: u64,
    pub bytes: u64,
    pub referenced_blobs: u64,
    pub referenced_bytes: u64,
    pub unreferenced_blobs: u64,
    pub unreferenced_bytes: u64,
}

/// The layers of every image, ordered by digest.
pub fn layers(store: &Store) -> Result<Vec<LayerUse>> {
    let mut layers: BTreeMap<String, LayerUse> = BTreeMap::new();
    for e in store.images()? {
        let m = store.image_manifest(&e)?;
        for l in m.layers() {
            let ent = layers
                .entry(l.digest().to_string())
                .or_insert_with(|| LayerUse {
                    digest: l.digest().to_string(),
                    size: l.size(),
                    media_type: l.media_type().to_string(),
                    images: Vec::new(),
                });
            if !ent.images.contains(&e.name) {
                ent.images.push(e.name.clone());
            }
        }
    }
    Ok(layers.into_values().collect())
}

/// Which images use each blob (manifest, config and layers).
fn users(store: &Store) -> Result<HashMap<Digest, Vec<String>>> {
    let mut map: HashMap<Digest, Vec<String>> = HashMap::new();
    for e in store.images()? {
        let md = e.digest()?;
        map.entry(md.clone()).or_default().push(e.name.clone());
        if let Ok(m) = store.manifest(&md) {
            map.entry(Digest::try_from(m.config().digest())?)
                .or_default()
                .push(e.name.clone());
            for l in m.layers() {
                let v = map.entry(Digest::try_from(l.digest())?).or_default();
                if !v.contains(&e.name) {
                    v.push(e.name.clone());
                }
            }
        }
    }
    Ok(map)
}

/// Every blob of the store, ordered by digest, with the images using it.
pub fn blobs(store: &Store) -> Result<Vec<BlobUse>> {
    let u = users(store)?;
    Ok(store
        .blobs()?
        .into_iter()
        .map(|(d, size)| BlobUse {
            images: u.get(&d).cloned().unwrap_or_default(),
            digest: d.to_string(),
            size,
        })
        .collect())
}

/// Counts and bytes of the store's blobs.
pub fn stats(store: &Store) -> Result<CacheStats> {
    let blobs = store.blobs()?;
    let refd = store.referenced()?;
    let (mut rn, mut rb, mut un, mut ub) = (0u64, 0u64, 0u64, 0u64);
    for (d, s) in &blobs {
        if refd.contains(d) {
            rn += 1;
            rb += s;
        } else {
            un += 1;
            ub += s;
        }
    }
    Ok(CacheStats {
        path: store.root().display().to_string(),
        images: store.images()?.len(),
        blobs: rn + un,
        bytes: rb + ub,
        referenced_blobs: rn,
        referenced_bytes: rb,
        unreferenced_blobs: un,
        unreferenced_bytes: ub,
    })
}
