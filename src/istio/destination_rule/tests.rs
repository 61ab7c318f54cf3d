//! Unit tests of DestinationRule parsing, lookup, effective policy and
//! their sentences, written from istio/istio `push_context.go`
//! (`destinationRule`), `destination_rule.go` (`mergeDestinationRule`) and
//! `util.go` (`MergeSubsetTrafficPolicy`), with near misses.
//!
//! Place in the flow: test-only (istio/ helpers).

use std::collections::{BTreeMap, BTreeSet};

use super::*;
use crate::istio::host;
use crate::istio::object::ObjectError;
use crate::istio::testutil::{dr, dr_tls, labels, T2019, T2020, T2021};
use serde_json::json;

pub(super) const SVC: &str = "httpbin.foo.svc.cluster.local";

/// The selection for a client in `client_ns` (no labels) calling httpbin.foo.
pub(super) fn sel_for(rules: &[DestinationRule], client_ns: &str) -> Selection {
    select(
        rules,
        client_ns,
        &BTreeMap::new(),
        SVC,
        "foo",
        "istio-system",
    )
    .unwrap()
}

/// Whether rule `key` lost for a reason `pred` accepts.
fn lost(sel: &Selection, key: &str, pred: impl Fn(&ShadowReason) -> bool) -> bool {
    pred(&shadowed(sel, key).reason)
}

/// The shadowed entry of rule `key`.
fn shadowed<'a>(sel: &'a Selection, key: &str) -> &'a Shadowed {
    sel.shadowed.iter().find(|s| s.rule.key() == key).unwrap()
}

fn mesh_default() -> DestinationRule {
    dr_tls(
        "istio-system",
        "default",
        T2019,
        "*.local",
        Some("ISTIO_MUTUAL"),
    )
}

#[test]
fn parses_full_spec() {
    let r = dr(
        "foo",
        "httpbin",
        T2020,
        json!({
            "host": "httpbin",
            "exportTo": ["."],
            "trafficPolicy": {
                "tls": {"mode": "SIMPLE", "sni": "x", "subjectAltNames": ["a"], "credentialName": "c"},
                "connectionPool": {
                    "tcp": {"maxConnections": 1, "connectTimeout": "1s"},
                    "http": {"http1MaxPendingRequests": 1, "http2MaxRequests": 2, "maxRequestsPerConnection": 1, "maxRetries": 3, "idleTimeout": "5s"}
                },
                "outlierDetection": {"consecutiveErrors": 1, "consecutive5xxErrors": 2, "interval": "1s", "baseEjectionTime": "3m", "maxEjectionPercent": 100, "minHealthPercent": 0},
                "loadBalancer": {"simple": "LEAST_REQUEST"},
                "portLevelSettings": [{"port": {"number": 8000}, "connectionPool": {"tcp": {"maxConnections": 5}}}],
                "unknownField": {"tolerated": true}
            },
            "subsets": [{"name": "v1", "labels": {"version": "v1"}, "trafficPolicy": {"tls": {"mode": "DISABLE"}}}]
        }),
    );
    assert_eq!(r.host_fqdn, SVC);
    let tp = r.traffic_policy.as_ref().unwrap();
    assert_eq!(tp.tls.as_ref().unwrap().mode, TlsMode::Simple);
    let cp = tp.connection_pool.as_ref().unwrap();
    assert_eq!(cp.tcp.as_ref().unwrap().max_connections, Some(1));
    assert_eq!(
        cp.http.as_ref().unwrap().idle_timeout.as_deref(),
        Some("5s")
    );
    let od = tp.outlier_detection.as_ref().unwrap();
    assert_eq!(od.consecutive_5xx_errors, Some(2));
    assert_eq!(od.max_ejection_percent, Some(100));
    assert_eq!(tp.port_level_settings[0].port, Some(8000));
    assert_eq!(
        tp.load_balancer.as_ref().unwrap().simple.as_deref(),
        Some("LEAST_REQUEST")
    );
    assert_eq!(r.subsets[0].name, "v1");
    assert_eq!(
        r.subsets[0]
            .traffic_policy
            .as_ref()
            .unwrap()
            .tls
            .as_ref()
            .unwrap()
            .mode,
        TlsMode::Disable
    );
}

#[test]
fn tls_without_mode_is_disable() {
    let r = dr(
        "foo",
        "a",
        T2020,
        json!({"host": "a", "trafficPolicy": {"tls": {}}}),
    );
    assert_eq!(r.top_level_tls_mode(), Some(&TlsMode::Disable));
}

