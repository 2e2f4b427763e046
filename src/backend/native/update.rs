//! update: new resource limits applied to the container's cgroup, then each
//! requested value read back from its cgroup v1 file, so that no flag is
//! silently dropped (a controller file the kernel does not offer, a value
//! the kernel rounds away). A memory limit below current usage is refused
//! by the kernel and libcgroups says so; nothing is changed then.
//! `memory.disableOOMKiller` sets `memory.oom_control`.
//!
//! As runc (1.1.5 `update.go` with libcontainer's cgroup `Set`): a number
//! 0 or an empty cpu/mem list means "leave unchanged", from a flag or from
//! the `--resources` file alike; only what is really applied is read back.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Result};
use libcontainer::oci_spec::runtime::LinuxResources;

use super::{cgroup_manager, load};
use crate::state::Record;

pub fn update(rec: &Record, dir: &Path, resources: &LinuxResources) -> Result<()> {
    let c = load(rec, dir)?;
    let pid = rec.pid.ok_or_else(|| anyhow!("container {} has no process", rec.id))?;
    update_cgroup(&cgroup_manager::manager(&c)?, pid, resources)
}

/// Applies `resources` through `m` (libcgroups' manager of the cgroup
/// `pid` is in), then reads every requested cgroup v1 value back from the
/// cgroup `pid` is in (the Proxmox backend's guest shares this).
pub fn update_cgroup(m: &libcgroups::common::AnyCgroupManager, pid: i32, resources: &LinuxResources) -> Result<()> {
    let resources = &unset_zeros(resources);
    let v1 = Path::new("/sys/fs/cgroup/memory").is_dir();
    let wanted = if v1 { expectations(resources) } else { Vec::new() };
    let paths = if v1 { cgroup_dirs(pid)? } else { Vec::new() };
    // A file the kernel does not offer: refuse before anything is written.
    for e in &wanted {
        let f = file_of(&paths, e)?;
        if !f.exists() {
            bail!("cannot update {}: {} does not exist on this host", e.field, f.display());
        }
    }
    // An update that does not name disableOOMKiller keeps the current one.
    let disable_oom_killer = match resources.memory().as_ref().and_then(|m| m.disable_oom_killer()) {
        Some(d) => d,
        None => paths.iter().find(|(c, _)| c == "memory").is_some_and(|(_, d)| {
            std::fs::read_to_string(d.join("memory.oom_control")).is_ok_and(|t| t.lines().any(|l| l.trim() == "oom_kill_disable 1"))
        }),
    };
    cgroup_manager::apply(m, resources, disable_oom_killer)?;
    for e in &wanted {
        let f = file_of(&paths, e)?;
        let got = std::fs::read_to_string(&f).map_err(|err| anyhow!("failed to read back {}: {}", f.display(), super::os_error(&err)))?;
        if !e.want.matches(got.trim()) {
            bail!("{} was not applied: {} reads {:?}, want {}", e.field, f.display(), got.trim(), e.want);
        }
    }
    Ok(())
}

/// `r` without the fields runc leaves unchanged: numbers that are 0 and
/// cpu/mem lists that are empty (`pids.limit` 0 drops the pids section).
fn unset_zeros(r: &LinuxResources) -> LinuxResources {
    fn nz<T: Default + PartialEq>(v: Option<T>) -> Option<T> {
        v.filter(|x| *x != T::default())
    }
    let mut r = r.clone();
    if let Some(x) = *r.memory() {
        let mut m = x;
        m.set_limit(nz(x.limit())).set_reservation(nz(x.reservation())).set_swap(nz(x.swap()));
        m.set_kernel(nz(x.kernel())).set_kernel_tcp(nz(x.kernel_tcp()));
        r.set_memory(Some(m));
    }
    if let Some(x) = r.cpu().clone() {
        let mut c = x.clone();
        c.set_shares(nz(x.shares())).set_quota(nz(x.quota())).set_period(nz(x.period()));
        c.set_realtime_runtime(nz(x.realtime_runtime())).set_realtime_period(nz(x.realtime_period()));
        c.set_cpus(nz(x.cpus().clone())).set_mems(nz(x.mems().clone()));
        r.set_cpu(Some(c));
    }
    if r.pids().is_some_and(|p| p.limit() == 0) {
        r.set_pids(None);
    }
    if let Some(mut b) = r.block_io().clone() {
        b.set_weight(nz(b.weight()));
        r.set_block_io(Some(b));
    }
    r
}

/// What one requested field must read back as, in a cgroup v1 file.
#[derive(Debug, PartialEq)]
pub struct Expect {
    pub field: &'static str,
    pub controller: &'static str,
    /// The file, or (several) the first that exists on this host.
    pub files: &'static [&'static str],
    pub want: Want,
}

