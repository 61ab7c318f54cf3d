//! The running lab: store + API server + controller + istiod model + pods
//! (in-process apps and real Envoy sidecars), kept in step in the background.
//!
//! [`Lab`] is synchronous on purpose: it owns its own multi-threaded tokio
//! runtime, so a test can run `kubectl` or the plugin as a blocking child
//! process while the lab keeps answering. Dropping the lab (also during a
//! panic's unwinding) stops every Envoy and app; Envoys are additionally
//! started with a parent-death signal, so they die with the process.

use crate::api::request_log::{RequestLog, RequestRecord};
use crate::api::{ApiOptions, ApiServer};
use crate::app::{App, AppBehaviour};
use crate::controller::{self, Controller, LAB_PREFIX};
use crate::duration;
use crate::envoy::{find_envoy, spec_for_pod, ConfigRejected, Sidecar};
use crate::istiod::{pod_is_injected, render_sidecar, SidecarXds, World};
use crate::nack::{self, Nack};
use crate::net::PodAddrs;
use crate::pki::Pki;
use crate::resources::Registry;
use crate::runtime::PodRuntime;
use crate::store::Store;
use anyhow::{anyhow, Context};
use serde_json::Value;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How to start a lab.
#[derive(Debug, Clone, Default)]
pub struct LabOptions {
    /// A ClusterRole (YAML file): the API answers 403 outside its rules.
    pub rbac: Option<PathBuf>,
    /// Require this bearer token (401 without it).
    pub token: Option<String>,
    /// Envoy binary; default: `ENVOY_BIN`, then `envoy` on PATH.
    pub envoy_bin: Option<PathBuf>,
    /// Where to write the kubeconfig; default: inside the lab's temp dir.
    pub kubeconfig: Option<PathBuf>,
    /// Also append every API request to this file, one JSON object per
    /// line (the log is always kept in memory: [`Lab::requests`]).
    pub request_log: Option<PathBuf>,
}

/// One pod as the lab runs it.
struct PodRun {
    addrs: PodAddrs,
    apps: HashMap<String, App>,
    sidecar: Option<Sidecar>,
    /// `lab.mesh503.io/proxy: none`: nothing runs (logs are empty).
    idle: bool,
    /// The pod spec the apps were started from (restart apps if it changes).
    spec_fingerprint: String,
    /// When the sidecar was started (RFC 3339).
    started_at: String,
}

struct Shared {
    store: Store,
    pki: Pki,
    envoy: PathBuf,
    dir: PathBuf,
    pods: Mutex<HashMap<(String, String), PodRun>>,
    /// Errors from the last sync (render failures etc.), for `up` and tests.
    errors: Mutex<Vec<String>>,
    /// Pushes a sidecar rejected because of an EnvoyFilter (oldest first).
    nacks: Mutex<Vec<Nack>>,
    /// Sidecars whose Envoy exited, reaped (see `exits`).
    exited: Mutex<crate::exits::Exits>,
    /// One sync at a time per lab (background loop vs. explicit waits).
    sync_lock: tokio::sync::Mutex<()>,
    /// The store resourceVersion the background loop has reconciled (the
    /// controller settled on it) and then synced the pods to.
    processed: tokio::sync::watch::Sender<u64>,
}

pub struct Lab {
    shared: Arc<Shared>,
    requests: Arc<RequestLog>,
    api: Option<ApiServer>,
    kubeconfig: PathBuf,
    bg: Option<tokio::task::JoinHandle<()>>,
    // Dropped last: the runtime owns every task above.
    rt: Option<tokio::runtime::Runtime>,
    _tmp: tempfile::TempDir,
    _slot: crate::net::SlotLock,
}

impl PodRuntime for Shared {
    fn log_path(&self, namespace: &str, pod: &str, container: &str) -> Option<PathBuf> {
        let pods = self.pods.lock().ok()?;
        let run = pods.get(&(namespace.to_string(), pod.to_string()))?;
        if container == "istio-proxy" && !run.idle {
            return run.sidecar.as_ref().map(|s| s.log_path());
        }
        if let Some(app) = run.apps.get(container) {
            return Some(app.log_path.clone());
        }
        // A container without ports has an empty log, like `sleep`.
        let p = self.dir.join(format!("{namespace}.{pod}.{container}.log"));
        let _ = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&p);
        Some(p)
    }

    fn forward_targets(&self, namespace: &str, pod: &str, port: u16) -> Vec<SocketAddr> {
        // kubelet dials localhost:port inside the pod's network namespace.
        let Ok(pods) = self.pods.lock() else {
            return vec![];
        };
        pods.get(&(namespace.to_string(), pod.to_string()))
            .map(|r| vec![SocketAddr::new(IpAddr::V4(r.addrs.localhost), port)])
            .unwrap_or_default()
    }
}

