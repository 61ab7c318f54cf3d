//! Report stage: the human report (`-o table`, the default, and `-o wide`).
//! A ranked summary (number, severity, confidence, finding id, subject;
//! the claim is printed once, in the finding's heading below), then each
//! finding with its reasoning, evidence and fix, then what was checked and
//! what was missing. Every line fits [`Style::width`] (rules in
//! [`super::layout`] and docs/output.md). Rendering only.

use super::layout::{width_of, wrap, Doc};
use crate::analyze::{EvidenceKind, Finding, Report, Severity};
use crate::words::{counts, noun};

/// How the human report is laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Style {
    /// ANSI colours (off for NO_COLOR or a non-terminal).
    pub color: bool,
    /// Columns available; no line is longer (docs/output.md).
    pub width: usize,
    /// `-o wide`: every list in full.
    pub wide: bool,
}

/// Evidence items shown per finding unless `-o wide`.
pub const EVIDENCE_SHOWN: usize = 12;

/// Columns between two table columns, as kubectl prints them.
const GAP: &str = "  ";

pub fn render(report: &Report, style: &Style) -> String {
    let mut doc = Doc::new(style.width);
    doc.para(
        "",
        "  ",
        &format!(
            "Diagnosis of {} in namespace {} (snapshot taken {})",
            report.target, report.namespace, report.taken_at
        ),
    );
    doc.blank();
    if report.findings.is_empty() {
        doc.raw("No cause of 503s found.");
    } else {
        let errors = report
            .findings
            .iter()
            .filter(|f| f.severity == Severity::Error)
            .count();
        doc.para(
            "",
            "",
            &format!(
                "{}, {}, most likely first:",
                counts(report.findings.len(), "finding"),
                counts(errors, "error")
            ),
        );
        doc.blank();
        summary(&mut doc, &report.findings, style);
        for (i, f) in report.findings.iter().enumerate() {
            doc.blank();
            finding(&mut doc, i + 1, f, style);
        }
    }
    if !report.checked.is_empty() {
        doc.blank();
        doc.raw("Checked:");
        for c in &report.checked {
            doc.para("  - ", "    ", c);
        }
    }
    if !report.gaps.is_empty() {
        doc.blank();
        doc.para(
            "",
            "",
            "Could not see (conclusions above do not rely on these):",
        );
        for g in &report.gaps {
            doc.para("  - ", "    ", &format!("{}: {}", g.source, g.reason));
        }
    }
    doc.out
}

fn severity(s: Severity, padded: String, color: bool) -> String {
    if !color {
        return padded;
    }
    let code = match s {
        Severity::Error => "31",
        Severity::Warning => "33",
        Severity::Info => "34",
    };
    format!("\x1b[{code}m{padded}\x1b[0m")
}

fn pad(s: &str, w: usize) -> String {
    format!("{s}{}", " ".repeat(w.saturating_sub(width_of(s))))
}

