//! Small readers for the JSON Envoy's admin API prints (protobuf JSON:
//! wrapper types as `{"value": n}`, uint64 as strings, `Any` with `@type`).
//!
//! Place in the flow: a private helper of [`super`] (envoy/ parses what
//! Envoy emits; collect → snapshot → model reads it through these parsers).

use std::collections::BTreeMap;

use serde_json::Value;

pub(super) fn s(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).map(String::from)
}

pub(super) fn u64_of(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.parse().ok(),
        // wrapper types written as {"value": n}
        Value::Object(o) => o.get("value").and_then(u64_of),
        _ => None,
    }
}

pub(super) fn u64_at(v: &Value, key: &str) -> Option<u64> {
    v.get(key).and_then(u64_of)
}

/// A port (`port_value`, `destination_port`): a number that fits 16 bits.
pub(super) fn port_at(v: &Value, key: &str) -> Option<u16> {
    u64_at(v, key).and_then(|p| u16::try_from(p).ok())
}

pub(super) fn bool_of(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::Object(o) => o.get("value").and_then(Value::as_bool),
        _ => None,
    }
}

pub(super) fn str_list(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(String::from)
                .collect()
        })
        .unwrap_or_default()
}

pub(super) fn str_map(v: Option<&Value>) -> BTreeMap<String, String> {
    v.and_then(Value::as_object)
        .map(|o| {
            o.iter()
                .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

/// The elements of an array field, with their index (for error paths).
pub(super) fn each<'a>(v: &'a Value, key: &str) -> impl Iterator<Item = (usize, &'a Value)> {
    v.get(key)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
}

/// A filter's or socket's configuration: v3 `typed_config`, v2 `config`.
pub(super) fn filter_config(f: &Value) -> &Value {
    f.get("typed_config")
        .or_else(|| f.get("config"))
        .unwrap_or(&Value::Null)
}

/// An Envoy `StringMatcher` as text: the exact value, or `prefix:…`,
/// `suffix:…`, `contains:…`, `regex:…`.
pub(super) fn string_matcher(m: &Value) -> Option<String> {
    if let Some(x) = m.get("exact").and_then(Value::as_str) {
        return Some(x.to_string());
    }
    for k in ["prefix", "suffix", "contains"] {
        if let Some(x) = m.get(k).and_then(Value::as_str) {
            return Some(format!("{k}:{x}"));
        }
    }
    if let Some(x) = m
        .get("safe_regex")
        .and_then(|r| r.get("regex"))
        .and_then(Value::as_str)
    {
        return Some(format!("regex:{x}"));
    }
    m.get("regex")
        .and_then(Value::as_str)
        .map(|x| format!("regex:{x}"))
}
