//! The streaming reader of a whole `/config_dump` document: the same typed
//! [`ConfigDump`] as [`super::parse_config_dump`], read from bytes or a
//! reader without ever holding the document's JSON tree.
//!
//! Place in the flow: `tls-check --config-dump` (run.rs) reads saved full
//! dumps with it; a 200 MB dump is then parsed in one pass, and what stays
//! in memory is the typed model. The live path keeps the tree parser (its
//! `?resource=` dumps are small and stored in the snapshot as JSON).
//!
//! How: a serde visitor over the top object and `configs[]`. Each element's
//! `@type` is read first: Envoy prints the dump with protobuf's JSON
//! printer, which writes an `Any`'s `@type` before its fields and the fields
//! in field-number order (protocolbuffers/protobuf
//! `src/google/protobuf/json/internal/unparser.cc`, `WriteAny`,
//! `WriteFields`). The three dumps that hold lists (`ClustersConfigDump`,
//! `ListenersConfigDump`, `EndpointsConfigDump`) are read list by list,
//! element by element: each element (one cluster, listener or endpoint
//! assignment, a few KB) becomes a small tree of only the keys the parsers
//! read ([`super::pruned::Node`]), handed to the same `push_*` functions
//! the tree parser runs (generic over [`super::json::Json`]), and is
//! dropped. Route, secret, scoped-route and ECDS dumps, and unknown types,
//! are skipped unparsed (`IgnoredAny`). The bootstrap and the
//! single-resource elements of `?resource=` dumps are small: they are read
//! whole and parsed by the tree parser's code. An element whose `@type` is
//! not its first key is read whole too (the fallback), so any key order
//! gives the same result.
//!
//! Equivalence with the tree parser, including JSON it never sees from
//! Envoy: the same paths in `problems`, lists merged in the tree parser's
//! order whatever their order in the document, a repeated key's last value
//! winning as in a `serde_json::Value` (a repeated `configs`, list or
//! `version_info`). One exception: an element whose `@type` comes first
//! and is repeated later with another value is read with the first one
//! (the tree parser takes the last); no Envoy writes a key twice. And what
//! is skipped unparsed may nest deeper than the tree parser's limit of 128
//! (serde_json skips without recursing), where the tree parser refuses the
//! whole document.

use std::io::Read;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use super::pruned::Pruned;
use super::{
    config_entry, kind_of, type_suffix, typed_entry, ConfigDump, DumpError, Kind, ListsKind,
};

/// What the top level of a document holds besides `configs`, so that a
/// caller can tell a dump from other JSON (a snapshot, `/clusters`) without
/// the tree.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TopLevel {
    /// `schema`, when it is a string (a kubectl-mesh503 snapshot's).
    pub schema: Option<String>,
    /// A `cluster_statuses` key (`/clusters?format=json`).
    pub cluster_statuses: bool,
    /// `configs` is there and is a list.
    pub configs_list: bool,
}

/// A document read by [`from_slice`] / [`from_reader`].
#[derive(Debug, Clone, PartialEq)]
pub struct DumpDocument {
    /// What [`super::parse_config_dump`] returns for the same document.
    pub dump: Result<ConfigDump, DumpError>,
    pub top: TopLevel,
}

/// Reads a whole document from memory. Errors are serde_json's (not JSON,
/// truncated: with line and column).
pub fn from_slice(bytes: &[u8]) -> Result<DumpDocument, serde_json::Error> {
    if bytes.len() >= super::parallel::PARALLEL_FROM {
        if let Some(doc) = super::parallel::read(bytes) {
            return Ok(doc);
        }
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let doc = Document.deserialize(&mut de)?;
    de.end()?;
    Ok(doc)
}

/// Reads a whole document from a reader (buffer it: serde_json reads byte
/// by byte).
pub fn from_reader<R: Read>(r: R) -> Result<DumpDocument, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_reader(r);
    let doc = Document.deserialize(&mut de)?;
    de.end()?;
    Ok(doc)
}

/// The `visit_*` methods of the values that are neither a map nor a list:
/// each returns `$other(self)`.
macro_rules! scalars {
    ($other:expr) => {
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
            Ok($other(self))
        }
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
            Ok($other(self))
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
            Ok($other(self))
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
            Ok($other(self))
        }
        fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
            Ok($other(self))
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok($other(self))
        }
    };
}

/// Reads what is left of a list, unparsed.
fn drain_seq<'de, A: SeqAccess<'de>>(mut seq: A) -> Result<(), A::Error> {
    while seq.next_element::<IgnoredAny>()?.is_some() {}
    Ok(())
}

/// Reads what is left of an object, unparsed.
fn drain_map<'de, A: MapAccess<'de>>(mut map: A) -> Result<(), A::Error> {
    while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
    Ok(())
}

/// An object key, classified by `F` without being copied.
struct Key<F>(F);

