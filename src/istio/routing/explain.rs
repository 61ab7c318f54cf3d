//! The prose of routing: every sentence a report shows about which
//! VirtualService applies, why others do not, which routes are unreachable,
//! and what a destination's cluster will answer — produced from the typed
//! results of [`super::query`] and [`super::select`].
//!
//! Place in the flow: a pure helper (istio/routing) for report text.

use std::fmt;

use super::delegate::DelegateNote;
use super::destination::{DestStatus, DestinationView, UnknownHostWhy};
use super::gateway_query::{GatewayOutcome, GatewayView};
use super::query::{HostVisibility, Outbound, RouteAction, RouteInfo, RouteView};
use super::registry::EndpointSource;
use super::select::{MatchFilter, Reachability, VsShadowReason, WinReason};
use super::sidecar_scope::Import;
use super::virtual_service::{HttpMatch, StringMatch, VsTier};
use crate::istio::object::format_labels;

/// Where Istio releases differ in what this module decides.
pub const RELEASE_NOTES: &[&str] = &[
    "VirtualService exportTo: 1.1–1.7 read only the first entry ('.' private, anything else public); from 1.8 every entry counts, including namespace names and '~'.",
    "Delegate VirtualServices: off by default in 1.6–1.7 (roots and delegates ignored); on from 1.8; the delegate's namespace defaults to the root's from 1.11.",
    "ExternalName Services: a DNS cluster of their own until 1.20; an alias of the external name from 1.21 (ENABLE_EXTERNAL_NAME_ALIAS default) and always from 1.24.",
    "Kubernetes appProtocol decides the port protocol from 1.6; before, the port name only.",
    "Sidecar egress '~ns/host' exclusions exist from 1.31; before, '~' is a namespace that holds nothing.",
    "Wildcard VirtualService hosts: before 1.21 every VS whose wildcard covered a service claimed it and the first listed won, even over an exact host; from 1.21 an exact host wins, then the most specific wildcard.",
    "One host in several visible registries: from 1.24 a Kubernetes Service beats a ServiceEntry (PILOT_UNIFIED_SIDECAR_SCOPE); before, the pick outside the client's namespace was arbitrary (we take the oldest).",
    "Gateways merged same-host VirtualServices with catch-all routes moved last in every release (CombineVHostRoutes 1.1–1.14, SortVHostRoutes from 1.15).",
];

impl fmt::Display for VsTier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            VsTier::Private => "private to the client's namespace",
            VsTier::ExportedToNamespace => "exported to the client's namespace by name",
            VsTier::Public => "exported to every namespace",
        })
    }
}

impl fmt::Display for MatchFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MatchFilter::Port { wanted } => write!(f, "it matches port {wanted} only"),
            MatchFilter::SourceLabels { labels } => {
                write!(
                    f,
                    "its sourceLabels {} are not all on the client",
                    format_labels(labels)
                )
            }
            MatchFilter::SourceNamespace { namespace } => {
                write!(f, "its sourceNamespace is {namespace}")
            }
            MatchFilter::Gateways { gateways } => {
                write!(f, "it applies to gateways {} only", gateways.join(", "))
            }
            MatchFilter::DestinationSubnetsOnly => {
                f.write_str("it matches destination subnets only (not evaluated)")
            }
            MatchFilter::SniHosts { sni_hosts } => {
                write!(
                    f,
                    "its sniHosts {} do not cover the host",
                    sni_hosts.join(", ")
                )
            }
        }
    }
}

fn string_match(m: &StringMatch) -> String {
    match m {
        StringMatch::Exact(s) => format!("= {s}"),
        StringMatch::Prefix(s) => format!("prefix {s}"),
        StringMatch::Regex(s) => format!("regex {s}"),
        StringMatch::Any => "present".to_string(),
    }
}

