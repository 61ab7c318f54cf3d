//! One resource of a streamed dump as a [`Node`] of only the keys the
//! parsers read: a cluster, listener or endpoint assignment of a full dump
//! is mostly what they never look at (SDS sources, EDS config, route
//! tables, Istio's service lists…), and building those parts as a tree,
//! then dropping them, was most of the time of reading a dump. Everything
//! else is skipped unparsed (serde's `IgnoredAny`).
//!
//! Place in the flow: used by [`super::stream`] for each element of the
//! lists of a `ClustersConfigDump`, `ListenersConfigDump` or
//! `EndpointsConfigDump`; the node goes to the same `push_*` functions as a
//! whole `serde_json::Value` (both implement [`Json`]) and gives the same
//! result, because those functions only look keys up by name ([`KEPT`]:
//! every key their sources name, checked by a test that reads them) except
//! under the keys in [`WHOLE`], whose objects they iterate or test for
//! emptiness, kept whole.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::OnceLock;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

use super::json::Json;

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

impl KeyClass {
    fn name(self) -> &'static str {
        match self {
            KeyClass::Kept(k) | KeyClass::Whole(k) => k,
            KeyClass::Skipped => "",
        }
    }
}

/// A slot of [`table`]: a hash of the key's length and three of its bytes,
/// enough to spread the kept keys (a test checks that no more than 4 follow
/// each other); the key is then compared with the few in its run. Looking a
/// key up is the hot path of reading a dump: every key of every resource,
/// kept or not (a binary search of [`KEPT`] was 15% of the read, hashing
/// every byte of the key 8%).
fn slot(k: &[u8]) -> usize {
    let n = k.len();
    let (first, mid, last) = match n {
        0 => (0, 0, 0),
        _ => (k[0], k[n / 2], k[n - 1]),
    };
    let h = (n as u32) ^ (u32::from(first) << 6) ^ (u32::from(mid) << 13) ^ (u32::from(last) << 20);
    (h.wrapping_mul(0x9E37_79B9) >> (32 - TABLE_BITS)) as usize
}

const TABLE_BITS: u32 = 10;

/// Open addressing over `1 << TABLE_BITS` slots: each kept or whole key at
/// its [`slot`] or the next free one.
fn table() -> &'static [Option<KeyClass>] {
    static TABLE: OnceLock<Vec<Option<KeyClass>>> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut t = vec![None; 1 << TABLE_BITS];
        let kept = KEPT.iter().map(|k| KeyClass::Kept(k));
        for class in kept.chain(WHOLE.iter().map(|k| KeyClass::Whole(k))) {
            let mut i = slot(class.name().as_bytes());
            while t[i].is_some() {
                i = (i + 1) % t.len();
            }
            t[i] = Some(class);
        }
        t
    })
}

fn classify(k: &str) -> KeyClass {
    let t = table();
    let mut i = slot(k.as_bytes());
    while let Some(class) = t[i] {
        if class.name() == k {
            return class;
        }
        i = (i + 1) % t.len();
    }
    KeyClass::Skipped
}

/// A JSON value as the streaming reader keeps it: the parsers read it
/// through [`Json`] as they read a `serde_json::Value`. Strings are
/// borrowed from the document when they can be (no escapes, read from
/// memory), objects are lists of entries (a few each), and an object's kept
/// keys are the [`KEPT`] names themselves: no allocation but for lists and
/// objects.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Node<'de> {
    Null,
    Bool(bool),
    Number(Number),
    Str(Cow<'de, str>),
    Array(Vec<Node<'de>>),
    /// In document order, repeated keys included (the last one counts).
    Object(Vec<(Cow<'de, str>, Node<'de>)>),
}

static NULL: Node<'static> = Node::Null;

impl<'de> Json for Node<'de> {
    fn get(&self, key: &str) -> Option<&Self> {
        match self {
            Node::Object(entries) => entries.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }
    fn as_str(&self) -> Option<&str> {
        match self {
            Node::Str(s) => Some(s),
            _ => None,
        }
    }
    fn as_array(&self) -> Option<&[Self]> {
        match self {
            Node::Array(a) => Some(a),
            _ => None,
        }
    }
    fn as_number(&self) -> Option<&Number> {
        match self {
            Node::Number(n) => Some(n),
            _ => None,
        }
    }
    fn as_bool(&self) -> Option<bool> {
        match self {
            Node::Bool(b) => Some(*b),
            _ => None,
        }
    }
    fn is_object(&self) -> bool {
        matches!(self, Node::Object(_))
    }
    fn is_empty_object(&self) -> bool {
        matches!(self, Node::Object(e) if e.is_empty())
    }
    fn entries(&self) -> Option<Vec<(&str, &Self)>> {
        let Node::Object(entries) = self else {
            return None;
        };
        let map: BTreeMap<&str, &Self> = entries.iter().map(|(k, v)| (k.as_ref(), v)).collect();
        Some(map.into_iter().collect())
    }
    fn to_value(&self) -> Value {
        match self {
            Node::Null => Value::Null,
            Node::Bool(b) => Value::Bool(*b),
            Node::Number(n) => Value::Number(n.clone()),
            Node::Str(s) => Value::String(s.to_string()),
            Node::Array(a) => Value::Array(a.iter().map(Json::to_value).collect()),
            Node::Object(entries) => Value::Object(
                entries
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_value()))
                    .collect::<Map<String, Value>>(),
            ),
        }
    }
    fn null<'a>() -> &'a Self
    where
        Self: 'a,
    {
        &NULL
    }
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

/// A string, borrowed from the document when it can be.
struct Text;

impl<'de> DeserializeSeed<'de> for Text {
    type Value = Cow<'de, str>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for Text {
    type Value = Cow<'de, str>;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a string")
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v.to_string()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v))
    }
}

