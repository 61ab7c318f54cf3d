//! mTLS mismatches, the first cause of Istio 503s:
//!
//! - `MTLS_PLAINTEXT_TO_STRICT`: the client sidecar sends plaintext to a
//!   server that accepts only mTLS (a DestinationRule without `tls` replacing
//!   an ISTIO_MUTUAL one with auto mTLS off, `tls.mode: DISABLE`, a port-level
//!   entry without tls). Envoy: client `503 UC`, server `NR filter_chain_not_found`.
//! - `MTLS_TO_PLAINTEXT_SERVER`: the client sends Istio mTLS to a pod without
//!   a sidecar or whose sidecar is DISABLE (incl. a workload-level
//!   PeerAuthentication auto mTLS cannot see, istio/istio#32788). Client
//!   `503 UF` with `WRONG_VERSION_NUMBER`, or `UC` against a DISABLE sidecar.
//! - `TLS_ORIGINATION_TO_SIDECAR`: SIMPLE/MUTUAL towards a STRICT sidecar.
//! - `CLIENT_WITHOUT_SIDECAR_TO_STRICT`: a pod without sidecar calls a STRICT server.
//! - `PROXY_CONFIG_DIFFERS`: the rule the API says applies is not the one
//!   the client's cluster was built from (config not pushed yet, or RBAC hid objects).
//!
//! Sources: istio/istio pilot/pkg/networking/core/cluster_tls.go
//! (`buildUpstreamTLSSettings`, auto mTLS), pilot/pkg/model/push_context.go
//! (DestinationRule lookup), pilot/pkg/security/authn (PeerAuthentication
//! composition); Envoy response flags (source/common/stream_info/utility.h).

use super::context::{
    container_port, has_sidecar, labels_of, log_line_targets, name_of, ns_of, sample_line, Context,
    Proxy, Service, ServicePort,
};
use super::{Evidence, EvidenceKind, Finding, Fix, Severity};
use crate::envoy::access_log::{tls_failure_reason, AccessLogEntry};
use crate::envoy::config_dump::{inbound_mode_for, ClientTlsConfig, Cluster, InboundMode};
use crate::istio::client_tls::{self, ClientTlsDecision, ClientTlsMode, EndpointLabels};
use crate::istio::destination_rule::{
    effective_policy, lookup, EffectivePolicy, PolicyOrigin, Selection,
};
use crate::istio::legacy_policy;
use crate::istio::peer_auth::{self, MtlsMode, ServerMode};
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// What goes on the wire from client to one server endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wire {
    Plaintext,
    IstioMtls,
    /// SIMPLE or MUTUAL with user certificates.
    OtherTls,
}

/// One server pod as seen for one service port.
struct ServerSide<'c> {
    pod: &'c Value,
    sidecar: bool,
    container_port: u16,
    predicted: Option<ServerMode>,
    observed: Option<InboundMode>,
    proxy: Option<&'c Proxy<'c>>,
}

impl ServerSide<'_> {
    fn id(&self) -> String {
        format!("{}/{}", ns_of(self.pod), name_of(self.pod))
    }
    /// What the server really accepts: its listener if read, else config.
    fn mode(&self) -> Option<MtlsMode> {
        if !self.sidecar {
            return Some(MtlsMode::Disable);
        }
        self.observed
            .as_ref()
            .map(InboundMode::as_peer_auth_mode)
            .or(self.predicted.as_ref().map(|m| m.mode))
    }
    fn labelled_istio(&self) -> bool {
        self.pod["metadata"]["labels"]["security.istio.io/tlsMode"] == "istio"
    }
}

/// One client (a read sidecar, or a hypothetical client in the service's
/// namespace when no client sidecar could be read).
struct ClientSide<'c> {
    id: String,
    /// " (and N other pod(s) of the same workload)" when replicas were folded.
    replicas_note: String,
    namespace: String,
    labels: BTreeMap<String, String>,
    proxy: Option<&'c Proxy<'c>>,
}

