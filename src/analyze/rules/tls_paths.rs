//! Analyze stage: what the three mTLS causes share (not a cause itself).
//!
//! For each port of the target and each caller (a read client sidecar per
//! replica group, or "any sidecar client" of the service's namespace when
//! none was read), the model's [`TlsPath`] to each server pod; the first
//! server that refuses what it gets tells the story ([`TlsCase`]). How it
//! refuses is `istio::tls`'s [`Mismatch`], decided once in the model. The
//! explanation (which rule, which policy, what the proxies run, what the logs
//! show) and its confidence are built here once; each cause's rule adds its
//! claim, consequence and fix.

use crate::analyze::catalog::Cause;
use crate::analyze::confidence::{Confidence, Weight};
use crate::analyze::finding::{Evidence, Finding, Fixes, SourceRef};
use crate::envoy::access_log::{tls_failure_reason, AccessLogEntry};
use crate::istio::tls::{describe_cluster_tls, Mismatch};
use crate::model::decisions::{outbound_cluster_name, Client};
use crate::model::{Mesh, Pod, Proxy, Service, ServicePort, TlsPath};

use super::common::{client_503s, flags_summary, replicas_note, sample_line};

/// Who calls the target, as the mTLS rules see it.
#[derive(Debug, Clone)]
pub struct Caller<'m> {
    /// `foo/sleep-1`, or `any sidecar client in foo`.
    pub label: String,
    /// `" (and N other pod(s) of the same workload)"`.
    pub replicas: String,
    pub client: Client,
    pub proxy: Option<&'m Proxy>,
}

/// The read client sidecars, one per replica group; else a hypothetical
/// client in the service's namespace (config alone can still predict).
/// Then the caller classes found from config ([`Mesh::target_routes`])
/// that none of those stands for, when the snapshot has a pod with a
/// sidecar in them (their representative): another namespace whose own
/// rules give it a view of the host, predicted from config alone.
pub fn callers<'m>(mesh: &'m Mesh, svc: &Service) -> Vec<Caller<'m>> {
    let groups = mesh.client_groups();
    let mut out: Vec<Caller<'m>> = if groups.is_empty() {
        vec![Caller {
            label: format!("any sidecar client in {}", svc.key.namespace),
            replicas: String::new(),
            client: Client::in_namespace(&svc.key.namespace),
            proxy: None,
        }]
    } else {
        groups
            .iter()
            .map(|g| Caller {
                label: g.proxy.label.clone(),
                replicas: replicas_note(g),
                client: g.client(),
                proxy: Some(g.proxy),
            })
            .collect()
    };
    let covered: Vec<String> = out.iter().map(|c| c.client.namespace.clone()).collect();
    for class in &mesh.target_routes(svc).callers {
        let has_sidecar = class
            .pod
            .as_ref()
            .and_then(|k| mesh.pod(k))
            .is_some_and(|p| p.has_sidecar());
        if class.every_namespace
            || !has_sidecar
            || class.namespaces.iter().any(|n| covered.contains(n))
            || covered.contains(&class.namespace)
        {
            continue;
        }
        out.push(Caller {
            label: format!("any sidecar client in {}", class.namespace),
            replicas: String::new(),
            client: Client {
                namespace: class.namespace.clone(),
                labels: class.labels.clone(),
            },
            proxy: None,
        });
    }
    out
}

/// One caller's failing path to one service port.
pub struct TlsCase<'m> {
    pub svc: &'m Service,
    pub port: &'m ServicePort,
    pub caller: Caller<'m>,
    pub pod: &'m Pod,
    pub path: TlsPath<'m>,
    pub mismatch: Mismatch,
}

impl TlsCase<'_> {
    /// `httpbin.foo.svc.cluster.local:8000 from foo/sleep-1 (and …)`.
    pub fn subject(&self) -> String {
        format!(
            "{}:{} from {}{}",
            self.svc.fqdn, self.port.number, self.caller.label, self.caller.replicas
        )
    }
}

