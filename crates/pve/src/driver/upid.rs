//! UPIDs: `UPID:<node>:<pid>:<pstart>:<starttime>:<type>:<id>:<user>:`.

/// A parsed task id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upid {
    pub node: String,
    pub pid: u32,
    pub pstart: u64,
    pub starttime: u64,
    pub kind: String,
    pub id: String,
    pub user: String,
}

impl Upid {
    pub fn parse(s: &str) -> Option<Upid> {
        let rest = s.strip_prefix("UPID:")?.strip_suffix(':')?;
        let mut p = rest.splitn(7, ':');
        let node = p.next()?.to_string();
        let hex = |x: Option<&str>, min: usize| {
            x.filter(|h| h.len() >= min)
                .and_then(|h| u64::from_str_radix(h, 16).ok())
        };
        let pid = u32::try_from(hex(p.next(), 8)?).ok()?;
        let pstart = hex(p.next(), 8)?;
        let starttime = hex(p.next(), 8)?;
        let kind = p.next()?.to_string();
        let id = p.next()?.to_string();
        let user = p.next()?.to_string();
        if node.is_empty() || kind.is_empty() || user.is_empty() {
            return None;
        }
        Some(Upid {
            node,
            pid,
            pstart,
            starttime,
            kind,
            id,
            user,
        })
    }
}

impl std::fmt::Display for Upid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "UPID:{}:{:08X}:{:08X}:{:08X}:{}:{}:{}:",
            self.node, self.pid, self.pstart, self.starttime, self.kind, self.id, self.user
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip() {
        let s = "UPID:pve1:0003A1F2:01B2C3D4:6650A1B2:vzcreate:100:root@pam:";
        let u = Upid::parse(s).unwrap();
        assert_eq!(
            (u.pid, u.kind.as_str(), u.id.as_str()),
            (0x3A1F2, "vzcreate", "100")
        );
        assert_eq!(u.to_string(), s);
        assert!(Upid::parse("UPID:x").is_none());
        assert!(
            Upid::parse("UPID:pve1:0003A1F2:01B2C3D4:6650A1B2:vzcreate:100:root@pam!tok:")
                .is_some()
        );
    }
}
