//! Envoy `/stats` (text format), and what of it kubectl-mesh503 keeps.
//!
//! Place in the flow: a pure helper (envoy/). collect reads `/stats` with
//! [`kept_stats_filter`] and [`keep_stats`]; model parses the kept text with
//! [`parse_stats`]; which inclusion list a sidecar runs is
//! `istio::stats_inclusion`'s question ([`StatsInclusion`] is the list).
//!
//! Lines are `name: value`. Counters and gauges are integers; histograms print
//! `P0(nan,0) P25(nan,0) …` or `No recorded values`; newer Envoy also prints
//! text readouts (`name: "text"`). Only integers are counters here.
//!
//! **Most per-cluster counters are normally absent in Istio.** Istio's
//! bootstrap (istio/istio `pkg/bootstrap/config.go`,
//! `requiredEnvoyStatsMatcherInclusionPrefixes` / `…Suffixes` / `…Regexes`)
//! sets an Envoy stats inclusion list of only the prefixes `cluster_manager`,
//! `listener_manager`, `server`, `cluster.xds-grpc`, `wasm`, the suffixes
//! `rbac.allowed`, `rbac.denied`, `shadow_allowed`, `shadow_denied`,
//! `downstream_cx_active`, and the regex `vhost\..*\.route\..*`. So
//! `cluster.outbound|…upstream_rq_pending_overflow` and `listener.…no_filter_chain_match`
//! are **not emitted** unless the pod annotation
//! `sidecar.istio.io/statsInclusionPrefixes` (or `…Suffixes`, `…Regexps`, or
//! mesh `defaultConfig.proxyStatsMatcher`) adds them. Use [`Stats::present`]
//! and [`StatsInclusion`] to tell "the counter is 0" from "the counter is not
//! collected"; `/clusters` per-host counters are always available instead.

use std::collections::BTreeMap;

/// One stat value.
#[derive(Debug, Clone, PartialEq)]
pub enum StatValue {
    /// Counter or gauge.
    Int(u64),
    /// Negative gauges are rare but exist.
    Signed(i64),
    /// Histogram summary (`P0(…) …`) or `No recorded values`, kept verbatim.
    Histogram(String),
    /// Text readout or anything else, verbatim.
    Text(String),
}

/// Parsed `/stats` output.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Stats {
    pub values: BTreeMap<String, StatValue>,
    /// Lines that were not `name: value`, with 1-based line numbers.
    pub unparsed: Vec<(usize, String)>,
}

/// Parse `/stats` text. Never fails: odd lines are kept in `unparsed`.
pub fn parse_stats(text: &str) -> Stats {
    let mut out = Stats::default();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() {
            continue;
        }
        let Some((name, value)) = line
            .split_once(": ")
            .or_else(|| line.strip_suffix(':').map(|n| (n, "")))
        else {
            out.unparsed.push((i + 1, line.to_string()));
            continue;
        };
        let name = name.trim();
        if name.is_empty() {
            out.unparsed.push((i + 1, line.to_string()));
            continue;
        }
        let value = value.trim();
        let v = if let Ok(n) = value.parse::<u64>() {
            StatValue::Int(n)
        } else if let Ok(n) = value.parse::<i64>() {
            StatValue::Signed(n)
        } else if value == "No recorded values" || (value.starts_with('P') && value.contains('(')) {
            StatValue::Histogram(value.to_string())
        } else {
            StatValue::Text(value.to_string())
        };
        out.values.insert(name.to_string(), v);
    }
    out
}

impl Stats {
    /// Integer value of a counter/gauge (`None` if absent or not an integer).
    pub fn get(&self, name: &str) -> Option<u64> {
        match self.values.get(name)? {
            StatValue::Int(n) => Some(*n),
            StatValue::Signed(n) => u64::try_from(*n).ok(),
            _ => None,
        }
    }

    /// Sum of integer stats whose name starts with `prefix` and ends with `suffix`
    /// (`sum_matching("cluster.outbound|8000||httpbin.foo.svc.cluster.local.", "upstream_rq_pending_overflow")`).
    /// `None` when no such stat exists at all — see [`Stats::present`].
    pub fn sum_matching(&self, prefix: &str, suffix: &str) -> Option<u64> {
        let mut found = false;
        let mut sum: u64 = 0;
        for (k, v) in self.values.range(prefix.to_string()..) {
            if !k.starts_with(prefix) {
                break;
            }
            if !k.ends_with(suffix) || k.len() < prefix.len() + suffix.len() {
                continue;
            }
            if let StatValue::Int(n) = v {
                found = true;
                sum = sum.saturating_add(*n);
            }
        }
        found.then_some(sum)
    }

