//! containerd 1.6 drives nexcage through its runc shim (`ctr run --runc-binary
//! <abs nexcage>`). Each test starts its own containerd with a private config
//! (own root/state/socket, CRI disabled) in a scratch directory and a unique
//! namespace; a Drop guard kills tasks, containerd and shims and removes
//! mounts and directories even when the test fails.
mod support;

use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use support::*;

const IMAGE: &str = "localhost/busybox:latest";

struct Containerd {
    dir: Scratch,
    ns: String,
    child: Option<Child>,
}

impl Containerd {
    fn new(test: &str) -> Option<Containerd> {
        if !is_root() {
            skip(test, "needs root");
            return None;
        }
        if let Some(m) = missing(&["containerd", "ctr", "containerd-shim-runc-v2", "timeout", "tar"]) {
            skip(test, &m);
            return None;
        }
        // the OCI archive is made with `podman save --format oci-archive`
        if let Some(m) = missing(&["podman"]) {
            skip(test, &format!("{m} (used to build the OCI image archive)"));
            return None;
        }
        if which("/bin/busybox").is_none() {
            skip(test, "busybox-static not installed");
            return None;
        }
        let dir = Scratch::new("cd");
        let ns = unique("nxt").replace('-', "_");
        let d = dir.path().display().to_string();
        std::fs::write(
            dir.join("config.toml"),
            format!(
                "version = 2\n\
                 root = \"{d}/root\"\n\
                 state = \"{d}/state\"\n\
                 disabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n\
                 [grpc]\n  address = \"{d}/containerd.sock\"\n\
                 [ttrpc]\n  address = \"{d}/containerd-ttrpc.sock\"\n\
                 [debug]\n  address = \"{d}/debug.sock\"\n\
                 [metrics]\n  address = \"\"\n"
            ),
        )
        .unwrap();
        let log = std::fs::File::create(dir.join("containerd.log")).unwrap();
        let child = Command::new("containerd")
            .arg("--config")
            .arg(dir.join("config.toml"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let mut c = Containerd { dir, ns, child: Some(child) };
        let up = wait_until(30, || c.ctr(&["version"]).status.success());
        assert!(up, "containerd did not come up: {}", std::fs::read_to_string(c.dir.join("containerd.log")).unwrap_or_default());
        c.import_image();
        Some(c)
    }

    /// Imports busybox from an OCI archive made by podman from the rootfs.
    fn import_image(&mut self) {
        let rootfs = rootfs(self.dir.path());
        let conf = self.dir.join("containers.conf");
        std::fs::write(&conf, "[containers]\ndefault_ulimits = [\"nofile=1024:1024\"]\n").unwrap();
        let pm = format!(
            "podman --root {d}/pr --runroot {d}/prr --tmpdir {d}/pt",
            d = self.dir.path().display()
        );
        let sh = format!(
            "set -e; tar -C {r} -c . | {pm} import - localhost/busybox >/dev/null; \
             {pm} save --format oci-archive -o {d}/busybox.tar localhost/busybox; \
             {pm} system reset -f >/dev/null 2>&1 || true",
            r = rootfs.display(),
            d = self.dir.path().display()
        );
        let o = run_timeout(120, "sh", &["-c", &sh], &[("CONTAINERS_CONF", conf.to_str().unwrap())]);
        assert!(o.status.success(), "building the OCI archive: {}", show(&o));
        let archive = self.dir.join("busybox.tar");
        self.ok(&["images", "import", archive.to_str().unwrap()]);
        assert!(self.ok(&["images", "ls", "-q"]).contains(IMAGE));
    }

    fn sock(&self) -> String {
        self.dir.join("containerd.sock").display().to_string()
    }

    fn ctr(&self, args: &[&str]) -> Output {
        let sock = self.sock();
        let mut a = vec!["--address", sock.as_str(), "--namespace", self.ns.as_str()];
        a.extend_from_slice(args);
        run_timeout(120, "ctr", &a, &[])
    }

    fn ok(&self, args: &[&str]) -> String {
        let o = self.ctr(args);
        assert!(o.status.success(), "ctr {args:?}: {}", show(&o));
        text(&o.stdout)
    }

    /// The bundle the runc shim made for `id` (it passes `--log <bundle>/log.json`).
    fn bundle(&self, id: &str) -> PathBuf {
        self.dir.join("state").join("io.containerd.runtime.v2.task").join(&self.ns).join(id)
    }

    /// The `--root` the runc shim passes to the runtime for this namespace.
    fn runtime_root(&self) -> PathBuf {
        PathBuf::from("/run/containerd/runc").join(&self.ns)
    }

    /// `ctr task ls` status of `id` (e.g. RUNNING, STOPPED), or None.
    fn task_status(&self, id: &str) -> Option<String> {
        let out = self.ok(&["task", "ls"]);
        out.lines().skip(1).find_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.first() == Some(&id)).then(|| f.get(2).unwrap_or(&"").to_string())
        })
    }

    fn nexcage_state(&self, id: &str) -> Option<serde_json::Value> {
        let root = self.runtime_root();
        let o = run_timeout(30, nexcage(), &["--root", root.to_str().unwrap(), "state", id], &[]);
        o.status.success().then(|| serde_json::from_slice(&o.stdout).unwrap())
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let ids: Vec<String> = text(&self.ctr(&["containers", "ls", "-q"]).stdout).lines().map(|s| s.to_string()).collect();
            for id in &ids {
                let _ = self.ctr(&["task", "kill", "-a", "-s", "SIGKILL", id]);
            }
            for id in &ids {
                let _ = self.ctr(&["task", "delete", "-f", id]);
                let _ = self.ctr(&["containers", "delete", id]);
            }
            let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
            let _ = wait_until(10, || matches!(child.try_wait(), Ok(Some(_))));
            let _ = child.kill();
            let _ = child.wait();
        }
        // shims (and anything else) still talking to this containerd
        kill_procs_with(&self.sock());
        let _ = std::fs::remove_dir_all(self.runtime_root());
        // Scratch unmounts the snapshot mounts and removes the directory.
    }
}

