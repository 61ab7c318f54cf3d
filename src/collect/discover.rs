//! Collect stage: who calls the target, found from the target's side, as
//! pure functions over what was already read (the I/O is in `clients`):
//!
//! - [`callers_in_metrics`]: the server sidecars' Istio standard metrics,
//!   rows with `reporter=destination` for the target's Services, grouped by
//!   `source_workload` / `source_workload_namespace` (istio.io
//!   `docs/reference/config/metrics`: the server's sidecar fills the
//!   `source_*` labels from the peer's metadata; a peer it knows nothing
//!   about — a client without sidecar, something outside the mesh — is
//!   `unknown`, and its connection is `connection_security_policy=none`
//!   when it arrived in plaintext). A TLS handshake the server refused
//!   never becomes a request, so these rows never show a plaintext caller
//!   of a STRICT port; the other sources are for that.
//! - [`pods_of_workload`]: a `source_workload` back to pods, with Istio's
//!   own derivation of a pod's workload name (istio/istio
//!   `pkg/kube/util.go` `GetDeployMetaFromPod`, as `model::pods` reads it).
//! - [`config_caller_namespaces`]: namespaces whose own Istio config names
//!   the target's host (a DestinationRule for the host visible in its
//!   namespace, a Sidecar importing it by name, a VirtualService routing to
//!   it): their workloads are configured to call it, so their sidecars are
//!   worth sampling for traffic to it.
//! - [`pods_naming_host`]: pods without a sidecar whose environment or
//!   command line names the target's host (read before redaction: the
//!   snapshot keeps only why, never the value). With access logs off this
//!   is the only trace a plaintext caller of a STRICT server leaves that a
//!   read-only tool can see, so it is reported as config-only evidence.
//!
//! The `Run` methods at the end do the reads these need (pod lists) and
//! record what they found; `clients::choose_clients` orders the sources.

use std::collections::{BTreeMap, HashSet};

use serde_json::Value;

use super::clients::pick_deployment_pods;
use super::error::CollectError;
use super::objects;
use super::Run;
use crate::envoy::metrics::{parse_istio_metrics, IstioMetric, IstioMetrics, Reporter};
use crate::istio::host;
use crate::istio::mesh_config::MeshConfig;
use crate::istio::sidecar::has_sidecar;
use crate::snapshot::{FoundCaller, ObjectRef, ProxyEvidence};

/// One source workload the server sidecars counted requests from.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MetricCaller {
    /// `source_workload_namespace` and `source_workload`.
    pub namespace: String,
    pub workload: String,
    /// Requests (HTTP) or connections (TCP) counted.
    pub requests: u64,
    /// Of those, answered 503.
    pub unavailable: u64,
    /// Of those, counted with `connection_security_policy=none`.
    pub plaintext: u64,
    /// The server pods whose metrics counted them (`ns/name`).
    pub seen_by: Vec<String>,
}

impl MetricCaller {
    /// Why it is a caller, in words.
    pub fn because(&self) -> String {
        let mut s = format!(
            "the server sidecar metrics of {} count {} request{} from source_workload={} \
             (source_workload_namespace={}, istio_requests_total reporter=destination)",
            self.seen_by.join(", "),
            self.requests,
            if self.requests == 1 { "" } else { "s" },
            self.workload,
            self.namespace
        );
        if self.unavailable > 0 {
            s.push_str(&format!(", {} answered 503", self.unavailable));
        }
        if self.plaintext > 0 {
            s.push_str(&format!(", {} in plaintext", self.plaintext));
        }
        s
    }
}

/// What the server metrics say about the target's callers.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MetricCallers {
    /// Known source workloads, most 503s first, then most requests.
    pub known: Vec<MetricCaller>,
    /// Requests from `source_workload=unknown` (or no label) and how many of
    /// those arrived in plaintext: clients without a sidecar or outside the
    /// mesh, which the metrics cannot name.
    pub unknown: u64,
    pub unknown_plaintext: u64,
}

/// Whether a row counts traffic to one of `services` (`(name, namespace)`).
fn row_is_for(r: &crate::envoy::metrics::MetricRow, services: &[(String, String)]) -> bool {
    let name = r.labels.get("destination_service_name");
    let ns = r.destination_service_namespace.as_ref();
    services.iter().any(|(sn, sns)| {
        let by_labels = name == Some(sn) && ns == Some(sns);
        let by_host = r.destination_service.as_deref().is_some_and(|h| {
            h.strip_prefix(&format!("{sn}.{sns}"))
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('.'))
        });
        by_labels || by_host
    })
}

