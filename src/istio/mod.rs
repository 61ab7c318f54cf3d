//! Istio config semantics: what istiod computes from the objects users write.
//!
//! Pure functions over raw Kubernetes objects (`serde_json::Value`), valid for
//! every Istio era this tool supports (1.0 – today):
//! - [`object`]: metadata and typed field access with path-naming errors;
//! - [`host`]: short-name resolution, wildcard matching, specificity;
//! - [`destination_rule`]: which DestinationRule applies to a client, merging,
//!   port-level/subset precedence;
//! - [`peer_auth`]: server-side mTLS mode from PeerAuthentication;
//! - [`legacy_policy`]: the same from v1alpha1 MeshPolicy/Policy (≤1.5);
//! - [`mesh_config`]: the `istio` ConfigMap and Istio versions;
//! - [`client_tls`]: what the client sidecar sends (plaintext, mTLS, auto);
//! - [`sidecar`]: whether a pod runs a sidecar (classic or native) and its version.

pub mod client_tls;
pub mod destination_rule;
pub mod host;
pub mod legacy_policy;
pub mod mesh_config;
pub mod object;
pub mod peer_auth;
pub mod sidecar;

pub use object::{Meta, ObjectError, ObjectRef};

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::{json, Value};

    fn arb_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| json!(n)),
            prop_oneof![
                Just("STRICT".to_string()),
                Just("ISTIO_MUTUAL".to_string()),
                Just("8080".to_string()),
                "[a-z*.]{0,8}"
            ]
            .prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 48, 5, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
                prop::collection::btree_map(
                    prop_oneof![
                        Just("host".to_string()),
                        Just("trafficPolicy".to_string()),
                        Just("tls".to_string()),
                        Just("mode".to_string()),
                        Just("portLevelSettings".to_string()),
                        Just("port".to_string()),
                        Just("number".to_string()),
                        Just("subsets".to_string()),
                        Just("mtls".to_string()),
                        Just("portLevelMtls".to_string()),
                        Just("selector".to_string()),
                        Just("matchLabels".to_string()),
                        Just("peers".to_string()),
                        Just("targets".to_string()),
                        Just("mesh".to_string()),
                        "[a-z]{1,5}"
                    ],
                    inner,
                    0..4
                )
                .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
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
            let _ = super::destination_rule::DestinationRule::from_value(&obj("DestinationRule"));
            let _ = super::peer_auth::PeerAuthentication::from_value(&obj("PeerAuthentication"));
            let _ = super::legacy_policy::LegacyPolicy::from_value(&obj("Policy"));
            let _ = super::mesh_config::MeshConfig::from_configmap(&obj("ConfigMap"));
            let _ = super::object::Meta::from_value(&spec);
        }
    }
}
