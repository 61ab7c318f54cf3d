//! Which DestinationRule applies to one client calling one service: Istio's
//! namespace search, host specificity, exportTo, workloadSelector and merge,
//! returning typed reasons only (the sentences are [`super::explain`]'s).
//!
//! Place in the flow: a pure helper (istio/). model asks it per (client,
//! service); [`super::policy`] then picks the settings for a port/subset.
//!
//! Sources (istio/istio, master as of 2026-08, same logic since ~1.6 with the
//! exportTo refinements of 1.10+): `pilot/pkg/model/push_context.go`
//! (`setDestinationRules`, `destinationRule`: the namespace search order,
//! `getExportedDestinationRuleFromNamespace`); `pilot/pkg/model/destination_rule.go`
//! (`mergeDestinationRule`); `pilot/pkg/model/sidecar.go`
//! (`SidecarScope.DestinationRule`: workloadSelector); istio.io
//! `ops/best-practices/traffic-management` ("Cross-namespace configuration").

use std::collections::{BTreeMap, BTreeSet};

use super::super::host;
use super::super::object::labels_match;
use super::types::{DestinationRule, Subset, TrafficPolicy};

/// Default root namespace (`meshConfig.rootNamespace`).
pub const DEFAULT_ROOT_NAMESPACE: &str = "istio-system";

/// Where in Istio's search the winning rule was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LookupLevel {
    /// The client's own namespace (all its rules, `exportTo: "."` included).
    ClientNamespace,
    /// The service's namespace (rules exported to the client).
    ServiceNamespace,
    /// `meshConfig.rootNamespace` (rules exported to the client).
    RootNamespace,
}

/// Why a rule that names this host did not (fully) apply.
#[derive(Debug, Clone, PartialEq)]
pub enum ShadowReason {
    /// A rule in a namespace Istio searches earlier matched; no field falls back.
    EarlierNamespaceWon { winner: String, level: LookupLevel },
    /// Same namespace, a more specific host matched.
    LessSpecificHost { winner_host: String },
    /// A workloadSelector rule selecting this client was preferred (over this
    /// selector-less rule, or over this younger selecting rule).
    SelectorRuleWon { winner: String },
    /// Its workloadSelector does not select this client.
    SelectorDoesNotSelectClient,
    /// A workloadSelector rule outside the client's namespace (they only apply there).
    SelectorOutsideClientNamespace,
    /// Merged with an older rule for the same host: its top-level trafficPolicy was discarded.
    TrafficPolicyDiscardedInMerge { kept_from: String },
    /// Not exported to the client's namespace (kept to its own namespace by
    /// `exportTo: ["."]`, or exported only to others).
    NotExported,
    /// A more specific rule for this host in the same namespace is not exported
    /// to the client, so Istio skipped the whole namespace.
    NamespaceSkippedForUnexportedRule {
        unexported: String,
        /// The host of that more specific rule.
        winner_host: String,
    },
    /// In a namespace Istio does not search for this client/service.
    NamespaceNotSearched,
    /// Its exportTo hides it even from its own namespace.
    HiddenFromOwnNamespace,
    /// In a searched namespace, but the search ended without reaching it
    /// (nothing applies to this client).
    NotReached,
}

/// A rule that names the host but lost.
#[derive(Debug, Clone, PartialEq)]
pub struct Shadowed {
    pub rule: DestinationRule,
    pub reason: ShadowReason,
    /// The reason in plain words (from [`super::explain`]; empty in [`decide`]'s result).
    pub explanation: String,
}

/// A subset of the merged rule, with the rule that defined it.
#[derive(Debug, Clone, PartialEq)]
pub struct SelectedSubset {
    pub subset: Subset,
    /// `ns/name` of the DestinationRule that defined it.
    pub from: String,
}

/// What merging several rules for the same host did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MergeNote {
    /// A later rule's subset was dropped: an older rule defines the name.
    SubsetDropped {
        subset: String,
        rule: String,
        kept_from: String,
    },
    /// Several rules for one host in one namespace were merged (oldest first).
    Merged {
        rules: Vec<String>,
        host: String,
        namespace: String,
    },
}

