//! Unit tests of PeerAuthentication composition (istio/istio
//! `ComposePeerAuthentication`), including near misses: root-namespace
//! selectors, port-level entries on namespace policies, service vs container
//! ports.
//!
//! Place in the flow: test-only (istio/ helpers).

use super::*;
use crate::istio::testutil::{labels, pa, pa_mode, T2020, T2021, T2022};
use serde_json::json;

/// [`PeerAuthPolicies::server_mode`] for a workload in `ns`, no service.
fn server_mode(
    pas: &[PeerAuthentication],
    root_ns: &str,
    ns: &str,
    labels: &BTreeMap<String, String>,
    container_port: Option<u32>,
) -> ServerMode {
    PeerAuthPolicies::new(pas.to_vec(), root_ns).server_mode(&ServerQuery {
        namespace: ns,
        labels,
        container_port,
        service: None,
    })
}

/// [`PeerAuthPolicies::namespace_mode`].
fn namespace_mode(pas: &[PeerAuthentication], root_ns: &str, ns: &str) -> ServerMode {
    PeerAuthPolicies::new(pas.to_vec(), root_ns).namespace_mode(ns)
}

/// The mode of a workload labelled `l` in namespace foo (root istio-system).
fn foo_mode(pas: &[PeerAuthentication], l: &[(&str, &str)], port: Option<u32>) -> ServerMode {
    server_mode(pas, "istio-system", "foo", &labels(l), port)
}

#[test]
fn parse_v1beta1_with_ports() {
    let p = PeerAuthentication::from_value(&json!({
        "apiVersion": "security.istio.io/v1beta1", "kind": "PeerAuthentication",
        "metadata": {"name": "x", "namespace": "foo"},
        "spec": {"selector": {"matchLabels": {"app": "a"}}, "mtls": {"mode": "STRICT"},
                 "portLevelMtls": {"8080": {"mode": "DISABLE"}, "9090": {}}}
    }))
    .unwrap();
    assert_eq!(p.mode, PaMode::Strict);
    assert_eq!(p.port_level.get(&8080), Some(&PaMode::Disable));
    assert_eq!(p.port_level.get(&9090), Some(&PaMode::Unset));
    assert!(p.selector.is_some());
    let e = PeerAuthentication::from_value(&json!({
        "kind": "PeerAuthentication", "metadata": {"name": "x", "namespace": "foo"},
        "spec": {"portLevelMtls": {"http": {"mode": "DISABLE"}}}
    }))
    .unwrap_err();
    assert!(e.to_string().contains("spec.portLevelMtls.http"), "{e}");
}

#[test]
fn no_policy_is_permissive() {
    let m = server_mode(&[], "istio-system", "foo", &BTreeMap::new(), Some(80));
    assert_eq!(m.mode, MtlsMode::Permissive);
    assert_eq!(m.source, ModeSource::Default);
}

#[test]
fn scopes_narrow_wins_and_unset_inherits() {
    let pas = vec![
        pa_mode("istio-system", "default", T2020, "STRICT"),
        pa_mode("foo", "default", T2020, "UNSET"),
        pa(
            "foo",
            "httpbin",
            T2020,
            json!({"selector": {"matchLabels": {"app": "httpbin"}}, "mtls": {"mode": "DISABLE"}}),
        ),
    ];
    let m = foo_mode(&pas, &[("app", "other")], None);
    assert_eq!(m.mode, MtlsMode::Strict);
    assert!(matches!(m.source, ModeSource::Mesh(_)));
    assert!(
        m.chain.iter().any(|c| c.contains("inherits STRICT")),
        "{:?}",
        m.chain
    );
    let m = foo_mode(&pas, &[("app", "httpbin")], None);
    assert_eq!(m.mode, MtlsMode::Disable);
    assert!(matches!(m.source, ModeSource::Workload(ref r) if r.name == "httpbin"));
    assert!(m
        .explain()
        .starts_with("DISABLE (decided by workload PeerAuthentication foo/httpbin)"));
}

#[test]
fn oldest_wins_within_scope() {
    let pas = vec![
        pa_mode("foo", "b", T2021, "DISABLE"),
        pa_mode("foo", "a", T2022, "STRICT"),
    ];
    let m = server_mode(&pas, "istio-system", "foo", &BTreeMap::new(), None);
    assert_eq!(m.mode, MtlsMode::Disable);
    assert_eq!(m.ignored.len(), 1);
    assert!(m.ignored[0].contains("foo/a"));
}