/// `uri prefix /api, header x-user = jason, port 8080`.
pub fn match_summary(m: &HttpMatch) -> String {
    let mut parts = Vec::new();
    for (name, v) in [
        ("uri", &m.uri),
        ("method", &m.method),
        ("authority", &m.authority),
        ("scheme", &m.scheme),
    ] {
        if let Some(v) = v {
            parts.push(format!("{name} {}", string_match(v)));
        }
    }
    for (k, v) in &m.headers {
        parts.push(format!("header {k} {}", string_match(v)));
    }
    for (k, v) in &m.without_headers {
        parts.push(format!("without header {k} {}", string_match(v)));
    }
    for (k, v) in &m.query_params {
        parts.push(format!("query {k} {}", string_match(v)));
    }
    if let Some(p) = m.port {
        parts.push(format!("port {p}"));
    }
    if !m.source_labels.is_empty() {
        parts.push(format!("from {}", format_labels(&m.source_labels)));
    }
    if let Some(ns) = &m.source_namespace {
        parts.push(format!("from namespace {ns}"));
    }
    if !m.gateways.is_empty() {
        parts.push(format!("gateways {}", m.gateways.join(",")));
    }
    if parts.is_empty() {
        "everything".to_string()
    } else {
        parts.join(", ")
    }
}

/// Why the winner won.
pub fn win_text(vs: &str, why: &WinReason) -> String {
    let how = if why.exact {
        format!("names {} exactly", why.matched_host)
    } else {
        format!("covers it with the wildcard {}", why.matched_host)
    };
    format!("VirtualService {vs} applies: it {how} and is the first such VirtualService in istiod's order ({})", why.tier)
}

/// Why `vs` does not apply.
pub fn shadow_text(vs: &str, r: &VsShadowReason) -> String {
    match r {
        VsShadowReason::EarlierVsWon { winner, winner_tier, own_tier } => format!(
            "VirtualService {vs} is shadowed by {winner}: both claim the host and istiod keeps the first virtual host ({winner} is {winner_tier}; {vs} is {own_tier}; creation time orders each group)"
        ),
        VsShadowReason::LessSpecificHost { winner, winner_host } => format!(
            "VirtualService {vs} does not apply: {winner} names the more specific host {winner_host}"
        ),
        VsShadowReason::NoRoutesForClient { filters } if filters.is_empty() => format!(
            "VirtualService {vs} builds no route for this client and port, so istiod skips it"
        ),
        VsShadowReason::NoRoutesForClient { filters } => format!(
            "VirtualService {vs} builds no route for this client and port ({}), so istiod skips it",
            filters.iter().map(|f| f.to_string()).collect::<Vec<_>>().join("; ")
        ),
        VsShadowReason::NoRoutesOfKind { kind } => format!(
            "VirtualService {vs} has no {kind:?} routes for this port's protocol"
        ),
        VsShadowReason::NotExported { export_to } => format!(
            "VirtualService {vs} is exported to {export_to:?} only, not to the client's namespace"
        ),
        VsShadowReason::NotImportedBySidecar { sidecar } => format!(
            "VirtualService {vs} is not imported by the client's Sidecar {sidecar}"
        ),
        VsShadowReason::GatewaysOnly { gateways } => format!(
            "VirtualService {vs} is bound to gateways {} only; without `mesh` in its gateways it does not apply to sidecars",
            gateways.join(", ")
        ),
        VsShadowReason::OtherGateways { gateways } => format!(
            "VirtualService {vs} is bound to {}, not to this gateway",
            gateways.join(", ")
        ),
        VsShadowReason::NoServerHost { server_hosts } => format!(
            "VirtualService {vs} is bound to this gateway but none of its hosts is among the server's hosts for its namespace ({})",
            server_hosts.join(", ")
        ),
        VsShadowReason::OtherVirtualHost { domain } => format!(
            "VirtualService {vs} serves the virtual host {domain}, not the one this request selects"
        ),
    }
}

/// Why a route is or is not reachable.
pub fn reachability_text(r: &RouteInfo) -> String {
    let what = format!("route {} of {}", r.index, r.vs);
    match &r.reachability {
        Reachability::Reachable => format!("{what} is reachable"),
        Reachability::AfterCatchAll { vs, route } => {
            format!("{what} is unreachable: route {route} of {vs} before it matches every request")
        }
        Reachability::NotForClient(f) if f.is_empty() => {
            format!("{what} is not built for this client")
        }
        Reachability::NotForClient(f) => format!(
            "{what} is not built for this client: {}",
            f.iter()
                .map(|x| x.to_string())
                .collect::<Vec<_>>()
                .join("; ")
        ),
        Reachability::Superseded { vs, route } => {
            format!("{what} is never used: route {route} of {vs} takes every connection first")
        }
    }
}

