//! Model stage: Services and their endpoints, with ports resolved the way
//! Kubernetes and istiod resolve them.
//!
//! - the protocol of a port: `appProtocol`, else the port name's prefix
//!   (case-insensitive), UDP ports are UDP, well-known ports default to TCP,
//!   anything else is sniffed (istio/istio `pkg/config/kube/conversion.go`
//!   `ConvertProtocol`, `pkg/config/protocol/instance.go` `Parse`), read by
//!   `istio::routing::registry::kubernetes_protocol` for the mesh's release;
//! - the container port behind a Service port on one pod: a number as
//!   written, a name looked up in the pod's containers and native sidecars
//!   with the same protocol (k8s.io/endpointslice `utils.go` `findPort`).

use std::collections::BTreeMap;
use std::fmt;

use serde_json::Value;

use super::pods::{Pod, PodKey};
use crate::istio::mesh_config::IstioVersion;
use crate::istio::object::{Meta, ObjectError, Reader};
use crate::istio::routing::registry::kubernetes_protocol;
use crate::istio::routing::RoutingOptions;

/// `namespace/name` of a Service.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ServiceKey {
    pub namespace: String,
    pub name: String,
}

impl ServiceKey {
    pub fn new(namespace: &str, name: &str) -> ServiceKey {
        ServiceKey {
            namespace: namespace.to_string(),
            name: name.to_string(),
        }
    }
}

impl fmt::Display for ServiceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// `targetPort` as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetPort {
    Number(u16),
    Name(String),
}

/// Istio's protocol for a Service port and what decided it: `istio::routing`'s
/// types, so the model and the routing semantics read ports one way.
pub use crate::istio::routing::registry::{Protocol, ProtocolSource};

/// istio/istio `ConvertProtocol` as a current Istio applies it (see
/// [`resolve_protocol_at`]).
pub fn resolve_protocol(
    port: u16,
    name: Option<&str>,
    transport: &str,
    app_protocol: Option<&str>,
) -> (Protocol, ProtocolSource) {
    resolve_protocol_at(port, name, transport, app_protocol, None)
}

/// istio/istio `ConvertProtocol` for the release `version` (`None`: a
/// current Istio): UDP first; `appProtocol` replaces the port name (from
/// 1.6); a `grpc-web` prefix before the general `-` split; unknown names on
/// ports 25, 53, 3306, 27017 are TCP. The one reading is
/// `istio::routing::registry::kubernetes_protocol`.
pub fn resolve_protocol_at(
    port: u16,
    name: Option<&str>,
    transport: &str,
    app_protocol: Option<&str>,
    version: Option<IstioVersion>,
) -> (Protocol, ProtocolSource) {
    let opts = RoutingOptions {
        version,
        ..RoutingOptions::default()
    };
    let l4 = transport.to_ascii_uppercase();
    kubernetes_protocol(u32::from(port), name, Some(&l4), app_protocol, &opts)
}

/// One Service port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServicePort {
    pub number: u16,
    pub name: Option<String>,
    pub target_port: TargetPort,
    pub app_protocol: Option<String>,
    /// `TCP`, `UDP`, `SCTP`.
    pub transport: String,
    pub protocol: Protocol,
    pub protocol_source: ProtocolSource,
}

