//! Crash safety: nexcage killed (abort(2) via the test-only hook
//! NEXCAGE_TEST_CRASH_AT) at each step of create, then `delete --force` or
//! `gc` leaves nothing; Proxmox and ZFS failures injected at each step leave
//! nothing and report one clear error. Both drivers.

mod proxmox_support;
use proxmox_support::*;

const STEPS: [&str; 6] = ["vmid", "dataset", "guest", "lxcconf", "holder", "init"];

fn crash_then(driver: &str, cleanup: &str) {
    let env = env_or_skip!(&format!("crash-{cleanup}"), driver);
    // A bind mount: unprivileged guests get its source staged under the LXC
    // dir (a host mount), which cleanup must unmount before removing the dir.
    let shared = env.dir.join("shared");
    std::fs::create_dir_all(&shared).unwrap();
    std::fs::write(shared.join("keep"), "host data").unwrap();
    let b = env.bundle("sleep", &["sleep", "100"], |v| {
        v["mounts"].as_array_mut().unwrap().push(serde_json::json!({"destination": "/srv", "type": "bind", "source": shared, "options": ["rbind", "rw"]}));
    });
    for step in STEPS {
        let id = format!("crash-{step}");
        let o = run_to_files(env.cmd(nexcage()).arg("--root").arg(&env.root).args(["create", "-b", b.to_str().unwrap(), &id])
            .env("NEXCAGE_TEST_CRASH_AT", step), &env.dir);
        assert!(!o.status.success(), "{step}: create must have crashed: {}", out(&o));
        assert!(env.states().contains(&id), "{step}: state dir kept after crash");
        let o = match cleanup {
            "delete" => env.nx(&["delete", "--force", &id]),
            // gc leaves a young, unfinished create alone: age the progress file.
            _ => {
                let p = env.root.join(&id).join("proxmox.json");
                let old = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
                if let Ok(f) = std::fs::File::options().write(true).open(&p) {
                    f.set_modified(old).unwrap();
                }
                env.nx(&["gc"])
            }
        };
        assert!(o.status.success(), "{step}: {cleanup}: {}", out(&o));
        env.assert_clean(&format!("crash at {step}, then {cleanup}"));
        assert_eq!(std::fs::read_to_string(shared.join("keep")).unwrap(), "host data", "{step}: the bind source was touched");
    }
    if cleanup == "gc" {
        // A guest tagged nexcage whose state dir is gone entirely (gc waits
        // `proxmox.gc_grace` after its create: none here).
        let mut cfg: serde_json::Value = serde_json::from_slice(&std::fs::read(env.config()).unwrap()).unwrap();
        cfg["proxmox"]["gc_grace"] = 0.into();
        std::fs::write(env.config(), serde_json::to_vec(&cfg).unwrap()).unwrap();
        assert!(env.nx(&["create", "-b", b.to_str().unwrap(), "orphan"]).status.success());
        let st: serde_json::Value = serde_json::from_slice(&env.nx(&["state", "orphan"]).stdout).unwrap();
        // `state`'s pid is the guest's PID 1; its parent is the holder (the
        // pid-file's process), which is what dies here: the guest stays.
        let pid = st["pid"].as_i64().unwrap() as i32;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        let holder: i32 = status.lines().find_map(|l| l.strip_prefix("PPid:")).unwrap().trim().parse().unwrap();
        assert_eq!(unsafe { libc::kill(holder, libc::SIGKILL) }, 0);
        assert!(proxmox_support::wait_until(10, || std::fs::read_to_string(format!("/proc/{holder}/stat")).map_or(true, |s| s.contains(") Z "))), "the holder did not die");
        std::fs::remove_dir_all(env.root.join("orphan")).unwrap();
        assert_eq!(env.guests().len(), 1);
        let o = env.nx(&["gc"]);
        assert!(o.status.success(), "{}", out(&o));
        assert!(String::from_utf8_lossy(&o.stdout).contains("guest "), "{}", out(&o));
        env.assert_clean("orphan guest, then gc");
    }
}

#[test]
fn crash_delete_pct() {
    crash_then("pct", "delete");
}

#[test]
fn crash_delete_api() {
    crash_then("api", "delete");
}

#[test]
fn crash_gc_pct() {
    crash_then("pct", "gc");
}

