//! Envoy `/clusters` output, text and `?format=json`.
//!
//! Text lines (envoyproxy/envoy `source/server/admin/clusters_handler.cc`):
//! `<cluster>::<key>::<value>` for cluster-level data (`default_priority::max_connections::1024`,
//! `high_priority::…`, `added_via_api::true`, `observability_name::…`,
//! `outlier::success_rate_average::-1`, `eds_service_name::…`) and
//! `<cluster>::<host>::<stat>::<value>` per host (`cx_active`, `cx_connect_fail`,
//! `rq_total`, `rq_error`, …, `hostname`, `health_flags`, `weight`, `region`,
//! `zone`, `sub_zone`, `canary`, `priority`, `success_rate`,
//! `local_origin_success_rate`). Cluster names contain `|`; hosts are
//! `ip:port`, `[v6]:port` (which contains `::`!) or `unix://path`.
//!
//! Health flags (`source/common/upstream/host_utility.cc` `healthFlagsToString`):
//! `healthy`, or a concatenation of `/failed_active_hc`, `/failed_outlier_check`,
//! `/failed_eds_health`, `/degraded_active_hc`, `/degraded_eds_health`,
//! `/pending_dynamic_removal`, `/pending_active_hc`,
//! `/excluded_via_immediate_hc_fail`, `/active_hc_timeout`, `/eds_status_draining`.

use std::collections::BTreeMap;

use serde_json::Value;

/// Why `/clusters` output could not be read at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClustersError {
    #[error("/clusters?format=json: {0}")]
    Json(String),
    #[error("/clusters?format=json: `{path}` should be {expected}")]
    Shape {
        path: String,
        expected: &'static str,
    },
}

/// One upstream host of a cluster.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct HostStatus {
    /// `10.1.2.3:8080`, `[fd00::1]:8080`, `unix:///sock`.
    pub address: String,
    pub hostname: Option<String>,
    /// Integer stats (`cx_active`, `cx_connect_fail`, `rq_total`, `rq_error`, …).
    pub counters: BTreeMap<String, u64>,
    /// Flags without the leading `/` (`failed_outlier_check`); empty = healthy.
    pub health_flags: Vec<String>,
    pub weight: Option<u64>,
    pub region: Option<String>,
    pub zone: Option<String>,
    pub sub_zone: Option<String>,
    pub priority: Option<u64>,
    /// `-1` when Envoy has too little data.
    pub success_rate: Option<f64>,
    /// Anything else, verbatim.
    pub other: BTreeMap<String, String>,
}

/// Flags that take a host out of load balancing (Envoy's coarse `Unhealthy`).
const UNHEALTHY_FLAGS: &[&str] = &[
    "failed_active_hc",
    "failed_outlier_check",
    "failed_eds_health",
    "pending_active_hc",
    "excluded_via_immediate_hc_fail",
    "active_hc_timeout",
    "eds_status_draining",
];

impl HostStatus {
    /// No flag that removes it from load balancing (degraded hosts still count as usable).
    pub fn is_healthy(&self) -> bool {
        !self
            .health_flags
            .iter()
            .any(|f| UNHEALTHY_FLAGS.contains(&f.as_str()))
    }

    /// Ejected by outlier detection.
    pub fn is_ejected(&self) -> bool {
        self.health_flags
            .iter()
            .any(|f| f == "failed_outlier_check")
    }

    pub fn counter(&self, name: &str) -> u64 {
        self.counters.get(name).copied().unwrap_or(0)
    }
}

/// One cluster in `/clusters`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ClusterStatus {
    pub name: String,
    pub added_via_api: Option<bool>,
    pub observability_name: Option<String>,
    /// Circuit-breaker limits: priority (`default_priority`/`high_priority`, or
    /// `DEFAULT`/`HIGH` from JSON, normalized to `default`/`high`) → limit → value.
    pub circuit_breakers: BTreeMap<String, BTreeMap<String, u64>>,
    /// Cluster-level outlier data (`success_rate_average`, …), verbatim.
    pub outlier: BTreeMap<String, String>,
    pub hosts: Vec<HostStatus>,
    /// Other cluster-level keys, verbatim.
    pub other: BTreeMap<String, String>,
}