fn outbound_text(o: &Outbound) -> &'static str {
    match o {
        Outbound::Passthrough => "requests leave through PassthroughCluster to the original address (ALLOW_ANY)",
        Outbound::BlackHole => "HTTP requests get 502 from the block_all virtual host, TCP goes to BlackHoleCluster (REGISTRY_ONLY)",
    }
}

/// Whether the client's sidecar routes the host.
pub fn visibility_text(host: &str, v: &HostVisibility) -> String {
    match v {
        HostVisibility::Visible => format!("{host} is in the client's service registry"),
        HostVisibility::NotInRegistry { outbound } => format!(
            "no Service or ServiceEntry has the host {host}; {}",
            outbound_text(outbound)
        ),
        HostVisibility::NotExported { services, outbound } => format!(
            "{host} exists ({}) but is not exported to the client's namespace; {}",
            services
                .iter()
                .map(|(s, e)| format!("{s} exportTo {e:?}"))
                .collect::<Vec<_>>()
                .join(", "),
            outbound_text(outbound)
        ),
        HostVisibility::NotImportedBySidecar {
            sidecar,
            import,
            outbound,
        } => format!(
            "the client's {sidecar} does not import {host} ({}); {}",
            import_text(import),
            outbound_text(outbound)
        ),
        HostVisibility::PortNotServed {
            service_ports,
            outbound,
        } => format!(
            "{host} has no such port (it has {service_ports:?}); {}",
            outbound_text(outbound)
        ),
    }
}

fn import_text(i: &Import) -> String {
    match i {
        Import::Imported { entry, .. } => format!("imported by {entry}"),
        Import::Excluded { entry } => format!("excluded by {entry}"),
        Import::NotImported {
            listener_port: Some(p),
        } => {
            format!("no host entry of its egress listener for port {p} matches")
        }
        Import::NotImported {
            listener_port: None,
        } => "no host entry of its egress listener matches".to_string(),
        Import::NoListener => "no egress listener serves the port".to_string(),
    }
}

/// What the destination's cluster answers, in words.
pub fn destination_text(d: &DestinationView) -> String {
    let c = &d.cluster_name;
    match &d.status {
        DestStatus::Ok { ready } => format!("{c} has {}", crate::words::counts(*ready, "ready endpoint")),
        DestStatus::Dropped => format!(
            "{} has weight 0 beside other destinations: istiod leaves it out",
            d.destination.host
        ),
        DestStatus::UnknownHost(why) => format!(
            "{c} does not exist: {}; every request routed there gets 503 NC cluster_not_found",
            unknown_host_text(&d.destination.host, why)
        ),
        DestStatus::PortNotInService { port, implicit, service_ports } => format!(
            "{c} does not exist: {} has no port {port}{} (ports {service_ports:?}); 503 NC cluster_not_found",
            d.destination.host,
            if *implicit { " (no port in the destination, so the listener port is used)" } else { "" }
        ),
        DestStatus::UnknownSubset { subset, rules, available, defined_in_unapplied } => {
            let applied = if rules.is_empty() {
                "no DestinationRule applies to this client".to_string()
            } else {
                format!("the DestinationRule applying to this client ({}) defines {available:?}", rules.join(", "))
            };
            let elsewhere = if defined_in_unapplied.is_empty() {
                String::new()
            } else {
                format!(
                    "; {} {} it but {} not apply to this client",
                    defined_in_unapplied.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>().join(", "),
                    crate::words::noun(defined_in_unapplied.len(), "defines", "define"),
                    crate::words::noun(defined_in_unapplied.len(), "does", "do")
                )
            };
            format!("{c} does not exist: subset {subset} is not defined ({applied}{elsewhere}); 503 NC cluster_not_found")
        }
        DestStatus::SubsetSelectsNoPods { subset, labels, rule, not_ready, selected_by_service } => format!(
            "{c} has no ready endpoint: subset {subset} of {rule} selects {} among the service's {}, {} of them not ready; 503 UH no_healthy_upstream",
            format_labels(labels),
            crate::words::counts(*selected_by_service, "workload"),
            not_ready.len()
        ),
        DestStatus::NoEndpoints { selector, not_ready } => format!(
            "{c} has no ready endpoint (selector {}; {} not ready); 503 UH no_healthy_upstream",
            selector.as_ref().map(format_labels).unwrap_or_else(|| "none".into()),
            crate::words::counts(not_ready.len(), "matching workload")
        ),
        DestStatus::EndpointsNotChecked(src) => format!(
            "{c}: endpoints not checked ({})",
            match src {
                EndpointSource::Passthrough => "original destination",
                EndpointSource::Dns => "DNS",
                EndpointSource::UnknownManual => "the Service has no selector",
                _ => "not applicable",
            }
        ),
    }
}

