//! Envoy `/config_dump`: clusters, listeners, endpoints and bootstrap, in the
//! v2 (`envoy.admin.v2alpha.*`, Istio 1.1–1.5: `tls_context` on clusters and
//! filter chains, `config` on filters) and v3 (`envoy.admin.v3.*`:
//! `transport_socket`, `transport_socket_matches`, `typed_config`) shapes.
//!
//! Accepted documents (envoyproxy/envoy `api/envoy/admin/v3/config_dump.proto`,
//! `config_dump_shared.proto`):
//! - the full dump `{"configs": [BootstrapConfigDump, ClustersConfigDump, ListenersConfigDump, EndpointsConfigDump, …]}`;
//! - `?resource=dynamic_active_clusters` → `configs[]` of `ClustersConfigDump.DynamicCluster`;
//! - `?resource=dynamic_listeners` → `ListenersConfigDump.DynamicListener`
//!   (`active_state.listener`, `warming_state`, `draining_state`, `error_state`);
//! - `?include_eds&resource=dynamic_endpoint_configs` → `EndpointsConfigDump.DynamicEndpointConfig`;
//! - `{}` (Envoy's answer when the resource has no entries).
//!
//! Istio specifics (istio/istio): cluster names `outbound|<port>|<subset>|<fqdn>`,
//! `inbound|<port>|<portname>|<fqdn>` (≤1.9) or `inbound|<port>||`;
//! `metadata.filter_metadata.istio.config` names the DestinationRule
//! (`/apis/networking.istio.io/v1alpha3/namespaces/foo/destination-rule/httpbin`,
//! `/apis/networking/v1alpha3/…` before 1.4) and `istio.subset` the subset
//! (pilot/pkg/networking/util `AddConfigInfoMetadata`, `AddSubsetToMetadata`);
//! auto mTLS clusters carry `transport_socket_matches` `tlsMode-istio` (match
//! `{tlsMode: istio}`) / `tlsMode-disabled` (raw_buffer), named `mtls` /
//! `plaintext` in 1.4 (pilot/pkg/networking/core/cluster_tls.go
//! `buildAutoMtlsSettings`, `defaultTransportSocketMatch`); endpoints carry
//! `filter_metadata["envoy.transport_socket_match"].tlsMode`
//! (pilot/pkg/networking/util `AppendLbEndpointMetadata`).

use std::collections::BTreeMap;

use serde_json::Value;

use super::access_log::{json_format_from_value, LogFormatSpec};

/// A problem with one element of the dump (the element is skipped) or with the whole document.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DumpError {
    #[error("config_dump: {path}: {reason}")]
    Element { path: String, reason: String },
    #[error("config_dump: the document is not a JSON object")]
    NotAnObject,
    #[error("config_dump: `configs` should be a list")]
    ConfigsNotAList,
}

/// Admin API generation of the dump.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DumpApi {
    V2,
    V3,
    #[default]
    Unknown,
}

/// The parts of `/config_dump` the analysis uses.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ConfigDump {
    pub api: DumpApi,
    pub bootstrap: Option<Bootstrap>,
    pub clusters: Vec<Cluster>,
    pub listeners: Vec<Listener>,
    /// Cluster name → endpoints (EDS, or `load_assignment` of static clusters).
    pub endpoints: BTreeMap<String, Vec<Endpoint>>,
    /// Elements skipped because they were malformed, and unknown type URLs.
    pub problems: Vec<DumpError>,
}

impl ConfigDump {
    pub fn cluster(&self, name: &str) -> Option<&Cluster> {
        self.clusters.iter().find(|c| c.name == name)
    }
    pub fn listener(&self, name: &str) -> Option<&Listener> {
        self.listeners.iter().find(|l| l.name == name)
    }
    /// Merge another (partial) dump into this one (e.g. the three
    /// `?resource=` fetches of one proxy).
    pub fn merge(&mut self, other: ConfigDump) {
        if self.api == DumpApi::Unknown {
            self.api = other.api;
        }
        if self.bootstrap.is_none() {
            self.bootstrap = other.bootstrap;
        }
        self.clusters.extend(other.clusters);
        self.listeners.extend(other.listeners);
        for (k, v) in other.endpoints {
            self.endpoints.entry(k).or_default().extend(v);
        }
        self.problems.extend(other.problems);
    }
}

// ---------------------------------------------------------------------------
// Clusters
// ---------------------------------------------------------------------------

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

/// Upstream TLS context, v2 `tls_context` or v3 `UpstreamTlsContext`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TlsContext {
    pub sni: Option<String>,
    pub alpn: Vec<String>,
    /// `spiffe://…` (exact) or `prefix:…`, `suffix:…`, `regex:…`, `contains:…`.
    pub san_matchers: Vec<String>,
    /// SDS secret for the client certificate (`default` in Istio).
    pub sds_cert: Option<String>,
    /// SDS secret for the trust bundle (`ROOTCA` in Istio).
    pub sds_validation: Option<String>,
    /// File-based certificate chain (Istio ≤1.4 `/etc/certs/cert-chain.pem`).
    pub cert_file: Option<String>,
    /// Heuristic: this is Istio mTLS (SDS `default`, ALPN `istio*`, or `/etc/certs/`).
    pub istio_mutual: bool,
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

fn s(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).map(String::from)
}

fn u64_of(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.parse().ok(),
        // wrapper types written as {"value": n}
        Value::Object(o) => o.get("value").and_then(u64_of),
        _ => None,
    }
}

fn u64_at(v: &Value, key: &str) -> Option<u64> {
    v.get(key).and_then(u64_of)
}

fn bool_of(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::Object(o) => o.get("value").and_then(Value::as_bool),
        _ => None,
    }
}

fn str_list(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(String::from)
                .collect()
        })
        .unwrap_or_default()
}

/// Parse a `common_tls_context` (+ `sni`) into [`TlsContext`].
fn tls_context(ctx: &Value) -> TlsContext {
    let common = ctx.get("common_tls_context").unwrap_or(&Value::Null);
    let mut t = TlsContext {
        sni: s(ctx, "sni").filter(|x| !x.is_empty()),
        alpn: str_list(common.get("alpn_protocols")),
        ..TlsContext::default()
    };
    t.sds_cert = common
        .get("tls_certificate_sds_secret_configs")
        .and_then(Value::as_array)
        .and_then(|a| a.first())
        .and_then(|c| s(c, "name"));
    t.cert_file = common
        .get("tls_certificates")
        .and_then(Value::as_array)
        .and_then(|a| a.first())
        .and_then(|c| c.get("certificate_chain"))
        .and_then(|c| s(c, "filename"));
    let mut validation: Vec<&Value> = Vec::new();
    if let Some(v) = common.get("validation_context") {
        validation.push(v);
    }
    if let Some(cvc) = common.get("combined_validation_context") {
        if let Some(v) = cvc.get("default_validation_context") {
            validation.push(v);
        }
        t.sds_validation = cvc
            .get("validation_context_sds_secret_config")
            .and_then(|c| s(c, "name"));
    }
    if t.sds_validation.is_none() {
        t.sds_validation = common
            .get("validation_context_sds_secret_config")
            .and_then(|c| s(c, "name"));
    }
    for vc in validation {
        t.san_matchers
            .extend(str_list(vc.get("verify_subject_alt_name")));
        for m in vc
            .get("match_subject_alt_names")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(x) = string_matcher(m) {
                t.san_matchers.push(x);
            }
        }
        for m in vc
            .get("match_typed_subject_alt_names")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(x) = m.get("matcher").and_then(string_matcher) {
                t.san_matchers.push(x);
            }
        }
    }
    t.istio_mutual = t
        .alpn
        .iter()
        .any(|a| a == "istio" || a.starts_with("istio-"))
        || (t.sds_cert.as_deref() == Some("default"))
        || t.cert_file
            .as_deref()
            .is_some_and(|f| f.starts_with("/etc/certs/"));
    t
}

fn string_matcher(m: &Value) -> Option<String> {
    if let Some(x) = m.get("exact").and_then(Value::as_str) {
        return Some(x.to_string());
    }
    for k in ["prefix", "suffix", "contains"] {
        if let Some(x) = m.get(k).and_then(Value::as_str) {
            return Some(format!("{k}:{x}"));
        }
    }
    if let Some(x) = m
        .get("safe_regex")
        .and_then(|r| r.get("regex"))
        .and_then(Value::as_str)
    {
        return Some(format!("regex:{x}"));
    }
    m.get("regex")
        .and_then(Value::as_str)
        .map(|x| format!("regex:{x}"))
}

