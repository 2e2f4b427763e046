//! Applying one layer tar onto a rootfs: whiteouts, owners, modes,
//! xattrs, hardlinks and device nodes, all confined to the root.

use std::collections::HashSet;
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Gid, Mode, OFlags, Timespec, Timestamps, Uid, XattrFlags};
use tar::EntryType;
use tracing::{debug, warn};

use super::safe::{clean_entry_path, is_dir_at, list_dir, remove_all, Root};
use crate::error::{Error, Result};

const WHITEOUT: &str = ".wh.";
const OPAQUE: &str = ".wh..wh..opq";

#[derive(Clone, Debug)]
pub struct ApplyOptions {
    /// Set owners from the archive (needs root; off when unprivileged).
    pub chown: bool,
}

impl Default for ApplyOptions {
    fn default() -> Self {
        ApplyOptions {
            chown: rustix::process::geteuid().is_root(),
        }
    }
}

#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct LayerStats {
    pub entries: u64,
    pub bytes: u64,
    pub whiteouts: u64,
    pub skipped_devices: u64,
    /// Directories and their mtimes: creating their children changes them,
    /// so [`crate::unpack::unpack_rootfs`] sets them again at the end.
    #[serde(skip)]
    pub dir_times: Vec<(PathBuf, i64)>,
}

/// Decompress by sniffing magic bytes (gzip, zstd, else plain tar), so a
/// mislabelled media type does not matter.
pub fn decompress<'a>(r: impl Read + 'a) -> Result<Box<dyn Read + 'a>> {
    let mut br = BufReader::with_capacity(256 * 1024, r);
    let head = br.fill_buf().map_err(|e| Error::Io {
        path: "layer".into(),
        source: e,
    })?;
    if head.starts_with(&[0x1f, 0x8b]) {
        Ok(Box::new(flate2::bufread::MultiGzDecoder::new(br)))
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Ok(Box::new(ZstdFrames {
            src: Some(br),
            dec: None,
        }))
    } else {
        Ok(Box::new(br))
    }
}

/// ruzstd decodes a single frame; zstd layers (zstd:chunked) may hold many.
struct ZstdFrames<R: BufRead> {
    src: Option<R>,
    dec: Option<ruzstd::decoding::StreamingDecoder<R, ruzstd::decoding::FrameDecoder>>,
}

impl<R: BufRead> Read for ZstdFrames<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if let Some(d) = &mut self.dec {
                let n = d.read(buf)?;
                if n > 0 || buf.is_empty() {
                    return Ok(n);
                }
                let d = self
                    .dec
                    .take()
                    .ok_or_else(|| io::Error::other("zstd state"))?;
                self.src = Some(d.into_inner());
            }
            let Some(mut src) = self.src.take() else {
                return Ok(0);
            };
            if src.fill_buf()?.is_empty() {
                return Ok(0);
            }
            let dec = ruzstd::decoding::StreamingDecoder::new(src).map_err(io::Error::other)?;
            self.dec = Some(dec);
        }
    }
}

fn ent_err(entry: &str) -> impl Fn(io::Error) -> Error + '_ {
    move |source| Error::Entry {
        entry: entry.to_string(),
        source,
    }
}

fn unsafe_entry(entry: &str, reason: &str) -> Error {
    Error::UnsafeEntry {
        entry: entry.to_string(),
        reason: reason.to_string(),
    }
}

/// Paths created by the current layer (and their ancestors), so an opaque
/// marker only hides what lower layers put there.
#[derive(Default)]
struct Created(HashSet<PathBuf>);

impl Created {
    fn insert(&mut self, p: &Path) {
        let mut cur = Some(p);
        while let Some(c) = cur {
            if c.as_os_str().is_empty() || !self.0.insert(c.to_path_buf()) {
                break;
            }
            cur = c.parent();
        }
    }
}

