//! `process` and `hostname` -> entrypoint, env, lxc.init.*, caps, rlimits.

use super::{err, refuse_if_set, shell_quote, MapError, Out};
use serde_json::Value;

/// Control characters Proxmox's `entrypoint`/`env` patterns forbid, plus
/// line breaks (no config value may hold one).
fn bad_char(c: char) -> bool {
    let b = c as u32;
    b <= 0x08 || (0x0a..=0x1f).contains(&b) || b == 0x7f
}

fn strings<'a>(v: &'a Value, key: &str) -> Vec<&'a str> {
    v.get(key)
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

pub(super) fn map(p: &Value, out: &mut Out) -> Result<(), MapError> {
    if p.is_null() {
        return err(
            "process",
            "is required (the Proxmox backend runs process.args)",
        );
    }
    let args = strings(p, "args");
    if args.is_empty() {
        return err("process.args", "must not be empty");
    }
    for (i, a) in args.iter().enumerate() {
        if a.chars().any(bad_char) {
            return err(
                format!("process.args[{i}]"),
                "contains control characters Proxmox cannot store",
            );
        }
    }
    let cmd: Vec<String> = args.iter().map(|a| shell_quote(a)).collect();
    let cmd = cmd.join(" ");
    out.key("entrypoint", cmd.clone());
    out.raw("lxc.init.cmd", cmd);

    let mut env = Vec::new();
    for (i, e) in strings(p, "env").iter().enumerate() {
        let (name, val) = e.split_once('=').unwrap_or((e, ""));
        if !e.contains('=')
            || name.is_empty()
            || !name.chars().all(|c| c.is_alphanumeric() || c == '_')
        {
            return err(
                format!("process.env[{i}]"),
                format!(
                    "'{name}' is not a NAME=value pair Proxmox accepts (NAME is [A-Za-z0-9_]+)"
                ),
            );
        }
        if val.chars().any(bad_char) {
            return err(
                format!("process.env[{i}]"),
                format!("value of {name} contains control characters"),
            );
        }
        if e.ends_with(char::is_whitespace) {
            return err(
                format!("process.env[{i}]"),
                format!(
                    "value of {name} ends in whitespace, which a Proxmox config line cannot keep"
                ),
            );
        }
        env.push(*e);
    }
    if !env.is_empty() {
        out.key("env", env.join("\0"));
    }

    let cwd = p.get("cwd").and_then(Value::as_str).unwrap_or("/");
    if !cwd.starts_with('/') || cwd.contains('\n') {
        return err("process.cwd", "must be an absolute path");
    }
    out.raw("lxc.init.cwd", cwd);

    let user = p.get("user").cloned().unwrap_or(Value::Null);
    let uid = user.get("uid").and_then(Value::as_u64).unwrap_or(0);
    let gid = user.get("gid").and_then(Value::as_u64).unwrap_or(0);
    out.raw("lxc.init.uid", uid.to_string());
    out.raw("lxc.init.gid", gid.to_string());
    let groups: Vec<String> = user
        .get("additionalGids")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_u64)
                .map(|g| g.to_string())
                .collect()
        })
        .unwrap_or_default();
    if !groups.is_empty() {
        out.raw("lxc.init.groups", groups.join(","));
    }
    if user.get("umask").is_some_and(|u| !u.is_null()) {
        return err(
            "process.user.umask",
            "LXC cannot set the init process's umask",
        );
    }

    capabilities(p, out)?;
    rlimits(p, out)?;

    if p.get("noNewPrivileges").and_then(Value::as_bool) == Some(true) {
        out.exec.lxc.push(("lxc.no_new_privs".into(), "1".into()));
    }
    if let Some(a) = p
        .get("apparmorProfile")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
    {
        out.raw("lxc.apparmor.profile", a);
    }
    if let Some(s) = p
        .get("selinuxLabel")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
    {
        out.raw("lxc.selinux.context", s);
    }
    if let Some(o) = p.get("oomScoreAdj").and_then(Value::as_i64) {
        out.exec
            .lxc
            .push(("lxc.proc.oom_score_adj".into(), o.to_string()));
    }
    let no = "not supported by the Proxmox backend";
    for f in ["commandLine", "ioPriority", "scheduler", "execCPUAffinity"] {
        refuse_if_set(p, "process", f, no)?;
    }
    Ok(())
}

