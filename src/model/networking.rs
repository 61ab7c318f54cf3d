//! Model stage: typed views of the Istio kinds without a parser of their own
//! in `istio/`: VirtualService, Sidecar, ServiceEntry, Gateway, EnvoyFilter,
//! Telemetry. Each keeps the fields the analysis reads (hosts, exportTo,
//! selectors, route destinations, access-log settings); field names follow
//! istio/api (`networking/v1alpha3/*.proto`, `telemetry/v1alpha1/telemetry.proto`).
//! Short hosts are resolved the way istiod resolves them ([`host::fqdn`]).

use std::collections::BTreeMap;

use serde_json::Value;

use crate::istio::host;
use crate::istio::object::{Meta, ObjectError, Reader};

/// Which protocol section of a VirtualService a route is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteKind {
    Http,
    Tcp,
    Tls,
}

/// One `route[]` destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    /// As written.
    pub host: String,
    /// Resolved in the VirtualService's namespace.
    pub host_fqdn: String,
    pub subset: Option<String>,
    pub port: Option<u32>,
    pub weight: Option<i64>,
}

/// One `http[]`, `tcp[]` or `tls[]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub kind: RouteKind,
    /// Position in its section (routes are tried in order).
    pub index: usize,
    pub name: Option<String>,
    pub destinations: Vec<Destination>,
    /// `delegate` (name, namespace), HTTP only.
    pub delegate: Option<(String, Option<String>)>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct VirtualService {
    pub meta: Meta,
    pub hosts: Vec<String>,
    pub gateways: Vec<String>,
    pub export_to: Vec<String>,
    pub routes: Vec<Route>,
}

impl VirtualService {
    pub fn from_value(v: &Value, domain: &str) -> Result<VirtualService, ObjectError> {
        let meta = Meta::from_value(v)?;
        let id = meta.id();
        let r = Reader::new(&id, v);
        let mut routes = Vec::new();
        for (section, kind) in [
            ("spec.http", RouteKind::Http),
            ("spec.tcp", RouteKind::Tcp),
            ("spec.tls", RouteKind::Tls),
        ] {
            for (i, route) in r.opt_array(section)?.iter().enumerate() {
                let owned = r.at(route, &format!("{section}[{i}]"));
                routes.push(parse_route(
                    &owned.reader(),
                    kind,
                    i,
                    &meta.namespace,
                    domain,
                )?);
            }
        }
        Ok(VirtualService {
            hosts: r.str_list("spec.hosts")?,
            gateways: r.str_list("spec.gateways")?,
            export_to: r.str_list("spec.exportTo")?,
            meta,
            routes,
        })
    }

    /// Every destination of the routes of one kind.
    pub fn destinations(&self, kind: RouteKind) -> impl Iterator<Item = &Destination> {
        self.routes
            .iter()
            .filter(move |r| r.kind == kind)
            .flat_map(|r| r.destinations.iter())
    }
}

fn parse_route(
    r: &Reader,
    kind: RouteKind,
    index: usize,
    ns: &str,
    domain: &str,
) -> Result<Route, ObjectError> {
    let mut destinations = Vec::new();
    for (i, d) in r.opt_array("route")?.iter().enumerate() {
        let owned = r.at(d, &format!("route[{i}]"));
        let dr = owned.reader();
        let Some(written) = dr.opt_str("destination.host")? else {
            continue;
        };
        destinations.push(Destination {
            host_fqdn: host::fqdn(&written, ns, domain),
            host: written,
            subset: dr.opt_str("destination.subset")?,
            port: dr.opt_u32("destination.port.number")?,
            weight: dr.opt_i64("weight")?,
        });
    }
    let delegate = match delegate_of(r)? {
        Some((name, ns)) if kind == RouteKind::Http => Some((name, ns)),
        _ => None,
    };
    Ok(Route {
        kind,
        index,
        name: r.opt_str("name")?,
        destinations,
        delegate,
    })
}

