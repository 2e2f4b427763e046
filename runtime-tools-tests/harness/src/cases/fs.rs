//! Filesystem: root.readonly, mounts (bind, tmpfs options, ordering,
//! creation of destinations), maskedPaths, readonlyPaths,
//! rootfsPropagation, default devices and /dev links, linux.devices,
//! hostname/domainname (config.md "Root", "Mounts", "Hostname";
//! config-linux.md "Devices", "Masked/Readonly Paths", runtime-linux.md).

use super::*;
use crate::suite::{case, Case};
use anyhow::{bail, Context};
use serde_json::json;
use std::ffi::CString;
use std::path::{Path, PathBuf};

pub fn cases() -> Vec<Case> {
    vec![
        case("fs.root.readonly", "root.readonly: / is read-only, tmpfs mounts on it stay writable", root_readonly),
        case("fs.root.readwrite", "root.readonly false: / is writable", root_readwrite),
        case("fs.mounts.standard", "the default mounts have their types (/proc, /sys ro, /dev, pts, shm, mqueue)", mounts_standard),
        case("fs.mounts.bind", "bind mount of a host dir, both directions", bind),
        case("fs.mounts.bind_readonly", "bind mount with ro is read-only", bind_readonly),
        case("fs.mounts.bind_file", "bind mount of a single file onto a path that does not exist yet", bind_file),
        case("fs.mounts.bind_relative_source", "a relative bind source is relative to the bundle", bind_relative),
        case("fs.mounts.tmpfs_options", "tmpfs flags and data options (nosuid,nodev,noexec,size,mode)", tmpfs_options),
        case("fs.mounts.ordering", "mounts are made in config order (nested mounts on top of earlier ones)", ordering),
        case("fs.mounts.dest_created", "a missing mount destination is created", dest_created),
        case("fs.masked_paths", "maskedPaths: files read empty, directories list empty", masked_paths),
        case("fs.readonly_paths", "readonlyPaths are read-only but readable", readonly_paths),
        case("fs.rootfs_propagation.private", "rootfsPropagation private: / is neither shared nor slave", |c| propagation(c, "private")),
        case("fs.rootfs_propagation.slave", "rootfsPropagation slave: / receives from its (shared) source", |c| propagation(c, "slave")),
        case("fs.rootfs_propagation.shared", "rootfsPropagation shared: / is shared", |c| propagation(c, "shared")),
        case("fs.dev.default_devices", "default devices exist with the right numbers and open", default_devices),
        case("fs.dev.no_host_devices", "host device nodes (disks, /dev/mem, /dev/kmsg) are not in the container's /dev", no_host_devices),
        case("fs.dev.fd_links", "/dev/fd, /dev/stdin, /dev/stdout, /dev/stderr links", fd_links),
        case("fs.dev.linux_devices", "linux.devices creates the node with type, numbers, mode, owner", linux_devices),
        case("fs.uts.hostname", "hostname is set in the new UTS namespace", hostname),
        case("fs.uts.hostname_too_long", "a hostname longer than 64 bytes (HOST_NAME_MAX) is refused with a message, the container never runs", hostname_too_long),
        case("fs.uts.domainname", "domainname is set in the new UTS namespace", domainname),
    ]
}

fn hostname_too_long(ctx: &mut Ctx) -> Result<()> {
    let mut b = ctx.bundle()?;
    b.set("/hostname", json!("h".repeat(65)));
    super::expect_refused(ctx, &b, "a 65-byte hostname")?;
    Ok(())
}

fn root_readonly(ctx: &mut Ctx) -> Result<()> {
    let mut b = ctx.bundle()?;
    b.set("/root/readonly", json!(true));
    b.checks(&["ro=/", "ro=/bin", "ro=/etc/marker", "rw=/tmp", "rw=/dev/shm", "file=/etc/marker:rootfs"]);
    ctx.expect_checks(&b)?;
    Ok(())
}

