//! Read-only collection of the evidence for one diagnosis into a
//! [`Snapshot`].
//!
//! Towards the cluster this module only lists, gets, reads `pods/log` and
//! opens `pods/portforward` (to the sidecar's admin port 15000). It never
//! execs, creates, patches or deletes, and never reads Secrets.
//!
//! Failure policy: only "the API server cannot be reached at all" and "the
//! target (or a `--from` client) does not exist" fail a run. Everything else
//! that cannot be read (403, a kind that is not installed, a pod that cannot
//! be port-forwarded, an admin read that times out, a log that is not there)
//! is recorded as a [`Gap`] — on the snapshot or on the pod's
//! [`ProxyEvidence`] — and collection goes on.
//!
//! Order of work: API version and Istio API discovery; Istio config listed
//! cluster-wide; the target resolved; Services, EndpointSlices and server
//! pods; server sidecars read (admin API and log); clients chosen (`--from`,
//! else callers in the servers' access logs, else a sample of injected pods
//! whose `/clusters` shows traffic to the service); client sidecars read;
//! namespaces and the mesh ConfigMap; Istio config that was forbidden
//! cluster-wide listed per namespace.

pub mod clients;
pub mod kube;
pub mod logs;
pub mod objects;
pub mod proxy;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use serde_json::Value;
use tokio::time::Instant;

use self::clients::{clients_from_callers, clients_from_probes, pick_deployment_pods, Probe};
use self::kube::{classify, collection_path, with_type, ApiCallError, Failure, Kind, ReadApi};
use self::logs::Caller;
use self::proxy::{AdminRead, AdminResult};
use crate::snapshot::{Gap, ProxyEvidence, ProxyRole, Snapshot, SCHEMA};
use crate::target::{ClientRef, Target};

/// How to connect and how much to read.
#[derive(Debug, Clone, PartialEq)]
pub struct CollectOptions {
    /// `--kubeconfig`; default: `KUBECONFIG`, `~/.kube/config`, else in-cluster.
    pub kubeconfig: Option<PathBuf>,
    /// `--context`; default: the kubeconfig's current context.
    pub context: Option<String>,
    /// `-n`; default: the kubeconfig context's namespace, else `default`.
    pub namespace: Option<String>,
    /// Where ConfigMap `istio` lives (default `istio-system`).
    pub istio_namespace: String,
    /// `--from`, repeatable.
    pub from: Vec<ClientRef>,
    /// `--request-timeout`, applied to every API call.
    pub request_timeout: Option<Duration>,
    /// Per pod, all admin reads and the log included (default 5s).
    pub proxy_timeout: Duration,
    /// Pods read in parallel (default 8).
    pub concurrency: usize,
    /// Lines of the `istio-proxy` log tail (default 500).
    pub log_tail_lines: i64,
    /// Cap on discovered clients (default 5).
    pub max_clients: usize,
    /// `-A`: when sampling for clients, look beyond the target's namespace
    /// (lists pods cluster-wide, which needs that RBAC).
    pub all_namespaces: bool,
}

impl Default for CollectOptions {
    fn default() -> Self {
        CollectOptions {
            kubeconfig: None,
            context: None,
            namespace: None,
            istio_namespace: "istio-system".to_string(),
            from: Vec::new(),
            request_timeout: None,
            proxy_timeout: Duration::from_secs(5),
            concurrency: 8,
            log_tail_lines: 500,
            max_clients: 5,
            all_namespaces: false,
        }
    }
}

/// Why a collection failed as a whole.
#[derive(Debug, thiserror::Error)]
pub enum CollectError {
    /// The client configuration could not be loaded or used.
    #[error(
        "cannot use the Kubernetes client configuration from {origin}: {message}\n  hint: {hint}"
    )]
    Kubeconfig {
        origin: String,
        message: String,
        hint: String,
    },
    /// The API server cannot be reached at all.
    #[error(
        "cannot reach the Kubernetes API server at {url}: {source}\n  hint: check --context and \
         --kubeconfig (`kubectl config current-context`, `kubectl cluster-info`) and that the cluster is up"
    )]
    Connect { url: String, source: ApiCallError },
    /// The target (or a `--from` client) does not exist.
    #[error("{what} not found in namespace {namespace:?}\n  hint: {hint}")]
    TargetNotFound {
        what: String,
        namespace: String,
        hint: String,
    },
    /// Reading the target itself is forbidden.
    #[error("not allowed to read {what}: {message}\n  hint: {hint}")]
    Forbidden {
        what: String,
        message: String,
        hint: String,
    },
    /// Reading the target failed otherwise.
    #[error("cannot read {what}: {source}")]
    Api { what: String, source: ApiCallError },
}

/// Loads the client configuration (no network): `--kubeconfig`/`--context`
/// when given, else `Config::infer()`. Returns the config with
/// `--request-timeout` applied, the context name if known, and the namespace
/// to use (`-n`, else the context's, else `default`).
pub async fn load_config(
    opts: &CollectOptions,
) -> Result<(::kube::Config, Option<String>, String), CollectError> {
    use ::kube::config::{KubeConfigOptions, Kubeconfig};
    let kopts = KubeConfigOptions {
        context: opts.context.clone(),
        ..KubeConfigOptions::default()
    };
    let bad = |origin: String, e: &dyn std::error::Error| CollectError::Kubeconfig {
        origin,
        message: kube::error_chain(e),
        hint: "pass --kubeconfig FILE or set KUBECONFIG; list contexts with \
               `kubectl config get-contexts` and pick one with --context"
            .to_string(),
    };
    let (mut config, context) = if let Some(path) = &opts.kubeconfig {
        let origin = path.display().to_string();
        let kc = Kubeconfig::read_from(path).map_err(|e| bad(origin.clone(), &e))?;
        let context = opts.context.clone().or_else(|| kc.current_context.clone());
        let config = ::kube::Config::from_custom_kubeconfig(kc, &kopts)
            .await
            .map_err(|e| bad(origin, &e))?;
        (config, context)
    } else if opts.context.is_some() {
        let config = ::kube::Config::from_kubeconfig(&kopts).await.map_err(|e| {
            bad(
                "the default kubeconfig (KUBECONFIG or ~/.kube/config)".into(),
                &e,
            )
        })?;
        (config, opts.context.clone())
    } else {
        let context = Kubeconfig::read().ok().and_then(|k| k.current_context);
        let config = ::kube::Config::infer().await.map_err(|e| {
            bad(
                "the environment (KUBECONFIG, ~/.kube/config, in-cluster service account)".into(),
                &e,
            )
        })?;
        (config, context)
    };
    if let Some(t) = opts.request_timeout {
        config.connect_timeout = Some(t);
        config.read_timeout = Some(t);
        config.write_timeout = Some(t);
    }
    if config.proxy_url.is_some()
        && !proxy_applies(
            &config.cluster_url,
            std::env::var("NO_PROXY")
                .ok()
                .or_else(|| std::env::var("no_proxy").ok())
                .as_deref(),
        )
    {
        config.proxy_url = None;
    }
    let namespace = opts
        .namespace
        .clone()
        .unwrap_or_else(|| config.default_namespace.clone());
    Ok((config, context, namespace))
}

