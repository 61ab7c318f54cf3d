//! The istiod model's config, run by real Envoy 1.40 sidecars: the 503s of
//! Istio's mTLS mismatches reproduce with the status codes, response flags
//! and log lines of a real mesh, and a DestinationRule fix applies as a hot
//! update without restarting Envoy.
//!
//! Needs Envoy: `ENVOY_BIN` or `envoy` on PATH (`scripts/test` sets it up).
//! Every test uses its own block of lab addresses so they run in parallel,
//! inside a slot this process claims (so other runs on the machine do not collide).

use mesh503_lab::envoy::{find_envoy, spec_for_pod, Sidecar};
use mesh503_lab::istiod::{render_sidecar, World};
use mesh503_lab::net::PodAddrs;
use mesh503_lab::pki::Pki;
use serde::Deserialize;
use serde_json::{json, Value};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

// ---------------------------------------------------------------- world

fn from_yaml(text: &str) -> Vec<Value> {
    serde_yaml::Deserializer::from_str(text)
        .map(|d| Value::deserialize(d).expect("test YAML parses"))
        .filter(|v| !v.is_null())
        .collect()
}

/// The `istio` ConfigMap for a release and a mesh config.
fn istio_configmap(version: &str, mesh: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "istio", "namespace": "istio-system", "labels": {"lab.mesh503.io/istio-version": version}},
        "data": {"mesh": mesh},
    })
}

/// This test process's block of lab addresses, claimed like a `Lab` claims
/// its own (`net::SlotLock`), so parallel runs (other labs, other checkouts'
/// tests on the same machine) never bind the same addresses.
fn slot() -> u8 {
    static SLOT: std::sync::OnceLock<mesh503_lab::net::SlotLock> = std::sync::OnceLock::new();
    SLOT.get_or_init(|| mesh503_lab::net::SlotLock::claim().expect("a free lab address slot"))
        .slot
}

/// A running pod as the lab's controller shows it.
fn pod(
    name: &str,
    app: &str,
    sa: &str,
    index: u32,
    injected: bool,
    ports: &[u16],
    annotations: Value,
) -> Value {
    let addrs = PodAddrs::for_slot_index(slot(), index);
    let mut labels = json!({"app": app, "version": "v1", "service.istio.io/canonical-name": app});
    let mut ann = annotations;
    let mut containers = vec![
        json!({"name": app, "image": "lab", "ports": ports.iter().map(|p| json!({"containerPort": p, "protocol": "TCP"})).collect::<Vec<_>>()}),
    ];
    if injected {
        labels["security.istio.io/tlsMode"] = json!("istio");
        ann["sidecar.istio.io/status"] =
            json!(r#"{"initContainers":["istio-init"],"containers":["istio-proxy"]}"#);
        containers.push(json!({"name": "istio-proxy", "image": "docker.io/istio/proxyv2"}));
    }
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "foo", "labels": labels, "annotations": ann},
        "spec": {"serviceAccountName": sa, "containers": containers},
        "status": {"podIP": addrs.pod_ip.to_string(), "phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]},
    })
}

/// Service `name` port 8000 (`http`) → targetPort 8080, and its EndpointSlice.
fn service_with_endpoints(name: &str, backends: &[&Value]) -> Vec<Value> {
    let endpoints: Vec<Value> = backends
        .iter()
        .map(|p| {
            json!({
                "addresses": [p["status"]["podIP"]],
                "conditions": {"ready": true},
                "targetRef": {"kind": "Pod", "name": p["metadata"]["name"], "namespace": "foo"},
            })
        })
        .collect();
    vec![
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": "foo"},
               "spec": {"selector": {"app": name}, "clusterIP": "10.96.0.20",
                        "ports": [{"name": "http", "port": 8000, "targetPort": 8080, "protocol": "TCP"}]}}),
        json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
               "metadata": {"name": format!("{name}-abcde"), "namespace": "foo", "labels": {"kubernetes.io/service-name": name}},
               "addressType": "IPv4", "endpoints": endpoints,
               "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]}),
    ]
}

/// sleep + httpbin (both injected) in `foo`, Service httpbin, the istio
/// ConfigMap, plus `extra` objects.
fn sleep_httpbin(version: &str, mesh: &str, base: u32, extra: &str) -> (World, Value, Value) {
    let sleep = pod(
        "sleep-5f8d6b-abcde",
        "sleep",
        "sleep",
        base,
        true,
        &[],
        json!({}),
    );
    let httpbin = pod(
        "httpbin-7d9f8c-abcde",
        "httpbin",
        "httpbin",
        base + 1,
        true,
        &[8080],
        json!({}),
    );
    let mut objects = vec![
        istio_configmap(version, mesh),
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "foo", "labels": {"istio-injection": "enabled"}}}),
        sleep.clone(),
        httpbin.clone(),
    ];
    objects.extend(service_with_endpoints("httpbin", &[&httpbin]));
    objects.extend(from_yaml(extra));
    (World::new(objects), sleep, httpbin)
}

