//! Cause `UNEXPLAINED_503S` (rule; declared in the catalog): the proxies
//! counted or logged 503 responses for the target and no rule explains them.
//! The report then never says "no cause" with a clean exit: it says where
//! the 503s were seen and which hop produced them.
//!
//! Evidence, in every form a sidecar offers it:
//! - Istio's standard metrics: `istio_requests_total` rows with
//!   `response_code="503"` for the target (`destination_service` its FQDN,
//!   or `destination_service_name`/`_namespace`; on the target's own pods
//!   every `reporter="destination"` row), both reporters;
//! - access logs: a caller's outbound lines for the target's
//!   `outbound|port|…|fqdn` (or `:authority`), the server's inbound lines.
//!
//! Hop attribution (envoyproxy/envoy `source/common/stream_info/utility.cc`
//! response flags; `via_upstream` in `%RESPONSE_CODE_DETAILS%`, envoy
//! `source/common/router/router.cc`; istio/proxy
//! `extensions/common/context.cc` reporter): a 503 with a response flag was
//! produced by the proxy that reported it (`reporter=source`: the client
//! sidecar, e.g. `UH`, `UF`, `NC`, `UO`; `reporter=destination`: the server
//! sidecar, e.g. `UF` to its app); a 503 without a flag (`-`) or with
//! `via_upstream` was relayed: from the client's side it came from further
//! up (the server sidecar or the app), from the server's side it is the
//! app's own answer.
//!
//! Explained means: another finding at error severity, or one of the causes
//! whose warnings and notes are themselves the 503s
//! ([`explains_503s`]). The catalog runs this rule like the others;
//! [`reconcile`] then drops its finding when something explains the
//! failures, raising a warning or note that explains them to an error. Counters are cumulative since each proxy started: old 503s
//! count too (the explanation says so).

use std::collections::BTreeMap;

use super::common::client_503s;
use crate::analyze::catalog::Cause;
use crate::analyze::confidence::{Confidence, Weight};
use crate::analyze::finding::{Evidence, Finding, Fix, Severity, SourceRef};
use crate::analyze::fix::FixKind;
use crate::envoy::access_log::AccessLogEntry;
use crate::envoy::metrics::{IstioMetric, MetricRow, Reporter};
use crate::model::{Mesh, Proxy, Service};

/// Which proxy (or app) produced a 503.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Hop {
    /// The caller's sidecar answered it itself (a response flag on its side).
    ClientSidecar,
    /// The server's sidecar answered it itself (a response flag on its side).
    ServerSidecar,
    /// Relayed by the caller's sidecar: produced further up (the server
    /// sidecar or the app behind it).
    Upstream,
    /// Relayed by the server's sidecar: the application answered 503.
    App,
}

impl Hop {
    fn describe(self) -> &'static str {
        match self {
            Hop::ClientSidecar => "produced by the caller's sidecar",
            Hop::ServerSidecar => "produced by the server's sidecar",
            Hop::Upstream => {
                "relayed by the caller's sidecar: produced further up (server sidecar or app)"
            }
            Hop::App => "relayed by the server's sidecar: the application answered 503",
        }
    }

    fn of(reporter_is_server: bool, flags: &[String], via_upstream: bool) -> Hop {
        let relayed = via_upstream || flags.is_empty();
        match (reporter_is_server, relayed) {
            (false, false) => Hop::ClientSidecar,
            (false, true) => Hop::Upstream,
            (true, false) => Hop::ServerSidecar,
            (true, true) => Hop::App,
        }
    }
}

/// 503s of one kind seen by one proxy.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Seen {
    pub hop: Hop,
    /// The proxy that saw them (`foo/sleep-1`).
    pub proxy: String,
    /// `metrics` or `access log`.
    pub from_metrics: bool,
    /// `source`/`destination` for metrics; `outbound`/`inbound` for logs.
    pub reporter: String,
    /// Who called, when the evidence says (`source_workload`).
    pub caller: Option<String>,
    /// `UH`, `URX,UF`, `-`.
    pub flags: String,
    pub count: u64,
}

