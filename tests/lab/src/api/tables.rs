//! Server-side printing: `meta.k8s.io/v1` Tables as `kubectl get` asks for
//! them, with the columns a real API server prints for the built-in kinds and
//! `NAME AGE` for everything else (a CRD without additionalPrinterColumns).

use serde_json::{json, Value};

use crate::resources::ResourceType;
use crate::store::{parse_rfc3339, unix_now};

/// `includeObject`: what each row carries besides its cells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IncludeObject {
    None,
    Metadata,
    Object,
}

impl IncludeObject {
    pub fn parse(s: Option<&str>) -> IncludeObject {
        match s {
            Some("None") => IncludeObject::None,
            Some("Object") => IncludeObject::Object,
            _ => IncludeObject::Metadata,
        }
    }
}

struct Col {
    name: &'static str,
    ty: &'static str,
    format: &'static str,
    priority: u8,
    description: &'static str,
}

const fn col(name: &'static str, ty: &'static str, priority: u8, description: &'static str) -> Col {
    Col {
        name,
        ty,
        format: "",
        priority,
        description,
    }
}

const NAME: Col = Col {
    name: "Name",
    ty: "string",
    format: "name",
    priority: 0,
    description: "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names",
};
const AGE_DESC: &str = "CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata";

fn columns(t: &ResourceType) -> Vec<Col> {
    let age = col("Age", "string", 0, AGE_DESC);
    match (t.group, t.kind) {
        ("", "Pod") => vec![
            NAME,
            col("Ready", "string", 0, "The aggregate readiness state of this pod for accepting traffic."),
            col("Status", "string", 0, "The aggregate status of the containers in this pod."),
            col("Restarts", "string", 0, "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted."),
            age,
            col("IP", "string", 1, "IP address allocated to the pod. Routable at least within the cluster. Empty if not yet allocated."),
            col("Node", "string", 1, "NodeName is a request to schedule this pod onto a specific node."),
            col("Nominated Node", "string", 1, "nominatedNodeName is set only when this pod preempts other pods on the node, but it cannot be scheduled right away as preemption victims receive their graceful termination periods."),
            col("Readiness Gates", "string", 1, "If specified, all readiness gates will be evaluated for pod readiness."),
        ],
        ("", "Service") => vec![
            NAME,
            col("Type", "string", 0, "type determines how the Service is exposed."),
            col("Cluster-IP", "string", 0, "clusterIP is the IP address of the service and is usually assigned randomly."),
            col("External-IP", "string", 0, "externalIPs is a list of IP addresses for which nodes in the cluster will also accept traffic for this service."),
            col("Port(s)", "string", 0, "The list of ports that are exposed by this service."),
            age,
            col("Selector", "string", 1, "Route service traffic to pods with label keys and values matching this selector."),
        ],
        ("apps", "Deployment") => vec![
            NAME,
            col("Ready", "string", 0, "Number of the pod with ready state"),
            col("Up-to-date", "integer", 0, "Total number of non-terminated pods targeted by this deployment that have the desired template spec."),
            col("Available", "integer", 0, "Total number of available pods (ready for at least minReadySeconds) targeted by this deployment."),
            age,
            col("Containers", "string", 1, "Names of each container in the template."),
            col("Images", "string", 1, "Images referenced by each container in the template."),
            col("Selector", "string", 1, "Label selector for pods. Existing ReplicaSets whose pods are selected by this will be the ones affected by this deployment."),
        ],
        ("apps", "ReplicaSet") => vec![
            NAME,
            col("Desired", "integer", 0, "Replicas is the number of desired replicas."),
            col("Current", "integer", 0, "Replicas is the most recently observed number of replicas."),
            col("Ready", "integer", 0, "The number of ready replicas for this replica set."),
            age,
            col("Containers", "string", 1, "Names of each container in the template."),
            col("Images", "string", 1, "Images referenced by each container in the template."),
            col("Selector", "string", 1, "Selector is a label query over pods that should match the replica count."),
        ],
        ("", "Namespace") => vec![
            NAME,
            col("Status", "string", 0, "The status of the namespace"),
            age,
        ],
        ("", "Endpoints") => vec![
            NAME,
            col("Endpoints", "string", 0, "Endpoints of the service"),
            age,
        ],
        _ => vec![NAME, age],
    }
}

