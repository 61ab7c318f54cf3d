//! Collect stage: reading one pod's sidecar: its Envoy admin API (`:15000`) through ONE pod
//! port-forward, with a keep-alive HTTP/1.1 connection over the forwarded
//! stream, and the tail of its `istio-proxy` log — side by side, within the
//! earlier of `--proxy-timeout` and the run's deadline, every answer read
//! with a size cap.
//!
//! [`read_sidecar`] depends only on its [`ProxyJob`] and the client, so any
//! number of sidecars can be read concurrently (the orchestration decides
//! how many at once).
//!
//! `/config_dump` is only ever fetched with `resource=` (a full dump can be
//! tens of MB and holds secrets); secrets are never requested, and a dump
//! that contains secrets or the bootstrap anyway (an Envoy too old to honour
//! `resource=`) is discarded. `/stats` and `/stats/prometheus` are filtered
//! at the source to what the analysis reads (and again here, for an Envoy
//! that ignores `filter=`). What is kept and the checks of each answer are
//! Envoy facts in `envoy::{stats, metrics, config_dump}`; this file does the
//! I/O.

use std::future::Future;
use std::pin::Pin;
use std::sync::LazyLock;
use std::time::Duration;

use futures::future::{select, Either};
use futures::AsyncReadExt;
use http_body_util::{BodyExt, Empty, Limited};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, LogParams};
use serde_json::Value;
use tokio::time::Instant;

use super::api::{describe_kube_error, error_chain, is_connection_error};
use super::budget::{Budget, Limit};
use super::push_gap;
use super::scope::stats_filter;
use crate::envoy::config_dump::check_resource_dump;
use crate::envoy::metrics::{istio_metrics_filter, keep_istio_metrics};
use crate::envoy::stats::{keep_stats, kept_stats_filter};
use crate::istio::sidecar::SIDECAR_CONTAINER;
use crate::snapshot::{AdminScope, ProxyEvidence, ProxyRole};

/// Envoy's admin port in an Istio sidecar.
pub const ADMIN_PORT: u16 = 15000;

/// Port-forwards opened to one sidecar, its admin reads shared among them
/// round-robin. Envoy serves admin requests on its main thread one at a
/// time, so more connections overlap only the transfer and the
/// port-forward's latency; three keep every read but the slowest off the
/// critical path.
pub const ADMIN_STREAMS: usize = 3;

/// Cap on the bytes of one log tail (also sent as `limitBytes`).
pub const LOG_LIMIT_BYTES: usize = 8 * 1024 * 1024;

/// One sidecar to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyJob {
    pub namespace: String,
    pub pod: String,
    pub role: ProxyRole,
    pub because: String,
}

/// What each admin read fills in [`ProxyEvidence`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminRead {
    ServerInfo,
    ClustersConfig,
    ListenersConfig,
    EndpointsConfig,
    Clusters,
    Stats,
    Metrics,
}

/// The `/stats?filter=` regular expression ([`kept_stats_filter`]).
///
/// `usedonly` is deliberately not added: it drops counters that are still
/// 0, and the analysis tells "Istio's stats inclusion excludes per-cluster
/// stats" from "they are there and 0" by whether any `cluster.outbound|…`
/// stat is present at all (see `envoy::stats` module doc). Zeros of the
/// kept stats cost a few KB per proxy.
pub static STATS_FILTER: LazyLock<String> = LazyLock::new(kept_stats_filter);

/// The `/stats/prometheus?filter=` regular expression ([`istio_metrics_filter`]).
pub static METRICS_FILTER: LazyLock<String> = LazyLock::new(istio_metrics_filter);

/// Percent-encodes a query value (everything but RFC 3986 unreserved).
fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 2);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

static STATS_PATH: LazyLock<String> =
    LazyLock::new(|| format!("/stats?filter={}", query_escape(&STATS_FILTER)));
static METRICS_PATH: LazyLock<String> =
    LazyLock::new(|| format!("/stats/prometheus?filter={}", query_escape(&METRICS_FILTER)));

