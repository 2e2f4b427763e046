//! The guest's cgroups, found from its init's /proc/<pid>/cgroup (v1
//! hierarchies, or the unified one): their directories and processes,
//! thawing, and removing what LXC left. (Not to be confused with the native
//! backend's `cgroup_manager`, which goes through libcgroups.)

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

const ROOT: &str = "/sys/fs/cgroup";

/// Where the hierarchy of a /proc/<pid>/cgroup line is mounted: the unified
/// one for "", else the v1 mount whose name lists one of `ctrls`
/// (`name=systemd` is mounted as `systemd`).
fn mount_of(ctrls: &str) -> Option<PathBuf> {
    if ctrls.is_empty() {
        let v2 = Path::new(ROOT).join("cgroup.controllers").exists();
        return Some(if v2 { PathBuf::from(ROOT) } else { Path::new(ROOT).join("unified") });
    }
    let want: Vec<&str> = ctrls.split(',').map(|c| c.trim_start_matches("name=")).collect();
    std::fs::read_dir(ROOT).ok()?.flatten().map(|e| e.path()).find(|p| {
        p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.split(',').any(|c| want.contains(&c)))
    })
}

/// (controllers, directory) of every hierarchy `pid` is in.
fn dirs_of(pid: i32) -> Vec<(String, PathBuf)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
    text.lines()
        .filter_map(|line| {
            let mut f = line.splitn(3, ':');
            let (_, ctrls, path) = (f.next()?, f.next()?, f.next()?);
            Some((ctrls.to_string(), mount_of(ctrls)?.join(path.trim_start_matches('/'))))
        })
        .collect()
}

/// Directory of `controller` for `pid` (v1 mount, or the unified one for "").
fn dir_of(pid: i32, controller: &str) -> Option<PathBuf> {
    dirs_of(pid).into_iter().find(|(c, _)| if controller.is_empty() { c.is_empty() } else { c.split(',').any(|x| x == controller) }).map(|(_, d)| d)
}

/// The `cgroup.procs` files that put a process where `pid` is, in every
/// hierarchy mounted here.
pub fn procs_files(pid: i32) -> Vec<PathBuf> {
    dirs_of(pid).into_iter().map(|(_, d)| d.join("cgroup.procs")).filter(|f| f.exists()).collect()
}

/// The guest's cgroup dir for a controller (of the guest's init `pid`),
/// v1 first, else unified.
pub fn guest_dir(pid: i32, controller: &str) -> Option<PathBuf> {
    dir_of(pid, controller).filter(|d| d.exists()).or_else(|| dir_of(pid, "").filter(|d| d.exists()))
}

/// A bundle's `linux.cgroupsPath` from the hierarchies' root, as runc's
/// cgroupfs driver takes it: an absolute one as is, a relative one below
/// the runtime's own cgroup (its memory hierarchy's, else the unified
/// one's: LXC takes one path for every hierarchy).
pub fn resolve(p: &Path) -> PathBuf {
    if p.is_absolute() {
        return p.to_path_buf();
    }
    path_of(std::process::id() as i32).unwrap_or_else(|| PathBuf::from("/")).join(p)
}

/// Readies the cgroup v1 cpuset parent of the guest's cgroup `path` (from
/// the hierarchies' root) for LXC: LXC copies `cpuset.cpus`/`mems` into the
/// dirs it makes only when the hierarchy's root has `clone_children`, so
/// below a parent someone else made (a pod's, made by runc or libcontainer
/// without it) the guest's dir would stay empty and LXC could not enter it
/// ("No space left on device"). The deepest existing ancestor gets
/// `cgroup.clone_children = 1`, so the kernel gives new children its own
/// cpus and mems (what runc writes into the dirs it makes). Nothing else of
/// that cgroup changes.
pub fn ready_cpuset_parent(path: &Path) {
    let cpuset = Path::new(ROOT).join("cpuset");
    let rel = path.strip_prefix("/").unwrap_or(path);
    let Some(parent) = rel.parent().filter(|p| !p.as_os_str().is_empty()) else { return };
    let mut d = cpuset.join(parent);
    while !d.is_dir() {
        if !d.pop() || d == cpuset {
            return;
        }
    }
    if d == cpuset || std::fs::read_to_string(d.join("cgroup.clone_children")).is_ok_and(|v| v.trim() == "1") {
        return;
    }
    if let Err(e) = std::fs::write(d.join("cgroup.clone_children"), "1") {
        tracing::warn!("cannot set cgroup.clone_children in {}: {e}", d.display());
    }
}

