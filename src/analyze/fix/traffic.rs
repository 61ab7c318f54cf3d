//! Candidate fixes that change a DestinationRule's connection pool: limits
//! that are reached (circuit breaker overflow), and the idle timeout below
//! the app's keep-alive (the keep-alive race; istiod applies the service's
//! DestinationRule connection pool to the server's inbound cluster too:
//! istio/istio cluster_builder.go `buildInboundCluster`,
//! `applyTrafficPolicy` "Connection pool settings are applicable for both
//! inbound and outbound clusters"). The values come from the evidence: the
//! client's own log (requests in flight at once), the server's log (how
//! long a pooled connection sat idle before the app reset it).
//!
//! The ladder is the same as for TLS: the rule in force for this host is
//! edited (port level when a port-level entry holds the pool); a wide rule
//! is never loosened for one host: a copy for this host takes the change.

use crate::envoy::access_log::AccessLogEntry;
use crate::model::{Manifest, Mesh, PoolField};

use super::candidate::{self, Candidate};
use super::problem::{PoolChange, PoolProblem};
use super::FixKind;

pub fn generate(kind: FixKind, mesh: &Mesh, p: &PoolProblem) -> Vec<Candidate> {
    let fits = matches!(
        (kind, &p.change),
        (FixKind::TuneConnectionPool, PoolChange::Limits(_))
            | (FixKind::TuneIdleTimeout, PoolChange::IdleTimeout(_))
    );
    if !fits {
        return vec![];
    }
    let f = candidate::in_force(mesh, &p.caller.client, p.svc, p.port);
    let (what, edit) = describe(&p.change);
    let apply = |m: &Manifest, at| edit_manifest(m, at, &p.change);
    match f {
        Some(f) if !f.wide => {
            let Some(change) = candidate::edit(mesh, &f.rule, |m| apply(m, f.at)) else {
                return vec![];
            };
            vec![Candidate::new(
                kind,
                format!(
                    "{edit} in {} of DestinationRule {}",
                    f.where_(),
                    f.rule.key()
                ),
                vec![change],
            )]
        }
        f => {
            let ns = candidate::new_rule_namespace(mesh, p.svc, f.as_ref());
            let name = candidate::free_name(mesh, &ns, &format!("{}-pool", p.svc.key.name));
            let at = f
                .as_ref()
                .map(|f| f.at)
                .unwrap_or(crate::model::TlsAt::TopLevel);
            let change =
                candidate::new_host_rule(mesh, p.svc, &ns, &name, f.as_ref(), |m| apply(m, at));
            let from = f
                .as_ref()
                .map(|f| {
                    format!(
                        " (a copy of the {} rule {}, which stays as it is)",
                        f.scope(),
                        f.rule.key()
                    )
                })
                .unwrap_or_default();
            vec![Candidate::new(
                kind,
                format!(
                    "create DestinationRule {ns}/{name} for {} only, with {what}{from}",
                    p.svc.fqdn
                ),
                vec![change],
            )]
        }
    }
}

/// (`what it sets`, `set …` as an instruction).
fn describe(change: &PoolChange) -> (String, String) {
    let what = match change {
        PoolChange::Limits(l) => l
            .iter()
            .map(|(f, v)| {
                let (g, n) = f.path();
                format!("connectionPool.{g}.{n} {v}")
            })
            .collect::<Vec<_>>()
            .join(", "),
        PoolChange::IdleTimeout(d) => format!("connectionPool.http.idleTimeout {d}"),
    };
    (what.clone(), format!("set {what}"))
}

fn edit_manifest(m: &Manifest, at: crate::model::TlsAt, change: &PoolChange) -> Manifest {
    match change {
        PoolChange::Limits(l) => l
            .iter()
            .fold(m.clone(), |m, (f, v)| m.with_pool_limit(at, *f, *v)),
        PoolChange::IdleTimeout(d) => m.with_idle_timeout(at, d),
    }
}

/// Milliseconds since the epoch of an RFC 3339 UTC time as Envoy logs it
/// (`2026-12-01T17:56:21.123Z`); `None` for anything else.
pub fn epoch_ms(t: &str) -> Option<i64> {
    let t = t.trim().trim_end_matches('Z');
    let (date, time) = t.split_once('T')?;
    let mut d = date.splitn(3, '-').map(|x| x.parse::<i64>().ok());
    let (y, mo, da) = (d.next()??, d.next()??, d.next()??);
    let (hms, frac) = time.split_once('.').unwrap_or((time, "0"));
    let mut h = hms.splitn(3, ':').map(|x| x.parse::<i64>().ok());
    let (hh, mm, ss) = (h.next()??, h.next()??, h.next()??);
    let frac: String = frac
        .chars()
        .take_while(char::is_ascii_digit)
        .take(3)
        .collect();
    let ms = format!("{frac:0<3}").parse::<i64>().ok()?;
    // Days from the civil date (H. Hinnant's algorithm).
    let y = if mo <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + da - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some((((days * 24 + hh) * 60 + mm) * 60 + ss) * 1000 + ms)
}