fn delegate_of(r: &Reader) -> Result<Option<(String, Option<String>)>, ObjectError> {
    Ok(match r.opt_str("delegate.name")? {
        Some(name) => Some((name, r.opt_str("delegate.namespace")?)),
        None => None,
    })
}

/// `workloadSelector.labels` (Sidecar, EnvoyFilter) or `selector.matchLabels`.
fn selector(r: &Reader, path: &str) -> Result<Option<BTreeMap<String, String>>, ObjectError> {
    Ok(match r.opt_object(path)? {
        Some(_) => {
            let labels = r.str_map(&format!("{path}.labels"))?;
            let labels = if labels.is_empty() {
                r.str_map(&format!("{path}.matchLabels"))?
            } else {
                labels
            };
            Some(labels)
        }
        None => None,
    })
}

/// A `Sidecar` resource (what a workload's proxy may reach and how it receives).
#[derive(Debug, Clone, PartialEq)]
pub struct SidecarConfig {
    pub meta: Meta,
    pub workload_selector: Option<BTreeMap<String, String>>,
    /// `egress[].hosts` (`ns/host`), flattened.
    pub egress_hosts: Vec<String>,
    /// `ingress[]`: (port number, `defaultEndpoint`).
    pub ingress: Vec<(Option<u32>, Option<String>)>,
    /// `outboundTrafficPolicy.mode`.
    pub outbound_mode: Option<String>,
}

impl SidecarConfig {
    pub fn from_value(v: &Value) -> Result<SidecarConfig, ObjectError> {
        let meta = Meta::from_value(v)?;
        let id = meta.id();
        let r = Reader::new(&id, v);
        let mut egress_hosts = Vec::new();
        for (i, e) in r.opt_array("spec.egress")?.iter().enumerate() {
            let owned = r.at(e, &format!("spec.egress[{i}]"));
            egress_hosts.extend(owned.reader().str_list("hosts")?);
        }
        let mut ingress = Vec::new();
        for (i, e) in r.opt_array("spec.ingress")?.iter().enumerate() {
            let owned = r.at(e, &format!("spec.ingress[{i}]"));
            let ir = owned.reader();
            ingress.push((ir.opt_u32("port.number")?, ir.opt_str("defaultEndpoint")?));
        }
        Ok(SidecarConfig {
            workload_selector: selector(&r, "spec.workloadSelector")?,
            outbound_mode: r.opt_str("spec.outboundTrafficPolicy.mode")?,
            meta,
            egress_hosts,
            ingress,
        })
    }
}

/// A `ServiceEntry`.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceEntry {
    pub meta: Meta,
    pub hosts: Vec<String>,
    pub addresses: Vec<String>,
    /// (number, name, protocol).
    pub ports: Vec<(Option<u32>, Option<String>, Option<String>)>,
    /// `MESH_EXTERNAL` (default) or `MESH_INTERNAL`.
    pub location: Option<String>,
    /// `NONE`, `STATIC`, `DNS`, `DNS_ROUND_ROBIN`.
    pub resolution: Option<String>,
    pub export_to: Vec<String>,
    pub workload_selector: Option<BTreeMap<String, String>>,
}

impl ServiceEntry {
    pub fn from_value(v: &Value) -> Result<ServiceEntry, ObjectError> {
        let meta = Meta::from_value(v)?;
        let id = meta.id();
        let r = Reader::new(&id, v);
        let mut ports = Vec::new();
        for (i, p) in r.opt_array("spec.ports")?.iter().enumerate() {
            let owned = r.at(p, &format!("spec.ports[{i}]"));
            let pr = owned.reader();
            ports.push((
                pr.opt_u32("number")?,
                pr.opt_str("name")?,
                pr.opt_str("protocol")?,
            ));
        }
        Ok(ServiceEntry {
            hosts: r.str_list("spec.hosts")?,
            addresses: r.str_list("spec.addresses")?,
            location: r.opt_str("spec.location")?,
            resolution: r.opt_str("spec.resolution")?,
            export_to: r.str_list("spec.exportTo")?,
            workload_selector: selector(&r, "spec.workloadSelector")?,
            meta,
            ports,
        })
    }
}

