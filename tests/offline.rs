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
    let yaml = f.chosen_fix().and_then(|x| x.yaml()).unwrap();
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
        kubectl_mesh503::report::render(&r, kubectl_mesh503::report::Output::Table, false, 160)
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
        serde_yaml::from_str(f.chosen_fix().unwrap().yaml().unwrap()).unwrap();
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

/// Bad input files in `dir`: an old schema, junk objects, `{}`,
/// `{"configs":[]}`, `/clusters` text and JSON.
fn bad_inputs(dir: &std::path::Path) -> [String; 6] {
    let bad = dir.join("old.json");
    std::fs::write(&bad, r#"{"schema": "mesh503.io/snapshot/v0"}"#).unwrap();
    let junk = dir.join("junk.json");
    std::fs::write(
        &junk,
        r#"{"schema": "mesh503.io/snapshot/v2", "tool_version": "t", "taken_at": "t", "target": "svc/x",
            "namespace": "foo", "istio_namespace": "istio-system", "objects": [1, "x", {"kind": "Pod"}]}"#,
    )
    .unwrap();
    let empty_obj = dir.join("empty.json");
    std::fs::write(&empty_obj, "{}").unwrap();
    let no_configs = dir.join("noconfigs.json");
    std::fs::write(&no_configs, r#"{"configs": []}"#).unwrap();
    let clusters_text = dir.join("clusters.txt");
    std::fs::write(
        &clusters_text,
        "outbound|8000||httpbin.foo.svc.cluster.local::added_via_api::true\n",
    )
    .unwrap();
    let clusters_json = dir.join("clusters.json");
    std::fs::write(&clusters_json, r#"{"cluster_statuses": []}"#).unwrap();
    let t = |p: &std::path::Path| p.to_str().unwrap().to_string();
    [
        t(&bad),
        t(&junk),
        t(&empty_obj),
        t(&no_configs),
        t(&clusters_text),
        t(&clusters_json),
    ]
}

#[test]
fn errors_name_what_and_where() {
    let dir = tempfile::tempdir().unwrap();
    let [bad_s, junk_s, empty_s, noconf_s, ct_s, cj_s] = bad_inputs(dir.path());
    let unreachable = "tests/fixtures/unreachable.kubeconfig";
    let cases: Vec<(&str, Vec<&str>)> = vec![
        ("missing_target", vec!["diagnose"]),
        ("bad_target", vec!["diagnose", "cm/istio"]),
        (
            "missing_snapshot",
            vec!["diagnose", "--snapshot", "does/not/exist.json"],
        ),
        ("old_schema", vec!["diagnose", "--snapshot", &bad_s]),
        ("junk_snapshot", vec!["diagnose", "--snapshot", &junk_s]),
        (
            "dev_zero_snapshot",
            vec!["diagnose", "--snapshot", "/dev/zero"],
        ),
        (
            "bad_duration",
            vec!["diagnose", "svc/x", "--request-timeout", "5x"],
        ),
        (
            "huge_request_timeout",
            vec![
                "diagnose",
                "svc/x",
                "--request-timeout",
                "99999999999999999999999",
            ],
        ),
        (
            "huge_proxy_timeout",
            vec![
                "diagnose",
                "svc/x",
                "--proxy-timeout",
                "18000000000000000000",
            ],
        ),
        ("zero_timeout", vec!["diagnose", "svc/x", "--timeout", "0"]),
        ("bad_namespace", vec!["diagnose", "svc/x", "-n", "foo?x=1"]),
        (
            "bad_istio_namespace",
            vec![
                "diagnose",
                "svc/x",
                "--istio-namespace",
                "foo/secrets/topsecret?",
            ],
        ),
        ("tls_check_no_pod", vec!["tls-check", "svc/httpbin"]),
        (
            "config_dump_empty_object",
            vec!["tls-check", "--config-dump", &empty_s],
        ),
        (
            "config_dump_no_configs",
            vec!["tls-check", "--config-dump", &noconf_s],
        ),
        (
            "config_dump_is_a_snapshot",
            vec![
                "tls-check",
                "--config-dump",
                "docs/examples/seed-2018.snapshot.json",
            ],
        ),
        (
            "config_dump_is_clusters_text",
            vec!["tls-check", "--config-dump", &ct_s],
        ),
        (
            "config_dump_is_clusters_json",
            vec!["tls-check", "--config-dump", &cj_s],
        ),
        (
            "save_snapshot_bad_dir",
            vec![
                "--kubeconfig",
                unreachable,
                "diagnose",
                "svc/httpbin",
                "--save-snapshot",
                "no/such/dir/snap.json",
            ],
        ),
        (
            "missing_context",
            vec![
                "--kubeconfig",
                unreachable,
                "--context",
                "nope",
                "diagnose",
                "svc/httpbin",
            ],
        ),
        (
            "unreachable_api",
            vec![
                "--kubeconfig",
                unreachable,
                "diagnose",
                "svc/httpbin",
                "--request-timeout",
                "2s",
            ],
        ),
    ];
    for (name, args) in cases {
        let started = std::time::Instant::now();
        let (code, out, err) = cli(&args);
        assert!(
            matches!(code, Some(2) | Some(3)),
            "{name}: exit {code:?}: {err}"
        );
        assert!(out.is_empty(), "{name}: no report on a failed run: {out}");
        assert!(
            err.contains("hint: "),
            "{name}: every error has a hint: {err}"
        );
        assert!(
            started.elapsed() < std::time::Duration::from_secs(30),
            "{name}: bounded in time"
        );
        let err = err.replace(dir.path().to_str().unwrap(), "[TMP]");
        insta::assert_snapshot!(
            format!("error_{name}"),
            format!("exit {}\n{err}", code.unwrap())
        );
    }
}

/// One test per row of docs/exit-codes.md that needs no cluster (3 is also
/// in errors_name_what_and_where; the API-lost and never-answering rows are
/// in tests/reliability_lab.rs).
#[test]
fn exit_codes_without_a_cluster() {
    // 0: ran, no error-level finding.
    let (code, out, _) = cli(&[
        "diagnose",
        "--snapshot",
        "tests/recordings/healthy.snapshot.json",
    ]);
    assert_eq!(code, Some(0), "{out}");
    // 1: error-level findings.
    let (code, _, _) = cli(&[
        "diagnose",
        "--snapshot",
        "docs/examples/seed-2018.snapshot.json",
    ]);
    assert_eq!(code, Some(1));
    // 2: bad usage.
    let (code, _, _) = cli(&["diagnose", "--concurrency", "0", "svc/x"]);
    assert_eq!(code, Some(2));
    // 4: ran, nothing found, but what the diagnosis needs was not read.
    let mut snap: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("tests/recordings/healthy.snapshot.json"),
        )
        .unwrap(),
    )
    .unwrap();
    snap["schema"] = "mesh503.io/snapshot/v2".into();
    snap["resolved"] = serde_json::json!({
        "namespace": "foo", "services": [{"namespace": "foo", "name": "httpbin"}], "server_pods": [],
        "cluster_domain": "cluster.local", "cluster_domain_source": "default",
        "missing": [{"source": "list peerauthentications.security.istio.io/v1",
                     "reason": "HTTP 403 Forbidden: cannot list"}]});
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("incomplete.json");
    std::fs::write(&f, snap.to_string()).unwrap();
    let (code, out, err) = cli(&["diagnose", "--snapshot", f.to_str().unwrap()]);
    assert_eq!(code, Some(4), "{err}");
    assert!(!out.is_empty(), "the report is still printed");
    assert!(
        err.contains("could not check") && err.contains("peerauthentications"),
        "{err}"
    );
}

