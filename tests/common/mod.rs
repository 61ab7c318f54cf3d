//! Shared helpers for the plugin's integration tests: start a lab on a
//! scenario, send traffic, run the plugin binary and the installed kubectl
//! against the lab's kubeconfig.
#![allow(dead_code)]

use mesh503_lab::curl::Response;
use mesh503_lab::lab::{Lab, LabOptions};
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

pub fn scenario(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/scenarios")
        .join(name)
}

pub fn start(name: &str) -> Lab {
    Lab::start(&scenario(name), LabOptions::default())
        .unwrap_or_else(|e| panic!("lab did not start on {name}: {e:#}"))
}

/// One request from `from` (`ns/deploy`), panicking on transport errors.
pub fn request(lab: &Lab, from: &str, url: &str) -> Response {
    let mut r = lab.curl(from, url, 1, 1).expect("curl ran");
    r.remove(0)
        .unwrap_or_else(|e| panic!("request {url} from {from} failed: {e}"))
}

/// The installed kubectl (KUBECTL, else PATH); tests fail loudly without it.
pub fn kubectl_bin() -> String {
    std::env::var("KUBECTL").unwrap_or_else(|_| "kubectl".to_string())
}

pub fn kubectl(lab: &Lab, args: &[&str], stdin: Option<&str>) -> Output {
    let mut cmd = Command::new(kubectl_bin());
    cmd.arg("--kubeconfig").arg(lab.kubeconfig()).args(args);
    run(cmd, stdin)
}

/// Run the plugin binary with the lab's kubeconfig.
///
/// Envoy writes access logs out every second (pilot-agent starts it with
/// `--file-flush-interval-msec 1000`), so a diagnosis right after the traffic
/// first waits for that flush, as any real diagnosis comes after the failures.
pub fn mesh503(lab: Option<&Lab>, args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kubectl-mesh503"));
    cmd.env_remove("KUBECONFIG").env("NO_COLOR", "1");
    if let Some(lab) = lab {
        std::thread::sleep(std::time::Duration::from_millis(1100));
        cmd.arg("--kubeconfig").arg(lab.kubeconfig());
    }
    cmd.args(args);
    run(cmd, None)
}

fn run(mut cmd: Command, stdin: Option<&str>) -> Output {
    use std::io::Write;
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    if let Some(s) = stdin {
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(s.as_bytes())
            .expect("write stdin");
    }
    child.wait_with_output().expect("wait")
}

pub fn text(o: &Output) -> String {
    format!(
        "exit={:?}\n--- stdout\n{}\n--- stderr\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

pub fn json(o: &Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("not JSON ({e}):\n{}", text(o)))
}

/// Name of the first pod in `ns` whose name starts with `prefix`, via kubectl.
pub fn pod_name(lab: &Lab, ns: &str, prefix: &str) -> String {
    let out = kubectl(lab, &["get", "pods", "-n", ns, "-o", "name"], None);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.trim_start_matches("pod/"))
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no pod {prefix}* in {ns}\n{}", text(&out)))
        .to_string()
}

/// `diagnose svc/httpbin -n foo -o json` plus `extra`, against the lab.
pub fn diagnose(lab: &Lab, extra: &[&str]) -> Output {
    let mut args = vec!["diagnose", "svc/httpbin", "-n", "foo", "-o", "json"];
    args.extend_from_slice(extra);
    mesh503(Some(lab), &args)
}

/// The finding ids of a JSON report, in rank order.
pub fn finding_ids(out: &Output) -> Vec<String> {
    json(out)["findings"]
        .as_array()
        .map(|fs| {
            fs.iter()
                .filter_map(|f| f["id"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// The installed kubectl as an absolute path, for tests that replace PATH
/// (KUBECTL when it names a path, else the first `kubectl` on PATH).
pub fn kubectl_path() -> PathBuf {
    let k = PathBuf::from(kubectl_bin());
    if k.components().count() > 1 {
        return k;
    }
    std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .map(|d| d.join(&k))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("no {} on PATH; set KUBECTL", k.display()))
}

/// A ClusterRole that reads everything the plugin reads except
/// DestinationRules (RBAC hiding the rules that decide client TLS).
pub const ROLE_WITHOUT_DESTINATION_RULES: &str = r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: no-destination-rules}
rules:
- apiGroups: ["", "apps", "discovery.k8s.io", "security.istio.io", "authentication.istio.io", "telemetry.istio.io"]
  resources: ["*"]
  verbs: ["get", "list", "watch"]
- apiGroups: ["networking.istio.io"]
  resources: ["virtualservices", "sidecars", "serviceentries", "gateways", "envoyfilters"]
  verbs: ["get", "list", "watch"]
- apiGroups: [""]
  resources: ["pods/portforward"]
  verbs: ["create"]
"#;

/// A lab on `name` whose API enforces the ClusterRole `role` (YAML); the
/// directory holding the role lives as long as the lab is used.
pub fn start_with_role(name: &str, role: &str) -> (tempfile::TempDir, Lab) {
    let dir = tempfile::tempdir().expect("tempdir");
    let rbac = dir.path().join("role.yaml");
    std::fs::write(&rbac, role).expect("write role");
    let lab = Lab::start(
        &scenario(name),
        LabOptions {
            rbac: Some(rbac),
            ..Default::default()
        },
    )
    .expect("lab");
    (dir, lab)
}

/// The pod lists the plugin asked the lab for, as `path?query`.
pub fn pod_lists(lab: &Lab) -> Vec<String> {
    lab.requests()
        .into_iter()
        .filter(|r| r.verb == "list" && r.resource.as_deref() == Some("pods"))
        .filter(|r| r.user_agent.starts_with("kubectl-mesh503/"))
        .map(|r| format!("{}?{}", r.path, r.query))
        .collect()
}

/// No list of every pod of the cluster: cluster-wide pod lists are
/// narrowed by a label or field selector.
pub fn assert_no_unselected_cluster_wide_pod_list(lists: &[String]) {
    for list in lists {
        assert!(
            !list.starts_with("/api/v1/pods?")
                || list.contains("labelSelector=")
                || list.contains("fieldSelector="),
            "every pod of the cluster was listed: {list} (of {lists:?})"
        );
    }
}
