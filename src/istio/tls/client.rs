//! The client side predicted from config: what the client sidecar's cluster
//! for a service port sends, given the DestinationRule `tls` in force for the
//! port/subset, `enableAutoMtls`, the mode auto mTLS infers for the service,
//! the kind of service, and the endpoints' `security.istio.io/tlsMode` label.
//!
//! Place in the flow: part of `istio::tls` (a pure helper). The rule `tls`
//! comes from `destination_rule::effective_policy`, the inferred mode from
//! `authn::Authn::service_mode`.
//!
//! Sources: istio/istio `pilot/pkg/networking/core/cluster_tls.go`
//! (`buildUpstreamTLSSettings`: a user `tls` always wins; without one, auto
//! mTLS applies unless the service is mesh-external, auto mTLS is off, or the
//! inferred mode is DISABLE/unknown; `applyUpstreamTLSSettings`: an
//! auto-detected ISTIO_MUTUAL becomes `transport_socket_matches`
//! `tlsMode-istio` / `tlsMode-disabled`, except on ORIGINAL_DST clusters
//! (headless / PASSTHROUGH), which keep one TLS socket for every endpoint;
//! `defaultTransportSocketMatch`), `pilot/pkg/model/push_context.go`
//! (`BestEffortInferServiceMTLSMode`: passthrough services are DISABLE unless
//! every endpoint has a sidecar).

use std::fmt;

use super::Wire;
use crate::istio::authn::MtlsMode;
use crate::istio::destination_rule::{ClientTls, TlsMode};

/// The client-side TLS decision for a cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientTlsMode {
    /// Raw TCP / plaintext HTTP to every endpoint.
    Plaintext,
    /// Istio mTLS to every endpoint, sidecar or not (DestinationRule
    /// `ISTIO_MUTUAL`, or auto mTLS on a passthrough service whose endpoints
    /// all have sidecars).
    IstioMutual,
    /// User-configured one-way TLS (`SIMPLE`).
    Simple,
    /// User-configured mutual TLS with user certificates (`MUTUAL`).
    Mutual,
    /// Auto mTLS: Istio mTLS to endpoints labelled `security.istio.io/tlsMode: istio`
    /// (i.e. with a sidecar), plaintext to the others.
    AutoIstioMutual,
}

impl fmt::Display for ClientTlsMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ClientTlsMode::Plaintext => "plaintext",
            ClientTlsMode::IstioMutual => "ISTIO_MUTUAL",
            ClientTlsMode::Simple => "SIMPLE TLS",
            ClientTlsMode::Mutual => "MUTUAL TLS",
            ClientTlsMode::AutoIstioMutual => "auto mTLS",
        })
    }
}

/// Whether the destination endpoints carry `security.istio.io/tlsMode: istio`
/// (EDS metadata `envoy.transport_socket_match.tlsMode`, from the pod label
/// the injector sets).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndpointLabels {
    AllIstio,
    NoneIstio,
    Mixed,
    Unknown,
}

impl EndpointLabels {
    /// Summarize per-endpoint flags (`true` = labelled `tlsMode: istio`).
    pub fn from_flags<I: IntoIterator<Item = bool>>(flags: I) -> EndpointLabels {
        let (mut yes, mut no) = (0usize, 0usize);
        for f in flags {
            if f {
                yes += 1;
            } else {
                no += 1;
            }
        }
        match (yes, no) {
            (0, 0) => EndpointLabels::Unknown,
            (_, 0) => EndpointLabels::AllIstio,
            (0, _) => EndpointLabels::NoneIstio,
            _ => EndpointLabels::Mixed,
        }
    }
}

/// How the service is reached (what istiod builds its cluster from).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ServiceKind {
    /// A Kubernetes Service with a cluster IP (an EDS cluster).
    #[default]
    Mesh,
    /// Headless, or DestinationRule `loadBalancer.simple: PASSTHROUGH`: an
    /// ORIGINAL_DST cluster, no per-endpoint TLS choice.
    Passthrough,
    /// A `MESH_EXTERNAL` ServiceEntry: never auto mTLS.
    MeshExternal,
}

