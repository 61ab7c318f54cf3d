//! The inbound side of a sidecar: which ports get filter chains, the chain
//! shapes per port protocol and server mTLS mode, the passthrough chains for
//! every other port, and the `virtualInbound` listener that holds them.
//!
//! Read from istio/istio (tags 1.10.0 to 1.31, unchanged in these parts):
//! - `pilot/pkg/networking/core/listener_inbound.go`
//!   `getFilterChainsByServicePort`: one chain config per *Service target*
//!   of the proxy (`ServiceTargets`: each port of each Service selecting the
//!   pod, `targetPort` resolved on this pod, named ports by container port
//!   name), keyed by target port; on a conflict the oldest Service wins and
//!   decides the protocol. Container ports no Service targets get no chain:
//!   they reach the app through the passthrough chains.
//! - `filterchain_options.go` `getFilterChainMatchOptions`: the chains per
//!   listener protocol (HTTP from `http`/`http2`/`grpc` names or
//!   appProtocol, TCP for `tcp`/`tls`/`https`/…, Auto for unnamed or
//!   unknown names, which Istio sniffs) and mode: PERMISSIVE Auto has five
//!   chains (mTLS HTTP, plaintext HTTP, mTLS TCP, plaintext TCP, and TLS
//!   passed through for non-Istio TLS), PERMISSIVE TCP three, PERMISSIVE
//!   HTTP two; STRICT Auto two, STRICT TCP/HTTP one; DISABLE Auto two.
//! - `buildInboundPassthroughChains`: the blackhole chain for 15006, then
//!   Auto chains without a destination port for the workload mode
//!   (`virtualInbound-catchall-http` / `virtualInbound`), plus per-port
//!   passthrough chains for `portLevelMtls` ports no Service covers
//!   (`plugin/authn/authentication.go` `ForPassthrough`).
//! - `populateListenerFilters`: the TLS and HTTP inspectors are enabled per
//!   destination port from what the chains match (`tls` transport, an
//!   `http/1.1`/`h2c` ALPN), with `filter_disabled` port predicates.
//! - `pkg/security/authn/utils/utils.go` `BuildInboundTLS`: HTTP chains
//!   offer ALPN `h2, http/1.1`, TCP chains `istio-peer-exchange, h2, http/1.1`.
//! - Until 1.22 the passthrough chains match `prefix_ranges 0.0.0.0/0` and
//!   go to `InboundPassthroughClusterIpv4`; 1.23 collapsed them
//!   (istio/istio#51503) to `InboundPassthroughCluster` without a prefix
//!   match. The chain follows [`passthrough_cluster`].
//!
//! Releases before 1.10 keep the lab's simpler shape (one mTLS and/or one
//! plaintext chain per port and for the catch-all): their chain options
//! lived in `listener_builder.go` with other names and are not modelled
//! chain by chain.
//!
//! LAB DIFFERENCES:
//! - Capture: `virtualInbound` binds `pod_ip:<port>` (as
//!   `additional_addresses`) for every port the pod declares, every Service
//!   target port and every `portLevelMtls` port: standing for iptables'
//!   REDIRECT of *all* inbound ports. Ports none of these name are not
//!   captured (the lab cannot bind all 65535), nor are privileged ports
//!   when the lab does not run as root.
//! - The passthrough chains start with an `envoy.filters.network.set_filter_state`
//!   filter that sets `envoy.network.transport_socket.original_dst_address`
//!   to `<app address>:<port>`: without NAT the original destination is the
//!   sidecar's own address, and the ORIGINAL_DST passthrough cluster would
//!   dial itself. Istio has no such filter.

use super::authn::{server_mtls, MtlsMode, ServerMtls};
use super::listener::{inbound_hcm, inbound_route_config, set_listener_access_log, Built};
use super::services::{container_ports, services_for_pod, target_port_on, Protocol};
use super::version::IstioVersion;
use super::world::{self, World};
use super::xds::{self, socket_address, tcp_proxy, TYPE_LISTENER};
use super::{Ctx, InboundPort};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};

/// The inbound passthrough cluster of a release: `InboundPassthroughClusterIpv4`
/// up to 1.22, `InboundPassthroughCluster` from 1.23 (see
/// [`IstioVersion::inbound_passthrough_cluster`]). Chains, clusters and the
/// passthrough HCMs' route configs all take the name from here.
pub fn passthrough_cluster(v: IstioVersion) -> &'static str {
    v.inbound_passthrough_cluster()
}

