//! `PeerAuthentication` (security.istio.io v1beta1 and v1) and the server-side
//! mTLS mode Istio composes from it (Istio ≥1.5).
//!
//! Place in the flow: a pure helper (istio/), one implementation of
//! [`super::AuthnPolicies`]; callers go through [`super::Authn`].
//!
//! Sources: istio/istio `pilot/pkg/security/authn/policy_applier.go`
//! (`ComposePeerAuthentication`), `pilot/pkg/model/authentication.go`
//! (`addPeerAuthentication`, `GetNamespaceMutualTLSMode`),
//! `pilot/pkg/model/push_context.go` (`BestEffortInferServiceMTLSMode`);
//! istio/api `security/v1beta1/peer_authentication.proto`.

use std::collections::BTreeMap;

use serde_json::Value;

use super::super::object::{format_labels, labels_match, Meta, ObjectError, ObjectRef, Reader};
use super::{AuthnPolicies, ServerQuery, ServicePort};

use super::{ModeSource, MtlsMode, ServerMode};

/// `mtls.mode` as written. Absent `mtls` or `mode` is `UNSET` (inherit).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PaMode {
    Unset,
    Strict,
    Permissive,
    Disable,
    /// Unknown value, kept verbatim; treated like `UNSET`.
    Other(String),
}

impl PaMode {
    pub fn parse(s: &str) -> PaMode {
        match s {
            "UNSET" => PaMode::Unset,
            "STRICT" => PaMode::Strict,
            "PERMISSIVE" => PaMode::Permissive,
            "DISABLE" => PaMode::Disable,
            other => PaMode::Other(other.to_string()),
        }
    }
    /// `None` for UNSET (and unknown values): inherit from the broader scope.
    pub fn effective(&self) -> Option<MtlsMode> {
        match self {
            PaMode::Strict => Some(MtlsMode::Strict),
            PaMode::Permissive => Some(MtlsMode::Permissive),
            PaMode::Disable => Some(MtlsMode::Disable),
            PaMode::Unset | PaMode::Other(_) => None,
        }
    }
    pub fn as_str(&self) -> &str {
        match self {
            PaMode::Unset => "UNSET",
            PaMode::Strict => "STRICT",
            PaMode::Permissive => "PERMISSIVE",
            PaMode::Disable => "DISABLE",
            PaMode::Other(s) => s,
        }
    }
}

/// A `PeerAuthentication` object.
#[derive(Debug, Clone, PartialEq)]
pub struct PeerAuthentication {
    pub meta: Meta,
    /// `spec.selector.matchLabels`; `None` when absent or empty (mesh/namespace scope).
    pub selector: Option<BTreeMap<String, String>>,
    pub mode: PaMode,
    /// `spec.portLevelMtls`, keyed by **container (target) port**.
    pub port_level: BTreeMap<u32, PaMode>,
}

fn port_level_mode(r: &Reader<'_>, field: &str, v: &Value) -> Result<PaMode, ObjectError> {
    match v {
        Value::Null => Ok(PaMode::Unset),
        Value::Object(_) => match v.get("mode") {
            None | Some(Value::Null) => Ok(PaMode::Unset),
            Some(Value::String(s)) => Ok(PaMode::parse(s)),
            Some(other) => Err(r.type_err(&format!("{field}.mode"), "a string", other)),
        },
        other => Err(r.type_err(field, "an object", other)),
    }
}

impl PeerAuthentication {
    pub fn from_value(v: &Value) -> Result<PeerAuthentication, ObjectError> {
        let meta = Meta::from_value(v)?;
        let id = meta.id();
        if !meta.kind.is_empty() && meta.kind != "PeerAuthentication" {
            return Err(ObjectError::WrongKind {
                object: id,
                expected: "PeerAuthentication".into(),
            });
        }
        let r = Reader::new(&id, v);
        let sel = r.str_map("spec.selector.matchLabels")?;
        let mode = match r.opt_str("spec.mtls.mode")? {
            Some(m) => PaMode::parse(&m),
            None => PaMode::Unset,
        };
        let mut port_level = BTreeMap::new();
        if let Some(map) = r
            .opt_object("spec.portLevelMtls")?
            .and_then(Value::as_object)
        {
            for (k, pv) in map {
                let field = format!("spec.portLevelMtls.{k}");
                let port: u32 = k
                    .trim()
                    .parse()
                    .map_err(|_| r.invalid(&field, "the key must be a port number"))?;
                port_level.insert(port, port_level_mode(&r, &field, pv)?);
            }
        }
        Ok(PeerAuthentication {
            meta,
            selector: if sel.is_empty() { None } else { Some(sel) },
            mode,
            port_level,
        })
    }

