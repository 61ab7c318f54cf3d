//! Analysis time of `kubectl mesh503 scan -A` on a generated mesh: N
//! namespaces of 10 Services each (a pod with a sidecar and a ready
//! EndpointSlice per Service), STRICT mesh-wide, and one Service in ten
//! broken by a `tls.mode: DISABLE` DestinationRule. Collection is one list
//! per kind whatever the size (src/collect/scan.rs), so this is the part
//! that grows with the mesh.
//!
//!     cargo bench --bench scan             # 20 namespaces (200 Services)
//!     cargo bench --bench scan -- 100      # 100 namespaces (1000 Services)
//!
//! Not a test: it prints numbers and asserts only that the broken Services
//! are the ones listed.

use kubectl_mesh503::analyze::scan::{config_rules, scan, scan_mesh};
use kubectl_mesh503::model::Mesh;
use kubectl_mesh503::snapshot::{ObjectRef, ResolvedTarget, RouteLookups, Snapshot, SCHEMA};
use serde_json::{json, Value};
use std::time::Instant;

fn objects(namespaces: usize) -> (Vec<Value>, Vec<ObjectRef>) {
    let mut out = vec![
        json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "istio", "namespace": "istio-system"},
            "data": {"mesh": "accessLogFile: /dev/stdout"}}),
        json!({"apiVersion": "security.istio.io/v1", "kind": "PeerAuthentication",
            "metadata": {"name": "default", "namespace": "istio-system"},
            "spec": {"mtls": {"mode": "STRICT"}}}),
    ];
    let mut refs = Vec::new();
    let mut ip = 0u32;
    for n in 0..namespaces {
        let ns = format!("ns{n}");
        out.push(json!({"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": ns, "labels": {"istio-injection": "enabled"}}}));
        for s in 0..10 {
            let name = format!("svc{s}");
            ip += 1;
            let addr = format!("10.{}.{}.{}", ip >> 16, (ip >> 8) & 255, ip & 255);
            out.push(json!({"apiVersion": "v1", "kind": "Service",
                "metadata": {"name": name, "namespace": ns},
                "spec": {"selector": {"app": name}, "clusterIP": "10.96.0.1",
                    "ports": [{"name": "http", "port": 80, "targetPort": 8080}]}}));
            out.push(json!({"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": format!("{name}-1"), "namespace": ns,
                    "labels": {"app": name, "security.istio.io/tlsMode": "istio"}},
                "spec": {"containers": [
                    {"name": "app", "ports": [{"containerPort": 8080}]},
                    {"name": "istio-proxy", "image": "docker.io/istio/proxyv2:1.24.0"}]},
                "status": {"phase": "Running", "podIP": addr,
                    "conditions": [{"type": "Ready", "status": "True"}]}}));
            out.push(
                json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                "metadata": {"name": format!("{name}-abc"), "namespace": ns,
                    "labels": {"kubernetes.io/service-name": name}},
                "addressType": "IPv4",
                "endpoints": [{"addresses": [addr], "conditions": {"ready": true},
                    "targetRef": {"kind": "Pod", "name": format!("{name}-1"), "namespace": ns}}],
                "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]}),
            );
            if s == 0 && std::env::var_os("NO_BROKEN").is_none() {
                out.push(
                    json!({"apiVersion": "networking.istio.io/v1", "kind": "DestinationRule",
                    "metadata": {"name": name, "namespace": ns},
                    "spec": {"host": name, "trafficPolicy": {"tls": {"mode": "DISABLE"}}}}),
                );
            }
            refs.push(ObjectRef {
                namespace: ns.clone(),
                name,
            });
        }
    }
    (out, refs)
}

fn main() {
    let namespaces: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(20);
    let (objects, found) = objects(namespaces);
    let snap = Snapshot {
        schema: SCHEMA.to_string(),
        target: "scan -A".into(),
        namespace: "default".into(),
        istio_namespace: "istio-system".into(),
        objects,
        resolved: Some(ResolvedTarget {
            namespace: "default".into(),
            cluster_domain: "cluster.local".into(),
            cluster_domain_source: "default".into(),
            routes: Some(RouteLookups {
                found,
                ..RouteLookups::default()
            }),
            ..ResolvedTarget::default()
        }),
        ..Snapshot::default()
    };
    let t = Instant::now();
    let r = scan(&snap, None);
    let took = t.elapsed();
    assert_eq!(r.services_scanned, namespaces * 10);
    if std::env::var_os("NO_BROKEN").is_none() {
        assert_eq!(
            r.services.len(),
            namespaces,
            "one broken Service per namespace"
        );
    }
    assert!(r.services.iter().all(|s| s.service.ends_with("/svc0")));
    println!(
        "scan -A analysis, {} Services in {namespaces} namespaces ({} broken): {:.3}s",
        r.services_scanned,
        r.services.len(),
        took.as_secs_f64()
    );
    // Where the time goes: each rule alone over every Service.
    let t = Instant::now();
    let mut mesh = Mesh::from_snapshot(&snap);
    println!("  model built: {:.3}s", t.elapsed().as_secs_f64());
    for d in config_rules() {
        let t = Instant::now();
        scan_mesh(&mut mesh, None, std::iter::once(d));
        println!("  {:<28} {:.3}s", d.id, t.elapsed().as_secs_f64());
    }
}
