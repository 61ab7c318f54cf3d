//! Report stage: the human report. A ranked summary table, then each finding
//! with its reasoning, evidence and fix, then what was checked and what was
//! missing. Rendering only.

use crate::analyze::{EvidenceKind, Report, Severity};
use comfy_table::{presets, Cell, Color, ContentArrangement, Table};
use std::fmt::Write;

/// `color`: whether to use ANSI colours (off for NO_COLOR or a non-terminal).
pub fn render(report: &Report, color: bool, width: Option<u16>) -> String {
    let mut out = String::new();
    let errors = report
        .findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .count();
    let _ = writeln!(
        out,
        "Diagnosis of {} in namespace {} (snapshot taken {})",
        report.target, report.namespace, report.taken_at
    );
    if report.findings.is_empty() {
        let _ = writeln!(out, "\nNo cause of 503s found.");
    } else {
        let _ = writeln!(
            out,
            "\n{} finding(s), {} error(s), most likely first:\n",
            report.findings.len(),
            errors
        );
        let mut t = Table::new();
        t.load_preset(presets::UTF8_FULL_CONDENSED)
            .set_content_arrangement(ContentArrangement::Dynamic);
        if let Some(w) = width {
            t.set_width(w);
        }
        if !color {
            t.force_no_tty();
        }
        t.set_header(vec!["#", "SEVERITY", "CONFIDENCE", "FINDING", "SUBJECT"]);
        for (i, f) in report.findings.iter().enumerate() {
            let mut sev = Cell::new(f.severity.to_string());
            if color {
                sev = sev.fg(match f.severity {
                    Severity::Error => Color::Red,
                    Severity::Warning => Color::Yellow,
                    Severity::Info => Color::Blue,
                });
            }
            t.add_row(vec![
                Cell::new(i + 1),
                sev,
                Cell::new(format!("{}%", f.confidence)),
                Cell::new(format!("{}\n{}", f.id(), f.claim)),
                Cell::new(&f.subject),
            ]);
        }
        let _ = writeln!(out, "{t}");
        for (i, f) in report.findings.iter().enumerate() {
            let _ = writeln!(out, "\n[{}] {} — {}", i + 1, f.id(), f.claim);
            if !f.explanation.is_empty() {
                let _ = writeln!(out, "  Why:");
                for line in &f.explanation {
                    let _ = writeln!(out, "    {line}");
                }
            }
            if !f.evidence.is_empty() {
                let _ = writeln!(out, "  Evidence:");
                for e in &f.evidence {
                    let tag = match e.kind {
                        EvidenceKind::Config => "config",
                        EvidenceKind::DataPlane => "proxy ",
                    };
                    let _ = writeln!(out, "    [{tag}] {}: {}", e.source, e.detail);
                }
            }
            if let Some(fixes) = &f.fixes {
                super::fixes::render(&mut out, fixes);
            }
        }
    }
    if !report.checked.is_empty() {
        let _ = writeln!(out, "\nChecked:");
        for c in &report.checked {
            let _ = writeln!(out, "  - {c}");
        }
    }
    if !report.gaps.is_empty() {
        let _ = writeln!(
            out,
            "\nCould not see (conclusions above do not rely on these):"
        );
        for g in &report.gaps {
            let _ = writeln!(out, "  - {}: {}", g.source, g.reason);
        }
    }
    out
}
