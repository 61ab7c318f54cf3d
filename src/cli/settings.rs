//! [`Settings::from_cli`]: the parsed command line turned into what the run
//! does — the only place flags are interpreted. Targets and `--from` are
//! parsed, durations read with kubectl's syntax ([`super::duration`]) and
//! bounded, counts checked against their ranges, namespaces validated as
//! Kubernetes validates them (before any of them can reach a URL), and the
//! `--save-snapshot` path checked before anything is collected. Every
//! refusal is a [`UsageError`] (exit 2) that names the flag and the value.

use std::path::PathBuf;
use std::time::Duration;

use super::args::{Cli, Command, DiagnoseArgs, KubeFlags, ProxyFlags, ScanArgs, TlsCheckArgs};
use super::duration::{self, DurationError};
use crate::report::Output;
use crate::snapshot::file::{InputFile, OutDir, SavePath};
use crate::target::{dns1123_label, ClientRef, Target, TargetError};

/// Longest accepted value of any time flag. A diagnosis that needs more
/// than a day is not one; a bound keeps every deadline computable.
pub const MAX_DURATION: Duration = Duration::from_secs(24 * 3600);

/// Why the command line was refused (exit 2).
#[derive(Debug, thiserror::Error)]
pub enum UsageError {
    #[error("{flag} {value:?}: {source}")]
    Duration {
        flag: &'static str,
        value: String,
        source: DurationError,
    },
    #[error("{flag} {value}: out of range; must be {range}")]
    OutOfRange {
        flag: &'static str,
        value: String,
        range: &'static str,
    },
    #[error("{flag} {value:?} is not a valid namespace: {reason}")]
    Namespace {
        flag: &'static str,
        value: String,
        reason: String,
    },
    #[error("target {input:?}: {source}")]
    Target { input: String, source: TargetError },
    #[error("--from {input:?}: {source}")]
    From { input: String, source: TargetError },
    #[error("{what}")]
    Missing { what: &'static str, hint: String },
    #[error("{what}")]
    Conflict { what: &'static str, hint: String },
    #[error(
        "tls-check takes pod/NAME or deploy/NAME, and optionally svc/NAME; {input:?} is none of them (or a second one)"
    )]
    TlsCheckTarget { input: String },
    #[error("--config-dump - (standard input) can be given once")]
    StdinTwice,
    #[error("--save-snapshot {path}: {reason}")]
    SavePath { path: String, reason: String },
    #[error("--fix-out {path}: {reason}")]
    FixOut { path: String, reason: String },
}

impl UsageError {
    /// What to do about it.
    pub fn hint(&self) -> String {
        match self {
            UsageError::Duration { .. } => "durations use kubectl's syntax: 10s, 1m30s, 500ms, 2h, or a whole number of seconds".into(),
            UsageError::OutOfRange { flag, .. } => format!("see `kubectl mesh503 --help` for {flag}"),
            UsageError::Namespace { .. } => "a namespace is a DNS-1123 label: lowercase letters, digits and '-', starting and ending with a letter or digit, at most 63 characters (`kubectl get namespaces` lists them)".into(),
            UsageError::Target { .. } => "see `kubectl mesh503 diagnose --help` for the target forms".into(),
            UsageError::From { .. } => "--from takes pod/NAME or deploy/NAME, optionally NAMESPACE/ in front".into(),
            UsageError::Missing { hint, .. } | UsageError::Conflict { hint, .. } => hint.clone(),
            UsageError::TlsCheckTarget { .. } => "e.g. `kubectl mesh503 tls-check pod/sleep-1 svc/httpbin -n foo`".into(),
            UsageError::StdinTwice => "save the other dumps to files".into(),
            UsageError::SavePath { .. } => "give a file in an existing, writable directory; it is written to a temporary file there and renamed".into(),
            UsageError::FixOut { .. } => "give an existing, writable directory (`mkdir -p DIR`); each fix is written to a temporary file there and renamed".into(),
        }
    }
}