/// One `servers[]` entry of a Gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayServer {
    pub port: Option<u32>,
    pub protocol: Option<String>,
    pub hosts: Vec<String>,
    /// `tls.mode` (`SIMPLE`, `MUTUAL`, `PASSTHROUGH`, `ISTIO_MUTUAL`, …).
    pub tls_mode: Option<String>,
}

/// A `Gateway` (the Istio networking kind).
#[derive(Debug, Clone, PartialEq)]
pub struct Gateway {
    pub meta: Meta,
    pub selector: BTreeMap<String, String>,
    pub servers: Vec<GatewayServer>,
}

impl Gateway {
    pub fn from_value(v: &Value) -> Result<Gateway, ObjectError> {
        let meta = Meta::from_value(v)?;
        let id = meta.id();
        let r = Reader::new(&id, v);
        let mut servers = Vec::new();
        for (i, s) in r.opt_array("spec.servers")?.iter().enumerate() {
            let owned = r.at(s, &format!("spec.servers[{i}]"));
            let sr = owned.reader();
            servers.push(GatewayServer {
                port: sr.opt_u32("port.number")?,
                protocol: sr.opt_str("port.protocol")?,
                hosts: sr.str_list("hosts")?,
                tls_mode: sr.opt_str("tls.mode")?,
            });
        }
        Ok(Gateway {
            selector: r.str_map("spec.selector")?,
            meta,
            servers,
        })
    }
}

/// An `EnvoyFilter`: who it applies to and what it patches.
#[derive(Debug, Clone, PartialEq)]
pub struct EnvoyFilter {
    pub meta: Meta,
    pub workload_selector: Option<BTreeMap<String, String>>,
    /// `configPatches[]`: (`applyTo`, `match.context`).
    pub patches: Vec<(Option<String>, Option<String>)>,
}

impl EnvoyFilter {
    pub fn from_value(v: &Value) -> Result<EnvoyFilter, ObjectError> {
        let meta = Meta::from_value(v)?;
        let id = meta.id();
        let r = Reader::new(&id, v);
        let mut patches = Vec::new();
        for (i, p) in r.opt_array("spec.configPatches")?.iter().enumerate() {
            let owned = r.at(p, &format!("spec.configPatches[{i}]"));
            let pr = owned.reader();
            patches.push((pr.opt_str("applyTo")?, pr.opt_str("match.context")?));
        }
        Ok(EnvoyFilter {
            workload_selector: selector(&r, "spec.workloadSelector")?,
            meta,
            patches,
        })
    }
}

/// A `Telemetry` resource's access-logging part.
#[derive(Debug, Clone, PartialEq)]
pub struct Telemetry {
    pub meta: Meta,
    pub selector: Option<BTreeMap<String, String>>,
    /// `accessLogging[]`: (provider names, `disabled`).
    pub access_logging: Vec<(Vec<String>, Option<bool>)>,
}

