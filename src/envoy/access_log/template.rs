//! The access-log template engine: Envoy command operators (`%START_TIME%`,
//! `%REQ(:METHOD)%`, …) compiled into tokens, and a bounded backtracking
//! matcher that reads a line back into fields.
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
                match format[j..].find(')') {
                    Some(k) => j += k + 1,
                    None => j = b.len(),
                }
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

fn is_dash_or_digits(v: &str) -> bool {
    v == "-" || (!v.is_empty() && v.bytes().all(|c| c.is_ascii_digit()))
}

/// Per-field plausibility, so that the right era's template wins.
fn plausible(f: Field, v: &str, delimited: bool) -> bool {
    if !delimited && (v.contains(char::is_whitespace) || v.contains('"')) {
        return false;
    }
    if delimited && v.contains('"') {
        return false;
    }
    match f {
        Field::ResponseCode | Field::BytesReceived | Field::BytesSent | Field::Duration => {
            is_dash_or_digits(v)
        }
        Field::Protocol => v == "-" || v.starts_with("HTTP/"),
        Field::ResponseFlags => {
            v == "-"
                || (!v.is_empty()
                    && v.bytes()
                        .all(|c| c.is_ascii_alphanumeric() || c == b',' || c == b'_'))
        }
        Field::StartTime => !v.is_empty() && !v.contains(']'),
        Field::Method => {
            v == "-"
                || (!v.is_empty()
                    && v.bytes()
                        .all(|c| c.is_ascii_uppercase() || c == b'-' || c == b'_'))
        }
        _ => true,
    }
}

struct Matcher<'a> {
    toks: &'a [Tok],
    line: &'a str,
    budget: usize,
    caps: Vec<(Field, &'a str)>,
}

impl<'a> Matcher<'a> {
    fn run(&mut self, ti: usize, pos: usize) -> bool {
        if self.budget == 0 {
            return false;
        }
        self.budget -= 1;
        let Some(tok) = self.toks.get(ti) else {
            return pos == self.line.len();
        };
        match tok {
            Tok::Lit(s) => {
                self.line[pos..].starts_with(s.as_str()) && self.run(ti + 1, pos + s.len())
            }
            Tok::Field(f) => {
                let prev_lit = match ti.checked_sub(1).and_then(|k| self.toks.get(k)) {
                    Some(Tok::Lit(s)) => s.chars().last(),
                    _ => None,
                };
                let next = self.toks.get(ti + 1);
                let next_first = match next {
                    Some(Tok::Lit(s)) => s.chars().next(),
                    _ => None,
                };
                let delimited = matches!(
                    (prev_lit, next_first),
                    (Some('"'), Some('"')) | (Some('['), Some(']'))
                );
                let rest = &self.line[pos..];
                // A value never contains a quote, nor whitespace outside quotes/brackets,
                // so candidates end at or before the first such character: this bounds
                // the work per field to the field's own length.
                let limit = rest
                    .find(|c: char| c == '"' || (!delimited && c.is_whitespace()))
                    .unwrap_or(rest.len());
                let ends: Vec<usize> = match next {
                    None => {
                        if limit == rest.len() {
                            vec![rest.len()]
                        } else {
                            vec![]
                        }
                    }
                    Some(Tok::Lit(s)) => rest
                        .match_indices(s.as_str())
                        .map(|(k, _)| k)
                        .take_while(|k| *k <= limit)
                        .collect(),
                    // adjacent operators (Istio 1.0's "%PATH%%PROTOCOL%"): try every split
                    Some(Tok::Field(_)) => rest
                        .char_indices()
                        .map(|(k, _)| k)
                        .chain(std::iter::once(rest.len()))
                        .take_while(|k| *k <= limit)
                        .collect(),
                };
                for end in ends {
                    let v = &rest[..end];
                    if !plausible(*f, v, delimited) {
                        continue;
                    }
                    self.caps.push((*f, v));
                    if self.run(ti + 1, pos + end) {
                        return true;
                    }
                    self.caps.pop();
                    if self.budget == 0 {
                        return false;
                    }
                }
                false
            }
        }
    }
}

/// Match `line` against a compiled template: the captured fields, or `None`
/// when it does not fit (or the work budget runs out: a bad line never costs
/// more than a fixed number of steps).
pub(super) fn match_line<'a>(toks: &'a [Tok], line: &'a str) -> Option<Vec<(Field, &'a str)>> {
    let mut m = Matcher {
        toks,
        line,
        budget: 20_000,
        caps: Vec::new(),
    };
    m.run(0, 0).then_some(m.caps)
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
