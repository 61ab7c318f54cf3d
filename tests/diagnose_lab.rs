//! End to end: real Envoy sidecars in the lab fail the way Istio's do, and
//! `kubectl mesh503 diagnose` names the cause and a fix that really works.

mod common;
use common::*;

const URL: &str = "http://httpbin.foo:8000/get";

/// The seed and its modern forms: plaintext client → STRICT server.
fn seed_case(scenario: &str, replaced_rule: Option<&str>) {
    let lab = start(scenario);
    let before = request(&lab, "foo/sleep", URL);
    assert_eq!(
        before.status, 503,
        "{scenario}: expected a real 503 from Envoy, got {before}"
    );

    let out = diagnose(&lab, &[]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "error findings exit 1\n{}",
        text(&out)
    );
    let report = json(&out);
    assert_eq!(report["schema"], "mesh503.io/report/v2");
    let first = &report["findings"][0];
    assert_eq!(
        first["id"],
        "MTLS_PLAINTEXT_TO_STRICT",
        "{scenario}: first finding\n{}",
        text(&out)
    );
    assert_eq!(first["severity"], "error");
    let why = first["explanation"].to_string();
    assert!(
        why.contains("foo/httpbin"),
        "{scenario}: names the applying rule: {why}"
    );
    if let Some(rule) = replaced_rule {
        assert!(
            why.contains(rule),
            "{scenario}: names the replaced rule {rule}: {why}"
        );
    }
    let evidence = first["evidence"].to_string();
    assert!(
        evidence.contains("data-plane"),
        "{scenario}: confirmed by the data plane: {evidence}"
    );
    assert!(first["confidence"].as_u64().unwrap() >= 80, "{first}");
    // Nobody named the client: the server's access log did (its refused
    // connection came from the sleep pod's IP, a 127.N address in the lab,
    // tests/lab/README.md "Addressing"), not a /clusters sample.
    let checked = report["checked"].to_string();
    assert!(
        checked.contains("is the caller (downstream address)"),
        "{scenario}: the client is attributed from the server's log: {checked}"
    );

    // The printed fix, applied through the API, turns the 503 into a 200.
    let fix = first["fixes"]["chosen"]["manifests"][0]["yaml"]
        .as_str()
        .expect("fix yaml");
    let applied = kubectl(&lab, &["replace", "-f", "-"], Some(fix));
    assert!(
        applied.status.success(),
        "kubectl replace of the fix\n{}",
        text(&applied)
    );
    lab.wait_synced().expect("sidecars updated");
    let after = request(&lab, "foo/sleep", URL);
    assert_eq!(after.status, 200, "{scenario}: after the fix: {after}");
}

#[test]
fn seed_2018_meshpolicy_and_dr_without_tls() {
    seed_case("seed-2018.yaml", Some("istio-system/default"));
}

#[test]
fn seed_modern_strict_without_auto_mtls() {
    seed_case("seed-strict-no-automtls.yaml", Some("istio-system/default"));
}

#[test]
fn seed_modern_tls_disable_beats_auto_mtls() {
    seed_case("seed-disable-automtls.yaml", None);
}

