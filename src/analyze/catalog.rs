//! Analyze stage: the catalog of causes. Every finding is declared here once
//! (id, title, severity, meaning, the evidence it weighs, the kind of fix,
//! its Istio/Envoy sources, and the rule that checks it), the way ruff's rule
//! registry and clippy's `declare_lint!` declare theirs. Ids are string
//! literals nowhere else; `docs/findings.md` is generated from this file
//! (`UPDATE_DOCS=1 cargo test --lib catalog` rewrites it; the test fails
//! when it is stale).

use std::fmt;

use serde::{Serialize, Serializer};

use super::confidence::{self, Weight};
use super::finding::{Finding, Severity};
use super::fix::FixKind;
use super::rules;
use crate::model::Mesh;

/// Every cause the tool can report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Cause {
    MtlsPlaintextToStrict,
    MtlsToPlaintextServer,
    TlsOriginationToSidecar,
    ClientWithoutSidecarToStrict,
    ProxyConfigDiffers,
    CircuitBreakerOverflow,
    NoHealthyUpstream,
    SubsetNotFound,
    AppNotListening,
    UpstreamConnectionReset,
    PortProtocolUndeclared,
    ServiceWithoutEndpoints,
    SubsetSelectsNoPods,
    RouteToUnknownHost,
    FaultInjection503,
    VirtualServiceShadowed,
    RouteUnreachable,
    GatewayRouteMissing,
    ConfigRejected,
    Unexplained503s,
}

/// What a rule needs to find its cause: the split `scan` relies on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Needs {
    /// Kubernetes and Istio objects are enough (the data plane, when read,
    /// only confirms): `scan` runs it over every Service.
    Config,
    /// It reads sidecars (access logs, `/clusters`, `/config_dump`):
    /// `diagnose` only.
    DataPlane,
}

impl Needs {
    pub fn describe(self) -> &'static str {
        match self {
            Needs::Config => "config (also run by `scan`)",
            Needs::DataPlane => "data plane (sidecars' logs or admin output; `diagnose` only)",
        }
    }
}

/// One cause, declared.
pub struct Declaration {
    pub cause: Cause,
    /// Stable id, as in reports.
    pub id: &'static str,
    pub title: &'static str,
    /// The severities it is reported at; the first is the default.
    pub severities: &'static [Severity],
    /// What it means, in a paragraph.
    pub meaning: &'static str,
    /// How it shows in the data plane.
    pub signature: &'static str,
    /// The evidence it weighs ([`confidence::WEIGHTS`]).
    pub evidence: &'static [Weight],
    /// The kinds of fix it prints (empty: none).
    pub fix: &'static [FixKind],
    /// Where the semantics come from.
    pub sources: &'static [&'static str],
    /// Whether config alone can find it ([`Needs::Config`]: `scan` runs it).
    pub needs: Needs,
    /// The rule: a pure function of the model.
    pub check: fn(&Mesh) -> Vec<Finding>,
}

const MTLS_EVIDENCE: &[Weight] = &[
    Weight::ConfigPredicts,
    Weight::ClientClusterConfirms,
    Weight::ServerListenerConfirms,
    Weight::ClientLog,
    Weight::ServerLog,
    Weight::ClientCounter,
    Weight::ServerCounter,
    Weight::PredictionContradicted,
];

