//! Endpoints in `/config_dump` (`EndpointsConfigDump`, read with
//! `?include_eds`): each `ClusterLoadAssignment`'s hosts with health, weight,
//! priority and the metadata Istio puts on them.
//!
//! Place in the flow: part of the pure `/config_dump` parser (envoy/).
//!
//! Sources: envoyproxy/envoy `api/envoy/config/endpoint/v3/endpoint.proto`,
//! `endpoint_components.proto`; istio/istio `pilot/pkg/networking/util`
//! (`AppendLbEndpointMetadata`: `envoy.transport_socket_match.tlsMode`,
//! `istio.workload`).

use serde_json::Value;

use super::json::{each, port_at, s, u64_at, Json};
use super::DumpError;

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Endpoint {
    /// IP, `unix://path`, or `envoy://listener/id` for internal addresses.
    pub address: String,
    pub port: Option<u16>,
    /// `HEALTHY`, `UNHEALTHY`, `DRAINING`, `TIMEOUT`, `DEGRADED`, `UNKNOWN` (absent = UNKNOWN).
    pub health_status: Option<String>,
    /// `filter_metadata["envoy.transport_socket_match"].tlsMode` (`istio` with a sidecar).
    pub tls_mode: Option<String>,
    /// `filter_metadata.istio.workload` (`name;ns;canonical;rev;cluster`).
    pub workload: Option<String>,
    pub weight: Option<u64>,
    pub priority: Option<u64>,
}

impl Endpoint {
    /// The endpoint's metadata says `tlsMode: istio` (the transport socket
    /// match auto mTLS uses).
    pub fn has_istio_tls_mode(&self) -> bool {
        self.tls_mode.as_deref() == Some("istio")
    }
    /// `ip:port` (`[v6]:port`).
    pub fn host_port(&self) -> String {
        match self.port {
            Some(p) if self.address.contains(':') && !self.address.contains("://") => {
                format!("[{}]:{p}", self.address)
            }
            Some(p) => format!("{}:{p}", self.address),
            None => self.address.clone(),
        }
    }
}

/// `socket_address`, `pipe` or `envoy_internal_address` as text (+ port).
fn endpoint_address<J: Json>(a: Option<&J>) -> (String, Option<u16>) {
    let Some(a) = a else {
        return (String::new(), None);
    };
    if let Some(sa) = a.get("socket_address") {
        return (
            s(sa, "address").unwrap_or_default(),
            port_at(sa, "port_value"),
        );
    }
    if let Some(p) = a.get("pipe") {
        return (format!("unix://{}", s(p, "path").unwrap_or_default()), None);
    }
    if let Some(ia) = a.get("envoy_internal_address") {
        let address = format!(
            "envoy://{}/{}",
            s(ia, "server_listener_name").unwrap_or_default(),
            s(ia, "endpoint_id").unwrap_or_default()
        );
        return (address, None);
    }
    (String::new(), None)
}

/// Parse a `ClusterLoadAssignment` into (cluster name, endpoints).
pub fn parse_load_assignment(
    cla: &Value,
    path: &str,
) -> Result<(String, Vec<Endpoint>), DumpError> {
    load_assignment_from(cla, path)
}

/// [`parse_load_assignment`] of any [`Json`].
pub(super) fn load_assignment_from<J: Json>(
    cla: &J,
    path: &str,
) -> Result<(String, Vec<Endpoint>), DumpError> {
    let name = s(cla, "cluster_name").ok_or_else(|| DumpError::Element {
        path: format!("{path}.cluster_name"),
        reason: "missing cluster_name".into(),
    })?;
    let mut eps = Vec::new();
    for (_, loc) in each(cla, "endpoints") {
        let priority = u64_at(loc, "priority");
        for (_, lb) in each(loc, "lb_endpoints") {
            let (address, port) =
                endpoint_address(lb.get("endpoint").and_then(|e| e.get("address")));
            let fm = lb.get("metadata").and_then(|m| m.get("filter_metadata"));
            eps.push(Endpoint {
                address,
                port,
                health_status: s(lb, "health_status"),
                tls_mode: fm
                    .and_then(|f| f.get("envoy.transport_socket_match"))
                    .and_then(|t| s(t, "tlsMode")),
                workload: fm
                    .and_then(|f| f.get("istio"))
                    .and_then(|i| s(i, "workload")),
                weight: u64_at(lb, "load_balancing_weight"),
                priority,
            });
        }
    }
    Ok((name, eps))
}
