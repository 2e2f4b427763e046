//! Build-time settings of the `nexcage` binary:
//! - the git commit it was built from (`--version`): `NEXCAGE_COMMIT` from
//!   the environment if set (packagers), else `git rev-parse HEAD` plus
//!   `-dirty` when tracked files differ from it, only when the source tree is
//!   a git checkout (a tarball has no `.git`; `--version` then says `unknown`);
//! - link flags for the binary only (no effect on dependencies);
//! - nexcage-init (src/backend/proxmox/init/main.rs), the Proxmox backend's
//!   guest init, as a static binary that nexcage embeds: it runs inside guest
//!   rootfs that may have no C library at all. std only, so rustc alone
//!   builds it; glibc is linked statically (`+crt-static`). Its FNV-1a
//!   digest (`NEXCAGE_INIT_DIGEST`) names the copy guests share.

use std::path::{Path, PathBuf};
use std::process::Command;

fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let o = Command::new("git").arg("-C").arg(dir).args(args).output().ok()?;
    o.status.success().then(|| String::from_utf8_lossy(&o.stdout).trim().to_string())
}

/// Pack the binary's ~30k relative relocations as RELR (glibc >= 2.36,
/// binutils >= 2.38: Debian 12, Proxmox VE 8/9): the loader then reads a
/// few KiB instead of ~700 KiB of RELA entries at every start, which cut
/// the peak RSS and start-up time of each command (BENCHMARKS.md).
fn link_flags() {
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
}

fn stamp_commit() {
    println!("cargo:rerun-if-env-changed=NEXCAGE_COMMIT");
    if std::env::var_os("NEXCAGE_COMMIT").is_some() {
        return;
    }
    let dir = std::path::PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    if !dir.join(".git").exists() {
        return;
    }
    let Some(commit) = git(&dir, &["rev-parse", "HEAD"]) else { return };
    let dirty = git(&dir, &["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty());
    println!("cargo:rustc-env=NEXCAGE_COMMIT={commit}{}", if dirty { "-dirty" } else { "" });
    // Re-stamp on a new commit, a checkout, or an edit to a tracked file.
    for (rev, files) in [("--git-dir", &["HEAD", "index"][..]), ("--git-common-dir", &["refs/heads", "packed-refs"][..])] {
        if let Some(d) = git(&dir, &["rev-parse", rev]) {
            // A path that does not exist would re-run this on every build.
            for p in files.iter().map(|f| dir.join(&d).join(f)).filter(|p| p.exists()) {
                println!("cargo:rerun-if-changed={}", p.display());
            }
        }
    }
    for p in ["src", "crates", "Cargo.toml", "Cargo.lock", "build.rs"] {
        println!("cargo:rerun-if-changed={p}");
    }
}

fn build_guest_init() {
    let src = "src/backend/proxmox/init/main.rs";
    println!("cargo:rerun-if-changed={src}");
    println!("cargo:rerun-if-changed=build.rs");
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR")).join("nexcage-init");
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let target = std::env::var("TARGET").expect("TARGET");
    let status = Command::new(rustc)
        .args(["--edition=2021", "--crate-name=nexcage_init", "--crate-type=bin", "--target", &target])
        .args(["-C", "opt-level=s", "-C", "panic=abort", "-C", "strip=symbols", "-C", "target-feature=+crt-static"])
        .arg("-o")
        .arg(&out)
        .arg(src)
        .status()
        .expect("run rustc for nexcage-init");
    assert!(status.success(), "building nexcage-init failed");
    // Names the host's shared copy of this init (guest_init.rs `install`).
    let bytes = std::fs::read(&out).expect("read nexcage-init");
    let digest = bytes.iter().fold(0xcbf29ce484222325u64, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x100000001b3));
    println!("cargo:rustc-env=NEXCAGE_INIT_DIGEST={digest:016x}");
}

fn main() {
    link_flags();
    stamp_commit();
    build_guest_init();
}
