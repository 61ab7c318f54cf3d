//! The model: the only typed view of a snapshot.
//!
//! Place in the flow: `collect → snapshot → model → analyze → report`.
//! [`Mesh::from_snapshot`] reads a [`Snapshot`] once: pods (with their sidecar,
//! classic or native), workloads and replica groups, every Service with its
//! ports resolved as istiod resolves them, endpoints, the cluster domain, the
//! mesh config with the release's defaults, the Istio version, every Istio
//! object once at its preferred version, each proxy's parsed admin output and
//! access log, and what could not be read ([`Gap`]). The decisions Istio
//! makes from these (client TLS, server mode, what the proxies run) are
//! answered once in [`decisions`] and shared.
//!
//! Nothing after this stage reads raw JSON: rules and renderers get typed
//! views. The model holds no report text.

pub mod callers;
pub mod config;
pub mod decisions;
pub mod gaps;
pub mod manifest;
pub mod networking;
pub mod pods;
pub mod proxies;
pub mod routing;
pub mod services;
pub mod settings;
mod source;
pub mod target;

#[cfg(test)]
pub(crate) mod builder;

use serde_json::Value;

use crate::envoy::access_log::{json_format_from_str, LogFormatSpec};
use crate::envoy::config_dump::ConfigDump;
use crate::istio::mesh_config::{AccessLogEncoding, IstioVersion, MeshConfig};
use crate::snapshot::{ProxyRole, Snapshot};

pub use callers::{Caller, CallerSource, GatewayCaller, GatewayPath, TargetRoutes};
pub use config::IstioConfig;
pub use decisions::{Client, ClientTls, ServerSide, TlsPath};
pub use gaps::{Gap, GapKind, GapSource};
pub use manifest::{Manifest, PoolField, TlsAt};
pub use pods::{Namespace, Pod, PodKey, WorkloadKey};
pub use proxies::Proxy;
pub use routing::{Presence, RouteReads};
pub use services::{EndpointSet, Service, ServiceKey, ServicePort};
pub use settings::{ClusterDomain, MeshConfigSource, MeshSettings, VersionSource};
pub use target::{TargetSelection, TargetSource};

/// Everything the analysis knows about the mesh, typed.
///
/// Read-only once decisions are asked: they are memoized. To evaluate a
/// change (a candidate fix), derive a new model with [`Mesh::with_config`].
#[derive(Debug, Clone)]
pub struct Mesh {
    pub target: TargetSelection,
    /// When the snapshot was taken (RFC 3339), not the clock.
    pub taken_at: String,
    pub settings: MeshSettings,
    pub domain: ClusterDomain,
    pub namespaces: Vec<Namespace>,
    pub pods: Vec<Pod>,
    /// Every Service in the snapshot (the target's are in [`Mesh::target`]).
    pub services: Vec<Service>,
    pub endpoints: Vec<EndpointSet>,
    pub config: IstioConfig,
    pub proxies: Vec<Proxy>,
    /// What could not be read: as collected, then as found while reading.
    pub gaps: Vec<Gap>,
    cache: decisions::Cache,
    /// Istio's routing, built once ([`Mesh::routing`]).
    routing: crate::istio::routing::Routing,
    /// What the snapshot vouches for about the objects routes name.
    pub route_reads: RouteReads,
    route_cache: callers::Cache,
    /// Whether findings get fixes searched and checked against the whole
    /// mesh (`analyze::fix`). `scan` turns it off: it points at `diagnose`
    /// for fixes, and checking each candidate against every Service for
    /// every finding would grow with the square of the mesh.
    pub search_fixes: bool,
}

/// Client sidecars of one replica group: one stands for the others.
#[derive(Debug, Clone, Copy)]
pub struct ClientGroup<'m> {
    /// The replica with the most access-log lines (the best evidence).
    pub proxy: &'m Proxy,
    /// Its Pod, when the snapshot has it.
    pub pod: Option<&'m Pod>,
    /// How many other read replicas it stands for.
    pub others: usize,
}

impl<'m> ClientGroup<'m> {
    /// Istio's view of this caller.
    pub fn client(&self) -> decisions::Client {
        match self.pod {
            Some(p) => decisions::Client::of_pod(p),
            None => decisions::Client::in_namespace(
                self.proxy
                    .pod
                    .as_ref()
                    .map(|k| k.namespace.as_str())
                    .unwrap_or(""),
            ),
        }
    }
}

