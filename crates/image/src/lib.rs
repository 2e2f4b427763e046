//! nexcage-image: the image store of nexcage.
//!
//! An OCI image layout under the data dir ([`store`]), registry pulls
//! ([`pull`], [`registry`]), import/export of OCI and docker archives
//! ([`archive`]), safe layer unpacking ([`unpack`]) and runtime bundles
//! ([`bundle`]), ZFS base datasets that Proxmox guests clone ([`zfs_base`]), Proxmox container templates ([`template`]). [`cli`] has the clap commands the main binary wires in.

pub mod archive;
pub mod bundle;
pub mod cli;
pub mod digest;
pub mod error;
pub mod platform;
pub mod progress;
pub mod pull;
pub mod reference;
pub mod registry;
pub mod store;
pub mod template;
pub mod unpack;
pub mod zfs_base;

pub use cli::{
    run_cache, run_image, run_image_with, run_layer, CacheCommand, ImageCommand, LayerCommand,
};
pub use error::{Error, Result};
pub use store::Store;
