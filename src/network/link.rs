//! The container's veth, set up with iproute2 (`ip`, `bridge`; state is
//! read back with `ip -j`, never from its text): host end on the bridge,
//! guest end moved into the network namespace of the container's init,
//! addressed and routed there before the container's process starts.

use std::process::{Command, Stdio};

use serde_json::Value;
use thiserror::Error;

use super::plan::Plan;

#[derive(Debug, Error)]
pub enum LinkError {
    #[error("cannot run {0} (install iproute2): {1}")]
    Spawn(&'static str, std::io::Error),
    #[error("{cmd}: {stderr}")]
    Failed { cmd: String, stderr: String },
    #[error("bridge {0} does not exist")]
    NoBridge(String),
    #[error("{0} is not a bridge")]
    NotBridge(String),
    #[error("tag={tag}: bridge {bridge} is not VLAN-aware (ip link set {bridge} type bridge vlan_filtering 1)")]
    NotVlanAware { bridge: String, tag: u16 },
    #[error("mtu={mtu} is bigger than bridge {bridge}'s MTU {bridge_mtu}")]
    Mtu { mtu: u32, bridge: String, bridge_mtu: u64 },
}

fn run(mut c: Command, prog: &'static str) -> Result<Vec<u8>, LinkError> {
    let o = c.stdin(Stdio::null()).output().map_err(|e| LinkError::Spawn(prog, e))?;
    if !o.status.success() {
        let args: Vec<_> = c.get_args().map(|a| a.to_string_lossy().into_owned()).collect();
        let stderr = String::from_utf8_lossy(&o.stderr).lines().find(|l| !l.trim().is_empty()).unwrap_or("failed").trim().to_string();
        return Err(LinkError::Failed { cmd: format!("{prog} {}", args.join(" ")), stderr });
    }
    Ok(o.stdout)
}

fn ip(args: &[&str]) -> Result<Vec<u8>, LinkError> {
    let mut c = Command::new("ip");
    c.args(args);
    run(c, "ip")
}

/// `ip` run inside the network namespace of process `pid`.
fn ip_in(pid: i32, args: &[&str]) -> Result<(), LinkError> {
    let mut c = Command::new("nsenter");
    c.arg(format!("--net=/proc/{pid}/ns/net")).arg("ip").args(args);
    run(c, "nsenter").map(|_| ())
}

/// `ip -j -d link show DEV`'s object, `None` when there is no such link.
pub fn show(dev: &str) -> Result<Option<Value>, LinkError> {
    let o = Command::new("ip").args(["-j", "-d", "link", "show", "dev", dev]).stdin(Stdio::null()).output()
        .map_err(|e| LinkError::Spawn("ip", e))?;
    if !o.status.success() {
        return Ok(None);
    }
    let v: Value = serde_json::from_slice(&o.stdout).unwrap_or(Value::Null);
    Ok(v.get(0).cloned())
}

/// Checks the bridge a plan names (exists, is a bridge, VLAN-aware for a
/// tag) and returns its MTU.
pub fn check_bridge(bridge: &str, tag: Option<u16>) -> Result<u64, LinkError> {
    let b = show(bridge)?.ok_or_else(|| LinkError::NoBridge(bridge.into()))?;
    let info = &b["linkinfo"];
    if info["info_kind"] != "bridge" {
        return Err(LinkError::NotBridge(bridge.into()));
    }
    if let Some(tag) = tag {
        if info["info_data"]["vlan_filtering"].as_u64() != Some(1) {
            return Err(LinkError::NotVlanAware { bridge: bridge.into(), tag });
        }
    }
    Ok(b["mtu"].as_u64().unwrap_or(1500))
}

/// Creates the veth `host_if` <-> `plan.ifname` (in `pid`'s namespace) and
/// configures both ends. A link left with the same host name is replaced.
pub fn attach(plan: &Plan, host_if: &str, pid: i32) -> Result<(), LinkError> {
    let bridge_mtu = check_bridge(&plan.bridge, plan.tag)?;
    let mtu = match plan.mtu {
        Some(m) if u64::from(m) > bridge_mtu => return Err(LinkError::Mtu { mtu: m, bridge: plan.bridge.clone(), bridge_mtu }),
        Some(m) => u64::from(m),
        None => bridge_mtu,
    };
    detach(host_if)?;
    let (mtu, pid_s) = (mtu.to_string(), pid.to_string());
    ip(&["link", "add", "name", host_if, "mtu", &mtu, "type", "veth", "peer", "name", &plan.ifname,
        "address", &plan.hwaddr, "mtu", &mtu, "netns", &pid_s])?;
    let res = (|| {
        ip(&["link", "set", "dev", host_if, "master", &plan.bridge])?;
        if let Some(tag) = plan.tag {
            let mut c = Command::new("bridge");
            c.args(["vlan", "del", "dev", host_if, "vid", "1"]);
            run(c, "bridge")?;
            let mut c = Command::new("bridge");
            c.args(["vlan", "add", "dev", host_if, "vid", &tag.to_string(), "pvid", "untagged"]);
            run(c, "bridge")?;
        }
        ip(&["link", "set", "dev", host_if, "up"])?;
        ip_in(pid, &["link", "set", "dev", "lo", "up"])?;
        ip_in(pid, &["link", "set", "dev", &plan.ifname, "up"])?;
        if let Some(a) = plan.address {
            ip_in(pid, &["addr", "add", &a.to_string(), "dev", &plan.ifname])?;
        }
        if let Some(gw) = plan.gateway {
            ip_in(pid, &["route", "add", "default", "via", &gw.to_string(), "dev", &plan.ifname])?;
        }
        Ok(())
    })();
    if res.is_err() {
        let _ = detach(host_if);
    }
    res
}

/// Deletes the host end `host_if` (its peer goes with it) if it exists.
pub fn detach(host_if: &str) -> Result<(), LinkError> {
    if show(host_if)?.is_some() {
        ip(&["link", "del", "dev", host_if])?;
    }
    Ok(())
}
