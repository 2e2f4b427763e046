//! Networking of the containers nexcage configures itself (admin-created,
//! `create --name ... --network ... --port ...`): a veth onto a bridge,
//! named networks with address pools, and published ports (nftables DNAT).
//!
//! At create `resolve` decides everything (address, MAC, ports; checked
//! for conflicts under the network lock) and records it in the admin dir
//! (`plan`); the monitor `attach`es it after the container's namespaces
//! exist and before its process starts, and `detach`es it when the
//! container exits; `stop` detaches too; `release` (delete) also returns
//! the pool address. Engine-driven containers keep their engine's network.

pub mod files;
pub mod link;
pub mod localnet;
pub mod nft;
pub mod option;
pub mod plan;
pub mod pool;
pub mod port;

use std::fs::File;
use std::net::{Ipv4Addr, TcpListener, UdpSocket};
use std::path::Path;

use anyhow::{bail, Context, Result};
use ipnet::Ipv4Net;

pub use option::Network;
pub use plan::Plan;
pub use port::{PortMap, Proto};

use crate::container::Container;
use crate::context::Ctx;

/// Serialises port checks, pool allocation, attach and detach:
/// `<data dir>/network.lock`.
fn lock(ctx: &Ctx) -> Result<File> {
    let store = ctx.image_store()?;
    std::fs::create_dir_all(&store).with_context(|| format!("creating {}", store.display()))?;
    let f = File::options().create(true).truncate(false).write(true).open(store.join("network.lock"))
        .with_context(|| format!("opening {}", store.join("network.lock").display()))?;
    f.lock().context("locking network.lock")?;
    Ok(f)
}

/// What `create --name` asked for.
pub struct Request<'a> {
    pub id: &'a str,
    /// `native` or `proxmox`.
    pub backend: &'a str,
    pub network: Option<&'a str>,
    pub ports: &'a [String],
}

/// Parses `--network`/`--port`. `--port` without `--network` means the
/// default bridge (`network.bridge`, else Proxmox's `vmbr0`), as Docker
/// puts such a container on its default bridge.
fn parse(req: &Request, default_bridge: Option<&str>) -> Result<(Option<Network>, Vec<PortMap>)> {
    let mut net = req.network.map(option::parse).transpose()?;
    let ports = req.ports.iter().map(|p| p.parse::<PortMap>()).collect::<Result<Vec<_>, _>>()?;
    if !ports.is_empty() {
        match &net {
            Some(Network::Host) => bail!("--port: with --network host the container already uses the host's ports; drop --port"),
            Some(Network::None) => bail!("--port needs --network bridge=NAME or --network custom=NAME, not none"),
            Some(Network::Bridge(_) | Network::Custom(_)) => {}
            None => {
                let bridge = default_bridge.unwrap_or(DEFAULT_BRIDGE).to_string();
                net = Some(Network::Bridge(option::BridgeOpts { bridge, ..Default::default() }));
            }
        }
        if req.id.len() > nft::MAX_ID {
            bail!("--port: container names longer than {} characters cannot publish ports", nft::MAX_ID);
        }
    }
    for (i, p) in ports.iter().enumerate() {
        if let Some(q) = ports[..i].iter().find(|q| q.overlaps(p)) {
            bail!("--port {p}: host port {}/{} is given twice ({q})", p.host, p.protocol.as_str());
        }
    }
    Ok((net, ports))
}

/// The bridge `--port` without `--network` uses when `network.bridge` is unset.
pub const DEFAULT_BRIDGE: &str = "vmbr0";

/// The one `network.custom` network on bridge `o.bridge` (same VLAN), if
/// exactly one is configured: a `bridge=` without `ip=` takes its address
/// from that network's pool.
fn network_on<'c>(cfg: &'c nexcage_config::Config, o: &option::BridgeOpts) -> Option<(&'c String, &'c nexcage_config::CustomNetwork)> {
    let mut on = cfg.network.custom.iter().filter(|(_, n)| n.bridge == o.bridge && n.vlan.and_then(|v| u16::try_from(v).ok()) == o.tag);
    let first = on.next()?;
    on.next().is_none().then_some(first)
}