/// Why the client sends what it sends (typed; [`ClientTlsDecision::reason`]
/// is its sentence).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecidedBy {
    /// The DestinationRule's `tls.mode` (always wins).
    RuleTls(TlsMode),
    /// No rule `tls`, and the service is mesh-external.
    MeshExternal,
    /// No rule `tls`, and `enableAutoMtls` is off.
    AutoMtlsOff,
    /// No rule `tls`, auto mTLS on, but the inferred server mode is DISABLE.
    AutoMtlsServerDisable(MtlsMode),
    /// No rule `tls`, a passthrough service with an endpoint without sidecar
    /// (or none known): inferred DISABLE.
    PassthroughNotAllSidecars,
    /// No rule `tls`, a passthrough service whose endpoints all have
    /// sidecars: Istio mTLS to every endpoint (no per-endpoint match).
    AutoMtlsPassthrough(MtlsMode),
    /// No rule `tls`, auto mTLS per endpoint.
    AutoMtls(MtlsMode),
}

/// Everything the prediction reads.
#[derive(Debug, Clone, Copy)]
pub struct ClientTlsInput<'a> {
    /// The effective DestinationRule `tls` for the port/subset
    /// (`destination_rule::effective_policy`); `None` = the rule sets none.
    pub rule_tls: Option<&'a ClientTls>,
    /// `enableAutoMtls` (`mesh_config::MeshConfig::auto_mtls`).
    pub auto_mtls: bool,
    /// What auto mTLS infers for the service (`authn::Authn::service_mode`;
    /// workload-level policies are invisible to it).
    pub service_mode: MtlsMode,
    pub endpoints: EndpointLabels,
    pub service: ServiceKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientTlsDecision {
    pub mode: ClientTlsMode,
    /// Plain words: why this mode, citing the rule.
    pub reason: String,
    /// The endpoint labelling the decision was made with.
    pub endpoints: EndpointLabels,
    /// Why, typed.
    pub by: DecidedBy,
}

impl ClientTlsDecision {
    /// What the client sends to an endpoint with (`true`) or without the
    /// `tlsMode: istio` label.
    pub fn wire_for(&self, endpoint_labelled_istio: bool) -> Wire {
        match self.mode {
            ClientTlsMode::Plaintext => Wire::Plaintext,
            ClientTlsMode::IstioMutual => Wire::IstioMtls,
            ClientTlsMode::Simple | ClientTlsMode::Mutual => Wire::OtherTls,
            ClientTlsMode::AutoIstioMutual if endpoint_labelled_istio => Wire::IstioMtls,
            ClientTlsMode::AutoIstioMutual => Wire::Plaintext,
        }
    }

    /// `Some(true)` if every endpoint receives Istio mTLS, `Some(false)` if none
    /// does, `None` when it depends on the endpoint (auto mTLS with mixed or
    /// unknown labels).
    pub fn sends_istio_mtls(&self) -> Option<bool> {
        match self.mode {
            ClientTlsMode::IstioMutual => Some(true),
            ClientTlsMode::Plaintext | ClientTlsMode::Simple | ClientTlsMode::Mutual => Some(false),
            ClientTlsMode::AutoIstioMutual => match self.endpoints {
                EndpointLabels::AllIstio => Some(true),
                EndpointLabels::NoneIstio => Some(false),
                EndpointLabels::Mixed | EndpointLabels::Unknown => None,
            },
        }
    }
}

/// Predict the client TLS for a cluster (see the module doc for Istio's rules).
pub fn decide_for(input: &ClientTlsInput<'_>) -> ClientTlsDecision {
    let (mode, by) = match input.rule_tls.map(|t| &t.mode) {
        Some(m) => (
            match m {
                TlsMode::Disable | TlsMode::Other(_) => ClientTlsMode::Plaintext,
                TlsMode::Simple => ClientTlsMode::Simple,
                TlsMode::Mutual => ClientTlsMode::Mutual,
                TlsMode::IstioMutual => ClientTlsMode::IstioMutual,
            },
            DecidedBy::RuleTls(m.clone()),
        ),
        None => without_rule_tls(input),
    };
    ClientTlsDecision {
        reason: reason(&by, input.endpoints),
        mode,
        endpoints: input.endpoints,
        by,
    }
}

