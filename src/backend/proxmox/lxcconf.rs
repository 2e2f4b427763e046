//! The LXC settings the guest runs with, rendered from the mapped Proxmox
//! config into `<lxc_path>/<vmid>/nexcage.conf` (`include.rs`): nexcage
//! starts the guest from them (`nexcage-start.conf`), and the config
//! Proxmox regenerates includes them last, so they are what LXC enforces.
//! (Read by nexcage's monitor through liblxc, `holder.rs`.)
//!
//! Cgroup limits are written for the host's cgroup layout: v1 keys
//! (`lxc.cgroup.*`) on legacy/hybrid hosts (like the test machines), v2 keys
//! (`lxc.cgroup2.*`) on pure v2 hosts (Proxmox VE 8/9; tests/proxmox_cgroup2.rs
//! runs them in a cgroup-v2 VM). LXC refuses to start when a key names a
//! controller that is not mounted, hence not both.

use std::fmt::Write as _;
use std::path::Path;

use libcontainer::oci_spec::runtime::LinuxResources;
use nexcage_pve::mapping::PveConfig;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CgroupMode {
    /// cgroup v1 controllers (legacy or hybrid).
    V1,
    /// Unified hierarchy only.
    V2,
}

impl CgroupMode {
    pub fn detect() -> CgroupMode {
        if Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
            CgroupMode::V2
        } else {
            CgroupMode::V1
        }
    }
}

pub struct Inputs<'a> {
    pub vmid: u32,
    pub rootfs: &'a Path,
    pub pve: &'a PveConfig,
    pub mode: CgroupMode,
    /// The bundle's `linux.cgroupsPath`, if any.
    pub cgroups_path: Option<&'a Path>,
    /// The bundle's `linux.resources`: on cgroup v1, `cpu.shares` is
    /// written as is (Proxmox's `cpuunits` is a v2 weight, and back is
    /// lossy) and `memory.memsw.limit_in_bytes` only when `memory.swap` is
    /// set, as runc (else a later `update` of the memory limit alone would
    /// exceed it).
    pub resources: Option<&'a LinuxResources>,
}

