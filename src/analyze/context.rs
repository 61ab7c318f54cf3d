//! Everything the checks need, parsed once from the snapshot: typed Istio
//! config, the mesh config and Istio version, the target's Services and
//! pods, and each proxy's parsed admin output and access log.

use crate::envoy::access_log::{parse_log, AccessLogEntry};
use crate::envoy::clusters::{parse_clusters, Clusters};
use crate::envoy::config_dump::{parse_config_dump, ConfigDump};
use crate::envoy::stats::{parse_stats, Stats};
use crate::istio::destination_rule::DestinationRule;
use crate::istio::legacy_policy::{self, LegacyPolicy};
use crate::istio::mesh_config::{IstioVersion, MeshConfig};
use crate::istio::peer_auth::PeerAuthentication;
pub use crate::istio::sidecar::{has_sidecar, sidecar_version};
use crate::snapshot::{Gap, ProxyEvidence, ProxyRole, Snapshot};
use crate::target::Target;
use serde_json::Value;
use std::collections::BTreeMap;

/// One sidecar's evidence, parsed.
pub struct Proxy<'a> {
    pub evidence: &'a ProxyEvidence,
    pub pod: Option<&'a Value>,
    /// Clusters + listeners + endpoints merged; `None` if none was read.
    pub dump: Option<ConfigDump>,
    pub clusters: Option<Clusters>,
    pub stats: Option<Stats>,
    /// Access log entries (empty when logs are off or unread).
    pub log: Vec<AccessLogEntry>,
    /// Whether any access log line was seen at all.
    pub log_has_access_lines: bool,
    /// Other read pods of the same workload (same controller) that this one
    /// stands for in findings: replicas behave alike, one finding says it.
    pub same_workload: usize,
}

impl Proxy<'_> {
    pub fn id(&self) -> String {
        format!("{}/{}", self.evidence.namespace, self.evidence.pod)
    }
}

/// A Service port of the target.
#[derive(Debug, Clone)]
pub struct ServicePort {
    pub number: u16,
    pub name: Option<String>,
    /// Number, or a container port name to resolve per pod.
    pub target_port: Value,
    pub app_protocol: Option<String>,
}

/// A target Service.
pub struct Service<'a> {
    pub obj: &'a Value,
    pub name: String,
    pub namespace: String,
    pub fqdn: String,
    pub selector: BTreeMap<String, String>,
    pub ports: Vec<ServicePort>,
}

pub struct Context<'a> {
    pub snap: &'a Snapshot,
    pub mesh: MeshConfig,
    pub mesh_found: bool,
    pub version: Option<IstioVersion>,
    pub root_ns: String,
    pub auto_mtls: bool,
    pub drs: Vec<DestinationRule>,
    pub pas: Vec<PeerAuthentication>,
    pub legacy_mesh: Vec<LegacyPolicy>,
    pub legacy_policies: Vec<LegacyPolicy>,
    /// Authentication via MeshPolicy/Policy (Istio ≤1.5) rather than PeerAuthentication.
    pub legacy_authn: bool,
    pub services: Vec<Service<'a>>,
    pub proxies: Vec<Proxy<'a>>,
    /// Objects that could not be parsed, and other analysis-time gaps.
    problems: Vec<Gap>,
}

pub fn labels_of(obj: &Value, path: &[&str]) -> BTreeMap<String, String> {
    let mut v = obj;
    for p in path {
        v = &v[*p];
    }
    v.as_object()
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

pub fn name_of(obj: &Value) -> &str {
    obj["metadata"]["name"].as_str().unwrap_or("")
}

pub fn ns_of(obj: &Value) -> &str {
    obj["metadata"]["namespace"].as_str().unwrap_or("")
}

/// Is this access-log line about `fqdn:port`? Its upstream cluster is one of
/// the service port's (`outbound|<port>|<any subset>|<fqdn>`); lines without
/// a cluster (no route, older formats) are matched by `:authority` host and,
/// when the authority has one, port.
pub fn log_line_targets(e: &AccessLogEntry, port: u16, fqdn: &str) -> bool {
    match e.upstream_cluster.as_deref() {
        Some(c) => c.starts_with(&format!("outbound|{port}|")) && c.ends_with(&format!("|{fqdn}")),
        None => e.authority.as_deref().is_some_and(|a| {
            let (host, a_port) = match a.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (a, None),
            };
            (fqdn == host || fqdn.starts_with(&format!("{host}.")))
                && a_port.is_none_or(|p| p == port.to_string())
        }),
    }
}

