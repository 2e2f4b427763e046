//! Cgroups (v1 on this host): cgroupsPath placement, memory, cpu, cpuset,
//! pids, devices, the cgroup mount, cleanup (config-linux.md "Control
//! groups"). Checked from the outside through the cgroup files and from the
//! inside where the effect is observable (fork limit, OOM kill, device open).

use super::*;
use crate::host::Host;
use crate::suite::{case, Case};
use crate::sys::Exit;
use anyhow::{ensure, Context};
use serde_json::{json, Value};

pub fn cases() -> Vec<Case> {
    vec![
        case("cgroups.path.absolute", "an absolute cgroupsPath is the cgroup in every controller", path_absolute).requires(v1_basic),
        case("cgroups.path.relative", "a relative cgroupsPath lands below the runtime's cgroup with that suffix", path_relative)
            .requires(v1_basic),
        case("cgroups.memory.limit", "memory.limit -> memory.limit_in_bytes (outside and inside)", memory_limit).requires(v1_memory),
        case("cgroups.memory.reservation", "memory.reservation -> memory.soft_limit_in_bytes", memory_reservation).requires(v1_memory),
        case("cgroups.memory.swap", "memory.swap -> memory.memsw.limit_in_bytes", memory_swap).requires(v1_memsw),
        case("cgroups.memory.oom_kill", "going over memory.limit gets the process OOM-killed", memory_oom).requires(v1_memsw),
        case("cgroups.cpu.shares", "cpu.shares -> cpu.shares", cpu_shares).requires(v1_cpu),
        case("cgroups.cpu.quota_period", "cpu.quota/period -> cpu.cfs_quota_us/cfs_period_us", cpu_quota).requires(v1_cpu),
        case("cgroups.cpuset", "cpu.cpus/mems -> cpuset files and the allowed lists inside", cpuset).requires(v1_cpuset),
        case("cgroups.pids.limit", "pids.limit -> pids.max, and fork fails with EAGAIN inside", pids_limit).requires(v1_pids),
        case("cgroups.devices.deny", "a node not allowed by linux.resources.devices cannot be opened (EPERM)", devices_deny)
            .requires(v1_devices),
        case("cgroups.devices.allow", "an allow rule lets the node be opened; devices.list has it", devices_allow).requires(v1_devices),
        case("cgroups.mount.v1", "the cgroup mount shows the controllers read-only, rooted at the container's cgroup", cgroup_mount)
            .requires(v1_memory),
        case("cgroups.update.resources", "update --resources - (containerd's form) changes the limits of a running container", update_resources)
            .requires(v1_basic),
        case("cgroups.update.zero_unchanged", "update with 0 or \"\" (runc: unset) exits 0 and leaves each limit as it was", update_zero_unchanged)
            .requires(v1_update_zero),
        case("cgroups.cleanup", "delete removes the container's cgroup from every controller", cleanup).requires(v1_basic),
        case("cgroups.v2.memory_max", "cgroup v2: memory.limit -> memory.max", v2_memory).requires(v2_only),
    ]
}

fn v1_basic(h: &Host) -> Option<String> {
    h.need_v1(&["memory", "pids", "cpu", "devices", "freezer"])
}
fn v1_memory(h: &Host) -> Option<String> {
    h.need_v1(&["memory"])
}
fn v1_memsw(h: &Host) -> Option<String> {
    if let Some(r) = h.need_v1(&["memory"]) {
        return Some(r);
    }
    let m = &h.cgroup_v1["memory"];
    if !m.join("memory.memsw.limit_in_bytes").exists() {
        return Some("no swap accounting (memory.memsw.* missing)".into());
    }
    None
}
fn v1_cpu(h: &Host) -> Option<String> {
    h.need_v1(&["cpu"])
}
fn v1_cpuset(h: &Host) -> Option<String> {
    h.need_v1(&["cpuset"])
}
fn v1_update_zero(h: &Host) -> Option<String> {
    h.need_v1(&["memory", "cpu", "cpuset", "pids"])
}
fn v1_pids(h: &Host) -> Option<String> {
    h.need_v1(&["pids"])
}
fn v1_devices(h: &Host) -> Option<String> {
    h.need_v1(&["devices"])
}
fn v2_only(h: &Host) -> Option<String> {
    if h.cgroup_v2_only() {
        None
    } else {
        Some(format!(
            "host is not cgroup v2-only (v1 controllers mounted; cgroup2 controllers: [{}])",
            h.cgroup_v2_controllers.join(",")
        ))
    }
}

