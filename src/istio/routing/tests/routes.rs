//! Which VirtualService a sidecar applies to a host, and which of its routes
//! a request can reach (route.go `BuildHTTPRoutesForVirtualService`,
//! httproute.go `BuildSidecarOutboundVirtualHosts`, model/virtualservice.go
//! `SelectVirtualServices`).

use super::*;
use crate::istio::routing::query::{HostVisibility, Outbound};
use crate::istio::routing::select::{MatchFilter, Reachability, RouteKind, VsShadowReason};
use crate::istio::routing::virtual_service::VsTier;
use crate::istio::routing::DestStatus;

const REVIEWS: &str = "reviews.foo.svc.cluster.local";

/// reviews in foo (port 9080) with one ready v1 pod, plus `extra` YAML.
fn reviews_world(extra: &str) -> World {
    world(&format!(
        "{}\n---\n{extra}",
        http_svc("foo", "reviews", 9080)
    ))
    .pods(&[("foo", "reviews-v1", "app=reviews,version=v1", true)])
}

/// A VirtualService for `hosts` in `ns` created at `ts`, with `spec_rest` appended.
fn vs(ns: &str, name: &str, ts: &str, spec_rest: &str) -> String {
    format!(
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {{name: {name}, namespace: {ns}, creationTimestamp: \"{ts}\"}}\nspec:\n{spec_rest}\n"
    )
}

const ROUTE_V1: &str =
    "  http:\n  - route:\n    - destination: {host: reviews.foo.svc.cluster.local}\n";

#[test]
fn two_virtual_services_for_one_host_the_older_wins() {
    let cases = [
        // (older, newer, client ns, expected winner)
        ("foo", "foo", "foo", "foo/old"),
        ("foo", "bar", "foo", "foo/old"),
        ("bar", "foo", "baz", "bar/old"),
    ];
    for (old_ns, new_ns, client, want) in cases {
        let w = reviews_world(&format!(
            "{}---\n{}",
            vs(
                old_ns,
                "old",
                "2020-01-01T00:00:00Z",
                &format!("  hosts: [{REVIEWS}]\n{ROUTE_V1}")
            ),
            vs(
                new_ns,
                "new",
                "2021-01-01T00:00:00Z",
                &format!("  hosts: [{REVIEWS}]\n{ROUTE_V1}")
            )
        ));
        let v = view(&w.routing(), client, REVIEWS, 9080);
        assert_eq!(winner(&v), Some(want), "{old_ns} {new_ns} {client}");
        let (_, why) = v.virtual_service.as_ref().unwrap();
        assert!(why.exact);
        let newer = format!("{new_ns}/new");
        assert!(
            v.shadowed.iter().any(|(k, r)| *k == newer
                && matches!(r, VsShadowReason::EarlierVsWon { winner, .. } if winner == want)),
            "{:?}",
            v.shadowed
        );
    }
}

#[test]
fn a_private_virtual_service_of_the_client_namespace_comes_before_older_public_ones() {
    // SelectVirtualServices lists private ones first: the newer private VS wins in foo,
    // while clients elsewhere do not see it and get the older public one.
    let w = reviews_world(&format!(
        "{}---\n{}",
        vs(
            "bar",
            "public",
            "2019-01-01T00:00:00Z",
            &format!("  hosts: [{REVIEWS}]\n{ROUTE_V1}")
        ),
        vs(
            "foo",
            "private",
            "2022-01-01T00:00:00Z",
            &format!("  hosts: [{REVIEWS}]\n  exportTo: [\".\"]\n{ROUTE_V1}")
        )
    ));
    let r = w.routing();
    let in_foo = view(&r, "foo", REVIEWS, 9080);
    assert_eq!(winner(&in_foo), Some("foo/private"));
    assert_eq!(
        in_foo.virtual_service.as_ref().unwrap().1.tier,
        VsTier::Private
    );
    assert!(in_foo.shadowed.iter().any(|(k, r)| k == "bar/public"
        && matches!(
            r,
            VsShadowReason::EarlierVsWon {
                own_tier: VsTier::Public,
                ..
            }
        )));
    let in_baz = view(&r, "baz", REVIEWS, 9080);
    assert_eq!(winner(&in_baz), Some("bar/public"));
    assert!(in_baz
        .shadowed
        .iter()
        .any(|(k, r)| k == "foo/private" && matches!(r, VsShadowReason::NotExported { .. })));
}

#[test]
fn a_virtual_service_without_hosts_never_applies() {
    let w = reviews_world(&vs(
        "foo",
        "nohosts",
        "2020-01-01T00:00:00Z",
        "  http:\n  - route:\n    - destination: {host: reviews, subset: v9}\n",
    ));
    let r = w.routing();
    assert_eq!(r.delegates.len(), 1);
    let v = view(&r, "foo", REVIEWS, 9080);
    assert_eq!(winner(&v), None);
    assert!(v.shadowed.is_empty());
    let d = v.default_route.as_ref().unwrap();
    assert_eq!(d.cluster_name, format!("outbound|9080||{REVIEWS}"));
    assert_eq!(d.status, DestStatus::Ok { ready: 1 });
}

#[test]
fn gateways_decide_whether_sidecars_apply_it() {
    let cases = [
        ("[]", true),
        ("[mesh]", true),
        ("[my-gw]", false),
        ("[istio-system/ingress, mesh]", true),
        ("[istio-system/ingress]", false),
    ];
    for (gws, applies) in cases {
        let w = reviews_world(&vs(
            "foo",
            "r",
            "2020-01-01T00:00:00Z",
            &format!("  hosts: [reviews]\n  gateways: {gws}\n{ROUTE_V1}"),
        ));
        let v = view(&w.routing(), "foo", REVIEWS, 9080);
        assert_eq!(winner(&v).is_some(), applies, "gateways {gws}");
        if !applies {
            assert!(matches!(
                v.shadowed[0].1,
                VsShadowReason::GatewaysOnly { .. }
            ));
        }
    }
}

#[test]
fn short_hosts_resolve_in_the_virtual_service_namespace() {
    // `reviews` in bar is reviews.bar, not reviews.foo; the FQDN form is the near miss.
    let cases = [("reviews", false), (REVIEWS, true), ("reviews.foo", false)];
    for (h, applies) in cases {
        let w = reviews_world(&vs(
            "bar",
            "r",
            "2020-01-01T00:00:00Z",
            &format!("  hosts: [{h}]\n{ROUTE_V1}"),
        ));
        let v = view(&w.routing(), "foo", REVIEWS, 9080);
        assert_eq!(winner(&v).is_some(), applies, "host {h}");
    }
}

#[test]
fn exact_hosts_beat_wildcards_and_longer_wildcards_beat_shorter() {
    let w = reviews_world(&format!(
        "{}---\n{}---\n{}",
        vs(
            "foo",
            "star",
            "2019-01-01T00:00:00Z",
            &format!("  hosts: [\"*.svc.cluster.local\"]\n{ROUTE_V1}")
        ),
        vs(
            "foo",
            "ns-star",
            "2020-01-01T00:00:00Z",
            &format!("  hosts: [\"*.foo.svc.cluster.local\"]\n{ROUTE_V1}")
        ),
        vs(
            "foo",
            "exact",
            "2021-01-01T00:00:00Z",
            &format!("  hosts: [reviews]\n{ROUTE_V1}")
        ),
    ));
    let r = w.routing();
    let v = view(&r, "foo", REVIEWS, 9080);
    assert_eq!(winner(&v), Some("foo/exact"));
    // Another service in foo has no exact VS: the longer wildcard wins.
    let w2 = world(&format!(
        "{}---\n{}---\n{}",
        http_svc("foo", "ratings", 9080),
        vs(
            "foo",
            "star",
            "2019-01-01T00:00:00Z",
            &format!("  hosts: [\"*.svc.cluster.local\"]\n{ROUTE_V1}")
        ),
        vs(
            "foo",
            "ns-star",
            "2020-01-01T00:00:00Z",
            &format!("  hosts: [\"*.foo.svc.cluster.local\"]\n{ROUTE_V1}")
        ),
    ));
    let v2 = view(&w2.routing(), "foo", "ratings.foo.svc.cluster.local", 9080);
    assert_eq!(winner(&v2), Some("foo/ns-star"));
    assert!(!v2.virtual_service.as_ref().unwrap().1.exact);
    assert!(v2.shadowed.iter().any(|(k, r)| k == "foo/star"
        && matches!(r, VsShadowReason::LessSpecificHost { winner_host, .. } if winner_host == "*.foo.svc.cluster.local")));
}

/// Route `i`'s reachability in the view.
fn reach(v: &RouteView, i: usize) -> &Reachability {
    &v.routes.iter().find(|r| r.index == i).unwrap().reachability
}

#[test]
fn routes_after_a_catch_all_are_unreachable() {
    let cases: [(&str, [bool; 3]); 7] = [
        // first route's match → reachability of routes 0, 1, 2
        ("", [true, false, false]),
        ("    match: [{uri: {prefix: /}}]\n", [true, false, false]),
        (
            "    match: [{uri: {regex: \".*\"}}]\n",
            [true, false, false],
        ),
        (
            "    match: [{uri: {prefix: /api}}, {uri: {prefix: /}}]\n",
            [true, false, false],
        ),
        // near misses: not catch-alls, so routes 1 and 2 stay reachable
        ("    match: [{uri: {exact: /}}]\n", [true, true, true]),
        (
            "    match: [{uri: {prefix: /}, headers: {end-user: {exact: jason}}}]\n",
            [true, true, true],
        ),
        ("    match: [{method: {exact: GET}}]\n", [true, true, true]),
    ];
    for (m, want) in cases {
        let spec = format!(
            "  hosts: [reviews]\n  http:\n  - route: [{{destination: {{host: reviews}}}}]\n{m}  - match: [{{uri: {{prefix: /v2}}}}]\n    route: [{{destination: {{host: reviews}}}}]\n  - route: [{{destination: {{host: reviews}}}}]\n"
        );
        let w = reviews_world(&vs("foo", "r", "2020-01-01T00:00:00Z", &spec));
        let v = view(&w.routing(), "foo", REVIEWS, 9080);
        for (i, reachable) in want.iter().enumerate() {
            assert_eq!(
                *reach(&v, i) == Reachability::Reachable,
                *reachable,
                "match {m:?} route {i}: {:?}",
                reach(&v, i)
            );
        }
        if !want[1] {
            assert_eq!(
                reach(&v, 1),
                &Reachability::AfterCatchAll {
                    vs: "foo/r".into(),
                    route: 0
                }
            );
        }
    }
}

#[test]
fn source_labels_namespace_and_port_filter_matches_per_client() {
    // sourceLabels, sourceNamespace and port are decided when istiod builds
    // the routes; they are not Envoy matchers. So a match with only
    // sourceLabels is a catch-all for the clients it selects.
    let spec = "  hosts: [reviews]\n  http:\n  - match: [{sourceLabels: {app: productpage}, uri: {prefix: /api}}]\n    route: [{destination: {host: reviews, subset: v2}}]\n  - match: [{sourceNamespace: bar, uri: {prefix: /api}}]\n    route: [{destination: {host: reviews, subset: v3}}]\n  - match: [{port: 9999}]\n    route: [{destination: {host: reviews}}]\n  - match: [{sourceLabels: {app: productpage}}]\n    route: [{destination: {host: reviews, subset: v2}}]\n  - route: [{destination: {host: reviews, subset: v1}}]\n";
    let w = reviews_world(&vs("foo", "r", "2020-01-01T00:00:00Z", spec));
    let r = w.routing();
    let pp = view_l(&r, "foo", "app=productpage", REVIEWS, 9080);
    assert_eq!(reach(&pp, 0), &Reachability::Reachable);
    assert!(
        matches!(reach(&pp, 1), Reachability::NotForClient(f) if f == &vec![MatchFilter::SourceNamespace { namespace: "bar".into() }])
    );
    assert!(
        matches!(reach(&pp, 2), Reachability::NotForClient(f) if f == &vec![MatchFilter::Port { wanted: 9999 }])
    );
    assert_eq!(reach(&pp, 3), &Reachability::Reachable);
    assert!(pp.routes.iter().find(|x| x.index == 3).unwrap().catch_all);
    assert_eq!(
        reach(&pp, 4),
        &Reachability::AfterCatchAll {
            vs: "foo/r".into(),
            route: 3
        }
    );
    let other = view_l(&r, "bar", "app=sleep", REVIEWS, 9080);
    assert!(
        matches!(reach(&other, 0), Reachability::NotForClient(f) if matches!(f[0], MatchFilter::SourceLabels { .. }))
    );
    assert_eq!(reach(&other, 1), &Reachability::Reachable);
    assert!(matches!(reach(&other, 3), Reachability::NotForClient(_)));
    assert_eq!(reach(&other, 4), &Reachability::Reachable);
}

#[test]
fn a_virtual_service_with_no_route_for_the_client_yields_to_the_next() {
    // route.go: no route built → the VS makes no virtual host, so the next claimant wins.
    let only_pp = "  hosts: [reviews]\n  http:\n  - match: [{sourceLabels: {app: productpage}}]\n    route: [{destination: {host: reviews}}]\n";
    let w = reviews_world(&format!(
        "{}---\n{}",
        vs("foo", "first", "2019-01-01T00:00:00Z", only_pp),
        vs(
            "foo",
            "second",
            "2020-01-01T00:00:00Z",
            &format!("  hosts: [reviews]\n{ROUTE_V1}")
        )
    ));
    let r = w.routing();
    assert_eq!(
        winner(&view_l(&r, "foo", "app=productpage", REVIEWS, 9080)),
        Some("foo/first")
    );
    let v = view_l(&r, "foo", "app=sleep", REVIEWS, 9080);
    assert_eq!(winner(&v), Some("foo/second"));
    assert!(v
        .shadowed
        .iter()
        .any(|(k, r)| k == "foo/first" && matches!(r, VsShadowReason::NoRoutesForClient { .. })));
}

#[test]
fn weights_zero_and_single_destinations() {
    let cases = [
        // (route, expected (subset, share, dropped))
        ("[{destination: {host: reviews, subset: v1}, weight: 100}, {destination: {host: reviews, subset: v2}, weight: 0}]",
         vec![("v1", 100.0, false), ("v2", 0.0, true)]),
        ("[{destination: {host: reviews, subset: v1}, weight: 0}]", vec![("v1", 100.0, false)]),
        ("[{destination: {host: reviews, subset: v1}, weight: 25}, {destination: {host: reviews, subset: v2}, weight: 75}]",
         vec![("v1", 25.0, false), ("v2", 75.0, false)]),
    ];
    for (route, want) in cases {
        let w = reviews_world(&format!(
            "{}---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {{name: reviews, namespace: foo}}\nspec:\n  host: reviews\n  subsets: [{{name: v1, labels: {{version: v1}}}}, {{name: v2, labels: {{version: v2}}}}]\n",
            vs("foo", "r", "2020-01-01T00:00:00Z", &format!("  hosts: [reviews]\n  http:\n  - route: {route}\n"))
        ));
        let v = view(&w.routing(), "foo", REVIEWS, 9080);
        let dests = &v.routes[0].destinations;
        assert_eq!(dests.len(), want.len(), "{route}");
        for (d, (subset, share, dropped)) in dests.iter().zip(want) {
            assert_eq!(d.destination.subset.as_deref(), Some(subset));
            assert_eq!(d.share, share, "{route}");
            assert_eq!(d.status == DestStatus::Dropped, dropped, "{route}");
        }
        // Only the live ones count: v2 has no pods, but weight 0 keeps it out.
        let live = v.live_destinations();
        assert!(live.iter().all(|d| d.status != DestStatus::Dropped));
    }
}

#[test]
fn fault_abort_is_reported_on_the_route() {
    let w = reviews_world(&vs(
        "foo",
        "r",
        "2020-01-01T00:00:00Z",
        "  hosts: [reviews]\n  http:\n  - fault: {abort: {httpStatus: 503, percentage: {value: 100}}}\n    route: [{destination: {host: reviews}}]\n",
    ));
    let v = view(&w.routing(), "foo", REVIEWS, 9080);
    let a = v.routes[0].fault_abort.as_ref().unwrap();
    assert_eq!(a.http_status, Some(503));
    assert_eq!(a.percent, Some(100.0));
}

#[test]
fn export_to_by_release() {
    // exportTo [foo] from namespace bar: 1.8+ exports to foo only; 1.7 read the
    // first entry only and treated anything but "." as public.
    let w = reviews_world(&vs(
        "bar",
        "r",
        "2020-01-01T00:00:00Z",
        &format!("  hosts: [{REVIEWS}]\n  exportTo: [foo]\n{ROUTE_V1}"),
    ));
    let now = w.routing();
    let v = view(&now, "foo", REVIEWS, 9080);
    assert_eq!(
        v.virtual_service.as_ref().unwrap().1.tier,
        VsTier::ExportedToNamespace
    );
    assert_eq!(winner(&view(&now, "baz", REVIEWS, 9080)), None);
    let old = w.routing_at(1, 7);
    assert_eq!(winner(&view(&old, "baz", REVIEWS, 9080)), Some("bar/r"));
    // "~" hides it from everyone (1.8+).
    let hidden = reviews_world(&vs(
        "foo",
        "r",
        "2020-01-01T00:00:00Z",
        &format!("  hosts: [{REVIEWS}]\n  exportTo: [\"~\"]\n{ROUTE_V1}"),
    ));
    assert_eq!(winner(&view(&hidden.routing(), "foo", REVIEWS, 9080)), None);
}

#[test]
fn tcp_ports_use_the_first_matching_tcp_route() {
    let w = world(&format!(
        "apiVersion: v1\nkind: Service\nmetadata: {{name: db, namespace: foo}}\nspec:\n  selector: {{app: db}}\n  ports: [{{name: tcp-db, port: 5432}}]\n---\n{}",
        vs("foo", "db", "2020-01-01T00:00:00Z",
           "  hosts: [db]\n  tcp:\n  - match: [{port: 1234}]\n    route: [{destination: {host: db, subset: a}}]\n  - route: [{destination: {host: db}}]\n  - route: [{destination: {host: db, subset: b}}]\n")
    ))
    .pods(&[("foo", "db-0", "app=db", true)]);
    let v = view(&w.routing(), "foo", "db.foo.svc.cluster.local", 5432);
    assert_eq!(v.kind, RouteKind::Tcp);
    assert_eq!(winner(&v), Some("foo/db"));
    assert!(matches!(reach(&v, 0), Reachability::NotForClient(_)));
    assert_eq!(reach(&v, 1), &Reachability::Reachable);
    assert_eq!(
        reach(&v, 2),
        &Reachability::Superseded {
            vs: "foo/db".into(),
            route: 1
        }
    );
    assert_eq!(
        v.routes[1].destinations[0].status,
        DestStatus::Ok { ready: 1 }
    );
}

#[test]
fn hosts_the_sidecar_does_not_know() {
    let w = reviews_world("");
    let mut opts = crate::istio::routing::RoutingOptions::default();
    let v = view(&w.routing_with(opts.clone()), "foo", "api.example.com", 443);
    assert_eq!(
        v.visibility,
        HostVisibility::NotInRegistry {
            outbound: Outbound::Passthrough
        }
    );
    opts.outbound_mode = crate::istio::mesh_config::OutboundMode::RegistryOnly;
    let v = view(&w.routing_with(opts), "foo", "api.example.com", 443);
    let HostVisibility::NotInRegistry { outbound } = v.visibility else {
        panic!()
    };
    assert_eq!(outbound.expected().unwrap().code, 502);
    // A known host on a port the service does not have.
    let v = view(&w.routing(), "foo", "reviews", 8080);
    assert!(
        matches!(v.visibility, HostVisibility::PortNotServed { ref service_ports, .. } if service_ports == &vec![9080])
    );
    // Short client host: resolved in the client's namespace.
    assert_eq!(view(&w.routing(), "foo", "reviews", 9080).host, REVIEWS);
}

#[test]
fn hosts_under_a_wildcard_service_entry_use_its_virtual_host() {
    let se = "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: ext, namespace: egress}\nspec: {hosts: [\"*.example.com\"], ports: [{number: 80, name: http, protocol: HTTP}], resolution: NONE}\n";
    let w = world(se);
    let v = view(&w.routing(), "app", "api.example.com", 80);
    assert_eq!(v.visibility, HostVisibility::Visible);
    let d = v.default_route.as_ref().unwrap();
    assert_eq!(d.cluster_name, "outbound|80||*.example.com");
    assert!(d.status.expected().is_none());
    // A VirtualService for the wildcard applies to it.
    let w = world(&format!(
        "{se}---\n{}",
        vs("egress", "ext", "2020-01-01T00:00:00Z", "  hosts: [\"*.example.com\"]\n  http: [{route: [{destination: {host: \"*.example.com\"}}]}]\n")
    ));
    let v = view(&w.routing(), "app", "api.example.com", 80);
    assert_eq!(winner(&v), Some("egress/ext"));
    // Near miss: a host outside the wildcard is unknown.
    let v = view(&w.routing(), "app", "api.example.org", 80);
    assert!(matches!(v.visibility, HostVisibility::NotInRegistry { .. }));
}

#[test]
fn wildcard_against_exact_by_release() {
    // An older wildcard VS and a newer exact one, both public: from 1.21 the
    // exact host wins; before, the wildcard VS claimed the service too and,
    // listed first, won.
    let w = reviews_world(&format!(
        "{}---\n{}",
        vs(
            "foo",
            "star",
            "2019-01-01T00:00:00Z",
            &format!("  hosts: [\"*.foo.svc.cluster.local\"]\n{ROUTE_V1}")
        ),
        vs(
            "foo",
            "exact",
            "2021-01-01T00:00:00Z",
            &format!("  hosts: [reviews]\n{ROUTE_V1}")
        ),
    ));
    assert_eq!(
        winner(&view(&w.routing(), "foo", REVIEWS, 9080)),
        Some("foo/exact")
    );
    assert_eq!(
        winner(&view(&w.routing_at(1, 21), "foo", REVIEWS, 9080)),
        Some("foo/exact")
    );
    let old = view(&w.routing_at(1, 20), "foo", REVIEWS, 9080);
    assert_eq!(winner(&old), Some("foo/star"));
    assert!(old
        .shadowed
        .iter()
        .any(|(k, r)| k == "foo/exact" && matches!(r, VsShadowReason::EarlierVsWon { .. })));
}
