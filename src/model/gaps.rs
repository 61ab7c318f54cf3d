//! Model stage: what could not be read, typed by source and kind.
//!
//! Two origins: gaps `collect` recorded in the snapshot (RBAC refusals,
//! unreachable sidecars, missing kinds: their text is kept as collected and
//! classified here), and gaps the model finds itself while reading
//! (an object that does not parse, no mesh config, access logs off, stats
//! dropped by the sidecar's inclusion list or absent for a reason unknown). The analysis turns the latter into
//! words; the model only says what and why.

use crate::istio::object::ObjectRef;
use crate::snapshot;

use super::pods::PodKey;
use super::proxies::Proxy;

/// Where the missing evidence was looked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GapSource {
    /// `list <plural>.<group>/<version>` (cluster-wide when `namespace` is `None`).
    ApiList {
        resource: String,
        namespace: Option<String>,
    },
    /// API discovery or `/version`.
    ApiDiscovery(String),
    /// A sidecar's admin endpoint (`/clusters`, `/config_dump`, …); `path` as collected.
    ProxyAdmin { pod: PodKey, path: String },
    /// A sidecar's `istio-proxy` container log.
    ProxyLog { pod: PodKey },
    /// A Kubernetes or Istio object.
    Object(ObjectRef),
    /// The `istio` ConfigMap in this namespace.
    MeshConfig { namespace: String },
    /// Anything else, as collected.
    Other(String),
}

/// Why it is missing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GapKind {
    /// RBAC refused the read (HTTP 403).
    Forbidden,
    /// Network, port-forward or timeout.
    Unreachable,
    /// The API or object does not exist.
    NotFound,
    /// Read, but could not be parsed (the detail says where).
    Unparseable,
    /// Not in the snapshot at all (never collected).
    NotCollected,
    /// The sidecar's log holds no access log line (logging off, or no traffic yet).
    AccessLogsOff,
    /// The sidecar's stats inclusion list drops the per-cluster counters
    /// (`detail`: empty for Istio's default list, else which list).
    StatsExcluded,
    /// No per-cluster counter in `/stats`, and the sidecar's inclusion list
    /// is not known (`detail`: the `/stats?filter=` it was read with, if any).
    StatsAbsent,
    Other,
}

/// Where a gap was recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GapOrigin {
    /// In the snapshot's cluster-wide gaps, as collected.
    Snapshot(snapshot::Gap),
    /// On one proxy's evidence, as collected.
    Proxy(snapshot::Gap),
    /// Found while building the model.
    Model,
}

/// One piece of evidence that could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gap {
    pub source: GapSource,
    pub kind: GapKind,
    /// The error, as given (parser message, API error text).
    pub detail: String,
    pub origin: GapOrigin,
}

impl Gap {
    /// A gap the model found.
    pub fn found(source: GapSource, kind: GapKind, detail: impl Into<String>) -> Gap {
        Gap {
            source,
            kind,
            detail: detail.into(),
            origin: GapOrigin::Model,
        }
    }

    /// Classify a gap `collect` recorded (`list peerauthentications.security.istio.io/v1`,
    /// `pod foo/x :15000/clusters`, …; reasons such as `HTTP 403 Forbidden …`).
    pub fn collected(g: &snapshot::Gap, on_proxy: bool) -> Gap {
        Gap {
            source: classify_source(&g.source),
            kind: classify_reason(&g.reason),
            detail: g.reason.clone(),
            origin: if on_proxy {
                GapOrigin::Proxy(g.clone())
            } else {
                GapOrigin::Snapshot(g.clone())
            },
        }
    }

    /// Could objects of `resource` (`destinationrules.networking.istio.io`)
    /// in `namespace` be missing because of this gap? A list in that
    /// namespace that was refused (RBAC) or not answered, or such a
    /// cluster-wide list whose per-namespace fallback did not read
    /// `namespace` (collect says which namespaces it read, or which it could
    /// not). A 404 hides nothing: the kind is not installed.
    pub fn may_hide(&self, resource: &str, namespace: &str) -> bool {
        if self.kind == GapKind::NotFound || self.hidden_resource() != Some(resource) {
            return false;
        }
        let GapSource::ApiList { namespace: ns, .. } = &self.source else {
            return false;
        };
        if let Some(ns) = ns {
            return ns == namespace;
        }
        let listed = |marker: &str, end: &str| -> Option<Vec<String>> {
            let rest = &self.detail[self.detail.find(marker)? + marker.len()..];
            let list = &rest[..rest.find(end).unwrap_or(rest.len())];
            Some(list.split(',').map(|n| n.trim().to_string()).collect())
        };
        if let Some(read) = listed("read only in namespaces ", " instead") {
            return !read.iter().any(|n| n == namespace);
        }
        if let Some(failed) = listed("not readable in ", " either") {
            return failed.iter().any(|n| n == namespace);
        }
        true
    }

