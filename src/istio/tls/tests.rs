//! Unit tests of THE TLS decision: a table over DestinationRule tls × auto
//! mTLS × the inferred server mode × endpoint labels × the real server mode,
//! written from istio/istio `cluster_tls.go` (`buildUpstreamTLSSettings`,
//! `applyUpstreamTLSSettings`) and `push_context.go`
//! (`BestEffortInferServiceMTLSMode`), with near misses; the mapping from a
//! parsed Envoy cluster to the wire; tls-check's verdict; inbound modes from
//! listeners.
//!
//! Place in the flow: test-only (istio/ helpers).

use super::*;
use crate::envoy::config_dump::ClientTlsConfig;
// The tree parser, checked against the streaming reader on each dump.
use crate::envoy::config_dump::stream_tests::parse_checked as parse_config_dump;
use crate::istio::destination_rule::{ClientTls, TlsMode};
use serde_json::{json, Value};
use MtlsMode::{Disable, Permissive, Strict};

/// [`decide_for`] for a ClusterIP mesh Service.
fn decide(
    rule_tls: Option<&ClientTls>,
    auto_mtls: bool,
    service_mode: MtlsMode,
    endpoints: EndpointLabels,
) -> ClientTlsDecision {
    decide_for(&ClientTlsInput {
        rule_tls,
        auto_mtls,
        service_mode,
        endpoints,
        service: ServiceKind::Mesh,
    })
}

fn tls(mode: TlsMode) -> ClientTls {
    ClientTls {
        mode,
        sni: None,
        subject_alt_names: vec![],
        credential_name: None,
        ca_certificates: None,
        client_certificate: None,
        insecure_skip_verify: None,
    }
}

fn rule(mode: Option<&str>) -> Option<ClientTls> {
    mode.map(|m| tls(TlsMode::parse(m)))
}

// ---------------------------------------------------------------------------
// The decision table
// ---------------------------------------------------------------------------

/// One row: DR `tls.mode` (None = no tls), auto mTLS, the mode auto mTLS
/// infers for the service, whether the endpoint is labelled tlsMode=istio,
/// the server, then the expected wire and mismatch, and why.
type Row = (
    Option<&'static str>,
    bool,
    MtlsMode,
    bool,
    Server,
    Wire,
    Option<Mismatch>,
    &'static str,
);

use Server::{NoSidecar, Sidecar};
use Wire::{IstioMtls, OtherTls, Plaintext};

