//! Differential tests: the same bundle and the same command sequence under
//! runc (the reference) and nexcage must give the same observable results:
//! stdout/stderr, exit codes, state JSON at every step, and which misuses fail.
//!
//! The bundle is the example (bundles/busybox/config.json) with two changes
//! made for runc's sake: `ociVersion` 1.0.2 (runc 1.1 speaks 1.0.x) and no
//! `cgroup` mount at /sys/fs/cgroup (runc 1.1.5 cannot mount the hybrid
//! hierarchy once the crun hugetlb fix, /run/cg-hugetlb, is mounted on these
//! machines: "error mounting cgroup ... cg-hugetlb: invalid argument").
mod support;

use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Output;
use support::*;

struct Runtime {
    name: &'static str,
    bin: String,
    root: PathBuf,
    ids: std::cell::RefCell<Vec<String>>,
}

impl Runtime {
    fn new(name: &'static str, bin: &str, dir: &Path) -> Runtime {
        Runtime { name, bin: bin.to_string(), root: dir.join(format!("root-{name}")), ids: Default::default() }
    }

    fn cmd(&self, args: &[&str]) -> Output {
        let root = self.root.display().to_string();
        let mut a = vec!["--root", root.as_str()];
        a.extend_from_slice(args);
        run_timeout(60, &self.bin, &a, &[])
    }

    /// `create` with its stdio on a file (the container keeps them).
    fn create(&self, bundle: &Path, id: &str, out: &Path) -> bool {
        self.ids.borrow_mut().push(id.to_string());
        let sh = format!(
            "exec {} --root {} create --bundle {} {} </dev/null >{} 2>&1",
            self.bin,
            self.root.display(),
            bundle.display(),
            id,
            out.display()
        );
        run_timeout(60, "sh", &["-c", &sh], &[]).status.success()
    }

    fn state(&self, id: &str) -> Option<Value> {
        let o = self.cmd(&["state", id]);
        o.status.success().then(|| serde_json::from_slice(&o.stdout).unwrap())
    }

    fn status(&self, id: &str) -> String {
        self.state(id).map(|v| v["status"].as_str().unwrap_or("?").to_string()).unwrap_or_else(|| "absent".into())
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        for id in self.ids.borrow().iter() {
            let _ = self.cmd(&["delete", "--force", id]);
        }
    }
}

/// A scratch dir, the bundle, and the two runtimes (None after SKIP).
fn setup(test: &str, args: &[&str]) -> Option<(Scratch, PathBuf, Runtime, Runtime)> {
    if !is_root() {
        skip(test, "needs root");
        return None;
    }
    if let Some(m) = missing(&["runc", "timeout"]) {
        skip(test, &m);
        return None;
    }
    if which("/bin/busybox").is_none() {
        skip(test, "busybox-static not installed");
        return None;
    }
    let dir = Scratch::new("diff");
    let b = bundle(dir.path(), "bundle", args, |s| {
        s["ociVersion"] = json!("1.0.2");
        let mounts: Vec<Value> =
            s["mounts"].as_array().unwrap().iter().filter(|m| m["type"] != "cgroup").cloned().collect();
        s["mounts"] = json!(mounts);
        s["annotations"] = json!({"org.example.diff": "yes", "nexcage.test/k": "v"});
    });
    let runc = Runtime::new("runc", which("runc").unwrap().to_str().unwrap(), dir.path());
    let nx = Runtime::new("nexcage", nexcage(), dir.path());
    Some((dir, b, runc, nx))
}

/// The state fields both runtimes must agree on, normalised (pid -> whether > 0).
fn observe(st: Option<Value>) -> Value {
    match st {
        None => json!("absent"),
        Some(v) => json!({
            "id": v["id"],
            "status": v["status"],
            "pid>0": v["pid"].as_i64().map(|p| p > 0),
            "bundle": v["bundle"],
            "rootfs": v["rootfs"],
            "annotations": v["annotations"],
            "ociVersion is 1.x": v["ociVersion"].as_str().map(|s| s.starts_with("1.")),
            "has created": v["created"].is_string(),
        }),
    }
}

