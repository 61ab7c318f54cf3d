//! PATCH bodies: JSON merge patch (RFC 7386), JSON patch (RFC 6902), a
//! strategic merge patch for the built-in kinds (lists of known fields merged
//! by key, `$patch` directives), and server-side apply approximated as a
//! merge (no field ownership is tracked).

use serde_json::{Map, Value};

use crate::store::ApiError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchKind {
    Merge,
    Json,
    Strategic,
    Apply,
}

impl PatchKind {
    /// From the request's Content-Type. Strategic merge on an Istio kind is
    /// treated as a merge patch (a real API server refuses it for CRDs).
    pub fn from_content_type(ct: &str, custom: bool) -> Option<PatchKind> {
        let mime = ct
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        Some(match mime.as_str() {
            "application/merge-patch+json" => PatchKind::Merge,
            "application/json-patch+json" => PatchKind::Json,
            "application/strategic-merge-patch+json" if custom => PatchKind::Merge,
            "application/strategic-merge-patch+json" => PatchKind::Strategic,
            "application/apply-patch+yaml" | "application/apply-patch+json" => PatchKind::Apply,
            _ => return None,
        })
    }
}

/// Apply `patch` of `kind` to `doc` in place.
pub fn apply_patch(kind: PatchKind, doc: &mut Value, patch: &Value) -> Result<(), ApiError> {
    match kind {
        PatchKind::Merge | PatchKind::Apply => {
            if !patch.is_object() {
                return Err(ApiError::bad_request("merge patch must be a JSON object"));
            }
            json_patch::merge(doc, patch);
            Ok(())
        }
        PatchKind::Json => {
            let ops: json_patch::Patch = serde_json::from_value(patch.clone())
                .map_err(|e| ApiError::bad_request(format!("the json patch is invalid: {e}")))?;
            json_patch::patch(doc, &ops).map_err(|e| {
                ApiError::invalid(format!(
                    "the server rejected our request due to an error in our request: {e}"
                ))
            })
        }
        PatchKind::Strategic => {
            if !patch.is_object() {
                return Err(ApiError::bad_request(
                    "strategic merge patch must be a JSON object",
                ));
            }
            strategic_merge(doc, patch);
            Ok(())
        }
    }
}

/// The merge key of a list field of the built-in kinds, if it is merged
/// rather than replaced.
fn merge_key(field: &str, items: &[Value]) -> Option<&'static str> {
    Some(match field {
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "env"
        | "volumes"
        | "imagePullSecrets"
        | "containerStatuses"
        | "initContainerStatuses" => "name",
        "volumeMounts" => "mountPath",
        "volumeDevices" => "devicePath",
        "hostAliases" => "ip",
        "conditions" => "type",
        "readinessGates" => "conditionType",
        "ownerReferences" => "uid",
        "ports" => {
            if items.iter().any(|i| i.get("containerPort").is_some()) {
                "containerPort"
            } else {
                "port"
            }
        }
        _ => return None,
    })
}

/// Lists of scalars merged as sets.
fn is_set_list(field: &str) -> bool {
    matches!(field, "finalizers")
}

fn strategic_merge(doc: &mut Value, patch: &Value) {
    let Some(patch_map) = patch.as_object() else {
        *doc = patch.clone();
        return;
    };
    if patch_map.get("$patch").and_then(Value::as_str) == Some("replace") {
        let mut p = patch_map.clone();
        p.remove("$patch");
        *doc = Value::Object(p);
        return;
    }
    if !doc.is_object() {
        *doc = Value::Object(Map::new());
    }
    let target = doc.as_object_mut().expect("object");
    let mut retain: Option<Vec<String>> = None;
    for (k, v) in patch_map {
        if k == "$retainKeys" {
            retain = v.as_array().map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(String::from)
                    .collect()
            });
            continue;
        }
        if let Some(field) = k.strip_prefix("$deleteFromPrimitiveList/") {
            if let (Some(list), Some(del)) = (
                target.get_mut(field).and_then(Value::as_array_mut),
                v.as_array(),
            ) {
                list.retain(|x| !del.contains(x));
            }
            continue;
        }
        if k.starts_with('$') {
            // $setElementOrder/… and other directives: order is not modelled.
            continue;
        }
        match v {
            Value::Null => {
                target.remove(k);
            }
            Value::Object(o) if o.get("$patch").and_then(Value::as_str) == Some("delete") => {
                target.remove(k);
            }
            Value::Object(_) => {
                let entry = target.entry(k.clone()).or_insert(Value::Null);
                strategic_merge(entry, v);
            }
            Value::Array(items) => {
                let existing = target.get(k).and_then(Value::as_array).cloned();
                target.insert(k.clone(), merge_list(k, existing, items));
            }
            _ => {
                target.insert(k.clone(), v.clone());
            }
        }
    }
    if let Some(keep) = retain {
        target.retain(|k, _| keep.contains(k));
    }
}