/// Everything the run needs, interpreted and checked.
#[derive(Debug, Clone)]
pub struct Settings {
    pub connection: Connection,
    pub limits: Limits,
    pub mode: Mode,
}

/// Where and as whom to connect (kubectl's flags).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    pub kubeconfig: Option<PathBuf>,
    pub context: Option<String>,
    /// `-n`, validated as a DNS-1123 label.
    pub namespace: Option<String>,
    /// `--istio-namespace`, validated as a DNS-1123 label.
    pub istio_namespace: String,
    pub all_namespaces: bool,
}

/// Time and size limits of the run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// `--request-timeout`; `None` for `0` (no per-request limit).
    pub request_timeout: Option<Duration>,
    /// `--timeout`: the whole run.
    pub timeout: Duration,
    /// `--proxy-timeout`: one sidecar's reads.
    pub proxy_timeout: Duration,
    pub concurrency: usize,
    pub log_lines: u32,
    pub max_clients: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            request_timeout: Some(Duration::from_secs(10)),
            timeout: Duration::from_secs(60),
            proxy_timeout: Duration::from_secs(5),
            concurrency: 8,
            log_lines: 500,
            max_clients: 5,
        }
    }
}

#[derive(Debug, Clone)]
pub enum Mode {
    Completion(clap_complete::Shell),
    Diagnose(Diagnose),
    TlsCheck(TlsCheck),
    Scan(Scan),
}

/// `scan`: which namespaces, and how to print.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scan {
    /// `-A`: every namespace; else `-n` (or the context's namespace).
    pub all_namespaces: bool,
    pub output: Output,
}