/// Classify one transport socket: `Ok(None)` = plaintext, `Ok(Some(ctx))` = TLS.
fn transport_socket(ts: &Value) -> Result<Option<TlsContext>, String> {
    let name = ts.get("name").and_then(Value::as_str).unwrap_or("");
    let cfg = ts.get("typed_config").or_else(|| ts.get("config"));
    let type_url = cfg
        .and_then(|c| c.get("@type"))
        .and_then(Value::as_str)
        .unwrap_or("");
    if name.contains("raw_buffer") || type_url.ends_with("RawBuffer") {
        return Ok(None);
    }
    if name == "tls"
        || name.ends_with("transport_sockets.tls")
        || type_url.ends_with("UpstreamTlsContext")
        || type_url.ends_with("DownstreamTlsContext")
    {
        return Ok(Some(tls_context(cfg.unwrap_or(&Value::Null))));
    }
    // Wrappers (internal_upstream, tap, …) hold the real socket inside.
    if let Some(inner) = cfg.and_then(|c| c.get("transport_socket")) {
        return transport_socket(inner);
    }
    if name.is_empty() && type_url.is_empty() {
        return Ok(None);
    }
    Err(if name.is_empty() {
        type_url.to_string()
    } else {
        name.to_string()
    })
}

fn client_tls(c: &Value) -> ClientTlsConfig {
    if let Some(matches) = c.get("transport_socket_matches").and_then(Value::as_array) {
        let mut istio = None;
        let mut fallback_plaintext = false;
        for m in matches {
            let crit = m.get("match").and_then(Value::as_object);
            let is_istio =
                crit.is_some_and(|o| o.get("tlsMode").and_then(Value::as_str) == Some("istio"));
            let is_default = crit.is_none_or(|o| o.is_empty());
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

fn idle_timeout(c: &Value) -> Option<String> {
    if let Some(opts) = c
        .get("typed_extension_protocol_options")
        .and_then(Value::as_object)
    {
        for o in opts.values() {
            if let Some(t) = o
                .get("common_http_protocol_options")
                .and_then(|h| s(h, "idle_timeout"))
            {
                return Some(t);
            }
        }
    }
    c.get("common_http_protocol_options")
        .and_then(|h| s(h, "idle_timeout"))
}

fn max_requests_per_connection(c: &Value) -> Option<u64> {
    if let Some(opts) = c
        .get("typed_extension_protocol_options")
        .and_then(Value::as_object)
    {
        for o in opts.values() {
            if let Some(n) = o
                .get("common_http_protocol_options")
                .and_then(|h| u64_at(h, "max_requests_per_connection"))
            {
                return Some(n);
            }
        }
    }
    u64_at(c, "max_requests_per_connection")
}

/// Parse one `Cluster` proto (v2 or v3). `path` names it in errors.
pub fn parse_cluster(c: &Value, path: &str) -> Result<Cluster, DumpError> {
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
    let circuit_breakers = c
        .get("circuit_breakers")
        .and_then(|cb| cb.get("thresholds"))
        .and_then(Value::as_array)
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
        .unwrap_or_default();
    let outlier_detection = c
        .get("outlier_detection")
        .filter(|o| o.is_object())
        .map(|o| OutlierDetectionConfig {
            consecutive_5xx: u64_at(o, "consecutive_5xx"),
            consecutive_gateway_failure: u64_at(o, "consecutive_gateway_failure"),
            consecutive_local_origin_failure: u64_at(o, "consecutive_local_origin_failure"),
            interval: s(o, "interval"),
            base_ejection_time: s(o, "base_ejection_time"),
            max_ejection_percent: u64_at(o, "max_ejection_percent"),
            enforcing_consecutive_5xx: u64_at(o, "enforcing_consecutive_5xx"),
            enforcing_consecutive_gateway_failure: u64_at(
                o,
                "enforcing_consecutive_gateway_failure",
            ),
            split_external_local_origin_errors: o
                .get("split_external_local_origin_errors")
                .and_then(bool_of),
        });
    let healthy_panic_threshold = c
        .get("common_lb_config")
        .and_then(|l| l.get("healthy_panic_threshold"))
        .map(|p| match p {
            Value::Object(o) => o.get("value").and_then(Value::as_f64).unwrap_or(0.0),
            Value::Number(n) => n.as_f64().unwrap_or(0.0),
            _ => 0.0,
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
        circuit_breakers,
        outlier_detection,
        healthy_panic_threshold,
        idle_timeout: idle_timeout(c),
        max_requests_per_connection: max_requests_per_connection(c),
        connect_timeout: s(c, "connect_timeout"),
        lb_policy: s(c, "lb_policy"),
        version_info: None,
        last_updated: None,
    })
}

// ---------------------------------------------------------------------------
// Listeners
// ---------------------------------------------------------------------------

/// Server-side TLS on a filter chain.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DownstreamTls {
    pub require_client_certificate: bool,
    pub alpn: Vec<String>,
    pub sds_cert: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FilterChain {
    pub name: Option<String>,
    pub destination_port: Option<u16>,
    /// `tls`, `raw_buffer`, or `None` (any).
    pub transport_protocol: Option<String>,
    pub application_protocols: Vec<String>,
    pub server_names: Vec<String>,
    /// `10.52.2.21/32`.
    pub prefix_ranges: Vec<String>,
    /// Terminates TLS (`tls_context` in v2, a TLS `transport_socket` in v3).
    pub tls: Option<DownstreamTls>,
    /// Network filter names as written (`envoy.http_connection_manager`,
    /// `envoy.filters.network.tcp_proxy`, `istio_authn`, …).
    pub network_filters: Vec<String>,
    /// Has an HTTP connection manager.
    pub http: bool,
    /// Clusters the chain sends to (tcp_proxy `cluster`/`weighted_clusters`,
    /// routes of an inline `route_config`).
    pub clusters: Vec<String>,
    /// `rds.route_config_name` of the HTTP connection manager.
    pub rds_route: Option<String>,
    /// Access log formats configured on the chain's filters.
    pub access_log_formats: Vec<LogFormatSpec>,
}

impl FilterChain {
    /// Plaintext bytes can enter this chain.
    pub fn accepts_plaintext(&self) -> bool {
        self.tls.is_none() && self.transport_protocol.as_deref() != Some("tls")
    }
    /// The chain terminates (m)TLS.
    pub fn terminates_tls(&self) -> bool {
        self.tls.is_some()
    }
    /// TLS is matched but passed through untouched (e.g. to an app serving TLS).
    pub fn passes_tls_through(&self) -> bool {
        self.tls.is_none() && self.transport_protocol.as_deref() == Some("tls")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ListenerState {
    #[default]
    Active,
    Warming,
    Draining,
    /// Only an `error_state` (the update was rejected and there is no active version).
    Rejected,
    Static,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Listener {
    pub name: String,
    /// IP or pipe path.
    pub address: String,
    pub port: Option<u16>,
    pub state: ListenerState,
    /// `error_state.details` of a rejected (NACKed) update.
    pub error_state: Option<String>,
    /// `INBOUND`, `OUTBOUND` (Istio ≥1.3 sets it).
    pub traffic_direction: Option<String>,
    pub filter_chains: Vec<FilterChain>,
    pub default_filter_chain: Option<FilterChain>,
    pub use_original_dst: bool,
}

impl Listener {
    /// Is this an inbound (server-side) listener? `virtualInbound`, direction
    /// INBOUND, or (Istio ≤1.2) a per-IP listener whose chains send to `inbound|` clusters.
    pub fn is_inbound(&self) -> bool {
        if self.name == "virtualInbound" {
            return true;
        }
        match self.traffic_direction.as_deref() {
            Some("INBOUND") => true,
            Some("OUTBOUND") => false,
            _ => self
                .filter_chains
                .iter()
                .any(|fc| fc.clusters.iter().any(|c| c.starts_with("inbound|"))),
        }
    }

    /// Every access log format on the listener (deduplicated).
    pub fn access_log_formats(&self) -> Vec<LogFormatSpec> {
        let mut out: Vec<LogFormatSpec> = Vec::new();
        for fc in self
            .filter_chains
            .iter()
            .chain(self.default_filter_chain.iter())
        {
            for f in &fc.access_log_formats {
                if !out.contains(f) {
                    out.push(f.clone());
                }
            }
        }
        out
    }
}

fn filter_config(f: &Value) -> &Value {
    f.get("typed_config")
        .or_else(|| f.get("config"))
        .unwrap_or(&Value::Null)
}

fn access_logs(cfg: &Value, out: &mut Vec<LogFormatSpec>) {
    for al in cfg
        .get("access_log")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let c = filter_config(al);
        // v2: config.format / json_format; v3: log_format.{text_format_source.inline_string,text_format,json_format}, or deprecated `format`.
        let lf = c.get("log_format");
        let text = lf
            .and_then(|l| l.get("text_format_source"))
            .and_then(|t| s(t, "inline_string"))
            .or_else(|| lf.and_then(|l| s(l, "text_format")))
            .or_else(|| s(c, "format"));
        let json = lf
            .and_then(|l| l.get("json_format"))
            .or_else(|| c.get("json_format"));
        let spec = match (text, json) {
            (Some(t), _) => Some(LogFormatSpec::Text(t)),
            (None, Some(j)) => json_format_from_value(j),
            _ => None,
        };
        if let Some(sp) = spec {
            if !out.contains(&sp) {
                out.push(sp);
            }
        }
    }
}

fn route_clusters(route_config: &Value, out: &mut Vec<String>) {
    for vh in route_config
        .get("virtual_hosts")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        for r in vh
            .get("routes")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let Some(route) = r.get("route") else {
                continue;
            };
            if let Some(c) = s(route, "cluster") {
                out.push(c);
            }
            for wc in route
                .get("weighted_clusters")
                .and_then(|w| w.get("clusters"))
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if let Some(c) = s(wc, "name") {
                    out.push(c);
                }
            }
        }
    }
}

fn parse_filter_chain(fc: &Value) -> FilterChain {
    let m = fc.get("filter_chain_match").unwrap_or(&Value::Null);
    let destination_port = u64_at(m, "destination_port").and_then(|p| u16::try_from(p).ok());
    let prefix_ranges = m
        .get("prefix_ranges")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|p| {
                    format!(
                        "{}/{}",
                        p.get("address_prefix")
                            .and_then(Value::as_str)
                            .unwrap_or(""),
                        u64_at(p, "prefix_len").unwrap_or(0)
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let downstream = |ctx: &Value| DownstreamTls {
        require_client_certificate: ctx
            .get("require_client_certificate")
            .and_then(bool_of)
            .unwrap_or(false),
        alpn: str_list(
            ctx.get("common_tls_context")
                .and_then(|c| c.get("alpn_protocols")),
        ),
        sds_cert: ctx
            .get("common_tls_context")
            .and_then(|c| c.get("tls_certificate_sds_secret_configs"))
            .and_then(Value::as_array)
            .and_then(|a| a.first())
            .and_then(|c| s(c, "name")),
    };
    let tls = if let Some(tc) = fc.get("tls_context") {
        Some(downstream(tc))
    } else if let Some(ts) = fc.get("transport_socket") {
        match transport_socket(ts) {
            Ok(Some(_)) => Some(downstream(filter_config(ts))),
            _ => None,
        }
    } else {
        None
    };
    let mut out = FilterChain {
        name: s(fc, "name"),
        destination_port,
        transport_protocol: s(m, "transport_protocol"),
        application_protocols: str_list(m.get("application_protocols")),
        server_names: str_list(m.get("server_names")),
        prefix_ranges,
        tls,
        ..FilterChain::default()
    };
    for f in fc
        .get("filters")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let name = s(f, "name").unwrap_or_default();
        let cfg = filter_config(f);
        if name.ends_with("http_connection_manager") {
            out.http = true;
            if let Some(rc) = cfg.get("route_config") {
                route_clusters(rc, &mut out.clusters);
            }
            out.rds_route = cfg.get("rds").and_then(|r| s(r, "route_config_name"));
        }
        if name.ends_with("tcp_proxy") {
            if let Some(c) = s(cfg, "cluster") {
                out.clusters.push(c);
            }
            for wc in cfg
                .get("weighted_clusters")
                .and_then(|w| w.get("clusters"))
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if let Some(c) = s(wc, "name") {
                    out.clusters.push(c);
                }
            }
        }
        access_logs(cfg, &mut out.access_log_formats);
        out.network_filters.push(name);
    }
    out
}

/// Parse one `Listener` proto.
pub fn parse_listener(l: &Value, path: &str) -> Result<Listener, DumpError> {
    let (address, port) = match l.get("address") {
        Some(a) => match a.get("socket_address") {
            Some(sa) => (
                s(sa, "address").unwrap_or_default(),
                u64_at(sa, "port_value").and_then(|p| u16::try_from(p).ok()),
            ),
            None => (
                a.get("pipe")
                    .and_then(|p| s(p, "path"))
                    .map(|p| format!("unix://{p}"))
                    .unwrap_or_default(),
                None,
            ),
        },
        None => (String::new(), None),
    };
    // Static listeners from Istio's bootstrap (15090, 15021) may have no name:
    // Envoy then names them itself; use `address_port` like Istio does.
    let name = match s(l, "name") {
        Some(n) => n,
        None if !address.is_empty() => match port {
            Some(p) => format!("{address}_{p}"),
            None => address.clone(),
        },
        None => {
            return Err(DumpError::Element {
                path: format!("{path}.name"),
                reason: "listener without name or address".into(),
            })
        }
    };
    let use_original_dst = l.get("use_original_dst").and_then(bool_of).unwrap_or(false);
    Ok(Listener {
        name,
        address,
        port,
        state: ListenerState::Active,
        error_state: None,
        traffic_direction: s(l, "traffic_direction"),
        filter_chains: l
            .get("filter_chains")
            .and_then(Value::as_array)
            .map(|a| a.iter().map(parse_filter_chain).collect())
            .unwrap_or_default(),
        default_filter_chain: l.get("default_filter_chain").map(parse_filter_chain),
        use_original_dst,
    })
}

/// A v3 `DynamicListener` (`name`, `active_state`, `warming_state`,
/// `draining_state`, `error_state`).
fn parse_dynamic_listener(d: &Value, path: &str) -> Result<Listener, DumpError> {
    let error_state = d
        .get("error_state")
        .map(|e| s(e, "details").unwrap_or_else(|| "rejected (no details)".to_string()));
    for (key, state) in [
        ("active_state", ListenerState::Active),
        ("warming_state", ListenerState::Warming),
        ("draining_state", ListenerState::Draining),
    ] {
        if let Some(l) = d.get(key).and_then(|st| st.get("listener")) {
            let mut out = parse_listener(l, &format!("{path}.{key}.listener"))?;
            out.state = state;
            out.error_state = error_state;
            return Ok(out);
        }
    }
    if let Some(es) = d.get("error_state") {
        // No active version: the rejected config is all there is.
        let name = s(d, "name").unwrap_or_default();
        let mut out = match es.get("failed_configuration") {
            Some(fc) if fc.is_object() => {
                parse_listener(fc, &format!("{path}.error_state.failed_configuration"))
                    .unwrap_or_default()
            }
            _ => Listener::default(),
        };
        if out.name.is_empty() {
            out.name = name;
        }
        out.state = ListenerState::Rejected;
        out.error_state = error_state;
        if out.name.is_empty() {
            return Err(DumpError::Element {
                path: path.to_string(),
                reason: "listener without name".into(),
            });
        }
        return Ok(out);
    }
    Err(DumpError::Element {
        path: path.to_string(),
        reason: "dynamic listener without active, warming, draining or error state".into(),
    })
}

/// What an inbound port accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundMode {
    /// A chain terminates TLS for this port (Istio mTLS when `require_client_certificate`).
    pub accepts_mtls: bool,
    pub accepts_plaintext: bool,
    /// Some chain terminating TLS requires a client certificate.
    pub requires_client_cert: bool,
    /// A chain matches TLS without terminating it (passthrough to the app).
    pub passes_tls_through: bool,
    /// Listener(s) the chains came from.
    pub source_listener: String,
}

impl InboundMode {
    /// `STRICT` / `PERMISSIVE` / `DISABLE` in PeerAuthentication terms.
    pub fn as_peer_auth_mode(&self) -> crate::istio::peer_auth::MtlsMode {
        use crate::istio::peer_auth::MtlsMode;
        match (self.accepts_mtls, self.accepts_plaintext) {
            (true, false) => MtlsMode::Strict,
            (true, true) => MtlsMode::Permissive,
            _ => MtlsMode::Disable,
        }
    }
}

fn fold_chain(mode: &mut InboundMode, fc: &FilterChain, listener: &str) {
    if fc.terminates_tls() {
        mode.accepts_mtls = true;
        if fc
            .tls
            .as_ref()
            .is_some_and(|t| t.require_client_certificate)
        {
            mode.requires_client_cert = true;
        }
    }
    if fc.accepts_plaintext() {
        mode.accepts_plaintext = true;
    }
    if fc.passes_tls_through() {
        mode.passes_tls_through = true;
    }
    if !mode.source_listener.split(',').any(|l| l == listener) {
        if !mode.source_listener.is_empty() {
            mode.source_listener.push(',');
        }
        mode.source_listener.push_str(listener);
    }
}

fn empty_mode() -> InboundMode {
    InboundMode {
        accepts_mtls: false,
        accepts_plaintext: false,
        requires_client_cert: false,
        passes_tls_through: false,
        source_listener: String::new(),
    }
}

/// Per inbound port, what the server sidecar accepts.
///
/// Modern sidecars (Istio ≥1.4 `virtualInbound` on 15006): chains with a
/// `destination_port` belong to that port — STRICT leaves only TLS chains,
/// PERMISSIVE has TLS and raw_buffer chains, DISABLE only raw_buffer.
/// Chains without a port are the catch-all (see [`inbound_catch_all`]); the
/// blackhole chain for port 15006 itself is skipped.
/// Legacy sidecars (Istio ≤1.4): per-IP listeners such as `10.52.2.21_9080`;
/// one chain with `tls_context.require_client_certificate: true` = STRICT, a
/// TLS chain (ALPN `istio`) plus a plaintext chain = PERMISSIVE.
/// Only active listeners with a socket address count (a rejected
/// `virtualInbound` accepts nothing; internal listeners such as `main_internal`
/// behind HBONE are not on the sidecar inbound path).
pub fn inbound_modes(listeners: &[Listener]) -> BTreeMap<u16, InboundMode> {
    let mut out: BTreeMap<u16, InboundMode> = BTreeMap::new();
    for l in listeners
        .iter()
        .filter(|l| matches!(l.state, ListenerState::Active | ListenerState::Static))
    {
        // Internal listeners (`main_internal`, HBONE) have no socket address and are
        // not on the sidecar's inbound path.
        if !l.is_inbound() || l.port.is_none() {
            continue;
        }
        let virtual_inbound =
            l.name == "virtualInbound" || (l.port == Some(15006) && l.use_original_dst);
        for fc in &l.filter_chains {
            let port = match (fc.destination_port, virtual_inbound) {
                (Some(15006), true) => continue,
                (Some(p), _) => p,
                (None, true) => continue,
                (None, false) => match l.port {
                    Some(p) => p,
                    None => continue,
                },
            };
            fold_chain(out.entry(port).or_insert_with(empty_mode), fc, &l.name);
        }
    }
    out
}

/// What `virtualInbound` does with ports that have no chains of their own
/// (Istio's passthrough catch-all). `None` if there is no active virtualInbound.
pub fn inbound_catch_all(listeners: &[Listener]) -> Option<InboundMode> {
    let l = listeners.iter().find(|l| {
        l.name == "virtualInbound"
            && matches!(l.state, ListenerState::Active | ListenerState::Static)
    })?;
    let mut mode = empty_mode();
    for fc in l
        .filter_chains
        .iter()
        .filter(|fc| fc.destination_port.is_none())
    {
        fold_chain(&mut mode, fc, &l.name);
    }
    if let Some(d) = &l.default_filter_chain {
        fold_chain(&mut mode, d, &l.name);
    }
    Some(mode)
}

/// The mode for one port: its own chains, else the catch-all.
pub fn inbound_mode_for(listeners: &[Listener], port: u16) -> Option<InboundMode> {
    inbound_modes(listeners)
        .remove(&port)
        .or_else(|| inbound_catch_all(listeners))
}

// ---------------------------------------------------------------------------
// Endpoints and bootstrap
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Endpoint {
    /// IP, `unix://path`, or `envoy://listener/id` for internal addresses.
    pub address: String,
    pub port: Option<u16>,
    /// `HEALTHY`, `UNHEALTHY`, `DRAINING`, `TIMEOUT`, `DEGRADED`, `UNKNOWN` (absent = UNKNOWN).
    pub health_status: Option<String>,
    /// `filter_metadata["envoy.transport_socket_match"].tlsMode` (`istio` with a sidecar).
    pub tls_mode: Option<String>,
    /// `filter_metadata.istio.workload` (`name;ns;canonical;rev;cluster`).
    pub workload: Option<String>,
    pub weight: Option<u64>,
    pub priority: Option<u64>,
}

impl Endpoint {
    pub fn has_istio_tls_mode(&self) -> bool {
        self.tls_mode.as_deref() == Some("istio")
    }
    /// `ip:port` (`[v6]:port`).
    pub fn host_port(&self) -> String {
        match self.port {
            Some(p) if self.address.contains(':') && !self.address.contains("://") => {
                format!("[{}]:{p}", self.address)
            }
            Some(p) => format!("{}:{p}", self.address),
            None => self.address.clone(),
        }
    }
}

/// Parse a `ClusterLoadAssignment` into (cluster name, endpoints).
pub fn parse_load_assignment(
    cla: &Value,
    path: &str,
) -> Result<(String, Vec<Endpoint>), DumpError> {
    let name = s(cla, "cluster_name").ok_or_else(|| DumpError::Element {
        path: format!("{path}.cluster_name"),
        reason: "missing cluster_name".into(),
    })?;
    let mut eps = Vec::new();
    for loc in cla
        .get("endpoints")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let priority = u64_at(loc, "priority");
        for lb in loc
            .get("lb_endpoints")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let addr = lb.get("endpoint").and_then(|e| e.get("address"));
            let (address, port) = match addr {
                Some(a) => {
                    if let Some(sa) = a.get("socket_address") {
                        (
                            s(sa, "address").unwrap_or_default(),
                            u64_at(sa, "port_value").and_then(|p| u16::try_from(p).ok()),
                        )
                    } else if let Some(p) = a.get("pipe") {
                        (format!("unix://{}", s(p, "path").unwrap_or_default()), None)
                    } else if let Some(ia) = a.get("envoy_internal_address") {
                        (
                            format!(
                                "envoy://{}/{}",
                                s(ia, "server_listener_name").unwrap_or_default(),
                                s(ia, "endpoint_id").unwrap_or_default()
                            ),
                            None,
                        )
                    } else {
                        (String::new(), None)
                    }
                }
                None => (String::new(), None),
            };
            let fm = lb.get("metadata").and_then(|m| m.get("filter_metadata"));
            eps.push(Endpoint {
                address,
                port,
                health_status: s(lb, "health_status"),
                tls_mode: fm
                    .and_then(|f| f.get("envoy.transport_socket_match"))
                    .and_then(|t| s(t, "tlsMode")),
                workload: fm
                    .and_then(|f| f.get("istio"))
                    .and_then(|i| s(i, "workload")),
                weight: u64_at(lb, "load_balancing_weight"),
                priority,
            });
        }
    }
    Ok((name, eps))
}

