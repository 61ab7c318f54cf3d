//! Report stage: rendering only. A [`Report`](crate::analyze::Report) for
//! people (`-o table`, fitted to the terminal width; `-o wide`, every list
//! in full) or for machines (`-o json` / `-o yaml`, the same versioned
//! document, schema in docs/report-schema.md), and `tls-check`'s rows as a
//! table. Widths and formats: docs/output.md.
//! Place in the flow: `collect → snapshot → model → analyze → report`.

pub mod fixes;
pub mod json;
pub mod layout;
pub mod scan;
pub mod table;
pub mod tls_check;

use crate::analyze::Report;

/// `-o` values, as kubectl spells them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    /// Ranked summary with evidence and fixes, fitted to the terminal width.
    Table,
    /// As table, with every list in full (no "… and N more").
    Wide,
    /// The versioned JSON report.
    Json,
    /// The same document as -o json, in YAML.
    Yaml,
}

/// The diagnose report in the chosen format. `color`: ANSI colours
/// (terminal and no NO_COLOR); `width`: columns for the human formats
/// ([`layout::detect_width`]).
pub fn render(report: &Report, output: Output, color: bool, width: usize) -> String {
    let style = |wide| table::Style { color, width, wide };
    match output {
        Output::Table => table::render(report, &style(false)),
        Output::Wide => table::render(report, &style(true)),
        Output::Json => json::render(report),
        Output::Yaml => json::render_yaml(report),
    }
}
