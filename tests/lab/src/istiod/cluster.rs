//! Clusters and their endpoints (CDS + EDS), as istiod builds them for a
//! sidecar (istio/istio `pilot/pkg/networking/core/cluster.go`,
//! `cluster_builder.go`, `cluster_traffic_policy.go`, `cluster_tls.go`).

use super::authn::{service_mode_for_auto_mtls, MtlsMode};
use super::destination_rule::{effective_policy, lookup, MergedRule, Policy};
use super::services::{
    endpoints, service_accounts, services_for_pod, target_port_on, Endpoint, Service, ServicePort,
    Source,
};
use super::version::LegacyConsecutiveErrors;
use super::world::selects;
use super::xds::{
    self, default_thresholds, outbound_cluster_name, socket_address, TYPE_CLA, TYPE_CLUSTER,
};
use super::Ctx;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

/// Clusters + ClusterLoadAssignments.
#[derive(Default)]
pub struct Built {
    pub clusters: Vec<Value>,
    pub endpoints: Vec<Value>,
}

/// Every cluster of a sidecar: outbound (one per visible service port, plus
/// one per DestinationRule subset), inbound (one per Service target port), and
/// `BlackHoleCluster`, `PassthroughCluster`, `InboundPassthroughClusterIpv4`.
pub fn build(ctx: &Ctx) -> Built {
    let mut out = Built::default();
    for svc in &ctx.services {
        let rule = lookup(
            ctx.world,
            &ctx.mesh,
            &ctx.ns,
            &ctx.labels,
            &svc.hostname,
            &svc.namespace,
        );
        for port in &svc.ports {
            outbound_for_port(ctx, svc, port, rule.as_ref(), &mut out);
        }
    }
    out.clusters.extend(inbound(ctx));
    out.clusters.extend(special(ctx));
    super::headless::lab_original_dst_header(&mut out.clusters);
    out.clusters
        .sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
    out.endpoints
        .sort_by(|a, b| a["cluster_name"].as_str().cmp(&b["cluster_name"].as_str()));
    out
}

/// (subset name, subset policy, subset labels); the default cluster has an empty name.
type Variant<'r> = (
    String,
    Option<&'r Policy>,
    Option<&'r BTreeMap<String, String>>,
);

fn outbound_for_port(
    ctx: &Ctx,
    svc: &Service,
    port: &ServicePort,
    rule: Option<&MergedRule>,
    out: &mut Built,
) {
    let all_eps = endpoints(ctx.world, svc, port);
    let top = rule.and_then(|r| r.policy.as_ref());
    // The default cluster, then one per subset.
    let mut variants: Vec<Variant> = vec![(String::new(), None, None)];
    if let Some(r) = rule {
        for s in &r.subsets {
            variants.push((s.name.clone(), s.policy.as_ref(), Some(&s.labels)));
        }
    }
    for (subset, subset_policy, subset_labels) in variants {
        let name = outbound_cluster_name(port.port, &subset, &svc.hostname);
        let eps: Vec<&Endpoint> = all_eps
            .iter()
            .filter(|e| subset_labels.is_none_or(|l| selects(l, &e.labels)))
            .collect();
        let policy = effective_policy(top, subset_policy, port.port);
        let mut c = base_cluster(ctx, &name, svc, port, &eps);
        apply_policy(ctx, &mut c, policy.as_ref(), port);
        apply_tls(ctx, &mut c, svc, port, &subset, policy.as_ref());
        apply_metadata(ctx, &mut c, svc, rule, &subset);
        if c["type"] == "EDS" {
            out.endpoints.push(load_assignment(&name, &eps));
        }
        out.clusters.push(c);
    }
}