#[rustfmt::skip]
const TABLE: &[Row] = &[
    // No DestinationRule tls: auto mTLS per endpoint.
    (None, true, Strict, true, Sidecar(Strict), IstioMtls, None, "auto mTLS to a labelled sidecar"),
    (None, true, Permissive, false, NoSidecar, Plaintext, None, "auto mTLS sends plaintext to an unlabelled pod"),
    (None, true, Strict, false, Sidecar(Strict), Plaintext, Some(Mismatch::PlaintextToStrict), "sidecar without the tlsMode label (e.g. label removed) gets plaintext"),
    (None, true, Permissive, true, Sidecar(Disable), IstioMtls, Some(Mismatch::MtlsToPlaintext), "workload-level DISABLE is invisible to auto mTLS (istio#32788)"),
    (None, true, Disable, true, Sidecar(Strict), Plaintext, Some(Mismatch::PlaintextToStrict), "namespace DISABLE turns auto mTLS off, workload STRICT refuses"),
    (None, true, Disable, true, Sidecar(Disable), Plaintext, None, "near miss: namespace DISABLE and a DISABLE sidecar agree"),
    (None, false, Strict, true, Sidecar(Strict), Plaintext, Some(Mismatch::PlaintextToStrict), "auto mTLS off: plaintext even to STRICT"),
    (None, false, Strict, true, Sidecar(Permissive), Plaintext, None, "near miss: auto mTLS off to PERMISSIVE works"),
    // DISABLE always wins.
    (Some("DISABLE"), true, Strict, true, Sidecar(Strict), Plaintext, Some(Mismatch::PlaintextToStrict), "DR DISABLE beats auto mTLS"),
    (Some("DISABLE"), true, Permissive, true, Sidecar(Permissive), Plaintext, None, "near miss: DR DISABLE to PERMISSIVE"),
    (Some("DISABLE"), false, Strict, false, NoSidecar, Plaintext, None, "DR DISABLE to a pod without sidecar"),
    // ISTIO_MUTUAL to every endpoint, sidecar or not.
    (Some("ISTIO_MUTUAL"), false, Disable, false, NoSidecar, IstioMtls, Some(Mismatch::MtlsToPlaintext), "ISTIO_MUTUAL to a pod without sidecar"),
    (Some("ISTIO_MUTUAL"), true, Permissive, true, Sidecar(Disable), IstioMtls, Some(Mismatch::MtlsToPlaintext), "ISTIO_MUTUAL to a DISABLE sidecar"),
    (Some("ISTIO_MUTUAL"), false, Disable, true, Sidecar(Permissive), IstioMtls, None, "near miss: ISTIO_MUTUAL to PERMISSIVE"),
    (Some("ISTIO_MUTUAL"), false, Strict, true, Sidecar(Strict), IstioMtls, None, "ISTIO_MUTUAL to STRICT"),
    // User TLS.
    (Some("SIMPLE"), true, Strict, true, Sidecar(Strict), OtherTls, Some(Mismatch::OtherTlsToStrict), "SIMPLE to STRICT: no Istio client certificate"),
    (Some("MUTUAL"), true, Strict, true, Sidecar(Strict), OtherTls, Some(Mismatch::OtherTlsToStrict), "MUTUAL with user certificates to STRICT"),
    (Some("SIMPLE"), true, Permissive, true, Sidecar(Permissive), OtherTls, None, "near miss: SIMPLE to PERMISSIVE passes through to the app"),
    (Some("SIMPLE"), false, Permissive, false, NoSidecar, OtherTls, None, "near miss: SIMPLE to an app serving TLS itself"),
    // An unknown mode: Istio rejects the rule; assume plaintext.
    (Some("TLS_V2"), true, Strict, true, Sidecar(Strict), Plaintext, Some(Mismatch::PlaintextToStrict), "unknown tls.mode"),
];

#[test]
fn decision_table() {
    for &(dr, auto, inferred, labelled, server, want_wire, want_mismatch, why) in TABLE {
        let t = rule(dr);
        let endpoints = EndpointLabels::from_flags([labelled]);
        let d = decide(t.as_ref(), auto, inferred, endpoints);
        let wire = d.wire_for(labelled);
        assert_eq!(wire, want_wire, "{why}: {d:?}");
        assert_eq!(mismatch(wire, server), want_mismatch, "{why}");
        // Acceptance agrees with the mismatch wherever it is decided.
        if let Some(ok) = accepts(server, wire) {
            assert_eq!(ok, want_mismatch.is_none(), "{why}");
        }
    }
}

#[test]
fn rule_tls_makes_auto_mtls_and_modes_irrelevant() {
    for dr in ["DISABLE", "SIMPLE", "MUTUAL", "ISTIO_MUTUAL"] {
        let t = tls(TlsMode::parse(dr));
        let base = decide(Some(&t), true, Strict, EndpointLabels::AllIstio);
        for auto in [true, false] {
            for inferred in [Strict, Permissive, Disable] {
                for labels in [
                    EndpointLabels::AllIstio,
                    EndpointLabels::NoneIstio,
                    EndpointLabels::Mixed,
                    EndpointLabels::Unknown,
                ] {
                    let d = decide(Some(&t), auto, inferred, labels);
                    assert_eq!(d.mode, base.mode, "{dr}");
                    assert_eq!(d.by, DecidedBy::RuleTls(t.mode.clone()));
                    assert_eq!(
                        d.wire_for(true),
                        d.wire_for(false),
                        "{dr}: no per-endpoint choice"
                    );
                }
            }
        }
    }
}