impl AdminRead {
    /// Every read, in the order they are fetched.
    pub const ALL: [AdminRead; 7] = [
        AdminRead::ServerInfo,
        AdminRead::ClustersConfig,
        AdminRead::ListenersConfig,
        AdminRead::EndpointsConfig,
        AdminRead::Clusters,
        AdminRead::Stats,
        AdminRead::Metrics,
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
            AdminRead::Stats => STATS_PATH.as_str(),
            AdminRead::Metrics => METRICS_PATH.as_str(),
        }
    }

    /// The path narrowed to `scope` (Envoy's admin filters, see
    /// `collect::scope`); without one, [`AdminRead::path`].
    pub fn path_for(self, scope: Option<&AdminScope>) -> String {
        let Some(scope) = scope else {
            return self.path().to_string();
        };
        match self {
            AdminRead::ClustersConfig | AdminRead::EndpointsConfig => format!(
                "{}&name_regex={}",
                self.path(),
                query_escape(&scope.clusters)
            ),
            AdminRead::ListenersConfig => format!(
                "{}&name_regex={}",
                self.path(),
                query_escape(&scope.listeners)
            ),
            AdminRead::Clusters => format!("/clusters?filter={}", query_escape(&scope.clusters)),
            AdminRead::Stats => format!("/stats?filter={}", query_escape(&stats_filter(scope))),
            _ => self.path().to_string(),
        }
    }

    /// The path as named in gaps (the filters are long and always the same).
    pub fn label(self) -> &'static str {
        match self {
            AdminRead::Stats => "/stats?filter=…",
            AdminRead::Metrics => "/stats/prometheus?filter=…",
            other => other.path(),
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
        matches!(
            self,
            AdminRead::ServerInfo
                | AdminRead::ClustersConfig
                | AdminRead::ListenersConfig
                | AdminRead::EndpointsConfig
        )
    }

    /// Cap on the answer.
    pub fn limit(self) -> usize {
        const MIB: usize = 1024 * 1024;
        match self {
            AdminRead::ServerInfo => 4 * MIB,
            AdminRead::Stats | AdminRead::Metrics => 16 * MIB,
            AdminRead::Clusters => 32 * MIB,
            _ => 64 * MIB,
        }
    }
}

/// `/server_info` without `node.extensions` (Envoy lists every compiled-in
/// extension there: ~100 KB per proxy that no analysis uses).
fn trim_server_info(mut v: Value) -> Value {
    if let Some(node) = v.get_mut("node").and_then(Value::as_object_mut) {
        node.remove("extensions");
    }
    v
}

/// `pod NS/NAME :15000/PATH`, the source of an admin gap.
pub fn admin_source(namespace: &str, pod: &str, path: &str) -> String {
    format!("pod {namespace}/{pod} :{ADMIN_PORT}{path}")
}

/// The answer to one admin read: the body, or why there is none.
pub type AdminResult = Result<String, String>;

/// Why no admin read at all could be made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminFailure {
    pub reason: String,
    /// The API server itself was not reached (it went away), as opposed to
    /// the pod or its sidecar refusing.
    pub api_unreachable: bool,
}

/// A sidecar read: the evidence, and whether the API was lost meanwhile.
#[derive(Debug, Clone)]
pub struct SidecarRead {
    pub evidence: ProxyEvidence,
    /// Set when the port-forward or the log could not be opened because the
    /// API server was not reached: the run cannot go on honestly.
    pub api_lost: Option<(String, String)>,
}

/// Builds a pod's evidence from what its admin API and log gave: every read
/// that failed becomes a gap on the evidence; a failed port-forward is one
/// gap for the whole admin API.
pub fn proxy_evidence(
    job: &ProxyJob,
    reads: &[AdminRead],
    admin: Result<Vec<AdminResult>, AdminFailure>,
    log: Result<String, String>,
) -> ProxyEvidence {
    proxy_evidence_scoped(job, reads, None, admin, log)
}

/// A filtered read that matched nothing: the sidecar has none of what the
/// diagnosis looks for there (recorded, so an empty list is not taken for
/// "not read").
fn empty_scoped_read(read: AdminRead, scope: &AdminScope) -> String {
    let filter = match read {
        AdminRead::ListenersConfig => &scope.listeners,
        _ => &scope.clusters,
    };
    format!("nothing matched the diagnosis' filter {filter}: the sidecar has none of them")
}

