//! Read-only, proven (issue 10 item 7, docs/rbac.md): the least-privilege
//! ClusterRole of docs/rbac.md — read from that file, so the doc and the
//! test cannot drift — is enough for every command of the plugin, every
//! request the plugin makes is a read (the lab API's request log), and each
//! rule removed from the role yields its named gap and exit code.

mod common;
use common::*;
use mesh503_lab::api::request_log::RequestRecord;
use mesh503_lab::lab::{Lab, LabOptions};
use std::path::{Path, PathBuf};

/// The ClusterRole YAML block of docs/rbac.md.
fn documented_role() -> String {
    let doc =
        std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs/rbac.md"))
            .expect("docs/rbac.md");
    let start = doc
        .find("```yaml\napiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole")
        .expect("a ClusterRole yaml block in docs/rbac.md")
        + "```yaml\n".len();
    let len = doc[start..].find("```").expect("end of the yaml block");
    doc[start..start + len].to_string()
}

fn lab_with_role(dir: &Path, role: &str) -> Lab {
    let file = dir.join("role.yaml");
    std::fs::write(&file, role).unwrap();
    Lab::start(
        &scenario("healthy.yaml"),
        LabOptions {
            rbac: Some(file),
            ..Default::default()
        },
    )
    .expect("lab")
}

/// Runs the plugin and returns its output with the requests it made.
fn run_logged(lab: &Lab, args: &[&str]) -> (std::process::Output, Vec<RequestRecord>) {
    let mark = lab.requests().last().map(|r| r.seq).unwrap_or(0);
    let out = mesh503(Some(lab), args);
    let recs = lab
        .requests()
        .into_iter()
        .filter(|r| r.seq > mark)
        .collect();
    (out, recs)
}

/// Every request is a read: GET; `get`/`list`, or `create` on
/// `pods/portforward`; nothing else.
fn assert_read_only(what: &str, recs: &[RequestRecord]) {
    assert!(!recs.is_empty(), "{what}: no request logged");
    for r in recs {
        let ok_verb = matches!(r.verb.as_str(), "get" | "list")
            || (r.verb == "create" && r.resource.as_deref() == Some("pods/portforward"));
        assert!(
            r.method == "GET" && ok_verb && !r.is_write(),
            "{what}: not a read: {r:?}"
        );
        assert!(!r.query.contains("watch"), "{what}: a watch: {r:?}");
        // Audit logs can name who read.
        assert!(
            r.user_agent.starts_with("kubectl-mesh503/v"),
            "{what}: user agent: {r:?}"
        );
        let res = r.resource.as_deref().unwrap_or("");
        assert!(
            res != "secrets" && !r.path.contains("/secrets"),
            "{what}: {r:?}"
        );
        assert!(
            !(res == "configmaps" && r.verb == "list"),
            "{what}: ConfigMaps are got by name, never listed: {r:?}"
        );
        assert!(
            !["pods/exec", "pods/attach", "pods/proxy", "services/proxy"].contains(&res),
            "{what}: {r:?}"
        );
        assert_ne!(
            r.code, 403,
            "{what}: the documented role is not enough: {r:?}"
        );
    }
    for (verb, res) in [("get", "pods/log"), ("create", "pods/portforward")] {
        assert!(
            recs.iter()
                .any(|r| r.verb == verb && r.resource.as_deref() == Some(res)),
            "{what}: the proof covers {verb} {res}: {recs:#?}"
        );
    }
}

#[test]
fn the_least_privilege_role_is_enough_and_every_request_is_a_read() {
    let dir = tempfile::tempdir().unwrap();
    let lab = lab_with_role(dir.path(), &documented_role());
    // Traffic, so that caller discovery finds the client in the access log.
    assert_eq!(
        request(&lab, "foo/sleep", "http://httpbin.foo:8000/get").status,
        200
    );
    let sleep = pod_name(&lab, "foo", "sleep");
    let saved = dir.path().join("snap.json");
    let pod = format!("pod/{sleep}");
    let runs: Vec<(&str, Vec<&str>)> = vec![
        (
            "diagnose --save-snapshot",
            vec![
                "diagnose",
                "svc/httpbin",
                "-n",
                "foo",
                "--save-snapshot",
                saved.to_str().unwrap(),
            ],
        ),
        (
            "diagnose deploy --from",
            vec![
                "diagnose",
                "deploy/httpbin",
                "-n",
                "foo",
                "--from",
                "deploy/sleep",
                "-o",
                "json",
            ],
        ),
        (
            "tls-check",
            vec!["tls-check", &pod, "svc/httpbin", "-n", "foo"],
        ),
    ];
    for (what, args) in runs {
        let (out, recs) = run_logged(&lab, &args);
        assert_eq!(out.status.code(), Some(0), "{what}: {}", text(&out));
        assert_read_only(what, &recs);
    }
    let snap: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&saved).unwrap()).unwrap();
    assert!(
        snap["resolved"]["missing"].as_array().unwrap().is_empty(),
        "{}",
        snap["resolved"]
    );
}

