//! What PVE asks of LXC for a guest (PROXMOX-FACTS §8, §10): is its command
//! socket there, its init pid, `lxc-stop`, `lxc-start`, all under the
//! double's LXC path instead of PVE's fixed `/var/lib/lxc`.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// `@<lxcpath>/<vmid>/command` is listed in `/proc/net/unix` (LXC.pm
/// `list_active_containers`, PROXMOX-FACTS §10): LXC's monitor of a guest
/// started by `lxc-start` or `lxc-execute` under that path binds it.
pub fn socket_running(lxc_path: &Path, vmid: u32) -> bool {
    let want = format!(
        "@{}/{vmid}/command",
        lxc_path.display().to_string().trim_end_matches('/')
    );
    std::fs::read_to_string("/proc/net/unix")
        .map(|t| {
            t.lines()
                .skip(1)
                .any(|l| l.split_whitespace().nth(7) == Some(want.as_str()))
        })
        .unwrap_or(false)
}

/// The guest's init pid from `lxc-info -n <vmid> -p -H -P <lxcpath>`, as
/// `vmstatus` asks `lxc-info -n <vmid> -p` (PROXMOX-FACTS §8).
/// A socket that is not LXC's answers nothing: 2 s at most.
pub fn init_pid(lxc_path: &Path, vmid: u32) -> Option<u32> {
    let mut cmd = Command::new("lxc-info");
    cmd.args(["-n", &vmid.to_string(), "-p", "-H", "-P"])
        .arg(lxc_path);
    let stdout = run(&mut cmd, Duration::from_secs(2)).ok()?;
    stdout.trim().parse().ok()
}

/// Run a command, killed after `timeout` (PVE's `run_command` timeout);
/// its stdout, or why it failed.
pub(crate) fn run(cmd: &mut Command, timeout: Duration) -> Result<String, String> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("{cmd:?}: {e}"))?;
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(st)) => break st,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("{cmd:?}: got timeout"));
            }
            Err(e) => return Err(format!("{cmd:?}: {e}")),
        }
    };
    let mut out = String::new();
    let mut err = String::new();
    if let Some(mut o) = child.stdout.take() {
        let _ = o.read_to_string(&mut out);
    }
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut err);
    }
    if status.success() {
        Ok(out)
    } else {
        Err(format!("{cmd:?} failed: {}", err.trim()))
    }
}

/// How `vm_stop` ends a guest (PROXMOX-FACTS §8, §10).
pub enum Stop {
    /// `pct stop`: `lxc-stop --kill` (SIGKILL to the guest's init).
    Kill,
    /// `pct shutdown`: the halt signal (`lxc.signal.halt`, SIGPWR by
    /// default), SIGKILL after `timeout` s only with `force_stop`.
    Shutdown { timeout: u64, force_stop: bool },
}

/// `lxc-stop -n <vmid> -P <lxcpath> …`, then wait for the command socket
/// to go away; else "container did not stop" (LXC.pm `vm_stop`).
pub fn stop(lxc_path: &Path, vmid: u32, how: &Stop) -> Result<(), String> {
    let mut cmd = Command::new("lxc-stop");
    cmd.args(["-n", &vmid.to_string(), "-P"]).arg(lxc_path);
    let wait = match how {
        Stop::Kill => {
            cmd.arg("--kill");
            10
        }
        Stop::Shutdown {
            timeout,
            force_stop,
        } => {
            if !force_stop {
                cmd.arg("--nokill");
            }
            cmd.args(["--timeout", &timeout.to_string()]);
            timeout + 5
        }
    };
    if let Err(e) = run(&mut cmd, Duration::from_secs(wait)) {
        tracing::warn!(error = %e, "lxc-stop");
    }
    let deadline = Instant::now() + Duration::from_secs(wait);
    while socket_running(lxc_path, vmid) {
        if Instant::now() > deadline {
            return Err("container did not stop".into());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

/// `lxc-start -n <vmid> -P <lxcpath>` (PVE runs `lxc-start -F -n <vmid>`
/// in `pve-container@<vmid>`; the double daemonizes instead of a unit),
/// then waits up to 10 s for the command socket (PROXMOX-FACTS §8).
pub fn start(lxc_path: &Path, vmid: u32) -> Result<(), String> {
    run(
        Command::new("lxc-start")
            .args(["-n", &vmid.to_string(), "-P"])
            .arg(lxc_path),
        Duration::from_secs(30),
    )
    .map_err(|e| {
        tracing::warn!(error = %e, "lxc-start");
        format!("startup for container '{vmid}' failed")
    })?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while !socket_running(lxc_path, vmid) {
        if Instant::now() > deadline {
            return Err(format!("startup for container '{vmid}' failed"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}
