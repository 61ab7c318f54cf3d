//! Cause `UPSTREAM_CONNECTION_RESET` (rule; declared in the catalog): the app
//! closes keep-alive connections the server sidecar still reuses.
//!
//! Envoy keeps upstream HTTP connections for `idle_timeout` (1h by default,
//! core `HttpProtocolOptions.idle_timeout`; Istio's DestinationRule
//! `connectionPool.http.idleTimeout`). An app that closes idle connections
//! sooner races the next request: `503 UC` on the inbound cluster, among
//! successes. Only failures mixed with successes are this pattern.

use super::app_not_listening::inbound_lines;
use super::common::sample_line;
use crate::analyze::catalog::Cause;
use crate::analyze::confidence::{Confidence, Weight};
use crate::analyze::finding::{Evidence, Finding, Fix, SourceRef};
use crate::analyze::fix::FixKind;
use crate::envoy::access_log::AccessLogEntry;
use crate::model::Mesh;

pub fn check(mesh: &Mesh) -> Vec<Finding> {
    let mut out = Vec::new();
    for (svc, port) in mesh.target_ports() {
        for pod in mesh.backing_pods(svc) {
            let Some(p) = mesh.proxy_of(&pod.key) else {
                continue;
            };
            let inbound = inbound_lines(p);
            let uc: Vec<&AccessLogEntry> = inbound
                .iter()
                .copied()
                .filter(|e| e.response_code == Some(503) && e.has_flag("UC"))
                .collect();
            let ok = inbound
                .iter()
                .filter(|e| e.response_code.is_some_and(|c| (200..400).contains(&c)))
                .count();
            if uc.is_empty() || ok == 0 {
                continue;
            }
            out.push(
                Finding::new(
                    Cause::UpstreamConnectionReset,
                    format!("{}:{} at {}", svc.fqdn, port.number, p.label),
                    format!("{}'s app closes connections the sidecar is still reusing (intermittent 503 UC)", p.label),
                    &Confidence::of(&[Weight::ServerLog, Weight::IntermittentPattern]),
                )
                .explain(["Some requests succeed and some end 503 UC on the inbound cluster: the app closes idle keep-alive connections sooner than Envoy's idle timeout (1h by default), and a request races the close.".to_string()])
                .evidence([Evidence::new(
                    SourceRef::AccessLog(p.label.clone()),
                    format!("{} × 503 UC and {ok} success(es) on inbound; e.g. {}", uc.len(), sample_line(&uc)),
                )])
                .fix(Some(Fix::advice(
                    FixKind::ChangeApplication,
                    "set connectionPool.http.idleTimeout in the DestinationRule shorter than the app's keep-alive timeout, or make the app's keep-alive longer; retries on reset help too",
                ))),
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::builder::*;
    use crate::snapshot::ProxyRole;

    fn mesh(log: Vec<AccessLogEntry>) -> crate::model::Mesh {
        MeshBuilder::new()
            .target(httpbin())
            .pod(httpbin_pod())
            .proxy(proxy(&httpbin_pod(), ProxyRole::Server).with_log(log))
            .build()
    }

    #[test]
    fn fires_and_near_misses() {
        let inb = Some("inbound|8080||");
        let cases = [
            (
                "UC among successes",
                vec![entry(200, "-", inb), entry(503, "UC", inb)],
                true,
            ),
            (
                "near miss: every request fails (not a race)",
                vec![entry(503, "UC", inb), entry(503, "UC", inb)],
                false,
            ),
            (
                "near miss: UC on an outbound call",
                vec![
                    entry(200, "-", inb),
                    entry(503, "UC", Some("outbound|80||db.foo.svc.cluster.local")),
                ],
                false,
            ),
        ];
        for (name, log, fires) in cases {
            let f = check(&mesh(log));
            assert_eq!(!f.is_empty(), fires, "{name}: {f:#?}");
        }
        let f = &check(&mesh(vec![entry(200, "-", inb), entry(503, "UC", inb)]))[0];
        assert_eq!(f.confidence, 65);
        assert!(f.fix.as_ref().unwrap().summary.contains("idleTimeout"));
    }
}
