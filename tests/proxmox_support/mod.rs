//! Shared setup of the Proxmox-backend integration tests: one environment
//! per test (own pool, own pve-double, own LXC path) made by
//! scripts/proxmox-test-env.sh; real LXC, real zfs-fuse, only Proxmox's
//! control plane is the double. Missing components: a SKIP line, no failure.
#![allow(dead_code)]

pub mod podman;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub fn nexcage() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_nexcage"))
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn have(bin: &str) -> bool {
    Command::new("sh").arg("-c").arg(format!("command -v {bin}")).stdout(Stdio::null()).status().is_ok_and(|s| s.success())
}

/// Returns why the tests cannot run here, if so.
pub fn missing(extra: &[&str]) -> Option<String> {
    if !nix_root() {
        return Some("not root".into());
    }
    for b in ["lxc-execute", "lxc-info", "zfs-fuse", "zfs", "zpool"].iter().chain(extra) {
        if !have(b) {
            return Some(format!("{b} not installed"));
        }
    }
    let schema = repo().join("crates/pve/schema/pve-api-subset.json");
    if !schema.exists() && std::env::var_os("PVE_DOUBLE_SCHEMA").is_none() {
        return Some(format!("Proxmox API schema not found at {}", schema.display()));
    }
    None
}

fn nix_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("Uid:")).map(|l| l.split_whitespace().nth(1) == Some("0")))
        .unwrap_or(false)
}

/// Skips the calling test (returns from it) when a component is missing.
#[macro_export]
macro_rules! env_or_skip {
    ($name:expr, $driver:expr $(, $extra:expr)*) => {
        match $crate::proxmox_support::missing(&[$($extra),*]) {
            Some(why) => {
                eprintln!("SKIP {}: {}", $name, why);
                return;
            }
            None => $crate::proxmox_support::Env::up($name, $driver),
        }
    };
}

pub struct Env {
    /// Held for the test's lifetime: zfs-fuse hangs under concurrent
    /// pool/dataset churn, so environments (across test binaries) take turns.
    _lock: std::fs::File,
    pub dir: PathBuf,
    pub pool: String,
    pub driver: String,
    pub root: PathBuf,
    /// When the environment was made.
    pub started: std::time::SystemTime,
}

impl Env {
    pub fn up(name: &str, driver: &str) -> Env {
        Self::up_with(name, driver, None)
    }

    /// As `up`, with the double's API on 127.0.0.1 inside the network
    /// namespace `netns` (an `ip netns` name) rather than the host's: for a
    /// runtime that runs there (containerd's CRI, tests/cri.rs), with no
    /// traffic leaving the namespace.
    pub fn up_in_netns(name: &str, driver: &str, netns: &str) -> Env {
        Self::up_with(name, driver, Some(netns))
    }

