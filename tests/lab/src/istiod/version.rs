//! What changed between Istio releases, for the parts of the sidecar config
//! the lab models. Every switch names the release and the source it was
//! read from (istio/istio at the given tag).

use super::world::MeshConfig;
use serde_json::{json, Value};

/// The modelled Istio release.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct IstioVersion {
    pub major: u32,
    pub minor: u32,
}

impl From<(u32, u32)> for IstioVersion {
    fn from((major, minor): (u32, u32)) -> Self {
        IstioVersion { major, minor }
    }
}

impl std::fmt::Display for IstioVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

impl IstioVersion {
    /// `1.<minor>` or later.
    pub fn at_least(self, minor: u32) -> bool {
        self.major > 1 || (self.major == 1 && self.minor >= minor)
    }

    /// Auto mTLS: absent before 1.4 (`enableAutoMtls` added in 1.4, default
    /// off); on by default from 1.5 (the 1.5 default profile set it, and the
    /// mesh default became true) unless the mesh config says `false`
    /// (istio/istio `pkg/config/mesh/mesh.go` `DefaultMeshConfig`).
    pub fn auto_mtls(self, mesh: &MeshConfig) -> bool {
        if !self.at_least(4) {
            return false;
        }
        mesh.enable_auto_mtls.unwrap_or(self.at_least(5))
    }

    /// `authentication.istio.io/v1alpha1` MeshPolicy/Policy are read before
    /// 1.6 (removed in 1.6); `security.istio.io` PeerAuthentication from 1.5.
    pub fn legacy_authn(self) -> bool {
        !self.at_least(6)
    }
    pub fn beta_authn(self) -> bool {
        self.at_least(5)
    }

    /// From 1.10 the inbound cluster forwards to the pod IP instead of
    /// 127.0.0.1, and is named `inbound|<port>||` (istio/istio 1.10
    /// `pilot/pkg/model/service.go` `BuildInboundSubsetKey`).
    pub fn inbound_to_pod_ip(self) -> bool {
        self.at_least(10)
    }

    /// Workload certificates come from istio-agent over SDS (`default`,
    /// `ROOTCA`) from 1.5; before that from the mounted `istio.default`
    /// secret at `/etc/certs/{cert-chain,key,root-cert}.pem`.
    pub fn sds(self) -> bool {
        self.at_least(5)
    }