/// Callers of `services` in the server sidecars' metrics: `(server pod, metrics)` pairs.
pub fn callers_in_metrics(
    servers: &[(String, IstioMetrics)],
    services: &[(String, String)],
) -> MetricCallers {
    let mut known: BTreeMap<(String, String), MetricCaller> = BTreeMap::new();
    let mut out = MetricCallers::default();
    for (server, metrics) in servers {
        let rows = metrics.rows.iter().filter(|r| {
            matches!(
                r.metric,
                IstioMetric::RequestsTotal | IstioMetric::TcpConnectionsOpened
            ) && r.reporter == Some(Reporter::Destination)
                && row_is_for(r, services)
        });
        for r in rows {
            let plaintext = r.connection_security_policy.as_deref() == Some("none");
            let workload = r.source_workload.as_deref().filter(|w| *w != "unknown");
            let ns = r
                .source_workload_namespace
                .as_deref()
                .filter(|n| *n != "unknown");
            let (Some(workload), Some(ns)) = (workload, ns) else {
                out.unknown = out.unknown.saturating_add(r.value);
                if plaintext {
                    out.unknown_plaintext = out.unknown_plaintext.saturating_add(r.value);
                }
                continue;
            };
            let c = known
                .entry((ns.to_string(), workload.to_string()))
                .or_insert_with(|| MetricCaller {
                    namespace: ns.to_string(),
                    workload: workload.to_string(),
                    ..MetricCaller::default()
                });
            c.requests = c.requests.saturating_add(r.value);
            if r.response_code == Some(503) {
                c.unavailable = c.unavailable.saturating_add(r.value);
            }
            if plaintext {
                c.plaintext = c.plaintext.saturating_add(r.value);
            }
            if !c.seen_by.contains(server) {
                c.seen_by.push(server.clone());
            }
        }
    }
    out.known = known.into_values().filter(|c| c.requests > 0).collect();
    out.known.sort_by(|a, b| {
        b.unavailable
            .cmp(&a.unavailable)
            .then(b.requests.cmp(&a.requests))
            .then_with(|| (&a.namespace, &a.workload).cmp(&(&b.namespace, &b.workload)))
    });
    out
}

/// Istio's workload name of a pod: a ReplicaSet controller named
/// `<deployment>-<pod-template-hash>` gives the Deployment's name, any
/// other controller its own name, no controller the pod's name.
pub fn workload_name(pod: &Value) -> String {
    let controller = pod["metadata"]["ownerReferences"]
        .as_array()
        .and_then(|o| o.iter().find(|r| r["controller"] == true));
    let Some(c) = controller else {
        return objects::name(pod).to_string();
    };
    let name = c["name"].as_str().unwrap_or_default();
    if c["kind"] == "ReplicaSet" {
        if let Some(d) = pod["metadata"]["labels"]["pod-template-hash"]
            .as_str()
            .and_then(|h| name.strip_suffix(&format!("-{h}")))
        {
            return d.to_string();
        }
    }
    name.to_string()
}

/// The pods of `namespace` whose Istio workload name is `workload`.
pub fn pods_of_workload<'p>(pods: &'p [Value], namespace: &str, workload: &str) -> Vec<&'p Value> {
    pods.iter()
        .filter(|p| objects::namespace(p) == namespace && workload_name(p) == workload)
        .collect()
}

/// Whether an Istio `exportTo` list makes an object of `owner_ns` visible in `ns`.
fn exported_to(o: &Value, owner_ns: &str, ns: &str) -> bool {
    match o["spec"]["exportTo"].as_array() {
        None => true,
        Some(list) if list.is_empty() => true,
        Some(list) => list
            .iter()
            .filter_map(Value::as_str)
            .any(|e| e == "*" || e == ns || (e == "." && owner_ns == ns)),
    }
}

/// Whether `h` (as written in an object of namespace `owner_ns`) names the
/// target host `fqdn` itself: no wildcard (a `*.local` rule names every
/// host, so it says nothing about who calls this one).
/// A `name.namespace` form Istio takes literally (and so routes nowhere)
/// still says who means to call the host ([`host::probable_intent`]).
fn names_host(h: &str, owner_ns: &str, fqdn: &str, domain: &str) -> bool {
    let h = h.to_ascii_lowercase();
    !host::is_wildcard(&h)
        && (host::fqdn(&h, owner_ns, domain).eq_ignore_ascii_case(fqdn)
            || host::probable_intent(&h, domain).is_some_and(|i| i.eq_ignore_ascii_case(fqdn)))
}

