//! `DestinationRule`: typed view, Istio's rule lookup for a client, and the
//! effective traffic policy for a port/subset.
//!
//! Sources (istio/istio, master as of 2026-08, same logic since ~1.6 with the
//! exportTo refinements of 1.10+):
//! - `pilot/pkg/model/push_context.go`: `setDestinationRules` (indexes),
//!   `destinationRule` (the namespace search order),
//!   `getExportedDestinationRuleFromNamespace`, `sortConfigBySelectorAndCreationTime`;
//! - `pilot/pkg/model/destination_rule.go`: `mergeDestinationRule`, `MergeTrafficPolicy`;
//! - `pilot/pkg/model/sidecar.go`: `SidecarScope.DestinationRule` (workloadSelector);
//! - `pilot/pkg/networking/util/util.go`: `MergeSubsetTrafficPolicy`,
//!   `GetPortLevelTrafficPolicy`;
//! - istio.io docs `ops/best-practices/traffic-management` ("Cross-namespace
//!   configuration", "Split large virtual services and destination rules").

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde_json::Value;

use super::host;
use super::object::{format_labels, labels_match, Meta, ObjectError, ObjectRef, Reader};

/// Default root namespace (`meshConfig.rootNamespace`).
pub const DEFAULT_ROOT_NAMESPACE: &str = "istio-system";

// ---------------------------------------------------------------------------
// Typed spec
// ---------------------------------------------------------------------------

/// A `networking.istio.io` `DestinationRule` (v1alpha3, v1beta1 and v1 share the schema).
#[derive(Debug, Clone, PartialEq)]
pub struct DestinationRule {
    pub meta: Meta,
    /// `spec.host` as written.
    pub host: String,
    /// `spec.host` resolved the way istiod does ([`host::fqdn`]).
    pub host_fqdn: String,
    pub export_to: Vec<String>,
    /// `spec.workloadSelector.matchLabels`; `None` when `workloadSelector` is absent.
    /// Like Istio (`GetWorkloadSelector() != nil`), a present but empty selector
    /// selects every client of the rule's namespace and keeps the rule private.
    pub workload_selector: Option<BTreeMap<String, String>>,
    pub traffic_policy: Option<TrafficPolicy>,
    pub subsets: Vec<Subset>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Subset {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub traffic_policy: Option<TrafficPolicy>,
}

/// `spec.trafficPolicy` (also used for a subset's policy).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TrafficPolicy {
    pub tls: Option<ClientTls>,
    pub connection_pool: Option<ConnectionPool>,
    pub outlier_detection: Option<OutlierDetection>,
    pub load_balancer: Option<LoadBalancer>,
    pub port_level_settings: Vec<PortTrafficPolicy>,
}

/// One `portLevelSettings` entry. Its `port.number` is a **service** port.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PortTrafficPolicy {
    pub port: Option<u32>,
    /// `port.name` (accepted by Istio ≤1.0 only; kept for reporting).
    pub port_name: Option<String>,
    pub tls: Option<ClientTls>,
    pub connection_pool: Option<ConnectionPool>,
    pub outlier_detection: Option<OutlierDetection>,
    pub load_balancer: Option<LoadBalancer>,
}

/// `ClientTLSSettings.mode`. An absent mode is `DISABLE` (proto enum value 0).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsMode {
    Disable,
    Simple,
    Mutual,
    IstioMutual,
    /// A value this version does not know, kept verbatim.
    Other(String),
}

impl TlsMode {
    pub fn parse(s: &str) -> TlsMode {
        match s {
            "DISABLE" => TlsMode::Disable,
            "SIMPLE" => TlsMode::Simple,
            "MUTUAL" => TlsMode::Mutual,
            "ISTIO_MUTUAL" => TlsMode::IstioMutual,
            other => TlsMode::Other(other.to_string()),
        }
    }
    pub fn as_str(&self) -> &str {
        match self {
            TlsMode::Disable => "DISABLE",
            TlsMode::Simple => "SIMPLE",
            TlsMode::Mutual => "MUTUAL",
            TlsMode::IstioMutual => "ISTIO_MUTUAL",
            TlsMode::Other(s) => s,
        }
    }
}

