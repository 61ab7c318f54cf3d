//! The evidence bundle: everything `collect` read from the cluster, as it was
//! read, so that `analyze` never talks to the cluster and a saved snapshot
//! (`diagnose --snapshot FILE`) takes exactly the same code path as a live run.
//!
//! Raw documents are kept (Kubernetes objects as JSON, admin output as text or
//! JSON) rather than pre-digested structs: parsers improve, snapshots stay
//! useful. Secrets are never collected; `config_dump` is fetched per resource
//! type and never includes `dynamic_active_secrets`.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Bumped on any incompatible change of this file's types.
pub const SCHEMA: &str = "mesh503.io/snapshot/v1";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Snapshot {
    /// Always [`SCHEMA`]; checked on load.
    pub schema: String,
    /// Version of kubectl-mesh503 that took it.
    pub tool_version: String,
    /// RFC 3339 time the collection started.
    pub taken_at: String,
    /// kubeconfig context used, if any.
    #[serde(default)]
    pub context: Option<String>,
    /// What the user asked about, as typed (`svc/httpbin`, `httpbin.foo.svc.cluster.local:8000`).
    pub target: String,
    /// Namespace the target was resolved in.
    pub namespace: String,
    /// Namespace holding the `istio` ConfigMap (`--istio-namespace`).
    pub istio_namespace: String,
    /// `/version` of the API server, if readable.
    #[serde(default)]
    pub server_version: Option<Value>,
    /// Istio-related API resources discovery said the cluster serves.
    #[serde(default)]
    pub served_resources: Vec<ServedResource>,
    /// Kubernetes objects, verbatim (`apiVersion`, `kind`, `metadata`, `spec`, `status`):
    /// Services, Endpoints/EndpointSlices, Pods, Namespaces, the mesh ConfigMap and
    /// every Istio config object in every served version.
    #[serde(default)]
    pub objects: Vec<Value>,
    /// One entry per pod whose sidecar was read (or tried).
    #[serde(default)]
    pub proxies: Vec<ProxyEvidence>,
    /// Evidence that could not be read, cluster-wide (RBAC, missing kinds, …).
    #[serde(default)]
    pub gaps: Vec<Gap>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ServedResource {
    pub group: String,
    pub version: String,
    pub kind: String,
    pub plural: String,
    pub namespaced: bool,
}

/// Why a pod's sidecar was read.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum ProxyRole {
    /// Backs the target service.
    Server,
    /// Calls the target service.
    Client,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ProxyEvidence {
    pub namespace: String,
    pub pod: String,
    pub role: ProxyRole,
    /// Plain words: `--from deploy/sleep`, `/clusters shows 12 requests to httpbin`, …
    pub chosen_because: String,
    /// `GET /server_info` (JSON).
    #[serde(default)]
    pub server_info: Option<Value>,
    /// `GET /config_dump?resource=dynamic_active_clusters` (JSON).
    #[serde(default)]
    pub clusters_config: Option<Value>,
    /// `GET /config_dump?resource=dynamic_listeners` (JSON).
    #[serde(default)]
    pub listeners_config: Option<Value>,
    /// `GET /config_dump?include_eds&resource=dynamic_endpoint_configs` (JSON).
    #[serde(default)]
    pub endpoints_config: Option<Value>,
    /// `GET /clusters` (text format).
    #[serde(default)]
    pub clusters: Option<String>,
    /// `GET /stats` (text format).
    #[serde(default)]
    pub stats: Option<String>,
    /// Tail of the `istio-proxy` container log (access log lines when enabled).
    #[serde(default)]
    pub log_tail: Option<String>,
    /// What could not be read from this proxy, and why.
    #[serde(default)]
    pub gaps: Vec<Gap>,
}

/// A piece of evidence that was looked for and not obtained.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Gap {
    /// Where it was looked for: `pod foo/sleep-1 :15000/clusters`, `list peerauthentications.security.istio.io`.
    pub source: String,
    /// What went wrong, in the words of the error.
    pub reason: String,
}

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("cannot read snapshot {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("snapshot {path} is not valid JSON for schema {SCHEMA}: {source}")]
    Parse {
        path: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("snapshot {path} has schema {found:?}; this kubectl-mesh503 reads {SCHEMA}. Re-take it with `kubectl mesh503 diagnose … --save-snapshot FILE`")]
    Schema { path: String, found: String },
}

