//! A generated mesh (`mesh503-lab generate`) over ADS: 300 services, most
//! pods without a running Envoy, two real Envoys carrying every cluster,
//! and the seed's break on foo/httpbin giving a real 503 UC. Sizes beyond
//! this belong to the benchmark (`mesh503-lab bench`, docs/performance.md).

use mesh503_lab::generate::{self, MeshSpec};
use mesh503_lab::lab::{Lab, LabOptions};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const N: usize = 300;

fn admin(addr: std::net::SocketAddr, path: &str) -> String {
    let url = format!("http://{addr}{path}");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        reqwest::Client::builder()
            .no_proxy()
            .build()
            .unwrap()
            .get(&url)
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {url}: {e}"))
            .text()
            .await
            .unwrap()
    })
}

#[test]
fn generated_mesh_over_ads_breaks_like_the_seed() {
    let spec = MeshSpec {
        services: N,
        pods_per_service: 2,
        envoys: 2,
        istio_version: "1.24".into(),
    };
    let t0 = Instant::now();
    let lab = Lab::start_objects(generate::objects(&spec).unwrap(), LabOptions::default())
        .expect("the lab starts");
    println!("{N} services up in {:?}", t0.elapsed());
    assert!(lab.errors().is_empty(), "{:?}", lab.errors());
    assert_eq!(
        lab.envoy_pids().len(),
        2,
        "only foo/sleep and foo/httpbin run Envoy"
    );

    // Every pod is injected and Ready in the API, Envoy or not.
    let pods = lab.store().list("", "Pod", None);
    assert_eq!(pods.len(), 2 + (N - 2) * 2);
    let injected_ready = pods
        .iter()
        .filter(|p| {
            let proxy = p["spec"]["containers"]
                .as_array()
                .into_iter()
                .chain(p["spec"]["initContainers"].as_array())
                .flatten()
                .any(|c| c["name"] == "istio-proxy");
            let ready = p["status"]["conditions"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|c| c["type"] == "Ready" && c["status"] == "True");
            proxy && ready
        })
        .count();
    assert_eq!(injected_ready, pods.len());

    // The client's real Envoy carries an outbound cluster for every service,
    // with the pods that run no Envoy as its endpoints.
    let sidecars = lab.sidecars();
    let client = sidecars
        .iter()
        .find(|(k, _, _)| k.starts_with("foo/sleep-"))
        .expect("foo/sleep runs Envoy");
    let dump: Value = serde_json::from_str(&admin(
        client.1,
        "/config_dump?resource=dynamic_active_clusters",
    ))
    .unwrap();
    let names: Vec<&str> = dump["configs"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["cluster"]["name"].as_str())
        .collect();
    for i in 0..N - 2 {
        let (ns, svc) = generate::generated_service(i);
        let want = format!("outbound|8000||{svc}.{ns}.svc.cluster.local");
        assert!(names.contains(&want.as_str()), "no {want}");
    }
    assert!(names.contains(&"outbound|8000||httpbin.foo.svc.cluster.local"));
    let clusters = admin(client.1, "/clusters");
    let (ns, svc) = generate::generated_service(N - 3);
    let endpoints = clusters
        .lines()
        .filter(|l| {
            l.starts_with(&format!(
                "outbound|8000||{svc}.{ns}.svc.cluster.local::127."
            )) && l.ends_with("::health_flags::healthy")
        })
        .count();
    assert_eq!(endpoints, 2, "both pods of {ns}/{svc} are endpoints");

    // The seed's break: plaintext to a STRICT server, a real 503 UC.
    let r = lab
        .curl("foo/sleep", "http://httpbin.foo:8000/get", 1, 1)
        .unwrap()
        .remove(0)
        .unwrap();
    assert_eq!(r.status, 503, "{r}");
    std::thread::sleep(Duration::from_millis(1200));
    let log = std::fs::read_to_string(client.2.join("istio-proxy.log")).unwrap();
    assert!(
        log.contains(" 503 UC ") && log.contains("outbound|8000||httpbin.foo.svc.cluster.local"),
        "{log}"
    );

    // The fix travels over ADS to the running Envoy.
    let t1 = Instant::now();
    lab.apply(
        json!({"apiVersion": "networking.istio.io/v1", "kind": "DestinationRule",
        "metadata": {"name": "httpbin", "namespace": "foo"},
        "spec": {"host": "httpbin", "trafficPolicy": {"tls": {"mode": "ISTIO_MUTUAL"}}}}),
    )
    .unwrap();
    println!("fix applied and acknowledged in {:?}", t1.elapsed());
    let r = lab
        .curl("foo/sleep", "http://httpbin.foo:8000/get", 1, 1)
        .unwrap()
        .remove(0)
        .unwrap();
    assert_eq!(r.status, 200, "{r}");
    assert!(lab.errors().is_empty(), "{:?}", lab.errors());
}
