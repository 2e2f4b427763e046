//! `nexcage system check` (alias `debug info`): what this node offers
//! nexcage, one line per component: ok, warn or fail, with a hint.

use std::time::Duration;

use crate::context::Ctx;

use super::report::{Level, Report};

fn cmd_out(prog: &str, args: &[&str]) -> Option<String> {
    let o = std::process::Command::new(prog).args(args).output().ok()?;
    o.status.success().then(|| String::from_utf8_lossy(&o.stdout).trim().to_string())
}

fn cgroups(r: &mut Report) {
    let base = std::path::Path::new("/sys/fs/cgroup");
    let (mode, ctrls): (&str, Vec<String>) = if let Ok(c) = std::fs::read_to_string(base.join("cgroup.controllers")) {
        ("v2 (unified)", c.split_whitespace().map(str::to_string).collect())
    } else if base.join("memory").is_dir() {
        let v = std::fs::read_dir(base).map(|d| d.flatten().filter_map(|e| e.file_name().into_string().ok()).collect()).unwrap_or_default();
        ("v1 (legacy/hybrid)", v)
    } else {
        r.line(Level::Fail, "cgroups", "no cgroup filesystem at /sys/fs/cgroup", "mount cgroup2 on /sys/fs/cgroup");
        return;
    };
    let missing: Vec<&str> = ["cpu", "memory", "pids"].into_iter().filter(|c| !ctrls.iter().any(|x| x == c)).collect();
    let msg = format!("{mode}, controllers: {}", ctrls.join(" "));
    if missing.is_empty() {
        r.line(Level::Ok, "cgroups", &msg, "");
    } else {
        r.line(Level::Warn, "cgroups", &format!("{msg}; missing {}", missing.join(" ")), "limits on those resources will not be enforced");
    }
}

fn zfs(r: &mut Report, cfg: &nexcage_config::Config) {
    let kind = if std::path::Path::new("/sys/module/zfs").exists() {
        Some("kernel module")
    } else if cmd_out("pgrep", &["-x", "zfs-fuse"]).is_some() {
        Some("zfs-fuse")
    } else {
        None
    };
    let pool = cfg.storage.pool.clone();
    match (kind, &pool) {
        (Some(k), _) => r.line(Level::Ok, "zfs", k, ""),
        (None, Some(_)) => r.line(Level::Fail, "zfs", "neither the zfs module nor zfs-fuse is running", "modprobe zfs (or start zfs-fuse)"),
        (None, None) => r.line(Level::Warn, "zfs", "not available", "needed only for the proxmox backend's zfs storage"),
    }
    let Some(pool) = pool else {
        r.line(Level::Warn, "zfs pool", "storage.pool is not set", "nexcage config set storage.pool POOL");
        return;
    };
    let z = nexcage_zfs::Zfs::new();
    match z.pool_health(&pool) {
        Ok(h) if h == "ONLINE" => match z.pool_usage(&pool) {
            Ok(u) => r.line(Level::Ok, "zfs pool", &format!("{pool} ONLINE, {} GiB free of {}", u.free >> 30, u.size >> 30), ""),
            Err(_) => r.line(Level::Ok, "zfs pool", &format!("{pool} ONLINE"), ""),
        },
        Ok(h) => r.line(Level::Warn, "zfs pool", &format!("{pool} is {h}"), &format!("zpool status {pool}")),
        Err(e) => r.line(Level::Fail, "zfs pool", &format!("{pool}: {e}"), &format!("create it (zpool create {pool} ...) or nexcage config set storage.pool <existing pool>")),
    }
}

pub(super) fn proxmox(r: &mut Report, cfg: &nexcage_config::Config) {
    let wanted = cfg.proxmox.host.is_some() || cfg.proxmox.token_file.is_some()
        || cfg.default_backend == Some(nexcage_config::Backend::Proxmox);
    if !wanted {
        r.line(Level::Ok, "proxmox", "not configured (native backend only)", "");
        return;
    }
    match nexcage_pve::driver::from_config(cfg) {
        Err(e) => r.line(Level::Fail, "proxmox", &e.to_string(), "check proxmox.* in the config (token file, fingerprint, host)"),
        Ok((cp, _)) => match cp.version() {
            Ok(v) => match nexcage_pve::driver::NodeVersions::from_manager(&v.version).check_supported() {
                Ok(()) => {
                    r.line(Level::Ok, "proxmox", &format!("pve-manager {} on node {} (token and fingerprint accepted)", v.version, cp.node()), "");
                    node_versions(r, &*cp, cfg);
                }
                Err(e) => r.line(Level::Fail, "proxmox", &e.to_string(), "upgrade Proxmox VE"),
            },
            Err(e) => r.line(Level::Fail, "proxmox", &e.to_string(), "is the API reachable, the token valid and the fingerprint the node's?"),
        },
    }
}

