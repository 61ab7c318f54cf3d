//! Istio's standard metrics, counted by the real Envoy: every HTTP
//! connection manager and tcp_proxy of a sidecar gets an
//! `envoy.access_loggers.stats` access logger (upstream Envoy's stand-in for
//! istio-proxy's `istio.stats` filter), whether or not access logs are on.
//!
//! What istio-proxy reports (istio/proxy `source/extensions/filters/http/
//! istio_stats/istio_stats.cc`, `IstioStatsFilter::log`, `populatePeerInfo`,
//! `reportHelper`), and how the lab gets each label:
//! - `reporter`: `source` on outbound (client) listeners, `destination` on
//!   inbound (server) ones.
//! - the proxy's own side (`source_*` on the client, `destination_*` on the
//!   server): from its node metadata — static values here.
//! - the peer on the client: from the upstream host's endpoint metadata
//!   (istio-proxy parses `istio.workload`, `workload;ns;canonical;rev;cluster`;
//!   CEL in Envoy 1.40 cannot split strings, so the lab adds the same fields,
//!   parsed, under the metadata namespace `mesh503`), principals from the
//!   upstream TLS session.
//! - the peer on the server: from metadata exchange. istio-proxy's client adds
//!   `x-envoy-peer-metadata(-id)` request headers and the server's filter
//!   removes them; the lab's client adds `x-mesh503-peer`
//!   (`workload;ns;canonical;rev;app;version;cluster`, an
//!   `envoy.filters.http.header_mutation` filter) and the server moves it into
//!   dynamic metadata `mesh503_peer` and removes it
//!   (`envoy.filters.http.header_to_metadata`). `source_principal` is the
//!   peer certificate's SAN; `connection_security_policy` is `mutual_tls` on
//!   inbound TLS chains, `none` on plaintext ones, `unknown` on the client.
//! - `destination_service(_name)`: the cluster's `istio.services[0]`, the
//!   `Host` header when there is none, the special cluster names for
//!   BlackHole/Passthrough (`block_all`/`allow_any` routes).
//! - `request_protocol` `http`/`grpc` (`tcp` on tcp_proxy), `response_code`,
//!   `grpc_response_status`, `response_flags`.
//! - TCP: istio-proxy counts `istio_tcp_connections_opened_total` once peer
//!   metadata is read or the connection closes (no TCP metadata exchange in
//!   the lab), and `_closed_total` at close: both at `TcpConnectionEnd` here.
//!
//! LAB DIFFERENCES (see tests/lab/README.md): `/stats` shows the names as
//! istio-proxy 1.17+ does (`istiocustom.istio_requests_total.reporter.…`),
//! but upstream Envoy's Prometheus output keeps the namespace and adds
//! `envoy_` (`envoy_istiocustom_istio_requests_total{…}` where istio-proxy
//! prints `istio_requests_total{…}`); an empty tag value leaves `..` in
//! `/stats`; the server's `source_workload_namespace` comes from metadata
//! exchange, not the SAN, so TCP connections show `unknown` there; no
//! `istio_build`.

use super::world::{self, namespace};
use super::Ctx;
use serde_json::{json, Value};

/// Request header carrying the client's identity (the lab's metadata exchange).
pub const PEER_HEADER: &str = "x-mesh503-peer";
/// Dynamic metadata namespace the server stores the peer in.
const PEER_NS: &str = "mesh503_peer";
/// Endpoint metadata namespace with the parsed workload fields.
const ENDPOINT_NS: &str = "mesh503";
const PEER_FIELDS: [&str; 7] = [
    "workload",
    "namespace",
    "canonical_service",
    "canonical_revision",
    "app",
    "version",
    "cluster",
];

/// A workload as istio-proxy's labels see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    pub workload: String,
    pub namespace: String,
    pub canonical_service: String,
    pub canonical_revision: String,
    pub app: String,
    pub version: String,
    pub cluster: String,
    pub principal: String,
}