/// A Table for `objects` of type `t` (a list, or one object for a GET).
pub fn table(
    t: &ResourceType,
    table_version: &str,
    objects: &[Value],
    include: IncludeObject,
    resource_version: Option<String>,
    continue_token: Option<String>,
    with_columns: bool,
) -> Value {
    let cols = columns(t);
    let now = unix_now();
    let rows: Vec<Value> = objects
        .iter()
        .map(|o| {
            let mut row = json!({ "cells": cells(t, o, now) });
            match include {
                IncludeObject::None => {}
                IncludeObject::Object => row["object"] = o.clone(),
                IncludeObject::Metadata => {
                    row["object"] = json!({
                        "kind": "PartialObjectMetadata",
                        "apiVersion": "meta.k8s.io/v1",
                        "metadata": o.get("metadata").cloned().unwrap_or(json!({})),
                    })
                }
            }
            row
        })
        .collect();
    let mut meta = serde_json::Map::new();
    if let Some(rv) = resource_version {
        meta.insert("resourceVersion".into(), json!(rv));
    }
    if let Some(c) = continue_token {
        meta.insert("continue".into(), json!(c));
    }
    let column_defs: Vec<Value> = if with_columns {
        cols.iter()
            .map(|c| {
                json!({"name": c.name, "type": c.ty, "format": c.format,
                       "description": c.description, "priority": c.priority})
            })
            .collect()
    } else {
        Vec::new()
    };
    json!({
        "kind": "Table",
        "apiVersion": format!("meta.k8s.io/{table_version}"),
        "metadata": meta,
        "columnDefinitions": column_defs,
        "rows": rows,
    })
}

fn s<'a>(v: &'a Value, pointer: &str) -> Option<&'a str> {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

fn int(v: &Value, pointer: &str) -> i64 {
    v.pointer(pointer).and_then(Value::as_i64).unwrap_or(0)
}

fn arr<'a>(v: &'a Value, pointer: &str) -> &'a [Value] {
    v.pointer(pointer)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

fn age_of(o: &Value, now: i64) -> String {
    match s(o, "/metadata/creationTimestamp").and_then(parse_rfc3339) {
        Some(t) => human_duration(now - t),
        None => "<unknown>".into(),
    }
}

fn cells(t: &ResourceType, o: &Value, now: i64) -> Vec<Value> {
    let name = s(o, "/metadata/name").unwrap_or_default().to_string();
    let age = age_of(o, now);
    match (t.group, t.kind) {
        ("", "Pod") => pod_cells(o, name, age, now),
        ("", "Service") => service_cells(o, name, age),
        ("apps", "Deployment") => {
            let replicas = o
                .pointer("/spec/replicas")
                .and_then(Value::as_i64)
                .unwrap_or(1);
            let (containers, images) = containers_and_images(o);
            vec![
                json!(name),
                json!(format!("{}/{}", int(o, "/status/readyReplicas"), replicas)),
                json!(int(o, "/status/updatedReplicas")),
                json!(int(o, "/status/availableReplicas")),
                json!(age),
                json!(containers),
                json!(images),
                json!(selector_string(o.pointer("/spec/selector"))),
            ]
        }
        ("apps", "ReplicaSet") => {
            let (containers, images) = containers_and_images(o);
            vec![
                json!(name),
                json!(o
                    .pointer("/spec/replicas")
                    .and_then(Value::as_i64)
                    .unwrap_or(1)),
                json!(int(o, "/status/replicas")),
                json!(int(o, "/status/readyReplicas")),
                json!(age),
                json!(containers),
                json!(images),
                json!(selector_string(o.pointer("/spec/selector"))),
            ]
        }
        ("", "Namespace") => vec![
            json!(name),
            json!(s(o, "/status/phase").unwrap_or("Active")),
            json!(age),
        ],
        ("", "Endpoints") => vec![json!(name), json!(endpoints_string(o)), json!(age)],
        _ => vec![json!(name), json!(age)],
    }
}