/// The mesh's root namespace from the `istio` ConfigMap among `objects`
/// (`rootNamespace`, default `istio-system`).
fn mesh_root_namespace(objects: &[Value]) -> String {
    objects
        .iter()
        .filter(|o| o["kind"].as_str() == Some("ConfigMap"))
        .find_map(|o| MeshConfig::from_configmap(o).ok())
        .map(|m| m.root_namespace().to_string())
        .unwrap_or_else(|| "istio-system".to_string())
}

/// A wildcard DestinationRule outside the root namespace that covers the
/// host and sets `tls` (top level or per port), applying to its own
/// namespace: istio/istio#36672's `*` ISTIO_MUTUAL in one namespace makes
/// every sidecar there choose TLS for this host too, so that namespace's
/// pods are callers worth reading. A mesh-wide rule (root namespace) says
/// nothing about who calls this host; a wildcard without `tls` changes no
/// wire.
fn wildcard_tls_covers(o: &Value, h: &str, ns: &str, fqdn: &str, domain: &str) -> bool {
    let h = h.to_ascii_lowercase();
    if !host::is_wildcard(&h) || !exported_to(o, ns, ns) {
        return false;
    }
    let pattern = if h == "*" {
        h.clone()
    } else {
        host::fqdn(&h, ns, domain)
    };
    if !host::matches(&pattern, &fqdn.to_ascii_lowercase()) {
        return false;
    }
    let tp = &o["spec"]["trafficPolicy"];
    tp.get("tls").is_some_and(|t| !t.is_null())
        || tp["portLevelSettings"].as_array().is_some_and(|ps| {
            ps.iter()
                .any(|p| p.get("tls").is_some_and(|t| !t.is_null()))
        })
}

/// Namespaces other than the target's whose own Istio config names the
/// target host, each with why (first reason kept).
pub fn config_caller_namespaces(
    objects: &[Value],
    service: (&str, &str),
    domain: &str,
) -> BTreeMap<String, String> {
    let (name, svc_ns) = service;
    let fqdn = format!("{name}.{svc_ns}.svc.{domain}");
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    let mut add = |ns: &str, why: String| {
        if ns != svc_ns && !ns.is_empty() {
            out.entry(ns.to_string()).or_insert(why);
        }
    };
    let root = mesh_root_namespace(objects);
    for o in objects {
        let ns = objects::namespace(o);
        let key = format!("{ns}/{}", objects::name(o));
        match o["kind"].as_str() {
            Some("DestinationRule") => {
                let h = o["spec"]["host"].as_str().unwrap_or_default();
                if names_host(h, ns, &fqdn, domain) && exported_to(o, ns, ns) {
                    add(ns, format!("DestinationRule {key} applies to the host"));
                } else if ns != root && wildcard_tls_covers(o, h, ns, &fqdn, domain) {
                    add(
                        ns,
                        format!(
                            "DestinationRule {key} (host `{h}`) sets TLS for every host its namespace calls, this one included"
                        ),
                    );
                }
            }
            Some("VirtualService") => {
                let routes = ["http", "tcp", "tls"]
                    .iter()
                    .filter_map(|k| o["spec"][k].as_array())
                    .flatten()
                    .filter_map(|r| r["route"].as_array())
                    .flatten();
                let to_target = routes
                    .filter_map(|d| d["destination"]["host"].as_str())
                    .any(|h| names_host(h, ns, &fqdn, domain));
                let mesh = o["spec"]["gateways"]
                    .as_array()
                    .is_none_or(|g| g.is_empty() || g.iter().any(|g| g.as_str() == Some("mesh")));
                if to_target && mesh && exported_to(o, ns, ns) {
                    add(ns, format!("VirtualService {key} routes to the host"));
                }
            }
            Some("Sidecar") => {
                let hosts = o["spec"]["egress"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|e| e["hosts"].as_array())
                    .flatten()
                    .filter_map(Value::as_str);
                let imports = hosts.into_iter().any(|h| {
                    let Some((hns, hh)) = h.split_once('/') else {
                        return false;
                    };
                    (hns == svc_ns && (hh == "*" || names_host(hh, svc_ns, &fqdn, domain)))
                        || (hns == "*" && names_host(hh, svc_ns, &fqdn, domain))
                });
                if imports {
                    add(
                        ns,
                        format!("Sidecar {key} imports the host's namespace or name"),
                    );
                }
            }
            _ => {}
        }
    }
    out
}

