//! The service registry istiod builds: Kubernetes Services and
//! ServiceEntries as `model.Service`s (host, ports with protocols,
//! resolution, exportTo), and the workloads behind them (pods,
//! WorkloadEntries, ServiceEntry endpoints) with their readiness.
//!
//! Place in the flow: a pure helper (istio/routing), built once by
//! [`super::query::Routing::new`]; it decides whether a destination host
//! exists for a client (no service → no cluster → `503 NC`) and whether a
//! cluster has endpoints (`503 UH`).
//!
//! Sources (istio/istio): `pilot/pkg/serviceregistry/kube/conversion.go`
//! `ConvertService` (hostname `name.ns.svc.<domain>`; `clusterIP: None` →
//! passthrough; ExternalName → a DNS cluster until 1.20, an alias of the
//! external name from 1.21 by default (`ENABLE_EXTERNAL_NAME_ALIAS`,
//! `pilot/pkg/features/pilot.go`) and always from 1.24; exportTo from the
//! `networking.istio.io/exportTo` annotation); `pkg/config/kube/conversion.go`
//! `ConvertProtocol` (UDP; `appProtocol` before the port name from 1.6;
//! `grpc-web` prefix; the name's prefix before `-`; TCP for the well-known
//! ports 25, 53, 3306, 27017); `pkg/config/protocol/instance.go` (`Parse`,
//! `IsHTTPOrSniffed`); `pilot/pkg/serviceregistry/serviceentry/conversion.go`
//! `convertServices` (one service per host, hosts taken as written, resolution,
//! location, exportTo, workloadSelector); `pilot/pkg/model/push_context.go`
//! `IsServiceVisible`, `serviceExportTo`. Kubernetes: EndpointSlices list a
//! pod when it has an IP, is not terminating, and is Ready (or the Service
//! publishes not-ready addresses); a named `targetPort` needs a container
//! port of that name.

use std::collections::BTreeMap;

use serde_json::Value;

use super::super::host;
use super::super::object::{labels_match, Meta, ObjectError, ObjectRef, Reader};
use super::RoutingOptions;

/// A port protocol as istiod classifies it (`protocol.Instance`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Protocol {
    Http,
    Http2,
    HttpProxy,
    Grpc,
    GrpcWeb,
    Https,
    Tls,
    Tcp,
    Mongo,
    Redis,
    Mysql,
    Udp,
    /// Not declared: istiod sniffs it (HTTP routes still apply).
    Unsupported,
}

impl Protocol {
    /// `protocol.Parse` (case-insensitive; unknown → `Unsupported`).
    pub fn parse(s: &str) -> Protocol {
        match s.to_ascii_lowercase().as_str() {
            "tcp" => Protocol::Tcp,
            "udp" => Protocol::Udp,
            "grpc" => Protocol::Grpc,
            "grpc-web" => Protocol::GrpcWeb,
            "http" => Protocol::Http,
            "http_proxy" => Protocol::HttpProxy,
            "http2" => Protocol::Http2,
            "https" => Protocol::Https,
            "tls" => Protocol::Tls,
            "mongo" => Protocol::Mongo,
            "redis" => Protocol::Redis,
            "mysql" => Protocol::Mysql,
            _ => Protocol::Unsupported,
        }
    }

    /// HTTP routes apply (`IsHTTPOrSniffed`).
    pub fn is_http_or_sniffed(self) -> bool {
        matches!(
            self,
            Protocol::Http
                | Protocol::Http2
                | Protocol::HttpProxy
                | Protocol::Grpc
                | Protocol::GrpcWeb
                | Protocol::Unsupported
        )
    }

    /// TLS routes apply (`IsTLS`).
    pub fn is_tls(self) -> bool {
        matches!(self, Protocol::Https | Protocol::Tls)
    }
}

/// Where a port's protocol came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProtocolSource {
    AppProtocol,
    PortName,
    /// Undeclared, but a well-known port (25, 53, 3306, 27017) → TCP.
    WellKnownPort,
    /// `spec.ports[].protocol: UDP`.
    Udp,
    /// ServiceEntry `ports[].protocol`.
    ServiceEntryField,
    /// Nothing declared: sniffed.
    Undeclared,
}

