//! Cause `APP_NOT_LISTENING` (rule; declared in the catalog): the server
//! sidecar cannot connect to its own application.
//!
//! The sidecar's inbound cluster (`inbound|port||`) forwards to the app; when
//! the connection is refused Envoy answers `503 UF` on that cluster. Since
//! Istio 1.10 inbound traffic goes to the pod IP, not 127.0.0.1 (istio.io
//! blog 2021 "upcoming networking changes"), so an app bound to localhost is
//! unreachable. A `UF` on an inbound cluster has no other meaning.
//!
//! With access logs off (the default profile since Istio 1.24) the same
//! failure is in the server sidecar's standard metrics: `istio_requests_total`
//! with `reporter="destination"`, `response_code="503"` and `UF` among the
//! `response_flags` (istio/proxy `testdata/metric`; the reporter is the
//! server's sidecar, so the flag is its inbound cluster's).

use std::collections::BTreeSet;

use super::common::{server_log_finding, server_sidecars};
use crate::analyze::catalog::Cause;
use crate::analyze::confidence::{Confidence, Weight};
use crate::analyze::finding::{Evidence, Finding, Fix, SourceRef};
use crate::analyze::fix::FixKind;
use crate::envoy::access_log::AccessLogEntry;
use crate::envoy::metrics::{IstioMetric, Reporter};
use crate::model::{Mesh, Proxy, Service};

/// 503 UF the server sidecar counted for the service (`reporter=destination`).
fn counted_refusals(p: &Proxy, svc: &Service) -> u64 {
    p.metrics.as_ref().map_or(0, |m| {
        m.sum(|r| {
            r.metric == IstioMetric::RequestsTotal
                && r.reporter == Some(Reporter::Destination)
                && r.response_code == Some(503)
                && r.has_flag("UF")
                && r.destination_service
                    .as_deref()
                    .is_none_or(|d| d == svc.fqdn || d == "unknown")
        })
    })
}

pub fn check(mesh: &Mesh) -> Vec<Finding> {
    let mut out = Vec::new();
    // Metrics name no port: one finding per (service, sidecar).
    let mut counted_for = BTreeSet::new();
    for (svc, port, p, inbound) in server_sidecars(mesh) {
        let refused: Vec<&AccessLogEntry> = inbound
            .into_iter()
            .filter(|e| e.response_code == Some(503) && e.has_flag("UF"))
            .collect();
        if refused.is_empty() {
            let n = counted_refusals(p, svc);
            if n > 0 && counted_for.insert((svc.fqdn.clone(), p.label.clone())) {
                out.push(from_metrics(svc, port.number, p, n));
            }
            continue;
        }
        let claim = format!(
            "{}'s sidecar cannot connect to its own app for {}:{}",
            p.label, svc.fqdn, port.number
        );
        let shown = format!(
            "{} answered 503 UF",
            crate::words::counts(refused.len(), "inbound request")
        );
        let weights = [Weight::ServerLog, Weight::DistinctiveFlag];
        let f = server_log_finding(
            Cause::AppNotListening,
            (svc, port, p),
            claim,
            &weights,
            (shown, &refused),
        );
        out.push(explained(f));
    }
    out
}

fn from_metrics(svc: &Service, port: u16, p: &Proxy, n: u64) -> Finding {
    let f = Finding::new(
        Cause::AppNotListening,
        format!("{}:{port} at {}", svc.fqdn, p.label),
        format!(
            "{}'s sidecar cannot connect to its own app for {}:{port}",
            p.label, svc.fqdn
        ),
        &Confidence::of(&[Weight::Metrics, Weight::DistinctiveFlag]),
    )
    .evidence([Evidence::new(
        SourceRef::Metrics(p.label.clone()),
        format!(
            "istio_requests_total{{reporter=\"destination\",response_code=\"503\"}} with UF in response_flags: {n}"
        ),
    )]);
    explained(f)
}

fn explained(f: Finding) -> Finding {
    f.explain([
        "The server sidecar answers 503 UF on its inbound cluster: the connection to the application was refused.".to_string(),
        "Since Istio 1.10 the sidecar forwards to the pod IP, not 127.0.0.1: an app bound to localhost is unreachable. Also check the container port and that the app is up.".to_string(),
    ])
    .fix(Some(Fix::advice(
        FixKind::ChangeApplication,
        "bind the app to 0.0.0.0 (or the pod IP), or declare a Sidecar ingress with defaultEndpoint 127.0.0.1:<port>",
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::builder::*;

    #[test]
    fn fires_and_near_misses() {
        let cases = [
            (
                "503 UF on the inbound cluster",
                vec![entry(503, "UF", Some("inbound|8080||"))],
                true,
            ),
            (
                "near miss: UF on the server's own outbound call",
                vec![entry(
                    503,
                    "UF",
                    Some("outbound|80||db.foo.svc.cluster.local"),
                )],
                false,
            ),
            (
                "near miss: 503 UC on inbound is a reset, not a refusal",
                vec![entry(503, "UC", Some("inbound|8080||"))],
                false,
            ),
            ("near miss: no log", vec![], false),
        ];
        for (name, log, fires) in cases {
            let f = check(&httpbin_serving(log));
            assert_eq!(!f.is_empty(), fires, "{name}: {f:#?}");
        }
        assert_eq!(
            check(&httpbin_serving(vec![entry(
                503,
                "UF",
                Some("inbound|8080||")
            )]))[0]
                .confidence,
            80
        );
    }

    #[test]
    fn from_the_server_metrics_when_logs_are_off() {
        use crate::envoy::metrics::{IstioMetrics, MetricRow, Spelling};
        use crate::snapshot::ProxyRole;
        let row = |reporter: Reporter, flags: &[&str]| MetricRow {
            metric: IstioMetric::RequestsTotal,
            spelling: Spelling::Prometheus,
            reporter: Some(reporter),
            source_workload: Some("sleep".into()),
            source_workload_namespace: Some("foo".into()),
            source_principal: None,
            destination_workload: Some("httpbin".into()),
            destination_service: Some("httpbin.foo.svc.cluster.local".into()),
            destination_service_namespace: Some("foo".into()),
            response_code: Some(503),
            response_flags: flags.iter().map(|f| f.to_string()).collect(),
            connection_security_policy: None,
            labels: Default::default(),
            value: 3,
        };
        let mesh = |rows: Vec<MetricRow>| {
            let mut p = proxy(&httpbin_pod(), ProxyRole::Server);
            p.metrics = Some(IstioMetrics {
                rows,
                unreadable: vec![],
            });
            MeshBuilder::new()
                .target(httpbin())
                .pod(httpbin_pod())
                .proxy(p)
                .build()
        };
        let f = check(&mesh(vec![row(Reporter::Destination, &["URX", "UF"])]));
        assert_eq!(f.len(), 1, "{f:#?}");
        assert_eq!(
            f[0].confidence_basis,
            vec![Weight::Metrics, Weight::DistinctiveFlag]
        );
        assert!(
            f[0].evidence[0].detail.ends_with(": 3"),
            "{:?}",
            f[0].evidence
        );
        // Near misses: the client's reporter, another flag.
        assert!(check(&mesh(vec![row(Reporter::Source, &["UF"])])).is_empty());
        assert!(check(&mesh(vec![row(Reporter::Destination, &["UC"])])).is_empty());
    }
}
