//! The OCI runtime spec -> Proxmox container config mapping
//! (docs/ARCHITECTURE.md §5, OCI → Proxmox mapping). [`map_spec`] is a
//! pure function: spec and options in, config out, or a [`MapError`]
//! naming the OCI field that cannot be honoured.
//!
//! No memory limit in the spec does NOT mean Proxmox's 512 MiB default:
//! the caller passes [`MapOptions::unlimited_memory_mib`] (nexcage uses the
//! host's total memory, i.e. "as unlimited as the node allows") and
//! [`MapOptions::unlimited_swap_mib`] for an absent or `-1` swap limit.

mod host;
mod mounts;
mod process;
#[cfg(test)]
mod proptests;
mod resources;
mod security;
#[cfg(test)]
pub(crate) mod tests;

pub use host::{host_memory_mib, parse_meminfo};
pub use resources::{update_keys, update_touches_config, UpdateBase};

use crate::conffile::Section;
use oci_spec::runtime::Spec;
use serde_json::Value;
use std::collections::BTreeMap;

/// An OCI field that cannot be honoured on Proxmox.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {msg}")]
pub struct MapError {
    /// The OCI field path, e.g. `linux.resources.memory.limit`.
    pub field: String,
    pub msg: String,
}

pub(crate) fn err<T>(field: impl Into<String>, msg: impl Into<String>) -> Result<T, MapError> {
    Err(MapError {
        field: field.into(),
        msg: msg.into(),
    })
}

/// How OCI bind mounts are expressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BindMountMode {
    /// `mpN: /src,mp=/dst` (Proxmox-visible; needs a `root@pam` ticket or
    /// the CLI, never an API token).
    #[default]
    MountPoint,
    /// Raw `lxc.mount.entry` lines (works with any credentials).
    LxcEntry,
}

/// Inputs besides the spec.
#[derive(Debug, Clone)]
pub struct MapOptions {
    pub vmid: u32,
    /// The OCI container id, recorded in the description.
    pub oci_id: String,
    /// zfspool storage id, used when `rootfs_volume` is `None`.
    pub storage: String,
    /// An existing rootfs volume (`local-zfs:subvol-100-disk-0` or an
    /// absolute path); `None` asks Proxmox to allocate `storage:disk_size_gib`.
    pub rootfs_volume: Option<String>,
    pub disk_size_gib: u64,
    pub unprivileged: bool,
    pub bridge: Option<String>,
    pub vlan: Option<u16>,
    pub arch: String,
    /// `memory` when the spec has no limit (or `-1`). Never 512 by accident.
    pub unlimited_memory_mib: u64,
    /// `swap` when the spec has no swap limit (or `-1`).
    pub unlimited_swap_mib: u64,
    pub bind_mounts: BindMountMode,
    /// A machine-readable line (no newline) put right after the `nexcage
    /// oci-id:` line of the description, e.g. nexcage's owner record; it
    /// is never dropped for annotations.
    pub owner_line: Option<String>,
    /// The bundle directory: relative bind mount sources resolve against
    /// it, as runc resolves them; `None` refuses them.
    pub bundle_dir: Option<String>,
}

impl MapOptions {
    pub fn new(vmid: u32, oci_id: &str, storage: &str, unlimited_memory_mib: u64) -> Self {
        MapOptions {
            vmid,
            oci_id: oci_id.to_string(),
            storage: storage.to_string(),
            rootfs_volume: None,
            disk_size_gib: 8,
            unprivileged: true,
            bridge: None,
            vlan: None,
            arch: "amd64".into(),
            unlimited_memory_mib,
            unlimited_swap_mib: 0,
            bind_mounts: BindMountMode::MountPoint,
            owner_line: None,
            bundle_dir: None,
        }
    }
}

/// A namespace the container must join (`lxc.namespace.share.<kind>`, set
/// by nexcage's monitor); Proxmox strips `lxc.namespace.share.*` so this
/// cannot live in its config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamespaceShare {
    /// `net`, `ipc`, `uts`, `pid` or `cgroup`.
    pub kind: String,
    pub path: String,
}

