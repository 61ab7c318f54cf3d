//! authentication.istio.io/v1alpha1 `MeshPolicy` and `Policy` (Istio 1.0–1.5;
//! removed in 1.6) and the server mode they gave.
//!
//! Place in the flow: a pure helper (istio/), one implementation of
//! [`super::AuthnPolicies`]; callers go through [`super::Authn`], which
//! applies it alone (≤1.4) or as the fallback of PeerAuthentication (1.5).
//!
//! Sources: istio/istio at tag 1.4.0 `pilot/pkg/model/push_context.go`
//! (`initAuthnPolicies`, `AuthenticationPolicyForWorkload`,
//! `authenticationPolicyForWorkload`), `pilot/pkg/security/authn/v1alpha1/model.go`
//! (`GetMutualTLSMode`), `policy_applier.go` (`GetMutualTLS`); istio/api
//! `authentication/v1alpha1/policy.proto`.

use serde_json::Value;

use super::super::host;
use super::super::object::{type_name, Meta, ObjectError, Reader};
use super::{AuthnPolicies, ModeSource, MtlsMode, ServerMode, ServerQuery, ServicePort};

/// A port selector in `targets[].ports[]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PortSelector {
    Number(u32),
    Name(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub name: String,
    pub ports: Vec<PortSelector>,
}

/// The peer mTLS setting of a legacy policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LegacyMtls {
    Strict,
    Permissive,
}

/// A `MeshPolicy` or `Policy`.
#[derive(Debug, Clone, PartialEq)]
pub struct LegacyPolicy {
    pub meta: Meta,
    /// `true` for `MeshPolicy` (cluster-scoped).
    pub is_mesh_policy: bool,
    pub targets: Vec<Target>,
    /// `None` when no `peers[]` entry is `mtls` (no mTLS required).
    pub peer_mtls: Option<LegacyMtls>,
}

impl LegacyPolicy {
    /// Parse a `MeshPolicy` or `Policy` object.
    ///
    /// `peers: [{mtls: {}}]`, `[{mtls: null}]` or `{mtls: {mode: STRICT}}` = STRICT;
    /// `{mtls: {mode: PERMISSIVE}}` = PERMISSIVE; the first `mtls` peer counts
    /// (v1alpha1 `GetMutualTLS`). The proto's default mode (enum 0) is STRICT.
    pub fn from_value(v: &Value) -> Result<LegacyPolicy, ObjectError> {
        let meta = Meta::from_value(v)?;
        let id = meta.id();
        let is_mesh_policy = match meta.kind.as_str() {
            "MeshPolicy" => true,
            "Policy" | "" => false,
            _ => {
                return Err(ObjectError::WrongKind {
                    object: id,
                    expected: "MeshPolicy or Policy (authentication.istio.io/v1alpha1)".into(),
                })
            }
        };
        let r = Reader::new(&id, v);
        let mut targets = Vec::new();
        for (i, t) in r.opt_array("spec.targets")?.iter().enumerate() {
            let rel = format!("spec.targets[{i}]");
            if !t.is_object() {
                return Err(r.type_err(&rel, "an object", t));
            }
            let owned = r.at(t, &rel);
            let tr = owned.reader();
            let name = tr.req_str("name")?;
            let mut ports = Vec::new();
            for (j, p) in tr.opt_array("ports")?.iter().enumerate() {
                let prel = format!("ports[{j}]");
                let owned_p = tr.at(p, &prel);
                let pr = owned_p.reader();
                if let Some(n) = pr.opt_u32("number")? {
                    ports.push(PortSelector::Number(n));
                } else if let Some(n) = pr.opt_str("name")? {
                    ports.push(PortSelector::Name(n));
                } else {
                    return Err(tr.invalid(&prel, "a port selector needs `number` or `name`"));
                }
            }
            targets.push(Target { name, ports });
        }
        let mut peer_mtls = None;
        for (i, p) in r.opt_array("spec.peers")?.iter().enumerate() {
            let Some(obj) = p.as_object() else {
                return Err(r.type_err(&format!("spec.peers[{i}]"), "an object", p));
            };
            if let Some(m) = obj.get("mtls") {
                let mode = match m {
                    Value::Null => LegacyMtls::Strict,
                    Value::Object(o) => match o.get("mode") {
                        None | Some(Value::Null) => LegacyMtls::Strict,
                        Some(Value::String(s)) if s == "STRICT" => LegacyMtls::Strict,
                        Some(Value::String(s)) if s == "PERMISSIVE" => LegacyMtls::Permissive,
                        Some(other) => {
                            return Err(r.invalid(
                                &format!("spec.peers[{i}].mtls.mode"),
                                format!(
                                    "expected STRICT or PERMISSIVE, found {}",
                                    type_name(other)
                                ),
                            ))
                        }
                    },
                    other => {
                        return Err(r.type_err(
                            &format!("spec.peers[{i}].mtls"),
                            "an object",
                            other,
                        ))
                    }
                };
                peer_mtls = Some(mode);
                break;
            }
        }
        Ok(LegacyPolicy {
            meta,
            is_mesh_policy,
            targets,
            peer_mtls,
        })
    }

