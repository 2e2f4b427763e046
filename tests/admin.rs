//! The administrator's path (user guide examples) on the native backend:
//! `create --name --image` from a local OCI image, with resources, env,
//! mounts and `--start`; `logs`, `exec`, `stats`, `stop` with its timeout,
//! `info` reading the enforced limits back; image in-use protection;
//! `config set` validation; `system check` failing with a hint.

mod oci_fixture;
mod support;
use support::*;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A private root, image store and config per test.
struct Env {
    s: Scratch,
    ids: Vec<String>,
}

impl Env {
    fn new(tag: &str) -> Env {
        let s = Scratch::new(&format!("admin-{tag}"));
        std::fs::write(s.path().join("config.json"), "{}").unwrap();
        Env { s, ids: Vec::new() }
    }
    fn dir(&self) -> &Path {
        self.s.path()
    }
    fn store(&self) -> PathBuf {
        self.dir().join("store")
    }
    fn cfg(&self) -> PathBuf {
        self.dir().join("config.json")
    }
    fn cmd(&self) -> Command {
        let mut c = Command::new(nexcage());
        c.arg("--root").arg(self.dir().join("root")).arg("--config").arg(self.cfg());
        c.env("NEXCAGE_STORAGE_PATH", self.store()).stdin(Stdio::null());
        c
    }
    fn nx(&self, args: &[&str]) -> Output {
        self.cmd().args(args).output().unwrap()
    }
    fn ok(&self, args: &[&str]) -> String {
        let o = self.nx(args);
        assert!(o.status.success(), "nexcage {args:?}: {}{}", String::from_utf8_lossy(&o.stdout), stderr(&o));
        String::from_utf8_lossy(&o.stdout).into_owned()
    }
    fn json(&self, args: &[&str]) -> serde_json::Value {
        serde_json::from_str(&self.ok(args)).unwrap()
    }
    fn track(&mut self, id: &str) {
        self.ids.push(id.to_string());
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        for id in &self.ids {
            let _ = self.nx(&["delete", "--force", id]);
        }
    }
}

/// An OCI image layout holding the busybox rootfs as one layer, whose Cmd
/// behaves by $APP: `web` serves /srv with httpd on $PORT; every app prints
/// a banner and then ignores SIGTERM (so `stop` must escalate to KILL).
fn image_layout(dir: &Path) -> PathBuf {
    let rootfs = rootfs(dir);
    let script = "echo app $APP starting; trap '' TERM; if [ \"$APP\" = web ]; then httpd -p $PORT -h /srv; fi; while true; do sleep 1; done";
    oci_fixture::oci_layout(&rootfs, dir, serde_json::json!({"Env": ["PATH=/bin:/usr/bin:/sbin"], "Cmd": ["sh", "-c", script], "WorkingDir": "/"}))
}

const IMAGE: &str = "localhost/admin-app:1";

fn import_image(env: &Env) {
    let layout = image_layout(env.dir());
    env.ok(&["image", "import", layout.to_str().unwrap(), "--name", IMAGE]);
}

