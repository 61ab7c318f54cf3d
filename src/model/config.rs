//! Model stage: every Istio object once, typed.
//!
//! A cluster serves each Istio kind in several versions and `collect` may list
//! each of them; the model keeps one object per (group, kind, namespace, name)
//! at the version Kubernetes prefers (GA over beta over alpha, then the higher
//! number: apimachinery `version.CompareKubeAwareVersionStrings`) and parses
//! it once. Objects that do not parse are gaps, not guesses.
//!
//! Authentication policies are kept as read, both APIs; which one decides
//! (Istio's era) is `istio::authn`'s question ([`IstioConfig::authn_evidence`]
//! gathers what tells the eras apart, [`crate::istio::authn::AuthnEvidence::api`]
//! answers it).

use std::collections::BTreeMap;

use serde_json::Value;

use crate::istio::authn::{AuthnEvidence, LegacyPolicy, PeerAuthentication};
use crate::istio::destination_rule::DestinationRule;
use crate::istio::mesh_config::IstioVersion;
use crate::istio::object::{Meta, ObjectError, ObjectRef};
use crate::snapshot::ServedResource;

use super::gaps::{Gap, GapKind, GapSource};
use super::manifest::Manifest;
use super::networking::{
    EnvoyFilter, Gateway, ServiceEntry, SidecarConfig, Telemetry, VirtualService,
};

/// The creation time given to an object a fix creates: younger than any.
const NEWEST: &str = "9999-12-31T23:59:59Z";

/// Identity of an object across its served versions.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectKey {
    pub group: String,
    pub kind: String,
    pub namespace: String,
    pub name: String,
}

/// Legacy (Istio ≤1.5) `authentication.istio.io/v1alpha1` policies, as read.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LegacyAuthn {
    pub mesh_policies: Vec<LegacyPolicy>,
    pub policies: Vec<LegacyPolicy>,
}

/// Every Istio object the snapshot holds, once, typed.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct IstioConfig {
    pub destination_rules: Vec<DestinationRule>,
    pub peer_authentications: Vec<PeerAuthentication>,
    pub legacy: LegacyAuthn,
    pub virtual_services: Vec<VirtualService>,
    pub sidecars: Vec<SidecarConfig>,
    pub service_entries: Vec<ServiceEntry>,
    pub gateways: Vec<Gateway>,
    pub envoy_filters: Vec<EnvoyFilter>,
    pub telemetries: Vec<Telemetry>,
    /// Istio API resources the cluster serves (discovery).
    pub served: Vec<ServedResource>,
    manifests: BTreeMap<ObjectRef, Manifest>,
}

/// Kubernetes' version priority: `(stage, major, minor)`, higher first.
/// GA (`v1`) = 3, beta = 2, alpha = 1, anything else = 0.
fn version_priority(v: &str) -> (u8, u32, u32) {
    let Some(rest) = v.strip_prefix('v') else {
        return (0, 0, 0);
    };
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    let Ok(major) = digits.parse::<u32>() else {
        return (0, 0, 0);
    };
    let tail = &rest[digits.len()..];
    let (stage, n) = if tail.is_empty() {
        return (3, major, 0);
    } else if let Some(n) = tail.strip_prefix("beta") {
        (2, n)
    } else if let Some(n) = tail.strip_prefix("alpha") {
        (1, n)
    } else {
        return (0, 0, 0);
    };
    match n.parse::<u32>() {
        Ok(minor) => (stage, major, minor),
        Err(_) => (0, 0, 0),
    }
}

fn group_version(o: &Value) -> (&str, &str) {
    let av = o["apiVersion"].as_str().unwrap_or("");
    av.split_once('/').unwrap_or(("", av))
}

const ISTIO_GROUPS: &[&str] = &[
    "networking.istio.io",
    "security.istio.io",
    "authentication.istio.io",
    "telemetry.istio.io",
];

