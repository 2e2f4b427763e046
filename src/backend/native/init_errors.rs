//! libcontainer's errors keep their cause. The container's init reports a
//! failure to the runtime as one line, the top of its error chain ("failed
//! to unix syscall", "io error"); the operation, path and errno are only in
//! the `tracing::error!` events libcontainer emits on the way. While
//! libcontainer builds a container or an exec'd process, nexcage records
//! those events (also from the processes it forks, which inherit the
//! thread's subscriber) into a file in the state dir and adds them to the
//! error, so each one names what failed, on what, and the OS error.

use std::fmt::Write as _;
use std::fs::File;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::Layer;

/// Runs `f` with libcontainer's error events recorded into `file`; with
/// `--debug` (libcontainer's events already logged) it only runs `f`.
pub fn capture<T>(file: &Path, f: impl FnOnce() -> T) -> T {
    if tracing::enabled!(target: "libcontainer", Level::DEBUG) {
        return f();
    }
    let Ok(out) = File::create(file) else { return f() };
    let targets = Targets::new().with_target("libcontainer", Level::ERROR).with_target("libcgroups", Level::ERROR);
    let subscriber = tracing_subscriber::registry().with(Recorder { out }.with_filter(targets));
    tracing::subscriber::with_default(subscriber, f)
}

/// The recorded events, oldest first, each once; the file is removed.
pub fn take(file: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(file).unwrap_or_default();
    let _ = std::fs::remove_file(file);
    let mut seen: Vec<String> = Vec::new();
    for l in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if !seen.iter().any(|s| s == l) {
            seen.push(l.to_string());
        }
    }
    seen
}

/// `err` with the recorded causes it does not already say.
pub fn with_causes(err: anyhow::Error, causes: &[String]) -> anyhow::Error {
    let msg = format!("{err:#}");
    let extra: Vec<&str> = causes
        .iter()
        .map(String::as_str)
        // the init's one-line report, echoed back by the parent: not a cause
        .filter(|c| !msg.contains(*c) && !c.contains("exec process failed") && !c.starts_with("failed to initialize container process"))
        .take(2)
        .collect();
    if extra.is_empty() {
        err
    } else {
        anyhow::anyhow!("{msg} ({})", extra.join("; "))
    }
}

/// Where `capture` writes for the container in `dir`.
pub fn file_in(dir: &Path) -> PathBuf {
    dir.join(format!("libcontainer-errors-{}", std::process::id()))
}

struct Recorder {
    out: File,
}

impl<S: Subscriber> Layer<S> for Recorder {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let mut v = Line::default();
        event.record(&mut v);
        let _ = writeln!(&self.out, "{}{}", v.msg, v.fields);
    }
}

#[derive(Default)]
struct Line {
    msg: String,
    fields: String,
}

impl Visit for Line {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.msg, "{value:?}");
        } else {
            let _ = write!(self.fields, " {}={value:?}", field.name());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn causes_are_recorded_and_added_once() {
        let f = std::env::temp_dir().join(format!("nexcage-init-errors-{}", std::process::id()));
        capture(&f, || {
            tracing::error!(target: "libcontainer::process", path = "/x", "failed to chdir");
            tracing::error!(target: "libcontainer::process", path = "/x", "failed to chdir");
            tracing::error!(target: "nexcage", "not ours");
        });
        let causes = take(&f);
        assert_eq!(causes, vec!["failed to chdir path=\"/x\""]);
        let e = with_causes(anyhow::anyhow!("failed to unix syscall"), &causes);
        assert_eq!(e.to_string(), "failed to unix syscall (failed to chdir path=\"/x\")");
        assert!(!f.exists());
    }
}
