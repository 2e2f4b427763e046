//! `HOME` when `process.env` has none: runc takes the home directory of the
//! process's uid from the rootfs's `/etc/passwd`, else `/`
//! (libcontainer/init_linux.go, also for `exec --user`).

use std::path::Path;

/// The home directory of `uid` in `passwd` (the text of an `/etc/passwd`),
/// or `/` when no entry has it (or its home field is empty).
pub fn home_for(passwd: &str, uid: u32) -> String {
    passwd
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.len() >= 7 && f[2].parse::<u32>().ok() == Some(uid))
        .map(|f| f[5].to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "/".to_string())
}

/// The text of `<root>/etc/passwd`, or "" when it is missing or reached
/// through a symbolic link (which would be resolved against the host's
/// root, not the container's).
pub fn read_passwd(root: &Path) -> String {
    let etc = root.join("etc");
    let file = etc.join("passwd");
    let plain = |p: &Path| std::fs::symlink_metadata(p).is_ok_and(|m| !m.file_type().is_symlink());
    if plain(&etc) && plain(&file) {
        std::fs::read_to_string(file).unwrap_or_default()
    } else {
        String::new()
    }
}

/// `HOME=<home>` for `uid` under `root` when `env` has no `HOME`, else None.
pub fn missing_home(env: &[String], root: &Path, uid: u32) -> Option<String> {
    if env.iter().any(|e| e.split_once('=').is_some_and(|(k, _)| k == "HOME")) {
        return None;
    }
    Some(home_for(&read_passwd(root), uid))
}

/// `env` with `HOME=<home of uid>` added when it has no `HOME`; `passwd`
/// (the text of an `/etc/passwd`) is read only then. For callers that read
/// the file from inside the container (the Proxmox backend's guest).
pub fn with_home(mut env: Vec<String>, uid: u32, passwd: impl FnOnce() -> String) -> Vec<String> {
    if !env.iter().any(|e| e.split_once('=').is_some_and(|(k, _)| k == "HOME")) {
        env.push(format!("HOME={}", home_for(&passwd(), uid)));
    }
    env
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n# c\nwww:x:33:33::/var/www:/bin/false\nnohome:x:7:7:::/bin/sh\n";

    #[test]
    fn home_from_passwd_else_root_dir() {
        assert_eq!(home_for(PASSWD, 0), "/root");
        assert_eq!(home_for(PASSWD, 33), "/var/www");
        assert_eq!(home_for(PASSWD, 7), "/");
        assert_eq!(home_for(PASSWD, 1000), "/");
        assert_eq!(home_for("", 0), "/");
    }

    #[test]
    fn only_when_env_lacks_home() {
        let root = Path::new("/nonexistent-root");
        assert_eq!(missing_home(&["HOME=/x".into()], root, 0), None);
        assert_eq!(missing_home(&["HOMEDIR=/x".into()], root, 0).as_deref(), Some("/"));
    }
}
