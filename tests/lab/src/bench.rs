//! `mesh503-lab bench`: the scale benchmark (never a test). For each mesh
//! size, in one lab: bring the generated mesh up (timed), measure the
//! memory of the lab and its Envoys and their CPU over 10 idle seconds,
//! send the seed's failing traffic, then time the plugin's `diagnose`
//! (given by path, run as a user would: a child process with the lab's
//! kubeconfig) against two floors measured in the same lab:
//!
//! (a) the reads the plugin made, replayed concurrently by a plain HTTP
//!     client: its API requests from the lab's request log, its Envoy admin
//!     requests from each sidecar's admin access log, sent straight to the
//!     API and to the Envoys' admin addresses (no port-forward);
//! (b) the minimal filtered reads a diagnosis of `foo/httpbin` needs
//!     ([`crate::bench_reads::minimal`]).
//!
//! It also records the size of a `--save-snapshot` file.

use crate::bench_reads::{self, Read, ReadSet};
use crate::generate::{self, MeshSpec};
use crate::lab::{Lab, LabOptions};
use anyhow::{anyhow, bail, Context};
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// What to run.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    pub plugin: PathBuf,
    pub sizes: Vec<usize>,
    pub runs: usize,
    pub pods_per_service: usize,
    pub envoys: usize,
    pub istio_version: String,
    /// Seconds of idle CPU measurement.
    pub idle_secs: u64,
}

/// One size's results.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct SizeResult {
    pub services: usize,
    pub pods: usize,
    pub up_secs: f64,
    pub lab_rss_mib: f64,
    pub envoys_rss_mib: f64,
    pub idle_cpu_lab: f64,
    pub idle_cpu_envoys: f64,
    pub clusters_on_client: usize,
    pub traffic: String,
    pub diagnose_median_secs: f64,
    pub diagnose_runs_secs: Vec<f64>,
    pub diagnose_peak_rss_mib: f64,
    pub diagnose_exit: i32,
    /// The last lines the plugin wrote to stderr on its first run.
    pub diagnose_stderr: String,
    pub plugin_api_requests: usize,
    pub plugin_admin_requests: usize,
    pub floor_same_secs: f64,
    pub floor_same_bytes: u64,
    pub floor_min_secs: f64,
    pub floor_min_bytes: u64,
    pub snapshot_bytes: u64,
}