/// A Service port's `targetPort`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetPort {
    Number(u32),
    Name(String),
}

/// One port of a registry service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServicePort {
    pub name: Option<String>,
    pub port: u32,
    pub protocol: Protocol,
    pub protocol_source: ProtocolSource,
    pub target_port: Option<TargetPort>,
}

/// How the service's endpoints are found (`model.Resolution`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution {
    /// EDS from the selected workloads (ClusterIP services, STATIC ServiceEntries).
    ClientSideLb,
    /// Original destination (headless Services, ServiceEntry `NONE`).
    Passthrough,
    /// DNS (ServiceEntry `DNS`, `DNS_ROUND_ROBIN`, `DYNAMIC_DNS`; ExternalName before the alias era).
    Dns,
    /// An ExternalName Service as an alias: routes go to the clusters of `target`.
    Alias { target: String },
}

/// What kind of object the service came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServiceKind {
    Kubernetes,
    KubernetesHeadless,
    KubernetesExternalName { target: String },
    ServiceEntry { mesh_external: bool },
}

/// A `model.Service`: one host of a Kubernetes Service or ServiceEntry.
#[derive(Debug, Clone, PartialEq)]
pub struct RegistryService {
    pub object: ObjectRef,
    pub kind: ServiceKind,
    /// `name.ns.svc.<domain>` or the ServiceEntry host as written (lowercased).
    pub hostname: String,
    pub namespace: String,
    pub ports: Vec<ServicePort>,
    pub resolution: Resolution,
    /// exportTo as written (annotation or `spec.exportTo`); empty = the mesh default.
    pub export_to: Vec<String>,
    /// The Service `spec.selector` / ServiceEntry `workloadSelector.labels`
    /// (`None` = no selector: endpoints are managed elsewhere).
    pub selector: Option<BTreeMap<String, String>>,
    pub publish_not_ready: bool,
    /// ServiceEntry inline `endpoints` (address, labels).
    pub inline_endpoints: Vec<(String, BTreeMap<String, String>)>,
    pub creation_timestamp: Option<String>,
}

/// A pod or WorkloadEntry that can back a service.
#[derive(Debug, Clone, PartialEq)]
pub struct Workload {
    pub object: ObjectRef,
    pub namespace: String,
    pub labels: BTreeMap<String, String>,
    /// Would be listed as a ready endpoint (pod: Ready, has an IP, not terminating).
    pub ready: bool,
    /// Why not ready, when not.
    pub not_ready_because: Option<String>,
    pub has_sidecar: bool,
    /// Named container ports (for named targetPorts).
    pub named_ports: BTreeMap<String, u32>,
}

/// The registry: every service and workload of a snapshot.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Registry {
    pub services: Vec<RegistryService>,
    pub workloads: Vec<Workload>,
    by_host: BTreeMap<String, Vec<usize>>,
}

/// The raw objects a registry is built from.
#[derive(Debug, Clone, Copy, Default)]
pub struct RegistryInput<'a> {
    pub services: &'a [&'a Value],
    pub service_entries: &'a [&'a Value],
    pub pods: &'a [&'a Value],
    pub workload_entries: &'a [&'a Value],
}

/// The endpoints of a service port (optionally narrowed to subset labels).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Endpoints {
    /// How they were found; `Unknown*` means they were not computed.
    pub source: EndpointSource,
    /// `ns/name` of the ready workloads (or inline addresses).
    pub ready: Vec<String>,
    /// `ns/name` of matching workloads that are not ready.
    pub not_ready: Vec<String>,
    /// Workloads the selector matched before subset labels and readiness.
    pub selected_by_service: usize,
}

/// Where endpoints come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EndpointSource {
    /// Pods / WorkloadEntries selected by labels.
    #[default]
    Selector,
    /// ServiceEntry inline endpoints.
    Inline,
    /// DNS names (ServiceEntry DNS without endpoints, ExternalName): always present.
    Dns,
    /// Original destination: no endpoint list to check.
    Passthrough,
    /// A Service without selector: Endpoints/EndpointSlices managed by hand (not read).
    UnknownManual,
}

