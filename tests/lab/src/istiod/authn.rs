//! Server-side mTLS mode of a workload (what its inbound listener accepts)
//! and the service-level mode auto mTLS looks at.
//!
//! Modern (`security.istio.io` PeerAuthentication, 1.5+), istio/istio
//! `pilot/pkg/security/authn/policy_applier.go` `ComposePeerAuthentication`:
//! scopes mesh (root namespace, no selector) < namespace (no selector) <
//! workload (selector, not in the root namespace; root-namespace policies
//! with selectors are ignored). Within a scope the oldest wins. `UNSET`
//! inherits from the enclosing scope; with no policy the mode is PERMISSIVE.
//! `portLevelMtls` (workload policies only) is keyed by CONTAINER port.
//!
//! Legacy (`authentication.istio.io/v1alpha1`, until 1.5): `MeshPolicy`
//! `default` mesh-wide, `Policy` `default` without targets namespace-wide,
//! `Policy` with `targets` (service names, optional service ports) per
//! service; target > namespace > mesh. `peers: [{mtls: {}}]` is STRICT,
//! `mtls: {mode: PERMISSIVE}` is PERMISSIVE, no policy (or no `peers`) means
//! plaintext only (istio/istio 1.4 `pilot/pkg/networking/plugin/authn`).
//! Istio 1.5 read both APIs: PeerAuthentication when any applies to the
//! workload, else the legacy policies, else PERMISSIVE (1.5.0
//! `pilot/pkg/security/authn/v1beta1/policy_applier.go`).

use super::services::{services_for_pod, target_port_on, Service};
use super::version::IstioVersion;
use super::world::{self, labels, name, namespace, selects, string_map, MeshConfig, World};
use serde_json::Value;
use std::collections::BTreeMap;

/// Istio's `model.MutualTLSMode` for a server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MtlsMode {
    Strict,
    Permissive,
    Disable,
}

impl MtlsMode {
    fn parse(mode: Option<&str>) -> Option<MtlsMode> {
        match mode? {
            "STRICT" => Some(MtlsMode::Strict),
            "PERMISSIVE" => Some(MtlsMode::Permissive),
            "DISABLE" => Some(MtlsMode::Disable),
            _ => None, // UNSET or unknown: inherit
        }
    }
}

/// The effective server mode of one workload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerMtls {
    pub mode: MtlsMode,
    /// Overrides by container port.
    pub per_port: BTreeMap<u16, MtlsMode>,
}

impl ServerMtls {
    pub fn for_port(&self, container_port: u16) -> MtlsMode {
        self.per_port
            .get(&container_port)
            .copied()
            .unwrap_or(self.mode)
    }
}

fn peer_authns(world: &World) -> Vec<&Value> {
    let mut v: Vec<&Value> = world
        .of_kind("security.istio.io", "PeerAuthentication")
        .collect();
    v.sort_by_key(|o| world::age_key(o));
    v
}

fn pa_selector(pa: &Value) -> BTreeMap<String, String> {
    string_map(&pa["spec"]["selector"]["matchLabels"])
}

/// PeerAuthentications that apply to a workload, by scope (oldest first).
struct Applicable<'a> {
    mesh: Option<&'a Value>,
    namespace: Option<&'a Value>,
    workload: Option<&'a Value>,
}

fn applicable<'a>(
    world: &'a World,
    mesh: &MeshConfig,
    ns: &str,
    pod_labels: &BTreeMap<String, String>,
) -> Applicable<'a> {
    let all = peer_authns(world);
    let root = mesh.root_namespace.as_str();
    Applicable {
        mesh: all
            .iter()
            .find(|p| namespace(p) == root && pa_selector(p).is_empty())
            .copied(),
        namespace: if ns == root {
            None
        } else {
            all.iter()
                .find(|p| namespace(p) == ns && pa_selector(p).is_empty())
                .copied()
        },
        workload: if ns == root {
            None
        } else {
            all.iter()
                .find(|p| {
                    namespace(p) == ns
                        && !pa_selector(p).is_empty()
                        && selects(&pa_selector(p), pod_labels)
                })
                .copied()
        },
    }
}

fn pa_mode(pa: Option<&Value>) -> Option<MtlsMode> {
    MtlsMode::parse(pa?["spec"]["mtls"]["mode"].as_str())
}

