//! Cause `SUBSET_NOT_FOUND` (rule; declared in the catalog): a route names a
//! subset that no applying DestinationRule defines.
//!
//! istiod builds `outbound|port|subset|host` clusters only for subsets the
//! applying DestinationRule defines (looked up from the route's namespace,
//! push_context.go `destinationRule`), while the VirtualService's route still
//! names the subset: Envoy's router finds no cluster and answers `503 NC`
//! (`cluster_not_found`, router.cc). One finding per missing subset: the
//! VirtualService is the config evidence and the clients' `NC` lines confirm
//! it; `NC` lines no route explains (a VirtualService the tool cannot see,
//! or one applied before its DestinationRule) are reported from the log alone.

use std::collections::BTreeSet;

use super::common::{client_503s, sample_line, with_flag};
use crate::analyze::catalog::Cause;
use crate::analyze::confidence::{Confidence, Weight};
use crate::analyze::finding::{Evidence, Finding, Fix, SourceRef};
use crate::analyze::fix::{self, FixKind};
use crate::envoy::access_log::AccessLogEntry;
use crate::envoy::config_dump::ClusterKind;
use crate::model::decisions::Client;
use crate::model::networking::RouteKind;
use crate::model::{Mesh, Proxy, Service, ServicePort};

/// A route destination whose subset no applying rule defines.
struct Missing {
    vs: crate::istio::object::ObjectRef,
    host: String,
    subset: String,
}

fn missing_subsets(mesh: &Mesh, svc: &Service, port: &ServicePort) -> Vec<Missing> {
    let mut out = Vec::new();
    let mut seen = BTreeSet::new();
    for vs in &mesh.config.virtual_services {
        for d in vs.destinations(RouteKind::Http) {
            let Some(subset) = &d.subset else { continue };
            if d.host_fqdn != svc.fqdn || d.port.is_some_and(|p| p != port.number as u32) {
                continue;
            }
            let lookup =
                mesh.destination_rule_lookup(&Client::in_namespace(&vs.meta.namespace), svc);
            let defined = lookup
                .selection
                .as_ref()
                .is_some_and(|s| s.subset(subset).is_some());
            if !defined && seen.insert((vs.meta.key(), subset.clone())) {
                out.push(Missing {
                    vs: vs.meta.object_ref(),
                    host: d.host.clone(),
                    subset: subset.clone(),
                });
            }
        }
    }
    out
}

/// The subset an NC line's upstream cluster names (`None`: no cluster logged).
fn logged_subset(e: &AccessLogEntry) -> Option<Option<String>> {
    let c = e.upstream_cluster.as_deref()?;
    match ClusterKind::parse(c) {
        ClusterKind::Outbound { subset, .. } => Some(subset),
        _ => Some(None),
    }
}

fn nc_evidence(p: &Proxy, lines: &[&AccessLogEntry]) -> Evidence {
    Evidence::new(
        SourceRef::AccessLog(p.label.clone()),
        format!(
            "{} request(s) answered 503 NC; e.g. {}",
            lines.len(),
            sample_line(lines)
        ),
    )
}

