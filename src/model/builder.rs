//! Tests only: a [`Mesh`] from small typed pieces, for the rules' unit tests.
//!
//! Pods, Services and proxies are built as typed values (what a sidecar runs
//! is set field by field: a cluster's transport socket, an inbound mode, log
//! entries); Istio objects are given as the small manifests users write and
//! parsed by the model's own reader, so the rules see exactly what
//! [`Mesh::from_snapshot`] would give them. Nothing here imitates Envoy's
//! admin output as text.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::envoy::access_log::AccessLogEntry;
use crate::envoy::clusters::{ClusterStatus, Clusters, HostStatus};
use crate::envoy::config_dump::{ClientTlsConfig, Cluster, ClusterKind, ConfigDump, TlsContext};
use crate::envoy::stats::{StatValue, Stats};
use crate::istio::mesh_config::{IstioVersion, MeshConfig};
use crate::istio::sidecar::SidecarKind;
use crate::istio::tls::InboundMode;
use crate::snapshot::ProxyRole;

use super::pods::{ContainerPort, WorkloadKey};
use super::proxies::{InboundView, ProxyLog};
use super::services::{resolve_protocol, EndpointSet, TargetPort};
use super::settings::{ClusterDomain, MeshConfigSource, MeshSettings, VersionSource};
use super::target::{TargetSelection, TargetSource};
use super::{IstioConfig, Mesh, Pod, PodKey, Proxy, Service, ServiceKey, ServicePort};

/// Builds a [`Mesh`] for a test; the first target Service is what is diagnosed.
pub struct MeshBuilder {
    version: Option<IstioVersion>,
    mesh_config: MeshConfig,
    objects: Vec<Value>,
    pods: Vec<Pod>,
    services: Vec<Service>,
    targets: Vec<ServiceKey>,
    only_port: Option<u16>,
    endpoints: Vec<EndpointSet>,
    proxies: Vec<Proxy>,
    lookups: Option<crate::snapshot::RouteLookups>,
    found_callers: Vec<super::target::FoundCaller>,
}

impl MeshBuilder {
    /// An empty mesh on a current Istio (auto mTLS on by default).
    pub fn new() -> MeshBuilder {
        MeshBuilder {
            version: IstioVersion::parse("1.28.0"),
            mesh_config: MeshConfig::default(),
            objects: vec![],
            pods: vec![],
            services: vec![],
            targets: vec![],
            only_port: None,
            endpoints: vec![],
            proxies: vec![],
            found_callers: vec![],
            lookups: None,
        }
    }

    /// The Istio release (its defaults apply, e.g. auto mTLS off before 1.5).
    pub fn istio(mut self, version: &str) -> Self {
        self.version = IstioVersion::parse(version);
        self
    }

    /// `enableAutoMtls` in the mesh config.
    pub fn auto_mtls(mut self, on: bool) -> Self {
        self.mesh_config.enable_auto_mtls = Some(on);
        self
    }

    /// A Service the diagnosis is about.
    pub fn target(mut self, svc: Service) -> Self {
        self.targets.push(svc.key.clone());
        self.services.push(svc);
        self
    }

    /// A caller collect found that is not a read proxy.
    pub fn found_caller(mut self, pod: Option<PodKey>, because: &str) -> Self {
        self.found_callers.push(super::target::FoundCaller {
            pod,
            because: because.to_string(),
        });
        self
    }

    pub fn only_port(mut self, port: u16) -> Self {
        self.only_port = Some(port);
        self
    }

    pub fn service(mut self, svc: Service) -> Self {
        self.services.push(svc);
        self
    }

    pub fn pod(mut self, pod: Pod) -> Self {
        self.pods.push(pod);
        self
    }

    /// An Istio object as users write it (DestinationRule, PeerAuthentication,
    /// MeshPolicy/Policy, VirtualService, …).
    pub fn object(mut self, v: Value) -> Self {
        self.objects.push(v);
        self
    }

    pub fn endpoints(mut self, e: EndpointSet) -> Self {
        self.endpoints.push(e);
        self
    }

    pub fn proxy(mut self, p: Proxy) -> Self {
        self.proxies.push(p);
        self
    }

    /// Collection listed the pods of this Gateway (`ns/name`).
    pub fn gateway_pods_listed(mut self, gateway: &str) -> Self {
        self.lookups
            .get_or_insert_with(crate::snapshot::RouteLookups::default)
            .gateway_pods_listed
            .push(gateway.to_string());
        self
    }

