//! Every way a run can end badly, as one type, each with the exit code it
//! maps to and a hint of what to do (cargo-nextest's `ExpectedError` is the
//! model: a typed variant per failure, one place for the codes).
//!
//! Exit codes (also in `--help` and docs/exit-codes.md):
//!
//! | code | [`Exit`] | meaning |
//! |---|---|---|
//! | 0 | `Ok` | ran; no error-level finding / no CONFLICT |
//! | 1 | `Findings` | ran; at least one error-level finding / CONFLICT |
//! | 2 | `Usage` | bad usage or input: flags, a snapshot or config-dump file |
//! | 3 | `Cluster` | could not collect: kubeconfig, API unreachable or silent, credentials refused, target missing or forbidden, API lost mid-run |
//! | 4 | `Incomplete` | ran, no error-level finding, but evidence the diagnosis needs could not be read: it could not check |
//! | 5 | `Write` | could not write the snapshot file (the report was printed) or the output |

use std::process::ExitCode;

use crate::cli::UsageError;
use crate::collect::CollectError;
use crate::snapshot::SnapshotError;

/// The documented exit codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub enum Exit {
    Ok = 0,
    Findings = 1,
    Usage = 2,
    Cluster = 3,
    Incomplete = 4,
    Write = 5,
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> ExitCode {
        ExitCode::from(e as u8)
    }
}

/// Why a `tls-check --config-dump` input was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigDumpError {
    #[error("cannot read config dump {path}: {source}")]
    Read {
        path: String,
        source: crate::snapshot::file::ReadError,
    },
    #[error("{path} is a kubectl-mesh503 snapshot, not an Envoy config dump")]
    IsSnapshot { path: String },
    #[error("{path} looks like Envoy's /clusters output, not a config dump")]
    IsClusters { path: String },
    #[error("config dump {path} is not usable: {reason}")]
    Shape { path: String, reason: String },
    #[error("config dump {path} has no clusters and no listeners: nothing to check")]
    Empty { path: String },
}

/// A failure that ends the run.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Usage(#[from] UsageError),
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    #[error(transparent)]
    ConfigDump(#[from] ConfigDumpError),
    #[error(transparent)]
    Collect(#[from] CollectError),
    #[error("cannot write {what}: {source}")]
    Write {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot start the async runtime: {0}")]
    Runtime(#[source] std::io::Error),
}

impl Error {
    pub fn exit(&self) -> Exit {
        match self {
            Error::Usage(_) | Error::Snapshot(_) | Error::ConfigDump(_) => Exit::Usage,
            Error::Collect(_) | Error::Runtime(_) => Exit::Cluster,
            Error::Write { .. } => Exit::Write,
        }
    }

    /// What to do about it, one line.
    pub fn hint(&self) -> String {
        match self {
            Error::Usage(e) => e.hint(),
            Error::Snapshot(e) => e.hint(),
            Error::ConfigDump(ConfigDumpError::IsSnapshot { .. }) => {
                "analyze a snapshot with `kubectl mesh503 diagnose --snapshot FILE`".into()
            }
            Error::ConfigDump(_) => "save a dump with `kubectl exec POD -c istio-proxy -- curl -s localhost:15000/config_dump > FILE` (or pilot-agent request GET config_dump)".into(),
            Error::Collect(e) => e.hint(),
            Error::Write { .. } => "check the free space and permissions; a file that existed before is left as it was".into(),
            Error::Runtime(_) => "the system refused to start threads; check the process limits (ulimit -u)".into(),
        }
    }

    /// `error: …` and `  hint: …`, as printed on stderr.
    pub fn render(&self) -> String {
        format!("error: {self}\n  hint: {}\n", self.hint())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_the_documented_ones() {
        assert_eq!(Exit::Ok as u8, 0);
        assert_eq!(Exit::Findings as u8, 1);
        assert_eq!(Exit::Usage as u8, 2);
        assert_eq!(Exit::Cluster as u8, 3);
        assert_eq!(Exit::Incomplete as u8, 4);
        assert_eq!(Exit::Write as u8, 5);
        let e = Error::Write {
            what: "snapshot x".into(),
            source: std::io::Error::other("disk full"),
        };
        assert_eq!(e.exit(), Exit::Write);
        assert!(e.render().contains("\n  hint: "), "{}", e.render());
        let e = Error::ConfigDump(ConfigDumpError::Empty {
            path: "d.json".into(),
        });
        assert_eq!(e.exit(), Exit::Usage);
        assert!(e.render().contains("d.json"));
    }
}
