//! Inputs shaped like real-world configurations that static checkers test
//! against (istioctl analyze's `virtualservice_destinationhosts`,
//! `virtualservice_destinationrules`, `virtualservice_gateways`,
//! `virtualservice_conflictingmeshgatewayhosts`; Kiali's KIA1101, KIA1102,
//! KIA1104, KIA1106, KIA1107 and `subset-presence-no-matching-export-subset`),
//! rewritten with new names. Each asserts what a client actually gets — the
//! question those checkers approximate.

use super::*;
use crate::istio::routing::gateway_query::GatewayOutcome;
use crate::istio::routing::select::{Reachability, VsShadowReason};
use crate::istio::routing::{DestStatus, UnknownHostWhy};

/// Destination hosts: unknown hosts, unexported entries, ports of
/// multi-port services, wildcard entries, and a host-less copy that never applies.
const LEDGER: &str = r#"
apiVersion: v1
kind: Service
metadata: {name: ledger, namespace: shop}
spec: {selector: {app: ledger}, ports: [{port: 8080, name: http-api}]}
---
apiVersion: v1
kind: Service
metadata: {name: ledger-2port, namespace: shop}
spec: {selector: {app: ledger}, ports: [{port: 80, name: http}, {port: 443, name: https}]}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: payments, namespace: shop}
spec: {hosts: [payments.example.org], ports: [{number: 8080, name: http, protocol: HTTP}], resolution: DNS}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: eu, namespace: shop}
spec: {hosts: ["*.eu.shop.example"], ports: [{number: 8080, name: http, protocol: HTTP}], resolution: NONE}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: keys, namespace: vault}
spec: {exportTo: ["."], hosts: [keys.shop.example], ports: [{number: 8080, name: http, protocol: HTTP}], resolution: DNS}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: ledger, namespace: shop}
spec:
  hosts: [ledger]
  http:
  - match: [{headers: {x-case: {exact: bogus}}}]
    route: [{destination: {host: ledger-bogus}}]
  - match: [{headers: {x-case: {exact: vault}}}]
    route: [{destination: {host: keys.shop.example}}]
  - match: [{headers: {x-case: {exact: two-missing}}}]
    route: [{destination: {host: ledger-2port}}]
  - match: [{headers: {x-case: {exact: two-present}}}]
    route: [{destination: {host: ledger-2port, port: {number: 80}}}]
  - match: [{headers: {x-case: {exact: eu}}}]
    route: [{destination: {host: berlin.eu.shop.example}}]
  - match: [{headers: {x-case: {exact: external}}}]
    route: [{destination: {host: payments.example.org}}]
  - route: [{destination: {host: ledger.shop.svc.cluster.local}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: ledger-nohosts, namespace: shop}
spec:
  http: [{route: [{destination: {host: ledger-bogus}}]}]
"#;

#[test]
fn destination_hosts_like_istioctl_fixture() {
    let w = world(LEDGER).pods(&[("shop", "ledger-0", "app=ledger", true)]);
    let v = view(&w.routing(), "shop", "ledger", 8080);
    assert_eq!(winner(&v), Some("shop/ledger"));
    let status = |i: usize| &v.routes[i].destinations[0].status;
    assert!(matches!(
        status(0),
        DestStatus::UnknownHost(UnknownHostWhy::NotInRegistry)
    ));
    assert!(matches!(
        status(1),
        DestStatus::UnknownHost(UnknownHostWhy::NotExported { .. })
    ));
    assert!(matches!(
        status(2),
        DestStatus::PortNotInService {
            port: 8080,
            implicit: true,
            ..
        }
    ));
    assert_eq!(status(3), &DestStatus::Ok { ready: 1 });
    assert!(matches!(
        status(4),
        DestStatus::UnknownHost(UnknownHostWhy::CoveredOnlyByWildcard { .. })
    ));
    assert_eq!(status(5), &DestStatus::Ok { ready: 1 });
    assert_eq!(status(6), &DestStatus::Ok { ready: 1 });
    assert!(v
        .routes
        .iter()
        .all(|r| r.reachability == Reachability::Reachable));
    // The host-less copy is a delegate nobody references: no effect at all.
    assert!(v.shadowed.is_empty());
    assert_eq!(
        v.routes[0].destinations[0].cluster_name,
        "outbound|8080||ledger-bogus.shop.svc.cluster.local"
    );
}

/// Subsets: one defined, one not; a mirror to an undefined subset; KIA1104's
/// single destination with a weight.
const INVENTORY: &str = r#"
apiVersion: v1
kind: Service
metadata: {name: inventory, namespace: stock}
spec: {selector: {app: inventory}, ports: [{port: 7000, name: grpc}]}
---
apiVersion: networking.istio.io/v1beta1
kind: DestinationRule
metadata: {name: inventory, namespace: stock}
spec:
  host: inventory
  subsets: [{name: stable, labels: {track: stable}}]
---
apiVersion: networking.istio.io/v1beta1
kind: VirtualService
metadata: {name: inventory, namespace: stock}
spec:
  hosts: [inventory]
  http:
  - match: [{headers: {x-beta: {exact: "1"}}}]
    route: [{destination: {host: inventory, subset: stable}, weight: 30}]
  - route:
    - {destination: {host: inventory, subset: stable}, weight: 90}
    - {destination: {host: inventory, subset: nightly}, weight: 10}
    mirror: {host: inventory, subset: shadow}
"#;

#[test]
fn destination_rules_like_istioctl_and_kiali_fixtures() {
    let w = world(INVENTORY).pods(&[("stock", "inv-0", "app=inventory,track=stable", true)]);
    let v = view(
        &w.routing(),
        "web",
        "inventory.stock.svc.cluster.local",
        7000,
    );
    let single = &v.routes[0].destinations[0];
    assert_eq!((single.weight, single.share), (30, 100.0));
    let split = &v.routes[1].destinations;
    assert_eq!(split[0].status, DestStatus::Ok { ready: 1 });
    assert!(
        matches!(split[1].status, DestStatus::UnknownSubset { ref subset, ref available, .. } if subset == "nightly" && available == &vec!["stable".to_string()])
    );
    assert_eq!(split[1].share, 10.0);
    assert!(matches!(
        v.routes[1].mirrors[0].status,
        DestStatus::UnknownSubset { .. }
    ));
    // The mirror's cluster does not count as a live destination; the 10% split does.
    let failing: Vec<_> = v
        .live_destinations()
        .into_iter()
        .filter(|d| d.status.expected().is_some())
        .collect();
    assert_eq!(failing.len(), 1);
    assert_eq!(
        failing[0].cluster_name,
        "outbound|7000|nightly|inventory.stock.svc.cluster.local"
    );
}

/// Gateways: a VS naming a gateway that does not exist (KIA1102), one bound
/// correctly, and a route whose `gateways` match is a catch-all for that gateway.
const STOREFRONT: &str = r#"
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: storefront-gw, namespace: web}
spec:
  selector: {istio: ingressgateway}
  servers: [{port: {number: 80, name: http, protocol: HTTP}, hosts: ["*"]}]
