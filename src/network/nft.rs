//! Published ports as nftables DNAT in the table nexcage owns, `ip
//! nexcage`, driven through `nft -j` (its JSON interface; never its text).
//!
//! Layout: base chains `prerouting` and `output` (nat, dstnat) send traffic
//! for a local address (`fib daddr type local`) to `ports`; `postrouting`
//! sends DNAT-ed traffic to `hairpin`. Each container has its own chains
//! `dnat-<id>` (one rule per port) and `snat-<id>` (masquerade for clients
//! on the container's own subnet, whose replies would otherwise bypass the
//! node), each reached by one jump rule in `ports`/`hairpin` commented
//! with the container id. The output chain makes the node's own traffic
//! to its addresses, 127.0.0.1 included, reach the container too: the
//! container's `snat-<id>` also masquerades 127.0.0.0/8 sources leaving
//! through its bridge (`oifname`), and `route_localnet` is turned on for
//! that bridge (localnet.rs). An empty chain `localnet-<bridge>` records
//! that nexcage turned it on; it is turned off again, and the chain
//! deleted, when no container's rule names that bridge any more. When the
//! last container's chains go, the table goes too, unless something in it
//! is not nexcage's (a chain or rule someone else added).

use std::io::Write;
use std::net::Ipv4Addr;
use std::process::{Command, Stdio};

use ipnet::Ipv4Net;
use serde_json::{json, Value};
use thiserror::Error;

use super::port::PortMap;

pub const TABLE: &str = "nexcage";
const FAMILY: &str = "ip";

