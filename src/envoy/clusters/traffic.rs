//! What one proxy's `/clusters` shows about traffic to a service: requests
//! and connection attempts over the service's outbound clusters (every port
//! and subset). collect samples pods with it to find a service's clients when
//! no access log names them.
//!
//! Place in the flow: part of [`super`] (envoy/ parsers); pure.
//!
//! Cluster names: istio/istio `pilot/pkg/model/service.go` `BuildSubsetKey`
//! (`outbound|<port>|<subset>|<host>`); counters: envoyproxy/envoy
//! `source/server/admin/clusters_handler.cc` (`rq_total`, `rq_error`,
//! `cx_total`, `cx_connect_fail`, per host).

use std::collections::BTreeSet;

use super::{parse_clusters_text, Clusters};
use crate::envoy::config_dump::ClusterKind;

/// Traffic one proxy's `/clusters` shows towards a service.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServiceTraffic {
    /// Sum of `rq_total` over the service's outbound clusters' hosts.
    pub rq_total: u64,
    /// Sum of `rq_error`.
    pub rq_error: u64,
    /// Sum of `cx_total`: connections opened, even when no request got
    /// through (a failed TLS handshake counts here, not in `rq_total`).
    pub cx_total: u64,
    /// Sum of `cx_connect_fail`.
    pub cx_connect_fail: u64,
    /// The outbound clusters seen for the service (with or without hosts).
    pub clusters: BTreeSet<String>,
}

impl ServiceTraffic {
    /// Add another service's traffic (a target with several Services).
    pub fn add(&mut self, other: ServiceTraffic) {
        self.rq_total = self.rq_total.saturating_add(other.rq_total);
        self.rq_error = self.rq_error.saturating_add(other.rq_error);
        self.cx_total = self.cx_total.saturating_add(other.cx_total);
        self.cx_connect_fail = self.cx_connect_fail.saturating_add(other.cx_connect_fail);
        self.clusters.extend(other.clusters);
    }
}

/// Whether `cluster` is an outbound cluster of service `name.namespace`
/// (`outbound|PORT|SUBSET|NAME.NAMESPACE.svc.DOMAIN`, any cluster domain),
/// optionally on `port`.
pub fn is_outbound_cluster_of(
    cluster: &str,
    name: &str,
    namespace: &str,
    port: Option<u16>,
) -> bool {
    if !cluster.starts_with("outbound|") {
        return false;
    }
    let ClusterKind::Outbound { port: p, host, .. } = ClusterKind::parse(cluster) else {
        return false;
    };
    if port.is_some_and(|want| want != p) {
        return false;
    }
    let svc = format!("{name}.{namespace}.svc");
    host == svc || host.starts_with(&format!("{svc}."))
}

impl Clusters {
    /// Traffic to service `name.namespace` (optionally one port) over all its
    /// outbound clusters.
    pub fn traffic_to(&self, name: &str, namespace: &str, port: Option<u16>) -> ServiceTraffic {
        let mut t = ServiceTraffic::default();
        for c in self
            .clusters
            .values()
            .filter(|c| is_outbound_cluster_of(&c.name, name, namespace, port))
        {
            t.clusters.insert(c.name.clone());
            t.rq_total = t.rq_total.saturating_add(c.total("rq_total"));
            t.rq_error = t.rq_error.saturating_add(c.total("rq_error"));
            t.cx_total = t.cx_total.saturating_add(c.total("cx_total"));
            t.cx_connect_fail = t.cx_connect_fail.saturating_add(c.total("cx_connect_fail"));
        }
        t
    }
}

/// [`Clusters::traffic_to`] on raw `/clusters` text.
pub fn traffic_to(
    clusters_text: &str,
    name: &str,
    namespace: &str,
    port: Option<u16>,
) -> ServiceTraffic {
    parse_clusters_text(clusters_text).traffic_to(name, namespace, port)
}
