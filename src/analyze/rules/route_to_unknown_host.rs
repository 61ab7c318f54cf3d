//! Cause `ROUTE_TO_UNKNOWN_HOST` (rule; declared in the catalog): a route
//! the target's callers take names a destination host (or port) for which
//! istiod builds no cluster for them.
//!
//! istiod names the cluster of every route destination
//! (`route.go` `GetDestinationCluster`: "it's okay if the target cluster
//! cannot be resolved") but builds clusters only for the services in the
//! client's registry view (`cluster.go` `buildOutboundClusters`: Services
//! and ServiceEntries exported to the client's namespace, per service
//! port). Route tables are not validated against clusters
//! (`validate_clusters: false`, httproute.go), so a destination host no
//! registry the client sees has — not in any registry, not exported to the
//! client, covered only by a wildcard ServiceEntry (clusters are named
//! after the exact host), an ExternalName alias of an unknown host — or a
//! port the service does not have (`PORT_NOT_IN_SERVICE`, told apart in
//! the claim) is answered `503 NC` `cluster_not_found` (router.cc).
//!
//! A host absent from the snapshot counts as unknown only when the
//! snapshot proves it ([`Mesh::service_presence`]: the Service was looked
//! up by name, or ServiceEntries were listed); otherwise the finding needs
//! the callers' sidecars to confirm it.

use super::routes::{blind_spots, caller_evidence, confirm, route_evidence, route_hits, RouteHit};
use crate::analyze::catalog::Cause;
use crate::analyze::confidence::{Confidence, Weight};
use crate::analyze::finding::{Evidence, Finding, Fix, SourceRef};
use crate::analyze::fix::FixKind;
use crate::istio::routing::{DestStatus, UnknownHostWhy};
use crate::model::{Mesh, Presence};

pub fn check(mesh: &Mesh) -> Vec<Finding> {
    route_hits(mesh, |s| {
        matches!(
            s,
            DestStatus::UnknownHost(_) | DestStatus::PortNotInService { .. }
        )
    })
    .iter()
    .filter_map(|h| finding(mesh, h))
    .collect()
}