#[test]
fn explicit_tls_always_wins() {
    for (mode, auto, inferred, labels, want) in [
        (
            TlsMode::Disable,
            true,
            Strict,
            EndpointLabels::AllIstio,
            ClientTlsMode::Plaintext,
        ),
        (
            TlsMode::IstioMutual,
            false,
            Disable,
            EndpointLabels::NoneIstio,
            ClientTlsMode::IstioMutual,
        ),
        (
            TlsMode::Simple,
            true,
            Strict,
            EndpointLabels::Unknown,
            ClientTlsMode::Simple,
        ),
        (
            TlsMode::Mutual,
            true,
            Strict,
            EndpointLabels::Unknown,
            ClientTlsMode::Mutual,
        ),
    ] {
        let d = decide(Some(&tls(mode.clone())), auto, inferred, labels);
        assert_eq!(d.mode, want);
        assert!(d.reason.contains(mode.as_str()), "{}", d.reason);
        assert_eq!(
            d.sends_istio_mtls(),
            Some(want == ClientTlsMode::IstioMutual)
        );
    }
}

#[test]
fn no_tls_depends_on_auto_mtls_and_namespace_mode() {
    let d = decide(None, true, Strict, EndpointLabels::AllIstio);
    assert_eq!(d.mode, ClientTlsMode::AutoIstioMutual);
    assert_eq!(d.sends_istio_mtls(), Some(true));
    assert_eq!(d.wire_for(true), Wire::IstioMtls);
    assert_eq!(d.wire_for(false), Wire::Plaintext);
    assert_eq!(
        decide(None, true, Permissive, EndpointLabels::NoneIstio).sends_istio_mtls(),
        Some(false)
    );
    assert_eq!(
        decide(None, true, Permissive, EndpointLabels::Mixed).sends_istio_mtls(),
        None
    );
    assert_eq!(
        decide(None, true, Disable, EndpointLabels::AllIstio).mode,
        ClientTlsMode::Plaintext
    );
    let d = decide(None, false, Strict, EndpointLabels::AllIstio);
    assert_eq!(d.mode, ClientTlsMode::Plaintext);
    assert!(d.reason.contains("auto mTLS is off"));
    assert_eq!(d.by, DecidedBy::AutoMtlsOff);
}

#[test]
fn passthrough_and_mesh_external_services() {
    let input = |service, endpoints, auto| ClientTlsInput {
        rule_tls: None,
        auto_mtls: auto,
        service_mode: Strict,
        endpoints,
        service,
    };
    // Headless with sidecars everywhere: one TLS socket, mTLS to every endpoint.
    let d = decide_for(&input(
        ServiceKind::Passthrough,
        EndpointLabels::AllIstio,
        true,
    ));
    assert_eq!(d.mode, ClientTlsMode::IstioMutual);
    assert_eq!(
        d.wire_for(false),
        Wire::IstioMtls,
        "no tlsMode match on ORIGINAL_DST clusters"
    );
    // One endpoint without sidecar turns it off for all (BestEffortInferServiceMTLSMode).
    for labels in [
        EndpointLabels::Mixed,
        EndpointLabels::NoneIstio,
        EndpointLabels::Unknown,
    ] {
        let d = decide_for(&input(ServiceKind::Passthrough, labels, true));
        assert_eq!(d.by, DecidedBy::PassthroughNotAllSidecars);
        assert_eq!(d.wire_for(true), Wire::Plaintext);
    }
    // Near miss: a cluster-IP service with mixed endpoints still picks per endpoint.
    let d = decide_for(&input(ServiceKind::Mesh, EndpointLabels::Mixed, true));
    assert_eq!(d.mode, ClientTlsMode::AutoIstioMutual);
    // Mesh-external: never auto mTLS, but a rule's tls still applies.
    let d = decide_for(&input(
        ServiceKind::MeshExternal,
        EndpointLabels::AllIstio,
        true,
    ));
    assert_eq!(
        (d.mode.clone(), d.by.clone()),
        (ClientTlsMode::Plaintext, DecidedBy::MeshExternal)
    );
    let simple = tls(TlsMode::Simple);
    let d = decide_for(&ClientTlsInput {
        rule_tls: Some(&simple),
        ..input(ServiceKind::MeshExternal, EndpointLabels::Unknown, true)
    });
    assert_eq!(d.mode, ClientTlsMode::Simple);
    // Auto mTLS off wins over passthrough.
    let d = decide_for(&input(
        ServiceKind::Passthrough,
        EndpointLabels::AllIstio,
        false,
    ));
    assert_eq!(d.by, DecidedBy::AutoMtlsOff);
}

