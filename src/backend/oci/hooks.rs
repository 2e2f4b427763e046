//! Running OCI hooks, each with the container's state on stdin, and what a
//! failing one does. The rule is the OCI runtime spec's (runtime.md,
//! "Lifecycle"; config.md, "POSIX-platform Hooks"): a failing `prestart`,
//! `createRuntime`, `createContainer` or `startContainer` hook fails the
//! operation; a failing `poststart` or `poststop` hook is only a warning and
//! the next hook still runs.

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
