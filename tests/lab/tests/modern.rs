//! The Istio people run today (1.31, the lab's default), driven with the
//! installed kubectl and real traffic through real Envoy: native sidecars,
//! access logs off by default (and on through a Telemetry resource), Istio's
//! standard metrics counted by Envoy, a legacy client outside the mesh
//! attributed to its pod by IP. The API's request log: `request_log.rs`.
//!
//! Needs Envoy (`ENVOY_BIN`) and kubectl (`KUBECTL`); `scripts/test` sets both.

use mesh503_lab::lab::{Lab, LabOptions};
use mesh503_lab::net::PodAddrs;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn scenario(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../scenarios")
        .join(name)
}

fn start(name: &str) -> Lab {
    Lab::start(&scenario(name), LabOptions::default())
        .unwrap_or_else(|e| panic!("lab on {name}: {e:#}"))
}

fn kubectl_bin() -> String {
    std::env::var("KUBECTL").unwrap_or_else(|_| "kubectl".into())
}

/// Run kubectl against the lab; (success, stdout, stderr).
fn kubectl_io(lab: &Lab, args: &[&str], stdin: Option<&str>) -> (bool, String, String) {
    use std::io::Write;
    let bin = kubectl_bin();
    let mut child = Command::new(&bin)
        .arg("--kubeconfig")
        .arg(lab.kubeconfig())
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {bin}: {e} (scripts/test installs kubectl)"));
    if let Some(s) = stdin {
        child.stdin.take().unwrap().write_all(s.as_bytes()).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// kubectl's stdout, failing the test when kubectl fails.
fn kubectl(lab: &Lab, args: &[&str]) -> String {
    let (ok, out, err) = kubectl_io(lab, args, None);
    assert!(ok, "kubectl {args:?} failed:\n{out}{err}");
    out
}

/// The pods of a namespace as `kubectl get pods -o json` lists them.
fn pods(lab: &Lab, ns: &str) -> Vec<Value> {
    let v: Value = serde_json::from_str(&kubectl(lab, &["get", "pods", "-n", ns, "-o", "json"]))
        .expect("pod list is JSON");
    v["items"].as_array().cloned().unwrap_or_default()
}

fn pod<'a>(pods: &'a [Value], prefix: &str) -> &'a Value {
    pods.iter()
        .find(|p| {
            p["metadata"]["name"]
                .as_str()
                .unwrap_or("")
                .starts_with(prefix)
        })
        .unwrap_or_else(|| panic!("no pod {prefix}*"))
}

fn pod_ip(p: &Value) -> String {
    p["status"]["podIP"].as_str().expect("podIP").to_string()
}

fn names(list: &Value) -> Vec<&str> {
    list.as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["name"].as_str())
        .collect()
}

/// GET a URL from the test (an Envoy admin or Prometheus address).
fn http_get(lab: &Lab, url: &str) -> String {
    lab.block_on(async {
        let c = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(5))
            .build()
            .unwrap();
        let r = c
            .get(url)
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {url}: {e}"));
        assert!(r.status().is_success(), "GET {url}: {}", r.status());
        r.text().await.unwrap()
    })
}

/// `kubectl logs` of a sidecar, after Envoy's one-second log flush.
fn proxy_log(lab: &Lab, ns: &str, deploy: &str) -> String {
    std::thread::sleep(Duration::from_millis(1100));
    kubectl(
        lab,
        &[
            "logs",
            "-n",
            ns,
            &format!("deploy/{deploy}"),
            "-c",
            "istio-proxy",
        ],
    )
}

/// Access log lines (Istio's TEXT format starts with `[<time>] "`).
fn access_lines(log: &str) -> Vec<&str> {
    log.lines()
        .filter(|l| l.starts_with('[') && l.contains("] \""))
        .collect()
}