/// Ports a sidecar never serves through chains: its own listeners and the
/// ports istio-iptables excludes (`-d 15090,15021,15020`).
const RESERVED: [u16; 6] = [15000, 15001, 15006, 15020, 15021, 15090];

/// The proxy's Service targets, one per target port (istiod
/// `getFilterChainsByServicePort`): Services in the pod's namespace whose
/// selector picks it, oldest first; each port's `targetPort` resolved on
/// this pod (a named one by container port name; unresolvable ones give
/// no target, as the endpoint controller gives no endpoint); the first
/// Service to claim a target port decides its protocol.
pub fn service_targets(world: &World, pod: &Value) -> Vec<InboundPort> {
    let mut services = services_for_pod(world, pod);
    services.sort_by_key(|s| match &s.source {
        super::services::Source::Kubernetes(o) => world::age_key(o),
        _ => Default::default(),
    });
    let mut out: BTreeMap<u16, InboundPort> = BTreeMap::new();
    for svc in &services {
        for sp in &svc.ports {
            let Some(port) = target_port_on(sp, pod) else {
                continue;
            };
            if RESERVED.contains(&port) || out.contains_key(&port) {
                continue;
            }
            out.insert(
                port,
                InboundPort {
                    port,
                    protocol: sp.protocol,
                    service: Some(format!("{}:{}", svc.hostname, sp.port)),
                },
            );
        }
    }
    out.into_values().collect()
}

/// Istio's listener protocol of a port (`ModelProtocolToListenerProtocol`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ListenerProtocol {
    Http,
    Tcp,
    /// Sniffed: unnamed or unknown port names.
    Auto,
}

fn listener_protocol(p: Protocol) -> ListenerProtocol {
    match p {
        Protocol::Http | Protocol::Http2 | Protocol::Grpc => ListenerProtocol::Http,
        Protocol::Unknown => ListenerProtocol::Auto,
        _ => ListenerProtocol::Tcp,
    }
}

/// ALPNs of `listener.go` (`features.HTTP10` off: no `http/1.0`).
const MTLS_HTTP_ALPNS: &[&str] = &["istio-http/1.0", "istio-http/1.1", "istio-h2"];
const PLAINTEXT_HTTP_ALPNS: &[&str] = &["http/1.1", "h2c"];
const MTLS_TCP_MXC_ALPNS: &[&str] = &["istio-peer-exchange", "istio"];
const ALL_ISTIO_MTLS_ALPNS: &[&str] = &[
    "istio",
    "istio-peer-exchange",
    "istio-http/1.0",
    "istio-http/1.1",
    "istio-h2",
];

/// One `FilterChainMatchOptions`.
#[derive(Debug, Clone, Copy)]
struct Opt {
    alpns: &'static [&'static str],
    tls: bool,
    http: bool,
    terminate: bool,
}

const fn opt(alpns: &'static [&'static str], tls: bool, http: bool, terminate: bool) -> Opt {
    Opt {
        alpns,
        tls,
        http,
        terminate,
    }
}

/// `getFilterChainMatchOptions`, chain by chain, in Istio's order.
fn options(protocol: ListenerProtocol, mode: MtlsMode) -> Vec<Opt> {
    use ListenerProtocol::*;
    match (protocol, mode) {
        (Http, MtlsMode::Strict) => vec![opt(&[], true, true, true)],
        (Http, MtlsMode::Permissive) => vec![
            opt(ALL_ISTIO_MTLS_ALPNS, true, true, true),
            opt(&[], false, true, false),
        ],
        (Http, MtlsMode::Disable) => vec![opt(&[], false, true, false)],
        (Auto, MtlsMode::Strict) => vec![
            opt(MTLS_HTTP_ALPNS, true, true, true),
            opt(&[], true, false, true),
        ],
        (Auto, MtlsMode::Permissive) => vec![
            opt(MTLS_HTTP_ALPNS, true, true, true),
            opt(PLAINTEXT_HTTP_ALPNS, false, true, false),
            opt(MTLS_TCP_MXC_ALPNS, true, false, true),
            opt(&[], false, false, false),
            opt(&[], true, false, false),
        ],
        (Auto, MtlsMode::Disable) => vec![
            opt(PLAINTEXT_HTTP_ALPNS, false, true, false),
            opt(&[], false, false, false),
        ],
        (Tcp, MtlsMode::Strict) => vec![opt(&[], true, false, true)],
        (Tcp, MtlsMode::Permissive) => vec![
            opt(ALL_ISTIO_MTLS_ALPNS, true, false, true),
            opt(&[], true, false, false),
            opt(&[], false, false, false),
        ],
        (Tcp, MtlsMode::Disable) => vec![opt(&[], false, false, false)],
    }
}

