//! Proxmox semantics shared by the HTTPS server and the `pct`/`pvesh`
//! front ends: route, validate against the schema, check permissions,
//! act on the state dir, answer in the schema's return shapes.

use crate::lxc::{self, Stop};
use crate::lxcconf;
use crate::state::State;
use crate::tasks;
use crate::versions::{Versions, REPOID};
use nexcage_pve::conffile::{ConfigFile, Section};
use nexcage_pve::schema::{parse_bool, Params, Schema};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::LazyLock;

#[derive(Debug)]
pub struct ApiError {
    pub status: u16,
    pub message: String,
    pub errors: BTreeMap<String, String>,
}

fn fail<T>(status: u16, message: impl Into<String>) -> Result<T, ApiError> {
    Err(ApiError {
        status,
        message: message.into(),
        errors: BTreeMap::new(),
    })
}

/// A 500 with `e` as the message (what pve-manager answers when a die()
/// escapes a handler).
fn internal(e: impl std::fmt::Display) -> ApiError {
    ApiError {
        status: 500,
        message: e.to_string(),
        errors: BTreeMap::new(),
    }
}

/// The guest config lock (`/run/lock/lxc/pve-config-<vmid>.lock` on a
/// node), held while a handler reads and writes the config.
fn lock_config(ctx: &Ctx, vmid: u32) -> Result<std::fs::File, ApiError> {
    ctx.state
        .lock(&format!("pve-config-{vmid}"))
        .map_err(internal)
}

fn param_fail<T>(key: &str, msg: impl Into<String>) -> Result<T, ApiError> {
    Err(ApiError {
        status: 400,
        message: "Parameter verification failed.".into(),
        errors: [(key.to_string(), msg.into())].into(),
    })
}

pub struct Ctx<'a> {
    pub state: &'a State,
    pub schema: &'a Schema,
    /// `root@pam` (ticket or CLI) or a token id `user@realm!name`.
    pub user: String,
}

impl Ctx<'_> {
    /// Only the literal `root@pam` passes root-only checks; never a token.
    fn is_root(&self) -> bool {
        self.user == "root@pam"
    }
}

/// The full call, e.g. `POST /nodes/{node}/lxc`, as named in faults.
pub fn dispatch(
    ctx: &Ctx,
    method: &str,
    path: &str,
    mut params: Params,
) -> Result<Value, ApiError> {
    let Some(route) = ctx
        .schema
        .route(path)
        .filter(|r| ctx.schema.endpoint(method, &r.template).is_some())
    else {
        ctx.state
            .record_violation(&format!("{method} {path}"), "not implemented");
        return fail(501, format!("Method '{method} {path}' not implemented"));
    };
    let call = format!("{method} {}", route.template);
    for (k, v) in route.params {
        params.insert(k, v);
    }
    if let Err(v) = ctx.schema.validate(method, &route.template, &params) {
        ctx.state.record_violation(&call, &v.to_string());
        return Err(ApiError {
            status: 400,
            message: "Parameter verification failed.".into(),
            errors: v.0,
        });
    }
    if ctx.state.fault(&call) {
        return fail(500, format!("injected fault for {call}"));
    }
    if let Some(node) = params.get("node") {
        if node != &ctx.state.node {
            return fail(500, format!("hostname lookup '{node}' failed - failed to get address info for: {node}: Name or service not known"));
        }
    }
    if params.contains_key("skiplock") && !ctx.is_root() {
        // PROXMOX-FACTS §4: root@pam only, never a token.
        return param_fail("skiplock", "Only root may use this option.");
    }
    check_permissions(ctx, method, &route.template, &params)?;
    let vmid = params
        .get("vmid")
        .and_then(|v| v.parse::<u32>().ok())
        .unwrap_or(0);
    let answer = handle(ctx, method, path, &route.template, &call, vmid, &params)?;
    // The double must answer in the schema's shapes too.
    if let Err(e) = ctx.schema.check_return(method, &route.template, &answer) {
        ctx.state
            .record_violation(&call, &format!("answer does not match returns: {e}"));
    }
    Ok(answer)
}

fn handle(
    ctx: &Ctx,
    method: &str,
    path: &str,
    template: &str,
    call: &str,
    vmid: u32,
    params: &Params,
) -> Result<Value, ApiError> {
    let call = call.to_string();
    let params = params.clone();
    match (method, template) {
        ("GET", "/version" | "/nodes/{node}/version") => Ok(version(ctx)),
        ("GET", "/access/permissions") => Ok(permissions(ctx, params.get("path"))),
        ("GET", "/cluster/nextid") => nextid(ctx, params.get("vmid")),
        ("GET", "/nodes/{node}/lxc") => Ok(list(ctx)),
        ("POST", "/nodes/{node}/lxc") => create(ctx, &call, vmid, &params),
        ("GET", "/nodes/{node}/lxc/{vmid}/config") => get_config(ctx, vmid),
        ("PUT", "/nodes/{node}/lxc/{vmid}/config") => set_config(ctx, vmid, &params),
        ("GET", "/nodes/{node}/lxc/{vmid}/status/current") => status(ctx, vmid),
        ("POST", "/nodes/{node}/lxc/{vmid}/status/start") => {
            start_stop(ctx, &call, vmid, true, &params)
        }
        ("POST", "/nodes/{node}/lxc/{vmid}/status/stop") => {
            start_stop(ctx, &call, vmid, false, &params)
        }
        ("POST", "/nodes/{node}/lxc/{vmid}/status/shutdown") => shutdown(ctx, &call, vmid, &params),
        ("DELETE", "/nodes/{node}/lxc/{vmid}") => destroy(ctx, &call, vmid, &params),
        ("GET", "/nodes/{node}/storage/{storage}/content") => content(ctx, &params),
        ("POST", "/nodes/{node}/storage/{storage}/content") => alloc(ctx, &params),
        ("POST", "/nodes/{node}/storage/{storage}/upload") => upload(ctx, &params),
        ("DELETE", "/nodes/{node}/storage/{storage}/content/{volume}") => free(ctx, &call, &params),
        ("GET", "/nodes/{node}/tasks/{upid}/status") => task_status(ctx, &params),
        ("GET", "/nodes/{node}/tasks/{upid}/log") => task_log(ctx, &params),
        _ => fail(
            501,
            format!("Method '{method} {path}' not implemented in pve-double"),
        ),
    }
}

