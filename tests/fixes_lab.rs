//! Every printed fix, applied in the lab with the installed kubectl, against
//! every caller/service pair of the scenario (docs/fixes.md).
//!
//! For each scenario with a fix: traffic for every (Deployment, Service
//! port) pair first (statuses recorded, and whether the server app saw a
//! forwarded client certificate: the server's view of mTLS); then
//! `diagnose -o json`; the chosen fix's manifests go to `kubectl apply -f -`
//! as the JSON report holds them; the lab syncs; traffic again. The failing
//! pairs must answer 200, the pairs the report says it repairs too, every
//! pair it does not name must answer as before, and every call that
//! carried a client certificate (sidecar-to-sidecar mTLS) must still carry
//! one.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::*;
use mesh503_lab::lab::Lab;
use serde_json::Value;

/// A caller Deployment (`ns/name`) and a Service port (`name.ns:port`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Pair {
    from: String,
    svc: String,
    ns: String,
    port: u64,
}

impl Pair {
    fn url(&self) -> String {
        format!("http://{}.{}:{}/headers", self.svc, self.ns, self.port)
    }

    /// The JSON report's pair (`ns/pod-…`, `svc.ns.svc.cluster.local`, port).
    fn is(&self, p: &Value) -> bool {
        let client = p["client"].as_str().unwrap_or("");
        client.starts_with(&format!("{}-", self.from))
            && p["host"].as_str()
                == Some(format!("{}.{}.svc.cluster.local", self.svc, self.ns).as_str())
            && p["port"].as_u64() == Some(self.port)
    }
}

impl std::fmt::Display for Pair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} → {}.{}:{}", self.from, self.svc, self.ns, self.port)
    }
}

/// What the pair answered: the statuses seen, and whether every 200 came
/// with `x-forwarded-client-cert` at the app (the server sidecar took mTLS).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Outcome {
    statuses: BTreeSet<u16>,
    mtls: bool,
}

impl Outcome {
    fn all_ok(&self) -> bool {
        self.statuses.iter().all(|s| *s == 200)
    }
}

/// Every Deployment × every Service port of a scenario file.
fn pairs(scenario: &str) -> Vec<Pair> {
    let text = std::fs::read_to_string(common::scenario(scenario)).unwrap();
    let docs: Vec<Value> = serde_yaml::Deserializer::from_str(&text)
        .filter_map(|d| serde::Deserialize::deserialize(d).ok())
        .collect();
    let of = |kind: &str| -> Vec<&Value> { docs.iter().filter(|d| d["kind"] == kind).collect() };
    let mut out = Vec::new();
    for d in of("Deployment") {
        let from = format!(
            "{}/{}",
            d["metadata"]["namespace"].as_str().unwrap(),
            d["metadata"]["name"].as_str().unwrap()
        );
        for s in of("Service") {
            for p in s["spec"]["ports"].as_array().into_iter().flatten() {
                out.push(Pair {
                    from: from.clone(),
                    svc: s["metadata"]["name"].as_str().unwrap().into(),
                    ns: s["metadata"]["namespace"].as_str().unwrap().into(),
                    port: p["port"].as_u64().unwrap(),
                });
            }
        }
    }
    out
}

fn traffic(lab: &Lab, pairs: &[Pair], count: usize, concurrency: usize) -> BTreeMap<Pair, Outcome> {
    pairs
        .iter()
        .map(|p| {
            let rs = lab
                .curl(&p.from, &p.url(), count, concurrency)
                .expect("curl ran");
            let mut statuses = BTreeSet::new();
            let mut mtls = true;
            for r in rs {
                match r {
                    Ok(r) => {
                        statuses.insert(r.status);
                        if r.status == 200 {
                            let body: Value = serde_json::from_str(&r.body).unwrap_or(Value::Null);
                            mtls &=
                                body["headers"]
                                    .get("x-forwarded-client-cert")
                                    .is_some_and(|v| {
                                        v.as_str().is_some_and(|v| v.contains("URI=spiffe://"))
                                    });
                        }
                    }
                    Err(_) => {
                        statuses.insert(0);
                    }
                }
            }
            let mtls = mtls && statuses.contains(&200);
            (p.clone(), Outcome { statuses, mtls })
        })
        .collect()
}

