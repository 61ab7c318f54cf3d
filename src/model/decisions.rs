//! Model stage: the decisions, computed once per question and shared by every
//! rule and by `tls-check`.
//!
//! - the client's TLS for (client namespace + labels, host, port), with the
//!   chain that decided it: DestinationRule lookup → effective policy for the
//!   port → client TLS decision (auto mTLS, namespace mode);
//! - the server's mode for (pod, port), with its policy chain, from
//!   `istio::authn::Authn` (PeerAuthentication, MeshPolicy/Policy before
//!   Istio 1.6, and 1.5's per-workload fallback between them: one interface,
//!   no era branching here);
//! - what each proxy actually runs: the client cluster's TLS read from
//!   `config_dump`, the server's inbound mode read from its listeners;
//! - the two put together: what goes on the wire and whether the server
//!   accepts it ([`TlsPath`]).
//!
//! This file is the only caller of Istio's decision functions: the
//! DestinationRule lookup and effective policy
//! (`istio::destination_rule::{lookup, effective_policy}`), the client-wire ×
//! server-mode decision and the inbound-mode reading of listeners
//! (`istio::tls`: [`tls::decide_for`], [`tls::observed_wire`],
//! [`tls::accepts`], [`tls::mismatch`], [`tls::inbound_modes`]), and the
//! server mode ([`Authn::server_mode`], [`Authn::service_mode`],
//! [`Authn::namespace_mode`]). It adds no decision of its own: it picks the
//! inputs from the model and memoizes.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, OnceLock};

use crate::envoy::config_dump::{Cluster, ConfigDump};
use crate::istio::authn::{self, Authn, MtlsMode, ServerMode, ServerQuery};
use crate::istio::destination_rule::{
    effective_policy, lookup, EffectivePolicy, Lookup, Selection,
};
use crate::istio::tls::{
    self, ClientTlsDecision, ClientTlsInput, EndpointLabels, InboundMode, Mismatch, Server,
    ServiceKind, Wire,
};

use super::pods::{Pod, PodKey};
use super::proxies::{InboundView, Proxy};
use super::services::{ResolvedPort, Service, ServiceKey, ServicePort};
use super::Mesh;

/// Who calls: what Istio's client-side decisions depend on.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Client {
    pub namespace: String,
    pub labels: BTreeMap<String, String>,
}

impl Client {
    /// Any client in `namespace` (no labels: selector rules do not pick it).
    pub fn in_namespace(namespace: &str) -> Client {
        Client {
            namespace: namespace.to_string(),
            labels: BTreeMap::new(),
        }
    }

    pub fn of_pod(pod: &Pod) -> Client {
        Client {
            namespace: pod.key.namespace.clone(),
            labels: pod.labels.clone(),
        }
    }
}

/// The client's TLS towards one service port, and the chain that decided it.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientTls {
    /// Which DestinationRule applies to this client (and which lost).
    pub lookup: Arc<Lookup>,
    /// The applied rule's policy for the port.
    pub policy: Option<EffectivePolicy>,
    /// The destination's mode as auto mTLS sees it: namespace- and
    /// mesh-wide policy ([`Authn::service_mode`]; before Istio 1.6 also a
    /// v1alpha1 Policy targeting the service port).
    pub namespace_mode: ServerMode,
    pub auto_mtls: bool,
    pub decision: ClientTlsDecision,
}

impl ClientTls {
    pub fn selection(&self) -> Option<&Selection> {
        self.lookup.selection.as_ref()
    }

    /// What the client sends to an endpoint with or without `tlsMode: istio`.
    pub fn wire_for(&self, endpoint_labelled_istio: bool) -> Wire {
        self.decision.wire_for(endpoint_labelled_istio)
    }
}

