//! Offline: the analysis over snapshots recorded from the lab's real Envoys
//! (tests/snapshots/, docs/examples/), and the CLI's messages. No lab, no
//! Envoy needed; insta keeps the reports reviewable.

use kubectl_mesh503::analyze::{analyze, Report};
use kubectl_mesh503::snapshot::Snapshot;
use std::path::PathBuf;
use std::process::Command;

fn load(rel: &str) -> Snapshot {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(rel);
    Snapshot::load(&p).unwrap_or_else(|e| panic!("{e}"))
}

fn ids(r: &Report) -> Vec<(&str, String)> {
    r.findings
        .iter()
        .map(|f| (f.id(), f.severity.to_string()))
        .collect()
}

#[test]
fn seed_2018_first_finding_is_the_tls_mismatch_with_its_chain() {
    let r = analyze(&load("docs/examples/seed-2018.snapshot.json"));
    let f = &r.findings[0];
    assert_eq!(f.id(), "MTLS_PLAINTEXT_TO_STRICT");
    let why = f.explanation.join("\n");
    assert!(
        why.contains("foo/httpbin")
            && why.contains("istio-system/default")
            && why.contains("ISTIO_MUTUAL"),
        "{why}"
    );
    assert!(
        why.contains("MeshPolicy default"),
        "legacy authn named: {why}"
    );
    assert!(
        f.confidence >= 90,
        "config + data plane agree: {}",
        f.confidence
    );
    let yaml = f.fix.as_ref().and_then(|x| x.yaml.as_deref()).unwrap();
    let fixed: serde_yaml::Value = serde_yaml::from_str(yaml).unwrap();
    assert_eq!(
        fixed["spec"]["trafficPolicy"]["tls"]["mode"],
        "ISTIO_MUTUAL"
    );
    assert_eq!(
        fixed["spec"]["trafficPolicy"]["connectionPool"]["tcp"]["maxConnections"], 1,
        "keeps the rest of the rule"
    );
    insta::assert_snapshot!(
        "seed_2018_table",
        kubectl_mesh503::report::table::render(&r, false, Some(160))
    );
}

#[test]
fn modern_forms_and_controls() {
    for (file, first) in [
        (
            "tests/recordings/seed-strict-no-automtls.snapshot.json",
            Some("MTLS_PLAINTEXT_TO_STRICT"),
        ),
        (
            "tests/recordings/seed-disable-automtls.snapshot.json",
            Some("MTLS_PLAINTEXT_TO_STRICT"),
        ),
        (
            "tests/recordings/mtls-to-no-sidecar.snapshot.json",
            Some("MTLS_TO_PLAINTEXT_SERVER"),
        ),
        ("tests/recordings/healthy.snapshot.json", None),
        ("tests/recordings/near-miss-permissive.snapshot.json", None),
    ] {
        let r = analyze(&load(file));
        match first {
            Some(id) => assert_eq!(
                r.findings.first().map(|f| f.id()),
                Some(id),
                "{file}: {:?}",
                ids(&r)
            ),
            None => assert!(
                !r.has_errors(),
                "{file}: healthy has no error: {:?}",
                ids(&r)
            ),
        }
        insta::assert_json_snapshot!(
            file.rsplit('/')
                .next()
                .unwrap()
                .trim_end_matches(".snapshot.json"),
            r.findings
                .iter()
                .map(|f| (f.id(), f.severity, f.confidence, &f.claim))
                .collect::<Vec<_>>()
        );
    }
}

#[test]
fn disable_rule_fix_replaces_disable() {
    let r = analyze(&load(
        "tests/recordings/seed-disable-automtls.snapshot.json",
    ));
    let f = &r.findings[0];
    assert!(
        f.explanation.join(" ").contains("DISABLE"),
        "{:?}",
        f.explanation
    );
    let y: serde_yaml::Value =
        serde_yaml::from_str(f.fix.as_ref().unwrap().yaml.as_deref().unwrap()).unwrap();
    assert_eq!(y["spec"]["trafficPolicy"]["tls"]["mode"], "ISTIO_MUTUAL");
}

#[test]
fn stats_exclusion_is_reported_as_a_gap_not_hidden() {
    let r = analyze(&load(
        "tests/recordings/seed-strict-no-automtls.snapshot.json",
    ));
    assert!(
        r.gaps.iter().any(|g| g
            .reason
            .contains("excluded by Istio's default stats inclusion")),
        "{:?}",
        r.gaps
    );
}

