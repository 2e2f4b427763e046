//! Result tables and the comparison with a checked-in expectations file.

use crate::suite::CaseResult;
use anyhow::{Context, Result};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::path::Path;

fn runtimes(results: &[CaseResult]) -> Vec<String> {
    let mut v: Vec<String> = Vec::new();
    for r in results {
        if !v.contains(&r.runtime) {
            v.push(r.runtime.clone());
        }
    }
    v
}

fn cases(results: &[CaseResult]) -> Vec<String> {
    let mut v: Vec<String> = Vec::new();
    for r in results {
        if !v.contains(&r.case) {
            v.push(r.case.clone());
        }
    }
    v
}

fn cell(r: &CaseResult, width: usize) -> String {
    let s = match r.outcome.reason() {
        "" => r.outcome.word().to_string(),
        why => format!("{}: {}", r.outcome.word(), why),
    };
    if s.chars().count() > width {
        format!("{}…", s.chars().take(width.saturating_sub(1)).collect::<String>())
    } else {
        s
    }
}

fn lookup<'a>(results: &'a [CaseResult], case: &str, rt: &str) -> Option<&'a CaseResult> {
    results.iter().find(|r| r.case == case && r.runtime == rt)
}

fn summary(results: &[CaseResult], rt: &str) -> String {
    let mut n = BTreeMap::new();
    for r in results.iter().filter(|r| r.runtime == rt) {
        *n.entry(r.outcome.word()).or_insert(0) += 1;
    }
    format!(
        "{} pass, {} fail, {} skip",
        n.get("pass").unwrap_or(&0),
        n.get("fail").unwrap_or(&0),
        n.get("skip").unwrap_or(&0)
    )
}

/// Plain aligned table; reasons cut to fit, then the full reasons below.
pub fn table(results: &[CaseResult]) -> String {
    let rts = runtimes(results);
    let cs = cases(results);
    let w0 = cs.iter().map(|c| c.len()).max().unwrap_or(4).max(4);
    let w = 34;
    let mut o = format!("{:<w0$}", "case");
    for r in &rts {
        o.push_str(&format!("  {:<w$}", r));
    }
    o.push('\n');
    for c in &cs {
        o.push_str(&format!("{:<w0$}", c));
        for r in &rts {
            let s = lookup(results, c, r).map(|x| cell(x, w)).unwrap_or_default();
            o.push_str(&format!("  {:<w$}", s));
        }
        o.push('\n');
    }
    o.push('\n');
    for r in &rts {
        o.push_str(&format!("{r}: {}\n", summary(results, r)));
    }
    let mut details = String::new();
    for x in results.iter().filter(|x| matches!(x.outcome, crate::Outcome::Fail(_))) {
        details.push_str(&format!("  {} [{}]: {}\n", x.case, x.runtime, x.outcome.reason()));
    }
    if !details.is_empty() {
        o.push_str("\nfailures:\n");
        o.push_str(&details);
    }
    o
}

pub fn markdown(results: &[CaseResult]) -> String {
    let rts = runtimes(results);
    let mut o = String::from("| case |");
    for r in &rts {
        o.push_str(&format!(" {r} |"));
    }
    o.push_str("\n|---|");
    for _ in &rts {
        o.push_str("---|");
    }
    o.push('\n');
    for c in cases(results) {
        o.push_str(&format!("| `{c}` |"));
        for r in &rts {
            let s = lookup(results, &c, r).map(|x| cell(x, 90)).unwrap_or_default();
            o.push_str(&format!(" {} |", s.replace('|', "\\|")));
        }
        o.push('\n');
    }
    o.push('\n');
    for r in &rts {
        o.push_str(&format!("- **{r}**: {}\n", summary(results, r)));
    }
    o
}

pub fn json(results: &[CaseResult]) -> Value {
    let v: Vec<Value> = results
        .iter()
        .map(|r| json!({"case": r.case, "runtime": r.runtime, "result": r.outcome.word(), "reason": r.outcome.reason(), "ms": r.millis as u64}))
        .collect();
    json!({ "results": v })
}

/// Expectations: `{"runtimes": {"runc": {"case": "pass"|"fail"|"skip"}}}`.
/// A runtime not listed is expected to pass every case that passes on all
/// listed runtimes (the reference behaviour).
pub struct Expected {
    pub runtimes: BTreeMap<String, BTreeMap<String, String>>,
}

