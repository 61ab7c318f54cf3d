//! Model stage: apply-ready manifests of the objects the model holds.
//!
//! The one place a fix touches an object's JSON: the analysis asks for a
//! typed change ("set `tls.mode` ISTIO_MUTUAL at the top level / for port
//! 8000") and gets YAML for `kubectl apply -f -`. A manifest keeps what
//! `kubectl apply` needs (apiVersion, kind, name, namespace, labels,
//! annotations without `last-applied-configuration`, spec) so the rest of the
//! rule survives the edit.

use std::collections::BTreeMap;

use serde::{Serialize, Serializer};
use serde_json::{json, Map, Value};

use crate::istio::object::ObjectRef;

/// Where a DestinationRule traffic-policy field goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsAt {
    /// `spec.trafficPolicy.<field>`.
    TopLevel,
    /// `<field>` of each `spec.trafficPolicy.portLevelSettings[]` entry for this
    /// service port (entries are never created: a new entry would replace the
    /// whole policy for its port).
    PortLevel(u32),
}

/// A connection-pool limit of a DestinationRule (istio/api
/// `ConnectionPoolSettings`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum PoolField {
    /// `tcp.maxConnections`.
    MaxConnections,
    /// `http.http1MaxPendingRequests`.
    Http1MaxPendingRequests,
    /// `http.http2MaxRequests`.
    Http2MaxRequests,
    /// `http.maxRequestsPerConnection`.
    MaxRequestsPerConnection,
    /// `http.maxRetries`.
    MaxRetries,
}

impl PoolField {
    /// `(tcp|http, fieldName)` as written in a DestinationRule.
    pub fn path(self) -> (&'static str, &'static str) {
        match self {
            PoolField::MaxConnections => ("tcp", "maxConnections"),
            PoolField::Http1MaxPendingRequests => ("http", "http1MaxPendingRequests"),
            PoolField::Http2MaxRequests => ("http", "http2MaxRequests"),
            PoolField::MaxRequestsPerConnection => ("http", "maxRequestsPerConnection"),
            PoolField::MaxRetries => ("http", "maxRetries"),
        }
    }
}

/// An object ready for `kubectl apply -f -`.
#[derive(Debug, Clone, PartialEq)]
pub struct Manifest {
    obj: Value,
}

/// Serialized as the object itself (the JSON report carries manifests as data).
impl Serialize for Manifest {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.obj.serialize(s)
    }
}

fn ensure_object<'a>(v: &'a mut Value, key: &str) -> &'a mut Value {
    if !v[key].is_object() {
        v[key] = json!({});
    }
    &mut v[key]
}

fn labels_value(labels: &BTreeMap<String, String>) -> Value {
    Value::Object(
        labels
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect(),
    )
}

impl Manifest {
    /// Trim an object as read to what `kubectl apply` needs.
    pub fn from_object(obj: &Value) -> Manifest {
        let md = &obj["metadata"];
        let mut meta = Map::new();
        meta.insert("name".into(), md["name"].clone());
        if !md["namespace"].is_null() {
            meta.insert("namespace".into(), md["namespace"].clone());
        }
        if let Some(l) = md["labels"].as_object().filter(|l| !l.is_empty()) {
            meta.insert("labels".into(), Value::Object(l.clone()));
        }
        if let Some(a) = md["annotations"].as_object() {
            let mut a = a.clone();
            a.remove("kubectl.kubernetes.io/last-applied-configuration");
            if !a.is_empty() {
                meta.insert("annotations".into(), Value::Object(a));
            }
        }
        Manifest {
            obj: json!({"apiVersion": obj["apiVersion"], "kind": obj["kind"],
                        "metadata": Value::Object(meta), "spec": obj["spec"]}),
        }
    }

    /// A new DestinationRule for `host` with only `trafficPolicy.tls.mode`.
    pub fn new_destination_rule(
        api_version: &str,
        namespace: &str,
        name: &str,
        host: &str,
        tls_mode: &str,
    ) -> Manifest {
        Manifest {
            obj: json!({"apiVersion": api_version, "kind": "DestinationRule",
                "metadata": {"name": name, "namespace": namespace},
                "spec": {"host": host, "trafficPolicy": {"tls": {"mode": tls_mode}}}}),
        }
    }

    /// A new DestinationRule for `host` with no policy yet (for subsets).
    pub fn new_empty_destination_rule(
        api_version: &str,
        namespace: &str,
        name: &str,
        host: &str,
    ) -> Manifest {
        Manifest {
            obj: json!({"apiVersion": api_version, "kind": "DestinationRule",
                "metadata": {"name": name, "namespace": namespace},
                "spec": {"host": host}}),
        }
    }