/// Apply an (already decompressed) layer tar stream to `root`.
pub fn apply_layer(root: &Root, tar_stream: impl Read, opts: &ApplyOptions) -> Result<LayerStats> {
    let mut ar = tar::Archive::new(tar_stream);
    let mut stats = LayerStats::default();
    let mut created = Created::default();
    let entries = ar.entries().map_err(|e| Error::Io {
        path: "layer".into(),
        source: e,
    })?;
    for entry in entries {
        let mut entry = entry.map_err(|e| Error::Io {
            path: "layer (tar stream)".into(),
            source: e,
        })?;
        let raw = entry
            .path()
            .map_err(|e| Error::Io {
                path: "layer (entry name)".into(),
                source: e,
            })?
            .into_owned();
        let shown = raw.display().to_string();
        let rel = clean_entry_path(&raw).map_err(|why| unsafe_entry(&shown, why))?;
        stats.entries += 1;
        let et = entry.header().entry_type();
        if matches!(
            et,
            EntryType::XGlobalHeader
                | EntryType::XHeader
                | EntryType::GNULongName
                | EntryType::GNULongLink
        ) {
            continue;
        }
        if rel.as_os_str().is_empty() {
            continue; // the root itself: the target dir keeps its own metadata
        }
        let name = rel.file_name().unwrap_or_default().as_bytes();
        if name.starts_with(WHITEOUT.as_bytes()) {
            stats.whiteouts += 1;
            whiteout(root, &rel, &created, &shown)?;
            continue;
        }
        let (pfd, resolved, fname) = root.parent_of(&rel, true).map_err(ent_err(&shown))?;
        created.insert(&resolved);
        if et == EntryType::Directory {
            stats.dir_times.push((resolved.clone(), entry.header().mtime().unwrap_or(0) as i64));
        }
        let n = write_entry(root, &mut entry, et, &pfd, &fname, &shown, opts, &mut stats)?;
        stats.bytes += n;
    }
    Ok(stats)
}

fn whiteout(root: &Root, rel: &Path, created: &Created, shown: &str) -> Result<()> {
    let name = rel.file_name().unwrap_or_default().as_bytes();
    let victim = &name[WHITEOUT.len()..];
    if name != OPAQUE.as_bytes()
        && (victim.is_empty() || victim == b"." || victim == b".." || victim.contains(&b'/'))
    {
        return Err(unsafe_entry(shown, "bad whiteout name"));
    }
    let parent = root
        .resolve(rel.parent().unwrap_or(Path::new("")), true)
        .map_err(ent_err(shown))?;
    let dir = match root.open_dir(&parent, false) {
        Ok(d) => d,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(ent_err(shown)(e)),
    };
    if name == OPAQUE.as_bytes() {
        debug!(dir = %parent.display(), "opaque directory");
        return prune(&dir, &parent, created).map_err(ent_err(shown));
    }
    remove_all(&dir, OsStr::from_bytes(victim)).map_err(ent_err(shown))
}

