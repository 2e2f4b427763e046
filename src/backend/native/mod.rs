//! The native backend: namespaces, cgroups, capabilities, seccomp and
//! pivot_root through youki's libcontainer. libcontainer keeps its own state
//! in `<state dir>/native/<id>/`; nexcage's record stays authoritative for
//! status (pid + start time).

mod cgroup;
mod cgroupfs_ro;
mod loopback;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context, Result};
use libcontainer::container::builder::ContainerBuilder;
use libcontainer::config::YoukiConfig;
use libcontainer::container::{Container, ContainerStatus};
use libcontainer::oci_spec::runtime::Hook;
use libcontainer::oci_spec::runtime::LinuxResources;
use libcontainer::syscall::syscall::SyscallType;
use libcgroups::common::FreezerState;

use super::{Backend, CreateOpts, Created, ExecOpts};
use crate::state::Record;

pub struct Native;

fn lc_root(dir: &Path) -> PathBuf {
    dir.join("native")
}

fn load(rec: &Record, dir: &Path) -> Result<Container> {
    Container::load(lc_root(dir).join(&rec.id))
        .with_context(|| format!("cannot load native state of {}", rec.id))
}

/// libcontainer's errors are terse at the top and detailed in the chain.
pub fn describe(e: libcontainer::error::LibcontainerError) -> anyhow::Error {
    let mut msg = e.to_string();
    let mut src = std::error::Error::source(&e);
    while let Some(s) = src {
        let t = s.to_string();
        if !msg.contains(&t) {
            msg = format!("{msg}: {t}");
        }
        src = s.source();
    }
    anyhow!(msg)
}

#[derive(Clone, Copy)]
enum HookKind {
    Poststart,
    Poststop,
}

/// Removes one kind of hooks from libcontainer's saved config and returns
/// them, so nexcage can run them with the spec's warn-and-continue rule.
fn take_hooks(lc_dir: &Path, kind: HookKind) -> Vec<Hook> {
    let Ok(mut cfg) = YoukiConfig::load(lc_dir) else { return Vec::new() };
    let Some(hooks) = cfg.hooks.as_mut() else { return Vec::new() };
    let taken = match kind {
        HookKind::Poststart => hooks.poststart().clone(),
        HookKind::Poststop => hooks.poststop().clone(),
    }
    .unwrap_or_default();
    if taken.is_empty() {
        return taken;
    }
    match kind {
        HookKind::Poststart => hooks.set_poststart(None),
        HookKind::Poststop => hooks.set_poststop(None),
    };
    if let Err(e) = cfg.save(lc_dir) {
        tracing::warn!("cannot rewrite hooks config: {e}; hooks left to libcontainer");
        return Vec::new();
    }
    taken
}

/// Runs each hook in order with the container state on stdin; a failure is
/// a warning and the next hook still runs.
fn run_hooks_warning(hooks: Vec<Hook>, c: &Container, what: &str) {
    for hook in hooks {
        let name = hook.path().display().to_string();
        if let Err(e) = libcontainer::hooks::run_hooks(Some(&vec![hook]), Some(&c.state), None, None, None) {
            tracing::warn!("{what} hook {name} failed: {e}");
        }
    }
}

impl Backend for Native {
    fn create(&self, o: &CreateOpts) -> Result<Created> {
        // Relative paths in the spec (root, bind sources) are relative to the
        // bundle, as runc resolves them.
        std::env::set_current_dir(&o.bundle.dir)
            .with_context(|| format!("cannot enter bundle {}", o.bundle.dir.display()))?;
        let mut b = ContainerBuilder::new(o.id.to_string(), SyscallType::default())
            .with_root_path(lc_root(o.dir))
            .map_err(describe)?
            .with_console_socket(o.console_socket.as_ref())
            .with_preserved_fds(o.preserve_fds);
        if let Some(p) = &o.pid_file {
            b = b.with_pid_file(Some(p)).map_err(describe)?;
        }
        let built = b
            .as_init(&o.bundle.dir)
            .with_systemd(o.systemd_cgroup)
            .with_detach(!o.foreground)
            .with_no_pivot(o.no_pivot)
            .build();
        match built {
            Ok(c) => {
                let pid = c.pid().ok_or_else(|| anyhow!("container process has no pid"))?.as_raw();
                let mut fixups: Vec<Result<()>> = Vec::new();
                if loopback::wants_new_netns(&o.bundle.spec) {
                    fixups.push(loopback::up(pid).context("cannot bring up lo in the container's network namespace"));
                }
                if let Some(dest) = cgroupfs_ro::wanted(&o.bundle.spec) {
                    fixups.push(cgroupfs_ro::remount(pid, &dest).context("cannot make the cgroup mount read-only"));
                }
                if let Some(Err(e)) = fixups.into_iter().find(|r| r.is_err()) {
                    let mut c = c;
                    let _ = c.delete(true);
                    return Err(e);
                }
                Ok(Created { pid, backend_data: serde_json::Value::Null })
            }
            Err(e) => {
                let err = describe(e);
                // A half-built container (dir, cgroup, process) must not outlive the failure.
                let lc_dir = lc_root(o.dir).join(o.id);
                if lc_dir.exists() {
                    if let Ok(mut c) = Container::load(lc_dir.clone()) {
                        let _ = c.delete(true);
                    }
                    let _ = std::fs::remove_dir_all(&lc_dir);
                }
                Err(err)
            }
        }
    }

