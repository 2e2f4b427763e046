//! Reads back the limits the kernel enforces on a process's cgroup (v1 or
//! v2), so `info` shows what is real rather than what was asked for.

use serde_json::{json, Map, Value};

/// The cgroup directory of `pid` for a v1 controller, or the v2 one.
fn dir_of(pid: i32, controller: &str) -> Option<std::path::PathBuf> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    let base = std::path::Path::new("/sys/fs/cgroup");
    for l in text.lines() {
        let mut it = l.splitn(3, ':');
        let (_, ctrls, path) = (it.next()?, it.next()?, it.next()?);
        if ctrls.split(',').any(|c| c == controller) {
            return Some(base.join(controller).join(path.trim_start_matches('/')));
        }
    }
    // v2: "0::/path"
    text.lines().find_map(|l| l.strip_prefix("0::")).map(|p| base.join(p.trim_start_matches('/')))
        .filter(|d| d.join("cgroup.controllers").exists())
}

fn read(d: &std::path::Path, f: &str) -> Option<String> {
    std::fs::read_to_string(d.join(f)).ok().map(|s| s.trim().to_string())
}

fn num(s: Option<String>) -> Value {
    match s {
        Some(s) if s == "max" => Value::Null,
        // v1 "unlimited" is a huge page-aligned number.
        Some(s) => s.parse::<u64>().ok().filter(|v| *v < (1u64 << 62)).map(Value::from).unwrap_or(Value::Null),
        None => Value::Null,
    }
}

/// `{memoryLimit, memorySwapLimit, cpus, cpuShares|cpuWeight, cpuQuota, cpuPeriod, pidsLimit}`
/// in bytes/us as the kernel has them; null where unlimited or unreadable.
pub fn enforced(pid: i32) -> Value {
    let mut m = Map::new();
    if let Some(d) = dir_of(pid, "memory") {
        if d.join("memory.limit_in_bytes").exists() {
            m.insert("memoryLimit".into(), num(read(&d, "memory.limit_in_bytes")));
            m.insert("memorySwapLimit".into(), num(read(&d, "memory.memsw.limit_in_bytes")));
        } else {
            m.insert("memoryLimit".into(), num(read(&d, "memory.max")));
            // v2 swap.max is swap alone; report memory+swap like OCI.
            let swap = num(read(&d, "memory.swap.max"));
            let total = match (m["memoryLimit"].as_u64(), swap.as_u64()) {
                (Some(a), Some(b)) => json!(a + b),
                _ => Value::Null,
            };
            m.insert("memorySwapLimit".into(), total);
        }
    }
    if let Some(d) = dir_of(pid, "cpu") {
        if let Some(max) = read(&d, "cpu.max") {
            let mut it = max.split_whitespace();
            m.insert("cpuQuota".into(), num(it.next().map(str::to_string)));
            m.insert("cpuPeriod".into(), num(it.next().map(str::to_string)));
            m.insert("cpuWeight".into(), num(read(&d, "cpu.weight")));
        } else {
            let q = read(&d, "cpu.cfs_quota_us");
            m.insert("cpuQuota".into(), if q.as_deref() == Some("-1") { Value::Null } else { num(q) });
            m.insert("cpuPeriod".into(), num(read(&d, "cpu.cfs_period_us")));
            m.insert("cpuShares".into(), num(read(&d, "cpu.shares")));
        }
    }
    if let Some(d) = dir_of(pid, "cpuset") {
        m.insert("cpus".into(), read(&d, "cpuset.cpus").or_else(|| read(&d, "cpuset.cpus.effective")).map(Value::from).unwrap_or(Value::Null));
    }
    if let Some(d) = dir_of(pid, "pids") {
        m.insert("pidsLimit".into(), num(read(&d, "pids.max")));
    }
    Value::Object(m)
}