/// The bootstrap's node identity and the stats inclusion list.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Bootstrap {
    /// `sidecar~10.52.2.21~productpage-v1-….default~default.svc.cluster.local`.
    pub node_id: Option<String>,
    pub node_cluster: Option<String>,
    /// `node.metadata.ISTIO_VERSION`.
    pub istio_version: Option<String>,
    pub namespace: Option<String>,
    pub pod_name: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub instance_ips: Vec<String>,
    /// `node.user_agent_build_version` (`1.26.4`) or the old `build_version` string.
    pub envoy_version: Option<String>,
    /// `stats_config.stats_matcher.inclusion_list.patterns`: `prefix:…`, `suffix:…`, `regex:…`, `exact:…`.
    /// `None` when the bootstrap has no inclusion list (every stat is emitted).
    pub stats_inclusion: Option<Vec<String>>,
}

impl Bootstrap {
    /// `sidecar`, `router` (gateway), … from the node id.
    pub fn proxy_type(&self) -> Option<&str> {
        self.node_id.as_deref()?.split('~').next()
    }
    /// The stats inclusion list as a [`super::stats::StatsInclusion`].
    pub fn stats_inclusion(&self) -> super::stats::StatsInclusion {
        let mut inc = super::stats::StatsInclusion::default();
        match &self.stats_inclusion {
            None => inc.include_all = true,
            Some(pats) => {
                for p in pats {
                    if let Some(x) = p.strip_prefix("prefix:") {
                        inc.prefixes.push(x.to_string());
                    } else if let Some(x) = p.strip_prefix("suffix:") {
                        inc.suffixes.push(x.to_string());
                    } else if let Some(x) = p.strip_prefix("regex:") {
                        inc.regexes.push(x.to_string());
                    } else if let Some(x) = p.strip_prefix("exact:") {
                        inc.regexes.push(x.replace('.', "\\."));
                    }
                }
            }
        }
        inc
    }
}