/// `run` in the foreground: stdout, stderr and exit code match, and the
/// process sees the same environment (hostname, ids, cwd, env, caps, mounts).
#[test]
fn diff_run_output_and_exit_code() {
    let script = "echo out-line; echo err-line >&2; hostname; id; pwd; env | sort; \
                  grep -E '^(Cap(Inh|Prm|Eff|Bnd|Amb)|NoNewPrivs|Seccomp):' /proc/self/status; \
                  ls /dev | sort | tr '\\n' ' '; echo; \
                  awk '{print $2, $3}' /proc/mounts | sort; \
                  test -w /proc/sys && echo proc-sys-writable; cat /proc/kcore 2>&1 | head -c 40; echo; \
                  exit 3";
    let Some((dir, b, runc, nx)) = setup("diff_run_output_and_exit_code", &["sh", "-c", script]) else { return };
    let mut got = Vec::new();
    for rt in [&runc, &nx] {
        let id = unique("run");
        rt.ids.borrow_mut().push(id.clone());
        let o = rt.cmd(&["run", "--bundle", b.to_str().unwrap(), &id]);
        got.push((o.status.code(), text(&o.stdout), text(&o.stderr)));
        assert!(rt.state(&id).is_none(), "{}: run left the container behind", rt.name);
    }
    let _ = dir;
    assert_eq!(got[0].0, Some(3), "runc: {:?}", got[0]);
    assert_eq!(got[1].0, got[0].0, "exit code: runc {:?} nexcage {:?}", got[0], got[1]);
    let (r, n) = (got[0].1.lines().collect::<Vec<_>>(), got[1].1.lines().collect::<Vec<_>>());
    for (i, (a, c)) in r.iter().zip(n.iter()).enumerate() {
        assert_eq!(a, c, "stdout line {i} differs (runc vs nexcage)\nrunc:\n{}\nnexcage:\n{}", got[0].1, got[1].1);
    }
    assert_eq!(r.len(), n.len(), "stdout length\nrunc:\n{}\nnexcage:\n{}", got[0].1, got[1].1);
    assert_eq!(got[0].2, "err-line\n");
    assert_eq!(got[1].2, got[0].2, "stderr");
}

/// create / start / kill / delete with `state` after every step.
#[test]
fn diff_lifecycle_state() {
    let Some((dir, b, runc, nx)) = setup("diff_lifecycle_state", &["sleep", "1000"]) else { return };
    let mut trace: Vec<Vec<(String, Value)>> = Vec::new();
    for rt in [&runc, &nx] {
        let id = "diff-c1".to_string(); // same id in both: it appears in the state
        let mut t = Vec::new();
        let ok = rt.create(&b, &id, &dir.join(&format!("{}.out", rt.name)));
        t.push(("create ok".into(), json!(ok)));
        t.push(("after create".into(), observe(rt.state(&id))));
        let o = rt.cmd(&["start", &id]);
        t.push(("start ok".into(), json!(o.status.success())));
        t.push(("after start".into(), observe(rt.state(&id))));
        let o = rt.cmd(&["kill", &id, "KILL"]);
        t.push(("kill ok".into(), json!(o.status.success())));
        assert!(wait_until(10, || rt.status(&id) == "stopped"), "{}: not stopped after SIGKILL", rt.name);
        t.push(("after kill".into(), observe(rt.state(&id))));
        let o = rt.cmd(&["delete", &id]);
        t.push(("delete ok".into(), json!(o.status.success())));
        t.push(("after delete".into(), observe(rt.state(&id))));
        t.push(("rootfs kept".into(), json!(dir.join("rootfs/bin/busybox").exists())));
        trace.push(t);
    }
    for (a, c) in trace[0].iter().zip(trace[1].iter()) {
        assert_eq!(a, c, "step {:?}: runc vs nexcage\nrunc: {:#?}\nnexcage: {:#?}", a.0, trace[0], trace[1]);
    }
    // sanity: the reference did what the spec says
    assert_eq!(trace[0][1].1["status"], "created");
    assert_eq!(trace[0][3].1["status"], "running");
    assert_eq!(trace[0][5].1["status"], "stopped");
    assert_eq!(trace[0][7].1, "absent");
}

