//! The guide's web-app example on the Proxmox backend (pct driver, the
//! pve-double control plane, real LXC and zfs-fuse), issue 16: the guest
//! gets `net0` with its address; LXC makes the veth from nexcage's
//! rendering of it (host end `veth<vmid>i0` on vmbr0, address configured
//! before the process starts); `--port` publishes it with nftables.
//!
//! nexcage, LXC and the client run in a network namespace the test makes
//! (bridge vmbr0 on 10.88.0.1/24); nothing touches the host's interfaces.

mod netns_fixture;
mod proxmox_support;
use netns_fixture::Netns;
use proxmox_support::*;

use std::process::Output;

#[test]
fn web_app_on_proxmox() {
    let env = env_or_skip!("px-net", "pct", "nft", "ip", "nsenter");
    let ns = Netns::new("pxnet");
    let store = env.dir.join("store");
    let nx = |args: &[&str]| -> Output {
        let mut c = ns.cmd(nexcage());
        c.env("NEXCAGE_CONFIG", env.config()).env("PATH", env.path_var()).env("NEXCAGE_STORAGE_PATH", &store).arg("--root").arg(&env.root).args(args);
        run_to_files(&mut c, &env.dir)
    };
    let ok = |args: &[&str]| -> String {
        let o = nx(args);
        assert!(o.status.success(), "nexcage {args:?}: {}", out(&o));
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let script = "mkdir -p /www && echo page of pxweb > /www/index.html && exec httpd -f -p 80 -h /www";
    let b = env.bundle("pxweb", &["sh", "-c", script], |v| v["root"]["readonly"] = false.into());
    ok(&["create", "--name", "pxweb", "--image", b.to_str().unwrap(), "--backend", "proxmox", "--storage-size", "256M",
        "--network", "bridge=vmbr0,ip=10.88.0.20/24,gw=10.88.0.1", "--port", "8080:80", "--start"]);
    let body = ns.get("10.88.0.1:8080", 40);
    if body.is_empty() {
        eprintln!("on failure, logs: {}", out(&nx(&["logs", "pxweb"])));
        eprintln!("on failure, list: {}", out(&nx(&["list"])));
        eprintln!("on failure, exec: {}", out(&nx(&["exec", "pxweb", "sh", "-c", "ip addr; ip route; ps"])));
        eprintln!("on failure, bridge: {:?} nft: {}", ns.on_bridge(), ns.nft());
        eprintln!("on failure, direct: {}", ns.get("10.88.0.20:80", 1));
        for e in std::fs::read_dir(env.dir.join("lxc")).unwrap().flatten() {
            eprintln!("on failure, conf: {}", std::fs::read_to_string(e.path().join("nexcage.conf")).unwrap_or_default());
        }
        eprintln!("on failure, monitor: {}", std::fs::read_to_string(store.join("bundles/pxweb/monitor.log")).unwrap_or_default());
    }
    assert_eq!(body, "page of pxweb\n");
    let info: serde_json::Value = serde_json::from_str(&ok(&["info", "--format", "json", "pxweb"])).unwrap();
    let vmid = info["vmid"].as_u64().unwrap_or_else(|| panic!("no vmid: {info}"));
    assert_eq!(info["network"]["address"], "10.88.0.20/24", "{info}");
    assert_eq!(info["network"]["ports"], serde_json::json!(["0.0.0.0:8080->80/tcp"]), "{info}");
    // Proxmox's name for the host end, on the bridge.
    assert_eq!(ns.on_bridge(), vec![format!("veth{vmid}i0")]);
    assert_eq!(info["network"]["hostInterface"], format!("veth{vmid}i0"));
    // The guest's PVE config carries the address, as net0.
    let conf = String::from_utf8_lossy(&env.cmd("pct").args(["config", &vmid.to_string()]).output().unwrap().stdout).into_owned();
    assert!(conf.lines().any(|l| l.starts_with("net0: name=eth0,bridge=vmbr0") && l.contains("ip=10.88.0.20/24") && l.contains("gw=10.88.0.1")), "{conf}");

    ok(&["stop", "pxweb"]);
    assert!(!ns.nft().contains("dnat-pxweb"), "{}", ns.nft());
    assert_eq!(ns.get("10.88.0.1:8080", 1), "");
    ok(&["start", "pxweb"]);
    assert_eq!(ns.get("10.88.0.1:8080", 40), "page of pxweb\n");
    ok(&["delete", "--force", "pxweb"]);
    assert!(!ns.nft().contains("dnat-"), "{}", ns.nft());
    assert!(ns.on_bridge().is_empty(), "{:?}", ns.on_bridge());
    env.assert_clean("after delete");
}