impl Telemetry {
    pub fn from_value(v: &Value) -> Result<Telemetry, ObjectError> {
        let meta = Meta::from_value(v)?;
        let id = meta.id();
        let r = Reader::new(&id, v);
        let mut access_logging = Vec::new();
        for (i, a) in r.opt_array("spec.accessLogging")?.iter().enumerate() {
            let owned = r.at(a, &format!("spec.accessLogging[{i}]"));
            let ar = owned.reader();
            let mut providers = Vec::new();
            for (j, p) in ar.opt_array("providers")?.iter().enumerate() {
                let owned = ar.at(p, &format!("providers[{j}]"));
                if let Some(n) = owned.reader().opt_str("name")? {
                    providers.push(n);
                }
            }
            access_logging.push((providers, ar.opt_bool("disabled")?));
        }
        Ok(Telemetry {
            selector: selector(&r, "spec.selector")?,
            meta,
            access_logging,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn virtual_service_routes_resolve_short_hosts_in_their_namespace() {
        let vs = VirtualService::from_value(
            &json!({"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
                "metadata": {"name": "httpbin", "namespace": "foo"},
                "spec": {"hosts": ["httpbin"],
                    "http": [{"route": [{"destination": {"host": "httpbin", "subset": "v2", "port": {"number": 8000}}, "weight": 100}]},
                             {"delegate": {"name": "d", "namespace": "bar"}}],
                    "tcp": [{"route": [{"destination": {"host": "db.bar.svc.cluster.local"}}]}]}}),
            "cluster.local",
        )
        .unwrap();
        let http: Vec<_> = vs.destinations(RouteKind::Http).collect();
        assert_eq!(http.len(), 1);
        assert_eq!(http[0].host_fqdn, "httpbin.foo.svc.cluster.local");
        assert_eq!(http[0].subset.as_deref(), Some("v2"));
        assert_eq!(http[0].port, Some(8000));
        assert_eq!(
            vs.routes[1].delegate,
            Some(("d".into(), Some("bar".into())))
        );
        assert_eq!(vs.destinations(RouteKind::Tcp).count(), 1);
    }

    #[test]
    fn bad_fields_name_the_object_and_path() {
        let e = VirtualService::from_value(
            &json!({"kind": "VirtualService", "metadata": {"name": "x", "namespace": "foo"},
                "spec": {"http": [{"route": [{"destination": {"host": 7}}]}]}}),
            "cluster.local",
        )
        .unwrap_err();
        assert!(
            e.to_string()
                .contains("spec.http[0].route[0].destination.host"),
            "{e}"
        );
    }

    #[test]
    fn other_kinds_keep_their_selectors_and_hosts() {
        let sc = SidecarConfig::from_value(&json!({"kind": "Sidecar", "metadata": {"name": "s", "namespace": "foo"},
            "spec": {"workloadSelector": {"labels": {"app": "a"}}, "egress": [{"hosts": ["./*"]}],
                     "ingress": [{"port": {"number": 9080}, "defaultEndpoint": "127.0.0.1:8080"}]}}))
        .unwrap();
        assert_eq!(sc.workload_selector.unwrap()["app"], "a");
        assert_eq!(
            sc.ingress,
            vec![(Some(9080), Some("127.0.0.1:8080".into()))]
        );
        let se = ServiceEntry::from_value(&json!({"kind": "ServiceEntry", "metadata": {"name": "e", "namespace": "foo"},
            "spec": {"hosts": ["api.example.com"], "ports": [{"number": 443, "name": "https", "protocol": "TLS"}], "resolution": "DNS"}}))
        .unwrap();
        assert_eq!(se.hosts, vec!["api.example.com".to_string()]);
        let gw = Gateway::from_value(&json!({"kind": "Gateway", "metadata": {"name": "g", "namespace": "foo"},
            "spec": {"selector": {"istio": "ingressgateway"}, "servers": [{"port": {"number": 443, "protocol": "HTTPS"}, "hosts": ["*"], "tls": {"mode": "SIMPLE"}}]}}))
        .unwrap();
        assert_eq!(gw.servers[0].tls_mode.as_deref(), Some("SIMPLE"));
        let ef = EnvoyFilter::from_value(&json!({"kind": "EnvoyFilter", "metadata": {"name": "f", "namespace": "foo"},
            "spec": {"configPatches": [{"applyTo": "CLUSTER", "match": {"context": "SIDECAR_OUTBOUND"}}]}}))
        .unwrap();
        assert_eq!(
            ef.patches,
            vec![(Some("CLUSTER".into()), Some("SIDECAR_OUTBOUND".into()))]
        );
        let t = Telemetry::from_value(
            &json!({"kind": "Telemetry", "metadata": {"name": "t", "namespace": "istio-system"},
            "spec": {"accessLogging": [{"providers": [{"name": "envoy"}], "disabled": false}]}}),
        )
        .unwrap();
        assert_eq!(
            t.access_logging,
            vec![(vec!["envoy".to_string()], Some(false))]
        );
    }
}