#[test]
fn healthy_control_has_no_error_finding() {
    let lab = start("healthy.yaml");
    assert_eq!(request(&lab, "foo/sleep", URL).status, 200);
    let out = diagnose(&lab, &["--from", "deploy/sleep"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let report = json(&out);
    let errors: Vec<_> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["severity"] == "error")
        .collect();
    assert!(
        errors.is_empty(),
        "healthy mesh has no error finding: {errors:?}"
    );
    assert!(
        !report["checked"].as_array().unwrap().is_empty(),
        "says what it checked"
    );
    let table = mesh503(
        Some(&lab),
        &[
            "diagnose",
            "svc/httpbin",
            "-n",
            "foo",
            "--from",
            "deploy/sleep",
        ],
    );
    assert!(
        String::from_utf8_lossy(&table.stdout).contains("No cause of 503s found"),
        "{}",
        text(&table)
    );
}

#[test]
fn mtls_to_a_server_without_sidecar() {
    let lab = start("mtls-to-no-sidecar.yaml");
    let r = request(&lab, "foo/sleep", URL);
    assert_eq!(r.status, 503, "{r}");
    let out = diagnose(&lab, &["--from", "deploy/sleep"]);
    let report = json(&out);
    assert_eq!(
        report["findings"][0]["id"],
        "MTLS_TO_PLAINTEXT_SERVER",
        "{}",
        text(&out)
    );
    assert!(
        report["findings"][0]["fixes"]["chosen"]["manifests"][0]["yaml"]
            .as_str()
            .unwrap()
            .contains("DISABLE")
    );
}

#[test]
fn table_output_reads_like_a_report() {
    let lab = start("seed-strict-no-automtls.yaml");
    let _ = request(&lab, "foo/sleep", URL);
    let out = mesh503(Some(&lab), &["diagnose", "svc/httpbin", "-n", "foo"]);
    let s = String::from_utf8_lossy(&out.stdout);
    for want in [
        "MTLS_PLAINTEXT_TO_STRICT",
        "Why:",
        "Evidence:",
        "Fix:",
        "ISTIO_MUTUAL",
        "Checked:",
    ] {
        assert!(
            s.contains(want),
            "table output lacks {want:?}\n{}",
            text(&out)
        );
    }
    assert!(!s.contains("\u{1b}["), "NO_COLOR: no ANSI escapes");
    // Progress goes to stderr only when stderr is a terminal (docs/output.md).
    assert!(
        out.stderr.is_empty(),
        "piped stderr: no progress\n{}",
        text(&out)
    );
}

#[test]
fn snapshot_round_trip_gives_the_same_report() {
    let lab = start("seed-2018.yaml");
    let _ = request(&lab, "foo/sleep", URL);
    let dir = tempfile::tempdir().unwrap();
    let snap = dir.path().join("snap.json");
    let live = mesh503(
        Some(&lab),
        &[
            "diagnose",
            "svc/httpbin",
            "-n",
            "foo",
            "-o",
            "json",
            "--save-snapshot",
            snap.to_str().unwrap(),
        ],
    );
    drop(lab);
    let offline = mesh503(
        None,
        &[
            "diagnose",
            "--snapshot",
            snap.to_str().unwrap(),
            "-o",
            "json",
        ],
    );
    assert_eq!(json(&live), json(&offline), "same code path, same report");
}

#[test]
fn near_misses_do_not_fire() {
    // PERMISSIVE server takes the plaintext; a DISABLE rule in an unrelated
    // namespace is not exported to the client.
    let lab = start("near-miss-permissive.yaml");
    assert_eq!(request(&lab, "foo/sleep", URL).status, 200);
    let out = diagnose(&lab, &["--from", "deploy/sleep"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let r = json(&out);
    assert!(
        r["findings"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["severity"] != "error"),
        "{}",
        text(&out)
    );
}

/// Run diagnose with --from deploy/sleep; the first finding's id and the report.
fn first_finding(lab: &mesh503_lab::lab::Lab) -> (String, serde_json::Value) {
    let out = diagnose(lab, &["--from", "deploy/sleep"]);
    let r = json(&out);
    (r["findings"][0]["id"].as_str().unwrap_or("").to_string(), r)
}

#[test]
fn auto_mtls_cannot_see_a_workload_disable() {
    let lab = start("automtls-blind-spot.yaml");
    assert_eq!(request(&lab, "foo/sleep", URL).status, 503);
    let (id, r) = first_finding(&lab);
    assert_eq!(id, "MTLS_TO_PLAINTEXT_SERVER", "{r:#}");
    let why = r["findings"][0]["explanation"].to_string();
    assert!(
        why.contains("foo/httpbin-plaintext") && why.contains("32788"),
        "{why}"
    );
}

#[test]
fn two_rules_for_one_host_first_traffic_policy_wins() {
    let lab = start("two-rules-one-host.yaml");
    assert_eq!(request(&lab, "foo/sleep", URL).status, 503);
    let (id, r) = first_finding(&lab);
    assert_eq!(id, "MTLS_PLAINTEXT_TO_STRICT", "{r:#}");
    let why = r["findings"][0]["explanation"].to_string();
    assert!(
        why.contains("foo/httpbin-tls"),
        "names the rule whose tls was discarded: {why}"
    );
}

#[test]
fn simple_tls_towards_a_strict_sidecar() {
    let lab = start("simple-tls-to-sidecar.yaml");
    assert_eq!(request(&lab, "foo/sleep", URL).status, 503);
    let (id, r) = first_finding(&lab);
    assert_eq!(id, "TLS_ORIGINATION_TO_SIDECAR", "{r:#}");
}

#[test]
fn replicas_of_one_client_give_one_finding() {
    let mut objects =
        mesh503_lab::scenario::load(&scenario("seed-strict-no-automtls.yaml")).unwrap();
    for o in objects.iter_mut() {
        if o["kind"] == "Deployment" && o["metadata"]["name"] == "sleep" {
            o["spec"]["replicas"] = serde_json::json!(2);
        }
    }
    let lab = mesh503_lab::lab::Lab::start_objects(objects, Default::default()).expect("lab");
    assert_eq!(request(&lab, "foo/sleep", URL).status, 503);
    let out = diagnose(&lab, &["--from", "deploy/sleep"]);
    let r = json(&out);
    let mtls: Vec<_> = r["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["id"] == "MTLS_PLAINTEXT_TO_STRICT")
        .collect();
    assert_eq!(mtls.len(), 1, "two sleep pods, one finding\n{}", text(&out));
    assert!(
        mtls[0]["subject"]
            .as_str()
            .unwrap()
            .contains("1 other pod of the same workload"),
        "{}",
        mtls[0]
    );
    assert_eq!(
        r["checked"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c.as_str().unwrap().starts_with("client sidecar"))
            .count(),
        2,
        "both were read"
    );
}

#[test]
fn every_target_form_reaches_the_same_diagnosis() {
    let lab = start("seed-strict-no-automtls.yaml");
    assert_eq!(request(&lab, "foo/sleep", URL).status, 503);
    let httpbin_pod = pod_name(&lab, "foo", "httpbin-");
    let pod_target = format!("pod/{httpbin_pod}");
    for target in [
        "deploy/httpbin",
        pod_target.as_str(),
        "httpbin.foo.svc.cluster.local:8000",
        "httpbin",
    ] {
        let out = mesh503(
            Some(&lab),
            &[
                "diagnose",
                target,
                "-n",
                "foo",
                "-o",
                "json",
                "--from",
                "deploy/sleep",
            ],
        );
        assert_eq!(
            json(&out)["findings"][0]["id"],
            "MTLS_PLAINTEXT_TO_STRICT",
            "target {target}\n{}",
            text(&out)
        );
    }
    let missing = mesh503(Some(&lab), &["diagnose", "svc/nope", "-n", "foo"]);
    assert_eq!(missing.status.code(), Some(3), "{}", text(&missing));
    assert!(
        String::from_utf8_lossy(&missing.stderr).contains("\"nope\""),
        "{}",
        text(&missing)
    );
}