#[test]
fn bad_field_is_an_error_with_path() {
    let v = json!({
        "kind": "DestinationRule",
        "metadata": {"name": "x", "namespace": "foo"},
        "spec": {"host": "a", "trafficPolicy": {"portLevelSettings": [{"port": {"number": "eighty"}}]}}
    });
    let e = DestinationRule::from_value_with_domain(&v, "cluster.local").unwrap_err();
    let s = e.to_string();
    assert!(s.contains("DestinationRule foo/x"), "{s}");
    assert!(
        s.contains("spec.trafficPolicy.portLevelSettings[0].port.number"),
        "{s}"
    );
    let e = DestinationRule::from_value_with_domain(&json!({"kind": "DestinationRule", "metadata": {"name": "x", "namespace": "n"}, "spec": {}}), "cluster.local").unwrap_err();
    assert!(e.to_string().contains("spec.host"));
    let e = DestinationRule::from_value_with_domain(&json!({"kind": "Service", "metadata": {"name": "x", "namespace": "n"}, "spec": {"host": "a"}}), "cluster.local").unwrap_err();
    assert!(matches!(e, ObjectError::WrongKind { .. }));
}

#[test]
fn client_namespace_rule_replaces_mesh_default_entirely() {
    let rules = vec![
        mesh_default(),
        dr(
            "foo",
            "httpbin",
            T2020,
            json!({"host": "httpbin", "trafficPolicy": {"connectionPool": {"tcp": {"maxConnections": 10}}}}),
        ),
    ];
    let sel = sel_for(&rules, "foo");
    assert_eq!(sel.level, LookupLevel::ClientNamespace);
    assert_eq!(sel.primary().unwrap().key(), "foo/httpbin");
    let eff = effective_policy(&sel, 8000, None);
    assert!(
        eff.tls.is_none(),
        "no field falls back to the mesh-wide rule"
    );
    assert_eq!(eff.field_origins.connection_pool, PolicyOrigin::TopLevel);
    assert_eq!(sel.shadowed.len(), 1);
    assert_eq!(sel.shadowed[0].rule.key(), "istio-system/default");
    assert!(matches!(
        sel.shadowed[0].reason,
        ShadowReason::EarlierNamespaceWon { .. }
    ));
    let text = sel.explain().join("\n");
    assert!(text.contains("DestinationRule foo/httpbin applies to httpbin.foo.svc.cluster.local for clients in foo"), "{text}");
    assert!(
        text.contains(
            "it sets no tls, so it replaces istio-system/default, which set ISTIO_MUTUAL"
        ),
        "{text}"
    );
}

#[test]
fn service_namespace_then_root() {
    let rules = vec![
        mesh_default(),
        dr_tls("foo", "httpbin", T2020, "httpbin", Some("DISABLE")),
    ];
    // A client in bar finds foo/httpbin (exported by default) in the service's namespace.
    let sel = sel_for(&rules, "bar");
    assert_eq!(sel.level, LookupLevel::ServiceNamespace);
    assert_eq!(sel.primary().unwrap().key(), "foo/httpbin");
    // Another service falls to the root namespace.
    let sel = select(
        &rules,
        "bar",
        &BTreeMap::new(),
        "other.baz.svc.cluster.local",
        "baz",
        "istio-system",
    )
    .unwrap();
    assert_eq!(sel.level, LookupLevel::RootNamespace);
    assert_eq!(sel.primary().unwrap().key(), "istio-system/default");
}

#[test]
fn export_to_dot_hides_rule_from_other_namespaces() {
    let rules = vec![
        mesh_default(),
        dr(
            "foo",
            "httpbin",
            T2020,
            json!({"host": "httpbin", "exportTo": ["."], "trafficPolicy": {"tls": {"mode": "DISABLE"}}}),
        ),
    ];
    // Same namespace: visible.
    let sel = sel_for(&rules, "foo");
    assert_eq!(sel.primary().unwrap().key(), "foo/httpbin");
    // Other namespace: falls to the root rule, and the hidden rule is reported.
    let sel = sel_for(&rules, "bar");
    assert_eq!(sel.primary().unwrap().key(), "istio-system/default");
    let hidden = shadowed(&sel, "foo/httpbin");
    assert_eq!(hidden.reason, ShadowReason::NotExported);
}

