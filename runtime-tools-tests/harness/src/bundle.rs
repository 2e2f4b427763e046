//! Bundle generation: a busybox-static rootfs with the checker, and a
//! config.json that starts from the same defaults as `runc spec`.

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

/// Files a bundle is made from.
#[derive(Debug, Clone)]
pub struct Assets {
    pub busybox: PathBuf,
    pub checker: PathBuf,
    /// busybox applet names, to link in /bin
    pub applets: Vec<String>,
}

impl Assets {
    pub fn find(checker: &Path) -> Result<Assets> {
        let busybox = ["/bin/busybox", "/usr/bin/busybox"]
            .iter()
            .map(PathBuf::from)
            .find(|p| p.exists())
            .context("busybox-static not found (apt-get install busybox-static)")?;
        if !checker.exists() {
            bail!("checker binary {} does not exist (build it static first; see run.sh)", checker.display());
        }
        let out = std::process::Command::new(&busybox)
            .arg("--list")
            .output()
            .with_context(|| format!("run {} --list", busybox.display()))?;
        let applets = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty() && !s.contains('/'))
            .collect();
        Ok(Assets { busybox, checker: checker.to_path_buf(), applets })
    }
}

/// The config.json that every case starts from (`runc spec` defaults,
/// without a terminal, and with a per-container cgroupsPath).
pub fn default_config(cgroups_path: &str) -> Value {
    json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": false,
            "user": {"uid": 0, "gid": 0},
            "args": ["/rtt-checker"],
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
            "cwd": "/",
            "capabilities": {
                "bounding": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
                "effective": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
                "permitted": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
                "ambient": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
            },
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": true
        },
        "root": {"path": "rootfs", "readonly": false},
        "hostname": "rtt",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]},
            {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev", "mode=1777"]}
        ],
        "linux": {
            "cgroupsPath": cgroups_path,
            "resources": {"devices": [{"allow": false, "access": "rwm"}]},
            "namespaces": [{"type": "pid"}, {"type": "network"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}],
            "maskedPaths": ["/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi"],
            "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
        }
    })
}

#[derive(Debug)]
pub struct Bundle {
    pub dir: PathBuf,
    pub rootfs: PathBuf,
    pub config: Value,
}

