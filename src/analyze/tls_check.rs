//! `kubectl mesh503 tls-check`: what `istioctl authn tls-check` used to show
//! (removed in Istio 1.6), computed from what the proxies really run rather
//! than from istiod's view: for each destination a sidecar knows, the client
//! TLS its cluster uses and the rule that set it; for each server sidecar, the
//! mode its inbound listener enforces per port; and whether the two fit.

use super::context::{name_of, ns_of};
use crate::envoy::config_dump::{
    inbound_modes, parse_config_dump, ClientTlsConfig, ClusterKind, ConfigDump,
};
use crate::snapshot::{ProxyRole, Snapshot};
use comfy_table::{presets, Cell, Color, ContentArrangement, Table};
use serde::Serialize;

pub const TLS_CHECK_SCHEMA: &str = "mesh503.io/tls-check/v1";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Status {
    /// Client and server agree.
    Ok,
    /// They cannot talk: 503.
    Conflict,
    /// Auto mTLS: the client picks per endpoint, from the endpoint's tlsMode label.
    Auto,
    /// The server side was not available.
    Unknown,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Status::Ok => "OK",
            Status::Conflict => "CONFLICT",
            Status::Auto => "AUTO",
            Status::Unknown => "UNKNOWN",
        })
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct ClientRow {
    pub proxy: String,
    pub host: String,
    pub port: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subset: Option<String>,
    /// `plaintext`, `ISTIO_MUTUAL`, `SIMPLE/MUTUAL`, `auto`.
    pub client_tls: String,
    /// The DestinationRule the cluster was built from (`istio.config`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// Server modes seen for the cluster's endpoints (`STRICT` …), when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_mode: Option<String>,
    pub status: Status,
    pub reason: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct ServerRow {
    pub proxy: String,
    /// Container port; 0 = the catch-all chains.
    pub port: u16,
    pub mode: String,
    pub listener: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct TlsCheck {
    pub schema: &'static str,
    pub clients: Vec<ClientRow>,
    pub servers: Vec<ServerRow>,
    /// Parse problems and missing pieces.
    pub notes: Vec<String>,
}

impl TlsCheck {
    pub fn has_conflicts(&self) -> bool {
        self.clients.iter().any(|r| r.status == Status::Conflict)
    }
}

/// One proxy's parsed dump and the IPs it serves on.
struct Named {
    name: String,
    dump: ConfigDump,
    ips: Vec<String>,
    client: bool,
}

/// Offline: saved `/config_dump` files (full dumps, any Istio from 1.1; v2 or v3).
pub fn from_config_dumps(dumps: &[(String, serde_json::Value)]) -> Result<TlsCheck, String> {
    let mut named = Vec::new();
    let mut notes = Vec::new();
    for (name, v) in dumps {
        let dump = parse_config_dump(v).map_err(|e| format!("{name}: {e}"))?;
        let mut ips: Vec<String> = dump
            .bootstrap
            .as_ref()
            .map(|b| b.instance_ips.clone())
            .unwrap_or_default();
        if let Some(ip) = dump
            .bootstrap
            .as_ref()
            .and_then(|b| b.node_id.as_deref())
            .and_then(|id| id.split('~').nth(1))
        {
            ips.push(ip.to_string());
        }
        // The pod (from the node id) names the rows; the file goes in the notes.
        let pod = dump
            .bootstrap
            .as_ref()
            .and_then(|b| b.node_id.as_deref())
            .and_then(|id| id.split('~').nth(2))
            .map(str::to_string);
        let label = pod.unwrap_or_else(|| {
            std::path::Path::new(name)
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_else(|| name.clone())
        });
        notes.push(format!("{label}: read from {name}"));
        named.push(Named {
            name: label,
            dump,
            ips,
            client: true,
        });
    }
    let mut t = build(named);
    t.notes.extend(notes);
    Ok(t)
}

/// Live: from a snapshot's proxies.
pub fn from_snapshot(snap: &Snapshot) -> TlsCheck {
    let mut named = Vec::new();
    let mut notes = Vec::new();
    for p in &snap.proxies {
        let mut dump = ConfigDump::default();
        let mut any = false;
        for v in [&p.clusters_config, &p.listeners_config, &p.endpoints_config]
            .into_iter()
            .flatten()
        {
            match parse_config_dump(v) {
                Ok(d) => {
                    dump.merge(d);
                    any = true;
                }
                Err(e) => notes.push(format!("{}/{}: {e}", p.namespace, p.pod)),
            }
        }
        for g in &p.gaps {
            notes.push(format!("{}: {}", g.source, g.reason));
        }
        if !any {
            continue;
        }
        let ips = snap
            .objects_of_kind("Pod")
            .filter(|o| ns_of(o) == p.namespace && name_of(o) == p.pod)
            .filter_map(|o| o["status"]["podIP"].as_str().map(str::to_string))
            .collect();
        named.push(Named {
            name: format!("{}/{}", p.namespace, p.pod),
            dump,
            ips,
            client: p.role == ProxyRole::Client,
        });
    }
    let mut t = build(named);
    t.notes.extend(notes);
    t
}

fn build(named: Vec<Named>) -> TlsCheck {
    let mut servers = Vec::new();
    for n in &named {
        for (port, m) in inbound_modes(&n.dump.listeners) {
            servers.push(ServerRow {
                proxy: n.name.clone(),
                port,
                mode: m.as_peer_auth_mode().to_string(),
                listener: m.source_listener.clone(),
            });
        }
    }
    let mut clients = Vec::new();
    let mut notes = Vec::new();
    for n in named.iter().filter(|n| n.client) {
        for p in &n.dump.problems {
            notes.push(format!("{}: {p}", n.name));
        }
        for c in &n.dump.clusters {
            let ClusterKind::Outbound { port, subset, host } = &c.kind else {
                continue;
            };
            // Which server sidecars back this cluster, and on which port?
            let eps = n.dump.endpoints.get(&c.name).cloned().unwrap_or_default();
            let mut modes = Vec::new();
            let mut labelled = Vec::new();
            for ep in &eps {
                labelled.push(ep.has_istio_tls_mode());
                if let Some(server) = named
                    .iter()
                    .find(|s| s.ips.iter().any(|ip| ip == &ep.address))
                {
                    let m = inbound_modes(&server.dump.listeners);
                    let mode = ep
                        .port
                        .and_then(|p| m.get(&p).cloned())
                        .or_else(|| m.get(&0).cloned());
                    if let Some(mode) = mode {
                        modes.push(mode.as_peer_auth_mode());
                    }
                }
            }
            let (client_tls, sends_mtls) = match &c.client_tls {
                ClientTlsConfig::Plaintext => ("plaintext".to_string(), Some(false)),
                ClientTlsConfig::Tls(t) if t.istio_mutual => {
                    ("ISTIO_MUTUAL".to_string(), Some(true))
                }
                ClientTlsConfig::Tls(_) => ("SIMPLE/MUTUAL".to_string(), None),
                ClientTlsConfig::AutoMtls { .. } => ("auto".to_string(), None),
                ClientTlsConfig::Other(o) => (o.clone(), None),
            };
            use crate::istio::peer_auth::MtlsMode;
            let (status, reason) = if modes.is_empty() {
                match &c.client_tls {
                    ClientTlsConfig::AutoMtls { .. } => (Status::Auto, "auto mTLS: mTLS to endpoints labelled tlsMode=istio, plaintext to the others".to_string()),
                    _ => (Status::Unknown, "no server sidecar dump for this cluster's endpoints".to_string()),
                }
            } else {
                let mut conflict = None;
                for (i, m) in modes.iter().enumerate() {
                    let mtls = match sends_mtls {
                        Some(v) => Some(v),
                        None if client_tls == "auto" => {
                            Some(labelled.get(i).copied().unwrap_or(false))
                        }
                        None => None,
                    };
                    match (mtls, m) {
                        (Some(false), MtlsMode::Strict) => {
                            conflict =
                                Some("client sends plaintext, server accepts only mTLS (503 UC)")
                        }
                        (Some(true), MtlsMode::Disable) => {
                            conflict =
                                Some("client sends mTLS, server accepts only plaintext (503)")
                        }
                        (None, MtlsMode::Strict) if client_tls == "SIMPLE/MUTUAL" => {
                            conflict =
                                Some("client originates its own TLS, server requires Istio mTLS")
                        }
                        _ => {}
                    }
                }
                match conflict {
                    Some(r) => (Status::Conflict, r.to_string()),
                    None if client_tls == "auto" => (
                        Status::Auto,
                        "auto mTLS matches each endpoint's sidecar".to_string(),
                    ),
                    None => (Status::Ok, "client TLS fits the server mode".to_string()),
                }
            };
            let mut server_modes: Vec<String> = modes.iter().map(|m| m.to_string()).collect();
            server_modes.sort();
            server_modes.dedup();
            clients.push(ClientRow {
                proxy: n.name.clone(),
                host: host.clone(),
                port: *port,
                subset: subset.clone(),
                client_tls,
                rule: c
                    .istio_config_ref
                    .as_ref()
                    .map(|(ns, name)| format!("{ns}/{name}")),
                server_mode: (!server_modes.is_empty()).then(|| server_modes.join(",")),
                status,
                reason,
            });
        }
    }
    clients.sort_by(|a, b| {
        (&a.proxy, &a.host, a.port, &a.subset).cmp(&(&b.proxy, &b.host, b.port, &b.subset))
    });
    TlsCheck {
        schema: TLS_CHECK_SCHEMA,
        clients,
        servers,
        notes,
    }
}

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
                if r.port == 0 {
                    "*".into()
                } else {
                    r.port.to_string()
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
