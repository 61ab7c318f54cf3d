//! Model stage: request routing as istiod builds it, once per snapshot, and
//! what the snapshot can vouch for about the objects routes name.
//!
//! [`build`] hands the snapshot's Services, ServiceEntries, pods,
//! WorkloadEntries, VirtualServices, Gateways and Sidecars (each Istio kind
//! once, at the version the model keeps: [`super::config::preferred_objects`])
//! and the DestinationRules the model already parsed to
//! [`crate::istio::routing::Routing::new`], with the options the mesh config,
//! the Istio release and the cluster domain decide
//! ([`RoutingOptions::from_mesh`]). Objects routing cannot read become
//! [`Gap`]s ("could not read"), never absences.
//!
//! A snapshot holds the target's Services and pods, the clients it read and
//! every Istio object; a Service a route names is there only when
//! collection looked it up ([`RouteReads`]). [`Mesh::service_presence`]
//! says whether a host missing from the registry is known to be missing.
//! The callers of a target ([`super::callers`]) are computed on top.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::istio::destination_rule::DestinationRule;
use crate::istio::object::{ObjectError, ObjectRef};
use crate::istio::routing::{Routing, RoutingInput, RoutingOptions};
use crate::snapshot::RouteLookups;

use super::config::preferred_objects;
use super::gaps::{Gap, GapKind, GapSource};
use super::services::ServiceKey;
use super::settings::MeshSettings;
use super::Mesh;

/// The raw objects routing is built from (read here, never after the
/// model), borrowed from the snapshot: a snapshot of many pods is not
/// copied (issue 10, memory).
#[derive(Debug, Clone, Default)]
pub(super) struct RoutingObjects<'a> {
    pub services: Vec<&'a Value>,
    pub service_entries: Vec<&'a Value>,
    pub pods: Vec<&'a Value>,
    pub workload_entries: Vec<&'a Value>,
    pub virtual_services: Vec<&'a Value>,
    pub gateways: Vec<&'a Value>,
    pub sidecars: Vec<&'a Value>,
}

impl<'a> RoutingObjects<'a> {
    /// Core kinds as listed; Istio kinds once each, at the preferred version.
    pub fn from_objects(objects: &'a [Value]) -> RoutingObjects<'a> {
        let mut out = RoutingObjects::default();
        for o in objects {
            // Core kinds: `apiVersion: v1` (no group).
            if o["apiVersion"].as_str().is_some_and(|a| a.contains('/')) {
                continue;
            }
            match o["kind"].as_str() {
                Some("Service") => out.services.push(o),
                Some("Pod") => out.pods.push(o),
                _ => {}
            }
        }
        for o in preferred_objects(objects) {
            let group = o["apiVersion"]
                .as_str()
                .and_then(|a| a.split_once('/'))
                .map_or("", |(g, _)| g);
            if group != "networking.istio.io" {
                continue;
            }
            let list = match o["kind"].as_str() {
                Some("ServiceEntry") => &mut out.service_entries,
                Some("WorkloadEntry") => &mut out.workload_entries,
                Some("VirtualService") => &mut out.virtual_services,
                Some("Gateway") => &mut out.gateways,
                Some("Sidecar") => &mut out.sidecars,
                _ => continue,
            };
            list.push(o);
        }
        out
    }
}

/// The routing index of a snapshot; objects it cannot read are added to `gaps`.
pub(super) fn build(
    objects: &RoutingObjects<'_>,
    destination_rules: &[DestinationRule],
    settings: &MeshSettings,
    domain_suffix: &str,
    gaps: &mut Vec<Gap>,
) -> Routing {
    let opts = RoutingOptions::from_mesh(&settings.config, settings.version, domain_suffix);
    let routing = Routing::new(
        RoutingInput {
            services: &objects.services,
            service_entries: &objects.service_entries,
            pods: &objects.pods,
            workload_entries: &objects.workload_entries,
            virtual_services: &objects.virtual_services,
            gateways: &objects.gateways,
            sidecars: &objects.sidecars,
            destination_rules,
        },
        opts,
    );
    for e in &routing.errors {
        let gap = Gap::found(
            GapSource::Object(object_of(e)),
            GapKind::Unparseable,
            e.to_string(),
        );
        // The model's own readers may have refused the same object already.
        if !gaps
            .iter()
            .any(|g| g.source == gap.source && g.kind == gap.kind)
        {
            gaps.push(gap);
        }
    }
    routing
}

/// The object an [`ObjectError`] names (`VirtualService foo/x`).
fn object_of(e: &ObjectError) -> ObjectRef {
    let text = match e {
        ObjectError::NotAnObject { object }
        | ObjectError::Missing { object, .. }
        | ObjectError::Type { object, .. }
        | ObjectError::Invalid { object, .. }
        | ObjectError::WrongKind { object, .. } => object.as_str(),
    };
    let (kind, rest) = text.split_once(' ').unwrap_or(("object", text));
    let (namespace, name) = rest.split_once('/').unwrap_or(("", rest));
    ObjectRef {
        kind: kind.to_string(),
        namespace: namespace.to_string(),
        name: name.to_string(),
    }
}

/// What the snapshot can vouch for about the objects routes name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RouteReads {
    /// Collection looked up the Services routes to the target name (a
    /// snapshot taken before it did cannot tell a missing Service from one
    /// never read).
    pub looked_up: bool,
    /// Services found by that lookup (object, endpoints and pods read).
    pub found: BTreeSet<ServiceKey>,
    /// Services looked up by name that do not exist.
    pub absent: BTreeSet<ServiceKey>,
    /// Gateways (`ns/name`) whose pods were listed.
    pub gateway_pods_listed: BTreeSet<String>,
}

