//! Errors of the zfs/zpool CLI wrapper.

/// A failed ZFS operation; the message names the command and what zfs said.
#[derive(Debug, thiserror::Error)]
pub enum ZfsError {
    #[error("cannot run {cmd}: {source}")]
    Spawn { cmd: String, source: std::io::Error },
    #[error("{cmd}: exit {code}: {stderr}")]
    Failed { cmd: String, code: i32, stderr: String },
    #[error("{cmd}: did not finish within {secs} s (killed): is the ZFS daemon answering?")]
    Timeout { cmd: String, secs: f64 },
    #[error("{cmd}: still busy after {attempts} attempts: {stderr}")]
    Busy { cmd: String, attempts: u32, stderr: String },
    #[error("invalid dataset name {0:?}")]
    BadName(String),
    #[error("invalid ZFS user property: {0}")]
    BadProperty(String),
    #[error("copy into {dst}: {msg}")]
    Copy { dst: String, msg: String },
}

impl ZfsError {
    /// zfs's "does not exist" (a destroy of it counts as done).
    pub fn is_not_found(&self) -> bool {
        matches!(self, ZfsError::Failed { stderr, .. } if stderr.contains("does not exist"))
    }
    pub fn is_busy(&self) -> bool {
        matches!(self, ZfsError::Failed { stderr, .. } if stderr.contains("busy"))
    }
    pub fn is_already_exists(&self) -> bool {
        matches!(self, ZfsError::Failed { stderr, .. } if stderr.contains("already exists"))
    }
    /// "already exists" from the command that makes `name` (`zfs create …
    /// name`, `zfs clone … snap name`), not from another dataset's.
    pub fn is_already_exists_of(&self, name: &str) -> bool {
        matches!(self, ZfsError::Failed { cmd, .. } if cmd.ends_with(&format!(" {name}"))) && self.is_already_exists()
    }
}
