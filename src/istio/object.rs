//! Kubernetes object metadata and small typed accessors over `serde_json::Value`.
//!
//! Callers hold objects exactly as the API server returns them (`apiVersion`,
//! `kind`, `metadata`, `spec`). Everything here is tolerant of unknown fields
//! and strict about the types of the fields it reads: a field of the wrong
//! type is an [`ObjectError`] naming the object (`kind ns/name`) and the field
//! path (`spec.trafficPolicy.tls.mode`), never a panic.

use std::collections::BTreeMap;
use std::fmt;

use serde_json::Value;

/// Why a Kubernetes object could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ObjectError {
    /// The document is not a JSON object at all.
    #[error("{object}: not a JSON object")]
    NotAnObject { object: String },
    /// A required field is absent.
    #[error("{object}: missing required field `{field}`")]
    Missing { object: String, field: String },
    /// A field has the wrong JSON type.
    #[error("{object}: field `{field}` should be {expected}, found {found}")]
    Type {
        object: String,
        field: String,
        expected: &'static str,
        found: String,
    },
    /// A field has the right type but an unusable value.
    #[error("{object}: field `{field}` is invalid: {reason}")]
    Invalid {
        object: String,
        field: String,
        reason: String,
    },
    /// The object is of another kind than the parser expects.
    #[error("{object}: expected kind {expected}")]
    WrongKind { object: String, expected: String },
}

/// A reference to a namespaced (or cluster-scoped, `namespace` empty) object.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectRef {
    pub kind: String,
    pub namespace: String,
    pub name: String,
}

impl ObjectRef {
    /// `ns/name`, or `name` for cluster-scoped objects.
    pub fn key(&self) -> String {
        if self.namespace.is_empty() {
            self.name.clone()
        } else {
            format!("{}/{}", self.namespace, self.name)
        }
    }
}

impl fmt::Display for ObjectRef {
    /// `DestinationRule foo/httpbin`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.kind, self.key())
    }
}

/// The parts of `metadata` (plus `apiVersion`/`kind`) that the analysis needs.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Meta {
    /// Empty for cluster-scoped objects (e.g. `MeshPolicy`).
    pub namespace: String,
    pub name: String,
    pub api_version: String,
    pub kind: String,
    /// RFC 3339 as the API server prints it (`2024-05-01T10:00:00Z`).
    pub creation_timestamp: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
}

impl Meta {
    /// Read `apiVersion`, `kind` and `metadata` from a raw object.
    /// `name` is required; everything else is optional.
    pub fn from_value(v: &Value) -> Result<Meta, ObjectError> {
        let obj = v.as_object().ok_or_else(|| ObjectError::NotAnObject {
            object: describe_unparsed(v),
        })?;
        let kind = obj
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let api_version = obj
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let md = obj.get("metadata");
        let name = md
            .and_then(|m| m.get("name"))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let namespace = md
            .and_then(|m| m.get("namespace"))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let mut meta = Meta {
            namespace,
            name,
            api_version,
            kind,
            ..Meta::default()
        };
        let id = meta.id();
        if meta.name.is_empty() {
            return Err(ObjectError::Missing {
                object: id,
                field: "metadata.name".into(),
            });
        }
        let r = Reader::new(&id, v);
        meta.creation_timestamp = r.opt_str("metadata.creationTimestamp")?;
        meta.labels = r.str_map("metadata.labels")?;
        meta.annotations = r.str_map("metadata.annotations")?;
        Ok(meta)
    }

    /// `DestinationRule foo/httpbin` (used in every error and explanation).
    pub fn id(&self) -> String {
        self.object_ref().to_string()
    }

    /// `foo/httpbin`.
    pub fn key(&self) -> String {
        self.object_ref().key()
    }

    pub fn object_ref(&self) -> ObjectRef {
        ObjectRef {
            kind: if self.kind.is_empty() {
                "object".into()
            } else {
                self.kind.clone()
            },
            namespace: self.namespace.clone(),
            name: self.name.clone(),
        }
    }

