//! Bind-mount sources of an unprivileged guest. LXC mounts `lxc.mount.entry`
//! from inside the guest's user namespace, as the mapped root (uid 100000),
//! which cannot walk into root-only directories such as Podman's
//! `/var/lib/containers` (0700). So create bind-mounts each source, as host
//! root, onto `<lxc_dir>/mounts/<n>` and points the entry there; the source
//! keeps its own permissions, only the path to it changes. delete unmounts
//! them before the LXC dir is removed.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use nexcage_pve::mapping::PveConfig;
use nix::mount::{mount, umount2, MntFlags, MsFlags};

use super::lxcconf::MountEntry;

const DIR: &str = "mounts";

/// Stages every host bind source of `pve`'s mount entries; rewrites them.
pub fn stage(lxc_dir: &Path, pve: &mut PveConfig) -> Result<()> {
    let base = lxc_dir.join(DIR);
    let mut n = 0;
    for (k, v) in pve.lxc.iter_mut().chain(pve.exec.lxc.iter_mut()) {
        let Some(e) = MountEntry::parse(v).filter(|e| k == "lxc.mount.entry" && e.is_bind() && e.source().starts_with('/')) else {
            continue;
        };
        let src = Path::new(e.source());
        let at = base.join(n.to_string());
        n += 1;
        std::fs::create_dir_all(&base).with_context(|| format!("create {}", base.display()))?;
        if src.is_dir() {
            std::fs::create_dir(&at).with_context(|| format!("create {}", at.display()))?;
        } else {
            std::fs::write(&at, b"").with_context(|| format!("create {}", at.display()))?;
        }
        let rec = if e.has_option("rbind") { MsFlags::MS_REC } else { MsFlags::empty() };
        mount(Some(src), &at, None::<&str>, MsFlags::MS_BIND | rec, None::<&str>)
            .with_context(|| format!("cannot stage bind mount source {} for the unprivileged guest", src.display()))?;
        let entry = e.with_source(&at.display().to_string());
        *v = if idmappable(src) { with_option(&entry, IDMAP) } else { entry };
    }
    Ok(())
}

/// An unprivileged guest keeping the host's IPC namespace cannot mount
/// mqueue (the host's IPC namespace belongs to the host's user namespace):
/// create mounts the host IPC namespace's mqueue, as host root, at
/// `<lxc_dir>/mounts/mqueue` and binds that in instead, with the entry's
/// options (what runc's mqueue mount in the host's IPC namespace shows).
/// Unmounted with the staged sources.
pub fn host_mqueue(lxc_dir: &Path, pve: &mut PveConfig) -> Result<()> {
    if !super::lxcconf::keeps_ns(pve, "ipc") {
        return Ok(());
    }
    let at = lxc_dir.join(DIR).join("mqueue");
    for (k, v) in pve.lxc.iter_mut().chain(pve.exec.lxc.iter_mut()) {
        let Some(e) = MountEntry::parse(v).filter(|e| k == "lxc.mount.entry" && e.fields.get(2) == Some(&"mqueue")) else {
            continue;
        };
        if !at.exists() {
            std::fs::create_dir_all(&at).with_context(|| format!("create {}", at.display()))?;
            let fl = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
            mount(Some("mqueue"), &at, Some("mqueue"), fl, None::<&str>).with_context(|| format!("mount the host's mqueue at {}", at.display()))?;
        }
        let mut opts = vec!["bind"];
        opts.extend(e.fields[3].split(',').filter(|o| !o.is_empty() && !o.starts_with("create=")));
        opts.push("create=dir");
        *v = format!("{} {} none {} 0 0", at.display(), e.target(), opts.join(","));
    }
    Ok(())
}

/// LXC's mount option for an id-mapped bind mount through the guest's own
/// user namespace (lxc conf.c, `idmap=container`): the guest's root then
/// reads and writes the source as host root does, and files it creates are
/// owned by host uid 0, as under runc.
const IDMAP: &str = "idmap=container";

/// Whether the kernel can id-map a mount of `src`'s filesystem: ext2/3/4,
/// tmpfs, xfs and btrfs (Linux 5.12+, tmpfs 6.3+). Not FUSE (zfs-fuse),
/// whose sources stay unmapped: the guest's root is then "other" there.
fn idmappable(src: &Path) -> bool {
    const EXT4: i64 = 0xEF53;
    const TMPFS: i64 = 0x0102_1994;
    const XFS: i64 = 0x5846_5342;
    const BTRFS: i64 = 0x9123_683E;
    nix::sys::statfs::statfs(src).is_ok_and(|f| [EXT4, TMPFS, XFS, BTRFS].contains(&f.filesystem_type().0))
}

