//! Candidate fixes for a route to a subset no DestinationRule in force
//! defines (`503 NC`): define it where the route's clients find it, with
//! the labels of the pods that carry its name (`version: <subset>` first),
//! in the rule in force for the host, or in a new rule for the host (a copy
//! of a wider rule in force, so its TLS and pool settings stay) — never in
//! a rule that does not exist. When no pod carries the subset's name, a
//! subset would select nothing (`503 UH` instead): the route goes back to
//! the Service's pods until pods of the subset exist.

use std::collections::BTreeMap;

use crate::model::decisions::Client;
use crate::model::Mesh;

use super::candidate::{self, Candidate, Change};
use super::problem::SubsetProblem;
use super::{Action, FixKind};

pub fn generate(kind: FixKind, mesh: &Mesh, p: &SubsetProblem) -> Vec<Candidate> {
    match kind {
        FixKind::DefineSubset => define(mesh, p),
        FixKind::RouteToExistingPods => route_to_pods(mesh, p),
        _ => vec![],
    }
}

/// The labels of the pods the subset's name stands for: a label whose
/// value is the name (`version` preferred), carried by a ready pod.
pub fn subset_labels(mesh: &Mesh, p: &SubsetProblem) -> Option<BTreeMap<String, String>> {
    let pods: Vec<_> = mesh.backing_pods(p.svc).filter(|pod| pod.ready).collect();
    let keys = ["version", "app.kubernetes.io/version"];
    for k in keys {
        if pods
            .iter()
            .any(|pod| pod.labels.get(k).map(String::as_str) == Some(p.subset.as_str()))
        {
            return Some(BTreeMap::from([(k.to_string(), p.subset.clone())]));
        }
    }
    pods.iter().find_map(|pod| {
        pod.labels
            .iter()
            .find(|(k, v)| **v == p.subset && !k.contains("hash"))
            .map(|(k, v)| BTreeMap::from([(k.clone(), v.clone())]))
    })
}

fn define(mesh: &Mesh, p: &SubsetProblem) -> Vec<Candidate> {
    let Some(labels) = subset_labels(mesh, p) else {
        return vec![];
    };
    let client = Client::in_namespace(&p.vs.namespace);
    let f = candidate::in_force(mesh, &client, p.svc, p.port);
    let shown: Vec<String> = labels.iter().map(|(k, v)| format!("{k}: {v}")).collect();
    match f {
        Some(f) if !f.wide => {
            let Some(change) =
                candidate::edit(mesh, &f.rule, |m| m.with_subset(&p.subset, &labels))
            else {
                return vec![];
            };
            vec![Candidate::new(
                FixKind::DefineSubset,
                format!(
                    "add subset {} ({}) to DestinationRule {}, which is in force for {} from {}",
                    p.subset,
                    shown.join(", "),
                    f.rule.key(),
                    p.svc.fqdn,
                    p.vs.namespace
                ),
                vec![change],
            )]
        }
        f => {
            let ns = candidate::new_rule_namespace(mesh, p.svc, f.as_ref());
            let name = candidate::free_name(mesh, &ns, &p.svc.key.name);
            let change = candidate::new_host_rule(mesh, p.svc, &ns, &name, f.as_ref(), |m| {
                m.with_subset(&p.subset, &labels)
            });
            vec![Candidate::new(
                FixKind::DefineSubset,
                format!(
                    "create DestinationRule {ns}/{name} for {} with subset {} ({}){}",
                    p.svc.fqdn,
                    p.subset,
                    shown.join(", "),
                    f.map(|f| format!(", keeping the rest of {}'s policy for it", f.rule.key()))
                        .unwrap_or_default()
                ),
                vec![change],
            )]
        }
    }
}

fn route_to_pods(mesh: &Mesh, p: &SubsetProblem) -> Vec<Candidate> {
    if subset_labels(mesh, p).is_some() {
        return vec![];
    }
    let Some(base) = mesh.config.manifest(&p.vs) else {
        return vec![];
    };
    vec![Candidate::new(
        FixKind::RouteToExistingPods,
        format!(
            "drop `subset: {}` from the routes of VirtualService {} to {}: no pod of {} carries a label {}, so a subset would select nothing; the routes go to every pod of the Service until pods of {} exist (then define the subset, and route to it again)",
            p.subset,
            p.vs.key(),
            p.host,
            p.svc.key,
            p.subset,
            p.subset
        ),
        vec![Change {
            action: Action::Edit,
            manifest: base.without_route_subset(&p.host, &p.subset),
        }],
    )]
}
