//! A directory tree as a tar stream the way Proxmox's rootfs templates are
//! (`tar xpf --numeric-owner --xattrs` on the host): `./`-prefixed names in
//! sorted order, numeric owners, modes, mtimes, symlinks, hardlinks, device
//! nodes, fifos and xattrs (PAX `SCHILY.xattr.*`).
//!
//! Headers are built by hand: the tar crate strips the leading `./` and
//! would follow nothing we need. Long names and large numbers go into PAX
//! records (POSIX pax format, which GNU tar reads).

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::{self, File, Metadata};
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::Path;

use tar::{Builder, EntryType, Header};
use tracing::warn;

use crate::error::{IoContext, Result};

/// Largest value the 8-byte octal uid/gid fields hold.
const MAX_OCTAL_ID: u64 = 0o7777777;
/// Largest value the 12-byte octal size field holds.
const MAX_OCTAL_SIZE: u64 = 0o77777777777;

/// Appends `root` itself as `./` and everything below it, depth first with
/// siblings sorted by name bytes, so the same tree gives the same archive.
pub fn append_tree<W: Write>(b: &mut Builder<W>, root: &Path) -> Result<()> {
    let mut links = HashMap::new();
    let md = fs::symlink_metadata(root).ctx(root)?;
    append_entry(b, root, &md, b"./", &mut links)?;
    walk(b, root, b"./", &mut links)
}

fn walk<W: Write>(
    b: &mut Builder<W>,
    dir: &Path,
    prefix: &[u8],
    links: &mut HashMap<(u64, u64), Vec<u8>>,
) -> Result<()> {
    let mut names = Vec::new();
    for e in fs::read_dir(dir).ctx(dir)? {
        names.push(e.ctx(dir)?.file_name());
    }
    names.sort();
    for n in names {
        let path = dir.join(&n);
        let md = fs::symlink_metadata(&path).ctx(&path)?;
        let mut name = prefix.to_vec();
        name.extend_from_slice(n.as_bytes());
        if md.is_dir() {
            name.push(b'/');
        }
        append_entry(b, &path, &md, &name, links)?;
        // symlink_metadata: a symlink to a directory is not descended into.
        if md.is_dir() {
            walk(b, &path, &name, links)?;
        }
    }
    Ok(())
}

fn append_entry<W: Write>(
    b: &mut Builder<W>,
    path: &Path,
    md: &Metadata,
    name: &[u8],
    links: &mut HashMap<(u64, u64), Vec<u8>>,
) -> Result<()> {
    let ft = md.file_type();
    let mut h = Header::new_ustar();
    let mut pax: Vec<(String, Vec<u8>)> = Vec::new();
    h.set_mode(md.mode() & 0o7777);
    h.set_uid(u64::from(md.uid()));
    h.set_gid(u64::from(md.gid()));
    for (key, id) in [("uid", md.uid()), ("gid", md.gid())] {
        if u64::from(id) > MAX_OCTAL_ID {
            pax.push((key.into(), id.to_string().into_bytes()));
        }
    }
    // Negative mtimes (before 1970) cannot be stored in the octal field.
    h.set_mtime(md.mtime().max(0) as u64);
    h.set_size(0);
    let mut link: Option<Vec<u8>> = None;
    let mut data: Option<File> = None;
    let first = (!ft.is_dir() && md.nlink() > 1)
        .then(|| links.get(&(md.dev(), md.ino())).cloned())
        .flatten();
    if let Some(first) = first {
        // Same inode as an earlier entry: a hardlink to that entry's name.
        h.set_entry_type(EntryType::Link);
        link = Some(first);
    } else {
        if !ft.is_dir() && md.nlink() > 1 {
            links.insert((md.dev(), md.ino()), name.to_vec());
        }
        if ft.is_symlink() {
            h.set_entry_type(EntryType::Symlink);
            link = Some(
                fs::read_link(path)
                    .ctx(path)?
                    .as_os_str()
                    .as_bytes()
                    .to_vec(),
            );
        } else if ft.is_file() {
            h.set_entry_type(EntryType::Regular);
            h.set_size(md.len());
            if md.len() > MAX_OCTAL_SIZE {
                pax.push(("size".into(), md.len().to_string().into_bytes()));
            }
            let f = fs::OpenOptions::new()
                .read(true)
                .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
                .open(path)
                .ctx(path)?;
            data = Some(f);
        } else if ft.is_dir() {
            h.set_entry_type(EntryType::Directory);
        } else if ft.is_char_device() || ft.is_block_device() {
            h.set_entry_type(if ft.is_char_device() {
                EntryType::Char
            } else {
                EntryType::Block
            });
            let dev = md.rdev();
            h.set_device_major(rustix::fs::major(dev)).ctx(path)?;
            h.set_device_minor(rustix::fs::minor(dev)).ctx(path)?;
        } else if ft.is_fifo() {
            h.set_entry_type(EntryType::Fifo);
        } else {
            // Sockets have no tar representation (GNU tar skips them too).
            warn!(path = %path.display(), "socket not put into the template");
            return Ok(());
        }
        for (k, v) in xattrs(path).ctx(path)? {
            let mut key = String::from("SCHILY.xattr.");
            key.push_str(&String::from_utf8_lossy(&k));
            pax.push((key, v));
        }
    }
    set_bytes(&mut h, name, Field::Name, &mut pax);
    if let Some(l) = &link {
        set_bytes(&mut h, l, Field::Link, &mut pax);
    }
    if !pax.is_empty() {
        append_pax(b, &pax).ctx(path)?;
    }
    h.set_cksum();
    match data {
        // The tree is our private temp dir, so the size cannot change
        // between the stat above and this read.
        Some(f) => b.append(&h, io::BufReader::with_capacity(256 * 1024, f)),
        None => b.append(&h, io::empty()),
    }
    .ctx(path)
}

