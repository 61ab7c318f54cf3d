//! A route destination for one client: the Envoy cluster it names
//! (`outbound|<port>|<subset>|<host>`), whether istiod builds that cluster
//! for the client, and whether it has endpoints — `503 NC` and `503 UH`
//! decided from config.
//!
//! Place in the flow: a pure helper (istio/routing), part of
//! [`super::query::Routing`].
//!
//! Sources (istio/istio): `pilot/pkg/networking/core/route/route.go`
//! `GetDestinationCluster` (port = the destination's, else the service's
//! only port, else the listener port; an ExternalName alias points at its
//! target's clusters; a host istiod does not know still gets a cluster name:
//! "it's okay if the target cluster cannot be resolved"),
//! `applyHTTPRouteDestination` (one destination takes all traffic whatever
//! its weight; with several, weight-0 ones are dropped); `cluster.go`
//! `buildOutboundClusters` and `cluster_builder.go` (subset clusters only
//! for the subsets of the DestinationRule that applies to the client, found
//! by `push_context.go` `destinationRule`); route tables are built with
//! `validate_clusters: false` (`httproute.go`), so a missing cluster is a
//! request-time `503 NC cluster_not_found` (Envoy `router.cc`, default
//! `cluster_not_found_response_code` SERVICE_UNAVAILABLE); a cluster without
//! endpoints is `503 UH no_healthy_upstream`.

use std::collections::BTreeMap;

use super::super::destination_rule::{decide, LookupQuery, ShadowReason};
use super::super::object::ObjectRef;
use super::query::{Client, Outbound, Routing};
use super::registry::{EndpointSource, Registry, RegistryService, Resolution};
use super::virtual_service::{Destination, RouteDestination};

/// Why a destination host has no cluster.
#[derive(Debug, Clone, PartialEq)]
pub enum UnknownHostWhy {
    NotInRegistry,
    /// Only services not exported to the client's namespace have it.
    NotExported {
        services: Vec<(ObjectRef, Vec<String>)>,
    },
    /// A wildcard ServiceEntry covers it, but clusters are named after the
    /// exact service host (`outbound|p||*.example.com`), so none has this name.
    CoveredOnlyByWildcard {
        entry: ObjectRef,
        wildcard: String,
    },
    /// An ExternalName Service (alias era) whose target is in no registry.
    AliasTargetUnknown {
        service: ObjectRef,
        target: String,
    },
}

/// What a destination's cluster looks like for this client.
#[derive(Debug, Clone, PartialEq)]
pub enum DestStatus {
    /// The cluster exists with `ready` endpoints.
    Ok { ready: usize },
    /// Weight 0 beside other destinations: not in Envoy's config.
    Dropped,
    /// No service with this host for the client → `503 NC`.
    UnknownHost(UnknownHostWhy),
    /// The service has no such port → `503 NC`.
    PortNotInService {
        port: u32,
        /// `true` when the port came from the listener (no `port` on a
        /// multi-port destination).
        implicit: bool,
        service_ports: Vec<u32>,
    },
    /// The DestinationRule that applies to the client does not define the
    /// subset (or none applies) → `503 NC`.
    UnknownSubset {
        subset: String,
        /// The applied rule(s), `ns/name`; empty = no rule applies.
        rules: Vec<String>,
        available: Vec<String>,
        /// Rules that define it but do not apply to this client, and why.
        defined_in_unapplied: Vec<(String, ShadowReason)>,
    },
    /// The subset's labels select no ready endpoint → `503 UH`.
    SubsetSelectsNoPods {
        subset: String,
        labels: BTreeMap<String, String>,
        rule: String,
        /// Workloads with the labels that are not ready.
        not_ready: Vec<String>,
        selected_by_service: usize,
    },
    /// The service has no ready endpoint → `503 UH`.
    NoEndpoints {
        selector: Option<BTreeMap<String, String>>,
        not_ready: Vec<String>,
    },
    /// Endpoints not checked (headless / passthrough, DNS, manual endpoints).
    EndpointsNotChecked(EndpointSource),
}

/// The response a status implies for every request that takes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expected {
    pub code: u16,
    /// Envoy response flag (`-` for none).
    pub flag: &'static str,
    /// `%RESPONSE_CODE_DETAILS%`.
    pub details: &'static str,
}

