//! The service registry: port protocols (`ConvertProtocol`), Services and
//! ServiceEntries as `model.Service`s, visibility, endpoints and readiness.

use serde_json::json;

use super::*;
use crate::istio::routing::registry::{
    kubernetes_protocol, EndpointSource, ProtocolSource, Registry, ServiceKind, TargetPort,
};
use crate::istio::routing::{Protocol, Resolution};

/// (port, name, l4 protocol, appProtocol) with "" for absent.
type PortCase = (u32, &'static str, &'static str, &'static str);

fn protocol_of(c: PortCase, opts: &RoutingOptions) -> (Protocol, ProtocolSource) {
    let opt = |s: &'static str| if s.is_empty() { None } else { Some(s) };
    kubernetes_protocol(c.0, opt(c.1), opt(c.2), opt(c.3), opts)
}

#[test]
fn port_protocols_from_name_and_app_protocol() {
    use Protocol as P;
    use ProtocolSource as S;
    let now = RoutingOptions::default();
    let cases: [(PortCase, P, S); 10] = [
        ((80, "http", "", ""), P::Http, S::PortName),
        ((80, "http-web", "", ""), P::Http, S::PortName),
        ((80, "HTTP2-x", "", ""), P::Http2, S::PortName),
        ((80, "grpc-web-x", "", ""), P::GrpcWeb, S::PortName),
        ((80, "web", "", ""), P::Unsupported, S::Undeclared),
        ((80, "httpx", "", ""), P::Unsupported, S::Undeclared),
        ((3306, "db", "", ""), P::Tcp, S::WellKnownPort),
        ((53, "", "UDP", ""), P::Udp, S::Udp),
        ((80, "tcp", "", "http"), P::Http, S::AppProtocol),
        (
            (80, "web", "", "kubernetes.io/h2c"),
            P::Http2,
            S::AppProtocol,
        ),
    ];
    for (c, want, src) in cases {
        assert_eq!(protocol_of(c, &now), (want, src), "{c:?}");
    }
    // appProtocol is ignored before 1.6: the name decides.
    let v15 = RoutingOptions {
        version: Some(IstioVersion::new(1, 5, None)),
        ..RoutingOptions::default()
    };
    assert_eq!(
        protocol_of((80, "tcp", "", "http"), &v15),
        (P::Tcp, S::PortName)
    );
    assert!(P::Unsupported.is_http_or_sniffed());
    assert!(!P::Tcp.is_http_or_sniffed());
    assert!(P::Https.is_tls());
}

#[test]
fn services_and_service_entries_become_registry_services() {
    let w = world(
        r#"
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop, annotations: {networking.istio.io/exportTo: "shop, front"}}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: http-web}]
---
apiVersion: v1
kind: Service
metadata: {name: db, namespace: shop}
spec: {clusterIP: None, ports: [{name: tcp, port: 5432, targetPort: 5432}]}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: ext, namespace: shop}
spec:
  hosts: [a.example.com, B.example.com]
  location: MESH_EXTERNAL
  resolution: STATIC
  ports: [{number: 443, name: tls, protocol: TLS}]
  endpoints: [{address: 1.2.3.4, labels: {zone: a}}]
"#,
    );
    let r = w.routing();
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    let web = r
        .registry
        .with_host("web.shop.svc.cluster.local")
        .next()
        .unwrap();
    assert_eq!(web.export_to, vec!["shop".to_string(), "front".to_string()]);
    assert_eq!(
        web.ports[0].target_port,
        Some(TargetPort::Name("http-web".into()))
    );
    let db = r
        .registry
        .with_host("db.shop.svc.cluster.local")
        .next()
        .unwrap();
    assert_eq!(db.kind, ServiceKind::KubernetesHeadless);
    assert_eq!(db.resolution, Resolution::Passthrough);
    assert!(db.selector.is_none());
    let hosts: Vec<&str> = r
        .registry
        .services
        .iter()
        .filter(|s| s.object.name == "ext")
        .map(|s| s.hostname.as_str())
        .collect();
    assert_eq!(hosts, vec!["a.example.com", "b.example.com"]);
    let ext = r.registry.with_host("a.example.com").next().unwrap();
    assert_eq!(
        ext.kind,
        ServiceKind::ServiceEntry {
            mesh_external: true
        }
    );
    assert_eq!(ext.ports[0].protocol, Protocol::Tls);
    let opts = RoutingOptions::default();
    // exportTo: listed namespaces only.
    assert!(Registry::visible(web, "front", &opts));
    assert!(!Registry::visible(web, "other", &opts));
    assert!(Registry::visible(db, "other", &opts));
}

#[test]
fn visibility_by_export_to() {
    let svc = |export: &str| {
        world(&format!(
            "apiVersion: v1\nkind: Service\nmetadata: {{name: s, namespace: a, annotations: {{networking.istio.io/exportTo: \"{export}\"}}}}\nspec: {{ports: [{{port: 80}}]}}\n"
        ))
        .routing()
    };
    let opts = RoutingOptions::default();
    let cases = [
        (".", "a", true),
        (".", "b", false),
        ("*", "b", true),
        ("~", "a", false),
        ("b,c", "c", true),
        ("b,c", "a", false),
    ];
    for (export, ns, want) in cases {
        let r = svc(export);
        let s = r
            .registry
            .with_host("s.a.svc.cluster.local")
            .next()
            .unwrap();
        assert_eq!(Registry::visible(s, ns, &opts), want, "{export} {ns}");
    }
}

