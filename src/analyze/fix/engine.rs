//! Choosing the fix: candidates in the order the cause declares, each
//! applied to a copy of the model and checked against every pair the
//! snapshot knows; the first that repairs and hurts nothing is the fix.

use crate::analyze::catalog::Cause;
use crate::model::{GapKind, GapSource, Mesh};

use super::blast::{self, Diff};
use super::candidate::Candidate;
use super::problem::Problem;
use super::{subset, text, tls, traffic};
use super::{Effect, Fix, FixKind, FixManifest, Fixes, Rejected};

/// Every candidate of `kind` for `problem`.
fn generate(kind: FixKind, mesh: &Mesh, problem: &Problem) -> Vec<Candidate> {
    match problem {
        Problem::Tls(p) => tls::generate(kind, mesh, p),
        Problem::Pool(p) => traffic::generate(kind, mesh, p),
        Problem::Subset(p) => subset::generate(kind, mesh, p),
    }
}

const DR: &str = "destinationrules.networking.istio.io";
const SERVER_POLICIES: &[&str] = &[
    "peerauthentications.security.istio.io",
    "policies.authentication.istio.io",
    "meshpolicies.authentication.istio.io",
];

/// Why no fix can be computed: a list that could hide a rule or policy
/// deciding for this problem was not read.
fn hidden(mesh: &Mesh, problem: &Problem) -> Option<String> {
    let svc = problem.svc();
    let client_ns = problem.client().namespace;
    let root = mesh.settings.root_namespace.clone();
    let mut wanted: Vec<(&str, String)> = vec![
        (DR, client_ns.clone()),
        (DR, svc.key.namespace.clone()),
        (DR, root.clone()),
    ];
    if matches!(problem, Problem::Tls(_)) {
        for r in SERVER_POLICIES {
            wanted.push((r, svc.key.namespace.clone()));
            wanted.push((r, root.clone()));
        }
    }
    // The mesh config decides auto mTLS, the root namespace and the
    // defaults every rule is read against: a fix computed on assumed
    // defaults may change nothing, or the wrong thing.
    let mesh_config = mesh.gaps.iter().find(|g| {
        matches!(g.source, GapSource::MeshConfig { .. })
            && matches!(
                g.kind,
                GapKind::Forbidden | GapKind::Unreachable | GapKind::Other
            )
    });
    if let Some(g) = mesh_config {
        return Some(format!(
            "cannot be computed: the mesh config ({}) could not be read ({}); auto mTLS, the root namespace and Istio's defaults decide this call, and a fix computed on assumed defaults may change nothing. Grant get on it and run again",
            match &g.source {
                GapSource::MeshConfig { namespace } => format!("ConfigMap {namespace}/istio"),
                _ => "ConfigMap istio".to_string(),
            },
            g.detail
        ));
    }
    for (resource, ns) in wanted {
        if let Some(g) = mesh.gaps.iter().find(|g| g.may_hide(resource, &ns)) {
            return Some(format!(
                "cannot be computed: {resource} in namespace {ns} could not be read ({}); a rule or policy there may decide this call, override any rule printed here, or be the one to edit. Grant get/list on it and run again",
                g.detail
            ));
        }
    }
    None
}

/// The config already predicts the call works: the sidecars run older
/// config, and no change to the API objects is the fix.
fn already_right(mesh: &Mesh, problem: &Problem) -> Option<String> {
    let Problem::Tls(p) = problem else {
        return None;
    };
    let s = blast::pair_state(mesh, &p.caller, p.svc, p.port)?;
    (s.outcome == "ok").then(|| format!(
        "no config change: the API objects already make {} send {} to {}:{}, which the server ({}) accepts; the sidecars run older config (see PROXY_CONFIG_DIFFERS): `istioctl proxy-status`, and restart the pod whose config is stale",
        p.caller.label, s.wire, p.svc.fqdn, p.port.number, s.server
    ))
}

/// What the check cannot see, in words.
fn limits(mesh: &Mesh, pairs: &blast::Pairs) -> Vec<String> {
    let mut namespaces: Vec<&str> = mesh.pods.iter().map(|p| p.key.namespace.as_str()).collect();
    namespaces.sort_unstable();
    namespaces.dedup();
    let mut out = vec![format!(
        "checked {} from the pods of {} {}; callers elsewhere, outside the cluster or in namespaces that could not be listed were not seen (docs/fixes.md)",
        crate::words::count(pairs.len(), "(caller, service, port) pair", "(caller, service, port) pairs"),
        crate::words::noun(namespaces.len(), "namespace", "namespaces"),
        if namespaces.is_empty() { "none".to_string() } else { namespaces.join(", ") }
    )];
    if pairs.truncated {
        out.push(format!("the check stopped at {} pairs", blast::MAX_PAIRS));
    }
    out
}

/// Which services (by index) a candidate can change anything for: a
/// DestinationRule reaches the services its host matches (before or after
/// the change), a VirtualService the hosts its routes name; a server policy
/// may reach any (auto mTLS reads namespace modes), so every one counts.
fn reach(mesh: &Mesh, fixed: &Mesh, c: &Candidate) -> Vec<bool> {
    let mut hosts: Vec<String> = Vec::new();
    let mut all = false;
    for ch in &c.changes {
        let r = ch.manifest.object_ref();
        match r.kind.as_str() {
            "DestinationRule" => {
                for m in [mesh, fixed] {
                    hosts.extend(
                        m.config
                            .destination_rules
                            .iter()
                            .filter(|d| d.object_ref() == r)
                            .map(|d| d.host_fqdn.clone()),
                    );
                }
            }
            "VirtualService" => {
                for m in [mesh, fixed] {
                    hosts.extend(
                        m.config
                            .virtual_services
                            .iter()
                            .filter(|v| v.meta.object_ref() == r)
                            .flat_map(|v| {
                                v.destinations(crate::model::networking::RouteKind::Http)
                                    .map(|d| d.host_fqdn.clone())
                                    .collect::<Vec<_>>()
                            }),
                    );
                }
            }
            _ => all = true,
        }
    }
    mesh.services
        .iter()
        .map(|s| {
            all || hosts
                .iter()
                .any(|h| crate::istio::host::matches(h, &s.fqdn))
        })
        .collect()
}

