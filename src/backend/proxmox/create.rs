//! create, as named steps: plan (every check, no side effect), claim a
//! VMID, make the rootfs dataset, register the guest, write the LXC config,
//! fork the holder (which starts the guest, its init waiting for start),
//! run the create hooks. Each step is recorded in the
//! create journal before its side effect; on any error everything done so
//! far is undone (from the journal) before the error is returned. Whatever
//! is made carries the container's owner record (`owner.rs`), so the undo
//! only ever removes what this create made.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use nexcage_pve::driver::{ControlPlane, CreateRequest};
use nexcage_pve::mapping::{self, BindMountMode, MapOptions, PveConfig};

use super::journal::{CreateJournal, CreateStep};
use super::lxcconf::{self, CgroupMode};
use super::owner::{Owner, ZFS_PROPERTY};
use super::template::{self, NodeSupport};
use super::hooks::GuestPhase;
use super::{delete, devices, guest_cgroup, guest_init, guest_mounts, holder, hooks, include, lookup, lxc, nspath, paths, prefetch, rootfs, roots, stage, subids, sysctl, vmid, Proxmox};
use crate::backend::oci::hooks::Phase;
use crate::backend::{BackendData, CreateOpts, Created, RootfsStrategy};

/// How often a VMID taken concurrently (by another host or an operator)
/// is retried with the next one.
const VMID_ATTEMPTS: u32 = 50;

pub fn create(px: &Proxmox, opts: &CreateOpts) -> Result<Created> {
    let mut journal = CreateJournal::default();
    match create_steps(px, opts, &mut journal) {
        Ok(c) => Ok(c),
        Err(e) => {
            // The journal file may know more than `journal` (it is the source of truth).
            let j = CreateJournal::load(opts.dir).unwrap_or(journal);
            if let Err(ue) = delete::undo(px, &j) {
                tracing::warn!("cleanup after failed create: {ue:#}");
            }
            Err(e)
        }
    }
}

fn create_steps(px: &Proxmox, opts: &CreateOpts, j: &mut CreateJournal) -> Result<Created> {
    // The control plane's first answer (nextid, over a new connection: its
    // TLS handshake and the call, ~5 ms against the double, a `pvesh`
    // process with the pct driver) is asked while the plan is made: it
    // reads nothing of the plan, changes nothing, and is left unread when
    // the plan refuses the bundle. liblxc is opened later, while zfs makes
    // the rootfs (`register_guest_retrying`).
    let early = {
        let px = px.clone();
        std::thread::spawn(move || -> Result<(Box<dyn ControlPlane>, u32)> {
            let cp = px.driver()?;
            let next = cp.next_vmid()?;
            Ok((cp, next))
        })
    };
    let plan = plan(px, opts, j)?;
    j.begin(opts.dir, CreateStep::Vmid)?;
    let px = &px.for_journal(j)?;
    // Joined before the holder's fork, which needs a process without other threads.
    let (cp, next) = early.join().map_err(|_| anyhow::anyhow!("the control plane's first call panicked"))??;
    // The template is the node's, shared by every guest: nothing to undo.
    let node = template::prepare(px, &*cp)?;
    let tty = open_terminal(opts, j)?;
    let (vmid, pve, run_cfg) = register_guest_retrying(px, &*cp, &plan, &node, opts, tty.as_ref(), j, next)?;
    j.cp_calls = cp.calls();
    tracing::info!(vmid, calls = j.cp_calls, "guest registered");
    write_lxc_config(px, opts, vmid, &pve, run_cfg, j)?;
    // The dataset's mount as made here: delete knows it again (journal.rs).
    j.rootfs_mount = j.rootfs.as_deref().filter(|_| j.dataset.is_some()).and_then(super::journal::RootfsMount::of);
    if let Some(adj) = opts.bundle.spec.process().as_ref().and_then(|p| p.oom_score_adj()) {
        // Inherited by the holder and the guest, as runc's container inherits it.
        crate::backend::oci::oom::set_oom_score_adj(adj)?;
    }
    // The program is read into the page cache while LXC starts the guest
    // (ended, if still reading, when create returns).
    let cwd = opts.bundle.spec.process().as_ref().map(|p| p.cwd().clone()).unwrap_or_else(|| "/".into());
    let _prefetch = j.rootfs.as_deref().filter(|_| j.dataset.is_some()).map(|r| prefetch::start(r, &j.args, &j.env, &cwd));
    let holder = fork_holder(opts, tty, j)?;
    let init = j.init.map(|i| i.0).context("no guest init")?;
    // What LXC cannot set, set in the guest before anything of the bundle runs.
    guest_mounts::apply(init, pve.exec.rootfs_propagation.as_deref(), &pve.exec.dev_flags)?;
    sysctl::apply(init, &pve.exec.sysctls)?;
    // A failing prestart/createRuntime hook fails create (and undoes it).
    // Hooks see the guest's init, in the guest's namespaces: the state's pid.
    hooks::run(&opts.bundle.spec, opts.id, &opts.bundle.dir, Some(init), Phase::Create)?;
    hooks::run_in_guest(&opts.bundle.spec, opts.id, &opts.bundle.dir, init, GuestPhase::CreateContainer)?;
    j.step = CreateStep::Done;
    j.save(opts.dir)?;
    // The engine reaps the holder; `state` reports the guest's PID 1.
    if let Some(pf) = &opts.pid_file {
        write_pid_file(pf, holder)?;
    }
    let backend_data = BackendData::Proxmox { vmid, dataset: j.dataset.clone(), strategy: plan.strategy };
    Ok(Created { pid: init, monitor_pid: Some(holder), backend_data })
}

