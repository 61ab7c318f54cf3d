//! Analyze stage: ranking. Errors before warnings before notes; within a
//! severity, a sidecar's rejected config (`CONFIG_REJECTED`) first: every
//! other finding about that path reasons from config the proxy does not
//! run, so the rejection is the cause they follow from; then the
//! better-confirmed finding first; ties broken by id and
//! subject so the order is stable across runs. The same finding reached
//! twice (one replica group seen from two servers) is kept once.

use super::{Cause, Finding, Severity};

pub fn rank(findings: &mut Vec<Finding>) {
    findings.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then(root(b).cmp(&root(a)))
            .then(b.confidence.cmp(&a.confidence))
            .then(a.id().cmp(b.id()))
            .then(a.subject.cmp(&b.subject))
    });
    findings.dedup_by(|a, b| a.cause == b.cause && a.subject == b.subject && a.claim == b.claim);
}

/// A finding the others on its path follow from.
fn root(f: &Finding) -> bool {
    f.cause == Cause::ConfigRejected && f.severity == Severity::Error
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyze::catalog::Cause;
    use crate::analyze::confidence::{Confidence, Weight};

    fn f(cause: Cause, sev: Severity, w: &[Weight]) -> Finding {
        Finding::new(cause, "s", "", &Confidence::of(w)).with_severity(sev)
    }

    #[test]
    fn severity_then_confidence_then_id() {
        use Weight::*;
        let mut v = vec![
            f(
                Cause::NoHealthyUpstream,
                Severity::Warning,
                &[ClientLog, DistinctiveFlag],
            ),
            f(Cause::AppNotListening, Severity::Error, &[ConfigCertain]),
            f(
                Cause::SubsetNotFound,
                Severity::Error,
                &[ClientLog, DistinctiveFlag],
            ),
            f(Cause::AppNotListening, Severity::Error, &[ConfigCertain]),
            f(
                Cause::CircuitBreakerOverflow,
                Severity::Error,
                &[ConfigCertain],
            ),
            f(Cause::ConfigRejected, Severity::Warning, &[ConfigRejected]),
            f(Cause::ConfigRejected, Severity::Error, &[ConfigRejected]),
        ];
        rank(&mut v);
        let ids: Vec<_> = v.iter().map(|f| (f.id(), f.confidence)).collect();
        assert_eq!(
            ids,
            vec![
                ("CONFIG_REJECTED", 70),
                ("SUBSET_NOT_FOUND", 90),
                ("APP_NOT_LISTENING", 60),
                ("CIRCUIT_BREAKER_OVERFLOW", 60),
                ("NO_HEALTHY_UPSTREAM", 90),
                ("CONFIG_REJECTED", 70)
            ]
        );
    }
}