    pub fn object_ref(&self) -> ObjectRef {
        self.meta.object_ref()
    }
}

/// The three scopes of `ComposePeerAuthentication`, broadest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scope {
    Mesh,
    Namespace,
    Workload,
}

impl Scope {
    /// "mesh-wide", "namespace-wide", "workload" (in "an older … policy").
    fn adjective(self) -> &'static str {
        match self {
            Scope::Mesh => "mesh-wide",
            Scope::Namespace => "namespace-wide",
            Scope::Workload => "workload",
        }
    }
    fn source(self, r: ObjectRef) -> ModeSource {
        match self {
            Scope::Mesh => ModeSource::Mesh(r),
            Scope::Namespace => ModeSource::Namespace(r),
            Scope::Workload => ModeSource::Workload(r),
        }
    }
}

/// The policy picked in each scope (`None` = none in that scope).
struct Picked<'a> {
    mesh: Option<&'a PeerAuthentication>,
    namespace: Option<&'a PeerAuthentication>,
    workload: Option<&'a PeerAuthentication>,
}

impl Picked<'_> {
    fn any(&self) -> bool {
        self.mesh.is_some() || self.namespace.is_some() || self.workload.is_some()
    }
}

/// The PeerAuthentications of a mesh with its root namespace.
#[derive(Debug, Clone, Default)]
pub struct PeerAuthPolicies {
    pub policies: Vec<PeerAuthentication>,
    /// `meshConfig.rootNamespace` (default `istio-system`).
    pub root_ns: String,
}

impl PeerAuthPolicies {
    pub fn new(policies: Vec<PeerAuthentication>, root_ns: &str) -> PeerAuthPolicies {
        PeerAuthPolicies {
            policies,
            root_ns: root_or_default(root_ns).to_string(),
        }
    }

    fn scoped(&self) -> Scoped<'_> {
        Scoped::new(&self.policies, &self.root_ns)
    }

    /// The mode a workload's sidecar enforces on `container_port` (`None` =
    /// the workload-wide mode); PERMISSIVE when no policy applies.
    ///
    /// istio/istio pilot/pkg/security/authn/policy_applier.go `ComposePeerAuthentication`:
    /// scopes mesh < namespace < workload; within a scope the oldest
    /// creationTimestamp wins (then name); `UNSET` inherits from the broader
    /// scope; `portLevelMtls` only counts on the workload-scoped policy and
    /// its keys are container ports; an UNSET port entry inherits the
    /// workload mode. No policy at all = PERMISSIVE.
    pub fn server_mode(&self, q: &ServerQuery<'_>) -> ServerMode {
        self.scoped().server_mode(q)
    }

    /// The mode auto mTLS can see for a service in `ns`: namespace-wide then
    /// mesh-wide PeerAuthentication only. Workload-scoped and port-level
    /// policies are invisible to it (istio/istio issue #32788;
    /// pilot/pkg/model/authentication.go `GetNamespaceMutualTLSMode`,
    /// push_context.go `BestEffortInferServiceMTLSMode`). A mesh policy with
    /// UNSET counts as PERMISSIVE; a namespace UNSET inherits the mesh mode;
    /// with neither, Istio falls back to PERMISSIVE (source `Default`).
    pub fn namespace_mode(&self, ns: &str) -> ServerMode {
        self.scoped().namespace_mode(ns)
    }
}

/// `meshConfig.rootNamespace`, `istio-system` when empty.
fn root_or_default(root_ns: &str) -> &str {
    if root_ns.is_empty() {
        "istio-system"
    } else {
        root_ns
    }
}

/// The decisions over borrowed policies: [`PeerAuthPolicies`] and the
/// slice-taking compat functions share them, and the latter no longer copy
/// every policy per query (fuzz/scale.sh: 5,000 pods x 5,000
/// PeerAuthentications took 45 s of copying in `analyze`).
#[derive(Clone, Copy)]
struct Scoped<'p> {
    policies: &'p [PeerAuthentication],
    root_ns: &'p str,
}

