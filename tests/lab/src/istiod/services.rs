//! istiod's service registry: Kubernetes Services (with their EndpointSlices)
//! and ServiceEntries, the protocol of each port, and which of them one
//! sidecar sees (Service `exportTo`, Sidecar `egress.hosts`).

use super::world::{
    self, labels, name, namespace, selects, string_list, string_map, MeshConfig, World,
};
use serde_json::Value;
use std::collections::BTreeMap;

/// The Kubernetes cluster domain (service FQDN suffix).
pub const DOMAIN_SUFFIX: &str = "cluster.local";

/// Pod label with which the injector marks pods that can terminate mTLS; it
/// becomes endpoint metadata `envoy.transport_socket_match.tlsMode`.
pub const TLS_MODE_LABEL: &str = "security.istio.io/tlsMode";

/// Protocol of a service port, as Istio reads it (istio/istio
/// `pkg/config/protocol/instance.go` `Parse`, `pkg/config/kube/conversion.go`
/// `ConvertProtocol`: `appProtocol` first, then the port name's prefix
/// before `-`, case-insensitive).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Http,
    Http2,
    Grpc,
    Https,
    Tls,
    Tcp,
    Udp,
    /// Unnamed or unknown: Istio sniffs it. The lab treats it as HTTP, which
    /// is what sniffing finds for the plain HTTP traffic the lab sends.
    Unknown,
}

impl Protocol {
    pub fn parse(s: &str) -> Protocol {
        match s.to_ascii_lowercase().as_str() {
            "http" | "http/1.1" | "http1" => Protocol::Http,
            "http2" | "h2c" | "kubernetes.io/h2c" => Protocol::Http2,
            "grpc" | "grpc-web" => Protocol::Grpc,
            "https" => Protocol::Https,
            "tls" => Protocol::Tls,
            "tcp" | "mongo" | "redis" | "mysql" => Protocol::Tcp,
            "udp" => Protocol::Udp,
            _ => Protocol::Unknown,
        }
    }

    /// A Kubernetes port: `appProtocol` wins, then the name prefix.
    pub fn of_kube_port(port_name: &str, app_protocol: Option<&str>, l4: Option<&str>) -> Protocol {
        if matches!(l4, Some("UDP")) {
            return Protocol::Udp;
        }
        if let Some(ap) = app_protocol.filter(|s| !s.is_empty()) {
            let p = Protocol::parse(ap);
            if p != Protocol::Unknown {
                return p;
            }
        }
        if port_name.eq_ignore_ascii_case("grpc-web") {
            return Protocol::Grpc;
        }
        let prefix = port_name.split('-').next().unwrap_or("");
        Protocol::parse(prefix)
    }

    /// Handled by an HTTP connection manager in the lab.
    pub fn is_http(self) -> bool {
        matches!(
            self,
            Protocol::Http | Protocol::Http2 | Protocol::Grpc | Protocol::Unknown
        )
    }

    pub fn is_http2(self) -> bool {
        matches!(self, Protocol::Http2 | Protocol::Grpc)
    }
}

/// `targetPort` of a service port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetPort {
    Number(u16),
    Name(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServicePort {
    pub name: String,
    pub port: u16,
    pub target_port: Option<TargetPort>,
    pub protocol: Protocol,
}

/// Where a service came from.
#[derive(Debug, Clone)]
pub enum Source<'a> {
    Kubernetes(&'a Value),
    /// A ServiceEntry host; `resolution` is `NONE`, `STATIC` or `DNS`.
    ServiceEntry {
        obj: &'a Value,
        resolution: String,
    },
}

/// One service host as istiod models it (`model.Service`).
#[derive(Debug, Clone)]
pub struct Service<'a> {
    pub name: String,
    pub namespace: String,
    /// FQDN, e.g. `httpbin.foo.svc.cluster.local` (or the ServiceEntry host).
    pub hostname: String,
    pub cluster_ip: Option<String>,
    pub ports: Vec<ServicePort>,
    /// Pod selector (Kubernetes services); None for selector-less services.
    pub selector: Option<BTreeMap<String, String>>,
    pub export_to: Vec<String>,
    pub mesh_external: bool,
    pub source: Source<'a>,
}

impl<'a> Service<'a> {
    pub fn port(&self, number: u16) -> Option<&ServicePort> {
        self.ports.iter().find(|p| p.port == number)
    }

