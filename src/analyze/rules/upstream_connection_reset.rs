//! Cause `UPSTREAM_CONNECTION_RESET` (rule; declared in the catalog): the app
//! closes keep-alive connections the server sidecar still reuses.
//!
//! Envoy keeps upstream HTTP connections for `idle_timeout` (1h by default,
//! core `HttpProtocolOptions.idle_timeout`; Istio's DestinationRule
//! `connectionPool.http.idleTimeout`). An app that closes idle connections
//! sooner races the next request: `503 UC` on the inbound cluster, among
//! successes. Only failures mixed with successes are this pattern.

use super::common::{server_log_finding, server_sidecars};
use crate::analyze::catalog::Cause;
use crate::analyze::confidence::Weight;
use crate::analyze::finding::Finding;
use crate::analyze::fix;
use crate::envoy::access_log::AccessLogEntry;
use crate::model::Mesh;

pub fn check(mesh: &Mesh) -> Vec<Finding> {
    let mut out = Vec::new();
    for (svc, port, p, inbound) in server_sidecars(mesh) {
        let all = inbound.clone();
        let ok = inbound
            .iter()
            .filter(|e| e.response_code.is_some_and(|c| (200..400).contains(&c)))
            .count();
        let reset: Vec<&AccessLogEntry> = inbound
            .into_iter()
            .filter(|e| e.response_code == Some(503) && e.has_flag("UC"))
            .collect();
        // A race needs both: failures among successes on the same path.
        if reset.is_empty() || ok == 0 {
            continue;
        }
        let shown = format!(
            "{} × 503 UC and {} on inbound",
            reset.len(),
            crate::words::count(ok, "success", "successes")
        );
        let claim = format!(
            "{}'s app closes connections the sidecar is still reusing (intermittent 503 UC)",
            p.label
        );
        let weights = [Weight::ServerLog, Weight::IntermittentPattern];
        let f = server_log_finding(
            Cause::UpstreamConnectionReset,
            (svc, port, p),
            claim,
            &weights,
            (shown, &reset),
        );
        out.push(f.explain(["Some requests succeed and some end 503 UC on the inbound cluster: the app closes idle keep-alive connections sooner than Envoy's idle timeout (1h by default), and a request races the close.".to_string()])
            .fixes(fix::for_keepalive(mesh, svc, port, p, &all)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::builder::*;

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
            let f = check(&httpbin_serving(log));
            assert_eq!(!f.is_empty(), fires, "{name}: {f:#?}");
        }
        let f = &check(&httpbin_serving(vec![
            entry(200, "-", inb),
            entry(503, "UC", inb),
        ]))[0];
        assert_eq!(f.confidence, 65);
        assert!(f.chosen_fix().unwrap().summary.contains("idleTimeout"));
    }
}