/// Why no rule applies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WhyNone {
    /// The most specific host in the client's namespace has only
    /// workloadSelector rules that do not select the client: Istio stops there.
    SelectorsDoNotSelectClient { best_host: String },
    /// No rule in the searched namespaces matches.
    NoMatch,
}

/// The outcome of Istio's DestinationRule lookup for one client and one service.
#[derive(Debug, Clone, PartialEq)]
pub struct Selection {
    pub level: LookupLevel,
    /// Namespace the applied rule(s) live in.
    pub namespace: String,
    /// The (resolved) host of the applied rule(s), e.g. `*.local`.
    pub matched_host: String,
    /// Applied rules, merge order (oldest first). Never empty.
    pub rules: Vec<DestinationRule>,
    /// Whose top-level trafficPolicy is in force (`ns/name`); `None` if no rule had one.
    pub policy_from: Option<String>,
    /// The merged top-level traffic policy.
    pub traffic_policy: Option<TrafficPolicy>,
    /// Merged subsets (first definition of a name wins).
    pub subsets: Vec<SelectedSubset>,
    /// Other rules naming this host that lost or are invisible to this client.
    pub shadowed: Vec<Shadowed>,
    /// What the merge did, typed.
    pub merge_notes: Vec<MergeNote>,
    /// The merge notes in plain words (from [`super::explain`]).
    pub notes: Vec<String>,
    /// The client namespace and service the lookup was for (for explanations).
    pub client_namespace: String,
    pub service_fqdn: String,
}

/// The whole lookup, including the case where no rule applies.
#[derive(Debug, Clone, PartialEq)]
pub struct Lookup {
    pub selection: Option<Selection>,
    /// When nothing applies: rules that name the host but are out of reach, and why.
    /// (When something applies, they are in `selection.shadowed`.)
    pub unapplied: Vec<Shadowed>,
    /// Why nothing applies (when `selection` is `None`).
    pub why_none_reason: Option<WhyNone>,
    /// The same in plain words.
    pub why_none: Option<String>,
}

/// One lookup's question.
#[derive(Debug, Clone, Copy)]
pub struct LookupQuery<'a> {
    pub client_ns: &'a str,
    pub client_labels: &'a BTreeMap<String, String>,
    /// The service's FQDN (resolved with the cluster domain).
    pub service_fqdn: &'a str,
    pub service_ns: &'a str,
    /// `meshConfig.rootNamespace`; empty = [`DEFAULT_ROOT_NAMESPACE`].
    pub root_ns: &'a str,
}

impl LookupQuery<'_> {
    /// The root namespace with the default applied.
    pub fn root(&self) -> &str {
        if self.root_ns.is_empty() {
            DEFAULT_ROOT_NAMESPACE
        } else {
            self.root_ns
        }
    }
    /// One of the namespaces Istio searches for this client and service.
    pub(super) fn searches(&self, ns: &str) -> bool {
        ns == self.client_ns || ns == self.service_ns || ns == self.root()
    }
}

/// The winning namespace and its rules.
struct Found<'r> {
    level: LookupLevel,
    namespace: String,
    host: String,
    applied: Vec<&'r DestinationRule>,
}

/// What one step of the namespace search decided.
enum Step<'r> {
    Found(Found<'r>),
    Stop(WhyNone),
    Next,
}

struct Search<'r, 'q> {
    q: &'q LookupQuery<'q>,
    /// Every rule whose host covers the service, oldest first.
    matching: Vec<&'r DestinationRule>,
    handled: BTreeSet<String>,
    shadowed: Vec<Shadowed>,
}