#[derive(Debug, Error)]
pub enum NftError {
    #[error(transparent)]
    Localnet(#[from] super::localnet::LocalnetError),
    #[error("cannot run nft (install nftables): {0}")]
    Spawn(std::io::Error),
    #[error("nft {what}: {stderr}")]
    Failed { what: String, stderr: String },
    #[error("nft -j printed something that is not its JSON: {0}")]
    Json(serde_json::Error),
}

/// Longest container id whose chains fit nftables' 256-byte chain names.
pub const MAX_ID: usize = 200;

fn dnat_chain(id: &str) -> String {
    format!("dnat-{id}")
}

fn snat_chain(id: &str) -> String {
    format!("snat-{id}")
}

/// The chain recording that nexcage turned `route_localnet` on for `bridge`.
fn localnet_chain(bridge: &str) -> String {
    format!("localnet-{bridge}")
}

fn has_chain(objs: &[Value], name: &str) -> bool {
    objs.iter().any(|o| o["chain"]["name"].as_str() == Some(name))
}

/// The `oifname` a rule matches, if any.
fn oifname(rule: &Value) -> Option<&str> {
    rule["expr"].as_array()?.iter().find_map(|x| (x["match"]["left"]["meta"]["key"] == "oifname").then(|| x["match"]["right"].as_str()).flatten())
}

/// nft's message without the lines that echo the input and point at it
/// (errors are one line).
fn first_line(stderr: &[u8]) -> String {
    String::from_utf8_lossy(stderr).lines().find(|l| !l.trim().is_empty()).unwrap_or("failed").trim().to_string()
}

/// Runs one atomic `nft -j -f -` transaction.
fn apply(what: &str, cmds: Vec<Value>) -> Result<(), NftError> {
    let mut child = Command::new("nft").args(["-j", "-f", "-"]).stdin(Stdio::piped()).stdout(Stdio::null()).stderr(Stdio::piped())
        .spawn().map_err(NftError::Spawn)?;
    let doc = json!({"nftables": cmds}).to_string();
    if let Some(mut i) = child.stdin.take() {
        i.write_all(doc.as_bytes()).map_err(NftError::Spawn)?;
    }
    let o = child.wait_with_output().map_err(NftError::Spawn)?;
    if !o.status.success() {
        return Err(NftError::Failed { what: what.into(), stderr: first_line(&o.stderr) });
    }
    Ok(())
}

/// `nft -j list table ip nexcage`'s objects; empty when there is no table.
fn list_table() -> Result<Vec<Value>, NftError> {
    let o = Command::new("nft").args(["-j", "list", "table", FAMILY, TABLE]).stdin(Stdio::null()).output().map_err(NftError::Spawn)?;
    if !o.status.success() {
        // The table's absence is the only expected failure.
        let e = String::from_utf8_lossy(&o.stderr);
        if e.contains("No such file or directory") {
            return Ok(Vec::new());
        }
        return Err(NftError::Failed { what: "list table".into(), stderr: first_line(&o.stderr) });
    }
    let v: Value = serde_json::from_slice(&o.stdout).map_err(NftError::Json)?;
    Ok(v["nftables"].as_array().cloned().unwrap_or_default())
}

fn chain(name: &str) -> Value {
    json!({"family": FAMILY, "table": TABLE, "name": name})
}

fn base_chain(name: &str, hook: &str, prio: i32) -> Value {
    json!({"family": FAMILY, "table": TABLE, "name": name, "type": "nat", "hook": hook, "prio": prio, "policy": "accept"})
}

fn rule(chain: &str, expr: Vec<Value>, comment: Option<&str>) -> Value {
    let mut r = json!({"family": FAMILY, "table": TABLE, "chain": chain, "expr": expr});
    if let Some(c) = comment {
        r["comment"] = json!(c);
    }
    json!({"add": {"rule": r}})
}

fn eq(protocol: &str, field: &str, right: Value) -> Value {
    json!({"match": {"op": "==", "left": {"payload": {"protocol": protocol, "field": field}}, "right": right}})
}

/// The table and its base chains; idempotent (the base chains are flushed
/// and refilled in the same transaction).
fn table_cmds() -> Vec<Value> {
    let local = json!({"match": {"op": "==", "left": {"fib": {"result": "type", "flags": ["daddr"]}}, "right": "local"}});
    let dnat = json!({"match": {"op": "in", "left": {"ct": {"key": "status"}}, "right": "dnat"}});
    vec![
        json!({"add": {"table": {"family": FAMILY, "name": TABLE}}}),
        json!({"add": {"chain": base_chain("prerouting", "prerouting", -100)}}),
        json!({"add": {"chain": base_chain("output", "output", -100)}}),
        json!({"add": {"chain": base_chain("postrouting", "postrouting", 100)}}),
        json!({"add": {"chain": chain("ports")}}),
        json!({"add": {"chain": chain("hairpin")}}),
        json!({"flush": {"chain": chain("prerouting")}}),
        json!({"flush": {"chain": chain("output")}}),
        json!({"flush": {"chain": chain("postrouting")}}),
        rule("prerouting", vec![local.clone(), json!({"jump": {"target": "ports"}})], None),
        rule("output", vec![local, json!({"jump": {"target": "ports"}})], None),
        rule("postrouting", vec![dnat, json!({"jump": {"target": "hairpin"}})], None),
    ]
}

/// Commands deleting container `id`'s chains and the jumps to them.
fn remove_cmds(objs: &[Value], id: &str) -> Vec<Value> {
    let (d, s) = (dnat_chain(id), snat_chain(id));
    let mut cmds = Vec::new();
    for o in objs {
        let r = &o["rule"];
        let jumps_to = r["expr"].as_array().and_then(|e| e.iter().find_map(|x| x["jump"]["target"].as_str()));
        if jumps_to.is_some_and(|t| t == d || t == s) {
            cmds.push(json!({"delete": {"rule": {"family": FAMILY, "table": TABLE, "chain": r["chain"], "handle": r["handle"]}}}));
        }
    }
    for o in objs {
        if let Some(name) = o["chain"]["name"].as_str().filter(|n| *n == d || *n == s) {
            cmds.push(json!({"flush": {"chain": chain(name)}}));
            cmds.push(json!({"delete": {"chain": chain(name)}}));
        }
    }
    cmds
}

/// Publishes `ports` of container `id` (address `addr` on `subnet`,
/// behind `bridge`), replacing whatever it had, in one transaction; turns
/// `route_localnet` on for `bridge` if it is off.
pub fn publish(id: &str, addr: Ipv4Addr, subnet: Ipv4Net, bridge: &str, ports: &[PortMap]) -> Result<(), NftError> {
    let objs = list_table()?;
    let mut cmds = table_cmds();
    cmds.extend(remove_cmds(&objs, id));
    let (d, s) = (dnat_chain(id), snat_chain(id));
    cmds.push(json!({"add": {"chain": chain(&d)}}));
    cmds.push(json!({"add": {"chain": chain(&s)}}));
    for p in ports {
        let mut expr = Vec::new();
        if let Some(ip) = p.host_ip {
            expr.push(eq("ip", "daddr", json!(ip.to_string())));
        }
        expr.push(eq(p.protocol.as_str(), "dport", json!(p.host)));
        expr.push(json!({"dnat": {"addr": addr.to_string(), "port": p.container}}));
        cmds.push(rule(&d, expr, None));
    }
    let prefix = |n: Ipv4Net| json!({"prefix": {"addr": n.network().to_string(), "len": n.prefix_len()}});
    let hair = vec![eq("ip", "saddr", prefix(subnet)), eq("ip", "daddr", json!(addr.to_string())), json!({"masquerade": null})];
    cmds.push(rule(&s, hair, None));
    let loopback = Ipv4Net::new(Ipv4Addr::new(127, 0, 0, 0), 8).unwrap_or_default();
    let out = json!({"match": {"op": "==", "left": {"meta": {"key": "oifname"}}, "right": bridge}});
    cmds.push(rule(&s, vec![eq("ip", "saddr", prefix(loopback)), out, json!({"masquerade": null})], None));
    cmds.push(rule("ports", vec![json!({"jump": {"target": d}})], Some(id)));
    cmds.push(rule("hairpin", vec![json!({"jump": {"target": s}})], Some(id)));
    let turned_on = !super::localnet::get(bridge)?;
    if turned_on {
        super::localnet::set(bridge, true)?;
        cmds.push(json!({"add": {"chain": chain(&localnet_chain(bridge))}}));
    }
    let res = apply("publishing ports", cmds);
    if res.is_err() && turned_on && !has_chain(&objs, &localnet_chain(bridge)) {
        let _ = super::localnet::set(bridge, false);
    }
    res
}

/// Whether container `id`'s ports are published (its DNAT chain exists).
pub fn is_published(id: &str) -> Result<bool, NftError> {
    Ok(has_chain(&list_table()?, &dnat_chain(id)))
}

/// The bridges whose `route_localnet` nexcage turned on and that no
/// container but `id` has a rule for.
fn localnet_off<'a>(objs: &'a [Value], id: &str) -> Vec<&'a str> {
    let s = snat_chain(id);
    let ours = |r: &Value| r["chain"].as_str() == Some(s.as_str());
    let rules = || objs.iter().map(|o| &o["rule"]);
    rules().filter(|r| ours(r)).filter_map(oifname)
        .filter(|b| !rules().any(|r| !ours(r) && oifname(r) == Some(*b)) && has_chain(objs, &localnet_chain(b)))
        .collect()
}