impl Lab {
    /// Load a scenario (file or directory), start everything, and return
    /// when the API answers and every sidecar is ready.
    pub fn start(scenario: &Path, opts: LabOptions) -> anyhow::Result<Lab> {
        let objects = crate::scenario::load(scenario)?;
        Self::start_objects(objects, opts)
    }

    pub fn start_objects(objects: Vec<Value>, opts: LabOptions) -> anyhow::Result<Lab> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .thread_name("mesh503-lab")
            .build()?;
        let tmp = tempfile::Builder::new().prefix("mesh503-lab-").tempdir()?;
        let envoy = match &opts.envoy_bin {
            Some(p) => p.clone(),
            None => find_envoy()?,
        };
        let minor = controller::istio_minor(&objects);
        let store = Store::new(Registry::for_istio(minor));
        for o in objects {
            let what = format!(
                "{} {}/{}",
                o["kind"].as_str().unwrap_or("?"),
                o["metadata"]["namespace"].as_str().unwrap_or(""),
                o["metadata"]["name"].as_str().unwrap_or("?")
            );
            store
                .apply(o)
                .map_err(|e| anyhow!("scenario object {what}: {} ({})", e.message, e.reason))?;
        }
        let shared = Arc::new(Shared {
            store: store.clone(),
            pki: Pki::new()?,
            envoy,
            dir: tmp.path().to_path_buf(),
            pods: Mutex::new(HashMap::new()),
            errors: Mutex::new(Vec::new()),
            nacks: Mutex::new(Vec::new()),
            exited: Mutex::new(HashMap::new()),
            processed: tokio::sync::watch::channel(0).0,
            sync_lock: tokio::sync::Mutex::new(()),
        });
        let rbac = match &opts.rbac {
            Some(p) => {
                let objs = crate::scenario::load(p)?;
                Some(
                    objs.into_iter()
                        .next()
                        .ok_or_else(|| anyhow!("{}: no ClusterRole", p.display()))?,
                )
            }
            None => None,
        };
        let kubeconfig = opts
            .kubeconfig
            .clone()
            .unwrap_or_else(|| tmp.path().join("kubeconfig"));
        let requests = Arc::new(RequestLog::new(opts.request_log.as_deref()).with_context(
            || {
                format!(
                    "cannot open the request log {}",
                    opts.request_log
                        .as_deref()
                        .map(|p| p.display().to_string())
                        .unwrap_or_default()
                )
            },
        )?);
        let slot = crate::net::SlotLock::claim().context("claiming an address slot for the lab")?;
        let mut controller = Controller::in_slot(slot.slot);
        let (api, bg) = rt.block_on(async {
            settle(&shared, &mut controller).await?;
            shared.processed.send_replace(store.resource_version());
            sync_pods(&shared, true).await?;
            let api = ApiServer::start(
                store.clone(),
                shared.clone() as Arc<dyn PodRuntime>,
                ApiOptions {
                    rbac,
                    token: opts.token.clone(),
                    server_version: "v1.33.0".into(),
                    token_user: "lab".into(),
                    request_log: Some(requests.clone()),
                },
            )
            .await?;
            crate::kubeconfig::write_kubeconfig(
                &kubeconfig,
                &api.url(),
                opts.token.as_deref(),
                None,
            )?;
            let bg = tokio::spawn(background(shared.clone(), controller));
            anyhow::Ok((api, bg))
        })?;
        release_freed_memory();
        Ok(Lab {
            requests,
            shared,
            api: Some(api),
            kubeconfig,
            bg: Some(bg),
            rt: Some(rt),
            _tmp: tmp,
            _slot: slot,
        })
    }

    pub fn kubeconfig(&self) -> &Path {
        &self.kubeconfig
    }

    pub fn api_url(&self) -> String {
        self.api.as_ref().map(|a| a.url()).unwrap_or_default()
    }

    pub fn store(&self) -> &Store {
        &self.shared.store
    }

    /// Run a future on the lab's runtime (for library callers in sync tests).
    pub fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        self.rt
            .as_ref()
            .expect("runtime alive until drop")
            .block_on(f)
    }

    /// Send `count` requests from outside the mesh through an ingress
    /// gateway: `gateway` is its Service `<ns>/<name>` (e.g.
    /// `istio-system/istio-ingressgateway`); the URL's host is the `Host`
    /// header, its port the Service port.
    pub fn curl_via_gateway(
        &self,
        gateway: &str,
        url: &str,
        count: usize,
        concurrency: usize,
    ) -> anyhow::Result<Vec<Result<crate::curl::Response, String>>> {
        let access = crate::curl::ApiAccess::from_kubeconfig(&self.kubeconfig)?;
        self.block_on(crate::curl::curl_via_gateway(
            &access,
            gateway,
            url,
            count,
            concurrency,
        ))
    }

    /// Config pushes a sidecar rejected (NACK) because an EnvoyFilter
    /// shaped them, oldest first (see `nack.rs`).
    pub fn nacks(&self) -> Vec<Nack> {
        self.shared
            .nacks
            .lock()
            .map(|n| n.clone())
            .unwrap_or_default()
    }

    /// Send `count` requests from `<ns>/<pod|deploy>` as its app would.
    pub fn curl(
        &self,
        from: &str,
        url: &str,
        count: usize,
        concurrency: usize,
    ) -> anyhow::Result<Vec<Result<crate::curl::Response, String>>> {
        let access = crate::curl::ApiAccess::from_kubeconfig(&self.kubeconfig)?;
        self.block_on(crate::curl::curl(&access, from, url, count, concurrency))
    }

    /// Apply an object as `kubectl apply` would (create or replace), then
    /// wait until every affected sidecar runs the new config.
    pub fn apply(&self, obj: Value) -> anyhow::Result<()> {
        self.shared
            .store
            .apply(obj)
            .map_err(|e| anyhow!("{}: {}", e.reason, e.message))?;
        self.wait_synced()
    }

    /// Wait until the background loop has reconciled the store's current
    /// state (the controller's Pods, EndpointSlices, …) and every sidecar
    /// runs the config rendered from it.
    pub fn wait_synced(&self) -> anyhow::Result<()> {
        let shared = self.shared.clone();
        self.block_on(async move {
            let mut rx = shared.processed.subscribe();
            let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
            loop {
                let rv = shared.store.resource_version();
                while *rx.borrow_and_update() < rv {
                    if tokio::time::timeout_at(deadline, rx.changed())
                        .await
                        .is_err()
                    {
                        anyhow::bail!("the lab did not reconcile resourceVersion {rv} in 60 s");
                    }
                }
                // Syncing again is idempotent and makes the wait deterministic.
                sync_pods(&shared, true).await?;
                if shared.store.resource_version() == rv {
                    return Ok(());
                }
            }
        })
    }

    /// Every request the lab's API answered so far (verb, path, query,
    /// user, status), oldest first; the newest
    /// [`crate::api::request_log::MAX_RECORDS`] are kept.
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.requests.records()
    }

    /// Errors the last syncs met (render failures), oldest first.
    pub fn errors(&self) -> Vec<String> {
        self.shared
            .errors
            .lock()
            .map(|e| e.clone())
            .unwrap_or_default()
    }

    /// Every running sidecar: `<namespace>/<pod>`, its admin address and
    /// its directory (`admin.log` there records every admin request).
    pub fn sidecars(&self) -> Vec<(String, SocketAddr, PathBuf)> {
        let Ok(pods) = self.shared.pods.lock() else {
            return Vec::new();
        };
        let mut v: Vec<(String, SocketAddr, PathBuf)> = pods
            .iter()
            .filter_map(|((ns, pod), r)| {
                let sc = r.sidecar.as_ref()?;
                Some((
                    format!("{ns}/{pod}"),
                    sc.admin_addr(),
                    sc.dir().to_path_buf(),
                ))
            })
            .collect();
        v.sort();
        v
    }

    /// Pids of every Envoy the lab runs (for leak tests).
    pub fn envoy_pids(&self) -> Vec<u32> {
        self.shared
            .pods
            .lock()
            .map(|p| {
                p.values()
                    .filter_map(|r| r.sidecar.as_ref().map(|s| s.pid()))
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if let Some(bg) = self.bg.take() {
            bg.abort();
        }
        if let (Some(rt), Some(api)) = (self.rt.as_ref(), self.api.take()) {
            rt.block_on(api.shutdown());
        }
        // Sidecars (Envoy processes) and apps stop as their handles drop.
        if let Ok(mut pods) = self.shared.pods.lock() {
            pods.clear();
        }
        if let Some(rt) = self.rt.take() {
            rt.shutdown_timeout(Duration::from_secs(2));
        }
    }
}

fn now() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
        .split('.')
        .next()
        .map(|s| format!("{}Z", s.trim_end_matches('Z')))
        .unwrap_or_default()
}