impl RouteReads {
    pub(super) fn from_lookups(l: Option<&RouteLookups>) -> RouteReads {
        let Some(l) = l else {
            return RouteReads::default();
        };
        let keys = |v: &[crate::snapshot::ObjectRef]| {
            v.iter()
                .map(|o| ServiceKey::new(&o.namespace, &o.name))
                .collect()
        };
        RouteReads {
            looked_up: true,
            found: keys(&l.found),
            absent: keys(&l.absent),
            gateway_pods_listed: l.gateway_pods_listed.iter().cloned().collect(),
        }
    }
}

/// Whether a host is in the snapshot's service registry, and if not,
/// whether that absence is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Presence {
    /// A Service or ServiceEntry has it.
    Present,
    /// Known not to exist: looked up by name (a Kubernetes host), or no
    /// ServiceEntry has it and ServiceEntries were listed (any other host).
    Absent(String),
    /// Not in the snapshot, and never looked for (or the read failed).
    Unknown(String),
}

impl Mesh {
    /// Istio's routing for this snapshot (built once in [`Mesh::from_snapshot`]).
    pub fn routing(&self) -> &Routing {
        &self.routing
    }

    /// Whether `host` (an FQDN) has a Service or ServiceEntry, and if not,
    /// whether the snapshot proves it has none.
    pub fn service_presence(&self, host: &str) -> Presence {
        let host = host.to_ascii_lowercase();
        if self.routing.registry.with_host(&host).next().is_some() {
            return Presence::Present;
        }
        if let Some(key) = self.kubernetes_service_of(&host) {
            if self.route_reads.absent.contains(&key) {
                return Presence::Absent(format!(
                    "Service {key} was looked up by name and does not exist"
                ));
            }
            if self.list_forbidden("services", &key.namespace) {
                return Presence::Unknown(format!(
                    "the Services of {} could not be read",
                    key.namespace
                ));
            }
            if !self.route_reads.looked_up {
                return Presence::Unknown(format!(
                    "Service {key} is not in the snapshot and was not looked for (a snapshot from an older version)"
                ));
            }
            if !self.route_reads.found.contains(&key) && !self.is_target(&key) {
                return Presence::Unknown(format!(
                    "Service {key} is not in the snapshot and was not looked for"
                ));
            }
        }
        if self.list_forbidden("serviceentries", "") {
            return Presence::Unknown("ServiceEntries could not be listed".into());
        }
        Presence::Absent(format!(
            "no Service or ServiceEntry in the snapshot has the host {host} (every ServiceEntry was listed)"
        ))
    }