#[test]
fn endpoint_label_summary() {
    assert_eq!(EndpointLabels::from_flags([]), EndpointLabels::Unknown);
    assert_eq!(
        EndpointLabels::from_flags([true, true]),
        EndpointLabels::AllIstio
    );
    assert_eq!(
        EndpointLabels::from_flags([false]),
        EndpointLabels::NoneIstio
    );
    assert_eq!(
        EndpointLabels::from_flags([true, false]),
        EndpointLabels::Mixed
    );
}

#[test]
fn acceptance() {
    assert_eq!(server_accepts(Strict, Wire::Plaintext), Some(false));
    assert_eq!(server_accepts(Permissive, Wire::Plaintext), Some(true));
    assert_eq!(server_accepts(Disable, Wire::IstioMtls), Some(false));
    assert_eq!(server_accepts(Strict, Wire::IstioMtls), Some(true));
    assert_eq!(server_accepts(Strict, Wire::OtherTls), Some(false));
    assert_eq!(server_accepts(Permissive, Wire::OtherTls), None);
    assert_eq!(accepts(Server::NoSidecar, Wire::IstioMtls), Some(false));
    assert_eq!(accepts(Server::NoSidecar, Wire::OtherTls), None);
}

// ---------------------------------------------------------------------------
// Observed: a parsed Envoy cluster → the wire
// ---------------------------------------------------------------------------

fn cluster_tls(cluster: Value) -> ClientTlsConfig {
    let dump = json!({"configs": [{
        "@type": "type.googleapis.com/envoy.admin.v3.ClustersConfigDump.DynamicCluster",
        "cluster": cluster}]});
    parse_config_dump(&dump)
        .unwrap()
        .clusters
        .remove(0)
        .client_tls
}

fn tls_socket(common: Value) -> Value {
    json!({"name": "envoy.transport_sockets.tls", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",
        "common_tls_context": common}})
}

fn istio_common() -> Value {
    json!({"alpn_protocols": ["istio-peer-exchange", "istio"], "tls_certificate_sds_secret_configs": [{"name": "default"}]})
}

