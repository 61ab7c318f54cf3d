//! The istiod model renders Envoy resources as JSON in the shape
//! `config_dump` shows them (each with its `@type`). Over ADS Envoy receives
//! protobuf, so each resource is turned into its binary form here with the
//! proto3 JSON mapping (`prost-reflect`), which also resolves every nested
//! `Any` (`typed_config`) by its `@type`.
//!
//! The descriptors are Envoy's own: every protoc-generated C++ file embeds
//! its `FileDescriptorProto`, serialized, so the binary that runs the
//! sidecars carries the exact API it accepts (Envoy 1.40's, extensions
//! included). [`pool_for`] finds them in the binary once per process. No
//! copy of the API is kept in the lab, and an Envoy upgrade brings its own.
//!
//! istiod builds the same protos directly (Go structs); an EnvoyFilter
//! patch is converted by istiod with the protos compiled into it
//! (istio/istio `pilot/pkg/networking/core/envoyfilter`,
//! `xds.BuildXDSObjectFromStruct`), and a value that does not fit the type
//! is refused there. The lab refuses it here: the push fails with the
//! resource's name and the field.

use anyhow::{anyhow, Context};
use prost::Message;
use prost_reflect::{DescriptorPool, DynamicMessage};
use prost_types::FileDescriptorProto;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

/// `FileDescriptorProto` fields (descriptor.proto) and their wire types:
/// what a serialized descriptor can hold, so a scan knows where one ends.
fn descriptor_field(number: u64, wire_type: u64) -> bool {
    matches!(
        (number, wire_type),
        (1..=9 | 12 | 13 | 15, 2) | (10 | 11 | 14, 0) | (10 | 11, 2)
    )
}

fn varint(b: &[u8], mut i: usize) -> Option<(u64, usize)> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let c = *b.get(i)?;
        i += 1;
        v |= u64::from(c & 0x7f) << shift;
        if c < 0x80 {
            return Some((v, i));
        }
    }
    None
}

/// Where the serialized descriptor starting at `start` ends: at the first
/// byte that cannot continue it (another field number, or a second `name`,
/// which starts the next descriptor).
fn descriptor_end(b: &[u8], start: usize) -> usize {
    let mut i = start;
    let mut names = 0;
    while let Some((tag, j)) = varint(b, i) {
        let (number, wire) = (tag >> 3, tag & 7);
        if !descriptor_field(number, wire) {
            break;
        }
        if number == 1 {
            names += 1;
            if names > 1 {
                break;
            }
        }
        let next = if wire == 2 {
            match varint(b, j) {
                Some((len, k)) => k.saturating_add(len as usize),
                None => break,
            }
        } else {
            match varint(b, j) {
                Some((_, k)) => k,
                None => break,
            }
        };
        if next > b.len() {
            break;
        }
        i = next;
    }
    i
}

fn is_name_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'_' | b'/' | b'.' | b'-')
}

/// Every serialized `FileDescriptorProto` in a binary, by file name.
pub fn descriptors_in(binary: &[u8]) -> BTreeMap<String, FileDescriptorProto> {
    let mut out = BTreeMap::new();
    for p in memchr::memmem::find_iter(binary, b".proto") {
        let end = p + ".proto".len();
        // A descriptor's name is followed by its package, a dependency or a message.
        if !matches!(binary.get(end), Some(0x12 | 0x1a | 0x22)) {
            continue;
        }
        // Back to the first byte that cannot be part of a name; the length
        // byte before the name may itself look like one (`.`, a digit, a letter).
        let mut q = p;
        while q > 0 && is_name_byte(binary[q - 1]) && p - q < 200 {
            q -= 1;
        }
        // `0x0a <len> <name>` (field 1, a string) opens the descriptor.
        let opens = |s: usize| s >= 2 && binary[s - 2] == 0x0a && binary[s - 1] as usize == end - s;
        let s = if q >= 1 && opens(q) {
            q
        } else if opens(q + 1) {
            q + 1
        } else {
            continue;
        };
        let name = String::from_utf8_lossy(&binary[s..end]).into_owned();
        if out.contains_key(&name) {
            continue;
        }
        let start = s - 2;
        let stop = descriptor_end(binary, start);
        if let Ok(fd) = FileDescriptorProto::decode(&binary[start..stop]) {
            if fd.name.as_deref() == Some(name.as_str()) {
                out.insert(name, fd);
            }
        }
    }
    out
}

