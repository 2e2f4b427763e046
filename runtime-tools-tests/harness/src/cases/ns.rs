//! Namespaces: each type new, shared with the host (no entry), or joined by
//! path; path errors; user namespace mappings (config-linux.md "Namespaces",
//! "User namespace mappings").

use super::*;
use crate::host::Host;
use crate::suite::{case, Case};
use crate::sys::ns_inode;
use anyhow::ensure;
use serde_json::json;

pub fn cases() -> Vec<Case> {
    vec![
        case("ns.pid.new", "new pid namespace: the program is pid 1", |c| ns_new(c, "pid")),
        case("ns.pid.path", "pid namespace joined by path", |c| ns_path(c, "pid")),
        case("ns.pid.path_cgroup_mount", "pid namespace joined by path at a pid the host's /proc lacks: the cgroup mount is the container's own", pid_path_cgroup_mount)
            .requires(v1_memory),
        case("ns.network.new", "new network namespace: only lo", |c| ns_new(c, "network")),
        case("ns.network.path", "network namespace joined by path", |c| ns_path(c, "network")),
        case("ns.network.host", "no network entry: the runtime's network namespace", |c| ns_host(c, "network")),
        case("ns.ipc.new", "new ipc namespace", |c| ns_new(c, "ipc")),
        case("ns.ipc.path", "ipc namespace joined by path", |c| ns_path(c, "ipc")),
        case("ns.ipc.host", "no ipc entry: the runtime's ipc namespace", |c| ns_host(c, "ipc")),
        case("ns.uts.new", "new uts namespace: hostname set, host's unchanged", |c| ns_new(c, "uts")),
        case("ns.uts.path", "uts namespace joined by path", |c| ns_path(c, "uts")),
        case("ns.uts.host", "no uts entry: the runtime's uts namespace", |c| ns_host(c, "uts")),
        case("ns.mount.new", "new mount namespace", |c| ns_new(c, "mount")),
        case("ns.cgroup.new", "new cgroup namespace: own cgroup is /", |c| ns_new(c, "cgroup")).requires(cgroup_ns),
        case("ns.cgroup.path", "cgroup namespace joined by path", |c| ns_path(c, "cgroup")).requires(cgroup_ns),
        case("ns.user.mappings", "user namespace with uid/gid mappings", user_mappings).requires(user_ns),
        case("ns.path.type_mismatch", "a namespace path of another type (ipc for network) is an error", type_mismatch),
        case("ns.path.missing", "a namespace path that does not exist is an error", path_missing),
    ]
}

fn cgroup_ns(_: &Host) -> Option<String> {
    if std::path::Path::new("/proc/self/ns/cgroup").exists() {
        None
    } else {
        Some("kernel has no cgroup namespaces".into())
    }
}

fn v1_memory(h: &Host) -> Option<String> {
    h.need_v1(&["memory"])
}

fn user_ns(h: &Host) -> Option<String> {
    if h.user_ns {
        None
    } else {
        Some("user namespaces disabled (user.max_user_namespaces = 0)".into())
    }
}

/// /proc/<pid>/ns/<name> file name of a config namespace type.
fn proc_name(ty: &str) -> &str {
    match ty {
        "network" => "net",
        "mount" => "mnt",
        other => other,
    }
}

fn ns_new(ctx: &mut Ctx, ty: &str) -> Result<()> {
    let mut b = ctx.bundle()?;
    b.ns(ty, None);
    let checks: Vec<&str> = match ty {
        "pid" => vec!["pid=1"],
        "network" => vec!["net.ifaces=lo"],
        "uts" => vec!["hostname=rtt-uts"],
        "cgroup" => vec!["filehas=/proc/self/cgroup::memory:/\n"],
        _ => vec![],
    };
    if ty == "uts" {
        b.set("/hostname", json!("rtt-uts"));
    }
    if ty == "cgroup" {
        // keep this about the namespace; the cgroup mount has its own case
        b.drop_mount("/sys/fs/cgroup");
    }
    let mut all = checks;
    all.push("action.sleep=30");
    b.checks(&all);
    let host_hn = crate::sys::read_trim("/proc/sys/kernel/hostname")?;
    let c = started(ctx, &b)?;
    let inner = ns_inode(&c.state_pid.to_string(), proc_name(ty))?;
    let ours = ns_inode("self", proc_name(ty))?;
    ensure!(inner != ours, "{ty} namespace {inner} is the runtime's own ({ours})");
    wait_tap(&c, all.len() - 1)?;
    if ty == "uts" {
        ensure!(crate::sys::read_trim("/proc/sys/kernel/hostname")? == host_hn, "host hostname changed");
    }
    Ok(())
}