/// ComposePeerAuthentication for a workload.
pub fn compose_peer_authentication(
    world: &World,
    mesh: &MeshConfig,
    ns: &str,
    pod_labels: &BTreeMap<String, String>,
) -> ServerMtls {
    let a = applicable(world, mesh, ns, pod_labels);
    let mut mode = MtlsMode::Permissive;
    for scope in [a.mesh, a.namespace, a.workload] {
        if let Some(m) = pa_mode(scope) {
            mode = m;
        }
    }
    let mut per_port = BTreeMap::new();
    if let Some(w) = a.workload {
        if let Some(pl) = w["spec"]["portLevelMtls"].as_object() {
            for (port, mtls) in pl {
                if let Ok(p) = port.parse::<u16>() {
                    per_port.insert(p, MtlsMode::parse(mtls["mode"].as_str()).unwrap_or(mode));
                }
            }
        }
    }
    ServerMtls { mode, per_port }
}

/// The legacy `peers` mode of a v1alpha1 Policy/MeshPolicy.
fn legacy_peers_mode(policy: &Value) -> MtlsMode {
    let peers = policy["spec"]["peers"].as_array();
    let Some(peers) = peers.filter(|p| !p.is_empty()) else {
        return MtlsMode::Disable;
    };
    for peer in peers {
        if let Some(obj) = peer.as_object() {
            if obj.contains_key("mtls") {
                return match peer["mtls"]["mode"].as_str() {
                    Some("PERMISSIVE") => MtlsMode::Permissive,
                    _ => MtlsMode::Strict,
                };
            }
        }
    }
    MtlsMode::Disable
}

fn legacy_policies(world: &World) -> Vec<&Value> {
    let mut v: Vec<&Value> = world.of_kind("authentication.istio.io", "Policy").collect();
    v.sort_by_key(|o| world::age_key(o));
    v
}

/// Legacy mode for a service port (`svc_port` is the SERVICE port), as the
/// pre-1.6 authn plugin resolved it: a Policy targeting the service (and
/// port), else the namespace `default` Policy, else the `default` MeshPolicy.
pub fn legacy_service_mode(
    world: &World,
    svc_ns: &str,
    svc_name: &str,
    svc_port: Option<(u16, &str)>,
) -> Option<MtlsMode> {
    let policies = legacy_policies(world);
    let targeted = policies.iter().find(|p| {
        namespace(p) == svc_ns
            && p["spec"]["targets"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|t| {
                    t["name"].as_str() == Some(svc_name)
                        && match (t["ports"].as_array().filter(|a| !a.is_empty()), svc_port) {
                            (None, _) => true,
                            (Some(ports), Some((num, pname))) => ports.iter().any(|pp| {
                                pp["number"].as_u64() == Some(u64::from(num))
                                    || (!pname.is_empty() && pp["name"].as_str() == Some(pname))
                            }),
                            (Some(_), None) => false,
                        }
                })
    });
    if let Some(p) = targeted {
        return Some(legacy_peers_mode(p));
    }
    let ns_default = policies.iter().find(|p| {
        namespace(p) == svc_ns
            && name(p) == "default"
            && p["spec"]["targets"].as_array().is_none_or(|t| t.is_empty())
    });
    if let Some(p) = ns_default {
        return Some(legacy_peers_mode(p));
    }
    world
        .of_kind("authentication.istio.io", "MeshPolicy")
        .find(|m| name(m) == "default")
        .map(legacy_peers_mode)
}

/// Does any PeerAuthentication apply to this workload?
fn any_beta_policy(
    world: &World,
    mesh: &MeshConfig,
    ns: &str,
    pod_labels: &BTreeMap<String, String>,
) -> bool {
    let a = applicable(world, mesh, ns, pod_labels);
    a.mesh.is_some() || a.namespace.is_some() || a.workload.is_some()
}