/// Whether an HTTP proxy should be used for `url`: never for loopback, never
/// for hosts listed in `no_proxy` (`*`, exact host, or a domain suffix).
pub fn proxy_applies(url: &http::Uri, no_proxy: Option<&str>) -> bool {
    let host = url
        .host()
        .unwrap_or("")
        .trim_start_matches('[')
        .trim_end_matches(']');
    if host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
    {
        return false;
    }
    for entry in no_proxy.unwrap_or("").split(',').map(str::trim) {
        if entry.is_empty() {
            continue;
        }
        if entry == "*" {
            return false;
        }
        let entry = entry.split(':').next().unwrap_or(entry);
        let domain = entry.trim_start_matches('.');
        if host == domain || host.ends_with(&format!(".{domain}")) {
            return false;
        }
    }
    true
}

/// Builds the API client. Returns it with the context name (if known) and
/// the namespace to use. Does not contact the API server.
pub async fn client(
    opts: &CollectOptions,
) -> Result<(::kube::Client, Option<String>, String), CollectError> {
    let (config, context, namespace) = load_config(opts).await?;
    let origin = match (&opts.kubeconfig, &context) {
        (Some(p), Some(c)) => format!("{} (context {c:?})", p.display()),
        (Some(p), None) => p.display().to_string(),
        (None, Some(c)) => format!("context {c:?}"),
        (None, None) => "the environment".to_string(),
    };
    let client = ::kube::Client::try_from(config).map_err(|e| {
        let hint = if matches!(e, ::kube::Error::ProxyProtocolDisabled { .. }) {
            "this build cannot use an HTTP(S) proxy: unset HTTPS_PROXY, or add the API server to NO_PROXY"
        } else {
            "check the cluster's certificate data and the user's credentials in the kubeconfig"
        };
        CollectError::Kubeconfig {
            origin,
            message: kube::error_chain(&e),
            hint: hint.to_string(),
        }
    })?;
    Ok((client, context, namespace))
}

/// Collects the evidence for `target`, resolved in namespace `ns` (a host
/// that names its namespace, `httpbin.foo`, is resolved there instead).
/// `progress` gets one short line per step.
pub async fn collect_for_target(
    client: &::kube::Client,
    target: &Target,
    ns: &str,
    opts: &CollectOptions,
    progress: &dyn Fn(&str),
) -> Result<Snapshot, CollectError> {
    let mut run = Run::new(client, opts, progress, target.to_string(), ns).await;
    run.preflight().await?;
    let resolved = run.resolve(target, ns).await?;
    run.snap.namespace = resolved.namespace.clone();
    run.server_side(&resolved).await;

    let server_jobs = run.server_jobs(&resolved);
    let servers = run.read_proxies(server_jobs).await;
    let client_jobs = run.choose_clients(&resolved, &servers, ns).await?;
    run.snap.proxies.extend(servers);
    let clients = run.read_proxies(client_jobs).await;
    run.snap.proxies.extend(clients);

    run.finish(&resolved).await;
    run.snap.redact();
    Ok(run.snap)
}

/// For `tls-check pod/NAME [svc/NAME]`: the pod's sidecar (role Client) plus
/// the servers of the optional service. Both must exist.
pub async fn collect_for_pod(
    client: &::kube::Client,
    pod: &str,
    service: Option<&str>,
    ns: &str,
    opts: &CollectOptions,
    progress: &dyn Fn(&str),
) -> Result<Snapshot, CollectError> {
    let target = match service {
        Some(s) => format!("pod/{pod} svc/{s}"),
        None => format!("pod/{pod}"),
    };
    let mut run = Run::new(client, opts, progress, target, ns).await;
    run.preflight().await?;
    let client_pod = run.get_pod_target(ns, pod, None).await?;
    let resolved = match service {
        Some(name) => {
            run.resolve(
                &Target::Service {
                    name: name.to_string(),
                },
                ns,
            )
            .await?
        }
        None => Resolved {
            namespace: ns.to_string(),
            ..Resolved::default()
        },
    };
    run.server_side(&resolved).await;
    let server_jobs = run.server_jobs(&resolved);
    let servers = run.read_proxies(server_jobs).await;
    run.snap.proxies.extend(servers);
    run.add_object(client_pod.clone());
    let mut jobs = Vec::new();
    if objects::has_sidecar(&client_pod) {
        jobs.push(ProxyJob {
            namespace: ns.to_string(),
            pod: pod.to_string(),
            role: ProxyRole::Client,
            because: format!("named on the command line (tls-check pod/{pod})"),
        });
    }
    run.client_namespaces.insert(ns.to_string());
    let clients = run.read_proxies(jobs).await;
    run.snap.proxies.extend(clients);
    run.finish(&resolved).await;
    run.snap.redact();
    Ok(run.snap)
}

/// The target, resolved to Kubernetes objects.
#[derive(Debug, Clone, Default)]
struct Resolved {
    /// Namespace of the target.
    namespace: String,
    /// The Services of the target (one for a Service or host).
    services: Vec<Value>,
    /// Pods whose sidecars are read as servers, each with why.
    server_pods: Vec<(Value, String)>,
    /// Other pods behind the Services (kept as objects).
    other_pods: Vec<Value>,
    /// Port the user named on a host, if any.
    port: Option<u16>,
}

/// One sidecar to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyJob {
    pub namespace: String,
    pub pod: String,
    pub role: ProxyRole,
    pub because: String,
}

