//! The double acts like a node when its operator acts (issue 12), through
//! the API and the `pct` CLI: VMID reuse, locks and protection, a backup
//! holding `lock: backup`, status from LXC's command socket, stop/shutdown
//! through LXC, `update_lxc_config` at start and config PUT, templates and
//! version gates. Each behaviour's source is named in PROXMOX-FACTS.

mod common;

use common::Double;
use nexcage_pve::driver::api::ApiDriver;
use nexcage_pve::driver::PveError;
use serde_json::Value;
use std::collections::BTreeMap;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixListener};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn p(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// A call; a returned UPID is waited for. Errors as their text.
fn api(d: &ApiDriver, method: &str, path: &str, params: &[(&str, &str)]) -> Result<Value, String> {
    let v = d
        .call(method, path, &p(params))
        .map_err(|e| e.to_string())?;
    if let Some(upid) = v.as_str().filter(|s| s.starts_with("UPID:")) {
        d.wait_task(path, upid).map_err(|e| match e {
            PveError::Task { exitstatus, .. } => exitstatus,
            other => other.to_string(),
        })?;
    }
    Ok(v)
}

fn create_pct(d: &Double, vmid: u32) {
    let (code, _, err) = d.cli(
        "pct",
        &[
            "create",
            &vmid.to_string(),
            "local:vztmpl/nexcage-empty.tar",
            "--rootfs",
            "local-zfs:1",
        ],
    );
    assert_eq!(code, 0, "{err}");
}

fn conf_text(d: &Double, vmid: u32) -> String {
    std::fs::read_to_string(d.path().join(format!("nodes/pve/lxc/{vmid}.conf"))).unwrap()
}

fn pct_status(d: &Double, vmid: u32) -> String {
    d.cli("pct", &["status", &vmid.to_string()]).1
}

/// PROXMOX-FACTS §6, §10: the lowest free VMID, so a freed id is reused;
/// `?vmid=N` answers whether N is free.
#[test]
fn nextid_reuses_freed_vmids() {
    let d = Double::start();
    let a = d.api();
    for id in [100, 101, 102] {
        create_pct(&d, id);
    }
    assert_eq!(a.call("GET", "/cluster/nextid", &p(&[])).unwrap(), 103);
    api(&a, "DELETE", "/nodes/pve/lxc/100", &[]).unwrap();
    assert_eq!(a.call("GET", "/cluster/nextid", &p(&[])).unwrap(), 100);
    let (code, out, _) = d.cli("pvesh", &["get", "/cluster/nextid"]);
    assert_eq!((code, out.as_str()), (0, "100\n"));
    // The id is handed out again: a new guest gets 100.
    create_pct(&d, 100);
    let (code, _, _) = d.cli("pct", &["destroy", "101"]);
    assert_eq!(code, 0);
    assert_eq!(a.call("GET", "/cluster/nextid", &p(&[])).unwrap(), 101);
    // ?vmid=N
    assert_eq!(
        a.call("GET", "/cluster/nextid", &p(&[("vmid", "101")]))
            .unwrap(),
        101
    );
    let e = a
        .call("GET", "/cluster/nextid", &p(&[("vmid", "102")]))
        .unwrap_err();
    assert!(
        matches!(&e, PveError::Api { status: 400, errors, .. } if errors["vmid"] == "VM 102 already exists"),
        "{e}"
    );
    let (code, _, err) = d.cli("pvesh", &["get", "/cluster/nextid", "--vmid", "102"]);
    assert_eq!(code, 255);
    assert!(err.contains("vmid: VM 102 already exists"), "{err}");
    d.assert_no_violations();
}

const LOCKS: [&str; 10] = [
    "backup",
    "create",
    "destroyed",
    "disk",
    "fstrim",
    "migrate",
    "mounted",
    "rollback",
    "snapshot",
    "snapshot-delete",
];

/// PROXMOX-FACTS §3, §10: any lock but `mounted` blocks start, stop,
/// shutdown, config PUT and destroy with "CT is locked (…)"; `pct unlock`
/// clears it, the API cannot.
#[test]
fn locks_block_with_proxmox_messages() {
    let d = Double::start();
    let a = d.api();
    create_pct(&d, 100);
    for lock in LOCKS {
        let (code, _, err) = d.cli("pct", &["set", "100", "--lock", lock]);
        assert_eq!(code, 0, "{err}");
        assert!(conf_text(&d, 100).contains(&format!("lock: {lock}\n")));
        let msg = format!("CT is locked ({lock})");
        // start (a task error)
        let (code, _, err) = d.cli("pct", &["start", "100"]);
        let r = api(&a, "POST", "/nodes/pve/lxc/100/status/start", &[]);
        if lock == "mounted" {
            assert_eq!(code, 0, "{err}");
            assert!(r.is_err_and(|e| e.contains("CT 100 already running")));
            // stop tolerates `mounted` too, shutdown does not.
            let (code, _, err) = d.cli("pct", &["shutdown", "100"]);
            assert_eq!((code, err.as_str()), (255, "CT is locked (mounted)\n"));
            let (code, _, err) = d.cli("pct", &["stop", "100"]);
            assert_eq!(code, 0, "{err}");
        } else {
            assert_eq!((code, err.as_str()), (255, format!("{msg}\n").as_str()));
            assert_eq!(r.unwrap_err(), msg);
        }
        // config PUT (synchronous 500), API and pct
        let e = api(
            &a,
            "PUT",
            "/nodes/pve/lxc/100/config",
            &[("memory", "1024")],
        )
        .unwrap_err();
        assert!(e.ends_with(&format!("500 {msg}")), "{e}");
        let (code, _, err) = d.cli("pct", &["set", "100", "--memory", "1024"]);
        assert_eq!((code, err.as_str()), (255, format!("{msg}\n").as_str()));
        // destroy (synchronous); `create` is let through for cleanup
        if lock != "create" {
            let e = api(&a, "DELETE", "/nodes/pve/lxc/100", &[]).unwrap_err();
            assert!(e.ends_with(&format!("500 {msg}")), "{e}");
            let (code, _, err) = d.cli("pct", &["destroy", "100"]);
            assert_eq!((code, err.as_str()), (255, format!("{msg}\n").as_str()));
        }
        let (code, out, err) = d.cli("pct", &["unlock", "100"]);
        assert_eq!((code, out.as_str(), err.as_str()), (0, "", ""));
        assert!(!conf_text(&d, 100).contains("lock:"));
    }
    // root may skip it (`--skiplock`), a token may not.
    assert_eq!(d.cli("pct", &["set", "100", "--lock", "backup"]).0, 0);
    let (code, _, err) = d.cli("pct", &["start", "100", "--skiplock"]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = d.cli("pct", &["stop", "100", "--skiplock"]);
    assert_eq!(code, 0, "{err}");
    let e = a
        .call(
            "POST",
            "/nodes/pve/lxc/100/status/start",
            &p(&[("skiplock", "1")]),
        )
        .unwrap_err();
    assert!(
        matches!(&e, PveError::Api { status: 400, errors, .. } if errors["skiplock"] == "Only root may use this option."),
        "{e}"
    );
    d.assert_no_violations();
}

/// PROXMOX-FACTS §3, §10: `protection: 1` blocks destroy only.
#[test]
fn protection_blocks_destroy() {
    let d = Double::start();
    let a = d.api();
    create_pct(&d, 100);
    api(
        &a,
        "PUT",
        "/nodes/pve/lxc/100/config",
        &[("protection", "1")],
    )
    .unwrap();
    let e = api(&a, "DELETE", "/nodes/pve/lxc/100", &[("purge", "1")]).unwrap_err();
    assert!(
        e.ends_with("500 can't remove CT 100 - protection mode enabled"),
        "{e}"
    );
    let (code, _, err) = d.cli("pct", &["destroy", "100", "--force"]);
    assert_eq!(
        (code, err.as_str()),
        (255, "can't remove CT 100 - protection mode enabled\n")
    );
    // Start, stop and config changes still work.
    api(&a, "POST", "/nodes/pve/lxc/100/status/start", &[]).unwrap();
    api(&a, "POST", "/nodes/pve/lxc/100/status/stop", &[]).unwrap();
    let (code, _, err) = d.cli("pct", &["set", "100", "--protection", "0"]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = d.cli("pct", &["destroy", "100"]);
    assert_eq!(code, 0, "{err}");
    assert!(!d.conf_exists(100));
    d.assert_no_violations();
}

/// PROXMOX-FACTS §10: a backup holds `lock: backup`; a destroy meanwhile
/// fails "CT is locked (backup)"; afterwards it succeeds.
#[test]
fn backup_holds_its_lock() {
    let d = Double::start();
    let a = d.api();
    create_pct(&d, 100);
    create_pct(&d, 101);
    let vzdump = |vmid: &str| {
        Command::new(d.path().join("bin/vzdump"))
            .args([vmid, "--hold-ms", "1500"])
            .env("PVE_DOUBLE_STATE", d.path())
            .env("PVE_DOUBLE_SCHEMA", common::schema_path())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let wait_locked = |vmid: u32| {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !conf_text(&d, vmid).contains("lock: backup\n") {
            assert!(Instant::now() < deadline, "backup did not lock");
            std::thread::sleep(Duration::from_millis(10));
        }
    };
    let b1 = vzdump("100");
    let b2 = vzdump("101");
    wait_locked(100);
    wait_locked(101);
    let e = api(&a, "DELETE", "/nodes/pve/lxc/100", &[("purge", "1")]).unwrap_err();
    assert!(e.ends_with("500 CT is locked (backup)"), "{e}");
    let (code, _, err) = d.cli("pct", &["destroy", "101", "--purge"]);
    assert_eq!((code, err.as_str()), (255, "CT is locked (backup)\n"));
    // A second backup of a locked guest is refused.
    let (code, _, err) = d.cli("vzdump", &["100"]);
    assert_eq!(code, 255);
    assert_eq!(
        err,
        "ERROR: Backup of VM 100 failed - CT is locked (backup)\n"
    );
    for b in [b1, b2] {
        let out = b.wait_with_output().unwrap();
        assert!(out.status.success());
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).lines().last(),
            Some(if String::from_utf8_lossy(&out.stdout).contains("VM 100") {
                "INFO: Finished Backup of VM 100"
            } else {
                "INFO: Finished Backup of VM 101"
            })
        );
    }
    api(&a, "DELETE", "/nodes/pve/lxc/100", &[("purge", "1")]).unwrap();
    let (code, _, err) = d.cli("pct", &["destroy", "101", "--purge"]);
    assert_eq!(code, 0, "{err}");
    d.assert_no_violations();
}

/// Bind LXC's abstract command socket `@<lxcpath>/<vmid>/command` as a
/// running guest's monitor does.
fn fake_monitor(d: &Double, vmid: u32) -> UnixListener {
    let name = format!("{}/{vmid}/command", d.lxc_path().display());
    UnixListener::bind_addr(&SocketAddr::from_abstract_name(name.as_bytes()).unwrap()).unwrap()
}

/// PROXMOX-FACTS §10: running exactly while the command socket is in
/// /proc/net/unix under the double's LXC path.
#[test]
fn status_follows_the_command_socket() {
    let d = Double::start();
    let a = d.api();
    create_pct(&d, 100);
    create_pct(&d, 101);
    assert_eq!(pct_status(&d, 100), "status: stopped\n");
    let sock = fake_monitor(&d, 100);
    assert_eq!(pct_status(&d, 100), "status: running\n");
    assert_eq!(pct_status(&d, 101), "status: stopped\n");
    let st = a
        .call("GET", "/nodes/pve/lxc/100/status/current", &p(&[]))
        .unwrap();
    assert_eq!(st["status"], "running");
    let (_, list, _) = d.cli("pct", &["list"]);
    assert!(list.contains("100        running"), "{list}");
    // A running guest is not destroyed without --force; start refuses.
    let (code, _, err) = d.cli("pct", &["destroy", "100"]);
    assert_eq!(
        (code, err.as_str()),
        (255, "unable to destroy CT 100 - container is running\n")
    );
    let e = api(&a, "POST", "/nodes/pve/lxc/100/status/start", &[]).unwrap_err();
    assert!(e.ends_with("500 CT 100 already running"), "{e}");
    // Another LXC path does not count.
    let other = UnixListener::bind_addr(
        &SocketAddr::from_abstract_name(b"/var/lib/lxc-elsewhere/101/command").unwrap(),
    )
    .unwrap();
    assert_eq!(pct_status(&d, 101), "status: stopped\n");
    drop((sock, other));
    assert_eq!(pct_status(&d, 100), "status: stopped\n");
    d.assert_no_violations();
}

/// Start without `--real-start` only marks the guest; shutdown (API and
/// pct) and stop end it (PROXMOX-FACTS §5: UPIDs of type vzshutdown).
#[test]
fn start_shutdown_stop_without_lxc() {
    let d = Double::start();
    let a = d.api();
    create_pct(&d, 100);
    let (code, _, err) = d.cli("pct", &["shutdown", "100"]);
    assert_eq!((code, err.as_str()), (255, "CT 100 not running\n"));
    api(&a, "POST", "/nodes/pve/lxc/100/status/start", &[]).unwrap();
    assert_eq!(pct_status(&d, 100), "status: running\n");
    let upid = api(
        &a,
        "POST",
        "/nodes/pve/lxc/100/status/shutdown",
        &[("timeout", "5"), ("forceStop", "1")],
    )
    .unwrap();
    assert!(
        upid.as_str().unwrap().contains(":vzshutdown:100:"),
        "{upid}"
    );
    assert_eq!(pct_status(&d, 100), "status: stopped\n");
    let (code, _, err) = d.cli("pct", &["start", "100"]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = d.cli("pct", &["shutdown", "100", "--timeout", "3"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(pct_status(&d, 100), "status: stopped\n");
    d.assert_no_violations();
}

fn lxc_config(d: &Double, vmid: u32) -> String {
    std::fs::read_to_string(d.lxc_path().join(format!("{vmid}/config"))).unwrap_or_default()
}

/// Append raw `lxc.*` lines the way nexcage's pct driver (or an operator)
/// does: as root, editing the file under `lock/pve-config-<vmid>.lock`.
fn add_raw_lines(d: &Double, vmid: u32, lines: &str) {
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(d.path().join(format!("lock/pve-config-{vmid}.lock")))
        .unwrap();
    lock.lock().unwrap();
    let path = d.path().join(format!("nodes/pve/lxc/{vmid}.conf"));
    let text = std::fs::read_to_string(&path).unwrap() + lines;
    std::fs::write(&path, text).unwrap();
}

/// PROXMOX-FACTS §2, §10: every config PUT and every start rewrites
/// `<lxcpath>/<vmid>/config` from the guest config alone, raw lines last.
#[test]
fn config_put_and_start_regenerate_the_lxc_config() {
    let d = Double::start();
    let a = d.api();
    create_pct(&d, 100);
    assert_eq!(lxc_config(&d, 100), "", "create writes no LXC config");
    add_raw_lines(
        &d,
        100,
        "lxc.include: /run/nexcage/100.conf\nlxc.init.uid: 1000\n",
    );
    // Something another program rendered there is lost.
    std::fs::create_dir_all(d.lxc_path().join("100")).unwrap();
    std::fs::write(d.lxc_path().join("100/config"), "lxc.init.cmd = /app\n").unwrap();

    api(
        &a,
        "PUT",
        "/nodes/pve/lxc/100/config",
        &[("memory", "1024")],
    )
    .unwrap();
    let c = lxc_config(&d, 100);
    assert!(c.starts_with("lxc.cgroup.relative = 0\n"), "{c}");
    assert!(!c.contains("lxc.init.cmd = /app"), "{c}");
    assert!(c.contains("lxc.cgroup2.memory.max = 1073741824\n"), "{c}");
    assert!(c.contains("lxc.uts.name = CT100\n"), "{c}");
    assert!(c.contains(&format!(
        "lxc.rootfs.path = {}\n",
        d.lxc_path().join("100/rootfs").display()
    )));
    assert!(
        c.ends_with("lxc.include = /run/nexcage/100.conf\nlxc.init.uid = 1000\n"),
        "{c}"
    );
    assert!(d.lxc_path().join("100/rootfs").is_dir());

    // pct set, then a start: regenerated both times.
    let (code, _, err) = d.cli(
        "pct",
        &[
            "set",
            "100",
            "--hostname",
            "web",
            "--net0",
            "name=eth0,bridge=vmbr0,hwaddr=BC:24:11:00:00:01",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let c = lxc_config(&d, 100);
    assert!(c.contains("lxc.uts.name = web\n"), "{c}");
    assert!(c.contains("lxc.net.0.veth.pair = veth100i0\n"), "{c}");
    std::fs::write(d.lxc_path().join("100/config"), "stale\n").unwrap();
    let (code, _, err) = d.cli("pct", &["start", "100"]);
    assert_eq!(code, 0, "{err}");
    let c = lxc_config(&d, 100);
    assert!(c.contains("lxc.net.0.hwaddr = BC:24:11:00:00:01\n"), "{c}");
    assert!(c.ends_with("lxc.init.uid = 1000\n"), "{c}");
    api(&a, "POST", "/nodes/pve/lxc/100/status/stop", &[]).unwrap();

    // Destroy removes config, rootfs and the dir (destroy_lxc_container).
    let (code, _, err) = d.cli("pct", &["destroy", "100"]);
    assert_eq!(code, 0, "{err}");
    assert!(!d.lxc_path().join("100").exists());
    d.assert_no_violations();
}

/// PROXMOX-FACTS §10: `ostemplate` must name an existing volume; the create
/// task fails "can't find file" and leaves nothing behind.
#[test]
fn create_needs_an_existing_template() {
    let d = Double::start();
    let a = d.api();
    let e = api(
        &a,
        "POST",
        "/nodes/pve/lxc",
        &[
            ("vmid", "100"),
            ("ostemplate", "local:vztmpl/missing.tar.zst"),
            ("rootfs", "local-zfs:1"),
        ],
    )
    .unwrap_err();
    assert_eq!(
        e,
        "unable to create CT 100 - can't find file 'local:vztmpl/missing.tar.zst'"
    );
    assert!(!d.conf_exists(100));
    assert!(!d
        .path()
        .join("storage/local-zfs/subvol-100-disk-0")
        .exists());
    let (code, _, err) = d.cli(
        "pct",
        &[
            "create",
            "100",
            "local:vztmpl/missing.tar.zst",
            "--rootfs",
            "local-zfs:1",
        ],
    );
    assert_eq!(
        (code, err.as_str()),
        (
            255,
            "unable to create CT 100 - can't find file 'local:vztmpl/missing.tar.zst'\n"
        )
    );
    assert!(!d.conf_exists(100));
    // Not a template volume name at all; an unknown storage.
    let (code, _, err) = d.cli("pct", &["create", "100", "local:vztmpl/t.zip"]);
    assert_eq!(
        (code, err.as_str()),
        (
            255,
            "unable to parse directory volume name 'vztmpl/t.zip'\n"
        )
    );
    let (code, _, err) = d.cli("pct", &["create", "100", "nas:vztmpl/t.tar"]);
    assert_eq!(
        (code, err.as_str()),
        (255, "storage 'nas' does not exist\n")
    );
    // Once placed, the template is listed and create works.
    d.place_template("local", "app.tar.zst");
    let list = a
        .call(
            "GET",
            "/nodes/pve/storage/local/content",
            &p(&[("content", "vztmpl")]),
        )
        .unwrap();
    let vols: Vec<(&str, &str)> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|v| (v["volid"].as_str().unwrap(), v["format"].as_str().unwrap()))
        .collect();
    assert_eq!(
        vols,
        [
            ("local:vztmpl/app.tar.zst", "tzst"),
            ("local:vztmpl/nexcage-empty.tar", "tar"),
            ("local:vztmpl/x.tar", "tar"),
        ]
    );
    let (code, _, err) = d.cli(
        "pct",
        &[
            "create",
            "100",
            "local:vztmpl/app.tar.zst",
            "--rootfs",
            "local-zfs:1",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let vols = a
        .call("GET", "/nodes/pve/storage/local-zfs/content", &p(&[]))
        .unwrap();
    assert_eq!(vols[0]["volid"], "local-zfs:subvol-100-disk-0");
    assert_eq!(vols[0]["vmid"], 100);
    d.assert_no_violations();
}

/// PROXMOX-FACTS §10 version gates: a double playing PVE 8.4 refuses plain
/// `.tar` templates (libpve-storage-perl < 9.0.15) and `entrypoint`
/// (pve-container < 6.0.15); one playing 9.1 accepts both.
#[test]
fn version_gates_follow_the_release_played() {
    let old = Double::start_with(&[], &["--pve-version", "8.4.1"]);
    let new = Double::start();
    for d in [&old, &new] {
        d.place_template("local", "empty.tar.zst");
    }
    let (code, out, _) = old.cli("pveversion", &[]);
    assert_eq!(code, 0);
    assert!(out.starts_with("pve-manager/8.4.1/"), "{out}");
    let (_, out, _) = old.cli("pveversion", &["-v"]);
    assert!(
        out.starts_with("proxmox-ve: 8.4.0 (running kernel: "),
        "{out}"
    );
    assert!(
        out.contains("\npve-manager: 8.4.1 (running version: 8.4.1/"),
        "{out}"
    );
    assert!(out.contains("\nlibpve-storage-perl: 8.3.6\n"), "{out}");
    assert!(out.contains("\npve-container: 5.2.7\n"), "{out}");
    let (_, out, _) = new.cli("pveversion", &["-v"]);
    assert!(out.contains("\nlibpve-storage-perl: 9.1.7\n"), "{out}");
    let v = old.api().call("GET", "/version", &p(&[])).unwrap();
    assert_eq!(
        (v["version"].as_str(), v["release"].as_str()),
        (Some("8.4.1"), Some("8.4"))
    );

    let create = |d: &Double, vmid: &str, tmpl: &str, extra: &[&str]| {
        let mut args = vec!["create", vmid, tmpl, "--rootfs", "local-zfs:1"];
        args.extend_from_slice(extra);
        d.cli("pct", &args)
    };
    let (code, _, err) = create(&old, "100", "local:vztmpl/nexcage-empty.tar", &[]);
    assert_eq!(
        (code, err.as_str()),
        (
            255,
            "unable to parse directory volume name 'vztmpl/nexcage-empty.tar'\n"
        )
    );
    let e = old
        .api()
        .call(
            "POST",
            "/nodes/pve/lxc",
            &p(&[("vmid", "100"), ("ostemplate", "local:vztmpl/x.tar")]),
        )
        .unwrap_err();
    assert!(matches!(e, PveError::Api { status: 500, .. }), "{e}");
    let (code, _, err) = create(
        &old,
        "100",
        "local:vztmpl/empty.tar.zst",
        &["--entrypoint", "/app"],
    );
    assert_eq!(code, 255);
    assert!(
        err.starts_with(
            "400 Parameter verification failed.\nentrypoint: property is not defined in schema"
        ),
        "{err}"
    );
    let (code, _, err) = create(&old, "100", "local:vztmpl/empty.tar.zst", &[]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = old.cli("pct", &["set", "100", "--entrypoint", "/app"]);
    assert_eq!(code, 255);
    assert!(
        err.contains("\nentrypoint: property is not defined in schema"),
        "{err}"
    );
    let (code, _, err) = create(
        &new,
        "100",
        "local:vztmpl/nexcage-empty.tar",
        &["--entrypoint", "/app"],
    );
    assert_eq!(code, 0, "{err}");
    // pveversion's packages may be pinned in the version file.
    std::fs::write(
        old.path().join("version"),
        "9.0.6\nlibpve-storage-perl: 9.0.15\n",
    )
    .unwrap();
    let (code, _, err) = create(&old, "101", "local:vztmpl/nexcage-empty.tar", &[]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = create(
        &old,
        "102",
        "local:vztmpl/empty.tar.zst",
        &["--entrypoint", "/app"],
    );
    assert_eq!(code, 255, "9.0 plays pve-container 6.0.9: {err}");
}

fn lxc_available() -> bool {
    let root = std::fs::read_to_string("/proc/self/status")
        .map(|s| {
            s.lines()
                .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false);
    root && Command::new("lxc-execute")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Run guest `vmid` with real LXC under the double's LXC path, as nexcage
/// does (`lxc-execute`, host rootfs, console none), halt signal SIGTERM.
fn run_guest(d: &Double, vmid: u32) -> std::process::Child {
    let dir = d.lxc_path().join(vmid.to_string());
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("config"),
        "lxc.uts.name = g\nlxc.net.0.type = empty\nlxc.apparmor.profile = unconfined\n\
         lxc.console.path = none\nlxc.signal.halt = SIGTERM\n",
    )
    .unwrap();
    let child = Command::new("lxc-execute")
        .args(["-n", &vmid.to_string(), "-P"])
        .arg(d.lxc_path())
        .args(["--", "sleep", "60"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while pct_status(d, vmid) != "status: running\n" {
        assert!(Instant::now() < deadline, "guest did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    child
}

/// PROXMOX-FACTS §8, §10 with real LXC: status and pid from the command
/// socket and `lxc-info`; `pct stop` is `lxc-stop --kill`; `pct shutdown`
/// sends the halt signal; `pct destroy --force` stops first.
#[test]
fn operator_acts_on_a_real_lxc_guest() {
    if !lxc_available() {
        eprintln!("SKIP: needs root and lxc-execute");
        return;
    }
    let d = Double::start();
    let a = d.api();
    create_pct(&d, 100);

    let mut g = run_guest(&d, 100);
    let st = a
        .call("GET", "/nodes/pve/lxc/100/status/current", &p(&[]))
        .unwrap();
    assert_eq!(st["status"], "running");
    let info = Command::new("lxc-info")
        .args(["-n", "100", "-p", "-H", "-P"])
        .arg(d.lxc_path())
        .output()
        .unwrap();
    let pid: u64 = String::from_utf8_lossy(&info.stdout)
        .trim()
        .parse()
        .unwrap();
    assert_eq!(st["pid"], pid);
    let (code, out, _) = d.cli("pct", &["status", "100", "--verbose"]);
    assert_eq!(code, 0);
    assert!(out.contains(&format!("\npid: {pid}\n")), "{out}");
    // pct stop: SIGKILL to the guest's init.
    let (code, _, err) = d.cli("pct", &["stop", "100"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(pct_status(&d, 100), "status: stopped\n");
    let st = g.wait().unwrap();
    assert!(!st.success(), "{st:?}");

    // pct shutdown: the halt signal ends `sleep` through LXC's init.
    let mut g = run_guest(&d, 100);
    let t = Instant::now();
    let (code, _, err) = d.cli("pct", &["shutdown", "100", "--timeout", "20"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        t.elapsed() < Duration::from_secs(15),
        "halt signal, not the timeout"
    );
    assert_eq!(pct_status(&d, 100), "status: stopped\n");
    g.wait().unwrap();

    // API shutdown, then destroy --force of a running guest.
    let mut g = run_guest(&d, 100);
    api(
        &a,
        "POST",
        "/nodes/pve/lxc/100/status/shutdown",
        &[("timeout", "20")],
    )
    .unwrap();
    g.wait().unwrap();
    let mut g = run_guest(&d, 100);
    let (code, out, err) = d.cli("pct", &["destroy", "100", "--force"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("forced to stop CT 100 before destroying!"),
        "{out}"
    );
    g.wait().unwrap();
    assert!(!d.conf_exists(100));
    d.assert_no_violations();
}

/// PROXMOX-FACTS §8: with `--real-start`, start regenerates the config and
/// runs `lxc-start -n VMID -P <lxcpath>`; a guest that cannot start fails
/// the task "startup for container 'N' failed" and stays stopped.
#[test]
fn real_start_runs_lxc_start() {
    if !lxc_available() {
        eprintln!("SKIP: needs root and lxc-execute");
        return;
    }
    let d = Double::start_with(&[], &["--real-start"]);
    create_pct(&d, 100);
    // An empty rootfs has no init: lxc-start fails.
    let (code, _, err) = d.cli("pct", &["start", "100"]);
    assert_eq!(code, 255);
    assert_eq!(err, "startup for container '100' failed\n");
    assert!(lxc_config(&d, 100).contains("lxc.uts.name = CT100\n"));
    assert_eq!(pct_status(&d, 100), "status: stopped\n");
    assert!(!d.path().join("run/100").exists());
    d.assert_no_violations();
}
