//! start: release the init (libcontainer), then the poststart hooks.

use std::path::Path;

use anyhow::Result;

use super::hooks::take_hooks;
use super::{describe, lc_root, load};
use crate::backend::oci::hooks::{self, Phase};
use crate::state::Record;

pub fn start(rec: &Record, dir: &Path) -> Result<()> {
    // libcontainer stops at the first failing poststart hook and fails
    // start; the spec says warn and go on, so nexcage runs them itself.
    let poststart = take_hooks(&lc_root(dir).join(&rec.id), Phase::Poststart);
    let mut c = load(rec, dir)?;
    c.start().map_err(describe)?;
    c.state.bundle = rec.bundle.clone(); // libcontainer's may be nexcage's copy (bundle.rs)
    hooks::run(poststart, &c.state, Phase::Poststart)
}
