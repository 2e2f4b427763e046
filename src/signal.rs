//! Signal arguments as runc takes them: `9`, `KILL`, `SIGKILL`, `sigkill`, `RTMIN+3`.

use nix::sys::signal::Signal;
use std::str::FromStr;

/// A raw signal number, validated to be deliverable (0..=SIGRTMAX; 0, as in
/// runc's `kill ID 0`, sends nothing and only checks the process exists).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sig(pub i32);

fn rtmin() -> i32 {
    libc::SIGRTMIN()
}
fn rtmax() -> i32 {
    libc::SIGRTMAX()
}

impl FromStr for Sig {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("invalid signal: {s:?}");
        if let Ok(n) = s.parse::<i32>() {
            return if (0..=rtmax()).contains(&n) { Ok(Sig(n)) } else { Err(bad()) };
        }
        let up = s.to_ascii_uppercase();
        let name = up.strip_prefix("SIG").unwrap_or(&up);
        if let Some(rest) = name.strip_prefix("RTMIN") {
            let off = if rest.is_empty() { 0 } else { rest.strip_prefix('+').and_then(|r| r.parse().ok()).ok_or_else(bad)? };
            let n = rtmin() + off;
            return if n <= rtmax() { Ok(Sig(n)) } else { Err(bad()) };
        }
        if let Some(rest) = name.strip_prefix("RTMAX") {
            let off: i32 = if rest.is_empty() { 0 } else { rest.strip_prefix('-').and_then(|r| r.parse().ok()).ok_or_else(bad)? };
            let n = rtmax() - off;
            return if n >= rtmin() { Ok(Sig(n)) } else { Err(bad()) };
        }
        Signal::from_str(&format!("SIG{name}")).map(|s| Sig(s as i32)).map_err(|_| bad())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_runc_forms() {
        for (s, n) in [("9", 9), ("KILL", 9), ("SIGKILL", 9), ("term", 15), ("SIGTERM", 15), ("USR1", 10), ("HUP", 1)] {
            assert_eq!(s.parse::<Sig>().unwrap(), Sig(n), "{s}");
        }
        assert_eq!("RTMIN+2".parse::<Sig>().unwrap(), Sig(libc::SIGRTMIN() + 2));
        // runc takes 0: kill(2) then only checks that the process exists
        assert_eq!("0".parse::<Sig>().unwrap(), Sig(0));
    }

    #[test]
    fn rejects_garbage() {
        for s in ["", "-1", "100", "NOPE", "SIG", "RTMIN+99"] {
            assert!(s.parse::<Sig>().is_err(), "{s}");
        }
    }
}