    /// Client ALPN for in-mesh mTLS: `[istio]` until 1.4, then
    /// `[istio-peer-exchange, istio]` (istio/istio `pilot/pkg/networking/util`
    /// `ALPNInMesh`, `ALPNInMeshWithMxc`).
    pub fn client_alpn(self) -> Vec<&'static str> {
        if self.at_least(5) {
            vec!["istio-peer-exchange", "istio"]
        } else {
            vec!["istio"]
        }
    }

    /// ALPNs the inbound mTLS chains match in PERMISSIVE mode (istio/istio
    /// `pilot/pkg/networking/core/filterchain_options.go` `allIstioMtlsALPNs`).
    pub fn inbound_mtls_alpns(self) -> Vec<&'static str> {
        if self.at_least(5) {
            vec![
                "istio",
                "istio-peer-exchange",
                "istio-http/1.0",
                "istio-http/1.1",
                "istio-h2",
            ]
        } else {
            vec!["istio"]
        }
    }

    /// ALPN offered by the server side of inbound mTLS.
    pub fn server_alpn(self) -> Vec<&'static str> {
        if self.at_least(5) {
            vec!["istio-peer-exchange", "h2", "http/1.1"]
        } else {
            vec!["h2", "http/1.1"]
        }
    }

    /// SNI `outbound_.<port>_.<subset>_.<host>` on ISTIO_MUTUAL clusters from
    /// 1.1 (`BuildDNSSrvSubsetKey`).
    pub fn sets_sni(self) -> bool {
        self.at_least(1)
    }

    /// `metadata.filter_metadata.istio.config` on clusters shaped by a
    /// DestinationRule: absent in 1.0 (added by istio/istio#11384 in 1.1);
    /// `/apis/networking/v1alpha3/…` in 1.1–1.4; `/apis/networking.istio.io/
    /// v1alpha3/…` from 1.5; `…/v1/…` from 1.24 when the internal GVK of
    /// DestinationRule/VirtualService became v1 (`pkg/config/schema/gvk`).
    pub fn config_path(self, kebab_kind: &str, ns: &str, name: &str) -> Option<String> {
        let group_version = if !self.at_least(1) {
            return None;
        } else if !self.at_least(5) {
            "networking/v1alpha3"
        } else if !self.at_least(24) {
            "networking.istio.io/v1alpha3"
        } else {
            "networking.istio.io/v1"
        };
        Some(format!(
            "/apis/{group_version}/namespaces/{ns}/{kebab_kind}/{name}"
        ))
    }

    /// `istio.subset` cluster metadata from 1.5, `istio.services` from 1.8.
    pub fn subset_metadata(self) -> bool {
        self.at_least(5)
    }
    pub fn services_metadata(self) -> bool {
        self.at_least(8)
    }

    /// Circuit breaker thresholds set to 2^32-1 on every cluster from 1.4
    /// (`getDefaultCircuitBreakerThresholds`); before, only what a DR sets.
    pub fn default_circuit_breakers(self) -> bool {
        self.at_least(4)
    }

    /// Default load balancer LEAST_REQUEST from 1.14, ROUND_ROBIN before.
    pub fn default_least_request(self) -> bool {
        self.at_least(14)
    }

    /// The default route retry policy (istio/istio
    /// `pilot/pkg/networking/core/route/retry/retry.go` `DefaultPolicy`):
    /// none in 1.0; from 1.1 two retries on `connect-failure,refused-stream,
    /// unavailable,cancelled,resource-exhausted,retriable-status-codes`
    /// (`resource-exhausted` dropped in 1.6), retriable 503 until 1.23
    /// (`EXCLUDE_UNSAFE_503_FROM_DEFAULT_RETRY` defaults to true from 1.24),
    /// previous-hosts predicate, 3 then (1.2+) 5 host selection attempts.
    pub fn default_retry_policy(self) -> Option<Value> {
        if !self.at_least(1) {
            return None;
        }
        let retry_on = if self.at_least(6) {
            "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes"
        } else {
            "connect-failure,refused-stream,unavailable,cancelled,resource-exhausted,retriable-status-codes"
        };
        let mut p = json!({
            "retry_on": retry_on,
            "num_retries": 2,
            "retry_host_predicate": [{
                "name": "envoy.retry_host_predicates.previous_hosts",
                "typed_config": {"@type": "type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate"}
            }],
            "host_selection_retry_max_attempts": if self.at_least(2) { "5" } else { "3" },
        });
        if !self.at_least(24) {
            p["retriable_status_codes"] = json!([503]);
        }
        Some(p)
    }

    /// Legacy `outlierDetection.consecutiveErrors`: 1.0 mapped it to
    /// `consecutive_5xx`; 1.1–1.6 to `consecutive_gateway_failure` (with 5xx
    /// enforcement off, istio/api#617); from 1.7 it is ignored
    /// (`applyOutlierDetection` no longer reads it).
    pub fn legacy_consecutive_errors(self) -> LegacyConsecutiveErrors {
        if !self.at_least(1) {
            LegacyConsecutiveErrors::Consecutive5xx
        } else if !self.at_least(7) {
            LegacyConsecutiveErrors::GatewayFailure
        } else {
            LegacyConsecutiveErrors::Ignored
        }
    }

    /// `healthy_panic_threshold` from `minHealthPercent`: never in 1.0, only
    /// when > 0 in 1.1–1.2, always (0 = panic disabled) from 1.3.
    pub fn panic_threshold(self, min_health_percent: i64) -> Option<i64> {
        if !self.at_least(1) {
            None
        } else if !self.at_least(3) {
            (min_health_percent > 0).then_some(min_health_percent)
        } else {
            (min_health_percent >= 0).then_some(min_health_percent)
        }
    }

    /// The default stats inclusion list of the bootstrap (istio/istio
    /// `pkg/bootstrap/config.go`): (prefixes, suffixes, regexes). None before
    /// 1.2 (no matcher, every stat kept).
    pub fn default_stats_inclusion(
        self,
    ) -> Option<(Vec<&'static str>, Vec<&'static str>, Vec<&'static str>)> {
        if !self.at_least(2) {
            return None;
        }
        let prefixes: Vec<&str> = if !self.at_least(6) {
            vec![
                "cluster_manager",
                "listener_manager",
                "http_mixer_filter",
                "tcp_mixer_filter",
                "server",
                "cluster.xds-grpc",
            ]
        } else if !self.at_least(8) {
            vec![
                "cluster_manager",
                "listener_manager",
                "http_mixer_filter",
                "tcp_mixer_filter",
                "server",
                "cluster.xds-grpc",
                "wasm",
            ]
        } else {
            vec![
                "cluster_manager",
                "listener_manager",
                "server",
                "cluster.xds-grpc",
                "wasm",
            ]
        };
        // `downstream_cx_active` is added only with EXIT_ON_ZERO_ACTIVE_CONNECTIONS.
        let suffixes = if self.at_least(10) {
            vec![
                "rbac.allowed",
                "rbac.denied",
                "shadow_allowed",
                "shadow_denied",
            ]
        } else {
            vec![]
        };
        let regexes = if self.at_least(24) {
            vec![r"vhost\..*\.route\..*"]
        } else if self.at_least(16) {
            vec![r"vhost\.*\.route\.*"]
        } else {
            vec![]
        };
        Some((prefixes, suffixes, regexes))
    }

    /// The inbound passthrough cluster: `InboundPassthroughClusterIpv4` until
    /// 1.22, `InboundPassthroughCluster` from 1.23 (istio/istio 1.23.0
    /// `pilot/pkg/networking/util/util.go` `InboundPassthroughCluster`).
    pub fn inbound_passthrough_cluster(self) -> &'static str {
        if self.at_least(23) {
            "InboundPassthroughCluster"
        } else {
            "InboundPassthroughClusterIpv4"
        }
    }

    /// The retry policy of the default inbound route (istio/istio
    /// `pilot/pkg/networking/core/route/route.go` `BuildDefaultHTTPInboundRoute`):
    /// none before 1.24; from 1.24 (`ENABLE_INBOUND_RETRY_POLICY`, default
    /// true, istio/istio#52055) two retries on `reset-before-request`; from
    /// 1.26 not on gRPC ports (1.26.0 route.go).
    pub fn inbound_retry_policy(self, grpc_port: bool) -> Option<Value> {
        if !self.at_least(24) || (grpc_port && self.at_least(26)) {
            return None;
        }
        Some(json!({"retry_on": "reset-before-request", "num_retries": 2}))
    }

    /// Istio's standard metrics (`istio_requests_total`, …) come from every
    /// sidecar from 1.5, when Telemetry v2 became the default profile's
    /// (istio/istio 1.5.0 `operator/data/profiles/default.yaml`
    /// `telemetry.v2.enabled: true`); before, Mixer produced them.
    pub fn standard_metrics(self) -> bool {
        self.at_least(5)
    }

    /// The Telemetry API's `accessLogging` drives access logs from 1.12
    /// (istio/istio 1.12.0 `pilot/pkg/model/telemetry.go` `AccessLogging`);
    /// the CRD is served from 1.10 (v1alpha1) and as v1 from 1.22
    /// (`manifests/charts/base/crds/crd-all.gen.yaml`).
    pub fn telemetry_access_logging(self) -> bool {
        self.at_least(12)
    }

    /// `track_remaining` on the default circuit breaker thresholds: set
    /// until 1.28, off from 1.29 (`DISABLE_TRACK_REMAINING_CB_METRICS`,
    /// default true, istio/istio 1.29.0 `cluster_traffic_policy.go`).
    pub fn track_remaining(self) -> bool {
        !self.at_least(29)
    }

    /// From 1.27 outbound virtual hosts also match the absolute FQDN
    /// (`httpbin.foo.svc.cluster.local.`), `PILOT_ENABLE_ABSOLUTE_FQDN_VHOST_DOMAIN`
    /// default true (istio/istio 1.27.0 `httproute.go` `GenerateAltVirtualHosts`).
    pub fn absolute_fqdn_domains(self) -> bool {
        self.at_least(27)
    }

    /// Istio's default TEXT access log format for this release (see
    /// `accesslog.rs`).
    pub fn text_log_format(self) -> &'static str {
        super::accesslog::text_format(self)
    }
}

