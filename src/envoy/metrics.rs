//! Istio's standard metrics, read from a proxy's stats in every spelling they
//! appear in: `istio_requests_total` and `istio_tcp_connections_opened_total`
//! / `_closed_total`, as typed rows (reporter, source and destination
//! workload, service, response code and flags, security policy, value).
//!
//! Place in the flow: collect keeps these lines of `/stats` (or
//! `/stats/prometheus`) in the snapshot; model parses them here; analyze
//! rules read them when access logs are off (the default install profile
//! since Istio 1.24 does not log; the metrics still count every response).
//!
//! Spellings ([`Spelling`]):
//! - **Prometheus, istio-proxy** (`:15090/stats/prometheus`, `:15000/stats/prometheus`):
//!   `istio_requests_total{reporter="source",source_workload="sleep",…} 5`.
//!   istio-proxy registers the custom stat namespace `istiocustom`, which
//!   Envoy's Prometheus output strips, so there is no `envoy_` prefix.
//! - **Prometheus, upstream Envoy**: `envoy_istio_requests_total{…} 1`,
//!   (counters made by `envoy.access_loggers.stats` under prefix `istio`;
//!   Envoy prefixes every non-custom-namespace metric with `envoy_`; seen with
//!   Envoy 1.40, see the project's reference notes §9), or
//!   `envoy_istiocustom_istio_requests_total{…} 1` when the counters live in
//!   a stat namespace `istiocustom` that Envoy does not strip (the lab's
//!   Envoy 1.40, tests/lab/README.md).
//! - **`/stats`, istio-proxy (native stats filter)**:
//!   `istiocustom.istio_requests_total.reporter.destination.source_workload.webapp.…: 2`,
//!   the name followed by `tag.value` pairs; values may contain dots
//!   (`catalog.istioinaction.svc.cluster.local`) and may be empty (Envoy then
//!   drops the value, `…grpc_response_status.response_flags.-…`).
//! - **`/stats`, istio-proxy with the Wasm/NullVM stats plugin (≈1.5–1.11)**:
//!   `reporter=.=destination;.;source_workload=.=productpage-v1;.;…;.;istio_requests_total: 5`
//!   (istio/istio `tools/packaging/common/envoy_bootstrap.json`: stats tags
//!   `(<tag>=\.=(.*?);\.;)`, inclusion prefix `reporter=`).
//! - **`/stats`, upstream Envoy's stats access logger**:
//!   `istio.requests_total.response_code.503.response_flags.UF.reporter.source: 1`.
//!
//! Label names: istio/proxy `testdata/metric/*.yaml.tmpl` (`reporter`,
//! `source_workload`, `source_canonical_service`, `source_canonical_revision`,
//! `source_workload_namespace`, `source_principal`, `source_app`,
//! `source_version`, `source_cluster`, `destination_workload`,
//! `destination_workload_namespace`, `destination_principal`,
//! `destination_app`, `destination_version`, `destination_service`,
//! `destination_canonical_service`, `destination_canonical_revision`,
//! `destination_service_name`, `destination_service_namespace`,
//! `destination_cluster`, `request_protocol`, `response_code`,
//! `grpc_response_status`, `response_flags`, `connection_security_policy`)
//! and istio.io `docs/reference/config/metrics`.
//!
//! Not confirmed from sources (istio/proxy's filter source was not at hand):
//! the exact tag order in the dotted `/stats` forms (this parser does not
//! depend on it) and whether the TCP counters use the same `istiocustom.`
//! prefix in `/stats` (assumed, as for the HTTP counters). In the dotted
//! forms a label this parser does not know (a custom label from the
//! Telemetry API) cannot be told from a value and is read as part of the
//! previous label's value.

use std::collections::BTreeMap;

/// One of Istio's standard counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum IstioMetric {
    /// `istio_requests_total` (HTTP/gRPC requests).
    RequestsTotal,
    /// `istio_tcp_connections_opened_total`.
    TcpConnectionsOpened,
    /// `istio_tcp_connections_closed_total`.
    TcpConnectionsClosed,
}