fn str_map(v: Option<&Value>) -> BTreeMap<String, String> {
    v.and_then(Value::as_object)
        .map(|o| {
            o.iter()
                .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

pub fn parse_bootstrap(b: &Value) -> Bootstrap {
    let node = b.get("node").unwrap_or(&Value::Null);
    let md = node.get("metadata").unwrap_or(&Value::Null);
    let envoy_version = node
        .get("user_agent_build_version")
        .and_then(|u| u.get("version"))
        .map(|v| {
            format!(
                "{}.{}.{}",
                u64_at(v, "major_number").unwrap_or(0),
                u64_at(v, "minor_number").unwrap_or(0),
                u64_at(v, "patch").unwrap_or(0)
            )
        })
        .or_else(|| s(node, "build_version"));
    let stats_inclusion = b
        .get("stats_config")
        .and_then(|sc| sc.get("stats_matcher"))
        .and_then(|m| m.get("inclusion_list"))
        .and_then(|il| il.get("patterns"))
        .and_then(Value::as_array)
        .map(|pats| {
            pats.iter()
                .filter_map(|p| {
                    string_matcher(p).map(|x| {
                        if p.get("exact").is_some() {
                            format!("exact:{x}")
                        } else {
                            x
                        }
                    })
                })
                .collect()
        });
    // Old Istio put labels directly in node.metadata; newer under LABELS.
    let mut labels = str_map(md.get("LABELS"));
    if labels.is_empty() {
        labels = md
            .as_object()
            .map(|o| {
                o.iter()
                    .filter(|(k, _)| !k.chars().all(|c| c.is_ascii_uppercase() || c == '_'))
                    .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string())))
                    .collect()
            })
            .unwrap_or_default();
    }
    Bootstrap {
        node_id: s(node, "id"),
        node_cluster: s(node, "cluster"),
        istio_version: s(md, "ISTIO_VERSION"),
        namespace: s(md, "NAMESPACE").or_else(|| s(md, "CONFIG_NAMESPACE")),
        pod_name: s(md, "NAME").or_else(|| s(md, "POD_NAME")),
        labels,
        annotations: str_map(md.get("ANNOTATIONS")),
        instance_ips: s(md, "INSTANCE_IPS")
            .map(|x| {
                x.split(',')
                    .map(|p| p.trim().to_string())
                    .filter(|p| !p.is_empty())
                    .collect()
            })
            .unwrap_or_default(),
        envoy_version,
        stats_inclusion,
    }
}