fn containers_and_images(o: &Value) -> (String, String) {
    let cs = arr(o, "/spec/template/spec/containers");
    let names: Vec<&str> = cs.iter().filter_map(|c| s(c, "/name")).collect();
    let images: Vec<&str> = cs.iter().filter_map(|c| s(c, "/image")).collect();
    (names.join(","), images.join(","))
}

fn selector_string(sel: Option<&Value>) -> String {
    let Some(sel) = sel else {
        return "<none>".into();
    };
    let mut parts = Vec::new();
    if let Some(ml) = sel.get("matchLabels").and_then(Value::as_object) {
        for (k, v) in ml {
            parts.push(format!("{k}={}", v.as_str().unwrap_or_default()));
        }
    }
    for e in sel
        .get("matchExpressions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let key = s(e, "/key").unwrap_or_default();
        let vals: Vec<&str> = arr(e, "/values").iter().filter_map(Value::as_str).collect();
        match s(e, "/operator").unwrap_or_default() {
            "In" => parts.push(format!("{key} in ({})", vals.join(","))),
            "NotIn" => parts.push(format!("{key} notin ({})", vals.join(","))),
            "Exists" => parts.push(key.to_string()),
            "DoesNotExist" => parts.push(format!("!{key}")),
            _ => {}
        }
    }
    if parts.is_empty() {
        "<none>".into()
    } else {
        parts.join(",")
    }
}

fn service_cells(o: &Value, name: String, age: String) -> Vec<Value> {
    let ty = s(o, "/spec/type").unwrap_or("ClusterIP");
    let cluster_ip = s(o, "/spec/clusterIP").unwrap_or("<none>");
    let external_ips: Vec<&str> = arr(o, "/spec/externalIPs")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let lb_ips: Vec<&str> = arr(o, "/status/loadBalancer/ingress")
        .iter()
        .filter_map(|i| s(i, "/ip").or_else(|| s(i, "/hostname")))
        .collect();
    let external = match ty {
        "ExternalName" => s(o, "/spec/externalName").unwrap_or("<none>").to_string(),
        "LoadBalancer" => {
            let mut all: Vec<&str> = lb_ips.clone();
            all.extend(external_ips.iter());
            if all.is_empty() {
                "<pending>".into()
            } else {
                all.join(",")
            }
        }
        _ if !external_ips.is_empty() => external_ips.join(","),
        _ => "<none>".into(),
    };
    let ports: Vec<String> = arr(o, "/spec/ports")
        .iter()
        .map(|p| {
            let port = int(p, "/port");
            let proto = s(p, "/protocol").unwrap_or("TCP");
            match p.pointer("/nodePort").and_then(Value::as_i64) {
                Some(np) if np != 0 => format!("{port}:{np}/{proto}"),
                _ => format!("{port}/{proto}"),
            }
        })
        .collect();
    let selector = o
        .pointer("/spec/selector")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                .collect::<Vec<_>>()
                .join(",")
        })
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "<none>".into());
    vec![
        json!(name),
        json!(ty),
        json!(cluster_ip),
        json!(external),
        json!(if ports.is_empty() {
            "<none>".to_string()
        } else {
            ports.join(",")
        }),
        json!(age),
        json!(selector),
    ]
}

fn endpoints_string(o: &Value) -> String {
    let mut out = Vec::new();
    let mut total = 0;
    for subset in arr(o, "/subsets") {
        let ports: Vec<i64> = arr(subset, "/ports")
            .iter()
            .map(|p| int(p, "/port"))
            .collect();
        for a in arr(subset, "/addresses") {
            let ip = s(a, "/ip").unwrap_or_default();
            if ports.is_empty() {
                total += 1;
                out.push(ip.to_string());
            }
            for p in &ports {
                total += 1;
                out.push(format!("{ip}:{p}"));
            }
        }
    }
    if out.is_empty() {
        return "<none>".into();
    }
    if total > 3 {
        format!("{} + {} more...", out[..3].join(","), total - 3)
    } else {
        out.join(",")
    }
}