/// A `linux.devices` entry: a node made in the guest's `/dev` (config-linux.md
/// "Devices"). nexcage makes it on the host (LXC cannot `mknod` in an
/// unprivileged guest) and binds it in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceNode {
    /// Absolute path in the guest, under `/dev`.
    pub path: String,
    /// `c`, `b` or `p` (`u` is taken as `c`, as runc does).
    pub kind: char,
    pub major: u64,
    pub minor: u64,
    /// Permission bits, default 0666 (runc's default).
    pub file_mode: u32,
    /// Owner in the guest (container ids), default 0.
    pub uid: u32,
    pub gid: u32,
}

/// What only nexcage's own LXC config / lxc-execute command line can carry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecOptions {
    pub shares: Vec<NamespaceShare>,
    /// Raw keys Proxmox's config refuses but lxc-execute needs
    /// (`lxc.no_new_privs`, `lxc.proc.oom_score_adj`, `lxc.namespace.keep`).
    pub lxc: Vec<(String, String)>,
    pub masked_paths: Vec<String>,
    pub readonly_paths: Vec<String>,
    /// `linux.devices`, in spec order.
    pub devices: Vec<DeviceNode>,
    /// `linux.rootfsPropagation` (`private`, `rslave`, ...), applied to the
    /// guest's `/` once LXC has made it (LXC makes it shared).
    pub rootfs_propagation: Option<String>,
    /// The options of the spec's `/dev` tmpfs, whose flags (`nosuid`, ...)
    /// nexcage sets on LXC's autodev tmpfs (which LXC mounts without).
    pub dev_flags: Vec<String>,
    /// `linux.sysctl` (namespaced keys only, runc's rule), written by
    /// nexcage in the guest's namespaces: LXC's `lxc.sysctl.*` come after
    /// /proc/sys is read-only.
    pub sysctls: Vec<(String, String)>,
    /// The config holds bind/device mount points: only `root@pam` (ticket
    /// or CLI) may register it.
    pub needs_root_pam: bool,
    /// The guest runs in Proxmox's default id map (`unprivileged: 1`
    /// without a user namespace in the spec; [`UNPRIVILEGED_ID_BASE`]) or in
    /// the spec's own one-range map (uids and gids from 0 on the same host
    /// ids): its rootfs must be owned by ids shifted by this much.
    pub id_shift: Option<u32>,
}

/// Proxmox's id map for unprivileged guests (pve-container `LXC.pm`, and
/// `root:100000:65536` in /etc/subuid and /etc/subgid of every PVE host).
pub const UNPRIVILEGED_ID_BASE: u32 = 100000;
pub const UNPRIVILEGED_ID_COUNT: u32 = 65536;

/// The mapped container: Proxmox keys (sorted, as the file stores them),
/// allow-listed raw `lxc.*` keys in order, and the exec-only extras.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PveConfig {
    /// Plain keys including `description` and NUL-joined `env`.
    pub keys: BTreeMap<String, String>,
    /// Raw `lxc.*` keys Proxmox accepts in a guest config file (they
    /// cannot go through the API).
    pub lxc: Vec<(String, String)>,
    pub exec: ExecOptions,
}

impl PveConfig {
    /// The keys as API / `pct` parameters (everything but raw `lxc.*`).
    pub fn api_params(&self) -> BTreeMap<String, String> {
        self.keys.clone()
    }

    /// The config-file section (description split out of `keys`).
    pub fn to_section(&self) -> Section {
        let mut keys = self.keys.clone();
        let description = keys.remove("description");
        Section {
            description,
            keys,
            lxc: self.lxc.clone(),
        }
    }
}

/// Accumulates output while the mapping functions run.
#[derive(Default)]
pub(crate) struct Out {
    pub keys: BTreeMap<String, String>,
    pub lxc: Vec<(String, String)>,
    pub exec: ExecOptions,
    pub mount_auto: Vec<String>,
}

