//! Applies the administrator's options onto a bundle's config.json (as
//! JSON, so fields nexcage does not know survive untouched).

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

use super::opts::AdminArgs;
use super::*;
use crate::network::{self, Network};

const MIB: u64 = 1024 * 1024;

fn obj<'a>(v: &'a mut Value, key: &str) -> &'a mut Value {
    if !v.get(key).is_some_and(Value::is_object) {
        v[key] = json!({});
    }
    &mut v[key]
}

fn drop_namespace(spec: &mut Value, kind: &str) {
    let linux = obj(spec, "linux");
    let mut ns: Vec<Value> = linux["namespaces"].as_array().cloned().unwrap_or_default();
    ns.retain(|n| n["type"] != kind);
    linux["namespaces"] = Value::Array(ns);
}

fn add_namespace(spec: &mut Value, kind: &str) {
    drop_namespace(spec, kind);
    if let Some(a) = spec["linux"]["namespaces"].as_array_mut() {
        a.push(json!({"type": kind}));
    }
}

/// Appends bind mounts (e.g. the network's resolv.conf and hosts).
pub fn add_mounts(spec: &mut Value, extra: Vec<Value>) {
    let mut mounts: Vec<Value> = spec["mounts"].as_array().cloned().unwrap_or_default();
    mounts.extend(extra);
    spec["mounts"] = Value::Array(mounts);
}

