//! Analysis: a [`Snapshot`] in, ranked [`Finding`]s out. Pure: no I/O, no
//! clock, so a saved snapshot always gives the same report.
//!
//! One file per cause; each exposes `fn check(&Context) -> Vec<Finding>`.
//! [`rank`] orders them. Confidence rises when config predicts a failure and
//! the data plane (proxy config, `/clusters`, access logs) confirms it.

pub mod context;
pub mod mtls;
pub mod rank;
pub mod tls_check;
pub mod traffic;

use crate::snapshot::{Gap, Snapshot};
use serde::Serialize;

/// Version of the JSON report (`-o json`); see docs/report-schema.md.
pub const REPORT_SCHEMA: &str = "mesh503.io/report/v1";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    Error,
}

impl std::fmt::Display for Severity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        })
    }
}

/// Where a piece of evidence came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum EvidenceKind {
    /// Istio or Kubernetes objects: what *should* happen.
    Config,
    /// What a proxy runs or did: config_dump, /clusters, stats, access log.
    DataPlane,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Evidence {
    pub kind: EvidenceKind,
    /// `DestinationRule foo/httpbin`, `pod foo/sleep-… :15000/config_dump`, `pod foo/httpbin-… log`.
    pub source: String,
    pub detail: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Fix {
    pub summary: String,
    /// A manifest ready for `kubectl apply -f -`, when the fix is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub yaml: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// Stable identifier, e.g. `MTLS_PLAINTEXT_TO_STRICT`; see docs/findings.md.
    pub id: String,
    pub severity: Severity,
    /// 0–100: how sure the tool is. Config alone gives a middling score;
    /// data-plane confirmation raises it.
    pub confidence: u8,
    /// The one-line claim.
    pub claim: String,
    /// What it is about: `httpbin.foo.svc.cluster.local:8000` from `foo/sleep-…`.
    pub subject: String,
    /// The precedence chain in plain words.
    pub explanation: Vec<String>,
    pub evidence: Vec<Evidence>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<Fix>,
}

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

/// Run every check over a snapshot and rank the findings.
pub fn analyze(snapshot: &Snapshot) -> Report {
    let ctx = context::Context::new(snapshot);
    let mut findings = Vec::new();
    findings.extend(mtls::check(&ctx));
    findings.extend(traffic::check(&ctx));
    rank::rank(&mut findings);
    let mut gaps = snapshot.gaps.clone();
    for p in &snapshot.proxies {
        gaps.extend(p.gaps.iter().cloned());
    }
    gaps.extend(ctx.gaps());
    Report {
        schema: REPORT_SCHEMA,
        target: snapshot.target.clone(),
        namespace: snapshot.namespace.clone(),
        taken_at: snapshot.taken_at.clone(),
        findings,
        checked: ctx.checked(),
        gaps,
    }
}
