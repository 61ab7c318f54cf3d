//! Analyze stage, `kubectl mesh503 tls-check`: what `istioctl authn
//! tls-check` used to show (removed in Istio 1.6), computed from what the
//! proxies really run rather than from istiod's view. For each destination a
//! sidecar knows, the client TLS its cluster uses and the rule that set it;
//! for each server sidecar, the mode its inbound listener enforces per port;
//! and whether the two fit, decided by the model's decisions
//! ([`cluster_wire`], [`accepts`]) so `diagnose` and `tls-check` never
//! disagree. Rows only: rendering is `report::tls_check`.

use serde::Serialize;

use crate::envoy::config_dump::{ClientTlsConfig, ClusterKind};
use crate::istio::client_tls::Wire;
use crate::istio::peer_auth::MtlsMode;
use crate::model::decisions::{accepts, cluster_wire};
use crate::model::gaps::GapOrigin;
use crate::model::{GapKind, GapSource, Mesh, PodKey, Proxy};
use crate::snapshot::Snapshot;

/// Compatibility path for `run.rs`, which renders through `analyze::tls_check`
/// until the CLI calls `report::tls_check` directly.
pub use crate::report::tls_check::render_table;

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
    /// The server side was not available, or acceptance depends on certificates.
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
    /// Container port.
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

/// Offline: saved `/config_dump` files (full dumps, any Istio from 1.1; v2 or v3).
pub fn from_config_dumps(dumps: &[(String, serde_json::Value)]) -> Result<TlsCheck, String> {
    let mesh = Mesh::from_config_dumps(dumps)?;
    let mut t = from_mesh(&mesh);
    for p in &mesh.proxies {
        t.notes.push(format!("{}: {}", p.label, p.chosen_because));
    }
    Ok(t)
}

/// Live: from a snapshot's proxies; each proxy's unreadable parts and
/// collection gaps become notes.
pub fn from_snapshot(snap: &Snapshot) -> TlsCheck {
    let mesh = Mesh::from_snapshot(snap);
    let mut t = from_mesh(&mesh);
    for e in &snap.proxies {
        let pod = PodKey::new(&e.namespace, &e.pod);
        for g in &mesh.gaps {
            if let (GapSource::ProxyAdmin { pod: gp, .. }, GapOrigin::Model, GapKind::Unparseable) =
                (&g.source, &g.origin, g.kind)
            {
                if *gp == pod {
                    t.notes.push(format!("{pod}: {}", g.detail));
                }
            }
        }
        for g in &e.gaps {
            t.notes.push(format!("{}: {}", g.source, g.reason));
        }
    }
    t
}

fn client_tls_name(c: &ClientTlsConfig) -> String {
    match c {
        ClientTlsConfig::Plaintext => "plaintext".into(),
        ClientTlsConfig::Tls(t) if t.istio_mutual => "ISTIO_MUTUAL".into(),
        ClientTlsConfig::Tls(_) => "SIMPLE/MUTUAL".into(),
        ClientTlsConfig::AutoMtls { .. } => "auto".into(),
        ClientTlsConfig::Other(o) => o.clone(),
    }
}

fn conflict_reason(wire: Wire) -> &'static str {
    match wire {
        Wire::Plaintext => "client sends plaintext, server accepts only mTLS (503 UC)",
        Wire::IstioMtls => "client sends mTLS, server accepts only plaintext (503)",
        Wire::OtherTls => "client originates its own TLS, server requires Istio mTLS",
    }
}