    /// Collection looked up the Services routes name: `found` ones were
    /// read (add them with [`MeshBuilder::service`]), `absent` ones do not
    /// exist. `(namespace, name)` pairs.
    pub fn looked_up(mut self, found: &[(&str, &str)], absent: &[(&str, &str)]) -> Self {
        let refs = |v: &[(&str, &str)]| {
            v.iter()
                .map(|(ns, n)| crate::snapshot::ObjectRef {
                    namespace: ns.to_string(),
                    name: n.to_string(),
                })
                .collect()
        };
        let l = self
            .lookups
            .get_or_insert_with(crate::snapshot::RouteLookups::default);
        l.found = refs(found);
        l.absent = refs(absent);
        self
    }

    pub fn build(self) -> Mesh {
        let mut gaps = Vec::new();
        let config = IstioConfig::read(&self.objects, &[], "cluster.local", &mut gaps);
        let mut m = Mesh::assemble(
            TargetSelection {
                text: "svc/test".into(),
                namespace: self
                    .targets
                    .first()
                    .map(|k| k.namespace.clone())
                    .unwrap_or_default(),
                services: self.targets,
                only_port: self.only_port,
                source: TargetSource::Resolved,
                server_pods: vec![],
                missing: vec![],
                found_callers: self.found_callers,
            },
            ClusterDomain::default_domain(),
            self.proxies,
        );
        m.settings = MeshSettings::new(
            self.mesh_config,
            MeshConfigSource::Read,
            "istio-system",
            self.version,
            VersionSource::SidecarImage,
        );
        m.config = config;
        m.pods = self.pods;
        m.services = self.services;
        m.endpoints = self.endpoints;
        m.gaps = gaps;
        let mut objects = super::routing::RoutingObjects::from_objects(&self.objects);
        let services: Vec<Value> = m.services.iter().map(service_value).collect();
        let pods: Vec<Value> = m.pods.iter().map(pod_value).collect();
        objects.services = services.iter().collect();
        objects.pods = pods.iter().collect();
        m.routing = super::routing::build(
            &objects,
            &m.config.destination_rules,
            &m.settings,
            "cluster.local",
            &mut m.gaps,
        );
        m.route_reads = super::RouteReads::from_lookups(self.lookups.as_ref());
        let more = m.evidence_gaps(None);
        m.gaps.extend(more);
        m
    }
}

/// A typed Service as the object Kubernetes serves (for routing).
fn service_value(s: &Service) -> Value {
    let ports: Vec<Value> = s
        .ports
        .iter()
        .map(|p| {
            let mut v = json!({"port": p.number, "protocol": p.transport});
            if let Some(n) = &p.name {
                v["name"] = json!(n);
            }
            if let Some(a) = &p.app_protocol {
                v["appProtocol"] = json!(a);
            }
            v["targetPort"] = match &p.target_port {
                TargetPort::Number(n) => json!(n),
                TargetPort::Name(n) => json!(n),
            };
            v
        })
        .collect();
    let mut spec = json!({"ports": ports});
    if let Some(sel) = &s.selector {
        spec["selector"] = json!(sel);
    }
    if let Some(ip) = &s.cluster_ip {
        spec["clusterIP"] = json!(ip);
    }
    json!({"apiVersion": "v1", "kind": "Service",
           "metadata": {"name": s.key.name, "namespace": s.key.namespace,
                        "creationTimestamp": "2024-01-01T00:00:00Z"},
           "spec": spec})
}

/// A typed Pod as the object Kubernetes serves (for routing).
fn pod_value(p: &Pod) -> Value {
    let mut containers: Vec<Value> = Vec::new();
    for c in &p.container_ports {
        let port = json!({"name": c.name, "containerPort": c.number, "protocol": c.protocol});
        match containers
            .iter_mut()
            .find(|x| x["name"] == c.container.as_str())
        {
            Some(x) => x["ports"].as_array_mut().expect("ports").push(port),
            None => containers.push(json!({"name": c.container, "ports": [port]})),
        }
    }
    let mut spec = json!({});
    match p.sidecar {
        Some(SidecarKind::Classic) => containers.push(json!({"name": "istio-proxy"})),
        Some(SidecarKind::Native) => {
            spec["initContainers"] = json!([{"name": "istio-proxy", "restartPolicy": "Always"}])
        }
        None => {}
    }
    spec["containers"] = json!(containers);
    json!({"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": p.key.name, "namespace": p.key.namespace, "labels": p.labels},
           "spec": spec,
           "status": {"phase": "Running", "podIP": p.ip,
                      "conditions": [{"type": "Ready", "status": if p.ready { "True" } else { "False" }}]}})
}

