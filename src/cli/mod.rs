//! The runc-compatible command line: global flags, one file per command.

mod autostart;
mod completion;
mod config;
mod create;
mod delete;
mod epipe;
mod events;
mod exec;
mod features;
mod gc;
mod handoff;
mod hook;
mod image;
mod info;
mod kill;
mod list;
mod login;
mod logs;
mod man;
mod memory;
mod monitor;
mod network;
mod pause;
mod performance;
mod ps;
mod restart;
mod run;
mod spec;
mod start;
mod state;
mod stats;
mod stop;
mod system;
mod table;
mod target;
mod update;
mod zfs;

use std::path::PathBuf;

use anyhow::Result;
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

pub use crate::context::Ctx;
use crate::logging::{self, LogFormat, Sink};

pub const SPEC_VERSION: &str = "1.2.0";

#[derive(Parser, Debug)]
#[command(name = "nexcage", about = "OCI runtime: Proxmox LXC guests on ZFS, or native containers", disable_version_flag = true)]
pub struct Cli {
    /// Root directory for container state
    #[arg(long, global = true, default_value = "/run/nexcage", value_name = "DIR")]
    pub root: PathBuf,
    /// Log file (created even when the command fails early; "" means none, as with runc)
    #[arg(long, global = true, value_name = "FILE", value_parser = log_path)]
    pub log: Option<PathBuf>,
    /// Log format
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Enable debug logging
    #[arg(long, global = true)]
    pub debug: bool,
    /// Info-level logs (NEXCAGE_LOG_LEVEL sets any level)
    #[arg(long, global = true)]
    pub verbose: bool,
    /// Use systemd for cgroups (cgroupsPath as slice:prefix:name)
    #[arg(long, global = true)]
    pub systemd_cgroup: bool,
    /// Rootless mode: true, false or auto
    #[arg(long, global = true, value_parser = ["true", "false", "auto"], value_name = "VALUE")]
    pub rootless: Option<String>,
    /// nexcage's own configuration file (default /etc/nexcage/config.json);
    /// before the command, since `image inspect --config` is a flag of its own
    #[arg(long, value_name = "FILE", env = "NEXCAGE_CONFIG")]
    pub config: Option<PathBuf>,
    /// Print the version
    #[arg(short = 'v', long)]
    pub version: bool,
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// `--log`'s value as given: an empty one is accepted and means no log
/// file (runc's `--log ""`), which clap's PathBuf parser would refuse.
fn log_path(v: &str) -> Result<PathBuf, std::convert::Infallible> {
    Ok(PathBuf::from(v))
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create a container from a bundle
    Create(create::Args),
    /// Start a created container
    Start(start::Args),
    /// Print the state of a container as JSON
    State(state::Args),
    /// Send a signal to the container's init (or all its processes)
    Kill(kill::Args),
    /// Delete a container and everything create made
    Delete(delete::Args),
    /// Create and start a container; wait for it unless --detach
    Run(run::Args),
    /// Run a new process inside a container
    Exec(exec::Args),
    /// List the processes of a container
    Ps(ps::Args),
    /// List containers
    List(list::Args),
    /// Freeze all processes of a container
    Pause(pause::Args),
    /// Thaw a paused container
    Resume(pause::Args),
    /// Print container events and resource statistics
    Events(events::Args),
    /// Update a container's resource limits
    Update(update::Args),
    /// Print the features this runtime supports (JSON)
    Features,
    /// Remove what crashed Proxmox-backend containers left behind
    Gc(gc::Args),
    /// Write a default config.json
    Spec(spec::Args),
    /// Print shell completions
    Completion(completion::Args),
    /// Print the man page (roff), generated from this command line
    Man,
    /// Manage OCI images (pull, list, inspect, remove, import, export, unpack, ...)
    Image {
        #[command(subcommand)]
        cmd: image::ImageCommand,
    },
    /// Inspect and validate image layers
    Layer {
        #[command(subcommand)]
        cmd: image::layer::LayerCommand,
    },
    /// Image cache statistics and cleanup
    Cache {
        #[command(subcommand)]
        cmd: image::cache::CacheCommand,
    },
    /// Admin: print the output of a container created with --name
    Logs(logs::Args),
    /// Admin: stop a container (SIGTERM, SIGKILL after --timeout)
    Stop(stop::Args),
    /// Admin: stop and start again a container created with --name
    Restart(restart::Args),
    /// Admin: details of a container (resources enforced, pids, uptime, exit)
    Info(info::Args),
    /// Admin: CPU, memory, pids and I/O of running containers (live; alias: monitor)
    #[command(alias = "monitor")]
    Stats(stats::Args),
    /// Admin: show, get or set nexcage's configuration
    Config {
        #[command(subcommand)]
        cmd: config::Cmd,
    },
    /// Admin: check this node (alias: debug info)
    #[command(alias = "debug")]
    System {
        #[command(subcommand)]
        cmd: system::Cmd,
    },
    /// Admin: store registry credentials (containers auth.json)
    Login(login::LoginArgs),
    /// Admin: remove stored registry credentials
    Logout(login::LogoutArgs),
    /// Admin: snapshots, rollbacks and clones of container rootfs datasets
    Zfs {
        #[command(subcommand)]
        cmd: zfs::Cmd,
    },
    /// Admin: start the containers created with --auto-start (at boot)
    Autostart(autostart::Args),
    /// Admin: reach the registries and the Proxmox API
    Network {
        #[command(subcommand)]
        cmd: network::NetworkCmd,
    },
    /// Admin: check the stored registry credentials
    Registry {
        #[command(subcommand)]
        cmd: network::RegistryCmd,
    },
    /// Admin: load and pressure, and create/start/delete timings
    Performance {
        #[command(subcommand)]
        cmd: performance::Cmd,
    },
    /// Admin: memory of nexcage's processes and the containers
    Memory {
        #[command(subcommand)]
        cmd: memory::Cmd,
    },
    /// Refused: there is no global tuning knob (see its message)
    Optimize,
    /// Internal: the monitor of a container created with --name
    #[command(name = monitor::NAME, hide = true)]
    Supervise(monitor::Args),
    /// Internal: relays an OCI hook with the state the spec asks for
    #[command(hide = true, name = "__hook")]
    Hook(hook::Args),
}

pub fn version_text() -> String {
    format!(
        "nexcage version {}\ncommit: {}\nspec: {}\n",
        env!("CARGO_PKG_VERSION"),
        option_env!("NEXCAGE_COMMIT").unwrap_or("unknown"),
        SPEC_VERSION
    )
}

pub fn command() -> clap::Command {
    Cli::command()
}

/// Runs the command line; returns the process exit status.
pub fn main() -> i32 {
    epipe::install();
    let args: Vec<String> = std::env::args().collect();
    let _attach_lock = create::early_attach_lock(&args);
    let mut cmd = command();
    let parsed = cmd
        .try_get_matches_from_mut(&args)
        .and_then(|mut m| Cli::from_arg_matches_mut(&mut m).map_err(|e| e.format(&mut cmd)));
    // The process ends after this one command: freeing the whole command tree
    // (every subcommand's arguments) would cost a quarter of what building
    // and parsing it did (callgrind, BENCHMARKS.md), for memory the exit
    // returns anyway.
    std::mem::forget(cmd);
    let cli = match parsed {
        Ok(c) => c,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
                let _ = e.print();
                return 0;
            }
            let (path, format) = logging::early_log_target(&args[1.min(args.len())..]);
            let sink = Sink::open(path.as_deref(), format).unwrap_or_else(|_| Sink::open(None, format).expect("stderr sink"));
            let msg = usage_line(&e.render().to_string(), &usage_of(&args));
            if sink.has_file() {
                sink.write("error", &msg);
            }
            eprintln!("nexcage: {msg}");
            return 2;
        }
    };
    let sink = match Sink::open(cli.log.as_deref(), cli.log_format) {
        Ok(s) => s,
        Err(e) => {
            let path = cli.log.as_deref().unwrap_or(std::path::Path::new("")).display();
            eprintln!("nexcage: cannot open log file {path}: {e}");
            return 1;
        }
    };
    logging::init(&sink, logging::level(cli.debug, cli.verbose));
    if cli.version {
        print!("{}", version_text());
        return 0;
    }
    let Some(command) = cli.command else {
        let _ = command().print_help();
        return 2;
    };
    let rootless = cli.rootless.as_deref() == Some("true");
    // Like runc (filepath.Abs): a relative --root must not follow the
    // backend's chdir into the bundle, or state splits across two dirs.
    let root = std::path::absolute(&cli.root).unwrap_or(cli.root);
    let ctx = Ctx { root, systemd_cgroup: cli.systemd_cgroup, rootless, config_path: cli.config };
    tracing::debug!(?command, "dispatch");
    // runc exits 255 when exec itself fails ("exec failed: ..."), so the
    // program's own statuses (126, 127, ...) stay apart from the runtime's.
    let failed = if matches!(command, Command::Exec(_)) { 255 } else { 1 };
    match dispatch(command, &ctx) {
        Ok(code) => code,
        Err(e) => {
            logging::report_error(&sink, &logging::error_text(&e));
            failed
        }
    }
}

