//! The resource types the lab's API server serves, per modelled Istio era.
//!
//! Core Kubernetes kinds are always served. Istio kinds come and go with the
//! Istio minor version the scenario models: `authentication.istio.io`
//! (MeshPolicy, Policy) up to 1.5, `security.istio.io` PeerAuthentication from
//! 1.5 (v1beta1, plus v1 from 1.22), the `networking.istio.io` kinds in
//! v1alpha3 always, v1beta1 from 1.8 and v1 from 1.22, and
//! `telemetry.istio.io` Telemetry from 1.10 (v1alpha1, plus v1 from 1.22).
//! The preferred version of a group is the newest one served.

/// One served resource type (a kind and its plural, in one group).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceType {
    /// API group, `""` for the core group.
    pub group: &'static str,
    /// Served versions, preferred first.
    pub versions: Vec<&'static str>,
    pub kind: &'static str,
    pub plural: &'static str,
    pub singular: &'static str,
    pub namespaced: bool,
    pub short_names: Vec<&'static str>,
    /// API verbs as discovery lists them.
    pub verbs: Vec<&'static str>,
}

impl ResourceType {
    /// The preferred (first) served version.
    pub fn preferred_version(&self) -> &'static str {
        self.versions[0]
    }

    /// `group/version` (or just `version` for the core group).
    pub fn api_version(&self, version: &str) -> String {
        if self.group.is_empty() {
            version.to_string()
        } else {
            format!("{}/{}", self.group, version)
        }
    }

    /// Whether `version` is served.
    pub fn serves(&self, version: &str) -> bool {
        self.versions.contains(&version)
    }

    /// `plural` or `plural.group`, as Kubernetes names it in messages.
    pub fn qualified_plural(&self) -> String {
        if self.group.is_empty() {
            self.plural.to_string()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    /// Whether this is an Istio kind (a CRD on a real cluster).
    pub fn is_custom(&self) -> bool {
        self.group.ends_with("istio.io")
    }

    /// Whether this is a review kind (`authorization.k8s.io`): created to be
    /// answered, never stored.
    pub fn is_review(&self) -> bool {
        self.group == "authorization.k8s.io"
    }

    /// Whether the type only ever reads as empty (Secrets: the lab never
    /// holds any, and the plugin must never read them).
    pub fn read_only_empty(&self) -> bool {
        self.group.is_empty() && self.kind == "Secret"
    }

    /// Subresources served for this type, with the verbs discovery lists.
    pub fn subresources(&self) -> Vec<(&'static str, Vec<&'static str>)> {
        let mut subs = Vec::new();
        match (self.group, self.kind) {
            ("", "Pod") => {
                subs.push(("log", vec!["get"]));
                subs.push(("portforward", vec!["create", "get"]));
                subs.push(("status", vec!["get", "patch", "update"]));
            }
            ("", "Service") | ("", "Namespace") | ("", "Node") => {
                subs.push(("status", vec!["get", "patch", "update"]));
            }
            ("apps", "Deployment") | ("apps", "ReplicaSet") => {
                subs.push(("scale", vec!["get", "patch", "update"]));
                subs.push(("status", vec!["get", "patch", "update"]));
            }
            _ if self.is_custom() => subs.push(("status", vec!["get", "patch", "update"])),
            _ => {}
        }
        subs
    }

    /// Discovery categories (`kubectl get all`, `kubectl get istio-io`).
    pub fn categories(&self) -> Vec<&'static str> {
        match (self.group, self.kind) {
            ("", "Pod") | ("", "Service") | ("apps", "Deployment") | ("apps", "ReplicaSet") => {
                vec!["all"]
            }
            ("networking.istio.io", _) => vec!["istio-io", "networking-istio-io"],
            ("security.istio.io", _) => vec!["istio-io", "security-istio-io"],
            ("authentication.istio.io", _) => vec!["istio-io", "authentication-istio-io"],
            ("telemetry.istio.io", _) => vec!["istio-io", "telemetry-istio-io"],
            _ => vec![],
        }
    }
}

