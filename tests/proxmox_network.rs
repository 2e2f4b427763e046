//! The guide's web-app example on the Proxmox backend (pct driver, the
//! pve-double control plane, real LXC and zfs-fuse), issue 16: the guest
//! gets `net0` with its address; LXC makes the veth from nexcage's
//! rendering of it (host end `veth<vmid>i0` on vmbr0, address configured
//! before the process starts); `--port` publishes it with nftables.
//!
//! nexcage, LXC and the client run in a network namespace the test makes
//! (bridge vmbr0 on 10.88.0.1/24); nothing touches the host's interfaces.

mod proxmox_support;
use proxmox_support::*;

use std::process::{Command, Output, Stdio};
use std::time::Duration;

struct Netns(String);

impl Netns {
    fn new() -> Netns {
        let ns = format!("nxpxnet-{}", std::process::id());
        assert!(Command::new("ip").args(["netns", "add", &ns]).status().unwrap().success());
        let n = Netns(ns);
        for args in [&["link", "set", "lo", "up"][..], &["link", "add", "vmbr0", "type", "bridge"], &["addr", "add", "10.88.0.1/24", "dev", "vmbr0"],
            &["link", "set", "vmbr0", "up"]] {
            let o = n.cmd("ip").args(args).output().unwrap();
            assert!(o.status.success(), "ip {args:?}: {}", out(&o));
        }
        n
    }
    fn cmd(&self, prog: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new("nsenter");
        c.arg(format!("--net=/run/netns/{}", self.0)).arg(prog).stdin(Stdio::null());
        c
    }
    fn on_bridge(&self) -> Vec<String> {
        let o = self.cmd("ip").args(["-j", "link", "show", "master", "vmbr0"]).output().unwrap();
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_default();
        v.as_array().map(|a| a.iter().filter_map(|l| l["ifname"].as_str().map(str::to_string)).collect()).unwrap_or_default()
    }
    fn nft(&self) -> String {
        String::from_utf8_lossy(&self.cmd("nft").args(["-j", "list", "table", "ip", "nexcage"]).output().unwrap().stdout).into_owned()
    }
    /// GET /index.html at "IP:PORT" from a thread inside the namespace.
    fn get(&self, addr: &str, tries: u32) -> String {
        let (ns, addr) = (format!("/run/netns/{}", self.0), addr.to_string());
        std::thread::spawn(move || {
            nix::sched::setns(std::fs::File::open(&ns).unwrap(), nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
            for _ in 0..tries {
                if let Some(b) = http_get(&addr) {
                    return b;
                }
                std::thread::sleep(Duration::from_millis(300));
            }
            String::new()
        }).join().unwrap()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

fn http_get(addr: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect_timeout(&addr.parse().ok()?, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(3))).ok()?;
    s.write_all(b"GET /index.html HTTP/1.0\r\nHost: x\r\n\r\n").ok()?;
    let mut o = String::new();
    s.read_to_string(&mut o).ok()?;
    let (head, body) = o.split_once("\r\n\r\n")?;
    head.split_whitespace().nth(1).is_some_and(|c| c == "200").then(|| body.to_string())
}

#[test]
fn web_app_on_proxmox() {
    let env = env_or_skip!("px-net", "pct", "nft", "ip", "nsenter");
    let ns = Netns::new();
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
        eprintln!("DEBUG logs: {}", out(&nx(&["logs", "pxweb"])));
        eprintln!("DEBUG list: {}", out(&nx(&["list"])));
        eprintln!("DEBUG exec: {}", out(&nx(&["exec", "pxweb", "sh", "-c", "ip addr; ip route; ps"])));
        eprintln!("DEBUG bridge: {:?} nft: {}", ns.on_bridge(), ns.nft());
        eprintln!("DEBUG direct: {}", ns.get("10.88.0.20:80", 1));
        for e in std::fs::read_dir(env.dir.join("lxc")).unwrap().flatten() {
            eprintln!("DEBUG conf: {}", std::fs::read_to_string(e.path().join("nexcage.conf")).unwrap_or_default());
        }
        eprintln!("DEBUG monitor: {}", std::fs::read_to_string(store.join("bundles/pxweb/monitor.log")).unwrap_or_default());
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
