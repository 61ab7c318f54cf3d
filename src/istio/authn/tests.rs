//! Unit tests of the one authentication interface ([`Authn`]) over the three
//! eras, written from Istio's sources (see the module doc): the 1.5 fallback
//! to v1alpha1 and to PERMISSIVE, ≤1.4's no-policy-no-mTLS, and the near
//! misses (a policy in another namespace, the wrong cluster domain).
//!
//! Place in the flow: test-only (istio/ helpers).

use super::*;
use crate::istio::testutil::{labels, object, pa, pa_mode, T2019, T2020};
use serde_json::json;

fn legacy(kind: &str, ns: &str, name: &str, spec: serde_json::Value) -> LegacyPolicy {
    let mut v = object(
        "authentication.istio.io/v1alpha1",
        kind,
        ns,
        name,
        T2019,
        spec,
    );
    if kind == "MeshPolicy" {
        v["metadata"].as_object_mut().unwrap().remove("namespace");
    }
    LegacyPolicy::from_value(&v).unwrap()
}

fn strict_mesh_policy() -> LegacyPolicy {
    legacy(
        "MeshPolicy",
        "",
        "default",
        json!({"peers": [{"mtls": {}}]}),
    )
}

const HTTPBIN: ServicePort<'static> = ServicePort {
    name: "httpbin",
    number: 8000,
    port_name: Some("http"),
};

fn query<'a>(
    ns: &'a str,
    l: &'a BTreeMap<String, String>,
    svc: Option<ServicePort<'a>>,
) -> ServerQuery<'a> {
    ServerQuery {
        namespace: ns,
        labels: l,
        container_port: Some(8080),
        service: svc,
    }
}

#[test]
fn era_detection() {
    let v = |s: &str| IstioVersion::parse(s);
    let ev = |pa: Option<bool>, lg: Option<bool>, version, has_pa, has_lg| AuthnEvidence {
        peer_auth_served: pa,
        legacy_served: lg,
        version,
        has_peer_auth: has_pa,
        has_legacy: has_lg,
    };
    // Discovery decides when read.
    assert_eq!(
        ev(Some(true), Some(true), None, false, false).api(),
        AuthnApi::Transitional
    );
    assert_eq!(
        ev(Some(false), Some(true), v("1.5.0"), false, false).api(),
        AuthnApi::Legacy
    );
    assert_eq!(
        ev(Some(true), Some(false), v("1.4.0"), false, true).api(),
        AuthnApi::PeerAuthentication
    );
    // Else the version.
    assert_eq!(
        ev(None, None, v("1.4.2"), true, false).api(),
        AuthnApi::Legacy
    );
    assert_eq!(
        ev(None, None, v("1.5.10"), false, false).api(),
        AuthnApi::Transitional
    );
    assert_eq!(
        ev(None, None, v("1.6.0"), false, true).api(),
        AuthnApi::PeerAuthentication
    );
    // Else the objects.
    assert_eq!(ev(None, None, None, false, true).api(), AuthnApi::Legacy);
    assert_eq!(
        ev(None, None, None, true, true).api(),
        AuthnApi::Transitional
    );
    assert_eq!(
        ev(None, None, None, false, false).api(),
        AuthnApi::PeerAuthentication
    );
}

#[test]
fn istio_1_5_without_any_policy_is_permissive() {
    // 1.5.0 policy_applier.go: composePeerAuthentication returns nil, no alpha
    // policy (shouldUseAlphaMtlsPolicy false) → getMutualTLSModeForPort → PERMISSIVE.
    let a = Authn::new(
        AuthnApi::Transitional,
        "istio-system",
        "cluster.local",
        vec![],
        vec![],
    );
    let l = labels(&[("app", "httpbin")]);
    let m = a.server_mode(&query("foo", &l, Some(HTTPBIN)));
    assert_eq!(m.mode, MtlsMode::Permissive);
    assert_eq!(m.source, ModeSource::Default);
    assert!(
        m.chain.iter().any(|c| c.contains("Istio 1.5 default")),
        "{:?}",
        m.chain
    );
    assert_eq!(a.namespace_mode("foo").mode, MtlsMode::Permissive);
    // Near miss: the same mesh on ≤1.4 has no mTLS at all.
    let old = Authn::new(
        AuthnApi::Legacy,
        "istio-system",
        "cluster.local",
        vec![],
        vec![],
    );
    assert_eq!(
        old.server_mode(&query("foo", &l, Some(HTTPBIN))).mode,
        MtlsMode::Disable
    );
    assert_eq!(old.namespace_mode("foo").mode, MtlsMode::Disable);
    // And ≥1.6 is PERMISSIVE too.
    let new = Authn::new(
        AuthnApi::PeerAuthentication,
        "istio-system",
        "cluster.local",
        vec![],
        vec![],
    );
    assert_eq!(
        new.server_mode(&query("foo", &l, None)).mode,
        MtlsMode::Permissive
    );
}

