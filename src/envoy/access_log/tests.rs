//! Unit tests of the access-log parser on lines of every Istio era (shapes
//! as real Envoy prints them) and of caller discovery from a server log.
//!
//! Place in the flow: test-only (envoy/ parsers).

use super::template::{compile, Field, Tok};
use super::*;
use proptest::prelude::*;

// Shapes as real Envoy prints them (the first one captured from Envoy 1.40 with
// Istio's current format).
const MODERN_UC: &str = r#"[2026-11-24T20:11:24.105Z] "GET /get HTTP/1.1" 503 UC upstream_reset_before_response_started{connection_termination} - "-" 0 95 1 - "-" "curl/7.88.1" "b00039de-0c14-4802-98cb-b63999e4c6f7" "localhost:18080" "127.0.0.1:18082" outbound|8000||httpbin.foo.svc.cluster.local 127.0.0.1:42688 127.0.0.1:18080 127.0.0.1:33348 - default"#;
const MODERN_UF: &str = r#"[2026-11-24T20:11:24.125Z] "GET /get HTTP/1.1" 503 UF upstream_reset_before_response_started{remote_connection_failure|delayed_connect_error:_Connection_refused} - "delayed_connect_error:_Connection_refused" 0 98 3 - "-" "curl/7.88.1" "a500b154" "localhost:18080" "127.0.0.1:18081" outbound|8000||httpbin.foo.svc.cluster.local - 127.0.0.1:18080 127.0.0.1:33358 - default"#;
const MODERN_TLS: &str = r#"[2024-05-01T10:00:00.000Z] "GET /headers HTTP/1.1" 503 UF,URX upstream_reset_before_response_started{remote_connection_failure|TLS_error:|268435703:SSL_routines:OPENSSL_internal:WRONG_VERSION_NUMBER:TLS_error_end} - "TLS_error:|268435703:SSL_routines:OPENSSL_internal:WRONG_VERSION_NUMBER:TLS_error_end" 0 190 12 - "-" "curl/8.5.0" "7f2c" "httpbin.foo:8000" "10.244.0.12:8080" outbound|8000||httpbin.foo.svc.cluster.local - 10.96.12.7:8000 10.244.0.9:51234 - default"#;
const SERVER_NR: &str = r#"[2024-05-01T10:00:00.000Z] "- - -" 0 NR filter_chain_not_found - "-" 0 0 0 - "-" "-" "-" "-" "-" - - 10.244.0.12:8080 10.244.0.9:40000 - -"#;
const ISTIO_18: &str = r#"[2021-01-01T00:00:00.000Z] "GET /status/200 HTTP/1.1" 503 UF,URX "TLS error: 268435703:SSL routines:OPENSSL_internal:WRONG_VERSION_NUMBER" 0 91 3 - "-" "curl/7.69.1" "abc" "httpbin:8000" "10.1.1.1:80" outbound|8000||httpbin.default.svc.cluster.local - 10.96.0.5:8000 10.1.1.2:40000 - default"#;
const ISTIO_13: &str = r#"[2019-10-01T00:00:00.000Z] "GET /productpage HTTP/1.1" 503 UC "-" "-" 0 95 1 - "-" "curl/7.60.0" "req-1" "productpage:9080" "10.52.2.21:9080" outbound|9080||productpage.default.svc.cluster.local - 10.0.0.7:9080 10.52.1.5:51234 - default"#;
const ISTIO_11: &str = r#"[2019-04-02T19:54:31.789Z] "GET /details/0 HTTP/1.1" 503 UC "-" 0 57 1 - "-" "python-requests/2.18.4" "9d1c" "details:9080" "10.52.0.7:9080" outbound|9080||details.default.svc.cluster.local - 10.0.13.152:9080 10.52.2.21:41180 -"#;
const ISTIO_10_NOMIXER: &str = r#"[2018-09-01T00:00:00.000Z] "GET /ip HTTP/1.1" 503 UC 0 57 0 - "-" "curl/7.35.0" "b2e" "httpbin:8000" "172.17.0.8:80" outbound|8000||httpbin.default.svc.cluster.local - 10.0.0.1:8000 172.17.0.9:50000 -"#;
const ISTIO_106: &str = r#"[2018-09-01T00:00:00.000Z] "GET /ipHTTP/1.1" 503 UC 0 57 0 - "-" "curl/7.35.0" "b2e" "httpbin:8000" "172.17.0.8:80" outbound|8000||httpbin.default.svc.cluster.local - 10.0.0.1:8000 172.17.0.9:50000"#;
const ISTIO_106_TCP: &str = r#"[2018-09-01T00:00:00.000Z] UF 0 0 1 "-" outbound|3306||mysql.default.svc.cluster.local - 10.0.0.1:3306 172.17.0.9:50000"#;

