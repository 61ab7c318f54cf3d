//! Unit tests of the v1alpha1 MeshPolicy/Policy precedence (Istio 1.4
//! `AuthenticationPolicyForWorkload`).
//!
//! Place in the flow: test-only (istio/ helpers).

use super::*;
use serde_json::json;

fn mesh(spec: Value) -> LegacyPolicy {
    LegacyPolicy::from_value(&json!({
        "apiVersion": "authentication.istio.io/v1alpha1", "kind": "MeshPolicy",
        "metadata": {"name": "default"}, "spec": spec
    }))
    .unwrap()
}
/// The mode for a service port, targets resolved in `cluster.local`.
fn legacy_server_mode(
    mesh_policies: &[LegacyPolicy],
    policies: &[LegacyPolicy],
    service_name: &str,
    ns: &str,
    number: u32,
    port_name: Option<&str>,
) -> ServerMode {
    let all: Vec<LegacyPolicy> = mesh_policies.iter().chain(policies).cloned().collect();
    LegacyPolicies::new(all, "cluster.local").server_mode(
        ns,
        Some(ServicePort {
            name: service_name,
            number,
            port_name,
        }),
    )
}

/// The namespace-level mode (namespace Policy > MeshPolicy), no service.
fn legacy_namespace_mode(
    mesh_policies: &[LegacyPolicy],
    policies: &[LegacyPolicy],
    ns: &str,
) -> ServerMode {
    let all: Vec<LegacyPolicy> = mesh_policies.iter().chain(policies).cloned().collect();
    LegacyPolicies::new(all, "cluster.local").server_mode(ns, None)
}

fn policy(ns: &str, name: &str, ts: &str, spec: Value) -> LegacyPolicy {
    LegacyPolicy::from_value(&json!({
        "apiVersion": "authentication.istio.io/v1alpha1", "kind": "Policy",
        "metadata": {"name": name, "namespace": ns, "creationTimestamp": ts}, "spec": spec
    }))
    .unwrap()
}

#[test]
fn peer_forms() {
    assert_eq!(
        mesh(json!({"peers": [{"mtls": {}}]})).peer_mtls,
        Some(LegacyMtls::Strict)
    );
    assert_eq!(
        mesh(json!({"peers": [{"mtls": null}]})).peer_mtls,
        Some(LegacyMtls::Strict)
    );
    assert_eq!(
        mesh(json!({"peers": [{"mtls": {"mode": "STRICT"}}]})).peer_mtls,
        Some(LegacyMtls::Strict)
    );
    assert_eq!(
        mesh(json!({"peers": [{"mtls": {"mode": "PERMISSIVE"}}]})).peer_mtls,
        Some(LegacyMtls::Permissive)
    );
    assert_eq!(mesh(json!({"peers": [{"jwt": {}}]})).peer_mtls, None);
    assert_eq!(mesh(json!({})).peer_mtls, None);
    let e = LegacyPolicy::from_value(&json!({
        "kind": "Policy", "metadata": {"name": "d", "namespace": "n"},
        "spec": {"peers": [{"mtls": {"mode": "SOMETIMES"}}]}
    }))
    .unwrap_err();
    assert!(e.to_string().contains("spec.peers[0].mtls.mode"), "{e}");
}

#[test]
fn precedence_service_namespace_mesh() {
    let m = vec![mesh(json!({"peers": [{"mtls": {}}]}))];
    let none = legacy_server_mode(&m, &[], "httpbin", "foo", 8000, Some("http"));
    assert_eq!(none.mode, MtlsMode::Strict);
    assert!(matches!(none.source, ModeSource::LegacyMesh(_)));

    let pols = vec![
        policy(
            "foo",
            "default",
            "2019-01-01T00:00:00Z",
            json!({"peers": [{"mtls": {"mode": "PERMISSIVE"}}]}),
        ),
        policy(
            "foo",
            "httpbin",
            "2019-02-01T00:00:00Z",
            json!({"targets": [{"name": "httpbin", "ports": [{"number": 8000}]}]}),
        ),
    ];
    let m1 = legacy_server_mode(&m, &pols, "httpbin", "foo", 8000, None);
    assert_eq!(
        m1.mode,
        MtlsMode::Disable,
        "service policy without peers = no mTLS"
    );
    assert!(matches!(m1.source, ModeSource::LegacyService(_)));
    let m2 = legacy_server_mode(&m, &pols, "httpbin", "foo", 9000, None);
    assert_eq!(m2.mode, MtlsMode::Permissive);
    assert!(matches!(m2.source, ModeSource::LegacyNamespace(_)));
    let m3 = legacy_server_mode(&m, &pols, "other", "bar", 80, None);
    assert_eq!(m3.mode, MtlsMode::Strict);
}

