//! Analyze stage: fixes an on-call engineer can apply blind (docs/fixes.md).
//!
//! Each cause declares, in the catalog, the kinds of fix it may print in the
//! order they are tried ([`FixKind`]; `Declaration::fix`). A rule describes
//! its failure as a [`Problem`]; [`fixes_for`] asks the generator of every
//! declared kind for candidates (complete manifests built from the model's
//! [`Manifest`](crate::model::Manifest)s, in the release's own API versions
//! and field names), applies each candidate to a copy of the model
//! (`Mesh::with_config`) and compares every (caller, service, port) pair the
//! snapshot knows before and after with the same decisions the analysis
//! uses ([`blast`]). The first candidate that repairs the failing pairs,
//! breaks no working pair and downgrades no sidecar-to-sidecar mTLS is the
//! fix; the others are reported as rejected, with the pairs they would
//! break. When none is safe, or when RBAC hid the rules that decide, the
//! report says so instead of printing a risky change.
//!
//! Layout: [`candidate`] (what a candidate is, DestinationRule placement),
//! [`tls`], [`traffic`], [`subset`] (generators per cause), [`blast`] (pairs
//! before/after), [`engine`] (choosing), [`release`] (API versions, field
//! names), [`text`] (the paste-ready block, file names).

pub mod blast;
pub mod candidate;
mod engine;
mod problem;
pub mod release;
mod subset;
pub mod text;
mod tls;
mod traffic;

#[cfg(test)]
mod tests;

use serde::Serialize;

use crate::model::Manifest;

pub use engine::fixes_for;
pub use problem::{PoolProblem, Problem, SubsetProblem, TlsProblem};

/// The kind of change a fix asks for. A cause's declaration lists the kinds
/// it may print, in the order they are tried (docs/fixes.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FixKind {
    /// The server's own narrower policy dropped mTLS by omission (a legacy
    /// `Policy` without `peers`): add the missing peer authentication.
    EditServerPolicy,
    /// Edit the DestinationRule in force for this host (port level when a
    /// port-level entry decided).
    EditDestinationRule,
    /// A DestinationRule for this host only, where the lookup finds it first.
    NewDestinationRule,
    /// A DestinationRule for this host and the failing client's workload only
    /// (`workloadSelector`, Istio 1.14+).
    ScopedDestinationRule,
    /// Edit the namespace- or mesh-wide rule in force (strengthening only;
    /// weakening a wide rule for one service is always rejected).
    EditWideDestinationRule,
    /// Inject a sidecar into the caller, or relax the server's PeerAuthentication.
    InjectSidecarOrRelaxPolicy,
    /// Raise the connectionPool limits that are reached.
    TuneConnectionPool,
    /// Fix the errors behind ejections; tune outlierDetection.
    TuneOutlierDetection,
    /// `connectionPool.http.idleTimeout` below the app's keep-alive timeout.
    TuneIdleTimeout,
    /// Make pods matching the selector ready.
    ReadyEndpoints,
    /// Define the subset the route names (make-before-break).
    DefineSubset,
    /// Route to the pods that exist until the subset's pods do.
    RouteToExistingPods,
    /// Change the application (bind address, keep-alive).
    ChangeApplication,
    /// Name the port `<protocol>[-suffix]` or set appProtocol.
    DeclareProtocol,
    /// Edit the VirtualService route (destination host, port, subset,
    /// fault) or the DestinationRule subset it names.
    EditRoute,
    /// Not a fix: investigate.
    #[default]
    Investigate,
}