/// Runs a checker with `inside` checks (then sleeping) under `resources`,
/// waits for its results, then compares host cgroup files.
fn resource_case(ctx: &mut Ctx, resources: Value, outside: &[(&str, &str, &str)], inside: &[&str]) -> Result<()> {
    let mut b = ctx.bundle()?;
    for (k, v) in resources.as_object().context("resources must be an object")? {
        b.set(&format!("/linux/resources/{k}"), v.clone());
    }
    let mut checks = inside.to_vec();
    checks.push("action.sleep=30");
    b.checks(&checks);
    let c = started(ctx, &b)?;
    wait_tap(&c, inside.len())?;
    for (ctrl, file, want) in outside {
        let d = ctx.host.cgroup_dir(c.state_pid, ctrl)?;
        let got = crate::sys::read_trim(d.join(file))?;
        ensure!(got == *want, "{ctrl}/{file} = {got}, want {want} (in {})", d.display());
    }
    Ok(())
}

fn path_absolute(ctx: &mut Ctx) -> Result<()> {
    let b = sleeper(ctx)?;
    let want = b.config["linux"]["cgroupsPath"].as_str().unwrap_or("").to_string();
    let c = started(ctx, &b)?;
    for ctrl in ["memory", "pids", "cpu", "devices", "freezer"] {
        let got = ctx.host.cgroup_path(c.state_pid, ctrl)?;
        ensure!(got == want, "{ctrl} cgroup is {got}, want {want}");
    }
    Ok(())
}

fn path_relative(ctx: &mut Ctx) -> Result<()> {
    let mut b = sleeper(ctx)?;
    let rel = format!("{}-rel/c{}", ctx.cg_prefix, ctx.case_index);
    b.set("/linux/cgroupsPath", json!(rel));
    let c = started(ctx, &b)?;
    for ctrl in ["memory", "pids", "cpu"] {
        let got = ctx.host.cgroup_path(c.state_pid, ctrl)?;
        ensure!(got.ends_with(&format!("/{rel}")), "{ctrl} cgroup is {got}, want a path ending in /{rel}");
    }
    Ok(())
}

fn memory_limit(ctx: &mut Ctx) -> Result<()> {
    resource_case(
        ctx,
        json!({"memory": {"limit": 67108864}}),
        &[("memory", "memory.limit_in_bytes", "67108864")],
        &["cgfile=memory/memory.limit_in_bytes:67108864"],
    )
}

fn memory_reservation(ctx: &mut Ctx) -> Result<()> {
    resource_case(
        ctx,
        json!({"memory": {"limit": 67108864, "reservation": 33554432}}),
        &[("memory", "memory.soft_limit_in_bytes", "33554432")],
        &[],
    )
}

fn memory_swap(ctx: &mut Ctx) -> Result<()> {
    resource_case(
        ctx,
        json!({"memory": {"limit": 67108864, "swap": 134217728}}),
        &[("memory", "memory.limit_in_bytes", "67108864"), ("memory", "memory.memsw.limit_in_bytes", "134217728")],
        &[],
    )
}

fn memory_oom(ctx: &mut Ctx) -> Result<()> {
    let mut b = ctx.bundle()?;
    b.set("/linux/resources/memory", json!({"limit": 33554432, "swap": 33554432}));
    b.checks(&["action.alloc=128"]);
    let (e, out, _) = ctx.run_detached(&b, &crate::ctx::Opts::default())?;
    ensure!(e == Exit::Signal(9), "allocating 128 MiB under a 32 MiB limit: {e}, want OOM kill (signal 9); output {out:?}");
    Ok(())
}

fn cpu_shares(ctx: &mut Ctx) -> Result<()> {
    resource_case(ctx, json!({"cpu": {"shares": 512}}), &[("cpu", "cpu.shares", "512")], &[])
}

