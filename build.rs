//! Builds nexcage-init (src/backend/proxmox/init/main.rs), the Proxmox
//! backend's guest init, as a static binary that nexcage embeds: it runs
//! inside guest rootfs that may have no C library at all. std only, so
//! rustc alone builds it; glibc is linked statically (`+crt-static`).

use std::path::PathBuf;
use std::process::Command;

fn main() {
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
    // The Proxmox backend's monitor drives liblxc (src/backend/proxmox/liblxc.rs).
    println!("cargo:rustc-link-lib=dylib=lxc");
}