/// The pve-manager version the double plays (see `versions`).
fn version(ctx: &Ctx) -> Value {
    let v = Versions::load(ctx.state);
    json!({"version": v.manager, "release": v.release(), "repoid": REPOID, "console": "xtermjs"})
}

/// The lowest VMID from 100 not in the cluster vmlist, so an id freed by a
/// destroy is handed out again; `?vmid=N` answers whether N is free (400
/// otherwise). Nothing is reserved (PROXMOX-FACTS §6, §10).
fn nextid(ctx: &Ctx, want: Option<&String>) -> Result<Value, ApiError> {
    let used = ctx.state.all_vmids();
    if let Some(w) = want {
        let w: u32 = w.parse().unwrap_or(0);
        if used.contains(&w) {
            return param_fail("vmid", format!("VM {w} already exists"));
        }
        return Ok(json!(w));
    }
    (100..1_000_000u32)
        .find(|i| !used.contains(i))
        .map(|i| json!(i))
        .ok_or_else(|| internal("unable to get any free VMID in range [100, 1000000]"))
}

fn list(ctx: &Ctx) -> Value {
    let mut out = Vec::new();
    for vmid in ctx.state.vmids() {
        let Some(cfg) = ctx.state.read_conf(vmid) else {
            continue;
        };
        out.push(summary(ctx, vmid, &cfg.main));
    }
    Value::Array(out)
}

fn summary(ctx: &Ctx, vmid: u32, s: &Section) -> Value {
    let mib = |k: &str, d: u64| {
        s.keys
            .get(k)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(d)
            * 1024
            * 1024
    };
    let mut v = json!({
        "vmid": vmid,
        "status": if ctx.state.is_running(vmid) { "running" } else { "stopped" },
        "name": s.keys.get("hostname").cloned().unwrap_or_else(|| format!("CT{vmid}")),
        "maxmem": mib("memory", 512),
        "maxswap": mib("swap", 512),
        "maxdisk": 4u64 << 30,
        "cpus": s.keys.get("cores").and_then(|c| c.parse::<f64>().ok()).unwrap_or(1.0),
        "uptime": 0, "mem": 0, "disk": 0, "cpu": 0, "netin": 0, "netout": 0, "diskread": 0, "diskwrite": 0,
    });
    if let Some(t) = s.keys.get("tags") {
        v["tags"] = json!(t);
    }
    if let Some(l) = s.keys.get("lock") {
        v["lock"] = json!(l);
    }
    v
}

/// Mount point classes (pve-container `classify_mountpoint`).
fn mp_volume(value: &str) -> String {
    let first = value.split(',').next().unwrap_or("");
    first.strip_prefix("volume=").unwrap_or(first).to_string()
}

/// Root-only checks of pve-container for a set of keys (create and set).
fn check_root_only(ctx: &Ctx, params: &Params, creating: bool) -> Result<(), ApiError> {
    if ctx.is_root() {
        return Ok(());
    }
    for (k, v) in params {
        let is_mp = k == "rootfs" || (k.starts_with("mp") && k[2..].parse::<u32>().is_ok());
        if is_mp {
            let vol = mp_volume(v);
            if vol.starts_with("/dev/") {
                return fail(403, "Permission check failed (mount point type device is only allowed for root@pam)");
            }
            if vol.starts_with('/') {
                let extra = if creating {
                    " Only root can pass arbitrary filesystem paths."
                } else {
                    ""
                };
                return fail(403, format!("Permission check failed (mount point type bind is only allowed for root@pam){extra}"));
            }
        }
        if k.starts_with("dev") && k[3..].parse::<u32>().is_ok() {
            return fail(403, "Permission check failed (configuring device passthrough is only allowed for root@pam)");
        }
        if k == "hookscript" {
            return fail(
                403,
                "Permission check failed (changing the hookscript is only allowed for root@pam)",
            );
        }
        if k == "features" {
            let only_nesting = v.split(',').all(|p| p.starts_with("nesting="));
            let unpriv = params
                .get("unprivileged")
                .and_then(|u| parse_bool(u))
                .unwrap_or(false);
            if !(only_nesting && unpriv) {
                return fail(403, "Permission check failed (changing feature flags (except nesting) is only allowed for root@pam)");
            }
        }
    }
    Ok(())
}

/// `STORAGE:SIZE_GiB` (new volume) -> allocated `STORAGE:subvol-...,size=NG`.
fn alloc_new_disk(
    ctx: &Ctx,
    vmid: u32,
    value: &str,
    log: &mut Vec<String>,
) -> Result<Option<(String, String)>, String> {
    let mut parts = value.splitn(2, ',');
    let vol = parts.next().unwrap_or("");
    let rest = parts.next();
    // Compiled once: every create's rootfs is checked.
    static NEW_VOLUME: LazyLock<Result<regex_lite::Regex, regex_lite::Error>> = LazyLock::new(|| regex_lite::Regex::new(r"^([^:\s]+):(\d+(\.\d+)?)$"));
    let re = NEW_VOLUME.as_ref().map_err(|e| e.to_string())?;
    let Some(c) = re.captures(vol) else {
        return Ok(None);
    };
    let (storage, size) = (c[1].to_string(), c[2].to_string());
    if !ctx.state.storage_known(&storage) {
        return Err(format!("storage '{storage}' does not exist"));
    }
    let name = ctx.state.next_disk_name(&storage, vmid);
    std::fs::create_dir_all(ctx.state.volume_path(&storage, &name)).map_err(|e| e.to_string())?;
    log.push(format!(
        "allocated {storage}:{name} ({size} GiB, refquota={}k)",
        (size.parse::<f64>().unwrap_or(0.0) * 1048576.0) as u64
    ));
    let mut s = format!("{storage}:{name},size={size}G");
    if let Some(r) = rest {
        s.push(',');
        s.push_str(r);
    }
    Ok(Some((format!("{storage}:{name}"), s)))
}