impl FixKind {
    pub fn describe(self) -> &'static str {
        match self {
            FixKind::EditServerPolicy => {
                "add the peer authentication the server's own policy left out (legacy Policy `peers`)"
            }
            FixKind::EditDestinationRule => {
                "edit the DestinationRule in force for this host (port level when a port-level entry decided)"
            }
            FixKind::NewDestinationRule => {
                "create a DestinationRule for this host only, where Istio's lookup finds it first"
            }
            FixKind::ScopedDestinationRule => {
                "create a DestinationRule for this host and the failing client's workload only (workloadSelector, Istio 1.14+)"
            }
            FixKind::EditWideDestinationRule => {
                "edit the namespace- or mesh-wide DestinationRule (only to strengthen it)"
            }
            FixKind::InjectSidecarOrRelaxPolicy => {
                "inject a sidecar into the caller, or relax the server's PeerAuthentication"
            }
            FixKind::TuneConnectionPool => {
                "raise the DestinationRule's connectionPool limits that are reached"
            }
            FixKind::TuneOutlierDetection => {
                "fix the errors behind the ejections; tune outlierDetection"
            }
            FixKind::TuneIdleTimeout => {
                "set connectionPool.http.idleTimeout below the app's keep-alive timeout"
            }
            FixKind::ReadyEndpoints => "make pods matching the Service's selector ready",
            FixKind::DefineSubset => {
                "define the subset in the DestinationRule in force for the route (make-before-break)"
            }
            FixKind::RouteToExistingPods => {
                "route to the Service's pods until pods of the subset exist"
            }
            FixKind::ChangeApplication => "change the application",
            FixKind::DeclareProtocol => "name the port <protocol>[-suffix] or set appProtocol",
            FixKind::EditRoute => {
                "edit the VirtualService route (destination, subset, fault, gateway binding) or the DestinationRule subset it names"
            }
            FixKind::Investigate => "none: investigate (istioctl proxy-status)",
        }
    }

    /// Whether this kind prints manifests (and so is checked against the mesh).
    pub fn prints_manifests(self) -> bool {
        !matches!(
            self,
            FixKind::InjectSidecarOrRelaxPolicy
                | FixKind::ReadyEndpoints
                | FixKind::ChangeApplication
                | FixKind::DeclareProtocol
                | FixKind::Investigate
        )
    }
}

/// What a fix does to an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// A new object.
    Create,
    /// The whole object as it is, with the change (never a partial object).
    Edit,
}

/// One object of a fix, complete, for `kubectl apply -f -`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FixManifest {
    pub action: Action,
    /// `DestinationRule foo/httpbin`.
    pub object: String,
    /// `<kind>-<namespace>-<name>.yaml` (what `--fix-out` writes).
    pub file: String,
    pub yaml: String,
    /// The same object as data.
    pub manifest: Manifest,
}

impl Eq for FixManifest {}

/// What goes on the wire between a caller and a service port, and whether
/// the server takes it (predicted from config: the same decisions as the
/// analysis).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PairState {
    /// `Istio mTLS`, `plaintext`, `user TLS`, or `mixed` across the pods.
    pub wire: String,
    /// The server pods' mode (`STRICT`, `PERMISSIVE`, `DISABLE`, `no sidecar`, or `mixed`).
    pub server: String,
    /// `ok`, `refused` (TLS refused, or a route to an undefined subset), or
    /// `unknown` (depends on certificates).
    pub outcome: String,
    /// The caller's connection pool towards the port, when one is set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pool: Option<String>,
    /// The subsets routes name for the host, when any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub routes: Option<String>,
}

/// One (caller, host, port) pair, before and after a fix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PairChange {
    /// `foo/sleep-1`, or `any sidecar client in foo`.
    pub client: String,
    pub host: String,
    pub port: u16,
    pub before: PairState,
    pub after: PairState,
    /// Why it matters (`breaks`, `downgrades mTLS to plaintext`, `repairs`, `unchanged`).
    pub change: String,
}

/// What the chosen fix does to the pairs the snapshot knows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Effect {
    /// Pairs that fail now and work after.
    pub repairs: Vec<PairChange>,
    /// Pairs otherwise changed: their connection pool or routes (no TLS
    /// change, no break).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<PairChange>,
    /// How many pairs were evaluated.
    pub checked: usize,
    /// How many of them keep their wire, server mode and outcome.
    pub unchanged: usize,
    /// A few of those, named.
    pub unchanged_sample: Vec<PairChange>,
}

