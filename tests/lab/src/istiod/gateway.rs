//! Ingress gateways: a pod whose `istio-proxy` runs `proxy router` (the
//! istio/istio gateway chart's `istio-ingressgateway`) gets gateway config
//! instead of sidecar config: the outbound clusters, and one listener per
//! Gateway server port serving the VirtualServices bound to that Gateway.
//!
//! Read from istio/istio (1.10.0 to 1.31; the parts used here are stable):
//! - `pilot/pkg/model/push_context.go` `mergeGateways`, `model/gateway.go`
//!   `MergeGateways`, `resolvePorts`: Gateways whose `selector` labels the
//!   pod carries (any namespace: `PILOT_SCOPE_GATEWAY_TO_NAMESPACE` is off by
//!   default), oldest first; a server port is translated to the `targetPort`
//!   of the first Service of the gateway pod exposing it (legacy label
//!   selection), else used as is. `gatewayRDSRouteName`: plaintext HTTP
//!   servers share route `http.<target port>`.
//! - `pilot/pkg/networking/core/gateway.go` `buildGatewayListeners`: listener
//!   `0.0.0.0_<target port>` binding the port; `buildGatewayHTTPRouteConfig`:
//!   per VirtualService bound to the Gateway (`gateways: [name]` in its own
//!   namespace or `ns/name`), a virtual host `<host>:<server port>` for each
//!   host in both the server's and the VirtualService's hosts, domains
//!   `[host]`, `ignore_port_in_host_matching`; no virtual host at all gives
//!   `blackhole:<port>` matching `*` with no routes. Envoy answers a request
//!   no route matches `404 NR` (`route_not_found`), and a route to a cluster
//!   without healthy endpoints `503 UH` (`no_healthy_upstream`).
//! - `cluster.go` `convertResolution`: gateways use EDS for headless
//!   services too; gateways have no inbound or passthrough clusters.
//!
//! LAB DIFFERENCES: the listener binds `<pod IP>:<port>` (one loopback
//! network); only plaintext HTTP servers (`HTTP`, `HTTP2`, `GRPC`) are
//! modelled: HTTPS/TLS/TCP servers get no listener.

use super::cluster;
use super::inbound_chains::{outbound_http_filters, passthrough_cluster};
use super::listener::{set_listener_access_log, Built};
use super::services::{exported, host_matches, services_for_pod, target_port_on};
use super::virtual_service::gateway_routes;
use super::world::{self, labels, namespace, selects, string_list, string_map};
use super::xds::{self, socket_address, TYPE_LISTENER, TYPE_ROUTE};
use super::Ctx;
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// The pod runs a gateway: its `istio-proxy` container's args include
/// `router` (`pilot-agent proxy router`).
pub fn is_router(pod: &Value) -> bool {
    pod["spec"]["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|c| c["name"] == "istio-proxy")
        .any(|c| string_list(&c["args"]).iter().any(|a| a == "router"))
}

/// Istio's node type: `router` for gateways, `sidecar` otherwise.
pub fn node_type(pod: &Value) -> &'static str {
    if is_router(pod) {
        "router"
    } else {
        "sidecar"
    }
}

/// One plaintext HTTP server of a Gateway.
struct Server<'a> {
    gateway: &'a Value,
    /// The server's `port.number` (what VirtualService matches name).
    number: u16,
    hosts: Vec<String>,
}

fn gateways_for<'a>(ctx: &Ctx<'a>) -> Vec<&'a Value> {
    let pod_labels = labels(ctx.pod);
    let mut gws: Vec<&Value> = ctx
        .world
        .of_kind("networking.istio.io", "Gateway")
        .filter(|g| selects(&string_map(&g["spec"]["selector"]), &pod_labels))
        .collect();
    gws.sort_by_key(|g| world::age_key(g));
    gws
}

/// `resolvePorts` with legacy label selection: the target port of the first
/// Service of this pod exposing `number`, else `number`.
fn target_port(ctx: &Ctx, number: u16) -> u16 {
    services_for_pod(ctx.world, ctx.pod)
        .iter()
        .flat_map(|s| s.ports.iter())
        .find(|p| p.port == number)
        .and_then(|p| target_port_on(p, ctx.pod))
        .unwrap_or(number)
}

/// Servers by listener (target) port.
fn servers<'a>(ctx: &Ctx<'a>) -> BTreeMap<u16, Vec<Server<'a>>> {
    let mut out: BTreeMap<u16, Vec<Server>> = BTreeMap::new();
    for gw in gateways_for(ctx) {
        for s in gw["spec"]["servers"].as_array().into_iter().flatten() {
            let proto = s["port"]["protocol"].as_str().unwrap_or("").to_uppercase();
            if !matches!(proto.as_str(), "HTTP" | "HTTP2" | "GRPC") {
                continue;
            }
            let Some(number) = s["port"]["number"].as_u64().map(|n| n as u16) else {
                continue;
            };
            out.entry(target_port(ctx, number))
                .or_default()
                .push(Server {
                    gateway: gw,
                    number,
                    hosts: string_list(&s["hosts"]),
                });
        }
    }
    out
}

