//! Which VirtualService wins for a host, and which of its routes a request
//! can reach — for one client (namespace, labels), port and gateway set.
//!
//! Place in the flow: a pure helper (istio/routing) for [`super::query`],
//! which hands it the VirtualServices visible to the client in istiod's
//! order ([`super::virtual_service::VsTier`], then creation time).
//!
//! Sources (istio/istio, same logic 1.8 → master unless noted):
//! - `pilot/pkg/networking/core/route/route.go` `BuildHTTPRoutesForVirtualService`
//!   (routes in order, one Envoy route per match; emission stops after a
//!   catch-all; no route → the VS is skipped for this port) and
//!   `TranslateRoute` / `sourceMatchHTTP` (a match with `port` other than the
//!   listener's, `sourceLabels` not on the client, `sourceNamespace` not the
//!   client's, or `gateways` not naming this proxy's gateway is dropped for
//!   this client); `IsCatchAllRoute` (prefix `/` or regex `.*` or no URI,
//!   and no headers, query or metadata matchers — method, authority and
//!   scheme are header matchers).
//! - `route.go` `BuildSidecarVirtualHostWrapper`, `separateVSHostsAndServices`
//!   and `pilot/pkg/model/sidecar.go` `computeWildcardHostVirtualServiceIndex`:
//!   an exact VS host claims the service; a wildcard host claims it only if
//!   no VS names it exactly and it is the most specific wildcard (first VS in
//!   order for equal wildcards) — from 1.21; before, every covering wildcard
//!   claimed it (1.20 `separateVSHostsAndServices`); `pilot/pkg/networking/core/httproute.go`
//!   `BuildSidecarOutboundVirtualHosts`: the first virtual host for a
//!   `host:port` wins, later ones are dropped as "duplicate domain". So for
//!   sidecars the winner is the first claiming VS, in the order private (own
//!   namespace, exportTo `.`), exported to the namespace by name, public;
//!   creation time (then name, namespace) within each — **not** creation time
//!   alone.
//! - `pilot/pkg/networking/core/tls.go` `buildSidecarOutboundTCPFilterChainOpts`,
//!   `matchTCP`, `getConfigsForHost`: for TCP ports every VS matching the host
//!   is tried in order and the first `tcp` route whose match fits (without
//!   destination subnets) wins.
//! - `pilot/pkg/networking/core/gateway.go` `buildGatewayHTTPRouteConfig`:
//!   on gateways VirtualServices for the same host are **merged**: routes
//!   concatenated in VS order, then catch-all routes moved to the end
//!   (`route.go` `SortVHostRoutes` from 1.15; `CombineVHostRoutes` in 1.1–1.14
//!   did the same).

use std::collections::BTreeMap;

use super::super::host;
use super::super::object::labels_match;
use super::virtual_service::{HttpMatch, L4Match, StringMatch, VirtualService, VsTier};

/// The proxy and port routes are built for.
#[derive(Debug, Clone, Copy)]
pub struct RouteContext<'a> {
    pub namespace: &'a str,
    pub labels: &'a BTreeMap<String, String>,
    /// The listener port (the service port called, or the gateway server port).
    pub port: u32,
    /// `["mesh"]` for sidecars, `["ns/gateway"]` for a gateway server.
    pub gateways: &'a [String],
}

/// Why a match is not built for this client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MatchFilter {
    /// `port` is another listener port.
    Port { wanted: u32 },
    /// `sourceLabels` are not all on the client.
    SourceLabels { labels: BTreeMap<String, String> },
    /// `sourceNamespace` is another namespace.
    SourceNamespace { namespace: String },
    /// `gateways` does not name this proxy's gateway (`mesh` for sidecars).
    Gateways { gateways: Vec<String> },
    /// TCP/TLS: only `destinationSubnets` matches (not evaluated here).
    DestinationSubnetsOnly,
    /// TLS: `sniHosts` do not cover the host.
    SniHosts { sni_hosts: Vec<String> },
}

/// Can a request reach this route?
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reachability {
    Reachable,
    /// Every one of its matches comes after a catch-all route (`vs`, `route`).
    AfterCatchAll {
        vs: String,
        route: usize,
    },
    /// None of its matches is built for this client / port / gateway.
    NotForClient(Vec<MatchFilter>),
    /// TCP/TLS: an earlier route (`vs`, `route`) takes the connection.
    Superseded {
        vs: String,
        route: usize,
    },
}

