//! Read-only collection of the evidence for one diagnosis into a
//! [`Snapshot`]: the orchestration only. Each step lives with what it reads:
//!
//! | step | module | reads |
//! |---|---|---|
//! | connect | [`kubeconfig`] | kubeconfig, context, proxy env |
//! | preflight | [`config`] | `/version`, Istio API discovery (one version per kind), Istio config cluster-wide |
//! | resolve | [`resolve`] | the target → Services, EndpointSlices, server pods, cluster domain |
//! | servers | [`sidecar`] | each server sidecar: admin API over a port-forward, log tail |
//! | clients | [`clients`] | `--from`, else callers in the servers' access logs, else a sample's `/clusters` |
//! | finish | [`config`] | namespaces, mesh config, Istio config forbidden cluster-wide per namespace |
//!
//! All of it goes through [`api`] (bounded, validated, kind-checked GETs)
//! within one [`budget::Budget`]. Towards the cluster this module only
//! lists, gets, reads `pods/log` and opens `pods/portforward` (to the
//! sidecar's admin port 15000). It never execs, creates, patches or
//! deletes, and never reads Secrets.
//!
//! Failure policy: the run fails (exit 3) when the API cannot be used at
//! all (unreachable, credentials refused), when the target or a `--from`
//! client does not exist or is forbidden, when the API stops answering
//! after it did (what was read would not be the whole picture), and when
//! `--timeout` passes. Everything else that cannot be read (403, a kind that
//! is not installed, a sidecar that does not answer, a log that is not
//! there) is recorded as a [`Gap`] and collection goes on; gaps the
//! diagnosis cannot do without also go to [`ResolvedTarget::missing`]
//! (exit 4 when nothing was found).

pub mod api;
pub mod budget;
pub mod clients;
pub mod config;
pub mod error;
pub mod kubeconfig;
pub mod objects;
pub mod resolve;
pub mod sidecar;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::StreamExt;
use serde_json::Value;

use self::api::{classify, ApiCallError, Failure, Kind, ReadApi};
use self::budget::{Budget, Limit};
pub use self::error::CollectError;
use self::sidecar::{read_sidecar, ProxyJob};
use crate::snapshot::{Gap, ProxyEvidence, ResolvedTarget, Snapshot, SCHEMA};
use crate::target::{ClientRef, Target};

/// How to connect and how much to read (made by `cli::Settings`).
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
    /// `--request-timeout` (`None`: no per-request limit).
    pub request_timeout: Option<Duration>,
    /// `--timeout`: the whole run.
    pub timeout: Duration,
    /// Per pod, all admin reads and the log included (default 5s).
    pub proxy_timeout: Duration,
    /// Pods read in parallel (default 8).
    pub concurrency: usize,
    /// Lines of the `istio-proxy` log tail (default 500).
    pub log_tail_lines: u32,
    /// Cap on discovered clients (default 5).
    pub max_clients: usize,
    /// `-A`: when sampling for clients, look beyond the target's namespace.
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
            request_timeout: Some(Duration::from_secs(10)),
            timeout: Duration::from_secs(60),
            proxy_timeout: Duration::from_secs(5),
            concurrency: 8,
            log_tail_lines: 500,
            max_clients: 5,
            all_namespaces: false,
        }
    }
}

/// A configured client (no request made yet) and the run's clock.
pub struct Session {
    pub client: kube::Client,
    pub context: Option<String>,
    /// `-n`, else the context's namespace, else `default`.
    pub namespace: String,
    pub url: String,
    pub budget: Budget,
}

/// Loads the configuration and builds the client; the run's clock starts.
pub async fn connect(opts: &CollectOptions) -> Result<Session, CollectError> {
    let budget = Budget::start(opts.request_timeout, opts.timeout);
    let loaded = kubeconfig::load(opts).await?;
    let client = kubeconfig::client(&loaded, opts)?;
    Ok(Session {
        client,
        context: loaded.context,
        namespace: loaded.namespace,
        url: loaded.url,
        budget,
    })
}