    fn mode(&self) -> MtlsMode {
        match self.peer_mtls {
            Some(LegacyMtls::Strict) => MtlsMode::Strict,
            Some(LegacyMtls::Permissive) => MtlsMode::Permissive,
            None => MtlsMode::Disable,
        }
    }

    fn describe_mode(&self) -> String {
        match self.peer_mtls {
            Some(LegacyMtls::Strict) => "requires mTLS (STRICT)".into(),
            Some(LegacyMtls::Permissive) => "accepts mTLS and plaintext (PERMISSIVE)".into(),
            None => "has no mtls peer method, so no mTLS".into(),
        }
    }
}

fn port_matches(sel: &PortSelector, number: u32, name: Option<&str>) -> bool {
    match sel {
        PortSelector::Number(n) => *n == number,
        PortSelector::Name(n) => Some(n.as_str()) == name,
    }
}

/// One candidate of `authenticationPolicyForWorkload`: a policy and the port
/// selector it was listed with (`None` = all ports).
type Entry<'a> = (&'a LegacyPolicy, Option<&'a PortSelector>);

/// Candidate entries oldest first (creationTimestamp, then name); stable, so
/// one policy's entries keep their order.
fn oldest_first(entries: &mut [Entry<'_>]) {
    entries.sort_by(|a, b| a.0.meta.age_order(&b.0.meta));
}

/// Istio 1.4 `authenticationPolicyForWorkload`: over the candidate entries
/// (oldest first), the first without a port selector is the default; an entry
/// whose port selector matches wins immediately.
fn pick<'a>(entries: &[Entry<'a>], number: u32, name: Option<&str>) -> Option<&'a LegacyPolicy> {
    let mut matched = None;
    for (p, sel) in entries {
        match sel {
            None => {
                if matched.is_none() {
                    matched = Some(*p);
                }
            }
            Some(s) => {
                if port_matches(s, number, name) {
                    return Some(*p);
                }
            }
        }
    }
    matched
}

/// The v1alpha1 policies of a mesh (MeshPolicy and Policy objects) with the
/// cluster domain their targets resolve in.
#[derive(Debug, Clone, Default)]
pub struct LegacyPolicies {
    /// `MeshPolicy` objects (only the one named `default` counts).
    pub mesh: Vec<LegacyPolicy>,
    /// `Policy` objects, oldest first.
    pub policies: Vec<LegacyPolicy>,
    /// The cluster domain (`cluster.local`).
    pub domain: String,
}

impl LegacyPolicies {
    pub fn new(all: Vec<LegacyPolicy>, domain: &str) -> LegacyPolicies {
        let (mesh, mut policies): (Vec<_>, Vec<_>) =
            all.into_iter().partition(|p| p.is_mesh_policy);
        policies.sort_by(|a, b| a.meta.age_order(&b.meta));
        LegacyPolicies {
            mesh,
            policies,
            domain: domain.to_string(),
        }
    }

    fn scoped(&self) -> Scoped<'_> {
        Scoped {
            first: &self.mesh,
            second: &self.policies,
            domain: &self.domain,
        }
    }

    /// The v1alpha1 server mode in `ns`, for the service port when given
    /// (else the namespace-level mode: namespace Policy > MeshPolicy).
    ///
    /// Precedence (Istio 1.4 `AuthenticationPolicyForWorkload`): a `Policy`
    /// targeting the service (its host name, resolved like any short name;
    /// with a matching port, or without ports) > the namespace-wide `Policy`
    /// (no targets) > `MeshPolicy` named `default`. The chosen policy decides
    /// alone: a namespace Policy with only JWT origins turns mTLS **off** for
    /// the namespace even under a STRICT MeshPolicy. No policy = no mTLS
    /// (DISABLE, source `Default`).
    pub fn server_mode(&self, ns: &str, service: Option<ServicePort<'_>>) -> ServerMode {
        self.scoped().server_mode(ns, service)
    }
}

/// The decisions over borrowed policies (in any order; MeshPolicies and
/// Policies told apart by kind): [`LegacyPolicies`] and the slice-taking
/// compat functions share them, and the latter no longer copy every policy
/// per query (fuzz/scale.sh: copies per pod made `analyze` quadratic).
#[derive(Clone, Copy)]
struct Scoped<'p> {
    first: &'p [LegacyPolicy],
    second: &'p [LegacyPolicy],
    domain: &'p str,
}

impl<'p> Scoped<'p> {
    fn all(&self) -> impl Iterator<Item = &'p LegacyPolicy> + 'p {
        self.first.iter().chain(self.second)
    }

    fn mesh(&self) -> impl Iterator<Item = &'p LegacyPolicy> + 'p {
        self.all().filter(|p| p.is_mesh_policy)
    }

    /// `Policy` objects in the order given (callers sort what they pick from).
    fn policies(&self) -> impl Iterator<Item = &'p LegacyPolicy> + 'p {
        self.all().filter(|p| !p.is_mesh_policy)
    }

