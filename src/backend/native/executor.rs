//! nexcage's workload executor for libcontainer: the seccomp filter is the
//! last thing installed before `execve` (runc's order for a process with
//! noNewPrivileges), so a profile may deny anything the runtime itself still
//! calls after libcontainer's own loading point (notify socket, environment,
//! lookups); `HOME` is runc's; a program that cannot run is reported in
//! runc's words, so engines map it to 127/126.

use std::collections::HashMap;
use std::ffi::CString;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use libcontainer::container::{ContainerStatus, State};
use libcontainer::oci_spec::runtime::{Capabilities, Capability, Hook, LinuxSeccomp, Process, Spec};
use crate::backend::oci::seccomp_bpf::{has_notify, loadable};
use libcontainer::workload::{Executor as LcExecutor, ExecutorError, ExecutorSetEnvsError, ExecutorValidationError};

#[derive(Clone, Default)]
pub struct Executor {
    /// Loaded right before execve (taken out of libcontainer's spec).
    pub seccomp: Option<LinuxSeccomp>,
    /// Set when the process's env has no `HOME` (`backend::oci::home`).
    pub home: Option<String>,
    /// startContainer hooks, run here (libcontainer's place for them,
    /// right before exec) with a state naming the real bundle.
    pub start_container: Vec<Hook>,
    pub state_id: String,
    pub bundle: PathBuf,
    pub annotations: Option<HashMap<String, String>>,
    /// Capabilities lent to the process only so that the filter can be
    /// loaded without noNewPrivileges (CAP_SYS_ADMIN, and CAP_SETPCAP to
    /// drop it from the bounding set), as "SET:CAP_NAME"; dropped right
    /// after loading it.
    pub lent: Vec<String>,
}

/// The spec's seccomp profile when the executor loads it instead of
/// libcontainer: every profile but one with a notify action (whose fd only
/// libcontainer hands to its listener). Without noNewPrivileges loading
/// needs CAP_SYS_ADMIN, which `lend` provides.
pub fn movable_seccomp(spec: &Spec) -> Option<LinuxSeccomp> {
    let seccomp = spec.linux().as_ref()?.seccomp().as_ref()?;
    (!has_notify(seccomp)).then(|| loadable(seccomp))
}

/// The capabilities to lend `process` so that the executor can load a
/// seccomp profile without noNewPrivileges (CAP_SYS_ADMIN, and CAP_SETPCAP
/// to take it out of the bounding set again), in each of its bounding,
/// effective and permitted sets that lacks them (added to `process`).
/// Returns them as "SET:CAP_NAME".
pub fn lend(process: &mut Process) -> Vec<String> {
    if process.no_new_privileges() == Some(true) {
        return Vec::new();
    }
    let Some(mut c) = process.capabilities().clone() else { return Vec::new() }; // keeps all: nothing to lend
    let mut lent = Vec::new();
    for cap in [Capability::SysAdmin, Capability::Setpcap] {
        let lacks = |s: &Option<Capabilities>| s.as_ref().is_none_or(|s| !s.contains(&cap));
        let added = |s: &Option<Capabilities>| -> Option<Capabilities> {
            let mut v = s.clone().unwrap_or_default();
            v.insert(cap);
            Some(v)
        };
        if lacks(c.bounding()) {
            lent.push(format!("bounding:CAP_{cap}"));
            c.set_bounding(added(c.bounding()));
        }
        if lacks(c.effective()) {
            lent.push(format!("effective:CAP_{cap}"));
            c.set_effective(added(c.effective()));
        }
        if lacks(c.permitted()) {
            lent.push(format!("permitted:CAP_{cap}"));
            c.set_permitted(added(c.permitted()));
        }
    }
    process.set_capabilities(Some(c));
    lent
}

/// runc's words (`exec.LookPath`) for a program that cannot be run, or None
/// when `arg0` resolves (against `path`, the process's PATH) to an
/// executable file. Run inside the container, after pivot_root.
pub fn lookup_error(arg0: &str, path: &str) -> Option<String> {
    let runnable = |p: &Path| std::fs::metadata(p).map(|m| !m.is_dir() && m.permissions().mode() & 0o111 != 0);
    if arg0.contains('/') {
        return match runnable(Path::new(arg0)) {
            Ok(true) => None,
            Ok(false) => Some(format!("exec: {arg0:?}: permission denied")),
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => Some(format!("exec: {arg0:?}: permission denied")),
            Err(e) => Some(format!("exec: {arg0:?}: stat {arg0}: {}", super::os_error(&e).to_lowercase())),
        };
    }
    let found = path.split(':').any(|d| runnable(&Path::new(if d.is_empty() { "." } else { d }).join(arg0)).unwrap_or(false));
    (!found).then(|| format!("exec: {arg0:?}: executable file not found in $PATH"))
}

/// An error of the executor. After `start` nobody reads the init's error
/// report (libcontainer's start does not wait), so it also goes to the
/// process's stderr, where the engine's log shows it.
fn fail(msg: String) -> ExecutorError {
    eprintln!("nexcage: {msg}");
    ExecutorError::Other(msg)
}