pub fn check(ctx: &Context) -> Vec<Finding> {
    let mut out = Vec::new();
    for svc in &ctx.services {
        let pods = ctx.backing_pods(svc);
        for sp in &svc.ports {
            let servers: Vec<ServerSide> =
                pods.iter().map(|p| server_side(ctx, svc, sp, p)).collect();
            if servers.is_empty() {
                continue;
            }
            let mut clients: Vec<ClientSide> = ctx
                .clients()
                .map(|p| ClientSide {
                    id: p.id(),
                    replicas_note: if p.same_workload > 0 {
                        format!(
                            " (and {} other pod(s) of the same workload)",
                            p.same_workload
                        )
                    } else {
                        String::new()
                    },
                    namespace: p.evidence.namespace.clone(),
                    labels: p
                        .pod
                        .map(|pod| labels_of(pod, &["metadata", "labels"]))
                        .unwrap_or_default(),
                    proxy: Some(p),
                })
                .collect();
            if clients.is_empty() {
                clients.push(ClientSide {
                    id: format!("any sidecar client in {}", svc.namespace),
                    replicas_note: String::new(),
                    namespace: svc.namespace.clone(),
                    labels: BTreeMap::new(),
                    proxy: None,
                });
            }
            for c in &clients {
                out.extend(check_pair(ctx, svc, sp, c, &servers));
            }
            out.extend(clients_without_sidecar(ctx, svc, sp, &servers));
        }
    }
    out
}

fn server_side<'c>(
    ctx: &'c Context,
    svc: &Service,
    sp: &ServicePort,
    pod: &'c Value,
) -> ServerSide<'c> {
    let sidecar = has_sidecar(pod);
    let cport = container_port(pod, &sp.target_port, sp.number);
    let labels = labels_of(pod, &["metadata", "labels"]);
    let predicted = sidecar.then(|| {
        if ctx.legacy_authn {
            legacy_policy::legacy_server_mode(
                &ctx.legacy_mesh,
                &ctx.legacy_policies,
                &svc.name,
                &svc.namespace,
                sp.number as u32,
                sp.name.as_deref(),
            )
        } else {
            peer_auth::server_mode(
                &ctx.pas,
                &ctx.root_ns,
                &svc.namespace,
                &labels,
                Some(cport as u32),
            )
        }
    });
    let proxy = ctx.proxy_for(ns_of(pod), name_of(pod));
    let observed = proxy
        .and_then(|p| p.dump.as_ref())
        .filter(|d| !d.listeners.is_empty())
        .and_then(|d| inbound_mode_for(&d.listeners, cport));
    ServerSide {
        pod,
        sidecar,
        container_port: cport,
        predicted,
        observed,
        proxy,
    }
}

/// The auto-mTLS-visible mode of the service's namespace.
fn namespace_mode(ctx: &Context, ns: &str) -> MtlsMode {
    if ctx.legacy_authn {
        legacy_policy::legacy_namespace_mode(&ctx.legacy_mesh, &ctx.legacy_policies, ns).mode
    } else {
        peer_auth::namespace_mode(&ctx.pas, &ctx.root_ns, ns).mode
    }
}

/// What the client's cluster really sends to a server endpoint.
fn observed_wire(cluster: &Cluster, server_labelled_istio: bool) -> Wire {
    match &cluster.client_tls {
        ClientTlsConfig::Plaintext => Wire::Plaintext,
        ClientTlsConfig::Tls(t) if t.istio_mutual => Wire::IstioMtls,
        ClientTlsConfig::Tls(_) => Wire::OtherTls,
        // Endpoints without the tlsMode label match no TLS entry: raw_buffer.
        ClientTlsConfig::AutoMtls { istio, .. } => {
            if !server_labelled_istio {
                Wire::Plaintext
            } else if istio.istio_mutual {
                Wire::IstioMtls
            } else {
                Wire::OtherTls
            }
        }
        ClientTlsConfig::Other(_) => Wire::OtherTls,
    }
}

fn predicted_wire(d: &ClientTlsDecision, server_labelled_istio: bool) -> Wire {
    match d.mode {
        ClientTlsMode::Plaintext => Wire::Plaintext,
        ClientTlsMode::IstioMutual => Wire::IstioMtls,
        ClientTlsMode::Simple | ClientTlsMode::Mutual => Wire::OtherTls,
        ClientTlsMode::AutoIstioMutual => {
            if server_labelled_istio {
                Wire::IstioMtls
            } else {
                Wire::Plaintext
            }
        }
    }
}