impl Peer {
    /// From a pod: the Deployment (or owner, or app label) as workload,
    /// canonical labels as the injector sets them, the SPIFFE identity of
    /// its service account.
    pub fn of_pod(pod: &Value, trust_domain: &str) -> Peer {
        let labels = world::labels(pod);
        let workload = crate::envoy::workload_name(pod);
        let get = |k: &str| labels.get(k).cloned().unwrap_or_default();
        let canonical = labels
            .get("service.istio.io/canonical-name")
            .or_else(|| labels.get("app"))
            .cloned()
            .unwrap_or_else(|| workload.clone());
        let revision = labels
            .get("service.istio.io/canonical-revision")
            .or_else(|| labels.get("version"))
            .cloned()
            .unwrap_or_else(|| "latest".into());
        Peer {
            namespace: namespace(pod).to_string(),
            canonical_service: canonical,
            canonical_revision: revision,
            app: get("app"),
            version: get("version"),
            cluster: "Kubernetes".into(),
            principal: format!(
                "spiffe://{trust_domain}/ns/{}/sa/{}",
                namespace(pod),
                super::service_account(pod)
            ),
            workload,
        }
    }

    fn fields(&self) -> [&str; 7] {
        [
            &self.workload,
            &self.namespace,
            &self.canonical_service,
            &self.canonical_revision,
            &self.app,
            &self.version,
            &self.cluster,
        ]
    }

    /// The `x-mesh503-peer` header value.
    pub fn header(&self) -> String {
        self.fields().join(";")
    }
}

/// Where a network filter sits.
#[derive(Debug, Clone, Copy)]
pub struct ChainInfo<'a> {
    pub inbound: bool,
    /// The chain terminates TLS (an inbound mTLS chain).
    pub tls: bool,
    pub destination_port: Option<u16>,
    pub chain_name: &'a str,
}

/// Call `f` on every network filter of a listener's filter chains (and its
/// default chain), with where it sits.
pub fn for_each_network_filter(l: &mut Value, mut f: impl FnMut(&mut Value, ChainInfo)) {
    let inbound = l["traffic_direction"] == "INBOUND";
    let mut visit = |chain: &mut Value| {
        let tls = chain["transport_socket"].is_object();
        let port = chain["filter_chain_match"]["destination_port"]
            .as_u64()
            .map(|p| p as u16);
        let chain_name = chain["name"].as_str().unwrap_or("").to_string();
        if let Some(filters) = chain["filters"].as_array_mut() {
            for filter in filters {
                f(
                    filter,
                    ChainInfo {
                        inbound,
                        tls,
                        destination_port: port,
                        chain_name: &chain_name,
                    },
                );
            }
        }
    };
    if let Some(chains) = l["filter_chains"].as_array_mut() {
        for c in chains {
            visit(c);
        }
    }
    if l["default_filter_chain"].is_object() {
        visit(&mut l["default_filter_chain"]);
    }
}

/// A static tag value; empty values as CEL `''` (Envoy wants a non-empty format).
fn lit(v: &str) -> String {
    if v.is_empty() {
        "%CEL('')%".into()
    } else {
        v.to_string()
    }
}

fn cel(expr: &str) -> String {
    format!("%CEL({expr})%")
}

/// `<base>.filter_metadata.<ns>.<key>`, or `dflt` when absent. CEL's
/// `has()` takes field selections only, and errors (an empty tag) when an
/// intermediate field is missing, so a selected base is tested first.
fn meta_or(base: &str, ns: &str, key: &str, dflt: &str) -> String {
    let present = if base.contains('.') {
        format!("has({base}) && has({base}.filter_metadata.{ns})")
    } else {
        format!("has({base}.filter_metadata.{ns})")
    };
    cel(&format!(
        "{present} ? {base}.filter_metadata.{ns}.{key} : '{dflt}'"
    ))
}

fn san_or_unknown(attr: &str) -> String {
    cel(&format!("has({attr}) && {attr} != '' ? {attr} : 'unknown'"))
}

const SERVICES: &str = "xds.cluster_metadata.filter_metadata.istio.services";
const GRPC: &str = "'content-type' in request.headers && request.headers['content-type'].startsWith('application/grpc')";

fn has_services() -> String {
    format!("has(xds.cluster_metadata) && has(xds.cluster_metadata.filter_metadata.istio) && has({SERVICES})")
}