/// One chain config (`inboundChainConfig`): a Service target port, or the
/// passthrough (port 0, or a `portLevelMtls` port without a Service).
struct ChainConfig {
    port: u16,
    cluster: String,
    protocol: ListenerProtocol,
    passthrough: bool,
    /// `<host>:<service port>` for the route decorator.
    service: Option<String>,
}

impl ChainConfig {
    fn name(&self, http: bool) -> String {
        match (self.passthrough, http) {
            (true, true) => "virtualInbound-catchall-http".into(),
            (true, false) => "virtualInbound".into(),
            (false, _) => format!("0.0.0.0_{}", self.port),
        }
    }
}

/// Where the app of this pod is reached from its sidecar (the inbound
/// clusters' target: `app_ip` from 1.10, the pod's localhost before).
fn app_address(ctx: &Ctx) -> std::net::Ipv4Addr {
    if ctx.version.inbound_to_pod_ip() {
        ctx.addrs.app_ip
    } else {
        ctx.addrs.localhost
    }
}

/// LAB DIFFERENCE (see the module doc): the original destination of a
/// passthrough connection, pointed at the app instead of the sidecar.
fn lab_original_dst(ctx: &Ctx) -> Value {
    json!({
        "name": "envoy.filters.network.set_filter_state",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.network.set_filter_state.v3.Config",
            "on_new_connection": [{
                "object_key": "envoy.network.transport_socket.original_dst_address",
                "format_string": {"text_format_source": {"inline_string": format!("{}:%DOWNSTREAM_LOCAL_PORT%", app_address(ctx))}},
            }],
        }
    })
}

/// The DownstreamTlsContext of a chain that terminates mTLS: Istio's, with
/// the HTTP chains' ALPN `h2, http/1.1` (`BuildInboundTLS`).
fn downstream_tls(ctx: &Ctx, http: bool) -> Value {
    let mut ts = xds::istio_mutual_downstream(ctx.version, &ctx.mesh.trust_domain);
    if http {
        ts["typed_config"]["common_tls_context"]["alpn_protocols"] = json!(["h2", "http/1.1"]);
    }
    ts
}

/// `inboundChainForOpts`: the chains of one chain config.
fn chains_for(ctx: &Ctx, cc: &ChainConfig, mode: MtlsMode, out: &mut Built) -> Vec<Value> {
    let opts = options(cc.protocol, mode);
    let mut chains = Vec::new();
    for o in opts {
        let mut m = serde_json::Map::new();
        if cc.port > 0 {
            m.insert("destination_port".into(), json!(cc.port));
        }
        if cc.passthrough && cc.cluster == "InboundPassthroughClusterIpv4" {
            m.insert(
                "prefix_ranges".into(),
                json!([{"address_prefix": "0.0.0.0", "prefix_len": 0}]),
            );
        }
        m.insert(
            "transport_protocol".into(),
            json!(if o.tls { "tls" } else { "raw_buffer" }),
        );
        if !o.alpns.is_empty() {
            m.insert("application_protocols".into(), json!(o.alpns));
        }
        let mut filters = Vec::new();
        if cc.passthrough {
            filters.push(lab_original_dst(ctx));
        }
        if o.http {
            let mut hcm = inbound_hcm(ctx, cc.port, &cc.cluster);
            if cc.passthrough {
                hcm["typed_config"]["stat_prefix"] = json!(cc.cluster);
            }
            filters.push(hcm);
            if !out.routes.iter().any(|r| r["name"] == cc.cluster.as_str()) {
                let op = cc
                    .service
                    .clone()
                    .unwrap_or_else(|| format!(":{}", cc.port));
                out.routes
                    .push(inbound_route_config(&cc.cluster, &cc.cluster, cc.port, &op));
            }
        } else {
            filters.push(tcp_proxy(&cc.cluster, &cc.cluster, ctx.access_log.as_ref()));
        }
        let mut chain = json!({"filter_chain_match": Value::Object(m), "filters": filters});
        if o.terminate {
            chain["transport_socket"] = downstream_tls(ctx, o.http);
        }
        chain["name"] = json!(cc.name(o.http));
        chains.push(chain);
    }
    chains
}

