//! Analyze stage: what the routing rules share (not a cause). Starting from
//! the target, every caller's view of its ports ([`Mesh::target_routes`]):
//! the destinations a request can take that fail by config alone, grouped
//! across callers ([`route_hits`]), and the data plane's confirmation of one
//! ([`confirm`]): the callers' read sidecars logging the expected response
//! flag on that cluster, `/config_dump` lacking the cluster, `/clusters`
//! showing it without a healthy host.
//!
//! Sources: `istio::routing` (istiod's route building, cited there); Envoy
//! `source/common/router/router.cc` (`cluster_not_found` answers
//! `503 NC`; no healthy host `503 UH no_healthy_upstream`),
//! `source/extensions/filters/http/fault/fault_filter.cc` (an abort is
//! `FI fault_filter_abort`).

use std::collections::BTreeMap;

use super::common::{log_line_targets, sample_line};
use crate::analyze::confidence::Weight;
use crate::analyze::finding::{Evidence, SourceRef};
use crate::envoy::access_log::AccessLogEntry;
use crate::istio::routing::explain;
use crate::istio::routing::{DestStatus, DestinationView, Expected, GatewayOutcome, RouteInfo};
use crate::model::{Caller, GatewayCaller, Mesh, Proxy, Service};

/// Through which proxy the requests fail.
#[derive(Debug, Clone, PartialEq)]
pub enum Via {
    /// The callers' own sidecars, calling the target's `port`.
    Sidecar { port: u16 },
    /// A gateway, for requests to `host` on its server `port`.
    Gateway {
        caller: GatewayCaller,
        host: String,
        port: u32,
    },
}

/// The route a failing destination belongs to.
#[derive(Debug, Clone, PartialEq)]
pub struct RouteRef {
    /// `ns/name` of its VirtualService.
    pub vs: String,
    pub index: usize,
    pub name: Option<String>,
    pub catch_all: bool,
}

/// One destination that fails by config for some callers of the target.
#[derive(Debug, Clone, PartialEq)]
pub struct RouteHit {
    /// The target Service whose callers hit it.
    pub fqdn: String,
    pub via: Via,
    /// Sidecar callers sharing it (empty for a gateway).
    pub callers: Vec<Caller>,
    /// `None`: the default route (no VirtualService applies).
    pub route: Option<RouteRef>,
    pub destination: DestinationView,
    pub expected: Expected,
}

impl RouteHit {
    /// `namespace foo` or `gateway foo/gw (pod …)`.
    pub fn callers_text(&self) -> String {
        match &self.via {
            Via::Sidecar { .. } => self
                .callers
                .iter()
                .map(Caller::name)
                .collect::<Vec<_>>()
                .join("; "),
            Via::Gateway { caller, .. } => caller.name(),
        }
    }

    /// `httpbin.foo.svc.cluster.local:8000` or `shop.example.com:80 at gateway foo/gw`.
    pub fn place(&self) -> String {
        match &self.via {
            Via::Sidecar { port } => format!("{}:{port}", self.fqdn),
            Via::Gateway { caller, host, port } => {
                format!("{host}:{port} at gateway {}", caller.gateway)
            }
        }
    }

    /// `from namespace foo` / `through gateway foo/gw`.
    pub fn from_text(&self) -> String {
        match &self.via {
            Via::Sidecar { .. } => format!("from {}", self.callers_text()),
            Via::Gateway { caller, .. } => format!("through gateway {}", caller.gateway),
        }
    }

    /// `route 0 of VirtualService foo/httpbin (100% of its requests)`.
    pub fn route_text(&self) -> String {
        let share = if self.destination.share >= 100.0 {
            "all of its requests".to_string()
        } else {
            format!("{:.0}% of its requests", self.destination.share)
        };
        match &self.route {
            Some(r) => format!(
                "route {}{} of VirtualService {} ({share})",
                r.index,
                r.name
                    .as_ref()
                    .map(|n| format!(" ({n})"))
                    .unwrap_or_default(),
                r.vs
            ),
            None => "the default route (no VirtualService applies)".to_string(),
        }
    }

