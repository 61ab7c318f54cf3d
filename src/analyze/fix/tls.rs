//! Candidate fixes for the mTLS causes (plaintext → STRICT, mTLS → a
//! plaintext server, TLS origination → a sidecar), one generator per
//! [`FixKind`], each returning nothing when it does not apply.
//!
//! Client side (istio/istio cluster_tls.go `buildUpstreamTLSSettings`: a
//! rule's `tls.mode` always wins): set the mode the server accepts in the
//! rule in force, or in a new rule for this host only. Server side, only
//! when the server's own policy dropped mTLS by omission: a legacy
//! `Policy` that names the service and has no `peers` (JWT-only; the
//! v1alpha1 authn plugin then gives the service no mTLS at all while the
//! mesh's clients still send it: istio/istio#7464, #6668, #8218). An
//! explicit `DISABLE` (PeerAuthentication or port-level) is taken as meant:
//! the client is aligned with it.

use crate::istio::authn::LegacyMtls;
use crate::istio::authn::{ModeSource, MtlsMode};
use crate::istio::destination_rule::TlsMode;
use crate::model::{Manifest, Mesh, TlsAt};

use super::candidate::{self, Candidate, Change, InForce};
use super::problem::TlsProblem;
use super::{release, Action, FixKind};

pub fn generate(kind: FixKind, mesh: &Mesh, p: &TlsProblem) -> Vec<Candidate> {
    let f = candidate::in_force(mesh, &p.caller.client, p.svc, p.port);
    let mut out = match kind {
        FixKind::EditServerPolicy => server_policy(mesh, p),
        FixKind::EditDestinationRule => edit_rule(mesh, p, f.as_ref()),
        FixKind::NewDestinationRule => new_rule(mesh, p, f.as_ref()),
        FixKind::ScopedDestinationRule => scoped_rule(mesh, p, f.as_ref()),
        FixKind::EditWideDestinationRule => edit_wide(mesh, p, f.as_ref()),
        _ => vec![],
    };
    if p.want == TlsMode::Disable && !p.pod.has_sidecar() {
        for c in &mut out {
            c.notes.push(format!(
                "Or inject a sidecar into {}'s pods: then the mesh's mTLS reaches them and no plaintext rule is needed.",
                p.svc.key.name
            ));
        }
    }
    out
}

fn mode<'a>(p: &'a TlsProblem) -> &'a str {
    p.want.as_str()
}

/// The rule in force for this host is edited (its own host only).
fn edit_rule(mesh: &Mesh, p: &TlsProblem, f: Option<&InForce>) -> Vec<Candidate> {
    let Some(f) = f.filter(|f| !f.wide) else {
        return vec![];
    };
    let Some(change) = candidate::edit(mesh, &f.rule, |m| m.with_tls_mode(f.at, mode(p))) else {
        return vec![];
    };
    vec![Candidate::new(
        FixKind::EditDestinationRule,
        format!(
            "set tls.mode {} in {} of DestinationRule {}",
            mode(p),
            f.where_(),
            f.rule.key()
        ),
        vec![change],
    )]
}

fn new_name(mesh: &Mesh, p: &TlsProblem, ns: &str) -> String {
    let suffix = if p.want == TlsMode::Disable {
        "plaintext"
    } else {
        "mtls"
    };
    candidate::free_name(mesh, ns, &format!("{}-{suffix}", p.svc.key.name))
}

/// `, keeping the rest of ns/wide's policy for it`.
fn keeping(f: Option<&InForce>) -> String {
    f.map(|f| format!(" (the rest of {}'s policy kept for it)", f.rule.key()))
        .unwrap_or_default()
}

/// A rule for this host only, where the lookup finds it first: when the
/// rule in force is wide, or when none applies.
fn new_rule(mesh: &Mesh, p: &TlsProblem, f: Option<&InForce>) -> Vec<Candidate> {
    if f.is_some_and(|f| !f.wide) {
        return vec![];
    }
    let ns = candidate::new_rule_namespace(mesh, p.svc, f);
    let name = new_name(mesh, p, &ns);
    let at = f.map(|f| f.at).unwrap_or(TlsAt::TopLevel);
    let change =
        candidate::new_host_rule(mesh, p.svc, &ns, &name, f, |m| m.with_tls_mode(at, mode(p)));
    vec![Candidate::new(
        FixKind::NewDestinationRule,
        format!(
            "create DestinationRule {ns}/{name} for {} only, with tls.mode {}{}",
            p.svc.fqdn,
            mode(p),
            keeping(f)
        ),
        vec![change],
    )]
}