/// Client side: `destination_service` and `destination_service_name`.
fn client_service(http: bool) -> (String, String) {
    let host = if http { "request.host" } else { "'unknown'" };
    let svc = cel(&format!("{} ? {SERVICES}[0].host : {host}", has_services()));
    let special = "['BlackHoleCluster', 'PassthroughCluster', 'InboundPassthroughCluster', 'InboundPassthroughClusterIpv4']";
    let mut name = format!(
        "xds.cluster_name in {special} ? xds.cluster_name : ({} ? {SERVICES}[0].name : {host})",
        has_services()
    );
    if http {
        name = format!(
            "xds.route_name == 'block_all' ? 'BlackHoleCluster' : (xds.route_name == 'allow_any' ? 'PassthroughCluster' : ({name}))"
        );
    }
    (svc, cel(&name))
}

type Tags = Vec<(&'static str, String)>;

/// The peer-describing tags of one side, in istio-proxy's order.
fn client_tags(me: &Peer, http: bool) -> Tags {
    let ep = "xds.upstream_host_metadata";
    let peer = |k: &str, d: &str| meta_or(ep, ENDPOINT_NS, k, d);
    let (svc, svc_name) = client_service(http);
    vec![
        ("reporter", "source".into()),
        ("source_workload", lit(&me.workload)),
        ("source_canonical_service", lit(&me.canonical_service)),
        ("source_canonical_revision", lit(&me.canonical_revision)),
        ("source_workload_namespace", lit(&me.namespace)),
        (
            "source_principal",
            san_or_unknown("upstream.uri_san_local_certificate"),
        ),
        ("source_app", lit(&me.app)),
        ("source_version", lit(&me.version)),
        ("source_cluster", lit(&me.cluster)),
        ("destination_workload", peer("workload", "unknown")),
        (
            "destination_workload_namespace",
            peer("namespace", "unknown"),
        ),
        (
            "destination_principal",
            san_or_unknown("upstream.uri_san_peer_certificate"),
        ),
        ("destination_app", peer("app", "unknown")),
        ("destination_version", peer("version", "unknown")),
        ("destination_service", svc),
        (
            "destination_canonical_service",
            peer("canonical_service", "unknown"),
        ),
        (
            "destination_canonical_revision",
            peer("canonical_revision", "latest"),
        ),
        ("destination_service_name", svc_name),
        (
            "destination_service_namespace",
            peer("namespace", "unknown"),
        ),
        ("destination_cluster", peer("cluster", "unknown")),
    ]
}

/// Server side: `service` is the inbound port's (host, name) when a
/// Service targets it; `tls` whether the chain is mTLS.
fn server_tags(me: &Peer, service: Option<(&str, &str)>, tls: bool, http: bool) -> Tags {
    let md = "metadata";
    let peer = |k: &str, d: &str| {
        if http {
            meta_or(md, PEER_NS, k, d)
        } else {
            d.to_string()
        }
    };
    // Inbound never falls back to the Host header (istio/istio
    // `pilot/pkg/model/telemetry.go` `disableHostHeaderFallback`): the
    // inbound cluster's `istio.services[0]`, else the canonical service.
    let (svc, svc_name) = match service {
        Some((h, n)) => (lit(h), lit(n)),
        None => (lit(&me.canonical_service), lit(&me.canonical_service)),
    };
    vec![
        ("reporter", "destination".into()),
        ("source_workload", peer("workload", "unknown")),
        (
            "source_canonical_service",
            peer("canonical_service", "unknown"),
        ),
        (
            "source_canonical_revision",
            peer("canonical_revision", "latest"),
        ),
        ("source_workload_namespace", peer("namespace", "unknown")),
        (
            "source_principal",
            if tls {
                san_or_unknown("connection.uri_san_peer_certificate")
            } else {
                "unknown".into()
            },
        ),
        ("source_app", peer("app", "unknown")),
        ("source_version", peer("version", "unknown")),
        ("source_cluster", peer("cluster", "unknown")),
        ("destination_workload", lit(&me.workload)),
        ("destination_workload_namespace", lit(&me.namespace)),
        (
            "destination_principal",
            if tls {
                lit(&me.principal)
            } else {
                "unknown".into()
            },
        ),
        ("destination_app", lit(&me.app)),
        ("destination_version", lit(&me.version)),
        ("destination_service", svc),
        ("destination_canonical_service", lit(&me.canonical_service)),
        (
            "destination_canonical_revision",
            lit(&me.canonical_revision),
        ),
        ("destination_service_name", svc_name),
        ("destination_service_namespace", lit(&me.namespace)),
        ("destination_cluster", lit(&me.cluster)),
    ]
}

fn tag_list(tags: &Tags) -> Value {
    Value::Array(
        tags.iter()
            .map(|(n, v)| json!({"name": n, "value_format": v}))
            .collect(),
    )
}

fn stats_logger(counters: Vec<Value>, histograms: Vec<Value>, filter: Option<Value>) -> Value {
    let mut cfg = json!({
        "@type": "type.googleapis.com/envoy.extensions.access_loggers.stats.v3.Config",
        // istio-proxy's custom stat namespace: `/stats` then shows
        // `istiocustom.istio_requests_total.<tag>.<value>…` as it does.
        "stats_scope": {"prefix": "istiocustom"},
        "counters": counters,
    });
    if !histograms.is_empty() {
        cfg["histograms"] = json!(histograms);
    }
    let mut l = json!({"name": "envoy.access_loggers.stats", "typed_config": cfg});
    if let Some(f) = filter {
        l["filter"] = f;
    }
    l
}

/// The stats logger of an HTTP connection manager.
fn http_logger(mut tags: Tags, inbound: bool, tls: bool) -> Value {
    tags.push((
        "request_protocol",
        cel(&format!("{GRPC} ? 'grpc' : 'http'")),
    ));
    tags.push(("response_code", "%RESPONSE_CODE%".into()));
    tags.push(("grpc_response_status", "%GRPC_STATUS_NUMBER%".into()));
    tags.push(("response_flags", "%RESPONSE_FLAGS%".into()));
    tags.push((
        "connection_security_policy",
        match (inbound, tls) {
            (false, _) => "unknown",
            (true, true) => "mutual_tls",
            (true, false) => "none",
        }
        .into(),
    ));
    let t = tag_list(&tags);
    let hist = |name: &str, unit: &str, value: &str| json!({"stat": {"name": name, "tags": t}, "unit": unit, "value_format": value});
    stats_logger(
        vec![json!({"stat": {"name": "istio_requests_total", "tags": t}, "value_fixed": 1})],
        vec![
            hist(
                "istio_request_duration_milliseconds",
                "Milliseconds",
                "%DURATION%",
            ),
            hist(
                "istio_request_bytes",
                "Bytes",
                "%DOWNSTREAM_WIRE_BYTES_RECEIVED%",
            ),
            hist(
                "istio_response_bytes",
                "Bytes",
                "%DOWNSTREAM_WIRE_BYTES_SENT%",
            ),
        ],
        None,
    )
}

/// The stats logger of a tcp_proxy: connections opened and closed, bytes,
/// at connection end.
fn tcp_logger(mut tags: Tags, inbound: bool, tls: bool) -> Value {
    tags.push(("request_protocol", "tcp".into()));
    tags.push(("response_flags", "%RESPONSE_FLAGS%".into()));
    tags.push((
        "connection_security_policy",
        match (inbound, tls) {
            (false, _) => "unknown",
            (true, true) => "mutual_tls",
            (true, false) => "none",
        }
        .into(),
    ));
    let t = tag_list(&tags);
    let counter = |name: &str| json!({"stat": {"name": name, "tags": t}, "value_fixed": 1});
    let bytes = |name: &str, v: &str| json!({"stat": {"name": name, "tags": t}, "value_format": v});
    stats_logger(
        vec![
            counter("istio_tcp_connections_opened_total"),
            counter("istio_tcp_connections_closed_total"),
            bytes("istio_tcp_sent_bytes_total", "%BYTES_SENT%"),
            bytes("istio_tcp_received_bytes_total", "%BYTES_RECEIVED%"),
        ],
        vec![],
        Some(json!({"log_type_filter": {"types": ["TcpConnectionEnd"]}})),
    )
}

/// The client's metadata exchange: add `x-mesh503-peer` to every request.
fn mx_client_filter(me: &Peer) -> Value {
    json!({"name": "envoy.filters.http.header_mutation", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.header_mutation.v3.HeaderMutation",
        "mutations": {"request_mutations": [{"append": {
            "header": {"key": PEER_HEADER, "value": me.header()},
            "append_action": "OVERWRITE_IF_EXISTS_OR_ADD"}}]}}})
}