---
apiVersion: v1
kind: Service
metadata: {name: storefront, namespace: web}
spec: {selector: {app: storefront}, ports: [{port: 9080, name: http}]}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: typo, namespace: web}
spec:
  hosts: [typo.example.com]
  gateways: [storefront-gateway]
  http: [{route: [{destination: {host: storefront}}]}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: storefront, namespace: web}
spec:
  hosts: ["*"]
  gateways: [storefront-gw, mesh]
  http:
  - match:
    - gateways: [storefront-gw]
    - uri: {exact: /static}
    route: [{destination: {host: storefront, port: {number: 9080}}}]
  - match: [{uri: {exact: /login}}]
    route: [{destination: {host: storefront, subset: auth}}]
"#;

#[test]
fn gateways_like_istioctl_and_kiali_fixtures() {
    let w = world(STOREFRONT).pods(&[("web", "sf-0", "app=storefront", true)]);
    let r = w.routing();
    let l = labels("istio=ingressgateway");
    let gw = Client {
        namespace: "istio-system",
        labels: &l,
    };
    // The typo'd gateway binds nothing; `*` from the other VS catches the host.
    let g = r.gateway_routes(gw, "typo.example.com", 80);
    assert_eq!(g.bound, vec!["web/storefront"]);
    assert!(g.shadowed.iter().any(|(k, why)| k == "web/typo" && matches!(why, VsShadowReason::OtherGateways { gateways } if gateways == &vec!["web/storefront-gateway".to_string()])));
    // On the gateway, the first match is a catch-all: /login is unreachable there.
    assert_eq!(
        g.routes[1].reachability,
        Reachability::AfterCatchAll {
            vs: "web/storefront".into(),
            route: 0
        }
    );
    // On sidecars the gateway-only match is not built: /static and /login both work,
    // and the undefined subset `auth` answers 503 NC there only.
    let v = view(&r, "web", "storefront", 9080);
    assert_eq!(v.routes[0].built_matches, vec![Some(1)]);
    assert_eq!(v.routes[1].reachability, Reachability::Reachable);
    assert!(matches!(
        v.routes[1].destinations[0].status,
        DestStatus::UnknownSubset { .. }
    ));
    // Without the `*` VS, typo.example.com is a 404 at the gateway.
    let w2 = world(&STOREFRONT.replace(
        "hosts: [\"*\"]\n  gateways",
        "hosts: [storefront.web.svc.cluster.local]\n  gateways",
    ));
    assert_eq!(
        w2.routing()
            .gateway_routes(gw, "typo.example.com", 80)
            .outcome,
        GatewayOutcome::NoVirtualHost
    );
}