/// The first of some log lines, shortened, to quote as evidence.
pub fn sample_line(entries: &[&AccessLogEntry]) -> String {
    entries
        .first()
        .map(|e| e.raw.chars().take(400).collect())
        .unwrap_or_default()
}

/// Resolve a targetPort (number or name) on a pod.
pub fn container_port(pod: &Value, target_port: &Value, fallback: u16) -> u16 {
    if let Some(n) = target_port.as_u64() {
        return n as u16;
    }
    if let Some(s) = target_port.as_str() {
        if let Ok(n) = s.parse() {
            return n;
        }
        for c in pod["spec"]["containers"].as_array().into_iter().flatten() {
            for p in c["ports"].as_array().into_iter().flatten() {
                if p["name"].as_str() == Some(s) {
                    if let Some(n) = p["containerPort"].as_u64() {
                        return n as u16;
                    }
                }
            }
        }
    }
    fallback
}

impl<'a> Context<'a> {
    pub fn new(snap: &'a Snapshot) -> Context<'a> {
        let mut problems = Vec::new();
        let cm = snap
            .objects_of_kind("ConfigMap")
            .find(|o| name_of(o) == "istio" && ns_of(o) == snap.istio_namespace);
        let (mesh, mesh_found) = match cm.map(MeshConfig::from_configmap) {
            Some(Ok(m)) => (m, true),
            Some(Err(e)) => {
                problems.push(Gap {
                    source: format!("ConfigMap {}/istio", snap.istio_namespace),
                    reason: format!(
                        "cannot parse the mesh config ({e}); assuming Istio's defaults"
                    ),
                });
                (MeshConfig::default(), false)
            }
            None => (MeshConfig::default(), false),
        };
        let pods: Vec<&Value> = snap.objects_of_kind("Pod").collect();
        // The sidecar image tag; else what the proxies report in /server_info
        // (node.metadata.ISTIO_VERSION), e.g. when images are pinned by digest.
        let version = pods
            .iter()
            .filter_map(|p| sidecar_version(p))
            .max()
            .or_else(|| {
                snap.proxies
                    .iter()
                    .filter_map(|p| {
                        p.server_info.as_ref()?["node"]["metadata"]["ISTIO_VERSION"].as_str()
                    })
                    .filter_map(IstioVersion::parse)
                    .max()
            });
        let root_ns = mesh.root_namespace().to_string();
        let auto_mtls = mesh.auto_mtls(version);

        let mut drs = Vec::new();
        let mut pas = Vec::new();
        // The same object may be listed in several served versions: keep one.
        let mut seen = std::collections::BTreeSet::new();
        for o in &snap.objects {
            let kind = o["kind"].as_str().unwrap_or("");
            let group = o["apiVersion"]
                .as_str()
                .unwrap_or("")
                .split('/')
                .next()
                .unwrap_or("");
            let key = (
                group.to_string(),
                kind.to_string(),
                ns_of(o).to_string(),
                name_of(o).to_string(),
            );
            if !matches!(kind, "DestinationRule" | "PeerAuthentication") || !seen.insert(key) {
                continue;
            }
            let what = format!("{kind} {}/{}", ns_of(o), name_of(o));
            match kind {
                "DestinationRule" => match DestinationRule::from_value(o) {
                    Ok(d) => drs.push(d),
                    Err(e) => problems.push(Gap {
                        source: what,
                        reason: format!("ignored: {e}"),
                    }),
                },
                _ => match PeerAuthentication::from_value(o) {
                    Ok(p) => pas.push(p),
                    Err(e) => problems.push(Gap {
                        source: what,
                        reason: format!("ignored: {e}"),
                    }),
                },
            }
        }
        let legacy_objs: Vec<Value> = snap
            .objects
            .iter()
            .filter(|o| {
                o["apiVersion"]
                    .as_str()
                    .is_some_and(|a| a.starts_with("authentication.istio.io/"))
            })
            .cloned()
            .collect();
        let (legacy_mesh, legacy_policies, errs) = legacy_policy::parse_all(&legacy_objs);
        for e in errs {
            problems.push(Gap {
                source: "authentication.istio.io policy".into(),
                reason: format!("ignored: {e}"),
            });
        }
        let legacy_served = snap
            .served_resources
            .iter()
            .any(|r| r.group == "authentication.istio.io");
        let pa_served = snap
            .served_resources
            .iter()
            .any(|r| r.kind == "PeerAuthentication");
        // Istio 1.5 served both; PeerAuthentication took over when present.
        let legacy_authn = (!legacy_mesh.is_empty()
            || !legacy_policies.is_empty()
            || (legacy_served && !pa_served))
            && pas.is_empty();

        let services = resolve_services(snap);
        let mut proxies: Vec<Proxy> = snap
            .proxies
            .iter()
            .map(|e| parse_proxy(e, &pods, &mut problems))
            .collect();
        group_replicas(&mut proxies);
        Context {
            snap,
            mesh,
            mesh_found,
            version,
            root_ns,
            auto_mtls,
            drs,
            pas,
            legacy_mesh,
            legacy_policies,
            legacy_authn,
            services,
            proxies,
            problems,
        }
    }

    pub fn pods(&self) -> impl Iterator<Item = &'a Value> + 'a {
        self.snap.objects_of_kind("Pod")
    }

    /// Pods backing a Service (same namespace, selector matches).
    pub fn backing_pods(&self, svc: &Service) -> Vec<&'a Value> {
        if svc.selector.is_empty() {
            return vec![];
        }
        self.pods()
            .filter(|p| ns_of(p) == svc.namespace)
            .filter(|p| {
                let l = labels_of(p, &["metadata", "labels"]);
                svc.selector.iter().all(|(k, v)| l.get(k) == Some(v))
            })
            .collect()
    }

