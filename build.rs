//! Link flags for the `nexcage` binary only (no effect on dependencies).

fn main() {
    // Pack the binary's ~30k relative relocations as RELR (glibc >= 2.36,
    // binutils >= 2.38: Debian 12, Proxmox VE 8/9): the loader then reads a
    // few KiB instead of ~700 KiB of RELA entries at every start, which cut
    // the peak RSS and start-up time of each command (BENCHMARKS.md).
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
