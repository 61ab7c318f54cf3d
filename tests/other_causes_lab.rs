//! mTLS is the first cause, not the only one: overflow, undefined subsets and
//! an app bound to localhost, each a real Envoy failure in the lab.

mod common;
use common::*;

const URL: &str = "http://httpbin.foo:8000/get";

#[test]
fn circuit_breaker_overflow() {
    let lab = start("overflow.yaml");
    let results = lab.curl("foo/sleep", URL, 20, 10).unwrap();
    let overflowed = results
        .iter()
        .filter_map(|r| r.as_ref().ok())
        .filter(|r| {
            r.status == 503
                && r.headers
                    .iter()
                    .any(|(k, v)| k == "x-envoy-overloaded" && v == "true")
        })
        .count();
    assert!(
        overflowed > 0,
        "some calls overflow: {:?}",
        results
            .iter()
            .map(|r| r.as_ref().map(|r| r.status))
            .collect::<Vec<_>>()
    );
    let out = diagnose(&lab, &[]);
    assert_eq!(
        finding_ids(&out).first().map(String::as_str),
        Some("CIRCUIT_BREAKER_OVERFLOW"),
        "{}",
        text(&out)
    );
}

#[test]
fn undefined_subset() {
    let lab = start("subset-missing.yaml");
    let r = request(&lab, "foo/sleep", URL);
    assert_eq!(r.status, 503, "{r}");
    let out = diagnose(&lab, &["--from", "deploy/sleep"]);
    let ids = finding_ids(&out);
    assert_eq!(
        ids.first().map(String::as_str),
        Some("SUBSET_NOT_FOUND"),
        "{}",
        text(&out)
    );
}

#[test]
fn app_bound_to_localhost() {
    let lab = start("app-on-localhost.yaml");
    let r = request(&lab, "foo/sleep", URL);
    assert_eq!(r.status, 503, "{r}");
    let out = diagnose(&lab, &["--from", "deploy/sleep"]);
    assert!(
        finding_ids(&out).contains(&"APP_NOT_LISTENING".to_string()),
        "{}",
        text(&out)
    );
    assert_eq!(
        json(&out)["findings"][0]["id"],
        "APP_NOT_LISTENING",
        "{}",
        text(&out)
    );
}

#[test]
fn keepalive_race_with_the_app() {
    let lab = start("keepalive-race.yaml");
    assert_eq!(request(&lab, "foo/sleep", URL).status, 200);
    // Let the pooled app connection go stale, then reuse it.
    std::thread::sleep(std::time::Duration::from_millis(500));
    let r = request(&lab, "foo/sleep", URL);
    assert_eq!(r.status, 503, "the reused connection is reset: {r}");
    let out = diagnose(&lab, &["--from", "deploy/sleep"]);
    let report = json(&out);
    assert_eq!(
        report["findings"][0]["id"],
        "UPSTREAM_CONNECTION_RESET",
        "{}",
        text(&out)
    );
    assert!(report["findings"][0]["fixes"]["chosen"]["summary"]
        .as_str()
        .unwrap()
        .contains("idleTimeout"));
}
