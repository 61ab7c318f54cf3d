//! The client side as Envoy really runs it: the wire a parsed client cluster
//! (`envoy::config_dump::ClientTlsConfig`) puts on the wire for an endpoint
//! labelled (or not) `tlsMode=istio`, and tls-check's verdict for a cluster
//! given what its endpoints' sidecars accept.
//!
//! Place in the flow: part of `istio::tls` (a pure helper); the envoy parser
//! only reports the transport sockets, the Istio reading of them is here.
//!
//! Sources: istio/istio `pilot/pkg/networking/core/cluster_tls.go`
//! (`applyUpstreamTLSSettings`: `tlsMode-istio` match `{tlsMode: istio}` with
//! the TLS socket, `defaultTransportSocketMatch` `tlsMode-disabled`
//! raw_buffer for the rest; `buildIstioMutualTLS` with SDS secrets `default`
//! and `ROOTCA`), `pilot/pkg/networking/util` (`ALPNInMeshWithMxc`:
//! `istio-peer-exchange`, `istio`); Istio ≤1.4 file certificates under
//! `/etc/certs/`; envoyproxy/envoy `api/envoy/config/cluster/v3/cluster.proto`
//! (`transport_socket_matches`: the first match wins, no match → the
//! cluster's `transport_socket`, none → plaintext).

use super::{accepts, mismatch, Mismatch, Server, Wire};
use crate::envoy::config_dump::{ClientTlsConfig, TlsContext};
use crate::istio::authn::MtlsMode;

/// Is this upstream TLS context Istio's own mTLS (the workload certificate
/// from SDS secret `default`, an `istio` ALPN, or ≤1.4's `/etc/certs/`)
/// rather than TLS the user configured?
pub fn is_istio_mtls_context(t: &TlsContext) -> bool {
    t.alpn
        .iter()
        .any(|a| a == "istio" || a.starts_with("istio-"))
        || t.sds_cert.as_deref() == Some("default")
        || t.cert_file
            .as_deref()
            .is_some_and(|f| f.starts_with("/etc/certs/"))
}

/// What a cluster's transport sockets amount to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ObservedClientTls {
    Plaintext,
    /// Istio mTLS to every endpoint.
    IstioMutual,
    /// User TLS to every endpoint.
    OtherTls,
    /// Auto mTLS matches: TLS (Istio's or not) to `tlsMode=istio`
    /// endpoints, plaintext to the others.
    AutoMtls {
        istio_mutual: bool,
    },
    /// Another transport socket (HBONE, internal upstream without an inner
    /// socket…), by name: the wire is unknown.
    Unknown(String),
}

impl ObservedClientTls {
    pub fn of(cfg: &ClientTlsConfig) -> ObservedClientTls {
        match cfg {
            ClientTlsConfig::Plaintext => ObservedClientTls::Plaintext,
            ClientTlsConfig::Tls(t) if is_istio_mtls_context(t) => ObservedClientTls::IstioMutual,
            ClientTlsConfig::Tls(_) => ObservedClientTls::OtherTls,
            ClientTlsConfig::AutoMtls { istio, .. } => ObservedClientTls::AutoMtls {
                istio_mutual: is_istio_mtls_context(istio),
            },
            ClientTlsConfig::Other(name) => ObservedClientTls::Unknown(name.clone()),
        }
    }

    /// tls-check's CLIENT column: `plaintext`, `ISTIO_MUTUAL`,
    /// `SIMPLE/MUTUAL`, `auto`, or the socket's name.
    pub fn label(&self) -> &str {
        match self {
            ObservedClientTls::Plaintext => "plaintext",
            ObservedClientTls::IstioMutual => "ISTIO_MUTUAL",
            ObservedClientTls::OtherTls => "SIMPLE/MUTUAL",
            ObservedClientTls::AutoMtls { .. } => "auto",
            ObservedClientTls::Unknown(name) => name,
        }
    }

    /// The wire to an endpoint labelled (`true`) or not `tlsMode=istio`;
    /// `None` for an unknown socket.
    pub fn wire_for(&self, endpoint_labelled_istio: bool) -> Option<Wire> {
        match self {
            ObservedClientTls::Plaintext => Some(Wire::Plaintext),
            ObservedClientTls::IstioMutual => Some(Wire::IstioMtls),
            ObservedClientTls::OtherTls => Some(Wire::OtherTls),
            // Unlabelled endpoints match only the default (raw_buffer) entry,
            // or nothing and fall back to the cluster socket, which auto mTLS
            // clusters do not have: plaintext either way.
            ObservedClientTls::AutoMtls { .. } if !endpoint_labelled_istio => Some(Wire::Plaintext),
            ObservedClientTls::AutoMtls { istio_mutual: true } => Some(Wire::IstioMtls),
            ObservedClientTls::AutoMtls {
                istio_mutual: false,
            } => Some(Wire::OtherTls),
            ObservedClientTls::Unknown(_) => None,
        }
    }
}

