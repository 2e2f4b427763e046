//! `image pull`: fetch an image from a registry (v2 API) into the store.

use std::io::BufRead;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use nexcage_image::platform::Platform;
use nexcage_image::pull::{self, PullOptions};
use nexcage_image::reference::Reference;
use nexcage_image::registry::{lookup_credentials, ClientOptions, Credentials};
use nexcage_image::Store;

use super::human;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Image reference, e.g. `ubuntu:22.04`, `registry:5000/app@sha256:...`.
    reference: String,
    /// Registry to pull REFERENCE from when it names none (`--registry r.example.com app:1` = `r.example.com/app:1`)
    #[arg(long, value_name = "HOST[:PORT]")]
    registry: Option<String>,
    /// Platform to pick from a multi-arch index.
    #[arg(long, default_value = nexcage_image::platform::HOST)]
    platform: String,
    /// Verify TLS; `--tls-verify=false` also allows plain http.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub(super) tls_verify: bool,
    #[arg(long, short = 'u')]
    username: Option<String>,
    #[arg(long, short = 'p', requires = "username")]
    password: Option<String>,
    /// Read the password from standard input.
    #[arg(long, requires = "username", conflicts_with = "password")]
    password_stdin: bool,
    /// Credentials file (auth.json format); default: the containers/docker ones.
    #[arg(long)]
    authfile: Option<PathBuf>,
    /// certs.d-style directory: `<DIR>/<host[:port]>/*.crt` (CAs), `*.cert` + `*.key` (client).
    #[arg(long, value_name = "DIR")]
    cert_dir: Option<PathBuf>,
    /// No progress bars.
    #[arg(long, short = 'q')]
    quiet: bool,
    /// Parallel layer downloads (default: config parallel.workers, else 4;
    /// 1 with parallel.processing false)
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) jobs: Option<u32>,
    /// Attempts per request on transient errors.
    #[arg(long, default_value_t = 4)]
    retries: u32,
}

pub fn run(mut a: Args, store: &Store) -> Result<()> {
    if let Some(r) = &a.registry {
        let r = r.trim_start_matches("https://").trim_start_matches("http://").trim_end_matches('/');
        if !a.reference.starts_with(&format!("{r}/")) {
            a.reference = format!("{r}/{}", a.reference);
        }
    }
    // Flag credentials serve this pull only; `login` is what stores them.
    let credentials = credentials(&a.reference, a.username, a.password, a.password_stdin, a.authfile.as_deref())?;
    let opts = PullOptions {
        platform: Platform::parse(&a.platform)?,
        client: ClientOptions { tls_verify: a.tls_verify, credentials, attempts: a.retries, cert_dir: a.cert_dir },
        quiet: a.quiet,
        jobs: a.jobs.map_or(4, |j| j as usize),
    };
    let r = pull::pull(store, &a.reference, &opts)?;
    eprintln!(
        "pulled {} ({} blobs, {}; {} already present)",
        r.name,
        r.downloaded_blobs,
        human(r.downloaded_bytes),
        r.reused_blobs
    );
    println!("{}", r.manifest_digest);
    Ok(())
}

/// From the flags (the password from stdin with `--password-stdin`), else
/// from the auth files for the reference's registry.
fn credentials(
    reference: &str,
    username: Option<String>,
    password: Option<String>,
    password_stdin: bool,
    authfile: Option<&Path>,
) -> Result<Option<Credentials>> {
    if let Some(username) = username {
        let password = if password_stdin {
            let mut line = String::new();
            std::io::stdin().lock().read_line(&mut line).context("reading password from stdin")?;
            line.trim_end_matches(['\n', '\r']).to_string()
        } else {
            password.context("--username needs --password or --password-stdin")?
        };
        return Ok(Some(Credentials { username, password }));
    }
    let r = Reference::parse(reference)?;
    Ok(lookup_credentials(&r.registry, authfile)?)
}