/// Every caller × target port whose first refusing server pod is `want`.
pub fn cases(mesh: &Mesh, want: Mismatch) -> Vec<TlsCase<'_>> {
    let mut out = Vec::new();
    for (svc, port) in mesh.target_ports() {
        let pods: Vec<&Pod> = mesh.backing_pods(svc).collect();
        if pods.is_empty() {
            continue;
        }
        for caller in callers(mesh, svc) {
            // One finding per caller and port: the first refusing server tells the story.
            let first = pods.iter().find_map(|pod| {
                let path = mesh.tls_path(&caller.client, caller.proxy, svc, port, pod);
                path.mismatch.map(|m| (*pod, path, m))
            });
            if let Some((pod, path, m)) = first.filter(|(_, _, m)| *m == want) {
                out.push(TlsCase {
                    svc,
                    port,
                    caller: caller.clone(),
                    pod,
                    path,
                    mismatch: m,
                });
            }
        }
    }
    out
}

/// What each cause adds to the shared story.
pub struct Story {
    pub claim: String,
    pub consequence: &'static str,
    pub notes: Vec<String>,
    pub fixes: Fixes,
}

impl Story {
    /// `"<caller> <what> <host>:<port>, <whose>"`, its consequence and fix.
    pub fn new(
        c: &TlsCase,
        what: &str,
        whose: &str,
        consequence: &'static str,
        fixes: Fixes,
    ) -> Story {
        Story {
            claim: format!(
                "{} {what} {}:{}, {whose}",
                c.caller.label, c.svc.fqdn, c.port.number
            ),
            consequence,
            notes: vec![],
            fixes,
        }
    }
}

/// Every case of `want` as a finding of `cause`, the cause adding its story.
pub fn findings(
    mesh: &Mesh,
    want: Mismatch,
    cause: Cause,
    story: impl Fn(&TlsCase) -> Story,
) -> Vec<Finding> {
    cases(mesh, want)
        .iter()
        .map(|c| finding(mesh, c, cause, story(c)))
        .collect()
}

/// The finding for a case: config chain, data-plane evidence, confidence.
pub fn finding(mesh: &Mesh, case: &TlsCase, cause: Cause, story: Story) -> Finding {
    let mut explanation = Vec::new();
    let mut evidence = Vec::new();
    let mut confidence = Confidence::of(&[Weight::ConfigPredicts]);
    // How the caller was found (server log, server metrics, a sample of
    // `/clusters`, `--from`): the reader can judge the attribution.
    if let Some(p) = case.caller.proxy.filter(|p| !p.chosen_because.is_empty()) {
        evidence.push(Evidence::new(
            SourceRef::Caller(p.label.clone()),
            format!("found because {}", p.chosen_because),
        ));
    }
    config_story(mesh, case, &mut explanation, &mut evidence);
    data_plane_story(mesh, case, &mut explanation, &mut evidence, &mut confidence);
    explanation.push(format!("Result: {}.", story.consequence));
    explanation.extend(story.notes);
    Finding::new(cause, case.subject(), story.claim, &confidence)
        .explain(explanation)
        .evidence(evidence)
        .fixes(story.fixes)
}

