//! Listeners in `/config_dump` (`ListenersConfigDump`, v2alpha
//! `dynamic_active_listeners` … and v3 `dynamic_listeners` with
//! `active_state` / `warming_state` / `draining_state` / `error_state`):
//! address, filter chains with their match, TLS, filters, clusters and
//! access-log formats.
//!
//! Place in the flow: part of the pure `/config_dump` parser (envoy/). What
//! an inbound port accepts in Istio terms (STRICT / PERMISSIVE / DISABLE) is
//! decided in `istio::tls::inbound`, not here.
//!
//! Sources: envoyproxy/envoy `api/envoy/config/listener/v3/listener.proto`,
//! `listener_components.proto` (`FilterChainMatch`), `api/envoy/admin/v3/config_dump_shared.proto`
//! (`ListenersConfigDump.DynamicListener`, `DynamicListenerState`).

use serde_json::Value;

use super::json::{bool_of, each, filter_config, port_at, s, str_list, u64_at, Json};
use super::rejected::{update_failure, RejectedResource, ResourceType};
use super::tls::{chain_tls, DownstreamTls};
use super::DumpError;
use crate::envoy::access_log::{json_format_from_value, LogFormatSpec};

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
    /// `error_state.details` of a rejected (NACKed) update (the full facts are
    /// in [`super::ConfigDump::rejected`]).
    pub error_state: Option<String>,
    /// `INBOUND`, `OUTBOUND` (Istio ≥1.3 sets it).
    pub traffic_direction: Option<String>,
    pub filter_chains: Vec<FilterChain>,
    pub default_filter_chain: Option<FilterChain>,
    pub use_original_dst: bool,
    /// `version_info` of the state this listener was read from (v3
    /// `active_state.version_info`; Istio writes `<time>/<push>`).
    pub version_info: Option<String>,
    /// `last_updated` of that state.
    pub last_updated: Option<String>,
}

impl Listener {
    /// Every access log format on the listener (deduplicated).
    pub fn access_log_formats(&self) -> Vec<LogFormatSpec> {
        let mut out: Vec<LogFormatSpec> = Vec::new();
        // Deduplicated through a set: a search of `out` per format is
        // quadratic in the chains (a listener comes from the proxy, unbounded).
        let mut seen = std::collections::HashSet::new();
        for fc in self
            .filter_chains
            .iter()
            .chain(self.default_filter_chain.iter())
        {
            for f in &fc.access_log_formats {
                if seen.insert(f) {
                    out.push(f.clone());
                }
            }
        }
        out
    }
}

/// The access-log formats of one filter's `access_log` list: v2
/// `config.format` / `json_format`; v3 `log_format.{text_format_source.inline_string,
/// text_format, json_format}` or the deprecated `format`.
fn access_logs<J: Json>(cfg: &J, out: &mut Vec<LogFormatSpec>) {
    for (_, al) in each(cfg, "access_log") {
        let c = filter_config(al);
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
            (None, Some(j)) => json_format_from_value(&j.to_value()),
            _ => None,
        };
        out.extend(spec);
    }
}

/// Drop repeated formats, keeping the first of each (order matters: the
/// first format that fits a line wins). Through a set: quadratic otherwise.
fn dedup_formats(formats: &mut Vec<LogFormatSpec>) {
    let mut seen = std::collections::HashSet::new();
    formats.retain(|f| seen.insert(f.clone()));
}

/// `cluster` and `weighted_clusters.clusters[].name` of a route action or tcp_proxy.
fn target_clusters<J: Json>(action: &J, out: &mut Vec<String>) {
    out.extend(s(action, "cluster"));
    let weighted = action.get("weighted_clusters").unwrap_or(J::null());
    for (_, wc) in each(weighted, "clusters") {
        out.extend(s(wc, "name"));
    }
}

fn route_clusters<J: Json>(route_config: &J, out: &mut Vec<String>) {
    for (_, vh) in each(route_config, "virtual_hosts") {
        for (_, r) in each(vh, "routes") {
            if let Some(route) = r.get("route") {
                target_clusters(route, out);
            }
        }
    }
}

fn prefix_ranges<J: Json>(m: &J) -> Vec<String> {
    each(m, "prefix_ranges")
        .map(|(_, p)| {
            format!(
                "{}/{}",
                p.get("address_prefix").and_then(J::as_str).unwrap_or(""),
                u64_at(p, "prefix_len").unwrap_or(0)
            )
        })
        .collect()
}

