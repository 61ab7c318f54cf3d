//! Unit tests of the `/clusters` parsers (text and JSON, shapes as Envoy
//! prints them) and of service traffic.
//!
//! Place in the flow: test-only (envoy/ parsers).

use super::*;
use proptest::prelude::*;
use serde_json::json;

// Shape as Envoy 1.40 prints it (captured, trimmed).
const TEXT: &str = "outbound|8000||httpbin.foo.svc.cluster.local::observability_name::outbound|8000||httpbin.foo.svc.cluster.local
outbound|8000||httpbin.foo.svc.cluster.local::outlier::success_rate_average::-1
outbound|8000||httpbin.foo.svc.cluster.local::default_priority::max_connections::1
outbound|8000||httpbin.foo.svc.cluster.local::default_priority::max_pending_requests::1
outbound|8000||httpbin.foo.svc.cluster.local::high_priority::max_retries::3
outbound|8000||httpbin.foo.svc.cluster.local::added_via_api::true
outbound|8000||httpbin.foo.svc.cluster.local::127.0.0.1:18081::cx_active::0
outbound|8000||httpbin.foo.svc.cluster.local::127.0.0.1:18081::cx_connect_fail::3
outbound|8000||httpbin.foo.svc.cluster.local::127.0.0.1:18081::rq_error::3
outbound|8000||httpbin.foo.svc.cluster.local::127.0.0.1:18081::rq_total::0
outbound|8000||httpbin.foo.svc.cluster.local::127.0.0.1:18081::hostname::
outbound|8000||httpbin.foo.svc.cluster.local::127.0.0.1:18081::health_flags::/failed_outlier_check
outbound|8000||httpbin.foo.svc.cluster.local::127.0.0.1:18081::weight::1
outbound|8000||httpbin.foo.svc.cluster.local::127.0.0.1:18081::region::
outbound|8000||httpbin.foo.svc.cluster.local::127.0.0.1:18081::canary::false
outbound|8000||httpbin.foo.svc.cluster.local::127.0.0.1:18081::success_rate::-1
outbound|8000||httpbin.foo.svc.cluster.local::[fd00::5]:8080::rq_total::7
outbound|8000||httpbin.foo.svc.cluster.local::[fd00::5]:8080::rq_error::2
outbound|8000||httpbin.foo.svc.cluster.local::[fd00::5]:8080::health_flags::healthy
inbound|8080||::127.0.0.6:8080::health_flags::/failed_eds_health/pending_dynamic_removal
xds-grpc::default_priority::max_connections::100000
this line is garbage
";

#[test]
fn text_format() {
    let cs = parse_clusters_text(TEXT);
    assert_eq!(cs.unparsed.len(), 1);
    let c = cs
        .get("outbound|8000||httpbin.foo.svc.cluster.local")
        .unwrap();
    assert_eq!(c.added_via_api, Some(true));
    assert_eq!(c.limit("max_connections"), Some(1));
    assert_eq!(c.circuit_breakers["high"]["max_retries"], 3);
    assert_eq!(
        c.outlier.get("success_rate_average").map(String::as_str),
        Some("-1")
    );
    assert_eq!(c.hosts.len(), 2);
    let h = &c.hosts[0];
    assert_eq!(h.address, "127.0.0.1:18081");
    assert!(h.is_ejected());
    assert!(!h.is_healthy());
    assert_eq!(h.counter("cx_connect_fail"), 3);
    assert_eq!(h.hostname, None);
    assert_eq!(h.success_rate, Some(-1.0));
    assert_eq!(h.other.get("canary").map(String::as_str), Some("false"));
    let v6 = &c.hosts[1];
    assert_eq!(v6.address, "[fd00::5]:8080");
    assert!(v6.is_healthy());
    assert_eq!(c.total("rq_total"), 7);
    assert_eq!(c.total("rq_error"), 5);
    assert_eq!(c.ejected_hosts().len(), 1);
    assert_eq!(c.healthy_hosts().len(), 1);
    let inbound = cs.get("inbound|8080||").unwrap();
    assert_eq!(
        inbound.hosts[0].health_flags,
        vec!["failed_eds_health", "pending_dynamic_removal"]
    );
    assert!(cs.get("xds-grpc").is_some());
}

