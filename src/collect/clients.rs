//! Choosing which client pods to read, from what was already read: callers
//! in server access logs, requests in `/clusters`, a deployment's pods.
//! Pure: the I/O is in the parent module.

use std::collections::HashSet;

use serde_json::Value;

use super::logs::Caller;
use super::{objects, proxy};

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

/// A sampled pod's `/clusters` reading, for client choice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    pub namespace: String,
    pub pod: String,
    pub traffic: proxy::Traffic,
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
    // Stable: on a tie the sample order (target namespace first) stays.
    with_traffic.sort_by_key(|p| std::cmp::Reverse(p.traffic.rq_total + p.traffic.cx_total));
    with_traffic
        .into_iter()
        .take(max)
        .map(|p| {
            let t = &p.traffic;
            let mut errors = if t.rq_error > 0 {
                format!(" ({} failed)", t.rq_error)
            } else {
                String::new()
            };
            if t.cx_connect_fail > 0 {
                errors.push_str(&format!(" and {} failed connection(s)", t.cx_connect_fail));
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

#[cfg(test)]
mod tests {
    use super::*;
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
        assert!(chosen[0].1.contains("10.0.0.9"), "{}", chosen[0].1);
        assert!(chosen[0].1.contains("12 requests"), "{}", chosen[0].1);
        assert!(chosen[0].1.contains("12 answered 503"), "{}", chosen[0].1);
        assert!(chosen[0].1.contains("foo/httpbin-1"), "{}", chosen[0].1);
        assert!(chosen[1].1.contains("1 request "), "{}", chosen[1].1);
        let unmatched_ips: Vec<&str> = unmatched.iter().map(|c| c.ip.as_str()).collect();
        assert_eq!(unmatched_ips, vec!["10.0.0.4", "10.0.0.77"]);

        let (chosen, _) = clients_from_callers(&callers, &pods, &exclude, 1);
        assert_eq!(chosen.len(), 1);
    }

    #[test]
    fn choosing_clients_from_clusters() {
        let text = |n: u64| {
            format!("outbound|8000||httpbin.foo.svc.cluster.local::10.0.0.4:80::rq_total::{n}\noutbound|8000||httpbin.foo.svc.cluster.local::10.0.0.4:80::rq_error::1\n")
        };
        let probe = |ns: &str, name: &str, body: &str| Probe {
            namespace: ns.into(),
            pod: name.into(),
            traffic: proxy::traffic_to(body, "httpbin", "foo", Some(8000)),
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
        assert!(
            picked[0]
                .1
                .contains("outbound|8000||httpbin.foo.svc.cluster.local"),
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
