use super::*;
use crate::envoy::metrics::parse_istio_metrics;
use serde_json::json;

/// A server-side `istio_requests_total` row in istio-proxy's Prometheus spelling.
fn row(src: &str, src_ns: &str, code: u16, policy: &str, dest: &str, n: u64) -> String {
    format!(
        "istio_requests_total{{reporter=\"destination\",source_workload=\"{src}\",source_workload_namespace=\"{src_ns}\",\
         destination_service=\"{dest}.svc.cluster.local\",destination_service_name=\"{}\",destination_service_namespace=\"{}\",\
         response_code=\"{code}\",response_flags=\"-\",connection_security_policy=\"{policy}\"}} {n}\n",
        dest.split('.').next().unwrap(),
        dest.split('.').nth(1).unwrap()
    )
}

fn services() -> Vec<(String, String)> {
    vec![("prices".into(), "catalog".into())]
}

#[test]
fn metrics_name_source_workloads_most_503s_first() {
    let text = [
        row("indexer", "catalog", 200, "mutual_tls", "prices.catalog", 40),
        row("pages", "storefront", 503, "mutual_tls", "prices.catalog", 3),
        row("pages", "storefront", 200, "mutual_tls", "prices.catalog", 1),
        // Near miss: another service of the same server pod.
        row("batch", "jobs", 503, "mutual_tls", "stock.catalog", 9),
        // A client-side row is the client's own count, not a caller of ours.
        "istio_requests_total{reporter=\"source\",source_workload=\"web\",source_workload_namespace=\"shop\",destination_service=\"prices.catalog.svc.cluster.local\",response_code=\"503\"} 7\n".to_string(),
        row("unknown", "unknown", 200, "none", "prices.catalog", 5),
    ]
    .concat();
    let m = callers_in_metrics(
        &[("catalog/prices-1".into(), parse_istio_metrics(&text))],
        &services(),
    );
    let names: Vec<(&str, &str)> = m
        .known
        .iter()
        .map(|c| (c.namespace.as_str(), c.workload.as_str()))
        .collect();
    // The caller with no 503 is still a caller, ranked after the one with 503s.
    assert_eq!(names, vec![("storefront", "pages"), ("catalog", "indexer")]);
    assert_eq!(m.known[0].requests, 4);
    assert_eq!(m.known[0].unavailable, 3);
    assert_eq!(m.known[1].unavailable, 0);
    let because = m.known[0].because();
    assert!(
        because.contains("source_workload=pages")
            && because.contains("catalog/prices-1")
            && because.contains("3 answered 503"),
        "{because}"
    );
    assert!(
        !m.known[1].because().contains("503"),
        "{}",
        m.known[1].because()
    );
    // Plaintext from an unknown peer: a client without sidecar or outside the mesh.
    assert_eq!((m.unknown, m.unknown_plaintext), (5, 5));
}

#[test]
fn metrics_in_the_lab_spelling_and_tcp_count_too() {
    let text = "envoy_istiocustom_istio_tcp_connections_opened_total{reporter=\"destination\",source_workload=\"loader\",source_workload_namespace=\"etl\",destination_service=\"prices.catalog.svc.cluster.local\",connection_security_policy=\"mutual_tls\"} 2\n";
    let m = callers_in_metrics(
        &[("catalog/prices-1".into(), parse_istio_metrics(text))],
        &services(),
    );
    assert_eq!(m.known.len(), 1);
    assert_eq!(m.known[0].workload, "loader");
    // Nothing counted: no callers.
    let m = callers_in_metrics(
        &[("catalog/prices-1".into(), parse_istio_metrics(""))],
        &services(),
    );
    assert!(m.known.is_empty() && m.unknown == 0);
}

fn pod(ns: &str, name: &str, owner: Option<(&str, &str)>, hash: Option<&str>) -> Value {
    let mut p = json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": ns, "labels": {}},
        "spec": {"containers": [{"name": "app"}, {"name": "istio-proxy"}]},
        "status": {"phase": "Running", "podIP": "10.0.0.1"}});
    if let Some((kind, oname)) = owner {
        p["metadata"]["ownerReferences"] =
            json!([{"kind": kind, "name": oname, "controller": true}]);
    }
    if let Some(h) = hash {
        p["metadata"]["labels"]["pod-template-hash"] = json!(h);
    }
    p
}