/// The most requests the client had in flight at once towards the cluster,
/// from its log: each line spans `[start, start + duration]`; a line the
/// pool refused (`UO`) counts as a request that wanted a slot for as long
/// as the admitted ones took (their median). `None` without timestamps.
pub fn peak_in_flight(lines: &[&AccessLogEntry]) -> Option<u32> {
    let mut admitted: Vec<u64> = lines
        .iter()
        .filter(|e| !e.has_flag("UO"))
        .filter_map(|e| e.duration_ms)
        .collect();
    admitted.sort_unstable();
    let typical = admitted
        .get(admitted.len() / 2)
        .copied()
        .unwrap_or(1)
        .max(1) as i64;
    let mut events: Vec<(i64, i32)> = Vec::new();
    for e in lines {
        let Some(start) = e.start_time.as_deref().and_then(epoch_ms) else {
            continue;
        };
        let dur = if e.has_flag("UO") {
            typical
        } else {
            e.duration_ms.unwrap_or(0).max(1) as i64
        };
        events.push((start, 1));
        events.push((start + dur, -1));
    }
    if events.is_empty() {
        return None;
    }
    // Ends before starts at the same instant.
    events.sort();
    let (mut now, mut peak) = (0i32, 0i32);
    for (_, d) in events {
        now += d;
        peak = peak.max(now);
    }
    u32::try_from(peak).ok()
}

/// The limits to set: every concurrency limit in force (`tcp.maxConnections`,
/// `http.http1MaxPendingRequests`, `http.http2MaxRequests`) below twice the
/// peak demand is raised to it; with no demand known, to four times its
/// value (at least 100). `current` holds the limits in force.
pub fn raised_limits(current: &[(PoolField, i64)], peak: Option<u32>) -> Vec<(PoolField, i64)> {
    current
        .iter()
        .filter(|(f, _)| {
            matches!(
                f,
                PoolField::MaxConnections
                    | PoolField::Http1MaxPendingRequests
                    | PoolField::Http2MaxRequests
            )
        })
        .filter_map(|(f, v)| {
            let want = match peak {
                Some(p) => i64::from(p) * 2,
                None => (v * 4).max(100),
            };
            (want > *v).then_some((*f, want))
        })
        .collect()
}

/// An idle timeout shorter than the app's keep-alive, from the server's
/// inbound log: a pooled connection reset after sitting idle `g` ms means
/// the app gives up sooner than `g`; one reused fine after `h` ms means it
/// keeps at least `h`. The timeout is the longest idle time known to be
/// safe, else a quarter of the shortest that failed; in proto-JSON seconds
/// (`0.125s`), which every Istio release parses. `None` when the log does
/// not say.
pub fn idle_timeout(inbound: &[&AccessLogEntry]) -> Option<(String, String)> {
    let mut lines: Vec<(i64, i64, &AccessLogEntry)> = inbound
        .iter()
        .filter_map(|e| {
            let s = epoch_ms(e.start_time.as_deref()?)?;
            Some((s, s + e.duration_ms.unwrap_or(0) as i64, *e))
        })
        .collect();
    lines.sort_by_key(|(s, _, _)| *s);
    let (mut worst_fail, mut best_ok): (Option<i64>, Option<i64>) = (None, None);
    for (i, (start, _, e)) in lines.iter().enumerate() {
        // The previous request on the same connection (same upstream local
        // address), else on the same cluster.
        let conn = e.upstream_local_address.as_deref();
        let prev = lines[..i]
            .iter()
            .rev()
            .find(|(_, _, p)| conn.is_none() || p.upstream_local_address.as_deref() == conn);
        let Some((_, prev_end, _)) = prev else {
            continue;
        };
        let gap = start - prev_end;
        if gap <= 0 {
            continue;
        }
        if e.response_code == Some(503) && e.has_flag("UC") {
            worst_fail = Some(worst_fail.map_or(gap, |w| w.min(gap)));
        } else if e.response_code.is_some_and(|c| (200..400).contains(&c)) {
            best_ok = Some(best_ok.map_or(gap, |b| b.max(gap)));
        }
    }
    let fail = worst_fail?;
    let (ms, why) = match best_ok.filter(|ok| *ok < fail) {
        Some(ok) => (
            ok,
            format!("a connection idle {ok} ms was reused fine and one idle {fail} ms was reset by the app"),
        ),
        None => (
            (fail / 4).max(1),
            format!("a connection idle {fail} ms was reset by the app (a quarter of that, to stay below its keep-alive timeout)"),
        ),
    };
    Some((format!("{}.{:03}s", ms / 1000, ms % 1000), why))
}