fn apply(mesh: &Mesh, c: &Candidate) -> Result<Mesh, String> {
    let mut err = None;
    let domain = mesh.domain.suffix.clone();
    let fixed = mesh.with_config(|cfg| {
        for ch in &c.changes {
            if let Err(e) = cfg.apply(&ch.manifest, &domain) {
                err = Some(e);
            }
        }
    });
    match err {
        Some(e) => Err(e),
        None => Ok(fixed),
    }
}

fn manifests(c: &Candidate) -> Vec<FixManifest> {
    c.changes
        .iter()
        .map(|ch| FixManifest {
            action: ch.action,
            object: ch.manifest.object_ref().to_string(),
            file: text::file_name(&ch.manifest),
            yaml: ch.manifest.to_yaml(),
            manifest: ch.manifest.clone(),
        })
        .collect()
}

/// Why a candidate is not the fix; `None` when it is safe and repairs.
fn verdict(c: &Candidate, d: &Diff, repaired: Result<(), String>) -> Option<String> {
    let mut why = Vec::new();
    if let Some(r) = &c.refusal {
        why.push(r.clone());
    }
    if !d.breaks.is_empty() {
        why.push(format!(
            "would break {}",
            crate::words::counts(d.breaks.len(), "working call")
        ));
    }
    if !d.downgrades.is_empty() {
        why.push(format!(
            "would silently downgrade {} from mTLS to plaintext",
            crate::words::counts(d.downgrades.len(), "sidecar-to-sidecar call")
        ));
    }
    if let Err(e) = repaired {
        why.push(e);
    }
    (!why.is_empty()).then(|| why.join("; "))
}

fn chosen(mesh: &Mesh, cause: Cause, problem: &Problem, c: Candidate, d: Diff) -> Fix {
    let ms = manifests(&c);
    let apply = (!ms.is_empty()).then(|| {
        let refs: Vec<&crate::model::Manifest> = ms.iter().map(|m| &m.manifest).collect();
        text::apply_block(&refs)
    });
    Fix {
        kind: c.kind,
        summary: c.summary,
        manifests: ms,
        apply,
        effect: Some(Effect {
            repairs: d.repairs,
            changes: d.changes,
            checked: d.checked,
            unchanged: d.unchanged,
            unchanged_sample: d.unchanged_sample,
        }),
        verify: Some(text::verify(mesh, cause, problem)),
        notes: c.notes,
    }
}

/// The fixes of one finding of `cause`: candidates of every kind the
/// catalog declares for it, in that order, checked against the mesh.
pub fn fixes_for(mesh: &Mesh, cause: Cause, problem: &Problem) -> Fixes {
    if !mesh.search_fixes {
        return Fixes {
            none: Some(format!(
                "not searched by scan: `kubectl mesh503 diagnose svc/{} -n {}` checks each candidate against the mesh",
                problem.svc().key.name,
                problem.svc().key.namespace
            )),
            ..Fixes::default()
        };
    }
    if let Some(why) = hidden(mesh, problem).or_else(|| already_right(mesh, problem)) {
        return Fixes {
            none: Some(why),
            ..Fixes::default()
        };
    }
    let candidates: Vec<Candidate> = cause
        .declaration()
        .fix
        .iter()
        .flat_map(|k| generate(*k, mesh, problem))
        .collect();
    let callers = blast::callers(mesh, &problem.caller());
    let before = blast::evaluate(mesh, &callers);
    let mut out = Fixes {
        limits: limits(mesh, &before),
        ..Fixes::default()
    };
    for c in candidates {
        let fixed = match apply(mesh, &c) {
            Ok(m) => m,
            Err(e) => {
                out.rejected.push(Rejected {
                    kind: c.kind,
                    summary: c.summary.clone(),
                    reason: format!("cannot be evaluated: {e}"),
                    manifests: manifests(&c),
                    breaks: vec![],
                });
                continue;
            }
        };
        let reach = reach(mesh, &fixed, &c);
        let after = blast::evaluate_some(&fixed, &callers, Some((&reach, &before)));
        let d = blast::diff(mesh, &callers, &before, &after, problem.svc());
        match verdict(&c, &d, problem.repaired(&fixed)) {
            None if out.chosen.is_none() => out.chosen = Some(chosen(mesh, cause, problem, c, d)),
            // A safe alternative after the chosen one: not needed.
            None => {}
            Some(reason) => {
                let mut breaks = d.breaks;
                breaks.extend(d.downgrades);
                out.rejected.push(Rejected {
                    kind: c.kind,
                    manifests: manifests(&c),
                    summary: c.summary,
                    reason,
                    breaks,
                });
            }
        }
    }
    if out.chosen.is_none() {
        out.none = Some(if out.rejected.is_empty() {
            "no candidate fix applies to this configuration".into()
        } else {
            "no safe fix: every candidate would break or downgrade a call that works, or does not repair this one (rejected below); change it by hand with those pairs in mind".into()
        });
    }
    out
}