    /// Visible from `client_ns` under its exportTo (`*`/empty = all, `.` = own
    /// namespace, `~` = none, else the listed namespaces).
    pub fn exported_to(&self, client_ns: &str) -> bool {
        exported(&self.export_to, &self.namespace, client_ns)
    }
}

/// exportTo semantics shared by Services, DestinationRules and VirtualServices
/// (istio/istio `pkg/config/visibility`).
pub fn exported(export_to: &[String], owner_ns: &str, client_ns: &str) -> bool {
    if export_to.is_empty() {
        return true;
    }
    export_to.iter().any(|e| match e.as_str() {
        "*" => true,
        "." => owner_ns == client_ns,
        "~" => false,
        ns => ns == client_ns,
    })
}

/// Every service host in the world, Kubernetes Services first, sorted by
/// hostname then namespace (istiod sorts services by creation time; the lab
/// uses a stable name order).
pub fn all_services(world: &World) -> Vec<Service<'_>> {
    let mut out = Vec::new();
    for s in world.of_kind("", "Service") {
        let ns = namespace(s).to_string();
        let n = name(s).to_string();
        let spec = &s["spec"];
        if spec["type"].as_str() == Some("ExternalName") {
            continue;
        }
        let ports = spec["ports"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| {
                let port = p["port"].as_u64()? as u16;
                let pname = p["name"].as_str().unwrap_or("").to_string();
                let target_port = match &p["targetPort"] {
                    Value::Number(n) => n.as_u64().map(|n| TargetPort::Number(n as u16)),
                    Value::String(s) => Some(
                        s.parse::<u16>()
                            .map(TargetPort::Number)
                            .unwrap_or_else(|_| TargetPort::Name(s.clone())),
                    ),
                    _ => None,
                };
                let protocol = Protocol::of_kube_port(
                    &pname,
                    p["appProtocol"].as_str(),
                    p["protocol"].as_str(),
                );
                Some(ServicePort {
                    name: pname,
                    port,
                    target_port,
                    protocol,
                })
            })
            .filter(|p| p.protocol != Protocol::Udp)
            .collect();
        let selector = spec["selector"]
            .as_object()
            .filter(|m| !m.is_empty())
            .map(|_| string_map(&spec["selector"]));
        let export_to = world::annotation(s, "networking.istio.io/exportTo")
            .map(|a| {
                a.split(',')
                    .map(|x| x.trim().to_string())
                    .filter(|x| !x.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        out.push(Service {
            hostname: format!("{n}.{ns}.svc.{DOMAIN_SUFFIX}"),
            name: n,
            namespace: ns,
            cluster_ip: spec["clusterIP"]
                .as_str()
                .filter(|s| *s != "None" && !s.is_empty())
                .map(str::to_string),
            ports,
            selector,
            export_to,
            mesh_external: false,
            source: Source::Kubernetes(s),
        });
    }
    for se in world.of_kind("networking.istio.io", "ServiceEntry") {
        let spec = &se["spec"];
        let ns = namespace(se).to_string();
        let ports: Vec<ServicePort> = spec["ports"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| {
                let port = p["number"].as_u64()? as u16;
                let pname = p["name"].as_str().unwrap_or("").to_string();
                let protocol = p["protocol"]
                    .as_str()
                    .map(Protocol::parse)
                    .unwrap_or_else(|| Protocol::of_kube_port(&pname, None, None));
                let target_port = p["targetPort"]
                    .as_u64()
                    .map(|t| TargetPort::Number(t as u16));
                Some(ServicePort {
                    name: pname,
                    port,
                    target_port,
                    protocol,
                })
            })
            .filter(|p| p.protocol != Protocol::Udp)
            .collect();
        let resolution = spec["resolution"].as_str().unwrap_or("NONE").to_string();
        let mesh_external = spec["location"].as_str() != Some("MESH_INTERNAL");
        for host in string_list(&spec["hosts"]) {
            out.push(Service {
                name: host.clone(),
                namespace: ns.clone(),
                hostname: host,
                cluster_ip: string_list(&spec["addresses"]).into_iter().next(),
                ports: ports.clone(),
                selector: None,
                export_to: string_list(&spec["exportTo"]),
                mesh_external,
                source: Source::ServiceEntry {
                    obj: se,
                    resolution: resolution.clone(),
                },
            });
        }
    }
    out.sort_by(|a, b| (&a.hostname, &a.namespace).cmp(&(&b.hostname, &b.namespace)));
    out
}

/// The services a sidecar in `proxy_ns` with `proxy_labels` knows about:
/// exported to its namespace, and allowed by its Sidecar resource's egress
/// hosts if one applies (istio/istio `pilot/pkg/model/sidecar.go`
/// `ConvertToSidecarScope`).
pub fn visible_services<'a>(
    world: &'a World,
    mesh: &MeshConfig,
    proxy_ns: &str,
    proxy_labels: &BTreeMap<String, String>,
) -> Vec<Service<'a>> {
    let sidecar = sidecar_for(world, mesh, proxy_ns, proxy_labels);
    let egress_hosts: Option<Vec<String>> = sidecar.map(|sc| {
        sc["spec"]["egress"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|e| string_list(&e["hosts"]))
            .collect()
    });
    all_services(world)
        .into_iter()
        .filter(|s| s.exported_to(proxy_ns))
        .filter(|s| match &egress_hosts {
            None => true,
            Some(hosts) => hosts.iter().any(|h| egress_host_matches(h, proxy_ns, s)),
        })
        .collect()
}

