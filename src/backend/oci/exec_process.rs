//! The process `exec` runs when no `--process` file is given: runc's
//! (utils_linux.go `newProcess` + exec.go `getProcess`) is the container's
//! own `process` with the command line laid over it, so user, groups,
//! umask, capabilities, noNewPrivileges, rlimits, AppArmor profile, SELinux
//! label, cwd and env are inherited unless a flag says otherwise.

use std::path::Path;

use serde_json::{json, Value};

use crate::backend::ExecOpts;

/// runc's rule for an exec'd process's cwd (from `--cwd` or a process
/// file): absolute, else "Cwd must be an absolute path" (a relative one
/// would resolve against whatever directory the backend is in).
pub fn check_cwd(cwd: &Path) -> anyhow::Result<()> {
    if !cwd.is_absolute() {
        anyhow::bail!("Cwd must be an absolute path");
    }
    Ok(())
}

/// The exec'd process as an OCI process object, from the container's
/// `process` (raw JSON, as in its config) and the exec flags: `args`
/// replace, `-e` entries are appended to env (a later entry wins, as in
/// runc), `--cwd` replaces, `--user UID[:GID]` replaces uid (and gid when
/// given), `--additional-gids` are appended, each `--cap` goes into the
/// bounding, effective and permitted sets (and ambient when the container
/// has an inheritable set), `--no-new-privs` sets noNewPrivileges, and
/// `terminal` is the `--tty` flag. `HOME` is added when the result has none
/// and `root` (the container's root as seen from here) is given
/// (`backend::oci::home`; else the backend adds it);
/// capability names nexcage does not know are left out with runc's warning
/// (`backend::oci::caps`).
pub fn from_container(container: &Value, o: &ExecOpts, tty: bool, root: Option<&Path>) -> Value {
    let mut p = if container.is_object() { container.clone() } else { json!({}) };
    p["terminal"] = tty.into();
    p["args"] = json!(o.args);
    if let Some(cwd) = &o.cwd {
        p["cwd"] = json!(cwd);
    }
    if !p["user"].is_object() {
        p["user"] = json!({"uid": 0, "gid": 0});
    }
    if let Some(uid) = o.uid {
        p["user"]["uid"] = uid.into();
    }
    if let Some(gid) = o.gid {
        p["user"]["gid"] = gid.into();
    }
    if !o.additional_gids.is_empty() {
        let mut gids = p["user"]["additionalGids"].as_array().cloned().unwrap_or_default();
        gids.extend(o.additional_gids.iter().map(|g| json!(g)));
        p["user"]["additionalGids"] = gids.into();
    }
    if !o.caps.is_empty() {
        add_caps(&mut p, &o.caps);
    }
    if o.no_new_privs {
        p["noNewPrivileges"] = true.into();
    }
    let mut env: Vec<String> =
        p["env"].as_array().map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect()).unwrap_or_default();
    env.extend(o.env.iter().cloned());
    let uid = p["user"]["uid"].as_u64().and_then(|u| u32::try_from(u).ok()).unwrap_or(0);
    if let Some(home) = root.and_then(|r| super::home::missing_home(&env, r, uid)) {
        env.push(format!("HOME={home}"));
    }
    p["env"] = json!(env);
    let dropped = super::caps::drop_unknown(&mut p);
    if !dropped.is_empty() {
        tracing::warn!("{}", super::caps::warning(&dropped));
    }
    p
}

fn add_caps(p: &mut Value, caps: &[String]) {
    if !p["capabilities"].is_object() {
        p["capabilities"] = json!({});
    }
    let has_inheritable = p["capabilities"]["inheritable"].is_array();
    let sets: &[&str] = if has_inheritable {
        &["bounding", "effective", "permitted", "ambient"]
    } else {
        &["bounding", "effective", "permitted"]
    };
    for set in sets {
        let mut list = p["capabilities"][*set].as_array().cloned().unwrap_or_default();
        for c in caps {
            let c = json!(c);
            if !list.contains(&c) {
                list.push(c);
            }
        }
        p["capabilities"][*set] = list.into();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts() -> ExecOpts {
        ExecOpts {
            process_file: None,
            args: vec!["id".into()],
            env: vec![],
            cwd: None,
            uid: None,
            gid: None,
            additional_gids: vec![],
            caps: vec![],
            no_new_privs: false,
            console_socket: None,
            pid_file: None,
            detach: false,
            preserve_fds: 0,
            ignore_paused: false,
        }
    }

    fn container() -> Value {
        json!({
            "terminal": true, "args": ["sh"], "cwd": "/srv", "env": ["PATH=/bin", "A=1"],
            "user": {"uid": 1000, "gid": 100, "umask": 18, "additionalGids": [5, 1234]},
            "capabilities": {"bounding": ["CAP_KILL"], "effective": ["CAP_KILL"], "permitted": ["CAP_KILL"]},
            "noNewPrivileges": true, "apparmorProfile": "p", "selinuxLabel": "l",
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 100, "soft": 100}], "oomScoreAdj": 5
        })
    }

    #[test]
    fn inherits_everything_without_flags() {
        let p = from_container(&container(), &opts(), false, Some(Path::new("/nonexistent")));
        let mut want = container();
        want["terminal"] = false.into();
        want["args"] = json!(["id"]);
        want["env"] = json!(["PATH=/bin", "A=1", "HOME=/"]);
        assert_eq!(p, want);
    }

    #[test]
    fn flags_override_and_append() {
        let mut o = opts();
        o.env = vec!["A=2".into(), "HOME=/h".into()];
        o.cwd = Some("/tmp".into());
        o.uid = Some(0);
        o.additional_gids = vec![7];
        o.caps = vec!["CAP_NET_ADMIN".into()];
        let p = from_container(&container(), &o, true, Some(Path::new("/nonexistent")));
        assert_eq!(p["terminal"], json!(true));
        assert_eq!(p["cwd"], json!("/tmp"));
        assert_eq!(p["user"], json!({"uid": 0, "gid": 100, "umask": 18, "additionalGids": [5, 1234, 7]}));
        assert_eq!(p["env"], json!(["PATH=/bin", "A=1", "A=2", "HOME=/h"]));
        assert_eq!(p["capabilities"]["effective"], json!(["CAP_KILL", "CAP_NET_ADMIN"]));
        assert!(p["capabilities"].get("ambient").is_none());
    }
}
