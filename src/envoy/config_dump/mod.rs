//! Envoy `/config_dump`: clusters, listeners, endpoints and bootstrap, in the
//! v2 (`envoy.admin.v2alpha.*`, Istio 1.1–1.5: `tls_context` on clusters and
//! filter chains, `config` on filters) and v3 (`envoy.admin.v3.*`:
//! `transport_socket`, `transport_socket_matches`, `typed_config`) shapes,
//! and the updates Envoy rejected (`error_state`).
//!
//! Place in the flow: collect fetches `/config_dump?resource=…` and stores it
//! in the snapshot; model parses it with this module; analyze and
//! `tls-check` read the typed result. envoy/ parses only what Envoy emits and
//! makes no Istio decisions: what an inbound port accepts or what a cluster
//! sends is `istio::tls`.
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

mod bootstrap;
mod cluster;
mod endpoint;
mod json;
mod listener;
mod parallel;
mod pruned;
mod rejected;
pub mod stream;
#[cfg(test)]
pub(crate) mod stream_tests;
#[cfg(test)]
pub(crate) mod tests;
mod tls;

pub use bootstrap::{parse_bootstrap, Bootstrap};
pub use cluster::{
    parse_cluster, parse_istio_config_path, ClientTlsConfig, Cluster, ClusterKind,
    OutlierDetectionConfig, ResourceState, Thresholds,
};
pub use endpoint::{parse_load_assignment, Endpoint};
pub use listener::{parse_listener, FilterChain, Listener, ListenerState};
pub use rejected::{RejectedResource, ResourceType, UpdateFailure};
pub use tls::{DownstreamTls, TlsContext};

use json::{each, s, Json};
use rejected::wrapper_rejection;

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

/// `version_info` and `last_updated` of an active resource.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ResourceVersion {
    pub version_info: Option<String>,
    pub last_updated: Option<String>,
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
    /// Cluster name → version of its active endpoint assignment.
    pub endpoint_versions: BTreeMap<String, ResourceVersion>,
    /// The `version_info` of a whole `ClustersConfigDump` /
    /// `ListenersConfigDump` (the last CDS / LDS version accepted).
    pub type_versions: BTreeMap<ResourceType, String>,
    /// Updates Envoy rejected (every `error_state` in the dump).
    pub rejected: Vec<RejectedResource>,
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
    /// Every access-log format the listeners run (deduplicated, in order):
    /// what the proxy's own log lines are written with.
    pub fn access_log_formats(&self) -> Vec<crate::envoy::access_log::LogFormatSpec> {
        let mut out = Vec::new();
        for f in self.listeners.iter().flat_map(Listener::access_log_formats) {
            if !out.contains(&f) {
                out.push(f);
            }
        }
        out
    }
    /// Merge another (partial) dump into this one (e.g. the three
    /// `?resource=` fetches of one proxy): what this one set first stays.
    pub fn merge(&mut self, other: ConfigDump) {
        self.combine(other, false);
    }

    /// Add the dump of a later part of the same document, as reading it
    /// into this one would have: a bootstrap and whole-dump versions it
    /// sets replace this one's (`stream`'s two-thread reader).
    pub(super) fn append_later(&mut self, later: ConfigDump) {
        self.combine(later, true);
    }

    /// Lists appended, the first known API kept; the bootstrap and the
    /// whole-dump versions from `other` when `later_wins`, else only where
    /// this one has none.
    fn combine(&mut self, other: ConfigDump, later_wins: bool) {
        if self.api == DumpApi::Unknown {
            self.api = other.api;
        }
        if other.bootstrap.is_some() && (later_wins || self.bootstrap.is_none()) {
            self.bootstrap = other.bootstrap;
        }
        self.clusters.extend(other.clusters);
        self.listeners.extend(other.listeners);
        for (k, v) in other.endpoints {
            self.endpoints.entry(k).or_default().extend(v);
        }
        self.endpoint_versions.extend(other.endpoint_versions);
        for (k, v) in other.type_versions {
            if later_wins {
                self.type_versions.insert(k, v);
            } else {
                self.type_versions.entry(k).or_insert(v);
            }
        }
        self.rejected.extend(other.rejected);
        self.problems.extend(other.problems);
    }
}

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

