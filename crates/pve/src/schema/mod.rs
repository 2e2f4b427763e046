//! Validator for requests against the official Proxmox API schema
//! (`pve-api-subset.json`), strict the way pve-common's JSONSchema.pm is:
//! required params, types, ranges, enums, patterns, lengths, named formats
//! and property-string formats with their sub-keys. Unknown params fail.

mod formats;
mod propstring;
mod returns;

use regex::Regex;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::{LazyLock, Mutex};

pub use propstring::{parse_property_string, print_property_string};

/// Request parameters as they travel (form or query encoded): all strings.
pub type Params = BTreeMap<String, String>;

#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    #[error("schema file {path}: {msg}")]
    Load { path: String, msg: String },
}

/// Per-parameter messages, shaped like Proxmox's `errors` object.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Violations(pub BTreeMap<String, String>);

impl std::fmt::Display for Violations {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = self.0.iter().map(|(k, v)| format!("{k}: {v}")).collect();
        f.write_str(&parts.join("; "))
    }
}

/// A concrete path matched to a template, with its path parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub template: String,
    pub params: Params,
}

pub struct Schema {
    /// template -> method -> endpoint description
    paths: BTreeMap<String, BTreeMap<String, Value>>,
    regex_cache: Mutex<HashMap<String, Regex>>,
}

impl std::fmt::Debug for Schema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Schema")
            .field("paths", &self.paths.len())
            .finish()
    }
}

/// How many instances an indexed key (`net[n]`) has in pve-container.
fn index_limit(base: &str) -> u32 {
    match base {
        "net" => 32,
        _ => 256,
    }
}

impl Schema {
    pub fn load(path: &Path) -> Result<Schema, SchemaError> {
        let err = |msg: String| SchemaError::Load {
            path: path.display().to_string(),
            msg,
        };
        let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
        Schema::parse(&text).map_err(|e| match e {
            SchemaError::Load { msg, .. } => err(msg),
        })
    }

    pub fn parse(text: &str) -> Result<Schema, SchemaError> {
        let err = |msg: String| SchemaError::Load {
            path: "<text>".into(),
            msg,
        };
        let v: Value = serde_json::from_str(text).map_err(|e| err(e.to_string()))?;
        let obj = v
            .as_object()
            .ok_or_else(|| err("top level is not an object".into()))?;
        let mut paths = BTreeMap::new();
        for (p, methods) in obj {
            let m = methods
                .as_object()
                .ok_or_else(|| err(format!("{p}: not an object")))?;
            let mut by_method = BTreeMap::new();
            for (method, desc) in m {
                if desc.is_object() {
                    by_method.insert(method.to_uppercase(), desc.clone());
                }
            }
            paths.insert(p.clone(), by_method);
        }
        Ok(Schema {
            paths,
            regex_cache: Mutex::new(HashMap::new()),
        })
    }

    /// The endpoint description (`parameters`, `returns`, `allowtoken`, ...).
    pub fn endpoint(&self, method: &str, template: &str) -> Option<&Value> {
        self.paths.get(template)?.get(&method.to_uppercase())
    }

