//! Server-side authentication: what a sidecar accepts on a port (STRICT,
//! PERMISSIVE, DISABLE) and what client-side auto mTLS believes about a
//! service, behind ONE interface for every Istio era, so that callers never
//! branch on legacy vs modern APIs.
//!
//! Place in the flow: a pure helper (istio/). model builds an [`Authn`] from
//! the snapshot's policies once; analyze rules and `tls-check` ask it
//! [`Authn::server_mode`] / [`Authn::namespace_mode`] / [`Authn::service_mode`];
//! `istio::tls` combines the answer with the client's wire.
//!
//! Eras ([`AuthnApi`]):
//! - **≤1.4** `authentication.istio.io/v1alpha1` MeshPolicy/Policy only
//!   ([`legacy_policy`]); a workload no policy covers gets no mTLS (1.4.0
//!   `pilot/pkg/security/authn/v1alpha1/policy_applier.go` `InboundFilterChain`:
//!   nil policy → no TLS chain);
//! - **1.5** both APIs: per workload, the PeerAuthentications that apply
//!   (mesh, namespace, workload) decide; if none applies, the v1alpha1
//!   policy for the service; if none either, **PERMISSIVE** (1.5.0
//!   `pilot/pkg/security/authn/factory/factory.go` `NewPolicyApplier`,
//!   `pilot/pkg/security/authn/v1beta1/policy_applier.go`
//!   `composePeerAuthentication` returning nil, `shouldUseAlphaMtlsPolicy`,
//!   `getMutualTLSModeForPort` → `MTLSPermissive`);
//! - **≥1.6** PeerAuthentication only ([`peer_auth`]); no policy = PERMISSIVE.

use std::collections::BTreeMap;
use std::fmt;

use super::mesh_config::IstioVersion;
use super::object::ObjectRef;

pub mod legacy_policy;
pub mod peer_auth;

pub use legacy_policy::{LegacyMtls, LegacyPolicies, LegacyPolicy, PortSelector, Target};
pub use peer_auth::{PaMode, PeerAuthPolicies, PeerAuthentication};

/// The effective mTLS mode of a server-side sidecar (what its inbound listener accepts).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum MtlsMode {
    /// Only mTLS.
    Strict,
    /// mTLS and plaintext.
    Permissive,
    /// Only plaintext.
    Disable,
}

impl MtlsMode {
    pub fn as_str(&self) -> &'static str {
        match self {
            MtlsMode::Strict => "STRICT",
            MtlsMode::Permissive => "PERMISSIVE",
            MtlsMode::Disable => "DISABLE",
        }
    }
    pub fn accepts_plaintext(&self) -> bool {
        !matches!(self, MtlsMode::Strict)
    }
    pub fn accepts_mtls(&self) -> bool {
        !matches!(self, MtlsMode::Disable)
    }
}

impl fmt::Display for MtlsMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which scope decided a server mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModeSource {
    /// No applicable policy set a mode: Istio's default (PERMISSIVE for
    /// PeerAuthentication and in 1.5, no mTLS for the legacy v1alpha1 API).
    Default,
    Mesh(ObjectRef),
    Namespace(ObjectRef),
    Workload(ObjectRef),
    /// `portLevelMtls` of a workload policy (container port).
    WorkloadPort(ObjectRef, u32),
    /// authentication.istio.io/v1alpha1 `MeshPolicy`.
    LegacyMesh(ObjectRef),
    /// v1alpha1 namespace-wide `Policy` (no targets).
    LegacyNamespace(ObjectRef),
    /// v1alpha1 `Policy` targeting the service (optionally a port).
    LegacyService(ObjectRef),
}

impl fmt::Display for ModeSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ModeSource::Default => f.write_str("no policy (Istio default)"),
            ModeSource::Mesh(r) | ModeSource::LegacyMesh(r) => write!(f, "mesh-wide {r}"),
            ModeSource::Namespace(r) | ModeSource::LegacyNamespace(r) => {
                write!(f, "namespace-wide {r}")
            }
            ModeSource::Workload(r) => write!(f, "workload {r}"),
            ModeSource::WorkloadPort(r, p) => write!(f, "{r} portLevelMtls[{p}]"),
            ModeSource::LegacyService(r) => write!(f, "service-specific {r}"),
        }
    }
}

