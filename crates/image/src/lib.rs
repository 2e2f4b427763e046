//! nexcage-image: the image store of nexcage.
//!
//! An OCI image layout under the data dir ([`store`]), registry pulls
//! ([`pull`], [`registry`]), import/export of OCI and docker archives
//! ([`archive`]), safe layer unpacking ([`unpack`]) and runtime bundles
//! ([`bundle`]), ZFS base datasets that Proxmox guests clone ([`zfs_base`]), Proxmox container templates ([`template`]);
//! what `image list`/`inspect` show ([`summary`]), blob usage and cache
//! statistics ([`usage`]), removal with the in-use guard ([`remove`]) and
//! blob checks ([`validate`]). The binary owns the command line and the
//! output formats; errors are [`Error`].

pub mod archive;
pub mod bundle;
pub mod digest;
pub mod error;
pub mod optimize;
pub mod platform;
pub mod progress;
pub mod pull;
pub mod reference;
pub mod registry;
pub mod remove;
pub mod store;
pub mod summary;
pub mod template;
pub mod unpack;
pub mod usage;
pub mod validate;
pub mod zfs_base;

pub use error::{Error, Result};
pub use store::Store;