impl<'de, K, F: FnOnce(&str) -> K> DeserializeSeed<'de> for Key<F> {
    type Value = K;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<K, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de, K, F: FnOnce(&str) -> K> Visitor<'de> for Key<F> {
    type Value = K;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an object key")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<K, E> {
        Ok((self.0)(v))
    }
}

/// A value kept only when it is a string (`schema`, `version_info`).
pub(super) struct StringOrNone;

impl<'de> DeserializeSeed<'de> for StringOrNone {
    type Value = Option<String>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Option<String>, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for StringOrNone {
    type Value = Option<String>;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Some(v.to_string()))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        drain_seq(seq).map(|()| None)
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        drain_map(map).map(|()| None)
    }
}

/// The whole document.
struct Document;

enum TopKey {
    Configs,
    Schema,
    ClusterStatuses,
    Other,
}

impl<'de> DeserializeSeed<'de> for Document {
    type Value = DumpDocument;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<DumpDocument, D::Error> {
        d.deserialize_any(self)
    }
}

impl Document {
    fn not_an_object(self) -> DumpDocument {
        DumpDocument {
            dump: Err(DumpError::NotAnObject),
            top: TopLevel::default(),
        }
    }
}

impl<'de> Visitor<'de> for Document {
    type Value = DumpDocument;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a /config_dump JSON document")
    }
    scalars!(Document::not_an_object);
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<DumpDocument, A::Error> {
        drain_seq(seq)?;
        Ok(self.not_an_object())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<DumpDocument, A::Error> {
        let mut top = TopLevel::default();
        // As in a `Value`, the last of a repeated key wins.
        let mut configs = None;
        let classify = |k: &str| match k {
            "configs" => TopKey::Configs,
            "schema" => TopKey::Schema,
            "cluster_statuses" => TopKey::ClusterStatuses,
            _ => TopKey::Other,
        };
        while let Some(key) = map.next_key_seed(Key(classify))? {
            match key {
                TopKey::Configs => configs = Some(map.next_value_seed(Configs)?),
                TopKey::Schema => top.schema = map.next_value_seed(StringOrNone)?,
                TopKey::ClusterStatuses => {
                    top.cluster_statuses = true;
                    map.next_value::<IgnoredAny>()?;
                }
                TopKey::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        let dump = match configs {
            None => Ok(ConfigDump::default()),
            Some(Some(d)) => {
                top.configs_list = true;
                Ok(d)
            }
            Some(None) => Err(DumpError::ConfigsNotAList),
        };
        Ok(DumpDocument { dump, top })
    }
}

/// The value of `configs`: the dump when it is a list, `None` otherwise.
struct Configs;

impl<'de> DeserializeSeed<'de> for Configs {
    type Value = Option<ConfigDump>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Configs {
    type Value = Option<ConfigDump>;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("the `configs` list")
    }
    scalars!(|_| None);
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        drain_map(map).map(|()| None)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut out = ConfigDump::default();
        let mut i = 0usize;
        loop {
            let path = format!("configs[{i}]");
            let seed = Element {
                out: &mut out,
                path: &path,
            };
            if seq.next_element_seed(seed)?.is_none() {
                return Ok(Some(out));
            }
            i += 1;
        }
    }
}

/// One element of `configs[]`, added to `out`.
pub(super) struct Element<'a> {
    out: &'a mut ConfigDump,
    path: &'a str,
}

impl<'de> DeserializeSeed<'de> for Element<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'a> Element<'a> {
    /// The reader of the element at `path` (`configs[3]`), adding to `out`.
    pub(super) fn new(out: &'a mut ConfigDump, path: &'a str) -> Element<'a> {
        Element { out, path }
    }

    fn no_type(self) {
        self.out.problems.push(DumpError::Element {
            path: self.path.to_string(),
            reason: "no @type".into(),
        });
    }
}

/// The rest of an object whose first key (and its value) was read already.
fn rest_of<'de, A: MapAccess<'de>>(
    mut map: A,
    first: String,
    value: Value,
) -> Result<Value, A::Error> {
    let mut m = Map::new();
    m.insert(first, value);
    while let Some((k, v)) = map.next_entry::<String, Value>()? {
        m.insert(k, v);
    }
    Ok(Value::Object(m))
}

impl<'de> Visitor<'de> for Element<'_> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a `configs[]` element")
    }
    scalars!(Element::no_type);
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<(), A::Error> {
        drain_seq(seq)?;
        self.no_type();
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let Some(first) = map.next_key::<String>()? else {
            self.no_type();
            return Ok(());
        };
        let value: Value = map.next_value()?;
        // The type to stream by, when `@type` comes first and says it.
        let streamed: Option<&str> = match (first.as_str(), &value) {
            ("@type", Value::String(t)) => {
                let kind = type_suffix(t).map(|(_, k)| kind_of(k));
                match kind {
                    // Not kept, or not an Envoy admin type: skipped unread.
                    None | Some(None) => Some(t.as_str()),
                    Some(Some(Kind::Lists(_))) => Some(t.as_str()),
                    // Small: read whole below.
                    Some(Some(_)) => None,
                }
            }
            // The fallback: `@type` is not first (or not a string).
            _ => None,
        };
        let Some(t) = streamed else {
            let element = rest_of(map, first, value)?;
            config_entry(self.out, &element, self.path);
            return Ok(());
        };
        match typed_entry(self.out, t, None, self.path) {
            Some(Kind::Lists(lists)) => read_lists(map, self.out, lists, self.path),
            _ => drain_map(map),
        }
    }
}

