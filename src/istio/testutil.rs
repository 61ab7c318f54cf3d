//! Test builders shared by the pure modules' unit tests (istio/ and envoy/):
//! one arbitrary-JSON generator, label maps, and Istio objects from specs.
//!
//! Place in the flow: test-only; never compiled into the plugin.

use std::collections::BTreeMap;

use proptest::prelude::*;
use serde_json::{json, Value};

/// Arbitrary JSON whose strings and object keys are drawn mostly from
/// `strings` and `keys` (plus a little random text matching `text` / `key`
/// regexes), so that generated documents reach deep into a parser.
/// `depth`, `size` and `branch` bound the recursion as in
/// `prop_recursive`.
pub fn arb_json(
    strings: &'static [&'static str],
    keys: &'static [&'static str],
    text: &'static str,
    key: &'static str,
    (depth, size, branch): (u32, u32, u32),
) -> impl Strategy<Value = Value> {
    let named = prop::sample::select(strings).prop_map(str::to_string);
    let string = prop_oneof![named, text.prop_map(|s: String| s)];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        string.prop_map(Value::String),
    ];
    leaf.prop_recursive(depth, size, branch, move |inner| {
        let named_key = prop::sample::select(keys).prop_map(str::to_string);
        let any_key = prop_oneof![named_key, key.prop_map(|s: String| s)];
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..(branch as usize).min(4))
                .prop_map(Value::Array),
            prop::collection::btree_map(any_key, inner, 0..(branch as usize))
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Creation timestamps for test objects (the oldest wins many of Istio's ties).
pub const T2019: &str = "2019-01-01T00:00:00Z";
pub const T2020: &str = "2020-01-01T00:00:00Z";
pub const T2021: &str = "2021-01-01T00:00:00Z";
pub const T2022: &str = "2022-01-01T00:00:00Z";

/// `[("app", "sleep")]` → a label map.
pub fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// A raw Istio object of `kind` in `ns` created at `ts`.
pub fn object(api: &str, kind: &str, ns: &str, name: &str, ts: &str, spec: Value) -> Value {
    json!({
        "apiVersion": api,
        "kind": kind,
        "metadata": {"name": name, "namespace": ns, "creationTimestamp": ts},
        "spec": spec
    })
}

/// A parsed `DestinationRule` (short hosts resolve in `cluster.local`).
pub fn dr(ns: &str, name: &str, ts: &str, spec: Value) -> super::destination_rule::DestinationRule {
    let v = object(
        "networking.istio.io/v1beta1",
        "DestinationRule",
        ns,
        name,
        ts,
        spec,
    );
    super::destination_rule::DestinationRule::from_value_with_domain(&v, "cluster.local").unwrap()
}

/// A `DestinationRule` for `host` that sets only `tls.mode` (`None` = no trafficPolicy).
pub fn dr_tls(
    ns: &str,
    name: &str,
    ts: &str,
    host: &str,
    mode: Option<&str>,
) -> super::destination_rule::DestinationRule {
    let mut spec = json!({ "host": host });
    if let Some(m) = mode {
        spec["trafficPolicy"] = json!({"tls": {"mode": m}});
    }
    dr(ns, name, ts, spec)
}

/// A namespace- or mesh-wide `PeerAuthentication` with `mtls.mode`.
pub fn pa_mode(ns: &str, name: &str, ts: &str, mode: &str) -> super::authn::PeerAuthentication {
    pa(ns, name, ts, json!({"mtls": {"mode": mode}}))
}

/// A parsed `PeerAuthentication`.
pub fn pa(ns: &str, name: &str, ts: &str, spec: Value) -> super::authn::PeerAuthentication {
    let v = object(
        "security.istio.io/v1",
        "PeerAuthentication",
        ns,
        name,
        ts,
        spec,
    );
    super::authn::PeerAuthentication::from_value(&v).unwrap()
}
