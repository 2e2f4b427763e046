//! `--port HOST:CONTAINER`: checked at create. Forwarding needs a bridged
//! guest with its own address; the native backend has no bridge (its
//! network is none, host or a named netns), so it is refused clearly.

use anyhow::{bail, Result};

use super::spec_edit::{parse_network, Network};

pub fn check(backend: &str, network: Option<&str>, ports: &[String]) -> Result<()> {
    if ports.is_empty() {
        return Ok(());
    }
    let net = network.map(parse_network).transpose()?;
    match (backend, net) {
        ("native", Some(Network::Host)) => bail!("--port: with --network host the container already uses the host's ports; drop --port"),
        ("native", _) => bail!("--port: the native backend has no bridged network to forward to (use --network host, or --backend proxmox with --network bridge=...)"),
        (_, Some(Network::Bridge(_))) => bail!("--port: forwarding to a bridged Proxmox guest is not implemented yet (nexcage does not know the guest's address)"),
        _ => bail!("--port needs --network bridge=BRIDGE"),
    }
}

/// The proxmox backend puts every guest with its own network namespace on
/// the configured `network.bridge` (DHCP): a per-container bridge or
/// `none` beside a configured bridge cannot be honoured, so say so.
pub fn check_proxmox_network(network: Option<&str>, cfg_bridge: Option<&str>) -> Result<()> {
    match (network.map(parse_network).transpose()?, cfg_bridge) {
        (Some(Network::Bridge(b)), Some(c)) if b == c => Ok(()),
        (Some(Network::Bridge(b)), c) => bail!(
            "--network bridge={b}: the proxmox backend attaches guests to the configured network.bridge ({}); set it with: nexcage config set network.bridge {b}",
            c.unwrap_or("none")
        ),
        (Some(Network::None), Some(c)) => bail!("--network none: the proxmox backend attaches every guest to network.bridge ({c}); per-container none is not supported yet"),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks() {
        assert!(check("native", Some("none"), &["80:80".into()]).is_err());
        assert!(check("native", None, &[]).is_ok());
        assert!(check_proxmox_network(Some("bridge=vmbr0"), Some("vmbr0")).is_ok());
        assert!(check_proxmox_network(Some("bridge=vmbr1"), Some("vmbr0")).is_err());
        assert!(check_proxmox_network(Some("none"), Some("vmbr0")).is_err());
        assert!(check_proxmox_network(Some("none"), None).is_ok());
        assert!(check_proxmox_network(Some("host"), Some("vmbr0")).is_ok());
    }
}