fn parse_all<T, E: ToString>(
    objects: &[Value],
    kind: &str,
    parse: impl Fn(&Value) -> Result<T, E>,
    gaps: &mut Vec<Gap>,
) -> Vec<T> {
    objects
        .iter()
        .filter(|o| o["kind"] == kind)
        .filter_map(|o| match parse(o) {
            Ok(t) => Some(t),
            Err(e) => {
                gaps.push(Gap::found(
                    GapSource::Object(crate::istio::object::ObjectRef {
                        kind: kind.to_string(),
                        namespace: o["metadata"]["namespace"].as_str().unwrap_or("").into(),
                        name: o["metadata"]["name"].as_str().unwrap_or("?").into(),
                    }),
                    GapKind::Unparseable,
                    e.to_string(),
                ));
                None
            }
        })
        .collect()
}

/// The mesh config and the access-log formats it declares.
fn read_mesh_config(snap: &Snapshot, gaps: &mut Vec<Gap>) -> (MeshConfig, MeshConfigSource) {
    let cm = snap.objects.iter().find(|o| {
        o["kind"] == "ConfigMap"
            && o["metadata"]["name"] == "istio"
            && o["metadata"]["namespace"] == snap.istio_namespace.as_str()
    });
    match cm.map(MeshConfig::from_configmap) {
        Some(Ok(m)) => (m, MeshConfigSource::Read),
        Some(Err(e)) => {
            gaps.push(Gap::found(
                GapSource::MeshConfig {
                    namespace: snap.istio_namespace.clone(),
                },
                GapKind::Unparseable,
                e.to_string(),
            ));
            (
                MeshConfig::default(),
                MeshConfigSource::Unparseable(e.to_string()),
            )
        }
        None => (MeshConfig::default(), MeshConfigSource::NotInSnapshot),
    }
}

fn mesh_log_formats(m: &MeshConfig) -> Vec<LogFormatSpec> {
    match m
        .access_log_format
        .as_deref()
        .filter(|f| !f.trim().is_empty())
    {
        Some(f) => match m.access_log_encoding() {
            AccessLogEncoding::Json => json_format_from_str(f).into_iter().collect(),
            AccessLogEncoding::Text => vec![LogFormatSpec::Text(f.to_string())],
        },
        None => vec![],
    }
}

fn read_proxies(
    snap: &Snapshot,
    pods: &[Pod],
    formats: &[LogFormatSpec],
    gaps: &mut Vec<Gap>,
) -> Vec<Proxy> {
    snap.proxies
        .iter()
        .map(|e| {
            let ip = pods
                .iter()
                .find(|p| p.key.namespace == e.namespace && p.key.name == e.pod)
                .and_then(|p| p.ip.as_deref());
            Proxy::from_evidence(e, ip, formats, gaps)
        })
        .collect()
}

/// The highest sidecar image tag; else what the proxies report in
/// `/server_info` (images pinned by digest).
fn istio_version(pods: &[Pod], proxies: &[Proxy]) -> (Option<IstioVersion>, VersionSource) {
    match pods.iter().filter_map(|p| p.sidecar_version).max() {
        Some(v) => (Some(v), VersionSource::SidecarImage),
        None => match proxies.iter().filter_map(|p| p.istio_version).max() {
            Some(v) => (Some(v), VersionSource::ProxyServerInfo),
            None => (None, VersionSource::Unknown),
        },
    }
}

fn service_keys(objects: &[Value]) -> Vec<ServiceKey> {
    objects
        .iter()
        .filter(|o| o["kind"] == "Service")
        .filter_map(|o| {
            Some(ServiceKey::new(
                o["metadata"]["namespace"].as_str()?,
                o["metadata"]["name"].as_str()?,
            ))
        })
        .collect()
}

/// EndpointSlices, then core Endpoints.
fn read_endpoints(objects: &[Value], gaps: &mut Vec<Gap>) -> Vec<EndpointSet> {
    let mut out: Vec<EndpointSet> =
        parse_all(objects, "EndpointSlice", EndpointSet::from_slice, gaps)
            .into_iter()
            .flatten()
            .collect();
    out.extend(parse_all(
        objects,
        "Endpoints",
        EndpointSet::from_endpoints,
        gaps,
    ));
    out
}