#[test]
fn modern_line_with_braced_details() {
    let (v, skipped) = parse_log(MODERN_UF);
    assert_eq!(skipped, 0);
    let e = &v[0];
    assert_eq!(e.format, "istio-1.12+");
    assert_eq!(e.response_code, Some(503));
    assert_eq!(e.response_flags, vec!["UF"]);
    assert_eq!(
        e.details.as_deref(),
        Some("upstream_reset_before_response_started{remote_connection_failure|delayed_connect_error:_Connection_refused}")
    );
    assert_eq!(e.reset_reason(), Some("remote_connection_failure"));
    assert_eq!(
        e.details_kind(),
        Some("upstream_reset_before_response_started")
    );
    assert_eq!(e.termination_details, None);
    assert_eq!(
        e.transport_failure_reason.as_deref(),
        Some("delayed_connect_error:_Connection_refused")
    );
    assert_eq!(e.upstream_host.as_deref(), Some("127.0.0.1:18081"));
    assert_eq!(
        e.upstream_cluster.as_deref(),
        Some("outbound|8000||httpbin.foo.svc.cluster.local")
    );
    assert_eq!(e.upstream_local_address, None);
    assert_eq!(
        e.downstream_local_address.as_deref(),
        Some("127.0.0.1:18080")
    );
    assert_eq!(e.route_name.as_deref(), Some("default"));
    assert_eq!(e.method.as_deref(), Some("GET"));
    assert_eq!(e.path.as_deref(), Some("/get"));
    assert_eq!(e.user_agent.as_deref(), Some("curl/7.88.1"));
    assert_eq!(e.bytes_sent, Some(98));
    assert_eq!(tls_failure_reason(e), None);
    assert_eq!(e.raw, MODERN_UF);
}

#[test]
fn tls_reasons_old_and_new() {
    let (v, _) = parse_log(&format!("{MODERN_TLS}\n{ISTIO_18}\n"));
    assert_eq!(v.len(), 2);
    assert_eq!(tls_failure_reason(&v[0]), Some("WRONG_VERSION_NUMBER"));
    assert_eq!(v[0].response_flags, vec!["UF", "URX"]);
    assert_eq!(v[1].format, "istio-1.8");
    assert_eq!(tls_failure_reason(&v[1]), Some("WRONG_VERSION_NUMBER"));
    let e = AccessLogEntry {
        details: Some("upstream_reset_before_response_started{remote_connection_failure,TLS_error:_268435581:SSL_routines:OPENSSL_internal:CERTIFICATE_VERIFY_FAILED}".into()),
        ..AccessLogEntry::default()
    };
    assert_eq!(tls_failure_reason(&e), Some("CERTIFICATE_VERIFY_FAILED"));
    // Captured from Envoy 1.40: TLS to a peer that resets the connection.
    let e = AccessLogEntry {
        details: Some("upstream_reset_before_response_started{remote_connection_failure|TLS_error:|33554536:system_library:OPENSSL_internal:Connection_reset_by_peer:TLS_error_end}".into()),
        ..AccessLogEntry::default()
    };
    assert_eq!(
        tls_failure_reason(&e),
        None,
        "a reset by the peer is not a TLS failure"
    );
    let e = AccessLogEntry {
        termination_details: Some("HTTP_REQUEST".into()),
        ..AccessLogEntry::default()
    };
    assert_eq!(tls_failure_reason(&e), Some("HTTP_REQUEST"));
}

#[test]
fn tcp_server_side_filter_chain_not_found() {
    let (v, _) = parse_log(SERVER_NR);
    let e = &v[0];
    assert!(e.is_tcp());
    assert_eq!(e.response_code, Some(0));
    assert!(e.has_flag("NR"));
    assert_eq!(e.details.as_deref(), Some("filter_chain_not_found"));
    assert_eq!(e.upstream_cluster, None);
}