/// The catalog, in the order rules run (ranking decides the report's order).
pub static CATALOG: &[Declaration] = &[
    Declaration {
        cause: Cause::MtlsPlaintextToStrict,
        id: "MTLS_PLAINTEXT_TO_STRICT",
        title: "plaintext from the client sidecar to a server that accepts only mTLS",
        severities: &[Severity::Error],
        meaning: "The client sidecar sends plaintext to a server sidecar in STRICT mode: a DestinationRule without `tls` replaces an ISTIO_MUTUAL rule while auto mTLS is off, `tls.mode: DISABLE` (which wins even with auto mTLS), or a port-level entry without `tls`.",
        signature: "client `503 UC` (`upstream_reset_before_response_started{connection_termination}`), server `NR filter_chain_not_found`",
        evidence: MTLS_EVIDENCE,
        fix: &[
            FixKind::EditDestinationRule,
            FixKind::NewDestinationRule,
            FixKind::ScopedDestinationRule,
            FixKind::EditWideDestinationRule,
        ],
        sources: &[
            "istio/istio pilot/pkg/networking/core/cluster_tls.go (buildUpstreamTLSSettings)",
            "istio/istio pilot/pkg/model/push_context.go (destinationRule)",
            "istio/istio pilot/pkg/security/authn/policy_applier.go (ComposePeerAuthentication)",
            "envoyproxy/envoy source/common/stream_info/utility.h (response flags)",
        ],
        needs: Needs::Config,
        check: rules::mtls_plaintext_to_strict::check,
    },
    Declaration {
        cause: Cause::MtlsToPlaintextServer,
        id: "MTLS_TO_PLAINTEXT_SERVER",
        title: "Istio mTLS to a pod without sidecar or to a DISABLE sidecar",
        severities: &[Severity::Error],
        meaning: "The client sends Istio mTLS to a pod that cannot terminate it: no sidecar, or a sidecar in DISABLE mode (including a workload-level PeerAuthentication that client-side auto mTLS cannot see).",
        signature: "client `503 UF,URX` with TLS error `WRONG_VERSION_NUMBER`; a DISABLE server answers `400 DPE`",
        evidence: MTLS_EVIDENCE,
        fix: &[
            FixKind::EditServerPolicy,
            FixKind::EditDestinationRule,
            FixKind::NewDestinationRule,
            FixKind::ScopedDestinationRule,
            FixKind::EditWideDestinationRule,
        ],
        sources: &[
            "istio/istio pilot/pkg/networking/core/cluster_tls.go (buildAutoMtlsSettings)",
            "istio/istio pilot/pkg/model/authentication.go (GetNamespaceMutualTLSMode); istio/istio#32788",
            "envoyproxy/envoy docs/root/configuration/observability/access_log/usage.rst (%UPSTREAM_TRANSPORT_FAILURE_REASON%)",
        ],
        needs: Needs::Config,
        check: rules::mtls_to_plaintext_server::check,
    },
    Declaration {
        cause: Cause::TlsOriginationToSidecar,
        id: "TLS_ORIGINATION_TO_SIDECAR",
        title: "SIMPLE TLS origination towards a STRICT sidecar",
        severities: &[Severity::Error],
        meaning: "A DestinationRule sets `tls.mode: SIMPLE` (or MUTUAL with certificates the mesh does not trust) towards a server sidecar that accepts only Istio mTLS: the handshake lacks Istio's client certificate and ALPN.",
        signature: "client `503 UF` or `UC`",
        evidence: MTLS_EVIDENCE,
        fix: &[
            FixKind::EditDestinationRule,
            FixKind::NewDestinationRule,
            FixKind::ScopedDestinationRule,
            FixKind::EditWideDestinationRule,
        ],
        sources: &[
            "istio/api networking/v1alpha3/destination_rule.proto (ClientTLSSettings)",
            "istio/istio pilot/pkg/security/authn/policy_applier.go (ComposePeerAuthentication)",
        ],
        needs: Needs::Config,
        check: rules::tls_origination_to_sidecar::check,
    },
    Declaration {
        cause: Cause::ClientWithoutSidecarToStrict,
        id: "CLIENT_WITHOUT_SIDECAR_TO_STRICT",
        title: "a pod without sidecar calls a STRICT server",
        severities: &[Severity::Error],
        meaning: "A pod outside the mesh calls a server whose sidecar accepts only mTLS; nothing upgrades its plaintext. Found from the server's log (the rejected connection's source IP is a pod without `istio-proxy`), or, with access logs off, from config alone: a pod without `istio-proxy` whose environment or command line names the target (a refused handshake is counted by no standard metric).",
        signature: "server `NR filter_chain_not_found` from that pod's IP; without logs, a sidecarless pod configured with the target's host",
        evidence: &[Weight::ServerLog, Weight::DistinctiveFlag, Weight::ServerListenerConfirms, Weight::ConfigPredicts],
        fix: &[FixKind::InjectSidecarOrRelaxPolicy],
        sources: &[
            "istio/istio pilot/pkg/security/authn/policy_applier.go (STRICT: TLS chains only)",
            "envoyproxy/envoy source/server/listener_impl.cc (filter_chain_not_found)",
        ],
        needs: Needs::DataPlane,
        check: rules::client_without_sidecar::check,
    },
    Declaration {
        cause: Cause::ProxyConfigDiffers,
        id: "PROXY_CONFIG_DIFFERS",
        title: "a sidecar runs other config than the API objects decide (a client's DestinationRule, a server's mTLS mode)",
        severities: &[Severity::Warning],
        meaning: "The cluster's `istio.config` metadata names a DestinationRule other than the one the API objects select: istiod has not pushed the current config (or it was rejected), or the tool cannot see every object istiod sees (RBAC, exportTo). Likewise a server sidecar whose inbound listener accepts another mode (STRICT, PERMISSIVE, DISABLE) than the PeerAuthentications/Policies the API shows decide. Findings built on config may not match what the proxy does; the other findings use what the listener accepts.",
        signature: "`metadata.filter_metadata.istio.config` of `outbound|port||host` in `/config_dump`; the filter chains of `virtualInbound` for the port",
        evidence: &[Weight::ProxyRunsOtherRule],
        fix: &[],
        sources: &[
            "istio/istio pilot/pkg/networking/util/util.go (BuildConfigInfoMetadata)",
            "istio/istio istioctl/pkg/describe (reads istio.config to name the applied rule)",
        ],
        needs: Needs::DataPlane,
        check: rules::proxy_config_differs::check,
    },
    Declaration {
        cause: Cause::CircuitBreakerOverflow,
        id: "CIRCUIT_BREAKER_OVERFLOW",
        title: "a connection-pool limit is reached",
        severities: &[Severity::Error],
        meaning: "The DestinationRule's connectionPool limits (connections, pending requests, requests, retries) are exceeded; the client sidecar answers without calling the server.",
        signature: "client `503 UO`, header `x-envoy-overloaded: true`",
        evidence: &[Weight::ClientLog, Weight::DistinctiveFlag],
        fix: &[FixKind::TuneConnectionPool],
        sources: &[
            "envoyproxy/envoy docs/root/intro/arch_overview/upstream/circuit_breaking.rst",
            "istio/api networking/v1alpha3/destination_rule.proto (ConnectionPoolSettings)",
        ],
        needs: Needs::DataPlane,
        check: rules::circuit_breaker_overflow::check,
    },
    Declaration {
        cause: Cause::NoHealthyUpstream,
        id: "NO_HEALTHY_UPSTREAM",
        title: "no healthy endpoint: none at all, or every one ejected",
        severities: &[Severity::Error, Severity::Warning],
        meaning: "The client sidecar has no endpoint to send to: the Service selects no ready pod (error), or outlier detection ejected every host (warning: ejection follows other errors, and Istio sets the panic threshold to minHealthPercent, default 0, so Envoy never falls back to ejected hosts; an error again when the proxies show 503s for the target and no error explains them).",
        signature: "`503 UH` (`no_healthy_upstream`), `/clusters` `failed_outlier_check` or no hosts",
        evidence: &[Weight::ClientLog, Weight::HostHealth, Weight::ConfigCertain],
        fix: &[FixKind::ReadyEndpoints, FixKind::TuneOutlierDetection, FixKind::Investigate],
        sources: &[
            "envoyproxy/envoy source/common/upstream/host_utility.cc (health flags)",
            "istio/istio pilot/pkg/networking/core/cluster_traffic_policy.go (applyOutlierDetection: healthy_panic_threshold)",
        ],
        needs: Needs::DataPlane,
        check: rules::no_healthy_upstream::check,
    },
    Declaration {
        cause: Cause::SubsetNotFound,
        id: "SUBSET_NOT_FOUND",
        title: "a route a caller takes names a subset the DestinationRule applying to it does not define",
        severities: &[Severity::Error],
        meaning: "For some callers of the target, the VirtualService that wins the host routes (a reachable route, weight > 0) to a subset that no DestinationRule applying to them defines (none applies, the one that applies lacks it, or the rule defining it is not exported to their namespace; or the VirtualService was applied before the DestinationRule): the route points at a cluster their sidecars do not have. Shadowed VirtualServices, delegates and gateway-only VirtualServices seen from sidecars never count.",
        signature: "client `503 NC` (`cluster_not_found`) on `outbound|port|subset|host`",
        evidence: &[
            Weight::ConfigRouteCertain,
            Weight::ClientLog,
            Weight::DistinctiveFlag,
            Weight::ClientClusterMissing,
            Weight::PredictionContradicted,
            Weight::ConfigHidden,
        ],
        fix: &[FixKind::DefineSubset, FixKind::RouteToExistingPods],
        sources: &[
            "istio/istio pilot/pkg/networking/core/route/route.go (GetDestinationCluster)",
            "istio/istio pilot/pkg/model/push_context.go (destinationRule: exportTo)",
            "istio/istio pilot/pkg/networking/core/httproute.go (BuildSidecarOutboundVirtualHosts: first virtual host wins)",
            "envoyproxy/envoy source/common/router/router.cc (cluster_not_found)",
            "istio.io docs ops/best-practices/traffic-management (make-before-break)",
        ],
        needs: Needs::Config,
        check: rules::subset_not_found::check,
    },
    Declaration {
        cause: Cause::AppNotListening,
        id: "APP_NOT_LISTENING",
        title: "the server sidecar cannot connect to its own app",
        severities: &[Severity::Error],
        meaning: "The server sidecar's inbound cluster cannot reach the application: typically an app bound to 127.0.0.1 while Istio ≥1.10 forwards to the pod IP, a wrong container port, or an app that is down.",
        signature: "server `503 UF` on `inbound|…`; with logs off, the server's `istio_requests_total{reporter=\"destination\",response_code=\"503\"}` with `UF` in `response_flags`",
        evidence: &[Weight::ServerLog, Weight::DistinctiveFlag, Weight::Metrics],
        fix: &[FixKind::ChangeApplication],
        sources: &[
            "istio.io blog 2021/upcoming-networking-changes (inbound to the pod IP from 1.10)",
            "envoyproxy/envoy source/common/stream_info/utility.h (UF)",
        ],
        needs: Needs::DataPlane,
        check: rules::app_not_listening::check,
    },
    Declaration {
        cause: Cause::UpstreamConnectionReset,
        id: "UPSTREAM_CONNECTION_RESET",
        title: "the app closes keep-alive connections the sidecar still reuses",
        severities: &[Severity::Warning, Severity::Error],
        meaning: "Some requests succeed and some end `503 UC` on the inbound cluster: the app closes idle connections sooner than Envoy's idle timeout (1h by default) and a request races the close. A warning; an error when the proxies show 503s for the target and no error explains them (the 503s are in front of the report).",
        signature: "server `503 UC` mixed with 2xx on `inbound|…`",
        evidence: &[Weight::ServerLog, Weight::IntermittentPattern],
        fix: &[FixKind::TuneIdleTimeout, FixKind::ChangeApplication],
        sources: &[
            "envoyproxy/envoy api/envoy/config/core/v3/protocol.proto (HttpProtocolOptions.idle_timeout)",
            "istio/api networking/v1alpha3/destination_rule.proto (HTTPSettings.idleTimeout)",
        ],
        needs: Needs::DataPlane,
        check: rules::upstream_connection_reset::check,
    },
    Declaration {
        cause: Cause::PortProtocolUndeclared,
        id: "PORT_PROTOCOL_UNDECLARED",
        title: "a Service port does not declare its protocol",
        severities: &[Severity::Info],
        meaning: "Neither `appProtocol` nor the port name's prefix names a protocol Istio knows, so istiod sniffs it, which fails for server-first protocols and can give `400 DPE` or resets.",
        signature: "protocol sniffing on the port",
        evidence: &[Weight::ConfigPitfall],
        fix: &[FixKind::DeclareProtocol],
        sources: &[
            "istio/istio pkg/config/kube/conversion.go (ConvertProtocol)",
            "istio.io docs ops/configuration/traffic-management/protocol-selection",
        ],
        needs: Needs::Config,
        check: rules::port_protocol_undeclared::check,
    },
    Declaration {
        cause: Cause::ServiceWithoutEndpoints,
        id: "SERVICE_WITHOUT_ENDPOINTS",
        title: "a target Service has no ready endpoint on a port callers are routed to",
        severities: &[Severity::Error, Severity::Warning],
        meaning: "The Service's selector matches no pod, the pods it matches are not ready, or the ready ones do not declare its named targetPort: its EndpointSlices list no ready endpoint and every request routed to `outbound|port||host` fails (error). A warning when no caller's route leads there now.",
        signature: "`503 UH` (`no_healthy_upstream`) on `outbound|port||host`, from sidecars and gateways",
        evidence: &[
            Weight::ConfigRouteCertain,
            Weight::ConfigCertain,
            Weight::ClientLog,
            Weight::HostHealth,
            Weight::PredictionContradicted,
        ],
        fix: &[FixKind::ReadyEndpoints],
        sources: &[
            "k8s.io/endpointslice utils.go (findPort: named target ports), EndpointSlice readiness",
            "istio/istio pilot/pkg/features/experimental.go (PILOT_AUTO_SEND_UNHEALTHY_ENDPOINTS, 1.31)",
            "envoyproxy/envoy source/common/router/router.cc (no_healthy_upstream)",
        ],
        needs: Needs::Config,
        check: rules::service_without_endpoints::check,
    },
    Declaration {
        cause: Cause::SubsetSelectsNoPods,
        id: "SUBSET_SELECTS_NO_PODS",
        title: "a route sends requests to a DestinationRule subset whose labels select no ready pod",
        severities: &[Severity::Error],
        meaning: "A reachable route of the VirtualService a caller gets sends requests to a subset whose labels match no ready pod of the service (no pod carries them, or those that do are not ready) while the service has ready pods: the subset cluster is empty. istioctl analyze's IST0173 territory, reported only when a route leads there.",
        signature: "client `503 UH` (`no_healthy_upstream`) on `outbound|port|subset|host`",
        evidence: &[
            Weight::ConfigRouteCertain,
            Weight::ClientLog,
            Weight::HostHealth,
            Weight::PredictionContradicted,
            Weight::ConfigHidden,
        ],
        fix: &[FixKind::EditRoute],
        sources: &[
            "istio/istio pilot/pkg/networking/core/cluster_builder.go (subset clusters, endpoints by subset labels)",
            "istio/istio pkg/config/analysis/analyzers/destinationrule/subset.go (IST0173)",
            "envoyproxy/envoy source/common/router/router.cc (no_healthy_upstream)",
        ],
        needs: Needs::Config,
        check: rules::subset_selects_no_pods::check,
    },
    Declaration {
        cause: Cause::RouteToUnknownHost,
        id: "ROUTE_TO_UNKNOWN_HOST",
        title: "a route sends requests to a host or port no registry the caller sees has",
        severities: &[Severity::Error],
        meaning: "A reachable route of the VirtualService a caller gets names a destination host no Service or ServiceEntry visible to it has (absent, not exported to its namespace, only under a wildcard ServiceEntry, an ExternalName alias of an unknown host), or a port the service does not have (PORT_NOT_IN_SERVICE): istiod names the cluster but never builds it for that caller.",
        signature: "client `503 NC` (`cluster_not_found`)",
        evidence: &[
            Weight::ConfigRouteCertain,
            Weight::ClientLog,
            Weight::DistinctiveFlag,
            Weight::ClientClusterMissing,
            Weight::PredictionContradicted,
            Weight::ConfigHidden,
        ],
        fix: &[FixKind::EditRoute],
        sources: &[
            "istio/istio pilot/pkg/networking/core/route/route.go (GetDestinationCluster)",
            "istio/istio pilot/pkg/networking/core/cluster.go (buildOutboundClusters)",
            "istio/istio pilot/pkg/model/push_context.go (IsServiceVisible)",
            "envoyproxy/envoy source/common/router/router.cc (cluster_not_found)",
        ],
        needs: Needs::Config,
        check: rules::route_to_unknown_host::check,
    },
    Declaration {
        cause: Cause::FaultInjection503,
        id: "FAULT_INJECTION_503",
        title: "a route injects HTTP 503 aborts on purpose",
        severities: &[Severity::Warning, Severity::Info, Severity::Error],
        meaning: "A reachable route of the VirtualService a caller gets has `fault.abort` with `httpStatus: 503` and a percentage above 0: the caller's sidecar answers that share of requests itself. The 503s are by design (a warning when every request or logged ones are aborted, information for a share; an error when the proxies show 503s for the target and nothing else explains them, so the report never exits 0 in front of 503s). Without a percentage nothing is aborted.",
        signature: "client `503 FI` (`fault_filter_abort`)",
        evidence: &[Weight::ConfigRouteCertain, Weight::ClientLog, Weight::DistinctiveFlag],
        fix: &[FixKind::EditRoute],
        sources: &[
            "istio/istio pilot/pkg/networking/core/route/route.go (TranslateFault)",
            "istio/istio#36303, #39969 (no percentage: nothing aborted)",
            "envoyproxy/envoy source/extensions/filters/http/fault/fault_filter.cc",
        ],
        needs: Needs::Config,
        check: rules::fault_injection_503::check,
    },
    Declaration {
        cause: Cause::VirtualServiceShadowed,
        id: "VIRTUAL_SERVICE_SHADOWED",
        title: "another VirtualService wins the target's host for some callers",
        severities: &[Severity::Warning],
        meaning: "Two VirtualServices claim the target's host for the same callers; istiod keeps the first in its order (private, exported by name, public; creation time within each; an exact host over a wildcard) and drops the other. It fails no request by itself; edits to the shadowed one change nothing.",
        signature: "none in the data plane: the shadowed VirtualService's routes are absent from the callers' route tables",
        evidence: &[Weight::ConfigAdvisory],
        fix: &[FixKind::EditRoute],
        sources: &[
            "istio/istio pilot/pkg/networking/core/httproute.go (BuildSidecarOutboundVirtualHosts: duplicate domains)",
            "istio/istio pilot/pkg/model/sidecar.go (computeWildcardHostVirtualServiceIndex)",
        ],
        needs: Needs::Config,
        check: rules::virtual_service_shadowed::check,
    },
    Declaration {
        cause: Cause::RouteUnreachable,
        id: "ROUTE_UNREACHABLE",
        title: "a route comes after a catch-all route and is never taken",
        severities: &[Severity::Warning],
        meaning: "A route of the VirtualService that applies to the target's host (for sidecars or a gateway) follows a route matching every request: Envoy takes the first match, so it never applies. It fails no request by itself.",
        signature: "none in the data plane: requests take the catch-all",
        evidence: &[Weight::ConfigAdvisory],
        fix: &[FixKind::EditRoute],
        sources: &[
            "istio/istio pilot/pkg/networking/core/route/route.go (BuildHTTPRoutesForVirtualService, IsCatchAllRoute, SortVHostRoutes)",
            "envoyproxy/envoy source/common/router/config_impl.cc (first matching route)",
        ],
        needs: Needs::Config,
        check: rules::route_unreachable::check,
    },
    Declaration {
        cause: Cause::GatewayRouteMissing,
        id: "GATEWAY_ROUTE_MISSING",
        title: "a gateway meant to reach the target has no route for one of its hosts",
        severities: &[Severity::Info],
        meaning: "A gateway a VirtualService routing to the target binds (or whose server lists the target's host) builds no virtual host for a host: the gateway answers 404, not 503; or the VirtualService binds a Gateway that does not exist.",
        signature: "gateway `404 NR` (`route_not_found`)",
        evidence: &[Weight::ConfigAdvisory, Weight::ClientLog],
        fix: &[FixKind::EditRoute],
        sources: &[
            "istio/istio pilot/pkg/networking/core/gateway.go (buildGatewayHTTPRouteConfig)",
            "envoyproxy/envoy source/common/router/config_impl.cc (findVirtualHost: route_not_found)",
            "kiali KIA1102 (VirtualService gateway not found)",
        ],
        needs: Needs::Config,
        check: rules::gateway_route_missing::check,
    },
    Declaration {
        cause: Cause::ConfigRejected,
        id: "CONFIG_REJECTED",
        title: "a sidecar rejected (NACKed) config it was sent",
        severities: &[Severity::Error, Severity::Warning],
        meaning: "A sidecar of the target or of a caller holds an `error_state` in `/config_dump`: Envoy refused the last update of a listener, cluster or endpoint assignment and keeps running the version it accepted before (or nothing). The API objects then describe config the proxy does not run. An error when the resource is the server's inbound side (`virtualInbound`, `inbound|…`) or a caller's way to the target (its `outbound|port|…|host` cluster or endpoints, the listener of that port); a warning elsewhere. Names the EnvoyFilters that apply to the workload, the one patching that kind of resource first.",
        signature: "`error_state` (`details`, `last_update_attempt`) next to a dynamic listener or cluster in `/config_dump`; `istioctl proxy-status` shows the NACK; calls fail as the older config dictates",
        evidence: &[Weight::ConfigRejected, Weight::ClientLog, Weight::ServerLog, Weight::Metrics],
        fix: &[FixKind::Investigate],
        sources: &[
            "envoyproxy/envoy api/envoy/admin/v3/config_dump_shared.proto (UpdateFailureState)",
            "envoyproxy/envoy api/envoy/admin/v3/listener.proto (ListenersConfigDump.DynamicListener: active_state, error_state)",
            "istio/istio pilot/pkg/model/push_context.go (EnvoyFilters, getMatchedEnvoyFilters)",
            "istio/istio pilot/pkg/networking/core/envoyfilter (patches applied without Envoy's validation)",
        ],
        needs: Needs::DataPlane,
        check: rules::config_rejected::check,
    },
    Declaration {
        cause: Cause::Unexplained503s,
        id: "UNEXPLAINED_503S",
        title: "503s were seen for the target and no rule explains them",
        severities: &[Severity::Error],
        meaning: "Istio's standard metrics (`istio_requests_total`, either reporter) or the access logs of the target's sidecars or its callers' show 503 responses for the target, and no other finding explains them (an error, or a fault abort, ejected hosts, a keep-alive race, a pool limit: such a warning or note is then raised to an error). The report says so instead of \"no cause\", naming for each kind of 503 the hop that produced it: a response flag from `reporter=source` is the caller's sidecar, from `reporter=destination` the server's sidecar; no flag (`-`, `via_upstream`) means the 503 was relayed from further up (from the server's side: the app).",
        signature: "`istio_requests_total{response_code=\"503\"}` or access-log lines `503` for the target",
        evidence: &[Weight::Metrics, Weight::ClientLog, Weight::ServerLog],
        fix: &[FixKind::Investigate],
        sources: &[
            "istio/proxy testdata/metric (istio_requests_total labels: reporter, response_flags)",
            "envoyproxy/envoy source/common/stream_info/utility.cc (response flags)",
            "envoyproxy/envoy source/common/router/router.cc (via_upstream)",
        ],
        needs: Needs::DataPlane,
        check: rules::unexplained_503s::check,
    },
];

