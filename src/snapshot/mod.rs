//! The evidence bundle: everything `collect` read from the cluster, as it was
//! read, so that `analyze` never talks to the cluster and a saved snapshot
//! (`diagnose --snapshot FILE`) takes exactly the same code path as a live run.
//!
//! Raw documents are kept (Kubernetes objects as JSON, admin output as text or
//! JSON) rather than pre-digested structs: parsers improve, snapshots stay
//! useful. Secrets are never collected; `config_dump` is fetched per resource
//! type and never includes `dynamic_active_secrets`; everything is redacted
//! by one policy ([`redact`]) before it is analysed or saved.
//!
//! Schema v2 (`mesh503.io/snapshot/v2`) against v1:
//! - each object once, at the version discovery prefers for its kind
//!   (v1 listed every served version: the same DestinationRule three times);
//! - `/stats` filtered at the source to what the rules read
//!   ([`crate::envoy::stats::KEPT_STATS`], recorded in [`Snapshot::stats_filter`]);
//! - Istio's standard metrics per sidecar ([`ProxyEvidence::metrics`]);
//! - the resolved target ([`Snapshot::resolved`]), so the analysis need not
//!   resolve it again.
//!
//! v1 files still load: [`v1`] converts them in memory.

pub mod file;
pub mod redact;
pub mod v1;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use self::file::{InputFile, ReadError, MAX_INPUT_BYTES};

/// Bumped on any incompatible change of this file's types.
pub const SCHEMA: &str = "mesh503.io/snapshot/v2";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct Snapshot {
    /// Always [`SCHEMA`] in memory ([`v1::SCHEMA_V1`] files are converted on load).
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
    /// The Istio kinds discovery said the cluster serves, each at the one
    /// version its objects were listed at (the group's preferred version when
    /// it serves the kind, else the first that does).
    #[serde(default)]
    pub served_resources: Vec<ServedResource>,
    /// Kubernetes objects, verbatim but redacted (`apiVersion`, `kind`,
    /// `metadata`, `spec`, `status`): Services, Endpoints/EndpointSlices, Pods,
    /// Namespaces, the mesh ConfigMap and the Istio config objects — each
    /// object once (unique per group, kind, namespace, name).
    #[serde(default)]
    pub objects: Vec<Value>,
    /// One entry per pod whose sidecar was read (or tried).
    #[serde(default)]
    pub proxies: Vec<ProxyEvidence>,
    /// Evidence that could not be read, cluster-wide (RBAC, missing kinds, …).
    #[serde(default)]
    pub gaps: Vec<Gap>,
    /// v2: the target as collection resolved it. `None` in v1 snapshots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved: Option<ResolvedTarget>,
    /// v2: the regular expression `/stats` was filtered with (Envoy's
    /// `/stats?filter=`, partial match, RE2), so that a stat missing from
    /// [`ProxyEvidence::stats`] is known to be filtered rather than absent.
    /// `None`: unfiltered (v1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stats_filter: Option<String>,
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
    /// `GET /server_info` (JSON), without `node.extensions`, redacted.
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
    /// `GET /stats?filter=…` (text format): in v2 only the stats the rules
    /// read (see [`Snapshot::stats_filter`]); in v1 everything.
    #[serde(default)]
    pub stats: Option<String>,
    /// Tail of the `istio-proxy` container log (access log lines when
    /// enabled), redacted (query strings, tokens).
    #[serde(default)]
    pub log_tail: Option<String>,
    /// What could not be read from this proxy, and why.
    #[serde(default)]
    pub gaps: Vec<Gap>,
    /// v2: Istio's standard metrics in Prometheus text
    /// (`GET /stats/prometheus?filter=…`): `istio_requests_total` and
    /// `istio_tcp_connections_{opened,closed}_total` in every spelling
    /// (`istio.requests_total`, `envoy_istio_…`). `Some("")` when the proxy
    /// has none (no Istio stats plugin, or no traffic yet); `None` when not read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<String>,
    /// The admin filters the config was read with (`None`: unfiltered, as
    /// before, or an offline dump): the clusters, endpoints, `/clusters` and
    /// `/stats` hold only what they match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<AdminScope>,
}

/// Envoy admin filters of one sidecar read (`collect::scope`): anchored
/// regular expressions over resource names.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Default)]
pub struct AdminScope {
    /// `config_dump?name_regex=` of clusters and endpoint configs, and
    /// `/clusters?filter=`.
    pub clusters: String,
    /// `config_dump?name_regex=` of listeners.
    pub listeners: String,
}

