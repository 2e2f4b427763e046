//! What every command gets besides its own arguments: the global flags,
//! resolved once by the command line. Neutral ground: `cli`, `container`
//! and `admin` all read it; it depends on none of them.

use std::path::PathBuf;

use anyhow::Result;

use crate::state::Store;

pub struct Ctx {
    /// `--root`, made absolute (runc's filepath.Abs).
    pub root: PathBuf,
    pub systemd_cgroup: bool,
    pub rootless: bool,
    /// `--config` / NEXCAGE_CONFIG, when given.
    pub config_path: Option<PathBuf>,
}

impl Ctx {
    pub fn store(&self) -> Result<Store> {
        Store::open(&self.root)
    }

    /// nexcage's own configuration, read only by the commands that need it.
    pub fn config(&self) -> Result<nexcage_config::Config> {
        let loaded = nexcage_config::load(self.config_path.as_deref())?;
        for w in &loaded.warnings {
            tracing::warn!("{w}");
        }
        Ok(loaded.config)
    }

    /// The image store directory: config `images.storage_path` /
    /// `NEXCAGE_STORAGE_PATH`, else /var/lib/nexcage.
    pub fn image_store(&self) -> Result<PathBuf> {
        Ok(self.config()?.images.storage_path.unwrap_or_else(nexcage_image::store::default_store_dir))
    }
}
