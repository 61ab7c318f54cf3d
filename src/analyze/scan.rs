//! Analyze stage, `kubectl mesh503 scan`: the catalog's config rules
//! ([`Needs::Config`]) over every Service of a config-only snapshot. The
//! model is built once; each Service becomes the target in turn
//! ([`TargetSelection::only`]) and the same rules `diagnose` runs answer
//! for it, from the same memoized decisions (TLS, routing), so a Service
//! `scan` lists is one `diagnose` would explain. Data-plane rules are not
//! run: there is no sidecar evidence, and their silence would mean nothing.
//!
//! Fixes are not searched (`Mesh::search_fixes` off): checking each
//! candidate against every Service for every finding grows with the square
//! of the mesh; each finding says to run `diagnose` for its fix.
//!
//! Findings are grouped by Service; groups are ranked by their worst
//! severity, then their best confidence, then how many findings, then name;
//! inside a group findings keep `diagnose`'s ranking ([`rank::rank`]).
//! Services without findings are counted, not listed.

use serde::Serialize;

use super::catalog::{Declaration, Needs, CATALOG};
use super::finding::{Finding, Severity};
use super::{fix, rank, summary};
use crate::model::{Mesh, ServiceKey};
use crate::snapshot::{Gap, Snapshot};

/// Version of the `scan -o json` document (docs/scan.md).
pub const SCAN_SCHEMA: &str = "mesh503.io/scan/v1";

/// The rules `scan` runs: those the catalog marks as needing config only.
pub fn config_rules() -> impl Iterator<Item = &'static Declaration> {
    CATALOG.iter().filter(|d| d.needs == Needs::Config)
}

/// One Service with findings.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServiceFindings {
    /// `namespace/name`.
    pub service: String,
    /// Its host, `name.namespace.svc.<domain>`.
    pub host: String,
    /// The most severe of its findings.
    pub severity: Severity,
    pub findings: Vec<Finding>,
}