/// One object per (group, kind, ns, name), at the preferred version, in the
/// snapshot's order of first appearance.
pub fn preferred_objects(objects: &[Value]) -> Vec<&Value> {
    let mut chosen: BTreeMap<ObjectKey, (usize, &Value)> = BTreeMap::new();
    for (i, o) in objects.iter().enumerate() {
        let (group, version) = group_version(o);
        if !ISTIO_GROUPS.contains(&group) {
            continue;
        }
        let key = ObjectKey {
            group: group.to_string(),
            kind: o["kind"].as_str().unwrap_or("").to_string(),
            namespace: o["metadata"]["namespace"]
                .as_str()
                .unwrap_or("")
                .to_string(),
            name: o["metadata"]["name"].as_str().unwrap_or("").to_string(),
        };
        match chosen.get_mut(&key) {
            Some((_, cur)) => {
                if version_priority(version) > version_priority(group_version(cur).1) {
                    *cur = o;
                }
            }
            None => {
                chosen.insert(key, (i, o));
            }
        }
    }
    let mut out: Vec<(usize, &Value)> = chosen.into_values().collect();
    out.sort_by_key(|(i, _)| *i);
    out.into_iter().map(|(_, o)| o).collect()
}

fn keep<T>(r: Result<T, ObjectError>, o: &Value, gaps: &mut Vec<Gap>) -> Option<T> {
    match r {
        Ok(t) => Some(t),
        Err(e) => {
            let what = Meta::from_value(o)
                .map(|m| m.object_ref())
                .unwrap_or_else(|_| ObjectRef {
                    kind: o["kind"].as_str().unwrap_or("object").to_string(),
                    namespace: o["metadata"]["namespace"]
                        .as_str()
                        .unwrap_or("")
                        .to_string(),
                    name: o["metadata"]["name"].as_str().unwrap_or("?").to_string(),
                });
            gaps.push(Gap::found(
                GapSource::Object(what),
                GapKind::Unparseable,
                e.to_string(),
            ));
            None
        }
    }
}

impl IstioConfig {
    /// Read every Istio object of the snapshot; `domain` resolves short hosts.
    pub fn read(
        objects: &[Value],
        served: &[ServedResource],
        domain: &str,
        gaps: &mut Vec<Gap>,
    ) -> IstioConfig {
        let mut c = IstioConfig {
            served: served.to_vec(),
            ..IstioConfig::default()
        };
        for o in preferred_objects(objects) {
            c.add(o, domain, gaps);
        }
        c
    }

    /// What tells Istio's authentication eras apart: the APIs discovery
    /// found (`None` when discovery was not recorded), the release, and
    /// which policies exist.
    pub fn authn_evidence(&self, version: Option<IstioVersion>) -> AuthnEvidence {
        let discovered = !self.served.is_empty();
        AuthnEvidence {
            peer_auth_served: discovered
                .then(|| self.served.iter().any(|r| r.kind == "PeerAuthentication")),
            legacy_served: discovered.then(|| {
                self.served
                    .iter()
                    .any(|r| r.group == "authentication.istio.io")
            }),
            version,
            has_peer_auth: !self.peer_authentications.is_empty(),
            has_legacy: !self.legacy.mesh_policies.is_empty() || !self.legacy.policies.is_empty(),
        }
    }

    /// Every v1alpha1 policy (MeshPolicy first).
    pub fn legacy_policies(&self) -> Vec<LegacyPolicy> {
        self.legacy
            .mesh_policies
            .iter()
            .chain(&self.legacy.policies)
            .cloned()
            .collect()
    }

    /// Apply a manifest as `kubectl apply` would (a candidate fix, evaluated
    /// before it is printed): the object replaces the one with its identity,
    /// or is added. An edited object keeps its age (Istio's merge and
    /// "oldest wins" orders depend on it); a new one is younger than every
    /// object. Errors name the object when the manifest does not parse.
    pub fn apply(&mut self, manifest: &Manifest, domain: &str) -> Result<(), String> {
        let mut obj = manifest.value().clone();
        let target = manifest.object_ref();
        let group = group_version(&obj).0.to_string();
        let age = self.remove(&group, &target);
        obj["metadata"]["creationTimestamp"] =
            Value::String(age.unwrap_or_else(|| NEWEST.to_string()));
        let mut gaps = Vec::new();
        self.add(&obj, domain, &mut gaps);
        if let Some(g) = gaps.first() {
            return Err(format!("{target}: {}", g.detail));
        }
        Ok(())
    }