impl Seen {
    fn line(&self) -> String {
        format!(
            "{} × 503 {} ({} {}{}), {}",
            self.count,
            self.flags,
            if self.from_metrics {
                "reporter"
            } else {
                "access log"
            },
            self.reporter,
            self.caller
                .as_deref()
                .map(|c| format!(", from {c}"))
                .unwrap_or_default(),
            self.hop.describe()
        )
    }
}

pub fn check(mesh: &Mesh) -> Vec<Finding> {
    let seen = seen_503s(mesh);
    if seen.is_empty() {
        return vec![];
    }
    let mut conf = Confidence::default();
    conf.add_if(seen.iter().any(|s| s.from_metrics), Weight::Metrics);
    conf.add_if(
        seen.iter()
            .any(|s| !s.from_metrics && s.reporter == "outbound"),
        Weight::ClientLog,
    );
    conf.add_if(
        seen.iter()
            .any(|s| !s.from_metrics && s.reporter == "inbound"),
        Weight::ServerLog,
    );
    let mut hops: Vec<Hop> = seen.iter().map(|s| s.hop).collect();
    hops.sort();
    hops.dedup();
    let origin = hops
        .iter()
        .map(|h| h.describe())
        .collect::<Vec<_>>()
        .join("; ");
    let kinds = seen
        .iter()
        .take(3)
        .map(|s| format!("{} × {} at {}", s.count, s.flags, s.proxy))
        .collect::<Vec<_>>()
        .join(", ");
    let claim = format!(
        "503s seen ({kinds}{}), no cause identified",
        if seen.len() > 3 { ", …" } else { "" }
    );
    let evidence = seen.iter().map(|s| {
        Evidence::new(
            if s.from_metrics {
                SourceRef::Metrics(s.proxy.clone())
            } else {
                SourceRef::AccessLog(s.proxy.clone())
            },
            s.line(),
        )
    });
    vec![Finding::new(Cause::Unexplained503s, mesh.target.text.clone(), claim, &conf)
        .explain([
            format!("Where they start: {origin}."),
            "No rule of the catalog explains these failures from the objects and proxies the tool could read; see the gaps below for what it could not read.".to_string(),
            "Metric counters add up since each proxy started: some 503s may be old.".to_string(),
        ])
        .evidence(evidence)
        .fix(Some(Fix::advice(FixKind::Investigate, advice(&hops))))]
}

fn advice(hops: &[Hop]) -> String {
    match hops.first() {
        Some(Hop::ClientSidecar) => "Start at the caller's sidecar: its response flag names the failure (`istioctl proxy-config cluster/endpoint` for that pod).".into(),
        Some(Hop::ServerSidecar) => "Start at the server's sidecar: its inbound cluster could not serve the request (its log or `istioctl proxy-config` for the pod).".into(),
        Some(Hop::Upstream) => "Look further up: the caller's sidecar only relayed the 503; read the server sidecar's log and metrics.".into(),
        Some(Hop::App) | None => "The application itself answered 503: read its own logs.".into(),
    }
}

