//! `nexcage login REGISTRY` / `nexcage logout REGISTRY`: credentials in a
//! containers auth.json, the file pulls read (format and writing:
//! `nexcage_image::registry::auth`). As `podman login`, the credentials are
//! first tried against the registry (`GET /v2/`); a rejection is an error
//! and nothing is written.

use std::io::Read;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use nexcage_image::registry::auth;
use nexcage_image::registry::{ClientOptions, Credentials, RegistryClient};

use super::Ctx;

#[derive(clap::Args, Debug)]
pub struct LoginArgs {
    /// User name
    #[arg(short, long)]
    pub username: String,
    /// Password (prefer --password-stdin)
    #[arg(short, long, conflicts_with = "password_stdin")]
    pub password: Option<String>,
    /// Read the password from stdin
    #[arg(long)]
    pub password_stdin: bool,
    /// Auth file (default $REGISTRY_AUTH_FILE, $XDG_RUNTIME_DIR/containers/auth.json, ~/.config/containers/auth.json)
    #[arg(long, value_name = "FILE")]
    pub authfile: Option<PathBuf>,
    /// Verify TLS; `--tls-verify=false` also allows plain http (as image pull)
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub tls_verify: bool,
    /// certs.d-style directory: `<DIR>/<host[:port]>/*.crt` (CAs), `*.cert` + `*.key` (client)
    #[arg(long, value_name = "DIR")]
    pub cert_dir: Option<PathBuf>,
    /// Registry host, e.g. registry.example.com:5000
    pub registry: String,
}

#[derive(clap::Args, Debug)]
pub struct LogoutArgs {
    /// Auth file (as for login)
    #[arg(long, value_name = "FILE")]
    pub authfile: Option<PathBuf>,
    /// Registry host
    pub registry: String,
}

fn auth_file(explicit: Option<PathBuf>) -> Result<PathBuf> {
    explicit.or_else(auth::login_auth_file).context("no HOME: give --authfile")
}

pub fn login(a: LoginArgs, _ctx: &Ctx) -> Result<i32> {
    let key = auth::auth_key(&a.registry)?;
    let password = match (a.password, a.password_stdin) {
        (Some(p), _) => p,
        (None, true) => {
            let mut s = String::new();
            std::io::stdin().read_to_string(&mut s)?;
            s.trim_end_matches(['\n', '\r']).to_string()
        }
        (None, false) => bail!("give --password or --password-stdin"),
    };
    if a.username.contains(':') {
        bail!("--username may not contain ':'");
    }
    let path = auth_file(a.authfile)?;
    let creds = Credentials { username: a.username, password };
    let opts = ClientOptions { tls_verify: a.tls_verify, credentials: Some(creds.clone()), attempts: 2, cert_dir: a.cert_dir };
    RegistryClient::for_registry(&key, &opts)?.check_login().with_context(|| format!("login to {key}"))?;
    auth::store_credentials(&path, &key, &creds)?;
    println!("Login Succeeded! (credentials stored in {})", path.display());
    Ok(0)
}

pub fn logout(a: LogoutArgs, _ctx: &Ctx) -> Result<i32> {
    let key = auth::auth_key(&a.registry)?;
    auth::remove_credentials(&auth_file(a.authfile)?, &key)?;
    println!("Removed login credentials for {key}");
    Ok(0)
}