fn missing(path: &str, what: &str) -> DumpError {
    DumpError::Element {
        path: path.to_string(),
        reason: format!("no `{what}`"),
    }
}

/// A `StaticCluster` / `DynamicCluster` wrapper.
fn push_cluster<J: Json>(out: &mut ConfigDump, wrapper: &J, path: &str, state: ResourceState) {
    let rejection = wrapper_rejection(wrapper, ResourceType::Cluster, "cluster", "name", path);
    let rejected = rejection.is_some();
    out.rejected.extend(rejection);
    let Some(c) = wrapper.get("cluster") else {
        if !rejected {
            out.problems.push(missing(path, "cluster"));
        }
        return;
    };
    match cluster::cluster_from(c, &format!("{path}.cluster")) {
        Ok(mut cl) => {
            cl.state = state;
            cl.version_info = s(wrapper, "version_info");
            cl.last_updated = s(wrapper, "last_updated");
            out.clusters.push(cl);
        }
        Err(e) => out.problems.push(e),
    }
}

fn push_listener<J: Json>(out: &mut ConfigDump, l: &J, path: &str, state: ListenerState) {
    match listener::listener_from(l, path) {
        Ok(mut li) => {
            li.state = state;
            out.listeners.push(li);
        }
        Err(e) => out.problems.push(e),
    }
}

/// A v2alpha `dynamic_*_listeners[]` / `static_listeners[]` wrapper
/// (`version_info`, `listener`, `last_updated`).
fn push_listener_wrapper<J: Json>(out: &mut ConfigDump, w: &J, path: &str, state: ListenerState) {
    match w.get("listener") {
        Some(l) => {
            push_listener(out, l, &format!("{path}.listener"), state);
            if let Some(li) = out.listeners.last_mut() {
                li.version_info = s(w, "version_info");
                li.last_updated = s(w, "last_updated");
            }
        }
        None => out.problems.push(missing(path, "listener")),
    }
}

fn push_dynamic_listener<J: Json>(out: &mut ConfigDump, d: &J, path: &str) {
    let parsed = listener::parse_dynamic_listener(d, path);
    out.rejected.extend(parsed.rejected);
    match parsed.listener {
        Ok(l) => out.listeners.push(l),
        Err(e) => out.problems.push(e),
    }
}

fn push_endpoints<J: Json>(out: &mut ConfigDump, wrapper: &J, path: &str) {
    let rejection = wrapper_rejection(
        wrapper,
        ResourceType::Endpoints,
        "endpoint_config",
        "cluster_name",
        path,
    );
    let rejected = rejection.is_some();
    out.rejected.extend(rejection);
    let Some(cla) = wrapper.get("endpoint_config") else {
        if !rejected {
            out.problems.push(missing(path, "endpoint_config"));
        }
        return;
    };
    match endpoint::load_assignment_from(cla, &format!("{path}.endpoint_config")) {
        Ok((name, eps)) => {
            let version = ResourceVersion {
                version_info: s(wrapper, "version_info"),
                last_updated: s(wrapper, "last_updated"),
            };
            if version != ResourceVersion::default() {
                out.endpoint_versions.insert(name.clone(), version);
            }
            out.endpoints.entry(name).or_default().extend(eps);
        }
        Err(e) => out.problems.push(e),
    }
}

/// The whole-dump `version_info` of a `ClustersConfigDump` / `ListenersConfigDump`.
fn type_version(out: &mut ConfigDump, c: &Value, ty: ResourceType) {
    if let Some(v) = s(c, "version_info") {
        out.type_versions.insert(ty, v);
    }
}

