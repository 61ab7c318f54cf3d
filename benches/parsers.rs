//! Throughput of the parsers of what a sidecar's admin port and log hand the
//! plugin: `/config_dump` (the tree parser, and the streaming reader
//! `tls-check --config-dump` uses, from memory and from a reader),
//! `/clusters` (text and `?format=json`), `/stats`, and the access log.
//! Inputs are recorded from the lab's real Envoys (`benches/data`, see its
//! README); the config dump is also enlarged in memory the way
//! docs/performance.md builds its 192 MB dump (renamed copies of every
//! cluster, endpoint config and route config).
//!
//!     cargo bench --bench parsers                  # every group
//!     cargo bench --bench parsers -- config_dump   # one group
//!
//! Not a test (`scripts/test` only builds it, through clippy): criterion
//! prints the time and MB/s of each, and the change since the last run.

use std::hint::black_box;
use std::io::BufReader;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use kubectl_mesh503::envoy::access_log::parse_log;
use kubectl_mesh503::envoy::clusters::parse_clusters;
use kubectl_mesh503::envoy::config_dump::{parse_config_dump, stream};
use kubectl_mesh503::envoy::stats::parse_stats;
use serde_json::Value;

fn data(name: &str) -> String {
    let path = format!("{}/benches/data/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The recorded full dump of the seed's `foo/sleep` with `copies` copies of
/// each cluster, endpoint config and route config, renamed `NAME.kK` after
/// the first (docs/performance.md's recipe), printed as Envoy prints it.
fn enlarged_dump(copies: usize) -> Vec<u8> {
    let mut d: Value = serde_json::from_str(&data("seed-sleep.config_dump.json")).unwrap();
    let parts = [
        ("dynamic_active_clusters", "cluster", "name"),
        (
            "dynamic_endpoint_configs",
            "endpoint_config",
            "cluster_name",
        ),
        ("dynamic_route_configs", "route_config", "name"),
    ];
    for c in d["configs"].as_array_mut().unwrap() {
        for (key, inner, field) in parts {
            let Some(list) = c.get(key).and_then(Value::as_array).cloned() else {
                continue;
            };
            let mut out = Vec::with_capacity(list.len() * copies);
            for k in 0..copies {
                for x in &list {
                    let mut y = x.clone();
                    if k > 0 {
                        let name = y[inner][field].as_str().unwrap_or("").to_string();
                        y[inner][field] = Value::String(format!("{name}.k{k}"));
                    }
                    out.push(y);
                }
            }
            c[key] = Value::Array(out);
        }
    }
    serde_json::to_vec_pretty(&d).unwrap()
}

fn config_dump(c: &mut Criterion) {
    let mut group = c.benchmark_group("config_dump");
    for copies in [1, 31] {
        let bytes = enlarged_dump(copies);
        group.throughput(Throughput::Bytes(bytes.len() as u64));
        group.bench_with_input(BenchmarkId::new("tree", copies), &bytes, |b, bytes| {
            b.iter(|| {
                let v: Value = serde_json::from_slice(bytes).unwrap();
                black_box(parse_config_dump(&v).unwrap())
            })
        });
        group.bench_with_input(
            BenchmarkId::new("stream_slice", copies),
            &bytes,
            |b, bytes| b.iter(|| black_box(stream::from_slice(bytes).unwrap())),
        );
        group.bench_with_input(
            BenchmarkId::new("stream_reader", copies),
            &bytes,
            |b, bytes| {
                b.iter(|| black_box(stream::from_reader(BufReader::new(&bytes[..])).unwrap()))
            },
        );
    }
    group.finish();
}

fn clusters(c: &mut Criterion) {
    let mut group = c.benchmark_group("clusters");
    for (name, file) in [
        ("text", "seed-sleep.clusters.txt"),
        ("json", "seed-sleep.clusters.json"),
    ] {
        let text = data(file);
        group.throughput(Throughput::Bytes(text.len() as u64));
        group.bench_with_input(name, &text, |b, text| {
            b.iter(|| black_box(parse_clusters(text).unwrap()))
        });
    }
    group.finish();
}

fn stats(c: &mut Criterion) {
    let mut group = c.benchmark_group("stats");
    let text = data("seed-sleep.stats.txt");
    group.throughput(Throughput::Bytes(text.len() as u64));
    group.bench_with_input("text", &text, |b, text| {
        b.iter(|| black_box(parse_stats(text)))
    });
    group.finish();
}

fn access_log(c: &mut Criterion) {
    let mut group = c.benchmark_group("access_log");
    let text = data("healthy-httpbin.istio-proxy.log");
    group.throughput(Throughput::Bytes(text.len() as u64));
    group.bench_with_input("istio_text", &text, |b, text| {
        b.iter(|| black_box(parse_log(text)))
    });
    group.finish();
}

criterion_group!(parsers, config_dump, clusters, stats, access_log);
criterion_main!(parsers);
