//! Evidence beyond access logs, with real traffic in the lab: a sidecar's
//! rejected config (`error_state`) found first and tied to its EnvoyFilter,
//! and 503s seen only in Istio's standard metrics never reported as
//! "no cause".

mod common;

use common::*;

fn findings(out: &std::process::Output) -> Vec<serde_json::Value> {
    json(out)["findings"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// envoyfilter-nack.yaml, step 2: httpbin's sidecar NACKs `virtualInbound`
/// (a Lua EnvoyFilter with a syntax error) and keeps STRICT while its
/// clients were told to send plaintext. The rejection is the first finding,
/// naming the listener, Envoy's error and the EnvoyFilter.
#[test]
fn rejected_inbound_listener_is_the_first_finding() {
    let lab = start("envoyfilter-nack.yaml");
    assert_eq!(
        request(&lab, "foo/sleep", "http://httpbin.foo:8000/get").status,
        200
    );
    let step = scenario("steps/envoyfilter-nack-change.yaml");
    let out = kubectl(&lab, &["apply", "-f", step.to_str().unwrap()], None);
    assert!(out.status.success(), "{}", text(&out));
    lab.wait_synced().expect("a NACK is not a lab error");
    for _ in 0..3 {
        let r = request(&lab, "foo/sleep", "http://httpbin.foo:8000/get");
        assert_eq!(r.status, 503, "{r}");
    }

    let out = diagnose(&lab, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let fs = findings(&out);
    let first = &fs[0];
    assert_eq!(first["id"], "CONFIG_REJECTED", "{}", text(&out));
    assert_eq!(first["severity"], "error");
    let claim = first["claim"].as_str().unwrap();
    assert!(
        claim.contains(
            "rejected listener virtualInbound, most likely from EnvoyFilter foo/httpbin-lua"
        ),
        "{claim}"
    );
    assert!(claim.contains("script load error"), "{claim}");
    let ev = first["evidence"].as_array().unwrap();
    let dump = ev
        .iter()
        .find(|e| {
            e["source"]
                .as_str()
                .unwrap()
                .ends_with(":15000/config_dump")
        })
        .unwrap_or_else(|| panic!("config_dump evidence: {first:#}"));
    assert!(
        dump["detail"]
            .as_str()
            .unwrap()
            .contains("last_update_attempt 20"),
        "{dump}"
    );
    assert!(ev
        .iter()
        .any(|e| e["source"] == "EnvoyFilter foo/httpbin-lua"));
    assert!(
        first["explanation"].as_array().unwrap().iter().any(|l| l
            .as_str()
            .unwrap()
            .contains("keeps serving the version it accepted before")),
        "{first:#}"
    );
    assert!(!fs.iter().any(|f| f["id"] == "UNEXPLAINED_503S"), "{fs:#?}");
}

/// default-profile.yaml: access logs off; checkout → inventory answers 503
/// (app on localhost). The server sidecar's metrics alone (reporter
/// destination, URX,UF) give APP_NOT_LISTENING first.
#[test]
fn metrics_only_503s_are_never_no_cause() {
    let lab = start("default-profile.yaml");
    for _ in 0..3 {
        let r = request(&lab, "store/checkout", "http://inventory.store:8080/get");
        assert_eq!(r.status, 503, "{r}");
    }
    let out = mesh503(
        Some(&lab),
        &["diagnose", "svc/inventory", "-n", "store", "-o", "json"],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let fs = findings(&out);
    assert_eq!(fs[0]["id"], "APP_NOT_LISTENING", "{}", text(&out));
    assert_eq!(fs[0]["severity"], "error");
    let ev = &fs[0]["evidence"][0];
    assert!(
        ev["source"]
            .as_str()
            .unwrap()
            .starts_with("pod store/inventory-")
            && ev["source"]
                .as_str()
                .unwrap()
                .ends_with(":15020/stats/prometheus")
            && ev["detail"].as_str().unwrap().ends_with(": 3"),
        "{ev}"
    );
    assert!(!fs.iter().any(|f| f["id"] == "UNEXPLAINED_503S"), "{fs:#?}");
}

/// healthy.yaml, but the app itself answers 503 (`/status/503`): no rule
/// explains it, so the report says the 503s are unexplained (an error,
/// exit 1) and attributes them: relayed by both sidecars, produced by the
/// app, in the logs and in the metrics of both reporters.
#[test]
fn an_app_answering_503_is_unexplained_and_attributed_to_the_app() {
    let lab = start("healthy.yaml");
    for _ in 0..3 {
        let r = request(&lab, "foo/sleep", "http://httpbin.foo:8000/status/503");
        assert_eq!(r.status, 503, "{r}");
    }
    let out = diagnose(&lab, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let fs = findings(&out);
    let f = &fs[0];
    assert_eq!(f["id"], "UNEXPLAINED_503S", "{}", text(&out));
    assert_eq!(f["severity"], "error");
    assert!(
        f["claim"]
            .as_str()
            .unwrap()
            .ends_with("no cause identified"),
        "{f:#}"
    );
    let details: Vec<(String, String)> = f["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["source"].as_str().unwrap().to_string(),
                e["detail"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let has = |src_pod: &str, src_end: &str, detail: &str| {
        details.iter().any(|(s, d)| {
            s.starts_with(&format!("pod foo/{src_pod}-"))
                && s.ends_with(src_end)
                && d.contains(detail)
        })
    };
    for (pod, src, detail) in [
        ("httpbin", ":15020/stats/prometheus", "3 × 503 - (reporter destination, from foo/sleep), relayed by the server's sidecar: the application answered 503"),
        ("sleep", ":15020/stats/prometheus", "3 × 503 - (reporter source, from foo/sleep), relayed by the caller's sidecar"),
        ("httpbin", "istio-proxy log", "3 × 503 - (access log inbound), relayed by the server's sidecar: the application answered 503"),
        ("sleep", "istio-proxy log", "3 × 503 - (access log outbound), relayed by the caller's sidecar"),
    ] {
        assert!(has(pod, src, detail), "{pod} {src} {detail}: {details:#?}");
    }
}

/// RBAC hides DestinationRules; the client's cluster names the rule it was
/// built from (`istio.config` → foo/httpbin). PROXY_CONFIG_DIFFERS says the
/// proxy runs a rule the tool could not see, and why.
#[test]
fn a_rule_hidden_from_the_tool_but_run_by_the_proxy_is_reported() {
    let (_dir, lab) = start_with_role(
        "seed-strict-no-automtls.yaml",
        ROLE_WITHOUT_DESTINATION_RULES,
    );
    assert_eq!(
        request(&lab, "foo/sleep", "http://httpbin.foo:8000/get").status,
        503
    );
    let out = diagnose(&lab, &["--from", "deploy/sleep"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let fs = findings(&out);
    let f = fs
        .iter()
        .find(|f| f["id"] == "PROXY_CONFIG_DIFFERS")
        .unwrap_or_else(|| panic!("{}", text(&out)));
    let claim = f["claim"].as_str().unwrap();
    assert!(
        claim
            .contains("from foo/httpbin, but the tool may not list DestinationRules in foo (RBAC)"),
        "{claim}"
    );
}
