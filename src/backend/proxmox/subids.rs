//! /etc/subuid and /etc/subgid: LXC's newuidmap/newgidmap only map ranges
//! delegated to root there (every Proxmox host has `root:100000:65536`).

use anyhow::{bail, Result};

/// Whether `text` (subuid format) gives root the ids `[base, base+count)`.
fn delegates(text: &str, base: u32, count: u32) -> bool {
    let end = u64::from(base) + u64::from(count);
    text.lines().any(|l| {
        let f: Vec<&str> = l.trim().split(':').collect();
        let (Some(s), Some(n)) = (f.get(1).and_then(|x| x.parse::<u64>().ok()), f.get(2).and_then(|x| x.parse::<u64>().ok())) else {
            return false;
        };
        matches!(f[0], "root" | "0") && s <= u64::from(base) && s + n >= end
    })
}

/// Fails with what to add when root may not map the unprivileged range.
pub fn check_root_range(base: u32, count: u32) -> Result<()> {
    for f in ["/etc/subuid", "/etc/subgid"] {
        let text = std::fs::read_to_string(f).unwrap_or_default();
        if !delegates(&text, base, count) {
            bail!("unprivileged guests need root:{base}:{count} in {f} (as on every Proxmox host), or set unprivileged: false in nexcage's config");
        }
    }
    Ok(())
}

/// The spec's own id mappings (`linux.uidMappings`/`gidMappings`: host
/// id, size) must be delegated to root too: LXC writes them through
/// newuidmap/newgidmap, which refuse anything else.
pub fn check_spec_maps(uid: &[(u32, u32)], gid: &[(u32, u32)]) -> Result<()> {
    for (field, file, maps) in [("linux.uidMappings", "/etc/subuid", uid), ("linux.gidMappings", "/etc/subgid", gid)] {
        let text = std::fs::read_to_string(file).unwrap_or_default();
        if let Some((host, size)) = maps.iter().find(|(h, n)| !delegates(&text, *h, *n)) {
            bail!("{field}: host ids {host}..{} are not delegated to root in {file} (LXC maps them with new{}idmap): add root:{host}:{size} there", u64::from(*host) + u64::from(*size) - 1, &field[6..7]);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::delegates;

    #[test]
    fn ranges() {
        assert!(delegates("root:100000:65536\n", 100000, 65536));
        assert!(delegates("lxc:1:2\nroot:0:4294967295\n", 100000, 65536));
        assert!(!delegates("root:100000:1000\n", 100000, 65536));
        assert!(!delegates("user:100000:65536\n", 100000, 65536));
        assert!(!delegates("", 100000, 65536));
    }
}