impl Out {
    pub fn key(&mut self, k: &str, v: impl Into<String>) {
        self.keys.insert(k.to_string(), v.into());
    }
    pub fn raw(&mut self, k: &str, v: impl Into<String>) {
        self.lxc.push((k.to_string(), v.into()));
    }
}

/// Reject a field that has a value (non-null, non-empty) we cannot honour.
pub(crate) fn refuse_if_set(v: &Value, path: &str, field: &str, why: &str) -> Result<(), MapError> {
    let Some(x) = v.get(field) else { return Ok(()) };
    let empty = match x {
        Value::Null => true,
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        Value::String(s) => s.is_empty(),
        _ => false,
    };
    if empty {
        Ok(())
    } else {
        err(format!("{path}.{field}"), why)
    }
}

/// Map an OCI runtime spec to a Proxmox container config.
pub fn map_spec(spec: &Spec, opts: &MapOptions) -> Result<PveConfig, MapError> {
    let v = serde_json::to_value(spec).map_err(|e| MapError {
        field: "spec".into(),
        msg: e.to_string(),
    })?;
    map_value(&v, opts)
}

/// Same as [`map_spec`] on the spec's JSON form (field names are the OCI
/// ones, so error paths read like config.json).
pub fn map_value(v: &Value, opts: &MapOptions) -> Result<PveConfig, MapError> {
    let mut out = Out::default();
    let null = Value::Null;
    let linux = v.get("linux").unwrap_or(&null);

    out.key("ostype", "unmanaged");
    out.key("arch", opts.arch.as_str());
    out.key("cmode", "console");
    out.key("console", "1");

    resources::map(linux.get("resources").unwrap_or(&null), opts, &mut out)?;
    process::map(v.get("process").unwrap_or(&null), &mut out)?;
    process::hostname(v, &mut out)?;
    security::namespaces(linux, opts, &mut out)?;
    security::hostname_needs_uts(v, linux)?;
    // A guest with a network namespace of its own takes the `net0` the
    // annotation gives (nexcage's admin path, src/network) over network.bridge's.
    let own_net = !out.lxc.iter().any(|(k, _)| k == "lxc.net.0.type") && !out.exec.shares.iter().any(|s| s.kind == "net");
    if let Some(net0) = v.pointer("/annotations/org.nexcage.net0").and_then(Value::as_str).filter(|_| own_net) {
        out.key("net0", net0.to_string());
    }
    security::sysctl(linux, &mut out)?;
    security::devices(linux, &mut out)?;
    security::linux_misc(linux, &mut out)?;
    rootfs(v, opts, &mut out)?;
    mounts::map(v.get("mounts").unwrap_or(&null), opts, &mut out)?;
    if !out.mount_auto.is_empty() {
        let auto = out.mount_auto.join(" ");
        out.raw("lxc.mount.auto", auto);
    }
    annotations(v, opts, &mut out)?;
    Ok(PveConfig {
        keys: out.keys,
        lxc: out.lxc,
        exec: out.exec,
    })
}

fn rootfs(v: &Value, opts: &MapOptions, out: &mut Out) -> Result<(), MapError> {
    let mut s = match &opts.rootfs_volume {
        Some(vol) => vol.clone(),
        None => format!("{}:{}", opts.storage, opts.disk_size_gib),
    };
    if v.pointer("/root/readonly").and_then(Value::as_bool) == Some(true) {
        s.push_str(",ro=1");
    }
    if s.starts_with('/') {
        out.exec.needs_root_pam = true;
    }
    out.key("rootfs", s);
    Ok(())
}

