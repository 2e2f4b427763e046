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

/// The full set, from libcgroups' reading of a cgroup (v1 or v2).
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
