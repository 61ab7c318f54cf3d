//! The command line as clap parses it ("low-level" arguments, ripgrep's
//! term): plain strings and numbers, no interpretation. Every flag is read
//! once, by [`super::settings::Settings::from_cli`]; nothing else looks at
//! these structs. `bin_name` makes help read like the command people type:
//! `kubectl mesh503 …`.

use crate::report::Output;
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

/// Shown under `--help` and `diagnose --help`.
pub const EXIT_CODES: &str = "Exit codes: 0 no error-level finding; 1 error-level findings (causes of 503s); \
2 bad usage or input; 3 cluster access failed (unreachable, no answer in time, target not found or forbidden, \
API lost during the run); 4 ran but could not check (evidence the diagnosis needs could not be read; see the report's \
\"Could not see\"); 5 could not write the snapshot file, a --fix-out file or the output. Details: docs/exit-codes.md.";

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

/// kubectl's own connection flags, same names and meaning, plus the run's limits.
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
    /// Time limit for each API request, kubectl's syntax: 10s, 1m30s, 500ms, or whole seconds; 0 = no per-request limit (--timeout still applies).
    #[arg(
        long,
        global = true,
        value_name = "DURATION",
        default_value = "10s",
        allow_hyphen_values = true
    )]
    pub request_timeout: String,
    /// Time limit for the whole run (every API request, port-forward and sidecar read shares it), e.g. 60s, 2m. Must be more than 0.
    #[arg(
        long,
        global = true,
        value_name = "DURATION",
        default_value = "60s",
        allow_hyphen_values = true
    )]
    pub timeout: String,
    /// Namespace of the Istio control plane (holds the `istio` mesh ConfigMap).
    #[arg(long, global = true, default_value = "istio-system")]
    pub istio_namespace: String,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Why do calls to this service fail? Ranked causes with evidence and fixes.
    #[command(after_help = EXIT_CODES)]
    Diagnose(DiagnoseArgs),
    /// Client TLS a sidecar really uses to each destination vs. the mode each server sidecar enforces.
    #[command(name = "tls-check", after_help = TLS_CHECK_EXIT_CODES)]
    TlsCheck(TlsCheckArgs),
    /// Every Service at once, from config only (no port-forward): the causes config alone shows, grouped by service.
    #[command(after_help = SCAN_EXIT_CODES)]
    Scan(ScanArgs),
    /// Print a shell completion script.
    Completion {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

/// Shown under `tls-check --help`.
pub const TLS_CHECK_EXIT_CODES: &str = "Exit codes: 0 every destination checked is OK or AUTO; 1 at least one CONFLICT (that client cannot reach that server: 503); \
2 bad usage or input (flags, a --config-dump file); 3 cluster access failed (unreachable, no answer in time, the pod, deployment or service not found or forbidden); \
4 could not check (the client sidecar could not be read, or no destination could be decided: see the notes); 5 could not write the output. Details: docs/exit-codes.md.";

/// Shown under `scan --help`.
pub const SCAN_EXIT_CODES: &str = "Exit codes: 0 no error-level finding in any Service scanned; 1 error-level findings (causes of 503s); \
2 bad usage; 3 cluster access failed (unreachable, no answer in time, credentials refused, API lost during the run); \
4 ran, found no error, but could not check (Services, Endpoints, DestinationRules or PeerAuthentications could not be listed: see \"Could not see\"); 5 could not write the output. Details: docs/exit-codes.md.";

#[derive(Debug, Args)]
pub struct DiagnoseArgs {
    /// svc/NAME, deploy/NAME, pod/NAME, or a host NAME.NS.svc.cluster.local[:PORT].
    /// Not needed with --snapshot.
    pub target: Option<String>,
    /// When sampling for client pods (no --from), look in all namespaces, not only the target's.
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,
    /// Client pod to examine: pod/NAME or deploy/NAME, optionally NAMESPACE/ in front (foo/deploy/sleep); repeatable. Default: clients seen in the sidecars' data.
    #[arg(long = "from", value_name = "REF")]
    pub from: Vec<String>,
    /// Analyze a saved snapshot instead of the cluster (no cluster access at all); `-` reads standard input. At most 512 MiB.
    #[arg(long, value_name = "FILE", conflicts_with = "save_snapshot")]
    pub snapshot: Option<PathBuf>,
    /// Also write the collected evidence, redacted, to FILE (JSON) for later or for a bug report. The directory is checked before collecting; the file is replaced atomically.
    #[arg(long, value_name = "FILE")]
    pub save_snapshot: Option<PathBuf>,
    /// Also write each chosen fix as a file in DIR (an existing directory; checked before collecting): one complete manifest per object, `<kind>-<namespace>-<name>.yaml`, each replaced atomically; apply with `kubectl apply -f DIR/<file>`.
    #[arg(long, value_name = "DIR")]
    pub fix_out: Option<PathBuf>,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value = "table")]
    pub output: Output,
    #[command(flatten)]
    pub proxy: ProxyFlags,
}