/// A Service `ns/name` selecting `app=<selector_app>`, with ports
/// `(port, name, targetPort)`.
pub fn service(ns: &str, name: &str, selector_app: &str, ports: &[(u16, &str, u16)]) -> Service {
    Service {
        key: ServiceKey::new(ns, name),
        fqdn: format!("{name}.{ns}.svc.cluster.local"),
        selector: Some(BTreeMap::from([(
            "app".to_string(),
            selector_app.to_string(),
        )])),
        ports: ports
            .iter()
            .map(|(number, pname, target)| {
                let name = (!pname.is_empty()).then(|| pname.to_string());
                let (protocol, protocol_source) =
                    resolve_protocol(*number, name.as_deref(), "TCP", None);
                ServicePort {
                    number: *number,
                    name,
                    target_port: TargetPort::Number(*target),
                    app_protocol: None,
                    transport: "TCP".into(),
                    protocol,
                    protocol_source,
                }
            })
            .collect(),
        cluster_ip: None,
    }
}

/// `foo/httpbin`: port 8000 `http` → 8080, selector `app=httpbin`.
pub fn httpbin() -> Service {
    service("foo", "httpbin", "httpbin", &[(8000, "http", 8080)])
}

/// A ready pod `ns/name` labelled `app=<app>`, with IP; a sidecar pod also
/// carries the injector's `security.istio.io/tlsMode: istio` label.
pub fn pod(ns: &str, name: &str, app: &str, ip: &str, sidecar: Option<SidecarKind>) -> Pod {
    let mut labels = BTreeMap::from([("app".to_string(), app.to_string())]);
    if sidecar.is_some() {
        labels.insert(super::pods::TLS_MODE_LABEL.into(), "istio".into());
    }
    let rs = WorkloadKey {
        namespace: ns.into(),
        kind: "ReplicaSet".into(),
        name: format!("{app}-rs"),
    };
    Pod {
        key: PodKey::new(ns, name),
        labels,
        ip: Some(ip.into()),
        ready: true,
        sidecar,
        sidecar_version: None,
        controller: Some(rs.clone()),
        workload: rs,
        container_ports: vec![ContainerPort {
            container: app.into(),
            name: Some("http".into()),
            number: 8080,
            protocol: "TCP".into(),
        }],
    }
}

/// `foo/httpbin-1` (10.0.0.2) with a classic sidecar.
pub fn httpbin_pod() -> Pod {
    pod(
        "foo",
        "httpbin-1",
        "httpbin",
        "10.0.0.2",
        Some(SidecarKind::Classic),
    )
}

/// `foo/sleep-1` (10.0.0.1) with a classic sidecar.
pub fn sleep_pod() -> Pod {
    pod(
        "foo",
        "sleep-1",
        "sleep",
        "10.0.0.1",
        Some(SidecarKind::Classic),
    )
}

/// A read sidecar in `pod`, with nothing read yet.
pub fn proxy(pod: &Pod, role: ProxyRole) -> Proxy {
    Proxy {
        label: pod.key.to_string(),
        pod: Some(pod.key.clone()),
        role: Some(role),
        chosen_because: "test".into(),
        ips: pod.ip.iter().cloned().collect(),
        node_domain: None,
        istio_version: None,
        dump: None,
        inbound: InboundView::default(),
        clusters: None,
        stats: None,
        stats_inclusion: None,
        log: ProxyLog::default(),
        metrics: None,
        scope: None,
    }
}

/// The client's cluster for `fqdn:port` with `tls`.
pub fn cluster(port: u16, fqdn: &str, tls: ClientTlsConfig) -> Cluster {
    Cluster {
        name: format!("outbound|{port}||{fqdn}"),
        kind: ClusterKind::Outbound {
            port,
            subset: None,
            host: fqdn.into(),
        },
        client_tls: tls,
        ..Cluster::default()
    }
}

/// Istio mTLS as the proxy runs it (SDS `default`, ALPN istio).
pub fn istio_tls() -> ClientTlsConfig {
    ClientTlsConfig::Tls(TlsContext {
        sds_cert: Some("default".into()),
        ..TlsContext::default()
    })
}

/// Auto mTLS transport socket matches.
pub fn auto_tls() -> ClientTlsConfig {
    ClientTlsConfig::AutoMtls {
        istio: Box::new(TlsContext {
            sds_cert: Some("default".into()),
            ..TlsContext::default()
        }),
        fallback_plaintext: true,
    }
}

