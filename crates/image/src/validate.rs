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

/// One layer of an image checked against its config's `rootfs.diff_ids`
/// (OCI image spec, "Layer DiffID" and "Layer ChainID").
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DiffIdCheck {
    /// The layer blob, `sha256:<hex>`.
    pub layer: String,
    /// What the config lists at this position (`None`: fewer diff_ids than layers).
    pub expected: Option<String>,
    /// The sha256 of the decompressed layer (`None`: the blob is unreadable).
    pub actual: Option<String>,
    /// ChainID of the layers up to this one, from the actual diff_ids.
    pub chain_id: Option<String>,
}

impl DiffIdCheck {
    pub fn ok(&self) -> bool {
        self.actual.is_some() && self.expected == self.actual
    }
}

/// Decompresses every layer of `entry` and checks the chain of diff_ids:
/// one per layer, in order, each the digest of the uncompressed layer.
/// A config listing more diff_ids than there are layers gets an extra
/// entry with an empty `layer`. Errors: the manifest or config is unreadable.
pub fn diff_ids(store: &Store, entry: &crate::store::ImageEntry) -> Result<Vec<DiffIdCheck>> {
    let m = store.image_manifest(entry)?;
    let cfg = store.config(&m)?;
    let want = cfg.rootfs().diff_ids();
    let mut chain: Option<Digest> = None;
    let mut out = Vec::new();
    for (i, l) in m.layers().iter().enumerate() {
        let actual = Digest::try_from(l.digest()).ok().and_then(|d| {
            let f = store.open_blob(&d).ok()?;
            hash_reader(crate::unpack::decompress(f).ok()?).ok().map(|(d, _)| d)
        });
        chain = match (&chain, &actual) {
            (None, Some(a)) => Some(a.clone()),
            (Some(c), Some(a)) => Some(Digest::of_bytes(format!("{c} {a}").as_bytes())),
            _ => None,
        };
        out.push(DiffIdCheck {
            layer: l.digest().to_string(),
            expected: want.get(i).cloned(),
            actual: actual.map(|d| d.to_string()),
            chain_id: chain.as_ref().map(|c| c.to_string()),
        });
    }
    for extra in want.iter().skip(m.layers().len()) {
        out.push(DiffIdCheck { layer: String::new(), expected: Some(extra.clone()), actual: None, chain_id: None });
    }
    Ok(out)
}
