//! The lab's stand-in for kube-controller-manager, the scheduler, the kubelet
//! and Istio's sidecar injector: it turns what a scenario declares
//! (Deployments, bare Pods, Services) into what a cluster would show
//! (ReplicaSets, running Pods with IPs, EndpointSlices and Endpoints).
//!
//! [`Controller::reconcile`] is pure apart from the controller's memory of
//! which pod got which address, so tests can call it on a list of objects.

use crate::net::PodAddrs;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// A pod with its labels read once.
type LabelledPod<'a> = (&'a Value, BTreeMap<String, String>);

/// Annotation prefix for lab-only behaviour (see tests/lab/README.md).
pub const LAB_PREFIX: &str = "lab.mesh503.io/";
/// Node name every pod is "scheduled" on.
pub const NODE: &str = crate::injector::NODE;

/// Identity of an object in the store.
pub type Key = (String, String, String, String); // (apiVersion group, kind, namespace, name)

pub fn key_of(obj: &Value) -> Key {
    let api = obj["apiVersion"].as_str().unwrap_or("");
    let group = api.rsplit_once('/').map(|(g, _)| g).unwrap_or("");
    (
        group.to_string(),
        obj["kind"].as_str().unwrap_or("").to_string(),
        obj["metadata"]["namespace"]
            .as_str()
            .unwrap_or("")
            .to_string(),
        obj["metadata"]["name"].as_str().unwrap_or("").to_string(),
    )
}

/// What one reconcile wants: objects to write (create or replace) and keys to delete.
#[derive(Debug, Default)]
pub struct Changes {
    pub apply: Vec<Value>,
    pub delete: Vec<Key>,
}

#[derive(Debug, Default)]
pub struct Controller {
    /// Pod (namespace, name) → address block index, stable for the pod's life.
    addresses: HashMap<(String, String), u32>,
    next_index: u32,
    /// Keys of objects this controller created (so it can delete them later).
    owned: BTreeSet<Key>,
    /// Second octet of this lab's pod addresses (see `net::SlotLock`).
    slot: u8,
    /// Containers whose process exited (set by the lab before reconciling).
    pub exited: crate::exits::Exits,
}

