//! Traffic: send requests from a pod "as its app would".
//!
//! With a sidecar, the app's connection to `httpbin.foo:8000` is captured by
//! iptables into the sidecar's outbound listener; the lab has no iptables, so
//! the request goes to the pod's egress address (see `net.rs`) on the URL's
//! port, keeping the `Host` header the app would send. Without a sidecar the
//! request goes straight to a ready endpoint of the Service, as kube-proxy
//! would route it. Only the Kubernetes API is used to find pods and
//! endpoints, so this works against any running lab from its kubeconfig.
//!
//! A URL whose host is a pod IP or a pod DNS name (`<hostname>.<subdomain>.
//! <ns>[.svc.cluster.local]`, what a headless Service gives StatefulSet-like
//! pods) is a call to that pod: without a sidecar it dials the pod; with one
//! it still goes through the sidecar and carries the pod's address in
//! Envoy's `x-envoy-original-dst-host` header (LAB DIFFERENCE: standing for
//! the SO_ORIGINAL_DST iptables gives a real sidecar; the lab's ORIGINAL_DST
//! clusters read it, see `istiod/headless.rs`).
//!
//! [`curl_via_gateway`] is a client outside the mesh calling an ingress
//! gateway's Service, as a load balancer would deliver it.

use crate::net::PodAddrs;
use anyhow::{anyhow, Context};
use serde_json::Value;
use std::net::Ipv4Addr;
use std::time::Duration;

/// Where the lab API is and how to authenticate.
#[derive(Debug, Clone)]
pub struct ApiAccess {
    pub server: String,
    pub token: Option<String>,
}

impl ApiAccess {
    /// Read the current context's server and token from a kubeconfig file.
    pub fn from_kubeconfig(path: &std::path::Path) -> anyhow::Result<ApiAccess> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read kubeconfig {}", path.display()))?;
        let y: serde_yaml::Value = serde_yaml::from_str(&text)
            .with_context(|| format!("kubeconfig {} is not YAML", path.display()))?;
        let cur = y["current-context"].as_str().unwrap_or("");
        let ctx = y["contexts"]
            .as_sequence()
            .and_then(|s| s.iter().find(|c| c["name"].as_str() == Some(cur)))
            .ok_or_else(|| {
                anyhow!(
                    "kubeconfig {}: current context {cur:?} not found",
                    path.display()
                )
            })?;
        let cluster_name = ctx["context"]["cluster"].as_str().unwrap_or("");
        let user_name = ctx["context"]["user"].as_str().unwrap_or("");
        let server = y["clusters"]
            .as_sequence()
            .and_then(|s| s.iter().find(|c| c["name"].as_str() == Some(cluster_name)))
            .and_then(|c| c["cluster"]["server"].as_str())
            .ok_or_else(|| {
                anyhow!(
                    "kubeconfig {}: cluster {cluster_name:?} has no server",
                    path.display()
                )
            })?
            .to_string();
        let token = y["users"]
            .as_sequence()
            .and_then(|s| s.iter().find(|u| u["name"].as_str() == Some(user_name)))
            .and_then(|u| u["user"]["token"].as_str())
            .map(str::to_string);
        Ok(ApiAccess { server, token })
    }

    async fn get(&self, http: &reqwest::Client, path: &str) -> anyhow::Result<Option<Value>> {
        let mut req = http.get(format!("{}{}", self.server.trim_end_matches('/'), path));
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.with_context(|| format!("GET {path}"))?;
        if resp.status() == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !resp.status().is_success() {
            return Err(anyhow!("GET {path}: {}", resp.status()));
        }
        Ok(Some(
            resp.json()
                .await
                .with_context(|| format!("GET {path}: not JSON"))?,
        ))
    }
}

/// One request's outcome.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl std::fmt::Display for Response {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "HTTP/1.1 {}", self.status)?;
        for (k, v) in &self.headers {
            writeln!(f, "{k}: {v}")?;
        }
        writeln!(f)?;
        write!(f, "{}", self.body)
    }
}

