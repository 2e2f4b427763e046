//! The on-disk store: an OCI image layout under the data dir.
//!
//! ```text
//! <root>/oci-layout          {"imageLayoutVersion":"1.0.0"}
//! <root>/index.json          one manifest descriptor per image name
//! <root>/blobs/sha256/<hex>  content, only ever renamed into place when verified
//! <root>/tmp/                partial downloads (removed by gc)
//! <root>/gc.lock             shared by writers of blobs, exclusive for gc
//! <root>/index.lock          exclusive around read-modify-write of index.json
//! ```
//! Readers never lock: index.json and blobs only change by atomic rename.

use std::collections::{BTreeMap, HashSet};
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use oci_spec::image::{
    Descriptor, ImageConfiguration, ImageIndex, ImageIndexBuilder, ImageManifest, MediaType,
};
use tracing::{debug, info, warn};

use crate::digest::{Digest, HashingWriter};
use crate::error::{malformed, Error, IoContext, Result};
use crate::reference::Reference;

pub const REF_NAME: &str = "org.opencontainers.image.ref.name";
pub const DEFAULT_STORE: &str = "/var/lib/nexcage";

/// `$NEXCAGE_STORAGE_PATH`, else [`DEFAULT_STORE`] (the binary may pass its config's value instead).
pub fn default_store_dir() -> PathBuf {
    std::env::var_os("NEXCAGE_STORAGE_PATH")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_STORE))
}

pub const MT_DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const MT_DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

pub fn is_index_type(mt: &str) -> bool {
    mt == MT_DOCKER_LIST || mt == "application/vnd.oci.image.index.v1+json"
}

/// The image name an index.json descriptor carries (its
/// `org.opencontainers.image.ref.name` annotation).
fn ref_name(d: &Descriptor) -> Option<&str> {
    d.annotations().as_ref()?.get(REF_NAME).map(String::as_str)
}

/// Drop the descriptors named `name`; true if there were any.
fn drop_name(m: &mut Vec<Descriptor>, name: &str) -> bool {
    let before = m.len();
    m.retain(|x| ref_name(x) != Some(name));
    m.len() != before
}

/// One named image in index.json.
#[derive(Clone, Debug)]
pub struct ImageEntry {
    pub name: String,
    pub descriptor: Descriptor,
}

impl ImageEntry {
    pub fn digest(&self) -> Result<Digest> {
        Digest::try_from(self.descriptor.digest())
    }
}