impl Expected {
    pub fn load(p: &Path) -> Result<Expected> {
        let s = std::fs::read_to_string(p).with_context(|| format!("read {}", p.display()))?;
        let v: Value = serde_json::from_str(&s).with_context(|| format!("parse {}", p.display()))?;
        let mut runtimes = BTreeMap::new();
        if let Some(m) = v["runtimes"].as_object() {
            for (rt, cases) in m {
                let mut cm = BTreeMap::new();
                if let Some(c) = cases.as_object() {
                    for (k, v) in c {
                        cm.insert(k.clone(), v.as_str().unwrap_or("").to_string());
                    }
                }
                runtimes.insert(rt.clone(), cm);
            }
        }
        Ok(Expected { runtimes })
    }

    pub fn expect(&self, rt: &str, case: &str) -> Option<String> {
        if let Some(m) = self.runtimes.get(rt) {
            return m.get(case).cloned();
        }
        if self.runtimes.is_empty() {
            return None;
        }
        let all_pass = self.runtimes.values().all(|m| m.get(case).map(|s| s == "pass").unwrap_or(false));
        Some(if all_pass { "pass".into() } else { "any".into() })
    }

    /// (regressions, improvements, unexpected skips) as printable lines.
    pub fn compare(&self, results: &[CaseResult]) -> (Vec<String>, Vec<String>, Vec<String>) {
        let (mut reg, mut imp, mut skip) = (vec![], vec![], vec![]);
        for r in results {
            let Some(exp) = self.expect(&r.runtime, &r.case) else { continue };
            let got = r.outcome.word();
            let line = format!("{} [{}]: expected {exp}, got {got}{}", r.case, r.runtime, match r.outcome.reason() {
                "" => String::new(),
                why => format!(" ({why})"),
            });
            match (exp.as_str(), got) {
                ("pass", "fail") => reg.push(line),
                ("fail", "pass") => imp.push(line),
                ("pass", "skip") => skip.push(line),
                _ => {}
            }
        }
        (reg, imp, skip)
    }
}

/// Writes (or updates) an expectations file with these results.
pub fn write_expected(p: &Path, results: &[CaseResult]) -> Result<()> {
    let mut root: Value = std::fs::read_to_string(p)
        .ok()
        .and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or_else(|| json!({}));
    if !root.is_object() {
        root = json!({});
    }
    root["_comment"] = json!(
        "Expected rtt-harness results per runtime on the Debian 12 test host (hybrid cgroups, no CAP_SYS_RESOURCE). \
         A runtime not listed is expected to pass every case that passes for all listed runtimes. \
         Regenerate a column with: rtt-harness --runtime NAME=PATH --write-expected runtime-tools-tests/expected.json"
    );
    if !root["runtimes"].is_object() {
        root["runtimes"] = json!({});
    }
    for rt in runtimes(results) {
        let mut m = Map::new();
        for r in results.iter().filter(|r| r.runtime == rt) {
            m.insert(r.case.clone(), json!(r.outcome.word()));
        }
        root["runtimes"][rt.as_str()] = Value::Object(m);
    }
    std::fs::write(p, serde_json::to_string_pretty(&root)? + "\n").with_context(|| format!("write {}", p.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::suite::{CaseResult, Outcome};

    fn r(case: &str, rt: &str, o: Outcome) -> CaseResult {
        CaseResult { case: case.into(), runtime: rt.into(), outcome: o, millis: 0 }
    }

    #[test]
    fn compare_finds_regressions_and_uses_the_default_rule() {
        let mut runtimes = BTreeMap::new();
        for rt in ["runc", "crun"] {
            let mut m = BTreeMap::new();
            m.insert("a".to_string(), "pass".to_string());
            m.insert("b".to_string(), if rt == "runc" { "fail" } else { "pass" }.to_string());
            runtimes.insert(rt.to_string(), m);
        }
        let exp = Expected { runtimes };
        let results = vec![
            r("a", "runc", Outcome::Fail("x".into())),
            r("b", "runc", Outcome::Pass),
            r("a", "nexcage", Outcome::Fail("y".into())),
            r("b", "nexcage", Outcome::Fail("z".into())),
        ];
        let (reg, imp, _) = exp.compare(&results);
        assert_eq!(reg.len(), 2, "{reg:?}"); // runc a, nexcage a (passes on all listed)
        assert!(reg.iter().any(|l| l.starts_with("a [nexcage]")));
        assert_eq!(imp.len(), 1); // runc b
        assert_eq!(exp.expect("nexcage", "b").as_deref(), Some("any"));
    }

    #[test]
    fn tables_have_every_cell() {
        let results = vec![r("a", "x", Outcome::Pass), r("a", "y", Outcome::Skip("why".into()))];
        let t = table(&results);
        assert!(t.contains("skip: why"));
        let m = markdown(&results);
        assert!(m.contains("| `a` | pass | skip: why |"), "{m}");
    }
}
