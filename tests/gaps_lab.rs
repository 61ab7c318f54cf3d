//! What the tool could not see is reported, and the run still succeeds:
//! RBAC that forbids port-forward, access logs turned off. Plus tls-check
//! against live sidecars.

mod common;
use common::*;
use mesh503_lab::lab::{Lab, LabOptions};

const URL: &str = "http://httpbin.foo:8000/get";

/// Everything readable, nothing forwardable: like a read-only on-call role.
const NO_PORT_FORWARD: &str = r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: read-only}
rules:
- apiGroups: ["", "apps", "discovery.k8s.io", "networking.istio.io", "security.istio.io", "authentication.istio.io"]
  resources: ["*"]
  verbs: ["get", "list", "watch"]
"#;

#[test]
fn forbidden_port_forward_is_a_gap_and_config_still_explains() {
    let dir = tempfile::tempdir().unwrap();
    let rbac = dir.path().join("role.yaml");
    std::fs::write(&rbac, NO_PORT_FORWARD).unwrap();
    let lab = Lab::start(
        &scenario("seed-strict-no-automtls.yaml"),
        LabOptions {
            rbac: Some(rbac),
            ..Default::default()
        },
    )
    .expect("lab");
    assert_eq!(request(&lab, "foo/sleep", URL).status, 503);
    let out = diagnose(&lab, &["--from", "deploy/sleep"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "the run succeeds with findings\n{}",
        text(&out)
    );
    let r = json(&out);
    let first = &r["findings"][0];
    assert_eq!(first["id"], "MTLS_PLAINTEXT_TO_STRICT", "{}", text(&out));
    assert!(
        first["confidence"].as_u64().unwrap() < 80,
        "config alone, no data-plane confirmation: {first}"
    );
    let gaps = r["gaps"].to_string();
    assert!(
        gaps.contains("15000") || gaps.contains("portforward"),
        "the missing port-forward is named: {gaps}"
    );
}

#[test]
fn tls_check_shows_the_conflict_from_live_sidecars() {
    let lab = start("seed-strict-no-automtls.yaml");
    let sleep = pod_name(&lab, "foo", "sleep-");
    let out = mesh503(
        Some(&lab),
        &[
            "tls-check",
            &format!("pod/{sleep}"),
            "svc/httpbin",
            "-n",
            "foo",
            "-o",
            "json",
        ],
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "a CONFLICT exits 1\n{}",
        text(&out)
    );
    let t = json(&out);
    let row = t["clients"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["host"] == "httpbin.foo.svc.cluster.local" && r["port"] == 8000)
        .unwrap_or_else(|| panic!("no httpbin row\n{}", text(&out)));
    assert_eq!(row["status"], "CONFLICT", "{row}");
    assert_eq!(row["client_tls"], "plaintext");
    assert_eq!(row["server_mode"], "STRICT");
    assert_eq!(row["rule"], "foo/httpbin");
}

#[test]
fn healthy_tls_check_has_no_conflict() {
    let lab = start("healthy.yaml");
    let sleep = pod_name(&lab, "foo", "sleep-");
    let out = mesh503(
        Some(&lab),
        &[
            "tls-check",
            &format!("pod/{sleep}"),
            "svc/httpbin",
            "-n",
            "foo",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("CONFLICT"),
        "{}",
        text(&out)
    );
}

#[test]
fn access_logs_off_is_a_gap_and_config_dumps_still_confirm() {
    let lab = start("seed-no-access-log.yaml");
    assert_eq!(request(&lab, "foo/sleep", URL).status, 503);
    let out = diagnose(&lab, &["--from", "deploy/sleep"]);
    let r = json(&out);
    let first = &r["findings"][0];
    assert_eq!(first["id"], "MTLS_PLAINTEXT_TO_STRICT", "{}", text(&out));
    assert!(
        first["evidence"].to_string().contains("config_dump"),
        "{first}"
    );
    assert!(
        !first["evidence"].to_string().contains("istio-proxy log"),
        "no log lines to cite: {first}"
    );
    let gaps = r["gaps"].to_string();
    assert!(gaps.contains("access logging is off"), "{gaps}");
}

/// `GET` from a sidecar's admin port: in a pod it is localhost:15000, which
/// the lab maps to the pod's own localhost address.
fn admin_get(pod_ip: &str, path: &str) -> String {
    use std::io::{Read, Write};
    let ip: std::net::Ipv4Addr = pod_ip.parse().unwrap();
    let addr = mesh503_lab::net::PodAddrs::from_pod_ip(ip).localhost;
    let mut s = std::net::TcpStream::connect((addr, 15000)).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut buf = String::new();
    s.read_to_string(&mut buf).unwrap();
    let (head, mut body) = buf.split_once("\r\n\r\n").unwrap();
    if !head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        return body.to_string();
    }
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap();
        if n == 0 {
            break;
        }
        out.push_str(&rest[..n]);
        body = &rest[n + 2..];
    }
    out
}