/// Why callers outside the target's namespace may see the host otherwise:
/// a DestinationRule for the host in its own namespace that is not
/// exported to every namespace (`exportTo` without `*`). Callers elsewhere
/// then get another rule, or none, and no config of theirs names the host,
/// so the sample looks in every namespace (`None`: every such rule is
/// exported everywhere).
pub fn rule_not_exported_everywhere(
    objects: &[Value],
    services: &[(String, String)],
    domain: &str,
) -> Option<String> {
    services.iter().find_map(|(name, svc_ns)| {
        let fqdn = format!("{name}.{svc_ns}.svc.{domain}");
        objects.iter().find_map(|o| {
            let ns = objects::namespace(o);
            let host = o["spec"]["host"].as_str().unwrap_or_default();
            let list: Vec<&str> = o["spec"]["exportTo"]
                .as_array()?
                .iter()
                .filter_map(Value::as_str)
                .collect();
            let restricted = !list.is_empty() && !list.contains(&"*");
            (o["kind"] == "DestinationRule"
                && ns == svc_ns
                && restricted
                && names_host(host, ns, &fqdn, domain))
            .then(|| {
                format!(
                    "DestinationRule {ns}/{} for the host is exported only to {}: callers elsewhere get another view of it",
                    objects::name(o),
                    list.join(", ")
                )
            })
        })
    })
}

/// The host forms a pod's configuration may name the Service by: the FQDN,
/// `name.ns.svc`, `name.ns`, and (in its own namespace) `name` in a URL.
fn host_forms(name: &str, ns: &str, domain: &str, same_ns: bool) -> Vec<String> {
    let mut v = vec![
        format!("{name}.{ns}.svc.{domain}"),
        format!("{name}.{ns}.svc"),
        format!("{name}.{ns}"),
    ];
    if same_ns {
        v.push(name.to_string());
    }
    v
}

/// Whether `text` names `form` as a host: not inside a longer name, and
/// followed by nothing, a port, a path or the rest of the Service's DNS name.
fn names_as_host(text: &str, form: &str, domain: &str) -> bool {
    let is_name = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
    let mut from = 0;
    while let Some(i) = text[from..].find(form) {
        let start = from + i;
        let end = start + form.len();
        let before_ok = text[..start]
            .chars()
            .next_back()
            .is_none_or(|c| !is_name(c) && c != '.');
        let rest = &text[end..];
        let after_ok = match rest.chars().next() {
            None => true,
            Some('.') => rest.starts_with(".svc") || rest.starts_with(&format!(".{domain}")),
            Some(c) => !is_name(c),
        };
        if before_ok && after_ok {
            return true;
        }
        from = end;
    }
    false
}