/// The complete config file text.
pub fn render(i: &Inputs) -> String {
    let mut s = String::new();
    let mut put = |k: &str, v: &str| {
        let _ = writeln!(s, "{k} = {v}");
    };
    let keeps = |ns: &str| keeps_ns(i.pve, ns);
    if keeps("uts") {
        // The host's UTS namespace: LXC must not set its hostname (an empty
        // value clears what PVE's `config` sets; the mapping refuses a
        // `hostname` without a UTS namespace of the guest's own).
        put("lxc.uts.name", "");
    } else {
        put("lxc.uts.name", i.pve.keys.get("hostname").map(String::as_str).unwrap_or(&format!("CT{}", i.vmid)));
    }
    put("lxc.rootfs.path", &format!("dir:{}", i.rootfs.display()));
    // The monitor's stdio passes straight to the container (no console pty).
    put("lxc.console.path", "none");
    put("lxc.tty.max", "0");
    put("lxc.pty.max", "1024");
    // The bundle's profile (`process.apparmorProfile`, checked at create:
    // lsm.rs), else none, as under runc: not PVE's `generated` one, which
    // forbids mounts the OCI spec allows.
    let profile = i.pve.lxc.iter().find(|(k, _)| k == "lxc.apparmor.profile").map(|(_, v)| v.as_str());
    put("lxc.apparmor.profile", profile.unwrap_or("unconfined"));
    // nexcage's monitor names the init itself; anyone else's start gets
    // nexcage-init's refusal (guest_init.rs).
    put("lxc.init.cmd", super::guest_init::PVE_CMD);
    // `pct shutdown` (and a node's stop-all) send the halt signal to the
    // guest's PID 1, the application after start: make it the OCI stop
    // signal engines send (SIGTERM), not LXC's SIGPWR (PROXMOX-FACTS §10).
    put("lxc.signal.halt", "SIGTERM");
    let has = |k: &str| i.pve.lxc.iter().any(|(x, _)| x == k);
    if !has("lxc.autodev") {
        put("lxc.autodev", "1");
    }
    if !has("lxc.net.0.type") && !i.pve.keys.contains_key("net0") {
        put("lxc.net.0.type", "empty");
    }
    for (k, v) in super::net::render(i.vmid, &i.pve.keys, super::net::have_addbr()) {
        put(&k, &v);
    }
    if let Some(env) = i.pve.keys.get("env") {
        for e in env.split('\0').filter(|e| !e.is_empty()) {
            put("lxc.environment", e);
        }
    }
    // In a user namespace sysfs mounts only for a network namespace it owns:
    // with the host's network, bind the host's /sys read-only instead.
    let userns = i.pve.lxc.iter().chain(i.pve.exec.lxc.iter()).any(|(k, _)| k == "lxc.idmap");
    let bind_sys = userns && keeps("net");
    for (k, v) in i.pve.lxc.iter().chain(i.pve.exec.lxc.iter()) {
        match k.as_str() {
            "lxc.mount.auto" if bind_sys => {
                let keep: Vec<&str> = v.split_whitespace().filter(|t| !t.starts_with("sys")).collect();
                if !keep.is_empty() {
                    put(k, &force_cgroup(&keep.join(" ")));
                }
                put("lxc.mount.entry", "/sys sys none rbind,ro,create=dir 0 0");
            }
            "lxc.mount.auto" => put(k, &force_cgroup(v)),
            // The process reaches the guest through nexcage-init at start.
            "lxc.init.cmd" | "lxc.apparmor.profile" => {}
            "lxc.mount.entry" if bind_sys && MountEntry::parse(v).is_some_and(|e| e.fields[2] == "sysfs" && e.target() == "sys") => {
                put(k, "/sys sys none rbind,ro,create=dir 0 0");
            }
            // nexcage-init applies these itself, in runc's order (groups,
            // uid/gid, the five capability sets, noNewPrivileges, seccomp;
            // guest_init.rs); nexcage writes oomScoreAdj to itself at create,
            // as runc does. LXC keeps the full capability set the guest
            // allows: the init drops the bounding set to the bundle's.
            "lxc.init.uid" | "lxc.init.gid" | "lxc.init.groups" | "lxc.cap.keep" | "lxc.no_new_privs" | "lxc.proc.oom_score_adj" => {}
            "lxc.mount.entry" => put(k, &with_create(v)),
            "lxc.net.0.type" => put(k, if v == "none" { "empty" } else { v }),
            // Keeping the host's cgroup namespace breaks LXC's /dev setup
            // ("Failed to create directory dev/pts"): the guest gets its own.
            "lxc.namespace.keep" => {
                let keep: Vec<&str> = v.split_whitespace().filter(|n| *n != "cgroup").collect();
                if !keep.is_empty() {
                    put(k, &keep.join(" "));
                }
            }
            _ if k.starts_with("lxc.cgroup2.") => {
                if let Some((k1, v1)) = cgroup_key(k, v, i.mode) {
                    put(&k1, &v1);
                    // runc allows the standard devices after "deny all"; LXC does not.
                    if k1.ends_with("devices.deny") && v1.trim() == "a" {
                        let allow = k1.replace("devices.deny", "devices.allow");
                        for d in DEFAULT_DEVICES {
                            put(&allow, d);
                        }
                    }
                }
            }
            _ => put(k, v),
        }
    }
    for (k, v) in limits(i.pve, i.mode, i.resources) {
        put(&k, &v);
    }
    for (k, v) in cgroup_dirs(i.cgroups_path, i.vmid) {
        put(k, &v);
    }
    if super::paths::readonly_root(i.pve) {
        put("lxc.rootfs.options", "ro");
    }
    for e in super::paths::entries(i.rootfs, i.pve) {
        put("lxc.mount.entry", &e);
    }
    s
}

/// Whether the guest keeps the host's namespace `ns` (LXC's name: `net`,
/// `ipc`, `uts`, ...; `lxc.namespace.keep`).
pub fn keeps_ns(pve: &PveConfig, ns: &str) -> bool {
    pve.exec.lxc.iter().any(|(k, v)| k == "lxc.namespace.keep" && v.split_whitespace().any(|n| n == ns))
}