#[test]
fn older_istio_formats() {
    let (v, skipped) = parse_log(
        &[
            ISTIO_13,
            ISTIO_11,
            ISTIO_10_NOMIXER,
            ISTIO_106,
            ISTIO_106_TCP,
        ]
        .join("\n"),
    );
    assert_eq!(skipped, 0);
    let formats: Vec<_> = v.iter().map(|e| e.format.as_str()).collect();
    assert_eq!(
        formats,
        [
            "istio-1.3",
            "istio-1.1",
            "istio-1.0-1.1-nomixer",
            "istio-1.0-http",
            "istio-1.0-tcp"
        ]
    );
    assert_eq!(v[0].route_name.as_deref(), Some("default"));
    assert_eq!(v[0].mixer_status, None);
    assert_eq!(v[1].response_flags, vec!["UC"]);
    assert_eq!(v[1].bytes_sent, Some(57));
    assert_eq!(v[1].requested_server_name, None);
    assert_eq!(v[3].path.as_deref(), Some("/ip"));
    assert_eq!(v[3].protocol.as_deref(), Some("HTTP/1.1"));
    assert_eq!(v[4].response_flags, vec!["UF"]);
    assert_eq!(
        v[4].upstream_cluster.as_deref(),
        Some("outbound|3306||mysql.default.svc.cluster.local")
    );
}

#[test]
fn envoy_and_agent_lines_are_skipped() {
    let text = format!(
        "[2026-11-24 20:11:22.201][9059][warning][main] [source/server/server.cc:1059] There is no configured limit\n\
         2024-05-01T10:00:00.000000Z\tinfo\tEnvoy proxy is ready\n\
         2024-05-01T10:00:00.000000Z\twarning\tenvoy config\tgRPC config: initial fetch timed out\n\
         \n{MODERN_UC}\n{{\"level\":\"info\",\"msg\":\"not an access log\"}}\nnot json {{\n"
    );
    let (v, skipped) = parse_log(&text);
    assert_eq!(v.len(), 1);
    assert_eq!(skipped, 5);
    assert_eq!(v[0].reset_reason(), Some("connection_termination"));
}

#[test]
fn json_lines() {
    let line = r#"{"start_time":"2024-05-01T10:00:00.000Z","method":"GET","path":"/get","protocol":"HTTP/1.1","response_code":503,"response_flags":"UO","response_code_details":"upstream_reset_before_response_started{overflow}","connection_termination_details":null,"upstream_transport_failure_reason":null,"upstream_host":null,"upstream_cluster":"outbound|8000||httpbin.foo.svc.cluster.local","authority":"httpbin:8000","downstream_local_address":"10.96.0.1:8000","downstream_remote_address":"10.1.1.1:4000","requested_server_name":null,"route_name":"default","bytes_sent":81}"#;
    let (v, skipped) = parse_log(line);
    assert_eq!(skipped, 0);
    let e = &v[0];
    assert_eq!(e.format, "json");
    assert_eq!(e.response_code, Some(503));
    assert_eq!(e.response_flags, vec!["UO"]);
    assert_eq!(e.reset_reason(), Some("overflow"));
    assert_eq!(e.upstream_host, None);
    assert_eq!(e.bytes_sent, Some(81));
    // string codes and "-" are fine too
    let (v, _) = parse_log(
        r#"{"response_code":"503","response_flags":"-","upstream_cluster":"-","start_time":"x"}"#,
    );
    assert_eq!(v[0].response_code, Some(503));
    assert!(v[0].response_flags.is_empty());
    assert_eq!(v[0].upstream_cluster, None);
}

