//! Label and field selectors, parsed as a real API server parses them.

use serde_json::Value;

use crate::resources::ResourceType;
use crate::store::ApiError;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Op {
    Eq(String),
    NotEq(String),
    In(Vec<String>),
    NotIn(Vec<String>),
    Exists,
    NotExists,
    Gt(i64),
    Lt(i64),
}

/// A parsed label selector (requirements ANDed).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabelSelector {
    reqs: Vec<(String, Op)>,
}

impl LabelSelector {
    /// Parse `a=b,c!=d,e in (x,y),f notin (z),g,!h`.
    pub fn parse(s: &str) -> Result<LabelSelector, ApiError> {
        let mut reqs = Vec::new();
        for part in split_top_level(s) {
            let part = part.trim();
            if part.is_empty() {
                continue;
            }
            reqs.push(
                parse_requirement(part).map_err(|m| {
                    ApiError::bad_request(format!("unable to parse requirement: {m}"))
                })?,
            );
        }
        Ok(LabelSelector { reqs })
    }

    pub fn is_empty(&self) -> bool {
        self.reqs.is_empty()
    }

    pub fn matches(&self, obj: &Value) -> bool {
        let labels = obj.pointer("/metadata/labels").and_then(Value::as_object);
        let get = |k: &str| labels.and_then(|l| l.get(k)).and_then(Value::as_str);
        self.reqs.iter().all(|(key, op)| {
            let v = get(key);
            match op {
                Op::Eq(want) => v == Some(want.as_str()),
                Op::NotEq(want) => v != Some(want.as_str()),
                Op::In(set) => v.is_some_and(|v| set.iter().any(|s| s == v)),
                Op::NotIn(set) => v.is_none_or(|v| !set.iter().any(|s| s == v)),
                Op::Exists => v.is_some(),
                Op::NotExists => v.is_none(),
                Op::Gt(n) => v
                    .and_then(|v| v.parse::<i64>().ok())
                    .is_some_and(|v| v > *n),
                Op::Lt(n) => v
                    .and_then(|v| v.parse::<i64>().ok())
                    .is_some_and(|v| v < *n),
            }
        })
    }
}

/// Split on commas that are not inside parentheses.
fn split_top_level(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut depth = 0i32;
    let mut start = 0;
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

fn valid_key(k: &str) -> bool {
    !k.is_empty()
        && k.len() <= 317
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'))
}

fn valid_value(v: &str) -> bool {
    v.len() <= 63
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

fn parse_set(rest: &str) -> Result<Vec<String>, String> {
    let rest = rest.trim();
    let inner = rest
        .strip_prefix('(')
        .and_then(|r| r.strip_suffix(')'))
        .ok_or_else(|| format!("found '{rest}', expected: '('"))?;
    let vals: Vec<String> = inner
        .split(',')
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
        .collect();
    if let Some(bad) = vals.iter().find(|v| !valid_value(v)) {
        return Err(format!("invalid label value: \"{bad}\""));
    }
    Ok(vals)
}

fn parse_requirement(part: &str) -> Result<(String, Op), String> {
    if let Some(key) = part.strip_prefix('!') {
        let key = key.trim();
        if !valid_key(key) {
            return Err(format!("invalid label key \"{key}\""));
        }
        return Ok((key.to_string(), Op::NotExists));
    }
    // Set-based: `key in (..)`, `key notin (..)`.
    let words: Vec<&str> = part.splitn(2, char::is_whitespace).collect();
    if words.len() == 2 {
        let key = words[0];
        let rest = words[1].trim_start();
        if let Some(set) = rest.strip_prefix("notin") {
            if !valid_key(key) {
                return Err(format!("invalid label key \"{key}\""));
            }
            return Ok((key.to_string(), Op::NotIn(parse_set(set)?)));
        }
        if let Some(set) = rest.strip_prefix("in") {
            if set.trim_start().starts_with('(') {
                if !valid_key(key) {
                    return Err(format!("invalid label key \"{key}\""));
                }
                return Ok((key.to_string(), Op::In(parse_set(set)?)));
            }
        }
    }
    for (tok, mk) in [("!=", 0u8), ("==", 1), ("=", 1), (">", 2), ("<", 3)] {
        if let Some((k, v)) = part.split_once(tok) {
            let (k, v) = (k.trim(), v.trim());
            if !valid_key(k) {
                return Err(format!("invalid label key \"{k}\""));
            }
            let op = match mk {
                0 | 1 => {
                    if !valid_value(v) {
                        return Err(format!("invalid label value: \"{v}\""));
                    }
                    if mk == 0 {
                        Op::NotEq(v.to_string())
                    } else {
                        Op::Eq(v.to_string())
                    }
                }
                _ => {
                    let n = v.parse::<i64>().map_err(|_| {
                        format!("for 'Gt', 'Lt' operators, the value must be an integer: {v}")
                    })?;
                    if mk == 2 {
                        Op::Gt(n)
                    } else {
                        Op::Lt(n)
                    }
                }
            };
            return Ok((k.to_string(), op));
        }
    }
    if !valid_key(part) {
        return Err(format!("invalid label key \"{part}\""));
    }
    Ok((part.to_string(), Op::Exists))
}

/// A parsed field selector: `field=value`, `field==value`, `field!=value`, ANDed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSelector {
    reqs: Vec<(String, bool, String)>,
}

/// Field selector labels a kind supports, beyond metadata.name/namespace.
fn supported_fields(t: &ResourceType) -> &'static [&'static str] {
    match (t.group, t.kind) {
        ("", "Pod") => &[
            "spec.nodeName",
            "spec.restartPolicy",
            "spec.schedulerName",
            "spec.serviceAccountName",
            "spec.hostNetwork",
            "status.phase",
            "status.podIP",
            "status.nominatedNodeName",
        ],
        ("", "Namespace") => &["status.phase"],
        ("", "Node") => &["spec.unschedulable"],
        ("", "Service") => &["spec.clusterIP", "spec.type"],
        ("", "Secret") => &["type"],
        ("", "Event") => &[
            "involvedObject.kind",
            "involvedObject.namespace",
            "involvedObject.name",
            "involvedObject.uid",
            "involvedObject.apiVersion",
            "involvedObject.resourceVersion",
            "involvedObject.fieldPath",
            "reason",
            "reportingComponent",
            "source",
            "type",
        ],
        ("apps", "ReplicaSet") => &["status.replicas"],
        _ => &[],
    }
}