#[test]
fn export_to_named_namespace() {
    let rules = vec![dr(
        "foo",
        "httpbin",
        T2020,
        json!({"host": "httpbin", "exportTo": ["bar"]}),
    )];
    assert!(select(&rules, "bar", &BTreeMap::new(), SVC, "foo", "istio-system").is_some());
    let lk = lookup(&rules, "baz", &BTreeMap::new(), SVC, "foo", "istio-system");
    assert!(lk.selection.is_none());
    assert_eq!(lk.unapplied[0].reason, ShadowReason::NotExported);
    // exportTo [bar] hides it from its own namespace foo too.
    let lk = lookup(&rules, "foo", &BTreeMap::new(), SVC, "foo", "istio-system");
    assert!(lk.selection.is_none());
    assert_eq!(lk.unapplied[0].reason, ShadowReason::HiddenFromOwnNamespace);
}

#[test]
fn most_specific_host_wins_in_namespace() {
    let rules = vec![
        dr_tls(
            "foo",
            "wild",
            T2019,
            "*.foo.svc.cluster.local",
            Some("ISTIO_MUTUAL"),
        ),
        dr_tls("foo", "exact", T2020, "httpbin", None),
        dr_tls("foo", "other", T2020, "other", None),
    ];
    let sel = sel_for(&rules, "foo");
    assert_eq!(sel.primary().unwrap().key(), "foo/exact");
    assert_eq!(sel.shadowed.len(), 1, "foo/other does not name this host");
    assert!(matches!(
        sel.shadowed[0].reason,
        ShadowReason::LessSpecificHost { .. }
    ));
}

/// The mesh default, and in foo an exact rule exported only to baz with a
/// wildcard one behind it.
fn unexported_exact_and_wild() -> Vec<DestinationRule> {
    vec![
        mesh_default(),
        dr(
            "foo",
            "exact",
            T2020,
            json!({"host": "httpbin", "exportTo": ["baz"]}),
        ),
        dr_tls("foo", "wild", T2020, "*.foo.svc.cluster.local", None),
    ]
}

#[test]
fn unexported_most_specific_rule_skips_the_namespace() {
    let rules = unexported_exact_and_wild();
    let sel = sel_for(&rules, "bar");
    assert_eq!(sel.level, LookupLevel::RootNamespace);
    assert!(lost(&sel, "foo/wild", |r| matches!(
        r,
        ShadowReason::NamespaceSkippedForUnexportedRule { .. }
    )));
}

#[test]
fn merge_same_host_same_namespace() {
    let rules = vec![
        dr(
            "foo",
            "b-second",
            T2021,
            json!({"host": "httpbin", "trafficPolicy": {"tls": {"mode": "DISABLE"}}, "subsets": [{"name": "v1", "labels": {"v": "dup"}}, {"name": "v2", "labels": {"v": "2"}}]}),
        ),
        dr(
            "foo",
            "a-first",
            T2020,
            json!({"host": "httpbin.foo.svc.cluster.local", "trafficPolicy": {"tls": {"mode": "ISTIO_MUTUAL"}}, "subsets": [{"name": "v1", "labels": {"v": "1"}}]}),
        ),
    ];
    let sel = sel_for(&rules, "foo");
    assert_eq!(sel.rules.len(), 2);
    assert_eq!(sel.policy_from.as_deref(), Some("foo/a-first"));
    assert_eq!(
        sel.traffic_policy
            .as_ref()
            .unwrap()
            .tls
            .as_ref()
            .unwrap()
            .mode,
        TlsMode::IstioMutual
    );
    let names: Vec<_> = sel.subsets.iter().map(|s| s.subset.name.as_str()).collect();
    assert_eq!(names, ["v1", "v2"]);
    assert_eq!(
        sel.subset("v1")
            .unwrap()
            .subset
            .labels
            .get("v")
            .map(String::as_str),
        Some("1")
    );
    assert!(sel.notes.iter().any(|n| n.contains("dropped")));
    assert!(lost(&sel, "foo/b-second", |r| matches!(
        r,
        ShadowReason::TrafficPolicyDiscardedInMerge { .. }
    )));
}

#[test]
fn whose_traffic_policy_wins_a_merge() {
    let subsets_only = dr(
        "foo",
        "a",
        T2020,
        json!({"host": "httpbin", "subsets": [{"name": "v1"}]}),
    );
    for (rules, want) in [
        // Same creationTimestamp: the name breaks the tie.
        (
            vec![
                dr_tls("foo", "zz", T2020, "httpbin", Some("DISABLE")),
                dr_tls("foo", "aa", T2020, "httpbin", Some("ISTIO_MUTUAL")),
            ],
            "foo/aa",
        ),
        // A later rule's policy is used when the older one has none.
        (
            vec![
                subsets_only,
                dr_tls("foo", "b", T2021, "httpbin", Some("ISTIO_MUTUAL")),
            ],
            "foo/b",
        ),
    ] {
        assert_eq!(sel_for(&rules, "foo").policy_from.as_deref(), Some(want));
    }
}

