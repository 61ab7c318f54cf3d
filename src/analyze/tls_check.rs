//! Analyze stage, `kubectl mesh503 tls-check`: what `istioctl authn
//! tls-check` used to show (removed in Istio 1.6), computed from what the
//! proxies really run rather than from istiod's view. For each destination a
//! sidecar knows, the client TLS its cluster uses and the rule that set it;
//! for each server sidecar, the mode its inbound listener enforces per port;
//! and whether the two fit, decided by `istio::tls` ([`cluster_verdict`]:
//! the wire a running cluster sends to each endpoint, what the server
//! accepts, the mismatch) — the same functions `diagnose` reaches through
//! the model, so the two never disagree. Rows only: rendering is
//! `report::tls_check`.

use serde::Serialize;

use crate::envoy::config_dump::{Cluster, ClusterKind, ConfigDump};
use crate::istio::tls::{cluster_verdict, ClusterStatus, EndpointView, Server};
use crate::model::decisions::Client;
use crate::model::gaps::GapOrigin;
use crate::model::{GapKind, GapSource, Mesh, PodKey, Proxy};
use crate::snapshot::Snapshot;

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
    /// Container port; absent for the catch-all chains of `virtualInbound`
    /// (every port without chains of its own).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
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

    /// Why nothing could be checked, when nothing could: no destination
    /// row, or none decided (every one UNKNOWN). Exit 4.
    pub fn unchecked(&self) -> Option<String> {
        if self.clients.is_empty() {
            return Some(
                "the client's sidecar lists no outbound destination to check (for svc/NAME: none for that service)".into(),
            );
        }
        if self.clients.iter().all(|r| r.status == Status::Unknown) {
            return Some(
                "no destination could be decided: every row is UNKNOWN (see the notes for the server sidecars not read)".into(),
            );
        }
        None
    }
}

/// Offline: saved `/config_dump` files (full dumps, any Istio from 1.1; v2
/// or v3), parsed, with the file each came from.
pub fn from_config_dumps(dumps: Vec<(String, ConfigDump)>) -> TlsCheck {
    from_offline(&Mesh::from_config_dumps(dumps))
}

/// The rows of a model of offline dumps ([`Mesh::from_config_dumps`]),
/// with where each proxy was read in the notes.
pub fn from_offline(mesh: &Mesh) -> TlsCheck {
    let mut t = from_mesh(mesh);
    for p in &mesh.proxies {
        t.notes.push(format!("{}: {}", p.label, p.chosen_because));
    }
    t
}

