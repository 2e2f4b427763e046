//! nexcage's LXC settings kept where Proxmox does not overwrite them.
//!
//! Every `pct start`, UI start, HA action, stop-mode backup and config PUT
//! makes PVE regenerate `<lxc_path>/<vmid>/config` from the guest's
//! `/etc/pve/lxc/<vmid>.conf` alone (PROXMOX-FACTS §2, §10). So nexcage's
//! rendered settings live in `<lxc_path>/<vmid>/nexcage.conf`, which PVE's
//! regeneration never writes (it writes `config` and `rules.seccomp`), and
//! which exists exactly as long as the guest (PVE's destroy and nexcage's
//! delete remove the dir). The guest's PVE config names it with one raw
//! `lxc.include:` line (and the id map as raw `lxc.idmap:` lines, see
//! [`Rendered`]), which PVE appends after its own lines (PROXMOX-FACTS §2
//! item 23), so a start from PVE's `config` gets nexcage's settings too;
//! nexcage's holder starts the guest from `nexcage-start.conf` (the id
//! map + the include) after liblxc's `clear_config`, so it never depends
//! on what PVE rendered. `config` must still parse: liblxc loads it first.
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
/// own (the id map is not here, see [`Rendered`]): capabilities, mounts, cgroup limits and device rules (v1
/// and v2), environment, AppArmor lines, hooks, networks, sysctls,
/// prlimits; `lxc.seccomp.profile` so that PVE's `rules.seccomp` does not
/// apply where the bundle has no profile; PVE's fixed cgroup dirs
/// (`lxc/<vmid>`, which a stale cgroup of an earlier run blocks) so the
/// guest gets LXC's own layout (`lxc.payload.<vmid>`) whoever starts it.
const CLEARED: &[&str] = &[
    "lxc.cap.drop",
    "lxc.cap.keep",
    "lxc.mount.entry",
    "lxc.mount.auto",
    "lxc.cgroup",
    "lxc.cgroup2",
    "lxc.environment",
    "lxc.apparmor.raw",
    "lxc.hook",
    "lxc.net",
    "lxc.sysctl",
    "lxc.prlimit",
    "lxc.seccomp.profile",
    "lxc.cgroup.dir.monitor",
    "lxc.cgroup.dir.container",
    "lxc.cgroup.dir.container.inner",
];

/// `<lxc_dir>/nexcage.conf`.
pub fn path(lxc_dir: &Path) -> PathBuf {
    lxc_dir.join(FILE)
}

/// `<lxc_dir>/nexcage-start.conf`: what nexcage's holder starts the guest
/// from: the id map, then `lxc.include` of `nexcage.conf`.
pub fn start_path(lxc_dir: &Path) -> PathBuf {
    lxc_dir.join(START_FILE)
}

const START_FILE: &str = "nexcage-start.conf";

/// nexcage's rendered config split in two: the `lxc.idmap` values and
/// everything else.
///
/// The id map is kept out of `nexcage.conf`: LXC 5 cannot replace a map
/// it has already read (`lxc.idmap =` frees the entries but keeps its
/// pointers to the root ids', so the next start fails in
/// `chown_cgroup_wrapper`, "Failed to setresgid(0, 0, 0)"). The map goes
/// into the guest's Proxmox config instead, as raw `lxc.idmap` lines,
/// with which PVE renders no map of its own (PROXMOX-FACTS §2 item 12)
/// and appends these last.
pub struct Rendered {
    pub settings: String,
    pub idmap: Vec<String>,
}

impl Rendered {
    pub fn split(text: &str) -> Rendered {
        let mut settings = String::new();
        let mut idmap = Vec::new();
        for line in text.lines() {
            match line.split_once(" = ") {
                Some(("lxc.idmap", v)) => idmap.push(v.to_string()),
                _ => {
                    settings.push_str(line);
                    settings.push('\n');
                }
            }
        }
        Rendered { settings, idmap }
    }
}

