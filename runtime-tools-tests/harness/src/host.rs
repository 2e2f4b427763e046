//! Facts about the host, probed once per suite run. Skips are decided from
//! these alone, so a case is skipped for every runtime alike.

use anyhow::{Context, Result};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub struct Host {
    /// v1 controller name -> mount point
    pub cgroup_v1: BTreeMap<String, PathBuf>,
    /// controllers enabled in the cgroup2 hierarchy, if one is mounted
    pub cgroup_v2_controllers: Vec<String>,
    pub cgroup_v2_mount: Option<PathBuf>,
    /// our own cgroup per v1 controller (relative cgroupsPath lands below it)
    pub own_cgroup: BTreeMap<String, String>,
    pub cap_bnd: u64,
    pub cap_eff: u64,
    pub nofile_hard: u64,
    pub apparmor: bool,
    pub selinux: bool,
    pub user_ns: bool,
}

pub const CAP_SYS_RESOURCE: u64 = 1 << 24;

fn status_hex(s: &str, field: &str) -> u64 {
    s.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .unwrap_or(0)
}

impl Host {
    pub fn probe() -> Result<Host> {
        let mi = std::fs::read_to_string("/proc/self/mountinfo").context("read mountinfo")?;
        let mut v1 = BTreeMap::new();
        let mut v2 = None;
        for l in mi.lines() {
            let f: Vec<&str> = l.split(' ').collect();
            let Some(d) = f.iter().position(|x| *x == "-") else { continue };
            let (point, fstype) = (f[4], f.get(d + 1).copied().unwrap_or(""));
            let sopts = f.get(d + 3).copied().unwrap_or("");
            if fstype == "cgroup" {
                for o in sopts.split(',') {
                    let known = [
                        "cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "pids", "hugetlb",
                        "net_cls", "net_prio", "perf_event", "rdma", "misc",
                    ];
                    if known.contains(&o) || o.starts_with("name=") {
                        v1.insert(o.to_string(), PathBuf::from(point));
                    }
                }
            } else if fstype == "cgroup2" {
                v2 = Some(PathBuf::from(point));
            }
        }
        let v2c = match &v2 {
            Some(p) => std::fs::read_to_string(p.join("cgroup.controllers"))
                .unwrap_or_default()
                .split_whitespace()
                .map(String::from)
                .collect(),
            None => vec![],
        };
        let mut own = BTreeMap::new();
        for l in std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default().lines() {
            let mut it = l.splitn(3, ':');
            let (_, ctrls, path) = (it.next(), it.next().unwrap_or(""), it.next().unwrap_or(""));
            for c in ctrls.split(',').filter(|c| !c.is_empty()) {
                own.insert(c.to_string(), path.to_string());
            }
        }
        let st = std::fs::read_to_string("/proc/self/status").context("read status")?;
        let mut rl = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        // SAFETY: rl is a valid, writable rlimit struct.
        unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) };
        Ok(Host {
            cgroup_v1: v1,
            cgroup_v2_controllers: v2c,
            cgroup_v2_mount: v2,
            own_cgroup: own,
            cap_bnd: status_hex(&st, "CapBnd"),
            cap_eff: status_hex(&st, "CapEff"),
            nofile_hard: rl.rlim_max,
            apparmor: std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
                .map(|s| s.trim() == "Y")
                .unwrap_or(false),
            selinux: Path::new("/sys/fs/selinux/enforce").exists(),
            user_ns: std::fs::read_to_string("/proc/sys/user/max_user_namespaces")
                .map(|s| s.trim() != "0")
                .unwrap_or(false),
        })
    }

    /// Pure cgroup v2 host (no v1 controllers at all).
    pub fn cgroup_v2_only(&self) -> bool {
        self.cgroup_v1.is_empty() && self.cgroup_v2_mount.is_some()
    }

    pub fn need_v1(&self, ctrls: &[&str]) -> Option<String> {
        let missing: Vec<&str> = ctrls.iter().copied().filter(|c| !self.cgroup_v1.contains_key(*c)).collect();
        if missing.is_empty() {
            None
        } else {
            Some(format!("host has no cgroup v1 {} controller (these cases check v1 files)", missing.join(",")))
        }
    }

    /// The host directory of `pid`'s cgroup for a v1 controller.
    pub fn cgroup_dir(&self, pid: i32, ctrl: &str) -> Result<PathBuf> {
        let mnt = self.cgroup_v1.get(ctrl).with_context(|| format!("no v1 {ctrl} mount"))?;
        let s = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).with_context(|| format!("read /proc/{pid}/cgroup"))?;
        for l in s.lines() {
            let mut it = l.splitn(3, ':');
            let (_, ctrls, path) = (it.next(), it.next().unwrap_or(""), it.next().unwrap_or(""));
            if ctrls.split(',').any(|c| c == ctrl) {
                return Ok(mnt.join(path.trim_start_matches('/')));
            }
        }
        anyhow::bail!("pid {pid} has no {ctrl} cgroup")
    }

    /// The cgroup path (as in /proc/pid/cgroup) of `pid` for a controller.
    pub fn cgroup_path(&self, pid: i32, ctrl: &str) -> Result<String> {
        let s = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).with_context(|| format!("read /proc/{pid}/cgroup"))?;
        for l in s.lines() {
            let mut it = l.splitn(3, ':');
            let (_, ctrls, path) = (it.next(), it.next().unwrap_or(""), it.next().unwrap_or(""));
            if ctrls.split(',').any(|c| c == ctrl) {
                return Ok(path.to_string());
            }
        }
        anyhow::bail!("pid {pid} has no {ctrl} cgroup")
    }

    /// Every directory where cgroups named `prefix*` made by this run may live:
    /// below each controller's root and below our own cgroup.
    pub fn cgroup_parents(&self) -> Vec<PathBuf> {
        let mut v = Vec::new();
        for (c, m) in &self.cgroup_v1 {
            v.push(m.clone());
            if let Some(own) = self.own_cgroup.get(c) {
                if own != "/" {
                    v.push(m.join(own.trim_start_matches('/')));
                }
            }
        }
        if let Some(m) = &self.cgroup_v2_mount {
            v.push(m.clone());
        }
        v.sort();
        v.dedup();
        v
    }
}

/// Removes cgroup directories named `prefix*` under the given parents, killing
/// any process still in them first. Returns what had to be removed.
pub fn remove_cgroups(parents: &[PathBuf], prefix: &str) -> Vec<PathBuf> {
    let mut removed = Vec::new();
    for p in parents {
        let Ok(rd) = std::fs::read_dir(p) else { continue };
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with(prefix) && e.path().is_dir() {
                rm_cgroup_tree(&e.path());
                removed.push(e.path());
            }
        }
    }
    removed
}

fn rm_cgroup_tree(d: &Path) {
    if let Ok(rd) = std::fs::read_dir(d) {
        for e in rd.flatten() {
            if e.path().is_dir() {
                rm_cgroup_tree(&e.path());
            }
        }
    }
    for _ in 0..50 {
        // thaw (v1 freezer) so that killed processes can die
        let _ = std::fs::write(d.join("freezer.state"), "THAWED");
        if let Ok(s) = std::fs::read_to_string(d.join("cgroup.procs")) {
            for pid in s.split_whitespace().filter_map(|x| x.parse::<i32>().ok()) {
                crate::sys::kill(pid, libc::SIGKILL);
            }
        }
        if std::fs::remove_dir(d).is_ok() || !d.exists() {
            return;
        }
        crate::sys::reap_zombies();
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}
