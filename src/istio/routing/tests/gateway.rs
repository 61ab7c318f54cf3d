//! Gateways: servers and selectors, which VirtualServices bind, host
//! intersection, merged routes (catch-alls last), `404 NR` and `503 UH`.

use super::*;
use crate::istio::routing::gateway::{envoy_domain_match, intersect};
use crate::istio::routing::gateway_query::GatewayOutcome;
use crate::istio::routing::select::{Reachability, VsShadowReason};
use crate::istio::routing::DestStatus;

const GW: &str = r#"
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: public, namespace: istio-system}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 80, name: http, protocol: HTTP}
    hosts: ["*/shop.example.com", "front/api.example.com", "./status.example.com"]
  - port: {number: 443, name: tls, protocol: TLS}
    tls: {mode: PASSTHROUGH}
    hosts: ["*"]
"#;

fn gw_vs(ns: &str, name: &str, ts: &str, rest: &str) -> String {
    format!("apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {{name: {name}, namespace: {ns}, creationTimestamp: \"{ts}\"}}\nspec:\n{rest}\n")
}

fn ingress(r: &Routing, host: &str, port: u32) -> super::super::GatewayView {
    let l = labels("istio=ingressgateway,app=istio-ingressgateway");
    r.gateway_routes(
        Client {
            namespace: "istio-system",
            labels: &l,
        },
        host,
        port,
    )
}

fn shop_world(extra: &str) -> World {
    world(&format!(
        "{GW}\n---\n{}\n---\n{extra}",
        http_svc("front", "shop", 8000)
    ))
    .pods(&[("front", "shop-0", "app=shop", true)])
}