fn parse_filter_chain<J: Json>(fc: &J) -> FilterChain {
    let m = fc.get("filter_chain_match").unwrap_or(J::null());
    let mut out = FilterChain {
        name: s(fc, "name"),
        destination_port: port_at(m, "destination_port"),
        transport_protocol: s(m, "transport_protocol"),
        application_protocols: str_list(m.get("application_protocols")),
        server_names: str_list(m.get("server_names")),
        prefix_ranges: prefix_ranges(m),
        tls: chain_tls(fc),
        ..FilterChain::default()
    };
    for (_, f) in each(fc, "filters") {
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
            target_clusters(cfg, &mut out.clusters);
        }
        access_logs(cfg, &mut out.access_log_formats);
        out.network_filters.push(name);
    }
    dedup_formats(&mut out.access_log_formats);
    out
}

fn address<J: Json>(l: &J) -> (String, Option<u16>) {
    let Some(a) = l.get("address") else {
        return (String::new(), None);
    };
    match a.get("socket_address") {
        Some(sa) => (
            s(sa, "address").unwrap_or_default(),
            port_at(sa, "port_value"),
        ),
        None => (
            a.get("pipe")
                .and_then(|p| s(p, "path"))
                .map(|p| format!("unix://{p}"))
                .unwrap_or_default(),
            None,
        ),
    }
}

/// Parse one `Listener` proto.
pub fn parse_listener(l: &Value, path: &str) -> Result<Listener, DumpError> {
    listener_from(l, path)
}

/// [`parse_listener`] of any [`Json`].
pub(super) fn listener_from<J: Json>(l: &J, path: &str) -> Result<Listener, DumpError> {
    let (address, port) = address(l);
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
    Ok(Listener {
        name,
        address,
        port,
        traffic_direction: s(l, "traffic_direction"),
        filter_chains: each(l, "filter_chains")
            .map(|(_, fc)| parse_filter_chain(fc))
            .collect(),
        default_filter_chain: l.get("default_filter_chain").map(parse_filter_chain),
        use_original_dst: l.get("use_original_dst").and_then(bool_of).unwrap_or(false),
        ..Listener::default()
    })
}

/// What one v3 `DynamicListener` holds: the listener to analyze (the
/// active, else warming, else draining version; else the rejected config as a
/// `Rejected` listener) and, when it has an `error_state`, the rejection.
pub(super) struct DynamicListener {
    pub listener: Result<Listener, DumpError>,
    pub rejected: Option<RejectedResource>,
}

/// A v3 `DynamicListener` (`name`, `active_state`, `warming_state`,
/// `draining_state`, `error_state`).
pub(super) fn parse_dynamic_listener<J: Json>(d: &J, path: &str) -> DynamicListener {
    let failure = d.get("error_state").map(update_failure);
    let details = failure
        .as_ref()
        .map(|f| (f.details.clone()).unwrap_or_else(|| "rejected (no details)".to_string()));
    let mut rejected = failure.map(|failure| RejectedResource {
        resource_type: ResourceType::Listener,
        name: s(d, "name"),
        failure,
        active_version: None,
        active_last_updated: None,
        path: path.to_string(),
    });
    for (key, state) in [
        ("active_state", ListenerState::Active),
        ("warming_state", ListenerState::Warming),
        ("draining_state", ListenerState::Draining),
    ] {
        let Some(st) = d.get(key) else { continue };
        let Some(l) = st.get("listener") else {
            continue;
        };
        let listener = listener_from(l, &format!("{path}.{key}.listener")).map(|mut out| {
            out.state = state;
            out.error_state = details.clone();
            out.version_info = s(st, "version_info");
            out.last_updated = s(st, "last_updated");
            out
        });
        if let (Some(r), ListenerState::Active) = (rejected.as_mut(), state) {
            r.active_version = s(st, "version_info");
            r.active_last_updated = s(st, "last_updated");
        }
        return DynamicListener { listener, rejected };
    }
    let listener = match d.get("error_state") {
        // No active version: the rejected config is all there is.
        Some(es) => rejected_listener(d, es, path, details),
        None => Err(DumpError::Element {
            path: path.to_string(),
            reason: "dynamic listener without active, warming, draining or error state".into(),
        }),
    };
    DynamicListener { listener, rejected }
}

/// The `failed_configuration` of a listener with no other state, as a
/// `Rejected` listener (it accepts nothing, but its chains tell what was meant).
fn rejected_listener<J: Json>(
    d: &J,
    es: &J,
    path: &str,
    details: Option<String>,
) -> Result<Listener, DumpError> {
    let mut out = match es.get("failed_configuration") {
        Some(fc) if fc.is_object() => {
            listener_from(fc, &format!("{path}.error_state.failed_configuration"))
                .unwrap_or_default()
        }
        _ => Listener::default(),
    };
    if out.name.is_empty() {
        out.name = s(d, "name").unwrap_or_default();
    }
    out.state = ListenerState::Rejected;
    out.error_state = details;
    if out.name.is_empty() {
        return Err(DumpError::Element {
            path: path.to_string(),
            reason: "listener without name".into(),
        });
    }
    Ok(out)
}
