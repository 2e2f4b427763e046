//! `exec --user USER[:GROUP]`: numeric ids as runc takes them, or names
//! looked up in the container's own /etc/passwd and /etc/group (as
//! `docker exec --user` does; the host's NSS knows nothing of them).

use std::path::Path;

use anyhow::{bail, Context, Result};

/// The id of `name` in `file` (passwd or group format: `name:x:ID:...`),
/// and for passwd the primary gid (field 4).
fn lookup(file: &Path, name: &str) -> Result<(u32, Option<u32>)> {
    let text = std::fs::read_to_string(file).with_context(|| format!("--user {name}: reading the container's {}", file.display()))?;
    for line in text.lines() {
        let f: Vec<&str> = line.split(':').collect();
        if f.first() == Some(&name) && f.len() >= 3 {
            let id = f[2].parse().with_context(|| format!("{}: malformed entry for {name}", file.display()))?;
            return Ok((id, f.get(3).and_then(|g| g.parse().ok())));
        }
    }
    bail!("--user {name}: no such user or group in the container's {}", file.display())
}

/// `UID[:GID]` or `NAME[:GROUP]`: (uid, gid); a user name without a group
/// gets its primary group. `rootfs`: the container's root filesystem.
pub fn resolve(spec: &str, rootfs: &Path) -> Result<(u32, Option<u32>)> {
    let (user, group) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let (uid, primary) = match user.parse() {
        Ok(uid) => (uid, None),
        Err(_) => lookup(&rootfs.join("etc/passwd"), user)?,
    };
    let gid = match group {
        Some(g) => Some(match g.parse() {
            Ok(gid) => gid,
            Err(_) => lookup(&rootfs.join("etc/group"), g)?.0,
        }),
        None => primary,
    };
    Ok((uid, gid))
}

#[cfg(test)]
mod tests {
    #[test]
    fn names_from_the_container_files() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("etc")).unwrap();
        std::fs::write(d.path().join("etc/passwd"), "root:x:0:0::/root:/bin/sh\nweb:x:33:44::/var/www:/bin/sh\n").unwrap();
        std::fs::write(d.path().join("etc/group"), "root:x:0:\nwww:x:44:\n").unwrap();
        assert_eq!(super::resolve("web", d.path()).unwrap(), (33, Some(44)));
        assert_eq!(super::resolve("web:root", d.path()).unwrap(), (33, Some(0)));
        assert_eq!(super::resolve("1000:www", d.path()).unwrap(), (1000, Some(44)));
        assert_eq!(super::resolve("7", d.path()).unwrap(), (7, None));
        assert!(super::resolve("nobody", d.path()).is_err());
    }
}