/// A JSON value as a [`Node`]: with only the [`KEPT`] and [`WHOLE`] keys
/// of its objects when `pruned`, every key otherwise (under a WHOLE key).
/// Numbers and repeated keys as `serde_json::Value` has them.
#[derive(Clone, Copy)]
pub(super) struct Pruned {
    pub pruned: bool,
}

impl<'de> DeserializeSeed<'de> for Pruned {
    type Value = Node<'de>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Node<'de>, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Pruned {
    type Value = Node<'de>;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Node<'de>, E> {
        Ok(Node::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Node<'de>, E> {
        Ok(Node::Number(v.into()))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Node<'de>, E> {
        Ok(Node::Number(v.into()))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Node<'de>, E> {
        // As `serde_json::Value` does: a non-finite number is null.
        Ok(Number::from_f64(v).map_or(Node::Null, Node::Number))
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Node<'de>, E> {
        Ok(Node::Str(Cow::Borrowed(v)))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Node<'de>, E> {
        Ok(Node::Str(Cow::Owned(v.to_string())))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Node<'de>, E> {
        Ok(Node::Str(Cow::Owned(v)))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Node<'de>, E> {
        Ok(Node::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node<'de>, A::Error> {
        let mut out = Vec::new();
        while let Some(v) = seq.next_element_seed(self)? {
            out.push(v);
        }
        Ok(Node::Array(out))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node<'de>, A::Error> {
        let mut out = Vec::new();
        if !self.pruned {
            while let Some(k) = map.next_key_seed(Text)? {
                out.push((k, map.next_value_seed(self)?));
            }
            return Ok(Node::Object(out));
        }
        while let Some(key) = map.next_key_seed(Key)? {
            match key {
                KeyClass::Kept(k) => out.push((Cow::Borrowed(k), map.next_value_seed(self)?)),
                KeyClass::Whole(k) => {
                    let whole = Pruned { pruned: false };
                    out.push((Cow::Borrowed(k), map.next_value_seed(whole)?))
                }
                KeyClass::Skipped => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(Node::Object(out))
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

    /// Every kept key is found, each in a few probes; others are not.
    #[test]
    fn keys_are_classified() {
        for k in KEPT {
            assert!(matches!(classify(k), KeyClass::Kept(x) if x == *k), "{k}");
        }
        for k in WHOLE {
            assert!(matches!(classify(k), KeyClass::Whole(x) if x == *k), "{k}");
        }
        for k in [
            "",
            "x",
            "eds_cluster_config",
            "sds_config",
            "names",
            "nam",
            "@typ",
        ] {
            assert!(matches!(classify(k), KeyClass::Skipped), "{k}");
        }
        let t = table();
        let longest_run = t
            .split(Option::is_none)
            .map(<[Option<KeyClass>]>::len)
            .max()
            .unwrap();
        assert!(
            longest_run <= 4,
            "{longest_run} keys in a row: change slot()"
        );
    }

    #[test]
    fn pruned_values_keep_only_what_is_read() {
        let text = r#"{"name": "c", "eds_cluster_config": {"x": [1, 2]}, "metadata": {"filter_metadata":
            {"istio": {"config": "/x", "services": [{"host": "h"}]}}}, "n": 1.5e300,
            "transport_socket_matches": [{"match": {"a": 1}, "transport_socket": {"name": "t"}}],
            "type": null, "name": "d"}"#;
        let mut de = serde_json::Deserializer::from_str(text);
        let v = Pruned { pruned: true }.deserialize(&mut de).unwrap();
        assert_eq!(v.get("name").and_then(Json::as_str), Some("d"));
        assert!(matches!(v.get("name"), Some(Node::Str(Cow::Borrowed(_)))));
        assert_eq!(
            v.to_value(),
            serde_json::json!({"name": "d", "metadata": {"filter_metadata": {"istio": {"config": "/x"}}},
                "transport_socket_matches": [{"match": {"a": 1}, "transport_socket": {"name": "t"}}],
                "type": null})
        );
    }
}
