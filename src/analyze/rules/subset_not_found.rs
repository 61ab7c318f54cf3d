//! Cause `SUBSET_NOT_FOUND` (rule; declared in the catalog): for some
//! callers of the target, the route they take names a subset that the
//! DestinationRule applying to them does not define.
//!
//! istiod builds `outbound|port|subset|host` clusters only for the subsets
//! of the DestinationRule that applies to the client (push_context.go
//! `destinationRule`, looked up from the client's namespace, exportTo
//! honoured), while the route still names the subset: Envoy's router finds
//! no cluster and answers `503 NC` (`cluster_not_found`, router.cc). Only
//! the VirtualService that wins the host for a caller counts, only its
//! reachable routes, and only destinations that carry traffic (a weight-0
//! destination beside others is left out): [`crate::istio::routing`]
//! decides all three ([`super::routes::route_hits`]). A VirtualService
//! shadowed by another, a delegate without hosts, one bound to gateways only
//! (seen from sidecars) never fires here. A rule not exported to a caller's
//! namespace makes the subset missing for that caller alone.
//!
//! Confirmed by the callers' sidecars: `503 NC` lines, and the cluster
//! absent from their `/config_dump`. `NC` lines towards the target that no
//! route explains (a VirtualService the tool cannot see, one applied before
//! its DestinationRule) are reported from the log alone when they name a
//! subset cluster or no cluster.

use super::common::{client_503s, sample_line, with_flag};
use super::routes::{
    blind_spots, caller_evidence, confirm, object, route_evidence, route_hits, shows, RouteHit,
};
use crate::analyze::catalog::Cause;
use crate::analyze::confidence::{Confidence, Weight};
use crate::analyze::finding::{Evidence, Finding, Fix, SourceRef};
use crate::analyze::fix::{self, FixKind};
use crate::envoy::access_log::AccessLogEntry;
use crate::envoy::config_dump::ClusterKind;
use crate::istio::destination_rule::ShadowReason;
use crate::istio::routing::DestStatus;
use crate::model::{Mesh, Proxy};

pub fn check(mesh: &Mesh) -> Vec<Finding> {
    let hits = route_hits(mesh, |s| matches!(s, DestStatus::UnknownSubset { .. }));
    let mut out: Vec<Finding> = hits.iter().map(|h| finding(mesh, h)).collect();
    out.extend(unexplained_nc(mesh));
    out
}

fn reason_text(r: &ShadowReason) -> &'static str {
    match r {
        ShadowReason::NotExported | ShadowReason::HiddenFromOwnNamespace => {
            "it is not exported to these callers' namespace"
        }
        ShadowReason::NamespaceSkippedForUnexportedRule { .. } => {
            "a more specific rule of its namespace is not exported to these callers, so istiod skips the namespace"
        }
        ShadowReason::EarlierNamespaceWon { .. } | ShadowReason::NotReached => {
            "a rule found earlier in istiod's search applies instead"
        }
        ShadowReason::LessSpecificHost { .. } => "a rule for a more specific host applies instead",
        ShadowReason::SelectorRuleWon { .. }
        | ShadowReason::SelectorDoesNotSelectClient
        | ShadowReason::SelectorOutsideClientNamespace => {
            "its workloadSelector does not pick these callers"
        }
        ShadowReason::TrafficPolicyDiscardedInMerge { .. } => {
            "it was merged with an older rule for the host"
        }
        ShadowReason::NamespaceNotSearched => "istiod does not search its namespace for these callers",
    }
}

