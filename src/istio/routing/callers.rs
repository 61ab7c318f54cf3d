//! Who can call a host, seen from the host's side: which namespaces see it
//! (the service's exportTo, Sidecar imports), which VirtualServices and
//! DestinationRules name it, and the namespaces grouped by the view they
//! get — so a rule can start from the target and name every kind of caller
//! without knowing one first.
//!
//! Place in the flow: a pure helper (istio/routing), part of
//! [`super::query::Routing`]; the analysis uses it to pick the callers to
//! examine (one per [`CallerClass`]).
//!
//! The per-namespace views are [`Routing::routes_for`] and Istio's
//! DestinationRule lookup ([`crate::istio::destination_rule::decide`]) for a
//! client without labels; `label_dependent` says when labels could change
//! the view (a Sidecar or DestinationRule with a workloadSelector in the
//! namespace, or `sourceLabels` in a VirtualService naming the host).

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

use super::super::destination_rule::{decide, DestinationRule, LookupQuery};
use super::super::host;
use super::super::object::ObjectRef;
use super::namespaces::NamespaceIndex;
use super::query::{Client, HostVisibility, Routing};

/// A namespace name no Kubernetes namespace can have: stands for every
/// namespace the snapshot does not mention.
pub const OTHER_NAMESPACES: &str = "<other>";