/// Cap on server sidecars read for one target.
const MAX_SERVER_PROXIES: usize = 10;

/// `pod NS/NAME :15000/PATH`, the source of an admin gap.
pub fn admin_source(namespace: &str, pod: &str, path: &str) -> String {
    format!("pod {namespace}/{pod} :{}{path}", proxy::ADMIN_PORT)
}

/// Adds a gap unless the same one is already there.
pub fn push_gap(gaps: &mut Vec<Gap>, source: impl Into<String>, reason: impl Into<String>) {
    let gap = Gap {
        source: source.into(),
        reason: reason.into(),
    };
    if !gaps.contains(&gap) {
        gaps.push(gap);
    }
}

/// Builds a pod's evidence from what its admin API and log gave: every read
/// that failed becomes a gap on the evidence; a failed port-forward is one
/// gap for the whole admin API.
pub fn proxy_evidence(
    job: &ProxyJob,
    reads: &[AdminRead],
    admin: Result<Vec<AdminResult>, String>,
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
    };
    match admin {
        Err(reason) => push_gap(
            &mut ev.gaps,
            admin_source(&job.namespace, &job.pod, ""),
            reason,
        ),
        Ok(results) => {
            for (read, result) in reads.iter().zip(results) {
                let source = admin_source(&job.namespace, &job.pod, read.path());
                let body = match result {
                    Ok(b) => b,
                    Err(reason) => {
                        push_gap(&mut ev.gaps, source, reason);
                        continue;
                    }
                };
                if read.is_json() {
                    match proxy::check_config_dump(*read, &body) {
                        Ok(v) => match read {
                            AdminRead::ServerInfo => ev.server_info = Some(trim_server_info(v)),
                            AdminRead::ClustersConfig => ev.clusters_config = Some(v),
                            AdminRead::ListenersConfig => ev.listeners_config = Some(v),
                            AdminRead::EndpointsConfig => ev.endpoints_config = Some(v),
                            AdminRead::Clusters | AdminRead::Stats => {}
                        },
                        Err(reason) => push_gap(&mut ev.gaps, source, reason),
                    }
                } else if *read == AdminRead::Clusters {
                    ev.clusters = Some(body);
                } else {
                    ev.stats = Some(body);
                }
            }
        }
    }
    match log {
        Ok(text) => ev.log_tail = Some(text),
        Err(reason) => push_gap(
            &mut ev.gaps,
            format!(
                "pod {}/{} log of container istio-proxy",
                job.namespace, job.pod
            ),
            reason,
        ),
    }
    ev
}

/// Reads one pod's sidecar: admin API through one port-forward and the log
/// tail, side by side, both within `opts.proxy_timeout`.
pub async fn read_proxy(
    client: &::kube::Client,
    job: &ProxyJob,
    opts: &CollectOptions,
    progress: &dyn Fn(&str),
) -> ProxyEvidence {
    let deadline = Instant::now() + opts.proxy_timeout;
    let pods: ::kube::Api<Pod> = ::kube::Api::namespaced(client.clone(), &job.namespace);
    progress(&format!(
        "port-forwarding to {}/{}:{}",
        job.namespace,
        job.pod,
        proxy::ADMIN_PORT
    ));
    let reads = AdminRead::ALL;
    let admin = proxy::read_admin(&pods, &job.pod, &reads, deadline, opts.proxy_timeout);
    let log = async {
        progress(&format!(
            "reading the istio-proxy log of {}/{}",
            job.namespace, job.pod
        ));
        match tokio::time::timeout_at(
            deadline,
            logs::sidecar_log_tail(&pods, &job.pod, opts.log_tail_lines),
        )
        .await
        {
            Ok(Ok(text)) => Ok(text),
            Ok(Err(e)) => Err(kube::describe_kube_error(&e)),
            Err(_) => Err(format!(
                "no answer within the {}s --proxy-timeout for this pod",
                opts.proxy_timeout.as_secs_f64()
            )),
        }
    };
    let (admin, log) = futures::join!(admin, log);
    proxy_evidence(job, &reads, admin, log)
}

/// RFC 3339 UTC time, second precision.
pub fn rfc3339(t: SystemTime) -> String {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0) as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

struct Run<'a> {
    api: ReadApi,
    opts: &'a CollectOptions,
    progress: &'a dyn Fn(&str),
    snap: Snapshot,
    seen: HashSet<String>,
    url: String,
    kinds: Vec<Kind>,
    /// Namespaced Istio kinds forbidden cluster-wide, with the 403 text.
    deferred: Vec<(Kind, String)>,
    client_namespaces: BTreeSet<String>,
    /// Pods listed per namespace ("" = all namespaces).
    pod_lists: HashMap<String, Vec<Value>>,
}

