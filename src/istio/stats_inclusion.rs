//! Which Envoy stats an Istio sidecar emits: its stats inclusion list, from
//! the release's default and what the pod and the mesh add.
//!
//! Place in the flow: a pure helper (istio/). model asks it, per read
//! sidecar, whether a `/stats` without any `cluster.outbound|…` stat means
//! "Istio's inclusion list drops them" or nothing it can tell
//! (`model::Mesh` gaps); `envoy::stats` holds the list type and its matching.
//!
//! Sources:
//! - Istio ≤1.0 bootstraps have `stats_config.stats_tags` but no
//!   `stats_matcher`: every stat is emitted (istio/istio 1.0
//!   `tools/deb/envoy_bootstrap_v2.json`);
//! - from 1.1 the bootstrap keeps only a short inclusion list (istio.io
//!   v1.1 `help/ops/telemetry/envoy-stats`: `cluster_manager`,
//!   `listener_manager`, `http_mixer_filter`, `tcp_mixer_filter`, `server`,
//!   `cluster.xds-grpc`; today `pkg/bootstrap/config.go`
//!   `requiredEnvoyStatsMatcherInclusionPrefixes`/`…Suffixes`/`…Regexes`):
//!   none of them names a per-cluster outbound or per-listener stat;
//! - what is added to it: the pod annotations
//!   `sidecar.istio.io/statsInclusionPrefixes`, `…Suffixes`, `…Regexps`
//!   (comma lists), `proxyStatsMatcher` in the pod's `proxy.istio.io/config`
//!   annotation, and mesh `defaultConfig.proxyStatsMatcher`
//!   (`pkg/bootstrap/option/instances.go`, `config.go` `parseOption`).
//! - A full `/config_dump` carries the bootstrap itself: its
//!   `stats_matcher` is the list, whatever the release.

use std::collections::BTreeMap;

use serde_json::Value;

use super::mesh_config::{IstioVersion, ProxyStatsMatcher};
use crate::envoy::stats::StatsInclusion;

/// The pod annotations that add to the list.
pub const PREFIXES_ANNOTATION: &str = "sidecar.istio.io/statsInclusionPrefixes";
pub const SUFFIXES_ANNOTATION: &str = "sidecar.istio.io/statsInclusionSuffixes";
pub const REGEXPS_ANNOTATION: &str = "sidecar.istio.io/statsInclusionRegexps";
/// The pod's `ProxyConfig` overrides (YAML).
pub const PROXY_CONFIG_ANNOTATION: &str = "proxy.istio.io/config";

/// Where the list came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InclusionBasis {
    /// The bootstrap in a full `/config_dump`.
    Bootstrap,
    /// The release's built-in list, nothing added.
    ReleaseDefault,
    /// The release's list plus the pod's annotations or the mesh's `proxyStatsMatcher`.
    ReleaseDefaultExtended,
    /// A release before 1.1: no inclusion list.
    NoList,
}

/// A sidecar's inclusion list and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SidecarStatsInclusion {
    pub list: StatsInclusion,
    pub basis: InclusionBasis,
}

/// A representative per-cluster outbound stat (a circuit-breaker counter
/// every outbound cluster has).
const OUTBOUND_CLUSTER_STAT: &str =
    "cluster.outbound|80||svc.ns.svc.cluster.local.upstream_rq_pending_overflow";

impl SidecarStatsInclusion {
    /// Does the list let per-cluster outbound stats through? `None` when
    /// only a regular expression this tool cannot evaluate could say.
    pub fn keeps_outbound_cluster_stats(&self) -> Option<bool> {
        self.list.includes(OUTBOUND_CLUSTER_STAT)
    }
}

