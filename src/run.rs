//! The driver of the pipeline (cli → collect → snapshot → model → analyze →
//! report): turning a parsed command line into work. [`Settings`] first
//! (every flag checked before anything else happens), then collect (or
//! load) a snapshot, analyze it, render the report, and map the outcome to
//! a documented exit code ([`Exit`]).

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use clap::Parser;

use crate::analyze;
use crate::cli::settings::{
    Diagnose, DiagnoseSource, Limits, Mode, Scan, TlsCheck, TlsCheckSource,
};
use crate::cli::{Cli, Settings};
use crate::collect::{self, CollectOptions};
use crate::envoy::config_dump::stream::DumpDocument;
use crate::envoy::config_dump::ConfigDump;
use crate::error::{ConfigDumpError, Error, Exit};
use crate::report::{self, Output};
use crate::snapshot::file::{read_json_as, InputFile, JsonDocument, OutDir, MAX_INPUT_BYTES};
use crate::snapshot::{ProxyRole, Snapshot};
use crate::target::ClientRef;

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code.into(),
        Err(e) => {
            let _ = std::io::stderr().write_all(e.render().as_bytes());
            e.exit().into()
        }
    }
}

pub fn run(cli: Cli) -> Result<Exit, Error> {
    let settings = Settings::from_cli(cli)?;
    match &settings.mode {
        Mode::Completion(shell) => {
            // The script with clap-rs/clap#6421 worked around; a closed pipe
            // (`… | head`) is an I/O error, never a panic.
            let mut out = std::io::stdout().lock();
            match crate::complete::scripts::write_script(*shell, &mut out) {
                Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(Error::Write {
                    what: "the completion script to standard output".into(),
                    source: e,
                }),
                _ => Ok(Exit::Ok),
            }
        }
        Mode::Diagnose(d) => diagnose(&settings, d),
        Mode::TlsCheck(t) => tls_check(&settings, t),
        Mode::Scan(sc) => scan(&settings, sc),
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

fn runtime() -> Result<tokio::runtime::Runtime, Error> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(Error::Runtime)
}

fn collect_options(s: &Settings, limits: &Limits, from: &[ClientRef]) -> CollectOptions {
    let c = &s.connection;
    CollectOptions {
        kubeconfig: c.kubeconfig.clone(),
        context: c.context.clone(),
        namespace: c.namespace.clone(),
        istio_namespace: c.istio_namespace.clone(),
        from: from.to_vec(),
        request_timeout: limits.request_timeout,
        timeout: limits.timeout,
        proxy_timeout: limits.proxy_timeout,
        concurrency: limits.concurrency,
        log_tail_lines: limits.log_lines,
        max_clients: limits.max_clients,
        all_namespaces: c.all_namespaces,
    }
}

/// Runs one collection on a fresh runtime, with progress on a terminal.
fn collect_with<F, Fut>(opts: &CollectOptions, work: F) -> Result<Snapshot, Error>
where
    F: FnOnce(collect::Session, &'static (dyn Fn(&str) + Send + Sync)) -> Fut,
    Fut: std::future::Future<Output = Result<Snapshot, collect::CollectError>>,
{
    let progress: &'static (dyn Fn(&str) + Send + Sync) = Box::leak(progress());
    let rt = runtime()?;
    let snap = rt.block_on(async {
        let session = collect::connect(opts).await?;
        work(session, progress).await
    });
    progress("");
    // Do not wait for work a timeout abandoned (a port-forward still open).
    rt.shutdown_background();
    Ok(snap?)
}

fn diagnose(s: &Settings, d: &Diagnose) -> Result<Exit, Error> {
    let snapshot = match &d.source {
        DiagnoseSource::Snapshot(input) => Snapshot::read(input)?,
        DiagnoseSource::Live { target, from } => {
            let opts = collect_options(s, &s.limits, from);
            collect_with(&opts, |session, progress| {
                let (target, opts) = (target.clone(), opts.clone());
                async move { collect::collect_for_target(&session, &target, &opts, progress).await }
            })?
        }
    };
    let report = analyze::analyze(&snapshot);
    let width = report::layout::detect_width();
    let text = report::render(&report, d.output, use_color(), width);
    print(&text)?;
    if let Some(dir) = &d.fix_out {
        write_fixes(dir, &report)?;
    }
    if let Some(path) = &d.save {
        snapshot.save(path).map_err(|source| Error::Write {
            what: format!("the snapshot {}", path.path().display()),
            source,
        })?;
    }
    if report.has_errors() {
        return Ok(Exit::Findings);
    }
    let missing = snapshot
        .resolved
        .as_ref()
        .map(|r| r.missing.as_slice())
        .unwrap_or_default();
    if !missing.is_empty() {
        warn_incomplete(
            missing
                .iter()
                .map(|g| format!("{}: {}", g.source, g.reason)),
        );
        return Ok(Exit::Incomplete);
    }
    Ok(Exit::Ok)
}

/// `--fix-out`: the chosen fixes as files, each written atomically; what
/// was written (and what was not) is said on stderr.
fn write_fixes(dir: &OutDir, report: &analyze::Report) -> Result<(), Error> {
    let (files, conflicts) = analyze::fix::text::fix_files(&report.findings);
    let mut written = Vec::new();
    for (name, yaml) in &files {
        let path = dir
            .write(name, yaml.as_bytes())
            .map_err(|source| Error::Write {
                what: format!("the fix {name} in {}", dir.path().display()),
                source,
            })?;
        written.push(path.display().to_string());
    }
    let mut msg = format!(
        "wrote {} to {}{}\n",
        crate::words::counts(written.len(), "fix file"),
        dir.path().display(),
        if written.is_empty() {
            " (no finding has a fix that changes an object)".to_string()
        } else {
            format!(": {}", written.join(", "))
        }
    );
    for c in conflicts {
        msg.push_str(&format!("  {c}\n"));
    }
    let _ = std::io::stderr().write_all(msg.as_bytes());
    Ok(())
}

/// Says on stderr why the run could not check (exit 4).
fn warn_incomplete(items: impl Iterator<Item = String>) {
    let mut text = String::from(
        "warning: could not check: evidence the diagnosis needs could not be read, so \"no cause found\" means nothing yet:\n",
    );
    for i in items {
        text.push_str(&format!("  - {i}\n"));
    }
    text.push_str(
        "  hint: grant the reads listed (RBAC), or name what to read (--from), and run again\n",
    );
    let _ = std::io::stderr().write_all(text.as_bytes());
}

fn print(text: &str) -> Result<(), Error> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|_| out.flush()) {
        // `| head` closing the pipe is not an error worth reporting.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(Error::Write {
            what: "the report to standard output".into(),
            source: e,
        }),
        Ok(()) => Ok(()),
    }
}