/// The chain configs of the passthrough: the workload mode without a port,
/// then each `portLevelMtls` port that no Service target covers.
fn passthrough_configs(ctx: &Ctx, mtls: &ServerMtls) -> Vec<(ChainConfig, MtlsMode)> {
    let cluster = passthrough_cluster(ctx.version).to_string();
    let covered: BTreeSet<u16> = ctx.inbound_ports.iter().map(|p| p.port).collect();
    let mut out = vec![(
        ChainConfig {
            port: 0,
            cluster: cluster.clone(),
            protocol: ListenerProtocol::Auto,
            passthrough: true,
            service: None,
        },
        mtls.mode,
    )];
    for (port, mode) in &mtls.per_port {
        if covered.contains(port) || RESERVED.contains(port) {
            continue;
        }
        out.push((
            ChainConfig {
                port: *port,
                cluster: cluster.clone(),
                protocol: ListenerProtocol::Auto,
                passthrough: true,
                service: None,
            },
            *mode,
        ));
    }
    out
}

/// The lowest port this process may bind: 0 as root, else
/// `net.ipv4.ip_unprivileged_port_start` (1024 by default).
fn lowest_bindable_port() -> u16 {
    static LOWEST: std::sync::OnceLock<u16> = std::sync::OnceLock::new();
    *LOWEST.get_or_init(|| {
        // SAFETY: geteuid has no preconditions and cannot fail.
        if unsafe { libc::geteuid() } == 0 {
            return 0;
        }
        std::fs::read_to_string("/proc/sys/net/ipv4/ip_unprivileged_port_start")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(1024)
    })
}

/// Ports the lab captures for this pod (see the module doc). LAB
/// DIFFERENCE: privileged ports (below `ip_unprivileged_port_start`) are
/// captured only when the lab runs as root; their chains exist either way.
fn captured_ports(ctx: &Ctx, mtls: &ServerMtls) -> BTreeSet<u16> {
    let mut ports: BTreeSet<u16> = container_ports(ctx.pod).iter().map(|c| c.port).collect();
    ports.extend(ctx.inbound_ports.iter().map(|p| p.port));
    ports.extend(mtls.per_port.keys().copied());
    let lowest = lowest_bindable_port();
    ports.retain(|p| !RESERVED.contains(p) && *p >= lowest);
    ports
}

/// `virtualInbound` for this proxy (replaces listener.rs' old inbound).
pub fn build(ctx: &Ctx, out: &mut Built) {
    let mtls = server_mtls(ctx.world, &ctx.mesh, ctx.version, ctx.pod);
    let chains = if ctx.version.at_least(10) {
        modern_chains(ctx, &mtls, out)
    } else {
        legacy_chains(ctx, &mtls, out)
    };
    let listener_filters = if ctx.version.at_least(10) {
        listener_filters(&chains)
    } else {
        legacy_listener_filters()
    };
    let additional: Vec<Value> = captured_ports(ctx, &mtls)
        .into_iter()
        .map(|p| json!({"address": socket_address(ctx.addrs.pod_ip, p)}))
        .collect();
    let mut l = json!({
        "@type": TYPE_LISTENER,
        "name": "virtualInbound",
        "address": socket_address(ctx.addrs.pod_ip, 15006),
        "filter_chains": chains,
        "listener_filters": listener_filters,
        "listener_filters_timeout": "0s",
        "continue_on_listener_filters_timeout": true,
        "traffic_direction": "INBOUND",
    });
    if !additional.is_empty() {
        l["additional_addresses"] = json!(additional);
    }
    set_listener_access_log(ctx, &mut l);
    out.listeners.push(l);
}

fn blackhole() -> Value {
    json!({
        "filter_chain_match": {"destination_port": 15006},
        "filters": [tcp_proxy("BlackHoleCluster", "BlackHoleCluster", None)],
        "name": "virtualInbound-blackhole",
    })
}

