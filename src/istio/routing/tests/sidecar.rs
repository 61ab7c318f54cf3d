//! The Sidecar resource: which one applies (`doGetSidecarScope`), what its
//! egress listeners import (`selectServices`, `SelectVirtualServices`), and
//! the outbound policy for hosts it does not import.

use super::*;
use crate::istio::mesh_config::OutboundMode;
use crate::istio::routing::query::{HostVisibility, Outbound};
use crate::istio::routing::select::VsShadowReason;
use crate::istio::routing::sidecar_scope::{choose, Import, SidecarWhy};

fn sidecar(ns: &str, name: &str, ts: &str, spec: &str) -> String {
    format!("apiVersion: networking.istio.io/v1\nkind: Sidecar\nmetadata: {{name: {name}, namespace: {ns}, creationTimestamp: \"{ts}\"}}\nspec:\n{spec}\n")
}

#[test]
fn which_sidecar_applies() {
    let w = world(
        &[
            sidecar(
                "app",
                "ns-wide",
                "2019-01-01T00:00:00Z",
                "  egress: [{hosts: [\"./*\"]}]",
            ),
            sidecar(
                "app",
                "for-web-new",
                "2021-01-01T00:00:00Z",
                "  workloadSelector: {labels: {app: web}}\n  egress: [{hosts: [\"*/*\"]}]",
            ),
            sidecar(
                "app",
                "for-web-old",
                "2020-01-01T00:00:00Z",
                "  workloadSelector: {labels: {app: web}}\n  egress: [{hosts: [\"*/*\"]}]",
            ),
            sidecar(
                "istio-system",
                "default",
                "2018-01-01T00:00:00Z",
                "  egress: [{hosts: [\"istio-system/*\"]}]",
            ),
            sidecar(
                "only-sel",
                "db",
                "2018-01-01T00:00:00Z",
                "  workloadSelector: {labels: {app: db}}\n  egress: [{hosts: [\"*/*\"]}]",
            ),
        ]
        .join("---\n"),
    );
    let r = w.routing();
    let cases = [
        (
            "app",
            "app=web",
            Some("for-web-old"),
            SidecarWhy::SelectorMatches,
        ),
        (
            "app",
            "app=api",
            Some("ns-wide"),
            SidecarWhy::NamespaceDefault,
        ),
        (
            "other",
            "app=web",
            Some("default"),
            SidecarWhy::RootNamespaceDefault,
        ),
        // selector Sidecars that do not match fall back to the root's
        (
            "only-sel",
            "app=web",
            Some("default"),
            SidecarWhy::RootNamespaceDefault,
        ),
        (
            "only-sel",
            "app=db",
            Some("db"),
            SidecarWhy::SelectorMatches,
        ),
    ];
    for (ns, l, name, why) in cases {
        let c = choose(&r.sidecars, ns, &labels(l), "istio-system");
        assert_eq!(c.sidecar.map(|s| s.meta.name.as_str()), name, "{ns} {l}");
        assert_eq!(c.why, why, "{ns} {l}");
    }
    let none = choose(&[], "x", &labels(""), "istio-system");
    assert_eq!(
        (none.sidecar.is_none(), none.why),
        (true, SidecarWhy::NoSidecar)
    );
}

#[test]
fn egress_hosts_import_services() {
    let cases = [
        // (egress hosts, service ns, service host, port, imported?)
        ("[\"./*\"]", "app", "a.app.svc.cluster.local", 80, true),
        ("[\"./*\"]", "other", "b.other.svc.cluster.local", 80, false),
        ("[\"*/*\"]", "other", "b.other.svc.cluster.local", 80, true),
        (
            "[\"other/b.other.svc.cluster.local\"]",
            "other",
            "b.other.svc.cluster.local",
            80,
            true,
        ),
        (
            "[\"other/c.other.svc.cluster.local\"]",
            "other",
            "b.other.svc.cluster.local",
            80,
            false,
        ),
        ("[\"*/*.example.com\"]", "ext", "api.example.com", 443, true),
        ("[\"~/*\"]", "app", "a.app.svc.cluster.local", 80, false),
        (
            "[\"bad-entry\"]",
            "app",
            "a.app.svc.cluster.local",
            80,
            false,
        ),
    ];
    for (hosts, svc_ns, svc_host, port, want) in cases {
        let w = world(&sidecar(
            "app",
            "s",
            "2020-01-01T00:00:00Z",
            &format!("  egress: [{{hosts: {hosts}}}]"),
        ));
        let r = w.routing();
        let got = r.sidecars[0].imports_service("app", svc_host, svc_ns, port);
        assert_eq!(
            matches!(got, Import::Imported { .. }),
            want,
            "{hosts} {svc_host}: {got:?}"
        );
    }
}

