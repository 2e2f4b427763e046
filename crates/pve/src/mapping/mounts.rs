//! `mounts` -> `mpN` (bind), `lxc.mount.entry`, `lxc.mount.auto`, `lxc.autodev`.

use super::{err, BindMountMode, MapError, MapOptions, Out};
use serde_json::Value;

/// Proxmox `mountoptions` values an OCI bind mount may carry.
const PVE_MOUNTOPTS: &[&str] = &[
    "discard", "lazytime", "noatime", "nodev", "noexec", "nosuid",
];
/// Options that only describe propagation/bind-ness (no Proxmox equivalent needed).
const IGNORED: &[&str] = &[
    "bind",
    "rbind",
    "rw",
    "private",
    "rprivate",
    "slave",
    "rslave",
    "shared",
    "rshared",
    "unbindable",
    "runbindable",
];

fn clean_path(p: &str) -> bool {
    p.starts_with('/')
        && !p.contains('\n')
        && !p.contains(',')
        && !p.contains("/./")
        && !p.contains("/../")
        && !p.ends_with("/.")
        && !p.ends_with("/..")
}

pub(super) fn map(mounts: &Value, opts: &MapOptions, out: &mut Out) -> Result<(), MapError> {
    let Some(list) = mounts.as_array() else {
        return Ok(());
    };
    let mut mp = 0usize;
    for (i, m) in list.iter().enumerate() {
        let field = format!("mounts[{i}]");
        let dst = m
            .get("destination")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if !clean_path(dst) || dst.contains(' ') {
            return err(
                format!("{field}.destination"),
                format!("'{dst}' must be a clean absolute path without spaces or commas"),
            );
        }
        let src = m.get("source").and_then(Value::as_str).unwrap_or_default();
        let options: Vec<&str> = m
            .get("options")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let ty = m.get("type").and_then(Value::as_str).unwrap_or("");
        if m.get("uidMappings").is_some_and(|x| !x.is_null())
            || m.get("gidMappings").is_some_and(|x| !x.is_null())
        {
            return err(
                format!("{field}.uidMappings"),
                "idmapped mounts are not supported by the Proxmox backend",
            );
        }
        let is_bind = ty == "bind" || options.iter().any(|o| *o == "bind" || *o == "rbind");
        if is_bind {
            let src = resolve_source(&field, src, opts)?;
            bind(&field, &src, dst, &options, opts, &mut mp, out)?;
            continue;
        }
        let ro = options.contains(&"ro");
        match (ty, dst) {
            ("proc", "/proc") => out.mount_auto.push("proc:mixed".into()),
            // An entry, not `lxc.mount.auto` (whose `sys:ro` is only
            // read-only): the spec's flags (nosuid, nodev, noexec) hold.
            // Entries come after LXC's proc and before its cgroup mounts.
            ("sysfs", "/sys") => {
                if options.iter().any(|o| o.contains(' ')) {
                    return err(format!("{field}.options"), "must not contain spaces");
                }
                let mut o: Vec<&str> = options.iter().copied().filter(|o| !IGNORED.contains(o)).collect();
                o.push("create=dir");
                out.raw("lxc.mount.entry", format!("sysfs sys sysfs {} 0 0", o.join(",")));
            }
            ("cgroup" | "cgroup2", "/sys/fs/cgroup") => out
                .mount_auto
                .push(if ro { "cgroup:ro" } else { "cgroup:mixed" }.into()),
            // LXC populates /dev itself (and Proxmox's autodev hook adds passthrough devices).
            ("tmpfs", "/dev") => {
                out.raw("lxc.autodev", "1");
                out.exec.dev_flags = options.iter().map(|o| o.to_string()).collect();
            }
            ("tmpfs" | "devpts" | "mqueue" | "proc" | "sysfs" | "cgroup" | "cgroup2", _) => {
                if src.contains(' ') || options.iter().any(|o| o.contains(' ')) {
                    return err(format!("{field}.options"), "must not contain spaces");
                }
                let mut o: Vec<&str> = options.clone();
                o.push("create=dir");
                let source = if src.is_empty() { ty } else { src };
                out.raw(
                    "lxc.mount.entry",
                    format!("{source} {} {ty} {} 0 0", &dst[1..], o.join(",")),
                );
            }
            _ => {
                return err(
                    format!("{field}.type"),
                    format!("'{ty}' mounts are not supported by the Proxmox backend"),
                )
            }
        }
    }
    Ok(())
}

/// A relative bind source is relative to the bundle directory, as runc
/// resolves it (`filepath.Join(bundle, source)`); without a bundle it is
/// refused below.
fn resolve_source(field: &str, src: &str, opts: &MapOptions) -> Result<String, MapError> {
    match &opts.bundle_dir {
        Some(b) if !src.is_empty() && !src.starts_with('/') => {
            let mut parts: Vec<&str> = Vec::new();
            for c in b.split('/').chain(src.split('/')) {
                match c {
                    "" | "." => {}
                    ".." => {
                        parts.pop();
                    }
                    c => parts.push(c),
                }
            }
            if parts.is_empty() {
                return err(format!("{field}.source"), format!("'{src}' resolves to / against the bundle"));
            }
            Ok(format!("/{}", parts.join("/")))
        }
        _ => Ok(src.to_string()),
    }
}

fn bind(
    field: &str,
    src: &str,
    dst: &str,
    options: &[&str],
    opts: &MapOptions,
    mp: &mut usize,
    out: &mut Out,
) -> Result<(), MapError> {
    if !clean_path(src) || src.contains(' ') {
        return err(
            format!("{field}.source"),
            format!("'{src}' must be a clean absolute path without spaces or commas"),
        );
    }
    let ro = options.contains(&"ro");
    match opts.bind_mounts {
        BindMountMode::MountPoint => {
            if *mp > 255 {
                return err(field, "more than 256 bind mounts (mp0..mp255)");
            }
            let mut mo = Vec::new();
            for o in options {
                if PVE_MOUNTOPTS.contains(o) {
                    mo.push(*o);
                } else if !IGNORED.contains(o) && *o != "ro" {
                    return err(
                        format!("{field}.options"),
                        format!("'{o}' has no Proxmox mount point equivalent"),
                    );
                }
            }
            let mut s = format!("{src},mp={dst}");
            if !mo.is_empty() {
                s.push_str(&format!(",mountoptions={}", mo.join(";")));
            }
            if ro {
                s.push_str(",ro=1");
            }
            out.key(&format!("mp{mp}"), s);
            *mp += 1;
            out.exec.needs_root_pam = true;
        }
        BindMountMode::LxcEntry => {
            let mut o = vec![if options.contains(&"rbind") {
                "rbind"
            } else {
                "bind"
            }];
            o.extend(options.iter().filter(|x| **x != "bind" && **x != "rbind"));
            out.raw(
                "lxc.mount.entry",
                format!("{src} {} none {} 0 0", &dst[1..], o.join(",")),
            );
        }
    }
    Ok(())
}