// ---------------------------------------------------------------- running

fn envoy_bin() -> PathBuf {
    find_envoy().unwrap_or_else(|e| panic!("{e:#}"))
}

/// A tiny app answering 200 `ok from <name>` on every address given.
async fn app(name: &'static str, addrs: &[SocketAddr]) -> Vec<tokio::task::JoinHandle<()>> {
    let mut tasks = Vec::new();
    for a in addrs {
        let listener = tokio::net::TcpListener::bind(a)
            .await
            .unwrap_or_else(|e| panic!("bind app on {a}: {e}"));
        let router = axum::Router::new().fallback(move || async move { format!("ok from {name}") });
        tasks.push(tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        }));
    }
    tasks
}

struct Mesh {
    sidecars: Vec<(String, Sidecar)>,
    pki: Pki,
    _dir: tempfile::TempDir,
}

impl Mesh {
    async fn start(world: &World, pods: &[&Value]) -> Mesh {
        let bin = envoy_bin();
        let dir = tempfile::tempdir().unwrap();
        let pki = Pki::new().unwrap();
        let mut sidecars = Vec::new();
        for p in pods {
            let name = p["metadata"]["name"].as_str().unwrap().to_string();
            let xds = render_sidecar(world, p, &pki).unwrap();
            let spec = spec_for_pod(world, p).unwrap();
            let sc = Sidecar::start(&bin, &dir.path().join(&name), &spec, &xds).unwrap();
            sidecars.push((name, sc));
        }
        let waits = sidecars
            .iter()
            .map(|(_, s)| s.wait_ready(Duration::from_secs(20)));
        for r in futures::future::join_all(waits).await {
            r.unwrap();
        }
        Mesh {
            sidecars,
            pki,
            _dir: dir,
        }
    }

    fn get(&self, pod_name_prefix: &str) -> &Sidecar {
        &self
            .sidecars
            .iter()
            .find(|(n, _)| n.starts_with(pod_name_prefix))
            .expect("sidecar")
            .1
    }

    /// Re-render every sidecar from `world` and hot-update it.
    async fn update(&self, world: &World) {
        for (name, sc) in &self.sidecars {
            let pod = world
                .objects
                .iter()
                .find(|o| o["kind"] == "Pod" && o["metadata"]["name"] == name.as_str())
                .unwrap();
            sc.update(&render_sidecar(world, pod, &self.pki).unwrap())
                .await
                .unwrap();
        }
    }

    fn pids(&self) -> Vec<u32> {
        self.sidecars.iter().map(|(_, s)| s.pid()).collect()
    }
}

/// Envoy processes are gone (reaped, `kill(pid, 0)` fails).
fn assert_gone(pids: &[u32]) {
    for &pid in pids {
        // SAFETY: signal 0 only checks the pid exists.
        let alive = unsafe { libc::kill(pid as libc::pid_t, 0) } == 0;
        assert!(!alive, "envoy pid {pid} still exists after drop");
    }
}

/// GET `http://<host>:<port><path>` the way the lab's client pod sends it:
/// to its sidecar's egress address, Host header unchanged.
async fn get_via(client: &Value, host: &str, port: u16, path: &str) -> (u16, String) {
    let addrs = PodAddrs::from_pod_ip(client["status"]["podIP"].as_str().unwrap().parse().unwrap());
    let http = reqwest::Client::builder()
        .no_proxy()
        .resolve(host, SocketAddr::new(IpAddr::V4(addrs.egress), port))
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let resp = http
        .get(format!("http://{host}:{port}{path}"))
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.text().await.unwrap_or_default())
}

