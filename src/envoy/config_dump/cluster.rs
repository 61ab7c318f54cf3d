//! Clusters in `/config_dump` (`ClustersConfigDump`, v2 and v3): name, type,
//! client TLS (transport socket or auto-mTLS matches), circuit breakers,
//! outlier detection, HTTP options, and Istio's metadata on them.
//!
//! Place in the flow: part of the pure `/config_dump` parser (envoy/). What a
//! cluster's TLS puts on the wire for an endpoint is decided in
//! `istio::tls::observed_wire`.
//!
//! Sources: envoyproxy/envoy `api/envoy/config/cluster/v3/cluster.proto`,
//! `circuit_breaker.proto`, `outlier_detection.proto`; istio/istio
//! `pilot/pkg/networking/util` (`AddConfigInfoMetadata`, `AddSubsetToMetadata`:
//! `filter_metadata.istio.config` / `subset`), `pilot/pkg/model/service.go`
//! (`BuildSubsetKey`, `BuildDNSSrvSubsetKey`: the cluster name forms).

use serde_json::Value;

use super::json::{bool_of, f64_of, s, u64_at, Json};
use super::tls::{tls_context, transport_socket, TlsContext};
use super::DumpError;

/// Where a cluster came from in the dump.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ResourceState {
    Static,
    #[default]
    DynamicActive,
    DynamicWarming,
}

/// What an Istio cluster name says.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum ClusterKind {
    /// `outbound|9080|v1|reviews.default.svc.cluster.local` or the SNI form
    /// `outbound_.9080_.v1_.reviews.default.svc.cluster.local`.
    Outbound {
        port: u16,
        subset: Option<String>,
        host: String,
    },
    /// `inbound|9080||` or `inbound|9080|http|productpage.default.svc.cluster.local`.
    Inbound { port: u16 },
    #[default]
    Other,
}

impl ClusterKind {
    pub fn parse(name: &str) -> ClusterKind {
        let parts: Vec<&str> = name.split('|').collect();
        if parts.len() == 4 {
            if let Ok(port) = parts[1].parse::<u16>() {
                let subset = (!parts[2].is_empty()).then(|| parts[2].to_string());
                match parts[0] {
                    "outbound" => {
                        return ClusterKind::Outbound {
                            port,
                            subset,
                            host: parts[3].to_string(),
                        }
                    }
                    "inbound" => return ClusterKind::Inbound { port },
                    _ => {}
                }
            }
        }
        if let Some(rest) = name.strip_prefix("outbound_.") {
            // outbound_.<port>_.<subset>_.<host>
            let mut it = rest.splitn(3, "_.");
            if let (Some(p), Some(s), Some(h)) = (it.next(), it.next(), it.next()) {
                if let Ok(port) = p.parse::<u16>() {
                    return ClusterKind::Outbound {
                        port,
                        subset: (!s.is_empty()).then(|| s.to_string()),
                        host: h.to_string(),
                    };
                }
            }
        }
        ClusterKind::Other
    }
}

/// What the client side of a cluster sends.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum ClientTlsConfig {
    /// No transport socket (or raw_buffer): plaintext to every endpoint.
    #[default]
    Plaintext,
    /// TLS to every endpoint.
    Tls(TlsContext),
    /// Auto mTLS: TLS to endpoints whose metadata matches `tlsMode: istio`,
    /// and (if `fallback_plaintext`) raw_buffer to the others.
    AutoMtls {
        istio: Box<TlsContext>,
        fallback_plaintext: bool,
    },
    /// Another transport socket (e.g. HBONE/internal upstream), by name.
    Other(String),
}

impl ClientTlsConfig {
    pub fn is_plaintext(&self) -> bool {
        matches!(self, ClientTlsConfig::Plaintext)
    }
}

/// One `circuit_breakers.thresholds[]` entry. Absent limits use Envoy's
/// defaults (1024 connections/pending/requests, 3 retries).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Thresholds {
    /// `DEFAULT` or `HIGH`.
    pub priority: String,
    pub max_connections: Option<u64>,
    pub max_pending_requests: Option<u64>,
    pub max_requests: Option<u64>,
    pub max_retries: Option<u64>,
}