#[test]
fn custom_formats() {
    let fmt = LogFormatSpec::Text(
        "%RESPONSE_CODE% %RESPONSE_FLAGS% %UPSTREAM_CLUSTER% \"%REQ(:AUTHORITY)%\"\n".into(),
    );
    let (v, skipped) = parse_log_with(
        "503 UH outbound|80||a.b.svc.cluster.local \"a.b\"\nrandom words here",
        &[fmt],
    );
    assert_eq!(skipped, 1);
    assert_eq!(v[0].format, "custom-0");
    assert!(v[0].has_flag("UH"));
    assert_eq!(v[0].authority.as_deref(), Some("a.b"));
    let j = json_format_from_str(r#"{"code": "%RESPONSE_CODE%", "flags": "%RESPONSE_FLAGS%", "cluster": "%UPSTREAM_CLUSTER%", "host": "%UPSTREAM_HOST%"}"#).unwrap();
    let (v, _) = parse_log_with(
        r#"{"code": 503, "flags": "NC", "cluster": "outbound|80|v9|a", "host": null}"#,
        &[j],
    );
    assert_eq!(v[0].response_code, Some(503));
    assert!(v[0].has_flag("NC"));
    assert_eq!(v[0].format, "custom-json-0");
}

#[test]
fn compile_handles_params_and_lengths() {
    let toks = compile("%START_TIME(%Y-%m-%dT%H:%M:%S)% %REQ(USER-AGENT):10% 100%% %BOGUS");
    assert_eq!(toks[0], Tok::Field(Field::StartTime));
    assert_eq!(toks[2], Tok::Field(Field::UserAgent));
    assert_eq!(toks[3], Tok::Lit(" 100% %BOGUS".into()));
}

#[test]
fn huge_garbage_lines_are_cheap() {
    let start = std::time::Instant::now();
    let mut text = String::from("[2024-01-01T00:00:00.000Z] \"GET ");
    text.push_str(&"a ".repeat(50_000));
    text.push('\n');
    text.push_str(&format!("[x] {}\n", "\" ".repeat(50_000)));
    let (v, skipped) = parse_log(&text);
    assert!(v.is_empty());
    assert_eq!(skipped, 2);
    assert!(start.elapsed() < std::time::Duration::from_secs(5));
}

proptest! {
    #[test]
    fn parser_never_panics(s in "\\PC{0,200}") {
        let _ = parse_log(&s);
    }

    #[test]
    fn parser_never_panics_on_near_lines(cut in 0usize..400, junk in "[ \"\\[\\]{}|a-z0-9-]{0,10}") {
        let mut line = MODERN_TLS.to_string();
        let cut = cut.min(line.len());
        while !line.is_char_boundary(cut) { line.pop(); }
        line.truncate(cut);
        line.push_str(&junk);
        let _ = parse_log(&line);
    }
}

// ---------------------------------------------------------------------------
// Callers (client discovery from a server sidecar's log)
// ---------------------------------------------------------------------------

/// Inbound HTTP line of a server sidecar (Istio ≥1.12 format).
const INBOUND_OK: &str = r#"[2024-05-01T10:00:01.000Z] "GET /ip HTTP/1.1" 200 - via_upstream - "-" 0 30 2 1 "-" "curl/8.5.0" "5f0c" "httpbin.foo:8000" "10.244.0.12:80" inbound|80|| 127.0.0.6:45555 10.244.0.12:80 10.244.0.9:50000 outbound_.8000_._.httpbin.foo.svc.cluster.local default"#;
/// Outbound line made by the server app itself: downstream is the pod's own IP.
const OWN_OUTBOUND: &str = r#"[2024-05-01T10:00:02.000Z] "GET /x HTTP/1.1" 503 UH no_healthy_upstream - "-" 0 19 0 - "-" "curl" "abc" "other:80" "-" outbound|80||other.foo.svc.cluster.local - 10.96.0.5:80 10.244.0.12:40000 - default"#;

#[test]
fn callers_from_a_server_log() {
    let json = r#"{"downstream_remote_address":"[fd00::9]:51234","upstream_cluster":"inbound|80||","response_code":"503","response_flags":"UC","start_time":"x"}"#;
    let passthrough = r#"[2024-05-01T10:00:03.000Z] "- - -" 0 - - - "-" 10 20 3 - "-" "-" "-" "-" "1.2.3.4:443" PassthroughCluster 10.244.0.12:41000 1.2.3.4:443 10.244.0.12:41000 - -"#;
    let loopback = r#"[2024-05-01T10:00:04.000Z] "GET /healthz HTTP/1.1" 200 - via_upstream - "-" 0 2 1 1 "-" "kube-probe" "1" "localhost" "127.0.0.1:80" inbound|80|| 127.0.0.6:1 10.244.0.12:80 127.0.0.1:5000 - default"#;
    let log = [
        SERVER_NR,
        INBOUND_OK,
        OWN_OUTBOUND,
        INBOUND_OK,
        json,
        passthrough,
        loopback,
        "2024-05-01T10:00:00Z info envoy config: all clusters initialized",
        "",
    ]
    .join("\n");
    let found = callers_in_log(&log, &[], &["10.244.0.12".to_string()]);
    assert_eq!(
        found,
        vec![
            Caller { ip: "10.244.0.9".into(), requests: 3, server_errors: 0, unavailable: 0 },
            Caller { ip: "fd00::9".into(), requests: 1, server_errors: 1, unavailable: 1 },
        ],
        "the NR line (no upstream cluster) counts; the app's own calls, passthrough and loopback do not"
    );
    let merged = merge_callers([found.clone(), found]);
    assert_eq!(merged[0].requests, 6);
    assert_eq!(merged[1].unavailable, 2);
    // Near miss: without own IPs the app's own outbound line still does not count.
    let all = callers_in_log(OWN_OUTBOUND, &[], &[]);
    assert!(all.is_empty());
}

#[test]
fn callers_with_a_custom_format() {
    let fmt = LogFormatSpec::Text(
        "%DOWNSTREAM_REMOTE_ADDRESS% %RESPONSE_CODE% %UPSTREAM_CLUSTER%\n".into(),
    );
    let log =
        "10.1.1.1:5000 503 inbound|8080||\n10.1.1.2:6000 200 outbound|80||x.y.svc.cluster.local\n";
    let found = callers_in_log(log, &[fmt], &[]);
    assert_eq!(
        found,
        vec![Caller {
            ip: "10.1.1.1".into(),
            requests: 1,
            server_errors: 1,
            unavailable: 1
        }]
    );
    // Near miss: without the format these lines are not access-log lines at all.
    assert!(callers_in_log(log, &[], &[]).is_empty());
    let e = AccessLogEntry {
        downstream_remote_address: Some("10.0.0.1".into()),
        ..AccessLogEntry::default()
    };
    assert_eq!(
        downstream_ip(&e).map(|i| i.to_string()).as_deref(),
        Some("10.0.0.1")
    );
    assert!(is_received(&e));
}

#[test]
fn which_way_a_line_went() {
    let with =
        |cluster: Option<&str>, code: u16, flags: &[&str], details: Option<&str>| AccessLogEntry {
            upstream_cluster: cluster.map(str::to_string),
            response_code: Some(code),
            response_flags: flags.iter().map(|f| f.to_string()).collect(),
            details: details.map(str::to_string),
            ..AccessLogEntry::default()
        };
    let inbound = [
        with(Some("inbound|8080||"), 200, &[], None),
        with(Some("InboundPassthroughCluster"), 200, &[], None),
        with(Some("InboundPassthroughClusterIpv4"), 200, &[], None),
        with(Some("InboundPassthroughClusterIpv6"), 200, &[], None),
        with(None, 0, &["NR"], Some("filter_chain_not_found")),
        // Formats before %RESPONSE_CODE_DETAILS% (Istio <1.12): TCP NR with code 0.
        with(None, 0, &["NR"], None),
    ];
    for e in &inbound {
        assert_eq!(e.direction(), Some(Direction::Inbound), "{e:?}");
        assert!(e.is_inbound() && is_received(e));
    }
    let outbound = [
        with(
            Some("outbound|80||a.b.svc.cluster.local"),
            503,
            &["UH"],
            None,
        ),
        with(Some("PassthroughCluster"), 0, &[], None),
        with(Some("BlackHoleCluster"), 0, &["UH"], None),
    ];
    for e in &outbound {
        assert_eq!(e.direction(), Some(Direction::Outbound), "{e:?}");
        assert!(!is_received(e));
    }
    // Near misses: the app's own request that matched no route (404 NR) is
    // no refusal of a caller; a line without a cluster says nothing.
    let route_nr = with(None, 404, &["NR"], Some("route_not_found"));
    assert_eq!(route_nr.direction(), None);
    assert!(!route_nr.is_inbound());
    assert_eq!(with(None, 200, &[], None).direction(), None);
}

#[test]
fn only_istios_own_sources_are_skipped() {
    // The lab's pods live in 127.N.0.0/16 (N >= 10): their addresses are callers.
    let line = |remote: &str| {
        format!(
            r#"[2024-05-01T10:00:01.000Z] "GET /ip HTTP/1.1" 200 - via_upstream - "-" 0 30 2 1 "-" "curl/8.5.0" "5f0c" "httpbin.foo:8000" "127.10.0.4:8080" inbound|8000|| 127.0.0.6:45555 127.10.0.4:8080 {remote} - default"#
        )
    };
    let log = [
        line("127.10.0.9:50000"),
        line("127.0.0.6:40000"),
        line("127.0.0.1:40001"),
        line("[::6]:40002"),
        line("[::1]:40003"),
        line("127.10.0.4:40004"),
    ]
    .join("\n");
    let found = callers_in_log(&log, &[], &["127.10.0.4".to_string()]);
    let ips: Vec<&str> = found.iter().map(|c| c.ip.as_str()).collect();
    assert_eq!(ips, vec!["127.10.0.9"]);
    assert!(!is_istio_own_source("127.0.0.2".parse().unwrap()));
}

// ---------------------------------------------------------------------------
// Fuzzing findings (fuzz target `access_log`; inputs in fuzz/regressions/access_log)
// ---------------------------------------------------------------------------

/// A 60,000-character request path (a client chooses it; Envoy accepts 60 KiB
/// of headers): every step scanned the rest of the line, and Istio 1.0's
/// `%PATH%%PROTOCOL%` tried every split from the shortest, so the line ran
/// out of budget and was dropped. Now it parses, in every era's format.
#[test]
fn long_request_path_parses_in_every_era() {
    let path = format!("/{}", "a".repeat(60_000));
    for (line, format) in [
        (MODERN_UC.replace("/get", &path), "istio-1.12+"),
        (ISTIO_106.replace("/ip", &path), "istio-1.0-http"),
    ] {
        let (v, skipped) = parse_log(&line);
        assert_eq!((v.len(), skipped), (1, 0), "{format}");
        assert_eq!(v[0].format, format);
        assert_eq!(v[0].path.as_deref(), Some(path.as_str()));
        assert_eq!(v[0].protocol.as_deref(), Some("HTTP/1.1"));
        assert_eq!(v[0].response_code, Some(503));
    }
}

/// Adjacent operators: the first value is the longest that lets the rest fit
/// (`%RESPONSE_CODE%%RESPONSE_FLAGS%` on `503UF` read code 5 and flags
/// `03UF` when the shortest came first).
#[test]
fn adjacent_operators_take_the_longest_value_that_fits() {
    let fmt = LogFormatSpec::Text("%RESPONSE_CODE%%RESPONSE_FLAGS% %UPSTREAM_CLUSTER%".into());
    let (v, _) = parse_log_with("503UF outbound|80||a", &[fmt]);
    assert_eq!(v[0].response_code, Some(503));
    assert_eq!(v[0].response_flags, vec!["UF".to_string()]);
}

/// A template of 1,500 operators (templates come from the proxy's listeners):
/// the matcher recursed once per token, 3,000 frames deep, past the 256 KiB
/// stack given here (9,000 operators overflowed a 2 MiB test thread); it is
/// iterative now. Far longer templates run out of budget instead (`matcher::budget`).
#[test]
fn very_long_template_matches_without_recursion() {
    let fmt = LogFormatSpec::Text("%BYTES_SENT% ".repeat(1_500));
    let line = format!("{}\n", "7 ".repeat(1_500));
    let parsed = std::thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(move || parse_log_with(&line, &[fmt]))
        .unwrap()
        .join()
        .expect("no stack overflow");
    assert_eq!(parsed.0.len(), 1);
    assert_eq!(parsed.0[0].bytes_sent, Some(7));
}

/// Many `%X(` without `)`: each `%` scanned to the end of the format for a
/// `)` (quadratic); the result is one literal, as before.
#[test]
fn unclosed_operator_parameters_compile_to_a_literal() {
    let format = "%A(".repeat(20_000);
    assert_eq!(compile(&format), vec![Tok::Lit(format.clone())]);
}

/// Formats come from the proxy's listeners: only the first
/// `MAX_CUSTOM_FORMATS` are tried (each is tried on every line).
#[test]
fn custom_formats_are_capped() {
    let mut formats: Vec<LogFormatSpec> = (0..MAX_CUSTOM_FORMATS)
        .map(|i| LogFormatSpec::Text(format!("x{i} %RESPONSE_CODE%")))
        .collect();
    formats.push(LogFormatSpec::Text("late %RESPONSE_CODE%".into()));
    let (v, skipped) = parse_log_with("x0 503\nlate 503\n", &formats);
    assert_eq!((v.len(), skipped), (1, 1));
    assert_eq!(v[0].format, "custom-0");
}

/// A template of 2,000 distinct literals (a listener's) against lines that
/// almost fit: every backtrack searched the rest of the line for its
/// literal. Searches now cost budget by the bytes they read; the lines are
/// given up (not access log lines) after work linear in their length.
#[test]
fn near_miss_lines_against_a_long_template_are_given_up() {
    let format: String = (0..2_000).map(|i| format!("%UPSTREAM_HOST%x{i}")).collect();
    let line: String = (0..1_999).map(|i| format!("ax{i}")).collect();
    let text = format!("{line}\n{line}\n");
    let (v, skipped) = parse_log_with(&text, &[LogFormatSpec::Text(format)]);
    assert_eq!((v.len(), skipped), (0, 2));
}