/// Wait (Envoy flushes access logs every second) for a log line containing
/// every needle; return it.
async fn log_line(path: &Path, needles: &[&str]) -> String {
    let deadline = Instant::now() + Duration::from_secs(6);
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if let Some(l) = text.lines().find(|l| needles.iter().all(|n| l.contains(n))) {
            return l.to_string();
        }
        if Instant::now() > deadline {
            panic!("no line with {needles:?} in {}:\n{text}", path.display());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn dump(sc: &Sidecar, query: &str) -> Value {
    serde_json::from_str(
        &sc.admin_get(&format!("/config_dump?{query}"))
            .await
            .unwrap(),
    )
    .unwrap()
}

fn cluster<'a>(dump: &'a Value, name: &str) -> &'a Value {
    dump["configs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["cluster"]["name"] == name)
        .map(|c| &c["cluster"])
        .unwrap_or_else(|| panic!("no cluster {name} in dump"))
}

const ACCESS_LOG_MESH: &str = "accessLogFile: /dev/stdout\n";

// ---------------------------------------------------------------- tests

/// (a) The 2018 seed: Istio 1.0, MeshPolicy STRICT, the mesh-wide
/// `*.local` ISTIO_MUTUAL rule overridden by a namespace rule without
/// `tls` → plaintext to a STRICT server: 503 UC at the client, NR
/// filter_chain_not_found at the server. Adding `tls: ISTIO_MUTUAL` to the
/// rule and hot-updating both sidecars fixes it without a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_2018_plaintext_to_strict_then_hot_fix() {
    let dr_without_tls = r#"
apiVersion: authentication.istio.io/v1alpha1
kind: MeshPolicy
metadata: {name: default}
spec:
  peers:
  - mtls: {}
---
apiVersion: networking.istio.io/v1alpha3
kind: DestinationRule
metadata: {name: default, namespace: istio-system, creationTimestamp: "2018-08-01T00:00:00Z"}
spec:
  host: "*.local"
  trafficPolicy:
    tls: {mode: ISTIO_MUTUAL}
---
apiVersion: networking.istio.io/v1alpha3
kind: DestinationRule
metadata: {name: httpbin, namespace: foo, creationTimestamp: "2018-08-02T00:00:00Z"}
spec:
  host: httpbin
  trafficPolicy:
    connectionPool:
      tcp: {maxConnections: 100}
      http: {http1MaxPendingRequests: 10, maxRequestsPerConnection: 10}
    outlierDetection: {consecutiveErrors: 5, interval: 5s, baseEjectionTime: 30s, maxEjectionPercent: 100}
"#;
    let (world, sleep, httpbin) = sleep_httpbin("1.0", ACCESS_LOG_MESH, 3000, dr_without_tls);
    let ha = PodAddrs::from_pod_ip(
        httpbin["status"]["podIP"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap(),
    );
    // Istio 1.0 forwards inbound to 127.0.0.1: an app on 0.0.0.0 answers on both.
    let _app = app(
        "httpbin",
        &[
            SocketAddr::new(IpAddr::V4(ha.app_ip), 8080),
            SocketAddr::new(IpAddr::V4(ha.localhost), 8080),
        ],
    )
    .await;
    let mesh = Mesh::start(&world, &[&sleep, &httpbin]).await;
    let pids = mesh.pids();

    let (status, body) = get_via(&sleep, "httpbin.foo", 8000, "/get").await;
    assert_eq!(status, 503, "body: {body}");
    let client_line = log_line(
        &mesh.get("sleep").log_path(),
        &["\"GET /get HTTP/1.1\" 503 UC "],
    )
    .await;
    let server_line = log_line(
        &mesh.get("httpbin").log_path(),
        &["NR filter_chain_not_found"],
    )
    .await;
    println!("seed client: {body:?}\n  {client_line}\n  server: {server_line}");

    // The client cluster is plaintext and carries the DR's limits (1.0: no metadata yet).
    let d = dump(mesh.get("sleep"), "resource=dynamic_active_clusters").await;
    let c = cluster(&d, "outbound|8000||httpbin.foo.svc.cluster.local");
    assert!(
        c.get("transport_socket").is_none() && c.get("transport_socket_matches").is_none(),
        "{c:#}"
    );
    assert_eq!(
        c["circuit_breakers"]["thresholds"][0]["max_connections"],
        100
    );
    assert_eq!(c["outlier_detection"]["consecutive_5xx"], 5);

    // Fix: tls ISTIO_MUTUAL in foo/httpbin; hot update, same request.
    let fixed_yaml = dr_without_tls.replace(
        "    connectionPool:",
        "    tls: {mode: ISTIO_MUTUAL}\n    connectionPool:",
    );
    let (fixed, _, _) = sleep_httpbin("1.0", ACCESS_LOG_MESH, 3000, &fixed_yaml);
    mesh.update(&fixed).await;
    let (status, body) = get_via(&sleep, "httpbin.foo", 8000, "/get").await;
    assert_eq!(status, 200, "body: {body}");
    assert_eq!(body, "ok from httpbin");
    assert_eq!(mesh.pids(), pids, "Envoy was restarted");
    let d = dump(mesh.get("sleep"), "resource=dynamic_active_clusters").await;
    let c = cluster(&d, "outbound|8000||httpbin.foo.svc.cluster.local");
    assert_eq!(
        c["transport_socket"]["typed_config"]["common_tls_context"]["alpn_protocols"],
        json!(["istio"])
    );
    let ok_line = log_line(
        &mesh.get("httpbin").log_path(),
        &["\"GET /get HTTP/1.1\" 200 - "],
    )
    .await;
    println!("after hot fix: 200, server: {ok_line}");
    drop(mesh);
    assert_gone(&pids);
}

/// (b) Modern Istio, PeerAuthentication STRICT mesh-wide, auto mTLS off, a
/// DR without `tls`: plaintext → 503 UC, `upstream_reset_before_response_started{connection_termination}`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn modern_strict_without_auto_mtls_is_503_uc() {
    let extra = r#"
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: istio-system}
spec: {mtls: {mode: STRICT}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: httpbin, namespace: foo}
spec:
  host: httpbin.foo.svc.cluster.local
  trafficPolicy:
    connectionPool: {http: {http1MaxPendingRequests: 100}}