/// The server mode of a pod's inbound ports (keyed by container port).
pub fn server_mtls(
    world: &World,
    mesh: &MeshConfig,
    version: IstioVersion,
    pod: &Value,
) -> ServerMtls {
    let ns = namespace(pod);
    let pod_labels = labels(pod);
    let use_beta = version.beta_authn()
        && (!version.legacy_authn() || any_beta_policy(world, mesh, ns, &pod_labels));
    if use_beta {
        return compose_peer_authentication(world, mesh, ns, &pod_labels);
    }
    // Legacy: namespace/mesh default, with per-port overrides from policies
    // that target a service selecting the pod. With no legacy policy at all,
    // 1.5 is PERMISSIVE (istio/istio 1.5.0 `pilot/pkg/security/authn/v1beta1/
    // policy_applier.go`: no PeerAuthentication and no alpha policy →
    // `getMutualTLSModeForPort` returns MTLSPermissive); before 1.5 plaintext.
    let fallback = if version.beta_authn() {
        MtlsMode::Permissive
    } else {
        MtlsMode::Disable
    };
    let base = legacy_service_mode(world, ns, "", None).unwrap_or(fallback);
    let mut per_port = BTreeMap::new();
    let services: Vec<Service> = services_for_pod(world, pod);
    for svc in &services {
        for sp in &svc.ports {
            let Some(cport) = target_port_on(sp, pod) else {
                continue;
            };
            if per_port.contains_key(&cport) {
                continue;
            }
            if let Some(m) = legacy_service_mode(world, ns, &svc.name, Some((sp.port, &sp.name))) {
                if m != base {
                    per_port.insert(cport, m);
                }
            }
        }
    }
    ServerMtls {
        mode: base,
        per_port,
    }
}

