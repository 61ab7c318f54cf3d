//! VirtualService parsing, name resolution (`ResolveShortnameToFQDN`,
//! `resolveGatewayName`) and exportTo tiers per release.

use serde_json::json;

use crate::istio::mesh_config::IstioVersion;
use crate::istio::routing::virtual_service::{
    resolve_gateway_name, RouteDestination, StringMatch, VirtualService, VsTier,
};
use crate::istio::routing::RoutingOptions;
use crate::istio::testutil::object;

fn parse(ns: &str, spec: serde_json::Value) -> VirtualService {
    let v = object(
        "networking.istio.io/v1beta1",
        "VirtualService",
        ns,
        "vs",
        "2020-01-01T00:00:00Z",
        spec,
    );
    VirtualService::from_value(&v, "cluster.local").unwrap()
}

#[test]
fn gateway_names_resolve_like_istiod() {
    let cases = [
        ("mesh", "mesh"),
        ("my-gw", "app/my-gw"),
        ("./my-gw", "app/my-gw"),
        ("istio-system/ingress", "istio-system/ingress"),
        (
            "ingress.istio-system.svc.cluster.local",
            "istio-system/ingress",
        ),
        ("ingress.istio-system", "istio-system/ingress"),
    ];
    for (written, want) in cases {
        assert_eq!(resolve_gateway_name(written, "app"), want, "{written}");
    }
}

#[test]
fn parses_hosts_routes_matches_and_faults() {
    let vs = parse(
        "app",
        json!({
            "hosts": ["Reviews", "*.example.com", "reviews.other"],
            "gateways": ["gw", "mesh"],
            "http": [{
                "name": "canary",
                "match": [{"uri": {"prefix": "/api"}, "headers": {"x-user.id": {"exact": "j"}, "x-any": {}},
                           "sourceLabels": {"app": "pp"}, "gateways": ["./gw"], "port": 9080}],
                "route": [{"destination": {"host": "reviews", "subset": "v2", "port": {"number": 9080}}, "weight": 10},
                          {"destination": {"host": "reviews.app.svc.cluster.local"}, "weight": 90}],
                "mirror": {"host": "shadow"},
                "fault": {"abort": {"httpStatus": 503, "percentage": {"value": 50.5}}}
            }, {"redirect": {"uri": "/x"}}, {"directResponse": {"status": 418}}],
            "tcp": [{"match": [{"port": 5432, "destinationSubnets": ["10.0.0.0/8"]}], "route": [{"destination": {"host": "db"}}]}],
            "tls": [{"match": [{"sniHosts": ["a.example.com"]}], "route": [{"destination": {"host": "a.example.com"}}]}]
        }),
    );
    assert_eq!(
        vs.hosts,
        vec![
            "reviews.app.svc.cluster.local",
            "*.example.com",
            "reviews.other"
        ]
    );
    assert_eq!(vs.gateways, vec!["app/gw", "mesh"]);
    assert!(vs.binds_mesh());
    let h = &vs.http[0];
    assert_eq!(h.name.as_deref(), Some("canary"));
    let m = &h.matches[0];
    assert_eq!(m.uri, Some(StringMatch::Prefix("/api".into())));
    assert_eq!(m.headers["x-user.id"], StringMatch::Exact("j".into()));
    assert_eq!(m.headers["x-any"], StringMatch::Any);
    assert_eq!(m.gateways, vec!["app/gw"]);
    assert_eq!(m.port, Some(9080));
    let d = h.route[0].destination.as_ref().unwrap();
    assert_eq!(
        (d.host.as_str(), d.subset.as_deref(), d.port),
        ("reviews.app.svc.cluster.local", Some("v2"), Some(9080))
    );
    assert_eq!(h.route[1].weight, 90);
    assert_eq!(
        h.mirror.as_ref().unwrap().host,
        "shadow.app.svc.cluster.local"
    );
    assert_eq!(
        h.fault.as_ref().unwrap().abort.as_ref().unwrap().percent,
        Some(50.5)
    );
    assert!(vs.http[1].redirect);
    assert_eq!(vs.http[2].direct_response, Some(418));
    assert_eq!(vs.tcp[0].matches[0].destination_subnets, vec!["10.0.0.0/8"]);
    assert_eq!(vs.tls[0].matches[0].sni_hosts, vec!["a.example.com"]);
}

#[test]
fn a_destination_without_destination_is_kept_as_none() {
    let vs = parse(
        "app",
        json!({"hosts": ["a"], "http": [{"route": [{}, {"destination": {"host": "b"}}]}]}),
    );
    assert_eq!(
        vs.http[0].route[0],
        RouteDestination {
            destination: None,
            weight: 0
        }
    );
}

#[test]
fn errors_name_the_field() {
    let cases = [
        (json!({"hosts": "a"}), "spec.hosts"),
        (
            json!({"http": [{"route": [{"destination": {"host": 3}}]}]}),
            "spec.http[0].route[0].destination.host",
        ),
        (
            json!({"http": [{"match": [{"uri": "/x"}]}]}),
            "spec.http[0].match[0].uri",
        ),
        (
            json!({"http": [{"route": [{"destination": {"host": "a"}, "weight": -1}]}]}),
            "spec.http[0].route[0].weight",
        ),
        (
            json!({"http": [{"route": [{"destination": {"port": {"number": 80}}}]}]}),
            "spec.http[0].route[0].destination.host",
        ),
    ];
    for (spec, field) in cases {
        let v = object(
            "networking.istio.io/v1",
            "VirtualService",
            "app",
            "bad",
            "2020-01-01T00:00:00Z",
            spec,
        );
        let e = VirtualService::from_value(&v, "cluster.local")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains(field) && e.contains("VirtualService app/bad"),
            "{e}"
        );
    }
}

#[test]
fn export_to_tiers_per_release() {
    let now = RoutingOptions::default();
    let v17 = RoutingOptions {
        version: Some(IstioVersion::new(1, 7, None)),
        ..RoutingOptions::default()
    };
    let private_default = RoutingOptions {
        default_vs_export_to: vec![".".into()],
        ..RoutingOptions::default()
    };
    let cases: Vec<(serde_json::Value, &RoutingOptions, &str, Option<VsTier>)> = vec![
        (json!([]), &now, "other", Some(VsTier::Public)),
        (json!(["*"]), &now, "other", Some(VsTier::Public)),
        (json!(["."]), &now, "app", Some(VsTier::Private)),
        (json!(["."]), &now, "other", None),
        (json!(["app"]), &now, "app", Some(VsTier::Private)),
        (
            json!(["other"]),
            &now,
            "other",
            Some(VsTier::ExportedToNamespace),
        ),
        (json!(["other"]), &now, "app", None),
        (json!(["~"]), &now, "app", None),
        (json!([".", "*"]), &now, "x", Some(VsTier::Public)),
        (json!(["other"]), &v17, "x", Some(VsTier::Public)),
        (json!([".", "other"]), &v17, "other", None),
        (json!([]), &private_default, "app", Some(VsTier::Private)),
        (json!([]), &private_default, "other", None),
    ];
    for (export, opts, ns, want) in cases {
        let vs = parse("app", json!({"hosts": ["a"], "exportTo": export.clone()}));
        assert_eq!(
            vs.tier_for(ns, opts),
            want,
            "{export} {ns} {:?}",
            opts.version
        );
    }
}
