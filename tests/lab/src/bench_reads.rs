//! The benchmark's floors: sets of HTTP reads fetched all at once by a
//! plain client (reqwest), timed and counted in bytes.

use anyhow::{anyhow, Context};
use std::net::SocketAddr;
use std::time::Instant;

/// One GET: a path of the lab's API, or an admin path of one Envoy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Read {
    Api { path_query: String },
    Admin { addr: SocketAddr, path: String },
}

impl Read {
    pub fn api(path: &str, query: &str) -> Read {
        let path_query = if query.is_empty() {
            path.to_string()
        } else {
            format!("{path}?{query}")
        };
        Read::Api { path_query }
    }

    pub fn admin(addr: SocketAddr, path: &str) -> Read {
        Read::Admin {
            addr,
            path: path.to_string(),
        }
    }

    fn url(&self, api_url: &str) -> String {
        match self {
            Read::Api { path_query } => format!("{}{path_query}", api_url.trim_end_matches('/')),
            Read::Admin { addr, path } => format!("http://{addr}{path}"),
        }
    }
}

/// Reads fetched concurrently.
#[derive(Debug, Clone, Default)]
pub struct ReadSet {
    pub reads: Vec<Read>,
}

impl ReadSet {
    /// Fetch every read at once; (wall seconds, body bytes). A read that
    /// fails is an error naming its URL.
    pub async fn fetch_all(&self, api_url: &str) -> anyhow::Result<(f64, u64)> {
        let client = reqwest::Client::builder()
            .no_proxy()
            .timeout(std::time::Duration::from_secs(300))
            .build()?;
        let t0 = Instant::now();
        let futs = self.reads.iter().map(|r| {
            let url = r.url(api_url);
            let client = client.clone();
            async move {
                let resp = client
                    .get(&url)
                    .send()
                    .await
                    .with_context(|| format!("GET {url}"))?;
                let status = resp.status();
                let body = resp.bytes().await.with_context(|| format!("GET {url}"))?;
                if !status.is_success() {
                    return Err(anyhow!("GET {url}: {status}"));
                }
                anyhow::Ok(body.len() as u64)
            }
        });
        let sizes = futures::future::join_all(futs).await;
        let secs = t0.elapsed().as_secs_f64();
        let mut total = 0;
        for s in sizes {
            total += s?;
        }
        Ok((secs, total))
    }
}

fn pod_of(key: &str) -> &str {
    key.split_once('/').map(|(_, p)| p).unwrap_or(key)
}

/// The minimal reads for `svc/httpbin -n foo` with its caller `foo/sleep`:
/// the target's objects, one version of each Istio kind, both sidecars'
/// config narrowed with Envoy's admin filters, and their log tails.
/// `server`/`client`: (`ns/pod`, admin address, dir) as `Lab::sidecars` gives.
pub fn minimal(
    server: &(String, SocketAddr, std::path::PathBuf),
    client: &(String, SocketAddr, std::path::PathBuf),
) -> ReadSet {
    let mut reads = vec![
        Read::api("/api/v1/namespaces/foo/services/httpbin", ""),
        Read::api("/api/v1/namespaces/foo/pods", "labelSelector=app%3Dhttpbin"),
        Read::api(
            "/apis/discovery.k8s.io/v1/namespaces/foo/endpointslices",
            "labelSelector=kubernetes.io%2Fservice-name%3Dhttpbin",
        ),
        Read::api("/api/v1/namespaces/istio-system/configmaps/istio", ""),
    ];
    for (group, version, plural) in [
        ("networking.istio.io", "v1", "destinationrules"),
        ("networking.istio.io", "v1", "virtualservices"),
        ("networking.istio.io", "v1", "serviceentries"),
        ("networking.istio.io", "v1", "sidecars"),
        ("networking.istio.io", "v1", "gateways"),
        ("networking.istio.io", "v1alpha3", "envoyfilters"),
        ("security.istio.io", "v1", "peerauthentications"),
    ] {
        reads.push(Read::api(&format!("/apis/{group}/{version}/{plural}"), ""));
    }
    for (key, _, _) in [server, client] {
        reads.push(Read::api(
            &format!("/api/v1/namespaces/foo/pods/{}/log", pod_of(key)),
            "container=istio-proxy&tailLines=200",
        ));
    }
    let (s, c) = (server.1, client.1);
    for p in [
        "/config_dump?resource=dynamic_active_clusters&name_regex=%5Einbound%5C%7C.*",
        "/config_dump?resource=dynamic_listeners&name_regex=%5EvirtualInbound%24",
        "/clusters?filter=%5Einbound%5C%7C",
        "/stats?usedonly&filter=inbound%7Chttpbin",
    ] {
        reads.push(Read::admin(s, p));
    }
    for p in [
        "/config_dump?resource=dynamic_active_clusters&name_regex=.*%5C%7Chttpbin%5C.foo%5C.svc%5C.cluster%5C.local%24",
        "/config_dump?resource=dynamic_listeners&name_regex=%5E0%5C.0%5C.0%5C.0_8000%24",
        "/config_dump?resource=dynamic_route_configs&name_regex=%5E8000%24",
        "/clusters?filter=httpbin%5C.foo%5C.svc",
        "/stats?usedonly&filter=httpbin%5C.foo%5C.svc",
    ] {
        reads.push(Read::admin(c, p));
    }
    ReadSet { reads }
}

/// Active clusters of one Envoy (the `cluster_manager.active_clusters` gauge).
pub async fn count_clusters(admin: SocketAddr) -> anyhow::Result<usize> {
    let url = format!("http://{admin}/stats?filter=%5Ecluster_manager%5C.active_clusters%24");
    let text = reqwest::Client::builder()
        .no_proxy()
        .build()?
        .get(&url)
        .send()
        .await?
        .text()
        .await?;
    text.lines()
        .find_map(|l| l.split_once(": ").and_then(|(_, v)| v.trim().parse().ok()))
        .ok_or_else(|| anyhow!("{url}: no active_clusters gauge in {text:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            Read::api("/api/v1/pods", "limit=500").url("http://127.0.0.1:9/"),
            "http://127.0.0.1:9/api/v1/pods?limit=500"
        );
        let a: SocketAddr = "127.10.0.5:15000".parse().unwrap();
        assert_eq!(
            Read::admin(a, "/clusters").url("x"),
            "http://127.10.0.5:15000/clusters"
        );
    }
}
