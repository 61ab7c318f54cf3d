//! Collect stage for `tls-check pod/NAME | deploy/NAME [svc/NAME]`: the
//! client's sidecar first, then the server sidecars behind the destinations
//! its `/config_dump` lists. For each outbound cluster (`outbound|port|subset|host`)
//! the endpoint IPs the client was given (EDS) are matched to pods (listed
//! once, all namespaces; per destination namespace when that is refused);
//! one running pod with a sidecar per destination host is read, ready ones
//! first, at most `--max-servers` in all, and the destinations left out are
//! named in a gap. Pods behind the endpoints are kept as objects, so the
//! analysis knows which endpoints run no sidecar. With `svc/NAME` only that
//! service's servers are read (as `diagnose` resolves it).
//!
//! Read-only like the rest of collect: get/list, `pods/portforward` to the
//! admin port.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::clients::pick_deployment_pods;
use super::error::CollectError;
use super::objects;
use super::resolve::Resolved;
use super::sidecar::ProxyJob;
use super::{CollectOptions, Run, Session};
use crate::envoy::config_dump::{parse_config_dump, ClusterKind, ConfigDump};
use crate::istio::sidecar::has_sidecar;
use crate::snapshot::{ProxyEvidence, ProxyRole, Snapshot};
use crate::target::{ClientRef, Target};

/// Collects the client's sidecar and the server sidecars behind what it
/// calls (at most `max_servers`).
pub async fn collect_for_client(
    session: &Session,
    client: &ClientRef,
    service: Option<&str>,
    max_servers: usize,
    opts: &CollectOptions,
    progress: &dyn Fn(&str),
) -> Result<Snapshot, CollectError> {
    let ns = session.namespace.clone();
    let text = match service {
        Some(s) => format!("{client} svc/{s}"),
        None => client.to_string(),
    };
    let mut run = Run::new(session, opts, progress, text);
    run.preflight().await?;
    let (client_pod, because) = run.tls_client_pod(client, &ns).await?;
    let resolved = match service {
        Some(name) => {
            let target = Target::Service {
                name: name.to_string(),
            };
            run.resolve(&target, &ns).await?
        }
        None => Resolved::empty(&ns),
    };
    run.server_side(&resolved).await?;
    let client_key = objects::key(&client_pod);
    let jobs = run.named_client_jobs(vec![(client_pod, because)]);
    let clients = run.read_sidecars(jobs).await?;
    let server_jobs = match service {
        Some(_) => {
            let mut jobs = run.server_jobs(&resolved);
            jobs.truncate(max_servers);
            jobs
        }
        None => {
            let dests = destinations(&clients);
            run.destination_servers(&dests, &client_key, max_servers)
                .await?
        }
    };
    let servers = run.read_sidecars(server_jobs).await?;
    run.snap.proxies.extend(clients);
    run.snap.proxies.extend(servers);
    run.finish(&resolved).await?;
    run.snap.redact();
    Ok(run.snap)
}

/// Each outbound destination host the client's sidecar has a cluster for,
/// with the endpoint IPs it was given (every subset and port together).
/// The SNI-DNAT twin of a cluster (`outbound_.port_.subset_.host`) names
/// the same host.
pub fn destinations(clients: &[ProxyEvidence]) -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for e in clients {
        let mut dump = ConfigDump::default();
        for v in [&e.clusters_config, &e.endpoints_config]
            .into_iter()
            .flatten()
        {
            if let Ok(d) = parse_config_dump(v) {
                dump.merge(d);
            }
        }
        for c in &dump.clusters {
            let ClusterKind::Outbound { host, .. } = &c.kind else {
                continue;
            };
            let ips = out.entry(host.clone()).or_default();
            for ep in dump.endpoints.get(&c.name).into_iter().flatten() {
                if !ep.address.contains("://") && !ep.address.is_empty() {
                    ips.insert(ep.address.clone());
                }
            }
        }
    }
    out.retain(|_, ips| !ips.is_empty());
    out
}