fn without_rule_tls(input: &ClientTlsInput<'_>) -> (ClientTlsMode, DecidedBy) {
    let mode = input.service_mode;
    match input.service {
        ServiceKind::MeshExternal => (ClientTlsMode::Plaintext, DecidedBy::MeshExternal),
        _ if !input.auto_mtls => (ClientTlsMode::Plaintext, DecidedBy::AutoMtlsOff),
        ServiceKind::Passthrough if input.endpoints != EndpointLabels::AllIstio => (
            ClientTlsMode::Plaintext,
            DecidedBy::PassthroughNotAllSidecars,
        ),
        _ if mode == MtlsMode::Disable => (
            ClientTlsMode::Plaintext,
            DecidedBy::AutoMtlsServerDisable(mode),
        ),
        ServiceKind::Passthrough => (
            ClientTlsMode::IstioMutual,
            DecidedBy::AutoMtlsPassthrough(mode),
        ),
        ServiceKind::Mesh => (ClientTlsMode::AutoIstioMutual, DecidedBy::AutoMtls(mode)),
    }
}

/// The sentence for a decision (report text).
fn reason(by: &DecidedBy, endpoints: EndpointLabels) -> String {
    match by {
        DecidedBy::RuleTls(TlsMode::Disable) => "the DestinationRule sets tls.mode DISABLE; explicit DestinationRule TLS always wins, auto mTLS or not, so the client sends plaintext".to_string(),
        DecidedBy::RuleTls(TlsMode::Simple) => "the DestinationRule sets tls.mode SIMPLE: the client originates one-way TLS without a client certificate (an Istio sidecar in STRICT mode rejects it)".to_string(),
        DecidedBy::RuleTls(TlsMode::Mutual) => "the DestinationRule sets tls.mode MUTUAL: the client originates TLS with the certificates the rule names".to_string(),
        DecidedBy::RuleTls(TlsMode::IstioMutual) => "the DestinationRule sets tls.mode ISTIO_MUTUAL: the client sends Istio mTLS to every endpoint, with or without a sidecar".to_string(),
        DecidedBy::RuleTls(TlsMode::Other(m)) => format!("the DestinationRule sets an unknown tls.mode {m:?}; Istio would reject it, assuming plaintext"),
        DecidedBy::MeshExternal => "no DestinationRule tls and the service is MESH_EXTERNAL: auto mTLS never applies, so the client sends plaintext".to_string(),
        DecidedBy::AutoMtlsOff => "no DestinationRule tls and auto mTLS is off, so the client sends plaintext".to_string(),
        DecidedBy::AutoMtlsServerDisable(_) => "no DestinationRule tls; auto mTLS is on but the destination's namespace/mesh PeerAuthentication is DISABLE, so the client sends plaintext".to_string(),
        DecidedBy::PassthroughNotAllSidecars => "no DestinationRule tls and the service is headless (or PASSTHROUGH): auto mTLS applies only when every endpoint has a sidecar, and not all do, so the client sends plaintext".to_string(),
        DecidedBy::AutoMtlsPassthrough(m) => format!("no DestinationRule tls and auto mTLS is on (destination namespace/mesh mode {m}); the service is headless (or PASSTHROUGH) and every endpoint has a sidecar, so the client sends Istio mTLS to every endpoint"),
        DecidedBy::AutoMtls(m) => format!(
            "no DestinationRule tls and auto mTLS is on (destination namespace/mesh mode {m}): Istio mTLS to endpoints labelled security.istio.io/tlsMode=istio, plaintext to the others{}",
            match endpoints {
                EndpointLabels::AllIstio => "; all endpoints are labelled, so mTLS",
                EndpointLabels::NoneIstio => "; no endpoint is labelled, so plaintext",
                EndpointLabels::Mixed => "; endpoints are mixed",
                EndpointLabels::Unknown => "",
            }
        ),
    }
}