/// One scenario's run.
struct Case<'a> {
    scenario: &'a str,
    /// `diagnose` arguments after `diagnose`.
    diagnose: &'a [&'a str],
    cause: &'a str,
    kind: &'a str,
    /// The pairs the finding is about (`ns/deploy`, service, namespace).
    failing: &'a [(&'a str, &'a str, &'a str)],
    count: usize,
    concurrency: usize,
}

impl Default for Case<'_> {
    fn default() -> Self {
        Case {
            scenario: "",
            diagnose: &[],
            cause: "",
            kind: "",
            failing: &[],
            count: 1,
            concurrency: 1,
        }
    }
}

/// Runs a case up to the diagnosis: the lab, the pairs, the traffic before,
/// the report's finding.
fn diagnose_case(case: &Case, lab: &Lab) -> (Vec<Pair>, BTreeMap<Pair, Outcome>, Value) {
    let pairs = pairs(case.scenario);
    let before = traffic(lab, &pairs, case.count, case.concurrency);
    for (from, svc, ns) in case.failing {
        let p = pairs
            .iter()
            .find(|p| p.from == *from && p.svc == *svc && p.ns == *ns)
            .unwrap();
        assert!(
            !before[p].all_ok(),
            "{p} fails before the fix: {:?}",
            before[p]
        );
    }
    let mut args = vec!["diagnose"];
    args.extend_from_slice(case.diagnose);
    args.extend_from_slice(&["-o", "json"]);
    let out = mesh503(Some(lab), &args);
    let report = json(&out);
    let finding = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["id"] == case.cause)
        .unwrap_or_else(|| panic!("no {} finding:\n{}", case.cause, text(&out)))
        .clone();
    assert_eq!(
        finding["fixes"]["chosen"]["kind"],
        case.kind,
        "{}",
        serde_json::to_string_pretty(&finding["fixes"]).unwrap()
    );
    (pairs, before, finding)
}

/// Applies the finding's chosen fix with the installed kubectl, as the
/// JSON report holds it.
fn apply_fix(lab: &Lab, finding: &Value) {
    let docs: Vec<&str> = finding["fixes"]["chosen"]["manifests"]
        .as_array()
        .expect("the chosen fix has manifests")
        .iter()
        .map(|m| m["yaml"].as_str().unwrap())
        .collect();
    let o = kubectl(lab, &["apply", "-f", "-"], Some(&docs.join("---\n")));
    assert!(o.status.success(), "kubectl apply: {}", text(&o));
}

/// After the fix: failing and repaired pairs answer 200, changed pairs are
/// no worse, every other pair answers as before, mTLS kept.
fn check_after(
    case: &Case,
    pairs: &[Pair],
    before: &BTreeMap<Pair, Outcome>,
    after: &BTreeMap<Pair, Outcome>,
    finding: &Value,
) {
    let effect = &finding["fixes"]["chosen"]["effect"];
    let listed = |key: &str, p: &Pair| {
        effect[key]
            .as_array()
            .is_some_and(|a| a.iter().any(|x| p.is(x)))
    };
    for p in pairs {
        let (b, a) = (&before[p], &after[p]);
        let failing = case
            .failing
            .iter()
            .any(|(f, s, n)| p.from == *f && p.svc == *s && p.ns == *n);
        if failing || listed("repairs", p) {
            assert!(a.all_ok(), "{p} is repaired: before {b:?}, after {a:?}");
            if failing && case.cause != "MTLS_TO_PLAINTEXT_SERVER" && case.cause.starts_with("MTLS")
                || case.cause == "TLS_ORIGINATION_TO_SIDECAR"
            {
                assert!(
                    a.mtls,
                    "{p} is repaired with mTLS, as the server sees it: {a:?}"
                );
            }
        } else if listed("changes", p) {
            assert!(
                !b.all_ok() || a.all_ok(),
                "{p} changed for the worse: {b:?} → {a:?}"
            );
        } else {
            assert_eq!(a.statuses, b.statuses, "{p} must not change");
        }
        if b.all_ok() && b.mtls {
            assert!(
                a.mtls,
                "{p} lost mTLS (no client certificate at the server): {a:?}"
            );
        }
    }
}

