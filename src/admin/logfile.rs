//! The container log: one line per output line,
//! `<RFC3339 UTC with ms> <stdout|stderr> <text>`.

use std::io::Write;

use chrono::{DateTime, Utc};

pub const LOG: &str = "container.log";
pub const EXIT: &str = "exit.json";

pub fn now() -> String {
    Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

pub fn write_line(out: &mut impl Write, stream: &str, text: &str) -> std::io::Result<()> {
    writeln!(out, "{} {stream} {text}", now())
}

pub struct Line<'a> {
    pub time: Option<DateTime<Utc>>,
    pub stream: &'a str,
    pub text: &'a str,
}

pub fn parse(line: &str) -> Line<'_> {
    let mut it = line.splitn(3, ' ');
    let (t, s, x) = (it.next().unwrap_or(""), it.next().unwrap_or(""), it.next().unwrap_or(""));
    Line {
        time: DateTime::parse_from_rfc3339(t).ok().map(|d| d.with_timezone(&Utc)),
        stream: s,
        text: x,
    }
}

/// `--since`: an RFC3339 time or a duration back from now (`30s`, `10m`, `2h`).
pub fn parse_since(s: &str) -> anyhow::Result<DateTime<Utc>> {
    if let Ok(d) = DateTime::parse_from_rfc3339(s) {
        return Ok(d.with_timezone(&Utc));
    }
    let (n, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: i64 = n.parse().map_err(|_| anyhow::anyhow!("--since {s:?}: expected RFC3339 or 30s/10m/2h"))?;
    let secs = match unit {
        "s" | "" => n,
        "m" => n * 60,
        "h" => n * 3600,
        _ => anyhow::bail!("--since {s:?}: expected RFC3339 or 30s/10m/2h"),
    };
    Ok(Utc::now() - chrono::Duration::seconds(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip() {
        let mut b = Vec::new();
        write_line(&mut b, "stdout", "hello world").unwrap();
        let s = String::from_utf8(b).unwrap();
        let l = parse(s.trim_end());
        assert!(l.time.is_some());
        assert_eq!((l.stream, l.text), ("stdout", "hello world"));
        assert!(parse_since("10m").is_ok());
        assert!(parse_since("x").is_err());
    }
}
