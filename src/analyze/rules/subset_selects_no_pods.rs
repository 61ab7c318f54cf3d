//! Cause `SUBSET_SELECTS_NO_PODS` (rule; declared in the catalog): a
//! reachable route sends requests to a DestinationRule subset whose labels
//! select no ready pod of the service, while the service itself has ready
//! pods.
//!
//! istiod builds the subset cluster `outbound|port|subset|host` with the
//! endpoints of the service that carry the subset's labels
//! (`pilot/pkg/networking/core/cluster_builder.go` subset clusters, EDS
//! filtered by `subset.labels`); none carries them, or those that do are
//! not ready, and Envoy answers `503 UH` `no_healthy_upstream` on that
//! cluster. istioctl analyze's IST0173 (`DestinationRuleSubsetNotSelectPods`)
//! reports the subset whether or not traffic reaches it; here it is reported
//! only when a route a caller takes leads there ([`super::routes`]). When
//! the service has no ready pod at all, `SERVICE_WITHOUT_ENDPOINTS` says so
//! instead.

use std::collections::{BTreeMap, BTreeSet};

use super::routes::{
    blind_spots, caller_evidence, confirm, object, route_evidence, route_hits, RouteHit,
};
use crate::analyze::catalog::Cause;
use crate::analyze::confidence::{Confidence, Weight};
use crate::analyze::finding::{Evidence, Finding, Fix, SourceRef};
use crate::analyze::fix::FixKind;
use crate::istio::object::format_labels;
use crate::istio::routing::DestStatus;
use crate::model::{Mesh, Pod, Service, ServiceKey};

pub fn check(mesh: &Mesh) -> Vec<Finding> {
    route_hits(mesh, |s| {
        matches!(s, DestStatus::SubsetSelectsNoPods { .. })
    })
    .iter()
    .filter_map(|h| finding(mesh, h))
    .collect()
}

/// The model's Service a destination resolved to, when its pods were read.
pub fn destination_service<'m>(mesh: &'m Mesh, h: &RouteHit) -> Option<&'m Service> {
    let r = h.destination.service.as_ref()?;
    let key = ServiceKey::new(&r.namespace, &r.name);
    if r.kind != "Service" || !mesh.pods_read(&key) {
        return None;
    }
    mesh.service(&key)
}

/// Ready pods of `svc` that serve `port` (a named targetPort they declare).
pub fn serving_pods<'m>(mesh: &'m Mesh, svc: &'m Service, port: u16) -> Vec<&'m Pod> {
    let Some(sp) = svc.port(port) else {
        return Vec::new();
    };
    mesh.backing_pods(svc)
        .filter(|p| p.ready && p.ip.is_some())
        .filter(|p| {
            !matches!(
                sp.on_pod(p).resolution,
                crate::model::services::PortResolution::Unresolved(_)
            )
        })
        .collect()
}

/// `version=v1 (2 pods), version=v3 (1 pod)`: the values the service's
/// pods carry for the subset's label keys.
fn pod_label_values(mesh: &Mesh, svc: &Service, keys: &BTreeSet<&String>) -> String {
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for p in mesh.backing_pods(svc) {
        let v: BTreeMap<String, String> = keys
            .iter()
            .map(|k| {
                (
                    (*k).clone(),
                    p.labels
                        .get(*k)
                        .cloned()
                        .unwrap_or_else(|| "(unset)".into()),
                )
            })
            .collect();
        *seen.entry(format_labels(&v)).or_default() += 1;
    }
    if seen.is_empty() {
        return "no pod".into();
    }
    seen.iter()
        .map(|(l, n)| format!("{l} ({n} pod{})", if *n == 1 { "" } else { "s" }))
        .collect::<Vec<_>>()
        .join(", ")
}

