//! Cause `FAULT_INJECTION_503` (rule; declared in the catalog): a route the
//! target's callers take injects an HTTP abort with status 503 — the 503s
//! are by design.
//!
//! istiod turns `http[].fault.abort` into Envoy's fault filter config on the
//! route (`route.go` `TranslateFault`): `httpStatus` and
//! `percentage.value`. Without a percentage Envoy's `FractionalPercent`
//! defaults to 0 and nothing is aborted (istio/istio#36303, #39969: the
//! docs said "all requests"), so only a percentage above 0 counts. Envoy
//! answers the aborted share itself, flag `FI`, details
//! `fault_filter_abort` (`source/extensions/filters/http/fault/fault_filter.cc`).
//! A warning when every request of the route is aborted or the callers'
//! sidecars logged `FI`; information when a share is.

use std::collections::BTreeMap;

use super::common::{client_503s, sample_line, with_flag};
use super::routes::object;
use crate::analyze::catalog::Cause;
use crate::analyze::confidence::{Confidence, Weight};
use crate::analyze::finding::{Evidence, Finding, Fix, Severity, SourceRef};
use crate::analyze::fix::FixKind;
use crate::envoy::access_log::AccessLogEntry;
use crate::istio::routing::{Failure, RouteInfo};
use crate::model::{Caller, Mesh};

/// One aborting route and who takes it.
struct Abort {
    fqdn: String,
    port: u16,
    vs: String,
    index: usize,
    percent: f64,
    callers: Vec<Caller>,
}

fn aborts_503(r: &RouteInfo) -> Option<f64> {
    let a = r.fault_abort.as_ref()?;
    let p = a.percent.unwrap_or(0.0);
    (a.http_status == Some(503) && p > 0.0).then_some(p.min(100.0))
}

pub fn check(mesh: &Mesh) -> Vec<Finding> {
    let mut found: BTreeMap<(String, u16, String, usize), Abort> = BTreeMap::new();
    for svc in mesh.target_services() {
        let tr = mesh.target_routes(svc);
        for (caller, views) in tr.callers.iter().zip(&tr.views) {
            for (port, view) in views {
                for f in view.failures() {
                    let Failure::FaultAbort { route, .. } = f else {
                        continue;
                    };
                    let Some(percent) = aborts_503(route) else {
                        continue;
                    };
                    let key = (svc.fqdn.clone(), *port, route.vs.clone(), route.index);
                    found
                        .entry(key)
                        .or_insert_with(|| Abort {
                            fqdn: svc.fqdn.clone(),
                            port: *port,
                            vs: route.vs.clone(),
                            index: route.index,
                            percent,
                            callers: Vec::new(),
                        })
                        .callers
                        .push(caller.clone());
                }
            }
        }
    }
    found.values().map(|a| finding(mesh, a)).collect()
}

