//! One resource of a streamed dump as a `serde_json::Value` of only the keys
//! the parsers read: a cluster, listener or endpoint assignment of a full
//! dump is mostly what they never look at (SDS sources, EDS config, route
//! tables, Istio's service lists…), and building those parts as a tree,
//! then dropping them, was most of the time of reading a dump. Everything
//! else is skipped unparsed (serde's `IgnoredAny`).
//!
//! Place in the flow: used by [`super::stream`] for each element of the
//! lists of a `ClustersConfigDump`, `ListenersConfigDump` or
//! `EndpointsConfigDump`; the pruned value goes to the same `push_*`
//! functions as a whole one and gives the same result, because those
//! functions only look keys up by name ([`KEPT`]: every key their sources
//! name, checked by a test that reads them) except under the keys in
//! [`WHOLE`], whose objects they iterate or test for emptiness, kept whole.

use std::collections::HashMap;
use std::hash::BuildHasherDefault;
use std::sync::OnceLock;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

/// Every key the resource parsers (cluster.rs, endpoint.rs, listener.rs,
/// rejected.rs, tls.rs, json.rs, and the wrappers' in mod.rs) read, sorted.
pub(super) const KEPT: &[&str] = &[
    "@type",
    "access_log",
    "active_state",
    "address",
    "address_prefix",
    "alpn_protocols",
    "application_protocols",
    "base_ejection_time",
    "certificate_chain",
    "circuit_breakers",
    "cluster",
    "cluster_name",
    "cluster_type",
    "clusters",
    "combined_validation_context",
    "common_http_protocol_options",
    "common_lb_config",
    "common_tls_context",
    "config",
    "connect_timeout",
    "consecutive_5xx",
    "consecutive_gateway_failure",
    "consecutive_local_origin_failure",
    "contains",
    "default_filter_chain",
    "default_validation_context",
    "destination_port",
    "details",
    "draining_state",
    "endpoint",
    "endpoint_config",
    "endpoint_id",
    "endpoints",
    "enforcing_consecutive_5xx",
    "enforcing_consecutive_gateway_failure",
    "envoy.transport_socket_match",
    "envoy_internal_address",
    "error_state",
    "exact",
    "failed_configuration",
    "filename",
    "filter_chain_match",
    "filter_chains",
    "filter_metadata",
    "filters",
    "format",
    "health_status",
    "healthy_panic_threshold",
    "idle_timeout",
    "inline_string",
    "interval",
    "istio",
    "last_update_attempt",
    "last_updated",
    "lb_endpoints",
    "lb_policy",
    "listener",
    "load_balancing_weight",
    "log_format",
    "match_subject_alt_names",
    "match_typed_subject_alt_names",
    "matcher",
    "max_connections",
    "max_ejection_percent",
    "max_pending_requests",
    "max_requests",
    "max_requests_per_connection",
    "max_retries",
    "metadata",
    "name",
    "outlier_detection",
    "path",
    "pipe",
    "port_value",
    "prefix",
    "prefix_len",
    "prefix_ranges",
    "priority",
    "rds",
    "regex",
    "require_client_certificate",
    "route",
    "route_config",
    "route_config_name",
    "routes",
    "safe_regex",
    "server_listener_name",
    "server_names",
    "sni",
    "socket_address",
    "split_external_local_origin_errors",
    "subset",
    "suffix",
    "text_format",
    "text_format_source",
    "thresholds",
    "tlsMode",
    "tls_certificate_sds_secret_configs",
    "tls_certificates",
    "tls_context",
    "traffic_direction",
    "transport_protocol",
    "transport_socket",
    "transport_socket_matches",
    "type",
    "typed_config",
    "use_original_dst",
    "validation_context",
    "validation_context_sds_secret_config",
    "value",
    "verify_subject_alt_name",
    "version_info",
    "virtual_hosts",
    "warming_state",
    "weighted_clusters",
    "workload",
];

/// Keys whose objects the parsers iterate or test for emptiness, kept
/// whole: a transport socket match's `match` (empty = the default),
/// `typed_extension_protocol_options` (any entry), an access log's
/// `json_format` (every field).
pub(super) const WHOLE: &[&str] = &["json_format", "match", "typed_extension_protocol_options"];

#[derive(Clone, Copy)]
enum KeyClass {
    Kept(&'static str),
    Whole(&'static str),
    Skipped,
}

/// FNV-1a: the keys are short, and a lookup per key of every resource is
/// the hot path of reading a dump (a binary search of [`KEPT`] was 15% of
/// it, SipHash is slower than this on short keys).
#[derive(Default)]
struct Fnv(u64);

impl std::hash::Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 {
            0xcbf2_9ce4_8422_2325
        } else {
            self.0
        };
        for b in bytes {
            h = (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
        }
        self.0 = h;
    }
}

type Classes = HashMap<&'static str, KeyClass, BuildHasherDefault<Fnv>>;

fn classes() -> &'static Classes {
    static CLASSES: OnceLock<Classes> = OnceLock::new();
    CLASSES.get_or_init(|| {
        let kept = KEPT.iter().map(|k| (*k, KeyClass::Kept(k)));
        let whole = WHOLE.iter().map(|k| (*k, KeyClass::Whole(k)));
        kept.chain(whole).collect()
    })
}