/// What the app puts on the wire for a URL.
#[derive(Debug, Clone, PartialEq, Eq)]
struct UrlParts {
    host: String,
    port: u16,
    /// The `Host` header: host, and the port when the URL names one.
    authority: String,
    /// The request target: path and query (`/` at least).
    path: String,
}

fn url_parts(url: &str) -> anyhow::Result<UrlParts> {
    let parsed = reqwest::Url::parse(url).with_context(|| format!("bad URL {url:?}"))?;
    let host = parsed
        .host_str()
        .ok_or_else(|| anyhow!("URL {url:?} has no host"))?
        .to_string();
    let port = parsed.port_or_known_default().unwrap_or(80);
    let authority = match parsed.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.clone(),
    };
    // Path and query from the parsed URL, never searched for in the URL
    // text: `http://helloworld.default:5000/hello` has `/hello` in its host.
    let mut path = match parsed.query() {
        Some(q) => format!("{}?{q}", parsed.path()),
        None => parsed.path().to_string(),
    };
    if path.is_empty() {
        path = "/".into();
    }
    Ok(UrlParts {
        host,
        port,
        authority,
        path,
    })
}

/// `from` is `<ns>/<pod or deployment name>`.
pub async fn curl(
    api: &ApiAccess,
    from: &str,
    url: &str,
    count: usize,
    concurrency: usize,
) -> anyhow::Result<Vec<Result<Response, String>>> {
    let (ns, name) = from
        .split_once('/')
        .ok_or_else(|| anyhow!("--from {from:?}: expected <namespace>/<pod or deployment>"))?;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?;
    let pod = find_pod(api, &http, ns, name).await?;
    let UrlParts {
        host,
        port,
        authority,
        path,
    } = url_parts(url)?;
    let pod_ip: Ipv4Addr = pod["status"]["podIP"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| anyhow!("pod {ns}/{name} has no status.podIP yet"))?;
    let injected = crate::injector::has_proxy(&pod["spec"]);
    let pod_target = pod_address(api, &http, ns, &host, port).await?;
    let mut headers = Vec::new();
    let target = if injected {
        if let Some(dst) = &pod_target {
            headers.push(("x-envoy-original-dst-host".to_string(), dst.clone()));
        }
        format!("{}:{port}", PodAddrs::from_pod_ip(pod_ip).egress)
    } else if let Some(dst) = pod_target {
        dst
    } else {
        direct_endpoint(api, &http, ns, &host, port).await?
    };
    let target_url = format!("http://{target}{path}");
    // The app's own client: its connections leave from the pod IP, as in a
    // pod (with or without a sidecar: iptables keeps the source of captured
    // connections).
    let source = std::net::IpAddr::V4(pod_ip);
    let req = Request {
        url: target_url,
        authority,
        headers,
    };
    send(req, Some(source), count, concurrency).await
}

/// One request as the client sends it, over and over.
struct Request {
    /// Where the connection goes (`http://ip:port/path`).
    url: String,
    /// The `Host` header.
    authority: String,
    headers: Vec<(String, String)>,
}

/// Send `count` copies of `req` with `concurrency` in flight: a keep-alive
/// pool, no retries, no proxy, connections from `source` when given.
async fn send(
    req: Request,
    source: Option<std::net::IpAddr>,
    count: usize,
    concurrency: usize,
) -> anyhow::Result<Vec<Result<Response, String>>> {
    let mut builder = reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .no_proxy();
    if let Some(ip) = source {
        builder = builder.local_address(ip);
    }
    let app = builder.build()?;
    let req = std::sync::Arc::new(req);
    let sem = std::sync::Arc::new(tokio::sync::Semaphore::new(concurrency.max(1)));
    let mut tasks = Vec::new();
    for _ in 0..count.max(1) {
        let app = app.clone();
        let req = req.clone();
        let sem = sem.clone();
        tasks.push(tokio::spawn(async move {
            let _permit = sem.acquire_owned().await.map_err(|e| e.to_string())?;
            let mut r = app
                .get(&req.url)
                .header(reqwest::header::HOST, req.authority.as_str());
            for (k, v) in &req.headers {
                r = r.header(k.as_str(), v.as_str());
            }
            let resp = r.send().await.map_err(|e| format!("request failed: {e}"))?;
            let status = resp.status().as_u16();
            let headers = resp
                .headers()
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
                .collect();
            let body = resp.text().await.unwrap_or_default();
            Ok(Response {
                status,
                headers,
                body,
            })
        }));
    }
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.map_err(|e| e.to_string()).and_then(|r| r));
    }
    Ok(out)
}