fn base_cluster(
    ctx: &Ctx,
    name: &str,
    svc: &Service,
    port: &ServicePort,
    eps: &[&Endpoint],
) -> Value {
    let mut c = json!({
        "@type": TYPE_CLUSTER,
        "name": name,
        "connect_timeout": "10s",
    });
    match &svc.source {
        Source::ServiceEntry { resolution, .. } if resolution == "DNS" => {
            c["type"] = json!("STRICT_DNS");
            c["dns_lookup_family"] = json!("V4_ONLY");
            let hosts: Vec<Value> = if eps.is_empty() {
                vec![lb_endpoint(&svc.hostname, port.port, None)]
            } else {
                eps.iter()
                    .map(|e| lb_endpoint(&e.address, e.port, Some(e)))
                    .collect()
            };
            c["load_assignment"] = json!({"cluster_name": name, "endpoints": [{"locality": {}, "lb_endpoints": hosts}]});
        }
        Source::ServiceEntry { resolution, .. } if resolution == "NONE" => {
            c["type"] = json!("ORIGINAL_DST");
            c["lb_policy"] = json!("CLUSTER_PROVIDED");
        }
        Source::Kubernetes(_) if super::headless::original_dst_cluster(ctx, svc, port) => {
            c["type"] = json!("ORIGINAL_DST");
            c["lb_policy"] = json!("CLUSTER_PROVIDED");
        }
        _ => {
            c["type"] = json!("EDS");
            c["eds_cluster_config"] = xds::eds_cluster_config(name);
        }
    }
    if ctx.version.default_least_request() && c["type"] != "ORIGINAL_DST" {
        c["lb_policy"] = json!("LEAST_REQUEST");
    }
    if ctx.version.default_circuit_breakers() {
        c["circuit_breakers"] = json!({"thresholds": [default_thresholds()]});
    }
    if ctx.version.at_least(3) {
        c["common_lb_config"] = json!({"locality_weighted_lb_config": {}});
    }
    if port.protocol.is_http2() {
        c["typed_extension_protocol_options"] = json!({
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": http_protocol_options(port, None)
        });
    }
    c
}

/// `HttpProtocolOptions` with the upstream protocol of the port and optional
/// common options (idle timeout, max requests per connection).
fn http_protocol_options(port: &ServicePort, common: Option<Value>) -> Value {
    let mut o = json!({"@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions"});
    o["explicit_http_config"] = if port.protocol.is_http2() {
        json!({"http2_protocol_options": {}})
    } else {
        json!({"http_protocol_options": {}})
    };
    if let Some(c) = common.filter(|c| c.as_object().is_some_and(|m| !m.is_empty())) {
        o["common_http_protocol_options"] = c;
    }
    o
}

fn lb_endpoint(address: &str, port: u16, ep: Option<&Endpoint>) -> Value {
    let mut e = json!({
        "endpoint": {"address": socket_address(address, port)},
        "health_status": "HEALTHY",
        "load_balancing_weight": 1,
    });
    if let Some(ep) = ep {
        let mut fm = Map::new();
        let workload = ep
            .labels
            .get("service.istio.io/canonical-name")
            .or_else(|| ep.labels.get("app"))
            .cloned()
            .unwrap_or_default();
        let revision = ep
            .labels
            .get("service.istio.io/canonical-revision")
            .or_else(|| ep.labels.get("version"))
            .cloned()
            .unwrap_or_default();
        fm.insert("istio".into(), json!({"workload": format!("{workload};{};{workload};{revision};Kubernetes", ep.namespace)}));
        if ep.istio_tls() {
            // cluster_tls.go transport socket match; endpoint label security.istio.io/tlsMode.
            fm.insert(
                "envoy.transport_socket_match".into(),
                json!({"tlsMode": "istio"}),
            );
        }
        e["metadata"] = json!({"filter_metadata": fm});
    }
    e
}

/// The ClusterLoadAssignment istiod sends for an EDS cluster.
fn load_assignment(cluster: &str, eps: &[&Endpoint]) -> Value {
    let lb: Vec<Value> = eps
        .iter()
        .map(|e| lb_endpoint(&e.address, e.port, Some(e)))
        .collect();
    let endpoints = if lb.is_empty() {
        json!([])
    } else {
        let n = lb.len();
        json!([{"locality": {}, "lb_endpoints": lb, "load_balancing_weight": n}])
    };
    json!({"@type": TYPE_CLA, "cluster_name": cluster, "endpoints": endpoints})
}