/// The `configs[]` elements the parser keeps, by `@type` (without the API
/// prefix); every other type (routes, secrets, scoped routes, ecds…) is
/// skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Bootstrap,
    /// A whole `ClustersConfigDump`, `ListenersConfigDump` or
    /// `EndpointsConfigDump`: lists of resources (the bulk of a dump).
    Lists(ListsKind),
    DynamicCluster,
    StaticCluster,
    DynamicListener,
    StaticListener,
    EndpointConfig,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ListsKind {
    Clusters,
    Listeners,
    Endpoints,
}

impl ListsKind {
    /// The lists, in the order they are read: `ClustersConfigDump`'s;
    /// `ListenersConfigDump`'s (v3 `static_listeners` / `dynamic_listeners`,
    /// v2alpha `dynamic_{active,warming,draining}_listeners`);
    /// `EndpointsConfigDump`'s.
    fn lists(self) -> &'static [&'static str] {
        match self {
            ListsKind::Clusters => &[
                "static_clusters",
                "dynamic_active_clusters",
                "dynamic_warming_clusters",
            ],
            ListsKind::Listeners => &[
                "static_listeners",
                "dynamic_listeners",
                "dynamic_active_listeners",
                "dynamic_warming_listeners",
                "dynamic_draining_listeners",
            ],
            ListsKind::Endpoints => &["static_endpoint_configs", "dynamic_endpoint_configs"],
        }
    }
    /// Adds element `w` of the `list`-th of [`ListsKind::lists`] to the
    /// dump (a wrapper, or a v3 `DynamicListener`); `path` names it.
    fn push<J: Json>(self, list: usize, out: &mut ConfigDump, w: &J, path: &str) {
        match (self, list) {
            (ListsKind::Clusters, 0) => push_cluster(out, w, path, ResourceState::Static),
            (ListsKind::Clusters, 1) => push_cluster(out, w, path, ResourceState::DynamicActive),
            (ListsKind::Clusters, _) => push_cluster(out, w, path, ResourceState::DynamicWarming),
            (ListsKind::Listeners, 0) => {
                if w.get("listener").is_some() {
                    push_listener_wrapper(out, w, path, ListenerState::Static)
                }
            }
            (ListsKind::Listeners, 1) => push_dynamic_listener(out, w, path),
            (ListsKind::Listeners, 2) => push_listener_wrapper(out, w, path, ListenerState::Active),
            (ListsKind::Listeners, 3) => {
                push_listener_wrapper(out, w, path, ListenerState::Warming)
            }
            (ListsKind::Listeners, _) => {
                push_listener_wrapper(out, w, path, ListenerState::Draining)
            }
            (ListsKind::Endpoints, _) => push_endpoints(out, w, path),
        }
    }
    /// The resource whose whole-dump `version_info` is kept (an
    /// `EndpointsConfigDump` has none).
    fn versioned(self) -> Option<ResourceType> {
        match self {
            ListsKind::Clusters => Some(ResourceType::Cluster),
            ListsKind::Listeners => Some(ResourceType::Listener),
            ListsKind::Endpoints => None,
        }
    }
}

fn kind_of(kind: &str) -> Option<Kind> {
    Some(match kind {
        "BootstrapConfigDump" => Kind::Bootstrap,
        "ClustersConfigDump" => Kind::Lists(ListsKind::Clusters),
        "ClustersConfigDump.DynamicCluster" => Kind::DynamicCluster,
        "ClustersConfigDump.StaticCluster" => Kind::StaticCluster,
        "ListenersConfigDump" => Kind::Lists(ListsKind::Listeners),
        "ListenersConfigDump.DynamicListener" => Kind::DynamicListener,
        "ListenersConfigDump.StaticListener" => Kind::StaticListener,
        "EndpointsConfigDump" => Kind::Lists(ListsKind::Endpoints),
        "EndpointsConfigDump.DynamicEndpointConfig"
        | "EndpointsConfigDump.StaticEndpointConfig" => Kind::EndpointConfig,
        _ => return None,
    })
}