impl IstioMetric {
    const ALL: [IstioMetric; 3] = [
        IstioMetric::RequestsTotal,
        IstioMetric::TcpConnectionsOpened,
        IstioMetric::TcpConnectionsClosed,
    ];

    /// The name without the `istio_` prefix (`requests_total`, …).
    pub fn short_name(self) -> &'static str {
        match self {
            IstioMetric::RequestsTotal => "requests_total",
            IstioMetric::TcpConnectionsOpened => "tcp_connections_opened_total",
            IstioMetric::TcpConnectionsClosed => "tcp_connections_closed_total",
        }
    }

    /// `istio_requests_total`, …
    pub fn name(self) -> String {
        format!("istio_{}", self.short_name())
    }

    fn by(pred: impl Fn(IstioMetric) -> bool) -> Option<IstioMetric> {
        IstioMetric::ALL.into_iter().find(|m| pred(*m))
    }
}

/// How a row was spelled (see the module doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Spelling {
    /// `istio_requests_total{…} N` (istio-proxy).
    Prometheus,
    /// `envoy_istio_requests_total{…} N` (upstream Envoy).
    EnvoyPrometheus,
    /// `istiocustom.istio_requests_total.tag.value…: N` (istio-proxy `/stats`).
    StatsTagged,
    /// `tag=.=value;.;…;.;istio_requests_total: N` (Wasm-era istio-proxy `/stats`).
    StatsWasm,
    /// `istio.requests_total.tag.value…: N` (upstream Envoy `/stats`).
    EnvoyStats,
}

/// `reporter`: which side's proxy counted.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Reporter {
    /// The client sidecar.
    Source,
    /// The server sidecar.
    Destination,
    /// An ambient waypoint.
    Waypoint,
    Other(String),
}

/// One counter with its labels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricRow {
    pub metric: IstioMetric,
    pub spelling: Spelling,
    pub reporter: Option<Reporter>,
    pub source_workload: Option<String>,
    pub source_workload_namespace: Option<String>,
    pub source_principal: Option<String>,
    pub destination_workload: Option<String>,
    pub destination_service: Option<String>,
    pub destination_service_namespace: Option<String>,
    /// `response_code` (HTTP code; `0` when no response, absent for TCP).
    pub response_code: Option<u16>,
    /// `response_flags` split on `,`; empty for `-`.
    pub response_flags: Vec<String>,
    /// `mutual_tls`, `none`, `unknown`.
    pub connection_security_policy: Option<String>,
    /// Every label as read.
    pub labels: BTreeMap<String, String>,
    pub value: u64,
}

impl MetricRow {
    pub fn has_flag(&self, flag: &str) -> bool {
        self.response_flags.iter().any(|f| f == flag)
    }
}

/// The standard metrics found in a stats text.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IstioMetrics {
    pub rows: Vec<MetricRow>,
    /// Lines naming a standard metric that could not be read (1-based line
    /// number, line); other lines (other stats, comments) are ignored.
    pub unreadable: Vec<(usize, String)>,
}

impl IstioMetrics {
    /// The rows of one metric.
    pub fn of(&self, metric: IstioMetric) -> impl Iterator<Item = &MetricRow> {
        self.rows.iter().filter(move |r| r.metric == metric)
    }

    /// Sum of the values of the rows `pred` keeps.
    pub fn sum(&self, pred: impl Fn(&MetricRow) -> bool) -> u64 {
        self.rows
            .iter()
            .filter(|r| pred(r))
            .fold(0u64, |a, r| a.saturating_add(r.value))
    }
}

/// The labels this parser knows (Istio's standard set), longest first where
/// one is a prefix of another.
const KNOWN_LABELS: &[&str] = &[
    "reporter",
    "source_workload_namespace",
    "source_workload",
    "source_canonical_service",
    "source_canonical_revision",
    "source_principal",
    "source_app",
    "source_version",
    "source_cluster",
    "destination_workload_namespace",
    "destination_workload",
    "destination_principal",
    "destination_app",
    "destination_version",
    "destination_service_namespace",
    "destination_service_name",
    "destination_service",
    "destination_canonical_service",
    "destination_canonical_revision",
    "destination_cluster",
    "request_protocol",
    "response_code",
    "grpc_response_status",
    "response_flags",
    "connection_security_policy",
];