fn ns_path(ctx: &mut Ctx, ty: &str) -> Result<()> {
    let mut a = sleeper(ctx)?;
    a.ns(ty, None);
    if ty == "cgroup" {
        a.drop_mount("/sys/fs/cgroup");
    }
    let ca = started(ctx, &a)?;
    let mut b = sleeper(ctx)?;
    let p = format!("/proc/{}/ns/{}", ca.state_pid, proc_name(ty));
    b.ns(ty, Some(&p));
    if ty == "uts" {
        // the hostname belongs to the joined namespace
        b.remove("/hostname");
    }
    if ty == "cgroup" {
        b.drop_mount("/sys/fs/cgroup");
    }
    let cb = started(ctx, &b)?;
    let ia = ns_inode(&ca.state_pid.to_string(), proc_name(ty))?;
    let ib = ns_inode(&cb.state_pid.to_string(), proc_name(ty))?;
    ensure!(ia == ib, "joined {ty} namespace {ib} differs from {p} ({ia})");
    Ok(())
}

/// Kubernetes' shareProcessNamespace: a container joins the pod's pid
/// namespace by path and has the usual cgroup mount. Its process gets a pid
/// there that no host process has (the namespace's ns_last_pid set just
/// below a pid under 300, which the host never reuses after boot): a runtime
/// that looks its own pid up in the host's /proc fails or reads a stranger.
fn pid_path_cgroup_mount(ctx: &mut Ctx) -> Result<()> {
    let a = holder(ctx)?;
    let free = (3..300).find(|p| !std::path::Path::new(&format!("/proc/{p}")).exists()).ok_or_else(|| skip("no pid below 300 free on the host"))?;
    let set = std::process::Command::new("nsenter")
        .args(["-t", &a.pid.to_string(), "-p", "sh", "-c", &format!("echo {} > /proc/sys/kernel/ns_last_pid", free - 1)])
        .output()?;
    ensure!(set.status.success(), "setting ns_last_pid in {}'s pid namespace: {}", a.pid, String::from_utf8_lossy(&set.stderr));
    let mut b = ctx.bundle()?;
    b.ns("pid", Some(&format!("/proc/{}/ns/pid", a.pid)));
    b.set("/linux/resources/memory", json!({"limit": 100663296}));
    let pid = format!("pid={free}");
    b.checks(&[&pid, "mount=/sys/fs/cgroup/memory:cgroup:ro", "cgfile=memory/memory.limit_in_bytes:100663296", "ro=/sys/fs/cgroup/memory"]);
    ctx.expect_checks(&b)?;
    Ok(())
}

fn ns_host(ctx: &mut Ctx, ty: &str) -> Result<()> {
    let mut b = sleeper(ctx)?;
    b.drop_ns(ty);
    if ty == "uts" {
        b.remove("/hostname");
    }
    if ty == "network" {
        // sysfs cannot be mounted without owning a network namespace
        b.drop_mount("/sys/fs/cgroup");
        b.drop_mount("/sys");
        b.mount(json!({"destination": "/sys", "type": "bind", "source": "/sys", "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]}));
    }
    let c = started(ctx, &b)?;
    let inner = ns_inode(&c.state_pid.to_string(), proc_name(ty))?;
    let ours = ns_inode("self", proc_name(ty))?;
    ensure!(inner == ours, "{ty} namespace {inner} is not the runtime's ({ours})");
    Ok(())
}

fn user_mappings(ctx: &mut Ctx) -> Result<()> {
    let mut b = ctx.bundle()?;
    b.ns("user", None);
    b.set("/linux/uidMappings", json!([{"containerID": 0, "hostID": 100000, "size": 65536}]));
    b.set("/linux/gidMappings", json!([{"containerID": 0, "hostID": 200000, "size": 65536}]));
    b.drop_mount("/sys/fs/cgroup");
    b.checks(&["uidmap=0 100000 65536", "gidmap=0 200000 65536", "uid=0", "gid=0", "action.sleep=30"]);
    let c = started(ctx, &b)?;
    let st = std::fs::read_to_string(format!("/proc/{}/status", c.state_pid))?;
    let uid = st.lines().find(|l| l.starts_with("Uid:")).unwrap_or("").to_string();
    let gid = st.lines().find(|l| l.starts_with("Gid:")).unwrap_or("").to_string();
    ensure!(uid.split_whitespace().nth(1) == Some("100000"), "host view of the uid: {uid}, want 100000");
    ensure!(gid.split_whitespace().nth(1) == Some("200000"), "host view of the gid: {gid}, want 200000");
    let inner = ns_inode(&c.state_pid.to_string(), "user")?;
    ensure!(inner != ns_inode("self", "user")?, "no new user namespace");
    wait_tap(&c, 4)?;
    Ok(())
}

fn type_mismatch(ctx: &mut Ctx) -> Result<()> {
    let a = holder(ctx)?;
    let mut b = ctx.bundle()?;
    b.args(&["/bin/true"]);
    b.ns("network", Some(&format!("/proc/{}/ns/ipc", a.state_pid)));
    expect_refused(ctx, &b, "an ipc namespace path given for network")?;
    Ok(())
}

fn path_missing(ctx: &mut Ctx) -> Result<()> {
    let mut b = ctx.bundle()?;
    b.args(&["/bin/true"]);
    b.ns("network", Some("/proc/rtt-no-such-pid/ns/net"));
    expect_refused(ctx, &b, "a namespace path that does not exist")?;
    Ok(())
}
