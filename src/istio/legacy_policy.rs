//! authentication.istio.io/v1alpha1 `MeshPolicy` and `Policy` (Istio 1.0–1.5;
//! removed in 1.6) and the server mode they gave.
//!
//! Sources: istio/istio at tag 1.4.0 `pilot/pkg/model/push_context.go`
//! (`initAuthnPolicies`, `AuthenticationPolicyForWorkload`,
//! `authenticationPolicyForWorkload`), `pilot/pkg/security/authn/v1alpha1/model.go`
//! (`GetMutualTLSMode`), `policy_applier.go` (`GetMutualTLS`); istio/api
//! `authentication/v1alpha1/policy.proto`.

use serde_json::Value;

use super::host;
use super::object::{Meta, ObjectError, Reader};
use super::peer_auth::{ModeSource, MtlsMode, ServerMode};

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
                                    super::object::type_name(other)
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

/// Istio 1.4 `authenticationPolicyForWorkload`: over the candidate entries
/// (oldest first), the first without a port selector is the default; an entry
/// whose port selector matches wins immediately.
fn pick<'a>(
    entries: &[(&'a LegacyPolicy, Option<&'a PortSelector>)],
    number: u32,
    name: Option<&str>,
) -> Option<&'a LegacyPolicy> {
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

/// The v1alpha1 server mode for service `service_name` in `ns` on the given
/// service port.
///
/// Precedence (Istio 1.4 `AuthenticationPolicyForWorkload`): a `Policy`
/// targeting the service (its host name, resolved like any short name; with
/// a matching port, or without ports) > the namespace-wide `Policy` (no
/// targets) > `MeshPolicy` named `default`. The chosen policy decides alone:
/// a namespace Policy with only JWT origins turns mTLS **off** for the
/// namespace even under a STRICT MeshPolicy. No policy = no mTLS (DISABLE).
pub fn legacy_server_mode(
    mesh_policies: &[LegacyPolicy],
    policies: &[LegacyPolicy],
    service_name: &str,
    ns: &str,
    service_port_number: u32,
    service_port_name: Option<&str>,
) -> ServerMode {
    let svc_host = host::fqdn_default(service_name, ns);
    let mut sorted: Vec<&LegacyPolicy> = policies.iter().filter(|p| !p.is_mesh_policy).collect();
    sorted.sort_by(|a, b| a.meta.age_order(&b.meta));
    let mut chain = Vec::new();
    let mut ignored = Vec::new();

    let mesh = mesh_policies
        .iter()
        .chain(policies.iter())
        .filter(|p| p.is_mesh_policy)
        .find(|p| p.meta.name == "default");
    for p in mesh_policies
        .iter()
        .filter(|p| p.is_mesh_policy && p.meta.name != "default")
    {
        ignored.push(format!(
            "{} ignored: only the MeshPolicy named `default` is used",
            p.meta.object_ref()
        ));
    }
    match mesh {
        Some(p) => chain.push(format!("mesh: MeshPolicy default {}", p.describe_mode())),
        None => chain.push("mesh: no MeshPolicy `default` (no mTLS)".into()),
    }

    // Service-targeted entries, in creation order, one per (policy, port selector).
    let mut svc_entries: Vec<(&LegacyPolicy, Option<&PortSelector>)> = Vec::new();
    for p in &sorted {
        for t in &p.targets {
            if host::fqdn_default(&t.name, &p.meta.namespace) != svc_host {
                continue;
            }
            if t.ports.is_empty() {
                svc_entries.push((p, None));
            } else {
                for s in &t.ports {
                    svc_entries.push((p, Some(s)));
                }
            }
        }
    }
    let ns_entries: Vec<(&LegacyPolicy, Option<&PortSelector>)> = sorted
        .iter()
        .filter(|p| p.meta.namespace == ns && p.targets.is_empty())
        .map(|p| (*p, None))
        .collect();
    let ns_policy = pick(&ns_entries, service_port_number, service_port_name);
    for (p, _) in ns_entries.iter().skip(1) {
        ignored.push(format!(
            "{} ignored: an older namespace-wide Policy exists in {ns}",
            p.meta.object_ref()
        ));
    }
    match ns_policy {
        Some(p) => chain.push(format!("namespace: {} {}", p.meta.key(), p.describe_mode())),
        None => chain.push(format!("namespace: no namespace-wide Policy in {ns}")),
    }

    if let Some(p) = pick(&svc_entries, service_port_number, service_port_name) {
        chain.push(format!(
            "service: {} targets {svc_host} (port {service_port_number}) and {}",
            p.meta.key(),
            p.describe_mode()
        ));
        return ServerMode {
            mode: p.mode(),
            source: ModeSource::LegacyService(p.meta.object_ref()),
            chain,
            ignored,
        };
    }
    if !svc_entries.is_empty() {
        chain.push(format!(
            "service: Policies target {svc_host} but none on port {service_port_number}"
        ));
    }
    if let Some(p) = ns_policy {
        return ServerMode {
            mode: p.mode(),
            source: ModeSource::LegacyNamespace(p.meta.object_ref()),
            chain,
            ignored,
        };
    }
    match mesh {
        Some(p) => ServerMode {
            mode: p.mode(),
            source: ModeSource::LegacyMesh(p.meta.object_ref()),
            chain,
            ignored,
        },
        None => ServerMode {
            mode: MtlsMode::Disable,
            source: ModeSource::Default,
            chain,
            ignored,
        },
    }
}

