//! `/etc/pve/nodes/<node>/lxc/<vmid>.conf`, written exactly as
//! pve-container's `write_pct_config` writes it and parsed like
//! `parse_pct_config` (non-strict: problems become warnings).

use std::collections::BTreeMap;
use std::sync::LazyLock;

/// One section of the file (main, `[pve:pending]` or a snapshot).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Section {
    /// From `#` lines (decoded, one `\n` per line) and `description:`.
    pub description: Option<String>,
    /// Plain keys; `env` holds the NUL-joined environment.
    pub keys: BTreeMap<String, String>,
    /// Raw `lxc.*` entries in file order (without `lxc.environment.runtime`,
    /// which becomes `env`).
    pub lxc: Vec<(String, String)>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConfigFile {
    pub main: Section,
    pub pending: Option<Section>,
    pub snapshots: BTreeMap<String, Section>,
}

/// pve-common `encode_text` as used for descriptions: control and
/// non-ASCII bytes, `:` and `%` become `%XX`.
pub fn encode_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if !(0x20..=0x7e).contains(&b) || b == b':' || b == b'%' {
            out.push_str(&format!("%{b:02X}"));
        } else {
            out.push(b as char);
        }
    }
    out
}

/// Reverse of [`encode_text`] (`uri_unescape`).
pub fn decode_text(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
            if let Some(b) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn write_section(out: &mut String, s: &Section) {
    if let Some(d) = &s.description {
        for line in d.split('\n').filter(|l| !l.is_empty()) {
            out.push('#');
            out.push_str(&encode_text(line));
            out.push('\n');
        }
    }
    for (k, v) in &s.keys {
        if k == "env" || k == "description" || k == "digest" {
            continue;
        }
        out.push_str(&format!("{k}: {v}\n"));
    }
    if let Some(env) = s.keys.get("env") {
        for var in env.split('\0').filter(|v| !v.is_empty()) {
            out.push_str(&format!("lxc.environment.runtime: {var}\n"));
        }
    }
    for (k, v) in &s.lxc {
        out.push_str(&format!("{k}: {v}\n"));
    }
}

/// Render the file as `write_pct_config` does.
pub fn write(cfg: &ConfigFile) -> String {
    let mut out = String::new();
    write_section(&mut out, &cfg.main);
    if let Some(p) = &cfg.pending {
        out.push_str("\n[pve:pending]\n");
        write_section(&mut out, p);
    }
    for (name, s) in &cfg.snapshots {
        out.push_str(&format!("\n[{name}]\n"));
        write_section(&mut out, s);
    }
    out
}

// The line patterns of pve-container's `parse_pct_config` (Config.pm),
// compiled once per process: a parse per API call cost the pve-double
// (and nexcage's raw-key edit) three regex compilations each time. Matched
// without Unicode classes, as Perl matches them on the file's undecoded
// bytes (`\s`, `\d` ASCII): regex-lite's classes are ASCII only, and it
// compiles a pattern in ~20 us where `regex` takes ~0.4 ms (its full DFA).
static SECTION_RE: LazyLock<Option<regex_lite::Regex>> = LazyLock::new(|| line_re(r"^\[([a-zA-Z][a-zA-Z0-9_\-]+|pve:pending)\]\s*$"));
static LXC_RE: LazyLock<Option<regex_lite::Regex>> = LazyLock::new(|| line_re(r"^(lxc\.[a-z0-9_\-.]+)(?::|\s*=)\s*(.*?)\s*$"));
static KEY_RE: LazyLock<Option<regex_lite::Regex>> = LazyLock::new(|| line_re(r"^([a-z][a-z_\-]*\d*):\s*(.*?)\s*$"));

fn line_re(pattern: &str) -> Option<regex_lite::Regex> {
    regex_lite::Regex::new(pattern).ok()
}

/// Capture `i` of a line's match.
fn group(c: &regex_lite::Captures<'_>, i: usize) -> String {
    c.get(i).map(|m| m.as_str().to_string()).unwrap_or_default()
}

/// Parse a config file. Returns the config and warnings (unparsable
/// lines are dropped with a warning, as Proxmox does in non-strict mode).
pub fn parse(text: &str) -> (ConfigFile, Vec<String>) {
    let mut cfg = ConfigFile::default();
    let mut warnings = Vec::new();
    let mut cur: Section = Section::default();
    let mut cur_name: Option<String> = None; // None = main
    let finish = |cfg: &mut ConfigFile, name: &Option<String>, s: Section| match name.as_deref() {
        None => cfg.main = s,
        Some("pve:pending") => cfg.pending = Some(s),
        Some(n) => {
            cfg.snapshots.insert(n.to_string(), s);
        }
    };
    let (section_re, lxc_re, key_re) = (&*SECTION_RE, &*LXC_RE, &*KEY_RE);
    for line in text.lines() {
        if line.trim_ascii().is_empty() {
            continue;
        }
        if let Some(c) = section_re.as_ref().and_then(|r| r.captures(line)) {
            let s = std::mem::take(&mut cur);
            finish(&mut cfg, &cur_name, s);
            cur_name = Some(group(&c, 1));
            continue;
        }
        if let Some(rest) = line.strip_prefix('#') {
            let d = cur.description.get_or_insert_with(String::new);
            d.push_str(&decode_text(rest));
            d.push('\n');
            continue;
        }
        if let Some(c) = lxc_re.as_ref().and_then(|r| r.captures(line)) {
            let (k, v) = (group(&c, 1), group(&c, 2));
            if k == "lxc.environment.runtime" {
                let env = cur.keys.entry("env".into()).or_default();
                if !env.is_empty() {
                    env.push('\0');
                }
                env.push_str(&v);
            } else {
                cur.lxc.push((k, v));
            }
            continue;
        }
        if let Some(c) = key_re.as_ref().and_then(|r| r.captures(line)) {
            let (k, v) = (group(&c, 1), group(&c, 2));
            if k == "description" {
                cur.description.get_or_insert_with(String::new).push_str(&v);
            } else {
                cur.keys.insert(k, v);
            }
            continue;
        }
        warnings.push(format!("unable to parse config: {line}"));
    }
    finish(&mut cfg, &cur_name, cur);
    (cfg, warnings)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_lines_as_perl_matches_bytes() {
        // `\s` is ASCII whitespace only (Perl on undecoded bytes): a
        // trailing no-break space stays; UTF-8 text passes through whole.
        let (c, w) = parse("hostname: caf\u{e9}\u{a0}\nmemory:\t512 \r\nlxc.uts.name =  n\u{e4}me\u{2003}\n");
        assert!(w.is_empty(), "{w:?}");
        assert_eq!(c.main.keys["hostname"], "caf\u{e9}\u{a0}");
        assert_eq!(c.main.keys["memory"], "512");
        assert_eq!(c.main.lxc, vec![("lxc.uts.name".to_string(), "n\u{e4}me\u{2003}".to_string())]);
        // A line of no-break spaces is no blank line to Perl either.
        let (_, w) = parse("\u{a0}\u{a0}\n \t\n");
        assert_eq!(w.len(), 1, "{w:?}");
    }

    #[test]
    fn writes_like_write_pct_config() {
        let mut s = Section {
            description: Some("nexcage: id a:b\n100% done\n".into()),
            ..Default::default()
        };
        s.keys.insert("memory".into(), "64".into());
        s.keys.insert("arch".into(), "amd64".into());
        s.keys.insert("env".into(), "A=1\0B=x y".into());
        s.lxc.push(("lxc.init.cwd".into(), "/srv".into()));
        s.lxc.push(("lxc.cap.keep".into(), "chown".into()));
        let text = write(&ConfigFile {
            main: s.clone(),
            ..Default::default()
        });
        assert_eq!(
            text,
            "#nexcage%3A id a%3Ab\n#100%25 done\narch: amd64\nmemory: 64\n\
             lxc.environment.runtime: A=1\nlxc.environment.runtime: B=x y\n\
             lxc.init.cwd: /srv\nlxc.cap.keep: chown\n"
        );
        let (back, warnings) = parse(&text);
        assert!(warnings.is_empty());
        assert_eq!(back.main, s);
    }

    #[test]
    fn parses_sections_and_warns() {
        let text = "arch: amd64\nlxc.init.cmd = /bin/sh\nwhat is this\n\n[pve:pending]\nmemory: 128\n\n[snap1]\nmemory: 64\n";
        let (c, w) = parse(text);
        assert_eq!(c.main.keys["arch"], "amd64");
        assert_eq!(
            c.main.lxc,
            vec![("lxc.init.cmd".to_string(), "/bin/sh".to_string())]
        );
        assert_eq!(c.pending.as_ref().unwrap().keys["memory"], "128");
        assert_eq!(c.snapshots["snap1"].keys["memory"], "64");
        assert_eq!(w, vec!["unable to parse config: what is this".to_string()]);
    }

    #[test]
    fn encode_roundtrip_non_ascii() {
        let s = "ünï:%\tx";
        assert_eq!(decode_text(&encode_text(s)), s);
    }
}
