//! The access-log template engine: Envoy command operators (`%START_TIME%`,
//! `%REQ(:METHOD)%`, …) compiled into tokens, and the captured values set on
//! an entry (the matcher that reads a line back into fields is
//! [`super::matcher`]).
//!
//! Place in the flow: a private part of [`super`] (envoy/ parsers).
//!
//! Source: envoyproxy/envoy `docs/root/configuration/observability/access_log/usage.rst`
//! (command operators, `%%`, `:N` truncation).

use super::AccessLogEntry;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Field {
    StartTime,
    Method,
    Path,
    Protocol,
    ResponseCode,
    ResponseFlags,
    Details,
    TerminationDetails,
    TransportFailure,
    BytesReceived,
    BytesSent,
    Duration,
    UpstreamServiceTime,
    XForwardedFor,
    UserAgent,
    RequestId,
    Authority,
    UpstreamHost,
    UpstreamCluster,
    UpstreamLocalAddress,
    DownstreamLocalAddress,
    DownstreamRemoteAddress,
    RequestedServerName,
    RouteName,
    MixerStatus,
    Other,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Tok {
    Lit(String),
    Field(Field),
}

pub(super) fn field_for(op: &str) -> Field {
    // `op` is the operator without the surrounding %…% and without a `:N` length.
    let (name, arg) = match op.find('(') {
        Some(i) => (&op[..i], op[i + 1..].trim_end_matches(')')),
        None => (op, ""),
    };
    match (name, arg) {
        ("START_TIME", _) => Field::StartTime,
        ("REQ", ":METHOD") => Field::Method,
        ("REQ", a) if a.ends_with(":PATH") || a == "X-ENVOY-ORIGINAL-PATH?:PATH" => Field::Path,
        ("PROTOCOL", _) => Field::Protocol,
        ("RESPONSE_CODE", _) => Field::ResponseCode,
        ("RESPONSE_FLAGS", _) => Field::ResponseFlags,
        ("RESPONSE_CODE_DETAILS", _) => Field::Details,
        ("CONNECTION_TERMINATION_DETAILS", _) => Field::TerminationDetails,
        ("UPSTREAM_TRANSPORT_FAILURE_REASON", _) => Field::TransportFailure,
        ("BYTES_RECEIVED", _) => Field::BytesReceived,
        ("BYTES_SENT", _) => Field::BytesSent,
        ("DURATION", _) => Field::Duration,
        ("RESP", a) if a.eq_ignore_ascii_case("X-ENVOY-UPSTREAM-SERVICE-TIME") => {
            Field::UpstreamServiceTime
        }
        ("REQ", a) if a.eq_ignore_ascii_case("X-FORWARDED-FOR") => Field::XForwardedFor,
        ("REQ", a) if a.eq_ignore_ascii_case("USER-AGENT") => Field::UserAgent,
        ("REQ", a) if a.eq_ignore_ascii_case("X-REQUEST-ID") => Field::RequestId,
        ("REQ", a)
            if a == ":AUTHORITY" || a.eq_ignore_ascii_case("HOST") || a == ":AUTHORITY?HOST" =>
        {
            Field::Authority
        }
        ("UPSTREAM_HOST", _) => Field::UpstreamHost,
        ("UPSTREAM_CLUSTER", _) | ("UPSTREAM_CLUSTER_RAW", _) => Field::UpstreamCluster,
        ("UPSTREAM_LOCAL_ADDRESS", _) => Field::UpstreamLocalAddress,
        ("DOWNSTREAM_LOCAL_ADDRESS", _) => Field::DownstreamLocalAddress,
        ("DOWNSTREAM_REMOTE_ADDRESS", _) => Field::DownstreamRemoteAddress,
        ("REQUESTED_SERVER_NAME", _) => Field::RequestedServerName,
        ("ROUTE_NAME", _) => Field::RouteName,
        ("DYNAMIC_METADATA", a) if a.starts_with("istio.mixer") => Field::MixerStatus,
        _ => Field::Other,
    }
}

/// Compile a text format into tokens. Unknown operators become `Other` fields;
/// a stray `%` is literal.
pub(super) fn compile(format: &str) -> Vec<Tok> {
    let format = format.trim_end_matches(['\n', '\r']);
    let b = format.as_bytes();
    let mut toks = Vec::new();
    let mut lit = String::new();
    let mut i = 0;
    // The next `)` at or after an offset, remembered: a format of many `%X(`
    // without `)` would otherwise scan to its end once per `%` (O(n²); fuzz
    // target `access_log`, formats come from the proxy's listeners).
    let mut close: Option<(usize, Option<usize>)> = None;
    while i < b.len() {
        if b[i] == b'%' {
            if i + 1 < b.len() && b[i + 1] == b'%' {
                lit.push('%');
                i += 2;
                continue;
            }
            // operator name: [A-Z_0-9]+, optional (...) with nesting-free content, optional :N, then %
            let mut j = i + 1;
            while j < b.len()
                && (b[j].is_ascii_uppercase() || b[j].is_ascii_digit() || b[j] == b'_')
            {
                j += 1;
            }
            let name_end = j;
            if j < b.len() && b[j] == b'(' {
                let next = match close {
                    Some((from, found)) if from <= j && found.is_none_or(|k| k >= j) => found,
                    _ => format[j..].find(')').map(|k| j + k),
                };
                close = Some((j, next));
                j = next.map_or(b.len(), |k| k + 1);
            }
            let op_end = j;
            if j < b.len() && b[j] == b':' {
                let mut k = j + 1;
                while k < b.len() && b[k].is_ascii_digit() {
                    k += 1;
                }
                j = k;
            }
            if name_end > i + 1 && j < b.len() && b[j] == b'%' {
                if !lit.is_empty() {
                    toks.push(Tok::Lit(std::mem::take(&mut lit)));
                }
                toks.push(Tok::Field(field_for(&format[i + 1..op_end])));
                i = j + 1;
                continue;
            }
            lit.push('%');
            i += 1;
            continue;
        }
        // push one UTF-8 char
        let ch_len = format[i..].chars().next().map(char::len_utf8).unwrap_or(1);
        lit.push_str(&format[i..i + ch_len]);
        i += ch_len;
    }
    if !lit.is_empty() {
        toks.push(Tok::Lit(lit));
    }
    toks
}

fn opt(v: &str) -> Option<String> {
    if v == "-" || v.is_empty() {
        None
    } else {
        Some(v.to_string())
    }
}

pub(super) fn set_field(e: &mut AccessLogEntry, f: Field, v: &str) {
    match f {
        Field::StartTime => e.start_time = opt(v),
        Field::Method => e.method = opt(v),
        Field::Path => e.path = opt(v),
        Field::Protocol => e.protocol = opt(v),
        Field::ResponseCode => e.response_code = v.parse().ok(),
        Field::ResponseFlags => {
            e.response_flags = if v == "-" || v.is_empty() {
                Vec::new()
            } else {
                v.split(',')
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect()
            }
        }
        Field::Details => e.details = opt(v),
        Field::TerminationDetails => e.termination_details = opt(v),
        Field::TransportFailure => e.transport_failure_reason = opt(v),
        Field::BytesReceived => e.bytes_received = v.parse().ok(),
        Field::BytesSent => e.bytes_sent = v.parse().ok(),
        Field::Duration => e.duration_ms = v.parse().ok(),
        Field::UpstreamServiceTime => e.upstream_service_time = opt(v),
        Field::XForwardedFor => e.x_forwarded_for = opt(v),
        Field::UserAgent => e.user_agent = opt(v),
        Field::RequestId => e.request_id = opt(v),
        Field::Authority => e.authority = opt(v),
        Field::UpstreamHost => e.upstream_host = opt(v),
        Field::UpstreamCluster => e.upstream_cluster = opt(v),
        Field::UpstreamLocalAddress => e.upstream_local_address = opt(v),
        Field::DownstreamLocalAddress => e.downstream_local_address = opt(v),
        Field::DownstreamRemoteAddress => e.downstream_remote_address = opt(v),
        Field::RequestedServerName => e.requested_server_name = opt(v),
        Field::RouteName => e.route_name = opt(v),
        Field::MixerStatus => e.mixer_status = opt(v),
        Field::Other => {}
    }
}