/// `outlier_detection` on a cluster (present = enabled).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OutlierDetectionConfig {
    pub consecutive_5xx: Option<u64>,
    pub consecutive_gateway_failure: Option<u64>,
    pub consecutive_local_origin_failure: Option<u64>,
    pub interval: Option<String>,
    pub base_ejection_time: Option<String>,
    pub max_ejection_percent: Option<u64>,
    pub enforcing_consecutive_5xx: Option<u64>,
    pub enforcing_consecutive_gateway_failure: Option<u64>,
    pub split_external_local_origin_errors: Option<bool>,
}

/// A cluster as the proxy holds it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Cluster {
    pub name: String,
    pub kind: ClusterKind,
    pub state: ResourceState,
    /// `EDS`, `STATIC`, `STRICT_DNS`, `ORIGINAL_DST`, or `cluster_type.name`.
    pub cluster_type: Option<String>,
    pub client_tls: ClientTlsConfig,
    /// `metadata.filter_metadata.istio.config`.
    pub istio_config: Option<String>,
    /// `(namespace, name)` of the DestinationRule in `istio_config`.
    pub istio_config_ref: Option<(String, String)>,
    /// `metadata.filter_metadata.istio.subset`.
    pub istio_subset: Option<String>,
    pub circuit_breakers: Vec<Thresholds>,
    pub outlier_detection: Option<OutlierDetectionConfig>,
    /// `common_lb_config.healthy_panic_threshold.value`; `{}` = 0. `None` =
    /// not set (Envoy default 50%). Istio sets it to `minHealthPercent` (default 0)
    /// when outlierDetection is configured.
    pub healthy_panic_threshold: Option<f64>,
    /// HTTP upstream idle timeout (v3 `typed_extension_protocol_options`
    /// `…HttpProtocolOptions.common_http_protocol_options.idle_timeout`, v2
    /// `common_http_protocol_options.idle_timeout`).
    pub idle_timeout: Option<String>,
    pub max_requests_per_connection: Option<u64>,
    pub connect_timeout: Option<String>,
    pub lb_policy: Option<String>,
    pub version_info: Option<String>,
    pub last_updated: Option<String>,
}

impl Cluster {
    /// The `DEFAULT` priority thresholds, if set.
    pub fn default_thresholds(&self) -> Option<&Thresholds> {
        self.circuit_breakers
            .iter()
            .find(|t| t.priority == "DEFAULT")
    }
}

/// `(ns, name)` from `/apis/networking.istio.io/v1alpha3/namespaces/foo/destination-rule/httpbin`.
pub fn parse_istio_config_path(path: &str) -> Option<(String, String)> {
    let parts: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let i = parts.iter().position(|p| *p == "namespaces")?;
    let ns = parts.get(i + 1)?;
    let kind = parts.get(i + 2)?;
    let name = parts.get(i + 3)?;
    if !kind.contains("destination") {
        return None;
    }
    Some((ns.to_string(), name.to_string()))
}

fn client_tls<J: Json>(c: &J) -> ClientTlsConfig {
    if let Some(matches) = c.get("transport_socket_matches").and_then(J::as_array) {
        let mut istio = None;
        let mut fallback_plaintext = false;
        for m in matches {
            let crit = m.get("match").filter(|o| o.is_object());
            let is_istio =
                crit.is_some_and(|o| o.get("tlsMode").and_then(J::as_str) == Some("istio"));
            let is_default = crit.is_none_or(|o| o.is_empty_object());
            let sock = m.get("transport_socket").map(transport_socket);
            match sock {
                Some(Ok(Some(ctx))) if is_istio && istio.is_none() => istio = Some(ctx),
                Some(Ok(None)) | None if is_default => fallback_plaintext = true,
                _ => {}
            }
        }
        if let Some(ctx) = istio {
            return ClientTlsConfig::AutoMtls {
                istio: Box::new(ctx),
                fallback_plaintext,
            };
        }
    }
    if let Some(ts) = c.get("transport_socket") {
        return match transport_socket(ts) {
            Ok(None) => ClientTlsConfig::Plaintext,
            Ok(Some(ctx)) => ClientTlsConfig::Tls(ctx),
            Err(name) => ClientTlsConfig::Other(name),
        };
    }
    if let Some(tc) = c.get("tls_context") {
        return ClientTlsConfig::Tls(tls_context(tc));
    }
    ClientTlsConfig::Plaintext
}

