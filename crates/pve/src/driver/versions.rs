//! The versions a node runs and what nexcage may ask of it. The gates are
//! PROXMOX-FACTS §10 ("Create on a real node"): plain `.tar` templates are
//! accepted from libpve-storage-perl 9.0.15, the `entrypoint` option (and
//! `env`, added with it) exists from pve-container 6.0.15.

use super::PveError;
use serde::{Deserialize, Serialize};

/// The oldest pve-manager nexcage drives (`major.minor`). Older releases
/// are refused by name ([`PveError::UnsupportedVersion`]).
pub const MIN_PVE_VERSION: (u32, u32) = (8, 0);

/// libpve-storage-perl from which a plain `.tar` template parses.
pub const PLAIN_TAR_STORAGE: &str = "9.0.15";

/// pve-container from which `entrypoint` and `env` are guest options.
pub const ENTRYPOINT_CONTAINER: &str = "6.0.15";

/// pve-manager release whose packages are past both gates (9.1 ships
/// pve-container 6.1 and libpve-storage-perl 9.1, PROXMOX-FACTS §10): used
/// when the package versions cannot be read (the API without `apt`).
const GATES_MET_MANAGER: &str = "9.1";

/// Versions of the node's Proxmox packages, as `pveversion -v` prints them
/// (`pve-manager: 9.1.2 (running version: …)`, `pve-container: 6.1.10`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeVersions {
    /// pve-manager, e.g. `9.1.2`.
    pub manager: String,
    /// libpve-storage-perl, when known.
    pub storage: Option<String>,
    /// pve-container, when known.
    pub container: Option<String>,
}

/// The empty template's archive format (what `pct create` unpacks).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TemplateFormat {
    /// Plain `.tar` (libpve-storage-perl >= 9.0.15 only).
    Tar,
    /// gzip-compressed `.tar.gz`: every supported release reads it.
    TarGz,
}

impl TemplateFormat {
    /// The template's file name in the storage's `vztmpl` content.
    pub fn file_name(self) -> &'static str {
        match self {
            TemplateFormat::Tar => "nexcage-empty.tar",
            TemplateFormat::TarGz => "nexcage-empty.tar.gz",
        }
    }
}

/// Numeric parts of a Debian-style version (`9.0.15`, `6.0.0-1`, `8.3.6~bpo`);
/// a non-numeric part counts as 0.
fn numeric(v: &str) -> Vec<u64> {
    v.split(['.', '-', '~', '+'])
        .map(|p| {
            let digits: String = p.chars().take_while(char::is_ascii_digit).collect();
            digits.parse().unwrap_or(0)
        })
        .collect()
}

/// Whether version `v` is `min` or newer (numeric, part by part; missing
/// parts are 0, so `9.1` >= `9.1.0`).
pub fn at_least(v: &str, min: &str) -> bool {
    let (mut a, mut b) = (numeric(v), numeric(min));
    let n = a.len().max(b.len());
    a.resize(n, 0);
    b.resize(n, 0);
    a >= b
}

impl NodeVersions {
    /// Only pve-manager's version is known (GET /version).
    pub fn from_manager(manager: &str) -> NodeVersions {
        NodeVersions {
            manager: manager.to_string(),
            storage: None,
            container: None,
        }
    }

    /// Parses `pveversion -v` (pve-manager bin/pveversion): one
    /// `package: version [(…)]` line per package. `None` without a
    /// `pve-manager` line.
    pub fn parse_pveversion(text: &str) -> Option<NodeVersions> {
        let get = |name: &str| {
            text.lines().find_map(|l| {
                let (k, v) = l.split_once(':')?;
                (k.trim() == name)
                    .then(|| v.split_whitespace().next().map(str::to_string))
                    .flatten()
            })
        };
        Some(NodeVersions {
            manager: get("pve-manager")?,
            storage: get("libpve-storage-perl"),
            container: get("pve-container"),
        })
    }

    /// Refuses releases older than [`MIN_PVE_VERSION`], naming both.
    pub fn check_supported(&self) -> Result<(), PveError> {
        let min = format!("{}.{}", MIN_PVE_VERSION.0, MIN_PVE_VERSION.1);
        let numeric_major = self
            .manager
            .split('.')
            .next()
            .is_some_and(|m| !m.is_empty() && m.bytes().all(|b| b.is_ascii_digit()));
        if numeric_major && at_least(&self.manager, &min) {
            return Ok(());
        }
        Err(PveError::UnsupportedVersion {
            version: self.manager.clone(),
            minimum: min,
        })
    }