/// What create decided before any side effect.
struct Plan {
    ann: BTreeMap<String, String>,
    strategy: RootfsStrategy,
    unprivileged: bool,
    /// The ZFS dataset under which rootfs datasets go (`storage.pool`...).
    parent: Option<String>,
    /// Disk size, bytes.
    quota: u64,
    /// Proxmox storage id of the rootfs volume.
    storage: String,
    /// config.json without `process.user.umask` (LXC has no key for it).
    spec_json: serde_json::Value,
    /// (memory, swap) MiB registered as "no limit": the host's.
    host_memory: (u64, u64),
    bridge: Option<String>,
    vlan: Option<u16>,
}

/// Every check that needs no side effect; records in the journal what
/// later commands need (config, tools, process), without saving it.
fn plan(px: &Proxmox, opts: &CreateOpts, j: &mut CreateJournal) -> Result<Plan> {
    let cfg = px.config();
    let spec = &opts.bundle.spec;
    let ann: BTreeMap<String, String> = spec.annotations().clone().unwrap_or_default().into_iter().collect();
    let strategy = rootfs::choose(cfg, &ann)?;
    let unprivileged = cfg.unprivileged() && can_be_unprivileged(spec, strategy);
    if unprivileged {
        subids::check_root_range(mapping::UNPRIVILEGED_ID_BASE, mapping::UNPRIVILEGED_ID_COUNT)?;
    }
    if let Some(l) = spec.linux() {
        let ranges = |m: &Option<Vec<libcontainer::oci_spec::runtime::LinuxIdMapping>>| m.iter().flatten().map(|m| (m.host_id(), m.size())).collect::<Vec<_>>();
        subids::check_spec_maps(&ranges(l.uid_mappings()), &ranges(l.gid_mappings()))?;
    }
    let parent = cfg.storage.zfs_parent();
    if strategy != RootfsStrategy::Bind && parent.is_none() {
        bail!("rootfs strategy {} needs storage.pool in nexcage's configuration", strategy.name());
    }
    let quota = rootfs::disk_bytes(cfg, &ann)?;
    let storage = cfg.proxmox.storage.clone().unwrap_or_else(|| "local-zfs".into());
    let process = spec.process().as_ref().context("config.json has no process")?;
    j.strategy = Some(strategy);
    j.config_path = px.config_path().map(Path::to_path_buf);
    j.pct_tools = Some((super::resolve("pct"), super::resolve("pvesh")));
    j.lxc_path = Some(px.lxc_path());
    j.args = process.args().clone().unwrap_or_default();
    // HOME as runc sets it, from the bundle rootfs's /etc/passwd.
    let passwd = || lookup::resolve(&opts.bundle.rootfs, Path::new("/etc/passwd")).and_then(|p| std::fs::read_to_string(p).ok()).unwrap_or_default();
    j.env = crate::backend::oci::home::with_home(process.env().clone().unwrap_or_default(), process.user().uid(), passwd);
    if listen_fds() > 0 {
        j.env.extend([format!("LISTEN_FDS={}", listen_fds()), "LISTEN_PID=1".to_string()]);
    }
    j.terminal = process.terminal().unwrap_or(false);
    if j.args.is_empty() {
        bail!("process.args must not be empty");
    }
    let root = opts.dir.parent().context("state dir has no root")?;
    j.owner = Some(Owner::new(opts.id, root));
    roots::record(&cfg.data_dir(), root)?;
    // With a clone source the guest's files come from the snapshot, not the bundle.
    if !ann.contains_key(rootfs::CLONE_ANNOTATION) {
        lookup::check_program(&opts.bundle.rootfs, &j.args, process.env().as_deref().unwrap_or_default(), process.cwd())?;
    }
    check_host_caps(spec)?;
    // The mapping refuses umask (LXC has no key for it): nexcage-init
    // applies it (guest_init.rs), from the spec.
    let mut spec_json = serde_json::to_value(spec)?;
    if let Some(user) = spec_json.pointer_mut("/process/user").and_then(|u| u.as_object_mut()) {
        user.remove("umask");
    }
    Ok(Plan {
        ann,
        strategy,
        unprivileged,
        // ZFS only for copy/clone (a bind rootfs stays where it is).
        parent: parent.filter(|_| strategy != RootfsStrategy::Bind),
        quota,
        storage,
        spec_json,
        host_memory: mapping::host_memory_mib().unwrap_or((1 << 20, 0)),
        bridge: cfg.network.bridge.clone(),
        vlan: cfg.network.vlan.and_then(|v| u16::try_from(v).ok()),
    })
}