#[test]
fn json_format_snake_and_camel() {
    let snake = json!({"cluster_statuses": [{
        "name": "outbound|8000||httpbin.foo.svc.cluster.local",
        "added_via_api": true,
        "host_statuses": [{
            "address": {"socket_address": {"address": "127.0.0.1", "port_value": 18081}},
            "stats": [{"value": "3", "name": "cx_connect_fail"}, {"name": "rq_success"}, {"type": "GAUGE", "name": "cx_active"}],
            "health_status": {"failed_outlier_check": true, "eds_health_status": "HEALTHY"},
            "weight": 1, "locality": {}
        }],
        "circuit_breakers": {"thresholds": [
            {"max_connections": 1, "max_pending_requests": 1, "max_requests": 4294967295u64, "max_retries": 4294967295u64},
            {"priority": "HIGH", "max_connections": 1024}
        ]}
    }]});
    let cs = parse_clusters_json(&snake).unwrap();
    let c = cs
        .get("outbound|8000||httpbin.foo.svc.cluster.local")
        .unwrap();
    assert_eq!(c.limit("max_pending_requests"), Some(1));
    assert_eq!(c.circuit_breakers["high"]["max_connections"], 1024);
    let h = &c.hosts[0];
    assert_eq!(h.counter("cx_connect_fail"), 3);
    assert_eq!(h.counters.get("rq_success"), Some(&0));
    assert!(h.is_ejected());
    // camelCase (older Envoy, as in istioctl's testdata)
    let camel = json!({"cluster_statuses": [{
        "name": "outbound|15014||istio-policy.istio-system.svc.cluster.local",
        "addedViaApi": true,
        "hostStatuses": [{
            "address": {"socketAddress": {"address": "172.17.0.14", "portValue": 15014}},
            "stats": [{"name": "cx_active", "type": "GAUGE"}],
            "healthStatus": {"edsHealthStatus": "UNHEALTHY"}
        }, {
            "address": {"pipe": {"path": "/sock/mixer.socket"}},
            "healthStatus": {"edsHealthStatus": "HEALTHY"}
        }]
    }]});
    let cs = parse_clusters_json(&camel).unwrap();
    let c = cs
        .get("outbound|15014||istio-policy.istio-system.svc.cluster.local")
        .unwrap();
    assert_eq!(c.hosts[0].address, "172.17.0.14:15014");
    assert_eq!(c.hosts[0].health_flags, vec!["failed_eds_health"]);
    assert!(!c.hosts[0].is_healthy());
    assert_eq!(c.hosts[1].address, "unix:///sock/mixer.socket");
    assert!(c.hosts[1].is_healthy());
}

#[test]
fn json_errors_name_the_path() {
    let e = parse_clusters_json(&json!({"cluster_statuses": [{"host_statuses": []}]})).unwrap_err();
    assert_eq!(
        e.to_string(),
        "/clusters?format=json: `cluster_statuses[0].name` should be a string"
    );
    let e = parse_clusters_json(
        &json!({"cluster_statuses": [{"name": "a", "host_statuses": [{"address": {}}]}]}),
    )
    .unwrap_err();
    assert!(e
        .to_string()
        .contains("cluster_statuses[0].host_statuses[0].address"));
    assert!(parse_clusters("{not json").is_err());
    assert!(parse_clusters_json(&json!({})).unwrap().clusters.is_empty());
    assert!(parse_clusters_json(&json!([1])).is_err());
}

#[test]
fn autodetect() {
    assert_eq!(parse_clusters(TEXT).unwrap().clusters.len(), 3);
    assert_eq!(
        parse_clusters("{\"cluster_statuses\": []}")
            .unwrap()
            .clusters
            .len(),
        0
    );
}

proptest! {
    #[test]
    fn text_parser_never_panics(s in "[a-z0-9|.:/\\[\\]\\n-]{0,300}") {
        let cs = parse_clusters_text(&s);
        for c in cs.clusters.values() { let _ = c.total("rq_total"); }
    }
}

// ---------------------------------------------------------------------------
// Traffic to a service (client discovery)
// ---------------------------------------------------------------------------

/// `TEXT` plus clusters of other ports, subsets, services and namespaces.
fn sample() -> String {
    let more = [
        (
            "outbound|8000||httpbin.foo.svc.cluster.local",
            "10.0.0.5:8080",
            [("cx_total", 9), ("cx_connect_fail", 6)],
        ),
        (
            "outbound|8000|v1|httpbin.foo.svc.cluster.local",
            "[fd00::6]:8080",
            [("rq_total", 5), ("rq_error", 0)],
        ),
        (
            "outbound|9000||httpbin.foo.svc.cluster.local",
            "10.0.0.4:9000",
            [("rq_total", 100), ("rq_error", 0)],
        ),
        (
            "outbound|8000||httpbin.bar.svc.cluster.local",
            "10.0.0.9:8080",
            [("rq_total", 50), ("rq_error", 0)],
        ),
        (
            "outbound|8000||httpbin2.foo.svc.cluster.local",
            "10.0.0.9:8080",
            [("rq_total", 60), ("rq_error", 0)],
        ),
        (
            "outbound|8000||httpbin.foobar.svc.cluster.local",
            "10.0.0.9:8080",
            [("rq_total", 70), ("rq_error", 0)],
        ),
    ];
    let mut out = TEXT.to_string();
    for (cluster, host, stats) in more {
        for (stat, n) in stats {
            out.push_str(&format!("{cluster}::{host}::{stat}::{n}\n"));
        }
    }
    out
}