#[test]
fn istio_1_5_falls_back_per_workload() {
    let policies = vec![
        strict_mesh_policy(),
        legacy(
            "Policy",
            "bar",
            "default",
            json!({"peers": [{"mtls": {"mode": "PERMISSIVE"}}]}),
        ),
    ];
    let pas = vec![pa_mode("foo", "default", T2020, "DISABLE")];
    let a = Authn::new(
        AuthnApi::Transitional,
        "istio-system",
        "cluster.local",
        pas,
        policies,
    );
    let l = labels(&[("app", "httpbin")]);
    // A PeerAuthentication applies in foo: it decides, the MeshPolicy does not count.
    let m = a.server_mode(&query("foo", &l, Some(HTTPBIN)));
    assert_eq!(m.mode, MtlsMode::Disable);
    assert!(matches!(m.source, ModeSource::Namespace(_)));
    // None applies in bar: the v1alpha1 namespace Policy does.
    let m = a.server_mode(&query("bar", &l, Some(HTTPBIN)));
    assert_eq!(m.mode, MtlsMode::Permissive);
    assert!(matches!(m.source, ModeSource::LegacyNamespace(_)));
    assert!(m.chain[0].contains("falls back to the v1alpha1 policy"));
    // Nor in baz: the MeshPolicy.
    let m = a.server_mode(&query("baz", &l, Some(HTTPBIN)));
    assert_eq!(m.mode, MtlsMode::Strict);
    assert!(matches!(m.source, ModeSource::LegacyMesh(_)));
    // What auto mTLS sees follows the same order (BestEffortInferServiceMTLSMode).
    assert_eq!(a.namespace_mode("foo").mode, MtlsMode::Disable);
    assert_eq!(a.namespace_mode("baz").mode, MtlsMode::Strict);
}

#[test]
fn istio_1_5_policy_elsewhere_does_not_turn_mtls_off_here() {
    // A v1alpha1 Policy in another namespace only: the old global switch
    // (legacy objects present ⇒ legacy API) gave DISABLE here; 1.5 gives PERMISSIVE.
    let policies = vec![legacy(
        "Policy",
        "bar",
        "default",
        json!({"peers": [{"mtls": {}}]}),
    )];
    let a = Authn::new(
        AuthnApi::Transitional,
        "istio-system",
        "cluster.local",
        vec![],
        policies,
    );
    let l = BTreeMap::new();
    let m = a.server_mode(&query("foo", &l, Some(HTTPBIN)));
    assert_eq!(m.mode, MtlsMode::Permissive);
    assert_eq!(m.source, ModeSource::Default);
    assert_eq!(
        a.server_mode(&query("bar", &l, Some(HTTPBIN))).mode,
        MtlsMode::Strict
    );
}

#[test]
fn workload_policies_are_invisible_to_auto_mtls() {
    let pas = vec![pa(
        "foo",
        "wl",
        T2020,
        json!({"selector": {"matchLabels": {"app": "httpbin"}}, "mtls": {"mode": "DISABLE"}}),
    )];
    let policies = vec![strict_mesh_policy()];
    let a = Authn::new(
        AuthnApi::Transitional,
        "istio-system",
        "cluster.local",
        pas.clone(),
        policies,
    );
    let l = labels(&[("app", "httpbin")]);
    // The server applies its workload PeerAuthentication...
    assert_eq!(
        a.server_mode(&query("foo", &l, Some(HTTPBIN))).mode,
        MtlsMode::Disable
    );
    // ...while the client sees no mesh/namespace PeerAuthentication and, in 1.5,
    // falls back to the MeshPolicy.
    assert_eq!(a.service_mode("foo", HTTPBIN).mode, MtlsMode::Strict);
    let modern = Authn::new(
        AuthnApi::PeerAuthentication,
        "istio-system",
        "cluster.local",
        pas,
        vec![],
    );
    let seen = modern.namespace_mode("foo");
    assert_eq!(seen.mode, MtlsMode::Permissive);
    assert!(seen.chain.iter().any(|c| c.contains("not visible")));
}

#[test]
fn legacy_service_policy_uses_the_cluster_domain() {
    let policies = vec![legacy(
        "Policy",
        "foo",
        "p",
        json!({"targets": [{"name": "httpbin.foo.svc.corp.example"}], "peers": [{"mtls": {}}]}),
    )];
    let corp = Authn::new(
        AuthnApi::Legacy,
        "istio-system",
        "corp.example",
        vec![],
        policies.clone(),
    );
    let l = BTreeMap::new();
    let m = corp.server_mode(&query("foo", &l, Some(HTTPBIN)));
    assert_eq!(m.mode, MtlsMode::Strict);
    assert!(matches!(m.source, ModeSource::LegacyService(_)));
    // 1.4 auto mTLS used the service port's policy too; the namespace view does not.
    assert_eq!(corp.service_mode("foo", HTTPBIN).mode, MtlsMode::Strict);
    assert_eq!(corp.namespace_mode("foo").mode, MtlsMode::Disable);
    // Near miss: the same policy read with the default domain targets another host.
    let local = Authn::new(
        AuthnApi::Legacy,
        "istio-system",
        "cluster.local",
        vec![],
        policies,
    );
    assert_eq!(
        local.server_mode(&query("foo", &l, Some(HTTPBIN))).mode,
        MtlsMode::Disable
    );
}

#[test]
fn trait_answers_none_when_no_policy_of_the_api_applies() {
    let pap = PeerAuthPolicies::new(
        vec![pa(
            "foo",
            "wl",
            T2020,
            json!({"selector": {"matchLabels": {"app": "a"}}, "mtls": {"mode": "STRICT"}}),
        )],
        "",
    );
    let a = labels(&[("app", "a")]);
    let b = labels(&[("app", "b")]);
    assert!(pap.workload_mode(&query("foo", &a, None)).is_some());
    assert!(pap.workload_mode(&query("foo", &b, None)).is_none());
    assert!(
        pap.visible_mode("foo", None).is_none(),
        "workload policies do not count"
    );
    let lp = LegacyPolicies::new(vec![], "cluster.local");
    assert!(lp.workload_mode(&query("foo", &a, Some(HTTPBIN))).is_none());
    assert!(lp.visible_mode("foo", None).is_none());
}