/// How a Service port reached a pod's container port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PortResolution {
    /// `targetPort` is a number (or absent: the port itself).
    Number,
    /// A named container port.
    Name(String),
    /// The pod declares no such named port: Kubernetes makes no endpoint
    /// for it. The service port number stands in so listeners can still be read.
    Unresolved(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedPort {
    pub number: u16,
    pub resolution: PortResolution,
}

impl ServicePort {
    /// The container port this Service port sends to on `pod`.
    pub fn on_pod(&self, pod: &Pod) -> ResolvedPort {
        match &self.target_port {
            TargetPort::Number(n) => ResolvedPort {
                number: *n,
                resolution: PortResolution::Number,
            },
            TargetPort::Name(name) => match pod
                .container_ports
                .iter()
                .find(|p| p.name.as_deref() == Some(name) && p.protocol == self.transport)
            {
                Some(p) => ResolvedPort {
                    number: p.number,
                    resolution: PortResolution::Name(name.clone()),
                },
                None => ResolvedPort {
                    number: self.number,
                    resolution: PortResolution::Unresolved(name.clone()),
                },
            },
        }
    }
}

/// A Kubernetes Service.
#[derive(Debug, Clone, PartialEq)]
pub struct Service {
    pub key: ServiceKey,
    /// `name.namespace.svc.<cluster domain>`.
    pub fqdn: String,
    /// `spec.selector`; `None` for a Service without one (endpoints managed by hand).
    pub selector: Option<BTreeMap<String, String>>,
    pub ports: Vec<ServicePort>,
    pub cluster_ip: Option<String>,
}

impl Service {
    /// Parse a `Service`; `domain` is the cluster domain suffix; ports are
    /// read as a current Istio reads them.
    pub fn from_value(v: &Value, domain: &str) -> Result<Service, ObjectError> {
        Self::from_value_at(v, domain, None)
    }

    /// [`Service::from_value`] with ports read as Istio `version` reads them.
    pub fn from_value_at(
        v: &Value,
        domain: &str,
        version: Option<IstioVersion>,
    ) -> Result<Service, ObjectError> {
        let meta = Meta::from_value(v)?;
        let id = meta.id();
        let r = Reader::new(&id, v);
        let selector = r.str_map("spec.selector")?;
        let mut ports = Vec::new();
        for (i, p) in r.opt_array("spec.ports")?.iter().enumerate() {
            let owned = r.at(p, &format!("spec.ports[{i}]"));
            ports.push(parse_port(&owned.reader(), version)?);
        }
        Ok(Service {
            fqdn: format!("{}.{}.svc.{domain}", meta.name, meta.namespace),
            key: ServiceKey::new(&meta.namespace, &meta.name),
            selector: (!selector.is_empty()).then_some(selector),
            ports,
            cluster_ip: r.opt_str("spec.clusterIP")?,
        })
    }

    /// Does the selector select `pod` (same namespace, every label matches)?
    pub fn selects(&self, pod: &Pod) -> bool {
        pod.key.namespace == self.key.namespace
            && self
                .selector
                .as_ref()
                .is_some_and(|s| s.iter().all(|(k, v)| pod.labels.get(k) == Some(v)))
    }

    pub fn port(&self, number: u16) -> Option<&ServicePort> {
        self.ports.iter().find(|p| p.number == number)
    }

    /// `clusterIP: None`: clients reach the pods directly (an ORIGINAL_DST
    /// cluster in Istio, no per-endpoint TLS choice).
    pub fn is_headless(&self) -> bool {
        self.cluster_ip.as_deref() == Some("None")
    }
}

fn port_u16(r: &Reader, rel: &str, n: u32) -> Result<u16, ObjectError> {
    u16::try_from(n).map_err(|_| r.invalid(rel, format!("{n} is not a port")))
}

fn parse_port(r: &Reader, version: Option<IstioVersion>) -> Result<ServicePort, ObjectError> {
    let number = r.opt_u32("port")?.ok_or_else(|| r.missing("port"))?;
    let number = port_u16(r, "port", number)?;
    let target_port = match r.get("targetPort") {
        None => TargetPort::Number(number),
        Some(Value::Number(_)) => {
            let n = r.opt_u32("targetPort")?.unwrap_or(number as u32);
            TargetPort::Number(port_u16(r, "targetPort", n)?)
        }
        Some(Value::String(s)) => match s.parse::<u16>() {
            Ok(n) => TargetPort::Number(n),
            Err(_) => TargetPort::Name(s.clone()),
        },
        Some(other) => return Err(r.type_err("targetPort", "a number or a name", other)),
    };
    let name = r.opt_str("name")?;
    let app_protocol = r.opt_str("appProtocol")?;
    let transport = r.opt_str("protocol")?.unwrap_or_else(|| "TCP".into());
    let (protocol, protocol_source) = resolve_protocol_at(
        number,
        name.as_deref(),
        &transport,
        app_protocol.as_deref(),
        version,
    );
    Ok(ServicePort {
        number,
        name,
        target_port,
        app_protocol,
        transport,
        protocol,
        protocol_source,
    })
}

/// Where an endpoint list came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndpointSource {
    /// `discovery.k8s.io` EndpointSlice (by name).
    Slice(String),
    /// Core `v1` Endpoints (clusters before EndpointSlices).
    Endpoints,
}