    /// A new workload-scoped `PeerAuthentication` selecting `selector`, with
    /// `mtls.mode` when given and one `portLevelMtls` entry when given
    /// (keys are container ports).
    pub fn new_peer_authentication(
        api_version: &str,
        namespace: &str,
        name: &str,
        selector: &BTreeMap<String, String>,
        mode: Option<&str>,
        port_level: Option<(u32, &str)>,
    ) -> Manifest {
        let mut spec = json!({"selector": {"matchLabels": labels_value(selector)}});
        if let Some(m) = mode {
            spec["mtls"] = json!({ "mode": m });
        }
        if let Some((port, m)) = port_level {
            spec["portLevelMtls"] = json!({ port.to_string(): {"mode": m} });
        }
        Manifest {
            obj: json!({"apiVersion": api_version, "kind": "PeerAuthentication",
                "metadata": {"name": name, "namespace": namespace}, "spec": spec}),
        }
    }

    /// A copy of this object as a new one named `namespace/name`: the spec
    /// is kept, labels and annotations are not (they belong to the original).
    pub fn renamed(&self, namespace: &str, name: &str) -> Manifest {
        let mut obj = self.obj.clone();
        obj["metadata"] = json!({"name": name, "namespace": namespace});
        Manifest { obj }
    }

    /// This DestinationRule for another `spec.host`.
    pub fn with_host(&self, host: &str) -> Manifest {
        let mut obj = self.obj.clone();
        ensure_object(&mut obj, "spec")["host"] = json!(host);
        Manifest { obj }
    }

    /// This DestinationRule without `spec.exportTo` (visible everywhere).
    pub fn without_export_to(&self) -> Manifest {
        let mut obj = self.obj.clone();
        if let Some(spec) = obj["spec"].as_object_mut() {
            spec.remove("exportTo");
        }
        Manifest { obj }
    }

    /// This DestinationRule applied only to clients with these labels
    /// (`spec.workloadSelector.matchLabels`, Istio 1.14+).
    pub fn with_workload_selector(&self, labels: &BTreeMap<String, String>) -> Manifest {
        let mut obj = self.obj.clone();
        ensure_object(&mut obj, "spec")["workloadSelector"] =
            json!({"matchLabels": labels_value(labels)});
        Manifest { obj }
    }

    /// Apply `edit` to the traffic policy at `at` (top level, or every
    /// existing port-level entry for the port).
    fn edit_policy(&self, at: TlsAt, edit: impl Fn(&mut Value)) -> Manifest {
        let mut obj = self.obj.clone();
        let tp = ensure_object(ensure_object(&mut obj, "spec"), "trafficPolicy");
        match at {
            TlsAt::PortLevel(port) => {
                if let Some(entries) = tp["portLevelSettings"].as_array_mut() {
                    for e in entries.iter_mut() {
                        if e["port"]["number"].as_u64() == Some(port as u64) {
                            edit(e);
                        }
                    }
                }
            }
            TlsAt::TopLevel => edit(tp),
        }
        Manifest { obj }
    }

    /// This DestinationRule with `tls: {mode}` set at `at`.
    pub fn with_tls_mode(&self, at: TlsAt, mode: &str) -> Manifest {
        self.edit_policy(at, |p| p["tls"] = json!({ "mode": mode }))
    }

    /// This DestinationRule with one connection-pool limit set at `at`.
    pub fn with_pool_limit(&self, at: TlsAt, field: PoolField, value: i64) -> Manifest {
        let (group, name) = field.path();
        self.edit_policy(at, |p| {
            let pool = ensure_object(p, "connectionPool");
            ensure_object(pool, group)[name] = json!(value);
        })
    }

    /// This DestinationRule with `connectionPool.http.idleTimeout` set at `at`.
    pub fn with_idle_timeout(&self, at: TlsAt, duration: &str) -> Manifest {
        self.edit_policy(at, |p| {
            let pool = ensure_object(p, "connectionPool");
            ensure_object(pool, "http")["idleTimeout"] = json!(duration);
        })
    }

    /// This DestinationRule with `outlierDetection.<field>` set at `at`
    /// (the field name as the running release reads it).
    pub fn with_outlier_field(&self, at: TlsAt, field: &str, value: i64) -> Manifest {
        self.edit_policy(at, |p| {
            ensure_object(p, "outlierDetection")[field] = json!(value);
        })
    }

    /// This DestinationRule with one more subset.
    pub fn with_subset(&self, name: &str, labels: &BTreeMap<String, String>) -> Manifest {
        let mut obj = self.obj.clone();
        let spec = ensure_object(&mut obj, "spec");
        if !spec["subsets"].is_array() {
            spec["subsets"] = json!([]);
        }
        if let Some(a) = spec["subsets"].as_array_mut() {
            a.push(json!({"name": name, "labels": labels_value(labels)}));
        }
        Manifest { obj }
    }

    /// This PeerAuthentication with `spec.mtls.mode` set.
    pub fn with_pa_mode(&self, mode: &str) -> Manifest {
        let mut obj = self.obj.clone();
        ensure_object(ensure_object(&mut obj, "spec"), "mtls")["mode"] = json!(mode);
        Manifest { obj }
    }

    /// This PeerAuthentication with `spec.portLevelMtls[port].mode` set
    /// (`port` is a container port).
    pub fn with_pa_port_mode(&self, port: u32, mode: &str) -> Manifest {
        let mut obj = self.obj.clone();
        ensure_object(ensure_object(&mut obj, "spec"), "portLevelMtls")[port.to_string()] =
            json!({ "mode": mode });
        Manifest { obj }
    }