    /// Match a concrete path (`/nodes/pve/lxc/100`) to its template.
    pub fn route(&self, path: &str) -> Option<Route> {
        let segs: Vec<&str> = path.trim_end_matches('/').split('/').collect();
        'outer: for template in self.paths.keys() {
            let tsegs: Vec<&str> = template.split('/').collect();
            if tsegs.len() != segs.len() {
                continue;
            }
            let mut params = Params::new();
            for (t, s) in tsegs.iter().zip(&segs) {
                if let Some(name) = t.strip_prefix('{').and_then(|t| t.strip_suffix('}')) {
                    if s.is_empty() {
                        continue 'outer;
                    }
                    params.insert(name.to_string(), s.to_string());
                } else if t != s {
                    continue 'outer;
                }
            }
            return Some(Route {
                template: template.clone(),
                params,
            });
        }
        None
    }

    /// Validate a request's full parameter set (path params included).
    pub fn validate(
        &self,
        method: &str,
        template: &str,
        params: &Params,
    ) -> Result<(), Violations> {
        let mut errors = BTreeMap::new();
        let Some(ep) = self.endpoint(method, template) else {
            errors.insert(
                "path".into(),
                format!("Method '{method} {template}' not implemented"),
            );
            return Err(Violations(errors));
        };
        let props = ep
            .pointer("/parameters/properties")
            .and_then(Value::as_object);
        let empty = serde_json::Map::new();
        let props = props.unwrap_or(&empty);
        for (name, value) in params {
            match self.lookup(props, name) {
                Some(prop) => {
                    if let Err(e) = self.check_prop(name, prop, value, &mut errors) {
                        errors.insert(name.clone(), e);
                    }
                    if let Some(req) = prop.get("requires").and_then(Value::as_str) {
                        if !params.contains_key(req) {
                            errors.insert(
                                req.to_string(),
                                format!("missing property - '{name}' requires this property"),
                            );
                        }
                    }
                }
                None => {
                    errors.insert(
                        name.clone(),
                        "property is not defined in schema and the schema does not allow additional properties".into(),
                    );
                }
            }
        }
        for (name, prop) in props {
            if name.contains("[n]") || is_true(prop.get("optional")) {
                continue;
            }
            if !params.contains_key(name) {
                errors.insert(
                    name.clone(),
                    "property is missing and it is not optional".into(),
                );
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(Violations(errors))
        }
    }

    /// Validate one config key/value the way the given endpoint would
    /// (used for config-file keys, e.g. against `PUT .../config`).
    pub fn validate_one(
        &self,
        method: &str,
        template: &str,
        name: &str,
        value: &str,
    ) -> Result<(), String> {
        let props = self
            .endpoint(method, template)
            .and_then(|ep| ep.pointer("/parameters/properties"))
            .and_then(Value::as_object)
            .ok_or_else(|| format!("no endpoint {method} {template}"))?;
        let prop = self
            .lookup(props, name)
            .ok_or_else(|| format!("unknown setting '{name}'"))?;
        let mut errors = BTreeMap::new();
        self.check_prop(name, prop, value, &mut errors)?;
        match errors.into_iter().next() {
            Some((k, v)) => Err(format!("{k}: {v}")),
            None => Ok(()),
        }
    }

    /// Find the schema of `name`, resolving indexed keys (`net3` -> `net[n]`).
    fn lookup<'a>(
        &self,
        props: &'a serde_json::Map<String, Value>,
        name: &str,
    ) -> Option<&'a Value> {
        if let Some(p) = props.get(name) {
            return Some(p);
        }
        let split = name.find(|c: char| c.is_ascii_digit())?;
        let (base, idx) = name.split_at(split);
        let n: u32 = idx.parse().ok()?;
        if (idx.len() > 1 && idx.starts_with('0')) || n >= index_limit(base) {
            return None;
        }
        props.get(&format!("{base}[n]"))
    }

    /// The schema's `pattern` as a compiled regex, cached. Unicode-aware
    /// (`regex`, not regex-lite): pve-http-server decodes parameters as
    /// UTF-8 before JSONSchema.pm matches them, so Perl's `\w`, `\s` and
    /// `/i` follow Unicode there. Only the double validates requests, once
    /// per pattern per process.
    pub(crate) fn regex(&self, pattern: &str) -> Result<Regex, String> {
        let mut cache = self
            .regex_cache
            .lock()
            .map_err(|_| "regex cache poisoned".to_string())?;
        if let Some(r) = cache.get(pattern) {
            return Ok(r.clone());
        }
        let r = Regex::new(&format!("^(?:{})$", perl_to_rust_regex(pattern)))
            .map_err(|e| format!("schema pattern does not compile: {e}"))?;
        cache.insert(pattern.to_string(), r.clone());
        Ok(r)
    }

    /// Check one value against its property schema. Sub-key errors of
    /// property strings go into `errors` as `param.subkey`.
    pub(crate) fn check_prop(
        &self,
        name: &str,
        prop: &Value,
        value: &str,
        errors: &mut BTreeMap<String, String>,
    ) -> Result<(), String> {
        let ty = prop.get("type").and_then(Value::as_str).unwrap_or("string");
        match ty {
            "integer" if !is_integer(value) => {
                return Err(format!("type check ('integer') failed - got '{value}'"));
            }
            "number" if !is_number(value) => {
                return Err(format!("type check ('number') failed - got '{value}'"));
            }
            "boolean" if parse_bool(value).is_none() => {
                return Err(format!("type check ('boolean') failed - got '{value}'"));
            }
            _ => {}
        }
        if ty == "integer" || ty == "number" {
            let v: f64 = value
                .parse()
                .map_err(|_| format!("type check ('{ty}') failed - got '{value}'"))?;
            if let Some(min) = num(prop.get("minimum")) {
                if v < min {
                    return Err(format!(
                        "value must have a minimum value of {}",
                        fmt_num(min)
                    ));
                }
            }
            if let Some(max) = num(prop.get("maximum")) {
                if v > max {
                    return Err(format!(
                        "value must have a maximum value of {}",
                        fmt_num(max)
                    ));
                }
            }
        }
        if let Some(en) = prop.get("enum").and_then(Value::as_array) {
            let opts: Vec<&str> = en.iter().filter_map(Value::as_str).collect();
            if !opts.contains(&value) {
                return Err(format!(
                    "value '{value}' does not have a value in the enumeration '{}'",
                    opts.join(", ")
                ));
            }
        }
        if let Some(max) = num(prop.get("maxLength")) {
            if value.chars().count() as f64 > max {
                return Err(format!(
                    "value may only be {} characters long",
                    fmt_num(max)
                ));
            }
        }
        if let Some(min) = num(prop.get("minLength")) {
            if (value.chars().count() as f64) < min {
                return Err(format!(
                    "value must be at least {} characters long",
                    fmt_num(min)
                ));
            }
        }
        if let Some(p) = prop.get("pattern").and_then(Value::as_str) {
            if !self.regex(p)?.is_match(value) {
                return Err("value does not match the regex pattern".into());
            }
        }
        match prop.get("format") {
            Some(Value::String(f)) => {
                formats::check(f, value).map_err(|e| format!("invalid format - {e}"))?;
            }
            Some(Value::Object(fmt)) => {
                propstring::check(self, name, fmt, value, errors)?;
            }
            _ => {}
        }
        Ok(())
    }
}

