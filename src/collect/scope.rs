//! Collect stage: what of a sidecar's Envoy config one diagnosis needs, as
//! the regular expressions of Envoy's admin filters ([`AdminScope`]).
//!
//! A sidecar carries a cluster per service of the mesh (and listeners,
//! endpoints, stats for each): at 2,000 services that is ~60 MB of admin
//! answers for one target. The diagnosis of `svc/httpbin -n foo` reads
//! - the clusters and endpoints of the target's hosts
//!   (`outbound|PORT|SUBSET|FQDN`), of the hosts the VirtualServices for it
//!   route to, every `inbound|…` cluster (the pod's own ports: few), and
//!   Istio's catch-alls (`BlackHoleCluster`, `PassthroughCluster`,
//!   `InboundPassthroughCluster*`), so a client without the target's cluster
//!   still shows a non-empty, honest list;
//! - the listeners `virtualInbound`, `virtualOutbound` (their access log
//!   formats and inbound filter chains) and those of the target's ports
//!   (`0.0.0.0_8000`, `10.96.0.5_8000`, pre-1.8 inbound `10.0.0.4_8080`);
//! - `/clusters` and `/stats` of those clusters (and every listener's stats).
//!
//! Envoy facts (checked against Envoy 1.40 in the lab and its admin docs,
//! envoyproxy/envoy `docs/root/operations/admin.rst`, v1.40.0):
//! `config_dump?name_regex=` is a full match on the resource name
//! (`source/server/admin/config_dump_handler.cc`, `buildNameMatcher`), and
//! applies to clusters, listeners and endpoint configs (by `cluster_name`);
//! `/clusters?filter=` and `/stats?filter=` are RE2 partial matches, so every
//! expression here is anchored. An Envoy that ignores a filter answers with
//! everything, which the parsers take as before.
//!
//! The scope is recorded on each sidecar's evidence
//! ([`crate::snapshot::AdminScope`]): the analysis never concludes "the
//! proxy has no cluster X" for an X outside the scope.

use std::collections::BTreeSet;

use serde_json::Value;

use super::objects;
use crate::envoy::stats::{istio_metric_alternatives, regex_escape, KEPT_STATS};
use crate::snapshot::AdminScope;

/// Istio's catch-all clusters (pilot/pkg/util `BlackHoleCluster`,
/// `PassthroughCluster`, `InboundPassthroughCluster{Ipv4,Ipv6}`; 1.10+
/// `InboundPassthroughCluster` alone).
const CATCH_ALL_CLUSTERS: &str =
    "BlackHoleCluster|PassthroughCluster|InboundPassthroughCluster[A-Za-z0-9]*";

/// The FQDN pattern of a host as a cluster name ends with it: a Kubernetes
/// short name (`reviews`) is `reviews.NS.svc.DOMAIN`; `name.ns` may be a
/// Service too; anything else is taken as written (Istio resolves only
/// names without a dot, pilot/pkg/model `ResolveShortnameToFQDN`).
fn host_patterns(host: &str, namespace: &str, out: &mut BTreeSet<String>) {
    let host = host.trim().trim_end_matches('.');
    if host.is_empty() || host.contains('*') {
        return;
    }
    let dots = host.matches('.').count();
    if dots == 0 {
        out.insert(format!(
            "{}\\.svc\\.[^|]+",
            regex_escape(&format!("{host}.{namespace}"))
        ));
        return;
    }
    out.insert(regex_escape(host));
    if dots == 1 || host.ends_with(".svc") {
        let base = host.trim_end_matches(".svc");
        out.insert(format!("{}\\.svc\\.[^|]+", regex_escape(base)));
    }
}

/// Does a VirtualService host name the service `name.ns`?
fn names_service(host: &str, vs_namespace: &str, name: &str, ns: &str) -> bool {
    let host = host.trim_end_matches('.');
    (host == name && vs_namespace == ns)
        || host == format!("{name}.{ns}")
        || host == format!("{name}.{ns}.svc")
        || host.starts_with(&format!("{name}.{ns}.svc."))
}

/// Every `destination.host` of a VirtualService's http/tcp/tls routes (and
/// mirrors).
fn destinations(vs: &Value) -> Vec<&str> {
    let mut out = Vec::new();
    for section in ["http", "tcp", "tls"] {
        for route in vs
            .pointer(&format!("/spec/{section}"))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            for d in route
                .get("route")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if let Some(h) = d.pointer("/destination/host").and_then(Value::as_str) {
                    out.push(h);
                }
            }
            if let Some(h) = route.pointer("/mirror/host").and_then(Value::as_str) {
                out.push(h);
            }
        }
    }
    out
}

