//! `mesh503-lab`: run a scenario by hand, or send traffic through it.
//!
//!     mesh503-lab up tests/scenarios/seed-2018.yaml
//!     export KUBECONFIG=…            # printed by `up`
//!     mesh503-lab curl --from foo/sleep http://httpbin.foo:8000/get
//!     mesh503-lab curl --via-gateway http://httpbin.example.com/get

use clap::{Parser, Subcommand};
use mesh503_lab::curl::{curl, curl_via_gateway, ApiAccess};
use mesh503_lab::lab::{Lab, LabOptions};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "mesh503-lab",
    version,
    about = "A local Istio-like mesh: Kubernetes API on loopback, real Envoy sidecars"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run a scenario (a YAML file or directory) in the foreground until Ctrl-C or SIGTERM.
    Up {
        scenario: PathBuf,
        /// Answer 403 outside this ClusterRole's rules.
        #[arg(long)]
        rbac: Option<PathBuf>,
        /// Require this bearer token.
        #[arg(long)]
        token: Option<String>,
        /// Write the kubeconfig here (default: a temp file, printed).
        #[arg(long)]
        kubeconfig_out: Option<PathBuf>,
        /// Append every API request (verb, path, query, user, status) to
        /// this file as JSON lines.
        #[arg(long)]
        request_log: Option<PathBuf>,
    },
    /// Send requests from a pod as its app would, through its sidecar, or
    /// from outside the mesh through an ingress gateway (`--via-gateway`).
    Curl {
        /// kubeconfig of a running lab (default: $KUBECONFIG).
        #[arg(long, env = "KUBECONFIG")]
        kubeconfig: PathBuf,
        /// `<namespace>/<pod or deployment>`.
        #[arg(
            long,
            required_unless_present = "via_gateway",
            conflicts_with = "via_gateway"
        )]
        from: Option<String>,
        /// Call from outside the mesh through this ingress gateway Service
        /// (`--via-gateway=<namespace>/<name>`; bare `--via-gateway`:
        /// `istio-system/istio-ingressgateway`);
        /// the URL's host is the Host header, its port the Service port.
        #[arg(long, value_name = "NS/SERVICE", num_args = 0..=1, require_equals = true,
              default_missing_value = "istio-system/istio-ingressgateway")]
        via_gateway: Option<String>,
        url: String,
        /// Number of requests.
        #[arg(short = 'n', long, default_value_t = 1)]
        count: usize,
        /// Requests in flight at once.
        #[arg(short = 'c', long, default_value_t = 1)]
        concurrency: usize,
    },
    /// The scale benchmark (not a test): for each size, bring a generated
    /// mesh up, measure the lab, and time the plugin's `diagnose` against
    /// plain-client floors (see docs/performance.md).
    Bench {
        /// The binary to time, run as a user runs it (the release build of the
        /// plugin; the lab never links to it).
        #[arg(long)]
        plugin: PathBuf,
        /// Mesh sizes (services), comma-separated.
        #[arg(long, value_delimiter = ',', default_value = "100,1000,2000,5000")]
        sizes: Vec<usize>,
        /// diagnose runs (and floor runs) per size; the median is reported.
        #[arg(long, default_value_t = 5)]
        runs: usize,
        #[arg(long, default_value_t = 3)]
        pods_per_service: usize,
        #[arg(long, default_value_t = 2)]
        envoys: usize,
        #[arg(long, default_value = "1.24")]
        istio_version: String,
        /// Seconds of idle CPU measurement per size.
        #[arg(long, default_value_t = 10)]
        idle_secs: u64,
    },
    /// Write a scenario of N services with the seed's break on foo/httpbin
    /// (plain YAML, to stdout or --out) for benchmarks.
    Generate {
        /// Services in total (foo/httpbin and foo/sleep included).
        #[arg(long)]
        services: usize,
        /// Replicas of each generated Deployment (pods without a running Envoy).
        #[arg(long, default_value_t = 3)]
        pods_per_service: usize,
        /// Pods with a real Envoy (foo/sleep, foo/httpbin, then one pod of
        /// each of the first generated services).
        #[arg(long, default_value_t = 2)]
        envoys: usize,
        /// The modelled Istio release.
        #[arg(long, default_value = "1.24")]
        istio_version: String,
        /// Write here instead of stdout.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("mesh503-lab: error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.cmd {
        Cmd::Up {
            scenario,
            rbac,
            token,
            kubeconfig_out,
            request_log,
        } => {
            let lab = Lab::start(
                &scenario,
                LabOptions {
                    rbac,
                    token,
                    envoy_bin: None,
                    kubeconfig: kubeconfig_out,
                    request_log,
                },
            )?;
            for e in lab.errors() {
                eprintln!("mesh503-lab: warning: {e}");
            }
            for n in lab.nacks() {
                eprintln!("mesh503-lab: NACK: {n}");
            }
            println!("export KUBECONFIG={}", lab.kubeconfig().display());
            eprintln!("mesh503-lab: API at {} — Ctrl-C to stop", lab.api_url());
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            rt.block_on(async {
                let mut term =
                    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
                anyhow::Ok(())
            })?;
            drop(lab);
            eprintln!("mesh503-lab: stopped");
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Bench {
            plugin,
            sizes,
            runs,
            pods_per_service,
            envoys,
            istio_version,
            idle_secs,
        } => {
            mesh503_lab::bench::run(&mesh503_lab::bench::BenchOptions {
                plugin,
                sizes,
                runs,
                pods_per_service,
                envoys,
                istio_version,
                idle_secs,
            })?;
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Generate {
            services,
            pods_per_service,
            envoys,
            istio_version,
            out,
        } => {
            let yaml = mesh503_lab::generate::to_yaml(&mesh503_lab::generate::MeshSpec {
                services,
                pods_per_service,
                envoys,
                istio_version,
            })?;
            match out {
                Some(p) => std::fs::write(&p, yaml)
                    .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", p.display()))?,
                None => print!("{yaml}"),
            }
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Curl {
            kubeconfig,
            from,
            via_gateway,
            url,
            count,
            concurrency,
        } => {
            let access = ApiAccess::from_kubeconfig(&kubeconfig)?;
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let results = rt.block_on(async {
                match (&from, &via_gateway) {
                    (_, Some(gw)) => curl_via_gateway(&access, gw, &url, count, concurrency).await,
                    (Some(from), None) => curl(&access, from, &url, count, concurrency).await,
                    (None, None) => anyhow::bail!("give --from <ns>/<pod> or --via-gateway"),
                }
            })?;
            let mut failed = false;
            if count <= 1 {
                match &results[0] {
                    Ok(r) => println!("{r}"),
                    Err(e) => {
                        eprintln!("mesh503-lab: {e}");
                        failed = true;
                    }
                }
            } else {
                let mut by_code = std::collections::BTreeMap::<String, usize>::new();
                for r in &results {
                    let k = match r {
                        Ok(r) => r.status.to_string(),
                        Err(e) => e.clone(),
                    };
                    *by_code.entry(k).or_default() += 1;
                }
                for (k, n) in by_code {
                    println!("{k}: {n}");
                }
            }
            Ok(if failed {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            })
        }
    }
}