fn root_readwrite(ctx: &mut Ctx) -> Result<()> {
    let mut b = ctx.bundle()?;
    b.set("/root/readonly", json!(false));
    b.checks(&["rw=/", "rw=/etc", "action.write=/etc/new:x", "file=/etc/new:x"]);
    ctx.expect_checks(&b)?;
    ensure_file(&b.rootfs.join("etc/new"), "x")?;
    Ok(())
}

fn ensure_file(p: &Path, want: &str) -> Result<()> {
    let got = std::fs::read_to_string(p).with_context(|| format!("read {}", p.display()))?;
    if got.trim() != want {
        bail!("{} holds {got:?}, want {want:?}", p.display());
    }
    Ok(())
}

fn mounts_standard(ctx: &mut Ctx) -> Result<()> {
    let mut b = ctx.bundle()?;
    b.checks(&[
        "mount=/proc:proc",
        "mount=/sys:sysfs:ro,nosuid,nodev,noexec",
        "mount=/dev:tmpfs:nosuid,mode=755",
        "mount=/dev/pts:devpts:nosuid,noexec",
        "mount=/dev/shm:tmpfs:nosuid,nodev,noexec",
        "mount=/dev/mqueue:mqueue",
    ]);
    ctx.expect_checks(&b)?;
    Ok(())
}

fn bind(ctx: &mut Ctx) -> Result<()> {
    let mut b = ctx.bundle()?;
    let src = b.host_dir("bindsrc")?;
    std::fs::write(src.join("from-host"), "host")?;
    b.mount(json!({"destination": "/mnt/b", "type": "bind", "source": src, "options": ["rbind", "rw"]}));
    b.checks(&["file=/mnt/b/from-host:host", "action.write=/mnt/b/from-container:container", "mount=/mnt/b::rw"]);
    ctx.expect_checks(&b)?;
    ensure_file(&src.join("from-container"), "container")
}

fn bind_readonly(ctx: &mut Ctx) -> Result<()> {
    let mut b = ctx.bundle()?;
    let src = b.host_dir("bindsrc")?;
    std::fs::write(src.join("f"), "host")?;
    b.mount(json!({"destination": "/mnt/ro", "type": "bind", "source": src, "options": ["rbind", "ro"]}));
    b.checks(&["file=/mnt/ro/f:host", "ro=/mnt/ro", "ro=/mnt/ro/f", "mount=/mnt/ro::ro"]);
    ctx.expect_checks(&b)?;
    Ok(())
}

fn bind_file(ctx: &mut Ctx) -> Result<()> {
    let mut b = ctx.bundle()?;
    let f = b.dir.join("hostfile.txt");
    std::fs::write(&f, "host-file")?;
    b.mount(json!({"destination": "/etc/hostfile", "type": "bind", "source": f, "options": ["bind", "ro"]}));
    b.checks(&["file=/etc/hostfile:host-file", "ro=/etc/hostfile"]);
    ctx.expect_checks(&b)?;
    Ok(())
}

fn bind_relative(ctx: &mut Ctx) -> Result<()> {
    let mut b = ctx.bundle()?;
    let src = b.host_dir("relsrc")?;
    std::fs::write(src.join("f"), "relative")?;
    b.mount(json!({"destination": "/mnt/rel", "type": "bind", "source": "relsrc", "options": ["rbind", "ro"]}));
    b.checks(&["file=/mnt/rel/f:relative"]);
    ctx.expect_checks(&b)?;
    Ok(())
}

