//! Real Podman driving nexcage's Proxmox backend (`--runtime <nexcage>`):
//! run --rm, exit codes, run -d + exec + logs + stop + rm, run -t, and
//! memory/pids limits enforced in the guest. Both drivers.

mod proxmox_support;
use proxmox_support::podman::{podman_env, Podman};
use proxmox_support::*;

fn podman_e2e(driver: &str) {
    let Some(env) = podman_env("podman", driver) else { return };
    let pm = Podman::new(&env);
    let o = pm.run(&["run", "--rm", "--network", "none", "localhost/busybox", "echo", "hi"]);
    assert!(o.status.success(), "{}", out(&o));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "hi\n");
    env.assert_clean("after run --rm");

    let o = pm.run(&["run", "--rm", "--network", "none", "localhost/busybox", "sh", "-c", "exit 7"]);
    assert_eq!(o.status.code(), Some(7), "{}", out(&o));

    // Detached: the guest is registered and on its subvol while it runs.
    let o = pm.run(&["run", "-d", "--name", "d1", "--network", "none", "localhost/busybox", "sh", "-c", "echo started; sleep 100"]);
    assert!(o.status.success(), "{}", out(&o));
    let guests = env.guests();
    assert_eq!(guests.len(), 1, "{}", env.pct_list());
    assert_eq!(env.datasets(), vec![format!("{}/data/subvol-{}-disk-0", env.pool, guests[0])]);
    // Podman 4.3's State.Pid is the pid conmon read from the pid file (the
    // holder); the guest's PID 1, `nexcage state`'s pid, is its child
    // (src/backend/proxmox/README.md, *Pids*).
    let pid = String::from_utf8_lossy(&pm.run(&["inspect", "--format", "{{.State.Pid}}", "d1"]).stdout).trim().to_string();
    let kids = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
    let guest_init = kids.split_whitespace().find(|k| {
        std::fs::read_to_string(format!("/proc/{k}/status")).unwrap_or_default().lines().any(|l| l.starts_with("NSpid:") && l.ends_with("\t1"))
    });
    assert!(guest_init.is_some(), "State.Pid {pid} has no child that is the guest's PID 1 (children: {kids:?})");
    let e = pm.run(&["exec", "d1", "sh", "-c", "echo in-guest; exit 4"]);
    assert_eq!(e.status.code(), Some(4), "{}", out(&e));
    assert_eq!(String::from_utf8_lossy(&e.stdout), "in-guest\n");
    // exec -t: a pty from the guest's devpts; a missing command is 127 to Podman.
    let e = pm.run(&["exec", "-t", "d1", "sh", "-c", "test -t 0 && tty"]);
    assert!(e.status.success() && String::from_utf8_lossy(&e.stdout).contains("/dev/pts/"), "{}", out(&e));
    let e = pm.run(&["exec", "d1", "no-such-command"]);
    assert_eq!(e.status.code(), Some(127), "{}", out(&e));
    assert!(wait_until(5, || String::from_utf8_lossy(&pm.run(&["logs", "d1"]).stdout).contains("started")));
    let s = pm.run(&["stop", "-t", "2", "d1"]);
    assert!(s.status.success(), "{}", out(&s));
    let r = pm.run(&["rm", "d1"]);
    assert!(r.status.success(), "{}", out(&r));
    env.assert_clean("after stop + rm");

    // A terminal.
    let o = pm.run(&["run", "--rm", "-t", "--network", "none", "localhost/busybox", "sh", "-c", "test -t 0 && echo tty"]);
    assert!(o.status.success(), "{}", out(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("tty"), "{}", out(&o));
    env.assert_clean("after run -t");
}

#[test]
fn podman_pct() {
    podman_e2e("pct");
}

#[test]
fn podman_api() {
    podman_e2e("api");
}

/// `--memory 64m --pids-limit 20` are enforced in the guest (v1 keys here).
#[test]
fn podman_limits() {
    let Some(env) = podman_env("podman_limits", "pct") else { return };
    let pm = Podman::new(&env);
    // 30 background sleeps cannot all fork under pids.max 20.
    let o = pm.run(&["run", "--rm", "--network", "none", "--pids-limit", "20", "localhost/busybox", "sh", "-c",
        "i=0; while [ $i -lt 30 ]; do sleep 5 & i=$((i+1)); done; echo done"]);
    let all = format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    assert!(all.contains("can't fork") || all.contains("Resource temporarily unavailable"), "pids limit not enforced: {}", out(&o));
    // dd's 100 MiB buffer under a 64 MiB limit: OOM-killed.
    let o = pm.run(&["run", "--rm", "--network", "none", "--memory", "64m", "--memory-swap", "64m", "localhost/busybox", "sh", "-c",
        "dd if=/dev/zero of=/dev/null bs=100M count=1 && echo survived"]);
    assert!(!String::from_utf8_lossy(&o.stdout).contains("survived"), "memory limit not enforced: {}", out(&o));
    env.assert_clean("after limits");
}