/// What the client's cluster really sends to an endpoint labelled (`true`)
/// or not `tlsMode=istio`; `None` for a transport socket of unknown effect.
pub fn observed_wire(cfg: &ClientTlsConfig, endpoint_labelled_istio: bool) -> Option<Wire> {
    ObservedClientTls::of(cfg).wire_for(endpoint_labelled_istio)
}

/// One line on a cluster's client TLS, for evidence.
pub fn describe_cluster_tls(cfg: &ClientTlsConfig) -> String {
    match (cfg, ObservedClientTls::of(cfg)) {
        (_, ObservedClientTls::Plaintext) => "no transport socket: plaintext".into(),
        (_, ObservedClientTls::IstioMutual) => {
            "TLS transport socket with Istio certificates: ISTIO_MUTUAL".into()
        }
        (ClientTlsConfig::Tls(t), _) => format!(
            "TLS transport socket (sni {:?}): SIMPLE/MUTUAL with user certificates",
            t.sni.as_deref().unwrap_or("-")
        ),
        (_, ObservedClientTls::AutoMtls { .. }) => "auto mTLS transport_socket_matches: mTLS to endpoints labelled tlsMode=istio, plaintext to others".into(),
        (_, ObservedClientTls::Unknown(n)) => format!("transport socket {n}"),
        (_, ObservedClientTls::OtherTls) => "TLS transport socket: SIMPLE/MUTUAL".into(),
    }
}

/// One endpoint of a client cluster, as tls-check sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EndpointView {
    /// EDS metadata `tlsMode: istio`.
    pub labelled_istio: bool,
    /// The server's side, when its sidecar (or its absence) is known.
    pub server: Option<Server>,
}

/// tls-check's status for a client cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClusterStatus {
    /// Client and servers agree.
    Ok,
    /// They cannot talk: 503.
    Conflict(Mismatch),
    /// Auto mTLS picks per endpoint, and nothing known conflicts.
    Auto,
    /// No server side known.
    Unknown,
    /// Servers are known, but whether one accepts what it gets depends on
    /// certificates or on the application (user TLS to a PERMISSIVE or
    /// DISABLE sidecar, or a transport socket of unknown effect).
    Depends,
}

/// The verdict on one client cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterVerdict {
    pub status: ClusterStatus,
    pub client: ObservedClientTls,
    /// The modes of the sidecars seen behind the endpoints (sorted, unique).
    pub server_modes: Vec<MtlsMode>,
    /// Some endpoint is a pod known to run no sidecar.
    pub no_sidecar: bool,
}

impl ClusterVerdict {
    /// tls-check's REASON column.
    pub fn reason(&self) -> &'static str {
        match self.status {
            ClusterStatus::Conflict(m) => m.reason(),
            ClusterStatus::Auto if self.server_modes.is_empty() => {
                "auto mTLS: mTLS to endpoints labelled tlsMode=istio, plaintext to the others"
            }
            ClusterStatus::Auto => "auto mTLS matches each endpoint's sidecar",
            ClusterStatus::Ok => "client TLS fits the server mode",
            ClusterStatus::Unknown => "no server sidecar dump for this cluster's endpoints",
            ClusterStatus::Depends => {
                "whether the server accepts this TLS depends on its certificates or transport"
            }
        }
    }
}

/// Join a client cluster with what its endpoints' servers accept. The first
/// conflicting endpoint decides a CONFLICT; without any known server the
/// status is AUTO for auto mTLS clusters and UNKNOWN otherwise; a known
/// server whose acceptance depends on certificates (or a socket of unknown
/// effect) makes it DEPENDS.
pub fn cluster_verdict(cfg: &ClientTlsConfig, endpoints: &[EndpointView]) -> ClusterVerdict {
    let client = ObservedClientTls::of(cfg);
    let auto = matches!(client, ObservedClientTls::AutoMtls { .. });
    let known: Vec<(bool, Server)> = endpoints
        .iter()
        .filter_map(|e| e.server.map(|s| (e.labelled_istio, s)))
        .collect();
    let mut server_modes: Vec<MtlsMode> = known
        .iter()
        .filter_map(|(_, s)| match s {
            Server::Sidecar(m) => Some(*m),
            Server::NoSidecar => None,
        })
        .collect();
    server_modes.sort();
    server_modes.dedup();
    let conflict = known
        .iter()
        .find_map(|(labelled, server)| mismatch(client.wire_for(*labelled)?, *server));
    let depends = known.iter().any(|(labelled, server)| {
        client
            .wire_for(*labelled)
            .and_then(|w| accepts(*server, w))
            .is_none()
    });
    let status = match conflict {
        Some(m) => ClusterStatus::Conflict(m),
        None if known.is_empty() && !auto => ClusterStatus::Unknown,
        None if known.is_empty() => ClusterStatus::Auto,
        None if depends => ClusterStatus::Depends,
        None if auto => ClusterStatus::Auto,
        None => ClusterStatus::Ok,
    };
    ClusterVerdict {
        status,
        client,
        no_sidecar: known.iter().any(|(_, s)| *s == Server::NoSidecar),
        server_modes,
    }
}
