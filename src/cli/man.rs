//! `nexcage man`: the man page, rendered from the clap definition so it
//! always lists every command and flag (man/nexcage.8 is this output).

use std::fmt::Write;

use anyhow::Result;
use clap::Command;

fn esc(s: &str) -> String {
    s.replace('\\', "\\\\").replace('-', "\\-").replace('\'', "\\(aq")
}

fn arg_synopsis(a: &clap::Arg) -> String {
    let names = match (a.get_short(), a.get_long()) {
        (Some(s), Some(l)) => format!("\\fB\\-{s}\\fR, \\fB\\-\\-{}\\fR", esc(l)),
        (None, Some(l)) => format!("\\fB\\-\\-{}\\fR", esc(l)),
        (Some(s), None) => format!("\\fB\\-{s}\\fR"),
        (None, None) => return format!("\\fI{}\\fR", esc(a.get_id().as_str()).to_uppercase()),
    };
    let takes_value = a.get_num_args().is_some_and(|n| n.takes_values()) && !matches!(a.get_action(), clap::ArgAction::SetTrue | clap::ArgAction::Help | clap::ArgAction::Version);
    match (takes_value, a.get_value_names()) {
        (true, Some(v)) => format!("{names} \\fI{}\\fR", esc(&v.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(" "))),
        (true, None) => format!("{names} \\fI{}\\fR", esc(a.get_id().as_str()).to_uppercase()),
        _ => names,
    }
}

fn render_args(out: &mut String, cmd: &Command, skip_global: bool) {
    for a in cmd.get_arguments() {
        if a.is_hide_set() || a.get_id() == "help" || (skip_global && a.is_global_set()) {
            continue;
        }
        let mut help = a.get_help().map(|h| h.to_string()).unwrap_or_default();
        let defaults: Vec<String> = a.get_default_values().iter().map(|v| v.to_string_lossy().into_owned()).collect();
        if !defaults.is_empty() && !matches!(a.get_action(), clap::ArgAction::SetTrue) {
            let _ = write!(help, " (default: {})", defaults.join(","));
        }
        let pv: Vec<String> = a.get_possible_values().iter().map(|p| p.get_name().to_string()).collect();
        if !pv.is_empty() && !matches!(a.get_action(), clap::ArgAction::SetTrue) {
            let _ = write!(help, " [{}]", pv.join(", "));
        }
        let _ = writeln!(out, ".TP\n{}\n{}", arg_synopsis(a), esc(&help));
    }
}

fn render_sub(out: &mut String, path: &str, cmd: &Command) {
    let name = format!("{path} {}", cmd.get_name());
    let _ = writeln!(out, ".SS \"{}\"", esc(&name));
    if let Some(about) = cmd.get_about() {
        let _ = writeln!(out, "{}", esc(&about.to_string()));
    }
    let positional: Vec<String> = cmd
        .get_positionals()
        .filter(|a| !a.is_hide_set())
        .map(|a| {
            let n = esc(a.get_id().as_str()).to_uppercase();
            if a.is_required_set() { n } else { format!("[{n}]") }
        })
        .collect();
    let _ = writeln!(out, ".PP\n\\fB{}\\fR [\\fIOPTIONS\\fR] {}", esc(&name), positional.join(" "));
    render_args(out, cmd, true);
    for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help" && !s.is_hide_set()) {
        render_sub(out, &name, sub);
    }
}

pub fn render() -> String {
    let mut cmd = super::command();
    cmd.build();
    let mut out = String::new();
    let _ = writeln!(out, ".TH NEXCAGE 8 \"\" \"nexcage {}\" \"System Administration\"", env!("CARGO_PKG_VERSION"));
    let _ = writeln!(out, ".SH NAME\nnexcage \\- OCI runtime with runc\\(aqs command line: Proxmox LXC guests on ZFS, or native containers");
    let _ = writeln!(out, ".SH SYNOPSIS\n\\fBnexcage\\fR [\\fIGLOBAL OPTIONS\\fR] \\fICOMMAND\\fR [\\fIOPTIONS\\fR] [\\fIARGS\\fR]");
    let _ = writeln!(out, ".SH DESCRIPTION\nnexcage follows the OCI runtime create/start/state/kill/delete contract with runc\\(aqs flags, so containerd, CRI\\-O, Podman and administrators can drive it. Errors go to stderr as one line and, with \\fB\\-\\-log\\fR, to the log file in runc\\(aqs format.");
    let _ = writeln!(out, ".SH GLOBAL OPTIONS");
    render_args(&mut out, &cmd, false);
    let _ = writeln!(out, ".SH COMMANDS");
    for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help" && !s.is_hide_set()) {
        render_sub(&mut out, "nexcage", sub);
    }
    let _ = writeln!(out, ".SH ENVIRONMENT\n.TP\n\\fBNEXCAGE_CONFIG\\fR\nnexcage\\(aqs configuration file (default /etc/nexcage/config.json).\n.TP\n\\fBNEXCAGE_LOG_LEVEL\\fR\nlog level (a tracing filter such as info or debug) when neither \\fB\\-\\-debug\\fR nor \\fB\\-\\-verbose\\fR is given (default warn).\n.TP\n\\fBNEXCAGE_STORAGE_PATH\\fR\nimage store directory (default /var/lib/nexcage).");
    let _ = writeln!(out, ".SH EXIT STATUS\n0 on success; 1 on a runtime error; 2 on a usage error; \\fBrun\\fR and foreground \\fBexec\\fR return the container process\\(aqs status (128+N when killed by signal N).");
    let _ = writeln!(out, ".SH SEE ALSO\nrunc(8), crun(1), pct(1), lxc\\-execute(1)");
    out
}

pub fn run() -> Result<i32> {
    print!("{}", render());
    Ok(0)
}