/// connectionPool, outlierDetection, loadBalancer (istio/istio
/// `cluster_traffic_policy.go` `applyConnectionPool`, `applyOutlierDetection`,
/// `applyLoadBalancer`).
fn apply_policy(ctx: &Ctx, c: &mut Value, policy: Option<&Policy>, port: &ServicePort) {
    let Some(p) = policy else { return };
    if let Some(cp) = &p.connection_pool {
        let mut t = if ctx.version.default_circuit_breakers() {
            default_thresholds()
        } else {
            json!({})
        };
        let http = &cp["http"];
        let tcp = &cp["tcp"];
        if let Some(v) = positive(&tcp["maxConnections"]) {
            t["max_connections"] = json!(v);
        }
        if let Some(v) = positive(&http["http1MaxPendingRequests"]) {
            t["max_pending_requests"] = json!(v);
        }
        if let Some(v) = positive(&http["http2MaxRequests"]) {
            t["max_requests"] = json!(v);
        }
        if let Some(v) = positive(&http["maxRetries"]) {
            t["max_retries"] = json!(v);
        }
        c["circuit_breakers"] = json!({"thresholds": [t]});
        if let Some(ct) = tcp["connectTimeout"].as_str() {
            c["connect_timeout"] = json!(ct);
        }
        if let Some(ka) = tcp["tcpKeepalive"].as_object() {
            let mut k = Map::new();
            if let Some(n) = ka.get("probes").and_then(Value::as_u64) {
                k.insert("keepalive_probes".into(), json!(n));
            }
            if let Some(s) = ka
                .get("time")
                .and_then(Value::as_str)
                .and_then(crate::duration::whole_secs)
            {
                k.insert("keepalive_time".into(), json!(s));
            }
            if let Some(s) = ka
                .get("interval")
                .and_then(Value::as_str)
                .and_then(crate::duration::whole_secs)
            {
                k.insert("keepalive_interval".into(), json!(s));
            }
            c["upstream_connection_options"] = json!({"tcp_keepalive": k});
        }
        let mut common = Map::new();
        if let Some(it) = http["idleTimeout"]
            .as_str()
            .and_then(crate::duration::proto_json)
        {
            common.insert("idle_timeout".into(), json!(it));
        }
        if let Some(n) = positive(&http["maxRequestsPerConnection"]) {
            common.insert("max_requests_per_connection".into(), json!(n));
        }
        if let Some(d) = tcp["maxConnectionDuration"]
            .as_str()
            .and_then(crate::duration::proto_json)
        {
            common.insert("max_connection_duration".into(), json!(d));
        }
        if !common.is_empty() && port.protocol.is_http() {
            c["typed_extension_protocol_options"] = json!({
                "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": http_protocol_options(port, Some(Value::Object(common)))
            });
        }
    }
    if let Some(od) = &p.outlier_detection {
        let mut o = json!({});
        if ctx.version.at_least(1) {
            o["enforcing_success_rate"] = json!(0);
        }
        if let Some(n) = od["consecutive5xxErrors"]
            .as_u64()
            .or_else(|| od["consecutive_5xx_errors"].as_u64())
        {
            o["consecutive_5xx"] = json!(n);
            o["enforcing_consecutive_5xx"] = json!(if n > 0 { 100 } else { 0 });
        }
        if let Some(n) = od["consecutiveGatewayErrors"].as_u64() {
            o["consecutive_gateway_failure"] = json!(n);
            o["enforcing_consecutive_gateway_failure"] = json!(if n > 0 { 100 } else { 0 });
        }
        if let Some(n) = od["consecutiveErrors"].as_u64().filter(|n| *n > 0) {
            match ctx.version.legacy_consecutive_errors() {
                LegacyConsecutiveErrors::Consecutive5xx => {
                    o["consecutive_5xx"] = json!(n);
                }
                LegacyConsecutiveErrors::GatewayFailure => {
                    o["consecutive_gateway_failure"] = json!(n);
                    o["enforcing_consecutive_gateway_failure"] = json!(100);
                    o["enforcing_consecutive_5xx"] = json!(0);
                }
                LegacyConsecutiveErrors::Ignored => {}
            }
        }
        if let Some(i) = od["interval"]
            .as_str()
            .and_then(crate::duration::proto_json)
        {
            o["interval"] = json!(i);
        }
        if let Some(b) = od["baseEjectionTime"]
            .as_str()
            .and_then(crate::duration::proto_json)
        {
            o["base_ejection_time"] = json!(b);
        }
        if let Some(m) = positive(&od["maxEjectionPercent"]) {
            o["max_ejection_percent"] = json!(m);
        }
        c["outlier_detection"] = o;
        let min_health = od["minHealthPercent"].as_i64().unwrap_or(0);
        if let Some(pt) = ctx.version.panic_threshold(min_health) {
            // Percent{value: 0} is `{}` in JSON: panic mode disabled.
            c["common_lb_config"]["healthy_panic_threshold"] = if pt == 0 {
                json!({})
            } else {
                json!({"value": pt})
            };
        }
    }
    if let Some(lb) = &p.load_balancer {
        match lb["simple"].as_str() {
            Some("ROUND_ROBIN") => {
                if let Some(m) = c.as_object_mut() {
                    m.remove("lb_policy");
                }
            }
            Some("LEAST_CONN") | Some("LEAST_REQUEST") => c["lb_policy"] = json!("LEAST_REQUEST"),
            Some("RANDOM") => c["lb_policy"] = json!("RANDOM"),
            Some("PASSTHROUGH") => {
                c["type"] = json!("ORIGINAL_DST");
                c["lb_policy"] = json!("CLUSTER_PROVIDED");
                if let Some(m) = c.as_object_mut() {
                    m.remove("eds_cluster_config");
                }
            }
            _ => {}
        }
        if lb.get("consistentHash").is_some() {
            c["lb_policy"] = json!("RING_HASH");
        }
    }
}