/// A client outside the mesh calling the ingress gateway Service `gateway`
/// (`<ns>/<name>`): the request goes to a ready gateway pod on the
/// Service port's target port (what a load balancer in front of it does),
/// with the URL's host as `Host`.
pub async fn curl_via_gateway(
    api: &ApiAccess,
    gateway: &str,
    url: &str,
    count: usize,
    concurrency: usize,
) -> anyhow::Result<Vec<Result<Response, String>>> {
    let (ns, name) = gateway.split_once('/').ok_or_else(|| {
        anyhow!("--via-gateway {gateway:?}: expected <namespace>/<gateway Service>")
    })?;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?;
    let parsed = reqwest::Url::parse(url).with_context(|| format!("bad URL {url:?}"))?;
    let host = parsed
        .host_str()
        .ok_or_else(|| anyhow!("URL {url:?} has no host"))?;
    let port = parsed.port_or_known_default().unwrap_or(80);
    let authority = match parsed.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.to_string(),
    };
    let mut path = parsed.path().to_string();
    if let Some(q) = parsed.query() {
        path = format!("{path}?{q}");
    }
    let target = direct_endpoint(api, &http, ns, &format!("{name}.{ns}"), port).await?;
    let req = Request {
        url: format!("http://{target}{path}"),
        authority,
        headers: Vec::new(),
    };
    send(req, None, count, concurrency).await
}

/// `ip:port` when the URL names one pod: an IPv4 literal, or a pod DNS name
/// `<hostname>.<subdomain>.<namespace>[.svc[.cluster.local]]` of a pod whose
/// `spec.hostname`/`spec.subdomain` say so.
async fn pod_address(
    api: &ApiAccess,
    http: &reqwest::Client,
    client_ns: &str,
    host: &str,
    port: u16,
) -> anyhow::Result<Option<String>> {
    if host.parse::<Ipv4Addr>().is_ok() {
        return Ok(Some(format!("{host}:{port}")));
    }
    let parts: Vec<&str> = host.split('.').collect();
    let well_formed = match parts.len() {
        2 => true,
        3 => parts[2] != "svc",
        4 => parts[3] == "svc",
        6 => parts[3] == "svc" && parts[4] == "cluster" && parts[5] == "local",
        _ => false,
    };
    if !well_formed || parts[1] == "svc" {
        return headless_endpoint(api, http, client_ns, host, port).await;
    }
    let ns = parts.get(2).copied().unwrap_or(client_ns);
    let list = api
        .get(http, &format!("/api/v1/namespaces/{ns}/pods"))
        .await?
        .unwrap_or(Value::Null);
    let by_name = list["items"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["spec"]["hostname"] == parts[0] && p["spec"]["subdomain"] == parts[1])
        .and_then(|p| p["status"]["podIP"].as_str())
        .map(|ip| format!("{ip}:{port}"));
    match by_name {
        Some(a) => Ok(Some(a)),
        None => headless_endpoint(api, http, client_ns, host, port).await,
    }
}

/// A headless Service's name resolves to its ready pods' IPs (DNS A
/// records): the first ready endpoint's IP, with the port the app dials.
async fn headless_endpoint(
    api: &ApiAccess,
    http: &reqwest::Client,
    client_ns: &str,
    host: &str,
    port: u16,
) -> anyhow::Result<Option<String>> {
    let mut parts = host.split('.');
    let svc = parts.next().unwrap_or(host);
    let ns = parts.next().unwrap_or(client_ns);
    let Some(service) = api
        .get(http, &format!("/api/v1/namespaces/{ns}/services/{svc}"))
        .await?
    else {
        return Ok(None);
    };
    if service["spec"]["clusterIP"] != "None" {
        return Ok(None);
    }
    let ep = direct_endpoint(api, http, client_ns, host, port).await?;
    Ok(ep.split_once(':').map(|(ip, _)| format!("{ip}:{port}")))
}