/// The server's metadata exchange: the header's fields into dynamic
/// metadata `mesh503_peer`, then the header removed.
fn mx_server_filter() -> Value {
    let rules: Vec<Value> = PEER_FIELDS
        .iter()
        .enumerate()
        .map(|(i, key)| {
            let regex = format!("^(?:[^;]*;){{{i}}}([^;]*).*$");
            json!({"header": PEER_HEADER,
                "on_header_present": {"metadata_namespace": PEER_NS, "key": key, "type": "STRING",
                    "regex_value_rewrite": {"pattern": {"regex": regex}, "substitution": "\\1"}},
                "remove": i + 1 == PEER_FIELDS.len()})
        })
        .collect();
    json!({"name": "envoy.filters.http.header_to_metadata", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.header_to_metadata.v3.Config",
        "request_rules": rules}})
}

const HCM: &str = "envoy.filters.network.http_connection_manager";
const TCP_PROXY: &str = "envoy.filters.network.tcp_proxy";

/// The inbound port's Service (host, name), as the inbound cluster's
/// `istio.services` metadata carries it (1.8+).
fn inbound_service<'a>(ctx: &'a Ctx, port: Option<u16>) -> Option<(&'a str, String)> {
    if !ctx.version.services_metadata() {
        return None;
    }
    let ip = ctx.inbound_ports.iter().find(|p| Some(p.port) == port)?;
    let host = ip.service.as_deref()?.rsplit_once(':')?.0;
    Some((host, host.split('.').next().unwrap_or(host).to_string()))
}