/// `ns/name` references of a VirtualService's `gateways`.
fn bound_to(vs: &Value, gw: &Value) -> bool {
    let vs_ns = namespace(vs);
    string_list(&vs["spec"]["gateways"]).iter().any(|g| {
        let (ns, name) = g.split_once('/').unwrap_or((vs_ns, g));
        ns == namespace(gw) && name == world::name(gw)
    })
}

/// Server hosts that apply to a VirtualService in `vs_ns` (`ns/host`,
/// `*/host`, `./host` or a bare host), without their namespace part.
fn server_hosts_for(server: &Server, vs_ns: &str) -> Vec<String> {
    server
        .hosts
        .iter()
        .filter_map(|h| match h.split_once('/') {
            None => Some(h.clone()),
            Some(("*", host)) => Some(host.to_string()),
            Some((".", host)) if namespace(server.gateway) == vs_ns => Some(host.to_string()),
            Some((ns, host)) if ns == vs_ns => Some(host.to_string()),
            Some(_) => None,
        })
        .collect()
}

/// `host.Names.Intersection`: the more specific of each matching pair.
fn intersect(server_hosts: &[String], vs_hosts: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for v in vs_hosts {
        for s in server_hosts {
            let hit = if host_matches(s, v) {
                Some(v)
            } else if host_matches(v, s) {
                Some(s)
            } else {
                None
            };
            if let Some(h) = hit {
                let h = h.to_ascii_lowercase();
                if !out.contains(&h) {
                    out.push(h);
                }
            }
        }
    }
    out
}

/// The route configuration `http.<port>` of one listener port.
fn route_config(ctx: &Ctx, port: u16, servers: &[Server]) -> Value {
    let mut vss: Vec<&Value> = ctx
        .world
        .of_kind("networking.istio.io", "VirtualService")
        .filter(|vs| {
            exported(
                &string_list(&vs["spec"]["exportTo"]),
                namespace(vs),
                &ctx.ns,
            )
        })
        .collect();
    vss.sort_by_key(|v| world::age_key(v));
    let mut vhosts: BTreeMap<String, Value> = BTreeMap::new();
    for server in servers {
        for vs in vss.iter().filter(|vs| bound_to(vs, server.gateway)) {
            let hosts = intersect(
                &server_hosts_for(server, namespace(vs)),
                &string_list(&vs["spec"]["hosts"]),
            );
            if hosts.is_empty() {
                continue;
            }
            let routes = gateway_routes(ctx, vs, server.number);
            for h in hosts {
                let vh = vhosts.entry(h.clone()).or_insert_with(|| {
                    json!({"name": format!("{h}:{}", server.number), "domains": [h], "routes": [], "include_request_attempt_count": true})
                });
                if let Some(r) = vh["routes"].as_array_mut() {
                    r.extend(routes.iter().cloned());
                }
            }
        }
    }
    let virtual_hosts: Vec<Value> = if vhosts.is_empty() {
        let number = servers.first().map(|s| s.number).unwrap_or(port);
        vec![json!({"name": format!("blackhole:{number}"), "domains": ["*"], "routes": []})]
    } else {
        vhosts.into_values().collect()
    };
    json!({
        "@type": TYPE_ROUTE,
        "name": format!("http.{port}"),
        "virtual_hosts": virtual_hosts,
        "validate_clusters": false,
        "ignore_port_in_host_matching": true,
    })
}

fn listener(ctx: &Ctx, port: u16) -> Value {
    let mut hcm = json!({
        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
        "stat_prefix": format!("outbound_0.0.0.0_{port}"),
        "rds": xds::rds(&format!("http.{port}")),
        "http_filters": outbound_http_filters(ctx, false),
        "use_remote_address": true,
        "server_name": "istio-envoy",
        "upgrade_configs": [{"upgrade_type": "websocket"}],
        "stream_idle_timeout": "0s",
        "normalize_path": true,
        "path_with_escaped_slashes_action": "KEEP_UNCHANGED",
        "request_id_extension": {"typed_config": {"@type": "type.googleapis.com/envoy.extensions.request_id.uuid.v3.UuidRequestIdConfig", "use_request_id_for_trace_sampling": true}},
    });
    if let Some(al) = &ctx.access_log {
        hcm["access_log"] = json!([al]);
    }
    let mut l = json!({
        "@type": TYPE_LISTENER,
        "name": format!("0.0.0.0_{port}"),
        "address": socket_address(ctx.addrs.pod_ip, port),
        "filter_chains": [{"filters": [{"name": "envoy.filters.network.http_connection_manager", "typed_config": hcm}]}],
        "traffic_direction": "OUTBOUND",
    });
    set_listener_access_log(ctx, &mut l);
    l
}

/// Gateway listeners and routes; drops the sidecar-only clusters.
pub fn build(ctx: &Ctx, clusters: &mut cluster::Built) -> Built {
    let inbound_passthrough = passthrough_cluster(ctx.version);
    clusters.clusters.retain(|c| {
        let n = c["name"].as_str().unwrap_or("");
        n != "PassthroughCluster" && n != inbound_passthrough && !n.starts_with("inbound|")
    });
    let mut out = Built::default();
    for (port, servers) in servers(ctx) {
        out.listeners.push(listener(ctx, port));
        out.routes.push(route_config(ctx, port, &servers));
    }
    out
}