    /// This legacy `Policy`/`MeshPolicy` with an `mtls` peer first in
    /// `spec.peers` (`{mtls: {}}` = STRICT, `{mtls: {mode: PERMISSIVE}}`);
    /// other peers stay, an earlier `mtls` entry is replaced.
    pub fn with_legacy_peer_mtls(&self, permissive: bool) -> Manifest {
        let mut obj = self.obj.clone();
        let spec = ensure_object(&mut obj, "spec");
        let mut peers: Vec<Value> = spec["peers"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter(|p| p.get("mtls").is_none())
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        let entry = if permissive {
            json!({"mtls": {"mode": "PERMISSIVE"}})
        } else {
            json!({"mtls": {}})
        };
        peers.insert(0, entry);
        spec["peers"] = Value::Array(peers);
        Manifest { obj }
    }

    /// This VirtualService with `subset` dropped from every route destination
    /// that names `host` (as written) and that subset: those routes go to
    /// every pod of the host again.
    pub fn without_route_subset(&self, host: &str, subset: &str) -> Manifest {
        let mut obj = self.obj.clone();
        for kind in ["http", "tcp", "tls"] {
            let Some(routes) = obj
                .get_mut("spec")
                .and_then(|s| s.get_mut(kind))
                .and_then(|v| v.as_array_mut())
            else {
                continue;
            };
            for r in routes.iter_mut() {
                let Some(dests) = r.get_mut("route").and_then(|v| v.as_array_mut()) else {
                    continue;
                };
                for d in dests.iter_mut() {
                    let Some(dest) = d.get_mut("destination").and_then(|v| v.as_object_mut())
                    else {
                        continue;
                    };
                    if dest.get("host").and_then(|v| v.as_str()) == Some(host)
                        && dest.get("subset").and_then(|v| v.as_str()) == Some(subset)
                    {
                        dest.remove("subset");
                    }
                }
            }
        }
        Manifest { obj }
    }

    pub fn api_version(&self) -> &str {
        self.obj["apiVersion"].as_str().unwrap_or("")
    }

    pub fn kind(&self) -> &str {
        self.obj["kind"].as_str().unwrap_or("")
    }

    pub fn name(&self) -> &str {
        self.obj["metadata"]["name"].as_str().unwrap_or("")
    }

    /// Empty for cluster-scoped objects.
    pub fn namespace(&self) -> &str {
        self.obj["metadata"]["namespace"].as_str().unwrap_or("")
    }

    pub fn object_ref(&self) -> ObjectRef {
        ObjectRef {
            kind: self.kind().to_string(),
            namespace: self.namespace().to_string(),
            name: self.name().to_string(),
        }
    }

    /// The object, for the model to read back (a fix evaluated).
    pub(super) fn value(&self) -> &Value {
        &self.obj
    }

    /// YAML for `kubectl apply -f -`.
    pub fn to_yaml(&self) -> String {
        serde_yaml::to_string(&self.obj).unwrap_or_else(|e| format!("# cannot render YAML: {e}\n"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edits_keep_the_rest_of_the_rule_and_drop_last_applied() {
        let m = Manifest::from_object(&json!({
            "apiVersion": "networking.istio.io/v1", "kind": "DestinationRule",
            "metadata": {"name": "httpbin", "namespace": "foo", "resourceVersion": "7",
                "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{…}"}},
            "spec": {"host": "httpbin", "trafficPolicy": {"connectionPool": {"tcp": {"maxConnections": 1}},
                "portLevelSettings": [{"port": {"number": 8000}}, {"port": {"number": 9000}}]}}}));
        let top: Value =
            serde_yaml::from_str(&m.with_tls_mode(TlsAt::TopLevel, "ISTIO_MUTUAL").to_yaml())
                .unwrap();
        assert_eq!(top["spec"]["trafficPolicy"]["tls"]["mode"], "ISTIO_MUTUAL");
        assert_eq!(
            top["spec"]["trafficPolicy"]["connectionPool"]["tcp"]["maxConnections"],
            1
        );
        assert!(top["metadata"].get("resourceVersion").is_none());
        assert!(top["metadata"].get("annotations").is_none());
        let port: Value =
            serde_yaml::from_str(&m.with_tls_mode(TlsAt::PortLevel(8000), "DISABLE").to_yaml())
                .unwrap();
        assert_eq!(
            port["spec"]["trafficPolicy"]["portLevelSettings"][0]["tls"]["mode"],
            "DISABLE"
        );
        assert!(port["spec"]["trafficPolicy"]["portLevelSettings"][1]
            .get("tls")
            .is_none());
        let new = Manifest::new_destination_rule(
            "networking.istio.io/v1",
            "foo",
            "httpbin-mtls",
            "httpbin.foo.svc.cluster.local",
            "ISTIO_MUTUAL",
        );
        assert_eq!(new.api_version(), "networking.istio.io/v1");
        assert!(new.to_yaml().contains("mode: ISTIO_MUTUAL"));
    }
}