/// Add the stats loggers and metadata exchange filters to every listener,
/// and the parsed workload metadata to every endpoint (from 1.5, when
/// istio-proxy reports standard metrics).
pub fn apply(ctx: &Ctx, listeners: &mut [Value], endpoints: &mut [Value]) {
    if !ctx.version.standard_metrics() {
        return;
    }
    let me = Peer::of_pod(ctx.pod, &ctx.mesh.trust_domain);
    for l in listeners.iter_mut() {
        for_each_network_filter(l, |f, chain| {
            if chain.chain_name.ends_with("-blackhole") {
                return;
            }
            let svc = inbound_service(ctx, chain.destination_port);
            let svc = svc.as_ref().map(|(h, n)| (*h, n.as_str()));
            let name = f["name"].as_str().unwrap_or("").to_string();
            let tc = &mut f["typed_config"];
            let logger = if name == HCM {
                let filters = tc["http_filters"].as_array_mut();
                if let Some(filters) = filters {
                    let mx = if chain.inbound {
                        mx_server_filter()
                    } else {
                        mx_client_filter(&me)
                    };
                    filters.insert(0, mx);
                }
                let tags = if chain.inbound {
                    server_tags(&me, svc, chain.tls, true)
                } else {
                    client_tags(&me, true)
                };
                http_logger(tags, chain.inbound, chain.tls)
            } else if name == TCP_PROXY {
                let tags = if chain.inbound {
                    server_tags(&me, svc, chain.tls, false)
                } else {
                    client_tags(&me, false)
                };
                tcp_logger(tags, chain.inbound, chain.tls)
            } else {
                return;
            };
            if !tc["access_log"].is_array() {
                tc["access_log"] = json!([]);
            }
            if let Some(a) = tc["access_log"].as_array_mut() {
                a.push(logger);
            }
        });
    }
    for cla in endpoints.iter_mut() {
        annotate_endpoints(ctx, cla);
    }
}