/// Collects the evidence for `target`, resolved in the session's namespace
/// (a host that names its namespace, `httpbin.foo`, is resolved there).
pub async fn collect_for_target(
    session: &Session,
    target: &Target,
    opts: &CollectOptions,
    progress: &dyn Fn(&str),
) -> Result<Snapshot, CollectError> {
    let mut run = Run::new(session, opts, progress, target.to_string());
    run.preflight().await?;
    let resolved = run.resolve(target, &session.namespace).await?;
    run.snap.namespace = resolved.namespace.clone();
    run.server_side(&resolved).await?;
    let server_jobs = run.server_jobs(&resolved);
    let servers = run.read_sidecars(server_jobs).await?;
    let client_jobs = run.choose_clients(&resolved, &servers).await?;
    run.snap.proxies.extend(servers);
    let clients = run.read_sidecars(client_jobs).await?;
    run.snap.proxies.extend(clients);
    run.finish(&resolved).await?;
    run.snap.redact();
    Ok(run.snap)
}

/// For `tls-check pod/NAME [svc/NAME]`: the pod's sidecar (role Client) plus
/// the servers of the optional service. Both must exist.
pub async fn collect_for_pod(
    session: &Session,
    pod: &str,
    service: Option<&str>,
    opts: &CollectOptions,
    progress: &dyn Fn(&str),
) -> Result<Snapshot, CollectError> {
    let ns = session.namespace.clone();
    let target = match service {
        Some(s) => format!("pod/{pod} svc/{s}"),
        None => format!("pod/{pod}"),
    };
    let mut run = Run::new(session, opts, progress, target);
    run.preflight().await?;
    let client_pod = run.get_pod_target(&ns, pod, None).await?;
    let resolved = match service {
        Some(name) => {
            run.resolve(
                &Target::Service {
                    name: name.to_string(),
                },
                &ns,
            )
            .await?
        }
        None => resolve::Resolved::empty(&ns),
    };
    run.server_side(&resolved).await?;
    let server_jobs = run.server_jobs(&resolved);
    let servers = run.read_sidecars(server_jobs).await?;
    run.snap.proxies.extend(servers);
    let jobs = run.named_client_jobs(vec![(
        client_pod,
        format!("named on the command line (tls-check pod/{pod})"),
    )]);
    let clients = run.read_sidecars(jobs).await?;
    run.snap.proxies.extend(clients);
    run.finish(&resolved).await?;
    run.snap.redact();
    Ok(run.snap)
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

/// RFC 3339 UTC time, second precision.
pub fn rfc3339(t: SystemTime) -> String {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let secs = i64::try_from(secs).unwrap_or(0);
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

/// One collection in progress: the snapshot being filled and what is known.
struct Run<'a> {
    api: ReadApi,
    opts: &'a CollectOptions,
    progress: &'a dyn Fn(&str),
    snap: Snapshot,
    seen: HashSet<(String, String, String, String)>,
    url: String,
    kinds: Vec<Kind>,
    /// Namespaced Istio kinds forbidden cluster-wide, with the 403 text.
    deferred: Vec<(Kind, String)>,
    client_namespaces: BTreeSet<String>,
    /// Pods listed per namespace ("" = all namespaces).
    pod_lists: HashMap<String, Vec<Value>>,
    /// Reads the diagnosis cannot do without that failed.
    missing: Vec<Gap>,
}

impl<'a> Run<'a> {
    fn new(
        session: &Session,
        opts: &'a CollectOptions,
        progress: &'a dyn Fn(&str),
        target: String,
    ) -> Run<'a> {
        Run {
            api: ReadApi::new(session.client.clone(), session.budget),
            opts,
            progress,
            snap: Snapshot {
                schema: SCHEMA.to_string(),
                tool_version: env!("CARGO_PKG_VERSION").to_string(),
                taken_at: rfc3339(SystemTime::now()),
                context: opts.context.clone().or_else(|| session.context.clone()),
                target,
                namespace: session.namespace.clone(),
                istio_namespace: opts.istio_namespace.clone(),
                stats_filter: Some(sidecar::STATS_FILTER.clone()),
                ..Snapshot::default()
            },
            seen: HashSet::new(),
            url: session.url.clone(),
            kinds: Vec::new(),
            deferred: Vec::new(),
            client_namespaces: BTreeSet::new(),
            pod_lists: HashMap::new(),
            missing: Vec::new(),
        }
    }

    fn say(&self, line: &str) {
        (self.progress)(line);
    }

    fn gap(&mut self, source: impl Into<String>, reason: impl Into<String>) {
        push_gap(&mut self.snap.gaps, source, reason);
    }

    /// A gap the diagnosis cannot do without.
    fn essential_gap(&mut self, source: impl Into<String>, reason: impl Into<String>) {
        let (source, reason) = (source.into(), reason.into());
        push_gap(&mut self.snap.gaps, source.clone(), reason.clone());
        push_gap(&mut self.missing, source, reason);
    }

    fn add_object(&mut self, o: Value) {
        if self.seen.insert(crate::snapshot::object_key(&o)) {
            self.snap.objects.push(o);
        }
    }

    /// A failed call that ends the run — the credentials were refused, the
    /// API stopped answering, the run is out of time — as an error; any
    /// other failure is given back.
    fn fatal(&self, during: &str, e: ApiCallError) -> Result<ApiCallError, CollectError> {
        if e.is_unauthorized() {
            return Err(CollectError::Unauthorized {
                url: self.url.clone(),
                source: e,
            });
        }
        if let ApiCallError::Timeout(Limit::Run(d)) = e {
            return Err(CollectError::OutOfTime {
                during: during.to_string(),
                limit: crate::cli::duration::display(d),
            });
        }
        if e.is_unreachable() {
            let flag = match &e {
                ApiCallError::Timeout(l) => Some(l.flag()),
                _ => None,
            };
            return Err(CollectError::ApiLost {
                url: self.url.clone(),
                during: during.to_string(),
                reason: e.to_string(),
                flag,
            });
        }
        Ok(e)
    }

    /// A failed call the run can survive as a gap, classified; see [`Run::fatal`].
    fn survivable(&self, during: &str, e: ApiCallError) -> Result<Failure, CollectError> {
        Ok(classify(&self.fatal(during, e)?))
    }

    /// Reads sidecars, `--concurrency` at a time, all within the run's
    /// deadline. If the API went away meanwhile the run ends (exit 3).
    async fn read_sidecars(&self, jobs: Vec<ProxyJob>) -> Result<Vec<ProxyEvidence>, CollectError> {
        let client = self.api.client().clone();
        let budget = *self.api.budget();
        let (timeout, lines, progress) = (
            self.opts.proxy_timeout,
            self.opts.log_tail_lines,
            self.progress,
        );
        let reads: Vec<sidecar::SidecarRead> = futures::stream::iter(jobs)
            .map(|job| {
                let client = client.clone();
                async move { read_sidecar(&client, &job, &budget, timeout, lines, progress).await }
            })
            .buffered(self.opts.concurrency.max(1))
            .collect()
            .await;
        if let Some((during, reason)) = reads.iter().find_map(|r| r.api_lost.clone()) {
            return Err(CollectError::ApiLost {
                url: self.url.clone(),
                during,
                reason,
                flag: None,
            });
        }
        Ok(reads.into_iter().map(|r| r.evidence).collect())
    }

    /// Namespaces, mesh config, Istio config forbidden cluster-wide, and the
    /// resolved target with what could not be checked.
    async fn finish(&mut self, r: &resolve::Resolved) -> Result<(), CollectError> {
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
        self.namespaces(&wanted).await?;
        self.mesh_config().await?;
        self.list_istio_fallback(&wanted).await?;
        self.check_sidecars_read();
        let mut target: ResolvedTarget = self.resolved_target(r);
        target.missing = std::mem::take(&mut self.missing);
        self.snap.resolved = Some(target);
        Ok(())
    }
}
