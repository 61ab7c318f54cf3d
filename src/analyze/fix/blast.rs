//! The blast radius of a candidate fix: every (caller, service, port) pair
//! the snapshot knows, evaluated with the model's own decisions (the
//! DestinationRule lookup and client TLS, the server's policy chain) before
//! and after the candidate is applied.
//!
//! Callers: every pod of the snapshot (with or without sidecar; replicas
//! with the same labels are one caller), and for each injected namespace
//! whose pods the snapshot does not hold, "any sidecar client" there.
//! Services: every Service of the snapshot, every port, every backing pod.
//! Both sides are predicted from config (what istiod would push): a proxy's
//! running config is the old one and says nothing about the change.
//!
//! A pair *breaks* when it worked and is refused (or becomes a matter of
//! certificates) after; it is *downgraded* when a sidecar sent Istio mTLS
//! to a sidecar that took it and sends plaintext after (a PERMISSIVE server
//! takes it silently: the forwarded client certificate disappears).

use std::collections::BTreeMap;

use crate::istio::authn::MtlsMode;
use crate::istio::destination_rule::ConnectionPool;
use crate::istio::tls::{self, Server, Wire};
use crate::model::decisions::Client;
use crate::model::networking::RouteKind;
use crate::model::{Mesh, Pod, PodKey, Service, ServicePort};

use super::{PairChange, PairState};

/// Most pairs evaluated per candidate; beyond, the check says it stopped.
pub const MAX_PAIRS: usize = 20_000;

/// Labels that differ between replicas and never select a client.
const REPLICA_LABELS: &[&str] = &[
    "pod-template-hash",
    "controller-revision-hash",
    "statefulset.kubernetes.io/pod-name",
    "pod-template-generation",
];

/// Who calls, as Istio's client-side decisions see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// `foo/sleep-1 (and 2 other replicas)`, or `any sidecar client in foo`.
    pub label: String,
    pub client: Client,
    pub sidecar: bool,
    /// Stands for pods the snapshot does not hold.
    pub hypothetical: bool,
    /// The pod it is (one of), when it is one.
    pub pod: Option<PodKey>,
}

impl Caller {
    pub fn of_pod(pod: &Pod) -> Caller {
        Caller {
            label: pod.key.to_string(),
            client: Client::of_pod(pod),
            sidecar: pod.has_sidecar(),
            hypothetical: false,
            pod: Some(pod.key.clone()),
        }
    }

    /// Any sidecar client in `namespace` (no labels: selector rules skip it).
    pub fn hypothetical(namespace: &str) -> Caller {
        Caller {
            label: format!("any sidecar client in {namespace}"),
            client: Client::in_namespace(namespace),
            sidecar: true,
            hypothetical: true,
            pod: None,
        }
    }

    fn identity(&self) -> (Client, bool) {
        let mut c = self.client.clone();
        c.labels
            .retain(|k, _| !REPLICA_LABELS.contains(&k.as_str()));
        (c, self.sidecar)
    }
}

fn injected(labels: &BTreeMap<String, String>) -> bool {
    labels.get("istio-injection").map(String::as_str) == Some("enabled")
        || labels.contains_key("istio.io/rev")
}

/// The callers the snapshot knows, plus `extra` (the failing caller) when
/// it is not one of them.
pub fn callers(mesh: &Mesh, extra: &Caller) -> Vec<Caller> {
    let mut out: Vec<(Caller, usize)> = Vec::new();
    for pod in &mesh.pods {
        let c = Caller::of_pod(pod);
        match out.iter_mut().find(|(o, _)| o.identity() == c.identity()) {
            Some((_, n)) => *n += 1,
            None => out.push((c, 0)),
        }
    }
    let mut callers: Vec<Caller> = out
        .into_iter()
        .map(|(mut c, others)| {
            if others > 0 {
                c.label = format!(
                    "{} (and {})",
                    c.label,
                    crate::words::counts(others, "other replica")
                );
            }
            c
        })
        .collect();
    for ns in &mesh.namespaces {
        let has_sidecar_pod = mesh
            .pods
            .iter()
            .any(|p| p.key.namespace == ns.name && p.has_sidecar());
        if injected(&ns.labels) && !has_sidecar_pod {
            callers.push(Caller::hypothetical(&ns.name));
        }
    }
    if !callers.iter().any(|c| c.identity() == extra.identity()) {
        callers.push(extra.clone());
    }
    callers
}

/// What one pair does, typed.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Detail {
    /// `None`: the pods get different wires.
    wire: Option<Wire>,
    /// `None`: the pods differ; `Some(None)`: no sidecar.
    mode: Option<Option<MtlsMode>>,
    outcome: Outcome,
    /// Every server pod has a sidecar.
    server_sidecars: bool,
    /// The caller's connection pool towards the port, as configured.
    pool: Option<String>,
    /// The subsets routes send this caller to, and whether each is defined.
    routes: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Ok,
    Refused,
    Unknown,
}