fn run(case: Case) -> Value {
    run_with(case).0
}

/// [`run`], also giving what every pair answered after the fix.
fn run_with(case: Case) -> (Value, BTreeMap<Pair, Outcome>) {
    let lab = start(case.scenario);
    let (pairs, before, finding) = diagnose_case(&case, &lab);
    apply_fix(&lab, &finding);
    lab.wait_synced().unwrap();
    let after = traffic(&lab, &pairs, case.count, case.concurrency);
    check_after(&case, &pairs, &before, &after, &finding);
    (finding, after)
}

fn outcome<'a>(m: &'a BTreeMap<Pair, Outcome>, from: &str, svc: &str, ns: &str) -> &'a Outcome {
    m.iter()
        .find(|(p, _)| p.from == from && p.svc == svc && p.ns == ns)
        .map(|(_, o)| o)
        .unwrap()
}

fn rejected_kinds(finding: &Value) -> Vec<String> {
    finding["fixes"]["rejected"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| r["kind"].as_str().unwrap_or("").to_string())
        .collect()
}

const HTTPBIN: &[(&str, &str, &str)] = &[("foo/sleep", "httpbin", "foo")];

#[test]
fn seed_2018() {
    let f = run(Case {
        scenario: "seed-2018.yaml",
        diagnose: &["svc/httpbin", "-n", "foo"],
        cause: "MTLS_PLAINTEXT_TO_STRICT",
        kind: "edit-destination-rule",
        failing: HTTPBIN,
        ..Case::default()
    });
    let yaml = f["fixes"]["chosen"]["manifests"][0]["yaml"]
        .as_str()
        .unwrap();
    assert!(
        yaml.contains("consecutiveErrors: 1"),
        "Istio 1.0's own field is kept: {yaml}"
    );
    assert!(
        yaml.starts_with("apiVersion: networking.istio.io/v1alpha3"),
        "{yaml}"
    );
}

#[test]
fn seed_strict_no_automtls() {
    run(Case {
        scenario: "seed-strict-no-automtls.yaml",
        diagnose: &["svc/httpbin", "-n", "foo"],
        cause: "MTLS_PLAINTEXT_TO_STRICT",
        kind: "edit-destination-rule",
        failing: HTTPBIN,
        ..Case::default()
    });
}

#[test]
fn seed_disable_automtls() {
    run(Case {
        scenario: "seed-disable-automtls.yaml",
        diagnose: &["svc/httpbin", "-n", "foo"],
        cause: "MTLS_PLAINTEXT_TO_STRICT",
        kind: "edit-destination-rule",
        failing: HTTPBIN,
        ..Case::default()
    });
}

#[test]
fn two_rules_one_host() {
    let f = run(Case {
        scenario: "two-rules-one-host.yaml",
        diagnose: &["svc/httpbin", "-n", "foo"],
        cause: "MTLS_PLAINTEXT_TO_STRICT",
        kind: "edit-destination-rule",
        failing: HTTPBIN,
        ..Case::default()
    });
    // The rule whose trafficPolicy won the merge is the one edited.
    assert_eq!(
        f["fixes"]["chosen"]["manifests"][0]["object"],
        "DestinationRule foo/httpbin-pool"
    );
}

#[test]
fn mtls_to_no_sidecar() {
    let f = run(Case {
        scenario: "mtls-to-no-sidecar.yaml",
        diagnose: &["svc/httpbin", "-n", "foo"],
        cause: "MTLS_TO_PLAINTEXT_SERVER",
        kind: "new-destination-rule",
        failing: HTTPBIN,
        ..Case::default()
    });
    assert_eq!(f["fixes"]["chosen"]["manifests"][0]["action"], "create");
    assert!(rejected_kinds(&f).contains(&"edit-wide-destination-rule".to_string()));
}