fn rss_kib(pid: u32) -> u64 {
    let path = format!("/proc/{pid}/status");
    std::fs::read_to_string(path)
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// utime + stime of a process, in seconds.
fn cpu_secs(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    // Fields after the command (which may hold spaces) start after ") ".
    let rest = stat.rsplit_once(") ").map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = f.get(11).and_then(|v| v.parse().ok()).unwrap_or(0)
        + f.get(12).and_then(|v| v.parse().ok()).unwrap_or(0);
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    ticks as f64 / hz
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    match s.len() {
        0 => 0.0,
        n if n % 2 == 1 => s[n / 2],
        n => (s[n / 2 - 1] + s[n / 2]) / 2.0,
    }
}

/// A finished plugin run: wall time, peak RSS (KiB), exit code, the end of
/// what it wrote to stderr.
struct Run {
    secs: f64,
    maxrss_kib: u64,
    exit: i32,
    stderr_tail: String,
}

/// `VmHWM` (peak RSS, KiB) of a process while it runs `comm`: sampled from
/// /proc, ignoring the moment between fork and exec, when the child is still
/// a copy of the (large) lab process and `wait4`'s `ru_maxrss` counts it.
fn hwm_kib(pid: i32, comm: &str) -> Option<u64> {
    let c = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
    if c.trim_end() != comm {
        return None;
    }
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
}

/// Run the plugin once with the lab's kubeconfig; its peak RSS is sampled
/// every 5 ms from /proc (see [`hwm_kib`]). Killed after `limit`.
fn run_plugin(
    plugin: &Path,
    kubeconfig: &Path,
    args: &[&str],
    limit: Duration,
) -> anyhow::Result<Run> {
    let t0 = Instant::now();
    let mut child = Command::new(plugin)
        .args(args)
        .env("KUBECONFIG", kubeconfig)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("running {}", plugin.display()))?;
    let pid = child.id() as libc::pid_t;
    let mut out = child.stdout.take().ok_or_else(|| anyhow!("no stdout"))?;
    let mut err = child.stderr.take().ok_or_else(|| anyhow!("no stderr"))?;
    let reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = out.read_to_end(&mut buf);
        buf.len()
    });
    let err_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = err.read_to_end(&mut buf);
        let text = String::from_utf8_lossy(&buf).into_owned();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(3)..].join(" | ")
    });
    let comm: String = plugin
        .file_name()
        .map(|n| n.to_string_lossy().chars().take(15).collect())
        .unwrap_or_default();
    // Samples the peak RSS until the child is reaped; kills it after `limit`.
    let watcher = std::thread::spawn(move || {
        let end = Instant::now() + limit;
        let mut peak = 0;
        loop {
            if let Some(h) = hwm_kib(pid, &comm) {
                peak = h;
            }
            // SAFETY: signal 0 only checks the pid exists (zombies included).
            if unsafe { libc::kill(pid, 0) } != 0 {
                return peak;
            }
            if Instant::now() >= end {
                // SAFETY: plain kill(2) of our own child.
                unsafe { libc::kill(pid, libc::SIGKILL) };
                return peak;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    });
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value to overwrite.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: wait4 on our own child's pid with valid out-pointers.
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let secs = t0.elapsed().as_secs_f64();
    let _ = reader.join();
    let stderr_tail = err_reader.join().unwrap_or_default();
    let maxrss_kib = watcher.join().unwrap_or(0);
    // The child is reaped; keep std from waiting for it again.
    std::mem::forget(child);
    if r != pid {
        bail!("wait4 failed: {}", std::io::Error::last_os_error());
    }
    let exit = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        -libc::WTERMSIG(status)
    };
    Ok(Run {
        secs,
        maxrss_kib,
        exit,
        stderr_tail,
    })
}

fn admin_log_len(dir: &Path) -> u64 {
    std::fs::metadata(dir.join(crate::envoy::ADMIN_LOG))
        .map(|m| m.len())
        .unwrap_or(0)
}

/// Admin paths logged after `offset` (`"GET /config_dump?… HTTP/1.1"`).
fn admin_paths_since(dir: &Path, offset: u64) -> Vec<String> {
    let Ok(text) = std::fs::read(dir.join(crate::envoy::ADMIN_LOG)) else {
        return Vec::new();
    };
    let start = (offset as usize).min(text.len());
    String::from_utf8_lossy(&text[start..])
        .lines()
        .filter_map(|l| {
            let q = l.split_once("\"GET ")?.1;
            Some(q.split_whitespace().next()?.to_string())
        })
        .collect()
}