#[test]
fn source_workloads_map_to_pods_by_istios_workload_name() {
    let pods = vec![
        pod(
            "storefront",
            "pages-7d9f-abcde",
            Some(("ReplicaSet", "pages-7d9f")),
            Some("7d9f"),
        ),
        pod(
            "storefront",
            "pages-admin-1",
            Some(("ReplicaSet", "pages-admin-55")),
            Some("55"),
        ),
        pod("storefront", "db-0", Some(("StatefulSet", "db")), None),
        pod("storefront", "debug", None, None),
        // Near miss: the same workload name in another namespace.
        pod(
            "other",
            "pages-7d9f-zzzzz",
            Some(("ReplicaSet", "pages-7d9f")),
            Some("7d9f"),
        ),
    ];
    let names = |ns: &str, w: &str| -> Vec<&str> {
        pods_of_workload(&pods, ns, w)
            .into_iter()
            .map(objects::name)
            .collect()
    };
    assert_eq!(names("storefront", "pages"), vec!["pages-7d9f-abcde"]);
    assert_eq!(names("storefront", "pages-admin"), vec!["pages-admin-1"]);
    assert_eq!(names("storefront", "db"), vec!["db-0"]);
    assert_eq!(names("storefront", "debug"), vec!["debug"]);
    assert!(names("storefront", "web").is_empty());
}

fn dr(ns: &str, name: &str, host: &str, export: Option<Value>) -> Value {
    let mut o = json!({"apiVersion": "networking.istio.io/v1", "kind": "DestinationRule",
        "metadata": {"name": name, "namespace": ns}, "spec": {"host": host}});
    if let Some(e) = export {
        o["spec"]["exportTo"] = e;
    }
    o
}

#[test]
fn namespaces_whose_config_names_the_host() {
    let objects = vec![
        dr(
            "storefront",
            "prices-debug",
            "prices.catalog.svc.cluster.local",
            Some(json!(["."])),
        ),
        // Near miss: a rule for the host kept out of its own namespace
        // (exported to another one only): it applies to no caller there.
        dr(
            "search",
            "prices",
            "prices.catalog.svc.cluster.local",
            Some(json!(["catalog"])),
        ),
        // Near miss: a wildcard names every host, not this one.
        dr("istio-system", "mesh", "*.local", None),
        // Near miss: a short name resolves in the rule's own namespace.
        dr("orders", "prices", "prices", None),
        // The target's own namespace is not "another" caller namespace.
        dr("catalog", "prices", "prices", None),
        json!({"kind": "VirtualService", "metadata": {"name": "p", "namespace": "mobile"},
            "spec": {"hosts": ["api.example.com"], "http": [{"route": [{"destination": {"host": "prices.catalog"}}]}]}}),
        // Near miss: a gateway-only VirtualService configures no sidecar.
        json!({"kind": "VirtualService", "metadata": {"name": "p", "namespace": "edge"},
            "spec": {"hosts": ["x"], "gateways": ["edge/gw"], "http": [{"route": [{"destination": {"host": "prices.catalog.svc.cluster.local"}}]}]}}),
        json!({"kind": "Sidecar", "metadata": {"name": "default", "namespace": "reports"},
            "spec": {"egress": [{"hosts": ["./*", "catalog/prices.catalog.svc.cluster.local"]}]}}),
        // Near miss: importing every namespace says nothing about this host.
        json!({"kind": "Sidecar", "metadata": {"name": "default", "namespace": "wide"},
            "spec": {"egress": [{"hosts": ["*/*"]}]}}),
    ];
    let got = config_caller_namespaces(&objects, ("prices", "catalog"), "cluster.local");
    let names: Vec<&str> = got.keys().map(String::as_str).collect();
    assert_eq!(names, vec!["mobile", "reports", "storefront"]);
    assert_eq!(
        got["storefront"],
        "DestinationRule storefront/prices-debug applies to the host"
    );
    assert!(got["mobile"].contains("VirtualService mobile/p"));
    assert!(got["reports"].contains("Sidecar reports/default"));
}

fn plain_pod(ns: &str, name: &str, env: &[(&str, &str)], args: &[&str], sidecar: bool) -> Value {
    let mut containers = vec![json!({"name": "app",
        "env": env.iter().map(|(k, v)| json!({"name": k, "value": v})).collect::<Vec<_>>(),
        "args": args})];
    if sidecar {
        containers.push(json!({"name": "istio-proxy"}));
    }
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": ns},
        "spec": {"containers": containers}, "status": {"phase": "Running", "podIP": "10.0.0.9"}})
}

