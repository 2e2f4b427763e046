//! nexcage-zfs: the ZFS side of the Proxmox backend, by wrapping the
//! `zfs`/`zpool` command-line tools (real OpenZFS and zfs-fuse alike).
//!
//! Naming follows Proxmox's `zfspool` storage so a guest's rootfs is where
//! Proxmox would look for it: `<parent>/subvol-<vmid>-disk-<n>`, linked-clone
//! bases `<parent>/basevol-<key>-disk-0@__base__` ([`subvol_name`],
//! [`basevol_name`], [`BASE_SNAPSHOT`]).
//!
//! Everything is blocking and stateless: a [`Zfs`] only knows which binaries
//! to run and how long to retry a busy dataset.

mod cmd;
mod copy;
mod error;
mod mount;
mod shift;

use std::path::PathBuf;
use std::time::Duration;

pub use copy::copy_tree;
pub use error::ZfsError;
pub use shift::shift_owners;

/// Snapshot name Proxmox uses for template bases.
pub const BASE_SNAPSHOT: &str = "__base__";

/// `<parent>/subvol-<vmid>-disk-<disk>`, Proxmox's container volume name.
pub fn subvol_name(parent: &str, vmid: u32, disk: u32) -> String {
    format!("{parent}/subvol-{vmid}-disk-{disk}")
}

/// `<parent>/basevol-<key>-disk-0`: a clone base (key: VMID or image key).
pub fn basevol_name(parent: &str, key: &str) -> String {
    format!("{parent}/basevol-{key}-disk-0")
}

/// The first pause after a destroy that found the dataset busy.
const FIRST_BUSY_PAUSE: Duration = Duration::from_millis(10);

/// Properties Proxmox sets on every subvol; real OpenZFS takes them,
/// zfs-fuse refuses them (so [`Zfs::create_subvol`] retries without).
const PROXMOX_PROPS: [&str; 2] = ["acltype=posixacl", "xattr=sa"];

/// A ZFS user property, `module:name` = value (zfsprops(7), "User
/// Properties": the name needs a colon, lowercase letters, digits and
/// `:-_.`, at most 256 bytes; the value at most 1024 bytes here, the
/// smallest limit among implementations (zfs-fuse), no newline).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UserProp<'a> {
    pub name: &'a str,
    pub value: &'a str,
}

fn check_user_prop_name(name: &str) -> Result<(), ZfsError> {
    let ok = name.contains(':')
        && name.len() <= 256
        && !name.starts_with(['-', ':'])
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || ":-_.".contains(c));
    if ok {
        Ok(())
    } else {
        Err(ZfsError::BadProperty(format!("{name:?} is not a user property name (module:name)")))
    }
}

/// `name=value` option words, each checked.
fn user_opts(user: &[UserProp<'_>]) -> Result<Vec<String>, ZfsError> {
    user.iter()
        .map(|p| {
            check_user_prop_name(p.name)?;
            if p.value.len() > 1024 || p.value.contains('\n') {
                return Err(ZfsError::BadProperty(format!("{}: value longer than 1024 bytes or with a newline", p.name)));
            }
            Ok(format!("{}={}", p.name, p.value))
        })
        .collect()
}

/// One row of [`Zfs::list`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dataset {
    pub name: String,
    /// `filesystem`, `snapshot` or `volume`.
    pub kind: String,
    pub used: u64,
    /// `None` for `none` (no quota) or `-`.
    pub refquota: Option<u64>,
    /// Origin snapshot of a clone.
    pub origin: Option<String>,
    pub mountpoint: Option<PathBuf>,
}

/// A pool's capacity, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolUsage {
    pub size: u64,
    pub allocated: u64,
    pub free: u64,
}

/// What [`Zfs::create_subvol`] or [`Zfs::clone_to`] could not apply (zfs-fuse).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Skipped(pub Vec<String>);

