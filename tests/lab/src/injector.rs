//! Istio's sidecar injector and the kubelet's view of injected pods: what
//! `istio-proxy` looks like in the pod spec (a regular container, or a
//! native sidecar: an init container with `restartPolicy: Always`), and the
//! container statuses a running pod then reports.
//!
//! Sources (istio/istio):
//! - `manifests/charts/istio-control/istio-discovery/files/injection-template.yaml`
//!   (1.24.0, 1.27.0, 1.31.0-rc.0): `istio-proxy` goes to `initContainers`
//!   after `istio-init` with `restartPolicy: Always` when native; the
//!   `sidecar.istio.io/status` annotation then lists it under
//!   `initContainers` and `containers` is `null`
//!   (`pkg/kube/inject/testdata/inject/native-sidecar.yaml.injected`).
//! - `pilot/pkg/features`: `ENABLE_NATIVE_SIDECARS` exists from 1.19 (bool,
//!   default false); from 1.27 it is `true`/`false`/`auto`, default `auto`.
//! - `pkg/kube/inject/webhook.go` `DetectNativeSidecar` (1.27.0–1.31.0-rc.0):
//!   `auto` enables native sidecars when every Node's kubelet is ≥ 1.33
//!   (pods are not scheduled yet when the webhook runs, so all nodes count).
//! - `pkg/kube/inject/inject.go` (1.24.0+): the pod annotation
//!   `sidecar.istio.io/nativeSidecar: "true"|"false"` overrides the mesh-wide
//!   setting per pod.
//!
//! How a scenario sets the mesh-wide switch: as a real install does, with the
//! env var `ENABLE_NATIVE_SIDECARS` on the `istiod` Deployment in
//! `istio-system` (any container; helm's `pilot.env`). The lab reads it from
//! the stored Deployment, so `kubectl get deploy istiod -n istio-system -o
//! yaml` shows what the lab applies.

use serde_json::{json, Value};

/// Node name every pod is "scheduled" on (see `controller::NODE`).
pub const NODE: &str = "lab-node";
/// Kubelet version of the lab's node (the API server's version).
pub const KUBELET_VERSION: &str = "v1.33.0";

/// The mesh-wide `ENABLE_NATIVE_SIDECARS` as istiod reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NativeMode {
    Disabled,
    Enabled,
    /// 1.27+: enabled when every node's kubelet is at least 1.33.
    Auto,
}

/// `ENABLE_NATIVE_SIDECARS` from the `istio-system/istiod` Deployment's
/// containers, or the release's default. Unknown values count as `false`,
/// as istiod logs and does (`pilot/pkg/features/pilot.go`, 1.27.0).
pub fn native_mode(objects: &[Value], minor: u32) -> NativeMode {
    if minor < 19 {
        return NativeMode::Disabled;
    }
    let env = objects
        .iter()
        .find(|o| {
            o["kind"] == "Deployment"
                && o["metadata"]["name"] == "istiod"
                && o["metadata"]["namespace"] == "istio-system"
        })
        .and_then(|d| {
            d["spec"]["template"]["spec"]["containers"]
                .as_array()?
                .iter()
                .flat_map(|c| c["env"].as_array().into_iter().flatten())
                .find(|e| e["name"] == "ENABLE_NATIVE_SIDECARS")
                .and_then(|e| e["value"].as_str())
        });
    match env.map(str::trim) {
        Some("true") => NativeMode::Enabled,
        Some("auto") if minor >= 27 => NativeMode::Auto,
        Some(_) => NativeMode::Disabled,
        None if minor >= 27 => NativeMode::Auto,
        None => NativeMode::Disabled,
    }
}

/// Minor version of a kubelet version string (`v1.33.0` → 33).
fn kubelet_minor(v: &str) -> Option<u32> {
    v.trim_start_matches('v').split('.').nth(1)?.parse().ok()
}