impl<'p> Scoped<'p> {
    fn new(policies: &'p [PeerAuthentication], root_ns: &'p str) -> Scoped<'p> {
        Scoped {
            policies,
            root_ns: root_or_default(root_ns),
        }
    }

    /// The oldest policy matching `pred` (creationTimestamp, then name); the
    /// others are noted as ignored.
    fn oldest(
        &self,
        scope: Scope,
        ignored: &mut Vec<String>,
        pred: impl Fn(&PeerAuthentication) -> bool,
    ) -> Option<&PeerAuthentication> {
        let mut v: Vec<&PeerAuthentication> = self.policies.iter().filter(|p| pred(p)).collect();
        v.sort_by(|a, b| a.meta.age_order(&b.meta));
        let first = v.first().copied()?;
        for other in v.iter().skip(1) {
            ignored.push(format!(
                "{} ignored: {} is an older {} policy (the oldest creationTimestamp wins)",
                other.object_ref(),
                first.object_ref(),
                scope.adjective()
            ));
        }
        Some(first)
    }

    /// Mesh (root namespace, no selector) < namespace (the workload's, no
    /// selector) < workload (selector matching, **not** in the root
    /// namespace: root-namespace policies with selectors are ignored).
    fn pick(
        &self,
        ns: &str,
        labels: &BTreeMap<String, String>,
        ignored: &mut Vec<String>,
    ) -> Picked<'_> {
        let root = self.root_ns;
        let mesh = self.oldest(Scope::Mesh, ignored, |p| {
            p.meta.namespace == root && p.selector.is_none()
        });
        let in_root = ns == root;
        let namespace = (!in_root)
            .then(|| {
                self.oldest(Scope::Namespace, ignored, |p| {
                    p.meta.namespace == ns && p.selector.is_none()
                })
            })
            .flatten();
        let selects =
            |p: &PeerAuthentication| p.selector.as_ref().is_some_and(|s| labels_match(s, labels));
        for p in self
            .policies
            .iter()
            .filter(|p| p.meta.namespace == root && selects(p))
        {
            ignored.push(format!(
                "{} ignored: a PeerAuthentication with a selector in the root namespace {root} is not applied to any workload",
                p.object_ref()
            ));
        }
        let workload = (!in_root)
            .then(|| {
                self.oldest(Scope::Workload, ignored, |p| {
                    p.meta.namespace == ns && selects(p)
                })
            })
            .flatten();
        Picked {
            mesh,
            namespace,
            workload,
        }
    }

    /// Fold the scopes, broadest first: a mode set in a narrower scope wins,
    /// `UNSET` inherits; then the workload policy's `portLevelMtls` entry for
    /// the container port. Starts from PERMISSIVE (no policy at all).
    fn compose(
        &self,
        ns: &str,
        picked: &Picked<'_>,
        container_port: Option<u32>,
        ignored: Vec<String>,
    ) -> ServerMode {
        let mut m = ServerMode {
            mode: MtlsMode::Permissive,
            source: ModeSource::Default,
            chain: Vec::new(),
            ignored,
        };
        let in_root = ns == self.root_ns;
        for (scope, policy) in [
            (Scope::Mesh, picked.mesh),
            (Scope::Namespace, picked.namespace),
            (Scope::Workload, picked.workload),
        ] {
            if scope == Scope::Namespace && in_root {
                continue;
            }
            let Some(p) = policy else {
                m.chain.extend(self.missing_text(scope, ns));
                continue;
            };
            let who = match scope {
                Scope::Mesh => format!("mesh: {}", p.object_ref().key()),
                Scope::Namespace => format!("namespace: {}", p.object_ref().key()),
                Scope::Workload => format!(
                    "workload: {} (selector {})",
                    p.object_ref().key(),
                    format_labels(p.selector.as_ref().unwrap_or(&BTreeMap::new()))
                ),
            };
            match p.mode.effective() {
                Some(mode) => {
                    m.mode = mode;
                    m.source = scope.source(p.object_ref());
                    m.chain.push(format!("{who} sets {mode}"));
                }
                None if scope == Scope::Mesh => m.chain.push(format!(
                    "{who} leaves the mode {} (PERMISSIVE)",
                    p.mode.as_str()
                )),
                None => m
                    .chain
                    .push(format!("{who} is {}, inherits {}", p.mode.as_str(), m.mode)),
            }
        }
        if let (Some(p), Some(port)) = (picked.workload, container_port) {
            port_level(&mut m, p, port);
        }
        // Port-level entries on namespace/mesh policies are ignored by Istio.
        for p in [picked.mesh, picked.namespace].into_iter().flatten() {
            if !p.port_level.is_empty() {
                m.ignored.push(format!(
                    "{}: portLevelMtls is ignored on a policy without a workload selector",
                    p.object_ref()
                ));
            }
        }
        m
    }

    fn missing_text(&self, scope: Scope, ns: &str) -> Option<String> {
        match scope {
            Scope::Mesh => Some(format!(
                "mesh: no PeerAuthentication without selector in {} (default PERMISSIVE)",
                self.root_ns
            )),
            Scope::Namespace => Some(format!(
                "namespace: no namespace-wide PeerAuthentication in {ns}"
            )),
            Scope::Workload => None,
        }
    }

    /// See [`PeerAuthPolicies::server_mode`].
    fn server_mode(&self, q: &ServerQuery<'_>) -> ServerMode {
        let mut ignored = Vec::new();
        let picked = self.pick(q.namespace, q.labels, &mut ignored);
        self.compose(q.namespace, &picked, q.container_port, ignored)
    }

    /// See [`PeerAuthPolicies::namespace_mode`].
    fn namespace_mode(&self, ns: &str) -> ServerMode {
        let none = BTreeMap::new();
        let mut m = self.server_mode(&ServerQuery {
            namespace: ns,
            labels: &none,
            container_port: None,
            service: None,
        });
        // With no labels no workload policy is picked; say what auto mTLS cannot see.
        let hidden: Vec<String> = self
            .policies
            .iter()
            .filter(|p| p.meta.namespace == ns && p.selector.is_some() && ns != self.root_ns)
            .map(|p| p.object_ref().key())
            .collect();
        if !hidden.is_empty() {
            m.chain.push(format!(
                "workload-scoped policies ({}) are not visible to client-side auto mTLS",
                hidden.join(", ")
            ));
        }
        m
    }
}