#[test]
fn automtls_blind_spot() {
    run(Case {
        scenario: "automtls-blind-spot.yaml",
        diagnose: &["svc/httpbin", "-n", "foo"],
        cause: "MTLS_TO_PLAINTEXT_SERVER",
        kind: "new-destination-rule",
        failing: HTTPBIN,
        ..Case::default()
    });
}

#[test]
fn simple_tls_to_sidecar() {
    run(Case {
        scenario: "simple-tls-to-sidecar.yaml",
        diagnose: &["svc/httpbin", "-n", "foo"],
        cause: "TLS_ORIGINATION_TO_SIDECAR",
        kind: "edit-destination-rule",
        failing: HTTPBIN,
        ..Case::default()
    });
}

#[test]
fn overflow() {
    let f = run(Case {
        scenario: "overflow.yaml",
        diagnose: &["svc/httpbin", "-n", "foo", "--from", "deploy/sleep"],
        cause: "CIRCUIT_BREAKER_OVERFLOW",
        kind: "tune-connection-pool",
        failing: HTTPBIN,
        count: 20,
        concurrency: 10,
    });
    let yaml = f["fixes"]["chosen"]["manifests"][0]["yaml"]
        .as_str()
        .unwrap();
    assert!(!yaml.contains("maxConnections: 1\n"), "{yaml}");
}

#[test]
fn subset_missing() {
    let f = run(Case {
        scenario: "subset-missing.yaml",
        diagnose: &["svc/httpbin", "-n", "foo", "--from", "deploy/sleep"],
        cause: "SUBSET_NOT_FOUND",
        kind: "route-to-existing-pods",
        failing: HTTPBIN,
        ..Case::default()
    });
    // Only objects that exist are edited, and said to be.
    for m in f["fixes"]["chosen"]["manifests"].as_array().unwrap() {
        assert_eq!(m["action"], "edit");
        assert_eq!(m["object"], "VirtualService foo/httpbin");
    }
}

#[test]
fn keepalive_race() {
    let lab = start("keepalive-race.yaml");
    let case = Case {
        scenario: "keepalive-race.yaml",
        diagnose: &["svc/httpbin", "-n", "foo", "--from", "deploy/sleep"],
        cause: "UPSTREAM_CONNECTION_RESET",
        kind: "tune-idle-timeout",
        ..Case::default()
    };
    // The race needs a pooled connection left idle: a call, a pause, a call.
    let url = "http://httpbin.foo:8000/get";
    let pause = std::time::Duration::from_millis(500);
    assert_eq!(request(&lab, "foo/sleep", url).status, 200);
    std::thread::sleep(pause);
    assert_eq!(
        request(&lab, "foo/sleep", url).status,
        503,
        "the race happens"
    );
    let (pairs, before, finding) = diagnose_case(&case, &lab);
    apply_fix(&lab, &finding);
    lab.wait_synced().unwrap();
    assert_eq!(request(&lab, "foo/sleep", url).status, 200);
    std::thread::sleep(pause);
    assert_eq!(
        request(&lab, "foo/sleep", url).status,
        200,
        "the idle connection was closed before the app reset it"
    );
    let after = traffic(&lab, &pairs, 1, 1);
    check_after(&case, &pairs, &before, &after, &finding);
}

