//! A container's network as decided at create: `<admin dir>/network.json`.
//! Attach, detach, `info` and the Proxmox renderer read it back, so the
//! address, MAC and ports stay the same across stop/start and reboots.

use std::net::Ipv4Addr;
use std::path::Path;

use anyhow::{Context, Result};
use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};

use super::port::PortMap;

pub const FILE: &str = "network.json";

/// One veth on a bridge, with what is configured inside the guest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Plan {
    pub bridge: String,
    /// Interface name inside the container (`eth0` unless `name=`).
    pub ifname: String,
    /// Static address with prefix; `None`: left to the image (DHCP).
    pub address: Option<Ipv4Net>,
    pub gateway: Option<Ipv4Addr>,
    /// `XX:XX:XX:XX:XX:XX`, stable for the container's life.
    pub hwaddr: String,
    pub mtu: Option<u32>,
    pub tag: Option<u16>,
    #[serde(default)]
    pub firewall: bool,
    /// The `network.custom` network the address was allocated from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom: Option<String>,
    #[serde(default)]
    pub nameservers: Vec<String>,
    #[serde(default)]
    pub ports: Vec<PortMap>,
}

impl Plan {
    /// The Proxmox `net0` property string (PROXMOX-FACTS section 1; name
    /// first, then the other keys sorted, as PVE prints it).
    pub fn pve_net0(&self) -> String {
        let mut s = format!("name={},bridge={}", self.ifname, self.bridge);
        if self.firewall {
            s.push_str(",firewall=1");
        }
        if let (Some(g), Some(_)) = (self.gateway, self.address) {
            s.push_str(&format!(",gw={g}"));
        }
        s.push_str(&format!(",hwaddr={}", self.hwaddr));
        match self.address {
            Some(a) => s.push_str(&format!(",ip={a}")),
            None => s.push_str(",ip=dhcp"),
        }
        if let Some(m) = self.mtu {
            s.push_str(&format!(",mtu={m}"));
        }
        if let Some(t) = self.tag {
            s.push_str(&format!(",tag={t}"));
        }
        s.push_str(",type=veth");
        s
    }
}

pub fn load(dir: &Path) -> Result<Option<Plan>> {
    match std::fs::read(dir.join(FILE)) {
        Ok(d) => Ok(Some(serde_json::from_slice(&d).with_context(|| format!("{}", dir.join(FILE).display()))?)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading {}", dir.join(FILE).display())),
    }
}

pub fn save(dir: &Path, plan: &Plan) -> Result<()> {
    std::fs::write(dir.join(FILE), serde_json::to_vec_pretty(plan)?).with_context(|| format!("writing {}", dir.join(FILE).display()))
}

/// FNV-1a (64 bit): a stable digest of a container id for names and MACs.
fn digest(id: &str) -> u64 {
    id.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

/// The host end of a native container's veth: `nx<8 hex>i0` (15 bytes at
/// most, like Proxmox's `veth<vmid>i<N>`), derived from the id.
pub fn host_ifname(id: &str) -> String {
    format!("nx{:08x}i0", digest(id) as u32)
}

/// A MAC derived from the id: locally administered unicast (`02:...`).
pub fn derived_hwaddr(id: &str) -> String {
    let b = digest(id).to_be_bytes();
    format!("02:{:02X}:{:02X}:{:02X}:{:02X}:{:02X}", b[3], b[4], b[5], b[6], b[7])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn net0() {
        let p = Plan { bridge: "vmbr0".into(), ifname: "eth0".into(), address: Some("10.88.0.10/24".parse().unwrap()), gateway: Some("10.88.0.1".parse().unwrap()),
            hwaddr: "02:00:00:00:00:01".into(), mtu: Some(1400), tag: Some(10), firewall: true, custom: None, nameservers: vec![], ports: vec![] };
        assert_eq!(p.pve_net0(), "name=eth0,bridge=vmbr0,firewall=1,gw=10.88.0.1,hwaddr=02:00:00:00:00:01,ip=10.88.0.10/24,mtu=1400,tag=10,type=veth");
        let p = Plan { address: None, gateway: None, mtu: None, tag: None, firewall: false, ..p };
        assert_eq!(p.pve_net0(), "name=eth0,bridge=vmbr0,hwaddr=02:00:00:00:00:01,ip=dhcp,type=veth");
    }

    #[test]
    fn derived_names() {
        assert_eq!(host_ifname("web"), host_ifname("web"));
        assert_ne!(host_ifname("web1"), host_ifname("web2"));
        assert!(host_ifname("a-very-long-container-name-indeed").len() <= 15);
        let mac = derived_hwaddr("web");
        assert!(super::super::option::valid_mac(&mac), "{mac}");
        assert_ne!(mac, derived_hwaddr("web2"));
    }
}