impl Registry {
    /// Build the registry; objects that cannot be read are skipped and
    /// returned as errors (never a panic).
    pub fn build(input: RegistryInput<'_>, opts: &RoutingOptions) -> (Registry, Vec<ObjectError>) {
        let mut reg = Registry::default();
        let mut errors = Vec::new();
        for v in input.services {
            match kubernetes_service(v, opts) {
                Ok(s) => reg.services.push(s),
                Err(e) => errors.push(e),
            }
        }
        for v in input.service_entries {
            match service_entry(v) {
                Ok(list) => reg.services.extend(list),
                Err(e) => errors.push(e),
            }
        }
        for v in input.pods {
            match pod(v) {
                Ok(Some(w)) => reg.workloads.push(w),
                Ok(None) => {}
                Err(e) => errors.push(e),
            }
        }
        for v in input.workload_entries {
            match workload_entry(v) {
                Ok(w) => reg.workloads.push(w),
                Err(e) => errors.push(e),
            }
        }
        reg.services.sort_by(|a, b| {
            (&a.creation_timestamp, &a.object.name, &a.object.namespace).cmp(&(
                &b.creation_timestamp,
                &b.object.name,
                &b.object.namespace,
            ))
        });
        for (i, s) in reg.services.iter().enumerate() {
            reg.by_host.entry(s.hostname.clone()).or_default().push(i);
        }
        (reg, errors)
    }

    /// Every service with exactly this hostname (all namespaces), oldest first.
    pub fn with_host<'a>(&'a self, host: &str) -> impl Iterator<Item = &'a RegistryService> {
        self.by_host
            .get(&host.to_ascii_lowercase())
            .into_iter()
            .flatten()
            .map(|i| &self.services[*i])
    }

    /// Is `svc` exported to `namespace` (`IsServiceVisible`: `*` everyone,
    /// `.` its own namespace, `~` nobody, names those namespaces).
    pub fn visible(svc: &RegistryService, namespace: &str, opts: &RoutingOptions) -> bool {
        let list = if svc.export_to.is_empty() {
            &opts.default_service_export_to
        } else {
            &svc.export_to
        };
        if list.is_empty() {
            return true;
        }
        list.iter()
            .any(|e| e == "*" || e == namespace || (e == "." && svc.namespace == namespace))
    }

    /// The service a client in `namespace` gets for `host`: among the visible
    /// ones, its own namespace's first; then, from 1.24, a Kubernetes Service
    /// over a ServiceEntry (sidecar.go `selectServices` with
    /// `PILOT_UNIFIED_SIDECAR_SCOPE`, on by default since it appeared in
    /// 1.24); then the oldest (istiod's choice there is arbitrary: "an
    /// arbitrary one will be chosen").
    pub fn pick<'a>(
        &'a self,
        host: &str,
        namespace: &str,
        opts: &RoutingOptions,
    ) -> Option<&'a RegistryService> {
        let visible: Vec<&RegistryService> = self
            .with_host(host)
            .filter(|s| Registry::visible(s, namespace, opts))
            .collect();
        let kubernetes_first = opts.at_least(1, 24);
        visible
            .iter()
            .find(|s| s.namespace == namespace)
            .or_else(|| {
                visible.iter().find(|s| {
                    kubernetes_first && !matches!(s.kind, ServiceKind::ServiceEntry { .. })
                })
            })
            .or_else(|| visible.first())
            .copied()
    }

    /// A wildcard ServiceEntry host that covers `host` for `namespace`, if any.
    /// istiod names clusters after the exact service host, so a route to a
    /// concrete name under a wildcard entry still finds no cluster.
    pub fn wildcard_cover<'a>(
        &'a self,
        host: &str,
        namespace: &str,
        opts: &RoutingOptions,
    ) -> Option<&'a RegistryService> {
        self.services.iter().find(|s| {
            host::is_wildcard(&s.hostname)
                && s.hostname != host
                && host::matches(&s.hostname, host)
                && Registry::visible(s, namespace, opts)
        })
    }

    /// The endpoints of `svc` on `port`, narrowed to `subset_labels` if given.
    pub fn endpoints(
        &self,
        svc: &RegistryService,
        port: &ServicePort,
        subset_labels: Option<&BTreeMap<String, String>>,
    ) -> Endpoints {
        let mut out = Endpoints::default();
        let narrow = |labels: &BTreeMap<String, String>| {
            subset_labels.is_none_or(|sl| labels_match(sl, labels))
        };
        match (&svc.resolution, &svc.kind) {
            (Resolution::Passthrough, _) => {
                out.source = EndpointSource::Passthrough;
                return out;
            }
            (Resolution::Alias { .. }, _) => {
                out.source = EndpointSource::Dns;
                return out;
            }
            (Resolution::Dns, _) if svc.inline_endpoints.is_empty() && svc.selector.is_none() => {
                out.source = EndpointSource::Dns;
                out.ready.push(svc.hostname.clone());
                return out;
            }
            _ => {}
        }
        let is_entry = matches!(svc.kind, ServiceKind::ServiceEntry { .. });
        if !svc.inline_endpoints.is_empty() || (is_entry && svc.selector.is_none()) {
            out.source = EndpointSource::Inline;
            for (addr, labels) in &svc.inline_endpoints {
                out.selected_by_service += 1;
                if narrow(labels) {
                    out.ready.push(addr.clone());
                }
            }
            return out;
        }
        let Some(selector) = &svc.selector else {
            out.source = EndpointSource::UnknownManual;
            return out;
        };
        for w in self.workloads.iter().filter(|w| {
            w.namespace == svc.namespace && labels_match(selector, &w.labels) && serves(w, port)
        }) {
            out.selected_by_service += 1;
            if !narrow(&w.labels) {
                continue;
            }
            if w.ready || svc.publish_not_ready {
                out.ready.push(w.object.key());
            } else {
                out.not_ready.push(w.object.key());
            }
        }
        out
    }
}

