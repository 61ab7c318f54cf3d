//! The gateway side: for a gateway pod (namespace, labels) receiving a
//! request for `host` on a server port, which Gateway servers listen, which
//! VirtualServices bind, the merged routes of the virtual host Envoy picks,
//! and the destinations' clusters — `404 NR` when no virtual host matches.
//!
//! Place in the flow: a pure helper (istio/routing), part of
//! [`super::query::Routing`].
//!
//! Sources (istio/istio): `pilot/pkg/networking/core/gateway.go`
//! `buildGatewayHTTPRouteConfig` (per server on the port: the VirtualServices
//! bound to its gateway as `push_context.go` `VirtualServicesForGateway`
//! lists them for the gateway pod's namespace — private, exported to it,
//! public; a VS that builds no route is omitted; its hosts intersected with
//! the server's hosts for the VS's namespace; same-host VirtualServices
//! merged, catch-alls last; no virtual host → a `blackhole` one with no
//! routes, so every request is `404 NR route_not_found`),
//! `buildNameToServiceMapForHTTPRoutes` (a destination resolves first to the
//! service in the VirtualService's namespace if the gateway may see it).
//! Gateways ignore Sidecar resources (`doGetSidecarScope`).

use std::collections::BTreeMap;

use super::destination::DestCtx;
use super::gateway::{envoy_domain_match, hosts_for_namespace, intersect, Server};
use super::query::{Client, RouteInfo, Routing};
use super::registry::Protocol;
use super::registry::Workload;
use super::select::{self, RouteContext, RouteKind, VsShadowReason};
use super::virtual_service::{VirtualService, VsTier, MESH_GATEWAY};
use crate::istio::object::labels_match;

/// What a gateway does with a request for `host` on `port`.
#[derive(Debug, Clone, PartialEq)]
pub struct GatewayView {
    pub gateway_namespace: String,
    pub host: String,
    pub port: u32,
    /// Gateways (`ns/name`) selecting the pod with a server on the port, and the server indexes.
    pub servers: Vec<(String, usize)>,
    /// Every virtual host domain built on the port.
    pub domains: Vec<String>,
    /// The domain Envoy picks for `host`.
    pub virtual_host: Option<String>,
    /// VirtualServices merged into that virtual host, in order.
    pub bound: Vec<String>,
    pub shadowed: Vec<(String, VsShadowReason)>,
    pub routes: Vec<RouteInfo>,
    pub outcome: GatewayOutcome,
}

/// The gateway's answer in one word.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GatewayOutcome {
    /// No Gateway selecting the pod has a server on the port.
    NoServer,
    /// The servers on the port are not HTTP (TLS passthrough, TCP): routes
    /// come from `tls` / `tcp` and are not evaluated here.
    NotHttp { protocols: Vec<Protocol> },
    /// No virtual host matches the authority: `404 NR route_not_found`.
    NoVirtualHost,
    /// Routed through the virtual host's routes.
    Routed,
}

impl Routing {
    /// What the gateway pod `gateway` (namespace and labels) does with a
    /// request for `host` arriving on server port `port`.
    pub fn gateway_routes(&self, gateway: Client<'_>, host: &str, port: u32) -> GatewayView {
        let host = host.to_ascii_lowercase();
        let mut view = GatewayView {
            gateway_namespace: gateway.namespace.to_string(),
            host: host.clone(),
            port,
            servers: Vec::new(),
            domains: Vec::new(),
            virtual_host: None,
            bound: Vec::new(),
            shadowed: Vec::new(),
            routes: Vec::new(),
            outcome: GatewayOutcome::NoServer,
        };
        let servers: Vec<(String, &Server)> = self
            .gateways
            .iter()
            .filter(|g| g.selects(gateway.labels))
            .flat_map(|g| {
                g.servers
                    .iter()
                    .filter(|s| s.port == port)
                    .map(move |s| (g.key(), s))
            })
            .collect();
        view.servers = servers.iter().map(|(k, s)| (k.clone(), s.index)).collect();
        if servers.is_empty() {
            return view;
        }
        let http: Vec<&(String, &Server)> = servers.iter().filter(|(_, s)| is_http(s)).collect();
        if http.is_empty() {
            view.outcome = GatewayOutcome::NotHttp {
                protocols: servers.iter().map(|(_, s)| s.protocol).collect(),
            };
            return view;
        }
        let gw_keys: Vec<String> = http.iter().map(|(k, _)| k.clone()).collect();
        let ctx = RouteContext {
            namespace: gateway.namespace,
            labels: gateway.labels,
            port,
            gateways: &gw_keys,
        };
        let vhosts = self.gateway_vhosts(gateway, &host, &http, &ctx, &mut view.shadowed);
        view.domains = vhosts.keys().cloned().collect();
        let Some(domain) = envoy_domain_match(&view.domains, &host).map(str::to_string) else {
            view.outcome = GatewayOutcome::NoVirtualHost;
            return view;
        };
        let list: Vec<&VirtualService> = vhosts[&domain].clone();
        for (d, vss) in &vhosts {
            for vs in vss.iter().filter(|v| *d != domain && !list.contains(v)) {
                view.shadowed.push((
                    vs.key(),
                    VsShadowReason::OtherVirtualHost { domain: d.clone() },
                ));
            }
        }
        let outcomes = select::http_outcomes(&list, &ctx, true);
        let dest_ctx = DestCtx {
            client: gateway,
            listener_port: port,
            gateway: true,
            prefer_ns: None,
        };
        view.routes = self.route_infos(&list, &outcomes, RouteKind::Http, &dest_ctx);
        view.bound = list.iter().map(|v| v.key()).collect();
        view.virtual_host = Some(domain);
        view.outcome = GatewayOutcome::Routed;
        view
    }

