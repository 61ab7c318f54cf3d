//! Report stage: `scan` for people (Services with findings, worst first,
//! each finding on one line with its claim wrapped on word boundaries) and
//! `-o json` (the [`ScanReport`], schema `mesh503.io/scan/v1`, docs/scan.md).
//! Rendering only.

use std::fmt::Write;

use crate::analyze::scan::ScanReport;
use crate::analyze::Severity;

/// Width the claims are wrapped to.
const WIDTH: usize = 100;

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// Words of `text` on lines of at most `width` characters (a longer word
/// stays whole on its own line), each line after the first indented.
pub fn wrap(text: &str, width: usize, indent: &str) -> String {
    let mut out = String::new();
    let mut line = 0;
    for w in text.split_whitespace() {
        let n = w.chars().count();
        if line > 0 && line + 1 + n > width {
            out.push('\n');
            out.push_str(indent);
            line = indent.chars().count();
        } else if line > 0 {
            out.push(' ');
            line += 1;
        }
        out.push_str(w);
        line += n;
    }
    out
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

pub fn render(r: &ScanReport, color: bool) -> String {
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
            let _ = writeln!(out, "    {}", wrap(&f.claim, WIDTH - 4, "    "));
        }
        let (ns, name) = s.service.split_once('/').unwrap_or(("", &s.service));
        let _ = writeln!(
            out,
            "  evidence and fixes: kubectl mesh503 diagnose svc/{name} -n {ns}"
        );
    }
    let _ = writeln!(
        out,
        "\nRules run (config only; data-plane causes need `diagnose`): {}",
        r.rules.join(", ")
    );
    if !r.gaps.is_empty() {
        let _ = writeln!(out, "\nCould not see:");
        for g in &r.gaps {
            let _ = writeln!(
                out,
                "  - {}",
                wrap(&format!("{}: {}", g.source, g.reason), WIDTH - 4, "    ")
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
        let w = wrap("aaa bbb ccc dddddddddd e", 8, "  ");
        assert_eq!(w, "aaa bbb\n  ccc\n  dddddddddd\n  e");
        assert!(!w.lines().any(|l| l.ends_with(' ')));
    }
}