enum Field {
    Name,
    Link,
}

/// Name or link target into the 100-byte field; longer ones into a PAX
/// `path`/`linkpath` record (the field keeps a truncated copy).
fn set_bytes(h: &mut Header, v: &[u8], f: Field, pax: &mut Vec<(String, Vec<u8>)>) {
    let Some(u) = h.as_ustar_mut() else { return };
    let (field, key) = match f {
        Field::Name => (&mut u.name, "path"),
        Field::Link => (&mut u.linkname, "linkpath"),
    };
    let n = v.len().min(field.len());
    field[..n].copy_from_slice(&v[..n]);
    if v.len() > field.len() {
        pax.push((key.into(), v.to_vec()));
    }
}

/// A PAX extended header (`x`) for the entry that follows.
fn append_pax<W: Write>(b: &mut Builder<W>, records: &[(String, Vec<u8>)]) -> io::Result<()> {
    let mut data = Vec::new();
    for (k, v) in records {
        // "<len> <key>=<value>\n" where len counts itself too.
        let rest = k.len() + v.len() + 3;
        let mut len = rest + 1;
        while rest + len.to_string().len() != len {
            len = rest + len.to_string().len();
        }
        data.extend_from_slice(format!("{len} {k}=").as_bytes());
        data.extend_from_slice(v);
        data.push(b'\n');
    }
    let mut h = Header::new_ustar();
    if let Some(u) = h.as_ustar_mut() {
        let n = b"./PaxHeaders/entry";
        u.name[..n.len()].copy_from_slice(n);
    }
    h.set_entry_type(EntryType::XHeader);
    h.set_mode(0o644);
    h.set_mtime(0);
    h.set_size(data.len() as u64);
    h.set_cksum();
    b.append(&h, &data[..])
}

/// Every xattr of `path` (not following symlinks), sorted by name.
/// `security.selinux` is the host's label, not image content.
fn xattrs(path: &Path) -> io::Result<Vec<(Vec<u8>, Vec<u8>)>> {
    let mut names = vec![0u8; 1024];
    let n = loop {
        match rustix::fs::llistxattr(path, &mut names[..]) {
            Ok(n) => break n,
            Err(rustix::io::Errno::RANGE) => {
                let need = rustix::fs::llistxattr_query(path)?;
                names.resize(need.max(names.len() * 2), 0);
            }
            // No xattr support on this file system (or for this file type).
            Err(rustix::io::Errno::NOTSUP) => return Ok(Vec::new()),
            Err(e) => return Err(e.into()),
        }
    };
    let mut keys: Vec<&[u8]> = names[..n]
        .split(|&c| c == 0)
        .filter(|k| !k.is_empty() && *k != &b"security.selinux"[..])
        .collect();
    keys.sort();
    let mut out = Vec::new();
    for k in keys {
        let key = OsStr::from_bytes(k);
        let mut val = vec![0u8; 256];
        let len = loop {
            match rustix::fs::lgetxattr(path, key, &mut val[..]) {
                Ok(n) => break n,
                Err(rustix::io::Errno::RANGE) => {
                    let need = rustix::fs::lgetxattr_query(path, key)?;
                    val.resize(need.max(val.len() * 2), 0);
                }
                Err(e) => return Err(e.into()),
            }
        };
        val.truncate(len);
        out.push((k.to_vec(), val));
    }
    Ok(out)
}
