//! `/clusters` text output: `<cluster>::<key>::<value>` and
//! `<cluster>::<host>::<stat>::<value>` lines (the host may be `[v6]:port`).
//!
//! Place in the flow: part of [`super`] (envoy/ parsers).
//!
//! Source: envoyproxy/envoy `source/server/admin/clusters_handler.cc`.

use std::collections::HashMap;

use super::{cluster_mut, non_empty, Clusters, HostStatus};

const CLUSTER_LEVEL: &[&str] = &[
    "default_priority",
    "high_priority",
    "added_via_api",
    "observability_name",
    "outlier",
    "eds_service_name",
];

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
/// Linear in the text: hosts are found by address through an index, not by a
/// search of the cluster's hosts (fuzz target `clusters`: 25,000 hosts in one
/// cluster took 28 s with that search).
pub fn parse_clusters_text(text: &str) -> Clusters {
    let mut out = Clusters::default();
    // cluster → host address → index in that cluster's `hosts`.
    let mut hosts: HashMap<&str, HashMap<&str, usize>> = HashMap::new();
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
        let at = *hosts
            .entry(cluster)
            .or_default()
            .entry(host)
            .or_insert_with(|| {
                c.hosts.push(HostStatus {
                    address: host.to_string(),
                    ..HostStatus::default()
                });
                c.hosts.len() - 1
            });
        set_host_stat(&mut c.hosts[at], stat, value);
    }
    out
}
