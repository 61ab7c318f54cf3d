//! The EndpointSlice and Endpoints controllers' part of the lab's control
//! plane: what a Service with a selector gets.
//!
//! kubernetes/kubernetes `pkg/controller/endpointslice` (`getEndpointPorts`,
//! `podutil.FindPort`): each Service port's `targetPort` is resolved *per
//! pod* (a named port by that pod's container port of that name); a pod
//! where a named port does not resolve has no entry for that port; pods
//! with the same resolved ports share a slice, so pods that expose a named
//! port on different numbers end up in different slices. The Endpoints
//! object has one subset per such group.

use crate::controller::{fnv, pod_ready, safe_suffix, NODE};
use serde_json::{json, Map, Value};

/// A Service port's target port on a pod: a number, a numeric string, or
/// the pod's container port of that name (None when the pod has none).
/// Without a pod (no endpoints) a named port stays unresolved and the
/// Service port stands in, as before any pod exists.
pub fn target_port(service_port: &Value, pod: Option<&Value>) -> Option<u64> {
    let tp = &service_port["targetPort"];
    if let Some(n) = tp.as_u64() {
        return Some(n);
    }
    let Some(s) = tp.as_str() else {
        return service_port["port"].as_u64();
    };
    if let Ok(n) = s.parse() {
        return Some(n);
    }
    let Some(pod) = pod else {
        return service_port["port"].as_u64();
    };
    pod["spec"]["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|c| c["ports"].as_array().into_iter().flatten())
        .find(|p| p["name"].as_str() == Some(s))
        .and_then(|p| p["containerPort"].as_u64())
}

/// The slice `ports` for one pod (or none).
fn ports_for(svc: &Value, pod: Option<&Value>) -> Vec<Value> {
    svc["spec"]["ports"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|sp| {
            let port = target_port(sp, pod)?;
            let mut p = json!({"name": sp["name"].as_str().unwrap_or(""), "port": port,
                "protocol": sp["protocol"].clone(), "appProtocol": sp["appProtocol"].clone()});
            if let Some(m) = p.as_object_mut() {
                m.retain(|_, v| !v.is_null());
            }
            Some(p)
        })
        .collect()
}

fn name_of(o: &Value) -> &str {
    o["metadata"]["name"].as_str().unwrap_or("")
}

/// EndpointSlices (one per group of pods with the same resolved ports) and
/// the Endpoints object of a Service with a selector; `backing` are the
/// pods it selects.
pub fn build(svc: &Value, backing: &[&Value]) -> Vec<Value> {
    let ns = svc["metadata"]["namespace"].as_str().unwrap_or("default");
    let sname = name_of(svc);
    // (ports, pods) groups in pod order.
    let mut groups: Vec<(Vec<Value>, Vec<&Value>)> = Vec::new();
    for p in backing {
        let ports = ports_for(svc, Some(p));
        match groups.iter_mut().find(|(ps, _)| *ps == ports) {
            Some((_, pods)) => pods.push(p),
            None => groups.push((ports, vec![p])),
        }
    }
    if groups.is_empty() {
        groups.push((ports_for(svc, None), Vec::new()));
    }
    let mut out = Vec::new();
    let mut subsets = Vec::new();
    for (i, (ports, pods)) in groups.iter().enumerate() {
        let seed = if i == 0 {
            format!("{ns}/{sname}")
        } else {
            format!("{ns}/{sname}/{i}")
        };
        let eps: Vec<Value> = pods
            .iter()
            .map(|p| {
                let ready = pod_ready(p);
                json!({"addresses": [p["status"]["podIP"].clone()],
                    "conditions": {"ready": ready, "serving": ready, "terminating": false},
                    "nodeName": NODE,
                    "targetRef": {"kind": "Pod", "namespace": ns, "name": name_of(p),
                        "uid": p["metadata"]["uid"].clone()}})
            })
            .collect();
        out.push(json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": format!("{sname}-{}", safe_suffix(fnv(&seed), 5)), "namespace": ns,
                "generateName": format!("{sname}-"),
                "labels": {"kubernetes.io/service-name": sname,
                    "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"},
                "ownerReferences": [{"apiVersion": "v1", "kind": "Service", "name": sname,
                    "uid": svc["metadata"]["uid"].clone(), "controller": true, "blockOwnerDeletion": true}]},
            "addressType": "IPv4", "endpoints": eps, "ports": ports}));
        if let Some(subset) = endpoints_subset(ns, ports, pods) {
            subsets.push(subset);
        }
    }
    out.push(json!({"apiVersion": "v1", "kind": "Endpoints",
        "metadata": {"name": sname, "namespace": ns}, "subsets": subsets}));
    out
}