/// 1.10+: blackhole, passthrough chains, then the Service target chains by port.
fn modern_chains(ctx: &Ctx, mtls: &ServerMtls, out: &mut Built) -> Vec<Value> {
    let mut chains = vec![blackhole()];
    for (cc, mode) in passthrough_configs(ctx, mtls) {
        chains.extend(chains_for(ctx, &cc, mode, out));
    }
    for ip in &ctx.inbound_ports {
        let cc = ChainConfig {
            port: ip.port,
            cluster: super::cluster::inbound_cluster_name(ctx, ip.port),
            protocol: listener_protocol(ip.protocol),
            passthrough: false,
            service: ip.service.clone(),
        };
        chains.extend(chains_for(ctx, &cc, mtls.for_port(ip.port), out));
    }
    chains
}

/// Before 1.10 (the lab's earlier shape): per port a `tls` chain (Istio's
/// mTLS ALPNs when PERMISSIVE) and/or a `raw_buffer` chain, HTTP or TCP by
/// protocol; the same two for the catch-all.
fn legacy_chains(ctx: &Ctx, mtls: &ServerMtls, out: &mut Built) -> Vec<Value> {
    let mut chains = vec![blackhole()];
    let tls_socket = xds::istio_mutual_downstream(ctx.version, &ctx.mesh.trust_domain);
    let alpns = ctx.version.inbound_mtls_alpns();
    for ip in &ctx.inbound_ports {
        let port = ip.port;
        let cluster = super::cluster::inbound_cluster_name(ctx, port);
        let filters = if ip.protocol.is_http() {
            let op = ip.service.clone().unwrap_or_else(|| format!(":{port}"));
            out.routes
                .push(inbound_route_config(&cluster, &cluster, port, &op));
            vec![inbound_hcm(ctx, port, &cluster)]
        } else {
            vec![tcp_proxy(&cluster, &cluster, ctx.access_log.as_ref())]
        };
        let name = format!("0.0.0.0_{port}");
        let mode = mtls.for_port(port);
        if matches!(mode, MtlsMode::Strict | MtlsMode::Permissive) {
            let mut m = json!({"destination_port": port, "transport_protocol": "tls"});
            if mode == MtlsMode::Permissive {
                m["application_protocols"] = json!(alpns);
            }
            chains.push(json!({"filter_chain_match": m, "filters": filters, "transport_socket": tls_socket, "name": name}));
        }
        if matches!(mode, MtlsMode::Permissive | MtlsMode::Disable) {
            chains.push(json!({"filter_chain_match": {"destination_port": port, "transport_protocol": "raw_buffer"}, "filters": filters, "name": name}));
        }
    }
    let cluster = passthrough_cluster(ctx.version);
    let catchall = json!([
        lab_original_dst(ctx),
        tcp_proxy(cluster, cluster, ctx.access_log.as_ref())
    ]);
    let all = json!([{"address_prefix": "0.0.0.0", "prefix_len": 0}]);
    if matches!(mtls.mode, MtlsMode::Strict | MtlsMode::Permissive) {
        let mut m = json!({"prefix_ranges": all, "transport_protocol": "tls"});
        if mtls.mode == MtlsMode::Permissive {
            m["application_protocols"] = json!(alpns);
        }
        chains.push(json!({"filter_chain_match": m, "filters": catchall, "transport_socket": tls_socket, "name": "virtualInbound"}));
    }
    if matches!(mtls.mode, MtlsMode::Permissive | MtlsMode::Disable) {
        chains.push(json!({"filter_chain_match": {"prefix_ranges": all, "transport_protocol": "raw_buffer"}, "filters": catchall, "name": "virtualInbound"}));
    }
    chains
}

const ORIGINAL_DST_FILTER: &str = "envoy.filters.listener.original_dst";
const TLS_INSPECTOR: &str = "envoy.filters.listener.tls_inspector";
const HTTP_INSPECTOR: &str = "envoy.filters.listener.http_inspector";

fn listener_filter(name: &str) -> Value {
    let t = match name {
        ORIGINAL_DST_FILTER => {
            "type.googleapis.com/envoy.extensions.filters.listener.original_dst.v3.OriginalDst"
        }
        TLS_INSPECTOR => {
            "type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector"
        }
        _ => {
            "type.googleapis.com/envoy.extensions.filters.listener.http_inspector.v3.HttpInspector"
        }
    };
    json!({"name": name, "typed_config": {"@type": t}})
}

