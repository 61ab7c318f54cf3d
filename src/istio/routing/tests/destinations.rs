//! A destination's cluster and its status per client: unknown hosts and
//! ports (`503 NC`), subsets the applicable DestinationRule lacks (`503 NC`,
//! per client namespace), subsets and services without ready endpoints
//! (`503 UH`), ExternalName aliases per release, ServiceEntry hosts.

use super::*;
use crate::istio::routing::registry::EndpointSource;
use crate::istio::routing::{DestStatus, DestinationView, PortSource, UnknownHostWhy};

const REVIEWS: &str = "reviews.foo.svc.cluster.local";

/// reviews in foo routed by a VS in foo to `dest` (a flow-style destination).
fn routed_to(dest: &str, extra: &str) -> World {
    world(&format!(
        "{}\n---\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {{name: r, namespace: foo}}\nspec:\n  hosts: [reviews]\n  http:\n  - route: [{{destination: {dest}}}]\n---\n{extra}",
        http_svc("foo", "reviews", 9080)
    ))
    .pods(&[
        ("foo", "reviews-v1", "app=reviews,version=v1", true),
        ("foo", "reviews-v2", "app=reviews,version=v2", false),
    ])
}

fn first_dest(w: &World, client_ns: &str) -> DestinationView {
    let v = view(&w.routing(), client_ns, REVIEWS, 9080);
    v.routes[0].destinations[0].clone()
}

const DR_FOO: &str = "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: reviews, namespace: foo}\nspec:\n  host: reviews\n  subsets:\n  - {name: v1, labels: {version: v1}}\n  - {name: v2, labels: {version: v2}}\n  - {name: v3, labels: {version: v3}}\n";

