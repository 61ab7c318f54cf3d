//! Analyze stage: what the report says it looked at (`checked`) and what it
//! could not see (`gaps`), in words, from the model's typed facts.

use crate::model::gaps::GapOrigin;
use crate::model::settings::DomainSource;
use crate::model::{Gap, GapKind, GapSource, Mesh, MeshConfigSource};
use crate::snapshot::{self, ProxyRole};

/// What was looked at, so "nothing found" means something.
pub fn checked(mesh: &Mesh) -> Vec<String> {
    let mut c = Vec::new();
    for s in mesh.target_services() {
        let ports: Vec<String> = s
            .ports
            .iter()
            .filter(|p| mesh.target.only_port.is_none_or(|o| o == p.number))
            .map(|p| p.number.to_string())
            .collect();
        c.push(format!("Service {} (ports {})", s.key, ports.join(", ")));
        let tr = mesh.target_routes(s);
        let mut callers: Vec<String> = tr
            .callers
            .iter()
            .map(|k| format!("{} (routes for {})", k.name(), k.representative()))
            .collect();
        callers.extend(tr.gateways.iter().map(|g| g.name()));
        c.push(format!(
            "routes of the callers of {}: {}",
            s.fqdn,
            if callers.is_empty() {
                "none found".to_string()
            } else {
                callers.join("; ")
            }
        ));
    }
    for f in &mesh.target.found_callers {
        c.push(match &f.pod {
            Some(p) => format!("caller {p} (no sidecar to read): {}", f.because),
            None => format!("callers not attributable to a pod: {}", f.because),
        });
    }
    let st = &mesh.settings;
    let cfg = &mesh.config;
    c.push(format!(
        "{}, {}, {}; mesh config {} (auto mTLS {}, root namespace {}{})",
        crate::words::counts(cfg.destination_rules.len(), "DestinationRule"),
        crate::words::counts(cfg.peer_authentications.len(), "PeerAuthentication"),
        crate::words::count(
            cfg.legacy.mesh_policies.len() + cfg.legacy.policies.len(),
            "legacy authentication policy",
            "legacy authentication policies"
        ),
        match st.source {
            MeshConfigSource::Read => "read",
            MeshConfigSource::Unparseable(_) => "unreadable (defaults)",
            MeshConfigSource::NotInSnapshot => "missing (defaults)",
        },
        if st.auto_mtls { "on" } else { "off" },
        st.root_namespace,
        st.version
            .map(|v| format!(", Istio {v}"))
            .unwrap_or_default()
    ));
    c.push(format!(
        "cluster domain {} ({})",
        mesh.domain.suffix,
        match &mesh.domain.source {
            DomainSource::ResolvedTarget(from) => format!("from the {from}"),
            DomainSource::SidecarArgs(p) => format!("from {p}'s istio-proxy --domain"),
            DomainSource::ProxyNode(p) => format!("from {p}'s proxy node id"),
            DomainSource::ProxyCluster(p) => format!("from {p}'s outbound cluster names"),
            DomainSource::Default =>
                "Kubernetes' default: nothing in the snapshot names it".to_string(),
        }
    ));
    for p in &mesh.proxies {
        let mut parts = Vec::new();
        if p.dump.is_some() {
            parts.push("config_dump");
        }
        if p.clusters.is_some() {
            parts.push("/clusters");
        }
        if p.stats.is_some() {
            parts.push("/stats");
        }
        if p.log.read {
            parts.push("access log");
        }
        if p.metrics.is_some() {
            parts.push("metrics");
        }
        let role = match p.role {
            Some(ProxyRole::Server) => "server",
            _ => "client",
        };
        c.push(format!(
            "{role} sidecar {} ({}): {}",
            p.label,
            p.chosen_because,
            if parts.is_empty() {
                "nothing readable".to_string()
            } else {
                parts.join(", ")
            }
        ));
    }
    c
}

fn source_text(s: &GapSource) -> String {
    match s {
        GapSource::ApiList {
            resource,
            namespace: Some(ns),
        } => format!("list {resource} in namespace {ns}"),
        GapSource::ApiList { resource, .. } => format!("list {resource}"),
        GapSource::ApiDiscovery(s) | GapSource::Other(s) => s.clone(),
        GapSource::ProxyAdmin { pod, path } => format!("pod {pod} :15000{path}"),
        GapSource::ProxyLog { pod } => format!("pod {pod} istio-proxy log"),
        GapSource::Object(r) => r.to_string(),
        GapSource::MeshConfig { namespace } => format!("ConfigMap {namespace}/istio"),
    }
}