#[derive(Debug, Clone)]
pub struct Diagnose {
    pub source: DiagnoseSource,
    pub output: Output,
    pub save: Option<SavePath>,
    /// `--fix-out`: where to write the chosen fixes.
    pub fix_out: Option<OutDir>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DiagnoseSource {
    Live {
        target: Target,
        from: Vec<ClientRef>,
    },
    Snapshot(InputFile),
}

#[derive(Debug, Clone)]
pub struct TlsCheck {
    pub source: TlsCheckSource,
    pub output: Output,
    /// `--max-servers`: server sidecars read at most.
    pub max_servers: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsCheckSource {
    Live {
        /// pod/NAME or deploy/NAME (a ready pod of it), optionally NS/ in front.
        client: ClientRef,
        service: Option<String>,
    },
    ConfigDumps(Vec<InputFile>),
}

impl Settings {
    /// Interprets the parsed command line. Checks the `--save-snapshot`
    /// directory on disk (nothing else touches the file system or network).
    pub fn from_cli(cli: Cli) -> Result<Settings, UsageError> {
        let mut connection = connection(&cli.kube)?;
        let (request_timeout, timeout) = run_times(&cli.kube)?;
        let with_proxy = |p: &ProxyFlags| proxy_limits(p, request_timeout, timeout);
        let (limits, mode) = match cli.command {
            Command::Completion { shell } => (
                Limits {
                    request_timeout,
                    timeout,
                    ..Limits::default()
                },
                Mode::Completion(shell),
            ),
            Command::Diagnose(args) => {
                connection.all_namespaces = args.all_namespaces;
                (with_proxy(&args.proxy)?, Mode::Diagnose(diagnose(args)?))
            }
            Command::TlsCheck(args) => {
                let proxy = ProxyFlags {
                    proxy_timeout: args.proxy_timeout.clone(),
                    concurrency: args.concurrency,
                    // Not read by tls-check (no log, no client sampling).
                    log_lines: 500,
                    max_clients: 5,
                };
                (with_proxy(&proxy)?, Mode::TlsCheck(tls_check(args)?))
            }
            Command::Scan(args) => {
                connection.all_namespaces = args.all_namespaces;
                (
                    Limits {
                        request_timeout,
                        timeout,
                        ..Limits::default()
                    },
                    Mode::Scan(scan(args)),
                )
            }
        };
        Ok(Settings {
            connection,
            limits,
            mode,
        })
    }
}

fn namespace(flag: &'static str, value: &str) -> Result<String, UsageError> {
    dns1123_label(value).map_err(|reason| UsageError::Namespace {
        flag,
        value: value.to_string(),
        reason,
    })?;
    Ok(value.to_string())
}

fn connection(k: &KubeFlags) -> Result<Connection, UsageError> {
    Ok(Connection {
        kubeconfig: k.kubeconfig.clone(),
        context: k.context.clone(),
        namespace: k
            .namespace
            .as_deref()
            .map(|n| namespace("-n/--namespace", n))
            .transpose()?,
        istio_namespace: namespace("--istio-namespace", &k.istio_namespace)?,
        all_namespaces: false,
    })
}

/// A time flag: kubectl syntax, at most [`MAX_DURATION`]; zero allowed only
/// where it means "no limit".
fn time_flag(flag: &'static str, value: &str, zero_ok: bool) -> Result<Duration, UsageError> {
    let d = duration::parse(value).map_err(|source| match source {
        DurationError::TooLarge { .. } => UsageError::OutOfRange {
            flag,
            value: value.to_string(),
            range: "at most 24h",
        },
        source => UsageError::Duration {
            flag,
            value: value.to_string(),
            source,
        },
    })?;
    if d > MAX_DURATION {
        return Err(UsageError::OutOfRange {
            flag,
            value: value.to_string(),
            range: "at most 24h",
        });
    }
    if d.is_zero() && !zero_ok {
        return Err(UsageError::OutOfRange {
            flag,
            value: value.to_string(),
            range: "more than 0 (e.g. 60s)",
        });
    }
    Ok(d)
}

fn run_times(k: &KubeFlags) -> Result<(Option<Duration>, Duration), UsageError> {
    let request = time_flag("--request-timeout", &k.request_timeout, true)?;
    let timeout = time_flag("--timeout", &k.timeout, false)?;
    Ok(((!request.is_zero()).then_some(request), timeout))
}

fn count(flag: &'static str, value: u64, max: u64, range: &'static str) -> Result<u64, UsageError> {
    if value == 0 || value > max {
        return Err(UsageError::OutOfRange {
            flag,
            value: value.to_string(),
            range,
        });
    }
    Ok(value)
}

fn proxy_limits(
    p: &ProxyFlags,
    request_timeout: Option<Duration>,
    timeout: Duration,
) -> Result<Limits, UsageError> {
    let as_usize = |v: u64| usize::try_from(v).unwrap_or(usize::MAX);
    Ok(Limits {
        request_timeout,
        timeout,
        proxy_timeout: time_flag("--proxy-timeout", &p.proxy_timeout, false)?,
        concurrency: as_usize(count("--concurrency", p.concurrency, 64, "from 1 to 64")?),
        log_lines: u32::try_from(count(
            "--log-lines",
            p.log_lines,
            100_000,
            "from 1 to 100000",
        )?)
        .unwrap_or(100_000),
        max_clients: as_usize(count("--max-clients", p.max_clients, 50, "from 1 to 50")?),
    })
}

fn diagnose(args: DiagnoseArgs) -> Result<Diagnose, UsageError> {
    let source = match (&args.snapshot, &args.target) {
        (Some(_), Some(_)) => {
            return Err(UsageError::Conflict {
                what: "give either a TARGET (live cluster) or --snapshot FILE, not both: the snapshot already names its target",
                hint: "drop the TARGET to analyze the snapshot as it was taken".into(),
            })
        }
        (Some(path), None) => {
            if !args.from.is_empty() {
                return Err(UsageError::Conflict {
                    what: "--from chooses clients to read from the cluster; with --snapshot nothing is read",
                    hint: "drop --from, or run against the cluster without --snapshot".into(),
                });
            }
            DiagnoseSource::Snapshot(InputFile::from_arg(path))
        }
        (None, None) => {
            return Err(UsageError::Missing {
                what: "diagnose needs a TARGET (e.g. svc/httpbin) or --snapshot FILE",
                hint: "see `kubectl mesh503 diagnose --help`".into(),
            })
        }
        (None, Some(text)) => DiagnoseSource::Live {
            target: text.parse().map_err(|source| UsageError::Target {
                input: text.clone(),
                source,
            })?,
            from: args
                .from
                .iter()
                .map(|f| {
                    f.parse::<ClientRef>().map_err(|source| UsageError::From {
                        input: f.clone(),
                        source,
                    })
                })
                .collect::<Result<_, _>>()?,
        },
    };
    let save = args
        .save_snapshot
        .as_deref()
        .map(|p| {
            SavePath::check(p).map_err(|reason| UsageError::SavePath {
                path: p.display().to_string(),
                reason,
            })
        })
        .transpose()?;
    let fix_out = args
        .fix_out
        .as_deref()
        .map(|p| {
            OutDir::check(p).map_err(|reason| UsageError::FixOut {
                path: p.display().to_string(),
                reason,
            })
        })
        .transpose()?;
    Ok(Diagnose {
        source,
        output: args.output,
        save,
        fix_out,
    })
}

fn tls_check(args: TlsCheckArgs) -> Result<TlsCheck, UsageError> {
    let source = if !args.config_dump.is_empty() {
        if !args.targets.is_empty() {
            return Err(UsageError::Conflict {
                what: "give pod/NAME [svc/NAME] or --config-dump FILE…, not both",
                hint: "--config-dump works offline on saved dumps; pod/NAME reads the live sidecar"
                    .into(),
            });
        }
        let files: Vec<InputFile> = args
            .config_dump
            .iter()
            .map(|p| InputFile::from_arg(p))
            .collect();
        if files.iter().filter(|f| **f == InputFile::Stdin).count() > 1 {
            return Err(UsageError::StdinTwice);
        }
        TlsCheckSource::ConfigDumps(files)
    } else {
        let mut client = None;
        let mut service = None;
        for t in &args.targets {
            if let (Ok(c), None) = (t.parse::<ClientRef>(), &client) {
                client = Some(c);
                continue;
            }
            match t.parse::<Target>() {
                Ok(Target::Service { name }) if service.is_none() => service = Some(name),
                _ => return Err(UsageError::TlsCheckTarget { input: t.clone() }),
            }
        }
        let client = client.ok_or_else(|| UsageError::Missing {
            what: "tls-check needs the client: pod/NAME or deploy/NAME (or --config-dump FILE)",
            hint: "e.g. `kubectl mesh503 tls-check pod/sleep-1 -n foo`, or `tls-check deploy/sleep svc/httpbin -n foo` for one service".into(),
        })?;
        TlsCheckSource::Live { client, service }
    };
    let max_servers = count("--max-servers", args.max_servers, 50, "from 1 to 50")?;
    Ok(TlsCheck {
        source,
        output: args.output,
        max_servers: usize::try_from(max_servers).unwrap_or(50),
    })
}

fn scan(args: ScanArgs) -> Scan {
    Scan {
        all_namespaces: args.all_namespaces,
        output: args.output,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn settings(args: &[&str]) -> Result<Settings, UsageError> {
        let mut all = vec!["kubectl-mesh503"];
        all.extend_from_slice(args);
        Settings::from_cli(Cli::try_parse_from(all).expect("clap accepts it"))
    }

    #[test]
    fn defaults() {
        let s = settings(&["diagnose", "svc/httpbin"]).unwrap();
        assert_eq!(s.limits, Limits::default());
        assert_eq!(s.limits.request_timeout, Some(Duration::from_secs(10)));
        assert_eq!(s.limits.timeout, Duration::from_secs(60));
        assert_eq!(s.connection.istio_namespace, "istio-system");
        match s.mode {
            Mode::Diagnose(d) => assert_eq!(
                d.source,
                DiagnoseSource::Live {
                    target: Target::Service {
                        name: "httpbin".into()
                    },
                    from: vec![]
                }
            ),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn durations_in_kubectl_syntax_and_bounded() {
        let s = settings(&[
            "diagnose",
            "x",
            "--request-timeout",
            "1m30s",
            "--timeout",
            "2m",
            "--proxy-timeout",
            "500ms",
        ])
        .unwrap();
        assert_eq!(s.limits.request_timeout, Some(Duration::from_secs(90)));
        assert_eq!(s.limits.timeout, Duration::from_secs(120));
        assert_eq!(s.limits.proxy_timeout, Duration::from_millis(500));
        let s = settings(&["diagnose", "x", "--request-timeout", "0"]).unwrap();
        assert_eq!(
            s.limits.request_timeout, None,
            "0 = no per-request limit, as in kubectl"
        );
        for (flag, value) in [
            ("--request-timeout", "99999999999999999999999"),
            ("--proxy-timeout", "18000000000000000000"),
            ("--timeout", "25h"),
            ("--timeout", "0"),
            ("--proxy-timeout", "0s"),
            ("--request-timeout", "-1s"),
            ("--request-timeout", "5x"),
        ] {
            let e = settings(&["diagnose", "x", flag, value]).unwrap_err();
            let text = e.to_string();
            assert!(text.contains(flag) && text.contains(value), "{text}");
        }
    }

    #[test]
    fn counts_have_ranges() {
        for (flag, value) in [
            ("--concurrency", "0"),
            ("--concurrency", "65"),
            ("--log-lines", "0"),
            ("--max-clients", "51"),
        ] {
            let e = settings(&["diagnose", "x", flag, value]).unwrap_err();
            assert!(
                matches!(e, UsageError::OutOfRange { .. }),
                "{flag} {value}: {e}"
            );
        }
        let s = settings(&[
            "diagnose",
            "x",
            "--concurrency",
            "64",
            "--log-lines",
            "100000",
        ])
        .unwrap();
        assert_eq!((s.limits.concurrency, s.limits.log_lines), (64, 100_000));
    }

    #[test]
    fn namespaces_are_validated_before_any_request() {
        for (flag, value) in [
            ("-n", "foo?x=1"),
            ("-n", "Foo"),
            ("-n", "a.b"),
            ("--istio-namespace", "foo/secrets/topsecret?"),
            ("--istio-namespace", ""),
        ] {
            let e = settings(&["diagnose", "svc/x", flag, value]).unwrap_err();
            assert!(
                matches!(e, UsageError::Namespace { .. }),
                "{flag} {value}: {e}"
            );
        }
    }

    #[test]
    fn sources_and_conflicts() {
        let s = settings(&["diagnose", "--snapshot", "-"]).unwrap();
        match s.mode {
            Mode::Diagnose(d) => assert_eq!(d.source, DiagnoseSource::Snapshot(InputFile::Stdin)),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            settings(&["diagnose"]),
            Err(UsageError::Missing { .. })
        ));
        assert!(matches!(
            settings(&["diagnose", "svc/x", "--snapshot", "f"]),
            Err(UsageError::Conflict { .. })
        ));
        assert!(matches!(
            settings(&["diagnose", "--snapshot", "f", "--from", "pod/a"]),
            Err(UsageError::Conflict { .. })
        ));
        assert!(matches!(
            settings(&["diagnose", "cm/x"]),
            Err(UsageError::Target { .. })
        ));
        assert!(matches!(
            settings(&["diagnose", "x", "--from", "svc/y"]),
            Err(UsageError::From { .. })
        ));
        assert!(matches!(
            settings(&["tls-check", "svc/x"]),
            Err(UsageError::Missing { .. })
        ));
        assert!(matches!(
            settings(&["tls-check", "pod/a", "pod/b"]),
            Err(UsageError::TlsCheckTarget { .. })
        ));
        assert!(matches!(
            settings(&["tls-check", "--config-dump", "-", "--config-dump", "-"]),
            Err(UsageError::StdinTwice)
        ));
        assert!(matches!(
            settings(&["tls-check", "pod/a", "deploy/b"]),
            Err(UsageError::TlsCheckTarget { .. })
        ));
        assert!(matches!(
            settings(&["tls-check", "pod/a", "--max-servers", "0"]),
            Err(UsageError::OutOfRange { .. })
        ));
        let s = settings(&["tls-check", "pod/a", "svc/b"]).unwrap();
        match s.mode {
            Mode::TlsCheck(t) => {
                assert_eq!(
                    t.source,
                    TlsCheckSource::Live {
                        client: "pod/a".parse().unwrap(),
                        service: Some("b".into())
                    }
                );
                assert_eq!(t.max_servers, 10);
            }
            other => panic!("{other:?}"),
        }
        let s = settings(&["tls-check", "deploy/sleep"]).unwrap();
        match s.mode {
            Mode::TlsCheck(t) => assert_eq!(
                t.source,
                TlsCheckSource::Live {
                    client: "deploy/sleep".parse().unwrap(),
                    service: None
                }
            ),
            other => panic!("{other:?}"),
        }
        let s = settings(&["scan", "-A", "-o", "json"]).unwrap();
        assert!(s.connection.all_namespaces);
        assert!(matches!(
            s.mode,
            Mode::Scan(Scan {
                output: Output::Json,
                ..
            })
        ));
    }

    /// tls-check and scan have their own flags: diagnose-only ones are refused.
    #[test]
    fn subcommands_take_only_their_flags() {
        use clap::Parser;
        for args in [
            &["tls-check", "pod/a", "-A"][..],
            &["tls-check", "pod/a", "--log-lines", "5"],
            &["tls-check", "pod/a", "--max-clients", "5"],
            &["scan", "--from", "pod/a"],
            &["scan", "--proxy-timeout", "1s"],
        ] {
            let mut all = vec!["kubectl-mesh503"];
            all.extend_from_slice(args);
            assert!(Cli::try_parse_from(all).is_err(), "{args:?}");
        }
    }

    #[test]
    fn save_path_is_checked_before_collecting() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("snap.json");
        assert!(settings(&["diagnose", "x", "--save-snapshot", good.to_str().unwrap()]).is_ok());
        let missing = dir.path().join("no/such/dir/snap.json");
        let e = settings(&[
            "diagnose",
            "x",
            "--save-snapshot",
            missing.to_str().unwrap(),
        ])
        .unwrap_err();
        assert!(matches!(e, UsageError::SavePath { .. }), "{e}");
        let e = settings(&[
            "diagnose",
            "x",
            "--save-snapshot",
            dir.path().to_str().unwrap(),
        ])
        .unwrap_err();
        assert!(e.to_string().contains("directory"), "{e}");
    }

    #[test]
    fn fix_out_is_checked_before_collecting() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().to_str().unwrap();
        match settings(&["diagnose", "x", "--fix-out", d]).unwrap().mode {
            Mode::Diagnose(x) => assert_eq!(x.fix_out.unwrap().path(), dir.path()),
            _ => panic!("expected diagnose"),
        }
        let missing = dir.path().join("no");
        let e = settings(&["diagnose", "x", "--fix-out", missing.to_str().unwrap()]).unwrap_err();
        assert!(matches!(e, UsageError::FixOut { .. }), "{e}");
        assert!(e.to_string().contains("--fix-out"), "{e}");
        assert!(e.hint().contains("mkdir"), "{}", e.hint());
    }
}