impl fmt::Display for TlsMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `trafficPolicy.tls` (`ClientTLSSettings`).
#[derive(Debug, Clone, PartialEq)]
pub struct ClientTls {
    pub mode: TlsMode,
    pub sni: Option<String>,
    pub subject_alt_names: Vec<String>,
    pub credential_name: Option<String>,
    pub ca_certificates: Option<String>,
    pub client_certificate: Option<String>,
    pub insecure_skip_verify: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct ConnectionPool {
    pub tcp: Option<TcpSettings>,
    pub http: Option<HttpSettings>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct TcpSettings {
    pub max_connections: Option<i64>,
    pub connect_timeout: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct HttpSettings {
    pub http1_max_pending_requests: Option<i64>,
    pub http2_max_requests: Option<i64>,
    pub max_requests_per_connection: Option<i64>,
    pub max_retries: Option<i64>,
    pub idle_timeout: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct OutlierDetection {
    /// Deprecated (HTTP 502/503/504 only); still honored.
    pub consecutive_errors: Option<i64>,
    pub consecutive_5xx_errors: Option<u32>,
    pub consecutive_gateway_errors: Option<u32>,
    pub interval: Option<String>,
    pub base_ejection_time: Option<String>,
    pub max_ejection_percent: Option<i64>,
    pub min_health_percent: Option<i64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LoadBalancer {
    /// `simple` (`ROUND_ROBIN`, `LEAST_REQUEST`, `PASSTHROUGH`, …).
    pub simple: Option<String>,
    /// The whole `loadBalancer` object as written.
    pub raw: Value,
}

impl DestinationRule {
    /// Parse a raw `DestinationRule` object; short hosts resolve with `cluster.local`.
    pub fn from_value(v: &Value) -> Result<DestinationRule, ObjectError> {
        Self::from_value_with_domain(v, host::DEFAULT_DOMAIN_SUFFIX)
    }

    pub fn from_value_with_domain(
        v: &Value,
        domain_suffix: &str,
    ) -> Result<DestinationRule, ObjectError> {
        let meta = Meta::from_value(v)?;
        let id = meta.id();
        if !meta.kind.is_empty() && meta.kind != "DestinationRule" {
            return Err(ObjectError::WrongKind {
                object: id,
                expected: "DestinationRule".into(),
            });
        }
        let r = Reader::new(&id, v);
        let host_written = r.req_str("spec.host")?;
        let host_fqdn = host::fqdn(&host_written, &meta.namespace, domain_suffix);
        let export_to = r.str_list("spec.exportTo")?;
        let workload_selector = match r.opt_object("spec.workloadSelector")? {
            Some(_) => Some(r.str_map("spec.workloadSelector.matchLabels")?),
            None => None,
        };
        let traffic_policy = match r.opt_object("spec.trafficPolicy")? {
            Some(tp) => Some(parse_traffic_policy(
                &r.at(tp, "spec.trafficPolicy").reader(),
            )?),
            None => None,
        };
        let mut subsets = Vec::new();
        for (i, s) in r.opt_array("spec.subsets")?.iter().enumerate() {
            let owned = r.at(s, &format!("spec.subsets[{i}]"));
            let sr = owned.reader();
            if !s.is_object() {
                return Err(r.type_err(&format!("spec.subsets[{i}]"), "an object", s));
            }
            let name = sr.req_str("name")?;
            let labels = sr.str_map("labels")?;
            let traffic_policy = match sr.opt_object("trafficPolicy")? {
                Some(tp) => Some(parse_traffic_policy(&sr.at(tp, "trafficPolicy").reader())?),
                None => None,
            };
            subsets.push(Subset {
                name,
                labels,
                traffic_policy,
            });
        }
        Ok(DestinationRule {
            meta,
            host: host_written,
            host_fqdn,
            export_to,
            workload_selector,
            traffic_policy,
            subsets,
        })
    }

    pub fn object_ref(&self) -> ObjectRef {
        self.meta.object_ref()
    }

    /// `ns/name`.
    pub fn key(&self) -> String {
        self.meta.key()
    }

    /// Top-level TLS mode, if any (`None` = the rule sets no `tls`).
    pub fn top_level_tls_mode(&self) -> Option<&TlsMode> {
        self.traffic_policy.as_ref()?.tls.as_ref().map(|t| &t.mode)
    }

    pub fn subset(&self, name: &str) -> Option<&Subset> {
        self.subsets.iter().find(|s| s.name == name)
    }

    /// Visible to clients of its own namespace: exportTo empty, `*`, `.` or its own
    /// namespace (push_context.go `setDestinationRules`, `namespaceLocal` index).
    /// Rules with a workloadSelector are always namespace-private.
    fn visible_in_own_namespace(&self) -> bool {
        if self.workload_selector.is_some() {
            return true;
        }
        self.export_to.is_empty()
            || self
                .export_to
                .iter()
                .any(|e| e == "*" || e == "." || *e == self.meta.namespace)
    }

    /// Private to its own namespace (`exportTo: ["."]` or its own namespace alone,
    /// or a workloadSelector) — not in the `exportedByNamespace` index.
    /// (Assumes the mesh default exportTo is `*`.)
    fn private_only(&self) -> bool {
        if self.workload_selector.is_some() {
            return true;
        }
        self.export_to.len() == 1
            && (self.export_to[0] == "." || self.export_to[0] == self.meta.namespace)
    }

    /// Exported to clients in `client_ns` (push_context.go
    /// `getExportedDestinationRuleFromNamespace`: empty, `*`, or naming the namespace).
    fn exported_to(&self, client_ns: &str) -> bool {
        if self.workload_selector.is_some() {
            return false;
        }
        self.export_to.is_empty() || self.export_to.iter().any(|e| e == "*" || e == client_ns)
    }

    fn describe_tls(&self) -> String {
        describe_tls_of(self.traffic_policy.as_ref())
    }
}

fn describe_tls_of(tp: Option<&TrafficPolicy>) -> String {
    match tp.and_then(|t| t.tls.as_ref()) {
        Some(t) => format!("tls {}", t.mode),
        None => "no tls".to_string(),
    }
}

fn parse_traffic_policy(r: &Reader<'_>) -> Result<TrafficPolicy, ObjectError> {
    let mut tp = TrafficPolicy {
        tls: parse_tls(r, "tls")?,
        connection_pool: parse_connection_pool(r, "connectionPool")?,
        outlier_detection: parse_outlier(r, "outlierDetection")?,
        load_balancer: parse_lb(r, "loadBalancer")?,
        port_level_settings: Vec::new(),
    };
    for (i, p) in r.opt_array("portLevelSettings")?.iter().enumerate() {
        let rel = format!("portLevelSettings[{i}]");
        if !p.is_object() {
            return Err(r.type_err(&rel, "an object", p));
        }
        let owned = r.at(p, &rel);
        let pr = owned.reader();
        let port = pr.opt_u32("port.number")?;
        let port_name = pr.opt_str("port.name")?;
        tp.port_level_settings.push(PortTrafficPolicy {
            port,
            port_name,
            tls: parse_tls(&pr, "tls")?,
            connection_pool: parse_connection_pool(&pr, "connectionPool")?,
            outlier_detection: parse_outlier(&pr, "outlierDetection")?,
            load_balancer: parse_lb(&pr, "loadBalancer")?,
        });
    }
    Ok(tp)
}

fn parse_tls(r: &Reader<'_>, rel: &str) -> Result<Option<ClientTls>, ObjectError> {
    let Some(v) = r.opt_object(rel)? else {
        return Ok(None);
    };
    let owned = r.at(v, rel);
    let t = owned.reader();
    let mode = match t.opt_str("mode")? {
        Some(m) => TlsMode::parse(&m),
        None => TlsMode::Disable,
    };
    Ok(Some(ClientTls {
        mode,
        sni: t.opt_str("sni")?,
        subject_alt_names: t.str_list("subjectAltNames")?,
        credential_name: t.opt_str("credentialName")?,
        ca_certificates: t.opt_str("caCertificates")?,
        client_certificate: t.opt_str("clientCertificate")?,
        insecure_skip_verify: t.opt_bool("insecureSkipVerify")?,
    }))
}

fn parse_connection_pool(r: &Reader<'_>, rel: &str) -> Result<Option<ConnectionPool>, ObjectError> {
    let Some(v) = r.opt_object(rel)? else {
        return Ok(None);
    };
    let owned = r.at(v, rel);
    let c = owned.reader();
    let tcp = match c.opt_object("tcp")? {
        Some(_) => Some(TcpSettings {
            max_connections: c.opt_i64("tcp.maxConnections")?,
            connect_timeout: c.opt_scalar_string("tcp.connectTimeout")?,
        }),
        None => None,
    };
    let http = match c.opt_object("http")? {
        Some(_) => Some(HttpSettings {
            http1_max_pending_requests: c.opt_i64("http.http1MaxPendingRequests")?,
            http2_max_requests: c.opt_i64("http.http2MaxRequests")?,
            max_requests_per_connection: c.opt_i64("http.maxRequestsPerConnection")?,
            max_retries: c.opt_i64("http.maxRetries")?,
            idle_timeout: c.opt_scalar_string("http.idleTimeout")?,
        }),
        None => None,
    };
    Ok(Some(ConnectionPool { tcp, http }))
}

fn parse_outlier(r: &Reader<'_>, rel: &str) -> Result<Option<OutlierDetection>, ObjectError> {
    let Some(v) = r.opt_object(rel)? else {
        return Ok(None);
    };
    let owned = r.at(v, rel);
    let o = owned.reader();
    // consecutive5xxErrors / consecutiveGatewayErrors are UInt32Value wrappers:
    // JSON carries either a bare number or {"value": n}.
    let wrapped = |name: &str| -> Result<Option<u32>, ObjectError> {
        match o.get(name) {
            Some(Value::Object(_)) => o.opt_u32(&format!("{name}.value")),
            _ => o.opt_u32(name),
        }
    };
    Ok(Some(OutlierDetection {
        consecutive_errors: o.opt_i64("consecutiveErrors")?,
        consecutive_5xx_errors: wrapped("consecutive5xxErrors")?,
        consecutive_gateway_errors: wrapped("consecutiveGatewayErrors")?,
        interval: o.opt_scalar_string("interval")?,
        base_ejection_time: o.opt_scalar_string("baseEjectionTime")?,
        max_ejection_percent: o.opt_i64("maxEjectionPercent")?,
        min_health_percent: o.opt_i64("minHealthPercent")?,
    }))
}

fn parse_lb(r: &Reader<'_>, rel: &str) -> Result<Option<LoadBalancer>, ObjectError> {
    let Some(v) = r.opt_object(rel)? else {
        return Ok(None);
    };
    let owned = r.at(v, rel);
    Ok(Some(LoadBalancer {
        simple: owned.reader().opt_str("simple")?,
        raw: v.clone(),
    }))
}

// ---------------------------------------------------------------------------
// Lookup: which rule applies for a client
// ---------------------------------------------------------------------------

/// Where in Istio's search the winning rule was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LookupLevel {
    /// The client's own namespace (all its rules, `exportTo: "."` included).
    ClientNamespace,
    /// The service's namespace (rules exported to the client).
    ServiceNamespace,
    /// `meshConfig.rootNamespace` (rules exported to the client).
    RootNamespace,
}

impl fmt::Display for LookupLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LookupLevel::ClientNamespace => "the client's namespace",
            LookupLevel::ServiceNamespace => "the service's namespace",
            LookupLevel::RootNamespace => "the root namespace",
        })
    }
}

/// Why a rule that names this host did not (fully) apply.
#[derive(Debug, Clone, PartialEq)]
pub enum ShadowReason {
    /// A rule in a namespace Istio searches earlier matched; no field falls back.
    EarlierNamespaceWon { winner: String, level: LookupLevel },
    /// Same namespace, a more specific host matched.
    LessSpecificHost { winner_host: String },
    /// A workloadSelector rule selecting this client was preferred.
    SelectorRuleWon { winner: String },
    /// Its workloadSelector does not select this client.
    SelectorDoesNotSelectClient,
    /// A workloadSelector rule outside the client's namespace (they only apply there).
    SelectorOutsideClientNamespace,
    /// Merged with an older rule for the same host: its top-level trafficPolicy was discarded.
    TrafficPolicyDiscardedInMerge { kept_from: String },
    /// Not exported to the client's namespace.
    NotExported,
    /// A more specific rule for this host in the same namespace is not exported
    /// to the client, so Istio skipped the whole namespace.
    NamespaceSkippedForUnexportedRule { unexported: String },
    /// In a namespace Istio does not search for this client/service.
    NamespaceNotSearched,
    /// Its exportTo hides it even from its own namespace.
    HiddenFromOwnNamespace,
}

/// A rule that names the host but lost, with a plain-words explanation.
#[derive(Debug, Clone, PartialEq)]
pub struct Shadowed {
    pub rule: DestinationRule,
    pub reason: ShadowReason,
    pub explanation: String,
}

/// A subset of the merged rule, with the rule that defined it.
#[derive(Debug, Clone, PartialEq)]
pub struct SelectedSubset {
    pub subset: Subset,
    /// `ns/name` of the DestinationRule that defined it.
    pub from: String,
}

/// The outcome of Istio's DestinationRule lookup for one client and one service.
#[derive(Debug, Clone, PartialEq)]
pub struct Selection {
    pub level: LookupLevel,
    /// Namespace the applied rule(s) live in.
    pub namespace: String,
    /// The (resolved) host of the applied rule(s), e.g. `*.local`.
    pub matched_host: String,
    /// Applied rules, merge order (oldest first). Never empty.
    pub rules: Vec<DestinationRule>,
    /// Whose top-level trafficPolicy is in force (`ns/name`); `None` if no rule had one.
    pub policy_from: Option<String>,
    /// The merged top-level traffic policy.
    pub traffic_policy: Option<TrafficPolicy>,
    /// Merged subsets (first definition of a name wins).
    pub subsets: Vec<SelectedSubset>,
    /// Other rules naming this host that lost or are invisible to this client.
    pub shadowed: Vec<Shadowed>,
    /// Merge notes (duplicate subsets dropped, …).
    pub notes: Vec<String>,
    /// The client namespace and service the lookup was for (for explanations).
    pub client_namespace: String,
    pub service_fqdn: String,
}

/// The whole lookup, including the case where no rule applies.
#[derive(Debug, Clone, PartialEq)]
pub struct Lookup {
    pub selection: Option<Selection>,
    /// When nothing applies: rules that name the host but are out of reach, and why.
    /// (When something applies, they are in `selection.shadowed`.)
    pub unapplied: Vec<Shadowed>,
    /// Plain-words summary of why nothing applies (when `selection` is `None`).
    pub why_none: Option<String>,
}

