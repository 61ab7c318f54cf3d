//! The fix engine without a lab: each generator with the near misses that
//! must not produce it, the blast radius (breaks, downgrades, repairs,
//! other changes), the ordering, and the cases where no fix is printed.
//! Meshes are built from small typed pieces (model::builder), Istio
//! objects as users write them.

use serde_json::json;

use super::blast::{self, Caller};
use super::*;
use crate::analyze::catalog::Cause;
use crate::analyze::rules;
use crate::istio::destination_rule::TlsMode;
use crate::istio::sidecar::SidecarKind;
use crate::model::builder::*;
use crate::model::{Gap, Namespace, Pod, PoolField};

fn sidecar(ns: &str, name: &str, app: &str, ip: &str) -> Pod {
    pod(ns, name, app, ip, Some(SidecarKind::Classic))
}

fn plain(ns: &str, name: &str, app: &str, ip: &str) -> Pod {
    pod(ns, name, app, ip, None)
}

/// KIA0208's shape: STRICT, a mesh-wide DISABLE rule, cart (sidecar) and
/// ledger (no sidecar) in shop, web calling both.
fn wide_disable() -> MeshBuilder {
    MeshBuilder::new()
        .target(service("shop", "cart", "cart", &[(8000, "http", 8080)]))
        .service(service("shop", "ledger", "ledger", &[(8000, "http", 8080)]))
        .pod(sidecar("shop", "cart-1", "cart", "10.0.0.2"))
        .pod(plain("shop", "ledger-1", "ledger", "10.0.0.3"))
        .pod(sidecar("shop", "web-1", "web", "10.0.0.1"))
        .object(mesh_strict())
        .object(dr(
            "istio-system",
            "mesh-plaintext",
            "*.local",
            tls("DISABLE"),
        ))
}

/// istio/istio#36672's shape: orders/default `*` ISTIO_MUTUAL, PERMISSIVE.
fn star_rule() -> MeshBuilder {
    let client = sidecar("orders", "client-1", "client", "10.0.0.1");
    MeshBuilder::new()
        .proxy(proxy(&client, crate::snapshot::ProxyRole::Client))
        .target(service("archive", "api", "api", &[(8000, "http", 8080)]))
        .service(service("orders", "api", "api", &[(8000, "http", 8080)]))
        .pod(plain("archive", "api-1", "api", "10.0.1.2"))
        .pod(sidecar("orders", "api-1", "api", "10.0.0.2"))
        .pod(sidecar("orders", "client-1", "client", "10.0.0.1"))
        .object(dr("orders", "default", "*", tls("ISTIO_MUTUAL")))
}

fn legacy_jwt_policy(peers: Option<serde_json::Value>) -> serde_json::Value {
    let mut spec = json!({"targets": [{"name": "hello"}],
        "origins": [{"jwt": {"issuer": "https://issuer.example", "jwksUri": "https://issuer.example/jwks"}}],
        "principalBinding": "USE_ORIGIN"});
    if let Some(p) = peers {
        spec["peers"] = p;
    }
    json!({"apiVersion": "authentication.istio.io/v1alpha1", "kind": "Policy",
        "metadata": {"name": "hello-jwt", "namespace": "greet"}, "spec": spec})
}

/// istio/istio#7464's shape on Istio 1.0.
fn jwt_only(extra_plain_client: bool) -> MeshBuilder {
    jwt_policy(extra_plain_client, None)
}

fn jwt_policy(extra_plain_client: bool, peers: Option<serde_json::Value>) -> MeshBuilder {
    let mut b = MeshBuilder::new()
        .istio("1.0.0")
        .target(service("greet", "hello", "hello", &[(8000, "http", 8080)]))
        .pod(sidecar("greet", "hello-1", "hello", "10.0.0.2"))
        .pod(sidecar("greet", "caller-1", "caller", "10.0.0.1"))
        .object(
            json!({"apiVersion": "authentication.istio.io/v1alpha1", "kind": "MeshPolicy",
            "metadata": {"name": "default"}, "spec": {"peers": [{"mtls": {}}]}}),
        )
        .object(dr(
            "istio-system",
            "default",
            "*.local",
            tls("ISTIO_MUTUAL"),
        ))
        .object(legacy_jwt_policy(peers));
    if extra_plain_client {
        b = b.pod(plain("greet", "cron-1", "cron", "10.0.0.9"));
    }
    b
}

