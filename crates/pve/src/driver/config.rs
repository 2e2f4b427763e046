//! Building the configured driver from nexcage's configuration.

use super::api::{ApiDriver, ApiOptions, Auth};
use super::guestfile::GuestFiles;
use super::pct::{PctDriver, PctOptions};
use super::{ControlPlane, PveError};
use nexcage_config::{Config, Driver};

/// This node's name: `proxmox.node`, else the kernel hostname.
pub fn node_name(cfg: &Config) -> Result<String, PveError> {
    if let Some(n) = &cfg.proxmox.node {
        return Ok(n.clone());
    }
    let h =
        std::fs::read_to_string("/proc/sys/kernel/hostname").map_err(|source| PveError::Io {
            call: "read /proc/sys/kernel/hostname".into(),
            source,
        })?;
    // Proxmox uses the short hostname as node name.
    Ok(h.trim().split('.').next().unwrap_or_default().to_string())
}

/// API credentials, in order: `proxmox.token_file`, the `api` token
/// fields, `proxmox.username` + `password`.
pub fn auth(cfg: &Config) -> Result<(Auth, Vec<String>), PveError> {
    if let Some(path) = &cfg.proxmox.token_file {
        let (id, secret, warnings) =
            nexcage_config::read_token_file(path).map_err(|e| PveError::Config(e.to_string()))?;
        return Ok((Auth::Token { id, secret }, warnings));
    }
    if let Some((id, secret)) = cfg.api_token() {
        return Ok((Auth::Token { id, secret }, vec![]));
    }
    match (&cfg.proxmox.username, &cfg.proxmox.password) {
        (Some(u), Some(p)) => Ok((Auth::Password { username: u.clone(), password: p.clone() }, vec![])),
        _ => Err(PveError::Config(
            "proxmox.driver is \"api\" but no credentials are set (proxmox.token_file, api.username/token_name/token_value, or proxmox.username/password)".into(),
        )),
    }
}

/// The node's guest config files (`proxmox.pve_root`, `proxmox.lock_dir`,
/// defaults `/etc/pve`, `/run/lock/lxc`).
pub fn guest_files(cfg: &Config) -> Result<GuestFiles, PveError> {
    let mut f = GuestFiles::new(&node_name(cfg)?);
    if let Some(p) = &cfg.proxmox.pve_root {
        f.pve_root = p.clone();
    }
    if let Some(p) = &cfg.proxmox.lock_dir {
        f.lock_dir = p.clone();
    }
    Ok(f)
}

/// The driver `proxmox.driver` selects, plus warnings for the caller to log.
pub fn from_config(cfg: &Config) -> Result<(Box<dyn ControlPlane>, Vec<String>), PveError> {
    let node = node_name(cfg)?;
    match cfg.driver() {
        Driver::Pct => {
            let files = guest_files(cfg)?;
            let mut o = PctOptions::new(&node);
            o.pve_root = files.pve_root;
            o.lock_dir = files.lock_dir;
            Ok((Box::new(PctDriver::new(o)), vec![]))
        }
        Driver::Api => {
            let (auth, warnings) = auth(cfg)?;
            let mut o = ApiOptions::new(&cfg.api_host(), cfg.api_port(), &node, auth);
            o.fingerprint = cfg.fingerprint_bytes();
            Ok((Box::new(ApiDriver::new(o)?), warnings))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_driver_and_credentials() {
        let c = nexcage_config::parse_str(
            r#"{"proxmox":{"node":"pve1","driver":"pct"}}"#,
            "x".as_ref(),
        )
        .unwrap();
        let (d, _) = from_config(&c).unwrap();
        assert_eq!(d.node(), "pve1");
        let c = nexcage_config::parse_str(
            r#"{"proxmox":{"node":"pve1","driver":"api"}}"#,
            "x".as_ref(),
        )
        .unwrap();
        assert!(matches!(from_config(&c), Err(PveError::Config(_))));
        let c = nexcage_config::parse_str(
            r#"{"proxmox":{"node":"pve1","driver":"api","host":"10.0.0.1","fingerprint":"00112233445566778899AABBCCDDEEFF00112233445566778899AABBCCDDEEFF"},
                "api":{"username":"root@pam","token_name":"nx","token_value":"s"}}"#,
            "x".as_ref(),
        )
        .unwrap();
        let (a, _) = auth(&c).unwrap();
        assert!(matches!(a, Auth::Token { ref id, .. } if id == "root@pam!nx"));
        assert_eq!(from_config(&c).unwrap().0.node(), "pve1");
    }
}
