//! Collect stage: choosing which client pods to read: `--from`, else the callers the
//! server sidecars' access logs name (mapped to pods by IP), else a sample
//! of injected pods whose `/clusters` shows traffic to the target.
//!
//! Envoy's text is never parsed here and no Envoy fact is decided here:
//! callers come from [`crate::envoy::access_log::callers_in_log`] (read with
//! the formats the server's listeners really use,
//! `ConfigDump::access_log_formats`), traffic from
//! [`crate::envoy::clusters::Clusters::traffic_to`] over a parsed
//! `/clusters`. What this module adds is the I/O and the choice.

use std::collections::{BTreeMap, HashSet};

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use serde_json::Value;

use super::error::CollectError;
use super::objects;
use super::sidecar::{read_admin_scoped, AdminRead, ProxyJob, ADMIN_PORT};
use super::Run;
use crate::envoy::access_log::{callers_in_log, Caller, LogFormatSpec};
use crate::envoy::clusters::{parse_clusters, ServiceTraffic};
use crate::envoy::config_dump::parse_config_dump;
use crate::istio::sidecar::has_sidecar;
use crate::snapshot::{ProxyEvidence, ProxyRole};
use crate::target::ClientRef;

/// The access-log formats a server sidecar's listeners use (custom
/// `accessLogFormat` included), from its listeners dump as read.
pub fn listener_formats(ev: &ProxyEvidence) -> Vec<LogFormatSpec> {
    ev.listeners_config
        .as_ref()
        .and_then(|v| parse_config_dump(v).ok())
        .map(|d| d.access_log_formats())
        .unwrap_or_default()
}

/// Clients chosen from callers seen in server access logs: callers mapped to
/// pods by IP (most requests first), at most `max`. Returns the chosen pods
/// with why, and the callers that matched no pod.
pub fn clients_from_callers<'p>(
    callers: &[(Caller, Vec<String>)],
    pods: &'p [Value],
    exclude: &HashSet<String>,
    max: usize,
) -> (Vec<(&'p Value, String)>, Vec<Caller>) {
    let mut chosen: Vec<(&Value, String)> = Vec::new();
    let mut unmatched = Vec::new();
    for (caller, seen_by) in callers {
        let pod = pods
            .iter()
            .filter(|p| !exclude.contains(&objects::key(p)))
            .find(|p| objects::pod_ips(p).contains(&caller.ip));
        let Some(pod) = pod else {
            unmatched.push(caller.clone());
            continue;
        };
        if chosen.len() >= max
            || chosen
                .iter()
                .any(|(p, _)| objects::key(p) == objects::key(pod))
        {
            continue;
        }
        let mut because = format!(
            "its IP {} is the caller (downstream address) of {} request{} in the access log of {}",
            caller.ip,
            caller.requests,
            if caller.requests == 1 { "" } else { "s" },
            seen_by.join(", ")
        );
        if caller.unavailable > 0 {
            because.push_str(&format!(", {} answered 503", caller.unavailable));
        } else if caller.server_errors > 0 {
            because.push_str(&format!(", {} answered 5xx", caller.server_errors));
        }
        chosen.push((pod, because));
    }
    (chosen, unmatched)
}

/// At most this many namespaces whose config names the host are read as
/// caller namespaces.
pub const MAX_CONFIG_NAMESPACES: usize = 20;

/// A sampled pod's `/clusters` reading, for client choice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    pub namespace: String,
    pub pod: String,
    pub traffic: ServiceTraffic,
}

/// Clients chosen from sampled pods: those whose `/clusters` shows requests
/// (`rq_total` > 0) or connection attempts (`cx_total` > 0: a failed TLS
/// handshake never becomes a request) to the service, most first (ties keep
/// the order of `probes`), at most `max`.
pub fn clients_from_probes(probes: &[Probe], service: &str, max: usize) -> Vec<(Probe, String)> {
    let mut with_traffic: Vec<&Probe> = probes
        .iter()
        .filter(|p| p.traffic.rq_total > 0 || p.traffic.cx_total > 0)
        .collect();
    with_traffic.sort_by_key(|p| std::cmp::Reverse(p.traffic.rq_total + p.traffic.cx_total));
    with_traffic
        .into_iter()
        .take(max)
        .map(|p| {
            let t = &p.traffic;
            let mut errors = if t.rq_error > 0 { format!(" ({} failed)", t.rq_error) } else { String::new() };
            if t.cx_connect_fail > 0 {
                errors.push_str(&format!(" and {}", crate::words::count(t.cx_connect_fail as usize, "failed connection", "failed connections")));
            }
            let clusters: Vec<&str> = t.clusters.iter().map(String::as_str).collect();
            (
                p.clone(),
                format!(
                    "no access log named a caller; in a sample of injected pods, its /clusters shows {} request{}{} to {} ({})",
                    t.rq_total,
                    if t.rq_total == 1 { "" } else { "s" },
                    errors,
                    service,
                    clusters.join(", ")
                ),
            )
        })
        .collect()
}

