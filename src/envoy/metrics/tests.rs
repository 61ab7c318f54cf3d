//! Unit tests of the standard-metrics parser: every spelling (Prometheus
//! from istio-proxy and upstream Envoy, istio-proxy's tagged and Wasm-era
//! `/stats`, Envoy's stats logger), TCP counters, junk lines and near misses.
//! Lines are written by hand in the shapes the sources show (see the module doc).
//!
//! Place in the flow: test-only (envoy/ parsers).

use super::*;

const PROM_503: &str = r#"istio_requests_total{response_code="503",reporter="source",source_workload="sleep",source_canonical_service="sleep",source_canonical_revision="latest",source_workload_namespace="foo",source_principal="spiffe://cluster.local/ns/foo/sa/sleep",source_app="sleep",source_version="unknown",source_cluster="Kubernetes",destination_workload="httpbin",destination_workload_namespace="foo",destination_principal="unknown",destination_app="httpbin",destination_version="v1",destination_service="httpbin.foo.svc.cluster.local",destination_canonical_service="httpbin",destination_canonical_revision="v1",destination_service_name="httpbin",destination_service_namespace="foo",destination_cluster="Kubernetes",request_protocol="http",response_flags="UC",grpc_response_status="",connection_security_policy="unknown"} 7"#;

const TAGGED_200: &str = "istiocustom.istio_requests_total.reporter.destination.source_workload.webapp.source_canonical_service.webapp.source_canonical_revision.latest.source_workload_namespace.istioinaction.source_principal.spiffe://cluster.local/ns/istioinaction/sa/webapp.source_app.webapp.source_version.unknown.source_cluster.Kubernetes.destination_workload.catalog.destination_workload_namespace.istioinaction.destination_principal.spiffe://cluster.local/ns/istioinaction/sa/catalog.destination_app.catalog.destination_version.v1.destination_service.catalog.istioinaction.svc.cluster.local.destination_canonical_service.catalog.destination_canonical_revision.v1.destination_service_name.catalog.destination_service_namespace.istioinaction.destination_cluster.Kubernetes.request_protocol.http.response_code.200.grpc_response_status.response_flags.-.connection_security_policy.mutual_tls: 2";

const WASM_200: &str = "reporter=.=destination;.;source_workload=.=istio-ingressgateway;.;source_workload_namespace=.=istio-system;.;source_principal=.=spiffe://cluster.local/ns/istio-system/sa/istio-ingressgateway-service-account;.;destination_workload=.=webapp;.;destination_service=.=webapp.istioinaction.svc.cluster.local;.;destination_service_namespace=.=istioinaction;.;request_protocol=.=http;.;response_flags=.=-;.;connection_security_policy=.=mutual_tls;.;response_code=.=200;.;grpc_response_status=.=;.;istio_requests_total: 5";

#[test]
fn istio_proxy_prometheus() {
    let m = parse_istio_metrics(&format!(
        "# TYPE istio_requests_total counter\n{PROM_503}\n"
    ));
    assert!(m.unreadable.is_empty(), "{:?}", m.unreadable);
    let r = &m.rows[0];
    assert_eq!(
        (r.metric, r.spelling),
        (IstioMetric::RequestsTotal, Spelling::Prometheus)
    );
    assert_eq!(r.reporter, Some(Reporter::Source));
    assert_eq!(r.source_workload.as_deref(), Some("sleep"));
    assert_eq!(r.source_workload_namespace.as_deref(), Some("foo"));
    assert_eq!(
        r.source_principal.as_deref(),
        Some("spiffe://cluster.local/ns/foo/sa/sleep")
    );
    assert_eq!(r.destination_workload.as_deref(), Some("httpbin"));
    assert_eq!(
        r.destination_service.as_deref(),
        Some("httpbin.foo.svc.cluster.local")
    );
    assert_eq!(r.destination_service_namespace.as_deref(), Some("foo"));
    assert_eq!(r.response_code, Some(503));
    assert_eq!(r.response_flags, vec!["UC"]);
    assert!(r.has_flag("UC"));
    assert_eq!(r.connection_security_policy.as_deref(), Some("unknown"));
    assert_eq!(
        r.labels.get("grpc_response_status").map(String::as_str),
        Some("")
    );
    assert_eq!(r.value, 7);
}