/// The cgroup v1 controllers whose files containerd's shim reads for the
/// pid-file pid (the holder): memory (usage, limit, the OOM eventfd on
/// `memory.oom_control`), cpu and cpuacct (usage, throttling), blkio
/// (containerd/cgroups v1 `Stat`, runc-v2 shim `NewContainer` loads them
/// once after create). Not freezer (pause must not freeze the holder: it
/// answers LXC's command socket, which `pct status` asks), not pids
/// (`pids.max` counts the container's processes only), nor the rest.
/// (cgroup v2 has one hierarchy: the holder joins it, see [`enter_stats`].)
pub const STATS_CONTROLLERS: [&str; 4] = ["memory", "cpu", "cpuacct", "blkio"];

fn is_stats_hierarchy(ctrls: &str) -> bool {
    ctrls.split(',').any(|c| STATS_CONTROLLERS.contains(&c))
}

/// Whether the host has the unified hierarchy alone (cgroup v2 at the root).
fn unified_only() -> bool {
    Path::new(ROOT).join("cgroup.controllers").exists()
}

/// Moves the holder into the guest's cgroup (its init's): on cgroup v1 in
/// the hierarchies of [`STATS_CONTROLLERS`], one `cgroup.procs` write each
/// (v1 hierarchies are independent); on cgroup v2 into the guest's one
/// (leaf) cgroup, where `ps`, `kill --all` ([`pids_of`]) and `pause`
/// ([`freeze`]) leave it out (README.md here, *The guest's cgroup*). The
/// engine's shim then loads the guest's cgroup for the holder's pid: its
/// counters are the guest's, and its memory limit's OOM events reach it.
/// Errors name the file.
pub fn enter_stats(holder: i32, init: i32) -> Result<()> {
    let v2 = unified_only();
    for (_, d) in dirs_of(init).into_iter().filter(|(c, _)| if v2 { c.is_empty() } else { is_stats_hierarchy(c) }) {
        let f = d.join("cgroup.procs");
        std::fs::write(&f, holder.to_string()).with_context(|| format!("cannot move the holder {holder} into {}", f.display()))?;
    }
    Ok(())
}

/// The hierarchies the holder joins with [`enter_stats`] (their mount dirs,
/// not the `cpu`/`cpuacct` symlinks): the v1 ones of [`STATS_CONTROLLERS`],
/// or the unified one alone on a pure v2 host.
pub fn stats_hierarchies() -> Vec<PathBuf> {
    if unified_only() {
        return vec![PathBuf::from(ROOT)];
    }
    let rd = std::fs::read_dir(ROOT).map(|rd| rd.flatten().map(|e| e.path()).collect::<Vec<_>>()).unwrap_or_default();
    rd.into_iter().filter(|p| p.is_dir() && !p.is_symlink() && p.file_name().and_then(|n| n.to_str()).is_some_and(is_stats_hierarchy)).collect()
}

/// The `cgroup.procs` that takes the holder back to its monitor cgroup
/// `lxc.monitor.<vmid>` in hierarchy `h`, or to `h`'s root when that is
/// gone. (The holder's `lxc.hook.stop`, holder.rs, writes the same file.)
fn monitor_procs(h: &Path, vmid: u32) -> PathBuf {
    let f = h.join(format!("lxc.monitor.{vmid}")).join("cgroup.procs");
    if f.exists() {
        f
    } else {
        h.join("cgroup.procs")
    }
}

/// The holder as pause needs it on cgroup v2: its pid, and the VMID that
/// names its monitor cgroup.
pub struct Holder {
    pub pid: i32,
    pub vmid: u32,
}

/// The cgroup `pid` is in, from the hierarchies' root: its memory
/// hierarchy's (cgroup v1), else the unified one's.
pub fn path_of(pid: i32) -> Option<PathBuf> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    let of = |want: &dyn Fn(&str) -> bool| {
        text.lines().find_map(|l| {
            let mut f = l.splitn(3, ':');
            let (_, ctrls, path) = (f.next()?, f.next()?, f.next()?);
            want(ctrls).then(|| PathBuf::from(path))
        })
    };
    of(&|c| c.split(',').any(|x| x == "memory")).or_else(|| of(&|c| c.is_empty()))
}

