//! Analyze stage, cause `MTLS_PLAINTEXT_TO_STRICT` (rule; declared in the catalog): the
//! client sidecar sends plaintext to a server sidecar that accepts only mTLS.
//!
//! Istio (pilot/pkg/networking/core/cluster_tls.go `buildUpstreamTLSSettings`):
//! a DestinationRule's `tls` always wins, so `DISABLE` is plaintext even with
//! auto mTLS on; without `tls` and with auto mTLS off the client sends
//! plaintext; the first namespace with a matching rule wins and nothing falls
//! back to the mesh-wide ISTIO_MUTUAL rule (push_context.go `destinationRule`);
//! a port-level entry replaces the whole policy for its port. Envoy: the
//! STRICT listener has no raw_buffer chain, so the connection is closed
//! (`NR filter_chain_not_found`) and the client answers `503 UC`.

use super::tls_paths::{findings, Story};
use crate::analyze::catalog::Cause;
use crate::analyze::finding::Finding;
use crate::analyze::fix;
use crate::istio::destination_rule::TlsMode;
use crate::istio::tls::Mismatch;
use crate::model::Mesh;

pub fn check(mesh: &Mesh) -> Vec<Finding> {
    let cause = Cause::MtlsPlaintextToStrict;
    findings(mesh, Mismatch::PlaintextToStrict, cause, |c| {
        let fix = fix::for_tls_case(mesh, cause, c, TlsMode::IstioMutual);
        Story::new(c, "sends plaintext to", "whose sidecar accepts only mTLS",
            "so the server sidecar finds no filter chain for plaintext and closes the connection: the client answers 503 UC (upstream connect error or disconnect/reset before headers)", fix)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyze::confidence::Weight;
    use crate::analyze::fix::FixKind;
    use crate::model::builder::*;
    use crate::snapshot::ProxyRole;
    use serde_json::json;

    const CLUSTER: &str = "outbound|8000||httpbin.foo.svc.cluster.local";

    fn base() -> MeshBuilder {
        MeshBuilder::new()
            .target(httpbin())
            .pod(httpbin_pod())
            .pod(sleep_pod())
    }

    /// The 2018 seed: a rule in the client's namespace without tls replaces the
    /// mesh-wide ISTIO_MUTUAL rule; no auto mTLS in Istio 1.0; MeshPolicy STRICT.
    fn seed() -> MeshBuilder {
        base()
            .istio("1.0.0")
            .object(dr(
                "istio-system",
                "default",
                "*.local",
                tls("ISTIO_MUTUAL"),
            ))
            .object(dr(
                "foo",
                "httpbin",
                "httpbin",
                Some(json!({"connectionPool": {"tcp": {"maxConnections": 1}}})),
            ))
            .object(
                json!({"apiVersion": "authentication.istio.io/v1alpha1", "kind": "MeshPolicy",
                "metadata": {"name": "default"}, "spec": {"peers": [{"mtls": {}}]}}),
            )
    }

    fn modern_disable() -> MeshBuilder {
        base()
            .object(mesh_strict())
            .object(dr("foo", "httpbin", "httpbin", tls("DISABLE")))
    }

    #[test]
    fn fires_and_near_misses() {
        let port_level = base().auto_mtls(false).object(mesh_strict()).object(dr(
            "foo",
            "httpbin",
            "httpbin",
            Some(json!({"tls": {"mode": "ISTIO_MUTUAL"}, "portLevelSettings": [{"port": {"number": 8000}, "connectionPool": {"tcp": {"maxConnections": 5}}}]})),
        ));
        let cases: Vec<(&str, MeshBuilder, bool)> = vec![
            (
                "seed: rule without tls shadows *.local, auto mTLS off, MeshPolicy STRICT",
                seed(),
                true,
            ),
            (
                "tls.mode DISABLE wins over auto mTLS (cluster_tls.go)",
                modern_disable(),
                true,
            ),
            (
                "a port-level entry without tls drops the top-level tls",
                port_level,
                true,
            ),
            (
                "near miss: PERMISSIVE server takes plaintext",
                base()
                    .object(pa("istio-system", "default", "PERMISSIVE", None))
                    .object(dr("foo", "httpbin", "httpbin", tls("DISABLE"))),
                false,
            ),
            (
                "near miss: auto mTLS sends mTLS to a labelled sidecar",
                base()
                    .object(mesh_strict())
                    .object(dr("foo", "httpbin", "httpbin", None)),
                false,
            ),
            (
                "near miss: a DISABLE rule in another namespace, not exported",
                base().object(mesh_strict()).object({
                    let mut d = dr(
                        "bar",
                        "httpbin",
                        "httpbin.foo.svc.cluster.local",
                        tls("DISABLE"),
                    );
                    d["spec"]["exportTo"] = json!(["."]);
                    d
                }),
                false,
            ),
            (
                "near miss: the running client sends mTLS whatever config predicts",
                modern_disable().proxy(
                    proxy(&sleep_pod(), ProxyRole::Client).with_cluster(cluster(
                        8000,
                        "httpbin.foo.svc.cluster.local",
                        istio_tls(),
                    )),
                ),
                false,
            ),
            (
                "near miss: a host:port target on another port checks only that port",
                modern_disable().only_port(9999),
                false,
            ),
            (
                "near miss: no server pods, nothing to refuse",
                MeshBuilder::new()
                    .target(httpbin())
                    .object(mesh_strict())
                    .object(dr("foo", "httpbin", "httpbin", tls("DISABLE"))),
                false,
            ),
        ];
        for (name, b, fires) in cases {
            let f = check(&b.build());
            assert_eq!(!f.is_empty(), fires, "{name}: {f:#?}");
            if fires {
                assert_eq!(f.len(), 1, "{name}");
                assert_eq!(f[0].id(), "MTLS_PLAINTEXT_TO_STRICT");
            }
        }
    }

    /// A namespace with its own DISABLE rule for the host, a sidecar pod
    /// there and no read client: a caller found from config, predicted.
    #[test]
    fn a_caller_namespace_found_from_config_is_predicted() {
        let mut own = dr(
            "storefront",
            "prices-debug",
            "httpbin.foo.svc.cluster.local",
            tls("DISABLE"),
        );
        own["spec"]["exportTo"] = json!(["."]);
        let pages = pod(
            "storefront",
            "pages-1",
            "pages",
            "10.0.3.1",
            Some(crate::istio::sidecar::SidecarKind::Classic),
        );
        let b = || {
            MeshBuilder::new()
                .target(httpbin())
                .pod(httpbin_pod())
                .pod(sleep_pod())
                .object(mesh_strict())
        };
        let f = check(&b().pod(pages.clone()).object(own.clone()).build());
        let subjects: Vec<&str> = f.iter().map(|f| f.subject.as_str()).collect();
        assert_eq!(
            subjects,
            vec!["httpbin.foo.svc.cluster.local:8000 from any sidecar client in storefront"],
            "{f:#?}"
        );
        // Near misses: the rule is not exported to storefront's own
        // namespace (it applies nowhere there), or no sidecar pod runs there.
        let mut elsewhere = own.clone();
        elsewhere["spec"]["exportTo"] = json!(["foo-other"]);
        assert!(check(&b().pod(pages.clone()).object(elsewhere).build()).is_empty());
        let mut bare = pages.clone();
        bare.sidecar = None;
        assert!(check(&b().pod(bare).object(own).build()).is_empty());
    }

    #[test]
    fn config_alone_predicts_and_the_fix_edits_the_rule_in_force() {
        let f = &check(&seed().build())[0];
        assert_eq!(f.confidence, 40);
        assert_eq!(f.confidence_basis, vec![Weight::ConfigPredicts]);
        assert_eq!(
            f.subject,
            "httpbin.foo.svc.cluster.local:8000 from any sidecar client in foo"
        );
        let why = f.explanation.join("\n");
        assert!(
            why.contains("istio-system/default") && why.contains("MeshPolicy default"),
            "{why}"
        );
        let fix = f.chosen_fix().unwrap();
        assert_eq!(fix.kind, FixKind::EditDestinationRule);
        let y: serde_yaml::Value = serde_yaml::from_str(fix.yaml().unwrap()).unwrap();
        assert_eq!(y["metadata"]["name"], "httpbin");
        assert_eq!(y["spec"]["trafficPolicy"]["tls"]["mode"], "ISTIO_MUTUAL");
        assert_eq!(
            y["spec"]["trafficPolicy"]["connectionPool"]["tcp"]["maxConnections"],
            1
        );
    }

    #[test]
    fn the_data_plane_raises_confidence() {
        let mesh = modern_disable()
            .proxy(
                proxy(&sleep_pod(), ProxyRole::Client)
                    .with_cluster(cluster(
                        8000,
                        "httpbin.foo.svc.cluster.local",
                        crate::envoy::config_dump::ClientTlsConfig::Plaintext,
                    ))
                    .with_log(vec![entry(503, "UC", Some(CLUSTER))]),
            )
            .proxy(
                proxy(&httpbin_pod(), ProxyRole::Server)
                    .with_inbound(8080, inbound(true, false))
                    .with_log(vec![{
                        let mut e = entry(0, "NR", None);
                        e.details = Some("filter_chain_not_found".into());
                        e
                    }]),
            )
            .build();
        let f = &check(&mesh)[0];
        assert_eq!(
            f.subject,
            "httpbin.foo.svc.cluster.local:8000 from foo/sleep-1"
        );
        assert_eq!(
            f.confidence_basis,
            vec![
                Weight::ConfigPredicts,
                Weight::ClientClusterConfirms,
                Weight::ServerListenerConfirms,
                Weight::ClientLog,
                Weight::ServerLog
            ]
        );
        assert_eq!(f.confidence, 99);
        assert!(f
            .evidence
            .iter()
            .any(|e| e.detail.contains("filter_chain_not_found")));
    }

    #[test]
    fn a_port_level_mistake_is_fixed_at_the_port() {
        let mesh = base().auto_mtls(false).object(mesh_strict()).object(dr(
            "foo",
            "httpbin",
            "httpbin",
            Some(json!({"tls": {"mode": "ISTIO_MUTUAL"}, "portLevelSettings": [{"port": {"number": 8000}}]})),
        ));
        let f = &check(&mesh.build())[0];
        let fix = f.chosen_fix().unwrap_or_else(|| panic!("{:#?}", f.fixes));
        assert!(
            fix.summary
                .contains("portLevelSettings entry for port 8000"),
            "{}",
            fix.summary
        );
        let y: serde_yaml::Value = serde_yaml::from_str(fix.yaml().unwrap()).unwrap();
        assert_eq!(
            y["spec"]["trafficPolicy"]["portLevelSettings"][0]["tls"]["mode"],
            "ISTIO_MUTUAL"
        );
    }
}