/// Istio's DestinationRule lookup; `None` when no rule applies to this client.
/// See [`lookup`] for the details and for the rules that lost.
pub fn select(
    rules: &[DestinationRule],
    client_ns: &str,
    client_labels: &BTreeMap<String, String>,
    service_fqdn: &str,
    service_ns: &str,
    root_ns: &str,
) -> Option<Selection> {
    lookup(
        rules,
        client_ns,
        client_labels,
        service_fqdn,
        service_ns,
        root_ns,
    )
    .selection
}

/// Istio's DestinationRule lookup for `client_ns`/`client_labels` calling
/// `service_fqdn` (a Kubernetes service in `service_ns`).
///
/// Order (push_context.go `destinationRule`):
/// 1. the client's namespace: every rule visible in it (`exportTo` empty, `*`,
///    `.`, or the namespace) — for a client *in* the root namespace only the
///    root namespace's private rules;
/// 2. the service's namespace: rules not private to it and exported to the client;
/// 3. the root namespace (default `istio-system`): same as 2.
///
/// The first namespace with a matching host wins and nothing falls back to a
/// broader rule. Within a namespace the most specific host wins
/// (`MostSpecificHostMatch`). In steps 2–3, if that most specific rule is not
/// exported to the client the whole namespace yields nothing (Istio filters
/// after picking the host).
///
/// workloadSelector rules count only in the client's namespace, outbound, and
/// beat the selector-less rule when they select the client
/// (sidecar.go `SidecarScope.DestinationRule`). If the most specific host in
/// the client's namespace has only selector rules and none selects the
/// client, **no** rule applies (the search already stopped in that namespace).
///
/// Several selector-less rules for the same host in the same namespace are
/// merged (destination_rule.go `mergeDestinationRule`): subsets concatenated
/// (duplicate names dropped), the oldest rule's top-level trafficPolicy wins
/// (creationTimestamp, then name), later ones are discarded; a later rule's
/// policy is used only if no earlier rule had one.
///
/// Simplifications: the mesh default `exportTo` is assumed to be `*`;
/// Istio ≥1.13's "enhanced merge" (rules with different `exportTo` kept apart)
/// is not modelled; selector and selector-less rules are not merged together.
pub fn lookup(
    rules: &[DestinationRule],
    client_ns: &str,
    client_labels: &BTreeMap<String, String>,
    service_fqdn: &str,
    service_ns: &str,
    root_ns: &str,
) -> Lookup {
    let root_ns = if root_ns.is_empty() {
        DEFAULT_ROOT_NAMESPACE
    } else {
        root_ns
    };
    // Only rules whose host covers the service matter at all.
    let mut matching: Vec<&DestinationRule> = rules
        .iter()
        .filter(|r| host::matches(&r.host_fqdn, service_fqdn))
        .collect();
    matching.sort_by(|a, b| a.meta.age_order(&b.meta));

    let mut handled: BTreeSet<String> = BTreeSet::new();
    let mut shadowed: Vec<Shadowed> = Vec::new();
    let push = |shadowed: &mut Vec<Shadowed>,
                handled: &mut BTreeSet<String>,
                r: &DestinationRule,
                reason: ShadowReason,
                explanation: String| {
        if handled.insert(r.key()) {
            shadowed.push(Shadowed {
                rule: r.clone(),
                reason,
                explanation,
            });
        }
    };

    let mut found: Option<(LookupLevel, String, String, Vec<&DestinationRule>)> = None;
    let mut why_none: Option<String> = None;

    // ---- step 1: the client's namespace
    {
        let pool: Vec<&DestinationRule> = matching
            .iter()
            .copied()
            .filter(|r| r.meta.namespace == client_ns)
            .filter(|r| {
                if client_ns == root_ns {
                    r.private_only()
                } else {
                    r.visible_in_own_namespace()
                }
            })
            .collect();
        for r in matching.iter().filter(|r| r.meta.namespace == client_ns) {
            if client_ns != root_ns && !r.visible_in_own_namespace() {
                push(
                    &mut shadowed,
                    &mut handled,
                    r,
                    ShadowReason::HiddenFromOwnNamespace,
                    format!(
                        "DestinationRule {} is exported only to {:?}, not to its own namespace {}, so clients in {} do not see it",
                        r.key(),
                        r.export_to,
                        r.meta.namespace,
                        client_ns
                    ),
                );
            }
        }
        if let Some(best) =
            host::most_specific_match(service_fqdn, pool.iter().map(|r| r.host_fqdn.as_str()))
        {
            let best = best.to_string();
            let group: Vec<&DestinationRule> = pool
                .iter()
                .copied()
                .filter(|r| r.host_fqdn == best)
                .collect();
            for r in pool.iter().filter(|r| r.host_fqdn != best) {
                push(
                    &mut shadowed,
                    &mut handled,
                    r,
                    ShadowReason::LessSpecificHost {
                        winner_host: best.clone(),
                    },
                    format!(
                        "DestinationRule {} (host {}) loses to the more specific host {} in the same namespace",
                        r.key(),
                        r.host_fqdn,
                        best
                    ),
                );
            }
            let selecting: Vec<&DestinationRule> = group
                .iter()
                .copied()
                .filter(|r| {
                    r.workload_selector
                        .as_ref()
                        .is_some_and(|s| labels_match(s, client_labels))
                })
                .collect();
            for r in group.iter().filter(|r| {
                r.workload_selector
                    .as_ref()
                    .is_some_and(|s| !labels_match(s, client_labels))
            }) {
                push(
                    &mut shadowed,
                    &mut handled,
                    r,
                    ShadowReason::SelectorDoesNotSelectClient,
                    format!(
                        "DestinationRule {} has workloadSelector {} which does not select this client ({})",
                        r.key(),
                        format_labels(r.workload_selector.as_ref().unwrap_or(&BTreeMap::new())),
                        format_labels(client_labels)
                    ),
                );
            }
            if let Some(first) = selecting.first() {
                // The oldest selecting rule wins; same-selector rules would merge in
                // Istio, other selecting rules are ignored.
                let winner = first.key();
                let mut applied = vec![*first];
                for r in selecting.iter().skip(1) {
                    if r.workload_selector == first.workload_selector {
                        applied.push(r);
                    } else {
                        push(
                            &mut shadowed,
                            &mut handled,
                            r,
                            ShadowReason::SelectorRuleWon {
                                winner: winner.clone(),
                            },
                            format!(
                                "DestinationRule {} also selects this client but the older {} wins",
                                r.key(),
                                winner
                            ),
                        );
                    }
                }
                for r in group.iter().filter(|r| r.workload_selector.is_none()) {
                    push(
                        &mut shadowed,
                        &mut handled,
                        r,
                        ShadowReason::SelectorRuleWon {
                            winner: winner.clone(),
                        },
                        format!(
                            "DestinationRule {} is replaced for this client by {}, whose workloadSelector selects it",
                            r.key(),
                            winner
                        ),
                    );
                }
                found = Some((
                    LookupLevel::ClientNamespace,
                    client_ns.to_string(),
                    best,
                    applied,
                ));
            } else {
                let plain: Vec<&DestinationRule> = group
                    .iter()
                    .copied()
                    .filter(|r| r.workload_selector.is_none())
                    .collect();
                if plain.is_empty() {
                    why_none = Some(format!(
                        "the most specific DestinationRule host for {service_fqdn} in the client's namespace {client_ns} is {best}, \
                         but its rules only have workloadSelectors that do not select this client; Istio stops searching there, \
                         so no DestinationRule applies (not even the service's or the root namespace's)"
                    ));
                } else {
                    found = Some((
                        LookupLevel::ClientNamespace,
                        client_ns.to_string(),
                        best,
                        plain,
                    ));
                }
            }
        }
    }

    // Selector rules outside the client's namespace never apply.
    for r in matching
        .iter()
        .filter(|r| r.workload_selector.is_some() && r.meta.namespace != client_ns)
    {
        push(
            &mut shadowed,
            &mut handled,
            r,
            ShadowReason::SelectorOutsideClientNamespace,
            format!(
                "DestinationRule {} has a workloadSelector, so it only applies to clients in its own namespace {} (this client is in {})",
                r.key(),
                r.meta.namespace,
                client_ns
            ),
        );
    }

    // ---- steps 2 and 3: the service's namespace, then the root namespace
    let mut searched: Vec<(&str, LookupLevel)> = Vec::new();
    if !service_ns.is_empty() {
        searched.push((service_ns, LookupLevel::ServiceNamespace));
    }
    if service_ns != root_ns {
        searched.push((root_ns, LookupLevel::RootNamespace));
    }
    for (ns, level) in searched {
        if found.is_some() || why_none.is_some() {
            break;
        }
        let in_ns: Vec<&DestinationRule> = matching
            .iter()
            .copied()
            .filter(|r| r.meta.namespace == ns && r.workload_selector.is_none())
            .collect();
        if ns != client_ns {
            for r in in_ns.iter().filter(|r| r.private_only()) {
                push(
                    &mut shadowed,
                    &mut handled,
                    r,
                    ShadowReason::NotExported,
                    format!(
                        "DestinationRule {} would match {} but its exportTo {:?} keeps it to namespace {}; clients in {} do not see it",
                        r.key(),
                        service_fqdn,
                        r.export_to,
                        ns,
                        client_ns
                    ),
                );
            }
        }
        let pool: Vec<&DestinationRule> = in_ns
            .iter()
            .copied()
            .filter(|r| !r.private_only())
            .collect();
        let Some(best) =
            host::most_specific_match(service_fqdn, pool.iter().map(|r| r.host_fqdn.as_str()))
        else {
            continue;
        };
        let best = best.to_string();
        let group: Vec<&DestinationRule> = pool
            .iter()
            .copied()
            .filter(|r| r.host_fqdn == best)
            .collect();
        let visible: Vec<&DestinationRule> = group
            .iter()
            .copied()
            .filter(|r| r.exported_to(client_ns))
            .collect();
        for r in group.iter().filter(|r| !r.exported_to(client_ns)) {
            push(
                &mut shadowed,
                &mut handled,
                r,
                ShadowReason::NotExported,
                format!(
                    "DestinationRule {} would match {} but is exported only to {:?}, not to the client's namespace {}",
                    r.key(),
                    service_fqdn,
                    r.export_to,
                    client_ns
                ),
            );
        }
        if visible.is_empty() {
            let unexported = group.first().map(|r| r.key()).unwrap_or_default();
            for r in pool.iter().filter(|r| r.host_fqdn != best) {
                push(
                    &mut shadowed,
                    &mut handled,
                    r,
                    ShadowReason::NamespaceSkippedForUnexportedRule {
                        unexported: unexported.clone(),
                    },
                    format!(
                        "DestinationRule {} is skipped: Istio picks the most specific host in namespace {} first ({}, from {}), \
                         finds it is not exported to {}, and moves on without trying less specific rules",
                        r.key(),
                        ns,
                        best,
                        unexported,
                        client_ns
                    ),
                );
            }
            continue;
        }
        for r in pool.iter().filter(|r| r.host_fqdn != best) {
            push(
                &mut shadowed,
                &mut handled,
                r,
                ShadowReason::LessSpecificHost {
                    winner_host: best.clone(),
                },
                format!(
                    "DestinationRule {} (host {}) loses to the more specific host {} in the same namespace",
                    r.key(),
                    r.host_fqdn,
                    best
                ),
            );
        }
        found = Some((level, ns.to_string(), best, visible));
    }

    let Some((level, ns, matched_host, applied)) = found else {
        // Everything else that names the host: explain why it is out of reach.
        for r in &matching {
            let explanation = if r.meta.namespace == client_ns
                || r.meta.namespace == service_ns
                || r.meta.namespace == root_ns
            {
                format!(
                    "DestinationRule {} does not apply to clients in {}",
                    r.key(),
                    client_ns
                )
            } else {
                not_searched_text(r, client_ns, service_ns, root_ns)
            };
            let reason = if r.meta.namespace == client_ns
                || r.meta.namespace == service_ns
                || r.meta.namespace == root_ns
            {
                ShadowReason::NotExported
            } else {
                ShadowReason::NamespaceNotSearched
            };
            push(&mut shadowed, &mut handled, r, reason, explanation);
        }
        let why = why_none.unwrap_or_else(|| {
            format!(
                "no DestinationRule in {client_ns}, {service_ns} or {root_ns} matches {service_fqdn} for clients in {client_ns}"
            )
        });
        return Lookup {
            selection: None,
            unapplied: shadowed,
            why_none: Some(why),
        };
    };

    // Merge the applied group.
    let mut notes = Vec::new();
    let mut policy_from = None;
    let mut traffic_policy = None;
    let mut subsets: Vec<SelectedSubset> = Vec::new();
    for r in &applied {
        handled.insert(r.key());
    }
    for r in &applied {
        if let Some(tp) = &r.traffic_policy {
            if traffic_policy.is_none() {
                traffic_policy = Some(tp.clone());
                policy_from = Some(r.key());
            } else {
                let kept = policy_from.clone().unwrap_or_default();
                shadowed.push(Shadowed {
                    rule: (*r).clone(),
                    reason: ShadowReason::TrafficPolicyDiscardedInMerge {
                        kept_from: kept.clone(),
                    },
                    explanation: format!(
                        "DestinationRule {} is merged with {} for host {}: its subsets are added, but its top-level trafficPolicy ({}) is discarded because the older {} already has one",
                        r.key(),
                        kept,
                        matched_host,
                        r.describe_tls(),
                        kept
                    ),
                });
            }
        }
        for s in &r.subsets {
            if let Some(existing) = subsets.iter().find(|x| x.subset.name == s.name) {
                notes.push(format!(
                    "subset {} of DestinationRule {} is dropped: {} already defines a subset with that name",
                    s.name,
                    r.key(),
                    existing.from
                ));
            } else {
                subsets.push(SelectedSubset {
                    subset: s.clone(),
                    from: r.key(),
                });
            }
        }
    }
    if applied.len() > 1 {
        notes.push(format!(
            "{} DestinationRules for {} in namespace {} are merged: {}",
            applied.len(),
            matched_host,
            ns,
            applied
                .iter()
                .map(|r| r.key())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    let winner = applied.first().map(|r| r.key()).unwrap_or_default();

    // Everything else that names the host lost to the winning namespace or is out of reach.
    for r in &matching {
        if handled.contains(&r.key()) {
            continue;
        }
        let searched_ns = r.meta.namespace == client_ns
            || r.meta.namespace == service_ns
            || r.meta.namespace == root_ns;
        if searched_ns {
            let explanation = format!(
                "DestinationRule {} (host {}, {}) is never consulted: {} in {} already matched {}, and Istio does not fall back to broader rules field by field",
                r.key(),
                r.host_fqdn,
                r.describe_tls(),
                winner,
                level,
                service_fqdn
            );
            push(
                &mut shadowed,
                &mut handled,
                r,
                ShadowReason::EarlierNamespaceWon {
                    winner: winner.clone(),
                    level,
                },
                explanation,
            );
        } else {
            push(
                &mut shadowed,
                &mut handled,
                r,
                ShadowReason::NamespaceNotSearched,
                not_searched_text(r, client_ns, service_ns, root_ns),
            );
        }
    }

    Lookup {
        selection: Some(Selection {
            level,
            namespace: ns,
            matched_host,
            rules: applied.into_iter().cloned().collect(),
            policy_from,
            traffic_policy,
            subsets,
            shadowed,
            notes,
            client_namespace: client_ns.to_string(),
            service_fqdn: service_fqdn.to_string(),
        }),
        unapplied: Vec::new(),
        why_none: None,
    }
}

fn not_searched_text(
    r: &DestinationRule,
    client_ns: &str,
    service_ns: &str,
    root_ns: &str,
) -> String {
    format!(
        "DestinationRule {} names {} but lives in namespace {}; Istio only looks in the client's ({}), the service's ({}) and the root ({}) namespaces",
        r.key(),
        r.host_fqdn,
        r.meta.namespace,
        client_ns,
        service_ns,
        root_ns
    )
}

impl Selection {
    /// The rule whose settings are in force (the oldest applied one).
    /// `rules` is never empty when built by [`lookup`].
    pub fn primary(&self) -> Option<&DestinationRule> {
        self.rules.first()
    }

    pub fn subset(&self, name: &str) -> Option<&SelectedSubset> {
        self.subsets.iter().find(|s| s.subset.name == name)
    }

    /// Plain-words lines for a report: which rule applies, what it sets, and
    /// what it replaced, e.g. "DestinationRule foo/httpbin applies to
    /// httpbin.foo.svc.cluster.local for clients in foo; it sets no tls, so it
    /// replaces istio-system/default, which set ISTIO_MUTUAL".
    pub fn explain(&self) -> Vec<String> {
        let mut out = Vec::new();
        let names = self
            .rules
            .iter()
            .map(|r| r.key())
            .collect::<Vec<_>>()
            .join(" + ");
        let tls = describe_tls_of(self.traffic_policy.as_ref());
        let replaced: Vec<String> = self
            .shadowed
            .iter()
            .filter(|s| {
                matches!(
                    s.reason,
                    ShadowReason::EarlierNamespaceWon { .. }
                        | ShadowReason::LessSpecificHost { .. }
                        | ShadowReason::SelectorRuleWon { .. }
                )
            })
            .map(|s| {
                let what = match s.rule.top_level_tls_mode() {
                    Some(m) => format!("which set {m}"),
                    None => "which set no tls".to_string(),
                };
                format!("{}, {}", s.rule.key(), what)
            })
            .collect();
        let mut head = format!(
            "DestinationRule {} applies to {} for clients in {} (found in {}, host {}); it sets {}",
            names, self.service_fqdn, self.client_namespace, self.level, self.matched_host, tls
        );
        if !replaced.is_empty() {
            head.push_str(", so it replaces ");
            head.push_str(&replaced.join("; and "));
        }
        out.push(head);
        out.extend(self.notes.iter().cloned());
        out.extend(
            self.shadowed
                .iter()
                .filter(|s| {
                    !matches!(
                        s.reason,
                        ShadowReason::EarlierNamespaceWon { .. }
                            | ShadowReason::LessSpecificHost { .. }
                            | ShadowReason::SelectorRuleWon { .. }
                    )
                })
                .map(|s| s.explanation.clone()),
        );
        out
    }
}

// ---------------------------------------------------------------------------
// Effective policy for one port / subset
// ---------------------------------------------------------------------------

/// Which part of the rule a setting came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicyOrigin {
    TopLevel,
    PortLevel(u32),
    Subset(String),
    SubsetPortLevel(String, u32),
    /// Nothing set it: Istio/Envoy defaults apply.
    None,
}

impl fmt::Display for PolicyOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PolicyOrigin::TopLevel => f.write_str("top-level trafficPolicy"),
            PolicyOrigin::PortLevel(p) => write!(f, "portLevelSettings for port {p}"),
            PolicyOrigin::Subset(s) => write!(f, "subset {s} trafficPolicy"),
            PolicyOrigin::SubsetPortLevel(s, p) => {
                write!(f, "subset {s} portLevelSettings for port {p}")
            }
            PolicyOrigin::None => f.write_str("nothing (defaults)"),
        }
    }
}

