//! `PeerAuthentication` (security.istio.io v1beta1 and v1) and the server-side
//! mTLS mode Istio composes from it.
//!
//! Sources: istio/istio `pilot/pkg/security/authn/policy_applier.go`
//! (`ComposePeerAuthentication`), `pilot/pkg/model/authentication.go`
//! (`addPeerAuthentication`, `GetNamespaceMutualTLSMode`),
//! `pilot/pkg/model/push_context.go` (`BestEffortInferServiceMTLSMode`);
//! istio/api `security/v1beta1/peer_authentication.proto`.

use std::collections::BTreeMap;
use std::fmt;

use serde_json::Value;

use super::object::{format_labels, labels_match, Meta, ObjectError, ObjectRef, Reader};

/// The effective mTLS mode of a server-side sidecar (what its inbound listener accepts).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum MtlsMode {
    /// Only mTLS.
    Strict,
    /// mTLS and plaintext.
    Permissive,
    /// Only plaintext.
    Disable,
}

impl MtlsMode {
    pub fn as_str(&self) -> &'static str {
        match self {
            MtlsMode::Strict => "STRICT",
            MtlsMode::Permissive => "PERMISSIVE",
            MtlsMode::Disable => "DISABLE",
        }
    }
    pub fn accepts_plaintext(&self) -> bool {
        !matches!(self, MtlsMode::Strict)
    }
    pub fn accepts_mtls(&self) -> bool {
        !matches!(self, MtlsMode::Disable)
    }
}

impl fmt::Display for MtlsMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

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
        if let Some(obj) = r.opt_object("spec.portLevelMtls")? {
            if let Some(map) = obj.as_object() {
                for (k, pv) in map {
                    let field = format!("spec.portLevelMtls.{k}");
                    let port: u32 = k
                        .trim()
                        .parse()
                        .map_err(|_| r.invalid(&field, "the key must be a port number"))?;
                    let m = match pv {
                        Value::Null => PaMode::Unset,
                        Value::Object(_) => match pv.get("mode") {
                            None | Some(Value::Null) => PaMode::Unset,
                            Some(Value::String(s)) => PaMode::parse(s),
                            Some(other) => {
                                return Err(r.type_err(&format!("{field}.mode"), "a string", other))
                            }
                        },
                        other => return Err(r.type_err(&field, "an object", other)),
                    };
                    port_level.insert(port, m);
                }
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

/// Which scope decided a server mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModeSource {
    /// No applicable policy set a mode: Istio's default (PERMISSIVE for
    /// PeerAuthentication, no mTLS for the legacy v1alpha1 API).
    Default,
    Mesh(ObjectRef),
    Namespace(ObjectRef),
    Workload(ObjectRef),
    /// `portLevelMtls` of a workload policy (container port).
    WorkloadPort(ObjectRef, u32),
    /// authentication.istio.io/v1alpha1 `MeshPolicy`.
    LegacyMesh(ObjectRef),
    /// v1alpha1 namespace-wide `Policy` (no targets).
    LegacyNamespace(ObjectRef),
    /// v1alpha1 `Policy` targeting the service (optionally a port).
    LegacyService(ObjectRef),
}

impl fmt::Display for ModeSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ModeSource::Default => f.write_str("no policy (Istio default)"),
            ModeSource::Mesh(r) => write!(f, "mesh-wide {r}"),
            ModeSource::Namespace(r) => write!(f, "namespace-wide {r}"),
            ModeSource::Workload(r) => write!(f, "workload {r}"),
            ModeSource::WorkloadPort(r, p) => write!(f, "{r} portLevelMtls[{p}]"),
            ModeSource::LegacyMesh(r) => write!(f, "mesh-wide {r}"),
            ModeSource::LegacyNamespace(r) => write!(f, "namespace-wide {r}"),
            ModeSource::LegacyService(r) => write!(f, "service-specific {r}"),
        }
    }
}