/// The ranked summary, kubectl style (no borders, two spaces between
/// columns). SUBJECT is a column when its longest word fits beside the
/// others; otherwise it goes under the finding id, wrapped.
fn summary(doc: &mut Doc, findings: &[Finding], style: &Style) {
    let rows: Vec<[String; 4]> = findings
        .iter()
        .enumerate()
        .map(|(i, f)| {
            [
                (i + 1).to_string(),
                f.severity.to_string(),
                format!("{}%", f.confidence),
                f.id().to_string(),
            ]
        })
        .collect();
    let header = ["#", "SEVERITY", "CONFIDENCE", "FINDING"];
    let widths: Vec<usize> = (0..4)
        .map(|c| {
            rows.iter()
                .map(|r| width_of(&r[c]))
                .chain([width_of(header[c])])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let before_finding: usize = widths[..3].iter().map(|w| w + GAP.len()).sum();
    let fixed = before_finding + widths[3] + GAP.len();
    let longest_word = findings
        .iter()
        .flat_map(|f| f.subject.split_whitespace())
        .map(width_of)
        .max()
        .unwrap_or(0);
    const STACKED: &str = "FINDING / SUBJECT";
    let beside = style.width >= fixed + longest_word.max("SUBJECT".len());
    let stacked = style.width >= before_finding + widths[3].max(STACKED.len())
        && style.width >= before_finding + 20;
    if !beside && !stacked {
        return narrow(doc, findings, style.color);
    }
    let cells = |r: &[String; 4], sev: Option<(Severity, bool)>| -> String {
        let mut line = String::new();
        for (c, cell) in r.iter().enumerate() {
            let last = c == 3 && !beside;
            let text = if last {
                cell.clone()
            } else {
                pad(cell, widths[c])
            };
            match (c, sev) {
                (1, Some((s, color))) => line.push_str(&severity(s, text, color)),
                _ => line.push_str(&text),
            }
            if !last {
                line.push_str(GAP);
            }
        }
        line
    };
    let head: [String; 4] = header.map(String::from);
    if beside {
        doc.raw(&format!("{}SUBJECT", cells(&head, None)));
    } else {
        let head = cells(&head, None);
        doc.raw(&format!(
            "{}{STACKED}",
            &head[..head.len() - "FINDING".len()]
        ));
    }
    for (r, f) in rows.iter().zip(findings) {
        let row = cells(r, Some((f.severity, style.color)));
        if beside {
            let indent = " ".repeat(fixed);
            let lines = wrap(&f.subject, style.width, &indent, &indent);
            for (i, l) in lines.iter().enumerate() {
                let l = l.trim_end();
                if i == 0 {
                    doc.raw(&format!("{row}{}", &l[fixed.min(l.len())..]));
                } else {
                    doc.raw(l);
                }
            }
        } else {
            doc.raw(row.trim_end());
            let indent = " ".repeat(before_finding);
            doc.para(&indent, &indent, &f.subject);
        }
    }
}

/// The summary when even the finding ids do not fit beside the other
/// columns: per finding, its number, severity, confidence and id on one
/// line (a finding id is at most ~30 columns, so it fits in [`super::layout::MIN_WIDTH`]),
/// the subject wrapped under it; no header.
fn narrow(doc: &mut Doc, findings: &[Finding], color: bool) {
    for (i, f) in findings.iter().enumerate() {
        let n = format!("{:<3}", i + 1);
        let sev = severity(f.severity, f.severity.to_string(), color);
        // Colour codes are not wrapped: the first line is short anyway.
        doc.raw(&format!("{n}{sev} {}% {}", f.confidence, f.id()));
        doc.para("   ", "   ", &f.subject);
    }
}

fn finding(doc: &mut Doc, n: usize, f: &Finding, style: &Style) {
    doc.para("", "    ", &format!("[{n}] {} — {}", f.id(), f.claim));
    if !f.explanation.is_empty() {
        doc.raw("  Why:");
        for line in &f.explanation {
            doc.para("    ", "      ", line);
        }
    }
    if !f.evidence.is_empty() {
        doc.raw("  Evidence:");
        let shown = if style.wide {
            f.evidence.len()
        } else {
            EVIDENCE_SHOWN
        };
        for e in f.evidence.iter().take(shown) {
            let tag = match e.kind {
                EvidenceKind::Config => "[config]",
                EvidenceKind::DataPlane => "[proxy ]",
            };
            doc.para(
                &format!("    {tag} "),
                "      ",
                &format!("{}: {}", e.source, e.detail),
            );
        }
        if f.evidence.len() > shown {
            let more = f.evidence.len() - shown;
            doc.para(
                "    ",
                "      ",
                &format!(
                    "… and {more} more {} (-o wide shows {})",
                    noun(more, "item", "items"),
                    noun(more, "it", "them all")
                ),
            );
        }
    }
    if let Some(fixes) = &f.fixes {
        super::fixes::render(doc, fixes, style.wide);
    }
}
