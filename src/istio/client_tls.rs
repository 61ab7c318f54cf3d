//! What the client sidecar sends to a destination: plaintext, Istio mTLS, or
//! user TLS.
//!
//! Source: istio/istio `pilot/pkg/networking/core/cluster_tls.go`
//! (`buildUpstreamTLSSettings`, `buildAutoMtlsSettings`,
//! `defaultTransportSocketMatch`) and `pilot/pkg/model/push_context.go`
//! (`BestEffortInferServiceMTLSMode`).

use std::fmt;

use super::destination_rule::{ClientTls, TlsMode};
use super::peer_auth::MtlsMode;

/// The client-side TLS decision for a cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientTlsMode {
    /// Raw TCP / plaintext HTTP to every endpoint.
    Plaintext,
    /// Istio mTLS (DestinationRule `ISTIO_MUTUAL`) to every endpoint, sidecar or not.
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

/// What actually goes on the wire to one endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wire {
    Plaintext,
    IstioMtls,
    Tls,
    MutualTls,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientTlsDecision {
    pub mode: ClientTlsMode,
    /// Plain words: why this mode, citing the rule.
    pub reason: String,
    /// The endpoint labelling the decision was made with.
    pub endpoints: EndpointLabels,
}

impl ClientTlsDecision {
    /// What the client sends to an endpoint with (`true`) or without the
    /// `tlsMode: istio` label.
    pub fn wire_for(&self, endpoint_labelled_istio: bool) -> Wire {
        match self.mode {
            ClientTlsMode::Plaintext => Wire::Plaintext,
            ClientTlsMode::IstioMutual => Wire::IstioMtls,
            ClientTlsMode::Simple => Wire::Tls,
            ClientTlsMode::Mutual => Wire::MutualTls,
            ClientTlsMode::AutoIstioMutual => {
                if endpoint_labelled_istio {
                    Wire::IstioMtls
                } else {
                    Wire::Plaintext
                }
            }
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

/// Decide the client TLS for a cluster.
///
/// `tls` is the effective DestinationRule `tls` for the port/subset (see
/// `destination_rule::effective_policy`), `auto_mtls` the mesh's
/// `enableAutoMtls` (see `mesh_config::MeshConfig::auto_mtls`),
/// `server_namespace_mode` the namespace/mesh-level PeerAuthentication mode
/// auto mTLS can see (`peer_auth::namespace_mode`; workload-level policies are
/// invisible to it).
///
/// cluster_tls.go `buildUpstreamTLSSettings`: a user `tls` always wins —
/// `DISABLE` is plaintext even with auto mTLS on, `SIMPLE`/`MUTUAL` are used
/// as written, `ISTIO_MUTUAL` is Istio mTLS to every endpoint. Without `tls`:
/// auto mTLS on and the service mode not DISABLE → per-endpoint
/// (`tlsMode-istio` match for labelled endpoints, `tlsMode-disabled`
/// raw_buffer for the rest); auto mTLS on but DISABLE → plaintext; auto mTLS
/// off → plaintext.
pub fn decide(
    tls: Option<&ClientTls>,
    auto_mtls: bool,
    server_namespace_mode: MtlsMode,
    endpoints: EndpointLabels,
) -> ClientTlsDecision {
    let (mode, reason) = match tls.map(|t| &t.mode) {
        Some(TlsMode::Disable) => (
            ClientTlsMode::Plaintext,
            "the DestinationRule sets tls.mode DISABLE; explicit DestinationRule TLS always wins, auto mTLS or not, so the client sends plaintext".to_string(),
        ),
        Some(TlsMode::Simple) => (
            ClientTlsMode::Simple,
            "the DestinationRule sets tls.mode SIMPLE: the client originates one-way TLS without a client certificate (an Istio sidecar in STRICT mode rejects it)".to_string(),
        ),
        Some(TlsMode::Mutual) => (
            ClientTlsMode::Mutual,
            "the DestinationRule sets tls.mode MUTUAL: the client originates TLS with the certificates the rule names".to_string(),
        ),
        Some(TlsMode::IstioMutual) => (
            ClientTlsMode::IstioMutual,
            "the DestinationRule sets tls.mode ISTIO_MUTUAL: the client sends Istio mTLS to every endpoint, with or without a sidecar".to_string(),
        ),
        Some(TlsMode::Other(m)) => (
            ClientTlsMode::Plaintext,
            format!("the DestinationRule sets an unknown tls.mode {m:?}; Istio would reject it, assuming plaintext"),
        ),
        None if !auto_mtls => (
            ClientTlsMode::Plaintext,
            "no DestinationRule tls and auto mTLS is off, so the client sends plaintext".to_string(),
        ),
        None if server_namespace_mode == MtlsMode::Disable => (
            ClientTlsMode::Plaintext,
            "no DestinationRule tls; auto mTLS is on but the destination's namespace/mesh PeerAuthentication is DISABLE, so the client sends plaintext".to_string(),
        ),
        None => (
            ClientTlsMode::AutoIstioMutual,
            format!(
                "no DestinationRule tls and auto mTLS is on (destination namespace/mesh mode {server_namespace_mode}): Istio mTLS to endpoints labelled security.istio.io/tlsMode=istio, plaintext to the others{}",
                match endpoints {
                    EndpointLabels::AllIstio => "; all endpoints are labelled, so mTLS",
                    EndpointLabels::NoneIstio => "; no endpoint is labelled, so plaintext",
                    EndpointLabels::Mixed => "; endpoints are mixed",
                    EndpointLabels::Unknown => "",
                }
            ),
        ),
    };
    ClientTlsDecision {
        mode,
        reason,
        endpoints,
    }
}

/// Would a server in `server` mode (with a sidecar) accept what goes on the
/// wire? `None` when the wire is user TLS whose acceptance depends on certificates.
pub fn server_accepts(server: MtlsMode, wire: Wire) -> Option<bool> {
    match wire {
        Wire::Plaintext => Some(server.accepts_plaintext()),
        Wire::IstioMtls => Some(server.accepts_mtls()),
        // One-way TLS has no client certificate: STRICT rejects it; PERMISSIVE
        // treats it as opaque TLS to the app; DISABLE passes it to the app.
        Wire::Tls => match server {
            MtlsMode::Strict => Some(false),
            _ => None,
        },
        Wire::MutualTls => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tls(mode: TlsMode) -> ClientTls {
        ClientTls {
            mode,
            sni: None,
            subject_alt_names: vec![],
            credential_name: None,
            ca_certificates: None,
            client_certificate: None,
            insecure_skip_verify: None,
        }
    }

    #[test]
    fn explicit_tls_always_wins() {
        let d = decide(
            Some(&tls(TlsMode::Disable)),
            true,
            MtlsMode::Strict,
            EndpointLabels::AllIstio,
        );
        assert_eq!(d.mode, ClientTlsMode::Plaintext);
        assert!(d.reason.contains("DISABLE"));
        assert_eq!(d.sends_istio_mtls(), Some(false));
        let d = decide(
            Some(&tls(TlsMode::IstioMutual)),
            false,
            MtlsMode::Disable,
            EndpointLabels::NoneIstio,
        );
        assert_eq!(d.mode, ClientTlsMode::IstioMutual);
        assert_eq!(d.wire_for(false), Wire::IstioMtls);
        assert_eq!(
            decide(
                Some(&tls(TlsMode::Simple)),
                true,
                MtlsMode::Strict,
                EndpointLabels::Unknown
            )
            .mode,
            ClientTlsMode::Simple
        );
        assert_eq!(
            decide(
                Some(&tls(TlsMode::Mutual)),
                true,
                MtlsMode::Strict,
                EndpointLabels::Unknown
            )
            .mode,
            ClientTlsMode::Mutual
        );
    }

    #[test]
    fn no_tls_depends_on_auto_mtls_and_namespace_mode() {
        let d = decide(None, true, MtlsMode::Strict, EndpointLabels::AllIstio);
        assert_eq!(d.mode, ClientTlsMode::AutoIstioMutual);
        assert_eq!(d.sends_istio_mtls(), Some(true));
        assert_eq!(d.wire_for(true), Wire::IstioMtls);
        assert_eq!(d.wire_for(false), Wire::Plaintext);
        let d = decide(None, true, MtlsMode::Permissive, EndpointLabels::NoneIstio);
        assert_eq!(d.sends_istio_mtls(), Some(false));
        let d = decide(None, true, MtlsMode::Permissive, EndpointLabels::Mixed);
        assert_eq!(d.sends_istio_mtls(), None);
        let d = decide(None, true, MtlsMode::Disable, EndpointLabels::AllIstio);
        assert_eq!(d.mode, ClientTlsMode::Plaintext);
        let d = decide(None, false, MtlsMode::Strict, EndpointLabels::AllIstio);
        assert_eq!(d.mode, ClientTlsMode::Plaintext);
        assert!(d.reason.contains("auto mTLS is off"));
    }

    #[test]
    fn endpoint_label_summary() {
        assert_eq!(EndpointLabels::from_flags([]), EndpointLabels::Unknown);
        assert_eq!(
            EndpointLabels::from_flags([true, true]),
            EndpointLabels::AllIstio
        );
        assert_eq!(
            EndpointLabels::from_flags([false]),
            EndpointLabels::NoneIstio
        );
        assert_eq!(
            EndpointLabels::from_flags([true, false]),
            EndpointLabels::Mixed
        );
    }

    #[test]
    fn acceptance() {
        assert_eq!(
            server_accepts(MtlsMode::Strict, Wire::Plaintext),
            Some(false)
        );
        assert_eq!(
            server_accepts(MtlsMode::Permissive, Wire::Plaintext),
            Some(true)
        );
        assert_eq!(
            server_accepts(MtlsMode::Disable, Wire::IstioMtls),
            Some(false)
        );
        assert_eq!(
            server_accepts(MtlsMode::Strict, Wire::IstioMtls),
            Some(true)
        );
        assert_eq!(server_accepts(MtlsMode::Strict, Wire::Tls), Some(false));
        assert_eq!(server_accepts(MtlsMode::Permissive, Wire::MutualTls), None);
    }
}