impl ClusterStatus {
    pub fn ejected_hosts(&self) -> Vec<&HostStatus> {
        self.hosts.iter().filter(|h| h.is_ejected()).collect()
    }

    pub fn healthy_hosts(&self) -> Vec<&HostStatus> {
        self.hosts.iter().filter(|h| h.is_healthy()).collect()
    }

    /// Sum of a per-host counter over all hosts.
    pub fn total(&self, counter: &str) -> u64 {
        self.hosts
            .iter()
            .fold(0u64, |a, h| a.saturating_add(h.counter(counter)))
    }

    /// `default` priority limit, e.g. `limit("max_pending_requests")`.
    pub fn limit(&self, name: &str) -> Option<u64> {
        self.circuit_breakers.get("default")?.get(name).copied()
    }
}

/// Parsed `/clusters`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Clusters {
    pub clusters: BTreeMap<String, ClusterStatus>,
    /// Text lines that did not fit the format (1-based line number, line).
    pub unparsed: Vec<(usize, String)>,
}

impl Clusters {
    pub fn get(&self, name: &str) -> Option<&ClusterStatus> {
        self.clusters.get(name)
    }
}

const CLUSTER_LEVEL: &[&str] = &[
    "default_priority",
    "high_priority",
    "added_via_api",
    "observability_name",
    "outlier",
    "eds_service_name",
];

fn cluster_mut<'a>(out: &'a mut Clusters, name: &str) -> &'a mut ClusterStatus {
    out.clusters
        .entry(name.to_string())
        .or_insert_with(|| ClusterStatus {
            name: name.to_string(),
            ..ClusterStatus::default()
        })
}

fn host_mut<'a>(c: &'a mut ClusterStatus, addr: &str) -> &'a mut HostStatus {
    // Hosts come in blocks; search from the end.
    let idx = match c.hosts.iter().rposition(|h| h.address == addr) {
        Some(i) => i,
        None => {
            c.hosts.push(HostStatus {
                address: addr.to_string(),
                ..HostStatus::default()
            });
            c.hosts.len() - 1
        }
    };
    &mut c.hosts[idx]
}

fn non_empty(v: &str) -> Option<String> {
    if v.is_empty() {
        None
    } else {
        Some(v.to_string())
    }
}

fn set_host_stat(h: &mut HostStatus, stat: &str, value: &str) {
    match stat {
        "health_flags" => {
            h.health_flags = if value == "healthy" {
                Vec::new()
            } else {
                value
                    .split('/')
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect()
            };
        }
        "hostname" => h.hostname = non_empty(value),
        "weight" => h.weight = value.parse().ok(),
        "region" => h.region = non_empty(value),
        "zone" => h.zone = non_empty(value),
        "sub_zone" => h.sub_zone = non_empty(value),
        "priority" => h.priority = value.parse().ok(),
        "success_rate" => h.success_rate = value.parse().ok(),
        _ => match value.parse::<u64>() {
            Ok(n) => {
                h.counters.insert(stat.to_string(), n);
            }
            Err(_) => {
                h.other.insert(stat.to_string(), value.to_string());
            }
        },
    }
}

