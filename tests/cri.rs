//! Kubernetes through containerd's CRI: pods with the runtime handler
//! `nexcage` driven over the CRI gRPC API as the kubelet does
//! (tests/cri_support). The sandbox always runs natively (routing rule 2);
//! app containers run natively or, routed by the `org.nexcage.backend`
//! annotation (allow-listed in the handler's `container_annotations`), on the
//! Proxmox backend through either driver (tests/proxmox_support: pve-double,
//! its API in the test's network namespace with containerd, real LXC,
//! zfs-fuse). A `shareProcessNamespace` pod joins the sandbox's PID namespace.
mod cri_support;
mod netns_fixture;
mod proxmox_support;
mod support;

use cri_support::*;
use k8s_cri::v1::ContainerState;

const TRAP_TERM: &str = "trap 'sleep 3; exit 42' TERM; echo ready; while :; do sleep 0.1; done";

/// What a pod test checks afterwards besides the CRI's own view.
struct Leftovers<'a> {
    env: &'a CriEnv,
    /// Proxmox: no guest, dataset, LXC dir or state left.
    proxmox: Option<&'a proxmox_support::Env>,
}

impl Leftovers<'_> {
    /// Stops and removes every container of `pod`, then the pod, and
    /// checks that nothing is left.
    fn tear_down(&self, pod: &str) {
        let cri = self.env.cri();
        let ids = cri.list(pod).expect("ListContainers");
        for id in &ids {
            cri.stop(id, 0).expect("StopContainer");
            cri.remove(id).expect("RemoveContainer");
        }
        cri.stop_pod(pod).expect("StopPodSandbox");
        cri.remove_pod(pod).expect("RemovePodSandbox");
        self.assert_none(pod, &ids);
    }

    /// RemovePodSandbox left nothing of `pod` and its containers `ids`.
    fn assert_none(&self, pod: &str, ids: &[String]) {
        let cri = self.env.cri();
        assert!(cri.pod_status(pod).is_err(), "pod still known after RemovePodSandbox");
        for id in std::iter::once(&pod.to_string()).chain(ids) {
            assert!(!self.env.runtime_root().join(id).exists(), "nexcage state dir of {id} left");
            assert_eq!(self.env.cgroups_of(id), Vec::<String>::new(), "cgroup of {id} left");
            assert_eq!(self.env.mounts_of(id), Vec::<String>::new(), "mount of {id} left");
        }
        assert_eq!(self.env.ipam_allocations(), Vec::<String>::new(), "CNI allocation left");
        let bridge_ports = self.env.netns.cmd("ip").args(["-o", "link", "show", "master", "cni-nx"]).output().unwrap();
        assert_eq!(support::text(&bridge_ports.stdout), "", "veth left on the CNI bridge");
        if let Some(px) = self.proxmox {
            assert!(proxmox_support::wait_until(10, || px.guests().is_empty() && px.datasets().is_empty()), "{} {:?}", px.pct_list(), px.datasets());
            assert_eq!(px.lxc_dirs(), Vec::<String>::new(), "LXC dirs left");
        }
    }
}

/// The cgroup v1 memory limit process `pid` runs under: its memory
/// cgroup's `hierarchical_memory_limit`, the lowest limit of that cgroup
/// and its ancestors.
fn memory_limit(pid: i32) -> String {
    let cg = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
    let path = cg.lines().find_map(|l| l.split_once(":memory:").map(|(_, p)| p.to_string())).expect("memory cgroup");
    let stat = std::fs::read_to_string(format!("/sys/fs/cgroup/memory{path}/memory.stat")).unwrap_or_default();
    stat.lines().find_map(|l| l.strip_prefix("hierarchical_memory_limit ")).unwrap_or_default().trim().to_string()
}

