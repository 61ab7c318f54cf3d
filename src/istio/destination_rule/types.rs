//! `DestinationRule` as written: the typed spec (v1alpha3, v1beta1 and v1
//! share the schema) and its parsing, with errors that name the field.
//!
//! Place in the flow: a pure helper (istio/); model parses every rule once
//! with the cluster domain, then [`super::lookup`] and [`super::policy`]
//! decide what applies.
//!
//! Sources: istio/api `networking/v1alpha3/destination_rule.proto`
//! (`ClientTLSSettings.mode`: an absent mode is `DISABLE`, enum value 0;
//! `OutlierDetection.consecutive5xxErrors` is a `UInt32Value`); istio/istio
//! `pilot/pkg/model/config.go` `ResolveShortnameToFQDN` (the host).

use std::collections::BTreeMap;
use std::fmt;

use serde_json::Value;

use super::super::host;
use super::super::object::{Meta, ObjectError, ObjectRef, Reader};

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
    /// Parse a raw `DestinationRule`; a short `spec.host` resolves in the
    /// rule's namespace and `domain_suffix` (the cluster domain).
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
        let traffic_policy = sub_object(&r, "spec.trafficPolicy", parse_traffic_policy)?;
        let mut subsets = Vec::new();
        for (i, s) in r.opt_array("spec.subsets")?.iter().enumerate() {
            let rel = format!("spec.subsets[{i}]");
            if !s.is_object() {
                return Err(r.type_err(&rel, "an object", s));
            }
            let owned = r.at(s, &rel);
            let sr = owned.reader();
            subsets.push(Subset {
                name: sr.req_str("name")?,
                labels: sr.str_map("labels")?,
                traffic_policy: sub_object(&sr, "trafficPolicy", parse_traffic_policy)?,
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
    pub(crate) fn visible_in_own_namespace(&self) -> bool {
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
    pub(crate) fn private_only(&self) -> bool {
        if self.workload_selector.is_some() {
            return true;
        }
        self.export_to.len() == 1
            && (self.export_to[0] == "." || self.export_to[0] == self.meta.namespace)
    }

    /// Exported to clients in `client_ns` (push_context.go
    /// `getExportedDestinationRuleFromNamespace`: empty, `*`, or naming the namespace).
    pub(crate) fn exported_to(&self, client_ns: &str) -> bool {
        if self.workload_selector.is_some() {
            return false;
        }
        self.export_to.is_empty() || self.export_to.iter().any(|e| e == "*" || e == client_ns)
    }
}

/// Read the object at `rel` (if present) with `parse`, errors naming its path.
fn sub_object<T>(
    r: &Reader<'_>,
    rel: &str,
    parse: impl FnOnce(&Reader<'_>) -> Result<T, ObjectError>,
) -> Result<Option<T>, ObjectError> {
    let Some(v) = r.opt_object(rel)? else {
        return Ok(None);
    };
    let owned = r.at(v, rel);
    parse(&owned.reader()).map(Some)
}

fn parse_traffic_policy(r: &Reader<'_>) -> Result<TrafficPolicy, ObjectError> {
    let mut tp = TrafficPolicy {
        tls: sub_object(r, "tls", parse_tls)?,
        connection_pool: sub_object(r, "connectionPool", parse_connection_pool)?,
        outlier_detection: sub_object(r, "outlierDetection", parse_outlier)?,
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
        tp.port_level_settings.push(PortTrafficPolicy {
            port: pr.opt_u32("port.number")?,
            port_name: pr.opt_str("port.name")?,
            tls: sub_object(&pr, "tls", parse_tls)?,
            connection_pool: sub_object(&pr, "connectionPool", parse_connection_pool)?,
            outlier_detection: sub_object(&pr, "outlierDetection", parse_outlier)?,
            load_balancer: parse_lb(&pr, "loadBalancer")?,
        });
    }
    Ok(tp)
}

fn parse_tls(t: &Reader<'_>) -> Result<ClientTls, ObjectError> {
    let mode = match t.opt_str("mode")? {
        Some(m) => TlsMode::parse(&m),
        None => TlsMode::Disable,
    };
    Ok(ClientTls {
        mode,
        sni: t.opt_str("sni")?,
        subject_alt_names: t.str_list("subjectAltNames")?,
        credential_name: t.opt_str("credentialName")?,
        ca_certificates: t.opt_str("caCertificates")?,
        client_certificate: t.opt_str("clientCertificate")?,
        insecure_skip_verify: t.opt_bool("insecureSkipVerify")?,
    })
}

fn parse_connection_pool(c: &Reader<'_>) -> Result<ConnectionPool, ObjectError> {
    let tcp = sub_object(c, "tcp", |t| {
        Ok(TcpSettings {
            max_connections: t.opt_i64("maxConnections")?,
            connect_timeout: t.opt_scalar_string("connectTimeout")?,
        })
    })?;
    let http = sub_object(c, "http", |h| {
        Ok(HttpSettings {
            http1_max_pending_requests: h.opt_i64("http1MaxPendingRequests")?,
            http2_max_requests: h.opt_i64("http2MaxRequests")?,
            max_requests_per_connection: h.opt_i64("maxRequestsPerConnection")?,
            max_retries: h.opt_i64("maxRetries")?,
            idle_timeout: h.opt_scalar_string("idleTimeout")?,
        })
    })?;
    Ok(ConnectionPool { tcp, http })
}

fn parse_outlier(o: &Reader<'_>) -> Result<OutlierDetection, ObjectError> {
    // consecutive5xxErrors / consecutiveGatewayErrors are UInt32Value wrappers:
    // JSON carries either a bare number or {"value": n}.
    let wrapped = |name: &str| -> Result<Option<u32>, ObjectError> {
        match o.get(name) {
            Some(Value::Object(_)) => o.opt_u32(&format!("{name}.value")),
            _ => o.opt_u32(name),
        }
    };
    Ok(OutlierDetection {
        consecutive_errors: o.opt_i64("consecutiveErrors")?,
        consecutive_5xx_errors: wrapped("consecutive5xxErrors")?,
        consecutive_gateway_errors: wrapped("consecutiveGatewayErrors")?,
        interval: o.opt_scalar_string("interval")?,
        base_ejection_time: o.opt_scalar_string("baseEjectionTime")?,
        max_ejection_percent: o.opt_i64("maxEjectionPercent")?,
        min_health_percent: o.opt_i64("minHealthPercent")?,
    })
}

fn parse_lb(r: &Reader<'_>, rel: &str) -> Result<Option<LoadBalancer>, ObjectError> {
    let raw = r.opt_object(rel)?.cloned();
    let simple = sub_object(r, rel, |l| l.opt_str("simple"))?.flatten();
    Ok(raw.map(|raw| LoadBalancer { simple, raw }))
}
