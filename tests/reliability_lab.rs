//! Safe on the worst day (docs/reliability.md): an API that accepts and
//! never answers, an API that goes away after the target was resolved,
//! refused credentials, RBAC that leaves nothing to check, namespaces that
//! would change a URL — each ends with its documented exit code, in bounded
//! time, with a message that says what to do. The first two need no lab: a
//! plain TCP listener (and a scripted HTTP responder) stand in for the API.

mod common;
use common::*;
use mesh503_lab::lab::{Lab, LabOptions};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const URL: &str = "http://httpbin.foo:8000/get";

fn kubeconfig(dir: &Path, server: &str, token: Option<&str>) -> PathBuf {
    let user = match token {
        Some(t) => format!("{{token: {t}}}"),
        None => "{}".to_string(),
    };
    let p = dir.join("kubeconfig");
    std::fs::write(
        &p,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: {{server: \"{server}\"}}\n\
             contexts:\n- name: c\n  context: {{cluster: c, user: u, namespace: foo}}\ncurrent-context: c\n\
             users:\n- name: u\n  user: {user}\n"
        ),
    )
    .unwrap();
    p
}

fn run_with(kubeconfig: &Path, args: &[&str]) -> (std::process::Output, Duration) {
    let started = Instant::now();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_kubectl-mesh503"))
        .env_remove("KUBECONFIG")
        .env("NO_COLOR", "1")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .output()
        .unwrap();
    (out, started.elapsed())
}

/// A listener that accepts every connection and never writes a byte.
fn black_hole() -> (String, Arc<AtomicBool>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let s = stop.clone();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for c in l.incoming() {
            if s.load(Ordering::Relaxed) {
                break;
            }
            if let Ok(c) = c {
                held.push(c);
            }
        }
    });
    (format!("http://{addr}"), stop)
}

#[test]
fn an_api_that_never_answers_ends_within_the_default_deadline() {
    let (url, _stop) = black_hole();
    let dir = tempfile::tempdir().unwrap();
    let kc = kubeconfig(dir.path(), &url, None);
    let (out, took) = run_with(&kc, &["diagnose", "svc/httpbin"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("--request-timeout"), "names the flag: {err}");
    assert!(err.contains("no answer within 10s"), "{err}");
    // The documented default deadline (--timeout) is 60s; the per-request
    // limit (10s) ends it first. A bound, not a speed target.
    assert!(took < Duration::from_secs(60), "took {took:?}");

    // No per-request limit: the run's deadline still ends it.
    let (out, took) = run_with(
        &kc,
        &[
            "diagnose",
            "svc/httpbin",
            "--request-timeout",
            "0",
            "--timeout",
            "2s",
        ],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("--timeout"), "names the flag: {err}");
    assert!(took < Duration::from_secs(30), "took {took:?}");
}

/// Answers one scripted request on `c`; `false` when the connection ended.
fn answer(c: &mut TcpStream, reply: &dyn Fn(&str) -> Option<String>, served: &AtomicBool) -> bool {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match c.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => return false,
        }
    }
    let text = String::from_utf8_lossy(&head).to_string();
    let path = text.split_whitespace().nth(1).unwrap_or("").to_string();
    let Some(body) = reply(&path) else {
        served.store(true, Ordering::SeqCst);
        return false;
    };
    let (status, body) = if body.is_empty() {
        ("404 Not Found", r#"{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"NotFound","code":404}"#.to_string())
    } else {
        ("200 OK", body)
    };
    let resp = format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    c.write_all(resp.as_bytes()).is_ok()
}

type Reply = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// Serves `reply` on a loopback port, one thread per connection (the client
/// may open several). When `reply` gives `None` the API is gone for good:
/// that connection is closed, and the listener too (new connections are
/// refused).
fn serve(reply: Reply) -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    l.set_nonblocking(true).unwrap();
    let gone = Arc::new(AtomicBool::new(false));
    std::thread::spawn(move || loop {
        if gone.load(Ordering::SeqCst) {
            return; // drops the listener
        }
        match l.accept() {
            Ok((mut c, _)) => {
                c.set_nonblocking(false).unwrap();
                let (reply, gone) = (reply.clone(), gone.clone());
                std::thread::spawn(move || {
                    let flag = gone.clone();
                    let r = move |p: &str| {
                        if flag.load(Ordering::SeqCst) {
                            None
                        } else {
                            reply(p)
                        }
                    };
                    let done = AtomicBool::new(false);
                    while answer(&mut c, &r, &done) {}
                    if done.load(Ordering::SeqCst) {
                        gone.store(true, Ordering::SeqCst);
                    }
                });
            }
            Err(_) => std::thread::sleep(Duration::from_millis(5)),
        }
    });
    format!("http://{addr}")
}

