//! Running `zfs` / `zpool` and turning their exit status into errors.

use std::process::Command;

use crate::ZfsError;

/// Runs `bin args...`, returning stdout; stderr becomes the error text.
pub(crate) fn run(bin: &str, args: &[&str]) -> Result<String, ZfsError> {
    let cmd = format!("{bin} {}", args.join(" "));
    tracing::debug!(%cmd, "zfs");
    let out = Command::new(bin)
        .args(args)
        .output()
        .map_err(|source| ZfsError::Spawn { cmd: cmd.clone(), source })?;
    if out.status.success() {
        return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
    }
    let mut stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
    // A client killed by a signal (seen once from zfs-fuse's `zfs` under 16
    // parallel deletes) says nothing on stderr: name the signal.
    if let Some(sig) = std::os::unix::process::ExitStatusExt::signal(&out.status) {
        stderr = format!("{stderr}{}killed by signal {sig}", if stderr.is_empty() { "" } else { "; " });
    }
    Err(ZfsError::Failed { cmd, code: out.status.code().unwrap_or(-1), stderr })
}

/// Dataset names go on a command line: refuse what could be read as an option.
pub(crate) fn check_name(name: &str) -> Result<(), ZfsError> {
    let ok = !name.is_empty()
        && !name.starts_with('-')
        && !name.starts_with('/')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.:/@".contains(c));
    if ok {
        Ok(())
    } else {
        Err(ZfsError::BadName(name.to_string()))
    }
}
