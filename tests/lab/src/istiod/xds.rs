//! Envoy v3 building blocks shared by the cluster and listener builders:
//! type URLs, where each xDS resource lives on disk, config sources, and
//! the TLS contexts Istio puts on clusters and inbound chains.
//!
//! Transport as istiod's: clusters, endpoints, listeners and routes over ADS
//! (`ads: {}`), secrets over SDS from the `sds-grpc` cluster (see `ads.rs`
//! for the lab's server). Resource names are Istio's: EDS service name =
//! cluster name, route configs `8000` / `inbound|8080||`, secrets
//! `default` / `ROOTCA`.

use super::version::IstioVersion;
use serde_json::{json, Value};

pub const TYPE_CLUSTER: &str = "type.googleapis.com/envoy.config.cluster.v3.Cluster";
pub const TYPE_CLA: &str = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment";
pub const TYPE_LISTENER: &str = "type.googleapis.com/envoy.config.listener.v3.Listener";
pub const TYPE_ROUTE: &str = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration";
pub const TYPE_SECRET: &str =
    "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret";

/// The bootstrap cluster that reaches the lab's xDS server (Istio's name).
pub const XDS_CLUSTER: &str = "xds-grpc";
/// The bootstrap cluster of the SDS server (pilot-agent's, Istio's name).
pub const SDS_CLUSTER: &str = "sds-grpc";

/// Secret names istio-agent serves (istio/istio `pkg/security` `WorkloadKeyCertResourceName`, `RootCertReqResourceName`).
pub const SDS_DEFAULT: &str = "default";
pub const SDS_ROOT: &str = "ROOTCA";

/// Files of the pre-SDS releases (the mounted `istio.default` secret),
/// relative to the sidecar dir (LAB DIFFERENCE: `/etc/certs/...` in a pod).
pub const CERT_CHAIN_FILE: &str = "etc/certs/cert-chain.pem";
pub const KEY_FILE: &str = "etc/certs/key.pem";
pub const ROOT_CERT_FILE: &str = "etc/certs/root-cert.pem";

/// The `ConfigSource` of EDS and RDS: ADS (istio/istio
/// `pilot/pkg/networking/core/cluster_builder.go` `edsConfig`/ADS config:
/// `ads: {}`, `initial_fetch_timeout: 0s`, `resource_api_version: V3`).
pub fn config_source() -> Value {
    json!({"ads": {}, "initial_fetch_timeout": "0s", "resource_api_version": "V3"})
}

/// `SdsSecretConfig` for one of istio-agent's secrets: gRPC to the
/// `sds-grpc` cluster (istio/istio `pilot/pkg/model/authentication.go`
/// `ConstructSdsSecretConfig`).
pub fn sds_secret_config(name: &str) -> Value {
    json!({"name": name, "sds_config": {
        "api_config_source": {
            "api_type": "GRPC",
            "set_node_on_first_message_only": true,
            "transport_api_version": "V3",
            "grpc_services": [{"envoy_grpc": {"cluster_name": SDS_CLUSTER}}],
        },
        "initial_fetch_timeout": "0s",
        "resource_api_version": "V3",
    }})
}

/// The EDS config of a cluster: service name = cluster name, as istiod does.
pub fn eds_cluster_config(cluster_name: &str) -> Value {
    json!({"eds_config": config_source(), "service_name": cluster_name})
}

/// HCM `rds` for a route config name.
pub fn rds(route_name: &str) -> Value {
    json!({"config_source": config_source(), "route_config_name": route_name})
}

pub fn raw_buffer_socket() -> Value {
    json!({
        "name": "envoy.transport_sockets.raw_buffer",
        "typed_config": {"@type": "type.googleapis.com/envoy.extensions.transport_sockets.raw_buffer.v3.RawBuffer"}
    })
}

fn tls_socket(typed_config: Value) -> Value {
    json!({"name": "envoy.transport_sockets.tls", "typed_config": typed_config})
}

/// The workload certificate and root, by SDS (1.5+) or from files (before).
fn workload_cert_context(v: IstioVersion, common: &mut Value, san_matchers: Value) {
    if v.sds() {
        common["tls_certificate_sds_secret_configs"] = json!([sds_secret_config(SDS_DEFAULT)]);
        common["combined_validation_context"] = json!({
            "default_validation_context": san_matchers,
            "validation_context_sds_secret_config": sds_secret_config(SDS_ROOT),
        });
    } else {
        common["tls_certificates"] = json!([{
            "certificate_chain": {"filename": CERT_CHAIN_FILE},
            "private_key": {"filename": KEY_FILE},
        }]);
        let mut vc = san_matchers;
        vc["trusted_ca"] = json!({"filename": ROOT_CERT_FILE});
        common["validation_context"] = vc;
    }
}