#[test]
fn pods_without_sidecar_that_name_the_host() {
    let pods = vec![
        plain_pod(
            "cron",
            "reconcile-1",
            &[("SETTLE_URL", "http://settle.payments:8000/")],
            &[],
            false,
        ),
        plain_pod(
            "cron",
            "report-1",
            &[],
            &["--target=settle.payments.svc.cluster.local"],
            false,
        ),
        // Near misses: another host with the name as a prefix or suffix…
        plain_pod(
            "cron",
            "a-1",
            &[("URL", "http://settle.payments-v2:8000/")],
            &[],
            false,
        ),
        plain_pod(
            "cron",
            "b-1",
            &[("URL", "http://presettle.payments:8000/")],
            &[],
            false,
        ),
        plain_pod(
            "cron",
            "c-1",
            &[("URL", "http://settle.payments.example.com/")],
            &[],
            false,
        ),
        // …the bare name from another namespace…
        plain_pod("cron", "d-1", &[("URL", "http://settle:8000/")], &[], false),
        // …and a pod with a sidecar (the mesh upgrades its calls).
        plain_pod(
            "cron",
            "e-1",
            &[("URL", "http://settle.payments:8000/")],
            &[],
            true,
        ),
        // The bare name in a URL is the Service in the pod's own namespace.
        plain_pod(
            "payments",
            "f-1",
            &[("URL", "http://settle:8000/")],
            &[],
            false,
        ),
    ];
    let got = pods_naming_host(&pods, ("settle", "payments"), "cluster.local");
    let names: Vec<&str> = got.iter().map(|(p, _)| objects::name(p)).collect();
    assert_eq!(names, vec!["reconcile-1", "report-1", "f-1"]);
    assert!(
        got[0].1.contains("environment variable SETTLE_URL")
            && got[0].1.contains("settle.payments"),
        "{}",
        got[0].1
    );
    assert!(got[1].1.contains("container app's args"), "{}", got[1].1);
}

#[test]
fn a_rule_kept_from_other_namespaces_widens_the_sample() {
    let services = vec![("stock".to_string(), "warehouse".to_string())];
    let kept = dr("warehouse", "stock", "stock", Some(json!(["."])));
    let why = rule_not_exported_everywhere(&[kept], &services, "cluster.local").unwrap();
    assert!(
        why.contains("DestinationRule warehouse/stock") && why.contains("exported only to ."),
        "{why}"
    );
    // Near misses: exported everywhere (absent or `*`), another host, or a
    // rule in another namespace (that one is a caller namespace's own).
    for o in [
        dr("warehouse", "stock", "stock", None),
        dr("warehouse", "stock", "stock", Some(json!([".", "*"]))),
        dr("warehouse", "other", "other", Some(json!(["."]))),
        dr(
            "shipping",
            "stock",
            "stock.warehouse.svc.cluster.local",
            Some(json!(["."])),
        ),
    ] {
        assert_eq!(
            rule_not_exported_everywhere(std::slice::from_ref(&o), &services, "cluster.local"),
            None,
            "{o}"
        );
    }
}

#[test]
fn a_namespace_wildcard_rule_with_tls_makes_its_namespace_callers() {
    let with_tls = |mut o: Value| {
        o["spec"]["trafficPolicy"] = json!({"tls": {"mode": "ISTIO_MUTUAL"}});
        o
    };
    let objects = vec![
        // istio/istio#36672's shape: `*` with ISTIO_MUTUAL in orders.
        with_tls(dr("orders", "default", "*", None)),
        // Near misses: the root namespace's mesh-wide rule, a wildcard
        // without tls, a wildcard for another domain, one kept elsewhere.
        with_tls(dr("istio-system", "mesh", "*.local", None)),
        dr("billing", "default", "*", None),
        with_tls(dr("partners", "ext", "*.example.com", None)),
        with_tls(dr("search", "star", "*", Some(json!(["catalog"])))),
    ];
    let got = config_caller_namespaces(&objects, ("api", "archive"), "cluster.local");
    let names: Vec<&str> = got.keys().map(String::as_str).collect();
    assert_eq!(names, vec!["orders"], "{got:?}");
    assert!(got["orders"].contains("sets TLS for every host"), "{got:?}");
    // A custom root namespace is the mesh-wide one.
    let mut objects = objects;
    objects.push(json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "istio", "namespace": "mesh-root"},
        "data": {"mesh": "rootNamespace: orders\n"}}));
    let got = config_caller_namespaces(&objects, ("api", "archive"), "cluster.local");
    assert!(!got.contains_key("orders"), "{got:?}");
    assert!(got.contains_key("istio-system"), "{got:?}");
}
