//! Wall time of a full live `kubectl mesh503 diagnose` of the seed in the lab
//! (discovery, every list, port-forwards to both sidecars, admin reads, logs,
//! analysis, report). Target: under 2 s.
//!
//!     ENVOY_BIN=… cargo bench --bench diagnose            # 10 runs
//!     ENVOY_BIN=… cargo bench --bench diagnose -- 30      # 30 runs
//!
//! Not a test: it prints numbers and asserts nothing about them.

use mesh503_lab::lab::{Lab, LabOptions};
use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

fn main() {
    let runs: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(10);
    let scenario = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/scenarios/seed-2018.yaml");
    let t = Instant::now();
    let lab = Lab::start(&scenario, LabOptions::default()).expect("lab starts");
    println!("lab up (API + 2 sidecars ready): {:?}", t.elapsed());
    let _ = lab.curl("foo/sleep", "http://httpbin.foo:8000/get", 3, 1);
    let bin = env!("CARGO_BIN_EXE_kubectl-mesh503");
    let mut times = Vec::new();
    for _ in 0..runs {
        let t = Instant::now();
        let out = Command::new(bin)
            .args(["--kubeconfig"])
            .arg(lab.kubeconfig())
            .args(["diagnose", "svc/httpbin", "-n", "foo", "-o", "json"])
            .env("NO_COLOR", "1")
            .output()
            .expect("plugin runs");
        times.push(t.elapsed().as_secs_f64());
        assert!(
            out.status.code() == Some(1),
            "diagnose finds the seed's error: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    times.sort_by(|a, b| a.total_cmp(b));
    let median = times[times.len() / 2];
    println!(
        "diagnose svc/httpbin (seed-2018), {runs} runs: min {:.3}s  median {median:.3}s  max {:.3}s  (target < 2s)",
        times[0],
        times[times.len() - 1]
    );
}