fn fixes_of(findings: &[crate::analyze::Finding]) -> &Fixes {
    findings
        .first()
        .and_then(|f| f.fixes.as_ref())
        .unwrap_or_else(|| panic!("a finding with fixes: {findings:#?}"))
}

fn chosen(f: &Fixes) -> &Fix {
    f.chosen
        .as_ref()
        .unwrap_or_else(|| panic!("a chosen fix: {f:#?}"))
}

#[test]
fn a_wide_disable_rule_gets_a_host_rule_and_its_edit_is_rejected() {
    let m = wide_disable().build();
    let f = fixes_of(&rules::mtls_plaintext_to_strict::check(&m)).clone();
    let c = chosen(&f);
    assert_eq!(c.kind, FixKind::NewDestinationRule);
    assert_eq!(c.manifests[0].action, Action::Create);
    assert_eq!(c.manifests[0].object, "DestinationRule shop/cart-mtls");
    let y: serde_yaml::Value = serde_yaml::from_str(&c.manifests[0].yaml).unwrap();
    assert_eq!(y["spec"]["host"], "cart.shop.svc.cluster.local");
    assert_eq!(y["spec"]["trafficPolicy"]["tls"]["mode"], "ISTIO_MUTUAL");
    let e = c.effect.as_ref().unwrap();
    assert!(e
        .repairs
        .iter()
        .any(|p| p.client == "shop/web-1" && p.host == "cart.shop.svc.cluster.local"));
    assert!(e.unchanged > 0 && e.checked == e.repairs.len() + e.changes.len() + e.unchanged);
    let wide = &f.rejected[0];
    assert_eq!(wide.kind, FixKind::EditWideDestinationRule);
    // web and cart (pods), and any sidecar client in shop (the caller the
    // rule stands for when no client sidecar was read).
    assert!(wide.reason.contains("would break 3"), "{}", wide.reason);
    assert!(wide
        .breaks
        .iter()
        .all(|b| b.host == "ledger.shop.svc.cluster.local" && b.after.outcome == "refused"));
}

#[test]
fn near_miss_without_the_sidecarless_service_the_host_rule_is_still_first() {
    // Nothing to break: the wide edit is safe but comes after the host rule,
    // and a safe candidate after the chosen one is not listed.
    let m = MeshBuilder::new()
        .target(service("shop", "cart", "cart", &[(8000, "http", 8080)]))
        .pod(sidecar("shop", "cart-1", "cart", "10.0.0.2"))
        .pod(sidecar("shop", "web-1", "web", "10.0.0.1"))
        .object(mesh_strict())
        .object(dr(
            "istio-system",
            "mesh-plaintext",
            "*.local",
            tls("DISABLE"),
        ))
        .build();
    let f = fixes_of(&rules::mtls_plaintext_to_strict::check(&m)).clone();
    assert_eq!(chosen(&f).kind, FixKind::NewDestinationRule);
    assert!(f.rejected.is_empty(), "{:#?}", f.rejected);
}

#[test]
fn a_namespace_star_rule_is_never_set_to_disable_for_one_host() {
    let m = star_rule().build();
    let f = fixes_of(&rules::mtls_to_plaintext_server::check(&m)).clone();
    let c = chosen(&f);
    assert_eq!(c.kind, FixKind::NewDestinationRule);
    // In the client's namespace: searched first, where the `*` rule is.
    assert_eq!(
        c.manifests[0].object,
        "DestinationRule orders/api-plaintext"
    );
    let wide = f
        .rejected
        .iter()
        .find(|r| r.kind == FixKind::EditWideDestinationRule)
        .unwrap();
    assert!(wide
        .reason
        .starts_with("weakens the namespace-wide rule orders/default"));
    assert!(wide.reason.contains("downgrade"), "{}", wide.reason);
    assert!(wide
        .breaks
        .iter()
        .any(|b| b.host == "api.orders.svc.cluster.local"
            && b.before.wire == "Istio mTLS"
            && b.after.wire == "plaintext"
            && b.after.outcome == "ok"));
}

