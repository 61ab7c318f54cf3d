//! Read-only collection of the evidence for one diagnosis into a
//! [`Snapshot`]: the orchestration only. Each step lives with what it reads:
//!
//! | step | module | reads |
//! |---|---|---|
//! | connect | [`kubeconfig`] | kubeconfig, context, proxy env |
//! | preflight | [`config`] | `/version`, Istio API discovery (one version per kind), Istio config cluster-wide |
//! | resolve | [`resolve`] | the target → Services, EndpointSlices, server pods, cluster domain |
//! | servers | [`sidecar`] | each server sidecar: admin API over a port-forward, log tail |
//! | clients | [`clients`], [`discover`] | `--from`, else callers in the servers' access logs and metrics (`source_workload`), a sample's `/clusters` in the namespaces whose config names the host (and the target's when nothing shows a failing caller), pods without sidecar whose env/args name the host |
//! | finish | [`config`] | namespaces, mesh config, Istio config forbidden cluster-wide per namespace |
//! | routes | [`routes`] | Services routes to the target name (by name), Gateway pods |
//!
//! `tls-check` ([`tls_check`]) reads a client sidecar and the server sidecars
//! behind what it calls; `scan` ([`scan`]) lists config only, once per kind.
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
pub mod discover;
pub mod error;
pub mod kubeconfig;
pub mod neighbours;
pub mod objects;
pub mod prune;
pub mod resolve;
pub mod routes;
mod run;
pub mod scan;
pub mod scope;
pub mod sidecar;
pub mod tls_check;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use self::budget::Budget;
pub use self::error::CollectError;
pub use self::run::rfc3339;
use self::run::Run;
pub use self::scan::collect_for_scan;
pub use self::tls_check::collect_for_client;
use crate::snapshot::{Gap, ProxyEvidence, ResolvedTarget, Snapshot};
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
    // DestinationRules are the one Istio list that grows with the mesh and
    // that nothing needs before the callers are chosen (the target is
    // resolved and the servers' sidecars are scoped by Services, pods and
    // VirtualServices): they are listed while the servers are read.
    let later = run.preflight_except(&["DestinationRule"]).await?;
    let rules = config::fetch_istio_lists(run.api.clone(), later, progress, opts.concurrency);
    let (rules, first) = futures::join!(rules, resolve_and_read_servers(&mut run, target, session));
    // A lost API while listing ends the run before anything else is said.
    run.absorb_istio_lists(rules)?;
    let (resolved, servers, from_clients) = first?;
    let clients = match from_clients {
        Some(clients) => clients,
        None => {
            // Callers are found in the servers' evidence: servers first.
            let client_jobs = run.choose_clients(&resolved, &servers).await?;
            run.read_sidecars(client_jobs).await?
        }
    };
    run.snap.proxies.extend(servers);
    run.snap.proxies.extend(clients);
    run.finish(&resolved).await?;
    let dropped = prune::drop_unrelated_rules(&mut run.snap.objects);
    if dropped > 0 {
        run.say(&format!(
            "not keeping {dropped} DestinationRules whose host names nothing in the diagnosis"
        ));
    }
    run.snap.redact();
    Ok(run.snap)
}

/// Resolves the target, records its server side and reads its server
/// sidecars (scoped to what the target needs); with `--from`, the named
/// clients' sidecars are read at the same time (`Some(clients)`).
async fn resolve_and_read_servers(
    run: &mut Run<'_>,
    target: &Target,
    session: &Session,
) -> Result<ServersRead, CollectError> {
    let resolved = run.resolve(target, &session.namespace).await?;
    run.snap.namespace = resolved.namespace.clone();
    run.server_side(&resolved).await?;
    let server_pods: Vec<&serde_json::Value> =
        resolved.server_pods.iter().map(|(p, _)| p).collect();
    run.scope = scope::scope_for(&resolved.services, &server_pods, &run.snap.objects);
    let mut jobs = run.server_jobs(&resolved);
    if run.opts.from.is_empty() {
        let servers = run.read_sidecars(jobs).await?;
        return Ok((resolved, servers, None));
    }
    // `--from` names the clients: every sidecar read at once.
    let n_servers = jobs.len();
    jobs.extend(run.choose_clients(&resolved, &[]).await?);
    let mut servers = run.read_sidecars(jobs).await?;
    let clients = servers.split_off(n_servers.min(servers.len()));
    Ok((resolved, servers, Some(clients)))
}

/// The resolved target, its servers' evidence, and with `--from` the named
/// clients' evidence.
type ServersRead = (
    resolve::Resolved,
    Vec<ProxyEvidence>,
    Option<Vec<ProxyEvidence>>,
);

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

impl Run<'_> {
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
        self.neighbours(&wanted).await?;
        self.check_sidecars_read();
        let mut target: ResolvedTarget = self.resolved_target(r);
        let domain = target.cluster_domain.clone();
        target.routes = Some(self.route_lookups(r, &domain).await?);
        target.missing = std::mem::take(&mut self.missing);
        target.callers = std::mem::take(&mut self.found_callers);
        self.snap.resolved = Some(target);
        Ok(())
    }
}