#[test]
fn observed_wire_from_parsed_clusters() {
    let auto = cluster_tls(
        json!({"name": "outbound|80||a", "transport_socket_matches": [
        {"name": "tlsMode-istio", "match": {"tlsMode": "istio"}, "transport_socket": tls_socket(istio_common())},
        {"name": "tlsMode-disabled", "match": {}, "transport_socket": {"name": "envoy.transport_sockets.raw_buffer"}}]}),
    );
    assert_eq!(observed_wire(&auto, true), Some(Wire::IstioMtls));
    assert_eq!(observed_wire(&auto, false), Some(Wire::Plaintext));
    assert_eq!(ObservedClientTls::of(&auto).label(), "auto");
    // Auto matches without the default entry: unlabelled endpoints get plaintext too.
    let no_default = cluster_tls(json!({"name": "b", "transport_socket_matches": [
        {"name": "tlsMode-istio", "match": {"tlsMode": "istio"}, "transport_socket": tls_socket(istio_common())}]}));
    assert_eq!(observed_wire(&no_default, false), Some(Wire::Plaintext));
    // A TLS match with user certificates is user TLS even to labelled endpoints.
    let user_auto = cluster_tls(json!({"name": "c", "transport_socket_matches": [
        {"match": {"tlsMode": "istio"}, "transport_socket": tls_socket(json!({"alpn_protocols": ["h2"]}))}]}));
    assert_eq!(observed_wire(&user_auto, true), Some(Wire::OtherTls));
    let istio = cluster_tls(json!({"name": "d", "transport_socket": tls_socket(istio_common())}));
    assert_eq!(observed_wire(&istio, false), Some(Wire::IstioMtls));
    assert_eq!(
        describe_cluster_tls(&istio),
        "TLS transport socket with Istio certificates: ISTIO_MUTUAL"
    );
    // Istio ≤1.4: file certificates under /etc/certs/ (v2 tls_context).
    let v2 = cluster_tls(
        json!({"name": "e", "tls_context": {"common_tls_context": {"tls_certificates": [{"certificate_chain": {"filename": "/etc/certs/cert-chain.pem"}}]}}}),
    );
    assert_eq!(observed_wire(&v2, false), Some(Wire::IstioMtls));
    // Near miss: SDS with another secret name and no Istio ALPN is user TLS.
    let user = cluster_tls(
        json!({"name": "f", "transport_socket": tls_socket(json!({"tls_certificate_sds_secret_configs": [{"name": "kubernetes://my-cert"}]}))}),
    );
    assert_eq!(observed_wire(&user, true), Some(Wire::OtherTls));
    assert_eq!(ObservedClientTls::of(&user).label(), "SIMPLE/MUTUAL");
    let plain = cluster_tls(json!({"name": "g"}));
    assert_eq!(observed_wire(&plain, true), Some(Wire::Plaintext));
    // An unknown socket has an unknown wire.
    let other = cluster_tls(
        json!({"name": "h", "transport_socket": {"name": "envoy.transport_sockets.http_11_proxy", "typed_config": {"@type": "x.Http11ProxyUpstreamTransport"}}}),
    );
    assert_eq!(observed_wire(&other, true), None);
    assert_eq!(
        describe_cluster_tls(&other),
        "transport socket envoy.transport_sockets.http_11_proxy"
    );
}

#[test]
fn cluster_verdicts() {
    let auto = ClientTlsConfig::AutoMtls {
        istio: Box::new(crate::envoy::config_dump::TlsContext {
            alpn: vec!["istio".into()],
            ..Default::default()
        }),
        fallback_plaintext: true,
    };
    let ep = |labelled_istio, server| EndpointView {
        labelled_istio,
        server,
    };
    // Auto mTLS: the labelled STRICT sidecar is fine, an endpoint whose sidecar
    // lost its label gets plaintext and refuses it.
    let v = cluster_verdict(
        &auto,
        &[
            ep(true, Some(Server::Sidecar(Strict))),
            ep(false, None),
            ep(false, Some(Server::Sidecar(Strict))),
        ],
    );
    assert_eq!(
        v.status,
        ClusterStatus::Conflict(Mismatch::PlaintextToStrict)
    );
    assert_eq!(
        v.reason(),
        "client sends plaintext, server accepts only mTLS (503 UC)"
    );
    // Near miss: the endpoint with the unknown server in between does not shift labels.
    let v = cluster_verdict(
        &auto,
        &[ep(false, None), ep(true, Some(Server::Sidecar(Strict)))],
    );
    assert_eq!(v.status, ClusterStatus::Auto);
    assert_eq!(v.server_modes, vec![Strict]);
    assert_eq!(cluster_verdict(&auto, &[]).status, ClusterStatus::Auto);
    assert_eq!(
        cluster_verdict(&ClientTlsConfig::Plaintext, &[ep(false, None)]).status,
        ClusterStatus::Unknown
    );
    let v = cluster_verdict(
        &ClientTlsConfig::Plaintext,
        &[ep(false, Some(Server::Sidecar(Permissive)))],
    );
    assert_eq!(
        (v.status, v.reason()),
        (ClusterStatus::Ok, "client TLS fits the server mode")
    );
    let v = cluster_verdict(
        &ClientTlsConfig::Other("hbone".into()),
        &[ep(true, Some(Server::Sidecar(Strict)))],
    );
    assert_eq!(
        v.status,
        ClusterStatus::Depends,
        "an unknown socket is never called a conflict"
    );
    assert_eq!(v.client.label(), "hbone");
    // User TLS to a PERMISSIVE sidecar reaches the app: it depends on the app.
    let user = ClientTlsConfig::Tls(crate::envoy::config_dump::TlsContext::default());
    let v = cluster_verdict(&user, &[ep(false, Some(Server::Sidecar(Permissive)))]);
    assert_eq!(v.status, ClusterStatus::Depends);
    // Istio mTLS to a pod known to run no sidecar is a conflict, and no mode is invented for it.
    let istio = ClientTlsConfig::Tls(crate::envoy::config_dump::TlsContext {
        sds_cert: Some("default".into()),
        ..Default::default()
    });
    let v = cluster_verdict(&istio, &[ep(true, Some(Server::NoSidecar))]);
    assert_eq!(v.status, ClusterStatus::Conflict(Mismatch::MtlsToPlaintext));
    assert!(v.no_sidecar && v.server_modes.is_empty());
}

