//! The lab API server driven by the installed `kubectl` (through the gcloud
//! dispatcher at /usr/bin/kubectl, which runs the kubectl minor matching the
//! server's version), by plain HTTP, and by a WebSocket client speaking the
//! port-forward protocol.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use mesh503_lab::api::{ApiOptions, ApiServer};
use mesh503_lab::kubeconfig::write_kubeconfig;
use mesh503_lab::resources::Registry;
use mesh503_lab::runtime::PodRuntime;
use mesh503_lab::store::Store;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

const KUBECTL: &str = "/usr/bin/kubectl";

const FIXTURES: &str = r#"
apiVersion: v1
kind: Namespace
metadata: {name: foo}
---
apiVersion: v1
kind: Namespace
metadata: {name: bar}
---
apiVersion: v1
kind: Pod
metadata:
  name: httpbin-7d8f9
  namespace: foo
  labels: {app: httpbin, version: v1}
spec:
  nodeName: lab
  containers:
  - {name: httpbin, image: kennethreitz/httpbin}
  - {name: istio-proxy, image: istio/proxyv2:1.24.0}
status:
  phase: Running
  podIP: 127.10.0.4
  containerStatuses:
  - {name: httpbin, ready: true, restartCount: 0, state: {running: {}}}
  - {name: istio-proxy, ready: true, restartCount: 1, state: {running: {}}}
---
apiVersion: v1
kind: Pod
metadata:
  name: sleep-5c4b7
  namespace: foo
  labels: {app: sleep}
spec:
  containers:
  - {name: sleep, image: curlimages/curl}
status:
  phase: Pending
  containerStatuses:
  - {name: sleep, ready: false, restartCount: 0, state: {waiting: {reason: ContainerCreating}}}
---
apiVersion: v1
kind: Service
metadata: {name: httpbin, namespace: foo}
spec:
  type: ClusterIP
  clusterIP: 10.96.0.20
  selector: {app: httpbin}
  ports: [{name: http, port: 8000, targetPort: 80, protocol: TCP}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: httpbin, namespace: foo}
spec:
  replicas: 1
  selector: {matchLabels: {app: httpbin}}
  template:
    metadata: {labels: {app: httpbin}}
    spec:
      containers: [{name: httpbin, image: kennethreitz/httpbin}]
status: {replicas: 1, readyReplicas: 1, updatedReplicas: 1, availableReplicas: 1}
---
apiVersion: networking.istio.io/v1alpha3
kind: DestinationRule
metadata: {name: httpbin, namespace: foo}
spec:
  host: httpbin.foo.svc.cluster.local
  trafficPolicy: {tls: {mode: ISTIO_MUTUAL}}
---
apiVersion: networking.istio.io/v1alpha3
kind: DestinationRule
metadata: {name: reviews, namespace: bar}
spec:
  host: reviews.bar.svc.cluster.local
"#;

/// PeerAuthentication only exists from Istio 1.5.
const PEER_AUTHN: &str = r#"
apiVersion: security.istio.io/v1beta1
kind: PeerAuthentication
metadata: {name: default, namespace: istio-system}
spec: {mtls: {mode: STRICT}}
"#;

/// Logs from files in a directory; port 15000 forwards to an echo server,
/// 15002 to a server that says "bye" and closes, anything else to a refused
/// port.
struct TestRuntime {
    logs: PathBuf,
    echo: SocketAddr,
    bye: SocketAddr,
    refused: SocketAddr,
}

impl PodRuntime for TestRuntime {
    fn log_path(&self, ns: &str, pod: &str, container: &str) -> Option<PathBuf> {
        let p = self.logs.join(format!("{ns}_{pod}_{container}.log"));
        p.exists().then_some(p)
    }
    fn forward_targets(&self, _ns: &str, pod: &str, port: u16) -> Vec<SocketAddr> {
        if pod != "httpbin-7d8f9" {
            return Vec::new();
        }
        match port {
            15000 => vec![self.refused, self.echo],
            15002 => vec![self.bye],
            _ => vec![self.refused],
        }
    }
}

struct Lab {
    dir: tempfile::TempDir,
    store: Store,
    server: ApiServer,
    kubeconfig: PathBuf,
}

fn load(store: &Store, yaml: &str) {
    for doc in serde_yaml::Deserializer::from_str(yaml) {
        let v = Value::deserialize(doc).expect("fixture YAML");
        if !v.is_null() {
            store.apply(v).expect("fixture applies");
        }
    }
}

async fn echo_server() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = s.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    addr
}

async fn bye_server() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            let _ = s.set_nodelay(true);
            let _ = s.write_all(b"bye").await;
        }
    });
    addr
}

async fn refused_addr() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    l.local_addr().unwrap()
    // dropped: connecting is refused
}