fn describe_cluster_tls(c: &Cluster) -> String {
    match &c.client_tls {
        ClientTlsConfig::Plaintext => "no transport socket: plaintext".into(),
        ClientTlsConfig::Tls(t) if t.istio_mutual => "TLS transport socket with Istio certificates: ISTIO_MUTUAL".into(),
        ClientTlsConfig::Tls(t) => format!("TLS transport socket (sni {:?}): SIMPLE/MUTUAL with user certificates", t.sni.as_deref().unwrap_or("-")),
        ClientTlsConfig::AutoMtls { .. } => "auto mTLS transport_socket_matches: mTLS to endpoints labelled tlsMode=istio, plaintext to others".into(),
        ClientTlsConfig::Other(n) => format!("transport socket {n}"),
    }
}

fn flags_summary(entries: &[&AccessLogEntry]) -> String {
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for e in entries {
        let f = if e.response_flags.is_empty() {
            "-".to_string()
        } else {
            e.response_flags.join(",")
        };
        *counts.entry(f).or_default() += 1;
    }
    counts
        .iter()
        .map(|(f, n)| format!("{n} × {f}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Server log lines showing plaintext at a TLS-only port, or TLS at a plaintext one.
fn server_rejections<'l>(server: &'l ServerSide, needle: &str) -> Vec<&'l AccessLogEntry> {
    let Some(p) = server.proxy else { return vec![] };
    p.log
        .iter()
        .filter(|e| {
            e.details.as_deref().is_some_and(|d| d.contains(needle))
                || (needle == "filter_chain_not_found"
                    && e.has_flag("NR")
                    && e.response_code == Some(0))
                || (needle == "DPE" && e.has_flag("DPE"))
        })
        .filter(|e| {
            e.downstream_local_address.as_deref().is_none_or(|a| {
                a.ends_with(&format!(":{}", server.container_port)) || a.ends_with(":15006")
            })
        })
        .collect()
}

fn check_pair(
    ctx: &Context,
    svc: &Service,
    sp: &ServicePort,
    client: &ClientSide,
    servers: &[ServerSide],
) -> Vec<Finding> {
    let mut out = Vec::new();
    let lk = lookup(
        &ctx.drs,
        &client.namespace,
        &client.labels,
        &svc.fqdn,
        &svc.namespace,
        &ctx.root_ns,
    );
    let eff = lk
        .selection
        .as_ref()
        .map(|s| effective_policy(s, sp.number as u32, None));
    let endpoints = EndpointLabels::from_flags(servers.iter().map(|s| s.labelled_istio()));
    let ns_mode = namespace_mode(ctx, &svc.namespace);
    let decision = client_tls::decide(
        eff.as_ref().and_then(|e| e.tls.as_ref()),
        ctx.auto_mtls,
        ns_mode,
        endpoints,
    );
    let cluster_name = format!("outbound|{}||{}", sp.number, svc.fqdn);
    let cluster = client
        .proxy
        .and_then(|p| p.dump.as_ref())
        .and_then(|d| d.cluster(&cluster_name));
    // 503s the client logged for this service port.
    let failures: Vec<&AccessLogEntry> = client
        .proxy
        .map(|p| {
            p.log
                .iter()
                .filter(|e| {
                    e.response_code == Some(503) && log_line_targets(e, sp.number, &svc.fqdn)
                })
                .collect()
        })
        .unwrap_or_default();
    let subject = format!(
        "{}:{} from {}{}",
        svc.fqdn, sp.number, client.id, client.replicas_note
    );

    // Does the proxy run what the API says?
    if let (Some(c), Some(sel)) = (cluster, lk.selection.as_ref()) {
        if let Some((ns, name)) = &c.istio_config_ref {
            if !sel
                .rules
                .iter()
                .any(|r| &r.meta.namespace == ns && &r.meta.name == name)
            {
                out.push(config_differs(
                    client,
                    &cluster_name,
                    c,
                    sel,
                    ns,
                    name,
                    &subject,
                ));
            }
        }
    }

    for server in servers {
        let labelled = server.labelled_istio();
        let wire_pred = predicted_wire(&decision, labelled);
        let wire = cluster
            .map(|c| observed_wire(c, labelled))
            .unwrap_or(wire_pred);
        let Some(mode) = server.mode() else { continue };
        let kind = match (wire, mode) {
            (Wire::Plaintext, MtlsMode::Strict) => Kind::PlaintextToStrict,
            (Wire::IstioMtls, MtlsMode::Disable) => Kind::MtlsToPlaintext,
            (Wire::OtherTls, MtlsMode::Strict) => Kind::OtherTlsToStrict,
            _ => continue,
        };
        out.push(build(
            ctx,
            svc,
            sp,
            client,
            server,
            &lk.selection,
            eff.as_ref(),
            &decision,
            cluster,
            &failures,
            kind,
            wire_pred == wire,
            &subject,
        ));
        // One finding per client and port: the first mismatching server tells the story.
        break;
    }
    out
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    PlaintextToStrict,
    MtlsToPlaintext,
    OtherTlsToStrict,
}

#[allow(clippy::too_many_arguments)]
fn build(
    ctx: &Context,
    svc: &Service,
    sp: &ServicePort,
    client: &ClientSide,
    server: &ServerSide,
    selection: &Option<Selection>,
    eff: Option<&EffectivePolicy>,
    decision: &ClientTlsDecision,
    cluster: Option<&Cluster>,
    failures: &[&AccessLogEntry],
    kind: Kind,
    config_agrees: bool,
    subject: &str,
) -> Finding {
    let mut evidence = Vec::new();
    let mut explanation = Vec::new();
    let mut confidence: u32 = 40;

    // --- config: which rule, what the client sends
    match selection {
        Some(sel) => {
            explanation.extend(sel.explain());
            for r in &sel.rules {
                evidence.push(Evidence {
                    kind: EvidenceKind::Config,
                    source: format!("DestinationRule {}", r.key()),
                    detail: format!(
                        "host {}, {}",
                        r.host,
                        match r.top_level_tls_mode() {
                            Some(m) => format!("trafficPolicy.tls.mode {m}"),
                            None => "no trafficPolicy.tls".to_string(),
                        }
                    ),
                });
            }
            for s in &sel.shadowed {
                evidence.push(Evidence {
                    kind: EvidenceKind::Config,
                    source: format!("DestinationRule {}", s.rule.key()),
                    detail: format!("not applied: {}", s.explanation),
                });
            }
        }
        None => explanation.push(format!(
            "No DestinationRule applies to {} for clients in {}",
            svc.fqdn, client.namespace
        )),
    }
    if let Some(e) = eff {
        explanation.extend(e.notes.iter().cloned());
    }
    explanation.push(format!("Client side: {}.", decision.reason));
    evidence.push(Evidence {
        kind: EvidenceKind::Config,
        source: format!("ConfigMap {}/istio", ctx.snap.istio_namespace),
        detail: format!(
            "auto mTLS {}{}",
            if ctx.auto_mtls { "on" } else { "off" },
            match ctx.mesh.enable_auto_mtls {
                Some(v) => format!(" (enableAutoMtls: {v})"),
                None => format!(
                    " (enableAutoMtls not set: the default for Istio {})",
                    ctx.version
                        .map(|v| v.to_string())
                        .unwrap_or_else(|| "current".into())
                ),
            }
        ),
    });

    // --- config: server mode
    let server_text = if !server.sidecar {
        format!(
            "{} has no istio-proxy sidecar: it accepts plaintext only",
            server.id()
        )
    } else {
        match &server.predicted {
            Some(m) => {
                evidence.push(Evidence {
                    kind: EvidenceKind::Config,
                    source: match &m.source {
                        peer_auth::ModeSource::Default => "no PeerAuthentication".to_string(),
                        s => s.to_string(),
                    },
                    detail: format!(
                        "{} for {} port {}",
                        m.mode,
                        server.id(),
                        server.container_port
                    ),
                });
                format!(
                    "{}'s sidecar on port {} is {}",
                    svc.name,
                    server.container_port,
                    m.explain()
                )
            }
            None => format!("{}'s sidecar mode is unknown from config", svc.name),
        }
    };
    explanation.push(format!("Server side: {server_text}."));

    // --- data plane: client cluster
    if let Some(c) = cluster {
        let agrees = match kind {
            Kind::PlaintextToStrict => {
                matches!(c.client_tls, ClientTlsConfig::Plaintext)
                    || (matches!(c.client_tls, ClientTlsConfig::AutoMtls { .. })
                        && !server.labelled_istio())
            }
            Kind::MtlsToPlaintext => !matches!(c.client_tls, ClientTlsConfig::Plaintext),
            Kind::OtherTlsToStrict => matches!(c.client_tls, ClientTlsConfig::Tls(_)),
        };
        if agrees {
            confidence += 20;
        }
        evidence.push(Evidence {
            kind: EvidenceKind::DataPlane,
            source: format!("pod {} :15000/config_dump", client.id),
            detail: format!(
                "cluster {} has {}{}",
                c.name,
                describe_cluster_tls(c),
                c.istio_config
                    .as_deref()
                    .map(|p| format!("; built from {p}"))
                    .unwrap_or_default()
            ),
        });
        if !config_agrees {
            explanation.push("The client sidecar's running config differs from what the API objects predict; the sidecar's config was used.".into());
        }
    }
    // --- data plane: server listener
    if let Some(m) = &server.observed {
        let confirms = match kind {
            Kind::PlaintextToStrict | Kind::OtherTlsToStrict => !m.accepts_plaintext,
            Kind::MtlsToPlaintext => !m.accepts_mtls,
        };
        if confirms {
            confidence += 15;
        }
        evidence.push(Evidence {
            kind: EvidenceKind::DataPlane,
            source: format!("pod {} :15000/config_dump", server.id()),
            detail: format!(
                "{} on port {} accepts {}",
                m.source_listener,
                server.container_port,
                match (m.accepts_mtls, m.accepts_plaintext) {
                    (true, false) => "only mTLS (STRICT)",
                    (true, true) => "mTLS and plaintext (PERMISSIVE)",
                    (false, true) => "only plaintext (DISABLE)",
                    (false, false) => "nothing it can match",
                }
            ),
        });
    }
    // --- data plane: logs
    let relevant: Vec<&AccessLogEntry> = failures
        .iter()
        .copied()
        .filter(|e| match kind {
            Kind::PlaintextToStrict => e.has_flag("UC") || e.has_flag("UF") || e.has_flag("URX"),
            _ => e.has_flag("UF") || e.has_flag("UC") || e.has_flag("URX"),
        })
        .collect();
    if !relevant.is_empty() {
        confidence += 20;
        let tls = relevant
            .iter()
            .find_map(|e| tls_failure_reason(e))
            .map(|r| format!("; TLS failure {r}"))
            .unwrap_or_default();
        evidence.push(Evidence {
            kind: EvidenceKind::DataPlane,
            source: format!("pod {} istio-proxy log", client.id),
            detail: format!(
                "{} request(s) answered 503 ({}){tls}; e.g. {}",
                relevant.len(),
                flags_summary(&relevant),
                sample_line(&relevant)
            ),
        });
    }
    let needle = match kind {
        Kind::MtlsToPlaintext => "DPE",
        _ => "filter_chain_not_found",
    };
    let rejected = server_rejections(server, needle);
    if !rejected.is_empty() {
        confidence += 10;
        evidence.push(Evidence {
            kind: EvidenceKind::DataPlane,
            source: format!("pod {} istio-proxy log", server.id()),
            detail: format!(
                "{} connection(s) rejected ({needle}); e.g. {}",
                rejected.len(),
                sample_line(&rejected)
            ),
        });
    }

    // Counters, where the pod's stats inclusion keeps them (Istio's default
    // bootstrap drops cluster.outbound|… and listener.* stats: never required).
    let cluster_name = format!("outbound|{}||{}", sp.number, svc.fqdn);
    if let Some(n) = client
        .proxy
        .and_then(|p| p.stats.as_ref())
        .and_then(|s| {
            s.get(&format!(
                "cluster.{cluster_name}.upstream_cx_destroy_remote_with_active_rq"
            ))
        })
        .filter(|n| *n > 0)
    {
        confidence += 5;
        evidence.push(Evidence {
            kind: EvidenceKind::DataPlane,
            source: format!("pod {} :15000/stats", client.id),
            detail: format!("cluster.{cluster_name}.upstream_cx_destroy_remote_with_active_rq = {n}: the server closed connections with requests in flight"),
        });
    }
    if kind != Kind::MtlsToPlaintext {
        if let Some(n) = server
            .proxy
            .and_then(|p| p.stats.as_ref())
            .and_then(|s| s.sum_matching("listener.", ".no_filter_chain_match"))
            .filter(|n| *n > 0)
        {
            confidence += 5;
            evidence.push(Evidence {
                kind: EvidenceKind::DataPlane,
                source: format!("pod {} :15000/stats", server.id()),
                detail: format!(
                    "listener.*.no_filter_chain_match = {n}: connections matched no filter chain"
                ),
            });
        }
    }

    let (id, claim, consequence) = match kind {
        Kind::PlaintextToStrict => (
            "MTLS_PLAINTEXT_TO_STRICT",
            format!("{} sends plaintext to {}:{}, whose sidecar accepts only mTLS", client.id, svc.fqdn, sp.number),
            "so the server sidecar finds no filter chain for plaintext and closes the connection: the client answers 503 UC (upstream connect error or disconnect/reset before headers)",
        ),
        Kind::MtlsToPlaintext => (
            "MTLS_TO_PLAINTEXT_SERVER",
            if server.sidecar {
                format!("{} sends Istio mTLS to {}:{}, whose sidecar accepts only plaintext", client.id, svc.fqdn, sp.number)
            } else {
                format!("{} sends Istio mTLS to {}:{}, whose pods have no sidecar to terminate it", client.id, svc.fqdn, sp.number)
            },
            "so the TLS handshake meets a plaintext server: the client answers 503 UF (TLS error WRONG_VERSION_NUMBER) or UC",
        ),
        Kind::OtherTlsToStrict => (
            "TLS_ORIGINATION_TO_SIDECAR",
            format!("{} originates SIMPLE/MUTUAL TLS to {}:{}, whose sidecar accepts only Istio mTLS", client.id, svc.fqdn, sp.number),
            "so the server sidecar rejects the handshake (no Istio client certificate or ALPN): 503 UF/UC",
        ),
    };
    explanation.push(format!("Result: {consequence}."));
    if !server.sidecar && decision.mode == ClientTlsMode::AutoIstioMutual {
        explanation.push("Auto mTLS would send plaintext to pods without the security.istio.io/tlsMode=istio label; the cluster's endpoints say otherwise.".into());
    }
    if server.sidecar
        && kind == Kind::MtlsToPlaintext
        && decision.mode == ClientTlsMode::AutoIstioMutual
    {
        if let Some(ServerMode {
            source: peer_auth::ModeSource::Workload(r) | peer_auth::ModeSource::WorkloadPort(r, _),
            ..
        }) = &server.predicted
        {
            explanation.push(format!(
                "Auto mTLS only sees namespace- and mesh-wide PeerAuthentication; the workload-level {r} that sets DISABLE is invisible to it (istio/istio#32788)."
            ));
        }
    }

    let fix = fix_for(ctx, svc, sp, selection, eff, kind, server);
    let confidence = if config_agrees || cluster.is_none() {
        confidence
    } else {
        confidence.saturating_sub(10)
    };
    Finding {
        id: id.into(),
        severity: Severity::Error,
        confidence: confidence.min(99) as u8,
        claim,
        subject: subject.to_string(),
        explanation,
        evidence,
        fix,
    }
}

/// The raw object for a rule, as read (first served version).
fn raw_object<'v>(ctx: &'v Context, kind: &'v str, ns: &str, name: &str) -> Option<&'v Value> {
    ctx.snap
        .objects_of_kind(kind)
        .find(|o| ns_of(o) == ns && name_of(o) == name)
}

/// An object trimmed to what `kubectl apply` needs.
fn for_apply(obj: &Value) -> Value {
    let mut meta =
        json!({"name": obj["metadata"]["name"], "namespace": obj["metadata"]["namespace"]});
    if let Some(l) = obj["metadata"]["labels"]
        .as_object()
        .filter(|l| !l.is_empty())
    {
        meta["labels"] = Value::Object(l.clone());
    }
    if let Some(a) = obj["metadata"]["annotations"].as_object() {
        let mut a = a.clone();
        a.remove("kubectl.kubernetes.io/last-applied-configuration");
        if !a.is_empty() {
            meta["annotations"] = Value::Object(a);
        }
    }
    json!({"apiVersion": obj["apiVersion"], "kind": obj["kind"], "metadata": meta, "spec": obj["spec"]})
}

fn to_yaml(v: &Value) -> String {
    serde_yaml::to_string(v).unwrap_or_else(|e| format!("# cannot render YAML: {e}\n"))
}

fn fix_for(
    ctx: &Context,
    svc: &Service,
    sp: &ServicePort,
    selection: &Option<Selection>,
    eff: Option<&EffectivePolicy>,
    kind: Kind,
    server: &ServerSide,
) -> Option<Fix> {
    let want = match kind {
        Kind::PlaintextToStrict | Kind::OtherTlsToStrict => "ISTIO_MUTUAL",
        Kind::MtlsToPlaintext => "DISABLE",
    };
    // Edit the rule in force, unless that is a mesh-wide rule: never weaken
    // the mesh for everyone to fix one service.
    let primary = selection.as_ref().and_then(|s| s.primary());
    let editable = primary.filter(|r| {
        !(kind == Kind::MtlsToPlaintext
            && r.meta.namespace == ctx.root_ns
            && r.host.starts_with('*'))
    });
    if let Some(rule) = editable {
        let raw = raw_object(
            ctx,
            "DestinationRule",
            &rule.meta.namespace,
            &rule.meta.name,
        )?;
        let mut obj = for_apply(raw);
        let where_ = match eff.map(|e| &e.origin) {
            Some(PolicyOrigin::PortLevel(p)) | Some(PolicyOrigin::SubsetPortLevel(_, p)) => {
                let port = *p;
                if let Some(entries) =
                    obj["spec"]["trafficPolicy"]["portLevelSettings"].as_array_mut()
                {
                    for e in entries.iter_mut() {
                        if e["port"]["number"].as_u64() == Some(port as u64) {
                            e["tls"] = json!({"mode": want});
                        }
                    }
                }
                format!("the portLevelSettings entry for port {port}")
            }
            _ => {
                if !obj["spec"]["trafficPolicy"].is_object() {
                    obj["spec"]["trafficPolicy"] = json!({});
                }
                obj["spec"]["trafficPolicy"]["tls"] = json!({"mode": want});
                "spec.trafficPolicy".to_string()
            }
        };
        let why = match kind {
            Kind::MtlsToPlaintext if !server.sidecar => {
                format!(" (or inject a sidecar into {}'s pods)", svc.name)
            }
            _ => String::new(),
        };
        return Some(Fix {
            summary: format!(
                "set tls.mode {want} in {where_} of DestinationRule {}{why}: kubectl apply -f - <<'EOF' … EOF",
                rule.key()
            ),
            yaml: Some(to_yaml(&obj)),
        });
    }
    // No rule to edit: a new one for this service, in its namespace.
    let api = ctx
        .snap
        .served_resources
        .iter()
        .filter(|r| r.kind == "DestinationRule")
        .map(|r| format!("{}/{}", r.group, r.version))
        .max_by_key(|v| match v.rsplit('/').next() {
            Some("v1") => 3,
            Some("v1beta1") => 2,
            _ => 1,
        })
        .unwrap_or_else(|| "networking.istio.io/v1alpha3".into());
    let name = format!(
        "{}-{}",
        svc.name,
        if want == "DISABLE" {
            "plaintext"
        } else {
            "mtls"
        }
    );
    let obj = json!({"apiVersion": api, "kind": "DestinationRule",
        "metadata": {"name": name, "namespace": svc.namespace},
        "spec": {"host": svc.fqdn, "trafficPolicy": {"tls": {"mode": want}}}});
    let _ = sp;
    Some(Fix {
        summary: format!(
            "create DestinationRule {}/{name} with tls.mode {want} for {}{}",
            svc.namespace,
            svc.fqdn,
            if want == "DISABLE" && !server.sidecar {
                format!(", or inject a sidecar into {}'s pods", svc.name)
            } else {
                String::new()
            }
        ),
        yaml: Some(to_yaml(&obj)),
    })
}

fn config_differs(
    client: &ClientSide,
    cluster_name: &str,
    c: &Cluster,
    sel: &Selection,
    ns: &str,
    name: &str,
    subject: &str,
) -> Finding {
    let api_rules = sel
        .rules
        .iter()
        .map(|r| r.key())
        .collect::<Vec<_>>()
        .join(" + ");
    Finding {
        id: "PROXY_CONFIG_DIFFERS".into(),
        severity: Severity::Warning,
        confidence: 70,
        claim: format!("{}'s sidecar built {cluster_name} from {ns}/{name}, but the API says {api_rules} applies", client.id),
        subject: subject.to_string(),
        explanation: vec![
            "The proxy has not received the current config yet (istiod push pending or rejected), or the objects the tool could read are not all istiod sees (RBAC, exportTo).".into(),
            "Check `istioctl proxy-status` for this pod; findings based on config may not match what the proxy does.".into(),
        ],
        evidence: vec![Evidence {
            kind: EvidenceKind::DataPlane,
            source: format!("pod {} :15000/config_dump", client.id),
            detail: format!("cluster {} metadata istio.config = {}", c.name, c.istio_config.as_deref().unwrap_or("-")),
        }],
        fix: None,
    }
}

/// Pods without a sidecar calling a STRICT server: the server log names them.
fn clients_without_sidecar(
    ctx: &Context,
    svc: &Service,
    sp: &ServicePort,
    servers: &[ServerSide],
) -> Vec<Finding> {
    let mut out = Vec::new();
    for server in servers {
        if server.mode() != Some(MtlsMode::Strict) {
            continue;
        }
        let mut by_pod: BTreeMap<String, Vec<&AccessLogEntry>> = BTreeMap::new();
        for e in server_rejections(server, "filter_chain_not_found") {
            let Some(ip) = e
                .downstream_remote_address
                .as_deref()
                .map(|a| a.rsplit_once(':').map_or(a, |(h, _)| h))
            else {
                continue;
            };
            if let Some(pod) = ctx
                .pods()
                .find(|p| p["status"]["podIP"].as_str() == Some(ip))
            {
                if !has_sidecar(pod) {
                    by_pod
                        .entry(format!("{}/{}", ns_of(pod), name_of(pod)))
                        .or_default()
                        .push(e);
                }
            }
        }
        for (pod, entries) in by_pod {
            out.push(Finding {
                id: "CLIENT_WITHOUT_SIDECAR_TO_STRICT".into(),
                severity: Severity::Error,
                confidence: 85,
                claim: format!("{pod} has no sidecar and calls {}:{} in plaintext; the server accepts only mTLS", svc.fqdn, sp.number),
                subject: format!("{}:{} from {pod}", svc.fqdn, sp.number),
                explanation: vec![
                    format!("{} is STRICT on port {}, so plaintext from outside the mesh is refused.", server.id(), server.container_port),
                    format!("{pod} has no istio-proxy container, so nothing upgrades its calls to mTLS."),
                ],
                evidence: vec![Evidence {
                    kind: EvidenceKind::DataPlane,
                    source: format!("pod {} istio-proxy log", server.id()),
                    detail: format!("{} connection(s) from {pod} rejected (filter_chain_not_found); e.g. {}", entries.len(), sample_line(&entries)),
                }],
                fix: Some(Fix {
                    summary: format!(
                        "inject a sidecar into {pod}'s workload (label its namespace istio-injection=enabled and restart it), or set PERMISSIVE for {} with a workload PeerAuthentication",
                        svc.name
                    ),
                    yaml: None,
                }),
            });
        }
    }
    out
}