/// Up to `n` pods of a deployment to read: ready ones first, then running.
pub fn pick_deployment_pods(pods: &[Value], n: usize) -> Vec<&Value> {
    let mut ready: Vec<&Value> = pods.iter().filter(|p| objects::is_ready(p)).collect();
    let running = pods
        .iter()
        .filter(|p| objects::is_running(p) && !objects::is_ready(p));
    ready.extend(running);
    ready.truncate(n);
    ready
}

impl Run<'_> {
    /// Chooses the client pods and returns the sidecars to read.
    pub(super) async fn choose_clients(
        &mut self,
        r: &super::resolve::Resolved,
        servers: &[ProxyEvidence],
    ) -> Result<Vec<ProxyJob>, CollectError> {
        let exclude: HashSet<String> = r.server_pods.iter().map(|(p, _)| objects::key(p)).collect();
        let chosen = if !self.opts.from.is_empty() {
            self.clients_from_flags().await?
        } else {
            self.clients_from_target_side(r, servers, &exclude).await?
        };
        Ok(self.named_client_jobs(chosen))
    }

    /// Callers found from the target's side, in this order: the servers'
    /// access logs (callers by IP), their metrics (callers by
    /// `source_workload`), then a sample of injected pods' `/clusters` in
    /// the namespaces whose own config names the host (always) and in the
    /// target's namespace (when nothing so far shows a failing caller: a
    /// refused handshake reaches neither the server's log nor its
    /// metrics). Pods without a sidecar whose configuration names the
    /// target are recorded as callers too (they have no proxy to read).
    async fn clients_from_target_side(
        &mut self,
        r: &super::resolve::Resolved,
        servers: &[ProxyEvidence],
        exclude: &HashSet<String>,
    ) -> Result<Vec<(Value, String)>, CollectError> {
        let max = self.opts.max_clients.max(1);
        // The target's namespace first (for `httpbin.foo` that is `foo`, not `-n`).
        let mut c = self.clients_from_logs(r, servers, exclude).await?;
        let mut taken: HashSet<String> = exclude.clone();
        taken.extend(c.iter().map(|(p, _)| objects::key(p)));
        if c.len() < max {
            let more = self
                .clients_from_metrics(r, servers, &taken, max - c.len())
                .await?;
            taken.extend(more.iter().map(|(p, _)| objects::key(p)));
            c.extend(more);
        }
        let failing = c.iter().any(|(_, because)| {
            because.contains("answered 503") || because.contains("answered 5xx")
        });
        let domain = self.resolved_target(r).cluster_domain;
        let mut config_ns: BTreeMap<String, String> = BTreeMap::new();
        for (name, ns) in super::discover::service_names(r) {
            for (k, v) in super::discover::config_caller_namespaces(
                &self.snap.objects,
                (name.as_str(), ns.as_str()),
                &domain,
            ) {
                config_ns.entry(k).or_insert(v);
            }
        }
        // Their Services and Pods are read too (neighbours), so the analysis
        // can predict for them from config when no sidecar of theirs is read.
        self.client_namespaces
            .extend(config_ns.keys().take(MAX_CONFIG_NAMESPACES).cloned());
        if c.len() < max && (!failing || !config_ns.is_empty()) {
            let wide = super::discover::rule_not_exported_everywhere(
                &self.snap.objects,
                &super::discover::service_names(r),
                &domain,
            );
            let sampled = self
                .clients_from_sample(
                    r,
                    &taken,
                    &config_ns,
                    (!failing, wide.as_deref()),
                    max - c.len(),
                )
                .await?;
            c.extend(sampled);
        }
        self.callers_without_sidecar(r, exclude).await?;
        Ok(c)
    }

    /// Adds the chosen pods as objects; jobs for those that run a sidecar.
    pub(super) fn named_client_jobs(&mut self, chosen: Vec<(Value, String)>) -> Vec<ProxyJob> {
        let mut jobs = Vec::new();
        for (pod, because) in chosen {
            let (pns, pname) = (
                objects::namespace(&pod).to_string(),
                objects::name(&pod).to_string(),
            );
            self.client_namespaces.insert(pns.clone());
            if has_sidecar(&pod) && objects::is_running(&pod) && objects::valid_ref(&pod) {
                jobs.push(ProxyJob {
                    namespace: pns,
                    pod: pname,
                    role: ProxyRole::Client,
                    because,
                });
            }
            self.add_object(pod);
        }
        jobs
    }

    async fn clients_from_flags(&mut self) -> Result<Vec<(Value, String)>, CollectError> {
        let ns = self.snap.namespace.clone();
        let mut chosen = Vec::new();
        for c in self.opts.from.clone() {
            let cns = c.namespace_or(&ns).to_string();
            let note = format!("--from {c}");
            match &c {
                ClientRef::Pod(_) => {
                    let pod = self.get_pod_target(&cns, c.name(), Some(&note)).await?;
                    chosen.push((pod, format!("named with --from {c}")));
                }
                ClientRef::Deployment(_) => {
                    let deploy = self
                        .get_deployment_target(&cns, c.name(), Some(&note))
                        .await?;
                    let Some(sel) = deploy
                        .pointer("/spec/selector")
                        .and_then(objects::label_selector_string)
                    else {
                        self.essential_gap(
                            format!("deployment {cns}/{} ({note})", c.name()),
                            "its spec.selector is empty or uses an unknown operator; its pods were not listed",
                        );
                        continue;
                    };
                    self.add_object(deploy);
                    let pods = self.pods_by_selector(&cns, &sel, true).await?;
                    let picked = pick_deployment_pods(&pods, 2);
                    if picked.is_empty() {
                        self.essential_gap(
                            format!("deployment {cns}/{} ({note})", c.name()),
                            "it has no running pods to read",
                        );
                    }
                    for p in picked {
                        let because = format!(
                            "a pod of deployment {cns}/{} named with --from {c}",
                            c.name()
                        );
                        chosen.push((p.clone(), because));
                    }
                }
            }
        }
        Ok(chosen)
    }

    async fn clients_from_logs(
        &mut self,
        r: &super::resolve::Resolved,
        servers: &[ProxyEvidence],
        exclude: &HashSet<String>,
    ) -> Result<Vec<(Value, String)>, CollectError> {
        let mut per_ip: BTreeMap<String, (Caller, Vec<String>)> = BTreeMap::new();
        for ev in servers {
            let Some(log) = &ev.log_tail else { continue };
            let own: Vec<String> = r
                .server_pods
                .iter()
                .find(|(p, _)| objects::namespace(p) == ev.namespace && objects::name(p) == ev.pod)
                .map(|(p, _)| objects::pod_ips(p))
                .unwrap_or_default();
            let who = format!("{}/{}", ev.namespace, ev.pod);
            for c in callers_in_log(log, &listener_formats(ev), &own) {
                per_ip
                    .entry(c.ip.clone())
                    .and_modify(|(m, seen)| {
                        m.requests += c.requests;
                        m.server_errors += c.server_errors;
                        m.unavailable += c.unavailable;
                        seen.push(who.clone());
                    })
                    .or_insert((c, vec![who.clone()]));
            }
        }
        if per_ip.is_empty() {
            return Ok(Vec::new());
        }
        let mut callers: Vec<(Caller, Vec<String>)> = per_ip.into_values().collect();
        callers.sort_by(|a, b| {
            b.0.requests
                .cmp(&a.0.requests)
                .then_with(|| a.0.ip.cmp(&b.0.ip))
        });
        self.say(&format!(
            "mapping {} from access logs to pods",
            crate::words::counts(callers.len(), "caller IP")
        ));
        let max = self.opts.max_clients.max(1);
        let pods = self.pods_in(&r.namespace).await?.unwrap_or_default();
        let (found, mut unmatched) = clients_from_callers(&callers, &pods, exclude, max);
        let mut out: Vec<(Value, String)> =
            found.into_iter().map(|(p, b)| (p.clone(), b)).collect();
        if !unmatched.is_empty() && out.len() < max {
            let ips: Vec<&str> = unmatched.iter().map(|u| u.ip.as_str()).collect();
            if let Some(all) = self.pods_with_ips(&ips).await? {
                let rest: Vec<(Caller, Vec<String>)> = callers
                    .iter()
                    .filter(|(c, _)| unmatched.iter().any(|u| u.ip == c.ip))
                    .cloned()
                    .collect();
                let (found, still) = clients_from_callers(&rest, &all, exclude, max - out.len());
                out.extend(found.into_iter().map(|(p, b)| (p.clone(), b)));
                unmatched = still;
            }
        }
        for u in unmatched.iter().take(5) {
            self.gap(
                "client discovery",
                format!(
                    "the caller {} ({} request{} in the server access logs) is not the IP of any pod that could be read: \
                     a node, something outside the cluster, or a pod since deleted",
                    u.ip,
                    u.requests,
                    if u.requests == 1 { "" } else { "s" }
                ),
            );
        }
        Ok(out)
    }

    /// Candidates for the sample: running injected pods, the target's
    /// namespace first (when `own`), then the `extra` namespaces (every
    /// namespace with `-A` or when `wide`), at most `cap`.
    async fn sample_candidates(
        &mut self,
        ns: &str,
        (own, wide): (bool, bool),
        extra: &[String],
        exclude: &HashSet<String>,
        cap: usize,
    ) -> Result<Vec<Value>, CollectError> {
        let is_candidate = |p: &Value| {
            has_sidecar(p)
                && objects::is_running(p)
                && objects::valid_ref(p)
                && !exclude.contains(&objects::key(p))
        };
        let mut candidates: Vec<Value> = Vec::new();
        let mut namespaces: Vec<&str> = Vec::new();
        if own {
            namespaces.push(ns);
        }
        namespaces.extend(extra.iter().map(String::as_str).filter(|e| *e != ns));
        for n in namespaces {
            for p in self.pods_in(n).await?.unwrap_or_default() {
                if candidates.len() < cap && is_candidate(&p) {
                    candidates.push(p);
                }
            }
        }
        if candidates.len() < cap && own && (self.opts.all_namespaces || wide) {
            // A sample: pages of injected pods until enough candidates.
            let taken: HashSet<String> = candidates.iter().map(objects::key).collect();
            let wanted = |p: &Value| {
                objects::namespace(p) != ns && is_candidate(p) && !taken.contains(&objects::key(p))
            };
            let need = cap - candidates.len();
            let enough = |pods: &[Value]| pods.iter().filter(|p| wanted(p)).count() >= need;
            for p in self.injected_pods_until(&enough).await?.unwrap_or_default() {
                if candidates.len() >= cap {
                    break;
                }
                if wanted(&p) {
                    candidates.push(p);
                }
            }
        }
        Ok(candidates)
    }

    /// Clients from a sample of injected pods' `/clusters`: in the target's
    /// namespace when `own`, in the namespaces whose config names the host
    /// (`config_ns`, with why), and in every namespace when `own` and
    /// `wide` says why (a rule for the host not exported everywhere), at
    /// most `max`.
    async fn clients_from_sample(
        &mut self,
        r: &super::resolve::Resolved,
        exclude: &HashSet<String>,
        config_ns: &BTreeMap<String, String>,
        (own, wide): (bool, Option<&str>),
        max: usize,
    ) -> Result<Vec<(Value, String)>, CollectError> {
        let ns = r.namespace.clone();
        let services: Vec<(String, String)> = r
            .services
            .iter()
            .map(|s| {
                (
                    objects::name(s).to_string(),
                    objects::namespace(s).to_string(),
                )
            })
            .collect();
        if services.is_empty() {
            self.gap(
                "client discovery",
                "no client was found: the target has no Service to look for in the proxies' /clusters; \
                 name a client with --from deploy/NAME",
            );
            return Ok(Vec::new());
        }
        let extra: Vec<String> = config_ns.keys().cloned().collect();
        let candidates = self
            .sample_candidates(&ns, (own, wide.is_some()), &extra, exclude, max * 4)
            .await?;
        let service_text = services
            .iter()
            .map(|(n, s)| format!("{n}.{s}"))
            .collect::<Vec<_>>()
            .join(", ");
        self.say(&format!(
            "sampling {} injected pods' /clusters for traffic to {service_text}",
            candidates.len()
        ));
        let (client, budget, timeout, progress, port) = (
            self.api.client().clone(),
            *self.api.budget(),
            self.opts.proxy_timeout,
            self.progress,
            r.port,
        );
        // Only the target's clusters (collect::scope): a sampled pod of a
        // large mesh would otherwise send every cluster's lines.
        let scope = self.scope.as_ref();
        let probes: Vec<Option<Probe>> = futures::stream::iter(candidates.iter())
            .map(|p| {
                let client = client.clone();
                let services = &services;
                async move {
                    let (pns, pname) = (
                        objects::namespace(p).to_string(),
                        objects::name(p).to_string(),
                    );
                    progress(&format!(
                        "port-forwarding to {pns}/{pname}:{ADMIN_PORT} (/clusters)"
                    ));
                    let pods: kube::Api<Pod> = kube::Api::namespaced(client, &pns);
                    let (deadline, limit) = budget.proxy(timeout);
                    let text = read_admin_scoped(
                        &pods,
                        &pname,
                        &[AdminRead::Clusters],
                        scope,
                        deadline,
                        limit,
                    )
                    .await
                    .ok()?
                    .pop()
                    .and_then(Result::ok)?;
                    let parsed = parse_clusters(&text).ok()?;
                    let mut traffic = ServiceTraffic::default();
                    for (sname, sns) in services {
                        traffic.add(parsed.traffic_to(sname, sns, port));
                    }
                    Some(Probe {
                        namespace: pns,
                        pod: pname,
                        traffic,
                    })
                }
            })
            .buffered(self.opts.concurrency.max(1))
            .collect()
            .await;
        let unreadable = probes.iter().filter(|p| p.is_none()).count();
        let probes: Vec<Probe> = probes.into_iter().flatten().collect();
        let picked = clients_from_probes(&probes, &service_text, max);
        if picked.is_empty() && !own {
            return Ok(Vec::new());
        }
        if picked.is_empty() {
            let knows = probes
                .iter()
                .filter(|p| !p.traffic.clusters.is_empty())
                .count();
            let all = self.opts.all_namespaces;
            self.gap(
                "client discovery",
                format!(
                    "no client was found: the server sidecars' access logs and metrics name no caller (access logging may be off; \
                     a refused TLS handshake is not counted), and of {} sampled injected pods ({} unreadable) in {} none shows requests to {service_text} in /clusters \
                     ({} know the service); name a client with --from deploy/NAME{}",
                    candidates.len(),
                    unreadable,
                    if all {
                        "all namespaces".to_string()
                    } else if extra.is_empty() {
                        format!("namespace {ns}")
                    } else {
                        format!("namespaces {ns}, {}", extra.join(", "))
                    },
                    knows,
                    if all { "" } else { ", or sample every namespace with -A" }
                ),
            );
            return Ok(Vec::new());
        }
        Ok(picked
            .into_iter()
            .filter_map(|(probe, because)| {
                let because = match (config_ns.get(&probe.namespace), wide) {
                    (Some(why), _) => format!(
                        "{because}; namespace {} was sampled because {why}",
                        probe.namespace
                    ),
                    (None, Some(why)) if probe.namespace != ns => {
                        format!("{because}; every namespace was sampled because {why}")
                    }
                    _ => because,
                };
                candidates
                    .iter()
                    .find(|p| {
                        objects::namespace(p) == probe.namespace && objects::name(p) == probe.pod
                    })
                    .map(|p| (p.clone(), because))
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envoy::clusters::parse_clusters_text;
    use serde_json::json;

    fn pod(ns: &str, name: &str, ip: &str, sidecar: bool, ready: bool) -> Value {
        let mut containers = vec![json!({"name": "app"})];
        if sidecar {
            containers.push(json!({"name": "istio-proxy"}));
        }
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": ns},
            "spec": {"containers": containers},
            "status": {"phase": "Running", "podIP": ip,
                "conditions": [{"type": "Ready", "status": if ready {"True"} else {"False"}}]}})
    }

    #[test]
    fn choosing_clients_from_callers() {
        let pods = vec![
            pod("foo", "httpbin-1", "10.0.0.4", true, true),
            pod("bar", "sleep-1", "10.0.0.9", true, true),
            pod("legacy", "sleep-2", "10.0.0.10", false, true),
        ];
        let caller = |ip: &str, n: u64, u: u64| {
            (
                Caller {
                    ip: ip.into(),
                    requests: n,
                    server_errors: u,
                    unavailable: u,
                },
                vec!["foo/httpbin-1".to_string()],
            )
        };
        let callers = vec![
            caller("10.0.0.9", 12, 12),
            caller("10.0.0.4", 5, 0),
            caller("10.0.0.77", 3, 0),
            caller("10.0.0.10", 1, 0),
        ];
        let exclude: HashSet<String> = ["foo/httpbin-1".to_string()].into();
        let (chosen, unmatched) = clients_from_callers(&callers, &pods, &exclude, 5);
        let names: Vec<String> = chosen.iter().map(|(p, _)| objects::key(p)).collect();
        assert_eq!(names, vec!["bar/sleep-1", "legacy/sleep-2"]);
        assert!(
            chosen[0].1.contains("10.0.0.9") && chosen[0].1.contains("12 requests"),
            "{}",
            chosen[0].1
        );
        assert!(
            chosen[0].1.contains("12 answered 503") && chosen[0].1.contains("foo/httpbin-1"),
            "{}",
            chosen[0].1
        );
        assert!(chosen[1].1.contains("1 request "), "{}", chosen[1].1);
        let unmatched_ips: Vec<&str> = unmatched.iter().map(|c| c.ip.as_str()).collect();
        assert_eq!(unmatched_ips, vec!["10.0.0.4", "10.0.0.77"]);
        assert_eq!(
            clients_from_callers(&callers, &pods, &exclude, 1).0.len(),
            1
        );
    }

    #[test]
    fn choosing_clients_from_clusters() {
        let text = |n: u64| {
            format!("outbound|8000||httpbin.foo.svc.cluster.local::10.0.0.4:80::rq_total::{n}\noutbound|8000||httpbin.foo.svc.cluster.local::10.0.0.4:80::rq_error::1\n")
        };
        let probe = |ns: &str, name: &str, body: &str| Probe {
            namespace: ns.into(),
            pod: name.into(),
            traffic: parse_clusters_text(body).traffic_to("httpbin", "foo", Some(8000)),
        };
        let probes = vec![
            probe("foo", "a", &text(3)),
            probe("bar", "b", &text(30)),
            probe(
                "foo",
                "idle",
                "outbound|8000||httpbin.foo.svc.cluster.local::added_via_api::true\n",
            ),
            probe(
                "foo",
                "other",
                "outbound|80||web.foo.svc.cluster.local::10.0.0.5:80::rq_total::99\n",
            ),
        ];
        let picked = clients_from_probes(&probes, "httpbin.foo", 5);
        let names: Vec<&str> = picked.iter().map(|(p, _)| p.pod.as_str()).collect();
        assert_eq!(names, vec!["b", "a"]);
        assert!(
            picked[0]
                .1
                .contains("30 requests (1 failed) to httpbin.foo"),
            "{}",
            picked[0].1
        );
        assert_eq!(clients_from_probes(&probes, "httpbin.foo", 1).len(), 1);
        assert!(clients_from_probes(&probes[2..], "httpbin.foo", 5).is_empty());
    }

    #[test]
    fn deployment_pods() {
        let pods = vec![
            pod("bar", "s-1", "1", true, false),
            pod("bar", "s-2", "2", true, true),
            json!({"metadata": {"name": "s-3", "namespace": "bar"}, "status": {"phase": "Pending"}}),
            pod("bar", "s-4", "4", true, true),
            pod("bar", "s-5", "5", true, true),
        ];
        let picked: Vec<&str> = pick_deployment_pods(&pods, 2)
            .into_iter()
            .map(objects::name)
            .collect();
        assert_eq!(picked, vec!["s-2", "s-4"]);
        let picked: Vec<&str> = pick_deployment_pods(&pods[..3], 2)
            .into_iter()
            .map(objects::name)
            .collect();
        assert_eq!(picked, vec!["s-2", "s-1"]);
    }
}