/// A named targetPort needs a container port of that name.
fn serves(w: &Workload, port: &ServicePort) -> bool {
    match &port.target_port {
        Some(TargetPort::Name(n)) if w.object.kind == "Pod" => w.named_ports.contains_key(n),
        _ => true,
    }
}

/// `ConvertProtocol` for a Kubernetes Service port.
pub fn kubernetes_protocol(
    port: u32,
    name: Option<&str>,
    l4: Option<&str>,
    app_protocol: Option<&str>,
    opts: &RoutingOptions,
) -> (Protocol, ProtocolSource) {
    if l4 == Some("UDP") {
        return (Protocol::Udp, ProtocolSource::Udp);
    }
    let (text, source) = match app_protocol.filter(|_| opts.at_least(1, 6)) {
        Some("kubernetes.io/h2c") => return (Protocol::Http2, ProtocolSource::AppProtocol),
        Some("kubernetes.io/ws") => return (Protocol::Http, ProtocolSource::AppProtocol),
        Some("kubernetes.io/wss") => return (Protocol::Https, ProtocolSource::AppProtocol),
        Some(a) => (a, ProtocolSource::AppProtocol),
        None => (name.unwrap_or(""), ProtocolSource::PortName),
    };
    let lower = text.to_ascii_lowercase();
    if lower.starts_with("grpc-web") {
        return (Protocol::GrpcWeb, source);
    }
    let prefix = lower.split('-').next().unwrap_or("");
    match Protocol::parse(prefix) {
        Protocol::Unsupported if [25, 53, 3306, 27017].contains(&port) => {
            (Protocol::Tcp, ProtocolSource::WellKnownPort)
        }
        Protocol::Unsupported => (Protocol::Unsupported, ProtocolSource::Undeclared),
        p => (p, source),
    }
}

