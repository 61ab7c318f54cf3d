//! Unit tests of istio::routing, table-driven, each with near misses,
//! written from istio/istio's sources (cited in the modules under test).
//!
//! Place in the flow: test-only. Inputs are Kubernetes YAML (one `World`
//! per case) so they read like the objects users write.

mod callers;
mod delegate;
mod destinations;
mod explain;
mod fixtures;
mod gateway;
mod registry;
mod routes;
mod sidecar;
mod virtual_service;

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{json, Value};

use super::query::{Client, RouteView, Routing, RoutingInput};
use super::RoutingOptions;
use crate::istio::destination_rule::DestinationRule;
use crate::istio::mesh_config::IstioVersion;

/// The objects of one test case, sorted by kind.
#[derive(Default)]
pub(super) struct World {
    services: Vec<Value>,
    service_entries: Vec<Value>,
    pods: Vec<Value>,
    workload_entries: Vec<Value>,
    virtual_services: Vec<Value>,
    gateways: Vec<Value>,
    sidecars: Vec<Value>,
    destination_rules: Vec<DestinationRule>,
}

/// Parse multi-document YAML into a world (panics on bad test input).
pub(super) fn world(yaml: &str) -> World {
    let mut w = World::default();
    for doc in serde_yaml::Deserializer::from_str(yaml) {
        let v = Value::deserialize(doc).expect("test YAML");
        if v.is_null() {
            continue;
        }
        w.add(v);
    }
    w
}

impl World {
    fn add(&mut self, v: Value) {
        match v["kind"].as_str().unwrap_or("") {
            "Service" => self.services.push(v),
            "ServiceEntry" => self.service_entries.push(v),
            "Pod" => self.pods.push(v),
            "WorkloadEntry" => self.workload_entries.push(v),
            "VirtualService" => self.virtual_services.push(v),
            "Gateway" => self.gateways.push(v),
            "Sidecar" => self.sidecars.push(v),
            "DestinationRule" => self.destination_rules.push(
                DestinationRule::from_value_with_domain(&v, "cluster.local").expect("test DR"),
            ),
            other => panic!("test world: unexpected kind {other}"),
        }
    }

    /// Add pods: `(namespace, name, "k=v,k2=v2", ready)`.
    pub(super) fn pods(mut self, list: &[(&str, &str, &str, bool)]) -> World {
        for (ns, name, labels, ready) in list {
            self.pods.push(pod(ns, name, labels, *ready));
        }
        self
    }

    pub(super) fn routing(&self) -> Routing {
        self.routing_with(RoutingOptions::default())
    }

    pub(super) fn routing_at(&self, major: u32, minor: u32) -> Routing {
        self.routing_with(RoutingOptions {
            version: Some(IstioVersion::new(major, minor, Some(0))),
            ..RoutingOptions::default()
        })
    }

    pub(super) fn routing_with(&self, opts: RoutingOptions) -> Routing {
        Routing::new(
            RoutingInput {
                services: &refs(&self.services),
                service_entries: &refs(&self.service_entries),
                pods: &refs(&self.pods),
                workload_entries: &refs(&self.workload_entries),
                virtual_services: &refs(&self.virtual_services),
                gateways: &refs(&self.gateways),
                sidecars: &refs(&self.sidecars),
                destination_rules: &self.destination_rules,
            },
            opts,
        )
    }
}

/// `"app=a,version=v1"` → labels.
pub(super) fn labels(s: &str) -> BTreeMap<String, String> {
    s.split(',')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').expect("k=v");
            (k.to_string(), v.to_string())
        })
        .collect()
}

/// A running pod with an IP; `ready` sets its Ready condition.
pub(super) fn pod(ns: &str, name: &str, l: &str, ready: bool) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": ns, "labels": labels(l)},
        "spec": {"containers": [{"name": "app", "ports": [{"name": "http-web", "containerPort": 8080}]},
                                {"name": "istio-proxy"}]},
        "status": {"phase": "Running", "podIP": "10.0.0.1",
                   "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}]}
    })
}

/// The sidecar view of a client without labels in `ns`.
pub(super) fn view(r: &Routing, ns: &str, host: &str, port: u32) -> RouteView {
    view_l(r, ns, "", host, port)
}

/// The sidecar view of a client in `ns` with labels `l`.
pub(super) fn view_l(r: &Routing, ns: &str, l: &str, host: &str, port: u32) -> RouteView {
    let lab = labels(l);
    r.routes_for(
        Client {
            namespace: ns,
            labels: &lab,
        },
        host,
        port,
    )
}

/// The applied VirtualService's `ns/name`, if any.
pub(super) fn winner(v: &RouteView) -> Option<&str> {
    v.virtual_service.as_ref().map(|(k, _)| k.as_str())
}

/// A plain ClusterIP service `name` in `ns` with one HTTP port and `app=<name>` selector.
pub(super) const HTTP_SVC: &str = r#"
apiVersion: v1
kind: Service
metadata: {name: NAME, namespace: NS, creationTimestamp: "2020-01-01T00:00:00Z"}
spec:
  selector: {app: NAME}
  ports: [{name: http, port: PORT, targetPort: 8080}]
"#;

/// [`HTTP_SVC`] filled in.
pub(super) fn http_svc(ns: &str, name: &str, port: u32) -> String {
    HTTP_SVC
        .replace("NAME", name)
        .replace("NS", ns)
        .replace("PORT", &port.to_string())
}

fn refs(v: &[Value]) -> Vec<&Value> {
    v.iter().collect()
}
