//! Read only what the diagnosis needs (docs/performance.md): on a generated
//! mesh (`mesh503-lab generate`: a DestinationRule per service, two real
//! Envoys carrying every outbound cluster, the seed's break on
//! `foo/httpbin`), the saved snapshot of `diagnose svc/httpbin -n foo`
//! barely grows from 40 to 400 services, and the sidecars' evidence was read
//! through Envoy's admin filters. Sizes, not times: nothing here is timed.

mod common;
use common::*;
use mesh503_lab::generate::{self, MeshSpec};
use mesh503_lab::lab::{Lab, LabOptions};

/// Diagnoses the seed's break on a generated mesh of `services` services;
/// the saved snapshot, its size, and the pod lists the plugin asked for
/// (path and query).
fn snapshot_at(services: usize) -> (serde_json::Value, u64, Vec<String>) {
    let spec = MeshSpec {
        services,
        pods_per_service: 1,
        ..MeshSpec::default()
    };
    let objects = generate::objects(&spec).expect("generate");
    let lab = Lab::start_objects(objects, LabOptions::default())
        .unwrap_or_else(|e| panic!("lab of {services} services did not start: {e:#}"));
    let r = request(&lab, "foo/sleep", "http://httpbin.foo:8000/get");
    assert_eq!(r.status, 503, "the seed's break answers 503");
    let dir = tempfile::tempdir().unwrap();
    let snap = dir.path().join("s.json");
    let out = mesh503(
        Some(&lab),
        &[
            "diagnose",
            "svc/httpbin",
            "-n",
            "foo",
            "--save-snapshot",
            snap.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(1), "a finding: {}", text(&out));
    let bytes = std::fs::metadata(&snap).unwrap().len();
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&snap).unwrap()).unwrap();
    (v, bytes, pod_lists(&lab))
}

fn clusters_in(proxy: &serde_json::Value) -> usize {
    proxy["clusters_config"]["configs"]
        .as_array()
        .map_or(0, Vec::len)
}

#[test]
fn the_snapshot_barely_grows_with_the_mesh() {
    let (small, small_bytes, small_pod_lists) = snapshot_at(40);
    let (large, large_bytes, large_pod_lists) = snapshot_at(400);
    // Pods are listed by namespace or selected by the server: never every
    // pod of the cluster (callers without a sidecar are asked for with
    // `!security.istio.io/tlsMode`, callers by IP with `status.podIP=`).
    assert_no_unselected_cluster_wide_pod_list(&large_pod_lists);
    assert_eq!(
        small_pod_lists.len(),
        large_pod_lists.len(),
        "the pod lists do not grow with the mesh: {small_pod_lists:?} vs {large_pod_lists:?}"
    );
    // Unfiltered, each Envoy's cluster dump alone grew by ~4 KB per service
    // (1.6 MB per sidecar at 400) and every DestinationRule was kept.
    assert!(
        large_bytes < small_bytes + 64 * 1024,
        "snapshot grew from {small_bytes} B (40 services) to {large_bytes} B (400)"
    );
    assert!(large_bytes < 600 * 1024, "{large_bytes} B at 400 services");
    for snap in [&small, &large] {
        let proxies = snap["proxies"].as_array().unwrap();
        assert_eq!(proxies.len(), 2, "server and caller read");
        for p in proxies {
            let scope = &p["scope"]["clusters"];
            assert!(scope.as_str().unwrap().contains("httpbin"), "{scope}");
            // The target's cluster (client) or the inbound one (server), the
            // catch-alls: a handful, whatever the mesh size.
            let n = clusters_in(p);
            assert!((1..=8).contains(&n), "{} clusters kept for {}", n, p["pod"]);
            assert!(p["gaps"].as_array().unwrap().is_empty(), "{}", p["gaps"]);
        }
        let rules = snap["objects"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|o| o["kind"] == "DestinationRule")
            .count();
        assert!(rules <= 2, "{rules} DestinationRules kept");
    }
    let client = large["proxies"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["role"] == "client")
        .expect("the caller was read");
    let dump = client["clusters_config"].to_string();
    assert!(dump.contains("outbound|8000||httpbin.foo.svc.cluster.local"));
    assert!(!dump.contains("svc-"), "no other service's cluster");
    assert!(client["endpoints_config"].to_string().contains("httpbin"));
    assert!(client["clusters"]
        .as_str()
        .unwrap()
        .contains("outbound|8000||httpbin.foo.svc.cluster.local::"));
}