    /// Remove the object `target` of `group`; its creation timestamp if it was held.
    fn remove(&mut self, group: &str, target: &ObjectRef) -> Option<String> {
        fn take<T>(v: &mut Vec<T>, meta: impl Fn(&T) -> &Meta, r: &ObjectRef) -> Option<Meta> {
            let i = v.iter().position(|x| &meta(x).object_ref() == r)?;
            Some(meta(&v.remove(i)).clone())
        }
        let found = match (group, target.kind.as_str()) {
            ("networking.istio.io", "DestinationRule") => {
                take(&mut self.destination_rules, |d| &d.meta, target)
            }
            ("networking.istio.io", "VirtualService") => {
                take(&mut self.virtual_services, |d| &d.meta, target)
            }
            ("security.istio.io", "PeerAuthentication") => {
                take(&mut self.peer_authentications, |d| &d.meta, target)
            }
            ("authentication.istio.io", "Policy") => {
                take(&mut self.legacy.policies, |d| &d.meta, target)
            }
            ("authentication.istio.io", "MeshPolicy") => {
                take(&mut self.legacy.mesh_policies, |d| &d.meta, target)
            }
            _ => None,
        };
        self.manifests.remove(target);
        found.and_then(|m| m.creation_timestamp)
    }

    fn add(&mut self, o: &Value, domain: &str, gaps: &mut Vec<Gap>) {
        let (group, _) = group_version(o);
        let kind = o["kind"].as_str().unwrap_or("");
        let before = self.len();
        match (group, kind) {
            ("networking.istio.io", "DestinationRule") => {
                self.destination_rules.extend(keep(
                    DestinationRule::from_value_with_domain(o, domain),
                    o,
                    gaps,
                ));
            }
            ("networking.istio.io", "VirtualService") => {
                if let Some(v) = keep(VirtualService::from_value(o, domain), o, gaps) {
                    self.virtual_services.push(v);
                }
            }
            ("networking.istio.io", "Sidecar") => {
                self.sidecars
                    .extend(keep(SidecarConfig::from_value(o), o, gaps));
            }
            ("networking.istio.io", "ServiceEntry") => {
                self.service_entries
                    .extend(keep(ServiceEntry::from_value(o), o, gaps));
            }
            ("networking.istio.io", "Gateway") => {
                self.gateways.extend(keep(Gateway::from_value(o), o, gaps));
            }
            ("networking.istio.io", "EnvoyFilter") => {
                self.envoy_filters
                    .extend(keep(EnvoyFilter::from_value(o), o, gaps));
            }
            ("security.istio.io", "PeerAuthentication") => {
                self.peer_authentications
                    .extend(keep(PeerAuthentication::from_value(o), o, gaps));
            }
            ("authentication.istio.io", "MeshPolicy" | "Policy") => {
                if let Some(p) = keep(LegacyPolicy::from_value(o), o, gaps) {
                    if p.is_mesh_policy {
                        self.legacy.mesh_policies.push(p);
                    } else {
                        self.legacy.policies.push(p);
                    }
                }
            }
            ("telemetry.istio.io", "Telemetry") => {
                self.telemetries
                    .extend(keep(Telemetry::from_value(o), o, gaps));
            }
            _ => {}
        }
        // Every object the model keeps can be printed back as a fix.
        if self.len() > before {
            if let Ok(m) = Meta::from_value(o) {
                self.manifests
                    .insert(m.object_ref(), Manifest::from_object(o));
            }
        }
    }

    /// How many objects are held (to tell whether one was just added).
    fn len(&self) -> usize {
        self.destination_rules.len()
            + self.peer_authentications.len()
            + self.legacy.mesh_policies.len()
            + self.legacy.policies.len()
            + self.virtual_services.len()
            + self.sidecars.len()
            + self.service_entries.len()
            + self.gateways.len()
            + self.envoy_filters.len()
            + self.telemetries.len()
    }

    /// The apply-ready manifest of an Istio object the model holds.
    pub fn manifest(&self, object: &ObjectRef) -> Option<&Manifest> {
        self.manifests.get(object)
    }