/// One server pod for one service port: its mode from config and from its sidecar.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerSide {
    pub pod: PodKey,
    pub sidecar: bool,
    /// The container port the service port reaches on this pod.
    pub port: ResolvedPort,
    /// Labelled `security.istio.io/tlsMode: istio` (auto mTLS sends mTLS to it).
    pub labelled_istio: bool,
    /// The policy chain's mode; `None` without a sidecar.
    pub policy: Option<ServerMode>,
    /// What its inbound listener accepts on that port, when read.
    pub observed: Option<InboundMode>,
}

impl ServerSide {
    /// What config says: the policy's mode; a pod without sidecar takes plaintext only.
    pub fn predicted_mode(&self) -> MtlsMode {
        match &self.policy {
            Some(m) if self.sidecar => m.mode,
            _ => MtlsMode::Disable,
        }
    }

    /// What the server really accepts: its listener if read, else config.
    pub fn mode(&self) -> MtlsMode {
        if !self.sidecar {
            return MtlsMode::Disable;
        }
        self.observed
            .as_ref()
            .map(InboundMode::as_peer_auth_mode)
            .unwrap_or_else(|| self.predicted_mode())
    }

    /// The receiving side as `istio::tls` sees it: no sidecar, or a sidecar in [`Self::mode`].
    pub fn server(&self) -> Server {
        if self.sidecar {
            Server::Sidecar(self.mode())
        } else {
            Server::NoSidecar
        }
    }

    /// Would it take `wire`? The listener's own answer when read (user TLS
    /// passed through to the app is unknown), else [`tls::accepts`].
    pub fn accepts(&self, wire: Wire) -> Option<bool> {
        match &self.observed {
            Some(m) if self.sidecar => m.accepts(wire),
            _ => tls::accepts(self.server(), wire),
        }
    }
}

/// A client → server path for one service port: what goes on the wire and
/// whether the server takes it.
#[derive(Debug, Clone)]
pub struct TlsPath<'m> {
    pub client: Arc<ClientTls>,
    /// The client's cluster `outbound|port||host`, when its config_dump was read.
    pub cluster: Option<&'m Cluster>,
    pub server: Arc<ServerSide>,
    /// What config predicts the client sends to this server.
    pub predicted_wire: Wire,
    /// What the client's cluster sends to it; `None` without a dump or for
    /// a transport socket that is not TLS nor plaintext.
    pub observed_wire: Option<Wire>,
    /// The observed wire when the cluster was read, else the predicted one.
    pub wire: Option<Wire>,
    /// [`ServerSide::mode`].
    pub mode: MtlsMode,
    /// `Some(false)`: the server refuses what it gets (a 503);
    /// `None`: depends on certificates or unknown.
    pub accepted: Option<bool>,
    /// How the server refuses what it gets ([`tls::mismatch`]), if it does.
    pub mismatch: Option<Mismatch>,
}

impl TlsPath<'_> {
    /// Config and the running client agree on the wire (or no dump was read).
    pub fn config_agrees(&self) -> bool {
        self.cluster.is_none() || self.observed_wire == Some(self.predicted_wire)
    }
}

/// The name of the client cluster for a service port (no subset).
pub fn outbound_cluster_name(port: u16, fqdn: &str) -> String {
    crate::istio::routing::destination::cluster_name(u32::from(port), None, fqdn)
}

/// What a proxy's inbound listeners accept, per port (read once per proxy).
pub fn inbound_view(dump: &ConfigDump) -> InboundView {
    InboundView {
        by_port: tls::inbound_modes(&dump.listeners),
        catch_all: tls::inbound_catch_all(&dump.listeners),
    }
}

/// How istiod builds the client cluster for a Service: headless Services
/// (`clusterIP: None`) and a `loadBalancer.simple: PASSTHROUGH` rule make an
/// ORIGINAL_DST cluster (istio/istio `pilot/pkg/networking/core/cluster.go`
/// `buildOutboundClusters`, `cluster_builder.go` `applyLoadBalancer`). A
/// Kubernetes Service is never mesh-external.
fn service_kind(svc: &Service, policy: Option<&EffectivePolicy>) -> ServiceKind {
    let passthrough_lb = policy
        .and_then(|p| p.load_balancer.as_ref())
        .and_then(|lb| lb.simple.as_deref())
        == Some("PASSTHROUGH");
    if svc.is_headless() || passthrough_lb {
        ServiceKind::Passthrough
    } else {
        ServiceKind::Mesh
    }
}

