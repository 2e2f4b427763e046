//! Networking of admin containers on the native backend (issue 16): the
//! user guide's web-app example with a local image running busybox httpd,
//! bridged with `--network bridge=vmbr0,ip=...` and published with
//! `--port`; scaled instances; port conflicts refused before anything is
//! created; stop/start/autostart/delete (no nft rule, veth or allocation
//! left); a `custom=` network's address pool.
//!
//! Every test makes its own network namespace with a bridge `vmbr0` on
//! 10.88.0.1/24 and runs nexcage (hence its monitor, nft and ip) and the
//! HTTP client inside it with `nsenter --net` (not `ip netns exec`, which
//! remounts /sys and hides the cgroup mounts); nothing touches the host's
//! interfaces. Dropping the namespace takes its veths and nft table along.

mod netns_fixture;
mod oci_fixture;
mod support;
use netns_fixture::Netns;
use support::*;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const IMAGE: &str = "localhost/net-web:1";

struct Net {
    s: Scratch,
    ns: Netns,
    ids: Vec<String>,
}

impl Net {
    /// `None` (after printing SKIP) when the tools are missing.
    fn new(test: &str, config: serde_json::Value) -> Option<Net> {
        if !is_root() {
            skip(test, "needs root");
            return None;
        }
        if let Some(m) = missing(&["ip", "nft", "nsenter", "busybox", "ss"]) {
            skip(test, &m);
            return None;
        }
        let s = Scratch::new(&format!("net-{test}"));
        std::fs::write(s.path().join("config.json"), config.to_string()).unwrap();
        let net = Net { s, ns: Netns::new("net"), ids: Vec::new() };
        let layout = image_layout(net.dir());
        net.ok(&["image", "import", layout.to_str().unwrap(), "--name", IMAGE]);
        Some(net)
    }
    fn dir(&self) -> &Path {
        self.s.path()
    }
    /// `prog args` inside the test's network namespace.
    fn cmd(&self, prog: &str, args: &[&str]) -> Command {
        let mut c = self.ns.cmd(prog);
        c.args(args);
        c
    }
    fn inside(&self, prog: &str, args: &[&str]) -> Output {
        self.cmd(prog, args).output().unwrap()
    }
    fn nx(&self, args: &[&str]) -> Output {
        let root = self.dir().join("root");
        let cfg = self.dir().join("config.json");
        let mut all = vec!["--root", root.to_str().unwrap(), "--config", cfg.to_str().unwrap()];
        all.extend_from_slice(args);
        let mut c = self.cmd(nexcage(), &all);
        c.env("NEXCAGE_STORAGE_PATH", self.dir().join("store"));
        c.output().unwrap()
    }
    fn ok(&self, args: &[&str]) -> String {
        let o = self.nx(args);
        assert!(o.status.success(), "nexcage {args:?}: {}{}", text(&o.stdout), stderr(&o));
        text(&o.stdout)
    }
    fn json(&self, args: &[&str]) -> serde_json::Value {
        serde_json::from_str(&self.ok(args)).unwrap()
    }
    /// `create --name id --image IMAGE --env APP=id <extra> --start`.
    fn web(&mut self, id: &str, extra: &[&str]) -> Output {
        let app = format!("APP={id}");
        let mut args = vec!["create", "--name", id, "--image", IMAGE, "--env", &app];
        args.extend_from_slice(extra);
        args.push("--start");
        self.ids.push(id.to_string());
        self.nx(&args)
    }
    fn get(&self, addr: &str) -> String {
        self.ns.get(addr, 20)
    }
    /// `net.ipv4.conf.DEV.route_localnet` inside the namespace.
    fn localnet(&self, dev: &str) -> String {
        let o = self.inside("sysctl", &["-n", &format!("net.ipv4.conf.{dev}.route_localnet")]);
        text(&o.stdout).trim().to_string()
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        for id in self.ids.clone() {
            let _ = self.nx(&["delete", "--force", &id]);
        }
    }
}

/// An OCI image whose Cmd serves "page of $APP" with busybox httpd on port 80.
fn image_layout(dir: &Path) -> PathBuf {
    let rootfs = rootfs(dir);
    let script = "mkdir -p /www && echo \"page of $APP\" > /www/index.html && exec httpd -f -p 80 -h /www";
    oci_fixture::oci_layout(&rootfs, dir, serde_json::json!({"Env": ["PATH=/bin:/usr/bin:/sbin"], "Cmd": ["sh", "-c", script], "WorkingDir": "/"}))
}