fn comma_list(annotations: &BTreeMap<String, String>, key: &str) -> Vec<String> {
    annotations
        .get(key)
        .map(|v| {
            v.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// `proxyStatsMatcher` of a `proxy.istio.io/config` annotation; `Err` when
/// the annotation is not a YAML map or the matcher's lists are not lists of
/// strings (then the list is unknown).
fn proxy_config_matcher(text: &str) -> Result<ProxyStatsMatcher, ()> {
    let v: Value = serde_yaml::from_str(text).map_err(|_| ())?;
    if v.is_null() {
        return Ok(ProxyStatsMatcher::default());
    }
    let obj = v.as_object().ok_or(())?;
    let Some(m) = obj.get("proxyStatsMatcher") else {
        return Ok(ProxyStatsMatcher::default());
    };
    let list = |key: &str| -> Result<Vec<String>, ()> {
        match m.get(key) {
            None | Some(Value::Null) => Ok(vec![]),
            Some(Value::Array(a)) => a
                .iter()
                .map(|x| x.as_str().map(str::to_string).ok_or(()))
                .collect(),
            Some(_) => Err(()),
        }
    };
    Ok(ProxyStatsMatcher {
        inclusion_prefixes: list("inclusionPrefixes")?,
        inclusion_suffixes: list("inclusionSuffixes")?,
        inclusion_regexps: list("inclusionRegexps")?,
    })
}

/// The inclusion list a sidecar of `version` runs with, given its pod's
/// annotations and the mesh's `defaultConfig.proxyStatsMatcher`. `None`
/// when it cannot be known: no release known, or a `proxy.istio.io/config`
/// annotation that does not parse.
pub fn for_sidecar(
    version: Option<IstioVersion>,
    annotations: &BTreeMap<String, String>,
    mesh: Option<&ProxyStatsMatcher>,
) -> Option<SidecarStatsInclusion> {
    let version = version?;
    if !version.at_least(1, 1) {
        return Some(SidecarStatsInclusion {
            list: StatsInclusion {
                include_all: true,
                ..StatsInclusion::default()
            },
            basis: InclusionBasis::NoList,
        });
    }
    let pod_config = match annotations.get(PROXY_CONFIG_ANNOTATION) {
        Some(text) => proxy_config_matcher(text).ok()?,
        None => ProxyStatsMatcher::default(),
    };
    let mut prefixes = comma_list(annotations, PREFIXES_ANNOTATION);
    let mut suffixes = comma_list(annotations, SUFFIXES_ANNOTATION);
    let mut regexps = comma_list(annotations, REGEXPS_ANNOTATION);
    for m in mesh.into_iter().chain([&pod_config]) {
        prefixes.extend(m.inclusion_prefixes.iter().cloned());
        suffixes.extend(m.inclusion_suffixes.iter().cloned());
        regexps.extend(m.inclusion_regexps.iter().cloned());
    }
    let added = !(prefixes.is_empty() && suffixes.is_empty() && regexps.is_empty());
    Some(SidecarStatsInclusion {
        list: StatsInclusion::istio_default().with_extra(&prefixes, &suffixes, &regexps),
        basis: if added {
            InclusionBasis::ReleaseDefaultExtended
        } else {
            InclusionBasis::ReleaseDefault
        },
    })
}

/// The list in a bootstrap read from a full `/config_dump`.
pub fn from_bootstrap(list: StatsInclusion) -> SidecarStatsInclusion {
    SidecarStatsInclusion {
        list,
        basis: InclusionBasis::Bootstrap,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ann(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn which_list_a_sidecar_runs() {
        let v = |s: &str| IstioVersion::parse(s);
        let none = ann(&[]);
        let cases: Vec<(&str, Option<SidecarStatsInclusion>, Option<bool>)> = vec![
            (
                "1.24 default drops per-cluster stats",
                for_sidecar(v("1.24.0"), &none, None),
                Some(false),
            ),
            (
                "1.1 already had the list",
                for_sidecar(v("1.1.0"), &none, None),
                Some(false),
            ),
            (
                "near miss: 1.0 had no list",
                for_sidecar(v("1.0.6"), &none, None),
                Some(true),
            ),
            (
                "near miss: the pod's annotation adds cluster.outbound",
                for_sidecar(
                    v("1.24.0"),
                    &ann(&[(PREFIXES_ANNOTATION, "cluster.outbound, listener")]),
                    None,
                ),
                Some(true),
            ),
            (
                "near miss: the mesh's proxyStatsMatcher adds them",
                for_sidecar(
                    v("1.28.0"),
                    &none,
                    Some(&ProxyStatsMatcher {
                        inclusion_suffixes: vec!["upstream_rq_pending_overflow".into()],
                        ..ProxyStatsMatcher::default()
                    }),
                ),
                Some(true),
            ),
            (
                "near miss: proxy.istio.io/config adds them",
                for_sidecar(
                    v("1.28.0"),
                    &ann(&[(
                        PROXY_CONFIG_ANNOTATION,
                        "proxyStatsMatcher:\n  inclusionRegexps: [\"cluster\\\\.outbound.*\"]\n",
                    )]),
                    None,
                ),
                Some(true),
            ),
            (
                "an annotation unrelated to outbound stats keeps them out",
                for_sidecar(
                    v("1.28.0"),
                    &ann(&[(PREFIXES_ANNOTATION, "http.inbound")]),
                    None,
                ),
                Some(false),
            ),
        ];
        for (name, inc, want) in cases {
            let inc = inc.unwrap_or_else(|| panic!("{name}: known"));
            assert_eq!(inc.keeps_outbound_cluster_stats(), want, "{name}");
        }
        assert_eq!(
            for_sidecar(v("1.24.0"), &none, None).unwrap().basis,
            InclusionBasis::ReleaseDefault
        );
    }

    #[test]
    fn unknown_when_the_release_or_the_config_is_unknown() {
        assert_eq!(for_sidecar(None, &ann(&[]), None), None);
        let bad = ann(&[(PROXY_CONFIG_ANNOTATION, "proxyStatsMatcher: [1, 2")]);
        assert_eq!(for_sidecar(IstioVersion::parse("1.24.0"), &bad, None), None);
        let odd = ann(&[(REGEXPS_ANNOTATION, "(cluster|listener)\\..*")]);
        let inc = for_sidecar(IstioVersion::parse("1.24.0"), &odd, None).unwrap();
        assert_eq!(inc.keeps_outbound_cluster_stats(), None);
    }
}