#[test]
fn a_rule_in_the_service_namespace_would_not_apply_under_a_client_namespace_rule() {
    // The generator puts the new rule where the rule in force lives; the
    // engine proves a rule in the service's namespace would not repair:
    // the client's namespace is searched first (push_context.go).
    let mut m = star_rule().build();
    let base = m.clone();
    m = m.with_config(|c| {
        let wrong = crate::model::Manifest::new_destination_rule(
            "networking.istio.io/v1",
            "archive",
            "api-plaintext",
            "api.archive.svc.cluster.local",
            "DISABLE",
        );
        c.apply(&wrong, "cluster.local").unwrap();
    });
    let caller = Caller::of_pod(
        base.pod(&crate::model::PodKey::new("orders", "client-1"))
            .unwrap(),
    );
    let svc = base.target_services().next().unwrap();
    let s = blast::pair_state(&m, &caller, svc, &svc.ports[0]).unwrap();
    assert_eq!(
        (s.wire.as_str(), s.outcome.as_str()),
        ("Istio mTLS", "refused")
    );
}

#[test]
fn a_jwt_only_policy_gets_its_peers_back_not_a_disable() {
    let m = jwt_only(false).build();
    let f = fixes_of(&rules::mtls_to_plaintext_server::check(&m)).clone();
    let c = chosen(&f);
    assert_eq!(c.kind, FixKind::EditServerPolicy);
    assert_eq!(c.manifests[0].object, "Policy greet/hello-jwt");
    assert_eq!(c.manifests[0].action, Action::Edit);
    let y: serde_yaml::Value = serde_yaml::from_str(&c.manifests[0].yaml).unwrap();
    assert_eq!(y["apiVersion"], "authentication.istio.io/v1alpha1");
    assert!(y["spec"]["peers"][0]["mtls"].is_mapping(), "{y:?}");
    assert_eq!(y["spec"]["principalBinding"], "USE_ORIGIN");
    assert_eq!(
        y["spec"]["origins"][0]["jwt"]["issuer"],
        "https://issuer.example"
    );
}

#[test]
fn a_plaintext_caller_turns_the_strict_peer_into_a_permissive_one() {
    // A pod without sidecar calls hello in plaintext today: STRICT would
    // break it, PERMISSIVE keeps it and repairs the sidecars' calls.
    let m = jwt_only(true).build();
    let f = fixes_of(&rules::mtls_to_plaintext_server::check(&m)).clone();
    let strict = &f.rejected[0];
    assert_eq!(strict.kind, FixKind::EditServerPolicy);
    assert!(strict
        .breaks
        .iter()
        .any(|b| b.client == "greet/cron-1" && b.after.outcome == "refused"));
    let c = chosen(&f);
    assert_eq!(c.kind, FixKind::EditServerPolicy);
    assert!(
        c.manifests[0].yaml.contains("mode: PERMISSIVE"),
        "{}",
        c.manifests[0].yaml
    );
}

#[test]
fn near_misses_of_the_server_side_fix() {
    // An explicit DISABLE (PeerAuthentication) is meant: the client follows it.
    let m = MeshBuilder::new()
        .target(httpbin())
        .pod(httpbin_pod())
        .pod(sleep_pod())
        .object(mesh_strict())
        .object(pa("foo", "httpbin-plaintext", "DISABLE", Some("httpbin")))
        .build();
    let f = fixes_of(&rules::mtls_to_plaintext_server::check(&m)).clone();
    assert_eq!(chosen(&f).kind, FixKind::NewDestinationRule);
    assert!(f.kinds().all(|k| k != FixKind::EditServerPolicy));
    // A legacy Policy that does set a peer is not an omission.
    let m = jwt_policy(false, Some(json!([{"mtls": {"mode": "PERMISSIVE"}}]))).build();
    assert!(rules::mtls_to_plaintext_server::check(&m).is_empty());
    // Without a mesh that wants mTLS there is nothing to restore.
    let m = MeshBuilder::new()
        .istio("1.0.0")
        .target(service("greet", "hello", "hello", &[(8000, "http", 8080)]))
        .pod(sidecar("greet", "hello-1", "hello", "10.0.0.2"))
        .pod(sidecar("greet", "caller-1", "caller", "10.0.0.1"))
        .object(dr(
            "istio-system",
            "default",
            "*.local",
            tls("ISTIO_MUTUAL"),
        ))
        .object(legacy_jwt_policy(None))
        .build();
    let f = fixes_of(&rules::mtls_to_plaintext_server::check(&m)).clone();
    assert!(f.kinds().all(|k| k != FixKind::EditServerPolicy), "{f:#?}");
}

