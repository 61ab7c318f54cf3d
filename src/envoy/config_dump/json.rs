//! Small readers for the JSON Envoy's admin API prints (protobuf JSON:
//! wrapper types as `{"value": n}`, uint64 as strings, `Any` with `@type`).
//!
//! Place in the flow: a private helper of [`super`] (envoy/ parses what
//! Envoy emits; collect → snapshot → model reads it through these parsers).

use std::collections::BTreeMap;

use serde_json::{Number, Value};

/// What the parsers ask of a JSON value: a `serde_json::Value` (the tree
/// parser, the snapshot's dumps), or the streaming reader's
/// [`super::pruned::Node`] (only the keys the parsers read, strings
/// borrowed from the document). Both answer as a `Value` would, including
/// a repeated key's last value and an object's entries in key order.
pub trait Json: Sized {
    fn get(&self, key: &str) -> Option<&Self>;
    fn as_str(&self) -> Option<&str>;
    fn as_array(&self) -> Option<&[Self]>;
    fn as_number(&self) -> Option<&Number>;
    fn as_bool(&self) -> Option<bool>;
    fn is_object(&self) -> bool;
    /// An object without a key.
    fn is_empty_object(&self) -> bool;
    /// An object's entries as a `Value`'s map holds them: by key, a
    /// repeated key's last value.
    fn entries(&self) -> Option<Vec<(&str, &Self)>>;
    fn to_value(&self) -> Value;
    /// `null`, for lookups that go on through a missing key.
    fn null<'a>() -> &'a Self
    where
        Self: 'a;
}

static NULL: Value = Value::Null;

impl Json for Value {
    fn get(&self, key: &str) -> Option<&Self> {
        Value::get(self, key)
    }
    fn as_str(&self) -> Option<&str> {
        Value::as_str(self)
    }
    fn as_array(&self) -> Option<&[Self]> {
        Value::as_array(self).map(Vec::as_slice)
    }
    fn as_number(&self) -> Option<&Number> {
        match self {
            Value::Number(n) => Some(n),
            _ => None,
        }
    }
    fn as_bool(&self) -> Option<bool> {
        Value::as_bool(self)
    }
    fn is_object(&self) -> bool {
        Value::is_object(self)
    }
    fn is_empty_object(&self) -> bool {
        self.as_object().is_some_and(|o| o.is_empty())
    }
    fn entries(&self) -> Option<Vec<(&str, &Self)>> {
        self.as_object()
            .map(|o| o.iter().map(|(k, v)| (k.as_str(), v)).collect())
    }
    fn to_value(&self) -> Value {
        self.clone()
    }
    fn null<'a>() -> &'a Self
    where
        Self: 'a,
    {
        &NULL
    }
}

pub(super) fn s<J: Json>(v: &J, key: &str) -> Option<String> {
    v.get(key).and_then(J::as_str).map(String::from)
}

pub(super) fn f64_of<J: Json>(v: &J) -> Option<f64> {
    v.as_number().and_then(Number::as_f64)
}

pub(super) fn u64_of<J: Json>(v: &J) -> Option<u64> {
    if let Some(n) = v.as_number() {
        return n.as_u64();
    }
    if let Some(s) = v.as_str() {
        return s.parse().ok();
    }
    // wrapper types written as {"value": n}
    if v.is_object() {
        return v.get("value").and_then(u64_of);
    }
    None
}

pub(super) fn u64_at<J: Json>(v: &J, key: &str) -> Option<u64> {
    v.get(key).and_then(u64_of)
}

/// A port (`port_value`, `destination_port`): a number that fits 16 bits.
pub(super) fn port_at<J: Json>(v: &J, key: &str) -> Option<u16> {
    u64_at(v, key).and_then(|p| u16::try_from(p).ok())
}

pub(super) fn bool_of<J: Json>(v: &J) -> Option<bool> {
    if let Some(b) = v.as_bool() {
        return Some(b);
    }
    if v.is_object() {
        return v.get("value").and_then(J::as_bool);
    }
    None
}

pub(super) fn str_list<J: Json>(v: Option<&J>) -> Vec<String> {
    v.and_then(J::as_array)
        .map(|a| a.iter().filter_map(J::as_str).map(String::from).collect())
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
pub(super) fn each<'a, J: Json>(v: &'a J, key: &str) -> impl Iterator<Item = (usize, &'a J)> {
    v.get(key)
        .and_then(J::as_array)
        .into_iter()
        .flatten()
        .enumerate()
}

/// A filter's or socket's configuration: v3 `typed_config`, v2 `config`.
pub(super) fn filter_config<J: Json>(f: &J) -> &J {
    f.get("typed_config")
        .or_else(|| f.get("config"))
        .unwrap_or(J::null())
}

/// An Envoy `StringMatcher` as text: the exact value, or `prefix:…`,
/// `suffix:…`, `contains:…`, `regex:…`.
pub(super) fn string_matcher<J: Json>(m: &J) -> Option<String> {
    if let Some(x) = m.get("exact").and_then(J::as_str) {
        return Some(x.to_string());
    }
    for k in ["prefix", "suffix", "contains"] {
        if let Some(x) = m.get(k).and_then(J::as_str) {
            return Some(format!("{k}:{x}"));
        }
    }
    if let Some(x) = m
        .get("safe_regex")
        .and_then(|r| r.get("regex"))
        .and_then(J::as_str)
    {
        return Some(format!("regex:{x}"));
    }
    m.get("regex")
        .and_then(J::as_str)
        .map(|x| format!("regex:{x}"))
}
