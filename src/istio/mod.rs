//! Istio config semantics: what istiod computes from the objects users write,
//! and what it means for the traffic the proxies carry.
//!
//! Place in the flow: collect → snapshot → model → analyze → report; istio/
//! (like envoy/) is a pure helper that model and analyze call. Pure
//! functions over raw Kubernetes objects (`serde_json::Value`) and the typed
//! results of envoy/'s parsers, valid for every Istio era this tool supports
//! (1.0 – today):
//! - [`object`]: metadata and typed field access with path-naming errors;
//! - [`host`]: short-name resolution, wildcard matching, specificity;
//! - [`cluster_domain`]: where the cluster's DNS domain is written (sidecar
//!   arguments, node ids, cluster names);
//! - [`destination_rule`]: which DestinationRule applies to a client, merging,
//!   port-level/subset precedence, and the prose apart;
//! - [`authn`]: the server's mTLS mode from PeerAuthentication and the
//!   v1alpha1 MeshPolicy/Policy behind one interface ([`authn::Authn`]);
//! - [`tls`]: THE client-wire × server-mode decision, and what inbound
//!   listeners accept;
//! - [`mesh_config`]: the `istio` ConfigMap and Istio versions;
//! - [`sidecar`]: whether a pod runs a sidecar (classic or native) and its version;
//! - [`stats_inclusion`]: which Envoy stats a sidecar emits (the release's
//!   inclusion list and what the pod and mesh add);
//! - [`routing`]: VirtualServices, Gateways, Sidecars and the service
//!   registry as istiod applies them — which routes a client's request can
//!   take and whether their clusters exist and have endpoints.

pub mod authn;
pub mod cluster_domain;
pub mod destination_rule;
pub mod host;
pub mod mesh_config;
pub mod object;
pub mod routing;
pub mod sidecar;
pub mod stats_inclusion;
#[cfg(test)]
pub(crate) mod testutil;
pub mod tls;

pub use object::{Meta, ObjectError, ObjectRef};

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::{json, Value};

    const STRINGS: &[&str] = &["STRICT", "ISTIO_MUTUAL", "8080"];
    const KEYS: &[&str] = &[
        "host",
        "trafficPolicy",
        "tls",
        "mode",
        "portLevelSettings",
        "port",
        "number",
        "subsets",
        "mtls",
        "portLevelMtls",
        "selector",
        "matchLabels",
        "peers",
        "targets",
        "mesh",
    ];

    fn arb_json() -> impl Strategy<Value = Value> {
        super::testutil::arb_json(STRINGS, KEYS, "[a-z*.]{0,8}", "[a-z]{1,5}", (4, 48, 5))
    }

    proptest! {
        /// The typed parsers return errors, never panic, whatever the spec holds.
        #[test]
        fn typed_parsers_never_panic(spec in arb_json(), data in arb_json()) {
            let obj = |kind: &str| json!({
                "apiVersion": "x/v1", "kind": kind,
                "metadata": {"name": "n", "namespace": "ns"},
                "spec": spec.clone(), "data": data.clone()
            });
            let _ = super::destination_rule::DestinationRule::from_value_with_domain(&obj("DestinationRule"), "corp.example");
            let _ = super::authn::PeerAuthentication::from_value(&obj("PeerAuthentication"));
            let _ = super::authn::LegacyPolicy::from_value(&obj("Policy"));
            let _ = super::mesh_config::MeshConfig::from_configmap(&obj("ConfigMap"));
            let _ = super::object::Meta::from_value(&spec);
        }
    }
}