    fn start(&self, rec: &Record, dir: &Path) -> Result<()> {
        let lc_dir = lc_root(dir).join(&rec.id);
        // libcontainer stops at the first failing poststart hook and fails
        // start; the spec says warn and go on, so nexcage runs them itself.
        let poststart = take_hooks(&lc_dir, HookKind::Poststart);
        let mut c = load(rec, dir)?;
        c.start().map_err(describe)?;
        run_hooks_warning(poststart, &c, "poststart");
        Ok(())
    }

    fn kill(&self, rec: &Record, dir: &Path, signal: i32, all: bool) -> Result<()> {
        if all {
            let c = load(rec, dir)?;
            let mgr = cgroup::manager(&c)?;
            let pids = cgroup::pids(&mgr)?;
            // Frozen (v1) tasks cannot take signals; thaw for kill.
            if rec.paused {
                let _ = libcgroups::common::CgroupManager::freeze(&mgr, FreezerState::Thawed);
            }
            for p in pids {
                match crate::proc::signal(p, signal) {
                    Ok(()) | Err(nix::errno::Errno::ESRCH) => {}
                    Err(e) => return Err(anyhow!("kill {p}: {e}")),
                }
            }
            return Ok(());
        }
        let pid = rec.pid.ok_or_else(|| anyhow!("container not running"))?;
        crate::proc::signal(pid, signal).map_err(|e| match e {
            nix::errno::Errno::ESRCH => anyhow!("no such process"),
            e => anyhow!("kill {pid}: {e}"),
        })?;
        if rec.paused && signal == libc::SIGKILL {
            let c = load(rec, dir)?;
            let _ = libcgroups::common::CgroupManager::freeze(&cgroup::manager(&c)?, FreezerState::Thawed);
        }
        Ok(())
    }

    fn delete(&self, rec: &Record, dir: &Path, _force: bool) -> Result<()> {
        let lc_dir = lc_root(dir).join(&rec.id);
        if !lc_dir.exists() {
            return Ok(());
        }
        let mut c = match Container::load(lc_dir.clone()) {
            Ok(c) => c,
            Err(_) => return Ok(std::fs::remove_dir_all(&lc_dir)?),
        };
        // libcontainer stops at the first failing poststop hook and fails the
        // delete; the spec says each failure is a warning and the rest still
        // run. So nexcage takes the poststop hooks out and runs them itself.
        let poststop = take_hooks(&lc_dir, HookKind::Poststop);
        // The CLI has already checked status; here everything must go.
        c.delete(true).map_err(describe)?;
        c.state.status = ContainerStatus::Stopped;
        run_hooks_warning(poststop, &c, "poststop");
        Ok(())
    }

    fn exec(&self, rec: &Record, dir: &Path, o: &ExecOpts) -> Result<i32> {
        let mut b = ContainerBuilder::new(rec.id.clone(), SyscallType::default())
            .with_root_path(lc_root(dir))
            .map_err(describe)?
            .with_console_socket(o.console_socket.as_ref())
            .with_preserved_fds(o.preserve_fds);
        if let Some(p) = &o.pid_file {
            b = b.with_pid_file(Some(p)).map_err(describe)?;
        }
        let env: HashMap<String, String> = o
            .env
            .iter()
            .filter_map(|kv| kv.split_once('=').map(|(k, v)| (k.to_string(), v.to_string())))
            .collect();
        let mut t = b
            .as_tenant()
            .with_detach(o.detach)
            .with_process(o.process_file.as_ref())
            .with_no_new_privs(o.no_new_privs)
            .with_capabilities(o.caps.clone())
            .with_additional_gids(o.additional_gids.clone())
            .with_user(o.uid)
            .with_group(o.gid)
            .with_env(env)
            .with_cwd(o.cwd.as_ref());
        if o.process_file.is_none() {
            t = t.with_container_args(o.args.clone());
        }
        let pid = t.build().map_err(describe)?;
        Ok(pid.as_raw())
    }

    fn pids(&self, rec: &Record, dir: &Path) -> Result<Vec<i32>> {
        let c = load(rec, dir)?;
        cgroup::pids(&cgroup::manager(&c)?)
    }

    fn pause(&self, rec: &Record, dir: &Path) -> Result<()> {
        load(rec, dir)?.pause().map_err(describe)
    }

    fn resume(&self, rec: &Record, dir: &Path) -> Result<()> {
        load(rec, dir)?.resume().map_err(describe)
    }

    fn update(&self, rec: &Record, dir: &Path, resources: &LinuxResources) -> Result<()> {
        let c = load(rec, dir)?;
        cgroup::apply(&cgroup::manager(&c)?, resources)
    }

    fn stats(&self, rec: &Record, dir: &Path) -> Result<serde_json::Value> {
        let c = load(rec, dir)?;
        cgroup::stats(&cgroup::manager(&c)?)
    }
}