#[test]
fn workload_selector_rules() {
    let rules = vec![
        mesh_default(),
        dr_tls("foo", "plain", T2020, "httpbin", Some("ISTIO_MUTUAL")),
        dr(
            "foo",
            "for-sleep",
            T2021,
            json!({"host": "httpbin", "workloadSelector": {"matchLabels": {"app": "sleep"}}, "trafficPolicy": {"tls": {"mode": "DISABLE"}}}),
        ),
        dr(
            "bar",
            "bar-sel",
            T2021,
            json!({"host": "httpbin.foo.svc.cluster.local", "workloadSelector": {"matchLabels": {"app": "sleep"}}}),
        ),
    ];
    let sleep = labels(&[("app", "sleep")]);
    let sel = select(&rules, "foo", &sleep, SVC, "foo", "istio-system").unwrap();
    assert_eq!(sel.primary().unwrap().key(), "foo/for-sleep");
    assert!(sel
        .shadowed
        .iter()
        .any(|s| s.rule.key() == "foo/plain"
            && matches!(s.reason, ShadowReason::SelectorRuleWon { .. })));
    let other = labels(&[("app", "curl")]);
    let sel = select(&rules, "foo", &other, SVC, "foo", "istio-system").unwrap();
    assert_eq!(sel.primary().unwrap().key(), "foo/plain");
    assert!(sel.shadowed.iter().any(|s| s.rule.key() == "foo/for-sleep"
        && s.reason == ShadowReason::SelectorDoesNotSelectClient));
    // In its own namespace a selector rule applies to the clients it selects...
    let sel = select(&rules, "bar", &sleep, SVC, "foo", "istio-system").unwrap();
    assert_eq!(sel.primary().unwrap().key(), "bar/bar-sel");
    // ...and never in another namespace.
    let sel = select(&rules, "baz", &sleep, SVC, "foo", "istio-system").unwrap();
    assert_eq!(sel.primary().unwrap().key(), "foo/plain");
    assert!(sel.shadowed.iter().any(|s| s.rule.key() == "bar/bar-sel"
        && s.reason == ShadowReason::SelectorOutsideClientNamespace));
}

#[test]
fn empty_workload_selector_selects_all_clients_of_its_namespace() {
    let rules = vec![
        mesh_default(),
        dr(
            "foo",
            "all",
            T2021,
            json!({"host": "httpbin", "workloadSelector": {}, "trafficPolicy": {"tls": {"mode": "DISABLE"}}}),
        ),
    ];
    let sel = select(
        &rules,
        "foo",
        &labels(&[("app", "x")]),
        SVC,
        "foo",
        "istio-system",
    )
    .unwrap();
    assert_eq!(sel.primary().unwrap().key(), "foo/all");
    // ... and, being private, it is invisible to other namespaces.
    let sel = sel_for(&rules, "bar");
    assert_eq!(sel.primary().unwrap().key(), "istio-system/default");
}

#[test]
fn selector_only_rule_not_selecting_client_stops_search() {
    let rules = vec![
        mesh_default(),
        dr(
            "foo",
            "for-sleep",
            T2021,
            json!({"host": "httpbin", "workloadSelector": {"matchLabels": {"app": "sleep"}}}),
        ),
    ];
    let lk = lookup(
        &rules,
        "foo",
        &labels(&[("app", "curl")]),
        SVC,
        "foo",
        "istio-system",
    );
    assert!(lk.selection.is_none());
    assert!(lk.why_none.unwrap().contains("stops searching"));
}

#[test]
fn client_in_root_namespace_sees_only_private_root_rules_first() {
    let rules = vec![
        mesh_default(),
        dr_tls("foo", "httpbin", T2020, "httpbin", Some("DISABLE")),
    ];
    // Gateway in istio-system calling httpbin: the service namespace rule wins over the
    // exported mesh-wide rule.
    let sel = select(
        &rules,
        "istio-system",
        &BTreeMap::new(),
        SVC,
        "foo",
        "istio-system",
    )
    .unwrap();
    assert_eq!(sel.primary().unwrap().key(), "foo/httpbin");
}

