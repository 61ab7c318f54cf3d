//! Model stage: pods, the workloads that own them, and replica groups.
//!
//! Read once from the snapshot's `Pod` objects: labels, IP, readiness, the
//! sidecar (classic or native, through the one answer in
//! [`crate::istio::sidecar`]), the controller and the workload it belongs to,
//! and the container ports a Service's named `targetPort` resolves against.

use std::collections::BTreeMap;
use std::fmt;

use serde_json::Value;

use crate::istio::mesh_config::IstioVersion;
use crate::istio::object::{Meta, ObjectError, Reader};
use crate::istio::sidecar::{sidecar_container, sidecar_version, SidecarKind};

/// `namespace/name` of a pod.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PodKey {
    pub namespace: String,
    pub name: String,
}

impl PodKey {
    pub fn new(namespace: &str, name: &str) -> PodKey {
        PodKey {
            namespace: namespace.to_string(),
            name: name.to_string(),
        }
    }
}

impl fmt::Display for PodKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// A controller or workload: `ReplicaSet/sleep-5b7d…`, `Deployment/sleep`, or the pod itself.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WorkloadKey {
    pub namespace: String,
    pub kind: String,
    pub name: String,
}

impl fmt::Display for WorkloadKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}/{}", self.kind, self.namespace, self.name)
    }
}

/// One `containerPort` of a container (app containers and native sidecars).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerPort {
    pub container: String,
    pub name: Option<String>,
    pub number: u16,
    /// `TCP` (the Kubernetes default), `UDP`, `SCTP`.
    pub protocol: String,
}

/// A pod, typed.
#[derive(Debug, Clone, PartialEq)]
pub struct Pod {
    pub key: PodKey,
    pub labels: BTreeMap<String, String>,
    /// `status.podIP`.
    pub ip: Option<String>,
    /// The `Ready` condition is `True`.
    pub ready: bool,
    /// How the `istio-proxy` sidecar was injected; `None` without a sidecar.
    pub sidecar: Option<SidecarKind>,
    /// The Istio version of the sidecar image tag, when it is one.
    pub sidecar_version: Option<IstioVersion>,
    /// The controlling owner reference (`ReplicaSet/sleep-5b7d…`); replicas share it.
    pub controller: Option<WorkloadKey>,
    /// The workload: a ReplicaSet's Deployment (Istio's own derivation), the
    /// controller otherwise, or the pod itself.
    pub workload: WorkloadKey,
    pub container_ports: Vec<ContainerPort>,
}

/// The label Istio's injector sets on pods with a sidecar; the client's auto
/// mTLS sends mTLS only to endpoints carrying it (EDS metadata
/// `envoy.transport_socket_match.tlsMode`, istio/istio
/// `pilot/pkg/networking/util` `AppendLbEndpointMetadata`).
pub const TLS_MODE_LABEL: &str = "security.istio.io/tlsMode";

impl Pod {
    pub fn has_sidecar(&self) -> bool {
        self.sidecar.is_some()
    }

    /// Labelled `security.istio.io/tlsMode: istio`.
    pub fn labelled_istio_tls(&self) -> bool {
        self.labels.get(TLS_MODE_LABEL).map(String::as_str) == Some("istio")
    }

    /// The replica group key: the controller, or the pod alone.
    pub fn replica_group(&self) -> WorkloadKey {
        self.controller.clone().unwrap_or_else(|| WorkloadKey {
            namespace: self.key.namespace.clone(),
            kind: "Pod".into(),
            name: self.key.name.clone(),
        })
    }

