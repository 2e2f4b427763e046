//! Which Proxmox VE the double plays: `DIR/version` holds the pve-manager
//! version on its first line (default 9.1.2) and, optionally, further
//! `package: version` lines overriding the package versions that come with
//! that release. The gates they drive are in PROXMOX-FACTS §10: plain
//! `.tar` templates need libpve-storage-perl ≥ 9.0.15, `entrypoint` needs
//! pve-container ≥ 6.0.15.

use crate::state::State;
use std::collections::BTreeMap;

pub const DEFAULT_MANAGER: &str = "9.1.2";

/// Package versions shipped with a pve-manager `major.minor` (the 9.1 set
/// is the one PROXMOX-FACTS was read from; the others are representative
/// releases of their series, before the §10 gates).
fn release_packages(manager: &str) -> [(&'static str, &'static str); 5] {
    let mm: Vec<&str> = manager.split('.').take(2).collect();
    match mm.as_slice() {
        ["9", "0"] => [
            ("proxmox-ve", "9.0.0"),
            ("pve-container", "6.0.9"),
            ("libpve-storage-perl", "9.0.13"),
            ("lxc-pve", "6.0.4-2"),
            ("pve-cluster", "9.0.6"),
        ],
        ["8", _] => [
            ("proxmox-ve", "8.4.0"),
            ("pve-container", "5.2.7"),
            ("libpve-storage-perl", "8.3.6"),
            ("lxc-pve", "6.0.0-1"),
            ("pve-cluster", "8.1.0"),
        ],
        _ => [
            ("proxmox-ve", "9.1.0"),
            ("pve-container", "6.1.10"),
            ("libpve-storage-perl", "9.1.7"),
            ("lxc-pve", "6.0.5-3"),
            ("pve-cluster", "9.0.7"),
        ],
    }
}

pub struct Versions {
    /// pve-manager version, e.g. `9.1.2`.
    pub manager: String,
    /// Package name -> version (`pve-manager` included).
    pub packages: BTreeMap<String, String>,
}

impl Versions {
    pub fn load(state: &State) -> Versions {
        let text = std::fs::read_to_string(state.dir.join("version")).unwrap_or_default();
        let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
        let manager = lines.next().unwrap_or(DEFAULT_MANAGER).to_string();
        let mut packages: BTreeMap<String, String> = release_packages(&manager)
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        packages.insert("pve-manager".into(), manager.clone());
        for l in lines {
            if let Some((k, v)) = l.split_once(':') {
                packages.insert(k.trim().to_string(), v.trim().to_string());
            }
        }
        Versions { manager, packages }
    }

    /// `x.y`, as `/version`'s `release`.
    pub fn release(&self) -> String {
        self.manager
            .split('.')
            .take(2)
            .collect::<Vec<_>>()
            .join(".")
    }

    /// Is package `name` at least `min` (numeric parts of `1.2.3-4`)?
    pub fn at_least(&self, name: &str, min: &str) -> bool {
        self.packages
            .get(name)
            .is_some_and(|v| numeric(v) >= numeric(min))
    }
}

fn numeric(v: &str) -> Vec<u64> {
    v.split(['.', '-', '~', '+'])
        .map(|p| p.parse().unwrap_or(0))
        .collect()
}

/// `pveversion [-v]` (pve-manager bin/pveversion): one line
/// `pve-manager/<ver>/<repoid> (running kernel: <uname -r>)`, or with `-v`
/// one `package: version` line per package.
pub fn pveversion(state: &State, verbose: bool) -> String {
    let v = Versions::load(state);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    if !verbose {
        return format!(
            "pve-manager/{}/{REPOID} (running kernel: {kernel})\n",
            v.manager
        );
    }
    let mut out = format!(
        "proxmox-ve: {} (running kernel: {kernel})\npve-manager: {} (running version: {}/{REPOID})\n",
        v.packages["proxmox-ve"], v.manager, v.manager
    );
    for (k, ver) in &v.packages {
        if k != "proxmox-ve" && k != "pve-manager" {
            out.push_str(&format!("{k}: {ver}\n"));
        }
    }
    out
}

pub const REPOID: &str = "5e1b6d3c";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compares_numerically() {
        assert!(numeric("9.0.15") > numeric("9.0.9"));
        assert!(numeric("6.1.10") >= numeric("6.0.15"));
        assert!(numeric("5.2.7") < numeric("6.0.15"));
    }
}
