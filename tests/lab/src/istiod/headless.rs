//! Passthrough destinations: headless Kubernetes Services (`clusterIP:
//! None`), ServiceEntries with `resolution: NONE`, and DestinationRules
//! with `loadBalancer.simple: PASSTHROUGH`.
//!
//! Read from istio/istio (1.8.0 to 1.31, unchanged in these parts):
//! - `pilot/pkg/serviceregistry/kube/conversion.go` `ConvertService`: a
//!   headless Service has resolution `Passthrough`;
//!   `pilot/pkg/networking/core/cluster.go` `convertResolution`: its
//!   cluster is `ORIGINAL_DST` on sidecars (`ENABLE_EDS_FOR_HEADLESS_SERVICES`
//!   defaults to false) and `EDS` on gateways.
//! - `pilot/pkg/model/push_context.go` `BestEffortInferServiceMTLSMode`:
//!   for a passthrough destination the mode is DISABLE when it has no
//!   endpoint or *any* endpoint lacks a sidecar (istio/istio#27376), else
//!   the namespace/mesh PeerAuthentication mode.
//! - `cluster_tls.go` `applyUpstreamTLSSettings`: auto mTLS becomes
//!   `transport_socket_matches` (`tlsMode-istio` per endpoint) except on
//!   ORIGINAL_DST clusters, which keep one cluster-wide mTLS
//!   `transport_socket`: no per-endpoint choice for headless services.
//! - `httproute.go` `generateVirtualHostDomains`: a headless Kubernetes
//!   Service's virtual host also matches `*.<each domain>`, so pod DNS names
//!   (`web-0.db.foo.svc.cluster.local`) route to its ORIGINAL_DST cluster,
//!   while a call by pod IP matches no service host (it takes the
//!   `allow_any` route to `PassthroughCluster`, plaintext).
//!
//! LAB DIFFERENCE: ORIGINAL_DST clusters (`PassthroughCluster`, headless and
//! NONE-resolution clusters) get `original_dst_lb_config.use_http_header`:
//! without iptables the sidecar cannot learn where the app was connecting,
//! so the lab's curl sends that address in Envoy's `x-envoy-original-dst-host`
//! header (see `curl.rs`), standing for SO_ORIGINAL_DST: for a pod DNS name
//! or pod IP that pod, for a headless Service's own name one of its ready
//! pods (what its DNS name resolves to). TCP ports of headless Services keep
//! EDS clusters ([`original_dst_cluster`]).

use super::authn::{service_mode_for_auto_mtls, MtlsMode};
use super::destination_rule::Policy;
use super::services::{endpoints, service_accounts, Service, ServicePort, Source};
use super::xds;
use super::Ctx;
use serde_json::{json, Value};

/// A Kubernetes Service with `clusterIP: None`.
pub fn is_headless(svc: &Service) -> bool {
    match &svc.source {
        Source::Kubernetes(o) => o["spec"]["clusterIP"].as_str() == Some("None"),
        _ => false,
    }
}

/// Resolution `Passthrough`: headless, or a ServiceEntry with `resolution: NONE`.
fn is_passthrough(svc: &Service, policy: Option<&Policy>) -> bool {
    let se_none =
        matches!(&svc.source, Source::ServiceEntry { resolution, .. } if resolution == "NONE");
    let dr_passthrough = policy
        .and_then(|p| p.load_balancer.as_ref())
        .is_some_and(|lb| lb["simple"] == "PASSTHROUGH");
    is_headless(svc) || se_none || dr_passthrough
}

/// The Service's cluster is ORIGINAL_DST on this proxy (`convertResolution`).
///
/// LAB DIFFERENCE: only for ports the lab's outbound side handles as HTTP
/// (the original destination travels in a header, module doc); a headless
/// Service's TCP ports keep an EDS cluster, which reaches the same pods
/// (an ORIGINAL_DST cluster behind a tcp_proxy would dial the sidecar's own
/// outbound listener).
pub fn original_dst_cluster(ctx: &Ctx, svc: &Service, port: &ServicePort) -> bool {
    is_headless(svc) && !super::gateway::is_router(ctx.pod) && port.protocol.is_http()
}

/// `*.<domain>` for each domain of a headless Kubernetes Service (1.6+).
pub fn wildcard_domains(ctx: &Ctx, svc: &Service, domains: &[String]) -> Vec<String> {
    if !is_headless(svc) || !ctx.version.at_least(6) {
        return Vec::new();
    }
    domains.iter().map(|d| format!("*.{d}")).collect()
}

/// `BestEffortInferServiceMTLSMode`'s passthrough rule (1.8+): no endpoint,
/// or an endpoint without a sidecar, means plaintext for the whole service.
pub fn forces_plaintext(
    ctx: &Ctx,
    svc: &Service,
    port: &ServicePort,
    policy: Option<&Policy>,
) -> bool {
    if !ctx.version.at_least(8) || svc.mesh_external || !is_passthrough(svc, policy) {
        return false;
    }
    let eps = endpoints(ctx.world, svc, port);
    eps.is_empty() || eps.iter().any(|e| !e.istio_tls())
}

/// Auto mTLS on an ORIGINAL_DST cluster (1.8+): one cluster-wide
/// ISTIO_MUTUAL `transport_socket` when the inferred mode is not DISABLE.
pub fn original_dst_auto_mtls(
    ctx: &Ctx,
    svc: &Service,
    port: &ServicePort,
    policy: Option<&Policy>,
    sni: Option<&str>,
) -> Option<Value> {
    if !ctx.version.at_least(8) || forces_plaintext(ctx, svc, port, policy) {
        return None;
    }
    match service_mode_for_auto_mtls(ctx.world, &ctx.mesh, ctx.version, svc, port.port) {
        None | Some(MtlsMode::Disable) => None,
        Some(_) => {
            let sans = service_accounts(ctx.world, svc, &ctx.mesh.trust_domain);
            Some(xds::istio_mutual_upstream(ctx.version, sni, &sans))
        }
    }
}

/// LAB DIFFERENCE (module doc): ORIGINAL_DST clusters read the original
/// destination from `x-envoy-original-dst-host` when the request has one.
pub fn lab_original_dst_header(clusters: &mut [Value]) {
    for c in clusters.iter_mut().filter(|c| c["type"] == "ORIGINAL_DST") {
        let name = c["name"].as_str().unwrap_or("");
        if name == "PassthroughCluster" || name.starts_with("outbound|") {
            c["original_dst_lb_config"] = json!({"use_http_header": true});
        }
    }
}