/// Would the injector make this pod's sidecar native? `objects` are the
/// cluster's (for the istiod Deployment and the Nodes), `pod_meta` the pod's
/// metadata.
pub fn wants_native(objects: &[Value], minor: u32, pod_meta: &Value) -> bool {
    wants_native_given(native_global(objects, minor), minor, pod_meta)
}

/// The mesh-wide native sidecar decision (read once per reconcile: it
/// looks at every object).
pub fn native_global(objects: &[Value], minor: u32) -> bool {
    let mode = native_mode(objects, minor);
    let global = match mode {
        NativeMode::Disabled => false,
        NativeMode::Enabled => true,
        NativeMode::Auto => {
            let nodes: Vec<&Value> = objects
                .iter()
                .filter(|o| o["kind"] == "Node" && o["apiVersion"] == "v1")
                .collect();
            // The lab's own node (created by the controller) when none is stored yet.
            let default_ok = kubelet_minor(KUBELET_VERSION).is_some_and(|m| m >= 33);
            if nodes.is_empty() {
                default_ok
            } else {
                nodes.iter().all(|n| {
                    n["status"]["nodeInfo"]["kubeletVersion"]
                        .as_str()
                        .and_then(kubelet_minor)
                        .is_some_and(|m| m >= 33)
                })
            }
        }
    };
    global
}

/// [`wants_native`] with the mesh-wide decision already made.
pub fn wants_native_given(global: bool, minor: u32, pod_meta: &Value) -> bool {
    if minor < 24 {
        return global;
    }
    match pod_meta["annotations"]["sidecar.istio.io/nativeSidecar"].as_str() {
        Some("true") => true,
        Some("false") => false,
        _ => global,
    }
}

/// The lab's Node, as `kubectl get nodes -o wide` shows a one-node cluster.
pub fn lab_node(now: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Node",
        "metadata": {"name": NODE, "labels": {"kubernetes.io/hostname": NODE, "kubernetes.io/os": "linux",
            "node-role.kubernetes.io/control-plane": ""}},
        "spec": {},
        "status": {
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                "message": "kubelet is posting ready status", "lastHeartbeatTime": now, "lastTransitionTime": now}],
            "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}, {"type": "Hostname", "address": NODE}],
            "nodeInfo": {"kubeletVersion": KUBELET_VERSION, "kubeProxyVersion": KUBELET_VERSION,
                "osImage": "mesh503-lab", "kernelVersion": "lab", "containerRuntimeVersion": "lab://1",
                "operatingSystem": "linux", "architecture": "amd64"}}})
}

/// Is `istio-proxy` among the pod's containers or (native) init containers?
pub fn has_proxy(spec: &Value) -> bool {
    ["containers", "initContainers"].iter().any(|k| {
        spec[*k]
            .as_array()
            .is_some_and(|cs| cs.iter().any(|c| c["name"] == "istio-proxy"))
    })
}