    pub fn proxy_for(&self, ns: &str, pod: &str) -> Option<&Proxy<'a>> {
        self.proxies
            .iter()
            .find(|p| p.evidence.namespace == ns && p.evidence.pod == pod)
    }

    /// Client sidecars, one per workload (see [`Proxy::same_workload`]).
    pub fn clients(&self) -> impl Iterator<Item = &Proxy<'a>> {
        self.proxies
            .iter()
            .filter(|p| p.evidence.role == ProxyRole::Client && p.same_workload != usize::MAX)
    }

    /// Gaps found while analysing (unparseable objects, missing mesh config).
    pub fn gaps(&self) -> Vec<Gap> {
        let mut g = self.problems.clone();
        if !self.mesh_found {
            g.push(Gap {
                source: format!("ConfigMap {}/istio", self.snap.istio_namespace),
                reason: "mesh config not in the snapshot; assumed Istio's defaults".into(),
            });
        }
        for p in &self.proxies {
            if p.evidence.log_tail.is_some()
                && !p.log_has_access_lines
                && p.evidence.role == ProxyRole::Client
            {
                g.push(Gap {
                    source: format!("pod {} istio-proxy log", p.id()),
                    reason: "no access log lines: access logging is off (mesh config accessLogFile) or no traffic yet".into(),
                });
            }
            if let Some(s) = &p.stats {
                if !s.present("cluster.outbound|") {
                    g.push(Gap {
                        source: format!("pod {} :15000/stats", p.id()),
                        reason: "per-cluster outbound stats are excluded by Istio's default stats inclusion (sidecar.istio.io/statsInclusionPrefixes adds them); used /clusters and logs instead".into(),
                    });
                }
            }
        }
        g
    }

    /// What was looked at, for the report.
    pub fn checked(&self) -> Vec<String> {
        let mut c = Vec::new();
        for s in &self.services {
            let ports: Vec<String> = s.ports.iter().map(|p| p.number.to_string()).collect();
            c.push(format!(
                "Service {}/{} (ports {})",
                s.namespace,
                s.name,
                ports.join(", ")
            ));
        }
        c.push(format!(
            "{} DestinationRule(s), {} PeerAuthentication(s), {} legacy authentication polic(ies); mesh config {} (auto mTLS {}, root namespace {}{})",
            self.drs.len(),
            self.pas.len(),
            self.legacy_mesh.len() + self.legacy_policies.len(),
            if self.mesh_found { "read" } else { "missing (defaults)" },
            if self.auto_mtls { "on" } else { "off" },
            self.root_ns,
            self.version.map(|v| format!(", Istio {v}")).unwrap_or_default()
        ));
        for p in &self.proxies {
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
            if p.evidence.log_tail.is_some() {
                parts.push("access log");
            }
            let role = match p.evidence.role {
                ProxyRole::Server => "server",
                ProxyRole::Client => "client",
            };
            c.push(format!(
                "{role} sidecar {} ({}): {}",
                p.id(),
                p.evidence.chosen_because,
                if parts.is_empty() {
                    "nothing readable".to_string()
                } else {
                    parts.join(", ")
                }
            ));
        }
        c
    }
}

