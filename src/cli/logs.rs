//! `nexcage logs NAME`: the output of an admin container, as its monitor
//! recorded it.

use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::time::Duration;

use anyhow::{bail, Context, Result};

use super::Ctx;
use crate::admin::logfile::{self, LOG};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Keep printing new lines until the container stops
    #[arg(short, long)]
    pub follow: bool,
    /// Prefix each line with its time and stream
    #[arg(short, long)]
    pub timestamps: bool,
    /// Only the last N lines
    #[arg(long, value_name = "N")]
    pub tail: Option<usize>,
    /// Only lines since T (RFC3339, or 30s/10m/2h ago)
    #[arg(long, value_name = "T")]
    pub since: Option<String>,
    /// Container name
    pub name: String,
}

fn show(line: &str, a: &Args, since: Option<chrono::DateTime<chrono::Utc>>) {
    let l = logfile::parse(line);
    if since.is_some_and(|s| l.time.is_none_or(|t| t < s)) {
        return;
    }
    if a.timestamps {
        println!("{line}");
    } else if l.stream == "stderr" {
        eprintln!("{}", l.text);
    } else {
        println!("{}", l.text);
    }
}

pub fn run(a: Args, ctx: &Ctx) -> Result<i32> {
    crate::state::id::validate(&a.name)?;
    let dir = crate::admin::admin_dir_of(ctx, &a.name)
        .or_else(|| crate::admin::admin_dir(ctx, &a.name).ok().filter(|d| d.join("config.json").exists()));
    let Some(dir) = dir else {
        bail!("container {} does not exist (or was not created with --name)", a.name);
    };
    follow_file(&dir.join(LOG), &a, ctx, None)
}

/// Prints the file (filtered), then with --follow keeps reading while the
/// container is not stopped; stops also when the log is removed (delete).
/// With `from`, only what was written after that offset.
pub fn follow_file(path: &std::path::Path, a: &Args, ctx: &Ctx, from: Option<u64>) -> Result<i32> {
    let since = a.since.as_deref().map(logfile::parse_since).transpose()?;
    let f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !a.follow => return Ok(0),
        Err(e) => return Err(e).with_context(|| format!("opening {}", path.display())),
    };
    let mut r = BufReader::new(f);
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
    let skip = a.tail.map(|n| lines.len().saturating_sub(n)).unwrap_or(0);
    for l in &lines[skip..] {
        show(l, a, since);
    }
    if !a.follow {
        return Ok(0);
    }
    let mut pos = r.stream_position()?;
    loop {
        let done = !running(ctx, &a.name);
        let mut f = std::fs::File::open(path).map(BufReader::new);
        if let Ok(f) = f.as_mut() {
            f.seek(SeekFrom::Start(pos))?;
            let mut partial = String::new();
            while f.read_line(&mut partial)? > 0 {
                if !partial.ends_with('\n') {
                    break;
                }
                pos += partial.len() as u64;
                show(partial.trim_end_matches('\n'), a, since);
                partial.clear();
            }
        }
        if done || f.is_err() {
            return Ok(0);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn running(ctx: &Ctx, id: &str) -> bool {
    use crate::state::Status;
    let Ok(rec) = ctx.store().and_then(|s| s.lock(id)).and_then(|l| l.load()) else { return false };
    !matches!(crate::container::status(&rec), Status::Stopped)
}

/// `start --attach`: starts, then prints the new output until the
/// container stops; returns its exit code.
pub fn start_attached(ctx: &Ctx, id: &str, dir: &std::path::Path) -> Result<i32> {
    let from = std::fs::metadata(dir.join(LOG)).map(|m| m.len()).unwrap_or(0);
    crate::admin::lifecycle::launch(ctx, id, dir)?;
    let a = Args { follow: true, timestamps: false, tail: None, since: None, name: id.to_string() };
    follow_file(&dir.join(LOG), &a, ctx, Some(from))?;
    // The monitor records the status just after the container is reaped.
    for _ in 0..50 {
        if let Ok(d) = std::fs::read(dir.join(logfile::EXIT)) {
            let v: serde_json::Value = serde_json::from_slice(&d).context("exit.json")?;
            return Ok(v["exitCode"].as_i64().unwrap_or(0) as i32);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(0)
}
