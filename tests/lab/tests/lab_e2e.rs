//! The whole lab on the seed, driven by the installed kubectl: pods run with
//! real sidecars, a real 503 UC shows in the real Envoy's log, a merge patch
//! through the API fixes it live, and nothing outlives the lab.

use mesh503_lab::lab::{Lab, LabOptions};
use std::path::PathBuf;
use std::process::Command;

fn scenario(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../scenarios")
        .join(name)
}

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

fn alive(pid: u32) -> bool {
    // SAFETY: kill with signal 0 only checks whether the process exists.
    unsafe { libc::kill(pid as i32, 0) == 0 }
}

#[test]
fn seed_through_kubectl_then_fixed_by_merge_patch() {
    let lab = Lab::start(&scenario("seed-2018.yaml"), LabOptions::default()).expect("lab");
    let (ok, pods) = kubectl(&lab, &["get", "pods", "-n", "foo", "-o", "wide"]);
    assert!(ok, "{pods}");
    assert!(pods.contains("READY") && pods.contains("IP"), "{pods}");
    let httpbin_line = pods
        .lines()
        .find(|l| l.starts_with("httpbin-"))
        .expect(&pods);
    assert!(
        httpbin_line.contains("2/2")
            && httpbin_line.contains("Running")
            && httpbin_line.contains("127."),
        "{httpbin_line}"
    );

    let (ok, drs) = kubectl(&lab, &["get", "destinationrules.networking.istio.io", "-A"]);
    assert!(
        ok && drs.contains("istio-system") && drs.contains("httpbin"),
        "{drs}"
    );
    let (ok, res) = kubectl(&lab, &["api-resources"]);
    assert!(
        ok && res.contains("meshpolicies") && !res.contains("peerauthentications"),
        "1.0 era: {res}"
    );

    let r = lab
        .curl("foo/sleep", "http://httpbin.foo:8000/get", 1, 1)
        .unwrap()
        .remove(0)
        .unwrap();
    assert_eq!(r.status, 503, "{r}");
    assert!(
        r.body
            .contains("upstream connect error or disconnect/reset before headers"),
        "{r}"
    );

    let sleep_pod = pods
        .lines()
        .find(|l| l.starts_with("sleep-"))
        .and_then(|l| l.split_whitespace().next())
        .unwrap();
    let (ok, log) = kubectl(&lab, &["logs", sleep_pod, "-n", "foo", "-c", "istio-proxy"]);
    assert!(
        ok && log.contains("\" 503 UC "),
        "the real Envoy logged 503 UC:\n{log}"
    );

    let envoys = lab.envoy_pids();
    assert_eq!(envoys.len(), 2);
    let (ok, out) = kubectl(
        &lab,
        &[
            "patch",
            "destinationrule",
            "httpbin",
            "-n",
            "foo",
            "--type",
            "merge",
            "-p",
            r#"{"spec":{"trafficPolicy":{"tls":{"mode":"ISTIO_MUTUAL"}}}}"#,
        ],
    );
    assert!(ok, "{out}");
    lab.wait_synced().unwrap();
    let r = lab
        .curl("foo/sleep", "http://httpbin.foo:8000/get", 1, 1)
        .unwrap()
        .remove(0)
        .unwrap();
    assert_eq!(r.status, 200, "after the patch: {r}");
    assert_eq!(lab.envoy_pids(), envoys, "hot update, no restart");

    drop(lab);
    for pid in envoys {
        assert!(!alive(pid), "envoy {pid} outlived the lab");
    }
}

#[test]
fn a_panicking_test_leaves_no_envoy_behind() {
    let (tx, rx) = std::sync::mpsc::channel();
    let h = std::thread::spawn(move || {
        let lab = Lab::start(&scenario("healthy.yaml"), LabOptions::default()).expect("lab");
        tx.send(lab.envoy_pids()).unwrap();
        panic!("test failure while the lab runs");
    });
    assert!(h.join().is_err(), "the thread panicked");
    let pids = rx.recv().unwrap();
    assert_eq!(pids.len(), 2);
    for pid in pids {
        assert!(!alive(pid), "envoy {pid} survived the panic");
    }
}

/// A sidecar's Envoy killed with SIGKILL is reaped at once (no zombie) and
/// its pod stops showing ready, as the kubelet reports an exited container:
/// `istio-proxy` terminated with exit code 137, reason `Error`; kubectl
/// shows `1/2` and `Error` (src/exits.rs). The lab does not restart it.
#[test]
fn a_killed_sidecar_is_reaped_and_its_pod_stops_showing_ready() {
    use std::time::{Duration, Instant};
    let lab = Lab::start(&scenario("healthy.yaml"), LabOptions::default()).expect("lab");
    let pids = lab.envoy_pids();
    assert_eq!(pids.len(), 2);
    let victim = pids[0];
    // SAFETY: SIGKILL to an Envoy this lab started.
    unsafe {
        libc::kill(victim as i32, libc::SIGKILL);
    }
    // A zombie still exists for kill(pid, 0); a reaped process does not.
    let deadline = Instant::now() + Duration::from_secs(10);
    while alive(victim) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let state = std::fs::read_to_string(format!("/proc/{victim}/stat")).unwrap_or_default();
    assert!(!alive(victim), "envoy {victim} not reaped: {state}");

    let mut table = String::new();
    while Instant::now() < deadline + Duration::from_secs(10) {
        let (ok, out) = kubectl(&lab, &["get", "pods", "-n", "foo"]);
        assert!(ok, "{out}");
        table = out;
        if table.lines().any(|l| l.contains(" 1/2 ")) {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let dead: Vec<&str> = table.lines().filter(|l| l.contains(" 1/2 ")).collect();
    assert_eq!(dead.len(), 1, "one pod lost its sidecar:\n{table}");
    assert!(
        dead[0].contains("Error") && !dead[0].contains("Running"),
        "{table}"
    );
    assert_eq!(
        table
            .lines()
            .filter(|l| l.contains(" 2/2 ") && l.contains("Running"))
            .count(),
        1,
        "the other pod is untouched:\n{table}"
    );
    let name = dead[0].split_whitespace().next().unwrap();
    let (ok, json) = kubectl(&lab, &["get", "pod", name, "-n", "foo", "-o", "json"]);
    assert!(ok, "{json}");
    let pod: serde_json::Value = serde_json::from_str(&json).unwrap();
    let proxy = pod["status"]["containerStatuses"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "istio-proxy")
        .unwrap();
    assert_eq!(proxy["ready"], false, "{proxy}");
    assert_eq!(proxy["state"]["terminated"]["exitCode"], 137, "{proxy}");
    assert_eq!(proxy["state"]["terminated"]["signal"], 9, "{proxy}");
    let ready = pod["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Ready")
        .unwrap();
    assert_eq!(ready["status"], "False", "{ready}");
    assert!(lab.errors().is_empty(), "{:?}", lab.errors());
}