    /// The API resource (`peerauthentications.security.istio.io`) this gap hides, if any.
    pub fn hidden_resource(&self) -> Option<&str> {
        match &self.source {
            GapSource::ApiList { resource, .. } => {
                Some(resource.split('/').next().unwrap_or(resource))
            }
            _ => None,
        }
    }
}

fn classify_source(s: &str) -> GapSource {
    if let Some(rest) = s.strip_prefix("list ") {
        let (resource, namespace) = match rest.split_once(" in namespace ") {
            Some((r, ns)) => (r, Some(ns.trim().to_string())),
            None => (rest.trim_end_matches(" (all namespaces)"), None),
        };
        return GapSource::ApiList {
            resource: resource.trim().to_string(),
            namespace,
        };
    }
    if s.starts_with("GET /") {
        return GapSource::ApiDiscovery(s.to_string());
    }
    if let Some(rest) = s.strip_prefix("pod ") {
        if let Some((pod, what)) = rest.split_once(' ') {
            if let Some((ns, name)) = pod.split_once('/') {
                let key = PodKey::new(ns, name);
                if what.contains("log") {
                    return GapSource::ProxyLog { pod: key };
                }
                if let Some(path) = what.strip_prefix(':') {
                    let path = path.split_once('/').map_or("", |(_, p)| p);
                    return GapSource::ProxyAdmin {
                        pod: key,
                        path: format!("/{path}"),
                    };
                }
            }
        }
    }
    // collect writes `configmap istio-system/istio`.
    if let Some(rest) = s
        .strip_prefix("ConfigMap ")
        .or_else(|| s.strip_prefix("configmap "))
    {
        if let Some((ns, "istio")) = rest.split_once('/') {
            return GapSource::MeshConfig {
                namespace: ns.to_string(),
            };
        }
    }
    GapSource::Other(s.to_string())
}

fn classify_reason(r: &str) -> GapKind {
    let l = r.to_ascii_lowercase();
    if l.contains("403") || l.contains("forbidden") {
        GapKind::Forbidden
    } else if l.contains("404") || l.contains("not found") {
        GapKind::NotFound
    } else if l.contains("timed out")
        || l.contains("timeout")
        || l.contains("connect")
        || l.contains("unreachable")
        || l.contains("port-forward")
        || l.contains("portforward")
    {
        GapKind::Unreachable
    } else {
        GapKind::Other
    }
}