    /// `503 NC cluster_not_found on outbound|8000|v2|httpbin…`.
    pub fn signature(&self) -> String {
        format!(
            "{} {} {} on {}",
            self.expected.code,
            self.expected.flag,
            self.expected.details,
            self.destination.cluster_name
        )
    }

    /// The explanation lines every routing finding starts with.
    pub fn explanation(&self) -> Vec<String> {
        let mut out = Vec::new();
        match &self.via {
            Via::Sidecar { .. } => {
                for c in &self.callers {
                    out.push(format!("Caller {}: {}.", c.name(), c.how_found()));
                }
            }
            Via::Gateway { caller, .. } => out.push(format!(
                "Caller {}: the gateway a VirtualService routing to {} binds.",
                caller.name(),
                self.fqdn
            )),
        }
        out.push(format!(
            "{} sends requests to {}.",
            capitalize(&self.route_text()),
            self.destination.cluster_name
        ));
        out.push(format!("{}.", explain::destination_text(&self.destination)));
        out.push(format!(
            "Expected in the data plane: {} at {}.",
            self.signature(),
            match &self.via {
                Via::Sidecar { .. } => "the callers' sidecars".to_string(),
                Via::Gateway { caller, .. } => format!("gateway {}", caller.gateway),
            }
        ));
        out
    }

    /// The read sidecars that stand for these callers.
    pub fn proxies<'m>(&self, mesh: &'m Mesh) -> Vec<&'m Proxy> {
        match &self.via {
            Via::Sidecar { .. } => self
                .callers
                .iter()
                .flat_map(|c| c.proxies.iter())
                .filter_map(|l| mesh.proxies.iter().find(|p| p.label == *l))
                .collect(),
            Via::Gateway { caller, .. } => caller
                .pod
                .as_ref()
                .and_then(|p| mesh.proxy_of(p))
                .into_iter()
                .collect(),
        }
    }
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// Every destination of the target's callers (sidecars and gateways) whose
/// status `keep` selects and that fails every request taking it; one hit per
/// distinct destination, with every caller that takes it.
pub fn route_hits(mesh: &Mesh, keep: impl Fn(&DestStatus) -> bool) -> Vec<RouteHit> {
    let mut out: Vec<RouteHit> = Vec::new();
    for svc in mesh.target_services() {
        let tr = mesh.target_routes(svc);
        for (caller, views) in tr.callers.iter().zip(&tr.views) {
            for (port, view) in views {
                for f in view.failures() {
                    let crate::istio::routing::Failure::Destination {
                        route,
                        destination,
                        expected,
                        mirror: false,
                    } = f
                    else {
                        continue;
                    };
                    if !keep(&destination.status) {
                        continue;
                    }
                    let hit = RouteHit {
                        fqdn: svc.fqdn.clone(),
                        via: Via::Sidecar { port: *port },
                        callers: vec![caller.clone()],
                        route: route.map(route_ref),
                        destination: destination.clone(),
                        expected,
                    };
                    merge(&mut out, hit);
                }
            }
        }
        out.extend(gateway_hits(svc, &tr.gateways, &keep));
    }
    out
}

fn gateway_hits(
    svc: &Service,
    gateways: &[GatewayCaller],
    keep: &impl Fn(&DestStatus) -> bool,
) -> Vec<RouteHit> {
    let mut out = Vec::new();
    for g in gateways {
        for path in &g.paths {
            if path.view.outcome != GatewayOutcome::Routed {
                continue;
            }
            for r in path.view.routes.iter().filter(|r| r.reachable()) {
                for d in &r.destinations {
                    let Some(expected) = d.status.expected() else {
                        continue;
                    };
                    if !keep(&d.status) {
                        continue;
                    }
                    let hit = RouteHit {
                        fqdn: svc.fqdn.clone(),
                        via: Via::Gateway {
                            caller: GatewayCaller {
                                paths: Vec::new(),
                                ..g.clone()
                            },
                            host: path.host.clone(),
                            port: path.port,
                        },
                        callers: Vec::new(),
                        route: Some(route_ref(r)),
                        destination: d.clone(),
                        expected,
                    };
                    merge(&mut out, hit);
                }
            }
        }
    }
    out
}

