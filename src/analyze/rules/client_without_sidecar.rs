//! Analyze stage, cause `CLIENT_WITHOUT_SIDECAR_TO_STRICT` (rule; declared in the catalog):
//! a pod without sidecar calls a server whose sidecar accepts only mTLS.
//!
//! A STRICT inbound listener has TLS filter chains only
//! (policy_applier.go), so a plaintext connection matches none and Envoy
//! closes it: the server's access log shows `NR filter_chain_not_found`
//! with the caller's address. The caller is named when that address is a
//! pod of the snapshot without `istio-proxy` (classic or native).
//!
//! Without that log line (access logs off, the default install) nothing in
//! the data plane shows the refused connection: the handshake never becomes
//! a request, so Istio's standard metrics do not count it, and Envoy's
//! `listener.….no_filter_chain_match` is outside Istio's default stats
//! inclusion. The callers `collect` found from config (a pod without
//! sidecar whose environment or command line names the target,
//! `TargetSelection::found_callers`) are then reported from config alone,
//! with the lower confidence that says so.

use std::collections::BTreeMap;

use super::common::{ip_of, sample_line};
use super::tls_paths::server_rejections;
use crate::analyze::catalog::Cause;
use crate::analyze::confidence::{Confidence, Weight};
use crate::analyze::finding::Fix;
use crate::analyze::finding::{Evidence, Finding, SourceRef};
use crate::analyze::fix::FixKind;
use crate::envoy::access_log::AccessLogEntry;
use crate::istio::authn::MtlsMode;
use crate::model::{Mesh, Pod, PodKey};

pub fn check(mesh: &Mesh) -> Vec<Finding> {
    let mut out = Vec::new();
    for (svc, port) in mesh.target_ports() {
        let pods: Vec<&Pod> = mesh.backing_pods(svc).collect();
        let mut config_done = false;
        for pod in pods {
            let server = mesh.server_side(svc, port, pod);
            if server.mode() != MtlsMode::Strict {
                continue;
            }
            let cport = server.port.number;
            let mut by_pod: BTreeMap<PodKey, Vec<&AccessLogEntry>> = BTreeMap::new();
            for e in server_rejections(mesh.proxy_of(&pod.key), "filter_chain_not_found", cport) {
                let Some(addr) = e.downstream_remote_address.as_deref() else {
                    continue;
                };
                if let Some(caller) = mesh.pod_by_ip(ip_of(addr)).filter(|p| !p.has_sidecar()) {
                    by_pod.entry(caller.key.clone()).or_default().push(e);
                }
            }
            if !config_done {
                config_done = true;
                out.extend(from_config(mesh, svc, port, pod, &server, &by_pod));
            }
            for (caller, entries) in by_pod {
                let mut confidence = Confidence::of(&[Weight::ServerLog, Weight::DistinctiveFlag]);
                confidence.add_if(server.observed.is_some(), Weight::ServerListenerConfirms);
                out.push(
                    Finding::new(
                        Cause::ClientWithoutSidecarToStrict,
                        format!("{}:{} from {caller}", svc.fqdn, port.number),
                        format!("{caller} has no sidecar and calls {}:{} in plaintext; the server accepts only mTLS", svc.fqdn, port.number),
                        &confidence,
                    )
                    .explain([
                        format!("{} is STRICT on port {cport}, so plaintext from outside the mesh is refused.", pod.key),
                        format!("{caller} has no istio-proxy container, so nothing upgrades its calls to mTLS."),
                    ])
                    .evidence([Evidence::new(
                        SourceRef::pod_log(&pod.key),
                        format!("{} from {caller} rejected (filter_chain_not_found); e.g. {}", crate::words::counts(entries.len(), "connection"), sample_line(&entries)),
                    )])
                    .fix(Some(Fix::advice(
                        FixKind::InjectSidecarOrRelaxPolicy,
                        format!("inject a sidecar into {caller}'s workload (label its namespace istio-injection=enabled and restart it), or set PERMISSIVE for {} with a workload PeerAuthentication", svc.key.name),
                    ))),
                );
            }
        }
    }
    out
}