#[test]
fn web_app_scaled_and_conflicts() {
    let Some(mut n) = Net::new("web_app_scaled_and_conflicts", serde_json::json!({})) else { return };
    // 1. The guide's web-app example.
    let o = n.web("web", &["--network", "bridge=vmbr0,ip=10.88.0.10/24,gw=10.88.0.1", "--port", "8080:80"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let body = n.get("10.88.0.1:8080");
    if body.is_empty() {
        eprintln!("on failure, logs: {}", text(&n.nx(&["logs", "web"]).stdout));
        eprintln!("on failure, exec: {}", show(&n.nx(&["exec", "web", "sh", "-c", "ip addr; ip route; ps; netstat -ltn"])));
        eprintln!("on failure, nft: {}", text(&n.inside("nft", &["list", "ruleset"]).stdout));
        eprintln!("on failure, direct: {}", n.ns.get("10.88.0.10:80", 1));
    }
    assert_eq!(body, "page of web\n");
    // The node's own 127.0.0.1 too: route_localnet on vmbr0 (only there),
    // 127.0.0.0/8 sources masqueraded out of it.
    assert_eq!(n.get("127.0.0.1:8080"), "page of web\n");
    assert_eq!(n.localnet("vmbr0"), "1");
    assert_eq!(n.localnet("lo"), "0");
    let info = n.json(&["info", "--format", "json", "web"]);
    let net = &info["network"];
    assert_eq!(net["address"], "10.88.0.10/24", "{info}");
    assert_eq!(net["ports"], serde_json::json!(["0.0.0.0:8080->80/tcp"]));
    let host_if = net["hostInterface"].as_str().unwrap().to_string();
    assert_eq!(n.ns.on_bridge(), vec![host_if.clone()]);
    // The container sees its address and default route.
    let o = n.ok(&["exec", "web", "sh", "-c", "ip -o addr show eth0; ip route; cat /etc/hosts"]);
    assert!(o.contains("10.88.0.10/24") && o.contains("default via 10.88.0.1") && o.contains("10.88.0.10\tweb"), "{o}");

    // 2. Three instances on 8081-8083, each answers on its own port.
    for i in 1..=3 {
        let (ip, port) = (format!("bridge=vmbr0,ip=10.88.0.1{i}/24,gw=10.88.0.1"), format!("808{i}:80"));
        // web3 also starts at boot (`nexcage autostart`).
        let extra: &[&str] = if i == 3 { &["--auto-start"] } else { &[] };
        let o = n.web(&format!("web{i}"), &[&["--network", ip.as_str(), "--port", port.as_str()][..], extra].concat());
        assert!(o.status.success(), "{}", stderr(&o));
    }
    for i in 1..=3 {
        assert_eq!(n.get(&format!("10.88.0.1:808{i}")), format!("page of web{i}\n"));
    }
    // Hairpin: a container reaches another through the node's published
    // port (forwarded and masqueraded; forwarding on in the test's namespace).
    let o = n.inside("sysctl", &["-w", "net.ipv4.ip_forward=1"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = n.ok(&["exec", "web2", "sh", "-c", "printf 'GET /index.html HTTP/1.0\\r\\n\\r\\n' | nc 10.88.0.1 8081"]);
    assert!(o.contains("page of web1"), "{o}");
    let table = n.ok(&["list"]);
    assert!(table.lines().any(|l| l.starts_with("web2 ") && l.contains("0.0.0.0:8082->80/tcp")), "{table}");
    let before_bridge = n.ns.on_bridge();
    // A fourth on 8081: refused, nothing created.
    let o = n.web("web4", &["--network", "bridge=vmbr0,ip=10.88.0.14/24,gw=10.88.0.1", "--port", "8081:80"]);
    assert!(!o.status.success() && stderr(&o).contains("8081") && stderr(&o).contains("web1"), "{}", stderr(&o));
    assert!(!n.ok(&["list", "-q"]).lines().any(|l| l == "web4"));
    assert!(!n.dir().join("store/bundles/web4").exists());
    assert_eq!(n.ns.on_bridge(), before_bridge);
    // A port a listening socket holds: refused too.
    let mut holder = n.cmd("busybox", &["nc", "-l", "-p", "8090"]).stdout(Stdio::null()).spawn().unwrap();
    assert!(wait_until(5, || !text(&n.inside("ss", &["-H", "-t", "-l", "-n", "sport = :8090"]).stdout).trim().is_empty()));
    let o = n.web("web5", &["--network", "bridge=vmbr0,ip=10.88.0.15/24", "--port", "8090:80"]);
    let _ = holder.kill();
    let _ = holder.wait();
    assert!(!o.status.success() && stderr(&o).contains("listening socket"), "{}", stderr(&o));
    assert!(!n.dir().join("store/bundles/web5").exists());

    // 3. stop, start: answers again; delete: no rule, no veth.
    n.ok(&["stop", "web1"]);
    assert!(!n.ns.nft().contains("dnat-web1"), "{}", n.ns.nft());
    assert_eq!(n.ns.get("10.88.0.1:8081", 1), "");
    n.ok(&["start", "web1"]);
    assert_eq!(n.get("10.88.0.1:8081"), "page of web1\n");
    // As after a reboot: autostart brings web3 and its port back.
    n.ok(&["stop", "web3"]);
    assert!(!n.ns.nft().contains("dnat-web3"));
    n.ok(&["autostart"]);
    assert_eq!(n.get("10.88.0.1:8083"), "page of web3\n");
    for id in ["web", "web1", "web2"] {
        n.ok(&["delete", "--force", id]);
    }
    // web3 still publishes on vmbr0: route_localnet stays.
    assert_eq!(n.localnet("vmbr0"), "1");
    assert_eq!(n.get("127.0.0.1:8083"), "page of web3\n");
    n.ok(&["delete", "--force", "web3"]);
    assert_eq!(n.localnet("vmbr0"), "0", "route_localnet restored with the last published container");
    let table = n.ns.nft();
    assert!(!table.contains("dnat-") && !table.contains("snat-") && !table.contains("localnet-"), "{table}");
    // the table itself goes with the last published container
    let o = n.inside("nft", &["list", "table", "ip", "nexcage"]);
    assert!(!o.status.success(), "table ip nexcage left behind: {}", text(&o.stdout));
    assert_eq!(n.ns.on_bridge(), Vec::<String>::new());
}

#[test]
fn custom_network_pool() {
    let cfg = serde_json::json!({"network": {"custom": {"lab": {"bridge": "vmbr0", "subnet": "10.88.0.0/24", "gateway": "10.88.0.1",
        "pool": "10.88.0.100-10.88.0.150"}}}});
    let Some(mut n) = Net::new("custom_network_pool", cfg) else { return };
    // A route_localnet the node already has is left alone.
    let o = n.inside("sysctl", &["-w", "net.ipv4.conf.vmbr0.route_localnet=1"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = n.web("nosuch", &["--network", "custom=nosuch"]);
    assert!(!o.status.success() && stderr(&o).contains("custom=nosuch") && stderr(&o).contains("lab"), "{}", stderr(&o));
    assert!(!n.dir().join("store/bundles/nosuch").exists());
    let mut addrs = Vec::new();
    for id in ["lab1", "lab2"] {
        let o = n.web(id, &["--network", "custom=lab", "--port", if id == "lab1" { "9001:80" } else { "9002:80" }]);
        assert!(o.status.success(), "{}", stderr(&o));
        let a = n.json(&["info", "--format", "json", id])["network"]["address"].as_str().unwrap().to_string();
        addrs.push(a);
    }
    assert_eq!(addrs, ["10.88.0.100/24", "10.88.0.101/24"]);
    assert_eq!(n.get("10.88.0.101:80"), "page of lab2\n");
    assert_eq!(n.get("10.88.0.1:9001"), "page of lab1\n");
    assert_eq!(n.get("127.0.0.1:9002"), "page of lab2\n");
    let pool = n.dir().join("store/networks/lab.json");
    for id in ["lab1", "lab2"] {
        n.ok(&["delete", "--force", id]);
    }
    let left: serde_json::Value = serde_json::from_slice(&std::fs::read(&pool).unwrap()).unwrap();
    assert_eq!(left, serde_json::json!({}));
    let table = n.ns.nft();
    assert!(!table.contains("dnat-") && !table.contains("localnet-"), "{table}");
    assert_eq!(n.localnet("vmbr0"), "1");
    assert_eq!(n.ns.on_bridge(), Vec::<String>::new());
}

#[test]
fn refusals_leave_nothing() {
    let Some(mut n) = Net::new("refusals_leave_nothing", serde_json::json!({})) else { return };
    let cases: &[(&[&str], &str)] = &[
        (&["--network", "bridge=nosuchbr,ip=10.88.0.30/24"], "bridge nosuchbr does not exist"),
        (&["--network", "bridge=vmbr0,ip=10.88.0.30"], "ip=10.88.0.30"),
        (&["--network", "bridge=vmbr0,tag=10"], "not VLAN-aware"),
        (&["--network", "bridge=vmbr0", "--port", "8080:80"], "add ip=CIDR"),
        (&["--network", "host", "--port", "8080:80"], "--network host"),
        (&["--network", "bridge=vmbr0,ip=10.88.0.30/24", "--port", "8080"], "--port \"8080\""),
        (&["--network", "bridge=vmbr0,ip=10.88.0.30/24", "--port", "8080:80", "--port", "8080:81"], "given twice"),
        (&["--network", "custom=lab"], "no network lab"),
        (&["--network", "bridge=vmbr0,firewall=1"], "only with --backend proxmox"),
        (&["--network", "bridge=vmbr0,ip=10.88.0.30/24,mtu=9000"], "bigger than bridge vmbr0's MTU 1500"),
    ];
    for (args, want) in cases {
        let o = n.web("bad", args);
        let e = stderr(&o);
        assert!(!o.status.success() && e.contains(want) && e.trim().lines().count() == 1, "{args:?}: {e}");
        assert!(!n.dir().join("store/bundles/bad").exists() && !n.dir().join("root/bad").exists(), "{args:?} left something");
    }
    assert!(n.ns.on_bridge().is_empty());
}

/// An admin `create` killed (SIGKILL) after the container was made and
/// before its monitor attached the network: a later `start` does not run it
/// without its veth and ports (it exited 0 so): it creates it again and the
/// port answers.
#[test]
fn start_after_an_interrupted_create() {
    let Some(mut n) = Net::new("start_after_an_interrupted_create", serde_json::json!({})) else { return };
    n.ids.push("cut".into());
    n.ok(&["create", "--name", "cut", "--image", IMAGE, "--env", "APP=cut", "--network", "bridge=vmbr0,ip=10.88.0.20/24,gw=10.88.0.1", "--port", "8095:80"]);
    // What the kill leaves: no monitor, no veth, no DNAT (the table had only cut's).
    let host_if = n.json(&["info", "--format", "json", "cut"])["network"]["hostInterface"].as_str().unwrap().to_string();
    let pid = n.json(&["state", "cut"])["pid"].as_i64().unwrap();
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let monitor: i32 = stat[stat.rfind(')').unwrap() + 2..].split(' ').nth(1).unwrap().parse().unwrap();
    assert!(std::fs::read_to_string(format!("/proc/{monitor}/cmdline")).unwrap().contains("__monitor"), "the init's parent is its monitor");
    assert!(Command::new("kill").args(["-KILL", &monitor.to_string()]).status().unwrap().success());
    assert!(n.inside("ip", &["link", "del", &host_if]).status.success());
    assert!(n.inside("nft", &["delete", "table", "ip", "nexcage"]).status.success());
    assert_eq!(n.json(&["state", "cut"])["status"], "created");
    let o = n.nx(&["start", "cut"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(n.get("10.88.0.1:8095"), "page of cut\n", "start set the network up");
    assert_eq!(n.ns.on_bridge(), vec![host_if]);
    n.ok(&["delete", "--force", "cut"]);
    assert_eq!(n.ns.on_bridge(), Vec::<String>::new());
}

/// `ip netns exec NS nexcage create ...` (a new mount namespace with a fresh
/// /sys, no cgroup mounts): one clear line naming the cause and the
/// `nsenter --net` workaround, nothing left (libcontainer said only "failed
/// to detect cgroup setup").
#[test]
fn ip_netns_exec_is_explained() {
    let Some(n) = Net::new("ip_netns_exec_is_explained", serde_json::json!({})) else { return };
    let b = bundle(n.dir(), "b", &["true"], |_| {});
    let root = n.dir().join("root");
    let o = Command::new("ip")
        .args(["netns", "exec", &n.ns.0, nexcage(), "--root", root.to_str().unwrap(), "create", "--bundle", b.to_str().unwrap(), "inns"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let e = stderr(&o);
    assert!(!o.status.success() && e.trim().lines().count() == 1, "{e}");
    assert!(e.contains("ip netns exec") && e.contains(&format!("nsenter --net=/run/netns/{} ", n.ns.0)), "{e}");
    assert!(!root.join("inns").exists());
}