impl DestStatus {
    /// `Some` when every request routed here fails this way.
    pub fn expected(&self) -> Option<Expected> {
        match self {
            DestStatus::UnknownHost(_)
            | DestStatus::PortNotInService { .. }
            | DestStatus::UnknownSubset { .. } => Some(Expected {
                code: 503,
                flag: "NC",
                details: "cluster_not_found",
            }),
            DestStatus::SubsetSelectsNoPods { .. } | DestStatus::NoEndpoints { .. } => {
                Some(Expected {
                    code: 503,
                    flag: "UH",
                    details: "no_healthy_upstream",
                })
            }
            _ => None,
        }
    }
}

impl Outbound {
    /// What an HTTP request to an unrouted host gets (`None` = passed through).
    pub fn expected(self) -> Option<Expected> {
        match self {
            Outbound::Passthrough => None,
            Outbound::BlackHole => Some(Expected {
                code: 502,
                flag: "-",
                details: "direct_response",
            }),
        }
    }
}

/// One destination of a route (or the default route) for this client.
#[derive(Debug, Clone, PartialEq)]
pub struct DestinationView {
    pub destination: Destination,
    /// `weight` as written.
    pub weight: u32,
    /// Share of the route's traffic, percent (one destination → 100).
    pub share: f64,
    pub cluster_port: u32,
    /// Where `cluster_port` came from (`GetDestinationCluster`).
    pub port_source: PortSource,
    pub cluster_name: String,
    /// The registry service it resolved to.
    pub service: Option<ObjectRef>,
    pub status: DestStatus,
}

/// Where a destination's cluster port came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortSource {
    /// `destination.port.number`.
    Written,
    /// The service's only port.
    OnlyServicePort,
    /// The listener port: no port written and the service has several ports
    /// (or is unknown). Works only while the listener port is one of the
    /// service's; istioctl analyze flags it (a multi-port destination needs a port).
    ListenerPort,
}

/// Who the destinations are resolved for.
#[derive(Debug, Clone, Copy)]
pub(super) struct DestCtx<'a> {
    pub client: Client<'a>,
    pub listener_port: u32,
    /// For a gateway: prefer the service in the VirtualService's namespace
    /// (gateway.go `buildNameToServiceMapForHTTPRoutes`).
    pub gateway: bool,
    /// Set per route from `gateway`: the VirtualService's namespace.
    pub prefer_ns: Option<&'a str>,
}

/// `outbound|<port>|<subset>|<host>` (`model.BuildSubsetKey`).
pub fn cluster_name(port: u32, subset: Option<&str>, host: &str) -> String {
    format!("outbound|{port}|{}|{host}", subset.unwrap_or(""))
}

impl Routing {
    /// Destinations with Envoy's weighting (`applyHTTPRouteDestination`).
    pub(super) fn weighted(
        &self,
        route: &[RouteDestination],
        ctx: &DestCtx<'_>,
    ) -> Vec<DestinationView> {
        let single = route.len() == 1;
        let total: u32 = route.iter().map(|d| d.weight).sum();
        route
            .iter()
            .filter_map(|d| d.destination.as_ref().map(|dst| (d.weight, dst)))
            .map(|(w, dst)| {
                if !single && w == 0 {
                    let mut v = self.destination_view(dst, w, 0.0, ctx);
                    v.status = DestStatus::Dropped;
                    return v;
                }
                let share = if single || total == 0 {
                    100.0
                } else {
                    f64::from(w) * 100.0 / f64::from(total)
                };
                self.destination_view(dst, w, share, ctx)
            })
            .collect()
    }

    /// The service a destination host resolves to for this client.
    fn destination_service(&self, host: &str, ctx: &DestCtx<'_>) -> Option<&RegistryService> {
        if let Some(ns) = ctx.prefer_ns {
            if let Some(s) = self.registry.with_host(host).find(|s| {
                s.namespace == ns && Registry::visible(s, ctx.client.namespace, &self.opts)
            }) {
                return Some(s);
            }
        }
        self.registry.pick(host, ctx.client.namespace, &self.opts)
    }