/// KIA1106 / `conflictingmeshgatewayhosts`: several VirtualServices for one
/// host; exportTo and gateways decide whether they really compete.
const CATALOG: &str = r#"
apiVersion: v1
kind: Service
metadata: {name: search, namespace: catalog}
spec: {selector: {app: search}, ports: [{port: 8080, name: http}]}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: search-a, namespace: catalog, creationTimestamp: "2021-03-01T00:00:00Z"}
spec: {hosts: [search], http: [{route: [{destination: {host: search, subset: a}}]}]}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: search-b, namespace: catalog, creationTimestamp: "2021-04-01T00:00:00Z"}
spec: {hosts: [search], http: [{route: [{destination: {host: search, subset: b}}]}]}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: search, namespace: partner, creationTimestamp: "2022-01-01T00:00:00Z"}
spec:
  hosts: [search.catalog.svc.cluster.local]
  exportTo: ["."]
  http: [{route: [{destination: {host: search.catalog.svc.cluster.local}}]}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: search-edge, namespace: edge, creationTimestamp: "2020-01-01T00:00:00Z"}
spec:
  hosts: [search.catalog.svc.cluster.local]
  gateways: [istio-system/ingress]
  http: [{route: [{destination: {host: search.catalog.svc.cluster.local}}]}]
"#;

#[test]
fn conflicting_virtual_services_like_istioctl_and_kiali_fixtures() {
    let w = world(CATALOG).pods(&[("catalog", "s-0", "app=search", true)]);
    let r = w.routing();
    let host = "search.catalog.svc.cluster.local";
    let web = view(&r, "web", host, 8080);
    assert_eq!(winner(&web), Some("catalog/search-a"));
    assert!(web
        .shadowed
        .iter()
        .any(|(k, why)| k == "catalog/search-b"
            && matches!(why, VsShadowReason::EarlierVsWon { .. })));
    assert!(web
        .shadowed
        .iter()
        .any(|(k, why)| k == "edge/search-edge"
            && matches!(why, VsShadowReason::GatewaysOnly { .. })));
    assert!(
        web.shadowed
            .iter()
            .any(|(k, why)| k == "partner/search"
                && matches!(why, VsShadowReason::NotExported { .. }))
    );
    // The shadowed search-b routes to subset b, which no DR defines: harmless,
    // since no client takes it. The winner's subset a is undefined too: that one counts.
    assert!(
        matches!(web.routes[0].destinations[0].status, DestStatus::UnknownSubset { ref subset, .. } if subset == "a")
    );
    // In partner, its private VS comes first and routes without a subset.
    let partner = view(&r, "partner", host, 8080);
    assert_eq!(winner(&partner), Some("partner/search"));
    assert_eq!(
        partner.routes[0].destinations[0].status,
        DestStatus::Ok { ready: 1 }
    );
}

/// Kiali `subset-presence-no-matching-export-subset`: DestinationRules for
/// the same service name in three namespaces, each with its own subsets.
const REVIEWS3: &str = r#"
apiVersion: v1
kind: Service
metadata: {name: reviews, namespace: books}
spec: {selector: {app: reviews}, ports: [{port: 9080, name: http}]}
---
apiVersion: v1
kind: Service
metadata: {name: reviews, namespace: books2}
spec: {selector: {app: reviews}, ports: [{port: 9080, name: http}]}
---
apiVersion: networking.istio.io/v1alpha3
kind: DestinationRule
metadata: {name: rules, namespace: books}
spec: {host: reviews.books.svc.cluster.local, subsets: [{name: v2, labels: {version: v2}}]}
---
apiVersion: networking.istio.io/v1alpha3
kind: DestinationRule
metadata: {name: rules, namespace: books2}
spec: {host: reviews, exportTo: ["*"], subsets: [{name: v4, labels: {version: v4}}]}
---
apiVersion: networking.istio.io/v1beta1
kind: VirtualService
metadata: {name: reviews, namespace: books}
spec:
  hosts: [reviews.books.svc.cluster.local]
  http:
  - route:
    - {destination: {host: reviews.books2.svc.cluster.local, subset: v1}, weight: 50}
    - {destination: {host: reviews.books.svc.cluster.local, subset: v2}, weight: 50}
"#;

#[test]
fn subsets_across_namespaces_like_kiali_fixture() {
    let w = world(REVIEWS3).pods(&[
        ("books", "r2", "app=reviews,version=v2", true),
        ("books2", "r4", "app=reviews,version=v4", true),
    ]);
    let r = w.routing();
    let v = view(&r, "books", "reviews.books.svc.cluster.local", 9080);
    let d = &v.routes[0].destinations;
    // books2's rule is exported everywhere but defines v4, not v1.
    assert!(
        matches!(&d[0].status, DestStatus::UnknownSubset { rules, available, .. } if rules == &vec!["books2/rules".to_string()] && available == &vec!["v4".to_string()])
    );
    assert_eq!(d[1].status, DestStatus::Ok { ready: 1 });
    // A client in books2: its own namespace's rule names reviews.books2, not
    // reviews.books, so the lookup goes on to the service's namespace, whose
    // rule (exported by default) defines v2.
    let v2 = view(&r, "books2", "reviews.books.svc.cluster.local", 9080);
    assert_eq!(
        v2.routes[0].destinations[1].status,
        DestStatus::Ok { ready: 1 }
    );
}