/// Namespace-level legacy mode (namespace Policy > MeshPolicy), ignoring
/// service-targeted policies — the closest analogue of what Istio 1.4/1.5
/// auto mTLS consulted.
pub fn legacy_namespace_mode(
    mesh_policies: &[LegacyPolicy],
    policies: &[LegacyPolicy],
    ns: &str,
) -> ServerMode {
    let untargeted: Vec<LegacyPolicy> = policies
        .iter()
        .filter(|p| p.targets.is_empty())
        .cloned()
        .collect();
    legacy_server_mode(mesh_policies, &untargeted, "", ns, 0, None)
}

/// Group helper: split raw objects into (mesh policies, policies), skipping
/// other kinds; errors name the object.
pub fn parse_all(objects: &[Value]) -> (Vec<LegacyPolicy>, Vec<LegacyPolicy>, Vec<ObjectError>) {
    let mut mesh = Vec::new();
    let mut pol = Vec::new();
    let mut errs = Vec::new();
    for o in objects {
        let kind = o.get("kind").and_then(Value::as_str).unwrap_or("");
        let group = o
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or("")
            .split('/')
            .next()
            .unwrap_or("");
        if group != "authentication.istio.io" || !(kind == "MeshPolicy" || kind == "Policy") {
            continue;
        }
        match LegacyPolicy::from_value(o) {
            Ok(p) if p.is_mesh_policy => mesh.push(p),
            Ok(p) => pol.push(p),
            Err(e) => errs.push(e),
        }
    }
    (mesh, pol, errs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn mesh(spec: Value) -> LegacyPolicy {
        LegacyPolicy::from_value(&json!({
            "apiVersion": "authentication.istio.io/v1alpha1", "kind": "MeshPolicy",
            "metadata": {"name": "default"}, "spec": spec
        }))
        .unwrap()
    }
    fn policy(ns: &str, name: &str, ts: &str, spec: Value) -> LegacyPolicy {
        LegacyPolicy::from_value(&json!({
            "apiVersion": "authentication.istio.io/v1alpha1", "kind": "Policy",
            "metadata": {"name": name, "namespace": ns, "creationTimestamp": ts}, "spec": spec
        }))
        .unwrap()
    }

    #[test]
    fn peer_forms() {
        assert_eq!(
            mesh(json!({"peers": [{"mtls": {}}]})).peer_mtls,
            Some(LegacyMtls::Strict)
        );
        assert_eq!(
            mesh(json!({"peers": [{"mtls": null}]})).peer_mtls,
            Some(LegacyMtls::Strict)
        );
        assert_eq!(
            mesh(json!({"peers": [{"mtls": {"mode": "STRICT"}}]})).peer_mtls,
            Some(LegacyMtls::Strict)
        );
        assert_eq!(
            mesh(json!({"peers": [{"mtls": {"mode": "PERMISSIVE"}}]})).peer_mtls,
            Some(LegacyMtls::Permissive)
        );
        assert_eq!(mesh(json!({"peers": [{"jwt": {}}]})).peer_mtls, None);
        assert_eq!(mesh(json!({})).peer_mtls, None);
        let e = LegacyPolicy::from_value(&json!({
            "kind": "Policy", "metadata": {"name": "d", "namespace": "n"},
            "spec": {"peers": [{"mtls": {"mode": "SOMETIMES"}}]}
        }))
        .unwrap_err();
        assert!(e.to_string().contains("spec.peers[0].mtls.mode"), "{e}");
    }

    #[test]
    fn precedence_service_namespace_mesh() {
        let m = vec![mesh(json!({"peers": [{"mtls": {}}]}))];
        let none = legacy_server_mode(&m, &[], "httpbin", "foo", 8000, Some("http"));
        assert_eq!(none.mode, MtlsMode::Strict);
        assert!(matches!(none.source, ModeSource::LegacyMesh(_)));

        let pols = vec![
            policy(
                "foo",
                "default",
                "2019-01-01T00:00:00Z",
                json!({"peers": [{"mtls": {"mode": "PERMISSIVE"}}]}),
            ),
            policy(
                "foo",
                "httpbin",
                "2019-02-01T00:00:00Z",
                json!({"targets": [{"name": "httpbin", "ports": [{"number": 8000}]}]}),
            ),
        ];
        let m1 = legacy_server_mode(&m, &pols, "httpbin", "foo", 8000, None);
        assert_eq!(
            m1.mode,
            MtlsMode::Disable,
            "service policy without peers = no mTLS"
        );
        assert!(matches!(m1.source, ModeSource::LegacyService(_)));
        let m2 = legacy_server_mode(&m, &pols, "httpbin", "foo", 9000, None);
        assert_eq!(m2.mode, MtlsMode::Permissive);
        assert!(matches!(m2.source, ModeSource::LegacyNamespace(_)));
        let m3 = legacy_server_mode(&m, &pols, "other", "bar", 80, None);
        assert_eq!(m3.mode, MtlsMode::Strict);
    }

    #[test]
    fn no_policy_means_no_mtls() {
        let m = legacy_server_mode(&[], &[], "a", "b", 80, None);
        assert_eq!(m.mode, MtlsMode::Disable);
        assert_eq!(m.source, ModeSource::Default);
    }

    #[test]
    fn port_by_name_and_fqdn_target() {
        let pols = vec![policy(
            "foo",
            "p",
            "2019-01-01T00:00:00Z",
            json!({"targets": [{"name": "httpbin.foo.svc.cluster.local", "ports": [{"name": "http"}]}], "peers": [{"mtls": {}}]}),
        )];
        assert_eq!(
            legacy_server_mode(&[], &pols, "httpbin", "foo", 8000, Some("http")).mode,
            MtlsMode::Strict
        );
        assert_eq!(
            legacy_server_mode(&[], &pols, "httpbin", "foo", 8000, Some("grpc")).mode,
            MtlsMode::Disable
        );
    }

    #[test]
    fn only_mesh_policy_default_counts() {
        let other = LegacyPolicy::from_value(&json!({
            "kind": "MeshPolicy", "metadata": {"name": "extra"}, "spec": {"peers": [{"mtls": {}}]}
        }))
        .unwrap();
        let m = legacy_server_mode(&[other], &[], "a", "b", 80, None);
        assert_eq!(m.mode, MtlsMode::Disable);
        assert_eq!(m.ignored.len(), 1);
    }

    #[test]
    fn namespace_mode_and_parse_all() {
        let objs = vec![
            json!({"apiVersion": "authentication.istio.io/v1alpha1", "kind": "MeshPolicy", "metadata": {"name": "default"}, "spec": {"peers": [{"mtls": {}}]}}),
            json!({"apiVersion": "authentication.istio.io/v1alpha1", "kind": "Policy", "metadata": {"name": "default", "namespace": "foo"}, "spec": {"origins": [{"jwt": {"issuer": "x"}}]}}),
            json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "x", "namespace": "foo"}}),
            json!({"apiVersion": "authentication.istio.io/v1alpha1", "kind": "Policy", "metadata": {"name": "bad", "namespace": "foo"}, "spec": {"targets": [{}]}}),
        ];
        let (m, p, errs) = parse_all(&objs);
        assert_eq!((m.len(), p.len(), errs.len()), (1, 1, 1));
        assert!(errs[0].to_string().contains("spec.targets[0].name"));
        let nm = legacy_namespace_mode(&m, &p, "foo");
        assert_eq!(
            nm.mode,
            MtlsMode::Disable,
            "a JWT-only namespace Policy turns mTLS off"
        );
        assert_eq!(legacy_namespace_mode(&m, &p, "bar").mode, MtlsMode::Strict);
    }
}