/// The Sidecar resource that applies to a proxy: one in its namespace whose
/// workloadSelector matches, else its namespace's selector-less one, else the
/// root namespace's selector-less one; oldest first at each step.
pub fn sidecar_for<'a>(
    world: &'a World,
    mesh: &MeshConfig,
    proxy_ns: &str,
    proxy_labels: &BTreeMap<String, String>,
) -> Option<&'a Value> {
    let mut all: Vec<&Value> = world.of_kind("networking.istio.io", "Sidecar").collect();
    all.sort_by_key(|o| world::age_key(o));
    let selector = |o: &Value| string_map(&o["spec"]["workloadSelector"]["labels"]);
    all.iter()
        .find(|o| {
            namespace(o) == proxy_ns
                && !selector(o).is_empty()
                && selects(&selector(o), proxy_labels)
        })
        .or_else(|| {
            all.iter()
                .find(|o| namespace(o) == proxy_ns && selector(o).is_empty())
        })
        .or_else(|| {
            all.iter()
                .find(|o| namespace(o) == mesh.root_namespace && selector(o).is_empty())
        })
        .copied()
}

/// `ns/dnsName` egress host: ns `*` any, `.` the proxy's namespace, `~` none;
/// dnsName `*`, `*.suffix` or an exact FQDN.
fn egress_host_matches(entry: &str, proxy_ns: &str, svc: &Service) -> bool {
    let (ns, host) = entry.split_once('/').unwrap_or(("*", entry));
    let ns_ok = match ns {
        "*" => true,
        "." => svc.namespace == proxy_ns,
        "~" => false,
        other => other == svc.namespace,
    };
    ns_ok && host_matches(host, &svc.hostname)
}

/// Istio host matching: `*` matches everything, `*.suffix` any host ending
/// in `.suffix`, otherwise equality (istio/istio `pkg/config/host/name.go`).
pub fn host_matches(pattern: &str, host: &str) -> bool {
    if pattern == "*" {
        return true;
    }
    if let Some(suffix) = pattern.strip_prefix('*') {
        return host.ends_with(suffix) && host.len() > suffix.len();
    }
    pattern == host
}

/// Resolve a short host against a namespace (`httpbin` in `foo` →
/// `httpbin.foo.svc.cluster.local`); hosts with a dot or `*` stay as written
/// (istio/istio `pkg/config/host` `ResolveShortnameToFQDN` behaviour).
pub fn resolve_host(host: &str, ns: &str) -> String {
    if host == "*" || host.contains('.') {
        host.to_string()
    } else {
        format!("{host}.{ns}.svc.{DOMAIN_SUFFIX}")
    }
}

/// One endpoint of a service port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub address: String,
    pub port: u16,
    pub labels: BTreeMap<String, String>,
    pub namespace: String,
    pub service_account: Option<String>,
    pub pod_name: Option<String>,
}

impl Endpoint {
    /// The pod carries `security.istio.io/tlsMode: istio` (it has a sidecar).
    pub fn istio_tls(&self) -> bool {
        self.labels.get(TLS_MODE_LABEL).map(String::as_str) == Some("istio")
    }
}

