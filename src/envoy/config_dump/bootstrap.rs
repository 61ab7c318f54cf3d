//! The bootstrap in `/config_dump` (`BootstrapConfigDump`): the node identity
//! Istio's agent writes (`node.id`, `node.metadata`), the Envoy build, and the
//! stats inclusion list.
//!
//! Place in the flow: part of the pure `/config_dump` parser (envoy/). The
//! bootstrap is only in full dumps (offline `tls-check --config-dump`);
//! collect never fetches it.
//!
//! Sources: envoyproxy/envoy `api/envoy/config/bootstrap/v3/bootstrap.proto`,
//! `api/envoy/config/core/v3/base.proto` (`Node`); istio/istio
//! `tools/packaging/common/envoy_bootstrap.json` (node metadata keys, the
//! `stats_matcher` inclusion list).

use std::collections::BTreeMap;

use serde_json::Value;

use super::json::{s, str_map, string_matcher, u64_at};

/// The bootstrap's node identity and the stats inclusion list.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Bootstrap {
    /// `sidecar~10.52.2.21~productpage-v1-….default~default.svc.cluster.local`.
    pub node_id: Option<String>,
    pub node_cluster: Option<String>,
    /// `node.metadata.ISTIO_VERSION`.
    pub istio_version: Option<String>,
    pub namespace: Option<String>,
    pub pod_name: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub instance_ips: Vec<String>,
    /// `node.user_agent_build_version` (`1.26.4`) or the old `build_version` string.
    pub envoy_version: Option<String>,
    /// `stats_config.stats_matcher.inclusion_list.patterns`: `prefix:…`, `suffix:…`, `regex:…`, `exact:…`.
    /// `None` when the bootstrap has no inclusion list (every stat is emitted).
    pub stats_inclusion: Option<Vec<String>>,
}

impl Bootstrap {
    /// `sidecar`, `router` (gateway), … from the node id.
    pub fn proxy_type(&self) -> Option<&str> {
        self.node_id.as_deref()?.split('~').next()
    }
    /// The stats inclusion list as a [`crate::envoy::stats::StatsInclusion`].
    pub fn stats_inclusion(&self) -> crate::envoy::stats::StatsInclusion {
        let mut inc = crate::envoy::stats::StatsInclusion::default();
        match &self.stats_inclusion {
            None => inc.include_all = true,
            Some(pats) => {
                for p in pats {
                    if let Some(x) = p.strip_prefix("prefix:") {
                        inc.prefixes.push(x.to_string());
                    } else if let Some(x) = p.strip_prefix("suffix:") {
                        inc.suffixes.push(x.to_string());
                    } else if let Some(x) = p.strip_prefix("regex:") {
                        inc.regexes.push(x.to_string());
                    } else if let Some(x) = p.strip_prefix("exact:") {
                        inc.regexes.push(x.replace('.', "\\."));
                    }
                }
            }
        }
        inc
    }
}

pub fn parse_bootstrap(b: &Value) -> Bootstrap {
    let node = b.get("node").unwrap_or(&Value::Null);
    let md = node.get("metadata").unwrap_or(&Value::Null);
    let envoy_version = node
        .get("user_agent_build_version")
        .and_then(|u| u.get("version"))
        .map(|v| {
            format!(
                "{}.{}.{}",
                u64_at(v, "major_number").unwrap_or(0),
                u64_at(v, "minor_number").unwrap_or(0),
                u64_at(v, "patch").unwrap_or(0)
            )
        })
        .or_else(|| s(node, "build_version"));
    let stats_inclusion = b
        .get("stats_config")
        .and_then(|sc| sc.get("stats_matcher"))
        .and_then(|m| m.get("inclusion_list"))
        .and_then(|il| il.get("patterns"))
        .and_then(Value::as_array)
        .map(|pats| {
            pats.iter()
                .filter_map(|p| {
                    string_matcher(p).map(|x| {
                        if p.get("exact").is_some() {
                            format!("exact:{x}")
                        } else {
                            x
                        }
                    })
                })
                .collect()
        });
    // Old Istio put labels directly in node.metadata; newer under LABELS.
    let mut labels = str_map(md.get("LABELS"));
    if labels.is_empty() {
        labels = md
            .as_object()
            .map(|o| {
                o.iter()
                    .filter(|(k, _)| !k.chars().all(|c| c.is_ascii_uppercase() || c == '_'))
                    .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string())))
                    .collect()
            })
            .unwrap_or_default();
    }
    Bootstrap {
        node_id: s(node, "id"),
        node_cluster: s(node, "cluster"),
        istio_version: s(md, "ISTIO_VERSION"),
        namespace: s(md, "NAMESPACE").or_else(|| s(md, "CONFIG_NAMESPACE")),
        pod_name: s(md, "NAME").or_else(|| s(md, "POD_NAME")),
        labels,
        annotations: str_map(md.get("ANNOTATIONS")),
        instance_ips: s(md, "INSTANCE_IPS")
            .map(|x| {
                x.split(',')
                    .map(|p| p.trim().to_string())
                    .filter(|p| !p.is_empty())
                    .collect()
            })
            .unwrap_or_default(),
        envoy_version,
        stats_inclusion,
    }
}
