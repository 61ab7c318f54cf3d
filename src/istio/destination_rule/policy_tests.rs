//! Unit tests of the effective policy for a port/subset (istio/istio
//! `util.go` `MergeSubsetTrafficPolicy`, `GetPortLevelTrafficPolicy`) and its
//! notes, with near misses.
//!
//! Place in the flow: test-only (istio/ helpers).

use super::tests::sel_for;
use super::*;
use crate::istio::testutil::{dr, T2020};
use serde_json::json;

#[test]
fn port_level_replaces_everything_for_that_port() {
    let rules = vec![dr(
        "foo",
        "httpbin",
        T2020,
        json!({"host": "httpbin", "trafficPolicy": {
            "tls": {"mode": "ISTIO_MUTUAL"},
            "outlierDetection": {"consecutive5xxErrors": 1},
            "portLevelSettings": [{"port": {"number": 8000}, "connectionPool": {"tcp": {"maxConnections": 1}}}]
        }}),
    )];
    let sel = sel_for(&rules, "foo");
    let eff = effective_policy(&sel, 8000, None);
    assert_eq!(eff.origin, PolicyOrigin::PortLevel(8000));
    assert!(
        eff.tls.is_none(),
        "tls is NOT inherited by the port-level entry"
    );
    assert!(eff.outlier.is_none());
    assert_eq!(
        eff.field_origins.connection_pool,
        PolicyOrigin::PortLevel(8000)
    );
    assert!(eff
        .notes
        .iter()
        .any(|n| n.contains("does NOT apply to port 8000")));
    // Other ports keep the top-level policy.
    let eff = effective_policy(&sel, 9000, None);
    assert_eq!(eff.tls.unwrap().mode, TlsMode::IstioMutual);
    assert_eq!(eff.origin, PolicyOrigin::TopLevel);
}

#[test]
fn subset_overrides_field_by_field_and_subset_port_level_replaces() {
    let rules = vec![dr(
        "foo",
        "httpbin",
        T2020,
        json!({"host": "httpbin",
        "trafficPolicy": {"tls": {"mode": "ISTIO_MUTUAL"}, "connectionPool": {"tcp": {"maxConnections": 100}}},
        "subsets": [
            {"name": "v1", "labels": {"version": "v1"}, "trafficPolicy": {"connectionPool": {"tcp": {"maxConnections": 1}}}},
            {"name": "v2", "labels": {"version": "v2"}, "trafficPolicy": {
                "tls": {"mode": "SIMPLE"},
                "portLevelSettings": [{"port": {"number": 8000}, "loadBalancer": {"simple": "RANDOM"}}]
            }}
        ]}),
    )];
    let sel = sel_for(&rules, "foo");
    let eff = effective_policy(&sel, 8000, Some("v1"));
    assert_eq!(eff.tls.as_ref().unwrap().mode, TlsMode::IstioMutual);
    assert_eq!(eff.field_origins.tls, PolicyOrigin::TopLevel);
    assert_eq!(
        eff.connection_pool.unwrap().tcp.unwrap().max_connections,
        Some(1)
    );
    assert_eq!(
        eff.field_origins.connection_pool,
        PolicyOrigin::Subset("v1".into())
    );
    assert_eq!(eff.origin, PolicyOrigin::Subset("v1".into()));
    assert_eq!(eff.subset_defined, Some(true));

    let eff = effective_policy(&sel, 8000, Some("v2"));
    assert_eq!(eff.origin, PolicyOrigin::SubsetPortLevel("v2".into(), 8000));
    assert!(
        eff.tls.is_none(),
        "subset port-level entry replaces tls too"
    );
    assert!(eff.connection_pool.is_none());
    assert_eq!(eff.load_balancer.unwrap().simple.as_deref(), Some("RANDOM"));

    let eff = effective_policy(&sel, 9000, Some("v2"));
    assert_eq!(eff.tls.unwrap().mode, TlsMode::Simple);
    assert_eq!(
        eff.connection_pool.unwrap().tcp.unwrap().max_connections,
        Some(100)
    );

    let eff = effective_policy(&sel, 8000, Some("v3"));
    assert_eq!(eff.subset_defined, Some(false));
    assert!(eff.notes.iter().any(|n| n.contains("cluster_not_found")));
}

#[test]
fn top_port_level_then_subset_fields() {
    // GetPortLevelTrafficPolicy on the top level first, then the subset overrides.
    let rules = vec![dr(
        "foo",
        "httpbin",
        T2020,
        json!({"host": "httpbin",
            "trafficPolicy": {"tls": {"mode": "ISTIO_MUTUAL"},
                "portLevelSettings": [{"port": {"number": 8000}, "tls": {"mode": "DISABLE"}}]},
            "subsets": [{"name": "v1", "trafficPolicy": {"outlierDetection": {"consecutive5xxErrors": 3}}}]}),
    )];
    let sel = sel_for(&rules, "foo");
    let eff = effective_policy(&sel, 8000, Some("v1"));
    assert_eq!(eff.tls.unwrap().mode, TlsMode::Disable);
    assert_eq!(eff.field_origins.tls, PolicyOrigin::PortLevel(8000));
    assert_eq!(eff.outlier.unwrap().consecutive_5xx_errors, Some(3));
}

#[test]
fn no_policy_at_all() {
    let rules = vec![dr(
        "foo",
        "httpbin",
        T2020,
        json!({"host": "httpbin", "subsets": [{"name": "v1"}]}),
    )];
    let sel = sel_for(&rules, "foo");
    let eff = effective_policy(&sel, 8000, Some("v1"));
    assert_eq!(eff.origin, PolicyOrigin::None);
    assert!(eff.tls.is_none());
    assert!(eff.describe_tls(&sel).contains("no tls"));
}

#[test]
fn policy_notes_are_typed_and_worded() {
    let rules = vec![dr(
        "foo",
        "httpbin",
        T2020,
        json!({"host": "httpbin", "trafficPolicy": {
            "tls": {"mode": "ISTIO_MUTUAL"}, "loadBalancer": {"simple": "RANDOM"},
            "portLevelSettings": [{"port": {"number": 8000}, "connectionPool": {"tcp": {"maxConnections": 1}}}]},
            "subsets": [{"name": "v1", "trafficPolicy": {"portLevelSettings": [{"port": {"number": 9000}}]}}]}),
    )];
    let sel = sel_for(&rules, "foo");
    let typed = decide_policy(&sel, 8000, None);
    assert!(typed.notes.is_empty());
    assert_eq!(
        typed.policy_notes,
        vec![
            PolicyNote::PortLevelDropsTls {
                rule: "foo/httpbin".into(),
                port: 8000,
                top_tls: TlsMode::IstioMutual
            },
            PolicyNote::PortLevelDropsField {
                rule: "foo/httpbin".into(),
                port: 8000,
                field: "loadBalancer"
            },
        ]
    );
    let eff = effective_policy(&sel, 8000, None);
    assert_eq!(eff.notes[1], "DestinationRule foo/httpbin: the top-level loadBalancer is not inherited by the portLevelSettings entry for port 8000");
    let eff = effective_policy(&sel, 9000, Some("v1"));
    assert_eq!(
        eff.policy_notes,
        vec![PolicyNote::SubsetPortLevelDropsTls {
            subset: "v1".into(),
            port: 9000,
            dropped_from: PolicyOrigin::TopLevel
        }]
    );
    assert!(
        eff.notes[0].ends_with("the tls from top-level trafficPolicy is dropped"),
        "{}",
        eff.notes[0]
    );
    assert!(eff.tls.is_none());
}
