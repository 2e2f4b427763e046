//! Case registry and the runner.

use crate::bundle::Assets;
use crate::ctx::{Ctx, Runtime, Skip};
use crate::host::{remove_cgroups, Host};
use anyhow::{Context, Result};
use std::path::PathBuf;
use std::time::Instant;

pub type CaseFn = fn(&mut Ctx) -> Result<()>;
/// A host probe: Some(reason) when the host cannot support the case.
pub type Requires = fn(&Host) -> Option<String>;

pub struct Case {
    pub name: &'static str,
    pub desc: &'static str,
    pub run: CaseFn,
    pub requires: Option<Requires>,
}

pub fn case(name: &'static str, desc: &'static str, run: CaseFn) -> Case {
    Case { name, desc, run, requires: None }
}

impl Case {
    pub fn requires(mut self, r: Requires) -> Case {
        self.requires = Some(r);
        self
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Pass,
    Fail(String),
    Skip(String),
}

impl Outcome {
    pub fn word(&self) -> &'static str {
        match self {
            Outcome::Pass => "pass",
            Outcome::Fail(_) => "fail",
            Outcome::Skip(_) => "skip",
        }
    }
    pub fn reason(&self) -> &str {
        match self {
            Outcome::Pass => "",
            Outcome::Fail(r) | Outcome::Skip(r) => r,
        }
    }
}

#[derive(Debug, Clone)]
pub struct CaseResult {
    pub case: String,
    pub runtime: String,
    pub outcome: Outcome,
    pub millis: u128,
}

pub struct SuiteOptions {
    /// (name, path)
    pub runtimes: Vec<(String, PathBuf)>,
    /// exact names or prefixes ending in '.' or '*'; empty = all
    pub cases: Vec<String>,
    pub checker: PathBuf,
    /// keep temp dirs (for debugging)
    pub keep: bool,
    /// print a line per case as it finishes
    pub verbose: bool,
}

pub fn all_cases() -> Vec<Case> {
    let mut v = Vec::new();
    v.extend(crate::cases::lifecycle::cases());
    v.extend(crate::cases::process::cases());
    v.extend(crate::cases::fs::cases());
    v.extend(crate::cases::ns::cases());
    v.extend(crate::cases::cgroups::cases());
    v.extend(crate::cases::hooks::cases());
    v.extend(crate::cases::misc::cases());
    v.extend(crate::cases::parity::cases());
    v
}

pub fn selected(filter: &[String]) -> Vec<Case> {
    all_cases()
        .into_iter()
        .filter(|c| {
            filter.is_empty()
                || filter.iter().any(|f| {
                    let f = f.trim_end_matches('*');
                    c.name == f || (f.ends_with('.') && c.name.starts_with(f)) || c.name.starts_with(&format!("{f}."))
                })
        })
        .collect()
}

/// Runs the selected cases against every runtime; returns results in
/// case-major order.
pub fn run_suite(opts: &SuiteOptions) -> Result<Vec<CaseResult>> {
    crate::sys::become_subreaper()?;
    let host = Host::probe()?;
    let assets = Assets::find(&opts.checker)?;
    let cases = selected(&opts.cases);
    if cases.is_empty() {
        anyhow::bail!("no case matches {:?}", opts.cases);
    }
    let pid = std::process::id();
    let cg_prefix = format!("rtt-{pid}");
    let base = std::env::temp_dir().join(&cg_prefix);
    std::fs::create_dir_all(&base).with_context(|| format!("mkdir {}", base.display()))?;
    let mut runtimes = Vec::new();
    for (i, (name, path)) in opts.runtimes.iter().enumerate() {
        let root = base.join(format!("root{i}"));
        std::fs::create_dir_all(&root)?;
        runtimes.push(Runtime { name: name.clone(), path: path.clone(), root });
    }
    let mut results = Vec::new();
    for (ci, case) in cases.iter().enumerate() {
        let skip = case.requires.and_then(|r| r(&host));
        for (ri, rt) in runtimes.iter().enumerate() {
            let started = Instant::now();
            let outcome = if let Some(reason) = &skip {
                Outcome::Skip(reason.clone())
            } else {
                let dir = base.join(format!("r{ri}")).join(format!("{ci}"));
                let o = run_one(case, rt, &host, &assets, dir.clone(), &cg_prefix, ci);
                if !opts.keep {
                    let _ = std::fs::remove_dir_all(&dir);
                }
                o
            };
            if opts.verbose {
                eprintln!(
                    "{:<45} {:<8} {:<4} {}",
                    case.name,
                    rt.name,
                    outcome.word(),
                    outcome.reason().chars().take(150).collect::<String>()
                );
            }
            results.push(CaseResult {
                case: case.name.to_string(),
                runtime: rt.name.clone(),
                outcome,
                millis: started.elapsed().as_millis(),
            });
        }
    }
    let left = remove_cgroups(&host.cgroup_parents(), &cg_prefix);
    if opts.verbose && !left.is_empty() {
        eprintln!("removed {} leftover cgroup dirs", left.len());
    }
    crate::sys::reap_zombies();
    if !opts.keep {
        let _ = std::fs::remove_dir_all(&base);
    } else {
        eprintln!("kept temp dirs under {}", base.display());
    }
    Ok(results)
}