#[test]
fn istio_proxy_stats_tagged() {
    let m = parse_istio_metrics(TAGGED_200);
    assert!(m.unreadable.is_empty(), "{:?}", m.unreadable);
    let r = &m.rows[0];
    assert_eq!(r.spelling, Spelling::StatsTagged);
    assert_eq!(r.reporter, Some(Reporter::Destination));
    assert_eq!(
        r.source_principal.as_deref(),
        Some("spiffe://cluster.local/ns/istioinaction/sa/webapp")
    );
    assert_eq!(
        r.destination_service.as_deref(),
        Some("catalog.istioinaction.svc.cluster.local"),
        "values may hold dots"
    );
    assert_eq!(
        r.labels.get("destination_service_name").map(String::as_str),
        Some("catalog"),
        "longest label name wins"
    );
    assert_eq!(
        r.labels.get("grpc_response_status").map(String::as_str),
        Some(""),
        "an empty value is dropped by Envoy"
    );
    assert!(r.response_flags.is_empty(), "`-` is no flag");
    assert_eq!(r.response_code, Some(200));
    assert_eq!(r.connection_security_policy.as_deref(), Some("mutual_tls"));
    assert_eq!(r.value, 2);
}

#[test]
fn wasm_era_stats() {
    let m = parse_istio_metrics(WASM_200);
    let r = &m.rows[0];
    assert_eq!(r.spelling, Spelling::StatsWasm);
    assert_eq!(r.source_workload.as_deref(), Some("istio-ingressgateway"));
    assert_eq!(
        r.destination_service_namespace.as_deref(),
        Some("istioinaction")
    );
    assert_eq!(r.response_code, Some(200));
    assert_eq!(r.value, 5);
}

#[test]
fn upstream_envoy_spellings() {
    // Envoy 1.40's stats access logger, prefix `istio`, tags in config order.
    let text = "istio.requests_total.response_code.503.response_flags.UF.reporter.source: 1\n\
                envoy_istio_requests_total{response_code=\"503\",response_flags=\"UF\",reporter=\"source\"} 1\n\
                envoy_istiocustom_istio_requests_total{response_code=\"503\",response_flags=\"UF\",reporter=\"source\"} 1\n";
    let m = parse_istio_metrics(text);
    assert_eq!(m.rows.len(), 3, "{:?}", m.unreadable);
    for r in &m.rows {
        assert_eq!(r.response_code, Some(503));
        assert_eq!(r.response_flags, vec!["UF"]);
        assert_eq!(r.reporter, Some(Reporter::Source));
        assert_eq!(r.value, 1);
    }
    assert_eq!(m.rows[0].spelling, Spelling::EnvoyStats);
    assert_eq!(m.rows[1].spelling, Spelling::EnvoyPrometheus);
    // With the custom stat namespace kept in the name (the lab's Envoy 1.40).
    let lab = "envoy_istiocustom_istio_requests_total{reporter=\"destination\",source_workload=\"checkout\",response_code=\"503\"} 3\n";
    let m = parse_istio_metrics(lab);
    assert_eq!(m.rows.len(), 1, "{:?}", m.unreadable);
    assert_eq!(m.rows[0].spelling, Spelling::EnvoyPrometheus);
    assert_eq!(m.rows[0].source_workload.as_deref(), Some("checkout"));
    // Near miss: another namespace's counter is not Istio's.
    assert!(
        parse_istio_metrics("envoy_other_istio_requests_total{} 1\n")
            .rows
            .is_empty()
    );
}

