//! Proxmox container templates from stored images (`image template`):
//!
//! * `<stem>.tar`: an OCI archive, which `pct create` on Proxmox VE >= 9.1
//!   recognises (path ends in `.tar`, the tar holds `oci-layout`,
//!   `index.json` and `blobs/`) and turns into a guest itself;
//! * `<stem>.tar.zst`: a rootfs tarball for older releases, which extract
//!   it with `tar xpf --zstd --numeric-owner --xattrs`.
//!
//! Both are written to a temp file in the output dir and only linked into
//! place (never over an existing file) once complete.

mod rootfs;
mod zstd;

use std::cell::Cell;
use std::fs;
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use oci_spec::image::ImageConfiguration;
use tempfile::NamedTempFile;
use tracing::info;

use crate::archive::{self, ArchiveFormat};
use crate::error::{Error, IoContext, Result};
use crate::store::{ImageEntry, Store};
use crate::unpack::{unpack_rootfs, ApplyOptions};

pub use zstd::ZstdWriter;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TemplateFormat {
    /// `<stem>.tar`, an OCI archive (Proxmox VE >= 9.1).
    Oci,
    /// `<stem>.tar.zst`, a rootfs tarball (older Proxmox VE).
    Rootfs,
    /// Both files.
    Both,
}

#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("image config value for '{field}' contains control characters: Proxmox would refuse it (\"OCI config value for '{field}' contains forbidden control characters!\")")]
    ControlCharacters { field: &'static str },
    #[error("{}: already exists, not overwriting it", .0.display())]
    Exists(PathBuf),
    #[error("invalid template name {0:?}: use only A-Z a-z 0-9 _ . - and do not start with '.'")]
    InvalidName(String),
    #[error("a rootfs template needs root: only root can give its files the owners the image's layers name")]
    NeedsRoot,
}

/// The file name stem Proxmox's `oci-registry-pull` would use: the last
/// path segment of the reference with its tag, every character outside
/// `[A-Za-z0-9_.-]` replaced by `_` (`docker.io/library/nginx:latest` ->
/// `nginx_latest`).
pub fn stem_for(reference: &str) -> String {
    let last = reference.rsplit('/').next().unwrap_or(reference);
    last.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn check_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if ok {
        Ok(())
    } else {
        Err(TemplateError::InvalidName(name.to_string()).into())
    }
}

/// Proxmox aborts the guest creation on config values with control
/// characters (they would end up in the LXC config), so refuse them before
/// writing an archive it cannot use.
pub fn check_config(cfg: &ImageConfiguration) -> Result<()> {
    let Some(c) = cfg.config() else { return Ok(()) };
    let none = Vec::new();
    let lists = [
        ("Entrypoint", c.entrypoint()),
        ("Cmd", c.cmd()),
        ("Env", c.env()),
    ];
    let single = [
        ("WorkingDir", c.working_dir()),
        ("User", c.user()),
        ("StopSignal", c.stop_signal()),
    ];
    let values = lists
        .iter()
        .flat_map(|(f, v)| v.as_ref().unwrap_or(&none).iter().map(move |s| (*f, s)))
        .chain(
            single
                .iter()
                .filter_map(|(f, v)| v.as_ref().map(|s| (*f, s))),
        );
    for (field, v) in values {
        if v.chars().any(char::is_control) {
            return Err(TemplateError::ControlCharacters { field }.into());
        }
    }
    Ok(())
}