#[test]
fn rules_in_unrelated_namespaces_are_reported() {
    let rules = vec![dr("elsewhere", "x", T2020, json!({"host": SVC}))];
    let lk = lookup(&rules, "bar", &BTreeMap::new(), SVC, "foo", "istio-system");
    assert!(lk.selection.is_none());
    assert_eq!(lk.unapplied[0].reason, ShadowReason::NamespaceNotSearched);
    assert!(
        lookup(&[], "bar", &BTreeMap::new(), SVC, "foo", "istio-system")
            .unapplied
            .is_empty()
    );
}

fn arb_rule() -> impl proptest::strategy::Strategy<Value = DestinationRule> {
    use proptest::prelude::*;
    (
        prop_oneof![
            Just("foo"),
            Just("bar"),
            Just("istio-system"),
            Just("other")
        ],
        "[a-d]{1,2}",
        prop_oneof![
            Just("httpbin"),
            Just("*.local"),
            Just("*"),
            Just("*.foo.svc.cluster.local"),
            Just("httpbin.foo.svc.cluster.local"),
            Just("x"),
        ],
        prop_oneof![
            Just(vec![]),
            Just(vec!["."]),
            Just(vec!["*"]),
            Just(vec!["bar"])
        ],
        proptest::option::of(Just("sleep")),
        0u8..3,
        proptest::option::of(prop_oneof![Just("ISTIO_MUTUAL"), Just("DISABLE")]),
    )
        .prop_map(|(ns, name, host, export, sel, day, tls)| {
            let mut spec = json!({"host": host, "exportTo": export});
            if let Some(app) = sel {
                spec["workloadSelector"] = json!({"matchLabels": {"app": app}});
            }
            if let Some(m) = tls {
                spec["trafficPolicy"] = json!({"tls": {"mode": m}});
            }
            dr(ns, &name, &format!("2020-01-0{}T00:00:00Z", day + 1), spec)
        })
}

proptest::proptest! {
    #[test]
    fn lookup_is_consistent(
        mut rules in proptest::collection::vec(arb_rule(), 0..8),
        client in proptest::prop_oneof![proptest::strategy::Just("foo"), proptest::strategy::Just("bar"), proptest::strategy::Just("istio-system")],
        sleep in proptest::bool::ANY,
    ) {
        // Keys must be unique, as in a real cluster.
        let mut seen = BTreeSet::new();
        rules.retain(|r| seen.insert(r.key()));
        let lbl = if sleep { labels(&[("app", "sleep")]) } else { BTreeMap::new() };
        let lk = lookup(&rules, client, &lbl, SVC, "foo", "istio-system");
        let matching = rules.iter().filter(|r| host::matches(&r.host_fqdn, SVC)).count();
        match &lk.selection {
            Some(sel) => {
                proptest::prop_assert!(!sel.rules.is_empty());
                for r in &sel.rules {
                    proptest::prop_assert!(host::matches(&r.host_fqdn, SVC));
                    proptest::prop_assert_eq!(&r.host_fqdn, &sel.matched_host);
                    proptest::prop_assert_eq!(&r.meta.namespace, &sel.namespace);
                }
                // Every matching rule is either applied or explained.
                let applied: BTreeSet<_> = sel.rules.iter().map(|r| r.key()).collect();
                let explained: BTreeSet<_> = sel.shadowed.iter().map(|s| s.rule.key()).filter(|k| !applied.contains(k)).collect();
                proptest::prop_assert_eq!(applied.len() + explained.len(), matching);
                let eff = effective_policy(sel, 8000, Some("v1"));
                proptest::prop_assert_eq!(eff.subset_defined, Some(false));
            }
            None => {
                proptest::prop_assert_eq!(lk.unapplied.len(), matching);
            }
        }
        // A rule in a namespace Istio never searches cannot change the outcome.
        let mut more = rules.clone();
        more.push(dr_tls("unrelated", "zz", T2019, "*", None));
        let lk2 = lookup(&more, client, &lbl, SVC, "foo", "istio-system");
        proptest::prop_assert_eq!(
            lk.selection.as_ref().map(|s| s.rules.iter().map(|r| r.key()).collect::<Vec<_>>()),
            lk2.selection.as_ref().map(|s| s.rules.iter().map(|r| r.key()).collect::<Vec<_>>())
        );
    }
}

