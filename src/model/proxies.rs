//! Model stage: each sidecar's evidence, parsed once.
//!
//! `config_dump` (the three `?resource=` parts merged), `/clusters`, `/stats`,
//! the access log parsed with the formats the proxy's own listeners declare
//! (and the mesh config's `accessLogFormat`), Istio's standard metrics when the
//! snapshot carries them (typed, `source::metrics`), the node's identity
//! (IPs, domain, Istio version), the inbound modes its listeners enforce, and
//! which stats it emits (`istio::stats_inclusion`: its bootstrap's list, else
//! its release's and its pod's). What cannot be parsed becomes a [`Gap`].

use std::collections::BTreeMap;

use serde_json::Value;

use crate::envoy::access_log::{parse_log_with, AccessLogEntry, LogFormatSpec};
use crate::envoy::clusters::{parse_clusters, Clusters};
use crate::envoy::config_dump::{parse_config_dump, Cluster, ConfigDump};
use crate::envoy::metrics::IstioMetrics;
use crate::envoy::stats::{parse_stats, Stats};
use crate::istio::cluster_domain::domain_of_node_id;
use crate::istio::mesh_config::IstioVersion;
use crate::istio::stats_inclusion::{self, SidecarStatsInclusion};
use crate::istio::tls::InboundMode;
use crate::snapshot::{AdminScope, ProxyEvidence, ProxyRole};

use super::decisions;
use super::gaps::{Gap, GapKind, GapSource};
use super::pods::{Pod, PodKey};
use super::settings::MeshSettings;
use super::source;
use crate::istio::object::Meta;

/// What a sidecar's inbound listeners accept, per container port.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct InboundView {
    pub by_port: BTreeMap<u16, InboundMode>,
    /// `virtualInbound`'s chains for ports without their own.
    pub catch_all: Option<InboundMode>,
}

impl InboundView {
    /// The port's own chains, else the catch-all: `istio::tls::inbound_mode_for`,
    /// answered from the per-proxy memo instead of the listeners each time.
    pub fn mode_for(&self, port: u16) -> Option<&InboundMode> {
        self.by_port.get(&port).or(self.catch_all.as_ref())
    }
}

/// The access log as read.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ProxyLog {
    /// The container log was read (it may hold no access line).
    pub read: bool,
    pub entries: Vec<AccessLogEntry>,
    /// Other non-empty lines (Envoy's and pilot-agent's own).
    pub other_lines: usize,
}

/// One sidecar.
#[derive(Debug, Clone, PartialEq)]
pub struct Proxy {
    /// `ns/pod` (offline dumps: the pod from the node id, else the file name).
    pub label: String,
    /// The pod it runs in, when known.
    pub pod: Option<PodKey>,
    /// Why it was read; `None` for saved dumps given offline.
    pub role: Option<ProxyRole>,
    pub chosen_because: String,
    /// Pod IP and the node's instance IPs.
    pub ips: Vec<String>,
    /// The cluster domain in its node id.
    pub node_domain: Option<String>,
    /// `node.metadata.ISTIO_VERSION`.
    pub istio_version: Option<IstioVersion>,
    /// Clusters + listeners + endpoints merged; `None` if none was read.
    pub dump: Option<ConfigDump>,
    pub inbound: InboundView,
    pub clusters: Option<Clusters>,
    pub stats: Option<Stats>,
    /// Which stats it emits (its bootstrap's list, else the release's list
    /// and its pod's additions); `None` when unknown.
    pub stats_inclusion: Option<SidecarStatsInclusion>,
    pub log: ProxyLog,
    /// Istio's standard metrics (`istio_requests_total`, TCP connections),
    /// typed, when the snapshot has them (see `source::metrics`).
    pub metrics: Option<IstioMetrics>,
    /// The admin filters its config, `/clusters` and `/stats` were read
    /// with: what they do not match was not read (absent ≠ missing).
    pub scope: Option<AdminScope>,
}

impl Proxy {
    pub fn is_client(&self) -> bool {
        self.role != Some(ProxyRole::Server)
    }

    pub fn cluster(&self, name: &str) -> Option<&Cluster> {
        self.dump.as_ref().and_then(|d| d.cluster(name))
    }

    /// What `/clusters` read at all (a parsed, possibly empty, list).
    pub fn has_clusters(&self) -> bool {
        self.clusters.is_some()
    }