pub fn check(mesh: &Mesh) -> Vec<Finding> {
    let mut out = Vec::new();
    for (svc, port) in mesh.target_ports() {
        let missing = missing_subsets(mesh, svc, port);
        let clients: Vec<(&Proxy, Vec<&AccessLogEntry>)> = mesh
            .client_groups()
            .iter()
            .map(|g| {
                (
                    g.proxy,
                    with_flag(&client_503s(g.proxy, port.number, &svc.fqdn), "NC"),
                )
            })
            .filter(|(_, nc)| !nc.is_empty())
            .collect();
        let explained = |e: &AccessLogEntry| match logged_subset(e) {
            None => !missing.is_empty(),
            Some(s) => missing.iter().any(|m| Some(&m.subset) == s.as_ref()),
        };
        for m in &missing {
            let mut confidence = Confidence::of(&[Weight::ConfigCertain]);
            let mut evidence = vec![Evidence::new(
                SourceRef::Object(m.vs.clone()),
                format!("route destination host {} subset {}", m.host, m.subset),
            )];
            for (p, nc) in &clients {
                let lines: Vec<&AccessLogEntry> = nc
                    .iter()
                    .copied()
                    .filter(|e| {
                        logged_subset(e).is_none_or(|s| s.as_deref() == Some(m.subset.as_str()))
                    })
                    .collect();
                if !lines.is_empty() {
                    evidence.push(nc_evidence(p, &lines));
                }
            }
            if evidence.len() > 1 {
                confidence.add(Weight::ClientLog);
                confidence.add(Weight::DistinctiveFlag);
            }
            out.push(
                Finding::new(
                    Cause::SubsetNotFound,
                    format!("{}:{} subset {}", svc.fqdn, port.number, m.subset),
                    format!("VirtualService {} routes to subset {} of {}, which no applying DestinationRule defines", m.vs.key(), m.subset, svc.fqdn),
                    &confidence,
                )
                .explain(["Envoy gets a route to a cluster that does not exist and answers 503 NC (cluster_not_found).".to_string()])
                .evidence(evidence)
                .fixes(fix::fixes_for(
                    mesh,
                    Cause::SubsetNotFound,
                    &fix::Problem::Subset(fix::SubsetProblem {
                        svc,
                        port,
                        vs: m.vs.clone(),
                        host: m.host.clone(),
                        subset: m.subset.clone(),
                    }),
                )),
            );
        }
        for (p, nc) in &clients {
            let lines: Vec<&AccessLogEntry> =
                nc.iter().copied().filter(|e| !explained(e)).collect();
            if lines.is_empty() {
                continue;
            }
            out.push(
                Finding::new(
                    Cause::SubsetNotFound,
                    format!("{}:{} from {}", svc.fqdn, port.number, p.label),
                    format!("{}'s routes to {} point at a cluster the sidecar does not have", p.label, svc.fqdn),
                    &Confidence::of(&[Weight::ClientLog, Weight::DistinctiveFlag]),
                )
                .explain(["A VirtualService routes to a subset that no DestinationRule defines (or the VirtualService was applied before the DestinationRule): Envoy answers 503 NC cluster_not_found.".to_string()])
                .evidence([nc_evidence(p, &lines)])
                .fix(Some(Fix::advice(
                    FixKind::DefineSubset,
                    "define the subset in the DestinationRule for this host, then apply the VirtualService (make-before-break)",
                ))),
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::builder::*;
    use crate::snapshot::ProxyRole;
    use serde_json::json;

    fn vs(subset: &str) -> serde_json::Value {
        json!({"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
            "metadata": {"name": "httpbin", "namespace": "foo"},
            "spec": {"hosts": ["httpbin"], "http": [{"route": [{"destination": {"host": "httpbin", "subset": subset}}]}]}})
    }

    fn with_v1() -> serde_json::Value {
        let mut d = dr("foo", "httpbin", "httpbin", None);
        d["spec"]["subsets"] = json!([{"name": "v1", "labels": {"version": "v1"}}]);
        d
    }

    fn mesh(objects: Vec<serde_json::Value>, log: Vec<AccessLogEntry>) -> crate::model::Mesh {
        let mut b = MeshBuilder::new()
            .target(httpbin())
            .pod(httpbin_pod())
            .pod(sleep_pod())
            .proxy(proxy(&sleep_pod(), ProxyRole::Client).with_log(log));
        for o in objects {
            b = b.object(o);
        }
        b.build()
    }

    fn nc(subset: Option<&str>) -> AccessLogEntry {
        let c = subset.map(|s| format!("outbound|8000|{s}|httpbin.foo.svc.cluster.local"));
        let mut e = entry(503, "NC", c.as_deref());
        if subset.is_none() {
            e.authority = Some("httpbin.foo:8000".into());
        }
        e
    }

    #[test]
    fn fires_and_near_misses() {
        let cases: Vec<(&str, crate::model::Mesh, Vec<u8>)> = vec![
            (
                "a route to an undefined subset, config alone",
                mesh(vec![vs("v2"), with_v1()], vec![]),
                vec![60],
            ),
            (
                "config and the client's NC lines: one finding, not two",
                mesh(vec![vs("v2"), with_v1()], vec![nc(None)]),
                vec![99],
            ),
            (
                "NC lines no visible route explains: from the log",
                mesh(vec![with_v1()], vec![nc(Some("v3"))]),
                vec![90],
            ),
            (
                "near miss: the subset is defined",
                mesh(vec![vs("v1"), with_v1()], vec![]),
                vec![],
            ),
            (
                "near miss: a route to another host",
                mesh(
                    vec![{
                        let mut v = vs("v2");
                        v["spec"]["http"][0]["route"][0]["destination"]["host"] = json!("other");
                        v
                    }],
                    vec![],
                ),
                vec![],
            ),
            (
                "near miss: a route to another port of the host",
                mesh(
                    vec![
                        {
                            let mut v = vs("v2");
                            v["spec"]["http"][0]["route"][0]["destination"]["port"] =
                                json!({"number": 9000});
                            v
                        },
                        with_v1(),
                    ],
                    vec![],
                ),
                vec![],
            ),
        ];
        for (name, m, want) in cases {
            let got: Vec<u8> = check(&m).iter().map(|f| f.confidence).collect();
            assert_eq!(got, want, "{name}");
        }
    }

    #[test]
    fn the_merged_finding_cites_the_route_and_the_log() {
        let f = &check(&mesh(vec![vs("v2"), with_v1()], vec![nc(Some("v2"))]))[0];
        assert_eq!(f.subject, "httpbin.foo.svc.cluster.local:8000 subset v2");
        assert_eq!(f.evidence.len(), 2);
        assert!(f.evidence[1].detail.contains("503 NC"));
    }
}