#[test]
fn tls_check_offline_on_saved_config_dumps() {
    let lab = start("seed-strict-no-automtls.yaml");
    let pods = kubectl(&lab, &["get", "pods", "-n", "foo", "-o", "json"], None);
    let pods = json(&pods);
    let dir = tempfile::tempdir().unwrap();
    let mut args = vec!["tls-check".to_string(), "-o".into(), "json".into()];
    for p in pods["items"].as_array().unwrap() {
        let ip = p["status"]["podIP"].as_str().unwrap();
        // What `kubectl exec … curl localhost:15000/config_dump?include_eds` saves.
        let dump = admin_get(ip, "/config_dump?include_eds");
        assert!(
            dump.contains("dynamic_active_clusters"),
            "{}",
            &dump[..dump.len().min(300)]
        );
        let f = dir
            .path()
            .join(format!("{}.json", p["metadata"]["name"].as_str().unwrap()));
        std::fs::write(&f, dump).unwrap();
        args.push("--config-dump".into());
        args.push(f.display().to_string());
    }
    drop(lab);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = mesh503(None, &args);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let t = json(&out);
    let row = t["clients"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| {
            r["host"] == "httpbin.foo.svc.cluster.local"
                && r["port"] == 8000
                && r["proxy"].as_str().unwrap().starts_with("sleep-")
        })
        .unwrap_or_else(|| panic!("{}", text(&out)));
    assert_eq!(row["status"], "CONFLICT", "{row}");
    assert_eq!(row["server_mode"], "STRICT");
}

#[test]
fn stats_are_used_when_the_pods_keep_them() {
    // sidecar.istio.io/statsInclusionPrefixes puts back what Istio's default
    // bootstrap drops: per-cluster outbound and listener counters.
    let mut objects =
        mesh503_lab::scenario::load(&scenario("seed-strict-no-automtls.yaml")).unwrap();
    for o in objects.iter_mut().filter(|o| o["kind"] == "Deployment") {
        o["spec"]["template"]["metadata"]["annotations"] = serde_json::json!({"sidecar.istio.io/statsInclusionPrefixes": "cluster.outbound,listener"});
    }
    let lab = Lab::start_objects(objects, LabOptions::default()).expect("lab");
    assert_eq!(request(&lab, "foo/sleep", URL).status, 503);
    let out = diagnose(&lab, &["--from", "deploy/sleep"]);
    let r = json(&out);
    let evidence = r["findings"][0]["evidence"].to_string();
    assert!(
        evidence.contains("upstream_cx_destroy_remote_with_active_rq"),
        "{evidence}"
    );
    assert!(evidence.contains("no_filter_chain_match"), "{evidence}");
    assert!(
        !r["gaps"]
            .to_string()
            .contains("excluded by Istio's default stats inclusion"),
        "{}",
        r["gaps"]
    );
}
