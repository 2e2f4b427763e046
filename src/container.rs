//! Operations shared by several commands: derived status, the state JSON,
//! the create and delete flows, and waiting on a foreground process.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};

use crate::backend::{self, CreateOpts};
use crate::cli::Ctx;
use crate::proc;
use crate::spec;
use crate::state::{Locked, Record, Status};

/// Status from what is observable, never from what was last written:
/// the recorded pid must still be the same live process.
pub fn status(rec: &Record) -> Status {
    match rec.pid {
        None => Status::Creating,
        Some(pid) if !proc::is_same_alive(pid, rec.pid_start) => Status::Stopped,
        Some(_) if rec.paused => Status::Paused,
        Some(_) if rec.started => Status::Running,
        Some(_) => Status::Created,
    }
}

/// The state document, with the fields runc prints.
pub fn state_json(rec: &Record) -> serde_json::Value {
    let st = status(rec);
    let pid = match st {
        Status::Stopped | Status::Creating => 0,
        _ => rec.pid.unwrap_or(0),
    };
    let mut v = serde_json::json!({
        "ociVersion": rec.oci_version,
        "id": rec.id,
        "pid": pid,
        "status": st.to_string(),
        "bundle": rec.bundle,
        "rootfs": rec.rootfs,
        "created": rec.created,
        "owner": rec.owner,
        "backend": rec.backend.to_string(),
    });
    if !rec.annotations.is_empty() {
        v["annotations"] = serde_json::to_value(&rec.annotations).unwrap_or_default();
    }
    v
}

pub struct CreateArgs {
    pub id: String,
    pub bundle: PathBuf,
    pub pid_file: Option<PathBuf>,
    pub console_socket: Option<PathBuf>,
    pub preserve_fds: i32,
    pub no_pivot: bool,
    pub foreground: bool,
}

/// create: validate, lock a new state dir, route, ask the backend, record.
/// On any failure nothing is left: no state dir, no cgroup, no process.
pub fn create(ctx: &Ctx, a: &CreateArgs) -> Result<(Locked, Record)> {
    crate::state::id::validate(&a.id)?;
    if ctx.systemd_cgroup {
        bail!("--systemd-cgroup is not supported: nexcage is built without a systemd cgroup driver (use cgroupfs)");
    }
    let bundle = spec::load(&a.bundle)?;
    let store = ctx.store()?;
    let locked = store.create(&a.id)?;
    match create_locked(ctx, a, &bundle, &locked) {
        Ok(rec) => Ok((locked, rec)),
        Err(e) => {
            if let Some(p) = &a.pid_file {
                let _ = std::fs::remove_file(p);
            }
            if let Err(re) = locked.remove() {
                tracing::warn!("cleanup after failed create: {re:#}");
            }
            Err(e)
        }
    }
}

fn create_locked(ctx: &Ctx, a: &CreateArgs, bundle: &spec::Bundle, locked: &Locked) -> Result<Record> {
    let annotations: BTreeMap<String, String> =
        bundle.spec.annotations().clone().unwrap_or_default().into_iter().collect();
    let (kind, why) = backend::route(&a.id, &annotations, &ctx.config()?)?;
    let mut rec = Record {
        oci_version: bundle.spec.version().clone(),
        id: a.id.clone(),
        bundle: bundle.dir.clone(),
        rootfs: bundle.rootfs.clone(),
        created: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
        owner: owner_name(),
        annotations,
        backend: kind,
        routed_by: why,
        pid: None,
        pid_start: None,
        started: false,
        paused: false,
        backend_data: backend::BackendData::Native,
    };
    // Recorded before the backend runs so a crash mid-create can be cleaned by delete --force.
    locked.save(&rec)?;
    let be = backend::for_kind(kind, ctx.config_path.as_deref())?;
    let pid_file = a.pid_file.as_ref().map(|p| std::path::absolute(p).unwrap_or_else(|_| p.clone()));
    let created = be.create(&CreateOpts {
        id: &a.id,
        bundle,
        dir: &locked.dir,
        pid_file,
        console_socket: a.console_socket.as_ref().map(|p| std::path::absolute(p).unwrap_or_else(|_| p.clone())),
        preserve_fds: a.preserve_fds,
        no_pivot: a.no_pivot,
        foreground: a.foreground,
    })?;
    rec.pid = Some(created.pid);
    rec.pid_start = proc::start_time(created.pid);
    rec.backend_data = created.backend_data;
    if let Err(e) = locked.save(&rec) {
        let _ = be.delete(&rec, &locked.dir);
        return Err(e);
    }
    Ok(rec)
}

fn owner_name() -> String {
    // runc reports "" for root and the user name otherwise; avoid NSS lookups.
    let uid = nix::unistd::getuid().as_raw();
    if uid == 0 { String::new() } else { uid.to_string() }
}

/// delete: refuses a running container unless forced; removes everything.
pub fn delete(ctx: &Ctx, id: &str, force: bool) -> Result<()> {
    let store = ctx.store()?;
    let locked = store.lock(id)?;
    let rec = match locked.load() {
        Ok(r) => r,
        // A create that died before writing its record left only the dir.
        Err(_) if force => return locked.remove(),
        Err(e) => return Err(e),
    };
    let st = status(&rec);
    if !force && matches!(st, Status::Running | Status::Paused) {
        bail!("cannot delete container {id} that is not stopped: {st}");
    }
    let be = backend::for_kind(rec.backend, ctx.config_path.as_deref())?;
    be.delete(&rec, &locked.dir).with_context(|| format!("delete {id}"))?;
    locked.remove()
}

/// Waits for our child `pid`, forwarding the usual terminating signals to it.
/// Returns its exit status the way a shell reports it (128+N for signal N).
pub fn wait_forwarding(pid: i32) -> Result<i32> {
    use nix::sys::wait::{waitpid, WaitStatus};
    use signal_hook::consts::*;
    let mut signals = signal_hook::iterator::Signals::new([SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH])?;
    let handle = signals.handle();
    let fwd = std::thread::spawn(move || {
        for s in signals.forever() {
            let _ = proc::signal(pid, s);
        }
    });
    let code = loop {
        match waitpid(nix::unistd::Pid::from_raw(pid), None) {
            Ok(WaitStatus::Exited(_, c)) => break c,
            Ok(WaitStatus::Signaled(_, s, _)) => break 128 + s as i32,
            Ok(_) => continue,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => bail!("waiting for process {pid}: {e}"),
        }
    };
    handle.close();
    let _ = fwd.join();
    Ok(code)
}