impl Bundle {
    /// Makes `dir` with `rootfs/` (busybox + links + checker) and a default config.
    pub fn create(dir: &Path, assets: &Assets, cgroups_path: &str) -> Result<Bundle> {
        let rootfs = dir.join("rootfs");
        for d in ["bin", "proc", "sys", "dev", "tmp", "etc", "root", "mnt", "home/user"] {
            std::fs::create_dir_all(rootfs.join(d)).with_context(|| format!("mkdir {}", rootfs.join(d).display()))?;
        }
        let bb = rootfs.join("bin/busybox");
        std::fs::copy(&assets.busybox, &bb).context("copy busybox")?;
        for a in &assets.applets {
            let l = rootfs.join("bin").join(a);
            if !l.exists() {
                std::os::unix::fs::symlink("busybox", &l).with_context(|| format!("link {}", l.display()))?;
            }
        }
        std::fs::copy(&assets.checker, rootfs.join("rtt-checker")).context("copy checker")?;
        std::fs::write(rootfs.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000:user:/home/user:/bin/sh\n")?;
        std::fs::write(rootfs.join("etc/group"), "root:x:0:\ntty:x:5:\nuser:x:1000:\n")?;
        std::fs::write(rootfs.join("etc/marker"), "rootfs\n")?;
        Ok(Bundle { dir: dir.to_path_buf(), rootfs, config: default_config(cgroups_path) })
    }

    /// Sets a value by JSON pointer ("/process/cwd"), creating objects on the way.
    pub fn set(&mut self, pointer: &str, v: Value) -> &mut Self {
        let mut cur = &mut self.config;
        let parts: Vec<&str> = pointer.trim_start_matches('/').split('/').collect();
        for (i, p) in parts.iter().enumerate() {
            if i + 1 == parts.len() {
                match cur {
                    Value::Object(m) => {
                        m.insert(p.to_string(), v);
                    }
                    Value::Array(a) => {
                        if let Ok(ix) = p.parse::<usize>() {
                            if ix < a.len() {
                                a[ix] = v;
                            } else {
                                a.push(v);
                            }
                        }
                    }
                    _ => {}
                }
                break;
            }
            if !cur.get(*p).map(|x| x.is_object() || x.is_array()).unwrap_or(false) {
                if let Value::Object(m) = cur {
                    m.insert(p.to_string(), json!({}));
                }
            }
            cur = match cur {
                Value::Object(m) => m.get_mut(*p).expect("just inserted"),
                _ => return self,
            };
        }
        self
    }

    pub fn remove(&mut self, pointer: &str) -> &mut Self {
        let (parent, last) = pointer.rsplit_once('/').unwrap_or(("", pointer));
        if let Some(Value::Object(m)) = self.config.pointer_mut(parent) {
            m.remove(last);
        }
        self
    }

    /// Appends to an array at `pointer` (creating it).
    pub fn push(&mut self, pointer: &str, v: Value) -> &mut Self {
        if self.config.pointer(pointer).map(|x| !x.is_array()).unwrap_or(true) {
            self.set(pointer, json!([]));
        }
        if let Some(Value::Array(a)) = self.config.pointer_mut(pointer) {
            a.push(v);
        }
        self
    }

    pub fn args(&mut self, args: &[&str]) -> &mut Self {
        self.set("/process/args", json!(args))
    }

    /// process.args = the checker with these checks.
    pub fn checks(&mut self, checks: &[&str]) -> &mut Self {
        let mut a = vec!["/rtt-checker"];
        a.extend_from_slice(checks);
        self.args(&a)
    }

    /// process.args = the checker reading these checks from a JSON file
    /// in the rootfs (/rtt-checks.json).
    pub fn checks_file(&mut self, checks: &[&str]) -> Result<&mut Self> {
        std::fs::write(self.rootfs.join("rtt-checks.json"), serde_json::to_string(checks)?).context("write rtt-checks.json")?;
        Ok(self.args(&["/rtt-checker", "@/rtt-checks.json"]))
    }

    pub fn sh(&mut self, script: &str) -> &mut Self {
        self.args(&["/bin/sh", "-c", script])
    }

    /// Removes the namespace entry of `ty`, if any.
    pub fn drop_ns(&mut self, ty: &str) -> &mut Self {
        if let Some(Value::Array(a)) = self.config.pointer_mut("/linux/namespaces") {
            a.retain(|n| n["type"] != ty);
        }
        self
    }

    /// Sets (or adds) the namespace entry of `ty`, with a path if given.
    pub fn ns(&mut self, ty: &str, path: Option<&str>) -> &mut Self {
        self.drop_ns(ty);
        let mut e = json!({"type": ty});
        if let Some(p) = path {
            e["path"] = json!(p);
        }
        self.push("/linux/namespaces", e)
    }

    pub fn drop_mount(&mut self, dest: &str) -> &mut Self {
        if let Some(Value::Array(a)) = self.config.pointer_mut("/mounts") {
            a.retain(|m| m["destination"] != dest);
        }
        self
    }

    pub fn mount(&mut self, v: Value) -> &mut Self {
        self.push("/mounts", v)
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.join("config.json")
    }

    pub fn write(&self) -> Result<()> {
        let s = serde_json::to_string_pretty(&self.config)?;
        std::fs::write(self.config_path(), s).with_context(|| format!("write {}", self.config_path().display()))
    }

    /// A host directory made for the case (for bind mounts and hook logs).
    pub fn host_dir(&self, name: &str) -> Result<PathBuf> {
        let d = self.dir.join(name);
        std::fs::create_dir_all(&d).with_context(|| format!("mkdir {}", d.display()))?;
        Ok(d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b() -> Bundle {
        Bundle { dir: PathBuf::from("/nonexistent"), rootfs: PathBuf::from("/nonexistent/rootfs"), config: default_config("/x") }
    }

    #[test]
    fn set_creates_objects_and_replaces_values() {
        let mut x = b();
        x.set("/process/user/umask", json!(18));
        x.set("/linux/resources/memory", json!({"limit": 1}));
        assert_eq!(x.config["process"]["user"]["umask"], 18);
        assert_eq!(x.config["process"]["user"]["uid"], 0);
        assert_eq!(x.config["linux"]["resources"]["memory"]["limit"], 1);
    }

    #[test]
    fn namespaces_and_mounts_edit() {
        let mut x = b();
        x.ns("network", Some("/proc/1/ns/net"));
        let n: Vec<&Value> = x.config["linux"]["namespaces"].as_array().unwrap().iter().filter(|n| n["type"] == "network").collect();
        assert_eq!(n.len(), 1);
        assert_eq!(n[0]["path"], "/proc/1/ns/net");
        x.drop_mount("/sys");
        assert!(!x.config["mounts"].as_array().unwrap().iter().any(|m| m["destination"] == "/sys"));
        x.push("/hooks/poststop", json!({"path": "/bin/true"}));
        assert_eq!(x.config["hooks"]["poststop"][0]["path"], "/bin/true");
    }
}