/// Every option onto `spec`; `image` is the reference recorded as annotation.
pub fn apply(spec: &mut Value, a: &AdminArgs, image: &str, backend: Option<&str>) -> Result<()> {
    let res = obj(obj(spec, "linux"), "resources");
    if let Some(mb) = a.memory {
        if mb < 16 {
            bail!("--memory {mb}: at least 16 MiB");
        }
        let mem = obj(res, "memory");
        mem["limit"] = json!(mb * MIB);
        // OCI swap is memory+swap.
        mem["swap"] = json!((mb + a.memory_swap.unwrap_or(0)) * MIB);
    }
    if a.cores.is_some() || a.cpu_shares.is_some() || a.cpu_quota.is_some() {
        let cpu = obj(res, "cpu");
        if let Some(n) = a.cores {
            let online = std::thread::available_parallelism().map(|n| n.get() as u32).unwrap_or(1);
            if n > online {
                bail!("--cores {n}: this node has {online} CPUs");
            }
            cpu["cpus"] = json!(if n == 1 { "0".to_string() } else { format!("0-{}", n - 1) });
        }
        if let Some(s) = a.cpu_shares {
            if !(2..=262144).contains(&s) {
                bail!("--cpu-shares {s}: expected 2..262144");
            }
            cpu["shares"] = json!(s);
        }
        if let Some(q) = a.cpu_quota {
            cpu["quota"] = json!(q);
            cpu["period"] = json!(100000u64);
        }
    }
    let process = obj(spec, "process");
    let mut env: Vec<Value> = process["env"].as_array().cloned().unwrap_or_default();
    for e in &a.env {
        let Some((k, _)) = e.split_once('=').filter(|(k, _)| !k.is_empty()) else {
            bail!("--env {e:?}: expected KEY=VALUE");
        };
        // A later value for the same key replaces the image's.
        env.retain(|x| x.as_str().and_then(|s| s.split_once('=')).map(|(ek, _)| ek) != Some(k));
        env.push(json!(e));
    }
    process["env"] = Value::Array(env);
    let mut mounts: Vec<Value> = spec["mounts"].as_array().cloned().unwrap_or_default();
    for m in &a.mount {
        let parts: Vec<&str> = m.split(':').collect();
        let (src, dst, ro) = match parts.as_slice() {
            [s, d] => (*s, *d, false),
            [s, d, "ro"] => (*s, *d, true),
            [s, d, "rw"] => (*s, *d, false),
            _ => bail!("--mount {m:?}: expected SRC:DST[:ro]"),
        };
        let src = std::path::absolute(src).with_context(|| format!("--mount {m:?}"))?;
        if !src.exists() {
            bail!("--mount {m:?}: {} does not exist", src.display());
        }
        if !dst.starts_with('/') {
            bail!("--mount {m:?}: the destination must be absolute");
        }
        let mut opts = vec!["rbind", "rprivate"];
        opts.push(if ro { "ro" } else { "rw" });
        mounts.push(json!({"destination": dst, "type": "bind", "source": src, "options": opts}));
    }
    spec["mounts"] = Value::Array(mounts);
    match a.network.as_deref().map(network::option::parse).transpose()? {
        Some(Network::Host) => drop_namespace(spec, "network"),
        // A namespace of its own: loopback only, or the veth nexcage attaches.
        Some(Network::None | Network::Bridge(_) | Network::Custom(_)) => add_namespace(spec, "network"),
        None => {}
    }
    let mut ann: serde_json::Map<String, Value> = spec["annotations"].as_object().cloned().unwrap_or_default();
    ann.insert(ADMIN_ANNOTATION.into(), json!("true"));
    ann.insert(IMAGE_ANNOTATION.into(), json!(image));
    if a.auto_start {
        ann.insert(AUTOSTART_ANNOTATION.into(), json!("true"));
    }
    if let Some(s) = &a.storage_size {
        nexcage_zfs::parse_size(s).with_context(|| format!("--storage-size {s:?}: expected a size like 10G"))?;
        ann.insert(DISK_ANNOTATION.into(), json!(s));
    }
    if let Some(t) = &a.storage_type {
        ann.insert(STORAGE_TYPE_ANNOTATION.into(), json!(t));
        // dir: no dataset, the bundle's rootfs in place.
        if t == "dir" {
            ann.insert(STRATEGY_ANNOTATION.into(), json!("bind"));
        }
    }
    if let Some(b) = backend {
        ann.insert(BACKEND_ANNOTATION.into(), json!(b));
    }
    if let Some(n) = &a.network {
        ann.insert(NETWORK_ANNOTATION.into(), json!(n));
    }
    if !a.port.is_empty() {
        ann.insert(PORTS_ANNOTATION.into(), json!(a.port.join(",")));
    }
    spec["annotations"] = Value::Object(ann);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_onto_spec() {
        let mut spec = json!({"process": {"env": ["PATH=/bin", "A=1"]}, "linux": {"namespaces": [{"type": "pid"}, {"type": "network"}]}});
        let a = AdminArgs {
            memory: Some(64),
            memory_swap: Some(32),
            cores: Some(1),
            cpu_shares: Some(512),
            cpu_quota: Some(50000),
            env: vec!["A=2".into(), "B=x=y".into()],
            network: Some("host".into()),
            auto_start: true,
            storage_size: Some("10G".into()),
            ..Default::default()
        };
        apply(&mut spec, &a, "localhost/web:1", Some("native")).unwrap();
        let r = &spec["linux"]["resources"];
        assert_eq!(r["memory"]["limit"], 64 * MIB);
        assert_eq!(r["memory"]["swap"], 96 * MIB);
        assert_eq!(r["cpu"]["cpus"], "0");
        assert_eq!(r["cpu"]["shares"], 512);
        assert_eq!(r["cpu"]["period"], 100000);
        assert_eq!(spec["process"]["env"], json!(["PATH=/bin", "A=2", "B=x=y"]));
        assert_eq!(spec["linux"]["namespaces"], json!([{"type": "pid"}]));
        assert_eq!(spec["annotations"][AUTOSTART_ANNOTATION], "true");
        assert_eq!(spec["annotations"][DISK_ANNOTATION], "10G");
        assert_eq!(spec["annotations"][BACKEND_ANNOTATION], "native");
    }

    #[test]
    fn bad_values() {
        let mut spec = json!({});
        let a = AdminArgs { env: vec!["=x".into()], ..Default::default() };
        assert!(apply(&mut spec, &a, "i", None).is_err());
        let a = AdminArgs { mount: vec!["/nonexistent-x:/x".into()], ..Default::default() };
        assert!(apply(&mut json!({}), &a, "i", None).is_err());
    }
}