fn kubernetes_service(v: &Value, opts: &RoutingOptions) -> Result<RegistryService, ObjectError> {
    let meta = Meta::from_value(v)?;
    let id = meta.id();
    let r = Reader::new(&id, v);
    let svc_type = r.opt_str("spec.type")?.unwrap_or_default();
    let cluster_ip = r.opt_str("spec.clusterIP")?.unwrap_or_default();
    let external = r.opt_str("spec.externalName")?.filter(|s| !s.is_empty());
    let mut ports = Vec::new();
    for (i, p) in r.opt_array("spec.ports")?.iter().enumerate() {
        let rel = format!("spec.ports[{i}]");
        if !p.is_object() {
            return Err(r.type_err(&rel, "an object", p));
        }
        let owned = r.at(p, &rel);
        let pr = owned.reader();
        let number = pr.opt_u32("port")?.ok_or_else(|| pr.missing("port"))?;
        let name = pr.opt_str("name")?;
        let (protocol, protocol_source) = kubernetes_protocol(
            number,
            name.as_deref(),
            pr.opt_str("protocol")?.as_deref(),
            pr.opt_str("appProtocol")?.as_deref(),
            opts,
        );
        let target_port = match pr.get("targetPort") {
            Some(Value::String(s)) => match s.parse::<u32>() {
                Ok(n) => Some(TargetPort::Number(n)),
                Err(_) => Some(TargetPort::Name(s.clone())),
            },
            Some(_) => pr.opt_u32("targetPort")?.map(TargetPort::Number),
            None => None,
        };
        ports.push(ServicePort {
            name,
            port: number,
            protocol,
            protocol_source,
            target_port,
        });
    }
    let (kind, resolution) = match external {
        Some(target) if svc_type == "ExternalName" => {
            let resolution = if opts.at_least(1, 21) {
                Resolution::Alias {
                    target: target.to_ascii_lowercase(),
                }
            } else {
                Resolution::Dns
            };
            (ServiceKind::KubernetesExternalName { target }, resolution)
        }
        _ if cluster_ip == "None" => (ServiceKind::KubernetesHeadless, Resolution::Passthrough),
        _ => (ServiceKind::Kubernetes, Resolution::ClientSideLb),
    };
    let selector = r.str_map("spec.selector")?;
    let export_to = meta
        .annotations
        .get("networking.istio.io/exportTo")
        .map(|s| s.split(',').map(|x| x.trim().to_string()).collect())
        .unwrap_or_default();
    Ok(RegistryService {
        object: meta.object_ref(),
        kind,
        hostname: format!(
            "{}.{}.svc.{}",
            meta.name, meta.namespace, opts.domain_suffix
        )
        .to_ascii_lowercase(),
        namespace: meta.namespace.clone(),
        ports,
        resolution,
        export_to,
        selector: if selector.is_empty() {
            None
        } else {
            Some(selector)
        },
        publish_not_ready: r
            .opt_bool("spec.publishNotReadyAddresses")?
            .unwrap_or(false),
        inline_endpoints: Vec::new(),
        creation_timestamp: meta.creation_timestamp.clone(),
    })
}

fn service_entry(v: &Value) -> Result<Vec<RegistryService>, ObjectError> {
    let meta = Meta::from_value(v)?;
    let id = meta.id();
    let r = Reader::new(&id, v);
    let mut ports = Vec::new();
    for (i, p) in r.opt_array("spec.ports")?.iter().enumerate() {
        let rel = format!("spec.ports[{i}]");
        if !p.is_object() {
            return Err(r.type_err(&rel, "an object", p));
        }
        let owned = r.at(p, &rel);
        let pr = owned.reader();
        let protocol = Protocol::parse(&pr.opt_str("protocol")?.unwrap_or_default());
        ports.push(ServicePort {
            name: pr.opt_str("name")?,
            port: pr.opt_u32("number")?.ok_or_else(|| pr.missing("number"))?,
            protocol,
            protocol_source: ProtocolSource::ServiceEntryField,
            target_port: pr.opt_u32("targetPort")?.map(TargetPort::Number),
        });
    }
    let resolution = match r.opt_str("spec.resolution")?.as_deref() {
        None | Some("NONE") => Resolution::Passthrough,
        Some("STATIC") => Resolution::ClientSideLb,
        Some(_) => Resolution::Dns,
    };
    let mesh_external = r.opt_str("spec.location")?.as_deref() != Some("MESH_INTERNAL");
    let selector = match r.opt_object("spec.workloadSelector")? {
        Some(_) => Some(r.str_map("spec.workloadSelector.labels")?),
        None => None,
    };
    let mut inline = Vec::new();
    for (i, e) in r.opt_array("spec.endpoints")?.iter().enumerate() {
        let rel = format!("spec.endpoints[{i}]");
        if !e.is_object() {
            return Err(r.type_err(&rel, "an object", e));
        }
        let owned = r.at(e, &rel);
        let er = owned.reader();
        let addr = er.opt_str("address")?.unwrap_or_default();
        inline.push((addr, er.str_map("labels")?));
    }
    let export_to = r.str_list("spec.exportTo")?;
    Ok(r.str_list("spec.hosts")?
        .into_iter()
        .map(|h| RegistryService {
            object: meta.object_ref(),
            kind: ServiceKind::ServiceEntry { mesh_external },
            hostname: h.to_ascii_lowercase(),
            namespace: meta.namespace.clone(),
            ports: ports.clone(),
            resolution: resolution.clone(),
            export_to: export_to.clone(),
            selector: selector.clone(),
            publish_not_ready: false,
            inline_endpoints: inline.clone(),
            creation_timestamp: meta.creation_timestamp.clone(),
        })
        .collect())
}