/// `mesh503` metadata on each endpoint of a pod: the fields istio-proxy
/// parses out of `istio.workload`, plus `app`/`version` when the pod has a
/// sidecar (istio-proxy gets those from its metadata exchange; `unknown`
/// otherwise).
fn annotate_endpoints(ctx: &Ctx, cla: &mut Value) {
    let Some(groups) = cla["endpoints"].as_array_mut() else {
        return;
    };
    for lb in groups
        .iter_mut()
        .flat_map(|g| g["lb_endpoints"].as_array_mut().into_iter().flatten())
    {
        let Some(addr) = lb["endpoint"]["address"]["socket_address"]["address"].as_str() else {
            continue;
        };
        let Some(pod) = ctx.world.pod_by_ip(addr) else {
            continue;
        };
        let mut peer = Peer::of_pod(pod, &ctx.mesh.trust_domain);
        if !super::pod_is_injected(pod) {
            // No sidecar to exchange metadata with: istio-proxy knows only
            // what `istio.workload` encodes, which has no app or version.
            peer.app.clear();
            peer.version.clear();
        }
        let mut m = serde_json::Map::new();
        for (k, v) in PEER_FIELDS.iter().zip(peer.fields()) {
            m.insert(
                k.to_string(),
                json!(if v.is_empty() { "unknown" } else { v }),
            );
        }
        if !lb["metadata"]["filter_metadata"].is_object() {
            lb["metadata"] = json!({"filter_metadata": {}});
        }
        lb["metadata"]["filter_metadata"][ENDPOINT_NS] = Value::Object(m);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_header_round_trips_through_the_server_regexes() {
        let pod = json!({"metadata": {"name": "sleep-5f8d6b-abcde", "namespace": "foo",
            "labels": {"app": "sleep", "version": "v1"},
            "ownerReferences": [{"kind": "ReplicaSet", "name": "sleep-5f8d6b"}]},
            "spec": {"serviceAccountName": "sleep"}});
        let p = Peer::of_pod(&pod, "cluster.local");
        assert_eq!(p.workload, "sleep");
        assert_eq!(p.principal, "spiffe://cluster.local/ns/foo/sa/sleep");
        assert_eq!(p.canonical_revision, "v1");
        assert_eq!(p.header(), "sleep;foo;sleep;v1;sleep;v1;Kubernetes");
        let f = mx_server_filter();
        let rules = f["typed_config"]["request_rules"].as_array().unwrap();
        assert_eq!(rules.len(), 7);
        assert_eq!(rules[1]["on_header_present"]["key"], "namespace");
        assert_eq!(
            rules[1]["on_header_present"]["regex_value_rewrite"]["pattern"]["regex"],
            "^(?:[^;]*;){1}([^;]*).*$"
        );
        assert_eq!(rules[6]["remove"], true);
        assert_eq!(rules[0]["remove"], false);
    }

    #[test]
    fn tags_follow_istio_proxy_order_and_defaults() {
        let me = Peer {
            workload: "httpbin".into(),
            namespace: "foo".into(),
            canonical_service: "httpbin".into(),
            canonical_revision: "v1".into(),
            app: "httpbin".into(),
            version: String::new(),
            cluster: "Kubernetes".into(),
            principal: "spiffe://cluster.local/ns/foo/sa/httpbin".into(),
        };
        let t = server_tags(
            &me,
            Some(("httpbin.foo.svc.cluster.local", "httpbin")),
            false,
            true,
        );
        let names: Vec<&str> = t.iter().map(|(n, _)| *n).collect();
        assert_eq!(names[0], "reporter");
        assert_eq!(names[1], "source_workload");
        assert_eq!(names[19], "destination_cluster");
        let get = |k: &str| t.iter().find(|(n, _)| *n == k).unwrap().1.clone();
        assert_eq!(get("source_principal"), "unknown");
        assert_eq!(get("destination_principal"), "unknown");
        assert_eq!(get("destination_version"), "%CEL('')%");
        assert_eq!(get("destination_service"), "httpbin.foo.svc.cluster.local");
        let l = http_logger(t, true, false);
        let tags = &l["typed_config"]["counters"][0]["stat"]["tags"];
        assert_eq!(tags.as_array().unwrap().len(), 25);
        assert_eq!(tags[24]["value_format"], "none");
        let tcp = tcp_logger(client_tags(&me, false), false, false);
        assert_eq!(
            tcp["filter"]["log_type_filter"]["types"][0],
            "TcpConnectionEnd"
        );
    }
}
