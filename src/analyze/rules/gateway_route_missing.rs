//! Cause `GATEWAY_ROUTE_MISSING` (rule; declared in the catalog): a
//! gateway meant to reach the target has no route for a host it serves —
//! the gateway answers `404 NR route_not_found`, not a 503. Information:
//! the target's own sidecars see nothing of it.
//!
//! Two shapes: a VirtualService routing to the target binds a Gateway, but
//! for one of its hosts the gateway builds no virtual host (the host is not
//! among the Gateway server's hosts for the VirtualService's namespace, the
//! VirtualService is not exported to the gateway's namespace, …), or a
//! Gateway server lists the target's own host and no VirtualService bound
//! to it serves that host; and a VirtualService binding a Gateway the
//! snapshot does not have (Kiali KIA1102).
//!
//! Sources (istio/istio): `pilot/pkg/networking/core/gateway.go`
//! `buildGatewayHTTPRouteConfig` (VirtualServices bound to the gateway,
//! hosts intersected with the server's; no virtual host at all → a
//! `blackhole` one); Envoy `source/common/router/config_impl.cc`
//! `RouteMatcher::findVirtualHost` (no match → `404 NR route_not_found`).
//! Decided in [`crate::istio::routing::gateway_query`].

use super::routes::object;
use crate::analyze::catalog::Cause;
use crate::analyze::confidence::{Confidence, Weight};
use crate::analyze::finding::{Evidence, Finding, Fix, SourceRef};
use crate::analyze::fix::FixKind;
use crate::istio::routing::explain::{gateway_text, shadow_text};
use crate::istio::routing::GatewayOutcome;
use crate::model::{GatewayCaller, GatewayPath, Mesh};

pub fn check(mesh: &Mesh) -> Vec<Finding> {
    let mut out = Vec::new();
    for svc in mesh.target_services() {
        let tr = mesh.target_routes(svc);
        for g in &tr.gateways {
            for p in &g.paths {
                if p.view.outcome == GatewayOutcome::NoVirtualHost {
                    out.push(no_virtual_host(mesh, &svc.fqdn, g, p));
                }
            }
        }
        if mesh.list_forbidden("gateways", "") {
            continue;
        }
        for m in &tr.missing_gateways {
            out.push(
                Finding::new(
                    Cause::GatewayRouteMissing,
                    format!("{}: VirtualService {} at gateway {}", svc.fqdn, m.vs, m.gateway),
                    format!(
                        "VirtualService {} routes to {} through gateway {}, which does not exist: no gateway serves {} from it",
                        m.vs,
                        svc.fqdn,
                        m.gateway,
                        m.hosts.join(", ")
                    ),
                    &Confidence::of(&[Weight::ConfigAdvisory]),
                )
                .explain([format!(
                    "istiod binds a VirtualService only to the Gateways its `gateways` name ({} resolves in the VirtualService's namespace); with none, requests for its hosts at any gateway get 404 NR (route_not_found) unless another VirtualService serves them.",
                    m.gateway
                )])
                .evidence([Evidence::new(
                    object("VirtualService", &m.vs),
                    format!("gateways names {}; every Gateway was listed and none has that name", m.gateway),
                )])
                .fix(Some(Fix::advice(
                    FixKind::EditRoute,
                    format!("name an existing Gateway in spec.gateways of VirtualService {} (`<namespace>/<name>`)", m.vs),
                ))),
            );
        }
    }
    out
}

