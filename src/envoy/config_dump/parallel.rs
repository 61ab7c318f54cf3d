//! A large `/config_dump` read on two threads: one pass finds the elements
//! of `configs[]` (as raw slices of the document, nothing built), then
//! each element is read by [`super::stream`]'s element reader on one of two
//! threads, and the parts are added in the document's order, exactly as the
//! one-thread reader adds them (so the result is the same `ConfigDump`).
//!
//! Place in the flow: [`super::stream::from_slice`] uses it for documents
//! of [`PARALLEL_FROM`] bytes or more (`tls-check --config-dump` on a full
//! dump of a large mesh: its cluster and endpoint dumps are each tens of
//! MB). Anything unusual (no `configs` list, an element that fails) makes it
//! answer `None`, and the one-thread reader runs instead, with its errors
//! and their positions.

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

use super::stream::{DumpDocument, Element, StringOrNone, TopLevel};
use super::ConfigDump;

/// From this size a document's elements are read on two threads.
pub const PARALLEL_FROM: usize = 32 << 20;

/// The document read on two threads; `None` when the one-thread reader
/// should read it (see the module doc).
pub fn read(bytes: &[u8]) -> Option<DumpDocument> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let (top, configs) = Outline.deserialize(&mut de).ok()?;
    de.end().ok()?;
    let elements = configs?;
    // Largest first, each onto the less loaded thread.
    let mut order: Vec<usize> = (0..elements.len()).collect();
    order.sort_by_key(|i| std::cmp::Reverse(elements[*i].get().len()));
    let (mut plans, mut load) = ([Vec::new(), Vec::new()], [0usize; 2]);
    for i in order {
        let w = usize::from(load[1] < load[0]);
        load[w] += elements[i].get().len();
        plans[w].push(i);
    }
    let [mine, theirs] = &plans;
    let parts = std::thread::scope(|s| {
        let other = s.spawn(|| read_each(&elements, theirs));
        let mut parts = read_each(&elements, mine)?;
        parts.extend(other.join().ok()??);
        Some(parts)
    })?;
    let mut parts: Vec<(usize, ConfigDump)> = parts;
    parts.sort_by_key(|(i, _)| *i);
    let mut out = ConfigDump::default();
    for (_, part) in parts {
        out.append_later(part);
    }
    Some(DumpDocument {
        dump: Ok(out),
        top: TopLevel {
            configs_list: true,
            ..top
        },
    })
}

/// The elements `which` of `configs[]`, each into its own dump.
fn read_each(elements: &[&RawValue], which: &[usize]) -> Option<Vec<(usize, ConfigDump)>> {
    which
        .iter()
        .map(|&i| {
            let mut part = ConfigDump::default();
            let path = format!("configs[{i}]");
            let mut de = serde_json::Deserializer::from_str(elements[i].get());
            Element::new(&mut part, &path).deserialize(&mut de).ok()?;
            de.end().ok()?;
            Some((i, part))
        })
        .collect()
}

/// The top level as [`super::stream`] reads it, with `configs[]`'s
/// elements kept as raw slices (`None`: absent or not a list).
struct Outline;

type Outlined<'de> = (TopLevel, Option<Vec<&'de RawValue>>);

impl<'de> DeserializeSeed<'de> for Outline {
    type Value = Outlined<'de>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Outline {
    type Value = Outlined<'de>;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a /config_dump JSON object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut top = TopLevel::default();
        // As in a `Value`, the last of a repeated key wins.
        let mut configs = None;
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            match key.as_ref() {
                "configs" => configs = Some(map.next_value_seed(RawList)?),
                "schema" => top.schema = map.next_value_seed(StringOrNone)?,
                "cluster_statuses" => {
                    top.cluster_statuses = true;
                    map.next_value::<IgnoredAny>()?;
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok((top, configs.flatten()))
    }
}

/// A list's elements as raw slices (found in the same pass). Anything but
/// a list is an error here: the one-thread reader then reads the document.
struct RawList;

impl<'de> DeserializeSeed<'de> for RawList {
    type Value = Option<Vec<&'de RawValue>>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for RawList {
    type Value = Option<Vec<&'de RawValue>>;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("the `configs` list")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::new();
        while let Some(e) = seq.next_element::<&'de RawValue>()? {
            out.push(e);
        }
        Ok(Some(out))
    }
}
