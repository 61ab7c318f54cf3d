//! Turning a parsed [`Cli`] into work: collect (or load) a snapshot, analyze
//! it, render the report, and map the outcome to a documented exit code.

use crate::analyze;
use crate::cli::{exit, Cli, Command, DiagnoseArgs, KubeFlags, ProxyFlags, TlsCheckArgs};
use crate::collect::{self, CollectOptions};
use crate::report::{self, Output};
use crate::snapshot::Snapshot;
use crate::target::{ClientRef, Target};
use clap::{CommandFactory, Parser};
use std::io::{IsTerminal, Write};
use std::process::ExitCode;

/// A failure that ends the run, with the exit code it maps to.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Snapshot(#[from] crate::snapshot::SnapshotError),
    #[error(transparent)]
    Collect(#[from] collect::CollectError),
    #[error("cannot write {path}: {source}")]
    Write {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Input(String),
}

impl RunError {
    fn code(&self) -> u8 {
        match self {
            RunError::Usage(_)
            | RunError::Snapshot(_)
            | RunError::Write { .. }
            | RunError::Input(_) => exit::USAGE,
            RunError::Collect(_) => exit::CLUSTER,
        }
    }
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "error: {e}");
            ExitCode::from(e.code())
        }
    }
}

/// Colour only for a terminal, and never when NO_COLOR is set (no-color.org).
fn use_color() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) && std::io::stdout().is_terminal()
}

/// Progress lines go to stderr, and only when stderr is a terminal.
fn progress() -> Box<dyn Fn(&str) + Send + Sync> {
    if std::io::stderr().is_terminal() {
        let bar = indicatif::ProgressBar::new_spinner();
        bar.enable_steady_tick(std::time::Duration::from_millis(120));
        Box::new(move |msg: &str| {
            if msg.is_empty() {
                bar.finish_and_clear();
            } else {
                bar.set_message(msg.to_string());
            }
        })
    } else {
        Box::new(|_: &str| {})
    }
}

pub fn run(cli: Cli) -> Result<u8, RunError> {
    match cli.command {
        Command::Completion { shell } => {
            let mut cmd = Cli::command();
            clap_complete::generate(shell, &mut cmd, "kubectl-mesh503", &mut std::io::stdout());
            Ok(exit::OK)
        }
        Command::Diagnose(args) => diagnose(&cli.kube, args),
        Command::TlsCheck(args) => tls_check(&cli.kube, args),
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, RunError> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| RunError::Input(format!("cannot start the async runtime: {e}")))
}

