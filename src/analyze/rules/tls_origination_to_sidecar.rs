//! Analyze stage, cause `TLS_ORIGINATION_TO_SIDECAR` (rule; declared in the catalog): the
//! client originates its own TLS (`tls.mode: SIMPLE`) towards a sidecar that
//! accepts only Istio mTLS.
//!
//! istio/api `ClientTLSSettings`: SIMPLE is one-way TLS without a client
//! certificate; a STRICT sidecar requires Istio's client certificate
//! (policy_applier.go), so the handshake fails (`503 UF`/`UC`). MUTUAL with
//! user certificates never matches a STRICT chain either (Istio's ALPN and
//! client certificate are required): `istio::tls::mismatch` calls both
//! `OtherTlsToStrict`.

use super::tls_paths::{findings, Story};
use crate::analyze::catalog::Cause;
use crate::analyze::finding::Finding;
use crate::analyze::fix;
use crate::istio::destination_rule::TlsMode;
use crate::istio::tls::Mismatch;
use crate::model::Mesh;

pub fn check(mesh: &Mesh) -> Vec<Finding> {
    // The fix: let the sidecar originate Istio mTLS instead of user TLS.
    let want = TlsMode::IstioMutual;
    findings(
        mesh,
        Mismatch::OtherTlsToStrict,
        Cause::TlsOriginationToSidecar,
        |c| {
            Story::new(
            c,
            "originates SIMPLE/MUTUAL TLS to",
            "whose sidecar accepts only Istio mTLS",
            "so the server sidecar rejects the handshake (no Istio client certificate or ALPN): 503 UF/UC",
            fix::for_tls_case(mesh, Cause::TlsOriginationToSidecar, c, want.clone()),
        )
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::builder::*;
    use serde_json::json;

    fn base() -> MeshBuilder {
        MeshBuilder::new().target(httpbin()).pod(httpbin_pod())
    }

    #[test]
    fn fires_and_near_misses() {
        let mutual = json!({"tls": {"mode": "MUTUAL", "clientCertificate": "/etc/certs/app.pem",
            "privateKey": "/etc/certs/key.pem", "caCertificates": "/etc/certs/ca.pem"}});
        let cases: Vec<(&str, MeshBuilder, bool)> = vec![
            (
                "SIMPLE towards a STRICT sidecar",
                base()
                    .object(mesh_strict())
                    .object(dr("foo", "httpbin", "httpbin", tls("SIMPLE"))),
                true,
            ),
            (
                "near miss: SIMPLE towards a PERMISSIVE sidecar (opaque TLS to the app)",
                base().object(dr("foo", "httpbin", "httpbin", tls("SIMPLE"))),
                false,
            ),
            (
                // STRICT chains match Istio's ALPNs (istio, istio-peer-exchange,
                // istio-http/*) and verify the client certificate against the
                // mesh root (pilot/pkg/networking/core listener_inbound.go,
                // security/authn BuildInboundFilterChain): user certificates
                // without Istio's ALPN match no chain, whatever they are.
                "MUTUAL with user certificates towards a STRICT sidecar",
                base()
                    .object(mesh_strict())
                    .object(dr("foo", "httpbin", "httpbin", Some(mutual))),
                true,
            ),
            (
                "near miss: ISTIO_MUTUAL towards STRICT",
                base().object(mesh_strict()).object(dr(
                    "foo",
                    "httpbin",
                    "httpbin",
                    tls("ISTIO_MUTUAL"),
                )),
                false,
            ),
        ];
        for (name, b, fires) in cases {
            let f = check(&b.build());
            assert_eq!(!f.is_empty(), fires, "{name}: {f:#?}");
        }
    }

    #[test]
    fn the_fix_asks_for_istio_mutual() {
        let f = &check(
            &base()
                .object(mesh_strict())
                .object(dr("foo", "httpbin", "httpbin", tls("SIMPLE")))
                .build(),
        )[0];
        let y: serde_yaml::Value =
            serde_yaml::from_str(f.chosen_fix().unwrap().yaml().unwrap()).unwrap();
        assert_eq!(y["spec"]["trafficPolicy"]["tls"]["mode"], "ISTIO_MUTUAL");
    }
}
