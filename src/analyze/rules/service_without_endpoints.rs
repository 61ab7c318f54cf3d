//! Cause `SERVICE_WITHOUT_ENDPOINTS` (rule; declared in the catalog): a
//! target Service has no ready endpoint on a port, so every request routed
//! to it gets `503 UH` `no_healthy_upstream`.
//!
//! Kubernetes lists a pod in a Service's EndpointSlices when the selector
//! matches it, it has an IP, is Ready and not terminating, and — for a
//! named `targetPort` — declares a container port of that name
//! (k8s.io/endpointslice `utils.go` `findPort`; a pod without it gets no
//! endpoint). istiod builds `outbound|port||host` from those endpoints
//! (Istio 1.31 also sends unready ones as UNHEALTHY with panic threshold 0,
//! `PILOT_AUTO_SEND_UNHEALTHY_ENDPOINTS`): with none healthy, Envoy's router
//! answers `503 UH` (router.cc, `no_healthy_upstream`). Three reasons are
//! told apart: the selector matches no pod, the matching pods are not
//! ready, the ready pods do not declare the named target port. The callers
//! whose routes reach the Service (sidecars, gateways) are named; the
//! failure is confirmed by their sidecars' `UH` lines and `/clusters`.

use super::routes::{caller_evidence, confirm, route_hits, RouteHit, Via};
use super::subset_selects_no_pods::serving_pods;
use crate::analyze::catalog::Cause;
use crate::analyze::confidence::{Confidence, Weight};
use crate::analyze::finding::{Evidence, Finding, Fix, Severity, SourceRef};
use crate::analyze::fix::FixKind;
use crate::istio::object::format_labels;
use crate::istio::routing::DestStatus;
use crate::model::services::{PortResolution, TargetPort};
use crate::model::{Mesh, Service, ServicePort};

/// Why a Service port has no ready endpoint.
#[derive(Debug, Clone, PartialEq)]
enum Why {
    /// The selector matches no pod.
    SelectsNothing,
    /// Pods match; none is ready.
    NotReady(Vec<String>),
    /// Ready pods match; none declares the named targetPort.
    NamedPortUndeclared { name: String, pods: Vec<String> },
    /// No selector; its EndpointSlices list no ready endpoint.
    ManualEmpty,
}

pub fn check(mesh: &Mesh) -> Vec<Finding> {
    let hits = route_hits(mesh, |s| {
        matches!(
            s,
            DestStatus::NoEndpoints { .. } | DestStatus::SubsetSelectsNoPods { .. }
        )
    });
    let mut out = Vec::new();
    for (svc, port) in mesh.target_ports() {
        let Some(why) = why(mesh, svc, port) else {
            continue;
        };
        let reaching: Vec<&RouteHit> = hits
            .iter()
            .filter(|h| {
                h.destination
                    .service
                    .as_ref()
                    .is_some_and(|r| r.namespace == svc.key.namespace && r.name == svc.key.name)
                    && h.destination.cluster_port == u32::from(port.number)
            })
            .collect();
        out.push(finding(mesh, svc, port, &why, &reaching));
    }
    out
}

fn why(mesh: &Mesh, svc: &Service, port: &ServicePort) -> Option<Why> {
    if svc.selector.is_none() {
        let sets = mesh.endpoints_of(&svc.key);
        return (!sets.is_empty() && mesh.ready_endpoints(&svc.key) == 0)
            .then_some(Why::ManualEmpty);
    }
    if !mesh.pods_read(&svc.key) || !serving_pods(mesh, svc, port.number).is_empty() {
        return None;
    }
    let selected: Vec<_> = mesh.backing_pods(svc).collect();
    if selected.is_empty() {
        return Some(Why::SelectsNothing);
    }
    let ready: Vec<_> = selected
        .iter()
        .filter(|p| p.ready && p.ip.is_some())
        .collect();
    if ready.is_empty() {
        return Some(Why::NotReady(
            selected.iter().map(|p| p.key.to_string()).collect(),
        ));
    }
    match &port.target_port {
        TargetPort::Name(name) => Some(Why::NamedPortUndeclared {
            name: name.clone(),
            pods: ready
                .iter()
                .filter(|p| matches!(port.on_pod(p).resolution, PortResolution::Unresolved(_)))
                .map(|p| p.key.to_string())
                .collect(),
        }),
        TargetPort::Number(_) => None,
    }
}