/// Condenses clap's multi-line usage error into one line: the message,
/// then `usage` (see [`usage_of`]), not clap's usage line, which lists
/// the flags that were given as if they were required.
fn usage_line(rendered: &str, usage: &str) -> String {
    let msg: Vec<_> = rendered
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("Usage: ") && !l.starts_with("tip:") && !l.starts_with("For more information"))
        .map(|l| l.trim_start_matches("error: "))
        .collect();
    format!("{} (usage: {usage})", msg.join(" "))
}

/// The synopsis of the deepest subcommand named in `args`, e.g.
/// `nexcage image pull [OPTIONS] <REFERENCE>`: only what is required.
fn usage_of(args: &[String]) -> String {
    let mut root = command();
    root.build();
    let mut cur = &root;
    let mut it = args.iter().skip(1);
    while let Some(a) = it.next() {
        if a == "--" {
            break;
        }
        if let Some(flag) = a.strip_prefix('-') {
            let takes_value = !a.contains('=')
                && cur.get_arguments().any(|x| {
                    let hit = match flag.strip_prefix('-') {
                        Some(long) => x.get_long() == Some(long),
                        None => flag.len() == 1 && x.get_short().is_some_and(|c| flag.starts_with(c)),
                    };
                    hit && x.get_action().takes_values()
                });
            if takes_value {
                it.next();
            }
            continue;
        }
        let Some(next) = cur.find_subcommand(a) else { break };
        cur = next;
    }
    cur.clone().render_usage().to_string().trim_start_matches("Usage: ").to_string()
}