/// The same misuses fail (non-zero) under both, leave the same state, and
/// carry the error words engines match on.
#[test]
fn diff_misuse_errors() {
    let Some((dir, b, runc, nx)) = setup("diff_misuse_errors", &["sleep", "1000"]) else { return };
    let mut trace: Vec<Vec<(String, Value)>> = Vec::new();
    for rt in [&runc, &nx] {
        let id = "diff-m1";
        let mut t: Vec<(String, Value)> = Vec::new();
        let step = |t: &mut Vec<(String, Value)>, name: &str, o: Output, must: Option<&str>| {
            let msg = text(&o.stderr);
            if let Some(w) = must {
                assert!(msg.contains(w), "{} {name}: stderr {msg:?} lacks {w:?}", rt.name);
            }
            t.push((name.to_string(), json!(o.status.success())));
        };
        step(&mut t, "state unknown", rt.cmd(&["state", "diff-nope"]), Some("does not exist"));
        step(&mut t, "start unknown", rt.cmd(&["start", "diff-nope"]), Some("does not exist"));
        step(&mut t, "kill unknown", rt.cmd(&["kill", "diff-nope", "KILL"]), Some("does not exist"));
        step(&mut t, "delete unknown", rt.cmd(&["delete", "diff-nope"]), Some("does not exist"));
        assert!(rt.create(&b, id, &dir.join(&format!("{}.out", rt.name))));
        let o = rt.cmd(&["create", "--bundle", b.to_str().unwrap(), id]);
        step(&mut t, "create existing id", o, None);
        // runc 1.1 deletes a *created* container without --force (it kills
        // it first; engines rely on it when start fails); nexcage does too.
        step(&mut t, "delete created (no force)", rt.cmd(&["delete", id]), None);
        t.push(("after delete created".into(), json!(rt.status(id))));
        assert!(rt.create(&b, id, &dir.join(&format!("{}.out1", rt.name))));
        step(&mut t, "start", rt.cmd(&["start", id]), None);
        step(&mut t, "start twice", rt.cmd(&["start", id]), None);
        t.push(("after start twice".into(), json!(rt.status(id))));
        step(&mut t, "delete running", rt.cmd(&["delete", id]), None);
        t.push(("after delete running".into(), json!(rt.status(id))));
        step(&mut t, "kill bad signal", rt.cmd(&["kill", id, "NOSUCHSIG"]), None);
        t.push(("after bad signal".into(), json!(rt.status(id))));
        step(&mut t, "kill 9", rt.cmd(&["kill", id, "9"]), None);
        assert!(wait_until(10, || rt.status(id) == "stopped"), "{}: not stopped after kill 9: {t:?}", rt.name);
        step(&mut t, "kill stopped", rt.cmd(&["kill", id, "KILL"]), Some("container not running"));
        step(&mut t, "start stopped", rt.cmd(&["start", id]), None);
        t.push(("after start stopped".into(), json!(rt.status(id))));
        step(&mut t, "delete stopped", rt.cmd(&["delete", id]), None);
        step(&mut t, "delete again", rt.cmd(&["delete", id]), Some("does not exist"));
        step(&mut t, "delete -f absent", rt.cmd(&["delete", "-f", id]), None);
        // delete --force of a running container
        assert!(rt.create(&b, id, &dir.join(&format!("{}.out2", rt.name))));
        step(&mut t, "start 2", rt.cmd(&["start", id]), None);
        let pid = rt.state(id).and_then(|v| v["pid"].as_i64()).unwrap_or(0);
        step(&mut t, "delete -f running", rt.cmd(&["delete", "-f", id]), None);
        t.push(("after delete -f".into(), json!(rt.status(id))));
        t.push((
            "process gone".into(),
            json!(wait_until(5, || !Path::new(&format!("/proc/{pid}")).exists()
                || std::fs::read_to_string(format!("/proc/{pid}/stat")).map(|s| s.contains(") Z ")).unwrap_or(true))),
        ));
        trace.push(t);
    }
    for (a, c) in trace[0].iter().zip(trace[1].iter()) {
        assert_eq!(a, c, "step {:?}: runc vs nexcage\nrunc: {:?}\nnexcage: {:?}", a.0, trace[0], trace[1]);
    }
    assert_eq!(trace[0].len(), trace[1].len());
    eprintln!("misuse trace (same for both): {:?}", trace[1]);
}