/// The ports of the target: each Service port and numeric targetPort, and
/// the server pods' container ports.
fn ports(services: &[Value], server_pods: &[&Value]) -> BTreeSet<u16> {
    let mut out = BTreeSet::new();
    let num = |v: Option<&Value>| {
        v.and_then(Value::as_u64)
            .and_then(|p| u16::try_from(p).ok())
    };
    for s in services {
        for p in s
            .pointer("/spec/ports")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            out.extend(num(p.get("port")));
            out.extend(num(p.get("targetPort")));
        }
    }
    for pod in server_pods {
        for c in pod
            .pointer("/spec/containers")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            for p in c
                .get("ports")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                out.extend(num(p.get("containerPort")));
            }
        }
    }
    out
}

/// The scope of a diagnosis of `services` (backed by `server_pods`), with
/// the VirtualServices among `objects`; `None` when there is no Service to
/// narrow to (a host only a ServiceEntry defines: everything is read).
pub fn scope_for(
    services: &[Value],
    server_pods: &[&Value],
    objects: &[Value],
) -> Option<AdminScope> {
    if services.is_empty() {
        return None;
    }
    let mut hosts = BTreeSet::new();
    for s in services {
        let (name, ns) = (objects::name(s), objects::namespace(s));
        host_patterns(name, ns, &mut hosts);
        for vs in objects
            .iter()
            .filter(|o| o.get("kind").and_then(Value::as_str) == Some("VirtualService"))
        {
            let vs_ns = objects::namespace(vs);
            let for_target = vs
                .pointer("/spec/hosts")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .any(|h| names_service(h, vs_ns, name, ns));
            if for_target {
                for d in destinations(vs) {
                    host_patterns(d, vs_ns, &mut hosts);
                }
            }
        }
    }
    let hosts: Vec<String> = hosts.into_iter().collect();
    let clusters = format!(
        "inbound\\|.*|outbound\\|[0-9]+\\|[^|]*\\|(?:{})|{CATCH_ALL_CLUSTERS}",
        hosts.join("|")
    );
    let ports: Vec<String> = ports(services, server_pods)
        .iter()
        .map(u16::to_string)
        .collect();
    let listeners = if ports.is_empty() {
        "virtualInbound|virtualOutbound".to_string()
    } else {
        format!("virtualInbound|virtualOutbound|.*_(?:{})", ports.join("|"))
    };
    Some(AdminScope {
        clusters: format!("^(?:{clusters})$"),
        listeners: format!("^(?:{listeners})$"),
    })
}