/// What a release does with the deprecated `consecutiveErrors`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LegacyConsecutiveErrors {
    Consecutive5xx,
    GatewayFailure,
    Ignored,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_mtls_defaults_by_release() {
        let unset = MeshConfig::default();
        let off = MeshConfig {
            enable_auto_mtls: Some(false),
            ..MeshConfig::default()
        };
        let on = MeshConfig {
            enable_auto_mtls: Some(true),
            ..MeshConfig::default()
        };
        // No auto mTLS before 1.4 (mesh config field added in 1.4).
        assert!(!IstioVersion::from((1, 3)).auto_mtls(&on));
        assert!(!IstioVersion::from((1, 4)).auto_mtls(&unset));
        assert!(IstioVersion::from((1, 4)).auto_mtls(&on));
        assert!(IstioVersion::from((1, 5)).auto_mtls(&unset));
        assert!(!IstioVersion::from((1, 24)).auto_mtls(&off));
    }

    #[test]
    fn config_paths_follow_the_internal_gvk() {
        let v = |m| IstioVersion::from((1, m));
        assert_eq!(v(0).config_path("destination-rule", "foo", "x"), None);
        assert_eq!(
            v(4).config_path("destination-rule", "foo", "x").unwrap(),
            "/apis/networking/v1alpha3/namespaces/foo/destination-rule/x"
        );
        assert_eq!(
            v(23).config_path("destination-rule", "foo", "x").unwrap(),
            "/apis/networking.istio.io/v1alpha3/namespaces/foo/destination-rule/x"
        );
        assert_eq!(
            v(24).config_path("destination-rule", "foo", "x").unwrap(),
            "/apis/networking.istio.io/v1/namespaces/foo/destination-rule/x"
        );
    }

    #[test]
    fn modern_switches_by_release() {
        let v = |m| IstioVersion::from((1, m));
        assert_eq!(
            v(22).inbound_passthrough_cluster(),
            "InboundPassthroughClusterIpv4"
        );
        assert_eq!(
            v(23).inbound_passthrough_cluster(),
            "InboundPassthroughCluster"
        );
        assert!(v(23).inbound_retry_policy(false).is_none());
        assert_eq!(
            v(24).inbound_retry_policy(false).unwrap()["retry_on"],
            "reset-before-request"
        );
        assert!(v(25).inbound_retry_policy(true).is_some());
        assert!(v(26).inbound_retry_policy(true).is_none());
        assert!(!v(4).standard_metrics() && v(5).standard_metrics());
        assert!(v(28).track_remaining() && !v(29).track_remaining());
        assert!(!v(26).absolute_fqdn_domains() && v(27).absolute_fqdn_domains());
    }

    #[test]
    fn retry_policy_by_release() {
        // retry.go: none in 1.0; 503 retriable until 1.23, not from 1.24.
        assert!(IstioVersion::from((1, 0)).default_retry_policy().is_none());
        assert_eq!(
            IstioVersion::from((1, 23)).default_retry_policy().unwrap()["retriable_status_codes"],
            json!([503])
        );
        assert!(IstioVersion::from((1, 24))
            .default_retry_policy()
            .unwrap()
            .get("retriable_status_codes")
            .is_none());
    }
}