fn cap_name(c: &str) -> String {
    c.trim_start_matches("CAP_").to_lowercase()
}

/// `lxc.cap.keep` is the bounding set. The other four sets are not LXC's:
/// an OCI runtime's init applies them (nexcage's: `nexcage-init`), in
/// runc's order, and, as runc, does not refuse an effective, permitted,
/// inheritable or ambient capability outside the bounding set (capset or the
/// ambient raise decides; runc ignores a failed ambient raise).
fn capabilities(p: &Value, out: &mut Out) -> Result<(), MapError> {
    let Some(caps) = p.get("capabilities").filter(|c| !c.is_null()) else {
        return Ok(());
    };
    let bounding = strings(caps, "bounding");
    let mut names: Vec<String> = bounding.iter().map(|c| cap_name(c)).collect();
    names.sort();
    names.dedup();
    let keep = if names.is_empty() {
        "none".to_string()
    } else {
        names.join(" ")
    };
    out.raw("lxc.cap.keep", keep);
    Ok(())
}

fn rlimits(p: &Value, out: &mut Out) -> Result<(), MapError> {
    let Some(list) = p.get("rlimits").and_then(Value::as_array) else {
        return Ok(());
    };
    for (i, r) in list.iter().enumerate() {
        let ty = r.get("type").and_then(Value::as_str).unwrap_or_default();
        let Some(name) = ty.strip_prefix("RLIMIT_").filter(|n| !n.is_empty()) else {
            return err(
                format!("process.rlimits[{i}].type"),
                format!("'{ty}' is not an RLIMIT_ name"),
            );
        };
        let fmt = |k: &str| match r.get(k).and_then(Value::as_u64) {
            Some(u64::MAX) | None => "unlimited".to_string(),
            Some(n) => n.to_string(),
        };
        out.raw(
            &format!("lxc.prlimit.{}", name.to_lowercase()),
            format!("{}:{}", fmt("soft"), fmt("hard")),
        );
    }
    Ok(())
}

pub(super) fn hostname(v: &Value, out: &mut Out) -> Result<(), MapError> {
    if let Some(h) = v
        .get("hostname")
        .and_then(Value::as_str)
        .filter(|h| !h.is_empty())
    {
        if h.len() > 255 || crate::schema::formats_check("dns-name", h).is_err() {
            return err(
                "hostname",
                format!("'{h}' is not a DNS name Proxmox accepts"),
            );
        }
        // Proxmox takes 255 bytes, but the guest's sethostname(2) (LXC's
        // lxc.uts.name) refuses more than HOST_NAME_MAX, as under runc.
        if h.len() > 64 {
            return err(
                "hostname",
                format!("'{h}' is {} bytes long; a host name has at most 64 (HOST_NAME_MAX)", h.len()),
            );
        }
        out.key("hostname", h);
    }
    // setdomainname(2) needs a UTS namespace of the container's own, as
    // for the hostname (runc refuses both without one).
    let domain = v.get("domainname").and_then(Value::as_str).filter(|d| !d.is_empty());
    if let Some(d) = domain {
        let uts = v
            .pointer("/linux/namespaces")
            .and_then(Value::as_array)
            .is_some_and(|a| a.iter().any(|n| n.get("type").and_then(Value::as_str) == Some("uts")));
        if !uts {
            return err("domainname", "setting the domainname needs a private UTS namespace (linux.namespaces has no uts entry)");
        }
        if d.len() > 64 || d.chars().any(bad_char) {
            return err("domainname", format!("'{d}' is not a domain name the kernel accepts (at most 64 bytes, no control characters)"));
        }
    }
    Ok(())
}