impl LcExecutor for Executor {
    fn exec(&self, spec: &Spec) -> Result<(), ExecutorError> {
        let args = spec.process().as_ref().and_then(|p| p.args().as_ref()).ok_or(ExecutorError::InvalidArg)?;
        let argv: Vec<CString> =
            args.iter().map(|a| CString::new(a.as_bytes())).collect::<Result<_, _>>().map_err(|_| ExecutorError::InvalidArg)?;
        let prog = argv.first().ok_or(ExecutorError::InvalidArg)?;
        if !self.start_container.is_empty() {
            // The state libcontainer would give (its init's copy: creating, no pid).
            let mut state = State::new(&self.state_id, ContainerStatus::Creating, None, self.bundle.clone());
            state.annotations = self.annotations.clone();
            let env: HashMap<String, String> = std::env::vars().collect();
            libcontainer::hooks::run_hooks(Some(&self.start_container), Some(&state), None, None, Some(&env))
                .map_err(|e| fail(format!("startContainer hook failed: {e}")))?;
        }
        let lent = |set: &str| -> Vec<caps::Capability> {
            self.lent.iter().filter_map(|l| l.strip_prefix(set)?.strip_prefix(':')?.parse().ok()).collect()
        };
        // The process starts with default dispositions, nothing blocked (runc).
        crate::backend::oci::signals::reset();
        // Everything is allocated; from here on only the filter, giving back
        // what was lent for it (as runc, which loads it before dropping
        // capabilities when there is no noNewPrivileges) and execve.
        if let Some(s) = &self.seccomp {
            libcontainer::seccomp::initialize_seccomp(s).map_err(|e| fail(format!("failed to load the seccomp profile: {e}")))?;
        }
        for (name, set) in [("bounding", caps::CapSet::Bounding), ("effective", caps::CapSet::Effective), ("permitted", caps::CapSet::Permitted)] {
            for c in lent(name) {
                caps::drop(None, set, c).map_err(|e| fail(format!("failed to drop lent {c} from the {name} set: {e}")))?;
            }
        }
        let err = nix::unistd::execvp(prog, &argv).unwrap_err();
        Err(fail(format!("exec: {:?}: {}", args[0], err.desc().to_lowercase())))
    }

    fn validate(&self, spec: &Spec) -> Result<(), ExecutorValidationError> {
        let process = spec.process().as_ref().ok_or_else(|| ExecutorValidationError::ArgValidationError("spec has no process".into()))?;
        let Some(arg0) = process.args().as_ref().and_then(|a| a.first()) else { return Ok(()) };
        let path = process.env().iter().flatten().find_map(|e| e.strip_prefix("PATH=")).unwrap_or("");
        match lookup_error(arg0, path) {
            Some(msg) => Err(ExecutorValidationError::ArgValidationError(msg)),
            None => Ok(()),
        }
    }

    fn setup_envs(&self, mut envs: HashMap<String, String>) -> Result<(), ExecutorSetEnvsError> {
        if let Some(h) = &self.home {
            envs.insert("HOME".to_string(), h.clone());
        }
        for (k, _) in std::env::vars_os() {
            // SAFETY: this runs in the container's init, a single-threaded
            // process fork()ed by libcontainer, before execve.
            unsafe { std::env::remove_var(k) };
        }
        for (k, v) in envs {
            // SAFETY: as above.
            unsafe { std::env::set_var(k, v) };
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_words_are_runcs() {
        assert_eq!(lookup_error("sh", "/nonexistent:/bin"), None);
        assert_eq!(lookup_error("nope-x", "/bin").unwrap(), "exec: \"nope-x\": executable file not found in $PATH");
        assert_eq!(lookup_error("/nope-x", "/bin").unwrap(), "exec: \"/nope-x\": stat /nope-x: no such file or directory");
        assert_eq!(lookup_error("/etc/passwd", "").unwrap(), "exec: \"/etc/passwd\": permission denied");
        assert_eq!(lookup_error("/etc", "").unwrap(), "exec: \"/etc\": permission denied");
    }

    #[test]
    fn lends_only_what_the_sets_lack() {
        let mut p: Process = serde_json::from_str(
            r#"{"cwd":"/","user":{"uid":0,"gid":0},"capabilities":{"bounding":["CAP_KILL","CAP_SETPCAP"],"effective":["CAP_KILL"],"permitted":["CAP_KILL","CAP_SETPCAP"]}}"#,
        )
        .unwrap();
        let lent = lend(&mut p);
        assert_eq!(lent, ["bounding:CAP_SYS_ADMIN", "effective:CAP_SYS_ADMIN", "permitted:CAP_SYS_ADMIN", "effective:CAP_SETPCAP"]);
        let c = p.capabilities().as_ref().unwrap();
        assert!(c.effective().as_ref().unwrap().contains(&Capability::SysAdmin));
        p.set_no_new_privileges(Some(true));
        assert!(lend(&mut p).is_empty());
    }

    #[test]
    fn seccomp_moves_unless_notify() {
        let spec = |nnp: &str, action: &str| -> Spec {
            serde_json::from_str(&format!(
                r#"{{"ociVersion":"1.0.2","process":{{"cwd":"/","args":["sh"],"user":{{"uid":0,"gid":0}}{nnp}}},
                "linux":{{"seccomp":{{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{{"names":["getcwd"],"action":"{action}"}}]}}}}}}"#
            ))
            .unwrap()
        };
        assert!(movable_seccomp(&spec(r#","noNewPrivileges":true"#, "SCMP_ACT_ERRNO")).is_some());
        assert!(movable_seccomp(&spec("", "SCMP_ACT_ERRNO")).is_some());
        assert!(movable_seccomp(&spec(r#","noNewPrivileges":true"#, "SCMP_ACT_NOTIFY")).is_none());
    }
}