impl AdminScope {
    /// Whether a cluster of this name would have been read. An expression
    /// that does not compile covers everything (nothing is concluded from
    /// its absence either way).
    pub fn covers_cluster(&self, name: &str) -> bool {
        regex::Regex::new(&self.clusters)
            .map(|re| re.is_match(name))
            .unwrap_or(true)
    }
}

/// A piece of evidence that was looked for and not obtained.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Gap {
    /// Where it was looked for: `pod foo/sleep-1 :15000/clusters`, `list peerauthentications.security.istio.io`.
    pub source: String,
    /// What went wrong, in the words of the error.
    pub reason: String,
}

/// A Kubernetes object named by namespace and name.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
pub struct ObjectRef {
    pub namespace: String,
    pub name: String,
}

/// A pod the diagnosis treats as a server of the target.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ServerPod {
    pub namespace: String,
    pub name: String,
    /// Why it is a server: `backs service foo/httpbin (selector app=httpbin)`.
    pub because: String,
    /// Whether it runs an Istio sidecar (classic or native).
    pub sidecar: bool,
}

/// v2: the target as collection resolved it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Default)]
pub struct ResolvedTarget {
    /// Namespace of the target (for a host `httpbin.bar:8000`, `bar`).
    pub namespace: String,
    /// The target's Services (a Service or host: one; a Deployment or Pod:
    /// those selecting its pods). Their objects are in [`Snapshot::objects`].
    pub services: Vec<ObjectRef>,
    /// The pods treated as servers, whether or not their sidecar was read.
    pub server_pods: Vec<ServerPod>,
    /// The port named on a host target (`httpbin.foo:8000`): the check is
    /// limited to it. Always 1–65535.
    #[serde(default)]
    pub port: Option<u16>,
    /// The cluster's DNS domain (`cluster.local` unless configured otherwise).
    pub cluster_domain: String,
    /// Where [`Self::cluster_domain`] was read: `--domain of pod foo/httpbin-1's
    /// istio-proxy`, `node id of pod foo/httpbin-1`, or `default`.
    pub cluster_domain_source: String,
    /// Reads this target's diagnosis cannot do without that failed (each is
    /// also in a `gaps` list): Istio config that could not be listed, the
    /// target's pods, every server sidecar. When this is not empty and no
    /// error-level cause was found, the run exits 4 ("could not check").
    #[serde(default)]
    pub missing: Vec<Gap>,
    /// v2 (routes): what collection looked up for the routes towards the
    /// target. `None` in snapshots taken before it did: a Service a route
    /// names that is not among the objects was then never looked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub routes: Option<RouteLookups>,
    /// v2 (callers): callers collection found that have no sidecar to read
    /// (a pod whose configuration names the target), and callers the
    /// server metrics count but cannot name (`pod: None`), each with how
    /// it was found. Callers with a sidecar are read proxies instead
    /// (`ProxyEvidence::chosen_because`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub callers: Vec<FoundCaller>,
}

/// A caller of the target found by collection that is not a read proxy.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct FoundCaller {
    /// The pod, when the caller is one (`None`: not attributable to a pod).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod: Option<ObjectRef>,
    /// How it was found, in words.
    pub because: String,
}

/// v2 (routes): the objects routes towards the target depend on, beyond
/// the target itself, as collection looked them up.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Default)]
pub struct RouteLookups {
    /// Services named by route destinations of the VirtualServices for the
    /// target, found: their objects, EndpointSlices and pods are in
    /// [`Snapshot::objects`].
    #[serde(default)]
    pub found: Vec<ObjectRef>,
    /// Services looked up by name that do not exist (HTTP 404).
    #[serde(default)]
    pub absent: Vec<ObjectRef>,
    /// Gateways (`ns/name`) bound by those VirtualServices whose pods were
    /// listed (by the Gateway's selector, all namespaces).
    #[serde(default)]
    pub gateway_pods_listed: Vec<String>,
}

/// Why a snapshot file was refused.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("cannot read snapshot {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("snapshot {path} is larger than {} MiB: refused before reading it all", .limit / (1024 * 1024))]
    TooLarge { path: String, limit: u64 },
    #[error("snapshot {path} is not valid JSON for schema {SCHEMA}: {source}")]
    Parse {
        path: String,
        #[source]
        source: serde_json::Error,
    },
    #[error(
        "snapshot {path} has schema {found}; this kubectl-mesh503 reads {SCHEMA} and {}",
        v1::SCHEMA_V1
    )]
    Schema { path: String, found: String },
    #[error("snapshot {path} holds no Kubernetes object ({junk} entr{} of `objects` without a kind and a name) and no proxy evidence: nothing to diagnose", if *.junk == 1 { "y" } else { "ies" })]
    Empty { path: String, junk: usize },
}

