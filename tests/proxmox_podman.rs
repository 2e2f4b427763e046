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
