//! The routing index of one snapshot and its per-client answers: for a
//! client (namespace, labels) calling `host:port`, whether the host is
//! visible, which VirtualService wins, which routes are reachable, and for
//! every destination the Envoy cluster and whether it exists and has
//! endpoints — the `503 NC` / `503 UH` / `502` causes visible from config.
//!
//! Place in the flow: a pure helper (istio/routing). model builds one
//! [`Routing`] per snapshot; analyze rules call [`Routing::routes_for`],
//! [`Routing::gateway_routes`] (in [`super::gateway_query`]) and
//! [`Routing::callers_of`] (in [`super::callers`]).
//!
//! Sources (istio/istio): `pilot/pkg/networking/core/httproute.go`
//! `BuildSidecarOutboundVirtualHosts` (the egress listener's services and
//! VirtualServices; the first virtual host per `host:port` wins),
//! `buildCatchAllVirtualHost` (a host the sidecar does not route:
//! `PassthroughCluster` under `ALLOW_ANY`, the `block_all` virtual host's
//! direct `502` under `REGISTRY_ONLY`); `route.go`
//! `buildSidecarVirtualHostForService` (no VirtualService → one route to
//! `outbound|<port>||<host>`); `pilot/pkg/model/push_context.go`
//! `initVirtualServices` and `model/virtualservice.go` `SelectVirtualServices`
//! (which VirtualServices a namespace sees, in which order); the destinations
//! are [`super::destination`]'s.

use std::collections::BTreeMap;

use serde_json::Value;

use super::super::destination_rule::DestinationRule;
use super::super::mesh_config::OutboundMode;
use super::super::object::{ObjectError, ObjectRef};
use super::delegate::{self, DelegateNote};
use super::destination::{DestCtx, DestStatus, DestinationView, Expected};
use super::gateway::Gateway;
use super::registry::{Protocol, Registry, RegistryInput, RegistryService};
use super::select::{
    self, Reachability, RouteContext, RouteKind, RouteOutcome, VsShadowReason, WinReason,
};
use super::sidecar_scope::{self, Import, SidecarResource, SidecarWhy};
use super::virtual_service::{
    Abort, Destination, RouteOrigin, VirtualService, VsTier, MESH_GATEWAY,
};
use super::RoutingOptions;

/// The raw objects of a snapshot that routing depends on.
#[derive(Debug, Clone, Copy, Default)]
pub struct RoutingInput<'a> {
    pub services: &'a [&'a Value],
    pub service_entries: &'a [&'a Value],
    pub pods: &'a [&'a Value],
    pub workload_entries: &'a [&'a Value],
    pub virtual_services: &'a [&'a Value],
    pub gateways: &'a [&'a Value],
    pub sidecars: &'a [&'a Value],
    /// Already parsed (the model parses them once for the TLS analysis too).
    pub destination_rules: &'a [DestinationRule],
}

/// The routing index of one snapshot; build once, query per client.
#[derive(Debug, Clone, PartialEq)]
pub struct Routing {
    pub opts: RoutingOptions,
    pub registry: Registry,
    /// VirtualServices with hosts, delegates merged, oldest first.
    pub virtual_services: Vec<VirtualService>,
    /// Delegates (no hosts): never applied on their own.
    pub delegates: Vec<VirtualService>,
    pub delegate_notes: Vec<DelegateNote>,
    pub gateways: Vec<Gateway>,
    pub sidecars: Vec<SidecarResource>,
    pub destination_rules: Vec<DestinationRule>,
    /// Objects that could not be read (skipped).
    pub errors: Vec<ObjectError>,
}

/// Who asks: a workload's namespace and labels (for a gateway, the gateway pod's).
#[derive(Debug, Clone, Copy)]
pub struct Client<'a> {
    pub namespace: &'a str,
    pub labels: &'a BTreeMap<String, String>,
}

/// Where a request to a host the proxy does not route ends up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outbound {
    /// `ALLOW_ANY`: `PassthroughCluster`, the original destination.
    Passthrough,
    /// `REGISTRY_ONLY`: HTTP gets a direct `502` from the `block_all` virtual
    /// host; TCP goes to `BlackHoleCluster`.
    BlackHole,
}