    /// Virtual host domain → VirtualServices (in order), for the HTTP
    /// servers on the port; VirtualServices naming `host` that do not bind
    /// are recorded in `shadowed`.
    fn gateway_vhosts<'v>(
        &'v self,
        gateway: Client<'_>,
        host: &str,
        servers: &[&(String, &Server)],
        ctx: &RouteContext<'_>,
        shadowed: &mut Vec<(String, VsShadowReason)>,
    ) -> BTreeMap<String, Vec<&'v VirtualService>> {
        let mut vhosts: BTreeMap<String, Vec<&VirtualService>> = BTreeMap::new();
        let names_host = |vs: &VirtualService| {
            vs.hosts.iter().any(|h| {
                super::super::host::matches(h, host) || super::super::host::matches(host, h)
            })
        };
        for (gw_key, server) in servers {
            let mut cands: Vec<(&VirtualService, VsTier)> = Vec::new();
            for vs in &self.virtual_services {
                if !vs.bound_gateways().contains(&gw_key.as_str()) {
                    if names_host(vs) && !shadowed.iter().any(|(k, _)| *k == vs.key()) {
                        shadowed.push((
                            vs.key(),
                            VsShadowReason::OtherGateways {
                                gateways: vs
                                    .bound_gateways()
                                    .iter()
                                    .map(|g| g.to_string())
                                    .collect(),
                            },
                        ));
                    }
                    continue;
                }
                match vs.tier_for(gateway.namespace, &self.opts) {
                    Some(t) => cands.push((vs, t)),
                    None if names_host(vs) => shadowed.push((
                        vs.key(),
                        VsShadowReason::NotExported {
                            export_to: vs.export_to.clone(),
                        },
                    )),
                    None => {}
                }
            }
            cands.sort_by_key(|(_, t)| *t);
            for (vs, _) in cands {
                let server_hosts = hosts_for_namespace(server, &vs.meta.namespace);
                let common = intersect(&server_hosts, &vs.hosts);
                if common.is_empty() {
                    if names_host(vs) {
                        shadowed.push((vs.key(), VsShadowReason::NoServerHost { server_hosts }));
                    }
                    continue;
                }
                if !select::builds_http_routes(vs, ctx) {
                    if names_host(vs) {
                        shadowed.push((
                            vs.key(),
                            VsShadowReason::NoRoutesForClient {
                                filters: Vec::new(),
                            },
                        ));
                    }
                    continue;
                }
                for d in common {
                    let entry = vhosts.entry(d).or_default();
                    if !entry.iter().any(|v| v.key() == vs.key()) {
                        entry.push(vs);
                    }
                }
            }
        }
        shadowed.dedup();
        vhosts
    }
}

impl Routing {
    /// The pods a Gateway (`ns/name`) configures: every pod whose labels
    /// include its selector, in any namespace (`mergeGateways`; no selector
    /// = every gateway workload, which this cannot tell from a sidecar pod,
    /// so it lists none).
    pub fn gateway_pods(&self, gateway: &str) -> Vec<&Workload> {
        let Some(g) = self.gateways.iter().find(|g| g.key() == gateway) else {
            return Vec::new();
        };
        let Some(sel) = &g.selector else {
            return Vec::new();
        };
        self.registry
            .workloads
            .iter()
            .filter(|w| w.object.kind == "Pod" && labels_match(sel, &w.labels))
            .collect()
    }

    /// Gateway references (`spec.gateways` and `match[].gateways`, resolved)
    /// that name no Gateway of the snapshot: `(vs, gateway)` pairs. Such a VS
    /// binds nothing there (Kiali KIA1102).
    pub fn missing_gateways(&self) -> Vec<(String, String)> {
        let known: Vec<String> = self.gateways.iter().map(|g| g.key()).collect();
        let mut out = Vec::new();
        for vs in &self.virtual_services {
            let in_matches = vs
                .http
                .iter()
                .flat_map(|r| r.matches.iter().flat_map(|m| m.gateways.iter()));
            for g in vs.gateways.iter().chain(in_matches) {
                let pair = (vs.key(), g.clone());
                if g != MESH_GATEWAY && !known.contains(g) && !out.contains(&pair) {
                    out.push(pair);
                }
            }
        }
        out
    }
}

/// HTTP routes apply: HTTP-family protocols, or HTTPS/TLS terminated at the gateway.
fn is_http(s: &Server) -> bool {
    if s.protocol.is_http_or_sniffed() && s.protocol != Protocol::Unsupported {
        return true;
    }
    s.protocol.is_tls()
        && !matches!(
            s.tls_mode.as_deref(),
            Some("PASSTHROUGH") | Some("AUTO_PASSTHROUGH") | None
        )
}
