//! A model of istiod: from the Kubernetes and Istio objects of the lab's
//! world, the Envoy v3 resources one sidecar gets (clusters, endpoints,
//! listeners, routes, secrets), as istiod would push them to that proxy.
//!
//! Pure functions only: nothing here starts processes or touches files (the
//! `envoy` module writes and runs what this renders). The model is written
//! from Istio's sources and docs (each rule cites them) and never from the
//! plugin's code, so the plugin can be tested against it.
//!
//! Modules:
//! - [`world`]: the objects, the mesh config, the modelled release;
//! - [`version`]: what changed between releases;
//! - [`services`]: service registry, ports, endpoints, visibility;
//! - [`destination_rule`]: which DestinationRule applies, merged policies;
//! - [`authn`]: server-side mTLS mode (PeerAuthentication and legacy Policy);
//! - [`cluster`], [`listener`], [`virtual_service`]: the Envoy resources;
//! - [`inbound_chains`]: Service-target ports, inbound chain shapes,
//!   passthrough chains, `virtualInbound`; [`headless`]: passthrough
//!   services; [`gateway`]: ingress gateway (router) config;
//! - [`envoy_filter`], [`envoy_filter_listener`]: EnvoyFilter patches;
//! - [`accesslog`]: Istio's access log formats; [`telemetry`]: whether a
//!   proxy logs (Telemetry API, mesh config); [`metrics`]: Istio's standard
//!   metrics; [`modern`]: release switches applied to the built resources;
//!   [`xds`]: shared builders.

pub mod accesslog;
pub mod authn;
pub mod cluster;
pub mod destination_rule;
pub mod envoy_filter;
pub mod envoy_filter_listener;
pub mod gateway;
pub mod headless;
pub mod inbound_chains;
pub mod listener;
pub mod metrics;
pub mod modern;
pub mod services;
pub mod telemetry;
pub mod version;
pub mod virtual_service;
pub mod world;
pub mod xds;

pub use version::IstioVersion;
pub use world::{MeshConfig, World};

use crate::net::PodAddrs;
use crate::pki::{base64, Pki};
use serde_json::{json, Value};
use services::{visible_services, Protocol, Service};
use std::collections::BTreeMap;

/// Everything one sidecar gets from "istiod": Envoy v3 resources as JSON,
/// each with its `@type`, in the shape a real `/config_dump` shows them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SidecarXds {
    pub clusters: Vec<Value>,
    /// ClusterLoadAssignments, one per EDS cluster (`cluster_name` = EDS service name).
    pub endpoints: Vec<Value>,
    pub listeners: Vec<Value>,
    pub routes: Vec<Value>,
    /// `default` (workload cert + key) and `ROOTCA`.
    pub secrets: Vec<Value>,
    /// `<namespace>/<name>` of the EnvoyFilters whose patches changed this
    /// config (a rejection by Envoy is then a NACK, not a lab bug).
    pub envoy_filters: Vec<String>,
}

/// Why a pod's sidecar config cannot be rendered.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("pod {namespace}/{name} has no istio-proxy container (not injected)")]
    NotInjected { namespace: String, name: String },
    #[error("pod {namespace}/{name} has no status.podIP yet")]
    NoPodIp { namespace: String, name: String },
    #[error("pod {namespace}/{name}: status.podIP {ip:?} is not an IPv4 address")]
    BadPodIp {
        namespace: String,
        name: String,
        ip: String,
    },
    #[error("certificates for {namespace}/{service_account}: {message}")]
    Pki {
        namespace: String,
        service_account: String,
        message: String,
    },
}

/// Has the injector added the `istio-proxy` container (or native sidecar)?
pub fn pod_is_injected(pod: &Value) -> bool {
    crate::injector::has_proxy(&pod["spec"])
}

/// The pod's lab addresses from `status.podIP`.
pub fn pod_addrs(pod: &Value) -> Result<PodAddrs, RenderError> {
    let namespace = world::namespace(pod).to_string();
    let name = world::name(pod).to_string();
    let ip = pod["status"]["podIP"]
        .as_str()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| RenderError::NoPodIp {
            namespace: namespace.clone(),
            name: name.clone(),
        })?;
    let ip = ip.parse().map_err(|_| RenderError::BadPodIp {
        namespace,
        name,
        ip: ip.to_string(),
    })?;
    Ok(PodAddrs::from_pod_ip(ip))
}

/// The service account a pod runs as (`default` when unset).
pub fn service_account(pod: &Value) -> &str {
    pod["spec"]["serviceAccountName"]
        .as_str()
        .or_else(|| pod["spec"]["serviceAccount"].as_str())
        .filter(|s| !s.is_empty())
        .unwrap_or("default")
}