/// Callers without sidecar found from their configuration that the server
/// log does not already name.
fn from_config(
    mesh: &Mesh,
    svc: &crate::model::Service,
    port: &crate::model::ServicePort,
    server_pod: &Pod,
    server: &crate::model::decisions::ServerSide,
    logged: &BTreeMap<PodKey, Vec<&AccessLogEntry>>,
) -> Vec<Finding> {
    let mut out = Vec::new();
    let log_read = mesh
        .proxy_of(&server_pod.key)
        .is_some_and(|p| p.log.read && !p.log.entries.is_empty());
    for found in &mesh.target.found_callers {
        let Some(key) = &found.pod else { continue };
        if logged.contains_key(key) {
            continue;
        }
        let Some(caller) = mesh.pod(key).filter(|p| !p.has_sidecar()) else {
            continue;
        };
        let mut confidence = Confidence::of(&[Weight::ConfigPredicts]);
        confidence.add_if(server.observed.is_some(), Weight::ServerListenerConfirms);
        let logs = if log_read {
            format!("{}'s access log holds lines but none from {} (it may not have called since the log's start)", server_pod.key, caller.key)
        } else {
            format!("no server access log shows the refused connections ({}'s sidecar logs nothing: access logs are off, the default install) and no standard metric counts a refused handshake", server_pod.key)
        };
        out.push(
            Finding::new(
                Cause::ClientWithoutSidecarToStrict,
                format!("{}:{} from {}", svc.fqdn, port.number, caller.key),
                format!("{} has no sidecar and is configured to call {}:{}; the server accepts only mTLS, so its plaintext is refused", caller.key, svc.fqdn, port.number),
                &confidence,
            )
            .explain([
                format!("{} is STRICT on port {}, so plaintext from outside the mesh is refused.", server_pod.key, server.port.number),
                format!("{} has no istio-proxy container, so nothing upgrades its calls to mTLS.", caller.key),
                format!("Found from config only: {}; {logs}.", found.because),
            ])
            .evidence([Evidence::new(
                SourceRef::Caller(caller.key.to_string()),
                found.because.clone(),
            )])
            .fix(Some(Fix::advice(
                FixKind::InjectSidecarOrRelaxPolicy,
                format!("inject a sidecar into {}'s workload (label its namespace istio-injection=enabled and restart it), or set PERMISSIVE for {} with a workload PeerAuthentication", caller.key, svc.key.name),
            ))),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::istio::sidecar::SidecarKind;
    use crate::model::builder::*;
    use crate::snapshot::ProxyRole;

    fn rejected_from(ip: &str) -> crate::envoy::access_log::AccessLogEntry {
        let mut e = entry(0, "NR", None);
        e.details = Some("filter_chain_not_found".into());
        e.downstream_local_address = Some("10.0.0.2:8080".into());
        e.downstream_remote_address = Some(format!("{ip}:51234"));
        e
    }

    fn mesh(
        strict: bool,
        caller_sidecar: Option<SidecarKind>,
        from_ip: &str,
    ) -> crate::model::Mesh {
        let server = proxy(&httpbin_pod(), ProxyRole::Server)
            .with_inbound(8080, inbound(true, !strict))
            .with_log(vec![rejected_from(from_ip)]);
        MeshBuilder::new()
            .target(httpbin())
            .pod(httpbin_pod())
            .pod(pod("legacy", "curl-1", "curl", "10.0.1.5", caller_sidecar))
            .proxy(server)
            .build()
    }

    #[test]
    fn fires_and_near_misses() {
        let cases = [
            (
                "a pod without sidecar refused by a STRICT listener",
                mesh(true, None, "10.0.1.5"),
                true,
            ),
            (
                "near miss: the caller has a native sidecar",
                mesh(true, Some(SidecarKind::Native), "10.0.1.5"),
                false,
            ),
            (
                "near miss: PERMISSIVE takes its plaintext",
                mesh(false, None, "10.0.1.5"),
                false,
            ),
            (
                "near miss: an address no pod has",
                mesh(true, None, "10.9.9.9"),
                false,
            ),
        ];
        for (name, m, fires) in cases {
            let f = check(&m);
            assert_eq!(!f.is_empty(), fires, "{name}: {f:#?}");
        }
        let f = &check(&mesh(true, None, "10.0.1.5"))[0];
        assert_eq!(f.confidence, 95);
        assert_eq!(
            f.subject,
            "httpbin.foo.svc.cluster.local:8000 from legacy/curl-1"
        );
        assert_eq!(f.confidence, 95);
    }

    /// A STRICT server with no access log and a sidecarless pod collect
    /// found from its configuration (`found`).
    fn config_mesh(
        strict: bool,
        caller_sidecar: Option<SidecarKind>,
        found: bool,
    ) -> crate::model::Mesh {
        let server =
            proxy(&httpbin_pod(), ProxyRole::Server).with_inbound(8080, inbound(true, !strict));
        let mut b = MeshBuilder::new()
            .target(httpbin())
            .pod(httpbin_pod())
            .pod(pod("cron", "job-1", "job", "10.0.1.7", caller_sidecar))
            .pod(pod("cron", "idle-1", "idle", "10.0.1.8", None))
            .proxy(server);
        if found {
            b = b.found_caller(
                Some(PodKey::new("cron", "job-1")),
                "it has no sidecar and its container job's environment variable URL names httpbin.foo",
            );
        }
        b.found_caller(
            None,
            "the server sidecar metrics count 3 requests from source_workload=unknown",
        )
        .build()
    }

    #[test]
    fn from_config_when_no_log_shows_it() {
        let f = check(&config_mesh(true, None, true));
        assert_eq!(f.len(), 1, "{f:#?}");
        assert_eq!(
            f[0].subject,
            "httpbin.foo.svc.cluster.local:8000 from cron/job-1"
        );
        // Config only (40) and the server's listener is STRICT (15): well below a logged rejection.
        assert_eq!(f[0].confidence, 55);
        let text = format!("{:?}", f[0]);
        assert!(
            text.contains("environment variable URL") && text.contains("no server access log"),
            "{text}"
        );
        // cron/idle-1 has no sidecar but names nothing: never a caller.
        assert!(!text.contains("idle-1"), "{text}");
        for (name, m) in [
            (
                "near miss: PERMISSIVE takes its plaintext",
                config_mesh(false, None, true),
            ),
            (
                "near miss: the found pod has a sidecar",
                config_mesh(true, Some(SidecarKind::Classic), true),
            ),
            (
                "near miss: nothing found from config",
                config_mesh(true, None, false),
            ),
        ] {
            assert!(check(&m).is_empty(), "{name}");
        }
    }

    #[test]
    fn a_logged_caller_is_not_reported_twice() {
        let server = proxy(&httpbin_pod(), ProxyRole::Server)
            .with_inbound(8080, inbound(true, false))
            .with_log(vec![rejected_from("10.0.1.5")]);
        let m = MeshBuilder::new()
            .target(httpbin())
            .pod(httpbin_pod())
            .pod(pod("legacy", "curl-1", "curl", "10.0.1.5", None))
            .proxy(server)
            .found_caller(
                Some(PodKey::new("legacy", "curl-1")),
                "its env names httpbin.foo",
            )
            .build();
        let f = check(&m);
        assert_eq!(f.len(), 1, "{f:#?}");
        assert_eq!(f[0].confidence, 95);
    }
}
