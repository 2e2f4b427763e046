//! `nexcage network test` and `nexcage registry auth` (admin::reach): ok /
//! warn / fail lines like `system check`; exit 1 if anything fails.

use anyhow::Result;

use super::Ctx;

#[derive(clap::Subcommand, Debug)]
pub enum NetworkCmd {
    /// Reach the registries (logged-in ones, Docker Hub, --registry) and the Proxmox API
    Test {
        /// Also try this registry (repeatable)
        #[arg(long, value_name = "HOST[:PORT]")]
        registry: Vec<String>,
        /// `--tls-verify=false`: also accept plain http and unverified TLS
        #[arg(long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
        tls_verify: bool,
    },
}

#[derive(clap::Subcommand, Debug)]
pub enum RegistryCmd {
    /// Try the stored credentials of every logged-in registry, and the Proxmox token
    Auth {
        /// `--tls-verify=false`: also accept plain http and unverified TLS
        #[arg(long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
        tls_verify: bool,
    },
}

pub fn network(cmd: NetworkCmd, ctx: &Ctx) -> Result<i32> {
    let NetworkCmd::Test { registry, tls_verify } = cmd;
    Ok(if crate::admin::reach::network_test(ctx, &registry, tls_verify) { 1 } else { 0 })
}

pub fn registry(cmd: RegistryCmd, ctx: &Ctx) -> Result<i32> {
    let RegistryCmd::Auth { tls_verify } = cmd;
    Ok(if crate::admin::reach::registry_auth(ctx, tls_verify) { 1 } else { 0 })
}
