//! Querying the running guest through LXC's tools.

use std::path::Path;
use std::process::Command;

use anyhow::{bail, Context, Result};

use super::journal::CreateJournal;

/// (`vmid` as LXC name, lxc_path) of a created container.
pub fn name(p: &CreateJournal) -> Result<(String, &Path)> {
    match (p.vmid, &p.lxc_path) {
        (Some(v), Some(l)) => Ok((v.to_string(), l.as_path())),
        _ => bail!("the container was not fully created"),
    }
}

/// The container's init pid (lxc-execute's init), if LXC runs it.
pub fn init_pid(p: &CreateJournal) -> Option<i32> {
    from_holder(p).or_else(|| from_lxc_info(p))
}

/// Waits until the guest's init runs, or `alive()` turns false (the
/// container already ended); false on timeout. Polls /proc, and now and then
/// asks LXC too, in case its init looks different on this host.
pub fn wait_running(p: &CreateJournal, alive: &dyn Fn() -> bool, timeout: std::time::Duration) -> bool {
    let deadline = std::time::Instant::now() + timeout;
    for i in 0u32.. {
        if from_holder(p).is_some() || (i % 25 == 24 && from_lxc_info(p).is_some()) || !alive() {
            return true;
        }
        if std::time::Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    false
}

/// The init is the holder's grandchild (holder -> lxc-execute -> init): found
/// in /proc without running `lxc-info`, and only taken when it sits in this
/// guest's payload cgroup (so a reused holder pid cannot mislead).
pub fn from_holder(p: &CreateJournal) -> Option<i32> {
    let vmid = p.vmid?;
    let in_guest = |pid: i32| {
        std::fs::read_to_string(format!("/proc/{pid}/cgroup")).is_ok_and(|t| {
            t.lines().filter_map(|l| l.splitn(3, ':').nth(2)).any(|path| path.split('/').any(|c| super::guest_cgroup::is_payload(c, vmid)))
        })
    };
    children(p.holder?).into_iter().flat_map(children).find(|g| in_guest(*g) && is_init(*g))
}

/// LXC's init names itself `init` once the guest is set up (before that the
/// pid is lxc-execute's child still mapping ids and mounting): attaching to
/// it earlier would meet a half-made guest.
fn is_init(pid: i32) -> bool {
    let argv0 = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let argv0 = argv0.split(|b| *b == 0).next().unwrap_or_default();
    let name = argv0.rsplit(|b| *b == b'/').next().unwrap_or_default();
    name.starts_with(b"init")
}

fn from_lxc_info(p: &CreateJournal) -> Option<i32> {
    let (n, path) = name(p).ok()?;
    let out = Command::new("lxc-info").args(["-n", &n, "-P"]).arg(path).args(["-p", "-H"]).output().ok()?;
    if !out.status.success() {
        return None;
    }
    String::from_utf8_lossy(&out.stdout).trim().parse().ok().filter(|p| *p > 0)
}

/// Runs an LXC tool on the container (`lxc-freeze`, `lxc-unfreeze`, ...).
pub fn tool(p: &CreateJournal, tool: &str) -> Result<()> {
    let (n, path) = name(p)?;
    let out = Command::new(tool).args(["-n", &n, "-P"]).arg(path).output().with_context(|| format!("cannot run {tool}"))?;
    if !out.status.success() {
        bail!("{tool} -n {n}: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(())
}

/// Direct children of `pid` (from /proc/<pid>/task/*/children).
pub fn children(pid: i32) -> Vec<i32> {
    let mut out = Vec::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else { return out };
    for t in tasks.flatten() {
        if let Ok(s) = std::fs::read_to_string(t.path().join("children")) {
            out.extend(s.split_whitespace().filter_map(|x| x.parse::<i32>().ok()));
        }
    }
    out
}