/// Must-show 1, 3 and 4 on one pod: sandbox native, the app container on
/// `backend` (None: native by default). Log, ExecSync, status running ->
/// exited with the real code, stats, stop with grace, cleanup.
fn pod_lifecycle(env: &CriEnv, proxmox: Option<&proxmox_support::Env>) {
    let cri = env.cri();
    let annotations: &[(&str, &str)] = if proxmox.is_some() { &[("org.nexcage.backend", "proxmox")] } else { &[] };
    let sandbox = env.pod_config("web");
    let pod = cri.run_pod(&sandbox).unwrap_or_else(|e| panic!("RunPodSandbox: {e}\n{}", env.log()));
    let st = cri.pod_status(&pod).expect("PodSandboxStatus");
    assert_eq!(st.state(), k8s_cri::v1::PodSandboxState::SandboxReady);
    assert_eq!(st.runtime_handler, HANDLER);
    // the sandbox is nexcage's, native, under the pod's cgroup parent
    let rec = support::nx(&env.runtime_root(), &["state", &pod]);
    assert!(rec.status.success(), "nexcage does not know the sandbox: {}", support::show(&rec));
    let parent = sandbox.linux.as_ref().unwrap().cgroup_parent.clone();
    assert!(
        env.cgroups_of(&pod).iter().any(|c| c.contains(&format!("{parent}/{pod}"))),
        "sandbox cgroup not under the pod's parent {parent}: {:?}",
        env.cgroups_of(&pod)
    );

    // app: prints, then exits 7 when told to
    let app = cri
        .create(&pod, &sandbox, "app", &["sh", "-c", "echo hello-from-app; echo to-stderr >&2; while [ ! -e /tmp/done ]; do sleep 0.1; done; exit 7"], annotations)
        .unwrap_or_else(|e| panic!("CreateContainer: {e}\n{}", env.log()));
    cri.start(&app).unwrap_or_else(|e| panic!("StartContainer: {e}\n{}", env.log()));
    assert!(cri.wait_state(&app, ContainerState::ContainerRunning, 10), "app not running: {:?}", cri.status(&app));
    let logs = std::path::Path::new(&sandbox.log_directory).join("app.log");
    assert!(
        support::wait_until(10, || Cri::log_lines(&logs).len() >= 2),
        "CRI log: {:?}",
        std::fs::read_to_string(&logs)
    );
    let lines = Cri::log_lines(&logs);
    assert!(lines.contains(&("stdout".into(), "F".into(), "hello-from-app".into())), "{lines:?}");
    assert!(lines.contains(&("stderr".into(), "F".into(), "to-stderr".into())), "{lines:?}");
    let (out, _, code) = cri.exec_sync(&app, &["sh", "-c", "echo exec-out; hostname; exit 3"], 10).expect("ExecSync");
    assert_eq!((out.as_str(), code), ("exec-out\nweb\n", 3), "ExecSync output and exit code");
    let (out, _, code) = cri.exec_sync(&app, &["cat", "/proc/self/cgroup"], 10).expect("ExecSync");
    assert_eq!(code, 0);
    if proxmox.is_none() {
        assert!(out.contains(&format!("{parent}/{app}")), "app cgroup not under the pod's parent {parent}: {out}");
    }
    // the app is in the sandbox's network, IPC and UTS namespaces (joined by path)
    let st: serde_json::Value = serde_json::from_slice(&rec.stdout).expect("nexcage state");
    let pause = st["pid"].as_i64().expect("sandbox pid");
    for ns in ["net", "ipc", "uts"] {
        let want = std::fs::read_link(format!("/proc/{pause}/ns/{ns}")).expect("sandbox ns").display().to_string();
        let (got, _, _) = cri.exec_sync(&app, &["readlink", &format!("/proc/self/ns/{ns}")], 10).expect("ExecSync readlink");
        assert_eq!(got.trim(), want, "app's {ns} namespace is not the sandbox's");
    }
    assert_eq!(cri.list(&pod).expect("ListContainers"), vec![app.clone()]);
    let stats = cri.stats(&app).expect("ContainerStats");
    assert!(stats.memory.and_then(|m| m.working_set_bytes).map(|v| v.value > 0).unwrap_or(false), "no memory stats");
    // UpdateContainerResources (the kubelet's in-place resize) reaches the cgroup of the app's process
    cri.update_memory(&app, 96 << 20).unwrap_or_else(|e| panic!("UpdateContainerResources: {e}"));
    // the app's shell itself (not lxc-execute, whose command line also holds it)
    let is_app = |p: &i32| std::fs::read(format!("/proc/{p}/cmdline")).is_ok_and(|c| c.starts_with(b"sh\0-c\0echo hello-from-app"));
    let pid = support::procs_with("hello-from-app").into_iter().find(is_app).expect("the app's process on the host");
    assert_eq!(memory_limit(pid), (96u64 << 20).to_string(), "memory limit after UpdateContainerResources");
    // exits with its own code
    assert_eq!(cri.exec_sync(&app, &["touch", "/tmp/done"], 10).expect("ExecSync").2, 0);
    assert!(cri.wait_state(&app, ContainerState::ContainerExited, 15), "app did not exit: {:?}", cri.status(&app));
    assert_eq!(cri.state(&app), (ContainerState::ContainerExited, 7));

    // stop with a 10 s grace on an app that needs 3 s after TERM
    let slow = cri.create(&pod, &sandbox, "slow", &["sh", "-c", TRAP_TERM], annotations).expect("CreateContainer slow");
    cri.start(&slow).expect("StartContainer slow");
    let slow_log = std::path::Path::new(&sandbox.log_directory).join("slow.log");
    assert!(support::wait_until(10, || Cri::log_lines(&slow_log).iter().any(|l| l.2 == "ready")), "slow app not ready");
    let (r, secs) = timed(|| cri.stop(&slow, 10));
    r.expect("StopContainer");
    eprintln!("StopContainer (timeout 10 s, app needs 3 s after TERM) took {secs:.2}s");
    assert_eq!(cri.state(&slow), (ContainerState::ContainerExited, 42), "after {secs:.1}s");
    assert!((2.5..8.0).contains(&secs), "StopContainer took {secs:.1}s, the app needs 3 s after TERM");

    let mut ids = cri.list(&pod).expect("ListContainers");
    ids.sort();
    let mut want = vec![app.clone(), slow.clone()];
    want.sort();
    assert_eq!(ids, want);
    for id in &ids {
        cri.remove(id).expect("RemoveContainer");
    }
    cri.stop_pod(&pod).expect("StopPodSandbox");
    cri.remove_pod(&pod).expect("RemovePodSandbox");
    Leftovers { env, proxmox }.assert_none(&pod, &ids);
}