fn measure_size(lab_opts: &BenchOptions, n: usize) -> anyhow::Result<SizeResult> {
    let spec = MeshSpec {
        services: n,
        pods_per_service: lab_opts.pods_per_service,
        envoys: lab_opts.envoys,
        istio_version: lab_opts.istio_version.clone(),
    };
    let objects = generate::objects(&spec)?;
    let mut res = SizeResult {
        services: n,
        pods: 2 + (n - 2) * spec.pods_per_service,
        ..Default::default()
    };
    eprintln!("bench: N={n}: starting the lab");
    let t0 = Instant::now();
    let lab = Lab::start_objects(objects, LabOptions::default())?;
    res.up_secs = t0.elapsed().as_secs_f64();
    if !lab.errors().is_empty() {
        bail!("N={n}: the lab reported errors: {:?}", lab.errors());
    }
    let me = std::process::id();
    let envoys = lab.envoy_pids();
    std::thread::sleep(Duration::from_secs(2));
    let lab_cpu0 = cpu_secs(me);
    let env_cpu0: f64 = envoys.iter().map(|p| cpu_secs(*p)).sum();
    std::thread::sleep(Duration::from_secs(lab_opts.idle_secs));
    let secs = lab_opts.idle_secs as f64;
    res.idle_cpu_lab = (cpu_secs(me) - lab_cpu0) / secs;
    res.idle_cpu_envoys = (envoys.iter().map(|p| cpu_secs(*p)).sum::<f64>() - env_cpu0) / secs;
    res.lab_rss_mib = mib(rss_kib(me));
    res.envoys_rss_mib = mib(envoys.iter().map(|p| rss_kib(*p)).sum());
    let sidecars = lab.sidecars();
    let client = sidecars
        .iter()
        .find(|(k, _, _)| k.starts_with("foo/sleep-"))
        .ok_or_else(|| anyhow!("no foo/sleep sidecar"))?
        .clone();
    res.clusters_on_client = lab.block_on(bench_reads::count_clusters(client.1))?;
    let traffic = lab.curl("foo/sleep", "http://httpbin.foo:8000/get", 10, 2)?;
    let mut codes = std::collections::BTreeMap::<String, usize>::new();
    for r in &traffic {
        let k = match r {
            Ok(r) => r.status.to_string(),
            Err(e) => e.clone(),
        };
        *codes.entry(k).or_default() += 1;
    }
    res.traffic = codes
        .iter()
        .map(|(k, v)| format!("{v}×{k}"))
        .collect::<Vec<_>>()
        .join(", ");
    std::thread::sleep(Duration::from_millis(1200)); // access log flush
    let kubeconfig = lab.kubeconfig().to_path_buf();
    let limit = Duration::from_secs(600);
    let args = ["diagnose", "svc/httpbin", "-n", "foo"];
    // One run to record what the plugin reads.
    let seq0 = lab.requests().last().map(|r| r.seq).unwrap_or(0);
    let offsets: Vec<u64> = sidecars.iter().map(|(_, _, d)| admin_log_len(d)).collect();
    let first = run_plugin(&lab_opts.plugin, &kubeconfig, &args, limit)?;
    res.diagnose_exit = first.exit;
    res.diagnose_stderr = first.stderr_tail.clone();
    let api: Vec<Read> = lab
        .requests()
        .into_iter()
        .filter(|r| r.seq > seq0 && matches!(r.verb.as_str(), "get" | "list"))
        .map(|r| Read::api(&r.path, &r.query))
        .collect();
    // Envoy writes its admin access log out every second (the sidecars run
    // with `--file-flush-interval-msec 1000`): a run shorter than that is
    // not in the file yet.
    std::thread::sleep(Duration::from_millis(1500));
    let mut admin = Vec::new();
    for ((_, addr, dir), off) in sidecars.iter().zip(&offsets) {
        for p in admin_paths_since(dir, *off) {
            admin.push(Read::admin(*addr, &p));
        }
    }
    res.plugin_api_requests = api.len();
    res.plugin_admin_requests = admin.len();
    let same = ReadSet {
        reads: api.into_iter().chain(admin).collect(),
    };
    let mut runs = vec![first.secs];
    let mut peak = first.maxrss_kib;
    for _ in 1..lab_opts.runs {
        let r = run_plugin(&lab_opts.plugin, &kubeconfig, &args, limit)?;
        runs.push(r.secs);
        peak = peak.max(r.maxrss_kib);
    }
    res.diagnose_median_secs = median(&runs);
    res.diagnose_runs_secs = runs;
    res.diagnose_peak_rss_mib = mib(peak);
    let server = sidecars
        .iter()
        .find(|(k, _, _)| k.starts_with("foo/httpbin-"))
        .ok_or_else(|| anyhow!("no foo/httpbin sidecar"))?
        .clone();
    let minimal = bench_reads::minimal(&server, &client);
    let api_url = lab.api_url();
    let (mut same_t, mut min_t) = (Vec::new(), Vec::new());
    for _ in 0..lab_opts.runs {
        let (t, b) = lab.block_on(same.fetch_all(&api_url))?;
        same_t.push(t);
        res.floor_same_bytes = b;
        let (t, b) = lab.block_on(minimal.fetch_all(&api_url))?;
        min_t.push(t);
        res.floor_min_bytes = b;
    }
    res.floor_same_secs = median(&same_t);
    res.floor_min_secs = median(&min_t);
    let snap = lab.kubeconfig().with_file_name("bench.snapshot.json");
    let _ = std::fs::remove_file(&snap);
    let snap_s = snap.display().to_string();
    run_plugin(
        &lab_opts.plugin,
        &kubeconfig,
        &[
            "diagnose",
            "svc/httpbin",
            "-n",
            "foo",
            "--save-snapshot",
            &snap_s,
        ],
        limit,
    )?;
    res.snapshot_bytes = std::fs::metadata(&snap).map(|m| m.len()).unwrap_or(0);
    // MESH503_BENCH_KEEP=DIR keeps each size's snapshot (DIR/N.snapshot.json).
    if let Some(dir) = std::env::var_os("MESH503_BENCH_KEEP") {
        let _ = std::fs::copy(
            &snap,
            std::path::Path::new(&dir).join(format!("{n}.snapshot.json")),
        );
    }
    let t_stop = Instant::now();
    drop(lab);
    eprintln!(
        "bench: N={n}: lab stopped in {:.1}s",
        t_stop.elapsed().as_secs_f64()
    );
    Ok(res)
}