/// [`proxy_evidence`] of reads narrowed to `scope` (recorded on the
/// evidence); a filtered read that returned nothing is a gap.
pub fn proxy_evidence_scoped(
    job: &ProxyJob,
    reads: &[AdminRead],
    scope: Option<&AdminScope>,
    admin: Result<Vec<AdminResult>, AdminFailure>,
    log: Result<String, String>,
) -> ProxyEvidence {
    let mut ev = ProxyEvidence {
        namespace: job.namespace.clone(),
        pod: job.pod.clone(),
        role: job.role,
        chosen_because: job.because.clone(),
        server_info: None,
        clusters_config: None,
        listeners_config: None,
        endpoints_config: None,
        clusters: None,
        stats: None,
        log_tail: None,
        gaps: Vec::new(),
        metrics: None,
        scope: scope.cloned(),
    };
    match admin {
        Err(f) => push_gap(
            &mut ev.gaps,
            admin_source(&job.namespace, &job.pod, ""),
            f.reason,
        ),
        Ok(results) if !results.is_empty() && results.iter().all(Result::is_err) => {
            // A dead sidecar (nothing on :15000) fails every read the same
            // way: one gap, not one per read.
            let first = results
                .into_iter()
                .find_map(Result::err)
                .unwrap_or_default();
            push_gap(
                &mut ev.gaps,
                admin_source(&job.namespace, &job.pod, ""),
                format!("every admin read failed: {first}"),
            );
        }
        Ok(results) => {
            for (read, result) in reads.iter().zip(results) {
                let source = admin_source(&job.namespace, &job.pod, read.label());
                let body = match result {
                    Ok(b) => b,
                    Err(reason) => {
                        push_gap(&mut ev.gaps, source, reason);
                        continue;
                    }
                };
                if let Some(scope) = scope {
                    // Envoy answers `{}` to a config_dump filter that matches
                    // nothing, an empty body to `/clusters?filter=`.
                    let empty = if read.is_json() {
                        body.chars().filter(|c| !c.is_whitespace()).eq("{}".chars())
                    } else {
                        body.trim().is_empty()
                    };
                    let config = matches!(
                        read,
                        AdminRead::ClustersConfig
                            | AdminRead::ListenersConfig
                            | AdminRead::EndpointsConfig
                    );
                    if empty
                        && matches!(
                            read,
                            AdminRead::ClustersConfig
                                | AdminRead::ListenersConfig
                                | AdminRead::Clusters
                        )
                    {
                        push_gap(
                            &mut ev.gaps,
                            source.clone(),
                            empty_scoped_read(*read, scope),
                        );
                    }
                    if empty && config {
                        // Read, and nothing in it (no EDS cluster matched is normal).
                        let none = Some(Value::Object(serde_json::Map::new()));
                        match read {
                            AdminRead::ClustersConfig => ev.clusters_config = none,
                            AdminRead::ListenersConfig => ev.listeners_config = none,
                            _ => ev.endpoints_config = none,
                        }
                        continue;
                    }
                }
                if read.is_json() {
                    match check_resource_dump(&body, read.expected_item_type()) {
                        Ok(v) => match read {
                            AdminRead::ServerInfo => ev.server_info = Some(trim_server_info(v)),
                            AdminRead::ClustersConfig => ev.clusters_config = Some(v),
                            AdminRead::ListenersConfig => ev.listeners_config = Some(v),
                            _ => ev.endpoints_config = Some(v),
                        },
                        Err(reason) => push_gap(&mut ev.gaps, source, reason),
                    }
                } else {
                    match read {
                        AdminRead::Clusters => ev.clusters = Some(body),
                        AdminRead::Stats => ev.stats = Some(keep_stats(&body)),
                        _ => ev.metrics = Some(keep_istio_metrics(&body)),
                    }
                }
            }
        }
    }
    match log {
        Ok(text) => ev.log_tail = Some(text),
        Err(reason) => push_gap(
            &mut ev.gaps,
            format!(
                "pod {}/{} log of container {SIDECAR_CONTAINER}",
                job.namespace, job.pod
            ),
            reason,
        ),
    }
    ev
}

