//! `linux.resources` -> memory, swap, cpulimit, cpuunits, cores, cgroup2 keys.

use super::{err, refuse_if_set, MapError, MapOptions, Out};
use serde_json::Value;

const MIB: i64 = 1024 * 1024;
const P: &str = "linux.resources";

fn mib_ceil(bytes: i64) -> i64 {
    (bytes + MIB - 1) / MIB
}

pub(super) fn map(r: &Value, opts: &MapOptions, out: &mut Out) -> Result<(), MapError> {
    memory(r.get("memory").unwrap_or(&Value::Null), opts, out)?;
    cpu(r.get("cpu").unwrap_or(&Value::Null), out)?;
    if let Some(l) = r.pointer("/pids/limit").and_then(Value::as_i64) {
        // <= 0 means "no limit" in OCI.
        if l > 0 {
            out.raw("lxc.cgroup2.pids.max", l.to_string());
        }
    }
    devices(r, out)?;
    if let Some(u) = r.get("unified").and_then(Value::as_object) {
        for (k, v) in u {
            if k.is_empty()
                || !k
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '_')
            {
                return err(format!("{P}.unified.{k}"), "not a cgroup2 file name");
            }
            let v = v.as_str().unwrap_or_default();
            if v.contains('\n') {
                return err(format!("{P}.unified.{k}"), "value contains a line break");
            }
            out.raw(&format!("lxc.cgroup2.{k}"), v);
        }
    }
    let no = "not supported by the Proxmox backend";
    refuse_if_set(r, P, "hugepageLimits", no)?;
    refuse_if_set(r, P, "blockIO", no)?;
    refuse_if_set(r, P, "network", no)?;
    refuse_if_set(r, P, "rdma", no)?;
    Ok(())
}

/// What an update is laid over: the guest's `memory` now (MiB), and the
/// host's memory and swap (MiB), which Proxmox gets for "no limit" (as at
/// create).
#[derive(Debug, Clone, Copy, Default)]
pub struct UpdateBase {
    pub memory_mib: Option<u64>,
    pub host_memory_mib: u64,
    pub host_swap_mib: u64,
}

/// Whether an update sets anything [`update_keys`] maps (memory limit or
/// swap, cpu shares, quota or cpus; 0 and "" leave a value unchanged),
/// i.e. whether the guest's config has to be read at all.
pub fn update_touches_config(r: &Value) -> bool {
    ["/memory/limit", "/memory/swap", "/cpu/shares", "/cpu/quota", "/cpu/cpus"].iter().any(|p| {
        r.pointer(p).is_some_and(|v| v.as_i64().is_some_and(|n| n != 0) || v.as_u64().is_some_and(|n| n != 0) || v.as_str().is_some_and(|s| !s.is_empty()))
    })
}