fn cpu_quota(ctx: &mut Ctx) -> Result<()> {
    resource_case(
        ctx,
        json!({"cpu": {"quota": 50000, "period": 100000}}),
        &[("cpu", "cpu.cfs_quota_us", "50000"), ("cpu", "cpu.cfs_period_us", "100000")],
        &[],
    )
}

fn cpuset(ctx: &mut Ctx) -> Result<()> {
    resource_case(
        ctx,
        json!({"cpu": {"cpus": "0", "mems": "0"}}),
        &[("cpuset", "cpuset.cpus", "0"), ("cpuset", "cpuset.mems", "0")],
        &["cpus=0", "mems=0"],
    )
}

fn pids_limit(ctx: &mut Ctx) -> Result<()> {
    resource_case(ctx, json!({"pids": {"limit": 16}}), &[("pids", "pids.max", "16")], &["forklimit=16"])
}

fn kmsg_device(b: &mut crate::bundle::Bundle) {
    // /dev/kmsg (1:11) is not among the devices runtimes allow by default;
    // opening it write-only needs no privilege beyond the cgroup rule.
    b.push("/linux/devices", json!({"path": "/dev/rtt-kmsg", "type": "c", "major": 1, "minor": 11, "fileMode": 0o666, "uid": 0, "gid": 0}));
}

fn devices_deny(ctx: &mut Ctx) -> Result<()> {
    let mut b = ctx.bundle()?;
    kmsg_device(&mut b);
    b.checks(&["chardev=/dev/rtt-kmsg:1:11", "open=/dev/rtt-kmsg:w:EPERM", "open=/dev/null:w:OK", "action.sleep=30"]);
    let c = started(ctx, &b)?;
    wait_tap(&c, 3)?;
    let list = std::fs::read_to_string(ctx.host.cgroup_dir(c.state_pid, "devices")?.join("devices.list"))?;
    ensure!(!list.lines().any(|l| l.starts_with("c 1:11") || l.starts_with("a ")), "devices.list allows 1:11: {list:?}");
    Ok(())
}

fn devices_allow(ctx: &mut Ctx) -> Result<()> {
    let mut b = ctx.bundle()?;
    kmsg_device(&mut b);
    b.push("/linux/resources/devices", json!({"allow": true, "type": "c", "major": 1, "minor": 11, "access": "w"}));
    b.checks(&["open=/dev/rtt-kmsg:w:OK", "open=/dev/rtt-kmsg:r:EPERM", "action.sleep=30"]);
    let c = started(ctx, &b)?;
    wait_tap(&c, 2)?;
    let list = std::fs::read_to_string(ctx.host.cgroup_dir(c.state_pid, "devices")?.join("devices.list"))?;
    ensure!(list.lines().any(|l| l.trim() == "c 1:11 w"), "devices.list lacks \"c 1:11 w\": {list:?}");
    Ok(())
}

fn cgroup_mount(ctx: &mut Ctx) -> Result<()> {
    let mut b = ctx.bundle()?;
    b.set("/linux/resources/memory", json!({"limit": 100663296}));
    b.checks(&[
        "mount=/sys/fs/cgroup/memory:cgroup:ro",
        "mount=/sys/fs/cgroup/pids:cgroup:ro",
        "cgfile=memory/memory.limit_in_bytes:100663296",
        "ro=/sys/fs/cgroup/memory",
    ]);
    ctx.expect_checks(&b)?;
    Ok(())
}

fn cleanup(ctx: &mut Ctx) -> Result<()> {
    let mut b = sleeper(ctx)?;
    b.set("/linux/resources/pids", json!({"limit": 100}));
    let c = started(ctx, &b)?;
    // every hierarchy the runtime placed the container in (v1 controllers,
    // named hierarchies such as name=systemd, hugetlb wherever it is mounted)
    let mut dirs = Vec::new();
    for (ctrl, mnt) in &ctx.host.cgroup_v1 {
        if let Ok(d) = ctx.host.cgroup_dir(c.state_pid, ctrl) {
            if &d != mnt && d.starts_with(mnt) && d.to_string_lossy().contains(&ctx.cg_prefix) {
                dirs.push(d);
            }
        }
    }
    ensure!(dirs.len() >= 5, "container is in only {} cgroups of this run: {dirs:?}", dirs.len());
    for d in &dirs {
        ensure!(d.exists(), "{} does not exist while running", d.display());
    }
    ctx.kill(&c.id, "KILL")?.must()?;
    ctx.wait(c.pid)?;
    ctx.wait_status(&c.id, "stopped")?;
    ctx.delete(&c.id)?.must()?;
    let left: Vec<String> = dirs.iter().filter(|d| d.exists()).map(|d| d.display().to_string()).collect();
    ensure!(left.is_empty(), "cgroups left after delete: {left:?}");
    Ok(())
}