#[test]
fn root_namespace_selector_policies_are_ignored() {
    let pas = vec![pa(
        "istio-system",
        "sel",
        T2020,
        json!({"selector": {"matchLabels": {"app": "httpbin"}}, "mtls": {"mode": "STRICT"}}),
    )];
    let m = foo_mode(&pas, &[("app", "httpbin")], None);
    assert_eq!(m.mode, MtlsMode::Permissive);
    assert_eq!(m.ignored.len(), 1);
}

#[test]
fn port_level_only_on_workload_policies() {
    let pas = vec![
        pa(
            "foo",
            "ns",
            T2020,
            json!({"mtls": {"mode": "STRICT"}, "portLevelMtls": {"8080": {"mode": "DISABLE"}}}),
        ),
        pa(
            "foo",
            "wl",
            T2020,
            json!({"selector": {"matchLabels": {"app": "a"}}, "portLevelMtls": {"8080": {"mode": "PERMISSIVE"}, "9090": {"mode": "UNSET"}}}),
        ),
    ];
    // Namespace policy's port entry ignored.
    let m = foo_mode(&pas, &[("app", "b")], Some(8080));
    assert_eq!(m.mode, MtlsMode::Strict);
    assert!(m
        .ignored
        .iter()
        .any(|i| i.contains("portLevelMtls is ignored")));
    // Workload policy: UNSET workload mode inherits STRICT, port 8080 → PERMISSIVE.
    let a = labels(&[("app", "a")]);
    let m = server_mode(&pas, "istio-system", "foo", &a, Some(8080));
    assert_eq!(m.mode, MtlsMode::Permissive);
    assert_eq!(
        m.source,
        ModeSource::WorkloadPort(pas[1].object_ref(), 8080)
    );
    let m = server_mode(&pas, "istio-system", "foo", &a, Some(9090));
    assert_eq!(m.mode, MtlsMode::Strict);
    let m = server_mode(&pas, "istio-system", "foo", &a, Some(80));
    assert_eq!(m.mode, MtlsMode::Strict);
    assert!(m.chain.iter().any(|c| c.contains("container ports")));
}

#[test]
fn namespace_mode_ignores_workload_policies() {
    let pas = vec![
        pa_mode("istio-system", "default", T2020, "STRICT"),
        pa(
            "foo",
            "wl",
            T2020,
            json!({"selector": {"matchLabels": {"app": "a"}}, "mtls": {"mode": "DISABLE"}}),
        ),
    ];
    let m = namespace_mode(&pas, "istio-system", "foo");
    assert_eq!(m.mode, MtlsMode::Strict);
    assert!(m.chain.iter().any(|c| c.contains("not visible")));
    let m = namespace_mode(&[], "istio-system", "foo");
    assert_eq!(m.mode, MtlsMode::Permissive);
    assert_eq!(m.source, ModeSource::Default);
}

#[test]
fn mesh_unset_is_permissive_and_namespace_overrides() {
    let pas = vec![
        pa("istio-system", "default", T2020, json!({})),
        pa_mode("foo", "default", T2020, "STRICT"),
    ];
    assert_eq!(
        namespace_mode(&pas, "istio-system", "bar").mode,
        MtlsMode::Permissive
    );
    assert_eq!(
        namespace_mode(&pas, "istio-system", "foo").mode,
        MtlsMode::Strict
    );
    // Custom root namespace.
    assert_eq!(
        namespace_mode(&pas, "mesh-root", "bar").mode,
        MtlsMode::Permissive
    );
}

/// The compat functions read the policies in place (they copied all of them
/// per query: `fuzz/scale.sh`, 5,000 pods x 5,000 policies took 45 s in
/// `analyze`); they decide exactly as `PeerAuthPolicies`.
#[test]
fn compat_functions_decide_as_the_policies() {
    let pas = vec![
        pa_mode("istio-system", "default", T2020, "STRICT"),
        pa_mode("foo", "ns-new", T2022, "PERMISSIVE"),
        pa_mode("foo", "ns-old", T2021, "DISABLE"),
        pa(
            "foo",
            "wl",
            T2021,
            json!({"selector": {"matchLabels": {"app": "a"}}, "mtls": {"mode": "STRICT"}, "portLevelMtls": {"8080": {"mode": "PERMISSIVE"}}}),
        ),
    ];
    let policies = PeerAuthPolicies::new(pas.clone(), "");
    for l in [labels(&[("app", "a")]), BTreeMap::new()] {
        for port in [None, Some(8080), Some(80)] {
            let q = ServerQuery {
                namespace: "foo",
                labels: &l,
                container_port: port,
                service: None,
            };
            assert_eq!(
                server_mode(&pas, "", "foo", &l, port),
                policies.server_mode(&q)
            );
        }
    }
    for ns in ["foo", "istio-system", "bar"] {
        assert_eq!(namespace_mode(&pas, "", ns), policies.namespace_mode(ns));
    }
}