/// Live: from a snapshot's proxies; each proxy's unreadable parts and
/// collection gaps become notes. `service` (`svc/NAME`, resolved by
/// collect) keeps only the rows of its host.
pub fn from_snapshot(snap: &Snapshot, service: Option<&str>) -> TlsCheck {
    let mesh = Mesh::from_snapshot(snap);
    let mut t = from_mesh(&mesh);
    if service.is_some() {
        let hosts: Vec<&str> = mesh.target_services().map(|s| s.fqdn.as_str()).collect();
        t.clients.retain(|r| hosts.contains(&r.host.as_str()));
    }
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

/// The rows, from the model's proxies and decisions.
pub fn from_mesh(mesh: &Mesh) -> TlsCheck {
    let mut servers = Vec::new();
    for p in mesh.proxies.iter().filter(|p| p.dump.is_some()) {
        let ports = p.inbound.by_port.iter().map(|(port, m)| (Some(*port), m));
        for (port, m) in ports.chain(p.inbound.catch_all.iter().map(|m| (None, m))) {
            servers.push(ServerRow {
                proxy: p.label.clone(),
                port,
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
        if let Some(what) = not_a_sidecar(p) {
            notes.push(format!("{}: {what}", p.label));
        } else if p.inbound.by_port.is_empty() && p.inbound.catch_all.is_none() {
            notes.push(format!(
                "{}: a sidecar whose dump holds no inbound listener: its server mode is not shown",
                p.label
            ));
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

/// What the servers behind a client cluster's endpoints accept on the
/// endpoint's port: a read sidecar's inbound listener, or a pod of the
/// snapshot known to run no sidecar.
fn endpoint_views(mesh: &Mesh, p: &Proxy, c: &Cluster) -> Vec<EndpointView> {
    let Some(dump) = &p.dump else { return vec![] };
    dump.endpoints
        .get(&c.name)
        .into_iter()
        .flatten()
        .map(|ep| {
            let sidecar = mesh.proxy_by_ip(&ep.address).and_then(|server| {
                let mode = server.inbound.mode_for(ep.port?)?;
                Some(Server::Sidecar(mode.as_peer_auth_mode()))
            });
            let without = || {
                mesh.pod_by_ip(&ep.address)
                    .filter(|pod| !pod.has_sidecar())
                    .map(|_| Server::NoSidecar)
            };
            EndpointView {
                labelled_istio: ep.has_istio_tls_mode(),
                server: sidecar.or_else(without),
            }
        })
        .collect()
}

/// What a proxy without a sidecar's inbound side is, in words: a gateway
/// or a waypoint has no server mode of its own to show (Istio builds
/// `virtualInbound` only for sidecars: pilot/pkg/networking/core
/// `listener.go` `buildSidecarInboundListeners`).
fn not_a_sidecar(p: &Proxy) -> Option<String> {
    let dump = p.dump.as_ref()?;
    let inbound = !p.inbound.by_port.is_empty()
        || p.inbound.catch_all.is_some()
        || dump
            .listeners
            .iter()
            .any(crate::istio::tls::is_sidecar_inbound)
        || dump
            .clusters
            .iter()
            .any(|c| matches!(c.kind, ClusterKind::Inbound { .. }));
    if inbound {
        return None;
    }
    let kind = match dump.bootstrap.as_ref().and_then(|b| b.proxy_type()) {
        Some("router") => "a gateway (proxy type router)".to_string(),
        Some("waypoint") => "a waypoint".to_string(),
        Some(other) => format!("a proxy of type {other}"),
        None => "not a sidecar (a gateway or waypoint)".to_string(),
    };
    Some(format!(
        "{kind}: it has no mesh inbound listener, so no server mode is shown for it; its outbound TLS is listed like a sidecar's"
    ))
}

/// The DestinationRule applying to this client for `host`, from the
/// model's lookup (the same one `diagnose` uses), when the cluster's
/// `istio.config` metadata does not name one (Istio before 1.3, or stripped).
fn applying_rule(mesh: &Mesh, p: &Proxy, host: &str) -> Option<String> {
    let svc = mesh.services.iter().find(|s| s.fqdn == host)?;
    let client = match p.pod.as_ref().and_then(|k| mesh.pod(k)) {
        Some(pod) => Client::of_pod(pod),
        None => Client::in_namespace(&p.pod.as_ref()?.namespace),
    };
    let lookup = mesh.destination_rule_lookup(&client, svc);
    let names: Vec<String> = lookup
        .selection
        .as_ref()?
        .rules
        .iter()
        .map(|r| format!("{}/{}", r.meta.namespace, r.meta.name))
        .collect();
    Some(names.join(","))
}

fn client_rows(mesh: &Mesh, p: &Proxy) -> Vec<ClientRow> {
    let Some(dump) = &p.dump else { return vec![] };
    let mut rows = Vec::new();
    for c in &dump.clusters {
        let ClusterKind::Outbound { port, subset, host } = &c.kind else {
            continue;
        };
        // A gateway's SNI-DNAT twin (`outbound_.443_._.host`, for TLS
        // passthrough) of a cluster listed already: the same destination
        // (pilot/pkg/networking/core/cluster.go, sni-dnat clusters).
        if c.name.starts_with("outbound_.") {
            let twin = format!("outbound|{port}|{}|{host}", subset.as_deref().unwrap_or(""));
            if dump.cluster(&twin).is_some() {
                continue;
            }
        }
        let verdict = cluster_verdict(&c.client_tls, &endpoint_views(mesh, p, c));
        let mut server_modes: Vec<String> =
            verdict.server_modes.iter().map(|m| m.to_string()).collect();
        if verdict.no_sidecar {
            server_modes.push("no sidecar".into());
        }
        rows.push(ClientRow {
            proxy: p.label.clone(),
            host: host.clone(),
            port: *port,
            subset: subset.clone(),
            client_tls: verdict.client.label().to_string(),
            rule: c
                .istio_config_ref
                .as_ref()
                .map(|(ns, name)| format!("{ns}/{name}"))
                .or_else(|| applying_rule(mesh, p, host)),
            server_mode: (!server_modes.is_empty()).then(|| server_modes.join(",")),
            status: match verdict.status {
                ClusterStatus::Ok => Status::Ok,
                ClusterStatus::Conflict(_) => Status::Conflict,
                ClusterStatus::Auto => Status::Auto,
                ClusterStatus::Unknown | ClusterStatus::Depends => Status::Unknown,
            },
            reason: verdict.reason().to_string(),
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
            (
                "near miss: user TLS to PERMISSIVE reaches the app, which decides",
                ClientTlsConfig::Tls(crate::envoy::config_dump::TlsContext::default()),
                true,
                true,
                Status::Unknown,
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

    /// A gateway's SNI-DNAT twin (`outbound_.443_._.host`, plaintext: the
    /// TLS passes through) is the same destination: one row, the real
    /// cluster's TLS. A proxy without a mesh inbound side is said to be one;
    /// the near miss, a sidecar with an inbound cluster, is not.
    #[test]
    fn gateway_twins_once_and_non_sidecars_named() {
        use crate::envoy::config_dump::{Cluster, ClusterKind};
        use crate::istio::sidecar::SidecarKind;
        let fqdn = "httpbin.foo.svc.cluster.local";
        let gw_pod = pod(
            "istio-system",
            "gw-1",
            "gw",
            "10.0.0.7",
            Some(SidecarKind::Classic),
        );
        let mut twin = cluster(443, fqdn, ClientTlsConfig::Plaintext);
        twin.name = format!("outbound_.443_._.{fqdn}");
        let gw = proxy(&gw_pod, ProxyRole::Client)
            .with_cluster(cluster(443, fqdn, istio_tls()))
            .with_cluster(twin);
        let t = from_mesh(&MeshBuilder::new().proxy(gw).build());
        assert_eq!(t.clients.len(), 1, "{:?}", t.clients);
        assert_ne!(t.clients[0].client_tls, "plaintext");
        assert!(
            t.notes
                .iter()
                .any(|n| n.contains("no mesh inbound listener")),
            "{:?}",
            t.notes
        );
        let sidecar = proxy(&sleep_pod(), ProxyRole::Client)
            .with_cluster(cluster(8000, fqdn, istio_tls()))
            .with_cluster(Cluster {
                name: "inbound|8080||".into(),
                kind: ClusterKind::Inbound { port: 8080 },
                ..Cluster::default()
            });
        let t = from_mesh(&MeshBuilder::new().proxy(sidecar).build());
        assert!(
            !t.notes
                .iter()
                .any(|n| n.contains("no mesh inbound listener")),
            "{:?}",
            t.notes
        );
        let with_inbound = proxy(&sleep_pod(), ProxyRole::Client)
            .with_cluster(cluster(8000, fqdn, istio_tls()))
            .with_inbound(8080, inbound(true, false));
        let t = from_mesh(&MeshBuilder::new().proxy(with_inbound).build());
        assert!(t.notes.is_empty(), "{:?}", t.notes);
        // An SNI cluster without a twin is kept.
        let mut lone = cluster(443, fqdn, ClientTlsConfig::Plaintext);
        lone.name = format!("outbound_.443_._.{fqdn}");
        let t = from_mesh(
            &MeshBuilder::new()
                .proxy(proxy(&gw_pod, ProxyRole::Client).with_cluster(lone))
                .build(),
        );
        assert_eq!(t.clients.len(), 1);
    }

    /// Offline dumps: one proxy each, named by its node, with where it
    /// was read in the notes.
    #[test]
    fn offline_dumps_are_one_proxy_each() {
        let dump = crate::envoy::config_dump::parse_config_dump(&serde_json::json!({"configs": [
            {"@type": "type.googleapis.com/envoy.admin.v3.BootstrapConfigDump",
             "bootstrap": {"node": {"id": "sidecar~10.0.0.9~sleep-1.foo~foo.svc.cluster.local"}}},
            {"@type": "type.googleapis.com/envoy.admin.v3.ClustersConfigDump",
             "dynamic_active_clusters": [{"cluster": {"name": "outbound|8000||httpbin.foo.svc.cluster.local"}}]}]}))
        .unwrap();
        let t = from_config_dumps(vec![("a.json".into(), dump)]);
        assert_eq!(t.clients.len(), 1);
        assert_eq!(t.clients[0].proxy, "sleep-1.foo");
        assert_eq!(t.clients[0].client_tls, "plaintext");
        assert!(
            t.notes
                .contains(&"sleep-1.foo: read from a.json".to_string()),
            "{:?}",
            t.notes
        );
    }
}