/// The keys of a lists dump that are read.
enum ListKey {
    Version,
    List(usize),
    Other,
}

/// The rest of a `ClustersConfigDump` / `ListenersConfigDump` /
/// `EndpointsConfigDump` after its `@type`: each list into its own part
/// (a repeated list replaces the earlier one), then the parts added in the
/// tree parser's order.
fn read_lists<'de, A: MapAccess<'de>>(
    mut map: A,
    out: &mut ConfigDump,
    kind: ListsKind,
    path: &str,
) -> Result<(), A::Error> {
    let lists = kind.lists();
    let mut parts: Vec<Option<ConfigDump>> = vec![None; lists.len()];
    let mut version = None;
    let classify = |k: &str| {
        if k == "version_info" {
            return ListKey::Version;
        }
        match lists.iter().position(|key| *key == k) {
            Some(i) => ListKey::List(i),
            None => ListKey::Other,
        }
    };
    while let Some(key) = map.next_key_seed(Key(classify))? {
        match key {
            ListKey::Version => version = map.next_value_seed(StringOrNone)?,
            ListKey::List(index) => {
                let list = List { kind, index, path };
                parts[index] = Some(map.next_value_seed(list)?);
            }
            ListKey::Other => {
                map.next_value::<IgnoredAny>()?;
            }
        }
    }
    if let (Some(ty), Some(v)) = (kind.versioned(), version) {
        out.type_versions.insert(ty, v);
    }
    for part in parts.into_iter().flatten() {
        append(out, part);
    }
    Ok(())
}

/// Adds the resources of one list read on its own, as the tree parser
/// would have pushed them (after those in `out`).
fn append(out: &mut ConfigDump, part: ConfigDump) {
    append_vec(&mut out.clusters, part.clusters);
    append_vec(&mut out.listeners, part.listeners);
    append_vec(&mut out.rejected, part.rejected);
    append_vec(&mut out.problems, part.problems);
    // Merged into the larger map (the bulk of a dump is one list).
    let mut endpoints = part.endpoints;
    if out.endpoints.len() > endpoints.len() {
        std::mem::swap(&mut out.endpoints, &mut endpoints);
        for (name, eps) in endpoints {
            out.endpoints.entry(name).or_default().extend(eps);
        }
    } else {
        for (name, mut eps) in std::mem::take(&mut out.endpoints) {
            let later = endpoints.entry(name).or_default();
            eps.append(later);
            *later = eps;
        }
        out.endpoints = endpoints;
    }
    let mut versions = part.endpoint_versions;
    if out.endpoint_versions.len() > versions.len() {
        std::mem::swap(&mut out.endpoint_versions, &mut versions);
        out.endpoint_versions.extend(versions);
    } else {
        for (name, v) in std::mem::take(&mut out.endpoint_versions) {
            versions.entry(name).or_insert(v);
        }
        out.endpoint_versions = versions;
    }
}

/// `out` then `more`, moving the larger of the two.
fn append_vec<T>(out: &mut Vec<T>, mut more: Vec<T>) {
    if out.len() >= more.len() {
        out.append(&mut more);
    } else {
        let earlier = std::mem::replace(out, more);
        out.splice(0..0, earlier);
    }
}

/// One list of a lists dump, element by element.
struct List<'a> {
    kind: ListsKind,
    index: usize,
    path: &'a str,
}

impl<'de> DeserializeSeed<'de> for List<'_> {
    type Value = ConfigDump;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<ConfigDump, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for List<'_> {
    type Value = ConfigDump;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(f, "the list `{}`", self.kind.lists()[self.index])
    }
    // Not a list: nothing in it, as for the tree parser.
    scalars!(|_| ConfigDump::default());
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<ConfigDump, A::Error> {
        drain_map(map).map(|()| ConfigDump::default())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<ConfigDump, A::Error> {
        let mut part = ConfigDump::default();
        let key = self.kind.lists()[self.index];
        let mut path = String::new();
        let mut j = 0usize;
        while let Some(w) = seq.next_element_seed(Pruned { pruned: true })? {
            path.clear();
            path.push_str(self.path);
            path.push('.');
            path.push_str(key);
            path.push('[');
            path.push_str(itoa(j, &mut [0u8; 20]));
            path.push(']');
            self.kind.push(self.index, &mut part, &w, &path);
            j += 1;
        }
        Ok(part)
    }
}

/// `n` in decimal, written into `buf`.
fn itoa(mut n: usize, buf: &mut [u8; 20]) -> &str {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    std::str::from_utf8(&buf[i..]).unwrap_or("?")
}