/// What Istio's injector adds (istio/istio pkg/kube/inject, `injection-template`):
/// the `istio-proxy` container (or native init container) and `istio-init`
/// init container, the `sidecar.istio.io/status` annotation, from 1.4 the
/// label `security.istio.io/tlsMode: istio` that auto mTLS keys on, from
/// 1.6 the canonical-service labels, from 1.10 kubectl's default-container
/// annotations.
pub fn inject(pod: &mut Value, minor: u32, native: bool) {
    let image = format!("docker.io/istio/proxyv2:1.{minor}.0");
    let first_app = pod["spec"]["containers"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["name"] != "istio-proxy"))
        .and_then(|c| c["name"].as_str())
        .map(str::to_string);
    let pod_name = pod["metadata"]["name"].as_str().unwrap_or("").to_string();
    let app = pod["metadata"]["labels"]["app"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| pod_name.split('-').next().unwrap_or("").to_string());
    let version = pod["metadata"]["labels"]["version"]
        .as_str()
        .unwrap_or("latest")
        .to_string();
    if !pod["metadata"]["labels"].is_object() {
        pod["metadata"]["labels"] = json!({});
    }
    if minor >= 4 {
        pod["metadata"]["labels"]["security.istio.io/tlsMode"] = json!("istio");
    }
    if minor >= 6 {
        pod["metadata"]["labels"]["service.istio.io/canonical-name"] = json!(app);
        pod["metadata"]["labels"]["service.istio.io/canonical-revision"] = json!(version);
    }
    if !pod["metadata"]["annotations"].is_object() {
        pod["metadata"]["annotations"] = json!({});
    }
    let ann = &mut pod["metadata"]["annotations"];
    if let (true, Some(first)) = (minor >= 10, &first_app) {
        for k in [
            "kubectl.kubernetes.io/default-container",
            "kubectl.kubernetes.io/default-logs-container",
        ] {
            if ann[k].is_null() {
                ann[k] = json!(first);
            }
        }
    }
    // `SidecarInjectionStatus` in its field order (`revision` from 1.11,
    // istio/istio 1.11.0 `pkg/kube/inject/inject.go`).
    let (init_names, container_names) = if native {
        (r#"["istio-init","istio-proxy"]"#, "null")
    } else {
        (r#"["istio-init"]"#, r#"["istio-proxy"]"#)
    };
    let revision = if minor >= 11 {
        r#","revision":"default""#
    } else {
        ""
    };
    ann["sidecar.istio.io/status"] = json!(format!(
        r#"{{"initContainers":{init_names},"containers":{container_names},"volumes":["istio-envoy","istio-data","istio-podinfo","istio-token","istiod-ca-cert"],"imagePullSecrets":null{revision}}}"#
    ));
    let mut proxy = json!({"name": "istio-proxy", "image": image,
        "args": ["proxy", "sidecar", "--domain", "$(POD_NAMESPACE).svc.cluster.local",
                 "--proxyLogLevel=warning", "--proxyComponentLogLevel=misc:error", "--log_output_level=default:info"],
        "ports": [{"containerPort": 15090, "name": "http-envoy-prom", "protocol": "TCP"}],
        "readinessProbe": {"httpGet": {"path": "/healthz/ready", "port": 15021}}});
    let init = json!({"name": "istio-init", "image": image,
        "args": ["istio-iptables", "-p", "15001", "-z", "15006", "-u", "1337", "-m", "REDIRECT", "-i", "*", "-x", "", "-b", "*", "-d", "15090,15021,15020"]});
    let mut inits = vec![init];
    if native {
        proxy["restartPolicy"] = json!("Always");
        proxy["startupProbe"] = json!({"httpGet": {"path": "/healthz/ready", "port": 15021},
            "periodSeconds": 1, "timeoutSeconds": 3, "failureThreshold": 600});
        inits.push(proxy);
    } else if let Some(cs) = pod["spec"]["containers"].as_array_mut() {
        cs.push(proxy);
    } else {
        pod["spec"]["containers"] = json!([proxy]);
    }
    let existing = pod["spec"]["initContainers"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    inits.extend(existing);
    pod["spec"]["initContainers"] = Value::Array(inits);
}

/// `(containerStatuses, initContainerStatuses)` of a running pod as the
/// kubelet reports them: app containers (and a classic sidecar) running;
/// init containers terminated `Completed`, except restartable ones (native
/// sidecars), which run and report `started`/`ready`.
pub fn container_statuses(pod: &Value, ready: bool, started_at: &str) -> (Value, Value) {
    let ns = pod["metadata"]["namespace"].as_str().unwrap_or("");
    let name = pod["metadata"]["name"].as_str().unwrap_or("");
    let id = |c: &Value| format!("lab://{ns}/{name}/{}", c["name"].as_str().unwrap_or(""));
    let running = |c: &Value, ready: bool| {
        json!({"name": c["name"], "image": c["image"], "imageID": "",
        "ready": ready, "started": true, "restartCount": 0, "containerID": id(c),
        "state": {"running": {"startedAt": started_at}}})
    };
    let containers: Vec<Value> = pod["spec"]["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| running(c, ready))
        .collect();
    let inits: Vec<Value> = pod["spec"]["initContainers"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            if c["restartPolicy"] == "Always" {
                // The sidecar itself is ready whatever the app does.
                running(c, true)
            } else {
                json!({"name": c["name"], "image": c["image"], "imageID": "",
                "ready": false, "started": false, "restartCount": 0, "containerID": id(c),
                "state": {"terminated": {"exitCode": 0, "reason": "Completed",
                    "startedAt": started_at, "finishedAt": started_at, "containerID": id(c)}}})
            }
        })
        .collect();
    (Value::Array(containers), Value::Array(inits))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn istiod(env: Option<&str>) -> Value {
        let env = env
            .map(|v| json!([{"name": "ENABLE_NATIVE_SIDECARS", "value": v}]))
            .unwrap_or(json!([]));
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "istiod", "namespace": "istio-system"},
               "spec": {"template": {"spec": {"containers": [{"name": "discovery", "env": env}]}}}})
    }

    fn node(kubelet: &str) -> Value {
        json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n"}, "status": {"nodeInfo": {"kubeletVersion": kubelet}}})
    }

    #[test]
    fn native_by_release_env_nodes_and_annotation() {
        let none = json!({});
        let opt_out = json!({"annotations": {"sidecar.istio.io/nativeSidecar": "false"}});
        let opt_in = json!({"annotations": {"sidecar.istio.io/nativeSidecar": "true"}});
        // 1.27+: auto by default, on for kubelet ≥ 1.33.
        assert!(wants_native(&[], 27, &none));
        assert!(!wants_native(&[], 26, &none));
        assert!(!wants_native(&[node("v1.32.4")], 31, &none));
        assert!(wants_native(&[node("v1.33.1")], 31, &none));
        // The istiod env var and the pod annotation.
        assert!(!wants_native(&[istiod(Some("false"))], 31, &none));
        assert!(wants_native(&[istiod(Some("true"))], 24, &none));
        assert!(!wants_native(&[istiod(Some("auto"))], 26, &none));
        assert!(!wants_native(&[], 31, &opt_out));
        assert!(wants_native(&[istiod(Some("false"))], 31, &opt_in));
        // The annotation exists from 1.24; the env var from 1.19.
        assert!(!wants_native(&[], 23, &opt_in));
        assert!(wants_native(&[istiod(Some("true"))], 19, &none));
        assert!(!wants_native(&[istiod(Some("true"))], 18, &none));
    }

    #[test]
    fn native_injection_moves_the_proxy_to_init_containers() {
        let mut pod = json!({"metadata": {"name": "hb-1", "namespace": "foo", "labels": {"app": "hb"}},
            "spec": {"containers": [{"name": "hb", "image": "x"}]}});
        inject(&mut pod, 31, true);
        let inits = pod["spec"]["initContainers"].as_array().unwrap();
        assert_eq!(inits[0]["name"], "istio-init");
        assert_eq!(inits[1]["name"], "istio-proxy");
        assert_eq!(inits[1]["restartPolicy"], "Always");
        assert_eq!(pod["spec"]["containers"].as_array().unwrap().len(), 1);
        assert!(has_proxy(&pod["spec"]));
        let status: Value = serde_json::from_str(
            pod["metadata"]["annotations"]["sidecar.istio.io/status"]
                .as_str()
                .unwrap(),
        )
        .unwrap();
        assert_eq!(status["containers"], Value::Null);
        let raw = pod["metadata"]["annotations"]["sidecar.istio.io/status"]
            .as_str()
            .unwrap();
        assert!(
            raw.starts_with(r#"{"initContainers":["istio-init","istio-proxy"],"containers":null,"#),
            "{raw}"
        );
        assert_eq!(
            pod["metadata"]["annotations"]["kubectl.kubernetes.io/default-container"],
            "hb"
        );
        let (cs, is) = container_statuses(&pod, true, "t");
        assert_eq!(cs.as_array().unwrap().len(), 1);
        assert_eq!(is[0]["state"]["terminated"]["reason"], "Completed");
        assert_eq!(is[1]["started"], true);
        assert!(is[1]["state"]["running"].is_object());
    }
}