impl<'r> Search<'r, '_> {
    /// Record why `r` lost, once per rule.
    fn push(&mut self, r: &DestinationRule, reason: ShadowReason) {
        if self.handled.insert(r.key()) {
            self.shadowed.push(Shadowed {
                rule: r.clone(),
                reason,
                explanation: String::new(),
            });
        }
    }

    fn in_namespace(&self, ns: &str) -> Vec<&'r DestinationRule> {
        self.matching
            .iter()
            .copied()
            .filter(|r| r.meta.namespace == ns)
            .collect()
    }

    /// `pool`'s rules with a host other than `best` lose to it.
    fn less_specific(&mut self, pool: &[&'r DestinationRule], best: &str) {
        for r in pool.iter().filter(|r| r.host_fqdn != best) {
            self.push(
                r,
                ShadowReason::LessSpecificHost {
                    winner_host: best.to_string(),
                },
            );
        }
    }

    /// Step 1: every rule visible in the client's namespace (for a client in
    /// the root namespace only its private rules); workloadSelector rules
    /// selecting the client beat selector-less ones.
    fn client_namespace(&mut self) -> Step<'r> {
        let q = self.q;
        let in_root = q.client_ns == q.root();
        let own = self.in_namespace(q.client_ns);
        for r in own
            .iter()
            .filter(|r| !in_root && !r.visible_in_own_namespace())
        {
            self.push(r, ShadowReason::HiddenFromOwnNamespace);
        }
        let pool: Vec<&DestinationRule> = own
            .into_iter()
            .filter(|r| {
                if in_root {
                    r.private_only()
                } else {
                    r.visible_in_own_namespace()
                }
            })
            .collect();
        let Some(best) = most_specific(q.service_fqdn, &pool) else {
            return Step::Next;
        };
        self.less_specific(&pool, &best);
        let group: Vec<&DestinationRule> =
            pool.into_iter().filter(|r| r.host_fqdn == best).collect();
        let selects = |r: &DestinationRule| {
            r.workload_selector
                .as_ref()
                .map(|s| labels_match(s, q.client_labels))
        };
        for r in group.iter().filter(|r| selects(r) == Some(false)) {
            self.push(r, ShadowReason::SelectorDoesNotSelectClient);
        }
        let selecting: Vec<&DestinationRule> = group
            .iter()
            .copied()
            .filter(|r| selects(r) == Some(true))
            .collect();
        let applied = match selecting.first() {
            Some(first) => {
                // The oldest selecting rule wins; same-selector rules would merge in
                // Istio, other selecting rules are ignored, and so are selector-less ones.
                let won = ShadowReason::SelectorRuleWon {
                    winner: first.key(),
                };
                let mut applied = vec![*first];
                for r in selecting.iter().skip(1) {
                    if r.workload_selector == first.workload_selector {
                        applied.push(r);
                    } else {
                        self.push(r, won.clone());
                    }
                }
                for r in group.iter().filter(|r| r.workload_selector.is_none()) {
                    self.push(r, won.clone());
                }
                applied
            }
            None => group
                .into_iter()
                .filter(|r| r.workload_selector.is_none())
                .collect(),
        };
        if applied.is_empty() {
            return Step::Stop(WhyNone::SelectorsDoNotSelectClient { best_host: best });
        }
        Step::Found(Found {
            level: LookupLevel::ClientNamespace,
            namespace: q.client_ns.to_string(),
            host: best,
            applied,
        })
    }

    /// Steps 2 and 3: rules of `ns` not private to it and exported to the
    /// client. If the most specific one is not exported, Istio skips the
    /// whole namespace (it filters after picking the host).
    fn exported_namespace(&mut self, ns: &str, level: LookupLevel) -> Step<'r> {
        let q = self.q;
        let in_ns: Vec<&DestinationRule> = self
            .in_namespace(ns)
            .into_iter()
            .filter(|r| r.workload_selector.is_none())
            .collect();
        if ns != q.client_ns {
            for r in in_ns.iter().filter(|r| r.private_only()) {
                self.push(r, ShadowReason::NotExported);
            }
        }
        let pool: Vec<&DestinationRule> = in_ns.into_iter().filter(|r| !r.private_only()).collect();
        let Some(best) = most_specific(q.service_fqdn, &pool) else {
            return Step::Next;
        };
        let group: Vec<&DestinationRule> = pool
            .iter()
            .copied()
            .filter(|r| r.host_fqdn == best)
            .collect();
        for r in group.iter().filter(|r| !r.exported_to(q.client_ns)) {
            self.push(r, ShadowReason::NotExported);
        }
        let visible: Vec<&DestinationRule> = group
            .iter()
            .copied()
            .filter(|r| r.exported_to(q.client_ns))
            .collect();
        if visible.is_empty() {
            let skipped = ShadowReason::NamespaceSkippedForUnexportedRule {
                unexported: group.first().map(|r| r.key()).unwrap_or_default(),
                winner_host: best.clone(),
            };
            for r in pool.iter().filter(|r| r.host_fqdn != best) {
                self.push(r, skipped.clone());
            }
            return Step::Next;
        }
        self.less_specific(&pool, &best);
        Step::Found(Found {
            level,
            namespace: ns.to_string(),
            host: best,
            applied: visible,
        })
    }

    /// The rules the search never got to: out of reach (`NotReached`,
    /// `NamespaceNotSearched`), or beaten by the winner (`EarlierNamespaceWon`).
    fn leftovers(&mut self, winner: Option<(&str, LookupLevel)>) {
        let q = self.q;
        for r in self.matching.clone() {
            let reason = match winner {
                _ if !q.searches(&r.meta.namespace) => ShadowReason::NamespaceNotSearched,
                Some((w, level)) => ShadowReason::EarlierNamespaceWon {
                    winner: w.to_string(),
                    level,
                },
                None => ShadowReason::NotReached,
            };
            self.push(r, reason);
        }
    }

    /// Merge the applied rules (destination_rule.go `mergeDestinationRule`).
    fn merge(&mut self, found: Found<'r>) -> Selection {
        for r in &found.applied {
            self.handled.insert(r.key());
        }
        let mut sel = Selection {
            level: found.level,
            namespace: found.namespace,
            matched_host: found.host,
            rules: found.applied.iter().map(|r| (*r).clone()).collect(),
            policy_from: None,
            traffic_policy: None,
            subsets: Vec::new(),
            shadowed: Vec::new(),
            merge_notes: Vec::new(),
            notes: Vec::new(),
            client_namespace: self.q.client_ns.to_string(),
            service_fqdn: self.q.service_fqdn.to_string(),
        };
        for r in &found.applied {
            if let Some(tp) = &r.traffic_policy {
                match &sel.policy_from {
                    None => {
                        sel.traffic_policy = Some(tp.clone());
                        sel.policy_from = Some(r.key());
                    }
                    Some(kept) => self.shadowed.push(Shadowed {
                        rule: (*r).clone(),
                        reason: ShadowReason::TrafficPolicyDiscardedInMerge {
                            kept_from: kept.clone(),
                        },
                        explanation: String::new(),
                    }),
                }
            }
            for s in &r.subsets {
                match sel.subsets.iter().find(|x| x.subset.name == s.name) {
                    Some(existing) => sel.merge_notes.push(MergeNote::SubsetDropped {
                        subset: s.name.clone(),
                        rule: r.key(),
                        kept_from: existing.from.clone(),
                    }),
                    None => sel.subsets.push(SelectedSubset {
                        subset: s.clone(),
                        from: r.key(),
                    }),
                }
            }
        }
        if found.applied.len() > 1 {
            sel.merge_notes.push(MergeNote::Merged {
                rules: found.applied.iter().map(|r| r.key()).collect(),
                host: sel.matched_host.clone(),
                namespace: sel.namespace.clone(),
            });
        }
        sel
    }
}

