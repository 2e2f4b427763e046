//! The double keeps none of its caller's fds: `scripts/proxmox-test-env.sh
//! up` run under a shell's `flock` of the Proxmox tests' lock file left the
//! server holding the lock for as long as it lived.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn have(bin: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {bin}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// `flock -n` on `lock`: true when nobody holds it.
fn lock_free(lock: &std::path::Path) -> bool {
    Command::new("flock")
        .args(["-n", "-E", "99"])
        .arg(lock)
        .arg("true")
        .status()
        .expect("flock")
        .success()
}

#[test]
fn serve_drops_a_lock_fd_it_inherited() {
    if !have("flock") {
        eprintln!("SKIP serve_drops_a_lock_fd_it_inherited: flock (util-linux) not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let lock = dir.path().join("tests.lock");
    let state = dir.path().join("state");
    std::fs::create_dir_all(&state).unwrap();
    // As run-proxmox.sh did: `exec 9>LOCK; flock 9`, then start the double.
    let script = "exec 9>\"$1\" && flock 9 && shift && exec \"$@\" </dev/null >/dev/null 2>&1";
    let mut child = Command::new("sh")
        .args(["-c", script, "sh"])
        .arg(&lock)
        .arg(env!("CARGO_BIN_EXE_pve-double"))
        .args(["serve", "--listen", "127.0.0.1:0", "--node", "pve", "--state"])
        .arg(&state)
        .arg("--schema")
        .arg(common::schema_path())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !state.join("port").exists() {
        assert!(Instant::now() < deadline, "pve-double did not start");
        assert!(child.try_wait().unwrap().is_none(), "pve-double exited");
        std::thread::sleep(Duration::from_millis(20));
    }
    let free = lock_free(&lock);
    let _ = child.kill();
    let _ = child.wait();
    assert!(free, "the running double still holds its caller's lock fd");
}