/// Who can call a host and how their views differ.
#[derive(Debug, Clone, PartialEq)]
pub struct Callers {
    pub host: String,
    pub services: Vec<ServiceExposure>,
    pub virtual_services: Vec<VsExposure>,
    pub destination_rules: Vec<DrExposure>,
    pub sidecars: Vec<SidecarExposure>,
    /// Gateways (`ns/name`) a VirtualService for the host binds to.
    pub gateways: Vec<String>,
    /// Namespaces grouped by identical view.
    pub classes: Vec<CallerClass>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ServiceExposure {
    pub service: ObjectRef,
    pub export_to: Vec<String>,
    pub ports: Vec<u32>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct VsExposure {
    pub vs: String,
    pub mesh: bool,
    pub gateways: Vec<String>,
    pub export_to: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DrExposure {
    pub dr: String,
    pub host: String,
    pub export_to: Vec<String>,
    pub workload_selector: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SidecarExposure {
    pub sidecar: ObjectRef,
    pub selector: bool,
    /// Imports the host on at least one of its ports.
    pub imports: bool,
}

/// Namespaces whose clients get the same view of the host.
#[derive(Debug, Clone, PartialEq)]
pub struct CallerClass {
    pub namespaces: Vec<String>,
    /// Also stands for namespaces the snapshot does not mention.
    pub other_namespaces: bool,
    /// Per service port: does a client's sidecar route the host.
    pub sees_host: Vec<(u32, bool)>,
    /// Per service port: the applied VirtualService.
    pub virtual_services: Vec<(u32, Option<String>)>,
    /// The DestinationRule(s) that apply (`ns/name`).
    pub destination_rules: Vec<String>,
    /// Workload labels could change the view in some of these namespaces.
    pub label_dependent: bool,
}

impl Routing {
    /// Every namespace the snapshot mentions (objects and exportTo lists).
    pub fn known_namespaces(&self) -> BTreeSet<String> {
        self.namespace_index().known
    }

    /// Who can call `host` (an FQDN) and how their views differ.
    pub fn callers_of(&self, host: &str) -> Callers {
        self.callers_of_indexed(host, &self.namespace_index())
    }

    /// [`Routing::callers_of`] with the namespace index built once by the
    /// caller (`scan` asks for every host of the mesh).
    pub fn callers_of_indexed(&self, host: &str, index: &NamespaceIndex) -> Callers {
        let host = host.to_ascii_lowercase();
        let names = |h: &str| host::matches(h, &host) || host::matches(&host, h);
        let services: Vec<ServiceExposure> = self
            .registry
            .with_host(&host)
            .map(|s| ServiceExposure {
                service: s.object.clone(),
                export_to: s.export_to.clone(),
                ports: s.ports.iter().map(|p| p.port).collect(),
            })
            .collect();
        let vss: Vec<_> = self
            .virtual_services
            .iter()
            .filter(|v| v.hosts.iter().any(|h| names(h)))
            .collect();
        let mut gateways: Vec<String> = vss
            .iter()
            .flat_map(|v| v.gateways.iter().filter(|g| *g != "mesh").cloned())
            .collect();
        gateways.sort();
        gateways.dedup();
        let ports: BTreeSet<u32> = services.iter().flat_map(|s| s.ports.clone()).collect();
        let sidecars = self
            .sidecars
            .iter()
            .map(|sc| SidecarExposure {
                sidecar: sc.object_ref(),
                selector: sc.workload_selector.is_some(),
                imports: services.iter().any(|s| {
                    s.ports.iter().any(|p| {
                        matches!(
                            sc.imports_service(&sc.meta.namespace, &host, &s.service.namespace, *p),
                            super::sidecar_scope::Import::Imported { .. }
                        )
                    })
                }),
            })
            .collect();
        Callers {
            classes: self.caller_classes_sharing(&host, &ports, index, true),
            host: host.clone(),
            services,
            virtual_services: vss
                .iter()
                .map(|v| VsExposure {
                    vs: v.key(),
                    mesh: v.binds_mesh(),
                    gateways: v.gateways.clone(),
                    export_to: v.export_to.clone(),
                })
                .collect(),
            destination_rules: self
                .destination_rules
                .iter()
                .filter(|d| names(&d.host_fqdn))
                .map(|d| DrExposure {
                    dr: d.key(),
                    host: d.host_fqdn.clone(),
                    export_to: d.export_to.clone(),
                    workload_selector: d.workload_selector.is_some(),
                })
                .collect(),
            sidecars,
            gateways,
        }
    }

    /// Namespaces grouped by the view their clients get of `host`; with
    /// `share`, the namespaces without a view of their own
    /// ([`NamespaceIndex::with_own_view`]) take the view of a namespace the
    /// snapshot does not mention, computed once (`share: false` computes
    /// each: what the shared one must equal, checked in tests).
    pub(crate) fn caller_classes_sharing(
        &self,
        host: &str,
        ports: &BTreeSet<u32>,
        index: &NamespaceIndex,
        share: bool,
    ) -> Vec<CallerClass> {
        let empty = BTreeMap::new();
        let mut classes: Vec<CallerClass> = Vec::new();
        let mut namespaces: Vec<String> = index.known.iter().cloned().collect();
        namespaces.push(OTHER_NAMESPACES.to_string());
        // The rules that can apply to the host, found once (not per
        // namespace: `scan` asks this for every Service of a large mesh).
        let rules: Vec<DestinationRule> = self
            .destination_rules
            .iter()
            .filter(|r| host::matches(&r.host_fqdn, host))
            .cloned()
            .collect();
        let by_labels = self.label_dependent_namespaces(host);
        type View = (Vec<(u32, bool)>, Vec<(u32, Option<String>)>, Vec<String>);
        let view = |ns: &str| -> View {
            let client = Client {
                namespace: ns,
                labels: &empty,
            };
            let mut sees = Vec::new();
            let mut vss = Vec::new();
            for p in ports {
                let v = self.routes_for(client, host, *p);
                sees.push((*p, v.visibility == HostVisibility::Visible));
                vss.push((*p, v.virtual_service.map(|(k, _)| k)));
            }
            (sees, vss, self.applied_rules(&rules, host, client))
        };
        // A short host resolves per client namespace: no namespace can
        // stand for another then.
        let independent = self.resolve_client_host(host, "mesh503-probe-a")
            == self.resolve_client_host(host, "mesh503-probe-b");
        let shared = (share && independent).then(|| {
            (
                index.with_own_view(host, &self.opts.domain_suffix),
                view(OTHER_NAMESPACES),
            )
        });
        // The class the shared view fell in, once known: the namespaces
        // sharing it join it without comparing views again.
        let mut shared_class: Option<usize> = None;
        for ns in namespaces {
            let label_dependent = by_labels.0 || by_labels.1.contains(&ns);
            let other = ns == OTHER_NAMESPACES;
            let v: Cow<View> = match &shared {
                Some((own, v)) if !own.contains(&ns) => Cow::Borrowed(v),
                _ => Cow::Owned(view(&ns)),
            };
            let is_shared = matches!(v, Cow::Borrowed(_));
            let found = match (is_shared, shared_class) {
                (true, Some(i)) => Some(i),
                _ => classes.iter().position(|c| {
                    c.sees_host == v.0 && c.virtual_services == v.1 && c.destination_rules == v.2
                }),
            };
            let i = match found {
                Some(i) => {
                    let c = &mut classes[i];
                    if other {
                        c.other_namespaces = true;
                    } else {
                        c.namespaces.push(ns.clone());
                    }
                    c.label_dependent |= label_dependent;
                    i
                }
                None => {
                    let (sees, vss, drs) = v.into_owned();
                    classes.push(CallerClass {
                        namespaces: if other { Vec::new() } else { vec![ns.clone()] },
                        other_namespaces: other,
                        sees_host: sees,
                        virtual_services: vss,
                        destination_rules: drs,
                        label_dependent,
                    });
                    classes.len() - 1
                }
            };
            if is_shared {
                shared_class = Some(i);
            }
        }
        classes
    }

    /// The DestinationRules of `rules` (those whose host covers `host`) that
    /// apply to `client` for `host`.
    fn applied_rules(
        &self,
        rules: &[DestinationRule],
        host: &str,
        client: Client<'_>,
    ) -> Vec<String> {
        let svc_ns = self
            .registry
            .pick(host, client.namespace, &self.opts)
            .map(|s| s.namespace.clone())
            .unwrap_or_default();
        decide(
            rules,
            &LookupQuery {
                client_ns: client.namespace,
                client_labels: client.labels,
                service_fqdn: host,
                service_ns: &svc_ns,
                root_ns: &self.opts.root_namespace,
            },
        )
        .selection
        .map(|s| s.rules.iter().map(|r| r.key()).collect())
        .unwrap_or_default()
    }

    /// Whether what a client of the namespace sees of `host` can depend on
    /// its labels, for every namespace at once (`None` key: any namespace,
    /// a VirtualService for the host matching on `sourceLabels`): a Sidecar
    /// or a DestinationRule for the host with a workload selector.
    fn label_dependent_namespaces(&self, host: &str) -> (bool, BTreeSet<String>) {
        let names = |h: &str| host::matches(h, host) || host::matches(host, h);
        let mut namespaces: BTreeSet<String> = self
            .sidecars
            .iter()
            .filter(|s| s.workload_selector.is_some())
            .map(|s| s.meta.namespace.clone())
            .collect();
        namespaces.extend(
            self.destination_rules
                .iter()
                .filter(|d| d.workload_selector.is_some() && names(&d.host_fqdn))
                .map(|d| d.meta.namespace.clone()),
        );
        let any = self.virtual_services.iter().any(|v| {
            v.hosts.iter().any(|h| names(h))
                && v.http
                    .iter()
                    .flat_map(|r| r.matches.iter())
                    .any(|m| !m.source_labels.is_empty())
        });
        (any, namespaces)
    }
}
