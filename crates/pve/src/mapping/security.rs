//! Namespaces, id maps, sysctls and the remaining `linux` fields
//! (`linux.seccomp` is compiled to BPF for nexcage-init, not mapped:
//! `src/backend/oci/seccomp_bpf.rs`).

use super::{err, refuse_if_set, DeviceNode, MapError, MapOptions, NamespaceShare, Out, UNPRIVILEGED_ID_BASE, UNPRIVILEGED_ID_COUNT};
use serde_json::Value;

/// OCI namespace type -> LXC name.
fn lxc_ns(t: &str) -> Option<&'static str> {
    Some(match t {
        "pid" => "pid",
        "network" => "net",
        "mount" => "mnt",
        "ipc" => "ipc",
        "uts" => "uts",
        "user" => "user",
        "cgroup" => "cgroup",
        "time" => "time",
        _ => return None,
    })
}

pub(super) fn namespaces(linux: &Value, opts: &MapOptions, out: &mut Out) -> Result<(), MapError> {
    let list = linux
        .get("namespaces")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut present = Vec::new();
    for (i, ns) in list.iter().enumerate() {
        let t = ns.get("type").and_then(Value::as_str).unwrap_or_default();
        let Some(name) = lxc_ns(t) else {
            return err(
                format!("linux.namespaces[{i}].type"),
                format!("unknown namespace type '{t}'"),
            );
        };
        present.push(name);
        if let Some(path) = ns
            .get("path")
            .and_then(Value::as_str)
            .filter(|p| !p.is_empty())
        {
            if !matches!(name, "net" | "ipc" | "uts" | "pid" | "cgroup") {
                return err(format!("linux.namespaces[{i}].path"), format!("joining an existing {t} namespace is not supported (LXC's lxc.namespace.share joins net, ipc, uts, pid and cgroup; the mount and user namespaces are the guest's own)"));
            }
            out.exec.shares.push(NamespaceShare {
                kind: name.into(),
                path: path.into(),
            });
        }
    }
    if !present.contains(&"mnt") {
        return err("linux.namespaces", "a mount namespace is required");
    }
    // Namespaces the spec does not ask for are the host's: LXC keeps them.
    let keep: Vec<&str> = ["cgroup", "ipc", "net", "pid", "uts"]
        .into_iter()
        .filter(|n| !present.contains(n))
        .collect();
    if !keep.is_empty() {
        out.exec
            .lxc
            .push(("lxc.namespace.keep".into(), keep.join(" ")));
    }
    let shares_net = out.exec.shares.iter().any(|s| s.kind == "net");
    if !present.contains(&"net") {
        out.raw("lxc.net.0.type", "none");
    } else if let (Some(bridge), false) = (&opts.bridge, shares_net) {
        let mut net = format!("name=eth0,bridge={bridge},ip=dhcp,type=veth");
        if let Some(tag) = opts.vlan {
            net.push_str(&format!(",tag={tag}"));
        }
        out.key("net0", net);
    }

    let userns = present.contains(&"user");
    if userns || opts.unprivileged {
        out.key("unprivileged", "1");
    } else {
        out.key("unprivileged", "0");
    }
    if opts.unprivileged && !userns {
        // What Proxmox's own start would do for `unprivileged: 1`.
        let map = format!("0 {UNPRIVILEGED_ID_BASE} {UNPRIVILEGED_ID_COUNT}");
        out.exec.lxc.push(("lxc.idmap".into(), format!("u {map}")));
        out.exec.lxc.push(("lxc.idmap".into(), format!("g {map}")));
        out.exec.id_shift = Some(UNPRIVILEGED_ID_BASE);
    }
    // The spec's own map: the rootfs is shifted like for Proxmox's map when
    // uids and gids are one range each from container id 0, on the same
    // host ids (LXC cannot shift it otherwise; other maps get the rootfs as is).
    let single = |key: &str| -> Option<(u64, u64)> {
        match linux.get(key).and_then(Value::as_array).map(Vec::as_slice) {
            Some([m]) if m.get("containerID").and_then(Value::as_u64) == Some(0) => Some((m.get("hostID").and_then(Value::as_u64)?, m.get("size").and_then(Value::as_u64)?)),
            _ => None,
        }
    };
    if let (true, Some((h, n)), Some(g)) = (userns, single("uidMappings"), single("gidMappings")) {
        if (h, n) == g && n >= u64::from(UNPRIVILEGED_ID_COUNT) {
            out.exec.id_shift = u32::try_from(h).ok();
        }
    }
    for (key, letter) in [("uidMappings", "u"), ("gidMappings", "g")] {
        let Some(maps) = linux.get(key).and_then(Value::as_array) else {
            continue;
        };
        if !maps.is_empty() && !userns {
            return err(format!("linux.{key}"), "id mappings need a user namespace");
        }
        for m in maps {
            let n = |k: &str| m.get(k).and_then(Value::as_u64).unwrap_or(0);
            out.raw(
                "lxc.idmap",
                format!(
                    "{letter} {} {} {}",
                    n("containerID"),
                    n("hostID"),
                    n("size")
                ),
            );
        }
    }
    Ok(())
}

/// The OCI namespace types `linux.namespaces` lists (new or joined).
fn ns_types(linux: &Value) -> Vec<&str> {
    linux
        .get("namespaces")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|n| n.get("type").and_then(Value::as_str)).collect())
        .unwrap_or_default()
}

