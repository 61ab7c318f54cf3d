//! Unit tests of the `/config_dump` parser, on minimal JSON written by hand
//! in the shapes real dumps have (v2alpha of Istio 1.1–1.5, v3 of today).
//!
//! Place in the flow: test-only (envoy/ parsers).

use super::*;
use crate::envoy::access_log::LogFormatSpec;
use proptest::prelude::*;
use serde_json::json;

/// The tree parser, checked against the streaming reader on the same
/// document (shadows `super::parse_config_dump` in these tests).
fn parse_config_dump(v: &Value) -> Result<ConfigDump, DumpError> {
    super::stream_tests::parse_checked(v)
}

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
            assert!(crate::istio::tls::is_istio_mtls_context(istio));
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
            assert!(crate::istio::tls::is_istio_mtls_context(t));
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

/// `?resource=dynamic_listeners` of a PERMISSIVE v3 sidecar (also read by
/// `istio::tls::inbound`'s tests).
pub(crate) fn v3_listeners() -> Value {
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
fn v3_listener_facts() {
    let d = parse_config_dump(&v3_listeners()).unwrap();
    assert!(d.problems.is_empty(), "{:?}", d.problems);
    assert_eq!(d.listeners.len(), 3);
    let vi = d.listener("virtualInbound").unwrap();
    assert!(crate::istio::tls::is_sidecar_inbound(vi));
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
    assert!(!crate::istio::tls::is_sidecar_inbound(out));
    assert_eq!(out.filter_chains[0].rds_route.as_deref(), Some("80"));
    let broken = d.listener("broken").unwrap();
    assert_eq!(broken.state, ListenerState::Rejected);
    assert_eq!(
        broken.error_state.as_deref(),
        Some("Proto constraint validation failed")
    );
}

/// Istio 1.1–1.3 per-IP inbound listeners (v2alpha), STRICT and PERMISSIVE
/// on the same port (also read by `istio::tls::inbound`'s tests).
pub(crate) fn legacy_per_ip_listeners() -> Value {
    json!({"configs": [{"@type": "type.googleapis.com/envoy.admin.v2alpha.ListenersConfigDump",
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
    ]}]})
}

#[test]
fn legacy_per_ip_listener_facts() {
    let d = parse_config_dump(&legacy_per_ip_listeners()).unwrap();
    assert_eq!(d.listeners.len(), 3);
    assert!(crate::istio::tls::is_sidecar_inbound(&d.listeners[0]));
    assert!(!crate::istio::tls::is_sidecar_inbound(&d.listeners[2]));
    assert_eq!(
        d.listeners[0].access_log_formats(),
        vec![LogFormatSpec::Text(
            "[%START_TIME%] %RESPONSE_FLAGS%\n".into()
        )]
    );
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
    let internal = d.listener("main_internal").unwrap();
    assert_eq!(
        internal.port, None,
        "an internal listener has no socket address"
    );
    assert_eq!(internal.traffic_direction.as_deref(), Some("INBOUND"));
}

#[test]
fn rejected_virtual_inbound_is_kept_as_rejected() {
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
    assert_eq!(l.filter_chains[0].destination_port, Some(8083));
    assert_eq!(d.rejected.len(), 1);
}

/// The shape of a real 1.18 sidecar whose `virtualInbound` update was NACKed
/// (a bad EnvoyFilter): the named entry holds only an `error_state`, and a
/// nameless entry follows with another `error_state` for the same listener
/// (no `last_update_attempt`). Hand-written, minimal.
fn nacked_virtual_inbound() -> Value {
    let failed = json!({"@type": "type.googleapis.com/envoy.config.listener.v3.Listener",
        "name": "virtualInbound",
        "address": {"socket_address": {"address": "0.0.0.0", "port_value": 15006}},
        "traffic_direction": "INBOUND",
        "filter_chains": [{"filter_chain_match": {"destination_port": 8083, "transport_protocol": "raw_buffer"},
            "filters": [{"name": "envoy.filters.network.tcp_proxy", "typed_config": {"cluster": "inbound|8083||"}}]}]});
    let details = "Proto constraint validation failed (LuaValidationError.DefaultSourceCode: embedded message failed validation)";
    json!({"configs": [{"@type": "type.googleapis.com/envoy.admin.v3.ListenersConfigDump",
    "version_info": "2025-02-17T14:50:01Z/310",
    "dynamic_listeners": [
        {"name": "10.68.0.1_53", "active_state": {"version_info": "2025-02-17T14:49:37Z/296",
            "listener": {"name": "10.68.0.1_53", "address": {"socket_address": {"address": "10.68.0.1", "port_value": 53}}},
            "last_updated": "2025-02-17T14:49:40.600Z"}},
        {"name": "virtualInbound", "error_state": {"failed_configuration": failed.clone(),
            "last_update_attempt": "2025-02-17T15:17:48.372Z", "details": details}},
        {"error_state": {"failed_configuration": failed, "details": details}}
    ]}]})
}

