//! A Kubernetes-style test environment: Debian's containerd with its CRI
//! plugin on a private socket, root and state dir, inside a network
//! namespace the test made, with a runtime handler `nexcage`
//! (`io.containerd.runc.v2`, `BinaryName` = the built nexcage), CNI from
//! Debian's containernetworking-plugins (bridge + host-local IPAM with a
//! private data dir) and a local busybox image (PATH in its config, entrypoint
//! sleeping forever) imported into `k8s.io` that is also the `sandbox_image`.
//! `Cri` speaks the CRI gRPC API (runtime.v1, k8s-cri's protobufs over
//! tonic) to containerd's socket as the kubelet does. Dropping `CriEnv`
//! removes every pod, stops containerd and its shims, and removes the
//! namespace, mounts, cgroup parent and directories.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command};

use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use k8s_cri::v1 as cri;
use tonic::transport::{Channel, Endpoint, Uri};

use crate::netns_fixture::Netns;
use crate::support::*;

/// The image both the sandbox (pause) and the app containers run.
pub const IMAGE: &str = "localhost/busybox:latest";
/// The runtime handler the pods select (a RuntimeClass's `handler`).
pub const HANDLER: &str = "nexcage";
/// The CNI network's subnet, inside the test's namespace.
pub const SUBNET: &str = "10.89.0.0/24";

pub struct CriEnv {
    pub dir: Scratch,
    pub netns: Netns,
    /// CNI network name (unique: CNI's result cache in /var/lib/cni is keyed by it).
    pub network: String,
    /// cgroup parent of this environment's pods (v1 path, like the kubelet's cgroupfs driver).
    pub cgroup_parent: String,
    child: Option<Child>,
    pub cri: Option<Cri>,
}

impl CriEnv {
    /// Starts containerd (CRI enabled) in a new netns. `env` is given to
    /// containerd (the shim passes it on to nexcage: NEXCAGE_CONFIG, PATH).
    /// None (after a SKIP line) when a component is missing.
    pub fn new(test: &str, env: &[(&str, String)]) -> Option<CriEnv> {
        Self::can_run(test).then(|| Self::start(Netns::new("cri"), env))
    }

    /// Whether the components are here; if not, prints a SKIP line for `test`.
    pub fn can_run(test: &str) -> bool {
        Self::missing().map(|why| skip(test, &why)).is_none()
    }

    fn missing() -> Option<String> {
        if !is_root() {
            return Some("needs root".into());
        }
        let tools = ["containerd", "ctr", "containerd-shim-runc-v2", "podman", "nsenter", "ip", "tar", "timeout"];
        if let Some(m) = missing(&tools) {
            return Some(m);
        }
        for p in ["/usr/lib/cni/bridge", "/usr/lib/cni/host-local", "/usr/lib/cni/loopback"] {
            if !Path::new(p).exists() {
                return Some(format!("{p} missing (containernetworking-plugins not installed)"));
            }
        }
        which("/bin/busybox").is_none().then(|| "busybox-static not installed".into())
    }

    /// Starts containerd (CRI enabled) in `netns`, which the environment
    /// then owns (removed on drop); `env` as for `new`.
    pub fn start(netns: Netns, env: &[(&str, String)]) -> CriEnv {
        let dir = Scratch::new("cri");
        let tag = unique("p").replace('-', "");
        let network = format!("nxcri{tag}");
        let cgroup_parent = format!("/nexcage-cri/{tag}");
        let d = dir.path().display().to_string();
        std::fs::create_dir_all(dir.join("cni")).unwrap();
        std::fs::write(
            dir.join("cni/10-nexcage.conflist"),
            serde_json::to_vec_pretty(&serde_json::json!({
                "cniVersion": "0.4.0",
                "name": network,
                "plugins": [{
                    "type": "bridge", "bridge": "cni-nx", "isGateway": true, "ipMasq": false,
                    "ipam": {"type": "host-local", "ranges": [[{"subnet": SUBNET}]],
                             "routes": [{"dst": "0.0.0.0/0"}], "dataDir": format!("{d}/ipam")}
                }]
            }))
            .unwrap(),
        )
        .unwrap();
        std::fs::write(dir.join("config.toml"), containerd_config(&d, nexcage())).unwrap();
        let log = std::fs::File::create(dir.join("containerd.log")).unwrap();
        let mut c = netns.cmd("containerd");
        c.arg("--config").arg(dir.join("config.toml")).stdout(log.try_clone().unwrap()).stderr(log);
        for (k, v) in env {
            c.env(k, v);
        }
        let child = c.spawn().expect("start containerd");
        let mut e = CriEnv { dir, netns, network, cgroup_parent, child: Some(child), cri: None };
        let sock = e.sock();
        let up = wait_until(30, || e.ctr(&["version"]).status.success());
        assert!(up, "containerd did not come up: {}", e.log());
        e.import_image();
        let cri = Cri::connect(&sock);
        // the CRI plugin reports ready once CNI is configured
        let ready = wait_until(30, || cri.ready());
        assert!(ready, "CRI not ready: {}", e.log());
        e.cri = Some(cri);
        e
    }