/// How to check the fix worked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verify {
    /// The exact command to run again.
    pub command: String,
    /// What should change (the response flag that disappears).
    pub expect: String,
}

/// A fix: words, and the complete manifests when it is one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Fix {
    pub kind: FixKind,
    pub summary: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub manifests: Vec<FixManifest>,
    /// The block to paste: `kubectl apply -f - <<'EOF'`, the YAML, `EOF`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub apply: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub effect: Option<Effect>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verify: Option<Verify>,
    /// Other things to know (the alternative of injecting a sidecar, …).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

impl Fix {
    /// A fix in words only.
    pub fn advice(kind: FixKind, summary: impl Into<String>) -> Fix {
        Fix {
            kind,
            summary: summary.into(),
            manifests: vec![],
            apply: None,
            effect: None,
            verify: None,
            notes: vec![],
        }
    }

    /// The first manifest's YAML (most fixes change one object).
    pub fn yaml(&self) -> Option<&str> {
        self.manifests.first().map(|m| m.yaml.as_str())
    }
}

/// A candidate that was evaluated and not printed as the fix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rejected {
    pub kind: FixKind,
    pub summary: String,
    /// Why it is not the fix.
    pub reason: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub manifests: Vec<FixManifest>,
    /// Working pairs it would break or downgrade.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub breaks: Vec<PairChange>,
}

/// The fixes of one finding: the one to apply, the ones rejected, and why
/// there is none when there is none.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct Fixes {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chosen: Option<Fix>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub rejected: Vec<Rejected>,
    /// Why no fix is printed (no safe candidate, or it cannot be computed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub none: Option<String>,
    /// What the check could not see (callers outside the snapshot, …).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub limits: Vec<String>,
}

impl Fixes {
    /// One fix, in words or with manifests, nothing else evaluated.
    pub fn only(fix: Fix) -> Fixes {
        Fixes {
            chosen: Some(fix),
            ..Fixes::default()
        }
    }

    /// Every kind of fix this holds (chosen and rejected).
    pub fn kinds(&self) -> impl Iterator<Item = FixKind> + '_ {
        self.chosen
            .iter()
            .map(|f| f.kind)
            .chain(self.rejected.iter().map(|r| r.kind))
    }
}

/// The fixes of an mTLS finding (a caller × port whose server refuses what
/// it gets): `want` is the client TLS the server accepts.
pub fn for_tls_case(
    mesh: &crate::model::Mesh,
    cause: crate::analyze::catalog::Cause,
    case: &crate::analyze::rules::tls_paths::TlsCase,
    want: crate::istio::destination_rule::TlsMode,
) -> Fixes {
    let caller = blast::Caller {
        label: format!("{}{}", case.caller.label, case.caller.replicas),
        client: case.caller.client.clone(),
        sidecar: true,
        hypothetical: case.caller.proxy.is_none(),
        pod: case.caller.proxy.and_then(|p| p.pod.clone()),
    };
    let problem = Problem::Tls(TlsProblem {
        svc: case.svc,
        port: case.port,
        caller,
        pod: case.pod,
        want,
    });
    fixes_for(mesh, cause, &problem)
}

