//! Istio's built-in access-log formats of every era and the parser that
//! tries them (after any formats found on the proxy) on each line.
//!
//! Place in the flow: a part of [`super`] (envoy/ parsers).

use std::collections::BTreeMap;

use serde_json::Value;

use super::matcher::{match_line, LineIndex};
use super::template::{compile, field_for, set_field, Field, Tok};
use super::{AccessLogEntry, LogFormatSpec};

/// Istio's built-in TEXT formats, newest first, with a name for each.
pub const ISTIO_TEXT_FORMATS: &[(&str, &str)] = &[
    (
        "istio-1.12+",
        "[%START_TIME%] \"%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%\" %RESPONSE_CODE% %RESPONSE_FLAGS% %RESPONSE_CODE_DETAILS% %CONNECTION_TERMINATION_DETAILS% \"%UPSTREAM_TRANSPORT_FAILURE_REASON%\" %BYTES_RECEIVED% %BYTES_SENT% %DURATION% %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% \"%REQ(X-FORWARDED-FOR)%\" \"%REQ(USER-AGENT)%\" \"%REQ(X-REQUEST-ID)%\" \"%REQ(:AUTHORITY)%\" \"%UPSTREAM_HOST%\" %UPSTREAM_CLUSTER_RAW% %UPSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_REMOTE_ADDRESS% %REQUESTED_SERVER_NAME% %ROUTE_NAME%\n",
    ),
    (
        "istio-1.8",
        "[%START_TIME%] \"%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%\" %RESPONSE_CODE% %RESPONSE_FLAGS% \"%UPSTREAM_TRANSPORT_FAILURE_REASON%\" %BYTES_RECEIVED% %BYTES_SENT% %DURATION% %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% \"%REQ(X-FORWARDED-FOR)%\" \"%REQ(USER-AGENT)%\" \"%REQ(X-REQUEST-ID)%\" \"%REQ(:AUTHORITY)%\" \"%UPSTREAM_HOST%\" %UPSTREAM_CLUSTER% %UPSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_REMOTE_ADDRESS% %REQUESTED_SERVER_NAME% %ROUTE_NAME%\n",
    ),
    (
        "istio-1.3",
        "[%START_TIME%] \"%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%\" %RESPONSE_CODE% %RESPONSE_FLAGS% \"%DYNAMIC_METADATA(istio.mixer:status)%\" \"%UPSTREAM_TRANSPORT_FAILURE_REASON%\" %BYTES_RECEIVED% %BYTES_SENT% %DURATION% %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% \"%REQ(X-FORWARDED-FOR)%\" \"%REQ(USER-AGENT)%\" \"%REQ(X-REQUEST-ID)%\" \"%REQ(:AUTHORITY)%\" \"%UPSTREAM_HOST%\" %UPSTREAM_CLUSTER% %UPSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_REMOTE_ADDRESS% %REQUESTED_SERVER_NAME% %ROUTE_NAME%\n",
    ),
    (
        "istio-1.2",
        "[%START_TIME%] \"%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%\" %RESPONSE_CODE% %RESPONSE_FLAGS% \"%DYNAMIC_METADATA(istio.mixer:status)%\" \"%UPSTREAM_TRANSPORT_FAILURE_REASON%\" %BYTES_RECEIVED% %BYTES_SENT% %DURATION% %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% \"%REQ(X-FORWARDED-FOR)%\" \"%REQ(USER-AGENT)%\" \"%REQ(X-REQUEST-ID)%\" \"%REQ(:AUTHORITY)%\" \"%UPSTREAM_HOST%\" %UPSTREAM_CLUSTER% %UPSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_REMOTE_ADDRESS% %REQUESTED_SERVER_NAME%\n",
    ),
    (
        "istio-1.1",
        "[%START_TIME%] \"%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%\" %RESPONSE_CODE% %RESPONSE_FLAGS% \"%DYNAMIC_METADATA(istio.mixer:status)%\" %BYTES_RECEIVED% %BYTES_SENT% %DURATION% %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% \"%REQ(X-FORWARDED-FOR)%\" \"%REQ(USER-AGENT)%\" \"%REQ(X-REQUEST-ID)%\" \"%REQ(:AUTHORITY)%\" \"%UPSTREAM_HOST%\" %UPSTREAM_CLUSTER% %UPSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_REMOTE_ADDRESS% %REQUESTED_SERVER_NAME%\n",
    ),
    (
        "istio-1.0-1.1-nomixer",
        "[%START_TIME%] \"%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%\" %RESPONSE_CODE% %RESPONSE_FLAGS% %BYTES_RECEIVED% %BYTES_SENT% %DURATION% %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% \"%REQ(X-FORWARDED-FOR)%\" \"%REQ(USER-AGENT)%\" \"%REQ(X-REQUEST-ID)%\" \"%REQ(:AUTHORITY)%\" \"%UPSTREAM_HOST%\" %UPSTREAM_CLUSTER% %UPSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_REMOTE_ADDRESS% %REQUESTED_SERVER_NAME%\n",
    ),
    (
        "istio-1.0-http",
        "[%START_TIME%] \"%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%%PROTOCOL%\" %RESPONSE_CODE% %RESPONSE_FLAGS% %BYTES_RECEIVED% %BYTES_SENT% %DURATION% %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% \"%REQ(X-FORWARDED-FOR)%\" \"%REQ(USER-AGENT)%\" \"%REQ(X-REQUEST-ID)%\" \"%REQ(:AUTHORITY)%\" \"%UPSTREAM_HOST%\" %UPSTREAM_CLUSTER% %UPSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_REMOTE_ADDRESS%\n",
    ),
    (
        "istio-1.0-tcp",
        "[%START_TIME%] %RESPONSE_FLAGS% %BYTES_RECEIVED% %BYTES_SENT% %DURATION% \"%UPSTREAM_HOST%\" %UPSTREAM_CLUSTER% %UPSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_REMOTE_ADDRESS%\n",
    ),
    (
        "envoy-default",
        "[%START_TIME%] \"%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%\" %RESPONSE_CODE% %RESPONSE_FLAGS% %BYTES_RECEIVED% %BYTES_SENT% %DURATION% %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% \"%REQ(X-FORWARDED-FOR)%\" \"%REQ(USER-AGENT)%\" \"%REQ(X-REQUEST-ID)%\" \"%REQ(:AUTHORITY)%\" \"%UPSTREAM_HOST%\"\n",
    ),
];