/// The mode auto mTLS assumes for a service (istio/istio `PushContext.
/// BestEffortInferServiceMTLSMode`): the service namespace's or the mesh's
/// PeerAuthentication; workload-level policies are invisible to it
/// (istio/istio#32788); nothing set means PERMISSIVE. Mesh-external services
/// get no auto mTLS (None). For legacy releases, the legacy policy for the
/// service port.
pub fn service_mode_for_auto_mtls(
    world: &World,
    mesh: &MeshConfig,
    version: IstioVersion,
    svc: &Service,
    svc_port: u16,
) -> Option<MtlsMode> {
    if svc.mesh_external {
        return None;
    }
    let port_name = svc.port(svc_port).map(|p| p.name.as_str()).unwrap_or("");
    if version.beta_authn() {
        let a = applicable(world, mesh, &svc.namespace, &BTreeMap::new());
        if let Some(m) = pa_mode(a.namespace) {
            return Some(m);
        }
        if let Some(m) = pa_mode(a.mesh) {
            return Some(m);
        }
        if !version.legacy_authn() || a.namespace.is_some() || a.mesh.is_some() {
            return Some(MtlsMode::Permissive);
        }
    }
    // 1.5.0 `push_context.go` `BestEffortInferServiceMTLSMode`: namespace/mesh
    // PeerAuthentication, else the alpha policy, else PERMISSIVE.
    let fallback = if version.beta_authn() {
        MtlsMode::Permissive
    } else {
        MtlsMode::Disable
    };
    Some(
        legacy_service_mode(
            world,
            &svc.namespace,
            &svc.name,
            Some((svc_port, port_name)),
        )
        .unwrap_or(fallback),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pa(ns: &str, name: &str, created: &str, spec: Value) -> Value {
        json!({"apiVersion": "security.istio.io/v1beta1", "kind": "PeerAuthentication",
               "metadata": {"name": name, "namespace": ns, "creationTimestamp": created}, "spec": spec})
    }

    fn pod() -> Value {
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "httpbin-1", "namespace": "foo", "labels": {"app": "httpbin"}},
               "spec": {"containers": [{"name": "httpbin", "ports": [{"containerPort": 8080}]}]}})
    }

    fn svc() -> Value {
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "httpbin", "namespace": "foo"},
               "spec": {"selector": {"app": "httpbin"}, "ports": [{"name": "http", "port": 8000, "targetPort": 8080}]}})
    }

    fn mode(w: &World, minor: u32) -> ServerMtls {
        server_mtls(w, &MeshConfig::default(), (1, minor).into(), &pod())
    }

    #[test]
    fn no_policy_is_permissive_on_modern_and_plaintext_on_legacy() {
        // policy_applier.go: initial output PERMISSIVE; 1.4 authn plugin: no policy = no mTLS.
        let w = World::new(vec![pod()]);
        assert_eq!(mode(&w, 24).mode, MtlsMode::Permissive);
        assert_eq!(mode(&w, 4).mode, MtlsMode::Disable);
        // 1.5 read both APIs; with neither policy the workload is PERMISSIVE
        // (1.5.0 v1beta1/policy_applier.go), for auto mTLS too.
        assert_eq!(mode(&w, 5).mode, MtlsMode::Permissive);
        let w = World::new(vec![pod(), svc()]);
        let services = super::super::services::all_services(&w);
        assert_eq!(
            service_mode_for_auto_mtls(
                &w,
                &MeshConfig::default(),
                (1, 5).into(),
                &services[0],
                8000
            ),
            Some(MtlsMode::Permissive)
        );
    }

    #[test]
    fn narrowest_scope_wins_and_unset_inherits() {
        // ComposePeerAuthentication: mesh < namespace < workload; UNSET inherits.
        let w = World::new(vec![
            pod(),
            pa(
                "istio-system",
                "default",
                "2020-01-01T00:00:00Z",
                json!({"mtls": {"mode": "STRICT"}}),
            ),
            pa(
                "foo",
                "ns",
                "2020-01-01T00:00:00Z",
                json!({"mtls": {"mode": "PERMISSIVE"}}),
            ),
            pa(
                "foo",
                "wl",
                "2020-01-01T00:00:00Z",
                json!({"selector": {"matchLabels": {"app": "httpbin"}}, "mtls": {"mode": "UNSET"}, "portLevelMtls": {"8080": {"mode": "DISABLE"}, "9090": {"mode": "UNSET"}}}),
            ),
        ]);
        let m = mode(&w, 24);
        assert_eq!(m.mode, MtlsMode::Permissive);
        assert_eq!(m.for_port(8080), MtlsMode::Disable);
        assert_eq!(m.for_port(9090), MtlsMode::Permissive);
    }

    #[test]
    fn oldest_wins_within_a_scope_and_root_selector_policies_are_ignored() {
        let w = World::new(vec![
            pod(),
            pa(
                "foo",
                "newer",
                "2021-01-01T00:00:00Z",
                json!({"mtls": {"mode": "DISABLE"}}),
            ),
            pa(
                "foo",
                "older",
                "2020-01-01T00:00:00Z",
                json!({"mtls": {"mode": "STRICT"}}),
            ),
            pa(
                "istio-system",
                "sel",
                "2019-01-01T00:00:00Z",
                json!({"selector": {"matchLabels": {"app": "httpbin"}}, "mtls": {"mode": "DISABLE"}}),
            ),
        ]);
        assert_eq!(mode(&w, 24).mode, MtlsMode::Strict);
    }

    #[test]
    fn auto_mtls_sees_namespace_and_mesh_but_not_workload_policies() {
        // push_context.go BestEffortInferServiceMTLSMode; istio/istio#32788.
        let w = World::new(vec![
            pod(),
            svc(),
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
                json!({"selector": {"matchLabels": {"app": "httpbin"}}, "mtls": {"mode": "DISABLE"}}),
            ),
        ]);
        let services = super::super::services::all_services(&w);
        let s = &services[0];
        assert_eq!(
            service_mode_for_auto_mtls(&w, &MeshConfig::default(), (1, 24).into(), s, 8000),
            Some(MtlsMode::Strict)
        );
        assert_eq!(mode(&w, 24).mode, MtlsMode::Disable);
    }

    #[test]
    fn legacy_policies_target_namespace_mesh() {
        // 1.4 authn plugin: service target > namespace default > MeshPolicy default.
        let mesh_policy = json!({"apiVersion": "authentication.istio.io/v1alpha1", "kind": "MeshPolicy", "metadata": {"name": "default"}, "spec": {"peers": [{"mtls": {}}]}});
        let w = World::new(vec![pod(), svc(), mesh_policy.clone()]);
        assert_eq!(mode(&w, 0).mode, MtlsMode::Strict);
        let permissive_ns = json!({"apiVersion": "authentication.istio.io/v1alpha1", "kind": "Policy", "metadata": {"name": "default", "namespace": "foo"}, "spec": {"peers": [{"mtls": {"mode": "PERMISSIVE"}}]}});
        let w2 = World::new(vec![pod(), svc(), mesh_policy.clone(), permissive_ns]);
        assert_eq!(mode(&w2, 0).mode, MtlsMode::Permissive);
        let targeted = json!({"apiVersion": "authentication.istio.io/v1alpha1", "kind": "Policy", "metadata": {"name": "httpbin-off", "namespace": "foo"}, "spec": {"targets": [{"name": "httpbin", "ports": [{"number": 8000}]}]}});
        let w3 = World::new(vec![pod(), svc(), mesh_policy, targeted]);
        let m = mode(&w3, 0);
        assert_eq!(m.mode, MtlsMode::Strict);
        assert_eq!(m.for_port(8080), MtlsMode::Disable);
    }
}