impl Lab {
    async fn start(istio_minor: u32, opts: ApiOptions) -> Lab {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(Registry::for_istio(istio_minor));
        load(&store, FIXTURES);
        if istio_minor >= 5 {
            load(&store, PEER_AUTHN);
        }
        let logs = dir.path().join("logs");
        std::fs::create_dir_all(&logs).unwrap();
        std::fs::write(
            logs.join("foo_httpbin-7d8f9_istio-proxy.log"),
            "[2025-01-01T00:00:00.000Z] \"GET /status/200 HTTP/1.1\" 200 - via_upstream\n[2025-01-01T00:00:01.000Z] \"GET /status/503 HTTP/1.1\" 503 UF upstream_reset_before_response_started\n",
        )
        .unwrap();
        std::fs::write(logs.join("foo_httpbin-7d8f9_httpbin.log"), "app started\n").unwrap();
        let runtime = TestRuntime {
            logs,
            echo: echo_server().await,
            bye: bye_server().await,
            refused: refused_addr().await,
        };
        let token = opts.token.clone();
        let server = ApiServer::start(store.clone(), Arc::new(runtime), opts)
            .await
            .unwrap();
        let kubeconfig = dir.path().join("kubeconfig");
        write_kubeconfig(&kubeconfig, &server.url(), token.as_deref(), None).unwrap();
        Lab {
            dir,
            store,
            server,
            kubeconfig,
        }
    }

    async fn with_minor(istio_minor: u32) -> Lab {
        Lab::start(
            istio_minor,
            ApiOptions {
                server_version: "v1.32.0".into(),
                ..ApiOptions::default()
            },
        )
        .await
    }

    async fn kubectl(&self, args: &[&str]) -> Output {
        assert!(
            Path::new(KUBECTL).exists(),
            "these tests drive the installed kubectl at {KUBECTL}"
        );
        let home = self.dir.path().join("home");
        std::fs::create_dir_all(&home).unwrap();
        tokio::process::Command::new(KUBECTL)
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .arg("--cache-dir")
            .arg(self.dir.path().join("cache"))
            .args(args)
            .env("HOME", &home)
            .env_remove("KUBECONFIG")
            .kill_on_drop(true)
            .output()
            .await
            .unwrap()
    }

    /// kubectl that must succeed; returns stdout.
    async fn ok(&self, args: &[&str]) -> String {
        let out = self.kubectl(args).await;
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "kubectl {args:?} failed: {stderr}\n{stdout}"
        );
        stdout
    }

    /// kubectl that must fail; returns stderr.
    async fn fails(&self, args: &[&str]) -> String {
        let out = self.kubectl(args).await;
        assert!(
            !out.status.success(),
            "kubectl {args:?} should fail but printed {}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.server.url())
    }
}

fn tokens(line: &str) -> Vec<&str> {
    line.split_whitespace().collect()
}