/// Steps `vmid`, `dataset`, `guest`. The VMID is claimed on this host
/// first (`vmid.rs`), so no other nexcage create makes anything under it;
/// a guest registered meanwhile by someone else (another host, an
/// operator) makes registration fail: what this create made for the VMID
/// is undone and the next one tried (up to `VMID_ATTEMPTS`). The claim ends
/// once the guest is registered (Proxmox then knows the id is taken).
/// Returns the VMID, the config registered, and the config LXC runs the
/// guest from ([`prepare_lxc_dir`]).
#[allow(clippy::too_many_arguments)]
fn register_guest_retrying(px: &Proxmox, cp: &dyn ControlPlane, plan: &Plan, node: &NodeSupport, opts: &CreateOpts, tty: Option<&Terminal>, j: &mut CreateJournal, next: u32) -> Result<(u32, PveConfig, PveConfig)> {
    let mut next = Some(next);
    let mut attempt = 0;
    // VMIDs whose dataset name an operator's dataset already has.
    let mut taken = std::collections::BTreeSet::new();
    loop {
        attempt += 1;
        let claim = claim_vmid(px, cp, plan, j, &taken, next.take())?;
        let vmid = claim.vmid;
        // Mapped before any side effect: a spec Proxmox cannot honour costs nothing.
        let pve = map_config(plan, opts, vmid, j)?;
        let lxc_dir = j.lxc_dir().context("no lxc dir")?;
        let owner = j.owner.clone().context("no owner record")?;
        // The LXC dir is prepared while zfs makes the dataset, and then
        // liblxc opened for the holder (a fork of this process: it finds
        // the library mapped, ~1.5 ms off the guest's start). Not earlier:
        // while dlopen runs liblxc's and its libraries' initialisers it
        // holds the loader's lock, which every thread's first thread-local
        // with a destructor also takes (glibc `__cxa_thread_atexit_impl`),
        // so a thread starting then (the nextid call's, the clone's) waits
        // for the whole dlopen. prepare_lxc_dir takes longer than the
        // clone's thread needs to start its zfs, so that thread rarely
        // waits; when it does, it waits out the dlopen, no more.
        let beside = || {
            let prepared = prepare_lxc_dir(px, opts, &lxc_dir, &owner, &pve, tty);
            super::liblxc::preload();
            prepared
        };
        let (made, prepared) = make_rootfs(plan, opts, vmid, pve.exec.id_shift, j, beside)?;
        let run_cfg = prepared?;
        let clone = match made {
            Rootfs::Taken => {
                tracing::debug!(vmid, "dataset name taken, trying the next VMID");
                delete::remove_lxc_dir(&lxc_dir)?;
                taken.insert(vmid);
                continue;
            }
            Rootfs::Recorded => None,
            Rootfs::Cloned(name) => Some(name),
        };
        // A clone's mountpoint is asked of zfs while the guest is
        // registered: one zfs round trip (~5 ms on zfs-fuse) off create,
        // still between the clone and the guest's first use of it.
        let (registered, mountpoint) = std::thread::scope(|s| {
            let asked = clone.map(|name| s.spawn(move || nexcage_zfs::Zfs::new().mountpoint(&name).with_context(|| format!("provision rootfs {name}"))));
            let registered = register_guest(px, cp, vmid, &pve, node, opts.dir, j);
            (registered, asked.map(|h| h.join().unwrap_or_else(|_| Err(anyhow::anyhow!("asking zfs for the rootfs mountpoint panicked")))))
        });
        if let (Some(mp), true) = (mountpoint, registered.is_ok()) {
            j.rootfs = Some(mp?);
        }
        match registered {
            Ok(()) => return Ok((vmid, pve, run_cfg)),
            Err(RegisterError::ControlPlane(e)) if e.is_already_exists() && attempt < VMID_ATTEMPTS => {
                tracing::debug!(vmid, "VMID taken concurrently, retrying");
                j.guest = false;
                delete::remove_lxc_dir(&lxc_dir)?;
                delete::undo_storage(j)?;
                j.dataset = None;
                j.save(opts.dir)?;
            }
            Err(RegisterError::ControlPlane(e)) => return Err(e.into()),
            Err(RegisterError::Journal(e)) => return Err(e),
        }
    }
}

