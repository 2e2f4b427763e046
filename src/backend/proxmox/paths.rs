//! `root.readonly`, `linux.maskedPaths` and `linux.readonlyPaths` as LXC
//! mount entries, applied after LXC's own mounts (proc and sys come from
//! `lxc.mount.auto`, before any entry):
//!
//! * masked: `/dev/null` bound over a file, an empty read-only tmpfs over a
//!   directory (what runc does);
//! * read-only: the path bound onto itself read-only. /proc has no host
//!   path for the guest's own instance, but the read-only paths runc uses
//!   there (/proc/bus, /proc/fs, /proc/irq, /proc/sysrq-trigger) are not
//!   namespaced, so the host's are bound; /proc/sys is already read-only
//!   under `proc:mixed`.
//!
//! Every entry is `optional`: a path the guest lacks is skipped, as runc does.

use std::path::Path;

use nexcage_pve::mapping::PveConfig;

/// Where a guest path is on the host: /proc and /sys as the host's (same
/// kernel), everything else in the guest's rootfs.
fn host_view(rootfs: &Path, p: &str) -> std::path::PathBuf {
    if p == "/proc" || p.starts_with("/proc/") || p == "/sys" || p.starts_with("/sys/") {
        p.into()
    } else {
        rootfs.join(p.trim_start_matches('/'))
    }
}

fn clean(p: &str) -> Option<&str> {
    let rel = p.strip_prefix('/')?;
    let ok = !rel.is_empty() && !rel.contains(' ') && rel.split('/').all(|c| !c.is_empty() && c != "." && c != "..");
    ok.then_some(rel)
}

/// `lxc.mount.entry` values for the masked and read-only paths of `pve`.
pub fn entries(rootfs: &Path, pve: &PveConfig) -> Vec<String> {
    let mut out = Vec::new();
    for p in &pve.exec.masked_paths {
        let Some(rel) = clean(p) else { continue };
        match std::fs::symlink_metadata(host_view(rootfs, p)) {
            Ok(m) if m.is_dir() => out.push(format!("tmpfs {rel} tmpfs ro,nosuid,nodev,noexec,size=0,optional 0 0")),
            Ok(m) if !m.file_type().is_symlink() => out.push(format!("/dev/null {rel} none bind,optional 0 0")),
            _ => {}
        }
    }
    for p in &pve.exec.readonly_paths {
        let Some(rel) = clean(p) else { continue };
        if p == "/proc/sys" || p.starts_with("/proc/sys/") || p.starts_with("/sys") {
            continue; // proc:mixed and the spec's read-only sysfs already make these read-only
        }
        let src = host_view(rootfs, p);
        if std::fs::symlink_metadata(&src).is_ok_and(|m| !m.file_type().is_symlink()) {
            out.push(format!("{} {rel} none bind,ro,optional 0 0", src.display()));
        }
    }
    out
}

/// Whether the spec asks for a read-only rootfs (`rootfs: …,ro=1`).
pub fn readonly_root(pve: &PveConfig) -> bool {
    pve.keys.get("rootfs").is_some_and(|r| r.split(',').any(|o| o == "ro=1"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_and_readonly() {
        let root = std::env::temp_dir().join(format!("nx-paths-{}", std::process::id()));
        std::fs::create_dir_all(root.join("etc/dir")).unwrap();
        std::fs::write(root.join("etc/secret"), "x").unwrap();
        let mut pve = PveConfig::default();
        pve.exec.masked_paths = vec!["/proc/uptime".into(), "/proc/scsi-missing".into(), "/etc/secret".into(), "/etc/dir".into(), "/../x".into()];
        pve.exec.readonly_paths = vec!["/proc/sys".into(), "/proc/irq".into(), "/etc".into()];
        pve.keys.insert("rootfs".into(), "local-zfs:subvol-1-disk-0,size=1G,ro=1".into());
        let e = entries(&root, &pve);
        assert_eq!(
            e,
            vec![
                "/dev/null proc/uptime none bind,optional 0 0".to_string(),
                "/dev/null etc/secret none bind,optional 0 0".to_string(),
                "tmpfs etc/dir tmpfs ro,nosuid,nodev,noexec,size=0,optional 0 0".to_string(),
                "/proc/irq proc/irq none bind,ro,optional 0 0".to_string(),
                format!("{} etc none bind,ro,optional 0 0", root.join("etc").display()),
            ]
        );
        assert!(readonly_root(&pve));
        std::fs::remove_dir_all(&root).unwrap();
    }
}
