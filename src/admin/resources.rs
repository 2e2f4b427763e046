//! `nexcage system resources`: what this node has for containers: CPUs
//! and load, memory (/proc/meminfo), free space where nexcage stores
//! things, the configured ZFS pool, and the Proxmox node when configured.

use std::path::Path;

use serde_json::{json, Value};

use crate::context::Ctx;

/// `/proc/meminfo` field in bytes (the file gives kB).
fn meminfo(text: &str, key: &str) -> Option<u64> {
    let v = text.lines().find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))?;
    Some(v.split_whitespace().next()?.parse::<u64>().ok()? * 1024)
}

/// Free and total bytes of the filesystem holding `dir` (or its nearest
/// existing ancestor).
fn fs_space(dir: &Path) -> Value {
    let probe = dir.ancestors().find(|p| p.exists()).unwrap_or(Path::new("/"));
    match nix::sys::statvfs::statvfs(probe) {
        Ok(s) => json!({"path": dir, "freeBytes": s.blocks_available() * s.fragment_size(), "totalBytes": s.blocks() * s.fragment_size()}),
        Err(e) => json!({"path": dir, "error": e.to_string()}),
    }
}

fn zfs_pool(cfg: &nexcage_config::Config) -> Value {
    let Some(pool) = cfg.storage.pool.clone() else { return Value::Null };
    let z = nexcage_zfs::Zfs::new();
    match (z.pool_health(&pool), z.pool_usage(&pool)) {
        (Ok(h), Ok(u)) => json!({"pool": pool, "health": h, "freeBytes": u.free, "sizeBytes": u.size}),
        (Err(e), _) | (_, Err(e)) => json!({"pool": pool, "error": e.to_string()}),
    }
}

fn proxmox(cfg: &nexcage_config::Config) -> Value {
    if cfg.proxmox.host.is_none() && cfg.proxmox.token_file.is_none() && cfg.default_backend != Some(nexcage_config::Backend::Proxmox) {
        return Value::Null;
    }
    let status = || -> anyhow::Result<Value> {
        let (cp, _) = nexcage_pve::driver::from_config(cfg)?;
        let v = cp.version()?;
        let guests = cp.list()?;
        let running = guests.iter().filter(|g| matches!(g.status, nexcage_pve::driver::GuestStatus::Running)).count();
        Ok(json!({"node": cp.node(), "pveManager": v.version, "guests": guests.len(), "runningGuests": running}))
    };
    status().unwrap_or_else(|e| json!({"error": crate::logging::error_text(&e)}))
}

/// Everything as one JSON object (`--format json`); the text form prints it.
pub fn collect(ctx: &Ctx) -> Value {
    let cfg = ctx.config().unwrap_or_default();
    let mem = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let store = cfg.images.storage_path.clone().unwrap_or_else(nexcage_image::store::default_store_dir);
    json!({
        "cpus": super::perf::cpus(),
        "loadAverage": std::fs::read_to_string("/proc/loadavg").unwrap_or_default().split_whitespace().take(3).collect::<Vec<_>>().join(" "),
        "memory": {"totalBytes": meminfo(&mem, "MemTotal"), "availableBytes": meminfo(&mem, "MemAvailable"),
                   "swapTotalBytes": meminfo(&mem, "SwapTotal"), "swapFreeBytes": meminfo(&mem, "SwapFree")},
        "storage": [fs_space(&store), fs_space(&ctx.root)],
        "zfs": zfs_pool(&cfg),
        "proxmox": proxmox(&cfg),
    })
}

/// The text form: one `name: value` line per resource, sizes in MiB/GiB.
pub fn print(v: &Value) {
    let mib = |b: &Value| b.as_u64().map_or("-".into(), |b| format!("{} MiB", b >> 20));
    let gib = |b: &Value| b.as_u64().map_or("-".into(), |b| format!("{:.1} GiB", b as f64 / (1u64 << 30) as f64));
    println!("cpu:      {} CPUs, load {}", v["cpus"], v["loadAverage"].as_str().unwrap_or(""));
    let m = &v["memory"];
    println!("memory:   {} available of {}", mib(&m["availableBytes"]), mib(&m["totalBytes"]));
    println!("swap:     {} free of {}", mib(&m["swapFreeBytes"]), mib(&m["swapTotalBytes"]));
    for s in v["storage"].as_array().into_iter().flatten() {
        match s["error"].as_str() {
            Some(e) => println!("storage:  {}: {e}", s["path"].as_str().unwrap_or("")),
            None => println!("storage:  {} free of {} at {}", gib(&s["freeBytes"]), gib(&s["totalBytes"]), s["path"].as_str().unwrap_or("")),
        }
    }
    let z = &v["zfs"];
    match (z.is_null(), z["error"].as_str()) {
        (true, _) => println!("zfs:      no pool configured (storage.pool)"),
        (false, Some(e)) => println!("zfs:      {}: {e}", z["pool"].as_str().unwrap_or("")),
        (false, None) => println!("zfs:      {} {}, {} free of {}", z["pool"].as_str().unwrap_or(""), z["health"].as_str().unwrap_or(""), gib(&z["freeBytes"]), gib(&z["sizeBytes"])),
    }
    let p = &v["proxmox"];
    match (p.is_null(), p["error"].as_str()) {
        (true, _) => println!("proxmox:  not configured"),
        (false, Some(e)) => println!("proxmox:  {e}"),
        (false, None) => println!("proxmox:  node {}, pve-manager {}, {} guests ({} running)", p["node"].as_str().unwrap_or(""),
            p["pveManager"].as_str().unwrap_or(""), p["guests"], p["runningGuests"]),
    }
}