/// An API that answers discovery and the target, then goes away for good
/// (connections closed, the port closed): what a lost API server looks like.
fn vanishing_api() -> String {
    let gone = Arc::new(AtomicBool::new(false));
    serve(Arc::new(move |path: &str| -> Option<String> {
        if gone.load(Ordering::SeqCst) {
            return None;
        }
        let p = path.split('?').next().unwrap_or("");
        let body = match p {
            "/version" => r#"{"major":"1","minor":"33","gitVersion":"v1.33.0"}"#,
            "/apis" => r#"{"kind":"APIGroupList","apiVersion":"v1","groups":[]}"#,
            "/api/v1/namespaces/foo/services/httpbin" => {
                r#"{"kind":"Service","apiVersion":"v1","metadata":{"name":"httpbin","namespace":"foo"},
                    "spec":{"selector":{"app":"httpbin"},"ports":[{"port":8000,"targetPort":8080}]}}"#
            }
            // Anything after the target: the API is gone.
            _ => {
                gone.store(true, Ordering::SeqCst);
                return None;
            }
        };
        Some(body.to_string())
    }))
}

#[test]
fn losing_the_api_after_the_target_was_resolved_is_exit_3() {
    let url = vanishing_api();
    let dir = tempfile::tempdir().unwrap();
    let kc = kubeconfig(dir.path(), &url, None);
    let (out, took) = run_with(&kc, &["diagnose", "svc/httpbin", "-o", "json"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "never 'no cause found': {err}");
    assert!(out.stdout.is_empty(), "no report from a partial read");
    assert!(err.contains("stopped answering"), "{err}");
    assert!(took < Duration::from_secs(60), "took {took:?}");
}

/// A small API that answers every read of a run on an empty mesh (one
/// Service, no pods, no Istio), and on its first request removes `doomed`:
/// the directory `--save-snapshot` was checked in, gone by the time the
/// snapshot is written.
fn api_that_removes(doomed: PathBuf) -> String {
    serve(Arc::new(move |path: &str| -> Option<String> {
        let _ = std::fs::remove_dir_all(&doomed);
        let p = path.split('?').next().unwrap_or("");
        Some(match p {
            "/version" => r#"{"major":"1","minor":"33","gitVersion":"v1.33.0"}"#.into(),
            "/apis" => r#"{"kind":"APIGroupList","apiVersion":"v1","groups":[]}"#.into(),
            "/api/v1/namespaces/foo/services/httpbin" => {
                r#"{"kind":"Service","apiVersion":"v1","metadata":{"name":"httpbin","namespace":"foo"},
                    "spec":{"selector":{"app":"httpbin"},"ports":[{"port":8000}]}}"#
                    .into()
            }
            "/api/v1/namespaces/foo/pods" => r#"{"kind":"PodList","apiVersion":"v1","items":[]}"#.into(),
            "/apis/discovery.k8s.io/v1/namespaces/foo/endpointslices" => {
                r#"{"kind":"EndpointSliceList","apiVersion":"discovery.k8s.io/v1","items":[]}"#.into()
            }
            "/api/v1/namespaces" => r#"{"kind":"NamespaceList","apiVersion":"v1","items":[]}"#.into(),
            _ => String::new(),
        })
    }))
}

#[test]
fn a_snapshot_that_cannot_be_saved_is_exit_5_after_the_report() {
    let dir = tempfile::tempdir().unwrap();
    let doomed = dir.path().join("out");
    std::fs::create_dir(&doomed).unwrap();
    let url = api_that_removes(doomed.clone());
    let kc = kubeconfig(dir.path(), &url, None);
    let target = doomed.join("snap.json");
    let (out, _) = run_with(
        &kc,
        &[
            "diagnose",
            "svc/httpbin",
            "--save-snapshot",
            target.to_str().unwrap(),
        ],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(5), "{err}");
    assert!(err.contains("cannot write the snapshot"), "{err}");
    assert!(!out.stdout.is_empty(), "the report was printed first");
    assert!(!target.exists());
}