#[derive(Debug, Args, Clone)]
pub struct ProxyFlags {
    /// Time limit per sidecar (port-forward, every admin read and the log), e.g. 5s; within --timeout.
    #[arg(
        long,
        value_name = "DURATION",
        default_value = "5s",
        allow_hyphen_values = true
    )]
    pub proxy_timeout: String,
    /// Sidecars read at once (1-64).
    #[arg(long, default_value_t = 8)]
    pub concurrency: u64,
    /// Lines of the istio-proxy log to read per pod (1-100000).
    #[arg(long, default_value_t = 500)]
    pub log_lines: u64,
    /// At most this many client pods are sampled when --from is not given (1-50).
    #[arg(long, default_value_t = 5)]
    pub max_clients: u64,
}

#[derive(Debug, Args)]
pub struct TlsCheckArgs {
    /// The client: pod/NAME, or deploy/NAME (a ready pod of it is read); optionally svc/NAME to show only that service's destinations.
    /// The server sidecars behind each destination the client lists are read too (see --max-servers).
    pub targets: Vec<String>,
    /// Work offline on saved `/config_dump` JSON (repeatable, one per pod; `-` reads standard input); any Istio version from 1.1. At most 512 MiB each.
    #[arg(long = "config-dump", value_name = "FILE")]
    pub config_dump: Vec<PathBuf>,
    /// At most this many server sidecars are read (one per destination service, in host order); the notes name those not read (1-50).
    #[arg(long, default_value_t = 10)]
    pub max_servers: u64,
    /// Output format: a table, or the versioned JSON document (mesh503.io/tls-check/v1).
    #[arg(short = 'o', long, value_enum, default_value = "table")]
    pub output: Output,
    /// Time limit per sidecar (port-forward and every admin read), e.g. 5s; within --timeout.
    #[arg(
        long,
        value_name = "DURATION",
        default_value = "5s",
        allow_hyphen_values = true
    )]
    pub proxy_timeout: String,
    /// Sidecars read at once (1-64).
    #[arg(long, default_value_t = 8)]
    pub concurrency: u64,
}

#[derive(Debug, Args)]
pub struct ScanArgs {
    /// Scan every namespace (default: the one of -n, else the context's).
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,
    /// Output format: findings grouped by Service, or the versioned JSON document (mesh503.io/scan/v1).
    #[arg(short = 'o', long, value_enum, default_value = "table")]
    pub output: Output,
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
        assert_eq!(c.kube.request_timeout, "3s");
        assert_eq!(c.kube.timeout, "60s");
        match c.command {
            Command::Diagnose(d) => {
                assert_eq!(d.output, Output::Json);
                assert_eq!(d.from, vec!["deploy/sleep"]);
            }
            _ => panic!("expected diagnose"),
        }
    }
}