/// Whether, once container `id`'s chains and the `off` bridges' markers
/// are gone, the table holds only what `table_cmds` makes: no other
/// container's chains, no chain or rule anyone else added.
fn only_ours_left(objs: &[Value], id: &str, off: &[&str]) -> bool {
    let gone = [dnat_chain(id), snat_chain(id)];
    let ours = |n: &str| {
        ["prerouting", "output", "postrouting", "ports", "hairpin"].contains(&n)
            || gone.iter().any(|g| g == n)
            || off.iter().any(|b| localnet_chain(b) == n)
    };
    objs.iter().all(|o| {
        if let Some(n) = o["chain"]["name"].as_str() {
            return ours(n);
        }
        let r = &o["rule"];
        if r.is_null() {
            return true; // the metainfo and table objects
        }
        let target = r["expr"].as_array().and_then(|e| e.iter().find_map(|x| x["jump"]["target"].as_str()));
        match (r["chain"].as_str(), target) {
            (Some("prerouting" | "output"), Some("ports")) | (Some("postrouting"), Some("hairpin")) => true,
            (Some(_), Some(t)) => gone.iter().any(|g| g == t),
            // the rules inside id's own chains
            (Some(c), None) => gone.iter().any(|g| g == c),
            (None, _) => false,
        }
    })
}

