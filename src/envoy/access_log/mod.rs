//! istio-proxy access log lines (TEXT and JSON encodings, every Istio era),
//! and who called a server sidecar according to them.
//!
//! Place in the flow: collect tails the `istio-proxy` log (and finds callers
//! in it with [`callers_in_log`]); model parses the stored lines with the
//! formats the proxy's listeners declare; analyze rules read the entries.
//!
//! The TEXT formats are templates of Envoy command operators
//! (envoyproxy/envoy `docs/root/configuration/observability/access_log/usage.rst`).
//! Istio's defaults over time (istio/istio):
//! - 1.0.x `pilot/pkg/networking/core/v1alpha3/listener.go` `EnvoyHTTPLogFormat`
//!   (note the missing space between path and protocol) and `EnvoyTCPLogFormat`;
//! - 1.1 `EnvoyTextLogFormat` with `"%DYNAMIC_METADATA(istio.mixer:status)%"`;
//! - 1.2–1.7 `EnvoyTextLogFormat12/13` adding `"%UPSTREAM_TRANSPORT_FAILURE_REASON%"`
//!   (and `%ROUTE_NAME%` from 1.3);
//! - 1.8–1.11 without the mixer field (`accesslog.go`), 1.9–1.11 optional
//!   `EnvoyTextLogFormatIstio19` with details;
//! - 1.12+ `%RESPONSE_CODE_DETAILS% %CONNECTION_TERMINATION_DETAILS%`, and today
//!   (`pilot/pkg/model/telemetry_logging.go` `EnvoyTextLogFormat`) `%UPSTREAM_CLUSTER_RAW%`.
//!
//! JSON encoding: `EnvoyJSONLogFormatIstio` in the same file (keys `start_time`,
//! `response_code`, `response_flags`, …). A custom `accessLogFormat` can be
//! passed in (see [`parse_log_with`]); the formats Envoy really runs can be
//! read from the listeners in `/config_dump` (`envoy::config_dump::Listener::access_log_formats`).
//!
//! Envoy sanitizes `%RESPONSE_CODE_DETAILS%`: whitespace becomes `_`
//! (`upstream_reset_before_response_started{remote_connection_failure|delayed_connect_error:_Connection_refused}`).

use std::collections::BTreeMap;

use serde_json::Value;

mod callers;
mod matcher;
mod parser;
mod template;
#[cfg(test)]
mod tests;

pub use callers::{
    callers, callers_in_log, downstream_ip, is_istio_own_source, is_received, merge_callers, Caller,
};
pub use parser::{LogParser, ISTIO_TEXT_FORMATS, MAX_CUSTOM_FORMATS};

/// An access log format as configured on a listener or in mesh config.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LogFormatSpec {
    /// A text template (`[%START_TIME%] "%REQ(:METHOD)% …"`).
    Text(String),
    /// JSON: output key → command operator (`"response_code": "%RESPONSE_CODE%"`).
    Json(BTreeMap<String, String>),
}

/// Which way a logged connection or request went through the sidecar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Received from a caller, for the pod's app.
    Inbound,
    /// Sent by the pod's app.
    Outbound,
}

/// One parsed access log line. Envoy prints `-` for missing values; those are `None`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AccessLogEntry {
    pub start_time: Option<String>,
    pub method: Option<String>,
    pub path: Option<String>,
    pub protocol: Option<String>,
    /// `Some(0)` for TCP or downstream-disconnect lines.
    pub response_code: Option<u16>,
    /// `UF,URX` → `["UF", "URX"]`; empty for `-`.
    pub response_flags: Vec<String>,
    /// `%RESPONSE_CODE_DETAILS%`.
    pub details: Option<String>,
    /// `%CONNECTION_TERMINATION_DETAILS%`.
    pub termination_details: Option<String>,
    /// `%UPSTREAM_TRANSPORT_FAILURE_REASON%`.
    pub transport_failure_reason: Option<String>,
    pub bytes_received: Option<u64>,
    pub bytes_sent: Option<u64>,
    pub duration_ms: Option<u64>,
    pub upstream_service_time: Option<String>,
    pub x_forwarded_for: Option<String>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
    pub upstream_host: Option<String>,
    pub upstream_cluster: Option<String>,
    pub authority: Option<String>,
    pub upstream_local_address: Option<String>,
    pub downstream_local_address: Option<String>,
    pub downstream_remote_address: Option<String>,
    pub requested_server_name: Option<String>,
    pub route_name: Option<String>,
    /// Istio 1.1–1.7 `%DYNAMIC_METADATA(istio.mixer:status)%`.
    pub mixer_status: Option<String>,
    /// Which format matched (`istio-1.12+`, `json`, `custom`, …).
    pub format: String,
    /// The line as read (without the trailing newline).
    pub raw: String,
}