fn config_story(mesh: &Mesh, case: &TlsCase, expl: &mut Vec<String>, ev: &mut Vec<Evidence>) {
    let ct = &case.path.client;
    match ct.selection() {
        Some(sel) => {
            expl.extend(sel.explain());
            for r in &sel.rules {
                let tls = match r.top_level_tls_mode() {
                    Some(m) => format!("trafficPolicy.tls.mode {m}"),
                    None => "no trafficPolicy.tls".to_string(),
                };
                ev.push(Evidence::new(
                    SourceRef::Object(r.object_ref()),
                    format!("host {}, {tls}", r.host),
                ));
            }
            for s in &sel.shadowed {
                ev.push(Evidence::new(
                    SourceRef::Object(s.rule.object_ref()),
                    format!("not applied: {}", s.explanation),
                ));
            }
        }
        None => expl.push(format!(
            "No DestinationRule applies to {} for clients in {}",
            case.svc.fqdn, case.caller.client.namespace
        )),
    }
    if let Some(p) = &ct.policy {
        expl.extend(p.notes.iter().cloned());
    }
    expl.push(format!("Client side: {}.", ct.decision.reason));
    let s = &mesh.settings;
    let unread = !matches!(s.source, crate::model::MeshConfigSource::Read);
    ev.push(Evidence::new(
        SourceRef::MeshConfig(s.istio_namespace.clone()),
        format!(
            "{}auto mTLS {}{}",
            if unread {
                "not read (see gaps), so assumed: "
            } else {
                ""
            },
            if s.auto_mtls { "on" } else { "off" },
            match s.config.enable_auto_mtls {
                Some(v) => format!(" (enableAutoMtls: {v})"),
                None => format!(
                    " (enableAutoMtls not set: the default for Istio {})",
                    s.version
                        .map(|v| v.to_string())
                        .unwrap_or_else(|| "current".into())
                ),
            }
        ),
    ));
    let server = &case.path.server;
    let hidden = hidden_server_policies(mesh, &case.svc.key.namespace);
    let server_text = match &server.policy {
        _ if !server.sidecar => format!(
            "{} has no istio-proxy sidecar: it accepts plaintext only",
            server.pod
        ),
        // Never state a mode from policies that could not be read.
        _ if hidden.is_some() => format!(
            "{}'s sidecar mode cannot be decided from config: {} could not be read (see gaps); what its listener enforces, where read, is below",
            case.svc.key.name,
            hidden.as_deref().unwrap_or_default()
        ),
        Some(m) => {
            ev.push(Evidence::new(
                SourceRef::Policy(m.source.clone()),
                format!("{} for {} port {}", m.mode, server.pod, server.port.number),
            ));
            format!(
                "{}'s sidecar on port {} is {}",
                case.svc.key.name,
                server.port.number,
                m.explain()
            )
        }
        None => format!(
            "{}'s sidecar mode is unknown from config",
            case.svc.key.name
        ),
    };
    expl.push(format!("Server side: {server_text}."));
}

/// Server policy lists (PeerAuthentication, and the legacy ones) that RBAC
/// hid in the server's or the root namespace, in words; `None` when all
/// could be read.
fn hidden_server_policies(mesh: &Mesh, server_ns: &str) -> Option<String> {
    const SERVER_POLICIES: &[&str] = &[
        "peerauthentications.security.istio.io",
        "policies.authentication.istio.io",
        "meshpolicies.authentication.istio.io",
    ];
    let root = mesh.settings.root_namespace.as_str();
    SERVER_POLICIES.iter().find_map(|r| {
        [server_ns, root]
            .into_iter()
            .find(|ns| mesh.gaps.iter().any(|g| g.may_hide(r, ns)))
            .map(|ns| format!("{r} in namespace {ns}"))
    })
}

/// Server log lines showing plaintext at a TLS-only port (`filter_chain_not_found`)
/// or TLS at a plaintext one (`DPE`), on the pod's port or `virtualInbound`.
pub fn server_rejections<'p>(
    proxy: Option<&'p Proxy>,
    needle: &str,
    container_port: u16,
) -> Vec<&'p AccessLogEntry> {
    let Some(p) = proxy else { return vec![] };
    p.log
        .entries
        .iter()
        .filter(|e| {
            e.details.as_deref().is_some_and(|d| d.contains(needle))
                || (needle == "filter_chain_not_found" && e.no_filter_chain())
                || (needle == "DPE" && e.has_flag("DPE"))
        })
        .filter(|e| {
            e.downstream_local_address
                .as_deref()
                .is_none_or(|a| a.ends_with(&format!(":{container_port}")) || a.ends_with(":15006"))
        })
        .collect()
}