/// Held lock; released when dropped (closing the fd drops the flock).
pub struct LockGuard(#[allow(dead_code)] File);

pub struct Store {
    root: PathBuf,
}

#[derive(Debug, Default, serde::Serialize)]
pub struct GcReport {
    pub removed_blobs: usize,
    pub freed_bytes: u64,
    pub removed_temp: usize,
}

impl Store {
    /// Open (creating if needed) the layout at `root`.
    pub fn open(root: &Path) -> Result<Store> {
        let s = Store {
            root: root.to_path_buf(),
        };
        fs::create_dir_all(s.root.join("blobs/sha256")).ctx(&s.root)?;
        fs::create_dir_all(s.root.join("tmp")).ctx(&s.root)?;
        let layout = s.root.join("oci-layout");
        if !layout.exists() {
            s.write_atomic(&layout, br#"{"imageLayoutVersion":"1.0.0"}"#)?;
        }
        if !s.root.join("index.json").exists() {
            let _g = s.index_lock()?;
            if !s.root.join("index.json").exists() {
                s.write_index(Vec::new())?;
            }
        }
        Ok(s)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    pub(crate) fn lock_file(&self, name: &str) -> Result<File> {
        let p = self.root.join(name);
        fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&p)
            .ctx(p)
    }

    /// Taken by anything that adds blobs, so gc cannot delete them before they are referenced.
    pub fn writer_lock(&self) -> Result<LockGuard> {
        let f = self.lock_file("gc.lock")?;
        f.lock_shared().ctx(self.root.join("gc.lock"))?;
        Ok(LockGuard(f))
    }

    fn gc_lock(&self, wait: bool) -> Result<Option<LockGuard>> {
        let f = self.lock_file("gc.lock")?;
        if wait {
            f.lock().ctx(self.root.join("gc.lock"))?;
            return Ok(Some(LockGuard(f)));
        }
        match f.try_lock() {
            Ok(()) => Ok(Some(LockGuard(f))),
            Err(fs::TryLockError::WouldBlock) => Ok(None),
            Err(fs::TryLockError::Error(e)) => Err(e).ctx(self.root.join("gc.lock")),
        }
    }

    fn index_lock(&self) -> Result<LockGuard> {
        let f = self.lock_file("index.lock")?;
        f.lock().ctx(self.root.join("index.lock"))?;
        Ok(LockGuard(f))
    }

    /// Write a file by temp + fsync + rename so readers see old or new, never half.
    pub(crate) fn write_atomic(&self, dest: &Path, data: &[u8]) -> Result<()> {
        let dir = dest.parent().unwrap_or(&self.root);
        let mut tmp = tempfile::NamedTempFile::new_in(dir).ctx(dir)?;
        tmp.write_all(data).ctx(tmp.path().to_path_buf())?;
        tmp.as_file().sync_all().ctx(dest)?;
        tmp.persist(dest).map_err(|e| Error::Io {
            path: dest.to_path_buf(),
            source: e.error,
        })?;
        Ok(())
    }

    // ---- blobs ----

    pub fn blob_path(&self, d: &Digest) -> PathBuf {
        self.root.join("blobs/sha256").join(d.hex())
    }

    pub fn has_blob(&self, d: &Digest) -> bool {
        self.blob_path(d).is_file()
    }

    /// Stream `r` into the store. With `expected`, the content must hash to it
    /// (and have `size` bytes if given) or nothing is stored.
    pub fn put_blob(
        &self,
        r: &mut dyn Read,
        expected: Option<&Digest>,
        size: Option<u64>,
        what: &str,
    ) -> Result<(Digest, u64)> {
        let tmpdir = self.tmp_dir();
        let tmp = tempfile::NamedTempFile::new_in(&tmpdir).ctx(&tmpdir)?;
        let mut w = HashingWriter::new(io::BufWriter::with_capacity(256 * 1024, tmp));
        io::copy(r, &mut w).map_err(|e| Error::Io {
            path: PathBuf::from(what),
            source: e,
        })?;
        let (buf, digest, n) = w.finish();
        let tmp = buf.into_inner().map_err(|e| Error::Io {
            path: tmpdir.clone(),
            source: e.into_error(),
        })?;
        self.commit_blob(tmp, &digest, n, expected, size, what)?;
        Ok((digest, n))
    }

    /// Verify a finished temp file and rename it under its digest.
    pub(crate) fn commit_blob(
        &self,
        tmp: tempfile::NamedTempFile,
        digest: &Digest,
        n: u64,
        expected: Option<&Digest>,
        size: Option<u64>,
        what: &str,
    ) -> Result<()> {
        if let Some(e) = expected {
            if e != digest {
                return Err(Error::DigestMismatch {
                    what: what.to_string(),
                    expected: e.to_string(),
                    actual: digest.to_string(),
                });
            }
        }
        if let Some(s) = size {
            if s != n {
                return Err(Error::SizeMismatch {
                    what: what.to_string(),
                    expected: s,
                    actual: n,
                });
            }
        }
        let dest = self.blob_path(digest);
        if dest.exists() {
            return Ok(()); // same content already there; temp file is dropped
        }
        tmp.as_file().sync_all().ctx(&dest)?;
        tmp.persist(&dest).map_err(|e| Error::Io {
            path: dest.clone(),
            source: e.error,
        })?;
        debug!(%digest, bytes = n, "stored blob");
        Ok(())
    }

    pub fn put_blob_bytes(&self, data: &[u8]) -> Result<Digest> {
        let d = Digest::of_bytes(data);
        if !self.has_blob(&d) {
            self.put_blob(
                &mut &data[..],
                Some(&d),
                Some(data.len() as u64),
                d.as_str(),
            )?;
        }
        Ok(d)
    }

    pub fn open_blob(&self, d: &Digest) -> Result<File> {
        File::open(self.blob_path(d)).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => Error::BlobNotFound(d.to_string()),
            _ => Error::Io {
                path: self.blob_path(d),
                source: e,
            },
        })
    }

    pub fn read_blob(&self, d: &Digest) -> Result<Vec<u8>> {
        let mut v = Vec::new();
        self.open_blob(d)?
            .read_to_end(&mut v)
            .ctx(self.blob_path(d))?;
        Ok(v)
    }

    /// All blobs with their sizes.
    pub fn blobs(&self) -> Result<BTreeMap<Digest, u64>> {
        let dir = self.root.join("blobs/sha256");
        let mut out = BTreeMap::new();
        for e in fs::read_dir(&dir).ctx(&dir)? {
            let e = e.ctx(&dir)?;
            let name = e.file_name().to_string_lossy().to_string();
            match Digest::parse(&format!("sha256:{name}")) {
                Ok(d) => {
                    out.insert(d, e.metadata().ctx(e.path())?.len());
                }
                Err(_) => warn!(file = %e.path().display(), "stray file in blob dir"),
            }
        }
        Ok(out)
    }

    // ---- index.json ----

    pub fn read_index(&self) -> Result<ImageIndex> {
        let p = self.root.join("index.json");
        let data = fs::read(&p).ctx(&p)?;
        serde_json::from_slice(&data).map_err(|e| malformed(p.display().to_string(), e))
    }

    fn write_index(&self, manifests: Vec<Descriptor>) -> Result<()> {
        let idx = ImageIndexBuilder::default()
            .schema_version(2u32)
            .media_type(MediaType::ImageIndex)
            .manifests(manifests)
            .build()?;
        let data = serde_json::to_vec_pretty(&idx)?;
        self.write_atomic(&self.root.join("index.json"), &data)
    }

    fn update_index(&self, f: impl FnOnce(&mut Vec<Descriptor>) -> Result<()>) -> Result<()> {
        let _g = self.index_lock()?;
        let mut m = self.read_index()?.manifests().clone();
        f(&mut m)?;
        self.write_index(m)
    }

    pub fn images(&self) -> Result<Vec<ImageEntry>> {
        Ok(self
            .read_index()?
            .manifests()
            .iter()
            .filter_map(|d| {
                Some(ImageEntry {
                    name: ref_name(d)?.to_string(),
                    descriptor: d.clone(),
                })
            })
            .collect())
    }

    /// Point `name` at `desc` (replacing whatever it named before).
    pub fn set_ref(&self, name: &str, desc: &Descriptor) -> Result<()> {
        let mut d = desc.clone();
        let mut ann = d.annotations().clone().unwrap_or_default();
        ann.insert(REF_NAME.to_string(), name.to_string());
        d.set_annotations(Some(ann));
        d.set_platform(None);
        self.update_index(|m| {
            drop_name(m, name);
            m.push(d);
            Ok(())
        })?;
        info!(name, digest = %desc.digest(), "tagged");
        Ok(())
    }

    pub fn remove_ref(&self, name: &str) -> Result<()> {
        let mut found = false;
        self.update_index(|m| {
            found = drop_name(m, name);
            Ok(())
        })?;
        if !found {
            return Err(Error::ImageNotFound(name.to_string()));
        }
        Ok(())
    }

    /// Give the image `source` resolves to the name `target` (normalised
    /// like pull does). Holds the writer lock so gc cannot collect the
    /// blobs between lookup and naming.
    pub fn tag(&self, source: &str, target: &str) -> Result<()> {
        let _w = self.writer_lock()?;
        let e = self.resolve(source)?;
        let t = crate::reference::Reference::parse(target)?.to_string();
        self.set_ref(&t, &e.descriptor)
    }

    /// Find an image by name (normalised like pull does), or by a manifest
    /// digest / unique hex prefix of at least 4 characters.
    pub fn resolve(&self, input: &str) -> Result<ImageEntry> {
        let images = self.images()?;
        if let Some(e) = images.iter().find(|e| e.name == input) {
            return Ok(e.clone());
        }
        if let Ok(r) = Reference::parse(input) {
            let n = r.to_string();
            if let Some(e) = images.iter().find(|e| e.name == n) {
                return Ok(e.clone());
            }
        }
        // Short names also match other registries' images (`smoke:1` ->
        // `localhost/smoke:1`), as podman does, when exactly one fits.
        if let Ok(r) = Reference::parse(input) {
            if r.registry == crate::reference::DOCKER_HUB && !input.starts_with("docker.io/") {
                let short = if r.tag.as_deref() == Some("latest") && !input.contains(':') {
                    format!("{input}:latest")
                } else {
                    input.to_string()
                };
                let hits: Vec<_> = images
                    .iter()
                    .filter(|e| {
                        e.name.split_once('/').is_some_and(|(reg, rest)| {
                            rest == short
                                && (reg.contains('.') || reg.contains(':') || reg == "localhost")
                        })
                    })
                    .collect();
                if hits.len() == 1 {
                    return Ok(hits[0].clone());
                }
            }
        }
        let hex = input.strip_prefix("sha256:").unwrap_or(input);
        if hex.len() >= 4 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            let hits: Vec<_> = images
                .iter()
                .filter(|e| e.descriptor.digest().digest().starts_with(hex))
                .collect();
            if let Some(first) = hits.first() {
                if hits
                    .iter()
                    .all(|h| h.descriptor.digest() == first.descriptor.digest())
                {
                    return Ok((*first).clone());
                }
            }
        }
        Err(Error::ImageNotFound(input.to_string()))
    }

    pub fn manifest(&self, d: &Digest) -> Result<ImageManifest> {
        let data = self.read_blob(d)?;
        serde_json::from_slice(&data).map_err(|e| malformed(format!("manifest {d}"), e))
    }

    pub fn image_manifest(&self, e: &ImageEntry) -> Result<ImageManifest> {
        self.manifest(&e.digest()?)
    }

    pub fn config(&self, m: &ImageManifest) -> Result<ImageConfiguration> {
        let d = Digest::try_from(m.config().digest())?;
        let data = self.read_blob(&d)?;
        serde_json::from_slice(&data).map_err(|e| malformed(format!("image config {d}"), e))
    }

    /// Every blob reachable from index.json.
    pub fn referenced(&self) -> Result<HashSet<Digest>> {
        let mut set = HashSet::new();
        for d in self.read_index()?.manifests() {
            self.mark(d, &mut set)?;
        }
        Ok(set)
    }

    fn mark(&self, desc: &Descriptor, set: &mut HashSet<Digest>) -> Result<()> {
        let d = Digest::try_from(desc.digest())?;
        if !set.insert(d.clone()) || !self.has_blob(&d) {
            return Ok(());
        }
        let mt = desc.media_type().to_string();
        if is_index_type(&mt) {
            let idx: ImageIndex = serde_json::from_slice(&self.read_blob(&d)?)?;
            for m in idx.manifests() {
                self.mark(m, set)?;
            }
        } else {
            let m = self.manifest(&d)?;
            set.insert(Digest::try_from(m.config().digest())?);
            for l in m.layers() {
                set.insert(Digest::try_from(l.digest())?);
            }
        }
        Ok(())
    }

    /// Delete unreferenced blobs and stale temp files. With `wait == false`
    /// it gives up (returns None) while another command is adding blobs.
    pub fn gc(&self, wait: bool) -> Result<Option<GcReport>> {
        let Some(_g) = self.gc_lock(wait)? else {
            info!("gc skipped: another command is writing to the store");
            return Ok(None);
        };
        let keep = self.referenced()?;
        let mut rep = GcReport::default();
        for (d, size) in self.blobs()? {
            if !keep.contains(&d) {
                fs::remove_file(self.blob_path(&d)).ctx(self.blob_path(&d))?;
                rep.removed_blobs += 1;
                rep.freed_bytes += size;
            }
        }
        let tmp = self.tmp_dir();
        for e in fs::read_dir(&tmp).ctx(&tmp)? {
            let p = e.ctx(&tmp)?.path();
            let r = if p.is_dir() {
                fs::remove_dir_all(&p)
            } else {
                fs::remove_file(&p)
            };
            r.ctx(&p)?;
            rep.removed_temp += 1;
        }
        info!(
            blobs = rep.removed_blobs,
            bytes = rep.freed_bytes,
            "gc done"
        );
        Ok(Some(rep))
    }
}
