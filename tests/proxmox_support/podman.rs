//! Real Podman with nexcage as its runtime on the Proxmox backend: its own
//! storage under the environment, conmon given PATH and the config.

use super::{missing, nexcage, run_to_files, Env};
use std::process::{Command, Output, Stdio};

pub struct Podman<'a> {
    pub env: &'a Env,
    pub dir: std::path::PathBuf,
}

impl<'a> Podman<'a> {
    pub fn new(env: &'a Env) -> Podman<'a> {
        let dir = env.dir.join("podman");
        std::fs::create_dir_all(&dir).unwrap();
        // conmon gets only conmon_env_vars: PATH (pct wrappers) and the config go there.
        let conf = format!(
            "[containers]\ndefault_ulimits = [\"nofile=1024:1024\", \"nproc=1024:1024\"]\n[engine]\nconmon_env_vars = [\"PATH={}\", \"NEXCAGE_CONFIG={}\"]\n",
            env.path_var(),
            env.config().display()
        );
        std::fs::write(dir.join("containers.conf"), conf).unwrap();
        let p = Podman { env, dir };
        let b = env.bundle("img", &["true"], |_| {});
        let st = Command::new("sh")
            .arg("-c")
            .arg(format!("tar -C {} -c . | podman --root {} --runroot {} import - localhost/busybox >/dev/null", b.join("rootfs").display(), p.dir.join("root").display(), p.dir.join("runroot").display()))
            .env("CONTAINERS_CONF", p.dir.join("containers.conf"))
            .status()
            .unwrap();
        assert!(st.success(), "podman import");
        p
    }

    pub fn cmd(&self) -> Command {
        let mut c = self.env.cmd("podman");
        c.env("CONTAINERS_CONF", self.dir.join("containers.conf"))
            .arg("--root")
            .arg(self.dir.join("root"))
            .arg("--runroot")
            .arg(self.dir.join("runroot"))
            .arg("--runtime")
            .arg(nexcage())
            // podman runs the runtime with only XDG_RUNTIME_DIR in its env:
            // NEXCAGE_CONFIG would not arrive, a global flag does.
            .arg("--runtime-flag")
            .arg(format!("config={}", self.env.config().display()))
            // conmon writes an empty `oom` file into its working directory
            // (besides its persist dir) when the container is OOM-killed,
            // and Podman starts it in its own: keep that in the environment.
            .current_dir(&self.dir)
            .stdin(Stdio::null());
        c
    }

    pub fn run(&self, args: &[&str]) -> Output {
        run_to_files(self.cmd().args(args), &self.dir)
    }
}

/// podman 4.3's exit command (`container cleanup --rm`) drops
/// --runtime-flag, so its delete uses the default --root: use that root.
pub fn podman_env(name: &str, driver: &str) -> Option<Env> {
    if let Some(why) = missing(&["podman"]) {
        eprintln!("SKIP {name}: {why}");
        return None;
    }
    let mut env = Env::up(name, driver);
    env.root = "/run/nexcage".into();
    Some(env)
}

