//! `nexcage features`: what this build really supports (runtime-spec features.md).

use anyhow::Result;
use serde_json::json;

const NAMESPACES: [&str; 8] = ["cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts"];
const HOOKS: [&str; 6] = ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"];
const MOUNT_OPTIONS: [&str; 43] = [
    "async", "atime", "bind", "defaults", "dev", "diratime", "dirsync", "exec", "iversion", "lazytime",
    "loud", "mand", "noatime", "nodev", "nodiratime", "noexec", "noiversion", "nolazytime", "nomand",
    "norelatime", "nostrictatime", "nosuid", "nosymfollow", "private", "rbind", "relatime", "remount",
    "ro", "rprivate", "rshared", "rslave", "runbindable", "rw", "shared", "silent", "slave",
    "strictatime", "suid", "symfollow", "sync", "unbindable", "idmap", "ridmap",
];
const SECCOMP_ACTIONS: [&str; 8] = [
    "SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS",
    "SCMP_ACT_KILL_THREAD", "SCMP_ACT_LOG", "SCMP_ACT_NOTIFY", "SCMP_ACT_TRACE",
];
const SECCOMP_OPERATORS: [&str; 7] = [
    "SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_LE", "SCMP_CMP_LT",
    "SCMP_CMP_MASKED_EQ", "SCMP_CMP_NE",
];

pub fn run() -> Result<i32> {
    let caps: Vec<String> = caps::all().into_iter().map(|c| c.to_string()).collect::<std::collections::BTreeSet<_>>().into_iter().collect();
    let v = json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": super::SPEC_VERSION,
        "hooks": HOOKS,
        "mountOptions": &MOUNT_OPTIONS[..],
        "linux": {
            "namespaces": NAMESPACES,
            "capabilities": caps,
            // Built without libcontainer's systemd feature: cgroupfs only.
            "cgroup": {"v1": true, "v2": true, "systemd": false, "systemdUser": false, "rdma": false},
            "seccomp": {
                "enabled": true,
                "actions": SECCOMP_ACTIONS,
                "operators": SECCOMP_OPERATORS,
                "archs": ["SCMP_ARCH_X86", "SCMP_ARCH_X86_64", "SCMP_ARCH_X32", "SCMP_ARCH_AARCH64"],
            },
            "apparmor": {"enabled": false},
            "selinux": {"enabled": false},
            "intelRdt": {"enabled": true},
            "mountExtensions": {"idmap": {"enabled": true}},
        },
        "annotations": {
            // Both are built in; which one a container gets is the configuration's.
            "org.nexcage.backends": "native,proxmox",
            "org.opencontainers.runtime-spec.version": super::SPEC_VERSION,
        },
    });
    println!("{}", serde_json::to_string_pretty(&v)?);
    Ok(0)
}