/// exec and pause in each status: the same exit codes as runc (exec's own
/// failures are 255) and the words engines match on.
#[test]
fn diff_exec_pause_by_status() {
    let Some((dir, b, runc, nx)) = setup("diff_exec_pause_by_status", &["sleep", "1000"]) else { return };
    let mut trace: Vec<Vec<(String, Value)>> = Vec::new();
    for rt in [&runc, &nx] {
        let id = "diff-e1";
        let mut t: Vec<(String, Value)> = Vec::new();
        let mut step = |name: &str, args: &[&str], must: Option<&str>| {
            let o = rt.cmd(args);
            let msg = text(&o.stderr);
            if let Some(w) = must {
                assert!(msg.contains(w), "{} {name}: stderr {msg:?} lacks {w:?}", rt.name);
            }
            t.push((name.to_string(), json!(o.status.code())));
        };
        assert!(rt.create(&b, id, &dir.join(&format!("{}.out", rt.name))));
        step("exec created", &["exec", id, "true"], None);
        step("pause created", &["pause", id], None);
        step("resume created", &["resume", id], None);
        step("start", &["start", id], None);
        step("resume running", &["resume", id], Some("container not paused"));
        step("pause", &["pause", id], None);
        step("pause paused", &["pause", id], Some("container not running"));
        step("exec paused", &["exec", id, "true"], Some("cannot exec in a paused container"));
        step("resume", &["resume", id], None);
        step("kill", &["kill", id, "KILL"], None);
        assert!(wait_until(10, || rt.status(id) == "stopped"), "{}: not stopped", rt.name);
        step("exec stopped", &["exec", id, "true"], Some("cannot exec in a stopped container"));
        step("pause stopped", &["pause", id], Some("container not running"));
        step("delete", &["delete", id], None);
        trace.push(t);
    }
    assert_eq!(trace[0], trace[1], "runc vs nexcage");
}

/// Relative `--root`, `--bundle` and `--pid-file` are resolved against the
/// caller's cwd (runc makes them absolute): the state must not split between
/// cwd and the bundle dir the runtime chdirs into. (nexcage bug, fixed.)
#[test]
fn diff_relative_paths() {
    let Some((dir, _b, runc, nx)) = setup("diff_relative_paths", &["sleep", "1000"]) else { return };
    let mut got = Vec::new();
    for rt in [&runc, &nx] {
        let id = format!("diff-rel-{}", rt.name);
        rt.ids.borrow_mut().push(id.clone());
        let root = format!("relroot-{}", rt.name);
        let pidf = format!("pid-{}", rt.name);
        let sh = format!(
            "cd {} && exec {} --root {root} create --bundle bundle --pid-file {pidf} {id} </dev/null >{id}.out 2>&1",
            dir.path().display(),
            rt.bin
        );
        let ok = run_timeout(60, "sh", &["-c", &sh], &[]).status.success();
        // the Drop guard uses the absolute form of the same root
        let abs = Runtime { name: rt.name, bin: rt.bin.clone(), root: dir.join(&root), ids: Default::default() };
        abs.ids.borrow_mut().push(id.clone());
        let st = abs.state(&id);
        let pid_in_file = std::fs::read_to_string(dir.join(&pidf)).ok().and_then(|s| s.trim().parse::<i64>().ok());
        let pid_in_state = st.as_ref().and_then(|v| v["pid"].as_i64());
        got.push(json!({
            "create ok": ok,
            "status": st.as_ref().map(|v| v["status"].clone()),
            "pid file == state pid": pid_in_file.is_some() && pid_in_file == pid_in_state,
            "nothing in bundle dir": !dir.join("bundle").join(&root).exists(),
        }));
        let _ = abs.cmd(&["delete", "--force", &id]);
    }
    assert_eq!(got[0], json!({"create ok": true, "status": "created", "pid file == state pid": true, "nothing in bundle dir": true}));
    assert_eq!(got[1], got[0], "runc vs nexcage with relative paths");
}
