//! Model stage: which Services the user asked about.
//!
//! A v2 snapshot carries the target as `collect` resolved it; a v1 snapshot
//! only the text typed (`svc/httpbin`, `deploy/httpbin`, `pod/…`,
//! `httpbin.foo:8000`), which is resolved here against the snapshot's
//! objects the same way `collect` resolves it against the cluster.

use std::collections::BTreeMap;

use serde_json::Value;

use super::gaps::Gap;
use super::pods::PodKey;
use super::services::{Service, ServiceKey};
use super::source::ResolvedTarget;
use crate::target::Target;

/// How the target was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetSource {
    /// As `collect` resolved it (snapshot v2).
    Resolved,
    /// Resolved here from the text typed (snapshot v1).
    FromText,
}

/// What the diagnosis is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetSelection {
    /// As typed.
    pub text: String,
    /// The namespace it was resolved in.
    pub namespace: String,
    pub services: Vec<ServiceKey>,
    /// A `host:port` target limits the check to that Service port.
    pub only_port: Option<u16>,
    pub source: TargetSource,
    /// The pods `collect` treated as the target's servers (v2); empty when
    /// resolved here (the Services' selectors say which pods back them).
    pub server_pods: Vec<PodKey>,
    /// Reads the diagnosis could not do without that failed (v2; also in
    /// the mesh's gaps): "nothing found" then means "could not check".
    pub missing: Vec<Gap>,
    /// Callers collect found that are not read proxies (v2), with how.
    pub found_callers: Vec<FoundCaller>,
}

/// A caller of the target found by `collect` that is not a read proxy: a
/// pod without sidecar whose configuration names the target, or (`pod:
/// None`) callers the server metrics count but cannot name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundCaller {
    pub pod: Option<PodKey>,
    /// How it was found (`Caller::found_by` in words).
    pub because: String,
}

impl TargetSelection {
    /// As `collect` resolved it: nothing is resolved again.
    pub fn from_resolved(text: &str, namespace: &str, r: ResolvedTarget) -> TargetSelection {
        TargetSelection {
            text: text.to_string(),
            namespace: if r.namespace.is_empty() {
                namespace.to_string()
            } else {
                r.namespace
            },
            services: r.services,
            only_port: r.port,
            source: TargetSource::Resolved,
            server_pods: r.server_pods,
            missing: r.missing.iter().map(|g| Gap::collected(g, false)).collect(),
            found_callers: r.callers,
        }
    }

    /// The same selection narrowed to one Service, all its ports (`scan`
    /// takes each Service of the snapshot in turn).
    pub fn only(&self, svc: &ServiceKey) -> TargetSelection {
        TargetSelection {
            text: svc.to_string(),
            namespace: svc.namespace.clone(),
            services: vec![svc.clone()],
            only_port: None,
            server_pods: vec![],
            ..self.clone()
        }
    }

    /// Nothing asked about (offline `tls-check` dumps).
    pub fn none() -> TargetSelection {
        TargetSelection {
            text: String::new(),
            namespace: String::new(),
            services: vec![],
            only_port: None,
            source: TargetSource::FromText,
            server_pods: vec![],
            missing: vec![],
            found_callers: vec![],
        }
    }

    /// Resolve the typed target against the snapshot's objects.
    pub fn from_text(
        text: &str,
        namespace: &str,
        services: &[Service],
        objects: &[Value],
    ) -> TargetSelection {
        let parsed = text.parse::<Target>();
        let only_port = match &parsed {
            Ok(Target::Host { port, .. }) => *port,
            _ => None,
        };
        let by_name = |name: &str, ns: &str| -> Vec<ServiceKey> {
            services
                .iter()
                .filter(|s| s.key.name == name && s.key.namespace == ns)
                .map(|s| s.key.clone())
                .collect()
        };
        let selecting = |labels: &BTreeMap<String, String>| -> Vec<ServiceKey> {
            services
                .iter()
                .filter(|s| s.key.namespace == namespace)
                .filter(|s| {
                    s.selector
                        .as_ref()
                        .is_some_and(|sel| sel.iter().all(|(k, v)| labels.get(k) == Some(v)))
                })
                .map(|s| s.key.clone())
                .collect()
        };
        let labels_of = |kind: &str, name: &str, path: &str| {
            objects
                .iter()
                .find(|o| {
                    o["kind"] == kind
                        && o["metadata"]["name"] == name
                        && o["metadata"]["namespace"] == namespace
                })
                .and_then(|o| o.pointer(path))
                .and_then(Value::as_object)
                .map(|m| {
                    m.iter()
                        .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                        .collect::<BTreeMap<_, _>>()
                })
        };
        let chosen = match parsed {
            Ok(Target::Service { name }) => by_name(&name, namespace),
            Ok(t @ Target::Host { .. }) => match t.service_host(namespace) {
                Some(h) => by_name(&h.name, &h.namespace),
                None => vec![],
            },
            Ok(Target::Deployment { name }) => {
                labels_of("Deployment", &name, "/spec/template/metadata/labels")
                    .map(|l| selecting(&l))
                    .unwrap_or_default()
            }
            Ok(Target::Pod { name }) => labels_of("Pod", &name, "/metadata/labels")
                .map(|l| selecting(&l))
                .unwrap_or_default(),
            Err(_) => vec![],
        };
        TargetSelection {
            text: text.to_string(),
            namespace: namespace.to_string(),
            services: chosen,
            only_port,
            source: TargetSource::FromText,
            server_pods: vec![],
            missing: vec![],
            found_callers: vec![],
        }
    }
}