impl AccessLogEntry {
    pub fn has_flag(&self, flag: &str) -> bool {
        self.response_flags.iter().any(|f| f == flag)
    }

    /// `"- - -"` request part: a TCP proxy line.
    pub fn is_tcp(&self) -> bool {
        self.method.is_none() && self.path.is_none() && self.protocol.is_none()
    }

    /// Which way the traffic went, as the line says:
    /// - inbound: an `inbound|…` cluster, the inbound passthrough cluster
    ///   (`InboundPassthroughClusterIpv4`/`…Ipv6`, one `InboundPassthroughCluster`
    ///   from Istio 1.23), or a connection refused before any cluster was
    ///   picked: `NR` with `filter_chain_not_found` (or, in formats without
    ///   details, a TCP `NR` with code 0) — only an inbound listener refuses
    ///   so; an outbound connection nothing matches goes to
    ///   `PassthroughCluster` or `BlackHoleCluster`;
    /// - outbound: `outbound|…` (`outbound_.…` in old DNS clusters),
    ///   `PassthroughCluster`, `BlackHoleCluster`;
    /// - `None`: no cluster and no refusal (a format without
    ///   `%UPSTREAM_CLUSTER%`, a local reply) or another cluster.
    ///
    /// Sources: istio/istio `pilot/pkg/util/network` and
    /// `pilot/pkg/networking/util` (cluster names), `listener_inbound.go`
    /// (the passthrough cluster), envoyproxy/envoy
    /// `source/common/stream_info/utility.cc` (`NR`, `filter_chain_not_found`).
    pub fn direction(&self) -> Option<Direction> {
        match self.upstream_cluster.as_deref() {
            Some(c)
                if c.starts_with("inbound|")
                    || c == "InboundPassthroughCluster"
                    || c == "InboundPassthroughClusterIpv4"
                    || c == "InboundPassthroughClusterIpv6" =>
            {
                Some(Direction::Inbound)
            }
            Some(c)
                if c.starts_with("outbound|")
                    || c.starts_with("outbound_.")
                    || c == "PassthroughCluster"
                    || c == "BlackHoleCluster" =>
            {
                Some(Direction::Outbound)
            }
            Some(_) => None,
            None if self.no_filter_chain() => Some(Direction::Inbound),
            None => None,
        }
    }

    /// A connection the listener matched no filter chain for, closed before
    /// any cluster: `NR` with details `filter_chain_not_found`, or (formats
    /// before `%RESPONSE_CODE_DETAILS%`) `NR` with code 0 and no cluster.
    /// On a sidecar this is the inbound listener refusing what it cannot
    /// take (plaintext at STRICT).
    pub fn no_filter_chain(&self) -> bool {
        self.upstream_cluster.is_none()
            && self.has_flag("NR")
            && match self.details.as_deref() {
                Some(d) => d.contains("filter_chain_not_found"),
                None => self.response_code == Some(0),
            }
    }

    /// Traffic the sidecar received from a caller ([`Self::direction`] inbound).
    pub fn is_inbound(&self) -> bool {
        self.direction() == Some(Direction::Inbound)
    }

    /// The part of the details before `{`: `upstream_reset_before_response_started`.
    pub fn details_kind(&self) -> Option<&str> {
        let d = self.details.as_deref()?;
        Some(d.split('{').next().unwrap_or(d))
    }

    /// The reset reason inside the details' braces: `connection_termination`,
    /// `remote_connection_failure`, `overflow`, …
    pub fn reset_reason(&self) -> Option<&str> {
        let d = self.details.as_deref()?;
        let start = d.find('{')? + 1;
        let inner = &d[start..];
        let inner = inner.strip_suffix('}').unwrap_or(inner);
        let end = inner.find(['|', ',', '}']).unwrap_or(inner.len());
        let r = &inner[..end];
        if r.is_empty() {
            None
        } else {
            Some(r)
        }
    }
}