    /// Is any stat with this prefix present? `false` usually means Istio's
    /// stats inclusion list dropped it, not that it is zero.
    pub fn present(&self, prefix: &str) -> bool {
        self.values
            .range(prefix.to_string()..)
            .next()
            .is_some_and(|(k, _)| k.starts_with(prefix))
    }

    /// All integer stats with the prefix.
    pub fn with_prefix<'a>(&'a self, prefix: &'a str) -> impl Iterator<Item = (&'a str, u64)> + 'a {
        self.values
            .range(prefix.to_string()..)
            .take_while(move |(k, _)| k.starts_with(prefix))
            .filter_map(|(k, v)| match v {
                StatValue::Int(n) => Some((k.as_str(), *n)),
                _ => None,
            })
    }
}

/// A stats inclusion list: which stat names a sidecar emits.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StatsInclusion {
    pub prefixes: Vec<String>,
    pub suffixes: Vec<String>,
    pub regexes: Vec<String>,
    /// `true` when there is no inclusion list at all (plain Envoy: everything is emitted).
    pub include_all: bool,
}

impl StatsInclusion {
    /// Istio's built-in list (pkg/bootstrap/config.go), before any annotation or
    /// `proxyStatsMatcher` additions.
    pub fn istio_default() -> StatsInclusion {
        StatsInclusion {
            prefixes: [
                "cluster_manager",
                "listener_manager",
                "server",
                "cluster.xds-grpc",
                "wasm",
            ]
            .map(String::from)
            .to_vec(),
            suffixes: [
                "rbac.allowed",
                "rbac.denied",
                "shadow_allowed",
                "shadow_denied",
                "downstream_cx_active",
            ]
            .map(String::from)
            .to_vec(),
            regexes: vec![r"vhost\..*\.route\..*".to_string()],
            include_all: false,
        }
    }

    /// Add user inclusions (`sidecar.istio.io/statsInclusionPrefixes` is a comma list).
    pub fn with_extra(
        mut self,
        prefixes: &[String],
        suffixes: &[String],
        regexes: &[String],
    ) -> StatsInclusion {
        self.prefixes.extend(prefixes.iter().cloned());
        self.suffixes.extend(suffixes.iter().cloned());
        self.regexes.extend(regexes.iter().cloned());
        self
    }

    /// Would a stat of this name be emitted? `None` when only a regex this
    /// module cannot evaluate could decide.
    pub fn includes(&self, name: &str) -> Option<bool> {
        if self.include_all
            || self.prefixes.iter().any(|p| name.starts_with(p.as_str()))
            || self.suffixes.iter().any(|s| name.ends_with(s.as_str()))
        {
            return Some(true);
        }
        let mut unknown = false;
        for r in &self.regexes {
            match simple_regex_full_match(r, name) {
                Some(true) => return Some(true),
                Some(false) => {}
                None => unknown = true,
            }
        }
        if unknown {
            None
        } else {
            Some(false)
        }
    }
}

/// Full-match a tiny regex subset (literals, `\x` escapes, `.`, and the
/// quantifiers `*`, `+`, `?` on a single atom) — enough for Istio's
/// `vhost\..*\.route\..*` and typical `statsInclusionRegexps`. `None` for
/// anything else (classes, groups, alternation, anchors inside), and when
/// regex × name exceed [`REGEX_MAX_WORK`] (O(n·m) time, O(m) memory).
pub fn simple_regex_full_match(re: &str, text: &str) -> Option<bool> {
    #[derive(Clone, Copy)]
    enum Atom {
        Any,
        Ch(char),
    }
    let mut atoms: Vec<(Atom, char)> = Vec::new(); // (atom, quantifier or ' ')
    let re = re.strip_prefix('^').unwrap_or(re);
    let re = re
        .strip_suffix('$')
        .filter(|r| !r.ends_with('\\'))
        .unwrap_or(re);
    let mut it = re.chars().peekable();
    while let Some(c) = it.next() {
        let atom = match c {
            '\\' => Atom::Ch(it.next()?),
            '.' => Atom::Any,
            '[' | ']' | '(' | ')' | '|' | '{' | '}' | '^' | '$' | '*' | '+' | '?' => return None,
            c => Atom::Ch(c),
        };
        let q = match it.peek() {
            Some('*') | Some('+') | Some('?') => it.next().unwrap_or(' '),
            _ => ' ',
        };
        atoms.push((atom, q));
    }
    let chars: Vec<char> = text.chars().collect();
    let n = atoms.len();
    let m = chars.len();
    // O(n·m) time: beyond this much work the answer is "cannot evaluate"
    // (the regex and the name both come from the proxy; real ones are a few
    // dozen characters each).
    if n.saturating_mul(m) > REGEX_MAX_WORK {
        return None;
    }
    // next[j]: atoms[i+1..] match chars[j..]; cur[j]: atoms[i..] match chars[j..].
    // Two rows, not the n×m table (fuzz target `stats`: O(n·m) memory).
    let mut next = vec![false; m + 1];
    next[m] = true;
    let mut cur = vec![false; m + 1];
    for &(atom, q) in atoms.iter().rev() {
        let matches = |c: char| match atom {
            Atom::Any => true,
            Atom::Ch(x) => x == c,
        };
        for j in (0..=m).rev() {
            let first = j < m && matches(chars[j]);
            cur[j] = match q {
                '*' => next[j] || (first && cur[j + 1]),
                '+' => first && (next[j + 1] || cur[j + 1]),
                '?' => next[j] || (first && next[j + 1]),
                _ => first && next[j + 1],
            };
        }
        std::mem::swap(&mut cur, &mut next);
    }
    Some(next[0])
}