/// The most custom formats a parser tries: a sidecar's listeners use one or
/// two (mesh `accessLogFormat`, Telemetry), and the work per line grows
/// with their number (they come from the proxy; fuzz target `access_log`).
pub const MAX_CUSTOM_FORMATS: usize = 8;

/// A compiled set of formats to try on each line.
pub struct LogParser {
    text: Vec<(String, Vec<Tok>)>,
    json_maps: Vec<BTreeMap<String, Field>>,
}

/// Istio's JSON keys (`EnvoyJSONLogFormatIstio`) and the fields they hold.
fn istio_json_keys() -> BTreeMap<String, Field> {
    [
        ("start_time", Field::StartTime),
        ("method", Field::Method),
        ("path", Field::Path),
        ("protocol", Field::Protocol),
        ("response_code", Field::ResponseCode),
        ("response_flags", Field::ResponseFlags),
        ("response_code_details", Field::Details),
        ("connection_termination_details", Field::TerminationDetails),
        ("upstream_transport_failure_reason", Field::TransportFailure),
        ("bytes_received", Field::BytesReceived),
        ("bytes_sent", Field::BytesSent),
        ("duration", Field::Duration),
        ("upstream_service_time", Field::UpstreamServiceTime),
        ("x_forwarded_for", Field::XForwardedFor),
        ("user_agent", Field::UserAgent),
        ("request_id", Field::RequestId),
        ("authority", Field::Authority),
        ("upstream_host", Field::UpstreamHost),
        ("upstream_cluster", Field::UpstreamCluster),
        ("upstream_local_address", Field::UpstreamLocalAddress),
        ("downstream_local_address", Field::DownstreamLocalAddress),
        ("downstream_remote_address", Field::DownstreamRemoteAddress),
        ("requested_server_name", Field::RequestedServerName),
        ("route_name", Field::RouteName),
        ("istio_policy_status", Field::MixerStatus),
    ]
    .into_iter()
    .map(|(k, f)| (k.to_string(), f))
    .collect()
}

impl LogParser {
    /// Istio's built-in formats (TEXT of every era, and JSON).
    pub fn istio_defaults() -> LogParser {
        Self::with_formats(&[])
    }