fn legacy_listener_filters() -> Value {
    let mut tls = listener_filter(TLS_INSPECTOR);
    tls["filter_disabled"] = json!({"destination_port_range": {"start": 15006, "end": 15007}});
    let mut http = listener_filter(HTTP_INSPECTOR);
    http["filter_disabled"] = json!({"destination_port_range": {"start": 15006, "end": 15007}});
    json!([listener_filter(ORIGINAL_DST_FILTER), tls, http])
}

/// `listenerPredicateExcludePorts`: matches the given ports.
fn ports_predicate(ports: &[u16]) -> Value {
    let ranges: Vec<Value> = ports
        .iter()
        .map(|p| json!({"destination_port_range": {"start": p, "end": u32::from(*p) + 1}}))
        .collect();
    if ranges.len() == 1 {
        ranges.into_iter().next().unwrap_or_default()
    } else {
        json!({"or_match": {"rules": ranges}})
    }
}

/// `populateListenerFilters` for `virtualInbound` (REDIRECT mode).
fn listener_filters(chains: &[Value]) -> Value {
    // Port (0 = no destination port) → (needs TLS inspector, needs HTTP inspector).
    let mut inspectors: BTreeMap<u16, (bool, bool)> = BTreeMap::new();
    for c in chains {
        let m = &c["filter_chain_match"];
        let port = m["destination_port"].as_u64().unwrap_or(0) as u16;
        let tls = m["transport_protocol"] == "tls";
        let http = m["application_protocols"]
            .as_array()
            .is_some_and(|a| a.iter().any(|p| p == "http/1.1" || p == "h2c"));
        let e = inspectors.entry(port).or_default();
        e.0 |= tls;
        e.1 |= http;
    }
    let mut out = vec![listener_filter(ORIGINAL_DST_FILTER)];
    if inspectors.values().any(|i| i.0) {
        let mut f = listener_filter(TLS_INSPECTOR);
        let default_enabled = inspectors.get(&0).is_some_and(|i| i.0);
        // Enabled by default: exclude the ports that do not need it; else
        // include only the ports that do (NotMatch of them).
        let ports: Vec<u16> = inspectors
            .iter()
            .filter(|(p, i)| **p != 0 && i.0 != default_enabled)
            .map(|(p, _)| *p)
            .collect();
        if !ports.is_empty() {
            f["filter_disabled"] = if default_enabled {
                ports_predicate(&ports)
            } else {
                json!({"not_match": ports_predicate(&ports)})
            };
        }
        out.push(f);
    }
    if inspectors.values().any(|i| i.1) {
        let mut f = listener_filter(HTTP_INSPECTOR);
        let ports: Vec<u16> = inspectors
            .iter()
            .filter(|(_, i)| !i.1)
            .map(|(p, _)| *p)
            .collect();
        if !ports.is_empty() {
            f["filter_disabled"] = ports_predicate(&ports);
        }
        out.push(f);
    }
    json!(out)
}

/// `istio.alpn` (istio/istio `pilot/pkg/xds/filters/filters.go` `Alpn`,
/// added to outbound and gateway HCMs from 1.5): overrides the upstream
/// TLS ALPN with `istio-http/1.1, istio, http/1.1` (HTTP/2 upstreams:
/// `istio-h2, istio, h2`), so the server's mTLS HTTP chains match.
///
/// LAB DIFFERENCE: `istio.alpn` is not in upstream Envoy; the same effect
/// comes from Envoy's `set_filter_state` HTTP filter setting
/// `envoy.network.application_protocols`, under Istio's filter name. Istio
/// picks the list per request from the upstream cluster's protocol; the lab
/// picks it per listener (HTTP/2 when every HTTP service on the port is).
pub fn alpn_filter(h2: bool) -> Value {
    let alpns = if h2 {
        "istio-h2,istio,h2"
    } else {
        "istio-http/1.1,istio,http/1.1"
    };
    json!({
        "name": "istio.alpn",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.set_filter_state.v3.Config",
            "on_request_headers": [{
                "object_key": "envoy.network.application_protocols",
                "format_string": {"text_format_source": {"inline_string": alpns}},
            }],
        }
    })
}

/// The HTTP filters of an outbound or gateway HCM: `istio.alpn` first
/// (from 1.5), then the lab's standard filters.
pub fn outbound_http_filters(ctx: &Ctx, h2: bool) -> Value {
    let mut f = xds::http_filters();
    if ctx.version.at_least(5) {
        if let Some(a) = f.as_array_mut() {
            a.insert(0, alpn_filter(h2));
        }
    }
    f
}