fn wait_log(env: &Env, id: &str, needle: &str) -> String {
    let t0 = Instant::now();
    loop {
        let out = env.ok(&["logs", id]);
        if out.contains(needle) || t0.elapsed() > Duration::from_secs(10) {
            return out;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn http_get(port: u32) -> String {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port as u16)) else { return String::new() };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let _ = s.write_all(b"GET /index.html HTTP/1.0\r\nHost: localhost\r\n\r\n");
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

#[test]
fn web_application() {
    let mut env = Env::new("web");
    import_image(&env);
    let www = env.dir().join("www");
    std::fs::create_dir_all(&www).unwrap();
    std::fs::write(www.join("index.html"), "hello from the web example\n").unwrap();
    let id = format!("adm-web-{}", std::process::id());
    env.track(&id);
    let mount = format!("{}:/srv:ro", www.display());
    // Host network: the page is fetched from the host. (The native backend
    // leaves lo down in a new network namespace, so `none` cannot serve.)
    let port = 20000 + std::process::id() % 20000;
    let port_env = format!("PORT={port}");
    env.ok(&["create", "--name", &id, "--image", IMAGE, "--memory", "128", "--memory-swap", "64", "--cores", "1",
        "--cpu-quota", "50000", "--env", "APP=web", "--env", &port_env, "--mount", &mount, "--network", "host", "--start"]);
    assert_eq!(env.json(&["state", &id])["status"], "running");

    // logs --tail: the banner is the only line so far.
    let out = wait_log(&env, &id, "app web starting");
    assert!(out.contains("app web starting"), "{out}");
    let t = env.ok(&["logs", "--tail", "1", "--timestamps", &id]);
    assert!(t.lines().count() == 1 && t.contains(" stdout app web starting"), "{t}");

    // The server answers on the host's port with the mounted page; exec sees it too.
    let t0 = Instant::now();
    let page = loop {
        let got = http_get(port);
        if got.contains("hello") || t0.elapsed() > Duration::from_secs(10) {
            break got;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(page.contains("hello from the web example"), "{page}");
    let url = format!("http://127.0.0.1:{port}/index.html");
    let o = env.ok(&["exec", &id, "wget", "-qO-", &url]);
    assert!(o.contains("hello from the web example"), "{o}");
    let ro = env.nx(&["exec", &id, "sh", "-c", "echo x > /srv/new"]);
    assert!(!ro.status.success(), "the mount is read-only");

    // info --format json: limits as the kernel enforces them.
    let info = env.json(&["info", "--format", "json", &id]);
    let e = &info["enforced"];
    assert_eq!(e["memoryLimit"], 128 * 1024 * 1024, "{info}");
    assert_eq!(e["cpuQuota"], 50000, "{info}");
    assert_eq!(e["cpuPeriod"], 100000, "{info}");
    assert_eq!(e["cpus"], "0", "{info}");
    if !e["memorySwapLimit"].is_null() {
        assert_eq!(e["memorySwapLimit"], 192 * 1024 * 1024, "{info}");
    }
    assert_eq!(info["image"], IMAGE);
    assert!(info["pids"].as_array().unwrap().len() >= 2, "{info}");

    // The image is in use: remove refuses.
    let rm = env.nx(&["image", "remove", IMAGE]);
    assert!(!rm.status.success(), "image remove must refuse while {id} exists");
    let listed = env.ok(&["list", "--status", "running", "-q"]);
    assert!(listed.lines().any(|l| l == id), "{listed}");
    // runc's list names the state dir's owner, in JSON as in the table.
    let all = env.json(&["list", "--format", "json"]);
    let me = all.as_array().unwrap().iter().find(|c| c["id"] == id.as_str()).expect("listed");
    assert_eq!(me["owner"], "root", "{me}");

    env.ok(&["stop", "--force", &id]);
    env.ok(&["delete", &id]);
    assert!(!env.store().join("bundles").join(&id).exists(), "delete removes the admin bundle");
    env.ok(&["image", "remove", IMAGE]);
}

#[test]
fn development_environment() {
    let mut env = Env::new("dev");
    import_image(&env);
    let ws = env.dir().join("workspace");
    std::fs::create_dir_all(&ws).unwrap();
    let id = format!("adm-dev-{}", std::process::id());
    env.track(&id);
    let mount = format!("{}:/workspace", ws.display());
    env.ok(&["create", "--name", &id, "--image", IMAGE, "--memory", "256", "--cpu-shares", "512",
        "--env", "APP=dev", "--env", "EDITOR=vi", "--mount", &mount, "--start"]);
    wait_log(&env, &id, "app dev starting");

    // exec with the admin flags: -i, --workdir, --env.
    let out = env.ok(&["exec", "-i", "--workdir", "/workspace", "--env", "BUILD=1", &id, "sh", "-c", "echo built $EDITOR $BUILD > out.txt; pwd"]);
    assert_eq!(out.trim(), "/workspace");
    assert_eq!(std::fs::read_to_string(ws.join("out.txt")).unwrap().trim(), "built vi 1");

    let stats = env.json(&["stats", "--no-stream", "--format", "json", &id]);
    let row = &stats[0];
    assert_eq!(row["id"], id.as_str());
    assert!(row["memoryUsage"].as_u64().unwrap() > 0, "{stats}");
    assert_eq!(row["memoryLimit"], 256 * 1024 * 1024, "{stats}");
    assert!(row["pids"].as_u64().unwrap() >= 1, "{stats}");
    let table = env.ok(&["stats", "--no-stream", &id]);
    assert!(table.contains(&id) && table.contains("MEM USAGE"), "{table}");

    let info = env.json(&["info", "--format", "json", &id]);
    if !info["enforced"]["cpuShares"].is_null() {
        assert_eq!(info["enforced"]["cpuShares"], 512, "{info}");
    } else {
        assert!(info["enforced"]["cpuWeight"].as_u64().is_some(), "{info}");
    }

    // stop: the app ignores TERM, so it dies by KILL after the timeout.
    let t0 = Instant::now();
    env.ok(&["stop", "--timeout", "2", &id]);
    let took = t0.elapsed();
    assert!(took >= Duration::from_millis(1900) && took < Duration::from_secs(8), "stop took {took:?}");
    assert_eq!(env.json(&["state", &id])["status"], "stopped");
    let t0 = Instant::now();
    let info = loop {
        let i = env.json(&["info", "--format", "json", &id]);
        if !i["exit"].is_null() || t0.elapsed() > Duration::from_secs(5) {
            break i;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(info["exit"]["exitCode"], 137, "{info}");
    assert_eq!(info["exit"]["signal"], "SIGKILL", "{info}");

    // start again: same bundle, new monitor; the log keeps both runs.
    env.ok(&["start", &id]);
    assert_eq!(env.json(&["state", &id])["status"], "running");
    let t0 = Instant::now();
    while env.ok(&["logs", &id]).matches("app dev starting").count() < 2 && t0.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(env.ok(&["logs", &id]).matches("app dev starting").count(), 2);
    // restart: TERM is ignored, so KILL after 1 s, then a third run.
    env.ok(&["restart", "--timeout", "1", &id]);
    assert_eq!(env.json(&["state", &id])["status"], "running");
    let t0 = Instant::now();
    while env.ok(&["logs", &id]).matches("app dev starting").count() < 3 && t0.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(env.ok(&["logs", "--since", "1h", &id]).matches("app dev starting").count(), 3);
    assert_eq!(env.ok(&["logs", "--since", "2999-01-01T00:00:00Z", &id]), "");
    env.ok(&["delete", "--force", &id]);
}

#[test]
fn bundle_dir_as_image_and_runc_form_unchanged() {
    let mut env = Env::new("bdir");
    let b = bundle(env.dir(), "b", &["sh", "-c", "echo from-bundle; exit 3"], |_| {});
    let id = format!("adm-bdir-{}", std::process::id());
    env.track(&id);
    env.ok(&["create", "--name", &id, "--image", b.to_str().unwrap(), "--start"]);
    let t0 = Instant::now();
    while env.json(&["info", "--format", "json", &id])["exit"].is_null() && t0.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(env.json(&["info", "--format", "json", &id])["exit"]["exitCode"], 3);
    assert_eq!(env.ok(&["logs", &id]).trim(), "from-bundle");
    // Same id twice, --name vs ID mismatch, and options without --name are refused.
    assert!(!env.nx(&["create", "--name", &id, "--image", b.to_str().unwrap()]).status.success());
    let o = env.nx(&["create", "--name", "x1", "--image", b.to_str().unwrap(), "y1"]);
    assert!(!o.status.success() && stderr(&o).contains("same thing"), "{}", stderr(&o));
    // The user guide's `create --name N IMAGE`: the operand is the image.
    let o = env.nx(&["create", "--name", "x1", "no-such-image-y1"]);
    assert!(!o.status.success() && stderr(&o).contains("no-such-image-y1") && !stderr(&o).contains("same thing"), "{}", stderr(&o));
    let o = env.nx(&["create", "--memory", "64", "z1"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let o = env.nx(&["create"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    // --port without a bridged network is refused clearly.
    let o = env.nx(&["create", "--name", "p1", "--image", b.to_str().unwrap(), "--port", "8080:80"]);
    assert!(!o.status.success() && stderr(&o).contains("--port"), "{}", stderr(&o));
    assert!(!env.dir().join("root/p1").exists() && !env.store().join("bundles/p1").exists());
    env.ok(&["delete", &id]);
}

#[test]
fn config_set_validates() {
    let env = Env::new("cfg");
    std::fs::write(env.cfg(), r#"{"storage":{"pool":"tank"}}"#).unwrap();
    let before = std::fs::read(env.cfg()).unwrap();
    let o = env.nx(&["config", "set", "default_backend", "qemu"]);
    assert!(!o.status.success(), "invalid value accepted");
    let o2 = env.nx(&["config", "set", "no_such_key", "1"]);
    assert!(!o2.status.success());
    assert_eq!(std::fs::read(env.cfg()).unwrap(), before, "file changed by a refused set");
    env.ok(&["config", "set", "default_backend", "native"]);
    assert_eq!(env.ok(&["config", "get", "default_backend"]).trim(), "native");
    assert_eq!(env.ok(&["config", "get", "storage.pool"]).trim(), "tank");
    let shown: serde_json::Value = serde_json::from_str(&env.ok(&["config", "show"])).unwrap();
    assert_eq!(shown["default_backend"], "native");
}

#[test]
fn system_check_reports_missing_pool() {
    let env = Env::new("sys");
    std::fs::write(env.cfg(), r#"{"storage":{"pool":"nexcage-no-such-pool"}}"#).unwrap();
    let o = env.nx(&["system", "check"]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(!o.status.success(), "{out}");
    let line = out.lines().find(|l| l.starts_with("fail") && l.contains("nexcage-no-such-pool")).unwrap_or_else(|| panic!("{out}"));
    assert!(line.contains("hint:"), "{line}");
    assert!(out.lines().any(|l| l.starts_with("ok") && l.contains("kernel")), "{out}");
    let alias = env.nx(&["debug", "info"]);
    assert_eq!(alias.status.code(), o.status.code());
}

#[test]
fn autostart_after_reboot() {
    let mut env = Env::new("auto");
    let b = bundle(env.dir(), "b", &["sleep", "100"], |_| {});
    let id = format!("adm-auto-{}", std::process::id());
    env.track(&id);
    env.ok(&["create", "--name", &id, "--image", b.to_str().unwrap(), "--auto-start"]);
    assert_eq!(env.json(&["state", &id])["status"], "created");
    // A reboot loses --root (tmpfs) but not the data dir.
    env.ok(&["delete", "--force", &id]);
    env.ok(&["create", "--name", &id, "--image", b.to_str().unwrap(), "--auto-start"]);
    env.ok(&["kill", &id, "KILL"]);
    assert!(wait_status(&env.dir().join("root"), &id, "stopped"));
    let out = env.ok(&["autostart"]);
    assert!(out.contains(&id), "{out}");
    assert_eq!(env.json(&["state", &id])["status"], "running");
    env.ok(&["delete", "--force", &id]);
}
