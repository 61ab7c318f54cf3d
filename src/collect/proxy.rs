//! Reading a sidecar's Envoy admin API (`:15000`) through ONE pod port-forward
//! per pod, with a keep-alive HTTP/1.1 connection over the forwarded stream;
//! and the pure parts: which admin paths, what `/clusters` says about traffic
//! to a service, whether a config dump is safe to keep.
//!
//! `/config_dump` is only ever fetched with `resource=` (a full dump can be
//! tens of MB and holds secrets); secrets are never requested, and a dump
//! that contains secrets or the bootstrap anyway (an Envoy too old to honour
//! `resource=`) is discarded.

use std::collections::BTreeSet;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use futures::future::{select, Either};
use http_body_util::{BodyExt, Empty, Limited};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;
use serde_json::Value;
use tokio::time::Instant;

/// Envoy's admin port in an Istio sidecar.
pub const ADMIN_PORT: u16 = 15000;

/// Cap on one admin response body.
const BODY_LIMIT: usize = 64 * 1024 * 1024;

/// What each admin read fills in [`crate::snapshot::ProxyEvidence`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminRead {
    ServerInfo,
    ClustersConfig,
    ListenersConfig,
    EndpointsConfig,
    Clusters,
    Stats,
}

impl AdminRead {
    /// Every read, in the order they are fetched.
    pub const ALL: [AdminRead; 6] = [
        AdminRead::ServerInfo,
        AdminRead::ClustersConfig,
        AdminRead::ListenersConfig,
        AdminRead::EndpointsConfig,
        AdminRead::Clusters,
        AdminRead::Stats,
    ];

    /// The exact admin path and query.
    pub fn path(self) -> &'static str {
        match self {
            AdminRead::ServerInfo => "/server_info",
            AdminRead::ClustersConfig => "/config_dump?resource=dynamic_active_clusters",
            AdminRead::ListenersConfig => "/config_dump?resource=dynamic_listeners",
            // `include_eds` is a presence flag: Envoy checks only that the
            // parameter exists, so it needs no value.
            AdminRead::EndpointsConfig => {
                "/config_dump?resource=dynamic_endpoint_configs&include_eds"
            }
            AdminRead::Clusters => "/clusters",
            AdminRead::Stats => "/stats",
        }
    }

    /// For a config dump: the `@type` suffix each returned item must have.
    pub fn expected_item_type(self) -> Option<&'static str> {
        match self {
            AdminRead::ClustersConfig => Some("ClustersConfigDump.DynamicCluster"),
            AdminRead::ListenersConfig => Some("ListenersConfigDump.DynamicListener"),
            AdminRead::EndpointsConfig => Some("EndpointsConfigDump.DynamicEndpointConfig"),
            _ => None,
        }
    }

    pub fn is_json(self) -> bool {
        !matches!(self, AdminRead::Clusters | AdminRead::Stats)
    }
}

/// Checks a `/config_dump?resource=…` answer and returns it as JSON.
///
/// Refuses (so the caller records a gap and keeps nothing) a document that is
/// not JSON or that holds anything but the requested resource, in particular
/// secrets or the bootstrap, which is what an Envoy that ignores `resource=`
/// returns.
pub fn check_config_dump(read: AdminRead, body: &str) -> Result<Value, String> {
    let v: Value = serde_json::from_str(body).map_err(|e| format!("not JSON: {e}"))?;
    let Some(expected) = read.expected_item_type() else {
        return Ok(v);
    };
    let configs = v
        .get("configs")
        .and_then(Value::as_array)
        .ok_or_else(|| "no \"configs\" array in the answer".to_string())?;
    for c in configs {
        let t = c.get("@type").and_then(Value::as_str).unwrap_or("");
        if t.contains("Secret") || t.contains("Bootstrap") || !t.ends_with(expected) {
            return Err(format!(
                "the answer holds {t:?}, not only {expected} items: this Envoy ignores `resource=` \
                 (too old?); the dump was discarded because a full config dump can hold secrets"
            ));
        }
    }
    Ok(v)
}