/// LXC skips a `cgroup` automount for a guest that keeps CAP_SYS_ADMIN in a
/// cgroup namespace (it "can mount it itself"); the guest keeps every
/// capability until nexcage-init drops them, so the mount is forced.
fn force_cgroup(auto: &str) -> String {
    let forced: Vec<String> = auto
        .split_whitespace()
        .map(|t| if t.starts_with("cgroup") && !t.ends_with(":force") { format!("{t}:force") } else { t.to_string() })
        .collect();
    forced.join(" ")
}

/// Where the guest's cgroup goes: the bundle's `linux.cgroupsPath` as
/// LXC's container dir (its init and processes sit right there, no inner
/// dir), from each hierarchy's root (create resolves a relative one, see
/// `guest_cgroup::resolve`). LXC
/// wants the monitor's dir set too: `lxc.monitor.<vmid>` beside it. A
/// container dir that exists makes LXC fail, as LXC creates it (and
/// removes it when the guest ends). Without a path LXC's own layout,
/// `lxc.payload.<vmid>`.
fn cgroup_dirs(path: Option<&Path>, vmid: u32) -> Vec<(&'static str, String)> {
    let Some(p) = path.and_then(|p| p.to_str()).filter(|p| !p.trim_matches('/').is_empty()) else { return Vec::new() };
    vec![("lxc.cgroup.dir.container", p.trim_matches('/').to_string()), ("lxc.cgroup.dir.monitor", format!("lxc.monitor.{vmid}"))]
}

/// The devices every OCI container may use (runc's default allow list).
const DEFAULT_DEVICES: [&str; 9] =
    ["c 1:3 rwm", "c 1:5 rwm", "c 1:7 rwm", "c 1:8 rwm", "c 1:9 rwm", "c 5:0 rwm", "c 5:1 rwm", "c 5:2 rwm", "c 136:* rwm"];

/// A `lxc.cgroup2.*` key from the mapping, for the host's layout.
fn cgroup_key(k: &str, v: &str, mode: CgroupMode) -> Option<(String, String)> {
    if mode == CgroupMode::V2 {
        return Some((k.to_string(), v.to_string()));
    }
    let file = k.strip_prefix("lxc.cgroup2.")?;
    let v1 = match file {
        "pids.max" | "cpuset.cpus" | "cpuset.mems" | "devices.allow" | "devices.deny" => file.to_string(),
        "memory.low" => "memory.soft_limit_in_bytes".to_string(),
        _ => {
            tracing::warn!("{k} has no cgroup v1 equivalent on this host: not applied");
            return None;
        }
    };
    Some((format!("lxc.cgroup.{v1}"), v.to_string()))
}

/// Proxmox keys that are limits in the guest's cgroup (memory, swap, cpulimit, cpuunits).
fn limits(pve: &PveConfig, mode: CgroupMode, res: Option<&LinuxResources>) -> Vec<(String, String)> {
    let shares = res.and_then(|r| r.cpu().as_ref()).and_then(|c| c.shares());
    let spec_swap = res.and_then(|r| r.memory().as_ref()).and_then(|m| m.swap()).is_some();
    let num = |k: &str| pve.keys.get(k).and_then(|v| v.parse::<f64>().ok());
    let mut out = Vec::new();
    let mem = num("memory").map(|m| (m * 1048576.0) as u64);
    let swap = num("swap").map(|m| (m * 1048576.0) as u64);
    match mode {
        CgroupMode::V1 => {
            if let Some(m) = mem {
                out.push(("lxc.cgroup.memory.limit_in_bytes".into(), m.to_string()));
                // memsw only exists with swap accounting; LXC would fail on it otherwise.
                if let Some(sw) = swap.filter(|_| spec_swap && Path::new("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes").exists()) {
                    out.push(("lxc.cgroup.memory.memsw.limit_in_bytes".into(), (m + sw).to_string()));
                }
            }
            if let Some(c) = num("cpulimit").filter(|c| *c > 0.0) {
                out.push(("lxc.cgroup.cpu.cfs_period_us".into(), "100000".into()));
                out.push(("lxc.cgroup.cpu.cfs_quota_us".into(), ((c * 100000.0) as u64).to_string()));
            }
            if let Some(sh) = shares.filter(|s| *s > 0) {
                out.push(("lxc.cgroup.cpu.shares".into(), sh.to_string()));
            } else if let Some(u) = num("cpuunits") {
                // Proxmox's weight (1..10000, default 100) back to shares (default 1024).
                out.push(("lxc.cgroup.cpu.shares".into(), ((u * 1024.0 / 100.0).max(2.0) as u64).to_string()));
            }
        }
        CgroupMode::V2 => {
            if let Some(m) = mem {
                out.push(("lxc.cgroup2.memory.max".into(), m.to_string()));
                if let Some(sw) = swap {
                    out.push(("lxc.cgroup2.memory.swap.max".into(), sw.to_string()));
                }
            }
            if let Some(c) = num("cpulimit").filter(|c| *c > 0.0) {
                out.push(("lxc.cgroup2.cpu.max".into(), format!("{} 100000", (c * 100000.0) as u64)));
            }
            if let Some(u) = num("cpuunits") {
                out.push(("lxc.cgroup2.cpu.weight".into(), (u as u64).to_string()));
            }
        }
    }
    out
}