    /// A proxy from the snapshot; `pod_ip` from its Pod object.
    pub fn from_evidence(
        e: &ProxyEvidence,
        pod_ip: Option<&str>,
        mesh_formats: &[LogFormatSpec],
        gaps: &mut Vec<Gap>,
    ) -> Proxy {
        let key = PodKey::new(&e.namespace, &e.pod);
        let label = key.to_string();
        let mut dump: Option<ConfigDump> = None;
        for (what, v) in [
            ("clusters", &e.clusters_config),
            ("listeners", &e.listeners_config),
            ("endpoints", &e.endpoints_config),
        ] {
            let Some(v) = v else { continue };
            match parse_config_dump(v) {
                Ok(d) => match &mut dump {
                    Some(acc) => acc.merge(d),
                    None => dump = Some(d),
                },
                Err(err) => gaps.push(Gap::found(
                    GapSource::ProxyAdmin {
                        pod: key.clone(),
                        path: format!("/config_dump ({what})"),
                    },
                    GapKind::Unparseable,
                    err.to_string(),
                )),
            }
        }
        let clusters = e.clusters.as_deref().and_then(|t| match parse_clusters(t) {
            Ok(c) => Some(c),
            Err(err) => {
                gaps.push(Gap::found(
                    GapSource::ProxyAdmin {
                        pod: key.clone(),
                        path: "/clusters".into(),
                    },
                    GapKind::Unparseable,
                    err.to_string(),
                ));
                None
            }
        });
        let server_info = e.server_info.as_ref();
        let node_id = server_info.and_then(|s| s["node"]["id"].as_str());
        let mut ips: Vec<String> = pod_ip.map(str::to_string).into_iter().collect();
        add_bootstrap_ips(&mut ips, dump.as_ref());
        let log = read_log(e.log_tail.as_deref(), dump.as_ref(), mesh_formats);
        Proxy {
            label,
            pod: Some(key),
            role: Some(e.role),
            chosen_because: e.chosen_because.clone(),
            ips,
            node_domain: node_id
                .and_then(domain_of_node_id)
                .or_else(|| bootstrap_domain(dump.as_ref())),
            istio_version: server_info
                .and_then(|s| s["node"]["metadata"]["ISTIO_VERSION"].as_str())
                .and_then(IstioVersion::parse)
                .or_else(|| bootstrap_version(dump.as_ref())),
            inbound: dump
                .as_ref()
                .map(decisions::inbound_view)
                .unwrap_or_default(),
            stats_inclusion: bootstrap_inclusion(dump.as_ref()),
            dump,
            clusters,
            stats: e.stats.as_deref().map(parse_stats),
            log,
            metrics: source::metrics(e),
            scope: e.scope.clone(),
        }
    }

    /// A proxy from a saved full `/config_dump` (tls-check offline): named
    /// by the pod in its node id, else by the file name.
    pub fn from_config_dump(file: &str, dump: ConfigDump) -> Proxy {
        let node_id = dump.bootstrap.as_ref().and_then(|b| b.node_id.clone());
        let pod_ns = node_id
            .as_deref()
            .and_then(|id| id.split('~').nth(2))
            .map(str::to_string);
        let pod = pod_ns
            .as_deref()
            .and_then(|p| p.split_once('.'))
            .map(|(name, ns)| PodKey::new(ns, name));
        // Rows are named as the node id names the pod (`sleep-1.foo`).
        let label = pod_ns.unwrap_or_else(|| {
            std::path::Path::new(file)
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_else(|| file.to_string())
        });
        let mut ips = Vec::new();
        add_bootstrap_ips(&mut ips, Some(&dump));
        Proxy {
            label,
            pod,
            role: None,
            chosen_because: format!("read from {file}"),
            ips,
            node_domain: bootstrap_domain(Some(&dump)),
            istio_version: bootstrap_version(Some(&dump)),
            inbound: decisions::inbound_view(&dump),
            stats_inclusion: bootstrap_inclusion(Some(&dump)),
            dump: Some(dump),
            clusters: None,
            stats: None,
            log: ProxyLog::default(),
            metrics: None,
            scope: None,
        }
    }
}

/// Each read sidecar's stats inclusion list, where its bootstrap did not
/// give it: the release (the proxy's own, its image's, the mesh's) and its
/// pod's annotations, with the mesh's `proxyStatsMatcher`.
pub(super) fn set_stats_inclusion(
    proxies: &mut [Proxy],
    objects: &[Value],
    pods: &[Pod],
    settings: &MeshSettings,
) {
    for p in proxies.iter_mut().filter(|p| p.stats_inclusion.is_none()) {
        let Some(key) = &p.pod else { continue };
        let annotations = objects
            .iter()
            .filter(|o| o["kind"] == "Pod")
            .filter_map(|o| Meta::from_value(o).ok())
            .find(|m| m.namespace == key.namespace && m.name == key.name)
            .map(|m| m.annotations)
            .unwrap_or_default();
        let version = p
            .istio_version
            .or_else(|| pods.iter().find(|x| &x.key == key)?.sidecar_version)
            .or(settings.version);
        p.stats_inclusion = stats_inclusion::for_sidecar(
            version,
            &annotations,
            settings.config.proxy_stats_matcher.as_ref(),
        );
    }
}