/// The server-side mode and how it was reached.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerMode {
    pub mode: MtlsMode,
    /// The narrowest policy that set the mode.
    pub source: ModeSource,
    /// Plain-words steps, broadest first (`mesh: istio-system/default STRICT`, …).
    pub chain: Vec<String>,
    /// Policies that apply to the scope but were ignored, and why.
    pub ignored: Vec<String>,
}

impl ServerMode {
    /// The chain as one sentence.
    pub fn explain(&self) -> String {
        let mut s = format!("{} (decided by {})", self.mode, self.source);
        if !self.chain.is_empty() {
            s.push_str(": ");
            s.push_str(&self.chain.join("; "));
        }
        s
    }
}

fn oldest<'a>(
    mut v: Vec<&'a PeerAuthentication>,
    ignored: &mut Vec<String>,
    scope: &str,
) -> Option<&'a PeerAuthentication> {
    v.sort_by(|a, b| a.meta.age_order(&b.meta));
    let first = v.first().copied()?;
    for other in v.iter().skip(1) {
        ignored.push(format!(
            "{} ignored: {} is an older {scope} policy (the oldest creationTimestamp wins)",
            other.object_ref(),
            first.object_ref()
        ));
    }
    Some(first)
}

/// The mode a workload's sidecar enforces on `container_port` (`None` = the
/// workload-wide mode).
///
/// istio/istio pilot/pkg/security/authn/policy_applier.go `ComposePeerAuthentication`:
/// scopes mesh (root namespace, no selector) < namespace (workload's namespace,
/// no selector) < workload (selector matching the workload labels, **not** in
/// the root namespace — root-namespace policies with selectors are ignored).
/// Within a scope the oldest creationTimestamp wins (then name). `UNSET`
/// inherits from the broader scope; `portLevelMtls` only counts on the
/// workload-scoped policy and its keys are container ports; an UNSET port
/// entry inherits the workload mode. No policy at all = PERMISSIVE.
pub fn server_mode(
    pas: &[PeerAuthentication],
    root_ns: &str,
    workload_ns: &str,
    workload_labels: &BTreeMap<String, String>,
    container_port: Option<u32>,
) -> ServerMode {
    let root_ns = if root_ns.is_empty() {
        "istio-system"
    } else {
        root_ns
    };
    let mut ignored = Vec::new();
    let mut chain = Vec::new();

    let mesh = oldest(
        pas.iter()
            .filter(|p| p.meta.namespace == root_ns && p.selector.is_none())
            .collect(),
        &mut ignored,
        "mesh-wide",
    );
    let ns = if workload_ns == root_ns {
        None
    } else {
        oldest(
            pas.iter()
                .filter(|p| p.meta.namespace == workload_ns && p.selector.is_none())
                .collect(),
            &mut ignored,
            "namespace-wide",
        )
    };
    for p in pas.iter().filter(|p| {
        p.meta.namespace == root_ns
            && p.selector
                .as_ref()
                .is_some_and(|s| labels_match(s, workload_labels))
    }) {
        ignored.push(format!(
            "{} ignored: a PeerAuthentication with a selector in the root namespace {root_ns} is not applied to any workload",
            p.object_ref()
        ));
    }
    let wl = if workload_ns == root_ns {
        None
    } else {
        oldest(
            pas.iter()
                .filter(|p| {
                    p.meta.namespace == workload_ns
                        && p.selector
                            .as_ref()
                            .is_some_and(|s| labels_match(s, workload_labels))
                })
                .collect(),
            &mut ignored,
            "workload",
        )
    };

    let mut mode = MtlsMode::Permissive;
    let mut source = ModeSource::Default;
    match mesh {
        Some(p) => match p.mode.effective() {
            Some(m) => {
                mode = m;
                source = ModeSource::Mesh(p.object_ref());
                chain.push(format!("mesh: {} sets {m}", p.object_ref().key()));
            }
            None => chain.push(format!(
                "mesh: {} leaves the mode {} (PERMISSIVE)",
                p.object_ref().key(),
                p.mode.as_str()
            )),
        },
        None => chain.push(format!(
            "mesh: no PeerAuthentication without selector in {root_ns} (default PERMISSIVE)"
        )),
    }
    if workload_ns != root_ns {
        match ns {
            Some(p) => match p.mode.effective() {
                Some(m) => {
                    mode = m;
                    source = ModeSource::Namespace(p.object_ref());
                    chain.push(format!("namespace: {} sets {m}", p.object_ref().key()));
                }
                None => chain.push(format!(
                    "namespace: {} is {}, inherits {mode}",
                    p.object_ref().key(),
                    p.mode.as_str()
                )),
            },
            None => chain.push(format!(
                "namespace: no namespace-wide PeerAuthentication in {workload_ns}"
            )),
        }
    }
    if let Some(p) = wl {
        let sel = format_labels(p.selector.as_ref().unwrap_or(&BTreeMap::new()));
        match p.mode.effective() {
            Some(m) => {
                mode = m;
                source = ModeSource::Workload(p.object_ref());
                chain.push(format!(
                    "workload: {} (selector {sel}) sets {m}",
                    p.object_ref().key()
                ));
            }
            None => chain.push(format!(
                "workload: {} (selector {sel}) is {}, inherits {mode}",
                p.object_ref().key(),
                p.mode.as_str()
            )),
        }
        if let Some(port) = container_port {
            if let Some(pm) = p.port_level.get(&port) {
                match pm.effective() {
                    Some(m) => {
                        mode = m;
                        source = ModeSource::WorkloadPort(p.object_ref(), port);
                        chain.push(format!("port {port}: portLevelMtls sets {m}"));
                    }
                    None => chain.push(format!(
                        "port {port}: portLevelMtls is UNSET, inherits {mode}"
                    )),
                }
            } else if !p.port_level.is_empty() {
                chain.push(format!(
                    "port {port}: no portLevelMtls entry (entries: {}; keys are container ports, not service ports)",
                    p.port_level.keys().map(|k| k.to_string()).collect::<Vec<_>>().join(", ")
                ));
            }
        }
    }
    // Port-level entries on namespace/mesh policies are ignored by Istio.
    for p in [mesh, ns].into_iter().flatten() {
        if !p.port_level.is_empty() {
            ignored.push(format!(
                "{}: portLevelMtls is ignored on a policy without a workload selector",
                p.object_ref()
            ));
        }
    }
    ServerMode {
        mode,
        source,
        chain,
        ignored,
    }
}

