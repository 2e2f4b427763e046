//! `--network` values: `none`, `host`, `bridge=NAME[,ip=CIDR][,gw=IP]
//! [,hwaddr=MAC][,mtu=N][,tag=VLAN][,name=IFNAME][,firewall=1]` (the keys
//! of Proxmox's `net0`, PROXMOX-FACTS section 1) and `custom=NAME` (a named
//! network of nexcage's config, `network.custom.NAME`).

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq)]
#[error("--network {value:?}: {reason}")]
pub struct OptionError {
    pub value: String,
    pub reason: String,
}

/// What `--network` asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Network {
    /// A network namespace of its own with loopback only.
    None,
    /// The host's network namespace.
    Host,
    /// A veth from the container onto a bridge.
    Bridge(BridgeOpts),
    /// A veth onto the bridge of the named network, address from its pool.
    Custom(String),
}

/// One veth on a bridge, in Proxmox `net0` terms.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BridgeOpts {
    pub bridge: String,
    /// Static IPv4 address with prefix length; `None` leaves the address
    /// to the image (as PVE does for `ip=dhcp` without `host-managed`).
    pub ip: Option<Ipv4Net>,
    /// `ip=dhcp` (or `manual`) given: the address is the image's even
    /// when a configured network with a pool is on the bridge.
    pub dhcp: bool,
    pub gw: Option<Ipv4Addr>,
    /// `XX:XX:XX:XX:XX:XX`; derived from the container name when absent.
    pub hwaddr: Option<String>,
    /// 64..=65535 (Proxmox's range).
    pub mtu: Option<u32>,
    /// VLAN 1..=4094 on a VLAN-aware bridge.
    pub tag: Option<u16>,
    /// The interface name inside the container (default `eth0`).
    pub name: Option<String>,
    /// Proxmox only: through a `fwbr<vmid>i<N>` firewall bridge.
    pub firewall: bool,
}

/// Linux interface names: 1..=15 bytes of `[-_.A-Za-z0-9]` (Proxmox's
/// `name=` pattern, within IFNAMSIZ).
pub fn valid_ifname(s: &str) -> bool {
    !s.is_empty() && s.len() <= 15 && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
}

pub fn valid_mac(s: &str) -> bool {
    let parts: Vec<&str> = s.split(':').collect();
    parts.len() == 6
        && parts.iter().all(|p| p.len() == 2 && p.chars().all(|c| c.is_ascii_hexdigit()))
        // Unicast: the low bit of the first octet is clear.
        && u8::from_str_radix(parts[0], 16).is_ok_and(|b| b & 1 == 0)
}

fn bridge_opts(value: &str, rest: &str) -> Result<BridgeOpts, OptionError> {
    let err = |reason: String| OptionError { value: value.to_string(), reason };
    let mut o = BridgeOpts::default();
    let mut items = rest.split(',');
    o.bridge = items.next().unwrap_or_default().to_string();
    if !valid_ifname(&o.bridge) {
        return Err(err(format!("{:?} is not a bridge name", o.bridge)));
    }
    for item in items {
        let (k, v) = item.split_once('=').ok_or_else(|| err(format!("{item:?}: expected KEY=VALUE")))?;
        match k {
            "ip" if v == "dhcp" || v == "manual" => (o.ip, o.dhcp) = (None, true),
            "ip" => (o.ip, o.dhcp) = (Some(v.parse().map_err(|_| err(format!("ip={v}: expected an IPv4 address with a prefix, like 10.0.0.5/24")))?), false),
            "gw" => o.gw = Some(v.parse().map_err(|_| err(format!("gw={v}: expected an IPv4 address")))?),
            "hwaddr" if valid_mac(v) => o.hwaddr = Some(v.to_ascii_uppercase()),
            "hwaddr" => return Err(err(format!("hwaddr={v}: expected a unicast MAC like BC:24:11:00:00:01"))),
            "mtu" => o.mtu = Some(v.parse().ok().filter(|m| (64..=65535).contains(m)).ok_or_else(|| err(format!("mtu={v}: expected 64..65535")))?),
            "tag" => o.tag = Some(v.parse().ok().filter(|t| (1..=4094).contains(t)).ok_or_else(|| err(format!("tag={v}: expected a VLAN 1..4094")))?),
            "name" if valid_ifname(v) => o.name = Some(v.to_string()),
            "name" => return Err(err(format!("name={v}: expected an interface name of at most 15 characters"))),
            "firewall" => o.firewall = matches!(v, "1" | "on" | "yes" | "true"),
            _ => return Err(err(format!("unknown key {k:?} (expected ip, gw, hwaddr, mtu, tag, name or firewall)"))),
        }
    }
    if let (Some(ip), Some(gw)) = (o.ip, o.gw) {
        if !ip.contains(&gw) {
            return Err(err(format!("gw={gw} is not in {}", ip.trunc())));
        }
    }
    if o.gw.is_some() && o.ip.is_none() {
        return Err(err("gw= needs ip=".into()));
    }
    Ok(o)
}