/// Must-show 1, 3, 4 with sandbox and app container native.
#[test]
fn cri_native_pod() {
    let Some(env) = CriEnv::new("cri_native_pod", &[]) else { return };
    pod_lifecycle(&env, None);
}

/// Must-show 2: two containers share the pod's network: `server` listens
/// (busybox httpd), `client` reaches it on 127.0.0.1; the pod IP from CNI
/// answers from the test's namespace. Both app containers on the backend
/// `proxmox` says (None: native); natively UpdateContainerResources also
/// reaches the cgroup under the pod's parent.
fn pod_network(env: &CriEnv, proxmox: Option<&proxmox_support::Env>) {
    let cri = env.cri();
    let annotations: &[(&str, &str)] = if proxmox.is_some() { &[("org.nexcage.backend", "proxmox")] } else { &[] };
    let sandbox = env.pod_config("net");
    let pod = cri.run_pod(&sandbox).unwrap_or_else(|e| panic!("RunPodSandbox: {e}\n{}", env.log()));
    let ip = cri.pod_ip(&pod);
    assert!(ip.starts_with("10.89.0."), "pod IP {ip:?} not from CNI's {SUBNET}");
    let server = cri
        .create(&pod, &sandbox, "server", &["sh", "-c", "mkdir -p /tmp/www; echo pod-hello > /tmp/www/index.html; exec httpd -f -p 8080 -h /tmp/www"], annotations)
        .unwrap_or_else(|e| panic!("CreateContainer server: {e}\n{}", env.log()));
    cri.start(&server).unwrap_or_else(|e| panic!("StartContainer server: {e}\n{}", env.log()));
    let client = cri.create(&pod, &sandbox, "client", &["sleep", "1000"], annotations).expect("CreateContainer client");
    cri.start(&client).expect("StartContainer client");
    let mut got = String::new();
    support::wait_until(10, || {
        got = cri.exec_sync(&client, &["wget", "-q", "-O", "-", "http://127.0.0.1:8080/index.html"], 5).map(|r| r.0).unwrap_or_default();
        got == "pod-hello\n"
    });
    assert_eq!(got, "pod-hello\n", "client did not reach the server on 127.0.0.1");
    assert_eq!(env.netns.get(&format!("{ip}:8080"), 10), "pod-hello\n", "pod IP {ip} not reachable from the test's namespace");

    if proxmox.is_none() {
        // the kubelet's in-place resize: runc's `update` through the shim
        cri.update_memory(&client, 64 << 20).unwrap_or_else(|e| panic!("UpdateContainerResources: {e}"));
        let (out, _, _) = cri.exec_sync(&client, &["cat", "/sys/fs/cgroup/memory/memory.limit_in_bytes"], 5).expect("ExecSync");
        let parent = sandbox.linux.as_ref().unwrap().cgroup_parent.clone();
        let limit = std::fs::read_to_string(format!("/sys/fs/cgroup/memory{parent}/{client}/memory.limit_in_bytes")).unwrap_or(out);
        assert_eq!(limit.trim(), (64u64 << 20).to_string(), "memory limit after UpdateContainerResources");
    }

    Leftovers { env, proxmox }.tear_down(&pod);
}