/// The controller a pod belongs to (`ReplicaSet/sleep-5b7d…`), or the pod itself.
fn workload_of(p: &Proxy) -> (String, String) {
    let owner = p.pod.and_then(|pod| {
        let o = &pod["metadata"]["ownerReferences"][0];
        Some(format!("{}/{}", o["kind"].as_str()?, o["name"].as_str()?))
    });
    (
        p.evidence.namespace.clone(),
        owner.unwrap_or_else(|| format!("Pod/{}", p.evidence.pod)),
    )
}

/// Keep one client per workload: the one with the most access log lines
/// (the best evidence) gets `same_workload` = the others' count; the others
/// are marked `usize::MAX` and skipped by [`Context::clients`].
fn group_replicas(proxies: &mut [Proxy]) {
    let mut best: BTreeMap<(String, String), usize> = BTreeMap::new();
    for (i, p) in proxies.iter().enumerate() {
        if p.evidence.role != ProxyRole::Client {
            continue;
        }
        let k = workload_of(p);
        match best.get(&k) {
            Some(&j) if proxies[j].log.len() >= p.log.len() => {}
            _ => {
                best.insert(k, i);
            }
        }
    }
    let keys: Vec<Option<(String, String)>> = proxies
        .iter()
        .map(|p| (p.evidence.role == ProxyRole::Client).then(|| workload_of(p)))
        .collect();
    for (i, k) in keys.iter().enumerate() {
        let Some(k) = k else { continue };
        if best.get(k) == Some(&i) {
            proxies[i].same_workload = keys.iter().filter(|o| o.as_ref() == Some(k)).count() - 1;
        } else {
            proxies[i].same_workload = usize::MAX;
        }
    }
}

fn parse_proxy<'a>(e: &'a ProxyEvidence, pods: &[&'a Value], problems: &mut Vec<Gap>) -> Proxy<'a> {
    let pod = pods
        .iter()
        .copied()
        .find(|p| ns_of(p) == e.namespace && name_of(p) == e.pod);
    let id = format!("{}/{}", e.namespace, e.pod);
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
            Err(err) => problems.push(Gap {
                source: format!("pod {id} :15000/config_dump ({what})"),
                reason: format!("unreadable: {err}"),
            }),
        }
    }
    let clusters = e.clusters.as_deref().and_then(|t| match parse_clusters(t) {
        Ok(c) => Some(c),
        Err(err) => {
            problems.push(Gap {
                source: format!("pod {id} :15000/clusters"),
                reason: format!("unreadable: {err}"),
            });
            None
        }
    });
    let stats = e.stats.as_deref().map(parse_stats);
    let (log, _skipped) = e.log_tail.as_deref().map(parse_log).unwrap_or_default();
    let log_has_access_lines = !log.is_empty();
    Proxy {
        evidence: e,
        pod,
        dump,
        clusters,
        stats,
        log,
        log_has_access_lines,
        same_workload: 0,
    }
}

