//! `update_lxc_config`: the LXC config PVE regenerates from the guest's
//! `/etc/pve/lxc/<vmid>.conf` alone, on every start and every config PUT
//! (PROXMOX-FACTS §2, §10; pve-container src/PVE/LXC.pm `update_lxc_config`).
//!
//! The double plays a host with LXC ≥ 4 and the cgroup v2 memory, cpu and
//! cpuset controllers (every PVE 8/9 node). What it writes differs from a
//! node only where the node reads its own host:
//! * `lxc.include` names `/usr/share/lxc/config/<ostype>.common.conf`
//!   (`.userns.conf`) when that file exists on this host, else
//!   `common.conf` (`userns.conf`), exactly as PVE decides; the files may
//!   be absent here, so the double never runs `lxc-start` on the result
//!   unless it was started with `--real-start`;
//! * the bridge MTU is 1500 (there are no bridges);
//! * `cores` picks the *first* N host CPUs for `lxc.cgroup2.cpuset.cpus`
//!   (PVE picks a random subset), so the output is deterministic.

use nexcage_pve::conffile::Section;
use std::collections::BTreeMap;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

/// Where PVE's LXC include files and `common.seccomp` live.
pub const LXC_CONFIG_PATH: &str = "/usr/share/lxc/config";

/// The host facts `update_lxc_config` reads.
pub struct Host {
    /// `<lxcpath>/<vmid>` (PVE: `/var/lib/lxc/<vmid>`).
    pub dir: PathBuf,
    /// Where `<ostype>.common.conf` etc. are looked up.
    pub config_path: PathBuf,
    /// Online CPUs (for `cores` → cpuset).
    pub cpus: usize,
}

impl Host {
    /// The real host: `/usr/share/lxc/config`, available parallelism.
    pub fn local(dir: PathBuf) -> Host {
        Host {
            dir,
            config_path: PathBuf::from(LXC_CONFIG_PATH),
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
        }
    }
}

/// What `update_lxc_config` produces: the `config` text and, for an
/// unprivileged guest, the `rules.seccomp` it references.
#[derive(Debug, PartialEq, Eq)]
pub struct Rendered {
    pub config: String,
    pub seccomp_rules: Option<String>,
}

/// `a=1,b=2` (and a bare default-key value under `""`).
fn kv(value: &str) -> BTreeMap<String, String> {
    value
        .split(',')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (String::new(), p.to_string()),
        })
        .collect()
}

fn truthy(v: Option<&String>) -> bool {
    v.and_then(|v| nexcage_pve::schema::parse_bool(v))
        .unwrap_or(false)
}