impl Cause {
    pub fn declaration(self) -> &'static Declaration {
        CATALOG
            .iter()
            .find(|d| d.cause == self)
            .expect("every Cause is declared in CATALOG (tested)")
    }

    /// The stable id.
    pub fn id(self) -> &'static str {
        self.declaration().id
    }
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

impl Serialize for Cause {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.id())
    }
}

const DOC_INTRO: &str = "Every finding has a stable `id`, a `severity` (`error` = causes 503s,
`warning` = contributes or makes them likely, `info`), a `confidence` (0–99)
and the kinds of evidence it is made of (`confidence_basis`), a one-line
`claim`, the precedence chain in plain words (`explanation`), `evidence`
lines tagged `config` (Istio/Kubernetes objects: what *should* happen) or
`data-plane` (what a sidecar runs or did), and `fixes`: the fix chosen after
checking every candidate against the mesh, and the candidates rejected with
the calls they would break (docs/fixes.md). Replicas of one client workload
are folded into one finding.

Ranking: severity, then a sidecar's rejected config (`CONFIG_REJECTED`, the
cause other findings on its path follow from), then confidence, then id,
then subject (stable across runs).

Each cause says what it needs: `config` causes are found from Kubernetes and
Istio objects alone (sidecars, when read, confirm them) and are the ones
`kubectl mesh503 scan` runs over every Service (docs/scan.md); `data plane`
causes need the sidecars' logs or admin output and only `diagnose` finds them.
";