/// Failures of Proxmox (double's faults) and ZFS at create: one error, nothing left.
fn faults(driver: &str) {
    let env = env_or_skip!("faults", driver);
    let b = env.bundle("sleep", &["sleep", "100"], |_| {});
    for (fault, expect) in [
        ("GET /cluster/nextid", "injected fault"),
        ("POST /nodes/{node}/lxc", "injected fault"),
        ("task POST /nodes/{node}/lxc", "injected task fault"),
    ] {
        env.set_faults(fault);
        let o = env.nx(&["create", "-b", b.to_str().unwrap(), "f1"]);
        env.set_faults("");
        assert!(!o.status.success(), "{fault}: create succeeded");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(expect), "{fault}: {err}");
        assert_eq!(err.lines().filter(|l| l.starts_with("nexcage:")).count(), 1, "{fault}: one error line: {err}");
        env.assert_clean(fault);
    }
    // ZFS: a pool that does not exist.
    let cfg = std::fs::read_to_string(env.config()).unwrap().replace(&format!("\"pool\":\"{}\"", env.pool), "\"pool\":\"nxnopool\"");
    let bad = env.dir.join("config-badpool.json");
    std::fs::write(&bad, cfg).unwrap();
    let o = run_to_files(env.cmd(nexcage()).env("NEXCAGE_CONFIG", &bad).arg("--root").arg(&env.root).args(["create", "-b", b.to_str().unwrap(), "f2"]), &env.dir);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("nxnopool"), "{}", out(&o));
    env.assert_clean("bad pool");
    // ZFS: a quota smaller than the rootfs (the copy fails: "Disc quota exceeded").
    let small = env.bundle("small", &["true"], |v| {
        v["annotations"] = serde_json::json!({"org.nexcage.disk-size": "64K"});
    });
    let o = env.nx(&["create", "-b", small.to_str().unwrap(), "f3"]);
    assert!(!o.status.success(), "{}", out(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("provision rootfs"), "{}", out(&o));
    env.assert_clean("quota exceeded");
    // A destroy Proxmox fails (in its task) fails delete with its words and
    // keeps the container: the guest, the state, and the dataset, which
    // delete unmounted while the guest's destroy ran, mounted again with its
    // files. Once Proxmox destroys, delete leaves nothing.
    let o = env.nx(&["create", "-b", b.to_str().unwrap(), "d1"]);
    assert!(o.status.success(), "{}", out(&o));
    env.set_faults("task DELETE /nodes/{node}/lxc/{vmid}");
    let o = env.nx(&["delete", "--force", "d1"]);
    env.set_faults("");
    assert!(!o.status.success(), "delete succeeded though Proxmox failed the destroy");
    assert!(String::from_utf8_lossy(&o.stderr).contains("injected task fault"), "{}", out(&o));
    assert_eq!(env.states(), vec!["d1".to_string()], "the state is kept");
    let ds = env.datasets();
    assert_eq!(ds.len(), 1, "the dataset is kept: {ds:?}");
    let mp = std::process::Command::new("zfs").args(["get", "-H", "-o", "value", "mounted,mountpoint", &ds[0]]).output().expect("zfs get");
    let mp = String::from_utf8_lossy(&mp.stdout).lines().map(String::from).collect::<Vec<_>>();
    assert_eq!(mp.first().map(String::as_str), Some("yes"), "the dataset is mounted again: {mp:?}");
    assert!(std::path::Path::new(&mp[1]).join("bin/busybox").exists(), "its files are there: {mp:?}");
    let o = env.nx(&["delete", "--force", "d1"]);
    assert!(o.status.success(), "{}", out(&o));
    env.assert_clean("a destroy that failed, then one that did not");
}

#[test]
fn faults_pct() {
    faults("pct");
}

#[test]
fn faults_api() {
    faults("api");
}

/// `unprivileged: false`: guests keep the host's ids and Proxmox is told so.
#[test]
fn privileged_config() {
    let env = env_or_skip!("priv", "pct");
    let text = std::fs::read_to_string(env.config()).unwrap();
    let mut cfg: serde_json::Value = serde_json::from_str(&text).unwrap();
    cfg["unprivileged"] = false.into();
    std::fs::write(env.config(), serde_json::to_vec(&cfg).unwrap()).unwrap();
    let b = env.bundle("p", &["sleep", "30"], |_| {});
    let o = env.nx(&["create", "-b", b.to_str().unwrap(), "p1"]);
    assert!(o.status.success(), "{}", out(&o));
    let vmid = env.guests()[0];
    let pc = env.cmd("pct").args(["config", &vmid.to_string()]).output().unwrap();
    assert!(String::from_utf8_lossy(&pc.stdout).contains("unprivileged: 0"), "{}", out(&pc));
    assert!(env.nx(&["start", "p1"]).status.success());
    let e = env.nx(&["exec", "p1", "cat", "/proc/self/uid_map"]);
    let words: Vec<String> = String::from_utf8_lossy(&e.stdout).split_whitespace().map(String::from).collect();
    assert_eq!(words, ["0", "0", "4294967295"], "{}", out(&e));
    assert!(env.nx(&["delete", "--force", "p1"]).status.success());
    env.assert_clean("after delete");
}
