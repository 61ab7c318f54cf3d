//! Analyze stage, cause `CLIENT_WITHOUT_SIDECAR_TO_STRICT` (rule; declared in the catalog):
//! a pod without sidecar calls a server whose sidecar accepts only mTLS.
//!
//! A STRICT inbound listener has TLS filter chains only
//! (policy_applier.go), so a plaintext connection matches none and Envoy
//! closes it: the server's access log shows `NR filter_chain_not_found`
//! with the caller's address. The caller is named when that address is a
//! pod of the snapshot without `istio-proxy` (classic or native).

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
        assert_eq!(
            f.subject,
            "httpbin.foo.svc.cluster.local:8000 from legacy/curl-1"
        );
        assert_eq!(f.confidence, 95);
    }
}