/// `entry` with `opt` added to its options field.
fn with_option(entry: &str, opt: &str) -> String {
    let mut f: Vec<String> = entry.split(' ').map(String::from).collect();
    if f.len() > 3 {
        f[3] = format!("{},{opt}", f[3]);
    }
    f.join(" ")
}

/// Creates missing mount targets in the guest's rootfs, owned by the guest's
/// root: LXC would create them as the mapped root, which FUSE filesystems
/// such as zfs-fuse check by uid alone (no CAP_DAC_OVERRIDE in the user
/// namespace), failing in a read-only-mode directory. /dev is LXC's tmpfs.
pub fn precreate_targets(rootfs: &Path, pve: &PveConfig, shift: u32) -> Result<()> {
    for (k, v) in pve.lxc.iter().chain(pve.exec.lxc.iter()) {
        let Some(e) = MountEntry::parse(v).filter(|e| k == "lxc.mount.entry" && e.target() != "dev" && !e.target().starts_with("dev/")) else {
            continue;
        };
        let rel = Path::new(e.target());
        if rel.components().any(|c| !matches!(c, std::path::Component::Normal(_))) {
            continue;
        }
        let file = e.binds_file();
        let mut cur = rootfs.to_path_buf();
        let parts: Vec<_> = rel.components().collect();
        for (i, c) in parts.iter().enumerate() {
            cur.push(c);
            match std::fs::symlink_metadata(&cur) {
                Ok(m) if m.file_type().is_symlink() => break, // LXC resolves it in the guest
                Ok(_) => continue,
                Err(_) => {}
            }
            if i + 1 == parts.len() && file {
                std::fs::write(&cur, b"").with_context(|| format!("create mount target {}", cur.display()))?;
            } else {
                std::fs::create_dir(&cur).with_context(|| format!("create mount target {}", cur.display()))?;
            }
            std::os::unix::fs::lchown(&cur, Some(shift), Some(shift)).with_context(|| format!("chown {}", cur.display()))?;
        }
    }
    Ok(())
}

/// The mount points LXC itself needs in every rootfs (`/dev` for autodev,
/// `/proc` and `/sys` for `lxc.mount.auto`), made when missing and owned
/// by the guest's root (`shift`): a bundle rootfs may have none of them
/// (`runc spec` with only `/bin/busybox`), and LXC cannot create them in a
/// read-only root. runc too creates mount points in the rootfs.
pub fn base_dirs(rootfs: &Path, shift: u32) -> Result<()> {
    for d in ["dev", "proc", "sys"] {
        mkdir_in(rootfs, Path::new(d), shift)?;
    }
    Ok(())
}

/// Creates the missing directories of `rel` (relative) in `rootfs`, owned
/// by `shift` (the guest's root), mode 0755 — as runc makes a missing
/// `process.cwd`. Stops at a symlink (LXC resolves it in the guest) and
/// never leaves the rootfs.
pub fn mkdir_in(rootfs: &Path, rel: &Path, shift: u32) -> Result<()> {
    let mut cur = rootfs.to_path_buf();
    for c in rel.components() {
        let std::path::Component::Normal(c) = c else { continue };
        cur.push(c);
        match std::fs::symlink_metadata(&cur) {
            Ok(m) if m.file_type().is_symlink() => return Ok(()),
            Ok(_) => continue,
            Err(_) => {}
        }
        std::fs::create_dir(&cur).with_context(|| format!("create {}", cur.display()))?;
        std::os::unix::fs::lchown(&cur, Some(shift), Some(shift)).with_context(|| format!("chown {}", cur.display()))?;
    }
    Ok(())
}

/// Mount points under `<lxc_dir>/mounts`, deepest first (from mountinfo).
fn staged(lxc_dir: &Path) -> Vec<PathBuf> {
    let base = lxc_dir.join(DIR);
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut v: Vec<PathBuf> = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|m| PathBuf::from(m.replace("\\040", " ")))
        .filter(|m| m.starts_with(&base))
        .collect();
    v.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    v.dedup();
    v
}

/// Unmounts what `stage` mounted (after a crash too); fails if any stays,
/// so the LXC dir is never removed through a mount into the host.
pub fn unstage(lxc_dir: &Path) -> Result<()> {
    for m in staged(lxc_dir) {
        if let Err(e) = umount2(&m, MntFlags::MNT_DETACH) {
            tracing::warn!(mount = %m.display(), "cannot unmount staged source: {e}");
        }
    }
    let left = staged(lxc_dir);
    if !left.is_empty() {
        bail!("staged mounts still present under {}: {left:?}", lxc_dir.join(DIR).display());
    }
    Ok(())
}