/// One element of `configs[]` of a kept kind.
fn config_element(out: &mut ConfigDump, kind: Kind, c: &Value, path: &str) {
    match kind {
        // Static clusters' load_assignment endpoints are in EndpointsConfigDump already.
        Kind::Bootstrap => {
            if let Some(b) = c.get("bootstrap") {
                out.bootstrap = Some(parse_bootstrap(b));
            }
        }
        Kind::Lists(lists) => {
            if let Some(ty) = lists.versioned() {
                type_version(out, c, ty);
            }
            for (i, key) in lists.lists().iter().enumerate() {
                for (j, w) in each(c, key) {
                    lists.push(i, out, w, &format!("{path}.{key}[{j}]"));
                }
            }
        }
        Kind::DynamicCluster => push_cluster(out, c, path, ResourceState::DynamicActive),
        Kind::StaticCluster => push_cluster(out, c, path, ResourceState::Static),
        Kind::DynamicListener => push_dynamic_listener(out, c, path),
        Kind::StaticListener => {
            if c.get("listener").is_some() {
                push_listener_wrapper(out, c, path, ListenerState::Static)
            }
        }
        Kind::EndpointConfig => push_endpoints(out, c, path),
    }
}

/// Checks the answer to a `/config_dump?resource=…` (or another JSON admin
/// read when `expected_item_type` is `None`) and returns it as JSON.
///
/// Refuses a document that is not JSON or, for a resource dump, that holds
/// anything but items whose `@type` ends with `expected_item_type`
/// (`ClustersConfigDump.DynamicCluster`, …): in particular secrets or the
/// bootstrap, which is what an Envoy too old to honour `resource=` returns
/// (envoyproxy/envoy `source/server/admin/config_dump_handler.cc`: the
/// `resource` parameter selects one repeated field of one dump).
pub fn check_resource_dump(body: &str, expected_item_type: Option<&str>) -> Result<Value, String> {
    let v: Value = serde_json::from_str(body).map_err(|e| format!("not JSON: {e}"))?;
    let Some(expected) = expected_item_type else {
        return Ok(v);
    };
    let configs = v
        .get("configs")
        .and_then(Value::as_array)
        .ok_or_else(|| "no \"configs\" array in the answer".to_string())?;
    for c in configs {
        let t = c.get("@type").and_then(Value::as_str).unwrap_or("");
        if t.contains("Secret") || t.contains("Bootstrap") || !t.ends_with(expected) {
            return Err(format!(
                "the answer holds {t:?}, not only {expected} items: this Envoy ignores `resource=` \
                 (too old?); the dump was discarded because a full config dump can hold secrets"
            ));
        }
    }
    Ok(v)
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
        config_entry(&mut out, c, &format!("configs[{i}]"));
    }
    Ok(out)
}

/// One element of `configs[]`, whatever it holds: by its `@type`, or a
/// problem when it has none or an unknown one.
fn config_entry(out: &mut ConfigDump, c: &Value, path: &str) {
    match c.get("@type").and_then(Value::as_str) {
        Some(t) => {
            typed_entry(out, t, Some(c), path);
        }
        None => out.problems.push(DumpError::Element {
            path: path.to_string(),
            reason: "no @type".into(),
        }),
    }
}

/// The `@type` `t` of an element: records the dump's API and, for a kept
/// kind, returns it; `c` (the element) is parsed when given, else the caller
/// reads the element itself (the streaming parser).
fn typed_entry(out: &mut ConfigDump, t: &str, c: Option<&Value>, path: &str) -> Option<Kind> {
    let Some((api, kind)) = type_suffix(t) else {
        out.problems.push(DumpError::Element {
            path: path.to_string(),
            reason: format!("unknown type URL {t}"),
        });
        return None;
    };
    if out.api == DumpApi::Unknown {
        out.api = api;
    }
    let kind = kind_of(kind)?;
    if let Some(c) = c {
        config_element(out, kind, c, path);
    }
    Some(kind)
}
