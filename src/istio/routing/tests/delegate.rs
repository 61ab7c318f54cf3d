//! Delegate VirtualServices merged into their roots
//! (virtualservice.go `mergeVirtualServicesIfNeeded`, `mergeHTTPRoute`,
//! `hasConflict`), per release.

use super::*;
use crate::istio::routing::delegate::DelegateNote;
use crate::istio::routing::select::Reachability;
use crate::istio::routing::virtual_service::{RouteOrigin, StringMatch};
use crate::istio::routing::DestStatus;

const ROOT: &str = r#"
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: root, namespace: front, creationTimestamp: "2020-01-01T00:00:00Z"}
spec:
  hosts: [shop.front.svc.cluster.local]
  http:
  - match: [{uri: {prefix: /cart}}]
    delegate: {name: cart, namespace: team}
  - match: [{uri: {prefix: /missing}}]
    delegate: {name: nothing, namespace: team}
  - match: [{uri: {prefix: /local}}]
    delegate: {name: local}
  - route: [{destination: {host: shop}}]
"#;

const DELEGATES: &str = r#"
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: cart, namespace: team}
spec:
  http:
  - match: [{uri: {prefix: /cart/v2}}]
    route: [{destination: {host: cart.team.svc.cluster.local, subset: v2}}]
  - match: [{uri: {prefix: /other}}]
    route: [{destination: {host: cart.team.svc.cluster.local}}]
  - route: [{destination: {host: cart}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: local, namespace: front}
spec:
  exportTo: ["."]
  http:
  - route: [{destination: {host: shop}}]
"#;

fn shop() -> World {
    world(&format!(
        "{}\n---\n{}\n---\n{ROOT}\n---\n{DELEGATES}",
        http_svc("front", "shop", 80),
        http_svc("team", "cart", 80)
    ))
    .pods(&[
        ("front", "shop-0", "app=shop", true),
        ("team", "cart-0", "app=cart", true),
    ])
}

#[test]
fn delegate_routes_replace_the_root_route() {
    let r = shop().routing();
    assert_eq!(r.delegates.len(), 2);
    let root = &r.virtual_services[0];
    // /cart → two delegate routes (the /other one conflicts and is dropped);
    // /missing dropped; /local → one; plus the root's own catch-all.
    let origins: Vec<&RouteOrigin> = root.http.iter().map(|h| &h.origin).collect();
    assert_eq!(root.http.len(), 4, "{origins:?}");
    assert!(
        matches!(origins[0], RouteOrigin::Delegate { delegate, delegate_index: 0, .. } if delegate == "team/cart")
    );
    assert!(matches!(
        origins[1],
        RouteOrigin::Delegate {
            delegate_index: 2,
            ..
        }
    ));
    assert!(
        matches!(origins[2], RouteOrigin::Delegate { delegate, .. } if delegate == "front/local")
    );
    assert_eq!(origins[3], &RouteOrigin::Own);
    // The delegate's catch-all inherits the root's /cart match: not a catch-all any more.
    assert_eq!(
        root.http[1].matches[0].uri,
        Some(StringMatch::Prefix("/cart".into()))
    );
    assert_eq!(
        root.http[0].matches[0].uri,
        Some(StringMatch::Prefix("/cart/v2".into()))
    );
    assert!(r.delegate_notes.contains(&DelegateNote::MatchConflict {
        root: "front/root".into(),
        route: 0,
        delegate: "team/cart".into(),
        delegate_route: 1
    }));
    assert!(r.delegate_notes.contains(&DelegateNote::NotFound {
        root: "front/root".into(),
        route: 1,
        delegate: "team/nothing".into()
    }));
    // Delegate hosts resolve in the delegate's namespace.
    assert_eq!(
        root.http[1].route[0].destination.as_ref().unwrap().host,
        "cart.team.svc.cluster.local"
    );
}

#[test]
fn merged_routes_are_reachable_and_resolve_for_clients() {
    let r = shop().routing();
    let v = view(&r, "front", "shop.front.svc.cluster.local", 80);
    assert_eq!(winner(&v), Some("front/root"));
    assert!(
        v.routes
            .iter()
            .all(|x| x.reachability == Reachability::Reachable),
        "{:?}",
        v.routes
    );
    // subset v2 is not defined anywhere: 503 NC for that route only.
    let first = &v.routes[0].destinations[0];
    assert!(matches!(first.status, DestStatus::UnknownSubset { .. }));
    assert_eq!(
        v.routes[1].destinations[0].status,
        DestStatus::Ok { ready: 1 }
    );
}

#[test]
fn delegation_by_release() {
    let w = shop();
    // 1.7: delegation off by default → the root is ignored entirely.
    let r = w.routing_at(1, 7);
    assert!(r.virtual_services.is_empty());
    assert_eq!(
        r.delegate_notes,
        vec![DelegateNote::DelegationDisabled {
            root: "front/root".into()
        }]
    );
    assert_eq!(
        winner(&view(&r, "front", "shop.front.svc.cluster.local", 80)),
        None
    );
    // 1.10: a delegate without namespace is not found.
    let r = w.routing_at(1, 10);
    assert!(r
        .delegate_notes
        .iter()
        .any(|n| matches!(n, DelegateNote::NamespaceRequired { name, .. } if name == "local")));
    assert_eq!(r.virtual_services[0].http.len(), 3);
}

#[test]
fn a_delegate_not_exported_to_the_root_namespace_drops_the_route() {
    let w = world(&format!(
        "{}\n---\n{ROOT}\n---\n{}",
        http_svc("front", "shop", 80),
        DELEGATES.replace(
            "metadata: {name: cart, namespace: team}\nspec:\n",
            "metadata: {name: cart, namespace: team}\nspec:\n  exportTo: [\".\"]\n"
        )
    ));
    let r = w.routing();
    assert!(r.delegate_notes.iter().any(
        |n| matches!(n, DelegateNote::NotExported { delegate, .. } if delegate == "team/cart")
    ));
    assert!(r.virtual_services[0].http.iter().all(
        |h| !matches!(&h.origin, RouteOrigin::Delegate { delegate, .. } if delegate == "team/cart")
    ));
}