fn most_specific(service_fqdn: &str, pool: &[&DestinationRule]) -> Option<String> {
    host::most_specific_match(service_fqdn, pool.iter().map(|r| r.host_fqdn.as_str()))
        .map(str::to_string)
}

/// Istio's DestinationRule lookup, typed: the prose fields (`explanation`,
/// `notes`, `why_none`) are left empty; [`lookup`] fills them.
///
/// Order (push_context.go `destinationRule`):
/// 1. the client's namespace: every rule visible in it (`exportTo` empty, `*`,
///    `.`, or the namespace) — for a client *in* the root namespace only the
///    root namespace's private rules;
/// 2. the service's namespace: rules not private to it and exported to the client;
/// 3. the root namespace (default `istio-system`): same as 2.
///
/// The first namespace with a matching host wins and nothing falls back to a
/// broader rule. Within a namespace the most specific host wins
/// (`MostSpecificHostMatch`). In steps 2–3, if that most specific rule is not
/// exported to the client the whole namespace yields nothing.
///
/// workloadSelector rules count only in the client's namespace, outbound, and
/// beat the selector-less rule when they select the client
/// (sidecar.go `SidecarScope.DestinationRule`). If the most specific host in
/// the client's namespace has only selector rules and none selects the
/// client, **no** rule applies (the search already stopped in that namespace).
///
/// Several selector-less rules for the same host in the same namespace are
/// merged (destination_rule.go `mergeDestinationRule`): subsets concatenated
/// (duplicate names dropped), the oldest rule's top-level trafficPolicy wins
/// (creationTimestamp, then name), later ones are discarded; a later rule's
/// policy is used only if no earlier rule had one.
///
/// Simplifications: the mesh default `exportTo` is assumed to be `*`;
/// Istio ≥1.13's "enhanced merge" (rules with different `exportTo` kept apart)
/// is not modelled; selector and selector-less rules are not merged together.
pub fn decide(rules: &[DestinationRule], q: &LookupQuery<'_>) -> Lookup {
    let mut matching: Vec<&DestinationRule> = rules
        .iter()
        .filter(|r| host::matches(&r.host_fqdn, q.service_fqdn))
        .collect();
    matching.sort_by(|a, b| a.meta.age_order(&b.meta));
    let mut s = Search {
        q,
        matching,
        handled: BTreeSet::new(),
        shadowed: Vec::new(),
    };
    let mut step = s.client_namespace();
    // Selector rules outside the client's namespace never apply.
    for r in s.matching.clone() {
        if r.workload_selector.is_some() && r.meta.namespace != q.client_ns {
            s.push(r, ShadowReason::SelectorOutsideClientNamespace);
        }
    }
    let mut searched: Vec<(&str, LookupLevel)> = Vec::new();
    if !q.service_ns.is_empty() {
        searched.push((q.service_ns, LookupLevel::ServiceNamespace));
    }
    if q.service_ns != q.root() {
        searched.push((q.root(), LookupLevel::RootNamespace));
    }
    for (ns, level) in searched {
        if !matches!(step, Step::Next) {
            break;
        }
        step = s.exported_namespace(ns, level);
    }
    match step {
        Step::Found(found) => {
            let mut sel = s.merge(found);
            let winner = sel.rules.first().map(|r| r.key()).unwrap_or_default();
            s.leftovers(Some((&winner, sel.level)));
            sel.shadowed = s.shadowed;
            Lookup {
                selection: Some(sel),
                unapplied: Vec::new(),
                why_none_reason: None,
                why_none: None,
            }
        }
        Step::Stop(why) => none(s, why),
        Step::Next => none(s, WhyNone::NoMatch),
    }
}