fn free_volumes(ctx: &Ctx, s: &Section) {
    for (k, v) in &s.keys {
        if k == "rootfs" || k.starts_with("mp") || k.starts_with("unused") {
            if let Some((storage, name)) = mp_volume(v).split_once(':') {
                let _ = std::fs::remove_dir_all(ctx.state.volume_path(storage, name));
            }
        }
    }
}

/// Options a pve-container older than the one that added them does not
/// know: its schema refuses them (PROXMOX-FACTS §10: `entrypoint` exists
/// from pve-container 6.0.15).
fn check_version_gates(ctx: &Ctx, params: &Params) -> Result<(), ApiError> {
    if params.contains_key("entrypoint")
        && !Versions::load(ctx.state).at_least("pve-container", "6.0.15")
    {
        return param_fail(
            "entrypoint",
            "property is not defined in schema and the schema does not allow additional properties",
        );
    }
    Ok(())
}

/// `ostemplate` as `check_volume_access` parses it, synchronously: a
/// `STORAGE:vztmpl/NAME` volume whose name pve-storage's `parse_volname`
/// accepts — compressed tars always, a plain `.tar` only from
/// libpve-storage-perl 9.0.15 (PROXMOX-FACTS §10; pve-storage
/// `$VZTMPL_EXT_RE_1`). Returns the file the worker must find.
fn template_file(ctx: &Ctx, ostemplate: &str) -> Result<std::path::PathBuf, ApiError> {
    if ostemplate.starts_with('/') {
        return Ok(ostemplate.into());
    }
    let (storage, volname) = ostemplate.split_once(':').unwrap_or(("", ostemplate));
    if !ctx.state.storage_known(storage) {
        return fail(500, format!("storage '{storage}' does not exist"));
    }
    let plain_tar = Versions::load(ctx.state).at_least("libpve-storage-perl", "9.0.15");
    // Compiled once: every create names its template.
    static ANY_TAR: LazyLock<Option<regex_lite::Regex>> =
        LazyLock::new(|| regex_lite::Regex::new(r"^vztmpl/[^/]+\.(tar|tar\.(gz|xz|zst|bz2))$").ok());
    static COMPRESSED_TAR: LazyLock<Option<regex_lite::Regex>> =
        LazyLock::new(|| regex_lite::Regex::new(r"^vztmpl/[^/]+\.tar\.(gz|xz|zst|bz2)$").ok());
    let re = if plain_tar { &ANY_TAR } else { &COMPRESSED_TAR };
    let ok = re.as_ref().is_some_and(|r| r.is_match(volname));
    if !ok {
        return fail(
            500,
            format!("unable to parse directory volume name '{volname}'"),
        );
    }
    Ok(ctx.state.volume_path(storage, volname))
}

/// Every privilege of Proxmox VE's Administrator role (pve-access-control
/// PVE/AccessControl.pm `$privgroups`): what `root@pam` and a `privsep=0`
/// token of it hold (PROXMOX-FACTS §4 "API tokens").
const ALL_PRIVILEGES: &[&str] = &[
    "Datastore.Allocate",
    "Datastore.AllocateSpace",
    "Datastore.AllocateTemplate",
    "Datastore.Audit",
    "Group.Allocate",
    "Mapping.Audit",
    "Mapping.Modify",
    "Mapping.Use",
    "Permissions.Modify",
    "Pool.Allocate",
    "Pool.Audit",
    "Realm.Allocate",
    "Realm.AllocateUser",
    "SDN.Allocate",
    "SDN.Audit",
    "SDN.Use",
    "Sys.AccessNetwork",
    "Sys.Audit",
    "Sys.Console",
    "Sys.Incoming",
    "Sys.Modify",
    "Sys.PowerMgmt",
    "Sys.Syslog",
    "User.Modify",
    "VM.Allocate",
    "VM.Audit",
    "VM.Backup",
    "VM.Clone",
    "VM.Config.CDROM",
    "VM.Config.CPU",
    "VM.Config.Cloudinit",
    "VM.Config.Disk",
    "VM.Config.HWType",
    "VM.Config.Memory",
    "VM.Config.Network",
    "VM.Config.Options",
    "VM.Console",
    "VM.Migrate",
    "VM.PowerMgmt",
    "VM.Snapshot",
    "VM.Snapshot.Rollback",
];

/// The privileges the caller holds on any path: a token holds every one
/// except those listed in `DIR/privileges-missing` (one per line; the
/// double's stand-in for a token ACL); `root@pam` holds all.
fn held(ctx: &Ctx) -> Vec<&'static str> {
    let missing = if ctx.is_root() {
        String::new()
    } else {
        std::fs::read_to_string(ctx.state.dir.join("privileges-missing")).unwrap_or_default()
    };
    ALL_PRIVILEGES
        .iter()
        .copied()
        .filter(|p| !missing.lines().any(|l| l.trim() == *p))
        .collect()
}