/// Description (OCI id + annotations, within Proxmox's 8 KiB) and tags.
fn annotations(v: &Value, opts: &MapOptions, out: &mut Out) -> Result<(), MapError> {
    const MAX: usize = 8192;
    let mut desc = format!("nexcage oci-id: {}\n", opts.oci_id);
    if let Some(line) = &opts.owner_line {
        desc.push_str(line.trim_end_matches('\n'));
        desc.push('\n');
    }
    let mut tags = vec!["nexcage".to_string()];
    let mut omitted = 0;
    if let Some(a) = v.get("annotations").and_then(Value::as_object) {
        for (k, val) in a {
            let val = val.as_str().unwrap_or_default();
            if k == "org.nexcage.tags" {
                for t in val.split([',', ';', ' ']).filter(|t| !t.is_empty()) {
                    if crate::schema::formats_check("pve-tag-list", t).is_err() {
                        return err(
                            format!("annotations.{k}"),
                            format!("'{t}' is not a valid Proxmox tag"),
                        );
                    }
                    tags.push(t.to_lowercase());
                }
            }
            let line = format!("{k}={val}\n");
            if desc.len() + line.len() + 64 > MAX {
                omitted += 1;
            } else {
                desc.push_str(&line);
            }
        }
    }
    if omitted > 0 {
        desc.push_str(&format!(
            "({omitted} annotations omitted: description is limited to 8 KiB)\n"
        ));
    }
    tags.sort();
    tags.dedup();
    out.key("description", desc);
    out.key("tags", tags.join(";"));
    Ok(())
}

/// Shell-quote like PVE::Tools::shellquote (used for `entrypoint`).
pub fn shell_quote(s: &str) -> String {
    if s.is_empty() {
        return "''".into();
    }
    let safe = s
        .chars()
        .all(|c| c.is_alphanumeric() || c == '_' || "!%+,-./:=@^".contains(c));
    if safe {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\"'\"'"))
    }
}

/// Whether Proxmox keeps a raw key in a guest config (pve-container
/// Config.pm `$valid_lxc_conf_keys` plus its regex families).
pub fn allowed_raw_key(k: &str) -> bool {
    const EXACT: &[&str] = &[
        "lxc.apparmor.profile",
        "lxc.apparmor.allow_incomplete",
        "lxc.apparmor.allow_nesting",
        "lxc.apparmor.raw",
        "lxc.selinux.context",
        "lxc.include",
        "lxc.arch",
        "lxc.uts.name",
        "lxc.signal.halt",
        "lxc.signal.reboot",
        "lxc.signal.stop",
        "lxc.init.cmd",
        "lxc.init.cwd",
        "lxc.init.uid",
        "lxc.init.gid",
        "lxc.init.groups",
        "lxc.pty.max",
        "lxc.console.logfile",
        "lxc.console.path",
        "lxc.tty.max",
        "lxc.devtty.dir",
        "lxc.hook.autodev",
        "lxc.autodev",
        "lxc.kmsg",
        "lxc.mount.fstab",
        "lxc.mount.entry",
        "lxc.mount.auto",
        "lxc.rootfs.mount",
        "lxc.cap.drop",
        "lxc.cap.keep",
        "lxc.seccomp.profile",
        "lxc.seccomp.notify.proxy",
        "lxc.seccomp.notify.cookie",
        "lxc.idmap",
        "lxc.hook.pre-start",
        "lxc.hook.pre-mount",
        "lxc.hook.mount",
        "lxc.hook.start",
        "lxc.hook.stop",
        "lxc.hook.post-stop",
        "lxc.hook.clone",
        "lxc.hook.destroy",
        "lxc.hook.version",
        "lxc.log.level",
        "lxc.log.file",
        "lxc.start.auto",
        "lxc.start.delay",
        "lxc.start.order",
        "lxc.group",
        "lxc.environment",
        "lxc.environment.runtime",
        "lxc.environment.hooks",
        "lxc.sysctl.kernel.msgmax",
        "lxc.sysctl.kernel.msgmnb",
        "lxc.sysctl.kernel.msgmni",
        "lxc.sysctl.kernel.sem",
        "lxc.sysctl.kernel.shmall",
        "lxc.sysctl.kernel.shmmax",
        "lxc.sysctl.kernel.shmmni",
        "lxc.sysctl.kernel.shm_rmid_forced",
    ];
    EXACT.contains(&k)
        || k.starts_with("lxc.sysctl.fs.mqueue")
        || k.starts_with("lxc.cgroup2.")
        || k.starts_with("lxc.prlimit.")
        || k.starts_with("lxc.net.")
}