/// Ready endpoints of a service port: from EndpointSlices (label
/// `kubernetes.io/service-name`), else a v1 Endpoints object, or the
/// ServiceEntry's endpoints. Not-ready endpoints are left out, as istiod does
/// by default (`PILOT_SEND_UNHEALTHY_ENDPOINTS=false`).
pub fn endpoints(world: &World, svc: &Service, port: &ServicePort) -> Vec<Endpoint> {
    let mut out = Vec::new();
    match &svc.source {
        Source::Kubernetes(_) => {
            let slices: Vec<&Value> = world
                .of_kind_in("discovery.k8s.io", "EndpointSlice", &svc.namespace)
                .filter(|s| {
                    s["metadata"]["labels"]["kubernetes.io/service-name"].as_str()
                        == Some(svc.name.as_str())
                })
                .collect();
            if !slices.is_empty() {
                for slice in slices {
                    let Some(target) = slice["ports"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .find(|p| p["name"].as_str().unwrap_or("") == port.name)
                        .and_then(|p| p["port"].as_u64())
                    else {
                        continue;
                    };
                    for ep in slice["endpoints"].as_array().into_iter().flatten() {
                        if ep["conditions"]["ready"].as_bool() == Some(false) {
                            continue;
                        }
                        for addr in string_list(&ep["addresses"]) {
                            out.push(endpoint_for(
                                world,
                                &svc.namespace,
                                addr,
                                target as u16,
                                &ep["targetRef"],
                            ));
                        }
                    }
                }
            } else if let Some(eps) = world
                .of_kind_in("", "Endpoints", &svc.namespace)
                .find(|e| name(e) == svc.name)
            {
                for subset in eps["subsets"].as_array().into_iter().flatten() {
                    let Some(target) = subset["ports"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .find(|p| p["name"].as_str().unwrap_or("") == port.name)
                        .and_then(|p| p["port"].as_u64())
                    else {
                        continue;
                    };
                    for a in subset["addresses"].as_array().into_iter().flatten() {
                        if let Some(ip) = a["ip"].as_str() {
                            out.push(endpoint_for(
                                world,
                                &svc.namespace,
                                ip.to_string(),
                                target as u16,
                                &a["targetRef"],
                            ));
                        }
                    }
                }
            }
        }
        Source::ServiceEntry { obj, .. } => {
            for ep in obj["spec"]["endpoints"].as_array().into_iter().flatten() {
                let Some(addr) = ep["address"].as_str() else {
                    continue;
                };
                let target = ep["ports"][port.name.as_str()]
                    .as_u64()
                    .map(|p| p as u16)
                    .unwrap_or(match &port.target_port {
                        Some(TargetPort::Number(n)) => *n,
                        _ => port.port,
                    });
                out.push(Endpoint {
                    address: addr.to_string(),
                    port: target,
                    labels: string_map(&ep["labels"]),
                    namespace: svc.namespace.clone(),
                    service_account: ep["serviceAccount"].as_str().map(str::to_string),
                    pod_name: None,
                });
            }
        }
    }
    out.sort_by(|a, b| (&a.address, a.port).cmp(&(&b.address, b.port)));
    out.dedup();
    out
}

fn endpoint_for(
    world: &World,
    svc_ns: &str,
    address: String,
    port: u16,
    target_ref: &Value,
) -> Endpoint {
    let pod = target_ref["name"].as_str().and_then(|pn| {
        let ns = target_ref["namespace"].as_str().unwrap_or(svc_ns);
        world.find_pod(ns, pn)
    });
    Endpoint {
        address,
        port,
        labels: pod.map(labels).unwrap_or_default(),
        namespace: pod
            .map(|p| namespace(p).to_string())
            .unwrap_or_else(|| svc_ns.to_string()),
        service_account: pod.map(|p| {
            p["spec"]["serviceAccountName"]
                .as_str()
                .unwrap_or("default")
                .to_string()
        }),
        pod_name: pod.map(|p| name(p).to_string()),
    }
}

/// SPIFFE identities of the workloads behind a service (sorted, unique): the
/// SANs a client verifies for ISTIO_MUTUAL (istio/istio
/// `PushContext.ServiceAccounts`).
pub fn service_accounts(world: &World, svc: &Service, trust_domain: &str) -> Vec<String> {
    let mut out: Vec<String> = svc
        .ports
        .iter()
        .flat_map(|p| endpoints(world, svc, p))
        .filter_map(|e| {
            e.service_account
                .map(|sa| format!("spiffe://{trust_domain}/ns/{}/sa/{sa}", e.namespace))
        })
        .collect();
    if let Source::ServiceEntry { obj, .. } = &svc.source {
        out.extend(string_list(&obj["spec"]["subjectAltNames"]));
    }
    out.sort();
    out.dedup();
    out
}

/// Kubernetes Services in the pod's namespace whose selector picks the pod.
pub fn services_for_pod<'a>(world: &'a World, pod: &Value) -> Vec<Service<'a>> {
    let ns = namespace(pod);
    let pod_labels = labels(pod);
    all_services(world)
        .into_iter()
        .filter(|s| matches!(s.source, Source::Kubernetes(_)))
        .filter(|s| {
            s.namespace == ns
                && s.selector
                    .as_ref()
                    .is_some_and(|sel| selects(sel, &pod_labels))
        })
        .collect()
}

