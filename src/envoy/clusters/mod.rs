//! Envoy `/clusters` output, text and `?format=json`: per-cluster limits and
//! per-host counters and health, and what they say about traffic to a service.
//!
//! Place in the flow: collect reads `/clusters` (and samples it to find
//! clients: [`traffic_to`]); model parses the stored text; analyze rules read
//! host health, ejections and counters. Pure: no I/O, never panics.
//!
//! Text lines (envoyproxy/envoy `source/server/admin/clusters_handler.cc`):
//! `<cluster>::<key>::<value>` for cluster-level data (`default_priority::max_connections::1024`,
//! `high_priority::…`, `added_via_api::true`, `observability_name::…`,
//! `outlier::success_rate_average::-1`, `eds_service_name::…`) and
//! `<cluster>::<host>::<stat>::<value>` per host (`cx_active`, `cx_connect_fail`,
//! `rq_total`, `rq_error`, …, `hostname`, `health_flags`, `weight`, `region`,
//! `zone`, `sub_zone`, `canary`, `priority`, `success_rate`,
//! `local_origin_success_rate`). Cluster names contain `|`; hosts are
//! `ip:port`, `[v6]:port` (which contains `::`!) or `unix://path`.
//!
//! Health flags (`source/common/upstream/host_utility.cc` `healthFlagsToString`):
//! `healthy`, or a concatenation of `/failed_active_hc`, `/failed_outlier_check`,
//! `/failed_eds_health`, `/degraded_active_hc`, `/degraded_eds_health`,
//! `/pending_dynamic_removal`, `/pending_active_hc`,
//! `/excluded_via_immediate_hc_fail`, `/active_hc_timeout`, `/eds_status_draining`.

use std::collections::BTreeMap;

use serde_json::Value;

mod json;
#[cfg(test)]
mod tests;
mod text;
mod traffic;

pub use json::parse_clusters_json;
pub use text::parse_clusters_text;
pub use traffic::{is_outbound_cluster_of, traffic_to, ServiceTraffic};

/// Why `/clusters` output could not be read at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClustersError {
    #[error("/clusters?format=json: {0}")]
    Json(String),
    #[error("/clusters?format=json: `{path}` should be {expected}")]
    Shape {
        path: String,
        expected: &'static str,
    },
}

/// One upstream host of a cluster.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct HostStatus {
    /// `10.1.2.3:8080`, `[fd00::1]:8080`, `unix:///sock`.
    pub address: String,
    pub hostname: Option<String>,
    /// Integer stats (`cx_active`, `cx_connect_fail`, `rq_total`, `rq_error`, …).
    pub counters: BTreeMap<String, u64>,
    /// Flags without the leading `/` (`failed_outlier_check`); empty = healthy.
    pub health_flags: Vec<String>,
    pub weight: Option<u64>,
    pub region: Option<String>,
    pub zone: Option<String>,
    pub sub_zone: Option<String>,
    pub priority: Option<u64>,
    /// `-1` when Envoy has too little data.
    pub success_rate: Option<f64>,
    /// Anything else, verbatim.
    pub other: BTreeMap<String, String>,
}

/// Flags that take a host out of load balancing (Envoy's coarse `Unhealthy`).
const UNHEALTHY_FLAGS: &[&str] = &[
    "failed_active_hc",
    "failed_outlier_check",
    "failed_eds_health",
    "pending_active_hc",
    "excluded_via_immediate_hc_fail",
    "active_hc_timeout",
    "eds_status_draining",
];

impl HostStatus {
    /// No flag that removes it from load balancing (degraded hosts still count as usable).
    pub fn is_healthy(&self) -> bool {
        !self
            .health_flags
            .iter()
            .any(|f| UNHEALTHY_FLAGS.contains(&f.as_str()))
    }

    /// Ejected by outlier detection.
    pub fn is_ejected(&self) -> bool {
        self.health_flags
            .iter()
            .any(|f| f == "failed_outlier_check")
    }

    pub fn counter(&self, name: &str) -> u64 {
        self.counters.get(name).copied().unwrap_or(0)
    }
}

/// One cluster in `/clusters`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ClusterStatus {
    pub name: String,
    pub added_via_api: Option<bool>,
    pub observability_name: Option<String>,
    /// Circuit-breaker limits: priority (`default_priority`/`high_priority`, or
    /// `DEFAULT`/`HIGH` from JSON, normalized to `default`/`high`) → limit → value.
    pub circuit_breakers: BTreeMap<String, BTreeMap<String, u64>>,
    /// Cluster-level outlier data (`success_rate_average`, …), verbatim.
    pub outlier: BTreeMap<String, String>,
    pub hosts: Vec<HostStatus>,
    /// Other cluster-level keys, verbatim.
    pub other: BTreeMap<String, String>,
}

impl ClusterStatus {
    pub fn ejected_hosts(&self) -> Vec<&HostStatus> {
        self.hosts.iter().filter(|h| h.is_ejected()).collect()
    }

    pub fn healthy_hosts(&self) -> Vec<&HostStatus> {
        self.hosts.iter().filter(|h| h.is_healthy()).collect()
    }

    /// Sum of a per-host counter over all hosts.
    pub fn total(&self, counter: &str) -> u64 {
        self.hosts
            .iter()
            .fold(0u64, |a, h| a.saturating_add(h.counter(counter)))
    }

    /// `default` priority limit, e.g. `limit("max_pending_requests")`.
    pub fn limit(&self, name: &str) -> Option<u64> {
        self.circuit_breakers.get("default")?.get(name).copied()
    }
}

/// Parsed `/clusters`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Clusters {
    pub clusters: BTreeMap<String, ClusterStatus>,
    /// Text lines that did not fit the format (1-based line number, line).
    pub unparsed: Vec<(usize, String)>,
}

impl Clusters {
    pub fn get(&self, name: &str) -> Option<&ClusterStatus> {
        self.clusters.get(name)
    }
}

pub(super) fn cluster_mut<'a>(out: &'a mut Clusters, name: &str) -> &'a mut ClusterStatus {
    out.clusters
        .entry(name.to_string())
        .or_insert_with(|| ClusterStatus {
            name: name.to_string(),
            ..ClusterStatus::default()
        })
}

pub(super) fn non_empty(v: &str) -> Option<String> {
    if v.is_empty() {
        None
    } else {
        Some(v.to_string())
    }
}

/// Parse either form: JSON if the text starts with `{`, text otherwise.
pub fn parse_clusters(text: &str) -> Result<Clusters, ClustersError> {
    if text.trim_start().starts_with('{') {
        let v: Value =
            serde_json::from_str(text).map_err(|e| ClustersError::Json(e.to_string()))?;
        parse_clusters_json(&v)
    } else {
        Ok(parse_clusters_text(text))
    }
}
