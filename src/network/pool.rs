//! Address pools of `network.custom.NAME`: one address per container,
//! recorded in `<data dir>/networks/<NAME>.json` (`{"<id>": "A.B.C.D"}`)
//! under the network lock, released at delete.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use ipnet::Ipv4Net;
use nexcage_config::CustomNetwork;

/// A custom network's settings, parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct Pool {
    pub subnet: Ipv4Net,
    pub gateway: Option<Ipv4Addr>,
    pub first: Ipv4Addr,
    pub last: Ipv4Addr,
}

impl Pool {
    /// Checks `network.custom.<name>`'s subnet, gateway and pool range.
    pub fn parse(name: &str, n: &CustomNetwork) -> Result<Pool> {
        let key = |k: &str| format!("network.custom.{name}.{k}");
        let subnet: Ipv4Net = n.subnet.parse().with_context(|| format!("{}: {:?} is not A.B.C.D/N", key("subnet"), n.subnet))?;
        let subnet = subnet.trunc();
        let inside = |k: &str, s: &str| -> Result<Ipv4Addr> {
            let a: Ipv4Addr = s.parse().with_context(|| format!("{}: {s:?} is not an IPv4 address", key(k)))?;
            if !subnet.contains(&a) {
                bail!("{}: {a} is not in {subnet}", key(k));
            }
            Ok(a)
        };
        let gateway = n.gateway.as_deref().map(|g| inside("gateway", g)).transpose()?;
        let (first, last) = match &n.pool {
            Some(p) => {
                let (a, b) = p.split_once('-').with_context(|| format!("{}: expected FIRST-LAST", key("pool")))?;
                (inside("pool", a.trim())?, inside("pool", b.trim())?)
            }
            None => match subnet.hosts().next().zip(subnet.hosts().last()) {
                Some(r) => r,
                None => bail!("{}: {subnet} has no host addresses", key("subnet")),
            },
        };
        if first > last {
            bail!("{}: {first} comes after {last}", key("pool"));
        }
        Ok(Pool { subnet, gateway, first, last })
    }

    /// The lowest address of the range that is not the gateway nor taken.
    pub fn next_free(&self, taken: &[Ipv4Addr]) -> Option<Ipv4Addr> {
        (u32::from(self.first)..=u32::from(self.last)).map(Ipv4Addr::from)
            .find(|a| Some(*a) != self.gateway && *a != self.subnet.network() && *a != self.subnet.broadcast() && !taken.contains(a))
    }
}

fn file(store: &Path, name: &str) -> PathBuf {
    store.join("networks").join(format!("{name}.json"))
}

fn read(store: &Path, name: &str) -> Result<BTreeMap<String, Ipv4Addr>> {
    match std::fs::read(file(store, name)) {
        Ok(d) => serde_json::from_slice(&d).with_context(|| format!("{}", file(store, name).display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
        Err(e) => Err(e).with_context(|| format!("reading {}", file(store, name).display())),
    }
}

fn write(store: &Path, name: &str, m: &BTreeMap<String, Ipv4Addr>) -> Result<()> {
    let f = file(store, name);
    std::fs::create_dir_all(f.parent().unwrap_or(store))?;
    let tmp = f.with_extension("json.tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(m)?)?;
    std::fs::rename(&tmp, &f).with_context(|| format!("writing {}", f.display()))
}

/// Allocates an address of network `name` to container `id` (its old one
/// if it has one). The caller holds the network lock.
pub fn allocate(store: &Path, name: &str, pool: &Pool, id: &str) -> Result<Ipv4Addr> {
    let mut m = read(store, name)?;
    if let Some(a) = m.get(id) {
        return Ok(*a);
    }
    let taken: Vec<Ipv4Addr> = m.values().copied().collect();
    let Some(a) = pool.next_free(&taken) else {
        bail!("--network custom={name}: no free address left in {}-{} ({} in use)", pool.first, pool.last, taken.len());
    };
    m.insert(id.to_string(), a);
    write(store, name, &m)?;
    Ok(a)
}

/// Gives container `id`'s address of network `name` back. The caller holds the lock.
pub fn release(store: &Path, name: &str, id: &str) -> Result<()> {
    let mut m = read(store, name)?;
    if m.remove(id).is_some() {
        write(store, name, &m)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(subnet: &str, gw: Option<&str>, pool: Option<&str>) -> CustomNetwork {
        CustomNetwork { bridge: "vmbr0".into(), subnet: subnet.into(), gateway: gw.map(Into::into), pool: pool.map(Into::into), ..Default::default() }
    }

    #[test]
    fn ranges() {
        let p = Pool::parse("lab", &net("10.89.0.0/24", Some("10.89.0.1"), None)).unwrap();
        assert_eq!((p.first.to_string(), p.last.to_string()), ("10.89.0.1".into(), "10.89.0.254".into()));
        assert_eq!(p.next_free(&[]).unwrap().to_string(), "10.89.0.2");
        let p = Pool::parse("lab", &net("10.89.0.0/24", Some("10.89.0.1"), Some("10.89.0.100-10.89.0.101"))).unwrap();
        let a = p.next_free(&[]).unwrap();
        let b = p.next_free(&[a]).unwrap();
        assert_eq!((a.to_string(), b.to_string()), ("10.89.0.100".into(), "10.89.0.101".into()));
        assert!(p.next_free(&[a, b]).is_none());
        for bad in [net("10.89.0.0", None, None), net("10.89.0.0/24", Some("10.90.0.1"), None), net("10.89.0.0/24", None, Some("10.89.0.9-10.89.0.3")),
            net("10.89.0.0/24", None, Some("10.89.0.9"))] {
            assert!(Pool::parse("lab", &bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn allocate_release() {
        let d = tempfile::tempdir().unwrap();
        let p = Pool::parse("lab", &net("10.89.0.0/29", Some("10.89.0.1"), None)).unwrap();
        let a = allocate(d.path(), "lab", &p, "a").unwrap();
        let b = allocate(d.path(), "lab", &p, "b").unwrap();
        assert_ne!(a, b);
        assert_eq!(allocate(d.path(), "lab", &p, "a").unwrap(), a);
        release(d.path(), "lab", "a").unwrap();
        assert_eq!(read(d.path(), "lab").unwrap().len(), 1);
        assert_eq!(allocate(d.path(), "lab", &p, "c").unwrap(), a);
    }
}