/// The reason in words, and the fix.
fn texts(svc: &Service, port: &ServicePort, why: &Why) -> (String, String) {
    let selector = svc
        .selector
        .as_ref()
        .map(format_labels)
        .unwrap_or_else(|| "none".into());
    match why {
        Why::SelectsNothing => (
            format!("its selector {selector} matches no pod in namespace {}", svc.key.namespace),
            format!(
                "make the selector of Service {} match the pods' labels, or run pods labelled {selector} (kubectl get pods -n {} --show-labels)",
                svc.key, svc.key.namespace
            ),
        ),
        Why::NotReady(pods) => (
            format!("the {} its selector {selector} matches {} not ready: {}", crate::words::noun(pods.len(), "pod", "pods"), crate::words::noun(pods.len(), "is", "are"), pods.join(", ")),
            format!(
                "make the pods of {} ready (kubectl describe pod -n {} {}: readiness probe, crash, image)",
                svc.key,
                svc.key.namespace,
                pods.first().map(|p| p.rsplit('/').next().unwrap_or(p)).unwrap_or("")
            ),
        ),
        Why::NamedPortUndeclared { name, pods } => (
            format!(
                "port {} has targetPort {name:?}, a name no ready pod declares among its container ports ({})",
                port.number,
                pods.join(", ")
            ),
            format!(
                "name the container port {name:?} in the pods of {} (or set targetPort to the port number)",
                svc.key
            ),
        ),
        Why::ManualEmpty => (
            "it has no selector and its EndpointSlices list no ready endpoint".to_string(),
            format!("add ready endpoints to the EndpointSlices of {} (it has no selector)", svc.key),
        ),
    }
}

fn finding(
    mesh: &Mesh,
    svc: &Service,
    port: &ServicePort,
    why: &Why,
    reaching: &[&RouteHit],
) -> Finding {
    let selector = svc
        .selector
        .as_ref()
        .map(format_labels)
        .unwrap_or_else(|| "none".into());
    let (reason, fix) = texts(svc, port, why);
    let routed = !reaching.is_empty();
    let mut confidence = Confidence::default();
    confidence.add_if(routed, Weight::ConfigRouteCertain);
    confidence.add_if(!routed, Weight::ConfigCertain);
    let mut explanation = vec![format!(
        "Service {} has no ready endpoint on port {}: {reason}. istiod gives outbound|{}||{} no healthy endpoint and Envoy answers 503 UH (no_healthy_upstream).",
        svc.key, port.number, port.number, svc.fqdn
    )];
    let mut evidence = vec![
        Evidence::new(
            SourceRef::Service(svc.key.clone()),
            format!(
                "selector {selector}; port {} targetPort {}",
                port.number,
                match &port.target_port {
                    TargetPort::Number(n) => n.to_string(),
                    TargetPort::Name(n) => format!("{n:?}"),
                }
            ),
        ),
        Evidence::new(
            SourceRef::Endpoints(svc.key.clone()),
            crate::words::counts(mesh.ready_endpoints(&svc.key), "ready endpoint"),
        ),
    ];
    let mut callers = Vec::new();
    for h in reaching {
        explanation.push(format!(
            "{}: {}.",
            capital(&h.callers_text()),
            h.route_text()
        ));
        callers.push(match &h.via {
            Via::Sidecar { .. } => h.callers_text(),
            Via::Gateway { caller, host, port } => {
                format!("{} for {host}:{port}", caller.name())
            }
        });
        evidence.extend(caller_evidence(h));
        let c = confirm(mesh, h, false);
        for w in c.weights {
            if !confidence.basis().contains(&w) {
                confidence.add(w);
            }
        }
        evidence.extend(c.evidence);
    }
    if !routed {
        explanation.push("No route of a caller the tool found leads there now: requests to its host are routed elsewhere.".into());
    }
    let mut f = Finding::new(
        Cause::ServiceWithoutEndpoints,
        format!("{}:{}", svc.fqdn, port.number),
        if routed {
            format!(
                "Service {} has no ready endpoint on port {}: requests from {} get 503 UH",
                svc.key,
                port.number,
                callers.join("; ")
            )
        } else {
            format!(
                "Service {} has no ready endpoint on port {}",
                svc.key, port.number
            )
        },
        &confidence,
    )
    .explain(explanation)
    .evidence(evidence)
    .fix(Some(Fix::advice(FixKind::ReadyEndpoints, fix)));
    if !routed {
        f = f.with_severity(Severity::Warning);
    }
    f
}

