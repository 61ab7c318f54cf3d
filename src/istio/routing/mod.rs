//! Istio's request routing as istiod builds it: which VirtualService a
//! sidecar or a gateway applies to a host, which of its routes a request can
//! reach, which Envoy clusters those routes name, and whether each cluster
//! exists and has endpoints for the client that asks — typed answers with
//! typed reasons, the prose apart ([`explain`]).
//!
//! Place in the flow: a pure helper (istio/) for model and analyze. model
//! builds one [`Routing`] per snapshot from the raw objects
//! ([`Routing::new`]); analyze rules query it per (client namespace and
//! labels, host, port) with [`Routing::routes_for`], per gateway with
//! [`Routing::gateway_routes`], and per host with [`Routing::callers_of`].
//!
//! - [`virtual_service`]: the VirtualService as written and resolved (short
//!   hosts, gateway names, exportTo tiers);
//! - [`delegate`]: delegate VirtualServices merged into their roots;
//! - [`registry`]: the service registry (Kubernetes Services, ServiceEntries,
//!   the pods and WorkloadEntries behind them, port protocols);
//! - [`sidecar_scope`]: the `Sidecar` resource (which one applies, what it
//!   imports, outbound traffic policy);
//! - [`gateway`]: `Gateway` objects (servers, selectors, host binding);
//! - [`select`]: which VirtualService wins and which routes are reachable;
//! - [`destination`]: a destination's cluster and its status for a client;
//! - [`query`]: the [`Routing`] index and the sidecar's answer ([`RouteView`]);
//! - [`gateway_query`]: the gateway's answer ([`GatewayView`]);
//! - [`callers`]: who can call a host ([`Callers`]);
//! - [`explain`]: the sentences.
//!
//! Istio releases differ in a few places; [`RoutingOptions::version`] picks
//! the behaviour (`None` = a current Istio). Each difference is documented
//! where it is decided and listed in [`explain::RELEASE_NOTES`].

pub mod callers;
pub mod delegate;
pub mod destination;
pub mod explain;
pub mod gateway;
pub mod gateway_query;
pub mod namespaces;
pub mod query;
pub mod registry;
pub mod select;
pub mod sidecar_scope;
pub mod virtual_service;

#[cfg(test)]
mod tests;

pub use callers::{CallerClass, Callers};
pub use destination::{DestStatus, DestinationView, Expected, PortSource, UnknownHostWhy};
pub use gateway::{Gateway, Server};
pub use gateway_query::{GatewayOutcome, GatewayView};
pub use namespaces::NamespaceIndex;
pub use query::{
    Client, Failure, HostVisibility, Outbound, RouteAction, RouteInfo, RouteView, Routing,
    RoutingInput,
};
pub use registry::{Protocol, Registry, RegistryService, Resolution, ServicePort, Workload};
pub use select::{MatchFilter, Reachability, RouteKind, VsShadowReason, WinReason};
pub use sidecar_scope::SidecarResource;
pub use virtual_service::{Destination, HttpRoute, VirtualService, VsTier};

use super::mesh_config::{IstioVersion, MeshConfig, OutboundMode};

/// What istiod's behaviour depends on besides the objects: the release, the
/// cluster domain and a few mesh-config fields.
#[derive(Debug, Clone, PartialEq)]
pub struct RoutingOptions {
    /// The Istio release (istiod's); `None` = a current Istio.
    pub version: Option<IstioVersion>,
    /// The cluster domain (`cluster.local`).
    pub domain_suffix: String,
    /// `meshConfig.rootNamespace` (`istio-system`).
    pub root_namespace: String,
    /// `meshConfig.outboundTrafficPolicy.mode` (a Sidecar may override it).
    pub outbound_mode: OutboundMode,
    /// `meshConfig.defaultVirtualServiceExportTo`; empty = `["*"]`.
    pub default_vs_export_to: Vec<String>,
    /// `meshConfig.defaultServiceExportTo`; empty = `["*"]`.
    pub default_service_export_to: Vec<String>,
}

impl Default for RoutingOptions {
    fn default() -> Self {
        RoutingOptions {
            version: None,
            domain_suffix: super::host::DEFAULT_DOMAIN_SUFFIX.to_string(),
            root_namespace: "istio-system".to_string(),
            outbound_mode: OutboundMode::AllowAny,
            default_vs_export_to: Vec::new(),
            default_service_export_to: Vec::new(),
        }
    }
}

impl RoutingOptions {
    /// Options from the mesh config (root namespace, outbound mode, default
    /// exportTo lists read from the raw `mesh` document).
    pub fn from_mesh(
        mesh: &MeshConfig,
        version: Option<IstioVersion>,
        domain_suffix: &str,
    ) -> RoutingOptions {
        let list = |key: &str| -> Vec<String> {
            mesh.raw
                .get(key)
                .and_then(|v| v.as_array())
                .map(|a| {
                    a.iter()
                        .filter_map(|x| x.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default()
        };
        RoutingOptions {
            version,
            domain_suffix: domain_suffix.to_string(),
            root_namespace: mesh.root_namespace().to_string(),
            outbound_mode: mesh.outbound_mode(),
            default_vs_export_to: list("defaultVirtualServiceExportTo"),
            default_service_export_to: list("defaultServiceExportTo"),
        }
    }

    /// `true` when istiod is at least `major.minor` (an unknown version is current).
    pub fn at_least(&self, major: u32, minor: u32) -> bool {
        self.version.is_none_or(|v| v.at_least(major, minor))
    }
}
