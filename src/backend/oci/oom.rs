//! `process.oomScoreAdj`, written as runc writes it: to the runtime's own
//! process before it makes the container's (which inherit it).

use anyhow::{anyhow, Result};

/// Writes `adj` to `/proc/self/oom_score_adj`, failing in runc's words, e.g.
/// "failed to update /proc/self/oom_score_adj: Permission denied" when a
/// value below the current one needs the CAP_SYS_RESOURCE the host withholds.
pub fn set_oom_score_adj(adj: i32) -> Result<()> {
    const FILE: &str = "/proc/self/oom_score_adj";
    std::fs::write(FILE, adj.to_string()).map_err(|e| anyhow!("failed to update {FILE}: {}", crate::backend::native::os_error(&e)))
}