/// A rule for this host and the failing client's workload only, in the
/// client's namespace (workloadSelector rules apply nowhere else).
fn scoped_rule(mesh: &Mesh, p: &TlsProblem, f: Option<&InForce>) -> Vec<Candidate> {
    if p.caller.hypothetical || !release::destination_rule_selector(mesh) {
        return vec![];
    }
    let labels = workload_labels(&p.caller.client.labels);
    if labels.is_empty() {
        return vec![];
    }
    let ns = p.caller.client.namespace.clone();
    let base = format!(
        "{}-{}",
        p.svc.key.name,
        labels.values().next().cloned().unwrap_or_default()
    );
    let name = candidate::free_name(mesh, &ns, &base);
    let copy = f.filter(|f| f.rule.meta.namespace == ns || f.wide);
    let at = copy.map(|f| f.at).unwrap_or(TlsAt::TopLevel);
    let change = candidate::new_host_rule(mesh, p.svc, &ns, &name, copy, |m| {
        m.with_workload_selector(&labels).with_tls_mode(at, mode(p))
    });
    let sel: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
    vec![Candidate::new(
        FixKind::ScopedDestinationRule,
        format!(
            "create DestinationRule {ns}/{name} for {} and the workload {} only, with tls.mode {}",
            p.svc.fqdn,
            sel.join(","),
            mode(p)
        ),
        vec![change],
    )]
}

/// The labels that name a workload (`app`, `version`), else all but the
/// per-replica ones.
fn workload_labels(
    labels: &std::collections::BTreeMap<String, String>,
) -> std::collections::BTreeMap<String, String> {
    let named: std::collections::BTreeMap<String, String> = labels
        .iter()
        .filter(|(k, _)| *k == "app" || *k == "version")
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if !named.is_empty() {
        return named;
    }
    labels
        .iter()
        .filter(|(k, _)| {
            !k.contains("hash")
                && !k.starts_with("security.istio.io/")
                && !k.starts_with("service.istio.io/")
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// The wide rule itself: strengthening it may be fine (the blast radius
/// says); weakening it for one service never is.
fn edit_wide(mesh: &Mesh, p: &TlsProblem, f: Option<&InForce>) -> Vec<Candidate> {
    let Some(f) = f.filter(|f| f.wide) else {
        return vec![];
    };
    let Some(change) = candidate::edit(mesh, &f.rule, |m| m.with_tls_mode(f.at, mode(p))) else {
        return vec![];
    };
    let mut c = Candidate::new(
        FixKind::EditWideDestinationRule,
        format!(
            "set tls.mode {} in {} of the {} DestinationRule {} (host {})",
            mode(p),
            f.where_(),
            f.scope(),
            f.rule.key(),
            f.rule.host
        ),
        vec![change],
    );
    if p.want == TlsMode::Disable {
        c.refusal = Some(format!(
            "weakens the {} rule {} (host {}) for every service it covers, to fix one",
            f.scope(),
            f.rule.key(),
            f.rule.host
        ));
    }
    vec![c]
}

/// A legacy Policy naming the service (or the namespace's `default`) that
/// has no `peers` while the scope around it requires or accepts mTLS: add
/// the peer the mesh has (STRICT first, PERMISSIVE as the fallback that
/// keeps plaintext callers working).
fn server_policy(mesh: &Mesh, p: &TlsProblem) -> Vec<Candidate> {
    if p.want != TlsMode::Disable || !p.pod.has_sidecar() {
        return vec![];
    }
    let server = mesh.server_side(p.svc, p.port, p.pod);
    let Some(sm) = server
        .policy
        .as_ref()
        .filter(|m| m.mode == MtlsMode::Disable)
    else {
        return vec![];
    };
    let (r, parent) = match &sm.source {
        ModeSource::LegacyService(r) => (r, mesh.namespace_mode(&p.svc.key.namespace).mode),
        ModeSource::LegacyNamespace(r) => {
            let mesh_mode = mesh
                .config
                .legacy
                .mesh_policies
                .iter()
                .find(|m| m.meta.name == "default")
                .and_then(|m| m.peer_mtls);
            let parent = match mesh_mode {
                Some(LegacyMtls::Strict) => MtlsMode::Strict,
                Some(LegacyMtls::Permissive) => MtlsMode::Permissive,
                None => MtlsMode::Disable,
            };
            (r, parent)
        }
        _ => return vec![],
    };
    let omitted = mesh
        .config
        .legacy
        .policies
        .iter()
        .any(|l| &l.meta.object_ref() == r && l.peer_mtls.is_none());
    if !omitted || parent == MtlsMode::Disable {
        return vec![];
    }
    let Some(base) = mesh.config.manifest(r) else {
        return vec![];
    };
    let variants: &[(bool, &str)] = if parent == MtlsMode::Strict {
        &[
            (false, "peers: [{mtls: {}}] (STRICT, as the mesh)"),
            (true, "peers: [{mtls: {mode: PERMISSIVE}}]"),
        ]
    } else {
        &[(
            true,
            "peers: [{mtls: {mode: PERMISSIVE}}] (PERMISSIVE, as the mesh)",
        )]
    };
    variants
        .iter()
        .map(|(permissive, what)| {
            let mut c = Candidate::new(
                FixKind::EditServerPolicy,
                format!(
                    "add {what} to {r}: it sets no peers, so it dropped the mesh's mTLS for {} while the mesh's clients still send mTLS (istio/istio#7464)",
                    p.svc.key.name
                ),
                vec![Change {
                    action: Action::Edit,
                    manifest: Manifest::with_legacy_peer_mtls(base, *permissive),
                }],
            );
            c.notes.push("Its origins (JWT) and principalBinding stay as they are: requests still need a valid token where the policy asks for one.".into());
            c
        })
        .collect()
}
