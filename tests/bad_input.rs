//! Bad input gets one clear error (stderr and the JSON log), a non-zero exit,
//! and leaves nothing behind: no state dir, no cgroup, no process.

mod support;
use support::*;
use std::path::Path;

/// Runs a failing command with `--log L --log-format json` and checks the contract.
fn fails_cleanly(root: &Path, log: &Path, args: &[&str], want: &str) {
    let _ = std::fs::remove_file(log);
    let mut full = vec!["--log", log.to_str().unwrap(), "--log-format", "json"];
    full.extend_from_slice(args);
    let o = nx(root, &full);
    assert!(!o.status.success(), "{args:?} must fail");
    let err = stderr(&o);
    assert_eq!(err.trim_end().lines().count(), 1, "one line on stderr for {args:?}: {err}");
    assert!(err.contains(want), "{args:?}: stderr {err:?} lacks {want:?}");
    let text = std::fs::read_to_string(log).expect("log file exists even after an early failure");
    let errors: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("every log line is JSON"))
        .filter(|v| v["level"] == "error")
        .collect();
    assert_eq!(errors.len(), 1, "one error record for {args:?}: {text}");
    assert!(errors[0]["msg"].as_str().unwrap().contains(want));
    assert!(errors[0]["time"].is_string());
}

fn nothing_left(root: &Path, id: &str, bundle_marker: &str) {
    assert!(!root.join(id).exists(), "state dir of {id} left behind");
    assert!(!cgroup_exists(id), "cgroup of {id} left behind");
    assert!(procs_with(bundle_marker).is_empty(), "process of {bundle_marker} left behind");
    if root.exists() {
        let stray: Vec<_> = std::fs::read_dir(root).unwrap().flatten().map(|e| e.file_name()).collect();
        assert!(stray.iter().all(|n| !n.to_string_lossy().starts_with('.')), "temp dirs left: {stray:?}");
    }
}