/// One endpoint of a Service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub addresses: Vec<String>,
    /// `conditions.ready`; `None` = unknown (Kubernetes: treat as ready).
    pub ready: Option<bool>,
    pub pod: Option<PodKey>,
}

/// The endpoints of one Service from one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointSet {
    pub service: ServiceKey,
    pub source: EndpointSource,
    pub endpoints: Vec<Endpoint>,
}

impl EndpointSet {
    /// An EndpointSlice (its Service from `kubernetes.io/service-name`).
    pub fn from_slice(v: &Value) -> Result<Option<EndpointSet>, ObjectError> {
        let meta = Meta::from_value(v)?;
        let Some(svc) = meta.labels.get("kubernetes.io/service-name") else {
            return Ok(None);
        };
        let id = meta.id();
        let r = Reader::new(&id, v);
        let mut endpoints = Vec::new();
        for (i, e) in r.opt_array("endpoints")?.iter().enumerate() {
            let owned = r.at(e, &format!("endpoints[{i}]"));
            let er = owned.reader();
            endpoints.push(Endpoint {
                addresses: er.str_list("addresses")?,
                ready: er.opt_bool("conditions.ready")?,
                pod: target_pod(&er)?,
            });
        }
        Ok(Some(EndpointSet {
            service: ServiceKey::new(&meta.namespace, svc),
            source: EndpointSource::Slice(meta.name.clone()),
            endpoints,
        }))
    }

    /// Core `Endpoints` (same name as its Service).
    pub fn from_endpoints(v: &Value) -> Result<EndpointSet, ObjectError> {
        let meta = Meta::from_value(v)?;
        let id = meta.id();
        let r = Reader::new(&id, v);
        let mut endpoints = Vec::new();
        for (i, s) in r.opt_array("subsets")?.iter().enumerate() {
            let owned = r.at(s, &format!("subsets[{i}]"));
            let sr = owned.reader();
            for (list, ready) in [("addresses", true), ("notReadyAddresses", false)] {
                for (j, a) in sr.opt_array(list)?.iter().enumerate() {
                    let owned = sr.at(a, &format!("{list}[{j}]"));
                    let ar = owned.reader();
                    endpoints.push(Endpoint {
                        addresses: ar.opt_str("ip")?.into_iter().collect(),
                        ready: Some(ready),
                        pod: target_pod(&ar)?,
                    });
                }
            }
        }
        Ok(EndpointSet {
            service: ServiceKey::new(&meta.namespace, &meta.name),
            source: EndpointSource::Endpoints,
            endpoints,
        })
    }
}