/// Traffic one proxy's `/clusters` shows towards a service.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Traffic {
    /// Sum of `rq_total` over the service's outbound clusters' hosts.
    pub rq_total: u64,
    /// Sum of `rq_error`.
    pub rq_error: u64,
    /// Sum of `cx_total`: connections opened, even when no request got
    /// through (a failed TLS handshake counts here, not in `rq_total`).
    pub cx_total: u64,
    /// Sum of `cx_connect_fail`.
    pub cx_connect_fail: u64,
    /// The outbound clusters seen for the service (with or without hosts).
    pub clusters: BTreeSet<String>,
}

/// Whether `cluster` is an outbound cluster of service `name.namespace`
/// (`outbound|PORT|SUBSET|NAME.NAMESPACE.svc.DOMAIN`), optionally on `port`.
pub fn is_outbound_cluster_of(
    cluster: &str,
    name: &str,
    namespace: &str,
    port: Option<u16>,
) -> bool {
    let parts: Vec<&str> = cluster.split('|').collect();
    let [dir, p, _subset, host] = parts.as_slice() else {
        return false;
    };
    if *dir != "outbound" {
        return false;
    }
    if let Some(port) = port {
        if p.parse::<u16>().ok() != Some(port) {
            return false;
        }
    }
    let prefix = format!("{name}.{namespace}.svc.");
    host.starts_with(&prefix) || *host == format!("{name}.{namespace}.svc")
}

/// Reads `/clusters` text for traffic to service `name.namespace`.
///
/// Lines look like `outbound|8000||httpbin.foo.svc.cluster.local::10.0.0.4:8080::rq_total::3`;
/// the host may be an IPv6 address with `::` in it, so the stat and value are
/// taken from the end of the line.
pub fn traffic_to(clusters_text: &str, name: &str, namespace: &str, port: Option<u16>) -> Traffic {
    let mut t = Traffic::default();
    for line in clusters_text.lines() {
        let Some((cluster, rest)) = line.split_once("::") else {
            continue;
        };
        if !is_outbound_cluster_of(cluster, name, namespace, port) {
            continue;
        }
        t.clusters.insert(cluster.to_string());
        let mut back = rest.rsplitn(3, "::");
        let (Some(value), Some(stat), Some(_host)) = (back.next(), back.next(), back.next()) else {
            continue;
        };
        let value: u64 = value.trim().parse().unwrap_or(0);
        match stat {
            "rq_total" => t.rq_total += value,
            "rq_error" => t.rq_error += value,
            "cx_total" => t.cx_total += value,
            "cx_connect_fail" => t.cx_connect_fail += value,
            _ => {}
        }
    }
    t
}

/// The answer to one admin read: the body, or why there is none.
pub type AdminResult = Result<String, String>;