    /// `package` at least `min`; an unknown package version is judged by
    /// pve-manager's release (>= 9.1 meets every gate).
    fn package_at_least(&self, package: Option<&str>, min: &str) -> bool {
        match package {
            Some(v) => at_least(v, min),
            None => at_least(&self.manager, GATES_MET_MANAGER),
        }
    }

    /// Whether a plain `.tar` template parses (libpve-storage-perl >= 9.0.15).
    pub fn plain_tar(&self) -> bool {
        self.package_at_least(self.storage.as_deref(), PLAIN_TAR_STORAGE)
    }

    /// Whether `entrypoint` and `env` are guest options (pve-container >= 6.0.15).
    pub fn entrypoint(&self) -> bool {
        self.package_at_least(self.container.as_deref(), ENTRYPOINT_CONTAINER)
    }

    /// The template format this node reads: plain `.tar` where it can,
    /// else `.tar.gz`.
    pub fn template_format(&self) -> TemplateFormat {
        if self.plain_tar() {
            TemplateFormat::Tar
        } else {
            TemplateFormat::TarGz
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compares_versions_numerically() {
        assert!(at_least("9.0.15", "9.0.15"));
        assert!(at_least("9.0.16", "9.0.15"));
        assert!(at_least("9.1.7", "9.0.15"));
        assert!(!at_least("9.0.9", "9.0.15"));
        assert!(!at_least("8.3.6", "9.0.15"));
        assert!(at_least("6.1.10", "6.0.15"));
        assert!(!at_least("6.0.9", "6.0.15"));
        assert!(at_least("9.1", "9.1.0"));
        assert!(at_least("6.0.0-1", "6.0.0"));
        assert!(!at_least("7.4-3", "8.0"));
    }

    #[test]
    fn parses_pveversion() {
        let out = "proxmox-ve: 8.4.0 (running kernel: 6.8.12-9-pve)\n\
                   pve-manager: 8.4.1 (running version: 8.4.1/2a5fa54a8503f96d)\n\
                   libpve-storage-perl: 8.3.6\npve-container: 5.2.7\n";
        let v = NodeVersions::parse_pveversion(out).unwrap();
        assert_eq!(v.manager, "8.4.1");
        assert_eq!(v.storage.as_deref(), Some("8.3.6"));
        assert_eq!(v.container.as_deref(), Some("5.2.7"));
        assert!(NodeVersions::parse_pveversion("pve-container: 6.1.10\n").is_none());
    }

    #[test]
    fn chooses_template_format_and_options() {
        let v = |m: &str, s: Option<&str>, c: Option<&str>| NodeVersions {
            manager: m.into(),
            storage: s.map(Into::into),
            container: c.map(Into::into),
        };
        // PVE 8.4: compressed template, no entrypoint.
        let pve84 = v("8.4.1", Some("8.3.6"), Some("5.2.7"));
        assert_eq!(pve84.template_format(), TemplateFormat::TarGz);
        assert!(!pve84.entrypoint());
        // PVE 9.0 before the gates.
        let pve90 = v("9.0.3", Some("9.0.13"), Some("6.0.9"));
        assert_eq!(pve90.template_format(), TemplateFormat::TarGz);
        assert!(!pve90.entrypoint());
        // Past both gates.
        let pve91 = v("9.1.2", Some("9.1.7"), Some("6.1.10"));
        assert_eq!(pve91.template_format(), TemplateFormat::Tar);
        assert!(pve91.entrypoint());
        // Packages unknown: judged by the release.
        assert_eq!(
            NodeVersions::from_manager("9.1.2").template_format(),
            TemplateFormat::Tar
        );
        assert_eq!(
            NodeVersions::from_manager("9.0.5").template_format(),
            TemplateFormat::TarGz
        );
        assert!(!NodeVersions::from_manager("8.4.1").entrypoint());
        assert_eq!(TemplateFormat::TarGz.file_name(), "nexcage-empty.tar.gz");
    }

    #[test]
    fn refuses_old_releases_by_name() {
        assert!(NodeVersions::from_manager("8.0.4")
            .check_supported()
            .is_ok());
        assert!(NodeVersions::from_manager("9.1.2")
            .check_supported()
            .is_ok());
        for old in ["7.4-3", "7.4.17", "", "x"] {
            let e = NodeVersions::from_manager(old)
                .check_supported()
                .unwrap_err()
                .to_string();
            assert!(e.contains("needs pve-manager 8.0 or newer"), "{e}");
            assert!(e.contains(&format!("Proxmox VE {old} ")), "{e}");
        }
    }
}