fn data_plane_story(
    mesh: &Mesh,
    case: &TlsCase,
    expl: &mut Vec<String>,
    ev: &mut Vec<Evidence>,
    conf: &mut Confidence,
) {
    let path = &case.path;
    let client_label = &case.caller.label;
    let server_label = case.pod.key.to_string();
    let cport = path.server.port.number;
    if let Some(c) = path.cluster {
        conf.add(Weight::ClientClusterConfirms);
        ev.push(Evidence::new(
            SourceRef::ConfigDump(client_label.clone()),
            format!(
                "cluster {} has {}{}",
                c.name,
                describe_cluster_tls(&c.client_tls),
                c.istio_config
                    .as_deref()
                    .map(|p| format!("; built from {p}"))
                    .unwrap_or_default()
            ),
        ));
        if !path.config_agrees() {
            conf.add(Weight::PredictionContradicted);
            expl.push("The client sidecar's running config differs from what the API objects predict; the sidecar's config was used.".into());
        }
    }
    if let Some(m) = &path.server.observed {
        let confirms = match case.mismatch {
            Mismatch::PlaintextToStrict | Mismatch::OtherTlsToStrict => !m.accepts_plaintext,
            Mismatch::MtlsToPlaintext => !m.accepts_mtls,
        };
        conf.add_if(confirms, Weight::ServerListenerConfirms);
        let accepts = match (m.accepts_mtls, m.accepts_plaintext) {
            (true, false) => "only mTLS (STRICT)",
            (true, true) => "mTLS and plaintext (PERMISSIVE)",
            (false, true) => "only plaintext (DISABLE)",
            (false, false) => "nothing it can match",
        };
        ev.push(Evidence::new(
            SourceRef::ConfigDump(server_label.clone()),
            format!("{} on port {cport} accepts {accepts}", m.source_listener),
        ));
    }
    let failures = case
        .caller
        .proxy
        .map(|p| client_503s(p, case.port.number, &case.svc.fqdn))
        .unwrap_or_default();
    let relevant: Vec<&AccessLogEntry> = failures
        .into_iter()
        .filter(|e| e.has_flag("UC") || e.has_flag("UF") || e.has_flag("URX"))
        .collect();
    if !relevant.is_empty() {
        conf.add(Weight::ClientLog);
        let tls = relevant
            .iter()
            .find_map(|e| tls_failure_reason(e))
            .map(|r| format!("; TLS failure {r}"))
            .unwrap_or_default();
        ev.push(Evidence::new(
            SourceRef::AccessLog(client_label.clone()),
            format!(
                "{} answered 503 ({}){tls}; e.g. {}",
                crate::words::counts(relevant.len(), "request"),
                flags_summary(&relevant),
                sample_line(&relevant)
            ),
        ));
    }
    let needle = match case.mismatch {
        Mismatch::MtlsToPlaintext => "DPE",
        _ => "filter_chain_not_found",
    };
    let server_proxy = mesh.proxy_of(&case.pod.key);
    let rejected = server_rejections(server_proxy, needle, cport);
    if !rejected.is_empty() {
        conf.add(Weight::ServerLog);
        ev.push(Evidence::new(
            SourceRef::AccessLog(server_label.clone()),
            format!(
                "{} rejected ({needle}); e.g. {}",
                crate::words::counts(rejected.len(), "connection"),
                sample_line(&rejected)
            ),
        ));
    }
    counters(case, server_proxy, ev, conf);
}

/// Counters, where the pod's stats inclusion keeps them (Istio's default
/// bootstrap drops `cluster.outbound|…` and `listener.*`: never required).
fn counters(
    case: &TlsCase,
    server_proxy: Option<&Proxy>,
    ev: &mut Vec<Evidence>,
    conf: &mut Confidence,
) {
    let cluster_name = outbound_cluster_name(case.port.number, &case.svc.fqdn);
    let stat = format!("cluster.{cluster_name}.upstream_cx_destroy_remote_with_active_rq");
    if let Some(n) = case
        .caller
        .proxy
        .and_then(|p| p.stats.as_ref())
        .and_then(|s| s.get(&stat))
        .filter(|n| *n > 0)
    {
        conf.add(Weight::ClientCounter);
        ev.push(Evidence::new(
            SourceRef::Stats(case.caller.label.clone()),
            format!("{stat} = {n}: the server closed connections with requests in flight"),
        ));
    }
    if case.mismatch == Mismatch::MtlsToPlaintext {
        return;
    }
    if let Some(n) = server_proxy
        .and_then(|p| p.stats.as_ref())
        .and_then(|s| s.sum_matching("listener.", ".no_filter_chain_match"))
        .filter(|n| *n > 0)
    {
        conf.add(Weight::ServerCounter);
        ev.push(Evidence::new(
            SourceRef::Stats(case.pod.key.to_string()),
            format!("listener.*.no_filter_chain_match = {n}: connections matched no filter chain"),
        ));
    }
}