/// `GET /access/permissions[?path=P]` (pve-access-control
/// API2/AccessControl.pm `permissions`): `{path: {privilege: 1}}`.
fn permissions(ctx: &Ctx, path: Option<&String>) -> Value {
    let privs: serde_json::Map<String, Value> = held(ctx)
        .into_iter()
        .map(|p| (p.to_string(), json!(1)))
        .collect();
    json!({ path.map_or("/", |p| p.as_str()): privs })
}

/// The schema's `["perm", PATH, [PRIVS], ("any", 1)?]` checks (pve-access-control
/// RPCEnvironment.pm `check_api2_permissions`), and create's `VM.Allocate`
/// on `/vms/{vmid}` (its check is a description; PROXMOX-FACTS §10). A miss
/// answers 403 `Permission check failed (PATH, PRIV)` (PROXMOX-FACTS §4).
fn check_permissions(
    ctx: &Ctx,
    method: &str,
    template: &str,
    params: &Params,
) -> Result<(), ApiError> {
    let check = match (method, template) {
        ("POST", "/nodes/{node}/lxc") => json!(["perm", "/vms/{vmid}", ["VM.Allocate"]]),
        _ => match ctx
            .schema
            .endpoint(method, template)
            .and_then(|e| e.pointer("/permissions/check"))
        {
            Some(c) => c.clone(),
            None => return Ok(()),
        },
    };
    if check.get(0).and_then(Value::as_str) != Some("perm") {
        return Ok(());
    }
    let mut path = check
        .get(1)
        .and_then(Value::as_str)
        .unwrap_or("/")
        .to_string();
    for (k, v) in params {
        path = path.replace(&format!("{{{k}}}"), v);
    }
    let privs: Vec<&str> = check
        .get(2)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let any = check.get(3).and_then(Value::as_str) == Some("any");
    let have = held(ctx);
    let ok = |p: &&str| have.contains(p);
    if (any && privs.iter().any(ok)) || (!any && privs.iter().all(ok)) {
        return Ok(());
    }
    let named = if any {
        privs.join("|")
    } else {
        privs
            .iter()
            .find(|p| !ok(p))
            .copied()
            .unwrap_or_default()
            .to_string()
    };
    fail(403, format!("Permission check failed ({path}, {named})"))
}

/// `POST /nodes/{node}/storage/{storage}/upload` (pve-storage
/// API2/Storage/Status.pm `upload`; PROXMOX-FACTS §10 "Create on a real
/// node"): a `vztmpl` file must carry a template extension pve-storage
/// parses (plain `.tar` only from libpve-storage-perl 9.0.15: "wrong file
/// extension"); the uploaded temp file is moved to the storage's template
/// dir by an `imgcopy` task. Only `vztmpl` is modelled.
fn upload(ctx: &Ctx, params: &Params) -> Result<Value, ApiError> {
    let storage = params.get("storage").cloned().unwrap_or_default();
    if !ctx.state.storage_known(&storage) {
        return fail(500, format!("storage '{storage}' does not exist"));
    }
    let Some(tmp) = params.get("tmpfilename") else {
        return fail(500, "missing temporary file name");
    };
    if params.get("content").map(String::as_str) != Some("vztmpl") {
        let _ = std::fs::remove_file(tmp);
        return fail(501, "pve-double models only content 'vztmpl' uploads");
    }
    let filename = params.get("filename").cloned().unwrap_or_default();
    // normalize_content_filename: the part after the last '/', other
    // characters than [-_.a-zA-Z0-9] become '_'.
    let filename: String = filename
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    let plain_tar = Versions::load(ctx.state).at_least("libpve-storage-perl", "9.0.15");
    let ext = if plain_tar {
        r"\.(tar|tar\.(gz|xz|zst|bz2))$"
    } else {
        r"\.tar\.(gz|xz|zst|bz2)$"
    };
    if !regex_lite::Regex::new(ext).is_ok_and(|r| r.is_match(&filename)) {
        let _ = std::fs::remove_file(tmp);
        return param_fail("filename", "wrong file extension");
    }
    let dest = ctx
        .state
        .volume_path(&storage, &format!("vztmpl/{filename}"));
    let moved = dest
        .parent()
        .map_or(Ok(()), std::fs::create_dir_all)
        .and_then(|()| std::fs::copy(tmp, &dest).map(|_| ()));
    let _ = std::fs::remove_file(tmp);
    let log = vec![format!("target file: {}", dest.display())];
    let error = moved
        .err()
        .map(|e| format!("failed to copy '{tmp}' to '{}': {e}", dest.display()));
    Ok(json!(tasks::record(
        ctx.state,
        "imgcopy",
        "",
        &ctx.user,
        &log,
        error.as_deref()
    )))
}

