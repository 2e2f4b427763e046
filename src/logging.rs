//! runc-shaped logging: `--log FILE` with `--log-format text|json`.
//!
//! Engines read the last `"level":"error"` line of the log file (containerd)
//! or parse it as one JSON object (Podman), so without `--debug` only warnings
//! and the final error are written.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::prelude::*;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Default)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// Where log lines go: the `--log` file, or stderr when there is none.
#[derive(Clone)]
pub struct Sink {
    file: Option<Arc<Mutex<File>>>,
    format: LogFormat,
}

impl Sink {
    /// Opens (creating) the log file so it exists even after an early
    /// failure. Its directory must exist: runc opens `--log` with
    /// O_CREAT and fails on a missing directory, creating none. An empty
    /// path means no file, as runc's `--log ""`.
    pub fn open(path: Option<&Path>, format: LogFormat) -> io::Result<Sink> {
        let file = match path.filter(|p| !p.as_os_str().is_empty()) {
            Some(p) => {
                Some(Arc::new(Mutex::new(
                    OpenOptions::new().create(true).append(true).open(p)?,
                )))
            }
            None => None,
        };
        Ok(Sink { file, format })
    }

    pub fn has_file(&self) -> bool {
        self.file.is_some()
    }

    /// Writes one record in runc's shape.
    pub fn write(&self, level: &str, msg: &str) {
        let line = format_line(self.format, level, msg);
        match &self.file {
            Some(f) => {
                if let Ok(mut f) = f.lock() {
                    let _ = f.write_all(line.as_bytes());
                }
            }
            None => {
                let _ = io::stderr().write_all(line.as_bytes());
            }
        }
    }
}

fn now() -> String {
    chrono::Local::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

pub fn format_line(format: LogFormat, level: &str, msg: &str) -> String {
    match format {
        LogFormat::Json => {
            let v = serde_json::json!({"level": level, "msg": msg, "time": now()});
            format!("{v}\n")
        }
        LogFormat::Text => format!(
            "time=\"{}\" level={} msg={}\n",
            now(),
            level,
            serde_json::Value::String(msg.to_string())
        ),
    }
}

/// An error and its causes, `: `-separated, each cause once: a cause whose
/// text the previous one already contains (thiserror's `{source}`) is skipped.
pub fn error_text(e: &anyhow::Error) -> String {
    let mut out = String::new();
    let mut prev = String::new();
    for cause in e.chain() {
        let t = cause.to_string();
        if !prev.is_empty() && prev.contains(&t) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&t);
        prev = t;
    }
    out
}

/// Reports the final error: one line on stderr, and one error record in the log.
pub fn report_error(sink: &Sink, msg: &str) {
    let _ = writeln!(io::stderr(), "nexcage: {msg}");
    if sink.has_file() {
        sink.write("error", msg);
    }
}

struct SinkLayer {
    sink: Sink,
}

#[derive(Default)]
struct MsgVisitor {
    msg: String,
    fields: Vec<String>,
}

impl Visit for MsgVisitor {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.msg = format!("{value:?}");
        } else {
            self.fields.push(format!("{}={:?}", field.name(), value));
        }
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.msg = value.to_string();
        } else {
            self.fields.push(format!("{}={}", field.name(), value));
        }
    }
}

impl<S: Subscriber> Layer<S> for SinkLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let mut v = MsgVisitor::default();
        event.record(&mut v);
        let mut msg = v.msg;
        if !v.fields.is_empty() {
            msg = format!("{msg} {}", v.fields.join(" "));
        }
        let level = match *event.metadata().level() {
            Level::ERROR => "error",
            Level::WARN => "warning",
            Level::INFO => "info",
            Level::DEBUG => "debug",
            Level::TRACE => "trace",
        };
        self.sink.write(level, &msg);
    }
}

/// The log directive: `debug` with `--debug`, `info` with `--verbose`,
/// else `NEXCAGE_LOG_LEVEL` (a tracing filter such as `info` or `debug`),
/// else `warn`.
pub fn level(debug: bool, verbose: bool) -> String {
    if debug {
        "debug".to_string()
    } else if verbose {
        "info".to_string()
    } else {
        std::env::var("NEXCAGE_LOG_LEVEL").unwrap_or_else(|_| "warn".to_string())
    }
}

/// Installs the tracing subscriber at `directive` (see [`level`]);
/// libcontainer's own error chatter is folded into our final error message
/// instead of being logged twice, except at debug level.
pub fn init(sink: &Sink, directive: String) {
    let lib = if directive == "debug" { "debug" } else { "off" };
    let filter = tracing_subscriber::EnvFilter::try_new(format!(
        "{directive},libcontainer={lib},libcgroups={lib}"
    ))
    .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let layer = SinkLayer { sink: sink.clone() };
    let _ = tracing_subscriber::registry().with(filter).with(layer).try_init();
}

/// Finds `--log FILE` / `--log=FILE` in raw arguments, for errors that happen
/// before clap has parsed them (the log file must exist even then).
pub fn early_log_target(args: &[String]) -> (Option<PathBuf>, LogFormat) {
    let mut path = None;
    let mut format = LogFormat::Text;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == "--log" {
            path = it.next().map(PathBuf::from);
        } else if let Some(v) = a.strip_prefix("--log=") {
            path = Some(PathBuf::from(v));
        } else if a == "--log-format" {
            if it.next().map(String::as_str) == Some("json") {
                format = LogFormat::Json;
            }
        } else if a == "--log-format=json" {
            format = LogFormat::Json;
        }
    }
    (path, format)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_line_has_runc_shape() {
        let l = format_line(LogFormat::Json, "error", "container not running");
        let v: serde_json::Value = serde_json::from_str(l.trim()).unwrap();
        assert_eq!(v["level"], "error");
        assert_eq!(v["msg"], "container not running");
        assert!(chrono::DateTime::parse_from_rfc3339(v["time"].as_str().unwrap()).is_ok());
        assert_eq!(v.as_object().unwrap().len(), 3);
    }

    #[test]
    fn early_target_found() {
        let a: Vec<String> = ["--log", "/x/l.json", "--log-format", "json", "bogus"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let (p, f) = early_log_target(&a);
        assert_eq!(p, Some(PathBuf::from("/x/l.json")));
        assert_eq!(f, LogFormat::Json);
    }
}
