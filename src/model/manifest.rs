//! Model stage: apply-ready manifests of the objects the model holds.
//!
//! The one place a fix touches an object's JSON: the analysis asks for a
//! typed change ("set `tls.mode` ISTIO_MUTUAL at the top level / for port
//! 8000") and gets YAML for `kubectl apply -f -`. A manifest keeps what
//! `kubectl apply` needs (apiVersion, kind, name, namespace, labels,
//! annotations without `last-applied-configuration`, spec) so the rest of the
//! rule survives the edit.

use serde_json::{json, Map, Value};

/// Where a DestinationRule's `tls` goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsAt {
    /// `spec.trafficPolicy.tls`.
    TopLevel,
    /// `tls` of each `spec.trafficPolicy.portLevelSettings[]` entry for this service port.
    PortLevel(u32),
}

/// An object ready for `kubectl apply -f -`.
#[derive(Debug, Clone, PartialEq)]
pub struct Manifest {
    obj: Value,
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

    /// This DestinationRule with `tls: {mode}` set at `at`.
    pub fn with_tls_mode(&self, at: TlsAt, mode: &str) -> Manifest {
        let mut obj = self.obj.clone();
        match at {
            TlsAt::PortLevel(port) => {
                if let Some(entries) =
                    obj["spec"]["trafficPolicy"]["portLevelSettings"].as_array_mut()
                {
                    for e in entries.iter_mut() {
                        if e["port"]["number"].as_u64() == Some(port as u64) {
                            e["tls"] = json!({ "mode": mode });
                        }
                    }
                }
            }
            TlsAt::TopLevel => {
                if !obj["spec"].is_object() {
                    obj["spec"] = json!({});
                }
                if !obj["spec"]["trafficPolicy"].is_object() {
                    obj["spec"]["trafficPolicy"] = json!({});
                }
                obj["spec"]["trafficPolicy"]["tls"] = json!({ "mode": mode });
            }
        }
        Manifest { obj }
    }

    pub fn api_version(&self) -> &str {
        self.obj["apiVersion"].as_str().unwrap_or("")
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
