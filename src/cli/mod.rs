//! Command-line interface, kubectl style, in two layers (ripgrep's "low" and
//! "high" arguments):
//!
//! - [`args`]: what clap parses ([`Cli`]), strings and numbers only;
//! - [`settings`]: [`Settings::from_cli`], the one place where flags are
//!   interpreted — targets, `--from`, durations ([`duration`]), ranges and
//!   name validation — so that nothing downstream re-reads a raw flag.

pub mod args;
pub mod duration;
pub mod settings;

pub use args::{
    Cli, Command, DiagnoseArgs, KubeFlags, ProxyFlags, ScanArgs, TlsCheckArgs, EXIT_CODES,
};
pub use settings::{Settings, UsageError};

/// Exit codes, as numbers (the typed form is [`crate::error::Exit`]).
pub mod exit {
    use crate::error::Exit;
    /// Ran; no error-level finding.
    pub const OK: u8 = Exit::Ok as u8;
    /// Ran; at least one error-level finding (a cause of 503s).
    pub const FINDINGS: u8 = Exit::Findings as u8;
    /// Bad usage or unreadable input (flags, snapshot or config-dump file).
    pub const USAGE: u8 = Exit::Usage as u8;
    /// Could not collect: API server unreachable, target not found, forbidden, API lost.
    pub const CLUSTER: u8 = Exit::Cluster as u8;
    /// Ran, but evidence the diagnosis needs could not be read.
    pub const INCOMPLETE: u8 = Exit::Incomplete as u8;
    /// Could not write the snapshot file or the output.
    pub const WRITE: u8 = Exit::Write as u8;
}