    /// Parse a `Pod` object. Errors name the pod and the field.
    pub fn from_value(v: &Value) -> Result<Pod, ObjectError> {
        let meta = Meta::from_value(v)?;
        let id = meta.id();
        let r = Reader::new(&id, v);
        let key = PodKey::new(&meta.namespace, &meta.name);
        let ip = r.opt_str("status.podIP")?;
        let ready = r
            .opt_array("status.conditions")?
            .iter()
            .any(|c| c["type"] == "Ready" && c["status"] == "True");
        let (sidecar, version) = match sidecar_container(v) {
            Some((_, kind)) => (Some(kind), sidecar_version(v)),
            None => (None, None),
        };
        let controller = controller_of(&r, &meta.namespace)?;
        let workload = workload_of(controller.as_ref(), &meta.labels, &key);
        let container_ports = container_ports(&r)?;
        Ok(Pod {
            key,
            labels: meta.labels,
            ip,
            ready,
            sidecar,
            sidecar_version: version,
            controller,
            workload,
            container_ports,
        })
    }
}

fn controller_of(r: &Reader, namespace: &str) -> Result<Option<WorkloadKey>, ObjectError> {
    let owners = r.opt_array("metadata.ownerReferences")?;
    // The controller reference; a lone owner without the flag counts too.
    let pick = owners
        .iter()
        .find(|o| o["controller"] == true)
        .or(if owners.len() == 1 {
            owners.first()
        } else {
            None
        });
    Ok(pick.and_then(|o| {
        Some(WorkloadKey {
            namespace: namespace.to_string(),
            kind: o["kind"].as_str()?.to_string(),
            name: o["name"].as_str()?.to_string(),
        })
    }))
}

/// Istio's workload name (istio/istio `pkg/kube/util.go` `GetDeployMetaFromPod`):
/// a ReplicaSet whose name ends with `-<pod-template-hash>` belongs to the
/// Deployment named by the rest; any other controller is the workload itself.
fn workload_of(
    controller: Option<&WorkloadKey>,
    labels: &BTreeMap<String, String>,
    pod: &PodKey,
) -> WorkloadKey {
    match controller {
        Some(c) if c.kind == "ReplicaSet" => {
            let deployment = labels
                .get("pod-template-hash")
                .and_then(|h| c.name.strip_suffix(&format!("-{h}")));
            match deployment {
                Some(d) => WorkloadKey {
                    namespace: c.namespace.clone(),
                    kind: "Deployment".into(),
                    name: d.to_string(),
                },
                None => c.clone(),
            }
        }
        Some(c) => c.clone(),
        None => WorkloadKey {
            namespace: pod.namespace.clone(),
            kind: "Pod".into(),
            name: pod.name.clone(),
        },
    }
}

/// Ports of `spec.containers` and of native sidecars (`initContainers` with
/// `restartPolicy: Always`), the containers Kubernetes resolves a named
/// `targetPort` against (k8s.io/endpointslice `utils.go` `findPort`).
fn container_ports(r: &Reader) -> Result<Vec<ContainerPort>, ObjectError> {
    let mut out = Vec::new();
    let lists = [
        ("spec.containers", r.opt_array("spec.containers")?, false),
        (
            "spec.initContainers",
            r.opt_array("spec.initContainers")?,
            true,
        ),
    ];
    for (path, list, init) in lists {
        for (i, c) in list.iter().enumerate() {
            if init && c["restartPolicy"] != "Always" {
                continue;
            }
            let owned = r.at(c, &format!("{path}[{i}]"));
            let cr = owned.reader();
            let container = cr.opt_str("name")?.unwrap_or_default();
            for (j, p) in cr.opt_array("ports")?.iter().enumerate() {
                let owned = cr.at(p, &format!("ports[{j}]"));
                let pr = owned.reader();
                let Some(number) = pr.opt_u32("containerPort")? else {
                    continue;
                };
                let number = u16::try_from(number)
                    .map_err(|_| pr.invalid("containerPort", format!("{number} is not a port")))?;
                out.push(ContainerPort {
                    container: container.clone(),
                    name: pr.opt_str("name")?,
                    number,
                    protocol: pr.opt_str("protocol")?.unwrap_or_else(|| "TCP".into()),
                });
            }
        }
    }
    Ok(out)
}

