//! ps and stats: the guest's processes and cgroup counters.

use std::path::Path;

use anyhow::Result;

use super::guest_cgroup::{guest_dir, pids_of, read_u64};
use super::journal::CreateJournal;
use super::lxc;
use crate::backend::stats::{Cpu, CpuUsage, Memory, MemoryEntry, Pids};
use crate::backend::{BackendError, Stats};

/// Every pid of the guest's cgroup; none before start or after it ended.
pub fn pids(dir: &Path) -> Result<Vec<i32>> {
    let j = CreateJournal::load(dir)?;
    match lxc::init_pid(&j) {
        Some(init) => pids_of(init),
        None => Ok(Vec::new()),
    }
}

/// runc's stats (`memory`, `pids`, `cpu` usage) from the guest's cgroup
/// files (v1 names, else v2's); what the host does not have is left out.
/// The memory and cpu counters include the idle holder's (README.md here,
/// *The guest's cgroup*); `pids` is the guest's alone on cgroup v1, plus
/// the holder on v2.
pub fn stats(dir: &Path) -> Result<Stats> {
    let j = CreateJournal::load(dir)?;
    let Some(init) = lxc::init_pid(&j) else { return Err(BackendError::NotRunning.into()) };
    let mut s = Stats::default();
    if let Some(d) = guest_dir(init, "memory") {
        let usage = if d.join("memory.usage_in_bytes").exists() {
            MemoryEntry {
                usage: read_u64(&d, "memory.usage_in_bytes"),
                max: read_u64(&d, "memory.max_usage_in_bytes"),
                limit: Some(read_u64(&d, "memory.limit_in_bytes")),
                failcnt: Some(read_u64(&d, "memory.failcnt")),
            }
        } else {
            // v2: `memory.max` ("max" without a limit: left out).
            let limit = std::fs::read_to_string(d.join("memory.max")).ok().and_then(|s| s.trim().parse().ok());
            MemoryEntry { usage: read_u64(&d, "memory.current"), max: read_u64(&d, "memory.peak"), limit, failcnt: None }
        };
        s.memory = Some(Memory { usage, ..Memory::default() });
    }
    if let Some(d) = guest_dir(init, "pids") {
        // "max" (no limit) reads as 0, runc's word for it.
        let limit = std::fs::read_to_string(d.join("pids.max")).ok().and_then(|s| s.trim().parse::<u64>().ok()).unwrap_or(0);
        s.pids = Some(Pids { current: read_u64(&d, "pids.current"), limit });
    }
    if let Some(d) = guest_dir(init, "cpuacct").filter(|d| d.join("cpuacct.usage").exists()) {
        s.cpu = Some(Cpu {
            usage: CpuUsage {
                total: read_u64(&d, "cpuacct.usage"),
                kernel: read_u64(&d, "cpuacct.usage_sys"),
                user: read_u64(&d, "cpuacct.usage_user"),
                ..CpuUsage::default()
            },
            throttling: None,
        });
    }
    Ok(s)
}
