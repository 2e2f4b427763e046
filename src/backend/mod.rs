//! The backend abstraction: one trait that every backend implements, and the
//! routing rule that picks a backend once, at create.

mod data;
mod error;
pub mod native;
pub mod oci;
pub mod proxmox;
pub mod stats;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Result as AnyResult;
use libcontainer::oci_spec::runtime::LinuxResources;

use crate::spec::Bundle;
use crate::state::{BackendKind, Record};

pub use data::{BackendData, RootfsStrategy};
pub use error::{BackendError, Result};
pub use stats::Stats;

/// Everything `create` was asked for.
pub struct CreateOpts<'a> {
    pub id: &'a str,
    pub bundle: &'a Bundle,
    /// The container's state directory (backends keep their files inside it).
    pub dir: &'a Path,
    pub pid_file: Option<PathBuf>,
    pub console_socket: Option<PathBuf>,
    pub preserve_fds: i32,
    pub no_pivot: bool,
    /// `run` without `--detach`: the container's init stays our child.
    pub foreground: bool,
}

/// What a backend reports after create.
pub struct Created {
    /// The container process as seen by the host (the state's pid).
    pub pid: i32,
    /// The process the engine reaps, when it is not `pid` (Proxmox: the
    /// holder); the backend has written it to `--pid-file`.
    pub monitor_pid: Option<i32>,
    pub backend_data: BackendData,
}

/// An `exec` request, after the CLI has merged `--process` and flags.
#[derive(Default)]
pub struct ExecOpts {
    pub process_file: Option<PathBuf>,
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub cwd: Option<PathBuf>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub additional_gids: Vec<u32>,
    pub caps: Vec<String>,
    pub no_new_privs: bool,
    pub console_socket: Option<PathBuf>,
    pub pid_file: Option<PathBuf>,
    pub detach: bool,
    pub preserve_fds: i32,
    /// runc's `--ignore-paused`: exec into a paused container.
    pub ignore_paused: bool,
}

/// The operations of the OCI contract (plus runc's extras), per backend.
/// Status is not here: it is derived from the record's pid (see `status`).
/// The front end has checked the transition (and `--force`) before calling.
///
/// Errors: `BackendError::NotRunning` where the operation needs the
/// container's processes and they are gone (exec, stats, update on
/// Proxmox), `NoSuchProcess` when kill's target vanished (native),
/// `Unsupported` for a spec this backend refuses at create; anything else
/// is `Other` with the backend's message chain.
pub trait Backend {
    /// Makes the container (its init waiting for start), undoing
    /// everything on failure.
    fn create(&self, opts: &CreateOpts) -> Result<Created>;
    fn start(&self, rec: &Record, dir: &Path) -> Result<()>;
    /// `all`: every process of the container's cgroup (runc's `kill --all`).
    fn kill(&self, rec: &Record, dir: &Path, signal: i32, all: bool) -> Result<()>;
    /// Removes everything create made, running or not, except the state
    /// directory itself.
    fn delete(&self, rec: &Record, dir: &Path) -> Result<()>;
    /// Returns the pid of the exec'd process.
    fn exec(&self, rec: &Record, dir: &Path, opts: &ExecOpts) -> Result<i32>;
    fn pids(&self, rec: &Record, dir: &Path) -> Result<Vec<i32>>;
    fn pause(&self, rec: &Record, dir: &Path) -> Result<()>;
    fn resume(&self, rec: &Record, dir: &Path) -> Result<()>;
    fn update(&self, rec: &Record, dir: &Path, resources: &LinuxResources) -> Result<()>;
    /// Cgroup statistics in runc's `events --stats` shape.
    fn stats(&self, rec: &Record, dir: &Path) -> Result<Stats>;
}

/// The backend of `kind`. `config_path`: nexcage's configuration file as
/// given (`--config` / NEXCAGE_CONFIG; `None`: the default places), which
/// the Proxmox backend reads (storage, driver, lxc_path).
pub fn for_kind(kind: BackendKind, config_path: Option<&Path>) -> AnyResult<Box<dyn Backend>> {
    match kind {
        BackendKind::Native => Ok(Box::new(native::Native)),
        BackendKind::Proxmox => Ok(Box::new(proxmox::Proxmox::load(config_path)?)),
    }
}

pub const BACKEND_ANNOTATION: &str = "org.nexcage.backend";
const SANDBOX_ANNOTATIONS: [(&str, &str); 2] = [
    ("io.kubernetes.cri.container-type", "sandbox"),
    ("io.kubernetes.cri-o.ContainerType", "sandbox"),
];

fn kind_of(b: nexcage_config::Backend) -> BackendKind {
    match b {
        nexcage_config::Backend::Native => BackendKind::Native,
        nexcage_config::Backend::Proxmox => BackendKind::Proxmox,
    }
}