impl Mesh {
    /// Read a snapshot once into the typed model. Never fails: what cannot
    /// be read is a [`Gap`].
    pub fn from_snapshot(snap: &Snapshot) -> Mesh {
        let mut gaps: Vec<Gap> = snap.gaps.iter().map(|g| Gap::collected(g, false)).collect();
        for p in &snap.proxies {
            gaps.extend(p.gaps.iter().map(|g| Gap::collected(g, true)));
        }
        let mut found = Vec::new();
        let (mesh_config, mc_source) = read_mesh_config(snap, &mut found);
        let mut object_gaps = Vec::new();
        let pods = parse_all(&snap.objects, "Pod", Pod::from_value, &mut object_gaps);
        let mut proxy_gaps = Vec::new();
        let mut proxies = read_proxies(
            snap,
            &pods,
            &mesh_log_formats(&mesh_config),
            &mut proxy_gaps,
        );
        let (version, version_source) = istio_version(&pods, &proxies);
        let settings = MeshSettings::new(
            mesh_config,
            mc_source,
            &snap.istio_namespace,
            version,
            version_source,
        );
        proxies::set_stats_inclusion(&mut proxies, &snap.objects, &pods, &settings);
        let resolved = source::resolved_target(snap);
        let domain = ClusterDomain::derive(
            resolved.as_ref().and_then(|r| r.cluster_domain.clone()),
            &settings::sidecar_domains(&snap.objects),
            &proxies,
            &service_keys(&snap.objects),
        );
        let config = IstioConfig::read(
            &snap.objects,
            &snap.served_resources,
            &domain.suffix,
            &mut found,
        );
        let services = parse_all(
            &snap.objects,
            "Service",
            |o| Service::from_value_at(o, &domain.suffix, settings.version),
            &mut object_gaps,
        );
        let endpoints = read_endpoints(&snap.objects, &mut object_gaps);
        let namespaces = parse_all(
            &snap.objects,
            "Namespace",
            Namespace::from_value,
            &mut object_gaps,
        );
        let target = match resolved {
            Some(r) => TargetSelection::from_resolved(&snap.target, &snap.namespace, r),
            None => {
                TargetSelection::from_text(&snap.target, &snap.namespace, &services, &snap.objects)
            }
        };
        let routing = routing::build(
            &routing::RoutingObjects::from_objects(&snap.objects),
            &config.destination_rules,
            &settings,
            &domain.suffix,
            &mut object_gaps,
        );
        let route_reads = RouteReads::from_lookups(source::route_lookups(snap));
        gaps.extend(found);
        gaps.extend(object_gaps);
        gaps.extend(proxy_gaps);
        let mut mesh = Mesh {
            target,
            taken_at: snap.taken_at.clone(),
            settings,
            domain,
            namespaces,
            pods,
            services,
            endpoints,
            config,
            proxies,
            gaps,
            cache: decisions::Cache::default(),
            routing,
            route_reads,
            route_cache: callers::Cache::default(),
            search_fixes: true,
        };
        let more = mesh.evidence_gaps(source::stats_filter(snap));
        mesh.gaps.extend(more);
        mesh
    }

    /// A model of saved full `/config_dump` files only (`tls-check
    /// --config-dump`), each parsed already, with its file: proxies, no
    /// objects.
    pub fn from_config_dumps(dumps: Vec<(String, ConfigDump)>) -> Mesh {
        let proxies: Vec<Proxy> = dumps
            .into_iter()
            .map(|(file, dump)| Proxy::from_config_dump(&file, dump))
            .collect();
        let domain = ClusterDomain::derive(None, &[], &proxies, &[]);
        Mesh::assemble(TargetSelection::none(), domain, proxies)
    }