/// Every 503 for the target the proxies counted or logged, grouped.
pub fn seen_503s(mesh: &Mesh) -> Vec<Seen> {
    let targets: Vec<&Service> = mesh.target_services().collect();
    // Keyed by everything but the count (kept 0 in the key).
    let mut acc: BTreeMap<Seen, u64> = BTreeMap::new();
    for p in &mesh.proxies {
        let server = is_server(mesh, p);
        if let Some(m) = &p.metrics {
            for r in m.of(IstioMetric::RequestsTotal) {
                if r.response_code != Some(503) || !row_targets(r, &targets, server) {
                    continue;
                }
                let is_dest = matches!(r.reporter, Some(Reporter::Destination));
                let reporter = match &r.reporter {
                    Some(Reporter::Source) => "source".to_string(),
                    Some(Reporter::Destination) => "destination".to_string(),
                    Some(Reporter::Waypoint) => "waypoint".to_string(),
                    Some(Reporter::Other(o)) => o.clone(),
                    None => "unknown".to_string(),
                };
                let caller =
                    r.source_workload
                        .as_ref()
                        .map(|w| match &r.source_workload_namespace {
                            Some(ns) => format!("{ns}/{w}"),
                            None => w.clone(),
                        });
                let key = Seen {
                    hop: Hop::of(is_dest, &r.response_flags, false),
                    proxy: p.label.clone(),
                    from_metrics: true,
                    reporter,
                    caller,
                    flags: flags(&r.response_flags),
                    count: 0,
                };
                *acc.entry(key).or_default() += r.value;
            }
        }
        for e in logged(mesh, p, server) {
            let via = e.details.as_deref() == Some("via_upstream");
            let key = Seen {
                hop: Hop::of(server, &e.response_flags, via),
                proxy: p.label.clone(),
                from_metrics: false,
                reporter: if server { "inbound" } else { "outbound" }.to_string(),
                caller: None,
                flags: flags(&e.response_flags),
                count: 0,
            };
            *acc.entry(key).or_default() += 1;
        }
    }
    let mut v: Vec<Seen> = acc
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .map(|(key, count)| Seen { count, ..key })
        .collect();
    v.sort_by(|a, b| b.count.cmp(&a.count).then(a.cmp(b)));
    v
}

fn flags(f: &[String]) -> String {
    if f.is_empty() {
        "-".into()
    } else {
        f.join(",")
    }
}

fn is_server(mesh: &Mesh, p: &Proxy) -> bool {
    let Some(key) = &p.pod else { return false };
    mesh.target_services()
        .any(|s| mesh.backing_pods(s).any(|pod| &pod.key == key))
}

/// Is this row about the target? By destination service; on the target's
/// own pods every row the server side reported.
fn row_targets(r: &MetricRow, targets: &[&Service], server: bool) -> bool {
    if server && matches!(r.reporter, Some(Reporter::Destination)) {
        return true;
    }
    targets.iter().any(|s| {
        r.destination_service.as_deref() == Some(s.fqdn.as_str())
            || (r.labels.get("destination_service_name") == Some(&s.key.name)
                && r.destination_service_namespace.as_deref() == Some(s.key.namespace.as_str()))
    })
}

/// The 503 lines of a proxy's log that concern the target: a caller's
/// outbound lines, a server's inbound lines.
fn logged<'p>(mesh: &Mesh, p: &'p Proxy, server: bool) -> Vec<&'p AccessLogEntry> {
    if server {
        return p
            .log
            .entries
            .iter()
            .filter(|e| e.response_code == Some(503) && e.is_inbound())
            .collect();
    }
    let mut out: Vec<&AccessLogEntry> = Vec::new();
    for (svc, port) in mesh.target_ports() {
        for e in client_503s(p, port.number, &svc.fqdn) {
            if !out.iter().any(|x| std::ptr::eq(*x, e)) {
                out.push(e);
            }
        }
    }
    out
}

/// Causes whose warnings and notes are the 503s themselves: an injected
/// abort, ejected hosts, a keep-alive race (a reached pool limit is always
/// an error).
fn produces_503s(c: Cause) -> bool {
    matches!(
        c,
        Cause::FaultInjection503
            | Cause::NoHealthyUpstream
            | Cause::UpstreamConnectionReset
            | Cause::CircuitBreakerOverflow
    )
}

/// Does a finding account for 503s? Any other error does; so do the
/// causes of [`produces_503s`] at any severity.
pub fn explains_503s(f: &Finding) -> bool {
    f.cause != Cause::Unexplained503s && (f.severity == Severity::Error || produces_503s(f.cause))
}

