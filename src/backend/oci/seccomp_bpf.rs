//! `linux.seccomp` compiled to a classic BPF program with libseccomp (the
//! library runc and libcontainer load profiles with), for an init that
//! loads it itself with `seccomp(2)`/`prctl(PR_SET_SECCOMP)` and no
//! library: the Proxmox backend's nexcage-init.
//!
//! The translation is runc's: an action's `errnoRet` (else the profile's
//! `defaultErrnoRet`, else EPERM) for ERRNO and TRACE; SCMP_ACT_KILL kills
//! the thread; a rule with the default action is redundant and skipped; a
//! syscall name libseccomp does not know is skipped with a warning;
//! several comparisons of one argument become one rule each; for
//! SCMP_CMP_MASKED_EQ `value` is the mask and `valueTwo` the datum. The
//! filter does not set no_new_privs itself (the spec's noNewPrivileges
//! decides). Filter flags: `SECCOMP_FILTER_FLAG_LOG` and `SPEC_ALLOW`
//! are passed to seccomp(2), `TSYNC` is ignored (a single-threaded init;
//! runc ignores it too, libseccomp always synchronises), and
//! `WAIT_KILLABLE_RECV` is dropped from a profile without a notify
//! listener ([`loadable`], for both backends). Refused: SCMP_ACT_NOTIFY (its fd has
//! nowhere to go).

use std::collections::HashSet;
use std::io::{Read, Seek};

use anyhow::{bail, Context, Result};
use libcontainer::oci_spec::runtime::{LinuxSeccomp, LinuxSeccompAction, LinuxSeccompFilterFlag, LinuxSeccompOperator};
use libseccomp::{ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall};

/// The profile as BPF: an array of `struct sock_filter` (8 bytes each, host
/// byte order), as `seccomp_export_bpf(3)` writes it.
///
/// Errors: an action or architecture libseccomp refuses, a notify action,
/// or libseccomp failing to build or export the filter.
pub fn compile(s: &LinuxSeccomp) -> Result<Vec<u8>> {
    let default_errno = s.default_errno_ret();
    let default = action(s.default_action(), default_errno)?;
    let mut ctx = ScmpFilterContext::new(default).context("seccomp: cannot create a filter")?;
    ctx.set_ctl_nnp(false).context("seccomp: cannot clear the filter's no_new_privs attribute")?;
    for a in s.architectures().iter().flatten() {
        let name = serde_json::to_value(a)?.as_str().unwrap_or_default().to_string();
        let arch: ScmpArch = name.parse().with_context(|| format!("seccomp: unknown architecture {name}"))?;
        ctx.add_arch(arch).with_context(|| format!("seccomp: cannot add architecture {name}"))?;
    }
    for rule in s.syscalls().iter().flatten() {
        let act = action(rule.action(), rule.errno_ret().or(default_errno))?;
        if act == default {
            continue;
        }
        let conds: Vec<ScmpArgCompare> = rule
            .args()
            .iter()
            .flatten()
            .map(|a| match a.op() {
                LinuxSeccompOperator::ScmpCmpMaskedEq => ScmpArgCompare::new(a.index() as u32, ScmpCompareOp::MaskedEqual(a.value()), a.value_two().unwrap_or(0)),
                op => ScmpArgCompare::new(a.index() as u32, compare(op), a.value()),
            })
            .collect();
        let indices: HashSet<u32> = rule.args().iter().flatten().map(|a| a.index() as u32).collect();
        let groups: Vec<&[ScmpArgCompare]> = if indices.len() == conds.len() { vec![&conds[..]] } else { conds.chunks(1).collect() };
        for name in rule.names() {
            let Ok(sc) = ScmpSyscall::from_name(name) else {
                tracing::warn!("seccomp: unknown syscall {name:?} skipped");
                continue;
            };
            for g in &groups {
                ctx.add_rule_conditional(act, sc, g).with_context(|| format!("seccomp: cannot add the rule for {name}"))?;
            }
        }
    }
    let mut f = memfd()?;
    ctx.export_bpf(&f).context("seccomp: cannot export the filter")?;
    f.rewind()?;
    let mut bpf = Vec::new();
    f.read_to_end(&mut bpf)?;
    Ok(bpf)
}

/// Whether a profile uses SCMP_ACT_NOTIFY (whose fd goes to a listener
/// through libcontainer, so only libcontainer can load it natively; the
/// Proxmox backend refuses it).
pub fn has_notify(s: &LinuxSeccomp) -> bool {
    let notify = |a: LinuxSeccompAction| a == LinuxSeccompAction::ScmpActNotify;
    notify(s.default_action()) || s.syscalls().iter().flatten().any(|c| notify(c.action()))
}

/// The profile as it is loaded: `SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV`
/// only changes how a notify listener's target waits, and the kernel
/// refuses it without `SECCOMP_FILTER_FLAG_NEW_LISTENER` (EINVAL), so a
/// profile without SCMP_ACT_NOTIFY loses it (libseccomp sets it only with
/// a listener, and crun runs such a profile; libseccomp 2.5.4, Debian 12's,
/// has no attribute for it). Everything else as given.
pub fn loadable(s: &LinuxSeccomp) -> LinuxSeccomp {
    let mut s = s.clone();
    if !has_notify(&s) {
        if let Some(f) = s.flags().clone() {
            s.set_flags(Some(f.into_iter().filter(|f| *f != LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv).collect()));
        }
    }
    s
}