/// Where each field of the effective policy came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldOrigins {
    pub tls: PolicyOrigin,
    pub connection_pool: PolicyOrigin,
    pub outlier: PolicyOrigin,
    pub load_balancer: PolicyOrigin,
}

/// What the client sidecar's cluster for (service, port, subset) is built from.
#[derive(Debug, Clone, PartialEq)]
pub struct EffectivePolicy {
    pub tls: Option<ClientTls>,
    pub connection_pool: Option<ConnectionPool>,
    pub outlier: Option<OutlierDetection>,
    pub load_balancer: Option<LoadBalancer>,
    /// The most specific part of the rule that was applied.
    pub origin: PolicyOrigin,
    pub field_origins: FieldOrigins,
    /// `Some(false)` when a subset was asked for and no applied rule defines it
    /// (a route to it gets `503 NC cluster_not_found`).
    pub subset_defined: Option<bool>,
    /// Traps worth telling the user, e.g. a port-level entry dropping top-level tls.
    pub notes: Vec<String>,
}

fn port_entry(tp: &TrafficPolicy, port: u32) -> Option<&PortTrafficPolicy> {
    // GetPortLevelTrafficPolicy: the first entry with that port number.
    tp.port_level_settings.iter().find(|p| p.port == Some(port))
}

#[derive(Clone)]
struct Layer {
    tls: (Option<ClientTls>, PolicyOrigin),
    pool: (Option<ConnectionPool>, PolicyOrigin),
    outlier: (Option<OutlierDetection>, PolicyOrigin),
    lb: (Option<LoadBalancer>, PolicyOrigin),
}

