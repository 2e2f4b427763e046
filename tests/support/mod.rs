//! Shared helpers for the engine and differential integration tests
//! (tests/podman.rs, tests/containerd.rs, tests/differential.rs):
//! scratch directories that clean up their mounts, a busybox rootfs and
//! bundle, the nexcage binary, external commands with a timeout, and the
//! SKIP helper.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// Absolute path of the nexcage binary cargo built for this test run.
pub fn nexcage() -> &'static str {
    env!("CARGO_BIN_EXE_nexcage")
}

/// Reports a skipped test. Prints `SKIP <name>: <reason>` on stderr (shown
/// with `--nocapture`) and on stdout; returns so the caller can `return`.
/// With `NEXCAGE_REQUIRE_ENGINES=1` a skip is a failure instead (CI).
pub fn skip(name: &str, reason: &str) {
    if std::env::var("NEXCAGE_REQUIRE_ENGINES").map(|v| v == "1").unwrap_or(false) {
        panic!("SKIP {name}: {reason} (NEXCAGE_REQUIRE_ENGINES=1 forbids skipping)");
    }
    eprintln!("SKIP {name}: {reason}");
    println!("SKIP {name}: {reason}");
}

/// Full path of `cmd` on PATH (or the absolute path itself when it exists).
pub fn which(cmd: &str) -> Option<PathBuf> {
    if cmd.starts_with('/') {
        return Path::new(cmd).exists().then(|| PathBuf::from(cmd));
    }
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into());
    for d in std::env::split_paths(&path).chain(["/usr/sbin".into(), "/sbin".into()]) {
        let p = d.join(cmd);
        if p.is_file() {
            return Some(p);
        }
    }
    None
}

/// The first of `cmds` that is missing, as a SKIP reason.
pub fn missing(cmds: &[&str]) -> Option<String> {
    cmds.iter().find(|c| which(c).is_none()).map(|c| format!("{c} not installed"))
}

/// True when running as root (every test here needs it).
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// A unique suffix for ids and directories: pid plus a per-process counter.
pub fn unique(tag: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!("{tag}-{}-{}", std::process::id(), N.fetch_add(1, Ordering::SeqCst))
}

/// A scratch directory under /tmp, removed on drop after unmounting
/// anything still mounted below it (deepest first, lazily).
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(tag: &str) -> Scratch {
        let d = std::env::temp_dir().join(format!("nexcage-{}", unique(tag)));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        Scratch(d)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
    pub fn join(&self, p: &str) -> PathBuf {
        self.0.join(p)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        unmount_below(&self.0);
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Mount points at or below `dir`, from /proc/self/mountinfo.
pub fn mounts_below(dir: &Path) -> Vec<PathBuf> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let prefix = dir.to_string_lossy().into_owned();
    info.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|m| m.replace("\\040", " "))
        .filter(|m| m == &prefix || m.starts_with(&format!("{prefix}/")))
        .map(PathBuf::from)
        .collect()
}

/// Lazily unmounts every mount at or below `dir`, deepest first.
pub fn unmount_below(dir: &Path) {
    for _ in 0..3 {
        let mut ms = mounts_below(dir);
        if ms.is_empty() {
            return;
        }
        ms.sort_by_key(|m| std::cmp::Reverse(m.as_os_str().len()));
        for m in ms {
            let _ = Command::new("umount").arg("-l").arg(&m).stderr(Stdio::null()).status();
        }
    }
}

/// Builds (once per directory) a busybox rootfs with the repo's script.
pub fn rootfs(dir: &Path) -> PathBuf {
    let r = dir.join("rootfs");
    if !r.join("bin/busybox").exists() {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/bundles/make-rootfs.sh");
        let st = Command::new("sh").arg(script).arg(&r).stdout(Stdio::null()).status().unwrap();
        assert!(st.success(), "make-rootfs.sh failed (is busybox-static installed?)");
    }
    r
}

/// The example spec (bundles/busybox/config.json) as JSON.
pub fn example_spec() -> serde_json::Value {
    serde_json::from_str(include_str!("../../bundles/busybox/config.json")).unwrap()
}

