//! The objects istiod watches, as plain Kubernetes JSON, and the mesh
//! config it reads from the `istio` ConfigMap.

use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

/// Everything in the lab's store, as `kubectl get -o json` would show it.
///
/// Lookups by kind, namespace, pod name and pod IP go through an index
/// built on first use (and rebuilt when `objects` grew or shrank), so
/// rendering one proxy stays linear in the mesh's size.
#[derive(Debug, Clone, Default)]
pub struct World {
    pub objects: Vec<Value>,
    index: IndexCell,
}

type KindKey = (String, String);

#[derive(Default)]
struct Index {
    len: usize,
    /// (group, kind) → positions in `objects`.
    by_kind: HashMap<KindKey, Vec<usize>>,
    /// (group, kind, namespace) → positions.
    by_kind_ns: HashMap<(String, String, String), Vec<usize>>,
    /// (namespace, name) → the Pod's position.
    pods: HashMap<(String, String), usize>,
    /// status.podIP → the first Pod with it.
    pod_ips: HashMap<String, usize>,
}

#[derive(Default)]
struct IndexCell(Mutex<Option<Arc<Index>>>);

impl std::fmt::Debug for IndexCell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IndexCell")
    }
}

impl Clone for IndexCell {
    fn clone(&self) -> Self {
        IndexCell::default()
    }
}

fn group_of(o: &Value) -> &str {
    o["apiVersion"]
        .as_str()
        .unwrap_or("")
        .rsplit_once('/')
        .map(|(g, _)| g)
        .unwrap_or("")
}

impl Index {
    fn build(objects: &[Value]) -> Index {
        let mut ix = Index {
            len: objects.len(),
            ..Index::default()
        };
        for (i, o) in objects.iter().enumerate() {
            let group = group_of(o).to_string();
            let kind = o["kind"].as_str().unwrap_or("").to_string();
            let ns = namespace(o).to_string();
            if kind == "Pod" && group.is_empty() {
                ix.pods
                    .entry((ns.clone(), name(o).to_string()))
                    .or_insert(i);
                if let Some(ip) = o["status"]["podIP"].as_str() {
                    ix.pod_ips.entry(ip.to_string()).or_insert(i);
                }
            }
            ix.by_kind_ns
                .entry((group.clone(), kind.clone(), ns))
                .or_default()
                .push(i);
            ix.by_kind.entry((group, kind)).or_default().push(i);
        }
        ix
    }
}

/// Label on the `istio-system/istio` ConfigMap naming the modelled Istio
/// release (`"1.0"`, `"1.24"`, …).
pub const VERSION_LABEL: &str = "lab.mesh503.io/istio-version";

/// The Istio release the lab models when the ConfigMap does not say: the
/// newest release as of 2026-12-01, 1.31 (1.31.0 announced 2026-08-20,
/// 1.31.1 on 2026-09-21 in istio/istio.io `content/en/news/releases/1.31.x`;
/// istio/istio tag `1.31.0-rc.0` and branch `release-1.31`; no 1.32 yet).
pub const DEFAULT_VERSION: (u32, u32) = (1, 31);

impl World {
    pub fn new(objects: Vec<Value>) -> World {
        World {
            objects,
            index: IndexCell::default(),
        }
    }

    fn index(&self) -> Arc<Index> {
        let mut g = self.index.0.lock().unwrap_or_else(|e| e.into_inner());
        match g.as_ref() {
            Some(ix) if ix.len == self.objects.len() => ix.clone(),
            _ => {
                let ix = Arc::new(Index::build(&self.objects));
                *g = Some(ix.clone());
                ix
            }
        }
    }

