//! Running OCI hooks, each with the container's state on stdin, and what a
//! failing one does. The rule is the OCI runtime spec's (runtime.md,
//! "Lifecycle"; config.md, "POSIX-platform Hooks"): a failing `prestart`,
//! `createRuntime`, `createContainer` or `startContainer` hook fails the
//! operation; a failing `poststart` or `poststop` hook is only a warning and
//! the next hook still runs.

use std::os::unix::process::CommandExt;
use std::path::Path;

use anyhow::{bail, Result};
use libcontainer::container::State;
use libcontainer::oci_spec::runtime::Hook;

/// Where in the lifecycle hooks run, which decides what a failure does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// `prestart` + `createRuntime`, at the end of create: a failure fails
    /// create (which then undoes itself).
    Create,
    /// `poststart`, after start: failures warn.
    Poststart,
    /// `poststop`, after delete: failures warn.
    Poststop,
}

impl Phase {
    fn name(self) -> &'static str {
        match self {
            Phase::Create => "create",
            Phase::Poststart => "poststart",
            Phase::Poststop => "poststop",
        }
    }

    /// Whether a failing hook fails the operation (else it is a warning).
    pub fn fails_operation(self) -> bool {
        self == Phase::Create
    }
}

/// Runs `hooks` in order with `state` on stdin. Errors with
/// "hook PATH failed: ..." at the first failure of a `Create` hook; for the
/// other phases a failure is logged and the next hook runs.
pub fn run(hooks: Vec<Hook>, state: &State, phase: Phase) -> Result<()> {
    for hook in hooks {
        let name = hook.path().display().to_string();
        if let Err(e) = libcontainer::hooks::run_hooks(Some(&vec![hook]), Some(state), None, None, None) {
            if phase.fails_operation() {
                bail!("hook {name} failed: {e}");
            }
            tracing::warn!("{} hook {name} failed: {e}", phase.name());
        }
    }
    Ok(())
}

/// The hidden subcommand through which a hook can be relayed.
pub const RELAY_COMMAND: &str = "__hook";

/// `hook` run through nexcage's relay (`EXE __hook --status S --bundle B --
/// PATH ARG0 ARGS...`): the same hook, env and timeout, but the state on
/// its stdin says `bundle` and (when given) `status`. For a runtime library
/// whose hook state is not the one the spec or the engine expects.
pub fn relayed(hook: &Hook, exe: &Path, status: Option<&str>, bundle: &Path) -> Hook {
    let path = hook.path().display().to_string();
    let mut args: Vec<String> = vec!["nexcage".into(), RELAY_COMMAND.into(), "--status".into(), status.unwrap_or("").into()];
    args.extend(["--bundle".to_string(), bundle.display().to_string(), "--".into(), path.clone()]);
    args.extend(hook.args().clone().filter(|a| !a.is_empty()).unwrap_or_else(|| vec![path]));
    let mut h = hook.clone();
    h.set_path(exe.to_path_buf());
    h.set_args(Some(args));
    h
}

/// The relay itself: reads the state from stdin, sets `status` (unless
/// empty) and `bundle`, and replaces this process with the hook (`path`,
/// `argv` with its arg0), the new state on its stdin. Returns only on
/// failure.
pub fn relay(status: &str, bundle: &Path, path: &Path, argv: &[String]) -> anyhow::Error {
    match relay_state(status, bundle) {
        Ok(stdin) => {
            let mut cmd = std::process::Command::new(path);
            if let Some((arg0, rest)) = argv.split_first() {
                cmd.arg0(arg0).args(rest);
            }
            let err = cmd.stdin(stdin).exec();
            anyhow::anyhow!("failed to execute hook {}: {err}", path.display())
        }
        Err(e) => e,
    }
}

/// The rewritten state in an anonymous file, at offset 0 (a pipe could
/// not hold a large state without a writer beside the exec).
fn relay_state(status: &str, bundle: &Path) -> Result<std::fs::File> {
    use std::io::{Read, Seek, Write};
    use std::os::fd::FromRawFd;
    let mut input = String::new();
    std::io::stdin().read_to_string(&mut input)?;
    let mut v: serde_json::Value = serde_json::from_str(&input).map_err(|e| anyhow::anyhow!("hook state on stdin: {e}"))?;
    if !status.is_empty() {
        v["status"] = status.into();
    }
    v["bundle"] = bundle.display().to_string().into();
    // SAFETY: memfd_create gets a NUL-terminated name; a non-negative result
    // is a new fd that nothing else owns, so File may take it.
    let fd = unsafe { libc::memfd_create(c"nexcage-hook-state".as_ptr(), 0) };
    if fd < 0 {
        bail!("memfd_create: {}", std::io::Error::last_os_error());
    }
    // SAFETY: see above; fd is valid and owned only here.
    let mut f = unsafe { std::fs::File::from_raw_fd(fd) };
    f.write_all(&serde_json::to_vec(&v)?)?;
    f.rewind()?;
    Ok(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relayed_hook_keeps_args_env_timeout() {
        let h: Hook = serde_json::from_str(r#"{"path":"/bin/sh","args":["sh","-c","x"],"env":["A=1"],"timeout":5}"#).unwrap();
        let r = relayed(&h, Path::new("/usr/bin/nexcage"), Some("created"), Path::new("/b"));
        assert_eq!(r.path(), Path::new("/usr/bin/nexcage"));
        let want: Vec<String> =
            ["nexcage", "__hook", "--status", "created", "--bundle", "/b", "--", "/bin/sh", "sh", "-c", "x"].map(String::from).to_vec();
        assert_eq!(r.args().as_ref(), Some(&want));
        assert_eq!(r.env(), h.env());
        assert_eq!(r.timeout(), Some(5));
        let bare: Hook = serde_json::from_str(r#"{"path":"/hook"}"#).unwrap();
        let r = relayed(&bare, Path::new("/n"), None, Path::new("/b"));
        assert_eq!(r.args().as_ref().unwrap()[3..], ["", "--bundle", "/b", "--", "/hook", "/hook"].map(String::from));
    }
}