fn create(ctx: &Ctx, call: &str, vmid: u32, params: &Params) -> Result<Value, ApiError> {
    check_root_only(ctx, params, true)?;
    check_version_gates(ctx, params)?;
    let ostemplate = params.get("ostemplate").cloned().unwrap_or_default();
    let template = template_file(ctx, &ostemplate)?;
    // The cluster-wide VMID check and the first write happen under one lock.
    let _lock = ctx.state.lock("create").map_err(internal)?;
    if let Some(node) = ctx.state.find_vmid(vmid) {
        return fail(
            500,
            format!("unable to create CT {vmid} - CT {vmid} already exists on node '{node}'"),
        );
    }
    let mut s = Section::default();
    for (k, v) in params {
        match k.as_str() {
            "node"
            | "vmid"
            | "ostemplate"
            | "storage"
            | "start"
            | "password"
            | "ssh-public-keys"
            | "restore"
            | "force"
            | "unique"
            | "pool"
            | "ignore-unpack-errors"
            | "bwlimit"
            | "ha-managed" => {}
            "description" => s.description = Some(v.clone()),
            _ => {
                s.keys.insert(k.clone(), v.clone());
            }
        }
    }
    for (k, d) in [
        ("memory", "512"),
        ("swap", "512"),
        ("arch", "amd64"),
        ("ostype", "unmanaged"),
    ] {
        s.keys.entry(k.into()).or_insert_with(|| d.into());
    }
    s.keys
        .entry("hostname".into())
        .or_insert_with(|| format!("CT{vmid}"));
    let storage = params
        .get("storage")
        .cloned()
        .unwrap_or_else(|| "local".into());
    s.keys
        .entry("rootfs".into())
        .or_insert_with(|| format!("{storage}:4"));
    s.keys.insert("lock".into(), "create".into());
    let write = |s: &Section| {
        ctx.state.write_conf(
            vmid,
            &ConfigFile {
                main: s.clone(),
                ..Default::default()
            },
        )
    };
    write(&s).map_err(|e| internal(format!("unable to create CT {vmid} - {e}")))?;
    drop(_lock);

    // The worker: allocate disks, "extract" the template, final write.
    let mut log = vec![format!("extracting archive '{}'", template.display())];
    let mut error = None;
    let keys: Vec<String> = s
        .keys
        .keys()
        .filter(|k| *k == "rootfs" || k.starts_with("mp"))
        .cloned()
        .collect();
    for k in keys {
        match alloc_new_disk(ctx, vmid, &s.keys[&k], &mut log) {
            Ok(Some((_, v))) => {
                s.keys.insert(k, v);
            }
            Ok(None) => {}
            Err(e) => {
                error = Some(format!("unable to create CT {vmid} - {e}"));
                break;
            }
        }
    }
    // The worker unpacks the template after allocating the disks; pve-storage
    // `abs_filesystem_path` dies "can't find file" (PROXMOX-FACTS §10).
    if error.is_none() && !template.is_file() {
        error = Some(format!(
            "unable to create CT {vmid} - can't find file '{ostemplate}'"
        ));
    }
    if error.is_none() && ctx.state.fault(&format!("task {call}")) {
        error = Some(format!("unable to create CT {vmid} - injected task fault"));
    }
    match &error {
        None => {
            s.keys.remove("lock");
            if let Err(e) = write(&s) {
                error = Some(e.to_string());
            }
        }
        Some(_) => {
            // pve-container destroys disks and config when the worker fails.
            free_volumes(ctx, &s);
            let _ = ctx.state.remove_conf(vmid);
        }
    }
    Ok(json!(tasks::record(
        ctx.state,
        "vzcreate",
        &vmid.to_string(),
        &ctx.user,
        &log,
        error.as_deref()
    )))
}

fn missing(ctx: &Ctx, vmid: u32) -> ApiError {
    internal(format!(
        "Configuration file 'nodes/{}/lxc/{vmid}.conf' does not exist",
        ctx.state.node
    ))
}

/// Content digest of the config file. Proxmox uses SHA-1; the double only
/// needs a stable digest of the same length, so SHA-256 cut to 40 hex digits.
fn digest(ctx: &Ctx, vmid: u32) -> String {
    use sha2::Digest;
    let bytes = std::fs::read(ctx.state.conf_path(&ctx.state.node, vmid)).unwrap_or_default();
    let hex: String = sha2::Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    hex[..40].to_string()
}

fn get_config(ctx: &Ctx, vmid: u32) -> Result<Value, ApiError> {
    let cfg = ctx
        .state
        .read_conf(vmid)
        .ok_or_else(|| missing(ctx, vmid))?;
    let mut m = serde_json::Map::new();
    let mut s = cfg.main.clone();
    if let Some(p) = &cfg.pending {
        s.keys.extend(p.keys.clone());
    }
    for (k, v) in &s.keys {
        let val = match v.parse::<i64>() {
            Ok(n)
                if v == &n.to_string()
                    && !matches!(k.as_str(), "hostname" | "tags" | "description") =>
            {
                json!(n)
            }
            _ => json!(v),
        };
        m.insert(k.clone(), val);
    }
    if let Some(d) = &s.description {
        m.insert("description".into(), json!(d));
    }
    if !s.lxc.is_empty() {
        m.insert(
            "lxc".into(),
            json!(s.lxc.iter().map(|(k, v)| json!([k, v])).collect::<Vec<_>>()),
        );
    }
    m.insert("digest".into(), json!(digest(ctx, vmid)));
    Ok(Value::Object(m))
}

fn set_config(ctx: &Ctx, vmid: u32, params: &Params) -> Result<Value, ApiError> {
    check_root_only(ctx, params, false)?;
    check_version_gates(ctx, params)?;
    let _lock = lock_config(ctx, vmid)?;
    let mut cfg = ctx
        .state
        .read_conf(vmid)
        .ok_or_else(|| missing(ctx, vmid))?;
    if let Some(d) = params.get("digest") {
        if d != &digest(ctx, vmid) {
            return fail(
                500,
                "detected modified configuration - file changed by other user? Try again.",
            );
        }
    }
    if let Some(l) = cfg.main.keys.get("lock") {
        if !params.contains_key("skiplock") {
            return fail(500, format!("CT is locked ({l})"));
        }
    }
    let mut errors = BTreeMap::new();
    for k in params
        .get("delete")
        .map(|d| {
            d.split([',', ';', ' '])
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>()
        })
        .unwrap_or_default()
    {
        if matches!(k, "memory" | "rootfs" | "ostype") {
            errors.insert(
                "delete".to_string(),
                format!("unable to delete required option '{k}'"),
            );
        } else if k == "unprivileged" {
            errors.insert(
                "delete".to_string(),
                "unable to modify read-only option: 'unprivileged'".to_string(),
            );
        } else if k == "description" {
            cfg.main.description = None;
        } else if cfg.main.keys.remove(k).is_none() && !is_known_key(ctx, k) {
            errors.insert("delete".to_string(), format!("unknown option '{k}'"));
        }
    }
    for (k, v) in params {
        match k.as_str() {
            "node" | "vmid" | "delete" | "digest" | "revert" => {}
            "unprivileged" if cfg.main.keys.get("unprivileged") != Some(v) => {
                errors.insert(
                    k.clone(),
                    "unable to modify read-only option: 'unprivileged'".into(),
                );
            }
            "description" => cfg.main.description = Some(v.clone()),
            _ => {
                cfg.main.keys.insert(k.clone(), v.clone());
            }
        }
    }
    if errors.is_empty() {
        hotplug_memory(ctx, vmid, params, &mut errors);
    }
    if !errors.is_empty() {
        return Err(ApiError {
            status: 400,
            message: "Parameter verification failed.".into(),
            errors,
        });
    }
    ctx.state.write_conf(vmid, &cfg).map_err(internal)?;
    // Every config PUT rewrites `<lxcpath>/<vmid>/config` from the guest
    // config alone (PROXMOX-FACTS §2, §10).
    regenerate(ctx, vmid, &cfg.main).map_err(internal)?;
    Ok(Value::Null)
}