/// A pool of the descriptors found, dependencies first.
fn build_pool(mut files: BTreeMap<String, FileDescriptorProto>) -> anyhow::Result<DescriptorPool> {
    fn visit(
        name: &str,
        files: &mut BTreeMap<String, FileDescriptorProto>,
        ordered: &mut Vec<FileDescriptorProto>,
    ) {
        let Some(fd) = files.remove(name) else { return };
        for d in &fd.dependency {
            visit(d, files, ordered);
        }
        ordered.push(fd);
    }
    let names: Vec<String> = files.keys().cloned().collect();
    let mut ordered = Vec::with_capacity(names.len());
    for n in &names {
        visit(n, &mut files, &mut ordered);
    }
    // Keep only files whose dependencies are all there (a file found in
    // part would make the whole pool fail).
    let mut have = std::collections::HashSet::new();
    let complete: Vec<FileDescriptorProto> = ordered
        .into_iter()
        .filter(|fd| {
            let ok = fd.dependency.iter().all(|d| have.contains(d));
            if ok {
                have.insert(fd.name.clone().unwrap_or_default());
            }
            ok
        })
        .collect();
    let mut pool = DescriptorPool::new();
    pool.add_file_descriptor_protos(complete)
        .map_err(|e| anyhow!("{e}"))?;
    Ok(pool)
}

/// The Envoy API of this Envoy binary (read once per binary and process).
pub fn pool_for(envoy_bin: &Path) -> anyhow::Result<Arc<DescriptorPool>> {
    static POOLS: OnceLock<Mutex<HashMap<PathBuf, Arc<DescriptorPool>>>> = OnceLock::new();
    let pools = POOLS.get_or_init(Default::default);
    let mut pools = pools
        .lock()
        .map_err(|_| anyhow!("descriptor cache poisoned"))?;
    if let Some(p) = pools.get(envoy_bin) {
        return Ok(p.clone());
    }
    let binary = std::fs::read(envoy_bin)
        .with_context(|| format!("reading {} for its API descriptors", envoy_bin.display()))?;
    let pool = build_pool(descriptors_in(&binary))
        .with_context(|| format!("the API descriptors in {}", envoy_bin.display()))?;
    for needed in [
        "envoy.config.cluster.v3.Cluster",
        "envoy.config.listener.v3.Listener",
        "envoy.config.route.v3.RouteConfiguration",
        "envoy.config.endpoint.v3.ClusterLoadAssignment",
        "envoy.extensions.transport_sockets.tls.v3.Secret",
    ] {
        if pool.get_message_by_name(needed).is_none() {
            anyhow::bail!(
                "{} holds no descriptor of {needed}: not an Envoy binary with its API compiled in",
                envoy_bin.display()
            );
        }
    }
    let pool = Arc::new(pool);
    pools.insert(envoy_bin.to_path_buf(), pool.clone());
    Ok(pool)
}

/// Why a JSON resource could not become protobuf.
#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    #[error("resource has no \"@type\"")]
    NoType,
    #[error("type {0} is not in this Envoy's API")]
    UnknownType(String),
    #[error("not a valid {type_name}: {message}")]
    Invalid { type_name: String, message: String },
}

/// `type.googleapis.com/envoy.config.cluster.v3.Cluster` → the full message name.
fn message_name(type_url: &str) -> &str {
    type_url.rsplit('/').next().unwrap_or(type_url)
}