impl Detail {
    fn state(&self) -> PairState {
        PairState {
            wire: self
                .wire
                .map(|w| w.to_string())
                .unwrap_or_else(|| "mixed".into()),
            server: match self.mode {
                Some(Some(m)) => m.to_string(),
                Some(None) => "no sidecar".into(),
                None => "mixed".into(),
            },
            outcome: match self.outcome {
                Outcome::Ok => "ok",
                Outcome::Refused => "refused",
                Outcome::Unknown => "unknown",
            }
            .into(),
            pool: self.pool.clone(),
            routes: self.routes.clone(),
        }
    }

    /// Same TLS (wire, server, acceptance), whatever else differs.
    fn same_tls(&self, other: &Detail) -> bool {
        (self.wire, self.mode, self.server_sidecars)
            == (other.wire, other.mode, other.server_sidecars)
    }
}

/// `tcp.maxConnections 1, http.idleTimeout 0.125s` (what is set).
fn pool_text(p: &ConnectionPool) -> Option<String> {
    let mut parts = Vec::new();
    if let Some(t) = &p.tcp {
        if let Some(v) = t.max_connections {
            parts.push(format!("tcp.maxConnections {v}"));
        }
    }
    if let Some(h) = &p.http {
        let fields = [
            ("http1MaxPendingRequests", h.http1_max_pending_requests),
            ("http2MaxRequests", h.http2_max_requests),
            ("maxRequestsPerConnection", h.max_requests_per_connection),
            ("maxRetries", h.max_retries),
        ];
        for (n, v) in fields {
            if let Some(v) = v {
                parts.push(format!("http.{n} {v}"));
            }
        }
        if let Some(d) = &h.idle_timeout {
            parts.push(format!("http.idleTimeout {d}"));
        }
    }
    (!parts.is_empty()).then(|| parts.join(", "))
}

/// The subsets VirtualService routes name for this host and port, each
/// with whether the rule in force for the caller defines it (a route to an
/// undefined subset is a `503 NC`). Which VirtualService a caller uses is
/// not decided here: every route naming the host counts.
fn routes(
    mesh: &Mesh,
    caller: &Caller,
    svc: &Service,
    port: &ServicePort,
) -> (Option<String>, bool) {
    let mut subsets: Vec<String> = mesh
        .config
        .virtual_services
        .iter()
        .flat_map(|vs| vs.destinations(RouteKind::Http))
        .filter(|d| d.host_fqdn == svc.fqdn && d.port.is_none_or(|p| p == u32::from(port.number)))
        .filter_map(|d| d.subset.clone())
        .collect();
    subsets.sort();
    subsets.dedup();
    if subsets.is_empty() {
        return (None, true);
    }
    let lk = mesh.destination_rule_lookup(&caller.client, svc);
    let mut all_defined = true;
    let text: Vec<String> = subsets
        .iter()
        .map(|s| {
            let defined = lk
                .selection
                .as_ref()
                .is_some_and(|sel| sel.subset(s).is_some());
            all_defined &= defined;
            format!(
                "{s} ({})",
                if defined {
                    "defined"
                } else {
                    "undefined: 503 NC"
                }
            )
        })
        .collect();
    (Some(format!("subsets {}", text.join(", "))), all_defined)
}

fn detail(mesh: &Mesh, caller: &Caller, svc: &Service, port: &ServicePort) -> Option<Detail> {
    let pods: Vec<&Pod> = mesh.backing_pods(svc).collect();
    if pods.is_empty() {
        return None;
    }
    let ct = caller
        .sidecar
        .then(|| mesh.client_tls(&caller.client, svc, port.number));
    let mut wires = Vec::new();
    let mut modes = Vec::new();
    let mut outcome = Outcome::Ok;
    let mut server_sidecars = true;
    for pod in pods {
        let server = mesh.server_side(svc, port, pod);
        let mode = server.predicted_mode();
        let wire = match &ct {
            Some(ct) => ct.wire_for(server.labelled_istio),
            None => Wire::Plaintext,
        };
        server_sidecars &= server.sidecar;
        let receiver = if server.sidecar {
            Server::Sidecar(mode)
        } else {
            Server::NoSidecar
        };
        match tls::accepts(receiver, wire) {
            Some(false) => outcome = Outcome::Refused,
            None if outcome == Outcome::Ok => outcome = Outcome::Unknown,
            _ => {}
        }
        wires.push(wire);
        modes.push(server.sidecar.then_some(mode));
    }
    let pool = ct
        .as_ref()
        .and_then(|ct| ct.policy.as_ref())
        .and_then(|p| p.connection_pool.as_ref())
        .and_then(pool_text);
    let (routes, routed) = if caller.sidecar {
        routes(mesh, caller, svc, port)
    } else {
        (None, true)
    };
    if !routed {
        outcome = Outcome::Refused;
    }
    Some(Detail {
        wire: same(&wires).then(|| wires[0]),
        mode: same(&modes).then(|| modes[0]),
        outcome,
        server_sidecars,
        pool,
        routes,
    })
}

fn same<T: PartialEq>(v: &[T]) -> bool {
    v.windows(2).all(|w| w[0] == w[1])
}

