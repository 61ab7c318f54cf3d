//! Report stage: `scan` for people (Services with findings, worst first,
//! each finding on one line with its claim wrapped on word boundaries) and
//! `-o json` (the [`ScanReport`], schema `mesh503.io/scan/v1`, docs/scan.md).
//! Rendering only.

use std::fmt::Write;

use crate::analyze::scan::ScanReport;
use crate::analyze::Severity;

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// `text` wrapped to `width` on word boundaries (report::layout), each line
/// after the first indented by `indent`; the first line is assumed to start
/// at column `indent.len()` too.
pub fn wrap(text: &str, width: usize, indent: &str) -> String {
    super::layout::wrap(text, width, indent, indent)
        .iter()
        .map(|l| l.strip_prefix(indent).unwrap_or(l))
        .collect::<Vec<_>>()
        .join(&format!("\n{indent}"))
}

fn paint(text: &str, sev: Severity, color: bool) -> String {
    if !color {
        return text.to_string();
    }
    let code = match sev {
        Severity::Error => "31",
        Severity::Warning => "33",
        Severity::Info => "34",
    };
    format!("\x1b[{code}m{text}\x1b[0m")
}

/// The scan report at `width` columns (report::layout::detect_width).
pub fn render(r: &ScanReport, color: bool, width: usize) -> String {
    let mut out = String::new();
    let with_errors = r
        .services
        .iter()
        .filter(|s| s.severity == Severity::Error)
        .count();
    let _ = writeln!(
        out,
        "{} (config only, snapshot taken {}): {} scanned, {} with findings, {} with errors",
        r.scope,
        r.taken_at,
        plural(r.services_scanned, "service", "services"),
        r.services.len(),
        with_errors
    );
    if r.services.is_empty() {
        let _ = writeln!(out, "\nNo cause of 503s found in config.");
    }
    for s in &r.services {
        let _ = writeln!(
            out,
            "\n{} {}  ({})",
            paint(&s.severity.to_string().to_uppercase(), s.severity, color),
            s.service,
            s.host
        );
        for f in &s.findings {
            let head = format!(
                "  {:<7} {:>3}%  {}",
                f.severity.to_string(),
                f.confidence,
                f.id()
            );
            let _ = writeln!(out, "{}", paint(&head, f.severity, color));
            let _ = writeln!(out, "    {}", wrap(&f.claim, width, "    "));
        }
        let (ns, name) = s.service.split_once('/').unwrap_or(("", &s.service));
        let _ = writeln!(
            out,
            "  evidence and fixes: kubectl mesh503 diagnose svc/{name} -n {ns}"
        );
    }
    let _ = writeln!(
        out,
        "\n{}",
        wrap(
            &format!(
                "Rules run (config only; data-plane causes need `diagnose`): {}",
                r.rules.join(", ")
            ),
            width,
            ""
        )
    );
    if !r.gaps.is_empty() {
        let _ = writeln!(out, "\nCould not see:");
        for g in &r.gaps {
            let _ = writeln!(
                out,
                "  - {}",
                wrap(&format!("{}: {}", g.source, g.reason), width, "    ")
            );
        }
    }
    out
}

pub fn render_json(r: &ScanReport) -> String {
    // Strings, numbers and enums only: serialization cannot fail.
    let mut s =
        serde_json::to_string_pretty(r).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wraps_on_word_boundaries() {
        // Lines start at the indent's column: "  aaa bbb" would be 9 > 8.
        let w = wrap("aaa bbb ccc dddddddddd e", 9, "  ");
        assert_eq!(w, "aaa bbb\n  ccc\n  dddddddddd\n  e");
        let w = wrap("aaa bbb ccc", 8, "  ");
        assert_eq!(w, "aaa\n  bbb\n  ccc");
        assert!(!w.lines().any(|l| l.ends_with(' ')));
    }
}