#[test]
fn config_freeze_after_unfreezing() {
    let lab = start("config-freeze.yaml");
    let case = Case {
        scenario: "config-freeze.yaml",
        diagnose: &["svc/httpbin", "-n", "foo"],
        cause: "MTLS_PLAINTEXT_TO_STRICT",
        kind: "edit-destination-rule",
        failing: HTTPBIN,
        ..Case::default()
    };
    let sleep = pod_name(&lab, "foo", "sleep-");
    let freeze = |on: bool| {
        let value = if on {
            "lab.mesh503.io/freeze-config=true".to_string()
        } else {
            "lab.mesh503.io/freeze-config-".to_string()
        };
        let o = kubectl(
            &lab,
            &[
                "annotate",
                "pod",
                "-n",
                "foo",
                &sleep,
                &value,
                "--overwrite",
            ],
            None,
        );
        assert!(o.status.success(), "{}", text(&o));
    };
    let (pairs, before, finding) = diagnose_case(&case, &lab);
    freeze(true);
    apply_fix(&lab, &finding);
    lab.wait_synced().unwrap();
    assert_eq!(
        request(&lab, "foo/sleep", "http://httpbin.foo:8000/get").status,
        503,
        "the frozen sidecar still runs the old config"
    );
    freeze(false);
    lab.wait_synced().unwrap();
    let after = traffic(&lab, &pairs, 1, 1);
    check_after(&case, &pairs, &before, &after, &finding);
}

/// Kiali KIA0208's shape: the wide DISABLE rule also serves a pod without
/// sidecar; switching it to ISTIO_MUTUAL breaks that call.
#[test]
fn wide_disable_under_strict_keeps_the_sidecarless_call() {
    let f = run(Case {
        scenario: "wide-disable-strict.yaml",
        diagnose: &["svc/cart", "-n", "shop"],
        cause: "MTLS_PLAINTEXT_TO_STRICT",
        kind: "new-destination-rule",
        failing: &[("shop/web", "cart", "shop")],
        ..Case::default()
    });
    let rejected = &f["fixes"]["rejected"][0];
    assert_eq!(rejected["kind"], "edit-wide-destination-rule", "{rejected}");
    let breaks: Vec<&str> = rejected["breaks"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|b| b["host"].as_str())
        .collect();
    assert!(
        breaks.contains(&"ledger.shop.svc.cluster.local"),
        "{rejected}"
    );
}