/// The labels and value of every `<name>{…} <value>` sample in Prometheus text.
fn samples(text: &str, name: &str) -> Vec<(BTreeMap<String, String>, f64)> {
    let prefix = format!("{name}{{");
    text.lines()
        .filter_map(|l| {
            let rest = l.strip_prefix(&prefix)?;
            let (labels, value) = rest.rsplit_once("} ")?;
            let mut m = BTreeMap::new();
            for part in labels.split("\",") {
                let (k, v) = part.split_once("=\"")?;
                m.insert(k.to_string(), v.trim_end_matches('"').to_string());
            }
            Some((m, value.trim().parse().ok()?))
        })
        .collect()
}

/// The sample whose labels include all of `want`, polling while Envoy
/// flushes (the stats logger counts at stream end).
fn wait_sample(
    lab: &Lab,
    url: &str,
    name: &str,
    want: &[(&str, &str)],
) -> (BTreeMap<String, String>, f64) {
    let deadline = Instant::now() + Duration::from_secs(6);
    loop {
        let text = http_get(lab, url);
        let hit = samples(&text, name).into_iter().find(|(m, _)| {
            want.iter()
                .all(|(k, v)| m.get(*k).map(String::as_str) == Some(*v))
        });
        if let Some(h) = hit {
            return h;
        }
        if Instant::now() > deadline {
            panic!("no {name} with {want:?} at {url}:\n{text}");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The admin (`:15000`) and Prometheus (`:15090`) addresses of a pod's sidecar.
fn admin_url(ip: &str) -> String {
    let a = PodAddrs::from_pod_ip(ip.parse().unwrap());
    format!("http://{}:15000", a.localhost)
}

fn prom_url(ip: &str) -> String {
    format!("http://{ip}:15090/stats/prometheus")
}

#[test]
fn native_sidecars_in_init_containers_and_traffic_works() {
    let lab = start("native-sidecar.yaml");
    let shop = pods(&lab, "shop");
    for name in ["web", "catalog"] {
        let p = pod(&shop, name);
        let inits = &p["spec"]["initContainers"];
        assert_eq!(names(inits), vec!["istio-init", "istio-proxy"], "{p}");
        assert_eq!(inits[1]["restartPolicy"], "Always");
        assert!(!names(&p["spec"]["containers"]).contains(&"istio-proxy"));
        let st = &p["status"]["initContainerStatuses"];
        assert_eq!(st[0]["state"]["terminated"]["reason"], "Completed");
        assert_eq!(
            (
                st[1]["name"].as_str(),
                st[1]["started"].as_bool(),
                st[1]["ready"].as_bool()
            ),
            (Some("istio-proxy"), Some(true), Some(true))
        );
        assert!(st[1]["state"]["running"].is_object());
        let status: Value = serde_json::from_str(
            p["metadata"]["annotations"]["sidecar.istio.io/status"]
                .as_str()
                .unwrap(),
        )
        .unwrap();
        assert_eq!(status["containers"], Value::Null);
    }
    // The annotation keeps batch's sidecar classic.
    let batch = pod(&shop, "batch");
    assert!(names(&batch["spec"]["containers"]).contains(&"istio-proxy"));
    assert_eq!(names(&batch["spec"]["initContainers"]), vec!["istio-init"]);
    // What kubectl prints: the YAML and the READY column.
    let web_name = pod(&shop, "web")["metadata"]["name"]
        .as_str()
        .unwrap()
        .to_string();
    let yaml = kubectl(&lab, &["get", "pod", "-n", "shop", &web_name, "-o", "yaml"]);
    // The `initContainers:` block of the spec, up to the next spec field.
    let inits: Vec<&str> = yaml
        .lines()
        .skip_while(|l| *l != "  initContainers:")
        .skip(1)
        .take_while(|l| l.starts_with("  - ") || l.starts_with("    "))
        .collect();
    assert!(
        inits.contains(&"    name: istio-proxy") && inits.contains(&"    restartPolicy: Always"),
        "{yaml}"
    );
    let wide = kubectl(&lab, &["get", "pods", "-n", "shop", "-o", "wide"]);
    for l in wide.lines().skip(1) {
        assert!(
            l.contains(" 2/2 ") && l.contains("Running") && l.contains("lab-node"),
            "{wide}"
        );
    }
    // Traffic through native and classic sidecars.
    for from in ["shop/web", "shop/batch"] {
        let r = lab
            .curl(from, "http://catalog.shop/get", 1, 1)
            .unwrap()
            .remove(0)
            .unwrap();
        assert_eq!(r.status, 200, "{from}: {r}");
    }
    let server = proxy_log(&lab, "shop", "catalog");
    let web_ip = pod_ip(pod(&shop, "web"));
    let line = access_lines(&server)
        .into_iter()
        .find(|l| l.contains(&format!(" {web_ip}:")))
        .unwrap_or_else(|| {
            panic!("catalog's sidecar logged no request from web ({web_ip}):\n{server}")
        });
    // The server saw web's pod IP and reached its app from 127.0.0.6.
    assert!(
        line.contains("\" 200 - via_upstream") && line.contains(" 127.0.0.6:"),
        "{line}"
    );
    let client = proxy_log(&lab, "shop", "web");
    assert!(
        access_lines(&client)
            .iter()
            .any(|l| l.contains(&format!(" {web_ip}:"))
                && l.contains("outbound|80||catalog.shop.svc.cluster.local")),
        "web's own log shows its pod IP as the app's address:\n{client}"
    );
}

#[test]
fn istiod_env_turns_native_sidecars_off_mesh_wide() {
    let mut objects = mesh503_lab::scenario::load(&scenario("native-sidecar.yaml")).unwrap();
    objects.extend(
        mesh503_lab::scenario::parse(
            r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: istiod, namespace: istio-system, labels: {app: istiod, istio: pilot}}
spec:
  selector: {matchLabels: {app: istiod}}
  template:
    metadata: {labels: {app: istiod, istio: pilot}}
    spec:
      containers:
      - name: discovery
        image: docker.io/istio/pilot:1.31.0
        env: [{name: ENABLE_NATIVE_SIDECARS, value: "false"}]
"#,
            "istiod.yaml",
        )
        .unwrap(),
    );
    let lab = Lab::start_objects(objects, LabOptions::default()).expect("lab");
    let shop = pods(&lab, "shop");
    let web = pod(&shop, "web");
    assert!(
        names(&web["spec"]["containers"]).contains(&"istio-proxy"),
        "{web}"
    );
    assert_eq!(names(&web["spec"]["initContainers"]), vec!["istio-init"]);
    let r = lab
        .curl("shop/web", "http://catalog.shop/get", 1, 1)
        .unwrap()
        .remove(0)
        .unwrap();
    assert_eq!(r.status, 200, "{r}");
}

#[test]
fn default_profile_logs_nothing_but_metrics_count_the_503() {
    let lab = start("default-profile.yaml");
    let (ok, out, err) = kubectl_io(&lab, &["get", "telemetries.telemetry.istio.io", "-A"], None);
    assert!(
        ok && (out + &err).contains("No resources found"),
        "Telemetry is a served CRD"
    );
    for r in lab
        .curl("store/checkout", "http://inventory.store:8080/get", 3, 1)
        .unwrap()
    {
        let r = r.unwrap();
        assert_eq!(r.status, 503, "{r}");
    }
    for deploy in ["inventory", "checkout"] {
        let log = proxy_log(&lab, "store", deploy);
        assert!(
            access_lines(&log).is_empty(),
            "{deploy}: access logs are off:\n{log}"
        );
    }
    let store = pods(&lab, "store");
    let (inv_ip, chk_ip) = (
        pod_ip(pod(&store, "inventory")),
        pod_ip(pod(&store, "checkout")),
    );
    // Server side, from the Prometheus listener.
    let (labels, n) = wait_sample(
        &lab,
        &prom_url(&inv_ip),
        "envoy_istiocustom_istio_requests_total",
        &[("reporter", "destination"), ("response_code", "503")],
    );
    println!("server: {labels:?} {n}");
    assert_eq!(n, 3.0);
    for (k, v) in [
        ("response_flags", "URX,UF"),
        ("source_workload", "checkout"),
        ("source_workload_namespace", "store"),
        (
            "source_principal",
            "spiffe://cluster.local/ns/store/sa/checkout",
        ),
        ("destination_workload", "inventory"),
        ("destination_service", "inventory.store.svc.cluster.local"),
        ("destination_service_namespace", "store"),
        ("request_protocol", "http"),
        ("connection_security_policy", "mutual_tls"),
    ] {
        assert_eq!(
            labels.get(k).map(String::as_str),
            Some(v),
            "{k} in {labels:?}"
        );
    }
    // Client side.
    let (labels, n) = wait_sample(
        &lab,
        &prom_url(&chk_ip),
        "envoy_istiocustom_istio_requests_total",
        &[("reporter", "source"), ("response_code", "503")],
    );
    println!("client: {labels:?} {n}");
    assert_eq!(n, 3.0);
    for (k, v) in [
        ("response_flags", "-"),
        ("source_workload", "checkout"),
        ("destination_workload", "inventory"),
        ("destination_workload_namespace", "store"),
        (
            "destination_principal",
            "spiffe://cluster.local/ns/store/sa/inventory",
        ),
        ("destination_service", "inventory.store.svc.cluster.local"),
        ("destination_service_name", "inventory"),
        ("connection_security_policy", "unknown"),
    ] {
        assert_eq!(
            labels.get(k).map(String::as_str),
            Some(v),
            "{k} in {labels:?}"
        );
    }
    // The same counter in the admin /stats, kept by Istio's stats matcher
    // (prefix `istio`), while `cluster.outbound…` stats are not.
    let stats = http_get(&lab, &format!("{}/stats", admin_url(&inv_ip)));
    let line = stats
        .lines()
        .find(|l| {
            l.starts_with("istiocustom.istio_requests_total.reporter.destination.")
                && l.contains(".response_code.503.")
        })
        .unwrap_or_else(|| panic!("no istio_requests_total in /stats:\n{stats}"));
    println!("/stats: {line}");
    assert!(
        line.contains(".response_flags.URX,UF.") && line.ends_with(": 3"),
        "{line}"
    );
    assert!(
        !stats.lines().any(|l| l.starts_with("cluster.outbound|")),
        "Istio's stats matcher applies"
    );
}

#[test]
fn telemetry_resource_turns_access_logs_on_and_off() {
    let lab = start("telemetry-access-logs.yaml");
    let r = lab
        .curl("store/checkout", "http://inventory.store:8080/get", 1, 1)
        .unwrap()
        .remove(0)
        .unwrap();
    assert_eq!(r.status, 503, "{r}");
    let server = proxy_log(&lab, "store", "inventory");
    assert!(
        access_lines(&server)
            .iter()
            .any(|l| l.contains("\" 503 URX,UF ") && l.contains("inbound|9080||")),
        "{server}"
    );
    let client = proxy_log(&lab, "store", "checkout");
    assert!(
        access_lines(&client)
            .iter()
            .any(|l| l.contains("\" 503 - via_upstream")),
        "{client}"
    );
    // A namespace Telemetry with `disabled: true` beats the mesh-wide one.
    let off = "apiVersion: telemetry.istio.io/v1\nkind: Telemetry\nmetadata: {name: no-logs, namespace: store}\nspec:\n  accessLogging:\n  - disabled: true\n";
    let (ok, out, err) = kubectl_io(&lab, &["apply", "-f", "-"], Some(off));
    assert!(ok, "{out}{err}");
    lab.wait_synced().unwrap();
    // The update drains the old listener: a request on a connection opened
    // before it still runs (and is logged) under the old config, as in Envoy
    // everywhere; it closes that connection.
    lab.curl("store/checkout", "http://inventory.store:8080/get", 1, 1)
        .unwrap();
    let before = access_lines(&proxy_log(&lab, "store", "inventory")).len();
    lab.curl("store/checkout", "http://inventory.store:8080/get", 2, 1)
        .unwrap();
    let after = proxy_log(&lab, "store", "inventory");
    assert_eq!(access_lines(&after).len(), before, "no new lines:\n{after}");
    let inv_ip = pod_ip(pod(&pods(&lab, "store"), "inventory"));
    let (_, n) = wait_sample(
        &lab,
        &prom_url(&inv_ip),
        "envoy_istiocustom_istio_requests_total",
        &[("reporter", "destination"), ("response_code", "503")],
    );
    assert!(n >= 3.0, "metrics keep counting: {n}");
}

#[test]
fn legacy_client_in_another_namespace_is_attributed_by_pod_ip() {
    let lab = start("legacy-client-strict.yaml");
    let ok = lab
        .curl("billing/invoicer", "http://ledger.billing:8000/get", 1, 1)
        .unwrap()
        .remove(0)
        .unwrap();
    assert_eq!(ok.status, 200, "{ok}");
    let refused = lab
        .curl("reports/monthly", "http://ledger.billing:8000/get", 1, 1)
        .unwrap()
        .remove(0);
    assert!(refused.is_err(), "STRICT refuses plaintext: {refused:?}");
    let monthly = pods(&lab, "reports");
    let monthly_ip = pod_ip(pod(&monthly, "monthly"));
    assert!(
        !monthly_ip.starts_with("127.0.0."),
        "pod IPs never collide with Istio's own sources (127.0.0.6, 127.0.0.1): {monthly_ip}"
    );
    // `kubectl get pods -o wide` shows the same address.
    let wide = kubectl(&lab, &["get", "pods", "-n", "reports", "-o", "wide"]);
    assert!(wide.contains(&monthly_ip), "{wide}");
    let log = proxy_log(&lab, "billing", "ledger");
    let nr = access_lines(&log)
        .into_iter()
        .find(|l| l.contains(" NR filter_chain_not_found "))
        .unwrap_or_else(|| panic!("ledger logged no rejected connection:\n{log}"));
    println!("rejected: {nr}");
    // `… DOWNSTREAM_LOCAL_ADDRESS DOWNSTREAM_REMOTE_ADDRESS …`: ledger's pod
    // IP on its port, then monthly's pod IP.
    let ledger_ip = pod_ip(pod(&pods(&lab, "billing"), "ledger"));
    assert!(
        nr.contains(&format!(" {ledger_ip}:8080 {monthly_ip}:")),
        "DOWNSTREAM_REMOTE_ADDRESS is monthly's pod IP {monthly_ip}: {nr}"
    );
    // PERMISSIVE: the legacy call succeeds, logged and counted as plaintext.
    kubectl(
        &lab,
        &[
            "patch",
            "peerauthentication",
            "default",
            "-n",
            "billing",
            "--type",
            "merge",
            "-p",
            r#"{"spec":{"mtls":{"mode":"PERMISSIVE"}}}"#,
        ],
    );
    lab.wait_synced().unwrap();
    let r = lab
        .curl("reports/monthly", "http://ledger.billing:8000/get", 1, 1)
        .unwrap()
        .remove(0)
        .unwrap();
    assert_eq!(r.status, 200, "{r}");
    let (labels, n) = wait_sample(
        &lab,
        &prom_url(&ledger_ip),
        "envoy_istiocustom_istio_requests_total",
        &[
            ("reporter", "destination"),
            ("connection_security_policy", "none"),
        ],
    );
    println!("legacy, PERMISSIVE: {labels:?} {n}");
    assert_eq!(n, 1.0);
    for (k, v) in [
        ("source_workload", "unknown"),
        ("source_principal", "unknown"),
        ("response_code", "200"),
    ] {
        assert_eq!(
            labels.get(k).map(String::as_str),
            Some(v),
            "{k} in {labels:?}"
        );
    }
    let (mesh_client, _) = wait_sample(
        &lab,
        &prom_url(&ledger_ip),
        "envoy_istiocustom_istio_requests_total",
        &[
            ("reporter", "destination"),
            ("connection_security_policy", "mutual_tls"),
        ],
    );
    assert_eq!(
        mesh_client.get("source_workload").map(String::as_str),
        Some("invoicer")
    );
    let log = proxy_log(&lab, "billing", "ledger");
    let served = access_lines(&log)
        .into_iter()
        .find(|l| l.contains("\" 200 ") && l.contains(&format!(" {monthly_ip}:")))
        .unwrap_or_else(|| panic!("no 200 from monthly in:\n{log}"));
    assert!(
        served.contains(" 127.0.0.6:"),
        "the app is reached from 127.0.0.6: {served}"
    );
}

/// TCP services count connections (opened and closed at close, as
/// istio-proxy does without TCP metadata exchange) and bytes, on both sides.
#[test]
fn tcp_ports_count_connections_in_standard_metrics() {
    let objects = mesh503_lab::scenario::parse(
        r#"
apiVersion: v1
kind: Namespace
metadata: {name: data, labels: {istio-injection: enabled}}
---
apiVersion: v1
kind: Service
metadata: {name: pg, namespace: data}
spec:
  selector: {app: pg}
  ports: [{name: tcp-pg, port: 5432, targetPort: 5432}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: pg, namespace: data}
spec:
  selector: {matchLabels: {app: pg}}
  template:
    metadata: {labels: {app: pg}}
    spec:
      containers: [{name: pg, image: example.com/pg, ports: [{containerPort: 5432}]}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: api, namespace: data}
spec:
  selector: {matchLabels: {app: api}}
  template:
    metadata: {labels: {app: api}}
    spec:
      containers: [{name: api, image: example.com/api}]
"#,
        "tcp.yaml",
    )
    .unwrap();
    let lab = Lab::start_objects(objects, LabOptions::default()).expect("lab");
    // The lab's app speaks HTTP; on a TCP port the sidecars only relay bytes.
    let r = lab
        .curl("data/api", "http://pg.data:5432/get", 1, 1)
        .unwrap()
        .remove(0)
        .unwrap();
    assert_eq!(r.status, 200, "{r}");
    let data = pods(&lab, "data");
    let (pg_ip, api_ip) = (pod_ip(pod(&data, "pg")), pod_ip(pod(&data, "api")));
    for (ip, reporter, policy) in [
        (&api_ip, "source", "unknown"),
        (&pg_ip, "destination", "mutual_tls"),
    ] {
        for name in [
            "envoy_istiocustom_istio_tcp_connections_opened_total",
            "envoy_istiocustom_istio_tcp_connections_closed_total",
        ] {
            let (labels, n) = wait_sample(
                &lab,
                &prom_url(ip),
                name,
                &[
                    ("reporter", reporter),
                    ("destination_service", "pg.data.svc.cluster.local"),
                ],
            );
            println!("{name}: {labels:?} {n}");
            assert_eq!(n, 1.0);
            for (k, v) in [
                ("request_protocol", "tcp"),
                ("connection_security_policy", policy),
                (
                    "source_workload",
                    if reporter == "source" {
                        "api"
                    } else {
                        "unknown"
                    },
                ),
                ("destination_workload", "pg"),
                (
                    "source_principal",
                    "spiffe://cluster.local/ns/data/sa/default",
                ),
            ] {
                assert_eq!(
                    labels.get(k).map(String::as_str),
                    Some(v),
                    "{k} in {labels:?}"
                );
            }
        }
        let (_, sent) = wait_sample(
            &lab,
            &prom_url(ip),
            "envoy_istiocustom_istio_tcp_sent_bytes_total",
            &[("reporter", reporter)],
        );
        assert!(sent > 0.0, "{reporter}: bytes sent counted");
    }
}