/// The stats kubectl-mesh503 keeps from a sidecar's `/stats` (snapshot v2
/// filters at the source with Envoy's `/stats?filter=`): per-cluster
/// (`cluster.<name>.<stat>`) and per-listener (`listener.<addr>.<stat>`)
/// stat names by their suffix. What each tells (Envoy
/// `docs/root/configuration/upstream/cluster_manager/cluster_stats.rst`,
/// `…/listeners/stats.rst`):
/// - `no_filter_chain_match`: a connection matched no filter chain (plaintext
///   to a STRICT inbound listener);
/// - `upstream_cx_destroy_remote_with_active_rq`: the upstream closed
///   connections with requests in flight (503 UC);
/// - `upstream_rq_pending_overflow`, `upstream_cx_overflow`,
///   `upstream_cx_pool_overflow`, `upstream_rq_retry_overflow`: circuit
///   breakers tripped (503 UO);
/// - `upstream_cx_connect_fail`, `ssl.connection_error`, `ssl.fail_verify_*`:
///   connections or TLS handshakes that failed (503 UF);
/// - `upstream_cx_none_healthy`, `membership_*`: no healthy host (503 UH);
/// - `outlier_detection.ejections_*`: hosts ejected by outlier detection;
/// - `upstream_rq_503`, `upstream_rq_5xx`: the 503s themselves per cluster.
///
/// Istio's default stats inclusion drops most of these (see the module doc):
/// they are kept when the pod's inclusion list lets them through.
pub const KEPT_STATS: &[&str] = &[
    "no_filter_chain_match",
    "upstream_cx_destroy_remote_with_active_rq",
    "upstream_rq_pending_overflow",
    "upstream_cx_overflow",
    "upstream_cx_pool_overflow",
    "upstream_rq_retry_overflow",
    "upstream_cx_connect_fail",
    "ssl.connection_error",
    "ssl.fail_verify_san",
    "ssl.fail_verify_no_cert",
    "ssl.fail_verify_error",
    "upstream_cx_none_healthy",
    "membership_healthy",
    "membership_degraded",
    "membership_excluded",
    "membership_total",
    "outlier_detection.ejections_active",
    "outlier_detection.ejections_enforced_total",
    "outlier_detection.ejections_overflow",
    "upstream_rq_503",
    "upstream_rq_5xx",
];

/// Istio's standard metrics, kept from `/stats` and read from
/// `/stats/prometheus`, in every spelling they have: istio-proxy's stats
/// plugin names them `istio_requests_total` (Prometheus: the same); Envoy's
/// `envoy.access_loggers.stats` with prefix `istio` gives
/// `istio.requests_total` (Prometheus: `envoy_istio_requests_total`). A
/// name matches when it contains one of these.
pub const ISTIO_METRICS: &[&str] = &[
    "istio_requests_total",
    "istio.requests_total",
    "istio_tcp_connections_opened_total",
    "istio.tcp_connections_opened_total",
    "istio_tcp_connections_closed_total",
    "istio.tcp_connections_closed_total",
];

/// Is a `/stats` name one of the kept ones: a [`KEPT_STATS`] suffix after a
/// `.`, or one of Istio's standard metrics ([`ISTIO_METRICS`]) anywhere?
pub fn is_kept_stat(name: &str) -> bool {
    KEPT_STATS.iter().any(|s| {
        name.len() > s.len()
            && name.ends_with(s)
            && name.as_bytes()[name.len() - s.len() - 1] == b'.'
    }) || ISTIO_METRICS.iter().any(|m| name.contains(m))
}