#[test]
fn nacked_listener_without_active_version() {
    let d = parse_config_dump(&nacked_virtual_inbound()).unwrap();
    assert!(d.problems.is_empty(), "{:?}", d.problems);
    let ok = d.listener("10.68.0.1_53").unwrap();
    assert_eq!(ok.version_info.as_deref(), Some("2025-02-17T14:49:37Z/296"));
    assert_eq!(ok.last_updated.as_deref(), Some("2025-02-17T14:49:40.600Z"));
    assert_eq!(ok.error_state, None);
    assert_eq!(
        d.type_versions
            .get(&ResourceType::Listener)
            .map(String::as_str),
        Some("2025-02-17T14:50:01Z/310")
    );

    assert_eq!(d.rejected.len(), 2, "the named and the nameless entry");
    let named = &d.rejected[0];
    assert_eq!(named.resource_type, ResourceType::Listener);
    assert_eq!(named.name.as_deref(), Some("virtualInbound"));
    assert_eq!(named.resource_name(), Some("virtualInbound"));
    assert!(named
        .failure
        .details
        .as_deref()
        .unwrap()
        .starts_with("Proto constraint validation failed"));
    assert_eq!(
        named.failure.last_update_attempt.as_deref(),
        Some("2025-02-17T15:17:48.372Z")
    );
    assert!(named.failure.has_failed_configuration);
    assert_eq!(named.failure.failed_name.as_deref(), Some("virtualInbound"));
    assert_eq!(named.failure.version_info, None);
    assert!(!named.previous_version_serves(), "nothing serves 15006");
    assert_eq!(named.path, "configs[0].dynamic_listeners[1]");
    let nameless = &d.rejected[1];
    assert_eq!(nameless.name, None);
    assert_eq!(nameless.resource_name(), Some("virtualInbound"));
    assert_eq!(nameless.failure.last_update_attempt, None);

    // The listener itself is kept (as Rejected) with its intended chains.
    let vi: Vec<_> = d
        .listeners
        .iter()
        .filter(|l| l.name == "virtualInbound")
        .collect();
    assert!(vi.iter().all(|l| l.state == ListenerState::Rejected));
    assert_eq!(vi[0].filter_chains[0].destination_port, Some(8083));
    assert_eq!(vi[0].version_info, None);
}

#[test]
fn nacked_listener_keeps_serving_the_previous_version() {
    // Envoy 1.40 (file LDS, a Lua script with a syntax error): the last good
    // version stays in `active_state` next to the `error_state`.
    let d = parse_config_dump(&json!({"configs": [{
        "@type": "type.googleapis.com/envoy.admin.v3.ListenersConfigDump.DynamicListener",
        "name": "l",
        "active_state": {"version_info": "1", "listener": {"name": "l",
            "address": {"socket_address": {"address": "0.0.0.0", "port_value": 18080}}},
            "last_updated": "2026-11-24T20:11:22.201Z"},
        "error_state": {"failed_configuration": {"name": "l"}, "last_update_attempt": "2026-11-24T20:12:00Z",
            "details": "script load error: [string \"...\"]:3: ')' expected near 'end'", "version_info": "2"}}]}))
    .unwrap();
    let l = d.listener("l").unwrap();
    assert_eq!(l.state, ListenerState::Active);
    assert!(l
        .error_state
        .as_deref()
        .unwrap()
        .starts_with("script load error"));
    let r = &d.rejected[0];
    assert!(r.previous_version_serves());
    assert_eq!(r.active_version.as_deref(), Some("1"));
    assert_eq!(
        r.active_last_updated.as_deref(),
        Some("2026-11-24T20:11:22.201Z")
    );
    assert_eq!(r.failure.version_info.as_deref(), Some("2"));

    // Near miss: an error_state without failed_configuration or details.
    let d = parse_config_dump(&json!({"configs": [{
        "@type": "type.googleapis.com/envoy.admin.v3.ListenersConfigDump.DynamicListener",
        "name": "x", "error_state": {}}]}))
    .unwrap();
    assert!(!d.rejected[0].failure.has_failed_configuration);
    assert_eq!(d.rejected[0].failure.details, None);
    assert_eq!(
        d.listener("x").unwrap().error_state.as_deref(),
        Some("rejected (no details)")
    );
    // Near miss: a healthy dump has no rejections.
    assert!(parse_config_dump(&v3_cluster_dump())
        .unwrap()
        .rejected
        .is_empty());
}