fn labels(obj: &Value, path: &[&str]) -> BTreeMap<String, String> {
    let mut v = obj;
    for p in path {
        v = &v[*p];
    }
    v.as_object()
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

fn ns_of(obj: &Value) -> &str {
    obj["metadata"]["namespace"].as_str().unwrap_or("default")
}

fn name_of(obj: &Value) -> &str {
    obj["metadata"]["name"].as_str().unwrap_or("")
}

fn is(obj: &Value, api_version: &str, kind: &str) -> bool {
    obj["apiVersion"].as_str() == Some(api_version) && obj["kind"].as_str() == Some(kind)
}

/// `selector ⊆ labels` (an empty selector selects nothing, like a Service without selector).
pub fn selects(selector: &BTreeMap<String, String>, labels: &BTreeMap<String, String>) -> bool {
    !selector.is_empty() && selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

/// FNV-1a, for deterministic ReplicaSet hashes and pod name suffixes.
pub(crate) fn fnv(data: &str) -> u64 {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in data.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    h
}

/// Kubernetes' "safe" alphabet for generated names (no vowels, no 0/1/3).
pub(crate) fn safe_suffix(mut n: u64, len: usize) -> String {
    const ALPHA: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut s = String::new();
    for _ in 0..len {
        s.push(ALPHA[(n % ALPHA.len() as u64) as usize] as char);
        n /= ALPHA.len() as u64;
    }
    s
}

/// The Istio minor version the scenario models, as the istiod model reads it
/// (`istiod::world::istio_version_of`).
pub fn istio_minor(objects: &[Value]) -> u32 {
    crate::istiod::world::istio_version_of(objects).1
}

/// Would Istio's injector add a sidecar to this pod template?
/// Mirrors istio/istio pkg/kube/inject/webhook.go `injectRequired`: the pod's
/// `sidecar.istio.io/inject` (annotation, or label from 1.10 on) decides when
/// set; otherwise the namespace label `istio-injection=enabled` (or an
/// `istio.io/rev` label) does. Host-network pods are never injected.
pub fn injection_wanted(
    pod_meta: &Value,
    pod_spec: &Value,
    namespace_labels: &BTreeMap<String, String>,
) -> bool {
    if pod_spec["hostNetwork"].as_bool() == Some(true) {
        return false;
    }
    let explicit = pod_meta["labels"]["sidecar.istio.io/inject"]
        .as_str()
        .or_else(|| pod_meta["annotations"]["sidecar.istio.io/inject"].as_str());
    match namespace_labels.get("istio-injection").map(String::as_str) {
        Some("disabled") => return false,
        Some("enabled") => return explicit.map(|v| v == "true" || v == "yes").unwrap_or(true),
        _ => {}
    }
    if namespace_labels.contains_key("istio.io/rev") {
        return explicit.map(|v| v == "true" || v == "yes").unwrap_or(true);
    }
    explicit == Some("true") || explicit == Some("yes")
}

impl Controller {
    /// A controller handing out addresses in 127.10.0.0/16.
    pub fn new() -> Controller {
        Controller::in_slot(10)
    }

    /// A controller handing out addresses in 127.`slot`.0.0/16.
    pub fn in_slot(slot: u8) -> Controller {
        Controller {
            slot,
            ..Controller::default()
        }
    }

    fn address_for(&mut self, ns: &str, name: &str) -> PodAddrs {
        let key = (ns.to_string(), name.to_string());
        let idx = match self.addresses.get(&key) {
            Some(i) => *i,
            None => {
                let i = self.next_index;
                self.next_index += 1;
                self.addresses.insert(key, i);
                i
            }
        };
        PodAddrs::for_slot_index(self.slot, idx)
    }

    /// Compute what should change so the store looks like a running cluster.
    /// `now` is the RFC 3339 time stamped on new status fields.
    pub fn reconcile(&mut self, objects: &[Value], now: &str) -> Changes {
        let minor = istio_minor(objects);
        let native = crate::injector::native_global(objects, minor);
        let ns_labels: HashMap<String, BTreeMap<String, String>> = objects
            .iter()
            .filter(|o| is(o, "v1", "Namespace"))
            .map(|o| (name_of(o).to_string(), labels(o, &["metadata", "labels"])))
            .collect();
        let existing: HashMap<Key, &Value> = objects.iter().map(|o| (key_of(o), o)).collect();

        let mut desired: Vec<Value> = Vec::new();
        let mut pods: Vec<Value> = Vec::new();

        // Namespaces referenced but not declared exist implicitly (like `default`).
        let mut namespaces: BTreeSet<String> = objects
            .iter()
            .filter_map(|o| o["metadata"]["namespace"].as_str().map(str::to_string))
            .collect();
        namespaces.insert("default".into());
        for ns in namespaces {
            let k = (
                String::new(),
                "Namespace".to_string(),
                String::new(),
                ns.clone(),
            );
            if !ns_labels.contains_key(&ns) || self.owned.contains(&k) {
                desired.push(json!({"apiVersion": "v1", "kind": "Namespace",
                    "metadata": {"name": ns}, "spec": {"finalizers": ["kubernetes"]},
                    "status": {"phase": "Active"}}));
            }
        }
        for o in objects.iter().filter(|o| is(o, "v1", "Namespace")) {
            if o["status"]["phase"].is_null() {
                let mut n = o.clone();
                n["status"] = json!({"phase": "Active"});
                desired.push(n);
            }
        }

        // The node every pod runs on (a scenario may declare it itself).
        let node_key = (
            String::new(),
            "Node".to_string(),
            String::new(),
            NODE.to_string(),
        );
        if !existing.contains_key(&node_key) || self.owned.contains(&node_key) {
            let since = existing
                .get(&node_key)
                .and_then(|n| n["status"]["conditions"][0]["lastTransitionTime"].as_str())
                .unwrap_or(now);
            desired.push(crate::injector::lab_node(since));
        }

        // ServiceAccounts referenced by pods exist implicitly too.
        let mut sas: BTreeSet<(String, String)> = BTreeSet::new();

        // Deployments → ReplicaSet → Pods.
        for d in objects.iter().filter(|o| is(o, "apps/v1", "Deployment")) {
            let ns = ns_of(d).to_string();
            let dname = name_of(d).to_string();
            let template = &d["spec"]["template"];
            let replicas = d["spec"]["replicas"].as_u64().unwrap_or(1);
            let hash = safe_suffix(fnv(&template.to_string()), 10);
            let rs_name = format!("{dname}-{hash}");
            let dep_uid = d["metadata"]["uid"].as_str().unwrap_or("").to_string();
            let mut tmpl_labels = template["metadata"]["labels"].clone();
            if !tmpl_labels.is_object() {
                tmpl_labels = json!({});
            }
            tmpl_labels["pod-template-hash"] = json!(hash);
            let rs_key = (
                "apps".to_string(),
                "ReplicaSet".to_string(),
                ns.clone(),
                rs_name.clone(),
            );
            let rs_uid = existing
                .get(&rs_key)
                .and_then(|r| r["metadata"]["uid"].as_str())
                .unwrap_or("")
                .to_string();
            let mut ready = 0u64;
            for i in 0..replicas {
                let pname = format!(
                    "{rs_name}-{}",
                    safe_suffix(fnv(&format!("{rs_name}/{i}")), 5)
                );
                let mut meta = template["metadata"].clone();
                if !meta.is_object() {
                    meta = json!({});
                }
                meta["name"] = json!(pname);
                meta["namespace"] = json!(ns);
                meta["labels"] = tmpl_labels.clone();
                meta["generateName"] = json!(format!("{rs_name}-"));
                meta["ownerReferences"] = json!([{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                    "name": rs_name, "uid": rs_uid, "controller": true, "blockOwnerDeletion": true}]);
                let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": meta,
                    "spec": template["spec"].clone()});
                let pod = self.admit_pod(pod, &ns_labels, minor, now, &existing, native);
                if pod_ready(&pod) {
                    ready += 1;
                }
                pods.push(pod);
            }
            desired.push(json!({"apiVersion": "apps/v1", "kind": "ReplicaSet",
                "metadata": {"name": rs_name, "namespace": ns, "labels": tmpl_labels,
                    "annotations": {"deployment.kubernetes.io/revision": "1"},
                    "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": dname,
                        "uid": dep_uid, "controller": true, "blockOwnerDeletion": true}]},
                "spec": {"replicas": replicas, "selector": {"matchLabels": d["spec"]["selector"]["matchLabels"].clone()},
                    "template": template.clone()},
                "status": {"replicas": replicas, "readyReplicas": ready, "availableReplicas": ready,
                    "fullyLabeledReplicas": replicas, "observedGeneration": 1}}));
            let mut dep = (*d).clone();
            let since = d["status"]["conditions"][0]["lastTransitionTime"]
                .as_str()
                .unwrap_or(now);
            dep["status"] = json!({"replicas": replicas, "readyReplicas": ready, "updatedReplicas": replicas,
                "availableReplicas": ready, "observedGeneration": d["metadata"]["generation"].as_u64().unwrap_or(1),
                "conditions": [{"type": "Available", "status": if ready == replicas {"True"} else {"False"},
                    "reason": "MinimumReplicasAvailable", "lastTransitionTime": since, "lastUpdateTime": since}]});
            desired.push(dep);
        }

        // Bare pods (not created by this controller): admit them once.
        for p in objects.iter().filter(|o| is(o, "v1", "Pod")) {
            let k = key_of(p);
            if self.owned.contains(&k) || p["metadata"]["ownerReferences"].is_array() {
                continue;
            }
            let pod = self.admit_pod(p.clone(), &ns_labels, minor, now, &existing, native);
            pods.push(pod);
        }

        for p in &pods {
            let sa = p["spec"]["serviceAccountName"]
                .as_str()
                .unwrap_or("default");
            sas.insert((ns_of(p).to_string(), sa.to_string()));
        }
        for (ns, sa) in sas {
            let k = (
                String::new(),
                "ServiceAccount".to_string(),
                ns.clone(),
                sa.clone(),
            );
            if !existing.contains_key(&k) || self.owned.contains(&k) {
                desired.push(json!({"apiVersion": "v1", "kind": "ServiceAccount",
                    "metadata": {"name": sa, "namespace": ns}}));
            }
        }

        // Services → ClusterIP, EndpointSlices, Endpoints. Pods by namespace,
        // labels read once (a mesh has thousands of both).
        let mut pods_by_ns: HashMap<&str, Vec<LabelledPod<'_>>> = HashMap::new();
        for p in &pods {
            pods_by_ns
                .entry(ns_of(p))
                .or_default()
                .push((p, labels(p, &["metadata", "labels"])));
        }
        let mut svc_index = 0u32;
        for s in objects.iter().filter(|o| is(o, "v1", "Service")) {
            svc_index += 1;
            let ns = ns_of(s).to_string();
            let mut svc = (*s).clone();
            if svc["spec"]["type"].is_null() {
                svc["spec"]["type"] = json!("ClusterIP");
            }
            if svc["spec"]["clusterIP"].is_null() {
                // Documentation-range style address (never dialled: the lab has no kube-proxy).
                let ip = format!("10.96.{}.{}", svc_index / 250, svc_index % 250 + 1);
                svc["spec"]["clusterIP"] = json!(ip);
                svc["spec"]["clusterIPs"] = json!([ip]);
            }
            if let Some(ports) = svc["spec"]["ports"].as_array_mut() {
                for p in ports {
                    if p["protocol"].is_null() {
                        p["protocol"] = json!("TCP");
                    }
                    if p["targetPort"].is_null() {
                        p["targetPort"] = p["port"].clone();
                    }
                }
            }
            let selector = labels(&svc, &["spec", "selector"]);
            if selector.is_empty() {
                desired.push(svc);
                continue;
            }
            let backing: Vec<&Value> = pods_by_ns
                .get(ns.as_str())
                .into_iter()
                .flatten()
                .filter(|(_, l)| selects(&selector, l))
                .map(|(p, _)| *p)
                .collect();
            // Per-pod targetPort resolution, one slice per port mapping.
            desired.extend(crate::endpoint_slices::build(&svc, &backing));
            desired.push(svc);
        }

        desired.extend(pods);

        // Diff against the store.
        let mut changes = Changes::default();
        let mut still_owned = BTreeSet::new();
        for d in desired {
            let k = key_of(&d);
            let created_by_us = !existing.contains_key(&k) || self.owned.contains(&k);
            if created_by_us {
                still_owned.insert(k.clone());
            }
            match existing.get(&k) {
                Some(cur) if same_ignoring_server_fields(cur, &d) => {}
                _ => changes.apply.push(d),
            }
        }
        for k in &self.owned {
            if !still_owned.contains(k) && existing.contains_key(k) {
                changes.delete.push(k.clone());
            }
        }
        self.owned = still_owned;
        changes
    }

    /// Inject (if wanted), schedule and "start" a pod: what the API server's
    /// admission, the scheduler and the kubelet would have done.
    fn admit_pod(
        &mut self,
        mut pod: Value,
        ns_labels: &HashMap<String, BTreeMap<String, String>>,
        minor: u32,
        now: &str,
        existing: &HashMap<Key, &Value>,
        native: bool,
    ) -> Value {
        let ns = ns_of(&pod).to_string();
        let name = name_of(&pod).to_string();
        if pod["metadata"]["namespace"].is_null() {
            pod["metadata"]["namespace"] = json!(ns);
        }
        // Keep what the store already has for this pod (uid, status) stable,
        // and its labels and annotations: a running pod's metadata is its own
        // (`kubectl annotate/label pod` sticks; the template only seeds it).
        if let Some(cur) = existing.get(&key_of(&pod)) {
            pod["metadata"]["uid"] = cur["metadata"]["uid"].clone();
            if pod["metadata"]["uid"].is_null() {
                pod["metadata"].as_object_mut().map(|m| m.remove("uid"));
            }
            for f in ["labels", "annotations"] {
                if cur["metadata"][f].is_object() {
                    pod["metadata"][f] = cur["metadata"][f].clone();
                }
            }
        }
        let nsl = ns_labels.get(&ns).cloned().unwrap_or_default();
        let already = crate::injector::has_proxy(&pod["spec"]);
        if !already && injection_wanted(&pod["metadata"], &pod["spec"], &nsl) {
            let native = crate::injector::wants_native_given(native, minor, &pod["metadata"]);
            crate::injector::inject(&mut pod, minor, native);
        }
        let addrs = self.address_for(&ns, &name);
        if pod["spec"]["serviceAccountName"].is_null() {
            pod["spec"]["serviceAccountName"] = json!("default");
            pod["spec"]["serviceAccount"] = json!("default");
        }
        pod["spec"]["nodeName"] = json!(NODE);
        if pod["spec"]["restartPolicy"].is_null() {
            pod["spec"]["restartPolicy"] = json!("Always");
        }
        let ready =
            pod["metadata"]["annotations"][format!("{LAB_PREFIX}ready")].as_str() != Some("false");
        let status_ready = if ready { "True" } else { "False" };
        let started = existing
            .get(&key_of(&pod))
            .and_then(|c| c["status"]["startTime"].as_str())
            .unwrap_or(now)
            .to_string();
        let (container_statuses, init_statuses) =
            crate::injector::container_statuses(&pod, ready, &started);
        pod["status"] = json!({
            "phase": "Running", "hostIP": "127.0.0.1", "hostIPs": [{"ip": "127.0.0.1"}],
            "podIP": addrs.pod_ip.to_string(), "podIPs": [{"ip": addrs.pod_ip.to_string()}],
            "startTime": started, "qosClass": "BestEffort",
            "conditions": [
                {"type": "Initialized", "status": "True", "lastTransitionTime": started},
                {"type": "Ready", "status": status_ready, "lastTransitionTime": started},
                {"type": "ContainersReady", "status": status_ready, "lastTransitionTime": started},
                {"type": "PodScheduled", "status": "True", "lastTransitionTime": started}],
            "containerStatuses": container_statuses});
        if init_statuses.as_array().is_some_and(|a| !a.is_empty()) {
            pod["status"]["initContainerStatuses"] = init_statuses;
        }
        if let Some(exited) = self.exited.get(&(ns, name)) {
            crate::exits::apply(&mut pod, exited);
        }
        pod
    }
}