/// The server-side mode and how it was reached.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerMode {
    pub mode: MtlsMode,
    /// The narrowest policy that set the mode.
    pub source: ModeSource,
    /// Plain-words steps, broadest first (`mesh: istio-system/default sets STRICT`, …).
    pub chain: Vec<String>,
    /// Policies that apply to the scope but were ignored, and why.
    pub ignored: Vec<String>,
}

impl ServerMode {
    /// The chain as one sentence.
    pub fn explain(&self) -> String {
        let mut s = format!("{} (decided by {})", self.mode, self.source);
        if !self.chain.is_empty() {
            s.push_str(": ");
            s.push_str(&self.chain.join("; "));
        }
        s
    }
}

/// A service port traffic was addressed to (the v1alpha1 API targets
/// services and service ports; PeerAuthentication ignores it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServicePort<'a> {
    /// The Service's name (short; resolved in the workload's namespace).
    pub name: &'a str,
    pub number: u32,
    /// The port's `name`, if any.
    pub port_name: Option<&'a str>,
}

/// One question about a server workload.
#[derive(Debug, Clone, Copy)]
pub struct ServerQuery<'a> {
    pub namespace: &'a str,
    /// The pod's labels (PeerAuthentication selectors match them).
    pub labels: &'a BTreeMap<String, String>,
    /// The container (target) port; `None` = the workload-wide mode.
    pub container_port: Option<u32>,
    /// The service and port the traffic was for, when known.
    pub service: Option<ServicePort<'a>>,
}

/// The policies of one authentication API.
pub trait AuthnPolicies {
    /// The mode of one workload port, or `None` when no policy of this API
    /// applies to the workload (the era's fallback decides then).
    fn workload_mode(&self, q: &ServerQuery<'_>) -> Option<ServerMode>;
    /// The mode client-side auto mTLS infers for a namespace (and, for the
    /// v1alpha1 API, a service port), or `None` when no policy of this API applies.
    fn visible_mode(&self, namespace: &str, service: Option<ServicePort<'_>>)
        -> Option<ServerMode>;
}

/// Which API decides the server mode (Istio release era).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthnApi {
    /// Istio ≤1.4: v1alpha1 MeshPolicy/Policy; no policy = no mTLS.
    Legacy,
    /// Istio 1.5: PeerAuthentication, else the v1alpha1 policy, else PERMISSIVE.
    Transitional,
    /// Istio ≥1.6: PeerAuthentication; no policy = PERMISSIVE.
    PeerAuthentication,
}

/// What tells the era apart.
#[derive(Debug, Clone, Copy, Default)]
pub struct AuthnEvidence {
    /// The API server serves `PeerAuthentication`; `None` = discovery not read.
    pub peer_auth_served: Option<bool>,
    /// The API server serves `authentication.istio.io`; `None` = not read.
    pub legacy_served: Option<bool>,
    pub version: Option<IstioVersion>,
    pub has_peer_auth: bool,
    pub has_legacy: bool,
}

impl AuthnEvidence {
    /// The era: from the served APIs when discovery was read (Istio 1.5
    /// served both, ≤1.4 only v1alpha1, ≥1.6 only PeerAuthentication), else
    /// from the Istio version, else from the objects found.
    pub fn api(&self) -> AuthnApi {
        match (self.peer_auth_served, self.legacy_served) {
            (Some(true), Some(true)) => return AuthnApi::Transitional,
            (Some(false), Some(true)) => return AuthnApi::Legacy,
            (Some(true), Some(false)) => return AuthnApi::PeerAuthentication,
            _ => {}
        }
        if let Some(v) = self.version {
            return if !v.at_least(1, 5) {
                AuthnApi::Legacy
            } else if !v.at_least(1, 6) {
                AuthnApi::Transitional
            } else {
                AuthnApi::PeerAuthentication
            };
        }
        match (self.has_peer_auth, self.has_legacy) {
            (false, true) => AuthnApi::Legacy,
            (true, true) => AuthnApi::Transitional,
            _ => AuthnApi::PeerAuthentication,
        }
    }
}

/// Every authentication policy of a mesh, answering for its era.
#[derive(Debug, Clone)]
pub struct Authn {
    pub api: AuthnApi,
    pub peer_auth: PeerAuthPolicies,
    pub legacy: LegacyPolicies,
}

impl Authn {
    /// `root_ns` = `meshConfig.rootNamespace` (empty = `istio-system`);
    /// `domain` = the cluster domain v1alpha1 targets resolve in.
    pub fn new(
        api: AuthnApi,
        root_ns: &str,
        domain: &str,
        peer_auths: Vec<PeerAuthentication>,
        legacy: Vec<LegacyPolicy>,
    ) -> Authn {
        Authn {
            api,
            peer_auth: PeerAuthPolicies::new(peer_auths, root_ns),
            legacy: LegacyPolicies::new(legacy, domain),
        }
    }