/// Pods grouped by a [`WorkloadKey`]: the replicas of one controller, or
/// the pods of one workload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodGroup {
    pub key: WorkloadKey,
    pub pods: Vec<PodKey>,
}

/// Group pods by `key`, in order of first appearance.
pub fn group_pods(pods: &[Pod], key: impl Fn(&Pod) -> WorkloadKey) -> Vec<PodGroup> {
    let mut out: Vec<PodGroup> = Vec::new();
    for p in pods {
        let k = key(p);
        match out.iter_mut().find(|g| g.key == k) {
            Some(g) => g.pods.push(p.key.clone()),
            None => out.push(PodGroup {
                key: k,
                pods: vec![p.key.clone()],
            }),
        }
    }
    out
}

/// A namespace and its labels (`istio-injection`, `istio.io/rev`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Namespace {
    pub name: String,
    pub labels: BTreeMap<String, String>,
}

impl Namespace {
    pub fn from_value(v: &Value) -> Result<Namespace, ObjectError> {
        let meta = Meta::from_value(v)?;
        Ok(Namespace {
            name: meta.name,
            labels: meta.labels,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(spec: Value, owner: Value, labels: Value) -> Value {
        json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "sleep-5b7d-abcde", "namespace": "foo", "labels": labels, "ownerReferences": owner},
            "spec": spec,
            "status": {"podIP": "10.0.0.7", "conditions": [{"type": "Ready", "status": "True"}]}})
    }

    #[test]
    fn classic_and_native_sidecars_are_the_same_pod_to_the_model() {
        let owner = json!([{"kind": "ReplicaSet", "name": "sleep-5b7d", "controller": true}]);
        let labels = json!({"app": "sleep", "pod-template-hash": "5b7d"});
        let classic = Pod::from_value(&pod(
            json!({"containers": [{"name": "sleep", "ports": [{"name": "http", "containerPort": 8080}]},
                                  {"name": "istio-proxy", "image": "istio/proxyv2:1.28.0", "ports": [{"name": "http-envoy-prom", "containerPort": 15090}]}]}),
            owner.clone(),
            labels.clone(),
        ))
        .unwrap();
        let native = Pod::from_value(&pod(
            json!({"containers": [{"name": "sleep", "ports": [{"name": "http", "containerPort": 8080}]}],
                   "initContainers": [{"name": "istio-proxy", "restartPolicy": "Always", "image": "istio/proxyv2:1.28.0",
                                       "ports": [{"name": "http-envoy-prom", "containerPort": 15090}]}]}),
            owner,
            labels,
        ))
        .unwrap();
        assert_eq!(classic.sidecar, Some(SidecarKind::Classic));
        assert_eq!(native.sidecar, Some(SidecarKind::Native));
        assert_eq!(classic.container_ports, native.container_ports);
        assert_eq!(classic.workload, native.workload);
        assert_eq!(classic.workload.kind, "Deployment");
        assert_eq!(classic.workload.name, "sleep");
        assert_eq!(classic.replica_group().name, "sleep-5b7d");
        assert!(classic.ready && classic.ip.as_deref() == Some("10.0.0.7"));
    }

    #[test]
    fn init_containers_that_run_to_completion_have_no_ports_for_services() {
        let p = Pod::from_value(&pod(
            json!({"containers": [{"name": "app"}],
                   "initContainers": [{"name": "setup", "ports": [{"name": "http", "containerPort": 9000}]}]}),
            json!([]),
            json!({}),
        ))
        .unwrap();
        assert!(p.container_ports.is_empty());
        assert_eq!(p.workload.kind, "Pod");
        assert!(!p.has_sidecar());
    }

    #[test]
    fn a_bad_port_names_the_field() {
        let e = Pod::from_value(&pod(
            json!({"containers": [{"name": "app", "ports": [{"containerPort": "eighty"}]}]}),
            json!([]),
            json!({}),
        ))
        .unwrap_err();
        assert!(
            e.to_string()
                .contains("spec.containers[0].ports[0].containerPort"),
            "{e}"
        );
    }
}
