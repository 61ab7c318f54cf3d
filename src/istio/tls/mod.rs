//! THE client-wire × server-mode decision: what the client sidecar puts on
//! the wire to each endpoint (plaintext, Istio mTLS, other TLS), what a
//! server accepts, and which mismatch (if any) makes the connection fail.
//!
//! Place in the flow: a pure helper (istio/). model and analyze rules
//! (`diagnose`), `tls-check` and later commands all call these functions;
//! none of them decides TLS on its own.
//!
//! - [`client`]: the *predicted* wire from config — DestinationRule `tls`
//!   for the port/subset × `enableAutoMtls` × the mode auto mTLS infers for
//!   the service × the endpoints' `security.istio.io/tlsMode` label
//!   (istio/istio `pilot/pkg/networking/core/cluster_tls.go`
//!   `buildUpstreamTLSSettings`, `applyUpstreamTLSSettings`;
//!   `pilot/pkg/model/push_context.go` `BestEffortInferServiceMTLSMode`);
//! - [`observed`]: the *observed* wire from a client cluster Envoy really
//!   runs (`envoy::config_dump::ClientTlsConfig`), and tls-check's verdict
//!   for a cluster's endpoints;
//! - [`inbound`]: what a server sidecar accepts per port, read from its
//!   inbound listeners (moved here from the Envoy parser).
//!
//! [`server_accepts`] and [`mismatch`] join the two sides.

use std::fmt;

use super::authn::MtlsMode;

pub mod client;
pub mod inbound;
pub mod observed;
#[cfg(test)]
mod tests;

pub use client::{
    decide_for, ClientTlsDecision, ClientTlsInput, ClientTlsMode, DecidedBy, EndpointLabels,
    ServiceKind,
};
pub use inbound::{
    inbound_catch_all, inbound_mode_for, inbound_modes, is_sidecar_inbound, InboundMode,
};
pub use observed::{
    cluster_verdict, describe_cluster_tls, is_istio_mtls_context, observed_wire, ClusterStatus,
    ClusterVerdict, EndpointView, ObservedClientTls,
};

/// What goes on the wire from a client to one server endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Wire {
    Plaintext,
    /// TLS with Istio's workload certificates and ALPN (`ISTIO_MUTUAL`, auto mTLS).
    IstioMtls,
    /// TLS the user configured (`SIMPLE`, `MUTUAL` with user certificates).
    OtherTls,
}

impl fmt::Display for Wire {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Wire::Plaintext => "plaintext",
            Wire::IstioMtls => "Istio mTLS",
            Wire::OtherTls => "user TLS",
        })
    }
}

/// The receiving side of one endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Server {
    /// No sidecar: the application itself reads the bytes.
    NoSidecar,
    /// A sidecar enforcing this mode on the port.
    Sidecar(MtlsMode),
}

/// Would a sidecar in `mode` accept what goes on the wire? `None` when it
/// depends on the application behind it (user TLS passed through).
///
/// The inbound chains istiod builds (pilot/pkg/networking/core
/// `listener_inbound.go`, authn `BuildInboundFilterChain`): STRICT has only
/// chains terminating TLS with a required client certificate (plaintext and
/// one-way TLS match nothing or fail the handshake → `NR
/// filter_chain_not_found` / reset); PERMISSIVE adds plaintext chains (and,
/// in recent releases, a TLS passthrough chain for non-Istio TLS); DISABLE
/// has only plaintext chains, so Istio mTLS reaches the app as garbage.
pub fn server_accepts(mode: MtlsMode, wire: Wire) -> Option<bool> {
    match wire {
        Wire::Plaintext => Some(mode.accepts_plaintext()),
        Wire::IstioMtls => Some(mode.accepts_mtls()),
        Wire::OtherTls => match mode {
            MtlsMode::Strict => Some(false),
            MtlsMode::Permissive | MtlsMode::Disable => None,
        },
    }
}

/// [`server_accepts`] for any server; a pod without sidecar takes plaintext,
/// refuses Istio mTLS, and may or may not serve user TLS itself.
pub fn accepts(server: Server, wire: Wire) -> Option<bool> {
    match server {
        Server::Sidecar(mode) => server_accepts(mode, wire),
        Server::NoSidecar => match wire {
            Wire::Plaintext => Some(true),
            Wire::IstioMtls => Some(false),
            Wire::OtherTls => None,
        },
    }
}

/// A client wire the server refuses: the mTLS causes of 503.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mismatch {
    /// Plaintext to a STRICT sidecar: client `503 UC`, server `NR filter_chain_not_found`.
    PlaintextToStrict,
    /// Istio mTLS to a DISABLE sidecar or to a pod without one: client `503
    /// UF` (`WRONG_VERSION_NUMBER`) or `UC`.
    MtlsToPlaintext,
    /// SIMPLE/MUTUAL TLS to a STRICT sidecar: `503 UF`/`UC`.
    OtherTlsToStrict,
}

impl Mismatch {
    /// tls-check's reason for a CONFLICT row.
    pub fn reason(&self) -> &'static str {
        match self {
            Mismatch::PlaintextToStrict => {
                "client sends plaintext, server accepts only mTLS (503 UC)"
            }
            Mismatch::MtlsToPlaintext => "client sends mTLS, server accepts only plaintext (503)",
            Mismatch::OtherTlsToStrict => {
                "client originates its own TLS, server requires Istio mTLS"
            }
        }
    }
}

/// The mismatch between a wire and a server, if they cannot talk. `None`
/// also when acceptance depends on the application (user TLS to a
/// PERMISSIVE/DISABLE sidecar or to a pod without one).
pub fn mismatch(wire: Wire, server: Server) -> Option<Mismatch> {
    match (wire, server) {
        (Wire::Plaintext, Server::Sidecar(MtlsMode::Strict)) => Some(Mismatch::PlaintextToStrict),
        (Wire::IstioMtls, Server::Sidecar(MtlsMode::Disable) | Server::NoSidecar) => {
            Some(Mismatch::MtlsToPlaintext)
        }
        (Wire::OtherTls, Server::Sidecar(MtlsMode::Strict)) => Some(Mismatch::OtherTlsToStrict),
        _ => None,
    }
}