/// A number from the cgroup file `f` in `d`; 0 when missing or unreadable.
pub fn read_u64(d: &Path, f: &str) -> u64 {
    std::fs::read_to_string(d.join(f)).ok().and_then(|s| s.trim().parse().ok()).unwrap_or(0)
}

/// Every pid in the init's cgroup (pids controller, recursively): the
/// guest's, never the holder (on cgroup v1 it joins no pids cgroup, see
/// [`STATS_CONTROLLERS`]; on v2 it may share the guest's cgroup and is
/// left out: it is the init's parent, which is never the guest's).
pub fn pids_of(init: i32) -> Result<Vec<i32>> {
    let d = guest_dir(init, "pids").context("cannot find the guest's cgroup")?;
    let mut out = Vec::new();
    collect(&d, &mut out);
    if let Some(parent) = parent_of(init) {
        out.retain(|p| *p != parent);
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

/// The parent pid of `pid` (field 4 of /proc/PID/stat).
fn parent_of(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat[stat.rfind(')')? + 2..].split(' ').nth(1)?.parse().ok()
}

fn collect(d: &Path, out: &mut Vec<i32>) {
    if let Ok(s) = std::fs::read_to_string(d.join("cgroup.procs")) {
        out.extend(s.split_whitespace().filter_map(|x| x.parse::<i32>().ok()));
    }
    if let Ok(rd) = std::fs::read_dir(d) {
        for e in rd.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                collect(&e.path(), out);
            }
        }
    }
}

/// Thaws a (paused) guest: SIGKILL does not end frozen processes.
pub fn thaw(init: i32) {
    let _ = freeze(init, false, None);
}