/// Render the LXC config of guest `vmid` (PROXMOX-FACTS §2, items 1-24).
/// `Ok(None)` for a template (PVE deletes the file). Errors use PVE's words
/// ("missing 'rootfs' configuration", "net0: MTU size …").
pub fn render(vmid: u32, s: &Section, host: &Host) -> Result<Option<Rendered>, String> {
    let k = &s.keys;
    if truthy(k.get("template")) {
        return Ok(None);
    }
    let has_raw = |key: &str| s.lxc.iter().any(|(rk, _)| rk == key);
    let mut out = Vec::<String>::new();
    let mut line = |key: &str, v: &str| out.push(format!("{key} = {v}"));
    // 1. LXC >= 4: fixed cgroup layout.
    line("lxc.cgroup.relative", "0");
    line("lxc.cgroup.dir.monitor", &format!("lxc.monitor/{vmid}"));
    line("lxc.cgroup.dir.container", &format!("lxc/{vmid}"));
    line("lxc.cgroup.dir.container.inner", "ns");
    // 2.
    let arch = k.get("arch").ok_or("missing 'arch' - internal error")?;
    line("lxc.arch", arch);
    // 3./4. includes, per-ostype file when it exists.
    let custom_idmap = has_raw("lxc.idmap");
    let unprivileged = truthy(k.get("unprivileged")) || custom_idmap;
    let ostype = k.get("ostype").ok_or("missing 'ostype' - internal error")?;
    let include = |kind: &str| {
        let own = host.config_path.join(format!("{ostype}.{kind}.conf"));
        let path = if own.is_file() {
            own
        } else {
            host.config_path.join(format!("{kind}.conf"))
        };
        path.display().to_string()
    };
    line("lxc.include", &include("common"));
    if unprivileged {
        line("lxc.include", &include("userns"));
    }
    let features = k.get("features").map(|f| kv(f)).unwrap_or_default();
    let feature = |f: &str| truthy(features.get(f));
    // 5. seccomp (make_seccomp_config).
    let mut seccomp_rules = None;
    if !has_raw("lxc.seccomp.profile") && unprivileged {
        let mut rules: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        if !feature("keyctl") {
            rules.insert("keyctl", vec!["errno 38"]);
        }
        rules.insert(
            "ioctl",
            vec!["errno 1 [1,0x9400,SCMP_CMP_MASKED_EQ,0xff00]"],
        );
        rules.insert("socket", vec!["errno 97 [0,38,SCMP_CMP_EQ]"]);
        if feature("mknod") {
            line(
                "lxc.seccomp.notify.proxy",
                "unix:/run/pve-lxc-syscalld/socket",
            );
            line("lxc.seccomp.notify.cookie", &vmid.to_string());
            rules.insert(
                "mknod",
                vec![
                    "notify [1,8192,SCMP_CMP_MASKED_EQ,61440]",
                    "notify [1,24576,SCMP_CMP_MASKED_EQ,61440]",
                ],
            );
            rules.insert(
                "mknodat",
                vec![
                    "notify [2,8192,SCMP_CMP_MASKED_EQ,61440]",
                    "notify [2,24576,SCMP_CMP_MASKED_EQ,61440]",
                ],
            );
        }
        let extra: String = rules
            .iter()
            .flat_map(|(sc, rs)| rs.iter().map(move |r| format!("{sc} {r}\n")))
            .collect();
        let common =
            std::fs::read_to_string(host.config_path.join("common.seccomp")).unwrap_or_default();
        let file = host.dir.join("rules.seccomp");
        line("lxc.seccomp.profile", &file.display().to_string());
        seccomp_rules = Some(common + &extra);
    }
    // 6. AppArmor (make_apparmor_config).
    if !has_raw("lxc.apparmor.profile") {
        line("lxc.apparmor.profile", "generated");
        line("lxc.apparmor.raw", "allow mqueue,");
        if feature("nesting") {
            line("lxc.apparmor.allow_nesting", "1");
            line("lxc.apparmor.raw", "allow userns,");
        } else {
            line("lxc.apparmor.raw", "deny mount -> /proc/,");
            line("lxc.apparmor.raw", "deny mount -> /sys/,");
        }
        if let Some(m) = features.get("mount") {
            for fs in m.split([';', ',', ' ']).filter(|f| !f.is_empty()) {
                line("lxc.apparmor.raw", &format!("mount fstype={fs},"));
            }
        }
    }
    // 7.
    if feature("fuse") {
        line("lxc.apparmor.raw", "mount fstype=fuse,");
        line(
            "lxc.mount.entry",
            "/dev/fuse dev/fuse none bind,create=file 0 0",
        );
    }
    // 8.
    if unprivileged && !feature("force_rw_sys") {
        line("lxc.mount.auto", "sys:mixed");
    }
    // 9.
    if k.get("entrypoint").is_some_and(|e| e != "/sbin/init") {
        line(
            "lxc.mount.entry",
            "shm dev/shm tmpfs rw,nosuid,nodev,create=dir 0 0",
        );
    }
    // 10. devN passthrough.
    for (key, v) in k.iter().filter(|(key, _)| is_indexed(key, "dev")) {
        let d = kv(v);
        let path = d
            .get("path")
            .or_else(|| d.get(""))
            .ok_or_else(|| format!("Path is not defined for passthrough device {key}"))?;
        let md = std::fs::metadata(path).map_err(|e| format!("{path}: {e}"))?;
        let kind = if md.file_type().is_block_device() {
            'b'
        } else {
            'c'
        };
        let (major, minor) = dev_major_minor(md.rdev());
        let deny_write = truthy(d.get("deny-write"));
        let perms = if deny_write { "r" } else { "rw" };
        line(
            "lxc.cgroup2.devices.allow",
            &format!("{kind} {major}:{minor} {perms}"),
        );
        if deny_write {
            line(
                "lxc.cgroup2.devices.deny",
                &format!("{kind} {major}:{minor} w"),
            );
        }
    }
    // 11.-16.
    line("lxc.monitor.unshare", "1");
    if unprivileged && !custom_idmap {
        line("lxc.idmap", "u 0 100000 65536");
        line("lxc.idmap", "g 0 100000 65536");
    }
    if k.get("console").is_some_and(|c| !truthy(Some(c))) {
        line("lxc.console.path", "none");
        line("lxc.cgroup2.devices.deny", "c 5:1 rwm");
    }
    line("lxc.tty.max", k.get("tty").map_or("2", String::as_str));
    line("lxc.environment", "TERM=linux");
    let uts = k
        .get("hostname")
        .cloned()
        .unwrap_or_else(|| format!("CT{vmid}"));
    line("lxc.uts.name", &uts);
    // 17. memory (calculate_memory_constraints).
    let memory: u64 = k.get("memory").and_then(|m| m.parse().ok()).unwrap_or(512);
    let swap: u64 = k.get("swap").and_then(|m| m.parse().ok()).unwrap_or(0);
    let high = memory_high_bytes(memory);
    line(
        "lxc.cgroup2.memory.max",
        &(memory * 1024 * 1024).to_string(),
    );
    line("lxc.cgroup2.memory.high", &high.to_string());
    line(
        "lxc.cgroup2.memory.swap.max",
        &(swap * 1024 * 1024).to_string(),
    );
    // 18. cpu.
    if let Some(l) = k
        .get("cpulimit")
        .and_then(|c| c.parse::<f64>().ok())
        .filter(|l| *l != 0.0)
    {
        line(
            "lxc.cgroup2.cpu.max",
            &format!("{} 100000", (100000.0 * l) as u64),
        );
    }
    if let Some(u) = k.get("cpuunits").and_then(|c| c.parse::<u64>().ok()) {
        line("lxc.cgroup2.cpu.weight", &u.min(10000).to_string());
    }
    // 19./20.
    if !k.contains_key("rootfs") {
        return Err("missing 'rootfs' configuration".into());
    }
    line(
        "lxc.rootfs.path",
        &host.dir.join("rootfs").display().to_string(),
    );
    if let Some(e) = k.get("entrypoint") {
        line("lxc.init.cmd", e);
    }
    // 21. netN in lexical key order (BTreeMap order).
    for (key, v) in k.iter().filter(|(key, _)| is_indexed(key, "net")) {
        let i = &key[3..];
        let d = kv(v);
        line(&format!("lxc.net.{i}.type"), "veth");
        line(
            &format!("lxc.net.{i}.veth.pair"),
            &format!("veth{vmid}i{i}"),
        );
        for opt in ["hwaddr", "name"] {
            if let Some(x) = d.get(opt) {
                line(&format!("lxc.net.{i}.{opt}"), x);
            }
        }
        let bridge_mtu = 1500u32;
        let mtu: u32 = d
            .get("mtu")
            .and_then(|m| m.parse().ok())
            .unwrap_or(bridge_mtu);
        if mtu > bridge_mtu {
            return Err(format!(
                "{key}: MTU size '{mtu}' is bigger than bridge MTU '{bridge_mtu}'"
            ));
        }
        line(&format!("lxc.net.{i}.mtu"), &mtu.to_string());
        line(
            &format!("lxc.net.{i}.script.up"),
            "/usr/share/lxc/lxcnetaddbr",
        );
        if !truthy(d.get("link_down")) && truthy(d.get("host-managed")) {
            let fixed = |x: &&String| !matches!(x.as_str(), "dhcp" | "manual");
            if let Some(ip) = d.get("ip").filter(fixed) {
                line(&format!("lxc.net.{i}.ipv4.address"), ip);
            }
            if let Some(gw) = d.get("gw") {
                line(&format!("lxc.net.{i}.ipv4.gateway"), gw);
            }
            if let Some(ip6) = d.get("ip6") {
                if ip6 == "auto" {
                    return Err(format!(
                        "{key}: SLAAC is not supported for host-managed network configuration"
                    ));
                }
                if fixed(&ip6) {
                    line(&format!("lxc.net.{i}.ipv6.address"), ip6);
                }
            }
            if let Some(gw6) = d.get("gw6") {
                line(&format!("lxc.net.{i}.ipv6.gateway"), gw6);
            }
            line(&format!("lxc.net.{i}.flags"), "up");
        }
    }
    // 22.
    if let Some(env) = k.get("env") {
        for var in env.split('\0').filter(|v| !v.is_empty()) {
            line("lxc.environment.runtime", var);
        }
    }
    // 23. raw lines last, in file order: an `lxc.include` there wins.
    for (rk, rv) in &s.lxc {
        line(rk, rv);
    }
    // 24.
    if let Some(cores) = k.get("cores").and_then(|c| c.parse::<usize>().ok()) {
        if !has_raw("lxc.cgroup2.cpuset.cpus") && cores > 0 {
            let n = cores.min(host.cpus);
            let set = if n == 1 {
                "0".to_string()
            } else {
                format!("0-{}", n - 1)
            };
            line("lxc.cgroup2.cpuset.cpus", &set);
        }
    }
    let mut config = out.join("\n");
    config.push('\n');
    Ok(Some(Rendered {
        config,
        seccomp_rules,
    }))
}

