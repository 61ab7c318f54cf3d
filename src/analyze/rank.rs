//! Ranking: errors before warnings before notes; within a severity, the
//! better-confirmed finding first; ties broken by id and subject so the order
//! is stable across runs.

use super::Finding;

pub fn rank(findings: &mut Vec<Finding>) {
    findings.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then(b.confidence.cmp(&a.confidence))
            .then(a.id.cmp(&b.id))
            .then(a.subject.cmp(&b.subject))
    });
    findings.dedup_by(|a, b| a.id == b.id && a.subject == b.subject && a.claim == b.claim);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyze::Severity;

    fn f(id: &str, sev: Severity, conf: u8) -> Finding {
        Finding {
            id: id.into(),
            severity: sev,
            confidence: conf,
            claim: String::new(),
            subject: "s".into(),
            explanation: vec![],
            evidence: vec![],
            fix: None,
        }
    }

    #[test]
    fn severity_then_confidence_then_id() {
        let mut v = vec![
            f("B", Severity::Warning, 90),
            f("A", Severity::Error, 50),
            f("C", Severity::Error, 95),
            f("A", Severity::Error, 50),
        ];
        rank(&mut v);
        let ids: Vec<_> = v.iter().map(|f| (f.id.as_str(), f.confidence)).collect();
        assert_eq!(ids, vec![("C", 95), ("A", 50), ("B", 90)]);
    }
}
