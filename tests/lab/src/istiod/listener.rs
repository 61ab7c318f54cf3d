//! Listeners and route configurations (LDS + RDS) of a sidecar (istio/istio
//! `pilot/pkg/networking/core/listener.go`, `listener_inbound.go`,
//! `filterchain_options.go`, `httproute.go`).
//!
//! LAB DIFFERENCES (no iptables, one network namespace):
//! - Outbound listeners keep Istio's names (`0.0.0.0_<port>`) but bind
//!   `egress:<port>` (what the lab's clients connect to, standing for the
//!   iptables capture to 15001) instead of `0.0.0.0:<port>` with
//!   `bind_to_port: false`. `virtualOutbound` binds `egress:15001`.
//! - A non-HTTP port gets one `0.0.0.0_<port>` tcp_proxy listener to the
//!   first service on that port (Istio uses `<clusterIP>_<port>` listeners,
//!   told apart by original destination, which the lab cannot see); HTTP
//!   wins when HTTP and TCP services share a port number.
//! - `virtualInbound` (see `inbound_chains.rs`) binds `pod_ip:15006` and,
//!   as `additional_addresses`, `pod_ip:<port>` for every port the pod
//!   serves (standing for the iptables REDIRECT). Its `original_dst`
//!   listener filter is harmless: SO_ORIGINAL_DST fails without NAT and the
//!   local address already is the destination, so `destination_port`
//!   matching works as in a pod.
//! - Inbound HTTP chains use RDS (`inbound|<port>||`) where Istio inlines
//!   the route configuration; the routes are the same.
//! - The listener shapes are Istio's modern ones (virtualInbound with
//!   per-port chains) for every modelled release.

use super::services::{Protocol, Service};
use super::virtual_service;
use super::xds::{self, socket_address, tcp_proxy, TYPE_LISTENER, TYPE_ROUTE};
use super::Ctx;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};

#[derive(Default)]
pub struct Built {
    pub listeners: Vec<Value>,
    pub routes: Vec<Value>,
}

pub fn build(ctx: &Ctx) -> Built {
    let mut out = Built::default();
    outbound(ctx, &mut out);
    out.listeners.push(virtual_outbound(ctx));
    inbound(ctx, &mut out);
    out
}

fn listener_filters(inspect_tls: bool) -> Value {
    let mut f = Vec::new();
    if inspect_tls {
        f.push(json!({"name": "envoy.filters.listener.tls_inspector", "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector"}}));
    }
    f.push(json!({"name": "envoy.filters.listener.http_inspector", "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.listener.http_inspector.v3.HttpInspector"}}));
    json!(f)
}

pub(super) fn set_listener_access_log(ctx: &Ctx, l: &mut Value) {
    if let Some(al) = &ctx.listener_access_log {
        l["access_log"] = json!([al]);
    }
}

/// The catch-all of an outbound listener: PassthroughCluster with ALLOW_ANY,
/// BlackHoleCluster with REGISTRY_ONLY.
fn fallback_cluster(ctx: &Ctx) -> &'static str {
    if ctx.mesh.outbound_allow_any {
        "PassthroughCluster"
    } else {
        "BlackHoleCluster"
    }
}

