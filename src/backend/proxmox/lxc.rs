//! Querying the running guest through LXC's tools.

use std::path::Path;
use std::process::Command;

use anyhow::{bail, Result};

use super::journal::CreateJournal;

/// (`vmid` as LXC name, lxc_path) of a created container.
pub fn name(p: &CreateJournal) -> Result<(String, &Path)> {
    match (p.vmid, &p.lxc_path) {
        (Some(v), Some(l)) => Ok((v.to_string(), l.as_path())),
        _ => bail!("the container was not fully created"),
    }
}

/// The guest's PID 1 (host pid): nexcage-init until start, the
/// application after it, if it still runs.
pub fn init_pid(p: &CreateJournal) -> Option<i32> {
    match p.init {
        Some(_) => from_holder(p),
        // A create that died before recording its init: ask LXC.
        None => from_lxc_info(p),
    }
}

/// The init create recorded (the holder's child in the guest), if that
/// same process still runs.
pub fn from_holder(p: &CreateJournal) -> Option<i32> {
    let (pid, start) = p.init?;
    (crate::proc::is_same_alive(pid, start) && crate::proc::state_letter(pid) != Some('Z')).then_some(pid)
}

/// How long `lxc-info` may take: it asks the guest's monitor, which
/// may hang with a guest that never started.
const LXC_INFO_BOUND: std::time::Duration = std::time::Duration::from_secs(5);

fn from_lxc_info(p: &CreateJournal) -> Option<i32> {
    let (n, path) = name(p).ok()?;
    let mut child = Command::new("lxc-info")
        .args(["-n", &n, "-P"])
        .arg(path)
        .args(["-p", "-H"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .ok()?;
    let deadline = std::time::Instant::now() + LXC_INFO_BOUND;
    while child.try_wait().ok()?.is_none() {
        if std::time::Instant::now() > deadline {
            tracing::warn!("lxc-info -n {n} did not answer within {} s", LXC_INFO_BOUND.as_secs());
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let out = child.wait_with_output().ok()?;
    if !out.status.success() {
        return None;
    }
    String::from_utf8_lossy(&out.stdout).trim().parse().ok().filter(|p| *p > 0)
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