"#;
    let (world, sleep, httpbin) = sleep_httpbin(
        "1.24",
        "accessLogFile: /dev/stdout\nenableAutoMtls: false\n",
        3010,
        extra,
    );
    let ha = PodAddrs::from_pod_ip(
        httpbin["status"]["podIP"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap(),
    );
    let _app = app("httpbin", &[SocketAddr::new(IpAddr::V4(ha.app_ip), 8080)]).await;
    let mesh = Mesh::start(&world, &[&sleep, &httpbin]).await;
    let (status, body) = get_via(&sleep, "httpbin.foo", 8000, "/get").await;
    assert_eq!(status, 503);
    assert!(body.contains("connection termination"), "{body}");
    let line = log_line(
        &mesh.get("sleep").log_path(),
        &["503 UC upstream_reset_before_response_started{connection_termination}"],
    )
    .await;
    let server = log_line(
        &mesh.get("httpbin").log_path(),
        &["NR filter_chain_not_found"],
    )
    .await;
    println!("(b) {body:?}\n  client: {line}\n  server: {server}");
    let pids = mesh.pids();
    drop(mesh);
    assert_gone(&pids);
}

/// (c) `tls.mode: DISABLE` beats auto mTLS: plaintext to STRICT → 503.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dr_disable_beats_auto_mtls_against_strict() {
    let extra = r#"
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: foo}
spec: {mtls: {mode: STRICT}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: httpbin, namespace: foo}
spec:
  host: httpbin
  trafficPolicy: {tls: {mode: DISABLE}}
"#;
    let (world, sleep, httpbin) = sleep_httpbin("1.24", ACCESS_LOG_MESH, 3020, extra);
    let ha = PodAddrs::from_pod_ip(
        httpbin["status"]["podIP"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap(),
    );
    let _app = app("httpbin", &[SocketAddr::new(IpAddr::V4(ha.app_ip), 8080)]).await;
    let mesh = Mesh::start(&world, &[&sleep, &httpbin]).await;
    let (status, _) = get_via(&sleep, "httpbin.foo", 8000, "/get").await;
    assert_eq!(status, 503);
    let line = log_line(&mesh.get("sleep").log_path(), &["\" 503 UC "]).await;
    println!("(c) client: {line}");
    let pids = mesh.pids();
    drop(mesh);
    assert_gone(&pids);
}

/// (d) Healthy modern mesh: auto mTLS, STRICT, a DR without `tls` → 200.
/// Also what the plugin reads: the cluster's `istio.config` metadata and
/// auto-mTLS socket matches, `/clusters` endpoints, secrets, per-cluster
/// stats only with `statsInclusionPrefixes`, and `503 NC` for a route to
/// an undefined subset.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthy_auto_mtls_strict_and_what_the_plugin_reads() {
    let extra = r#"
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: istio-system}
spec: {mtls: {mode: STRICT}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: httpbin, namespace: foo}
spec:
  host: httpbin
  trafficPolicy:
    outlierDetection: {consecutive5xxErrors: 7, interval: 10s, baseEjectionTime: 30s, maxEjectionPercent: 50}
  subsets:
  - name: v1
    labels: {version: v1}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: httpbin, namespace: foo}
