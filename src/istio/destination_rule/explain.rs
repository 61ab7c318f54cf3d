//! The prose of the DestinationRule lookup and effective policy: every
//! sentence a report shows about which rule applies, what lost and why, and
//! the traps of port-level entries and subsets — produced from the typed
//! results of [`super::lookup`] and [`super::policy`].
//!
//! Place in the flow: a pure helper (istio/) used by the decision modules'
//! convenience entry points (`lookup`, `effective_policy`) and by report text.

use std::fmt;

use super::lookup::{
    Lookup, LookupLevel, LookupQuery, MergeNote, Selection, ShadowReason, Shadowed, WhyNone,
};
use super::policy::{EffectivePolicy, PolicyNote, PolicyOrigin};
use super::types::{DestinationRule, TrafficPolicy};
use crate::istio::object::format_labels;

impl fmt::Display for LookupLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LookupLevel::ClientNamespace => "the client's namespace",
            LookupLevel::ServiceNamespace => "the service's namespace",
            LookupLevel::RootNamespace => "the root namespace",
        })
    }
}

impl fmt::Display for PolicyOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PolicyOrigin::TopLevel => f.write_str("top-level trafficPolicy"),
            PolicyOrigin::PortLevel(p) => write!(f, "portLevelSettings for port {p}"),
            PolicyOrigin::Subset(s) => write!(f, "subset {s} trafficPolicy"),
            PolicyOrigin::SubsetPortLevel(s, p) => {
                write!(f, "subset {s} portLevelSettings for port {p}")
            }
            PolicyOrigin::None => f.write_str("nothing (defaults)"),
        }
    }
}

/// "tls ISTIO_MUTUAL" or "no tls".
pub fn describe_tls_of(tp: Option<&TrafficPolicy>) -> String {
    match tp.and_then(|t| t.tls.as_ref()) {
        Some(t) => format!("tls {}", t.mode),
        None => "no tls".to_string(),
    }
}

/// Why `r` lost, in plain words.
pub fn shadow_text(r: &DestinationRule, reason: &ShadowReason, q: &LookupQuery<'_>) -> String {
    let key = r.key();
    match reason {
        ShadowReason::HiddenFromOwnNamespace => format!(
            "DestinationRule {key} is exported only to {:?}, not to its own namespace {}, so clients in {} do not see it",
            r.export_to, r.meta.namespace, q.client_ns
        ),
        ShadowReason::LessSpecificHost { winner_host } => format!(
            "DestinationRule {key} (host {}) loses to the more specific host {winner_host} in the same namespace",
            r.host_fqdn
        ),
        ShadowReason::SelectorDoesNotSelectClient => format!(
            "DestinationRule {key} has workloadSelector {} which does not select this client ({})",
            format_labels(r.workload_selector.as_ref().unwrap_or(&Default::default())),
            format_labels(q.client_labels)
        ),
        ShadowReason::SelectorRuleWon { winner } if r.workload_selector.is_some() => format!(
            "DestinationRule {key} also selects this client but the older {winner} wins"
        ),
        ShadowReason::SelectorRuleWon { winner } => format!(
            "DestinationRule {key} is replaced for this client by {winner}, whose workloadSelector selects it"
        ),
        ShadowReason::SelectorOutsideClientNamespace => format!(
            "DestinationRule {key} has a workloadSelector, so it only applies to clients in its own namespace {} (this client is in {})",
            r.meta.namespace, q.client_ns
        ),
        ShadowReason::NotExported if r.private_only() => format!(
            "DestinationRule {key} would match {} but its exportTo {:?} keeps it to namespace {}; clients in {} do not see it",
            q.service_fqdn, r.export_to, r.meta.namespace, q.client_ns
        ),
        ShadowReason::NotExported => format!(
            "DestinationRule {key} would match {} but is exported only to {:?}, not to the client's namespace {}",
            q.service_fqdn, r.export_to, q.client_ns
        ),
        ShadowReason::NamespaceSkippedForUnexportedRule { unexported, winner_host } => format!(
            "DestinationRule {key} is skipped: Istio picks the most specific host in namespace {} first ({winner_host}, from {unexported}), \
             finds it is not exported to {}, and moves on without trying less specific rules",
            r.meta.namespace, q.client_ns
        ),
        ShadowReason::NotReached => format!(
            "DestinationRule {key} does not apply to clients in {}",
            q.client_ns
        ),
        ShadowReason::NamespaceNotSearched => format!(
            "DestinationRule {key} names {} but lives in namespace {}; Istio only looks in the client's ({}), the service's ({}) and the root ({}) namespaces",
            r.host_fqdn, r.meta.namespace, q.client_ns, q.service_ns, q.root()
        ),
        ShadowReason::EarlierNamespaceWon { winner, level } => format!(
            "DestinationRule {key} (host {}, {}) is never consulted: {winner} in {level} already matched {}, and Istio does not fall back to broader rules field by field",
            r.host_fqdn,
            describe_tls_of(r.traffic_policy.as_ref()),
            q.service_fqdn
        ),
        ShadowReason::TrafficPolicyDiscardedInMerge { kept_from } => format!(
            "DestinationRule {key} is merged with {kept_from} for host {}: its subsets are added, but its top-level trafficPolicy ({}) is discarded because the older {kept_from} already has one",
            r.host_fqdn,
            describe_tls_of(r.traffic_policy.as_ref())
        ),
    }
}