/// A PUT of `memory`/`swap` on a guest running under LXC writes its cgroup
/// at once (`hotplug.rs`); a failure is the key's 400 "unable to hotplug
/// KEY: …" and nothing is written (PROXMOX-FACTS §4).
fn hotplug_memory(ctx: &Ctx, vmid: u32, params: &Params, errors: &mut BTreeMap<String, String>) {
    let mib = |k: &str| params.get(k).and_then(|v| v.parse::<u64>().ok());
    let (memory, swap) = (mib("memory"), mib("swap"));
    if (memory.is_none() && swap.is_none()) || !crate::lxc::socket_running(&ctx.state.lxc_path, vmid) {
        return;
    }
    if let Err(e) = crate::hotplug::memory(&ctx.state.lxc_path, vmid, memory, swap) {
        let key = if memory.is_some() { "memory" } else { "swap" };
        errors.insert(key.to_string(), format!("unable to hotplug {key}: {e}"));
    }
}

/// `update_lxc_config` for guest `vmid` under the double's LXC path.
fn regenerate(ctx: &Ctx, vmid: u32, s: &Section) -> Result<(), String> {
    lxcconf::update_lxc_config(vmid, s, &lxcconf::Host::local(ctx.state.lxc_dir(vmid)))
}

fn is_known_key(ctx: &Ctx, k: &str) -> bool {
    match ctx
        .schema
        .validate_one("PUT", "/nodes/{node}/lxc/{vmid}/config", k, "x")
    {
        Ok(()) => true,
        Err(e) => !e.starts_with("unknown setting"),
    }
}

/// Status, with `pid` (the guest's init, `lxc-info -p`) while its LXC
/// command socket is up (PROXMOX-FACTS §8, §10).
fn status(ctx: &Ctx, vmid: u32) -> Result<Value, ApiError> {
    let cfg = ctx
        .state
        .read_conf(vmid)
        .ok_or_else(|| missing(ctx, vmid))?;
    let mut v = summary(ctx, vmid, &cfg.main);
    v["ha"] = json!({"managed": 0});
    if lxc::socket_running(&ctx.state.lxc_path, vmid) {
        if let Some(pid) = lxc::init_pid(&ctx.state.lxc_path, vmid) {
            v["pid"] = json!(pid);
        }
    }
    Ok(v)
}

/// The lock check of start/stop/shutdown tasks: any `lock` but `mounted`
/// (tolerated by start and stop) fails "CT is locked (…)" (PROXMOX-FACTS §10).
fn locked(s: &Section, mounted_ok: bool) -> Option<String> {
    s.keys
        .get("lock")
        .filter(|l| !(mounted_ok && l.as_str() == "mounted"))
        .map(|l| format!("CT is locked ({l})"))
}

/// Start: `update_lxc_config`, then `lxc-start` when the double really
/// starts guests (`--real-start`), else only the `run/<vmid>` flag.
/// Stop: `lxc-stop --kill` for a guest running under LXC (PROXMOX-FACTS §8, §10).
fn start_stop(
    ctx: &Ctx,
    call: &str,
    vmid: u32,
    start: bool,
    params: &Params,
) -> Result<Value, ApiError> {
    let skiplock = params.get("skiplock").and_then(|s| parse_bool(s)) == Some(true);
    let running = ctx.state.is_running(vmid);
    if start && running {
        return fail(500, format!("CT {vmid} already running"));
    }
    if !start && !running {
        return fail(500, format!("CT {vmid} not running"));
    }
    let kind = if start { "vzstart" } else { "vzstop" };
    let error = match ctx.state.read_conf(vmid) {
        None => Some(missing(ctx, vmid).message),
        Some(c) => match locked(&c.main, true).filter(|_| !skiplock) {
            Some(e) => Some(e),
            None if ctx.state.fault(&format!("task {call}")) => {
                Some(format!("injected task fault for {kind}"))
            }
            None if start => start_guest(ctx, vmid, &c.main).err(),
            None => stop_guest(ctx, vmid, &Stop::Kill).err(),
        },
    };
    Ok(json!(tasks::record(
        ctx.state,
        kind,
        &vmid.to_string(),
        &ctx.user,
        &[],
        error.as_deref()
    )))
}

fn start_guest(ctx: &Ctx, vmid: u32, s: &Section) -> Result<(), String> {
    if s.keys.get("template").and_then(|t| parse_bool(t)) == Some(true) {
        return Err("you can't start a CT if it's a template".into());
    }
    regenerate(ctx, vmid, s)?;
    if ctx.state.real_start {
        lxc::start(&ctx.state.lxc_path, vmid)
    } else {
        ctx.state.set_running(vmid, true).map_err(|e| e.to_string())
    }
}