/// Must-show 2 natively; UpdateContainerResources reaches the cgroup.
#[test]
fn cri_pod_network_and_update() {
    let Some(env) = CriEnv::new("cri_pod_network_and_update", &[]) else { return };
    pod_network(&env, None);
}

/// Must-show 1 to 4 with the app containers on the Proxmox backend through
/// `driver`. containerd (and so nexcage) runs in the test's network
/// namespace, so the pve-double's API listens there too.
fn proxmox_pods(test: &str, driver: &str) {
    if let Some(why) = proxmox_support::missing(&["containerd"]) {
        return support::skip(test, &why);
    }
    if !CriEnv::can_run(test) {
        return;
    }
    let netns = netns_fixture::Netns::new("cri");
    let px = proxmox_support::Env::up_in_netns(test, driver, &netns.0);
    let vars = [("NEXCAGE_CONFIG", px.config().display().to_string()), ("PATH", px.path_var())];
    let env = CriEnv::start(netns, &vars);
    pod_lifecycle(&env, Some(&px));
    pod_network(&env, Some(&px));
    pod_stats_and_oom(&env, Some(&px));
    // the driver under test made the guests (the wrappers log every CLI call)
    let calls = std::fs::read_to_string(px.dir.join("cli-calls.log")).unwrap_or_default();
    assert_eq!(calls.lines().any(|l| l.starts_with("pct create ")), driver == "pct", "`pct create` calls with the {driver} driver:\n{calls}");
}

/// ContainerStats reports the app's memory (25 MiB it writes into the
/// pod's /dev/shm, a tmpfs whose pages are charged to the writer's memory
/// cgroup), and a container that exceeds its memory limit ends with exit
/// 137 and reason `OOMKilled`. containerd's shim reads both from the
/// cgroups of the pid-file pid: on the Proxmox backend the holder, which
/// joins the guest's memory, cpu, cpuacct and blkio cgroups (cgroup v1).
fn pod_stats_and_oom(env: &CriEnv, proxmox: Option<&proxmox_support::Env>) {
    let cri = env.cri();
    let annotations: &[(&str, &str)] = if proxmox.is_some() { &[("org.nexcage.backend", "proxmox")] } else { &[] };
    let sandbox = env.pod_config("mem");
    let pod = cri.run_pod(&sandbox).unwrap_or_else(|e| panic!("RunPodSandbox: {e}\n{}", env.log()));
    let fill = "head -c 26214400 /dev/zero > /dev/shm/hog && echo filled; exec sleep 1000";
    let hog = cri.create(&pod, &sandbox, "hog", &["sh", "-c", fill], annotations).unwrap_or_else(|e| panic!("CreateContainer hog: {e}\n{}", env.log()));
    cri.start(&hog).unwrap_or_else(|e| panic!("StartContainer hog: {e}\n{}", env.log()));
    let log = std::path::Path::new(&sandbox.log_directory).join("hog.log");
    assert!(support::wait_until(15, || Cri::log_lines(&log).iter().any(|l| l.2 == "filled")), "hog: {:?}", std::fs::read_to_string(&log));
    let mut ws = 0;
    let full = support::wait_until(10, || {
        ws = cri.stats(&hog).ok().and_then(|s| s.memory).and_then(|m| m.working_set_bytes).map(|v| v.value).unwrap_or(0);
        ws >= 25 << 20
    });
    eprintln!("ContainerStats working set with 25 MiB in /dev/shm: {:.1} MiB", ws as f64 / 1048576.0);
    assert!(full, "ContainerStats working set {ws} B does not hold the app's 25 MiB");

    // 64 MiB read into dd's buffer under a 32 MiB limit
    let oom = cri
        .create_limited(&pod, &sandbox, "oom", &["sh", "-c", "exec dd if=/dev/zero of=/dev/null bs=64M count=1"], annotations, 32 << 20)
        .unwrap_or_else(|e| panic!("CreateContainer oom: {e}\n{}", env.log()));
    cri.start(&oom).unwrap_or_else(|e| panic!("StartContainer oom: {e}\n{}", env.log()));
    assert!(cri.wait_state(&oom, ContainerState::ContainerExited, 20), "oom did not exit: {:?}", cri.status(&oom));
    let st = cri.status(&oom).expect("ContainerStatus");
    assert_eq!((st.exit_code, st.reason.as_str()), (137, "OOMKilled"), "{st:?}");

    Leftovers { env, proxmox }.tear_down(&pod);
}

/// ContainerStats and OOMKilled with the app containers native (runc's
/// behaviour under containerd, which the Proxmox backend must match).
#[test]
fn cri_native_stats_and_oom() {
    let Some(env) = CriEnv::new("cri_native_stats_and_oom", &[]) else { return };
    pod_stats_and_oom(&env, None);
}

