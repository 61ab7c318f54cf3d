//! Callers found from the target's side with access logs off (the default
//! install) and no `--from`: a same-namespace caller (the seed's break), a
//! caller in another namespace whose own rule sends plaintext, and a pod
//! without sidecar whose environment names the target. Each is named in the
//! first finding, with how it was found, from what a real cluster offers
//! (server metrics, `/clusters`, config_dump, the API objects).

mod common;
use common::*;
use serde_json::Value;

fn diagnose_svc(lab: &mesh503_lab::lab::Lab, svc: &str, ns: &str) -> (Value, String) {
    let target = format!("svc/{svc}");
    let out = mesh503(Some(lab), &["diagnose", &target, "-n", ns, "-o", "json"]);
    let t = text(&out);
    (json(&out), t)
}

fn statuses(
    lab: &mesh503_lab::lab::Lab,
    from: &str,
    url: &str,
    n: usize,
) -> Vec<Result<u16, String>> {
    lab.curl(from, url, n, 1)
        .expect("curl ran")
        .into_iter()
        .map(|r| r.map(|r| r.status).map_err(|e| e.to_string()))
        .collect()
}

fn first(r: &Value) -> &Value {
    &r["findings"][0]
}

#[test]
fn same_namespace_caller_of_the_seed_break_without_logs() {
    let lab = start("callers-same-namespace-no-log.yaml");
    for s in statuses(&lab, "shop/web", "http://cart.shop:8080/get", 3) {
        assert_eq!(s, Ok(503), "plaintext to STRICT is a 503 UC");
    }
    let (r, t) = diagnose_svc(&lab, "cart", "shop");
    let f = first(&r);
    assert_eq!(f["id"], "MTLS_PLAINTEXT_TO_STRICT", "{t}");
    assert!(
        f["subject"].as_str().unwrap().contains("from shop/web-"),
        "{t}"
    );
    // How it was found: its /clusters counts the connections to cart.
    let whole = r.to_string();
    assert!(
        whole.contains("its /clusters shows") && whole.contains("cart.shop"),
        "{t}"
    );
}

