//! nexcage's LXC settings kept where Proxmox does not overwrite them.
//!
//! Every `pct start`, UI start, HA action, stop-mode backup and config PUT
//! makes PVE regenerate `<lxc_path>/<vmid>/config` from the guest's
//! `/etc/pve/lxc/<vmid>.conf` alone (PROXMOX-FACTS §2, §10). So nexcage's
//! rendered settings live in `<lxc_path>/<vmid>/nexcage.conf`, which PVE's
//! regeneration never writes (it writes `config` and `rules.seccomp`), and
//! which exists exactly as long as the guest (PVE's destroy and nexcage's
//! delete remove the dir). The guest's PVE config names it with one raw
//! `lxc.include:` line, which PVE appends after its own lines
//! (PROXMOX-FACTS §2 item 23), so a start by PVE gets nexcage's settings
//! too; nexcage's own start runs `lxc-execute -f nexcage.conf`, which
//! replaces whatever `config` holds (lxc-execute clears the loaded config
//! before loading the rcfile), so it never depends on what PVE rendered.
//!
//! Single-valued keys of the include win because they come last. For
//! lists LXC appends, the file first clears what PVE's base lines (and the
//! `common.conf`/`userns.conf` they include) may have set: an empty value
//! clears the list in LXC's confile.c (`lxc.cap.drop =` etc.); LXC also
//! refuses `lxc.cap.keep` next to a non-empty `lxc.cap.drop`.
//!
//! The raw line is written into the guest's file under PVE's config lock
//! with either driver (the API has no parameter for raw keys, PROXMOX-FACTS
//! §4): nexcage runs as root on the node (`driver::guestfile`).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use nexcage_config::Config;

/// The file name in `<lxc_path>/<vmid>`.
pub const FILE: &str = "nexcage.conf";

/// Keys whose values LXC collects into a list, cleared before nexcage's
/// own: capabilities, mounts, id maps, cgroup limits and device rules (v1
/// and v2), environment, AppArmor lines, hooks, networks, sysctls,
/// prlimits; `lxc.seccomp.profile` so that PVE's `rules.seccomp` does not
/// apply where the bundle has no profile.
const CLEARED: &[&str] = &[
    "lxc.cap.drop",
    "lxc.cap.keep",
    "lxc.mount.entry",
    "lxc.mount.auto",
    "lxc.idmap",
    "lxc.cgroup",
    "lxc.cgroup2",
    "lxc.environment",
    "lxc.apparmor.raw",
    "lxc.hook",
    "lxc.net",
    "lxc.sysctl",
    "lxc.prlimit",
    "lxc.seccomp.profile",
];

/// `<lxc_dir>/nexcage.conf`.
pub fn path(lxc_dir: &Path) -> PathBuf {
    lxc_dir.join(FILE)
}

/// The file's text: a header, the clears, then `rendered`.
fn text(rendered: &str) -> String {
    let mut s = String::from("# nexcage's LXC settings for this guest, included by its Proxmox config (lxc.include)\n");
    for k in CLEARED {
        s.push_str(k);
        s.push_str(" =\n");
    }
    s.push_str(rendered);
    s
}

/// Writes `<lxc_dir>/nexcage.conf` and an initial `<lxc_dir>/config` that
/// only includes it (what PVE renders later ends with the same include).
pub fn write(lxc_dir: &Path, rendered: &str) -> Result<()> {
    let own = path(lxc_dir);
    std::fs::write(&own, text(rendered)).with_context(|| format!("write {}", own.display()))?;
    let cfg = lxc_dir.join("config");
    std::fs::write(&cfg, format!("lxc.include = {}\n", own.display())).with_context(|| format!("write {}", cfg.display()))?;
    Ok(())
}

/// Adds `lxc.include: <lxc_dir>/nexcage.conf` as the last raw line of
/// guest `vmid`'s Proxmox config (once), under PVE's config lock.
pub fn reference(cfg: &Config, vmid: u32, lxc_dir: &Path) -> Result<()> {
    let files = nexcage_pve::driver::guest_files(cfg)?;
    let value = path(lxc_dir).display().to_string();
    files
        .edit(vmid, |c| {
            c.main.lxc.retain(|(k, v)| !(k == "lxc.include" && *v == value));
            c.main.lxc.push(("lxc.include".into(), value.clone()));
        })
        .with_context(|| format!("reference {FILE} from guest {vmid}'s Proxmox config"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clears_lists_before_the_settings() {
        let t = text("lxc.cap.keep = chown\n");
        assert!(t.starts_with("# nexcage"));
        let keep = t.find("lxc.cap.keep = chown").unwrap();
        for k in CLEARED {
            let clear = t.find(&format!("\n{k} =\n")).unwrap_or_else(|| panic!("{k} not cleared"));
            assert!(clear < keep);
        }
    }
}
