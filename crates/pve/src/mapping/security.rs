//! Namespaces, id maps, sysctls, seccomp and the remaining `linux` fields.

use super::{err, refuse_if_set, MapError, MapOptions, NamespaceShare, Out, UNPRIVILEGED_ID_BASE, UNPRIVILEGED_ID_COUNT};
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
            if !matches!(name, "net" | "ipc" | "uts" | "pid") {
                return err(format!("linux.namespaces[{i}].path"), format!("joining an existing {t} namespace is not supported (lxc-execute shares only net, ipc, uts, pid)"));
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

/// IPC sysctls Proxmox accepts as `lxc.sysctl.*` (pve-container Config.pm).
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

pub(super) fn sysctl(linux: &Value, out: &mut Out) -> Result<(), MapError> {
    let Some(map) = linux.get("sysctl").and_then(Value::as_object) else {
        return Ok(());
    };
    for (k, v) in map {
        let ok = IPC_SYSCTLS.contains(&k.as_str()) || k.starts_with("fs.mqueue.");
        if !ok {
            return err(format!("linux.sysctl.{k}"), "Proxmox allows only IPC sysctls (kernel.msg*, kernel.sem, kernel.shm*, fs.mqueue.*)");
        }
        let v = v.as_str().unwrap_or_default();
        if v.contains('\n') {
            return err(format!("linux.sysctl.{k}"), "value contains a line break");
        }
        out.raw(&format!("lxc.sysctl.{k}"), v);
    }
    Ok(())
}

/// OCI seccomp action -> LXC v2 profile action.
fn action(a: &str, errno: Option<u64>) -> Option<String> {
    Some(match a {
        "SCMP_ACT_ALLOW" => "allow".into(),
        "SCMP_ACT_ERRNO" => format!("errno {}", errno.unwrap_or(1)),
        "SCMP_ACT_KILL" | "SCMP_ACT_KILL_THREAD" => "kill".into(),
        "SCMP_ACT_TRAP" => "trap".into(),
        _ => return None,
    })
}

fn cmp_op(op: &str) -> Option<&'static str> {
    Some(match op {
        "SCMP_CMP_NE" => "SCMP_CMP_NE",
        "SCMP_CMP_LT" => "SCMP_CMP_LT",
        "SCMP_CMP_LE" => "SCMP_CMP_LE",
        "SCMP_CMP_EQ" => "SCMP_CMP_EQ",
        "SCMP_CMP_GE" => "SCMP_CMP_GE",
        "SCMP_CMP_GT" => "SCMP_CMP_GT",
        "SCMP_CMP_MASKED_EQ" => "SCMP_CMP_MASKED_EQ",
        _ => return None,
    })
}

/// Convert `linux.seccomp` into an LXC "version 2" profile. Actions LXC
/// cannot express (LOG, TRACE, NOTIFY, KILL_PROCESS), flags and listener
/// sockets are refused; architectures collapse into one `[all]` section.
pub(super) fn seccomp(linux: &Value, out: &mut Out) -> Result<(), MapError> {
    let Some(s) = linux.get("seccomp").filter(|s| !s.is_null()) else {
        return Ok(());
    };
    const F: &str = "linux.seccomp";
    let def_errno = s.get("defaultErrnoRet").and_then(Value::as_u64);
    let da = s
        .get("defaultAction")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let Some(default) = action(da, def_errno) else {
        return err(
            format!("{F}.defaultAction"),
            format!("'{da}' has no LXC seccomp equivalent"),
        );
    };
    refuse_if_set(
        s,
        F,
        "flags",
        "seccomp flags are not supported by LXC profiles",
    )?;
    refuse_if_set(
        s,
        F,
        "listenerPath",
        "seccomp notify listeners are not supported",
    )?;
    let mut text = String::from("2\n");
    if default == "allow" {
        text.push_str("denylist\n");
    } else {
        text.push_str(&format!("allowlist {default}\n"));
    }
    text.push_str("[all]\n");
    for (i, sc) in s
        .get("syscalls")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        let a = sc.get("action").and_then(Value::as_str).unwrap_or_default();
        let errno = sc.get("errnoRet").and_then(Value::as_u64).or(def_errno);
        let Some(act) = action(a, errno) else {
            return err(
                format!("{F}.syscalls[{i}].action"),
                format!("'{a}' has no LXC seccomp equivalent"),
            );
        };
        let mut conds = String::new();
        for (j, arg) in sc
            .get("args")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
            .iter()
            .enumerate()
        {
            let op = arg.get("op").and_then(Value::as_str).unwrap_or_default();
            let Some(op) = cmp_op(op) else {
                return err(
                    format!("{F}.syscalls[{i}].args[{j}].op"),
                    format!("unknown comparison '{op}'"),
                );
            };
            let n = |k: &str| arg.get(k).and_then(Value::as_u64).unwrap_or(0);
            conds.push_str(&format!(
                " [{},{},{},{}]",
                n("index"),
                n("value"),
                op,
                n("valueTwo")
            ));
        }
        for name in sc
            .get("names")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
        {
            let name = name.as_str().unwrap_or_default();
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return err(
                    format!("{F}.syscalls[{i}].names"),
                    format!("'{name}' is not a syscall name"),
                );
            }
            text.push_str(&format!("{name} {act}{conds}\n"));
        }
    }
    out.exec.seccomp_profile = Some(text);
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
    let no = "not supported by the Proxmox backend";
    refuse_if_set(
        linux,
        "linux",
        "devices",
        "device nodes need Proxmox devN passthrough (root@pam only); not supported",
    )?;
    for f in ["mountLabel", "intelRdt", "personality", "timeOffsets"] {
        refuse_if_set(linux, "linux", f, no)?;
    }
    Ok(())
}