#[test]
fn cri_proxmox_app_pod_pct() {
    proxmox_pods("cri_proxmox_app_pod_pct", "pct");
}

#[test]
fn cri_proxmox_app_pod_api() {
    proxmox_pods("cri_proxmox_app_pod_api", "api");
}

/// A pod with `shareProcessNamespace: true`: the app container joins the
/// sandbox's PID namespace by path (a native create on this cgroup v1 host)
/// and sees the sandbox's pause process in `ps`.
#[test]
fn cri_shared_pid_pod() {
    let Some(env) = CriEnv::new("cri_shared_pid_pod", &[]) else { return };
    let cri = env.cri();
    let mut sandbox = env.pod_config("shared");
    share_process_namespace(&mut sandbox);
    let pod = cri.run_pod(&sandbox).unwrap_or_else(|e| panic!("RunPodSandbox: {e}\n{}", env.log()));
    let rec = support::nx(&env.runtime_root(), &["state", &pod]);
    let st: serde_json::Value = serde_json::from_slice(&rec.stdout).expect("nexcage state of the sandbox");
    let pause = st["pid"].as_i64().expect("sandbox pid");
    // The app's init gets a pid (in the pod's namespace) that no process has
    // in the host's: a pid below 300 is never reused once the host has booted.
    let free = (3..300).find(|p| !std::path::Path::new(&format!("/proc/{p}")).exists()).expect("a pid below 300 free on the host");
    let set = std::process::Command::new("nsenter")
        .args(["-t", &pause.to_string(), "-p", "sh", "-c", &format!("echo {} > /proc/sys/kernel/ns_last_pid", free - 1)])
        .output()
        .expect("nsenter");
    assert!(set.status.success(), "setting the pod's ns_last_pid: {}", support::show(&set));
    let app = cri.create(&pod, &sandbox, "app", &["sleep", "1000"], &[]).unwrap_or_else(|e| panic!("CreateContainer: {e}\n{}", env.log()));
    cri.start(&app).unwrap_or_else(|e| panic!("StartContainer: {e}\n{}", env.log()));
    assert!(cri.wait_state(&app, ContainerState::ContainerRunning, 10), "app not running: {:?}", cri.status(&app));
    let (ps, _, code) = cri.exec_sync(&app, &["ps", "-o", "pid,args"], 10).expect("ExecSync ps");
    assert_eq!(code, 0, "ps: {ps}");
    let procs: Vec<(String, String)> =
        ps.lines().skip(1).filter_map(|l| l.trim().split_once(' ').map(|(p, a)| (p.to_string(), a.trim().to_string()))).collect();
    assert!(procs.contains(&("1".into(), "/bin/sleep 2147483647".into())), "the sandbox's pause is not pid 1 in the app's ps: {ps}");
    assert!(procs.contains(&(free.to_string(), "sleep 1000".into())), "the app is not pid {free} in its ps: {ps}");
    let want = std::fs::read_link(format!("/proc/{pause}/ns/pid")).expect("sandbox pid ns").display().to_string();
    let (got, _, _) = cri.exec_sync(&app, &["readlink", "/proc/self/ns/pid"], 10).expect("ExecSync readlink");
    assert_eq!(got.trim(), want, "app's pid namespace is not the sandbox's");
    // its cgroup mount shows its own cgroup (not the pause's), read-only
    let (procs, _, _) = cri.exec_sync(&app, &["cat", "/sys/fs/cgroup/pids/cgroup.procs"], 10).expect("ExecSync cat");
    let procs: Vec<&str> = procs.lines().collect();
    assert!(procs.contains(&free.to_string().as_str()) && !procs.contains(&"1"), "/sys/fs/cgroup/pids is not the app's cgroup: {procs:?}");
    let (_, err, code) = cri.exec_sync(&app, &["mkdir", "/sys/fs/cgroup/memory/x"], 10).expect("ExecSync mkdir");
    assert!(code != 0 && err.contains("Read-only"), "the cgroup mount is writable: {code} {err}");

    cri.stop(&app, 10).expect("StopContainer");
    assert_eq!(cri.state(&app).0, ContainerState::ContainerExited);
    cri.remove(&app).expect("RemoveContainer");
    cri.stop_pod(&pod).expect("StopPodSandbox");
    cri.remove_pod(&pod).expect("RemovePodSandbox");
    Leftovers { env: &env, proxmox: None }.assert_none(&pod, &[app]);
}
