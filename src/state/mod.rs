//! Container state: one directory per container under `--root`, holding
//! `state.json` (written atomically) and a `lock` file (flock) that
//! serialises every command on that container.

pub mod id;
mod store;

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub use store::{Locked, Store};

/// What the state store refuses, typed so callers match on the kind
/// (`delete --force` of a missing container succeeds) rather than the words.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum StateError {
    /// No state dir, or create died before writing `state.json`.
    #[error("container {id} does not exist")]
    DoesNotExist { id: String },
    #[error("container with id {id} already exists")]
    AlreadyExists { id: String },
}

impl StateError {
    /// Whether `e` (anywhere in its chain) says the container does not exist.
    pub fn is_does_not_exist(e: &anyhow::Error) -> bool {
        e.chain().any(|c| matches!(c.downcast_ref::<StateError>(), Some(StateError::DoesNotExist { .. })))
    }
}

/// A command the container's status does not allow. Each message is
/// written once, here. Most are runc's words (libcontainer/container_linux.go
/// and the commands' checks: "container not running", "cannot start a
/// container that has stopped", "container not paused", "cannot exec in a
/// paused container ..."). tests/differential.rs compares each misuse's exit status with
/// runc's, and the words engines match on ("container not running").
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TransitionError {
    #[error("cannot start a container that has stopped")]
    StartStopped,
    #[error("cannot start an already {0} container")]
    AlreadyStarted(Status),
    #[error("container not running")]
    NotRunning,
    #[error("container not paused")]
    NotPaused,
    #[error("cannot exec in a paused container (use --ignore-paused to override)")]
    ExecPaused,
    #[error("cannot exec in a stopped container")]
    ExecStopped,
    #[error("cannot delete container {id} that is not stopped: {status}")]
    NotStopped { id: String, status: Status },
    #[error("container {id} is {status}: stop it before a rollback")]
    RollbackActive { id: String, status: Status },
}

/// OCI status values, plus `paused` as runc reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Creating,
    Created,
    Running,
    Paused,
    Stopped,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        };
        f.write_str(s)
    }
}

/// The allowed transitions (OCI runtime spec "Lifecycle", with runc's
/// extras: pause, resume, exec, update). Every status check lives here.
impl Status {
    /// `Stopped`: the recorded process is gone.
    pub fn is_stopped(self) -> bool {
        self == Status::Stopped
    }

    /// `Running`: started, live and not paused.
    pub fn is_running(self) -> bool {
        self == Status::Running
    }

    /// `Running` or `Paused`: the user process has been started and lives.
    pub fn is_active(self) -> bool {
        matches!(self, Status::Running | Status::Paused)
    }

    /// `Created`, `Running` or `Paused`: there is a process to signal or limit.
    pub fn has_process(self) -> bool {
        matches!(self, Status::Created | Status::Running | Status::Paused)
    }

    /// start: only from `Created`.
    pub fn can_start(self) -> Result<(), TransitionError> {
        match self {
            Status::Created => Ok(()),
            Status::Stopped => Err(TransitionError::StartStopped),
            st => Err(TransitionError::AlreadyStarted(st)),
        }
    }

    /// kill: a process must exist; runc lets `--all` reach the leftovers of
    /// a stopped container's cgroup.
    pub fn can_kill(self, all: bool) -> Result<(), TransitionError> {
        if all || self.has_process() { Ok(()) } else { Err(TransitionError::NotRunning) }
    }

    /// pause: from `Running` or `Created` (runc freezes a created
    /// container's init too); a paused one is "not running", as runc says.
    pub fn can_pause(self) -> Result<(), TransitionError> {
        if matches!(self, Status::Running | Status::Created) { Ok(()) } else { Err(TransitionError::NotRunning) }
    }

    /// resume: only from `Paused`.
    pub fn can_resume(self) -> Result<(), TransitionError> {
        if self == Status::Paused { Ok(()) } else { Err(TransitionError::NotPaused) }
    }

    /// exec: into a `Created` or `Running` container (runc's rule; a
    /// `Paused` one only with `--ignore-paused`).
    pub fn can_exec(self, ignore_paused: bool) -> Result<(), TransitionError> {
        match self {
            Status::Created | Status::Running => Ok(()),
            Status::Paused if ignore_paused => Ok(()),
            Status::Paused => Err(TransitionError::ExecPaused),
            _ => Err(TransitionError::ExecStopped),
        }
    }

    /// update: a process (and so its cgroup) must exist.
    pub fn can_update(self) -> Result<(), TransitionError> {
        if self.has_process() { Ok(()) } else { Err(TransitionError::NotRunning) }
    }

