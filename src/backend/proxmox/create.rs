//! create: VMID, rootfs on ZFS, guest registration, LXC config, holder.
//! Each step is recorded in the progress file before it happens; on any
//! error everything done so far is undone before the error is returned.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{bail, Context, Result};
use nexcage_pve::driver::CreateRequest;
use nexcage_pve::mapping::{self, BindMountMode, MapOptions};

use super::lxcconf::{self, CgroupMode};
use super::progress::Progress;
use super::rootfs::{self, Strategy};
use super::{delete, holder, hooks, lookup, paths, stage, subids, Proxmox};
use crate::backend::{CreateOpts, Created};

/// What `pct create` needs as template; the rootfs is provided by nexcage.
const OSTEMPLATE: &str = "local:vztmpl/nexcage-empty.tar";

pub fn create(px: &Proxmox, opts: &CreateOpts) -> Result<Created> {
    let mut prog = Progress::default();
    match create_steps(px, opts, &mut prog) {
        Ok(c) => Ok(c),
        Err(e) => {
            // The progress file may know more than `prog` (it is the source of truth).
            let p = Progress::load(opts.dir).unwrap_or(prog);
            if let Err(ue) = delete::undo(px, &p, opts.dir) {
                tracing::warn!("cleanup after failed create: {ue:#}");
            }
            Err(e)
        }
    }
}

fn create_steps(px: &Proxmox, opts: &CreateOpts, prog: &mut Progress) -> Result<Created> {
    let cfg = px.config();
    let spec = &opts.bundle.spec;
    let ann: BTreeMap<String, String> = spec.annotations().clone().unwrap_or_default().into_iter().collect();
    hooks::check(spec)?;
    let strategy = rootfs::choose(cfg, &ann)?;
    let unprivileged = cfg.unprivileged() && can_be_unprivileged(spec, strategy);
    if unprivileged {
        subids::check_root_range(mapping::UNPRIVILEGED_ID_BASE, mapping::UNPRIVILEGED_ID_COUNT)?;
    }
    let parent = cfg.storage.zfs_parent();
    if strategy != Strategy::Bind && parent.is_none() {
        bail!("rootfs strategy {} needs storage.pool in nexcage's configuration", strategy.name());
    }
    let quota = rootfs::disk_bytes(cfg, &ann)?;
    let storage = cfg.proxmox.storage.clone().unwrap_or_else(|| "local-zfs".into());
    let process = spec.process().as_ref().context("config.json has no process")?;
    prog.strategy = Some(strategy.name().into());
    prog.config_path = px.config_path().map(Path::to_path_buf);
    prog.pct_tools = Some((super::resolve("pct"), super::resolve("pvesh")));
    prog.lxc_path = Some(px.lxc_path());
    prog.args = process.args().clone().unwrap_or_default();
    prog.terminal = process.terminal().unwrap_or(false);
    if prog.args.is_empty() {
        bail!("process.args must not be empty");
    }
    // With a clone source the guest's files come from the snapshot, not the bundle.
    if !ann.contains_key(rootfs::CLONE_ANNOTATION) {
        lookup::check_program(&opts.bundle.rootfs, &prog.args, process.env().as_deref().unwrap_or_default(), process.cwd())?;
    }
    // LXC has no umask key: the holder sets it before lxc-execute, whose
    // init and command inherit it.
    let mut spec_json = serde_json::to_value(spec)?;
    if let Some(user) = spec_json.pointer_mut("/process/user").and_then(|u| u.as_object_mut()) {
        prog.umask = user.remove("umask").and_then(|u| u.as_u64()).and_then(|u| u32::try_from(u).ok());
    }
    prog.begin(opts.dir, "vmid")?;
    let px = &px.for_progress(prog)?;
    let cp = px.driver()?;
    let (mem, swap) = mapping::host_memory_mib().unwrap_or((1 << 20, 0));

    // nextid reserves nothing: another creator may take the VMID between
    // nextid and create, then everything made for it is undone and retried.
    let mut attempt = 0;
    let (vmid, pve) = loop {
        attempt += 1;
        let vmid = cp.next_vmid()?;
        prog.vmid = Some(vmid);
        let mut mo = MapOptions::new(vmid, opts.id, &storage, mem);
        mo.unlimited_swap_mib = swap;
        mo.bind_mounts = BindMountMode::LxcEntry;
        mo.unprivileged = unprivileged;
        mo.disk_size_gib = quota.div_ceil(1 << 30).max(1);
        mo.bridge = cfg.network.bridge.clone();
        mo.vlan = cfg.network.vlan.and_then(|v| u16::try_from(v).ok());
        // Mapped before any side effect: a spec Proxmox cannot honour costs nothing.
        if matches!((strategy, &parent), (Strategy::Bind, _) | (_, None)) {
            mo.rootfs_volume = Some(opts.bundle.rootfs.display().to_string());
        } else {
            mo.rootfs_volume = Some(format!("{storage}:subvol-{vmid}-disk-0,size={}G", mo.disk_size_gib));
        }
        let pve = mapping::map_value(&spec_json, &mo).map_err(|e| anyhow::anyhow!("config.json: {e}"))?;
        let rootfs_path = match (strategy, &parent) {
            (Strategy::Bind, _) | (_, None) => opts.bundle.rootfs.clone(),
            (_, Some(parent)) => {
                let name = nexcage_zfs::subvol_name(parent, vmid, 0);
                prog.dataset = Some(name.clone());
                prog.begin(opts.dir, "dataset")?;
                let zfs = nexcage_zfs::Zfs::new();
                if zfs.exists(&name)? {
                    prog.dataset = None;
                    prog.save(opts.dir)?;
                    bail!("ZFS dataset {name} already exists but VMID {vmid} is free in Proxmox: not touching it (remove it, or run nexcage gc)");
                }
                rootfs::provision(&zfs, strategy, &name, &opts.bundle.rootfs, quota, &ann, parent, pve.exec.id_shift)
                    .with_context(|| format!("provision rootfs {name}"))?
            }
        };
        prog.rootfs = Some(rootfs_path);
        prog.guest = true;
        prog.begin(opts.dir, "guest")?;
        let mut params = pve.api_params();
        if cfg.driver() == nexcage_config::Driver::Pct {
            // pct cannot take a NUL-joined env as an argument (the driver would
            // edit /etc/pve directly); the env lives in nexcage's LXC config.
            params.remove("env");
        }
        let req = CreateRequest { ostemplate: OSTEMPLATE.into(), params, raw_lxc: vec![] };
        match cp.create(vmid, &req) {
            Ok(()) => break (vmid, pve),
            Err(e) if e.is_already_exists() && attempt < 50 => {
                tracing::debug!(vmid, "VMID taken concurrently, retrying");
                prog.guest = false;
                delete::undo_storage(prog)?;
                prog.dataset = None;
                prog.save(opts.dir)?;
            }
            Err(e) => return Err(e.into()),
        }
    };
    prog.cp_calls = cp.calls();
    tracing::info!(vmid, calls = prog.cp_calls, "guest registered");

    prog.begin(opts.dir, "lxcconf")?;
    let lxc_dir = prog.lxc_dir().context("no lxc dir")?;
    // "No limit" was registered as the host's size; LXC gets no limit at all.
    let mut run_cfg = pve.clone();
    let limited = spec.linux().as_ref().and_then(|l| l.resources().as_ref()).and_then(|r| r.memory().as_ref()).and_then(|m| m.limit()).is_some_and(|l| l > 0);
    if !limited {
        run_cfg.keys.remove("memory");
        run_cfg.keys.remove("swap");
    }
    // LXC cannot create mount targets in a read-only rootfs, nor (on zfs-fuse)
    // as an unprivileged guest's mapped root: create them now.
    let shift = run_cfg.exec.id_shift;
    if let Some(rootfs) = prog.rootfs.as_ref().filter(|_| shift.is_some() || paths::readonly_root(&run_cfg)) {
        stage::precreate_targets(rootfs, &run_cfg, shift.unwrap_or(0))?;
    }
    if shift.is_some() {
        stage::stage(&lxc_dir, &mut run_cfg)?;
    }
    write_lxc_dir(&lxc_dir, vmid, prog, &run_cfg)?;
    prog.shares = pve.exec.shares.iter().map(|s| (s.kind.clone(), s.path.clone())).collect();

    prog.begin(opts.dir, "holder")?;
    let tty = if prog.terminal {
        let sock = opts.console_socket.as_ref().context("process.terminal is set but no --console-socket was given")?;
        let (master, slave) = holder::open_pty()?;
        holder::send_console(sock, &master)?;
        Some(slave)
    } else {
        None
    };
    let pid = holder::spawn(opts.dir, opts.foreground, tty, opts.preserve_fds)?;
    prog.holder = Some(pid);
    prog.save(opts.dir)?;
    // A failing prestart/createRuntime hook fails create (and undoes it).
    hooks::run(spec, opts.id, &opts.bundle.dir, Some(pid), hooks::Stage::Created)?;
    prog.step = "done".into();
    prog.save(opts.dir)?;
    if let Some(pf) = &opts.pid_file {
        write_pid_file(pf, pid)?;
    }
    Ok(Created { pid, backend_data: serde_json::to_value(&*prog)? })
}