#[test]
fn the_rule_in_force_is_edited_where_it_decides() {
    // Two rules for one host: the older one's trafficPolicy won the merge.
    let m = MeshBuilder::new()
        .target(httpbin())
        .pod(httpbin_pod())
        .pod(sleep_pod())
        .auto_mtls(false)
        .object(mesh_strict())
        .object({
            let mut d = dr(
                "foo",
                "httpbin-pool",
                "httpbin",
                Some(json!({"connectionPool": {"http": {"http1MaxPendingRequests": 100}}})),
            );
            d["metadata"]["creationTimestamp"] = json!("2023-01-01T00:00:00Z");
            d
        })
        .object(dr("foo", "httpbin-tls", "httpbin", tls("ISTIO_MUTUAL")))
        .build();
    let f = fixes_of(&rules::mtls_plaintext_to_strict::check(&m)).clone();
    let c = chosen(&f);
    assert_eq!(c.kind, FixKind::EditDestinationRule);
    assert_eq!(c.manifests[0].object, "DestinationRule foo/httpbin-pool");
    assert!(c.manifests[0].yaml.contains("http1MaxPendingRequests: 100"));
}

#[test]
fn a_workload_scoped_rule_needs_istio_1_14_and_a_real_client() {
    let p = |version: &str| {
        let m = wide_disable().istio(version).build();
        let svc = m.target_services().next().unwrap().clone();
        let web = m
            .pod(&crate::model::PodKey::new("shop", "web-1"))
            .unwrap()
            .clone();
        let ledger_pod = m
            .pod(&crate::model::PodKey::new("shop", "cart-1"))
            .unwrap()
            .clone();
        (m, svc, web, ledger_pod)
    };
    let (m, svc, web, cart) = p("1.24.0");
    let problem = TlsProblem {
        svc: &svc,
        port: &svc.ports[0],
        caller: Caller::of_pod(&web),
        pod: &cart,
        want: TlsMode::IstioMutual,
    };
    let got = tls::generate(FixKind::ScopedDestinationRule, &m, &problem);
    assert_eq!(got.len(), 1);
    let y: serde_yaml::Value = serde_yaml::from_str(&got[0].changes[0].manifest.to_yaml()).unwrap();
    assert_eq!(y["metadata"]["namespace"], "shop");
    assert_eq!(y["spec"]["workloadSelector"]["matchLabels"]["app"], "web");
    let (m, svc, web, cart) = p("1.13.0");
    let problem = TlsProblem {
        svc: &svc,
        port: &svc.ports[0],
        caller: Caller::of_pod(&web),
        pod: &cart,
        want: TlsMode::IstioMutual,
    };
    assert!(tls::generate(FixKind::ScopedDestinationRule, &m, &problem).is_empty());
    let hypothetical = TlsProblem {
        caller: Caller::hypothetical("shop"),
        ..problem
    };
    assert!(tls::generate(
        FixKind::ScopedDestinationRule,
        &p("1.24.0").0,
        &hypothetical
    )
    .is_empty());
}