spec:
  hosts: [httpbin]
  http:
  - match: [{uri: {prefix: /nc}}]
    route: [{destination: {host: httpbin, subset: v3}}]
  - route: [{destination: {host: httpbin, subset: v1}}]
"#;
    let (mut world, mut sleep, httpbin) = sleep_httpbin("1.24", ACCESS_LOG_MESH, 3030, extra);
    // Only sleep asks for per-cluster stats.
    sleep["metadata"]["annotations"]["sidecar.istio.io/statsInclusionPrefixes"] =
        json!("cluster.outbound");
    for o in world.objects.iter_mut() {
        if o["metadata"]["name"] == sleep["metadata"]["name"] {
            *o = sleep.clone();
        }
    }
    let ha = PodAddrs::from_pod_ip(
        httpbin["status"]["podIP"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap(),
    );
    let _app = app("httpbin", &[SocketAddr::new(IpAddr::V4(ha.app_ip), 8080)]).await;
    let mesh = Mesh::start(&world, &[&sleep, &httpbin]).await;
    let (status, body) = get_via(&sleep, "httpbin.foo", 8000, "/get").await;
    assert_eq!((status, body.as_str()), (200, "ok from httpbin"));
    let client = log_line(
        &mesh.get("sleep").log_path(),
        &["\"GET /get HTTP/1.1\" 200 - via_upstream"],
    )
    .await;
    let server = log_line(
        &mesh.get("httpbin").log_path(),
        &["\"GET /get HTTP/1.1\" 200 - via_upstream", "inbound|8080||"],
    )
    .await;
    println!("(d) client: {client}\n    server: {server}");
    assert!(
        client.contains("outbound|8000|v1|httpbin.foo.svc.cluster.local"),
        "{client}"
    );
    assert!(
        server.contains("outbound_.8000_.v1_.httpbin.foo.svc.cluster.local"),
        "SNI in server log: {server}"
    );

    let (status, _) = get_via(&sleep, "httpbin.foo", 8000, "/nc").await;
    assert_eq!(status, 503);
    let nc = log_line(
        &mesh.get("sleep").log_path(),
        &["\"GET /nc HTTP/1.1\" 503 NC cluster_not_found"],
    )
    .await;
    println!("    undefined subset: {nc}");
    // Define subset v3 (same pods) and hot-update: the route's cluster appears.
    let mut fixed = world.clone();
    for o in fixed.objects.iter_mut() {
        if o["kind"] == "DestinationRule" {
            o["spec"]["subsets"]
                .as_array_mut()
                .unwrap()
                .push(json!({"name": "v3", "labels": {"app": "httpbin"}}));
        }
    }
    let pids_before = mesh.pids();
    mesh.update(&fixed).await;
    let (status, _) = get_via(&sleep, "httpbin.foo", 8000, "/nc").await;
    assert_eq!(status, 200);
    assert_eq!(mesh.pids(), pids_before);

    let sc = mesh.get("sleep");
    let d = dump(sc, "resource=dynamic_active_clusters").await;
    let c = cluster(&d, "outbound|8000||httpbin.foo.svc.cluster.local");
    assert_eq!(
        c["metadata"]["filter_metadata"]["istio"]["config"],
        "/apis/networking.istio.io/v1/namespaces/foo/destination-rule/httpbin"
    );
    assert_eq!(c["transport_socket_matches"][0]["name"], "tlsMode-istio");
    assert_eq!(c["transport_socket_matches"][1]["name"], "tlsMode-disabled");
    assert_eq!(c["common_lb_config"]["healthy_panic_threshold"], json!({}));
    assert_eq!(c["outlier_detection"]["consecutive_5xx"], 7);
    let v1 = cluster(&d, "outbound|8000|v1|httpbin.foo.svc.cluster.local");
    assert_eq!(v1["metadata"]["filter_metadata"]["istio"]["subset"], "v1");
    let tls = &c["transport_socket_matches"][0]["transport_socket"]["typed_config"];
    assert_eq!(
        tls["sni"],
        "outbound_.8000_._.httpbin.foo.svc.cluster.local"
    );
    assert_eq!(
        tls["common_tls_context"]["combined_validation_context"]["default_validation_context"]
            ["match_subject_alt_names"][0]["exact"],
        "spiffe://cluster.local/ns/foo/sa/httpbin"
    );

    let clusters = sc.admin_get("/clusters").await.unwrap();
    let host_line = format!(
        "outbound|8000||httpbin.foo.svc.cluster.local::{}:8080::health_flags::healthy",
        ha.pod_ip
    );
    assert!(
        clusters.contains(&host_line),
        "{host_line} not in /clusters"
    );

    let secrets = dump(sc, "resource=dynamic_active_secrets").await;
    let mut names: Vec<&str> = secrets["configs"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["name"].as_str())
        .collect();
    names.sort();
    assert_eq!(names, vec!["ROOTCA", "default"]);

    let info: Value = serde_json::from_str(&sc.admin_get("/server_info").await.unwrap()).unwrap();
    assert_eq!(info["command_line_options"]["service_cluster"], "sleep.foo");
    assert_eq!(
        info["node"]["id"],
        format!(
            "sidecar~{}~sleep-5f8d6b-abcde.foo~foo.svc.cluster.local",
            sleep["status"]["podIP"].as_str().unwrap()
        )
    );
    assert_eq!(info["node"]["metadata"]["ISTIO_VERSION"], "1.24.0");

    // Per-cluster stats: present with the annotation (sleep), absent without (httpbin).
    let stat = "cluster.outbound|8000||httpbin.foo.svc.cluster.local.upstream_cx_total";
    assert!(sc.admin_get("/stats").await.unwrap().contains(stat));
    let server_stats = mesh.get("httpbin").admin_get("/stats").await.unwrap();
    assert!(
        !server_stats.contains("cluster.outbound|"),
        "httpbin has per-cluster stats without the annotation"
    );
    assert!(server_stats.contains("cluster_manager.cds.update_success"));
    let pids = mesh.pids();
    drop(mesh);
    assert_gone(&pids);
}