async fn find_pod(
    api: &ApiAccess,
    http: &reqwest::Client,
    ns: &str,
    name: &str,
) -> anyhow::Result<Value> {
    if let Some(p) = api
        .get(http, &format!("/api/v1/namespaces/{ns}/pods/{name}"))
        .await?
    {
        return Ok(p);
    }
    let dep = api
        .get(
            http,
            &format!("/apis/apps/v1/namespaces/{ns}/deployments/{name}"),
        )
        .await?
        .ok_or_else(|| anyhow!("no pod or deployment {name:?} in namespace {ns:?}"))?;
    let sel = dep["spec"]["selector"]["matchLabels"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default();
    let list = api
        .get(
            http,
            &format!("/api/v1/namespaces/{ns}/pods?labelSelector={sel}"),
        )
        .await?
        .unwrap_or(Value::Null);
    list["items"]
        .as_array()
        .and_then(|items| {
            items
                .iter()
                .find(|p| p["status"]["podIP"].is_string())
                .cloned()
        })
        .ok_or_else(|| anyhow!("deployment {ns}/{name} has no running pod"))
}

/// kube-proxy's part: a ready endpoint of the Service `host` names.
async fn direct_endpoint(
    api: &ApiAccess,
    http: &reqwest::Client,
    client_ns: &str,
    host: &str,
    port: u16,
) -> anyhow::Result<String> {
    let mut parts = host.split('.');
    let svc = parts.next().unwrap_or(host);
    let ns = parts.next().unwrap_or(client_ns);
    let service = api
        .get(http, &format!("/api/v1/namespaces/{ns}/services/{svc}"))
        .await?
        .ok_or_else(|| anyhow!("no Service {svc} in namespace {ns} for host {host}"))?;
    let sport = service["spec"]["ports"]
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["port"].as_u64() == Some(port as u64)))
        .ok_or_else(|| anyhow!("Service {ns}/{svc} has no port {port}"))?;
    let port_name = sport["name"].as_str().unwrap_or("");
    let slices = api
        .get(http, &format!("/apis/discovery.k8s.io/v1/namespaces/{ns}/endpointslices?labelSelector=kubernetes.io/service-name={svc}"))
        .await?
        .unwrap_or(Value::Null);
    for s in slices["items"].as_array().into_iter().flatten() {
        let tport = s["ports"]
            .as_array()
            .and_then(|ps| {
                ps.iter()
                    .find(|p| p["name"].as_str().unwrap_or("") == port_name)
            })
            .and_then(|p| p["port"].as_u64());
        for e in s["endpoints"].as_array().into_iter().flatten() {
            if e["conditions"]["ready"].as_bool() == Some(true) {
                if let (Some(ip), Some(tp)) = (e["addresses"][0].as_str(), tport) {
                    return Ok(format!("{ip}:{tp}"));
                }
            }
        }
    }
    Err(anyhow!("Service {ns}/{svc} has no ready endpoint"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_is_never_taken_from_the_host() {
        let p = url_parts("http://helloworld.default:5000/hello").unwrap();
        assert_eq!(p.path, "/hello");
        assert_eq!(p.authority, "helloworld.default:5000");
        assert_eq!(p.port, 5000);
        let p = url_parts("http://httpbin.foo:8000/status/503?x=1&hello=/hello").unwrap();
        assert_eq!(p.path, "/status/503?x=1&hello=/hello");
        let p = url_parts("http://httpbin.foo").unwrap();
        assert_eq!(
            (p.path.as_str(), p.port, p.host.as_str()),
            ("/", 80, "httpbin.foo")
        );
        assert!(url_parts("not a url").is_err());
    }
}