#[test]
fn traffic_to_a_service() {
    let sample = sample();
    // TEXT's httpbin.foo:8000 hosts add rq_total 0 + 7, rq_error 3 + 2, cx_connect_fail 3.
    let t = traffic_to(&sample, "httpbin", "foo", Some(8000));
    assert_eq!(
        (t.rq_total, t.rq_error, t.cx_total, t.cx_connect_fail),
        (12, 5, 9, 9)
    );
    assert_eq!(
        t.clusters.iter().map(String::as_str).collect::<Vec<_>>(),
        vec![
            "outbound|8000|v1|httpbin.foo.svc.cluster.local",
            "outbound|8000||httpbin.foo.svc.cluster.local"
        ]
    );
    assert_eq!(traffic_to(&sample, "httpbin", "foo", None).rq_total, 112);
    assert_eq!(traffic_to(&sample, "httpbin", "bar", None).rq_total, 50);
    // Near misses: another service whose name shares a prefix, another namespace,
    // the inbound side.
    assert_eq!(
        traffic_to(&sample, "nope", "foo", None),
        ServiceTraffic::default()
    );
    // A cluster with no hosts is still seen.
    let t = traffic_to(
        "outbound|80||web.foo.svc.cluster.local::added_via_api::true\n",
        "web",
        "foo",
        None,
    );
    assert_eq!((t.rq_total, t.clusters.len()), (0, 1));
    // The same from JSON.
    let cs = parse_clusters(
        r#"{"cluster_statuses": [{"name": "outbound|80||web.foo.svc.corp.example",
        "host_statuses": [{"address": {"socket_address": {"address": "10.0.0.1", "port_value": 80}},
        "stats": [{"name": "rq_total", "value": "7"}, {"name": "cx_total", "value": "8"}]}]}]}"#,
    )
    .unwrap();
    assert_eq!(cs.traffic_to("web", "foo", Some(80)).cx_total, 8);
}

#[test]
fn outbound_cluster_names() {
    for (cluster, port, want) in [
        ("outbound|8000||httpbin.foo.svc.cluster.local", None, true),
        (
            "outbound|8000||httpbin.foo.svc.corp.example",
            Some(8000),
            true,
        ),
        ("outbound|8000|v1|httpbin.foo.svc", None, true),
        // Near misses: another port, the inbound side, a longer namespace,
        // the SNI form (not in /clusters), a non-Istio cluster.
        (
            "outbound|8000||httpbin.foo.svc.cluster.local",
            Some(80),
            false,
        ),
        ("inbound|8000||httpbin.foo.svc.cluster.local", None, false),
        (
            "outbound|8000||httpbin.foobar.svc.cluster.local",
            None,
            false,
        ),
        (
            "outbound_.8000_._.httpbin.foo.svc.cluster.local",
            None,
            false,
        ),
        ("PassthroughCluster", None, false),
    ] {
        assert_eq!(
            is_outbound_cluster_of(cluster, "httpbin", "foo", port),
            want,
            "{cluster} {port:?}"
        );
    }
}

/// Fuzz target `clusters` (input in fuzz/regressions/clusters): 25,000 hosts
/// in one cluster; each line searched the cluster's hosts for its address
/// (quadratic: 28 s). Hosts are indexed now; a host's lines need not be
/// adjacent, and hosts keep the order Envoy printed them in.
#[test]
fn text_many_hosts_in_one_cluster() {
    let mut text = String::new();
    for i in 0..25_000u32 {
        text.push_str(&format!(
            "c::10.0.{}.{}:80::rq_total::{i}\n",
            i / 256,
            i % 256
        ));
    }
    text.push_str("c::10.0.0.0:80::rq_error::4\nc::[fd00::1]:80::rq_total::1\n");
    let cs = parse_clusters_text(&text);
    let c = cs.get("c").unwrap();
    assert_eq!(c.hosts.len(), 25_001);
    assert_eq!(c.hosts[0].address, "10.0.0.0:80");
    assert_eq!(c.hosts[0].counter("rq_error"), 4);
    assert_eq!(c.hosts[24_999].counter("rq_total"), 24_999);
    assert_eq!(c.hosts[25_000].address, "[fd00::1]:80");
    assert_eq!(c.total("rq_total"), (0..25_000u64).sum::<u64>() + 1);
}