/// (e) ISTIO_MUTUAL to a pod without a sidecar: the plaintext app answers
/// the TLS handshake → 503 UF,URX with WRONG_VERSION_NUMBER.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn istio_mutual_to_pod_without_sidecar_is_503_uf() {
    let (mut world, sleep, _) = sleep_httpbin("1.24", ACCESS_LOG_MESH, 3040, "");
    let plain = pod(
        "plain-6c9d7f-abcde",
        "plain",
        "plain",
        3042,
        false,
        &[8080],
        json!({}),
    );
    world.objects.push(plain.clone());
    world
        .objects
        .extend(service_with_endpoints("plain", &[&plain]));
    world.objects.extend(from_yaml(
        r#"
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: plain, namespace: foo}
spec:
  host: plain.foo.svc.cluster.local
  trafficPolicy: {tls: {mode: ISTIO_MUTUAL}}
"#,
    ));
    let pa = PodAddrs::from_pod_ip(plain["status"]["podIP"].as_str().unwrap().parse().unwrap());
    let _app = app("plain", &[SocketAddr::new(IpAddr::V4(pa.pod_ip), 8080)]).await;
    let mesh = Mesh::start(&world, &[&sleep]).await;
    let (status, body) = get_via(&sleep, "plain.foo", 8000, "/get").await;
    assert_eq!(status, 503, "{body}");
    let line = log_line(
        &mesh.get("sleep").log_path(),
        &["\"GET /get HTTP/1.1\" 503 ", "WRONG_VERSION_NUMBER"],
    )
    .await;
    // Envoy 1.40 prints the flags as `URX,UF` (older releases `UF,URX`).
    let flags: Vec<&str> = line
        .split("\" 503 ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .unwrap_or("")
        .split(',')
        .collect();
    assert!(flags.contains(&"UF") && flags.contains(&"URX"), "{line}");
    println!("(e) {body:?}\n    client: {line}");
    let pids = mesh.pids();
    drop(mesh);
    assert_gone(&pids);
}

/// An app bound to localhost: Istio ≥1.10 forwards inbound to the pod IP,
/// so the SERVER sidecar answers 503 UF (connection refused).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_on_localhost_fails_on_modern_istio() {
    let (world, sleep, httpbin) = sleep_httpbin("1.24", ACCESS_LOG_MESH, 3050, "");
    let ha = PodAddrs::from_pod_ip(
        httpbin["status"]["podIP"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap(),
    );
    let _app = app(
        "httpbin",
        &[SocketAddr::new(IpAddr::V4(ha.localhost), 8080)],
    )
    .await;
    let mesh = Mesh::start(&world, &[&sleep, &httpbin]).await;
    let (status, body) = get_via(&sleep, "httpbin.foo", 8000, "/get").await;
    assert_eq!(status, 503, "{body}");
    // From 1.24 the default inbound route retries `reset-before-request`
    // twice (istio/istio 1.24.0 route.go `BuildDefaultHTTPInboundRoute`), and
    // a refused connection is reset before the request: `URX,UF`.
    let server = log_line(
        &mesh.get("httpbin").log_path(),
        &["\" 503 URX,UF", "inbound|8080||", "Connection_refused"],
    )
    .await;
    println!("(localhost) {body:?}\n    server: {server}");
    let pids = mesh.pids();
    drop(mesh);
    assert_gone(&pids);
}