/// A sync copies the whole store a few times; glibc keeps what was freed
/// in its arenas, so an idle lab would hold several times the memory it
/// uses. Hand it back to the system after each sync (glibc `malloc_trim`).
fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free memory; no pointers involved.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// `MESH503_LAB_TIMING=1`: print how long each phase of a sync takes.
fn timing(what: std::fmt::Arguments<'_>) {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    if *ON.get_or_init(|| std::env::var_os("MESH503_LAB_TIMING").is_some()) {
        eprintln!("mesh503-lab: timing: {what}");
    }
}

/// Run the controller until the store stops changing.
async fn settle(shared: &Shared, controller: &mut Controller) -> anyhow::Result<()> {
    controller.exited = shared.exited.lock().map(|e| e.clone()).unwrap_or_default();
    for _ in 0..10 {
        let t0 = std::time::Instant::now();
        let objects = shared.store.all();
        let ch = controller.reconcile(&objects, &now());
        timing(format_args!(
            "reconciled {} objects in {:?}: {} to write, {} to delete",
            objects.len(),
            t0.elapsed(),
            ch.apply.len(),
            ch.delete.len()
        ));
        if ch.apply.is_empty() && ch.delete.is_empty() {
            return Ok(());
        }
        for o in ch.apply {
            shared
                .store
                .apply(o)
                .map_err(|e| anyhow!("controller: {}: {}", e.reason, e.message))?;
        }
        for (g, k, ns, n) in ch.delete {
            let ns = if ns.is_empty() {
                None
            } else {
                Some(ns.as_str())
            };
            let _ = shared.store.delete(&g, &k, ns, &n);
        }
    }
    Err(anyhow!("controller did not settle after 10 rounds"))
}

