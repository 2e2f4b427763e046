//! pause and resume: the container's freezer (libcontainer).

use std::path::Path;

use anyhow::Result;

use super::{describe, load};
use crate::state::Record;

pub fn pause(rec: &Record, dir: &Path) -> Result<()> {
    load(rec, dir)?.pause().map_err(describe)
}

pub fn resume(rec: &Record, dir: &Path) -> Result<()> {
    load(rec, dir)?.resume().map_err(describe)
}