const RW: [&str; 8] = [
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

fn rt(
    group: &'static str,
    versions: Vec<&'static str>,
    kind: &'static str,
    plural: &'static str,
    namespaced: bool,
    short_names: Vec<&'static str>,
) -> ResourceType {
    ResourceType {
        group,
        versions,
        kind,
        plural,
        singular: leak_lower(kind),
        namespaced,
        short_names,
        verbs: RW.to_vec(),
    }
}

fn leak_lower(kind: &'static str) -> &'static str {
    // Kinds are a fixed small set; intern their lowercase forms once.
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};
    static CACHE: OnceLock<Mutex<HashMap<&'static str, &'static str>>> = OnceLock::new();
    let mut map = CACHE
        .get_or_init(|| Mutex::new(HashMap::new()))
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    map.entry(kind)
        .or_insert_with(|| Box::leak(kind.to_ascii_lowercase().into_boxed_str()))
}

/// The set of served resource types.
#[derive(Debug, Clone)]
pub struct Registry {
    types: Vec<ResourceType>,
    istio_minor: u32,
}

impl Registry {
    /// `istio_minor` is the Istio 1.x minor version the scenario models (e.g.
    /// 0 for 1.0, 24 for 1.24).
    pub fn for_istio(istio_minor: u32) -> Registry {
        let m = istio_minor;
        let mut types = vec![
            rt("", vec!["v1"], "Namespace", "namespaces", false, vec!["ns"]),
            rt("", vec!["v1"], "Pod", "pods", true, vec!["po"]),
            rt("", vec!["v1"], "Service", "services", true, vec!["svc"]),
            rt("", vec!["v1"], "Endpoints", "endpoints", true, vec!["ep"]),
            rt("", vec!["v1"], "ConfigMap", "configmaps", true, vec!["cm"]),
            rt(
                "",
                vec!["v1"],
                "ServiceAccount",
                "serviceaccounts",
                true,
                vec!["sa"],
            ),
            rt("", vec!["v1"], "Node", "nodes", false, vec!["no"]),
            rt("", vec!["v1"], "Event", "events", true, vec!["ev"]),
            {
                let mut s = rt("", vec!["v1"], "Secret", "secrets", true, vec![]);
                s.verbs = vec!["get", "list", "watch"];
                s
            },
            rt(
                "apps",
                vec!["v1"],
                "Deployment",
                "deployments",
                true,
                vec!["deploy"],
            ),
            rt(
                "apps",
                vec!["v1"],
                "ReplicaSet",
                "replicasets",
                true,
                vec!["rs"],
            ),
            rt(
                "discovery.k8s.io",
                vec!["v1"],
                "EndpointSlice",
                "endpointslices",
                true,
                vec![],
            ),
            rt(
                "rbac.authorization.k8s.io",
                vec!["v1"],
                "ClusterRole",
                "clusterroles",
                false,
                vec![],
            ),
        ];
        // `kubectl auth can-i` and RBAC preflight checks: answered from the
        // API server's RBAC allowlist, never stored.
        for (kind, plural) in [
            ("SelfSubjectAccessReview", "selfsubjectaccessreviews"),
            ("SelfSubjectRulesReview", "selfsubjectrulesreviews"),
        ] {
            let mut t = rt(
                "authorization.k8s.io",
                vec!["v1"],
                kind,
                plural,
                false,
                vec![],
            );
            t.verbs = vec!["create"];
            types.push(t);
        }
        if m <= 5 {
            let g = "authentication.istio.io";
            types.push(rt(
                g,
                vec!["v1alpha1"],
                "MeshPolicy",
                "meshpolicies",
                false,
                vec![],
            ));
            types.push(rt(g, vec!["v1alpha1"], "Policy", "policies", true, vec![]));
        }
        if m >= 5 {
            let versions = if m >= 22 {
                vec!["v1", "v1beta1"]
            } else {
                vec!["v1beta1"]
            };
            types.push(rt(
                "security.istio.io",
                versions,
                "PeerAuthentication",
                "peerauthentications",
                true,
                vec!["pa"],
            ));
        }
        let net_versions = if m >= 22 {
            vec!["v1", "v1beta1", "v1alpha3"]
        } else if m >= 8 {
            vec!["v1beta1", "v1alpha3"]
        } else {
            vec!["v1alpha3"]
        };
        for (kind, plural, short) in [
            ("DestinationRule", "destinationrules", vec!["dr"]),
            ("VirtualService", "virtualservices", vec!["vs"]),
            ("ServiceEntry", "serviceentries", vec!["se"]),
            ("Sidecar", "sidecars", vec![]),
            ("Gateway", "gateways", vec!["gw"]),
        ] {
            types.push(rt(
                "networking.istio.io",
                net_versions.clone(),
                kind,
                plural,
                true,
                short,
            ));
        }
        // EnvoyFilter has only ever been served as v1alpha3.
        types.push(rt(
            "networking.istio.io",
            vec!["v1alpha3"],
            "EnvoyFilter",
            "envoyfilters",
            true,
            vec![],
        ));
        if m >= 10 {
            // telemetry.istio.io Telemetry: v1alpha1 from 1.10, v1 from 1.22
            // (istio/istio `manifests/charts/base/crds/crd-all.gen.yaml`).
            let versions = if m >= 22 {
                vec!["v1", "v1alpha1"]
            } else {
                vec!["v1alpha1"]
            };
            types.push(rt(
                "telemetry.istio.io",
                versions,
                "Telemetry",
                "telemetries",
                true,
                vec!["telemetry"],
            ));
        }
        Registry {
            types,
            istio_minor: m,
        }
    }

    /// The Istio minor version this registry models.
    pub fn istio_minor(&self) -> u32 {
        self.istio_minor
    }

    pub fn types(&self) -> &[ResourceType] {
        &self.types
    }

    pub fn by_plural(&self, group: &str, plural: &str) -> Option<&ResourceType> {
        self.types
            .iter()
            .find(|t| t.group == group && t.plural == plural)
    }

    pub fn by_kind(&self, group: &str, kind: &str) -> Option<&ResourceType> {
        self.types
            .iter()
            .find(|t| t.group == group && t.kind == kind)
    }

    /// Served groups in discovery order (core first), each with its served
    /// versions, preferred (newest) first.
    pub fn groups(&self) -> Vec<(&'static str, Vec<&'static str>)> {
        let mut out: Vec<(&'static str, Vec<&'static str>)> = Vec::new();
        for t in &self.types {
            match out.iter_mut().find(|(g, _)| *g == t.group) {
                Some((_, vs)) => {
                    for v in &t.versions {
                        if !vs.contains(v) {
                            vs.push(v);
                        }
                    }
                }
                None => out.push((t.group, t.versions.clone())),
            }
        }
        for (_, vs) in &mut out {
            vs.sort_by_key(|v| std::cmp::Reverse(version_priority(v)));
        }
        out
    }

    /// Types served in `group` at `version`.
    pub fn types_in(&self, group: &str, version: &str) -> Vec<&ResourceType> {
        self.types
            .iter()
            .filter(|t| t.group == group && t.serves(version))
            .collect()
    }

    /// Group of an apiVersion string ("v1" -> "", "networking.istio.io/v1alpha3"
    /// -> "networking.istio.io") and whether that version is served for `kind`.
    pub fn resolve(&self, api_version: &str, kind: &str) -> Result<&ResourceType, String> {
        let (group, version) = split_api_version(api_version);
        if version.is_empty() || kind.is_empty() {
            return Err(format!(
                "object has no apiVersion or kind (apiVersion {api_version:?}, kind {kind:?})"
            ));
        }
        match self.by_kind(group, kind) {
            Some(t) if t.serves(version) => Ok(t),
            _ => Err(format!(
                "no matches for kind \"{kind}\" in version \"{api_version}\""
            )),
        }
    }
}

/// `("networking.istio.io", "v1")` from `"networking.istio.io/v1"`, `("", "v1")` from `"v1"`.
pub fn split_api_version(api_version: &str) -> (&str, &str) {
    match api_version.split_once('/') {
        Some((g, v)) => (g, v),
        None => ("", api_version),
    }
}

/// Kubernetes version ordering: GA > beta > alpha, then by numbers.
pub fn version_priority(v: &str) -> (u32, u32, u32) {
    let rest = v.strip_prefix('v').unwrap_or(v);
    let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
    let major = digits.parse().unwrap_or(0);
    let tail = &rest[digits.len()..];
    let (stage, n) = if let Some(n) = tail.strip_prefix("beta") {
        (1, n.parse().unwrap_or(0))
    } else if let Some(n) = tail.strip_prefix("alpha") {
        (0, n.parse().unwrap_or(0))
    } else {
        (2, 0)
    };
    (stage, major, n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn networking_versions_follow_the_era() {
        let old = Registry::for_istio(0);
        let dr = old
            .by_plural("networking.istio.io", "destinationrules")
            .unwrap();
        assert_eq!(dr.versions, vec!["v1alpha3"]);
        let mid = Registry::for_istio(8);
        let dr = mid
            .by_kind("networking.istio.io", "DestinationRule")
            .unwrap();
        assert_eq!(dr.versions, vec!["v1beta1", "v1alpha3"]);
        let new = Registry::for_istio(24);
        let dr = new
            .by_kind("networking.istio.io", "DestinationRule")
            .unwrap();
        assert_eq!(dr.preferred_version(), "v1");
        assert_eq!(dr.short_names, vec!["dr"]);
        assert!(new
            .resolve("networking.istio.io/v1alpha3", "Gateway")
            .is_ok());
        assert!(old.resolve("networking.istio.io/v1", "Gateway").is_err());
    }

    #[test]
    fn authentication_and_security_eras() {
        let r0 = Registry::for_istio(0);
        assert!(r0
            .by_kind("authentication.istio.io", "MeshPolicy")
            .is_some());
        assert!(r0
            .by_kind("security.istio.io", "PeerAuthentication")
            .is_none());
        assert!(
            !r0.by_kind("authentication.istio.io", "MeshPolicy")
                .unwrap()
                .namespaced
        );
        let r5 = Registry::for_istio(5);
        assert!(r5.by_kind("authentication.istio.io", "Policy").is_some());
        assert!(r5
            .by_plural("security.istio.io", "peerauthentications")
            .is_some());
        let r6 = Registry::for_istio(6);
        assert!(r6
            .by_plural("authentication.istio.io", "policies")
            .is_none());
        let pa = r6
            .by_plural("security.istio.io", "peerauthentications")
            .unwrap();
        assert_eq!(pa.versions, vec!["v1beta1"]);
        assert!(Registry::for_istio(9)
            .by_kind("telemetry.istio.io", "Telemetry")
            .is_none());
        let t = Registry::for_istio(31);
        let tel = t.by_plural("telemetry.istio.io", "telemetries").unwrap();
        assert_eq!(tel.versions, vec!["v1", "v1alpha1"]);
        assert_eq!(tel.short_names, vec!["telemetry"]);
        let r22 = Registry::for_istio(22);
        let pa = r22
            .by_plural("security.istio.io", "peerauthentications")
            .unwrap();
        assert_eq!(pa.versions, vec!["v1", "v1beta1"]);
    }

    #[test]
    fn resolve_core_and_groups() {
        let r = Registry::for_istio(24);
        assert_eq!(r.resolve("v1", "Pod").unwrap().plural, "pods");
        assert_eq!(r.resolve("apps/v1", "Deployment").unwrap().group, "apps");
        assert!(r.resolve("v1", "Deployment").is_err());
        assert!(r.resolve("v2", "Pod").is_err());
        let groups = r.groups();
        assert_eq!(groups[0].0, "");
        let net = groups
            .iter()
            .find(|(g, _)| *g == "networking.istio.io")
            .unwrap();
        assert_eq!(net.1, vec!["v1", "v1beta1", "v1alpha3"]);
        assert_eq!(split_api_version("v1"), ("", "v1"));
        assert!(version_priority("v1") > version_priority("v1beta1"));
        assert!(version_priority("v1beta1") > version_priority("v1alpha3"));
        assert!(version_priority("v1beta2") > version_priority("v1beta1"));
    }
}