#[test]
fn hosts_intersect_and_domains_match_like_envoy() {
    let cases = [
        (
            vec!["*.example.com"],
            vec!["a.example.com"],
            vec!["a.example.com"],
        ),
        (
            vec!["a.example.com"],
            vec!["*.example.com", "*"],
            vec!["a.example.com"],
        ),
        (
            vec!["*"],
            vec!["x.org", "*.y.org"],
            vec!["x.org", "*.y.org"],
        ),
        (vec!["a.example.com"], vec!["b.example.com"], vec![]),
    ];
    for (server, vs, want) in cases {
        let s: Vec<String> = server.iter().map(|x| x.to_string()).collect();
        let v: Vec<String> = vs.iter().map(|x| x.to_string()).collect();
        assert_eq!(intersect(&s, &v), want, "{server:?} {vs:?}");
    }
    let domains: Vec<String> = [
        "*",
        "*.example.com",
        "*.shop.example.com",
        "a.shop.example.com",
        "api.*",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let cases = [
        ("a.shop.example.com", "a.shop.example.com"),
        ("b.shop.example.com", "*.shop.example.com"),
        ("x.example.com", "*.example.com"),
        ("api.other.org", "api.*"),
        ("else.org", "*"),
    ];
    for (authority, want) in cases {
        assert_eq!(
            envoy_domain_match(&domains, authority),
            Some(want),
            "{authority}"
        );
    }
}

#[test]
fn which_virtual_services_bind_and_the_404() {
    let cases = [
        // (vs namespace, gateways, hosts, host asked, routed?)
        (
            "front",
            "[istio-system/public]",
            "[shop.example.com]",
            "shop.example.com",
            true,
        ),
        (
            "front",
            "[public]",
            "[shop.example.com]",
            "shop.example.com",
            false,
        ), // front/public does not exist
        (
            "istio-system",
            "[public]",
            "[shop.example.com]",
            "shop.example.com",
            true,
        ),
        (
            "front",
            "[istio-system/public]",
            "[api.example.com]",
            "api.example.com",
            true,
        ),
        // api.example.com is offered to VirtualServices of `front` only
        (
            "other",
            "[istio-system/public]",
            "[api.example.com]",
            "api.example.com",
            false,
        ),
        // ./status = the gateway's namespace
        (
            "front",
            "[istio-system/public]",
            "[status.example.com]",
            "status.example.com",
            false,
        ),
        (
            "istio-system",
            "[public]",
            "[status.example.com]",
            "status.example.com",
            true,
        ),
        (
            "front",
            "[istio-system/public]",
            "[\"*\"]",
            "shop.example.com",
            true,
        ),
        (
            "front",
            "[mesh]",
            "[shop.example.com]",
            "shop.example.com",
            false,
        ),
    ];
    for (ns, gws, hosts, asked, routed) in cases {
        let w = shop_world(&gw_vs(ns, "vs", "2020-01-01T00:00:00Z", &format!(
            "  hosts: {hosts}\n  gateways: {gws}\n  http: [{{route: [{{destination: {{host: shop.front.svc.cluster.local, port: {{number: 8000}}}}}}]}}]"
        )));
        let g = ingress(&w.routing(), asked, 80);
        assert_eq!(
            g.outcome == GatewayOutcome::Routed,
            routed,
            "{ns} {gws} {hosts}: {:?} {:?}",
            g.outcome,
            g.shadowed
        );
        if !routed {
            assert_eq!(g.outcome, GatewayOutcome::NoVirtualHost);
        }
    }
}

#[test]
fn servers_selectors_and_protocols() {
    let w = shop_world("");
    let r = w.routing();
    assert_eq!(
        ingress(&r, "shop.example.com", 8080).outcome,
        GatewayOutcome::NoServer
    );
    assert!(matches!(
        ingress(&r, "shop.example.com", 443).outcome,
        GatewayOutcome::NotHttp { .. }
    ));
    let l = labels("istio=egressgateway");
    let g = r.gateway_routes(
        Client {
            namespace: "istio-system",
            labels: &l,
        },
        "shop.example.com",
        80,
    );
    assert_eq!(g.outcome, GatewayOutcome::NoServer);
    // No VirtualService at all: 404 for everything.
    let g = ingress(&r, "shop.example.com", 80);
    assert_eq!(
        (g.outcome, g.domains.len()),
        (GatewayOutcome::NoVirtualHost, 0)
    );
}

#[test]
fn same_host_virtual_services_merge_with_catch_alls_last() {
    // Unlike sidecars, gateways merge: the second VS's /api route stays
    // reachable even though the first one has a catch-all.
    let w = shop_world(&format!(
        "{}---\n{}",
        gw_vs("front", "first", "2019-01-01T00:00:00Z",
              "  hosts: [shop.example.com]\n  gateways: [istio-system/public]\n  http: [{route: [{destination: {host: shop.front.svc.cluster.local}}]}]"),
        gw_vs("front", "second", "2020-01-01T00:00:00Z",
              "  hosts: [shop.example.com]\n  gateways: [istio-system/public]\n  http: [{match: [{uri: {prefix: /api}}], route: [{destination: {host: api}}]}, {route: [{destination: {host: shop}}]}]"),
    ));
    let g = ingress(&w.routing(), "shop.example.com", 80);
    assert_eq!(g.bound, vec!["front/first", "front/second"]);
    let order: Vec<(&str, usize, &Reachability)> = g
        .routes
        .iter()
        .map(|r| (r.vs.as_str(), r.index, &r.reachability))
        .collect();
    assert_eq!(order[0], ("front/second", 0, &Reachability::Reachable));
    assert_eq!(order[1], ("front/first", 0, &Reachability::Reachable));
    assert_eq!(
        order[2],
        (
            "front/second",
            1,
            &Reachability::AfterCatchAll {
                vs: "front/first".into(),
                route: 0
            }
        )
    );
    // The /api route goes to a host no registry has: 503 NC at the gateway.
    assert!(matches!(
        g.routes[0].destinations[0].status,
        DestStatus::UnknownHost(_)
    ));
}

#[test]
fn gateway_destinations_without_ready_endpoints_and_unexported_vs() {
    let w = world(&format!(
        "{GW}\n---\n{}\n---\n{}---\n{}",
        http_svc("front", "shop", 8000),
        gw_vs("front", "shop", "2020-01-01T00:00:00Z", "  hosts: [shop.example.com]\n  gateways: [istio-system/public]\n  http: [{route: [{destination: {host: shop}}]}]"),
        gw_vs("front", "hidden", "2020-01-01T00:00:00Z", "  hosts: [api.example.com]\n  exportTo: [\".\"]\n  gateways: [istio-system/public]\n  http: [{route: [{destination: {host: shop}}]}]"),
    ))
    .pods(&[("front", "shop-0", "app=shop", false)]);
    let r = w.routing();
    let g = ingress(&r, "shop.example.com", 80);
    let d = &g.routes[0].destinations[0];
    assert_eq!(
        d.cluster_name,
        "outbound|8000||shop.front.svc.cluster.local"
    );
    assert_eq!(d.status.expected().unwrap().flag, "UH");
    // exportTo "." keeps it from the gateway pod's namespace: 404.
    let g = ingress(&r, "api.example.com", 80);
    assert_eq!(g.outcome, GatewayOutcome::NoVirtualHost);
    assert!(g
        .shadowed
        .iter()
        .any(|(k, r)| k == "front/hidden" && matches!(r, VsShadowReason::NotExported { .. })));
}

#[test]
fn gateway_pods_and_missing_gateway_references() {
    let w = shop_world(&gw_vs(
        "front",
        "vs",
        "2020-01-01T00:00:00Z",
        "  hosts: [shop.example.com]\n  gateways: [istio-system/public, public, mesh]\n  http:\n  - match: [{gateways: [istio-system/gone]}]\n    route: [{destination: {host: shop}}]",
    ))
    .pods(&[
        ("istio-system", "ingress-0", "istio=ingressgateway", true),
        ("istio-system", "egress-0", "istio=egressgateway", true),
    ]);
    let r = w.routing();
    let pods: Vec<String> = r
        .gateway_pods("istio-system/public")
        .iter()
        .map(|p| p.object.key())
        .collect();
    assert_eq!(pods, vec!["istio-system/ingress-0"]);
    assert!(r.gateway_pods("istio-system/nothing").is_empty());
    assert_eq!(
        r.missing_gateways(),
        vec![
            ("front/vs".to_string(), "front/public".to_string()),
            ("front/vs".to_string(), "istio-system/gone".to_string())
        ]
    );
}