    fn positions<'a>(&'a self, ids: Option<&Vec<usize>>) -> impl Iterator<Item = &'a Value> + 'a {
        let ids = ids.cloned().unwrap_or_default();
        ids.into_iter().filter_map(move |i| self.objects.get(i))
    }

    /// Objects of a kind in one namespace, any version, in store order.
    pub fn of_kind_in<'a>(
        &'a self,
        group: &str,
        kind: &str,
        ns: &str,
    ) -> impl Iterator<Item = &'a Value> + 'a {
        let ix = self.index();
        let key = (group.to_string(), kind.to_string(), ns.to_string());
        self.positions(ix.by_kind_ns.get(&key))
    }

    /// The first pod whose `status.podIP` is `ip`.
    pub fn pod_by_ip(&self, ip: &str) -> Option<&Value> {
        let i = *self.index().pod_ips.get(ip)?;
        self.objects.get(i)
    }

    /// `(1, minor)` from the `istio` ConfigMap's `lab.mesh503.io/istio-version`
    /// label; [`DEFAULT_VERSION`] when absent or unreadable.
    pub fn istio_version(&self) -> (u32, u32) {
        istio_version_of(&self.objects)
    }

    /// The `istio` ConfigMap in `istio-system` (where istiod reads mesh config).
    pub fn istio_configmap(&self) -> Option<&Value> {
        istio_configmap_of(&self.objects)
    }

    /// The parsed `data.mesh` of the `istio` ConfigMap (`{}` when absent).
    pub fn mesh_config(&self) -> MeshConfig {
        let raw: Value = self
            .istio_configmap()
            .and_then(|cm| cm["data"]["mesh"].as_str())
            .and_then(|s| serde_yaml::from_str::<Value>(s).ok())
            .filter(|v| v.is_object())
            .unwrap_or_else(|| Value::Object(Default::default()));
        MeshConfig::from_value(&raw)
    }

    /// Objects of an API group (`""` for core) and kind, any version.
    pub fn of_kind<'a>(
        &'a self,
        group: &'a str,
        kind: &'a str,
    ) -> impl Iterator<Item = &'a Value> + 'a {
        let ix = self.index();
        self.positions(ix.by_kind.get(&(group.to_string(), kind.to_string())))
    }

    pub fn pods(&self) -> impl Iterator<Item = &Value> {
        self.of_kind("", "Pod")
    }

    pub fn find_pod(&self, ns: &str, pod_name: &str) -> Option<&Value> {
        let i = *self
            .index()
            .pods
            .get(&(ns.to_string(), pod_name.to_string()))?;
        self.objects.get(i)
    }

    /// Labels of a Namespace object (empty when it is not declared).
    pub fn namespace_labels(&self, ns: &str) -> BTreeMap<String, String> {
        self.of_kind("", "Namespace")
            .find(|n| name(n) == ns)
            .map(labels)
            .unwrap_or_default()
    }
}

/// `"1.24"`, `"1.24.3"`, `"v1.9"` → `(1, 24)`.
/// [`World::istio_version`] for a plain object list (the controller's view).
pub fn istio_version_of(objects: &[Value]) -> (u32, u32) {
    istio_configmap_of(objects)
        .and_then(|cm| cm["metadata"]["labels"][VERSION_LABEL].as_str())
        .and_then(parse_version)
        .unwrap_or(DEFAULT_VERSION)
}

fn istio_configmap_of(objects: &[Value]) -> Option<&Value> {
    objects.iter().find(|o| {
        is_kind(o, "", "ConfigMap") && name(o) == "istio" && namespace(o) == "istio-system"
    })
}

pub fn parse_version(s: &str) -> Option<(u32, u32)> {
    let s = s.trim().trim_start_matches('v');
    let mut it = s.split('.');
    let major = it.next()?.parse().ok()?;
    let minor = it.next()?.parse().ok()?;
    Some((major, minor))
}

/// The fields of `meshConfig` the model uses (istio/api `mesh/v1alpha1/config.proto`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeshConfig {
    /// `rootNamespace`, default `istio-system`.
    pub root_namespace: String,
    /// `enableAutoMtls` as written (None = not set; the default depends on the version).
    pub enable_auto_mtls: Option<bool>,
    /// `outboundTrafficPolicy.mode`: true for ALLOW_ANY (the default), false for REGISTRY_ONLY.
    pub outbound_allow_any: bool,
    /// `accessLogFile` when non-empty.
    pub access_log_file: Option<String>,
    /// `accessLogEncoding: JSON`.
    pub access_log_json: bool,
    /// `trustDomain`, default `cluster.local`.
    pub trust_domain: String,
}

impl MeshConfig {
    pub fn from_value(v: &Value) -> MeshConfig {
        MeshConfig {
            root_namespace: v["rootNamespace"]
                .as_str()
                .filter(|s| !s.is_empty())
                .unwrap_or("istio-system")
                .to_string(),
            enable_auto_mtls: v["enableAutoMtls"]
                .as_bool()
                .or_else(|| v["enableAutoMtls"].as_str().and_then(|s| s.parse().ok())),
            outbound_allow_any: v["outboundTrafficPolicy"]["mode"].as_str()
                != Some("REGISTRY_ONLY"),
            access_log_file: v["accessLogFile"]
                .as_str()
                .filter(|s| !s.is_empty())
                .map(str::to_string),
            access_log_json: v["accessLogEncoding"].as_str() == Some("JSON"),
            trust_domain: v["trustDomain"]
                .as_str()
                .filter(|s| !s.is_empty())
                .unwrap_or(crate::pki::TRUST_DOMAIN)
                .to_string(),
        }
    }
}