/// Whether the client's sidecar knows the host at all.
#[derive(Debug, Clone, PartialEq)]
pub enum HostVisibility {
    Visible,
    /// No Service or ServiceEntry has this host.
    NotInRegistry {
        outbound: Outbound,
    },
    /// Services with this host exist but none is exported to the client's namespace.
    NotExported {
        services: Vec<(ObjectRef, Vec<String>)>,
        outbound: Outbound,
    },
    /// The client's Sidecar does not import it.
    NotImportedBySidecar {
        sidecar: ObjectRef,
        import: Import,
        outbound: Outbound,
    },
    /// The service has no such port.
    PortNotServed {
        service_ports: Vec<u32>,
        outbound: Outbound,
    },
}

/// What a route does.
#[derive(Debug, Clone, PartialEq)]
pub enum RouteAction {
    Forward,
    Redirect,
    DirectResponse(u32),
}

/// One route of the applied VirtualService(s), for this client.
#[derive(Debug, Clone, PartialEq)]
pub struct RouteInfo {
    /// `ns/name` of its VirtualService.
    pub vs: String,
    pub kind: RouteKind,
    /// Index into the VS's `http` / `tcp` / `tls` list (after delegate merge).
    pub index: usize,
    pub name: Option<String>,
    pub origin: RouteOrigin,
    pub reachability: Reachability,
    pub catch_all: bool,
    /// The matches built for this client (`None` = no `match`).
    pub built_matches: Vec<Option<usize>>,
    pub action: RouteAction,
    pub destinations: Vec<DestinationView>,
    pub mirrors: Vec<DestinationView>,
    pub fault_abort: Option<Abort>,
}

impl RouteInfo {
    pub fn reachable(&self) -> bool {
        self.reachability == Reachability::Reachable
    }
}

/// The answer to "what happens when this client calls `host:port`".
#[derive(Debug, Clone, PartialEq)]
pub struct RouteView {
    pub client_namespace: String,
    /// The host, resolved (short names in the client's namespace).
    pub host: String,
    pub port: u32,
    pub service: Option<ObjectRef>,
    pub protocol: Option<Protocol>,
    pub kind: RouteKind,
    pub sidecar: Option<ObjectRef>,
    pub sidecar_why: SidecarWhy,
    pub visibility: HostVisibility,
    /// The applied VirtualService (`ns/name`) and why it won.
    pub virtual_service: Option<(String, WinReason)>,
    /// VirtualServices naming the host that do not apply, and why.
    pub shadowed: Vec<(String, VsShadowReason)>,
    pub routes: Vec<RouteInfo>,
    /// When no VirtualService applies: the default route to `outbound|port||host`.
    pub default_route: Option<DestinationView>,
}

impl RouteView {
    /// Every destination a request can take (reachable routes, non-dropped),
    /// or the default route.
    pub fn live_destinations(&self) -> Vec<&DestinationView> {
        let mut out: Vec<&DestinationView> = self
            .routes
            .iter()
            .filter(|r| r.reachable())
            .flat_map(|r| r.destinations.iter())
            .filter(|d| d.status != DestStatus::Dropped)
            .collect();
        out.extend(self.default_route.iter());
        out
    }

    /// Every way a request of this client can fail by config alone: a
    /// reachable route's destination whose cluster is missing or empty, a
    /// fault abort, or a host the sidecar does not route under `REGISTRY_ONLY`.
    pub fn failures(&self) -> Vec<Failure<'_>> {
        let mut out = Vec::new();
        if let Some(expected) = self.visibility.outbound().and_then(Outbound::expected) {
            if self.kind == RouteKind::Http {
                out.push(Failure::Unrouted { expected });
            }
        }
        for r in self.routes.iter().filter(|r| r.reachable()) {
            if let Some(abort) = &r.fault_abort {
                out.push(Failure::FaultAbort { route: r, abort });
            }
            for d in r.destinations.iter().chain(&r.mirrors) {
                if let Some(expected) = d.status.expected() {
                    out.push(Failure::Destination {
                        route: Some(r),
                        destination: d,
                        expected,
                        mirror: r.mirrors.iter().any(|m| std::ptr::eq(m, d)),
                    });
                }
            }
        }
        if let Some(d) = &self.default_route {
            if let Some(expected) = d.status.expected() {
                out.push(Failure::Destination {
                    route: None,
                    destination: d,
                    expected,
                    mirror: false,
                });
            }
        }
        out
    }
}