/// `ctr run`: output and exit status pass through nexcage.
#[test]
fn ctr_run_output_and_exit_status() {
    let Some(c) = Containerd::new("ctr_run_output_and_exit_status") else { return };
    let id = unique("r").replace('-', "_");
    let o = c.ctr(&["run", "--rm", "--runc-binary", nexcage(), IMAGE, &id, "sh", "-c", "echo hello-from-ctr; exit 5"]);
    assert_eq!(o.status.code(), Some(5), "{}", show(&o));
    assert_eq!(text(&o.stdout), "hello-from-ctr\n", "{}", show(&o));

    let id = unique("r").replace('-', "_");
    let o = c.ctr(&["run", "--rm", "--runc-binary", nexcage(), IMAGE, &id, "echo", "zero"]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert_eq!(text(&o.stdout), "zero\n");
    assert_eq!(c.ok(&["containers", "ls", "-q"]).trim(), "", "run --rm left a container");
}

/// `ctr run -d`, `task exec`, `task kill` (SIGTERM handled -> 143; SIGKILL
/// -> 137), `task delete`; the shim's `--root` holds nexcage's state.
#[test]
fn ctr_task_exec_kill_delete() {
    let Some(c) = Containerd::new("ctr_task_exec_kill_delete") else { return };
    let id = unique("t").replace('-', "_");
    c.ok(&[
        "run", "-d", "--runc-binary", nexcage(), IMAGE, &id, "sh", "-c",
        "trap 'exit 143' TERM; while :; do sleep 0.1; done",
    ]);
    assert_eq!(c.task_status(&id).as_deref(), Some("RUNNING"));

    // nexcage kept its state under the --root the shim passed, with the shim's bundle
    let st = c.nexcage_state(&id).expect("nexcage state under /run/containerd/runc/<ns>");
    assert_eq!(st["status"], "running");
    assert_eq!(st["bundle"], c.bundle(&id).display().to_string());
    assert!(st["pid"].as_i64().unwrap() > 0);
    // the shim's --log file exists (created by nexcage: the shim only passes the path)
    assert!(c.bundle(&id).join("log.json").exists(), "no <bundle>/log.json");

    let o = c.ctr(&["task", "exec", "--exec-id", "e1", &id, "sh", "-c", "echo from-exec; exit 4"]);
    assert_eq!(o.status.code(), Some(4), "{}", show(&o));
    assert_eq!(text(&o.stdout), "from-exec\n");

    c.ok(&["task", "kill", &id]); // SIGTERM
    assert!(wait_until(10, || c.task_status(&id).as_deref() == Some("STOPPED")), "task did not stop on SIGTERM");
    let o = c.ctr(&["task", "delete", &id]);
    assert!(o.status.success(), "{}", show(&o));
    assert!(text(&o.stderr).contains("exit code 143"), "{}", show(&o));
    assert!(c.nexcage_state(&id).is_none(), "task delete left nexcage state");
    c.ok(&["containers", "delete", &id]);

    // trap-less PID 1 ignores SIGTERM; SIGKILL ends it with 137
    let id = unique("k").replace('-', "_");
    c.ok(&["run", "-d", "--runc-binary", nexcage(), IMAGE, &id, "sleep", "1000"]);
    c.ok(&["task", "kill", "-s", "SIGKILL", &id]);
    assert!(wait_until(10, || c.task_status(&id).as_deref() == Some("STOPPED")));
    let o = c.ctr(&["task", "delete", &id]);
    assert!(text(&o.stderr).contains("exit code 137"), "{}", show(&o));
    c.ok(&["containers", "delete", &id]);
}

/// containerd reports runtime errors from the last `"level":"error"` line
/// of `<bundle>/log.json` (it runs nexcage with `--log <bundle>/log.json
/// --log-format json`): the message reaches ctr's output, not a bare
/// "exit status 1", and the file holds runc's JSON shape.
#[test]
fn ctr_runtime_error_via_json_log() {
    let Some(c) = Containerd::new("ctr_runtime_error_via_json_log") else { return };

    // create failure: the message comes from the log (the bundle is removed afterwards)
    let id = unique("e").replace('-', "_");
    let o = c.ctr(&["run", "--rm", "--runc-binary", nexcage(), IMAGE, &id, "/no-such-binary"]);
    assert!(!o.status.success());
    let all = text(&o.stdout) + &text(&o.stderr);
    assert!(all.contains("OCI runtime create failed"), "{}", show(&o));
    assert!(all.contains("/no-such-binary"), "runtime's JSON error did not reach ctr: {}", show(&o));
    assert!(!all.contains("exit status 1"), "shim found no error line in log.json: {}", show(&o));
    let _ = c.ctr(&["containers", "delete", &id]);

    // exec failure on a running task: the bundle stays, so read log.json too
    let id = unique("x").replace('-', "_");
    c.ok(&["run", "-d", "--runc-binary", nexcage(), IMAGE, &id, "sleep", "1000"]);
    let o = c.ctr(&["task", "exec", "--exec-id", "bad", &id, "/no-such-exec"]);
    assert!(!o.status.success());
    let all = text(&o.stdout) + &text(&o.stderr);
    assert!(all.contains("OCI runtime exec failed"), "{}", show(&o));
    assert!(all.contains("/no-such-exec"), "{}", show(&o));
    assert!(!all.contains("exit status 1"), "{}", show(&o));

    let log = std::fs::read_to_string(c.bundle(&id).join("log.json")).unwrap();
    let last_err = log
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .rfind(|v| v["level"] == "error")
        .unwrap_or_else(|| panic!("no JSON error line in log.json: {log:?}"));
    assert!(last_err["msg"].as_str().unwrap().contains("/no-such-exec"), "{last_err}");
    assert!(last_err["time"].as_str().is_some_and(|t| t.contains('T')), "{last_err}");
    for l in log.lines() {
        let v: serde_json::Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("non-JSON line {l:?} in log.json: {e}"));
        assert!(v["level"].is_string() && v["msg"].is_string() && v["time"].is_string(), "{l}");
    }

    c.ok(&["task", "kill", "-s", "SIGKILL", &id]);
    assert!(wait_until(10, || c.task_status(&id).as_deref() == Some("STOPPED")));
    c.ok(&["task", "delete", &id]);
    c.ok(&["containers", "delete", &id]);
}