/// Removes container `id`'s chains (nothing to do is fine), and the whole
/// table when nothing else is left in it; turns `route_localnet` off for a
/// bridge nexcage turned it on for when no other container's rule names
/// that bridge.
pub fn unpublish(id: &str) -> Result<(), NftError> {
    let objs = list_table()?;
    let mut cmds = remove_cmds(&objs, id);
    if cmds.is_empty() {
        return Ok(());
    }
    let off = localnet_off(&objs, id);
    for b in &off {
        cmds.push(json!({"delete": {"chain": chain(&localnet_chain(b))}}));
    }
    if only_ours_left(&objs, id, &off) {
        cmds = vec![json!({"delete": {"table": {"family": FAMILY, "name": TABLE}}})];
    }
    apply("removing published ports", cmds)?;
    for b in off {
        match super::localnet::set(b, false) {
            // The bridge is gone, and its setting with it.
            Err(e) if e.source.kind() == std::io::ErrorKind::NotFound => {}
            r => r?,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removal_finds_jumps_and_chains() {
        let objs: Vec<Value> = serde_json::from_value(json!([
            {"chain": {"family": "ip", "table": "nexcage", "name": "ports", "handle": 4}},
            {"rule": {"family": "ip", "table": "nexcage", "chain": "ports", "handle": 14, "comment": "web", "expr": [{"jump": {"target": "dnat-web"}}]}},
            {"rule": {"family": "ip", "table": "nexcage", "chain": "ports", "handle": 15, "comment": "web2", "expr": [{"jump": {"target": "dnat-web2"}}]}},
            {"rule": {"family": "ip", "table": "nexcage", "chain": "hairpin", "handle": 16, "comment": "web", "expr": [{"jump": {"target": "snat-web"}}]}},
            {"chain": {"family": "ip", "table": "nexcage", "name": "dnat-web", "handle": 7}},
            {"chain": {"family": "ip", "table": "nexcage", "name": "snat-web", "handle": 8}},
            {"chain": {"family": "ip", "table": "nexcage", "name": "dnat-web2", "handle": 9}}
        ])).unwrap();
        let cmds = remove_cmds(&objs, "web");
        let handles: Vec<_> = cmds.iter().filter_map(|c| c["delete"]["rule"]["handle"].as_u64()).collect();
        assert_eq!(handles, [14, 16]);
        let chains: Vec<_> = cmds.iter().filter_map(|c| c["delete"]["chain"]["name"].as_str()).collect();
        assert_eq!(chains, ["dnat-web", "snat-web"]);
    }

    #[test]
    fn table_goes_with_the_last_container_if_nothing_else_is_in_it() {
        let mut objs: Vec<Value> = vec![json!({"metainfo": {"version": "1.0.6"}}), json!({"table": {"family": "ip", "name": "nexcage"}})];
        for c in ["prerouting", "output", "postrouting", "ports", "hairpin", "dnat-a", "snat-a", "localnet-vmbr0"] {
            objs.push(json!({"chain": {"family": "ip", "table": "nexcage", "name": c}}));
        }
        for (c, t) in [("prerouting", "ports"), ("output", "ports"), ("postrouting", "hairpin"), ("ports", "dnat-a"), ("hairpin", "snat-a")] {
            objs.push(json!({"rule": {"family": "ip", "table": "nexcage", "chain": c, "expr": [{"jump": {"target": t}}]}}));
        }
        objs.push(json!({"rule": {"family": "ip", "table": "nexcage", "chain": "dnat-a", "expr": [{"dnat": {"addr": "10.0.0.2", "port": 80}}]}}));
        assert!(only_ours_left(&objs, "a", &["vmbr0"]));
        assert!(!only_ours_left(&objs, "a", &[]), "the marker of a bridge still on stays, and the table with it");
        assert!(!only_ours_left(&objs, "b", &["vmbr0"]), "a's chains are still there");
        let mut theirs = objs.clone();
        theirs.push(json!({"chain": {"family": "ip", "table": "nexcage", "name": "admin-extra"}}));
        assert!(!only_ours_left(&theirs, "a", &["vmbr0"]), "someone else's chain keeps the table");
        let mut theirs = objs;
        theirs.push(json!({"rule": {"family": "ip", "table": "nexcage", "chain": "prerouting", "expr": [{"accept": null}]}}));
        assert!(!only_ours_left(&theirs, "a", &["vmbr0"]), "someone else's rule keeps the table");
    }

    #[test]
    fn localnet_goes_with_the_last_container_on_its_bridge() {
        let lo = |chain: &str, br: &str| json!({"rule": {"family": "ip", "table": "nexcage", "chain": chain, "handle": 1, "expr": [
            {"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "saddr"}}, "right": {"prefix": {"addr": "127.0.0.0", "len": 8}}}},
            {"match": {"op": "==", "left": {"meta": {"key": "oifname"}}, "right": br}}, {"masquerade": null}]}});
        let marker = |br: &str| json!({"chain": {"family": "ip", "table": "nexcage", "name": format!("localnet-{br}"), "handle": 2}});
        let objs = vec![lo("snat-a", "vmbr0"), lo("snat-b", "vmbr0"), lo("snat-c", "vmbr1"), marker("vmbr0"), marker("vmbr1")];
        assert!(localnet_off(&objs, "a").is_empty(), "b still publishes on vmbr0");
        assert_eq!(localnet_off(&objs[1..], "b"), ["vmbr0"]);
        assert_eq!(localnet_off(&objs, "c"), ["vmbr1"]);
        // Not turned on by nexcage (no marker): left alone.
        assert!(localnet_off(&objs[..3], "c").is_empty());
    }
}