/// Step `vmid`: a VMID claimed for this create (recorded, not yet saved:
/// nothing exists for it), none of `taken`, from `next` (nextid, asked
/// already) or a new nextid on. The dataset name is looked up
/// for the copy strategy only: a clone is made by one `zfs clone`, which
/// fails "already exists" without touching anything (one zfs process less
/// per create).
fn claim_vmid(px: &Proxmox, cp: &dyn ControlPlane, plan: &Plan, j: &mut CreateJournal, taken: &std::collections::BTreeSet<u32>, next: Option<u32>) -> Result<vmid::Claim> {
    let dataset = |v| plan.parent.as_ref().filter(|_| plan.strategy == RootfsStrategy::Copy).map(|p| nexcage_zfs::subvol_name(p, v, 0));
    let claim = vmid::claim(cp, next, dataset, &px.lxc_path(), taken)?;
    j.vmid = Some(claim.vmid);
    Ok(claim)
}

/// The guest's Proxmox config for `vmid`, from config.json, with the owner
/// record in its description.
fn map_config(plan: &Plan, opts: &CreateOpts, vmid: u32, j: &CreateJournal) -> Result<PveConfig> {
    let mut mo = MapOptions::new(vmid, opts.id, &plan.storage, plan.host_memory.0);
    mo.owner_line = j.owner.as_ref().map(Owner::description_line);
    mo.unlimited_swap_mib = plan.host_memory.1;
    mo.bind_mounts = BindMountMode::LxcEntry;
    mo.unprivileged = plan.unprivileged;
    mo.disk_size_gib = plan.quota.div_ceil(1 << 30).max(1);
    mo.bridge = plan.bridge.clone();
    mo.vlan = plan.vlan;
    mo.bundle_dir = Some(opts.bundle.dir.display().to_string());
    mo.rootfs_volume = Some(match plan.parent {
        None => opts.bundle.rootfs.display().to_string(),
        Some(_) => format!("{}:subvol-{vmid}-disk-0,size={}G", plan.storage, mo.disk_size_gib),
    });
    // A spec Proxmox cannot honour is the backend's refusal.
    let pve = mapping::map_value(&plan.spec_json, &mo).map_err(|e| anyhow::Error::from(crate::backend::BackendError::Unsupported(format!("config.json: {e}"))))?;
    nspath::check(&pve.exec.shares)?;
    Ok(pve)
}

/// What step `dataset` did.
enum Rootfs {
    /// A clone found the name taken: nothing made, the caller tries the next VMID.
    Taken,
    /// The rootfs path is recorded (copy, bind).
    Recorded,
    /// A clone of this name was made: its mountpoint is still to be asked.
    Cloned(String),
}