/// The mode auto mTLS can see for a service in `ns`: namespace-wide then
/// mesh-wide PeerAuthentication only. Workload-scoped and port-level
/// policies are invisible to it (istio/istio issue #32788;
/// pilot/pkg/model/authentication.go `GetNamespaceMutualTLSMode`,
/// push_context.go `BestEffortInferServiceMTLSMode`). A mesh policy with
/// UNSET counts as PERMISSIVE; a namespace UNSET inherits the mesh mode;
/// with neither, Istio falls back to PERMISSIVE (source `Default`).
pub fn namespace_mode(pas: &[PeerAuthentication], root_ns: &str, ns: &str) -> ServerMode {
    let mut m = server_mode(pas, root_ns, ns, &BTreeMap::new(), None);
    // server_mode with no labels never picks a workload policy; the chain already
    // reads mesh → namespace. Say what auto mTLS cannot see.
    let hidden: Vec<String> = pas
        .iter()
        .filter(|p| p.meta.namespace == ns && p.selector.is_some() && p.meta.namespace != root_ns)
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pa(ns: &str, name: &str, ts: &str, spec: Value) -> PeerAuthentication {
        PeerAuthentication::from_value(&json!({
            "apiVersion": "security.istio.io/v1",
            "kind": "PeerAuthentication",
            "metadata": {"name": name, "namespace": ns, "creationTimestamp": ts},
            "spec": spec
        }))
        .unwrap()
    }

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn parse_v1beta1_with_ports() {
        let p = PeerAuthentication::from_value(&json!({
            "apiVersion": "security.istio.io/v1beta1", "kind": "PeerAuthentication",
            "metadata": {"name": "x", "namespace": "foo"},
            "spec": {"selector": {"matchLabels": {"app": "a"}}, "mtls": {"mode": "STRICT"},
                     "portLevelMtls": {"8080": {"mode": "DISABLE"}, "9090": {}}}
        }))
        .unwrap();
        assert_eq!(p.mode, PaMode::Strict);
        assert_eq!(p.port_level.get(&8080), Some(&PaMode::Disable));
        assert_eq!(p.port_level.get(&9090), Some(&PaMode::Unset));
        assert!(p.selector.is_some());
        let e = PeerAuthentication::from_value(&json!({
            "kind": "PeerAuthentication", "metadata": {"name": "x", "namespace": "foo"},
            "spec": {"portLevelMtls": {"http": {"mode": "DISABLE"}}}
        }))
        .unwrap_err();
        assert!(e.to_string().contains("spec.portLevelMtls.http"), "{e}");
    }

    #[test]
    fn no_policy_is_permissive() {
        let m = server_mode(&[], "istio-system", "foo", &BTreeMap::new(), Some(80));
        assert_eq!(m.mode, MtlsMode::Permissive);
        assert_eq!(m.source, ModeSource::Default);
    }

    #[test]
    fn scopes_narrow_wins_and_unset_inherits() {
        let pas = vec![
            pa(
                "istio-system",
                "default",
                "2020-01-01T00:00:00Z",
                json!({"mtls": {"mode": "STRICT"}}),
            ),
            pa(
                "foo",
                "default",
                "2020-01-01T00:00:00Z",
                json!({"mtls": {"mode": "UNSET"}}),
            ),
            pa(
                "foo",
                "httpbin",
                "2020-01-01T00:00:00Z",
                json!({"selector": {"matchLabels": {"app": "httpbin"}}, "mtls": {"mode": "DISABLE"}}),
            ),
        ];
        let m = server_mode(
            &pas,
            "istio-system",
            "foo",
            &labels(&[("app", "other")]),
            None,
        );
        assert_eq!(m.mode, MtlsMode::Strict);
        assert!(matches!(m.source, ModeSource::Mesh(_)));
        assert!(
            m.chain.iter().any(|c| c.contains("inherits STRICT")),
            "{:?}",
            m.chain
        );
        let m = server_mode(
            &pas,
            "istio-system",
            "foo",
            &labels(&[("app", "httpbin")]),
            None,
        );
        assert_eq!(m.mode, MtlsMode::Disable);
        assert!(matches!(m.source, ModeSource::Workload(ref r) if r.name == "httpbin"));
        assert!(m
            .explain()
            .starts_with("DISABLE (decided by workload PeerAuthentication foo/httpbin)"));
    }

    #[test]
    fn oldest_wins_within_scope() {
        let pas = vec![
            pa(
                "foo",
                "b",
                "2021-01-01T00:00:00Z",
                json!({"mtls": {"mode": "DISABLE"}}),
            ),
            pa(
                "foo",
                "a",
                "2022-01-01T00:00:00Z",
                json!({"mtls": {"mode": "STRICT"}}),
            ),
        ];
        let m = server_mode(&pas, "istio-system", "foo", &BTreeMap::new(), None);
        assert_eq!(m.mode, MtlsMode::Disable);
        assert_eq!(m.ignored.len(), 1);
        assert!(m.ignored[0].contains("foo/a"));
    }

    #[test]
    fn root_namespace_selector_policies_are_ignored() {
        let pas = vec![pa(
            "istio-system",
            "sel",
            "2020-01-01T00:00:00Z",
            json!({"selector": {"matchLabels": {"app": "httpbin"}}, "mtls": {"mode": "STRICT"}}),
        )];
        let m = server_mode(
            &pas,
            "istio-system",
            "foo",
            &labels(&[("app", "httpbin")]),
            None,
        );
        assert_eq!(m.mode, MtlsMode::Permissive);
        assert_eq!(m.ignored.len(), 1);
    }

    #[test]
    fn port_level_only_on_workload_policies() {
        let pas = vec![
            pa(
                "foo",
                "ns",
                "2020-01-01T00:00:00Z",
                json!({"mtls": {"mode": "STRICT"}, "portLevelMtls": {"8080": {"mode": "DISABLE"}}}),
            ),
            pa(
                "foo",
                "wl",
                "2020-01-01T00:00:00Z",
                json!({"selector": {"matchLabels": {"app": "a"}}, "portLevelMtls": {"8080": {"mode": "PERMISSIVE"}, "9090": {"mode": "UNSET"}}}),
            ),
        ];
        // Namespace policy's port entry ignored.
        let m = server_mode(
            &pas,
            "istio-system",
            "foo",
            &labels(&[("app", "b")]),
            Some(8080),
        );
        assert_eq!(m.mode, MtlsMode::Strict);
        assert!(m
            .ignored
            .iter()
            .any(|i| i.contains("portLevelMtls is ignored")));
        // Workload policy: UNSET workload mode inherits STRICT, port 8080 → PERMISSIVE.
        let a = labels(&[("app", "a")]);
        let m = server_mode(&pas, "istio-system", "foo", &a, Some(8080));
        assert_eq!(m.mode, MtlsMode::Permissive);
        assert_eq!(
            m.source,
            ModeSource::WorkloadPort(pas[1].object_ref(), 8080)
        );
        let m = server_mode(&pas, "istio-system", "foo", &a, Some(9090));
        assert_eq!(m.mode, MtlsMode::Strict);
        let m = server_mode(&pas, "istio-system", "foo", &a, Some(80));
        assert_eq!(m.mode, MtlsMode::Strict);
        assert!(m.chain.iter().any(|c| c.contains("container ports")));
    }

    #[test]
    fn namespace_mode_ignores_workload_policies() {
        let pas = vec![
            pa(
                "istio-system",
                "default",
                "2020-01-01T00:00:00Z",
                json!({"mtls": {"mode": "STRICT"}}),
            ),
            pa(
                "foo",
                "wl",
                "2020-01-01T00:00:00Z",
                json!({"selector": {"matchLabels": {"app": "a"}}, "mtls": {"mode": "DISABLE"}}),
            ),
        ];
        let m = namespace_mode(&pas, "istio-system", "foo");
        assert_eq!(m.mode, MtlsMode::Strict);
        assert!(m.chain.iter().any(|c| c.contains("not visible")));
        let m = namespace_mode(&[], "istio-system", "foo");
        assert_eq!(m.mode, MtlsMode::Permissive);
        assert_eq!(m.source, ModeSource::Default);
    }

    #[test]
    fn mesh_unset_is_permissive_and_namespace_overrides() {
        let pas = vec![
            pa("istio-system", "default", "2020-01-01T00:00:00Z", json!({})),
            pa(
                "foo",
                "default",
                "2020-01-01T00:00:00Z",
                json!({"mtls": {"mode": "STRICT"}}),
            ),
        ];
        assert_eq!(
            namespace_mode(&pas, "istio-system", "bar").mode,
            MtlsMode::Permissive
        );
        assert_eq!(
            namespace_mode(&pas, "istio-system", "foo").mode,
            MtlsMode::Strict
        );
        // Custom root namespace.
        assert_eq!(
            namespace_mode(&pas, "mesh-root", "bar").mode,
            MtlsMode::Permissive
        );
    }
}