// ---------------------------------------------------------------------------
// Inbound modes from listeners (moved from the Envoy parser)
// ---------------------------------------------------------------------------

fn listeners(dump: &Value) -> Vec<crate::envoy::config_dump::Listener> {
    parse_config_dump(dump).unwrap().listeners
}

#[test]
fn virtual_inbound_modes() {
    let ls = listeners(&crate::envoy::config_dump::tests::v3_listeners());
    assert!(is_sidecar_inbound(&ls[0]));
    assert!(!is_sidecar_inbound(&ls[1]));
    let modes = inbound_modes(&ls);
    assert_eq!(modes.keys().copied().collect::<Vec<_>>(), vec![8080, 9090]);
    let m8080 = &modes[&8080];
    assert!(m8080.accepts_mtls && m8080.accepts_plaintext && m8080.requires_client_cert);
    assert_eq!(m8080.as_peer_auth_mode(), Permissive);
    assert_eq!(m8080.source_listener, "virtualInbound");
    assert_eq!(modes[&9090].as_peer_auth_mode(), Strict);
    assert_eq!(modes[&9090].accepts(Wire::Plaintext), Some(false));
    let catch_all = inbound_catch_all(&ls).unwrap();
    assert!(catch_all.accepts_mtls && catch_all.accepts_plaintext);
    assert!(
        !catch_all.passes_tls_through,
        "its tls chain terminates TLS"
    );
    assert_eq!(
        catch_all.accepts(Wire::OtherTls),
        None,
        "PERMISSIVE: up to the app"
    );
    assert_eq!(inbound_mode_for(&ls, 7000), Some(catch_all));
    // The rejected listener in the same dump counts for nothing.
    assert!(!modes.contains_key(&15007));
}

#[test]
fn legacy_per_ip_inbound_listeners() {
    let ls = listeners(&crate::envoy::config_dump::tests::legacy_per_ip_listeners());
    assert!(
        is_sidecar_inbound(&ls[0]),
        "no direction, but chains to inbound| clusters"
    );
    assert!(!is_sidecar_inbound(&ls[2]));
    let modes = inbound_modes(&ls);
    assert_eq!(modes.len(), 1, "both inbound listeners are port 9080");
    let m = &modes[&9080];
    assert_eq!(m.as_peer_auth_mode(), Permissive);
    assert_eq!(m.source_listener, "10.52.2.21_9080,172.30.150.216_9080");
    assert_eq!(inbound_modes(&ls[..1])[&9080].as_peer_auth_mode(), Strict);
    assert_eq!(inbound_catch_all(&ls), None);
}