impl SnapshotError {
    pub fn hint(&self) -> String {
        match self {
            SnapshotError::Io { .. } => {
                "check the path; `--snapshot -` reads standard input".into()
            }
            SnapshotError::TooLarge { .. } => {
                "a snapshot of one diagnosis is a few MB; is this the right file?".into()
            }
            SnapshotError::Parse { .. } | SnapshotError::Empty { .. } => {
                "give a file written by `kubectl mesh503 diagnose … --save-snapshot FILE`".into()
            }
            SnapshotError::Schema { .. } => {
                "re-take it with `kubectl mesh503 diagnose … --save-snapshot FILE`".into()
            }
        }
    }
}

impl Snapshot {
    /// Load and check a snapshot file (`-` is standard input).
    pub fn load(path: &std::path::Path) -> Result<Snapshot, SnapshotError> {
        Self::read(&InputFile::from_arg(path))
    }

    /// Read a snapshot (at most [`MAX_INPUT_BYTES`], streamed), check its
    /// schema, convert v1, and refuse one with nothing to diagnose.
    pub fn read(input: &InputFile) -> Result<Snapshot, SnapshotError> {
        let path = input.name();
        let raw = file::read_json(input, MAX_INPUT_BYTES).map_err(|e| match e {
            ReadError::Io(source) => SnapshotError::Io {
                path: path.clone(),
                source,
            },
            ReadError::TooLarge { limit } => SnapshotError::TooLarge {
                path: path.clone(),
                limit,
            },
            ReadError::Json(source) => SnapshotError::Parse {
                path: path.clone(),
                source,
            },
        })?;
        Self::from_value(raw, &path)
    }

    /// Parse a snapshot from JSON text; `origin` names it in errors.
    pub fn from_json(text: &str, origin: &str) -> Result<Snapshot, SnapshotError> {
        let raw: Value = serde_json::from_str(text).map_err(|source| SnapshotError::Parse {
            path: origin.to_string(),
            source,
        })?;
        Self::from_value(raw, origin)
    }

    fn from_value(raw: Value, origin: &str) -> Result<Snapshot, SnapshotError> {
        let schema = raw.get("schema").and_then(Value::as_str).unwrap_or("");
        // For the message: a string quoted, anything else as JSON.
        let found = match raw.get("schema") {
            Some(Value::String(s)) => format!("{s:?}"),
            Some(other) => other.to_string(),
            None => "none".to_string(),
        };
        let parse = |raw| {
            serde_json::from_value::<Snapshot>(raw).map_err(|source| SnapshotError::Parse {
                path: origin.to_string(),
                source,
            })
        };
        let mut snap = match schema {
            SCHEMA => parse(raw)?,
            v1::SCHEMA_V1 => v1::upgrade(parse(raw)?),
            _ => {
                return Err(SnapshotError::Schema {
                    path: origin.to_string(),
                    found,
                })
            }
        };
        snap.drop_junk(origin)?;
        Ok(snap)
    }

    /// Removes `objects` entries that are not Kubernetes objects (no string
    /// `kind` and `metadata.name`), saying so in a gap; refuses a snapshot
    /// left with neither objects nor proxy evidence.
    fn drop_junk(&mut self, origin: &str) -> Result<(), SnapshotError> {
        let before = self.objects.len();
        self.objects.retain(is_object);
        let junk = before - self.objects.len();
        if self.objects.is_empty() && self.proxies.is_empty() {
            return Err(SnapshotError::Empty {
                path: origin.to_string(),
                junk,
            });
        }
        if junk > 0 {
            self.gaps.push(Gap {
                source: format!("snapshot {origin}"),
                reason: format!(
                    "{junk} entr{} of `objects` had no kind and name and were ignored",
                    if junk == 1 { "y" } else { "ies" }
                ),
            });
        }
        Ok(())
    }

    /// Remove what a snapshot must not carry when it is attached to a bug
    /// report; see [`redact`] for the policy.
    pub fn redact(&mut self) {
        redact::redact_snapshot(self);
    }

    /// Write the snapshot (pretty JSON) to `path` atomically.
    pub fn save(&self, path: &file::SavePath) -> std::io::Result<()> {
        let mut bytes = serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?;
        bytes.push(b'\n');
        path.write(&bytes)
    }