/// `net0`, `dev12`: `prefix` followed by digits only.
/// `memory.high` for `memory` MiB (Config.pm `calculate_memory_constraints`,
/// PROXMOX-FACTS §2 item 17): (memory − 128) MiB from 16 GiB, else
/// memory × 1016 KiB.
pub fn memory_high_bytes(memory: u64) -> u64 {
    if memory >= 16 * 1024 {
        (memory - 128) * 1024 * 1024
    } else {
        memory * 1024 * 1016
    }
}

fn is_indexed(key: &str, prefix: &str) -> bool {
    key.strip_prefix(prefix)
        .is_some_and(|i| !i.is_empty() && i.bytes().all(|b| b.is_ascii_digit()))
}

/// glibc's `major()`/`minor()` of a `dev_t`.
fn dev_major_minor(rdev: u64) -> (u64, u64) {
    let major = ((rdev >> 8) & 0xfff) | ((rdev >> 32) & !0xfff);
    let minor = (rdev & 0xff) | ((rdev >> 12) & !0xff);
    (major, minor)
}

/// `update_lxc_config` on disk: write `<dir>/config` (and `rules.seccomp`),
/// create `<dir>/rootfs`; a template's `config` is removed.
pub fn update_lxc_config(vmid: u32, s: &Section, host: &Host) -> Result<(), String> {
    let io = |p: &Path, e: std::io::Error| format!("{}: {e}", p.display());
    match render(vmid, s, host)? {
        None => match std::fs::remove_file(host.dir.join("config")) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io(&host.dir, e)),
            _ => Ok(()),
        },
        Some(r) => {
            std::fs::create_dir_all(&host.dir).map_err(|e| io(&host.dir, e))?;
            if let Some(rules) = &r.seccomp_rules {
                let p = host.dir.join("rules.seccomp");
                std::fs::write(&p, rules).map_err(|e| io(&p, e))?;
            }
            let rootfs = host.dir.join("rootfs");
            std::fs::create_dir_all(&rootfs).map_err(|e| io(&rootfs, e))?;
            let p = host.dir.join("config");
            crate::state::write_atomic(&p, r.config.as_bytes()).map_err(|e| io(&p, e))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host() -> Host {
        Host {
            dir: PathBuf::from("/var/lib/lxc/100"),
            config_path: PathBuf::from("/nonexistent/lxc/config"),
            cpus: 4,
        }
    }

    fn section(keys: &[(&str, &str)], lxc: &[(&str, &str)]) -> Section {
        Section {
            description: None,
            keys: keys
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            lxc: lxc
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    /// What every guest of the table starts with (LXC >= 4, amd64).
    const HEAD: &str = "\
lxc.cgroup.relative = 0
lxc.cgroup.dir.monitor = lxc.monitor/100
lxc.cgroup.dir.container = lxc/100
lxc.cgroup.dir.container.inner = ns
lxc.arch = amd64
lxc.include = /nonexistent/lxc/config/common.conf
";

    /// After HEAD, for the privileged base guest.
    const PRIVILEGED: &str = "\
lxc.apparmor.profile = generated
lxc.apparmor.raw = allow mqueue,
lxc.apparmor.raw = deny mount -> /proc/,
lxc.apparmor.raw = deny mount -> /sys/,
lxc.monitor.unshare = 1
lxc.tty.max = 2
lxc.environment = TERM=linux
lxc.uts.name = CT100
lxc.cgroup2.memory.max = 536870912
lxc.cgroup2.memory.high = 532676608
lxc.cgroup2.memory.swap.max = 536870912
lxc.rootfs.path = /var/lib/lxc/100/rootfs
";

    /// Table: (guest config, expected LXC config), PROXMOX-FACTS §2.
    #[test]
    fn renders_like_update_lxc_config() {
        let base = [
            ("arch", "amd64"),
            ("ostype", "unmanaged"),
            ("memory", "512"),
            ("swap", "512"),
            ("rootfs", "local-zfs:subvol-100-disk-0,size=8G"),
        ];
        let mut unpriv = base.to_vec();
        unpriv.extend([
            ("unprivileged", "1"),
            ("hostname", "app"),
            ("console", "0"),
            ("tty", "0"),
            ("cores", "2"),
            ("cpulimit", "1.5"),
            ("cpuunits", "20000"),
            ("entrypoint", "/bin/app --x"),
            ("env", "A=1\0B=x y"),
            (
                "net0",
                "name=eth0,bridge=vmbr0,hwaddr=BC:24:11:AA:BB:CC,ip=10.0.0.2/24,gw=10.0.0.1,host-managed=1,type=veth",
            ),
        ]);
        let unpriv_expected = "\
lxc.include = /nonexistent/lxc/config/userns.conf
lxc.seccomp.profile = /var/lib/lxc/100/rules.seccomp
lxc.apparmor.profile = generated
lxc.apparmor.raw = allow mqueue,
lxc.apparmor.raw = deny mount -> /proc/,
lxc.apparmor.raw = deny mount -> /sys/,
lxc.mount.auto = sys:mixed
lxc.mount.entry = shm dev/shm tmpfs rw,nosuid,nodev,create=dir 0 0
lxc.monitor.unshare = 1
lxc.idmap = u 0 100000 65536
lxc.idmap = g 0 100000 65536
lxc.console.path = none
lxc.cgroup2.devices.deny = c 5:1 rwm
lxc.tty.max = 0
lxc.environment = TERM=linux
lxc.uts.name = app
lxc.cgroup2.memory.max = 536870912
lxc.cgroup2.memory.high = 532676608
lxc.cgroup2.memory.swap.max = 536870912
lxc.cgroup2.cpu.max = 150000 100000
lxc.cgroup2.cpu.weight = 10000
lxc.rootfs.path = /var/lib/lxc/100/rootfs
lxc.init.cmd = /bin/app --x
lxc.net.0.type = veth
lxc.net.0.veth.pair = veth100i0
lxc.net.0.hwaddr = BC:24:11:AA:BB:CC
lxc.net.0.name = eth0
lxc.net.0.mtu = 1500
lxc.net.0.script.up = /usr/share/lxc/lxcnetaddbr
lxc.net.0.ipv4.address = 10.0.0.2/24
lxc.net.0.ipv4.gateway = 10.0.0.1
lxc.net.0.flags = up
lxc.environment.runtime = A=1
lxc.environment.runtime = B=x y
lxc.include = /run/nexcage/100.conf
lxc.cgroup2.cpuset.cpus = 0-1
";
        let raw = [("lxc.include", "/run/nexcage/100.conf")];
        let table: Vec<(Section, &str)> = vec![
            (section(&base, &[]), PRIVILEGED),
            (section(&unpriv, &raw), unpriv_expected),
        ];
        for (s, want) in table {
            let got = render(100, &s, &host()).unwrap().unwrap();
            assert_eq!(got.config, format!("{HEAD}{want}"));
        }
    }

    #[test]
    fn raw_profiles_idmap_and_template() {
        let s = section(
            &[
                ("arch", "amd64"),
                ("ostype", "unmanaged"),
                ("rootfs", "local:4"),
                ("memory", "20000"),
            ],
            &[
                ("lxc.idmap", "u 0 200000 65536"),
                ("lxc.seccomp.profile", "/x.seccomp"),
                ("lxc.apparmor.profile", "unconfined"),
            ],
        );
        let r = render(100, &s, &host()).unwrap().unwrap();
        // A raw lxc.idmap makes the guest unprivileged, without PVE's map.
        assert!(r
            .config
            .contains("lxc.include = /nonexistent/lxc/config/userns.conf\n"));
        assert!(!r.config.contains("100000"));
        assert!(!r.config.contains("rules.seccomp"));
        assert!(!r.config.contains("generated"));
        assert!(r.seccomp_rules.is_none());
        assert!(r.config.contains("lxc.cgroup2.memory.high = 20837302272\n"));
        assert!(r.config.ends_with("lxc.apparmor.profile = unconfined\n"));

        let mut t = s.clone();
        t.keys.insert("template".into(), "1".into());
        assert_eq!(render(100, &t, &host()).unwrap(), None);
        let mut n = s.clone();
        n.keys
            .insert("net1".into(), "name=eth1,bridge=vmbr0,mtu=9000".into());
        assert_eq!(
            render(100, &n, &host()).unwrap_err(),
            "net1: MTU size '9000' is bigger than bridge MTU '1500'"
        );
        n.keys.remove("rootfs");
        assert_eq!(
            render(100, &n, &host()).unwrap_err(),
            "missing 'rootfs' configuration"
        );
    }

    #[test]
    fn unprivileged_seccomp_rules() {
        let s = section(
            &[
                ("arch", "amd64"),
                ("ostype", "debian"),
                ("rootfs", "local:4"),
                ("unprivileged", "1"),
                ("features", "keyctl=1,nesting=1"),
            ],
            &[],
        );
        let r = render(100, &s, &host()).unwrap().unwrap();
        assert_eq!(
            r.seccomp_rules.as_deref(),
            Some("ioctl errno 1 [1,0x9400,SCMP_CMP_MASKED_EQ,0xff00]\nsocket errno 97 [0,38,SCMP_CMP_EQ]\n")
        );
        assert!(r
            .config
            .contains("lxc.apparmor.allow_nesting = 1\nlxc.apparmor.raw = allow userns,\n"));
    }
}