fn target_pod(r: &Reader) -> Result<Option<PodKey>, ObjectError> {
    if r.opt_str("targetRef.kind")?.as_deref() != Some("Pod") {
        return Ok(None);
    }
    let name = r.opt_str("targetRef.name")?;
    let ns = r.opt_str("targetRef.namespace")?;
    Ok(match (ns, name) {
        (Some(ns), Some(name)) => Some(PodKey {
            namespace: ns,
            name,
        }),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn protocols_as_istiod_reads_them() {
        let cases = [
            (8000, Some("http"), "TCP", None, Protocol::Http),
            (8000, Some("HTTP-web"), "TCP", None, Protocol::Http),
            (8000, Some("grpc-web-x"), "TCP", None, Protocol::GrpcWeb),
            (8000, Some("web"), "TCP", Some("http2"), Protocol::Http2),
            // appProtocol replaces the name, even when the name is good.
            (
                8000,
                Some("http"),
                "TCP",
                Some("custom"),
                Protocol::Unsupported,
            ),
            (8000, Some("web"), "TCP", None, Protocol::Unsupported),
            (8000, None, "TCP", None, Protocol::Unsupported),
            (3306, None, "TCP", None, Protocol::Tcp),
            (9000, Some("http"), "UDP", None, Protocol::Udp),
            (
                8000,
                None,
                "TCP",
                Some("kubernetes.io/h2c"),
                Protocol::Http2,
            ),
        ];
        for (port, name, transport, app, want) in cases {
            assert_eq!(
                resolve_protocol(port, name, transport, app).0,
                want,
                "{port} {name:?} {app:?}"
            );
        }
    }

    #[test]
    fn app_protocol_counts_from_istio_1_6() {
        let v = |s: &str| crate::istio::mesh_config::IstioVersion::parse(s);
        let at = |version| resolve_protocol_at(8000, Some("tcp"), "TCP", Some("http"), version).0;
        assert_eq!(at(v("1.6.0")), Protocol::Http);
        assert_eq!(
            at(v("1.5.4")),
            Protocol::Tcp,
            "near miss: 1.5 reads the name"
        );
    }

    #[test]
    fn named_target_ports_resolve_per_pod() {
        let svc = Service::from_value(
            &json!({"kind": "Service", "metadata": {"name": "web", "namespace": "foo"},
                "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": "http"}, {"port": 81}]}}),
            "example.org",
        )
        .unwrap();
        assert_eq!(svc.fqdn, "web.foo.svc.example.org");
        let pod = |port_name: &str| {
            Pod::from_value(&json!({"kind": "Pod", "metadata": {"name": "w", "namespace": "foo", "labels": {"app": "web"}},
                "spec": {"containers": [{"name": "app", "ports": [{"name": port_name, "containerPort": 8080}]}]}}))
            .unwrap()
        };
        let p80 = svc.port(80).unwrap();
        assert_eq!(p80.on_pod(&pod("http")).number, 8080);
        let missing = p80.on_pod(&pod("grpc"));
        assert_eq!(missing.number, 80);
        assert!(matches!(missing.resolution, PortResolution::Unresolved(_)));
        assert_eq!(svc.port(81).unwrap().on_pod(&pod("http")).number, 81);
        assert!(svc.selects(&pod("http")));
    }

    #[test]
    fn endpoints_from_slices_and_core_endpoints() {
        let slice = EndpointSet::from_slice(&json!({"kind": "EndpointSlice",
            "metadata": {"name": "web-abc", "namespace": "foo", "labels": {"kubernetes.io/service-name": "web"}},
            "endpoints": [{"addresses": ["10.0.0.1"], "conditions": {"ready": false},
                           "targetRef": {"kind": "Pod", "name": "w", "namespace": "foo"}}]}))
        .unwrap()
        .unwrap();
        assert_eq!(slice.service, ServiceKey::new("foo", "web"));
        assert_eq!(slice.endpoints[0].ready, Some(false));
        assert_eq!(slice.endpoints[0].pod, Some(PodKey::new("foo", "w")));
        let core = EndpointSet::from_endpoints(&json!({"kind": "Endpoints", "metadata": {"name": "web", "namespace": "foo"},
            "subsets": [{"addresses": [{"ip": "10.0.0.2"}], "notReadyAddresses": [{"ip": "10.0.0.3"}]}]}))
        .unwrap();
        assert_eq!(
            core.endpoints.iter().map(|e| e.ready).collect::<Vec<_>>(),
            vec![Some(true), Some(false)]
        );
    }
}
