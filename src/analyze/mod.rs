//! Analysis: a [`Snapshot`] in, ranked [`Finding`]s out. Pure: no I/O, no
//! clock, so a saved snapshot always gives the same report.
//!
//! Place in the flow: `collect → snapshot → model → analyze → report`.
//! [`analyze`] builds the [`Mesh`] (the only typed view of the snapshot) and
//! runs every rule of the [`catalog`]: one file per cause under [`rules`],
//! each a pure function of the model. [`rank`] orders the findings;
//! [`summary`] says what was checked and what could not be seen. Nothing
//! here reads raw JSON.

pub mod catalog;
pub mod confidence;
pub mod finding;
pub mod fix;
pub mod rank;
pub mod rules;
pub mod scan;
pub mod summary;
pub mod tls_check;

use serde::Serialize;

pub use catalog::{Cause, CATALOG};
pub use finding::{Evidence, EvidenceKind, Finding, Fix, Severity, SourceRef};

use crate::model::Mesh;
use crate::snapshot::{Gap, Snapshot};

/// Version of the JSON report (`-o json`); see docs/report-schema.md.
pub const REPORT_SCHEMA: &str = "mesh503.io/report/v2";

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub schema: &'static str,
    pub target: String,
    pub namespace: String,
    /// When the snapshot was taken (from the snapshot, not the clock).
    pub taken_at: String,
    pub findings: Vec<Finding>,
    /// What was looked at, so "nothing found" means something.
    pub checked: Vec<String>,
    /// Evidence that was not available.
    pub gaps: Vec<Gap>,
}

impl Report {
    pub fn has_errors(&self) -> bool {
        self.findings.iter().any(|f| f.severity == Severity::Error)
    }
}

/// Build the model of a snapshot and run every rule of the catalog.
pub fn analyze(snapshot: &Snapshot) -> Report {
    analyze_mesh(&Mesh::from_snapshot(snapshot))
}

/// Run every rule of the catalog over a model and rank the findings.
pub fn analyze_mesh(mesh: &Mesh) -> Report {
    let mut findings = Vec::new();
    for decl in CATALOG {
        findings.extend((decl.check)(mesh));
    }
    rules::unexplained_503s::reconcile(&mut findings);
    rank::rank(&mut findings);
    fix::text::note_conflicts(&mut findings);
    Report {
        schema: REPORT_SCHEMA,
        target: mesh.target.text.clone(),
        namespace: mesh.target.namespace.clone(),
        taken_at: mesh.taken_at.clone(),
        findings,
        checked: summary::checked(mesh),
        gaps: summary::gaps(mesh),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// docs/architecture.md: nothing after the model reads raw JSON or the
    /// raw snapshot. The entry points (`analyze`, tls-check's offline dumps
    /// handed to the model) and JSON rendering are the named exceptions.
    #[test]
    fn later_stages_read_no_raw_json() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut files = Vec::new();
        let mut dirs = vec![root.join("analyze"), root.join("report")];
        while let Some(d) = dirs.pop() {
            for e in std::fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    dirs.push(p);
                } else {
                    files.push(p);
                }
            }
        }
        let allowed = [
            ("analyze/mod.rs", "snapshot::"),
            ("analyze/tls_check.rs", "snapshot::"),
            ("analyze/tls_check.rs", "serde_json::Value"),
            ("analyze/summary.rs", "snapshot::"),
            ("analyze/scan.rs", "snapshot::"),
            ("report/json.rs", "serde_json::to_string_pretty"),
            ("report/scan.rs", "serde_json::to_string_pretty"),
        ];
        for f in files {
            let text = std::fs::read_to_string(&f).unwrap();
            // A `tests.rs` is a test module (`#[cfg(test)] mod tests;`).
            if f.file_name().is_some_and(|n| n == "tests.rs") {
                let parent =
                    std::fs::read_to_string(f.with_file_name("mod.rs")).unwrap_or_default();
                assert!(
                    parent.contains("#[cfg(test)]\nmod tests;"),
                    "{}: declared as a test module",
                    f.display()
                );
                continue;
            }
            let code = text.split("#[cfg(test)]").next().unwrap_or("");
            let rel = f
                .strip_prefix(&root)
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/");
            for needle in ["serde_json::", "snapshot::"] {
                for (i, line) in code.lines().enumerate() {
                    if !line.contains(needle) || line.trim_start().starts_with("//") {
                        continue;
                    }
                    let ok = allowed
                        .iter()
                        .any(|(file, what)| rel == *file && line.contains(what));
                    assert!(
                        ok,
                        "{rel}:{}: reads raw input past the model: {line}",
                        i + 1
                    );
                }
            }
        }
    }

    /// Every finding keeps to its declaration: a declared severity, evidence
    /// weights from its declared list, a fix of a declared kind.
    #[test]
    fn findings_keep_to_their_declarations() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut files = vec![dir.join("docs/examples/seed-2018.snapshot.json")];
        for e in std::fs::read_dir(dir.join("tests/recordings")).unwrap() {
            files.push(e.unwrap().path());
        }
        let mut seen = 0;
        for f in files {
            let r = analyze(&Snapshot::load(&f).unwrap());
            for x in &r.findings {
                let d = x.cause.declaration();
                assert!(
                    d.severities.contains(&x.severity),
                    "{}: {:?}",
                    x.id(),
                    x.severity
                );
                for w in &x.confidence_basis {
                    assert!(d.evidence.contains(w), "{}: {w:?} not declared", x.id());
                }
                match &x.fixes {
                    Some(fixes) => {
                        for k in fixes.kinds() {
                            assert!(d.fix.contains(&k), "{}: {k:?}", x.id());
                        }
                    }
                    None => assert!(d.fix.is_empty(), "{}: no fix", x.id()),
                }
                seen += 1;
            }
        }
        assert!(seen >= 4, "the recordings hold findings to check");
    }
}
