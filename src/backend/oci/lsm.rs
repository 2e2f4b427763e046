//! Linux security modules a bundle asks for: `process.apparmorProfile`
//! and `process.selinuxLabel` (and `linux.mountLabel`). A label the host
//! cannot apply is refused before anything is made, as runc refuses it,
//! never dropped: a container that asked for confinement must not run
//! without it (both backends; LXC's "nop" security driver would ignore
//! the profile silently).

use anyhow::{bail, Result};
use libcontainer::oci_spec::runtime::Spec;

/// AppArmor is enabled when securityfs shows it and the module says `Y`
/// (runc's `apparmor.IsEnabled`).
pub fn apparmor_enabled() -> bool {
    std::path::Path::new("/sys/kernel/security/apparmor").exists()
        && std::fs::read("/sys/module/apparmor/parameters/enabled").is_ok_and(|b| b.first() == Some(&b'Y'))
}

/// SELinux is enabled when selinuxfs is mounted at its place
/// (`/sys/fs/selinux/enforce` exists; go-selinux's `GetEnabled`).
pub fn selinux_enabled() -> bool {
    std::path::Path::new("/sys/fs/selinux/enforce").exists()
}

/// The spec's AppArmor profile, if it names one.
pub fn apparmor_profile(spec: &Spec) -> Option<&str> {
    spec.process().as_ref().and_then(|p| p.apparmor_profile().as_deref()).filter(|p| !p.is_empty())
}

/// Refuses a spec whose AppArmor profile or SELinux label this host
/// cannot apply. Errors: "apparmor profile P is specified but AppArmor is
/// not enabled on this host" (runc fails at its init: "unable to apply
/// apparmor profile"); "selinux label is specified in config, but selinux
/// is disabled or not supported" (runc's validator, word for word).
pub fn check(spec: &Spec) -> Result<()> {
    if let Some(p) = apparmor_profile(spec).filter(|_| !apparmor_enabled()) {
        bail!("unable to apply apparmor profile: apparmor profile {p} is specified but AppArmor is not enabled on this host");
    }
    let label = spec.process().as_ref().and_then(|p| p.selinux_label().as_deref()).filter(|l| !l.is_empty());
    let mount_label = spec.linux().as_ref().and_then(|l| l.mount_label().as_deref()).filter(|l| !l.is_empty());
    if (label.is_some() || mount_label.is_some()) && !selinux_enabled() {
        bail!("selinux label is specified in config, but selinux is disabled or not supported");
    }
    Ok(())
}

/// Makes the next execve run under AppArmor profile `profile` (runc's
/// `apparmor.ApplyProfile`: `exec <profile>` written to the process's
/// exec attribute). Errors: the host has no AppArmor, or refuses the
/// profile (e.g. not loaded).
pub fn apply_apparmor(profile: &str) -> Result<()> {
    use anyhow::Context;
    let attr = ["/proc/thread-self/attr/apparmor/exec", "/proc/thread-self/attr/exec"].into_iter().find(|p| std::path::Path::new(p).exists()).unwrap_or("/proc/thread-self/attr/exec");
    std::fs::write(attr, format!("exec {profile}")).with_context(|| format!("unable to apply apparmor profile {profile}: write {attr}"))
}