#[test]
fn tcp_counters() {
    let text = "istio_tcp_connections_opened_total{reporter=\"destination\",source_workload=\"sleep\",destination_service=\"db.foo.svc.cluster.local\",response_flags=\"-\",connection_security_policy=\"mutual_tls\"} 10\n\
                istio_tcp_connections_closed_total{reporter=\"destination\",response_flags=\"UF,URX\"} 3.0\n\
                istiocustom.istio_tcp_connections_opened_total.reporter.source.destination_service.db.foo.svc.cluster.local: 4\n";
    let m = parse_istio_metrics(text);
    assert!(m.unreadable.is_empty(), "{:?}", m.unreadable);
    assert_eq!(m.of(IstioMetric::TcpConnectionsOpened).count(), 2);
    let closed = m.of(IstioMetric::TcpConnectionsClosed).next().unwrap();
    assert_eq!(closed.value, 3);
    assert_eq!(closed.response_flags, vec!["UF", "URX"]);
    assert_eq!(closed.response_code, None);
    assert_eq!(m.sum(|r| r.metric == IstioMetric::TcpConnectionsOpened), 14);
}

#[test]
fn junk_and_near_misses() {
    let text = format!(
        "cluster.outbound|80||a.b.svc.cluster.local.upstream_rq_503: 4\n\
         istiocustom.istio_request_duration_milliseconds.reporter.source: P0(nan,1) P25(nan,2)\n\
         istio_request_bytes_bucket{{reporter=\"source\",le=\"1\"}} 3\n\
         istio_requests_totalx{{reporter=\"source\"}} 1\n\
         istio_requests_total{{reporter=\"source\" 5\n\
         istio_requests_total{{reporter=\"source\"}} many\n\
         istiocustom.istio_requests_total.custom_label.x: 1\n\
         istio_requests_total{{reporter=\"a\\\"b\"}} 2 1700000000000\n\
         \n{WASM_200}\n"
    );
    let m = parse_istio_metrics(&text);
    assert_eq!(m.rows.len(), 2, "{:?}", m.rows);
    assert_eq!(
        m.rows[0].reporter,
        Some(Reporter::Other("a\"b".into())),
        "escapes and a timestamp"
    );
    assert_eq!(m.rows[0].value, 2);
    let bad: Vec<usize> = m.unreadable.iter().map(|(n, _)| *n).collect();
    assert_eq!(
        bad,
        vec![5, 6, 7],
        "an unclosed brace, a non-number, an unknown label"
    );
    assert_eq!(parse_istio_metrics(""), IstioMetrics::default());
}

proptest::proptest! {
    #[test]
    fn never_panics(s in "\\PC{0,300}") {
        let _ = parse_istio_metrics(&s);
    }

    #[test]
    fn never_panics_on_near_lines(cut in 0usize..700, junk in "[ \"{}=,.;:a-z0-9-]{0,12}") {
        for base in [PROM_503, TAGGED_200, WASM_200] {
            let mut line = base.to_string();
            let cut = cut.min(line.len());
            while !line.is_char_boundary(cut) { line.pop(); }
            line.truncate(cut);
            line.push_str(&junk);
            let _ = parse_istio_metrics(&line);
        }
    }
}

#[test]
fn only_the_standard_metrics_are_kept() {
    let prom = "# TYPE envoy_server_live gauge\nenvoy_server_live{} 1\n# TYPE envoy_istio_requests_total counter\n\
                envoy_istio_requests_total{response_code=\"503\",response_flags=\"UF\"} 1\n\
                istio_tcp_connections_opened_total{reporter=\"source\"} 4\n";
    let kept = keep_istio_metrics(prom);
    assert!(!kept.contains("server_live"), "{kept}");
    assert!(
        kept.contains("# TYPE envoy_istio_requests_total counter"),
        "{kept}"
    );
    assert!(
        kept.contains("response_flags=\"UF\"} 1")
            && kept.contains("opened_total{reporter=\"source\"} 4"),
        "{kept}"
    );
    let re = regex::Regex::new(&istio_metrics_filter()).unwrap();
    assert!(re.is_match("istio_requests_total") && !re.is_match("envoy_server_live"));
}
