//! Cause `CIRCUIT_BREAKER_OVERFLOW` (rule; declared in the catalog): a
//! DestinationRule connection-pool limit is reached.
//!
//! Envoy's circuit breakers (docs `intro/arch_overview/upstream/circuit_breaking`)
//! reject requests over `max_connections` / `max_pending_requests` /
//! `max_requests` / `max_retries` locally: `503 UO` with
//! `x-envoy-overloaded: true`. Istio sets them from
//! `trafficPolicy.connectionPool`. The `UO` flag is produced by nothing else.

use super::common::{client_503s, sample_line, with_flag};
use crate::analyze::catalog::Cause;
use crate::analyze::confidence::{Confidence, Weight};
use crate::analyze::finding::{Evidence, Finding, SourceRef};
use crate::analyze::fix;
use crate::model::decisions::outbound_cluster_name;
use crate::model::Mesh;

pub fn check(mesh: &Mesh) -> Vec<Finding> {
    let mut out = Vec::new();
    for (svc, port) in mesh.target_ports() {
        let cluster_name = outbound_cluster_name(port.number, &svc.fqdn);
        for g in mesh.client_groups() {
            let p = g.proxy;
            let uo = with_flag(&client_503s(p, port.number, &svc.fqdn), "UO");
            if uo.is_empty() {
                continue;
            }
            let mut evidence = vec![Evidence::new(
                SourceRef::AccessLog(p.label.clone()),
                format!(
                    "{} answered 503 UO (overflow); e.g. {}",
                    crate::words::counts(uo.len(), "request"),
                    sample_line(&uo)
                ),
            )];
            if let Some(t) = p
                .cluster(&cluster_name)
                .and_then(|c| c.default_thresholds())
            {
                evidence.push(Evidence::new(
                    SourceRef::ConfigDump(p.label.clone()),
                    format!(
                        "{cluster_name} circuit breakers: max_connections {:?}, max_pending_requests {:?}, max_requests {:?}, max_retries {:?}",
                        t.max_connections, t.max_pending_requests, t.max_requests, t.max_retries
                    ),
                ));
            }
            let rule = mesh
                .destination_rule_lookup(&g.client(), svc)
                .selection
                .as_ref()
                .and_then(|s| s.policy_from.clone())
                .unwrap_or_else(|| "the DestinationRule".into());
            out.push(
                Finding::new(
                    Cause::CircuitBreakerOverflow,
                    format!("{}:{} from {}", svc.fqdn, port.number, p.label),
                    format!("{}'s sidecar rejects calls to {}:{} because a connection-pool limit is reached", p.label, svc.fqdn, port.number),
                    &Confidence::of(&[Weight::ClientLog, Weight::DistinctiveFlag]),
                )
                .explain([format!(
                    "{rule} sets connectionPool limits; when connections, pending requests or requests exceed them Envoy answers 503 UO with x-envoy-overloaded: true without calling the server."
                )])
                .evidence(evidence)
                .fixes(fix::for_overflow(mesh, svc, port, &g)),
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

    fn mesh(entries: Vec<crate::envoy::access_log::AccessLogEntry>) -> crate::model::Mesh {
        MeshBuilder::new()
            .target(httpbin())
            .pod(httpbin_pod())
            .pod(sleep_pod())
            .object(dr(
                "foo",
                "httpbin",
                "httpbin",
                Some(serde_json::json!({"connectionPool": {"tcp": {"maxConnections": 1}}})),
            ))
            .proxy(proxy(&sleep_pod(), ProxyRole::Client).with_log(entries))
            .build()
    }

    #[test]
    fn fires_and_near_misses() {
        let ours = Some("outbound|8000||httpbin.foo.svc.cluster.local");
        let cases = [
            (
                "503 UO on the service's cluster",
                vec![entry(503, "UO", ours)],
                true,
            ),
            (
                "near miss: UO towards another service",
                vec![entry(
                    503,
                    "UO",
                    Some("outbound|80||other.foo.svc.cluster.local"),
                )],
                false,
            ),
            (
                "near miss: 503 UF is not an overflow",
                vec![entry(503, "UF", ours)],
                false,
            ),
            ("near miss: no log lines at all", vec![], false),
        ];
        for (name, entries, fires) in cases {
            let f = check(&mesh(entries));
            assert_eq!(!f.is_empty(), fires, "{name}: {f:#?}");
        }
        let f = &check(&mesh(vec![entry(503, "UO", ours)]))[0];
        assert_eq!(f.confidence, 90);
        assert!(
            f.explanation[0].starts_with("foo/httpbin sets connectionPool"),
            "{:?}",
            f.explanation
        );
    }
}
