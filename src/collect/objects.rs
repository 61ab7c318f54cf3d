//! Pure helpers over raw Kubernetes objects (JSON): names, labels, selectors,
//! pod state. Collection decides with these; they never do I/O.

use std::collections::BTreeMap;

use serde_json::Value;

pub fn name(o: &Value) -> &str {
    o.pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("")
}

pub fn namespace(o: &Value) -> &str {
    o.pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// A string map at `pointer` (labels, a Service selector, matchLabels).
pub fn string_map(o: &Value, pointer: &str) -> BTreeMap<String, String> {
    o.pointer(pointer)
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

pub fn labels(o: &Value) -> BTreeMap<String, String> {
    string_map(o, "/metadata/labels")
}

/// A Service's selector; `None` when it has none (endpoints managed by hand).
pub fn service_selector(svc: &Value) -> Option<BTreeMap<String, String>> {
    let sel = string_map(svc, "/spec/selector");
    (!sel.is_empty()).then_some(sel)
}

/// Every pair of `selector` is in `labels`. An empty selector selects nothing
/// (that is what a Service without selector means).
pub fn selector_matches(
    selector: &BTreeMap<String, String>,
    labels: &BTreeMap<String, String>,
) -> bool {
    !selector.is_empty() && selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

/// `a=b,c=d` for a ListParams label selector.
pub fn selector_string(selector: &BTreeMap<String, String>) -> String {
    selector
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// A `metav1.LabelSelector` (matchLabels + matchExpressions) as selector text;
/// `None` if it is empty or uses an unknown operator.
pub fn label_selector_string(sel: &Value) -> Option<String> {
    let mut parts: Vec<String> = string_map(sel, "/matchLabels")
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    for e in sel
        .get("matchExpressions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let key = e.get("key").and_then(Value::as_str)?;
        let values: Vec<&str> = e
            .get("values")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        match e.get("operator").and_then(Value::as_str)? {
            "In" => parts.push(format!("{key} in ({})", values.join(","))),
            "NotIn" => parts.push(format!("{key} notin ({})", values.join(","))),
            "Exists" => parts.push(key.to_string()),
            "DoesNotExist" => parts.push(format!("!{key}")),
            _ => return None,
        }
    }
    (!parts.is_empty()).then(|| parts.join(","))
}

pub fn is_running(pod: &Value) -> bool {
    pod.pointer("/status/phase").and_then(Value::as_str) == Some("Running")
        && pod.pointer("/metadata/deletionTimestamp").is_none()
}

pub fn is_ready(pod: &Value) -> bool {
    is_running(pod)
        && pod
            .pointer("/status/conditions")
            .and_then(Value::as_array)
            .is_some_and(|cs| {
                cs.iter().any(|c| {
                    c.get("type").and_then(Value::as_str) == Some("Ready")
                        && c.get("status").and_then(Value::as_str) == Some("True")
                })
            })
}

/// `status.podIP` and every `status.podIPs[].ip`.
pub fn pod_ips(pod: &Value) -> Vec<String> {
    let mut ips: Vec<String> = Vec::new();
    if let Some(ip) = pod.pointer("/status/podIP").and_then(Value::as_str) {
        ips.push(ip.to_string());
    }
    for ip in pod
        .pointer("/status/podIPs")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|i| i.get("ip").and_then(Value::as_str))
    {
        if !ips.iter().any(|x| x == ip) {
            ips.push(ip.to_string());
        }
    }
    ips
}

/// Whether the object's namespace and name are valid Kubernetes names (they
/// go into URLs: port-forward, logs).
pub fn valid_ref(o: &Value) -> bool {
    crate::target::dns1123_label(namespace(o)).is_ok()
        && crate::target::dns1123_subdomain(name(o)).is_ok()
}

/// `ns/name`.
pub fn key(o: &Value) -> String {
    format!("{}/{}", namespace(o), name(o))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::istio::sidecar::has_sidecar;
    use serde_json::json;

    fn pod() -> Value {
        json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "httpbin-1", "namespace": "foo", "labels": {"app": "httpbin", "version": "v1"}},
            "spec": {"containers": [{"name": "httpbin"}, {"name": "istio-proxy"}]},
            "status": {"phase": "Running", "podIP": "10.0.0.4", "podIPs": [{"ip": "10.0.0.4"}, {"ip": "fd00::4"}],
                "conditions": [{"type": "Ready", "status": "True"}]}
        })
    }

    #[test]
    fn pod_state() {
        let p = pod();
        assert!(has_sidecar(&p));
        assert!(is_running(&p));
        assert!(is_ready(&p));
        assert_eq!(pod_ips(&p), vec!["10.0.0.4", "fd00::4"]);
        assert_eq!(key(&p), "foo/httpbin-1");
        assert!(valid_ref(&p));
        assert!(!valid_ref(
            &json!({"metadata": {"name": "../x", "namespace": "foo"}})
        ));

        let native = json!({"spec": {"containers": [{"name": "app"}], "initContainers": [{"name": "istio-proxy", "restartPolicy": "Always"}]}});
        assert!(has_sidecar(&native));
        let plain =
            json!({"spec": {"containers": [{"name": "app"}]}, "status": {"phase": "Pending"}});
        assert!(!has_sidecar(&plain));
        assert!(!is_running(&plain));
        assert!(!is_ready(&plain));
    }

    #[test]
    fn selectors() {
        let p = pod();
        let svc = json!({"spec": {"selector": {"app": "httpbin"}}});
        let sel = service_selector(&svc).unwrap();
        assert!(selector_matches(&sel, &labels(&p)));
        assert_eq!(selector_string(&sel), "app=httpbin");
        let other = json!({"spec": {"selector": {"app": "httpbin", "version": "v2"}}});
        assert!(!selector_matches(
            &service_selector(&other).unwrap(),
            &labels(&p)
        ));
        assert!(service_selector(&json!({"spec": {}})).is_none());
        assert!(!selector_matches(&BTreeMap::new(), &labels(&p)));

        let ls = json!({"matchLabels": {"app": "sleep"}, "matchExpressions": [
            {"key": "tier", "operator": "In", "values": ["a", "b"]},
            {"key": "x", "operator": "NotIn", "values": ["c"]},
            {"key": "y", "operator": "Exists"},
            {"key": "z", "operator": "DoesNotExist"}]});
        assert_eq!(
            label_selector_string(&ls).unwrap(),
            "app=sleep,tier in (a,b),x notin (c),y,!z"
        );
        assert_eq!(label_selector_string(&json!({})), None);
        assert_eq!(
            label_selector_string(
                &json!({"matchExpressions": [{"key": "a", "operator": "Bogus"}]})
            ),
            None
        );
    }
}