#[test]
fn no_policy_means_no_mtls() {
    let m = legacy_server_mode(&[], &[], "a", "b", 80, None);
    assert_eq!(m.mode, MtlsMode::Disable);
    assert_eq!(m.source, ModeSource::Default);
}

#[test]
fn port_by_name_and_fqdn_target() {
    let pols = vec![policy(
        "foo",
        "p",
        "2019-01-01T00:00:00Z",
        json!({"targets": [{"name": "httpbin.foo.svc.cluster.local", "ports": [{"name": "http"}]}], "peers": [{"mtls": {}}]}),
    )];
    assert_eq!(
        legacy_server_mode(&[], &pols, "httpbin", "foo", 8000, Some("http")).mode,
        MtlsMode::Strict
    );
    assert_eq!(
        legacy_server_mode(&[], &pols, "httpbin", "foo", 8000, Some("grpc")).mode,
        MtlsMode::Disable
    );
}

#[test]
fn only_mesh_policy_default_counts() {
    let other = LegacyPolicy::from_value(&json!({
        "kind": "MeshPolicy", "metadata": {"name": "extra"}, "spec": {"peers": [{"mtls": {}}]}
    }))
    .unwrap();
    let m = legacy_server_mode(&[other], &[], "a", "b", 80, None);
    assert_eq!(m.mode, MtlsMode::Disable);
    assert_eq!(m.ignored.len(), 1);
}

#[test]
fn namespace_mode() {
    let m = vec![mesh(json!({"peers": [{"mtls": {}}]}))];
    let p = vec![policy(
        "foo",
        "default",
        "2019-01-01T00:00:00Z",
        json!({"origins": [{"jwt": {"issuer": "x"}}]}),
    )];
    let bad = LegacyPolicy::from_value(
        &json!({"apiVersion": "authentication.istio.io/v1alpha1", "kind": "Policy", "metadata": {"name": "bad", "namespace": "foo"}, "spec": {"targets": [{}]}}),
    );
    assert!(bad
        .unwrap_err()
        .to_string()
        .contains("spec.targets[0].name"));
    let nm = legacy_namespace_mode(&m, &p, "foo");
    assert_eq!(
        nm.mode,
        MtlsMode::Disable,
        "a JWT-only namespace Policy turns mTLS off"
    );
    assert_eq!(legacy_namespace_mode(&m, &p, "bar").mode, MtlsMode::Strict);
}

/// The compat functions read the policies in place (they copied all of them
/// per query: `fuzz/scale.sh`, 5,000 pods); unsorted input still decides and
/// explains exactly as the sorted `LegacyPolicies` does.
#[test]
fn compat_functions_read_unsorted_policies_in_place() {
    let pols = vec![
        policy(
            "foo",
            "new-ns",
            "2021-01-01T00:00:00Z",
            json!({"peers": [{"mtls": {"mode": "PERMISSIVE"}}]}),
        ),
        policy(
            "foo",
            "svc-b",
            "2020-06-01T00:00:00Z",
            json!({"targets": [{"name": "httpbin", "ports": [{"number": 8000}]}], "peers": [{"mtls": {}}]}),
        ),
        policy(
            "foo",
            "old-ns",
            "2019-01-01T00:00:00Z",
            json!({"peers": [{"mtls": {}}]}),
        ),
        policy(
            "foo",
            "svc-a",
            "2020-01-01T00:00:00Z",
            json!({"targets": [{"name": "httpbin"}]}),
        ),
    ];
    let meshes = [mesh(json!({"peers": [{"mtls": {}}]}))];
    let owned = LegacyPolicies::new(
        meshes.iter().chain(&pols).cloned().collect(),
        host::DEFAULT_DOMAIN_SUFFIX,
    );
    for (port, name) in [(8000, Some("http")), (9000, None)] {
        let svc = ServicePort {
            name: "httpbin",
            number: port,
            port_name: name,
        };
        let compat = legacy_server_mode(&meshes, &pols, "httpbin", "foo", port, name);
        assert_eq!(compat, owned.server_mode("foo", Some(svc)));
    }
    assert_eq!(
        legacy_namespace_mode(&meshes, &pols, "foo"),
        owned.server_mode("foo", None)
    );
    let ns = legacy_namespace_mode(&meshes, &pols, "foo");
    assert_eq!(
        ns.source,
        ModeSource::LegacyNamespace(pols[2].meta.object_ref())
    );
    assert!(
        ns.ignored.iter().any(|i| i.contains("new-ns")),
        "{:?}",
        ns.ignored
    );
}
