//! `--network none` on the proxmox backend: its guests with a network
//! namespace of their own get `net0` on the configured `network.bridge`
//! (DHCP) unless `--network` names their own (src/network), so a
//! loopback-only guest cannot be had beside a configured bridge yet.

use anyhow::{bail, Result};

use crate::network::{option, Network};

pub fn check_proxmox_network(network: Option<&str>, cfg_bridge: Option<&str>) -> Result<()> {
    match (network.map(option::parse).transpose()?, cfg_bridge) {
        (Some(Network::None), Some(c)) => bail!("--network none: the proxmox backend attaches every guest to network.bridge ({c}); per-container none is not supported yet"),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks() {
        assert!(check_proxmox_network(Some("bridge=vmbr1,ip=10.0.0.2/24"), Some("vmbr0")).is_ok());
        assert!(check_proxmox_network(Some("none"), Some("vmbr0")).is_err());
        assert!(check_proxmox_network(Some("none"), None).is_ok());
        assert!(check_proxmox_network(Some("host"), Some("vmbr0")).is_ok());
    }
}