/// A service port as the authn policies name it (v1alpha1 targets a
/// service and its port by number or name).
fn authn_port(svc: &Service, port: u16) -> authn::ServicePort<'_> {
    authn::ServicePort {
        name: &svc.key.name,
        number: u32::from(port),
        port_name: svc.port(port).and_then(|p| p.name.as_deref()),
    }
}

type LookupKey = (Client, ServiceKey);
type ClientTlsKey = (Client, ServiceKey, u16);
type ServerKey = (ServiceKey, u16, PodKey);

/// Memo of the decisions (the model is read-only; answers are computed on
/// first use and shared). A clone starts empty: its answers are recomputed
/// from the clone's own facts.
#[derive(Debug, Default)]
pub struct Cache {
    lookups: Mutex<HashMap<LookupKey, Arc<Lookup>>>,
    client_tls: Mutex<HashMap<ClientTlsKey, Arc<ClientTls>>>,
    servers: Mutex<HashMap<ServerKey, Arc<ServerSide>>>,
    namespace_modes: Mutex<HashMap<String, Arc<ServerMode>>>,
    authn: OnceLock<Arc<Authn>>,
    /// Services by key and pods by namespace (indices into the model's
    /// lists), so finding one does not scan them all (`scan` asks for
    /// every Service of a large mesh).
    pub(super) index: OnceLock<ObjectIndex>,
}

/// Positions of the model's Services and Pods, built on first use.
#[derive(Debug, Default)]
pub(super) struct ObjectIndex {
    pub services: HashMap<ServiceKey, usize>,
    pub pods_by_namespace: HashMap<String, Vec<usize>>,
}

impl ObjectIndex {
    pub(super) fn of(mesh: &Mesh) -> ObjectIndex {
        let mut ix = ObjectIndex::default();
        for (i, s) in mesh.services.iter().enumerate() {
            // The first of duplicate keys, as a linear search finds it.
            ix.services.entry(s.key.clone()).or_insert(i);
        }
        for (i, p) in mesh.pods.iter().enumerate() {
            ix.pods_by_namespace
                .entry(p.key.namespace.clone())
                .or_default()
                .push(i);
        }
        ix
    }
}

impl Clone for Cache {
    fn clone(&self) -> Cache {
        Cache::default()
    }
}

fn memo<K: std::hash::Hash + Eq, V>(
    map: &Mutex<HashMap<K, Arc<V>>>,
    key: K,
    compute: impl FnOnce() -> V,
) -> Arc<V> {
    if let Some(v) = map.lock().unwrap_or_else(|e| e.into_inner()).get(&key) {
        return v.clone();
    }
    // Computed outside the lock: a decision may ask for another one.
    let v = Arc::new(compute());
    map.lock()
        .unwrap_or_else(|e| e.into_inner())
        .entry(key)
        .or_insert(v)
        .clone()
}

impl Mesh {
    /// Which DestinationRule applies to `client` calling `svc`.
    /// (istio/istio `pilot/pkg/model/push_context.go` `destinationRule`.)
    pub fn destination_rule_lookup(&self, client: &Client, svc: &Service) -> Arc<Lookup> {
        memo(
            &self.cache.lookups,
            (client.clone(), svc.key.clone()),
            || {
                lookup(
                    &self.config.destination_rules,
                    &client.namespace,
                    &client.labels,
                    &svc.fqdn,
                    &svc.key.namespace,
                    &self.settings.root_namespace,
                )
            },
        )
    }