/// React to every store change: reconcile, then bring pods in line.
async fn background(shared: Arc<Shared>, mut controller: Controller) {
    let mut rx = shared.store.subscribe();
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    loop {
        // A store change, or a sidecar that died since the last look.
        tokio::select! {
            changed = rx.changed() => if changed.is_err() { return },
            _ = tick.tick() => if !reap(&shared) { continue },
        }
        // Let a burst of writes land before rendering.
        tokio::time::sleep(Duration::from_millis(20)).await;
        rx.borrow_and_update();
        if let Err(e) = settle(&shared, &mut controller).await {
            record(&shared, format!("{e:#}"));
        }
        let settled = shared.store.resource_version();
        if let Err(e) = sync_pods(&shared, true).await {
            record(&shared, format!("{e:#}"));
        }
        shared.processed.send_replace(settled);
        release_freed_memory();
        // Changes made while syncing wake the loop again; the controller's
        // own writes (up to `settled`) are already handled.
        if shared.store.resource_version() == settled {
            rx.borrow_and_update();
        }
    }
}

/// Reaps every sidecar whose Envoy exited (no zombie) and records it for
/// the pod's status; true when one newly did.
fn reap(shared: &Shared) -> bool {
    let (Ok(pods), Ok(mut exited)) = (shared.pods.lock(), shared.exited.lock()) else {
        return false;
    };
    let mut new = false;
    for (key, run) in pods.iter() {
        let Some(status) = run.sidecar.as_ref().and_then(|s| s.exited()) else {
            continue;
        };
        let containers = exited.entry(key.clone()).or_default();
        if !containers.contains_key("istio-proxy") {
            let t = crate::exits::terminated(status, &run.started_at, &now());
            containers.insert("istio-proxy".into(), t);
            new = true;
        }
    }
    new
}