#[test]
fn rules_hidden_by_rbac_stop_the_fix() {
    let mut m = wide_disable().build();
    m.gaps.push(Gap::collected(
        &crate::snapshot::Gap {
            source: "list destinationrules.networking.istio.io/v1 in namespace shop".into(),
            reason: "HTTP 403 Forbidden: destinationrules is forbidden".into(),
        },
        false,
    ));
    let f = fixes_of(&rules::mtls_plaintext_to_strict::check(&m)).clone();
    assert!(f.chosen.is_none() && f.rejected.is_empty());
    let none = f.none.unwrap();
    assert!(
        none.starts_with("cannot be computed") && none.contains("namespace shop"),
        "{none}"
    );
    // Near miss: a refusal in a namespace the lookup never searches.
    let mut m = wide_disable().build();
    m.gaps.push(Gap::collected(
        &crate::snapshot::Gap {
            source: "list destinationrules.networking.istio.io/v1 in namespace elsewhere".into(),
            reason: "HTTP 403 Forbidden".into(),
        },
        false,
    ));
    assert!(fixes_of(&rules::mtls_plaintext_to_strict::check(&m))
        .chosen
        .is_some());
}

#[test]
fn a_stale_sidecar_gets_no_config_change() {
    // The API already says ISTIO_MUTUAL; the client's sidecar still runs plaintext.
    let m = MeshBuilder::new()
        .target(httpbin())
        .pod(httpbin_pod())
        .pod(sleep_pod())
        .auto_mtls(false)
        .object(mesh_strict())
        .object(dr("foo", "httpbin", "httpbin", tls("ISTIO_MUTUAL")))
        .proxy(
            proxy(&sleep_pod(), crate::snapshot::ProxyRole::Client).with_cluster(cluster(
                8000,
                "httpbin.foo.svc.cluster.local",
                crate::envoy::config_dump::ClientTlsConfig::Plaintext,
            )),
        )
        .build();
    let f = fixes_of(&rules::mtls_plaintext_to_strict::check(&m)).clone();
    assert!(f.chosen.is_none());
    assert!(f.none.unwrap().starts_with("no config change"));
}

#[test]
fn callers_fold_replicas_and_stand_in_for_unseen_namespaces() {
    let mut m = MeshBuilder::new()
        .target(httpbin())
        .pod(sleep_pod())
        .pod({
            let mut p = sidecar("foo", "sleep-2", "sleep", "10.0.0.5");
            p.labels.insert("pod-template-hash".into(), "other".into());
            p
        })
        .pod(plain("foo", "cron-1", "sleep", "10.0.0.6"))
        .build();
    m.namespaces = vec![
        Namespace {
            name: "foo".into(),
            labels: [("istio-injection".to_string(), "enabled".to_string())].into(),
        },
        Namespace {
            name: "bar".into(),
            labels: [("istio.io/rev".to_string(), "canary".to_string())].into(),
        },
        Namespace {
            name: "plain".into(),
            labels: Default::default(),
        },
    ];
    let cs = blast::callers(&m, &Caller::of_pod(&sleep_pod()));
    let labels: Vec<&str> = cs.iter().map(|c| c.label.as_str()).collect();
    assert!(
        labels.contains(&"foo/sleep-1 (and 1 other replica)"),
        "{labels:?}"
    );
    assert!(
        labels.contains(&"foo/cron-1"),
        "same labels, no sidecar: another caller"
    );
    assert!(labels.contains(&"any sidecar client in bar"));
    assert!(
        !labels
            .iter()
            .any(|l| l.contains("in plain") || l.contains("in foo")),
        "{labels:?}"
    );
}

#[test]
fn connection_pool_limits_follow_the_load_the_log_shows() {
    assert_eq!(
        traffic::epoch_ms("1970-01-02T00:00:01.5Z"),
        Some(86_401_500)
    );
    assert_eq!(
        traffic::epoch_ms("2026-12-01T17:56:21.123Z").map(|t| t % 1000),
        Some(123)
    );
    assert_eq!(traffic::epoch_ms("yesterday"), None);
    let at = |t: &str, ms: u64, flag: &str| {
        let mut e = entry(
            if flag == "UO" { 503 } else { 200 },
            flag,
            Some("outbound|8000||h"),
        );
        e.start_time = Some(format!("2026-12-01T10:00:{t}Z"));
        e.duration_ms = Some(ms);
        e
    };
    // Two admitted requests overlap; three refused ones arrive meanwhile.
    let lines = [
        at("00.000", 300, "-"),
        at("00.100", 300, "-"),
        at("00.150", 0, "UO"),
        at("00.160", 0, "UO"),
        at("00.170", 0, "UO"),
        at("05.000", 300, "-"),
    ];
    let refs: Vec<_> = lines.iter().collect();
    assert_eq!(traffic::peak_in_flight(&refs), Some(5));
    let raised = traffic::raised_limits(
        &[
            (PoolField::MaxConnections, 1),
            (PoolField::Http1MaxPendingRequests, 100),
            (PoolField::MaxRequestsPerConnection, 1),
        ],
        Some(5),
    );
    assert_eq!(
        raised,
        vec![(PoolField::MaxConnections, 10)],
        "only limits below the load, only concurrency"
    );
    assert_eq!(
        traffic::raised_limits(&[(PoolField::MaxConnections, 10)], None),
        vec![(PoolField::MaxConnections, 100)]
    );
}