#[test]
fn decide_is_typed_and_lookup_adds_the_words() {
    let mut rules = unexported_exact_and_wild();
    rules.extend([dr(
        "foo",
        "private",
        "2020-01-02T00:00:00Z",
        json!({"host": "*.svc.cluster.local", "exportTo": ["."]}),
    )]);
    let none = BTreeMap::new();
    let q = LookupQuery {
        client_ns: "bar",
        client_labels: &none,
        service_fqdn: SVC,
        service_ns: "foo",
        root_ns: "",
    };
    let typed = decide(&rules, &q);
    let sel = typed.selection.as_ref().unwrap();
    assert_eq!(sel.level, LookupLevel::RootNamespace);
    assert!(sel.shadowed.iter().all(|s| s.explanation.is_empty()));
    let reasons: Vec<(String, ShadowReason)> = sel
        .shadowed
        .iter()
        .map(|s| (s.rule.key(), s.reason.clone()))
        .collect();
    assert_eq!(
        reasons,
        vec![
            ("foo/private".to_string(), ShadowReason::NotExported),
            ("foo/exact".to_string(), ShadowReason::NotExported),
            (
                "foo/wild".to_string(),
                ShadowReason::NamespaceSkippedForUnexportedRule {
                    unexported: "foo/exact".into(),
                    winner_host: SVC.into()
                }
            ),
        ]
    );
    let lk = lookup(&rules, "bar", &none, SVC, "foo", "");
    let words: Vec<&str> = lk
        .selection
        .as_ref()
        .unwrap()
        .shadowed
        .iter()
        .map(|s| s.explanation.as_str())
        .collect();
    assert_eq!(words[1], "DestinationRule foo/exact would match httpbin.foo.svc.cluster.local but is exported only to [\"baz\"], not to the client's namespace bar");
    assert_eq!(words[2], "DestinationRule foo/wild is skipped: Istio picks the most specific host in namespace foo first (httpbin.foo.svc.cluster.local, from foo/exact), finds it is not exported to bar, and moves on without trying less specific rules");
    assert_eq!(words[0], "DestinationRule foo/private would match httpbin.foo.svc.cluster.local but its exportTo [\".\"] keeps it to namespace foo; clients in bar do not see it");
}

#[test]
fn rules_never_reached_are_typed_apart_from_unexported_ones() {
    // The client's namespace stops the search (selector rules only), so the
    // service's rule is not reached (it is exported to the client).
    let rules = vec![
        dr(
            "bar",
            "for-sleep",
            T2021,
            json!({"host": SVC, "workloadSelector": {"matchLabels": {"app": "sleep"}}}),
        ),
        dr_tls("foo", "httpbin", T2020, "httpbin", None),
    ];
    let lk = lookup(
        &rules,
        "bar",
        &labels(&[("app", "curl")]),
        SVC,
        "foo",
        "istio-system",
    );
    assert_eq!(
        lk.why_none_reason,
        Some(WhyNone::SelectorsDoNotSelectClient {
            best_host: SVC.into()
        })
    );
    let svc_rule = lk
        .unapplied
        .iter()
        .find(|s| s.rule.key() == "foo/httpbin")
        .unwrap();
    assert_eq!(svc_rule.reason, ShadowReason::NotReached);
    assert_eq!(
        svc_rule.explanation,
        "DestinationRule foo/httpbin does not apply to clients in bar"
    );
    // Near miss: without the selector rule the service's rule applies.
    assert!(select(
        &rules[1..],
        "bar",
        &BTreeMap::new(),
        SVC,
        "foo",
        "istio-system"
    )
    .is_some());
}

#[test]
fn short_hosts_resolve_in_the_cluster_domain() {
    let v = json!({"apiVersion": "networking.istio.io/v1", "kind": "DestinationRule",
        "metadata": {"name": "httpbin", "namespace": "foo"},
        "spec": {"host": "httpbin", "trafficPolicy": {"tls": {"mode": "DISABLE"}}}});
    let corp = DestinationRule::from_value_with_domain(&v, "corp.example").unwrap();
    assert_eq!(corp.host_fqdn, "httpbin.foo.svc.corp.example");
    let svc = "httpbin.foo.svc.corp.example";
    let sel = select(&[corp], "foo", &BTreeMap::new(), svc, "foo", "istio-system").unwrap();
    assert_eq!(sel.primary().unwrap().key(), "foo/httpbin");
    // Near miss: read with the default domain it names another host.
    let local = DestinationRule::from_value_with_domain(&v, "cluster.local").unwrap();
    assert!(select(
        &[local],
        "foo",
        &BTreeMap::new(),
        svc,
        "foo",
        "istio-system"
    )
    .is_none());
}