fn finding(mesh: &Mesh, h: &RouteHit) -> Option<Finding> {
    let DestStatus::SubsetSelectsNoPods {
        subset,
        labels,
        rule,
        not_ready,
        ..
    } = &h.destination.status
    else {
        return None;
    };
    let svc = destination_service(mesh, h)?;
    let port = u16::try_from(h.destination.cluster_port).ok()?;
    // No ready pod at all: SERVICE_WITHOUT_ENDPOINTS names the cause.
    if serving_pods(mesh, svc, port).is_empty() {
        return None;
    }
    let keys: BTreeSet<&String> = labels.keys().collect();
    let carried = pod_label_values(mesh, svc, &keys);
    let what = if not_ready.is_empty() {
        format!(
            "its labels {} match no pod of {} (the pods carry {carried})",
            format_labels(labels),
            svc.key
        )
    } else {
        format!(
            "the pods with its labels {} are not ready ({})",
            format_labels(labels),
            not_ready.join(", ")
        )
    };
    let mut confidence = Confidence::of(&[Weight::ConfigRouteCertain]);
    let mut explanation = h.explanation();
    explanation.push(format!(
        "Subset {subset} of DestinationRule {rule}: {what}, so istiod gives {} no endpoint and Envoy answers 503 UH (no_healthy_upstream). The Service itself has ready pods: this is the subset, not the Service.",
        h.destination.cluster_name
    ));
    let mut evidence: Vec<Evidence> = route_evidence(h).into_iter().collect();
    evidence.push(Evidence::new(
        object("DestinationRule", rule),
        format!("subset {subset} labels {}", format_labels(labels)),
    ));
    evidence.push(Evidence::new(
        SourceRef::Service(svc.key.clone()),
        format!(
            "selects {}, {} ready; for {}: {carried}",
            crate::words::counts(mesh.backing_pods(svc).count(), "pod"),
            mesh.backing_pods(svc).filter(|p| p.ready).count(),
            keys.iter()
                .map(|k| k.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    ));
    evidence.extend(caller_evidence(h));
    let c = confirm(mesh, h, false);
    for w in &c.weights {
        confidence.add(*w);
    }
    evidence.extend(c.evidence);
    if let Some((line, w)) = blind_spots(mesh) {
        explanation.push(line);
        confidence.add(w);
    }
    let vs = h.route.as_ref().map(|r| r.vs.clone()).unwrap_or_default();
    Some(
        Finding::new(
            Cause::SubsetSelectsNoPods,
            format!("{} subset {subset} {}", h.place(), h.from_text()),
            format!(
                "{} sends {}'s requests to subset {subset} of {}, whose labels select no ready pod",
                h.route_text(),
                h.callers_text(),
                h.destination.destination.host
            ),
            &confidence,
        )
        .explain(explanation)
        .evidence(evidence)
        .fix(Some(Fix::advice(
            FixKind::EditRoute,
            format!(
                "give subset {subset} of DestinationRule {rule} labels its pods carry ({carried}), run pods labelled {}, or route VirtualService {vs} to a subset that has ready pods",
                format_labels(labels)
            ),
        ))),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::builder::*;
    use crate::snapshot::ProxyRole;
    use serde_json::{json, Value};

    const V2: &str = "outbound|8000|v2|httpbin.foo.svc.cluster.local";

    fn vs_to(subset: &str) -> Value {
        json!({"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
            "metadata": {"name": "httpbin", "namespace": "foo"},
            "spec": {"hosts": ["httpbin"], "http": [{"route": [{"destination": {"host": "httpbin", "subset": subset}}]}]}})
    }

    fn rule() -> Value {
        let mut d = dr("foo", "httpbin", "httpbin", None);
        d["spec"]["subsets"] = json!([
            {"name": "v1", "labels": {"version": "v1"}},
            {"name": "v2", "labels": {"version": "v2"}}]);
        d
    }

    fn v1_pod(ready: bool) -> crate::model::Pod {
        let mut p = httpbin_pod();
        p.labels.insert("version".into(), "v1".into());
        p.ready = ready;
        p
    }

    fn mesh(
        objects: Vec<Value>,
        pods: Vec<crate::model::Pod>,
        client: crate::model::Proxy,
    ) -> Mesh {
        let mut b = MeshBuilder::new()
            .target(httpbin())
            .pod(sleep_pod())
            .proxy(client);
        for p in pods {
            b = b.pod(p);
        }
        for o in objects {
            b = b.object(o);
        }
        b.build()
    }

    fn client() -> crate::model::Proxy {
        proxy(&sleep_pod(), ProxyRole::Client)
    }

    #[test]
    fn fires_and_near_misses() {
        let cases: Vec<(&str, Mesh, Vec<u8>)> = vec![
            (
                "all traffic to v2, only v1 pods: config alone",
                mesh(vec![vs_to("v2"), rule()], vec![v1_pod(true)], client()),
                vec![60],
            ),
            (
                "confirmed by /clusters (no host) and UH lines",
                mesh(
                    vec![vs_to("v2"), rule()],
                    vec![v1_pod(true)],
                    client()
                        .with_hosts(V2, &[])
                        .with_log(vec![entry(503, "UH", Some(V2))]),
                ),
                vec![99],
            ),
            (
                "near miss: v1 has pods",
                mesh(vec![vs_to("v1"), rule()], vec![v1_pod(true)], client()),
                vec![],
            ),
            (
                "near miss: the Service has no ready pod (SERVICE_WITHOUT_ENDPOINTS says it)",
                mesh(vec![vs_to("v2"), rule()], vec![v1_pod(false)], client()),
                vec![],
            ),
            (
                "near miss: no route goes to v2 (IST0173 alone is not a 503)",
                mesh(vec![rule()], vec![v1_pod(true)], client()),
                vec![],
            ),
        ];
        for (name, m, want) in cases {
            let got: Vec<u8> = check(&m).iter().map(|f| f.confidence).collect();
            assert_eq!(got, want, "{name}: {:#?}", check(&m));
        }
    }

    #[test]
    fn names_the_subset_the_labels_and_what_pods_carry() {
        let f = &check(&mesh(
            vec![vs_to("v2"), rule()],
            vec![v1_pod(true)],
            client(),
        ))[0];
        assert_eq!(
            f.subject,
            "httpbin.foo.svc.cluster.local:8000 subset v2 from every namespace"
        );
        let all = format!("{:?} {:?}", f.explanation, f.evidence);
        assert!(
            all.contains("version=v2") && all.contains("version=v1 (1 pod)"),
            "{all}"
        );
        assert!(!all.contains("stale"), "{all}");
        assert_eq!(f.chosen_fix().unwrap().kind, FixKind::EditRoute);
    }
}