#[test]
fn the_idle_timeout_stays_below_what_the_app_keeps() {
    let at = |t: &str, code: u16, flags: &str, conn: &str| {
        let mut e = entry(code, flags, Some("inbound|8080||"));
        e.start_time = Some(format!("2026-12-01T10:00:{t}Z"));
        e.duration_ms = Some(0);
        e.upstream_local_address = Some(conn.into());
        e
    };
    // Reset after 500 ms idle, nothing known to be safe: a quarter of it.
    let lines = [
        at("00.000", 200, "-", "127.0.0.6:1"),
        at("00.500", 503, "UC", "127.0.0.6:1"),
    ];
    let refs: Vec<_> = lines.iter().collect();
    assert_eq!(traffic::idle_timeout(&refs).unwrap().0, "0.125s");
    // Reused fine after 300 ms: that is the timeout.
    let lines = [
        at("00.000", 200, "-", "127.0.0.6:1"),
        at("00.300", 200, "-", "127.0.0.6:1"),
        at("01.300", 503, "UC", "127.0.0.6:1"),
    ];
    let refs: Vec<_> = lines.iter().collect();
    assert_eq!(traffic::idle_timeout(&refs).unwrap().0, "0.300s");
    // Near miss: no reset after idleness, nothing to say.
    let lines = [
        at("00.000", 200, "-", "127.0.0.6:1"),
        at("00.500", 200, "-", "127.0.0.6:1"),
    ];
    let refs: Vec<_> = lines.iter().collect();
    assert!(traffic::idle_timeout(&refs).is_none());
}

#[test]
fn pool_changes_go_to_the_host_never_to_a_wide_rule() {
    let m = MeshBuilder::new()
        .target(httpbin())
        .pod(httpbin_pod())
        .pod(sleep_pod())
        .object(dr(
            "istio-system",
            "mesh-pool",
            "*.local",
            Some(json!({"connectionPool": {"tcp": {"maxConnections": 1}}, "tls": {"mode": "ISTIO_MUTUAL"}})),
        ))
        .build();
    let svc = m.target_services().next().unwrap();
    let problem = Problem::Pool(PoolProblem {
        svc,
        port: &svc.ports[0],
        caller: Caller::of_pod(m.pod(&crate::model::PodKey::new("foo", "sleep-1")).unwrap()),
        change: problem::PoolChange::Limits(vec![(PoolField::MaxConnections, 20)]),
    });
    let f = fixes_for(&m, Cause::CircuitBreakerOverflow, &problem);
    let c = chosen(&f);
    assert_eq!(c.manifests[0].object, "DestinationRule foo/httpbin-pool");
    let y: serde_yaml::Value = serde_yaml::from_str(&c.manifests[0].yaml).unwrap();
    assert_eq!(
        y["spec"]["trafficPolicy"]["connectionPool"]["tcp"]["maxConnections"],
        20
    );
    assert_eq!(
        y["spec"]["trafficPolicy"]["tls"]["mode"], "ISTIO_MUTUAL",
        "the copy keeps the wide rule's TLS for this host"
    );
    let e = c.effect.as_ref().unwrap();
    assert!(e.repairs.is_empty() && !e.changes.is_empty(), "{e:#?}");
    assert!(e
        .changes
        .iter()
        .all(|p| p.host == "httpbin.foo.svc.cluster.local"
            && p.after.pool.as_deref() == Some("tcp.maxConnections 20")));
}