fn cli(args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_kubectl-mesh503"))
        .args(args)
        .env("NO_COLOR", "1")
        .env_remove("KUBECONFIG")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

#[test]
fn the_readme_command_works_offline() {
    let (code, out, _) = cli(&[
        "diagnose",
        "--snapshot",
        "docs/examples/seed-2018.snapshot.json",
    ]);
    assert_eq!(code, Some(1), "error findings exit 1");
    assert!(out.contains("MTLS_PLAINTEXT_TO_STRICT"));
}

#[test]
fn errors_name_what_and_where() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("old.json");
    std::fs::write(&bad, r#"{"schema": "mesh503.io/snapshot/v0"}"#).unwrap();
    let cases: Vec<(&str, Vec<&str>)> = vec![
        ("missing_target", vec!["diagnose"]),
        ("bad_target", vec!["diagnose", "cm/istio"]),
        (
            "missing_snapshot",
            vec!["diagnose", "--snapshot", "does/not/exist.json"],
        ),
        (
            "old_schema",
            vec!["diagnose", "--snapshot", bad.to_str().unwrap()],
        ),
        (
            "bad_duration",
            vec!["diagnose", "svc/x", "--request-timeout", "5x"],
        ),
        ("tls_check_no_pod", vec!["tls-check", "svc/httpbin"]),
        (
            "unreachable_api",
            vec![
                "--kubeconfig",
                "tests/fixtures/unreachable.kubeconfig",
                "diagnose",
                "svc/httpbin",
                "--request-timeout",
                "2s",
            ],
        ),
    ];
    for (name, args) in cases {
        let (code, _, err) = cli(&args);
        assert!(
            matches!(code, Some(2) | Some(3)),
            "{name}: exit {code:?}: {err}"
        );
        let err = err.replace(bad.to_str().unwrap(), "[TMP]/old.json");
        insta::assert_snapshot!(
            format!("error_{name}"),
            format!("exit {}\n{err}", code.unwrap())
        );
    }
}

#[test]
fn proxy_running_an_older_rule_is_reported() {
    // The API no longer has foo/httpbin (deleted, or hidden from the tool);
    // the client's cluster was still built from it: what a pending push looks like.
    let mut snap = load("tests/recordings/seed-strict-no-automtls.snapshot.json");
    snap.objects
        .retain(|o| !(o["kind"] == "DestinationRule" && o["metadata"]["name"] == "httpbin"));
    let r = analyze(&snap);
    let ids: Vec<&str> = r.findings.iter().map(|f| f.id()).collect();
    assert!(ids.contains(&"PROXY_CONFIG_DIFFERS"), "{ids:?}");
    // The data plane still sends plaintext: that is what is reported, not the API's prediction.
    assert_eq!(ids[0], "MTLS_PLAINTEXT_TO_STRICT", "{ids:?}");
    assert!(r.findings[0]
        .explanation
        .iter()
        .any(|l| l.contains("running config differs")));
}

#[test]
fn a_host_target_with_a_port_checks_that_port_only() {
    let mut snap = load("tests/recordings/seed-strict-no-automtls.snapshot.json");
    snap.target = "httpbin.foo.svc.cluster.local:8000".into();
    let r = analyze(&snap);
    assert_eq!(r.findings[0].id(), "MTLS_PLAINTEXT_TO_STRICT");
    snap.target = "httpbin.foo.svc.cluster.local:9999".into();
    let r = analyze(&snap);
    assert!(
        r.findings.is_empty(),
        "no such port, nothing to check: {:?}",
        r.findings
    );
}

/// The same snapshot with every pod's `istio-proxy` moved from
/// `spec.containers` to `spec.initContainers` with `restartPolicy: Always`
/// (Istio's native sidecar, `pkg/kube/inject/inject.go`).
fn as_native_sidecars(mut snap: Snapshot) -> Snapshot {
    let mut moved = 0;
    for o in snap.objects.iter_mut().filter(|o| o["kind"] == "Pod") {
        let spec = &mut o["spec"];
        let Some(containers) = spec["containers"].as_array_mut() else {
            continue;
        };
        let Some(i) = containers.iter().position(|c| c["name"] == "istio-proxy") else {
            continue;
        };
        let mut proxy = containers.remove(i);
        proxy["restartPolicy"] = serde_json::json!("Always");
        match spec["initContainers"].as_array_mut() {
            Some(init) => init.push(proxy),
            None => spec["initContainers"] = serde_json::json!([proxy]),
        }
        moved += 1;
    }
    assert!(moved > 0, "the recording has sidecars to move");
    snap
}

#[test]
fn native_sidecars_give_the_same_diagnosis_as_classic_ones() {
    for file in [
        "docs/examples/seed-2018.snapshot.json",
        "tests/recordings/healthy.snapshot.json",
        "tests/recordings/seed-strict-no-automtls.snapshot.json",
        "tests/recordings/seed-disable-automtls.snapshot.json",
        "tests/recordings/mtls-to-no-sidecar.snapshot.json",
        "tests/recordings/near-miss-permissive.snapshot.json",
    ] {
        let classic = analyze(&load(file));
        let native = analyze(&as_native_sidecars(load(file)));
        let view = |r: &Report| {
            r.findings
                .iter()
                .map(|f| (f.id(), f.subject.clone(), f.fix.clone()))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            view(&native),
            view(&classic),
            "{file}: ids, subjects, fixes"
        );
        assert_eq!(native, classic, "{file}: the whole report");
    }
}