/// Writes a bundle at `dir/name` with its own copy of the rootfs path set to
/// `dir/rootfs`, whose process runs `args`; `edit` may change the spec.
pub fn bundle(dir: &Path, name: &str, args: &[&str], edit: impl FnOnce(&mut serde_json::Value)) -> PathBuf {
    let rootfs = rootfs(dir);
    let b = dir.join(name);
    std::fs::create_dir_all(&b).unwrap();
    let mut spec = example_spec();
    spec["root"]["path"] = serde_json::json!(rootfs);
    spec["process"]["args"] = serde_json::json!(args);
    spec["process"]["terminal"] = false.into();
    edit(&mut spec);
    std::fs::write(b.join("config.json"), serde_json::to_vec_pretty(&spec).unwrap()).unwrap();
    b
}

/// Runs `cmd` with stdin from /dev/null, capturing stdout/stderr, killed
/// (SIGKILL) after `secs` seconds via coreutils `timeout`.
pub fn run_timeout(secs: u64, prog: &str, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new("timeout");
    c.arg("-s").arg("KILL").arg(secs.to_string()).arg(prog).args(args).stdin(Stdio::null());
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap_or_else(|e| panic!("cannot run {prog}: {e}"))
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// One-line description of an Output for assertion messages.
pub fn show(o: &Output) -> String {
    format!("status {:?}, stdout {:?}, stderr {:?}", o.status.code(), text(&o.stdout), text(&o.stderr))
}

/// Polls `f` every 50 ms until it is true or `secs` pass.
pub fn wait_until(secs: u64, mut f: impl FnMut() -> bool) -> bool {
    let end = std::time::Instant::now() + Duration::from_secs(secs);
    loop {
        if f() {
            return true;
        }
        if std::time::Instant::now() > end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Pids of processes whose command line contains `needle`.
pub fn procs_with(needle: &str) -> Vec<i32> {
    let me = std::process::id() as i32;
    let mut v = Vec::new();
    if let Ok(rd) = std::fs::read_dir("/proc") {
        for e in rd.flatten() {
            if let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() {
                if pid == me {
                    continue;
                }
                if let Ok(c) = std::fs::read(format!("/proc/{pid}/cmdline")) {
                    if String::from_utf8_lossy(&c).replace('\0', " ").contains(needle) {
                        v.push(pid);
                    }
                }
            }
        }
    }
    v
}

/// SIGKILLs every process whose command line contains `needle`.
pub fn kill_procs_with(needle: &str) {
    for p in procs_with(needle) {
        let _ = Command::new("kill").arg("-9").arg(p.to_string()).stderr(Stdio::null()).status();
    }
}

// CLI contract helpers: a nexcage invocation with its own `--root`.

/// Runs nexcage with `--root root` and the given arguments; stdio captured, stdin null.
pub fn nx(root: &Path, args: &[&str]) -> Output {
    Command::new(nexcage())
        .arg("--root")
        .arg(root)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// Like `nx` but for create: the container inherits stdio, so give it files.
pub fn nx_detached(root: &Path, args: &[&str], out: &Path) -> std::process::ExitStatus {
    let f = std::fs::File::create(out).unwrap();
    Command::new(nexcage())
        .arg("--root")
        .arg(root)
        .args(args)
        .stdin(Stdio::null())
        .stdout(f.try_clone().unwrap())
        .stderr(f)
        .status()
        .unwrap()
}

pub fn state(root: &Path, id: &str) -> Option<serde_json::Value> {
    let o = nx(root, &["state", id]);
    o.status.success().then(|| serde_json::from_slice(&o.stdout).unwrap())
}

pub fn status_of(root: &Path, id: &str) -> String {
    state(root, id).map(|v| v["status"].as_str().unwrap().to_string()).unwrap_or_else(|| "absent".into())
}

/// Polls until `id` has status `want` (or 5 s pass).
pub fn wait_status(root: &Path, id: &str, want: &str) -> bool {
    for _ in 0..100 {
        if status_of(root, id) == want {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    false
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// True when a cgroup named after `id` exists in any v1 hierarchy.
pub fn cgroup_exists(id: &str) -> bool {
    let out = Command::new("find").args(["/sys/fs/cgroup", "-maxdepth", "3", "-type", "d", "-name", &format!("*{id}*")]).output().unwrap();
    !out.stdout.is_empty()
}