#[test]
fn caller_in_another_namespace_with_its_own_rule() {
    let lab = start("callers-cross-namespace.yaml");
    for s in statuses(&lab, "catalog/indexer", "http://prices.catalog:8080/get", 2) {
        assert_eq!(s, Ok(200), "auto mTLS from catalog");
    }
    for s in statuses(
        &lab,
        "storefront/pages",
        "http://prices.catalog:8080/get",
        3,
    ) {
        assert_eq!(s, Ok(503), "plaintext from storefront is a 503 UC");
    }
    let (r, t) = diagnose_svc(&lab, "prices", "catalog");
    let f = first(&r);
    assert_eq!(f["id"], "MTLS_PLAINTEXT_TO_STRICT", "{t}");
    let subject = f["subject"].as_str().unwrap();
    assert!(subject.contains("from storefront/pages-"), "{t}");
    let whole = r.to_string();
    // storefront was looked at because its rule applies to the host…
    assert!(
        whole.contains("DestinationRule storefront/prices-debug applies to the host"),
        "{t}"
    );
    // …and indexer because the server's metrics count its requests.
    assert!(
        whole.contains("source_workload=indexer"),
        "indexer is found from prices' istio_requests_total: {t}"
    );
    // indexer's mTLS calls are not blamed.
    let blamed: Vec<&str> = r["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["severity"] == "error")
        .filter_map(|f| f["subject"].as_str())
        .filter(|s| s.contains("indexer"))
        .collect();
    assert!(blamed.is_empty(), "{blamed:?}\n{t}");
}

/// A caller whose namespace has no config for the host: the host's own
/// rule is kept from it, so every namespace is sampled.
#[test]
fn caller_outside_a_rule_kept_to_its_namespace() {
    let lab = start("callers-rule-not-exported.yaml");
    for s in statuses(
        &lab,
        "warehouse/picker",
        "http://stock.warehouse:7070/get",
        2,
    ) {
        assert_eq!(s, Ok(200), "the exported-to-self rule gives picker mTLS");
    }
    for s in statuses(
        &lab,
        "shipping/dispatch",
        "http://stock.warehouse:7070/get",
        3,
    ) {
        assert_eq!(s, Ok(503), "no rule for shipping, auto mTLS off: plaintext");
    }
    let (r, t) = diagnose_svc(&lab, "stock", "warehouse");
    let f = first(&r);
    assert_eq!(f["id"], "MTLS_PLAINTEXT_TO_STRICT", "{t}");
    assert!(
        f["subject"]
            .as_str()
            .unwrap()
            .contains("from shipping/dispatch-"),
        "{t}"
    );
    assert!(
        f.to_string()
            .contains("every namespace was sampled because DestinationRule warehouse/stock"),
        "{t}"
    );
    let blamed = r["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["severity"] == "error")
        .any(|f| f["subject"].as_str().is_some_and(|s| s.contains("picker")));
    assert!(!blamed, "{t}");
    // Every namespace is sampled from injected pods (selected by the label
    // the injector sets), never from a list of every pod.
    let lists = pod_lists(&lab);
    assert!(
        lists.iter().any(|l| l.starts_with("/api/v1/pods?")
            && l.contains("labelSelector=security.istio.io%2FtlsMode%3Distio")),
        "{lists:?}"
    );
    assert_no_unselected_cluster_wide_pod_list(&lists);
}

#[test]
fn caller_without_sidecar_found_from_its_environment() {
    let lab = start("callers-no-sidecar-env.yaml");
    for s in statuses(&lab, "cron/reconcile", "http://settle.payments:8000/", 2) {
        assert!(s.is_err(), "STRICT refuses plaintext: {s:?}");
    }
    let (r, t) = diagnose_svc(&lab, "settle", "payments");
    let f = first(&r);
    assert_eq!(f["id"], "CLIENT_WITHOUT_SIDECAR_TO_STRICT", "{t}");
    let subject = f["subject"].as_str().unwrap();
    assert!(subject.contains("from cron/reconcile-"), "{t}");
    // From config alone: lower than a logged rejection (95), and it says so.
    let c = f["confidence"].as_u64().unwrap();
    assert!(c < 95, "{c}: {t}");
    let whole = f.to_string();
    assert!(whole.contains("SETTLE_URL"), "{t}");
    assert!(whole.contains("no server access log"), "{t}");
    // cron/cleanup names another host: not a caller.
    assert!(!r.to_string().contains("cron/cleanup"), "{t}");
}

#[test]
fn caller_in_another_namespace_is_looked_up_by_its_ip_not_by_listing_every_pod() {
    let lab = start("legacy-client-strict.yaml");
    for s in statuses(&lab, "reports/monthly", "http://ledger.billing:8000/get", 2) {
        assert!(s.is_err(), "STRICT refuses plaintext: {s:?}");
    }
    let (r, t) = diagnose_svc(&lab, "ledger", "billing");
    let f = first(&r);
    assert_eq!(f["id"], "CLIENT_WITHOUT_SIDECAR_TO_STRICT", "{t}");
    let subject = f["subject"].as_str().unwrap();
    assert!(subject.contains("from reports/monthly-"), "{t}");
    // The access log names an IP outside billing: the API server is asked
    // for the pod with that IP, not for every pod of the cluster.
    let lists = pod_lists(&lab);
    assert!(
        lists
            .iter()
            .any(|l| l.starts_with("/api/v1/pods?") && l.contains("fieldSelector=status.podIP")),
        "{lists:?}"
    );
    assert_no_unselected_cluster_wide_pod_list(&lists);
}

/// A role that reads everything the plugin reads except `hidden` rules.
fn role_without(name: &str, core: &str, security: &str) -> String {
    format!(
        r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {{name: {name}}}
rules:
- apiGroups: [""]
  resources: [{core}]
  verbs: ["get", "list", "watch"]
- apiGroups: ["apps", "discovery.k8s.io", "networking.istio.io", "authentication.istio.io", "telemetry.istio.io"]
  resources: ["*"]
  verbs: ["get", "list", "watch"]
- apiGroups: ["security.istio.io"]
  resources: [{security}]
  verbs: ["get", "list", "watch"]
- apiGroups: [""]
  resources: ["pods/portforward"]
  verbs: ["create"]
"#
    )
}

const CORE: &str =
    r#""pods", "pods/log", "services", "endpoints", "namespaces", "serviceaccounts", "configmaps""#;
const CORE_NO_CONFIGMAPS: &str =
    r#""pods", "pods/log", "services", "endpoints", "namespaces", "serviceaccounts""#;

fn start_with_role(scenario_name: &str, role: &str) -> (mesh503_lab::lab::Lab, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let rbac = dir.path().join("role.yaml");
    std::fs::write(&rbac, role).unwrap();
    let lab = mesh503_lab::lab::Lab::start(
        &scenario(scenario_name),
        mesh503_lab::lab::LabOptions {
            rbac: Some(rbac),
            ..Default::default()
        },
    )
    .expect("lab");
    (lab, dir)
}

/// No finding prints a fix; each that says why names `what`.
fn no_fix_printed(r: &Value, what: &str, t: &str) {
    println!("{t}");
    for f in r["findings"].as_array().unwrap() {
        let fixes = &f["fixes"];
        assert!(fixes.get("chosen").is_none(), "{}: {fixes}\n{t}", f["id"]);
        if let Some(none) = fixes["none"].as_str() {
            if f["id"].as_str().is_some_and(|id| id.starts_with("MTLS")) {
                assert!(
                    none.starts_with("cannot be computed") && none.contains(what),
                    "{none}"
                );
            }
        }
    }
}

/// RBAC hides the PeerAuthentications: the report says it could not read
/// them and prints no fix (a hidden policy may decide the call).
#[test]
fn hidden_peer_authentications_are_named_and_no_fix_is_printed() {
    let role = role_without(
        "no-peer-authentications",
        CORE,
        r#""authorizationpolicies", "requestauthentications""#,
    );
    let (lab, _dir) = start_with_role("seed-strict-no-automtls.yaml", &role);
    assert_eq!(
        request(&lab, "foo/sleep", "http://httpbin.foo:8000/get").status,
        503
    );
    let out = diagnose(&lab, &["--from", "deploy/sleep"]);
    let t = text(&out);
    let r = json(&out);
    assert!(
        r["gaps"].to_string().contains("peerauthentications"),
        "names what it could not see: {t}"
    );
    assert!(
        !r["findings"].as_array().unwrap().is_empty(),
        "the 503s are still explained from the sidecars: {t}"
    );
    no_fix_printed(&r, "peerauthentications", &t);
    // No server mode is stated from the policies it could not read.
    let first = r["findings"][0].to_string();
    assert!(
        !first.contains("decided by no policy") && first.contains("cannot be decided from config"),
        "{t}"
    );
}

/// RBAC hides the mesh ConfigMap (`enableAutoMtls: false` in it): the report
/// says it could not read it and prints no fix computed on assumed defaults.
#[test]
fn hidden_mesh_config_is_named_and_no_fix_is_printed() {
    let role = role_without("no-configmaps", CORE_NO_CONFIGMAPS, r#""*""#);
    let (lab, _dir) = start_with_role("seed-strict-no-automtls.yaml", &role);
    assert_eq!(
        request(&lab, "foo/sleep", "http://httpbin.foo:8000/get").status,
        503
    );
    let out = diagnose(&lab, &["--from", "deploy/sleep"]);
    let t = text(&out);
    let r = json(&out);
    assert!(
        r["gaps"].to_string().contains("istio-system/istio"),
        "names what it could not see: {t}"
    );
    assert!(
        !r["findings"].as_array().unwrap().is_empty(),
        "the 503s are still explained from the sidecars: {t}"
    );
    no_fix_printed(&r, "mesh config", &t);
    // The mesh settings it used are named as assumed, not as read.
    assert!(
        r["findings"][0]
            .to_string()
            .contains("not read (see gaps), so assumed"),
        "{t}"
    );
}