impl Proxy {
    /// Add a client cluster to its config_dump.
    pub fn with_cluster(mut self, c: Cluster) -> Proxy {
        self.dump
            .get_or_insert_with(ConfigDump::default)
            .clusters
            .push(c);
        self
    }

    /// What its inbound listener accepts on a port.
    pub fn with_inbound(mut self, port: u16, mode: InboundMode) -> Proxy {
        self.dump.get_or_insert_with(ConfigDump::default);
        self.inbound.by_port.insert(port, mode);
        self
    }

    /// Access log entries (the log was read).
    pub fn with_log(mut self, entries: Vec<AccessLogEntry>) -> Proxy {
        self.log = ProxyLog {
            read: true,
            entries,
            other_lines: 0,
        };
        self
    }

    /// `/clusters` for one cluster: hosts with their health flags.
    pub fn with_hosts(mut self, cluster: &str, hosts: &[(&str, &[&str])]) -> Proxy {
        let status = ClusterStatus {
            name: cluster.into(),
            hosts: hosts
                .iter()
                .map(|(addr, flags)| HostStatus {
                    address: addr.to_string(),
                    health_flags: flags.iter().map(|f| f.to_string()).collect(),
                    ..HostStatus::default()
                })
                .collect(),
            ..ClusterStatus::default()
        };
        self.clusters
            .get_or_insert_with(Clusters::default)
            .clusters
            .insert(cluster.into(), status);
        self
    }

    /// A `/stats` counter.
    pub fn with_stat(mut self, name: &str, n: u64) -> Proxy {
        self.stats
            .get_or_insert_with(Stats::default)
            .values
            .insert(name.into(), StatValue::Int(n));
        self
    }
}

/// What an inbound listener accepts: `(mtls, plaintext)`.
pub fn inbound(accepts_mtls: bool, accepts_plaintext: bool) -> InboundMode {
    InboundMode {
        accepts_mtls,
        accepts_plaintext,
        requires_client_cert: accepts_mtls,
        passes_tls_through: false,
        source_listener: "virtualInbound".into(),
    }
}

/// An access log entry: status, flags (`UF,URX`), upstream cluster.
pub fn entry(code: u16, flags: &str, cluster: Option<&str>) -> AccessLogEntry {
    AccessLogEntry {
        response_code: Some(code),
        response_flags: if flags.is_empty() || flags == "-" {
            vec![]
        } else {
            flags.split(',').map(str::to_string).collect()
        },
        upstream_cluster: cluster.map(str::to_string),
        raw: format!(
            "\"GET /get HTTP/1.1\" {code} {flags} {}",
            cluster.unwrap_or("-")
        ),
        ..AccessLogEntry::default()
    }
}

/// A DestinationRule `ns/name` for `host` with `spec.trafficPolicy` (or none).
pub fn dr(ns: &str, name: &str, host: &str, traffic_policy: Option<Value>) -> Value {
    let mut spec = json!({ "host": host });
    if let Some(tp) = traffic_policy {
        spec["trafficPolicy"] = tp;
    }
    json!({"apiVersion": "networking.istio.io/v1", "kind": "DestinationRule",
           "metadata": {"name": name, "namespace": ns, "creationTimestamp": "2024-01-01T00:00:00Z"},
           "spec": spec})
}

/// `trafficPolicy: {tls: {mode}}`.
pub fn tls(mode: &str) -> Option<Value> {
    Some(json!({"tls": {"mode": mode}}))
}

/// A PeerAuthentication `ns/name` with `mtls.mode`, optionally selecting `app=<app>`.
pub fn pa(ns: &str, name: &str, mode: &str, app: Option<&str>) -> Value {
    let mut spec = json!({"mtls": {"mode": mode}});
    if let Some(a) = app {
        spec["selector"] = json!({"matchLabels": {"app": a}});
    }
    json!({"apiVersion": "security.istio.io/v1", "kind": "PeerAuthentication",
           "metadata": {"name": name, "namespace": ns, "creationTimestamp": "2024-01-01T00:00:00Z"},
           "spec": spec})
}

/// The mesh-wide STRICT PeerAuthentication in `istio-system`.
pub fn mesh_strict() -> Value {
    pa("istio-system", "default", "STRICT", None)
}

/// `foo/httpbin` with one pod whose sidecar was read, its access log `log`.
pub fn httpbin_serving(log: Vec<AccessLogEntry>) -> Mesh {
    MeshBuilder::new()
        .target(httpbin())
        .pod(httpbin_pod())
        .proxy(proxy(&httpbin_pod(), ProxyRole::Server).with_log(log))
        .build()
}
