//! Real containerd (private instance) driving nexcage's Proxmox backend via
//! `ctr run --runc-binary <nexcage>`: output, exit codes, `ctr task exec`,
//! `ctr task kill`. Both drivers.

mod proxmox_support;
use proxmox_support::*;
use std::process::{Child, Output};

struct Containerd {
    child: Child,
    sock: std::path::PathBuf,
}

impl Drop for Containerd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(env: &Env) -> Containerd {
    let d = env.dir.join("containerd");
    std::fs::create_dir_all(&d).unwrap();
    let sock = d.join("c.sock");
    let conf = format!(
        "version = 2\nroot = \"{0}/root\"\nstate = \"{0}/state\"\ndisabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n[grpc]\naddress = \"{1}\"\n[ttrpc]\naddress = \"{1}.ttrpc\"\n",
        d.display(),
        sock.display()
    );
    std::fs::write(d.join("config.toml"), conf).unwrap();
    let log = std::fs::File::create(d.join("containerd.log")).unwrap();
    // The shim inherits containerd's env, and passes it to the runtime.
    let child = env.cmd("containerd").arg("--config").arg(d.join("config.toml")).stdout(log.try_clone().unwrap()).stderr(log).spawn().unwrap();
    assert!(wait_until(20, || sock.exists()), "containerd did not start");
    Containerd { child, sock }
}

fn ctr(env: &Env, c: &Containerd, args: &[&str]) -> Output {
    run_to_files(env.cmd("ctr").arg("-a").arg(&c.sock).args(args), &env.dir)
}

fn containerd_e2e(driver: &str) {
    let env = env_or_skip!("containerd", driver, "containerd", "ctr");
    let c = start(&env);
    let b = env.bundle("img", &["true"], |_| {});
    let rootfs = b.join("rootfs");
    let rf = rootfs.to_str().unwrap();
    let nx = nexcage();
    let nxs = nx.to_str().unwrap();
    // `ctr run --rootfs` has no image config, so no PATH: given here, as
    // runc (which looks a program up in the process's PATH only) needs it.
    let path = "PATH=/usr/sbin:/usr/bin:/sbin:/bin";
    let o = ctr(&env, &c, &["run", "--rm", "--runc-binary", nxs, "--env", path, "--rootfs", rf, "t1", "echo", "hi"]);
    assert!(o.status.success(), "{}", out(&o));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "hi\n");
    let o = ctr(&env, &c, &["run", "--rm", "--runc-binary", nxs, "--env", path, "--rootfs", rf, "t2", "sh", "-c", "exit 5"]);
    assert_eq!(o.status.code(), Some(5), "{}", out(&o));
    assert!(wait_until(10, || env.guests().is_empty()), "{}", env.pct_list());

    let o = ctr(&env, &c, &["run", "-d", "--runc-binary", nxs, "--env", path, "--rootfs", rf, "t3", "sleep", "100"]);
    assert!(o.status.success(), "{}", out(&o));
    assert_eq!(env.guests().len(), 1, "{}", env.pct_list());
    let e = ctr(&env, &c, &["task", "exec", "--exec-id", "e1", "t3", "sh", "-c", "echo from-exec; exit 2"]);
    assert_eq!(e.status.code(), Some(2), "{}", out(&e));
    assert_eq!(String::from_utf8_lossy(&e.stdout), "from-exec\n");
    // The shim's SIGKILL of an exec's pid ends the process in the guest.
    let e = ctr(&env, &c, &["task", "exec", "-d", "--exec-id", "e2", "t3", "sleep", "84"]);
    assert!(e.status.success(), "{}", out(&e));
    let running = || std::process::Command::new("pgrep").args(["-f", "^sleep 84$"]).stdout(std::process::Stdio::null()).status().is_ok_and(|s| s.success());
    assert!(wait_until(5, running), "exec'd sleep not found");
    let k = ctr(&env, &c, &["task", "kill", "--exec-id", "e2", "-s", "SIGKILL", "t3"]);
    assert!(k.status.success(), "{}", out(&k));
    assert!(wait_until(5, || !running()), "exec'd process survived SIGKILL");
    let k = ctr(&env, &c, &["task", "kill", "-s", "SIGKILL", "t3"]);
    assert!(k.status.success(), "{}", out(&k));
    assert!(wait_until(10, || String::from_utf8_lossy(&ctr(&env, &c, &["task", "ls"]).stdout).contains("STOPPED")), "{}", out(&ctr(&env, &c, &["task", "ls"])));
    let r = ctr(&env, &c, &["task", "rm", "t3"]);
    assert!(r.status.success(), "{}", out(&r));
    let r = ctr(&env, &c, &["container", "rm", "t3"]);
    assert!(r.status.success(), "{}", out(&r));
    assert!(wait_until(10, || env.guests().is_empty() && env.datasets().is_empty()), "{} {:?}", env.pct_list(), env.datasets());
    assert!(env.lxc_dirs().is_empty());
}

#[test]
fn containerd_pct() {
    containerd_e2e("pct");
}

#[test]
fn containerd_api() {
    containerd_e2e("api");
}