fn none(mut s: Search<'_, '_>, why: WhyNone) -> Lookup {
    s.leftovers(None);
    Lookup {
        selection: None,
        unapplied: s.shadowed,
        why_none_reason: Some(why),
        why_none: None,
    }
}

/// Istio's DestinationRule lookup for `client_ns`/`client_labels` calling
/// `service_fqdn` (a Kubernetes service in `service_ns`), with every reason
/// also in plain words. See [`decide`] for Istio's rules.
pub fn lookup(
    rules: &[DestinationRule],
    client_ns: &str,
    client_labels: &BTreeMap<String, String>,
    service_fqdn: &str,
    service_ns: &str,
    root_ns: &str,
) -> Lookup {
    let q = LookupQuery {
        client_ns,
        client_labels,
        service_fqdn,
        service_ns,
        root_ns,
    };
    let mut lk = decide(rules, &q);
    super::explain::narrate_lookup(&mut lk, &q);
    lk
}

/// Istio's DestinationRule lookup; `None` when no rule applies to this client.
/// See [`lookup`] for the details and for the rules that lost.
pub fn select(
    rules: &[DestinationRule],
    client_ns: &str,
    client_labels: &BTreeMap<String, String>,
    service_fqdn: &str,
    service_ns: &str,
    root_ns: &str,
) -> Option<Selection> {
    lookup(
        rules,
        client_ns,
        client_labels,
        service_fqdn,
        service_ns,
        root_ns,
    )
    .selection
}

impl Selection {
    /// The rule whose settings are in force (the oldest applied one).
    /// `rules` is never empty when built by [`lookup`].
    pub fn primary(&self) -> Option<&DestinationRule> {
        self.rules.first()
    }

    pub fn subset(&self, name: &str) -> Option<&SelectedSubset> {
        self.subsets.iter().find(|s| s.subset.name == name)
    }
}