fn finding(mesh: &Mesh, h: &RouteHit) -> Finding {
    let DestStatus::UnknownSubset {
        subset,
        rules,
        available,
        defined_in_unapplied,
    } = &h.destination.status
    else {
        unreachable!("route_hits kept UnknownSubset only")
    };
    let mut confidence = Confidence::of(&[Weight::ConfigRouteCertain]);
    let mut explanation = h.explanation();
    for (rule, why) in defined_in_unapplied {
        explanation.push(format!(
            "DestinationRule {rule} defines subset {subset} but does not apply to these callers: {}.",
            reason_text(why)
        ));
    }
    explanation.push("Envoy gets a route to a cluster that does not exist and answers 503 NC (cluster_not_found).".to_string());
    let mut evidence: Vec<Evidence> = route_evidence(h).into_iter().collect();
    for rule in rules {
        evidence.push(Evidence::new(
            object("DestinationRule", rule),
            format!("applies to these callers; defines subsets {available:?}"),
        ));
    }
    for (rule, why) in defined_in_unapplied {
        evidence.push(Evidence::new(
            object("DestinationRule", rule),
            format!("defines subset {subset}; {}", reason_text(why)),
        ));
    }
    evidence.extend(caller_evidence(h));
    let c = confirm(mesh, h, true);
    for w in &c.weights {
        confidence.add(*w);
    }
    evidence.extend(c.evidence);
    if let Some((line, w)) = blind_spots(mesh) {
        explanation.push(line);
        confidence.add(w);
    }
    let route_vs = h.route.as_ref().map(|r| r.vs.clone()).unwrap_or_default();
    let not_exported = defined_in_unapplied.iter().any(|(_, r)| {
        matches!(
            r,
            ShadowReason::NotExported | ShadowReason::NamespaceSkippedForUnexportedRule { .. }
        )
    });
    let fix = if not_exported {
        format!(
            "export DestinationRule {} to {} (exportTo), or define subset {subset} in a DestinationRule those callers see",
            defined_in_unapplied[0].0,
            h.callers_text()
        )
    } else {
        format!(
            "add subset {subset} (with labels matching {}'s pods) to {}, and apply it before VirtualService {route_vs} routes to it (make-before-break)",
            h.destination.destination.host,
            rules
                .first()
                .map(|r| format!("DestinationRule {r}"))
                .unwrap_or_else(|| format!("a DestinationRule for {}", h.destination.destination.host))
        )
    };
    Finding::new(
        Cause::SubsetNotFound,
        format!("{} subset {subset} {}", h.place(), h.from_text()),
        format!(
            "VirtualService {route_vs} routes {}'s requests to subset {subset} of {}, which {}",
            h.callers_text(),
            h.destination.destination.host,
            if rules.is_empty() {
                "no DestinationRule applying to them defines".to_string()
            } else {
                format!(
                    "DestinationRule {} (the one applying to them) does not define",
                    rules.join(", ")
                )
            }
        ),
        &confidence,
    )
    .explain(explanation)
    .evidence(evidence)
    .fixes(subset_fixes(mesh, h, &route_vs, subset, not_exported, fix))
}

/// The fix engine's candidates (define the subset, or route to the pods
/// that exist; checked against the whole mesh) when the route's
/// VirtualService and the target port are known and the cause is not an
/// export; else the advice in words.
fn subset_fixes(
    mesh: &Mesh,
    h: &RouteHit,
    route_vs: &str,
    subset: &str,
    not_exported: bool,
    advice: String,
) -> fix::Fixes {
    let advice = || fix::Fixes::only(Fix::advice(FixKind::DefineSubset, advice.clone()));
    if not_exported {
        return advice();
    }
    let vs = mesh
        .config
        .virtual_services
        .iter()
        .find(|v| v.meta.key() == route_vs)
        .map(|v| v.meta.object_ref());
    let target = mesh
        .target_ports()
        .into_iter()
        .find(|(s, p)| s.fqdn == h.fqdn && u32::from(p.number) == h.destination.cluster_port);
    let (Some(vs), Some((svc, port))) = (vs, target) else {
        return advice();
    };
    let fixes = fix::fixes_for(
        mesh,
        Cause::SubsetNotFound,
        &fix::Problem::Subset(fix::SubsetProblem {
            svc,
            port,
            vs,
            host: h.destination.destination.host_written.clone(),
            subset: subset.to_string(),
        }),
    );
    if fixes.chosen.is_none() && fixes.none.is_none() && fixes.rejected.is_empty() {
        advice()
    } else {
        fixes
    }
}