/// The `nexcage.conf` text: a header, the clears, then the settings.
fn text(settings: &str) -> String {
    let mut s = String::from("# nexcage's LXC settings for this guest, included by its Proxmox config (lxc.include)\n");
    for k in CLEARED {
        s.push_str(k);
        s.push_str(" =\n");
    }
    s.push_str(settings);
    s
}

/// Writes `nexcage.conf`, `nexcage-start.conf` and an initial `config`
/// (the same as `nexcage-start.conf`; PVE rewrites it later) in `lxc_dir`.
pub fn write(lxc_dir: &Path, r: &Rendered) -> Result<()> {
    let own = path(lxc_dir);
    std::fs::write(&own, text(&r.settings)).with_context(|| format!("write {}", own.display()))?;
    let mut start: String = r.idmap.iter().map(|m| format!("lxc.idmap = {m}\n")).collect();
    start.push_str(&format!("lxc.include = {}\n", own.display()));
    for f in [start_path(lxc_dir), lxc_dir.join("config")] {
        std::fs::write(&f, &start).with_context(|| format!("write {}", f.display()))?;
    }
    Ok(())
}

/// With `cores` set PVE appends `lxc.cgroup[2].cpuset.cpus = <random
/// subset>` after every raw line, i.e. after the include, unless a raw
/// line of this key exists (PROXMOX-FACTS §2 item 24, LXC.pm
/// `update_lxc_config`). nexcage writes one, before the include, whose
/// `lxc.cgroup2 =` clears it again: the bundle's cpuset (in the include)
/// holds whoever starts the guest.
const PVE_CPUSET_KEY: &str = "lxc.cgroup2.cpuset.cpus";

/// The host's online CPUs (`/sys/devices/system/cpu/online`, e.g. `0-3`).
fn online_cpus() -> String {
    std::fs::read_to_string("/sys/devices/system/cpu/online").map(|s| s.trim().to_string()).ok().filter(|s| !s.is_empty()).unwrap_or_else(|| "0".into())
}

/// Makes guest `vmid`'s Proxmox config end with `lxc.include:
/// <lxc_dir>/nexcage.conf` and the `lxc.idmap:` lines of `r`, preceded by
/// a raw cpuset (see [`PVE_CPUSET_KEY`]), under PVE's config lock (earlier
/// copies of these lines are replaced).
pub fn reference(cfg: &Config, vmid: u32, lxc_dir: &Path, r: &Rendered) -> Result<()> {
    let files = nexcage_pve::driver::guest_files(cfg)?;
    let value = path(lxc_dir).display().to_string();
    files
        .edit(vmid, |c| {
            c.main.lxc.retain(|(k, v)| !(k == "lxc.idmap" || k == PVE_CPUSET_KEY || (k == "lxc.include" && *v == value)));
            c.main.lxc.push((PVE_CPUSET_KEY.into(), online_cpus()));
            c.main.lxc.push(("lxc.include".into(), value.clone()));
            c.main.lxc.extend(r.idmap.iter().map(|m| ("lxc.idmap".to_string(), m.clone())));
        })
        .with_context(|| format!("reference {FILE} from guest {vmid}'s Proxmox config"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clears_lists_before_the_settings() {
        let r = Rendered::split("lxc.idmap = u 0 100000 65536\nlxc.cap.keep = chown\nlxc.idmap = g 0 100000 65536\n");
        assert_eq!(r.idmap, ["u 0 100000 65536", "g 0 100000 65536"]);
        let t = text(&r.settings);
        assert!(!t.contains("idmap"));
        assert!(t.starts_with("# nexcage"));
        let keep = t.find("lxc.cap.keep = chown").unwrap();
        for k in CLEARED {
            let clear = t.find(&format!("\n{k} =\n")).unwrap_or_else(|| panic!("{k} not cleared"));
            assert!(clear < keep);
        }
    }
}
