//! Analyze stage: helpers the rules share to read typed access-log entries
//! (which lines concern a service port, how to quote them) and to name who
//! calls. Not a cause.

use std::collections::BTreeMap;

use crate::analyze::catalog::Cause;
use crate::analyze::confidence::{Confidence, Weight};
use crate::analyze::finding::{Evidence, Finding, SourceRef};
use crate::envoy::access_log::AccessLogEntry;
use crate::model::{ClientGroup, Mesh, Proxy, Service, ServicePort};

/// Is this access-log line about `fqdn:port`? Its upstream cluster is one of
/// the service port's (`outbound|<port>|<any subset>|<fqdn>`); lines without
/// a cluster (no route, older formats) are matched by `:authority` host and,
/// when the authority has one, port.
pub fn log_line_targets(e: &AccessLogEntry, port: u16, fqdn: &str) -> bool {
    match e.upstream_cluster.as_deref() {
        Some(c) => c.starts_with(&format!("outbound|{port}|")) && c.ends_with(&format!("|{fqdn}")),
        None => e.authority.as_deref().is_some_and(|a| {
            let (host, a_port) = match a.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (a, None),
            };
            (fqdn == host || fqdn.starts_with(&format!("{host}.")))
                && a_port.is_none_or(|p| p == port.to_string())
        }),
    }
}

/// The client's 503s for `fqdn:port`.
pub fn client_503s<'p>(proxy: &'p Proxy, port: u16, fqdn: &str) -> Vec<&'p AccessLogEntry> {
    proxy
        .log
        .entries
        .iter()
        .filter(|e| e.response_code == Some(503) && log_line_targets(e, port, fqdn))
        .collect()
}

/// Entries with a response flag.
pub fn with_flag<'e>(entries: &[&'e AccessLogEntry], flag: &str) -> Vec<&'e AccessLogEntry> {
    entries
        .iter()
        .copied()
        .filter(|e| e.has_flag(flag))
        .collect()
}

/// The first of some log lines, shortened, to quote as evidence.
pub fn sample_line(entries: &[&AccessLogEntry]) -> String {
    entries
        .first()
        .map(|e| e.raw.chars().take(400).collect())
        .unwrap_or_default()
}

/// `5 × UC, 1 × UF,URX`.
pub fn flags_summary(entries: &[&AccessLogEntry]) -> String {
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for e in entries {
        let f = if e.response_flags.is_empty() {
            "-".to_string()
        } else {
            e.response_flags.join(",")
        };
        *counts.entry(f).or_default() += 1;
    }
    counts
        .iter()
        .map(|(f, n)| format!("{n} × {f}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `" (and 2 other pod(s) of the same workload)"` for a folded replica group.
pub fn replicas_note(g: &ClientGroup) -> String {
    if g.others > 0 {
        format!(
            " (and {} of the same workload)",
            crate::words::count(g.others, "other pod", "other pods")
        )
    } else {
        String::new()
    }
}

/// The read sidecars of the target's pods, per target port, with the lines of
/// their access log that are inbound ([`AccessLogEntry::is_inbound`]).
pub fn server_sidecars(mesh: &Mesh) -> Vec<(&Service, &ServicePort, &Proxy, Vec<&AccessLogEntry>)> {
    let mut out = Vec::new();
    for (svc, port) in mesh.target_ports() {
        for pod in mesh.backing_pods(svc) {
            if let Some(p) = mesh.proxy_of(&pod.key) {
                let inbound = p.log.entries.iter().filter(|e| e.is_inbound()).collect();
                out.push((svc, port, p, inbound));
            }
        }
    }
    out
}

/// A finding about one server sidecar for one target port, with the lines of
/// its access log that show it (`detail`, then a sample line).
pub fn server_log_finding(
    cause: Cause,
    (svc, port, p): (&Service, &ServicePort, &Proxy),
    claim: String,
    weights: &[Weight],
    (detail, lines): (String, &[&AccessLogEntry]),
) -> Finding {
    Finding::new(
        cause,
        format!("{}:{} at {}", svc.fqdn, port.number, p.label),
        claim,
        &Confidence::of(weights),
    )
    .evidence([Evidence::new(
        SourceRef::AccessLog(p.label.clone()),
        format!("{detail}; e.g. {}", sample_line(lines)),
    )])
}

/// The IP of an `ip:port` (`[v6]:port`) address.
pub fn ip_of(addr: &str) -> &str {
    let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h);
    host.trim_start_matches('[').trim_end_matches(']')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(cluster: Option<&str>, authority: Option<&str>) -> AccessLogEntry {
        AccessLogEntry {
            upstream_cluster: cluster.map(str::to_string),
            authority: authority.map(str::to_string),
            ..Default::default()
        }
    }

    #[test]
    fn log_lines_are_matched_to_a_service_port() {
        let f = "httpbin.foo.svc.cluster.local";
        let yes = [
            entry(Some("outbound|8000||httpbin.foo.svc.cluster.local"), None),
            entry(Some("outbound|8000|v2|httpbin.foo.svc.cluster.local"), None),
            entry(None, Some("httpbin.foo:8000")),
            entry(None, Some("httpbin")),
        ];
        let no = [
            entry(Some("outbound|9000||httpbin.foo.svc.cluster.local"), None),
            entry(Some("inbound|8080||"), Some("httpbin.foo:8000")),
            entry(None, Some("httpbin.foo:9000")),
            entry(None, Some("httpbin2.foo:8000")),
        ];
        for e in &yes {
            assert!(log_line_targets(e, 8000, f), "{e:?}");
        }
        for e in &no {
            assert!(!log_line_targets(e, 8000, f), "{e:?}");
        }
    }

    #[test]
    fn flags_and_ips() {
        let a = AccessLogEntry {
            response_flags: vec!["UF".into(), "URX".into()],
            ..Default::default()
        };
        let b = AccessLogEntry::default();
        assert_eq!(flags_summary(&[&a, &a, &b]), "1 × -, 2 × UF,URX");
        assert_eq!(ip_of("10.0.0.1:4312"), "10.0.0.1");
        assert_eq!(ip_of("[fd00::1]:80"), "fd00::1");
    }
}
