//! Cause `APP_NOT_LISTENING` (rule; declared in the catalog): the server
//! sidecar cannot connect to its own application.
//!
//! The sidecar's inbound cluster (`inbound|port||`) forwards to the app; when
//! the connection is refused Envoy answers `503 UF` on that cluster. Since
//! Istio 1.10 inbound traffic goes to the pod IP, not 127.0.0.1 (istio.io
//! blog 2021 "upcoming networking changes"), so an app bound to localhost is
//! unreachable. A `UF` on an inbound cluster has no other meaning.

use super::common::{server_log_finding, server_sidecars};
use crate::analyze::catalog::Cause;
use crate::analyze::confidence::Weight;
use crate::analyze::finding::{Finding, Fix};
use crate::analyze::fix::FixKind;
use crate::envoy::access_log::AccessLogEntry;
use crate::model::Mesh;

pub fn check(mesh: &Mesh) -> Vec<Finding> {
    let mut out = Vec::new();
    for (svc, port, p, inbound) in server_sidecars(mesh) {
        let refused: Vec<&AccessLogEntry> = inbound
            .into_iter()
            .filter(|e| e.response_code == Some(503) && e.has_flag("UF"))
            .collect();
        if refused.is_empty() {
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
        out.push(f.explain([
            "The server sidecar answers 503 UF on its inbound cluster: the connection to the application was refused.".to_string(),
            "Since Istio 1.10 the sidecar forwards to the pod IP, not 127.0.0.1: an app bound to localhost is unreachable. Also check the container port and that the app is up.".to_string(),
        ]).fix(Some(Fix::advice(
            FixKind::ChangeApplication,
            "bind the app to 0.0.0.0 (or the pod IP), or declare a Sidecar ingress with defaultEndpoint 127.0.0.1:<port>",
        ))));
    }
    out
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
}
