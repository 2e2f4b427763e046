//! A network namespace a networking test makes for itself (`ip netns
//! add`), with a bridge `vmbr0` on 10.88.0.1/24, removed on drop (its
//! veths and nftables table go with it). Commands run inside with
//! `nsenter --net` (not `ip netns exec`, which remounts /sys and hides the
//! cgroup mounts); the HTTP client runs in a thread that joined it.
#![allow(dead_code)]

use std::process::{Command, Stdio};
use std::time::Duration;

pub struct Netns(pub String);

impl Netns {
    pub fn new(tag: &str) -> Netns {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let ns = format!("nx{tag}-{}-{}", std::process::id(), N.fetch_add(1, std::sync::atomic::Ordering::SeqCst));
        let ok = Command::new("ip").args(["netns", "add", &ns]).status().expect("ip netns add").success();
        assert!(ok, "ip netns add {ns}");
        let n = Netns(ns);
        for args in [&["link", "set", "lo", "up"][..], &["link", "add", "vmbr0", "type", "bridge"], &["addr", "add", "10.88.0.1/24", "dev", "vmbr0"],
            &["link", "set", "vmbr0", "up"]] {
            let o = n.cmd("ip").args(args).output().expect("ip");
            assert!(o.status.success(), "ip {args:?}: {}", String::from_utf8_lossy(&o.stderr));
        }
        n
    }

    /// `prog` inside the namespace.
    pub fn cmd(&self, prog: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new("nsenter");
        c.arg(format!("--net=/run/netns/{}", self.0)).arg(prog).stdin(Stdio::null());
        c
    }

    /// Names of the links on vmbr0 (`ip -j`).
    pub fn on_bridge(&self) -> Vec<String> {
        let o = self.cmd("ip").args(["-j", "link", "show", "master", "vmbr0"]).output().expect("ip");
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_default();
        v.as_array().map(|a| a.iter().filter_map(|l| l["ifname"].as_str().map(str::to_string)).collect()).unwrap_or_default()
    }

    /// nexcage's nft table as `nft -j` prints it ("" when there is none).
    pub fn nft(&self) -> String {
        String::from_utf8_lossy(&self.cmd("nft").args(["-j", "list", "table", "ip", "nexcage"]).output().expect("nft").stdout).into_owned()
    }

    /// GET /index.html at "IP:PORT" from inside, up to `tries` times 300 ms
    /// apart; the body of a 200 answer, or "".
    pub fn get(&self, addr: &str, tries: u32) -> String {
        self.client(addr, tries, http_get)
    }

    /// What a TCP server at "IP:PORT" sends before closing (a read times
    /// out after 3 s), from inside; up to `tries` connects 300 ms apart; "".
    pub fn read(&self, addr: &str, tries: u32) -> String {
        self.client(addr, tries, |a| tcp_read(a).filter(|b| !b.is_empty()))
    }

    /// `f(addr)` in a thread that joined the namespace, until it answers.
    fn client(&self, addr: &str, tries: u32, f: fn(&str) -> Option<String>) -> String {
        let (ns, addr) = (format!("/run/netns/{}", self.0), addr.to_string());
        std::thread::spawn(move || {
            let file = std::fs::File::open(&ns).expect("netns file");
            nix::sched::setns(file, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
            for _ in 0..tries {
                if let Some(b) = f(&addr) {
                    return b;
                }
                std::thread::sleep(Duration::from_millis(300));
            }
            String::new()
        }).join().expect("client thread")
    }
}

fn tcp_read(addr: &str) -> Option<String> {
    use std::io::Read;
    let mut s = std::net::TcpStream::connect_timeout(&addr.parse().ok()?, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(3))).ok()?;
    let mut o = Vec::new();
    let _ = s.read_to_end(&mut o);
    Some(String::from_utf8_lossy(&o).into_owned())
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