fn reason_text(g: &Gap) -> String {
    match (&g.source, g.kind) {
        (GapSource::MeshConfig { .. }, GapKind::Unparseable) => format!(
            "cannot parse the mesh config ({}); assuming Istio's defaults",
            g.detail
        ),
        (GapSource::MeshConfig { .. }, _) => {
            "mesh config not in the snapshot; assumed Istio's defaults".into()
        }
        (GapSource::Object(_), GapKind::Unparseable) => format!("ignored: {}", g.detail),
        (_, GapKind::Unparseable) => format!("unreadable: {}", g.detail),
        (_, GapKind::AccessLogsOff) => "no access log lines: access logging is off (mesh config accessLogFile) or no traffic yet".into(),
        (_, GapKind::StatsExcluded) => format!(
            "per-cluster outbound stats are excluded by {} (sidecar.istio.io/statsInclusionPrefixes adds them); used /clusters and logs instead",
            if g.detail.is_empty() { "Istio's default stats inclusion" } else { g.detail.as_str() }
        ),
        (_, GapKind::StatsAbsent) => format!(
            "no per-cluster outbound stat in /stats{}, and the sidecar's stats inclusion is not known (Istio from 1.1 drops them unless sidecar.istio.io/statsInclusionPrefixes adds them); used /clusters and logs instead",
            if g.detail.is_empty() { "" } else { " (read filtered to the stats the rules use)" }
        ),
        _ => g.detail.clone(),
    }
}

/// Every gap as the report prints it: collected ones as collected, the
/// model's in words.
pub fn gaps(mesh: &Mesh) -> Vec<snapshot::Gap> {
    mesh.gaps
        .iter()
        .map(|g| match &g.origin {
            GapOrigin::Snapshot(s) | GapOrigin::Proxy(s) => s.clone(),
            GapOrigin::Model => snapshot::Gap {
                source: source_text(&g.source),
                reason: reason_text(g),
            },
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::builder::*;
    use crate::model::PodKey;

    #[test]
    fn model_gaps_in_words() {
        let mut m = MeshBuilder::new().target(httpbin()).build();
        m.gaps.push(Gap::found(
            GapSource::ProxyLog {
                pod: PodKey::new("foo", "sleep-1"),
            },
            GapKind::AccessLogsOff,
            "",
        ));
        m.gaps.push(Gap::found(
            GapSource::ProxyAdmin {
                pod: PodKey::new("foo", "sleep-1"),
                path: "/config_dump (listeners)".into(),
            },
            GapKind::Unparseable,
            "bad",
        ));
        for (kind, detail) in [
            (GapKind::StatsExcluded, ""),
            (GapKind::StatsAbsent, "\\.(?:upstream_cx_overflow)$"),
        ] {
            m.gaps.push(Gap::found(
                GapSource::ProxyAdmin {
                    pod: PodKey::new("foo", "sleep-1"),
                    path: "/stats".into(),
                },
                kind,
                detail,
            ));
        }
        let g = gaps(&m);
        assert!(
            g[2].reason.starts_with(
                "per-cluster outbound stats are excluded by Istio's default stats inclusion"
            ),
            "{}",
            g[2].reason
        );
        assert!(
            g[3].reason.contains("read filtered") && g[3].reason.contains("not known"),
            "an unknown list is not called an exclusion: {}",
            g[3].reason
        );
        assert_eq!(g[0].source, "pod foo/sleep-1 istio-proxy log");
        assert!(g[0].reason.contains("access logging is off"));
        assert_eq!(
            g[1].source,
            "pod foo/sleep-1 :15000/config_dump (listeners)"
        );
        assert_eq!(g[1].reason, "unreadable: bad");
        let c = checked(&m);
        assert_eq!(c[0], "Service foo/httpbin (ports 8000)");
        assert!(
            c[1].starts_with(
                "routes of the callers of httpbin.foo.svc.cluster.local: every namespace"
            ),
            "{c:?}"
        );
        assert!(c[3].starts_with("cluster domain cluster.local"), "{c:?}");
    }
}