/// Reads a `--config-dump` input and refuses what is not a usable dump:
/// not JSON, a snapshot, `/clusters` output, `{}`, or a dump without a
/// single cluster or listener. The file is read once, streamed into the
/// typed dump (`envoy::config_dump::stream`): its JSON tree is never built.
pub fn load_config_dump(input: &InputFile) -> Result<(String, ConfigDump), ConfigDumpError> {
    let path = input.name();
    let doc: DumpDocument =
        read_json_as(input, MAX_INPUT_BYTES).map_err(|source| ConfigDumpError::Read {
            path: path.clone(),
            source,
        })?;
    if doc
        .top
        .schema
        .as_deref()
        .is_some_and(|s| s.starts_with("mesh503.io/snapshot/"))
    {
        return Err(ConfigDumpError::IsSnapshot { path });
    }
    if doc.top.cluster_statuses {
        return Err(ConfigDumpError::IsClusters { path });
    }
    if !doc.top.configs_list {
        return Err(ConfigDumpError::Shape {
            path,
            reason:
                "no \"configs\" list (expected the output of `curl localhost:15000/config_dump`)"
                    .into(),
        });
    }
    let dump = doc.dump.map_err(|e| ConfigDumpError::Shape {
        path: path.clone(),
        reason: e.to_string(),
    })?;
    if dump.clusters.is_empty() && dump.listeners.is_empty() {
        return Err(ConfigDumpError::Empty { path });
    }
    Ok((path, dump))
}

