//! Completion as users get it: the installed kubectl's own entry point
//! (`kubectl __complete mesh503 …`, what kubectl's bash/zsh/fish scripts
//! call) with a PATH holding only the built `kubectl-mesh503` and
//! `kubectl_complete-mesh503`. kubectl finds the plugin on PATH, runs the
//! helper with the plugin's words and relays its answer.

mod common;
use common::*;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A directory holding the two executables under their installed names.
fn plugin_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    for (name, built) in [
        ("kubectl-mesh503", env!("CARGO_BIN_EXE_kubectl-mesh503")),
        (
            "kubectl_complete-mesh503",
            env!("CARGO_BIN_EXE_kubectl_complete-mesh503"),
        ),
    ] {
        std::os::unix::fs::symlink(built, dir.path().join(name)).expect("symlink");
    }
    dir
}

struct Answer {
    candidates: Vec<String>,
    directive: String,
    raw: String,
    took: Duration,
}

/// `kubectl __complete mesh503 WORDS…` with PATH = `dir` only and
/// KUBECONFIG = `kubeconfig` (when given).
fn kubectl_complete(dir: &Path, kubeconfig: Option<&Path>, words: &[&str]) -> Answer {
    let mut cmd = Command::new(kubectl_path());
    cmd.env("PATH", dir)
        .env_remove("KUBECONFIG")
        .env_remove("BASH_COMP_DEBUG_FILE")
        .env_remove("MESH503_COMPLETE_TIMEOUT")
        .arg("__complete")
        .arg("mesh503")
        .args(words)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(k) = kubeconfig {
        cmd.env("KUBECONFIG", k);
    }
    let started = Instant::now();
    let out = cmd.output().expect("kubectl runs");
    let took = started.elapsed();
    let raw = format!(
        "{words:?}\n--- stdout\n{}--- stderr\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "kubectl __complete failed\n{raw}");
    let mut lines: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    let directive = lines.pop().unwrap_or_default();
    assert!(
        directive.starts_with(':'),
        "last line is the directive\n{raw}"
    );
    assert!(
        !String::from_utf8_lossy(&out.stderr)
            .contains("does not provide a matching completion executable"),
        "kubectl found the helper\n{raw}"
    );
    let candidates = lines
        .iter()
        .map(|l| l.split('\t').next().unwrap_or("").to_string())
        .collect();
    Answer {
        candidates,
        directive,
        raw,
        took,
    }
}

/// `kubectl get KIND -n NS -o name`, the names as kubectl itself sees them.
fn kubectl_names(lab: &mesh503_lab::lab::Lab, args: &[&str]) -> Vec<String> {
    let out = kubectl(lab, args, None);
    assert!(out.status.success(), "{}", text(&out));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.split_once('/').map_or(l, |(_, n)| n).to_string())
        .collect()
}

#[test]
fn kubectl_offers_the_subcommands_through_the_helper() {
    let dir = plugin_dir();
    let a = kubectl_complete(dir.path(), None, &[""]);
    for sub in ["diagnose", "tls-check", "completion"] {
        assert!(a.candidates.iter().any(|c| c == sub), "{sub}\n{}", a.raw);
    }
    assert_eq!(a.directive, ":4", "{}", a.raw);
    let a = kubectl_complete(dir.path(), None, &["diagnose", "--out"]);
    assert_eq!(a.candidates, ["--output"], "{}", a.raw);
    let a = kubectl_complete(dir.path(), None, &["diagnose", "-o", ""]);
    assert!(a.candidates.iter().any(|c| c == "json"), "{}", a.raw);
}