#[derive(Debug, PartialEq)]
pub enum Want {
    /// The number as written.
    Exact(i64),
    /// The number as written, for the spec's unsigned fields.
    Unsigned(u64),
    /// Bytes, which the kernel rounds down to whole pages; -1 = unlimited.
    Bytes(i64),
    /// A cpu/mem list ("0-2,4"), compared as a set.
    List(String),
    /// A line of a key-value file (`memory.oom_control`).
    Line(String),
    /// `pids.max`: "max" for unlimited.
    Pids(i64),
}

impl std::fmt::Display for Want {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Want::Exact(n) | Want::Bytes(n) | Want::Pids(n) => write!(f, "{n}"),
            Want::Unsigned(n) => write!(f, "{n}"),
            Want::List(s) | Want::Line(s) => write!(f, "{s:?}"),
        }
    }
}

impl Want {
    fn matches(&self, got: &str) -> bool {
        match self {
            Want::Exact(n) => got.parse::<i64>().ok() == Some(*n),
            Want::Unsigned(n) => got.parse::<u64>().ok() == Some(*n),
            Want::Bytes(n) if *n < 0 => got.parse::<u64>().is_ok_and(|g| g >= 1 << 62),
            Want::Bytes(n) => got.parse::<i64>().is_ok_and(|g| g == n - n % 4096 || g == *n),
            Want::List(s) => parse_list(s).is_some() && parse_list(s) == parse_list(got),
            Want::Line(l) => got.lines().any(|x| x.trim() == l),
            Want::Pids(n) if *n < 0 => got == "max",
            Want::Pids(n) => got.parse::<i64>().ok() == Some(*n),
        }
    }
}

/// "0-2,4" as the set {0,1,2,4}; None when malformed.
fn parse_list(s: &str) -> Option<BTreeSet<u32>> {
    let mut set = BTreeSet::new();
    for part in s.trim().split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => set.extend(a.trim().parse::<u32>().ok()?..=b.trim().parse::<u32>().ok()?),
            None => {
                set.insert(part.trim().parse().ok()?);
            }
        }
    }
    Some(set)
}

/// The cgroup v1 files `r` must change, with the values they must then
/// read back (libcgroups' v1 mapping; runc's names for the fields).
pub fn expectations(r: &LinuxResources) -> Vec<Expect> {
    let mut v = Vec::new();
    let mut add = |field, controller, files, want| v.push(Expect { field, controller, files, want });
    if let Some(m) = r.memory() {
        if let Some(n) = m.limit() {
            add("memory.limit", "memory", &["memory.limit_in_bytes"], Want::Bytes(n));
        }
        if let Some(n) = m.reservation() {
            add("memory.reservation", "memory", &["memory.soft_limit_in_bytes"], Want::Bytes(n));
        }
        if let Some(n) = m.swap() {
            add("memory.swap", "memory", &["memory.memsw.limit_in_bytes"], Want::Bytes(n));
        }
        if let Some(n) = m.swappiness() {
            add("memory.swappiness", "memory", &["memory.swappiness"], Want::Unsigned(n));
        }
        if let Some(n) = m.kernel() {
            add("memory.kernel", "memory", &["memory.kmem.limit_in_bytes"], Want::Bytes(n));
        }
        if let Some(n) = m.kernel_tcp() {
            add("memory.kernelTCP", "memory", &["memory.kmem.tcp.limit_in_bytes"], Want::Bytes(n));
        }
        if let Some(d) = m.disable_oom_killer() {
            add("memory.disableOOMKiller", "memory", &["memory.oom_control"], Want::Line(format!("oom_kill_disable {}", u8::from(d))));
        }
    }
    if let Some(c) = r.cpu() {
        if let Some(n) = c.shares() {
            add("cpu.shares", "cpu", &["cpu.shares"], Want::Unsigned(n));
        }
        if let Some(n) = c.quota() {
            add("cpu.quota", "cpu", &["cpu.cfs_quota_us"], Want::Exact(n));
        }
        if let Some(n) = c.period() {
            add("cpu.period", "cpu", &["cpu.cfs_period_us"], Want::Unsigned(n));
        }
        if let Some(n) = c.realtime_runtime() {
            add("cpu.realtimeRuntime", "cpu", &["cpu.rt_runtime_us"], Want::Exact(n));
        }
        if let Some(n) = c.realtime_period() {
            add("cpu.realtimePeriod", "cpu", &["cpu.rt_period_us"], Want::Unsigned(n));
        }
        if let Some(s) = c.cpus() {
            add("cpu.cpus", "cpuset", &["cpuset.cpus"], Want::List(s.clone()));
        }
        if let Some(s) = c.mems() {
            add("cpu.mems", "cpuset", &["cpuset.mems"], Want::List(s.clone()));
        }
    }
    if let Some(p) = r.pids() {
        add("pids.limit", "pids", &["pids.max"], Want::Pids(p.limit()));
    }
    if let Some(b) = r.block_io() {
        if let Some(w) = b.weight() {
            add("blockIO.weight", "blkio", &["blkio.weight", "blkio.bfq.weight"], Want::Exact(w as i64));
        }
        let throttles: [(&str, &'static [&'static str], _); 4] = [
            ("blockIO.throttleReadBpsDevice", &["blkio.throttle.read_bps_device"], b.throttle_read_bps_device()),
            ("blockIO.throttleWriteBpsDevice", &["blkio.throttle.write_bps_device"], b.throttle_write_bps_device()),
            ("blockIO.throttleReadIOPSDevice", &["blkio.throttle.read_iops_device"], b.throttle_read_iops_device()),
            ("blockIO.throttleWriteIOPSDevice", &["blkio.throttle.write_iops_device"], b.throttle_write_iops_device()),
        ];
        for (field, files, devs) in throttles {
            for d in devs.iter().flatten().filter(|d| d.rate() > 0) {
                add(field, "blkio", files, Want::Line(format!("{}:{} {}", d.major(), d.minor(), d.rate())));
            }
        }
    }
    v
}

