//! Collect stage: DestinationRules that cannot touch the diagnosis are not
//! kept in the snapshot.
//!
//! Istio config is listed cluster-wide (one list per kind: the API has no
//! selector on `spec.host`), so a mesh with a rule per service brings one
//! DestinationRule per service. A rule matters to this diagnosis only if its
//! host can name a host the snapshot holds: a Service in it (target, routed
//! to, gateway), a host of a VirtualService or ServiceEntry in it, a route
//! destination. Istio compares a rule's host, resolved with
//! `ResolveShortnameToFQDN` (istio/istio pilot/pkg/model/config.go, 1.1–1.28:
//! a name without a dot becomes `NAME.RULE_NS.svc.DOMAIN`, anything else is
//! taken as written), with service hosts (`MostSpecificHostMatch`), so a rule
//! is kept when its host is a wildcard, an IP, or names (as written, or as
//! the likely meant `name.ns[.svc]`, which `istio::host::probable_intent`
//! diagnoses) one of those hosts. Everything else, and every other kind,
//! stays.

use std::collections::BTreeSet;

use serde_json::Value;

use super::objects;

/// `(name, namespace)` a host can stand for (`reviews` in `foo`,
/// `reviews.foo`, `reviews.foo.svc[.DOMAIN]`); `None` for wildcards and
/// IPs (which are always kept).
fn service_key(host: &str, namespace: &str) -> Option<(String, String)> {
    let host = host.trim().trim_end_matches('.');
    if host.is_empty() || host.starts_with('*') || host.parse::<std::net::IpAddr>().is_ok() {
        return None;
    }
    let mut parts = host.split('.');
    let name = parts.next()?.to_string();
    let ns = parts.next().unwrap_or(namespace).to_string();
    Some((name, ns))
}

/// Every host string the kept objects name, with the namespace a short name
/// is read in.
fn named_hosts(objs: &[Value]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let strs = |v: Option<&Value>| -> Vec<String> {
        v.and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect()
    };
    for o in objs {
        let ns = objects::namespace(o).to_string();
        match o.get("kind").and_then(Value::as_str) {
            Some("Service") => out.push((objects::name(o).to_string(), ns)),
            Some("ServiceEntry") => {
                for h in strs(o.pointer("/spec/hosts")) {
                    out.push((h, ns.clone()));
                }
            }
            Some("VirtualService") => {
                for h in strs(o.pointer("/spec/hosts")) {
                    out.push((h, ns.clone()));
                }
                for section in ["http", "tcp", "tls"] {
                    for r in o
                        .pointer(&format!("/spec/{section}"))
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                    {
                        let mut hosts: Vec<&Value> = r
                            .get("route")
                            .and_then(Value::as_array)
                            .into_iter()
                            .flatten()
                            .filter_map(|d| d.pointer("/destination/host"))
                            .collect();
                        hosts.extend(r.pointer("/mirror/host"));
                        for h in hosts.into_iter().filter_map(Value::as_str) {
                            out.push((h.to_string(), ns.clone()));
                        }
                    }
                }
            }
            _ => {}
        }
    }
    out
}

/// Drops the DestinationRules no host of `objs` can match; returns how
/// many. Nothing is dropped when `objs` hold no Service (a host-only target:
/// nothing to compare with).
pub fn drop_unrelated_rules(objs: &mut Vec<Value>) -> usize {
    let named = named_hosts(objs);
    if !objs
        .iter()
        .any(|o| o.get("kind").and_then(Value::as_str) == Some("Service"))
    {
        return 0;
    }
    // Short names only ever stand for `name.ns`: exact only with a dot.
    let exact: BTreeSet<&str> = named
        .iter()
        .map(|(h, _)| h.as_str())
        .filter(|h| h.contains('.'))
        .collect();
    let keys: BTreeSet<(String, String)> = named
        .iter()
        .filter_map(|(h, ns)| service_key(h, ns))
        .collect();
    let before = objs.len();
    objs.retain(|o| {
        if o.get("kind").and_then(Value::as_str) != Some("DestinationRule") {
            return true;
        }
        let Some(host) = o.pointer("/spec/host").and_then(Value::as_str) else {
            return true;
        };
        exact.contains(host)
            || match service_key(host, objects::namespace(o)) {
                None => true,
                Some(k) => keys.contains(&k),
            }
    });
    before - objs.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn dr(ns: &str, name: &str, host: &str) -> Value {
        json!({"kind": "DestinationRule", "metadata": {"name": name, "namespace": ns}, "spec": {"host": host}})
    }

    #[test]
    fn rules_for_hosts_the_snapshot_names_stay() {
        let mut objs = vec![
            json!({"kind": "Service", "metadata": {"name": "httpbin", "namespace": "foo"}}),
            json!({"kind": "VirtualService", "metadata": {"name": "v", "namespace": "foo"},
                "spec": {"hosts": ["httpbin"], "http": [{"route": [{"destination": {"host": "httpbin-v2"}}]}]}}),
            json!({"kind": "ServiceEntry", "metadata": {"name": "e", "namespace": "foo"},
                "spec": {"hosts": ["api.example.com"]}}),
            dr("foo", "short", "httpbin"),
            dr("bar", "fqdn", "httpbin.foo.svc.cluster.local"),
            dr("bar", "mistake", "httpbin.foo"),
            dr("foo", "routed", "httpbin-v2"),
            dr("foo", "external", "api.example.com"),
            dr("istio-system", "wild", "*.local"),
            dr("foo", "ip", "10.0.0.1"),
            dr("bar", "other-ns-short", "httpbin"),
            dr("mesh-001", "unrelated", "svc-0042"),
            dr("bar", "unrelated-fqdn", "svc-7.mesh-000.svc.cluster.local"),
        ];
        let n = drop_unrelated_rules(&mut objs);
        let kept: Vec<&str> = objs
            .iter()
            .filter(|o| o["kind"] == "DestinationRule")
            .map(objects::name)
            .collect();
        assert_eq!(
            kept,
            ["short", "fqdn", "mistake", "routed", "external", "wild", "ip"]
        );
        assert_eq!(n, 3);
    }

    #[test]
    fn without_a_service_everything_stays() {
        let mut objs = vec![dr("foo", "a", "x"), dr("bar", "b", "y")];
        assert_eq!(drop_unrelated_rules(&mut objs), 0);
        assert_eq!(objs.len(), 2);
    }
}