    fn up_with(name: &str, driver: &str, netns: Option<&str>) -> Env {
        let lock = std::fs::File::create("/var/tmp/nexcage-proxmox-tests.lock").expect("lock file");
        // SAFETY: flock on an fd we own; blocks until the previous test is done.
        let r = unsafe { libc::flock(std::os::fd::AsRawFd::as_raw_fd(&lock), libc::LOCK_EX) };
        assert_eq!(r, 0, "flock");
        let dir = PathBuf::from(format!("/var/tmp/nxpx-{name}-{driver}"));
        let pool = format!("nxpx{}", fnv(&format!("{name}-{driver}")) % 100000);
        let script = repo().join("scripts/proxmox-test-env.sh");
        let _ = Command::new(&script).args(["down"]).arg(&dir).env("NEXCAGE_TEST_POOL", &pool).status();
        let mut up = Command::new(&script);
        up.args(["up"]).arg(&dir).env("NEXCAGE_TEST_POOL", &pool);
        if let Some(ns) = netns {
            up.env("NEXCAGE_TEST_NETNS", ns);
        }
        let out = up.output().expect("run proxmox-test-env.sh");
        assert!(out.status.success(), "test env up: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        let root = dir.join("run");
        Env { _lock: lock, dir, pool, driver: driver.to_string(), root, started: std::time::SystemTime::now() }
    }

    pub fn config(&self) -> PathBuf {
        self.dir.join(format!("config-{}.json", self.driver))
    }

    pub fn path_var(&self) -> String {
        format!("{}:{}", self.dir.join("bin").display(), std::env::var("PATH").unwrap_or_default())
    }

    /// A command with the env a runtime needs here (config + pct wrappers).
    pub fn cmd(&self, bin: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new(bin);
        c.env("NEXCAGE_CONFIG", self.config()).env("PATH", self.path_var());
        c
    }

    /// Runs nexcage with stdout/stderr in files, not pipes: a holder
    /// (created container) keeps them open, so reading a pipe to EOF would hang.
    pub fn nx(&self, args: &[&str]) -> Output {
        let mut c = self.cmd(nexcage());
        c.arg("--root").arg(&self.root).args(args);
        run_to_files(&mut c, &self.dir)
    }

    pub fn pct_list(&self) -> String {
        let o = self.cmd("pct").arg("list").output().expect("pct list");
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// Guest VMIDs registered with the double.
    pub fn guests(&self) -> Vec<u32> {
        self.pct_list().lines().skip(1).filter_map(|l| l.split_whitespace().next()?.parse().ok()).collect()
    }

    pub fn datasets(&self) -> Vec<String> {
        let o = Command::new("zfs").args(["list", "-H", "-o", "name", "-r"]).arg(&self.pool).output().expect("zfs list");
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .filter(|l| l.contains("subvol-"))
            .map(String::from)
            .collect()
    }

    pub fn lxc_dirs(&self) -> Vec<String> {
        std::fs::read_dir(self.dir.join("lxc")).map(|d| d.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect()).unwrap_or_default()
    }

    /// This environment's Proxmox-backend state dirs under the root. A
    /// shared root (`/run/nexcage`, as Podman's exit command needs) may
    /// hold another environment's: a journal naming an LXC path outside
    /// this environment's dir, or one older than it, is not counted.
    pub fn states(&self) -> Vec<String> {
        let ours = |e: &std::fs::DirEntry| {
            let j = e.path().join("proxmox.json");
            let Ok(t) = std::fs::read_to_string(&j) else { return false };
            match serde_json::from_str::<serde_json::Value>(&t).ok().and_then(|v| v["lxc_path"].as_str().map(String::from)) {
                Some(p) => std::path::Path::new(&p).starts_with(&self.dir),
                None => j.metadata().and_then(|m| m.modified()).is_ok_and(|t| t >= self.started),
            }
        };
        std::fs::read_dir(&self.root)
            .map(|d| d.flatten().filter(ours).map(|e| e.file_name().to_string_lossy().into_owned()).collect())
            .unwrap_or_default()
    }

    /// Nothing of any container is left: no guest, dataset, LXC dir, state.
    pub fn assert_clean(&self, what: &str) {
        // Engines delete asynchronously (podman's --rm runs after run returns).
        wait_until(20, || self.guests().is_empty() && self.datasets().is_empty() && self.lxc_dirs().is_empty() && self.states().is_empty());
        assert!(self.guests().is_empty(), "{what}: guests left: {}", self.pct_list());
        assert!(self.datasets().is_empty(), "{what}: datasets left: {:?}", self.datasets());
        assert!(self.lxc_dirs().is_empty(), "{what}: LXC dirs left: {:?}", self.lxc_dirs());
        assert!(self.states().is_empty(), "{what}: state dirs left: {:?}", self.states());
        let cgroups = || -> Vec<String> {
            let mut v = Vec::new();
            for root in std::fs::read_dir("/sys/fs/cgroup").into_iter().flatten().flatten() {
                for e in std::fs::read_dir(root.path()).into_iter().flatten().flatten() {
                    let n = e.file_name().to_string_lossy().to_string();
                    if n.starts_with("lxc.payload.") || n.starts_with("lxc.monitor.") {
                        v.push(e.path().display().to_string());
                    }
                }
            }
            v
        };
        wait_until(5, || cgroups().is_empty());
        assert!(cgroups().is_empty(), "{what}: LXC cgroups left: {:?}", cgroups());
        let lxc = self.dir.join("lxc");
        let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
        let left: Vec<&str> = mounts.lines().filter(|l| l.split(' ').nth(1).is_some_and(|m| m.starts_with(lxc.to_str().unwrap_or("-")))).collect();
        assert!(left.is_empty(), "{what}: mounts left under the LXC dir: {left:?}");
        // The node cache lives in the data dir, never in a state root.
        // (A shared root such as /run/nexcage may hold older runs' files.)
        let caches: Vec<String> = std::fs::read_dir(&self.root)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.metadata().and_then(|m| m.modified()).is_ok_and(|t| t >= self.started))
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains("proxmox-node-"))
            .collect();
        assert!(caches.is_empty(), "{what}: node cache files in the root {}: {caches:?}", self.root.display());
        let v = std::fs::read_to_string(self.dir.join("state/violations.log")).unwrap_or_default();
        assert!(v.is_empty(), "{what}: schema violations: {v}");
    }

