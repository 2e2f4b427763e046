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