/// Perl regex syntax from the schema to the `regex` crate's: `(?^:` is
/// Perl's "default flags" group and `\0` a NUL.
fn perl_to_rust_regex(p: &str) -> String {
    let p = p.replace("(?^:", "(?:");
    static NUL: LazyLock<Option<Regex>> = LazyLock::new(|| Regex::new(r"\\0([^0-9]|$)").ok());
    match NUL.as_ref() {
        Some(r) => r.replace_all(&p, "\\x00$1").into_owned(),
        None => p,
    }
}

pub(crate) fn is_true(v: Option<&Value>) -> bool {
    match v {
        Some(Value::Bool(b)) => *b,
        Some(Value::Number(n)) => n.as_f64().is_some_and(|f| f != 0.0),
        Some(Value::String(s)) => s == "1",
        _ => false,
    }
}

fn num(v: Option<&Value>) -> Option<f64> {
    match v? {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

fn fmt_num(f: f64) -> String {
    if f.fract() == 0.0 {
        format!("{}", f as i64)
    } else {
        format!("{f}")
    }
}

pub(crate) fn is_integer(v: &str) -> bool {
    let d = v.strip_prefix(['-', '+']).unwrap_or(v);
    !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit())
}

pub(crate) fn is_number(v: &str) -> bool {
    // Compiled once per process (every number of every call is checked).
    static NUMBER: LazyLock<Option<Regex>> = LazyLock::new(|| Regex::new(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$").ok());
    NUMBER.as_ref().is_some_and(|r| r.is_match(v))
}

/// Proxmox booleans: 1/0, on/off, yes/no, true/false (any case).
pub fn parse_bool(v: &str) -> Option<bool> {
    match v.to_ascii_lowercase().as_str() {
        "1" | "on" | "yes" | "true" => Some(true),
        "0" | "off" | "no" | "false" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
pub(crate) mod tests;

/// Check a named string format (`pve-tag-list`, `dns-name`, ...).
pub fn formats_check(format: &str, value: &str) -> Result<(), String> {
    formats::check(format, value)
}