fn positive(v: &Value) -> Option<u64> {
    v.as_u64().filter(|n| *n > 0)
}

/// Client TLS (istio/istio `cluster_tls.go` `buildUpstreamTLSSettings` and
/// `applyUpstreamTLSSettings`): an explicit DR `tls.mode` always wins
/// (DISABLE = plaintext, SIMPLE/MUTUAL = the DR's TLS, ISTIO_MUTUAL = mesh
/// mTLS); with no `tls` and auto mTLS on, mTLS to endpoints labelled
/// `tlsMode: istio` and plaintext to the rest, unless the service's
/// namespace/mesh mode is DISABLE; otherwise plaintext.
fn apply_tls(
    ctx: &Ctx,
    c: &mut Value,
    svc: &Service,
    port: &ServicePort,
    subset: &str,
    policy: Option<&Policy>,
) {
    let sni_default = ctx
        .version
        .sets_sni()
        .then(|| xds::sni(port.port, subset, &svc.hostname));
    let tls = policy.and_then(|p| p.tls.as_ref());
    if let Some(tls) = tls {
        match tls["mode"].as_str().unwrap_or("DISABLE") {
            "ISTIO_MUTUAL" => {
                let sans: Vec<String> = match tls["subjectAltNames"].as_array() {
                    Some(a) => a
                        .iter()
                        .filter_map(|s| s.as_str().map(str::to_string))
                        .collect(),
                    None => service_accounts(ctx.world, svc, &ctx.mesh.trust_domain),
                };
                let sni = tls["sni"].as_str().map(str::to_string).or(sni_default);
                c["transport_socket"] =
                    xds::istio_mutual_upstream(ctx.version, sni.as_deref(), &sans);
            }
            "SIMPLE" | "MUTUAL" => {
                c["transport_socket"] = xds::simple_upstream(tls);
            }
            _ => {}
        }
        return;
    }
    if !ctx.version.auto_mtls(&ctx.mesh) {
        return;
    }
    if c["type"] == "ORIGINAL_DST" {
        // Headless / passthrough: one cluster-wide socket (headless.rs).
        let sni = sni_default.as_deref();
        if let Some(ts) = super::headless::original_dst_auto_mtls(ctx, svc, port, policy, sni) {
            c["transport_socket"] = ts;
        }
        return;
    }
    if super::headless::forces_plaintext(ctx, svc, port, policy) {
        return;
    }
    match service_mode_for_auto_mtls(ctx.world, &ctx.mesh, ctx.version, svc, port.port) {
        None | Some(MtlsMode::Disable) => {}
        Some(_) => {
            let sans = service_accounts(ctx.world, svc, &ctx.mesh.trust_domain);
            c["transport_socket_matches"] = json!([
                {"name": "tlsMode-istio", "match": {"tlsMode": "istio"}, "transport_socket": xds::istio_mutual_upstream(ctx.version, sni_default.as_deref(), &sans)},
                {"name": "tlsMode-disabled", "match": {}, "transport_socket": xds::raw_buffer_socket()},
            ]);
        }
    }
}

