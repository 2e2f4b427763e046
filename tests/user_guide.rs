//! Every command block of the user guide, through the real `nexcage`
//! binary, each command checked for its effect. The blocks are copied into
//! tests/fixtures/user-guide-commands (the repository never reads the guide
//! itself); `guide_commands()` parses every `nexcage` command out of them
//! and the test fails if one is neither run here nor listed in `NOT_RUN`
//! with the reason.
//!
//! Adapted only where the guide assumes the internet, a real Proxmox node
//! or a shared machine: images come from registries on 127.0.0.1 (plain
//! http, hence `--tls-verify=false`), `tank` is a file-backed zfs-fuse pool
//! made here, files live in a temp dir, container names get this
//! process's id (cgroups are machine-wide), the image has no bash (`/bin/sh`).
//! The networking blocks run inside a network namespace made here (bridge
//! `vmbr0` on 10.88.0.1/24, tests/netns_fixture): nexcage, its monitors,
//! `ip` and `nft` run there, and nothing touches the host's interfaces.

#[path = "../crates/image/tests/common/mod.rs"]
mod common;
mod netns_fixture;
mod support;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use serde_json::Value;

const GUIDE: &str = include_str!("fixtures/user-guide-commands");

/// The guide's commands this test does not run, and why.
const NOT_RUN: &[(&str, &str)] = &[(
    "nexcage exec dev-env apt update && apt install -y build-essential git vim curl wget",
    "the shell runs `apt install` after `&&` on the host, not in the container",
)];

/// Every `nexcage ...` command of the guide's blocks: continuation lines
/// joined, whitespace collapsed, `./zig-out/bin/nexcage` read as `nexcage`.
fn guide_commands() -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for line in GUIDE.lines() {
        let l = line.trim();
        if l.starts_with('#') && cur.is_empty() {
            continue;
        }
        cur.push_str(l.trim_end_matches('\\'));
        cur.push(' ');
        if l.ends_with('\\') {
            continue;
        }
        let c = cur.split_whitespace().collect::<Vec<_>>().join(" ");
        cur.clear();
        let c = c.strip_prefix("./zig-out/bin/").unwrap_or(&c).to_string();
        if c.starts_with("nexcage ") {
            out.push(c);
        }
    }
    out
}

struct Guide {
    dir: tempfile::TempDir,
    env: Vec<(String, String)>,
    subs: Vec<(String, String)>,
    covered: BTreeSet<String>,
    all: Vec<String>,
    /// Where nexcage runs while set (the networking blocks).
    ns: Option<netns_fixture::Netns>,
}

impl Guide {
    fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    fn nexcage(&self, args: &[String]) -> Command {
        let bin = env!("CARGO_BIN_EXE_nexcage");
        let mut c = match &self.ns {
            Some(n) => n.cmd(bin),
            None => Command::new(bin),
        };
        c.arg("--root").arg(self.root()).args(args).current_dir(self.dir.path()).stdin(Stdio::null());
        c.env_remove("REGISTRY_AUTH_FILE");
        for (k, v) in &self.env {
            c.env(k, v);
        }
        c
    }

    /// `g` with the test's substitutions, as arguments after `nexcage`.
    fn adapt(&self, g: &str) -> Vec<String> {
        let mut s = format!(" {g} ");
        for (a, b) in &self.subs {
            s = s.replace(&format!(" {a} "), &format!(" {b} "));
            s = s.replace(&format!(" {a}/"), &format!(" {b}/"));
            s = s.replace(&format!(" {a}@"), &format!(" {b}@"));
        }
        let date = String::from_utf8(Command::new("date").arg("+%Y%m%d").output().unwrap().stdout).unwrap();
        s = s.replace("$(date +%Y%m%d)", date.trim());
        let mut v: Vec<String> = s.split_whitespace().map(String::from).collect();
        assert_eq!(v.remove(0), "nexcage");
        v
    }

    fn mark(&mut self, g: &str) {
        assert!(self.all.iter().any(|c| c == g), "not a command of the guide: {g}");
        self.covered.insert(g.to_string());
    }

    /// Runs guide command `g` as `adapted` (itself adapted again).
    fn run_as(&mut self, g: &str, adapted: &str) -> Output {
        let args = self.adapt(adapted);
        self.run_args(g, args)
    }

    /// Runs guide command `g` as `nexcage ARGS`, no substitutions.
    fn run_args(&mut self, g: &str, args: Vec<String>) -> Output {
        self.mark(g);
        let o = self.nexcage(&args).output().unwrap();
        eprintln!("$ nexcage {}\n{}{}", args.join(" "), text(&o.stdout), text(&o.stderr));
        o
    }

    /// Guide command `g`, adapted, must succeed; its stdout.
    fn ok(&mut self, g: &str) -> String {
        self.ok_as(g, g)
    }

    fn ok_as(&mut self, g: &str, adapted: &str) -> String {
        let o = self.run_as(g, adapted);
        assert!(o.status.success(), "{g}: exit {:?}: {}", o.status.code(), text(&o.stderr));
        text(&o.stdout)
    }

    /// Guide command `g` must be refused: exit 1, one line saying why.
    fn refused(&mut self, g: &str) -> String {
        let o = self.run_as(g, g);
        let err = text(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{g}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{g}: one line: {err}");
        err
    }

    /// A command the test needs besides the guide's (setup, checks).
    fn extra(&self, args: &[&str]) -> String {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let o = self.nexcage(&args).output().unwrap();
        assert!(o.status.success(), "nexcage {args:?}: {}", text(&o.stderr));
        text(&o.stdout)
    }

    fn json(&self, args: &[&str]) -> Value {
        let out = self.extra(args);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?}: {e}: {out}"))
    }