/// The guest-config keys an OCI `update` (runc's `update`: a
/// `LinuxResources` in which only what is set changes) sets and deletes:
/// `memory` for `memory.limit` (-1: the host's size), `swap` for
/// `memory.swap` (memory+swap over the new or current limit; -1: the
/// host's swap), `cpuunits`, `cpulimit` and `cores` for `cpu.shares`,
/// `cpu.quota` (-1: `cpulimit` deleted, no limit) and `cpu.cpus`, with
/// create's units and bounds (a limit below 16 MiB, shares outside
/// 2..262144, ... are the same errors). Fields left out (or 0) change
/// nothing. Returns (set, delete).
pub fn update_keys(r: &Value, base: UpdateBase) -> Result<(std::collections::BTreeMap<String, String>, Vec<String>), MapError> {
    let mut out = Out::default();
    let mut delete = Vec::new();
    let m = r.get("memory").unwrap_or(&Value::Null);
    let limit = m.get("limit").and_then(Value::as_i64).filter(|l| *l != 0);
    let mut limit_mib = base.memory_mib.map(|m| m as i64);
    match limit {
        Some(-1) => {
            out.key("memory", base.host_memory_mib.max(16).to_string());
            limit_mib = None;
        }
        Some(l) if l < 16 * MIB => return err(format!("{P}.memory.limit"), format!("{l} bytes is below Proxmox's 16 MiB minimum")),
        Some(l) => {
            out.key("memory", mib_ceil(l).to_string());
            limit_mib = Some(mib_ceil(l));
        }
        None => {}
    }
    match m.get("swap").and_then(Value::as_i64).filter(|s| *s != 0) {
        Some(-1) => out.key("swap", base.host_swap_mib.to_string()),
        Some(s) => {
            let Some(l) = limit_mib else {
                return err(format!("{P}.memory.swap"), "a swap limit (memory+swap) needs a memory limit");
            };
            if s < l * MIB {
                return err(format!("{P}.memory.swap"), format!("{s} is below the memory limit {l} MiB (OCI swap is memory+swap)"));
            }
            out.key("swap", (mib_ceil(s) - l).to_string());
        }
        None => {}
    }
    let c = r.get("cpu").unwrap_or(&Value::Null);
    if c.get("quota").and_then(Value::as_i64) == Some(-1) {
        delete.push("cpulimit".to_string());
    }
    cpu(c, &mut out)?;
    Ok((out.keys, delete))
}

fn memory(m: &Value, opts: &MapOptions, out: &mut Out) -> Result<(), MapError> {
    let limit = m.get("limit").and_then(Value::as_i64).filter(|l| *l != -1);
    let swap = m.get("swap").and_then(Value::as_i64).filter(|s| *s != -1);
    let mem_mib = match limit {
        Some(l) if l < 16 * MIB => {
            return err(
                format!("{P}.memory.limit"),
                format!("{l} bytes is below Proxmox's 16 MiB minimum"),
            )
        }
        Some(l) => mib_ceil(l),
        None => i64::try_from(opts.unlimited_memory_mib.max(16)).unwrap_or(i64::MAX),
    };
    out.key("memory", mem_mib.to_string());
    let swap_mib = match (swap, limit) {
        (None, _) => i64::try_from(opts.unlimited_swap_mib).unwrap_or(i64::MAX),
        (Some(_), None) => {
            return err(
                format!("{P}.memory.swap"),
                "a swap limit (memory+swap) needs memory.limit",
            )
        }
        (Some(s), Some(l)) if s < l => {
            return err(
                format!("{P}.memory.swap"),
                format!("{s} is below memory.limit {l} (OCI swap is memory+swap)"),
            )
        }
        (Some(s), Some(l)) => mib_ceil(s - l),
    };
    out.key("swap", swap_mib.to_string());
    if let Some(r) = m
        .get("reservation")
        .and_then(Value::as_i64)
        .filter(|r| *r > 0)
    {
        out.raw("lxc.cgroup2.memory.low", r.to_string());
    }
    let no = "not supported on cgroup v2 (Proxmox VE 8/9)";
    for f in ["kernel", "kernelTCP", "swappiness"] {
        refuse_if_set(m, &format!("{P}.memory"), f, no)?;
    }
    if m.get("disableOOMKiller").and_then(Value::as_bool) == Some(true) {
        return err(format!("{P}.memory.disableOOMKiller"), no);
    }
    Ok(())
}

/// Format a fractional CPU count with at most 5 decimals (cpu.max
/// resolution is 1/100000), no trailing zeros.
fn fmt_frac(v: f64) -> String {
    let s = format!("{v:.5}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    s.to_string()
}

/// runc's cgroup v1 shares -> v2 weight conversion.
pub fn shares_to_weight(shares: u64) -> u64 {
    1 + ((shares - 2) * 9999) / 262142
}

/// Count CPUs in a cpuset list such as `0-3,8`.
pub fn cpuset_count(list: &str) -> Option<u32> {
    let mut n = 0u32;
    for part in list.split(',').map(str::trim) {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b): (u32, u32) = (a.parse().ok()?, b.parse().ok()?);
                if b < a {
                    return None;
                }
                n = n.checked_add(b - a + 1)?;
            }
            None => {
                part.parse::<u32>().ok()?;
                n += 1;
            }
        }
    }
    Some(n)
}