/// A `common_http_protocol_options` field: v3 in any
/// `typed_extension_protocol_options` entry (`…HttpProtocolOptions`), v2 on
/// the cluster itself.
fn http_option<J: Json, T>(c: &J, get: impl Fn(&J) -> Option<T>) -> Option<T> {
    let typed = c
        .get("typed_extension_protocol_options")
        .and_then(J::entries)
        .into_iter()
        .flatten()
        .find_map(|(_, o)| o.get("common_http_protocol_options").and_then(&get));
    typed.or_else(|| c.get("common_http_protocol_options").and_then(&get))
}

fn thresholds<J: Json>(c: &J) -> Vec<Thresholds> {
    c.get("circuit_breakers")
        .and_then(|cb| cb.get("thresholds"))
        .and_then(J::as_array)
        .map(|a| {
            a.iter()
                .map(|t| Thresholds {
                    priority: s(t, "priority").unwrap_or_else(|| "DEFAULT".into()),
                    max_connections: u64_at(t, "max_connections"),
                    max_pending_requests: u64_at(t, "max_pending_requests"),
                    max_requests: u64_at(t, "max_requests"),
                    max_retries: u64_at(t, "max_retries"),
                })
                .collect()
        })
        .unwrap_or_default()
}

fn outlier_detection<J: Json>(o: &J) -> OutlierDetectionConfig {
    OutlierDetectionConfig {
        consecutive_5xx: u64_at(o, "consecutive_5xx"),
        consecutive_gateway_failure: u64_at(o, "consecutive_gateway_failure"),
        consecutive_local_origin_failure: u64_at(o, "consecutive_local_origin_failure"),
        interval: s(o, "interval"),
        base_ejection_time: s(o, "base_ejection_time"),
        max_ejection_percent: u64_at(o, "max_ejection_percent"),
        enforcing_consecutive_5xx: u64_at(o, "enforcing_consecutive_5xx"),
        enforcing_consecutive_gateway_failure: u64_at(o, "enforcing_consecutive_gateway_failure"),
        split_external_local_origin_errors: o
            .get("split_external_local_origin_errors")
            .and_then(bool_of),
    }
}

/// Parse one `Cluster` proto (v2 or v3). `path` names it in errors.
pub fn parse_cluster(c: &Value, path: &str) -> Result<Cluster, DumpError> {
    cluster_from(c, path)
}

/// [`parse_cluster`] of any [`Json`].
pub(super) fn cluster_from<J: Json>(c: &J, path: &str) -> Result<Cluster, DumpError> {
    let name = s(c, "name").ok_or_else(|| DumpError::Element {
        path: format!("{path}.name"),
        reason: "missing cluster name".into(),
    })?;
    let istio_md = c
        .get("metadata")
        .and_then(|m| m.get("filter_metadata"))
        .and_then(|f| f.get("istio"));
    let istio_config = istio_md.and_then(|m| s(m, "config"));
    let istio_config_ref = istio_config.as_deref().and_then(parse_istio_config_path);
    let outlier = c
        .get("outlier_detection")
        .filter(|o| o.is_object())
        .map(outlier_detection);
    let healthy_panic_threshold = c
        .get("common_lb_config")
        .and_then(|l| l.get("healthy_panic_threshold"))
        .map(|p| {
            if p.is_object() {
                p.get("value").and_then(f64_of).unwrap_or(0.0)
            } else {
                f64_of(p).unwrap_or(0.0)
            }
        });
    let cluster_type = s(c, "type").or_else(|| c.get("cluster_type").and_then(|t| s(t, "name")));
    Ok(Cluster {
        kind: ClusterKind::parse(&name),
        name,
        state: ResourceState::DynamicActive,
        cluster_type,
        client_tls: client_tls(c),
        istio_config,
        istio_config_ref,
        istio_subset: istio_md.and_then(|m| s(m, "subset")),
        circuit_breakers: thresholds(c),
        outlier_detection: outlier,
        healthy_panic_threshold,
        idle_timeout: http_option(c, |h| s(h, "idle_timeout")),
        max_requests_per_connection: http_option(c, |h| u64_at(h, "max_requests_per_connection"))
            .or_else(|| u64_at(c, "max_requests_per_connection")),
        connect_timeout: s(c, "connect_timeout"),
        lb_policy: s(c, "lb_policy"),
        version_info: None,
        last_updated: None,
    })
}