impl Default for MeshConfig {
    fn default() -> Self {
        MeshConfig::from_value(&Value::Object(Default::default()))
    }
}

/// Is `o` of this API group (`""` = core) and kind, whatever the version?
pub fn is_kind(o: &Value, group: &str, kind: &str) -> bool {
    if o["kind"].as_str() != Some(kind) {
        return false;
    }
    let api = o["apiVersion"].as_str().unwrap_or("");
    match api.rsplit_once('/') {
        Some((g, _)) => g == group,
        None => group.is_empty(),
    }
}

/// The version part of `apiVersion` (`v1alpha3` of `networking.istio.io/v1alpha3`).
pub fn api_version(o: &Value) -> &str {
    let api = o["apiVersion"].as_str().unwrap_or("");
    api.rsplit_once('/').map(|(_, v)| v).unwrap_or(api)
}

pub fn name(o: &Value) -> &str {
    o["metadata"]["name"].as_str().unwrap_or("")
}

pub fn namespace(o: &Value) -> &str {
    o["metadata"]["namespace"].as_str().unwrap_or("")
}

/// `metadata.creationTimestamp` (RFC 3339 sorts as text; missing sorts first).
pub fn created(o: &Value) -> &str {
    o["metadata"]["creationTimestamp"].as_str().unwrap_or("")
}

/// String map at `metadata.labels`.
pub fn labels(o: &Value) -> BTreeMap<String, String> {
    string_map(&o["metadata"]["labels"])
}

pub fn annotation<'a>(o: &'a Value, key: &str) -> Option<&'a str> {
    o["metadata"]["annotations"][key].as_str()
}

/// A JSON object of strings as a map (non-strings skipped).
pub fn string_map(v: &Value) -> BTreeMap<String, String> {
    v.as_object()
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

/// Does the selector (all its labels) match? An empty selector matches all.
pub fn selects(selector: &BTreeMap<String, String>, labels: &BTreeMap<String, String>) -> bool {
    selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

/// Sort key Istio uses for "oldest first": creation time, then name, then namespace
/// (istio/istio `pkg/config/model.go` `sortConfigByCreationTime`).
pub fn age_key(o: &Value) -> (String, String, String) {
    (
        created(o).to_string(),
        name(o).to_string(),
        namespace(o).to_string(),
    )
}

/// A list of strings at `v` (a single string counts as a one-element list).
pub fn string_list(v: &Value) -> Vec<String> {
    match v {
        Value::Array(a) => a
            .iter()
            .filter_map(|x| x.as_str().map(str::to_string))
            .collect(),
        Value::String(s) => vec![s.clone()],
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn version_from_configmap_label() {
        let w = World::new(vec![json!({"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "istio", "namespace": "istio-system", "labels": {VERSION_LABEL: "1.0"}},
                "data": {"mesh": "enableAutoMtls: false\naccessLogFile: /dev/stdout\nrootNamespace: istio-config\n"}})]);
        assert_eq!(w.istio_version(), (1, 0));
        let m = w.mesh_config();
        assert_eq!(m.enable_auto_mtls, Some(false));
        assert_eq!(m.access_log_file.as_deref(), Some("/dev/stdout"));
        assert_eq!(m.root_namespace, "istio-config");
        assert!(m.outbound_allow_any);
        assert_eq!(World::default().istio_version(), (1, 31));
        assert_eq!(parse_version("1.24.3"), Some((1, 24)));
    }

    #[test]
    fn kinds_match_any_version_of_a_group() {
        let dr = json!({"apiVersion": "networking.istio.io/v1alpha3", "kind": "DestinationRule"});
        assert!(is_kind(&dr, "networking.istio.io", "DestinationRule"));
        assert!(!is_kind(&dr, "", "DestinationRule"));
        assert!(is_kind(
            &json!({"apiVersion": "v1", "kind": "Pod"}),
            "",
            "Pod"
        ));
        assert_eq!(api_version(&dr), "v1alpha3");
    }
}