/// One way requests fail, from config alone (see [`RouteView::failures`]).
#[derive(Debug, Clone, PartialEq)]
pub enum Failure<'a> {
    /// Requests routed to `destination` get `expected` (`route` is `None`
    /// for the default route). A failing mirror does not fail the request
    /// (`mirror: true`): Envoy mirrors fire and forget.
    Destination {
        route: Option<&'a RouteInfo>,
        destination: &'a DestinationView,
        expected: Expected,
        mirror: bool,
    },
    /// The route injects an abort (its share and status are in `abort`).
    FaultAbort {
        route: &'a RouteInfo,
        abort: &'a Abort,
    },
    /// The host is not routed and `REGISTRY_ONLY` answers `502`.
    Unrouted { expected: Expected },
}

impl HostVisibility {
    /// Where unrouted requests go, when the host is not routed.
    pub fn outbound(&self) -> Option<Outbound> {
        match self {
            HostVisibility::Visible => None,
            HostVisibility::NotInRegistry { outbound }
            | HostVisibility::NotExported { outbound, .. }
            | HostVisibility::NotImportedBySidecar { outbound, .. }
            | HostVisibility::PortNotServed { outbound, .. } => Some(*outbound),
        }
    }
}

impl Routing {
    /// Build the index. Objects that cannot be read are skipped and listed
    /// in [`Routing::errors`]; this never fails.
    pub fn new(input: RoutingInput<'_>, opts: RoutingOptions) -> Routing {
        let (registry, mut errors) = Registry::build(
            RegistryInput {
                services: input.services,
                service_entries: input.service_entries,
                pods: input.pods,
                workload_entries: input.workload_entries,
            },
            &opts,
        );
        let mut vss = Vec::new();
        for v in input.virtual_services {
            match VirtualService::from_value(v, &opts.domain_suffix) {
                Ok(vs) => vss.push(vs),
                Err(e) => errors.push(e),
            }
        }
        let merged = delegate::merge(vss, &opts);
        let mut gateways = Vec::new();
        for v in input.gateways {
            match Gateway::from_value(v) {
                Ok(g) => gateways.push(g),
                Err(e) => errors.push(e),
            }
        }
        let mut sidecars = Vec::new();
        for v in input.sidecars {
            match SidecarResource::from_value(v, &opts) {
                Ok(s) => sidecars.push(s),
                Err(e) => errors.push(e),
            }
        }
        Routing {
            registry,
            virtual_services: merged.virtual_services,
            delegates: merged.delegates,
            delegate_notes: merged.notes,
            gateways,
            sidecars,
            destination_rules: input.destination_rules.to_vec(),
            errors,
            opts,
        }
    }

    /// Resolve a host as a client in `ns` would (a name without a dot is a
    /// short name in the client's own namespace, by DNS search path).
    pub fn resolve_client_host(&self, host: &str, ns: &str) -> String {
        super::virtual_service::resolve_host(host, ns, &self.opts.domain_suffix)
    }