/// UpstreamTlsContext for ISTIO_MUTUAL (istio/istio `cluster_tls.go`
/// `buildUpstreamClusterTLSContext`): TLS 1.2–1.3, the in-mesh ALPN, the
/// workload cert, validation against the root with the exact SANs of the
/// destination's service accounts, SNI `outbound_.<port>_.<subset>_.<host>`.
pub fn istio_mutual_upstream(v: IstioVersion, sni: Option<&str>, sans: &[String]) -> Value {
    let mut common = json!({
        "tls_params": {"tls_minimum_protocol_version": "TLSv1_2", "tls_maximum_protocol_version": "TLSv1_3"},
        "alpn_protocols": v.client_alpn(),
    });
    let matchers = if sans.is_empty() {
        json!({})
    } else {
        json!({"match_subject_alt_names": sans.iter().map(|s| json!({"exact": s})).collect::<Vec<_>>()})
    };
    workload_cert_context(v, &mut common, matchers);
    let mut ctx = json!({
        "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",
        "common_tls_context": common,
    });
    if let Some(sni) = sni.filter(|s| !s.is_empty()) {
        ctx["sni"] = json!(sni);
    }
    tls_socket(ctx)
}

/// UpstreamTlsContext for a DR's SIMPLE or MUTUAL mode.
///
/// LAB DIFFERENCE: file paths a DR names (`caCertificates`,
/// `clientCertificate`, `privateKey`) and `credentialName` secrets do not
/// exist in the lab, so they are left out (no server verification, no
/// client certificate); SNI and SANs are kept.
pub fn simple_upstream(tls: &Value) -> Value {
    let mut ctx = json!({
        "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",
        "common_tls_context": {
            "tls_params": {"tls_minimum_protocol_version": "TLSv1_2", "tls_maximum_protocol_version": "TLSv1_3"},
        },
    });
    if let Some(sni) = tls["sni"].as_str() {
        ctx["sni"] = json!(sni);
    }
    tls_socket(ctx)
}

/// DownstreamTlsContext of an inbound mTLS chain (istio/istio
/// `pilot/pkg/security/authn` inbound MTLS settings): client certificate
/// required, validated against the root with any `spiffe://<trust domain>/` SAN.
pub fn istio_mutual_downstream(v: IstioVersion, trust_domain: &str) -> Value {
    let mut common = json!({
        "tls_params": {
            "tls_minimum_protocol_version": "TLSv1_2",
            "tls_maximum_protocol_version": "TLSv1_3",
            "cipher_suites": [
                "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-RSA-AES256-GCM-SHA384",
                "ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256",
                "AES256-GCM-SHA384", "AES128-GCM-SHA256"
            ],
        },
        "alpn_protocols": v.server_alpn(),
    });
    let matchers = if v.at_least(5) {
        json!({"match_subject_alt_names": [{"prefix": format!("spiffe://{trust_domain}/")}]})
    } else {
        json!({})
    };
    workload_cert_context(v, &mut common, matchers);
    tls_socket(json!({
        "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext",
        "common_tls_context": common,
        "require_client_certificate": true,
    }))
}

/// `outbound_.<port>_.<subset>_.<host>` (istio/istio `BuildDNSSrvSubsetKey`).
pub fn sni(port: u16, subset: &str, host: &str) -> String {
    format!("outbound_.{port}_.{subset}_.{host}")
}

/// `outbound|<port>|<subset>|<host>` (istio/istio `BuildSubsetKey`).
pub fn outbound_cluster_name(port: u16, subset: &str, host: &str) -> String {
    format!("outbound|{port}|{subset}|{host}")
}

/// A socket address.
pub fn socket_address(ip: impl std::fmt::Display, port: u16) -> Value {
    json!({"socket_address": {"address": ip.to_string(), "port_value": port}})
}

/// Circuit-breaker thresholds Istio sets on every cluster (1.4+).
pub fn default_thresholds() -> Value {
    json!({
        "max_connections": 4294967295u64,
        "max_pending_requests": 4294967295u64,
        "max_requests": 4294967295u64,
        "max_retries": 4294967295u64,
        "track_remaining": true,
    })
}

/// Router filter (last HTTP filter).
pub fn router_filter() -> Value {
    json!({"name": "envoy.filters.http.router", "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}})
}

/// The standard Envoy HTTP filters of Istio's chain. LAB DIFFERENCE: Istio's
/// own filters (`istio.metadata_exchange`, `istio.alpn`, `istio.stats`,
/// `istio_authn`) are not in upstream Envoy and are left out.
pub fn http_filters() -> Value {
    json!([
        {"name": "envoy.filters.http.fault", "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault"}},
        {"name": "envoy.filters.http.cors", "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors"}},
        router_filter(),
    ])
}

/// tcp_proxy network filter.
pub fn tcp_proxy(stat_prefix: &str, cluster: &str, access_log: Option<&Value>) -> Value {
    let mut tp = json!({
        "@type": "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy",
        "stat_prefix": stat_prefix,
        "cluster": cluster,
    });
    if let Some(al) = access_log {
        tp["access_log"] = json!([al]);
    }
    json!({"name": "envoy.filters.network.tcp_proxy", "typed_config": tp})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_istio() {
        assert_eq!(
            sni(8000, "", "httpbin.foo.svc.cluster.local"),
            "outbound_.8000_._.httpbin.foo.svc.cluster.local"
        );
        assert_eq!(outbound_cluster_name(8000, "v1", "h"), "outbound|8000|v1|h");
        assert_eq!(eds_cluster_config("c")["service_name"], "c");
    }
}
