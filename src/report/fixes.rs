//! Report stage: a finding's fixes in the human report. The chosen fix with
//! what it repairs and leaves unchanged, the block to paste (flush left, so
//! the heredoc's `EOF` ends it wherever it is pasted), how to verify; then
//! the candidates rejected, with the calls they would break. Rendering only.

use super::layout::{width_of, wrap, Doc};
use crate::analyze::fix::{Fixes, PairChange, PairState};
use crate::words::{counts, noun};

/// Most pairs named per list.
const SHOWN: usize = 5;

fn state(s: &PairState) -> String {
    let server = match s.server.as_str() {
        "no sidecar" => "a pod without sidecar".to_string(),
        other => format!("a {other} server"),
    };
    format!("{} to {server}: {}", s.wire, s.outcome)
}

fn pair(p: &PairChange) -> String {
    let (b, a) = (&p.before, &p.after);
    let mut parts = Vec::new();
    let tls_same = (&b.wire, &b.server, &b.outcome) == (&a.wire, &a.server, &a.outcome);
    if tls_same {
        parts.push(state(b));
    } else {
        parts.push(format!("{} ⇒ {}", state(b), state(a)));
    }
    if b.pool != a.pool {
        parts.push(format!(
            "connection pool: {} ⇒ {}",
            b.pool.as_deref().unwrap_or("defaults"),
            a.pool.as_deref().unwrap_or("defaults")
        ));
    }
    if b.routes != a.routes {
        parts.push(format!(
            "routes: {} ⇒ {}",
            b.routes.as_deref().unwrap_or("no subset"),
            a.routes.as_deref().unwrap_or("no subset")
        ));
    }
    format!(
        "{} → {}:{} ({})",
        p.client,
        p.host,
        p.port,
        parts.join("; ")
    )
}

/// The pairs, one wrapped line each; at most [`SHOWN`] unless `all`.
fn list(doc: &mut Doc, first: &str, hang: &str, pairs: &[PairChange], all: bool) {
    let shown = if all { pairs.len() } else { SHOWN };
    for p in pairs.iter().take(shown) {
        doc.para(first, hang, &pair(p));
    }
    if pairs.len() > shown {
        let indent = " ".repeat(first.len() - first.trim_start().len());
        doc.para(
            &indent,
            hang,
            &format!(
                "… and {} more (-o wide or -o json lists them all)",
                pairs.len() - shown
            ),
        );
    }
}

/// A command to paste: on the label's line when it fits, else on the next
/// lines, continued with ` \\` between words (the shell reads the same
/// command). A command with quotes, or a word longer than a line, is never
/// broken.
fn command(doc: &mut Doc, label: &str, cmd: &str) {
    let line = format!("{label} {cmd}");
    if width_of(&line) <= doc.width {
        doc.raw(&line);
        return;
    }
    doc.raw(label);
    let room = doc.width.saturating_sub(8 + 2);
    if cmd.contains(['\'', '"', '\\']) || cmd.split(' ').any(|w| width_of(w) > room) {
        doc.raw(&format!("      {cmd}"));
        return;
    }
    let lines = wrap(cmd, doc.width.saturating_sub(2), "      ", "        ");
    let n = lines.len();
    for (i, l) in lines.into_iter().enumerate() {
        if i + 1 < n {
            doc.raw(&format!("{l} \\"));
        } else {
            doc.raw(&l);
        }
    }
}

/// The fixes of one finding, as the human report prints them; `all`
/// (`-o wide`) lists every pair.
pub fn render(doc: &mut Doc, fixes: &Fixes, all: bool) {
    if let Some(fix) = &fixes.chosen {
        doc.para("  Fix: ", "    ", &fix.summary);
        if let Some(e) = &fix.effect {
            doc.para(
                "    ",
                "      ",
                &format!("Repairs {}:", counts(e.repairs.len(), "call")),
            );
            list(doc, "      ", "        ", &e.repairs, all);
            if !e.changes.is_empty() {
                doc.para(
                    "    ",
                    "      ",
                    &format!(
                        "Also changes {}, none for the worse:",
                        counts(e.changes.len(), "call")
                    ),
                );
                list(doc, "      ", "        ", &e.changes, all);
            }
            doc.para(
                "    ",
                "      ",
                &format!(
                    "Leaves {} of the {} checked as {}{}",
                    e.unchanged,
                    counts(e.checked, "call"),
                    noun(e.unchanged, "it is", "they are"),
                    if e.unchanged_sample.is_empty() {
                        "."
                    } else {
                        ", e.g.:"
                    }
                ),
            );
            list(doc, "      ", "        ", &e.unchanged_sample, all);
        }
        for n in &fix.notes {
            doc.para("    Note: ", "      ", n);
        }
        if let Some(block) = &fix.apply {
            doc.para(
                "    ",
                "      ",
                "Apply (paste the lines below as they are):",
            );
            for l in block.lines() {
                doc.raw(l);
            }
        }
        if let Some(v) = &fix.verify {
            command(doc, "    Verify:", &v.command);
            doc.para("      ", "      ", &v.expect);
        }
    }
    if let Some(none) = &fixes.none {
        doc.para("  No fix printed: ", "    ", none);
    }
    if !fixes.rejected.is_empty() {
        doc.raw("  Rejected fixes:");
        for r in &fixes.rejected {
            doc.para("    - ", "      ", &format!("{}: {}", r.summary, r.reason));
            list(doc, "        would hurt: ", "          ", &r.breaks, all);
        }
    }
    if fixes.chosen.as_ref().is_some_and(|f| f.effect.is_some()) {
        for l in &fixes.limits {
            doc.para("    Not seen: ", "      ", l);
        }
    }
}