/// Picks the backend (docs/ARCHITECTURE.md §4, Routing): explicit annotation first,
/// pod sandboxes native, then configured rules (first match), then the
/// configured default (native when none). Returns the kind and why.
pub fn route(id: &str, annotations: &BTreeMap<String, String>, cfg: &nexcage_config::Config) -> AnyResult<(BackendKind, String)> {
    if let Some(v) = annotations.get(BACKEND_ANNOTATION) {
        let kind = match v.as_str() {
            "native" => BackendKind::Native,
            "proxmox" => BackendKind::Proxmox,
            other => anyhow::bail!("annotation {BACKEND_ANNOTATION}: unknown backend {other:?} (native or proxmox)"),
        };
        return Ok((kind, format!("annotation {BACKEND_ANNOTATION}")));
    }
    for (k, v) in SANDBOX_ANNOTATIONS {
        if annotations.get(k).map(String::as_str) == Some(v) {
            return Ok((BackendKind::Native, format!("pod sandbox ({k})")));
        }
    }
    for (i, rule) in cfg.routing.iter().enumerate() {
        let id_ok = match &rule.id_regex {
            Some(re) => regex::Regex::new(re)
                .map_err(|e| anyhow::anyhow!("routing[{i}].id_regex: {e}"))?
                .is_match(id),
            None => true,
        };
        let ann_ok = rule.annotation.as_ref().is_none_or(|m| annotations.get(&m.key) == Some(&m.value));
        if id_ok && ann_ok {
            return Ok((kind_of(rule.backend), format!("routing rule {i}")));
        }
    }
    let default = cfg.default_backend.map(kind_of).unwrap_or(BackendKind::Native);
    Ok((default, "default".to_string()))
}

// What the front end (cli, admin) needs from particular backends, under
// backend-neutral names, so it never names a backend module.

/// Annotations the Proxmox backend reads: disk size, rootfs strategy, clone source.
pub use proxmox::{CLONE_ANNOTATION, DISK_ANNOTATION, STRATEGY_ANNOTATION};
/// Whether a guest with these namespaces (and rootfs bind) can run unprivileged.
pub use proxmox::unprivileged_possible;
/// Fails with what to add when root may not map `[base, base+count)` (/etc/subuid, /etc/subgid).
pub use proxmox::subids::check_root_range;
/// What the Proxmox backend's create needs of the node (privileges, template upload), for `system check`.
pub use proxmox::privilege_setup;
/// What `collect_garbage` removed (or would remove), and the state dirs it looks at.
pub use proxmox::gc::{Collected as GcCollected, Report as GcReport, StateDir as GcStateDir};

/// The state roots `nexcage gc` looks in: `own` first, then every root a
/// Proxmox-backend create registered on this host.
pub fn gc_roots(config_path: Option<&Path>, own: &Path) -> AnyResult<Vec<PathBuf>> {
    Ok(proxmox::gc::roots(&proxmox::Proxmox::load(config_path)?, own))
}

/// `nexcage gc`: removes what crashed containers left behind (only the
/// Proxmox backend leaves any). `dirs` lists the Proxmox containers' state
/// dirs in `roots`; `delete_container(root, id)` deletes one like `delete
/// --force`. With `dry_run` nothing changes: the report says what would.
pub fn collect_garbage(
    config_path: Option<&Path>,
    roots: &[PathBuf],
    dirs: &[GcStateDir],
    dry_run: bool,
    delete_container: impl FnMut(&Path, &str) -> AnyResult<()>,
) -> AnyResult<GcReport> {
    proxmox::gc::collect(&proxmox::Proxmox::load(config_path)?, roots, dirs, dry_run, delete_container)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ann(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn cfg(json: &str) -> nexcage_config::Config {
        nexcage_config::parse_str(json, Path::new("test.json")).unwrap()
    }

    #[test]
    fn routing_order() {
        let px = cfg(r#"{"default_backend":"proxmox"}"#);
        let (k, why) = route("a", &ann(&[]), &px).unwrap();
        assert_eq!((k, why.as_str()), (BackendKind::Proxmox, "default"));
        let (k, _) = route("a", &ann(&[("io.kubernetes.cri.container-type", "sandbox")]), &px).unwrap();
        assert_eq!(k, BackendKind::Native);
        let (k, _) = route("a", &ann(&[("io.kubernetes.cri-o.ContainerType", "sandbox")]), &px).unwrap();
        assert_eq!(k, BackendKind::Native);
        let none = cfg("{}");
        let (k, _) = route("a", &ann(&[(BACKEND_ANNOTATION, "proxmox"), ("io.kubernetes.cri.container-type", "sandbox")]), &none).unwrap();
        assert_eq!(k, BackendKind::Proxmox);
        assert!(route("a", &ann(&[(BACKEND_ANNOTATION, "qemu")]), &none).is_err());
        assert_eq!(route("a", &ann(&[]), &none).unwrap().0, BackendKind::Native);
    }

    #[test]
    fn routing_rules_first_match() {
        let c = cfg(r#"{"default_backend":"native","routing":[{"id_regex":"^pve-","backend":"proxmox"},{"annotation":{"key":"tier","value":"vm"},"backend":"proxmox"}]}"#);
        assert_eq!(route("pve-1", &ann(&[]), &c).unwrap(), (BackendKind::Proxmox, "routing rule 0".into()));
        assert_eq!(route("x", &ann(&[("tier", "vm")]), &c).unwrap().1, "routing rule 1");
        assert_eq!(route("x", &ann(&[]), &c).unwrap().0, BackendKind::Native);
    }
}
