//! Cgroup statistics in runc's `events --stats` shape (runc's types/events.go),
//! from libcgroups' reading of a cgroup (v1 or v2).

use libcgroups::stats::{BlkioDeviceStat, MemoryData, Stats};
use serde_json::{json, Value};

fn mem(d: &MemoryData) -> Value {
    json!({"limit": d.limit, "usage": d.usage, "max": d.max_usage, "failcnt": d.fail_count})
}

fn blkio(v: &[BlkioDeviceStat]) -> Value {
    v.iter()
        .map(|s| json!({"major": s.major, "minor": s.minor, "op": s.op_type.clone().unwrap_or_default(), "value": s.value}))
        .collect()
}

pub fn runc_shape(s: &Stats) -> Value {
    let hugetlb: serde_json::Map<String, Value> = s
        .hugetlb
        .iter()
        .map(|(k, h)| (k.clone(), json!({"usage": h.usage, "max": h.max_usage, "failcnt": h.fail_count})))
        .collect();
    json!({
        "cpu": {
            "usage": {
                "total": s.cpu.usage.usage_total,
                "percpu": s.cpu.usage.per_core_usage_total,
                "percpu_kernel": s.cpu.usage.per_core_usage_kernel,
                "percpu_user": s.cpu.usage.per_core_usage_user,
                "kernel": s.cpu.usage.usage_kernel,
                "user": s.cpu.usage.usage_user,
            },
            "throttling": {
                "periods": s.cpu.throttling.periods,
                "throttledPeriods": s.cpu.throttling.throttled_periods,
                "throttledTime": s.cpu.throttling.throttled_time,
            },
        },
        "memory": {
            "cache": s.memory.cache,
            "usage": mem(&s.memory.memory),
            "swap": mem(&s.memory.memswap),
            "kernel": mem(&s.memory.kernel),
            "kernelTCP": mem(&s.memory.kernel_tcp),
            "raw": s.memory.stats,
        },
        "pids": {"current": s.pids.current, "limit": s.pids.limit},
        "blkio": {
            "ioServiceBytesRecursive": blkio(&s.blkio.service_bytes),
            "ioServicedRecursive": blkio(&s.blkio.serviced),
            "ioQueuedRecursive": blkio(&s.blkio.queued),
            "ioServiceTimeRecursive": blkio(&s.blkio.service_time),
            "ioWaitTimeRecursive": blkio(&s.blkio.wait_time),
            "ioMergedRecursive": blkio(&s.blkio.merged),
            "ioTimeRecursive": blkio(&s.blkio.time),
            "sectorsRecursive": blkio(&s.blkio.sectors),
        },
        "hugetlb": hugetlb,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn has_runc_keys() {
        let mut s = Stats::default();
        s.memory.memory.limit = 64 << 20;
        s.pids.current = 3;
        let v = runc_shape(&s);
        assert_eq!(v["memory"]["usage"]["limit"], 64 << 20);
        assert_eq!(v["pids"]["current"], 3);
        assert!(v["cpu"]["usage"]["total"].is_u64());
        assert!(v["blkio"]["ioServiceBytesRecursive"].is_array());
    }
}