impl ServiceFindings {
    fn best_confidence(&self) -> u8 {
        self.findings
            .iter()
            .map(|f| f.confidence)
            .max()
            .unwrap_or(0)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScanReport {
    pub schema: &'static str,
    /// `scan -A` or `scan -n NS`.
    pub scope: String,
    /// When the snapshot was taken (from the snapshot, not the clock).
    pub taken_at: String,
    /// How many Services were scanned.
    pub services_scanned: usize,
    /// The ids of the rules run (config only).
    pub rules: Vec<&'static str>,
    /// Services with findings, worst first.
    pub services: Vec<ServiceFindings>,
    /// Evidence that was not available.
    pub gaps: Vec<Gap>,
    /// Reads the scan could not do without that failed (exit 4).
    #[serde(skip)]
    pub missing: Vec<String>,
}

impl ScanReport {
    pub fn has_errors(&self) -> bool {
        self.services.iter().any(|s| s.severity == Severity::Error)
    }
}

/// Build the model of a config-only snapshot once and scan the Services of
/// `namespace` (every namespace when `None`).
pub fn scan(snapshot: &Snapshot, namespace: Option<&str>) -> ScanReport {
    let mut mesh = Mesh::from_snapshot(snapshot);
    let missing = snapshot
        .resolved
        .as_ref()
        .map(|r| r.missing.as_slice())
        .unwrap_or_default()
        .iter()
        .map(|g| format!("{}: {}", g.source, g.reason))
        .collect();
    let mut report = scan_mesh(&mut mesh, namespace, config_rules());
    report.scope = snapshot.target.clone();
    report.missing = missing;
    report
}

/// The rules given, over every Service of `namespace` (all when `None`).
pub fn scan_mesh<'d>(
    mesh: &mut Mesh,
    namespace: Option<&str>,
    rules: impl Iterator<Item = &'d Declaration>,
) -> ScanReport {
    let rules: Vec<&Declaration> = rules.collect();
    let mut keys: Vec<ServiceKey> = mesh
        .services
        .iter()
        .filter(|s| namespace.is_none_or(|n| s.key.namespace == n))
        .map(|s| s.key.clone())
        .collect();
    keys.sort();
    keys.dedup();
    let whole = mesh.target.clone();
    let search_fixes = mesh.search_fixes;
    mesh.search_fixes = false;
    let mut services = Vec::new();
    for key in &keys {
        mesh.target = whole.only(key);
        let mut findings: Vec<Finding> = rules.iter().flat_map(|d| (d.check)(mesh)).collect();
        if findings.is_empty() {
            continue;
        }
        rank::rank(&mut findings);
        fix::text::note_conflicts(&mut findings);
        let host = mesh
            .service(key)
            .map(|s| s.fqdn.clone())
            .unwrap_or_default();
        services.push(ServiceFindings {
            service: key.to_string(),
            host,
            severity: findings[0].severity,
            findings,
        });
    }
    mesh.target = whole;
    mesh.search_fixes = search_fixes;
    rank_services(&mut services);
    ScanReport {
        schema: SCAN_SCHEMA,
        scope: String::new(),
        taken_at: mesh.taken_at.clone(),
        services_scanned: keys.len(),
        rules: rules.iter().map(|d| d.id).collect(),
        services,
        gaps: summary::gaps(mesh),
        missing: vec![],
    }
}

/// Worst severity first, then best confidence, then more findings, then name.
pub fn rank_services(services: &mut [ServiceFindings]) {
    services.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then(b.best_confidence().cmp(&a.best_confidence()))
            .then(b.findings.len().cmp(&a.findings.len()))
            .then(a.service.cmp(&b.service))
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyze::catalog::Cause;
    use crate::analyze::confidence::{Confidence, Weight};
    use crate::model::builder::*;
    use crate::snapshot::ProxyRole;

    fn group(name: &str, findings: &[(Severity, &[Weight])]) -> ServiceFindings {
        let findings: Vec<Finding> = findings
            .iter()
            .map(|(sev, w)| {
                Finding::new(Cause::SubsetNotFound, name, "c", &Confidence::of(w))
                    .with_severity(*sev)
            })
            .collect();
        ServiceFindings {
            service: name.into(),
            host: String::new(),
            severity: findings.iter().map(|f| f.severity).max().unwrap(),
            findings,
        }
    }

    #[test]
    fn groups_rank_by_worst_severity_then_confidence_then_count_then_name() {
        use Weight::*;
        let mut v = vec![
            group("a/info", &[(Severity::Info, &[ConfigCertain])]),
            group("b/warn", &[(Severity::Warning, &[ConfigAdvisory])]),
            group("c/err-weak", &[(Severity::Error, &[ConfigAdvisory])]),
            group(
                "d/err-strong",
                &[(Severity::Error, &[ConfigRouteCertain, ClientLog])],
            ),
            group(
                "e/err-weak-two",
                &[
                    (Severity::Error, &[ConfigAdvisory]),
                    (Severity::Info, &[ConfigAdvisory]),
                ],
            ),
            group("a/err-weak", &[(Severity::Error, &[ConfigAdvisory])]),
        ];
        rank_services(&mut v);
        let order: Vec<&str> = v.iter().map(|g| g.service.as_str()).collect();
        assert_eq!(
            order,
            [
                "d/err-strong",
                "e/err-weak-two",
                "a/err-weak",
                "c/err-weak",
                "b/warn",
                "a/info"
            ]
        );
    }

    #[test]
    fn only_config_rules_run() {
        let ids: Vec<&str> = config_rules().map(|d| d.id).collect();
        for data_plane in [
            Cause::ClientWithoutSidecarToStrict,
            Cause::ProxyConfigDiffers,
            Cause::CircuitBreakerOverflow,
            Cause::NoHealthyUpstream,
            Cause::AppNotListening,
            Cause::UpstreamConnectionReset,
        ] {
            assert!(!ids.contains(&data_plane.id()), "{data_plane:?}");
        }
        for config in [
            Cause::MtlsPlaintextToStrict,
            Cause::ServiceWithoutEndpoints,
            Cause::SubsetSelectsNoPods,
        ] {
            assert!(ids.contains(&config.id()), "{config:?}");
        }
    }

    /// Two services: httpbin broken by config (plaintext to STRICT), echo
    /// healthy. Scan lists httpbin only, and a data-plane rule that would
    /// fire on the proxies present (the client's cluster built from another
    /// DestinationRule: PROXY_CONFIG_DIFFERS) is not run — the near miss.
    #[test]
    fn lists_exactly_the_broken_services_and_runs_no_data_plane_rule() {
        let echo_pod = pod(
            "foo",
            "echo-1",
            "echo",
            "10.0.0.9",
            Some(crate::istio::sidecar::SidecarKind::Classic),
        );
        let mut c = cluster(
            8000,
            "httpbin.foo.svc.cluster.local",
            crate::envoy::config_dump::ClientTlsConfig::Plaintext,
        );
        c.istio_config_ref = Some(("foo".into(), "someother".into()));
        let client = proxy(&sleep_pod(), ProxyRole::Client).with_cluster(c);
        let mut mesh = MeshBuilder::new()
            .object(mesh_strict())
            .object(dr("foo", "httpbin", "httpbin", tls("DISABLE")))
            .service(httpbin())
            .service(service("foo", "echo", "echo", &[(80, "http", 8080)]))
            .pod(httpbin_pod())
            .pod(echo_pod)
            .pod(sleep_pod())
            .proxy(client)
            .build();
        // The data-plane rule does fire on this mesh when asked for httpbin.
        mesh.target = mesh.target.only(&ServiceKey::new("foo", "httpbin"));
        assert!(
            !crate::analyze::rules::proxy_config_differs::check(&mesh).is_empty(),
            "the near miss must be real"
        );
        let r = scan_mesh(&mut mesh, Some("foo"), config_rules());
        let listed: Vec<&str> = r.services.iter().map(|s| s.service.as_str()).collect();
        assert_eq!(listed, ["foo/httpbin"], "{r:#?}");
        assert!(r.has_errors());
        let ids: Vec<&str> = r.services[0].findings.iter().map(|f| f.id()).collect();
        assert!(ids.contains(&"MTLS_PLAINTEXT_TO_STRICT"), "{ids:?}");
        assert!(!ids.contains(&"PROXY_CONFIG_DIFFERS"), "{ids:?}");
        assert_eq!(r.services_scanned, 2);
    }
}
