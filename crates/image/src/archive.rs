//! Import and export: OCI layout directories, OCI archives (a tar of a
//! layout) and docker-archives (`docker save` / `podman save`).

use std::fs::{self, File};
use std::io::{self, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use oci_spec::image::{Descriptor, ImageIndex, ImageManifest, ImageManifestBuilder, MediaType};
use tracing::{info, warn};

use crate::digest::Digest;
use crate::error::{malformed, Error, IoContext, Result};
use crate::platform::{self, Platform};
use crate::reference::Reference;
use crate::store::{is_index_type, ImageEntry, Store, REF_NAME};
use crate::unpack::decompress;

#[derive(Debug, serde::Serialize)]
pub struct Imported {
    pub name: String,
    pub manifest_digest: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArchiveFormat {
    OciArchive,
    DockerArchive,
}

/// Import `path`: an OCI layout dir, an OCI archive or a docker-archive
/// (optionally gzip-compressed). `name` overrides the stored name.
pub fn import(
    store: &Store,
    path: &Path,
    name: Option<&str>,
    want: &Platform,
) -> Result<Vec<Imported>> {
    let _w = store.writer_lock()?;
    if path.is_dir() {
        return import_dir(store, path, name, want);
    }
    // Unpack the archive into a private temp dir, then import that.
    let tmp = tempfile::tempdir_in(store.tmp_dir()).ctx(store.tmp_dir())?;
    let f = File::open(path).ctx(path)?;
    let mut ar = tar::Archive::new(decompress(f)?);
    // tar's unpack_in refuses `..` and absolute paths. Symlinks are kept
    // (docker save links shared layers) but only ever followed within the
    // temp dir (see `open_inside`).
    for e in ar.entries().ctx(path)? {
        let mut e = e.ctx(path)?;
        let t = e.header().entry_type();
        if t.is_file() || t.is_dir() || t.is_symlink() {
            e.unpack_in(tmp.path()).ctx(path)?;
        }
    }
    import_dir(store, tmp.path(), name, want)
}

fn import_dir(
    store: &Store,
    dir: &Path,
    name: Option<&str>,
    want: &Platform,
) -> Result<Vec<Imported>> {
    if dir.join("manifest.json").is_file() {
        import_docker(store, dir, name)
    } else if dir.join("index.json").is_file() {
        import_layout(store, dir, name, want)
    } else {
        Err(Error::Unsupported(format!(
            "{}: neither an OCI layout (index.json) nor a docker-archive (manifest.json)",
            dir.display()
        )))
    }
}

fn layout_blob(dir: &Path, d: &Digest) -> PathBuf {
    dir.join("blobs/sha256").join(d.hex())
}

/// Copy one blob from a layout into the store, verifying it.
fn copy_blob(store: &Store, dir: &Path, desc: &Descriptor) -> Result<Digest> {
    let d = Digest::try_from(desc.digest())?;
    if !store.has_blob(&d) {
        let p = layout_blob(dir, &d);
        let mut f = File::open(&p).ctx(&p)?;
        store.put_blob(&mut f, Some(&d), Some(desc.size()), d.as_str())?;
    }
    Ok(d)
}

fn name_for(annotation: Option<&String>, override_name: Option<&str>) -> Result<String> {
    if let Some(n) = override_name {
        return Ok(Reference::parse(n)?.to_string());
    }
    match annotation {
        Some(a) if a.contains('/') || a.contains(':') => Ok(Reference::parse(a)?.to_string()),
        Some(a) => Err(Error::Unsupported(format!(
            "the archive names the image only by tag {a:?}; give --name"
        ))),
        None => Err(Error::Unsupported(
            "the archive has no image name; give --name".into(),
        )),
    }
}

fn import_layout(
    store: &Store,
    dir: &Path,
    name: Option<&str>,
    want: &Platform,
) -> Result<Vec<Imported>> {
    let p = dir.join("index.json");
    let idx: ImageIndex = serde_json::from_slice(&fs::read(&p).ctx(&p)?)
        .map_err(|e| malformed(p.display().to_string(), e))?;
    if name.is_some() && idx.manifests().len() > 1 {
        return Err(Error::Unsupported(
            "--name with a layout holding several images".into(),
        ));
    }
    let mut out = Vec::new();
    for top in idx.manifests() {
        let ann = top.annotations().as_ref().and_then(|a| {
            a.get(REF_NAME)
                .or_else(|| a.get("io.containerd.image.name"))
        });
        let n = name_for(ann, name)?;
        let mut desc = top.clone();
        if is_index_type(desc.media_type().as_ref()) {
            let d = Digest::try_from(desc.digest())?;
            let data = fs::read(layout_blob(dir, &d)).ctx(layout_blob(dir, &d))?;
            let e = platform::select(&data, want)?;
            let dg = Digest::parse(&e.digest)?;
            desc = Descriptor::new(MediaType::from(e.media_type.as_str()), e.size, &dg);
        }
        let md = copy_blob(store, dir, &desc)?;
        let m = store.manifest(&md)?;
        copy_blob(store, dir, m.config())?;
        for l in m.layers() {
            copy_blob(store, dir, l)?;
        }
        let clean = Descriptor::new(
            desc.media_type().clone(),
            desc.size(),
            desc.digest().clone(),
        );
        store.set_ref(&n, &clean)?;
        info!(name = n, digest = %md, "imported");
        out.push(Imported {
            name: n,
            manifest_digest: md.to_string(),
        });
    }
    Ok(out)
}

#[derive(serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "PascalCase")]
struct DockerManifestEntry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

/// Media type from the first bytes; rewinds the file.
fn sniff_layer_type(f: &mut File) -> io::Result<MediaType> {
    let mut head = [0u8; 4];
    let n = f.read(&mut head)?;
    f.seek(SeekFrom::Start(0))?;
    Ok(if n >= 2 && head[..2] == [0x1f, 0x8b] {
        MediaType::ImageLayerGzip
    } else if n == 4 && head == [0x28, 0xb5, 0x2f, 0xfd] {
        MediaType::ImageLayerZstd
    } else {
        MediaType::ImageLayer
    })
}

/// Paths inside a docker-archive come from its manifest: resolve them (and
/// any symlinks) within the archive's directory.
fn open_inside(dir: &Path, rel: &str) -> Result<File> {
    let clean = crate::unpack::safe::clean_entry_path(Path::new(rel)).map_err(|why| {
        Error::UnsafeEntry {
            entry: rel.to_string(),
            reason: why.to_string(),
        }
    })?;
    let root = crate::unpack::Root::open(dir).ctx(dir)?;
    root.open_file(&clean).ctx(dir.join(&clean))
}

fn import_docker(store: &Store, dir: &Path, name: Option<&str>) -> Result<Vec<Imported>> {
    let p = dir.join("manifest.json");
    let entries: Vec<DockerManifestEntry> = serde_json::from_slice(&fs::read(&p).ctx(&p)?)
        .map_err(|e| malformed(p.display().to_string(), e))?;
    if name.is_some() && entries.len() > 1 {
        return Err(Error::Unsupported(
            "--name with an archive holding several images".into(),
        ));
    }
    let mut out = Vec::new();
    for e in entries {
        let mut cfg = Vec::new();
        open_inside(dir, &e.config)?
            .read_to_end(&mut cfg)
            .ctx(dir.join(&e.config))?;
        let cfg_digest = store.put_blob_bytes(&cfg)?;
        let mut layers = Vec::new();
        for l in &e.layers {
            let mut f = open_inside(dir, l)?;
            let mt = sniff_layer_type(&mut f).ctx(dir.join(l))?;
            let (d, size) = store.put_blob(&mut f, None, None, l)?;
            layers.push(Descriptor::new(mt, size, &d));
        }
        // Built the same way every time, so re-importing an export of this
        // image gives the same manifest digest.
        let m = ImageManifestBuilder::default()
            .schema_version(2u32)
            .media_type(MediaType::ImageManifest)
            .config(Descriptor::new(
                MediaType::ImageConfig,
                cfg.len() as u64,
                &cfg_digest,
            ))
            .layers(layers)
            .build()?;
        let data = serde_json::to_vec(&m)?;
        let md = store.put_blob_bytes(&data)?;
        let tag = e.repo_tags.as_ref().and_then(|t| t.first());
        let n = match (name, tag) {
            (Some(n), _) => Reference::parse(n)?.to_string(),
            (None, Some(t)) => Reference::parse(t)?.to_string(),
            (None, None) => {
                return Err(Error::Unsupported(
                    "docker-archive image without RepoTags; give --name".into(),
                ))
            }
        };
        store.set_ref(
            &n,
            &Descriptor::new(MediaType::ImageManifest, data.len() as u64, &md),
        )?;
        info!(name = n, digest = %md, "imported docker-archive image");
        out.push(Imported {
            name: n,
            manifest_digest: md.to_string(),
        });
    }
    Ok(out)
}

// ---- export ----

/// The content of an archive entry.
enum Entry<'a> {
    Bytes(&'a [u8]),
    File(&'a mut File),
}

/// An archive being written: the image, its manifest and the tar stream.
/// Entries are regular files, mode 0644, mtime 0 (reproducible output).
struct Export<'a, W: Write> {
    store: &'a Store,
    image: &'a ImageEntry,
    manifest: &'a ImageManifest,
    tar: &'a mut tar::Builder<W>,
}

impl<W: Write> Export<'_, W> {
    /// I/O errors name "archive" as their path.
    fn append(&mut self, path: &str, data: Entry<'_>) -> Result<()> {
        let mut h = tar::Header::new_ustar();
        h.set_mode(0o644);
        h.set_mtime(0);
        h.set_entry_type(tar::EntryType::Regular);
        let r = match data {
            Entry::Bytes(b) => {
                h.set_size(b.len() as u64);
                self.tar.append_data(&mut h, path, b)
            }
            Entry::File(f) => (|| {
                h.set_size(f.seek(SeekFrom::End(0))?);
                f.seek(SeekFrom::Start(0))?;
                self.tar
                    .append_data(&mut h, path, BufReader::with_capacity(256 * 1024, f))
            })(),
        };
        r.map_err(|source| Error::Io {
            path: "archive".into(),
            source,
        })
    }

    fn append_blob(&mut self, path: &str, d: &Digest) -> Result<()> {
        let mut f = self.store.open_blob(d)?;
        self.append(path, Entry::File(&mut f))
    }

    /// OCI image layout: `oci-layout`, the blobs, an `index.json` naming the image.
    fn oci(&mut self) -> Result<()> {
        self.append("oci-layout", Entry::Bytes(br#"{"imageLayoutVersion":"1.0.0"}"#))?;
        let md = self.image.digest()?;
        let mut blobs = vec![md, Digest::try_from(self.manifest.config().digest())?];
        for l in self.manifest.layers() {
            let d = Digest::try_from(l.digest())?;
            if !blobs.contains(&d) {
                blobs.push(d);
            }
        }
        for d in &blobs {
            self.append_blob(&format!("blobs/sha256/{}", d.hex()), d)?;
        }
        let mut desc = self.image.descriptor.clone();
        let mut ann = std::collections::HashMap::new();
        ann.insert(REF_NAME.to_string(), self.image.name.clone());
        desc.set_annotations(Some(ann));
        let idx = oci_spec::image::ImageIndexBuilder::default()
            .schema_version(2u32)
            .media_type(MediaType::ImageIndex)
            .manifests(vec![desc])
            .build()?;
        self.append("index.json", Entry::Bytes(&serde_json::to_vec(&idx)?))
    }

    /// docker-archive (`docker save`): `<config>.json`, `<diff id>/layer.tar`
    /// (uncompressed) and `manifest.json`.
    fn docker(&mut self) -> Result<()> {
        let store = self.store;
        let cd = Digest::try_from(self.manifest.config().digest())?;
        let cfg_name = format!("{}.json", cd.hex());
        self.append_blob(&cfg_name, &cd)?;
        let mut layer_names = Vec::new();
        for l in self.manifest.layers() {
            let d = Digest::try_from(l.digest())?;
            // docker-archive layers are plain tars (their digest is the diff ID).
            let mut raw = store.open_blob(&d)?;
            let mut head = [0u8; 4];
            let n = raw.read(&mut head).ctx(store.blob_path(&d))?;
            raw.seek(SeekFrom::Start(0)).ctx(store.blob_path(&d))?;
            let compressed =
                (n >= 2 && head[..2] == [0x1f, 0x8b]) || (n == 4 && head == [0x28, 0xb5, 0x2f, 0xfd]);
            let (mut file, hex) = if compressed {
                let mut t = tempfile::tempfile_in(store.tmp_dir()).ctx(store.tmp_dir())?;
                let mut w = crate::digest::HashingWriter::new(io::BufWriter::new(&mut t));
                io::copy(&mut decompress(raw)?, &mut w).ctx(store.blob_path(&d))?;
                let (bw, diff, _) = w.finish();
                bw.into_inner().map_err(|x| Error::Io {
                    path: store.tmp_dir(),
                    source: x.into_error(),
                })?;
                (t, diff.hex().to_string())
            } else {
                (raw, d.hex().to_string())
            };
            let name = format!("{hex}/layer.tar");
            if !layer_names.contains(&name) {
                self.append(&name, Entry::File(&mut file))?;
            } else {
                warn!(layer = name, "layer repeated in manifest");
            }
            layer_names.push(name);
        }
        let tags = Reference::parse(&self.image.name)
            .ok()
            .filter(|r| r.tag.is_some())
            .map(|r| {
                let mut r = r;
                r.digest = None;
                vec![r.to_string()]
            });
        let entry = DockerManifestEntry {
            config: cfg_name,
            repo_tags: tags,
            layers: layer_names,
        };
        self.append("manifest.json", Entry::Bytes(&serde_json::to_vec(&vec![entry])?))
    }
}

/// Write `image` to `output` (via a temp file renamed into place).
pub fn export(
    store: &Store,
    image: &ImageEntry,
    output: &Path,
    format: ArchiveFormat,
) -> Result<()> {
    let dir = output
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let tmp = tempfile::NamedTempFile::new_in(dir).ctx(dir)?;
    {
        let mut b = tar::Builder::new(io::BufWriter::with_capacity(256 * 1024, tmp.as_file()));
        let m = store.image_manifest(image)?;
        let mut x = Export {
            store,
            image,
            manifest: &m,
            tar: &mut b,
        };
        match format {
            ArchiveFormat::OciArchive => x.oci()?,
            ArchiveFormat::DockerArchive => x.docker()?,
        }
        let w = b.into_inner().ctx(output)?;
        w.into_inner().map_err(|e| Error::Io {
            path: output.to_path_buf(),
            source: e.into_error(),
        })?;
    }
    tmp.as_file().sync_all().ctx(output)?;
    tmp.persist(output).map_err(|e| Error::Io {
        path: output.to_path_buf(),
        source: e.error,
    })?;
    info!(image = image.name, output = %output.display(), ?format, "exported");
    Ok(())
}

/// `image export --layers`: a tar of `image`'s layer blobs as stored
/// (compressed as the registry served them), bottom layer first, named
/// `layers/<NN>-<hex>.<ext>` (`tar`, `tar.gz` or `tar.zst` from the media
/// type), plus `layers.json`: the manifest's layer descriptors with the
/// config's diff_id of each. Written via a temp file renamed into place.
pub fn export_layers(store: &Store, image: &ImageEntry, output: &Path) -> Result<()> {
    let dir = output.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let tmp = tempfile::NamedTempFile::new_in(dir).ctx(dir)?;
    let m = store.image_manifest(image)?;
    let diff_ids = store.config(&m)?.rootfs().diff_ids().clone();
    {
        let mut b = tar::Builder::new(io::BufWriter::with_capacity(256 * 1024, tmp.as_file()));
        let mut listing = Vec::new();
        for (i, l) in m.layers().iter().enumerate() {
            let d = Digest::try_from(l.digest())?;
            let mt = l.media_type().to_string();
            let ext = if mt.ends_with("gzip") { "tar.gz" } else if mt.ends_with("zstd") { "tar.zst" } else { "tar" };
            let name = format!("layers/{i:02}-{}.{ext}", d.hex());
            let mut f = store.open_blob(&d)?;
            b.append_file(&name, &mut f).ctx(output)?;
            listing.push(serde_json::json!({"file": name, "descriptor": l, "diffId": diff_ids.get(i)}));
        }
        let json = serde_json::to_vec_pretty(&listing)?;
        let mut h = tar::Header::new_gnu();
        h.set_size(json.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, "layers.json", json.as_slice()).ctx(output)?;
        b.into_inner().ctx(output)?.flush().ctx(output)?;
    }
    tmp.persist(output).map_err(|e| e.error).ctx(output)?;
    Ok(())
}
