//! The hooks nexcage runs itself instead of libcontainer (whose rule for
//! poststart and poststop failures is not the spec's; see
//! `backend::oci::hooks`).

use std::path::Path;

use libcontainer::config::YoukiConfig;
use libcontainer::oci_spec::runtime::Hook;

use crate::backend::oci::hooks::Phase;

/// Removes the `poststart` or `poststop` hooks (`phase`) from
/// libcontainer's saved config in `lc_dir` and returns them. Nothing is
/// taken (libcontainer keeps them) if the config cannot be rewritten.
pub fn take_hooks(lc_dir: &Path, phase: Phase) -> Vec<Hook> {
    let Ok(mut cfg) = YoukiConfig::load(lc_dir) else { return Vec::new() };
    let Some(hooks) = cfg.hooks.as_mut() else { return Vec::new() };
    let taken = match phase {
        Phase::Poststart => hooks.poststart().clone(),
        Phase::Poststop => hooks.poststop().clone(),
        Phase::Create => None,
    }
    .unwrap_or_default();
    if taken.is_empty() {
        return taken;
    }
    match phase {
        Phase::Poststart => hooks.set_poststart(None),
        Phase::Poststop => hooks.set_poststop(None),
        Phase::Create => hooks,
    };
    if let Err(e) = cfg.save(lc_dir) {
        tracing::warn!("cannot rewrite hooks config: {e}; hooks left to libcontainer");
        return Vec::new();
    }
    taken
}