#[test]
fn namespaces_are_validated_before_any_request() {
    let lab = start("seed-strict-no-automtls.yaml");
    assert_eq!(request(&lab, "foo/sleep", URL).status, 503);
    for args in [
        ["diagnose", "svc/httpbin", "-n", "foo?x=1"],
        [
            "diagnose",
            "svc/httpbin",
            "--istio-namespace",
            "foo/secrets/topsecret?",
        ],
    ] {
        let out = mesh503(Some(&lab), &args);
        assert_eq!(out.status.code(), Some(2), "{}", text(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("is not a valid namespace"), "{err}");
        assert!(out.stdout.is_empty());
    }
    // The same run with valid names works, and what it saves is snapshot v2.
    let dir = tempfile::tempdir().unwrap();
    let saved = dir.path().join("snap.json");
    let out = diagnose(
        &lab,
        &[
            "--from",
            "deploy/sleep",
            "--save-snapshot",
            saved.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let snap: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&saved).unwrap()).unwrap();
    assert_eq!(snap["schema"], "mesh503.io/snapshot/v2");
    assert_eq!(
        snap["resolved"]["services"],
        serde_json::json!([{"namespace": "foo", "name": "httpbin"}])
    );
    assert_eq!(snap["resolved"]["cluster_domain"], "cluster.local");
    assert!(
        snap["resolved"]["missing"].as_array().unwrap().is_empty(),
        "{}",
        snap["resolved"]
    );
    assert!(snap["stats_filter"]
        .as_str()
        .unwrap()
        .contains("no_filter_chain_match"));
    for p in snap["proxies"].as_array().unwrap() {
        assert!(p["metrics"].is_string(), "metrics read: {p}");
        let stats = p["stats"].as_str().unwrap_or("");
        assert!(
            !stats.contains("server.live"),
            "stats are filtered: {stats}"
        );
    }
    let mut keys = std::collections::BTreeSet::new();
    for o in snap["objects"].as_array().unwrap() {
        let group = o["apiVersion"]
            .as_str()
            .unwrap()
            .rsplit_once('/')
            .map(|(g, _)| g.to_string())
            .unwrap_or_default();
        let key = (
            group,
            o["kind"].to_string(),
            o["metadata"]["namespace"].to_string(),
            o["metadata"]["name"].to_string(),
        );
        assert!(keys.insert(key.clone()), "one copy of each object: {key:?}");
    }
}

#[test]
fn refused_credentials_get_a_credentials_hint() {
    let lab = Lab::start(
        &scenario("healthy.yaml"),
        LabOptions {
            token: Some("s3cret".into()),
            ..Default::default()
        },
    )
    .expect("lab");
    let dir = tempfile::tempdir().unwrap();
    let kc = kubeconfig(dir.path(), &lab.api_url(), Some("wrong"));
    let (out, _) = run_with(&kc, &["diagnose", "svc/httpbin", "-n", "foo"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(
        err.contains("refused the credentials") && err.contains("401"),
        "{err}"
    );
    assert!(err.contains("log in again"), "{err}");
}

/// Only `get services`: the target resolves, nothing else can be read.
const ONLY_GET_SERVICES: &str = r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: only-services}
rules:
- apiGroups: [""]
  resources: ["services"]
  verbs: ["get"]
"#;

#[test]
fn rbac_that_leaves_nothing_to_check_is_exit_4_not_no_cause() {
    let dir = tempfile::tempdir().unwrap();
    let rbac = dir.path().join("role.yaml");
    std::fs::write(&rbac, ONLY_GET_SERVICES).unwrap();
    let lab = Lab::start(
        &scenario("healthy.yaml"),
        LabOptions {
            rbac: Some(rbac),
            ..Default::default()
        },
    )
    .expect("lab");
    let out = mesh503(Some(&lab), &["diagnose", "svc/httpbin", "-n", "foo"]);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("could not check"), "{err}");
    assert!(
        !out.stdout.is_empty(),
        "the report still says what was seen"
    );
}

/// The answers of a small API for the reads that resolve `svc/httpbin` in
/// `foo` (discovery, the Service); `None` for anything else.
fn resolving_answer(path: &str) -> Option<&'static str> {
    match path.split('?').next().unwrap_or("") {
        "/version" => Some(r#"{"major":"1","minor":"33","gitVersion":"v1.33.0"}"#),
        "/apis" => Some(r#"{"kind":"APIGroupList","apiVersion":"v1","groups":[]}"#),
        "/api/v1/namespaces/foo/services/httpbin" => Some(
            r#"{"kind":"Service","apiVersion":"v1","metadata":{"name":"httpbin","namespace":"foo"},
                "spec":{"selector":{"app":"httpbin"},"ports":[{"port":8000,"targetPort":8080}]}}"#,
        ),
        _ => None,
    }
}

/// An API that resolves the target, then freezes: it keeps accepting and
/// reading requests and never answers another one (a stopped etcd, a
/// SIGSTOPped API server). The run ends at `--request-timeout` with exit 3,
/// never "No cause found" (issue 10: "an API frozen mid-run blocks until it
/// resumes").
#[test]
fn an_api_frozen_mid_run_ends_at_the_request_timeout_with_exit_3() {
    let url = serve(Arc::new(|path: &str| -> Option<String> {
        match resolving_answer(path) {
            Some(body) => Some(body.to_string()),
            None => loop {
                std::thread::sleep(Duration::from_secs(3600));
            },
        }
    }));
    let dir = tempfile::tempdir().unwrap();
    let kc = kubeconfig(dir.path(), &url, None);
    // The default flags: what hung before.
    let (out, took) = run_with(&kc, &["diagnose", "svc/httpbin"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(out.stdout.is_empty(), "no report from a partial read");
    assert!(err.contains("--request-timeout"), "names the flag: {err}");
    // The documented default deadline (--timeout 60s); a bound, not a speed target.
    assert!(took < Duration::from_secs(60), "took {took:?}");
}

/// An API that answers every request, each after a delay: with a generous
/// per-request limit the run's own deadline (`--timeout`) still ends it
/// (issue 10: "a 2-s-per-request API took 38 s").
#[test]
fn a_slow_api_is_bounded_by_the_overall_deadline() {
    let url = serve(Arc::new(|path: &str| -> Option<String> {
        std::thread::sleep(Duration::from_millis(700));
        Some(match resolving_answer(path) {
            Some(body) => body.to_string(),
            None if path.contains("/pods") => {
                r#"{"kind":"PodList","apiVersion":"v1","items":[]}"#.to_string()
            }
            None => String::new(), // 404
        })
    }));
    let dir = tempfile::tempdir().unwrap();
    let kc = kubeconfig(dir.path(), &url, None);
    let (out, took) = run_with(&kc, &["diagnose", "svc/httpbin", "--timeout", "2s"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("--timeout"), "names the flag: {err}");
    assert!(took < Duration::from_secs(30), "took {took:?}");
}

/// A sidecar's Envoy killed (SIGKILL): the lab reaps it and the pod turns
/// unready, as a kubelet reports it. The diagnosis explains the 503 from
/// that (no ready endpoint), and the dead admin API is one gap line, not
/// one per admin read (issue 10: "one dead sidecar 6").
#[test]
fn a_killed_sidecar_is_one_gap_line_and_its_unready_pod_explains_the_503() {
    let lab = start("healthy.yaml");
    assert_eq!(request(&lab, "foo/sleep", URL).status, 200);
    let httpbin = pod_name(&lab, "foo", "httpbin");
    let pid = lab
        .envoy_pids()
        .into_iter()
        .find(|p| {
            std::fs::read(format!("/proc/{p}/cmdline"))
                .is_ok_and(|c| String::from_utf8_lossy(&c).contains(&httpbin))
        })
        .expect("httpbin's Envoy");
    let killed = std::process::Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let out = kubectl(&lab, &["get", "pod", &httpbin, "-n", "foo"], None);
        let table = String::from_utf8_lossy(&out.stdout).to_string();
        if table.contains(" 1/2 ") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the pod still shows ready:\n{table}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = diagnose(&lab, &["--from", "deploy/sleep"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert_eq!(finding_ids(&out), vec!["SERVICE_WITHOUT_ENDPOINTS"]);
    let report = json(&out);
    let dead: Vec<String> = report["gaps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g.to_string())
        .filter(|g| g.contains(&httpbin) && g.contains("15000"))
        .collect();
    assert_eq!(
        dead.len(),
        1,
        "one gap line for the dead admin API: {dead:#?}"
    );
    assert!(dead[0].contains("every admin read failed"), "{dead:?}");
}
