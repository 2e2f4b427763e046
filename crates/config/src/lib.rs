//! nexcage's own configuration: `/etc/nexcage/config.json`, overridden by
//! `NEXCAGE_CONFIG` and by an explicit path (`--config`); never read from
//! the current directory. Unknown keys are rejected, errors name the key,
//! and secrets are wrapped in [`Secret`] so they never reach logs.

mod error;
mod keys;
mod load;
mod model;
mod secret;
mod validate;

pub use error::ConfigError;
pub use keys::{get_key, parse_value, set_key};
pub use load::{load, load_with_env, parse_str, read_token_file, resolve_path, Loaded};
pub use model::*;
pub use secret::{Secret, REDACTED};
pub use validate::parse_fingerprint;

#[cfg(test)]
mod tests;