/// Envoy 1.40 accepts what the model renders for richer worlds in several
/// releases: subsets, a VirtualService, a TCP service, a ServiceEntry,
/// legacy and modern authn with port-level settings, JSON access logs, a
/// Telemetry resource with a CEL filter, the standard-metrics loggers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn envoy_accepts_rendered_config_for_every_release() {
    let extra = r#"
apiVersion: v1
kind: Service
metadata: {name: db, namespace: foo}
spec:
  selector: {app: httpbin}
  ports: [{name: tcp-db, port: 5432, targetPort: 5432}, {port: 9000, targetPort: 9000}]
---
apiVersion: networking.istio.io/v1alpha3
kind: DestinationRule
metadata: {name: httpbin, namespace: foo}
spec:
  host: httpbin
  trafficPolicy:
    loadBalancer: {simple: ROUND_ROBIN}
    connectionPool: {tcp: {maxConnections: 1, connectTimeout: 3s}, http: {http2MaxRequests: 5, maxRetries: 1, idleTimeout: 30s, maxRequestsPerConnection: 1}}
    outlierDetection: {consecutiveErrors: 1, consecutiveGatewayErrors: 2, minHealthPercent: 20}
    portLevelSettings:
    - port: {number: 8000}
      tls: {mode: ISTIO_MUTUAL, sni: custom.example}
  subsets:
  - name: v1
    labels: {version: v1}
    trafficPolicy: {tls: {mode: SIMPLE}}
---
apiVersion: networking.istio.io/v1alpha3
kind: VirtualService
metadata: {name: httpbin, namespace: foo}
spec:
  hosts: [httpbin]
  http:
  - match: [{headers: {x-canary: {exact: "1"}}, uri: {regex: "/a.*"}}]
    route: [{destination: {host: httpbin, subset: v1}, weight: 50}, {destination: {host: httpbin}, weight: 50}]
    retries: {attempts: 3, perTryTimeout: 2s}
    timeout: 5s
  - route: [{destination: {host: httpbin}}]
---
apiVersion: networking.istio.io/v1alpha3
kind: ServiceEntry
metadata: {name: ext, namespace: foo}
spec:
  hosts: [ext.example.com]
  ports: [{number: 8443, name: https, protocol: HTTPS}, {number: 8080, name: http, protocol: HTTP}]
  resolution: STATIC
  endpoints: [{address: 127.0.0.99}]
---
apiVersion: authentication.istio.io/v1alpha1
kind: Policy
metadata: {name: default, namespace: foo}
spec:
  peers: [{mtls: {mode: PERMISSIVE}}]
---
apiVersion: security.istio.io/v1beta1
kind: PeerAuthentication
metadata: {name: httpbin, namespace: foo}
spec:
  selector: {matchLabels: {app: httpbin}}
  mtls: {mode: PERMISSIVE}
  portLevelMtls: {"8080": {mode: STRICT}, "5432": {mode: DISABLE}}
---
apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: {name: logs, namespace: foo}
spec:
  accessLogging:
  - providers: [{name: envoy}]
    match: {mode: SERVER}
    filter: {expression: "response.code >= 400"}
"#;
    let mut all = Vec::new();
    for (i, (version, mesh_cfg)) in [
        ("1.0", ACCESS_LOG_MESH),
        (
            "1.4",
            "accessLogFile: /dev/stdout\naccessLogEncoding: JSON\nenableAutoMtls: true\n",
        ),
        ("1.9", "outboundTrafficPolicy: {mode: REGISTRY_ONLY}\n"),
        ("1.24", ACCESS_LOG_MESH),
        (
            "1.29",
            "accessLogFile: /dev/stdout\naccessLogEncoding: JSON\n",
        ),
        ("1.31", ""),
    ]
    .into_iter()
    .enumerate()
    {
        let base = 3100 + 10 * i as u32;
        let (mut world, sleep, _) = sleep_httpbin(version, mesh_cfg, base, extra);
        let httpbin = pod(
            "httpbin-7d9f8c-abcde",
            "httpbin",
            "httpbin",
            base + 1,
            true,
            &[8080, 5432, 9000],
            json!({"sidecar.istio.io/statsInclusionRegexps": "http.*"}),
        );
        for o in world.objects.iter_mut() {
            if o["metadata"]["name"] == "httpbin-7d9f8c-abcde" {
                *o = httpbin.clone();
            }
        }
        all.push((world, sleep, httpbin));
    }
    let pod_sets: Vec<[&Value; 2]> = all.iter().map(|(_, s, h)| [s, h]).collect();
    let meshes = futures::future::join_all(
        all.iter()
            .zip(&pod_sets)
            .map(|((world, _, _), pods)| Mesh::start(world, pods)),
    )
    .await;
    let mut pids = Vec::new();
    for (m, (world, _, _)) in meshes.iter().zip(&all) {
        pids.extend(m.pids());
        let d = dump(m.get("sleep"), "resource=dynamic_active_clusters").await;
        let n = d["configs"].as_array().unwrap().len();
        println!(
            "Istio {:?}: {n} clusters active in sleep's Envoy",
            world.istio_version()
        );
        assert!(n >= 8);
    }
    drop(meshes);
    assert_gone(&pids);
}

