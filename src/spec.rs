//! Loading and validating a bundle's config.json before anything is created,
//! so bad input fails with one clear message and leaves nothing behind.

use std::path::{Path, PathBuf};

use libcontainer::oci_spec::runtime::Spec;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum SpecError {
    #[error("bundle {0} does not exist")]
    NoBundle(PathBuf),
    #[error("bundle {0} has no config.json")]
    NoConfig(PathBuf),
    #[error("cannot read {0}: {1}")]
    Read(PathBuf, std::io::Error),
    #[error("{0}: malformed JSON: {1}")]
    Json(PathBuf, serde_json::Error),
    #[error("{0}: unsupported ociVersion {1:?}: nexcage supports 1.x")]
    Version(PathBuf, String),
    #[error("{0}: {1}")]
    Invalid(PathBuf, String),
}

/// Just the version of a config.json; the rest is skipped unparsed.
#[derive(serde::Deserialize)]
struct OciVersion {
    #[serde(rename = "ociVersion", default)]
    oci_version: Option<serde_json::Value>,
}

/// A validated bundle: its absolute path, the parsed spec and the absolute rootfs.
pub struct Bundle {
    pub dir: PathBuf,
    pub spec: Spec,
    pub rootfs: PathBuf,
    /// Capability names left out of `spec` because nexcage does not know
    /// them (runc's rule, `backend::oci::caps`); libcontainer must then be
    /// given the spec without them.
    pub dropped_caps: Vec<String>,
}

pub fn load(bundle: &Path) -> Result<Bundle, SpecError> {
    let dir = std::path::absolute(bundle).unwrap_or_else(|_| bundle.to_path_buf());
    if !dir.is_dir() {
        return Err(SpecError::NoBundle(dir));
    }
    let cfg = dir.join("config.json");
    let data = match std::fs::read(&cfg) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(SpecError::NoConfig(dir)),
        Err(e) => return Err(SpecError::Read(cfg, e)),
    };
    // Check the version first: a 2.x document may not even deserialize into
    // 1.x types, and the version is the clearer message. Reading only
    // `ociVersion` skips the rest without building a JSON tree.
    let head: OciVersion = serde_json::from_slice(&data).map_err(|e| SpecError::Json(cfg.clone(), e))?;
    let version = head.oci_version.as_ref().and_then(|v| v.as_str()).unwrap_or("");
    if !version.starts_with("1.") {
        return Err(SpecError::Version(cfg, version.to_string()));
    }
    // Most bundles name only capabilities this build knows: parse straight
    // into the typed spec, and build a JSON tree only when that fails, to drop
    // unknown capability names as runc does (warning, not an error).
    let (spec, dropped_caps) = match serde_json::from_slice::<Spec>(&data) {
        Ok(spec) => (spec, Vec::new()),
        Err(_) => {
            let mut raw: serde_json::Value = serde_json::from_slice(&data).map_err(|e| SpecError::Json(cfg.clone(), e))?;
            // Warned about once, by create (`Container::create`); start,
            // exec and delete read the same bundle again without a word.
            let dropped = raw.get_mut("process").map(crate::backend::oci::caps::drop_unknown).unwrap_or_default();
            let spec: Spec = serde_json::from_value(raw).map_err(|e| SpecError::Json(cfg.clone(), e))?;
            (spec, dropped)
        }
    };
    let invalid = |m: &str| SpecError::Invalid(cfg.clone(), m.to_string());
    let root = spec.root().as_ref().ok_or_else(|| invalid("root is missing"))?;
    let rootfs = if root.path().is_absolute() { root.path().clone() } else { dir.join(root.path()) };
    if !rootfs.is_dir() {
        return Err(invalid(&format!("root.path {} does not exist", rootfs.display())));
    }
    if let Some(real) = symlinked(&dir, root.path()) {
        return Err(invalid(&format!(
            "invalid rootfs: root.path {} is a symlink or passes through one (to {}); runc refuses it too: give the resolved path",
            root.path().display(),
            real.display()
        )));
    }
    let process = spec.process().as_ref().ok_or_else(|| invalid("process is missing"))?;
    if process.args().as_ref().is_none_or(|a| a.is_empty()) {
        return Err(invalid("process.args must not be empty"));
    }
    if !process.cwd().is_absolute() {
        return Err(invalid("process.cwd must be an absolute path"));
    }
    let raw = serde_json::to_value(process).map_err(|e| SpecError::Json(cfg.clone(), e))?;
    crate::backend::oci::process_user_env::check(&raw).map_err(|m| invalid(&m))?;
    Ok(Bundle { dir, spec, rootfs, dropped_caps })
}

