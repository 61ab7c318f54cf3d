//! The scenarios of rejected config, stale config, headless services,
//! TCP/unnamed ports, ingress gateways and invalid Services, each driven by
//! the installed kubectl with real traffic through real Envoy 1.40, and
//! checked in what a cluster shows: HTTP answers, the Envoys' access logs
//! (`kubectl logs`) and admin `config_dump`s.
//!
//! Needs Envoy (`ENVOY_BIN` or `envoy` on PATH) and kubectl (`KUBECTL`);
//! `scripts/test` sets both up.

use mesh503_lab::curl::Response;
use mesh503_lab::lab::{Lab, LabOptions};
use mesh503_lab::net::PodAddrs;
use serde_json::Value;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

fn scenario(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../scenarios")
        .join(name)
}

fn start(name: &str) -> Lab {
    Lab::start(&scenario(name), LabOptions::default())
        .unwrap_or_else(|e| panic!("lab on {name}: {e:#}"))
}

/// Run the installed kubectl against the lab: (success, stdout+stderr).
fn kubectl(lab: &Lab, args: &[&str]) -> (bool, String) {
    let bin = std::env::var("KUBECTL").unwrap_or_else(|_| "kubectl".into());
    let out = Command::new(&bin)
        .arg("--kubeconfig")
        .arg(lab.kubeconfig())
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {bin}: {e} (scripts/test installs kubectl)"));
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn kubectl_ok(lab: &Lab, args: &[&str]) -> String {
    let (ok, out) = kubectl(lab, args);
    assert!(ok, "kubectl {args:?}: {out}");
    out
}

/// The pod of `ns` named `key`, else the first labelled `app: <key>`.
fn pod(lab: &Lab, ns: &str, key: &str) -> Value {
    let pods = lab.store().list("", "Pod", Some(ns));
    pods.iter()
        .find(|p| p["metadata"]["name"] == key)
        .or_else(|| pods.iter().find(|p| p["metadata"]["labels"]["app"] == key))
        .cloned()
        .unwrap_or_else(|| panic!("no pod {ns}/{key} (name or app label)"))
}

fn pod_name(lab: &Lab, ns: &str, prefix: &str) -> String {
    pod(lab, ns, prefix)["metadata"]["name"]
        .as_str()
        .unwrap()
        .to_string()
}

fn pod_ip(lab: &Lab, ns: &str, prefix: &str) -> String {
    pod(lab, ns, prefix)["status"]["podIP"]
        .as_str()
        .unwrap()
        .to_string()
}

/// GET a sidecar admin path (the pod's localhost:15000) as JSON.
fn admin(lab: &Lab, ns: &str, prefix: &str, path: &str) -> Value {
    let ip: std::net::Ipv4Addr = pod_ip(lab, ns, prefix).parse().unwrap();
    let url = format!("http://{}:15000{path}", PodAddrs::from_pod_ip(ip).localhost);
    let text = lab.block_on(async {
        reqwest::Client::builder()
            .no_proxy()
            .build()
            .unwrap()
            .get(&url)
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {url}: {e}"))
            .text()
            .await
            .unwrap()
    });
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{url}: {e}: {text}"))
}

/// The dynamic listener `name` of a `config_dump?resource=dynamic_listeners`.
fn dynamic_listener(dump: &Value, name: &str) -> Value {
    dump["configs"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|l| l["name"] == name)
        .cloned()
        .unwrap_or_else(|| panic!("no dynamic listener {name} in {dump}"))
}

/// The `error_state` whose `failed_configuration` is listener `name`.
fn rejected_listener(dump: &Value, name: &str) -> Value {
    dump["configs"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|l| l.get("error_state"))
        .find(|e| e["failed_configuration"]["name"] == name)
        .cloned()
        .unwrap_or_else(|| panic!("no rejected {name} in {dump}"))
}

fn cluster(dump: &Value, name: &str) -> Value {
    dump["configs"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["cluster"]["name"] == name)
        .cloned()
        .unwrap_or_else(|| panic!("no dynamic cluster {name}"))
}

fn get(lab: &Lab, from: &str, url: &str) -> Result<Response, String> {
    lab.curl(from, url, 1, 1).expect("curl ran").remove(0)
}

fn status(lab: &Lab, from: &str, url: &str) -> u16 {
    get(lab, from, url)
        .unwrap_or_else(|e| panic!("{from} → {url}: {e}"))
        .status
}

/// `kubectl logs` of a container after Envoy's 1 s access log flush.
fn logs(lab: &Lab, ns: &str, target: &str, container: &str) -> String {
    std::thread::sleep(Duration::from_millis(1200));
    kubectl_ok(lab, &["logs", "-n", ns, target, "-c", container])
}

/// `(transport_protocol, application_protocols, first filter, terminates TLS)`
/// of the chains of `listener` (a Listener) on `port`.
fn chains_on(listener: &Value, port: u64) -> Vec<(String, String, String, bool)> {
    listener["filter_chains"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|c| c["filter_chain_match"]["destination_port"] == port)
        .map(|c| {
            let m = &c["filter_chain_match"];
            let alpn: Vec<&str> = m["application_protocols"]
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let last = c["filters"].as_array().and_then(|f| f.last()).unwrap();
            (
                m["transport_protocol"].as_str().unwrap_or("").to_string(),
                alpn.join(","),
                last["name"].as_str().unwrap().to_string(),
                c.get("transport_socket").is_some(),
            )
        })
        .collect()
}

fn c(t: &str, alpn: &str, filter: &str, tls: bool) -> (String, String, String, bool) {
    let f = match filter {
        "hcm" => "envoy.filters.network.http_connection_manager",
        _ => "envoy.filters.network.tcp_proxy",
    };
    (t.into(), alpn.into(), f.into(), tls)
}

const HTTPBIN: &str = "http://httpbin.foo:8000/get";

#[test]
fn envoy_filter_nack_keeps_the_last_good_listener() {
    let lab = start("envoyfilter-nack.yaml");
    assert_eq!(status(&lab, "foo/sleep", HTTPBIN), 200);
    let step = scenario("steps/envoyfilter-nack-change.yaml");
    let out = kubectl_ok(&lab, &["apply", "-f", step.to_str().unwrap()]);
    assert!(
        out.contains("envoyfilter.networking.istio.io/httpbin-lua created"),
        "{out}"
    );
    lab.wait_synced().expect("a NACK is not a lab error");
    let nacks = lab.nacks();
    assert_eq!(nacks.len(), 1, "{nacks:?}");
    assert!(nacks[0].pod.starts_with("foo/httpbin-"), "{nacks:?}");
    assert_eq!(nacks[0].envoy_filters, vec!["foo/httpbin-lua"]);
    assert_eq!(nacks[0].rejected, vec!["listener virtualInbound"]);
    assert!(lab.errors().is_empty(), "{:?}", lab.errors());

    // The clients took their change (plaintext); the server kept STRICT.
    let r = get(&lab, "foo/sleep", HTTPBIN).unwrap();
    assert_eq!(r.status, 503, "{r}");
    let dump = admin(
        &lab,
        "foo",
        "httpbin",
        "/config_dump?resource=dynamic_listeners",
    );
    let vi = dynamic_listener(&dump, "virtualInbound");
    let active = &vi["active_state"]["listener"];
    assert_eq!(
        chains_on(active, 8080),
        vec![c("tls", "", "hcm", true)],
        "the last good (STRICT) chains keep serving"
    );
    assert!(vi["error_state"]["details"].is_string(), "{vi}");
    // Envoy also lists the rejection as a nameless entry with the failed config.
    let err = rejected_listener(&dump, "virtualInbound");
    let details = err["details"].as_str().unwrap();
    assert!(details.contains("script load error"), "{err}");
    assert!(err["last_update_attempt"].as_str().is_some(), "{err}");
    let failed = &err["failed_configuration"];
    assert_eq!(
        failed["@type"],
        "type.googleapis.com/envoy.config.listener.v3.Listener"
    );
    assert_eq!(
        chains_on(failed, 8080),
        vec![
            c(
                "tls",
                "istio,istio-peer-exchange,istio-http/1.0,istio-http/1.1,istio-h2",
                "hcm",
                true
            ),
            c("raw_buffer", "", "hcm", false),
        ],
        "the rejected config is PERMISSIVE"
    );
    assert!(failed.to_string().contains("envoy.filters.http.lua"));
    println!(
        "error_state: {}",
        serde_json::to_string(&serde_json::json!({
            "details": err["details"], "last_update_attempt": err["last_update_attempt"]
        }))
        .unwrap()
    );
    let client_log = logs(&lab, "foo", "deploy/sleep", "istio-proxy");
    assert!(
        client_log.contains(" 503 UC ") && client_log.contains("outbound|8000||httpbin"),
        "{client_log}"
    );
    let server_log = logs(&lab, "foo", "deploy/httpbin", "istio-proxy");
    assert!(
        server_log.contains("NR filter_chain_not_found"),
        "{server_log}"
    );
    let efs = kubectl_ok(&lab, &["get", "envoyfilters", "-n", "foo"]);
    assert!(efs.contains("httpbin-lua"), "{efs}");

    // Without the filter, the PERMISSIVE listener lands.
    kubectl_ok(&lab, &["delete", "envoyfilter", "-n", "foo", "httpbin-lua"]);
    lab.wait_synced().expect("synced");
    assert_eq!(status(&lab, "foo/sleep", HTTPBIN), 200);
    let dump = admin(
        &lab,
        "foo",
        "httpbin",
        "/config_dump?resource=dynamic_listeners",
    );
    let vi = dynamic_listener(&dump, "virtualInbound");
    assert!(vi.get("error_state").is_none(), "{vi}");
}

#[test]
fn envoy_filter_nack_from_the_start_leaves_no_listener() {
    let mut objects = mesh503_lab::scenario::load(&scenario("envoyfilter-nack.yaml")).unwrap();
    objects.extend(
        mesh503_lab::scenario::load(&scenario("steps/envoyfilter-nack-change.yaml")).unwrap(),
    );
    let lab = Lab::start_objects(objects, LabOptions::default()).expect("lab starts");
    assert_eq!(lab.nacks().len(), 1, "{:?}", lab.nacks());
    let dump = admin(
        &lab,
        "foo",
        "httpbin",
        "/config_dump?resource=dynamic_listeners",
    );
    let vi = dynamic_listener(&dump, "virtualInbound");
    assert!(
        vi.get("active_state").is_none() && vi.get("error_state").is_some(),
        "never a good virtualInbound: {vi}"
    );
    // Nothing takes the captured port: the client's connect fails.
    let r = get(&lab, "foo/sleep", HTTPBIN).unwrap();
    assert_eq!(r.status, 503, "{r}");
    let client_log = logs(&lab, "foo", "deploy/sleep", "istio-proxy");
    assert!(client_log.contains("UF"), "{client_log}");
}

#[test]
fn frozen_sidecar_keeps_the_old_rule() {
    let lab = start("config-freeze.yaml");
    assert_eq!(status(&lab, "foo/sleep", HTTPBIN), 503);
    let sleep = pod_name(&lab, "foo", "sleep");
    let name = "outbound|8000||httpbin.foo.svc.cluster.local";
    let before = cluster(
        &admin(
            &lab,
            "foo",
            "sleep",
            "/config_dump?resource=dynamic_active_clusters",
        ),
        name,
    );
    let pids = lab.envoy_pids();
    kubectl_ok(
        &lab,
        &[
            "annotate",
            "pod",
            "-n",
            "foo",
            &sleep,
            "lab.mesh503.io/freeze-config=true",
        ],
    );
    kubectl_ok(&lab, &["delete", "destinationrule", "-n", "foo", "httpbin"]);
    let fix = scenario("steps/config-freeze-fix.yaml");
    kubectl_ok(&lab, &["apply", "-f", fix.to_str().unwrap()]);
    lab.wait_synced().expect("synced");
    assert_eq!(lab.envoy_pids(), pids, "freezing restarts nothing");
    let drs = kubectl_ok(&lab, &["get", "destinationrules", "-n", "foo"]);
    assert!(
        drs.contains("httpbin-mtls") && !drs.contains("httpbin "),
        "{drs}"
    );
    assert_eq!(status(&lab, "foo/sleep", HTTPBIN), 503, "stale config");
    let stale = cluster(
        &admin(
            &lab,
            "foo",
            "sleep",
            "/config_dump?resource=dynamic_active_clusters",
        ),
        name,
    );
    assert_eq!(stale["version_info"], before["version_info"]);
    assert!(stale["cluster"].get("transport_socket").is_none());
    let config = stale["cluster"]["metadata"]["filter_metadata"]["istio"]["config"]
        .as_str()
        .unwrap();
    assert!(config.ends_with("/destination-rule/httpbin"), "{config}");

    // Unfrozen: the push goes through.
    kubectl_ok(
        &lab,
        &[
            "annotate",
            "pod",
            "-n",
            "foo",
            &sleep,
            "lab.mesh503.io/freeze-config-",
        ],
    );
    lab.wait_synced().expect("synced");
    assert_eq!(status(&lab, "foo/sleep", HTTPBIN), 200);
    let fresh = cluster(
        &admin(
            &lab,
            "foo",
            "sleep",
            "/config_dump?resource=dynamic_active_clusters",
        ),
        name,
    );
    let config = fresh["cluster"]["metadata"]["filter_metadata"]["istio"]["config"]
        .as_str()
        .unwrap();
    assert!(
        config.ends_with("/destination-rule/httpbin-mtls"),
        "{config}"
    );
    assert_ne!(fresh["version_info"], before["version_info"]);
}

#[test]
fn headless_service_has_no_per_endpoint_mtls() {
    let lab = start("headless-strict.yaml");
    let db0 = "http://db-0.db.foo.svc.cluster.local:8080/get";
    let db1 = "http://db-1.db.foo.svc.cluster.local:8080/get";
    assert_eq!(status(&lab, "foo/sleep", db1), 200);
    let r = get(&lab, "foo/sleep", db0).unwrap();
    assert_eq!(r.status, 503, "{r}");
    let by_ip = format!("http://{}:8080/get", pod_ip(&lab, "foo", "db-0"));
    assert_eq!(status(&lab, "foo/sleep", &by_ip), 503);
    let statuses: Vec<u16> = lab
        .curl("foo/sleep", "http://db-lb.foo:8080/get", 6, 1)
        .unwrap()
        .into_iter()
        .map(|r| r.unwrap().status)
        .collect();
    assert_eq!(statuses, vec![200; 6]);
    let dump = admin(
        &lab,
        "foo",
        "sleep",
        "/config_dump?resource=dynamic_active_clusters",
    );
    let headless = cluster(&dump, "outbound|8080||db.foo.svc.cluster.local");
    assert_eq!(headless["cluster"]["type"], "ORIGINAL_DST");
    assert!(headless["cluster"].get("transport_socket").is_none());
    assert!(headless["cluster"]
        .get("transport_socket_matches")
        .is_none());
    let lb = cluster(&dump, "outbound|8080||db-lb.foo.svc.cluster.local");
    assert!(lb["cluster"]["transport_socket_matches"].is_array());
    let client_log = logs(&lab, "foo", "deploy/sleep", "istio-proxy");
    assert!(
        client_log.lines().any(
            |l| l.contains(" 503 UC ") && l.contains("outbound|8080||db.foo.svc.cluster.local")
        ),
        "{client_log}"
    );
    let server_log = logs(&lab, "foo", "db-0", "istio-proxy");
    assert!(
        server_log.contains("NR filter_chain_not_found"),
        "{server_log}"
    );

    // Every endpoint with a sidecar: one cluster-wide mTLS socket.
    kubectl_ok(&lab, &["delete", "pod", "-n", "foo", "db-1"]);
    lab.wait_synced().expect("synced");
    assert_eq!(status(&lab, "foo/sleep", db0), 200);
    // The Service's own name resolves to its (now only) pod.
    assert_eq!(status(&lab, "foo/sleep", "http://db.foo:8080/get"), 200);
    let dump = admin(
        &lab,
        "foo",
        "sleep",
        "/config_dump?resource=dynamic_active_clusters",
    );
    let headless = cluster(&dump, "outbound|8080||db.foo.svc.cluster.local");
    assert_eq!(
        headless["cluster"]["transport_socket"]["name"],
        "envoy.transport_sockets.tls"
    );
}

#[test]
fn tcp_and_unnamed_ports_get_istios_chains() {
    let lab = start("tcp-and-unnamed-ports.yaml");
    let http_mtls = "istio-http/1.0,istio-http/1.1,istio-h2";
    let all = "istio,istio-peer-exchange,istio-http/1.0,istio-http/1.1,istio-h2";
    let dump = admin(
        &lab,
        "foo",
        "echo",
        "/config_dump?resource=dynamic_listeners",
    );
    let vi = dynamic_listener(&dump, "virtualInbound");
    let permissive = &vi["active_state"]["listener"];
    assert_eq!(
        chains_on(permissive, 8080),
        vec![
            c("tls", http_mtls, "hcm", true),
            c("raw_buffer", "http/1.1,h2c", "hcm", false),
            c("tls", "istio-peer-exchange,istio", "tcp", true),
            c("raw_buffer", "", "tcp", false),
            c("tls", "", "tcp", false),
        ]
    );
    assert_eq!(
        chains_on(permissive, 9000),
        vec![
            c("tls", all, "tcp", true),
            c("tls", "", "tcp", false),
            c("raw_buffer", "", "tcp", false),
        ]
    );
    let first_8080 = permissive["filter_chains"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["filter_chain_match"]["destination_port"] == 8080)
        .unwrap();
    println!("PERMISSIVE auto-port chain 1: {first_8080}");
    let dump = admin(
        &lab,
        "foo",
        "echo-strict",
        "/config_dump?resource=dynamic_listeners",
    );
    let strict = dynamic_listener(&dump, "virtualInbound");
    let strict = &strict["active_state"]["listener"];
    assert_eq!(
        chains_on(strict, 8081),
        vec![c("tls", http_mtls, "hcm", true), c("tls", "", "tcp", true)]
    );
    assert_eq!(chains_on(strict, 9001), vec![c("tls", "", "tcp", true)]);

    // Traffic lands on the chain of its kind.
    assert_eq!(
        status(&lab, "foo/sleep", "http://echo-tcp.foo:9000/get"),
        200
    );
    assert_eq!(
        status(&lab, "foo/sleep", "http://echo-auto.foo:8080/get"),
        200
    );
    assert_eq!(
        status(&lab, "foo/legacy", "http://echo-auto.foo:8080/get"),
        200
    );
    assert_eq!(
        status(&lab, "foo/sleep", "http://echo-strict-auto.foo:8081/get"),
        200
    );
    assert_eq!(
        status(&lab, "foo/sleep", "http://echo-strict-tcp.foo:9001/get"),
        200
    );
    let refused = get(&lab, "foo/legacy", "http://echo-strict-auto.foo:8081/get");
    assert!(refused.is_err(), "plaintext to STRICT: {refused:?}");
    // A port no Service targets: captured, served by the passthrough chains.
    let echo_ip = pod_ip(&lab, "foo", "echo");
    assert_eq!(chains_on(permissive, 9090), vec![]);
    assert_eq!(
        status(&lab, "foo/legacy", &format!("http://{echo_ip}:9090/get")),
        200
    );
    let echo_log = logs(&lab, "foo", "deploy/echo", "istio-proxy");
    assert!(
        echo_log
            .lines()
            .any(|l| l.contains("\"GET /get HTTP/1.1\" 200")
                && l.contains("InboundPassthroughCluster")),
        "passthrough line for 9090: {echo_log}"
    );
    assert!(
        echo_log
            .lines()
            .any(|l| l.contains("\"- - -\"") && l.contains("inbound|9000||")),
        "TCP line for 9000: {echo_log}"
    );
    assert!(
        echo_log
            .lines()
            .filter(|l| l.contains("\"GET /get HTTP/1.1\" 200") && l.contains("inbound|8080||"))
            .count()
            >= 2,
        "HTTP lines for 8080 (mTLS and plaintext): {echo_log}"
    );

    // A multi-port Service with an unnamed port is refused like kube-apiserver does.
    let bad = scenario("steps/multiport-unnamed-service.yaml");
    let (ok, out) = kubectl(&lab, &["apply", "-f", bad.to_str().unwrap()]);
    assert!(!ok, "{out}");
    assert!(
        out.contains("The Service \"web\" is invalid: spec.ports[1].name: Required value"),
        "{out}"
    );
    let (ok, out) = kubectl(&lab, &["get", "service", "-n", "foo", "web"]);
    assert!(!ok && out.contains("NotFound"), "{out}");
}

#[test]
fn ingress_gateway_answers_404_nr_and_503_uh() {
    let lab = start("ingress-gateway.yaml");
    let gw = "istio-system/istio-ingressgateway";
    let via = |url: &str| {
        lab.curl_via_gateway(gw, url, 1, 1)
            .expect("curl ran")
            .remove(0)
            .unwrap_or_else(|e| panic!("{url}: {e}"))
    };
    let ok = via("http://httpbin.example.com/get");
    assert_eq!(ok.status, 200, "{ok}");
    let nr = via("http://other.example.com/get");
    assert_eq!(nr.status, 404, "{nr}");
    let uh = via("http://shop.example.com/get");
    assert_eq!(uh.status, 503, "{uh}");
    assert_eq!(uh.body, "no healthy upstream");
    // The same through the CLI: `mesh503-lab curl --via-gateway URL`.
    let cli = Command::new(env!("CARGO_BIN_EXE_mesh503-lab"))
        .args(["curl", "--kubeconfig"])
        .arg(lab.kubeconfig())
        .args(["--via-gateway", "http://other.example.com/nowhere"])
        .output()
        .expect("mesh503-lab runs");
    let cli_out = String::from_utf8_lossy(&cli.stdout);
    assert!(
        cli_out.starts_with("HTTP/1.1 404"),
        "{cli_out}{}",
        String::from_utf8_lossy(&cli.stderr)
    );
    let pods = kubectl_ok(&lab, &["get", "pods", "-n", "istio-system"]);
    assert!(
        pods.contains("istio-ingressgateway-") && pods.contains("1/1"),
        "{pods}"
    );
    let log = logs(
        &lab,
        "istio-system",
        "deploy/istio-ingressgateway",
        "istio-proxy",
    );
    assert!(
        log.lines()
            .any(|l| l.contains(" 404 NR route_not_found ") && l.contains("other.example.com")),
        "{log}"
    );
    assert!(
        log.lines()
            .any(|l| l.contains(" 503 UH no_healthy_upstream ")
                && l.contains("outbound|8000||shop.foo.svc.cluster.local")),
        "{log}"
    );
    let dump = admin(
        &lab,
        "istio-system",
        "istio-ingressgateway",
        "/config_dump?resource=dynamic_listeners",
    );
    let l = dynamic_listener(&dump, "0.0.0.0_8080");
    assert!(l["active_state"].is_object(), "{l}");
    let info = admin(&lab, "istio-system", "istio-ingressgateway", "/server_info");
    assert!(
        info["command_line_options"]["service_node"]
            .as_str()
            .unwrap()
            .starts_with("router~"),
        "{info}"
    );
}