#[test]
fn pick_prefers_the_client_namespace_then_kubernetes() {
    let w = world(
        r#"
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: se, namespace: x, creationTimestamp: "2019-01-01T00:00:00Z"}
spec: {hosts: [api.internal], ports: [{number: 80, name: http, protocol: HTTP}], resolution: DNS}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: se, namespace: y, creationTimestamp: "2020-01-01T00:00:00Z"}
spec: {hosts: [api.internal], ports: [{number: 8080, name: http, protocol: HTTP}], resolution: DNS}
"#,
    );
    let r = w.routing();
    let opts = RoutingOptions::default();
    assert_eq!(
        r.registry
            .pick("api.internal", "y", &opts)
            .unwrap()
            .namespace,
        "y"
    );
    assert_eq!(
        r.registry
            .pick("api.internal", "z", &opts)
            .unwrap()
            .namespace,
        "x"
    );
}

#[test]
fn endpoints_follow_readiness_named_ports_and_publish_not_ready() {
    let svc = |extra: &str, target: &str| {
        world(&format!(
            "apiVersion: v1\nkind: Service\nmetadata: {{name: s, namespace: a}}\nspec:\n  selector: {{app: s}}\n  ports: [{{name: http, port: 80, targetPort: {target}}}]\n{extra}"
        ))
    };
    let mut terminating = pod("a", "s-2", "app=s", true);
    terminating["metadata"]["deletionTimestamp"] = json!("2024-01-01T00:00:00Z");
    let mut no_ip = pod("a", "s-3", "app=s", true);
    no_ip["status"]["podIP"] = json!(null);
    let mut done = pod("a", "s-4", "app=s", true);
    done["status"]["phase"] = json!("Succeeded");
    let cases = [
        ("", "8080", 1, 3),
        ("  publishNotReadyAddresses: true\n", "8080", 4, 0),
        // a named targetPort the pods do not declare: no endpoint at all
        ("", "grpc", 0, 0),
        ("", "http-web", 1, 3),
    ];
    for (extra, target, ready, not_ready) in cases {
        let mut w =
            svc(extra, target).pods(&[("a", "s-0", "app=s", true), ("a", "s-1", "app=s", false)]);
        w.pods
            .extend([terminating.clone(), no_ip.clone(), done.clone()]);
        let r = w.routing();
        let s = r
            .registry
            .with_host("s.a.svc.cluster.local")
            .next()
            .unwrap();
        let eps = r.registry.endpoints(s, &s.ports[0], None);
        assert_eq!(eps.source, EndpointSource::Selector);
        assert_eq!(
            (eps.ready.len(), eps.not_ready.len()),
            (ready, not_ready),
            "{extra} {target}"
        );
    }
    let w = svc("", "8080").pods(&[("a", "s-1", "app=s", false)]);
    let r = w.routing();
    let why = r.registry.workloads[0].not_ready_because.clone();
    assert_eq!(why.as_deref(), Some("Ready condition is False"));
}

#[test]
fn service_entry_endpoints() {
    let w = world(
        r#"
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: vm, namespace: a}
spec:
  hosts: [vm.internal]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 80, name: http, protocol: HTTP}]
  workloadSelector: {labels: {app: vm}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: vm-1, namespace: a}
spec: {address: 10.1.1.1, labels: {app: vm, version: v1}}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: empty, namespace: a}
spec: {hosts: [empty.internal], resolution: STATIC, ports: [{number: 80, name: http, protocol: HTTP}]}
"#,
    );
    let r = w.routing();
    let vm = r.registry.with_host("vm.internal").next().unwrap();
    assert_eq!(
        r.registry.endpoints(vm, &vm.ports[0], None).ready,
        vec!["a/vm-1".to_string()]
    );
    assert!(r
        .registry
        .endpoints(vm, &vm.ports[0], Some(&labels("version=v2")))
        .ready
        .is_empty());
    let empty = r.registry.with_host("empty.internal").next().unwrap();
    let eps = r.registry.endpoints(empty, &empty.ports[0], None);
    assert_eq!((eps.source, eps.ready.len()), (EndpointSource::Inline, 0));
}

#[test]
fn bad_objects_are_reported_and_skipped() {
    let w = world(
        r#"
apiVersion: v1
kind: Service
metadata: {name: bad, namespace: a}
spec: {ports: [{name: http, port: "eighty"}]}
---
apiVersion: v1
kind: Service
metadata: {name: good, namespace: a}
spec: {ports: [{name: http, port: 80}]}
"#,
    );
    let r = w.routing();
    assert_eq!(r.registry.services.len(), 1);
    assert_eq!(r.errors.len(), 1);
    assert!(
        r.errors[0].to_string().contains("Service a/bad"),
        "{}",
        r.errors[0]
    );
    assert!(
        r.errors[0].to_string().contains("spec.ports[0].port"),
        "{}",
        r.errors[0]
    );
}

#[test]
fn a_kubernetes_service_beats_a_service_entry_for_the_same_host_from_1_24() {
    let w = world(
        r#"
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: shadow, namespace: x, creationTimestamp: "2019-01-01T00:00:00Z"}
spec: {hosts: [web.shop.svc.cluster.local], ports: [{number: 80, name: http, protocol: HTTP}], resolution: DNS}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop, creationTimestamp: "2020-01-01T00:00:00Z"}
spec: {selector: {app: web}, ports: [{port: 80, name: http}]}
"#,
    );
    let host = "web.shop.svc.cluster.local";
    for (minor, want) in [(24, "shop"), (23, "x")] {
        let r = w.routing_at(1, minor);
        let got = r.registry.pick(host, "z", &r.opts).unwrap();
        assert_eq!(got.namespace, want, "1.{minor}");
    }
    // Its own namespace's entry always wins for a client there.
    let r = w.routing();
    assert_eq!(r.registry.pick(host, "x", &r.opts).unwrap().namespace, "x");
}