fn route_ref(r: &RouteInfo) -> RouteRef {
    RouteRef {
        vs: r.vs.clone(),
        index: r.index,
        name: r.name.clone(),
        catch_all: r.catch_all,
    }
}

/// The same destination, route and outcome for another caller: one hit.
fn merge(out: &mut Vec<RouteHit>, hit: RouteHit) {
    let same = |h: &RouteHit| {
        h.fqdn == hit.fqdn
            && h.via == hit.via
            && h.route == hit.route
            && h.destination.cluster_name == hit.destination.cluster_name
            && h.destination.status == hit.destination.status
    };
    match out.iter_mut().find(|h| same(h)) {
        Some(h) => {
            for c in hit.callers {
                if !h.callers.contains(&c) {
                    h.callers.push(c);
                }
            }
        }
        None => out.push(hit),
    }
}

/// What the data plane says about a hit.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Confirmation {
    pub weights: Vec<Weight>,
    pub evidence: Vec<Evidence>,
    /// Access-log lines of the callers' sidecars showing the failure.
    pub lines: usize,
}

impl Confirmation {
    fn add(&mut self, w: Weight) {
        if !self.weights.contains(&w) {
            self.weights.push(w);
        }
    }
}

/// A log line showing the hit's failure: the expected code and flag, on
/// the hit's cluster, or without a cluster (Envoy logs none when it finds
/// no cluster) for the host the callers ask for.
pub fn shows(e: &AccessLogEntry, hit: &RouteHit) -> bool {
    let x = &hit.expected;
    if e.response_code != Some(x.code) || (x.flag != "-" && !e.has_flag(x.flag)) {
        return false;
    }
    match e.upstream_cluster.as_deref() {
        Some(c) if c != "-" => c == hit.destination.cluster_name,
        _ => match &hit.via {
            Via::Sidecar { port } => log_line_targets(
                &AccessLogEntry {
                    upstream_cluster: None,
                    ..e.clone()
                },
                *port,
                &hit.fqdn,
            ),
            Via::Gateway { host, .. } => e
                .authority
                .as_deref()
                .is_some_and(|a| a.split(':').next() == Some(host.as_str())),
        },
    }
}

/// Confirm a hit from the callers' read sidecars. `distinctive`: the flag
/// is this cause's alone (`NC`, `FI`).
pub fn confirm(mesh: &Mesh, hit: &RouteHit, distinctive: bool) -> Confirmation {
    let mut c = Confirmation::default();
    let cluster = &hit.destination.cluster_name;
    for p in hit.proxies(mesh) {
        let lines: Vec<&AccessLogEntry> = p.log.entries.iter().filter(|e| shows(e, hit)).collect();
        if !lines.is_empty() {
            c.add(Weight::ClientLog);
            if distinctive {
                c.add(Weight::DistinctiveFlag);
            }
            c.lines += lines.len();
            c.evidence.push(Evidence::new(
                SourceRef::AccessLog(p.label.clone()),
                format!(
                    "{} answered {} {}; e.g. {}",
                    crate::words::counts(lines.len(), "request"),
                    hit.expected.code,
                    hit.expected.flag,
                    sample_line(&lines)
                ),
            ));
        }
        match hit.expected.flag {
            "NC" => cluster_absence(p, cluster, &mut c),
            "UH" => cluster_hosts(p, cluster, &mut c),
            _ => {}
        }
    }
    c
}