/// Remove everything in `dir` that the current layer did not create.
fn prune(dir: &OwnedFd, path: &Path, created: &Created) -> io::Result<()> {
    for child in list_dir(dir)? {
        let p = path.join(&child);
        if created.0.contains(&p) {
            if is_dir_at(dir, &child)? == Some(true) {
                let sub = rustix::fs::openat(
                    dir,
                    &child,
                    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )?;
                prune(&sub, &p, created)?;
            }
        } else {
            remove_all(dir, &child)?;
        }
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn write_entry<R: Read>(
    root: &Root,
    entry: &mut tar::Entry<'_, R>,
    et: EntryType,
    pfd: &OwnedFd,
    name: &OsString,
    shown: &str,
    opts: &ApplyOptions,
    stats: &mut LayerStats,
) -> Result<u64> {
    let err = ent_err(shown);
    let h = entry.header().clone();
    let mode = h.mode().map_err(&err)? & 0o7777;
    let existing_dir = is_dir_at(pfd, name).map_err(&err)?;
    // Replace whatever is there, except a directory over a directory.
    if existing_dir.is_some() && !(et == EntryType::Directory && existing_dir == Some(true)) {
        remove_all(pfd, name).map_err(&err)?;
    }
    let mut written = 0;
    match et {
        EntryType::Directory => {
            if existing_dir != Some(true) {
                rustix::fs::mkdirat(pfd, name.as_os_str(), Mode::from_raw_mode(0o700))
                    .map_err(|e| err(e.into()))?;
            }
        }
        EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
            let fd = rustix::fs::openat(
                pfd,
                name.as_os_str(),
                OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::from_raw_mode(0o600),
            )
            .map_err(|e| err(e.into()))?;
            let mut f = File::from(fd);
            written = io::copy(entry, &mut f).map_err(&err)?;
        }
        EntryType::Symlink => {
            let target = entry
                .link_name()
                .map_err(&err)?
                .ok_or_else(|| unsafe_entry(shown, "symlink without target"))?;
            // The target is stored verbatim; it is only ever resolved within the root.
            rustix::fs::symlinkat(target.as_ref(), pfd, name.as_os_str())
                .map_err(|e| err(e.into()))?;
        }
        EntryType::Link => {
            let target = entry
                .link_name()
                .map_err(&err)?
                .ok_or_else(|| unsafe_entry(shown, "hardlink without target"))?;
            let t = clean_entry_path(&target).map_err(|why| {
                unsafe_entry(
                    shown,
                    &format!("hardlink target {}: {why}", target.display()),
                )
            })?;
            let (tfd, _, tname) = root.parent_of(&t, false).map_err(&err)?;
            rustix::fs::linkat(
                &tfd,
                tname.as_os_str(),
                pfd,
                name.as_os_str(),
                AtFlags::empty(),
            )
            .map_err(|e| {
                err(io::Error::new(
                    e.kind(),
                    format!("hardlink to {}: {e}", target.display()),
                ))
            })?;
            return Ok(0); // shares the target's inode and metadata
        }
        EntryType::Char | EntryType::Block | EntryType::Fifo => {
            let ft = match et {
                EntryType::Char => FileType::CharacterDevice,
                EntryType::Block => FileType::BlockDevice,
                _ => FileType::Fifo,
            };
            let dev = rustix::fs::makedev(
                // FIFOs often leave these fields blank.
                h.device_major().ok().flatten().unwrap_or(0),
                h.device_minor().ok().flatten().unwrap_or(0),
            );
            match rustix::fs::mknodat(pfd, name.as_os_str(), ft, Mode::from_raw_mode(mode), dev) {
                Ok(()) => {}
                Err(rustix::io::Errno::PERM) if ft != FileType::Fifo => {
                    warn!(
                        entry = shown,
                        "cannot create device node without privilege; skipped"
                    );
                    stats.skipped_devices += 1;
                    return Ok(0);
                }
                Err(e) => return Err(err(e.into())),
            }
        }
        other => {
            warn!(entry = shown, kind = ?other, "unsupported tar entry type; skipped");
            return Ok(0);
        }
    }
    set_metadata(pfd, name, entry, et, mode, opts).map_err(&err)?;
    Ok(written)
}

fn set_metadata<R: Read>(
    pfd: &OwnedFd,
    name: &OsStr,
    entry: &mut tar::Entry<'_, R>,
    et: EntryType,
    mode: u32,
    opts: &ApplyOptions,
) -> io::Result<()> {
    let h = entry.header().clone();
    let nofollow = AtFlags::SYMLINK_NOFOLLOW;
    if opts.chown {
        let uid = Uid::from_raw(h.uid()? as u32);
        let gid = Gid::from_raw(h.gid()? as u32);
        rustix::fs::chownat(pfd, name, Some(uid), Some(gid), nofollow)?;
    }
    // xattrs (PAX SCHILY.xattr.*); symlinks cannot carry user.* ones.
    if et != EntryType::Symlink {
        if let Some(exts) = entry.pax_extensions()? {
            let mut fd: Option<OwnedFd> = None;
            for ext in exts {
                let ext = ext?;
                let Some(key) = ext.key_bytes().strip_prefix(b"SCHILY.xattr.") else {
                    continue;
                };
                if fd.is_none() {
                    fd = Some(rustix::fs::openat(
                        pfd,
                        name,
                        OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                        Mode::empty(),
                    )?);
                }
                if let Some(f) = &fd {
                    // fsetxattr does not work on O_PATH fds; go through /proc.
                    let p = format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(f));
                    let key = OsStr::from_bytes(key);
                    if let Err(e) = rustix::fs::setxattr(
                        p.as_str(),
                        key,
                        ext.value_bytes(),
                        XattrFlags::empty(),
                    ) {
                        warn!(xattr = ?key, error = %e, "could not set xattr");
                    }
                }
            }
        }
    }
    if et != EntryType::Symlink {
        // After chown, which clears setuid/setgid.
        rustix::fs::chmodat(pfd, name, Mode::from_raw_mode(mode), AtFlags::empty())?;
    }
    let mtime = h.mtime().unwrap_or(0) as i64;
    let ts = Timespec {
        tv_sec: mtime,
        tv_nsec: 0,
    };
    rustix::fs::utimensat(
        pfd,
        name,
        &Timestamps {
            last_access: ts,
            last_modification: ts,
        },
        nofollow,
    )?;
    let _ = pfd.as_fd();
    Ok(())
}