    /// Every authentication policy, answering for the mesh's Istio era
    /// (built once from the config, the release and the APIs discovery found;
    /// v1alpha1 targets resolve in the cluster domain).
    pub fn authn(&self) -> Arc<Authn> {
        self.cache
            .authn
            .get_or_init(|| {
                let c = &self.config;
                Arc::new(Authn::new(
                    c.authn_evidence(self.settings.version).api(),
                    &self.settings.root_namespace,
                    &self.domain.suffix,
                    c.peer_authentications.clone(),
                    c.legacy_policies(),
                ))
            })
            .clone()
    }

    /// The mode of `namespace` as client-side auto mTLS sees it (mesh and
    /// namespace policies only; istio/istio#32788).
    pub fn namespace_mode(&self, namespace: &str) -> Arc<ServerMode> {
        memo(&self.cache.namespace_modes, namespace.to_string(), || {
            self.authn().namespace_mode(namespace)
        })
    }

    /// The client's TLS towards `svc:port`.
    pub fn client_tls(&self, client: &Client, svc: &Service, port: u16) -> Arc<ClientTls> {
        memo(
            &self.cache.client_tls,
            (client.clone(), svc.key.clone(), port),
            || {
                let lk = self.destination_rule_lookup(client, svc);
                let policy = lk
                    .selection
                    .as_ref()
                    .map(|s| effective_policy(s, port as u32, None));
                let endpoints =
                    EndpointLabels::from_flags(self.backing_pods(svc).map(Pod::labelled_istio_tls));
                let namespace_mode = self
                    .authn()
                    .service_mode(&svc.key.namespace, authn_port(svc, port));
                let decision = tls::decide_for(&ClientTlsInput {
                    rule_tls: policy.as_ref().and_then(|p| p.tls.as_ref()),
                    auto_mtls: self.settings.auto_mtls,
                    service_mode: namespace_mode.mode,
                    endpoints,
                    service: service_kind(svc, policy.as_ref()),
                });
                ClientTls {
                    lookup: lk,
                    policy,
                    namespace_mode,
                    auto_mtls: self.settings.auto_mtls,
                    decision,
                }
            },
        )
    }

    /// The server side of `svc:port` on `pod`: its policy chain and, when
    /// its sidecar was read, what the listener accepts.
    pub fn server_side(&self, svc: &Service, port: &ServicePort, pod: &Pod) -> Arc<ServerSide> {
        memo(
            &self.cache.servers,
            (svc.key.clone(), port.number, pod.key.clone()),
            || {
                let resolved = port.on_pod(pod);
                let sidecar = pod.has_sidecar();
                let policy = sidecar.then(|| self.server_policy(svc, port, pod, resolved.number));
                let observed = self
                    .proxy_of(&pod.key)
                    .and_then(|p| p.inbound.mode_for(resolved.number).cloned());
                ServerSide {
                    pod: pod.key.clone(),
                    sidecar,
                    port: resolved,
                    labelled_istio: pod.labelled_istio_tls(),
                    policy,
                    observed,
                }
            },
        )
    }

    /// The authn policy chain for one pod and port.
    fn server_policy(
        &self,
        svc: &Service,
        port: &ServicePort,
        pod: &Pod,
        cport: u16,
    ) -> ServerMode {
        self.authn().server_mode(&ServerQuery {
            namespace: &pod.key.namespace,
            labels: &pod.labels,
            container_port: Some(u32::from(cport)),
            service: Some(authn_port(svc, port.number)),
        })
    }

