//! `--port [IP:]HOST:CONTAINER[/tcp|/udp]`: one published port.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq)]
#[error("--port {value:?}: {reason}")]
pub struct PortError {
    pub value: String,
    pub reason: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    Tcp,
    Udp,
}

impl Proto {
    /// The name nftables and /etc/protocols use.
    pub fn as_str(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        }
    }
}

/// Host `host_ip:host` (every local address when `host_ip` is `None`)
/// forwarded to the container's `container` port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortMap {
    #[serde(rename = "hostIp", skip_serializing_if = "Option::is_none", default)]
    pub host_ip: Option<Ipv4Addr>,
    #[serde(rename = "hostPort")]
    pub host: u16,
    #[serde(rename = "containerPort")]
    pub container: u16,
    pub protocol: Proto,
}

impl PortMap {
    /// Whether both claim the same host port (an unbound address overlaps every address).
    pub fn overlaps(&self, o: &PortMap) -> bool {
        self.protocol == o.protocol && self.host == o.host && (self.host_ip.is_none() || o.host_ip.is_none() || self.host_ip == o.host_ip)
    }
}

impl FromStr for PortMap {
    type Err = PortError;
    fn from_str(s: &str) -> Result<PortMap, PortError> {
        let err = |reason: &str| PortError { value: s.to_string(), reason: reason.to_string() };
        let (body, protocol) = match s.rsplit_once('/') {
            Some((b, "tcp")) => (b, Proto::Tcp),
            Some((b, "udp")) => (b, Proto::Udp),
            Some(_) => return Err(err("the protocol must be tcp or udp")),
            None => (s, Proto::Tcp),
        };
        let parts: Vec<&str> = body.split(':').collect();
        let (ip, h, c) = match parts.as_slice() {
            [h, c] => (None, *h, *c),
            [ip, h, c] => (Some(ip.parse::<Ipv4Addr>().map_err(|_| err("expected an IPv4 address before HOST"))?), *h, *c),
            _ => return Err(err("expected [IP:]HOST:CONTAINER[/tcp|/udp]")),
        };
        let port = |x: &str| x.parse::<u16>().ok().filter(|p| *p > 0).ok_or_else(|| err(&format!("{x:?} is not a port (1..65535)")));
        let host_ip = ip.filter(|ip| !ip.is_unspecified());
        Ok(PortMap { host_ip, host: port(h)?, container: port(c)?, protocol })
    }
}

impl fmt::Display for PortMap {
    /// Docker's notation: `0.0.0.0:8080->80/tcp`.
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        let ip = self.host_ip.unwrap_or(Ipv4Addr::UNSPECIFIED);
        write!(f, "{ip}:{}->{}/{}", self.host, self.container, self.protocol.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        let p: PortMap = "8080:80".parse().unwrap();
        assert_eq!((p.host_ip, p.host, p.container, p.protocol), (None, 8080, 80, Proto::Tcp));
        let p: PortMap = "127.0.0.1:53:5353/udp".parse().unwrap();
        assert_eq!((p.host_ip, p.host, p.container, p.protocol), (Some(Ipv4Addr::LOCALHOST), 53, 5353, Proto::Udp));
        assert_eq!(p.to_string(), "127.0.0.1:53->5353/udp");
        assert_eq!("8080:80".parse::<PortMap>().unwrap().to_string(), "0.0.0.0:8080->80/tcp");
        for bad in ["80", "0:80", "x:80", "1.2.3:80:80", "80:80/sctp", "70000:80", "a:b:c:d"] {
            assert!(bad.parse::<PortMap>().is_err(), "{bad}");
        }
    }

    #[test]
    fn overlap() {
        let a: PortMap = "8080:80".parse().unwrap();
        assert!(a.overlaps(&"10.0.0.1:8080:81".parse().unwrap()));
        assert!(!a.overlaps(&"8080:80/udp".parse().unwrap()));
        let b: PortMap = "10.0.0.1:8080:80".parse().unwrap();
        assert!(!b.overlaps(&"10.0.0.2:8080:80".parse().unwrap()));
    }
}
