//! Command-line interface, kubectl style. Parsed once into [`Cli`]; the
//! `run` module turns it into work. `bin_name` makes help read like the
//! command people type: `kubectl mesh503 …`.

use crate::report::Output;
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

/// Exit codes (also in `--help` and docs/exit-codes.md).
pub mod exit {
    /// Ran; no error-level finding.
    pub const OK: u8 = 0;
    /// Ran; at least one error-level finding (a cause of 503s).
    pub const FINDINGS: u8 = 1;
    /// Bad usage or unreadable input (flags, snapshot or config-dump file).
    pub const USAGE: u8 = 2;
    /// Could not collect: API server unreachable, target not found, forbidden.
    pub const CLUSTER: u8 = 3;
}

const EXIT_CODES: &str = "Exit codes: 0 no error-level finding; 1 error-level findings (causes of 503s); 2 bad usage or input; 3 cluster access failed or target not found.";

#[derive(Debug, Parser)]
#[command(
    name = "kubectl-mesh503",
    bin_name = "kubectl mesh503",
    version,
    about = "Explain why an Istio mesh answers 503: ranked causes, evidence, fixes",
    after_help = EXIT_CODES
)]
pub struct Cli {
    #[command(flatten)]
    pub kube: KubeFlags,
    #[command(subcommand)]
    pub command: Command,
}

/// kubectl's own connection flags, same names and meaning.
#[derive(Debug, Args, Clone)]
pub struct KubeFlags {
    /// Path to the kubeconfig file to use (default: $KUBECONFIG, which may list several files, then ~/.kube/config).
    #[arg(long, global = true)]
    pub kubeconfig: Option<PathBuf>,
    /// The name of the kubeconfig context to use.
    #[arg(long, global = true)]
    pub context: Option<String>,
    /// Namespace of the target (default: the context's namespace, else "default").
    #[arg(short = 'n', long, global = true)]
    pub namespace: Option<String>,
    /// When sampling for client pods (no --from), look in all namespaces, not only the target's.
    #[arg(short = 'A', long, global = true)]
    pub all_namespaces: bool,
    /// Time limit for each API request, e.g. 5s, 1m, 500ms (0 = none).
    #[arg(long, global = true, value_parser = parse_duration, default_value = "0")]
    pub request_timeout: std::time::Duration,
    /// Namespace of the Istio control plane (holds the `istio` mesh ConfigMap).
    #[arg(long, global = true, default_value = "istio-system")]
    pub istio_namespace: String,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Why do calls to this service fail? Ranked causes with evidence and fixes.
    #[command(after_help = EXIT_CODES)]
    Diagnose(DiagnoseArgs),
    /// Client TLS each sidecar really uses vs. the mode each server enforces.
    #[command(name = "tls-check", after_help = EXIT_CODES)]
    TlsCheck(TlsCheckArgs),
    /// Print a shell completion script.
    Completion {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

#[derive(Debug, Args)]
pub struct DiagnoseArgs {
    /// svc/NAME, deploy/NAME, pod/NAME, or a host NAME.NS.svc.cluster.local[:PORT].
    /// Not needed with --snapshot.
    pub target: Option<String>,
    /// Client pod to examine: pod/NAME or deploy/NAME (repeatable). Default: clients seen in the sidecars' data.
    #[arg(long = "from", value_name = "REF")]
    pub from: Vec<String>,
    /// Analyze a saved snapshot instead of the cluster (no cluster access at all).
    #[arg(long, value_name = "FILE", conflicts_with = "save_snapshot")]
    pub snapshot: Option<PathBuf>,
    /// Also write the collected evidence to FILE (JSON) for later or for a bug report.
    #[arg(long, value_name = "FILE")]
    pub save_snapshot: Option<PathBuf>,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value = "table")]
    pub output: Output,
    #[command(flatten)]
    pub proxy: ProxyFlags,
}

#[derive(Debug, Args, Clone)]
pub struct ProxyFlags {
    /// Time limit per sidecar (port-forward and every admin read), e.g. 5s.
    #[arg(long, value_parser = parse_duration, default_value = "5s")]
    pub proxy_timeout: std::time::Duration,
    /// Sidecars read at once.
    #[arg(long, default_value_t = 8)]
    pub concurrency: usize,
    /// Lines of the istio-proxy log to read per pod.
    #[arg(long, default_value_t = 500)]
    pub log_lines: i64,
    /// At most this many client pods are sampled when --from is not given.
    #[arg(long, default_value_t = 5)]
    pub max_clients: usize,
}

#[derive(Debug, Args)]
pub struct TlsCheckArgs {
    /// pod/NAME of the client sidecar to check, and optionally svc/NAME to limit the destinations.
    pub targets: Vec<String>,
    /// Work offline on saved `/config_dump` JSON (repeatable, one per pod); any Istio version from 1.1.
    #[arg(long = "config-dump", value_name = "FILE")]
    pub config_dump: Vec<PathBuf>,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value = "table")]
    pub output: Output,
    #[command(flatten)]
    pub proxy: ProxyFlags,
}

/// kubectl-style durations: `500ms`, `5s`, `1m`, `1h`, or a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| format!("invalid duration {s:?}: expected e.g. 500ms, 5s, 1m"))?;
    let secs = match unit {
        "" | "s" => n,
        "ms" => n / 1000.0,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        other => {
            return Err(format!(
                "invalid duration {s:?}: unknown unit {other:?} (use ms, s, m or h)"
            ))
        }
    };
    Ok(std::time::Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("5s").unwrap().as_secs(), 5);
        assert_eq!(parse_duration("250ms").unwrap().as_millis(), 250);
        assert_eq!(parse_duration("2").unwrap().as_secs(), 2);
        assert!(parse_duration("5x").unwrap_err().contains("unknown unit"));
    }

    #[test]
    fn kubectl_flags_parse_anywhere() {
        let c = Cli::try_parse_from([
            "kubectl-mesh503",
            "diagnose",
            "svc/httpbin",
            "-n",
            "foo",
            "--context",
            "lab",
            "-o",
            "json",
            "--from",
            "deploy/sleep",
            "--request-timeout",
            "3s",
        ])
        .unwrap();
        assert_eq!(c.kube.namespace.as_deref(), Some("foo"));
        assert_eq!(c.kube.context.as_deref(), Some("lab"));
        match c.command {
            Command::Diagnose(d) => {
                assert_eq!(d.output, Output::Json);
                assert_eq!(d.from, vec!["deploy/sleep"]);
            }
            _ => panic!("expected diagnose"),
        }
    }
}