    /// `group/version` the cluster prefers for `kind`, if it serves it.
    pub fn preferred_api_version(&self, kind: &str) -> Option<String> {
        self.served
            .iter()
            .filter(|r| r.kind == kind)
            .max_by_key(|r| version_priority(&r.version))
            .map(|r| format!("{}/{}", r.group, r.version))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn dr(version: &str, name: &str) -> Value {
        json!({"apiVersion": format!("networking.istio.io/{version}"), "kind": "DestinationRule",
               "metadata": {"name": name, "namespace": "foo"}, "spec": {"host": "httpbin"}})
    }

    #[test]
    fn kubernetes_version_priority() {
        let mut v = vec![
            "v1alpha3", "v1", "v1beta1", "v2beta2", "v2", "foo", "v1beta2",
        ];
        v.sort_by_key(|x| std::cmp::Reverse(version_priority(x)));
        assert_eq!(
            v,
            vec!["v2", "v1", "v2beta2", "v1beta2", "v1beta1", "v1alpha3", "foo"]
        );
    }

    #[test]
    fn one_object_per_identity_at_the_preferred_version() {
        let objs = vec![
            dr("v1alpha3", "a"),
            dr("v1", "a"),
            dr("v1beta1", "a"),
            dr("v1beta1", "b"),
        ];
        let kept = preferred_objects(&objs);
        assert_eq!(kept.len(), 2);
        assert_eq!(kept[0]["apiVersion"], "networking.istio.io/v1");
        assert_eq!(kept[1]["metadata"]["name"], "b");
        let mut gaps = Vec::new();
        let c = IstioConfig::read(&objs, &[], "corp.example", &mut gaps);
        assert_eq!(c.destination_rules.len(), 2);
        assert_eq!(
            c.destination_rules[0].host_fqdn,
            "httpbin.foo.svc.corp.example"
        );
        assert!(gaps.is_empty());
        let m = c.manifest(&c.destination_rules[0].object_ref()).unwrap();
        assert_eq!(m.api_version(), "networking.istio.io/v1");
    }

    #[test]
    fn unparseable_objects_are_gaps() {
        let bad = json!({"apiVersion": "security.istio.io/v1", "kind": "PeerAuthentication",
            "metadata": {"name": "p", "namespace": "foo"}, "spec": {"mtls": {"mode": 3}}});
        let mut gaps = Vec::new();
        let c = IstioConfig::read(&[bad], &[], "cluster.local", &mut gaps);
        assert!(c.peer_authentications.is_empty());
        assert_eq!(gaps.len(), 1);
        assert_eq!(gaps[0].kind, GapKind::Unparseable);
        assert!(matches!(&gaps[0].source, GapSource::Object(r) if r.kind == "PeerAuthentication"));
    }

    #[test]
    fn the_authn_era_comes_from_discovery_then_version_then_objects() {
        use crate::istio::authn::AuthnApi;
        let mp = json!({"apiVersion": "authentication.istio.io/v1alpha1", "kind": "MeshPolicy",
            "metadata": {"name": "default"}, "spec": {"peers": [{"mtls": {}}]}});
        let pa = json!({"apiVersion": "security.istio.io/v1", "kind": "PeerAuthentication",
            "metadata": {"name": "default", "namespace": "istio-system"}, "spec": {"mtls": {"mode": "STRICT"}}});
        let served = |group: &str, kind: &str| ServedResource {
            group: group.into(),
            version: "v1".into(),
            kind: kind.into(),
            plural: String::new(),
            namespaced: true,
        };
        let mut gaps = Vec::new();
        let legacy_only =
            IstioConfig::read(std::slice::from_ref(&mp), &[], "cluster.local", &mut gaps);
        assert_eq!(legacy_only.authn_evidence(None).api(), AuthnApi::Legacy);
        assert_eq!(legacy_only.legacy_policies().len(), 1);
        let both = IstioConfig::read(&[mp.clone(), pa.clone()], &[], "cluster.local", &mut gaps);
        assert_eq!(both.authn_evidence(None).api(), AuthnApi::Transitional);
        // The release wins over the objects found …
        let v = IstioVersion::parse("1.4.6");
        assert_eq!(both.authn_evidence(v).api(), AuthnApi::Legacy);
        // … and discovery over the release: 1.5 served both APIs.
        let served_both = IstioConfig::read(
            &[pa],
            &[
                served("security.istio.io", "PeerAuthentication"),
                served("authentication.istio.io", "Policy"),
            ],
            "cluster.local",
            &mut gaps,
        );
        assert_eq!(
            served_both
                .authn_evidence(IstioVersion::parse("1.28.0"))
                .api(),
            AuthnApi::Transitional
        );
        // Near miss: nothing served, no release, no policy: today's API.
        let none = IstioConfig::read(&[], &[], "cluster.local", &mut gaps);
        assert_eq!(
            none.authn_evidence(None).api(),
            AuthnApi::PeerAuthentication
        );
        assert!(gaps.is_empty());
    }
}
