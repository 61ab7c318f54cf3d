//! Routing causes found from the target's side, from config alone, each a
//! real Envoy failure in the lab: a Service with no ready pod, a subset
//! selecting no pod, a route to a host that does not exist, a subset
//! missing for another namespace only, 503 and 404 behind an ingress
//! gateway; and the near misses where every call is 200 (a shadowed
//! VirtualService, delegates and gateway-only VirtualServices). Where the
//! fix can be applied in the lab, applying it turns the calls to 200.
//!
//! The Istio 1.31 scenarios keep access logs off: what is found is found
//! from config (and `/clusters` or config_dump when a client is read).

mod common;
use common::*;
use serde_json::{json, Value};
use std::process::Output;

/// `diagnose svc/<name> -n <ns> -o json` plus `extra`.
fn diagnose_svc(lab: &mesh503_lab::lab::Lab, svc: &str, ns: &str, extra: &[&str]) -> Output {
    let target = format!("svc/{svc}");
    let mut args = vec!["diagnose", target.as_str(), "-n", ns, "-o", "json"];
    args.extend_from_slice(extra);
    mesh503(Some(lab), &args)
}

fn statuses(lab: &mesh503_lab::lab::Lab, from: &str, url: &str, n: usize) -> Vec<u16> {
    lab.curl(from, url, n, 1)
        .expect("curl ran")
        .into_iter()
        .map(|r| {
            r.unwrap_or_else(|e| panic!("{url} from {from}: {e}"))
                .status
        })
        .collect()
}

fn via_gateway(lab: &mesh503_lab::lab::Lab, url: &str) -> u16 {
    let mut r = lab
        .curl_via_gateway("istio-system/istio-ingressgateway", url, 1, 1)
        .expect("curl ran");
    r.remove(0)
        .unwrap_or_else(|e| panic!("{url} via the gateway: {e}"))
        .status
}

fn first(out: &Output) -> Value {
    json(out)["findings"][0].clone()
}

fn errors(out: &Output) -> Vec<String> {
    json(out)["findings"]
        .as_array()
        .map(|fs| {
            fs.iter()
                .filter(|f| f["severity"] == "error")
                .map(|f| f["id"].as_str().unwrap_or("").to_string())
                .collect()
        })
        .unwrap_or_default()
}

fn apply(lab: &mesh503_lab::lab::Lab, yaml: &str) {
    let out = kubectl(lab, &["apply", "-f", "-"], Some(yaml));
    assert!(out.status.success(), "kubectl apply\n{}", text(&out));
    lab.wait_synced().expect("sidecars updated");
}