impl Layer {
    fn empty() -> Layer {
        Layer {
            tls: (None, PolicyOrigin::None),
            pool: (None, PolicyOrigin::None),
            outlier: (None, PolicyOrigin::None),
            lb: (None, PolicyOrigin::None),
        }
    }
    fn from_policy(tp: &TrafficPolicy, o: PolicyOrigin) -> Layer {
        let org = |set: bool| if set { o.clone() } else { PolicyOrigin::None };
        Layer {
            tls: (tp.tls.clone(), org(tp.tls.is_some())),
            pool: (
                tp.connection_pool.clone(),
                org(tp.connection_pool.is_some()),
            ),
            outlier: (
                tp.outlier_detection.clone(),
                org(tp.outlier_detection.is_some()),
            ),
            lb: (tp.load_balancer.clone(), org(tp.load_balancer.is_some())),
        }
    }
    fn from_port(p: &PortTrafficPolicy, o: PolicyOrigin) -> Layer {
        let org = |set: bool| if set { o.clone() } else { PolicyOrigin::None };
        Layer {
            tls: (p.tls.clone(), org(p.tls.is_some())),
            pool: (p.connection_pool.clone(), org(p.connection_pool.is_some())),
            outlier: (
                p.outlier_detection.clone(),
                org(p.outlier_detection.is_some()),
            ),
            lb: (p.load_balancer.clone(), org(p.load_balancer.is_some())),
        }
    }
}

/// The policy for `service_port` (a **service** port) and optional subset.
///
/// istio/istio pilot/pkg/networking/util/util.go `MergeSubsetTrafficPolicy`
/// with `GetPortLevelTrafficPolicy` and model/destination_rule.go `MergeTrafficPolicy`:
/// 1. a top-level `portLevelSettings` entry for the port **replaces** the
///    whole top-level policy (fields it omits fall back to defaults, they are
///    not inherited — a port entry without `tls` drops a top-level `tls`);
/// 2. a subset policy then overrides field by field (tls, connectionPool,
///    outlierDetection, loadBalancer each only if the subset sets it);
/// 3. if the subset has its own `portLevelSettings` entry for the port, that
///    entry replaces all four fields, set or not (`hasPortLevel = true`).
pub fn effective_policy(
    selection: &Selection,
    service_port: u32,
    subset: Option<&str>,
) -> EffectivePolicy {
    let mut notes = Vec::new();
    let mut layer = Layer::empty();
    let mut origin = PolicyOrigin::None;
    let policy_from = selection.policy_from.clone().unwrap_or_default();

    if let Some(tp) = &selection.traffic_policy {
        if let Some(p) = port_entry(tp, service_port) {
            layer = Layer::from_port(p, PolicyOrigin::PortLevel(service_port));
            origin = PolicyOrigin::PortLevel(service_port);
            if tp.tls.is_some() && p.tls.is_none() {
                notes.push(format!(
                    "DestinationRule {policy_from}: the portLevelSettings entry for port {service_port} replaces the whole top-level policy; it sets no tls, so the top-level {} does NOT apply to port {service_port}",
                    describe_tls_of(Some(tp))
                ));
            }
            for (name, top, port) in [
                (
                    "connectionPool",
                    tp.connection_pool.is_some(),
                    p.connection_pool.is_some(),
                ),
                (
                    "outlierDetection",
                    tp.outlier_detection.is_some(),
                    p.outlier_detection.is_some(),
                ),
                (
                    "loadBalancer",
                    tp.load_balancer.is_some(),
                    p.load_balancer.is_some(),
                ),
            ] {
                if top && !port {
                    notes.push(format!(
                        "DestinationRule {policy_from}: the top-level {name} is not inherited by the portLevelSettings entry for port {service_port}"
                    ));
                }
            }
        } else {
            layer = Layer::from_policy(tp, PolicyOrigin::TopLevel);
            origin = PolicyOrigin::TopLevel;
        }
    }

    let mut subset_defined = None;
    if let Some(name) = subset {
        match selection.subset(name) {
            None => {
                subset_defined = Some(false);
                notes.push(format!(
                    "subset {name} is not defined by {} for {}: routes to it find no cluster (503 NC, cluster_not_found)",
                    selection.rules.iter().map(|r| r.key()).collect::<Vec<_>>().join(" + "),
                    selection.matched_host
                ));
            }
            Some(sel) => {
                subset_defined = Some(true);
                if let Some(sp) = &sel.subset.traffic_policy {
                    if let Some(pp) = port_entry(sp, service_port) {
                        let o = PolicyOrigin::SubsetPortLevel(name.to_string(), service_port);
                        if layer.tls.0.is_some() && pp.tls.is_none() {
                            notes.push(format!(
                                "subset {name}: its portLevelSettings entry for port {service_port} replaces tls, connectionPool, outlierDetection and loadBalancer even where it sets nothing; the tls from {} is dropped",
                                layer.tls.1
                            ));
                        }
                        layer = Layer::from_port(pp, o.clone());
                        origin = o;
                    } else {
                        let o = PolicyOrigin::Subset(name.to_string());
                        let sl = Layer::from_policy(sp, o.clone());
                        if sl.tls.0.is_some() {
                            layer.tls = sl.tls;
                        }
                        if sl.pool.0.is_some() {
                            layer.pool = sl.pool;
                        }
                        if sl.outlier.0.is_some() {
                            layer.outlier = sl.outlier;
                        }
                        if sl.lb.0.is_some() {
                            layer.lb = sl.lb;
                        }
                        if sp.tls.is_some()
                            || sp.connection_pool.is_some()
                            || sp.outlier_detection.is_some()
                            || sp.load_balancer.is_some()
                        {
                            origin = o;
                        }
                    }
                }
            }
        }
    }

    EffectivePolicy {
        tls: layer.tls.0,
        connection_pool: layer.pool.0,
        outlier: layer.outlier.0,
        load_balancer: layer.lb.0,
        origin,
        field_origins: FieldOrigins {
            tls: layer.tls.1,
            connection_pool: layer.pool.1,
            outlier: layer.outlier.1,
            load_balancer: layer.lb.1,
        },
        subset_defined,
        notes,
    }
}