impl Snapshot {
    /// Load and check a snapshot file.
    pub fn load(path: &std::path::Path) -> Result<Snapshot, SnapshotError> {
        let p = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| SnapshotError::Io {
            path: p.clone(),
            source,
        })?;
        Self::from_json(&text, &p)
    }

    /// Parse a snapshot from JSON text; `origin` names it in errors.
    pub fn from_json(text: &str, origin: &str) -> Result<Snapshot, SnapshotError> {
        let raw: Value = serde_json::from_str(text).map_err(|source| SnapshotError::Parse {
            path: origin.to_string(),
            source,
        })?;
        let found = raw
            .get("schema")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        if found != SCHEMA {
            return Err(SnapshotError::Schema {
                path: origin.to_string(),
                found,
            });
        }
        serde_json::from_value(raw).map_err(|source| SnapshotError::Parse {
            path: origin.to_string(),
            source,
        })
    }

    /// Remove what a snapshot must not carry when it is attached to a bug
    /// report: container environment values (often credentials), and
    /// `last-applied-configuration` annotations (a second copy of them).
    /// Names and `valueFrom` references stay: they are not secrets.
    pub fn redact(&mut self) {
        for o in &mut self.objects {
            redact_object(o);
        }
    }

    /// Objects of one kind (any API group version), in snapshot order.
    pub fn objects_of_kind<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
        self.objects
            .iter()
            .filter(move |o| o.get("kind").and_then(Value::as_str) == Some(kind))
    }
}

const REDACTED: &str = "<redacted by kubectl-mesh503>";

fn redact_object(o: &mut Value) {
    if let Some(a) = o
        .get_mut("metadata")
        .and_then(|m| m.get_mut("annotations"))
        .and_then(Value::as_object_mut)
    {
        if a.contains_key("kubectl.kubernetes.io/last-applied-configuration") {
            a.insert(
                "kubectl.kubernetes.io/last-applied-configuration".into(),
                Value::String(REDACTED.into()),
            );
        }
    }
    // Pod spec, or a workload's pod template.
    let spec = if o.get("kind").and_then(Value::as_str) == Some("Pod") {
        o.get_mut("spec")
    } else {
        o.get_mut("spec")
            .and_then(|s| s.get_mut("template"))
            .and_then(|t| t.get_mut("spec"))
    };
    let Some(spec) = spec else { return };
    for list in ["containers", "initContainers", "ephemeralContainers"] {
        for c in spec
            .get_mut(list)
            .and_then(Value::as_array_mut)
            .into_iter()
            .flatten()
        {
            for e in c
                .get_mut("env")
                .and_then(Value::as_array_mut)
                .into_iter()
                .flatten()
            {
                if let Some(v) = e.get_mut("value") {
                    *v = Value::String(REDACTED.into());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn redaction_removes_env_values_and_last_applied() {
        let mut s = Snapshot {
            schema: SCHEMA.into(),
            tool_version: "t".into(),
            taken_at: "t".into(),
            context: None,
            target: "svc/x".into(),
            namespace: "foo".into(),
            istio_namespace: "istio-system".into(),
            server_version: None,
            served_resources: vec![],
            objects: vec![
                json!({"kind": "Pod", "metadata": {"name": "p", "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{secret}"}},
                       "spec": {"containers": [{"name": "app", "env": [{"name": "DB_PASSWORD", "value": "hunter2"},
                                                                       {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}]}]}}),
                json!({"kind": "Deployment", "metadata": {"name": "d"},
                       "spec": {"template": {"spec": {"containers": [{"name": "app", "env": [{"name": "K", "value": "v"}]}]}}}}),
            ],
            proxies: vec![],
            gaps: vec![],
        };
        s.redact();
        let text = serde_json::to_string(&s).unwrap();
        assert!(
            !text.contains("hunter2") && !text.contains("{secret}") && !text.contains("\"v\""),
            "{text}"
        );
        assert!(
            text.contains("DB_PASSWORD") && text.contains("secretKeyRef"),
            "names stay: {text}"
        );
    }

    #[test]
    fn wrong_schema_is_refused_with_a_hint() {
        let e = Snapshot::from_json(r#"{"schema": "other"}"#, "f.json").unwrap_err();
        assert!(e.to_string().contains("Re-take it"), "{e}");
        let e = Snapshot::from_json("not json", "f.json").unwrap_err();
        assert!(e.to_string().contains("f.json"), "{e}");
    }
}