/// The `/stats?filter=` expression narrowed to the scope's clusters: the
/// kept suffixes ([`KEPT_STATS`]) of those clusters and of every listener,
/// and Istio's standard metrics (few: one series per peer seen).
pub fn stats_filter(scope: &AdminScope) -> String {
    let suffixes: Vec<String> = KEPT_STATS.iter().map(|s| regex_escape(s)).collect();
    let inner = scope
        .clusters
        .strip_prefix("^(?:")
        .and_then(|s| s.strip_suffix(")$"))
        .unwrap_or(".*");
    format!(
        "^(?:cluster\\.(?:{inner})|listener\\..*)\\.(?:{})$|{}",
        suffixes.join("|"),
        istio_metric_alternatives()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use regex::Regex;
    use serde_json::json;

    fn svc() -> Value {
        json!({"kind": "Service", "metadata": {"name": "httpbin", "namespace": "foo"},
            "spec": {"ports": [{"port": 8000, "targetPort": 8080}], "selector": {"app": "httpbin"}}})
    }

    fn scope_with(objects: &[Value]) -> AdminScope {
        let pod = json!({"spec": {"containers": [{"name": "httpbin", "ports": [{"containerPort": 9090}]}]}});
        scope_for(&[svc()], &[&pod], objects).unwrap()
    }

    #[test]
    fn clusters_of_the_target_and_its_routes_only() {
        let vs = json!({"kind": "VirtualService", "metadata": {"name": "r", "namespace": "foo"},
            "spec": {"hosts": ["httpbin"], "http": [{"route": [
                {"destination": {"host": "httpbin-v2"}},
                {"destination": {"host": "api.example.com"}}],
                "mirror": {"host": "shadow.bar.svc.cluster.local"}}]}});
        let other = json!({"kind": "VirtualService", "metadata": {"name": "o", "namespace": "foo"},
            "spec": {"hosts": ["reviews"], "http": [{"route": [{"destination": {"host": "ratings"}}]}]}});
        let s = scope_with(&[vs, other]);
        let re = Regex::new(&s.clusters).unwrap();
        for (name, kept) in [
            ("outbound|8000||httpbin.foo.svc.cluster.local", true),
            ("outbound|8000|v1|httpbin.foo.svc.cluster.local", true),
            ("outbound|8000||httpbin.foo.svc.corp.example", true),
            ("outbound|80||httpbin-v2.foo.svc.cluster.local", true),
            ("outbound|443||api.example.com", true),
            ("outbound|80||shadow.bar.svc.cluster.local", true),
            ("inbound|8080||", true),
            ("inbound|8080|http|httpbin.foo.svc.cluster.local", true),
            ("BlackHoleCluster", true),
            ("InboundPassthroughClusterIpv4", true),
            ("outbound|8000||httpbin.bar.svc.cluster.local", false),
            ("outbound|8000||xhttpbin.foo.svc.cluster.local", false),
            ("outbound|9080||ratings.foo.svc.cluster.local", false),
            ("outbound|8000||httpbin.foo.svc.cluster.local.evil|x", false),
        ] {
            assert_eq!(re.is_match(name), kept, "{name}");
        }
        let re = Regex::new(&s.listeners).unwrap();
        for (name, kept) in [
            ("virtualInbound", true),
            ("virtualOutbound", true),
            ("0.0.0.0_8000", true),
            ("10.96.0.5_8000", true),
            ("10.0.0.4_8080", true),
            ("10.0.0.4_9090", true),
            ("0.0.0.0_80", false),
            ("0.0.0.0_18000", false),
        ] {
            assert_eq!(re.is_match(name), kept, "{name}");
        }
    }

    #[test]
    fn stats_of_the_scope() {
        let s = scope_with(&[]);
        let re = Regex::new(&stats_filter(&s)).unwrap();
        for (name, kept) in [
            (
                "cluster.outbound|8000||httpbin.foo.svc.cluster.local.upstream_cx_connect_fail",
                true,
            ),
            ("cluster.inbound|8080||.upstream_rq_503", true),
            ("listener.10.0.0.4_8080.no_filter_chain_match", true),
            ("istio.requests_total.response_code.503", true),
            (
                "cluster.outbound|80||other.bar.svc.cluster.local.upstream_cx_connect_fail",
                false,
            ),
            (
                "cluster.outbound|8000||httpbin.foo.svc.cluster.local.upstream_rq_total",
                false,
            ),
        ] {
            assert_eq!(re.is_match(name), kept, "{name}");
        }
    }

    #[test]
    fn admin_reads_carry_the_filters_and_empty_answers_are_gaps() {
        use crate::collect::sidecar::{proxy_evidence_scoped, AdminRead, AdminResult, ProxyJob};
        use crate::snapshot::ProxyRole;
        let s = scope_with(&[]);
        for r in AdminRead::ALL {
            let p = r.path_for(Some(&s));
            assert!(p.parse::<http::Uri>().is_ok(), "{p}");
            match r {
                AdminRead::ClustersConfig
                | AdminRead::ListenersConfig
                | AdminRead::EndpointsConfig => {
                    assert!(
                        p.starts_with(r.path()) && p.contains("&name_regex=%5E"),
                        "{p}"
                    )
                }
                AdminRead::Clusters | AdminRead::Stats => assert!(p.contains("?filter=%5E"), "{p}"),
                _ => assert_eq!(p, r.path()),
            }
            assert_eq!(r.path_for(None), r.path());
        }
        let job = ProxyJob {
            namespace: "foo".into(),
            pod: "sleep-1".into(),
            role: ProxyRole::Client,
            because: "t".into(),
        };
        let results: Vec<AdminResult> = AdminRead::ALL
            .iter()
            .map(|r| match r {
                AdminRead::ClustersConfig => Ok("{ }\n".to_string()),
                AdminRead::Clusters => Ok(String::new()),
                AdminRead::ServerInfo => Ok("{}".to_string()),
                AdminRead::EndpointsConfig | AdminRead::ListenersConfig => Ok("{}".to_string()),
                _ => Ok(String::new()),
            })
            .collect();
        let ev = proxy_evidence_scoped(
            &job,
            &AdminRead::ALL,
            Some(&s),
            Ok(results),
            Ok(String::new()),
        );
        assert_eq!(ev.scope.as_ref(), Some(&s));
        let sources: Vec<&str> = ev.gaps.iter().map(|g| g.source.as_str()).collect();
        assert_eq!(
            sources,
            [
                "pod foo/sleep-1 :15000/config_dump?resource=dynamic_active_clusters",
                "pod foo/sleep-1 :15000/config_dump?resource=dynamic_listeners",
                "pod foo/sleep-1 :15000/clusters",
            ],
            "an empty endpoints answer is normal (no EDS cluster matched)"
        );
        assert!(
            ev.gaps[0].reason.contains("nothing matched"),
            "{}",
            ev.gaps[0].reason
        );
        assert!(
            ev.clusters_config.is_some(),
            "an empty dump is still what was read"
        );
    }

    #[test]
    fn no_service_no_scope() {
        assert_eq!(scope_for(&[], &[], &[]), None);
    }
}
