//! Analyze stage: what a rule returns. A [`Finding`] names its [`Cause`]
//! (declared once in the catalog), carries [`Evidence`] whose source is typed,
//! a [`Confidence`] built from the declared weights, and an optional [`Fix`].
//! The JSON report serializes these as documented in docs/report-schema.md.

use std::fmt;

use serde::{Serialize, Serializer};

use super::catalog::Cause;
use super::confidence::{Confidence, Weight};
pub use super::fix::{Fix, Fixes};
use crate::istio::authn::ModeSource;
use crate::istio::object::ObjectRef;
use crate::model::{PodKey, ServiceKey};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    Error,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
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

/// The typed source of a piece of evidence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceRef {
    /// An Istio or Kubernetes object (`DestinationRule foo/httpbin`).
    Object(ObjectRef),
    /// The policy that decided a server mode.
    Policy(ModeSource),
    /// `ConfigMap <ns>/istio`.
    MeshConfig(String),
    Service(ServiceKey),
    /// The EndpointSlices of a Service.
    Endpoints(ServiceKey),
    /// A sidecar's `/config_dump`, by proxy label (`foo/sleep-1`).
    ConfigDump(String),
    /// A sidecar's `/clusters`.
    AdminClusters(String),
    /// A sidecar's `/stats`.
    Stats(String),
    /// A sidecar's access log.
    AccessLog(String),
    /// A sidecar's Istio standard metrics.
    Metrics(String),
    /// A caller of the target, found from its side (`namespace foo`).
    Caller(String),
}

impl SourceRef {
    pub fn kind(&self) -> EvidenceKind {
        match self {
            SourceRef::Object(_)
            | SourceRef::Policy(_)
            | SourceRef::MeshConfig(_)
            | SourceRef::Service(_)
            | SourceRef::Endpoints(_)
            | SourceRef::Caller(_) => EvidenceKind::Config,
            _ => EvidenceKind::DataPlane,
        }
    }

    pub fn pod_log(pod: &PodKey) -> SourceRef {
        SourceRef::AccessLog(pod.to_string())
    }
}

impl fmt::Display for SourceRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SourceRef::Object(r) => write!(f, "{r}"),
            SourceRef::Policy(ModeSource::Default) => f.write_str("no PeerAuthentication"),
            SourceRef::Policy(s) => write!(f, "{s}"),
            SourceRef::MeshConfig(ns) => write!(f, "ConfigMap {ns}/istio"),
            SourceRef::Service(s) => write!(f, "Service {s}"),
            SourceRef::Endpoints(s) => write!(f, "EndpointSlices of {s}"),
            SourceRef::ConfigDump(p) => write!(f, "pod {p} :15000/config_dump"),
            SourceRef::AdminClusters(p) => write!(f, "pod {p} :15000/clusters"),
            SourceRef::Stats(p) => write!(f, "pod {p} :15000/stats"),
            SourceRef::AccessLog(p) => write!(f, "pod {p} istio-proxy log"),
            SourceRef::Metrics(p) => write!(f, "pod {p} :15020/stats/prometheus"),
            SourceRef::Caller(c) => write!(f, "caller {c}"),
        }
    }
}

impl Serialize for SourceRef {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Evidence {
    pub kind: EvidenceKind,
    pub source: SourceRef,
    pub detail: String,
}

impl Evidence {
    pub fn new(source: SourceRef, detail: impl Into<String>) -> Evidence {
        Evidence {
            kind: source.kind(),
            source,
            detail: detail.into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// Stable identifier (`MTLS_PLAINTEXT_TO_STRICT`): the cause's id.
    #[serde(rename = "id")]
    pub cause: Cause,
    pub severity: Severity,
    /// 0–99: how sure the tool is ([`Confidence::score`]).
    pub confidence: u8,
    /// The kinds of evidence the score is made of.
    pub confidence_basis: Vec<Weight>,
    /// The one-line claim.
    pub claim: String,
    /// What it is about: `httpbin.foo.svc.cluster.local:8000` from `foo/sleep-…`.
    pub subject: String,
    /// The precedence chain in plain words.
    pub explanation: Vec<String>,
    pub evidence: Vec<Evidence>,
    /// The fix chosen after checking every candidate against the mesh, the
    /// candidates rejected and why (docs/fixes.md).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fixes: Option<Fixes>,
}

impl Finding {
    /// A finding of `cause` at its declared default severity.
    pub fn new(
        cause: Cause,
        subject: impl Into<String>,
        claim: impl Into<String>,
        confidence: &Confidence,
    ) -> Finding {
        Finding {
            cause,
            severity: cause.declaration().severities[0],
            confidence: confidence.score(),
            confidence_basis: confidence.basis().to_vec(),
            claim: claim.into(),
            subject: subject.into(),
            explanation: vec![],
            evidence: vec![],
            fixes: None,
        }
    }

    /// The stable id (`MTLS_PLAINTEXT_TO_STRICT`).
    pub fn id(&self) -> &'static str {
        self.cause.id()
    }

    pub fn with_severity(mut self, s: Severity) -> Finding {
        self.severity = s;
        self
    }

    pub fn explain(mut self, lines: impl IntoIterator<Item = String>) -> Finding {
        self.explanation.extend(lines);
        self
    }

    pub fn evidence(mut self, e: impl IntoIterator<Item = Evidence>) -> Finding {
        self.evidence.extend(e);
        self
    }

    /// One fix, nothing else evaluated (advice, or a fix that changes no object).
    pub fn fix(mut self, f: Option<Fix>) -> Finding {
        self.fixes = f.map(Fixes::only);
        self
    }

    /// The fixes the engine chose and rejected ([`super::fix::fixes_for`]).
    pub fn fixes(mut self, f: Fixes) -> Finding {
        self.fixes = Some(f);
        self
    }

    /// The chosen fix, if any.
    pub fn chosen_fix(&self) -> Option<&Fix> {
        self.fixes.as_ref().and_then(|f| f.chosen.as_ref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_print_as_the_report_always_did() {
        let dr = SourceRef::Object(ObjectRef {
            kind: "DestinationRule".into(),
            namespace: "foo".into(),
            name: "httpbin".into(),
        });
        assert_eq!(dr.to_string(), "DestinationRule foo/httpbin");
        assert_eq!(dr.kind(), EvidenceKind::Config);
        let log = SourceRef::pod_log(&PodKey::new("foo", "sleep-1"));
        assert_eq!(log.to_string(), "pod foo/sleep-1 istio-proxy log");
        assert_eq!(log.kind(), EvidenceKind::DataPlane);
        assert_eq!(
            SourceRef::Policy(ModeSource::Default).to_string(),
            "no PeerAuthentication"
        );
        let e = serde_json::to_value(Evidence::new(log, "x")).unwrap();
        assert_eq!(e["kind"], "data-plane");
        assert_eq!(e["source"], "pod foo/sleep-1 istio-proxy log");
    }
}
