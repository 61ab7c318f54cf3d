//! The effective traffic policy of the applied rule(s) for one **service**
//! port and optional subset: port-level entries replace, subsets override
//! field by field, a subset's port-level entry replaces again. Typed notes
//! only (the sentences are [`super::explain`]'s).
//!
//! Place in the flow: a pure helper (istio/), after [`super::lookup`]; its
//! `tls` feeds `istio::tls::client`, its connection pool and outlier
//! detection the traffic rules.
//!
//! Sources: istio/istio pilot/pkg/networking/util/util.go
//! (`MergeSubsetTrafficPolicy`, `GetPortLevelTrafficPolicy`) and
//! pilot/pkg/model/destination_rule.go (`MergeTrafficPolicy`).

use super::lookup::Selection;
use super::types::{
    ClientTls, ConnectionPool, LoadBalancer, OutlierDetection, PortTrafficPolicy, TlsMode,
    TrafficPolicy,
};

/// Which part of the rule a setting came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicyOrigin {
    TopLevel,
    PortLevel(u32),
    Subset(String),
    SubsetPortLevel(String, u32),
    /// Nothing set it: Istio/Envoy defaults apply.
    None,
}

/// Where each field of the effective policy came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldOrigins {
    pub tls: PolicyOrigin,
    pub connection_pool: PolicyOrigin,
    pub outlier: PolicyOrigin,
    pub load_balancer: PolicyOrigin,
}

/// A trap worth telling the user, typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicyNote {
    /// The top-level `portLevelSettings` entry for the port sets no tls, so
    /// the top-level tls (`top_tls`) does not apply to the port.
    PortLevelDropsTls {
        rule: String,
        port: u32,
        top_tls: TlsMode,
    },
    /// A top-level field (`connectionPool`, `outlierDetection`,
    /// `loadBalancer`) is not inherited by the port's entry.
    PortLevelDropsField {
        rule: String,
        port: u32,
        field: &'static str,
    },
    /// The subset is not defined by the applied rules: routes to it find no
    /// cluster (`503 NC cluster_not_found`).
    SubsetNotDefined {
        subset: String,
        rules: Vec<String>,
        host: String,
    },
    /// The subset's own port-level entry replaces all four fields and drops
    /// the tls that came from `dropped_from`.
    SubsetPortLevelDropsTls {
        subset: String,
        port: u32,
        dropped_from: PolicyOrigin,
    },
}

/// What the client sidecar's cluster for (service, port, subset) is built from.
#[derive(Debug, Clone, PartialEq)]
pub struct EffectivePolicy {
    pub tls: Option<ClientTls>,
    pub connection_pool: Option<ConnectionPool>,
    pub outlier: Option<OutlierDetection>,
    pub load_balancer: Option<LoadBalancer>,
    /// The most specific part of the rule that was applied.
    pub origin: PolicyOrigin,
    pub field_origins: FieldOrigins,
    /// `Some(false)` when a subset was asked for and no applied rule defines it
    /// (a route to it gets `503 NC cluster_not_found`).
    pub subset_defined: Option<bool>,
    /// Traps worth telling the user, typed.
    pub policy_notes: Vec<PolicyNote>,
    /// The same in plain words (from [`super::explain`]).
    pub notes: Vec<String>,
}

/// The four settings of a (port-level) traffic policy, borrowed.
type Parts<'a> = (
    Option<&'a ClientTls>,
    Option<&'a ConnectionPool>,
    Option<&'a OutlierDetection>,
    Option<&'a LoadBalancer>,
);

fn policy_parts(tp: &TrafficPolicy) -> Parts<'_> {
    (
        tp.tls.as_ref(),
        tp.connection_pool.as_ref(),
        tp.outlier_detection.as_ref(),
        tp.load_balancer.as_ref(),
    )
}

fn port_parts(p: &PortTrafficPolicy) -> Parts<'_> {
    (
        p.tls.as_ref(),
        p.connection_pool.as_ref(),
        p.outlier_detection.as_ref(),
        p.load_balancer.as_ref(),
    )
}

fn port_entry(tp: &TrafficPolicy, port: u32) -> Option<&PortTrafficPolicy> {
    // GetPortLevelTrafficPolicy: the first entry with that port number.
    tp.port_level_settings.iter().find(|p| p.port == Some(port))
}

/// Each field with the part of the rule it came from.
#[derive(Clone)]
struct Layer {
    tls: (Option<ClientTls>, PolicyOrigin),
    pool: (Option<ConnectionPool>, PolicyOrigin),
    outlier: (Option<OutlierDetection>, PolicyOrigin),
    lb: (Option<LoadBalancer>, PolicyOrigin),
}

fn field<T: Clone>(v: Option<&T>, o: &PolicyOrigin) -> (Option<T>, PolicyOrigin) {
    match v {
        Some(v) => (Some(v.clone()), o.clone()),
        None => (None, PolicyOrigin::None),
    }
}

