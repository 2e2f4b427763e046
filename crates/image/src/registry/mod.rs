//! Registry v2 API client (synchronous) and its credentials.

pub mod auth;
pub mod client;
pub mod tls;

pub use auth::{lookup_credentials, AuthFileError, Credentials};
pub use client::{ClientOptions, RegistryClient};