/// Reads one pod's sidecar: all admin reads through one port-forward, and
/// the log tail, side by side, done by the earlier of `proxy_timeout` from
/// now and the run's deadline.
pub async fn read_sidecar(
    client: &kube::Client,
    job: &ProxyJob,
    scope: Option<&AdminScope>,
    budget: &Budget,
    proxy_timeout: Duration,
    log_lines: u32,
    progress: &dyn Fn(&str),
) -> SidecarRead {
    let (deadline, limit) = budget.proxy(proxy_timeout);
    let pods: Api<Pod> = Api::namespaced(client.clone(), &job.namespace);
    progress(&format!(
        "reading the sidecar of {}/{} (:{ADMIN_PORT} and its log)",
        job.namespace, job.pod
    ));
    let reads = AdminRead::ALL;
    let admin = read_admin_scoped(&pods, &job.pod, &reads, scope, deadline, limit);
    let log = async {
        match Budget::bound(deadline, log_tail(&pods, &job.pod, log_lines)).await {
            Some(r) => r,
            None => Err((limit.to_string(), false)),
        }
    };
    let (admin, log) = futures::join!(admin, log);
    let mut api_lost = None;
    if let Err(f) = &admin {
        if f.api_unreachable {
            api_lost = Some((
                format!("opening a port-forward to {}/{}", job.namespace, job.pod),
                f.reason.clone(),
            ));
        }
    }
    let log = log.map_err(|(reason, unreachable)| {
        if unreachable && api_lost.is_none() {
            api_lost = Some((
                format!("reading the log of {}/{}", job.namespace, job.pod),
                reason.clone(),
            ));
        }
        reason
    });
    SidecarRead {
        evidence: proxy_evidence_scoped(job, &reads, scope, admin, log),
        api_lost,
    }
}