fn tmpfs_options(ctx: &mut Ctx) -> Result<()> {
    let mut b = ctx.bundle()?;
    b.mount(json!({"destination": "/mnt/t", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev", "noexec", "size=1m", "mode=1770"]}));
    b.checks(&["mount=/mnt/t:tmpfs:nosuid,nodev,noexec,size=1024k,mode=1770", "rw=/mnt/t"]);
    ctx.expect_checks(&b)?;
    Ok(())
}

fn ordering(ctx: &mut Ctx) -> Result<()> {
    let mut b = ctx.bundle()?;
    let src = b.host_dir("bindsrc")?;
    std::fs::write(src.join("f"), "inner")?;
    b.mount(json!({"destination": "/mnt/a", "type": "tmpfs", "source": "tmpfs", "options": ["size=1m"]}));
    b.mount(json!({"destination": "/mnt/a/b", "type": "tmpfs", "source": "tmpfs", "options": ["size=2m"]}));
    b.mount(json!({"destination": "/mnt/a/b/c", "type": "bind", "source": src, "options": ["rbind", "ro"]}));
    b.checks(&[
        "mount.order=/mnt/a,/mnt/a/b,/mnt/a/b/c",
        "mount=/mnt/a:tmpfs:size=1024k",
        "mount=/mnt/a/b:tmpfs:size=2048k",
        "file=/mnt/a/b/c/f:inner",
    ]);
    ctx.expect_checks(&b)?;
    Ok(())
}

fn dest_created(ctx: &mut Ctx) -> Result<()> {
    let mut b = ctx.bundle()?;
    b.mount(json!({"destination": "/new/deep/dir", "type": "tmpfs", "source": "tmpfs", "options": ["size=1m"]}));
    b.checks(&["mount=/new/deep/dir:tmpfs", "rw=/new/deep/dir"]);
    ctx.expect_checks(&b)?;
    Ok(())
}

fn masked_paths(ctx: &mut Ctx) -> Result<()> {
    let mut b = ctx.bundle()?;
    std::fs::write(b.rootfs.join("home/user/secret"), "secret")?;
    std::fs::write(b.rootfs.join("etc/secret"), "secret")?;
    b.push("/linux/maskedPaths", json!("/home"));
    b.push("/linux/maskedPaths", json!("/etc/secret"));
    b.checks(&[
        "masked=/proc/kcore",
        "masked=/proc/keys",
        "masked=/proc/timer_list",
        "masked=/sys/firmware",
        "masked=/home",
        "masked=/etc/secret",
        "file=/etc/marker:rootfs",
    ]);
    ctx.expect_checks(&b)?;
    Ok(())
}

fn readonly_paths(ctx: &mut Ctx) -> Result<()> {
    let mut b = ctx.bundle()?;
    b.push("/linux/readonlyPaths", json!("/etc"));
    b.checks(&["ro=/proc/sys/kernel/hostname", "ro=/etc", "ro=/etc/marker", "file=/etc/marker:rootfs", "rw=/tmp", "filehas=/proc/sys/kernel/ostype:Linux"]);
    ctx.expect_checks(&b)?;
    Ok(())
}

/// Bind-mounts a directory onto itself and makes it shared, so that
/// propagation modes are observable; unmounted on drop.
struct SharedMount(PathBuf);

impl SharedMount {
    fn new(p: &Path) -> Result<SharedMount> {
        let c = CString::new(p.as_os_str().as_encoded_bytes()).context("path with NUL")?;
        // SAFETY: valid C strings; null fstype/data are allowed for MS_BIND and MS_SHARED.
        unsafe {
            if libc::mount(c.as_ptr(), c.as_ptr(), std::ptr::null(), libc::MS_BIND | libc::MS_REC, std::ptr::null()) != 0 {
                bail!("bind {}: {}", p.display(), std::io::Error::last_os_error());
            }
            let m = SharedMount(p.to_path_buf());
            if libc::mount(std::ptr::null(), c.as_ptr(), std::ptr::null(), libc::MS_SHARED, std::ptr::null()) != 0 {
                bail!("make-shared {}: {}", p.display(), std::io::Error::last_os_error());
            }
            Ok(m)
        }
    }
}

impl Drop for SharedMount {
    fn drop(&mut self) {
        if let Ok(c) = CString::new(self.0.as_os_str().as_encoded_bytes()) {
            // SAFETY: valid C string; MNT_DETACH cannot touch other memory.
            unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
        }
    }
}

fn propagation(ctx: &mut Ctx, mode: &str) -> Result<()> {
    let mut b = ctx.bundle()?;
    b.set("/linux/rootfsPropagation", json!(mode));
    b.checks(&[&format!("mount.propagation=/:{mode}")]);
    let _shared = SharedMount::new(&b.dir)?;
    ctx.expect_checks(&b)?;
    Ok(())
}

fn default_devices(ctx: &mut Ctx) -> Result<()> {
    let mut b = ctx.bundle()?;
    b.checks(&[
        "chardev=/dev/null:1:3",
        "chardev=/dev/zero:1:5",
        "chardev=/dev/full:1:7",
        "chardev=/dev/random:1:8",
        "chardev=/dev/urandom:1:9",
        "chardev=/dev/tty:5:0",
        "exists=/dev/ptmx",
        "open=/dev/null:rw:OK",
        "open=/dev/zero:r:OK",
        "open=/dev/full:w:OK",
        "open=/dev/urandom:r:OK",
        "open=/dev/ptmx:rw:OK",
    ]);
    ctx.expect_checks(&b)?;
    Ok(())
}

fn no_host_devices(ctx: &mut Ctx) -> Result<()> {
    let mut b = ctx.bundle()?;
    let mut checks: Vec<String> = vec!["absent=/dev/mem".into(), "absent=/dev/kmsg".into(), "absent=/dev/port".into()];
    // whatever block devices the host has must not show up
    for e in std::fs::read_dir("/sys/block").map(|rd| rd.flatten().collect::<Vec<_>>()).unwrap_or_default() {
        checks.push(format!("absent=/dev/{}", e.file_name().to_string_lossy()));
    }
    let refs: Vec<&str> = checks.iter().map(|s| s.as_str()).collect();
    b.checks(&refs);
    ctx.expect_checks(&b)?;
    Ok(())
}

fn fd_links(ctx: &mut Ctx) -> Result<()> {
    let mut b = ctx.bundle()?;
    b.checks(&[
        "symlink=/dev/fd:/proc/self/fd",
        "symlink=/dev/stdin:/proc/self/fd/0",
        "symlink=/dev/stdout:/proc/self/fd/1",
        "symlink=/dev/stderr:/proc/self/fd/2",
    ]);
    ctx.expect_checks(&b)?;
    Ok(())
}

fn linux_devices(ctx: &mut Ctx) -> Result<()> {
    let mut b = ctx.bundle()?;
    b.push("/linux/devices", json!({"path": "/dev/rtt-null", "type": "c", "major": 1, "minor": 3, "fileMode": 0o666, "uid": 1000, "gid": 1001}));
    b.push("/linux/resources/devices", json!({"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"}));
    b.checks(&["chardev=/dev/rtt-null:1:3:0666:1000:1001", "open=/dev/rtt-null:rw:OK"]);
    ctx.expect_checks(&b)?;
    Ok(())
}

fn hostname(ctx: &mut Ctx) -> Result<()> {
    let mut b = ctx.bundle()?;
    b.set("/hostname", json!("rtt-host-name"));
    b.checks(&["hostname=rtt-host-name"]);
    let host_before = crate::sys::read_trim("/proc/sys/kernel/hostname")?;
    ctx.expect_checks(&b)?;
    let host_after = crate::sys::read_trim("/proc/sys/kernel/hostname")?;
    if host_before != host_after {
        bail!("the host's hostname changed from {host_before} to {host_after}");
    }
    Ok(())
}

fn domainname(ctx: &mut Ctx) -> Result<()> {
    let mut b = ctx.bundle()?;
    b.set("/domainname", json!("rtt.example"));
    b.checks(&["domainname=rtt.example"]);
    ctx.expect_checks(&b)?;
    Ok(())
}
