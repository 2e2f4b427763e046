//! Cgroup statistics in runc's `events --stats` shape (runc's
//! `types/events.go`): the one type both backends return from `stats`.
//!
//! Fields a backend cannot read are left out of the JSON (not zero), so the
//! native backend (libcgroups, v1 or v2) reports runc's full set and the
//! Proxmox backend the subset it reads from the guest's cgroup files.
//! Units: bytes for memory, nanoseconds for cpu time, counts otherwise.

use std::collections::BTreeMap;

use serde::Serialize;

/// runc's `Stats` (`cpu`, `memory`, `pids`, `blkio`, `hugetlb`).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Stats {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu: Option<Cpu>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory: Option<Memory>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pids: Option<Pids>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blkio: Option<Blkio>,
    /// Per page size (`2MB`, `1GB`, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hugetlb: Option<BTreeMap<String, Hugetlb>>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Cpu {
    pub usage: CpuUsage,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub throttling: Option<Throttling>,
}

/// CPU time in nanoseconds.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct CpuUsage {
    pub total: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub percpu: Option<Vec<u64>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub percpu_kernel: Option<Vec<u64>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub percpu_user: Option<Vec<u64>>,
    pub kernel: u64,
    pub user: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Throttling {
    pub periods: u64,
    pub throttled_periods: u64,
    /// Nanoseconds.
    pub throttled_time: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Memory {
    /// Page cache, bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache: Option<u64>,
    pub usage: MemoryEntry,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub swap: Option<MemoryEntry>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kernel: Option<MemoryEntry>,
    #[serde(rename = "kernelTCP", skip_serializing_if = "Option::is_none")]
    pub kernel_tcp: Option<MemoryEntry>,
    /// memory.stat as read (key → value).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub raw: Option<BTreeMap<String, u64>>,
}

/// Bytes; `limit` and `failcnt` are absent where the cgroup has no such file.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct MemoryEntry {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<u64>,
    pub usage: u64,
    pub max: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failcnt: Option<u64>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Pids {
    pub current: u64,
    /// 0: no limit.
    pub limit: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Blkio {
    pub io_service_bytes_recursive: Vec<BlkioEntry>,
    pub io_serviced_recursive: Vec<BlkioEntry>,
    pub io_queued_recursive: Vec<BlkioEntry>,
    pub io_service_time_recursive: Vec<BlkioEntry>,
    pub io_wait_time_recursive: Vec<BlkioEntry>,
    pub io_merged_recursive: Vec<BlkioEntry>,
    pub io_time_recursive: Vec<BlkioEntry>,
    pub sectors_recursive: Vec<BlkioEntry>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct BlkioEntry {
    pub major: u64,
    pub minor: u64,
    /// `Read`, `Write`, ... ("" when the kernel gives none).
    pub op: String,
    pub value: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Hugetlb {
    pub usage: u64,
    pub max: u64,
    pub failcnt: u64,
}

fn mem(d: &libcgroups::stats::MemoryData) -> MemoryEntry {
    MemoryEntry { limit: Some(d.limit), usage: d.usage, max: d.max_usage, failcnt: Some(d.fail_count) }
}

fn blkio(v: &[libcgroups::stats::BlkioDeviceStat]) -> Vec<BlkioEntry> {
    v.iter()
        .map(|s| BlkioEntry { major: s.major, minor: s.minor, op: s.op_type.clone().unwrap_or_default(), value: s.value })
        .collect()
}

/// Which hierarchy libcgroups read `Stats` from, which fixes its cpu-time
/// units (libcgroups 0.7.0): v1 gives `cpuacct.stat` user/system in clock
/// ticks (USER_HZ) and everything else in nanoseconds; v2 gives `cpu.stat`
/// in microseconds. runc reports nanoseconds for both.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hierarchy {
    V1,
    V2,
}

/// `ticks` clock ticks in nanoseconds, as runc (`ticks * 1e9 / CLK_TCK`).
fn ticks_to_ns(ticks: u64, hz: u64) -> u64 {
    (u128::from(ticks) * 1_000_000_000 / u128::from(hz)).try_into().unwrap_or(u64::MAX)
}

/// The full set, from libcgroups' reading of a cgroup, cpu times in
/// nanoseconds whichever hierarchy `h` they came from.
pub fn from_libcgroups(s: &libcgroups::stats::Stats, h: Hierarchy) -> Stats {
    let mut out = Stats::from(s);
    if let Some(c) = out.cpu.as_mut() {
        let u = &mut c.usage;
        match h {
            Hierarchy::V1 => {
                let hz = crate::proc::clock_ticks_per_second();
                u.user = ticks_to_ns(u.user, hz);
                u.kernel = ticks_to_ns(u.kernel, hz);
            }
            Hierarchy::V2 => {
                let t = c.throttling.as_mut().map(|t| &mut t.throttled_time);
                for us in [Some(&mut u.total), Some(&mut u.user), Some(&mut u.kernel), t].into_iter().flatten() {
                    *us = us.saturating_mul(1000);
                }
            }
        }
    }
    out
}

/// The full set as libcgroups read it (units as it gives them: see
/// [`from_libcgroups`]).
impl From<&libcgroups::stats::Stats> for Stats {
    fn from(s: &libcgroups::stats::Stats) -> Self {
        let u = &s.cpu.usage;
        let t = &s.cpu.throttling;
        let b = &s.blkio;
        Stats {
            cpu: Some(Cpu {
                usage: CpuUsage {
                    total: u.usage_total,
                    percpu: Some(u.per_core_usage_total.clone()),
                    percpu_kernel: Some(u.per_core_usage_kernel.clone()),
                    percpu_user: Some(u.per_core_usage_user.clone()),
                    kernel: u.usage_kernel,
                    user: u.usage_user,
                },
                throttling: Some(Throttling { periods: t.periods, throttled_periods: t.throttled_periods, throttled_time: t.throttled_time }),
            }),
            memory: Some(Memory {
                cache: Some(s.memory.cache),
                usage: mem(&s.memory.memory),
                swap: Some(mem(&s.memory.memswap)),
                kernel: Some(mem(&s.memory.kernel)),
                kernel_tcp: Some(mem(&s.memory.kernel_tcp)),
                raw: Some(s.memory.stats.iter().map(|(k, v)| (k.clone(), *v)).collect()),
            }),
            pids: Some(Pids { current: s.pids.current, limit: s.pids.limit }),
            blkio: Some(Blkio {
                io_service_bytes_recursive: blkio(&b.service_bytes),
                io_serviced_recursive: blkio(&b.serviced),
                io_queued_recursive: blkio(&b.queued),
                io_service_time_recursive: blkio(&b.service_time),
                io_wait_time_recursive: blkio(&b.wait_time),
                io_merged_recursive: blkio(&b.merged),
                io_time_recursive: blkio(&b.time),
                sectors_recursive: blkio(&b.sectors),
            }),
            hugetlb: Some(
                s.hugetlb.iter().map(|(k, h)| (k.clone(), Hugetlb { usage: h.usage, max: h.max_usage, failcnt: h.fail_count })).collect(),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The JSON nexcage printed before `Stats` was typed, for this sample.
    #[test]
    fn native_shape_is_unchanged() {
        let mut s = libcgroups::stats::Stats::default();
        s.memory.memory.limit = 64 << 20;
        s.memory.memory.usage = 4096;
        s.memory.stats.insert("anon".into(), 12);
        s.pids.current = 3;
        s.cpu.usage.usage_total = 100;
        s.cpu.usage.per_core_usage_total = vec![60, 40];
        s.cpu.throttling.periods = 5;
        s.blkio.service_bytes.push(libcgroups::stats::BlkioDeviceStat { major: 8, minor: 0, op_type: Some("Read".into()), value: 512 });
        s.hugetlb.insert("2MB".into(), libcgroups::stats::HugeTlbStats { usage: 1, max_usage: 2, fail_count: 0 });
        let zero = json!({"limit": 0, "usage": 0, "max": 0, "failcnt": 0});
        let today = json!({
            "cpu": {
                "usage": {"total": 100, "percpu": [60, 40], "percpu_kernel": [], "percpu_user": [], "kernel": 0, "user": 0},
                "throttling": {"periods": 5, "throttledPeriods": 0, "throttledTime": 0},
            },
            "memory": {
                "cache": 0,
                "usage": {"limit": 64 << 20, "usage": 4096, "max": 0, "failcnt": 0},
                "swap": zero, "kernel": zero, "kernelTCP": zero,
                "raw": {"anon": 12},
            },
            "pids": {"current": 3, "limit": 0},
            "blkio": {
                "ioServiceBytesRecursive": [{"major": 8, "minor": 0, "op": "Read", "value": 512}],
                "ioServicedRecursive": [], "ioQueuedRecursive": [], "ioServiceTimeRecursive": [],
                "ioWaitTimeRecursive": [], "ioMergedRecursive": [], "ioTimeRecursive": [], "sectorsRecursive": [],
            },
            "hugetlb": {"2MB": {"usage": 1, "max": 2, "failcnt": 0}},
        });
        assert_eq!(serde_json::to_value(Stats::from(&s)).unwrap(), today);
    }

    /// v1 user/system come in clock ticks (runc printed 410000000 where
    /// the ticks read 41 at USER_HZ 100); v2 times in microseconds.
    #[test]
    fn cpu_times_in_nanoseconds() {
        let mut s = libcgroups::stats::Stats::default();
        s.cpu.usage.usage_total = 500_000_000;
        s.cpu.usage.usage_user = 41;
        s.cpu.usage.usage_kernel = 3;
        s.cpu.throttling.throttled_time = 7;
        let hz = crate::proc::clock_ticks_per_second();
        let v1 = from_libcgroups(&s, Hierarchy::V1).cpu.unwrap();
        assert_eq!((v1.usage.user, v1.usage.kernel), (41 * 1_000_000_000 / hz, 3 * 1_000_000_000 / hz));
        assert_eq!((v1.usage.total, v1.throttling.unwrap().throttled_time), (500_000_000, 7));
        assert_eq!(ticks_to_ns(41, 100), 410_000_000);
        let v2 = from_libcgroups(&s, Hierarchy::V2).cpu.unwrap();
        assert_eq!((v2.usage.total, v2.usage.user, v2.usage.kernel), (500_000_000_000, 41_000, 3_000));
        assert_eq!(v2.throttling.unwrap().throttled_time, 7_000);
    }

    /// The Proxmox backend's subset (cgroup v2 memory has no limit/failcnt here).
    #[test]
    fn partial_shape_leaves_out_what_is_unknown() {
        let s = Stats {
            memory: Some(Memory { usage: MemoryEntry { usage: 5, max: 9, ..Default::default() }, ..Default::default() }),
            pids: Some(Pids { current: 1, limit: 0 }),
            cpu: Some(Cpu { usage: CpuUsage { total: 3, kernel: 1, user: 2, ..Default::default() }, throttling: None }),
            ..Default::default()
        };
        let want = json!({"memory": {"usage": {"usage": 5, "max": 9}}, "pids": {"current": 1, "limit": 0},
                          "cpu": {"usage": {"total": 3, "kernel": 1, "user": 2}}});
        assert_eq!(serde_json::to_value(&s).unwrap(), want);
        assert_eq!(serde_json::to_value(Stats::default()).unwrap(), json!({}));
    }
}