/// The known label at the start of `s`, followed by `.` or the end.
fn label_at(s: &str) -> Option<&'static str> {
    KNOWN_LABELS.iter().copied().find(|k| {
        s.strip_prefix(k)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('.'))
    })
}

/// `.tag.value.tag.value…` (values may hold dots or be empty) → labels.
fn dotted_labels(mut s: &str) -> Option<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    while !s.is_empty() {
        let body = s.strip_prefix('.')?;
        let key = label_at(body)?;
        let after = &body[key.len()..];
        // The value runs to the next `.<known label>`; none right away = empty value.
        let end = after
            .match_indices('.')
            .map(|(i, _)| i)
            .find(|&i| label_at(&after[i + 1..]).is_some())
            .unwrap_or(after.len());
        let value = if end == 0 { "" } else { &after[1..end] };
        out.insert(key.to_string(), value.to_string());
        s = &after[end..];
    }
    Some(out)
}

/// `tag=.=value;.;…;.;name` → (name, labels).
fn wasm_labels(name: &str) -> Option<(&str, BTreeMap<String, String>)> {
    let parts: Vec<&str> = name.split(";.;").collect();
    let (metric, tags) = parts.split_last()?;
    let mut out = BTreeMap::new();
    for t in tags {
        let (k, v) = t.split_once("=.=")?;
        out.insert(k.to_string(), v.to_string());
    }
    Some((metric, out))
}

/// Prometheus labels `{k="v",…}` (with `\\`, `\"`, `\n` escapes) and the
/// text after the closing brace.
fn prometheus_labels(s: &str) -> Option<(BTreeMap<String, String>, &str)> {
    let mut out = BTreeMap::new();
    let mut rest = s.strip_prefix('{')?;
    loop {
        rest = rest.trim_start_matches([' ', ',']);
        if let Some(r) = rest.strip_prefix('}') {
            return Some((out, r));
        }
        let (key, r) = rest.split_once('=')?;
        let mut chars = r.strip_prefix('"')?.char_indices();
        let mut value = String::new();
        let end = loop {
            let (i, c) = chars.next()?;
            match c {
                '"' => break i,
                '\\' => match chars.next()?.1 {
                    'n' => value.push('\n'),
                    other => value.push(other),
                },
                c => value.push(c),
            }
        };
        out.insert(key.trim().to_string(), value);
        rest = &r[1 + end + 1..];
    }
}

/// A counter value: an unsigned integer (Prometheus may print `5` or `5.0`).
fn counter_value(v: &str) -> Option<u64> {
    let v = v.trim();
    v.parse::<u64>().ok().or_else(|| {
        let f: f64 = v.parse().ok()?;
        (f.is_finite() && f >= 0.0 && f.fract() == 0.0 && f < 1.8e19).then_some(f as u64)
    })
}

/// What a line names: the metric, its spelling, and the label part.
fn classify(line: &str) -> Option<(IstioMetric, Spelling, &str)> {
    if let Some(brace) = line.find(['{', ' ']) {
        let name = &line[..brace];
        if let Some(m) = IstioMetric::by(|m| name == m.name()) {
            return Some((m, Spelling::Prometheus, &line[brace..]));
        }
        // `envoy_istio_…` (stats access logger under prefix `istio`) or
        // `envoy_istiocustom_istio_…` (the custom stat namespace kept: the
        // lab's Envoy 1.40, tests/lab/README.md "Istio's standard metrics").
        let upstream = name
            .strip_prefix("envoy_")
            .map(|n| n.strip_prefix("istiocustom_").unwrap_or(n));
        if let Some(m) = IstioMetric::by(|m| upstream == Some(&m.name())) {
            return Some((m, Spelling::EnvoyPrometheus, &line[brace..]));
        }
    }
    let (name, _) = line.rsplit_once(": ")?;
    for (prefix, spelling) in [
        ("istiocustom.istio_", Spelling::StatsTagged),
        ("istio.", Spelling::EnvoyStats),
    ] {
        if let Some(rest) = name.strip_prefix(prefix) {
            if let Some(m) = IstioMetric::by(|m| {
                rest.strip_prefix(m.short_name())
                    .is_some_and(|r| r.is_empty() || r.starts_with('.'))
            }) {
                return Some((m, spelling, &rest[m.short_name().len()..]));
            }
        }
    }
    let last = name.rsplit(";.;").next()?;
    let m = IstioMetric::by(|m| last == m.name())?;
    name.contains(";.;")
        .then_some((m, Spelling::StatsWasm, name))
}