    /// Objects of one kind (any API group version), in snapshot order.
    pub fn objects_of_kind<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
        self.objects
            .iter()
            .filter(move |o| o.get("kind").and_then(Value::as_str) == Some(kind))
    }
}

/// A Kubernetes object: a JSON object with a string `kind` and `metadata.name`.
pub fn is_object(v: &Value) -> bool {
    v.get("kind")
        .and_then(Value::as_str)
        .is_some_and(|k| !k.is_empty())
        && v.pointer("/metadata/name")
            .and_then(Value::as_str)
            .is_some_and(|n| !n.is_empty())
}

/// Identity of an object in a v2 snapshot: API group (not version), kind,
/// namespace, name.
pub fn object_key(o: &Value) -> (String, String, String, String) {
    let s = |p: &str| {
        o.pointer(p)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let api_version = s("/apiVersion");
    let group = match api_version.split_once('/') {
        Some((g, _)) => g.to_string(),
        None => String::new(),
    };
    (
        group,
        s("/kind"),
        s("/metadata/namespace"),
        s("/metadata/name"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn wrong_schema_is_refused_with_a_hint() {
        let e = Snapshot::from_json(r#"{"schema": "other"}"#, "f.json").unwrap_err();
        assert!(matches!(e, SnapshotError::Schema { .. }));
        assert!(e.hint().contains("re-take it"), "{}", e.hint());
        let e = Snapshot::from_json(r#"{"schema": 5}"#, "f.json").unwrap_err();
        assert!(e.to_string().contains("has schema 5;"), "{e}");
        let e = Snapshot::from_json("{}", "f.json").unwrap_err();
        assert!(e.to_string().contains("has schema none;"), "{e}");
        let e = Snapshot::from_json("not json", "f.json").unwrap_err();
        assert!(e.to_string().contains("f.json"), "{e}");
    }

    fn minimal(objects: Value) -> Value {
        json!({"schema": SCHEMA, "tool_version": "t", "taken_at": "t", "target": "svc/x",
               "namespace": "foo", "istio_namespace": "istio-system", "objects": objects})
    }

    #[test]
    fn junk_objects_are_refused_or_noted() {
        let all_junk =
            minimal(json!([1, "x", {}, {"kind": "Service"}, {"metadata": {"name": "a"}}]));
        let e = Snapshot::from_json(&all_junk.to_string(), "j.json").unwrap_err();
        assert!(matches!(e, SnapshotError::Empty { junk: 5, .. }), "{e}");
        let e = Snapshot::from_json(&minimal(json!([])).to_string(), "e.json").unwrap_err();
        assert!(matches!(e, SnapshotError::Empty { junk: 0, .. }), "{e}");
        let some =
            minimal(json!([1, {"kind": "Service", "metadata": {"name": "x", "namespace": "foo"}}]));
        let s = Snapshot::from_json(&some.to_string(), "s.json").unwrap();
        assert_eq!(s.objects.len(), 1);
        assert!(
            s.gaps.iter().any(|g| g.reason.contains("1 entry")),
            "{:?}",
            s.gaps
        );
    }

    #[test]
    fn v2_round_trips_with_its_new_fields() {
        let mut s: Snapshot = serde_json::from_value(minimal(json!([
            {"kind": "Service", "metadata": {"name": "x", "namespace": "foo"}}
        ])))
        .unwrap();
        s.resolved = Some(ResolvedTarget {
            namespace: "foo".into(),
            services: vec![ObjectRef {
                namespace: "foo".into(),
                name: "x".into(),
            }],
            port: Some(8000),
            cluster_domain: "cluster.local".into(),
            cluster_domain_source: "default".into(),
            ..ResolvedTarget::default()
        });
        s.stats_filter = Some("x$".into());
        let text = serde_json::to_string(&s).unwrap();
        assert_eq!(Snapshot::from_json(&text, "r").unwrap(), s);
    }

    #[test]
    fn keys_ignore_the_version() {
        let a = json!({"apiVersion": "networking.istio.io/v1", "kind": "DestinationRule", "metadata": {"name": "d", "namespace": "foo"}});
        let b = json!({"apiVersion": "networking.istio.io/v1alpha3", "kind": "DestinationRule", "metadata": {"name": "d", "namespace": "foo"}});
        assert_eq!(object_key(&a), object_key(&b));
        let core = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}});
        assert_eq!(object_key(&core).0, "");
    }
}