/// The subset an NC line's upstream cluster names (`None`: no cluster logged).
fn logged_subset(e: &AccessLogEntry) -> Option<Option<String>> {
    let c = e.upstream_cluster.as_deref().filter(|c| *c != "-")?;
    match ClusterKind::parse(c) {
        ClusterKind::Outbound { subset, .. } => Some(subset),
        _ => Some(None),
    }
}

fn nc_evidence(p: &Proxy, lines: &[&AccessLogEntry]) -> Evidence {
    Evidence::new(
        SourceRef::AccessLog(p.label.clone()),
        format!(
            "{} answered 503 NC; e.g. {}",
            crate::words::counts(lines.len(), "request"),
            sample_line(lines)
        ),
    )
}

/// Client `503 NC` lines towards the target that no route of the config
/// explains, when they name a subset cluster or none.
fn unexplained_nc(mesh: &Mesh) -> Vec<Finding> {
    let explaining = route_hits(mesh, |s| s.expected().is_some_and(|x| x.flag == "NC"));
    let mut out = Vec::new();
    for (svc, port) in mesh.target_ports() {
        for g in mesh.client_groups() {
            let p = g.proxy;
            let lines: Vec<&AccessLogEntry> =
                with_flag(&client_503s(p, port.number, &svc.fqdn), "NC")
                    .into_iter()
                    .filter(|e| {
                        !explaining.iter().any(|h| {
                            h.proxies(mesh).iter().any(|x| x.label == p.label) && shows(e, h)
                        })
                    })
                    .filter(|e| logged_subset(e).is_none_or(|s| s.is_some()))
                    .collect();
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
                .explain(["No route of the VirtualServices the tool can see explains it: one it cannot see, or one applied before its DestinationRule, routes to a subset no DestinationRule defines; Envoy answers 503 NC cluster_not_found.".to_string()])
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
    use serde_json::{json, Value};

    fn vs(name: &str, http: Value) -> Value {
        json!({"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
            "metadata": {"name": name, "namespace": "foo", "creationTimestamp": "2024-01-01T00:00:00Z"},
            "spec": {"hosts": ["httpbin"], "http": http}})
    }

    fn to(subset: &str) -> Value {
        json!([{"route": [{"destination": {"host": "httpbin", "subset": subset}}]}])
    }

    fn with_v1() -> Value {
        let mut d = dr("foo", "httpbin", "httpbin", None);
        d["spec"]["subsets"] = json!([{"name": "v1", "labels": {"version": "v1"}}]);
        d
    }

    fn mesh(objects: Vec<Value>, log: Vec<AccessLogEntry>) -> crate::model::Mesh {
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

    fn later(mut v: Value) -> Value {
        v["metadata"]["creationTimestamp"] = json!("2025-01-01T00:00:00Z");
        v
    }

    #[test]
    fn fires_and_near_misses() {
        let cases: Vec<(&str, crate::model::Mesh, Vec<u8>)> = vec![
            (
                "a route to an undefined subset, config alone",
                mesh(vec![vs("httpbin", to("v2")), with_v1()], vec![]),
                vec![60],
            ),
            (
                "config and the client's NC lines: one finding, not two",
                mesh(vec![vs("httpbin", to("v2")), with_v1()], vec![nc(None)]),
                vec![99],
            ),
            (
                "NC lines no visible route explains: from the log",
                mesh(vec![with_v1()], vec![nc(Some("v3"))]),
                vec![90],
            ),
            (
                "near miss: the subset is defined",
                mesh(vec![vs("httpbin", to("v1")), with_v1()], vec![]),
                vec![],
            ),
            (
                "near miss: a route to another port of the host",
                mesh(
                    vec![
                        vs(
                            "httpbin",
                            json!([{"route": [{"destination": {"host": "httpbin", "subset": "v2", "port": {"number": 9000}}}],
                                    "match": [{"port": 9000}]}]),
                        ),
                        with_v1(),
                    ],
                    vec![],
                ),
                vec![],
            ),
            (
                "near miss: the newer VirtualService for the host is shadowed",
                mesh(
                    vec![
                        vs("a-old", to("v1")),
                        later(vs("b-new", to("v2"))),
                        with_v1(),
                    ],
                    vec![],
                ),
                vec![],
            ),
            (
                "near miss: a delegate (no hosts) naming a missing subset",
                mesh(
                    vec![
                        {
                            let mut d = vs("delegate", to("v2"));
                            d["spec"].as_object_mut().unwrap().remove("hosts");
                            d
                        },
                        with_v1(),
                    ],
                    vec![],
                ),
                vec![],
            ),
            (
                "near miss: bound to a gateway only, seen from sidecars",
                mesh(
                    vec![
                        {
                            let mut v = vs("edge", to("v2"));
                            v["spec"]["gateways"] = json!(["web-gateway"]);
                            v
                        },
                        with_v1(),
                    ],
                    vec![],
                ),
                vec![],
            ),
            (
                "near miss: weight 0 beside a defined subset",
                mesh(
                    vec![
                        vs(
                            "httpbin",
                            json!([{"route": [
                                {"destination": {"host": "httpbin", "subset": "v1"}, "weight": 100},
                                {"destination": {"host": "httpbin", "subset": "v2"}, "weight": 0}]}]),
                        ),
                        with_v1(),
                    ],
                    vec![],
                ),
                vec![],
            ),
            (
                "near miss: the route after a catch-all is unreachable",
                mesh(
                    vec![
                        vs(
                            "httpbin",
                            json!([{"route": [{"destination": {"host": "httpbin", "subset": "v1"}}]},
                                   {"match": [{"uri": {"prefix": "/api"}}],
                                    "route": [{"destination": {"host": "httpbin", "subset": "v2"}}]}]),
                        ),
                        with_v1(),
                    ],
                    vec![],
                ),
                vec![],
            ),
        ];
        for (name, m, want) in cases {
            let got: Vec<u8> = check(&m).iter().map(|f| f.confidence).collect();
            assert_eq!(got, want, "{name}: {:#?}", check(&m));
        }
    }

    #[test]
    fn the_merged_finding_cites_the_route_the_caller_and_the_log() {
        let f = &check(&mesh(
            vec![vs("httpbin", to("v2")), with_v1()],
            vec![nc(Some("v2"))],
        ))[0];
        assert_eq!(
            f.subject,
            "httpbin.foo.svc.cluster.local:8000 subset v2 from every namespace"
        );
        let ev: Vec<String> = f
            .evidence
            .iter()
            .map(|e| format!("{}: {}", e.source, e.detail))
            .collect();
        assert!(
            ev[0].starts_with("VirtualService foo/httpbin: route 0"),
            "{ev:#?}"
        );
        assert!(
            ev.iter().any(|e| e.starts_with("caller every namespace")),
            "{ev:#?}"
        );
        assert!(ev.iter().any(|e| e.contains("503 NC")), "{ev:#?}");
    }

    /// A DestinationRule kept to its namespace: the subset is missing for
    /// callers elsewhere only.
    #[test]
    fn a_rule_not_exported_fails_other_namespaces_only() {
        let mut d = with_v1();
        d["spec"]["subsets"] = json!([{"name": "v1", "labels": {"app": "httpbin"}}]);
        d["spec"]["exportTo"] = json!(["."]);
        let m = MeshBuilder::new()
            .target(httpbin())
            .pod(httpbin_pod())
            .pod(pod(
                "bar",
                "client-1",
                "client",
                "10.0.0.9",
                Some(crate::istio::sidecar::SidecarKind::Classic),
            ))
            .object(vs("httpbin", to("v1")))
            .object(d)
            .build();
        let f = check(&m);
        assert_eq!(f.len(), 1, "{f:#?}");
        assert!(f[0].subject.contains("bar"), "{}", f[0].subject);
        assert!(
            !f[0].subject.contains("foo,") && !f[0].subject.contains("namespace foo"),
            "{}",
            f[0].subject
        );
        assert!(
            f[0].chosen_fix().unwrap().summary.contains("exportTo"),
            "{:?}",
            f[0].chosen_fix()
        );
        assert!(
            f[0].explanation.iter().any(|l| l.contains("not exported")),
            "{:#?}",
            f[0].explanation
        );
    }
}
