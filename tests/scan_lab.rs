//! `kubectl mesh503 scan`: config only, every Service at once, against a
//! lab with several broken and healthy Services in several namespaces
//! (tests/scenarios/scan-mixed.yaml). The broken ones really fail (real
//! Envoy answers 503); scan lists exactly them, and nothing for a healthy
//! namespace.

mod common;
use common::*;
use std::collections::BTreeSet;

fn listed(out: &std::process::Output) -> BTreeSet<String> {
    let doc = json(out);
    assert_eq!(doc["schema"], "mesh503.io/scan/v1", "{}", text(out));
    doc["services"]
        .as_array()
        .unwrap_or_else(|| panic!("services list\n{}", text(out)))
        .iter()
        .map(|s| s["service"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn scan_all_namespaces_lists_exactly_the_broken_services() {
    let lab = start("scan-mixed.yaml");
    // The broken ones fail for real, the healthy ones answer.
    assert_eq!(
        request(&lab, "foo/sleep", "http://httpbin.foo:8000/get").status,
        503
    );

    let out = mesh503(Some(&lab), &["scan", "-A", "-o", "json"]);
    assert_eq!(out.status.code(), Some(1), "errors exit 1\n{}", text(&out));
    let want: BTreeSet<String> = ["foo/httpbin", "shop/cart", "ledger/entries"]
        .into_iter()
        .map(String::from)
        .collect();
    assert_eq!(listed(&out), want, "{}", text(&out));
    let doc = json(&out);
    for s in doc["services"].as_array().unwrap() {
        assert_eq!(s["severity"], "error", "{s}");
    }
    let first_of = |svc: &str| -> String {
        doc["services"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["service"] == svc)
            .map(|s| s["findings"][0]["id"].as_str().unwrap().to_string())
            .unwrap()
    };
    assert_eq!(first_of("foo/httpbin"), "MTLS_PLAINTEXT_TO_STRICT");
    assert_eq!(first_of("shop/cart"), "SUBSET_SELECTS_NO_PODS");
    assert_eq!(first_of("ledger/entries"), "SERVICE_WITHOUT_ENDPOINTS");
    // Healthy services were scanned, not listed; no data-plane rule ran.
    assert!(doc["services_scanned"].as_u64().unwrap() >= 6, "{doc}");
    let rules = doc["rules"].to_string();
    assert!(!rules.contains("NO_HEALTHY_UPSTREAM"), "{rules}");
    assert!(!rules.contains("PROXY_CONFIG_DIFFERS"), "{rules}");

    // The table says the same, grouped by service, worst first.
    let table = mesh503(Some(&lab), &["scan", "-A"]);
    assert_eq!(table.status.code(), Some(1), "{}", text(&table));
    let t = String::from_utf8_lossy(&table.stdout);
    for svc in ["foo/httpbin", "shop/cart", "ledger/entries"] {
        assert!(t.contains(&format!("ERROR {svc}")), "{svc}\n{t}");
    }
    for healthy in ["foo/sleep", "shop/web", "ok/echo"] {
        assert!(!t.contains(healthy), "{healthy} is healthy\n{t}");
    }

    // One namespace: only its services.
    let foo = mesh503(Some(&lab), &["scan", "-n", "foo", "-o", "json"]);
    assert_eq!(foo.status.code(), Some(1), "{}", text(&foo));
    assert_eq!(listed(&foo), BTreeSet::from(["foo/httpbin".to_string()]));
    let ok = mesh503(Some(&lab), &["scan", "-n", "ok", "-o", "json"]);
    assert_eq!(ok.status.code(), Some(0), "{}", text(&ok));
    assert!(listed(&ok).is_empty(), "{}", text(&ok));
}