    /// The cluster a destination names and its status for this client.
    pub(super) fn destination_view(
        &self,
        dst: &Destination,
        weight: u32,
        share: f64,
        ctx: &DestCtx<'_>,
    ) -> DestinationView {
        let ns = ctx.client.namespace;
        let mut svc = self.destination_service(&dst.host, ctx);
        let mut cluster_host = dst.host.clone();
        let mut status = None;
        if let Some(s) = svc {
            if let Resolution::Alias { target } = &s.resolution {
                cluster_host = target.clone();
                let t = self.registry.pick(target, ns, &self.opts);
                if t.is_none() {
                    status = Some(DestStatus::UnknownHost(
                        UnknownHostWhy::AliasTargetUnknown {
                            service: s.object.clone(),
                            target: target.clone(),
                        },
                    ));
                }
                svc = t;
            }
        }
        let (cluster_port, port_source) = match (dst.port, svc) {
            (Some(p), _) => (p, PortSource::Written),
            (None, Some(s)) if s.ports.len() == 1 => (s.ports[0].port, PortSource::OnlyServicePort),
            _ => (ctx.listener_port, PortSource::ListenerPort),
        };
        let status = status.unwrap_or_else(|| match svc {
            None => DestStatus::UnknownHost(self.unknown_host_why(&dst.host, ns)),
            Some(s) => self.service_status(s, dst, cluster_port, ctx),
        });
        DestinationView {
            destination: dst.clone(),
            weight,
            share,
            cluster_port,
            port_source,
            cluster_name: cluster_name(cluster_port, dst.subset.as_deref(), &cluster_host),
            service: svc.map(|s| s.object.clone()),
            status,
        }
    }

    fn unknown_host_why(&self, host: &str, ns: &str) -> UnknownHostWhy {
        let hidden = self.hidden_services(host);
        if !hidden.is_empty() {
            return UnknownHostWhy::NotExported { services: hidden };
        }
        match self.registry.wildcard_cover(host, ns, &self.opts) {
            Some(w) => UnknownHostWhy::CoveredOnlyByWildcard {
                entry: w.object.clone(),
                wildcard: w.hostname.clone(),
            },
            None => UnknownHostWhy::NotInRegistry,
        }
    }

    /// Port, subset and endpoints of a destination that resolved to `svc`.
    fn service_status(
        &self,
        svc: &RegistryService,
        dst: &Destination,
        cluster_port: u32,
        ctx: &DestCtx<'_>,
    ) -> DestStatus {
        let Some(port) = svc.ports.iter().find(|p| p.port == cluster_port) else {
            return DestStatus::PortNotInService {
                port: cluster_port,
                implicit: dst.port.is_none(),
                service_ports: svc.ports.iter().map(|p| p.port).collect(),
            };
        };
        let subset = match &dst.subset {
            None => None,
            Some(name) => match self.subset_for(svc, name, ctx.client) {
                Ok(found) => Some((name.clone(), found)),
                Err(status) => return status,
            },
        };
        let eps = self
            .registry
            .endpoints(svc, port, subset.as_ref().map(|(_, (l, _))| l));
        match eps.source {
            EndpointSource::Passthrough | EndpointSource::UnknownManual | EndpointSource::Dns
                if eps.ready.is_empty() =>
            {
                return DestStatus::EndpointsNotChecked(eps.source)
            }
            _ => {}
        }
        if !eps.ready.is_empty() {
            return DestStatus::Ok {
                ready: eps.ready.len(),
            };
        }
        match subset {
            Some((name, (labels, rule))) => DestStatus::SubsetSelectsNoPods {
                subset: name,
                labels,
                rule,
                not_ready: eps.not_ready,
                selected_by_service: eps.selected_by_service,
            },
            None => DestStatus::NoEndpoints {
                selector: svc.selector.clone(),
                not_ready: eps.not_ready,
            },
        }
    }

    /// The subset's labels and defining rule, from the DestinationRule that
    /// applies to this client; the `UnknownSubset` status otherwise.
    fn subset_for(
        &self,
        svc: &RegistryService,
        name: &str,
        client: Client<'_>,
    ) -> Result<(BTreeMap<String, String>, String), DestStatus> {
        let lk = decide(
            &self.destination_rules,
            &LookupQuery {
                client_ns: client.namespace,
                client_labels: client.labels,
                service_fqdn: &svc.hostname,
                service_ns: &svc.namespace,
                root_ns: &self.opts.root_namespace,
            },
        );
        if let Some(sel) = &lk.selection {
            if let Some(s) = sel.subset(name) {
                return Ok((s.subset.labels.clone(), s.from.clone()));
            }
        }
        let (rules, available, lost) = match &lk.selection {
            Some(sel) => (
                sel.rules.iter().map(|r| r.key()).collect(),
                sel.subsets.iter().map(|s| s.subset.name.clone()).collect(),
                &sel.shadowed,
            ),
            None => (Vec::new(), Vec::new(), &lk.unapplied),
        };
        Err(DestStatus::UnknownSubset {
            subset: name.to_string(),
            rules,
            available,
            defined_in_unapplied: lost
                .iter()
                .filter(|s| s.rule.subset(name).is_some())
                .map(|s| (s.rule.key(), s.reason.clone()))
                .collect(),
        })
    }
}