/// Refuses a host port another admin container publishes or a local socket
/// holds, and an address another container has.
fn check_conflicts(ctx: &Ctx, id: &str, plan: &Plan) -> Result<()> {
    let bundles = crate::admin::bundles_dir(ctx)?;
    for e in std::fs::read_dir(&bundles).into_iter().flatten().flatten() {
        let other = e.file_name().to_string_lossy().into_owned();
        if other == id {
            continue;
        }
        let Ok(Some(op)) = plan::load(&e.path()) else { continue };
        for p in &plan.ports {
            if let Some(q) = op.ports.iter().find(|q| q.overlaps(p)) {
                bail!("--port {p}: host port {}/{} is already published by container {other} ({q})", p.host, p.protocol.as_str());
            }
        }
        if let (Some(a), Some(b)) = (plan.address, op.address) {
            if a.addr() == b.addr() && op.bridge == plan.bridge {
                bail!("--network: address {} is already used by container {other}", a.addr());
            }
        }
    }
    for p in &plan.ports {
        let addr = (p.host_ip.unwrap_or(Ipv4Addr::UNSPECIFIED), p.host);
        let bound = match p.protocol {
            Proto::Tcp => TcpListener::bind(addr).map(drop),
            Proto::Udp => UdpSocket::bind(addr).map(drop),
        };
        match bound {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
                bail!("--port {p}: host port {}/{} is in use by a listening socket on this node", p.host, p.protocol.as_str())
            }
            Err(e) if e.kind() == std::io::ErrorKind::AddrNotAvailable => bail!("--port {p}: {} is not an address of this node", addr.0),
            Err(e) => return Err(e).with_context(|| format!("--port {p}: checking the host port")),
        }
    }
    Ok(())
}

/// The annotation carrying a Proxmox guest's `net0` (read by
/// nexcage-pve's mapping).
pub const NET0_ANNOTATION: &str = "org.nexcage.net0";

/// Decides container `id`'s network and records it in `dir`; `None` for
/// `none`/`host`/no `--network` (nothing to attach).
pub fn resolve(ctx: &Ctx, dir: &Path, req: &Request) -> Result<Option<Plan>> {
    let cfg = ctx.config()?;
    let (net, ports) = parse(req, cfg.network.bridge.as_deref())?;
    let (o, custom) = match net {
        Some(Network::Bridge(o)) if o.ip.is_some() || o.dhcp => (o, None),
        Some(Network::Bridge(o)) => match network_on(&cfg, &o) {
            Some((name, n)) => {
                let p = pool::Pool::parse(name, n)?;
                let o = option::BridgeOpts { gw: p.gateway, mtu: o.mtu.or(n.mtu), ..o };
                (o, Some((name.clone(), p, n.nameservers.clone())))
            }
            None => (o, None),
        },
        Some(Network::Custom(name)) => {
            let Some(n) = cfg.network.custom.get(&name) else {
                let known: Vec<_> = cfg.network.custom.keys().cloned().collect();
                bail!("--network custom={name}: no network {name} in the config (network.custom.{name}); configured: {}",
                    if known.is_empty() { "none".into() } else { known.join(", ") });
            };
            let p = pool::Pool::parse(&name, n)?;
            let o = option::BridgeOpts { bridge: n.bridge.clone(), gw: p.gateway, mtu: n.mtu, tag: n.vlan.and_then(|v| u16::try_from(v).ok()), ..Default::default() };
            (o, Some((name, p, n.nameservers.clone())))
        }
        _ => return Ok(None),
    };
    if !ports.is_empty() && o.ip.is_none() && custom.is_none() {
        bail!("--port needs the container's address: add ip=CIDR to --network bridge={0}, or configure one network.custom network on bridge {0} to take it from", o.bridge);
    }
    if o.firewall && req.backend != "proxmox" {
        bail!("--network ...,firewall=1: the firewall bridge is Proxmox's (fwbr, pve-firewall); only with --backend proxmox");
    }
    let bridge_mtu = link::check_bridge(&o.bridge, o.tag)?;
    if let Some(m) = o.mtu.filter(|m| u64::from(*m) > bridge_mtu) {
        return Err(link::LinkError::Mtu { mtu: m, bridge: o.bridge, bridge_mtu }.into());
    }
    let _l = lock(ctx)?;
    let mut plan = Plan {
        bridge: o.bridge,
        ifname: o.name.unwrap_or_else(|| "eth0".into()),
        address: o.ip,
        gateway: o.gw,
        hwaddr: o.hwaddr.unwrap_or_else(|| plan::derived_hwaddr(req.id)),
        mtu: o.mtu,
        tag: o.tag,
        firewall: o.firewall,
        custom: None,
        nameservers: Vec::new(),
        ports,
    };
    check_conflicts(ctx, req.id, &plan)?;
    if let Some((name, p, ns)) = custom {
        let a = pool::allocate(&ctx.image_store()?, &name, &p, req.id)?;
        plan.address = Some(Ipv4Net::new(a, p.subnet.prefix_len())?);
        plan.custom = Some(name);
        plan.nameservers = ns;
    }
    plan::save(dir, &plan)?;
    Ok(Some(plan))
}

