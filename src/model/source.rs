//! Model stage: the seam between the snapshot's schema and the model.
//!
//! Snapshot v2 adds optional fields; the model reads them only here, so a
//! schema change is a change to this file:
//! - `resolved`: the target as `collect` resolved it (Services, server pods,
//!   the port a host target names, the cluster domain and where it was read,
//!   the reads the diagnosis could not do without). With it the model does
//!   not resolve the target again; a v1 snapshot has none and the model
//!   resolves the typed target itself ([`super::target::TargetSelection::from_text`]).
//! - each proxy's Istio standard metrics (`ProxyEvidence::metrics`,
//!   Prometheus text), parsed with [`parse_istio_metrics`]; a v1 snapshot has
//!   none, but its whole `/stats` may hold the same counters in `/stats`
//!   spelling, and those are read instead.
//! - `stats_filter`: the `/stats` a v2 snapshot holds is filtered at the
//!   source to what the rules read, so "a stat is absent" is read against it.

use crate::envoy::metrics::{parse_istio_metrics, IstioMetrics};
use crate::snapshot::{self, ProxyEvidence, RouteLookups, Snapshot};

use super::pods::PodKey;
use super::services::ServiceKey;
use super::target::FoundCaller;

/// The target as `collect` resolved it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedTarget {
    /// Namespace of the target (for a host `httpbin.bar`, `bar`).
    pub namespace: String,
    pub services: Vec<ServiceKey>,
    /// The pods `collect` treated as the target's servers.
    pub server_pods: Vec<PodKey>,
    /// The one port asked for (`host:port`), if any.
    pub port: Option<u16>,
    /// The cluster domain and where `collect` read it; `None` when it only
    /// assumed Kubernetes' default (the model may know better from the proxies).
    pub cluster_domain: Option<(String, String)>,
    /// Reads the diagnosis could not do without (also in the gaps).
    pub missing: Vec<snapshot::Gap>,
    /// Callers collect found that are not read proxies (v2 `callers`).
    pub callers: Vec<FoundCaller>,
}

/// What `collect` writes as the source of an assumed domain.
const ASSUMED_DOMAIN: &str = "default";

/// The resolved target of a v2 snapshot; `None` for v1.
pub fn resolved_target(snap: &Snapshot) -> Option<ResolvedTarget> {
    let r = snap.resolved.as_ref()?;
    let domain = Some(r.cluster_domain.trim())
        .filter(|d| !d.is_empty() && r.cluster_domain_source != ASSUMED_DOMAIN)
        .map(|d| (d.to_string(), r.cluster_domain_source.clone()));
    Some(ResolvedTarget {
        namespace: r.namespace.clone(),
        services: r
            .services
            .iter()
            .map(|s| ServiceKey::new(&s.namespace, &s.name))
            .collect(),
        server_pods: r
            .server_pods
            .iter()
            .map(|p| PodKey::new(&p.namespace, &p.name))
            .collect(),
        port: r.port,
        cluster_domain: domain,
        missing: r.missing.clone(),
        callers: r
            .callers
            .iter()
            .map(|c| FoundCaller {
                pod: c.pod.as_ref().map(|p| PodKey::new(&p.namespace, &p.name)),
                because: c.because.clone(),
            })
            .collect(),
    })
}

/// A proxy's Istio standard metrics: the v2 `metrics` read (Prometheus
/// text), else the same counters in a v1 snapshot's whole `/stats`; `None`
/// when neither was read or (v1) `/stats` holds none of them.
pub fn metrics(proxy: &ProxyEvidence) -> Option<IstioMetrics> {
    if let Some(text) = &proxy.metrics {
        return Some(parse_istio_metrics(text));
    }
    let from_stats = parse_istio_metrics(proxy.stats.as_deref()?);
    (!from_stats.rows.is_empty() || !from_stats.unreadable.is_empty()).then_some(from_stats)
}

/// The `/stats?filter=` regular expression a v2 snapshot's `/stats` was
/// read with; `None` for a whole `/stats` (v1).
pub fn stats_filter(snap: &Snapshot) -> Option<&str> {
    snap.stats_filter.as_deref()
}