/// End a guest: through LXC when its command socket is up, and always
/// clear the double's own flag.
fn stop_guest(ctx: &Ctx, vmid: u32, how: &Stop) -> Result<(), String> {
    if lxc::socket_running(&ctx.state.lxc_path, vmid) {
        lxc::stop(&ctx.state.lxc_path, vmid, how)?;
    }
    ctx.state
        .set_running(vmid, false)
        .map_err(|e| e.to_string())
}

/// `POST …/status/shutdown` / `pct shutdown [--timeout N] [--forceStop]`:
/// the halt signal, SIGKILL after the timeout only with forceStop
/// (PROXMOX-FACTS §8, §10). Any lock fails the task.
fn shutdown(ctx: &Ctx, call: &str, vmid: u32, params: &Params) -> Result<Value, ApiError> {
    if !ctx.state.is_running(vmid) {
        return fail(500, format!("CT {vmid} not running"));
    }
    let how = Stop::Shutdown {
        timeout: params
            .get("timeout")
            .and_then(|t| t.parse().ok())
            .unwrap_or(60),
        force_stop: params
            .get("forceStop")
            .and_then(|f| parse_bool(f))
            .unwrap_or(false),
    };
    let error = match ctx.state.read_conf(vmid) {
        None => Some(missing(ctx, vmid).message),
        Some(c) => match locked(&c.main, false) {
            Some(e) => Some(e),
            None if ctx.state.fault(&format!("task {call}")) => {
                Some("injected task fault for vzshutdown".to_string())
            }
            None => stop_guest(ctx, vmid, &how).err(),
        },
    };
    Ok(json!(tasks::record(
        ctx.state,
        "vzshutdown",
        &vmid.to_string(),
        &ctx.user,
        &[],
        error.as_deref()
    )))
}

fn destroy(ctx: &Ctx, call: &str, vmid: u32, params: &Params) -> Result<Value, ApiError> {
    let _lock = lock_config(ctx, vmid)?;
    let cfg = ctx
        .state
        .read_conf(vmid)
        .ok_or_else(|| missing(ctx, vmid))?;
    // Synchronous checks in pve-container's order: protection, lock, running
    // (PROXMOX-FACTS §5, §10). `lock: create` is let through so a failed
    // create can be cleaned up.
    if cfg.main.keys.get("protection").and_then(|p| parse_bool(p)) == Some(true) {
        return fail(
            500,
            format!("can't remove CT {vmid} - protection mode enabled"),
        );
    }
    if let Some(l) = cfg.main.keys.get("lock").filter(|l| l.as_str() != "create") {
        return fail(500, format!("CT is locked ({l})"));
    }
    let force = params
        .get("force")
        .and_then(|f| parse_bool(f))
        .unwrap_or(false);
    let running = ctx.state.is_running(vmid);
    if running && !force {
        return fail(
            500,
            format!("unable to destroy CT {vmid} - container is running"),
        );
    }
    let mut error = None;
    let mut log = Vec::new();
    if ctx.state.fault(&format!("task {call}")) {
        error = Some("injected task fault for vzdestroy".to_string());
    } else {
        if running {
            // `--force`: `vm_stop($vmid, 1)` first, i.e. `lxc-stop --kill`.
            log.push(format!("forced to stop CT {vmid} before destroying!"));
            error = stop_guest(ctx, vmid, &Stop::Kill).err();
        }
        if error.is_none() {
            free_volumes(ctx, &cfg.main);
            remove_lxc_dir(ctx, vmid);
            if let Err(e) = ctx.state.remove_conf(vmid) {
                error = Some(e.to_string());
            }
        }
    }
    Ok(json!(tasks::record(
        ctx.state,
        "vzdestroy",
        &vmid.to_string(),
        &ctx.user,
        &log,
        error.as_deref()
    )))
}

/// `destroy_lxc_container`: `rmdir rootfs`, `unlink config`, `rmdir` the
/// guest's LXC dir, each allowed to fail (PROXMOX-FACTS §8).
fn remove_lxc_dir(ctx: &Ctx, vmid: u32) {
    let dir = ctx.state.lxc_dir(vmid);
    let _ = std::fs::remove_dir(dir.join("rootfs"));
    let _ = std::fs::remove_file(dir.join("config"));
    let _ = std::fs::remove_dir(&dir);
}

/// Operator side, `pct unlock <vmid>`: drop any lock under the config lock
/// (the API cannot; PROXMOX-FACTS §3, §10).
pub fn unlock(ctx: &Ctx, vmid: u32) -> Result<(), ApiError> {
    set_lock(ctx, vmid, None, false)
}

/// Set (`Some`) or clear (`None`) `lock:` as root under the config lock;
/// with `must_be_free`, an existing lock fails "CT is locked (…)".
pub fn set_lock(
    ctx: &Ctx,
    vmid: u32,
    lock: Option<&str>,
    must_be_free: bool,
) -> Result<(), ApiError> {
    let _guard = lock_config(ctx, vmid)?;
    let mut cfg = ctx
        .state
        .read_conf(vmid)
        .ok_or_else(|| missing(ctx, vmid))?;
    if must_be_free {
        if let Some(e) = locked(&cfg.main, false) {
            return fail(500, e);
        }
    }
    match lock {
        Some(l) => cfg.main.keys.insert("lock".into(), l.into()),
        None => cfg.main.keys.remove("lock"),
    };
    ctx.state.write_conf(vmid, &cfg).map_err(internal)
}