    /// `extra` formats (e.g. mesh `accessLogFormat`, or those read from the
    /// listeners) are tried before Istio's built-in ones; only the first
    /// [`MAX_CUSTOM_FORMATS`] (every format is tried on every line).
    pub fn with_formats(extra: &[LogFormatSpec]) -> LogParser {
        let mut text = Vec::new();
        let mut json_maps = Vec::new();
        for (i, spec) in extra.iter().take(MAX_CUSTOM_FORMATS).enumerate() {
            match spec {
                LogFormatSpec::Text(t) => text.push((format!("custom-{i}"), compile(t))),
                LogFormatSpec::Json(m) => json_maps.push(
                    m.iter()
                        .map(|(k, op)| {
                            let op = op.trim().trim_matches('%');
                            let op = op
                                .split_once(':')
                                .filter(|(_, n)| n.bytes().all(|c| c.is_ascii_digit()))
                                .map(|(o, _)| o)
                                .unwrap_or(op);
                            (k.clone(), field_for(op))
                        })
                        .collect(),
                ),
            }
        }
        for (name, f) in ISTIO_TEXT_FORMATS {
            text.push((name.to_string(), compile(f)));
        }
        json_maps.push(istio_json_keys());
        LogParser { text, json_maps }
    }

    /// Parse one line; `None` if it is not an access log line (Envoy's or the
    /// agent's own logs, blank lines, garbage).
    pub fn parse_line(&self, line: &str) -> Option<AccessLogEntry> {
        let line = line.trim_end_matches(['\n', '\r']);
        let trimmed = line.trim_start();
        if trimmed.starts_with('{') {
            return self.parse_json(trimmed, line);
        }
        if !trimmed.starts_with('[') {
            // Every built-in text format starts with `[%START_TIME%]`; custom ones may not.
            return self.parse_text(trimmed, line, true);
        }
        self.parse_text(trimmed, line, false)
    }

    fn parse_text(&self, body: &str, raw: &str, custom_only: bool) -> Option<AccessLogEntry> {
        // Built when a template gets past the pre-check, then shared by the rest.
        let mut index: Option<LineIndex<'_>> = None;
        for (name, toks) in &self.text {
            if custom_only && !name.starts_with("custom-") {
                continue;
            }
            // Cheap pre-check on the leading literal.
            if let Some(Tok::Lit(first)) = toks.first() {
                if !body.starts_with(first.as_str()) {
                    continue;
                }
            }
            if index.is_none() {
                index = Some(LineIndex::new(body)?);
            }
            let caps = index.as_ref().and_then(|ix| match_line(toks, ix));
            if let Some(caps) = caps {
                let mut e = AccessLogEntry {
                    format: name.clone(),
                    raw: raw.to_string(),
                    ..AccessLogEntry::default()
                };
                for (f, v) in caps {
                    set_field(&mut e, f, v);
                }
                return Some(e);
            }
        }
        None
    }

    fn parse_json(&self, body: &str, raw: &str) -> Option<AccessLogEntry> {
        let v: Value = serde_json::from_str(body).ok()?;
        let obj = v.as_object()?;
        for (i, map) in self.json_maps.iter().enumerate() {
            let known = obj
                .keys()
                .filter(|k| map.get(k.as_str()).is_some_and(|f| *f != Field::Other))
                .count();
            // Needs a response code or flags key and a couple of other known keys.
            let has_core = obj.keys().any(|k| {
                matches!(
                    map.get(k.as_str()),
                    Some(Field::ResponseCode)
                        | Some(Field::ResponseFlags)
                        | Some(Field::UpstreamCluster)
                )
            });
            if known < 3 || !has_core {
                continue;
            }
            let mut e = AccessLogEntry {
                format: if i + 1 == self.json_maps.len() {
                    "json".into()
                } else {
                    format!("custom-json-{i}")
                },
                raw: raw.to_string(),
                ..AccessLogEntry::default()
            };
            for (k, val) in obj {
                let Some(f) = map.get(k.as_str()) else {
                    continue;
                };
                let s = match val {
                    Value::Null => continue,
                    Value::String(s) => s.clone(),
                    Value::Number(n) => n.to_string(),
                    Value::Bool(b) => b.to_string(),
                    other => other.to_string(),
                };
                set_field(&mut e, *f, &s);
            }
            return Some(e);
        }
        None
    }

    /// Parse a whole log tail: (entries, number of non-empty lines skipped).
    pub fn parse_log(&self, text: &str) -> (Vec<AccessLogEntry>, usize) {
        let mut out = Vec::new();
        let mut skipped = 0;
        for line in text.lines() {
            if line.trim().is_empty() {
                continue;
            }
            match self.parse_line(line) {
                Some(e) => out.push(e),
                None => skipped += 1,
            }
        }
        (out, skipped)
    }
}