    /// The API group (`networking.istio.io` from `networking.istio.io/v1beta1`).
    pub fn group(&self) -> &str {
        match self.api_version.split_once('/') {
            Some((g, _)) => g,
            None => "",
        }
    }

    /// Istio's tie-break order for configs of the same scope: oldest
    /// `creationTimestamp` first, then name, then namespace.
    /// (istio/istio pilot/pkg/model/config.go `configCompareByCreationTime`.)
    /// A missing timestamp sorts first, like Go's zero `time.Time`.
    /// API-server timestamps are fixed-width UTC RFC 3339, so they compare as strings.
    pub fn age_order(&self, other: &Meta) -> std::cmp::Ordering {
        (&self.creation_timestamp, &self.name, &self.namespace).cmp(&(
            &other.creation_timestamp,
            &other.name,
            &other.namespace,
        ))
    }
}

fn describe_unparsed(v: &Value) -> String {
    let kind = v.get("kind").and_then(Value::as_str).unwrap_or("object");
    let ns = v
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or("");
    let name = v
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("?");
    if ns.is_empty() {
        format!("{kind} {name}")
    } else {
        format!("{kind} {ns}/{name}")
    }
}

/// `true` when every `selector` label is present with the same value in `labels`
/// (Kubernetes `matchLabels` semantics; an empty selector selects everything).
pub fn labels_match(
    selector: &BTreeMap<String, String>,
    labels: &BTreeMap<String, String>,
) -> bool {
    selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

/// Render labels as `app=httpbin,version=v1`.
pub fn format_labels(labels: &BTreeMap<String, String>) -> String {
    labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

pub(crate) fn type_name(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(_) => "a boolean".into(),
        Value::Number(_) => "a number".into(),
        Value::String(s) => format!("the string {s:?}"),
        Value::Array(_) => "an array".into(),
        Value::Object(_) => "an object".into(),
    }
}

/// Typed, path-aware reads from a JSON value, for error messages that name
/// the object and the field. Paths are dotted (`spec.trafficPolicy.tls`) and
/// relative to the reader's base; `at()` moves the base (e.g. into `subsets[2]`).
#[derive(Clone, Copy)]
pub(crate) struct Reader<'a> {
    pub object: &'a str,
    pub base: &'a Value,
    prefix: &'a str,
}

/// An owned prefix holder so that nested readers can build `subsets[2].` paths.
pub(crate) struct OwnedReader<'a> {
    pub object: &'a str,
    pub base: &'a Value,
    pub prefix: String,
}

impl<'a> OwnedReader<'a> {
    pub fn reader(&self) -> Reader<'_> {
        Reader {
            object: self.object,
            base: self.base,
            prefix: &self.prefix,
        }
    }
}

