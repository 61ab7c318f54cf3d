//! Report stage: `-o json` and `-o yaml`, the [`Report`] as one versioned
//! document (schema `mesh503.io/report/v2`, docs/report-schema.md) in
//! either syntax; both come from the same `Serialize`, so they carry the
//! same value. Rendering only.

use crate::analyze::Report;
use serde::Serialize;

/// Pretty JSON with a final newline.
pub fn render(report: &Report) -> String {
    to_json(report)
}

/// YAML (one document, no `---`).
pub fn render_yaml(report: &Report) -> String {
    to_yaml(report)
}

/// Any serializable value as pretty JSON with a final newline.
pub fn to_json<T: Serialize>(v: &T) -> String {
    // Reports hold only strings, numbers and enums: serialization cannot fail.
    let mut s =
        serde_json::to_string_pretty(v).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
    s.push('\n');
    s
}

/// Any serializable value as YAML ending with a newline.
pub fn to_yaml<T: Serialize>(v: &T) -> String {
    let mut s = serde_yaml::to_string(v).unwrap_or_else(|e| format!("error: {e:?}\n"));
    if !s.ends_with('\n') {
        s.push('\n');
    }
    s
}