#[test]
fn snapshot_from_standard_input() {
    let text = std::fs::read(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs/examples/seed-2018.snapshot.json"),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_kubectl-mesh503"))
        .args(["diagnose", "--snapshot", "-", "-o", "json"])
        .env("NO_COLOR", "1")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(&text).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["findings"][0]["id"], "MTLS_PLAINTEXT_TO_STRICT");
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
                .map(|f| (f.id(), f.subject.clone(), f.fixes.clone()))
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

/// `completion SHELL` prints the fixed script (clap-rs/clap#6421: the bash
/// branches spelled the loop's way), and a reader that closes the pipe early
/// (`… | head -1`) gets no panic.
#[test]
fn the_completion_subcommand_prints_the_fixed_script() {
    let (code, out, err) = cli(&["completion", "bash"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("kubectl__mesh503__subcmd__diagnose"), "{out}");
    assert!(!out.contains("kubectl__subcmd__"), "clap-rs/clap#6421");
    let mut child = Command::new(env!("CARGO_BIN_EXE_kubectl-mesh503"))
        .args(["completion", "zsh"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(out.status.code(), Some(0), "{stderr}");
}

/// `--config-dump /dev/zero` ends at once with exit 2 (issue 10: it grew
/// memory without bound), as `--snapshot /dev/zero` does.
#[test]
fn config_dump_from_an_endless_device_is_refused_at_once() {
    let (code, _, err) = cli(&["tls-check", "--config-dump", "/dev/zero"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("/dev/zero"), "names the file: {err}");
}

/// `tls-check --config-dump` of a full dump recorded from the lab's
/// `foo/sleep` (benches/data): the same report from the file and from
/// standard input (read streamed); the same dump cut short is refused with
/// the file and where the JSON ends.
#[test]
fn config_dump_from_a_file_from_stdin_and_cut_short() {
    let path = "benches/data/seed-sleep.config_dump.json";
    let (code, from_file, err) = cli(&["tls-check", "--config-dump", path, "-o", "json"]);
    // Without the server's dump, the plaintext cluster to httpbin is UNKNOWN.
    assert_eq!(code, Some(0), "{err}");
    assert!(
        from_file.contains("httpbin.foo.svc.cluster.local"),
        "{from_file}"
    );
    let text = std::fs::read(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(path)).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_kubectl-mesh503"))
        .args(["tls-check", "--config-dump", "-", "-o", "json"])
        .env("NO_COLOR", "1")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(&text).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let from_stdin = String::from_utf8_lossy(&out.stdout);
    let strip = |s: &str| s.replace(path, "").replace("(standard input)", "");
    assert_eq!(strip(&from_stdin), strip(&from_file));

    let dir = tempfile::tempdir().unwrap();
    let cut = dir.path().join("cut.json");
    std::fs::write(&cut, &text[..text.len() / 2]).unwrap();
    let cut = cut.to_str().unwrap();
    let (code, _, err) = cli(&["tls-check", "--config-dump", cut]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains(cut), "names the file: {err}");
    assert!(
        err.contains("EOF while parsing") && err.contains(" line ") && err.contains(" column "),
        "says where the JSON ends: {err}"
    );
}