impl<'a> Reader<'a> {
    pub fn new(object: &'a str, base: &'a Value) -> Reader<'a> {
        Reader {
            object,
            base,
            prefix: "",
        }
    }

    /// Full path for messages.
    pub fn path(&self, rel: &str) -> String {
        if rel.is_empty() {
            self.prefix.trim_end_matches('.').to_string()
        } else {
            format!("{}{}", self.prefix, rel)
        }
    }

    /// A reader rooted at `value`, whose paths are reported under `prefix` (e.g. `spec.subsets[1]`).
    pub fn at(&self, value: &'a Value, rel_path: &str) -> OwnedReader<'a> {
        OwnedReader {
            object: self.object,
            base: value,
            prefix: format!("{}.", self.path(rel_path)),
        }
    }

    /// Raw lookup; `None` for absent or JSON `null`.
    pub fn get(&self, rel: &str) -> Option<&'a Value> {
        let mut cur = self.base;
        if rel.is_empty() {
            return Some(cur);
        }
        for part in rel.split('.') {
            cur = cur.get(part)?;
        }
        if cur.is_null() {
            None
        } else {
            Some(cur)
        }
    }

    pub fn type_err(&self, rel: &str, expected: &'static str, found: &Value) -> ObjectError {
        ObjectError::Type {
            object: self.object.to_string(),
            field: self.path(rel),
            expected,
            found: type_name(found),
        }
    }

    pub fn invalid(&self, rel: &str, reason: impl Into<String>) -> ObjectError {
        ObjectError::Invalid {
            object: self.object.to_string(),
            field: self.path(rel),
            reason: reason.into(),
        }
    }

    pub fn missing(&self, rel: &str) -> ObjectError {
        ObjectError::Missing {
            object: self.object.to_string(),
            field: self.path(rel),
        }
    }

    pub fn opt_str(&self, rel: &str) -> Result<Option<String>, ObjectError> {
        match self.get(rel) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(self.type_err(rel, "a string", other)),
        }
    }

    pub fn req_str(&self, rel: &str) -> Result<String, ObjectError> {
        self.opt_str(rel)?.ok_or_else(|| self.missing(rel))
    }

    pub fn opt_bool(&self, rel: &str) -> Result<Option<bool>, ObjectError> {
        match self.get(rel) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(Value::String(s)) if s == "true" || s == "false" => Ok(Some(s == "true")),
            Some(other) => Err(self.type_err(rel, "a boolean", other)),
        }
    }

    /// Unsigned integer; numeric strings are accepted (pre-schema Istio CRDs stored what users typed).
    pub fn opt_u32(&self, rel: &str) -> Result<Option<u32>, ObjectError> {
        match self.get(rel) {
            None => Ok(None),
            Some(Value::Number(n)) => n
                .as_u64()
                .and_then(|x| u32::try_from(x).ok())
                .map(Some)
                .ok_or_else(|| self.invalid(rel, format!("{n} is not a 32-bit unsigned integer"))),
            Some(Value::String(s)) => {
                s.trim().parse::<u32>().map(Some).map_err(|_| {
                    self.type_err(rel, "an unsigned integer", &Value::String(s.clone()))
                })
            }
            Some(other) => Err(self.type_err(rel, "an unsigned integer", other)),
        }
    }

    /// Signed integer (Istio uses int32 for e.g. `maxRetries`, `http1MaxPendingRequests`).
    pub fn opt_i64(&self, rel: &str) -> Result<Option<i64>, ObjectError> {
        match self.get(rel) {
            None => Ok(None),
            Some(Value::Number(n)) => n
                .as_i64()
                .map(Some)
                .ok_or_else(|| self.invalid(rel, format!("{n} is not an integer"))),
            Some(Value::String(s)) => s
                .trim()
                .parse::<i64>()
                .map(Some)
                .map_err(|_| self.type_err(rel, "an integer", &Value::String(s.clone()))),
            Some(other) => Err(self.type_err(rel, "an integer", other)),
        }
    }

    /// A string, or a number rendered as a string (durations such as `1s` are strings,
    /// but hand-written old CRDs sometimes hold bare numbers).
    pub fn opt_scalar_string(&self, rel: &str) -> Result<Option<String>, ObjectError> {
        match self.get(rel) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(Value::Number(n)) => Ok(Some(n.to_string())),
            Some(other) => Err(self.type_err(rel, "a string", other)),
        }
    }

    pub fn str_list(&self, rel: &str) -> Result<Vec<String>, ObjectError> {
        match self.get(rel) {
            None => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(i, item)| match item {
                    Value::String(s) => Ok(s.clone()),
                    other => Err(ObjectError::Type {
                        object: self.object.to_string(),
                        field: format!("{}[{i}]", self.path(rel)),
                        expected: "a string",
                        found: type_name(other),
                    }),
                })
                .collect(),
            Some(other) => Err(self.type_err(rel, "a list of strings", other)),
        }
    }

    pub fn str_map(&self, rel: &str) -> Result<BTreeMap<String, String>, ObjectError> {
        match self.get(rel) {
            None => Ok(BTreeMap::new()),
            Some(Value::Object(m)) => {
                let mut out = BTreeMap::new();
                for (k, v) in m {
                    let s = match v {
                        Value::String(s) => s.clone(),
                        Value::Number(n) => n.to_string(),
                        Value::Bool(b) => b.to_string(),
                        other => {
                            return Err(ObjectError::Type {
                                object: self.object.to_string(),
                                field: format!("{}.{k}", self.path(rel)),
                                expected: "a string",
                                found: type_name(other),
                            })
                        }
                    };
                    out.insert(k.clone(), s);
                }
                Ok(out)
            }
            Some(other) => Err(self.type_err(rel, "a map of strings", other)),
        }
    }

    pub fn opt_object(&self, rel: &str) -> Result<Option<&'a Value>, ObjectError> {
        match self.get(rel) {
            None => Ok(None),
            Some(v @ Value::Object(_)) => Ok(Some(v)),
            Some(other) => Err(self.type_err(rel, "an object", other)),
        }
    }

    pub fn opt_array(&self, rel: &str) -> Result<&'a [Value], ObjectError> {
        match self.get(rel) {
            None => Ok(&[]),
            Some(Value::Array(items)) => Ok(items.as_slice()),
            Some(other) => Err(self.type_err(rel, "a list", other)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn meta_reads_all_fields() {
        let v = json!({
            "apiVersion": "networking.istio.io/v1beta1",
            "kind": "DestinationRule",
            "metadata": {
                "name": "httpbin", "namespace": "foo",
                "creationTimestamp": "2024-05-01T10:00:00Z",
                "labels": {"app": "httpbin"},
                "annotations": {"a": "b"}
            },
            "spec": {}
        });
        let m = Meta::from_value(&v).unwrap();
        assert_eq!(m.namespace, "foo");
        assert_eq!(m.name, "httpbin");
        assert_eq!(m.group(), "networking.istio.io");
        assert_eq!(m.id(), "DestinationRule foo/httpbin");
        assert_eq!(
            m.creation_timestamp.as_deref(),
            Some("2024-05-01T10:00:00Z")
        );
        assert_eq!(m.labels.get("app").map(String::as_str), Some("httpbin"));
    }

    #[test]
    fn meta_requires_name_and_object() {
        let err = Meta::from_value(&json!({"kind": "Foo", "metadata": {}})).unwrap_err();
        assert!(matches!(err, ObjectError::Missing { ref field, .. } if field == "metadata.name"));
        let err = Meta::from_value(&json!([1, 2])).unwrap_err();
        assert!(matches!(err, ObjectError::NotAnObject { .. }));
    }

    #[test]
    fn wrong_label_type_names_the_field() {
        let v = json!({"kind": "Pod", "metadata": {"name": "p", "namespace": "n", "labels": {"x": [1]}}});
        let err = Meta::from_value(&v).unwrap_err();
        assert_eq!(
            err.to_string(),
            "Pod n/p: field `metadata.labels.x` should be a string, found an array"
        );
    }

    #[test]
    fn age_order_missing_timestamp_first_then_name() {
        let mk = |name: &str, ts: Option<&str>| Meta {
            name: name.into(),
            creation_timestamp: ts.map(String::from),
            ..Meta::default()
        };
        let a = mk("b", None);
        let b = mk("a", Some("2020-01-01T00:00:00Z"));
        let c = mk("c", Some("2020-01-01T00:00:00Z"));
        assert!(a.age_order(&b).is_lt());
        assert!(b.age_order(&c).is_lt());
    }

    #[test]
    fn reader_paths_and_numbers() {
        let v = json!({"spec": {"n": "12", "bad": "x", "list": ["a", 3]}});
        let r = Reader::new("K ns/n", &v);
        assert_eq!(r.opt_u32("spec.n").unwrap(), Some(12));
        let e = r.opt_u32("spec.bad").unwrap_err();
        assert!(e.to_string().contains("`spec.bad`"));
        let e = r.str_list("spec.list").unwrap_err();
        assert!(e.to_string().contains("`spec.list[1]`"), "{e}");
        let sub = r.at(&v["spec"], "spec");
        assert_eq!(sub.reader().path("n"), "spec.n");
    }

    #[test]
    fn labels_match_is_subset() {
        let sel: BTreeMap<_, _> = [("app".to_string(), "a".to_string())].into();
        let mut labels = sel.clone();
        labels.insert("v".into(), "1".into());
        assert!(labels_match(&sel, &labels));
        assert!(!labels_match(&labels, &sel));
        assert!(labels_match(&BTreeMap::new(), &sel));
    }
}