fn unknown_host_text(host: &str, why: &UnknownHostWhy) -> String {
    match why {
        UnknownHostWhy::NotInRegistry => format!("no Service or ServiceEntry has the host {host}"),
        UnknownHostWhy::NotExported { services } => format!(
            "{host} is not exported to the client's namespace ({})",
            services.iter().map(|(s, e)| format!("{s} exportTo {e:?}")).collect::<Vec<_>>().join(", ")
        ),
        UnknownHostWhy::CoveredOnlyByWildcard { entry, wildcard } => format!(
            "{host} is covered only by the wildcard {wildcard} of {entry}, and istiod names clusters after the exact host"
        ),
        UnknownHostWhy::AliasTargetUnknown { service, target } => format!(
            "{service} is an ExternalName alias of {target}, which no Service or ServiceEntry has"
        ),
    }
}

/// One line per route and destination, for a report's detail section.
pub fn route_view_lines(v: &RouteView) -> Vec<String> {
    let mut out = vec![visibility_text(&v.host, &v.visibility)];
    if let Some((vs, why)) = &v.virtual_service {
        out.push(win_text(vs, why));
    }
    out.extend(v.shadowed.iter().map(|(k, r)| shadow_text(k, r)));
    for r in &v.routes {
        out.push(reachability_text(r));
        if let RouteAction::DirectResponse(s) = r.action {
            out.push(format!("route {} answers {s} directly", r.index));
        }
        if let Some(a) = &r.fault_abort {
            out.push(format!(
                "route {} injects an abort ({}) for {} of requests",
                r.index,
                a.http_status
                    .map(|s| s.to_string())
                    .or_else(|| a.grpc_status.clone())
                    .unwrap_or_default(),
                a.percent
                    .map(|p| format!("{p}%"))
                    .unwrap_or_else(|| "an unspecified share".into())
            ));
        }
        out.extend(r.destinations.iter().map(destination_text));
    }
    if let Some(d) = &v.default_route {
        out.push(format!(
            "no VirtualService applies: default route; {}",
            destination_text(d)
        ));
    }
    out
}

/// The gateway's answer in words.
pub fn gateway_text(v: &GatewayView) -> String {
    match &v.outcome {
        GatewayOutcome::NoServer => format!("no Gateway selecting this pod has a server on port {}", v.port),
        GatewayOutcome::NotHttp { protocols } => format!("the servers on port {} are {protocols:?}: TLS/TCP routes apply", v.port),
        GatewayOutcome::NoVirtualHost => format!(
            "no VirtualService bound to the gateway serves {} on port {} (virtual hosts: {}): 404 NR route_not_found",
            v.host,
            v.port,
            if v.domains.is_empty() { "none".to_string() } else { v.domains.join(", ") }
        ),
        GatewayOutcome::Routed => format!(
            "{} on port {} is served by virtual host {} from {}",
            v.host,
            v.port,
            v.virtual_host.as_deref().unwrap_or(""),
            v.bound.join(", ")
        ),
    }
}

/// What a delegate merge did.
pub fn delegate_text(n: &DelegateNote) -> String {
    match n {
        DelegateNote::NotFound { root, route, delegate } => format!(
            "route {route} of {root} delegates to {delegate}, which is not a delegate VirtualService (missing, or it has hosts): the route is dropped"
        ),
        DelegateNote::NotExported { root, route, delegate, export_to } => format!(
            "route {route} of {root} delegates to {delegate}, exported to {export_to:?} only: the route is dropped"
        ),
        DelegateNote::NamespaceRequired { root, route, name } => format!(
            "route {route} of {root} delegates to {name} without a namespace; this Istio release needs one: the route is dropped"
        ),
        DelegateNote::MatchConflict { root, route, delegate, delegate_route } => format!(
            "route {delegate_route} of delegate {delegate} conflicts with the matches of route {route} of {root}: it is dropped"
        ),
        DelegateNote::DelegationDisabled { root } => format!(
            "{root} delegates routes, but delegation is off in this Istio release: it is ignored"
        ),
    }
}