#[test]
fn service_without_ready_pods() {
    let lab = start("routes-service-no-ready-pods.yaml");
    let url = "http://entries.ledger:8080/get";
    assert_eq!(statuses(&lab, "ledger/teller", url, 2), vec![503, 503]);
    let out = diagnose_svc(&lab, "entries", "ledger", &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let f = first(&out);
    assert_eq!(f["id"], "SERVICE_WITHOUT_ENDPOINTS", "{}", text(&out));
    assert_eq!(f["severity"], "error");
    let why = f["explanation"].to_string();
    assert!(
        why.contains("not ready") && why.contains("ledger/entries-"),
        "{why}"
    );
    assert!(
        f["evidence"].to_string().contains("caller every namespace"),
        "names the callers: {f}"
    );
    assert!(
        !errors(&out).contains(&"NO_HEALTHY_UPSTREAM".to_string()),
        "{}",
        text(&out)
    );
    // The fix: the pods become ready (a new template, whose pods the lab
    // keeps ready, rolls them).
    apply(
        &lab,
        r#"apiVersion: apps/v1
kind: Deployment
metadata: {name: entries, namespace: ledger}
spec:
  replicas: 1
  selector:
    matchLabels: {app: entries}
  template:
    metadata:
      labels: {app: entries, version: v1}
      annotations: {lab.mesh503.io/ready: "true"}
    spec:
      serviceAccountName: entries
      containers:
      - name: entries
        image: example.com/entries:2.3
        ports:
        - containerPort: 9080
"#,
    );
    assert_eq!(statuses(&lab, "ledger/teller", url, 2), vec![200, 200]);
}

#[test]
fn subset_selecting_no_pods_with_and_without_from() {
    let lab = start("routes-subset-no-pods.yaml");
    let url = "http://cart.shop:8080/get";
    assert_eq!(statuses(&lab, "shop/frontend", url, 3), vec![503, 503, 503]);
    for extra in [&[][..], &["--from", "deploy/frontend"][..]] {
        let out = diagnose_svc(&lab, "cart", "shop", extra);
        let f = first(&out);
        assert_eq!(
            f["id"],
            "SUBSET_SELECTS_NO_PODS",
            "{extra:?}\n{}",
            text(&out)
        );
        assert_eq!(f["severity"], "error");
        assert!(f["subject"].as_str().unwrap().contains("subset v2"), "{f}");
        let all = json(&out)["findings"].to_string();
        assert!(!all.contains("stale config"), "{extra:?}: {all}");
        assert!(!all.contains("NO_HEALTHY_UPSTREAM"), "{extra:?}: {all}");
        let evidence = f["evidence"].to_string();
        assert!(
            evidence.contains("DestinationRule shop/cart") && evidence.contains("version=v2"),
            "{evidence}"
        );
        if !extra.is_empty() {
            // The read client confirms it: its subset cluster has no host.
            assert!(
                evidence.contains("outbound|8080|v2|cart.shop.svc.cluster.local has no hosts"),
                "{evidence}"
            );
            assert!(f["confidence"].as_u64().unwrap() >= 90, "{f}");
        } else {
            assert!(f["confidence"].as_u64().unwrap() >= 60, "{f}");
        }
    }
    apply(
        &lab,
        r#"apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: cart, namespace: shop}
spec:
  hosts: [cart]
  http:
  - route:
    - destination: {host: cart, subset: v1}
"#,
    );
    assert_eq!(statuses(&lab, "shop/frontend", url, 2), vec![200, 200]);
}

#[test]
fn route_to_a_host_that_does_not_exist() {
    let lab = start("routes-unknown-host.yaml");
    let url = "http://invoices.billing:8080/get";
    assert_eq!(statuses(&lab, "billing/portal", url, 2), vec![503, 503]);
    for extra in [&[][..], &["--from", "deploy/portal"][..]] {
        let out = diagnose_svc(&lab, "invoices", "billing", extra);
        let f = first(&out);
        assert_eq!(
            f["id"],
            "ROUTE_TO_UNKNOWN_HOST",
            "{extra:?}\n{}",
            text(&out)
        );
        assert!(
            f["claim"]
                .as_str()
                .unwrap()
                .contains("invoices-v3.billing.svc.cluster.local"),
            "{f}"
        );
        assert!(
            f["evidence"]
                .to_string()
                .contains("looked up by name and does not exist"),
            "{f}"
        );
        let ids = finding_ids(&out);
        assert!(
            !ids.iter()
                .any(|i| i.starts_with("MTLS_") || i == "SUBSET_NOT_FOUND"),
            "{extra:?}: {ids:?}"
        );
        if !extra.is_empty() {
            assert!(
                f["evidence"]
                    .to_string()
                    .contains("no cluster outbound|8080||invoices-v3"),
                "config_dump confirms it: {f}"
            );
        }
    }
    apply(
        &lab,
        r#"apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: invoices, namespace: billing}
spec:
  hosts: [invoices]
  http:
  - route:
    - destination: {host: invoices, port: {number: 8080}}
"#,
    );
    assert_eq!(statuses(&lab, "billing/portal", url, 2), vec![200, 200]);
}

#[test]
fn a_shadowed_virtual_service_is_a_near_miss() {
    let lab = start("routes-shadowed-vs.yaml");
    assert_eq!(
        statuses(&lab, "media/gallery", "http://thumbs.media:8080/get", 3),
        vec![200, 200, 200]
    );
    let out = diagnose_svc(&lab, "thumbs", "media", &["--from", "deploy/gallery"]);
    assert_eq!(errors(&out), Vec::<String>::new(), "{}", text(&out));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let ids = finding_ids(&out);
    assert!(
        ids.contains(&"VIRTUAL_SERVICE_SHADOWED".to_string()),
        "{ids:?}"
    );
    assert!(!ids.contains(&"SUBSET_NOT_FOUND".to_string()), "{ids:?}");
    let shadowed = json(&out)["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["id"] == "VIRTUAL_SERVICE_SHADOWED")
        .cloned()
        .unwrap();
    assert_eq!(shadowed["severity"], "warning");
    assert!(
        shadowed["claim"]
            .as_str()
            .unwrap()
            .contains("media/thumbs-canary"),
        "{shadowed}"
    );
}

#[test]
fn delegates_and_gateway_only_virtual_services_are_near_misses() {
    let lab = start("routes-delegate-gateway-only.yaml");
    assert_eq!(
        statuses(&lab, "docs/reader", "http://pages.docs:8080/get", 3),
        vec![200, 200, 200]
    );
    for extra in [&[][..], &["--from", "deploy/reader"][..]] {
        let out = diagnose_svc(&lab, "pages", "docs", extra);
        assert_eq!(
            errors(&out),
            Vec::<String>::new(),
            "{extra:?}\n{}",
            text(&out)
        );
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        let ids = finding_ids(&out);
        assert!(!ids.contains(&"SUBSET_NOT_FOUND".to_string()), "{ids:?}");
        // The gateway it names does not exist: information at most.
        for f in json(&out)["findings"].as_array().unwrap() {
            if f["id"] == "GATEWAY_ROUTE_MISSING" {
                assert_eq!(f["severity"], "info", "{f}");
            }
        }
    }
}

#[test]
fn subset_missing_for_another_namespace_only() {
    let lab = start("routes-subset-not-exported.yaml");
    let url = "http://stock.inventory:8080/get";
    assert_eq!(statuses(&lab, "inventory/api", url, 2), vec![200, 200]);
    assert_eq!(statuses(&lab, "reports/exporter", url, 2), vec![503, 503]);
    let caller_part = |f: &Value| {
        let s = f["subject"].as_str().unwrap().to_string();
        s.split(" from ").nth(1).unwrap_or("").to_string()
    };
    // From the target's side, with no client named.
    let out = diagnose_svc(&lab, "stock", "inventory", &[]);
    let f = first(&out);
    assert_eq!(f["id"], "SUBSET_NOT_FOUND", "{}", text(&out));
    assert!(!caller_part(&f).contains("inventory"), "{f}");
    assert!(
        f["explanation"].to_string().contains("not exported"),
        "says why: {f}"
    );
    // Naming the caller adds it as a caller of its own, confirmed.
    let out = diagnose_svc(
        &lab,
        "stock",
        "inventory",
        &["--from", "reports/deploy/exporter"],
    );
    let f = first(&out);
    assert_eq!(f["id"], "SUBSET_NOT_FOUND", "{}", text(&out));
    assert!(caller_part(&f).contains("reports"), "{f}");
    assert!(!caller_part(&f).contains("inventory"), "{f}");
    assert!(
        f["evidence"]
            .to_string()
            .contains("no cluster outbound|8080|v1|stock.inventory"),
        "{f}"
    );
    assert!(
        f["fixes"]["chosen"]["summary"]
            .as_str()
            .unwrap()
            .contains("exportTo"),
        "{f}"
    );
    apply(
        &lab,
        r#"apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: stock, namespace: inventory}
spec:
  host: stock
  exportTo: ["*"]
  subsets:
  - name: v1
    labels: {version: v1}
"#,
    );
    assert_eq!(statuses(&lab, "reports/exporter", url, 2), vec![200, 200]);
    assert_eq!(statuses(&lab, "inventory/api", url, 1), vec![200]);
}

#[test]
fn behind_an_ingress_gateway_uh_and_route_not_found() {
    let lab = start("ingress-gateway.yaml");
    assert_eq!(via_gateway(&lab, "http://shop.example.com/get"), 503);
    let out = diagnose_svc(&lab, "shop", "foo", &[]);
    let f = first(&out);
    assert_eq!(f["id"], "SERVICE_WITHOUT_ENDPOINTS", "{}", text(&out));
    assert!(
        f["claim"]
            .as_str()
            .unwrap()
            .contains("gateway foo/web-gateway"),
        "names the gateway caller: {f}"
    );
    assert!(
        f["claim"]
            .as_str()
            .unwrap()
            .contains("istio-system/istio-ingressgateway-"),
        "computed for the real gateway pod: {f}"
    );

    // A VirtualService whose host the Gateway does not serve: 404, not 503.
    let original = json!({"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
        "metadata": {"name": "httpbin", "namespace": "foo"},
        "spec": {"hosts": ["httpbin.example.com"], "gateways": ["web-gateway"],
                 "http": [{"route": [{"destination": {"host": "httpbin", "port": {"number": 8000}}}]}]}});
    let mut wrong = original.clone();
    wrong["spec"]["hosts"] = json!(["httpbin.example.org"]);
    lab.apply(wrong).expect("applied");
    assert_eq!(via_gateway(&lab, "http://httpbin.example.com/get"), 404);
    let out = diagnose_svc(&lab, "httpbin", "foo", &[]);
    let f = first(&out);
    assert_eq!(f["id"], "GATEWAY_ROUTE_MISSING", "{}", text(&out));
    assert_eq!(f["severity"], "info");
    assert!(f["claim"].as_str().unwrap().contains("404 NR"), "{f}");
    assert!(
        f["explanation"].to_string().contains("httpbin.example.com"),
        "names the server's hosts: {f}"
    );
    lab.apply(original).expect("applied");
    assert_eq!(via_gateway(&lab, "http://httpbin.example.com/get"), 200);
}
