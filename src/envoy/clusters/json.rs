//! `/clusters?format=json` (`envoy.admin.v3.Clusters`), snake_case from
//! current Envoy and camelCase from older ones — both appear in the wild.
//!
//! Place in the flow: part of [`super`] (envoy/ parsers).
//!
//! Source: envoyproxy/envoy `api/envoy/admin/v3/clusters.proto`
//! (`ClusterStatus`, `HostStatus`, `HostHealthStatus`).

use serde_json::Value;

use super::{cluster_mut, non_empty, ClusterStatus, Clusters, ClustersError, HostStatus};

fn get_any<'a>(v: &'a Value, snake: &str, camel: &str) -> Option<&'a Value> {
    v.get(snake)
        .or_else(|| v.get(camel))
        .filter(|x| !x.is_null())
}

fn json_u64(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

fn json_address(v: &Value) -> Option<String> {
    if let Some(sa) = get_any(v, "socket_address", "socketAddress") {
        let addr = sa.get("address").and_then(Value::as_str).unwrap_or("");
        let port = get_any(sa, "port_value", "portValue").and_then(json_u64);
        return Some(match port {
            Some(p) if addr.contains(':') => format!("[{addr}]:{p}"),
            Some(p) => format!("{addr}:{p}"),
            None => addr.to_string(),
        });
    }
    if let Some(p) = v.get("pipe") {
        return Some(format!(
            "unix://{}",
            p.get("path").and_then(Value::as_str).unwrap_or("")
        ));
    }
    if let Some(ia) = get_any(v, "envoy_internal_address", "envoyInternalAddress") {
        let l = get_any(ia, "server_listener_name", "serverListenerName")
            .and_then(Value::as_str)
            .unwrap_or("");
        let id = get_any(ia, "endpoint_id", "endpointId")
            .and_then(Value::as_str)
            .unwrap_or("");
        return Some(format!("envoy://{l}/{id}"));
    }
    None
}

/// Parse `/clusters?format=json` (snake_case from current Envoy, camelCase from
/// older ones — both appear in the wild).
/// `circuit_breakers.thresholds[]` → priority (`default`, `high`) → limit → value.
fn circuit_breakers(cs: &Value, c: &mut ClusterStatus) {
    let Some(th) = get_any(cs, "circuit_breakers", "circuitBreakers")
        .and_then(|cb| cb.get("thresholds"))
        .and_then(Value::as_array)
    else {
        return;
    };
    for t in th {
        let prio = t
            .get("priority")
            .and_then(Value::as_str)
            .unwrap_or("DEFAULT")
            .to_ascii_lowercase();
        let entry = c.circuit_breakers.entry(prio).or_default();
        for (snake, camel) in [
            ("max_connections", "maxConnections"),
            ("max_pending_requests", "maxPendingRequests"),
            ("max_requests", "maxRequests"),
            ("max_retries", "maxRetries"),
        ] {
            if let Some(n) = get_any(t, snake, camel).and_then(json_u64) {
                entry.insert(snake.to_string(), n);
            }
        }
    }
}

/// `HostHealthStatus` as the text output's flags (`healthFlagsToString`).
fn health_flags(hsv: &Value) -> Vec<String> {
    const FLAGS: &[(&str, &str, &str)] = &[
        (
            "failed_active_health_check",
            "failedActiveHealthCheck",
            "failed_active_hc",
        ),
        (
            "failed_outlier_check",
            "failedOutlierCheck",
            "failed_outlier_check",
        ),
        (
            "failed_active_degraded_check",
            "failedActiveDegradedCheck",
            "degraded_active_hc",
        ),
        (
            "pending_dynamic_removal",
            "pendingDynamicRemoval",
            "pending_dynamic_removal",
        ),
        ("pending_active_hc", "pendingActiveHc", "pending_active_hc"),
        (
            "excluded_via_immediate_hc_fail",
            "excludedViaImmediateHcFail",
            "excluded_via_immediate_hc_fail",
        ),
        ("active_hc_timeout", "activeHcTimeout", "active_hc_timeout"),
    ];
    let mut out: Vec<String> = FLAGS
        .iter()
        .filter(|(snake, camel, _)| {
            get_any(hsv, snake, camel)
                .and_then(Value::as_bool)
                .unwrap_or(false)
        })
        .map(|(_, _, text)| text.to_string())
        .collect();
    match get_any(hsv, "eds_health_status", "edsHealthStatus").and_then(Value::as_str) {
        Some("UNHEALTHY") | Some("TIMEOUT") => out.push("failed_eds_health".into()),
        Some("DEGRADED") => out.push("degraded_eds_health".into()),
        Some("DRAINING") => out.push("eds_status_draining".into()),
        _ => {}
    }
    out
}

fn str_field(v: &Value, snake: &str, camel: &str) -> Option<String> {
    get_any(v, snake, camel)
        .and_then(Value::as_str)
        .and_then(non_empty)
}

/// One `host_statuses[]` entry; `path` names it in errors.
fn host_status(hs: &Value, path: &str) -> Result<HostStatus, ClustersError> {
    let address = hs
        .get("address")
        .and_then(json_address)
        .ok_or_else(|| ClustersError::Shape {
            path: format!("{path}.address"),
            expected: "a socket, pipe or internal address",
        })?;
    let loc = hs.get("locality").unwrap_or(&Value::Null);
    let mut h = HostStatus {
        address,
        hostname: str_field(hs, "hostname", "hostname"),
        weight: hs.get("weight").and_then(json_u64),
        priority: hs.get("priority").and_then(json_u64),
        region: str_field(loc, "region", "region"),
        zone: str_field(loc, "zone", "zone"),
        sub_zone: str_field(loc, "sub_zone", "subZone"),
        success_rate: get_any(hs, "success_rate", "successRate")
            .and_then(|s| s.get("value"))
            .and_then(Value::as_f64),
        ..HostStatus::default()
    };
    for st in hs
        .get("stats")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let Some(n) = st.get("name").and_then(Value::as_str) else {
            continue;
        };
        // absent value = 0 (proto3 JSON omits zeros); uint64 is a JSON string.
        let val = st.get("value").and_then(json_u64).unwrap_or(0);
        h.counters.insert(n.to_string(), val);
    }
    if let Some(hsv) = get_any(hs, "health_status", "healthStatus") {
        h.health_flags = health_flags(hsv);
    }
    Ok(h)
}