fn can_be_unprivileged(spec: &libcontainer::oci_spec::runtime::Spec, strategy: Strategy) -> bool {
    let ns = spec.linux().as_ref().and_then(|l| l.namespaces().clone()).unwrap_or_default();
    let ok = super::unprivileged_possible(ns.iter().map(|n| (n.typ(), n.path().is_some())), strategy == Strategy::Bind);
    if !ok {
        tracing::info!("the guest runs privileged: bind rootfs, a namespace joined by path, or the host's pid/ipc/uts namespace");
    }
    ok
}

fn write_lxc_dir(lxc_dir: &Path, vmid: u32, prog: &Progress, pve: &mapping::PveConfig) -> Result<()> {
    std::fs::create_dir_all(lxc_dir).with_context(|| format!("create {}", lxc_dir.display()))?;
    let seccomp = match &pve.exec.seccomp_profile {
        Some(p) => {
            let f = lxc_dir.join("seccomp");
            std::fs::write(&f, p).with_context(|| format!("write {}", f.display()))?;
            Some(f)
        }
        None => None,
    };
    let rootfs = prog.rootfs.as_deref().context("no rootfs")?;
    let text = lxcconf::render(&lxcconf::Inputs { vmid, rootfs, pve, mode: CgroupMode::detect(), seccomp_file: seccomp.as_deref() });
    let f = lxc_dir.join("config");
    std::fs::write(&f, text).with_context(|| format!("write {}", f.display()))?;
    Ok(())
}

fn write_pid_file(path: &Path, pid: i32) -> Result<()> {
    let tmp = path.with_extension("nexcage-tmp");
    std::fs::write(&tmp, pid.to_string()).with_context(|| format!("write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("write {}", path.display()))?;
    Ok(())
}

