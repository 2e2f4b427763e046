//! `net.ipv4.conf.<bridge>.route_localnet`: lets the node's own traffic to
//! 127.0.0.1:HOSTPORT, DNAT-ed to a container, leave through the bridge
//! (the kernel refuses to route a 127.0.0.0/8 source out of any other
//! interface otherwise; Docker sets it the same way when its userland
//! proxy is off). Only the bridge of a container with published ports;
//! nft.rs records whether nexcage turned it on, and turns it off with the
//! last such container. The sysctl is per network namespace, like the nft
//! table.

use std::path::PathBuf;

use thiserror::Error;

#[derive(Debug, Error)]
#[error("{path}: {source}")]
pub struct LocalnetError {
    pub path: String,
    pub source: std::io::Error,
}

fn path(bridge: &str) -> PathBuf {
    PathBuf::from(format!("/proc/sys/net/ipv4/conf/{bridge}/route_localnet"))
}

/// Whether `route_localnet` is on for `bridge`.
pub fn get(bridge: &str) -> Result<bool, LocalnetError> {
    let p = path(bridge);
    let v = std::fs::read_to_string(&p).map_err(|source| LocalnetError { path: p.display().to_string(), source })?;
    Ok(v.trim() != "0")
}

/// Sets `route_localnet` of `bridge` to 1 (`on`) or 0.
pub fn set(bridge: &str, on: bool) -> Result<(), LocalnetError> {
    let p = path(bridge);
    tracing::info!("{}={}", p.display(), u8::from(on));
    std::fs::write(&p, if on { "1" } else { "0" }).map_err(|source| LocalnetError { path: p.display().to_string(), source })
}