#[test]
fn passthrough_chains_leave_user_tls_to_the_app() {
    // A PERMISSIVE port whose chains are: Istio mTLS, TLS passed through
    // untouched, plaintext (listener_inbound.go's passthrough chain for
    // non-Istio TLS).
    let dump = json!({"configs": [{"@type": "type.googleapis.com/envoy.admin.v3.ListenersConfigDump.DynamicListener",
        "name": "virtualInbound", "active_state": {"listener": {"name": "virtualInbound",
            "address": {"socket_address": {"address": "0.0.0.0", "port_value": 15006}}, "traffic_direction": "INBOUND",
            "filter_chains": [
                {"filter_chain_match": {"destination_port": 8443, "transport_protocol": "tls", "application_protocols": ["istio"]},
                 "transport_socket": {"name": "envoy.transport_sockets.tls", "typed_config": {"@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext", "require_client_certificate": true}}},
                {"filter_chain_match": {"destination_port": 8443, "transport_protocol": "tls"}},
                {"filter_chain_match": {"destination_port": 8443, "transport_protocol": "raw_buffer"}}]}}}]});
    let m = inbound_mode_for(&listeners(&dump), 8443).unwrap();
    assert!(m.passes_tls_through);
    assert_eq!(m.accepts(Wire::OtherTls), None);
    assert_eq!(m.accepts(Wire::IstioMtls), Some(true));
    // Near miss: STRICT (the mTLS chain alone) refuses user TLS.
    let strict = json!({"configs": [{"@type": "type.googleapis.com/envoy.admin.v3.ListenersConfigDump.DynamicListener",
        "name": "virtualInbound", "active_state": {"listener": {"name": "virtualInbound",
            "address": {"socket_address": {"address": "0.0.0.0", "port_value": 15006}}, "traffic_direction": "INBOUND",
            "filter_chains": [
                {"filter_chain_match": {"destination_port": 8443, "transport_protocol": "tls"},
                 "transport_socket": {"name": "envoy.transport_sockets.tls", "typed_config": {"@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext", "require_client_certificate": true}}}]}}}]});
    let m = inbound_mode_for(&listeners(&strict), 8443).unwrap();
    assert_eq!(m.accepts(Wire::OtherTls), Some(false));
    assert_eq!(m.accepts(Wire::Plaintext), Some(false));
}

#[test]
fn internal_and_rejected_listeners_accept_nothing() {
    let internal = json!({"configs": [{"@type": "type.googleapis.com/envoy.admin.v3.ListenersConfigDump",
        "dynamic_listeners": [{"name": "main_internal", "active_state": {"listener": {"name": "main_internal", "traffic_direction": "INBOUND",
            "internal_listener": {},
            "filter_chains": [{"filter_chain_match": {"destination_port": 80}, "filters": [{"name": "envoy.filters.network.tcp_proxy", "typed_config": {"cluster": "inbound|80||"}}]}]}}}]}]});
    let ls = listeners(&internal);
    assert!(is_sidecar_inbound(&ls[0]));
    assert!(
        inbound_modes(&ls).is_empty(),
        "internal listeners are not the sidecar inbound path"
    );
    let rejected = json!({"configs": [{"@type": "type.googleapis.com/envoy.admin.v3.ListenersConfigDump",
        "dynamic_listeners": [{"name": "virtualInbound", "error_state": {
            "failed_configuration": {"@type": "type.googleapis.com/envoy.config.listener.v3.Listener", "name": "virtualInbound",
                "address": {"socket_address": {"address": "0.0.0.0", "port_value": 15006}}, "traffic_direction": "INBOUND",
                "filter_chains": [{"filter_chain_match": {"destination_port": 8083, "transport_protocol": "raw_buffer"}, "filters": []}]},
            "details": "Proto constraint validation failed (LuaValidationError…)"}}]}]});
    let ls = listeners(&rejected);
    assert!(inbound_modes(&ls).is_empty());
    assert_eq!(inbound_catch_all(&ls), None);
    assert_eq!(inbound_mode_for(&ls, 8083), None);
}
