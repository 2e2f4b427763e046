//! create: libcontainer builds the container (init waiting for start); then
//! nexcage's fix-ups (loopback up, read-only cgroup mount). On any failure
//! nothing of it is left.

use anyhow::{anyhow, Context, Result};
use libcontainer::container::builder::ContainerBuilder;
use libcontainer::container::Container;
use libcontainer::syscall::syscall::SyscallType;

use super::{attach_lock, bundle, cgroupfs_ro, describe, init_errors, lc_root, loopback};
use crate::backend::{BackendData, CreateOpts, Created};

pub fn create(o: &CreateOpts) -> Result<Created> {
    // Relative paths in the spec (root, bind sources) are relative to the
    // bundle, as runc resolves them.
    std::env::set_current_dir(&o.bundle.dir)
        .with_context(|| format!("cannot enter bundle {}", o.bundle.dir.display()))?;
    let (lc_bundle, executor) = bundle::prepare(o.bundle, o.id, o.dir)?;
    if let Some(adj) = o.bundle.spec.process().as_ref().and_then(|p| p.oom_score_adj()) {
        crate::backend::oci::oom::set_oom_score_adj(adj)?;
    }
    let mut b = ContainerBuilder::new(o.id.to_string(), SyscallType::default())
        .with_root_path(lc_root(o.dir))
        .map_err(describe)?
        .with_executor(executor)
        .with_console_socket(o.console_socket.as_ref())
        .with_preserved_fds(o.preserve_fds);
    if let Some(p) = &o.pid_file {
        b = b.with_pid_file(Some(p)).map_err(describe)?;
    }
    // cgroupfs always: libcontainer defaults to systemd, and nexcage has no
    // systemd cgroup driver (the front end refuses --systemd-cgroup).
    let causes = init_errors::file_in(o.dir);
    let built = init_errors::capture(&causes, || {
        // libcontainer reads `detach` only to pair a terminal with a console
        // socket; a foreground `run` relays its pty through one of its own.
        b.as_init(&lc_bundle).with_systemd(false).with_detach(!o.foreground || o.console_socket.is_some()).with_no_pivot(o.no_pivot).build()
    });
    let causes = init_errors::take(&causes);
    attach_lock::reap();
    match built {
        Ok(mut c) => {
            let pid = c.pid().ok_or_else(|| anyhow!("container process has no pid"))?.as_raw();
            if let Err(e) = fix_up(o, pid) {
                let _ = c.delete(true);
                return Err(e);
            }
            Ok(Created { pid, monitor_pid: None, backend_data: BackendData::Native })
        }
        Err(e) => {
            let err = init_errors::with_causes(describe(e), &causes);
            // A half-built container (dir, cgroup, process) must not outlive the failure.
            let lc_dir = lc_root(o.dir).join(o.id);
            if lc_dir.exists() {
                if let Ok(mut c) = Container::load(lc_dir.clone()) {
                    let _ = c.delete(true);
                }
                let _ = std::fs::remove_dir_all(&lc_dir);
            }
            // Where no cgroup fs is mounted (`ip netns exec`), libcontainer
            // says only "failed to detect cgroup setup": name the cause.
            super::cgroup_mount::check()?;
            Err(err)
        }
    }
}

/// What libcontainer does not do as runc does: `lo` up in a new network
/// namespace, and a read-only cgroup mount made read-only. Both are done by
/// this thread, which enters the container's namespace and comes back.
fn fix_up(o: &CreateOpts, pid: i32) -> Result<()> {
    const LO: &str = "cannot bring up lo in the container's network namespace";
    const RO: &str = "cannot make the cgroup mount read-only";
    if loopback::wants_new_netns(&o.bundle.spec) {
        loopback::up_in(&loopback::netns_of(pid).context(LO)?).context(LO)?;
    }
    if let Some(dest) = cgroupfs_ro::wanted(&o.bundle.spec) {
        cgroupfs_ro::remount_in(&cgroupfs_ro::targets(pid, &dest).context(RO)?).context(RO)?;
    }
    Ok(())
}
