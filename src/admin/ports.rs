//! `--network`/`--port` on the proxmox backend: what it can honour today.
//! Its guests with a network namespace get `net0` on the configured
//! `network.bridge` (DHCP); per-container addresses, named networks and
//! published ports are the native backend's (src/network).

use anyhow::{bail, Result};

use crate::network::{option, Network};

pub fn check_proxmox_network(network: Option<&str>, ports: &[String], cfg_bridge: Option<&str>) -> Result<()> {
    if !ports.is_empty() {
        bail!("--port: publishing ports of a Proxmox guest is not implemented yet (use --backend native)");
    }
    match (network.map(option::parse).transpose()?, cfg_bridge) {
        (Some(Network::Bridge(b)), Some(c)) if b.bridge == c && b == (option::BridgeOpts { bridge: b.bridge.clone(), ..Default::default() }) => Ok(()),
        (Some(Network::Bridge(b)), Some(c)) if b.bridge == c => {
            bail!("--network bridge={c},...: the proxmox backend does not take ip=, gw=, hwaddr=, mtu=, tag=, name= or firewall= yet (use --backend native)")
        }
        (Some(Network::Bridge(b)), c) => bail!(
            "--network bridge={}: the proxmox backend attaches guests to the configured network.bridge ({}); set it with: nexcage config set network.bridge {}",
            b.bridge, c.unwrap_or("none"), b.bridge
        ),
        (Some(Network::Custom(n)), _) => bail!("--network custom={n}: named networks are not implemented for the proxmox backend yet (use --backend native)"),
        (Some(Network::None), Some(c)) => bail!("--network none: the proxmox backend attaches every guest to network.bridge ({c}); per-container none is not supported yet"),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks() {
        assert!(check_proxmox_network(Some("bridge=vmbr0"), &[], Some("vmbr0")).is_ok());
        assert!(check_proxmox_network(Some("bridge=vmbr0"), &["80:80".into()], Some("vmbr0")).is_err());
        assert!(check_proxmox_network(Some("bridge=vmbr0,ip=10.0.0.2/24"), &[], Some("vmbr0")).is_err());
        assert!(check_proxmox_network(Some("bridge=vmbr1"), &[], Some("vmbr0")).is_err());
        assert!(check_proxmox_network(Some("none"), &[], Some("vmbr0")).is_err());
        assert!(check_proxmox_network(Some("none"), &[], None).is_ok());
        assert!(check_proxmox_network(Some("host"), &[], Some("vmbr0")).is_ok());
    }
}
