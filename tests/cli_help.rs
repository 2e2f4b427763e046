//! Every subcommand's `--help` through the real binary (no command may
//! panic on its own help), and `--version`'s git stamp.

use std::process::Command;

fn nexcage(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_nexcage")).args(args).env_remove("NEXCAGE_CONFIG").output().unwrap()
}

/// The names listed under `Commands:` in a help text (clap's layout).
fn subcommands(help: &str) -> Vec<String> {
    help.lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter(|l| !l.starts_with("   "))
        .filter_map(|l| l.split_whitespace().next().map(String::from))
        .filter(|n| n != "help")
        .collect()
}

#[test]
fn help_of_every_subcommand() {
    let mut todo = vec![Vec::<String>::new()];
    let mut seen = 0;
    while let Some(path) = todo.pop() {
        let mut args: Vec<&str> = path.iter().map(String::as_str).collect();
        args.push("--help");
        let o = nexcage(&args);
        let out = String::from_utf8_lossy(&o.stdout);
        assert_eq!(o.status.code(), Some(0), "{args:?}: {out}{}", String::from_utf8_lossy(&o.stderr));
        let usage = format!("Usage: nexcage {}", path.join(" "));
        assert!(out.contains(usage.trim_end()), "{args:?} prints its usage: {out}");
        for s in subcommands(&out) {
            let mut p = path.clone();
            p.push(s);
            todo.push(p);
        }
        seen += 1;
    }
    // The tree has dozens of commands; a parse of `Commands:` that found
    // none would make this test vacuous.
    assert!(seen > 70, "only {seen} commands found");
}

#[test]
fn version_names_the_commit_of_a_checkout() {
    let o = nexcage(&["--version"]);
    let out = String::from_utf8_lossy(&o.stdout);
    let commit = out.lines().find_map(|l| l.strip_prefix("commit: ")).expect("a commit line");
    let checkout = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(".git").exists();
    if checkout && std::env::var_os("NEXCAGE_COMMIT").is_none() {
        let hex = commit.trim_end_matches("-dirty");
        assert!(hex.len() == 40 && hex.chars().all(|c| c.is_ascii_hexdigit()), "{out}");
    }
}

#[test]
fn unknown_global_flag_shows_the_real_usage() {
    let o = nexcage(&["--verbos"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2));
    assert!(err.contains("usage: nexcage [OPTIONS] [COMMAND]") && !err.contains("--version"), "{err}");
    let o = nexcage(&["image", "pull", "--retries", "3"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("(usage: nexcage image pull [OPTIONS] <REFERENCE>)"), "{err}");
}

#[test]
fn hidden_monitor_and_its_public_name() {
    // The internal supervisor has a hidden name; `monitor` is the guide's live stats.
    let o = nexcage(&["__monitor", "--help"]);
    assert_eq!(o.status.code(), Some(0));
    let o = nexcage(&["monitor", "--help"]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success() && out.contains("--no-stream"), "{out}");
}

#[test]
fn each_cause_printed_once() {
    let d = tempfile::tempdir().unwrap();
    let cfg = d.path().join("config.json");
    std::fs::write(&cfg, "{}").unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_nexcage"))
        .args(["image", "import", "/nonexistent/my-image.tar"])
        .env("NEXCAGE_STORAGE_PATH", d.path())
        .env("NEXCAGE_CONFIG", &cfg)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("/nonexistent/my-image.tar"), "{err}");
    assert_eq!(err.matches("(os error 2)").count(), 1, "{err}");
}

/// A reader that went away (`nexcage features | head -1`) ends the command
/// quietly with 141, as runc (Go: death by SIGPIPE): no panic message. The
/// pipe's read end is closed before the command starts, so every write fails.
#[test]
fn closed_stdout_exits_quietly() {
    let root = tempfile::tempdir().unwrap();
    let r = root.path().to_str().unwrap();
    for args in [&["features"][..], &["man"], &["completion", "bash"], &["--root", r, "list"], &["--root", r, "list", "--format", "json"]] {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let o = Command::new(env!("CARGO_BIN_EXE_nexcage"))
            .args(args)
            .env_remove("NEXCAGE_CONFIG")
            .stdout(writer)
            .stderr(std::process::Stdio::piped())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.is_empty(), "{args:?}: nothing on stderr: {err}");
        assert_eq!(o.status.code(), Some(141), "{args:?}: {err}");
    }
}

/// Arguments a fresh-clone tester found crashing or unclear: an `events
/// --interval` too long for a Duration is a usage error (exit 2), not a
/// panic (exit 134 with panic=abort); `spec -b DIR` names the missing DIR.
#[test]
fn overflowing_interval_and_missing_spec_dir_are_clear_errors() {
    let o = nexcage(&["--root", "/nonexistent", "events", "--interval", "99999999999999999h", "x"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("too long") && !err.contains("panicked"), "{err}");
    let o = nexcage(&["spec", "-b", "/nonexistent/spec-dir"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("/nonexistent/spec-dir"), "{err}");
}
