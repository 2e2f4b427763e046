//! Admin flows: create from an image, (re)launch through the monitor, stop
//! with a grace period.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use super::{bundle, inuse, monitor, ports, spec_edit, AdminArgs};
use crate::backend;
use crate::container::Container;
use crate::context::Ctx;
use crate::network;
use crate::state::TransitionError;

/// `create --name NAME --image SRC [...]`: bundle, options, monitor.
pub fn create(ctx: &Ctx, name: &str, source: &Path, a: &AdminArgs) -> Result<()> {
    super::ensure_new(ctx, name)?;
    let dir = super::admin_dir(ctx, name)?;
    if dir.exists() {
        // No container owns it (checked above): left by a crash.
        tracing::warn!("removing stale bundle {}", dir.display());
        std::fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))?;
    }
    let res = (|| {
        let source = source.to_str().context("--image: not UTF-8")?;
        let base_parent = |anns: &std::collections::BTreeMap<String, String>| -> Option<(String, bool)> {
            let cfg = ctx.config().ok()?;
            let be = match &a.backend {
                Some(b) => b.clone(),
                None => backend::route(name, anns, &cfg).ok()?.0.to_string(),
            };
            let parent = (be == "proxmox" && a.storage_type.as_deref() != Some("dir")).then(|| cfg.storage.zfs_parent())??;
            // The backend's rule, on the namespaces the image's spec will have:
            // runc's defaults, the network one dropped for host, else a new one.
            use libcontainer::oci_spec::runtime::LinuxNamespaceType as T;
            let net = a.network.as_deref().map(network::option::parse).transpose().ok()?;
            let mut ns = vec![(T::Pid, false), (T::Ipc, false), (T::Uts, false), (T::Mount, false)];
            if net != Some(network::Network::Host) {
                ns.push((T::Network, false));
            }
            Some((parent, cfg.unprivileged() && backend::unprivileged_possible(ns, false)))
        };
        let (mut spec, src) = bundle::build(ctx, source, &dir, &base_parent)?;
        let be = a.backend.clone().unwrap_or_else(|| {
            let anns = spec["annotations"].as_object().cloned().unwrap_or_default();
            let anns = anns.into_iter().filter_map(|(k, v)| Some((k, v.as_str()?.to_string()))).collect();
            ctx.config().ok().and_then(|c| backend::route(name, &anns, &c).ok()).map(|(k, _)| k.to_string()).unwrap_or_else(|| "native".into())
        });
        if be == "proxmox" {
            ports::check_proxmox_network(a.network.as_deref(), ctx.config()?.network.bridge.as_deref())?;
        }
        spec_edit::apply(&mut spec, a, &src.image, a.backend.as_deref())?;
        let req = network::Request { id: name, backend: &be, network: a.network.as_deref(), ports: &a.port };
        if let Some(plan) = network::resolve(ctx, &dir, &req)? {
            spec_edit::add_mounts(&mut spec, network::files::write(&dir, &plan, name)?);
            // The Proxmox guest's own net0 (PVE's form; LXC makes the veth).
            spec["annotations"][network::NET0_ANNOTATION] = serde_json::json!(plan.pve_net0());
        }
        bundle::write_spec(&dir, &spec)?;
        inuse::refresh(ctx)?;
        monitor::spawn(ctx, name, &dir, a.start)
    })();
    if let Err(e) = res {
        if let Err(n) = network::release(ctx, name, &dir) {
            tracing::warn!("releasing the network of {name}: {n:#}");
        }
        let _ = std::fs::remove_dir_all(&dir);
        let _ = inuse::refresh(ctx);
        return Err(e);
    }
    Ok(())
}

/// Starts admin container `id`: a created one is started in place; a
/// stopped one (or one whose state vanished with a reboot) is created
/// again from its bundle under a new monitor. So is a created one whose
/// network is not (fully) there: its `create` was killed before the
/// monitor attached it, and starting it would run a container without the
/// veth and ports it was created with.
pub fn launch(ctx: &Ctx, id: &str, dir: &Path) -> Result<()> {
    if ctx.root.join(id).exists() {
        let mut c = Container::load(ctx, id)?;
        let native = c.record().backend == crate::state::BackendKind::Native;
        if c.status() == crate::state::Status::Created && !network::attached(id, dir, native)? {
            tracing::warn!("{id}: its create was interrupted before its network was set up; creating it again");
            drop(c);
            Container::delete(ctx, id, true)?;
            network::detach(ctx, id, dir, None)?;
            return monitor::spawn(ctx, id, dir, true);
        }
        match c.start(ctx) {
            Err(e) if e.downcast_ref::<TransitionError>() == Some(&TransitionError::StartStopped) => {}
            r => return r,
        }
        drop(c);
        Container::delete(ctx, id, true)?;
    }
    monitor::spawn(ctx, id, dir, true)
}

fn wait_stopped(ctx: &Ctx, id: &str, timeout: Duration) -> bool {
    let t0 = Instant::now();
    loop {
        // Gone (deleted) counts as stopped.
        let stopped = match Container::load(ctx, id) {
            Ok(c) => c.status().is_stopped(),
            Err(_) => true,
        };
        if stopped {
            return true;
        }
        if t0.elapsed() >= timeout {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The stopped admin container's ports and veth go (the monitor does the
/// same when it sees the container exit; whichever comes second finds nothing).
fn detach_network(ctx: &Ctx, id: &str) -> Result<()> {
    match super::admin_dir_of(ctx, id) {
        Some(dir) => network::detach(ctx, id, &dir, None),
        None => Ok(()),
    }
}

/// SIGTERM, then SIGKILL (to every process) after `timeout`; `force` kills
/// at once. Returns false when it was not running.
pub fn stop(ctx: &Ctx, id: &str, timeout: Duration, force: bool) -> Result<bool> {
    let signal = |sig, all| Container::load(ctx, id)?.signal_to_stop(ctx, sig, all);
    if !force {
        if !signal(libc::SIGTERM, false)? {
            return Ok(false);
        }
        if wait_stopped(ctx, id, timeout) {
            detach_network(ctx, id)?;
            return Ok(true);
        }
        tracing::info!("{id} did not stop within {timeout:?}: SIGKILL");
    }
    if !signal(libc::SIGKILL, true)? && force {
        return Ok(false);
    }
    if !wait_stopped(ctx, id, Duration::from_secs(10)) {
        bail!("container {id} did not stop after SIGKILL");
    }
    detach_network(ctx, id)?;
    Ok(true)
}

/// Launches every admin container created with `--auto-start` that is not
/// running (its state under --root is gone after a reboot; its bundle in
/// the data dir is not), in name order; `report` gets each attempt's outcome.
pub fn autostart(ctx: &Ctx, mut report: impl FnMut(&str, Result<()>)) -> Result<()> {
    let Ok(entries) = std::fs::read_dir(super::bundles_dir(ctx)?) else { return Ok(()) };
    let mut dirs: Vec<_> = entries.flatten().map(|e| e.path()).collect();
    dirs.sort();
    for d in dirs {
        let Some(name) = d.file_name().and_then(|n| n.to_str()).map(str::to_string) else { continue };
        let Ok(data) = std::fs::read(d.join("config.json")) else { continue };
        let Ok(spec) = serde_json::from_slice::<serde_json::Value>(&data) else { continue };
        if spec["annotations"][super::AUTOSTART_ANNOTATION] != "true" {
            continue;
        }
        if Container::load(ctx, &name).is_ok_and(|c| c.status().is_running()) {
            continue;
        }
        report(&name, launch(ctx, &name, &d));
    }
    Ok(())
}
