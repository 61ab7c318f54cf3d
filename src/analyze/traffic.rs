//! The other 503 causes, from what the sidecars report:
//!
//! - `CIRCUIT_BREAKER_OVERFLOW` (`503 UO`): DestinationRule connectionPool limits.
//! - `NO_HEALTHY_UPSTREAM` (`503 UH`): every host ejected by outlier detection
//!   (`/clusters` `failed_outlier_check`; Istio sets the panic threshold to
//!   minHealthPercent, default 0, so Envoy never falls back to ejected hosts),
//!   or no endpoint at all (selector or readiness).
//! - `SUBSET_NOT_FOUND` (`503 NC cluster_not_found`): a VirtualService routes
//!   to a subset no DestinationRule defines.
//! - `APP_NOT_LISTENING` (server sidecar `503 UF` on `inbound|…`): typically
//!   an app bound to 127.0.0.1 while Istio ≥1.10 forwards to the pod IP.
//! - `UPSTREAM_CONNECTION_RESET` (`503 UC` mixed with successes): keep-alive
//!   race with an app closing idle connections before Envoy does.
//! - `PORT_PROTOCOL_UNDECLARED`: a Service port without protocol name or appProtocol.
//!
//! Signatures per envoyproxy/envoy docs (access log RESPONSE_FLAGS) and
//! istio.io ops/common-problems/network-issues.

use super::context::{
    labels_of, log_line_targets, name_of, ns_of, sample_line, Context, Proxy, Service, ServicePort,
};
use super::{Evidence, EvidenceKind, Finding, Fix, Severity};
use crate::envoy::access_log::AccessLogEntry;
use crate::istio::destination_rule::{effective_policy, lookup};
use std::collections::BTreeSet;

pub fn check(ctx: &Context) -> Vec<Finding> {
    let mut out = Vec::new();
    for svc in &ctx.services {
        for sp in &svc.ports {
            out.extend(port_protocol(svc, sp));
            for client in ctx.clients() {
                out.extend(client_side(ctx, svc, sp, client));
            }
            for pod in ctx.backing_pods(svc) {
                if let Some(p) = ctx.proxy_for(ns_of(pod), name_of(pod)) {
                    out.extend(server_side(svc, sp, p));
                }
            }
            out.extend(undefined_subsets(ctx, svc, sp));
        }
    }
    out
}