    /// events / stats: anything but `Stopped`.
    pub fn can_report(self) -> Result<(), TransitionError> {
        if self.is_stopped() { Err(TransitionError::NotRunning) } else { Ok(()) }
    }

    /// delete: a started, live container only with `--force`.
    pub fn can_delete(self, id: &str, force: bool) -> Result<(), TransitionError> {
        if !force && self.is_active() {
            return Err(TransitionError::NotStopped { id: id.to_string(), status: self });
        }
        Ok(())
    }

    /// zfs rollback: the rootfs must not be in use.
    pub fn can_rollback(self, id: &str) -> Result<(), TransitionError> {
        if self.is_active() {
            return Err(TransitionError::RollbackActive { id: id.to_string(), status: self });
        }
        Ok(())
    }
}

/// Which backend owns a container; decided once at create (routing) and stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    Native,
    Proxmox,
}

impl std::fmt::Display for BackendKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            BackendKind::Native => "native",
            BackendKind::Proxmox => "proxmox",
        })
    }
}

/// What nexcage records about a container (its `state.json`).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Record {
    pub oci_version: String,
    pub id: String,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub created: String,
    pub owner: String,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    pub backend: BackendKind,
    /// Why the backend was chosen (annotation, sandbox, rule, default).
    pub routed_by: String,
    /// Pid of the container process as seen by the host (runtime.md's
    /// `pid` in the state), once known: the init (native), the guest's
    /// PID 1 (proxmox: nexcage-init until start, then the application).
    /// The status is derived from it.
    pub pid: Option<i32>,
    /// Its start time, to detect pid reuse.
    pub pid_start: Option<u64>,
    /// The process the engine reaps when it is not `pid`: the Proxmox
    /// backend's holder (the guest's LXC monitor, `pid`'s parent). It goes
    /// to `--pid-file` and `--pidfd-socket`, and `run` waits for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monitor_pid: Option<i32>,
    /// Set once start has been requested; status is derived, not trusted.
    #[serde(default)]
    pub started: bool,
    #[serde(default)]
    pub paused: bool,
    /// Backend-specific data (VMID, dataset, ...).
    #[serde(default)]
    pub backend_data: crate::backend::BackendData,
}

impl Record {
    /// The pid the engine reaps: `monitor_pid`, else `pid`.
    pub fn reaped_pid(&self) -> Option<i32> {
        self.monitor_pid.or(self.pid)
    }

    /// The Proxmox guest's VMID, when the backend made one.
    pub fn vmid(&self) -> Option<u32> {
        self.backend_data.vmid()
    }

    /// The ZFS dataset holding the rootfs, when the backend made one.
    pub fn dataset(&self) -> Option<&str> {
        self.backend_data.dataset()
    }
}

#[cfg(test)]
mod tests {
    use super::Status::*;
    use super::*;

    fn words(r: Result<(), TransitionError>) -> String {
        r.map_or_else(|e| e.to_string(), |()| "ok".into())
    }

    #[test]
    fn transitions_and_runc_words() {
        assert_eq!(words(Created.can_start()), "ok");
        assert_eq!(words(Running.can_start()), "cannot start an already running container");
        assert_eq!(words(Stopped.can_start()), "cannot start a container that has stopped");
        assert_eq!(words(Stopped.can_kill(false)), "container not running");
        assert_eq!(words(Stopped.can_kill(true)), "ok");
        assert_eq!(words(Paused.can_pause()), "container not running");
        assert_eq!(words(Created.can_pause()), "ok");
        assert_eq!(words(Running.can_resume()), "container not paused");
        assert_eq!(words(Paused.can_exec(false)), "cannot exec in a paused container (use --ignore-paused to override)");
        assert_eq!(words(Paused.can_exec(true)), "ok");
        assert_eq!(words(Created.can_exec(false)), "ok");
        assert_eq!(words(Stopped.can_exec(false)), "cannot exec in a stopped container");
        assert_eq!(words(Created.can_update()), "ok");
        assert_eq!(words(Stopped.can_report()), "container not running");
        assert_eq!(words(Creating.can_report()), "ok");
        assert_eq!(words(Running.can_delete("c", false)), "cannot delete container c that is not stopped: running");
        assert_eq!(words(Running.can_delete("c", true)), "ok");
        assert_eq!(words(Created.can_delete("c", false)), "ok");
    }

    #[test]
    fn does_not_exist_is_found_through_context() {
        let e = anyhow::Error::from(StateError::DoesNotExist { id: "c".into() }).context("outer");
        assert!(StateError::is_does_not_exist(&e));
        assert!(!StateError::is_does_not_exist(&anyhow::anyhow!("container c does not exist")));
    }
}