fn outbound(ctx: &Ctx, out: &mut Built) {
    // Service ports grouped by port number.
    let mut by_port: BTreeMap<u16, Vec<(&Service, Protocol)>> = BTreeMap::new();
    for svc in &ctx.services {
        for p in &svc.ports {
            by_port.entry(p.port).or_default().push((svc, p.protocol));
        }
    }
    for (port, svcs) in by_port {
        let name = format!("0.0.0.0_{port}");
        let mut l = json!({
            "@type": TYPE_LISTENER,
            "name": name,
            "address": socket_address(ctx.addrs.egress, port),
            "traffic_direction": "OUTBOUND",
        });
        let http: Vec<&Service> = svcs
            .iter()
            .filter(|(_, p)| p.is_http())
            .map(|(s, _)| *s)
            .collect();
        if !http.is_empty() {
            let mut hcm = json!({
                "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                "stat_prefix": format!("outbound_0.0.0.0_{port}"),
                "rds": xds::rds(&port.to_string()),
                "http_filters": super::inbound_chains::outbound_http_filters(ctx, http.iter().all(|s| s.port(port).is_some_and(|p| p.protocol.is_http2()))),
                "use_remote_address": false,
                "upgrade_configs": [{"upgrade_type": "websocket"}],
                "stream_idle_timeout": "0s",
                "normalize_path": true,
                "path_with_escaped_slashes_action": "KEEP_UNCHANGED",
                "request_id_extension": {"typed_config": {"@type": "type.googleapis.com/envoy.extensions.request_id.uuid.v3.UuidRequestIdConfig", "use_request_id_for_trace_sampling": true}},
            });
            if let Some(al) = &ctx.access_log {
                hcm["access_log"] = json!([al]);
            }
            l["filter_chains"] = json!([{
                "filter_chain_match": {"transport_protocol": "raw_buffer", "application_protocols": ["http/1.1", "h2c"]},
                "filters": [{"name": "envoy.filters.network.http_connection_manager", "typed_config": hcm}],
            }]);
            l["default_filter_chain"] = json!({
                "filter_chain_match": {},
                "filters": [tcp_proxy(fallback_cluster(ctx), fallback_cluster(ctx), ctx.access_log.as_ref())],
                "name": "PassthroughFilterChain",
            });
            l["listener_filters"] = listener_filters(true);
            l["listener_filters_timeout"] = json!("0s");
            l["continue_on_listener_filters_timeout"] = json!(true);
            out.routes.push(outbound_route_config(ctx, port, &http));
        } else {
            // The first TCP service on this port, the client's namespace first.
            let mut tcp: Vec<&Service> = svcs.iter().map(|(s, _)| *s).collect();
            tcp.sort_by_key(|s| (s.namespace != ctx.ns, s.hostname.clone()));
            let cluster = xds::outbound_cluster_name(port, "", &tcp[0].hostname);
            l["filter_chains"] =
                json!([{"filters": [tcp_proxy(&cluster, &cluster, ctx.access_log.as_ref())]}]);
        }
        set_listener_access_log(ctx, &mut l);
        out.listeners.push(l);
    }
}

/// Virtual host domains (istio/istio `httproute.go`
/// `generateVirtualHostDomains`): the FQDN, then the shorter names a client
/// in the service's namespace or another namespace may use, and the
/// cluster IP, each with and without `:port`.
fn domains(ctx: &Ctx, svc: &Service, port: u16) -> Vec<String> {
    let mut names = vec![svc.hostname.clone()];
    if matches!(svc.source, super::services::Source::Kubernetes(_)) {
        if svc.namespace == ctx.ns {
            names.push(svc.name.clone());
        }
        names.push(format!("{}.{}", svc.name, svc.namespace));
        names.push(format!("{}.{}.svc", svc.name, svc.namespace));
    }
    // Headless Kubernetes services also match `*.<name>` (pod DNS names).
    names.extend(super::headless::wildcard_domains(ctx, svc, &names));
    if let Some(ip) = &svc.cluster_ip {
        names.push(ip.clone());
    }
    names
        .into_iter()
        .flat_map(|n| [n.clone(), format!("{n}:{port}")])
        .collect()
}

