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
    let out = mesh503(
        Some(&lab),
        &[
            "diagnose",
            "svc/httpbin",
            "-n",
            "foo",
            "-o",
            "json",
            "--from",
            "deploy/sleep",
        ],
    );
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
    let pods = kubectl(&lab, &["get", "pods", "-n", "foo", "-o", "name"], None);
    let sleep = String::from_utf8_lossy(&pods.stdout)
        .lines()
        .find(|l| l.contains("sleep-"))
        .map(|l| l.trim_start_matches("pod/").to_string())
        .expect("a sleep pod");
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
    let pods = kubectl(&lab, &["get", "pods", "-n", "foo", "-o", "name"], None);
    let sleep = String::from_utf8_lossy(&pods.stdout)
        .lines()
        .find(|l| l.contains("sleep-"))
        .map(|l| l.trim_start_matches("pod/").to_string())
        .unwrap();
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