    /// An empty model around some proxies (offline dumps, tests).
    pub(crate) fn assemble(
        target: TargetSelection,
        domain: ClusterDomain,
        proxies: Vec<Proxy>,
    ) -> Mesh {
        Mesh {
            target,
            taken_at: String::new(),
            settings: MeshSettings::new(
                MeshConfig::default(),
                MeshConfigSource::NotInSnapshot,
                crate::istio::destination_rule::DEFAULT_ROOT_NAMESPACE,
                None,
                VersionSource::Unknown,
            ),
            domain,
            namespaces: vec![],
            pods: vec![],
            services: vec![],
            endpoints: vec![],
            config: IstioConfig::default(),
            proxies,
            gaps: vec![],
            cache: decisions::Cache::default(),
            routing: crate::istio::routing::Routing::new(
                crate::istio::routing::RoutingInput::default(),
                crate::istio::routing::RoutingOptions::default(),
            ),
            route_reads: RouteReads::default(),
            route_cache: callers::Cache::default(),
            search_fixes: true,
        }
    }

    /// The same mesh with its Istio objects changed (e.g. a candidate fix
    /// applied), and no decision memoized yet.
    pub fn with_config(&self, change: impl FnOnce(&mut IstioConfig)) -> Mesh {
        let mut m = self.clone();
        change(&mut m.config);
        // Routing reads the same parsed DestinationRules.
        m.routing.destination_rules = m.config.destination_rules.clone();
        m
    }

    /// The same mesh with its routing objects changed (a VirtualService or
    /// Gateway edited by a candidate fix), and nothing memoized yet.
    pub fn with_routing(&self, change: impl FnOnce(&mut crate::istio::routing::Routing)) -> Mesh {
        let mut m = self.clone();
        change(&mut m.routing);
        m
    }

    /// Is this Service one the user asked about?
    pub fn is_target(&self, svc: &ServiceKey) -> bool {
        self.target.services.contains(svc)
    }

    /// Gaps that follow from what was (not) read: no mesh config, client
    /// logs without access lines, per-cluster stats absent from `/stats`
    /// (`stats_filter`: what a v2 `/stats` was filtered with).
    fn evidence_gaps(&self, stats_filter: Option<&str>) -> Vec<Gap> {
        let mut out = Vec::new();
        if self.settings.source == MeshConfigSource::NotInSnapshot {
            out.push(Gap::found(
                GapSource::MeshConfig {
                    namespace: self.settings.istio_namespace.clone(),
                },
                GapKind::NotCollected,
                "",
            ));
        }
        for p in &self.proxies {
            let Some(pod) = &p.pod else { continue };
            if p.log.read && p.log.entries.is_empty() && p.role == Some(ProxyRole::Client) {
                out.push(Gap::found(
                    GapSource::ProxyLog { pod: pod.clone() },
                    GapKind::AccessLogsOff,
                    "",
                ));
            }
            out.extend(gaps::stats_gap(p, pod, stats_filter));
        }
        out
    }

    pub fn pod(&self, key: &PodKey) -> Option<&Pod> {
        self.pods.iter().find(|p| &p.key == key)
    }

    pub fn pod_by_ip(&self, ip: &str) -> Option<&Pod> {
        self.pods.iter().find(|p| p.ip.as_deref() == Some(ip))
    }

    pub fn service(&self, key: &ServiceKey) -> Option<&Service> {
        let ix = self.object_index();
        ix.services.get(key).map(|i| &self.services[*i])
    }