/// What create will ask of the node (PROXMOX-FACTS §10): the template
/// format its libpve-storage-perl reads, whether pve-container has
/// `entrypoint`, and whether the template is on the template storage yet.
fn node_versions(r: &mut Report, cp: &dyn nexcage_pve::driver::ControlPlane, cfg: &nexcage_config::Config) {
    let v = match cp.node_versions() {
        Ok(v) => v,
        Err(e) => return r.line(Level::Warn, "proxmox versions", &e.to_string(), "create reads them again"),
    };
    let unknown = || "unknown".to_string();
    let storage = cfg.proxmox.template_storage();
    let name = v.template_format().file_name();
    let present = match cp.templates(storage) {
        Ok(l) if l.iter().any(|t| t == &format!("{storage}:vztmpl/{name}")) => "present",
        Ok(_) => "missing, the first create uploads it",
        Err(_) => "cannot list it",
    };
    let msg = format!(
        "libpve-storage-perl {}, pve-container {}: template {storage}:vztmpl/{name} ({present}), entrypoint {}",
        v.storage.clone().unwrap_or_else(unknown),
        v.container.clone().unwrap_or_else(unknown),
        if v.entrypoint() { "yes" } else { "no (pve-container < 6.0.15)" },
    );
    r.line(Level::Ok, "proxmox versions", &msg, "");
    privileges(r, cp, cfg, present != "present");
}

/// Every privilege create, start and delete need that the configured user
/// (API token) lacks, one `fail` line each (PROXMOX-FACTS §10).
fn privileges(r: &mut Report, cp: &dyn nexcage_pve::driver::ControlPlane, cfg: &nexcage_config::Config, upload: bool) {
    match nexcage_pve::driver::lacking_privileges(cp, &crate::backend::privilege_setup(cfg, upload)) {
        Ok(lacking) if lacking.is_empty() => r.line(Level::Ok, "proxmox privileges", "every privilege create, start and delete need", ""),
        Ok(lacking) => {
            for n in lacking {
                r.line(Level::Fail, "proxmox privilege", &format!("missing {n}"), &n.hint());
            }
        }
        Err(e) => r.line(Level::Warn, "proxmox privileges", &e.to_string(), "GET /access/permissions must answer for the token"),
    }
}

/// Unprivileged guests need root's id range delegated (LXC's newuidmap).
fn subids(r: &mut Report, cfg: &nexcage_config::Config) {
    if cfg.default_backend != Some(nexcage_config::Backend::Proxmox) || !cfg.unprivileged() {
        return;
    }
    use nexcage_pve::mapping::{UNPRIVILEGED_ID_BASE, UNPRIVILEGED_ID_COUNT};
    match crate::backend::check_root_range(UNPRIVILEGED_ID_BASE, UNPRIVILEGED_ID_COUNT) {
        Ok(()) => r.line(Level::Ok, "subuid", &format!("root may map {UNPRIVILEGED_ID_BASE}..{} (unprivileged guests)", UNPRIVILEGED_ID_BASE + UNPRIVILEGED_ID_COUNT - 1), ""),
        Err(e) => r.line(Level::Fail, "subuid", &crate::logging::error_text(&e), "echo root:100000:65536 >> /etc/subuid; echo root:100000:65536 >> /etc/subgid"),
    }
}

fn free_space(r: &mut Report, dir: &std::path::Path) {
    let probe = dir.ancestors().find(|p| p.exists()).unwrap_or(std::path::Path::new("/"));
    match nix::sys::statvfs::statvfs(probe) {
        Ok(s) => {
            let free = s.blocks_available() * s.fragment_size();
            let msg = format!("{} GiB free at {}", free >> 30, dir.display());
            if free < 1 << 30 {
                r.line(Level::Warn, "storage", &msg, "images and bundles need space; prune with nexcage image prune");
            } else {
                r.line(Level::Ok, "storage", &msg, "");
            }
        }
        Err(e) => r.line(Level::Fail, "storage", &format!("{}: {e}", probe.display()), "check images.storage_path"),
    }
}

fn registry(r: &mut Report) {
    use std::net::ToSocketAddrs;
    let host = "registry-1.docker.io:443";
    let ok = host.to_socket_addrs().ok().and_then(|mut a| a.next())
        .is_some_and(|a| std::net::TcpStream::connect_timeout(&a, Duration::from_secs(3)).is_ok());
    if ok {
        r.line(Level::Ok, "registry", &format!("{host} reachable"), "");
    } else {
        r.line(Level::Warn, "registry", &format!("{host} not reachable"), "pulls need network access (or use image import)");
    }
}

/// Prints one line per component (ok, warn or fail, with a hint);
/// returns whether anything failed.
pub fn run(ctx: &Ctx) -> bool {
    let mut r = Report::default();
    let cfg = match ctx.config() {
        Ok(c) => c,
        Err(e) => {
            r.line(Level::Fail, "config", &crate::logging::error_text(&e), "fix the file or nexcage config set KEY VALUE");
            nexcage_config::Config::default()
        }
    };
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default().trim().to_string();
    r.line(Level::Ok, "kernel", &kernel, "");
    cgroups(&mut r);
    match cmd_out("lxc-info", &["--version"]) {
        Some(v) => r.line(Level::Ok, "lxc", &v, ""),
        None if cfg.default_backend == Some(nexcage_config::Backend::Proxmox) => r.line(Level::Fail, "lxc", "lxc-info not found", "apt-get install lxc"),
        None => r.line(Level::Warn, "lxc", "lxc-info not found", "needed only for the proxmox backend"),
    }
    zfs(&mut r, &cfg);
    proxmox(&mut r, &cfg);
    subids(&mut r, &cfg);
    free_space(&mut r, &cfg.images.storage_path.clone().unwrap_or_else(nexcage_image::store::default_store_dir));
    registry(&mut r);
    r.failed
}
