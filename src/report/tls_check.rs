//! Report stage: `tls-check` as a table for people (JSON is the
//! [`TlsCheck`] serialized). Rendering only; the rows are built by
//! `analyze::tls_check` from the model's decisions.

use crate::analyze::tls_check::{Status, TlsCheck};
use crate::words;
use comfy_table::{presets, Cell, Color, ContentArrangement, Table};

/// The tables at `width` columns. Cells never wrap (a host split over
/// lines cannot be pasted): when the client table with its REASON column is
/// wider than `width`, the reasons move under the table, wrapped on word
/// boundaries. `wide` keeps the one table whatever its width.
pub fn render_table(t: &TlsCheck, color: bool, width: usize, wide: bool) -> String {
    if !wide && t.clients.len() > MAX_ROWS {
        return render_table(&summarized(t), color, width, false);
    }
    let mut out = String::new();
    let full = trimmed(&client_table(t, color, true, false));
    let fits = full.lines().all(|l| super::layout::width_of(l) <= width);
    if wide || fits || t.clients.is_empty() {
        out.push_str(&full);
        out.push('\n');
    } else {
        out.push_str(&trimmed(&client_table(t, color, false, true)));
        out.push('\n');
        out.push_str("\nReasons:\n");
        for r in &t.clients {
            let text = format!(
                "{} → {}:{}: {}",
                r.proxy,
                short_host(&r.host),
                r.port,
                r.reason
            );
            for l in super::layout::wrap(&text, width, "  ", "    ") {
                out.push_str(&l);
                out.push('\n');
            }
        }
    }
    servers_and_notes(t, &mut out);
    out
}

/// The table without comfy-table's trailing padding (as `kubectl get`).
fn trimmed(t: &Table) -> String {
    t.to_string()
        .lines()
        .map(str::trim_end)
        .collect::<Vec<_>>()
        .join("\n")
}

/// `name.ns` for a Service host `name.ns.svc.<domain>` (as kubectl users
/// write it); any other host as is.
fn short_host(host: &str) -> &str {
    host.split_once(".svc.").map_or(host, |(h, _)| h)
}

/// Client rows printed by default; past it, a summary (`-o wide` and
/// `-o json` list every row): a sidecar of a large mesh has thousands of
/// destinations and the table nobody reads cost a third of the run.
pub const MAX_ROWS: usize = 40;

/// `t` with its client rows cut to the CONFLICT ones, then UNKNOWN, at
/// most [`MAX_ROWS`], and a note counting what is not shown.
fn summarized(t: &TlsCheck) -> TlsCheck {
    let count = |s: Status| t.clients.iter().filter(|r| r.status == s).count();
    let mut shown: Vec<_> = [Status::Conflict, Status::Unknown]
        .iter()
        .flat_map(|s| t.clients.iter().filter(move |r| r.status == *s))
        .take(MAX_ROWS)
        .cloned()
        .collect();
    shown.shrink_to_fit();
    let hidden = t.clients.len() - shown.len();
    let mut notes = vec![format!(
        "{} of {} not shown ({} OK, {} AUTO, {} CONFLICT, {} UNKNOWN in all; CONFLICT rows first): -o wide or -o json lists every row",
        words::counts(hidden, "destination"),
        t.clients.len(),
        count(Status::Ok),
        count(Status::Auto),
        count(Status::Conflict),
        count(Status::Unknown),
    )];
    notes.extend(t.notes.iter().cloned());
    TlsCheck {
        schema: t.schema,
        clients: shown,
        servers: t.servers.clone(),
        notes,
    }
}

fn client_table(t: &TlsCheck, color: bool, with_reason: bool, short: bool) -> Table {
    let mut table = Table::new();
    table
        .load_preset(presets::NOTHING)
        .set_content_arrangement(ContentArrangement::Disabled);
    if !color {
        table.force_no_tty();
    }
    let mut header = vec![
        "PROXY",
        "HOST:PORT",
        "STATUS",
        "CLIENT",
        "SERVER",
        "DESTINATION RULE",
    ];
    if with_reason {
        header.push("REASON");
    }
    table.set_header(header);
    for r in &t.clients {
        let mut status = Cell::new(r.status.to_string());
        if color && r.status == Status::Conflict {
            status = status.fg(Color::Red);
        }
        let mut row = vec![
            Cell::new(&r.proxy),
            Cell::new({
                let host = if short { short_host(&r.host) } else { &r.host };
                match &r.subset {
                    Some(s) => format!("{host}:{}|{s}", r.port),
                    None => format!("{host}:{}", r.port),
                }
            }),
            status,
            Cell::new(&r.client_tls),
            Cell::new(r.server_mode.as_deref().unwrap_or("-")),
            Cell::new(r.rule.as_deref().unwrap_or("-")),
        ];
        if with_reason {
            row.push(Cell::new(&r.reason));
        }
        table.add_row(row);
    }
    table
}

fn servers_and_notes(t: &TlsCheck, out: &mut String) {
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
        out.push_str(&trimmed(&s));
        out.push('\n');
    }
    for n in &t.notes {
        out.push_str(&format!("note: {n}\n"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyze::tls_check::ClientRow;

    fn row(i: usize, status: Status) -> ClientRow {
        ClientRow {
            proxy: "sleep".into(),
            host: format!("svc{i}.ns.svc.cluster.local"),
            port: 80,
            subset: None,
            client_tls: "ISTIO_MUTUAL".into(),
            rule: None,
            server_mode: Some("STRICT".into()),
            status,
            reason: "r".into(),
        }
    }

    fn check(rows: Vec<ClientRow>) -> TlsCheck {
        TlsCheck {
            schema: "mesh503.io/tls-check/v1",
            clients: rows,
            servers: vec![],
            notes: vec![],
        }
    }

    #[test]
    fn a_big_table_shows_conflicts_first_and_counts_the_rest() {
        let mut rows: Vec<ClientRow> = (0..500).map(|i| row(i, Status::Ok)).collect();
        rows[321] = row(321, Status::Conflict);
        rows[7] = row(7, Status::Unknown);
        let out = render_table(&check(rows.clone()), false, 200, false);
        let lines: Vec<&str> = out.lines().collect();
        assert!(
            lines[1].contains("svc321.ns") && lines[1].contains("CONFLICT"),
            "{out}"
        );
        assert!(lines[2].contains("svc7.ns"), "{out}");
        assert!(
            out.contains(
                "498 destinations of 500 not shown (498 OK, 0 AUTO, 1 CONFLICT, 1 UNKNOWN"
            ),
            "{out}"
        );
        // Near misses: `-o wide` lists every row; a small table is whole.
        let wide = render_table(&check(rows), false, 200, true);
        assert_eq!(wide.lines().filter(|l| l.contains(".ns")).count(), 500);
        let small: Vec<ClientRow> = (0..MAX_ROWS).map(|i| row(i, Status::Ok)).collect();
        let out = render_table(&check(small), false, 200, false);
        assert!(!out.contains("not shown"), "{out}");
    }
}
