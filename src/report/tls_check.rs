//! Report stage: `tls-check` as a table for people (JSON is the
//! [`TlsCheck`] serialized). Rendering only; the rows are built by
//! `analyze::tls_check` from the model's decisions.

use crate::analyze::tls_check::{Status, TlsCheck};
use comfy_table::{presets, Cell, Color, ContentArrangement, Table};

pub fn render_table(t: &TlsCheck, color: bool) -> String {
    let mut out = String::new();
    let mut table = Table::new();
    table
        .load_preset(presets::NOTHING)
        .set_content_arrangement(ContentArrangement::Disabled);
    if !color {
        table.force_no_tty();
    }
    table.set_header(vec![
        "PROXY",
        "HOST:PORT",
        "STATUS",
        "CLIENT",
        "SERVER",
        "DESTINATION RULE",
        "REASON",
    ]);
    for r in &t.clients {
        let mut status = Cell::new(r.status.to_string());
        if color && r.status == Status::Conflict {
            status = status.fg(Color::Red);
        }
        table.add_row(vec![
            Cell::new(&r.proxy),
            Cell::new(match &r.subset {
                Some(s) => format!("{}:{}|{s}", r.host, r.port),
                None => format!("{}:{}", r.host, r.port),
            }),
            status,
            Cell::new(&r.client_tls),
            Cell::new(r.server_mode.as_deref().unwrap_or("-")),
            Cell::new(r.rule.as_deref().unwrap_or("-")),
            Cell::new(&r.reason),
        ]);
    }
    out.push_str(&table.to_string());
    out.push('\n');
    if !t.servers.is_empty() {
        let mut s = Table::new();
        s.load_preset(presets::NOTHING)
            .set_content_arrangement(ContentArrangement::Disabled);
        s.set_header(vec!["SERVER PROXY", "PORT", "MODE", "LISTENER"]);
        for r in &t.servers {
            s.add_row(vec![
                r.proxy.clone(),
                match r.port {
                    Some(p) => p.to_string(),
                    None => "any other".into(),
                },
                r.mode.clone(),
                r.listener.clone(),
            ]);
        }
        out.push('\n');
        out.push_str(&s.to_string());
        out.push('\n');
    }
    for n in &t.notes {
        out.push_str(&format!("note: {n}\n"));
    }
    out
}