#[test]
fn a_subset_is_defined_only_where_pods_carry_its_name() {
    let vs = json!({"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
        "metadata": {"name": "httpbin", "namespace": "foo"},
        "spec": {"hosts": ["httpbin"], "http": [{"route": [{"destination": {"host": "httpbin", "subset": "v2"}}]}]}});
    let v2 = {
        let mut p = sidecar("foo", "httpbin-2", "httpbin", "10.0.0.7");
        p.labels.insert("version".into(), "v2".into());
        p
    };
    let with_rule = |b: MeshBuilder| {
        let mut d = dr("foo", "httpbin", "httpbin", None);
        d["spec"]["subsets"] = json!([{"name": "v1", "labels": {"version": "v1"}}]);
        b.object(d)
    };
    let base = || {
        MeshBuilder::new()
            .target(httpbin())
            .pod(httpbin_pod())
            .pod(sleep_pod())
            .object(vs.clone())
    };
    // Pods of v2 exist: the rule in force gets the subset (an edit).
    let m = with_rule(base().pod(v2.clone())).build();
    let c = chosen(fixes_of(&rules::subset_not_found::check(&m))).clone();
    assert_eq!(c.kind, FixKind::DefineSubset);
    assert_eq!(
        (c.manifests[0].action, c.manifests[0].object.as_str()),
        (Action::Edit, "DestinationRule foo/httpbin")
    );
    assert!(c.manifests[0].yaml.contains("version: v2"));
    // No rule at all: a new one is created, never an edit of one that does not exist.
    let m = base().pod(v2).build();
    let c = chosen(fixes_of(&rules::subset_not_found::check(&m))).clone();
    assert_eq!(c.manifests[0].action, Action::Create);
    // No pod carries v2: the route goes back to the Service's pods.
    let m = with_rule(base()).build();
    let c = chosen(fixes_of(&rules::subset_not_found::check(&m))).clone();
    assert_eq!(c.kind, FixKind::RouteToExistingPods);
    assert_eq!(c.manifests[0].object, "VirtualService foo/httpbin");
    assert!(
        !c.manifests[0].yaml.contains("subset"),
        "{}",
        c.manifests[0].yaml
    );
    let e = c.effect.as_ref().unwrap();
    assert!(
        e.repairs.iter().any(|p| p.client == "foo/sleep-1"),
        "the route to an undefined subset counts as refused: {e:#?}"
    );
}

#[test]
fn release_language() {
    let m = |v: &str| MeshBuilder::new().istio(v).build();
    assert_eq!(
        release::destination_rule_api(&m("1.0.0")),
        "networking.istio.io/v1alpha3"
    );
    assert_eq!(
        release::destination_rule_api(&m("1.9.0")),
        "networking.istio.io/v1beta1"
    );
    assert_eq!(
        release::destination_rule_api(&m("1.24.0")),
        "networking.istio.io/v1"
    );
    assert_eq!(release::peer_authentication_api(&m("1.4.0")), None);
    assert_eq!(
        release::peer_authentication_api(&m("1.5.0")).as_deref(),
        Some("security.istio.io/v1beta1")
    );
    assert_eq!(
        release::consecutive_errors_field(&m("1.0.0")),
        "consecutiveErrors"
    );
    assert_eq!(
        release::consecutive_errors_field(&m("1.4.9")),
        "consecutiveErrors"
    );
    assert_eq!(
        release::consecutive_errors_field(&m("1.5.0")),
        "consecutive5xxErrors"
    );
    // What the cluster serves wins over the release's defaults.
    let mut served = m("1.24.0");
    served.config.served.push(crate::snapshot::ServedResource {
        group: "networking.istio.io".into(),
        version: "v1beta1".into(),
        kind: "DestinationRule".into(),
        plural: "destinationrules".into(),
        namespaced: true,
    });
    assert_eq!(
        release::destination_rule_api(&served),
        "networking.istio.io/v1beta1"
    );
}

