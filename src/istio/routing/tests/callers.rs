//! Who can call a host: exposure of the service, the VirtualServices and
//! DestinationRules naming it, Sidecars, and namespaces grouped by view.

use super::*;
use crate::istio::routing::callers::OTHER_NAMESPACES;

const WORLD: &str = r#"
apiVersion: v1
kind: Service
metadata: {name: reviews, namespace: foo, annotations: {networking.istio.io/exportTo: "foo,bar,qux"}}
spec:
  selector: {app: reviews}
  ports: [{name: http, port: 9080}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: r, namespace: foo}
spec:
  hosts: [reviews]
  http: [{route: [{destination: {host: reviews, subset: v1}}]}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: edge, namespace: foo}
spec:
  hosts: [reviews.foo.svc.cluster.local]
  gateways: [istio-system/public]
  http: [{route: [{destination: {host: reviews}}]}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: foo}
spec:
  host: reviews
  exportTo: ["."]
  subsets: [{name: v1, labels: {version: v1}}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: canary, namespace: foo}
spec:
  host: reviews
  workloadSelector: {matchLabels: {app: canary}}
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: default, namespace: bar}
spec:
  egress: [{hosts: ["./*"]}]
"#;

#[test]
fn callers_are_grouped_by_the_view_they_get() {
    let w = world(WORLD).pods(&[("baz", "sleep", "app=sleep", true)]);
    let r = w.routing();
    let c = r.callers_of("reviews.foo.svc.cluster.local");
    assert_eq!(c.services.len(), 1);
    assert_eq!(c.virtual_services.len(), 2);
    assert_eq!(c.gateways, vec!["istio-system/public"]);
    assert_eq!(c.destination_rules.len(), 2);
    assert!(!c.sidecars[0].imports);
    let class_of = |ns: &str| {
        c.classes
            .iter()
            .find(|k| k.namespaces.iter().any(|n| n == ns))
            .unwrap_or_else(|| panic!("no class for {ns}: {:?}", c.classes))
    };
    let foo = class_of("foo");
    assert_eq!(foo.sees_host, vec![(9080, true)]);
    assert_eq!(
        foo.virtual_services,
        vec![(9080, Some("foo/r".to_string()))]
    );
    assert_eq!(foo.destination_rules, vec!["foo/reviews".to_string()]);
    assert!(foo.label_dependent);
    let qux = class_of("qux");
    assert_eq!(
        qux.virtual_services,
        vec![(9080, Some("foo/r".to_string()))]
    );
    assert!(qux.destination_rules.is_empty());
    // bar: its Sidecar hides the host; baz and unknown namespaces: not exported.
    let bar = class_of("bar");
    assert_eq!(bar.sees_host, vec![(9080, false)]);
    assert!(bar.namespaces.contains(&"baz".to_string()));
    assert!(bar.other_namespaces);
    assert_eq!(c.classes.len(), 3, "{:?}", c.classes);
    assert!(!r.known_namespaces().contains(OTHER_NAMESPACES));
}

#[test]
fn subset_answers_differ_per_caller_class() {
    // The foo/r route to subset v1: fine from foo, 503 NC from qux (the DR is
    // private to foo) — the per-namespace difference a rule must report.
    let w = world(WORLD).pods(&[("foo", "reviews-0", "app=reviews,version=v1", true)]);
    let r = w.routing();
    let from = |ns: &str| {
        view(&r, ns, "reviews.foo.svc.cluster.local", 9080).routes[0].destinations[0]
            .status
            .expected()
            .map(|e| e.flag)
    };
    assert_eq!(from("foo"), None);
    assert_eq!(from("qux"), Some("NC"));
}

/// Namespaces no Istio object names share the view of a namespace the
/// snapshot does not mention; computed once, it must equal computing each.
#[test]
fn a_shared_view_equals_each_namespace_computed_alone() {
    const MORE: &str = r#"
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: default, namespace: istio-system}
spec:
  egress: [{hosts: ["./*", "istio-system/*"]}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: mesh, namespace: istio-system}
spec:
  host: "*.local"
  exportTo: [plain-named]
  trafficPolicy: {tls: {mode: ISTIO_MUTUAL}}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: ext, namespace: edge}
spec:
  hosts: [api.example.com, short]
  ports: [{number: 443, name: tls, protocol: TLS}]
  exportTo: ["."]
---
apiVersion: v1
kind: Service
metadata: {name: private, namespace: quiet, annotations: {networking.istio.io/exportTo: "."}}
spec:
  selector: {app: private}
  ports: [{name: http, port: 8080}]
"#;
    let worlds = [WORLD.to_string(), format!("{WORLD}---\n{MORE}")];
    let pods = [
        ("baz", "sleep", "app=sleep", true),
        ("plain-named", "a", "app=a", true),
        ("quiet", "private-0", "app=private", true),
        ("plain-2", "b", "app=b", true),
    ];
    let hosts = [
        "reviews.foo.svc.cluster.local",
        "private.quiet.svc.cluster.local",
        "api.example.com",
        "short",
        "nothing.nowhere.svc.cluster.local",
    ];
    for text in &worlds {
        let w = world(text).pods(&pods);
        let r = w.routing();
        for host in hosts {
            for ports in [vec![9080u32], vec![8080], vec![443], vec![]] {
                let ports: std::collections::BTreeSet<u32> = ports.into_iter().collect();
                let ix = r.namespace_index();
                assert_eq!(
                    r.caller_classes_sharing(host, &ports, &ix, true),
                    r.caller_classes_sharing(host, &ports, &ix, false),
                    "{host} {ports:?}"
                );
            }
        }
    }
    // The private Service is seen from its own namespace only, and the
    // plain namespaces share the view of unknown ones.
    let w = world(&worlds[1]).pods(&pods);
    let c = w.routing().callers_of("private.quiet.svc.cluster.local");
    let quiet = c
        .classes
        .iter()
        .find(|k| k.namespaces.contains(&"quiet".to_string()))
        .unwrap();
    assert_eq!(quiet.sees_host, vec![(8080, true)], "{:?}", c.classes);
    let other = c.classes.iter().find(|k| k.other_namespaces).unwrap();
    assert_eq!(other.sees_host, vec![(8080, false)], "{:?}", c.classes);
    assert!(
        other.namespaces.contains(&"plain-2".to_string()),
        "{:?}",
        c.classes
    );
}