    /// `name.ns.svc.<domain>` → `ns/name`.
    pub fn kubernetes_service_of(&self, host: &str) -> Option<ServiceKey> {
        let rest = host.strip_suffix(&format!(".svc.{}", self.domain.suffix))?;
        let (name, ns) = rest.split_once('.')?;
        (!name.is_empty() && !ns.is_empty() && !ns.contains('.')).then(|| ServiceKey::new(ns, name))
    }

    /// Were the pods behind this Service read (the target's, or looked up
    /// for a route), with no pod list refused in its namespace?
    pub fn pods_read(&self, svc: &ServiceKey) -> bool {
        (self.is_target(svc) || self.route_reads.found.contains(svc))
            && !self.list_forbidden("pods", &svc.namespace)
    }

    /// A list of `resource` (its plural, e.g. `pods`, `serviceentries`)
    /// refused in `namespace` or cluster-wide (`""`: anywhere).
    pub fn list_forbidden(&self, resource: &str, namespace: &str) -> bool {
        self.gaps.iter().any(|g| {
            let GapSource::ApiList {
                resource: r,
                namespace: ns,
            } = &g.source
            else {
                return false;
            };
            let named = r.split(['.', ' ', '/']).next() == Some(resource);
            let here = namespace.is_empty()
                || ns.as_deref().is_none_or(|n| n == namespace)
                || r.contains(&format!(" in {namespace} "))
                || r.ends_with(&format!(" in {namespace}"));
            named && here && g.kind != GapKind::NotFound
        })
    }

    /// Lists the routing analysis depends on that RBAC refused (by plural).
    pub fn routing_blind_spots(&self) -> Vec<String> {
        [
            "virtualservices",
            "destinationrules",
            "serviceentries",
            "sidecars",
            "gateways",
        ]
        .iter()
        .filter(|r| self.list_forbidden(r, ""))
        .map(|r| r.to_string())
        .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::builder::*;
    use serde_json::json;

    #[test]
    fn routing_errors_are_gaps_not_absences() {
        let bad = json!({"apiVersion": "networking.istio.io/v1", "kind": "Gateway",
            "metadata": {"name": "g", "namespace": "foo"},
            "spec": {"servers": [{"port": {"name": "x"}, "hosts": ["*"]}]}});
        let m = MeshBuilder::new()
            .target(httpbin())
            .pod(httpbin_pod())
            .object(bad)
            .build();
        assert!(m.routing().gateways.is_empty());
        assert!(
            m.gaps.iter().any(|g| g.kind == GapKind::Unparseable
                && matches!(&g.source, GapSource::Object(r) if r.kind == "Gateway" && r.name == "g")),
            "{:#?}",
            m.gaps
        );
    }

    #[test]
    fn presence_of_hosts() {
        let m = MeshBuilder::new()
            .target(httpbin())
            .pod(httpbin_pod())
            .looked_up(&[], &[("foo", "gone")])
            .build();
        assert_eq!(
            m.service_presence("httpbin.foo.svc.cluster.local"),
            Presence::Present
        );
        assert!(matches!(
            m.service_presence("gone.foo.svc.cluster.local"),
            Presence::Absent(_)
        ));
        assert!(matches!(
            m.service_presence("other.foo.svc.cluster.local"),
            Presence::Unknown(_)
        ));
        assert!(matches!(
            m.service_presence("api.example.com"),
            Presence::Absent(_)
        ));
        let old = MeshBuilder::new().target(httpbin()).build();
        assert!(matches!(
            old.service_presence("gone.foo.svc.cluster.local"),
            Presence::Unknown(_)
        ));
        assert_eq!(
            m.kubernetes_service_of("a.b.svc.cluster.local"),
            Some(ServiceKey::new("b", "a"))
        );
        assert_eq!(m.kubernetes_service_of("a.example.com"), None);
        assert!(m.pods_read(&ServiceKey::new("foo", "httpbin")));
        assert!(!m.pods_read(&ServiceKey::new("foo", "other")));
    }
}