/// The predicted state of one pair (`None`: the service has no pod).
pub fn pair_state(
    mesh: &Mesh,
    caller: &Caller,
    svc: &Service,
    port: &ServicePort,
) -> Option<PairState> {
    detail(mesh, caller, svc, port).map(|d| d.state())
}

/// Every pair's state in one mesh.
#[derive(Debug, Clone)]
pub struct Pairs {
    states: BTreeMap<(usize, usize, u16), Detail>,
    /// [`MAX_PAIRS`] was reached.
    pub truncated: bool,
}

impl Pairs {
    pub fn len(&self) -> usize {
        self.states.len()
    }

    pub fn is_empty(&self) -> bool {
        self.states.is_empty()
    }
}

/// Evaluate every (caller, service, port) of `mesh` (callers by index into
/// `callers`, services by index into `mesh.services`).
pub fn evaluate(mesh: &Mesh, callers: &[Caller]) -> Pairs {
    evaluate_some(mesh, callers, None)
}

/// [`evaluate`], recomputing only the services `affected` holds and taking
/// the others' pairs from `before` (a change that cannot reach them).
pub fn evaluate_some(mesh: &Mesh, callers: &[Caller], only: Option<(&[bool], &Pairs)>) -> Pairs {
    let mut states = BTreeMap::new();
    let mut truncated = false;
    let affected = |si: usize| only.is_none_or(|(a, _)| a.get(si).copied().unwrap_or(true));
    if let Some((_, before)) = only {
        states.extend(
            before
                .states
                .iter()
                .filter(|((_, si, _), _)| !affected(*si))
                .map(|(k, v)| (*k, v.clone())),
        );
        truncated = before.truncated;
    }
    'all: for (si, svc) in mesh.services.iter().enumerate() {
        if !affected(si) {
            continue;
        }
        for port in &svc.ports {
            for (ci, caller) in callers.iter().enumerate() {
                if states.len() >= MAX_PAIRS {
                    truncated = true;
                    break 'all;
                }
                if let Some(d) = detail(mesh, caller, svc, port) {
                    states.insert((ci, si, port.number), d);
                }
            }
        }
    }
    Pairs { states, truncated }
}

/// What a candidate does to the pairs.
#[derive(Debug, Clone, Default)]
pub struct Diff {
    /// Worked before; refused, or uncertain, after.
    pub breaks: Vec<PairChange>,
    /// Sidecar-to-sidecar Istio mTLS before, plaintext after.
    pub downgrades: Vec<PairChange>,
    /// Refused before, working after.
    pub repairs: Vec<PairChange>,
    /// Otherwise changed (connection pool, routes, another failure).
    pub changes: Vec<PairChange>,
    pub unchanged: usize,
    /// A few unchanged pairs, those about `focus` first.
    pub unchanged_sample: Vec<PairChange>,
    pub checked: usize,
}

/// How many unchanged pairs a fix names.
const SAMPLE: usize = 3;

/// Compare two evaluations of the same callers over the same services;
/// `focus` (a service) orders the unchanged sample.
pub fn diff(
    mesh: &Mesh,
    callers: &[Caller],
    before: &Pairs,
    after: &Pairs,
    focus: &Service,
) -> Diff {
    let mut d = Diff {
        checked: before.states.len(),
        ..Diff::default()
    };
    let mut unchanged: Vec<(bool, PairChange)> = Vec::new();
    for (key, b) in &before.states {
        let Some(a) = after.states.get(key) else {
            continue;
        };
        let (ci, si, port) = *key;
        let (caller, svc) = (&callers[ci], &mesh.services[si]);
        let change = |what: &str| PairChange {
            client: caller.label.clone(),
            host: svc.fqdn.clone(),
            port,
            before: b.state(),
            after: a.state(),
            change: what.to_string(),
        };
        let worked = b.outcome == Outcome::Ok;
        if worked && a.outcome != Outcome::Ok {
            d.breaks.push(change(if a.outcome == Outcome::Unknown {
                "breaks: acceptance would depend on certificates"
            } else if a.same_tls(b) {
                "breaks: its route goes to an undefined subset"
            } else {
                "breaks: the server refuses what the caller sends after"
            }));
        } else if worked
            && caller.sidecar
            && b.server_sidecars
            && b.wire == Some(Wire::IstioMtls)
            && a.wire != Some(Wire::IstioMtls)
        {
            d.downgrades.push(change(
                "downgrades sidecar-to-sidecar mTLS to plaintext (the server still takes it: silently)",
            ));
        } else if !worked && a.outcome == Outcome::Ok {
            d.repairs.push(change("repairs"));
        } else if a == b {
            d.unchanged += 1;
            unchanged.push((svc.key == focus.key, change("unchanged")));
        } else if a.same_tls(b) && a.outcome == b.outcome {
            d.changes.push(change(if a.pool != b.pool {
                "its connection pool changes"
            } else {
                "its routes change"
            }));
        } else {
            d.changes.push(change(if worked {
                "still works, another way"
            } else {
                "still fails, another way"
            }));
        }
    }
    unchanged.sort_by_key(|(focus, _)| !*focus);
    d.unchanged_sample = unchanged.into_iter().take(SAMPLE).map(|(_, c)| c).collect();
    d
}