fn tls_check(s: &Settings, t: &TlsCheck) -> Result<Exit, Error> {
    let (table, unchecked) = match &t.source {
        TlsCheckSource::ConfigDumps(files) => {
            let dumps = files
                .iter()
                .map(load_config_dump)
                .collect::<Result<Vec<_>, _>>()?;
            let mesh = crate::model::Mesh::from_config_dumps(dumps);
            let table = analyze::tls_check::from_offline(&mesh);
            // The process ends after the report: the model of a large dump
            // (30,000 clusters and their endpoints) is not freed piece by
            // piece, which took 5% of the run.
            std::mem::forget(mesh);
            (table, None)
        }
        TlsCheckSource::Live { client, service } => {
            let opts = collect_options(s, &s.limits, &[]);
            let max = t.max_servers;
            let snap = collect_with(&opts, |session, progress| {
                let (client, service, opts) = (client.clone(), service.clone(), opts.clone());
                async move {
                    collect::collect_for_client(
                        &session,
                        &client,
                        service.as_deref(),
                        max,
                        &opts,
                        progress,
                    )
                    .await
                }
            })?;
            let table = analyze::tls_check::from_snapshot(&snap, service.as_deref());
            let unchecked =
                live_tls_unchecked(&snap, &client.to_string()).or_else(|| table.unchecked());
            (table, unchecked)
        }
    };
    let text = match t.output {
        Output::Table | Output::Wide => report::tls_check::render_table(
            &table,
            use_color(),
            report::layout::detect_width(),
            matches!(t.output, Output::Wide),
        ),
        Output::Json => report::json::to_json(&table),
        Output::Yaml => report::json::to_yaml(&table),
    };
    print(&text)?;
    let conflicts = table.has_conflicts();
    // As the model above: the process ends next.
    std::mem::forget(table);
    if conflicts {
        return Ok(Exit::Findings);
    }
    if let Some(why) = unchecked {
        warn_incomplete(std::iter::once(why));
        return Ok(Exit::Incomplete);
    }
    Ok(Exit::Ok)
}

impl JsonDocument for DumpDocument {
    fn from_slice(bytes: &[u8]) -> serde_json::Result<Self> {
        crate::envoy::config_dump::stream::from_slice(bytes)
    }
    fn from_reader<R: std::io::Read>(r: R) -> serde_json::Result<Self> {
        crate::envoy::config_dump::stream::from_reader(r)
    }
}

/// Why a live tls-check could not check the client, if it could not.
fn live_tls_unchecked(snap: &Snapshot, client: &str) -> Option<String> {
    let ev = snap.proxies.iter().find(|p| p.role == ProxyRole::Client);
    match ev {
        None => Some(format!(
            "{client} in {} runs no istio-proxy sidecar (or is not running): no client TLS to check",
            snap.namespace
        )),
        Some(e) if e.clusters_config.is_none() => {
            let gaps: Vec<String> = e
                .gaps
                .iter()
                .map(|g| format!("{}: {}", g.source, g.reason))
                .collect();
            Some(format!(
                "the sidecar of pod {}/{} could not be read ({})",
                e.namespace,
                e.pod,
                gaps.join("; ")
            ))
        }
        Some(_) => None,
    }
}

/// `scan`: config only, every Service of the namespace (or all, `-A`).
fn scan(s: &Settings, sc: &Scan) -> Result<Exit, Error> {
    let opts = collect_options(s, &s.limits, &[]);
    let snapshot = collect_with(&opts, |session, progress| {
        let opts = opts.clone();
        async move { collect::collect_for_scan(&session, &opts, progress).await }
    })?;
    let scope = (!s.connection.all_namespaces).then_some(snapshot.namespace.as_str());
    let report = analyze::scan::scan(&snapshot, scope);
    let text = match sc.output {
        Output::Table | Output::Wide => {
            report::scan::render(&report, use_color(), report::layout::detect_width())
        }
        Output::Json => report::scan::render_json(&report),
        Output::Yaml => report::json::to_yaml(&report),
    };
    print(&text)?;
    if report.has_errors() {
        return Ok(Exit::Findings);
    }
    if !report.missing.is_empty() {
        warn_incomplete(report.missing.iter().cloned());
        return Ok(Exit::Incomplete);
    }
    Ok(Exit::Ok)
}