    /// What the workload's sidecar enforces on a port.
    pub fn server_mode(&self, q: &ServerQuery<'_>) -> ServerMode {
        match self.api {
            AuthnApi::PeerAuthentication => self.peer_auth.server_mode(q),
            AuthnApi::Legacy => self.legacy_or_default(q.namespace, q.service),
            AuthnApi::Transitional => self
                .peer_auth
                .workload_mode(q)
                .unwrap_or_else(|| self.transitional_fallback(q.namespace, q.service)),
        }
    }

    /// What client-side auto mTLS sees for `ns` (namespace- and mesh-wide
    /// policy only; workload policies are invisible to it, istio/istio#32788).
    pub fn namespace_mode(&self, ns: &str) -> ServerMode {
        self.visible(ns, None)
    }

    /// What auto mTLS infers for one service port (push_context.go
    /// `BestEffortInferServiceMTLSMode`; in 1.4 cluster.go used the
    /// v1alpha1 policy of the service port, `AuthenticationPolicyForWorkload`).
    pub fn service_mode(&self, ns: &str, service: ServicePort<'_>) -> ServerMode {
        self.visible(ns, Some(service))
    }

    fn visible(&self, ns: &str, service: Option<ServicePort<'_>>) -> ServerMode {
        match self.api {
            AuthnApi::PeerAuthentication => self.peer_auth.namespace_mode(ns),
            AuthnApi::Legacy => self.legacy_or_default(ns, service),
            AuthnApi::Transitional => self
                .peer_auth
                .visible_mode(ns, service)
                .unwrap_or_else(|| self.transitional_fallback(ns, service)),
        }
    }

    /// ≤1.4: the v1alpha1 policy, or no mTLS.
    fn legacy_or_default(&self, ns: &str, service: Option<ServicePort<'_>>) -> ServerMode {
        self.legacy.server_mode(ns, service)
    }

    /// 1.5 without an applicable PeerAuthentication: the v1alpha1 policy,
    /// else PERMISSIVE.
    fn transitional_fallback(&self, ns: &str, service: Option<ServicePort<'_>>) -> ServerMode {
        let note = "no PeerAuthentication applies; Istio 1.5 falls back to the v1alpha1 policy";
        match self.legacy.visible_mode(ns, service) {
            Some(mut m) => {
                m.chain.insert(0, note.to_string());
                m
            }
            None => ServerMode {
                mode: MtlsMode::Permissive,
                source: ModeSource::Default,
                chain: vec![
                    note.to_string(),
                    "no v1alpha1 policy applies either: PERMISSIVE (the Istio 1.5 default)"
                        .to_string(),
                ],
                ignored: Vec::new(),
            },
        }
    }
}

#[cfg(test)]
mod tests;