/// Why nothing applies, in plain words.
pub fn why_none_text(why: &WhyNone, q: &LookupQuery<'_>) -> String {
    match why {
        WhyNone::SelectorsDoNotSelectClient { best_host } => format!(
            "the most specific DestinationRule host for {} in the client's namespace {} is {best_host}, \
             but its rules only have workloadSelectors that do not select this client; Istio stops searching there, \
             so no DestinationRule applies (not even the service's or the root namespace's)",
            q.service_fqdn, q.client_ns
        ),
        WhyNone::NoMatch => format!(
            "no DestinationRule in {}, {} or {} matches {} for clients in {}",
            q.client_ns,
            q.service_ns,
            q.root(),
            q.service_fqdn,
            q.client_ns
        ),
    }
}

/// A merge note in plain words.
pub fn merge_note(n: &MergeNote) -> String {
    match n {
        MergeNote::SubsetDropped { subset, rule, kept_from } => format!(
            "subset {subset} of DestinationRule {rule} is dropped: {kept_from} already defines a subset with that name"
        ),
        MergeNote::Merged { rules, host, namespace } => format!(
            "{} DestinationRules for {host} in namespace {namespace} are merged: {}",
            rules.len(),
            rules.join(", ")
        ),
    }
}

/// A policy note in plain words.
pub fn policy_note(n: &PolicyNote) -> String {
    match n {
        PolicyNote::PortLevelDropsTls { rule, port, top_tls } => format!(
            "DestinationRule {rule}: the portLevelSettings entry for port {port} replaces the whole top-level policy; it sets no tls, so the top-level tls {top_tls} does NOT apply to port {port}"
        ),
        PolicyNote::PortLevelDropsField { rule, port, field } => format!(
            "DestinationRule {rule}: the top-level {field} is not inherited by the portLevelSettings entry for port {port}"
        ),
        PolicyNote::SubsetNotDefined { subset, rules, host } => format!(
            "subset {subset} is not defined by {} for {host}: routes to it find no cluster (503 NC, cluster_not_found)",
            rules.join(" + ")
        ),
        PolicyNote::SubsetPortLevelDropsTls { subset, port, dropped_from } => format!(
            "subset {subset}: its portLevelSettings entry for port {port} replaces tls, connectionPool, outlierDetection and loadBalancer even where it sets nothing; the tls from {dropped_from} is dropped"
        ),
    }
}

fn narrate(shadowed: &mut [Shadowed], q: &LookupQuery<'_>) {
    for s in shadowed {
        s.explanation = shadow_text(&s.rule, &s.reason, q);
    }
}

/// Fill the prose fields of a typed lookup (`explanation`, `notes`, `why_none`).
pub fn narrate_lookup(lk: &mut Lookup, q: &LookupQuery<'_>) {
    narrate(&mut lk.unapplied, q);
    if let Some(sel) = lk.selection.as_mut() {
        narrate(&mut sel.shadowed, q);
        sel.notes = sel.merge_notes.iter().map(merge_note).collect();
    }
    lk.why_none = lk.why_none_reason.as_ref().map(|w| why_none_text(w, q));
}

/// Rules a selection replaced (they would have applied but for it).
fn replaced(s: &Shadowed) -> bool {
    matches!(
        s.reason,
        ShadowReason::EarlierNamespaceWon { .. }
            | ShadowReason::LessSpecificHost { .. }
            | ShadowReason::SelectorRuleWon { .. }
    )
}

impl Selection {
    /// Plain-words lines for a report: which rule applies, what it sets, and
    /// what it replaced, e.g. "DestinationRule foo/httpbin applies to
    /// httpbin.foo.svc.cluster.local for clients in foo; it sets no tls, so it
    /// replaces istio-system/default, which set ISTIO_MUTUAL".
    pub fn explain(&self) -> Vec<String> {
        let names = self
            .rules
            .iter()
            .map(|r| r.key())
            .collect::<Vec<_>>()
            .join(" + ");
        let replaced_rules: Vec<String> = self
            .shadowed
            .iter()
            .filter(|s| replaced(s))
            .map(|s| {
                let what = match s.rule.top_level_tls_mode() {
                    Some(m) => format!("which set {m}"),
                    None => "which set no tls".to_string(),
                };
                format!("{}, {}", s.rule.key(), what)
            })
            .collect();
        let mut head = format!(
            "DestinationRule {} applies to {} for clients in {} (found in {}, host {}); it sets {}",
            names,
            self.service_fqdn,
            self.client_namespace,
            self.level,
            self.matched_host,
            describe_tls_of(self.traffic_policy.as_ref())
        );
        if !replaced_rules.is_empty() {
            head.push_str(", so it replaces ");
            head.push_str(&replaced_rules.join("; and "));
        }
        let mut out = vec![head];
        out.extend(self.notes.iter().cloned());
        out.extend(
            self.shadowed
                .iter()
                .filter(|s| !replaced(s))
                .map(|s| s.explanation.clone()),
        );
        out
    }
}

impl EffectivePolicy {
    /// One line: "tls ISTIO_MUTUAL from the top-level trafficPolicy of DestinationRule foo/httpbin".
    pub fn describe_tls(&self, selection: &Selection) -> String {
        let from = selection
            .policy_from
            .clone()
            .or_else(|| selection.primary().map(|r| r.key()))
            .unwrap_or_default();
        match &self.tls {
            Some(t) => format!(
                "tls {} from the {} of DestinationRule {}",
                t.mode, self.field_origins.tls, from
            ),
            None => format!(
                "no tls in DestinationRule {} for this port/subset (client TLS is then up to auto mTLS)",
                selection
                    .rules
                    .iter()
                    .map(|r| r.key())
                    .collect::<Vec<_>>()
                    .join(" + ")
            ),
        }
    }
}