// ---------------------------------------------------------------------------
// The document
// ---------------------------------------------------------------------------

fn type_suffix(t: &str) -> Option<(DumpApi, &str)> {
    let t = t.strip_prefix("type.googleapis.com/").unwrap_or(t);
    if let Some(r) = t.strip_prefix("envoy.admin.v3.") {
        Some((DumpApi::V3, r))
    } else if let Some(r) = t.strip_prefix("envoy.admin.v2alpha.") {
        Some((DumpApi::V2, r))
    } else {
        None
    }
}

fn push_cluster(out: &mut ConfigDump, wrapper: &Value, path: &str, state: ResourceState) {
    let Some(c) = wrapper.get("cluster") else {
        out.problems.push(DumpError::Element {
            path: path.to_string(),
            reason: "no `cluster`".into(),
        });
        return;
    };
    match parse_cluster(c, &format!("{path}.cluster")) {
        Ok(mut cl) => {
            cl.state = state;
            cl.version_info = s(wrapper, "version_info");
            cl.last_updated = s(wrapper, "last_updated");
            out.clusters.push(cl);
        }
        Err(e) => out.problems.push(e),
    }
}

fn push_listener(out: &mut ConfigDump, l: &Value, path: &str, state: ListenerState) {
    match parse_listener(l, path) {
        Ok(mut li) => {
            li.state = state;
            out.listeners.push(li);
        }
        Err(e) => out.problems.push(e),
    }
}

fn push_endpoints(out: &mut ConfigDump, wrapper: &Value, path: &str) {
    let Some(cla) = wrapper.get("endpoint_config") else {
        out.problems.push(DumpError::Element {
            path: path.to_string(),
            reason: "no `endpoint_config`".into(),
        });
        return;
    };
    match parse_load_assignment(cla, &format!("{path}.endpoint_config")) {
        Ok((name, eps)) => out.endpoints.entry(name).or_default().extend(eps),
        Err(e) => out.problems.push(e),
    }
}

fn each<'a>(v: &'a Value, key: &str) -> impl Iterator<Item = (usize, &'a Value)> {
    v.get(key)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
}