impl<'a> Run<'a> {
    async fn new(
        client: &::kube::Client,
        opts: &'a CollectOptions,
        progress: &'a dyn Fn(&str),
        target: String,
        ns: &str,
    ) -> Run<'a> {
        let started = SystemTime::now();
        // Only to name things (the context in the snapshot, the URL in a
        // connect error); the client given is what is used.
        let (url, context) = match load_config(opts).await {
            Ok((c, ctx, _)) => (c.cluster_url.to_string(), opts.context.clone().or(ctx)),
            Err(_) => (
                "(address unknown: no kubeconfig could be loaded)".to_string(),
                opts.context.clone(),
            ),
        };
        Run {
            api: ReadApi::new(client.clone(), opts.request_timeout),
            opts,
            progress,
            snap: Snapshot {
                schema: SCHEMA.to_string(),
                tool_version: env!("CARGO_PKG_VERSION").to_string(),
                taken_at: rfc3339(started),
                context,
                target,
                namespace: ns.to_string(),
                istio_namespace: opts.istio_namespace.clone(),
                server_version: None,
                served_resources: Vec::new(),
                objects: Vec::new(),
                proxies: Vec::new(),
                gaps: Vec::new(),
            },
            seen: HashSet::new(),
            url,
            kinds: Vec::new(),
            deferred: Vec::new(),
            client_namespaces: BTreeSet::new(),
            pod_lists: HashMap::new(),
        }
    }

    fn say(&self, line: &str) {
        (self.progress)(line);
    }

    fn gap(&mut self, source: impl Into<String>, reason: impl Into<String>) {
        push_gap(&mut self.snap.gaps, source, reason);
    }

    fn add_object(&mut self, o: Value) {
        if self.seen.insert(objects::identity(&o)) {
            self.snap.objects.push(o);
        }
    }

    /// `/version`, then Istio API discovery and the cluster-wide lists.
    async fn preflight(&mut self) -> Result<(), CollectError> {
        self.say("reading the API server version");
        match self.api.get_path("/version").await {
            Ok(v) => self.snap.server_version = Some(v),
            Err(e) if e.is_unreachable() => {
                return Err(CollectError::Connect {
                    url: self.url.clone(),
                    source: e,
                })
            }
            Err(e) => self.gap("GET /version", e.to_string()),
        }
        self.discover().await;
        self.list_istio_cluster_wide().await;
        Ok(())
    }

    async fn discover(&mut self) {
        self.say("discovering Istio APIs");
        let groups = match self.api.get_path("/apis").await {
            Ok(g) => g,
            Err(e) => {
                self.gap(
                    "GET /apis (API discovery)",
                    format!("{e}; Istio config cannot be listed"),
                );
                return;
            }
        };
        for group in kube::ISTIO_GROUPS {
            for version in kube::group_versions(&groups, group) {
                let path = format!("/apis/{group}/{version}");
                match self.api.get_path(&path).await {
                    Ok(list) => {
                        for k in kube::kinds_from_resource_list(group, &version, &list) {
                            self.snap.served_resources.push(k.served());
                            self.kinds.push(k);
                        }
                    }
                    Err(e) if e.is_not_found() => {}
                    Err(e) => self.gap(format!("GET {path} (API discovery)"), e.to_string()),
                }
            }
        }
    }

    async fn list_istio_cluster_wide(&mut self) {
        let kinds = self.kinds.clone();
        let api = self.api.clone();
        let progress = self.progress;
        let results: Vec<(Kind, Result<Vec<Value>, ApiCallError>)> = futures::stream::iter(kinds)
            .map(|k| {
                let api = api.clone();
                async move {
                    progress(&format!("listing {} (all namespaces)", k.describe()));
                    let path = collection_path(&k.group, &k.version, &k.plural, None);
                    let r = api.list(&path, None, &k.api_version(), &k.kind).await;
                    (k, r)
                }
            })
            .buffered(self.opts.concurrency.max(1))
            .collect()
            .await;
        for (k, r) in results {
            match r {
                Ok(items) => items.into_iter().for_each(|o| self.add_object(o)),
                Err(e) => match classify(&e) {
                    Failure::NotFound => {}
                    Failure::Forbidden(text) if k.namespaced => self.deferred.push((k, text)),
                    Failure::Forbidden(text)
                    | Failure::Unreachable(text)
                    | Failure::Other(text) => self.gap(format!("list {}", k.describe()), text),
                },
            }
        }
    }

    /// Istio kinds that were forbidden cluster-wide, listed in the namespaces
    /// that matter.
    async fn list_istio_fallback(&mut self, namespaces: &BTreeSet<String>) {
        let deferred = std::mem::take(&mut self.deferred);
        for (k, text) in deferred {
            let list: Vec<&str> = namespaces.iter().map(String::as_str).collect();
            self.gap(
                format!("list {} (all namespaces)", k.describe()),
                format!(
                    "{text}; read only in namespaces {} instead, so rules elsewhere are unseen",
                    list.join(", ")
                ),
            );
            for ns in namespaces {
                self.say(&format!("listing {} in {ns}", k.describe()));
                let path = collection_path(&k.group, &k.version, &k.plural, Some(ns));
                match self.api.list(&path, None, &k.api_version(), &k.kind).await {
                    Ok(items) => items.into_iter().for_each(|o| self.add_object(o)),
                    Err(e) => match classify(&e) {
                        Failure::NotFound => {}
                        Failure::Forbidden(t) | Failure::Unreachable(t) | Failure::Other(t) => {
                            self.gap(format!("list {} in namespace {ns}", k.describe()), t)
                        }
                    },
                }
            }
        }
    }

    /// GET of something the user named: not found and forbidden are errors.
    #[allow(clippy::too_many_arguments)]
    async fn get_named(
        &mut self,
        collection: &str,
        api_version: &str,
        kind: &str,
        word: &str,
        short: &str,
        ns: &str,
        name: &str,
        note: Option<&str>,
    ) -> Result<Value, CollectError> {
        self.say(&format!("reading {word} {ns}/{name}"));
        let note = note.map(|n| format!(" ({n})")).unwrap_or_default();
        match self.api.get(collection, name).await {
            Ok(v) => {
                let v = if v.get("kind").is_some() {
                    v
                } else {
                    with_type(v, api_version, kind)
                };
                Ok(v)
            }
            Err(e) if e.is_not_found() => Err(CollectError::TargetNotFound {
                what: format!("{word} {name:?}{note}"),
                namespace: ns.to_string(),
                hint: format!(
                    "list what exists with `kubectl get {short} -n {ns}`; pick the namespace with -n"
                ),
            }),
            Err(e) if e.is_forbidden() => Err(CollectError::Forbidden {
                what: format!("{word} {ns}/{name}{note}"),
                message: e.to_string(),
                hint: format!(
                    "check with `kubectl auth can-i get {short} -n {ns}`; this tool needs get/list on it"
                ),
            }),
            Err(e) if e.is_unreachable() => Err(CollectError::Connect {
                url: self.url.clone(),
                source: e,
            }),
            Err(e) => Err(CollectError::Api {
                what: format!("{word} {ns}/{name}{note}"),
                source: e,
            }),
        }
    }

    async fn get_pod_target(
        &mut self,
        ns: &str,
        name: &str,
        note: Option<&str>,
    ) -> Result<Value, CollectError> {
        let coll = collection_path("", "v1", "pods", Some(ns));
        self.get_named(&coll, "v1", "Pod", "pod", "pods", ns, name, note)
            .await
    }

    async fn get_service_target(&mut self, ns: &str, name: &str) -> Result<Value, CollectError> {
        let coll = collection_path("", "v1", "services", Some(ns));
        self.get_named(&coll, "v1", "Service", "service", "svc", ns, name, None)
            .await
    }

    async fn get_deployment_target(
        &mut self,
        ns: &str,
        name: &str,
        note: Option<&str>,
    ) -> Result<Value, CollectError> {
        let coll = collection_path("apps", "v1", "deployments", Some(ns));
        self.get_named(
            &coll,
            "apps/v1",
            "Deployment",
            "deployment",
            "deploy",
            ns,
            name,
            note,
        )
        .await
    }

    /// Lists objects for evidence; a failure is a gap and gives `None`.
    async fn list_or_gap(
        &mut self,
        what: &str,
        collection: &str,
        selector: Option<&str>,
        api_version: &str,
        kind: &str,
    ) -> Option<Vec<Value>> {
        self.say(&format!("listing {what}"));
        match self.api.list(collection, selector, api_version, kind).await {
            Ok(items) => Some(items),
            Err(e) => {
                self.gap(format!("list {what}"), e.to_string());
                None
            }
        }
    }

    async fn services_in(&mut self, ns: &str) -> Vec<Value> {
        let coll = collection_path("", "v1", "services", Some(ns));
        self.list_or_gap(&format!("services in {ns}"), &coll, None, "v1", "Service")
            .await
            .unwrap_or_default()
    }

    async fn pods_by_selector(&mut self, ns: &str, selector: &str) -> Vec<Value> {
        let coll = collection_path("", "v1", "pods", Some(ns));
        self.list_or_gap(
            &format!("pods in {ns} with {selector}"),
            &coll,
            Some(selector),
            "v1",
            "Pod",
        )
        .await
        .unwrap_or_default()
    }

    /// Pods of a namespace ("" = all namespaces), listed once.
    async fn pods_in(&mut self, ns: &str) -> Option<Vec<Value>> {
        if let Some(p) = self.pod_lists.get(ns) {
            return Some(p.clone());
        }
        let (coll, what) = if ns.is_empty() {
            (
                collection_path("", "v1", "pods", None),
                "pods (all namespaces)".to_string(),
            )
        } else {
            (
                collection_path("", "v1", "pods", Some(ns)),
                format!("pods in {ns}"),
            )
        };
        let pods = self.list_or_gap(&what, &coll, None, "v1", "Pod").await?;
        self.pod_lists.insert(ns.to_string(), pods.clone());
        Some(pods)
    }

    async fn resolve(&mut self, target: &Target, ns: &str) -> Result<Resolved, CollectError> {
        let mut r = Resolved {
            namespace: ns.to_string(),
            ..Resolved::default()
        };
        match target {
            Target::Service { name } => {
                let svc = self.get_service_target(ns, name).await?;
                r.services.push(svc);
                self.pods_of_services(&mut r).await;
            }
            Target::Host { host, .. } => {
                let Some(sh) = target.service_host(ns) else {
                    return Err(CollectError::TargetNotFound {
                        what: format!("a Kubernetes service for host {host:?}"),
                        namespace: ns.to_string(),
                        hint: "only in-cluster service hosts (NAME[.NAMESPACE[.svc[.DOMAIN]]]) can be \
                               resolved; name the service instead, e.g. svc/NAME -n NAMESPACE"
                            .to_string(),
                    });
                };
                r.namespace = sh.namespace.clone();
                r.port = sh.port;
                let svc = self.get_service_target(&sh.namespace, &sh.name).await?;
                r.services.push(svc);
                self.pods_of_services(&mut r).await;
            }
            Target::Deployment { name } => {
                let deploy = self.get_deployment_target(ns, name, None).await?;
                let template_labels =
                    objects::string_map(&deploy, "/spec/template/metadata/labels");
                let selector = deploy
                    .pointer("/spec/selector")
                    .and_then(objects::label_selector_string);
                self.add_object(deploy);
                let services: Vec<Value> = self
                    .services_in(ns)
                    .await
                    .into_iter()
                    .filter(|s| {
                        objects::service_selector(s)
                            .is_some_and(|sel| objects::selector_matches(&sel, &template_labels))
                    })
                    .collect();
                if services.is_empty() {
                    self.gap(
                        format!("services selecting deployment {ns}/{name}"),
                        "no Service in the namespace selects this deployment's pods; no client can reach it by a service name",
                    );
                }
                r.services = services;
                match selector {
                    Some(sel) => {
                        let pods = self.pods_by_selector(ns, &sel).await;
                        for p in pods {
                            r.server_pods
                                .push((p, format!("a pod of the target deployment {ns}/{name} ({sel})")));
                        }
                    }
                    None => self.gap(
                        format!("deployment {ns}/{name}"),
                        "its spec.selector is empty or uses an unknown operator; its pods were not listed",
                    ),
                }
                self.pods_of_services(&mut r).await;
            }
            Target::Pod { name } => {
                let pod = self.get_pod_target(ns, name, None).await?;
                let pod_labels = objects::labels(&pod);
                r.services = self
                    .services_in(ns)
                    .await
                    .into_iter()
                    .filter(|s| {
                        objects::service_selector(s)
                            .is_some_and(|sel| objects::selector_matches(&sel, &pod_labels))
                    })
                    .collect();
                r.server_pods.push((pod, "the target pod".to_string()));
                self.pods_of_services(&mut r).await;
            }
        }
        Ok(r)
    }

    /// The pods behind the resolved Services: server pods when none were
    /// chosen yet, other pods (objects only) otherwise.
    async fn pods_of_services(&mut self, r: &mut Resolved) {
        let have_servers = !r.server_pods.is_empty();
        for svc in r.services.clone() {
            let (sns, sname) = (
                objects::namespace(&svc).to_string(),
                objects::name(&svc).to_string(),
            );
            let Some(sel) = objects::service_selector(&svc) else {
                self.gap(
                    format!("service {sns}/{sname}"),
                    "the service has no selector (endpoints managed by hand); its pods were not identified",
                );
                continue;
            };
            let sel_text = objects::selector_string(&sel);
            for p in self.pods_by_selector(&sns, &sel_text).await {
                let known = r
                    .server_pods
                    .iter()
                    .any(|(s, _)| objects::key(s) == objects::key(&p))
                    || r.other_pods
                        .iter()
                        .any(|s| objects::key(s) == objects::key(&p));
                if known {
                    continue;
                }
                if have_servers {
                    r.other_pods.push(p);
                } else {
                    r.server_pods.push((
                        p,
                        format!("backs service {sns}/{sname} (selector {sel_text})"),
                    ));
                }
            }
        }
    }

    /// Services, their EndpointSlices (or Endpoints), and the pods as objects.
    async fn server_side(&mut self, r: &Resolved) {
        for svc in &r.services {
            self.add_object(svc.clone());
        }
        for svc in r.services.clone() {
            let (sns, sname) = (
                objects::namespace(&svc).to_string(),
                objects::name(&svc).to_string(),
            );
            let slices = collection_path("discovery.k8s.io", "v1", "endpointslices", Some(&sns));
            let selector = format!("kubernetes.io/service-name={sname}");
            self.say(&format!("listing endpointslices of {sns}/{sname}"));
            let fallback_reason = match self
                .api
                .list(
                    &slices,
                    Some(&selector),
                    "discovery.k8s.io/v1",
                    "EndpointSlice",
                )
                .await
            {
                Ok(items) => {
                    items.into_iter().for_each(|o| self.add_object(o));
                    continue;
                }
                Err(e) => e.to_string(),
            };
            let endpoints = collection_path("", "v1", "endpoints", Some(&sns));
            self.say(&format!("reading endpoints {sns}/{sname}"));
            match self.api.get(&endpoints, &sname).await {
                Ok(v) => {
                    let v = if v.get("kind").is_some() {
                        v
                    } else {
                        with_type(v, "v1", "Endpoints")
                    };
                    self.add_object(v);
                }
                Err(e) => {
                    let reason = format!("{e} (EndpointSlices: {fallback_reason})");
                    self.gap(format!("endpoints of service {sns}/{sname}"), reason);
                }
            }
        }
        for (p, _) in &r.server_pods {
            self.add_object(p.clone());
        }
        for p in &r.other_pods {
            self.add_object(p.clone());
        }
    }

    fn server_jobs(&mut self, r: &Resolved) -> Vec<ProxyJob> {
        let mut candidates: Vec<&(Value, String)> = r
            .server_pods
            .iter()
            .filter(|(p, _)| objects::has_sidecar(p) && objects::is_running(p))
            .collect();
        // Ready pods first.
        candidates.sort_by_key(|(p, _)| !objects::is_ready(p));
        if candidates.len() > MAX_SERVER_PROXIES {
            let skipped: Vec<String> = candidates[MAX_SERVER_PROXIES..]
                .iter()
                .map(|(p, _)| objects::key(p))
                .collect();
            self.gap(
                "server sidecars",
                format!(
                    "only {MAX_SERVER_PROXIES} server sidecars are read; not read: {}",
                    skipped.join(", ")
                ),
            );
            candidates.truncate(MAX_SERVER_PROXIES);
        }
        candidates
            .into_iter()
            .map(|(p, because)| ProxyJob {
                namespace: objects::namespace(p).to_string(),
                pod: objects::name(p).to_string(),
                role: ProxyRole::Server,
                because: because.clone(),
            })
            .collect()
    }

    async fn read_proxies(&self, jobs: Vec<ProxyJob>) -> Vec<ProxyEvidence> {
        let client = self.api.client().clone();
        let opts = self.opts;
        let progress = self.progress;
        futures::stream::iter(jobs)
            .map(|job| {
                let client = client.clone();
                async move { read_proxy(&client, &job, opts, progress).await }
            })
            .buffered(self.opts.concurrency.max(1))
            .collect()
            .await
    }

    /// Chooses the client pods and returns the sidecars to read.
    async fn choose_clients(
        &mut self,
        r: &Resolved,
        servers: &[ProxyEvidence],
        ns: &str,
    ) -> Result<Vec<ProxyJob>, CollectError> {
        let exclude: HashSet<String> = r.server_pods.iter().map(|(p, _)| objects::key(p)).collect();
        let mut chosen: Vec<(Value, String)> = Vec::new();
        if !self.opts.from.is_empty() {
            for c in self.opts.from.clone() {
                let cns = c.namespace_or(ns).to_string();
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
                            self.gap(
                                format!("deployment {cns}/{} ({note})", c.name()),
                                "its spec.selector is empty or uses an unknown operator; its pods were not listed",
                            );
                            continue;
                        };
                        self.add_object(deploy);
                        let pods = self.pods_by_selector(&cns, &sel).await;
                        let picked = pick_deployment_pods(&pods, 2);
                        if picked.is_empty() {
                            self.gap(
                                format!("deployment {cns}/{} ({note})", c.name()),
                                "it has no running pods to read",
                            );
                        }
                        for p in picked {
                            chosen.push((
                                p.clone(),
                                format!(
                                    "a pod of deployment {cns}/{} named with --from {c}",
                                    c.name()
                                ),
                            ));
                        }
                    }
                }
            }
        } else {
            // Discovery looks in the target's namespace first (for a host
            // like `httpbin.foo` that is `foo`, not `-n`).
            chosen = self
                .clients_from_logs(r, servers, &exclude, &r.namespace)
                .await;
            if chosen.is_empty() {
                chosen = self.clients_from_sample(r, &exclude, &r.namespace).await;
            }
        }
        let mut jobs = Vec::new();
        for (pod, because) in chosen {
            let (pns, pname) = (
                objects::namespace(&pod).to_string(),
                objects::name(&pod).to_string(),
            );
            self.client_namespaces.insert(pns.clone());
            if objects::has_sidecar(&pod) && objects::is_running(&pod) {
                jobs.push(ProxyJob {
                    namespace: pns,
                    pod: pname,
                    role: ProxyRole::Client,
                    because,
                });
            }
            self.add_object(pod);
        }
        Ok(jobs)
    }

    async fn clients_from_logs(
        &mut self,
        r: &Resolved,
        servers: &[ProxyEvidence],
        exclude: &HashSet<String>,
        ns: &str,
    ) -> Vec<(Value, String)> {
        let mut per_ip: BTreeMap<String, (Caller, Vec<String>)> = BTreeMap::new();
        for ev in servers {
            let Some(log) = &ev.log_tail else { continue };
            let own: Vec<String> = r
                .server_pods
                .iter()
                .find(|(p, _)| objects::namespace(p) == ev.namespace && objects::name(p) == ev.pod)
                .map(|(p, _)| objects::pod_ips(p))
                .unwrap_or_default();
            for c in logs::callers_in_log(log, &own) {
                let who = format!("{}/{}", ev.namespace, ev.pod);
                per_ip
                    .entry(c.ip.clone())
                    .and_modify(|(m, seen)| {
                        m.requests += c.requests;
                        m.server_errors += c.server_errors;
                        m.unavailable += c.unavailable;
                        seen.push(who.clone());
                    })
                    .or_insert((c, vec![who]));
            }
        }
        if per_ip.is_empty() {
            return Vec::new();
        }
        let mut callers: Vec<(Caller, Vec<String>)> = per_ip.into_values().collect();
        callers.sort_by(|a, b| {
            b.0.requests
                .cmp(&a.0.requests)
                .then_with(|| a.0.ip.cmp(&b.0.ip))
        });
        self.say(&format!(
            "mapping {} caller IP(s) from access logs to pods",
            callers.len()
        ));
        let max = self.opts.max_clients.max(1);
        // The target namespace first, then every namespace.
        let mut pods = self.pods_in(ns).await.unwrap_or_default();
        let (found, unmatched) = clients_from_callers(&callers, &pods, exclude, max);
        let mut out: Vec<(Value, String)> =
            found.into_iter().map(|(p, b)| (p.clone(), b)).collect();
        let mut unmatched = unmatched;
        if !unmatched.is_empty() && out.len() < max {
            if let Some(all) = self.pods_in("").await {
                pods = all;
                let rest: Vec<(Caller, Vec<String>)> = callers
                    .iter()
                    .filter(|(c, _)| unmatched.iter().any(|u| u.ip == c.ip))
                    .cloned()
                    .collect();
                let (found, still) = clients_from_callers(&rest, &pods, exclude, max - out.len());
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
        out
    }

    async fn clients_from_sample(
        &mut self,
        r: &Resolved,
        exclude: &HashSet<String>,
        ns: &str,
    ) -> Vec<(Value, String)> {
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
            return Vec::new();
        }
        let max = self.opts.max_clients.max(1);
        let cap = max * 4;
        let mut candidates: Vec<Value> = Vec::new();
        let is_candidate = |p: &Value| {
            objects::has_sidecar(p) && objects::is_running(p) && !exclude.contains(&objects::key(p))
        };
        for p in self.pods_in(ns).await.unwrap_or_default() {
            if candidates.len() < cap && is_candidate(&p) {
                candidates.push(p);
            }
        }
        if candidates.len() < cap && self.opts.all_namespaces {
            if let Some(all) = self.pods_in("").await {
                for p in all {
                    if candidates.len() >= cap {
                        break;
                    }
                    if objects::namespace(&p) != ns && is_candidate(&p) {
                        candidates.push(p);
                    }
                }
            }
        }
        let service_text = services
            .iter()
            .map(|(n, s)| format!("{n}.{s}"))
            .collect::<Vec<_>>()
            .join(", ");
        self.say(&format!(
            "sampling {} injected pods' /clusters for traffic to {service_text}",
            candidates.len()
        ));
        let client = self.api.client().clone();
        let opts = self.opts;
        let progress = self.progress;
        let port = r.port;
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
                        "port-forwarding to {pns}/{pname}:{} (/clusters)",
                        proxy::ADMIN_PORT
                    ));
                    let pods: ::kube::Api<Pod> = ::kube::Api::namespaced(client, &pns);
                    let deadline = Instant::now() + opts.proxy_timeout;
                    let text = match proxy::read_admin(
                        &pods,
                        &pname,
                        &[AdminRead::Clusters],
                        deadline,
                        opts.proxy_timeout,
                    )
                    .await
                    {
                        Ok(mut r) => r.pop().and_then(Result::ok)?,
                        Err(_) => return None,
                    };
                    let mut traffic = proxy::Traffic::default();
                    for (sname, sns) in services {
                        let t = proxy::traffic_to(&text, sname, sns, port);
                        traffic.rq_total += t.rq_total;
                        traffic.cx_total += t.cx_total;
                        traffic.cx_connect_fail += t.cx_connect_fail;
                        traffic.rq_error += t.rq_error;
                        traffic.clusters.extend(t.clusters);
                    }
                    Some(Probe {
                        namespace: pns,
                        pod: pname,
                        traffic,
                    })
                }
            })
            .buffered(opts.concurrency.max(1))
            .collect()
            .await;
        let unreadable = probes.iter().filter(|p| p.is_none()).count();
        let probes: Vec<Probe> = probes.into_iter().flatten().collect();
        let picked = clients_from_probes(&probes, &service_text, max);
        if picked.is_empty() {
            let knows = probes
                .iter()
                .filter(|p| !p.traffic.clusters.is_empty())
                .count();
            self.gap(
                "client discovery",
                format!(
                    "no client was found: the server sidecars' access logs name no caller (access logging may be off), \
                     and of {} sampled injected pods ({} unreadable) in {} none shows requests to {service_text} in /clusters \
                     ({} know the service); name a client with --from deploy/NAME{}",
                    candidates.len(),
                    unreadable,
                    if self.opts.all_namespaces { "all namespaces".to_string() } else { format!("namespace {ns}") },
                    knows,
                    if self.opts.all_namespaces { "" } else { ", or sample every namespace with -A" }
                ),
            );
            return Vec::new();
        }
        picked
            .into_iter()
            .filter_map(|(probe, because)| {
                candidates
                    .iter()
                    .find(|p| {
                        objects::namespace(p) == probe.namespace && objects::name(p) == probe.pod
                    })
                    .map(|p| (p.clone(), because))
            })
            .collect()
    }

    /// Namespaces, mesh config, and the Istio config forbidden cluster-wide.
    async fn finish(&mut self, r: &Resolved) {
        let mut wanted: BTreeSet<String> = BTreeSet::new();
        wanted.insert(r.namespace.clone());
        wanted.insert(self.snap.namespace.clone());
        wanted.insert(self.opts.istio_namespace.clone());
        wanted.extend(self.client_namespaces.iter().cloned());
        for s in &r.services {
            wanted.insert(objects::namespace(s).to_string());
        }
        for p in &self.snap.proxies {
            wanted.insert(p.namespace.clone());
        }
        wanted.remove("");

        // Namespaces: all of them for their labels; else the ones that matter.
        let coll = collection_path("", "v1", "namespaces", None);
        self.say("listing namespaces");
        match self.api.list(&coll, None, "v1", "Namespace").await {
            Ok(items) => items.into_iter().for_each(|o| self.add_object(o)),
            Err(e) => {
                self.gap("list namespaces", e.to_string());
                for ns in &wanted {
                    if let Ok(v) = self.api.get(&coll, ns).await {
                        let v = if v.get("kind").is_some() {
                            v
                        } else {
                            with_type(v, "v1", "Namespace")
                        };
                        self.add_object(v);
                    }
                }
            }
        }

        // Mesh config.
        let ins = self.opts.istio_namespace.clone();
        let cms = collection_path("", "v1", "configmaps", Some(&ins));
        self.say(&format!("reading configmap {ins}/istio"));
        match self.api.get(&cms, "istio").await {
            Ok(v) => {
                let v = if v.get("kind").is_some() {
                    v
                } else {
                    with_type(v, "v1", "ConfigMap")
                };
                self.add_object(v);
            }
            Err(e) if e.is_not_found() => self.gap(
                format!("configmap {ins}/istio"),
                "mesh config not found; assuming Istio defaults (if Istio lives elsewhere, pass --istio-namespace)",
            ),
            Err(e) => self.gap(
                format!("configmap {ins}/istio"),
                format!("{e}; assuming Istio defaults"),
            ),
        }

        self.list_istio_fallback(&wanted).await;
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
    fn defaults() {
        let o = CollectOptions::default();
        assert_eq!(o.istio_namespace, "istio-system");
        assert_eq!(o.proxy_timeout, Duration::from_secs(5));
        assert_eq!(o.concurrency, 8);
        assert_eq!(o.log_tail_lines, 500);
        assert_eq!(o.max_clients, 5);
    }

    #[test]
    fn gaps_are_recorded_once() {
        let mut gaps = Vec::new();
        push_gap(
            &mut gaps,
            "list peerauthentications.security.istio.io/v1",
            "HTTP 403 Forbidden: no",
        );
        push_gap(
            &mut gaps,
            "list peerauthentications.security.istio.io/v1",
            "HTTP 403 Forbidden: no",
        );
        push_gap(
            &mut gaps,
            "list peerauthentications.security.istio.io/v1",
            "other",
        );
        assert_eq!(gaps.len(), 2);
        assert_eq!(
            admin_source("foo", "sleep-1", "/stats"),
            "pod foo/sleep-1 :15000/stats"
        );
    }

    #[test]
    fn evidence_with_gaps() {
        let reads = AdminRead::ALL;
        let cd = |t: &str| {
            format!(r#"{{"configs":[{{"@type":"type.googleapis.com/envoy.admin.v3.{t}"}}]}}"#)
        };
        let results: Vec<AdminResult> = vec![
            Ok(r#"{"version":"abc/1.40.0"}"#.into()),
            Ok(cd("ClustersConfigDump.DynamicCluster")),
            Err("HTTP 404 Not Found: no such resource".into()),
            Ok(cd("SecretsConfigDump")),
            Ok("outbound|80||a.b.svc.cluster.local::1.2.3.4:80::rq_total::1\n".into()),
            Err("no answer within the 5s --proxy-timeout for this pod".into()),
        ];
        let ev = proxy_evidence(
            &job(),
            &reads,
            Ok(results),
            Err("HTTP 403 Forbidden: pods \"sleep-1\" is forbidden".into()),
        );
        assert_eq!(ev.server_info.as_ref().unwrap()["version"], "abc/1.40.0");
        assert!(ev.clusters_config.is_some());
        assert!(ev.listeners_config.is_none());
        assert!(
            ev.endpoints_config.is_none(),
            "a dump holding secrets is never kept"
        );
        assert!(ev.clusters.as_deref().unwrap().contains("rq_total"));
        assert!(ev.stats.is_none());
        assert!(ev.log_tail.is_none());
        let sources: Vec<&str> = ev.gaps.iter().map(|g| g.source.as_str()).collect();
        assert_eq!(
            sources,
            vec![
                "pod foo/sleep-1 :15000/config_dump?resource=dynamic_listeners",
                "pod foo/sleep-1 :15000/config_dump?resource=dynamic_endpoint_configs&include_eds",
                "pod foo/sleep-1 :15000/stats",
                "pod foo/sleep-1 log of container istio-proxy",
            ]
        );
        assert!(ev.gaps[1].reason.contains("discarded"));

        let ev = proxy_evidence(
            &job(),
            &reads,
            Err("port-forward failed: HTTP 403 Forbidden".into()),
            Ok("".into()),
        );
        assert_eq!(ev.gaps.len(), 1);
        assert_eq!(ev.gaps[0].source, "pod foo/sleep-1 :15000");
        assert_eq!(ev.log_tail.as_deref(), Some(""));
        assert_eq!(ev.chosen_because, "named with --from pod/sleep-1");
        assert_eq!(ev.role, ProxyRole::Client);
    }

    #[test]
    fn times() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        assert_eq!(
            rfc3339(UNIX_EPOCH + Duration::from_secs(951_782_400)),
            "2000-02-29T00:00:00Z"
        );
        assert_eq!(
            rfc3339(UNIX_EPOCH + Duration::from_secs(1_709_164_800 + 3661)),
            "2024-02-29T01:01:01Z"
        );
    }

    #[test]
    fn proxies_not_for_loopback() {
        let u: http::Uri = "https://127.0.0.1:6443".parse().unwrap();
        assert!(!proxy_applies(&u, None));
        let u: http::Uri = "https://[::1]:6443".parse().unwrap();
        assert!(!proxy_applies(&u, None));
        let u: http::Uri = "https://api.example.com:6443".parse().unwrap();
        assert!(proxy_applies(&u, None));
        assert!(!proxy_applies(&u, Some("foo, .example.com")));
        assert!(!proxy_applies(&u, Some("api.example.com:6443")));
        assert!(!proxy_applies(&u, Some("*")));
        assert!(proxy_applies(&u, Some("example.org")));
    }

    #[test]
    fn errors_say_what_to_do() {
        let e = CollectError::TargetNotFound {
            what: "service \"httpbin\"".into(),
            namespace: "foo".into(),
            hint: "list what exists with `kubectl get svc -n foo`; pick the namespace with -n"
                .into(),
        };
        let s = e.to_string();
        assert!(
            s.starts_with("service \"httpbin\" not found in namespace \"foo\""),
            "{s}"
        );
        assert!(s.contains("kubectl get svc -n foo"), "{s}");
    }
}
