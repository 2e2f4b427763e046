//! create: validate, lock a new state dir, route to a backend, ask it to
//! create the process, record. On any failure nothing is left: no state
//! dir, no cgroup, no process, no pid file.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{bail, Result};

use super::{console_relay, Container};
use crate::backend::{self, CreateOpts};
use crate::context::Ctx;
use crate::state::{Locked, Record};
use crate::{proc, spec};

/// What `create` (and `run`) were asked for.
pub struct CreateArgs {
    pub id: String,
    pub bundle: PathBuf,
    pub pid_file: Option<PathBuf>,
    pub console_socket: Option<PathBuf>,
    pub preserve_fds: i32,
    pub no_pivot: bool,
    /// `run` without `--detach`: the container's init stays our child.
    pub foreground: bool,
}

impl Container {
    pub fn create(ctx: &Ctx, a: &CreateArgs) -> Result<Container> {
        crate::state::id::validate(&a.id)?;
        if ctx.systemd_cgroup {
            bail!("--systemd-cgroup is not supported: nexcage is built without a systemd cgroup driver (use cgroupfs)");
        }
        let bundle = spec::load(&a.bundle)?;
        if !bundle.dropped_caps.is_empty() {
            tracing::warn!("{}", crate::backend::oci::caps::warning(&bundle.dropped_caps));
        }
        let terminal = bundle.spec.process().as_ref().and_then(|p| p.terminal()).unwrap_or(false);
        super::terminal::check(!a.foreground, terminal, a.console_socket.is_some())?;
        crate::backend::oci::lsm::check(&bundle.spec)?;
        let locked = ctx.store()?.create(&a.id)?;
        let rec = match new_record(ctx, a, &bundle) {
            Ok(rec) => rec,
            Err(e) => return Err(abandon(locked, a, e)),
        };
        let mut c = Container { locked, rec, console: None };
        // runc's foreground `run` with a terminal: nexcage takes the pty and
        // relays it (container_run.rs).
        if terminal && a.foreground && a.console_socket.is_none() {
            match console_relay::ConsoleSocket::bind() {
                Ok(s) => c.console = Some(s),
                Err(e) => return Err(abandon(c.locked, a, e)),
            }
        }
        match c.create_in_backend(ctx, a, &bundle) {
            Ok(()) => Ok(c),
            Err(e) => Err(abandon(c.locked, a, e)),
        }
    }

    fn create_in_backend(&mut self, ctx: &Ctx, a: &CreateArgs, bundle: &spec::Bundle) -> Result<()> {
        // Recorded before the backend runs so a crash mid-create can be cleaned by delete --force.
        self.save()?;
        let be = self.backend(ctx)?;
        let absolute = |p: &PathBuf| std::path::absolute(p).unwrap_or_else(|_| p.clone());
        let created = be.create(&CreateOpts {
            id: &a.id,
            bundle,
            dir: self.dir(),
            pid_file: a.pid_file.as_ref().map(absolute),
            console_socket: a.console_socket.as_ref().map(absolute).or_else(|| self.console.as_ref().map(|s| s.path().to_path_buf())),
            preserve_fds: a.preserve_fds,
            no_pivot: a.no_pivot,
            foreground: a.foreground,
        })?;
        self.rec.pid = Some(created.pid);
        self.rec.pid_start = proc::start_time(created.pid);
        self.rec.monitor_pid = created.monitor_pid;
        self.rec.backend_data = created.backend_data;
        if let Err(e) = self.save() {
            let _ = self.teardown(&*be);
            return Err(e);
        }
        Ok(())
    }
}

/// The record of a container being created: routed, no process yet.
fn new_record(ctx: &Ctx, a: &CreateArgs, bundle: &spec::Bundle) -> Result<Record> {
    let annotations: BTreeMap<String, String> =
        bundle.spec.annotations().clone().unwrap_or_default().into_iter().collect();
    let (kind, why) = backend::route(&a.id, &annotations, &ctx.config()?)?;
    Ok(Record {
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
        monitor_pid: None,
        started: false,
        paused: false,
        backend_data: crate::backend::BackendData::Native,
    })
}

/// Undoes what create wrote (pid file, state dir) and returns its error.
fn abandon(locked: Locked, a: &CreateArgs, e: anyhow::Error) -> anyhow::Error {
    if let Some(p) = &a.pid_file {
        let _ = std::fs::remove_file(p);
    }
    if let Err(re) = locked.remove() {
        tracing::warn!("cleanup after failed create: {re:#}");
    }
    e
}

fn owner_name() -> String {
    // runc reports "" for root and the user name otherwise; avoid NSS lookups.
    let uid = nix::unistd::getuid().as_raw();
    if uid == 0 { String::new() } else { uid.to_string() }
}
