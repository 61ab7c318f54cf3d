//! Who called a server sidecar, according to its access log: the downstream
//! peers of the traffic it received (client discovery when nothing else names
//! the callers).
//!
//! Place in the flow: collect reads a server's log tail and maps these peer
//! IPs to pods to choose which clients to read; pure (no I/O).
//!
//! Lines are read with the full access-log parser ([`super::LogParser`]): the
//! `%DOWNSTREAM_REMOTE_ADDRESS%` of a line the sidecar *received* — not an
//! outbound call its own app made ([`AccessLogEntry::direction`]: `outbound|…`,
//! `PassthroughCluster`, `BlackHoleCluster`). Lines refused before any
//! cluster (`NR filter_chain_not_found`: a plaintext caller refused by
//! STRICT) are inbound; lines that do not say (no cluster in the format)
//! count too, the pod's own addresses telling its app's calls apart.
//!
//! Skipped peers: the pod's own IPs, and only the loopback addresses Istio
//! itself uses as a source — 127.0.0.6 / `::6` (the inbound passthrough
//! bind address from Istio 1.10, `InboundPassthroughBindIpv4/6` in
//! istio/istio `pilot/pkg/networking/util`) and 127.0.0.1 / `::1` (the
//! sidecar reaching its app before 1.10; probes through localhost). Any
//! other address, loopback or not, is a caller: a pod's IP may be anything
//! its network gives it.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

use super::{AccessLogEntry, Direction, LogFormatSpec, LogParser};

/// A downstream peer seen in an access log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub ip: String,
    /// Access log lines with this downstream address.
    pub requests: u64,
    /// Of those, answered 5xx.
    pub server_errors: u64,
    /// Of those, answered 503.
    pub unavailable: u64,
}

impl Caller {
    fn new(ip: String) -> Caller {
        Caller {
            ip,
            requests: 0,
            server_errors: 0,
            unavailable: 0,
        }
    }
}

/// Traffic the sidecar received from outside the pod, as opposed to calls
/// the pod's own app made through it: inbound, or a line that does not say.
pub fn is_received(e: &AccessLogEntry) -> bool {
    e.direction() != Some(Direction::Outbound)
}

/// The addresses Istio itself connects from inside a pod (never a caller).
pub fn is_istio_own_source(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.octets() == [127, 0, 0, 1] || v4.octets() == [127, 0, 0, 6],
        IpAddr::V6(v6) => {
            v6 == std::net::Ipv6Addr::LOCALHOST
                || v6 == std::net::Ipv6Addr::new(0, 0, 0, 0, 0, 0, 0, 6)
        }
    }
}

/// The IP of `%DOWNSTREAM_REMOTE_ADDRESS%` (`10.0.0.9:51234`, `[fd00::9]:5`, a bare IP).
pub fn downstream_ip(e: &AccessLogEntry) -> Option<IpAddr> {
    let a = e.downstream_remote_address.as_deref()?;
    a.parse::<SocketAddr>()
        .map(|s| s.ip())
        .ok()
        .or_else(|| a.parse::<IpAddr>().ok())
}

fn sorted(by_ip: BTreeMap<String, Caller>) -> Vec<Caller> {
    let mut out: Vec<Caller> = by_ip.into_values().collect();
    out.sort_by(|a, b| b.requests.cmp(&a.requests).then_with(|| a.ip.cmp(&b.ip)));
    out
}

/// The downstream peers in parsed entries: received lines only, the pod's own
/// addresses (`own_ips`) and Istio's own source addresses excluded; most
/// requests first.
pub fn callers(entries: &[AccessLogEntry], own_ips: &[String]) -> Vec<Caller> {
    let own: Vec<IpAddr> = own_ips.iter().filter_map(|s| s.parse().ok()).collect();
    let mut by_ip: BTreeMap<String, Caller> = BTreeMap::new();
    for e in entries.iter().filter(|e| is_received(e)) {
        let Some(ip) = downstream_ip(e) else { continue };
        if is_istio_own_source(ip) || own.contains(&ip) {
            continue;
        }
        let c = by_ip
            .entry(ip.to_string())
            .or_insert_with(|| Caller::new(ip.to_string()));
        c.requests += 1;
        if let Some(code) = e.response_code {
            c.server_errors += u64::from(code >= 500);
            c.unavailable += u64::from(code == 503);
        }
    }
    sorted(by_ip)
}

/// [`callers`] of a raw log tail, read with `formats` first (those on the
/// proxy's listeners or the mesh `accessLogFormat`), then Istio's built-in ones.
pub fn callers_in_log(log: &str, formats: &[LogFormatSpec], own_ips: &[String]) -> Vec<Caller> {
    let (entries, _skipped) = LogParser::with_formats(formats).parse_log(log);
    callers(&entries, own_ips)
}

/// Merge callers found in several logs (same IP → counts added).
pub fn merge_callers(lists: impl IntoIterator<Item = Vec<Caller>>) -> Vec<Caller> {
    let mut by_ip: BTreeMap<String, Caller> = BTreeMap::new();
    for c in lists.into_iter().flatten() {
        let e = by_ip
            .entry(c.ip.clone())
            .or_insert_with(|| Caller::new(c.ip.clone()));
        e.requests += c.requests;
        e.server_errors += c.server_errors;
        e.unavailable += c.unavailable;
    }
    sorted(by_ip)
}
