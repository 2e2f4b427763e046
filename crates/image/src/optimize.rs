//! `layer optimize` / `cache optimize`: what "optimizing" the store means
//! for a content-addressed store. Identical layers are already stored once
//! (a blob's name is its digest), so what is left to do is prune: delete
//! blobs no image references and stale temp files. The report says what
//! was freed and how much the sharing of layers between images saves.

use crate::error::Result;
use crate::store::Store;
use crate::usage;

/// What `optimize` did and found; sizes in bytes.
#[derive(Debug, Clone, Default, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OptimizeReport {
    pub removed_blobs: usize,
    pub freed_bytes: u64,
    pub removed_temp: usize,
    /// Layers (of `reference`, or of every image) used by more than one image.
    pub shared_layers: u64,
    /// Bytes a store keeping one copy per image would need on top.
    pub shared_bytes_saved: u64,
}

/// Prunes the store (waits for writers) and reports; `reference` limits
/// the sharing figures to that image's layers. Errors: `reference` does
/// not resolve, or the store cannot be read or pruned.
pub fn optimize(store: &Store, reference: Option<&str>) -> Result<OptimizeReport> {
    let only: Option<Vec<String>> = match reference {
        Some(r) => {
            let e = store.resolve(r)?;
            Some(store.image_manifest(&e)?.layers().iter().map(|l| l.digest().to_string()).collect())
        }
        None => None,
    };
    let mut rep = OptimizeReport::default();
    for l in usage::layers(store)? {
        if only.as_ref().is_some_and(|o| !o.contains(&l.digest)) || l.images.len() < 2 {
            continue;
        }
        rep.shared_layers += 1;
        rep.shared_bytes_saved += l.size * (l.images.len() as u64 - 1);
    }
    if let Some(gc) = store.gc(true)? {
        rep.removed_blobs = gc.removed_blobs;
        rep.freed_bytes = gc.freed_bytes;
        rep.removed_temp = gc.removed_temp;
    }
    Ok(rep)
}
