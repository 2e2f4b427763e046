//! `pct set --memory` on a running guest reaches its cgroup (issue 12:
//! "`pct set` / config PUT of memory or cores on a running guest reaches
//! its cgroup, and nexcage's settings stay"). A node hot-plugs memory into
//! the cgroup LXC's command socket names for the guest (PROXMOX-FACTS §4,
//! §10; the double finds the same cgroup, `hotplug.rs`), so the limit
//! changes for nexcage's guest too, while its process keeps the bundle's
//! uid and capabilities. Real LXC + zfs-fuse + the double.

mod proxmox_support;

use proxmox_support::{out, wait_until, Env};
use std::path::PathBuf;

const CAPS: [&str; 3] = ["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE"];
const CAP_MASK: &str = "0000000000000421";
const MIB: u64 = 1024 * 1024;

fn vmid(env: &Env, id: &str) -> u32 {
    let j = std::fs::read_to_string(env.root.join(id).join("proxmox.json")).expect("journal");
    let v: serde_json::Value = serde_json::from_str(&j).expect("journal json");
    v["vmid"].as_u64().and_then(|v| u32::try_from(v).ok()).expect("vmid")
}

/// The memory cgroup dir of the guest's init, from the host (v1 here).
fn memory_dir(env: &Env, vmid: u32) -> PathBuf {
    let o = std::process::Command::new("lxc-info").args(["-n", &vmid.to_string(), "-p", "-H", "-P"]).arg(env.dir.join("lxc")).output().expect("lxc-info");
    let pid = String::from_utf8_lossy(&o.stdout).trim().to_string();
    let cg = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).expect("init's cgroup");
    let path = cg.lines().find_map(|l| l.splitn(3, ':').nth(2).filter(|_| l.split(':').nth(1).is_some_and(|c| c.split(',').any(|c| c == "memory")))).expect("memory line");
    PathBuf::from("/sys/fs/cgroup/memory").join(path.trim_start_matches('/'))
}