/// How long 20 sidecars take to start (all spawned, then waited on
/// concurrently). A printed measurement, not an assertion.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn measure_twenty_sidecars_start() {
    let mut objects = vec![istio_configmap("1.24", ACCESS_LOG_MESH)];
    let mut pods = Vec::new();
    for i in 0..20u32 {
        let name = format!("svc{i}");
        let p = pod(
            &format!("{name}-5f8d6b-abcde"),
            &name,
            "default",
            3200 + i,
            true,
            &[8080],
            json!({}),
        );
        objects.extend(service_with_endpoints(&name, &[&p]));
        objects.push(p.clone());
        pods.push(p);
    }
    let world = World::new(objects);
    let bin = envoy_bin();
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new().unwrap();
    let t0 = Instant::now();
    let rendered: Vec<_> = pods
        .iter()
        .map(|p| {
            (
                render_sidecar(&world, p, &pki).unwrap(),
                spec_for_pod(&world, p).unwrap(),
            )
        })
        .collect();
    let render_time = t0.elapsed();
    let t1 = Instant::now();
    let mut sidecars = Vec::new();
    for (p, (xds, spec)) in pods.iter().zip(&rendered) {
        sidecars.push(
            Sidecar::start(
                &bin,
                &dir.path().join(p["metadata"]["name"].as_str().unwrap()),
                spec,
                xds,
            )
            .unwrap(),
        );
    }
    let spawned = t1.elapsed();
    for r in futures::future::join_all(
        sidecars
            .iter()
            .map(|s| s.wait_ready(Duration::from_secs(25))),
    )
    .await
    {
        r.unwrap();
    }
    let ready = t1.elapsed();
    println!(
        "20 sidecars ({} clusters, {} listeners each): rendered in {render_time:?}, spawned in {spawned:?}, all ready {ready:?} after the first spawn",
        rendered[0].0.clusters.len(),
        rendered[0].0.listeners.len()
    );
    let pids: Vec<u32> = sidecars.iter().map(|s| s.pid()).collect();
    let t1 = Instant::now();
    drop(sidecars);
    println!("20 sidecars stopped in {:?}", t1.elapsed());
    assert_gone(&pids);
}

/// A resource Envoy refuses makes `update` fail fast with Envoy's reason
/// (instead of timing out), and the sidecar keeps running its last good config.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_config_is_reported() {
    let (world, sleep, _) = sleep_httpbin("1.24", ACCESS_LOG_MESH, 3060, "");
    let mesh = Mesh::start(&world, &[&sleep]).await;
    let sc = mesh.get("sleep");
    let mut bad = render_sidecar(&world, &sleep, &mesh.pki).unwrap();
    for r in bad.routes.iter_mut() {
        r["virtual_hosts"][0]["routes"][0]["match"] = json!({"safe_regex": {"regex": "(unclosed"}});
    }
    let t0 = Instant::now();
    let err = sc
        .update(&bad)
        .await
        .expect_err("Envoy should reject an invalid regex");
    let msg = format!("{err:#}");
    assert!(msg.contains("rejected"), "{msg}");
    assert!(t0.elapsed() < Duration::from_secs(10));
    println!(
        "rejection reported in {:?}: {}",
        t0.elapsed(),
        msg.lines().nth(1).unwrap_or("")
    );
    // The good config still serves.
    sc.update(&render_sidecar(&world, &sleep, &mesh.pki).unwrap())
        .await
        .unwrap();
    let pids = mesh.pids();
    drop(mesh);
    assert_gone(&pids);
}