/// `GET /nodes/{node}/storage/{storage}/content[?content=…]`: templates
/// under `vztmpl/` (format `tar`, `tzst`, … as pve-storage names them) and
/// guest volumes (`subvol`, content `rootdir`).
fn content(ctx: &Ctx, params: &Params) -> Result<Value, ApiError> {
    let storage = &params["storage"];
    if !ctx.state.storage_known(storage) {
        return fail(500, format!("storage '{storage}' does not exist"));
    }
    let want = params.get("content");
    let mut out = Vec::new();
    let root = ctx.state.volume_path(storage, "");
    let tmpl = regex_lite::Regex::new(r"^(.+)\.(tar|tar\.(gz|xz|zst|bz2))$").map_err(internal)?;
    let entries = |dir: &std::path::Path| -> Vec<(String, std::fs::Metadata)> {
        let mut v: Vec<_> = std::fs::read_dir(dir)
            .map(|d| {
                d.flatten()
                    .filter_map(|e| Some((e.file_name().into_string().ok()?, e.metadata().ok()?)))
                    .collect()
            })
            .unwrap_or_default();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    };
    if want.is_none_or(|w| w == "vztmpl") {
        for (name, md) in entries(&root.join("vztmpl")) {
            let Some(c) = tmpl.captures(&name) else {
                continue;
            };
            let format = match c.get(3) {
                Some(z) => format!("t{}", z.as_str()),
                None => "tar".into(),
            };
            out.push(json!({
                "volid": format!("{storage}:vztmpl/{name}"), "content": "vztmpl",
                "format": format, "size": md.len(), "ctime": state_ctime(&md),
            }));
        }
    }
    if want.is_none_or(|w| w == "rootdir" || w == "images") {
        let re = regex_lite::Regex::new(r"^(subvol|basevol)-(\d+)-").map_err(internal)?;
        for (name, _) in entries(&root) {
            let Some(c) = re.captures(&name) else {
                continue;
            };
            let vmid: u64 = c[2].parse().unwrap_or(0);
            if params
                .get("vmid")
                .is_some_and(|v| v.parse::<u64>().ok() != Some(vmid))
            {
                continue;
            }
            out.push(json!({
                "volid": format!("{storage}:{name}"), "content": "rootdir",
                "format": "subvol", "size": 0, "vmid": vmid,
            }));
        }
    }
    Ok(Value::Array(out))
}

fn state_ctime(md: &std::fs::Metadata) -> u64 {
    use std::os::unix::fs::MetadataExt;
    u64::try_from(md.ctime()).unwrap_or(0)
}

fn alloc(ctx: &Ctx, params: &Params) -> Result<Value, ApiError> {
    let storage = &params["storage"];
    let name = &params["filename"];
    let vmid = &params["vmid"];
    if !ctx.state.storage_known(storage) {
        return fail(500, format!("storage '{storage}' does not exist"));
    }
    let ok = regex_lite::Regex::new(&format!(r"^(subvol|vm|base|basevol)-{vmid}-[a-z0-9\-_.]+$"))
        .map(|r| r.is_match(name))
        .unwrap_or(false);
    if !ok {
        return param_fail(
            "filename",
            format!("illegal name '{name}' - should be 'vm-{vmid}-*'"),
        );
    }
    let p = ctx.state.volume_path(storage, name);
    if p.exists() {
        return fail(500, format!("volume '{storage}:{name}' already exists"));
    }
    std::fs::create_dir_all(&p).map_err(internal)?;
    Ok(json!(format!("{storage}:{name}")))
}

fn free(ctx: &Ctx, call: &str, params: &Params) -> Result<Value, ApiError> {
    let vol = &params["volume"];
    let (storage, name) = match vol.split_once(':') {
        Some((s, n)) => (s.to_string(), n.to_string()),
        None => (params["storage"].clone(), vol.clone()),
    };
    if !ctx.state.storage_known(&storage) {
        return fail(500, format!("storage '{storage}' does not exist"));
    }
    let mut error = None;
    if ctx.state.fault(&format!("task {call}")) {
        error = Some("injected task fault for imgdel".to_string());
    } else {
        // "dataset does not exist" counts as success in ZFSPoolPlugin.
        let _ = std::fs::remove_dir_all(ctx.state.volume_path(&storage, &name));
    }
    Ok(json!(tasks::record(
        ctx.state,
        "imgdel",
        &format!("{storage}:{name}"),
        &ctx.user,
        &[],
        error.as_deref()
    )))
}

fn task_status(ctx: &Ctx, params: &Params) -> Result<Value, ApiError> {
    let upid = &params["upid"];
    let Some(u) = nexcage_pve::driver::Upid::parse(upid) else {
        return param_fail("upid", "unable to parse worker upid");
    };
    let Some((running, lines)) = tasks::read(ctx.state, upid) else {
        return param_fail("upid", "no such task");
    };
    let (user, tokenid) = match u.user.split_once('!') {
        Some((a, b)) => (a.to_string(), Some(b.to_string())),
        None => (u.user.clone(), None),
    };
    let mut v = json!({
        "upid": upid, "node": u.node, "pid": u.pid, "pstart": u.pstart, "starttime": u.starttime,
        "type": u.kind, "id": u.id, "user": user,
        "status": if running { "running" } else { "stopped" },
    });
    if let Some(t) = tokenid {
        v["tokenid"] = json!(t);
    }
    if !running {
        v["exitstatus"] = json!(tasks::exitstatus(&lines));
    }
    Ok(v)
}

fn task_log(ctx: &Ctx, params: &Params) -> Result<Value, ApiError> {
    let Some((_, lines)) = tasks::read(ctx.state, &params["upid"]) else {
        return param_fail("upid", "no such task");
    };
    let start: usize = params
        .get("start")
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let limit: usize = params
        .get("limit")
        .and_then(|s| s.parse().ok())
        .unwrap_or(50);
    let out: Vec<Value> = lines
        .iter()
        .enumerate()
        .skip(start)
        .take(limit)
        .map(|(i, t)| json!({"n": i + 1, "t": t}))
        .collect();
    Ok(Value::Array(out))
}