/// `/stats` read without any `cluster.outbound|…` stat: why, when the
/// sidecar's inclusion list says (dropped by it; or nothing to say when it
/// keeps them: the proxy has no such cluster), else that it is unknown. In
/// a v2 snapshot every kept per-cluster stat survives the filter (`KEPT_STATS`
/// are counters and gauges every cluster has, read without `usedonly`).
pub(super) fn stats_gap(p: &Proxy, pod: &PodKey, stats_filter: Option<&str>) -> Option<Gap> {
    use crate::istio::stats_inclusion::InclusionBasis;
    if p.stats.as_ref()?.present("cluster.outbound|") {
        return None;
    }
    let source = GapSource::ProxyAdmin {
        pod: pod.clone(),
        path: "/stats".into(),
    };
    let inclusion = p.stats_inclusion.as_ref();
    match inclusion.map(|i| (i.basis, i.keeps_outbound_cluster_stats())) {
        Some((_, Some(true))) => None,
        Some((basis, Some(false))) => Some(Gap::found(
            source,
            GapKind::StatsExcluded,
            match basis {
                InclusionBasis::Bootstrap => "the bootstrap's stats_matcher",
                InclusionBasis::ReleaseDefaultExtended => {
                    "the pod's stats inclusion (Istio's default and what its annotations add)"
                }
                InclusionBasis::ReleaseDefault | InclusionBasis::NoList => "",
            },
        )),
        _ => Some(Gap::found(
            source,
            GapKind::StatsAbsent,
            stats_filter.unwrap_or(""),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g(source: &str, reason: &str) -> Gap {
        Gap::collected(
            &snapshot::Gap {
                source: source.into(),
                reason: reason.into(),
            },
            false,
        )
    }

    #[test]
    fn collected_gaps_are_classified() {
        let x = g(
            "list peerauthentications.security.istio.io/v1 (all namespaces)",
            "HTTP 403 Forbidden: peerauthentications is forbidden",
        );
        assert_eq!(x.kind, GapKind::Forbidden);
        assert_eq!(
            x.source,
            GapSource::ApiList {
                resource: "peerauthentications.security.istio.io/v1".into(),
                namespace: None
            }
        );
        assert_eq!(
            x.hidden_resource(),
            Some("peerauthentications.security.istio.io")
        );
        let y = g(
            "list destinationrules.networking.istio.io/v1 in namespace foo",
            "forbidden",
        );
        assert!(
            matches!(y.source, GapSource::ApiList { namespace: Some(ref n), .. } if n == "foo")
        );
        let z = g(
            "pod foo/sleep-1 :15000/clusters",
            "port-forward refused: HTTP 403",
        );
        assert_eq!(
            z.source,
            GapSource::ProxyAdmin {
                pod: PodKey::new("foo", "sleep-1"),
                path: "/clusters".into()
            }
        );
        assert_eq!(z.kind, GapKind::Forbidden);
        assert!(matches!(
            g("pod foo/a istio-proxy log", "timed out").source,
            GapSource::ProxyLog { .. }
        ));
        assert_eq!(
            g("ConfigMap istio-system/istio", "x").source,
            GapSource::MeshConfig {
                namespace: "istio-system".into()
            }
        );
        assert!(matches!(
            g("something else", "why").source,
            GapSource::Other(_)
        ));
    }
    #[test]
    fn absent_per_cluster_stats_are_explained_by_the_inclusion_list() {
        use crate::istio::mesh_config::IstioVersion;
        use crate::istio::stats_inclusion::{for_sidecar, PREFIXES_ANNOTATION};
        use crate::model::builder::*;
        use crate::model::Mesh;
        use crate::snapshot::ProxyRole;
        let v = IstioVersion::parse("1.24.0");
        let with = |inc, stat: &str| {
            let mut p = proxy(&sleep_pod(), ProxyRole::Client).with_stat(stat, 0);
            p.stats_inclusion = inc;
            MeshBuilder::new().target(httpbin()).proxy(p).build()
        };
        let kinds = |m: &Mesh| -> Vec<GapKind> {
            m.gaps
                .iter()
                .filter(|g| matches!(g.kind, GapKind::StatsExcluded | GapKind::StatsAbsent))
                .map(|g| g.kind)
                .collect()
        };
        let default = for_sidecar(v, &Default::default(), None);
        assert_eq!(
            kinds(&with(default.clone(), "server.live")),
            vec![GapKind::StatsExcluded]
        );
        assert_eq!(
            kinds(&with(None, "server.live")),
            vec![GapKind::StatsAbsent],
            "unknown list: absent, not called excluded"
        );
        // Near misses: the stats are there; or the pod's list keeps them (none means no cluster).
        let outbound = "cluster.outbound|8000||httpbin.foo.svc.cluster.local.upstream_cx_overflow";
        assert!(kinds(&with(default, outbound)).is_empty());
        let annotated = std::collections::BTreeMap::from([(
            PREFIXES_ANNOTATION.to_string(),
            "cluster.outbound".to_string(),
        )]);
        assert!(kinds(&with(for_sidecar(v, &annotated, None), "server.live")).is_empty());
    }

    #[test]
    fn which_namespaces_a_refused_list_may_hide() {
        let dr = "destinationrules.networking.istio.io";
        let ns = g(
            "list destinationrules.networking.istio.io/v1 in namespace foo",
            "HTTP 403 Forbidden",
        );
        assert!(ns.may_hide(dr, "foo") && !ns.may_hide(dr, "bar"));
        assert!(!ns.may_hide("peerauthentications.security.istio.io", "foo"));
        let wide = g(
            "list destinationrules.networking.istio.io/v1 (all namespaces)",
            "HTTP 403 Forbidden (all namespaces); read only in namespaces foo, istio-system instead, so rules elsewhere are unseen",
        );
        assert!(!wide.may_hide(dr, "foo") && !wide.may_hide(dr, "istio-system"));
        assert!(wide.may_hide(dr, "bar"), "a namespace not read");
        let failed = g(
            "list destinationrules.networking.istio.io/v1 (all namespaces)",
            "HTTP 403 Forbidden (all namespaces); per namespace, not readable in foo, bar either (HTTP 403)",
        );
        assert!(failed.may_hide(dr, "foo") && failed.may_hide(dr, "bar"));
        assert!(!failed.may_hide(dr, "istio-system"));
        let bare = g(
            "list destinationrules.networking.istio.io/v1 (all namespaces)",
            "HTTP 403 Forbidden",
        );
        assert!(bare.may_hide(dr, "anything"));
        let timeout = g(
            "list destinationrules.networking.istio.io/v1 in namespace foo",
            "timed out",
        );
        assert!(timeout.may_hide(dr, "foo"), "not read is not read");
        let absent = g(
            "list destinationrules.networking.istio.io/v1 in namespace foo",
            "HTTP 404: not found",
        );
        assert!(
            !absent.may_hide(dr, "foo"),
            "a kind not installed hides nothing"
        );
    }
}