/// After every rule ran: when the proxies showed 503s (this rule fired) and
/// another finding explains them, drop `UNEXPLAINED_503S`; if what explains
/// them is only a warning or a note of a cause that produces 503s, raise it
/// to an error, so 503s in front of the report never exit 0.
pub fn reconcile(findings: &mut Vec<Finding>) {
    let Some(at) = findings
        .iter()
        .position(|f| f.cause == Cause::Unexplained503s)
    else {
        return;
    };
    if !findings.iter().any(explains_503s) {
        return;
    }
    let seen = findings.remove(at);
    if findings.iter().any(|f| f.severity == Severity::Error) {
        return;
    }
    let kinds = seen
        .evidence
        .iter()
        .take(3)
        .map(|e| e.detail.split(',').next().unwrap_or("").to_string())
        .collect::<Vec<_>>()
        .join("; ");
    for f in findings.iter_mut().filter(|f| produces_503s(f.cause)) {
        f.severity = Severity::Error;
        f.explanation.push(format!(
            "Reported as an error: the proxies show 503s for the target ({kinds}) and this is what produces them."
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyze::confidence::Confidence;
    use crate::envoy::metrics::{IstioMetrics, Spelling};
    use crate::model::builder::*;
    use crate::snapshot::ProxyRole;

    fn row(reporter: Reporter, code: u16, flags: &str, value: u64) -> MetricRow {
        MetricRow {
            metric: IstioMetric::RequestsTotal,
            spelling: Spelling::Prometheus,
            reporter: Some(reporter),
            source_workload: Some("sleep".into()),
            source_workload_namespace: Some("foo".into()),
            source_principal: None,
            destination_workload: Some("httpbin".into()),
            destination_service: Some("httpbin.foo.svc.cluster.local".into()),
            destination_service_namespace: Some("foo".into()),
            response_code: Some(code),
            response_flags: if flags == "-" {
                vec![]
            } else {
                flags.split(',').map(str::to_string).collect()
            },
            connection_security_policy: None,
            labels: Default::default(),
            value,
        }
    }

    fn with_metrics(mut p: Proxy, rows: Vec<MetricRow>) -> Proxy {
        p.metrics = Some(IstioMetrics {
            rows,
            unreadable: vec![],
        });
        p
    }

    fn mesh(client: Vec<MetricRow>, server: Vec<MetricRow>) -> Mesh {
        MeshBuilder::new()
            .target(httpbin())
            .pod(httpbin_pod())
            .pod(sleep_pod())
            .proxy(with_metrics(proxy(&sleep_pod(), ProxyRole::Client), client))
            .proxy(with_metrics(
                proxy(&httpbin_pod(), ProxyRole::Server),
                server,
            ))
            .build()
    }

    #[test]
    fn hops_are_attributed_from_reporter_and_flags() {
        let m = mesh(
            vec![
                row(Reporter::Source, 503, "UH", 4),
                row(Reporter::Source, 503, "-", 2),
                row(Reporter::Source, 200, "-", 9),
            ],
            vec![
                row(Reporter::Destination, 503, "URX,UF", 3),
                row(Reporter::Destination, 503, "-", 1),
            ],
        );
        let seen = seen_503s(&m);
        let got: Vec<(Hop, &str, u64)> = seen
            .iter()
            .map(|s| (s.hop, s.flags.as_str(), s.count))
            .collect();
        assert_eq!(
            got,
            vec![
                (Hop::ClientSidecar, "UH", 4),
                (Hop::ServerSidecar, "URX,UF", 3),
                (Hop::Upstream, "-", 2),
                (Hop::App, "-", 1),
            ]
        );
        let f = &check(&m)[0];
        assert_eq!(f.severity, Severity::Error);
        assert!(
            f.claim
                .starts_with("503s seen (4 × UH at foo/sleep-1, 3 × URX,UF at foo/httpbin-1"),
            "{}",
            f.claim
        );
        assert!(f.claim.ends_with("no cause identified"), "{}", f.claim);
        assert!(f.evidence.iter().any(|e| e.detail
            == "4 × 503 UH (reporter source, from foo/sleep), produced by the caller's sidecar"));
        assert_eq!(f.confidence_basis, vec![Weight::Metrics]);
    }

    #[test]
    fn access_logs_count_too_with_via_upstream() {
        let mut relayed = entry(
            503,
            "-",
            Some("outbound|8000||httpbin.foo.svc.cluster.local"),
        );
        relayed.details = Some("via_upstream".into());
        let m = MeshBuilder::new()
            .target(httpbin())
            .pod(httpbin_pod())
            .pod(sleep_pod())
            .proxy(proxy(&sleep_pod(), ProxyRole::Client).with_log(vec![
                relayed,
                entry(
                    503,
                    "NC",
                    Some("outbound|8000|v9|httpbin.foo.svc.cluster.local"),
                ),
                entry(
                    503,
                    "UH",
                    Some("outbound|8000||other.foo.svc.cluster.local"),
                ),
            ]))
            .proxy(
                proxy(&httpbin_pod(), ProxyRole::Server).with_log(vec![entry(
                    503,
                    "-",
                    Some("inbound|8080||"),
                )]),
            )
            .build();
        let seen = seen_503s(&m);
        let got: Vec<(Hop, &str)> = seen.iter().map(|s| (s.hop, s.flags.as_str())).collect();
        assert_eq!(
            got,
            vec![
                (Hop::ClientSidecar, "NC"),
                (Hop::Upstream, "-"),
                (Hop::App, "-")
            ],
            "the 503 for another service is not counted"
        );
        assert_eq!(
            check(&m)[0].confidence_basis,
            vec![Weight::ClientLog, Weight::ServerLog]
        );
    }

    #[test]
    fn near_misses() {
        // Only 200s.
        let m = mesh(
            vec![row(Reporter::Source, 200, "-", 5)],
            vec![row(Reporter::Destination, 200, "-", 5)],
        );
        assert!(check(&m).is_empty());
        // 503s for another service, seen by the caller.
        let mut other = row(Reporter::Source, 503, "UH", 5);
        other.destination_service = Some("other.foo.svc.cluster.local".into());
        assert!(check(&mesh(vec![other], vec![])).is_empty());
        // No metrics and no logs at all.
        assert!(check(&MeshBuilder::new().target(httpbin()).build()).is_empty());
    }

    #[test]
    fn another_finding_explains_them() {
        let m = mesh(vec![row(Reporter::Source, 503, "UC", 5)], vec![]);
        let unexplained = check(&m);
        let other = |c: Cause, s: Severity| {
            Finding::new(c, "x", "y", &Confidence::of(&[Weight::ConfigPredicts])).with_severity(s)
        };
        let cases = [
            (other(Cause::MtlsPlaintextToStrict, Severity::Error), true),
            (other(Cause::FaultInjection503, Severity::Info), true),
            (other(Cause::NoHealthyUpstream, Severity::Warning), true),
            (
                other(Cause::VirtualServiceShadowed, Severity::Warning),
                false,
            ),
            (other(Cause::PortProtocolUndeclared, Severity::Info), false),
            (other(Cause::ConfigRejected, Severity::Warning), false),
        ];
        for (f, explains) in cases {
            let mut v = unexplained.clone();
            v.push(f.clone());
            reconcile(&mut v);
            assert_eq!(
                v.iter().any(|x| x.cause == Cause::Unexplained503s),
                !explains,
                "{:?} {:?}",
                f.cause,
                f.severity
            );
            // 503s in front of the report: some error is always left.
            assert!(v.iter().any(|x| x.severity == Severity::Error), "{v:#?}");
            if explains {
                let kept = v.iter().find(|x| x.cause == f.cause).unwrap();
                assert_eq!(kept.severity, Severity::Error, "{kept:#?}");
                assert_eq!(
                    kept.explanation.len() > f.explanation.len(),
                    f.severity != Severity::Error,
                    "a raised finding says why: {kept:#?}"
                );
            }
        }
        // Without 503s nothing is raised.
        let mut v = vec![other(Cause::FaultInjection503, Severity::Info)];
        reconcile(&mut v);
        assert_eq!(v[0].severity, Severity::Info);
    }
}