/// Write the templates of `image` into `dir`, named `<stem>.tar` and/or
/// `<stem>.tar.zst` (stem: `name`, else [`stem_for`] the image's name).
/// Nothing is written when a target exists or a check fails; returns the
/// paths written.
pub fn write(
    store: &Store,
    image: &ImageEntry,
    dir: &Path,
    format: TemplateFormat,
    name: Option<&str>,
) -> Result<Vec<PathBuf>> {
    let stem = match name {
        Some(n) => n.to_string(),
        None => stem_for(&image.name),
    };
    check_name(&stem)?;
    let oci = matches!(format, TemplateFormat::Oci | TemplateFormat::Both)
        .then(|| dir.join(format!("{stem}.tar")));
    let rootfs = matches!(format, TemplateFormat::Rootfs | TemplateFormat::Both)
        .then(|| dir.join(format!("{stem}.tar.zst")));
    // Every check before the first (possibly long) write.
    for p in oci.iter().chain(&rootfs) {
        if fs::symlink_metadata(p).is_ok() {
            return Err(TemplateError::Exists(p.clone()).into());
        }
    }
    if oci.is_some() {
        check_config(&store.config(&store.image_manifest(image)?)?)?;
    }
    if rootfs.is_some() && !rustix::process::geteuid().is_root() {
        return Err(TemplateError::NeedsRoot.into());
    }
    // Keeps gc away from the blobs we read and the temp dir we unpack into.
    let _w = store.writer_lock()?;
    let mut done: Vec<(NamedTempFile, PathBuf)> = Vec::new();
    if let Some(p) = oci {
        let tmp = temp_in(dir)?;
        // export renames its own temp file over ours: same dir, same name.
        archive::export(store, image, tmp.path(), ArchiveFormat::OciArchive)?;
        done.push((tmp, p));
    }
    if let Some(p) = rootfs {
        let tmp = temp_in(dir)?;
        write_rootfs(store, image, tmp.as_file(), &p)?;
        tmp.as_file().sync_all().ctx(&p)?;
        done.push((tmp, p));
    }
    // Temp files are 0600; templates are read like any other file.
    for (tmp, _) in &done {
        fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o644)).ctx(tmp.path())?;
    }
    let mut written = Vec::new();
    for (tmp, p) in done {
        // No-clobber link: a file created meanwhile is not replaced either.
        if let Err(e) = tmp.persist_noclobber(&p) {
            for w in &written {
                let _ = fs::remove_file(w);
            }
            return Err(match e.error.kind() {
                io::ErrorKind::AlreadyExists => TemplateError::Exists(p).into(),
                _ => Error::Io {
                    path: p,
                    source: e.error,
                },
            });
        }
        info!(image = image.name, path = %p.display(), "template written");
        written.push(p);
    }
    Ok(written)
}

fn temp_in(dir: &Path) -> Result<NamedTempFile> {
    tempfile::Builder::new()
        .prefix(".nexcage-template-")
        .tempfile_in(dir)
        .ctx(dir)
}

/// The output file as a writer that remembers whether it failed, so an
/// error while packing is reported against the output, not the tree.
struct Output<'a> {
    file: &'a fs::File,
    failed: &'a Cell<bool>,
}

impl Write for Output<'_> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let r = self.file.write(data);
        self.failed.set(self.failed.get() || r.is_err());
        r
    }

    fn flush(&mut self) -> io::Result<()> {
        let r = self.file.flush();
        self.failed.set(self.failed.get() || r.is_err());
        r
    }
}

/// The image's rootfs as a zstd-compressed tar into `out` (`out_path` names
/// it in errors): unpacked with owners into a temp dir under the store's
/// tmp dir, which is removed afterwards, also on error (TempDir's drop).
pub fn write_rootfs(
    store: &Store,
    image: &ImageEntry,
    out: &fs::File,
    out_path: &Path,
) -> Result<()> {
    let tmp = store.tmp_dir();
    let work = tempfile::Builder::new()
        .prefix("template-")
        .tempdir_in(&tmp)
        .ctx(&tmp)?;
    let root = work.path().join("rootfs");
    // The archive's `./` entry becomes the guest's `/`: 0755 whatever the
    // umask, unless a layer sets it.
    fs::DirBuilder::new().mode(0o755).create(&root).ctx(&root)?;
    fs::set_permissions(&root, fs::Permissions::from_mode(0o755)).ctx(&root)?;
    // The default sets owners when root, which `write` made sure we are.
    let stats = unpack_rootfs(store, image, &root, &ApplyOptions::default())?;
    let failed = Cell::new(false);
    let packed = (|| {
        let file = BufWriter::with_capacity(
            256 * 1024,
            Output {
                file: out,
                failed: &failed,
            },
        );
        let mut b = tar::Builder::new(ZstdWriter::new(file));
        rootfs::append_tree(&mut b, &root)?;
        let z = b.into_inner().ctx(&root)?;
        let mut w = z.finish().ctx(out_path)?;
        w.flush().ctx(out_path)
    })();
    packed.map_err(|e| match e {
        Error::Io { source, .. } if failed.get() => Error::Io {
            path: out_path.to_path_buf(),
            source,
        },
        e => e,
    })?;
    info!(
        image = image.name,
        entries = stats.entries,
        "rootfs template packed"
    );
    work.close().ctx(&tmp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stems_like_proxmox() {
        assert_eq!(stem_for("docker.io/library/nginx:latest"), "nginx_latest");
        assert_eq!(stem_for("localhost:5000/a/b-c:1.2"), "b-c_1.2");
        assert_eq!(stem_for("x/app@sha256:ab"), "app_sha256_ab");
        assert!(check_name("nginx_latest").is_ok());
        for bad in ["", ".x", "a/b", "..", "a b"] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }
}