/// Encode one resource (a JSON object with `@type`) as its protobuf bytes.
/// Returns the type URL and the bytes (the `value` of the `Any`).
pub fn encode(pool: &DescriptorPool, resource: &Value) -> Result<(String, Vec<u8>), EncodeError> {
    let type_url = resource
        .get("@type")
        .and_then(Value::as_str)
        .ok_or(EncodeError::NoType)?;
    let name = message_name(type_url);
    let desc = pool
        .get_message_by_name(name)
        .ok_or_else(|| EncodeError::UnknownType(name.to_string()))?;
    // The top-level `@type` belongs to the Any around the message.
    let body = match resource {
        Value::Object(m) => {
            // Borrowing would need a custom deserializer; the copy is one
            // resource's worth and is dropped at once.
            let mut m = m.clone();
            m.remove("@type");
            Value::Object(m)
        }
        _ => return Err(EncodeError::NoType),
    };
    let msg = DynamicMessage::deserialize(desc, body).map_err(|e| EncodeError::Invalid {
        type_name: name.to_string(),
        message: e.to_string(),
    })?;
    Ok((type_url.to_string(), msg.encode_to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pool() -> Arc<DescriptorPool> {
        pool_for(&crate::envoy::find_envoy().expect("the lab tests need Envoy")).unwrap()
    }

    #[test]
    fn descriptors_are_found_and_cut_where_they_end() {
        // Two serialized descriptors back to back, then padding.
        let a = FileDescriptorProto {
            name: Some("a/x.proto".into()),
            package: Some("a".into()),
            ..Default::default()
        };
        let b = FileDescriptorProto {
            name: Some("b/y.proto".into()),
            package: Some("b".into()),
            dependency: vec!["a/x.proto".into()],
            ..Default::default()
        };
        let mut bin = b"\x7fELF junk .proto\x12 not one".to_vec();
        bin.extend(a.encode_to_vec());
        bin.extend(b.encode_to_vec());
        bin.extend([0u8; 8]);
        let found = descriptors_in(&bin);
        assert_eq!(found.len(), 2, "{found:?}");
        assert_eq!(found["a/x.proto"], a);
        assert_eq!(found["b/y.proto"], b);
        let pool = build_pool(found).unwrap();
        assert_eq!(pool.files().count(), 2);
    }

    #[test]
    fn a_cluster_with_nested_any_round_trips() {
        let c = json!({
            "@type": "type.googleapis.com/envoy.config.cluster.v3.Cluster",
            "name": "outbound|8000||httpbin.foo.svc.cluster.local",
            "type": "EDS",
            "connect_timeout": "10s",
            "eds_cluster_config": {"eds_config": {"ads": {}, "resource_api_version": "V3"}, "service_name": "x"},
            "circuit_breakers": {"thresholds": [{"max_connections": 4294967295u64}]},
            "transport_socket": {"name": "envoy.transport_sockets.tls", "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",
                "sni": "outbound_.8000_._.httpbin.foo.svc.cluster.local"}},
            "metadata": {"filter_metadata": {"istio": {"services": [{"host": "h", "name": "n"}]}}},
        });
        let pool = pool();
        let (url, bytes) = encode(&pool, &c).unwrap();
        assert_eq!(url, "type.googleapis.com/envoy.config.cluster.v3.Cluster");
        let desc = pool
            .get_message_by_name("envoy.config.cluster.v3.Cluster")
            .unwrap();
        let back = DynamicMessage::decode(desc, bytes.as_slice()).unwrap();
        let json = serde_json::to_value(&back).unwrap();
        assert_eq!(json["connectTimeout"], "10s");
        assert_eq!(
            json["transportSocket"]["typedConfig"]["sni"],
            "outbound_.8000_._.httpbin.foo.svc.cluster.local"
        );
        assert_eq!(
            json["metadata"]["filterMetadata"]["istio"]["services"][0]["host"],
            "h"
        );
    }

    #[test]
    fn bad_values_are_named() {
        let pool = pool();
        let e = encode(
            &pool,
            &json!({"@type": "type.googleapis.com/envoy.config.cluster.v3.Cluster",
            "name": "c", "no_such_field": 1}),
        )
        .unwrap_err();
        assert!(
            e.to_string().contains("envoy.config.cluster.v3.Cluster")
                && e.to_string().contains("no_such_field"),
            "{e}"
        );
        let e = encode(
            &pool,
            &json!({"@type": "type.googleapis.com/envoy.nope.v3.Thing"}),
        )
        .unwrap_err();
        assert!(matches!(e, EncodeError::UnknownType(_)), "{e}");
        assert!(matches!(
            encode(&pool, &json!({"name": "x"})),
            Err(EncodeError::NoType)
        ));
    }
}