    /// Pods a Service's selector picks (same namespace).
    pub fn backing_pods<'a>(&'a self, svc: &'a Service) -> impl Iterator<Item = &'a Pod> + 'a {
        let ix = self.object_index();
        ix.pods_by_namespace
            .get(&svc.key.namespace)
            .into_iter()
            .flatten()
            .map(|i| &self.pods[*i])
            .filter(move |p| svc.selects(p))
    }

    /// The first pod, in the model's order, of one of `namespaces` that
    /// `keep` accepts (looked up per namespace, not over every pod).
    pub fn first_pod_in<'a>(
        &'a self,
        namespaces: &[String],
        keep: impl Fn(&Pod) -> bool,
    ) -> Option<&'a Pod> {
        let ix = self.object_index();
        namespaces
            .iter()
            .filter_map(|ns| {
                ix.pods_by_namespace
                    .get(ns)?
                    .iter()
                    .copied()
                    .find(|i| keep(&self.pods[*i]))
            })
            .min()
            .map(|i| &self.pods[i])
    }

    /// The model's Services and Pods indexed (built on first use; the model
    /// is not changed after it is built, and a changed clone starts anew).
    fn object_index(&self) -> &decisions::ObjectIndex {
        self.cache
            .index
            .get_or_init(|| decisions::ObjectIndex::of(self))
    }

    /// The target's Services, in the order they were resolved.
    pub fn target_services(&self) -> impl Iterator<Item = &Service> {
        self.target.services.iter().filter_map(|k| self.service(k))
    }

    /// The target's (Service, port) pairs: every port, or the one asked for.
    pub fn target_ports(&self) -> Vec<(&Service, &ServicePort)> {
        self.target_services()
            .flat_map(|s| s.ports.iter().map(move |p| (s, p)))
            .filter(|(_, p)| self.target.only_port.is_none_or(|o| o == p.number))
            .collect()
    }

    /// The endpoints of a Service: its EndpointSlices, else its core Endpoints.
    pub fn endpoints_of(&self, svc: &ServiceKey) -> Vec<&EndpointSet> {
        let all: Vec<&EndpointSet> = self
            .endpoints
            .iter()
            .filter(|e| &e.service == svc)
            .collect();
        let slices: Vec<&EndpointSet> = all
            .iter()
            .copied()
            .filter(|e| matches!(e.source, services::EndpointSource::Slice(_)))
            .collect();
        if slices.is_empty() {
            all
        } else {
            slices
        }
    }

    /// Endpoints not marked unready (Kubernetes treats an unknown condition as ready).
    pub fn ready_endpoints(&self, svc: &ServiceKey) -> usize {
        self.endpoints_of(svc)
            .iter()
            .flat_map(|e| e.endpoints.iter())
            .filter(|e| e.ready != Some(false))
            .count()
    }

    /// The sidecar running in a pod, when it was read.
    pub fn proxy_of(&self, pod: &PodKey) -> Option<&Proxy> {
        self.proxies.iter().find(|p| p.pod.as_ref() == Some(pod))
    }

    /// The read sidecar serving on an IP.
    pub fn proxy_by_ip(&self, ip: &str) -> Option<&Proxy> {
        self.proxies.iter().find(|p| p.ips.iter().any(|i| i == ip))
    }

    /// Client sidecars, one per replica group: the replica with the most
    /// access-log lines stands for the others (replicas behave alike).
    pub fn client_groups(&self) -> Vec<ClientGroup<'_>> {
        let clients: Vec<(&Proxy, Option<&Pod>)> = self
            .proxies
            .iter()
            .filter(|p| p.role == Some(ProxyRole::Client))
            .map(|p| (p, p.pod.as_ref().and_then(|k| self.pod(k))))
            .collect();
        let group_of = |(p, pod): &(&Proxy, Option<&Pod>)| -> WorkloadKey {
            match pod {
                Some(pod) => pod.replica_group(),
                None => WorkloadKey {
                    namespace: p
                        .pod
                        .as_ref()
                        .map(|k| k.namespace.clone())
                        .unwrap_or_default(),
                    kind: "Pod".into(),
                    name: p.label.clone(),
                },
            }
        };
        let keys: Vec<WorkloadKey> = clients.iter().map(group_of).collect();
        let mut out = Vec::new();
        for (i, (p, pod)) in clients.iter().enumerate() {
            let members: Vec<usize> = (0..clients.len()).filter(|&j| keys[j] == keys[i]).collect();
            // The first replica with the most log lines represents the group.
            let best = members.iter().copied().fold(members[0], |b, j| {
                if clients[j].0.log.entries.len() > clients[b].0.log.entries.len() {
                    j
                } else {
                    b
                }
            });
            if best == i {
                out.push(ClientGroup {
                    proxy: p,
                    pod: *pod,
                    others: members.len() - 1,
                });
            }
        }
        out
    }

    /// Pods by workload (a ReplicaSet's Deployment, another controller, or the pod).
    pub fn workloads(&self) -> Vec<pods::PodGroup> {
        pods::group_pods(&self.pods, |p| p.workload.clone())
    }

    /// Pods by controller: replicas that stand for one another.
    pub fn replica_groups(&self) -> Vec<pods::PodGroup> {
        pods::group_pods(&self.pods, Pod::replica_group)
    }

    /// Istio API lists RBAC refused (the kinds whose absence means nothing).
    pub fn forbidden_lists(&self) -> impl Iterator<Item = &Gap> {
        self.gaps.iter().filter(|g| {
            g.kind == GapKind::Forbidden && matches!(g.source, GapSource::ApiList { .. })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(rel: &str) -> Snapshot {
        let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(rel);
        Snapshot::load(&p).unwrap()
    }

    #[test]
    fn the_seed_snapshot_as_a_model() {
        let m = Mesh::from_snapshot(&load("docs/examples/seed-2018.snapshot.json"));
        assert_eq!(m.domain.suffix, "cluster.local");
        assert!(matches!(
            m.domain.source,
            settings::DomainSource::SidecarArgs(_)
        ));
        assert_eq!(
            m.settings.version.map(|v| v.to_string()).as_deref(),
            Some("1.0.0")
        );
        assert!(m.settings.read() && !m.settings.auto_mtls);
        assert_eq!(
            m.authn().api,
            crate::istio::authn::AuthnApi::Legacy,
            "Istio 1.0: MeshPolicy/Policy decide"
        );
        assert_eq!(m.config.destination_rules.len(), 2);
        let targets = m.target_ports();
        assert_eq!(targets.len(), 1);
        assert_eq!(targets[0].0.fqdn, "httpbin.foo.svc.cluster.local");
        assert_eq!(m.backing_pods(targets[0].0).count(), 1);
        assert_eq!(m.ready_endpoints(&targets[0].0.key), 1);
        assert_eq!(m.client_groups().len(), 1);
        assert_eq!(m.workloads().len(), 2);
        assert_eq!(m.workloads()[0].key.kind, "Deployment");
        assert_eq!(m.replica_groups()[0].key.kind, "ReplicaSet");
        assert!(m.proxies.iter().all(|p| p.dump.is_some() && p.log.read));
    }

    #[test]
    fn a_changed_config_gets_fresh_decisions() {
        let m = Mesh::from_snapshot(&load("docs/examples/seed-2018.snapshot.json"));
        let (svc, port) = m.target_ports()[0];
        let client = m.client_groups()[0].client();
        assert_eq!(
            m.client_tls(&client, svc, port.number).decision.mode,
            crate::istio::tls::ClientTlsMode::Plaintext
        );
        // Remove the client-namespace rule: the mesh-wide ISTIO_MUTUAL applies again.
        let fixed = m.with_config(|c| c.destination_rules.retain(|d| d.meta.name != "httpbin"));
        let (svc, port) = fixed.target_ports()[0];
        assert_eq!(
            fixed.client_tls(&client, svc, port.number).decision.mode,
            crate::istio::tls::ClientTlsMode::IstioMutual
        );
        assert!(m.is_target(&svc.key));
    }

    #[test]
    fn recordings_keep_one_object_per_identity() {
        let m = Mesh::from_snapshot(&load(
            "tests/recordings/seed-strict-no-automtls.snapshot.json",
        ));
        assert_eq!(
            m.config.destination_rules.len(),
            2,
            "three served versions, one object each"
        );
        assert_eq!(m.config.peer_authentications.len(), 1);
        assert!(m
            .config
            .destination_rules
            .iter()
            .all(|d| d.meta.api_version == "networking.istio.io/v1"));
    }

    #[test]
    fn decisions_are_answered_once() {
        let m = Mesh::from_snapshot(&load("docs/examples/seed-2018.snapshot.json"));
        let (svc, port) = m.target_ports()[0];
        let client = m.client_groups()[0].client();
        let a = m.client_tls(&client, svc, port.number);
        let b = m.client_tls(&client, svc, port.number);
        assert!(std::sync::Arc::ptr_eq(&a, &b));
        assert_eq!(a.decision.mode, crate::istio::tls::ClientTlsMode::Plaintext);
        let pod = m.backing_pods(svc).next().unwrap();
        let path = m.tls_path(&client, Some(m.client_groups()[0].proxy), svc, port, pod);
        assert_eq!(path.mode, crate::istio::authn::MtlsMode::Strict);
        assert_eq!(path.wire, Some(crate::istio::tls::Wire::Plaintext));
        assert_eq!(path.accepted, Some(false));
        assert!(path.config_agrees());
    }
}