/// An `lxc.mount.entry` value: `SOURCE TARGET FSTYPE OPTIONS DUMP PASS`.
pub struct MountEntry<'a> {
    pub fields: Vec<&'a str>,
}

impl<'a> MountEntry<'a> {
    pub fn parse(v: &'a str) -> Option<Self> {
        let fields: Vec<&str> = v.split(' ').collect();
        (fields.len() >= 4).then_some(MountEntry { fields })
    }
    pub fn source(&self) -> &'a str {
        self.fields[0]
    }
    pub fn target(&self) -> &'a str {
        self.fields[1]
    }
    pub fn has_option(&self, o: &str) -> bool {
        self.fields[3].split(',').any(|x| x == o)
    }
    /// A bind mount of a host path.
    pub fn is_bind(&self) -> bool {
        self.has_option("bind") || self.has_option("rbind")
    }
    /// A bind of a host file (not a directory).
    pub fn binds_file(&self) -> bool {
        self.is_bind() && Path::new(self.source()).is_file()
    }
    /// The entry with its source replaced.
    pub fn with_source(&self, src: &str) -> String {
        let mut f = self.fields.clone();
        f[0] = src;
        f.join(" ")
    }
}

/// Bind entries need the target created in the rootfs: a file for a file
/// source, a directory otherwise.
fn with_create(entry: &str) -> String {
    match MountEntry::parse(entry).filter(|e| e.is_bind() && !entry.contains("create=")) {
        Some(e) => {
            let kind = if e.binds_file() { "create=file" } else { "create=dir" };
            let mut f = e.fields.clone();
            let opts = format!("{},{kind}", f[3]);
            f[3] = &opts;
            f.join(" ")
        }
        None => entry.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pve() -> PveConfig {
        let mut p = PveConfig::default();
        p.keys.insert("memory".into(), "64".into());
        p.keys.insert("swap".into(), "0".into());
        p.keys.insert("cpulimit".into(), "0.5".into());
        p.keys.insert("env".into(), "A=1\0B=two words".into());
        p.lxc.push(("lxc.cgroup2.pids.max".into(), "20".into()));
        p.lxc.push(("lxc.init.cmd".into(), "sleep 1".into()));
        p.lxc.push(("lxc.mount.entry".into(), "/proc/self etc/x none bind 0 0".into()));
        p.lxc.push(("lxc.init.uid".into(), "1000".into()));
        p.lxc.push(("lxc.mount.auto".into(), "proc:mixed cgroup:ro".into()));
        p.lxc.push(("lxc.cap.keep".into(), "kill".into()));
        p.exec.lxc.push(("lxc.no_new_privs".into(), "1".into()));
        p
    }

    fn text(mode: CgroupMode) -> String {
        render(&Inputs { vmid: 101, rootfs: Path::new("/tank/subvol-101-disk-0"), pve: &pve(), mode, cgroups_path: None, resources: None })
    }

    #[test]
    fn cgroups_path_is_the_container_dir() {
        let res: LinuxResources = serde_json::from_str(r#"{"cpu":{"shares":512}}"#).unwrap();
        let with = |p: &str| render(&Inputs { vmid: 101, rootfs: Path::new("/r"), pve: &pve(), mode: CgroupMode::V1, cgroups_path: Some(Path::new(p)), resources: Some(&res) });
        let t = with("/kubepods/pod1/c1");
        assert!(t.contains("lxc.cgroup.dir.container = kubepods/pod1/c1\nlxc.cgroup.dir.monitor = lxc.monitor.101\n"), "{t}");
        assert!(!t.contains("lxc.cgroup.relative"));
        assert!(t.contains("lxc.cgroup.cpu.shares = 512\n"), "{t}");
        assert!(!text(CgroupMode::V1).contains("lxc.cgroup.dir"));
    }

    #[test]
    fn v1_keys_on_hybrid_hosts() {
        let t = text(CgroupMode::V1);
        assert!(t.contains("lxc.cgroup.memory.limit_in_bytes = 67108864\n"), "{t}");
        assert!(t.contains("lxc.cgroup.pids.max = 20\n"));
        assert!(t.contains("lxc.cgroup.cpu.cfs_quota_us = 50000\n"));
        assert!(!t.contains("lxc.cgroup2."));
        assert!(t.contains("lxc.rootfs.path = dir:/tank/subvol-101-disk-0\n"));
        assert!(t.contains("lxc.environment = B=two words\n"));
        assert!(t.contains("lxc.init.cmd = /.nexcage/nexcage-init pve\n"));
        assert!(!t.contains("sleep 1"));
        assert!(t.contains("lxc.mount.entry = /proc/self etc/x none bind,create=dir 0 0\n"));
        assert!(t.contains("lxc.mount.auto = proc:mixed cgroup:ro:force\n"), "{t}");
        // nexcage-init's, not LXC's.
        for k in ["lxc.init.uid", "lxc.cap.keep", "lxc.no_new_privs", "lxc.seccomp"] {
            assert!(!t.contains(k), "{k} in {t}");
        }
    }

    #[test]
    fn kept_namespaces() {
        let mut p = pve();
        p.keys.insert("hostname".into(), "h".into());
        p.exec.lxc.push(("lxc.idmap".into(), "u 0 100000 65536".into()));
        p.exec.lxc.push(("lxc.namespace.keep".into(), "cgroup net uts".into()));
        p.lxc.push(("lxc.mount.entry".into(), "sysfs sys sysfs nosuid,ro,create=dir 0 0".into()));
        let t = render(&Inputs { vmid: 101, rootfs: Path::new("/r"), pve: &p, mode: CgroupMode::V1, cgroups_path: None, resources: None });
        // The host's UTS namespace: no hostname set (nor the host's changed).
        assert!(t.contains("lxc.uts.name = \n") && !t.contains("lxc.uts.name = h"), "{t}");
        // The host's network in a user namespace: the host's /sys bound, no sysfs.
        assert!(t.contains("lxc.mount.entry = /sys sys none rbind,ro,create=dir 0 0\n") && !t.contains("sysfs sys sysfs"), "{t}");
        assert!(t.contains("lxc.namespace.keep = net uts\n"), "{t}");
        assert!(keeps_ns(&p, "uts") && !keeps_ns(&p, "ipc"));
    }

    #[test]
    fn apparmor_profile_of_the_bundle() {
        let render_with = |p: &PveConfig| render(&Inputs { vmid: 101, rootfs: Path::new("/r"), pve: p, mode: CgroupMode::V1, cgroups_path: None, resources: None });
        let t = render_with(&pve());
        assert!(t.contains("lxc.apparmor.profile = unconfined\n"), "{t}");
        let mut p = pve();
        p.lxc.push(("lxc.apparmor.profile".into(), "docker-default".into()));
        let t = render_with(&p);
        assert_eq!(t.matches("lxc.apparmor.profile").count(), 1, "{t}");
        assert!(t.contains("lxc.apparmor.profile = docker-default\n"), "{t}");
    }

    #[test]
    fn v2_keys_on_unified_hosts() {
        let t = text(CgroupMode::V2);
        assert!(t.contains("lxc.cgroup2.memory.max = 67108864\n"), "{t}");
        assert!(t.contains("lxc.cgroup2.memory.swap.max = 0\n"));
        assert!(t.contains("lxc.cgroup2.pids.max = 20\n"));
        assert!(t.contains("lxc.cgroup2.cpu.max = 50000 100000\n"));
        assert!(!t.contains("lxc.cgroup.memory"));
    }
}