/// Issue 13 Must show 3 and 5, issue 12 Must show 3 (operator actions from
/// Podman's side; the double acts as PROXMOX-FACTS §10 says): the
/// application is the guest's PID 1 and owns its grace period; `pct
/// shutdown` gives it the stop signal and Podman sees its own status; `pct
/// stop` is 137; `podman logs` has only the application's lines.
#[test]
fn podman_grace_and_operator() {
    let Some(env) = podman_env("podman_grace", "pct") else { return };
    let pm = Podman::new(&env);
    let inspect = |name: &str| String::from_utf8_lossy(&pm.run(&["inspect", "--format", "{{.State.Status}} {{.State.ExitCode}}", name]).stdout).trim().to_string();
    let only_guest = || {
        let g = env.guests();
        assert_eq!(g.len(), 1, "{}", env.pct_list());
        g[0].to_string()
    };

    // podman stop -t 10: TERM to the application, which takes 3 s and exits 0.
    let script = "trap 'echo got-term; sleep 3; echo bye; exit 0' TERM; echo ready; sleep 1000 & wait";
    run_d(&pm, "g1", script, "ready");
    let t0 = std::time::Instant::now();
    let s = pm.run(&["stop", "-t", "10", "g1"]);
    let took = t0.elapsed();
    assert!(s.status.success(), "{}", out(&s));
    assert!(took >= std::time::Duration::from_millis(2800) && took < std::time::Duration::from_secs(9), "podman stop took {took:?}");
    assert_eq!(inspect("g1"), "exited 0");
    let logs = pm.run(&["logs", "g1"]);
    assert_eq!(String::from_utf8_lossy(&logs.stdout), "ready\ngot-term\nbye\n", "{}", out(&logs));
    assert_eq!(String::from_utf8_lossy(&logs.stderr), "", "{}", out(&logs));

    // Podman's cleanup deletes the OCI container once it exited: no guest
    // is left for an operator's `pct start` (tests/proxmox_operator.rs
    // starts one that nexcage still has).
    assert!(wait_until(10, || env.guests().is_empty()), "{}", env.pct_list());
    assert!(pm.run(&["rm", "g1"]).status.success());
    env.assert_clean("after stop + rm");

    // `pct shutdown`: the halt signal is TERM; Podman sees the application's 5.
    run_d(&pm, "g2", "trap 'exit 5' TERM; echo up; sleep 1000 & wait", "up");
    let o = env.cmd("pct").args(["shutdown", &only_guest()]).output().expect("pct shutdown");
    assert!(o.status.success(), "pct shutdown: {}", out(&o));
    let w = pm.run(&["wait", "g2"]);
    assert_eq!(String::from_utf8_lossy(&w.stdout).trim(), "5", "{}", out(&w));
    assert!(pm.run(&["rm", "g2"]).status.success());

    // `pct stop` (SIGKILL to the guest's PID 1): 137.
    run_d(&pm, "g3", "echo up; sleep 1000", "up");
    let o = env.cmd("pct").args(["stop", &only_guest()]).output().expect("pct stop");
    assert!(o.status.success(), "pct stop: {}", out(&o));
    let w = pm.run(&["wait", "g3"]);
    assert_eq!(String::from_utf8_lossy(&w.stdout).trim(), "137", "{}", out(&w));
    assert!(pm.run(&["rm", "g3"]).status.success());
    env.assert_clean("after the operator's actions");
}

/// `podman run -d --name NAME ... sh -c SCRIPT`, then waits until its log has `line`.
fn run_d(pm: &Podman, name: &str, script: &str, line: &str) {
    let o = pm.run(&["run", "-d", "--name", name, "--network", "none", "localhost/busybox", "sh", "-c", script]);
    assert!(o.status.success(), "{}", out(&o));
    assert!(wait_until(10, || String::from_utf8_lossy(&pm.run(&["logs", name]).stdout).contains(line)), "{name} did not log {line:?}");
}