fn cpu(c: &Value, out: &mut Out) -> Result<(), MapError> {
    let f = |k: &str| format!("{P}.cpu.{k}");
    if let Some(shares) = c.get("shares").and_then(Value::as_u64).filter(|s| *s != 0) {
        if !(2..=262144).contains(&shares) {
            return err(f("shares"), format!("{shares} is outside 2..262144"));
        }
        out.key("cpuunits", shares_to_weight(shares).to_string());
    }
    if let Some(q) = c.get("quota").and_then(Value::as_i64).filter(|q| *q > 0) {
        let period = c
            .get("period")
            .and_then(Value::as_u64)
            .filter(|p| *p > 0)
            .unwrap_or(100_000);
        let limit = q as f64 / period as f64;
        let s = fmt_frac(limit);
        if s == "0" || s.is_empty() {
            return err(
                f("quota"),
                format!("{q}/{period} is below Proxmox's cpulimit resolution (0.00001)"),
            );
        }
        if limit > 8192.0 {
            return err(
                f("quota"),
                format!("{q}/{period} is above Proxmox's cpulimit maximum of 8192"),
            );
        }
        out.key("cpulimit", s);
    }
    if let Some(cpus) = c
        .get("cpus")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
    {
        let n = cpuset_count(cpus).ok_or_else(|| super::MapError {
            field: f("cpus"),
            msg: format!("'{cpus}' is not a cpu list"),
        })?;
        if !(1..=8192).contains(&n) {
            return err(
                f("cpus"),
                format!("{n} cpus is outside Proxmox's cores range 1..8192"),
            );
        }
        out.key("cores", n.to_string());
        out.raw("lxc.cgroup2.cpuset.cpus", cpus);
    }
    if let Some(mems) = c
        .get("mems")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
    {
        if cpuset_count(mems).is_none() {
            return err(f("mems"), format!("'{mems}' is not a node list"));
        }
        out.raw("lxc.cgroup2.cpuset.mems", mems);
    }
    for k in ["realtimeRuntime", "realtimePeriod", "burst"] {
        if c.get(k).and_then(Value::as_i64).unwrap_or(0) != 0 {
            return err(f(k), "not supported by the Proxmox backend");
        }
    }
    if c.get("idle").and_then(Value::as_i64).unwrap_or(0) != 0 {
        return err(f("idle"), "not supported by the Proxmox backend");
    }
    Ok(())
}

/// Device cgroup rules -> `lxc.cgroup2.devices.allow/deny`.
fn devices(r: &Value, out: &mut Out) -> Result<(), MapError> {
    let Some(list) = r.get("devices").and_then(Value::as_array) else {
        return Ok(());
    };
    for (i, d) in list.iter().enumerate() {
        let allow = d.get("allow").and_then(Value::as_bool).unwrap_or(false);
        let ty = d.get("type").and_then(Value::as_str).unwrap_or("a");
        let access = d.get("access").and_then(Value::as_str).unwrap_or("rwm");
        if !matches!(ty, "a" | "b" | "c")
            || access.is_empty()
            || !access.chars().all(|c| "rwm".contains(c))
        {
            return err(
                format!("{P}.devices[{i}]"),
                "bad device rule (type a|b|c, access from rwm)",
            );
        }
        let num = |k: &str| {
            d.get(k)
                .and_then(Value::as_i64)
                .map_or("*".to_string(), |n| n.to_string())
        };
        let rule = if ty == "a" && d.get("major").is_none() && d.get("minor").is_none() {
            "a".to_string()
        } else {
            format!("{ty} {}:{} {access}", num("major"), num("minor"))
        };
        let key = if allow {
            "lxc.cgroup2.devices.allow"
        } else {
            "lxc.cgroup2.devices.deny"
        };
        out.raw(key, rule);
    }
    Ok(())
}