/// `docs/findings.md`, generated from [`CATALOG`] and [`confidence::WEIGHTS`].
pub fn render_markdown() -> String {
    let mut s = String::from(
        "# Findings\n\n<!-- Generated from src/analyze/catalog.rs and src/analyze/confidence.rs.\n     Do not edit: run `UPDATE_DOCS=1 cargo test --lib catalog`. -->\n\n",
    );
    s.push_str(DOC_INTRO);
    s.push_str("\n## Confidence\n\nA finding's confidence is the sum of the weights of the evidence it holds,\nclamped to 0–99 (src/analyze/confidence.rs):\n\n");
    s.push_str(&confidence::markdown_table());
    s.push_str("\n## Causes\n\n| id | severity | what | signature |\n|---|---|---|---|\n");
    for d in CATALOG {
        let sev: Vec<String> = d.severities.iter().map(|x| x.to_string()).collect();
        // A `|` inside a table cell, even in a code span, ends the cell.
        s.push_str(&format!(
            "| `{}` | {} | {} | {} |\n",
            d.id,
            sev.join(" / "),
            d.title.replace('|', "\\|"),
            d.signature.replace('|', "\\|")
        ));
    }
    for d in CATALOG {
        s.push_str(&format!("\n### `{}`\n\n{}\n\n", d.id, d.meaning));
        s.push_str(&format!("- Signature: {}\n", d.signature));
        s.push_str(&format!("- Needs: {}\n", d.needs.describe()));
        let ev: Vec<String> = d
            .evidence
            .iter()
            .map(|w| format!("`{}`", w.decl().name))
            .collect();
        s.push_str(&format!("- Evidence: {}\n", ev.join(", ")));
        let fixes: Vec<String> = d
            .fix
            .iter()
            .enumerate()
            .map(|(i, f)| format!("{}. {}", i + 1, f.describe()))
            .collect();
        s.push_str(&format!(
            "- Fix{}: {}\n",
            if fixes.len() > 1 {
                "es, tried in this order (docs/fixes.md)"
            } else {
                ""
            },
            if fixes.is_empty() {
                FixKind::Investigate.describe().to_string()
            } else {
                fixes.join("; ")
            }
        ));
        s.push_str("- Sources:\n");
        for src in d.sources {
            s.push_str(&format!("  - {src}\n"));
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [Cause; 20] = [
        Cause::MtlsPlaintextToStrict,
        Cause::MtlsToPlaintextServer,
        Cause::TlsOriginationToSidecar,
        Cause::ClientWithoutSidecarToStrict,
        Cause::ProxyConfigDiffers,
        Cause::CircuitBreakerOverflow,
        Cause::NoHealthyUpstream,
        Cause::SubsetNotFound,
        Cause::AppNotListening,
        Cause::UpstreamConnectionReset,
        Cause::PortProtocolUndeclared,
        Cause::ServiceWithoutEndpoints,
        Cause::SubsetSelectsNoPods,
        Cause::RouteToUnknownHost,
        Cause::FaultInjection503,
        Cause::VirtualServiceShadowed,
        Cause::RouteUnreachable,
        Cause::GatewayRouteMissing,
        Cause::ConfigRejected,
        Cause::Unexplained503s,
    ];

    #[test]
    fn every_cause_is_declared_exactly_once_with_a_unique_id() {
        assert_eq!(CATALOG.len(), ALL.len());
        for c in ALL {
            assert_eq!(CATALOG.iter().filter(|d| d.cause == c).count(), 1, "{c:?}");
            let id = c.id();
            assert_eq!(CATALOG.iter().filter(|d| d.id == id).count(), 1, "{id}");
            assert!(
                id.chars()
                    .all(|ch| ch.is_ascii_uppercase() || ch.is_ascii_digit() || ch == '_'),
                "{id}"
            );
            let d = c.declaration();
            assert!(!d.severities.is_empty() && !d.sources.is_empty() && !d.evidence.is_empty());
            assert_eq!(serde_json::to_value(c).unwrap(), id);
        }
    }

    /// `docs/findings.md` is generated; `UPDATE_DOCS=1 cargo test --lib catalog` rewrites it.
    #[test]
    fn docs_findings_md_is_generated_from_the_catalog() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/findings.md");
        let want = render_markdown();
        if std::env::var_os("UPDATE_DOCS").is_some() {
            std::fs::write(&path, &want).unwrap();
            return;
        }
        let have = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            have == want,
            "docs/findings.md is stale: run `UPDATE_DOCS=1 cargo test --lib catalog` and commit it"
        );
    }
}