#[test]
fn bundle_errors() {
    let s = Scratch::new("badbundle");
    let root = s.path().join("root");
    let log = s.path().join("log.json");
    let good = bundle(s.path(), "good", &["true"], |_| {});
    let raw = std::fs::read_to_string(good.join("config.json")).unwrap();
    let mk = |name: &str, content: Option<String>| {
        let d = s.path().join(name);
        std::fs::create_dir_all(&d).unwrap();
        if let Some(c) = content {
            std::fs::write(d.join("config.json"), c).unwrap();
        }
        d.to_str().unwrap().to_string()
    };
    let nocfg = mk("nocfg", None);
    let malformed = mk("malformed", Some(raw[..raw.len() / 2].to_string()));
    let v2 = mk("v2", Some(raw.replace("\"1.2.0\"", "\"2.0.0\"")));
    let mut noargs: serde_json::Value = serde_json::from_str(&raw).unwrap();
    noargs["process"]["args"] = serde_json::json!([]);
    let noargs = mk("noargs", Some(noargs.to_string()));
    // root.path through a symlink: runc 1.1.5 refuses it ("invalid rootfs"), so does nexcage
    let mut linked: serde_json::Value = serde_json::from_str(&raw).unwrap();
    std::os::unix::fs::symlink(linked["root"]["path"].as_str().unwrap(), good.join("rootfs-link")).unwrap();
    linked["root"]["path"] = serde_json::json!(good.join("rootfs-link"));
    let linked = mk("linked", Some(linked.to_string()));
    // runc 1.1.5's rules (backend::oci::process_user_env): (uid_t)-1 would leave the process root
    let mut uid_max: serde_json::Value = serde_json::from_str(&raw).unwrap();
    uid_max["process"]["user"]["uid"] = serde_json::json!(4294967295u32);
    let uid_max = mk("uid-max", Some(uid_max.to_string()));
    let mut gid_big: serde_json::Value = serde_json::from_str(&raw).unwrap();
    gid_big["process"]["user"]["additionalGids"] = serde_json::json!([2147483648u32]);
    let gid_big = mk("gid-big", Some(gid_big.to_string()));
    let mut env_noname: serde_json::Value = serde_json::from_str(&raw).unwrap();
    env_noname["process"]["env"] = serde_json::json!(["PATH=/bin", "=x"]);
    let env_noname = mk("env-noname", Some(env_noname.to_string()));
    let cases = [
        (uid_max, "uids and gids must be in range 0-2147483647"),
        (gid_big, "uids and gids must be in range 0-2147483647"),
        (env_noname, r#"environment variable name can't be empty: "=x""#),
        (s.path().join("missing").to_str().unwrap().to_string(), "does not exist"),
        (nocfg, "has no config.json"),
        (malformed, "malformed JSON"),
        (v2, "unsupported ociVersion"),
        (noargs, "process.args must not be empty"),
        (linked, "invalid rootfs: root.path"),
    ];
    for (i, (b, want)) in cases.iter().enumerate() {
        let id = format!("bad-bundle-{i}");
        fails_cleanly(&root, &log, &["create", "--bundle", b, &id], want);
        nothing_left(&root, &id, b);
    }
}

#[test]
fn id_errors() {
    let s = Scratch::new("badid");
    let root = s.path().join("root");
    let log = s.path().join("log.json");
    let b = bundle(s.path(), "b", &["sleep", "100"], |_| {});
    let bs = b.to_str().unwrap();
    for id in ["../evil", "a/b", "..", "with space"] {
        fails_cleanly(&root, &log, &["create", "--bundle", bs, id], "invalid container id");
    }
    let long = "x".repeat(256);
    fails_cleanly(&root, &log, &["create", "--bundle", bs, &long], "longer than 255");
    assert!(!root.exists() || std::fs::read_dir(&root).unwrap().next().is_none());

    // duplicate id: the second create fails and the first container is untouched
    assert!(nx_detached(&root, &["create", "--bundle", bs, "bad-dup"], &s.path().join("out")).success());
    let first = state(&root, "bad-dup").unwrap();
    fails_cleanly(&root, &log, &["create", "--bundle", bs, "bad-dup"], "already exists");
    assert_eq!(state(&root, "bad-dup").unwrap(), first);
    assert_eq!(procs_with(bs).len(), 1, "only the first container's waiting init");

    // start on running, delete running without --force
    assert!(nx(&root, &["start", "bad-dup"]).status.success());
    fails_cleanly(&root, &log, &["start", "bad-dup"], "cannot start");
    fails_cleanly(&root, &log, &["delete", "bad-dup"], "not stopped");
    assert_eq!(status_of(&root, "bad-dup"), "running");
    fails_cleanly(&root, &log, &["state", "bad-nope"], "does not exist");
    fails_cleanly(&root, &log, &["kill", "bad-nope", "KILL"], "does not exist");
    // runc looks the container up before it parses the signal: exit 1 for
    // both, "does not exist" first (a fresh-clone tester saw exit 2 here)
    fails_cleanly(&root, &log, &["kill", "bad-nope", "SIGNOPE"], "does not exist");
    for (args, want) in [
        (&["kill", "bad-nope", "SIGNOPE"][..], "does not exist"),
        (&["kill", "bad-dup", "SIGNOPE"], "invalid signal"),
        (&["update", "bad-nope"], "does not exist"),
    ] {
        let o = nx(&root, args);
        assert_eq!(o.status.code(), Some(1), "{args:?} exits 1 as runc does: {}", stderr(&o));
        assert!(stderr(&o).contains(want), "{args:?}: {}", stderr(&o));
    }
    let d = nx(&root, &["delete", "--force", "bad-dup"]);
    assert!(d.status.success(), "{}", stderr(&d));
    nothing_left(&root, "bad-dup", bs);
    assert!(nx(&root, &["delete", "--force", "bad-dup"]).status.success(), "force delete of a missing container succeeds");
}

/// `exec` takes runc 1.1.5's rules for uids, gids and env entries from the
/// flags and from a `--process` file, and fails before any process starts.
#[test]
fn exec_user_and_env_errors() {
    let s = Scratch::new("badexec");
    let root = s.path().join("root");
    let log = s.path().join("log.json");
    let b = bundle(s.path(), "b", &["sleep", "100"], |_| {});
    let bs = b.to_str().unwrap();
    assert!(nx_detached(&root, &["create", "--bundle", bs, "bad-exec"], &s.path().join("out")).success());
    assert!(nx(&root, &["start", "bad-exec"]).status.success());
    let range = "uids and gids must be in range 0-2147483647";
    let file = s.path().join("process.json");
    std::fs::write(&file, r#"{"args": ["id"], "cwd": "/", "user": {"uid": 0, "gid": 4294967295}}"#).unwrap();
    let cases: [(&[&str], &str); 7] = [
        (&["exec", "-u", "4294967295", "bad-exec", "id"], range),
        (&["exec", "-u", "2147483648", "bad-exec", "id"], range),
        (&["exec", "-u", "0:4294967295", "bad-exec", "id"], range),
        (&["exec", "-e", "", "bad-exec", "id"], r#"invalid environment variable: """#),
        (&["exec", "-e", "=x", "bad-exec", "id"], r#"environment variable name can't be empty: "=x""#),
        (&["exec", "-e", "x", "bad-exec", "id"], r#"invalid environment variable: "x""#),
        (&["exec", "--process", file.to_str().unwrap(), "bad-exec"], range),
    ];
    for (args, want) in cases {
        fails_cleanly(&root, &log, args, want);
    }
    assert_eq!(status_of(&root, "bad-exec"), "running");
    let ps = nx(&root, &["ps", "--format", "json", "bad-exec"]);
    let pids: Vec<i32> = serde_json::from_slice(&ps.stdout).unwrap();
    assert_eq!(pids.len(), 1, "only the container's init, no exec'd process: {pids:?}");
    assert!(nx(&root, &["delete", "--force", "bad-exec"]).status.success());
    nothing_left(&root, "bad-exec", bs);
}

#[test]
fn systemd_cgroup_is_refused_clearly() {
    let s = Scratch::new("systemd");
    let root = s.path().join("root");
    let log = s.path().join("log.json");
    let b = bundle(s.path(), "b", &["true"], |_| {});
    let args = ["--systemd-cgroup", "create", "--bundle", b.to_str().unwrap(), "bad-systemd"];
    fails_cleanly(&root, &log, &args, "--systemd-cgroup is not supported");
    nothing_left(&root, "bad-systemd", b.to_str().unwrap());
}

#[test]
fn usage_errors_are_not_commands_or_ids() {
    let s = Scratch::new("usage");
    let root = s.path().join("root");
    let log = s.path().join("log.json");
    for args in [
        vec!["create", "--bogus-flag", "x"],
        vec!["start"],
        vec!["start", "a", "b"],
        vec!["kill"],
        vec!["frobnicate", "x"],
    ] {
        let _ = std::fs::remove_file(&log);
        let mut full = vec!["--log", log.to_str().unwrap(), "--log-format", "json"];
        full.extend_from_slice(&args);
        let o = nx(&root, &full);
        assert_eq!(o.status.code(), Some(2), "{args:?}: usage errors exit 2");
        let err = stderr(&o);
        assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: one line: {err}");
        assert!(err.contains("usage: nexcage"), "{args:?}: {err}");
        let text = std::fs::read_to_string(&log).expect("log exists");
        assert!(text.contains("\"level\":\"error\""), "{args:?}: {text}");
        assert!(!root.exists() || std::fs::read_dir(&root).unwrap().next().is_none(), "{args:?} created state");
    }
}

#[test]
fn version_has_runc_shape() {
    let o = nx(Path::new("/nonexistent"), &["--version"]);
    assert!(o.status.success());
    let out = String::from_utf8_lossy(&o.stdout);
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("nexcage version "), "{out}");
    assert!(lines[1].starts_with("commit: "));
    assert!(lines[2].starts_with("spec: 1."));
}

/// runc opens `--log` with O_CREAT in an existing directory: a missing
/// directory is an error, and nothing is created.
#[test]
fn log_in_a_missing_dir_fails_without_creating_it() {
    let s = Scratch::new("logdir");
    let root = s.path().join("root");
    let log = s.path().join("missing/dir/log.json");
    let o = nx(&root, &["--log", log.to_str().unwrap(), "state", "nope"]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains("cannot open log file") && err.contains("missing/dir/log.json"), "{err}");
    assert!(!s.path().join("missing").exists(), "the log's directory was created");
}

/// runc's `--log ""` means no log file: the command runs and says its error
/// on stderr only.
#[test]
fn empty_log_means_none() {
    let s = Scratch::new("emptylog");
    let root = s.path().join("root");
    let o = nx(&root, &["--log", "", "state", "nope"]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(err.contains("nope") && err.contains("does not exist"), "{err}");
}