/// Parse `/clusters` text output. Never fails; odd lines go to `unparsed`.
pub fn parse_clusters_text(text: &str) -> Clusters {
    let mut out = Clusters::default();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() {
            continue;
        }
        let Some((cluster, rest)) = line.split_once("::") else {
            out.unparsed.push((i + 1, line.to_string()));
            continue;
        };
        if cluster.is_empty() {
            out.unparsed.push((i + 1, line.to_string()));
            continue;
        }
        let head = rest.split("::").next().unwrap_or("");
        if CLUSTER_LEVEL.contains(&head) {
            let c = cluster_mut(&mut out, cluster);
            let Some((key, value)) = rest.split_once("::") else {
                c.other.insert(rest.to_string(), String::new());
                continue;
            };
            match key {
                "default_priority" | "high_priority" => {
                    let prio = key.trim_end_matches("_priority").to_string();
                    match value.split_once("::") {
                        Some((limit, n)) => match n.parse::<u64>() {
                            Ok(n) => {
                                c.circuit_breakers
                                    .entry(prio)
                                    .or_default()
                                    .insert(limit.to_string(), n);
                            }
                            Err(_) => {
                                c.other.insert(format!("{key}::{limit}"), n.to_string());
                            }
                        },
                        None => {
                            c.other.insert(key.to_string(), value.to_string());
                        }
                    }
                }
                "added_via_api" => c.added_via_api = Some(value == "true"),
                "observability_name" => c.observability_name = non_empty(value),
                "outlier" => match value.split_once("::") {
                    Some((k, v)) => {
                        c.outlier.insert(k.to_string(), v.to_string());
                    }
                    None => {
                        c.outlier.insert(value.to_string(), String::new());
                    }
                },
                other => {
                    c.other.insert(other.to_string(), value.to_string());
                }
            }
            continue;
        }
        // host line: <host>::<stat>::<value>; the host may contain `::` (IPv6), so split from the right.
        let Some((left, value)) = rest.rsplit_once("::") else {
            out.unparsed.push((i + 1, line.to_string()));
            continue;
        };
        let Some((host, stat)) = left.rsplit_once("::") else {
            out.unparsed.push((i + 1, line.to_string()));
            continue;
        };
        if host.is_empty() || stat.is_empty() {
            out.unparsed.push((i + 1, line.to_string()));
            continue;
        }
        let c = cluster_mut(&mut out, cluster);
        set_host_stat(host_mut(c, host), stat, value);
    }
    out
}

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
        if let Some(th) = get_any(cs, "circuit_breakers", "circuitBreakers")
            .and_then(|cb| cb.get("thresholds"))
            .and_then(Value::as_array)
        {
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
        let hosts = get_any(cs, "host_statuses", "hostStatuses")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        for (j, hs) in hosts.iter().enumerate() {
            let addr =
                hs.get("address")
                    .and_then(json_address)
                    .ok_or_else(|| ClustersError::Shape {
                        path: format!("cluster_statuses[{i}].host_statuses[{j}].address"),
                        expected: "a socket, pipe or internal address",
                    })?;
            let mut h = HostStatus {
                address: addr,
                ..HostStatus::default()
            };
            h.hostname = hs
                .get("hostname")
                .and_then(Value::as_str)
                .and_then(non_empty);
            h.weight = hs.get("weight").and_then(json_u64);
            h.priority = hs.get("priority").and_then(json_u64);
            if let Some(loc) = hs.get("locality") {
                h.region = loc
                    .get("region")
                    .and_then(Value::as_str)
                    .and_then(non_empty);
                h.zone = loc.get("zone").and_then(Value::as_str).and_then(non_empty);
                h.sub_zone = get_any(loc, "sub_zone", "subZone")
                    .and_then(Value::as_str)
                    .and_then(non_empty);
            }
            h.success_rate = get_any(hs, "success_rate", "successRate")
                .and_then(|s| s.get("value"))
                .and_then(Value::as_f64);
            for st in hs
                .get("stats")
                .and_then(Value::as_array)
                .map(Vec::as_slice)
                .unwrap_or(&[])
            {
                let Some(n) = st.get("name").and_then(Value::as_str) else {
                    continue;
                };
                // absent value = 0 (proto3 JSON omits zeros); uint64 is a JSON string.
                let val = st.get("value").and_then(json_u64).unwrap_or(0);
                h.counters.insert(n.to_string(), val);
            }
            if let Some(hsv) = get_any(hs, "health_status", "healthStatus") {
                let flag = |snake: &str, camel: &str| {
                    get_any(hsv, snake, camel)
                        .and_then(Value::as_bool)
                        .unwrap_or(false)
                };
                for (snake, camel, text) in [
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
                ] {
                    if flag(snake, camel) {
                        h.health_flags.push(text.to_string());
                    }
                }
                match get_any(hsv, "eds_health_status", "edsHealthStatus").and_then(Value::as_str) {
                    Some("UNHEALTHY") | Some("TIMEOUT") => {
                        h.health_flags.push("failed_eds_health".into())
                    }
                    Some("DEGRADED") => h.health_flags.push("degraded_eds_health".into()),
                    Some("DRAINING") => h.health_flags.push("eds_status_draining".into()),
                    _ => {}
                }
            }
            c.hosts.push(h);
        }
    }
    Ok(out)
}