/// `503 NC`: the client's clusters (when read) lack the one the route names.
fn cluster_absence(p: &Proxy, cluster: &str, c: &mut Confirmation) {
    let Some(dump) = p.dump.as_ref().filter(|d| !d.clusters.is_empty()) else {
        return;
    };
    // Read narrowed to the target (collect::scope): a cluster outside the
    // filter was not read, its absence says nothing.
    if p.scope.as_ref().is_some_and(|s| !s.covers_cluster(cluster)) {
        return;
    }
    if dump.cluster(cluster).is_none() {
        c.add(Weight::ClientClusterMissing);
        c.evidence.push(Evidence::new(
            SourceRef::ConfigDump(p.label.clone()),
            format!(
                "no cluster {cluster} among its {} clusters{}",
                dump.clusters.len(),
                if p.scope.is_some() {
                    " (read filtered to the target's; it would match)"
                } else {
                    ""
                }
            ),
        ));
    } else {
        c.add(Weight::PredictionContradicted);
        c.evidence.push(Evidence::new(
            SourceRef::ConfigDump(p.label.clone()),
            format!("has cluster {cluster}: the proxy runs other config than the API objects say"),
        ));
    }
}

/// `503 UH`: `/clusters` shows the cluster without a healthy host.
fn cluster_hosts(p: &Proxy, cluster: &str, c: &mut Confirmation) {
    let Some(status) = p.clusters.as_ref().and_then(|cl| cl.get(cluster)) else {
        return;
    };
    let healthy = status.healthy_hosts().len();
    if healthy == 0 {
        c.add(Weight::HostHealth);
        c.evidence.push(Evidence::new(
            SourceRef::AdminClusters(p.label.clone()),
            if status.hosts.is_empty() {
                format!("{cluster} has no hosts")
            } else {
                format!(
                    "{cluster} has {}, none healthy",
                    crate::words::counts(status.hosts.len(), "host")
                )
            },
        ));
    } else {
        c.add(Weight::PredictionContradicted);
        c.evidence.push(Evidence::new(
            SourceRef::AdminClusters(p.label.clone()),
            format!(
                "{cluster} has {}: the proxy runs other endpoints than the API objects say",
                crate::words::counts(healthy, "healthy host")
            ),
        ));
    }
}

/// An explanation line and the weight when lists the routing decision
/// reads were refused; `None` when everything was read.
pub fn blind_spots(mesh: &Mesh) -> Option<(String, Weight)> {
    let hidden = mesh.routing_blind_spots();
    (!hidden.is_empty()).then(|| {
        (
            format!(
                "Could not read every {}: objects the tool cannot see may change which route applies.",
                hidden.join(", ")
            ),
            Weight::ConfigHidden,
        )
    })
}

/// `VirtualService foo/x` as an evidence source, from `ns/name`.
pub fn object(kind: &str, key: &str) -> SourceRef {
    let (namespace, name) = key.split_once('/').unwrap_or(("", key));
    SourceRef::Object(crate::istio::object::ObjectRef {
        kind: kind.into(),
        namespace: namespace.into(),
        name: name.into(),
    })
}

/// The route of a hit as evidence (`VirtualService foo/x: route 0 …`).
pub fn route_evidence(h: &RouteHit) -> Option<Evidence> {
    h.route.as_ref().map(|r| {
        Evidence::new(
            object("VirtualService", &r.vs),
            format!(
                "route {} destination host {}{}{} ({}{:.0}% of the route's requests)",
                r.index,
                h.destination.destination.host_written,
                h.destination
                    .destination
                    .subset
                    .as_ref()
                    .map(|s| format!(" subset {s}"))
                    .unwrap_or_default(),
                h.destination
                    .destination
                    .port
                    .map(|p| format!(" port {p}"))
                    .unwrap_or_default(),
                if h.destination.share < 100.0 || h.destination.weight > 0 {
                    format!("weight {}, ", h.destination.weight)
                } else {
                    String::new()
                },
                h.destination.share
            ),
        )
    })
}

/// Caller names per hit, for evidence: `namespace foo: found …`.
pub fn caller_evidence(hit: &RouteHit) -> Vec<Evidence> {
    let mut by: BTreeMap<String, String> = BTreeMap::new();
    for c in &hit.callers {
        by.insert(c.name(), c.how_found());
    }
    by.into_iter()
        .map(|(name, how)| Evidence::new(SourceRef::Caller(name.clone()), how))
        .collect()
}
