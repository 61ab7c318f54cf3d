//! Analyze stage: ranking. Errors before warnings before notes; within a
//! severity, the better-confirmed finding first; ties broken by id and
//! subject so the order is stable across runs. The same finding reached
//! twice (one replica group seen from two servers) is kept once.

use super::Finding;

pub fn rank(findings: &mut Vec<Finding>) {
    findings.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then(b.confidence.cmp(&a.confidence))
            .then(a.id().cmp(b.id()))
            .then(a.subject.cmp(&b.subject))
    });
    findings.dedup_by(|a, b| a.cause == b.cause && a.subject == b.subject && a.claim == b.claim);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyze::catalog::Cause;
    use crate::analyze::confidence::{Confidence, Weight};
    use crate::analyze::Severity;

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
        ];
        rank(&mut v);
        let ids: Vec<_> = v.iter().map(|f| (f.id(), f.confidence)).collect();
        assert_eq!(
            ids,
            vec![
                ("SUBSET_NOT_FOUND", 90),
                ("APP_NOT_LISTENING", 60),
                ("CIRCUIT_BREAKER_OVERFLOW", 60),
                ("NO_HEALTHY_UPSTREAM", 90)
            ]
        );
    }
}