#[test]
fn egress_listener_ports_and_exclusions() {
    let w = world(&sidecar(
        "app",
        "s",
        "2020-01-01T00:00:00Z",
        "  egress:\n  - port: {number: 9080, protocol: HTTP, name: http}\n    hosts: [\"other/*\"]\n  - hosts: [\"./*\", \"~other/secret.other.svc.cluster.local\", \"*/*\"]",
    ));
    let r = w.routing();
    let sc = &r.sidecars[0];
    assert!(matches!(
        sc.imports_service("app", "x.other.svc.cluster.local", "other", 9080),
        Import::Imported {
            listener_port: Some(9080),
            ..
        }
    ));
    assert!(matches!(
        sc.imports_service("app", "x.other.svc.cluster.local", "other", 80),
        Import::Imported {
            listener_port: None,
            ..
        }
    ));
    // ~ exclusions exist from 1.31.
    assert!(matches!(
        sc.imports_service("app", "secret.other.svc.cluster.local", "other", 80),
        Import::Excluded { .. }
    ));
    let old = w.routing_at(1, 30);
    assert!(matches!(
        old.sidecars[0].imports_service("app", "secret.other.svc.cluster.local", "other", 80),
        Import::Imported { .. }
    ));
    // A Sidecar whose only listener has a port serves no other port.
    let w = world(&sidecar(
        "app",
        "s",
        "2020-01-01T00:00:00Z",
        "  egress: [{port: {number: 9080, name: http, protocol: HTTP}, hosts: [\"*/*\"]}]",
    ));
    assert_eq!(
        w.routing().sidecars[0].imports_service("app", "x.other.svc.cluster.local", "other", 80),
        Import::NoListener
    );
}

#[test]
fn hosts_not_imported_go_to_passthrough_or_blackhole() {
    let base = format!("{}---\n", http_svc("other", "b", 80));
    let cases = [
        ("", OutboundMode::AllowAny, Outbound::Passthrough),
        ("", OutboundMode::RegistryOnly, Outbound::BlackHole),
        (
            "  outboundTrafficPolicy: {mode: REGISTRY_ONLY}\n",
            OutboundMode::AllowAny,
            Outbound::BlackHole,
        ),
        (
            "  outboundTrafficPolicy: {mode: ALLOW_ANY}\n",
            OutboundMode::RegistryOnly,
            Outbound::Passthrough,
        ),
    ];
    for (policy, mesh, want) in cases {
        let w = world(&format!(
            "{base}{}",
            sidecar(
                "app",
                "s",
                "2020-01-01T00:00:00Z",
                &format!("{policy}  egress: [{{hosts: [\"./*\"]}}]")
            )
        ));
        let r = w.routing_with(RoutingOptions {
            outbound_mode: mesh.clone(),
            ..RoutingOptions::default()
        });
        let v = view(&r, "app", "b.other.svc.cluster.local", 80);
        let HostVisibility::NotImportedBySidecar { outbound, .. } = v.visibility else {
            panic!("{:?}", v.visibility)
        };
        assert_eq!(outbound, want, "{policy} {mesh:?}");
        assert!(v.routes.is_empty() && v.default_route.is_none());
    }
}

#[test]
fn virtual_services_must_be_imported_by_their_namespace() {
    // The VS for b lives in `routes`; the Sidecar imports other/* only, so the
    // service is visible but the VS is not imported.
    let vs = "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: b, namespace: routes}\nspec:\n  hosts: [b.other.svc.cluster.local]\n  http: [{route: [{destination: {host: b.other.svc.cluster.local}}]}]\n";
    let cases = [
        ("[\"other/*\"]", false),
        ("[\"other/*\", \"routes/*\"]", true),
        ("[\"*/b.other.svc.cluster.local\"]", true),
    ];
    for (hosts, applies) in cases {
        let w = world(&format!(
            "{}---\n{vs}---\n{}",
            http_svc("other", "b", 80),
            sidecar(
                "app",
                "s",
                "2020-01-01T00:00:00Z",
                &format!("  egress: [{{hosts: {hosts}}}]")
            )
        ));
        let v = view(&w.routing(), "app", "b.other.svc.cluster.local", 80);
        assert_eq!(v.visibility, HostVisibility::Visible, "{hosts}");
        assert_eq!(winner(&v).is_some(), applies, "{hosts}");
        if !applies {
            assert!(matches!(
                v.shadowed[0].1,
                VsShadowReason::NotImportedBySidecar { .. }
            ));
        }
    }
}
