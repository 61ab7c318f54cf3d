//! The sentences, and parsers that never panic whatever the spec holds.

use proptest::prelude::*;
use serde_json::{json, Value};

use super::*;
use crate::istio::routing::explain::{
    delegate_text, gateway_text, route_view_lines, shadow_text, visibility_text,
};
use crate::istio::routing::query::{HostVisibility, Outbound};
use crate::istio::routing::select::VsShadowReason;

const SHADOWED: &str = r#"
apiVersion: v1
kind: Service
metadata: {name: pay, namespace: bank}
spec: {selector: {app: pay}, ports: [{port: 8080, name: http}]}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: pay, namespace: bank, creationTimestamp: "2020-01-01T00:00:00Z"}
spec:
  hosts: [pay]
  http:
  - route: [{destination: {host: pay, subset: blue}}]
  - match: [{uri: {prefix: /refund}}]
    route: [{destination: {host: pay}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: pay-canary, namespace: bank, creationTimestamp: "2021-01-01T00:00:00Z"}
spec:
  hosts: [pay]
  http: [{route: [{destination: {host: pay}}]}]
"#;

#[test]
fn route_view_sentences_name_the_objects_and_the_response() {
    let w = world(SHADOWED).pods(&[("bank", "pay-0", "app=pay", true)]);
    let v = view(&w.routing(), "bank", "pay", 8080);
    let lines = route_view_lines(&v);
    let all = lines.join("\n");
    for needle in [
        "VirtualService bank/pay applies",
        "bank/pay-canary is shadowed by bank/pay",
        "route 1 of bank/pay is unreachable: route 0 of bank/pay before it matches every request",
        "outbound|8080|blue|pay.bank.svc.cluster.local does not exist",
        "no DestinationRule applies to this client",
        "503 NC cluster_not_found",
    ] {
        assert!(all.contains(needle), "missing {needle:?} in:\n{all}");
    }
}

#[test]
fn other_sentences() {
    let s = visibility_text(
        "x.example.com",
        &HostVisibility::NotInRegistry {
            outbound: Outbound::BlackHole,
        },
    );
    assert!(s.contains("502") && s.contains("REGISTRY_ONLY"), "{s}");
    let s = shadow_text(
        "a/vs",
        &VsShadowReason::GatewaysOnly {
            gateways: vec!["istio-system/gw".into()],
        },
    );
    assert!(s.contains("without `mesh`"), "{s}");
    let w = world("");
    let l = labels("istio=ingressgateway");
    let g = w.routing().gateway_routes(
        Client {
            namespace: "istio-system",
            labels: &l,
        },
        "a.example.com",
        80,
    );
    assert!(gateway_text(&g).contains("no Gateway selecting this pod"));
    let n =
        crate::istio::routing::delegate::DelegateNote::DelegationDisabled { root: "a/b".into() };
    assert!(delegate_text(&n).contains("a/b"));
}

const KEYS: &[&str] = &[
    "hosts",
    "http",
    "tcp",
    "tls",
    "match",
    "route",
    "destination",
    "host",
    "subset",
    "port",
    "number",
    "weight",
    "gateways",
    "exportTo",
    "delegate",
    "name",
    "namespace",
    "uri",
    "prefix",
    "headers",
    "sourceLabels",
    "servers",
    "selector",
    "egress",
    "ports",
    "targetPort",
    "endpoints",
    "workloadSelector",
    "labels",
    "fault",
    "abort",
    "percentage",
    "value",
    "mirror",
];
const STRINGS: &[&str] = &[
    "mesh",
    "*",
    ".",
    "~",
    "a",
    "*.a",
    "ns/a",
    "/",
    "ExternalName",
    "None",
];

fn arb() -> impl Strategy<Value = Value> {
    crate::istio::testutil::arb_json(STRINGS, KEYS, "[a-z*./~]{0,6}", "[a-z]{1,4}", (4, 40, 5))
}

proptest! {
    /// Every parser returns a value or an error naming the object; queries never panic.
    #[test]
    fn parsers_and_queries_never_panic(spec in arb(), spec2 in arb()) {
        let obj = |kind: &str, spec: &Value| json!({
            "apiVersion": "networking.istio.io/v1", "kind": kind,
            "metadata": {"name": "n", "namespace": "ns"}, "spec": spec.clone()
        });
        let mut w = World::default();
        for kind in ["Service", "ServiceEntry", "VirtualService", "Gateway", "Sidecar"] {
            w.add(obj(kind, &spec));
            w.add(obj(kind, &spec2));
        }
        let r = w.routing();
        let l = labels("app=a");
        let c = Client { namespace: "ns", labels: &l };
        let _ = r.routes_for(c, "a", 80);
        let _ = r.routes_for(c, "n.ns.svc.cluster.local", 80);
        let _ = r.gateway_routes(c, "a", 80);
        let _ = r.callers_of("a.ns.svc.cluster.local");
    }
}