/// The fixes of a circuit-breaker overflow seen by `group` towards
/// `svc:port`: the concurrency limits in force raised above the peak the
/// client's log shows.
pub fn for_overflow(
    mesh: &crate::model::Mesh,
    svc: &crate::model::Service,
    port: &crate::model::ServicePort,
    group: &crate::model::ClientGroup,
) -> Fixes {
    use crate::model::PoolField;
    let caller = caller_of_group(group);
    let ct = mesh.client_tls(&caller.client, svc, port.number);
    let pool = ct.policy.as_ref().and_then(|p| p.connection_pool.as_ref());
    let mut current = Vec::new();
    if let Some(v) = pool
        .and_then(|c| c.tcp.as_ref())
        .and_then(|t| t.max_connections)
    {
        current.push((PoolField::MaxConnections, v));
    }
    if let Some(h) = pool.and_then(|c| c.http.as_ref()) {
        if let Some(v) = h.http1_max_pending_requests {
            current.push((PoolField::Http1MaxPendingRequests, v));
        }
        if let Some(v) = h.http2_max_requests {
            current.push((PoolField::Http2MaxRequests, v));
        }
    }
    let lines: Vec<&crate::envoy::access_log::AccessLogEntry> = group
        .proxy
        .log
        .entries
        .iter()
        .filter(|e| crate::analyze::rules::common::log_line_targets(e, port.number, &svc.fqdn))
        .collect();
    let peak = traffic::peak_in_flight(&lines);
    let limits = traffic::raised_limits(&current, peak);
    if limits.is_empty() {
        return Fixes::only(Fix::advice(
            FixKind::TuneConnectionPool,
            format!(
                "no connectionPool limit in the DestinationRule in force for {} from {} is below the load its log shows: send less concurrent load, or look for Envoy's own defaults (max_requests, max_pending_requests 1024 before Istio 1.4)",
                svc.fqdn, caller.label
            ),
        ));
    }
    let problem = Problem::Pool(PoolProblem {
        svc,
        port,
        caller,
        change: problem::PoolChange::Limits(limits),
    });
    let mut fixes = fixes_for(
        mesh,
        crate::analyze::Cause::CircuitBreakerOverflow,
        &problem,
    );
    if let Some(f) = fixes.chosen.as_mut() {
        f.notes.push(match peak {
            Some(p) => format!("The client's log shows up to {} in flight at once (refused ones counted for as long as admitted ones took); the limits are set to twice that. They still protect {}: raise them further only with the server's capacity in mind.", crate::words::counts(p as usize, "request"), svc.key.name),
            None => "The client's log does not show the load (no timestamps): the limits are set to four times their value, at least 100.".into(),
        });
    }
    fixes
}

/// The fixes of the keep-alive race on `server`'s inbound cluster for
/// `svc:port`: an idle timeout below the app's keep-alive, from the log.
pub fn for_keepalive(
    mesh: &crate::model::Mesh,
    svc: &crate::model::Service,
    port: &crate::model::ServicePort,
    server: &crate::model::Proxy,
    inbound: &[&crate::envoy::access_log::AccessLogEntry],
) -> Fixes {
    let advice = || {
        Fix::advice(
            FixKind::ChangeApplication,
            "make the app's keep-alive timeout longer than Envoy's idle timeout, or set connectionPool.http.idleTimeout in the DestinationRule for the service below the app's keep-alive timeout; retries on reset help too",
        )
    };
    let pod = server.pod.as_ref().and_then(|k| mesh.pod(k));
    let (Some(pod), Some((timeout, why))) = (pod, traffic::idle_timeout(inbound)) else {
        return Fixes::only(advice());
    };
    let problem = Problem::Pool(PoolProblem {
        svc,
        port,
        caller: blast::Caller::of_pod(pod),
        change: problem::PoolChange::IdleTimeout(timeout),
    });
    let mut fixes = fixes_for(
        mesh,
        crate::analyze::Cause::UpstreamConnectionReset,
        &problem,
    );
    if let Some(f) = fixes.chosen.as_mut() {
        f.notes.push(format!(
            "The timeout comes from {}'s log: {why}. Use a value below the app's real keep-alive timeout if you know it. istiod applies the rule to {}'s own inbound cluster (where the race is) and to its clients' connections (they reconnect sooner: harmless).",
            server.label, svc.key.name
        ));
    }
    fixes
}

/// The client a replica group stands for, as the fix engine sees it.
fn caller_of_group(group: &crate::model::ClientGroup) -> blast::Caller {
    let mut c = match group.pod {
        Some(p) => blast::Caller::of_pod(p),
        None => blast::Caller {
            label: group.proxy.label.clone(),
            client: group.client(),
            sidecar: true,
            hypothetical: false,
            pod: group.proxy.pod.clone(),
        },
    };
    c.label = group.proxy.label.clone();
    c
}
