//! Report stage: a finding's fixes in the human report. The chosen fix with
//! what it repairs and leaves unchanged, the block to paste (flush left, so
//! the heredoc's `EOF` ends it wherever it is pasted), how to verify; then
//! the candidates rejected, with the calls they would break. Rendering only.

use std::fmt::Write;

use crate::analyze::fix::{Fixes, PairChange, PairState};

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

fn list(out: &mut String, indent: &str, pairs: &[PairChange]) {
    for p in pairs.iter().take(SHOWN) {
        let _ = writeln!(out, "{indent}{}", pair(p));
    }
    if pairs.len() > SHOWN {
        let _ = writeln!(
            out,
            "{indent}… and {} more (-o json lists them all)",
            pairs.len() - SHOWN
        );
    }
}

/// The fixes of one finding, as the table report prints them.
pub fn render(out: &mut String, fixes: &Fixes) {
    if let Some(fix) = &fixes.chosen {
        let _ = writeln!(out, "  Fix: {}", fix.summary);
        if let Some(e) = &fix.effect {
            let _ = writeln!(out, "    Repairs {} call(s):", e.repairs.len());
            list(out, "      ", &e.repairs);
            if !e.changes.is_empty() {
                let _ = writeln!(
                    out,
                    "    Also changes {} call(s), none for the worse:",
                    e.changes.len()
                );
                list(out, "      ", &e.changes);
            }
            let _ = writeln!(
                out,
                "    Leaves {} of the {} call(s) checked as they are{}",
                e.unchanged,
                e.checked,
                if e.unchanged_sample.is_empty() {
                    "."
                } else {
                    ", e.g.:"
                }
            );
            list(out, "      ", &e.unchanged_sample);
        }
        for n in &fix.notes {
            let _ = writeln!(out, "    Note: {n}");
        }
        if let Some(block) = &fix.apply {
            let _ = writeln!(out, "    Apply (paste the lines below as they are):");
            out.push_str(block);
        }
        if let Some(v) = &fix.verify {
            let _ = writeln!(out, "    Verify: {}", v.command);
            let _ = writeln!(out, "      {}", v.expect);
        }
    }
    if let Some(none) = &fixes.none {
        let _ = writeln!(out, "  No fix printed: {none}");
    }
    if !fixes.rejected.is_empty() {
        let _ = writeln!(out, "  Rejected fixes:");
        for r in &fixes.rejected {
            let _ = writeln!(out, "    - {}: {}", r.summary, r.reason);
            list(out, "        would hurt: ", &r.breaks);
        }
    }
    if fixes.chosen.as_ref().is_some_and(|f| f.effect.is_some()) {
        for l in &fixes.limits {
            let _ = writeln!(out, "    Not seen: {l}");
        }
    }
}