    /// What happens when `client` calls `host:port` through its sidecar.
    pub fn routes_for(&self, client: Client<'_>, host: &str, port: u32) -> RouteView {
        let host = self.resolve_client_host(host, client.namespace);
        let choice = sidecar_scope::choose(
            &self.sidecars,
            client.namespace,
            client.labels,
            &self.opts.root_namespace,
        );
        let outbound = match choice.outbound_mode(&self.opts.outbound_mode) {
            OutboundMode::RegistryOnly => Outbound::BlackHole,
            _ => Outbound::Passthrough,
        };
        // A host only a wildcard ServiceEntry covers is routed by that entry's
        // virtual host (domain `*.example.com`) to its cluster.
        let svc = self
            .registry
            .pick(&host, client.namespace, &self.opts)
            .or_else(|| {
                self.registry
                    .wildcard_cover(&host, client.namespace, &self.opts)
            });
        let key = svc.map_or(host.clone(), |s| s.hostname.clone());
        let svc_port = svc.and_then(|s| s.ports.iter().find(|p| p.port == port));
        let protocol = svc_port.map(|p| p.protocol);
        let kind = route_kind(protocol);
        let mut view = RouteView {
            client_namespace: client.namespace.to_string(),
            host: host.clone(),
            port,
            service: svc.map(|s| s.object.clone()),
            protocol,
            kind,
            sidecar: choice.sidecar.map(|s| s.object_ref()),
            sidecar_why: choice.why,
            visibility: HostVisibility::Visible,
            virtual_service: None,
            shadowed: Vec::new(),
            routes: Vec::new(),
            default_route: None,
        };
        view.visibility = self.host_visibility(client, &host, svc, port, &choice, outbound);
        if view.visibility != HostVisibility::Visible {
            return view;
        }
        let gateways = [MESH_GATEWAY.to_string()];
        let ctx = RouteContext {
            namespace: client.namespace,
            labels: client.labels,
            port,
            gateways: &gateways,
        };
        let (candidates, mut shadowed) = self.mesh_candidates(client, &key, port, &choice, kind);
        let selection = match kind {
            RouteKind::Http => {
                select::select_http(&candidates, &key, &ctx, self.opts.at_least(1, 21))
            }
            k => select::select_l4(&candidates, &key, &ctx, k),
        };
        shadowed.extend(
            selection
                .shadowed
                .iter()
                .map(|(vs, r)| (vs.key(), r.clone())),
        );
        view.shadowed = shadowed;
        let dest_ctx = DestCtx {
            client,
            listener_port: port,
            gateway: false,
            prefer_ns: None,
        };
        match selection.winner {
            Some((vs, why)) => {
                view.virtual_service = Some((vs.key(), why));
                view.routes = self.route_infos(&[vs], &selection.outcomes, kind, &dest_ctx);
            }
            None => {
                let dst = Destination {
                    host_written: key.clone(),
                    host: key.clone(),
                    subset: None,
                    port: None,
                };
                view.default_route = Some(self.destination_view(&dst, 0, 100.0, &dest_ctx));
            }
        }
        view
    }

    fn host_visibility(
        &self,
        client: Client<'_>,
        host: &str,
        svc: Option<&RegistryService>,
        port: u32,
        choice: &sidecar_scope::SidecarChoice<'_>,
        outbound: Outbound,
    ) -> HostVisibility {
        let Some(svc) = svc else {
            let hidden = self.hidden_services(host);
            if hidden.is_empty() {
                return HostVisibility::NotInRegistry { outbound };
            }
            return HostVisibility::NotExported {
                services: hidden,
                outbound,
            };
        };
        if let Some(sc) = choice.sidecar {
            let import = sc.imports_service(client.namespace, &svc.hostname, &svc.namespace, port);
            if !matches!(import, Import::Imported { .. }) {
                return HostVisibility::NotImportedBySidecar {
                    sidecar: sc.object_ref(),
                    import,
                    outbound,
                };
            }
        }
        if !svc.ports.iter().any(|p| p.port == port) {
            return HostVisibility::PortNotServed {
                service_ports: svc.ports.iter().map(|p| p.port).collect(),
                outbound,
            };
        }
        HostVisibility::Visible
    }

    /// Services with this host (all namespaces) with their exportTo.
    pub(super) fn hidden_services(&self, host: &str) -> Vec<(ObjectRef, Vec<String>)> {
        self.registry
            .with_host(host)
            .map(|s| (s.object.clone(), s.export_to.clone()))
            .collect()
    }