/// runc 1.1.5's rule (libcontainer/configs/validate `rootfs`): the rootfs,
/// made absolute against the bundle's real path, must already be its own
/// resolved path. Some(resolved path) when it is not (a symlink anywhere in
/// `root.path`); crun 1.8.1 follows the link, runc refuses ("invalid rootfs:
/// not an absolute path, or a symlink"), and nexcage keeps runc's rule. A
/// bundle reached through a symlink is fine, as in runc, which chdirs there.
fn symlinked(dir: &Path, root_path: &Path) -> Option<PathBuf> {
    let base = std::fs::canonicalize(dir).ok()?;
    let mut clean = PathBuf::new();
    for c in base.join(root_path).components() {
        match c {
            std::path::Component::ParentDir => {
                clean.pop();
            }
            std::path::Component::CurDir => {}
            c => clean.push(c),
        }
    }
    let real = std::fs::canonicalize(&clean).ok()?;
    (real != clean).then_some(real)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn bundle(name: &str, config: Option<&str>) -> PathBuf {
        let d = std::env::temp_dir().join(format!("nexcage-spec-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(d.join("rootfs")).unwrap();
        if let Some(c) = config {
            fs::write(d.join("config.json"), c).unwrap();
        }
        d
    }

    const GOOD: &str = r#"{"ociVersion":"1.0.2","root":{"path":"rootfs"},"process":{"cwd":"/","args":["sh"],"user":{"uid":0,"gid":0}}}"#;

    #[test]
    fn loads_good_bundle() {
        let d = bundle("good", Some(GOOD));
        let b = load(&d).unwrap();
        assert_eq!(b.rootfs, d.join("rootfs"));
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn symlinked_rootfs_is_refused_as_runc_does() {
        let d = bundle("symlink", Some(&GOOD.replace("\"rootfs\"", "\"link\"")));
        std::os::unix::fs::symlink("rootfs", d.join("link")).unwrap();
        let e = load(&d).err().expect("runc refuses a symlinked root.path").to_string();
        assert!(e.contains("invalid rootfs") && e.contains("symlink"), "{e}");
        // the same bundle reached through a symlink to it is fine (runc chdirs there)
        fs::write(d.join("config.json"), GOOD).unwrap();
        let via = d.with_extension("via");
        let _ = fs::remove_file(&via);
        std::os::unix::fs::symlink(&d, &via).unwrap();
        let ok = load(&via).map(|b| b.rootfs);
        fs::remove_file(&via).unwrap();
        fs::remove_dir_all(&d).unwrap();
        ok.unwrap();
    }

    #[test]
    fn unknown_capabilities_are_dropped_not_malformed() {
        let cfg = r#"{"ociVersion":"1.0.2","root":{"path":"rootfs"},"process":{"cwd":"/","args":["sh"],"user":{"uid":0,"gid":0},
            "capabilities":{"bounding":["CAP_KILL","CAP_BOGUS"],"effective":["CAP_BOGUS"]}}}"#;
        let d = bundle("caps", Some(cfg));
        let b = load(&d).unwrap();
        fs::remove_dir_all(&d).unwrap();
        assert_eq!(b.dropped_caps, vec!["CAP_BOGUS"]);
        let caps = b.spec.process().as_ref().unwrap().capabilities().as_ref().unwrap();
        assert_eq!(caps.bounding().as_ref().unwrap().len(), 1);
    }

    #[test]
    fn clear_errors() {
        let cases = [
            ("nocfg", None, "has no config.json"),
            ("badjson", Some("{oops"), "malformed JSON"),
            ("v2", Some(r#"{"ociVersion":"2.0.0"}"#), "unsupported ociVersion"),
            ("noargs", Some(r#"{"ociVersion":"1.0.2","root":{"path":"rootfs"},"process":{"cwd":"/","args":[],"user":{"uid":0,"gid":0}}}"#), "process.args must not be empty"),
            ("noroot", Some(r#"{"ociVersion":"1.0.2","root":{"path":"nope"},"process":{"cwd":"/","args":["sh"],"user":{"uid":0,"gid":0}}}"#), "root.path"),
        ];
        for (name, cfg, want) in cases {
            let d = bundle(name, cfg);
            let e = load(&d).err().unwrap().to_string();
            fs::remove_dir_all(&d).unwrap();
            assert!(e.contains(want), "{name}: {e}");
        }
        let e = load(Path::new("/nonexistent/bundle")).err().unwrap().to_string();
        assert!(e.contains("does not exist"), "{e}");
    }
}