fn collect_options(
    kube: &KubeFlags,
    proxy: &ProxyFlags,
    from: &[String],
) -> Result<CollectOptions, RunError> {
    let from = from
        .iter()
        .map(|f| {
            f.parse::<ClientRef>()
                .map_err(|e| RunError::Usage(format!("--from {f:?}: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(CollectOptions {
        kubeconfig: kube.kubeconfig.clone(),
        context: kube.context.clone(),
        namespace: kube.namespace.clone(),
        istio_namespace: kube.istio_namespace.clone(),
        from,
        request_timeout: (!kube.request_timeout.is_zero()).then_some(kube.request_timeout),
        proxy_timeout: proxy.proxy_timeout,
        concurrency: proxy.concurrency.max(1),
        log_tail_lines: proxy.log_lines,
        max_clients: proxy.max_clients,
        all_namespaces: kube.all_namespaces,
    })
}

fn diagnose(kube: &KubeFlags, args: DiagnoseArgs) -> Result<u8, RunError> {
    let snapshot = match &args.snapshot {
        Some(path) => {
            if args.target.is_some() {
                return Err(RunError::Usage(
                    "give either a TARGET (live cluster) or --snapshot FILE, not both: the snapshot already names its target".into(),
                ));
            }
            Snapshot::load(path)?
        }
        None => {
            let target_text = args.target.as_deref().ok_or_else(|| {
                RunError::Usage("diagnose needs a TARGET (e.g. svc/httpbin) or --snapshot FILE; see `kubectl mesh503 diagnose --help`".into())
            })?;
            let target: Target = target_text
                .parse()
                .map_err(|e| RunError::Usage(format!("target {target_text:?}: {e}")))?;
            let opts = collect_options(kube, &args.proxy, &args.from)?;
            let progress = progress();
            let rt = runtime()?;
            let snap = rt.block_on(async {
                let (client, _ctx, ns) = collect::client(&opts).await?;
                collect::collect_for_target(&client, &target, &ns, &opts, &*progress).await
            });
            progress("");
            let snap = snap?;
            if let Some(path) = &args.save_snapshot {
                write_snapshot(&snap, path)?;
            }
            snap
        }
    };
    let report = analyze::analyze(&snapshot);
    let text = match args.output {
        Output::Table => report::table::render(&report, use_color(), None),
        Output::Json => report::json::render(&report),
    };
    print(&text)?;
    Ok(if report.has_errors() {
        exit::FINDINGS
    } else {
        exit::OK
    })
}

fn write_snapshot(snap: &Snapshot, path: &std::path::Path) -> Result<(), RunError> {
    let text = serde_json::to_string_pretty(snap).map_err(|e| RunError::Input(e.to_string()))?;
    std::fs::write(path, text + "\n").map_err(|source| RunError::Write {
        path: path.display().to_string(),
        source,
    })
}

fn print(text: &str) -> Result<(), RunError> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|_| out.flush()) {
        // `| head` closing the pipe is not an error worth reporting.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(RunError::Write {
            path: "stdout".into(),
            source: e,
        }),
        Ok(()) => Ok(()),
    }
}

fn tls_check(kube: &KubeFlags, args: TlsCheckArgs) -> Result<u8, RunError> {
    let table = if !args.config_dump.is_empty() {
        if !args.targets.is_empty() {
            return Err(RunError::Usage(
                "give pod/NAME [svc/NAME] or --config-dump FILE…, not both".into(),
            ));
        }
        let mut dumps = Vec::new();
        for path in &args.config_dump {
            let text = std::fs::read_to_string(path).map_err(|e| {
                RunError::Input(format!("cannot read config dump {}: {e}", path.display()))
            })?;
            let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
                RunError::Input(format!("config dump {} is not JSON: {e} (expected the output of `curl localhost:15000/config_dump`)", path.display()))
            })?;
            dumps.push((path.display().to_string(), v));
        }
        analyze::tls_check::from_config_dumps(&dumps).map_err(RunError::Input)?
    } else {
        let mut pod = None;
        let mut svc = None;
        for t in &args.targets {
            match t.parse::<Target>() {
                Ok(Target::Pod { name }) if pod.is_none() => pod = Some(name),
                Ok(Target::Service { name }) if svc.is_none() => svc = Some(name),
                _ => return Err(RunError::Usage(format!("tls-check takes pod/NAME and optionally svc/NAME; {t:?} is neither (or given twice)"))),
            }
        }
        let pod = pod.ok_or_else(|| {
            RunError::Usage("tls-check needs pod/NAME, or --config-dump FILE".into())
        })?;
        let opts = collect_options(kube, &args.proxy, &[])?;
        let progress = progress();
        let rt = runtime()?;
        let snap = rt.block_on(async {
            let (client, _ctx, ns) = collect::client(&opts).await?;
            collect::collect_for_pod(&client, &pod, svc.as_deref(), &ns, &opts, &*progress).await
        });
        progress("");
        analyze::tls_check::from_snapshot(&snap?)
    };
    let text = match args.output {
        Output::Table => analyze::tls_check::render_table(&table, use_color()),
        Output::Json => serde_json::to_string_pretty(&table).unwrap_or_default() + "\n",
    };
    print(&text)?;
    Ok(if table.has_conflicts() {
        exit::FINDINGS
    } else {
        exit::OK
    })
}