impl FieldSelector {
    /// Parse for a resource type; unsupported fields are a 400 like a real
    /// API server's.
    pub fn parse(s: &str, t: &ResourceType) -> Result<FieldSelector, ApiError> {
        let mut reqs = Vec::new();
        for part in s.split(',') {
            let part = part.trim();
            if part.is_empty() {
                continue;
            }
            let (field, neg, value) = if let Some((f, v)) = part.split_once("!=") {
                (f, true, v)
            } else if let Some((f, v)) = part.split_once("==") {
                (f, false, v)
            } else if let Some((f, v)) = part.split_once('=') {
                (f, false, v)
            } else {
                return Err(ApiError::bad_request(format!(
                    "invalid selector: '{s}'; can't understand '{part}'"
                )));
            };
            let field = field.trim();
            let ok = matches!(field, "metadata.name" | "metadata.namespace")
                || supported_fields(t).contains(&field);
            if !ok {
                // kubectl prefixes `Unable to find "<gvr>" that match …` itself.
                return Err(ApiError::bad_request(format!(
                    "field label not supported: {field}"
                )));
            }
            reqs.push((field.to_string(), neg, value.trim().to_string()));
        }
        Ok(FieldSelector { reqs })
    }

    pub fn matches(&self, obj: &Value) -> bool {
        self.reqs.iter().all(|(field, neg, want)| {
            let pointer = format!("/{}", field.replace('.', "/"));
            let have = match obj.pointer(&pointer) {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Bool(b)) => b.to_string(),
                Some(Value::Number(n)) => n.to_string(),
                Some(Value::Null) | None => match field.as_str() {
                    "spec.hostNetwork" | "spec.unschedulable" => "false".into(),
                    _ => String::new(),
                },
                Some(other) => other.to_string(),
            };
            (have == *want) != *neg
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::Registry;
    use serde_json::json;

    fn pod(labels: Value) -> Value {
        json!({"metadata": {"name": "p", "namespace": "foo", "labels": labels},
               "spec": {"nodeName": "n1"}, "status": {"phase": "Running"}})
    }

    #[test]
    fn label_selectors() {
        let p = pod(json!({"app": "httpbin", "version": "v1", "n": "5"}));
        let m = |s: &str| LabelSelector::parse(s).unwrap().matches(&p);
        assert!(m(""));
        assert!(m("app=httpbin"));
        assert!(m("app==httpbin,version=v1"));
        assert!(!m("app=httpbin,version=v2"));
        assert!(m("app!=sleep"));
        assert!(m("version in (v1, v2)"));
        assert!(!m("version notin (v1,v2)"));
        assert!(m("version notin (v3),app"));
        assert!(m("!missing"));
        assert!(!m("!app"));
        assert!(!m("missing"));
        assert!(m("missing!=x"));
        assert!(m("n>4,n<6"));
        assert!(LabelSelector::parse("app=(x").is_err());
        assert!(LabelSelector::parse("a b c").is_err());
        assert!(LabelSelector::parse("version in v1").is_err());
    }

    #[test]
    fn field_selectors() {
        let r = Registry::for_istio(24);
        let pods = r.by_plural("", "pods").unwrap();
        let p = pod(json!({}));
        let m = |s: &str| FieldSelector::parse(s, pods).unwrap().matches(&p);
        assert!(m("metadata.name=p"));
        assert!(m("metadata.namespace==foo,status.phase=Running"));
        assert!(!m("status.phase!=Running"));
        assert!(m("spec.nodeName=n1"));
        assert!(m("status.podIP="));
        let e = FieldSelector::parse("spec.foo=bar", pods).unwrap_err();
        assert_eq!(e.code, 400);
        assert!(
            e.message.ends_with("field label not supported: spec.foo"),
            "{}",
            e.message
        );
        let dr = r
            .by_plural("networking.istio.io", "destinationrules")
            .unwrap();
        assert!(FieldSelector::parse("status.phase=Running", dr).is_err());
        assert!(FieldSelector::parse("metadata.name=x", dr).is_ok());
    }
}