/// What collection looked up for the routes towards the target (v2 from
/// the routes step on); `None` when it did not.
pub fn route_lookups(snapshot: &Snapshot) -> Option<&RouteLookups> {
    snapshot.resolved.as_ref().and_then(|r| r.routes.as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::{ObjectRef, ProxyRole, ServerPod};

    fn evidence(stats: Option<&str>, metrics: Option<&str>) -> ProxyEvidence {
        ProxyEvidence {
            namespace: "foo".into(),
            pod: "sleep-1".into(),
            role: ProxyRole::Client,
            chosen_because: "t".into(),
            server_info: None,
            clusters_config: None,
            listeners_config: None,
            endpoints_config: None,
            clusters: None,
            stats: stats.map(str::to_string),
            log_tail: None,
            gaps: vec![],
            metrics: metrics.map(str::to_string),
            scope: None,
        }
    }

    #[test]
    fn the_resolved_target_of_a_v2_snapshot() {
        let mut snap = Snapshot::default();
        assert_eq!(resolved_target(&snap), None, "v1: none");
        snap.resolved = Some(snapshot::ResolvedTarget {
            namespace: "bar".into(),
            services: vec![ObjectRef {
                namespace: "bar".into(),
                name: "httpbin".into(),
            }],
            server_pods: vec![ServerPod {
                namespace: "bar".into(),
                name: "httpbin-1".into(),
                because: "backs it".into(),
                sidecar: true,
            }],
            port: Some(8000),
            cluster_domain: "corp.example".into(),
            cluster_domain_source: "--domain of pod bar/httpbin-1's istio-proxy".into(),
            missing: vec![snapshot::Gap {
                source: "list peerauthentications".into(),
                reason: "HTTP 403".into(),
            }],
            routes: None,
            callers: vec![snapshot::FoundCaller {
                pod: Some(ObjectRef {
                    namespace: "cron".into(),
                    name: "job-1".into(),
                }),
                because: "its env names it".into(),
            }],
        });
        let r = resolved_target(&snap).unwrap();
        assert_eq!(r.callers[0].pod, Some(PodKey::new("cron", "job-1")));
        assert_eq!(r.services, vec![ServiceKey::new("bar", "httpbin")]);
        assert_eq!(r.server_pods, vec![PodKey::new("bar", "httpbin-1")]);
        assert_eq!(r.port, Some(8000));
        assert_eq!(
            r.cluster_domain.as_ref().map(|(d, _)| d.as_str()),
            Some("corp.example")
        );
        assert_eq!(r.missing.len(), 1);
        // Near miss: a domain collect only assumed is no evidence.
        let res = snap.resolved.as_mut().unwrap();
        res.cluster_domain = "cluster.local".into();
        res.cluster_domain_source = "default".into();
        assert_eq!(resolved_target(&snap).unwrap().cluster_domain, None);
    }

    #[test]
    fn metrics_from_v2_or_from_a_whole_v1_stats() {
        let prom = "# TYPE istio_requests_total counter\nistio_requests_total{reporter=\"source\",response_code=\"503\",response_flags=\"UF\"} 4\n";
        let m = metrics(&evidence(None, Some(prom))).unwrap();
        assert_eq!(m.rows.len(), 1);
        assert_eq!(m.rows[0].value, 4);
        assert_eq!(
            metrics(&evidence(None, Some(""))),
            Some(IstioMetrics::default()),
            "read, none there"
        );
        let v1 = "server.live: 1\nistio.requests_total.response_code.503.response_flags.UF.reporter.source: 2\n";
        assert_eq!(metrics(&evidence(Some(v1), None)).unwrap().rows[0].value, 2);
        // Near miss: a v1 /stats without any standard metric is not "metrics read".
        assert_eq!(metrics(&evidence(Some("server.live: 1\n"), None)), None);
        assert_eq!(metrics(&evidence(None, None)), None);
    }
}