/// The Services the snapshot's target names, resolved against its objects.
fn resolve_services(snap: &Snapshot) -> Vec<Service<'_>> {
    let ns = snap.namespace.as_str();
    let svcs: Vec<&Value> = snap.objects_of_kind("Service").collect();
    let by_name = |name: &str, ns: &str| {
        svcs.iter()
            .copied()
            .filter(|s| name_of(s) == name && ns_of(s) == ns)
            .collect::<Vec<_>>()
    };
    let selecting = |labels: &BTreeMap<String, String>| {
        svcs.iter()
            .copied()
            .filter(|s| ns_of(s) == ns)
            .filter(|s| {
                let sel = labels_of(s, &["spec", "selector"]);
                !sel.is_empty() && sel.iter().all(|(k, v)| labels.get(k) == Some(v))
            })
            .collect::<Vec<_>>()
    };
    let parsed = snap.target.parse::<Target>();
    // A host target with a port (`httpbin.foo:8000`) limits the check to that port.
    let only_port = match &parsed {
        Ok(Target::Host { port, .. }) => *port,
        _ => None,
    };
    let chosen: Vec<&Value> = match parsed {
        Ok(Target::Service { name }) => by_name(&name, ns),
        Ok(t @ Target::Host { .. }) => match t.service_host(ns) {
            Some(h) => by_name(&h.name, &h.namespace),
            None => vec![],
        },
        Ok(Target::Deployment { name }) => snap
            .objects_of_kind("Deployment")
            .find(|d| name_of(d) == name && ns_of(d) == ns)
            .map(|d| selecting(&labels_of(d, &["spec", "template", "metadata", "labels"])))
            .unwrap_or_default(),
        Ok(Target::Pod { name }) => snap
            .objects_of_kind("Pod")
            .find(|p| name_of(p) == name && ns_of(p) == ns)
            .map(|p| selecting(&labels_of(p, &["metadata", "labels"])))
            .unwrap_or_default(),
        Err(_) => vec![],
    };
    chosen
        .into_iter()
        .map(|s| {
            let name = name_of(s).to_string();
            let namespace = ns_of(s).to_string();
            let ports = s["spec"]["ports"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|p| {
                    let number = p["port"].as_u64()? as u16;
                    if only_port.is_some_and(|o| o != number) {
                        return None;
                    }
                    Some(ServicePort {
                        number,
                        name: p["name"].as_str().map(str::to_string),
                        target_port: if p["targetPort"].is_null() {
                            Value::from(number)
                        } else {
                            p["targetPort"].clone()
                        },
                        app_protocol: p["appProtocol"].as_str().map(str::to_string),
                    })
                })
                .collect();
            Service {
                obj: s,
                fqdn: format!("{name}.{namespace}.svc.cluster.local"),
                selector: labels_of(s, &["spec", "selector"]),
                name,
                namespace,
                ports,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(cluster: Option<&str>, authority: Option<&str>) -> AccessLogEntry {
        AccessLogEntry {
            upstream_cluster: cluster.map(str::to_string),
            authority: authority.map(str::to_string),
            ..Default::default()
        }
    }

    #[test]
    fn log_lines_are_matched_to_a_service_port() {
        let f = "httpbin.foo.svc.cluster.local";
        assert!(log_line_targets(
            &entry(Some("outbound|8000||httpbin.foo.svc.cluster.local"), None),
            8000,
            f
        ));
        assert!(log_line_targets(
            &entry(Some("outbound|8000|v2|httpbin.foo.svc.cluster.local"), None),
            8000,
            f
        ));
        assert!(!log_line_targets(
            &entry(Some("outbound|9000||httpbin.foo.svc.cluster.local"), None),
            8000,
            f
        ));
        assert!(!log_line_targets(
            &entry(Some("inbound|8080||"), Some("httpbin.foo:8000")),
            8000,
            f
        ));
        assert!(log_line_targets(
            &entry(None, Some("httpbin.foo:8000")),
            8000,
            f
        ));
        assert!(log_line_targets(&entry(None, Some("httpbin")), 8000, f));
        assert!(!log_line_targets(
            &entry(None, Some("httpbin.foo:9000")),
            8000,
            f
        ));
        assert!(!log_line_targets(
            &entry(None, Some("httpbin2.foo:8000")),
            8000,
            f
        ));
    }
}