/// `metadata.filter_metadata.istio`: `services` (1.8+), and with a
/// DestinationRule `config` (1.1+) and `subset` (1.5+).
fn apply_metadata(
    ctx: &Ctx,
    c: &mut Value,
    svc: &Service,
    rule: Option<&MergedRule>,
    subset: &str,
) {
    let mut istio = Map::new();
    if ctx.version.services_metadata() {
        istio.insert(
            "services".into(),
            json!([{"host": svc.hostname, "name": svc.name, "namespace": svc.namespace}]),
        );
    }
    if let Some(r) = rule {
        if let Some(path) =
            ctx.version
                .config_path("destination-rule", &r.first.namespace, &r.first.name)
        {
            istio.insert("config".into(), json!(path));
        }
        if !subset.is_empty() && ctx.version.subset_metadata() {
            istio.insert("subset".into(), json!(subset));
        }
    }
    if !istio.is_empty() {
        c["metadata"] = json!({"filter_metadata": {"istio": istio}});
    }
}

/// The inbound cluster name for a container port: `inbound|<port>||` from
/// 1.10, `inbound|<service port>|<port name>|<service host>` before (when a
/// service targets the port).
pub fn inbound_cluster_name(ctx: &Ctx, container_port: u16) -> String {
    if !ctx.version.inbound_to_pod_ip() {
        for svc in services_for_pod(ctx.world, ctx.pod) {
            for sp in &svc.ports {
                if target_port_on(sp, ctx.pod) == Some(container_port) {
                    return format!("inbound|{}|{}|{}", sp.port, sp.name, svc.hostname);
                }
            }
        }
    }
    format!("inbound|{container_port}||")
}

/// One STATIC cluster per Service target port, to the app.
///
/// Istio ≥1.10 forwards to the pod IP (the `inbound|port||` cluster is
/// ORIGINAL_DST bound to 127.0.0.6); LAB DIFFERENCE: a STATIC cluster to
/// `app_ip:<port>`, which stands for the pod IP inside the pod's network
/// namespace. Before 1.10 Istio forwarded to 127.0.0.1:<port>: the lab uses
/// the pod's `localhost` address.
fn inbound(ctx: &Ctx) -> Vec<Value> {
    let target_ip = if ctx.version.inbound_to_pod_ip() {
        ctx.addrs.app_ip
    } else {
        ctx.addrs.localhost
    };
    let services = services_for_pod(ctx.world, ctx.pod);
    ctx.inbound_ports
        .iter()
        .map(|ip| {
            let name = inbound_cluster_name(ctx, ip.port);
            let mut c = json!({
                "@type": TYPE_CLUSTER,
                "name": name,
                "type": "STATIC",
                "connect_timeout": "10s",
                "load_assignment": {"cluster_name": name, "endpoints": [{"lb_endpoints": [{"endpoint": {"address": socket_address(target_ip, ip.port)}}]}]},
            });
            if ctx.version.default_circuit_breakers() {
                c["circuit_breakers"] = json!({"thresholds": [default_thresholds()]});
            }
            if ip.protocol.is_http() {
                c["typed_extension_protocol_options"] = json!({
                    "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                        "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                        "use_downstream_protocol_config": {"http_protocol_options": {}, "http2_protocol_options": {}},
                    }
                });
            }
            if let Some((s, sp)) = services.iter().find_map(|s| {
                s.ports
                    .iter()
                    .find(|sp| target_port_on(sp, ctx.pod) == Some(ip.port))
                    .map(|sp| (s, sp))
            }) {
                apply_inbound_pool(ctx, &mut c, s, sp);
            }
            let svcs: Vec<Value> = services
                .iter()
                .filter(|s| s.ports.iter().any(|sp| target_port_on(sp, ctx.pod) == Some(ip.port)))
                .map(|s| json!({"host": s.hostname, "name": s.name, "namespace": s.namespace}))
                .collect();
            if ctx.version.services_metadata() && !svcs.is_empty() {
                c["metadata"] = json!({"filter_metadata": {"istio": {"services": svcs}}});
            }
            c
        })
        .collect()
}