/// Step `dataset` (copy/clone): the rootfs dataset `subvol-<vmid>-disk-0`,
/// filled (owners shifted by `shift` for an unprivileged guest). A bind
/// rootfs is the bundle's. Records the rootfs path, but a clone's (see
/// [`Rootfs`]). `beside` runs meanwhile, once the journal names the VMID
/// (the dataset is made on a thread of its own); its result is returned.
fn make_rootfs<T>(plan: &Plan, opts: &CreateOpts, vmid: u32, shift: Option<u32>, j: &mut CreateJournal, beside: impl FnOnce() -> T) -> Result<(Rootfs, T)> {
    let Some(parent) = &plan.parent else {
        j.rootfs = Some(opts.bundle.rootfs.clone());
        j.begin(opts.dir, CreateStep::Dataset)?;
        return Ok((Rootfs::Recorded, beside()));
    };
    let name = nexcage_zfs::subvol_name(parent, vmid, 0);
    j.dataset = Some(name.clone());
    j.begin(opts.dir, CreateStep::Dataset)?;
    let zfs = nexcage_zfs::Zfs::new();
    let owner = j.owner.as_ref().map(Owner::json).context("no owner record")?;
    let prop = nexcage_zfs::UserProp { name: ZFS_PROPERTY, value: &owner };
    let (made, t) = std::thread::scope(|s| {
        let made = s.spawn(|| rootfs::provision(&zfs, plan.strategy, &name, &opts.bundle.rootfs, plan.quota, &plan.ann, parent, shift, prop));
        let t = beside();
        (made.join().unwrap_or_else(|_| Err(anyhow::anyhow!("making the rootfs dataset panicked"))), t)
    });
    // A dataset of that name (an operator's, or a leftover) makes the
    // create/clone fail "already exists" and is left alone: a clone tries
    // the next VMID; for a copy the claim found none, so one was made since.
    match made {
        Ok(rootfs::Made::Mounted(path)) => {
            j.rootfs = Some(path);
            Ok((Rootfs::Recorded, t))
        }
        Ok(rootfs::Made::Cloned) => Ok((Rootfs::Cloned(name), t)),
        Err(e) if e.downcast_ref::<nexcage_zfs::ZfsError>().is_some_and(|z| z.is_already_exists_of(&name)) => {
            j.dataset = None;
            j.save(opts.dir)?;
            if plan.strategy == RootfsStrategy::Clone {
                return Ok((Rootfs::Taken, t));
            }
            bail!("ZFS dataset {name} already exists but VMID {vmid} is free in Proxmox: not touching it (remove it, or run nexcage gc)");
        }
        Err(e) => Err(e.context(format!("provision rootfs {name}"))),
    }
}

/// Step `guest`: registers the guest with the control plane. The error is
/// the control plane's, so the caller can tell "VMID taken" apart.
fn register_guest(px: &Proxmox, cp: &dyn ControlPlane, vmid: u32, pve: &PveConfig, node: &NodeSupport, dir: &Path, j: &mut CreateJournal) -> Result<(), RegisterError> {
    j.guest = true;
    j.begin(dir, CreateStep::Guest)?;
    let mut params = pve.api_params();
    if px.config().driver() == nexcage_config::Driver::Pct {
        // pct cannot take a NUL-joined env as an argument (the driver would
        // edit /etc/pve directly); the env lives in nexcage's LXC config.
        params.remove("env");
    }
    if !node.entrypoint {
        // Older than pve-container 6.0.15 (PROXMOX-FACTS §10): no such
        // options; the process and its env live in nexcage's LXC config.
        params.remove("entrypoint");
        params.remove("env");
    }
    // Neither an operator's Remove nor a stray destroy takes it away
    // unnoticed; nexcage clears it itself (after checking the owner).
    params.insert("protection".into(), "1".into());
    let mut req = CreateRequest { ostemplate: node.ostemplate.clone(), params, raw_lxc: vec![], owner_line: j.owner.as_ref().map(Owner::description_line) };
    Ok(template::create_guest(px, cp, vmid, node, &mut req)??)
}