/// What [`Zfs::prepare_unmount`] found: not mounted, a zfs-fuse mount with
/// the daemon's fd of it, or a kernel ZFS mount.
#[derive(Debug)]
pub struct PreparedUnmount(Option<Result<mount::Release, mount::Mount>>);

impl PreparedUnmount {
    /// The kernel's unique id of the mount found ([`mount_id`]); None when
    /// none was found or the kernel gives no such id.
    pub fn mount_id(&self) -> Option<u64> {
        let m = match &self.0 {
            Some(Ok(r)) => r.mount(),
            Some(Err(m)) => m,
            None => return None,
        };
        mount::unique_id(&m.path)
    }
}

/// The kernel's unique id of the mount whose root is `path` (a dataset's
/// mountpoint), to recognise that very mount later (`statx(2)`,
/// `STATX_MNT_ID_UNIQUE`, Linux 6.8; see `mount::unique_id`). None when
/// `path` is no mount's root or the kernel gives no unique id.
pub fn mount_id(path: &std::path::Path) -> Option<u64> {
    mount::unique_id(path)
}

/// The zfs/zpool CLIs plus the busy-retry policy of Proxmox's ZFSPoolPlugin.
#[derive(Debug, Clone)]
pub struct Zfs {
    zfs: String,
    zpool: String,
    /// Attempts of a destroy that says "dataset is busy" (Proxmox: 6)
    /// times `busy_delay` is how long it is retried; the pauses start at
    /// 10 ms and double up to `busy_delay`.
    pub busy_attempts: u32,
    pub busy_delay: Duration,
    /// How long one zfs/zpool run may take (60 s: `cmd::TIMEOUT`).
    pub timeout: Duration,
}

impl Default for Zfs {
    fn default() -> Self {
        Zfs::new()
    }
}

impl Zfs {
    /// `zfs` and `zpool` from PATH.
    pub fn new() -> Self {
        Zfs::with_binaries("zfs", "zpool")
    }

    pub fn with_binaries(zfs: &str, zpool: &str) -> Self {
        Zfs {
            zfs: zfs.to_string(),
            zpool: zpool.to_string(),
            busy_attempts: 6,
            busy_delay: Duration::from_millis(500),
            timeout: cmd::TIMEOUT,
        }
    }

    fn zfs(&self, args: &[&str]) -> Result<String, ZfsError> {
        cmd::run(&self.zfs, args, self.timeout)
    }