/// `/stats` text reduced to the kept stats (the source filter's twin, for
/// Envoys that ignore `filter=`). Lines are `name: value`.
pub fn keep_stats(text: &str) -> String {
    text.lines()
        .filter(|l| {
            l.split_once(": ")
                .is_some_and(|(name, _)| is_kept_stat(name.trim()))
        })
        .map(|l| format!("{l}\n"))
        .collect()
}

/// A literal inside a regular expression (RE2 and ECMAScript alike).
pub(crate) fn regex_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if !c.is_ascii_alphanumeric() && c != '_' {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// [`ISTIO_METRICS`] as regular-expression alternatives.
pub(crate) fn istio_metric_alternatives() -> String {
    ISTIO_METRICS
        .iter()
        .map(|m| regex_escape(m))
        .collect::<Vec<_>>()
        .join("|")
}

/// The `/stats?filter=` regular expression that keeps what [`is_kept_stat`]
/// keeps: [`KEPT_STATS`] as suffixes, [`ISTIO_METRICS`] anywhere. RE2 and
/// ECMAScript alike (Envoy used `std::regex` before RE2), partial match as
/// Envoy's admin does (envoyproxy/envoy `docs/root/operations/admin.rst`,
/// `/stats?filter=regex`).
pub fn kept_stats_filter() -> String {
    let suffixes: Vec<String> = KEPT_STATS.iter().map(|s| regex_escape(s)).collect();
    format!(
        "\\.(?:{})$|{}",
        suffixes.join("|"),
        istio_metric_alternatives()
    )
}

/// The most regex atoms × name characters [`simple_regex_full_match`] evaluates.
pub const REGEX_MAX_WORK: usize = 1 << 22;

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_stats_filter_matches_what_is_kept() {
        let re = regex::Regex::new(&kept_stats_filter()).unwrap();
        for (name, kept) in [
            (
                "cluster.outbound|8000||httpbin.foo.svc.cluster.local.upstream_rq_pending_overflow",
                true,
            ),
            ("listener.10.0.0.4_8080.no_filter_chain_match", true),
            (
                "cluster.outbound|80||a.b.svc.cluster.local.ssl.connection_error",
                true,
            ),
            ("cluster.x.outlier_detection.ejections_active", true),
            ("reporter=.=destination;.;istio_requests_total", true),
            (
                "istio.requests_total.response_code.503.response_flags.UF",
                true,
            ),
            ("cluster.x.upstream_rq_total", false),
            ("server.live", false),
            ("cluster.x.upstream_rq_pending_overflowx", false),
        ] {
            assert_eq!(re.is_match(name), kept, "{name}");
            assert_eq!(is_kept_stat(name), kept, "{name}");
        }
        let stats = "server.live: 1\ncluster.x.upstream_cx_overflow: 3\nlistener.a.no_filter_chain_match: 0\n";
        assert_eq!(
            keep_stats(stats),
            "cluster.x.upstream_cx_overflow: 3\nlistener.a.no_filter_chain_match: 0\n"
        );
    }

    const SAMPLE: &str = "cluster.outbound|8000||httpbin.default.svc.cluster.local.circuit_breakers.default.rq_pending_open: 0
cluster.outbound|8000||httpbin.default.svc.cluster.local.circuit_breakers.high.rq_pending_open: 0
cluster.outbound|8000||httpbin.default.svc.cluster.local.upstream_rq_pending_active: 0
cluster.outbound|8000||httpbin.default.svc.cluster.local.upstream_rq_pending_failure_eject: 0
cluster.outbound|8000||httpbin.default.svc.cluster.local.upstream_rq_pending_overflow: 21
cluster.outbound|8000||httpbin.default.svc.cluster.local.upstream_rq_pending_total: 29
cluster.outbound|8000|v1|httpbin.default.svc.cluster.local.upstream_rq_pending_overflow: 3
cluster.outbound|8000||httpbin.default.svc.cluster.local.upstream_cx_connect_ms: P0(nan,0) P25(nan,0) P50(nan,0) P75(nan,0) P90(nan,1.05) P95(nan,1.05) P99(nan,1.05) P99.5(nan,1.05) P99.9(nan,1.05) P100(nan,1.05)
cluster_manager.cds.update_duration: No recorded values
server.version_text: \"1.40.0\"
server.live: 1
garbage line without separator
";

    #[test]
    fn parses_counters_and_histograms() {
        let s = parse_stats(SAMPLE);
        let c = "cluster.outbound|8000||httpbin.default.svc.cluster.local.";
        assert_eq!(s.get(&format!("{c}upstream_rq_pending_overflow")), Some(21));
        assert!(matches!(
            s.values.get(&format!("{c}upstream_cx_connect_ms")),
            Some(StatValue::Histogram(_))
        ));
        assert!(
            matches!(s.values.get("cluster_manager.cds.update_duration"), Some(StatValue::Histogram(h)) if h == "No recorded values")
        );
        assert_eq!(s.get(&format!("{c}upstream_cx_connect_ms")), None);
        assert!(matches!(
            s.values.get("server.version_text"),
            Some(StatValue::Text(_))
        ));
        assert_eq!(s.unparsed.len(), 1);
        assert_eq!(s.unparsed[0].0, 12);
    }

    #[test]
    fn sums_and_presence() {
        let s = parse_stats(SAMPLE);
        assert_eq!(
            s.sum_matching("cluster.outbound|8000|", "upstream_rq_pending_overflow"),
            Some(24)
        );
        assert_eq!(
            s.sum_matching("cluster.outbound|8000||", "upstream_rq_pending_overflow"),
            Some(21)
        );
        assert_eq!(
            s.sum_matching("cluster.outbound|9080|", "upstream_rq_pending_overflow"),
            None
        );
        assert!(s.present("cluster.outbound|8000|"));
        assert!(!s.present("listener."));
        assert_eq!(s.with_prefix("server.").count(), 1);
        // a zero is a zero, not absence
        assert_eq!(
            s.sum_matching("cluster.outbound|8000||", "upstream_rq_pending_active"),
            Some(0)
        );
    }

    #[test]
    fn istio_inclusion_list() {
        let inc = StatsInclusion::istio_default();
        assert_eq!(
            inc.includes(
                "cluster.outbound|8000||a.b.svc.cluster.local.upstream_rq_pending_overflow"
            ),
            Some(false)
        );
        assert_eq!(
            inc.includes("cluster.xds-grpc.upstream_cx_total"),
            Some(true)
        );
        assert_eq!(
            inc.includes("http.inbound_0.0.0.0_8080.rbac.denied"),
            Some(true)
        );
        assert_eq!(
            inc.includes("vhost.httpbin.route.default.upstream_rq_503"),
            Some(true)
        );
        assert_eq!(
            inc.includes("listener.0.0.0.0_15006.downstream_cx_active"),
            Some(true)
        );
        let more = inc.with_extra(&["cluster.outbound".into()], &[], &[]);
        assert_eq!(
            more.includes("cluster.outbound|8000||a.upstream_rq_pending_overflow"),
            Some(true)
        );
        let odd = StatsInclusion {
            regexes: vec!["(a|b)".into()],
            ..StatsInclusion::default()
        };
        assert_eq!(odd.includes("zzz"), None);
    }

    #[test]
    fn tiny_regex() {
        assert_eq!(
            simple_regex_full_match(r"vhost\..*\.route\..*", "vhost.a.route.b"),
            Some(true)
        );
        assert_eq!(
            simple_regex_full_match(r"vhost\..*\.route\..*", "xvhost.a.route.b"),
            Some(false)
        );
        assert_eq!(
            simple_regex_full_match("http.*", "http.inbound"),
            Some(true)
        );
        assert_eq!(simple_regex_full_match("a+b?c", "aaac"), Some(true));
        assert_eq!(simple_regex_full_match("a+b?c", "bc"), Some(false));
        assert_eq!(simple_regex_full_match("[a-z]+", "abc"), None);
    }

    /// Fuzz target `stats` (an inclusion regex and a stat name both come from
    /// the proxy): the full n×m table of a 100,000-atom regex against a
    /// 100,000-character name was 10 GB. Two rows now, and past
    /// `REGEX_MAX_WORK` the answer is "cannot evaluate".
    #[test]
    fn tiny_regex_work_is_bounded() {
        let big = "a".repeat(100_000);
        assert_eq!(simple_regex_full_match(&big, &big), None);
        let re = "a?".repeat(1_000) + &"a".repeat(1_000);
        assert_eq!(simple_regex_full_match(&re, &"a".repeat(2_000)), Some(true));
        assert_eq!(
            simple_regex_full_match(&re, &"a".repeat(2_001)),
            Some(false)
        );
        assert_eq!(simple_regex_full_match(&re, &"a".repeat(999)), Some(false));
    }

    proptest! {
        #[test]
        fn never_panics(s in "\\PC{0,300}", re in "[a-z.*+?\\\\]{0,12}") {
            let st = parse_stats(&s);
            let _ = st.sum_matching("a", "b");
            let _ = simple_regex_full_match(&re, &s);
        }
    }
}