    pub fn set_faults(&self, lines: &str) {
        std::fs::write(self.dir.join("state/faults"), lines).expect("write faults");
    }

    /// A busybox bundle whose process runs `args`.
    pub fn bundle(&self, name: &str, args: &[&str], edit: impl FnOnce(&mut serde_json::Value)) -> PathBuf {
        let b = self.dir.join("bundles").join(name);
        let rootfs = b.join("rootfs");
        if !rootfs.join("bin/busybox").exists() {
            let st = Command::new(repo().join("bundles/make-rootfs.sh")).arg(&rootfs).stdout(Stdio::null()).status().expect("make-rootfs");
            assert!(st.success(), "make-rootfs.sh failed");
        }
        let text = std::fs::read_to_string(repo().join("bundles/busybox/config.json")).expect("example config");
        let mut v: serde_json::Value = serde_json::from_str(&text).expect("example config json");
        v["process"]["terminal"] = false.into();
        v["process"]["args"] = args.iter().map(|a| serde_json::Value::from(*a)).collect();
        v["root"]["path"] = "rootfs".into();
        edit(&mut v);
        std::fs::write(b.join("config.json"), serde_json::to_vec_pretty(&v).expect("json")).expect("write config.json");
        b
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        if std::env::var_os("NEXCAGE_TEST_KEEP").is_some() {
            return;
        }
        let _ = Command::new(repo().join("scripts/proxmox-test-env.sh")).arg("down").arg(&self.dir).env("NEXCAGE_TEST_POOL", &self.pool).output();
    }
}

/// Runs `c` with stdin null and stdout/stderr captured through files.
pub fn run_to_files(c: &mut Command, dir: &Path) -> Output {
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let (o, e) = (dir.join(format!(".out-{n}")), dir.join(format!(".err-{n}")));
    let status = c
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&o).expect("out file"))
        .stderr(std::fs::File::create(&e).expect("err file"))
        .status()
        .expect("run command");
    let out = Output { status, stdout: std::fs::read(&o).unwrap_or_default(), stderr: std::fs::read(&e).unwrap_or_default() };
    let _ = std::fs::remove_file(o);
    let _ = std::fs::remove_file(e);
    out
}

fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf29ce484222325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100000001b3))
}

pub fn out(o: &Output) -> String {
    format!("status {:?}\nstdout: {}\nstderr: {}", o.status.code(), String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

pub fn wait_until(secs: u64, mut f: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while std::time::Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    f()
}

pub fn exists(p: &Path) -> bool {
    p.exists()
}