/// The rows, from the model's proxies and decisions.
pub fn from_mesh(mesh: &Mesh) -> TlsCheck {
    let mut servers = Vec::new();
    for p in mesh.proxies.iter().filter(|p| p.dump.is_some()) {
        for (port, m) in &p.inbound.by_port {
            servers.push(ServerRow {
                proxy: p.label.clone(),
                port: *port,
                mode: m.as_peer_auth_mode().to_string(),
                listener: m.source_listener.clone(),
            });
        }
    }
    let mut clients = Vec::new();
    let mut notes = Vec::new();
    for p in mesh.proxies.iter().filter(|p| p.is_client()) {
        let Some(dump) = &p.dump else { continue };
        for problem in &dump.problems {
            notes.push(format!("{}: {problem}", p.label));
        }
        clients.extend(client_rows(mesh, p));
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

fn client_rows(mesh: &Mesh, p: &Proxy) -> Vec<ClientRow> {
    let Some(dump) = &p.dump else { return vec![] };
    let mut rows = Vec::new();
    for c in &dump.clusters {
        let ClusterKind::Outbound { port, subset, host } = &c.kind else {
            continue;
        };
        // Which server sidecars back this cluster, what they enforce on the
        // endpoint's port, and what this cluster sends each of them.
        let mut modes: Vec<MtlsMode> = Vec::new();
        let mut verdicts: Vec<(Option<Wire>, Option<bool>)> = Vec::new();
        for ep in dump.endpoints.get(&c.name).into_iter().flatten() {
            let Some(server) = mesh.proxy_by_ip(&ep.address) else {
                continue;
            };
            let Some(mode) = ep.port.and_then(|port| server.inbound.mode_for(port)) else {
                continue;
            };
            let mode = mode.as_peer_auth_mode();
            modes.push(mode);
            let wire = cluster_wire(c, ep.has_istio_tls_mode());
            verdicts.push((wire, wire.and_then(|w| accepts(mode, w))));
        }
        let auto = matches!(c.client_tls, ClientTlsConfig::AutoMtls { .. });
        let (status, reason) = if modes.is_empty() {
            if auto {
                (
                    Status::Auto,
                    "auto mTLS: mTLS to endpoints labelled tlsMode=istio, plaintext to the others"
                        .to_string(),
                )
            } else {
                (
                    Status::Unknown,
                    "no server sidecar dump for this cluster's endpoints".to_string(),
                )
            }
        } else if let Some((wire, _)) = verdicts.iter().rev().find(|(_, a)| *a == Some(false)) {
            (
                Status::Conflict,
                conflict_reason(wire.unwrap_or(Wire::OtherTls)).to_string(),
            )
        } else if verdicts.iter().any(|(_, a)| a.is_none()) {
            (
                Status::Unknown,
                "whether the server accepts this TLS depends on its certificates or transport"
                    .to_string(),
            )
        } else if auto {
            (
                Status::Auto,
                "auto mTLS matches each endpoint's sidecar".to_string(),
            )
        } else {
            (Status::Ok, "client TLS fits the server mode".to_string())
        };
        let mut server_modes: Vec<String> = modes.iter().map(|m| m.to_string()).collect();
        server_modes.sort();
        server_modes.dedup();
        rows.push(ClientRow {
            proxy: p.label.clone(),
            host: host.clone(),
            port: *port,
            subset: subset.clone(),
            client_tls: client_tls_name(&c.client_tls),
            rule: c
                .istio_config_ref
                .as_ref()
                .map(|(ns, name)| format!("{ns}/{name}")),
            server_mode: (!server_modes.is_empty()).then(|| server_modes.join(",")),
            status,
            reason,
        });
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envoy::config_dump::{ClientTlsConfig, Endpoint};
    use crate::model::builder::*;
    use crate::snapshot::ProxyRole;

    fn mesh(tls: ClientTlsConfig, server_plaintext: bool, labelled: bool) -> Mesh {
        let fqdn = "httpbin.foo.svc.cluster.local";
        let mut client =
            proxy(&sleep_pod(), ProxyRole::Client).with_cluster(cluster(8000, fqdn, tls));
        client.dump.as_mut().unwrap().endpoints.insert(
            format!("outbound|8000||{fqdn}"),
            vec![Endpoint {
                address: "10.0.0.2".into(),
                port: Some(8080),
                tls_mode: labelled.then(|| "istio".to_string()),
                ..Endpoint::default()
            }],
        );
        let server = proxy(&httpbin_pod(), ProxyRole::Server)
            .with_inbound(8080, inbound(true, server_plaintext));
        MeshBuilder::new()
            .target(httpbin())
            .proxy(client)
            .proxy(server)
            .build()
    }

    #[test]
    fn rows_use_the_same_decision_as_diagnose() {
        let cases = [
            (
                "plaintext to STRICT",
                ClientTlsConfig::Plaintext,
                false,
                true,
                Status::Conflict,
            ),
            (
                "plaintext to PERMISSIVE",
                ClientTlsConfig::Plaintext,
                true,
                true,
                Status::Ok,
            ),
            (
                "ISTIO_MUTUAL to STRICT",
                istio_tls(),
                false,
                true,
                Status::Ok,
            ),
            (
                "auto mTLS to a labelled STRICT sidecar",
                auto_tls(),
                false,
                true,
                Status::Auto,
            ),
            (
                "auto mTLS to an unlabelled STRICT endpoint sends plaintext",
                auto_tls(),
                false,
                false,
                Status::Conflict,
            ),
        ];
        for (name, tls, plaintext, labelled, want) in cases {
            let t = from_mesh(&mesh(tls, plaintext, labelled));
            let row = &t.clients[0];
            assert_eq!(row.status, want, "{name}: {row:?}");
            assert_eq!(t.has_conflicts(), want == Status::Conflict);
        }
        let t = from_mesh(&mesh(ClientTlsConfig::Plaintext, false, true));
        assert_eq!(t.servers.len(), 1);
        assert_eq!(t.servers[0].mode, "STRICT");
        assert_eq!(t.clients[0].server_mode.as_deref(), Some("STRICT"));
        assert_eq!(t.clients[0].client_tls, "plaintext");
    }

    #[test]
    fn offline_dumps_that_are_not_json_dumps_are_refused_with_the_file() {
        let e = from_config_dumps(&[("a.json".into(), serde_json::json!("nope"))]).unwrap_err();
        assert!(e.contains("a.json"), "{e}");
    }
}