/// `GET …/pods/NAME/log?container=istio-proxy&tailLines=N&limitBytes=…`,
/// read with a cap (an API that ignores `limitBytes` cannot make it grow).
/// The error says whether the API server was unreachable.
async fn log_tail(pods: &Api<Pod>, pod: &str, lines: u32) -> Result<String, (String, bool)> {
    let lp = LogParams {
        container: Some(SIDECAR_CONTAINER.to_string()),
        tail_lines: Some(i64::from(lines)),
        limit_bytes: Some(LOG_LIMIT_BYTES as i64),
        ..LogParams::default()
    };
    let stream = pods
        .log_stream(pod, &lp)
        .await
        .map_err(|e| (describe_kube_error(&e), is_connection_error(&e)))?;
    let mut buf = Vec::new();
    stream
        .take(LOG_LIMIT_BYTES as u64)
        .read_to_end(&mut buf)
        .await
        .map_err(|e| (format!("reading the log failed: {e}"), false))?;
    if buf.len() >= LOG_LIMIT_BYTES {
        // Keep whole lines only.
        if let Some(end) = buf.iter().rposition(|b| *b == b'\n') {
            buf.truncate(end + 1);
        }
    }
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

/// One admin GET over the forwarded connection, its answer read with the
/// read's size cap.
async fn admin_get(
    sender: &mut hyper::client::conn::http1::SendRequest<Empty<Bytes>>,
    read: AdminRead,
    path: &str,
) -> AdminResult {
    sender
        .ready()
        .await
        .map_err(|e| format!("connection to :15000 not usable: {e}"))?;
    let req = http::Request::get(path)
        .header(http::header::HOST, "localhost:15000")
        .body(Empty::<Bytes>::new())
        .map_err(|e| e.to_string())?;
    let resp = sender
        .send_request(req)
        .await
        .map_err(|e| format!("request failed: {}", error_chain(&e)))?;
    let status = resp.status();
    let body = Limited::new(resp.into_body(), read.limit())
        .collect()
        .await
        .map_err(|e| {
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some()
            {
                format!(
                    "the answer is larger than {} MiB; not kept",
                    read.limit() / (1024 * 1024)
                )
            } else {
                format!("reading the answer failed: {e}")
            }
        })?
        .to_bytes();
    let text = String::from_utf8_lossy(&body).into_owned();
    if !status.is_success() {
        let first: String = text
            .lines()
            .next()
            .unwrap_or("")
            .trim()
            .chars()
            .take(300)
            .collect();
        return Err(format!(
            "HTTP {status}{}{first}",
            if first.is_empty() { "" } else { ": " }
        ));
    }
    Ok(text)
}

/// [`read_admin_scoped`] without filters.
pub async fn read_admin(
    pods: &Api<Pod>,
    pod: &str,
    reads: &[AdminRead],
    deadline: Option<Instant>,
    limit: Limit,
) -> Result<Vec<AdminResult>, AdminFailure> {
    read_admin_scoped(pods, pod, reads, None, deadline, limit).await
}

/// Runs `reads` (narrowed to `scope`) over up to [`ADMIN_STREAMS`]
/// port-forwards to `pod:15000` at once, and returns each read's answer in
/// order. `Err` only when no port-forward could be used at all; a forward
/// that fails alone fails its share of the reads.
pub async fn read_admin_scoped(
    pods: &Api<Pod>,
    pod: &str,
    reads: &[AdminRead],
    scope: Option<&AdminScope>,
    deadline: Option<Instant>,
    limit: Limit,
) -> Result<Vec<AdminResult>, AdminFailure> {
    let paths: Vec<(AdminRead, String)> = reads.iter().map(|r| (*r, r.path_for(scope))).collect();
    let n = ADMIN_STREAMS.min(paths.len()).max(1);
    let shares: Vec<Vec<usize>> = (0..n)
        .map(|k| (k..paths.len()).step_by(n).collect())
        .collect();
    let outs = futures::future::join_all(shares.iter().map(|idx| {
        let share: Vec<(AdminRead, &str)> = idx
            .iter()
            .map(|i| (paths[*i].0, paths[*i].1.as_str()))
            .collect();
        async move { read_admin_forward(pods, pod, &share, deadline, limit).await }
    }))
    .await;
    let mut results: Vec<Option<AdminResult>> = vec![None; paths.len()];
    let mut failure: Option<AdminFailure> = None;
    let mut any_forward = false;
    for (idx, out) in shares.iter().zip(outs) {
        match out {
            Ok(rs) => {
                any_forward = true;
                for (i, r) in idx.iter().zip(rs) {
                    results[*i] = Some(r);
                }
            }
            Err(f) => {
                for i in idx {
                    results[*i] = Some(Err(f.reason.clone()));
                }
                failure.get_or_insert(f);
            }
        }
    }
    match failure {
        Some(f) if !any_forward => Err(f),
        _ => Ok(results
            .into_iter()
            .map(|r| r.unwrap_or_else(|| Err("not read".to_string())))
            .collect()),
    }
}

/// Opens one port-forward to `pod:15000`, runs `reads` over one keep-alive
/// HTTP/1.1 connection, and returns each read's answer in order.
///
/// Every step ends by `deadline`; what is not done by then gets an error
/// naming `limit`. `Err` (for the whole forward) means the port-forward or
/// the HTTP handshake failed: nothing could be read over it.
async fn read_admin_forward(
    pods: &Api<Pod>,
    pod: &str,
    reads: &[(AdminRead, &str)],
    deadline: Option<Instant>,
    limit: Limit,
) -> Result<Vec<AdminResult>, AdminFailure> {
    let fail = |reason: String, api_unreachable: bool| AdminFailure {
        reason,
        api_unreachable,
    };
    let mut pf = match Budget::bound(deadline, pods.portforward(pod, &[ADMIN_PORT])).await {
        None => {
            return Err(fail(
                format!("port-forward not established: {limit}"),
                false,
            ))
        }
        Some(Err(e)) => {
            return Err(fail(
                format!("port-forward failed: {}", describe_kube_error(&e)),
                is_connection_error(&e),
            ))
        }
        Some(Ok(pf)) => pf,
    };
    let Some(stream) = pf.take_stream(ADMIN_PORT) else {
        pf.abort();
        return Err(fail(
            "port-forward gave no stream for port 15000".into(),
            false,
        ));
    };
    let mut pf_error: Pin<Box<dyn Future<Output = Option<String>> + Send>> =
        match pf.take_error(ADMIN_PORT) {
            Some(f) => Box::pin(f),
            None => Box::pin(futures::future::pending()),
        };

    let handshake = hyper::client::conn::http1::handshake::<_, Empty<Bytes>>(TokioIo::new(stream));
    let (mut sender, conn) = match Budget::bound(deadline, handshake).await {
        None => {
            pf.abort();
            return Err(fail(
                format!("HTTP handshake over the port-forward: {limit}"),
                false,
            ));
        }
        Some(Err(e)) => {
            pf.abort();
            return Err(fail(
                format!("HTTP handshake over the port-forward failed: {e}"),
                false,
            ));
        }
        Some(Ok(x)) => x,
    };

    let work = async {
        let mut out: Vec<AdminResult> = Vec::with_capacity(reads.len());
        for (read, path) in reads {
            out.push(
                Budget::bound(deadline, admin_get(&mut sender, *read, path))
                    .await
                    .unwrap_or_else(|| Err(limit.to_string())),
            );
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

    fn job() -> ProxyJob {
        ProxyJob {
            namespace: "foo".into(),
            pod: "sleep-1".into(),
            role: ProxyRole::Client,
            because: "named with --from pod/sleep-1".into(),
        }
    }

    #[test]
    fn admin_paths_never_dump_everything() {
        for r in AdminRead::ALL {
            let p = r.path();
            if p.starts_with("/config_dump") {
                assert!(p.contains("resource=dynamic_"), "{p}");
                assert!(!p.contains("secret"), "{p}");
            }
            assert!(p.parse::<http::Uri>().is_ok(), "{p}");
        }
        assert!(AdminRead::Stats
            .path()
            .starts_with("/stats?filter=%5C.%28%3F%3A"));
        assert_eq!(AdminRead::Stats.label(), "/stats?filter=…");
    }

    #[test]
    fn evidence_with_gaps() {
        let reads = AdminRead::ALL;
        let cd = |t: &str| {
            format!(r#"{{"configs":[{{"@type":"type.googleapis.com/envoy.admin.v3.{t}"}}]}}"#)
        };
        let results: Vec<AdminResult> = vec![
            Ok(r#"{"version":"abc/1.40.0","node":{"extensions":[1]}}"#.into()),
            Ok(cd("ClustersConfigDump.DynamicCluster")),
            Err("HTTP 404 Not Found: no such resource".into()),
            Ok(cd("SecretsConfigDump")),
            Ok("outbound|80||a.b.svc.cluster.local::1.2.3.4:80::rq_total::1\n".into()),
            Err("no answer within the 5s --proxy-timeout for this pod".into()),
            Ok("# TYPE envoy_server_live gauge\nenvoy_server_live{} 1\n".into()),
        ];
        let ev = proxy_evidence(
            &job(),
            &reads,
            Ok(results),
            Err("HTTP 403 Forbidden: pods \"sleep-1\" is forbidden".into()),
        );
        assert_eq!(ev.server_info.as_ref().unwrap()["version"], "abc/1.40.0");
        assert!(ev.server_info.as_ref().unwrap()["node"]
            .get("extensions")
            .is_none());
        assert!(ev.clusters_config.is_some());
        assert!(ev.listeners_config.is_none());
        assert!(
            ev.endpoints_config.is_none(),
            "a dump holding secrets is never kept"
        );
        assert!(ev.clusters.as_deref().unwrap().contains("rq_total"));
        assert!(ev.stats.is_none());
        assert_eq!(
            ev.metrics.as_deref(),
            Some(""),
            "read, no Istio metric in it"
        );
        assert!(ev.log_tail.is_none());
        let sources: Vec<&str> = ev.gaps.iter().map(|g| g.source.as_str()).collect();
        assert_eq!(
            sources,
            vec![
                "pod foo/sleep-1 :15000/config_dump?resource=dynamic_listeners",
                "pod foo/sleep-1 :15000/config_dump?resource=dynamic_endpoint_configs&include_eds",
                "pod foo/sleep-1 :15000/stats?filter=…",
                "pod foo/sleep-1 log of container istio-proxy",
            ]
        );
        assert!(ev.gaps[1].reason.contains("discarded"));

        let ev = proxy_evidence(
            &job(),
            &reads,
            Err(AdminFailure {
                reason: "port-forward failed: HTTP 403 Forbidden".into(),
                api_unreachable: false,
            }),
            Ok("".into()),
        );
        assert_eq!(ev.gaps.len(), 1);
        assert_eq!(ev.gaps[0].source, "pod foo/sleep-1 :15000");
        assert_eq!(ev.log_tail.as_deref(), Some(""));
        assert_eq!(ev.chosen_because, "named with --from pod/sleep-1");
        assert_eq!(ev.role, ProxyRole::Client);

        let dead: Vec<AdminResult> = reads
            .iter()
            .map(|_| {
                Err("request failed: connection closed (port-forward: connection refused)".into())
            })
            .collect();
        let ev = proxy_evidence(&job(), &reads, Ok(dead), Ok("".into()));
        assert_eq!(
            ev.gaps.len(),
            1,
            "one line for a dead sidecar: {:?}",
            ev.gaps
        );
        assert!(ev.gaps[0]
            .reason
            .starts_with("every admin read failed: request failed"));
    }
}