/// Apply the workload policy's `portLevelMtls` entry for `port`.
fn port_level(m: &mut ServerMode, p: &PeerAuthentication, port: u32) {
    match p.port_level.get(&port) {
        Some(pm) => match pm.effective() {
            Some(mode) => {
                m.mode = mode;
                m.source = ModeSource::WorkloadPort(p.object_ref(), port);
                m.chain.push(format!("port {port}: portLevelMtls sets {mode}"));
            }
            None => m.chain.push(format!(
                "port {port}: portLevelMtls is UNSET, inherits {}",
                m.mode
            )),
        },
        None if !p.port_level.is_empty() => m.chain.push(format!(
            "port {port}: no portLevelMtls entry (entries: {}; keys are container ports, not service ports)",
            p.port_level.keys().map(|k| k.to_string()).collect::<Vec<_>>().join(", ")
        )),
        None => {}
    }
}

impl AuthnPolicies for PeerAuthPolicies {
    /// `None` when no mesh, namespace or workload policy applies (1.5.0
    /// `composePeerAuthentication` returns nil then, and the v1alpha1
    /// policy is used).
    fn workload_mode(&self, q: &ServerQuery<'_>) -> Option<ServerMode> {
        let s = self.scoped();
        let mut ignored = Vec::new();
        let picked = s.pick(q.namespace, q.labels, &mut ignored);
        picked
            .any()
            .then(|| s.compose(q.namespace, &picked, q.container_port, ignored))
    }

    /// `None` when there is neither a mesh- nor a namespace-wide policy
    /// (`GetNamespaceMutualTLSMode` returns `MTLSUnknown`).
    fn visible_mode(
        &self,
        namespace: &str,
        _service: Option<ServicePort<'_>>,
    ) -> Option<ServerMode> {
        let s = self.scoped();
        let mut ignored = Vec::new();
        let none = BTreeMap::new();
        let picked = s.pick(namespace, &none, &mut ignored);
        (picked.mesh.is_some() || picked.namespace.is_some()).then(|| s.namespace_mode(namespace))
    }
}

#[cfg(test)]
mod tests;