    fn status(&self, id: &str) -> String {
        self.json(&["state", id])["status"].as_str().unwrap_or("").to_string()
    }

    fn wait_status(&self, id: &str, want: &str) {
        let ok = support::wait_until(20, || self.status(id) == want);
        if !ok {
            let logs = self.nexcage(&["logs".into(), id.into()]).output().unwrap();
            panic!("{id} did not become {want} (is {}); its logs: {}{}", self.status(id), text(&logs.stdout), text(&logs.stderr));
        }
    }
}

/// The output of `child`, killed if it runs longer than `secs`.
fn wait_output(mut child: std::process::Child, secs: u64) -> Output {
    let ended = support::wait_until(secs, || child.try_wait().is_ok_and(|s| s.is_some()));
    if !ended {
        let _ = child.kill();
    }
    let o = child.wait_with_output().unwrap();
    assert!(ended, "did not end within {secs} s: {}", text(&o.stdout));
    o
}

impl Drop for Guide {
    /// Containers a failed run left (their monitors outlive the test).
    fn drop(&mut self) {
        for e in std::fs::read_dir(self.root()).into_iter().flatten().flatten() {
            let id = e.file_name().to_string_lossy().to_string();
            if !id.starts_with('.') {
                let _ = self.nexcage(&["delete".into(), "--force".into(), id]).output();
            }
        }
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).to_string()
}

/// A zfs-fuse pool on a sparse file under /var/tmp, destroyed on drop.
/// zfs-fuse hangs under concurrent pool churn: the pool is made, used and
/// destroyed under the lock the Proxmox tests take (tests/proxmox_support).
struct Pool {
    name: String,
    dir: PathBuf,
    /// zfs-fuse's pid when this test started it (as scripts/proxmox-test-env.sh does).
    ours: Option<i32>,
}

/// Holds the Proxmox tests' lock until dropped.
fn zfs_lock() -> Option<std::fs::File> {
    use std::os::fd::AsRawFd;
    let lock = std::fs::File::create("/var/tmp/nexcage-proxmox-tests.lock").ok()?;
    // SAFETY: flock on an fd we own; blocks until the previous holder is done.
    (unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) } == 0).then_some(lock)
}

fn zpool_answers() -> bool {
    Command::new("zpool").arg("list").output().is_ok_and(|o| o.status.success())
}

impl Pool {
    fn create() -> Option<Pool> {
        let _lock = zfs_lock()?;
        let name = format!("nxguide{}", std::process::id());
        let dir = PathBuf::from(format!("/var/tmp/{name}"));
        std::fs::create_dir_all(&dir).ok()?;
        let mut ours = None;
        if !zpool_answers() {
            let _ = std::fs::create_dir_all("/var/run/zfs");
            let pidfile = dir.join("zfs-fuse.pid");
            Command::new("zfs-fuse").arg("--no-kstat-mount").arg("--pidfile").arg(&pidfile).status().ok()?;
            if !support::wait_until(10, zpool_answers) {
                return None;
            }
            ours = std::fs::read_to_string(&pidfile).ok().and_then(|p| p.trim().parse().ok());
        }
        let file = dir.join("pool.img");
        std::fs::File::create(&file).ok()?.set_len(2 << 30).ok()?;
        let mnt = dir.join("pool-mnt");
        let o = Command::new("zpool").args(["create", "-m"]).arg(&mnt).arg(&name).arg(&file).output().ok()?;
        if !o.status.success() {
            eprintln!("zpool create: {}", text(&o.stderr));
            return None;
        }
        Some(Pool { name, dir, ours })
    }