impl EffectivePolicy {
    /// One line: "tls ISTIO_MUTUAL from top-level trafficPolicy of foo/httpbin".
    pub fn describe_tls(&self, selection: &Selection) -> String {
        let from = selection
            .policy_from
            .clone()
            .or_else(|| selection.primary().map(|r| r.key()))
            .unwrap_or_default();
        match &self.tls {
            Some(t) => format!("tls {} from the {} of DestinationRule {}", t.mode, self.field_origins.tls, from),
            None => format!(
                "no tls in DestinationRule {} for this port/subset (client TLS is then up to auto mTLS)",
                selection.rules.iter().map(|r| r.key()).collect::<Vec<_>>().join(" + ")
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn dr(ns: &str, name: &str, ts: &str, spec: Value) -> DestinationRule {
        DestinationRule::from_value(&json!({
            "apiVersion": "networking.istio.io/v1beta1",
            "kind": "DestinationRule",
            "metadata": {"name": name, "namespace": ns, "creationTimestamp": ts},
            "spec": spec
        }))
        .unwrap()
    }

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    const SVC: &str = "httpbin.foo.svc.cluster.local";

    fn mesh_default() -> DestinationRule {
        dr(
            "istio-system",
            "default",
            "2019-01-01T00:00:00Z",
            json!({"host": "*.local", "trafficPolicy": {"tls": {"mode": "ISTIO_MUTUAL"}}}),
        )
    }

    #[test]
    fn parses_full_spec() {
        let r = dr(
            "foo",
            "httpbin",
            "2020-01-01T00:00:00Z",
            json!({
                "host": "httpbin",
                "exportTo": ["."],
                "trafficPolicy": {
                    "tls": {"mode": "SIMPLE", "sni": "x", "subjectAltNames": ["a"], "credentialName": "c"},
                    "connectionPool": {
                        "tcp": {"maxConnections": 1, "connectTimeout": "1s"},
                        "http": {"http1MaxPendingRequests": 1, "http2MaxRequests": 2, "maxRequestsPerConnection": 1, "maxRetries": 3, "idleTimeout": "5s"}
                    },
                    "outlierDetection": {"consecutiveErrors": 1, "consecutive5xxErrors": 2, "interval": "1s", "baseEjectionTime": "3m", "maxEjectionPercent": 100, "minHealthPercent": 0},
                    "loadBalancer": {"simple": "LEAST_REQUEST"},
                    "portLevelSettings": [{"port": {"number": 8000}, "connectionPool": {"tcp": {"maxConnections": 5}}}],
                    "unknownField": {"tolerated": true}
                },
                "subsets": [{"name": "v1", "labels": {"version": "v1"}, "trafficPolicy": {"tls": {"mode": "DISABLE"}}}]
            }),
        );
        assert_eq!(r.host_fqdn, SVC);
        let tp = r.traffic_policy.as_ref().unwrap();
        assert_eq!(tp.tls.as_ref().unwrap().mode, TlsMode::Simple);
        let cp = tp.connection_pool.as_ref().unwrap();
        assert_eq!(cp.tcp.as_ref().unwrap().max_connections, Some(1));
        assert_eq!(
            cp.http.as_ref().unwrap().idle_timeout.as_deref(),
            Some("5s")
        );
        let od = tp.outlier_detection.as_ref().unwrap();
        assert_eq!(od.consecutive_5xx_errors, Some(2));
        assert_eq!(od.max_ejection_percent, Some(100));
        assert_eq!(tp.port_level_settings[0].port, Some(8000));
        assert_eq!(
            tp.load_balancer.as_ref().unwrap().simple.as_deref(),
            Some("LEAST_REQUEST")
        );
        assert_eq!(r.subsets[0].name, "v1");
        assert_eq!(
            r.subsets[0]
                .traffic_policy
                .as_ref()
                .unwrap()
                .tls
                .as_ref()
                .unwrap()
                .mode,
            TlsMode::Disable
        );
    }

    #[test]
    fn tls_without_mode_is_disable() {
        let r = dr(
            "foo",
            "a",
            "2020-01-01T00:00:00Z",
            json!({"host": "a", "trafficPolicy": {"tls": {}}}),
        );
        assert_eq!(r.top_level_tls_mode(), Some(&TlsMode::Disable));
    }

    #[test]
    fn bad_field_is_an_error_with_path() {
        let v = json!({
            "kind": "DestinationRule",
            "metadata": {"name": "x", "namespace": "foo"},
            "spec": {"host": "a", "trafficPolicy": {"portLevelSettings": [{"port": {"number": "eighty"}}]}}
        });
        let e = DestinationRule::from_value(&v).unwrap_err();
        let s = e.to_string();
        assert!(s.contains("DestinationRule foo/x"), "{s}");
        assert!(
            s.contains("spec.trafficPolicy.portLevelSettings[0].port.number"),
            "{s}"
        );
        let e = DestinationRule::from_value(&json!({"kind": "DestinationRule", "metadata": {"name": "x", "namespace": "n"}, "spec": {}})).unwrap_err();
        assert!(e.to_string().contains("spec.host"));
        let e = DestinationRule::from_value(&json!({"kind": "Service", "metadata": {"name": "x", "namespace": "n"}, "spec": {"host": "a"}})).unwrap_err();
        assert!(matches!(e, ObjectError::WrongKind { .. }));
    }

    #[test]
    fn client_namespace_rule_replaces_mesh_default_entirely() {
        let rules = vec![
            mesh_default(),
            dr(
                "foo",
                "httpbin",
                "2020-01-01T00:00:00Z",
                json!({"host": "httpbin", "trafficPolicy": {"connectionPool": {"tcp": {"maxConnections": 10}}}}),
            ),
        ];
        let sel = select(&rules, "foo", &BTreeMap::new(), SVC, "foo", "istio-system").unwrap();
        assert_eq!(sel.level, LookupLevel::ClientNamespace);
        assert_eq!(sel.primary().unwrap().key(), "foo/httpbin");
        let eff = effective_policy(&sel, 8000, None);
        assert!(
            eff.tls.is_none(),
            "no field falls back to the mesh-wide rule"
        );
        assert_eq!(eff.field_origins.connection_pool, PolicyOrigin::TopLevel);
        assert_eq!(sel.shadowed.len(), 1);
        assert_eq!(sel.shadowed[0].rule.key(), "istio-system/default");
        assert!(matches!(
            sel.shadowed[0].reason,
            ShadowReason::EarlierNamespaceWon { .. }
        ));
        let text = sel.explain().join("\n");
        assert!(text.contains("DestinationRule foo/httpbin applies to httpbin.foo.svc.cluster.local for clients in foo"), "{text}");
        assert!(
            text.contains(
                "it sets no tls, so it replaces istio-system/default, which set ISTIO_MUTUAL"
            ),
            "{text}"
        );
    }

    #[test]
    fn service_namespace_then_root() {
        let rules = vec![
            mesh_default(),
            dr(
                "foo",
                "httpbin",
                "2020-01-01T00:00:00Z",
                json!({"host": "httpbin", "trafficPolicy": {"tls": {"mode": "DISABLE"}}}),
            ),
        ];
        // A client in bar finds foo/httpbin (exported by default) in the service's namespace.
        let sel = select(&rules, "bar", &BTreeMap::new(), SVC, "foo", "istio-system").unwrap();
        assert_eq!(sel.level, LookupLevel::ServiceNamespace);
        assert_eq!(sel.primary().unwrap().key(), "foo/httpbin");
        // Another service falls to the root namespace.
        let sel = select(
            &rules,
            "bar",
            &BTreeMap::new(),
            "other.baz.svc.cluster.local",
            "baz",
            "istio-system",
        )
        .unwrap();
        assert_eq!(sel.level, LookupLevel::RootNamespace);
        assert_eq!(sel.primary().unwrap().key(), "istio-system/default");
    }

    #[test]
    fn export_to_dot_hides_rule_from_other_namespaces() {
        let rules = vec![
            mesh_default(),
            dr(
                "foo",
                "httpbin",
                "2020-01-01T00:00:00Z",
                json!({"host": "httpbin", "exportTo": ["."], "trafficPolicy": {"tls": {"mode": "DISABLE"}}}),
            ),
        ];
        // Same namespace: visible.
        let sel = select(&rules, "foo", &BTreeMap::new(), SVC, "foo", "istio-system").unwrap();
        assert_eq!(sel.primary().unwrap().key(), "foo/httpbin");
        // Other namespace: falls to the root rule, and the hidden rule is reported.
        let sel = select(&rules, "bar", &BTreeMap::new(), SVC, "foo", "istio-system").unwrap();
        assert_eq!(sel.primary().unwrap().key(), "istio-system/default");
        let hidden = sel
            .shadowed
            .iter()
            .find(|s| s.rule.key() == "foo/httpbin")
            .unwrap();
        assert_eq!(hidden.reason, ShadowReason::NotExported);
    }

    #[test]
    fn export_to_named_namespace() {
        let rules = vec![dr(
            "foo",
            "httpbin",
            "2020-01-01T00:00:00Z",
            json!({"host": "httpbin", "exportTo": ["bar"]}),
        )];
        assert!(select(&rules, "bar", &BTreeMap::new(), SVC, "foo", "istio-system").is_some());
        let lk = lookup(&rules, "baz", &BTreeMap::new(), SVC, "foo", "istio-system");
        assert!(lk.selection.is_none());
        assert_eq!(lk.unapplied[0].reason, ShadowReason::NotExported);
        // exportTo [bar] hides it from its own namespace foo too.
        let lk = lookup(&rules, "foo", &BTreeMap::new(), SVC, "foo", "istio-system");
        assert!(lk.selection.is_none());
        assert_eq!(lk.unapplied[0].reason, ShadowReason::HiddenFromOwnNamespace);
    }

    #[test]
    fn most_specific_host_wins_in_namespace() {
        let rules = vec![
            dr(
                "foo",
                "wild",
                "2019-01-01T00:00:00Z",
                json!({"host": "*.foo.svc.cluster.local", "trafficPolicy": {"tls": {"mode": "ISTIO_MUTUAL"}}}),
            ),
            dr(
                "foo",
                "exact",
                "2020-01-01T00:00:00Z",
                json!({"host": "httpbin"}),
            ),
            dr(
                "foo",
                "other",
                "2020-01-01T00:00:00Z",
                json!({"host": "other"}),
            ),
        ];
        let sel = select(&rules, "foo", &BTreeMap::new(), SVC, "foo", "istio-system").unwrap();
        assert_eq!(sel.primary().unwrap().key(), "foo/exact");
        assert_eq!(sel.shadowed.len(), 1, "foo/other does not name this host");
        assert!(matches!(
            sel.shadowed[0].reason,
            ShadowReason::LessSpecificHost { .. }
        ));
    }

    #[test]
    fn unexported_most_specific_rule_skips_the_namespace() {
        let rules = vec![
            mesh_default(),
            dr(
                "foo",
                "exact",
                "2020-01-01T00:00:00Z",
                json!({"host": "httpbin", "exportTo": ["baz"]}),
            ),
            dr(
                "foo",
                "wild",
                "2020-01-01T00:00:00Z",
                json!({"host": "*.foo.svc.cluster.local"}),
            ),
        ];
        let sel = select(&rules, "bar", &BTreeMap::new(), SVC, "foo", "istio-system").unwrap();
        assert_eq!(sel.level, LookupLevel::RootNamespace);
        let wild = sel
            .shadowed
            .iter()
            .find(|s| s.rule.key() == "foo/wild")
            .unwrap();
        assert!(matches!(
            wild.reason,
            ShadowReason::NamespaceSkippedForUnexportedRule { .. }
        ));
    }

    #[test]
    fn merge_same_host_same_namespace() {
        let rules = vec![
            dr(
                "foo",
                "b-second",
                "2021-01-01T00:00:00Z",
                json!({"host": "httpbin", "trafficPolicy": {"tls": {"mode": "DISABLE"}}, "subsets": [{"name": "v1", "labels": {"v": "dup"}}, {"name": "v2", "labels": {"v": "2"}}]}),
            ),
            dr(
                "foo",
                "a-first",
                "2020-01-01T00:00:00Z",
                json!({"host": "httpbin.foo.svc.cluster.local", "trafficPolicy": {"tls": {"mode": "ISTIO_MUTUAL"}}, "subsets": [{"name": "v1", "labels": {"v": "1"}}]}),
            ),
        ];
        let sel = select(&rules, "foo", &BTreeMap::new(), SVC, "foo", "istio-system").unwrap();
        assert_eq!(sel.rules.len(), 2);
        assert_eq!(sel.policy_from.as_deref(), Some("foo/a-first"));
        assert_eq!(
            sel.traffic_policy
                .as_ref()
                .unwrap()
                .tls
                .as_ref()
                .unwrap()
                .mode,
            TlsMode::IstioMutual
        );
        let names: Vec<_> = sel.subsets.iter().map(|s| s.subset.name.as_str()).collect();
        assert_eq!(names, ["v1", "v2"]);
        assert_eq!(
            sel.subset("v1")
                .unwrap()
                .subset
                .labels
                .get("v")
                .map(String::as_str),
            Some("1")
        );
        assert!(sel.notes.iter().any(|n| n.contains("dropped")));
        let disc = sel
            .shadowed
            .iter()
            .find(|s| s.rule.key() == "foo/b-second")
            .unwrap();
        assert!(matches!(
            disc.reason,
            ShadowReason::TrafficPolicyDiscardedInMerge { .. }
        ));
    }

    #[test]
    fn merge_same_timestamp_breaks_tie_by_name() {
        let rules = vec![
            dr(
                "foo",
                "zz",
                "2020-01-01T00:00:00Z",
                json!({"host": "httpbin", "trafficPolicy": {"tls": {"mode": "DISABLE"}}}),
            ),
            dr(
                "foo",
                "aa",
                "2020-01-01T00:00:00Z",
                json!({"host": "httpbin", "trafficPolicy": {"tls": {"mode": "ISTIO_MUTUAL"}}}),
            ),
        ];
        let sel = select(&rules, "foo", &BTreeMap::new(), SVC, "foo", "istio-system").unwrap();
        assert_eq!(sel.policy_from.as_deref(), Some("foo/aa"));
    }

    #[test]
    fn later_policy_used_when_first_has_none() {
        let rules = vec![
            dr(
                "foo",
                "a",
                "2020-01-01T00:00:00Z",
                json!({"host": "httpbin", "subsets": [{"name": "v1"}]}),
            ),
            dr(
                "foo",
                "b",
                "2021-01-01T00:00:00Z",
                json!({"host": "httpbin", "trafficPolicy": {"tls": {"mode": "ISTIO_MUTUAL"}}}),
            ),
        ];
        let sel = select(&rules, "foo", &BTreeMap::new(), SVC, "foo", "istio-system").unwrap();
        assert_eq!(sel.policy_from.as_deref(), Some("foo/b"));
    }

    #[test]
    fn workload_selector_rules() {
        let rules = vec![
            mesh_default(),
            dr(
                "foo",
                "plain",
                "2020-01-01T00:00:00Z",
                json!({"host": "httpbin", "trafficPolicy": {"tls": {"mode": "ISTIO_MUTUAL"}}}),
            ),
            dr(
                "foo",
                "for-sleep",
                "2021-01-01T00:00:00Z",
                json!({"host": "httpbin", "workloadSelector": {"matchLabels": {"app": "sleep"}}, "trafficPolicy": {"tls": {"mode": "DISABLE"}}}),
            ),
            dr(
                "bar",
                "bar-sel",
                "2021-01-01T00:00:00Z",
                json!({"host": "httpbin.foo.svc.cluster.local", "workloadSelector": {"matchLabels": {"app": "sleep"}}}),
            ),
        ];
        let sleep = labels(&[("app", "sleep")]);
        let sel = select(&rules, "foo", &sleep, SVC, "foo", "istio-system").unwrap();
        assert_eq!(sel.primary().unwrap().key(), "foo/for-sleep");
        assert!(sel.shadowed.iter().any(|s| s.rule.key() == "foo/plain"
            && matches!(s.reason, ShadowReason::SelectorRuleWon { .. })));
        let other = labels(&[("app", "curl")]);
        let sel = select(&rules, "foo", &other, SVC, "foo", "istio-system").unwrap();
        assert_eq!(sel.primary().unwrap().key(), "foo/plain");
        assert!(sel.shadowed.iter().any(|s| s.rule.key() == "foo/for-sleep"
            && s.reason == ShadowReason::SelectorDoesNotSelectClient));
        // In its own namespace a selector rule applies to the clients it selects...
        let sel = select(&rules, "bar", &sleep, SVC, "foo", "istio-system").unwrap();
        assert_eq!(sel.primary().unwrap().key(), "bar/bar-sel");
        // ...and never in another namespace.
        let sel = select(&rules, "baz", &sleep, SVC, "foo", "istio-system").unwrap();
        assert_eq!(sel.primary().unwrap().key(), "foo/plain");
        assert!(sel.shadowed.iter().any(|s| s.rule.key() == "bar/bar-sel"
            && s.reason == ShadowReason::SelectorOutsideClientNamespace));
    }

    #[test]
    fn empty_workload_selector_selects_all_clients_of_its_namespace() {
        let rules = vec![
            mesh_default(),
            dr(
                "foo",
                "all",
                "2021-01-01T00:00:00Z",
                json!({"host": "httpbin", "workloadSelector": {}, "trafficPolicy": {"tls": {"mode": "DISABLE"}}}),
            ),
        ];
        let sel = select(
            &rules,
            "foo",
            &labels(&[("app", "x")]),
            SVC,
            "foo",
            "istio-system",
        )
        .unwrap();
        assert_eq!(sel.primary().unwrap().key(), "foo/all");
        // ... and, being private, it is invisible to other namespaces.
        let sel = select(&rules, "bar", &BTreeMap::new(), SVC, "foo", "istio-system").unwrap();
        assert_eq!(sel.primary().unwrap().key(), "istio-system/default");
    }

    #[test]
    fn selector_only_rule_not_selecting_client_stops_search() {
        let rules = vec![
            mesh_default(),
            dr(
                "foo",
                "for-sleep",
                "2021-01-01T00:00:00Z",
                json!({"host": "httpbin", "workloadSelector": {"matchLabels": {"app": "sleep"}}}),
            ),
        ];
        let lk = lookup(
            &rules,
            "foo",
            &labels(&[("app", "curl")]),
            SVC,
            "foo",
            "istio-system",
        );
        assert!(lk.selection.is_none());
        assert!(lk.why_none.unwrap().contains("stops searching"));
    }

    #[test]
    fn client_in_root_namespace_sees_only_private_root_rules_first() {
        let rules = vec![
            mesh_default(),
            dr(
                "foo",
                "httpbin",
                "2020-01-01T00:00:00Z",
                json!({"host": "httpbin", "trafficPolicy": {"tls": {"mode": "DISABLE"}}}),
            ),
        ];
        // Gateway in istio-system calling httpbin: the service namespace rule wins over the
        // exported mesh-wide rule.
        let sel = select(
            &rules,
            "istio-system",
            &BTreeMap::new(),
            SVC,
            "foo",
            "istio-system",
        )
        .unwrap();
        assert_eq!(sel.primary().unwrap().key(), "foo/httpbin");
    }

    #[test]
    fn rules_in_unrelated_namespaces_are_reported() {
        let rules = vec![dr(
            "elsewhere",
            "x",
            "2020-01-01T00:00:00Z",
            json!({"host": SVC}),
        )];
        let lk = lookup(&rules, "bar", &BTreeMap::new(), SVC, "foo", "istio-system");
        assert!(lk.selection.is_none());
        assert_eq!(lk.unapplied[0].reason, ShadowReason::NamespaceNotSearched);
        assert!(
            lookup(&[], "bar", &BTreeMap::new(), SVC, "foo", "istio-system")
                .unapplied
                .is_empty()
        );
    }

    #[test]
    fn port_level_replaces_everything_for_that_port() {
        let rules = vec![dr(
            "foo",
            "httpbin",
            "2020-01-01T00:00:00Z",
            json!({"host": "httpbin", "trafficPolicy": {
                "tls": {"mode": "ISTIO_MUTUAL"},
                "outlierDetection": {"consecutive5xxErrors": 1},
                "portLevelSettings": [{"port": {"number": 8000}, "connectionPool": {"tcp": {"maxConnections": 1}}}]
            }}),
        )];
        let sel = select(&rules, "foo", &BTreeMap::new(), SVC, "foo", "istio-system").unwrap();
        let eff = effective_policy(&sel, 8000, None);
        assert_eq!(eff.origin, PolicyOrigin::PortLevel(8000));
        assert!(
            eff.tls.is_none(),
            "tls is NOT inherited by the port-level entry"
        );
        assert!(eff.outlier.is_none());
        assert_eq!(
            eff.field_origins.connection_pool,
            PolicyOrigin::PortLevel(8000)
        );
        assert!(eff
            .notes
            .iter()
            .any(|n| n.contains("does NOT apply to port 8000")));
        // Other ports keep the top-level policy.
        let eff = effective_policy(&sel, 9000, None);
        assert_eq!(eff.tls.unwrap().mode, TlsMode::IstioMutual);
        assert_eq!(eff.origin, PolicyOrigin::TopLevel);
    }

    #[test]
    fn subset_overrides_field_by_field_and_subset_port_level_replaces() {
        let rules = vec![dr(
            "foo",
            "httpbin",
            "2020-01-01T00:00:00Z",
            json!({"host": "httpbin",
            "trafficPolicy": {"tls": {"mode": "ISTIO_MUTUAL"}, "connectionPool": {"tcp": {"maxConnections": 100}}},
            "subsets": [
                {"name": "v1", "labels": {"version": "v1"}, "trafficPolicy": {"connectionPool": {"tcp": {"maxConnections": 1}}}},
                {"name": "v2", "labels": {"version": "v2"}, "trafficPolicy": {
                    "tls": {"mode": "SIMPLE"},
                    "portLevelSettings": [{"port": {"number": 8000}, "loadBalancer": {"simple": "RANDOM"}}]
                }}
            ]}),
        )];
        let sel = select(&rules, "foo", &BTreeMap::new(), SVC, "foo", "istio-system").unwrap();
        let eff = effective_policy(&sel, 8000, Some("v1"));
        assert_eq!(eff.tls.as_ref().unwrap().mode, TlsMode::IstioMutual);
        assert_eq!(eff.field_origins.tls, PolicyOrigin::TopLevel);
        assert_eq!(
            eff.connection_pool.unwrap().tcp.unwrap().max_connections,
            Some(1)
        );
        assert_eq!(
            eff.field_origins.connection_pool,
            PolicyOrigin::Subset("v1".into())
        );
        assert_eq!(eff.origin, PolicyOrigin::Subset("v1".into()));
        assert_eq!(eff.subset_defined, Some(true));

        let eff = effective_policy(&sel, 8000, Some("v2"));
        assert_eq!(eff.origin, PolicyOrigin::SubsetPortLevel("v2".into(), 8000));
        assert!(
            eff.tls.is_none(),
            "subset port-level entry replaces tls too"
        );
        assert!(eff.connection_pool.is_none());
        assert_eq!(eff.load_balancer.unwrap().simple.as_deref(), Some("RANDOM"));

        let eff = effective_policy(&sel, 9000, Some("v2"));
        assert_eq!(eff.tls.unwrap().mode, TlsMode::Simple);
        assert_eq!(
            eff.connection_pool.unwrap().tcp.unwrap().max_connections,
            Some(100)
        );

        let eff = effective_policy(&sel, 8000, Some("v3"));
        assert_eq!(eff.subset_defined, Some(false));
        assert!(eff.notes.iter().any(|n| n.contains("cluster_not_found")));
    }

    #[test]
    fn top_port_level_then_subset_fields() {
        // GetPortLevelTrafficPolicy on the top level first, then the subset overrides.
        let rules = vec![dr(
            "foo",
            "httpbin",
            "2020-01-01T00:00:00Z",
            json!({"host": "httpbin",
                "trafficPolicy": {"tls": {"mode": "ISTIO_MUTUAL"},
                    "portLevelSettings": [{"port": {"number": 8000}, "tls": {"mode": "DISABLE"}}]},
                "subsets": [{"name": "v1", "trafficPolicy": {"outlierDetection": {"consecutive5xxErrors": 3}}}]}),
        )];
        let sel = select(&rules, "foo", &BTreeMap::new(), SVC, "foo", "istio-system").unwrap();
        let eff = effective_policy(&sel, 8000, Some("v1"));
        assert_eq!(eff.tls.unwrap().mode, TlsMode::Disable);
        assert_eq!(eff.field_origins.tls, PolicyOrigin::PortLevel(8000));
        assert_eq!(eff.outlier.unwrap().consecutive_5xx_errors, Some(3));
    }

    fn arb_rule() -> impl proptest::strategy::Strategy<Value = DestinationRule> {
        use proptest::prelude::*;
        (
            prop_oneof![
                Just("foo"),
                Just("bar"),
                Just("istio-system"),
                Just("other")
            ],
            "[a-d]{1,2}",
            prop_oneof![
                Just("httpbin"),
                Just("*.local"),
                Just("*"),
                Just("*.foo.svc.cluster.local"),
                Just("httpbin.foo.svc.cluster.local"),
                Just("x"),
            ],
            prop_oneof![
                Just(vec![]),
                Just(vec!["."]),
                Just(vec!["*"]),
                Just(vec!["bar"])
            ],
            proptest::option::of(Just("sleep")),
            0u8..3,
            proptest::option::of(prop_oneof![Just("ISTIO_MUTUAL"), Just("DISABLE")]),
        )
            .prop_map(|(ns, name, host, export, sel, day, tls)| {
                let mut spec = json!({"host": host, "exportTo": export});
                if let Some(app) = sel {
                    spec["workloadSelector"] = json!({"matchLabels": {"app": app}});
                }
                if let Some(m) = tls {
                    spec["trafficPolicy"] = json!({"tls": {"mode": m}});
                }
                dr(ns, &name, &format!("2020-01-0{}T00:00:00Z", day + 1), spec)
            })
    }

    proptest::proptest! {
        #[test]
        fn lookup_is_consistent(
            mut rules in proptest::collection::vec(arb_rule(), 0..8),
            client in proptest::prop_oneof![proptest::strategy::Just("foo"), proptest::strategy::Just("bar"), proptest::strategy::Just("istio-system")],
            sleep in proptest::bool::ANY,
        ) {
            // Keys must be unique, as in a real cluster.
            let mut seen = BTreeSet::new();
            rules.retain(|r| seen.insert(r.key()));
            let lbl = if sleep { labels(&[("app", "sleep")]) } else { BTreeMap::new() };
            let lk = lookup(&rules, client, &lbl, SVC, "foo", "istio-system");
            let matching = rules.iter().filter(|r| host::matches(&r.host_fqdn, SVC)).count();
            match &lk.selection {
                Some(sel) => {
                    proptest::prop_assert!(!sel.rules.is_empty());
                    for r in &sel.rules {
                        proptest::prop_assert!(host::matches(&r.host_fqdn, SVC));
                        proptest::prop_assert_eq!(&r.host_fqdn, &sel.matched_host);
                        proptest::prop_assert_eq!(&r.meta.namespace, &sel.namespace);
                    }
                    // Every matching rule is either applied or explained.
                    let applied: BTreeSet<_> = sel.rules.iter().map(|r| r.key()).collect();
                    let explained: BTreeSet<_> = sel.shadowed.iter().map(|s| s.rule.key()).filter(|k| !applied.contains(k)).collect();
                    proptest::prop_assert_eq!(applied.len() + explained.len(), matching);
                    let eff = effective_policy(sel, 8000, Some("v1"));
                    proptest::prop_assert_eq!(eff.subset_defined, Some(false));
                }
                None => {
                    proptest::prop_assert_eq!(lk.unapplied.len(), matching);
                }
            }
            // A rule in a namespace Istio never searches cannot change the outcome.
            let mut more = rules.clone();
            more.push(dr("unrelated", "zz", "2019-01-01T00:00:00Z", json!({"host": "*"})));
            let lk2 = lookup(&more, client, &lbl, SVC, "foo", "istio-system");
            proptest::prop_assert_eq!(
                lk.selection.as_ref().map(|s| s.rules.iter().map(|r| r.key()).collect::<Vec<_>>()),
                lk2.selection.as_ref().map(|s| s.rules.iter().map(|r| r.key()).collect::<Vec<_>>())
            );
        }
    }

    #[test]
    fn no_policy_at_all() {
        let rules = vec![dr(
            "foo",
            "httpbin",
            "2020-01-01T00:00:00Z",
            json!({"host": "httpbin", "subsets": [{"name": "v1"}]}),
        )];
        let sel = select(&rules, "foo", &BTreeMap::new(), SVC, "foo", "istio-system").unwrap();
        let eff = effective_policy(&sel, 8000, Some("v1"));
        assert_eq!(eff.origin, PolicyOrigin::None);
        assert!(eff.tls.is_none());
        assert!(eff.describe_tls(&sel).contains("no tls"));
    }
}