/// istio/istio#36672's shape: the namespace `*` rule set to DISABLE would
/// silently downgrade meshed calls; a host rule in the client's namespace
/// does not.
#[test]
fn namespace_star_rule_keeps_mtls_between_meshed_pods() {
    let (f, after) = run_with(Case {
        scenario: "namespace-star-mtls.yaml",
        diagnose: &["svc/api", "-n", "archive", "--from", "orders/deploy/client"],
        cause: "MTLS_TO_PLAINTEXT_SERVER",
        kind: "new-destination-rule",
        failing: &[("orders/client", "api", "archive")],
        ..Case::default()
    });
    let m = &f["fixes"]["chosen"]["manifests"][0]["manifest"];
    assert_eq!(
        m["metadata"]["namespace"], "orders",
        "found first: the client's namespace"
    );
    assert_eq!(m["spec"]["host"], "api.archive.svc.cluster.local");
    let wide = f["fixes"]["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["kind"] == "edit-wide-destination-rule")
        .expect("the DISABLE on the * rule is shown rejected");
    assert!(
        wide["breaks"]
            .as_array()
            .unwrap()
            .iter()
            .any(|b| b["host"] == "api.orders.svc.cluster.local"
                && b["after"]["wire"] == "plaintext"),
        "{wide}"
    );
    assert_eq!(
        f["fixes"]["chosen"]["verify"]["command"],
        "kubectl mesh503 diagnose svc/api -n archive --from orders/deploy/client"
    );
    // The server's view tells mTLS from plaintext: the meshed call still
    // carries the client's certificate, the one from outside the mesh never did.
    assert!(outcome(&after, "orders/client", "api", "orders").mtls);
    let plain = outcome(&after, "archive/client", "api", "orders");
    assert!(plain.all_ok() && !plain.mtls, "{plain:?}");
}

/// istio/istio#7464's shape: the JWT-only Policy dropped mTLS for hello;
/// the fix adds `peers` to that Policy (server side), not DISABLE.
#[test]
fn jwt_only_policy_gets_its_peers_back() {
    let f = run(Case {
        scenario: "jwt-policy-no-peers.yaml",
        diagnose: &["svc/hello", "-n", "greet"],
        cause: "MTLS_TO_PLAINTEXT_SERVER",
        kind: "edit-server-policy",
        failing: &[("greet/caller", "hello", "greet")],
        ..Case::default()
    });
    let m = &f["fixes"]["chosen"]["manifests"][0]["manifest"];
    assert_eq!(m["apiVersion"], "authentication.istio.io/v1alpha1");
    assert_eq!(m["spec"]["peers"], serde_json::json!([{"mtls": {}}]));
    assert!(
        m["spec"]["origins"][0]["jwt"]["issuer"].is_string(),
        "the JWT stays: {m}"
    );
}

/// The rejected fixes are evidence too: applied anyway, the wide-rule edits
/// do break (or silently downgrade) exactly the calls the report named.
#[test]
fn rejected_fixes_hurt_the_calls_they_name() {
    let cases = [
        Case {
            scenario: "wide-disable-strict.yaml",
            diagnose: &["svc/cart", "-n", "shop"],
            cause: "MTLS_PLAINTEXT_TO_STRICT",
            kind: "new-destination-rule",
            failing: &[("shop/web", "cart", "shop")],
            ..Case::default()
        },
        Case {
            scenario: "namespace-star-mtls.yaml",
            diagnose: &["svc/api", "-n", "archive", "--from", "orders/deploy/client"],
            cause: "MTLS_TO_PLAINTEXT_SERVER",
            kind: "new-destination-rule",
            failing: &[("orders/client", "api", "archive")],
            ..Case::default()
        },
    ];
    for case in cases {
        let lab = start(case.scenario);
        let (pairs, before, finding) = diagnose_case(&case, &lab);
        let rejected = finding["fixes"]["rejected"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["kind"] == "edit-wide-destination-rule")
            .unwrap()
            .clone();
        let docs: Vec<&str> = rejected["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["yaml"].as_str().unwrap())
            .collect();
        let o = kubectl(&lab, &["apply", "-f", "-"], Some(&docs.join("---\n")));
        assert!(o.status.success(), "{}", text(&o));
        lab.wait_synced().unwrap();
        let after = traffic(&lab, &pairs, 1, 1);
        let mut named = 0;
        for p in &pairs {
            let Some(b) = rejected["breaks"]
                .as_array()
                .unwrap()
                .iter()
                .find(|b| p.is(b))
            else {
                continue;
            };
            named += 1;
            let (was, now) = (&before[p], &after[p]);
            if b["after"]["outcome"] == "ok" {
                assert!(
                    now.all_ok() && was.mtls && !now.mtls,
                    "{p} downgraded: {was:?} → {now:?}"
                );
            } else {
                assert!(
                    was.all_ok() && !now.all_ok(),
                    "{p} broken: {was:?} → {now:?}"
                );
            }
        }
        assert!(
            named > 0,
            "{}: the rejected fix names calls the lab has",
            case.scenario
        );
    }
}

/// RBAC hides the DestinationRules: any rule printed could lose to a hidden
/// one (an older rule for the same host keeps its trafficPolicy in the
/// merge), so no fix is computed, and the report says which list to grant.
#[test]
fn no_fix_when_rbac_hides_the_rules_that_decide() {
    let (_dir, lab) = start_with_role(
        "seed-strict-no-automtls.yaml",
        ROLE_WITHOUT_DESTINATION_RULES,
    );
    assert_eq!(
        request(&lab, "foo/sleep", "http://httpbin.foo:8000/get").status,
        503
    );
    let out = diagnose(&lab, &["--from", "deploy/sleep"]);
    let r = json(&out);
    let f = r["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["id"] == "MTLS_PLAINTEXT_TO_STRICT")
        .unwrap_or_else(|| panic!("{}", text(&out)));
    let fixes = &f["fixes"];
    assert!(fixes.get("chosen").is_none(), "{fixes}");
    let none = fixes["none"].as_str().unwrap();
    assert!(
        none.starts_with("cannot be computed") && none.contains("destinationrules"),
        "{none}"
    );
}