/// (controller, directory) of each v1 hierarchy `pid` is in.
fn cgroup_dirs(pid: i32) -> Result<Vec<(String, PathBuf)>> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
        .map_err(|e| anyhow!("failed to read /proc/{pid}/cgroup: {}", super::os_error(&e)))?;
    let mut v = Vec::new();
    for line in text.lines() {
        let mut f = line.splitn(3, ':');
        let (_, ctrls, path) = (f.next(), f.next().unwrap_or(""), f.next().unwrap_or(""));
        for c in ctrls.split(',').filter(|c| !c.is_empty() && !c.starts_with("name=")) {
            v.push((c.to_string(), Path::new("/sys/fs/cgroup").join(c).join(path.trim_start_matches('/'))));
        }
    }
    Ok(v)
}

/// The file `e` is read back from: the first of its files that exists (the
/// first when none does).
fn file_of(paths: &[(String, PathBuf)], e: &Expect) -> Result<PathBuf> {
    let dir = paths
        .iter()
        .find(|(c, _)| c == e.controller)
        .map(|(_, d)| d)
        .ok_or_else(|| anyhow!("cannot update {}: the container is in no {} cgroup", e.field, e.controller))?;
    let all = e.files.iter().map(|f| dir.join(f));
    Ok(all.clone().find(|p| p.exists()).unwrap_or_else(|| dir.join(e.files[0])))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_field_has_a_file() {
        let r: LinuxResources = serde_json::from_str(
            r#"{"memory":{"limit":67108864,"reservation":-1,"disableOOMKiller":true},
                "cpu":{"shares":512,"quota":10000,"cpus":"0-1"},"pids":{"limit":50},
                "blockIO":{"weight":300,"throttleReadBpsDevice":[{"major":8,"minor":0,"rate":1000}]}}"#,
        )
        .unwrap();
        let files: Vec<&str> = expectations(&r).iter().map(|e| e.files[0]).collect();
        assert_eq!(
            files,
            ["memory.limit_in_bytes", "memory.soft_limit_in_bytes", "memory.oom_control", "cpu.shares", "cpu.cfs_quota_us", "cpuset.cpus", "pids.max", "blkio.weight", "blkio.throttle.read_bps_device"]
        );
    }

    /// runc 1.1.5 leaves a field unchanged when it is 0 or "" (checked
    /// with `runc update --memory 0 --cpuset-cpus '' ...`: exit 0, nothing written).
    #[test]
    fn zero_and_empty_mean_unchanged() {
        let r: LinuxResources = serde_json::from_str(
            r#"{"memory":{"limit":0,"reservation":0,"swap":-1},"cpu":{"shares":0,"quota":0,"period":0,
                "realtimeRuntime":0,"realtimePeriod":0,"cpus":"","mems":"0"},"pids":{"limit":0},"blockIO":{"weight":0}}"#,
        )
        .unwrap();
        let fields: Vec<&str> = expectations(&unset_zeros(&r)).iter().map(|e| e.field).collect();
        assert_eq!(fields, ["memory.swap", "cpu.mems"]);
        let big: LinuxResources = serde_json::from_str(r#"{"cpu":{"shares":18446744073709551615}}"#).unwrap();
        assert_eq!(expectations(&big)[0].want.to_string(), "18446744073709551615");
    }

    #[test]
    fn read_back_rules() {
        assert!(Want::Bytes(67108864).matches("67108864"));
        assert!(Want::Bytes(1_000_001).matches("999424"));
        assert!(!Want::Bytes(67108864).matches("9223372036854771712"));
        assert!(Want::Bytes(-1).matches("9223372036854771712"));
        assert!(Want::List("0,1".into()).matches("0-1"));
        assert!(!Want::List("0-2".into()).matches("0-1"));
        assert!(Want::Line("oom_kill_disable 1".into()).matches("oom_kill_disable 1\nunder_oom 0"));
        assert!(Want::Pids(-1).matches("max"));
        assert!(Want::Pids(50).matches("50"));
    }
}