/// Why registering failed: the control plane said no, or the journal could
/// not be written.
#[derive(Debug, thiserror::Error)]
enum RegisterError {
    #[error(transparent)]
    ControlPlane(#[from] nexcage_pve::driver::PveError),
    #[error(transparent)]
    Journal(#[from] anyhow::Error),
}

/// The part of step `lxcconf` that needs neither the rootfs nor the
/// registered guest, done while zfs makes the dataset (the undo finds the
/// dir by its owner record): the LXC config dir `<lxc_path>/<vmid>` with
/// the owner record, nexcage-init with its settings and FIFO, the staged
/// bind mounts of an unprivileged guest, linux.devices' nodes. Returns the
/// config LXC runs the guest from.
fn prepare_lxc_dir(px: &Proxmox, opts: &CreateOpts, lxc_dir: &Path, owner: &Owner, pve: &PveConfig, tty: Option<&Terminal>) -> Result<PveConfig> {
    owner.make_lxc_dir(lxc_dir)?;
    // "No limit" was registered as the host's size; LXC gets no limit at all.
    let mut run_cfg = pve.clone();
    let spec = &opts.bundle.spec;
    let limited = spec.linux().as_ref().and_then(|l| l.resources().as_ref()).and_then(|r| r.memory().as_ref()).and_then(|m| m.limit()).is_some_and(|l| l > 0);
    if !limited {
        run_cfg.keys.remove("memory");
        run_cfg.keys.remove("swap");
    }
    if run_cfg.exec.id_shift.is_some() {
        stage::stage(lxc_dir, &mut run_cfg)?;
        stage::host_mqueue(lxc_dir, &mut run_cfg)?;
    }
    // nexcage-init and its FIFO, bind-mounted at /.nexcage (guest_init.rs),
    // and linux.devices' nodes; not staged: the LXC dir is open to the mapped root.
    // Shared only where the guest's root is not the host's (guest_init.rs).
    let shared = run_cfg.exec.id_shift.filter(|s| *s > 0).map(|_| px.config().data_dir().join("init"));
    guest_init::install(lxc_dir, shared.as_deref())?;
    guest_init::write_settings(lxc_dir, spec)?;
    run_cfg.exec.lxc.push(("lxc.mount.entry".into(), guest_init::mount_entry(lxc_dir)));
    for e in devices::make(lxc_dir, &run_cfg)? {
        run_cfg.exec.lxc.push(("lxc.mount.entry".into(), e));
    }
    if let Some(t) = tty {
        // process.terminal: the pty slave is the guest's /dev/console too, as under runc.
        run_cfg.exec.lxc.push(("lxc.mount.entry".into(), format!("{} dev/console none bind,create=file 0 0", t.slave_path.display())));
    }
    Ok(run_cfg)
}

/// Step `lxcconf`, the rest ([`prepare_lxc_dir`] did the first part):
/// nexcage's settings in `nexcage.conf` of the LXC dir, which the holder
/// starts the guest from and the guest's Proxmox config includes
/// (`include.rs`), with `run_cfg`; mount targets made first where LXC
/// cannot make them.
fn write_lxc_config(px: &Proxmox, opts: &CreateOpts, vmid: u32, pve: &PveConfig, run_cfg: PveConfig, j: &mut CreateJournal) -> Result<()> {
    j.begin(opts.dir, CreateStep::LxcConfig)?;
    let lxc_dir = j.lxc_dir().context("no lxc dir")?;
    let spec = &opts.bundle.spec;
    // LXC cannot create mount targets in a read-only rootfs, nor (on zfs-fuse)
    // as an unprivileged guest's mapped root: create them now.
    let shift = run_cfg.exec.id_shift;
    if let Some(rootfs) = &j.rootfs {
        stage::base_dirs(rootfs, shift.unwrap_or(0))?;
        // runc creates a missing cwd (the shared rule); owned by the guest's root.
        let cwd = spec.process().as_ref().map(|p| p.cwd().clone()).unwrap_or_default();
        for d in crate::backend::oci::cwd::ensure(rootfs, &cwd)? {
            std::os::unix::fs::lchown(&d, shift, shift).with_context(|| format!("chown {}", d.display()))?;
        }
    }
    if let (Some(rootfs), Some(_)) = (j.rootfs.as_ref().filter(|_| j.dataset.is_some()), run_cfg.exec.rootfs_propagation.as_deref().filter(|m| guest_mounts::needs_shared_source(m))) {
        guest_mounts::share_source(rootfs)?;
    }
    if let Some(rootfs) = j.rootfs.as_ref().filter(|_| shift.is_some() || paths::readonly_root(&run_cfg)) {
        stage::precreate_targets(rootfs, &run_cfg, shift.unwrap_or(0))?;
    }
    let rendered = write_lxc_dir(&lxc_dir, vmid, j, &run_cfg, spec)?;
    include::reference(px.config(), vmid, &lxc_dir, &rendered)?;
    j.shares = pve.exec.shares.iter().map(|s| (s.kind.clone(), s.path.clone())).collect();
    Ok(())
}

/// The pty for `process.terminal`, opened before the LXC config (its slave
/// is bound at the guest's `/dev/console`).
pub struct Terminal {
    master: std::os::fd::OwnedFd,
    slave: std::os::fd::OwnedFd,
    slave_path: PathBuf,
}

fn open_terminal(opts: &CreateOpts, j: &CreateJournal) -> Result<Option<Terminal>> {
    if !j.terminal {
        return Ok(None);
    }
    if opts.console_socket.is_none() {
        bail!("process.terminal is set but no --console-socket was given");
    }
    let (master, slave) = holder::open_pty()?;
    let fd = std::os::fd::AsRawFd::as_raw_fd(&slave);
    let slave_path = std::fs::read_link(format!("/proc/self/fd/{fd}")).context("cannot name the pty")?;
    Ok(Some(Terminal { master, slave, slave_path }))
}

/// Step `holder`: forks the holder, which starts the guest with
/// nexcage-init waiting for start, with the terminal sent to the console
/// socket when process.terminal is set. Returns once the init waits (its
/// pid recorded), or fails with LXC's own errors. Returns the holder's pid
/// (the one the engine reaps).
fn fork_holder(opts: &CreateOpts, tty: Option<Terminal>, j: &mut CreateJournal) -> Result<i32> {
    j.begin(opts.dir, CreateStep::Holder)?;
    let slave = match (tty, &opts.console_socket) {
        (Some(t), Some(sock)) => {
            holder::send_console(sock, &t.master)?;
            Some(t.slave)
        }
        _ => None,
    };
    // Open before the guest starts: the init's signal needs a reader.
    let ready = guest_init::ready_signal(&j.lxc_dir().context("no lxc dir")?)?;
    // Socket activation (LISTEN_FDS, as runc and libcontainer): those fds
    // come first, then the --preserve-fds ones.
    let pid = holder::spawn(opts.dir, opts.foreground, slave, opts.preserve_fds + listen_fds())?;
    j.holder = Some(pid);
    j.holder_start = crate::proc::start_time(pid);
    j.begin(opts.dir, CreateStep::Init)?;
    let said = ready.try_clone().context("dup the init's ready FIFO")?;
    let init = wait_for_init(opts.dir, j, pid, ready)?;
    j.init = Some((init, crate::proc::start_time(init)));
    j.init_reports_exec_failure = guest_init::ready_byte(&said) == Some(guest_init::READY_WITH_EXEC_FAILURE);
    let spec_path = opts.bundle.spec.linux().as_ref().and_then(|l| l.cgroups_path().as_deref()).map(guest_cgroup::resolve);
    j.cgroup_dir = spec_path.filter(|p| guest_cgroup::path_of(init).as_ref() == Some(p));
    j.save(opts.dir)?;
    // Before the engine reads the pid file: its shim loads the holder's cgroups.
    if j.cgroup_dir.is_some() {
        guest_cgroup::enter_stats(pid, init)?;
    }
    Ok(pid)
}

/// `LISTEN_FDS` of nexcage's environment (systemd socket activation): how
/// many fds from 3 on the application gets, with `LISTEN_FDS`/`LISTEN_PID=1`.
fn listen_fds() -> i32 {
    std::env::var("LISTEN_FDS").ok().and_then(|n| n.parse().ok()).filter(|n| *n > 0).unwrap_or(0)
}

/// How long create waits for the guest's init to wait for start: 30 s
/// (TEST ONLY: `NEXCAGE_TEST_INIT_BOUND` seconds).
fn init_bound() -> std::time::Duration {
    let secs = std::env::var("NEXCAGE_TEST_INIT_BOUND").ok().and_then(|s| s.parse().ok()).unwrap_or(30);
    std::time::Duration::from_secs(secs)
}

/// The guest init's host pid once it waits on its FIFO; LXC's errors when
/// the holder ends first. `signal` is the read end of the init's `ready`
/// FIFO ([`guest_init::ready_signal`]).
fn wait_for_init(dir: &Path, j: &CreateJournal, holder: i32, signal: std::os::fd::OwnedFd) -> Result<i32> {
    let lxc_dir = j.lxc_dir().context("no lxc dir")?;
    let start = crate::proc::start_time(holder);
    let found = std::cell::Cell::new(None);
    let gone = || !crate::proc::is_same_alive(holder, start) || crate::proc::state_letter(holder) == Some('Z');
    let ready = || {
        let init = lxc::children(holder).into_iter().find(|c| guest_init::is_waiting(&lxc_dir, *c));
        found.set(init);
        init.is_some()
    };
    // Woken by the init's signal on `ready` or the holder ending, not a poll loop.
    let wake = guest_init::Wake::default().on_readable(signal).on_exit(holder);
    let waited = guest_init::wait_for("the guest's init (nexcage-init) to wait for start", init_bound(), &wake, &gone, &ready);
    match (waited, found.get()) {
        (Ok(true), Some(init)) => Ok(init),
        (Err(e), _) => Err(e.context(lxc_failure(dir))),
        _ => bail!("{}", lxc_failure(dir)),
    }
}

/// "LXC could not start the guest: <LXC's error lines>".
fn lxc_failure(dir: &Path) -> String {
    let errs = holder::lxc_errors(dir, 6);
    if errs.is_empty() {
        "LXC could not start the guest".into()
    } else {
        format!("LXC could not start the guest: {}", errs.join("; "))
    }
}

/// A spec without a user namespace gets no capability the host withholds,
/// as under runc (whose capset fails): the unprivileged guest's own user
/// namespace would hand out every capability, so nexcage-init's capset
/// cannot be the judge. Effective, permitted and inheritable count; a
/// bounding set may name more (runc keeps what exists), ambient is best
/// effort (runc ignores a failed raise).
fn check_host_caps(spec: &libcontainer::oci_spec::runtime::Spec) -> Result<()> {
    use libcontainer::oci_spec::runtime::LinuxNamespaceType;
    let userns = spec.linux().as_ref().and_then(|l| l.namespaces().as_ref()).is_some_and(|n| n.iter().any(|n| n.typ() == LinuxNamespaceType::User));
    let Some(c) = spec.process().as_ref().and_then(|p| p.capabilities().as_ref()).filter(|_| !userns) else { return Ok(()) };
    let host = caps::read(None, caps::CapSet::Permitted).context("cannot read nexcage's own capabilities")?;
    for cap in [c.effective(), c.permitted(), c.inheritable()].into_iter().flatten().flatten() {
        let name = format!("CAP_{cap}");
        if name.parse::<caps::Capability>().is_ok_and(|c| !host.contains(&c)) {
            bail!("process.capabilities: {name} is not available on this host (outside its capability bounding set): operation not permitted");
        }
    }
    Ok(())
}

fn can_be_unprivileged(spec: &libcontainer::oci_spec::runtime::Spec, strategy: RootfsStrategy) -> bool {
    let ns = spec.linux().as_ref().and_then(|l| l.namespaces().clone()).unwrap_or_default();
    let ok = super::unprivileged_possible(ns.iter().map(|n| (n.typ(), n.path().is_some())), strategy == RootfsStrategy::Bind);
    if !ok {
        tracing::info!("the guest runs privileged: bind rootfs, a namespace joined by path, or the host's pid namespace");
    }
    ok
}

fn write_lxc_dir(lxc_dir: &Path, vmid: u32, j: &CreateJournal, pve: &PveConfig, spec: &libcontainer::oci_spec::runtime::Spec) -> Result<include::Rendered> {
    let linux = spec.linux().as_ref();
    let cgroups_path = linux.and_then(|l| l.cgroups_path().as_deref()).map(guest_cgroup::resolve);
    let resources = linux.and_then(|l| l.resources().as_ref());
    if let Some(p) = &cgroups_path {
        guest_cgroup::ready_cpuset_parent(p);
    }
    std::fs::create_dir_all(lxc_dir).with_context(|| format!("create {}", lxc_dir.display()))?;
    let rootfs = j.rootfs.as_deref().context("no rootfs")?;
    let text = lxcconf::render(&lxcconf::Inputs { vmid, rootfs, pve, mode: CgroupMode::detect(), cgroups_path: cgroups_path.as_deref(), resources });
    let rendered = include::Rendered::split(&text);
    include::write(lxc_dir, &rendered)?;
    Ok(rendered)
}

fn write_pid_file(path: &Path, pid: i32) -> Result<()> {
    let tmp = path.with_extension("nexcage-tmp");
    std::fs::write(&tmp, pid.to_string()).with_context(|| format!("write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("write {}", path.display()))?;
    Ok(())
}