    /// Whether a dataset or snapshot exists.
    pub fn exists(&self, name: &str) -> Result<bool, ZfsError> {
        cmd::check_name(name)?;
        match self.zfs(&["list", "-H", "-o", "name", "-t", "all", name]) {
            Ok(_) => Ok(true),
            Err(e) if e.is_not_found() => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// `zfs create` a Proxmox-style subvol with `refquota` (bytes; `None`
    /// = no quota). Proxmox's `acltype=posixacl xattr=sa` are tried first;
    /// when the implementation refuses them (zfs-fuse) the dataset is made
    /// without, a warning says so and the skipped properties are returned.
    pub fn create_subvol(&self, name: &str, refquota: Option<u64>) -> Result<Skipped, ZfsError> {
        self.create_subvol_with(name, refquota, &[])
    }

    /// [`Zfs::create_subvol`] with user properties set by the same `zfs
    /// create` (so the dataset never exists without them).
    /// Errors: [`ZfsError::BadProperty`] for an invalid user property.
    pub fn create_subvol_with(&self, name: &str, refquota: Option<u64>, user: &[UserProp<'_>]) -> Result<Skipped, ZfsError> {
        cmd::check_name(name)?;
        let quota = quota_opt(refquota);
        let user = user_opts(user)?;
        let mut args = vec!["create"];
        for p in PROXMOX_PROPS {
            args.extend(["-o", p]);
        }
        args.extend(user.iter().flat_map(|u| ["-o", u.as_str()]));
        args.extend(["-o", &quota, name]);
        match self.zfs(&args) {
            Ok(_) => Ok(Skipped::default()),
            Err(e) if e.is_already_exists() => Err(e),
            Err(e) => {
                // zfs-fuse: "invalid property 'acltype'" / "bad property value".
                // Expected there and handled: info (with --debug), not a
                // warning, which without --log would reach the container's
                // stderr through the engine's pipes.
                tracing::info!(
                    dataset = name,
                    "zfs refused Proxmox's properties ({e}); creating without {}",
                    PROXMOX_PROPS.join(" ")
                );
                // A partial create must not survive (it would make the retry fail).
                if self.exists(name)? {
                    self.destroy(name, false)?;
                }
                let mut args = vec!["create"];
                args.extend(user.iter().flat_map(|u| ["-o", u.as_str()]));
                args.extend(["-o", &quota, name]);
                self.zfs(&args)?;
                Ok(Skipped(PROXMOX_PROPS.iter().map(|s| s.to_string()).collect()))
            }
        }
    }

    /// The dataset's mountpoint, mounting it first if needed.
    /// Both properties come from one `zfs get` (each zfs call costs a
    /// process and, on zfs-fuse, a round trip to the daemon). Not read from
    /// mountinfo: with that shortcut, the first I/O on a filesystem zfs-fuse
    /// had just mounted came sooner, and 16 parallel creates wedged
    /// zfs-fuse (`cp -a` right after `zfs create`: once in
    /// tests/proxmox_ownership.rs `parallel_api`; a guest's start right
    /// after `zfs clone`: twice in 16 parallel clone `run`s, guests' FUSE
    /// requests never answered).
    pub fn mountpoint(&self, name: &str) -> Result<PathBuf, ZfsError> {
        cmd::check_name(name)?;
        let out = self.zfs(&["get", "-H", "-o", "property,value", "mounted,mountpoint", name])?;
        let value = |prop: &str| out.lines().filter_map(|l| l.split_once('\t')).find(|(p, _)| *p == prop).map(|(_, v)| v.trim_end().to_string());
        let mountpoint = value("mountpoint").ok_or_else(|| ZfsError::Failed {
            cmd: format!("{} get mounted,mountpoint {name}", self.zfs),
            code: 0,
            stderr: format!("no mountpoint in {out:?}"),
        })?;
        if value("mounted").as_deref() != Some("yes") {
            self.mount(name)?;
        }
        Ok(PathBuf::from(mountpoint))
    }

    /// One property's value (`zfs get -H -o value`).
    pub fn get(&self, name: &str, prop: &str) -> Result<String, ZfsError> {
        cmd::check_name(name)?;
        Ok(self.zfs(&["get", "-H", "-o", "value", prop, name])?.trim().to_string())
    }

    /// `zfs set prop=value name`.
    pub fn set(&self, name: &str, prop: &str, value: &str) -> Result<(), ZfsError> {
        cmd::check_name(name)?;
        self.zfs(&["set", &format!("{prop}={value}"), name]).map(|_| ())
    }

    /// `zfs snapshot name@snap` (`snap` is the full `dataset@name`).
    pub fn snapshot(&self, snap: &str) -> Result<(), ZfsError> {
        cmd::check_name(snap)?;
        if !snap.contains('@') {
            return Err(ZfsError::BadName(snap.to_string()));
        }
        self.zfs(&["snapshot", snap]).map(|_| ())
    }

    /// `zfs rollback [-r] dataset@snap`; `destroy_newer` destroys later snapshots.
    pub fn rollback(&self, snap: &str, destroy_newer: bool) -> Result<(), ZfsError> {
        cmd::check_name(snap)?;
        let mut args = vec!["rollback"];
        if destroy_newer {
            args.push("-r");
        }
        args.push(snap);
        self.zfs(&args).map(|_| ())
    }

    /// A linked clone: `zfs clone -o refquota=… snap target` (O(1) in the
    /// size of the snapshot).
    pub fn clone_to(&self, snap: &str, target: &str, refquota: Option<u64>) -> Result<(), ZfsError> {
        self.clone_with(snap, target, refquota, &[])
    }

    /// [`Zfs::clone_to`] with user properties set by the same `zfs clone`.
    /// Errors: [`ZfsError::BadProperty`] for an invalid user property.
    pub fn clone_with(&self, snap: &str, target: &str, refquota: Option<u64>, user: &[UserProp<'_>]) -> Result<(), ZfsError> {
        cmd::check_name(snap)?;
        cmd::check_name(target)?;
        let quota = quota_opt(refquota);
        let user = user_opts(user)?;
        let mut args = vec!["clone"];
        args.extend(user.iter().flat_map(|u| ["-o", u.as_str()]));
        args.extend(["-o", &quota, snap, target]);
        self.zfs(&args).map(|_| ())
    }

    /// `zfs set module:name=value name` for a user property.
    /// Errors: [`ZfsError::BadProperty`], or zfs's own (e.g. not found).
    pub fn set_user_prop(&self, name: &str, prop: &UserProp<'_>) -> Result<(), ZfsError> {
        cmd::check_name(name)?;
        let o = user_opts(std::slice::from_ref(prop))?;
        self.zfs(&["set", &o[0], name]).map(|_| ())
    }

    /// A user property's value; `None` when the dataset does not carry it
    /// (zfs prints `-`). Errors: [`ZfsError::BadProperty`], or zfs's own
    /// (`is_not_found()` for a missing dataset).
    pub fn get_user_prop(&self, name: &str, prop: &str) -> Result<Option<String>, ZfsError> {
        check_user_prop_name(prop)?;
        // Locally set only: a clone or child must not inherit its parent's owner.
        cmd::check_name(name)?;
        let out = self.zfs(&["get", "-H", "-s", "local", "-o", "value", prop, name])?;
        let v = out.trim_end_matches('\n');
        Ok((!v.is_empty() && v != "-").then(|| v.to_string()))
    }

    /// `zfs destroy [-r]`, retried while the dataset is busy (unmounting
    /// between attempts, as zfs-fuse often needs); a dataset that does not
    /// exist counts as destroyed. A mounted filesystem is unmounted first:
    /// zfs-fuse refuses to destroy it while mounted ("dataset is busy"), and
    /// that failed attempt cost one zfs call per delete (benches/proxmox_cycle.py).
    /// See [`Zfs::unmount_for_destroy`].
    pub fn destroy(&self, name: &str, recursive: bool) -> Result<(), ZfsError> {
        cmd::check_name(name)?;
        let fs = !name.contains('@');
        if fs {
            self.unmount_for_destroy(name);
        }
        let mut args = vec!["destroy"];
        if recursive {
            args.push("-r");
        }
        args.push(name);
        // zfs-fuse lets go of an unmounted filesystem asynchronously (a few
        // ms after the unmount, longer under load): short pauses first,
        // doubling up to `busy_delay`, within the budget Proxmox allows
        // (`busy_attempts` tries `busy_delay` apart).
        let budget = self.busy_delay * self.busy_attempts.saturating_sub(1);
        let (mut pause, mut waited, mut attempt) = (FIRST_BUSY_PAUSE.min(self.busy_delay), Duration::ZERO, 0);
        loop {
            attempt += 1;
            match self.zfs(&args) {
                Ok(_) => return Ok(()),
                Err(e) if e.is_not_found() => return Ok(()),
                Err(e) if e.is_busy() && waited < budget => {
                    tracing::debug!(dataset = name, attempt, "busy, retrying destroy");
                    if fs {
                        self.unmount_for_destroy(name);
                    }
                    std::thread::sleep(pause);
                    waited += pause;
                    pause = (pause * 2).min(self.busy_delay);
                }
                Err(e) if e.is_busy() => {
                    return Err(ZfsError::Busy { cmd: format!("{} {}", self.zfs, args.join(" ")), attempts: attempt, stderr: e.to_string() });
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Unmounts `name` before a destroy, per the kernel's mount table: not
    /// mounted here, nothing to do (no zfs call); served by zfs-fuse, a lazy
    /// `umount2` (what zfs-fuse's `zfs unmount -f` does, through `umount
    /// -l`, after a `zfs` process and a daemon round trip: 10-25 ms), then
    /// a wait for the daemon to let go of it (`mount::Release::detach`); by
    /// kernel ZFS, `zfs unmount -f`. Failures are left to the destroy
    /// (which says "busy" and is retried). True when it was mounted (a
    /// caller whose destroy does not come puts it back with [`Zfs::mount`]).
    /// [`Zfs::destroy`] calls it itself; a caller may call it earlier, so
    /// that the daemon lets go while it does something else.
    pub fn unmount_for_destroy(&self, name: &str) -> bool {
        self.unmount_found(name, Zfs::prepare_unmount(name))
    }

    /// The lookups of [`Zfs::unmount_for_destroy`] (mount table, the
    /// zfs-fuse daemon's fd of the mount), done ahead: a caller that must
    /// wait for something before it unmounts does them meanwhile, and
    /// [`Zfs::unmount_prepared`] is left with the unmount and the wait.
    pub fn prepare_unmount(name: &str) -> PreparedUnmount {
        PreparedUnmount(mount::find(name).map(|m| if m.fuse { Ok(mount::Release::find(m)) } else { Err(m) }))
    }

    /// [`Zfs::unmount_for_destroy`] of `name` with its lookups `prepared`
    /// (looked up again when the mount table has changed since).
    pub fn unmount_prepared(&self, name: &str, prepared: PreparedUnmount) -> bool {
        let now = mount::find(name);
        let prepared = match &prepared.0 {
            Some(Ok(r)) if now.as_ref() == Some(r.mount()) => prepared,
            Some(Err(m)) if now.as_ref() == Some(m) => prepared,
            None if now.is_none() => prepared,
            _ => Zfs::prepare_unmount(name),
        };
        self.unmount_found(name, prepared)
    }

    /// The unmount and the wait of [`Zfs::unmount_for_destroy`], with the
    /// lookups `found` current.
    fn unmount_found(&self, name: &str, found: PreparedUnmount) -> bool {
        match found.0 {
            None => return false,
            Some(Ok(r)) if r.detach().is_ok() => {}
            Some(_) => {
                let _ = self.zfs(&["unmount", "-f", name]);
            }
        }
        true
    }

    /// `zfs mount name`: mounts a filesystem at its mountpoint.
    pub fn mount(&self, name: &str) -> Result<(), ZfsError> {
        cmd::check_name(name)?;
        self.zfs(&["mount", name]).map(|_| ())
    }

    /// Datasets (filesystems and snapshots) under `parent`, `parent` itself
    /// included, recursively.
    pub fn list(&self, parent: &str) -> Result<Vec<Dataset>, ZfsError> {
        cmd::check_name(parent)?;
        let cols = ["-r", "-t", "filesystem,snapshot", "-o", "name,type,used,refquota,origin,mountpoint", parent];
        // zfs-fuse's zfs has no -p: human-readable sizes are parsed too.
        let out = self.zfs(&[&["list", "-H", "-p"][..], &cols[..]].concat())
            .or_else(|_| self.zfs(&[&["list", "-H"][..], &cols[..]].concat()))?;
        Ok(out.lines().filter_map(parse_list_line).collect())
    }

    /// `zpool list -H -o health`: `ONLINE`, `DEGRADED`, ...
    pub fn pool_health(&self, pool: &str) -> Result<String, ZfsError> {
        cmd::check_name(pool)?;
        Ok(cmd::run(&self.zpool, &["list", "-H", "-o", "health", pool], self.timeout)?.trim().to_string())
    }

    /// Size, allocated and free bytes of a pool.
    pub fn pool_usage(&self, pool: &str) -> Result<PoolUsage, ZfsError> {
        cmd::check_name(pool)?;
        // zfs-fuse's zpool has no -p: parse human-readable sizes as well.
        let out = cmd::run(&self.zpool, &["list", "-H", "-o", "size,allocated,free", pool], self.timeout)
            .or_else(|_| cmd::run(&self.zpool, &["list", "-H", "-o", "size,alloc,free", pool], self.timeout))?;
        let f: Vec<u64> = out.split_whitespace().filter_map(parse_size).collect();
        match f.as_slice() {
            [size, allocated, free] => Ok(PoolUsage { size: *size, allocated: *allocated, free: *free }),
            _ => Err(ZfsError::Failed { cmd: format!("{} list {pool}", self.zpool), code: 0, stderr: format!("unexpected output {out:?}") }),
        }
    }
}

fn quota_opt(refquota: Option<u64>) -> String {
    match refquota {
        Some(b) if b > 0 => format!("refquota={b}"),
        _ => "refquota=none".to_string(),
    }
}

fn parse_list_line(l: &str) -> Option<Dataset> {
    let f: Vec<&str> = l.split('\t').collect();
    if f.len() < 6 {
        return None;
    }
    let opt = |s: &str| (s != "-" && s != "none" && !s.is_empty()).then(|| s.to_string());
    Some(Dataset {
        name: f[0].to_string(),
        kind: f[1].to_string(),
        used: parse_size(f[2]).unwrap_or(0),
        refquota: opt(f[3]).and_then(|s| parse_size(&s)).filter(|&q| q > 0),
        origin: opt(f[4]),
        mountpoint: opt(f[5]).filter(|m| m.starts_with('/')).map(PathBuf::from),
    })
}

/// `123`, `1.5K`, `20M`, `1G` (zfs's binary units) to bytes.
pub fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let (num, mult) = match s.chars().last()? {
        'K' => (&s[..s.len() - 1], 1u64 << 10),
        'M' => (&s[..s.len() - 1], 1 << 20),
        'G' => (&s[..s.len() - 1], 1 << 30),
        'T' => (&s[..s.len() - 1], 1 << 40),
        'P' => (&s[..s.len() - 1], 1 << 50),
        _ => (s, 1),
    };
    let v: f64 = num.parse().ok()?;
    Some((v * mult as f64) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_like_proxmox() {
        assert_eq!(subvol_name("tank/data", 100, 0), "tank/data/subvol-100-disk-0");
        assert_eq!(basevol_name("tank", "abc"), "tank/basevol-abc-disk-0");
    }

    #[test]
    fn sizes_and_rows() {
        assert_eq!(parse_size("1.5K"), Some(1536));
        assert_eq!(parse_size("64M"), Some(64 << 20));
        assert_eq!(parse_size("-"), None);
        let d = parse_list_line("p/subvol-1-disk-0\tfilesystem\t1024\t8589934592\t-\t/p/subvol-1-disk-0").unwrap();
        assert_eq!(d.refquota, Some(8 << 30));
        assert_eq!(d.origin, None);
        assert_eq!(d.mountpoint, Some(PathBuf::from("/p/subvol-1-disk-0")));
    }

    #[test]
    fn refuses_option_like_names() {
        assert!(cmd::check_name("-r").is_err());
        assert!(cmd::check_name("/abs").is_err());
        assert!(cmd::check_name("a b").is_err());
        assert!(cmd::check_name("tank/subvol-1-disk-0@__base__").is_ok());
    }

    #[test]
    fn user_properties_need_a_module() {
        assert!(check_user_prop_name("org.nexcage:owner").is_ok());
        for bad in ["owner", "Org:x", ":x", "-a:b", "a:b c"] {
            assert!(matches!(check_user_prop_name(bad), Err(ZfsError::BadProperty(_))), "{bad}");
        }
        let ok = UserProp { name: "a:b", value: "{\"id\":\"x\"}" };
        assert_eq!(user_opts(&[ok]).unwrap(), vec!["a:b={\"id\":\"x\"}".to_string()]);
        assert!(user_opts(&[UserProp { name: "a:b", value: "x\ny" }]).is_err());
    }
}
