//! Build-time settings of the `nexcage` binary:
//! - the git commit it was built from (`--version`): `NEXCAGE_COMMIT` from
//!   the environment if set (packagers), else `git rev-parse HEAD` plus
//!   `-dirty` when tracked files differ from it, only when the source tree is
//!   a git checkout (a tarball has no `.git`; `--version` then says `unknown`);
//! - link flags for the binary only (no effect on dependencies).

use std::path::Path;
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

fn main() {
    link_flags();
    stamp_commit();
}
