//! The part of kube-apiserver's object validation the lab reproduces
//! (kubernetes/kubernetes `pkg/apis/core/validation/validation.go`).
//!
//! - Service ports (`ValidateService` → `validateServicePort` with
//!   `requireName = len(spec.ports) > 1`): every port of a multi-port
//!   Service needs a `name` (`spec.ports[i].name: Required value`), and
//!   names are unique (`spec.ports[i].name: Duplicate value: "x"`).
//!
//! Errors are `422 Invalid` Status objects as the API server builds them
//! (`errors.NewInvalid`): message `<Kind> "<name>" is invalid: <errors>`
//! (one error as is, several as `[a, b]`), details `{name, kind, causes}`,
//! from which kubectl prints `The Service "x" is invalid: …`.

use crate::resources::ResourceType;
use crate::store::ApiError;
use serde_json::{json, Value};

/// One field error (`field.Error`).
struct FieldError {
    field: String,
    /// `FieldValueRequired`, `FieldValueDuplicate`, …
    reason: &'static str,
    /// `Required value`, `Duplicate value: "http"`, …
    message: String,
}

fn service_errors(obj: &Value) -> Vec<FieldError> {
    let ports = obj["spec"]["ports"].as_array().cloned().unwrap_or_default();
    let mut errs = Vec::new();
    let mut seen: Vec<&str> = Vec::new();
    for (i, p) in ports.iter().enumerate() {
        let name = p["name"].as_str().unwrap_or("");
        if ports.len() > 1 && name.is_empty() {
            errs.push(FieldError {
                field: format!("spec.ports[{i}].name"),
                reason: "FieldValueRequired",
                message: "Required value".into(),
            });
        } else if !name.is_empty() && seen.contains(&name) {
            errs.push(FieldError {
                field: format!("spec.ports[{i}].name"),
                reason: "FieldValueDuplicate",
                message: format!("Duplicate value: \"{name}\""),
            });
        }
        seen.push(name);
    }
    errs
}

/// Validate an object about to be stored; `Invalid` like the API server.
pub fn validate(t: &ResourceType, obj: &Value) -> Result<(), ApiError> {
    let errs = match (t.group, t.kind) {
        ("", "Service") => service_errors(obj),
        _ => Vec::new(),
    };
    if errs.is_empty() {
        return Ok(());
    }
    let name = obj["metadata"]["name"].as_str().unwrap_or("");
    let texts: Vec<String> = errs
        .iter()
        .map(|e| format!("{}: {}", e.field, e.message))
        .collect();
    let joined = if texts.len() == 1 {
        texts[0].clone()
    } else {
        format!("[{}]", texts.join(", "))
    };
    let kind = if t.group.is_empty() {
        t.kind.to_string()
    } else {
        format!("{}.{}", t.kind, t.group)
    };
    let mut err = ApiError::invalid(format!("{kind} \"{name}\" is invalid: {joined}"));
    let causes: Vec<Value> = errs
        .iter()
        .map(|e| json!({"reason": e.reason, "message": e.message, "field": e.field}))
        .collect();
    let mut details = json!({"name": name, "kind": t.kind, "causes": causes});
    if !t.group.is_empty() {
        details["group"] = json!(t.group);
    }
    err.details = Some(details);
    Err(err)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::Registry;

    #[test]
    fn multi_port_service_needs_port_names() {
        let reg = Registry::for_istio(24);
        let t = reg.by_kind("", "Service").unwrap();
        let svc = |ports: Value| json!({"metadata": {"name": "web"}, "spec": {"ports": ports}});
        assert!(validate(t, &svc(json!([{"port": 80}]))).is_ok());
        assert!(validate(
            t,
            &svc(json!([{"name": "a", "port": 80}, {"name": "b", "port": 81}]))
        )
        .is_ok());
        let e = validate(t, &svc(json!([{"name": "http", "port": 80}, {"port": 81}]))).unwrap_err();
        assert_eq!(e.code, 422);
        assert_eq!(
            e.message,
            "Service \"web\" is invalid: spec.ports[1].name: Required value"
        );
        assert_eq!(
            e.details.unwrap()["causes"][0],
            json!({"reason": "FieldValueRequired", "message": "Required value", "field": "spec.ports[1].name"})
        );
        let e = validate(t, &svc(json!([{"port": 80}, {"port": 81}]))).unwrap_err();
        assert_eq!(
            e.message,
            "Service \"web\" is invalid: [spec.ports[0].name: Required value, spec.ports[1].name: Required value]"
        );
    }
}