/// Known BoringSSL reasons, for texts without the `OPENSSL_internal:` marker.
const TLS_REASONS: &[&str] = &[
    "WRONG_VERSION_NUMBER",
    "CERTIFICATE_VERIFY_FAILED",
    "HTTP_REQUEST",
    "TLSV1_ALERT_UNKNOWN_CA",
    "SSLV3_ALERT_CERTIFICATE_UNKNOWN",
    "SSLV3_ALERT_HANDSHAKE_FAILURE",
    "TLSV1_ALERT_PROTOCOL_VERSION",
    "TLSV1_CERTIFICATE_REQUIRED",
    "TLSV1_ALERT_CERTIFICATE_REQUIRED",
    "PEER_DID_NOT_RETURN_A_CERTIFICATE",
    "NO_SHARED_CIPHER",
    "NO_APPLICATION_PROTOCOL",
    "CERTIFICATE_EXPIRED",
    "UNSUPPORTED_PROTOCOL",
];

fn tls_reason_in(text: &str) -> Option<&str> {
    if let Some(i) = text.find("OPENSSL_internal:") {
        let rest = &text[i + "OPENSSL_internal:".len()..];
        // The reason runs to the next `:` (then `TLS_error_end`), `|`, `,`, `}` or quote.
        let end = rest
            .find(|c: char| matches!(c, ':' | '|' | ',' | '}' | '"') || c.is_whitespace())
            .unwrap_or(rest.len());
        let reason = &rest[..end];
        // BoringSSL's reasons are UPPER_CASE (`ssl/internal.h` reason codes);
        // a `system_library` error reads `Connection_reset_by_peer`: the
        // peer closed the connection, which says nothing about TLS itself.
        if !reason.is_empty()
            && reason
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
        {
            return Some(reason);
        }
        return None;
    }
    TLS_REASONS
        .iter()
        .find_map(|r| text.find(r).map(|i| &text[i..i + r.len()]))
}

/// The BoringSSL reason of a TLS failure (`WRONG_VERSION_NUMBER` = the peer
/// answered in plaintext; `CERTIFICATE_VERIFY_FAILED` = trust/SAN mismatch;
/// `HTTP_REQUEST` = plaintext HTTP reached a TLS listener), from
/// `%UPSTREAM_TRANSPORT_FAILURE_REASON%` or else `%RESPONSE_CODE_DETAILS%`.
/// Handles `TLS error: 268435703:SSL routines:OPENSSL_internal:WRONG_VERSION_NUMBER`
/// (Istio 1.8/1.9) and `TLS_error:|268435703:SSL_routines:OPENSSL_internal:WRONG_VERSION_NUMBER:TLS_error_end` (1.21+).
pub fn tls_failure_reason(entry: &AccessLogEntry) -> Option<&str> {
    entry
        .transport_failure_reason
        .as_deref()
        .and_then(tls_reason_in)
        .or_else(|| entry.details.as_deref().and_then(tls_reason_in))
        .or_else(|| entry.termination_details.as_deref().and_then(tls_reason_in))
}

/// Parse an istio-proxy log tail with Istio's built-in formats:
/// (access log entries, count of other non-empty lines skipped — Envoy's and
/// pilot-agent's own log lines).
pub fn parse_log(text: &str) -> (Vec<AccessLogEntry>, usize) {
    LogParser::istio_defaults().parse_log(text)
}

/// Like [`parse_log`], trying `formats` first (mesh `accessLogFormat`, or the
/// formats found on the proxy's listeners; the first [`MAX_CUSTOM_FORMATS`]).
/// Linear in the text whatever the formats and lines hold (see `matcher`).
pub fn parse_log_with(text: &str, formats: &[LogFormatSpec]) -> (Vec<AccessLogEntry>, usize) {
    LogParser::with_formats(formats).parse_log(text)
}

/// Parse a JSON access-log format as written in mesh `accessLogFormat`
/// (`{"code": "%RESPONSE_CODE%", …}`) or on a listener.
pub fn json_format_from_str(s: &str) -> Option<LogFormatSpec> {
    let v: Value = serde_json::from_str(s).ok()?;
    json_format_from_value(&v)
}

pub fn json_format_from_value(v: &Value) -> Option<LogFormatSpec> {
    let obj = v.as_object()?;
    let map: BTreeMap<String, String> = obj
        .iter()
        .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string())))
        .collect();
    if map.is_empty() {
        None
    } else {
        Some(LogFormatSpec::Json(map))
    }
}