/// `linux.seccomp.flags` as the `flags` argument of
/// `seccomp(SECCOMP_SET_MODE_FILTER, flags, prog)` (linux/seccomp.h bits);
/// 0 when the profile has none. TSYNC contributes nothing (runc's rule),
/// nor WAIT_KILLABLE_RECV (see [`loadable`]: the Proxmox backend refuses
/// notify actions, so no profile it loads has a listener).
pub fn filter_flags(s: &LinuxSeccomp) -> u32 {
    loadable(s).flags().iter().flatten().fold(0, |acc, f| {
        acc | match f {
            LinuxSeccompFilterFlag::SeccompFilterFlagLog => 1 << 1,
            LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => 1 << 2,
            LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv => 1 << 5,
            LinuxSeccompFilterFlag::SeccompFilterFlagTsync => 0,
        }
    })
}

fn action(a: LinuxSeccompAction, errno: Option<u32>) -> Result<ScmpAction> {
    let errno = errno.map_or(libc::EPERM, |e| e as i32);
    Ok(match a {
        LinuxSeccompAction::ScmpActKill | LinuxSeccompAction::ScmpActKillThread => ScmpAction::KillThread,
        LinuxSeccompAction::ScmpActKillProcess => ScmpAction::KillProcess,
        LinuxSeccompAction::ScmpActTrap => ScmpAction::Trap,
        LinuxSeccompAction::ScmpActErrno => ScmpAction::Errno(errno),
        LinuxSeccompAction::ScmpActTrace => ScmpAction::Trace(u16::try_from(errno).context("seccomp: SCMP_ACT_TRACE errnoRet above 65535")?),
        LinuxSeccompAction::ScmpActAllow => ScmpAction::Allow,
        LinuxSeccompAction::ScmpActLog => ScmpAction::Log,
        LinuxSeccompAction::ScmpActNotify => bail!("seccomp: SCMP_ACT_NOTIFY is not supported by the Proxmox backend"),
    })
}

fn compare(op: LinuxSeccompOperator) -> ScmpCompareOp {
    match op {
        LinuxSeccompOperator::ScmpCmpNe => ScmpCompareOp::NotEqual,
        LinuxSeccompOperator::ScmpCmpLt => ScmpCompareOp::Less,
        LinuxSeccompOperator::ScmpCmpLe => ScmpCompareOp::LessOrEqual,
        LinuxSeccompOperator::ScmpCmpEq => ScmpCompareOp::Equal,
        LinuxSeccompOperator::ScmpCmpGe => ScmpCompareOp::GreaterEqual,
        LinuxSeccompOperator::ScmpCmpGt => ScmpCompareOp::Greater,
        LinuxSeccompOperator::ScmpCmpMaskedEq => ScmpCompareOp::MaskedEqual(0),
    }
}

/// An anonymous in-memory file for libseccomp to export into.
fn memfd() -> Result<std::fs::File> {
    use std::os::fd::FromRawFd;
    // SAFETY: memfd_create with a NUL-terminated name; on success the fd is
    // new and owned by nobody else, so File takes it over.
    let fd = unsafe { libc::memfd_create(c"nexcage-seccomp".as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error()).context("memfd_create");
    }
    // SAFETY: see above.
    Ok(unsafe { std::fs::File::from_raw_fd(fd) })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(action: &str) -> LinuxSeccomp {
        serde_json::from_str(&format!(
            r#"{{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_X86_64"],"syscalls":[{{"names":["mkdir","no_such_call"],"action":"{action}"}},
            {{"names":["personality"],"action":"SCMP_ACT_ERRNO","args":[{{"index":0,"value":0,"op":"SCMP_CMP_NE"}},{{"index":0,"value":8,"op":"SCMP_CMP_NE"}}]}}]}}"#
        ))
        .unwrap()
    }

    #[test]
    fn compiles_to_sock_filters() {
        let bpf = compile(&profile("SCMP_ACT_ERRNO")).unwrap();
        assert!(!bpf.is_empty() && bpf.len().is_multiple_of(8), "{}", bpf.len());
        assert!(compile(&profile("SCMP_ACT_NOTIFY")).unwrap_err().to_string().contains("NOTIFY"));
    }

    #[test]
    fn flags_are_runcs() {
        let with = |flags: &str| -> LinuxSeccomp { serde_json::from_str(&format!(r#"{{"defaultAction":"SCMP_ACT_ALLOW","flags":{flags}}}"#)).unwrap() };
        assert_eq!(filter_flags(&with("[]")), 0);
        assert_eq!(filter_flags(&with(r#"["SECCOMP_FILTER_FLAG_TSYNC"]"#)), 0);
        assert_eq!(filter_flags(&with(r#"["SECCOMP_FILTER_FLAG_LOG","SECCOMP_FILTER_FLAG_SPEC_ALLOW"]"#)), 6);
        assert_eq!(filter_flags(&with(r#"["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV","SECCOMP_FILTER_FLAG_LOG"]"#)), 2);
    }
}