fn pod_cells(o: &Value, name: String, age: String, now: i64) -> Vec<Value> {
    // Restartable init containers (native sidecars, Kubernetes ≥ 1.29) count
    // in READY like regular containers (kubernetes/kubernetes
    // pkg/printers/internalversion/printers.go `printPod`).
    let sidecars: Vec<&str> = arr(o, "/spec/initContainers")
        .iter()
        .filter(|c| s(c, "/restartPolicy") == Some("Always"))
        .filter_map(|c| s(c, "/name"))
        .collect();
    let total = arr(o, "/spec/containers").len() + sidecars.len();
    let mut restarts = 0i64;
    let mut last_restart: Option<i64> = None;
    let mut ready = 0;
    let mut reason = s(o, "/status/phase").unwrap_or("Pending").to_string();
    if let Some(r) = s(o, "/status/reason") {
        reason = r.to_string();
    }
    let note_restart = |c: &Value, last: &mut Option<i64>| {
        if let Some(t) = s(c, "/lastState/terminated/finishedAt").and_then(parse_rfc3339) {
            *last = Some(last.map_or(t, |l: i64| l.max(t)));
        }
    };
    let init_statuses = arr(o, "/status/initContainerStatuses");
    let init_total = arr(o, "/spec/initContainers").len();
    let mut initializing = false;
    for (i, c) in init_statuses.iter().enumerate() {
        restarts += int(c, "/restartCount");
        note_restart(c, &mut last_restart);
        if c.pointer("/state/terminated").is_some() && int(c, "/state/terminated/exitCode") == 0 {
            continue;
        }
        if s(c, "/name").is_some_and(|n| sidecars.contains(&n))
            && c.pointer("/started").and_then(Value::as_bool) == Some(true)
        {
            // A restartable (sidecar) init container that is up.
            if c.pointer("/ready").and_then(Value::as_bool) == Some(true) {
                ready += 1;
            }
            continue;
        }
        if let Some(term) = c.pointer("/state/terminated") {
            reason = match s(term, "/reason") {
                Some(r) => format!("Init:{r}"),
                None => match int(term, "/signal") {
                    0 => format!("Init:ExitCode:{}", int(term, "/exitCode")),
                    sig => format!("Init:Signal:{sig}"),
                },
            };
        } else if let Some(r) = s(c, "/state/waiting/reason").filter(|r| *r != "PodInitializing") {
            reason = format!("Init:{r}");
        } else {
            reason = format!("Init:{i}/{init_total}");
        }
        initializing = true;
        break;
    }
    if !initializing {
        let mut has_running = false;
        for c in arr(o, "/status/containerStatuses").iter().rev() {
            restarts += int(c, "/restartCount");
            note_restart(c, &mut last_restart);
            if let Some(r) = s(c, "/state/waiting/reason") {
                reason = r.to_string();
            } else if let Some(term) = c.pointer("/state/terminated") {
                reason = match s(term, "/reason") {
                    Some(r) => r.to_string(),
                    None => match int(term, "/signal") {
                        0 => format!("ExitCode:{}", int(term, "/exitCode")),
                        sig => format!("Signal:{sig}"),
                    },
                };
            } else if c.pointer("/ready").and_then(Value::as_bool) == Some(true)
                && c.pointer("/state/running").is_some()
            {
                has_running = true;
                ready += 1;
            }
        }
        if reason == "Completed" && has_running {
            let pod_ready = arr(o, "/status/conditions")
                .iter()
                .any(|c| s(c, "/type") == Some("Ready") && s(c, "/status") == Some("True"));
            reason = if pod_ready { "Running" } else { "NotReady" }.into();
        }
    }
    if o.pointer("/metadata/deletionTimestamp").is_some() {
        reason = if s(o, "/status/reason") == Some("NodeLost") {
            "Unknown".into()
        } else {
            "Terminating".into()
        };
    }
    let restarts_cell = match last_restart {
        Some(t) if restarts > 0 => format!("{restarts} ({} ago)", human_duration(now - t)),
        _ => restarts.to_string(),
    };
    let gates = arr(o, "/spec/readinessGates");
    let gates_cell = if gates.is_empty() {
        "<none>".to_string()
    } else {
        let conds = arr(o, "/status/conditions");
        let true_gates = gates
            .iter()
            .filter(|g| {
                let ty = s(g, "/conditionType");
                conds
                    .iter()
                    .any(|c| s(c, "/type") == ty && s(c, "/status") == Some("True"))
            })
            .count();
        format!("{true_gates}/{}", gates.len())
    };
    vec![
        json!(name),
        json!(format!("{ready}/{total}")),
        json!(reason),
        json!(restarts_cell),
        json!(age),
        json!(s(o, "/status/podIP").unwrap_or("<none>")),
        json!(s(o, "/spec/nodeName").unwrap_or("<none>")),
        json!(s(o, "/status/nominatedNodeName").unwrap_or("<none>")),
        json!(gates_cell),
    ]
}