/// The documented role without one verb on one resource.
fn role_without(role: &str, group: &str, resource: &str, verb: &str) -> String {
    let role: serde_yaml::Value = serde_yaml::from_str(role).unwrap();
    let mut out = role.clone();
    let strings = |v: &serde_yaml::Value| -> Vec<String> {
        v.as_sequence()
            .map(|s| {
                s.iter()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut rules = Vec::new();
    let mut removed = false;
    for rule in role["rules"].as_sequence().unwrap() {
        let (groups, resources, verbs) = (
            strings(&rule["apiGroups"]),
            strings(&rule["resources"]),
            strings(&rule["verbs"]),
        );
        let hit = groups.iter().any(|g| g == group)
            && resources.iter().any(|r| r == resource)
            && verbs.iter().any(|v| v == verb);
        if !hit {
            rules.push(rule.clone());
            continue;
        }
        removed = true;
        let yaml = |res: Vec<String>, verbs: Vec<String>| {
            serde_yaml::to_value(serde_json::json!({
                "apiGroups": groups, "resources": res, "verbs": verbs
            }))
            .unwrap()
        };
        let others: Vec<String> = resources
            .iter()
            .filter(|r| *r != resource)
            .cloned()
            .collect();
        if !others.is_empty() {
            rules.push(yaml(others, verbs.clone()));
        }
        let rest: Vec<String> = verbs.iter().filter(|v| *v != verb).cloned().collect();
        if !rest.is_empty() {
            rules.push(yaml(vec![resource.to_string()], rest));
        }
    }
    assert!(removed, "the documented role has {verb} {group}/{resource}");
    out["rules"] = serde_yaml::Value::Sequence(rules);
    serde_yaml::to_string(&out).unwrap()
}

/// (group, resource, verb removed), command, exit code, the line that names it.
type Case = (
    &'static str,
    &'static str,
    &'static str,
    &'static [&'static str],
    i32,
    &'static str,
);

const FROM: &[&str] = &[
    "diagnose",
    "deploy/httpbin",
    "-n",
    "foo",
    "--from",
    "deploy/sleep",
];

#[test]
fn each_missing_rule_yields_its_named_gap() {
    let role = documented_role();
    // (group, resource, verb removed), command, exit code, the line that names it.
    let cases: &[Case] = &[
        (
            "",
            "services",
            "get",
            &["diagnose", "svc/httpbin", "-n", "foo"],
            3,
            "not allowed to read service foo/httpbin: HTTP 403 Forbidden",
        ),
        (
            "apps",
            "deployments",
            "get",
            FROM,
            3,
            "not allowed to read deployment foo/httpbin: HTTP 403 Forbidden",
        ),
        (
            "",
            "pods",
            "list",
            FROM,
            4,
            "list pods in foo with app=httpbin: HTTP 403 Forbidden",
        ),
        (
            "",
            "pods/portforward",
            "create",
            FROM,
            4,
            ":15000: port-forward failed: HTTP 403 Forbidden",
        ),
        (
            "networking.istio.io",
            "destinationrules",
            "list",
            FROM,
            4,
            "list destinationrules.networking.istio.io/v1: HTTP 403 Forbidden",
        ),
        (
            "security.istio.io",
            "peerauthentications",
            "list",
            FROM,
            4,
            "list peerauthentications.security.istio.io/v1: HTTP 403 Forbidden",
        ),
        (
            "networking.istio.io",
            "virtualservices",
            "list",
            FROM,
            0,
            "list virtualservices.networking.istio.io/v1: HTTP 403 Forbidden",
        ),
        (
            "",
            "pods/log",
            "get",
            FROM,
            0,
            "log of container istio-proxy: HTTP 403 Forbidden",
        ),
        (
            "",
            "configmaps",
            "get",
            FROM,
            0,
            "configmap istio-system/istio: HTTP 403 Forbidden",
        ),
        (
            "",
            "namespaces",
            "list",
            FROM,
            0,
            "list namespaces: HTTP 403 Forbidden",
        ),
        (
            "discovery.k8s.io",
            "endpointslices",
            "list",
            FROM,
            0,
            "list endpointslices of foo/httpbin: HTTP 403 Forbidden",
        ),
    ];
    let mut failures = Vec::new();
    for (group, resource, verb, args, code, line) in cases {
        let dir = tempfile::tempdir().unwrap();
        let lab = lab_with_role(dir.path(), &role_without(&role, group, resource, verb));
        let (out, recs) = run_logged(&lab, args);
        // Reports wrap at the width (100 when piped): compare words, not lines.
        let words = |t: &str| t.split_whitespace().collect::<Vec<_>>().join(" ");
        let all = words(&format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
        let denied = recs
            .iter()
            .any(|r| r.code == 403 && r.resource.as_deref() == Some(*resource) && r.verb == *verb);
        // One gap line per forbidden Istio kind, not one per served version
        // and scope (issue 10: "3 gap lines per served version (45 lines)").
        let stdout = String::from_utf8_lossy(&out.stdout);
        // A gap is an entry `  - …` (its wrapped lines are indented further).
        let lines = stdout
            .lines()
            .filter(|l| l.starts_with("  - ") && l.contains(&format!("{resource}.{group}")))
            .count();
        let one_line = !group.contains("istio.io") || lines == 1;
        if out.status.code() != Some(*code) || !all.contains(&words(line)) || !denied || !one_line {
            failures.push(format!(
                "without {verb} {group}/{resource}: want exit {code} and {line:?} (denied: {denied}, lines: {lines})\n{}",
                text(&out)
            ));
        }
        // Whatever is missing, the plugin still only reads.
        for r in &recs {
            assert!(r.method == "GET" && !r.is_write(), "{r:?}");
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// Live `tls-check` when the sidecar cannot be read (no port-forward right):
/// exit 4 "could not check", never an empty table with exit 0 (issue 10).
#[test]
fn tls_check_without_port_forward_is_exit_4() {
    let dir = tempfile::tempdir().unwrap();
    let role = role_without(&documented_role(), "", "pods/portforward", "create");
    let lab = lab_with_role(dir.path(), &role);
    let pod = format!("pod/{}", pod_name(&lab, "foo", "sleep"));
    let (out, recs) = run_logged(&lab, &["tls-check", &pod, "-n", "foo"]);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("port-forward") && err.contains("403"), "{err}");
    assert!(recs
        .iter()
        .any(|r| r.resource.as_deref() == Some("pods/portforward") && r.code == 403));
}