/// Parse either form: JSON if the text starts with `{`, text otherwise.
pub fn parse_clusters(text: &str) -> Result<Clusters, ClustersError> {
    if text.trim_start().starts_with('{') {
        let v: Value =
            serde_json::from_str(text).map_err(|e| ClustersError::Json(e.to_string()))?;
        parse_clusters_json(&v)
    } else {
        Ok(parse_clusters_text(text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    // Shape as Envoy 1.40 prints it (captured, trimmed).
    const TEXT: &str = "outbound|8000||httpbin.foo.svc.cluster.local::observability_name::outbound|8000||httpbin.foo.svc.cluster.local
outbound|8000||httpbin.foo.svc.cluster.local::outlier::success_rate_average::-1
outbound|8000||httpbin.foo.svc.cluster.local::default_priority::max_connections::1
outbound|8000||httpbin.foo.svc.cluster.local::default_priority::max_pending_requests::1
outbound|8000||httpbin.foo.svc.cluster.local::high_priority::max_retries::3
outbound|8000||httpbin.foo.svc.cluster.local::added_via_api::true
outbound|8000||httpbin.foo.svc.cluster.local::127.0.0.1:18081::cx_active::0
outbound|8000||httpbin.foo.svc.cluster.local::127.0.0.1:18081::cx_connect_fail::3
outbound|8000||httpbin.foo.svc.cluster.local::127.0.0.1:18081::rq_error::3
outbound|8000||httpbin.foo.svc.cluster.local::127.0.0.1:18081::rq_total::0
outbound|8000||httpbin.foo.svc.cluster.local::127.0.0.1:18081::hostname::
outbound|8000||httpbin.foo.svc.cluster.local::127.0.0.1:18081::health_flags::/failed_outlier_check
outbound|8000||httpbin.foo.svc.cluster.local::127.0.0.1:18081::weight::1
outbound|8000||httpbin.foo.svc.cluster.local::127.0.0.1:18081::region::
outbound|8000||httpbin.foo.svc.cluster.local::127.0.0.1:18081::canary::false
outbound|8000||httpbin.foo.svc.cluster.local::127.0.0.1:18081::success_rate::-1
outbound|8000||httpbin.foo.svc.cluster.local::[fd00::5]:8080::rq_total::7
outbound|8000||httpbin.foo.svc.cluster.local::[fd00::5]:8080::rq_error::2
outbound|8000||httpbin.foo.svc.cluster.local::[fd00::5]:8080::health_flags::healthy
inbound|8080||::127.0.0.6:8080::health_flags::/failed_eds_health/pending_dynamic_removal
xds-grpc::default_priority::max_connections::100000
this line is garbage
";

    #[test]
    fn text_format() {
        let cs = parse_clusters_text(TEXT);
        assert_eq!(cs.unparsed.len(), 1);
        let c = cs
            .get("outbound|8000||httpbin.foo.svc.cluster.local")
            .unwrap();
        assert_eq!(c.added_via_api, Some(true));
        assert_eq!(c.limit("max_connections"), Some(1));
        assert_eq!(c.circuit_breakers["high"]["max_retries"], 3);
        assert_eq!(
            c.outlier.get("success_rate_average").map(String::as_str),
            Some("-1")
        );
        assert_eq!(c.hosts.len(), 2);
        let h = &c.hosts[0];
        assert_eq!(h.address, "127.0.0.1:18081");
        assert!(h.is_ejected());
        assert!(!h.is_healthy());
        assert_eq!(h.counter("cx_connect_fail"), 3);
        assert_eq!(h.hostname, None);
        assert_eq!(h.success_rate, Some(-1.0));
        assert_eq!(h.other.get("canary").map(String::as_str), Some("false"));
        let v6 = &c.hosts[1];
        assert_eq!(v6.address, "[fd00::5]:8080");
        assert!(v6.is_healthy());
        assert_eq!(c.total("rq_total"), 7);
        assert_eq!(c.total("rq_error"), 5);
        assert_eq!(c.ejected_hosts().len(), 1);
        assert_eq!(c.healthy_hosts().len(), 1);
        let inbound = cs.get("inbound|8080||").unwrap();
        assert_eq!(
            inbound.hosts[0].health_flags,
            vec!["failed_eds_health", "pending_dynamic_removal"]
        );
        assert!(cs.get("xds-grpc").is_some());
    }

    #[test]
    fn json_format_snake_and_camel() {
        let snake = json!({"cluster_statuses": [{
            "name": "outbound|8000||httpbin.foo.svc.cluster.local",
            "added_via_api": true,
            "host_statuses": [{
                "address": {"socket_address": {"address": "127.0.0.1", "port_value": 18081}},
                "stats": [{"value": "3", "name": "cx_connect_fail"}, {"name": "rq_success"}, {"type": "GAUGE", "name": "cx_active"}],
                "health_status": {"failed_outlier_check": true, "eds_health_status": "HEALTHY"},
                "weight": 1, "locality": {}
            }],
            "circuit_breakers": {"thresholds": [
                {"max_connections": 1, "max_pending_requests": 1, "max_requests": 4294967295u64, "max_retries": 4294967295u64},
                {"priority": "HIGH", "max_connections": 1024}
            ]}
        }]});
        let cs = parse_clusters_json(&snake).unwrap();
        let c = cs
            .get("outbound|8000||httpbin.foo.svc.cluster.local")
            .unwrap();
        assert_eq!(c.limit("max_pending_requests"), Some(1));
        assert_eq!(c.circuit_breakers["high"]["max_connections"], 1024);
        let h = &c.hosts[0];
        assert_eq!(h.counter("cx_connect_fail"), 3);
        assert_eq!(h.counters.get("rq_success"), Some(&0));
        assert!(h.is_ejected());
        // camelCase (older Envoy, as in istioctl's testdata)
        let camel = json!({"cluster_statuses": [{
            "name": "outbound|15014||istio-policy.istio-system.svc.cluster.local",
            "addedViaApi": true,
            "hostStatuses": [{
                "address": {"socketAddress": {"address": "172.17.0.14", "portValue": 15014}},
                "stats": [{"name": "cx_active", "type": "GAUGE"}],
                "healthStatus": {"edsHealthStatus": "UNHEALTHY"}
            }, {
                "address": {"pipe": {"path": "/sock/mixer.socket"}},
                "healthStatus": {"edsHealthStatus": "HEALTHY"}
            }]
        }]});
        let cs = parse_clusters_json(&camel).unwrap();
        let c = cs
            .get("outbound|15014||istio-policy.istio-system.svc.cluster.local")
            .unwrap();
        assert_eq!(c.hosts[0].address, "172.17.0.14:15014");
        assert_eq!(c.hosts[0].health_flags, vec!["failed_eds_health"]);
        assert!(!c.hosts[0].is_healthy());
        assert_eq!(c.hosts[1].address, "unix:///sock/mixer.socket");
        assert!(c.hosts[1].is_healthy());
    }

    #[test]
    fn json_errors_name_the_path() {
        let e =
            parse_clusters_json(&json!({"cluster_statuses": [{"host_statuses": []}]})).unwrap_err();
        assert_eq!(
            e.to_string(),
            "/clusters?format=json: `cluster_statuses[0].name` should be a string"
        );
        let e = parse_clusters_json(
            &json!({"cluster_statuses": [{"name": "a", "host_statuses": [{"address": {}}]}]}),
        )
        .unwrap_err();
        assert!(e
            .to_string()
            .contains("cluster_statuses[0].host_statuses[0].address"));
        assert!(parse_clusters("{not json").is_err());
        assert!(parse_clusters_json(&json!({})).unwrap().clusters.is_empty());
        assert!(parse_clusters_json(&json!([1])).is_err());
    }

    #[test]
    fn autodetect() {
        assert_eq!(parse_clusters(TEXT).unwrap().clusters.len(), 3);
        assert_eq!(
            parse_clusters("{\"cluster_statuses\": []}")
                .unwrap()
                .clusters
                .len(),
            0
        );
    }

    proptest! {
        #[test]
        fn text_parser_never_panics(s in "[a-z0-9|.:/\\[\\]\\n-]{0,300}") {
            let cs = parse_clusters_text(&s);
            for c in cs.clusters.values() { let _ = c.total("rq_total"); }
        }
    }
}