fn dispatch(command: Command, ctx: &Ctx) -> Result<i32> {
    match command {
        Command::Create(a) => create::run(a, ctx),
        Command::Start(a) => start::run(a, ctx),
        Command::State(a) => state::run(a, ctx),
        Command::Kill(a) => kill::run(a, ctx),
        Command::Delete(a) => delete::run(a, ctx),
        Command::Run(a) => run::run(a, ctx),
        Command::Exec(a) => exec::run(a, ctx),
        Command::Ps(a) => ps::run(a, ctx),
        Command::List(a) => list::run(a, ctx),
        Command::Pause(a) => pause::pause(a, ctx),
        Command::Resume(a) => pause::resume(a, ctx),
        Command::Events(a) => events::run(a, ctx),
        Command::Update(a) => update::run(a, ctx),
        Command::Features => features::run(),
        Command::Gc(a) => gc::run(a, ctx),
        Command::Spec(a) => spec::run(a, ctx.rootless),
        Command::Completion(a) => completion::run(a),
        Command::Man => man::run(),
        Command::Image { cmd } => image::run(image_defaults(cmd, ctx), &ctx.image_store()?),
        Command::Layer { cmd } => image::layer::run(cmd, ctx),
        Command::Cache { cmd } => image::cache::run(cmd, &ctx.image_store()?),
        Command::Logs(a) => logs::run(a, ctx),
        Command::Stop(a) => stop::run(a, ctx),
        Command::Restart(a) => restart::run(a, ctx),
        Command::Info(a) => info::run(a, ctx),
        Command::Stats(a) => stats::run(a, ctx),
        Command::Config { cmd } => config::run(cmd, ctx),
        Command::System { cmd } => system::run(cmd, ctx),
        Command::Login(a) => login::login(a, ctx),
        Command::Logout(a) => login::logout(a, ctx),
        Command::Autostart(a) => autostart::run(a, ctx),
        Command::Zfs { cmd } => zfs::run(cmd, ctx),
        Command::Supervise(a) => monitor::run(a, ctx),
        Command::Hook(a) => hook::run(a),
        Command::Network { cmd } => network::network(cmd, ctx),
        Command::Registry { cmd } => network::registry(cmd, ctx),
        Command::Performance { cmd } => performance::run(cmd, ctx),
        Command::Memory { cmd } => memory::run(cmd, ctx),
        Command::Optimize => anyhow::bail!("optimize: nexcage has no global tuning to apply; use `nexcage cache optimize` for the image store and `nexcage update` for a container's limits"),
    }
}