fn merge_list(field: &str, existing: Option<Vec<Value>>, items: &[Value]) -> Value {
    let replace_all = items
        .iter()
        .any(|i| i.get("$patch").and_then(Value::as_str) == Some("replace"));
    let items: Vec<&Value> = items
        .iter()
        .filter(|i| i.get("$patch").and_then(Value::as_str) != Some("replace"))
        .collect();
    let mut out = match existing {
        Some(e) if !replace_all => e,
        _ => Vec::new(),
    };
    if is_set_list(field) {
        for i in items {
            if !out.contains(i) {
                out.push(i.clone());
            }
        }
        return Value::Array(out);
    }
    let owned: Vec<Value> = items.iter().map(|v| (*v).clone()).collect();
    let Some(key) = merge_key(field, &owned) else {
        return Value::Array(owned);
    };
    for item in owned {
        let id = item.get(key).cloned();
        let pos = id
            .as_ref()
            .and_then(|id| out.iter().position(|e| e.get(key) == Some(id)));
        let delete = item.get("$patch").and_then(Value::as_str) == Some("delete");
        match (pos, delete) {
            (Some(p), true) => {
                out.remove(p);
            }
            (None, true) => {}
            (Some(p), false) => strategic_merge(&mut out[p], &item),
            (None, false) => {
                let mut fresh = Value::Null;
                strategic_merge(&mut fresh, &item);
                out.push(fresh);
            }
        }
    }
    Value::Array(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn content_types() {
        assert_eq!(
            PatchKind::from_content_type("application/strategic-merge-patch+json", true),
            Some(PatchKind::Merge)
        );
        assert_eq!(
            PatchKind::from_content_type("application/strategic-merge-patch+json", false),
            Some(PatchKind::Strategic)
        );
        assert_eq!(
            PatchKind::from_content_type("application/merge-patch+json; charset=utf-8", false),
            Some(PatchKind::Merge)
        );
        assert_eq!(PatchKind::from_content_type("text/plain", false), None);
    }

    #[test]
    fn merge_and_json_patches() {
        let mut doc =
            json!({"spec": {"host": "a", "trafficPolicy": {"tls": {"mode": "ISTIO_MUTUAL"}}}});
        apply_patch(
            PatchKind::Merge,
            &mut doc,
            &json!({"spec": {"trafficPolicy": {"tls": null}, "subsets": [{"name": "v1"}]}}),
        )
        .unwrap();
        assert_eq!(
            doc,
            json!({"spec": {"host": "a", "trafficPolicy": {}, "subsets": [{"name": "v1"}]}})
        );
        apply_patch(
            PatchKind::Json,
            &mut doc,
            &json!([{"op": "replace", "path": "/spec/host", "value": "b"}]),
        )
        .unwrap();
        assert_eq!(doc["spec"]["host"], "b");
        let e = apply_patch(
            PatchKind::Json,
            &mut doc,
            &json!([{"op": "remove", "path": "/spec/nope"}]),
        )
        .unwrap_err();
        assert_eq!(e.code, 422);
        assert_eq!(doc["spec"]["host"], "b");
    }

    #[test]
    fn strategic_merges_lists_by_key() {
        let mut doc = json!({"spec": {"template": {"spec": {"containers": [
            {"name": "app", "image": "a:1", "env": [{"name": "X", "value": "1"}]},
            {"name": "istio-proxy", "image": "proxy:1"}
        ]}}, "replicas": 1}, "metadata": {"finalizers": ["a"]}});
        let patch = json!({"spec": {"template": {"spec": {
            "$setElementOrder/containers": [{"name": "app"}, {"name": "istio-proxy"}],
            "containers": [
                {"name": "app", "image": "a:2", "env": [{"name": "Y", "value": "2"}]},
                {"name": "istio-proxy", "$patch": "delete"},
                {"name": "new", "image": "n"}
            ]}}, "replicas": null}, "metadata": {"finalizers": ["b", "a"]}});
        apply_patch(PatchKind::Strategic, &mut doc, &patch).unwrap();
        let cs = doc["spec"]["template"]["spec"]["containers"]
            .as_array()
            .unwrap();
        assert_eq!(cs.len(), 2);
        assert_eq!(cs[0]["image"], "a:2");
        assert_eq!(cs[0]["env"].as_array().unwrap().len(), 2);
        assert_eq!(cs[1]["name"], "new");
        assert!(doc["spec"].get("replicas").is_none());
        assert_eq!(doc["metadata"]["finalizers"], json!(["a", "b"]));
        let mut svc = json!({"spec": {"ports": [{"port": 80, "name": "http"}, {"port": 443}]}});
        apply_patch(
            PatchKind::Strategic,
            &mut svc,
            &json!({"spec": {"ports": [{"port": 80, "targetPort": 8080}]}}),
        )
        .unwrap();
        assert_eq!(svc["spec"]["ports"].as_array().unwrap().len(), 2);
        assert_eq!(svc["spec"]["ports"][0]["targetPort"], 8080);
        apply_patch(
            PatchKind::Strategic,
            &mut svc,
            &json!({"spec": {"ports": [{"$patch": "replace"}, {"port": 1}]}}),
        )
        .unwrap();
        assert_eq!(svc["spec"]["ports"], json!([{"port": 1}]));
    }
}