/// The container port a service port lands on for this pod.
pub fn target_port_on(port: &ServicePort, pod: &Value) -> Option<u16> {
    match &port.target_port {
        None => Some(port.port),
        Some(TargetPort::Number(n)) => Some(*n),
        Some(TargetPort::Name(n)) => container_ports(pod)
            .into_iter()
            .find(|c| c.name.as_deref() == Some(n.as_str()))
            .map(|c| c.port),
    }
}

/// A container port of an application container (not `istio-proxy`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerPort {
    pub container: String,
    pub name: Option<String>,
    pub port: u16,
}

/// TCP container ports of the pod's application containers, sorted, unique.
pub fn container_ports(pod: &Value) -> Vec<ContainerPort> {
    let mut out: Vec<ContainerPort> = pod["spec"]["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|c| c["name"].as_str() != Some("istio-proxy"))
        .flat_map(|c| {
            let cname = c["name"].as_str().unwrap_or("").to_string();
            c["ports"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(move |p| {
                    if p["protocol"].as_str().unwrap_or("TCP") != "TCP" {
                        return None;
                    }
                    Some(ContainerPort {
                        container: cname.clone(),
                        name: p["name"].as_str().map(str::to_string),
                        port: p["containerPort"].as_u64()? as u16,
                    })
                })
        })
        .collect();
    out.sort_by_key(|c| c.port);
    out.dedup_by_key(|c| c.port);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn protocol_from_name_and_app_protocol() {
        // conversion.go ConvertProtocol: appProtocol first, then name prefix.
        assert_eq!(Protocol::of_kube_port("http", None, None), Protocol::Http);
        assert_eq!(
            Protocol::of_kube_port("http-web", None, None),
            Protocol::Http
        );
        assert_eq!(
            Protocol::of_kube_port("grpc-api", None, None),
            Protocol::Grpc
        );
        assert_eq!(Protocol::of_kube_port("tcp-db", None, None), Protocol::Tcp);
        assert_eq!(Protocol::of_kube_port("", None, None), Protocol::Unknown);
        assert_eq!(
            Protocol::of_kube_port("db", Some("http"), None),
            Protocol::Http
        );
        assert!(Protocol::Unknown.is_http());
        assert!(!Protocol::Tcp.is_http());
    }

    #[test]
    fn export_to_and_hosts() {
        assert!(exported(&[], "foo", "bar"));
        assert!(exported(&[".".into()], "foo", "foo"));
        assert!(!exported(&[".".into()], "foo", "bar"));
        assert!(exported(&["bar".into()], "foo", "bar"));
        assert!(host_matches("*.local", "httpbin.foo.svc.cluster.local"));
        assert!(host_matches("*", "x"));
        assert!(!host_matches(
            "*.bar.svc.cluster.local",
            "httpbin.foo.svc.cluster.local"
        ));
        assert_eq!(
            resolve_host("httpbin", "foo"),
            "httpbin.foo.svc.cluster.local"
        );
        assert_eq!(resolve_host("*.local", "foo"), "*.local");
    }

    #[test]
    fn sidecar_egress_limits_visible_services() {
        let svc = |n: &str, ns: &str| json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": n, "namespace": ns}, "spec": {"selector": {"app": n}, "ports": [{"name": "http", "port": 8000}]}});
        let w = World::new(vec![
            svc("httpbin", "foo"),
            svc("other", "bar"),
            json!({"apiVersion": "networking.istio.io/v1", "kind": "Sidecar", "metadata": {"name": "default", "namespace": "foo"}, "spec": {"egress": [{"hosts": ["./*"]}]}}),
        ]);
        let vis = visible_services(&w, &MeshConfig::default(), "foo", &BTreeMap::new());
        assert_eq!(
            vis.iter().map(|s| s.hostname.as_str()).collect::<Vec<_>>(),
            vec!["httpbin.foo.svc.cluster.local"]
        );
        assert_eq!(
            visible_services(&w, &MeshConfig::default(), "bar", &BTreeMap::new()).len(),
            2
        );
    }
}