fn finding(mesh: &Mesh, a: &Abort) -> Finding {
    let mut confidence = Confidence::of(&[Weight::ConfigRouteCertain]);
    let names: Vec<String> = a.callers.iter().map(Caller::name).collect();
    let mut evidence = vec![Evidence::new(
        object("VirtualService", &a.vs),
        format!(
            "route {} fault.abort httpStatus 503, percentage {}",
            a.index, a.percent
        ),
    )];
    for c in &a.callers {
        evidence.push(Evidence::new(SourceRef::Caller(c.name()), c.how_found()));
    }
    let mut logged = 0;
    for label in a.callers.iter().flat_map(|c| c.proxies.iter()) {
        let Some(p) = mesh.proxies.iter().find(|p| p.label == *label) else {
            continue;
        };
        let lines: Vec<&AccessLogEntry> = with_flag(&client_503s(p, a.port, &a.fqdn), "FI");
        if lines.is_empty() {
            continue;
        }
        logged += lines.len();
        evidence.push(Evidence::new(
            SourceRef::AccessLog(p.label.clone()),
            format!(
                "{} answered 503 FI (fault_filter_abort); e.g. {}",
                crate::words::counts(lines.len(), "request"),
                sample_line(&lines)
            ),
        ));
    }
    if logged > 0 {
        confidence.add(Weight::ClientLog);
        confidence.add(Weight::DistinctiveFlag);
    }
    let severity = if a.percent >= 100.0 || logged > 0 {
        Severity::Warning
    } else {
        Severity::Info
    };
    Finding::new(
        Cause::FaultInjection503,
        format!("{}:{} route {} of {} from {}", a.fqdn, a.port, a.index, a.vs, names.join("; ")),
        format!(
            "route {} of VirtualService {} aborts {}% of {}'s requests with 503 by design (fault injection)",
            a.index,
            a.vs,
            a.percent,
            names.join("; ")
        ),
        &confidence,
    )
    .with_severity(severity)
    .explain([
        format!(
            "The route's fault.abort makes the caller's sidecar answer {}% of the requests it matches with 503 itself (flag FI, fault_filter_abort), before any upstream is called: these 503s are injected on purpose, not a failure of {}.",
            a.percent, a.fqdn
        ),
    ])
    .evidence(evidence)
    .fix(Some(Fix::advice(
        FixKind::EditRoute,
        format!(
            "when the fault test is over, remove fault.abort from route {} of VirtualService {} (or lower its percentage)",
            a.index, a.vs
        ),
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::builder::*;
    use crate::snapshot::ProxyRole;
    use serde_json::{json, Value};

    fn vs(abort: Value) -> Value {
        json!({"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
            "metadata": {"name": "httpbin", "namespace": "foo"},
            "spec": {"hosts": ["httpbin"], "http": [
                {"fault": {"abort": abort}, "route": [{"destination": {"host": "httpbin"}}]}]}})
    }

    fn mesh(o: Value, log: Vec<AccessLogEntry>) -> Mesh {
        MeshBuilder::new()
            .target(httpbin())
            .pod(httpbin_pod())
            .pod(sleep_pod())
            .proxy(proxy(&sleep_pod(), ProxyRole::Client).with_log(log))
            .object(o)
            .build()
    }

    fn fi() -> AccessLogEntry {
        let mut e = entry(503, "FI", None);
        e.authority = Some("httpbin.foo:8000".into());
        e
    }

    #[test]
    fn fires_and_near_misses() {
        type Want = Option<(Severity, u8)>;
        let cases: Vec<(&str, Mesh, Want)> = vec![
            (
                "every request aborted",
                mesh(
                    vs(json!({"httpStatus": 503, "percentage": {"value": 100}})),
                    vec![],
                ),
                Some((Severity::Warning, 60)),
            ),
            (
                "a share, not confirmed: information",
                mesh(
                    vs(json!({"httpStatus": 503, "percentage": {"value": 10}})),
                    vec![],
                ),
                Some((Severity::Info, 60)),
            ),
            (
                "a share, logged FI",
                mesh(
                    vs(json!({"httpStatus": 503, "percentage": {"value": 10}})),
                    vec![fi()],
                ),
                Some((Severity::Warning, 99)),
            ),
            (
                "near miss: no percentage aborts nothing",
                mesh(vs(json!({"httpStatus": 503})), vec![]),
                None,
            ),
            (
                "near miss: another status",
                mesh(
                    vs(json!({"httpStatus": 500, "percentage": {"value": 100}})),
                    vec![],
                ),
                None,
            ),
        ];
        for (name, m, want) in cases {
            let f = check(&m);
            assert_eq!(
                f.first().map(|f| (f.severity, f.confidence)),
                want,
                "{name}: {f:#?}"
            );
        }
    }

    #[test]
    fn says_it_is_by_design_and_how_much() {
        let f = &check(&mesh(
            vs(json!({"httpStatus": 503, "percentage": {"value": 25}})),
            vec![],
        ))[0];
        assert!(
            f.claim.contains("25%") && f.claim.contains("by design"),
            "{}",
            f.claim
        );
    }
}
