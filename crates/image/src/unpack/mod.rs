//! Unpacking an image's layers into a directory (a rootfs).

pub mod layer;
pub mod safe;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use tracing::info;

pub use layer::{apply_layer, decompress, ApplyOptions, LayerStats};
pub use safe::Root;

use crate::digest::Digest;
use crate::error::{Error, IoContext, Result};
use crate::store::{ImageEntry, Store};

/// Apply every layer of `image` in order onto `target` (created if missing;
/// may already hold content, e.g. a fresh ZFS dataset's mountpoint).
pub fn unpack_rootfs(
    store: &Store,
    image: &ImageEntry,
    target: &Path,
    opts: &ApplyOptions,
) -> Result<LayerStats> {
    let m = store.image_manifest(image)?;
    std::fs::create_dir_all(target).ctx(target)?;
    let root = Root::open(target).ctx(target)?;
    let mut total = LayerStats::default();
    let mut dir_times: BTreeMap<PathBuf, i64> = BTreeMap::new();
    for (i, l) in m.layers().iter().enumerate() {
        let d = Digest::try_from(l.digest())?;
        let blob = store.open_blob(&d)?;
        let stream = decompress(blob)?;
        let s = apply_layer(&root, stream, opts).map_err(|e| match e {
            Error::Io { path, source } => Error::Io {
                path: format!("layer {} ({d}): {}", i + 1, path.display()).into(),
                source,
            },
            other => other,
        })?;
        info!(layer = i + 1, digest = %d, entries = s.entries, bytes = s.bytes, "applied layer");
        total.entries += s.entries;
        total.bytes += s.bytes;
        total.whiteouts += s.whiteouts;
        total.skipped_devices += s.skipped_devices;
        dir_times.extend(s.dir_times);
    }
    restore_dir_times(&root, dir_times);
    Ok(total)
}

/// Sets directory mtimes from the layers (the last layer's wins), deepest
/// first so setting one does not disturb its parent. Directories a later
/// layer removed are skipped.
fn restore_dir_times(root: &Root, times: BTreeMap<PathBuf, i64>) {
    use rustix::fs::{AtFlags, Timespec, Timestamps};
    let mut v: Vec<(PathBuf, i64)> = times.into_iter().collect();
    v.sort_by_key(|(p, _)| std::cmp::Reverse(p.components().count()));
    for (rel, t) in v {
        let Ok((dir, _, name)) = root.parent_of(&rel, false) else { continue };
        let ts = Timespec { tv_sec: t, tv_nsec: 0 };
        let times = Timestamps { last_access: ts, last_modification: ts };
        if let Err(e) = rustix::fs::utimensat(&dir, name.as_os_str(), &times, AtFlags::SYMLINK_NOFOLLOW) {
            tracing::debug!(dir = %rel.display(), "mtime not restored: {e}");
        }
    }
}