/// The service's DestinationRule connection pool on the inbound cluster:
/// istiod applies only the connection pool there ("Connection pool settings
/// are applicable for both inbound and outbound clusters", istio/istio
/// `cluster_traffic_policy.go` `applyTrafficPolicy`, called from
/// `cluster_builder.go` `buildInboundCluster` with the rule found for the
/// service from the proxy's own namespace and the port-level policy of the
/// service port; workloadSelector rules are not used inbound,
/// istio/istio#41235). The first Service targeting the port decides, as
/// istiod's choice among several is arbitrary.
fn apply_inbound_pool(ctx: &Ctx, c: &mut Value, svc: &Service, sp: &ServicePort) {
    let no_labels = BTreeMap::new();
    let Some(rule) = lookup(
        ctx.world,
        &ctx.mesh,
        &ctx.ns,
        &no_labels,
        &svc.hostname,
        &svc.namespace,
    ) else {
        return;
    };
    let Some(cp) =
        effective_policy(rule.policy.as_ref(), None, sp.port).and_then(|p| p.connection_pool)
    else {
        return;
    };
    let only_pool = Policy {
        connection_pool: Some(cp),
        ..Policy::default()
    };
    // Render the pool on a scratch cluster with the outbound code, then
    // move its parts over (the inbound keeps its own protocol options).
    let mut scratch = json!({});
    apply_policy(ctx, &mut scratch, Some(&only_pool), sp);
    for key in [
        "circuit_breakers",
        "connect_timeout",
        "upstream_connection_options",
    ] {
        if let Some(v) = scratch.get(key) {
            c[key] = v.clone();
        }
    }
    const HPO: &str = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions";
    let common =
        scratch["typed_extension_protocol_options"][HPO]["common_http_protocol_options"].clone();
    if common.is_object() && c["typed_extension_protocol_options"][HPO].is_object() {
        c["typed_extension_protocol_options"][HPO]["common_http_protocol_options"] = common;
    }
}

fn special(ctx: &Ctx) -> Vec<Value> {
    let mut v = vec![
        json!({"@type": TYPE_CLUSTER, "name": "BlackHoleCluster", "type": "STATIC", "connect_timeout": "10s"}),
        json!({"@type": TYPE_CLUSTER, "name": "PassthroughCluster", "type": "ORIGINAL_DST", "connect_timeout": "10s", "lb_policy": "CLUSTER_PROVIDED"}),
        json!({"@type": TYPE_CLUSTER, "name": super::inbound_chains::passthrough_cluster(ctx.version), "type": "ORIGINAL_DST", "connect_timeout": "10s", "lb_policy": "CLUSTER_PROVIDED"}),
    ];
    if ctx.version.default_circuit_breakers() {
        for c in v.iter_mut().skip(1) {
            c["circuit_breakers"] = json!({"thresholds": [default_thresholds()]});
        }
    }
    v
}