/// Freezes (`true`) or thaws the guest's cgroup, the init's (v1 freezer,
/// else v2 `cgroup.freeze`), and waits up to 10 s until the kernel says it
/// is done. The holder is never frozen, so it keeps answering LXC's
/// command socket while the guest is paused: on v1 it joins no freezer
/// cgroup (see [`STATS_CONTROLLERS`]); on v2 `holder` (the one that joined
/// the guest's cgroup at create) steps back into its monitor cgroup
/// before the freeze and rejoins the guest's after the thaw.
pub fn freeze(init: i32, frozen: bool, holder: Option<&Holder>) -> Result<()> {
    // (file written, value, file read back, line it then holds)
    let (d, set, value, check, want) = if let Some(d) = dir_of(init, "freezer").filter(|d| d.join("freezer.state").exists()) {
        let state = if frozen { "FROZEN" } else { "THAWED" };
        (d, "freezer.state", state, "freezer.state", state)
    } else if let Some(d) = dir_of(init, "").filter(|d| d.join("cgroup.freeze").exists()) {
        if let Some(h) = holder.filter(|_| frozen) {
            let f = monitor_procs(Path::new(ROOT), h.vmid);
            std::fs::write(&f, h.pid.to_string()).with_context(|| format!("cannot move the holder {} into {}", h.pid, f.display()))?;
        }
        (d, "cgroup.freeze", if frozen { "1" } else { "0" }, "cgroup.events", if frozen { "frozen 1" } else { "frozen 0" })
    } else {
        anyhow::bail!("the guest has no freezer cgroup");
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        // v1: writing FROZEN again moves a cgroup stuck in FREEZING on.
        std::fs::write(d.join(set), value).with_context(|| format!("cannot write {value} to {}", d.join(set).display()))?;
        if std::fs::read_to_string(d.join(check)).is_ok_and(|s| s.lines().any(|l| l.trim() == want)) {
            break;
        }
        if std::time::Instant::now() > deadline {
            anyhow::bail!("{} did not become {value} within 10 s", d.join(set).display());
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    match holder.filter(|_| !frozen && set == "cgroup.freeze") {
        Some(h) => enter_stats(h.pid, init),
        None => Ok(()),
    }
}

/// Whether `name` is LXC's `<prefix><vmid>` cgroup, or the `-<n>` variant
/// LXC picks when that name is taken.
fn is_lxc_cgroup(name: &str, prefix: &str, vmid: u32) -> bool {
    name.strip_prefix(prefix).and_then(|r| r.strip_prefix(&vmid.to_string())).is_some_and(|r| {
        r.is_empty() || r.strip_prefix('-').is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
    })
}

/// The guest's payload cgroup (`lxc.payload.<vmid>[-<n>]`).
pub fn is_payload(name: &str, vmid: u32) -> bool {
    is_lxc_cgroup(name, "lxc.payload.", vmid)
}

/// One of LXC's cgroups for `vmid`: payload or monitor.
fn is_guest_cgroup(name: &str, vmid: u32) -> bool {
    is_payload(name, vmid) || is_lxc_cgroup(name, "lxc.monitor.", vmid)
}

/// Removes the cgroups LXC left for `vmid` (it cannot when its monitor is
/// killed). Only empty ones go: rmdir refuses a cgroup with processes.
pub fn remove_leftovers(vmid: u32) {
    let mut roots: Vec<PathBuf> = std::fs::read_dir(ROOT).map(|rd| rd.flatten().map(|e| e.path()).collect()).unwrap_or_default();
    roots.push(PathBuf::from(ROOT));
    let now = std::time::Instant::now();
    for root in roots {
        let Ok(rd) = std::fs::read_dir(&root) else { continue };
        for e in rd.flatten() {
            if e.file_name().to_str().is_some_and(|n| is_guest_cgroup(n, vmid)) && e.path().is_dir() {
                rmdir_tree(&e.path(), now);
            }
        }
    }
}

/// How long [`remove_dir`] waits for the killed guest's last processes to
/// leave its cgroup: they may still be exiting when their monitor, which
/// would have waited, was killed (a privileged guest's init unmounts its
/// tree on the way out).
const EXIT_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Removes the guest's cgroup `rel` (from the hierarchies' root) in every
/// hierarchy, with what LXC made below it; only empty ones go, waiting up
/// to [`EXIT_WAIT`] for processes that are still exiting.
pub fn remove_dir(rel: &Path) {
    let rel = rel.strip_prefix("/").unwrap_or(rel);
    if rel.as_os_str().is_empty() {
        return;
    }
    let mut roots: Vec<PathBuf> = std::fs::read_dir(ROOT).map(|rd| rd.flatten().map(|e| e.path()).filter(|p| !p.is_symlink()).collect()).unwrap_or_default();
    roots.push(PathBuf::from(ROOT));
    let deadline = std::time::Instant::now() + EXIT_WAIT;
    for root in roots {
        let d = root.join(rel);
        if d.is_dir() {
            rmdir_tree(&d, deadline);
        }
    }
}

/// Removes `d` and the cgroups below it; a cgroup still busy (EBUSY) is
/// tried again every 10 ms until `deadline`.
fn rmdir_tree(d: &Path, deadline: std::time::Instant) {
    if let Ok(rd) = std::fs::read_dir(d) {
        for e in rd.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                rmdir_tree(&e.path(), deadline);
            }
        }
    }
    loop {
        match std::fs::remove_dir(d) {
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            Err(e) => {
                tracing::debug!(cgroup = %d.display(), "left: {e}");
                return;
            }
            Ok(()) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{is_guest_cgroup, is_stats_hierarchy};

    #[test]
    fn stats_hierarchies_are_memory_cpu_cpuacct_blkio() {
        for h in ["memory", "cpu,cpuacct", "cpuacct", "blkio"] {
            assert!(is_stats_hierarchy(h), "{h}");
        }
        for h in ["freezer", "pids", "devices", "cpuset", "net_cls,net_prio", "name=systemd", "", "hugetlb"] {
            assert!(!is_stats_hierarchy(h), "{h}");
        }
    }

    #[test]
    fn guest_cgroup_names() {
        assert!(is_guest_cgroup("lxc.payload.100", 100));
        assert!(is_guest_cgroup("lxc.payload.100-13", 100));
        assert!(is_guest_cgroup("lxc.monitor.100", 100));
        assert!(!is_guest_cgroup("lxc.payload.1000", 100));
        assert!(!is_guest_cgroup("lxc.payload.100-", 100));
        assert!(!is_guest_cgroup("lxc.payload.100-x", 100));
        assert!(!is_guest_cgroup("lxc.pivot", 100));
    }
}