#[test]
fn kubectl_offers_live_names_from_the_lab() {
    let lab = start("seed-2018.yaml");
    let dir = plugin_dir();
    let kc = lab.kubeconfig();

    // Targets in -n foo: services, deployments and pods, kubectl-style.
    let a = kubectl_complete(dir.path(), Some(kc), &["diagnose", "-n", "foo", ""]);
    assert_eq!(a.directive, ":4", "{}", a.raw);
    for name in ["svc/httpbin", "svc/sleep", "deploy/httpbin", "deploy/sleep"] {
        assert!(a.candidates.iter().any(|c| c == name), "{name}\n{}", a.raw);
    }
    let pods: Vec<String> = a
        .candidates
        .iter()
        .filter_map(|c| c.strip_prefix("pod/").map(str::to_string))
        .collect();
    let mut expected = kubectl_names(&lab, &["get", "pods", "-n", "foo", "-o", "name"]);
    expected.sort();
    assert_eq!(pods, expected, "the pods kubectl lists\n{}", a.raw);

    // A typed kind narrows the list.
    let a = kubectl_complete(dir.path(), Some(kc), &["diagnose", "-n", "foo", "svc/ht"]);
    assert_eq!(a.candidates, ["svc/httpbin"], "{}", a.raw);

    // Namespaces for --namespace, as kubectl lists them.
    let a = kubectl_complete(dir.path(), Some(kc), &["diagnose", "--namespace", ""]);
    let mut namespaces = kubectl_names(&lab, &["get", "namespaces", "-o", "name"]);
    namespaces.sort();
    assert_eq!(a.candidates, namespaces, "{}", a.raw);
    assert!(a.candidates.iter().any(|n| n == "foo"), "{}", a.raw);

    // --kubeconfig among the words (no KUBECONFIG), --from clients.
    let kc_text = kc.to_str().expect("UTF-8 path");
    let a = kubectl_complete(
        dir.path(),
        None,
        &[
            "--kubeconfig",
            kc_text,
            "diagnose",
            "svc/httpbin",
            "-n",
            "foo",
            "--from",
            "deploy/",
        ],
    );
    assert_eq!(
        a.candidates,
        ["deploy/httpbin", "deploy/sleep"],
        "{}",
        a.raw
    );

    // tls-check takes several targets.
    let a = kubectl_complete(
        dir.path(),
        Some(kc),
        &["tls-check", "-n", "foo", "pod/x", "svc/"],
    );
    assert_eq!(a.candidates, ["svc/httpbin", "svc/sleep"], "{}", a.raw);
}

#[test]
fn an_unreachable_cluster_gives_no_candidates() {
    let dir = plugin_dir();
    let unreachable =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/unreachable.kubeconfig");
    for words in [
        &["diagnose", ""][..],
        &["diagnose", "-n", ""][..],
        &["diagnose", "--from", "pod/"][..],
    ] {
        let a = kubectl_complete(dir.path(), Some(&unreachable), words);
        assert!(a.candidates.is_empty(), "{}", a.raw);
        assert_eq!(a.directive, ":4", "{}", a.raw);
        // Bounded, not a speed target: connection refused is immediate and
        // the helper's deadline is 2 s.
        assert!(a.took < Duration::from_secs(20), "{:?}\n{}", a.took, a.raw);
    }
}

#[test]
fn an_api_server_that_never_answers_does_not_hang_the_shell() {
    // Accepts connections (the kernel completes the handshake) and never
    // answers: only the helper's own deadline ends the wait.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let cfg = tempfile::tempdir().expect("temp dir");
    let kc = cfg.path().join("silent.kubeconfig");
    std::fs::write(
        &kc,
        format!(
            "apiVersion: v1\nkind: Config\n\
             clusters:\n- name: silent\n  cluster: {{server: \"http://127.0.0.1:{port}\"}}\n\
             contexts:\n- name: silent\n  context: {{cluster: silent, user: u, namespace: foo}}\n\
             current-context: silent\nusers:\n- name: u\n  user: {{}}\n"
        ),
    )
    .expect("write kubeconfig");
    let dir = plugin_dir();
    let a = kubectl_complete(dir.path(), Some(&kc), &["diagnose", ""]);
    assert!(a.candidates.is_empty(), "{}", a.raw);
    assert_eq!(a.directive, ":4", "{}", a.raw);
    // The helper gives up after 2 s; the bound only proves it does give up.
    assert!(a.took < Duration::from_secs(20), "{:?}\n{}", a.took, a.raw);
    assert!(
        a.took >= Duration::from_millis(1900),
        "waited for the deadline: {:?}",
        a.took
    );
    drop(listener);
}
