//! Helpers for the CLI contract tests: a busybox bundle in a temp dir and a
//! nexcage invocation with its own `--root`.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub fn nexcage() -> &'static str {
    env!("CARGO_BIN_EXE_nexcage")
}

/// A scratch directory removed on drop.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(tag: &str) -> Scratch {
        let d = std::env::temp_dir().join(format!("nexcage-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        Scratch(d)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
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

/// Writes a bundle at `dir/name` whose process runs `args`; `edit` may change the spec.
pub fn bundle(dir: &Path, name: &str, args: &[&str], edit: impl FnOnce(&mut serde_json::Value)) -> PathBuf {
    let rootfs = rootfs(dir);
    let b = dir.join(name);
    std::fs::create_dir_all(&b).unwrap();
    let mut spec: serde_json::Value =
        serde_json::from_str(include_str!("../../bundles/busybox/config.json")).unwrap();
    spec["root"]["path"] = serde_json::json!(rootfs);
    spec["process"]["args"] = serde_json::json!(args);
    spec["process"]["terminal"] = false.into();
    edit(&mut spec);
    std::fs::write(b.join("config.json"), serde_json::to_vec_pretty(&spec).unwrap()).unwrap();
    b
}

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

/// Pids of processes whose command line mentions `needle`.
pub fn procs_with(needle: &str) -> Vec<i32> {
    let mut v = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() {
            if let Ok(c) = std::fs::read(format!("/proc/{pid}/cmdline")) {
                if String::from_utf8_lossy(&c).replace('\0', " ").contains(needle) {
                    v.push(pid);
                }
            }
        }
    }
    v
}
