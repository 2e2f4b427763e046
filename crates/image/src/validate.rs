//! `layer validate`: re-hash stored blobs and compare digest and size with
//! what the manifest says (OCI image spec, "Content Descriptors").

use std::io::BufReader;

use crate::digest::{hash_reader, Digest};
use crate::error::Result;
use crate::store::Store;

/// What is wrong with a blob.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlobProblem {
    /// The blob cannot be opened (missing, unreadable).
    #[error("{0}")]
    Unreadable(String),
    #[error("content hashes to {0}")]
    Hash(Digest),
    #[error("size {actual}, manifest says {expected}")]
    Size { actual: u64, expected: u64 },
}

/// The blobs to check, with the size their descriptor gives: the manifest,
/// config and layers of `reference`, or (`None`) every blob of the store
/// (sizes unknown).
pub fn blobs_to_check(store: &Store, reference: Option<&str>) -> Result<Vec<(Digest, Option<u64>)>> {
    let Some(r) = reference else {
        return Ok(store.blobs()?.into_keys().map(|d| (d, None)).collect());
    };
    let e = store.resolve(r)?;
    let md = e.digest()?;
    let mut v = vec![(md.clone(), Some(e.descriptor.size()))];
    let m = store.manifest(&md)?;
    v.push((Digest::try_from(m.config().digest())?, Some(m.config().size())));
    for l in m.layers() {
        v.push((Digest::try_from(l.digest())?, Some(l.size())));
    }
    Ok(v)
}

/// Re-hash blob `d`; `size`, if given, is the size its descriptor names.
/// Errors: reading the opened blob fails.
pub fn check_blob(store: &Store, d: &Digest, size: Option<u64>) -> std::io::Result<Option<BlobProblem>> {
    let f = match store.open_blob(d) {
        Err(e) => return Ok(Some(BlobProblem::Unreadable(e.to_string()))),
        Ok(f) => f,
    };
    let (got, n) = hash_reader(BufReader::with_capacity(256 * 1024, f))?;
    Ok(if &got != d {
        Some(BlobProblem::Hash(got))
    } else {
        size.filter(|s| *s != n).map(|expected| BlobProblem::Size { actual: n, expected })
    })
}
