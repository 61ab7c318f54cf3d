//! What a candidate fix is (complete manifests, created or edited), and
//! where a DestinationRule change goes: the rule whose policy is in force
//! for the failing client (port level when a port-level entry decided), or
//! a new rule for the one host, placed where Istio's lookup finds it first
//! (push_context.go `destinationRule`: the client's namespace, then the
//! service's, then the root namespace; within one, the most specific host).

use crate::istio::destination_rule::{DestinationRule, PolicyOrigin};
use crate::istio::host;
use crate::model::decisions::Client;
use crate::model::{Manifest, Mesh, Service, ServicePort, TlsAt};

use super::{release, Action, FixKind};

/// One object a candidate applies.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub action: Action,
    pub manifest: Manifest,
}

/// A fix before it is checked against the mesh.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    pub kind: FixKind,
    pub summary: String,
    pub changes: Vec<Change>,
    /// Refused by the ordering rules whatever its effect (it weakens a
    /// namespace- or mesh-wide rule for one service); still evaluated, so
    /// the report can name the pairs it would hurt.
    pub refusal: Option<String>,
    pub notes: Vec<String>,
}

impl Candidate {
    pub fn new(kind: FixKind, summary: impl Into<String>, changes: Vec<Change>) -> Candidate {
        Candidate {
            kind,
            summary: summary.into(),
            changes,
            refusal: None,
            notes: vec![],
        }
    }
}

/// The DestinationRule whose policy decides for a client, and where in it.
#[derive(Debug, Clone)]
pub struct InForce {
    pub rule: DestinationRule,
    pub at: TlsAt,
    /// Its host is a wildcard: it decides for more hosts than this one.
    pub wide: bool,
    /// In the root namespace with a wildcard host: mesh-wide.
    pub mesh_wide: bool,
}

impl InForce {
    /// `the portLevelSettings entry for port 8000` / `spec.trafficPolicy`.
    pub fn where_(&self) -> String {
        match self.at {
            TlsAt::PortLevel(p) => format!("the portLevelSettings entry for port {p}"),
            TlsAt::TopLevel => "spec.trafficPolicy".to_string(),
        }
    }

    /// `mesh-wide` / `namespace-wide`.
    pub fn scope(&self) -> &'static str {
        if self.mesh_wide {
            "mesh-wide"
        } else {
            "namespace-wide"
        }
    }
}

/// The rule in force for `client` → `svc:port`: the rule
/// whose top-level policy won the merge (`policy_from`), else the oldest.
pub fn in_force(
    mesh: &Mesh,
    client: &Client,
    svc: &Service,
    port: &ServicePort,
) -> Option<InForce> {
    let ct = mesh.client_tls(client, svc, port.number);
    let sel = ct.selection()?;
    let rule = sel
        .policy_from
        .as_ref()
        .and_then(|k| sel.rules.iter().find(|r| &r.key() == k))
        .or_else(|| sel.primary())?
        .clone();
    // A port-level entry replaces the whole policy for its port
    // (util.GetPortLevelTrafficPolicy): every field is edited there, even
    // one the entry does not set.
    let at = match ct.policy.as_ref().map(|p| &p.origin) {
        Some(PolicyOrigin::PortLevel(p)) | Some(PolicyOrigin::SubsetPortLevel(_, p)) => {
            TlsAt::PortLevel(*p)
        }
        _ => TlsAt::TopLevel,
    };
    let wide = host::is_wildcard(&rule.host_fqdn);
    let mesh_wide = wide && rule.meta.namespace == mesh.settings.root_namespace;
    Some(InForce {
        rule,
        at,
        wide,
        mesh_wide,
    })
}

/// The rule's manifest edited by `edit` (the whole object: `kubectl apply`
/// of a partial object would drop fields).
pub fn edit(
    mesh: &Mesh,
    rule: &DestinationRule,
    edit: impl Fn(&Manifest) -> Manifest,
) -> Option<Change> {
    let base = mesh.config.manifest(&rule.object_ref())?;
    Some(Change {
        action: Action::Edit,
        manifest: edit(base),
    })
}

/// Where a new rule for one host goes: the namespace of the rule in force
/// when that is the client's or the service's (it is then found at the same
/// step and wins by specificity), else the service's namespace.
pub fn new_rule_namespace(mesh: &Mesh, svc: &Service, in_force: Option<&InForce>) -> String {
    match in_force {
        Some(f) if f.rule.meta.namespace != mesh.settings.root_namespace => {
            f.rule.meta.namespace.clone()
        }
        _ => svc.key.namespace.clone(),
    }
}

/// `base`, or `base-2`, … : a name no DestinationRule of `namespace` has.
pub fn free_name(mesh: &Mesh, namespace: &str, base: &str) -> String {
    let taken = |n: &str| {
        mesh.config
            .destination_rules
            .iter()
            .any(|d| d.meta.namespace == namespace && d.meta.name == n)
    };
    if !taken(base) {
        return base.to_string();
    }
    (2..)
        .map(|i| format!("{base}-{i}"))
        .find(|n| !taken(n))
        .unwrap_or_else(|| base.to_string())
}

/// A new DestinationRule `namespace/name` for `svc` only: a copy of the
/// wider rule in force (so this host keeps the rest of its policy), else an
/// empty rule; then `edit`.
pub fn new_host_rule(
    mesh: &Mesh,
    svc: &Service,
    namespace: &str,
    name: &str,
    copy_of: Option<&InForce>,
    edit: impl Fn(&Manifest) -> Manifest,
) -> Change {
    let base = copy_of
        .and_then(|f| mesh.config.manifest(&f.rule.object_ref()))
        .map(|m| {
            let m = m.renamed(namespace, name).with_host(&svc.fqdn);
            // exportTo ["."] keeps a rule to its own namespace; a copy placed
            // elsewhere must be visible where the original was.
            if copy_of.is_some_and(|f| f.rule.meta.namespace != namespace) {
                m.without_export_to()
            } else {
                m
            }
        })
        .unwrap_or_else(|| {
            Manifest::new_empty_destination_rule(
                &release::destination_rule_api(mesh),
                namespace,
                name,
                &svc.fqdn,
            )
        });
    Change {
        action: Action::Create,
        manifest: edit(&base),
    }
}