fn capital(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::builder::*;
    use crate::snapshot::ProxyRole;

    const CLUSTER: &str = "outbound|8000||httpbin.foo.svc.cluster.local";

    fn mesh(svc: Service, pods: Vec<crate::model::Pod>, client: crate::model::Proxy) -> Mesh {
        let mut b = MeshBuilder::new()
            .target(svc)
            .pod(sleep_pod())
            .proxy(client);
        for p in pods {
            b = b.pod(p);
        }
        b.build()
    }

    fn client() -> crate::model::Proxy {
        proxy(&sleep_pod(), ProxyRole::Client)
    }

    fn unready() -> crate::model::Pod {
        let mut p = httpbin_pod();
        p.ready = false;
        p
    }

    fn named_port() -> Service {
        let mut s = httpbin();
        s.ports[0].target_port = TargetPort::Name("web".into());
        s
    }

    #[test]
    fn fires_and_near_misses() {
        type Want = Option<(Severity, u8, &'static str)>;
        let cases: Vec<(&str, Mesh, Want)> = vec![
            (
                "the selector matches no pod",
                mesh(httpbin(), vec![], client()),
                Some((Severity::Error, 60, "matches no pod")),
            ),
            (
                "the pod is not ready, confirmed by /clusters and UH lines",
                mesh(
                    httpbin(),
                    vec![unready()],
                    client().with_hosts(CLUSTER, &[]).with_log(vec![entry(
                        503,
                        "UH",
                        Some(CLUSTER),
                    )]),
                ),
                Some((Severity::Error, 99, "not ready: foo/httpbin-1")),
            ),
            (
                "a named targetPort the pod does not declare",
                mesh(named_port(), vec![httpbin_pod()], client()),
                Some((Severity::Error, 60, "targetPort \"web\"")),
            ),
            (
                "near miss: a ready pod",
                mesh(httpbin(), vec![httpbin_pod()], client()),
                None,
            ),
            (
                "near miss: the named port is declared",
                {
                    let mut s = httpbin();
                    s.ports[0].target_port = TargetPort::Name("http".into());
                    mesh(s, vec![httpbin_pod()], client())
                },
                None,
            ),
        ];
        for (name, m, want) in cases {
            let f = check(&m);
            let got = f.first().map(|f| (f.severity, f.confidence));
            assert_eq!(got, want.map(|(s, c, _)| (s, c)), "{name}: {f:#?}");
            if let Some((_, _, text)) = want {
                assert!(
                    f[0].explanation[0].contains(text),
                    "{name}: {:?}",
                    f[0].explanation
                );
            }
        }
    }

    #[test]
    fn names_the_callers_it_fails() {
        let m = MeshBuilder::new()
            .target(httpbin())
            .pod(pod(
                "bar",
                "web-1",
                "web",
                "10.0.0.7",
                Some(crate::istio::sidecar::SidecarKind::Classic),
            ))
            .build();
        let f = &check(&m)[0];
        assert!(
            f.claim.contains("from every namespace get 503 UH"),
            "{}",
            f.claim
        );
        assert!(
            f.evidence
                .iter()
                .any(|e| e.detail.contains("pod bar/web-1")),
            "the representative client is named: {:#?}",
            f.evidence
        );
        assert!(
            f.evidence
                .iter()
                .any(|e| e.source.to_string().starts_with("caller ")),
            "{:#?}",
            f.evidence
        );
    }
}