fn run_one(case: &Case, rt: &Runtime, host: &Host, assets: &Assets, dir: PathBuf, cg_prefix: &str, ci: usize) -> Outcome {
    if let Err(e) = std::fs::create_dir_all(&dir) {
        return Outcome::Fail(format!("harness: mkdir {}: {e}", dir.display()));
    }
    let mut ctx = Ctx::new(rt, host, assets, dir, cg_prefix.to_string(), ci);
    // a panicking case is that case's failure, not the end of the suite
    let r = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| (case.run)(&mut ctx))) {
        Ok(r) => r,
        Err(p) => {
            let msg = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            Err(anyhow::anyhow!("harness panic: {msg}"))
        }
    };
    let problems = ctx.cleanup();
    match r {
        Ok(()) if problems.is_empty() => Outcome::Pass,
        Ok(()) => Outcome::Fail(format!("cleanup: {}", problems.join("; "))),
        Err(e) => {
            if let Some(s) = e.downcast_ref::<Skip>() {
                Outcome::Skip(s.0.clone())
            } else {
                Outcome::Fail(format!("{e:#}").replace('\n', " "))
            }
        }
    }
}

/// Where the static checker is: $RTT_CHECKER, or next to the harness's target
/// dir (`<target>/x86_64-unknown-linux-gnu/{release,debug}/rtt-checker`).
pub fn default_checker() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("RTT_CHECKER") {
        return Some(PathBuf::from(p));
    }
    let exe = std::env::current_exe().ok()?;
    let mut dirs: Vec<PathBuf> = exe.ancestors().skip(1).take(4).map(PathBuf::from).collect();
    if let Ok(t) = std::env::var("CARGO_TARGET_DIR") {
        dirs.insert(0, PathBuf::from(t));
    }
    for d in dirs {
        for prof in ["release", "debug"] {
            let p = d.join("x86_64-unknown-linux-gnu").join(prof).join("rtt-checker");
            if p.exists() {
                return Some(p);
            }
        }
    }
    None
}

/// `NAME=PATH` or `PATH` (name = file name).
pub fn parse_runtime(s: &str) -> Result<(String, PathBuf)> {
    let (name, path) = match s.split_once('=') {
        Some((n, p)) => (n.to_string(), PathBuf::from(p)),
        None => {
            let p = PathBuf::from(s);
            let n = p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| s.to_string());
            (n, p)
        }
    };
    let path = if path.components().count() == 1 && !path.exists() {
        // bare name: look it up in PATH
        std::env::var_os("PATH")
            .and_then(|ps| std::env::split_paths(&ps).map(|d| d.join(&path)).find(|p| p.exists()))
            .with_context(|| format!("runtime {s} not found in PATH"))?
    } else {
        path
    };
    let path = std::fs::canonicalize(&path).with_context(|| format!("runtime {}", path.display()))?;
    Ok((name, path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn case_names_are_unique_and_dotted_by_area() {
        let all = all_cases();
        assert!(all.len() >= 60);
        let mut names: Vec<&str> = all.iter().map(|c| c.name).collect();
        names.sort();
        let n = names.len();
        names.dedup();
        assert_eq!(n, names.len(), "duplicate case names");
        for c in &all {
            let area = c.name.split('.').next().unwrap();
            assert!(["lifecycle", "process", "fs", "ns", "cgroups", "hooks", "misc"].contains(&area), "{}", c.name);
        }
    }

    #[test]
    fn selection_by_name_and_prefix() {
        assert_eq!(selected(&["process.env".into()]).len(), 4); // process.env, process.env.no_leak, process.env.home, process.env.invalid
        assert!(selected(&["hooks.".into()]).iter().all(|c| c.name.starts_with("hooks.")));
        assert_eq!(selected(&["lifecycle.run.exit_code".into()]).len(), 1);
    }
}