/// One inbound (container) port of the proxy's pod.
#[derive(Debug, Clone)]
pub struct InboundPort {
    pub port: u16,
    /// From the oldest Service port targeting it (Unknown: sniffed).
    pub protocol: Protocol,
    /// `<service host>:<service port>` of that service port, for decorators.
    pub service: Option<String>,
}

/// What the builders need about the proxy being rendered.
pub struct Ctx<'a> {
    pub world: &'a World,
    pub mesh: MeshConfig,
    pub version: IstioVersion,
    pub pod: &'a Value,
    pub ns: String,
    pub pod_name: String,
    pub labels: BTreeMap<String, String>,
    pub addrs: PodAddrs,
    /// Services this proxy sees (exportTo, Sidecar egress).
    pub services: Vec<Service<'a>>,
    pub inbound_ports: Vec<InboundPort>,
    /// The file access logger the builders put where the proxy logs (the
    /// client one, or the server one when only the server side logs);
    /// [`telemetry::apply`] then gives each listener its direction's.
    pub access_log: Option<Value>,
    pub listener_access_log: Option<Value>,
    /// The access loggers by direction (Telemetry API or mesh config).
    pub access_logs: telemetry::AccessLogs,
}

impl<'a> Ctx<'a> {
    pub fn new(world: &'a World, pod: &'a Value) -> Result<Ctx<'a>, RenderError> {
        let ns = world::namespace(pod).to_string();
        let pod_name = world::name(pod).to_string();
        if !pod_is_injected(pod) {
            return Err(RenderError::NotInjected {
                namespace: ns,
                name: pod_name,
            });
        }
        let addrs = pod_addrs(pod)?;
        let mesh = world.mesh_config();
        let version = IstioVersion::from(world.istio_version());
        let labels = world::labels(pod);
        let services = visible_services(world, &mesh, &ns, &labels);
        // Service targets, not container ports (inbound_chains.rs); none on gateways.
        let inbound_ports = if gateway::is_router(pod) {
            Vec::new()
        } else {
            inbound_chains::service_targets(world, pod)
        };
        let access_logs = telemetry::access_logs(world, &mesh, version, pod);
        Ok(Ctx {
            access_log: access_logs.client.clone().or(access_logs.server.clone()),
            listener_access_log: access_logs
                .client_listener
                .clone()
                .or(access_logs.server_listener.clone()),
            access_logs,
            world,
            mesh,
            version,
            pod,
            ns,
            pod_name,
            labels,
            addrs,
            services,
            inbound_ports,
        })
    }
}

/// Render one sidecar's config as istiod would push it. Pure: the same
/// world and pod give the same resources (sorted by name).
pub fn render_sidecar(world: &World, pod: &Value, pki: &Pki) -> Result<SidecarXds, RenderError> {
    let ctx = Ctx::new(world, pod)?;
    let mut clusters = cluster::build(&ctx);
    let mut listeners = if gateway::is_router(pod) {
        gateway::build(&ctx, &mut clusters)
    } else {
        listener::build(&ctx)
    };
    // Post-passes in istiod's order: telemetry (access logs, metrics), the
    // release switches, then EnvoyFilter patches last, as istiod applies
    // them to the finished resources (pilot/pkg/networking/core/envoyfilter).
    telemetry::apply(&mut listeners.listeners, &ctx.access_logs);
    metrics::apply(&ctx, &mut listeners.listeners, &mut clusters.endpoints);
    modern::apply(&ctx, &mut clusters.clusters, &mut listeners.routes);
    let envoy_filters = envoy_filter::apply(&ctx, &mut clusters.clusters, &mut listeners.listeners);
    listeners
        .listeners
        .sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
    listeners
        .routes
        .sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
    let sa = service_account(pod);
    let (chain, key) = pki.workload(&ctx.ns, sa).map_err(|e| RenderError::Pki {
        namespace: ctx.ns.clone(),
        service_account: sa.to_string(),
        message: format!("{e:#}"),
    })?;
    let secrets = vec![
        json!({
            "@type": xds::TYPE_SECRET,
            "name": xds::SDS_DEFAULT,
            "tls_certificate": {
                "certificate_chain": {"inline_bytes": base64(chain.as_bytes())},
                "private_key": {"inline_bytes": base64(key.as_bytes())},
            }
        }),
        json!({
            "@type": xds::TYPE_SECRET,
            "name": xds::SDS_ROOT,
            "validation_context": {"trusted_ca": {"inline_bytes": base64(pki.root_pem().as_bytes())}}
        }),
    ];
    Ok(SidecarXds {
        clusters: clusters.clusters,
        endpoints: clusters.endpoints,
        listeners: listeners.listeners,
        routes: listeners.routes,
        secrets,
        envoy_filters,
    })
}