/// One route's outcome, in the order Envoy evaluates them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteOutcome {
    /// `ns/name` of the VirtualService.
    pub vs: String,
    /// Index into that VS's `http` (or `tcp` / `tls`) list (after delegate merge).
    pub route: usize,
    pub reachability: Reachability,
    /// The matches built for this client (`None` = the route has no `match`).
    pub built_matches: Vec<Option<usize>>,
    /// Its first built match is a catch-all.
    pub catch_all: bool,
}

/// Why a VirtualService won.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WinReason {
    pub tier: VsTier,
    /// The VS host that matched (the host itself, or a wildcard).
    pub matched_host: String,
    pub exact: bool,
}

/// Why a VirtualService naming the host does not apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VsShadowReason {
    /// Another VS listed earlier claims the host (the first virtual host wins).
    EarlierVsWon {
        winner: String,
        winner_tier: VsTier,
        own_tier: VsTier,
    },
    /// A more specific host (exact, or a longer wildcard) of `winner` claims it.
    LessSpecificHost { winner: String, winner_host: String },
    /// It claims the host but builds no route for this client/port.
    NoRoutesForClient { filters: Vec<MatchFilter> },
    /// It has no route of the port's kind (e.g. only `tcp` on an HTTP port).
    NoRoutesOfKind { kind: RouteKind },
    /// Not exported to the client's namespace.
    NotExported { export_to: Vec<String> },
    /// The client's Sidecar does not import it.
    NotImportedBySidecar { sidecar: String },
    /// Bound to gateways only (`mesh` not listed).
    GatewaysOnly { gateways: Vec<String> },
    /// Not bound to this gateway.
    OtherGateways { gateways: Vec<String> },
    /// Bound to this gateway, but no server host on the port intersects its hosts.
    NoServerHost { server_hosts: Vec<String> },
    /// Bound here, but its virtual host is not the one the authority selects.
    OtherVirtualHost { domain: String },
}

/// The kind of routes a port uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteKind {
    Http,
    Tcp,
    Tls,
}