/// Read one classified line into a row.
fn read_row(
    line: &str,
    metric: IstioMetric,
    spelling: Spelling,
    labels_part: &str,
) -> Option<MetricRow> {
    let (labels, value) = match spelling {
        Spelling::Prometheus | Spelling::EnvoyPrometheus => {
            let (labels, rest) = if labels_part.starts_with('{') {
                prometheus_labels(labels_part)?
            } else {
                (BTreeMap::new(), labels_part)
            };
            // `value [timestamp]`
            (labels, rest.split_whitespace().next()?)
        }
        Spelling::StatsTagged | Spelling::EnvoyStats => {
            (dotted_labels(labels_part)?, line.rsplit_once(": ")?.1)
        }
        Spelling::StatsWasm => (wasm_labels(labels_part)?.1, line.rsplit_once(": ")?.1),
    };
    let value = counter_value(value)?;
    let get = |k: &str| labels.get(k).filter(|v| !v.is_empty()).cloned();
    Some(MetricRow {
        metric,
        spelling,
        reporter: get("reporter").map(|r| match r.as_str() {
            "source" => Reporter::Source,
            "destination" => Reporter::Destination,
            "waypoint" => Reporter::Waypoint,
            _ => Reporter::Other(r),
        }),
        source_workload: get("source_workload"),
        source_workload_namespace: get("source_workload_namespace"),
        source_principal: get("source_principal"),
        destination_workload: get("destination_workload"),
        destination_service: get("destination_service"),
        destination_service_namespace: get("destination_service_namespace"),
        response_code: get("response_code").and_then(|c| c.parse().ok()),
        response_flags: get("response_flags")
            .filter(|f| f != "-")
            .map(|f| {
                f.split(',')
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default(),
        connection_security_policy: get("connection_security_policy"),
        labels,
        value,
    })
}

/// Read Istio's standard metrics from `/stats` or `/stats/prometheus` text
/// (any spelling, mixed is fine). Never fails; lines naming a standard metric
/// that cannot be read are listed in `unreadable`.
pub fn parse_istio_metrics(text: &str) -> IstioMetrics {
    let mut out = IstioMetrics::default();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((metric, spelling, labels_part)) = classify(line) else {
            continue;
        };
        match read_row(line, metric, spelling, labels_part) {
            Some(row) => out.rows.push(row),
            None => out.unreadable.push((i + 1, line.to_string())),
        }
    }
    out
}

/// Prometheus text reduced to Istio's standard metrics: `# TYPE`/`# HELP`
/// lines and samples whose metric name contains one of
/// [`crate::envoy::stats::ISTIO_METRICS`] (in Prometheus spelling).
pub fn keep_istio_metrics(text: &str) -> String {
    let metric = |l: &str| -> Option<String> {
        let l = l.trim();
        let name = if let Some(rest) = l.strip_prefix('#') {
            rest.split_whitespace().nth(1)?
        } else {
            l.split(['{', ' ']).next()?
        };
        Some(name.to_string())
    };
    text.lines()
        .filter(|l| {
            metric(l).is_some_and(|m| {
                crate::envoy::stats::ISTIO_METRICS
                    .iter()
                    .any(|x| m.contains(&x.replace('.', "_")))
            })
        })
        .map(|l| format!("{l}\n"))
        .collect()
}

/// The `/stats/prometheus?filter=` regular expression: Istio's standard metrics.
pub fn istio_metrics_filter() -> String {
    crate::envoy::stats::istio_metric_alternatives()
}

#[cfg(test)]
mod tests;