fn client_side(ctx: &Context, svc: &Service, sp: &ServicePort, client: &Proxy) -> Vec<Finding> {
    let mut out = Vec::new();
    let subject = format!("{}:{} from {}", svc.fqdn, sp.number, client.id());
    let fails: Vec<&AccessLogEntry> = client
        .log
        .iter()
        .filter(|e| e.response_code == Some(503) && log_line_targets(e, sp.number, &svc.fqdn))
        .collect();
    let with = |flag: &str| {
        fails
            .iter()
            .copied()
            .filter(|e| e.has_flag(flag))
            .collect::<Vec<_>>()
    };
    let labels = client
        .pod
        .map(|p| labels_of(p, &["metadata", "labels"]))
        .unwrap_or_default();
    let lk = lookup(
        &ctx.drs,
        &client.evidence.namespace,
        &labels,
        &svc.fqdn,
        &svc.namespace,
        &ctx.root_ns,
    );
    let cluster_name = format!("outbound|{}||{}", sp.number, svc.fqdn);
    let cluster = client.dump.as_ref().and_then(|d| d.cluster(&cluster_name));

    let uo = with("UO");
    if !uo.is_empty() {
        let mut evidence = vec![Evidence {
            kind: EvidenceKind::DataPlane,
            source: format!("pod {} istio-proxy log", client.id()),
            detail: format!(
                "{} request(s) answered 503 UO (overflow); e.g. {}",
                uo.len(),
                sample_line(&uo)
            ),
        }];
        if let Some(t) = cluster.and_then(|c| c.default_thresholds()) {
            evidence.push(Evidence {
                kind: EvidenceKind::DataPlane,
                source: format!("pod {} :15000/config_dump", client.id()),
                detail: format!(
                    "{cluster_name} circuit breakers: max_connections {:?}, max_pending_requests {:?}, max_requests {:?}, max_retries {:?}",
                    t.max_connections, t.max_pending_requests, t.max_requests, t.max_retries
                ),
            });
        }
        let rule = lk
            .selection
            .as_ref()
            .and_then(|s| s.policy_from.clone())
            .unwrap_or_else(|| "the DestinationRule".into());
        out.push(Finding {
            id: "CIRCUIT_BREAKER_OVERFLOW".into(),
            severity: Severity::Error,
            confidence: 90,
            claim: format!("{}'s sidecar rejects calls to {}:{} because a connection-pool limit is reached", client.id(), svc.fqdn, sp.number),
            subject: subject.clone(),
            explanation: vec![format!(
                "{rule} sets connectionPool limits; when connections, pending requests or requests exceed them Envoy answers 503 UO with x-envoy-overloaded: true without calling the server."
            )],
            evidence,
            fix: Some(Fix {
                summary: format!("raise connectionPool.tcp.maxConnections / http.http1MaxPendingRequests / http.http2MaxRequests in {rule}, or send less concurrent load"),
                yaml: None,
            }),
        });
    }

    // UH: ejected hosts or no hosts.
    let uh = with("UH");
    let status = client.clusters.as_ref().and_then(|c| c.get(&cluster_name));
    let all_ejected =
        status.is_some_and(|s| !s.hosts.is_empty() && s.hosts.iter().all(|h| h.is_ejected()));
    let empty = status.is_some_and(|s| s.hosts.is_empty());
    if !uh.is_empty() || all_ejected || empty {
        let mut evidence = Vec::new();
        if !uh.is_empty() {
            evidence.push(Evidence {
                kind: EvidenceKind::DataPlane,
                source: format!("pod {} istio-proxy log", client.id()),
                detail: format!(
                    "{} request(s) answered 503 UH (no healthy upstream); e.g. {}",
                    uh.len(),
                    sample_line(&uh)
                ),
            });
        }
        let (claim, explanation, fix) = if all_ejected {
            let s = status.expect("checked");
            evidence.push(Evidence {
                kind: EvidenceKind::DataPlane,
                source: format!("pod {} :15000/clusters", client.id()),
                detail: format!(
                    "{cluster_name}: {} of {} host(s) flagged failed_outlier_check ({})",
                    s.ejected_hosts().len(),
                    s.hosts.len(),
                    s.hosts
                        .iter()
                        .map(|h| h.address.clone())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            });
            let od = lk
                .selection
                .as_ref()
                .and_then(|s| effective_policy(s, sp.number as u32, None).outlier);
            (
                format!("every endpoint of {}:{} is ejected by outlier detection in {}'s sidecar", svc.fqdn, sp.number, client.id()),
                vec![
                    format!("outlierDetection {} ejects hosts after consecutive errors; with maxEjectionPercent {} every host can be ejected, and Istio sets Envoy's panic threshold to minHealthPercent (default 0), so no traffic is sent until baseEjectionTime passes.",
                        od.as_ref().map(|_| "in the DestinationRule").unwrap_or(""),
                        od.as_ref().and_then(|o| o.max_ejection_percent).map(|p| p.to_string()).unwrap_or_else(|| "100".into())),
                    "The ejections are a consequence: look for the errors that caused them (other findings, the server's logs).".into(),
                ],
                Fix { summary: "fix the underlying errors; lower maxEjectionPercent (e.g. 50) or raise consecutive5xxErrors in the DestinationRule's outlierDetection".into(), yaml: None },
            )
        } else {
            let ready = ctx
                .snap
                .objects_of_kind("EndpointSlice")
                .filter(|s| {
                    ns_of(s) == svc.namespace
                        && s["metadata"]["labels"]["kubernetes.io/service-name"]
                            == svc.name.as_str()
                })
                .flat_map(|s| s["endpoints"].as_array().cloned().unwrap_or_default())
                .filter(|e| e["conditions"]["ready"].as_bool() != Some(false))
                .count();
            if empty {
                evidence.push(Evidence {
                    kind: EvidenceKind::DataPlane,
                    source: format!("pod {} :15000/clusters", client.id()),
                    detail: format!("{cluster_name} has no hosts"),
                });
            }
            evidence.push(Evidence {
                kind: EvidenceKind::Config,
                source: format!("EndpointSlices of {}/{}", svc.namespace, svc.name),
                detail: format!("{ready} ready endpoint(s)"),
            });
            (
                format!("{}'s sidecar has no healthy endpoint for {}:{}", client.id(), svc.fqdn, sp.number),
                vec![if ready == 0 {
                    format!("Service {}/{} has no ready endpoint: its selector matches no ready pod.", svc.namespace, svc.name)
                } else {
                    "The Service has ready endpoints but the sidecar sees none healthy: stale config or failing health.".into()
                }],
                Fix { summary: format!("make pods matching {}'s selector ready (kubectl get endpointslices -n {} -l kubernetes.io/service-name={})", svc.name, svc.namespace, svc.name), yaml: None },
            )
        };
        out.push(Finding {
            id: "NO_HEALTHY_UPSTREAM".into(),
            // Ejection follows other errors; it is rarely the root cause.
            severity: if all_ejected {
                Severity::Warning
            } else {
                Severity::Error
            },
            confidence: if evidence.len() > 1 { 85 } else { 60 },
            claim,
            subject: subject.clone(),
            explanation,
            evidence,
            fix: Some(fix),
        });
    }

    let nc = client
        .log
        .iter()
        .filter(|e| e.has_flag("NC") && e.response_code == Some(503))
        .collect::<Vec<_>>();
    let nc: Vec<&AccessLogEntry> = nc
        .into_iter()
        .filter(|e| log_line_targets(e, sp.number, &svc.fqdn))
        .collect();
    if !nc.is_empty() {
        out.push(Finding {
            id: "SUBSET_NOT_FOUND".into(),
            severity: Severity::Error,
            confidence: 90,
            claim: format!("{}'s routes to {} point at a cluster the sidecar does not have", client.id(), svc.fqdn),
            subject: subject.clone(),
            explanation: vec!["A VirtualService routes to a subset that no DestinationRule defines (or the VirtualService was applied before the DestinationRule): Envoy answers 503 NC cluster_not_found.".into()],
            evidence: vec![Evidence {
                kind: EvidenceKind::DataPlane,
                source: format!("pod {} istio-proxy log", client.id()),
                detail: format!("{} request(s) answered 503 NC; e.g. {}", nc.len(), sample_line(&nc)),
            }],
            fix: Some(Fix { summary: "define the subset in the DestinationRule for this host, then apply the VirtualService (make-before-break)".into(), yaml: None }),
        });
    }
    out
}

fn server_side(svc: &Service, sp: &ServicePort, server: &Proxy) -> Vec<Finding> {
    let mut out = Vec::new();
    let inbound: Vec<&AccessLogEntry> = server
        .log
        .iter()
        .filter(|e| {
            e.upstream_cluster
                .as_deref()
                .is_some_and(|c| c.starts_with("inbound|"))
        })
        .collect();
    let uf: Vec<&AccessLogEntry> = inbound
        .iter()
        .copied()
        .filter(|e| e.response_code == Some(503) && e.has_flag("UF"))
        .collect();
    if !uf.is_empty() {
        out.push(Finding {
            id: "APP_NOT_LISTENING".into(),
            severity: Severity::Error,
            confidence: 80,
            claim: format!("{}'s sidecar cannot connect to its own app for {}:{}", server.id(), svc.fqdn, sp.number),
            subject: format!("{}:{} at {}", svc.fqdn, sp.number, server.id()),
            explanation: vec![
                "The server sidecar answers 503 UF on its inbound cluster: the connection to the application was refused.".into(),
                "Since Istio 1.10 the sidecar forwards to the pod IP, not 127.0.0.1: an app bound to localhost is unreachable. Also check the container port and that the app is up.".into(),
            ],
            evidence: vec![Evidence {
                kind: EvidenceKind::DataPlane,
                source: format!("pod {} istio-proxy log", server.id()),
                detail: format!("{} inbound request(s) answered 503 UF; e.g. {}", uf.len(), sample_line(&uf)),
            }],
            fix: Some(Fix { summary: "bind the app to 0.0.0.0 (or the pod IP), or declare a Sidecar ingress with defaultEndpoint 127.0.0.1:<port>".into(), yaml: None }),
        });
    }
    let uc: Vec<&AccessLogEntry> = inbound
        .iter()
        .copied()
        .filter(|e| e.response_code == Some(503) && e.has_flag("UC"))
        .collect();
    let ok = inbound
        .iter()
        .filter(|e| e.response_code.is_some_and(|c| (200..400).contains(&c)))
        .count();
    if !uc.is_empty() && ok > 0 {
        out.push(Finding {
            id: "UPSTREAM_CONNECTION_RESET".into(),
            severity: Severity::Warning,
            confidence: 65,
            claim: format!("{}'s app closes connections the sidecar is still reusing (intermittent 503 UC)", server.id()),
            subject: format!("{}:{} at {}", svc.fqdn, sp.number, server.id()),
            explanation: vec!["Some requests succeed and some end 503 UC on the inbound cluster: the app closes idle keep-alive connections sooner than Envoy's idle timeout (1h by default), and a request races the close.".into()],
            evidence: vec![Evidence {
                kind: EvidenceKind::DataPlane,
                source: format!("pod {} istio-proxy log", server.id()),
                detail: format!("{} × 503 UC and {ok} success(es) on inbound; e.g. {}", uc.len(), sample_line(&uc)),
            }],
            fix: Some(Fix { summary: "set connectionPool.http.idleTimeout in the DestinationRule shorter than the app's keep-alive timeout, or make the app's keep-alive longer; retries on reset help too".into(), yaml: None }),
        });
    }
    out
}

/// Protocol selection by port name or appProtocol (istio.io ops/configuration/traffic-management/protocol-selection).
fn port_protocol(svc: &Service, sp: &ServicePort) -> Option<Finding> {
    const KNOWN: &[&str] = &[
        "http", "http2", "https", "grpc", "grpc-web", "tcp", "tls", "mongo", "mysql", "redis",
        "udp",
    ];
    if sp.app_protocol.is_some() {
        return None;
    }
    let name = sp.name.clone().unwrap_or_default();
    let proto = name.split('-').next().unwrap_or("");
    if KNOWN.contains(&proto) {
        return None;
    }
    Some(Finding {
        id: "PORT_PROTOCOL_UNDECLARED".into(),
        severity: Severity::Info,
        confidence: 50,
        claim: format!("Service port {}/{}:{} does not declare its protocol", svc.namespace, svc.name, sp.number),
        subject: format!("{}:{}", svc.fqdn, sp.number),
        explanation: vec!["Istio falls back to protocol sniffing, which fails for server-first protocols and can give 400 DPE or resets.".into()],
        evidence: vec![Evidence {
            kind: EvidenceKind::Config,
            source: format!("Service {}/{}", svc.namespace, svc.name),
            detail: format!("port {} is named {:?} and has no appProtocol", sp.number, name),
        }],
        fix: Some(Fix { summary: "name the port <protocol>[-suffix] (e.g. http-web) or set appProtocol".into(), yaml: None }),
    })
}

/// VirtualService routes to subsets no applying DestinationRule defines (config only).
fn undefined_subsets(ctx: &Context, svc: &Service, sp: &ServicePort) -> Vec<Finding> {
    let mut out = Vec::new();
    let mut seen = BTreeSet::new();
    for vs in ctx.snap.objects_of_kind("VirtualService") {
        let key = format!("{}/{}", ns_of(vs), name_of(vs));
        if !seen.insert(key.clone()) {
            continue;
        }
        for route in vs["spec"]["http"].as_array().into_iter().flatten() {
            for dst in route["route"].as_array().into_iter().flatten() {
                let host = dst["destination"]["host"].as_str().unwrap_or("");
                let fq = crate::istio::host::fqdn_default(host, ns_of(vs));
                let Some(subset) = dst["destination"]["subset"].as_str() else {
                    continue;
                };
                if fq != svc.fqdn {
                    continue;
                }
                let lk = lookup(
                    &ctx.drs,
                    ns_of(vs),
                    &Default::default(),
                    &svc.fqdn,
                    &svc.namespace,
                    &ctx.root_ns,
                );
                let defined = lk
                    .selection
                    .as_ref()
                    .is_some_and(|s| s.subset(subset).is_some());
                if !defined {
                    out.push(Finding {
                        id: "SUBSET_NOT_FOUND".into(),
                        severity: Severity::Error,
                        confidence: 60,
                        claim: format!("VirtualService {key} routes to subset {subset} of {}, which no applying DestinationRule defines", svc.fqdn),
                        subject: format!("{}:{} subset {subset}", svc.fqdn, sp.number),
                        explanation: vec!["Envoy gets a route to a cluster that does not exist and answers 503 NC (cluster_not_found).".into()],
                        evidence: vec![Evidence {
                            kind: EvidenceKind::Config,
                            source: format!("VirtualService {key}"),
                            detail: format!("route destination host {host} subset {subset}"),
                        }],
                        fix: Some(Fix { summary: format!("add subset {subset} (with labels matching the pods) to the DestinationRule for {}", svc.fqdn), yaml: None }),
                    });
                }
            }
        }
    }
    out
}
