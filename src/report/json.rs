//! Report stage: `-o json`, the [`Report`] as pretty JSON (schema
//! `mesh503.io/report/v2`, docs/report-schema.md). Rendering only.

use crate::analyze::Report;

pub fn render(report: &Report) -> String {
    // Report holds only strings, numbers and enums: serialization cannot fail.
    let mut s =
        serde_json::to_string_pretty(report).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
    s.push('\n');
    s
}