/// Uid and capability sets of the container's process (`sleep`), seen
/// from inside the guest.
fn process_status(env: &Env) -> String {
    let o = env.nx(&["exec", "h1", "sh", "-c",
        "for p in /proc/[0-9]*; do grep -q '^Name:.sleep' $p/status 2>/dev/null && grep -E '^(Uid|Gid|Cap[A-Za-z]*):' $p/status; done; true"]);
    assert!(o.status.success(), "exec: {}", out(&o));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn limit(dir: &std::path::Path) -> u64 {
    std::fs::read_to_string(dir.join("memory.limit_in_bytes")).unwrap_or_default().trim().parse().unwrap_or(0)
}

#[test]
fn pct_set_memory_reaches_the_running_guest() {
    let env = env_or_skip!("hotplug", "pct", "lxc-info");
    if !std::path::Path::new("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes").exists() {
        eprintln!("SKIP pct_set_memory_reaches_the_running_guest: no cgroup v1 memory controller with swap accounting");
        return;
    }
    let b = env.bundle("hot", &["sleep", "1000"], |v| {
        v["process"]["user"] = serde_json::json!({"uid": 1000, "gid": 1000});
        let caps: Vec<serde_json::Value> = CAPS.iter().map(|c| serde_json::Value::from(*c)).collect();
        v["process"]["capabilities"] = serde_json::json!({"bounding": caps, "effective": caps, "permitted": caps});
        v["linux"]["resources"] = serde_json::json!({"memory": {"limit": 512 * MIB, "swap": 1024 * MIB}});
        // A pod-style cgroup parent: the guest is there, and PVE's hotplug finds it.
        v["linux"]["cgroupsPath"] = serde_json::json!(format!("/nexcage-hotplug-{}/pod1/h1", std::process::id()));
    });
    let o = env.nx(&["create", "--bundle", b.to_str().unwrap(), "h1"]);
    assert!(o.status.success(), "create: {}", out(&o));
    let o = env.nx(&["start", "h1"]);
    assert!(o.status.success(), "start: {}", out(&o));
    let id = vmid(&env, "h1");
    let mut dir = PathBuf::new();
    assert!(wait_until(10, || {
        dir = memory_dir(&env, id);
        limit(&dir) == 512 * MIB
    }), "the bundle's limit: {} in {}", limit(&dir), dir.display());
    let cg_root = PathBuf::from(format!("/sys/fs/cgroup/memory/nexcage-hotplug-{}", std::process::id()));
    assert_eq!(dir, cg_root.join("pod1/h1"), "the guest is in the bundle's cgroupsPath");

    let before = process_status(&env);
    assert!(before.contains("Uid:\t1000\t1000\t1000\t1000") && before.contains(&format!("CapBnd:\t{CAP_MASK}")), "before: {before}");

    // The operator's slider: 256 MiB, at once, in the guest's cgroup.
    let o = env.cmd("pct").args(["set", &id.to_string(), "--memory", "256"]).output().expect("pct set");
    assert!(o.status.success(), "pct set: {}", out(&o));
    assert_eq!(limit(&dir), 256 * MIB, "memory.limit_in_bytes of {} after pct set", dir.display());
    // memsw keeps the swap share (PVE::CGroup change_memory_limit, v1).
    let memsw: u64 = std::fs::read_to_string(dir.join("memory.memsw.limit_in_bytes")).unwrap_or_default().trim().parse().unwrap_or(0);
    assert_eq!(memsw, 256 * MIB + 512 * MIB, "memsw");

    // The OCI process still runs with the bundle's uid and capabilities.
    assert_eq!(process_status(&env), before, "the process changed");
    let st = String::from_utf8_lossy(&env.nx(&["state", "h1"]).stdout).into_owned();
    assert!(st.contains("\"status\": \"running\""), "{st}");

    let o = env.nx(&["delete", "-f", "h1"]);
    assert!(o.status.success(), "delete: {}", out(&o));
    assert!(wait_until(5, || !cg_root.join("pod1/h1").exists()), "the guest's cgroup is left after delete");
    // The parents are the test's (a pod's would be the kubelet's).
    for ctrl in std::fs::read_dir("/sys/fs/cgroup").into_iter().flatten().flatten() {
        let d = ctrl.path().join(format!("nexcage-hotplug-{}", std::process::id()));
        let _ = std::fs::remove_dir(d.join("pod1"));
        let _ = std::fs::remove_dir(&d);
    }
    env.assert_clean("hotplug");
}

/// `cores` makes PVE append a cpuset of that many CPUs after the guest's
/// raw lines, i.e. after nexcage's include (PROXMOX-FACTS §2 item 24,
/// unless a raw `lxc.cgroup2.cpuset.cpus` exists). After the operator's
/// `pct set --cores 1` the guest still starts from nexcage with the bundle's
/// CPUs (here: all of the host's, the bundle sets none). A start from PVE's
/// regenerated `config` alone runs only `nexcage-init pve`, which refuses
/// (tests/proxmox_operator.rs), so there is no process of the bundle's to
/// pin there.
#[test]
fn cores_do_not_break_or_pin_the_guest() {
    let env = env_or_skip!("cores", "pct");
    let host = std::fs::read_to_string("/proc/self/status").unwrap_or_default().lines().find(|l| l.starts_with("Cpus_allowed_list:")).map(String::from).unwrap_or_default();
    let b = env.bundle("cores", &["sh", "-c", "grep Cpus_allowed_list /proc/self/status > /tmp/cpus; exec sleep 1000"], |v| {
        v["root"]["readonly"] = false.into();
    });
    let o = env.nx(&["create", "--bundle", b.to_str().unwrap(), "k1"]);
    assert!(o.status.success(), "create: {}", out(&o));
    let id = vmid(&env, "k1").to_string();
    let o = env.cmd("pct").args(["set", &id, "--cores", "1"]).output().expect("pct set");
    assert!(o.status.success(), "pct set: {}", out(&o));
    let lxc = env.dir.join("lxc");
    let cfg = std::fs::read_to_string(lxc.join(&id).join("config")).unwrap_or_default();
    let include = format!("lxc.include = {}", lxc.join(&id).join("nexcage.conf").display());
    let after: Vec<&str> = cfg.lines().skip_while(|l| *l != include).filter(|l| l.contains("cpuset")).collect();
    assert!(cfg.contains(&include) && after.is_empty(), "PVE's cpuset comes after nexcage's include:\n{cfg}");
    // nexcage's start.
    let o = env.nx(&["start", "k1"]);
    assert!(o.status.success(), "start: {}", out(&o));
    assert!(wait_until(10, || String::from_utf8_lossy(&env.nx(&["exec", "k1", "cat", "/tmp/cpus"]).stdout).trim() == host), "{}", out(&env.nx(&["exec", "k1", "cat", "/tmp/cpus"])));
    let o = env.nx(&["delete", "-f", "k1"]);
    assert!(o.status.success(), "delete: {}", out(&o));
    env.assert_clean("cores");
}