fn v2_memory(ctx: &mut Ctx) -> Result<()> {
    let mut b = ctx.bundle()?;
    b.set("/linux/resources/memory", json!({"limit": 67108864}));
    b.checks(&["cgfile=memory.max:67108864", "action.sleep=30"]);
    let c = started(ctx, &b)?;
    wait_tap(&c, 1)?;
    let m = ctx.host.cgroup_v2_mount.clone().context("no cgroup2 mount")?;
    let s = std::fs::read_to_string(format!("/proc/{}/cgroup", c.state_pid))?;
    let path = s.lines().find_map(|l| l.strip_prefix("0::")).context("no v2 line in /proc/pid/cgroup")?;
    let got = crate::sys::read_trim(m.join(path.trim_start_matches('/')).join("memory.max"))?;
    ensure!(got == "67108864", "memory.max = {got}");
    Ok(())
}

/// runc 1.1.5 `update`: a number flag 0 or "" and an empty cpuset list
/// mean "not given" (libcontainer's cgroup `Set` skips zero values).
fn update_zero_unchanged(ctx: &mut Ctx) -> Result<()> {
    let mut b = sleeper(ctx)?;
    b.set("/linux/resources/memory", json!({"limit": 67108864}));
    b.set("/linux/resources/cpu", json!({"shares": 512, "period": 100000, "quota": 50000, "cpus": "0"}));
    b.set("/linux/resources/pids", json!({"limit": 20}));
    let c = started(ctx, &b)?;
    let zeros = ["--memory", "0", "--cpu-share", "0", "--cpu-period", "0", "--cpu-quota", "0", "--pids-limit", "0"];
    ctx.rt(&[&["update"][..], &zeros, &[&c.id]].concat())?.must()?;
    ctx.rt(&["update", "--memory", "", "--cpuset-cpus", "", &c.id])?.must()?;
    let files = [
        ("memory", "memory.limit_in_bytes", "67108864"),
        ("cpu", "cpu.shares", "512"),
        ("cpu", "cpu.cfs_period_us", "100000"),
        ("cpu", "cpu.cfs_quota_us", "50000"),
        ("cpuset", "cpuset.cpus", "0"),
        ("pids", "pids.max", "20"),
    ];
    for (ctrl, file, want) in files {
        let got = crate::sys::read_trim(ctx.host.cgroup_dir(c.state_pid, ctrl)?.join(file))?;
        ensure!(got == want, "after update with zeros {ctrl}/{file} = {got}, want {want}");
    }
    ensure!(ctx.status(&c.id)? == "running", "container not running after update");
    Ok(())
}

fn update_resources(ctx: &mut Ctx) -> Result<()> {
    let mut b = sleeper(ctx)?;
    b.set("/linux/resources/memory", json!({"limit": 67108864}));
    b.set("/linux/resources/pids", json!({"limit": 20}));
    let c = started(ctx, &b)?;
    let res = ctx.path("resources.json");
    std::fs::write(&res, serde_json::to_string(&json!({"memory": {"limit": 134217728}, "pids": {"limit": 40}, "cpu": {"shares": 256}}))?)?;
    let opts = crate::ctx::Opts { stdin: Some(res), ..Default::default() };
    ctx.rt_opts(&["update", "--resources", "-", &c.id], &opts)?.must()?;
    for (ctrl, file, want) in [("memory", "memory.limit_in_bytes", "134217728"), ("pids", "pids.max", "40"), ("cpu", "cpu.shares", "256")] {
        let got = crate::sys::read_trim(ctx.host.cgroup_dir(c.state_pid, ctrl)?.join(file))?;
        ensure!(got == want, "after update {ctrl}/{file} = {got}, want {want}");
    }
    ensure!(ctx.status(&c.id)? == "running", "container not running after update");
    Ok(())
}