/// `name.ns.svc.…` → `ns`.
fn host_namespace(host: &str) -> Option<&str> {
    let mut it = host.split('.');
    let (_, ns, svc) = (it.next()?, it.next()?, it.next()?);
    (svc == "svc").then_some(ns)
}

/// Which pod to read per destination, at most `max` pods in all (one pod
/// may back several hosts), and the hosts left out. Pods without a sidecar
/// or not running are never chosen; nor is the client (`client`: its
/// `ns/name`), whose sidecar is read already and answers for its own
/// inbound side.
pub fn choose_servers<'p>(
    dests: &BTreeMap<String, BTreeSet<String>>,
    pods: &'p [Value],
    client: &str,
    max: usize,
) -> (Vec<(&'p Value, String)>, Vec<String>) {
    let mut chosen: Vec<(&Value, String)> = Vec::new();
    let mut left_out = Vec::new();
    for (host, ips) in dests {
        let mut behind: Vec<&Value> = pods
            .iter()
            .filter(|p| objects::pod_ips(p).iter().any(|ip| ips.contains(ip)))
            .filter(|p| has_sidecar(p) && objects::is_running(p) && objects::valid_ref(p))
            .collect();
        if behind.iter().any(|p| objects::key(p) == client) {
            continue;
        }
        behind.sort_by_key(|p| (!objects::is_ready(p), objects::key(p)));
        let Some(pod) = behind.first() else { continue };
        if chosen
            .iter()
            .any(|(p, _)| objects::key(p) == objects::key(pod))
        {
            continue;
        }
        if chosen.len() >= max {
            left_out.push(host.clone());
            continue;
        }
        chosen.push((
            pod,
            format!("an endpoint of {host} in the client's /config_dump"),
        ));
    }
    (chosen, left_out)
}

impl Run<'_> {
    /// The client pod: the one named, or a ready (else running) pod of the
    /// deployment named.
    async fn tls_client_pod(
        &mut self,
        client: &ClientRef,
        ns: &str,
    ) -> Result<(Value, String), CollectError> {
        let cns = client.namespace_or(ns).to_string();
        let name = client.name().to_string();
        match client {
            ClientRef::Pod(_) => {
                let pod = self.get_pod_target(&cns, &name, None).await?;
                Ok((
                    pod,
                    format!("named on the command line (tls-check {client})"),
                ))
            }
            ClientRef::Deployment(_) => {
                let deploy = self.get_deployment_target(&cns, &name, None).await?;
                let Some(sel) = deploy
                    .pointer("/spec/selector")
                    .and_then(objects::label_selector_string)
                else {
                    return Err(CollectError::TargetNotFound {
                        what: format!("a pod of deployment {name:?} (its spec.selector is empty or uses an unknown operator)"),
                        namespace: cns.clone(),
                        hint: format!("name a pod instead: `kubectl get pods -n {cns}`, then tls-check pod/NAME"),
                    });
                };
                self.add_object(deploy);
                let pods = self.pods_by_selector(&cns, &sel, true).await?;
                let Some(pod) = pick_deployment_pods(&pods, 1).first().map(|p| (*p).clone()) else {
                    return Err(CollectError::TargetNotFound {
                        what: format!("a running pod of deployment {name:?} ({sel})"),
                        namespace: cns.clone(),
                        hint: format!("check `kubectl get pods -n {cns} -l {sel}`"),
                    });
                };
                let because = format!(
                    "a {} pod of deployment {cns}/{name} (tls-check {client})",
                    if objects::is_ready(&pod) {
                        "ready"
                    } else {
                        "running"
                    }
                );
                Ok((pod, because))
            }
        }
    }

    /// The server sidecars behind the client's destinations: pods listed
    /// once (all namespaces, else each destination namespace), matched by
    /// endpoint IP; the pods behind endpoints kept as objects.
    async fn destination_servers(
        &mut self,
        dests: &BTreeMap<String, BTreeSet<String>>,
        client: &str,
        max: usize,
    ) -> Result<Vec<ProxyJob>, CollectError> {
        if dests.is_empty() {
            return Ok(vec![]);
        }
        let pods = match self.pods_in("").await? {
            Some(p) => p,
            None => {
                let namespaces: BTreeSet<String> = dests
                    .keys()
                    .filter_map(|h| host_namespace(h))
                    .map(str::to_string)
                    .collect();
                let mut all = Vec::new();
                for ns in namespaces {
                    all.extend(self.pods_in(&ns).await?.unwrap_or_default());
                }
                all
            }
        };
        let ips: BTreeSet<&String> = dests.values().flatten().collect();
        for p in &pods {
            if objects::pod_ips(p).iter().any(|ip| ips.contains(ip)) {
                self.add_object(p.clone());
            }
        }
        let (chosen, left_out) = choose_servers(dests, &pods, client, max);
        if !left_out.is_empty() {
            self.gap(
                "server sidecars",
                format!(
                    "only {max} server sidecars are read (--max-servers); destinations not checked: {}",
                    left_out.join(", ")
                ),
            );
        }
        Ok(chosen
            .into_iter()
            .map(|(p, because)| ProxyJob {
                namespace: objects::namespace(p).to_string(),
                pod: objects::name(p).to_string(),
                role: ProxyRole::Server,
                because,
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(ns: &str, name: &str, ip: &str, sidecar: bool, ready: bool) -> Value {
        let mut containers = vec![json!({"name": "app"})];
        if sidecar {
            containers
                .push(json!({"name": "istio-proxy", "image": "docker.io/istio/proxyv2:1.22.0"}));
        }
        json!({"kind": "Pod", "metadata": {"namespace": ns, "name": name},
            "spec": {"containers": containers},
            "status": {"phase": "Running", "podIP": ip,
                "conditions": [{"type": "Ready", "status": if ready {"True"} else {"False"}}]}})
    }

    fn dests(list: &[(&str, &[&str])]) -> BTreeMap<String, BTreeSet<String>> {
        list.iter()
            .map(|(h, ips)| (h.to_string(), ips.iter().map(|s| s.to_string()).collect()))
            .collect()
    }

    #[test]
    fn one_ready_sidecar_per_destination_bounded_and_named() {
        let pods = vec![
            pod("foo", "httpbin-2", "10.0.0.3", true, false),
            pod("foo", "httpbin-1", "10.0.0.2", true, true),
            pod("bar", "legacy-1", "10.0.0.4", false, true),
            pod("baz", "web-1", "10.0.0.5", true, true),
            pod("qux", "api-1", "10.0.0.6", true, true),
        ];
        let d = dests(&[
            ("httpbin.foo.svc.cluster.local", &["10.0.0.2", "10.0.0.3"]),
            ("legacy.bar.svc.cluster.local", &["10.0.0.4"]),
            ("web.baz.svc.cluster.local", &["10.0.0.5"]),
            ("api.qux.svc.cluster.local", &["10.0.0.6"]),
        ]);
        let (chosen, left) = choose_servers(&d, &pods, "foo/sleep-1", 2);
        let names: Vec<&str> = chosen.iter().map(|(p, _)| objects::name(p)).collect();
        // Host order: api.qux first, then httpbin (its ready pod); the pod
        // without a sidecar is never read; web.baz is over the bound.
        assert_eq!(names, ["api-1", "httpbin-1"]);
        assert_eq!(left, ["web.baz.svc.cluster.local"]);
        let (all, none_left) = choose_servers(&d, &pods, "foo/sleep-1", 10);
        assert_eq!(all.len(), 3);
        assert!(none_left.is_empty());
        // The client's own service: its sidecar is read already.
        let mut with_self = pods.clone();
        with_self.push(pod("foo", "sleep-1", "10.0.0.1", true, true));
        let d = dests(&[("sleep.foo.svc.cluster.local", &["10.0.0.1"])]);
        let (none, _) = choose_servers(&d, &with_self, "foo/sleep-1", 10);
        assert!(none.is_empty());
    }

    #[test]
    fn host_namespaces() {
        assert_eq!(host_namespace("httpbin.foo.svc.cluster.local"), Some("foo"));
        assert_eq!(host_namespace("example.com"), None);
    }
}