#[test]
fn nacked_clusters_and_endpoints() {
    let d = parse_config_dump(&json!({"configs": [
        {"@type": "type.googleapis.com/envoy.admin.v3.ClustersConfigDump",
         "dynamic_active_clusters": [
            {"version_info": "v7", "cluster": {"name": "outbound|80||a.b.svc.cluster.local"}, "last_updated": "t7",
             "error_state": {"failed_configuration": {"name": "outbound|80||a.b.svc.cluster.local"}, "details": "bad lb policy"}},
            {"error_state": {"failed_configuration": {"name": "outbound|81||c.b.svc.cluster.local"}, "details": "bad"}}
         ]},
        {"@type": "type.googleapis.com/envoy.admin.v3.EndpointsConfigDump",
         "dynamic_endpoint_configs": [
            {"version_info": "e1", "endpoint_config": {"cluster_name": "outbound|80||a.b.svc.cluster.local", "endpoints": []}, "last_updated": "te"},
            {"error_state": {"failed_configuration": {"cluster_name": "outbound|82||d.b.svc.cluster.local"}, "details": "nope"}}
         ]}
    ]}))
    .unwrap();
    assert!(
        d.problems.is_empty(),
        "an entry with only an error_state is not malformed: {:?}",
        d.problems
    );
    assert_eq!(d.clusters.len(), 1);
    let kinds: Vec<_> = d
        .rejected
        .iter()
        .map(|r| (r.resource_type, r.resource_name().unwrap_or("-")))
        .collect();
    assert_eq!(
        kinds,
        vec![
            (ResourceType::Cluster, "outbound|80||a.b.svc.cluster.local"),
            (ResourceType::Cluster, "outbound|81||c.b.svc.cluster.local"),
            (
                ResourceType::Endpoints,
                "outbound|82||d.b.svc.cluster.local"
            ),
        ]
    );
    assert_eq!(d.rejected[0].active_version.as_deref(), Some("v7"));
    assert!(!d.rejected[1].previous_version_serves());
    assert_eq!(
        d.endpoint_versions["outbound|80||a.b.svc.cluster.local"],
        ResourceVersion {
            version_info: Some("e1".into()),
            last_updated: Some("te".into())
        }
    );
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

const ARB_STRINGS: &[&str] = &[
    "name",
    "@type",
    "type.googleapis.com/envoy.admin.v3.ClustersConfigDump",
    "type.googleapis.com/envoy.admin.v2alpha.ListenersConfigDump",
    "type.googleapis.com/envoy.admin.v3.ListenersConfigDump.DynamicListener",
    "outbound|80||a",
];
const ARB_KEYS: &[&str] = &[
    "configs",
    "@type",
    "cluster",
    "listener",
    "dynamic_active_clusters",
    "dynamic_listeners",
    "active_state",
    "error_state",
    "failed_configuration",
    "filter_chains",
    "transport_socket",
    "transport_socket_matches",
    "name",
];

fn arb_json() -> impl Strategy<Value = Value> {
    crate::istio::testutil::arb_json(
        ARB_STRINGS,
        ARB_KEYS,
        "[a-z|_.]{0,8}",
        "[a-z_]{1,6}",
        (4, 64, 6),
    )
}

/// `fuzz/scale.sh` (config_dump): 20,000 filter chains with their own access
/// log formats; each format was looked up in the list of those already kept
/// (quadratic). A set now; the first of each is kept, in order.
#[test]
fn many_access_log_formats_deduplicated_in_order() {
    let chain = |f: &str| {
        json!({"filters": [{"name": "envoy.filters.network.tcp_proxy", "typed_config": {
            "access_log": [{"typed_config": {"log_format": {"text_format": f}}},
                           {"typed_config": {"log_format": {"text_format": f}}}]}}]})
    };
    let chains: Vec<Value> = (0..20_000)
        .map(|i| chain(&format!("%RESPONSE_CODE% {}", i % 10_000)))
        .collect();
    let l = parse_listener(&json!({"name": "l", "filter_chains": chains}), "l").unwrap();
    assert_eq!(l.filter_chains[0].access_log_formats.len(), 1);
    let formats = l.access_log_formats();
    assert_eq!(formats.len(), 10_000);
    assert_eq!(formats[0], LogFormatSpec::Text("%RESPONSE_CODE% 0".into()));
    assert_eq!(
        formats[9_999],
        LogFormatSpec::Text("%RESPONSE_CODE% 9999".into())
    );
}

proptest! {
    #[test]
    fn never_panics_on_arbitrary_json(v in arb_json()) {
        if let Ok(d) = parse_config_dump(&v) {
            let _ = crate::istio::tls::inbound_modes(&d.listeners);
            let _ = crate::istio::tls::inbound_catch_all(&d.listeners);
            for r in &d.rejected {
                let _ = r.resource_name();
            }
        }
    }
}

#[test]
fn resource_dumps_hold_only_what_was_asked() {
    let cluster = Some("ClustersConfigDump.DynamicCluster");
    let ok = r#"{"configs":[{"@type":"type.googleapis.com/envoy.admin.v3.ClustersConfigDump.DynamicCluster","cluster":{}}]}"#;
    assert!(check_resource_dump(ok, cluster).is_ok());
    let empty = r#"{"configs":[]}"#;
    assert!(check_resource_dump(empty, Some("EndpointsConfigDump.DynamicEndpointConfig")).is_ok());
    let full = r#"{"configs":[{"@type":"type.googleapis.com/envoy.admin.v3.BootstrapConfigDump"},{"@type":"type.googleapis.com/envoy.admin.v3.SecretsConfigDump"}]}"#;
    let e = check_resource_dump(full, cluster).unwrap_err();
    assert!(e.contains("discarded"), "{e}");
    assert!(check_resource_dump("not json", cluster).is_err());
    assert!(check_resource_dump("{}", cluster).is_err());
    assert!(check_resource_dump(r#"{"version":"x"}"#, None).is_ok());
}