    /// The path from `client` (whose sidecar is `proxy`, when read) to `pod`
    /// for `svc:port`.
    pub fn tls_path<'m>(
        &'m self,
        client: &Client,
        proxy: Option<&'m Proxy>,
        svc: &Service,
        port: &ServicePort,
        pod: &Pod,
    ) -> TlsPath<'m> {
        let client_tls = self.client_tls(client, svc, port.number);
        let server = self.server_side(svc, port, pod);
        let cluster = proxy.and_then(|p| p.cluster(&outbound_cluster_name(port.number, &svc.fqdn)));
        let predicted_wire = client_tls.wire_for(server.labelled_istio);
        let observed_wire =
            cluster.and_then(|c| tls::observed_wire(&c.client_tls, server.labelled_istio));
        let wire = match cluster {
            Some(_) => observed_wire,
            None => Some(predicted_wire),
        };
        let mode = server.mode();
        TlsPath {
            accepted: wire.and_then(|w| server.accepts(w)),
            mismatch: wire.and_then(|w| tls::mismatch(w, server.server())),
            client: client_tls,
            cluster,
            server,
            predicted_wire,
            observed_wire,
            wire,
            mode,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_side_modes() {
        let mut s = ServerSide {
            pod: PodKey::new("foo", "p"),
            sidecar: false,
            port: ResolvedPort {
                number: 8080,
                resolution: super::super::services::PortResolution::Number,
            },
            labelled_istio: false,
            policy: None,
            observed: None,
        };
        assert_eq!(s.mode(), MtlsMode::Disable);
        s.sidecar = true;
        s.policy = Some(ServerMode {
            mode: MtlsMode::Strict,
            source: authn::ModeSource::Default,
            chain: vec![],
            ignored: vec![],
        });
        assert_eq!(s.mode(), MtlsMode::Strict);
        s.observed = Some(InboundMode {
            accepts_mtls: true,
            accepts_plaintext: true,
            requires_client_cert: false,
            passes_tls_through: false,
            source_listener: "virtualInbound".into(),
        });
        assert_eq!(
            s.mode(),
            MtlsMode::Permissive,
            "the listener wins over config"
        );
        assert_eq!(s.predicted_mode(), MtlsMode::Strict);
    }

    use crate::envoy::config_dump::ClientTlsConfig;
    use crate::model::builder::*;
    use crate::snapshot::ProxyRole;

    /// The path from the first caller to each backing pod of the target's first port.
    fn paths(m: &Mesh) -> Vec<(String, Option<Wire>, Option<Mismatch>)> {
        let (svc, port) = m.target_ports()[0];
        let client = Client::in_namespace("foo");
        m.backing_pods(svc)
            .map(|pod| {
                let p = m.tls_path(&client, None, svc, port, pod);
                (pod.key.name.clone(), p.wire, p.mismatch)
            })
            .collect()
    }

    #[test]
    fn a_headless_service_gets_one_wire_for_every_endpoint() {
        // cluster_tls.go: ORIGINAL_DST clusters keep one socket; push_context.go
        // BestEffortInferServiceMTLSMode: DISABLE unless every endpoint has a sidecar.
        let plain = pod("foo", "httpbin-2", "httpbin", "10.0.0.3", None);
        let mut headless = httpbin();
        headless.cluster_ip = Some("None".into());
        let mixed = MeshBuilder::new()
            .target(headless.clone())
            .pod(httpbin_pod())
            .pod(plain.clone())
            .object(mesh_strict())
            .build();
        assert_eq!(
            paths(&mixed),
            vec![
                (
                    "httpbin-1".into(),
                    Some(Wire::Plaintext),
                    Some(Mismatch::PlaintextToStrict)
                ),
                ("httpbin-2".into(), Some(Wire::Plaintext), None),
            ]
        );
        // Near miss: the same pods behind a ClusterIP Service: auto mTLS per endpoint.
        let cluster_ip = MeshBuilder::new()
            .target(httpbin())
            .pod(httpbin_pod())
            .pod(plain)
            .object(mesh_strict())
            .build();
        assert_eq!(
            paths(&cluster_ip),
            vec![
                ("httpbin-1".into(), Some(Wire::IstioMtls), None),
                ("httpbin-2".into(), Some(Wire::Plaintext), None),
            ]
        );
        // Near miss: every endpoint has a sidecar: Istio mTLS to all.
        let all = MeshBuilder::new()
            .target(headless)
            .pod(httpbin_pod())
            .object(mesh_strict())
            .build();
        assert_eq!(
            paths(&all),
            vec![("httpbin-1".into(), Some(Wire::IstioMtls), None)]
        );
    }

    #[test]
    fn a_passthrough_load_balancer_is_an_original_dst_cluster() {
        let m = MeshBuilder::new()
            .target(httpbin())
            .pod(httpbin_pod())
            .pod(pod("foo", "httpbin-2", "httpbin", "10.0.0.3", None))
            .object(mesh_strict())
            .object(dr(
                "foo",
                "httpbin",
                "httpbin",
                Some(serde_json::json!({"loadBalancer": {"simple": "PASSTHROUGH"}})),
            ))
            .build();
        assert_eq!(paths(&m)[0].2, Some(Mismatch::PlaintextToStrict));
    }

    #[test]
    fn the_running_cluster_decides_the_wire() {
        // Config predicts auto mTLS; the client's cluster sends plaintext.
        let m = MeshBuilder::new()
            .target(httpbin())
            .pod(httpbin_pod())
            .object(mesh_strict())
            .proxy(proxy(&sleep_pod(), ProxyRole::Client).with_cluster(cluster(
                8000,
                "httpbin.foo.svc.cluster.local",
                ClientTlsConfig::Plaintext,
            )))
            .build();
        let (svc, port) = m.target_ports()[0];
        let client = Client::of_pod(&sleep_pod());
        let pod = m.backing_pods(svc).next().unwrap();
        let p = m.tls_path(&client, m.proxies.first(), svc, port, pod);
        assert_eq!(p.predicted_wire, Wire::IstioMtls);
        assert_eq!(p.observed_wire, Some(Wire::Plaintext));
        assert!(!p.config_agrees());
        assert_eq!(
            (p.accepted, p.mismatch),
            (Some(false), Some(Mismatch::PlaintextToStrict))
        );
    }

    fn server_mode_of(b: MeshBuilder) -> (MtlsMode, authn::ModeSource) {
        let m = b.target(httpbin()).pod(httpbin_pod()).build();
        let (svc, port) = m.target_ports()[0];
        let pod = m.backing_pods(svc).next().unwrap();
        let s = m.server_side(svc, port, pod);
        let p = s.policy.clone().unwrap();
        (p.mode, p.source)
    }

    #[test]
    fn the_server_mode_follows_the_istio_era() {
        let ns_policy = serde_json::json!({"apiVersion": "authentication.istio.io/v1alpha1",
            "kind": "Policy", "metadata": {"name": "default", "namespace": "foo"},
            "spec": {"peers": [{"mtls": {}}]}});
        // 1.5: a PeerAuthentication exists but selects another workload; for
        // httpbin none applies, so the v1alpha1 namespace Policy decides.
        let (mode, source) = server_mode_of(
            MeshBuilder::new()
                .istio("1.5.2")
                .object(ns_policy.clone())
                .object(pa("foo", "other", "DISABLE", Some("other"))),
        );
        assert_eq!(mode, MtlsMode::Strict);
        assert!(
            matches!(source, authn::ModeSource::LegacyNamespace(_)),
            "{source:?}"
        );
        // 1.5 without any policy that applies: PERMISSIVE.
        let (mode, _) = server_mode_of(MeshBuilder::new().istio("1.5.2").object(pa(
            "foo",
            "other",
            "DISABLE",
            Some("other"),
        )));
        assert_eq!(mode, MtlsMode::Permissive);
        // ≤1.4 without a policy: no TLS chain at all.
        let (mode, source) = server_mode_of(MeshBuilder::new().istio("1.4.6"));
        assert_eq!(
            (mode, source),
            (MtlsMode::Disable, authn::ModeSource::Default)
        );
        // ≥1.6 without a policy: PERMISSIVE; a v1alpha1 object left behind is ignored.
        let (mode, _) = server_mode_of(MeshBuilder::new().object(ns_policy));
        assert_eq!(mode, MtlsMode::Permissive);
    }
}