/// (destination, extra objects, cluster, expected (code, flag)).
type StatusCase = (
    &'static str,
    &'static str,
    &'static str,
    Option<(u16, &'static str)>,
);

#[test]
fn statuses_and_the_response_they_imply() {
    let cases: Vec<StatusCase> = vec![
        // (destination, extra objects, cluster, expected response)
        (
            "{host: reviews}",
            "",
            "outbound|9080||reviews.foo.svc.cluster.local",
            None,
        ),
        (
            "{host: bogus}",
            "",
            "outbound|9080||bogus.foo.svc.cluster.local",
            Some((503, "NC")),
        ),
        (
            "{host: reviews, port: {number: 9999}}",
            "",
            "outbound|9999||reviews.foo.svc.cluster.local",
            Some((503, "NC")),
        ),
        (
            "{host: reviews, subset: v1}",
            "",
            "outbound|9080|v1|reviews.foo.svc.cluster.local",
            Some((503, "NC")),
        ),
        (
            "{host: reviews, subset: v1}",
            DR_FOO,
            "outbound|9080|v1|reviews.foo.svc.cluster.local",
            None,
        ),
        (
            "{host: reviews, subset: v9}",
            DR_FOO,
            "outbound|9080|v9|reviews.foo.svc.cluster.local",
            Some((503, "NC")),
        ),
        (
            "{host: reviews, subset: v2}",
            DR_FOO,
            "outbound|9080|v2|reviews.foo.svc.cluster.local",
            Some((503, "UH")),
        ),
        (
            "{host: reviews, subset: v3}",
            DR_FOO,
            "outbound|9080|v3|reviews.foo.svc.cluster.local",
            Some((503, "UH")),
        ),
    ];
    for (dest, extra, cluster, want) in cases {
        let d = first_dest(&routed_to(dest, extra), "foo");
        assert_eq!(d.cluster_name, cluster, "{dest}");
        assert_eq!(
            d.status.expected().map(|e| (e.code, e.flag)),
            want,
            "{dest}: {:?}",
            d.status
        );
    }
}

#[test]
fn subset_selecting_no_pods_names_the_unready_ones() {
    let d = first_dest(&routed_to("{host: reviews, subset: v2}", DR_FOO), "foo");
    let DestStatus::SubsetSelectsNoPods {
        subset,
        rule,
        not_ready,
        selected_by_service,
        ..
    } = d.status
    else {
        panic!("{:?}", d.status)
    };
    assert_eq!((subset.as_str(), rule.as_str()), ("v2", "foo/reviews"));
    assert_eq!(not_ready, vec!["foo/reviews-v2".to_string()]);
    assert_eq!(selected_by_service, 2);
}

#[test]
fn a_subset_is_missing_for_clients_the_rule_is_not_exported_to() {
    // The DR lives in foo and is exported to foo only: a client in bar finds
    // no rule (its lookup: bar, then foo's exported rules, then the root), so
    // the subset cluster is not built for it; the client in foo has it.
    let dr = "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: reviews, namespace: foo}\nspec:\n  host: reviews\n  exportTo: [\".\"]\n  subsets: [{name: v1, labels: {version: v1}}]\n";
    let w = routed_to("{host: reviews, subset: v1}", dr);
    let vs_everywhere = w.routing();
    let in_foo = view(&vs_everywhere, "foo", REVIEWS, 9080);
    assert_eq!(
        in_foo.routes[0].destinations[0].status,
        DestStatus::Ok { ready: 1 }
    );
    let in_bar = view(&vs_everywhere, "bar", REVIEWS, 9080);
    let DestStatus::UnknownSubset {
        rules,
        defined_in_unapplied,
        ..
    } = &in_bar.routes[0].destinations[0].status
    else {
        panic!("{:?}", in_bar.routes[0].destinations[0].status)
    };
    assert!(rules.is_empty());
    assert_eq!(defined_in_unapplied[0].0, "foo/reviews");
}

#[test]
fn a_subset_defined_by_a_rule_the_client_namespace_overrides_is_missing() {
    // bar has its own DR for reviews without subsets: it wins for bar's clients.
    let own = "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: reviews-tls, namespace: bar}\nspec:\n  host: reviews.foo.svc.cluster.local\n  trafficPolicy: {tls: {mode: ISTIO_MUTUAL}}\n";
    let w = routed_to(
        "{host: reviews, subset: v1}",
        &format!("{DR_FOO}---\n{own}"),
    );
    let r = w.routing();
    let bar = view(&r, "bar", REVIEWS, 9080);
    let DestStatus::UnknownSubset {
        rules,
        available,
        defined_in_unapplied,
        ..
    } = &bar.routes[0].destinations[0].status
    else {
        panic!()
    };
    assert_eq!(rules, &vec!["bar/reviews-tls".to_string()]);
    assert!(available.is_empty());
    assert_eq!(defined_in_unapplied[0].0, "foo/reviews");
    assert_eq!(
        view(&r, "foo", REVIEWS, 9080).routes[0].destinations[0].status,
        DestStatus::Ok { ready: 1 }
    );
}

#[test]
fn ports_of_multi_port_services() {
    let two = "apiVersion: v1\nkind: Service\nmetadata: {name: two, namespace: foo}\nspec:\n  selector: {app: reviews}\n  ports: [{name: http, port: 80}, {name: http-admin, port: 9000}]\n";
    let cases = [
        // (destination, cluster, ok)
        (
            "{host: two, port: {number: 80}}",
            "outbound|80||two.foo.svc.cluster.local",
            true,
        ),
        // no port on a multi-port destination: the listener port (9080) is used, and two has no 9080
        (
            "{host: two}",
            "outbound|9080||two.foo.svc.cluster.local",
            false,
        ),
        // single-port destination: its only port, whatever the listener
        (
            "{host: reviews}",
            "outbound|9080||reviews.foo.svc.cluster.local",
            true,
        ),
    ];
    for (dest, cluster, ok) in cases {
        let d = first_dest(&routed_to(dest, two), "foo");
        assert_eq!(d.cluster_name, cluster);
        let want_source = if dest.contains("port") {
            PortSource::Written
        } else if dest.contains("two") {
            PortSource::ListenerPort
        } else {
            PortSource::OnlyServicePort
        };
        assert_eq!(d.port_source, want_source, "{dest}");
        assert_eq!(d.status.expected().is_none(), ok, "{dest}: {:?}", d.status);
        if !ok {
            assert!(matches!(
                d.status,
                DestStatus::PortNotInService { implicit: true, .. }
            ));
        }
    }
}

#[test]
fn no_ready_endpoints_on_the_default_route() {
    let w =
        world(&http_svc("foo", "lonely", 8000)).pods(&[("foo", "lonely-0", "app=lonely", false)]);
    let v = view(&w.routing(), "bar", "lonely.foo.svc.cluster.local", 8000);
    let d = v.default_route.unwrap();
    let DestStatus::NoEndpoints { not_ready, .. } = &d.status else {
        panic!()
    };
    assert_eq!(not_ready, &vec!["foo/lonely-0".to_string()]);
    assert_eq!(d.status.expected().unwrap().flag, "UH");
    // Near miss: a pod of another namespace with the same labels does not count.
    let w =
        world(&http_svc("foo", "lonely", 8000)).pods(&[("bar", "lonely-0", "app=lonely", true)]);
    let d = view(&w.routing(), "bar", "lonely.foo.svc.cluster.local", 8000)
        .default_route
        .unwrap();
    assert!(matches!(d.status, DestStatus::NoEndpoints { .. }));
}

#[test]
fn external_name_services_by_release() {
    let ext = |target: &str| {
        format!("apiVersion: v1\nkind: Service\nmetadata: {{name: alias, namespace: foo}}\nspec:\n  type: ExternalName\n  externalName: {target}\n  ports: [{{name: http, port: 9080}}]\n")
    };
    // Alias of an in-mesh service (1.24+): the route goes to the target's cluster.
    let d = first_dest(&routed_to("{host: alias}", &ext(REVIEWS)), "foo");
    assert_eq!(d.cluster_name, format!("outbound|9080||{REVIEWS}"));
    assert_eq!(d.status, DestStatus::Ok { ready: 1 });
    // Alias of a name no registry has: no cluster.
    let d = first_dest(&routed_to("{host: alias}", &ext("api.example.com")), "foo");
    assert_eq!(d.cluster_name, "outbound|9080||api.example.com");
    assert!(matches!(
        d.status,
        DestStatus::UnknownHost(UnknownHostWhy::AliasTargetUnknown { .. })
    ));
    // Istio 1.19: a DNS cluster of its own.
    let w = routed_to("{host: alias}", &ext("api.example.com"));
    let v = view(&w.routing_at(1, 19), "foo", REVIEWS, 9080);
    let d = &v.routes[0].destinations[0];
    assert_eq!(d.cluster_name, "outbound|9080||alias.foo.svc.cluster.local");
    assert!(d.status.expected().is_none(), "{:?}", d.status);
}

#[test]
fn service_entry_hosts_and_wildcards() {
    let se = "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: ext, namespace: foo}\nspec:\n  hosts: [api.example.com, \"*.eu.example.com\"]\n  ports: [{number: 443, name: tls, protocol: TLS}, {number: 80, name: http, protocol: HTTP}]\n  resolution: DNS\n";
    let cases = [
        ("{host: api.example.com, port: {number: 80}}", true),
        // clusters carry the exact service host: a concrete name under the wildcard has none
        ("{host: www.eu.example.com, port: {number: 80}}", false),
    ];
    for (dest, ok) in cases {
        let d = first_dest(&routed_to(dest, se), "foo");
        assert_eq!(d.status.expected().is_none(), ok, "{dest}: {:?}", d.status);
        if !ok {
            assert!(
                matches!(d.status, DestStatus::UnknownHost(UnknownHostWhy::CoveredOnlyByWildcard { ref wildcard, .. }) if wildcard == "*.eu.example.com")
            );
        }
    }
}

#[test]
fn hosts_not_exported_and_headless_services() {
    let hidden = "apiVersion: v1\nkind: Service\nmetadata: {name: secret, namespace: vault, annotations: {networking.istio.io/exportTo: \".\"}}\nspec:\n  selector: {app: secret}\n  ports: [{name: http, port: 9080}]\n";
    let d = first_dest(
        &routed_to("{host: secret.vault.svc.cluster.local}", hidden),
        "foo",
    );
    assert!(matches!(
        d.status,
        DestStatus::UnknownHost(UnknownHostWhy::NotExported { .. })
    ));
    let headless = "apiVersion: v1\nkind: Service\nmetadata: {name: db, namespace: foo}\nspec:\n  clusterIP: None\n  selector: {app: db}\n  ports: [{name: http, port: 9080}]\n";
    let d = first_dest(&routed_to("{host: db}", headless), "foo");
    assert_eq!(
        d.status,
        DestStatus::EndpointsNotChecked(EndpointSource::Passthrough)
    );
}

#[test]
fn failures_list_what_a_client_hits() {
    use crate::istio::routing::Failure;
    // Route 0 aborts 10%; route 1 splits to an undefined subset and mirrors to a bogus host.
    let vs = "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: r, namespace: foo}\nspec:\n  hosts: [reviews]\n  http:\n  - match: [{uri: {prefix: /slow}}]\n    fault: {abort: {httpStatus: 503, percentage: {value: 10}}}\n    route: [{destination: {host: reviews}}]\n  - route: [{destination: {host: reviews, subset: v9}, weight: 20}, {destination: {host: reviews}, weight: 80}]\n    mirror: {host: bogus}\n";
    let w = world(&format!("{}\n---\n{vs}", http_svc("foo", "reviews", 9080))).pods(&[(
        "foo",
        "r-0",
        "app=reviews",
        true,
    )]);
    let v = view(&w.routing(), "foo", REVIEWS, 9080);
    let f = v.failures();
    assert_eq!(f.len(), 3, "{f:#?}");
    assert!(matches!(f[0], Failure::FaultAbort { abort, .. } if abort.percent == Some(10.0)));
    assert!(
        matches!(f[1], Failure::Destination { destination, mirror: false, .. } if destination.share == 20.0)
    );
    assert!(matches!(f[2], Failure::Destination { mirror: true, .. }));
    // Near miss: a healthy default route fails nothing.
    let w = world(&http_svc("foo", "reviews", 9080)).pods(&[("foo", "r-0", "app=reviews", true)]);
    assert!(view(&w.routing(), "foo", REVIEWS, 9080)
        .failures()
        .is_empty());
}
