//! `nexcage login REGISTRY` / `nexcage logout REGISTRY`: credentials in a
//! containers auth.json (`auths.<host>.auth` = base64 `user:password`), the
//! file nexcage-image reads for pulls; written atomically with mode 0600.
//! The credentials are stored as given, not tried against the registry.

use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

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
    if let Some(p) = explicit {
        return Ok(p);
    }
    let env = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
    if let Some(p) = env("REGISTRY_AUTH_FILE") {
        return Ok(p.into());
    }
    if let Some(d) = env("XDG_RUNTIME_DIR") {
        return Ok(PathBuf::from(d).join("containers/auth.json"));
    }
    let home = env("HOME").context("no HOME: give --authfile")?;
    Ok(PathBuf::from(home).join(".config/containers/auth.json"))
}

fn host(registry: &str) -> Result<String> {
    let h = registry.trim_start_matches("https://").trim_start_matches("http://").trim_end_matches('/');
    if h.is_empty() || h.contains('/') || h.contains(char::is_whitespace) {
        bail!("{registry:?} is not a registry host (e.g. registry.example.com:5000)");
    }
    // Docker Hub is stored under both names readers look for.
    Ok(if h == "docker.io" { "docker.io".into() } else { h.to_string() })
}

fn b64(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::new();
    for c in data.chunks(3) {
        let n = (c[0] as u32) << 16 | (*c.get(1).unwrap_or(&0) as u32) << 8 | *c.get(2).unwrap_or(&0) as u32;
        for i in 0..4 {
            if i <= c.len() {
                s.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                s.push('=');
            }
        }
    }
    s
}

fn load(p: &std::path::Path) -> Result<Value> {
    match std::fs::read(p) {
        Ok(d) => serde_json::from_slice(&d).with_context(|| format!("{} is not valid JSON", p.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(json!({"auths": {}})),
        Err(e) => Err(e).with_context(|| format!("reading {}", p.display())),
    }
}

fn save(p: &std::path::Path, v: &Value) -> Result<()> {
    let dir = p.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(std::path::Path::new("."));
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let tmp = dir.join(format!(".auth.json.{}", std::process::id()));
    let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp)
        .with_context(|| format!("writing {}", tmp.display()))?;
    f.write_all(serde_json::to_string_pretty(v)?.as_bytes())?;
    f.sync_all()?;
    std::fs::rename(&tmp, p).with_context(|| format!("writing {}", p.display()))
}

pub fn login(a: LoginArgs, _ctx: &Ctx) -> Result<i32> {
    let host = host(&a.registry)?;
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
    let mut v = load(&path)?;
    if !v["auths"].is_object() {
        v["auths"] = json!({});
    }
    let entry = json!({"auth": b64(format!("{}:{password}", a.username).as_bytes())});
    v["auths"][&host] = entry.clone();
    if host == "docker.io" {
        v["auths"]["https://index.docker.io/v1/"] = entry;
    }
    save(&path, &v)?;
    println!("Login Succeeded! (credentials stored in {}, not verified)", path.display());
    Ok(0)
}

pub fn logout(a: LogoutArgs, _ctx: &Ctx) -> Result<i32> {
    let host = host(&a.registry)?;
    let path = auth_file(a.authfile)?;
    let mut v = load(&path)?;
    let mut removed = v["auths"].as_object_mut().and_then(|m| m.remove(&host)).is_some();
    if host == "docker.io" {
        removed |= v["auths"].as_object_mut().and_then(|m| m.remove("https://index.docker.io/v1/")).is_some();
    }
    if !removed {
        bail!("not logged in to {host}");
    }
    save(&path, &v)?;
    println!("Removed login credentials for {host}");
    Ok(0)
}

#[cfg(test)]
mod tests {
    #[test]
    fn base64() {
        assert_eq!(super::b64(b"user:pass"), "dXNlcjpwYXNz");
        assert_eq!(super::b64(b"ab"), "YWI=");
        assert_eq!(super::b64(b"a"), "YQ==");
    }
}
