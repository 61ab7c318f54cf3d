//! Rendering a [`Report`](crate::analyze::Report): a table for people,
//! JSON for machines (`-o json`, schema in docs/report-schema.md).

pub mod json;
pub mod table;

/// `-o` values, as kubectl spells them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    /// Ranked table with evidence and fixes.
    Table,
    /// The versioned JSON report.
    Json,
}
