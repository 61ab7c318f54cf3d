//! `kubectl mesh503 tls-check` on its own: given only the client
//! (`pod/NAME` or `deploy/NAME`), it reads the server sidecars behind the
//! destinations the client's sidecar lists and says CONFLICT where the
//! client's TLS and the server's mode cannot meet — the seed lab's sleep →
//! httpbin, which real Envoy answers with 503.

mod common;
use common::*;

fn httpbin_row(out: &std::process::Output) -> serde_json::Value {
    json(out)["clients"]
        .as_array()
        .unwrap_or_else(|| panic!("clients\n{}", text(out)))
        .iter()
        .find(|r| r["host"] == "httpbin.foo.svc.cluster.local" && r["port"] == 8000)
        .cloned()
        .unwrap_or_else(|| panic!("no httpbin row\n{}", text(out)))
}

#[test]
fn seed_pod_alone_reports_conflict_and_exits_1() {
    let lab = start("seed-2018.yaml");
    assert_eq!(
        request(&lab, "foo/sleep", "http://httpbin.foo:8000/get").status,
        503
    );
    let sleep = pod_name(&lab, "foo", "sleep-");
    let out = mesh503(
        Some(&lab),
        &[
            "tls-check",
            &format!("pod/{sleep}"),
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
    let row = httpbin_row(&out);
    assert_eq!(row["status"], "CONFLICT", "{row}");
    assert_eq!(row["client_tls"], "plaintext", "{row}");
    assert_eq!(row["server_mode"], "STRICT", "{row}");
    assert_eq!(
        row["rule"], "foo/httpbin",
        "the applying rule is named: {row}"
    );
    let t = json(&out);
    assert!(
        t["servers"]
            .to_string()
            .contains(&pod_name(&lab, "foo", "httpbin-")),
        "httpbin's sidecar was read as a server: {t}"
    );

    // The table says the same, with the rule, and exits 1 too.
    let table = mesh503(
        Some(&lab),
        &["tls-check", &format!("pod/{sleep}"), "-n", "foo"],
    );
    assert_eq!(table.status.code(), Some(1), "{}", text(&table));
    let line = String::from_utf8_lossy(&table.stdout)
        .lines()
        // Full host, or `name.ns` when the table is wider than the terminal.
        .find(|l| {
            l.contains("httpbin.foo.svc.cluster.local:8000") || l.contains("httpbin.foo:8000")
        })
        .map(str::to_string)
        .unwrap_or_else(|| panic!("{}", text(&table)));
    assert!(
        line.contains("CONFLICT") && line.contains("foo/httpbin"),
        "{line}"
    );
}

#[test]
fn deploy_form_and_svc_limit_the_rows() {
    let lab = start("scan-mixed.yaml");
    let out = mesh503(
        Some(&lab),
        &[
            "tls-check",
            "deploy/sleep",
            "svc/httpbin",
            "-n",
            "foo",
            "-o",
            "json",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let t = json(&out);
    let hosts: Vec<&str> = t["clients"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["host"].as_str().unwrap())
        .collect();
    assert!(
        !hosts.is_empty() && hosts.iter().all(|h| *h == "httpbin.foo.svc.cluster.local"),
        "svc/httpbin limits the rows: {hosts:?}"
    );
    let row = httpbin_row(&out);
    assert_eq!(row["status"], "CONFLICT", "{row}");
    assert_eq!(row["rule"], "foo/httpbin", "{row}");

    // Alone, the same client: the healthy echo in another namespace is OK
    // (auto mTLS to a STRICT sidecar), httpbin still CONFLICT.
    let all = mesh503(
        Some(&lab),
        &["tls-check", "deploy/sleep", "-n", "foo", "-o", "json"],
    );
    assert_eq!(all.status.code(), Some(1), "{}", text(&all));
    let echo = json(&all)["clients"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["host"] == "echo.ok.svc.cluster.local")
        .cloned()
        .unwrap_or_else(|| panic!("no echo row\n{}", text(&all)));
    assert!(echo["status"] == "AUTO" || echo["status"] == "OK", "{echo}");
}

#[test]
fn help_has_its_own_flags_and_exit_codes() {
    let out = mesh503(None, &["tls-check", "--help"]);
    let help = String::from_utf8_lossy(&out.stdout);
    for absent in ["--all-namespaces", "--log-lines", "--max-clients", "--from"] {
        assert!(!help.contains(absent), "{absent} is diagnose's\n{help}");
    }
    for present in ["deploy/NAME", "--max-servers", "CONFLICT"] {
        assert!(help.contains(present), "{present}\n{help}");
    }
    let scan = mesh503(None, &["scan", "--help"]);
    let help = String::from_utf8_lossy(&scan.stdout);
    assert!(
        help.contains("--all-namespaces") && !help.contains("--log-lines"),
        "{help}"
    );
}