fn outbound_route_config(ctx: &Ctx, port: u16, services: &[&Service]) -> Value {
    let mut used = BTreeSet::new();
    let mut vhosts = Vec::new();
    for svc in services {
        let doms: Vec<String> = domains(ctx, svc, port)
            .into_iter()
            .filter(|d| used.insert(d.clone()))
            .collect();
        if doms.is_empty() {
            continue;
        }
        vhosts.push(json!({
            "name": format!("{}:{port}", svc.hostname),
            "domains": doms,
            "routes": virtual_service::routes(ctx, svc, port),
            "include_request_attempt_count": true,
        }));
    }
    if ctx.mesh.outbound_allow_any {
        vhosts.push(json!({
            "name": "allow_any",
            "domains": ["*"],
            "routes": [{"match": {"prefix": "/"}, "route": {"cluster": "PassthroughCluster", "timeout": "0s"}, "name": "allow_any"}],
            "include_request_attempt_count": true,
        }));
    } else {
        vhosts.push(json!({
            "name": "block_all",
            "domains": ["*"],
            "routes": [{"match": {"prefix": "/"}, "direct_response": {"status": 502}, "name": "block_all"}],
            "include_request_attempt_count": true,
        }));
    }
    json!({"@type": TYPE_ROUTE, "name": port.to_string(), "virtual_hosts": vhosts, "validate_clusters": false})
}

fn virtual_outbound(ctx: &Ctx) -> Value {
    let mut l = json!({
        "@type": TYPE_LISTENER,
        "name": "virtualOutbound",
        "address": socket_address(ctx.addrs.egress, 15001),
        "filter_chains": [
            {"filter_chain_match": {"destination_port": 15001}, "filters": [tcp_proxy("BlackHoleCluster", "BlackHoleCluster", None)], "name": "virtualOutbound-blackhole"},
            {"filters": [tcp_proxy(fallback_cluster(ctx), fallback_cluster(ctx), ctx.access_log.as_ref())], "name": "virtualOutbound-catchall-tcp"},
        ],
        "use_original_dst": true,
        "traffic_direction": "OUTBOUND",
    });
    set_listener_access_log(ctx, &mut l);
    l
}

pub(super) fn inbound_hcm(ctx: &Ctx, port: u16, route_name: &str) -> Value {
    let mut hcm = json!({
        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
        "stat_prefix": format!("inbound_0.0.0.0_{port}"),
        "rds": xds::rds(route_name),
        "http_filters": xds::http_filters(),
        "server_name": "istio-envoy",
        "use_remote_address": false,
        "forward_client_cert_details": "APPEND_FORWARD",
        "set_current_client_cert_details": {"subject": true, "dns": true, "uri": true},
        "upgrade_configs": [{"upgrade_type": "websocket"}],
        "stream_idle_timeout": "0s",
        "normalize_path": true,
        "path_with_escaped_slashes_action": "KEEP_UNCHANGED",
        "request_id_extension": {"typed_config": {"@type": "type.googleapis.com/envoy.extensions.request_id.uuid.v3.UuidRequestIdConfig", "use_request_id_for_trace_sampling": true}},
    });
    if let Some(al) = &ctx.access_log {
        hcm["access_log"] = json!([al]);
    }
    json!({"name": "envoy.filters.network.http_connection_manager", "typed_config": hcm})
}

pub(super) fn inbound_route_config(
    route_name: &str,
    cluster: &str,
    port: u16,
    operation_host: &str,
) -> Value {
    json!({
        "@type": TYPE_ROUTE,
        "name": route_name,
        "virtual_hosts": [{
            "name": format!("inbound|http|{port}"),
            "domains": ["*"],
            "routes": [{
                "match": {"prefix": "/"},
                "route": {"cluster": cluster, "timeout": "0s", "max_stream_duration": {"max_stream_duration": "0s", "grpc_timeout_header_max": "0s"}},
                "decorator": {"operation": format!("{operation_host}/*")},
                "name": "default",
            }],
        }],
        "validate_clusters": false,
    })
}

/// `virtualInbound`: built in `inbound_chains.rs` (Service target ports,
/// Istio's chain shapes per protocol and mode, passthrough chains).
fn inbound(ctx: &Ctx, out: &mut Built) {
    super::inbound_chains::build(ctx, out);
}