impl Layer {
    fn empty() -> Layer {
        Layer::of((None, None, None, None), PolicyOrigin::None)
    }
    /// Every field from `parts`, set or not (a replacing layer).
    fn of((tls, pool, outlier, lb): Parts<'_>, o: PolicyOrigin) -> Layer {
        Layer {
            tls: field(tls, &o),
            pool: field(pool, &o),
            outlier: field(outlier, &o),
            lb: field(lb, &o),
        }
    }
    /// Only the fields `parts` sets (an overriding layer).
    fn override_with(&mut self, (tls, pool, outlier, lb): Parts<'_>, o: &PolicyOrigin) {
        if tls.is_some() {
            self.tls = field(tls, o);
        }
        if pool.is_some() {
            self.pool = field(pool, o);
        }
        if outlier.is_some() {
            self.outlier = field(outlier, o);
        }
        if lb.is_some() {
            self.lb = field(lb, o);
        }
    }
}

/// Step 1: the top-level policy, or the port's entry replacing all of it.
fn top_level(
    selection: &Selection,
    port: u32,
    notes: &mut Vec<PolicyNote>,
) -> (Layer, PolicyOrigin) {
    let Some(tp) = &selection.traffic_policy else {
        return (Layer::empty(), PolicyOrigin::None);
    };
    let Some(p) = port_entry(tp, port) else {
        return (
            Layer::of(policy_parts(tp), PolicyOrigin::TopLevel),
            PolicyOrigin::TopLevel,
        );
    };
    let rule = selection.policy_from.clone().unwrap_or_default();
    if let (Some(t), None) = (&tp.tls, &p.tls) {
        notes.push(PolicyNote::PortLevelDropsTls {
            rule: rule.clone(),
            port,
            top_tls: t.mode.clone(),
        });
    }
    for (field, top, here) in [
        (
            "connectionPool",
            tp.connection_pool.is_some(),
            p.connection_pool.is_some(),
        ),
        (
            "outlierDetection",
            tp.outlier_detection.is_some(),
            p.outlier_detection.is_some(),
        ),
        (
            "loadBalancer",
            tp.load_balancer.is_some(),
            p.load_balancer.is_some(),
        ),
    ] {
        if top && !here {
            notes.push(PolicyNote::PortLevelDropsField {
                rule: rule.clone(),
                port,
                field,
            });
        }
    }
    let o = PolicyOrigin::PortLevel(port);
    (Layer::of(port_parts(p), o.clone()), o)
}

/// The policy for `service_port` (a **service** port) and optional subset.
///
/// 1. a top-level `portLevelSettings` entry for the port **replaces** the
///    whole top-level policy (fields it omits fall back to defaults, they are
///    not inherited — a port entry without `tls` drops a top-level `tls`);
/// 2. a subset policy then overrides field by field (tls, connectionPool,
///    outlierDetection, loadBalancer each only if the subset sets it);
/// 3. if the subset has its own `portLevelSettings` entry for the port, that
///    entry replaces all four fields, set or not (`hasPortLevel = true`).
///
/// Typed: `notes` is left empty; [`effective_policy`] fills it.
pub fn decide_policy(
    selection: &Selection,
    service_port: u32,
    subset: Option<&str>,
) -> EffectivePolicy {
    let mut notes = Vec::new();
    let (mut layer, mut origin) = top_level(selection, service_port, &mut notes);
    let mut subset_defined = None;
    if let Some(name) = subset {
        match selection.subset(name) {
            None => {
                subset_defined = Some(false);
                notes.push(PolicyNote::SubsetNotDefined {
                    subset: name.to_string(),
                    rules: selection.rules.iter().map(|r| r.key()).collect(),
                    host: selection.matched_host.clone(),
                });
            }
            Some(sel) => {
                subset_defined = Some(true);
                if let Some(sp) = &sel.subset.traffic_policy {
                    if let Some(pp) = port_entry(sp, service_port) {
                        let o = PolicyOrigin::SubsetPortLevel(name.to_string(), service_port);
                        if layer.tls.0.is_some() && pp.tls.is_none() {
                            notes.push(PolicyNote::SubsetPortLevelDropsTls {
                                subset: name.to_string(),
                                port: service_port,
                                dropped_from: layer.tls.1.clone(),
                            });
                        }
                        layer = Layer::of(port_parts(pp), o.clone());
                        origin = o;
                    } else {
                        let o = PolicyOrigin::Subset(name.to_string());
                        let parts = policy_parts(sp);
                        if parts.0.is_some()
                            || parts.1.is_some()
                            || parts.2.is_some()
                            || parts.3.is_some()
                        {
                            origin = o.clone();
                        }
                        layer.override_with(parts, &o);
                    }
                }
            }
        }
    }
    EffectivePolicy {
        tls: layer.tls.0,
        connection_pool: layer.pool.0,
        outlier: layer.outlier.0,
        load_balancer: layer.lb.0,
        origin,
        field_origins: FieldOrigins {
            tls: layer.tls.1,
            connection_pool: layer.pool.1,
            outlier: layer.outlier.1,
            load_balancer: layer.lb.1,
        },
        subset_defined,
        policy_notes: notes,
        notes: Vec::new(),
    }
}

/// [`decide_policy`] with the notes also in plain words.
pub fn effective_policy(
    selection: &Selection,
    service_port: u32,
    subset: Option<&str>,
) -> EffectivePolicy {
    let mut eff = decide_policy(selection, service_port, subset);
    eff.notes = eff
        .policy_notes
        .iter()
        .map(super::explain::policy_note)
        .collect();
    eff
}