/// Attaches the recorded network of native container `id` (bundle `dir`),
/// whose init `pid` waits for start: veth, address, route, ports.
pub fn attach(ctx: &Ctx, id: &str, dir: &Path, pid: i32) -> Result<()> {
    let Some(plan) = plan::load(dir)? else { return Ok(()) };
    let _l = lock(ctx)?;
    // LXC makes a Proxmox guest's veth from its net0 (backend/proxmox/net.rs).
    let native = Container::load(ctx, id)?.record().backend == crate::state::BackendKind::Native;
    if native {
        link::attach(&plan, &plan::host_ifname(id), pid)?;
    }
    if let (Some(a), false) = (plan.address, plan.ports.is_empty()) {
        if let Err(e) = nft::publish(id, a.addr(), a.trunc(), &plan.bridge, &plan.ports) {
            let _ = link::detach(&plan::host_ifname(id));
            return Err(e.into());
        }
    }
    Ok(())
}

/// Whether the recorded network of container `id` (bundle `dir`) is in
/// place: the host veth (native backend; LXC makes a guest's) and, with
/// `--port`, the DNAT chain. True when there is nothing to attach. An
/// admin `create` killed after the container was made and before
/// [`attach`] finished leaves a created container without it. `native`:
/// whether it is on the native backend (the caller holds its record).
pub fn attached(id: &str, dir: &Path, native: bool) -> Result<bool> {
    let Some(plan) = plan::load(dir)? else { return Ok(true) };
    if native && link::show(&plan::host_ifname(id))?.is_none() {
        return Ok(false);
    }
    Ok(plan.ports.is_empty() || nft::is_published(id)?)
}

/// Removes the published ports and host veth of container `id` (bundle
/// `dir`), unless a new process of it (not `pid`, which exited) holds them.
pub fn detach(ctx: &Ctx, id: &str, dir: &Path, pid: Option<i32>) -> Result<()> {
    let Some(plan) = plan::load(dir)? else { return Ok(()) };
    let _l = lock(ctx)?;
    if let Ok(c) = Container::load(ctx, id) {
        if c.status().has_process() && c.record().pid != pid {
            return Ok(());
        }
    }
    if !plan.ports.is_empty() {
        nft::unpublish(id)?;
    }
    link::detach(&plan::host_ifname(id))?;
    Ok(())
}

/// At delete: `detach`, and the pool address goes back.
pub fn release(ctx: &Ctx, id: &str, dir: &Path) -> Result<()> {
    detach(ctx, id, dir, None)?;
    let Some(plan) = plan::load(dir)? else { return Ok(()) };
    if let Some(name) = &plan.custom {
        let _l = lock(ctx)?;
        pool::release(&ctx.image_store()?, name, id)?;
    }
    Ok(())
}

/// What `info` shows: the plan plus the host end's name (a Proxmox
/// guest's `veth<vmid>i0`) and the ports in Docker's notation
/// (`0.0.0.0:8080->80/tcp`).
pub fn describe(id: &str, vmid: Option<u32>, plan: &Plan) -> serde_json::Value {
    let mut v = serde_json::to_value(plan).unwrap_or_default();
    let host_if = match vmid {
        Some(vmid) => crate::backend::proxmox::net::host_ifname(vmid, 0),
        None => plan::host_ifname(id),
    };
    v["hostInterface"] = serde_json::json!(host_if);
    v["ports"] = serde_json::json!(plan.ports.iter().map(ToString::to_string).collect::<Vec<_>>());
    v
}

/// The published ports of a container record (its `--port` annotation),
/// in Docker's notation; empty for none.
pub fn published(annotations: &std::collections::BTreeMap<String, String>) -> Vec<String> {
    let Some(a) = annotations.get(crate::admin::PORTS_ANNOTATION) else { return Vec::new() };
    a.split(',').filter_map(|p| p.parse::<PortMap>().ok()).map(|p| p.to_string()).collect()
}