/// runc's rule (libcontainer configs/validate): a `hostname` needs a UTS
/// namespace of the container's own (new or joined), else the host's
/// hostname would be set.
pub(super) fn hostname_needs_uts(v: &Value, linux: &Value) -> Result<(), MapError> {
    let set = v.get("hostname").and_then(Value::as_str).is_some_and(|h| !h.is_empty());
    if set && !ns_types(linux).contains(&"uts") {
        return err("hostname", "unable to set hostname without a private UTS namespace");
    }
    Ok(())
}

/// IPC sysctls (namespaced with the IPC namespace; Proxmox accepts them as
/// `lxc.sysctl.*`, pve-container Config.pm).
const IPC_SYSCTLS: &[&str] = &[
    "kernel.msgmax",
    "kernel.msgmnb",
    "kernel.msgmni",
    "kernel.sem",
    "kernel.shmall",
    "kernel.shmmax",
    "kernel.shmmni",
    "kernel.shm_rmid_forced",
];

/// `linux.sysctl`, with runc's rule (libcontainer
/// configs/validate `sysctl`): IPC sysctls need the container's own IPC
/// namespace, `net.*` its own network namespace, `kernel.domainname` its
/// own UTS namespace (`kernel.hostname` conflicts with `hostname`);
/// anything else is not namespaced and is refused in runc's words. nexcage
/// writes them itself ([`super::ExecOptions::sysctls`]).
pub(super) fn sysctl(linux: &Value, out: &mut Out) -> Result<(), MapError> {
    let Some(map) = linux.get("sysctl").and_then(Value::as_object) else {
        return Ok(());
    };
    let ns = ns_types(linux);
    for (k, v) in map {
        let field = format!("linux.sysctl.{k}");
        let ipc = IPC_SYSCTLS.contains(&k.as_str()) || k.starts_with("fs.mqueue.");
        let why = if ipc {
            (!ns.contains(&"ipc")).then(|| format!("sysctl {k:?} is not allowed in the hosts ipc namespace"))
        } else if k.starts_with("net.") {
            (!ns.contains(&"network")).then(|| format!("sysctl {k:?} is not allowed in the hosts network namespace"))
        } else if k == "kernel.domainname" && ns.contains(&"uts") {
            None
        } else if k == "kernel.hostname" && ns.contains(&"uts") {
            Some(format!("sysctl {k:?} is not allowed as it conflicts with the OCI \"hostname\" field"))
        } else {
            Some(format!("sysctl {k:?} is not in a separate kernel namespace"))
        };
        if let Some(why) = why {
            return err(field, why);
        }
        if k.is_empty() || !k.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c)) {
            return err(field, "not a sysctl name");
        }
        let v = v.as_str().unwrap_or_default();
        if v.contains('\n') {
            return err(field, "value contains a line break");
        }
        out.exec.sysctls.push((k.clone(), v.to_string()));
    }
    Ok(())
}

/// `linux.devices` -> [`DeviceNode`]s (runc's defaults: mode 0666, owner
/// 0:0; type `u` is `c`). Made on the host and bound in by nexcage.
pub(super) fn devices(linux: &Value, out: &mut Out) -> Result<(), MapError> {
    let Some(list) = linux.get("devices").and_then(Value::as_array) else {
        return Ok(());
    };
    for (i, d) in list.iter().enumerate() {
        let f = |k: &str| format!("linux.devices[{i}].{k}");
        let path = d.get("path").and_then(Value::as_str).unwrap_or_default();
        let rel = path.strip_prefix('/').unwrap_or_default();
        if rel.is_empty() || rel.contains([' ', ',', '\n']) || rel.split('/').any(|c| c.is_empty() || c == "." || c == "..") {
            return err(f("path"), format!("'{path}' must be a clean absolute path without spaces or commas"));
        }
        let kind = match d.get("type").and_then(Value::as_str).unwrap_or_default() {
            "c" | "u" => 'c',
            "b" => 'b',
            "p" => 'p',
            t => return err(f("type"), format!("'{t}' is not a device type (c, b, u or p)")),
        };
        let num = |k: &str| d.get(k).and_then(Value::as_u64);
        let (major, minor) = match (num("major"), num("minor")) {
            (Some(a), Some(b)) => (a, b),
            _ if kind == 'p' => (0, 0),
            _ => return err(f("major"), "a character or block device needs major and minor"),
        };
        let id = |k: &str| num(k).map_or(Ok(0), |n| u32::try_from(n).map_err(|_| MapError { field: f(k), msg: format!("{n} is not an id") }));
        out.exec.devices.push(DeviceNode {
            path: path.to_string(),
            kind,
            major,
            minor,
            file_mode: num("fileMode").map_or(0o666, |m| (m & 0o7777) as u32),
            uid: id("uid")?,
            gid: id("gid")?,
        });
    }
    Ok(())
}

pub(super) fn linux_misc(linux: &Value, out: &mut Out) -> Result<(), MapError> {
    let strs = |k: &str| -> Vec<String> {
        linux
            .get(k)
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    };
    out.exec.masked_paths = strs("maskedPaths");
    out.exec.readonly_paths = strs("readonlyPaths");
    if let Some(p) = linux.get("rootfsPropagation").and_then(Value::as_str).filter(|p| !p.is_empty()) {
        const MODES: &[&str] = &["private", "rprivate", "slave", "rslave", "shared", "rshared", "unbindable", "runbindable"];
        if !MODES.contains(&p) {
            return err("linux.rootfsPropagation", format!("unknown propagation mode '{p}'"));
        }
        out.exec.rootfs_propagation = Some(p.to_string());
    }
    let no = "not supported by the Proxmox backend";
    for f in ["mountLabel", "intelRdt", "personality", "timeOffsets"] {
        refuse_if_set(linux, "linux", f, no)?;
    }
    Ok(())
}