/// One `subsets` entry of the v1 Endpoints object (None without pods).
fn endpoints_subset(ns: &str, ports: &[Value], pods: &[&Value]) -> Option<Value> {
    let addr = |p: &&Value| {
        json!({"ip": p["status"]["podIP"].clone(), "nodeName": NODE,
            "targetRef": {"kind": "Pod", "namespace": ns, "name": name_of(p), "uid": p["metadata"]["uid"].clone()}})
    };
    let (ready, not_ready): (Vec<&&Value>, Vec<&&Value>) = pods.iter().partition(|p| pod_ready(p));
    let mut subset = Map::new();
    if !ready.is_empty() {
        subset.insert("addresses".into(), ready.into_iter().map(addr).collect());
    }
    if !not_ready.is_empty() {
        subset.insert(
            "notReadyAddresses".into(),
            not_ready.into_iter().map(addr).collect(),
        );
    }
    if subset.is_empty() {
        return None;
    }
    let ports: Vec<Value> = ports
        .iter()
        .map(|p| {
            let mut p = p.clone();
            if p["name"] == "" {
                if let Some(m) = p.as_object_mut() {
                    m.remove("name");
                }
            }
            p
        })
        .collect();
    subset.insert("ports".into(), Value::Array(ports));
    Some(Value::Object(subset))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(name: &str, ip: &str, web: u64) -> Value {
        json!({"metadata": {"name": name, "uid": name}, "status": {"podIP": ip,
               "conditions": [{"type": "Ready", "status": "True"}]},
               "spec": {"containers": [{"name": "app", "ports": [{"name": "web", "containerPort": web}]}]}})
    }

    #[test]
    fn named_target_ports_resolve_per_pod_into_separate_slices() {
        let svc = json!({"metadata": {"name": "web", "namespace": "foo", "uid": "u"},
                         "spec": {"ports": [{"name": "http", "port": 80, "targetPort": "web", "protocol": "TCP"}]}});
        let (a, b, c) = (
            pod("a", "127.10.0.4", 8080),
            pod("b", "127.10.0.8", 9090),
            pod("c", "127.10.0.12", 8080),
        );
        let out = build(&svc, &[&a, &b, &c]);
        let slices: Vec<&Value> = out
            .iter()
            .filter(|o| o["kind"] == "EndpointSlice")
            .collect();
        assert_eq!(slices.len(), 2);
        assert_eq!(slices[0]["ports"][0]["port"], 8080);
        assert_eq!(slices[0]["endpoints"].as_array().unwrap().len(), 2);
        assert_eq!(slices[1]["ports"][0]["port"], 9090);
        assert_ne!(slices[0]["metadata"]["name"], slices[1]["metadata"]["name"]);
        let eps = out.iter().find(|o| o["kind"] == "Endpoints").unwrap();
        assert_eq!(eps["subsets"].as_array().unwrap().len(), 2);
        // A pod without the named port has no entry for it.
        let mut d = pod("d", "127.10.0.16", 8080);
        d["spec"]["containers"][0]["ports"][0]["name"] = json!("other");
        let out = build(&svc, &[&d]);
        assert_eq!(out[0]["ports"], json!([]));
    }
}