    /// The `MeshPolicy` named `default`; the others are noted as ignored.
    fn mesh_policy(
        &self,
        chain: &mut Vec<String>,
        ignored: &mut Vec<String>,
    ) -> Option<&'p LegacyPolicy> {
        let mesh = self.mesh().find(|p| p.meta.name == "default");
        for p in self.mesh().filter(|p| p.meta.name != "default") {
            ignored.push(format!(
                "{} ignored: only the MeshPolicy named `default` is used",
                p.meta.object_ref()
            ));
        }
        chain.push(match mesh {
            Some(p) => format!("mesh: MeshPolicy default {}", p.describe_mode()),
            None => "mesh: no MeshPolicy `default` (no mTLS)".into(),
        });
        mesh
    }

    /// The namespace-wide `Policy` (no targets) of `ns`.
    fn namespace_policy(
        &self,
        ns: &str,
        port: (u32, Option<&str>),
        chain: &mut Vec<String>,
        ignored: &mut Vec<String>,
    ) -> Option<&'p LegacyPolicy> {
        let mut entries: Vec<Entry<'p>> = self
            .policies()
            .filter(|p| p.meta.namespace == ns && p.targets.is_empty())
            .map(|p| (p, None))
            .collect();
        oldest_first(&mut entries);
        let picked = pick(&entries, port.0, port.1);
        for (p, _) in entries.iter().skip(1) {
            ignored.push(format!(
                "{} ignored: an older namespace-wide Policy exists in {ns}",
                p.meta.object_ref()
            ));
        }
        chain.push(match picked {
            Some(p) => format!("namespace: {} {}", p.meta.key(), p.describe_mode()),
            None => format!("namespace: no namespace-wide Policy in {ns}"),
        });
        picked
    }

    /// Service-targeted entries, in creation order, one per (policy, port selector).
    fn service_entries(&self, svc_host: &str) -> Vec<Entry<'p>> {
        let mut out: Vec<Entry<'p>> = Vec::new();
        for p in self.policies() {
            for t in &p.targets {
                if host::fqdn(&t.name, &p.meta.namespace, self.domain) != svc_host {
                    continue;
                }
                if t.ports.is_empty() {
                    out.push((p, None));
                } else {
                    out.extend(t.ports.iter().map(|s| (p, Some(s))));
                }
            }
        }
        oldest_first(&mut out);
        out
    }

    /// See [`LegacyPolicies::server_mode`].
    fn server_mode(&self, ns: &str, service: Option<ServicePort<'_>>) -> ServerMode {
        let (number, port_name) = service.map_or((0, None), |s| (s.number, s.port_name));
        let mut chain = Vec::new();
        let mut ignored = Vec::new();
        let mesh = self.mesh_policy(&mut chain, &mut ignored);
        let ns_policy = self.namespace_policy(ns, (number, port_name), &mut chain, &mut ignored);
        let decided =
            |p: &LegacyPolicy, source: ModeSource, chain: Vec<String>, ignored| ServerMode {
                mode: p.mode(),
                source,
                chain,
                ignored,
            };
        if let Some(svc) = service {
            let svc_host = host::fqdn(svc.name, ns, self.domain);
            let entries = self.service_entries(&svc_host);
            if let Some(p) = pick(&entries, number, port_name) {
                chain.push(format!(
                    "service: {} targets {svc_host} (port {number}) and {}",
                    p.meta.key(),
                    p.describe_mode()
                ));
                return decided(
                    p,
                    ModeSource::LegacyService(p.meta.object_ref()),
                    chain,
                    ignored,
                );
            }
            if !entries.is_empty() {
                chain.push(format!(
                    "service: Policies target {svc_host} but none on port {number}"
                ));
            }
        }
        if let Some(p) = ns_policy {
            return decided(
                p,
                ModeSource::LegacyNamespace(p.meta.object_ref()),
                chain,
                ignored,
            );
        }
        match mesh {
            Some(p) => decided(
                p,
                ModeSource::LegacyMesh(p.meta.object_ref()),
                chain,
                ignored,
            ),
            None => ServerMode {
                mode: MtlsMode::Disable,
                source: ModeSource::Default,
                chain,
                ignored,
            },
        }
    }
}

impl AuthnPolicies for LegacyPolicies {
    /// `None` when no v1alpha1 policy covers the workload's service port.
    fn workload_mode(&self, q: &ServerQuery<'_>) -> Option<ServerMode> {
        self.visible_mode(q.namespace, q.service)
    }

    /// The same policy decides what the server enforces and what auto mTLS
    /// (1.4/1.5) infers for the service port. `None` when none applies.
    fn visible_mode(
        &self,
        namespace: &str,
        service: Option<ServicePort<'_>>,
    ) -> Option<ServerMode> {
        let m = self.server_mode(namespace, service);
        (m.source != ModeSource::Default).then_some(m)
    }
}

#[cfg(test)]
mod tests;