pub fn parse(s: &str) -> Result<Network, OptionError> {
    match s.split_once('=') {
        None if s == "none" => Ok(Network::None),
        None if s == "host" => Ok(Network::Host),
        Some(("bridge", rest)) => bridge_opts(s, rest).map(Network::Bridge),
        Some(("custom", n)) if valid_network_name(n) => Ok(Network::Custom(n.to_string())),
        _ => Err(OptionError {
            value: s.to_string(),
            reason: "expected none, host, bridge=NAME[,ip=CIDR,gw=IP,...] or custom=NAME".into(),
        }),
    }
}

/// Names of `network.custom.NAME`: `[A-Za-z0-9_-]`, 1..=32.
pub fn valid_network_name(n: &str) -> bool {
    !n.is_empty() && n.len() <= 32 && n.chars().all(|c| c.is_ascii_alphanumeric() || "-_".contains(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values() {
        assert_eq!(parse("none").unwrap(), Network::None);
        assert_eq!(parse("host").unwrap(), Network::Host);
        assert_eq!(parse("custom=lab").unwrap(), Network::Custom("lab".into()));
        let Network::Bridge(b) = parse("bridge=vmbr0,ip=10.88.0.10/24,gw=10.88.0.1,hwaddr=bc:24:11:00:00:01,mtu=1400,tag=10,name=net1,firewall=1").unwrap() else {
            panic!()
        };
        assert_eq!(b.bridge, "vmbr0");
        assert_eq!(b.ip.unwrap().to_string(), "10.88.0.10/24");
        assert_eq!(b.gw.unwrap().to_string(), "10.88.0.1");
        assert_eq!(b.hwaddr.as_deref(), Some("BC:24:11:00:00:01"));
        assert_eq!((b.mtu, b.tag, b.name.as_deref(), b.firewall), (Some(1400), Some(10), Some("net1"), true));
        assert_eq!(parse("bridge=vmbr0,ip=dhcp").unwrap(), Network::Bridge(BridgeOpts { bridge: "vmbr0".into(), dhcp: true, ..Default::default() }));
        let Network::Bridge(b) = parse("bridge=vmbr0").unwrap() else { panic!() };
        assert!(b.ip.is_none() && !b.dhcp);
    }

    #[test]
    fn refused() {
        for bad in ["bridge=", "bridge=a/b", "custom=", "custom=../x", "foo", "bridge=vmbr0,ip=10.0.0.1", "bridge=vmbr0,gw=10.0.0.1",
            "bridge=vmbr0,ip=10.0.0.5/24,gw=10.0.1.1", "bridge=vmbr0,mtu=10", "bridge=vmbr0,tag=5000", "bridge=vmbr0,hwaddr=01:00:00:00:00:00",
            "bridge=vmbr0,x=1", "bridge=vmbr0,name=averyveryverylongname"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