    /// The VirtualServices a sidecar in the client's namespace may apply to
    /// `host`, in istiod's order, and those that name it but cannot apply.
    fn mesh_candidates<'v>(
        &'v self,
        client: Client<'_>,
        host: &str,
        port: u32,
        choice: &sidecar_scope::SidecarChoice<'_>,
        kind: RouteKind,
    ) -> (Candidates<'v>, Vec<(String, VsShadowReason)>) {
        let mut cands = Vec::new();
        let mut shadowed = Vec::new();
        for vs in &self.virtual_services {
            let names = vs.hosts.iter().any(|h| {
                super::super::host::matches(h, host)
                    || (kind != RouteKind::Http && super::super::host::matches(host, h))
            });
            if !names {
                continue;
            }
            if !vs.binds_mesh() {
                shadowed.push((
                    vs.key(),
                    VsShadowReason::GatewaysOnly {
                        gateways: vs.gateways.clone(),
                    },
                ));
                continue;
            }
            let Some(tier) = vs.tier_for(client.namespace, &self.opts) else {
                shadowed.push((
                    vs.key(),
                    VsShadowReason::NotExported {
                        export_to: vs.export_to.clone(),
                    },
                ));
                continue;
            };
            if let Some(sc) = choice.sidecar {
                if !sc.imports_virtual_service(client.namespace, vs, port) {
                    shadowed.push((
                        vs.key(),
                        VsShadowReason::NotImportedBySidecar {
                            sidecar: sc.meta.key(),
                        },
                    ));
                    continue;
                }
            }
            cands.push((vs, tier));
        }
        // Stable: within a tier the creation-time order of `virtual_services` stays.
        cands.sort_by_key(|(_, t)| *t);
        (cands, shadowed)
    }

    /// RouteInfos for the outcomes of `list` (the applied VirtualServices).
    pub(super) fn route_infos(
        &self,
        list: &[&VirtualService],
        outcomes: &[RouteOutcome],
        kind: RouteKind,
        ctx: &DestCtx<'_>,
    ) -> Vec<RouteInfo> {
        let mut out = Vec::new();
        for o in outcomes {
            let Some(vs) = list.iter().find(|v| v.key() == o.vs) else {
                continue;
            };
            let ctx = DestCtx {
                prefer_ns: ctx.gateway.then_some(vs.meta.namespace.as_str()),
                ..*ctx
            };
            let info = match kind {
                RouteKind::Http => vs.http.get(o.route).map(|r| {
                    let dests = self.weighted(&r.route, &ctx);
                    let mirrors = r
                        .all_mirrors()
                        .map(|m| self.destination_view(m, 0, 0.0, &ctx))
                        .collect();
                    RouteInfo {
                        vs: o.vs.clone(),
                        kind,
                        index: o.route,
                        name: r.name.clone(),
                        origin: r.origin.clone(),
                        reachability: o.reachability.clone(),
                        catch_all: o.catch_all,
                        built_matches: o.built_matches.clone(),
                        action: if r.redirect {
                            RouteAction::Redirect
                        } else if let Some(s) = r.direct_response {
                            RouteAction::DirectResponse(s)
                        } else {
                            RouteAction::Forward
                        },
                        destinations: if r.redirect || r.direct_response.is_some() {
                            Vec::new()
                        } else {
                            dests
                        },
                        mirrors,
                        fault_abort: r.fault.as_ref().and_then(|f| f.abort.clone()),
                    }
                }),
                _ => {
                    let routes = if kind == RouteKind::Tls {
                        &vs.tls
                    } else {
                        &vs.tcp
                    };
                    routes.get(o.route).map(|r| RouteInfo {
                        vs: o.vs.clone(),
                        kind,
                        index: o.route,
                        name: None,
                        origin: RouteOrigin::Own,
                        reachability: o.reachability.clone(),
                        catch_all: false,
                        built_matches: Vec::new(),
                        action: RouteAction::Forward,
                        destinations: self.weighted(&r.route, &ctx),
                        mirrors: Vec::new(),
                        fault_abort: None,
                    })
                }
            };
            out.extend(info);
        }
        out
    }
}

/// VirtualServices that may apply, with their tier, in istiod's order.
type Candidates<'v> = Vec<(&'v VirtualService, VsTier)>;

/// The route kind a port protocol uses (undeclared ports are sniffed as HTTP).
pub fn route_kind(protocol: Option<Protocol>) -> RouteKind {
    match protocol {
        Some(p) if p.is_tls() => RouteKind::Tls,
        Some(p) if !p.is_http_or_sniffed() => RouteKind::Tcp,
        _ => RouteKind::Http,
    }
}