fn classify(k: &str) -> KeyClass {
    classes().get(k).copied().unwrap_or(KeyClass::Skipped)
}

/// An object key, classified without being copied.
struct Key;

impl<'de> DeserializeSeed<'de> for Key {
    type Value = KeyClass;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<KeyClass, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for Key {
    type Value = KeyClass;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an object key")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<KeyClass, E> {
        Ok(classify(v))
    }
}

/// A JSON value with only the [`KEPT`] and [`WHOLE`] keys of its objects;
/// otherwise what `serde_json::Value`'s own `Deserialize` builds (numbers,
/// strings, a repeated key's last value).
pub(super) struct Pruned;

impl<'de> DeserializeSeed<'de> for Pruned {
    type Value = Value;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Pruned {
    type Value = Value;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Ok(Number::from_f64(v).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::new();
        while let Some(v) = seq.next_element_seed(Pruned)? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key_seed(Key)? {
            match key {
                KeyClass::Kept(k) => {
                    out.insert(k.to_string(), map.next_value_seed(Pruned)?);
                }
                KeyClass::Whole(k) => {
                    out.insert(k.to_string(), map.next_value::<Value>()?);
                }
                KeyClass::Skipped => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(Value::Object(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every key-like string the resource parsers' sources name is kept
    /// (or is known not to be a key): a new `get("key")` without its key
    /// here fails this test, not a user's dump.
    #[test]
    fn every_key_the_parsers_read_is_kept() {
        const NOT_KEYS: &[&str] = &[
            // mod.rs: type names and the lists of a dump (read by stream.rs
            // itself, never inside a resource)
            "Bootstrap",
            "BootstrapConfigDump",
            "ClustersConfigDump",
            "ClustersConfigDump.DynamicCluster",
            "ClustersConfigDump.StaticCluster",
            "EndpointsConfigDump",
            "EndpointsConfigDump.DynamicEndpointConfig",
            "EndpointsConfigDump.StaticEndpointConfig",
            "ListenersConfigDump",
            "ListenersConfigDump.DynamicListener",
            "ListenersConfigDump.StaticListener",
            "Secret",
            "bootstrap",
            "configs",
            "dynamic_active_clusters",
            "dynamic_active_listeners",
            "dynamic_draining_listeners",
            "dynamic_endpoint_configs",
            "dynamic_listeners",
            "dynamic_warming_clusters",
            "dynamic_warming_listeners",
            "envoy.admin.v2alpha.",
            "envoy.admin.v3.",
            "static_clusters",
            "static_endpoint_configs",
            "static_listeners",
            // values, not keys
            "DEFAULT",
            "DownstreamTlsContext",
            "RawBuffer",
            "UpstreamTlsContext",
            "destination",
            "http_connection_manager",
            "inbound",
            "namespaces",
            "outbound",
            "outbound_.",
            "_.",
            "raw_buffer",
            "tcp_proxy",
            "tls",
            "transport_sockets.tls",
        ];
        assert!(KEPT.windows(2).all(|w| w[0] < w[1]), "KEPT is sorted");
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/envoy/config_dump");
        let literal = regex::Regex::new(r#""([A-Za-z_@][A-Za-z0-9_.@-]*)""#).unwrap();
        let mut missing = Vec::new();
        for file in [
            "cluster.rs",
            "endpoint.rs",
            "listener.rs",
            "rejected.rs",
            "tls.rs",
            "json.rs",
            "mod.rs",
        ] {
            let text = std::fs::read_to_string(dir.join(file)).unwrap();
            let code = text.lines().filter(|l| !l.trim_start().starts_with("//"));
            for line in code {
                for m in literal.captures_iter(line) {
                    let k = &m[1];
                    if !KEPT.contains(&k) && !WHOLE.contains(&k) && !NOT_KEYS.contains(&k) {
                        missing.push(format!("{file}: {k}"));
                    }
                }
            }
        }
        assert!(
            missing.is_empty(),
            "keys the parsers read, not kept: {missing:?}"
        );
    }

    #[test]
    fn pruned_values_keep_only_what_is_read() {
        let text = r#"{"name": "c", "eds_cluster_config": {"x": [1, 2]}, "metadata": {"filter_metadata":
            {"istio": {"config": "/x", "services": [{"host": "h"}]}}}, "n": 1.5e300,
            "transport_socket_matches": [{"match": {"a": 1}, "transport_socket": {"name": "t"}}],
            "type": null, "name": "d"}"#;
        let mut de = serde_json::Deserializer::from_str(text);
        let v = Pruned.deserialize(&mut de).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"name": "d", "metadata": {"filter_metadata": {"istio": {"config": "/x"}}},
                "transport_socket_matches": [{"match": {"a": 1}, "transport_socket": {"name": "t"}}],
                "type": null})
        );
    }
}
