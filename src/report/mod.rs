//! Report stage: rendering only. A [`Report`](crate::analyze::Report) as a
//! table for people or JSON for machines (`-o json`, schema in
//! docs/report-schema.md), and `tls-check`'s rows as a table.
//! Place in the flow: `collect → snapshot → model → analyze → report`.

pub mod fixes;
pub mod json;
pub mod scan;
pub mod table;
pub mod tls_check;

/// `-o` values, as kubectl spells them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    /// Ranked table with evidence and fixes.
    Table,
    /// The versioned JSON report.
    Json,
}
