//! Table-driven tests: one row per field of the mapping table
//! (docs/ARCHITECTURE.md §5, OCI → Proxmox mapping), plus refusals.

use super::*;
use serde_json::{json, Value};

pub(crate) fn opts() -> MapOptions {
    let mut o = MapOptions::new(100, "ctr-1", "local-zfs", 4096);
    o.unlimited_swap_mib = 1024;
    o.bridge = Some("vmbr0".into());
    o
}

pub(crate) fn base() -> Value {
    serde_json::to_value(Spec::default()).unwrap()
}

fn merge(a: &mut Value, b: &Value) {
    match (a, b) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in b {
                merge(a.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
        (a, b) => *a = b.clone(),
    }
}

fn map_with(patch: Value) -> Result<PveConfig, MapError> {
    let mut v = base();
    merge(&mut v, &patch);
    map_value(&v, &opts())
}

fn key(c: &PveConfig, k: &str) -> Option<String> {
    c.keys.get(k).cloned()
}

fn raw(c: &PveConfig, k: &str) -> Vec<String> {
    c.lxc
        .iter()
        .filter(|(a, _)| a == k)
        .map(|(_, v)| v.clone())
        .collect()
}

#[test]
fn default_spec_maps() {
    let c = map_spec(&Spec::default(), &opts()).unwrap();
    assert_eq!(key(&c, "ostype").as_deref(), Some("unmanaged"));
    assert_eq!(
        key(&c, "rootfs").as_deref(),
        Some("local-zfs:8,ro=1"),
        "default spec has a readonly root"
    );
    assert_eq!(
        key(&c, "memory").as_deref(),
        Some("4096"),
        "no limit -> explicit host memory, not 512"
    );
    assert_eq!(key(&c, "swap").as_deref(), Some("1024"));
    assert_eq!(key(&c, "tags").as_deref(), Some("nexcage"));
    assert!(key(&c, "description")
        .unwrap()
        .contains("nexcage oci-id: ctr-1"));
    assert_eq!(
        key(&c, "net0").as_deref(),
        Some("name=eth0,bridge=vmbr0,ip=dhcp,type=veth")
    );
}

/// (patch, expected Proxmox key, expected value)
#[test]
fn keys_table() {
    let rows: Vec<(Value, &str, &str)> = vec![
        (
            json!({"linux":{"resources":{"memory":{"limit":268435456}}}}),
            "memory",
            "256",
        ),
        (
            json!({"linux":{"resources":{"memory":{"limit":16777217}}}}),
            "memory",
            "17",
        ),
        (
            json!({"linux":{"resources":{"memory":{"limit":-1}}}}),
            "memory",
            "4096",
        ),
        (
            json!({"linux":{"resources":{"memory":{"limit":268435456,"swap":536870912}}}}),
            "swap",
            "256",
        ),
        (
            json!({"linux":{"resources":{"memory":{"limit":268435456,"swap":268435456}}}}),
            "swap",
            "0",
        ),
        (
            json!({"linux":{"resources":{"memory":{"limit":268435456,"swap":-1}}}}),
            "swap",
            "1024",
        ),
        (
            json!({"linux":{"resources":{"memory":{"limit":268435456}}}}),
            "swap",
            "1024",
        ),
        (
            json!({"linux":{"resources":{"cpu":{"quota":50000,"period":100000}}}}),
            "cpulimit",
            "0.5",
        ),
        (
            json!({"linux":{"resources":{"cpu":{"quota":150000}}}}),
            "cpulimit",
            "1.5",
        ),
        (
            json!({"linux":{"resources":{"cpu":{"quota":33333,"period":100000}}}}),
            "cpulimit",
            "0.33333",
        ),
        (
            json!({"linux":{"resources":{"cpu":{"shares":1024}}}}),
            "cpuunits",
            "39",
        ),
        (
            json!({"linux":{"resources":{"cpu":{"shares":2}}}}),
            "cpuunits",
            "1",
        ),
        (
            json!({"linux":{"resources":{"cpu":{"shares":262144}}}}),
            "cpuunits",
            "10000",
        ),
        (
            json!({"linux":{"resources":{"cpu":{"cpus":"0-3,8"}}}}),
            "cores",
            "5",
        ),
        (
            json!({"process":{"args":["/bin/sh","-c","echo 'hi there'"]}}),
            "entrypoint",
            "/bin/sh -c 'echo '\"'\"'hi there'\"'\"''",
        ),
        (
            json!({"process":{"env":["A=1","PATH=/bin:/usr/bin"]}}),
            "env",
            "A=1\0PATH=/bin:/usr/bin",
        ),
        (json!({"hostname":"web-1"}), "hostname", "web-1"),
        (
            json!({"mounts":[{"destination":"/data","type":"bind","source":"/srv/data","options":["rbind","ro","nosuid"]}]}),
            "mp0",
            "/srv/data,mp=/data,mountoptions=nosuid,ro=1",
        ),
        (
            json!({"mounts":[{"destination":"/a","type":"none","source":"/x","options":["bind"]}]}),
            "mp0",
            "/x,mp=/a",
        ),
        (
            json!({"root":{"path":"rootfs","readonly":true}}),
            "rootfs",
            "local-zfs:8,ro=1",
        ),
        (
            json!({"annotations":{"org.nexcage.tags":"web;Prod"}}),
            "tags",
            "nexcage;prod;web",
        ),
        (
            json!({"hostname":"","linux":{"namespaces":[{"type":"mount"},{"type":"user"},{"type":"network"}]}}),
            "unprivileged",
            "1",
        ),
        // A guest with its own network namespace takes the annotation's net0.
        (
            json!({"hostname":"","linux":{"namespaces":[{"type":"mount"},{"type":"network"}]},"annotations":{"org.nexcage.net0":"name=eth0,bridge=vmbr1,ip=10.0.0.5/24,type=veth"}}),
            "net0",
            "name=eth0,bridge=vmbr1,ip=10.0.0.5/24,type=veth",
        ),
    ];
    for (patch, k, want) in rows {
        let c = map_with(patch.clone()).unwrap_or_else(|e| panic!("{patch}: {e}"));
        assert_eq!(key(&c, k).as_deref(), Some(want), "{patch}");
    }
}

/// (patch, raw lxc key, expected value)
#[test]
fn raw_keys_table() {
    let rows: Vec<(Value, &str, &str)> = vec![
        (
            json!({"linux":{"resources":{"cpu":{"cpus":"0-3"}}}}),
            "lxc.cgroup2.cpuset.cpus",
            "0-3",
        ),
        (
            json!({"linux":{"resources":{"cpu":{"mems":"0"}}}}),
            "lxc.cgroup2.cpuset.mems",
            "0",
        ),
        (
            json!({"linux":{"resources":{"pids":{"limit":100}}}}),
            "lxc.cgroup2.pids.max",
            "100",
        ),
        (
            json!({"linux":{"resources":{"memory":{"limit":67108864,"reservation":33554432}}}}),
            "lxc.cgroup2.memory.low",
            "33554432",
        ),
        (
            json!({"linux":{"resources":{"unified":{"memory.high":"1000000"}}}}),
            "lxc.cgroup2.memory.high",
            "1000000",
        ),
        (
            json!({"linux":{"resources":{"devices":[{"allow":false,"access":"rwm"}]}}}),
            "lxc.cgroup2.devices.deny",
            "a",
        ),
        (
            json!({"linux":{"resources":{"devices":[{"allow":true,"type":"c","major":1,"minor":3,"access":"rw"}]}}}),
            "lxc.cgroup2.devices.allow",
            "c 1:3 rw",
        ),
        (
            json!({"process":{"args":["/bin/echo","a b"]}}),
            "lxc.init.cmd",
            "/bin/echo 'a b'",
        ),
        (json!({"process":{"cwd":"/srv"}}), "lxc.init.cwd", "/srv"),
        (
            json!({"process":{"user":{"uid":1000,"gid":100,"additionalGids":[10,20]}}}),
            "lxc.init.uid",
            "1000",
        ),
        (
            json!({"process":{"user":{"uid":1000,"gid":100,"additionalGids":[10,20]}}}),
            "lxc.init.gid",
            "100",
        ),
        (
            json!({"process":{"user":{"uid":1000,"gid":100,"additionalGids":[10,20]}}}),
            "lxc.init.groups",
            "10,20",
        ),
        (
            json!({"process":{"capabilities":{"bounding":["CAP_CHOWN","CAP_KILL"],"effective":["CAP_KILL"],"permitted":["CAP_KILL"],"inheritable":[],"ambient":[]}}}),
            "lxc.cap.keep",
            "chown kill",
        ),
        (
            json!({"process":{"capabilities":{"bounding":[],"effective":[],"permitted":[],"inheritable":[],"ambient":[]}}}),
            "lxc.cap.keep",
            "none",
        ),
        (
            json!({"process":{"rlimits":[{"type":"RLIMIT_NOFILE","soft":1024,"hard":4096}]}}),
            "lxc.prlimit.nofile",
            "1024:4096",
        ),
        (
            json!({"process":{"rlimits":[{"type":"RLIMIT_CORE","soft":18446744073709551615u64,"hard":18446744073709551615u64}]}}),
            "lxc.prlimit.core",
            "unlimited:unlimited",
        ),
        (
            json!({"mounts":[{"destination":"/run","type":"tmpfs","source":"tmpfs","options":["nosuid","size=65536k"]}]}),
            "lxc.mount.entry",
            "tmpfs run tmpfs nosuid,size=65536k,create=dir 0 0",
        ),
        (
            json!({"mounts":[{"destination":"/dev/mqueue","type":"mqueue","source":"mqueue","options":["nosuid"]}]}),
            "lxc.mount.entry",
            "mqueue dev/mqueue mqueue nosuid,create=dir 0 0",
        ),
        (
            json!({"mounts":[{"destination":"/proc","type":"proc","source":"proc"},{"destination":"/sys","type":"sysfs","source":"sysfs","options":["ro"]},{"destination":"/sys/fs/cgroup","type":"cgroup","source":"cgroup","options":["ro"]}]}),
            "lxc.mount.auto",
            "proc:mixed cgroup:ro",
        ),
        (
            json!({"mounts":[{"destination":"/sys","type":"sysfs","source":"sysfs","options":["nosuid","noexec","nodev","ro"]}]}),
            "lxc.mount.entry",
            "sysfs sys sysfs nosuid,noexec,nodev,ro,create=dir 0 0",
        ),

        (
            json!({"mounts":[{"destination":"/dev","type":"tmpfs","source":"tmpfs"}]}),
            "lxc.autodev",
            "1",
        ),
        (
            json!({"process":{"apparmorProfile":"unconfined"}}),
            "lxc.apparmor.profile",
            "unconfined",
        ),
        (
            json!({"hostname":"","linux":{"namespaces":[{"type":"mount"},{"type":"user"},{"type":"network"}],"uidMappings":[{"containerID":0,"hostID":100000,"size":65536}]}}),
            "lxc.idmap",
            "u 0 100000 65536",
        ),
        (
            json!({"hostname":"","linux":{"namespaces":[{"type":"mount"},{"type":"pid"}]}}),
            "lxc.net.0.type",
            "none",
        ),
    ];
    for (patch, k, want) in rows {
        let c = map_with(patch.clone()).unwrap_or_else(|e| panic!("{patch}: {e}"));
        assert!(
            raw(&c, k).iter().any(|v| v == want),
            "{patch}: {k} = {:?}",
            raw(&c, k)
        );
    }
}

/// (patch, field named in the error, message fragment)
#[test]
fn refusals_table() {
    let rows: Vec<(Value, &str, &str)> = vec![
        (
            json!({"linux":{"resources":{"memory":{"limit":8388608}}}}),
            "linux.resources.memory.limit",
            "8388608 bytes is below Proxmox's 16 MiB minimum",
        ),
        (
            json!({"linux":{"resources":{"memory":{"limit":268435456,"swap":1000}}}}),
            "linux.resources.memory.swap",
            "below memory.limit",
        ),
        (
            json!({"linux":{"resources":{"memory":{"swap":268435456}}}}),
            "linux.resources.memory.swap",
            "needs memory.limit",
        ),
        (
            json!({"linux":{"resources":{"memory":{"kernel":1000}}}}),
            "linux.resources.memory.kernel",
            "cgroup v2",
        ),
        (
            json!({"linux":{"resources":{"memory":{"disableOOMKiller":true}}}}),
            "linux.resources.memory.disableOOMKiller",
            "cgroup v2",
        ),
        (
            json!({"linux":{"resources":{"cpu":{"quota":1,"period":1000000}}}}),
            "linux.resources.cpu.quota",
            "resolution",
        ),
        (
            json!({"linux":{"resources":{"cpu":{"quota":900000000,"period":100000}}}}),
            "linux.resources.cpu.quota",
            "8192",
        ),
        (
            json!({"linux":{"resources":{"cpu":{"shares":1}}}}),
            "linux.resources.cpu.shares",
            "2..262144",
        ),
        (
            json!({"linux":{"resources":{"cpu":{"cpus":"3-1"}}}}),
            "linux.resources.cpu.cpus",
            "not a cpu list",
        ),
        (
            json!({"linux":{"resources":{"cpu":{"realtimeRuntime":5}}}}),
            "linux.resources.cpu.realtimeRuntime",
            "not supported",
        ),
        (
            json!({"linux":{"resources":{"blockIO":{"weight":10}}}}),
            "linux.resources.blockIO",
            "not supported",
        ),
        (
            json!({"linux":{"resources":{"hugepageLimits":[{"pageSize":"2MB","limit":1}]}}}),
            "linux.resources.hugepageLimits",
            "not supported",
        ),
        (
            json!({"process":{"args":[]}}),
            "process.args",
            "must not be empty",
        ),
        (
            json!({"process":{"args":["/bin/echo","a\nb"]}}),
            "process.args[1]",
            "control characters",
        ),
        (
            json!({"process":{"env":["BAD-NAME=1"]}}),
            "process.env[0]",
            "NAME=value",
        ),
        (
            json!({"process":{"env":["NOEQUALS"]}}),
            "process.env[0]",
            "NAME=value",
        ),
        (
            json!({"process":{"env":["A=x\u{1}y"]}}),
            "process.env[0]",
            "control characters",
        ),
        (
            json!({"process":{"cwd":"relative"}}),
            "process.cwd",
            "absolute",
        ),
        (
            json!({"process":{"user":{"uid":0,"gid":0,"umask":18}}}),
            "process.user.umask",
            "umask",
        ),
        (
            json!({"process":{"rlimits":[{"type":"NOFILE","soft":1,"hard":1}]}}),
            "process.rlimits[0].type",
            "RLIMIT_",
        ),
        (json!({"hostname":"bad_host!"}), "hostname", "DNS name"),
        (json!({"hostname":"a".repeat(65)}), "hostname", "at most 64"),
        (
            json!({"domainname":"example.com","linux":{"namespaces":[{"type":"mount"}]}}),
            "domainname",
            "UTS namespace",
        ),
        (
            json!({"mounts":[{"destination":"/x","type":"bind","source":"rel","options":["bind"]}]}),
            "mounts[0].source",
            "absolute",
        ),
        (
            json!({"mounts":[{"destination":"/x","type":"bind","source":"/a","options":["bind","exec"]}]}),
            "mounts[0].options",
            "'exec'",
        ),
        (
            json!({"mounts":[{"destination":"/x","type":"nfs","source":"h:/e"}]}),
            "mounts[0].type",
            "'nfs'",
        ),
        (
            json!({"mounts":[{"destination":"/x/../y","type":"tmpfs","source":"tmpfs"}]}),
            "mounts[0].destination",
            "clean absolute",
        ),
        (
            json!({"hostname":"","linux":{"namespaces":[{"type":"mount"}],"sysctl":{"net.ipv4.ip_forward":"1"}}}),
            "linux.sysctl.net.ipv4.ip_forward",
            "sysctl \"net.ipv4.ip_forward\" is not allowed in the hosts network namespace",
        ),
        (
            json!({"hostname":"","linux":{"namespaces":[{"type":"mount"}],"sysctl":{"kernel.shmmax":"1"}}}),
            "linux.sysctl.kernel.shmmax",
            "not allowed in the hosts ipc namespace",
        ),
        (
            json!({"linux":{"sysctl":{"kernel.hostname":"x"}}}),
            "linux.sysctl.kernel.hostname",
            "conflicts with the OCI \"hostname\" field",
        ),
        (
            json!({"linux":{"sysctl":{"vm.swappiness":"1"}}}),
            "linux.sysctl.vm.swappiness",
            "is not in a separate kernel namespace",
        ),
        (
            json!({"hostname":"h","linux":{"namespaces":[{"type":"mount"},{"type":"pid"}]}}),
            "hostname",
            "unable to set hostname without a private UTS namespace",
        ),
        (
            json!({"linux":{"devices":[{"path":"/dev/x","type":"q","major":1,"minor":3}]}}),
            "linux.devices[0].type",
            "not a device type",
        ),
        (
            json!({"linux":{"devices":[{"path":"/dev/../x","type":"c","major":1,"minor":3}]}}),
            "linux.devices[0].path",
            "clean absolute path",
        ),
        (
            json!({"linux":{"devices":[{"path":"/dev/x","type":"c"}]}}),
            "linux.devices[0].major",
            "needs major and minor",
        ),
        (
            json!({"linux":{"rootfsPropagation":"sideways"}}),
            "linux.rootfsPropagation",
            "unknown propagation mode",
        ),
        (
            json!({"linux":{"namespaces":[{"type":"mount"},{"type":"user","path":"/proc/1/ns/user"}]}}),
            "linux.namespaces[1].path",
            "joining an existing user namespace is not supported",
        ),
        (
            json!({"linux":{"namespaces":[{"type":"pid"}]}}),
            "linux.namespaces",
            "mount namespace is required",
        ),
        (
            json!({"linux":{"intelRdt":{"closID":"x"}}}),
            "linux.intelRdt",
            "not supported",
        ),
        (
            json!({"annotations":{"org.nexcage.tags":"Bad!"}}),
            "annotations.org.nexcage.tags",
            "not a valid Proxmox tag",
        ),
    ];
    for (patch, field, frag) in rows {
        let e = map_with(patch.clone()).expect_err(&format!("{patch} should be refused"));
        assert_eq!(e.field, field, "{patch}: {e}");
        assert!(
            e.msg.contains(frag) || e.to_string().contains(frag),
            "{patch}: {e}"
        );
    }
}

#[test]
fn exec_only_outputs() {
    let c = map_with(json!({
        "hostname": "",
        "process": {"noNewPrivileges": true, "oomScoreAdj": 100},
        "linux": {
            "namespaces": [{"type":"mount"},{"type":"network","path":"/var/run/netns/x"},{"type":"ipc","path":"/proc/1/ns/ipc"},{"type":"cgroup","path":"/proc/1/ns/cgroup"}],
            "seccomp": {"defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":38,"syscalls":[
                {"names":["read","write"],"action":"SCMP_ACT_ALLOW"},
                {"names":["personality"],"action":"SCMP_ACT_ALLOW","args":[{"index":0,"value":8,"op":"SCMP_CMP_EQ"}]},
                {"names":["kexec_load"],"action":"SCMP_ACT_ERRNO","errnoRet":1}]},
            "maskedPaths": ["/proc/kcore"], "readonlyPaths": ["/proc/sys"]
        }
    }))
    .unwrap();
    let e = &c.exec;
    assert_eq!(
        e.shares,
        vec![
            NamespaceShare {
                kind: "net".into(),
                path: "/var/run/netns/x".into()
            },
            NamespaceShare {
                kind: "ipc".into(),
                path: "/proc/1/ns/ipc".into()
            },
            NamespaceShare {
                kind: "cgroup".into(),
                path: "/proc/1/ns/cgroup".into()
            },
        ]
    );
    assert!(e.lxc.contains(&("lxc.no_new_privs".into(), "1".into())));
    assert!(e
        .lxc
        .contains(&("lxc.proc.oom_score_adj".into(), "100".into())));
    assert!(e
        .lxc
        .contains(&("lxc.namespace.keep".into(), "pid uts".into())));
    assert_eq!(e.masked_paths, vec!["/proc/kcore"]);
    assert!(
        key(&c, "net0").is_none(),
        "shared netns gets no Proxmox nic"
    );
    assert!(!e.needs_root_pam);
    // Proxmox-visible raw keys are all on the allow-list.
    for (k, _) in &c.lxc {
        assert!(crate::mapping::allowed_raw_key(k), "{k}");
    }
}

#[test]
fn bind_mounts_need_root_pam_or_use_entries() {
    let patch = json!({"mounts":[{"destination":"/data","type":"bind","source":"/srv","options":["rbind","ro"]}]});
    let c = map_with(patch.clone()).unwrap();
    assert!(c.exec.needs_root_pam);
    let mut v = base();
    merge(&mut v, &patch);
    let mut o = opts();
    o.bind_mounts = BindMountMode::LxcEntry;
    let c = map_value(&v, &o).unwrap();
    assert!(!c.exec.needs_root_pam && !c.keys.contains_key("mp0"));
    assert!(raw(&c, "lxc.mount.entry").contains(&"/srv data none rbind,ro 0 0".to_string()));
}

#[test]
fn description_records_id_and_annotations_within_8k() {
    let mut ann = serde_json::Map::new();
    for i in 0..200 {
        ann.insert(format!("k{i}"), json!("v".repeat(100)));
    }
    let c = map_with(json!({"annotations": ann})).unwrap();
    let d = key(&c, "description").unwrap();
    assert!(d.starts_with("nexcage oci-id: ctr-1\n"));
    assert!(d.len() <= 8192 && d.contains("annotations omitted"));
}

#[test]
fn owner_line_follows_the_id_and_survives_the_8k_cut() {
    let mut ann = serde_json::Map::new();
    for i in 0..200 {
        ann.insert(format!("k{i}"), json!("v".repeat(100)));
    }
    let mut v = base();
    merge(&mut v, &json!({"annotations": ann}));
    let mut o = opts();
    o.owner_line = Some(format!("nexcage-owner: {{\"id\":\"ctr-1\",\"root\":\"/{}\"}}", "r".repeat(300)));
    let d = key(&map_value(&v, &o).unwrap(), "description").unwrap();
    let mut lines = d.lines();
    assert_eq!(lines.next(), Some("nexcage oci-id: ctr-1"));
    assert!(lines.next().unwrap().starts_with("nexcage-owner: {"));
    assert!(d.len() <= 8192, "{}", d.len());
}

#[test]
fn shares_formula_matches_runc() {
    assert_eq!(resources::shares_to_weight(2), 1);
    assert_eq!(resources::shares_to_weight(1024), 39);
    assert_eq!(resources::shares_to_weight(262144), 10000);
}

#[test]
fn unprivileged_gets_proxmox_id_map() {
    let c = map_spec(&Spec::default(), &opts()).unwrap();
    assert_eq!(key(&c, "unprivileged").as_deref(), Some("1"));
    assert_eq!(c.exec.id_shift, Some(100000));
    let maps: Vec<&str> = c.exec.lxc.iter().filter(|(k, _)| k == "lxc.idmap").map(|(_, v)| v.as_str()).collect();
    assert_eq!(maps, ["u 0 100000 65536", "g 0 100000 65536"]);
    // A spec's own map (one range from 0, the same for uids and gids)
    // shifts the rootfs by its host base; other maps leave it as is.
    let own = |g: u64| {
        map_with(json!({"hostname":"","linux":{"namespaces":[{"type":"mount"},{"type":"user"},{"type":"pid"}],
            "uidMappings":[{"containerID":0,"hostID":200000,"size":65536}],"gidMappings":[{"containerID":0,"hostID":g,"size":65536}]}}))
        .unwrap()
    };
    assert_eq!(own(200000).exec.id_shift, Some(200000));
    assert_eq!(raw(&own(200000), "lxc.idmap"), ["u 0 200000 65536", "g 0 200000 65536"]);
    assert_eq!(own(300000).exec.id_shift, None);
    let mut o = opts();
    o.unprivileged = false;
    let c = map_spec(&Spec::default(), &o).unwrap();
    assert_eq!(key(&c, "unprivileged").as_deref(), Some("0"));
    assert_eq!(c.exec.id_shift, None);
    assert!(!c.exec.lxc.iter().any(|(k, _)| k == "lxc.idmap"));
}

#[test]
fn relative_bind_sources_resolve_against_the_bundle() {
    let mut v = base();
    merge(&mut v, &json!({"mounts":[{"destination":"/mnt/rel","type":"bind","source":"relsrc","options":["rbind","ro"]},{"destination":"/mnt/up","type":"bind","source":"./a/../b","options":["bind"]}]}));
    let mut o = opts();
    o.bind_mounts = BindMountMode::LxcEntry;
    o.bundle_dir = Some("/tmp/bundle".into());
    let c = map_value(&v, &o).unwrap();
    let e = raw(&c, "lxc.mount.entry");
    assert!(e.contains(&"/tmp/bundle/relsrc mnt/rel none rbind,ro 0 0".to_string()), "{e:?}");
    assert!(e.contains(&"/tmp/bundle/b mnt/up none bind 0 0".to_string()), "{e:?}");
}

#[test]
fn linux_devices_and_rootfs_propagation_are_exec_outputs() {
    let c = map_with(json!({"linux":{
        "devices":[{"path":"/dev/rtt-null","type":"c","major":1,"minor":3,"fileMode":0o666,"uid":1000,"gid":1001},
                   {"path":"/dev/k","type":"u","major":1,"minor":11},{"path":"/dev/f","type":"p"}],
        "rootfsPropagation":"rslave"}}))
    .unwrap();
    assert_eq!(
        c.exec.devices,
        vec![
            DeviceNode { path: "/dev/rtt-null".into(), kind: 'c', major: 1, minor: 3, file_mode: 0o666, uid: 1000, gid: 1001 },
            DeviceNode { path: "/dev/k".into(), kind: 'c', major: 1, minor: 11, file_mode: 0o666, uid: 0, gid: 0 },
            DeviceNode { path: "/dev/f".into(), kind: 'p', major: 0, minor: 0, file_mode: 0o666, uid: 0, gid: 0 },
        ]
    );
    assert_eq!(c.exec.rootfs_propagation.as_deref(), Some("rslave"));
    // Namespaced sysctls (own network, IPC, UTS namespace) for nexcage to write.
    let c = map_with(json!({"linux":{"sysctl":{"net.ipv4.ip_forward":"1","kernel.shmmax":"9","fs.mqueue.msg_max":"20","kernel.domainname":"example.org"}}})).unwrap();
    let want: Vec<(String, String)> = [("fs.mqueue.msg_max", "20"), ("kernel.domainname", "example.org"), ("kernel.shmmax", "9"), ("net.ipv4.ip_forward", "1")]
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .into();
    assert_eq!(c.exec.sysctls, want);
    assert!(!c.lxc.iter().chain(c.exec.lxc.iter()).any(|(k, _)| k.starts_with("lxc.sysctl.")));
    // The /dev tmpfs's options, for its flags.
    let c = map_with(json!({"mounts":[{"destination":"/dev","type":"tmpfs","source":"tmpfs","options":["nosuid","strictatime","mode=755"]}]})).unwrap();
    assert_eq!(c.exec.dev_flags, ["nosuid", "strictatime", "mode=755"]);
}

#[test]
fn domainname_with_a_uts_namespace_and_ambient_outside_bounding_map() {
    // The runtime's init sets the domainname; runc refuses neither.
    map_with(json!({"domainname":"example.com"})).unwrap();
    let c = map_with(json!({"process":{"capabilities":{"bounding":["CAP_KILL"],"effective":["CAP_KILL"],"ambient":["CAP_NET_BIND_SERVICE"]}}})).unwrap();
    assert_eq!(raw(&c, "lxc.cap.keep"), ["kill"]);
}

#[test]
fn update_keys_only_what_is_set() {
    let base = UpdateBase { memory_mib: Some(64), host_memory_mib: 4096, host_swap_mib: 1024 };
    let keys = |v: Value| update_keys(&v, base).map(|(k, d)| (k.into_iter().collect::<Vec<_>>(), d));
    let kv = |p: &[(&str, &str)]| p.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<Vec<_>>();
    assert_eq!(keys(json!({"memory":{"limit":100663296}})).unwrap(), (kv(&[("memory", "96")]), vec![]));
    assert_eq!(keys(json!({"memory":{"limit":67108864,"swap":134217728}})).unwrap(), (kv(&[("memory", "64"), ("swap", "64")]), vec![]));
    // Swap alone: over the current limit (64 MiB).
    assert_eq!(keys(json!({"memory":{"swap":100663296}})).unwrap(), (kv(&[("swap", "32")]), vec![]));
    // -1: no limit, which Proxmox holds as the host's sizes; no cpulimit.
    assert_eq!(keys(json!({"memory":{"limit":-1,"swap":-1},"cpu":{"quota":-1}})).unwrap(), (kv(&[("memory", "4096"), ("swap", "1024")]), vec!["cpulimit".to_string()]));
    assert_eq!(keys(json!({"cpu":{"shares":1024,"quota":50000,"period":100000,"cpus":"0-1"}})).unwrap(), (kv(&[("cores", "2"), ("cpulimit", "0.5"), ("cpuunits", "39")]), vec![]));
    // 0 (runc: unchanged) and what Proxmox has no key for give nothing.
    assert_eq!(keys(json!({"memory":{"limit":0},"pids":{"limit":10},"cpu":{"shares":0}})).unwrap(), (kv(&[]), vec![]));
    assert!(keys(json!({"memory":{"limit":8388608}})).unwrap_err().to_string().contains("16 MiB"));
    assert!(keys(json!({"memory":{"limit":67108864,"swap":33554432}})).is_err());
    assert!(update_keys(&json!({"memory":{"swap":100663296}}), UpdateBase::default()).is_err(), "swap without any memory limit");
    // Whether the guest's config is read at all.
    assert!(update_touches_config(&json!({"memory":{"swap":-1}})) && update_touches_config(&json!({"cpu":{"cpus":"0"}})));
    assert!(!update_touches_config(&json!({"memory":{"limit":0},"pids":{"limit":10},"cpu":{"shares":0,"cpus":""}})));
}