/// The outcome for one host on a sidecar.
#[derive(Debug, Clone, PartialEq)]
pub struct Selection<'v> {
    pub winner: Option<(&'v VirtualService, WinReason)>,
    pub shadowed: Vec<(&'v VirtualService, VsShadowReason)>,
    pub outcomes: Vec<RouteOutcome>,
}

/// Is the match a catch-all once built (`IsCatchAllRoute`)?
pub fn is_catch_all(m: &HttpMatch) -> bool {
    let uri_all = match &m.uri {
        None | Some(StringMatch::Any) => true,
        Some(StringMatch::Prefix(p)) => p == "/",
        Some(StringMatch::Regex(r)) => r == ".*",
        Some(StringMatch::Exact(_)) => false,
    };
    uri_all
        && m.headers.is_empty()
        && m.without_headers.is_empty()
        && m.query_params.is_empty()
        && m.method.is_none()
        && m.authority.is_none()
        && m.scheme.is_none()
}

/// `TranslateRoute`'s static filters; `None` = built for this client.
pub fn http_filter(m: &HttpMatch, ctx: &RouteContext<'_>) -> Option<MatchFilter> {
    if let Some(p) = m.port {
        if p != ctx.port {
            return Some(MatchFilter::Port { wanted: p });
        }
    }
    if !m.gateways.is_empty() {
        if m.gateways.iter().any(|g| ctx.gateways.contains(g)) {
            return None;
        }
        return Some(MatchFilter::Gateways {
            gateways: m.gateways.clone(),
        });
    }
    if !labels_match(&m.source_labels, ctx.labels) {
        return Some(MatchFilter::SourceLabels {
            labels: m.source_labels.clone(),
        });
    }
    match &m.source_namespace {
        Some(ns) if ns != ctx.namespace => Some(MatchFilter::SourceNamespace {
            namespace: ns.clone(),
        }),
        _ => None,
    }
}

/// `matchTCP` / `matchTLS`; `None` = the match applies.
pub fn l4_filter(m: &L4Match, ctx: &RouteContext<'_>) -> Option<MatchFilter> {
    if !m.gateways.is_empty() && !m.gateways.iter().any(|g| ctx.gateways.contains(g)) {
        return Some(MatchFilter::Gateways {
            gateways: m.gateways.clone(),
        });
    }
    if !labels_match(&m.source_labels, ctx.labels) {
        return Some(MatchFilter::SourceLabels {
            labels: m.source_labels.clone(),
        });
    }
    if let Some(p) = m.port {
        if p != ctx.port {
            return Some(MatchFilter::Port { wanted: p });
        }
    }
    match &m.source_namespace {
        Some(ns) if ns != ctx.namespace => Some(MatchFilter::SourceNamespace {
            namespace: ns.clone(),
        }),
        _ => None,
    }
}

/// One VS's HTTP routes as built for `ctx` (`BuildHTTPRoutesForVirtualService`).
#[derive(Debug, Clone, Default)]
struct Built {
    /// (route, match, catch_all) in emission order.
    emitted: Vec<(usize, Option<usize>, bool)>,
    /// Per route: the filters that dropped its matches.
    filtered: BTreeMap<usize, Vec<MatchFilter>>,
    /// Emission stopped after this route's catch-all.
    stopped_at: Option<usize>,
}

fn build_http(vs: &VirtualService, ctx: &RouteContext<'_>) -> Built {
    let mut b = Built::default();
    for (ri, route) in vs.http.iter().enumerate() {
        let mut catch_all = false;
        if route.matches.is_empty() {
            b.emitted.push((ri, None, true));
            catch_all = true;
        } else {
            for (mi, m) in route.matches.iter().enumerate() {
                if let Some(f) = http_filter(m, ctx) {
                    b.filtered.entry(ri).or_default().push(f);
                    continue;
                }
                let ca = is_catch_all(m);
                b.emitted.push((ri, Some(mi), ca));
                if ca {
                    catch_all = true;
                    break;
                }
            }
        }
        if catch_all {
            b.stopped_at = Some(ri);
            break;
        }
    }
    b
}

/// Does the VS build at least one HTTP route for `ctx`?
pub fn builds_http_routes(vs: &VirtualService, ctx: &RouteContext<'_>) -> bool {
    !build_http(vs, ctx).emitted.is_empty()
}

/// The HTTP route outcomes of one virtual host made of `list` (one VS for a
/// sidecar; every VS bound to the host for a gateway, with
/// `catch_alls_last`), in Envoy's order; routes never built follow.
pub fn http_outcomes(
    list: &[&VirtualService],
    ctx: &RouteContext<'_>,
    catch_alls_last: bool,
) -> Vec<RouteOutcome> {
    let built: Vec<Built> = list.iter().map(|vs| build_http(vs, ctx)).collect();
    let mut order: Vec<(usize, usize, Option<usize>, bool)> = Vec::new();
    for (vi, b) in built.iter().enumerate() {
        order.extend(b.emitted.iter().map(|(r, m, c)| (vi, *r, *m, *c)));
    }
    if catch_alls_last {
        let (mut plain, alls): (Vec<_>, Vec<_>) = order.into_iter().partition(|e| !e.3);
        plain.extend(alls);
        order = plain;
    }
    let first_all = order.iter().position(|e| e.3);
    let mut out: Vec<RouteOutcome> = Vec::new();
    for (pos, (vi, ri, mi, ca)) in order.iter().enumerate() {
        let key = list[*vi].key();
        let reach = match first_all {
            Some(c) if pos > c => {
                let (cv, cr, _, _) = order[c];
                Reachability::AfterCatchAll {
                    vs: list[cv].key(),
                    route: cr,
                }
            }
            _ => Reachability::Reachable,
        };
        match out.iter_mut().find(|o| o.vs == key && o.route == *ri) {
            Some(o) => {
                o.built_matches.push(*mi);
                if reach == Reachability::Reachable {
                    o.reachability = reach;
                }
            }
            None => out.push(RouteOutcome {
                vs: key,
                route: *ri,
                reachability: reach,
                built_matches: vec![*mi],
                catch_all: *ca,
            }),
        }
    }
    for (vi, vs) in list.iter().enumerate() {
        let b = &built[vi];
        for ri in 0..vs.http.len() {
            if out.iter().any(|o| o.vs == vs.key() && o.route == ri) {
                continue;
            }
            let reachability = match b.stopped_at {
                Some(s) if ri > s => Reachability::AfterCatchAll {
                    vs: vs.key(),
                    route: s,
                },
                _ => Reachability::NotForClient(b.filtered.get(&ri).cloned().unwrap_or_default()),
            };
            out.push(RouteOutcome {
                vs: vs.key(),
                route: ri,
                reachability,
                built_matches: Vec::new(),
                catch_all: false,
            });
        }
    }
    out
}

/// The sidecar's choice for an HTTP (or sniffed) port: the first claiming VS
/// that builds routes for the client.
///
/// `most_specific_wildcard` (Istio ≥ 1.21, `computeWildcardHostVirtualServiceIndex`):
/// a wildcard host claims the service only if no VS names it exactly and it
/// is the most specific wildcard. Before 1.21 (route.go
/// `separateVSHostsAndServices` of 1.20) every matching wildcard claimed it,
/// so the first VS in order won, exact or not.
pub fn select_http<'v>(
    candidates: &[(&'v VirtualService, VsTier)],
    svc_host: &str,
    ctx: &RouteContext<'_>,
    most_specific_wildcard: bool,
) -> Selection<'v> {
    if !most_specific_wildcard {
        return select_http_first_claim(candidates, svc_host, ctx);
    }
    let exact_anywhere = candidates
        .iter()
        .any(|(vs, _)| vs.hosts.iter().any(|h| h == svc_host));
    // computeWildcardHostVirtualServiceIndex: the most specific wildcard, first VS holding it.
    let wildcard = if exact_anywhere {
        None
    } else {
        let all: Vec<&str> = candidates
            .iter()
            .flat_map(|(vs, _)| vs.hosts.iter().map(String::as_str))
            .filter(|h| host::is_wildcard(h))
            .collect();
        host::most_specific_match(svc_host, all).map(|best| {
            let owner = candidates
                .iter()
                .find(|(vs, _)| vs.hosts.iter().any(|h| h == best))
                .map(|(vs, _)| vs.key())
                .unwrap_or_default();
            (best.to_string(), owner)
        })
    };
    let mut sel = Selection {
        winner: None,
        shadowed: Vec::new(),
        outcomes: Vec::new(),
    };
    for (vs, tier) in candidates {
        let exact = vs.hosts.iter().any(|h| h == svc_host);
        let claims = exact
            || wildcard
                .as_ref()
                .is_some_and(|(_, owner)| *owner == vs.key());
        if !claims {
            if let Some((h, owner)) = &wildcard {
                sel.shadowed.push((
                    vs,
                    VsShadowReason::LessSpecificHost {
                        winner: owner.clone(),
                        winner_host: h.clone(),
                    },
                ));
            } else {
                sel.shadowed.push((vs, less_specific(candidates, svc_host)));
            }
            continue;
        }
        if let Some((w, wr)) = &sel.winner {
            sel.shadowed.push((
                vs,
                VsShadowReason::EarlierVsWon {
                    winner: w.key(),
                    winner_tier: wr.tier,
                    own_tier: *tier,
                },
            ));
            continue;
        }
        if vs.http.is_empty() {
            sel.shadowed.push((
                vs,
                VsShadowReason::NoRoutesOfKind {
                    kind: RouteKind::Http,
                },
            ));
            continue;
        }
        let built = build_http(vs, ctx);
        if built.emitted.is_empty() {
            let filters = built.filtered.into_values().flatten().collect();
            sel.shadowed
                .push((vs, VsShadowReason::NoRoutesForClient { filters }));
            continue;
        }
        let matched_host = if exact {
            svc_host.to_string()
        } else {
            wildcard.as_ref().map(|w| w.0.clone()).unwrap_or_default()
        };
        sel.winner = Some((
            vs,
            WinReason {
                tier: *tier,
                matched_host,
                exact,
            },
        ));
        sel.outcomes = http_outcomes(&[vs], ctx, false);
    }
    sel
}

/// Before 1.21: every VS whose hosts cover the service claims it; the first
/// one (in order) that builds routes wins.
fn select_http_first_claim<'v>(
    candidates: &[(&'v VirtualService, VsTier)],
    svc_host: &str,
    ctx: &RouteContext<'_>,
) -> Selection<'v> {
    let mut sel = Selection {
        winner: None,
        shadowed: Vec::new(),
        outcomes: Vec::new(),
    };
    for (vs, tier) in candidates {
        if let Some((w, wr)) = &sel.winner {
            sel.shadowed.push((
                vs,
                VsShadowReason::EarlierVsWon {
                    winner: w.key(),
                    winner_tier: wr.tier,
                    own_tier: *tier,
                },
            ));
            continue;
        }
        let built = build_http(vs, ctx);
        if built.emitted.is_empty() {
            let reason = if vs.http.is_empty() {
                VsShadowReason::NoRoutesOfKind {
                    kind: RouteKind::Http,
                }
            } else {
                VsShadowReason::NoRoutesForClient {
                    filters: built.filtered.into_values().flatten().collect(),
                }
            };
            sel.shadowed.push((vs, reason));
            continue;
        }
        let exact = vs.hosts.iter().any(|h| h == svc_host);
        let matched_host = if exact {
            svc_host.to_string()
        } else {
            host::most_specific_match(svc_host, vs.hosts.iter().map(String::as_str))
                .unwrap_or_default()
                .to_string()
        };
        sel.winner = Some((
            vs,
            WinReason {
                tier: *tier,
                matched_host,
                exact,
            },
        ));
        sel.outcomes = http_outcomes(&[vs], ctx, false);
    }
    sel
}

/// A VS matching the host only through a wildcard, when an exact VS exists.
fn less_specific(candidates: &[(&VirtualService, VsTier)], svc_host: &str) -> VsShadowReason {
    let winner = candidates
        .iter()
        .find(|(vs, _)| vs.hosts.iter().any(|h| h == svc_host))
        .map(|(vs, _)| vs.key())
        .unwrap_or_default();
    VsShadowReason::LessSpecificHost {
        winner,
        winner_host: svc_host.to_string(),
    }
}

/// The sidecar's choice for a TCP or TLS port: the first route (in VS order)
/// whose match fits the client (`buildSidecarOutboundTCPFilterChainOpts`).
pub fn select_l4<'v>(
    candidates: &[(&'v VirtualService, VsTier)],
    svc_host: &str,
    ctx: &RouteContext<'_>,
    kind: RouteKind,
) -> Selection<'v> {
    let mut sel = Selection {
        winner: None,
        shadowed: Vec::new(),
        outcomes: Vec::new(),
    };
    for (vs, tier) in candidates {
        let routes = if kind == RouteKind::Tls {
            &vs.tls
        } else {
            &vs.tcp
        };
        if let Some((w, wr)) = &sel.winner {
            sel.shadowed.push((
                vs,
                VsShadowReason::EarlierVsWon {
                    winner: w.key(),
                    winner_tier: wr.tier,
                    own_tier: *tier,
                },
            ));
            continue;
        }
        if routes.is_empty() {
            sel.shadowed
                .push((vs, VsShadowReason::NoRoutesOfKind { kind }));
            continue;
        }
        let mut outcomes = Vec::new();
        let mut won: Option<usize> = None;
        for r in routes {
            if let Some(w) = won {
                outcomes.push(l4_outcome(
                    vs,
                    r.index,
                    Reachability::Superseded {
                        vs: vs.key(),
                        route: w,
                    },
                ));
                continue;
            }
            let mut filters = Vec::new();
            let mut fits = false;
            if !r.route.is_empty() {
                if r.matches.is_empty() {
                    fits = true;
                }
                for m in &r.matches {
                    match l4_filter(m, ctx).or_else(|| l4_extra(m, svc_host, kind)) {
                        Some(f) => filters.push(f),
                        None => {
                            fits = true;
                            break;
                        }
                    }
                }
            }
            if fits {
                won = Some(r.index);
                outcomes.push(l4_outcome(vs, r.index, Reachability::Reachable));
            } else {
                outcomes.push(l4_outcome(vs, r.index, Reachability::NotForClient(filters)));
            }
        }
        match won {
            Some(_) => {
                let matched_host = vs
                    .hosts
                    .iter()
                    .find(|h| host::matches(h, svc_host) || host::matches(svc_host, h))
                    .cloned()
                    .unwrap_or_default();
                sel.winner = Some((
                    vs,
                    WinReason {
                        tier: *tier,
                        exact: matched_host == svc_host,
                        matched_host,
                    },
                ));
                sel.outcomes = outcomes;
            }
            None => {
                let filters = outcomes
                    .into_iter()
                    .flat_map(|o| match o.reachability {
                        Reachability::NotForClient(f) => f,
                        _ => Vec::new(),
                    })
                    .collect();
                sel.shadowed
                    .push((vs, VsShadowReason::NoRoutesForClient { filters }));
            }
        }
    }
    sel
}

/// What TCP/TLS matches add: destination subnets are not evaluated (treated
/// as not matching the service address); TLS needs an SNI host covering the host.
fn l4_extra(m: &L4Match, svc_host: &str, kind: RouteKind) -> Option<MatchFilter> {
    if !m.destination_subnets.is_empty() {
        return Some(MatchFilter::DestinationSubnetsOnly);
    }
    if kind == RouteKind::Tls
        && !m.sni_hosts.is_empty()
        && !m.sni_hosts.iter().any(|s| host::matches(s, svc_host))
    {
        return Some(MatchFilter::SniHosts {
            sni_hosts: m.sni_hosts.clone(),
        });
    }
    None
}

fn l4_outcome(vs: &VirtualService, route: usize, reachability: Reachability) -> RouteOutcome {
    RouteOutcome {
        vs: vs.key(),
        route,
        reachability,
        built_matches: Vec::new(),
        catch_all: false,
    }
}
