//! Registry v2 API client (synchronous) and its credentials.

pub mod auth;
pub mod client;

pub use auth::{Credentials, lookup_credentials};
pub use client::{ClientOptions, RegistryClient};