pub fn pod_ready(pod: &Value) -> bool {
    pod["status"]["conditions"]
        .as_array()
        .map(|cs| {
            cs.iter()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        })
        .unwrap_or(false)
}

/// Compare two versions of an object ignoring what the store fills in.
fn same_ignoring_server_fields(a: &Value, b: &Value) -> bool {
    crate::store::eq_except(
        a,
        b,
        &[],
        &[
            "uid",
            "resourceVersion",
            "creationTimestamp",
            "generation",
            "managedFields",
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn objs(yaml: &str) -> Vec<Value> {
        serde_yaml::Deserializer::from_str(yaml)
            .map(|d| serde_json::to_value(serde_yaml::Value::deserialize(d).unwrap()).unwrap())
            .collect()
    }
    use serde::Deserialize;

    const WORLD: &str = r#"
apiVersion: v1
kind: Namespace
metadata: {name: foo, labels: {istio-injection: enabled}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: httpbin, namespace: foo}
spec:
  replicas: 2
  selector: {matchLabels: {app: httpbin}}
  template:
    metadata: {labels: {app: httpbin, version: v1}}
    spec:
      containers: [{name: httpbin, image: httpbin, ports: [{containerPort: 8080, name: web}]}]
---
apiVersion: v1
kind: Service
metadata: {name: httpbin, namespace: foo}
spec:
  selector: {app: httpbin}
  ports: [{name: http, port: 8000, targetPort: web}]
---
apiVersion: v1
kind: Pod
metadata: {name: plain, namespace: foo, annotations: {sidecar.istio.io/inject: "false"}}
spec:
  containers: [{name: c, image: x}]
"#;

    /// Apply changes to a list the way the store would (no server fields).
    fn apply(objects: &mut Vec<Value>, ch: Changes) {
        for d in ch.apply {
            let k = key_of(&d);
            objects.retain(|o| key_of(o) != k);
            objects.push(d);
        }
        objects.retain(|o| !ch.delete.contains(&key_of(o)));
    }

    #[test]
    fn deployment_becomes_injected_running_pods_with_endpoints() {
        let mut world = objs(WORLD);
        let mut c = Controller::new();
        let ch = c.reconcile(&world, "2026-01-01T00:00:00Z");
        apply(&mut world, ch);
        let pods: Vec<&Value> = world.iter().filter(|o| o["kind"] == "Pod").collect();
        assert_eq!(pods.len(), 3);
        let hb: Vec<&&Value> = pods
            .iter()
            .filter(|p| p["metadata"]["labels"]["app"] == "httpbin")
            .collect();
        assert_eq!(hb.len(), 2);
        for p in &hb {
            let name = p["metadata"]["name"].as_str().unwrap();
            assert!(name.starts_with("httpbin-"), "{name}");
            assert_eq!(
                p["metadata"]["labels"]["security.istio.io/tlsMode"],
                "istio"
            );
            // No istio ConfigMap: the newest release, whose native sidecars
            // (auto, kubelet 1.33) put istio-proxy in initContainers.
            let inits = p["spec"]["initContainers"].as_array().unwrap();
            assert!(inits
                .iter()
                .any(|c| c["name"] == "istio-proxy" && c["restartPolicy"] == "Always"));
            assert_eq!(
                p["status"]["initContainerStatuses"][1]["started"], true,
                "{p}"
            );
            assert!(p["status"]["podIP"]
                .as_str()
                .unwrap()
                .starts_with("127.10."));
        }
        let plain = pods
            .iter()
            .find(|p| p["metadata"]["name"] == "plain")
            .unwrap();
        assert_eq!(
            plain["spec"]["containers"].as_array().unwrap().len(),
            1,
            "inject: false respected"
        );
        let slice = world.iter().find(|o| o["kind"] == "EndpointSlice").unwrap();
        assert_eq!(slice["endpoints"].as_array().unwrap().len(), 2);
        assert_eq!(slice["ports"][0]["port"], 8080, "named targetPort resolved");
        let node = world.iter().find(|o| o["kind"] == "Node").unwrap();
        assert_eq!(node["status"]["nodeInfo"]["kubeletVersion"], "v1.33.0");
        // A second reconcile over the result changes nothing (no write loops).
        let again = c.reconcile(&world, "2026-01-01T00:00:05Z");
        assert!(again.apply.is_empty(), "{:?}", again.apply);
        assert!(again.delete.is_empty());
    }

    #[test]
    fn scaling_down_deletes_pods_and_endpoints_follow() {
        let mut world = objs(WORLD);
        let mut c = Controller::new();
        let ch = c.reconcile(&world, "t");
        apply(&mut world, ch);
        for o in world.iter_mut() {
            if o["kind"] == "Deployment" {
                o["spec"]["replicas"] = json!(1);
            }
        }
        let ch = c.reconcile(&world, "t");
        assert_eq!(ch.delete.len(), 1);
        apply(&mut world, ch);
        let slice = world.iter().find(|o| o["kind"] == "EndpointSlice").unwrap();
        assert_eq!(slice["endpoints"].as_array().unwrap().len(), 1);
    }

    #[test]
    fn injection_rules() {
        let enabled: BTreeMap<String, String> =
            [("istio-injection".to_string(), "enabled".to_string())].into();
        let none = BTreeMap::new();
        assert!(injection_wanted(&json!({}), &json!({}), &enabled));
        assert!(!injection_wanted(&json!({}), &json!({}), &none));
        assert!(!injection_wanted(
            &json!({"annotations": {"sidecar.istio.io/inject": "false"}}),
            &json!({}),
            &enabled
        ));
        assert!(injection_wanted(
            &json!({"labels": {"sidecar.istio.io/inject": "true"}}),
            &json!({}),
            &none
        ));
        assert!(!injection_wanted(
            &json!({}),
            &json!({"hostNetwork": true}),
            &enabled
        ));
    }
}
