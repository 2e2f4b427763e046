//! `linux.devices` in a guest: LXC cannot `mknod` in an unprivileged
//! guest (nor would the guest's root be allowed to), so create makes each
//! node on the host, in `<lxc_dir>/devices/<n>`, with the spec's type,
//! numbers and mode, owned by the spec's uid/gid as the host sees them
//! through the guest's id map, and binds it in with an `lxc.mount.entry`
//! (LXC's way of passing a host device into a guest). Opening it still
//! needs the device cgroup to allow it (`linux.resources.devices`, as
//! under runc). The dir goes with the LXC dir.

use std::path::Path;

use anyhow::{bail, Context, Result};
use nexcage_pve::mapping::{DeviceNode, PveConfig};
use nix::sys::stat::{makedev, mknod, Mode, SFlag};

/// Makes the nodes of `pve.exec.devices` under `<lxc_dir>/devices` and
/// returns their `lxc.mount.entry` values.
pub fn make(lxc_dir: &Path, pve: &PveConfig) -> Result<Vec<String>> {
    let maps = IdMaps::of(pve);
    let dir = lxc_dir.join("devices");
    let mut entries = Vec::new();
    for (n, d) in pve.exec.devices.iter().enumerate() {
        std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
        let node = dir.join(n.to_string());
        let kind = match d.kind {
            'b' => SFlag::S_IFBLK,
            'p' => SFlag::S_IFIFO,
            _ => SFlag::S_IFCHR,
        };
        mknod(&node, kind, Mode::from_bits_truncate(0o600), makedev(d.major, d.minor)).with_context(|| format!("linux.devices: cannot make {} ({}) as {}", d.path, describe(d), node.display()))?;
        let (uid, gid) = (maps.host('u', d.uid, &d.path)?, maps.host('g', d.gid, &d.path)?);
        std::os::unix::fs::lchown(&node, Some(uid), Some(gid)).with_context(|| format!("chown {}", node.display()))?;
        nix::sys::stat::fchmodat(None, &node, Mode::from_bits_truncate(d.file_mode), nix::sys::stat::FchmodatFlags::FollowSymlink).with_context(|| format!("chmod {}", node.display()))?;
        entries.push(format!("{} {} none bind,create=file 0 0", node.display(), d.path.trim_start_matches('/')));
    }
    Ok(entries)
}

fn describe(d: &DeviceNode) -> String {
    format!("{} {}:{}", d.kind, d.major, d.minor)
}

/// The guest's id map (`lxc.idmap` lines: `u|g <guest> <host> <count>`);
/// empty for a privileged guest (ids are the host's).
struct IdMaps(Vec<(char, u32, u32, u32)>);

impl IdMaps {
    fn of(pve: &PveConfig) -> IdMaps {
        let lines = pve.lxc.iter().chain(pve.exec.lxc.iter()).filter(|(k, _)| k == "lxc.idmap");
        IdMaps(
            lines
                .filter_map(|(_, v)| {
                    let f: Vec<&str> = v.split_whitespace().collect();
                    let n = |i: usize| f.get(i).and_then(|s| s.parse::<u32>().ok());
                    Some((f.first()?.chars().next()?, n(1)?, n(2)?, n(3)?))
                })
                .collect(),
        )
    }

    /// The host id of guest id `id` (`kind` `u` or `g`).
    fn host(&self, kind: char, id: u32, path: &str) -> Result<u32> {
        if self.0.is_empty() {
            return Ok(id);
        }
        match self.0.iter().find(|(k, guest, _, count)| *k == kind && id >= *guest && id - guest < *count) {
            Some((_, guest, host, _)) => Ok(host + (id - guest)),
            None => bail!("linux.devices: {} {kind}id {id} is not mapped into the guest's user namespace", path),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_go_through_the_guest_map() {
        let mut pve = PveConfig::default();
        pve.exec.lxc.push(("lxc.idmap".into(), "u 0 100000 65536".into()));
        pve.lxc.push(("lxc.idmap".into(), "g 0 200000 65536".into()));
        let m = IdMaps::of(&pve);
        assert_eq!(m.host('u', 1000, "/dev/x").unwrap(), 101000);
        assert_eq!(m.host('g', 1001, "/dev/x").unwrap(), 201001);
        assert!(m.host('u', 70000, "/dev/x").is_err());
        assert_eq!(IdMaps::of(&PveConfig::default()).host('u', 5, "/dev/x").unwrap(), 5);
    }
}