fn no_virtual_host(mesh: &Mesh, fqdn: &str, g: &GatewayCaller, p: &GatewayPath) -> Finding {
    let mut confidence = Confidence::of(&[Weight::ConfigAdvisory]);
    let mut explanation = vec![format!("{}.", gateway_text(&p.view))];
    explanation.extend(
        p.view
            .shadowed
            .iter()
            .map(|(vs, r)| format!("{}.", shadow_text(vs, r))),
    );
    let mut evidence = vec![Evidence::new(
        object("Gateway", &g.gateway),
        format!(
            "server port {} for host {}; virtual hosts built: {}",
            p.port,
            p.host,
            if p.view.domains.is_empty() {
                "none".to_string()
            } else {
                p.view.domains.join(", ")
            }
        ),
    )];
    if let Some(vs) = &p.vs {
        evidence.push(Evidence::new(
            object("VirtualService", vs),
            format!("routes {} to {fqdn} and binds {}", p.host, g.gateway),
        ));
    }
    evidence.push(Evidence::new(
        SourceRef::Caller(g.name()),
        "the gateway pod the routes were computed for",
    ));
    if let Some(proxy) = g.pod.as_ref().and_then(|k| mesh.proxy_of(k)) {
        let lines: Vec<_> = proxy
            .log
            .entries
            .iter()
            .filter(|e| e.response_code == Some(404) && e.has_flag("NR"))
            .filter(|e| {
                e.authority
                    .as_deref()
                    .is_some_and(|a| a.split(':').next() == Some(p.host.as_str()))
            })
            .collect();
        if !lines.is_empty() {
            confidence.add(Weight::ClientLog);
            evidence.push(Evidence::new(
                SourceRef::AccessLog(proxy.label.clone()),
                format!(
                    "{} for {} answered 404 NR",
                    crate::words::counts(lines.len(), "request"),
                    p.host
                ),
            ));
        }
    }
    Finding::new(
        Cause::GatewayRouteMissing,
        format!("{}:{} at gateway {}", p.host, p.port, g.gateway),
        format!(
            "gateway {} has no route for {} on port {}: requests get 404 NR (route_not_found), not {fqdn}",
            g.gateway, p.host, p.port
        ),
        &confidence,
    )
    .explain(explanation)
    .evidence(evidence)
    .fix(Some(Fix::advice(
        FixKind::EditRoute,
        match &p.vs {
            Some(vs) => format!(
                "make {} one of the hosts of both Gateway {} (servers[].hosts) and VirtualService {vs}, with {} in its gateways",
                p.host, g.gateway, g.gateway
            ),
            None => format!(
                "bind a VirtualService for {} to Gateway {} (spec.gateways) routing to {fqdn}",
                p.host, g.gateway
            ),
        },
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyze::finding::Severity;
    use crate::model::builder::*;
    use serde_json::{json, Value};

    fn gateway(hosts: Value) -> Value {
        json!({"apiVersion": "networking.istio.io/v1", "kind": "Gateway",
            "metadata": {"name": "web", "namespace": "foo"},
            "spec": {"selector": {"istio": "ingressgateway"},
                     "servers": [{"port": {"number": 80, "name": "http", "protocol": "HTTP"}, "hosts": hosts}]}})
    }

    fn vs(hosts: Value, gateways: Value) -> Value {
        json!({"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
            "metadata": {"name": "edge", "namespace": "foo"},
            "spec": {"hosts": hosts, "gateways": gateways,
                     "http": [{"route": [{"destination": {"host": "httpbin", "port": {"number": 8000}}}]}]}})
    }

    fn gw_pod() -> crate::model::Pod {
        let mut p = pod(
            "istio-system",
            "ingress-1",
            "istio-ingressgateway",
            "10.0.0.50",
            None,
        );
        p.labels.insert("istio".into(), "ingressgateway".into());
        p
    }

    fn mesh(objects: Vec<Value>) -> Mesh {
        let mut b = MeshBuilder::new()
            .target(httpbin())
            .pod(httpbin_pod())
            .pod(gw_pod());
        for o in objects {
            b = b.object(o);
        }
        b.build()
    }

    #[test]
    fn fires_and_near_misses() {
        let cases: Vec<(&str, Mesh, usize)> = vec![
            (
                "the VirtualService's host is not among the Gateway's",
                mesh(vec![
                    gateway(json!(["httpbin.example.com"])),
                    vs(json!(["httpbin.example.org"]), json!(["web"])),
                ]),
                1,
            ),
            (
                "a Gateway server lists the target's host, no VirtualService binds it",
                mesh(vec![gateway(json!(["httpbin.foo.svc.cluster.local"]))]),
                1,
            ),
            (
                "the VirtualService binds a Gateway that does not exist",
                mesh(vec![vs(json!(["httpbin.example.com"]), json!(["missing"]))]),
                1,
            ),
            (
                "near miss: bound and served",
                mesh(vec![
                    gateway(json!(["httpbin.example.com"])),
                    vs(json!(["httpbin.example.com"]), json!(["web"])),
                ]),
                0,
            ),
        ];
        for (name, m, want) in cases {
            let f = check(&m);
            assert_eq!(f.len(), want, "{name}: {f:#?}");
            assert!(f.iter().all(|f| f.severity == Severity::Info), "{name}");
        }
        let f = &check(&mesh(vec![
            gateway(json!(["httpbin.example.com"])),
            vs(json!(["httpbin.example.org"]), json!(["web"])),
        ]))[0];
        assert!(f.claim.contains("404 NR"), "{}", f.claim);
        assert_eq!(f.subject, "httpbin.example.org:80 at gateway foo/web");
    }
}