/// A pod as a potential endpoint; `None` for pods that ended (Succeeded/Failed).
fn pod(v: &Value) -> Result<Option<Workload>, ObjectError> {
    let meta = Meta::from_value(v)?;
    let id = meta.id();
    let r = Reader::new(&id, v);
    let phase = r.opt_str("status.phase")?.unwrap_or_default();
    if phase == "Succeeded" || phase == "Failed" {
        return Ok(None);
    }
    let mut named_ports = BTreeMap::new();
    for (i, c) in r.opt_array("spec.containers")?.iter().enumerate() {
        let rel = format!("spec.containers[{i}]");
        if !c.is_object() {
            return Err(r.type_err(&rel, "an object", c));
        }
        let owned = r.at(c, &rel);
        let cr = owned.reader();
        for (j, p) in cr.opt_array("ports")?.iter().enumerate() {
            let prel = format!("ports[{j}]");
            if !p.is_object() {
                return Err(cr.type_err(&prel, "an object", p));
            }
            let po = cr.at(p, &prel);
            let pr = po.reader();
            if let (Some(n), Some(num)) = (pr.opt_str("name")?, pr.opt_u32("containerPort")?) {
                named_ports.insert(n, num);
            }
        }
    }
    let mut ready_condition = None;
    for (i, c) in r.opt_array("status.conditions")?.iter().enumerate() {
        let rel = format!("status.conditions[{i}]");
        if !c.is_object() {
            return Err(r.type_err(&rel, "an object", c));
        }
        let owned = r.at(c, &rel);
        let cr = owned.reader();
        if cr.opt_str("type")?.as_deref() == Some("Ready") {
            ready_condition = cr.opt_str("status")?;
        }
    }
    let not_ready_because = if r.opt_str("metadata.deletionTimestamp")?.is_some() {
        Some("terminating".to_string())
    } else if r.opt_str("status.podIP")?.is_none_or(|ip| ip.is_empty()) {
        Some("no pod IP".to_string())
    } else if ready_condition.as_deref() != Some("True") {
        Some(format!(
            "Ready condition is {}",
            ready_condition.as_deref().unwrap_or("absent")
        ))
    } else {
        None
    };
    Ok(Some(Workload {
        object: ObjectRef {
            kind: "Pod".into(),
            namespace: meta.namespace.clone(),
            name: meta.name.clone(),
        },
        namespace: meta.namespace.clone(),
        labels: meta.labels.clone(),
        ready: not_ready_because.is_none(),
        not_ready_because,
        has_sidecar: super::super::sidecar::has_sidecar(v),
        named_ports,
    }))
}

fn workload_entry(v: &Value) -> Result<Workload, ObjectError> {
    let meta = Meta::from_value(v)?;
    let id = meta.id();
    let r = Reader::new(&id, v);
    let labels = r.str_map("spec.labels")?;
    Ok(Workload {
        object: ObjectRef {
            kind: "WorkloadEntry".into(),
            namespace: meta.namespace.clone(),
            name: meta.name.clone(),
        },
        namespace: meta.namespace.clone(),
        labels,
        ready: true,
        not_ready_because: None,
        has_sidecar: true,
        named_ports: BTreeMap::new(),
    })
}