/// Kubernetes' `duration.HumanDuration` for a number of seconds.
pub fn human_duration(secs: i64) -> String {
    if secs < -1 {
        return "<invalid>".into();
    }
    if secs < 0 {
        return "0s".into();
    }
    if secs < 120 {
        return format!("{secs}s");
    }
    let minutes = secs / 60;
    if minutes < 10 {
        let s = secs % 60;
        return if s == 0 {
            format!("{minutes}m")
        } else {
            format!("{minutes}m{s}s")
        };
    }
    if minutes < 180 {
        return format!("{minutes}m");
    }
    let hours = secs / 3600;
    if hours < 8 {
        let m = minutes % 60;
        return if m == 0 {
            format!("{hours}h")
        } else {
            format!("{hours}h{m}m")
        };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    if hours < 24 * 8 {
        let h = hours % 24;
        return if h == 0 {
            format!("{}d", hours / 24)
        } else {
            format!("{}d{h}h", hours / 24)
        };
    }
    if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    }
    if hours < 24 * 365 * 8 {
        let dy = (hours / 24) % 365;
        return if dy == 0 {
            format!("{}y", hours / 24 / 365)
        } else {
            format!("{}y{dy}d", hours / 24 / 365)
        };
    }
    format!("{}y", hours / 24 / 365)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::Registry;
    use crate::store::rfc3339;

    #[test]
    fn human_durations() {
        assert_eq!(human_duration(5), "5s");
        assert_eq!(human_duration(119), "119s");
        assert_eq!(human_duration(125), "2m5s");
        assert_eq!(human_duration(600), "10m");
        assert_eq!(human_duration(3 * 3600 + 60), "3h1m");
        assert_eq!(human_duration(30 * 3600), "30h");
        assert_eq!(human_duration(3 * 86400 + 7200), "3d2h");
        assert_eq!(human_duration(100 * 86400), "100d");
        assert_eq!(human_duration(-5), "<invalid>");
    }

    #[test]
    fn pod_rows() {
        let r = Registry::for_istio(24);
        let t = r.by_kind("", "Pod").unwrap();
        let created = rfc3339(unix_now() - 300);
        let finished = rfc3339(unix_now() - 60);
        let pod = json!({
            "metadata": {"name": "httpbin-1", "namespace": "foo", "creationTimestamp": created},
            "spec": {"nodeName": "lab", "containers": [{"name": "app"}, {"name": "istio-proxy"}]},
            "status": {"phase": "Running", "podIP": "127.10.0.4",
                "containerStatuses": [
                    {"name": "app", "ready": true, "restartCount": 2, "state": {"running": {}},
                     "lastState": {"terminated": {"finishedAt": finished}}},
                    {"name": "istio-proxy", "ready": false, "restartCount": 0, "state": {"running": {}}}
                ]}
        });
        let tbl = table(
            t,
            "v1",
            &[pod],
            IncludeObject::Metadata,
            Some("7".into()),
            None,
            true,
        );
        let cells = &tbl["rows"][0]["cells"];
        assert_eq!(
            cells,
            &json!([
                "httpbin-1",
                "1/2",
                "Running",
                "2 (60s ago)",
                "5m",
                "127.10.0.4",
                "lab",
                "<none>",
                "<none>"
            ])
        );
        assert_eq!(tbl["columnDefinitions"].as_array().unwrap().len(), 9);
        assert_eq!(tbl["columnDefinitions"][5]["priority"], 1);
        assert_eq!(tbl["rows"][0]["object"]["kind"], "PartialObjectMetadata");
        assert_eq!(tbl["rows"][0]["object"]["metadata"]["namespace"], "foo");

        let crash = json!({"metadata": {"name": "c"}, "spec": {"containers": [{"name": "a"}]},
            "status": {"phase": "Running", "containerStatuses": [
                {"name": "a", "ready": false, "restartCount": 4,
                 "state": {"waiting": {"reason": "CrashLoopBackOff"}}}]}});
        let tbl = table(t, "v1", &[crash], IncludeObject::None, None, None, true);
        assert_eq!(tbl["rows"][0]["cells"][2], "CrashLoopBackOff");
        assert_eq!(tbl["rows"][0]["cells"][3], "4");
        assert!(tbl["rows"][0].get("object").is_none());
        // A native sidecar (restartable init container) counts in READY.
        let native = json!({"metadata": {"name": "n"},
            "spec": {"containers": [{"name": "app"}], "initContainers": [{"name": "istio-init"},
                {"name": "istio-proxy", "restartPolicy": "Always"}]},
            "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}],
                "initContainerStatuses": [
                    {"name": "istio-init", "ready": false, "restartCount": 0,
                     "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}},
                    {"name": "istio-proxy", "ready": true, "started": true, "restartCount": 0, "state": {"running": {}}}],
                "containerStatuses": [{"name": "app", "ready": true, "restartCount": 0, "state": {"running": {}}}]}});
        let tbl = table(t, "v1", &[native], IncludeObject::None, None, None, false);
        assert_eq!(tbl["rows"][0]["cells"][1], "2/2");
        assert_eq!(tbl["rows"][0]["cells"][2], "Running");
    }

    #[test]
    fn service_and_deployment_rows() {
        let r = Registry::for_istio(24);
        let svc = json!({"metadata": {"name": "httpbin"}, "spec": {"type": "ClusterIP",
            "clusterIP": "10.96.0.10", "selector": {"app": "httpbin"},
            "ports": [{"port": 8000, "protocol": "TCP"}, {"port": 9000, "nodePort": 30900}]}});
        let tbl = table(
            r.by_kind("", "Service").unwrap(),
            "v1",
            &[svc],
            IncludeObject::None,
            None,
            None,
            true,
        );
        let cells = tbl["rows"][0]["cells"].as_array().unwrap();
        assert_eq!(
            cells[1..4],
            [json!("ClusterIP"), json!("10.96.0.10"), json!("<none>")]
        );
        assert_eq!(cells[4], "8000/TCP,9000:30900/TCP");
        assert_eq!(cells[6], "app=httpbin");
        let dep = json!({"metadata": {"name": "httpbin"}, "spec": {"replicas": 2,
            "selector": {"matchLabels": {"app": "httpbin"}},
            "template": {"spec": {"containers": [{"name": "httpbin", "image": "kennethreitz/httpbin"}]}}},
            "status": {"readyReplicas": 1, "updatedReplicas": 2, "availableReplicas": 1}});
        let tbl = table(
            r.by_kind("apps", "Deployment").unwrap(),
            "v1",
            &[dep],
            IncludeObject::None,
            None,
            None,
            true,
        );
        let cells = tbl["rows"][0]["cells"].as_array().unwrap();
        assert_eq!(cells[1..4], [json!("1/2"), json!(2), json!(1)]);
        let dr = r.by_kind("networking.istio.io", "DestinationRule").unwrap();
        let tbl = table(
            dr,
            "v1",
            &[json!({"metadata": {"name": "x"}})],
            IncludeObject::None,
            None,
            None,
            true,
        );
        let names: Vec<&str> = tbl["columnDefinitions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, vec!["Name", "Age"]);
    }
}