    fn has(&self, ds: &str) -> bool {
        Command::new("zfs").args(["list", "-H", "-t", "all", ds]).output().is_ok_and(|o| o.status.success())
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        let _lock = zfs_lock();
        // zfs-fuse may call the pool busy right after use: retry.
        for _ in 0..20 {
            let o = Command::new("zpool").args(["destroy", "-f", &self.name]).output();
            if o.is_ok_and(|o| o.status.success()) || !self.has(&self.name) {
                break;
            }
            std::thread::sleep(Duration::from_millis(300));
        }
        let others = Command::new("zpool").args(["list", "-H", "-o", "name"]).output().map(|o| o.stdout).unwrap_or_default();
        if let (Some(pid), true) = (self.ours, others.is_empty()) {
            // SAFETY: kill(2) of the zfs-fuse this test started.
            unsafe { libc::kill(pid, libc::SIGTERM) };
            support::wait_until(10, || unsafe { libc::kill(pid, 0) } != 0);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A runnable busybox image: prints `hello`, then waits; exits 0 on SIGTERM.
fn busybox_image(l: &mut common::Layout, tag: &str, marker: &str) -> common::Built {
    busybox_image_running(l, tag, &format!("echo hello {marker}"), None)
}

/// A busybox image running `script` (then waiting; exit 0 on SIGTERM),
/// with `extra` as a third layer.
fn busybox_image_running(l: &mut common::Layout, tag: &str, script: &str, extra: Option<Vec<u8>>) -> common::Built {
    let names: Vec<String> = ["sleep", "whoami", "true", "date", "mkdir", "tail", "httpd", "nc", "ip", "ping"].iter().map(|n| format!("bin/{n}")).collect();
    let links: Vec<common::E> = names.iter().map(|n| common::E::Link(n, "busybox")).collect();
    let links = common::tar_layer(&links);
    let script = format!("trap 'exit 0' TERM; {script}; while true; do sleep 0.2; done");
    let mut layers = vec![common::busybox_layer(), links];
    layers.extend(extra);
    let b = l.image(&layers, "amd64", serde_json::json!({"Cmd": ["/bin/sh", "-c", script]}), true);
    l.tag(&b, tag);
    b
}

/// The web application: busybox_image's `hello myapp`, a page on port 80
/// naming NODE_ENV and the container's /etc/hosts entry, and a line in
/// /app/logs when that is mounted.
fn app_image(l: &mut common::Layout) -> common::Built {
    let script = "echo hello myapp; mkdir -p /www; echo \"myapp NODE_ENV=$NODE_ENV on $(tail -n 1 /etc/hosts 2>/dev/null)\" > /www/index.html; \
        if [ -d /app/logs ]; then echo started > /app/logs/myapp.log; fi; httpd -p 80 -h /www";
    busybox_image_running(l, "myapp", script, None)
}

/// The database stand-in: on port 5432 every client is greeted with
/// `postgres $POSTGRES_DB accepting connections`; the data directory gets
/// PG_VERSION; `pg_dump -U USER DB` prints a dump header.
fn postgres_image(l: &mut common::Layout) -> common::Built {
    let files = common::tar_layer(&[
        common::E::File("bin/pgready", 0o755, b"#!/bin/sh\necho \"postgres $POSTGRES_DB accepting connections\"\n"),
        common::E::File("bin/pg_dump", 0o755, b"#!/bin/sh\necho \"-- dump of database $3 as $2\"\n"),
    ]);
    let script = "echo 15 > /var/lib/postgresql/data/PG_VERSION; nc -ll -p 5432 -e /bin/pgready & echo postgres started";
    busybox_image_running(l, "postgres", script, Some(files))
}

/// The guide's network configuration and its web, scaled and database
/// examples, in a network namespace with bridge vmbr0 on 10.88.0.1/24 and
/// `network.custom.my-network` on it (the pool a `bridge=vmbr0` without
/// `ip=` takes its address from too). Each page and greeting is fetched
/// from the node's address inside the namespace.
fn networking(g: &mut Guide, cfg: &std::path::Path, registry: &str) {
    let pid = std::process::id();
    let d = g.dir.path().to_path_buf();
    let mut c: Value = serde_json::from_slice(&std::fs::read(cfg).unwrap()).unwrap();
    c["network"]["custom"]["my-network"] = serde_json::json!({"bridge": "vmbr0", "subnet": "10.88.0.0/24", "gateway": "10.88.0.1",
        "pool": "10.88.0.100-10.88.0.199"});
    std::fs::write(cfg, c.to_string()).unwrap();
    // The registry is on the host's 127.0.0.1: pulled before going inside.
    g.extra(&["image", "pull", "--tls-verify=false", &format!("{registry}/postgres:15")]);
    g.ns = Some(netns_fixture::Netns::new("guide"));
    let mc = format!("my-container-{pid}");
    let on_bridge = |g: &Guide| g.ns.as_ref().unwrap().on_bridge();
    let inside = |g: &Guide, args: &[&str]| -> Output {
        g.ns.as_ref().unwrap().cmd(args[0]).args(&args[1..]).output().unwrap()
    };

    // Bridge networking: a veth on vmbr0, an address from my-network's pool.
    g.ok("nexcage create --name my-container --image ubuntu:22.04 --network bridge=vmbr0");
    g.extra(&["start", &mc]);
    g.wait_status(&mc, "running");
    let net = g.json(&["info", "--format", "json", &mc])["network"].clone();
    assert_eq!((net["address"].as_str(), net["bridge"].as_str()), (Some("10.88.0.100/24"), Some("vmbr0")), "{net}");
    assert_eq!(on_bridge(g), vec![net["hostInterface"].as_str().unwrap().to_string()]);
    let a = g.extra(&["exec", &mc, "ip", "-o", "-4", "addr", "show", "eth0"]);
    assert!(a.contains("10.88.0.100/24"), "{a}");
    let p = inside(g, &["busybox", "ping", "-c", "1", "-W", "3", "10.88.0.100"]);
    assert!(p.status.success(), "the container answers on the bridge: {}", text(&p.stdout));
    g.extra(&["delete", "--force", &mc]);
    assert!(on_bridge(g).is_empty());

    // Host networking: the container sees the namespace's own vmbr0.
    g.ok("nexcage create --name my-container --image ubuntu:22.04 --network host");
    g.extra(&["start", &mc]);
    g.wait_status(&mc, "running");
    let l = g.extra(&["exec", &mc, "ip", "-o", "-4", "addr", "show", "vmbr0"]);
    assert!(l.contains("10.88.0.1/24"), "{l}");
    assert!(g.json(&["info", "--format", "json", &mc])["network"].is_null());
    g.extra(&["delete", "--force", &mc]);

    // Custom network: the pool's lowest free address, released at delete.
    g.ok("nexcage create --name my-container --image ubuntu:22.04 --network custom=my-network");
    g.extra(&["start", &mc]);
    g.wait_status(&mc, "running");
    let net = g.json(&["info", "--format", "json", &mc])["network"].clone();
    assert_eq!((net["address"].as_str(), net["custom"].as_str()), (Some("10.88.0.100/24"), Some("my-network")), "{net}");
    let p = inside(g, &["busybox", "ping", "-c", "1", "-W", "3", "10.88.0.100"]);
    assert!(p.status.success(), "{}", text(&p.stdout));
    g.extra(&["delete", "--force", &mc]);
    let pool_file = d.join("images/networks/my-network.json");
    assert_eq!(serde_json::from_slice::<Value>(&std::fs::read(&pool_file).unwrap()).unwrap(), serde_json::json!({}));

    // The web application: created, started at boot (`autostart`), its page
    // on the node's port 8080, its log in the mounted directory.
    let web = format!("web-app-{pid}");
    g.ok("nexcage create --name web-app --image myapp:latest --memory 1024 --cores 2 --network bridge=vmbr0 --port 8080:80 --env NODE_ENV=production --mount /var/log:/app/logs --auto-start");
    assert_eq!(g.status(&web), "created");
    let started = g.extra(&["autostart"]);
    assert!(started.contains(&web), "{started}");
    let n = g.ns.as_ref().unwrap();
    assert_eq!(n.get("10.88.0.1:8080", 20), format!("myapp NODE_ENV=production on 10.88.0.100\t{web}\n"));
    assert_eq!(std::fs::read_to_string(d.join("var-log/myapp.log")).unwrap(), "started\n");
    let info = g.json(&["info", "--format", "json", &web]);
    assert_eq!(info["network"]["ports"], serde_json::json!(["0.0.0.0:8080->80/tcp"]), "{info}");

    // Scaled: three more, each on its own port 808$i.
    let scaled = "nexcage create --name \"web-app-$i\" --image myapp:latest --memory 1024 --cores 2 --network bridge=vmbr0 --port \"808$i:80\" --env NODE_ENV=production --auto-start";
    for i in 1..=3 {
        let adapted = scaled.replace("\"web-app-$i\"", &format!("{web}-{i}")).replace("\"808$i:80\"", &format!("808{i}:80"));
        g.ok_as(scaled, &adapted);
    }
    g.extra(&["autostart"]);
    let n = g.ns.as_ref().unwrap();
    for i in 1..=3 {
        assert_eq!(n.get(&format!("10.88.0.1:808{i}"), 20), format!("myapp NODE_ENV=production on 10.88.0.10{i}\t{web}-{i}\n"));
    }
    let list = g.extra(&["list"]);
    assert!(list.lines().any(|l| l.starts_with(&format!("{web}-2 ")) && l.contains("0.0.0.0:8082->80/tcp")), "{list}");

    // The database: --port without --network puts it on the default bridge
    // vmbr0; a client on the node's 5432 is greeted; its data dir is the mount.
    let db = format!("postgres-db-{pid}");
    g.ok("nexcage create --name postgres-db --image postgres:15 --memory 2048 --cores 2 --storage-size 20G --env POSTGRES_PASSWORD=secret --env POSTGRES_DB=myapp --port 5432:5432 --mount /var/lib/postgresql:/var/lib/postgresql/data --auto-start");
    g.extra(&["autostart"]);
    g.wait_status(&db, "running");
    let n = g.ns.as_ref().unwrap();
    assert_eq!(n.read("10.88.0.1:5432", 20), "postgres myapp accepting connections\n");
    assert_eq!(std::fs::read_to_string(d.join("postgresql/PG_VERSION")).unwrap(), "15\n");
    // `> backup.sql` is the shell's: the test writes the output there.
    let dump = "nexcage exec postgres-db pg_dump -U postgres myapp > backup.sql";
    let out = g.ok_as(dump, "nexcage exec postgres-db pg_dump -U postgres myapp");
    std::fs::write(d.join("backup.sql"), &out).unwrap();
    assert_eq!(out, "-- dump of database myapp as postgres\n");

    // The development box asks for 4 CPUs: refused on a smaller node,
    // with nothing left; else its port 2222 is published to its sshd port.
    let dev = format!("dev-env-{pid}");
    let g_dev = "nexcage create --name dev-env --image ubuntu:22.04 --memory 4096 --cores 4 --network bridge=vmbr0 --mount /home/user/project:/app --mount /home/user/.ssh:/root/.ssh --port 2222:22 --env DEBIAN_FRONTEND=noninteractive --auto-start";
    let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let o = g.run_as(g_dev, g_dev);
    let nft = g.ns.as_ref().unwrap().nft();
    if cpus < 4 {
        assert!(o.status.code() == Some(1) && text(&o.stderr).contains("--cores 4"), "{}", text(&o.stderr));
        assert!(!g.root().join(&dev).exists() && !nft.contains(&format!("dnat-{dev}")));
    } else {
        assert!(o.status.success(), "{}", text(&o.stderr));
        assert!(nft.contains(&format!("dnat-{dev}")) && nft.contains("2222"), "{nft}");
        g.extra(&["delete", "--force", &dev]);
    }

    // Delete: no rule, veth or address allocation is left.
    for id in [web.clone(), format!("{web}-1"), format!("{web}-2"), format!("{web}-3"), db] {
        g.extra(&["delete", "--force", &id]);
    }
    let n = g.ns.as_ref().unwrap();
    let nft = n.nft();
    assert!(!nft.contains("dnat-") && !nft.contains("snat-"), "{nft}");
    assert!(n.on_bridge().is_empty());
    assert_eq!(serde_json::from_slice::<Value>(&std::fs::read(&pool_file).unwrap()).unwrap(), serde_json::json!({}));
    g.ns = None;
}

#[test]
fn every_command_of_the_user_guide() {
    if !support::is_root() {
        return support::skip("every_command_of_the_user_guide", "needs root");
    }
    if let Some(m) = support::missing(&["docker-registry", "skopeo", "htpasswd", "busybox", "zpool", "script"]) {
        return support::skip("every_command_of_the_user_guide", &m);
    }
    let dir = tempfile::tempdir().unwrap();
    let pool = Pool::create();
    let Some(pool) = pool else {
        return support::skip("every_command_of_the_user_guide", "cannot create a zfs pool (is zfs-fuse running?)");
    };
    let d = dir.path().to_path_buf();
    let pid = std::process::id();

    // Two registries on 127.0.0.1: an open one, and one with htpasswd
    // auth (the guide's private registry, myuser/mypass).
    let open = common::Registry::start(None);
    let private = common::Registry::start(Some(("myuser", "mypass")));
    let src = d.join("layout");
    let mut l = common::Layout::new(&src);
    let ubuntu = busybox_image(&mut l, "ubuntu", "ubuntu");
    let _app = app_image(&mut l);
    let _pg = postgres_image(&mut l);
    // `image import /path/to/image/directory`: an OCI layout naming its image in full.
    let imgdir = d.join("image-directory");
    busybox_image(&mut common::Layout::new(&imgdir), "localhost/dir-image:1", "dir");
    common::run(Command::new("skopeo").args(["copy", "--quiet", "--dest-tls-verify=false"])
        .arg(format!("oci:{}:ubuntu", src.display())).arg(format!("docker://{}/ubuntu:22.04", open.host())));
    common::run(Command::new("skopeo").args(["copy", "--quiet", "--dest-tls-verify=false"])
        .arg(format!("oci:{}:myapp", src.display())).arg(format!("docker://{}/myapp:latest", open.host())));
    common::run(Command::new("skopeo").args(["copy", "--quiet", "--dest-tls-verify=false"])
        .arg(format!("oci:{}:postgres", src.display())).arg(format!("docker://{}/postgres:15", open.host())));
    common::run(Command::new("skopeo").args(["copy", "--quiet", "--dest-tls-verify=false", "--dest-creds", "myuser:mypass"])
        .arg(format!("oci:{}:myapp", src.display())).arg(format!("docker://{}/myapp:latest", private.host())));

    // The guide's environment variables, pointed at the temp dir.
    let cfg = d.join("config.json");
    std::fs::write(&cfg, serde_json::json!({"storage": {"pool": pool.name}}).to_string()).unwrap();
    let store = d.join("images");
    let home = d.join("home");
    std::fs::create_dir_all(&home).unwrap();
    let env: Vec<(String, String)> = vec![
        ("NEXCAGE_CONFIG".into(), cfg.display().to_string()),
        ("NEXCAGE_LOG_LEVEL".into(), "info".into()),
        ("NEXCAGE_STORAGE_PATH".into(), store.display().to_string()),
        ("HOME".into(), home.display().to_string()),
        ("XDG_RUNTIME_DIR".into(), home.join("run").display().to_string()),
    ];
    let o = open.host();
    let subs: Vec<(String, String)> = vec![
        ("ubuntu:22.04".into(), format!("{o}/ubuntu:22.04")),
        ("myapp:latest".into(), format!("{o}/myapp:latest")),
        ("my-registry.com".into(), private.host()),
        ("/path/to/oci-bundle".into(), d.join("oci-bundle").display().to_string()),
        ("/path/to/image/directory".into(), imgdir.display().to_string()),
        ("tank".into(), pool.name.clone()),
        ("my-container".into(), format!("my-container-{pid}")),
        ("my-app".into(), format!("my-app-{pid}")),
        ("/bin/bash".into(), "/bin/sh".into()),
        ("postgres:15".into(), format!("{o}/postgres:15")),
        ("web-app".into(), format!("web-app-{pid}")),
        ("postgres-db".into(), format!("postgres-db-{pid}")),
        ("dev-env".into(), format!("dev-env-{pid}")),
        ("/var/log:/app/logs".into(), format!("{}:/app/logs", d.join("var-log").display())),
        ("/var/lib/postgresql:/var/lib/postgresql/data".into(), format!("{}:/var/lib/postgresql/data", d.join("postgresql").display())),
        ("/home/user/project:/app".into(), format!("{}:/app", d.join("project").display())),
        ("/home/user/.ssh:/root/.ssh".into(), format!("{}:/root/.ssh", d.join("ssh").display())),
    ];
    for m in ["var-log", "postgresql", "project", "ssh"] {
        std::fs::create_dir_all(d.join(m)).unwrap();
    }
    let mut g = Guide { dir, env, subs, covered: BTreeSet::new(), all: guide_commands(), ns: None };
    let mc = format!("my-container-{pid}");
    let ma = format!("my-app-{pid}");
    let (ubuntu_ref, app_ref, private_ref) = (format!("{o}/ubuntu:22.04"), format!("{o}/myapp:latest"), format!("{}/myapp:latest", private.host()));

    // ---- Installation, configuration, command structure
    let v = g.ok("nexcage --version");
    assert!(v.starts_with("nexcage version ") && v.contains("\ncommit: "), "{v}");
    let help = g.ok_as("nexcage [COMMAND] [OPTIONS] [ARGUMENTS]", "nexcage --help");
    assert!(help.contains("Usage: nexcage [OPTIONS] [COMMAND]"), "{help}");

    // ---- Images
    let pull = |g: &mut Guide, c: &str| g.ok_as(c, &c.replacen("image pull", "image pull --tls-verify=false", 1));
    let digest = pull(&mut g, "nexcage image pull ubuntu:22.04");
    assert_eq!(digest.trim(), ubuntu.manifest_digest);
    assert!(store.join("index.json").exists(), "NEXCAGE_STORAGE_PATH is where the store is");
    // The private registry's myapp:latest, not the substitution's.
    let args = "image pull --tls-verify=false --registry REG --username myuser --password mypass myapp:latest";
    let args = args.split(' ').map(|a| if a == "REG" { private.host() } else { a.to_string() }).collect();
    let o = g.run_args("nexcage image pull --registry my-registry.com --username myuser --password mypass myapp:latest", args);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!(g.json(&["image", "inspect", &private_ref])["name"], private_ref);
    assert!(!home.join("run/containers/auth.json").exists() && !home.join(".config/containers/auth.json").exists(), "pull credentials are not stored");
    pull(&mut g, "nexcage image pull myapp:latest");

    let list = g.ok("nexcage image list");
    let header = list.lines().next().unwrap();
    let line = list.lines().find(|l| l.starts_with(&ubuntu_ref)).unwrap_or_else(|| panic!("{list}"));
    assert_eq!(header.find("DIGEST"), line.find(&ubuntu.manifest_digest[7..19]), "columns line up:\n{list}");
    let lj: Value = serde_json::from_str(&g.ok("nexcage image list --format json")).unwrap();
    let names: Vec<&str> = lj.as_array().unwrap().iter().filter_map(|i| i["name"].as_str()).collect();
    for n in [&ubuntu_ref, &app_ref, &private_ref] {
        assert!(names.contains(&n.as_str()), "{names:?}");
    }
    let sl = g.ok("nexcage image list --show-layers");
    assert!(sl.contains(&ubuntu.layer_digests[1][7..19]), "{sl}");

    // `image inspect` shows what `skopeo inspect` shows for the same image.
    let skopeo = |extra: &[&str]| -> Value {
        let out = common::run(Command::new("skopeo").args(["inspect", "--tls-verify=false"]).args(extra).arg(format!("docker://{ubuntu_ref}")));
        serde_json::from_str(&out).unwrap()
    };
    let sk = skopeo(&[]);
    let ins: Value = serde_json::from_str(&g.ok("nexcage image inspect ubuntu:22.04")).unwrap();
    assert_eq!(ins["digest"], sk["Digest"]);
    assert_eq!(ins["architecture"], sk["Architecture"]);
    assert_eq!(ins["os"], sk["Os"]);
    assert_eq!(ins["config"]["Env"], sk["Env"]);
    let layers: Vec<&Value> = ins["layers"].as_array().unwrap().iter().map(|l| &l["digest"]).collect();
    assert_eq!(layers, sk["Layers"].as_array().unwrap().iter().collect::<Vec<_>>());
    let cfg_json: Value = serde_json::from_str(&g.ok("nexcage image inspect ubuntu:22.04 --config")).unwrap();
    let sk_cfg = skopeo(&["--config"]);
    for k in ["architecture", "os", "config", "rootfs", "created"] {
        assert_eq!(cfg_json[k], sk_cfg[k], "config.{k}");
    }
    let lay: Value = serde_json::from_str(&g.ok("nexcage image inspect ubuntu:22.04 --layers")).unwrap();
    // The manifest's layer descriptors, as `skopeo inspect --raw` gives the manifest.
    assert_eq!(lay, skopeo(&["--raw"])["layers"]);

    // Export, then import what was exported.
    g.ok("nexcage image export ubuntu:22.04 --output ubuntu-22.04.tar");
    let tar_list = |f: &str| common::run(Command::new("tar").arg("-tf").arg(d.join(f)));
    assert!(tar_list("ubuntu-22.04.tar").contains("index.json"));
    g.ok("nexcage image export ubuntu:22.04 --layers --output ubuntu-layers.tar");
    let t = tar_list("ubuntu-layers.tar");
    assert!(t.contains(&format!("layers/00-{}.tar.gz", &ubuntu.layer_digests[0][7..])) && t.contains("layers.json"), "{t}");
    std::fs::copy(d.join("ubuntu-22.04.tar"), d.join("my-image.tar")).unwrap();
    let im = g.ok("nexcage image import my-image.tar");
    assert!(im.contains(&ubuntu.manifest_digest), "{im}");
    let im = g.ok("nexcage image import /path/to/image/directory");
    assert!(im.starts_with("localhost/dir-image:1 sha256:"), "{im}");
    g.ok("nexcage image import my-image.tar --name myapp:latest");
    assert_eq!(g.json(&["image", "inspect", &app_ref])["digest"], ubuntu.manifest_digest, "--name renamed the import");
    pull(&mut g, "nexcage image pull myapp:latest");

    // Layers and the cache.
    let ll = g.ok("nexcage layer list");
    assert!(ll.contains(&ubuntu.layer_digests[0]), "{ll}");
    let v = g.ok("nexcage layer validate ubuntu:22.04");
    assert!(v.contains("4 blobs checked, 0 corrupt"), "{v}");
    let v = g.ok("nexcage image validate myapp:latest");
    assert!(v.contains("2 diff_ids checked, 0 wrong"), "{v}");
    let cs = g.ok("nexcage cache stats");
    assert!(cs.contains("images:") && cs.contains(&store.display().to_string()), "{cs}");
    assert_eq!(g.ok("nexcage cache status"), cs);
    let cl = g.ok("nexcage cache list");
    assert!(cl.contains(&ubuntu.manifest_digest), "{cl}");

    // ---- Configuration of parallel pulls
    g.ok("nexcage config set parallel.processing true");
    g.ok("nexcage config set parallel.workers 4");
    let c: Value = serde_json::from_slice(&std::fs::read(&cfg).unwrap()).unwrap();
    assert_eq!((&c["parallel"]["processing"], &c["parallel"]["workers"]), (&Value::Bool(true), &serde_json::json!(4)));

    // ---- Containers (native backend)
    g.extra(&["image", "bundle", &app_ref, d.join("oci-bundle").to_str().unwrap()]);
    g.ok("nexcage create --name my-container --image /path/to/oci-bundle");
    assert_eq!(g.status(&mc), "created");
    g.ok("nexcage start my-container");
    g.wait_status(&mc, "running");
    let st: Value = serde_json::from_str(&g.ok("nexcage state --name my-container")).unwrap();
    assert_eq!((st["id"].as_str(), st["status"].as_str()), (Some(mc.as_str()), Some("running")));
    g.ok("nexcage kill --name my-container --signal SIGTERM");
    g.wait_status(&mc, "stopped");
    g.ok("nexcage start my-container --detach --interactive");
    g.wait_status(&mc, "running");
    g.ok("nexcage stop my-container");
    assert_eq!(g.status(&mc), "stopped");
    g.extra(&["start", &mc]);
    g.wait_status(&mc, "running");
    g.ok("nexcage stop my-container --force");
    assert_eq!(g.status(&mc), "stopped");
    g.extra(&["start", &mc]);
    g.wait_status(&mc, "running");

    let ls = g.ok("nexcage exec my-container ls -la");
    assert!(ls.contains("bin") && ls.contains("etc"), "{ls}");
    let who = g.ok("nexcage exec my-container --user root whoami");
    assert_eq!(who.trim(), "root");
    // --tty needs a terminal: `script` gives the command one.
    let g_tty = "nexcage exec my-container --interactive --tty /bin/bash";
    g.mark(g_tty);
    let tty_args = g.adapt(g_tty);
    let cmdline = format!("{} --root {} {}", env!("CARGO_BIN_EXE_nexcage"), g.root().display(), tty_args.join(" "));
    let mut sc = Command::new("timeout");
    sc.args(["20", "script", "-qec", &cmdline, "/dev/null"]).stdin(Stdio::piped()).stdout(Stdio::piped());
    let mut child = sc.spawn().unwrap();
    {
        use std::io::Write;
        let mut i = child.stdin.take().unwrap();
        i.write_all(b"echo in-the-$((20+22))-container; exit\n").unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(text(&out.stdout).contains("in-the-42-container"), "{}", text(&out.stdout));

    let logs = g.ok("nexcage logs my-container");
    assert!(logs.contains("hello myapp"), "{logs}");
    let ts = g.ok("nexcage logs my-container --timestamps");
    assert!(ts.lines().all(|l| l.starts_with("20")), "{ts}");
    let tail = g.ok("nexcage logs my-container --tail 100");
    assert_eq!(tail.lines().count(), logs.lines().count().min(100));
    let info = g.ok("nexcage info my-container");
    assert!(info.contains(&mc) && info.contains("running"), "{info}");

    let list = g.ok("nexcage list");
    let (h, row) = (list.lines().next().unwrap(), list.lines().find(|l| l.starts_with(&mc)).unwrap());
    assert_eq!(h.find("STATUS"), row.find("running"), "columns line up:\n{list}");
    let lj: Value = serde_json::from_str(&g.ok("nexcage list --format json")).unwrap();
    assert!(lj.as_array().unwrap().iter().any(|c| c["id"] == mc.as_str()));
    assert!(g.ok("nexcage list --status running").contains(&mc));

    // Monitor: live stats until interrupted.
    g.mark("nexcage monitor");
    let mut m = g.nexcage(&["monitor".to_string()]).stdout(Stdio::piped()).spawn().unwrap();
    std::thread::sleep(Duration::from_millis(2500));
    let _ = m.kill();
    let mo = text(&m.wait_with_output().unwrap().stdout);
    assert!(mo.contains("MEM USAGE / LIMIT") && mo.contains(&mc), "{mo}");
    let ms = g.ok("nexcage memory stats");
    assert!(ms.lines().any(|l| l.starts_with("container") && l.contains(&mc)) && ms.contains("nexcage"), "{ms}");
    let pm = g.ok("nexcage performance metrics");
    assert!(pm.contains("running containers:  ") && !pm.contains("running containers:  0"), "{pm}");
    let pc = g.run_as("nexcage performance check", "nexcage performance check");
    assert!(text(&pc.stdout).contains("containers: ") && pc.status.code() == Some(0), "{}", text(&pc.stdout));
    let lo = g.ok("nexcage layer optimize ubuntu:22.04");
    assert!(lo.contains("freed") && lo.contains("layers shared"), "{lo}");

    // Follow: ends when the container stops.
    g.mark("nexcage logs my-container --follow");
    let f = g.nexcage(&g.adapt("nexcage logs my-container --follow")).stdout(Stdio::piped()).spawn().unwrap();
    std::thread::sleep(Duration::from_millis(500));
    g.extra(&["kill", &mc, "TERM"]);
    let fo = wait_output(f, 20);
    assert!(text(&fo.stdout).contains("hello myapp"));
    g.extra(&["delete", "--force", &mc]);

    // Create and start in one command; auto-start.
    g.ok("nexcage create --name my-app --image myapp:latest --start");
    g.wait_status(&ma, "running");
    g.extra(&["delete", "--force", &ma]);
    g.ok("nexcage create --name my-app --image myapp:latest --auto-start");
    assert_eq!(g.status(&ma), "created");
    assert!(g.extra(&["autostart"]).contains(&ma));
    g.wait_status(&ma, "running");
    g.extra(&["delete", "--force", &ma]);

    // Resource limits, read back from the container's cgroup.
    g.ok("nexcage create --name my-container --image ubuntu:22.04 --memory 1024 --memory-swap 2048");
    let i: Value = g.json(&["info", "--format", "json", &mc]);
    assert_eq!(i["enforced"]["memoryLimit"], 1024u64 << 20, "{i}");
    g.extra(&["delete", "--force", &mc]);
    g.ok("nexcage create --name my-container --image ubuntu:22.04 --cores 2 --cpu-shares 1024 --cpu-quota 50000");
    let i: Value = g.json(&["info", "--format", "json", &mc]);
    assert_eq!(i["enforced"]["cpus"], "0-1", "{i}");
    g.extra(&["delete", "--force", &mc]);
    g.ok("nexcage create --name my-container --image ubuntu:22.04 --storage-size 10G --storage-type zfs");
    assert_eq!(g.status(&mc), "created");
    g.extra(&["delete", "--force", &mc]);

    // Debug mode: --verbose logs at info level; `create --name N IMAGE`.
    let t = format!("guide-test-{pid}");
    let o = g.run_as("nexcage --verbose create --name test ubuntu:22.04", &format!("nexcage --verbose create --name {t} ubuntu:22.04"));
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!(g.status(&t), "created");
    assert!(text(&o.stderr).contains("info"), "--verbose: {}", text(&o.stderr));
    let deps = g.ok("nexcage layer dependencies ubuntu:22.04");
    assert!(deps.lines().skip(1).all(|l| l.contains(&app_ref) && l.contains(&t)), "{deps}");
    g.extra(&["delete", "--force", &t]);
    g.env.retain(|(k, _)| k != "NEXCAGE_LOG_LEVEL");
    g.env.push(("NEXCAGE_LOG_LEVEL".into(), "debug".into()));
    let o = g.nexcage(&["list".to_string()]).output().unwrap();
    assert!(text(&o.stderr).contains("debug"), "NEXCAGE_LOG_LEVEL=debug: {}", text(&o.stderr));
    g.env.retain(|(k, _)| k != "NEXCAGE_LOG_LEVEL");
    let di = g.run_as("nexcage debug info", "nexcage debug info");
    assert!(text(&di.stdout).contains("ok   kernel:"), "{}", text(&di.stdout));

    networking(&mut g, &cfg, &open.host());

    // ---- Troubleshooting
    let sr = g.ok("nexcage system resources");
    assert!(sr.contains("cpu:") && sr.contains("memory:") && sr.contains(&format!("zfs:      {} ONLINE", pool.name)), "{sr}");
    g.extra(&["login", "--tls-verify=false", "-u", "myuser", "-p", "mypass", &private.host()]);
    let nt = g.ok_as("nexcage network test", "nexcage network test --tls-verify=false");
    assert!(nt.contains(&format!("ok   registry: {} reachable", private.host())), "{nt}");
    let ra = g.ok_as("nexcage registry auth", "nexcage registry auth --tls-verify=false");
    assert!(ra.contains(&format!("ok   registry credentials: {} accepts them", private.host())), "{ra}");
    let bench = g.ok("nexcage performance benchmark");
    assert!(bench.contains("5 cycles") && bench.lines().any(|l| l.starts_with("cycle")), "{bench}");
    for c in ["nexcage memory optimize", "nexcage memory check", "nexcage optimize"] {
        let e = g.refused(c);
        assert!(e.contains("nexcage "), "{c} says what to use: {e}");
    }

    // ---- ZFS
    let lock = zfs_lock();
    g.ok("nexcage zfs create tank/containers");
    assert!(pool.has(&format!("{}/containers", pool.name)));
    let zi: Value = serde_json::from_str(&g.ok("nexcage zfs info")).unwrap();
    assert_eq!((zi["pool"].as_str(), zi["health"].as_str()), (Some(pool.name.as_str()), Some("ONLINE")));
    g.ok("nexcage zfs snapshot tank/containers@backup");
    assert!(pool.has(&format!("{}/containers@backup", pool.name)));
    g.ok("nexcage zfs clone tank/containers@backup tank/containers-clone");
    assert!(pool.has(&format!("{}/containers-clone", pool.name)));
    g.extra(&["zfs", "create", &format!("{}/containers/postgres-db", pool.name)]);
    let snap = g.ok("nexcage zfs snapshot tank/containers/postgres-db@backup-$(date +%Y%m%d)");
    assert!(pool.has(snap.trim()), "{snap}");
    drop(lock);

    // ---- The cache, last: optimize and clear prune what nothing uses.
    g.extra(&["image", "remove", &private_ref]);
    g.ok("nexcage image remove ubuntu:22.04");
    assert!(!g.nexcage(&["image".into(), "inspect".into(), ubuntu_ref.clone()]).output().unwrap().status.success());
    let co = g.ok("nexcage cache optimize");
    assert!(co.contains("freed"), "{co}");
    g.extra(&["image", "pull", "--tls-verify=false", &ubuntu_ref]);
    g.extra(&["create", "--name", &mc, "--image", &ubuntu_ref]);
    let o = g.run_as("nexcage image remove ubuntu:22.04", "nexcage image remove ubuntu:22.04");
    assert!(!o.status.success() && text(&o.stderr).contains("in use"), "{}", text(&o.stderr));
    g.ok("nexcage image remove ubuntu:22.04 --force");
    g.extra(&["delete", "--force", &mc]);
    let cc = g.ok("nexcage cache clear");
    assert!(cc.starts_with("removed "), "{cc}");
    assert_eq!(g.json(&["cache", "stats", "--format", "json"])["unreferencedBlobs"], 0);

    // Every command of the guide was run above or is listed with a reason.
    let missing: Vec<&String> = g.all.iter()
        .filter(|c| !g.covered.contains(*c) && !NOT_RUN.iter().any(|(n, _)| c == n))
        .collect();
    assert!(missing.is_empty(), "guide commands neither run nor mapped: {missing:#?}");
}