#[cfg(test)]
mod topology_tests;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(name: &str, app: &str, ip: &str, injected: bool) -> Value {
        let mut containers =
            vec![json!({"name": app, "ports": [{"containerPort": 8080, "protocol": "TCP"}]})];
        let mut labels = json!({"app": app, "version": "v1"});
        if injected {
            containers.push(json!({"name": "istio-proxy"}));
            labels["security.istio.io/tlsMode"] = json!("istio");
        }
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "foo", "labels": labels},
               "spec": {"serviceAccountName": app, "containers": containers}, "status": {"podIP": ip}})
    }

    /// sleep + httpbin in foo, Service httpbin 8000→8080 with its slice, plus `extra`.
    fn world(version: &str, mesh: &str, extra: Vec<Value>) -> World {
        let mut objects = vec![
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "istio", "namespace": "istio-system", "labels": {"lab.mesh503.io/istio-version": version}}, "data": {"mesh": mesh}}),
            pod("sleep-1", "sleep", "127.10.0.4", true),
            pod("httpbin-1", "httpbin", "127.10.0.8", true),
            json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "httpbin", "namespace": "foo"},
                   "spec": {"selector": {"app": "httpbin"}, "ports": [{"name": "http", "port": 8000, "targetPort": 8080}]}}),
            json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "metadata": {"name": "httpbin-x", "namespace": "foo", "labels": {"kubernetes.io/service-name": "httpbin"}},
                   "endpoints": [{"addresses": ["127.10.0.8"], "conditions": {"ready": true}, "targetRef": {"kind": "Pod", "name": "httpbin-1", "namespace": "foo"}}],
                   "ports": [{"name": "http", "port": 8080}]}),
        ];
        objects.extend(extra);
        World::new(objects)
    }

    fn render(w: &World, pod_name: &str) -> SidecarXds {
        let pki = Pki::new().unwrap();
        let pod = w
            .objects
            .iter()
            .find(|o| o["metadata"]["name"] == pod_name)
            .unwrap();
        render_sidecar(w, pod, &pki).unwrap()
    }

    fn by_name<'a>(list: &'a [Value], name: &str) -> &'a Value {
        list.iter()
            .find(|c| c["name"] == name)
            .unwrap_or_else(|| panic!("no {name}"))
    }

    const HOST: &str = "outbound|8000||httpbin.foo.svc.cluster.local";

    fn pa(ns: &str, mode: &str) -> Value {
        json!({"apiVersion": "security.istio.io/v1", "kind": "PeerAuthentication", "metadata": {"name": "default", "namespace": ns}, "spec": {"mtls": {"mode": mode}}})
    }

    fn dr(spec: Value) -> Value {
        json!({"apiVersion": "networking.istio.io/v1", "kind": "DestinationRule", "metadata": {"name": "httpbin", "namespace": "foo"}, "spec": spec})
    }

    #[test]
    fn not_injected_pods_get_no_config() {
        let w = world(
            "1.24",
            "",
            vec![pod("plain-1", "plain", "127.10.0.12", false)],
        );
        let p = w.objects.last().unwrap();
        assert!(matches!(
            render_sidecar(&w, p, &Pki::new().unwrap()),
            Err(RenderError::NotInjected { .. })
        ));
    }

    #[test]
    fn auto_mtls_gives_socket_matches_unless_disabled() {
        // cluster_tls.go buildUpstreamTLSSettings: no DR tls + auto mTLS → tlsMode-istio/tlsMode-disabled.
        let x = render(
            &world("1.24", "", vec![pa("istio-system", "STRICT")]),
            "sleep-1",
        );
        let c = by_name(&x.clusters, HOST);
        assert_eq!(
            c["transport_socket_matches"][0]["match"],
            json!({"tlsMode": "istio"})
        );
        assert_eq!(
            c["metadata"]["filter_metadata"]["istio"]["services"][0]["host"],
            "httpbin.foo.svc.cluster.local"
        );
        assert!(c["metadata"]["filter_metadata"]["istio"]
            .get("config")
            .is_none());
        // Namespace PA DISABLE: no auto mTLS (BestEffortInferServiceMTLSMode).
        let x = render(&world("1.24", "", vec![pa("foo", "DISABLE")]), "sleep-1");
        assert!(by_name(&x.clusters, HOST)
            .get("transport_socket_matches")
            .is_none());
        // enableAutoMtls: false → plaintext.
        let x = render(
            &world(
                "1.24",
                "enableAutoMtls: false\n",
                vec![pa("istio-system", "STRICT")],
            ),
            "sleep-1",
        );
        assert!(by_name(&x.clusters, HOST)
            .get("transport_socket_matches")
            .is_none());
        // Istio 1.0: no auto mTLS at all.
        let x = render(&world("1.0", "", vec![]), "sleep-1");
        assert!(by_name(&x.clusters, HOST)
            .get("transport_socket_matches")
            .is_none());
    }

    #[test]
    fn explicit_dr_tls_wins_over_auto_mtls() {
        // cluster_tls.go: DISABLE/SIMPLE returned as the user wrote them.
        let x = render(
            &world(
                "1.24",
                "",
                vec![dr(
                    json!({"host": "httpbin", "trafficPolicy": {"tls": {"mode": "DISABLE"}}}),
                )],
            ),
            "sleep-1",
        );
        let c = by_name(&x.clusters, HOST);
        assert!(c.get("transport_socket").is_none() && c.get("transport_socket_matches").is_none());
        assert_eq!(
            c["metadata"]["filter_metadata"]["istio"]["config"],
            "/apis/networking.istio.io/v1/namespaces/foo/destination-rule/httpbin"
        );
        let x = render(
            &world(
                "1.23",
                "",
                vec![dr(
                    json!({"host": "httpbin", "trafficPolicy": {"tls": {"mode": "ISTIO_MUTUAL"}}}),
                )],
            ),
            "sleep-1",
        );
        let ts = &by_name(&x.clusters, HOST)["transport_socket"]["typed_config"];
        assert_eq!(ts["sni"], "outbound_.8000_._.httpbin.foo.svc.cluster.local");
        assert_eq!(
            ts["common_tls_context"]["alpn_protocols"],
            json!(["istio-peer-exchange", "istio"])
        );
        assert_eq!(
            by_name(&x.clusters, HOST)["metadata"]["filter_metadata"]["istio"]["config"],
            "/apis/networking.istio.io/v1alpha3/namespaces/foo/destination-rule/httpbin"
        );
    }

    #[test]
    fn connection_pool_and_outlier_detection_map_to_envoy() {
        // cluster_traffic_policy.go applyConnectionPool / applyOutlierDetection.
        let spec = json!({"host": "httpbin", "trafficPolicy": {
            "connectionPool": {"tcp": {"maxConnections": 1}, "http": {"http1MaxPendingRequests": 2, "http2MaxRequests": 3, "maxRetries": 4, "maxRequestsPerConnection": 1, "idleTimeout": "5s"}},
            "outlierDetection": {"consecutive5xxErrors": 1, "interval": "1s", "baseEjectionTime": "3m", "maxEjectionPercent": 100}}});
        let x = render(&world("1.24", "", vec![dr(spec)]), "sleep-1");
        let c = by_name(&x.clusters, HOST);
        let t = &c["circuit_breakers"]["thresholds"][0];
        assert_eq!(
            (
                t["max_connections"].as_u64(),
                t["max_pending_requests"].as_u64(),
                t["max_requests"].as_u64(),
                t["max_retries"].as_u64()
            ),
            (Some(1), Some(2), Some(3), Some(4))
        );
        let common = &c["typed_extension_protocol_options"]
            ["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]
            ["common_http_protocol_options"];
        assert_eq!(
            (
                common["max_requests_per_connection"].as_u64(),
                common["idle_timeout"].as_str()
            ),
            (Some(1), Some("5s"))
        );
        assert_eq!(c["outlier_detection"]["consecutive_5xx"], 1);
        assert_eq!(c["outlier_detection"]["max_ejection_percent"], 100);
        assert_eq!(c["common_lb_config"]["healthy_panic_threshold"], json!({}));
    }

    #[test]
    fn inbound_chains_follow_the_server_mode() {
        // filterchain_options.go: STRICT → tls only, PERMISSIVE → tls + raw_buffer, DISABLE → raw_buffer.
        let chains = |w: &World| -> Vec<String> {
            let x = render(w, "httpbin-1");
            by_name(&x.listeners, "virtualInbound")["filter_chains"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|c| c["filter_chain_match"]["destination_port"] == 8080)
                .map(|c| {
                    c["filter_chain_match"]["transport_protocol"]
                        .as_str()
                        .unwrap()
                        .to_string()
                })
                .collect()
        };
        assert_eq!(
            chains(&world("1.24", "", vec![pa("istio-system", "STRICT")])),
            vec!["tls"]
        );
        assert_eq!(
            chains(&world("1.24", "", vec![])),
            vec!["tls", "raw_buffer"]
        );
        assert_eq!(
            chains(&world("1.24", "", vec![pa("foo", "DISABLE")])),
            vec!["raw_buffer"]
        );
        // Legacy 1.0 without any policy: plaintext only.
        assert_eq!(chains(&world("1.0", "", vec![])), vec!["raw_buffer"]);
    }

    #[test]
    fn the_service_connection_pool_reaches_the_inbound_cluster() {
        // cluster_traffic_policy.go applyTrafficPolicy: the connection pool
        // (only) applies to inbound clusters, from the rule found for the
        // service from the server's own namespace.
        let spec = json!({"host": "httpbin", "trafficPolicy": {
            "connectionPool": {"tcp": {"maxConnections": 7}, "http": {"idleTimeout": "0.150s"}},
            "outlierDetection": {"consecutive5xxErrors": 1}}});
        let x = render(&world("1.24", "", vec![dr(spec)]), "httpbin-1");
        let c = by_name(&x.clusters, "inbound|8080||");
        assert_eq!(c["circuit_breakers"]["thresholds"][0]["max_connections"], 7);
        let hpo = &c["typed_extension_protocol_options"]
            ["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"];
        assert_eq!(
            hpo["common_http_protocol_options"]["idle_timeout"],
            "0.150s"
        );
        assert!(
            hpo.get("use_downstream_protocol_config").is_some(),
            "the inbound keeps its protocol options: {hpo}"
        );
        assert!(c.get("outlier_detection").is_none(), "outbound only");
        // Without a rule the inbound cluster is as before.
        let x = render(&world("1.24", "", vec![]), "httpbin-1");
        let c = by_name(&x.clusters, "inbound|8080||");
        assert!(c["typed_extension_protocol_options"]
            ["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]
            .get("common_http_protocol_options")
            .is_none());
    }

    #[test]
    fn inbound_cluster_target_by_release() {
        // 1.10 changed inbound forwarding from 127.0.0.1 to the pod IP (lab: localhost / app_ip).
        let x = render(&world("1.24", "", vec![]), "httpbin-1");
        let c = by_name(&x.clusters, "inbound|8080||");
        assert_eq!(
            c["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]
                ["socket_address"]["address"],
            "127.10.0.10"
        );
        let x = render(&world("1.9", "", vec![]), "httpbin-1");
        let c = by_name(
            &x.clusters,
            "inbound|8000|http|httpbin.foo.svc.cluster.local",
        );
        assert_eq!(
            c["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]
                ["socket_address"]["address"],
            "127.10.0.9"
        );
    }

    #[test]
    fn routes_to_undefined_subsets_keep_the_cluster_name() {
        // route.go: the route names outbound|port|subset|host even if no DR defines it (503 NC).
        let vs = json!({"apiVersion": "networking.istio.io/v1", "kind": "VirtualService", "metadata": {"name": "httpbin", "namespace": "foo"},
                        "spec": {"hosts": ["httpbin"], "http": [{"route": [{"destination": {"host": "httpbin", "subset": "v9"}}]}]}});
        let x = render(
            &world(
                "1.24",
                "outboundTrafficPolicy: {mode: REGISTRY_ONLY}\n",
                vec![vs],
            ),
            "sleep-1",
        );
        let rc = by_name(&x.routes, "8000");
        let vh = &rc["virtual_hosts"][0];
        assert_eq!(vh["name"], "httpbin.foo.svc.cluster.local:8000");
        assert!(vh["domains"]
            .as_array()
            .unwrap()
            .contains(&json!("httpbin.foo:8000")));
        assert_eq!(
            vh["routes"][0]["route"]["cluster"],
            "outbound|8000|v9|httpbin.foo.svc.cluster.local"
        );
        assert!(x
            .clusters
            .iter()
            .all(|c| c["name"] != "outbound|8000|v9|httpbin.foo.svc.cluster.local"));
        assert_eq!(rc["virtual_hosts"][1]["name"], "block_all");
        // Endpoint metadata for auto mTLS.
        let cla = x
            .endpoints
            .iter()
            .find(|e| e["cluster_name"] == HOST)
            .unwrap();
        assert_eq!(
            cla["endpoints"][0]["lb_endpoints"][0]["metadata"]["filter_metadata"]
                ["envoy.transport_socket_match"]["tlsMode"],
            "istio"
        );
    }
}
