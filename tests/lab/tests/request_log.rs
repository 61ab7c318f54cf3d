//! The lab API's request log: every request's verb, path, query and user,
//! readable through `Lab::requests()` and, with `mesh503-lab up
//! --request-log FILE`, as JSON lines — what tests use to prove what a tool
//! does and does not do to a cluster. Driven with the installed kubectl.
//!
//! Needs Envoy (`ENVOY_BIN`) and kubectl (`KUBECTL`); `scripts/test` sets both.

use mesh503_lab::api::request_log::{RequestRecord, ANONYMOUS};
use mesh503_lab::lab::{Lab, LabOptions};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn scenario(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../scenarios")
        .join(name)
}

fn kubectl_bin() -> String {
    std::env::var("KUBECTL").unwrap_or_else(|_| "kubectl".into())
}

/// kubectl's stdout, failing the test when kubectl fails.
fn kubectl(lab: &Lab, args: &[&str]) -> String {
    let out = Command::new(kubectl_bin())
        .arg("--kubeconfig")
        .arg(lab.kubeconfig())
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run kubectl: {e} (scripts/test installs it)"));
    assert!(
        out.status.success(),
        "kubectl {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn kubectl_reads(recs: &[RequestRecord]) -> Vec<&RequestRecord> {
    recs.iter()
        .filter(|r| r.user_agent.starts_with("kubectl"))
        .collect()
}

#[test]
fn request_log_records_kubectl_verb_path_query_and_user() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("requests.jsonl");
    let lab = Lab::start(
        &scenario("default-profile.yaml"),
        LabOptions {
            request_log: Some(file.clone()),
            ..LabOptions::default()
        },
    )
    .expect("lab");
    let mark = lab.requests().len();
    kubectl(&lab, &["get", "pods", "-n", "store", "-o", "wide"]);
    kubectl(
        &lab,
        &[
            "logs",
            "-n",
            "store",
            "deploy/inventory",
            "-c",
            "istio-proxy",
            "--tail",
            "5",
        ],
    );
    kubectl(
        &lab,
        &["--as", "alice", "get", "deployments", "-n", "store"],
    );
    let recs = lab.requests();
    let new = kubectl_reads(&recs[mark..]);
    let list = new
        .iter()
        .find(|r| r.path == "/api/v1/namespaces/store/pods" && r.query.contains("limit=500"))
        .unwrap_or_else(|| panic!("no pod list in {new:#?}"));
    assert_eq!(
        (
            list.verb.as_str(),
            list.method.as_str(),
            list.user.as_deref(),
            list.code,
            list.resource.as_deref()
        ),
        ("list", "GET", Some(ANONYMOUS), 200, Some("pods"))
    );
    let log = new
        .iter()
        .find(|r| r.resource.as_deref() == Some("pods/log"))
        .expect("pods/log request");
    assert!(
        log.verb == "get"
            && log.query.contains("container=istio-proxy")
            && log.query.contains("tailLines=5"),
        "{log:?}"
    );
    let imp = new
        .iter()
        .find(|r| r.impersonated_user.as_deref() == Some("alice"))
        .expect("impersonated request");
    assert_eq!(imp.path, "/apis/apps/v1/namespaces/store/deployments");
    assert!(
        new.iter().all(|r| !r.is_write()),
        "kubectl get/logs write nothing: {new:#?}"
    );
    assert!(new.windows(2).all(|w| w[0].seq < w[1].seq));
    // The file holds the same records as JSON lines.
    let text = std::fs::read_to_string(&file).unwrap();
    let from_file: Vec<RequestRecord> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(&from_file[..recs.len()], &recs[..]);
}

#[test]
fn request_log_names_the_token_user_and_rejected_requests() {
    let lab = Lab::start(
        &scenario("default-profile.yaml"),
        LabOptions {
            token: Some("s3cret".into()),
            ..LabOptions::default()
        },
    )
    .expect("lab");
    let url = format!(
        "{}/api/v1/namespaces/store/pods?labelSelector=app%3Dcheckout",
        lab.api_url()
    );
    let codes: Vec<u16> = lab.block_on(async {
        let c = reqwest::Client::builder().no_proxy().build().unwrap();
        let with = c
            .get(&url)
            .bearer_auth("s3cret")
            .send()
            .await
            .unwrap()
            .status()
            .as_u16();
        let without = c.get(&url).send().await.unwrap().status().as_u16();
        vec![with, without]
    });
    assert_eq!(codes, vec![200, 401]);
    let recs = lab.requests();
    let mine: Vec<&RequestRecord> = recs
        .iter()
        .filter(|r| r.query == "labelSelector=app%3Dcheckout")
        .collect();
    assert_eq!(mine.len(), 2, "{recs:#?}");
    assert_eq!(
        (mine[0].user.as_deref(), mine[0].code, mine[0].verb.as_str()),
        (Some("lab"), 200, "list")
    );
    assert_eq!((mine[1].user.as_deref(), mine[1].code), (None, 401));
}

/// `mesh503-lab up --request-log FILE` writes kubectl's requests as JSON lines.
#[test]
fn cli_up_writes_the_request_log() {
    let dir = tempfile::tempdir().unwrap();
    let (kc, log) = (
        dir.path().join("kubeconfig"),
        dir.path().join("requests.jsonl"),
    );
    let mut up = Command::new(env!("CARGO_BIN_EXE_mesh503-lab"))
        .arg("up")
        .arg(scenario("default-profile.yaml"))
        .arg("--kubeconfig-out")
        .arg(&kc)
        .arg("--request-log")
        .arg(&log)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("mesh503-lab up");
    // `up` prints the export line once the lab is up.
    let mut stdout = up.stdout.take().unwrap();
    let mut first = String::new();
    {
        use std::io::Read;
        let mut byte = [0u8; 1];
        let deadline = Instant::now() + Duration::from_secs(60);
        while !first.ends_with('\n') && Instant::now() < deadline {
            match stdout.read(&mut byte) {
                Ok(1) => first.push(byte[0] as char),
                _ => break,
            }
        }
    }
    assert!(first.starts_with("export KUBECONFIG="), "{first:?}");
    let out = Command::new(kubectl_bin())
        .arg("--kubeconfig")
        .arg(&kc)
        .args(["get", "namespaces"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // SAFETY: SIGTERM to the child this test started.
    unsafe {
        libc::kill(up.id() as i32, libc::SIGTERM);
    }
    let status = up.wait().unwrap();
    assert!(status.success(), "up stops cleanly on SIGTERM: {status:?}");
    let text = std::fs::read_to_string(&log).unwrap();
    let recs: Vec<RequestRecord> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let ns = recs
        .iter()
        .find(|r| r.path == "/api/v1/namespaces" && r.user_agent.starts_with("kubectl"))
        .unwrap_or_else(|| panic!("no namespace list in {text}"));
    assert_eq!(
        (ns.verb.as_str(), ns.user.as_deref(), ns.code),
        ("list", Some(ANONYMOUS), 200)
    );
}