/// Parse any `/config_dump` document (full or `?resource=`-filtered, v2 or v3).
/// Malformed elements are skipped and listed in `problems`; only a document
/// that is not an object (or whose `configs` is not a list) is an error.
pub fn parse_config_dump(v: &Value) -> Result<ConfigDump, DumpError> {
    let obj = v.as_object().ok_or(DumpError::NotAnObject)?;
    let mut out = ConfigDump::default();
    let configs = match obj.get("configs") {
        None => return Ok(out),
        Some(Value::Array(a)) => a,
        Some(_) => return Err(DumpError::ConfigsNotAList),
    };
    for (i, c) in configs.iter().enumerate() {
        let path = format!("configs[{i}]");
        let Some(t) = c.get("@type").and_then(Value::as_str) else {
            out.problems.push(DumpError::Element {
                path,
                reason: "no @type".into(),
            });
            continue;
        };
        let Some((api, kind)) = type_suffix(t) else {
            out.problems.push(DumpError::Element {
                path,
                reason: format!("unknown type URL {t}"),
            });
            continue;
        };
        if out.api == DumpApi::Unknown {
            out.api = api;
        }
        match kind {
            "BootstrapConfigDump" => {
                if let Some(b) = c.get("bootstrap") {
                    out.bootstrap = Some(parse_bootstrap(b));
                    // Static clusters' load_assignment endpoints are in EndpointsConfigDump already.
                }
            }
            "ClustersConfigDump" => {
                for (j, w) in each(c, "static_clusters") {
                    push_cluster(
                        &mut out,
                        w,
                        &format!("{path}.static_clusters[{j}]"),
                        ResourceState::Static,
                    );
                }
                for (j, w) in each(c, "dynamic_active_clusters") {
                    push_cluster(
                        &mut out,
                        w,
                        &format!("{path}.dynamic_active_clusters[{j}]"),
                        ResourceState::DynamicActive,
                    );
                }
                for (j, w) in each(c, "dynamic_warming_clusters") {
                    push_cluster(
                        &mut out,
                        w,
                        &format!("{path}.dynamic_warming_clusters[{j}]"),
                        ResourceState::DynamicWarming,
                    );
                }
            }
            "ClustersConfigDump.DynamicCluster" => {
                push_cluster(&mut out, c, &path, ResourceState::DynamicActive)
            }
            "ClustersConfigDump.StaticCluster" => {
                push_cluster(&mut out, c, &path, ResourceState::Static)
            }
            "ListenersConfigDump" => {
                for (j, w) in each(c, "static_listeners") {
                    if let Some(l) = w.get("listener") {
                        push_listener(
                            &mut out,
                            l,
                            &format!("{path}.static_listeners[{j}].listener"),
                            ListenerState::Static,
                        );
                    }
                }
                // v3
                for (j, d) in each(c, "dynamic_listeners") {
                    match parse_dynamic_listener(d, &format!("{path}.dynamic_listeners[{j}]")) {
                        Ok(l) => out.listeners.push(l),
                        Err(e) => out.problems.push(e),
                    }
                }
                // v2alpha
                for (key, state) in [
                    ("dynamic_active_listeners", ListenerState::Active),
                    ("dynamic_warming_listeners", ListenerState::Warming),
                    ("dynamic_draining_listeners", ListenerState::Draining),
                ] {
                    for (j, w) in each(c, key) {
                        match w.get("listener") {
                            Some(l) => push_listener(
                                &mut out,
                                l,
                                &format!("{path}.{key}[{j}].listener"),
                                state,
                            ),
                            None => out.problems.push(DumpError::Element {
                                path: format!("{path}.{key}[{j}]"),
                                reason: "no `listener`".into(),
                            }),
                        }
                    }
                }
            }
            "ListenersConfigDump.DynamicListener" => match parse_dynamic_listener(c, &path) {
                Ok(l) => out.listeners.push(l),
                Err(e) => out.problems.push(e),
            },
            "ListenersConfigDump.StaticListener" => {
                if let Some(l) = c.get("listener") {
                    push_listener(
                        &mut out,
                        l,
                        &format!("{path}.listener"),
                        ListenerState::Static,
                    );
                }
            }
            "EndpointsConfigDump" => {
                for (j, w) in each(c, "static_endpoint_configs") {
                    push_endpoints(&mut out, w, &format!("{path}.static_endpoint_configs[{j}]"));
                }
                for (j, w) in each(c, "dynamic_endpoint_configs") {
                    push_endpoints(
                        &mut out,
                        w,
                        &format!("{path}.dynamic_endpoint_configs[{j}]"),
                    );
                }
            }
            "EndpointsConfigDump.DynamicEndpointConfig"
            | "EndpointsConfigDump.StaticEndpointConfig" => push_endpoints(&mut out, c, &path),
            _ => {} // routes, secrets (never collected), scoped routes, ecds…
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn v3_cluster_dump() -> Value {
        // Shape of Envoy ≥1.13 `?resource=dynamic_active_clusters` with an Istio auto-mTLS cluster.
        json!({"configs": [{
            "@type": "type.googleapis.com/envoy.admin.v3.ClustersConfigDump.DynamicCluster",
            "version_info": "2024-05-01T10:00:00Z/12",
            "cluster": {
                "@type": "type.googleapis.com/envoy.config.cluster.v3.Cluster",
                "name": "outbound|9080|v1|productpage.default.svc.cluster.local",
                "type": "EDS",
                "connect_timeout": "10s",
                "lb_policy": "LEAST_REQUEST",
                "circuit_breakers": {"thresholds": [{"max_connections": 4294967295u64, "max_pending_requests": 1, "max_requests": 4294967295u64, "max_retries": 4294967295u64, "track_remaining": true}]},
                "outlier_detection": {"consecutive_5xx": 1, "interval": "1s", "base_ejection_time": "180s", "max_ejection_percent": 100, "enforcing_consecutive_5xx": 100},
                "common_lb_config": {"healthy_panic_threshold": {}},
                "typed_extension_protocol_options": {"envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                    "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                    "common_http_protocol_options": {"idle_timeout": "3600s", "max_requests_per_connection": 1},
                    "use_downstream_protocol_config": {}}},
                "metadata": {"filter_metadata": {"istio": {
                    "config": "/apis/networking.istio.io/v1alpha3/namespaces/default/destination-rule/productpage",
                    "subset": "v1"}}},
                "transport_socket_matches": [
                    {"name": "tlsMode-istio", "match": {"tlsMode": "istio"}, "transport_socket": {
                        "name": "envoy.transport_sockets.tls",
                        "typed_config": {"@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",
                            "common_tls_context": {
                                "alpn_protocols": ["istio-peer-exchange", "istio"],
                                "tls_certificate_sds_secret_configs": [{"name": "default"}],
                                "combined_validation_context": {
                                    "default_validation_context": {"match_subject_alt_names": [{"exact": "spiffe://cluster.local/ns/default/sa/bookinfo-productpage"}, {"prefix": "spiffe://x/"}]},
                                    "validation_context_sds_secret_config": {"name": "ROOTCA"}}},
                            "sni": "outbound_.9080_.v1_.productpage.default.svc.cluster.local"}}},
                    {"name": "tlsMode-disabled", "match": {}, "transport_socket": {"name": "envoy.transport_sockets.raw_buffer",
                        "typed_config": {"@type": "type.googleapis.com/envoy.extensions.transport_sockets.raw_buffer.v3.RawBuffer"}}}
                ]
            },
            "last_updated": "2024-05-01T10:00:01.000Z"
        }]})
    }

    #[test]
    fn v3_cluster_with_auto_mtls() {
        let d = parse_config_dump(&v3_cluster_dump()).unwrap();
        assert_eq!(d.api, DumpApi::V3);
        assert!(d.problems.is_empty());
        let c = &d.clusters[0];
        assert_eq!(
            c.kind,
            ClusterKind::Outbound {
                port: 9080,
                subset: Some("v1".into()),
                host: "productpage.default.svc.cluster.local".into()
            }
        );
        assert_eq!(
            c.istio_config_ref,
            Some(("default".into(), "productpage".into()))
        );
        assert_eq!(c.istio_subset.as_deref(), Some("v1"));
        assert_eq!(
            c.default_thresholds().unwrap().max_pending_requests,
            Some(1)
        );
        assert_eq!(
            c.outlier_detection.as_ref().unwrap().max_ejection_percent,
            Some(100)
        );
        assert_eq!(c.healthy_panic_threshold, Some(0.0));
        assert_eq!(c.idle_timeout.as_deref(), Some("3600s"));
        assert_eq!(c.max_requests_per_connection, Some(1));
        assert_eq!(c.version_info.as_deref(), Some("2024-05-01T10:00:00Z/12"));
        match &c.client_tls {
            ClientTlsConfig::AutoMtls {
                istio,
                fallback_plaintext,
            } => {
                assert!(*fallback_plaintext);
                assert!(istio.istio_mutual);
                assert_eq!(istio.sds_cert.as_deref(), Some("default"));
                assert_eq!(istio.sds_validation.as_deref(), Some("ROOTCA"));
                assert_eq!(
                    istio.san_matchers,
                    vec![
                        "spiffe://cluster.local/ns/default/sa/bookinfo-productpage",
                        "prefix:spiffe://x/"
                    ]
                );
                assert_eq!(
                    istio.sni.as_deref(),
                    Some("outbound_.9080_.v1_.productpage.default.svc.cluster.local")
                );
            }
            other => panic!("expected auto mTLS, got {other:?}"),
        }
    }

    #[test]
    fn v2_clusters_tls_context_and_plaintext() {
        let dump = json!({"configs": [
            {"@type": "type.googleapis.com/envoy.admin.v2alpha.ClustersConfigDump", "version_info": "x",
             "static_clusters": [{"cluster": {"name": "BlackHoleCluster", "connect_timeout": "1s"}}],
             "dynamic_active_clusters": [
                {"version_info": "2019-04-02T19:54:27Z/16", "cluster": {
                    "name": "outbound|14268||jaeger-collector.istio-system.svc.cluster.local", "type": "EDS",
                    "circuit_breakers": {"thresholds": [{"max_retries": 1024}]},
                    "tls_context": {"common_tls_context": {
                        "tls_certificates": [{"certificate_chain": {"filename": "/etc/certs/cert-chain.pem"}, "private_key": {"filename": "/etc/certs/key.pem"}}],
                        "validation_context": {"trusted_ca": {"filename": "/etc/certs/root-cert.pem"}, "verify_subject_alt_name": ["spiffe://cluster.local/ns/istio-system/sa/default"]},
                        "alpn_protocols": ["istio"]},
                        "sni": "outbound_.14268_._.jaeger-collector.istio-system.svc.cluster.local"},
                    "metadata": {"filter_metadata": {"istio": {"config": "/apis/networking/v1alpha3/namespaces/istio-system/destination-rule/default"}}}},
                 "last_updated": "2019-04-02T19:54:31.789Z"},
                {"cluster": {"name": "outbound|443||kubernetes.default.svc.cluster.local", "type": "EDS"}},
                {"cluster": {"name": "inbound|9080|http|productpage.default.svc.cluster.local", "type": "STATIC"}},
                {"cluster": {"name": "outbound|9080|v1|details.default.svc.cluster.local", "transport_socket_matches": [
                    {"name": "mtls", "match": {"tlsMode": "istio"}, "transport_socket": {"name": "tls", "typed_config": {
                        "@type": "type.googleapis.com/envoy.api.v2.auth.UpstreamTlsContext",
                        "common_tls_context": {"alpn_protocols": ["istio"]}, "sni": "outbound_.9080_.v1_.details.default.svc.cluster.local"}}},
                    {"name": "plaintext", "match": {}, "transport_socket": {"name": "raw_buffer"}}]}},
                {"nocluster": true}
             ]}
        ]});
        let d = parse_config_dump(&dump).unwrap();
        assert_eq!(d.api, DumpApi::V2);
        assert_eq!(d.clusters.len(), 5);
        assert_eq!(d.problems.len(), 1);
        assert_eq!(d.clusters[0].state, ResourceState::Static);
        let j = d
            .cluster("outbound|14268||jaeger-collector.istio-system.svc.cluster.local")
            .unwrap();
        match &j.client_tls {
            ClientTlsConfig::Tls(t) => {
                assert!(t.istio_mutual);
                assert_eq!(t.cert_file.as_deref(), Some("/etc/certs/cert-chain.pem"));
                assert_eq!(
                    t.san_matchers,
                    vec!["spiffe://cluster.local/ns/istio-system/sa/default"]
                );
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            j.istio_config_ref,
            Some(("istio-system".into(), "default".into()))
        );
        assert!(d
            .cluster("outbound|443||kubernetes.default.svc.cluster.local")
            .unwrap()
            .client_tls
            .is_plaintext());
        assert_eq!(
            d.cluster("inbound|9080|http|productpage.default.svc.cluster.local")
                .unwrap()
                .kind,
            ClusterKind::Inbound { port: 9080 }
        );
        assert!(matches!(
            d.cluster("outbound|9080|v1|details.default.svc.cluster.local")
                .unwrap()
                .client_tls,
            ClientTlsConfig::AutoMtls {
                fallback_plaintext: true,
                ..
            }
        ));
    }

    #[test]
    fn cluster_names() {
        assert_eq!(
            ClusterKind::parse("inbound|9080||"),
            ClusterKind::Inbound { port: 9080 }
        );
        assert_eq!(
            ClusterKind::parse("outbound_.9080_.v1_.reviews.default.svc.cluster.local"),
            ClusterKind::Outbound {
                port: 9080,
                subset: Some("v1".into()),
                host: "reviews.default.svc.cluster.local".into()
            }
        );
        assert_eq!(
            ClusterKind::parse("outbound_.80_._.a.b.svc.cluster.local"),
            ClusterKind::Outbound {
                port: 80,
                subset: None,
                host: "a.b.svc.cluster.local".into()
            }
        );
        assert_eq!(ClusterKind::parse("PassthroughCluster"), ClusterKind::Other);
        assert_eq!(ClusterKind::parse("outbound|http|x|y"), ClusterKind::Other);
        assert_eq!(
            parse_istio_config_path("/apis/networking/v1alpha3/namespaces/a/destination-rule/b"),
            Some(("a".into(), "b".into()))
        );
        assert_eq!(parse_istio_config_path("garbage"), None);
    }

    fn v3_listeners() -> Value {
        json!({"configs": [
            {"@type": "type.googleapis.com/envoy.admin.v3.ListenersConfigDump.DynamicListener",
             "name": "virtualInbound",
             "active_state": {"version_info": "v1", "listener": {
                "@type": "type.googleapis.com/envoy.config.listener.v3.Listener",
                "name": "virtualInbound",
                "address": {"socket_address": {"address": "0.0.0.0", "port_value": 15006}},
                "traffic_direction": "INBOUND",
                "filter_chains": [
                    {"name": "virtualInbound-blackhole", "filter_chain_match": {"destination_port": 15006},
                     "filters": [{"name": "envoy.filters.network.tcp_proxy", "typed_config": {"cluster": "BlackHoleCluster"}}]},
                    {"name": "virtualInbound-catchall-http", "filter_chain_match": {"transport_protocol": "tls", "application_protocols": ["istio-http/1.1"]},
                     "transport_socket": {"name": "envoy.transport_sockets.tls", "typed_config": {"@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext", "require_client_certificate": true}},
                     "filters": [{"name": "envoy.filters.network.http_connection_manager", "typed_config": {"route_config": {"virtual_hosts": [{"routes": [{"route": {"cluster": "InboundPassthroughClusterIpv4"}}]}]}}}]},
                    {"name": "virtualInbound", "filter_chain_match": {"transport_protocol": "raw_buffer"},
                     "filters": [{"name": "envoy.filters.network.tcp_proxy", "typed_config": {"cluster": "InboundPassthroughClusterIpv4"}}]},
                    {"name": "0.0.0.0_8080", "filter_chain_match": {"destination_port": 8080, "transport_protocol": "tls", "application_protocols": ["istio", "istio-http/1.1"]},
                     "transport_socket": {"name": "envoy.transport_sockets.tls", "typed_config": {"@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext",
                        "common_tls_context": {"alpn_protocols": ["h2", "http/1.1"], "tls_certificate_sds_secret_configs": [{"name": "default"}]},
                        "require_client_certificate": true}},
                     "filters": [{"name": "istio_authn"}, {"name": "envoy.filters.network.http_connection_manager", "typed_config": {
                        "access_log": [{"name": "envoy.access_loggers.file", "typed_config": {"path": "/dev/stdout", "log_format": {"text_format_source": {"inline_string": "[%START_TIME%] %RESPONSE_CODE%\n"}}}}],
                        "route_config": {"virtual_hosts": [{"routes": [{"route": {"cluster": "inbound|8080||"}}]}]}}}]},
                    {"name": "0.0.0.0_8080", "filter_chain_match": {"destination_port": 8080, "transport_protocol": "raw_buffer"},
                     "filters": [{"name": "envoy.filters.network.http_connection_manager", "typed_config": {"route_config": {"virtual_hosts": [{"routes": [{"route": {"cluster": "inbound|8080||"}}]}]}}}]},
                    {"name": "0.0.0.0_9090", "filter_chain_match": {"destination_port": 9090, "transport_protocol": "tls"},
                     "transport_socket": {"name": "envoy.transport_sockets.tls", "typed_config": {"@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext", "require_client_certificate": true}},
                     "filters": [{"name": "envoy.filters.network.tcp_proxy", "typed_config": {"cluster": "inbound|9090||"}}]}
                ],
                "use_original_dst": true}},
             "last_updated": "2024-05-01T10:00:00Z"},
            {"@type": "type.googleapis.com/envoy.admin.v3.ListenersConfigDump.DynamicListener",
             "name": "0.0.0.0_80",
             "active_state": {"listener": {"name": "0.0.0.0_80", "address": {"socket_address": {"address": "0.0.0.0", "port_value": 80}}, "traffic_direction": "OUTBOUND",
                "filter_chains": [{"filters": [{"name": "envoy.filters.network.http_connection_manager", "typed_config": {"rds": {"route_config_name": "80"}}}]}]}}},
            {"@type": "type.googleapis.com/envoy.admin.v3.ListenersConfigDump.DynamicListener",
             "name": "broken",
             "error_state": {"failed_configuration": {"@type": "type.googleapis.com/envoy.config.listener.v3.Listener", "name": "broken",
                 "address": {"socket_address": {"address": "0.0.0.0", "port_value": 15007}}}, "details": "Proto constraint validation failed", "last_update_attempt": "2025-02-17T15:17:48.372Z"}}
        ]})
    }

    #[test]
    fn v3_listeners_and_inbound_modes() {
        let d = parse_config_dump(&v3_listeners()).unwrap();
        assert!(d.problems.is_empty(), "{:?}", d.problems);
        assert_eq!(d.listeners.len(), 3);
        let vi = d.listener("virtualInbound").unwrap();
        assert!(vi.is_inbound());
        assert_eq!(vi.port, Some(15006));
        let fc = &vi.filter_chains[3];
        assert_eq!(fc.destination_port, Some(8080));
        assert!(fc.tls.as_ref().unwrap().require_client_certificate);
        assert_eq!(
            fc.tls.as_ref().unwrap().sds_cert.as_deref(),
            Some("default")
        );
        assert_eq!(
            fc.network_filters,
            vec![
                "istio_authn",
                "envoy.filters.network.http_connection_manager"
            ]
        );
        assert!(fc.http);
        assert_eq!(fc.clusters, vec!["inbound|8080||"]);
        assert_eq!(
            vi.access_log_formats(),
            vec![LogFormatSpec::Text(
                "[%START_TIME%] %RESPONSE_CODE%\n".into()
            )]
        );
        let out = d.listener("0.0.0.0_80").unwrap();
        assert!(!out.is_inbound());
        assert_eq!(out.filter_chains[0].rds_route.as_deref(), Some("80"));
        let broken = d.listener("broken").unwrap();
        assert_eq!(broken.state, ListenerState::Rejected);
        assert_eq!(
            broken.error_state.as_deref(),
            Some("Proto constraint validation failed")
        );

        let modes = inbound_modes(&d.listeners);
        assert_eq!(modes.keys().copied().collect::<Vec<_>>(), vec![8080, 9090]);
        let m8080 = &modes[&8080];
        assert!(m8080.accepts_mtls && m8080.accepts_plaintext && m8080.requires_client_cert);
        assert_eq!(
            m8080.as_peer_auth_mode(),
            crate::istio::peer_auth::MtlsMode::Permissive
        );
        assert_eq!(m8080.source_listener, "virtualInbound");
        assert_eq!(
            modes[&9090].as_peer_auth_mode(),
            crate::istio::peer_auth::MtlsMode::Strict
        );
        let catch_all = inbound_catch_all(&d.listeners).unwrap();
        assert!(catch_all.accepts_mtls && catch_all.accepts_plaintext);
        assert_eq!(inbound_mode_for(&d.listeners, 7000), Some(catch_all));
    }

    #[test]
    fn legacy_per_ip_inbound_listeners() {
        let dump = json!({"configs": [{"@type": "type.googleapis.com/envoy.admin.v2alpha.ListenersConfigDump",
        "dynamic_active_listeners": [
            {"listener": {"name": "10.52.2.21_9080", "address": {"socket_address": {"address": "10.52.2.21", "port_value": 9080}},
                "filter_chains": [{"tls_context": {"common_tls_context": {"alpn_protocols": ["h2", "http/1.1"]}, "require_client_certificate": true},
                    "filters": [{"name": "envoy.http_connection_manager", "config": {
                        "access_log": [{"name": "envoy.file_access_log", "config": {"path": "/dev/stdout", "format": "[%START_TIME%] %RESPONSE_FLAGS%\n"}}],
                        "route_config": {"virtual_hosts": [{"routes": [{"route": {"cluster": "inbound|9080|http|productpage.default.svc.cluster.local"}}]}]}}}]}]}},
            {"listener": {"name": "172.30.150.216_9080", "address": {"socket_address": {"address": "172.30.150.216", "port_value": 9080}}, "traffic_direction": "INBOUND",
                "filter_chains": [
                    {"filter_chain_match": {"application_protocols": ["istio"]}, "tls_context": {"require_client_certificate": true},
                     "filters": [{"name": "envoy.tcp_proxy", "config": {"cluster": "inbound|9090||"}}]},
                    {"filters": [{"name": "envoy.tcp_proxy", "config": {"cluster": "inbound|9090||"}}]}]}},
            {"listener": {"name": "10.0.8.160_31400", "address": {"socket_address": {"address": "10.0.8.160", "port_value": 31400}},
                "filter_chains": [{"filters": [{"name": "envoy.tcp_proxy", "config": {"cluster": "outbound|31400||istio-ingressgateway.istio-system.svc.cluster.local"}}]}]}}
        ]}]});
        let d = parse_config_dump(&dump).unwrap();
        assert_eq!(d.listeners.len(), 3);
        assert!(d.listeners[0].is_inbound());
        assert!(!d.listeners[2].is_inbound());
        let modes = inbound_modes(&d.listeners);
        assert_eq!(modes.len(), 1, "both inbound listeners are port 9080");
        let m = &modes[&9080];
        assert_eq!(
            m.as_peer_auth_mode(),
            crate::istio::peer_auth::MtlsMode::Permissive
        );
        assert_eq!(m.source_listener, "10.52.2.21_9080,172.30.150.216_9080");
        let only_strict = inbound_modes(&d.listeners[..1]);
        assert_eq!(
            only_strict[&9080].as_peer_auth_mode(),
            crate::istio::peer_auth::MtlsMode::Strict
        );
        assert_eq!(
            d.listeners[0].access_log_formats(),
            vec![LogFormatSpec::Text(
                "[%START_TIME%] %RESPONSE_FLAGS%\n".into()
            )]
        );
        assert_eq!(inbound_catch_all(&d.listeners), None);
    }

    #[test]
    fn unnamed_static_and_internal_listeners() {
        let dump = json!({"configs": [{"@type": "type.googleapis.com/envoy.admin.v3.ListenersConfigDump",
            "static_listeners": [{"listener": {"address": {"socket_address": {"address": "0.0.0.0", "port_value": 15090}}, "filter_chains": []}}],
            "dynamic_listeners": [{"name": "main_internal", "active_state": {"listener": {"name": "main_internal", "traffic_direction": "INBOUND",
                "internal_listener": {},
                "filter_chains": [{"filter_chain_match": {"destination_port": 80}, "filters": [{"name": "envoy.filters.network.tcp_proxy", "typed_config": {"cluster": "inbound|80||"}}]}]}}}]}]});
        let d = parse_config_dump(&dump).unwrap();
        assert!(d.problems.is_empty(), "{:?}", d.problems);
        assert_eq!(d.listeners[0].name, "0.0.0.0_15090");
        assert_eq!(d.listeners[0].state, ListenerState::Static);
        assert!(d.listener("main_internal").unwrap().is_inbound());
        assert!(
            inbound_modes(&d.listeners).is_empty(),
            "internal listeners are not the sidecar inbound path"
        );
    }

    #[test]
    fn rejected_virtual_inbound_accepts_nothing() {
        let dump = json!({"configs": [{"@type": "type.googleapis.com/envoy.admin.v3.ListenersConfigDump",
            "dynamic_listeners": [{"name": "virtualInbound", "error_state": {
                "failed_configuration": {"@type": "type.googleapis.com/envoy.config.listener.v3.Listener", "name": "virtualInbound",
                    "address": {"socket_address": {"address": "0.0.0.0", "port_value": 15006}}, "traffic_direction": "INBOUND",
                    "filter_chains": [{"filter_chain_match": {"destination_port": 8083, "transport_protocol": "raw_buffer"}, "filters": []}]},
                "details": "Proto constraint validation failed (LuaValidationError…)"}}]}]});
        let d = parse_config_dump(&dump).unwrap();
        let l = d.listener("virtualInbound").unwrap();
        assert_eq!(l.state, ListenerState::Rejected);
        assert_eq!(l.filter_chains.len(), 1);
        assert!(inbound_modes(&d.listeners).is_empty());
        assert_eq!(inbound_catch_all(&d.listeners), None);
    }

    #[test]
    fn endpoints_and_bootstrap() {
        let dump = json!({"configs": [
            {"@type": "type.googleapis.com/envoy.admin.v3.BootstrapConfigDump", "bootstrap": {
                "node": {"id": "sidecar~172.16.188.31~geo-5c54dcd5bd-z5ghf.hr2~hr2.svc.cluster.local", "cluster": "geo.hr2",
                    "metadata": {"ISTIO_VERSION": "1.18.2", "NAMESPACE": "hr2", "NAME": "geo-5c54dcd5bd-z5ghf", "INSTANCE_IPS": "172.16.188.31,fe80::1",
                        "LABELS": {"security.istio.io/tlsMode": "istio", "app": "geo"}, "ANNOTATIONS": {"sidecar.istio.io/statsInclusionPrefixes": "cluster.outbound"}},
                    "user_agent_build_version": {"version": {"major_number": 1, "minor_number": 26, "patch": 4}}},
                "stats_config": {"stats_matcher": {"inclusion_list": {"patterns": [{"prefix": "cluster.outbound"}, {"suffix": "rbac.denied"}, {"safe_regex": {"regex": "vhost\\..*\\.route\\..*"}}]}}}}},
            {"@type": "type.googleapis.com/envoy.admin.v3.EndpointsConfigDump.DynamicEndpointConfig",
             "endpoint_config": {"@type": "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment",
                "cluster_name": "outbound|8000||httpbin.foo.svc.cluster.local",
                "endpoints": [{"locality": {}, "lb_endpoints": [
                    {"endpoint": {"address": {"socket_address": {"address": "10.1.0.5", "port_value": 8080}}}, "health_status": "HEALTHY",
                     "metadata": {"filter_metadata": {"envoy.transport_socket_match": {"tlsMode": "istio"}, "istio": {"workload": "httpbin;foo;httpbin;v1;Kubernetes"}}},
                     "load_balancing_weight": 1},
                    {"endpoint": {"address": {"socket_address": {"address": "fd00::7", "port_value": 8080}}}, "health_status": "UNHEALTHY"}
                ]}]}},
            {"@type": "type.googleapis.com/envoy.admin.v3.EndpointsConfigDump.DynamicEndpointConfig", "endpoint_config": {"endpoints": []}}
        ]});
        let d = parse_config_dump(&dump).unwrap();
        let b = d.bootstrap.as_ref().unwrap();
        assert_eq!(b.istio_version.as_deref(), Some("1.18.2"));
        assert_eq!(b.proxy_type(), Some("sidecar"));
        assert_eq!(b.namespace.as_deref(), Some("hr2"));
        assert_eq!(b.instance_ips, vec!["172.16.188.31", "fe80::1"]);
        assert_eq!(b.envoy_version.as_deref(), Some("1.26.4"));
        assert_eq!(b.labels.get("app").map(String::as_str), Some("geo"));
        let inc = b.stats_inclusion();
        assert_eq!(
            inc.includes("cluster.outbound|8000||a.upstream_rq_pending_overflow"),
            Some(true)
        );
        assert_eq!(
            inc.includes("listener.0.0.0.0_15006.no_filter_chain_match"),
            Some(false)
        );
        let eps = &d.endpoints["outbound|8000||httpbin.foo.svc.cluster.local"];
        assert_eq!(eps.len(), 2);
        assert!(eps[0].has_istio_tls_mode());
        assert_eq!(eps[0].host_port(), "10.1.0.5:8080");
        assert_eq!(
            eps[0].workload.as_deref(),
            Some("httpbin;foo;httpbin;v1;Kubernetes")
        );
        assert!(!eps[1].has_istio_tls_mode());
        assert_eq!(eps[1].host_port(), "[fd00::7]:8080");
        assert_eq!(eps[1].health_status.as_deref(), Some("UNHEALTHY"));
        assert_eq!(d.problems.len(), 1);
        assert!(
            d.problems[0]
                .to_string()
                .contains("configs[2].endpoint_config.cluster_name"),
            "{}",
            d.problems[0]
        );
    }

    #[test]
    fn old_bootstrap_labels_in_metadata() {
        let b = parse_bootstrap(
            &json!({"node": {"id": "sidecar~10.52.2.21~productpage-v1-5cb458d74f-56sx7.default~default.svc.cluster.local",
            "metadata": {"ISTIO_VERSION": "1.1.1", "CONFIG_NAMESPACE": "default", "POD_NAME": "productpage-v1", "app": "productpage", "version": "v1", "INSTANCE_IPS": "10.52.2.21"},
            "build_version": "55c8/1.10.0-dev/Clean/RELEASE/BoringSSL"}}),
        );
        assert_eq!(b.namespace.as_deref(), Some("default"));
        assert_eq!(b.labels.get("app").map(String::as_str), Some("productpage"));
        assert!(!b.labels.contains_key("ISTIO_VERSION"));
        assert_eq!(
            b.envoy_version.as_deref(),
            Some("55c8/1.10.0-dev/Clean/RELEASE/BoringSSL")
        );
        assert!(b.stats_inclusion().include_all);
    }

    #[test]
    fn document_level_errors_and_empty() {
        assert_eq!(
            parse_config_dump(&json!({})).unwrap(),
            ConfigDump::default()
        );
        assert_eq!(parse_config_dump(&json!([])), Err(DumpError::NotAnObject));
        assert_eq!(
            parse_config_dump(&json!({"configs": 3})),
            Err(DumpError::ConfigsNotAList)
        );
        let d = parse_config_dump(
            &json!({"configs": [{"@type": "type.googleapis.com/envoy.admin.v9.Foo"}, {"x": 1}]}),
        )
        .unwrap();
        assert_eq!(d.problems.len(), 2);
        let mut a = parse_config_dump(&v3_cluster_dump()).unwrap();
        a.merge(parse_config_dump(&v3_listeners()).unwrap());
        assert_eq!((a.clusters.len(), a.listeners.len()), (1, 3));
    }

    fn arb_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| json!(n)),
            prop_oneof![
                Just("name".to_string()),
                Just("@type".to_string()),
                Just("type.googleapis.com/envoy.admin.v3.ClustersConfigDump".to_string()),
                Just("type.googleapis.com/envoy.admin.v2alpha.ListenersConfigDump".to_string()),
                Just("outbound|80||a".to_string()),
                "[a-z|_.]{0,8}"
            ]
            .prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 64, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::btree_map(
                    prop_oneof![
                        Just("configs".to_string()),
                        Just("@type".to_string()),
                        Just("cluster".to_string()),
                        Just("listener".to_string()),
                        Just("dynamic_active_clusters".to_string()),
                        Just("dynamic_listeners".to_string()),
                        Just("active_state".to_string()),
                        Just("filter_chains".to_string()),
                        Just("transport_socket".to_string()),
                        Just("transport_socket_matches".to_string()),
                        Just("name".to_string()),
                        "[a-z_]{1,6}"
                    ],
                    inner,
                    0..5
                )
                .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn never_panics_on_arbitrary_json(v in arb_json()) {
            if let Ok(d) = parse_config_dump(&v) {
                let _ = inbound_modes(&d.listeners);
                let _ = inbound_catch_all(&d.listeners);
            }
        }
    }
}