/// `image unpack --zfs` without `--dataset` / `--unprivileged`, `image pull`
/// without `--jobs`: from the config.
fn image_defaults(mut cmd: image::ImageCommand, ctx: &Ctx) -> image::ImageCommand {
    if let image::ImageCommand::Pull(a @ image::pull::Args { jobs: None, .. }) = &mut cmd {
        a.jobs = ctx.config().ok().map(|c| c.parallel.jobs() as u32);
    }
    if let image::ImageCommand::Unpack(a @ image::unpack::Args { zfs: true, .. }) = &mut cmd {
        let cfg = ctx.config().ok();
        if a.dataset.is_none() {
            a.dataset = cfg.as_ref().and_then(|c| c.storage.zfs_parent());
        }
        if a.unprivileged.is_none() {
            a.unprivileged = Some(cfg.as_ref().is_none_or(|c| c.unprivileged()));
        }
    }
    cmd
}

#[cfg(test)]
mod tests {
    /// clap's own consistency check over the whole command tree: a clash
    /// such as two arguments with one id (`image inspect --config` vs the
    /// global `--config`) panics here instead of at a user's prompt.
    #[test]
    fn command_tree_is_consistent() {
        super::command().debug_assert();
    }

    #[test]
    fn usage_names_only_what_is_required() {
        let args = |s: &str| s.split(' ').map(String::from).collect::<Vec<_>>();
        assert_eq!(super::usage_of(&args("nexcage image pull --retries 3")), "nexcage image pull [OPTIONS] <REFERENCE>");
        assert_eq!(super::usage_of(&args("nexcage --root /r start --attach")), "nexcage start [OPTIONS] <ID>");
        assert_eq!(super::usage_of(&args("nexcage --bogus")), "nexcage [OPTIONS] [COMMAND]");
    }

    #[test]
    fn each_cause_once() {
        let io = std::io::Error::from(std::io::ErrorKind::NotFound);
        let e = anyhow::Error::new(std::io::Error::other(format!("/x: {io}"))).context("importing");
        assert_eq!(crate::logging::error_text(&e), format!("importing: /x: {io}"));
    }
}