/// Run every size; print one line per size as it finishes and a table.
pub fn run(opts: &BenchOptions) -> anyhow::Result<Vec<SizeResult>> {
    if !opts.plugin.is_file() {
        bail!(
            "--plugin {}: no such file (build it with `cargo build --release` first)",
            opts.plugin.display()
        );
    }
    if opts.runs == 0 || opts.runs > 50 {
        bail!("--runs {}: must be 1 to 50", opts.runs);
    }
    let mut all = Vec::new();
    for &n in &opts.sizes {
        let r = measure_size(opts, n).with_context(|| format!("N={n}"))?;
        println!("{}", serde_json::to_string(&r)?);
        all.push(r);
    }
    println!("{}", table(&all));
    Ok(all)
}

/// The results as a Markdown table.
pub fn table(rows: &[SizeResult]) -> String {
    let mut s = String::from(
        "| N | pods | lab up | RSS lab | RSS Envoys | idle CPU lab / Envoys | clusters on sleep | diagnose median | diagnose peak RSS | floor (a) same reads | (b) minimal reads | diagnose ÷ (a) | diagnose ÷ (b) | bytes (a) | bytes (b) | snapshot |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for r in rows {
        s.push_str(&format!(
            "| {} | {} | {:.1} s | {:.0} MiB | {:.0} MiB | {:.3} / {:.3} cores | {} | {:.2} s | {:.0} MiB | {:.2} s | {:.3} s | {:.1}× | {:.1}× | {:.1} MB | {:.2} MB | {:.2} MB |\n",
            r.services,
            r.pods,
            r.up_secs,
            r.lab_rss_mib,
            r.envoys_rss_mib,
            r.idle_cpu_lab,
            r.idle_cpu_envoys,
            r.clusters_on_client,
            r.diagnose_median_secs,
            r.diagnose_peak_rss_mib,
            r.floor_same_secs,
            r.floor_min_secs,
            r.diagnose_median_secs / r.floor_same_secs.max(1e-6),
            r.diagnose_median_secs / r.floor_min_secs.max(1e-6),
            r.floor_same_bytes as f64 / 1e6,
            r.floor_min_bytes as f64 / 1e6,
            r.snapshot_bytes as f64 / 1e6,
        ));
    }
    s
}
