//! `HOME` as runc sets it when `process.env` has none: the home directory of
//! the process's uid in the container's `/etc/passwd`, else `/` (runc
//! libcontainer/init_linux.go, `setupUser`). Shared by both backends' rules.

/// The home field (6th) of the first `/etc/passwd` line (`text`) whose uid
/// is `uid`; `/` when there is none.
pub fn home_of(text: &str, uid: u32) -> String {
    text.lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.len() > 5 && f[2].parse() == Ok(uid))
        .map(|f| f[5].to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "/".to_string())
}

/// `env` with `HOME=<home of uid>` added when it has no `HOME`; `passwd` is
/// read only then.
pub fn with_home(mut env: Vec<String>, uid: u32, passwd: impl FnOnce() -> String) -> Vec<String> {
    if !env.iter().any(|e| e.starts_with("HOME=")) {
        env.push(format!("HOME={}", home_of(&passwd(), uid)));
    }
    env
}

#[cfg(test)]
mod tests {
    #[test]
    fn home_from_passwd_else_root() {
        let pw = "root:x:0:0:root:/root:/bin/sh\nfoo:x:1000:1000::/home/foo:/bin/sh\n";
        assert_eq!(super::home_of(pw, 1000), "/home/foo");
        assert_eq!(super::home_of(pw, 0), "/root");
        assert_eq!(super::home_of(pw, 7), "/");
        assert_eq!(super::with_home(vec!["HOME=/x".into()], 0, || pw.into()), ["HOME=/x"]);
        assert_eq!(super::with_home(vec![], 0, || pw.into()), ["HOME=/root"]);
    }
}