fn record(shared: &Shared, e: String) {
    eprintln!("mesh503-lab: {e}");
    if let Ok(mut v) = shared.errors.lock() {
        v.push(e);
    }
}

fn annotation<'a>(pod: &'a Value, key: &str) -> Option<&'a str> {
    pod["metadata"]["annotations"][format!("{LAB_PREFIX}{key}")].as_str()
}

/// Start, update or stop apps and sidecars so they match the store's pods.
async fn sync_pods(shared: &Arc<Shared>, wait: bool) -> anyhow::Result<()> {
    let _one_at_a_time = shared.sync_lock.lock().await;
    let t0 = std::time::Instant::now();
    let world = World::new(shared.store.all());
    let pods: Vec<&Value> = world
        .objects
        .iter()
        .filter(|o| {
            o["kind"] == "Pod" && o["apiVersion"] == "v1" && o["status"]["podIP"].is_string()
        })
        .collect();
    // New sidecars to wait for, with the EnvoyFilters that shaped their config.
    let mut waiting: Vec<((String, String), Vec<String>)> = Vec::new();
    let mut errors = Vec::new();
    let live: std::collections::HashSet<(String, String)> = pods
        .iter()
        .map(|p| {
            (
                p["metadata"]["namespace"]
                    .as_str()
                    .unwrap_or("")
                    .to_string(),
                p["metadata"]["name"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    {
        let mut runs = shared
            .pods
            .lock()
            .map_err(|_| anyhow!("pod table poisoned"))?;
        runs.retain(|k, _| live.contains(k));
        if let Ok(mut exited) = shared.exited.lock() {
            exited.retain(|k, _| live.contains(k));
        }
    }
    for pod in pods {
        let ns = pod["metadata"]["namespace"]
            .as_str()
            .unwrap_or("")
            .to_string();
        let name = pod["metadata"]["name"].as_str().unwrap_or("").to_string();
        let key = (ns.clone(), name.clone());
        let ip = pod["status"]["podIP"]
            .as_str()
            .unwrap_or("")
            .parse()
            .context("podIP")?;
        let addrs = PodAddrs::from_pod_ip(ip);
        let injected = pod_is_injected(pod);
        // `lab.mesh503.io/proxy: none`: injected in the API, nothing runs.
        let runs = !no_proxy(pod);
        let fingerprint = pod_fingerprint(pod);
        let needs_apps = {
            let runs = shared
                .pods
                .lock()
                .map_err(|_| anyhow!("pod table poisoned"))?;
            runs.get(&key)
                .map(|r| r.spec_fingerprint != fingerprint)
                .unwrap_or(true)
        };
        if needs_apps {
            // (Re)start: drop the old run first so ports are free.
            shared
                .pods
                .lock()
                .map_err(|_| anyhow!("pod table poisoned"))?
                .remove(&key);
            if let Ok(mut exited) = shared.exited.lock() {
                exited.remove(&key);
            }
            let apps = if runs {
                start_apps(shared, pod, &addrs, injected).await
            } else {
                Ok(HashMap::new())
            };
            let apps = match apps {
                Ok(a) => a,
                Err(e) => {
                    errors.push(format!("pod {ns}/{name}: {e:#}"));
                    HashMap::new()
                }
            };
            let mut run = PodRun {
                addrs,
                apps,
                started_at: now(),
                sidecar: None,
                idle: !runs,
                spec_fingerprint: fingerprint,
            };
            if injected && runs {
                match render_and_start(shared, &world, pod, &addrs) {
                    Ok((sc, filters)) => {
                        run.sidecar = Some(sc);
                        waiting.push((key.clone(), filters));
                    }
                    Err(e) => errors.push(format!("pod {ns}/{name}: sidecar: {e:#}")),
                }
            }
            shared
                .pods
                .lock()
                .map_err(|_| anyhow!("pod table poisoned"))?
                .insert(key, run);
        } else if injected && runs && !nack::frozen(pod) {
            if let Err(e) = update_sidecar(shared, &world, pod, &key).await {
                errors.push(e);
            }
        }
    }
    timing(format_args!(
        "synced {} pods ({} new sidecars) in {:?}",
        live.len(),
        waiting.len(),
        t0.elapsed()
    ));
    if wait && !waiting.is_empty() {
        // Wait for every new sidecar concurrently.
        let mut futs = Vec::new();
        for (key, filters) in &waiting {
            let sc = shared
                .pods
                .lock()
                .map_err(|_| anyhow!("pod table poisoned"))?
                .get_mut(key)
                .and_then(|r| r.sidecar.take());
            if let Some(sc) = sc {
                let key = key.clone();
                futs.push(async move {
                    let r = match sc.wait_ready(sc.ready_timeout()).await {
                        Ok(()) => Ok(()),
                        Err(e) => accept_nack(shared, &key, &sc, e, filters).await,
                    };
                    (key, sc, r)
                });
            }
        }
        for (key, sc, r) in futures::future::join_all(futs).await {
            if let Err(e) = r {
                errors.push(format!("pod {}/{}: sidecar not ready: {e}", key.0, key.1));
            }
            if let Some(run) = shared
                .pods
                .lock()
                .map_err(|_| anyhow!("pod table poisoned"))?
                .get_mut(&key)
            {
                run.sidecar = Some(sc);
            }
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        for e in &errors[..errors.len() - 1] {
            record(shared, e.clone());
        }
        Err(anyhow!(errors.pop().unwrap_or_default()))
    }
}

/// The pod-template annotation that keeps a pod's processes from running
/// (`lab.mesh503.io/proxy: "none"`): see tests/lab/README.md.
pub const PROXY_ANNOTATION: &str = "proxy";

/// Is this pod marked to run nothing (no Envoy, no app)?
pub fn no_proxy(pod: &Value) -> bool {
    annotation(pod, PROXY_ANNOTATION) == Some("none")
}

fn render_and_start(
    shared: &Shared,
    world: &World,
    pod: &Value,
    addrs: &PodAddrs,
) -> anyhow::Result<(Sidecar, Vec<String>)> {
    let t0 = std::time::Instant::now();
    let xds = render_sidecar(world, pod, &shared.pki).map_err(|e| anyhow!("render: {e}"))?;
    timing(format_args!(
        "rendered {} clusters for a new sidecar in {:?}",
        xds.clusters.len(),
        t0.elapsed()
    ));
    let spec = spec_for_pod(world, pod).map_err(|e| anyhow!("spec: {e}"))?;
    let dir = shared.dir.join(format!(
        "{}.{}",
        pod["metadata"]["namespace"].as_str().unwrap_or(""),
        pod["metadata"]["name"].as_str().unwrap_or("")
    ));
    std::fs::create_dir_all(&dir)?;
    debug_assert_eq!(spec.addrs, *addrs);
    let t0 = std::time::Instant::now();
    let sc = Sidecar::start(&shared.envoy, &dir, &spec, &xds)?;
    timing(format_args!("encoded and started in {:?}", t0.elapsed()));
    Ok((sc, xds.envoy_filters.clone()))
}

/// What decides whether a pod's apps restart: its spec and annotations,
/// except the freeze knob (setting it must not restart anything).
fn pod_fingerprint(pod: &Value) -> String {
    let mut ann = pod["metadata"]["annotations"].clone();
    if let Some(m) = ann.as_object_mut() {
        m.remove(&format!("{LAB_PREFIX}{}", nack::FREEZE_ANNOTATION));
    }
    format!("{}{}", pod["spec"], ann)
}

/// A rejection by Envoy of config an EnvoyFilter shaped is a NACK, as in a
/// cluster: wait until Envoy settles on what it accepted and record it.
/// Anything else is an error of the lab.
async fn accept_nack(
    shared: &Shared,
    key: &(String, String),
    sc: &Sidecar,
    err: anyhow::Error,
    filters: &[String],
) -> Result<(), String> {
    let Some(rej) = err.downcast_ref::<ConfigRejected>() else {
        return Err(format!("{err:#}"));
    };
    if filters.is_empty() {
        return Err(format!("{err:#}"));
    }
    let rejected = nack::settle(sc, Duration::from_secs(15))
        .await
        .map_err(|e| format!("{e:#}"))?;
    let n = Nack {
        pod: format!("{}/{}", key.0, key.1),
        envoy_filters: filters.to_vec(),
        log: rej.lines.clone(),
        rejected,
    };
    eprintln!("mesh503-lab: {n}");
    if let Ok(mut v) = shared.nacks.lock() {
        v.push(n);
    }
    Ok(())
}

/// Push a running pod's new config to its sidecar if it changed.
async fn update_sidecar(
    shared: &Arc<Shared>,
    world: &World,
    pod: &Value,
    key: &(String, String),
) -> Result<(), String> {
    let (ns, name) = key;
    let t0 = std::time::Instant::now();
    let xds: SidecarXds = render_sidecar(world, pod, &shared.pki)
        .map_err(|e| format!("pod {ns}/{name}: render: {e}"))?;
    timing(format_args!("rendered {ns}/{name} in {:?}", t0.elapsed()));
    let poisoned = || "pod table poisoned".to_string();
    if shared
        .exited
        .lock()
        .map_err(|_| poisoned())?
        .contains_key(key)
    {
        return Ok(()); // a dead Envoy takes no config (the lab does not restart it)
    }
    // Take the sidecar out while awaiting (no lock across await).
    let Some(sc) = shared
        .pods
        .lock()
        .map_err(|_| poisoned())?
        .get_mut(key)
        .and_then(|r| r.sidecar.take())
    else {
        return Ok(());
    };
    let t0 = std::time::Instant::now();
    let res = match sc.update(&xds).await {
        Ok(()) => Ok(()),
        Err(e) => accept_nack(shared, key, &sc, e, &xds.envoy_filters).await,
    };
    timing(format_args!("pushed to {ns}/{name} in {:?}", t0.elapsed()));
    let mut runs = shared.pods.lock().map_err(|_| poisoned())?;
    if let Some(r) = runs.get_mut(key) {
        r.sidecar = Some(sc);
    }
    res.map_err(|e| format!("pod {ns}/{name}: sidecar update: {e}"))
}

async fn start_apps(
    shared: &Shared,
    pod: &Value,
    addrs: &PodAddrs,
    injected: bool,
) -> anyhow::Result<HashMap<String, App>> {
    let ns = pod["metadata"]["namespace"].as_str().unwrap_or("");
    let name = pod["metadata"]["name"].as_str().unwrap_or("");
    // `lab.mesh503.io/listen`: `0.0.0.0` (default, like most apps: the pod IP
    // and localhost), `127.0.0.1`/`localhost` (localhost only), or `pod-ip` /
    // the pod's IP (the pod IP only). With a sidecar the app's view of the pod
    // IP is `app_ip`, since the sidecar holds `pod_ip` (see net.rs).
    let own_ip = if injected { addrs.app_ip } else { addrs.pod_ip };
    let ips: Vec<std::net::Ipv4Addr> = match annotation(pod, "listen").map(str::trim) {
        None | Some("0.0.0.0") | Some("") => vec![own_ip, addrs.localhost],
        Some(l) if l.starts_with("127.") || l == "localhost" => vec![addrs.localhost],
        Some(_) => vec![own_ip],
    };
    let behaviour = AppBehaviour {
        status: annotation(pod, "status").and_then(|s| s.parse().ok()),
        delay: annotation(pod, "delay").and_then(duration::parse),
        keepalive_timeout: annotation(pod, "keepalive-timeout").and_then(duration::parse),
    };
    let mut apps = HashMap::new();
    for c in pod["spec"]["containers"].as_array().into_iter().flatten() {
        let cname = c["name"].as_str().unwrap_or("");
        if cname == "istio-proxy" {
            continue;
        }
        let ports: Vec<SocketAddr> = c["ports"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|p| p["protocol"].as_str().unwrap_or("TCP") == "TCP")
            .filter_map(|p| p["containerPort"].as_u64())
            .flat_map(|p| {
                ips.iter()
                    .map(move |ip| SocketAddr::new(IpAddr::V4(*ip), p as u16))
            })
            .collect();
        if ports.is_empty() {
            continue;
        }
        let log = shared.dir.join(format!("{ns}.{name}.{cname}.log"));
        let app = App::start(
            &format!("{ns}/{name}/{cname}"),
            &ports,
            behaviour.clone(),
            log,
        )
        .await?;
        apps.insert(cname.to_string(), app);
    }
    Ok(apps)
}