/// The bootstrap's instance IPs and the IP in its node id.
fn add_bootstrap_ips(ips: &mut Vec<String>, dump: Option<&ConfigDump>) {
    let Some(b) = dump.and_then(|d| d.bootstrap.as_ref()) else {
        return;
    };
    let from_id = b.node_id.as_deref().and_then(|id| id.split('~').nth(1));
    for ip in b.instance_ips.iter().map(String::as_str).chain(from_id) {
        if !ip.is_empty() && !ips.iter().any(|i| i == ip) {
            ips.push(ip.to_string());
        }
    }
}

/// The stats inclusion list of a bootstrap, when the dump has one (full dumps).
fn bootstrap_inclusion(dump: Option<&ConfigDump>) -> Option<SidecarStatsInclusion> {
    let b = dump?.bootstrap.as_ref()?;
    Some(stats_inclusion::from_bootstrap(b.stats_inclusion()))
}

fn bootstrap_domain(dump: Option<&ConfigDump>) -> Option<String> {
    domain_of_node_id(dump?.bootstrap.as_ref()?.node_id.as_deref()?)
}

fn bootstrap_version(dump: Option<&ConfigDump>) -> Option<IstioVersion> {
    IstioVersion::parse(dump?.bootstrap.as_ref()?.istio_version.as_deref()?)
}

/// Parse the log tail with the formats its listeners declare, then the mesh
/// config's, then Istio's built-in formats of every era.
fn read_log(
    text: Option<&str>,
    dump: Option<&ConfigDump>,
    mesh_formats: &[LogFormatSpec],
) -> ProxyLog {
    let Some(text) = text else {
        return ProxyLog::default();
    };
    let mut formats: Vec<LogFormatSpec> =
        dump.map(ConfigDump::access_log_formats).unwrap_or_default();
    for f in mesh_formats {
        if !formats.contains(f) {
            formats.push(f.clone());
        }
    }
    let (entries, other_lines) = parse_log_with(text, &formats);
    ProxyLog {
        read: true,
        entries,
        other_lines,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unparseable_dump_is_a_gap_not_a_panic() {
        let e = ProxyEvidence {
            namespace: "foo".into(),
            pod: "sleep-1".into(),
            role: ProxyRole::Client,
            chosen_because: "--from".into(),
            server_info: Some(
                serde_json::json!({"node": {"id": "sidecar~10.0.0.9~sleep-1.foo~foo.svc.corp.example",
                "metadata": {"ISTIO_VERSION": "1.28.1"}}}),
            ),
            clusters_config: Some(serde_json::json!("not a dump")),
            listeners_config: None,
            metrics: None,
            scope: None,
            endpoints_config: None,
            clusters: None,
            stats: None,
            log_tail: Some("2026-01-01T00:00:00Z info something\n".into()),
            gaps: vec![],
        };
        let mut gaps = Vec::new();
        let p = Proxy::from_evidence(&e, Some("10.0.0.9"), &[], &mut gaps);
        assert_eq!(gaps.len(), 1, "{gaps:?}");
        assert_eq!(gaps[0].kind, GapKind::Unparseable);
        assert!(p.dump.is_none());
        assert_eq!(p.node_domain.as_deref(), Some("corp.example"));
        assert_eq!(
            p.istio_version.map(|v| v.to_string()).as_deref(),
            Some("1.28.1")
        );
        assert!(p.log.read && p.log.entries.is_empty() && p.log.other_lines == 1);
        assert_eq!(p.ips, vec!["10.0.0.9".to_string()]);
    }

    /// An offline dump is named by the pod in its node id, else by the
    /// file it was read from.
    #[test]
    fn offline_dumps_are_named_by_their_node_else_their_file() {
        let p = Proxy::from_config_dump("saved/x.json", ConfigDump::default());
        assert_eq!(p.label, "x.json");
        assert_eq!(p.chosen_because, "read from saved/x.json");
        let dump = ConfigDump {
            bootstrap: Some(crate::envoy::config_dump::Bootstrap {
                node_id: Some("sidecar~10.0.0.9~sleep-1.foo~foo.svc.cluster.local".into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let p = Proxy::from_config_dump("saved/x.json", dump);
        assert_eq!(p.label, "sleep-1.foo");
        assert_eq!(p.pod, Some(PodKey::new("foo", "sleep-1")));
        assert_eq!(p.ips, ["10.0.0.9"]);
    }
}
