//! `/etc/resolv.conf` and `/etc/hosts` for a bridged container, written
//! into its admin dir and bind-mounted over the image's (as Podman does).

use std::path::Path;

use anyhow::{Context, Result};
use serde_json::{json, Value};

use super::plan::Plan;

pub const RESOLV: &str = "resolv.conf";
pub const HOSTS: &str = "hosts";

/// The nameservers the plan names, else the host's resolv.conf without
/// loopback servers (unreachable from the container's namespace).
pub fn resolv_conf(plan: &Plan, host: &str) -> String {
    if !plan.nameservers.is_empty() {
        return plan.nameservers.iter().map(|n| format!("nameserver {n}\n")).collect();
    }
    host.lines()
        .filter(|l| {
            let mut w = l.split_whitespace();
            !(w.next() == Some("nameserver") && w.next().is_some_and(|a| a.starts_with("127.") || a == "::1"))
        })
        .map(|l| format!("{l}\n"))
        .collect()
}

pub fn hosts(plan: &Plan, hostname: &str) -> String {
    let mut s = String::from("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n");
    if let Some(a) = plan.address {
        s.push_str(&format!("{}\t{hostname}\n", a.addr()));
    }
    s
}

/// Writes both files into `dir`; returns the spec mounts for them.
pub fn write(dir: &Path, plan: &Plan, hostname: &str) -> Result<Vec<Value>> {
    let host = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let mut mounts = Vec::new();
    for (name, text, dest) in [(RESOLV, resolv_conf(plan, &host), "/etc/resolv.conf"), (HOSTS, hosts(plan, hostname), "/etc/hosts")] {
        let p = dir.join(name);
        std::fs::write(&p, text).with_context(|| format!("writing {}", p.display()))?;
        mounts.push(json!({"destination": dest, "type": "bind", "source": p, "options": ["rbind", "rprivate", "rw"]}));
    }
    Ok(mounts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> Plan {
        Plan { bridge: "vmbr0".into(), ifname: "eth0".into(), address: Some("10.88.0.10/24".parse().unwrap()), gateway: None, hwaddr: String::new(),
            mtu: None, tag: None, firewall: false, custom: None, nameservers: vec![], ports: vec![] }
    }

    #[test]
    fn contents() {
        let host = "search example.org\nnameserver 127.0.0.53\nnameserver 9.9.9.9\n";
        assert_eq!(resolv_conf(&plan(), host), "search example.org\nnameserver 9.9.9.9\n");
        let p = Plan { nameservers: vec!["10.88.0.1".into()], ..plan() };
        assert_eq!(resolv_conf(&p, host), "nameserver 10.88.0.1\n");
        assert!(hosts(&plan(), "web").ends_with("10.88.0.10\tweb\n"));
    }
}