/// Parse `/clusters?format=json` (snake_case from current Envoy, camelCase from
/// older ones — both appear in the wild).
pub fn parse_clusters_json(v: &Value) -> Result<Clusters, ClustersError> {
    let statuses = match get_any(v, "cluster_statuses", "clusterStatuses") {
        Some(Value::Array(a)) => a.as_slice(),
        Some(_) => {
            return Err(ClustersError::Shape {
                path: "cluster_statuses".into(),
                expected: "a list",
            })
        }
        None if v.is_object() => &[],
        None => {
            return Err(ClustersError::Shape {
                path: "(root)".into(),
                expected: "an object",
            })
        }
    };
    let mut out = Clusters::default();
    for (i, cs) in statuses.iter().enumerate() {
        let Some(name) = cs.get("name").and_then(Value::as_str) else {
            return Err(ClustersError::Shape {
                path: format!("cluster_statuses[{i}].name"),
                expected: "a string",
            });
        };
        let c = cluster_mut(&mut out, name);
        c.added_via_api = get_any(cs, "added_via_api", "addedViaApi").and_then(Value::as_bool);
        c.observability_name = get_any(cs, "observability_name", "observabilityName")
            .and_then(Value::as_str)
            .map(String::from);
        circuit_breakers(cs, c);
        let hosts = get_any(cs, "host_statuses", "hostStatuses")
            .and_then(Value::as_array)
            .into_iter()
            .flatten();
        for (j, hs) in hosts.enumerate() {
            let h = host_status(hs, &format!("cluster_statuses[{i}].host_statuses[{j}]"))?;
            c.hosts.push(h);
        }
    }
    Ok(out)
}