    pub fn cri(&self) -> &Cri {
        self.cri.as_ref().expect("CRI client")
    }

    pub fn sock(&self) -> PathBuf {
        self.dir.join("containerd.sock")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("containerd.log")).unwrap_or_default()
    }

    /// nexcage's `--root` for the CRI's containers (the handler's `Root` + namespace).
    pub fn runtime_root(&self) -> PathBuf {
        self.dir.join("runc/k8s.io")
    }

    pub fn ctr(&self, args: &[&str]) -> std::process::Output {
        let sock = self.sock();
        let mut a = vec!["--address", sock.to_str().unwrap(), "--namespace", "k8s.io"];
        a.extend_from_slice(args);
        run_timeout(120, "ctr", &a, &[])
    }

    /// Builds the busybox image with podman (PATH in its config, CMD sleeping
    /// forever so it also serves as the pause image) and imports it.
    fn import_image(&mut self) {
        let rootfs = rootfs(self.dir.path());
        let conf = self.dir.join("containers.conf");
        std::fs::write(&conf, "[containers]\ndefault_ulimits = [\"nofile=1024:1024\"]\n").unwrap();
        let pm = format!("podman --root {d}/pr --runroot {d}/prr --tmpdir {d}/pt", d = self.dir.path().display());
        let sh = format!(
            "set -e; mkdir -p {d}/pt; tar -C {r} -c . | {pm} import --change 'ENV PATH=/bin:/sbin:/usr/bin:/usr/sbin' \
             --change 'CMD [\"/bin/sleep\", \"2147483647\"]' - {IMAGE} >/dev/null; \
             {pm} save --format oci-archive -o {d}/busybox.tar {IMAGE}; \
             {pm} system reset -f >/dev/null 2>&1 || true",
            r = rootfs.display(),
            d = self.dir.path().display()
        );
        let o = run_timeout(120, "sh", &["-c", &sh], &[("CONTAINERS_CONF", conf.to_str().unwrap())]);
        assert!(o.status.success(), "building the image archive: {}", show(&o));
        let archive = self.dir.join("busybox.tar");
        let o = self.ctr(&["images", "import", archive.to_str().unwrap()]);
        assert!(o.status.success(), "ctr images import: {}", show(&o));
        let _ = std::fs::remove_file(archive);
    }

    /// A pod sandbox config like the kubelet's: metadata, log directory,
    /// cgroup parent under this environment's parent, hostname.
    pub fn pod_config(&self, name: &str) -> cri::PodSandboxConfig {
        let uid = unique("uid");
        let logs = self.dir.join("logs").join(&uid);
        std::fs::create_dir_all(&logs).unwrap();
        cri::PodSandboxConfig {
            metadata: Some(cri::PodSandboxMetadata { name: name.into(), uid: uid.clone(), namespace: "default".into(), attempt: 0 }),
            hostname: name.into(),
            log_directory: logs.display().to_string(),
            linux: Some(cri::LinuxPodSandboxConfig {
                cgroup_parent: format!("{}/pod{uid}", self.cgroup_parent),
                security_context: Some(cri::LinuxSandboxSecurityContext { namespace_options: Some(kubelet_namespaces()), ..Default::default() }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    /// Host-local IPAM allocations still held (files named after an address).
    pub fn ipam_allocations(&self) -> Vec<String> {
        let d = self.dir.join("ipam").join(&self.network);
        std::fs::read_dir(d)
            .map(|r| r.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).filter(|n| n.parse::<std::net::IpAddr>().is_ok()).collect())
            .unwrap_or_default()
    }

    /// cgroup directories (any v1 hierarchy) whose name contains `id`.
    pub fn cgroups_of(&self, id: &str) -> Vec<String> {
        let o = Command::new("find").args(["/sys/fs/cgroup", "-type", "d", "-name", &format!("*{id}*")]).output().unwrap();
        text(&o.stdout).lines().map(str::to_string).collect()
    }

    /// Mount points anywhere whose path contains `id`.
    pub fn mounts_of(&self, id: &str) -> Vec<String> {
        let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        info.lines().filter_map(|l| l.split(' ').nth(4)).filter(|m| m.contains(id)).map(str::to_string).collect()
    }
}

/// A pod with `shareProcessNamespace: true`: the kubelet asks for the pod's
/// PID namespace for the sandbox and every container (containerd then joins
/// each container to the sandbox's by path).
pub fn share_process_namespace(config: &mut cri::PodSandboxConfig) {
    let ns = config.linux.as_mut().and_then(|l| l.security_context.as_mut()).and_then(|s| s.namespace_options.as_mut());
    ns.expect("namespace options").pid = cri::NamespaceMode::Pod as i32;
}

/// The container's namespaces as the kubelet derives them from its pod's.
fn namespaces_of(sandbox: &cri::PodSandboxConfig) -> cri::NamespaceOption {
    let ns = sandbox.linux.as_ref().and_then(|l| l.security_context.as_ref()).and_then(|s| s.namespace_options.clone());
    ns.unwrap_or_else(kubelet_namespaces)
}

/// The namespaces the kubelet asks for without `shareProcessNamespace` or
/// `hostNetwork`: network and IPC of the pod, a PID namespace per container.
/// (Left out, containerd reads mode 0 = POD for each, sharing the pod's PID namespace.)
fn kubelet_namespaces() -> cri::NamespaceOption {
    cri::NamespaceOption {
        network: cri::NamespaceMode::Pod as i32,
        pid: cri::NamespaceMode::Container as i32,
        ipc: cri::NamespaceMode::Pod as i32,
        ..Default::default()
    }
}

/// containerd's config: CRI plugin with handler `nexcage` for `nexcage_bin`.
fn containerd_config(d: &str, nexcage_bin: &str) -> String {
    let cri = "plugins.\"io.containerd.grpc.v1.cri\"";
    format!(
        "version = 2\n\
         root = \"{d}/root\"\n\
         state = \"{d}/state\"\n\
         [grpc]\n  address = \"{d}/containerd.sock\"\n\
         [ttrpc]\n  address = \"{d}/containerd-ttrpc.sock\"\n\
         [debug]\n  address = \"{d}/debug.sock\"\n\
         [metrics]\n  address = \"\"\n\
         [{cri}]\n\
           sandbox_image = \"{IMAGE}\"\n\
           restrict_oom_score_adj = true\n\
           stream_server_address = \"127.0.0.1\"\n\
           stream_server_port = \"0\"\n\
         [{cri}.cni]\n\
           bin_dir = \"/usr/lib/cni\"\n\
           conf_dir = \"{d}/cni\"\n\
           max_conf_num = 1\n\
         [{cri}.containerd]\n\
           default_runtime_name = \"runc\"\n\
         [{cri}.containerd.runtimes.runc]\n\
           runtime_type = \"io.containerd.runc.v2\"\n\
         [{cri}.containerd.runtimes.{HANDLER}]\n\
           runtime_type = \"io.containerd.runc.v2\"\n\
           pod_annotations = [\"org.nexcage.*\"]\n\
           container_annotations = [\"org.nexcage.*\"]\n\
         [{cri}.containerd.runtimes.{HANDLER}.options]\n\
           BinaryName = \"{nexcage_bin}\"\n\
           Root = \"{d}/runc\"\n"
    )
}

impl Drop for CriEnv {
    fn drop(&mut self) {
        if let Some(cri) = self.cri.take() {
            cri.remove_all_pods();
        }
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
            let _ = wait_until(10, || matches!(child.try_wait(), Ok(Some(_))));
            let _ = child.kill();
            let _ = child.wait();
        }
        kill_procs_with(&self.sock().display().to_string());
        unmount_below(self.dir.path());
        // the cgroup parents the pods had (leaves are removed by the runtime)
        let o = Command::new("find").args(["/sys/fs/cgroup", "-depth", "-type", "d", "-path", &format!("*{}*", self.cgroup_parent)]).output();
        if let Ok(o) = o {
            for d in text(&o.stdout).lines() {
                let _ = std::fs::remove_dir(d);
            }
        }
        // the shared top (only when no other test's pods are below it)
        let top = self.cgroup_parent.rsplit_once('/').map(|(t, _)| t.to_string()).unwrap_or_default();
        if let Ok(rd) = std::fs::read_dir("/sys/fs/cgroup") {
            for e in rd.flatten() {
                let _ = std::fs::remove_dir(e.path().join(top.trim_start_matches('/')));
            }
        }
        for d in ["/var/lib/cni/results", "/var/lib/cni/cache/results"] {
            if let Ok(rd) = std::fs::read_dir(d) {
                for e in rd.flatten().filter(|e| e.file_name().to_string_lossy().starts_with(&self.network)) {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
        // Scratch and Netns remove the directory and the namespace.
    }
}

/// A CRI runtime-service client on a unix socket (blocking wrappers).
pub struct Cri {
    rt: tokio::runtime::Runtime,
    client: RuntimeServiceClient<Channel>,
}

/// Result of a CRI call: the response or the gRPC status as text.
pub type CriResult<T> = Result<T, String>;

macro_rules! call {
    ($self:ident, $method:ident, $req:expr) => {{
        let mut c = $self.client.clone();
        $self.rt.block_on(async move { c.$method($req).await }).map(|r| r.into_inner()).map_err(|s| format!("{:?}: {}", s.code(), s.message()))
    }};
}

impl Cri {
    pub fn connect(sock: &Path) -> Cri {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime");
        let path = sock.to_path_buf();
        let channel = rt
            .block_on(async move {
                Endpoint::try_from("http://[::]:0")
                    .expect("endpoint")
                    .connect_with_connector(tower::service_fn(move |_: Uri| {
                        let path = path.clone();
                        async move { Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(tokio::net::UnixStream::connect(path).await?)) }
                    }))
                    .await
            })
            .expect("connect to containerd's socket");
        Cri { rt, client: RuntimeServiceClient::new(channel) }
    }

    /// RuntimeReady and NetworkReady both true.
    pub fn ready(&self) -> bool {
        match call!(self, status, cri::StatusRequest { verbose: false }) {
            Ok(r) => r.status.map(|s| s.conditions.iter().all(|c| c.status)).unwrap_or(false),
            Err(_) => false,
        }
    }

    pub fn run_pod(&self, config: &cri::PodSandboxConfig) -> CriResult<String> {
        call!(self, run_pod_sandbox, cri::RunPodSandboxRequest { config: Some(config.clone()), runtime_handler: HANDLER.into() }).map(|r| r.pod_sandbox_id)
    }

    pub fn pod_status(&self, id: &str) -> CriResult<cri::PodSandboxStatus> {
        call!(self, pod_sandbox_status, cri::PodSandboxStatusRequest { pod_sandbox_id: id.into(), verbose: false })
            .map(|r| r.status.expect("status"))
    }

    /// The pod's IP from CNI.
    pub fn pod_ip(&self, id: &str) -> String {
        self.pod_status(id).expect("pod status").network.map(|n| n.ip).unwrap_or_default()
    }

    /// CreateContainer of `IMAGE` running `command` in pod `pod`, logging to `<name>.log`.
    pub fn create(&self, pod: &str, sandbox: &cri::PodSandboxConfig, name: &str, command: &[&str], annotations: &[(&str, &str)]) -> CriResult<String> {
        self.create_limited(pod, sandbox, name, command, annotations, 0)
    }

    /// [`Cri::create`] with a memory limit in bytes (0: none), as the
    /// kubelet sends a container's `resources.limits.memory`.
    pub fn create_limited(&self, pod: &str, sandbox: &cri::PodSandboxConfig, name: &str, command: &[&str], annotations: &[(&str, &str)], memory: i64) -> CriResult<String> {
        let resources = (memory > 0).then(|| cri::LinuxContainerResources { memory_limit_in_bytes: memory, ..Default::default() });
        let config = cri::ContainerConfig {
            metadata: Some(cri::ContainerMetadata { name: name.into(), attempt: 0 }),
            image: Some(cri::ImageSpec { image: IMAGE.into(), ..Default::default() }),
            command: command.iter().map(|s| s.to_string()).collect(),
            log_path: format!("{name}.log"),
            annotations: annotations.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            linux: Some(cri::LinuxContainerConfig {
                security_context: Some(cri::LinuxContainerSecurityContext { namespace_options: Some(namespaces_of(sandbox)), ..Default::default() }),
                resources,
            }),
            ..Default::default()
        };
        call!(
            self,
            create_container,
            cri::CreateContainerRequest { pod_sandbox_id: pod.into(), config: Some(config), sandbox_config: Some(sandbox.clone()) }
        )
        .map(|r| r.container_id)
    }

    pub fn start(&self, id: &str) -> CriResult<()> {
        call!(self, start_container, cri::StartContainerRequest { container_id: id.into() }).map(|_| ())
    }

    pub fn status(&self, id: &str) -> CriResult<cri::ContainerStatus> {
        call!(self, container_status, cri::ContainerStatusRequest { container_id: id.into(), verbose: false }).map(|r| r.status.expect("status"))
    }

    /// The container's state (CONTAINER_RUNNING, ...) and exit code.
    pub fn state(&self, id: &str) -> (cri::ContainerState, i32) {
        let s = self.status(id).expect("ContainerStatus");
        (s.state(), s.exit_code)
    }

    /// Polls ContainerStatus until the container is in `want` (or `secs` pass).
    pub fn wait_state(&self, id: &str, want: cri::ContainerState, secs: u64) -> bool {
        wait_until(secs, || self.status(id).map(|s| s.state() == want).unwrap_or(false))
    }

    /// ExecSync: (stdout, stderr, exit code).
    pub fn exec_sync(&self, id: &str, cmd: &[&str], timeout_s: i64) -> CriResult<(String, String, i32)> {
        call!(self, exec_sync, cri::ExecSyncRequest { container_id: id.into(), cmd: cmd.iter().map(|s| s.to_string()).collect(), timeout: timeout_s })
            .map(|r| (text(&r.stdout), text(&r.stderr), r.exit_code))
    }

    pub fn stop(&self, id: &str, timeout_s: i64) -> CriResult<()> {
        call!(self, stop_container, cri::StopContainerRequest { container_id: id.into(), timeout: timeout_s }).map(|_| ())
    }

    pub fn remove(&self, id: &str) -> CriResult<()> {
        call!(self, remove_container, cri::RemoveContainerRequest { container_id: id.into() }).map(|_| ())
    }

    pub fn stop_pod(&self, id: &str) -> CriResult<()> {
        call!(self, stop_pod_sandbox, cri::StopPodSandboxRequest { pod_sandbox_id: id.into() }).map(|_| ())
    }

    pub fn remove_pod(&self, id: &str) -> CriResult<()> {
        call!(self, remove_pod_sandbox, cri::RemovePodSandboxRequest { pod_sandbox_id: id.into() }).map(|_| ())
    }

    /// Ids of the containers of pod `pod`.
    pub fn list(&self, pod: &str) -> CriResult<Vec<String>> {
        let filter = cri::ContainerFilter { pod_sandbox_id: pod.into(), ..Default::default() };
        call!(self, list_containers, cri::ListContainersRequest { filter: Some(filter) }).map(|r| r.containers.into_iter().map(|c| c.id).collect())
    }

    pub fn stats(&self, id: &str) -> CriResult<cri::ContainerStats> {
        call!(self, container_stats, cri::ContainerStatsRequest { container_id: id.into() }).map(|r| r.stats.expect("stats"))
    }

    /// UpdateContainerResources with a memory limit in bytes (the kubelet's in-place resize).
    pub fn update_memory(&self, id: &str, bytes: i64) -> CriResult<()> {
        let linux = cri::LinuxContainerResources { memory_limit_in_bytes: bytes, ..Default::default() };
        call!(self, update_container_resources, cri::UpdateContainerResourcesRequest { container_id: id.into(), linux: Some(linux), ..Default::default() })
            .map(|_| ())
    }

    /// The lines of a CRI log file as (stream, tag, text); panics on a malformed line.
    pub fn log_lines(path: &Path) -> Vec<(String, String, String)> {
        let s = std::fs::read_to_string(path).unwrap_or_default();
        s.lines()
            .map(|l| {
                let mut f = l.splitn(4, ' ');
                let (ts, stream, tag, rest) = (f.next().unwrap(), f.next().unwrap_or(""), f.next().unwrap_or(""), f.next().unwrap_or(""));
                assert!(chrono::DateTime::parse_from_rfc3339(ts).is_ok(), "bad CRI log time in {l:?}");
                (stream.to_string(), tag.to_string(), rest.to_string())
            })
            .collect()
    }

    /// Stops and removes every pod (best effort; used on drop).
    pub fn remove_all_pods(&self) {
        let pods = call!(self, list_pod_sandbox, cri::ListPodSandboxRequest { filter: None }).map(|r| r.items).unwrap_or_default();
        for p in pods {
            for c in self.list(&p.id).unwrap_or_default() {
                let _ = self.stop(&c, 0);
                let _ = self.remove(&c);
            }
            let _ = self.stop_pod(&p.id);
            let _ = self.remove_pod(&p.id);
        }
    }
}

/// Seconds elapsed while `f` runs, with its result.
pub fn timed<T>(f: impl FnOnce() -> T) -> (T, f64) {
    let t = std::time::Instant::now();
    let r = f();
    (r, t.elapsed().as_secs_f64())
}