/// Running pods without a sidecar whose container environment (`env[].value`),
/// `command` or `args` name the Service's host, each with which one.
pub fn pods_naming_host<'p>(
    pods: &'p [Value],
    service: (&str, &str),
    domain: &str,
) -> Vec<(&'p Value, String)> {
    let (name, svc_ns) = service;
    let mut out = Vec::new();
    for p in pods {
        if has_sidecar(p) || !objects::is_running(p) || !objects::valid_ref(p) {
            continue;
        }
        let same_ns = objects::namespace(p) == svc_ns;
        let forms = host_forms(name, svc_ns, domain, same_ns);
        let names = |t: &str| {
            forms.iter().enumerate().any(|(i, f)| {
                // The bare name only as a URL host (`http://name:port`).
                if i == 3 {
                    return t.contains(&format!("://{f}:")) || t.contains(&format!("://{f}/"));
                }
                names_as_host(t, f, domain)
            })
        };
        let containers = p["spec"]["containers"].as_array().into_iter().flatten();
        let mut why = None;
        'c: for c in containers {
            let cname = c["name"].as_str().unwrap_or("?");
            for e in c["env"].as_array().into_iter().flatten() {
                if e["value"].as_str().is_some_and(names) {
                    let var = e["name"].as_str().unwrap_or("?");
                    why = Some(format!("container {cname}'s environment variable {var}"));
                    break 'c;
                }
            }
            for field in ["command", "args"] {
                let hit = c[field]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .any(names);
                if hit {
                    why = Some(format!("container {cname}'s {field}"));
                    break 'c;
                }
            }
        }
        if let Some(w) = why {
            out.push((
                p,
                format!("it has no sidecar and its {w} names {name}.{svc_ns}"),
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests;

/// The target's Services as `(name, namespace)`.
pub fn service_names(r: &super::resolve::Resolved) -> Vec<(String, String)> {
    r.services
        .iter()
        .map(|s| {
            (
                objects::name(s).to_string(),
                objects::namespace(s).to_string(),
            )
        })
        .collect()
}

/// At most this many pods without a sidecar are kept as callers found from
/// their configuration.
pub const MAX_SIDECARLESS_CALLERS: usize = 10;

impl Run<'_> {
    /// Clients from the server sidecars' metrics: each known source
    /// workload mapped to one running pod of it (most 503s first), at most
    /// `max`; callers the metrics cannot name are recorded as such.
    pub(super) async fn clients_from_metrics(
        &mut self,
        r: &super::resolve::Resolved,
        servers: &[ProxyEvidence],
        exclude: &HashSet<String>,
        max: usize,
    ) -> Result<Vec<(Value, String)>, CollectError> {
        let read: Vec<(String, IstioMetrics)> = servers
            .iter()
            .filter_map(|ev| {
                // The Prometheus read, else the same counters in `/stats`.
                let from =
                    |t: Option<&str>| t.map(parse_istio_metrics).filter(|m| !m.rows.is_empty());
                let m = from(ev.metrics.as_deref()).or_else(|| from(ev.stats.as_deref()))?;
                Some((format!("{}/{}", ev.namespace, ev.pod), m))
            })
            .collect();
        let found = callers_in_metrics(&read, &service_names(r));
        if found.unknown > 0 {
            self.found_callers.push(FoundCaller {
                pod: None,
                because: format!(
                    "the server sidecar metrics count {} request{} from source_workload=unknown ({} in plaintext, \
                     connection_security_policy=none): clients without a sidecar or outside the mesh, which metrics cannot name",
                    found.unknown,
                    if found.unknown == 1 { "" } else { "s" },
                    found.unknown_plaintext
                ),
            });
        }
        let mut out: Vec<(Value, String)> = Vec::new();
        for c in found.known {
            if out.len() >= max {
                break;
            }
            let pods = self.pods_in(&c.namespace).await?.unwrap_or_default();
            let mine: Vec<Value> = pods_of_workload(&pods, &c.namespace, &c.workload)
                .into_iter()
                .filter(|p| !exclude.contains(&objects::key(p)))
                .cloned()
                .collect();
            match pick_deployment_pods(&mine, 1).first() {
                Some(p) => out.push(((*p).clone(), c.because())),
                None if mine.is_empty()
                    && pods_of_workload(&pods, &c.namespace, &c.workload).is_empty() =>
                {
                    self.gap(
                        "client discovery",
                        format!(
                            "the server sidecar metrics count {} request(s) from source_workload={} in namespace {}, \
                             but no pod of that workload is there (since deleted, or a name Istio derived differently)",
                            c.requests, c.workload, c.namespace
                        ),
                    );
                }
                None => {}
            }
        }
        Ok(out)
    }

    /// Pods without a sidecar whose configuration names one of the target's
    /// Services (every namespace), kept as objects with how they were found.
    pub(super) async fn callers_without_sidecar(
        &mut self,
        r: &super::resolve::Resolved,
        exclude: &HashSet<String>,
    ) -> Result<(), CollectError> {
        let services = service_names(r);
        if services.is_empty() {
            return Ok(());
        }
        let domain = self.resolved_target(r).cluster_domain;
        let Some(pods) = self.pods_without_sidecar_label().await? else {
            return Ok(());
        };
        let mut found: Vec<(Value, String)> = Vec::new();
        for (name, ns) in &services {
            for (p, because) in pods_naming_host(&pods, (name.as_str(), ns.as_str()), &domain) {
                let key = objects::key(p);
                if exclude.contains(&key) || found.iter().any(|(q, _)| objects::key(q) == key) {
                    continue;
                }
                found.push((p.clone(), because));
            }
        }
        if found.len() > MAX_SIDECARLESS_CALLERS {
            self.gap(
                "client discovery",
                format!(
                    "{} pods without a sidecar name the target in their configuration; kept the first {MAX_SIDECARLESS_CALLERS}",
                    found.len()
                ),
            );
            found.truncate(MAX_SIDECARLESS_CALLERS);
        }
        for (p, because) in found {
            let (ns, name) = (objects::namespace(&p), objects::name(&p));
            self.found_callers.push(FoundCaller {
                pod: Some(ObjectRef {
                    namespace: ns.to_string(),
                    name: name.to_string(),
                }),
                because,
            });
            self.client_namespaces.insert(ns.to_string());
            self.add_object(p);
        }
        Ok(())
    }
}
