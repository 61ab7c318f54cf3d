//! Analyze stage, cause `MTLS_TO_PLAINTEXT_SERVER` (rule; declared in the catalog): the
//! client sends Istio mTLS to a pod that cannot terminate it.
//!
//! Istio: `tls.mode: ISTIO_MUTUAL` sends mTLS to every endpoint, sidecar or
//! not (cluster_tls.go `buildUpstreamTLSSettings`); auto mTLS sends it to
//! endpoints labelled `security.istio.io/tlsMode: istio` and decides from the
//! namespace/mesh PeerAuthentication only, so a workload-level DISABLE is
//! invisible to it (istio/istio#32788; authentication.go
//! `GetNamespaceMutualTLSMode`). Envoy: the handshake meets plaintext,
//! `503 UF` with `WRONG_VERSION_NUMBER`; a DISABLE sidecar answers `400 DPE`.

use super::tls_paths::{findings, Story, TlsCase};
use crate::analyze::catalog::Cause;
use crate::analyze::finding::Finding;
use crate::analyze::fix;
use crate::istio::authn::ModeSource;
use crate::istio::destination_rule::TlsMode;
use crate::istio::tls::ClientTlsMode;
use crate::istio::tls::Mismatch;
use crate::model::Mesh;

fn notes(c: &TlsCase) -> Vec<String> {
    let server = &c.path.server;
    let auto = c.path.client.decision.mode == ClientTlsMode::AutoIstioMutual;
    let mut out = Vec::new();
    if !server.sidecar && auto {
        out.push("Auto mTLS would send plaintext to pods without the security.istio.io/tlsMode=istio label; the cluster's endpoints say otherwise.".into());
    }
    if server.sidecar && auto {
        if let Some(ModeSource::Workload(r) | ModeSource::WorkloadPort(r, _)) =
            server.policy.as_ref().map(|m| &m.source)
        {
            out.push(format!(
                "Auto mTLS only sees namespace- and mesh-wide PeerAuthentication; the workload-level {r} that sets DISABLE is invisible to it (istio/istio#32788)."
            ));
        }
    }
    out
}

pub fn check(mesh: &Mesh) -> Vec<Finding> {
    findings(
        mesh,
        Mismatch::MtlsToPlaintext,
        Cause::MtlsToPlaintextServer,
        |c| {
            let server = &c.path.server;
            let whose = if server.sidecar {
                "whose sidecar accepts only plaintext"
            } else {
                "whose pods have no sidecar to terminate it"
            };
            let fix = fix::for_tls_case(mesh, Cause::MtlsToPlaintextServer, c, TlsMode::Disable);
            let mut story = Story::new(c, "sends Istio mTLS to", whose,
            "so the TLS handshake meets a plaintext server: the client answers 503 UF (TLS error WRONG_VERSION_NUMBER) or UC", fix);
            story.notes = notes(c);
            story
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyze::fix::FixKind;
    use crate::istio::sidecar::SidecarKind;
    use crate::model::builder::*;
    use crate::snapshot::ProxyRole;

    fn plain_httpbin() -> crate::model::Pod {
        pod("foo", "httpbin-1", "httpbin", "10.0.0.2", None)
    }

    #[test]
    fn fires_and_near_misses() {
        let cases: Vec<(&str, MeshBuilder, bool)> = vec![
            (
                "ISTIO_MUTUAL to a pod without sidecar",
                MeshBuilder::new()
                    .target(httpbin())
                    .pod(plain_httpbin())
                    .object(dr("foo", "httpbin", "httpbin", tls("ISTIO_MUTUAL"))),
                true,
            ),
            (
                "auto mTLS cannot see a workload DISABLE (istio/istio#32788)",
                MeshBuilder::new()
                    .target(httpbin())
                    .pod(httpbin_pod())
                    .object(pa("foo", "httpbin-plaintext", "DISABLE", Some("httpbin"))),
                true,
            ),
            (
                "near miss: auto mTLS sends plaintext to an unlabelled pod",
                MeshBuilder::new().target(httpbin()).pod(plain_httpbin()),
                false,
            ),
            (
                "near miss: a namespace DISABLE is visible to auto mTLS",
                MeshBuilder::new()
                    .target(httpbin())
                    .pod(httpbin_pod())
                    .object(pa("foo", "default", "DISABLE", None)),
                false,
            ),
            (
                "near miss: DISABLE towards a pod without sidecar",
                MeshBuilder::new()
                    .target(httpbin())
                    .pod(plain_httpbin())
                    .object(dr("foo", "httpbin", "httpbin", tls("DISABLE"))),
                false,
            ),
            (
                "near miss: the server's listener accepts mTLS whatever config says",
                MeshBuilder::new()
                    .target(httpbin())
                    .pod(httpbin_pod())
                    .object(pa("foo", "httpbin-plaintext", "DISABLE", Some("httpbin")))
                    .proxy(
                        proxy(&httpbin_pod(), ProxyRole::Server)
                            .with_inbound(8080, inbound(true, true)),
                    ),
                false,
            ),
        ];
        for (name, b, fires) in cases {
            let f = check(&b.build());
            assert_eq!(!f.is_empty(), fires, "{name}: {f:#?}");
        }
    }

    #[test]
    fn the_workload_policy_is_named() {
        let f = &check(
            &MeshBuilder::new()
                .target(httpbin())
                .pod(pod(
                    "foo",
                    "httpbin-1",
                    "httpbin",
                    "10.0.0.2",
                    Some(SidecarKind::Native),
                ))
                .object(pa("foo", "httpbin-plaintext", "DISABLE", Some("httpbin")))
                .build(),
        )[0];
        assert!(f.claim.contains("whose sidecar accepts only plaintext"));
        let why = f.explanation.join("\n");
        assert!(
            why.contains("foo/httpbin-plaintext") && why.contains("32788"),
            "{why}"
        );
    }

    #[test]
    fn a_mesh_wide_rule_is_never_weakened_for_one_service() {
        let f = &check(
            &MeshBuilder::new()
                .target(httpbin())
                .pod(plain_httpbin())
                .object(dr(
                    "istio-system",
                    "default",
                    "*.local",
                    tls("ISTIO_MUTUAL"),
                ))
                .build(),
        )[0];
        let fix = f.chosen_fix().unwrap();
        assert_eq!(fix.kind, FixKind::NewDestinationRule);
        assert!(
            fix.summary
                .contains("create DestinationRule foo/httpbin-plaintext"),
            "{}",
            fix.summary
        );
        assert!(
            fix.notes.iter().any(|n| n.contains("inject a sidecar")),
            "{:?}",
            fix.notes
        );
        let y: serde_yaml::Value = serde_yaml::from_str(fix.yaml().unwrap()).unwrap();
        assert_eq!(y["spec"]["host"], "httpbin.foo.svc.cluster.local");
        assert_eq!(y["spec"]["trafficPolicy"]["tls"]["mode"], "DISABLE");
        assert!(f.claim.contains("no sidecar"));
    }
}