/// What makes the host unknown, and whether the snapshot proves it.
fn why(mesh: &Mesh, h: &RouteHit) -> (String, Option<String>) {
    let host = &h.destination.destination.host;
    match &h.destination.status {
        DestStatus::UnknownHost(UnknownHostWhy::NotInRegistry) => match mesh.service_presence(host) {
            Presence::Absent(why) => (format!("no Service or ServiceEntry has the host {host}"), Some(why)),
            Presence::Unknown(why) => (format!("{host} is not in the snapshot ({why})"), None),
            Presence::Present => (format!("{host} is in the registry"), None),
        },
        DestStatus::UnknownHost(UnknownHostWhy::NotExported { services }) => (
            format!(
                "{host} exists but is not exported to these callers ({})",
                services
                    .iter()
                    .map(|(s, e)| format!("{s} exportTo {e:?}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Some("the exporting objects were read".into()),
        ),
        DestStatus::UnknownHost(UnknownHostWhy::CoveredOnlyByWildcard { entry, wildcard }) => (
            format!("{host} is covered only by the wildcard {wildcard} of {entry}, and istiod names clusters after the exact host"),
            Some("the ServiceEntry was read".into()),
        ),
        DestStatus::UnknownHost(UnknownHostWhy::AliasTargetUnknown { service, target }) => {
            match mesh.service_presence(target) {
                Presence::Absent(why) => (
                    format!("{service} is an ExternalName alias of {target}, which no Service or ServiceEntry has"),
                    Some(why),
                ),
                _ => (format!("{service} aliases {target}, which is not in the snapshot"), None),
            }
        }
        DestStatus::PortNotInService { port, implicit, service_ports } => (
            format!(
                "{host} has no port {port}{} (its ports: {service_ports:?})",
                if *implicit {
                    " (the destination names no port and the service has several, so the called port is used)"
                } else {
                    ""
                }
            ),
            Some("the Service was read".into()),
        ),
        _ => (String::new(), None),
    }
}

fn finding(mesh: &Mesh, h: &RouteHit) -> Option<Finding> {
    let (what, proof) = why(mesh, h);
    let c = confirm(mesh, h, true);
    let mut confidence = Confidence::default();
    match &proof {
        Some(_) => confidence.add(Weight::ConfigRouteCertain),
        // Not proven absent: only the data plane's NC lines can say it.
        None if c.lines > 0 => {}
        None => return None,
    }
    for w in &c.weights {
        confidence.add(*w);
    }
    let port_variant = matches!(h.destination.status, DestStatus::PortNotInService { .. });
    let mut explanation = h.explanation();
    explanation.push(format!(
        "istiod names the cluster but builds it only for hosts in the callers' registry view, and route tables are not checked against clusters: Envoy answers every request routed to {} 503 NC (cluster_not_found).",
        h.destination.cluster_name
    ));
    if let Some(p) = &proof {
        explanation.push(format!("Known from the snapshot: {p}."));
    }
    let mut evidence: Vec<Evidence> = route_evidence(h).into_iter().collect();
    if let Some(p) = &proof {
        let source = match mesh.kubernetes_service_of(&h.destination.destination.host) {
            Some(k) => SourceRef::Service(k),
            None => SourceRef::Object(crate::istio::object::ObjectRef {
                kind: "ServiceEntry".into(),
                namespace: String::new(),
                name: "(all)".into(),
            }),
        };
        evidence.push(Evidence::new(source, format!("{what}; {p}")));
    }
    evidence.extend(caller_evidence(h));
    evidence.extend(c.evidence);
    if let Some((line, w)) = blind_spots(mesh) {
        explanation.push(line);
        confidence.add(w);
    }
    let vs = h.route.as_ref().map(|r| r.vs.clone()).unwrap_or_default();
    let host = &h.destination.destination.host;
    Some(
        Finding::new(
            Cause::RouteToUnknownHost,
            format!("{} → {} {}", h.place(), h.destination.cluster_name, h.from_text()),
            if port_variant {
                format!(
                    "{} sends {}'s requests to port {} of {host}, which the service does not have (PORT_NOT_IN_SERVICE)",
                    h.route_text(),
                    h.callers_text(),
                    h.destination.cluster_port
                )
            } else {
                format!(
                    "{} sends {}'s requests to {host}, a host no registry they see has",
                    h.route_text(),
                    h.callers_text()
                )
            },
            &confidence,
        )
        .explain(explanation)
        .evidence(evidence)
        .fix(Some(Fix::advice(
            FixKind::EditRoute,
            if port_variant {
                format!("set the destination port of the route in VirtualService {vs} to a port {host} has")
            } else {
                format!("point the route of VirtualService {vs} at a host that exists (spelling, namespace: {host}), or create the Service or ServiceEntry for it")
            },
        ))),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::builder::*;
    use crate::snapshot::ProxyRole;
    use serde_json::{json, Value};

    fn vs_to(host: &str, port: Option<u32>) -> Value {
        let mut d = json!({"host": host});
        if let Some(p) = port {
            d["port"] = json!({"number": p});
        }
        json!({"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
            "metadata": {"name": "httpbin", "namespace": "foo"},
            "spec": {"hosts": ["httpbin"], "http": [{"route": [{"destination": d}]}]}})
    }

    fn nc_line() -> crate::envoy::access_log::AccessLogEntry {
        let mut e = entry(503, "NC", None);
        e.authority = Some("httpbin.foo:8000".into());
        e
    }

    fn mesh(
        objects: Vec<Value>,
        absent: &[(&str, &str)],
        log: Vec<crate::envoy::access_log::AccessLogEntry>,
    ) -> Mesh {
        let mut b = MeshBuilder::new()
            .target(httpbin())
            .pod(httpbin_pod())
            .pod(sleep_pod())
            .proxy(proxy(&sleep_pod(), ProxyRole::Client).with_log(log))
            .looked_up(&[], absent);
        for o in objects {
            b = b.object(o);
        }
        b.build()
    }

    #[test]
    fn fires_and_near_misses() {
        let cases: Vec<(&str, Mesh, Vec<u8>)> = vec![
            (
                "a Service looked up and absent",
                mesh(
                    vec![vs_to("httpbin-v3", None)],
                    &[("foo", "httpbin-v3")],
                    vec![],
                ),
                vec![60],
            ),
            (
                "absent and confirmed by NC lines",
                mesh(
                    vec![vs_to("httpbin-v3", None)],
                    &[("foo", "httpbin-v3")],
                    vec![nc_line()],
                ),
                vec![99],
            ),
            (
                "an external host no ServiceEntry has",
                mesh(vec![vs_to("api.example.com", Some(443))], &[], vec![]),
                vec![60],
            ),
            (
                "a port the target does not have",
                mesh(vec![vs_to("httpbin", Some(9999))], &[], vec![]),
                vec![60],
            ),
            (
                "not looked up, but the client's NC lines say it",
                mesh(vec![vs_to("elsewhere", None)], &[], vec![nc_line()]),
                vec![90],
            ),
            (
                "near miss: not looked up and nothing confirms it",
                mesh(vec![vs_to("elsewhere", None)], &[], vec![]),
                vec![],
            ),
            (
                "near miss: a route to the target itself",
                mesh(vec![vs_to("httpbin", None)], &[], vec![]),
                vec![],
            ),
        ];
        for (name, m, want) in cases {
            let got: Vec<u8> = check(&m).iter().map(|f| f.confidence).collect();
            assert_eq!(got, want, "{name}: {:#?}", check(&m));
        }
    }

    #[test]
    fn claims_name_the_host_and_the_port_variant() {
        let f = &check(&mesh(
            vec![vs_to("httpbin-v3", None)],
            &[("foo", "httpbin-v3")],
            vec![],
        ))[0];
        assert!(
            f.claim.contains("httpbin-v3.foo.svc.cluster.local"),
            "{}",
            f.claim
        );
        assert!(
            f.subject
                .contains("outbound|8000||httpbin-v3.foo.svc.cluster.local"),
            "{}",
            f.subject
        );
        let p = &check(&mesh(vec![vs_to("httpbin", Some(9999))], &[], vec![]))[0];
        assert!(p.claim.contains("PORT_NOT_IN_SERVICE"), "{}", p.claim);
    }
}
