//! Printing an admin container's log (as its monitor recorded it), once
//! or following it while the container runs; `start --attach` on top.

use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};

use super::logfile::{self, EXIT, LOG};
use crate::container::Container;
use crate::context::Ctx;

/// Which lines to print, and how (`nexcage logs` flags).
#[derive(Default)]
pub struct Filter {
    /// Keep printing new lines until the container stops.
    pub follow: bool,
    /// Print lines as stored (time, stream, text) rather than the text alone.
    pub timestamps: bool,
    /// Only the last N lines.
    pub tail: Option<usize>,
    /// Only lines since T (RFC3339, or 30s/10m/2h ago).
    pub since: Option<String>,
}

fn show(line: &str, f: &Filter, since: Option<chrono::DateTime<chrono::Utc>>) {
    let l = logfile::parse(line);
    if since.is_some_and(|s| l.time.is_none_or(|t| t < s)) {
        return;
    }
    if f.timestamps {
        println!("{line}");
    } else if l.stream == "stderr" {
        eprintln!("{}", l.text);
    } else {
        println!("{}", l.text);
    }
}

/// Prints the log of container `id` (filtered), then with `follow` keeps
/// reading while the container is not stopped; stops also when the log is
/// removed (delete). With `from`, only what was written after that offset.
pub fn follow_file(ctx: &Ctx, id: &str, path: &Path, f: &Filter, from: Option<u64>) -> Result<i32> {
    let since = f.since.as_deref().map(logfile::parse_since).transpose()?;
    let file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !f.follow => return Ok(0),
        Err(e) => return Err(e).with_context(|| format!("opening {}", path.display())),
    };
    let mut r = BufReader::new(file);
    if let Some(off) = from {
        r.seek(SeekFrom::Start(off))?;
    }
    let mut lines: Vec<String> = Vec::new();
    let mut buf = String::new();
    while r.read_line(&mut buf)? > 0 {
        lines.push(buf.trim_end_matches('\n').to_string());
        buf.clear();
    }
    if from.is_some() {
        lines.clear();
    }
    let skip = f.tail.map(|n| lines.len().saturating_sub(n)).unwrap_or(0);
    for l in &lines[skip..] {
        show(l, f, since);
    }
    if !f.follow {
        return Ok(0);
    }
    let mut pos = r.stream_position()?;
    loop {
        let done = !running(ctx, id);
        let mut file = std::fs::File::open(path).map(BufReader::new);
        if let Ok(file) = file.as_mut() {
            file.seek(SeekFrom::Start(pos))?;
            let mut partial = String::new();
            while file.read_line(&mut partial)? > 0 {
                if !partial.ends_with('\n') {
                    break;
                }
                pos += partial.len() as u64;
                show(partial.trim_end_matches('\n'), f, since);
                partial.clear();
            }
        }
        if done || file.is_err() {
            return Ok(0);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn running(ctx: &Ctx, id: &str) -> bool {
    Container::load(ctx, id).is_ok_and(|c| !c.status().is_stopped())
}

/// `start --attach`: starts, then prints the new output until the
/// container stops; returns its exit code.
pub fn start_attached(ctx: &Ctx, id: &str, dir: &Path) -> Result<i32> {
    let from = std::fs::metadata(dir.join(LOG)).map(|m| m.len()).unwrap_or(0);
    super::lifecycle::launch(ctx, id, dir)?;
    let f = Filter { follow: true, ..Filter::default() };
    follow_file(ctx, id, &dir.join(LOG), &f, Some(from))?;
    // The monitor records the status just after the container is reaped.
    for _ in 0..50 {
        if let Ok(d) = std::fs::read(dir.join(EXIT)) {
            let v: serde_json::Value = serde_json::from_slice(&d).context("exit.json")?;
            return Ok(v["exitCode"].as_i64().unwrap_or(0) as i32);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(0)
}