#[test]
fn the_apply_block_pastes_as_is() {
    let m = crate::model::Manifest::new_destination_rule(
        "networking.istio.io/v1",
        "foo",
        "httpbin-mtls",
        "httpbin.foo.svc.cluster.local",
        "ISTIO_MUTUAL",
    );
    let block = text::apply_block(&[&m, &m]);
    let lines: Vec<&str> = block.lines().collect();
    assert_eq!(lines[0], "kubectl apply -f - <<'EOF'");
    assert_eq!(*lines.last().unwrap(), "EOF");
    assert!(lines.contains(&"---"));
    assert!(!block.contains('…'));
    assert_eq!(text::file_name(&m), "destinationrule-foo-httpbin-mtls.yaml");
    // A YAML line equal to the delimiter changes the delimiter.
    let odd = crate::model::Manifest::new_destination_rule("v", "foo", "EOF", "EOF", "x")
        .with_host("EOF");
    let b = text::apply_block(&[&odd]);
    assert!(b.starts_with("kubectl apply -f - <<'EOF"), "{b}");
    let delim = b
        .lines()
        .next()
        .unwrap()
        .split('\'')
        .nth(1)
        .unwrap()
        .to_string();
    assert!(b.lines().filter(|l| *l == delim).count() == 1 && b.ends_with(&format!("{delim}\n")));
}

#[test]
fn applying_a_manifest_to_the_model_keeps_the_object_age() {
    let m = MeshBuilder::new()
        .object({
            let mut d = dr("foo", "a", "httpbin", tls("DISABLE"));
            d["metadata"]["creationTimestamp"] = json!("2020-01-01T00:00:00Z");
            d
        })
        .build();
    let edited = m
        .config
        .manifest(&m.config.destination_rules[0].object_ref())
        .unwrap()
        .with_tls_mode(crate::model::TlsAt::TopLevel, "ISTIO_MUTUAL");
    let fixed = m.with_config(|c| c.apply(&edited, "cluster.local").unwrap());
    let d = &fixed.config.destination_rules[0];
    assert_eq!(
        d.meta.creation_timestamp.as_deref(),
        Some("2020-01-01T00:00:00Z")
    );
    assert_eq!(fixed.config.destination_rules.len(), 1);
    let new = crate::model::Manifest::new_destination_rule(
        "networking.istio.io/v1",
        "foo",
        "b",
        "httpbin",
        "ISTIO_MUTUAL",
    );
    let fixed = m.with_config(|c| c.apply(&new, "cluster.local").unwrap());
    assert_eq!(fixed.config.destination_rules.len(), 2);
    let b = fixed
        .config
        .destination_rules
        .iter()
        .find(|d| d.meta.name == "b")
        .unwrap();
    assert!(
        b.meta.creation_timestamp.as_deref() > Some("2020-01-01T00:00:00Z"),
        "younger than any"
    );
}

#[test]
fn two_fixes_of_one_object_say_so() {
    // Two ports, each fixed at its own port-level entry of the same rule.
    let svc = service(
        "foo",
        "httpbin",
        "httpbin",
        &[(8000, "http", 8080), (9000, "http-admin", 9090)],
    );
    let m = MeshBuilder::new()
        .target(svc)
        .pod(httpbin_pod())
        .auto_mtls(false)
        .object(mesh_strict())
        .object(dr(
            "foo",
            "httpbin",
            "httpbin",
            Some(
                json!({"tls": {"mode": "ISTIO_MUTUAL"}, "portLevelSettings": [
                {"port": {"number": 8000}, "connectionPool": {"tcp": {"maxConnections": 5}}},
                {"port": {"number": 9000}, "connectionPool": {"tcp": {"maxConnections": 5}}}]}),
            ),
        ))
        .build();
    let report = crate::analyze::analyze_mesh(&m);
    let fixed: Vec<_> = report
        .findings
        .iter()
        .filter_map(|f| f.chosen_fix())
        .collect();
    assert_eq!(fixed.len(), 2, "{:#?}", report.findings);
    assert!(fixed[0].notes.is_empty());
    assert!(
        fixed[1]
            .notes
            .iter()
            .any(|n| n.contains("also changed by the fix of finding [1]")),
        "{:?}",
        fixed[1].notes
    );
    let (files, conflicts) = text::fix_files(&report.findings);
    assert_eq!(files.len(), 1);
    assert_eq!(conflicts.len(), 1);
}