/// Opens one port-forward to `pod:15000`, runs `reads` over one keep-alive
/// HTTP/1.1 connection, and returns each read's answer in order.
///
/// Every step is bounded by `deadline`; what is not done by then gets an
/// error. `Err` (for the whole pod) means the port-forward or the HTTP
/// handshake failed: nothing could be read.
pub async fn read_admin(
    pods: &Api<Pod>,
    pod: &str,
    reads: &[AdminRead],
    deadline: Instant,
    budget: Duration,
) -> Result<Vec<AdminResult>, String> {
    let timed_out = || {
        format!(
            "no answer within the {}s --proxy-timeout for this pod",
            budget.as_secs_f64()
        )
    };
    let mut pf = match tokio::time::timeout_at(deadline, pods.portforward(pod, &[ADMIN_PORT])).await
    {
        Err(_) => return Err(format!("port-forward not established: {}", timed_out())),
        Ok(Err(e)) => {
            return Err(format!(
                "port-forward failed: {}",
                super::kube::describe_kube_error(&e)
            ))
        }
        Ok(Ok(pf)) => pf,
    };
    let Some(stream) = pf.take_stream(ADMIN_PORT) else {
        pf.abort();
        return Err("port-forward gave no stream for port 15000".to_string());
    };
    let mut pf_error: Pin<Box<dyn Future<Output = Option<String>> + Send>> =
        match pf.take_error(ADMIN_PORT) {
            Some(f) => Box::pin(f),
            None => Box::pin(futures::future::pending()),
        };

    let handshake = hyper::client::conn::http1::handshake::<_, Empty<Bytes>>(TokioIo::new(stream));
    let (mut sender, conn) = match tokio::time::timeout_at(deadline, handshake).await {
        Err(_) => {
            pf.abort();
            return Err(format!(
                "HTTP handshake over the port-forward: {}",
                timed_out()
            ));
        }
        Ok(Err(e)) => {
            pf.abort();
            return Err(format!("HTTP handshake over the port-forward failed: {e}"));
        }
        Ok(Ok(x)) => x,
    };

    let work = async {
        let mut out: Vec<AdminResult> = Vec::with_capacity(reads.len());
        for read in reads {
            let one = async {
                sender
                    .ready()
                    .await
                    .map_err(|e| format!("connection to :15000 not usable: {e}"))?;
                let req = http::Request::get(read.path())
                    .header(http::header::HOST, "localhost:15000")
                    .body(Empty::<Bytes>::new())
                    .map_err(|e| e.to_string())?;
                let resp = sender
                    .send_request(req)
                    .await
                    .map_err(|e| format!("request failed: {}", super::kube::error_chain(&e)))?;
                let status = resp.status();
                let body = Limited::new(resp.into_body(), BODY_LIMIT)
                    .collect()
                    .await
                    .map_err(|e| format!("reading the answer failed: {e}"))?
                    .to_bytes();
                let text = String::from_utf8_lossy(&body).into_owned();
                if !status.is_success() {
                    let first = text.lines().next().unwrap_or("").trim();
                    return Err(format!(
                        "HTTP {status}{}{first}",
                        if first.is_empty() { "" } else { ": " }
                    ));
                }
                Ok(text)
            };
            let r = match tokio::time::timeout_at(deadline, one).await {
                Ok(r) => r,
                Err(_) => Err(timed_out()),
            };
            out.push(r);
        }
        out
    };
    tokio::pin!(work);
    let mut results = match select(work, conn).await {
        Either::Left((results, _conn)) => results,
        Either::Right((_conn_result, work)) => work.await,
    };

    // If the forward itself reported an error (e.g. nothing listens on
    // :15000), add its words to the failures.
    if results.iter().any(Result::is_err) {
        let wait = Instant::now() + Duration::from_millis(300);
        if let Ok(Some(msg)) = tokio::time::timeout_at(wait, &mut pf_error).await {
            let msg = msg.trim().to_string();
            for r in results.iter_mut() {
                if let Err(e) = r {
                    e.push_str(&format!(" (port-forward: {msg})"));
                }
            }
        }
    }
    drop(pf_error);
    // Close the forward; a join error after the pod side closed is normal.
    let _ = tokio::time::timeout(Duration::from_secs(2), pf.join()).await;
    Ok(results)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLUSTERS: &str = "\
outbound|8000||httpbin.foo.svc.cluster.local::observability_name::outbound|8000||httpbin.foo.svc.cluster.local
outbound|8000||httpbin.foo.svc.cluster.local::default_priority::max_connections::4294967295
outbound|8000||httpbin.foo.svc.cluster.local::added_via_api::true
outbound|8000||httpbin.foo.svc.cluster.local::127.10.0.4:8080::cx_active::1
outbound|8000||httpbin.foo.svc.cluster.local::127.10.0.4:8080::rq_error::2
outbound|8000||httpbin.foo.svc.cluster.local::127.10.0.4:8080::rq_total::3
outbound|8000||httpbin.foo.svc.cluster.local::127.10.0.5:8080::rq_total::4
outbound|8000|v1|httpbin.foo.svc.cluster.local::[fd00::5]:8080::rq_total::5
outbound|8000|v1|httpbin.foo.svc.cluster.local::[fd00::5]:8080::health_flags::healthy
outbound|9000||httpbin.foo.svc.cluster.local::127.10.0.4:9000::rq_total::100
outbound|8000||httpbin.bar.svc.cluster.local::127.10.0.9:8080::rq_total::50
outbound|8000||httpbin2.foo.svc.cluster.local::127.10.0.9:8080::rq_total::60
inbound|8080||::127.0.0.1:8080::rq_total::70
";

    #[test]
    fn traffic_from_clusters() {
        let t = traffic_to(CLUSTERS, "httpbin", "foo", Some(8000));
        assert_eq!(t.rq_total, 12);
        assert_eq!(t.rq_error, 2);
        assert!(t
            .clusters
            .contains("outbound|8000||httpbin.foo.svc.cluster.local"));
        assert!(t
            .clusters
            .contains("outbound|8000|v1|httpbin.foo.svc.cluster.local"));
        assert_eq!(t.clusters.len(), 2);
        assert_eq!(traffic_to(CLUSTERS, "httpbin", "foo", None).rq_total, 112);
        assert_eq!(traffic_to(CLUSTERS, "httpbin", "bar", None).rq_total, 50);
        let none = traffic_to(CLUSTERS, "nope", "foo", None);
        assert_eq!(none, Traffic::default());
        // A cluster with no hosts is still seen.
        let t = traffic_to(
            "outbound|80||web.foo.svc.cluster.local::added_via_api::true\n",
            "web",
            "foo",
            None,
        );
        assert_eq!(t.rq_total, 0);
        assert_eq!(t.clusters.len(), 1);
    }

    #[test]
    fn outbound_cluster_names() {
        assert!(is_outbound_cluster_of(
            "outbound|8000||httpbin.foo.svc.cluster.local",
            "httpbin",
            "foo",
            None
        ));
        assert!(is_outbound_cluster_of(
            "outbound|8000||httpbin.foo.svc.corp.example",
            "httpbin",
            "foo",
            Some(8000)
        ));
        assert!(!is_outbound_cluster_of(
            "outbound|8000||httpbin.foo.svc.cluster.local",
            "httpbin",
            "foo",
            Some(80)
        ));
        assert!(!is_outbound_cluster_of(
            "inbound|8000||httpbin.foo.svc.cluster.local",
            "httpbin",
            "foo",
            None
        ));
        assert!(!is_outbound_cluster_of(
            "outbound|8000||httpbin.foobar.svc.cluster.local",
            "httpbin",
            "foo",
            None
        ));
        assert!(!is_outbound_cluster_of(
            "PassthroughCluster",
            "httpbin",
            "foo",
            None
        ));
    }

    #[test]
    fn admin_paths_never_dump_everything() {
        for r in AdminRead::ALL {
            let p = r.path();
            if p.starts_with("/config_dump") {
                assert!(p.contains("resource=dynamic_"), "{p}");
                assert!(!p.contains("secret"), "{p}");
            }
        }
        assert_eq!(
            AdminRead::EndpointsConfig.path(),
            "/config_dump?resource=dynamic_endpoint_configs&include_eds"
        );
    }

    #[test]
    fn config_dump_checks() {
        let ok = r#"{"configs":[{"@type":"type.googleapis.com/envoy.admin.v3.ClustersConfigDump.DynamicCluster","cluster":{}}]}"#;
        assert!(check_config_dump(AdminRead::ClustersConfig, ok).is_ok());
        let empty = r#"{"configs":[]}"#;
        assert!(check_config_dump(AdminRead::EndpointsConfig, empty).is_ok());
        let full = r#"{"configs":[{"@type":"type.googleapis.com/envoy.admin.v3.BootstrapConfigDump"},{"@type":"type.googleapis.com/envoy.admin.v3.SecretsConfigDump"}]}"#;
        let e = check_config_dump(AdminRead::ClustersConfig, full).unwrap_err();
        assert!(e.contains("discarded"), "{e}");
        assert!(check_config_dump(AdminRead::ListenersConfig, "not json").is_err());
        assert!(check_config_dump(AdminRead::ListenersConfig, "{}").is_err());
        assert!(check_config_dump(AdminRead::ServerInfo, r#"{"version":"x"}"#).is_ok());
    }
}