fn row<'a>(out: &'a str, first: &str) -> Vec<&'a str> {
    out.lines()
        .map(tokens)
        .find(|t| t.first() == Some(&first))
        .unwrap_or_else(|| panic!("no row {first} in\n{out}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_get_prints_server_side_tables() {
    let lab = Lab::with_minor(24).await;
    let out = lab.ok(&["get", "pods", "-n", "foo", "-o", "wide"]).await;
    let header = out.lines().next().unwrap();
    assert_eq!(
        tokens(header),
        vec![
            "NAME",
            "READY",
            "STATUS",
            "RESTARTS",
            "AGE",
            "IP",
            "NODE",
            "NOMINATED",
            "NODE",
            "READINESS",
            "GATES"
        ],
        "{out}"
    );
    let httpbin = row(&out, "httpbin-7d8f9");
    assert_eq!(httpbin[1..4], ["2/2", "Running", "1"], "{out}");
    assert_eq!(
        httpbin[5..],
        ["127.10.0.4", "lab", "<none>", "<none>"],
        "{out}"
    );
    let sleep = row(&out, "sleep-5c4b7");
    assert_eq!(sleep[1..4], ["0/1", "ContainerCreating", "0"], "{out}");

    // Without -o wide the priority-1 columns are hidden.
    let narrow = lab.ok(&["get", "pods", "-n", "foo"]).await;
    assert_eq!(
        tokens(narrow.lines().next().unwrap()),
        vec!["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    );

    let out = lab
        .ok(&["get", "destinationrules.networking.istio.io", "-A"])
        .await;
    assert_eq!(
        tokens(out.lines().next().unwrap()),
        vec!["NAMESPACE", "NAME", "AGE"]
    );
    assert_eq!(row(&out, "bar")[1], "reviews");
    assert_eq!(row(&out, "foo")[1], "httpbin");
    assert_eq!(out.lines().count(), 3, "{out}");

    let out = lab.ok(&["get", "svc", "-n", "foo"]).await;
    assert_eq!(
        tokens(out.lines().next().unwrap()),
        vec![
            "NAME",
            "TYPE",
            "CLUSTER-IP",
            "EXTERNAL-IP",
            "PORT(S)",
            "AGE"
        ]
    );
    assert_eq!(
        row(&out, "httpbin")[1..5],
        ["ClusterIP", "10.96.0.20", "<none>", "8000/TCP"]
    );

    let out = lab.ok(&["get", "deploy", "-n", "foo"]).await;
    assert_eq!(
        tokens(out.lines().next().unwrap()),
        vec!["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    );
    assert_eq!(row(&out, "httpbin")[1..4], ["1/1", "1", "1"]);

    // Label selectors and -o json go through the same server.
    let out = lab
        .ok(&[
            "get",
            "pods",
            "-n",
            "foo",
            "-l",
            "app in (httpbin),version!=v2",
            "-o",
            "name",
        ])
        .await;
    assert_eq!(out.trim(), "pod/httpbin-7d8f9");
    let out = lab
        .ok(&["get", "dr", "httpbin", "-n", "foo", "-o", "json"])
        .await;
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        v["apiVersion"], "networking.istio.io/v1",
        "preferred version"
    );
    assert_eq!(v["spec"]["trafficPolicy"]["tls"]["mode"], "ISTIO_MUTUAL");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_api_resources_follow_the_istio_era() {
    let new = Lab::with_minor(24).await;
    let out = new.ok(&["api-resources"]).await;
    let pa = row(&out, "peerauthentications");
    assert_eq!(
        pa[1..],
        ["pa", "security.istio.io/v1", "true", "PeerAuthentication"]
    );
    assert_eq!(row(&out, "destinationrules")[2], "networking.istio.io/v1");
    assert_eq!(row(&out, "pods")[1..], ["po", "v1", "true", "Pod"]);
    assert!(!out.contains("meshpolicies"), "{out}");
    let out = new.ok(&["get", "pa", "-A"]).await;
    assert_eq!(row(&out, "istio-system")[1], "default");

    let old = Lab::with_minor(0).await;
    let out = old.ok(&["api-resources"]).await;
    assert!(!out.contains("peerauthentications"), "{out}");
    assert_eq!(
        row(&out, "meshpolicies")[1..],
        ["authentication.istio.io/v1alpha1", "false", "MeshPolicy"]
    );
    assert_eq!(
        row(&out, "destinationrules")[2],
        "networking.istio.io/v1alpha3"
    );
    let err = old.fails(&["get", "pa", "-A"]).await;
    assert!(
        err.contains("the server doesn't have a resource type \"pa\""),
        "{err}"
    );
    // An uninstalled CRD's path is a plain 404, as on a real API server.
    let resp = reqwest::get(old.url("/apis/security.istio.io/v1beta1/peerauthentications"))
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    assert_eq!(resp.text().await.unwrap(), "404 page not found\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_logs_read_the_runtime_files() {
    let lab = Lab::with_minor(24).await;
    let out = lab
        .ok(&["logs", "httpbin-7d8f9", "-c", "istio-proxy", "-n", "foo"])
        .await;
    assert_eq!(out.lines().count(), 2, "{out}");
    assert!(
        out.contains("503 UF upstream_reset_before_response_started"),
        "{out}"
    );
    let out = lab
        .ok(&[
            "logs",
            "httpbin-7d8f9",
            "-c",
            "istio-proxy",
            "-n",
            "foo",
            "--tail=1",
        ])
        .await;
    assert_eq!(out.lines().count(), 1);
    assert!(out.contains("/status/503"));
    // kubectl picks the first container itself when there are two.
    let out = lab.kubectl(&["logs", "httpbin-7d8f9", "-n", "foo"]).await;
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout), "app started\n");
    assert!(String::from_utf8_lossy(&out.stderr).contains("Defaulted container \"httpbin\""));
    let err = lab.fails(&["logs", "sleep-5c4b7", "-n", "foo"]).await;
    assert!(
        err.contains(
            "container \"sleep\" in pod \"sleep-5c4b7\" is waiting to start: ContainerCreating"
        ),
        "{err}"
    );
    let err = lab.fails(&["logs", "nope", "-n", "foo"]).await;
    assert!(err.contains("pods \"nope\" not found"), "{err}");
    let err = lab
        .fails(&["logs", "httpbin-7d8f9", "-c", "nosuch", "-n", "foo"])
        .await;
    assert!(
        err.contains("container nosuch is not valid for pod httpbin-7d8f9"),
        "{err}"
    );

    // The API itself: no container with two containers is a 400 naming them.
    let resp = reqwest::get(lab.url("/api/v1/namespaces/foo/pods/httpbin-7d8f9/log"))
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let v: Value = serde_json::from_str(&resp.text().await.unwrap()).unwrap();
    assert_eq!(
        v["message"],
        "a container name must be specified for pod httpbin-7d8f9, choose one of: [httpbin istio-proxy]"
    );

    // follow=true streams what the file grows by, and ends with the pod.
    let mut resp = reqwest::get(lab.url(
        "/api/v1/namespaces/foo/pods/httpbin-7d8f9/log?container=httpbin&follow=true&tailLines=1",
    ))
    .await
    .unwrap();
    assert_eq!(resp.status(), 200);
    let mut next_chunk = async || {
        tokio::time::timeout(Duration::from_secs(3), resp.chunk())
            .await
            .expect("chunk in time")
            .unwrap()
    };
    assert_eq!(next_chunk().await.unwrap(), "app started\n");
    let path = lab.dir.path().join("logs/foo_httpbin-7d8f9_httpbin.log");
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    std::io::Write::write_all(&mut f, b"GET /status/503\n").unwrap();
    assert_eq!(next_chunk().await.unwrap(), "GET /status/503\n");
    lab.store
        .delete("", "Pod", Some("foo"), "httpbin-7d8f9")
        .unwrap();
    assert_eq!(next_chunk().await, None, "the stream ends with the pod");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_replace_and_patch_write_through_the_store() {
    let lab = Lab::with_minor(24).await;
    let mut changes = lab.store.subscribe();
    changes.borrow_and_update();
    let file = lab.dir.path().join("dr.yaml");
    std::fs::write(
        &file,
        "apiVersion: networking.istio.io/v1alpha3\nkind: DestinationRule\nmetadata:\n  name: httpbin\n  namespace: foo\nspec:\n  host: httpbin.foo.svc.cluster.local\n  trafficPolicy:\n    tls:\n      mode: DISABLE\n",
    )
    .unwrap();
    // No --validate=false: the OpenAPI v3 stubs tell kubectl the server
    // validates fields itself.
    let out = lab.ok(&["replace", "-f", file.to_str().unwrap()]).await;
    assert_eq!(
        out.trim(),
        "destinationrule.networking.istio.io/httpbin replaced"
    );
    assert!(changes.has_changed().unwrap(), "subscribers see the write");
    let get = |lab: &Lab| {
        lab.store
            .get(
                "networking.istio.io",
                "DestinationRule",
                Some("foo"),
                "httpbin",
            )
            .unwrap()
    };
    let dr = get(&lab);
    assert_eq!(dr["spec"]["trafficPolicy"]["tls"]["mode"], "DISABLE");
    assert_eq!(dr["metadata"]["generation"], 2);

    let out = lab
        .ok(&[
            "patch",
            "destinationrule",
            "httpbin",
            "-n",
            "foo",
            "--type",
            "merge",
            "-p",
            r#"{"spec":{"trafficPolicy":{"tls":{"mode":"ISTIO_MUTUAL"}},"subsets":[{"name":"v1","labels":{"version":"v1"}}]}}"#,
        ])
        .await;
    assert_eq!(
        out.trim(),
        "destinationrule.networking.istio.io/httpbin patched"
    );
    let dr = get(&lab);
    assert_eq!(dr["spec"]["trafficPolicy"]["tls"]["mode"], "ISTIO_MUTUAL");
    assert_eq!(dr["spec"]["subsets"][0]["name"], "v1");
    assert_eq!(dr["spec"]["host"], "httpbin.foo.svc.cluster.local");

    lab.ok(&[
        "patch",
        "dr",
        "httpbin",
        "-n",
        "foo",
        "--type",
        "json",
        "-p",
        r#"[{"op":"remove","path":"/spec/subsets"}]"#,
    ])
    .await;
    assert!(get(&lab)["spec"].get("subsets").is_none());
    // Default (strategic) patch on an Istio kind acts as a merge patch.
    lab.ok(&[
        "patch",
        "dr",
        "httpbin",
        "-n",
        "foo",
        "-p",
        r#"{"spec":{"host":"h2"}}"#,
    ])
    .await;
    assert_eq!(get(&lab)["spec"]["host"], "h2");
    assert_eq!(get(&lab)["metadata"]["generation"], 5);

    // Server-side dry run stores nothing.
    lab.ok(&[
        "patch",
        "dr",
        "httpbin",
        "-n",
        "foo",
        "--type",
        "merge",
        "--dry-run=server",
        "-p",
        r#"{"spec":{"host":"dry"}}"#,
    ])
    .await;
    assert_eq!(get(&lab)["spec"]["host"], "h2");

    // Strategic merge on a Deployment merges containers by name.
    lab.ok(&[
        "patch",
        "deploy",
        "httpbin",
        "-n",
        "foo",
        "-p",
        r#"{"spec":{"template":{"spec":{"containers":[{"name":"httpbin","image":"httpbin:2"}]}}}}"#,
    ])
    .await;
    let dep = lab
        .store
        .get("apps", "Deployment", Some("foo"), "httpbin")
        .unwrap();
    let containers = dep["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap();
    assert_eq!(containers.len(), 1);
    assert_eq!(containers[0]["image"], "httpbin:2");
    assert_eq!(
        dep["status"]["readyReplicas"], 1,
        "status survives main-resource patches"
    );

    lab.ok(&["scale", "deploy", "httpbin", "-n", "foo", "--replicas=3"])
        .await;
    let dep = lab
        .store
        .get("apps", "Deployment", Some("foo"), "httpbin")
        .unwrap();
    assert_eq!(dep["spec"]["replicas"], 3);

    // create / delete round trip.
    let file2 = lab.dir.path().join("vs.yaml");
    std::fs::write(
        &file2,
        "apiVersion: networking.istio.io/v1beta1\nkind: VirtualService\nmetadata: {name: httpbin, namespace: foo}\nspec: {hosts: [httpbin]}\n",
    )
    .unwrap();
    lab.ok(&["create", "-f", file2.to_str().unwrap()]).await;
    let err = lab.fails(&["create", "-f", file2.to_str().unwrap()]).await;
    assert!(err.contains("AlreadyExists"), "{err}");
    assert!(lab
        .store
        .get(
            "networking.istio.io",
            "VirtualService",
            Some("foo"),
            "httpbin"
        )
        .is_some());
    let out = lab.ok(&["delete", "vs", "httpbin", "-n", "foo"]).await;
    assert!(
        out.contains("virtualservice.networking.istio.io \"httpbin\" deleted"),
        "{out}"
    );
    assert!(lab
        .store
        .get(
            "networking.istio.io",
            "VirtualService",
            Some("foo"),
            "httpbin"
        )
        .is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_errors_not_found_forbidden_unauthorized() {
    let lab = Lab::with_minor(24).await;
    let out = lab.kubectl(&["get", "dr", "nope", "-n", "foo"]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains(
        "Error from server (NotFound): destinationrules.networking.istio.io \"nope\" not found"
    ));
    let err = lab
        .fails(&[
            "get",
            "pods",
            "-n",
            "foo",
            "--field-selector",
            "spec.foo=bar",
        ])
        .await;
    assert!(err.contains("field label not supported: spec.foo"), "{err}");

    let rbac = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
        "metadata": {"name": "mesh503-readonly"},
        "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}]});
    let restricted = Lab::start(
        24,
        ApiOptions {
            rbac: Some(rbac),
            server_version: "v1.33.0".into(),
            token: None,
            ..ApiOptions::default()
        },
    )
    .await;
    let out = restricted
        .ok(&["get", "pods", "-n", "foo", "-o", "name"])
        .await;
    assert!(out.contains("pod/httpbin-7d8f9"));
    let err = restricted.fails(&["get", "svc", "-n", "foo"]).await;
    assert!(
        err.contains("Error from server (Forbidden): services is forbidden: User \"lab\" cannot list resource \"services\" in API group \"\" in the namespace \"foo\""),
        "{err}"
    );
    let err = restricted
        .fails(&["logs", "httpbin-7d8f9", "-c", "istio-proxy", "-n", "foo"])
        .await;
    assert!(
        err.contains("cannot get resource \"pods/log\" in API group \"\" in the namespace \"foo\""),
        "{err}"
    );
    // `kubectl auth can-i` asks the same allowlist (SelfSubjectAccessReview).
    let out = restricted
        .ok(&["auth", "can-i", "list", "pods", "-n", "foo"])
        .await;
    assert_eq!(out.trim(), "yes");
    let out = restricted
        .kubectl(&[
            "auth",
            "can-i",
            "create",
            "pods",
            "--subresource=portforward",
            "-n",
            "foo",
        ])
        .await;
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "no");
    assert!(!out.status.success());
    let err = restricted.fails(&["get", "dr", "-A"]).await;
    assert!(
        err.contains("destinationrules.networking.istio.io is forbidden: User \"lab\" cannot list resource \"destinationrules\" in API group \"networking.istio.io\" at the cluster scope"),
        "{err}"
    );

    let locked = Lab::start(
        24,
        ApiOptions {
            token: Some("s3cret".into()),
            ..ApiOptions::default()
        },
    )
    .await;
    // kubectl never sends credentials to a plain-HTTP server, so it is 401.
    let err = locked.fails(&["get", "pods", "-n", "foo"]).await;
    assert!(err.contains("You must be logged in to the server"), "{err}");
    let client = reqwest::Client::new();
    let resp = client
        .get(locked.url("/api/v1/namespaces/foo/pods"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let v: Value = serde_json::from_str(&resp.text().await.unwrap()).unwrap();
    assert_eq!(
        (v["kind"].as_str(), v["reason"].as_str()),
        (Some("Status"), Some("Unauthorized"))
    );
    let resp = client
        .get(locked.url("/api/v1/namespaces/foo/pods"))
        .bearer_auth("s3cret")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let resp = client.get(locked.url("/healthz")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_port_forward_fails_with_a_clear_error() {
    let lab = Lab::with_minor(24).await;
    let started = Instant::now();
    let out = tokio::time::timeout(
        Duration::from_secs(8),
        lab.kubectl(&["port-forward", "-n", "foo", "pod/httpbin-7d8f9", "0:15000"]),
    )
    .await
    .expect("kubectl port-forward gives up at once");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("does not implement kubectl port-forward"),
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_secs(8));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_1_33_works_too() {
    // The dispatcher runs the kubectl minor matching the server.
    let lab = Lab::start(24, ApiOptions::default()).await;
    let out = lab.ok(&["version", "-o", "json"]).await;
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["serverVersion"]["gitVersion"], "v1.33.0");
    let out = lab.ok(&["get", "pods", "-n", "foo", "-o", "wide"]).await;
    assert_eq!(row(&out, "httpbin-7d8f9")[1..3], ["2/2", "Running"]);
    let file = lab.dir.path().join("dr.yaml");
    std::fs::write(
        &file,
        "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: httpbin, namespace: foo}\nspec: {host: changed}\n",
    )
    .unwrap();
    lab.ok(&["replace", "-f", file.to_str().unwrap()]).await;
    let dr = lab
        .store
        .get(
            "networking.istio.io",
            "DestinationRule",
            Some("foo"),
            "httpbin",
        )
        .unwrap();
    assert_eq!(dr["spec"]["host"], "changed");
}

// ---- HTTP-level behaviour -------------------------------------------------

async fn get_json(url: &str, accept: &str) -> (u16, String, Value) {
    let resp = reqwest::Client::new()
        .get(url)
        .header("Accept", accept)
        .send()
        .await
        .unwrap();
    let code = resp.status().as_u16();
    let ct = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let body = resp.text().await.unwrap();
    (
        code,
        ct,
        serde_json::from_str(&body).unwrap_or(Value::String(body)),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_lists_pagination_and_writes() {
    let lab = Lab::with_minor(24).await;
    let agg =
        "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json";
    let (code, ct, v) = get_json(&lab.url("/apis"), agg).await;
    assert_eq!(code, 200);
    assert_eq!(
        ct,
        "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
    );
    assert_eq!(v["kind"], "APIGroupDiscoveryList");
    let (_, ct, v) = get_json(&lab.url("/apis"), "application/json").await;
    assert_eq!(ct, "application/json");
    assert_eq!(v["kind"], "APIGroupList");
    let (_, _, v) = get_json(
        &lab.url("/api/v1"),
        "application/vnd.kubernetes.protobuf,application/json",
    )
    .await;
    let names: Vec<&str> = v["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    for want in [
        "pods",
        "pods/log",
        "pods/portforward",
        "pods/status",
        "services/status",
    ] {
        assert!(names.contains(&want), "{want} in {names:?}");
    }
    let (code, _, v) = get_json(&lab.url("/version"), "application/json").await;
    assert_eq!((code, v["gitVersion"].as_str()), (200, Some("v1.32.0")));

    // Lists: kind, apiVersion per item, selectors, pagination.
    let (_, _, v) = get_json(
        &lab.url("/apis/networking.istio.io/v1beta1/destinationrules"),
        "application/json",
    )
    .await;
    assert_eq!(v["kind"], "DestinationRuleList");
    assert_eq!(v["apiVersion"], "networking.istio.io/v1beta1");
    assert_eq!(v["items"][0]["apiVersion"], "networking.istio.io/v1beta1");
    assert_eq!(v["items"][0]["kind"], "DestinationRule");
    assert_eq!(v["items"][0]["metadata"]["namespace"], "bar");
    let (_, _, v) = get_json(
        &lab.url("/api/v1/pods?fieldSelector=status.phase%3DRunning"),
        "application/json",
    )
    .await;
    assert_eq!(v["items"].as_array().unwrap().len(), 1);
    let (code, _, v) = get_json(
        &lab.url("/api/v1/pods?fieldSelector=status.bogus%3Dx"),
        "application/json",
    )
    .await;
    assert_eq!((code, v["reason"].as_str()), (400, Some("BadRequest")));
    let (_, _, v) = get_json(
        &lab.url("/api/v1/pods?labelSelector=%21version"),
        "application/json",
    )
    .await;
    assert_eq!(v["items"][0]["metadata"]["name"], "sleep-5c4b7");
    for i in 0..5 {
        lab.store
            .apply(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": format!("cm-{i}"), "namespace": "foo"}}))
            .unwrap();
    }
    let mut seen = Vec::new();
    let mut cont = String::new();
    for page in 0.. {
        let (_, _, v) = get_json(
            &lab.url(&format!(
                "/api/v1/namespaces/foo/configmaps?limit=2&continue={cont}"
            )),
            "application/json",
        )
        .await;
        seen.extend(
            v["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i["metadata"]["name"].as_str().unwrap().to_string()),
        );
        match v["metadata"]["continue"].as_str() {
            Some(c) => cont = c.to_string(),
            None => break,
        }
        assert!(page < 5, "pagination ends");
    }
    assert_eq!(seen, vec!["cm-0", "cm-1", "cm-2", "cm-3", "cm-4"]);

    // Table with includeObject=Object.
    let (_, ct, v) = get_json(
        &lab.url("/api/v1/namespaces/foo/pods/httpbin-7d8f9?includeObject=Object"),
        "application/json;as=Table;v=v1;g=meta.k8s.io,application/json",
    )
    .await;
    assert!(ct.contains("as=Table"), "{ct}");
    assert_eq!(v["kind"], "Table");
    assert_eq!(v["rows"][0]["object"]["kind"], "Pod");

    // Secrets are served but always empty.
    let (code, _, v) = get_json(&lab.url("/api/v1/secrets"), "application/json").await;
    assert_eq!((code, v["items"].as_array().map(Vec::len)), (200, Some(0)));

    // Writes: POST, conflict on stale resourceVersion, dry run, delete.
    let client = reqwest::Client::new();
    let se = json!({"apiVersion": "networking.istio.io/v1alpha3", "kind": "ServiceEntry",
        "metadata": {"name": "ext"}, "spec": {"hosts": ["example.com"]}});
    let resp = client
        .post(
            lab.url("/apis/networking.istio.io/v1alpha3/namespaces/foo/serviceentries?dryRun=All"),
        )
        .header("Content-Type", "application/json")
        .body(se.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    assert!(lab
        .store
        .get("networking.istio.io", "ServiceEntry", Some("foo"), "ext")
        .is_none());
    let resp = client
        .post(lab.url("/apis/networking.istio.io/v1alpha3/namespaces/foo/serviceentries"))
        .header("Content-Type", "application/json")
        .body(se.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let created: Value = serde_json::from_str(&resp.text().await.unwrap()).unwrap();
    assert_eq!(created["metadata"]["namespace"], "foo");
    let mut stale = created.clone();
    stale["metadata"]["resourceVersion"] = json!("1");
    let resp = client
        .put(lab.url("/apis/networking.istio.io/v1/namespaces/foo/serviceentries/ext"))
        .header("Content-Type", "application/json")
        .body(stale.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 409);
    let v: Value = serde_json::from_str(&resp.text().await.unwrap()).unwrap();
    assert_eq!(v["reason"], "Conflict");
    let resp = client
        .patch(lab.url("/apis/networking.istio.io/v1/namespaces/foo/serviceentries/ext"))
        .header("Content-Type", "text/plain")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 415);
    let resp = client
        .delete(lab.url("/apis/networking.istio.io/v1/namespaces/foo/serviceentries/ext"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(lab
        .store
        .get("networking.istio.io", "ServiceEntry", Some("foo"), "ext")
        .is_none());
    let resp = client
        .delete(lab.url("/apis/networking.istio.io/v1/namespaces/foo/serviceentries/ext"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    let v: Value = serde_json::from_str(&resp.text().await.unwrap()).unwrap();
    assert_eq!(
        v,
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": "serviceentries.networking.istio.io \"ext\" not found", "reason": "NotFound",
            "details": {"name": "ext", "group": "networking.istio.io", "kind": "serviceentries"}, "code": 404})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_streams_current_state_then_changes_and_stops_on_shutdown() {
    let lab = Lab::with_minor(24).await;
    let resp = reqwest::get(lab.url(
        "/apis/networking.istio.io/v1/namespaces/foo/destinationrules?watch=true&timeoutSeconds=5",
    ))
    .await
    .unwrap();
    assert_eq!(resp.status(), 200);
    let mut resp = resp;
    let mut buf = String::new();
    let mut next_event = async || -> Value {
        loop {
            if let Some(i) = buf.find('\n') {
                let line: String = buf.drain(..=i).collect();
                return serde_json::from_str(&line).unwrap();
            }
            let chunk = tokio::time::timeout(Duration::from_secs(3), resp.chunk())
                .await
                .expect("event in time")
                .unwrap()
                .expect("stream open");
            buf.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    };
    let first = next_event().await;
    assert_eq!(first["type"], "ADDED");
    assert_eq!(first["object"]["metadata"]["name"], "httpbin");
    assert_eq!(first["object"]["apiVersion"], "networking.istio.io/v1");
    lab.store
        .apply(
            json!({"apiVersion": "networking.istio.io/v1beta1", "kind": "DestinationRule",
            "metadata": {"name": "other", "namespace": "bar"}, "spec": {"host": "x"}}),
        )
        .unwrap();
    lab.store
        .apply(
            json!({"apiVersion": "networking.istio.io/v1beta1", "kind": "DestinationRule",
            "metadata": {"name": "httpbin", "namespace": "foo"}, "spec": {"host": "y"}}),
        )
        .unwrap();
    let ev = next_event().await;
    assert_eq!(
        ev["type"], "MODIFIED",
        "the bar namespace event is filtered out"
    );
    assert_eq!(ev["object"]["spec"]["host"], "y");
    lab.store
        .delete(
            "networking.istio.io",
            "DestinationRule",
            Some("foo"),
            "httpbin",
        )
        .unwrap();
    assert_eq!(next_event().await["type"], "DELETED");

    // A streaming list: current state, then a BOOKMARK marking its end.
    let mut resp = reqwest::get(lab.url(
        "/api/v1/namespaces/foo/pods?watch=1&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true",
    ))
    .await
    .unwrap();
    let mut text = String::new();
    while text.matches('\n').count() < 3 {
        let chunk = tokio::time::timeout(Duration::from_secs(3), resp.chunk())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        text.push_str(std::str::from_utf8(&chunk).unwrap());
    }
    let events: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(events[0]["type"], "ADDED");
    assert_eq!(events[1]["type"], "ADDED");
    assert_eq!(events[2]["type"], "BOOKMARK");
    assert_eq!(
        events[2]["object"]["metadata"]["annotations"]["k8s.io/initial-events-end"],
        "true"
    );

    let started = Instant::now();
    lab.server.shutdown().await;
    let end = tokio::time::timeout(Duration::from_secs(3), resp.chunk())
        .await
        .expect("stream ends");
    assert!(matches!(end, Ok(None) | Err(_)), "{end:?}");
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_server_stops_serving() {
    let lab = Lab::with_minor(24).await;
    let addr = lab.server.addr();
    assert!(reqwest::get(lab.url("/healthz"))
        .await
        .unwrap()
        .status()
        .is_success());
    drop(lab.server);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

// ---- port-forward over WebSocket ------------------------------------------

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn open_forward(
    lab: &Lab,
    pod: &str,
    ports: &str,
) -> Result<Ws, tokio_tungstenite::tungstenite::Error> {
    let url = format!(
        "ws://{}/api/v1/namespaces/foo/pods/{pod}/portforward?ports={ports}",
        lab.server.addr()
    );
    let mut req = url.into_client_request().unwrap();
    // What kube-rs 5.0 offers.
    req.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        "v5.channel.k8s.io, v4.channel.k8s.io".parse().unwrap(),
    );
    let (ws, resp) = tokio_tungstenite::connect_async(req).await?;
    assert_eq!(
        resp.headers().get("sec-websocket-protocol").unwrap(),
        "v4.channel.k8s.io"
    );
    Ok(ws)
}

/// Next binary frame as (channel, payload), or None on Close.
async fn frame(ws: &mut Ws) -> Option<(u8, Vec<u8>)> {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(3), ws.next())
            .await
            .expect("frame in time")?
            .ok()?;
        match msg {
            Message::Binary(b) => return Some((b[0], b[1..].to_vec())),
            Message::Close(_) => return None,
            _ => {}
        }
    }
}

/// Finish the close handshake (whoever started it): at most one Close
/// message, then the stream ends, which for a client means the server
/// closed the TCP connection.
async fn finishes_close(ws: &mut Ws) {
    let mut closes = 0;
    loop {
        let next = tokio::time::timeout(Duration::from_secs(2), ws.next())
            .await
            .expect("close handshake completes");
        match next {
            None => return,
            Some(Ok(Message::Close(_))) if closes == 0 => closes += 1,
            other => panic!("stream ends after the close handshake: {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn port_forward_round_trips_bytes() {
    let lab = Lab::with_minor(24).await;
    let mut ws = open_forward(&lab, "httpbin-7d8f9", "15000").await.unwrap();
    assert_eq!(
        frame(&mut ws).await,
        Some((0, 15000u16.to_le_bytes().to_vec()))
    );
    assert_eq!(
        frame(&mut ws).await,
        Some((1, 15000u16.to_le_bytes().to_vec()))
    );
    let started = Instant::now();
    for i in 0..20 {
        let payload = format!("ping {i}");
        let mut msg = vec![0u8];
        msg.extend_from_slice(payload.as_bytes());
        ws.send(Message::binary(msg)).await.unwrap();
        let mut got = Vec::new();
        while got.len() < payload.len() {
            let (ch, data) = frame(&mut ws).await.expect("echo");
            assert_eq!(ch, 0);
            got.extend(data);
        }
        assert_eq!(got, payload.as_bytes());
    }
    // 20 round trips: no Nagle/delayed-ACK stalls (~40 ms each).
    assert!(
        started.elapsed() < Duration::from_millis(400),
        "{:?}",
        started.elapsed()
    );
    // A large transfer both ways does not deadlock.
    let big = vec![7u8; 1 << 20];
    let mut msg = vec![0u8];
    msg.extend_from_slice(&big);
    ws.send(Message::binary(msg)).await.unwrap();
    let mut got = 0;
    while got < big.len() {
        let (ch, data) = frame(&mut ws).await.expect("echo");
        assert_eq!(ch, 0);
        assert!(data.iter().all(|b| *b == 7));
        got += data.len();
    }
    assert_eq!(got, big.len());
    // The client closes; the server answers the close handshake.
    ws.close(None).await.unwrap();
    finishes_close(&mut ws).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn port_forward_reports_refused_connections_on_the_error_channel() {
    let lab = Lab::with_minor(24).await;
    let uid = lab
        .store
        .get("", "Pod", Some("foo"), "httpbin-7d8f9")
        .unwrap()["metadata"]["uid"]
        .as_str()
        .unwrap()
        .to_string();
    let mut ws = open_forward(&lab, "httpbin-7d8f9", "15001").await.unwrap();
    assert_eq!(frame(&mut ws).await, Some((0, vec![0x99, 0x3a])));
    assert_eq!(frame(&mut ws).await, Some((1, vec![0x99, 0x3a])));
    let (ch, msg) = frame(&mut ws).await.expect("error message");
    assert_eq!(ch, 1);
    assert_eq!(
        String::from_utf8(msg).unwrap(),
        format!(
            "error forwarding port 15001 to pod {uid}, uid : failed to connect: connection refused"
        )
    );
    assert_eq!(frame(&mut ws).await, None, "then the server closes");
    finishes_close(&mut ws).await;

    // Several ports in one request: each has its channels.
    let mut ws = open_forward(&lab, "httpbin-7d8f9", "15000,15001")
        .await
        .unwrap();
    let mut prefixes = Vec::new();
    for _ in 0..4 {
        prefixes.push(frame(&mut ws).await.unwrap());
    }
    assert_eq!(
        prefixes,
        vec![
            (0, 15000u16.to_le_bytes().to_vec()),
            (1, 15000u16.to_le_bytes().to_vec()),
            (2, 15001u16.to_le_bytes().to_vec()),
            (3, 15001u16.to_le_bytes().to_vec()),
        ]
    );
    let (ch, msg) = frame(&mut ws).await.unwrap();
    assert_eq!(ch, 3);
    assert!(String::from_utf8(msg).unwrap().contains("port 15001"));
    ws.send(Message::binary(b"\x00still here".to_vec()))
        .await
        .unwrap();
    assert_eq!(frame(&mut ws).await, Some((0, b"still here".to_vec())));
    ws.close(None).await.unwrap();
    finishes_close(&mut ws).await;

    // No such pod: a 404 before any upgrade.
    match open_forward(&lab, "nope", "15000").await {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => assert_eq!(resp.status(), 404),
        other => panic!("expected a 404, got {:?}", other.map(|_| ())),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn port_forward_closes_when_the_upstream_closes() {
    let lab = Lab::with_minor(24).await;
    let started = Instant::now();
    let mut ws = open_forward(&lab, "httpbin-7d8f9", "15002").await.unwrap();
    assert_eq!(frame(&mut ws).await.unwrap().0, 0);
    assert_eq!(frame(&mut ws).await.unwrap().0, 1);
    assert_eq!(frame(&mut ws).await, Some((0, b"bye".to_vec())));
    assert_eq!(frame(&mut ws).await, None);
    finishes_close(&mut ws).await;
    assert!(
        started.elapsed() < Duration::from_millis(300),
        "{:?}",
        started.elapsed()
    );
}
