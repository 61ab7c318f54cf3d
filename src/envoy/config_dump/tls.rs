//! Transport sockets: the upstream (`UpstreamTlsContext`, v2 `tls_context`)
//! and downstream (`DownstreamTlsContext`) TLS contexts as Envoy prints them.
//!
//! Place in the flow: part of the pure `/config_dump` parser (envoy/); what
//! the contexts mean for Istio (mTLS or user TLS) is decided in
//! `istio::tls`, not here.
//!
//! Sources: envoyproxy/envoy `api/envoy/extensions/transport_sockets/tls/v3/tls.proto`
//! (`UpstreamTlsContext`, `DownstreamTlsContext`, `CommonTlsContext`),
//! `api/envoy/config/core/v3/base.proto` (`TransportSocket`).

use super::json::{bool_of, filter_config, s, str_list, string_matcher, Json};

/// Upstream TLS context, v2 `tls_context` or v3 `UpstreamTlsContext`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TlsContext {
    pub sni: Option<String>,
    pub alpn: Vec<String>,
    /// `spiffe://…` (exact) or `prefix:…`, `suffix:…`, `regex:…`, `contains:…`.
    pub san_matchers: Vec<String>,
    /// SDS secret for the client certificate (`default` in Istio).
    pub sds_cert: Option<String>,
    /// SDS secret for the trust bundle (`ROOTCA` in Istio).
    pub sds_validation: Option<String>,
    /// File-based certificate chain (Istio ≤1.4 `/etc/certs/cert-chain.pem`).
    pub cert_file: Option<String>,
}

/// Server-side TLS on a filter chain.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DownstreamTls {
    pub require_client_certificate: bool,
    pub alpn: Vec<String>,
    pub sds_cert: Option<String>,
}

fn first_sds_name<J: Json>(common: &J) -> Option<String> {
    common
        .get("tls_certificate_sds_secret_configs")
        .and_then(J::as_array)
        .and_then(|a| a.first())
        .and_then(|c| s(c, "name"))
}

/// The SAN matchers of one validation context (`verify_subject_alt_name`,
/// `match_subject_alt_names`, `match_typed_subject_alt_names`).
fn san_matchers<J: Json>(vc: &J, out: &mut Vec<String>) {
    out.extend(str_list(vc.get("verify_subject_alt_name")));
    for m in vc
        .get("match_subject_alt_names")
        .and_then(J::as_array)
        .into_iter()
        .flatten()
    {
        out.extend(string_matcher(m));
    }
    for m in vc
        .get("match_typed_subject_alt_names")
        .and_then(J::as_array)
        .into_iter()
        .flatten()
    {
        out.extend(m.get("matcher").and_then(string_matcher));
    }
}

/// Parse a `common_tls_context` (+ `sni`) into [`TlsContext`].
pub(super) fn tls_context<J: Json>(ctx: &J) -> TlsContext {
    let common = ctx.get("common_tls_context").unwrap_or(J::null());
    let mut t = TlsContext {
        sni: s(ctx, "sni").filter(|x| !x.is_empty()),
        alpn: str_list(common.get("alpn_protocols")),
        sds_cert: first_sds_name(common),
        ..TlsContext::default()
    };
    t.cert_file = common
        .get("tls_certificates")
        .and_then(J::as_array)
        .and_then(|a| a.first())
        .and_then(|c| c.get("certificate_chain"))
        .and_then(|c| s(c, "filename"));
    if let Some(v) = common.get("validation_context") {
        san_matchers(v, &mut t.san_matchers);
    }
    if let Some(cvc) = common.get("combined_validation_context") {
        if let Some(v) = cvc.get("default_validation_context") {
            san_matchers(v, &mut t.san_matchers);
        }
        t.sds_validation = cvc
            .get("validation_context_sds_secret_config")
            .and_then(|c| s(c, "name"));
    }
    if t.sds_validation.is_none() {
        t.sds_validation = common
            .get("validation_context_sds_secret_config")
            .and_then(|c| s(c, "name"));
    }
    t
}

/// Parse a `DownstreamTlsContext` (v3) or v2 filter-chain `tls_context`.
pub(super) fn downstream_tls<J: Json>(ctx: &J) -> DownstreamTls {
    let common = ctx.get("common_tls_context").unwrap_or(J::null());
    DownstreamTls {
        require_client_certificate: ctx
            .get("require_client_certificate")
            .and_then(bool_of)
            .unwrap_or(false),
        alpn: str_list(common.get("alpn_protocols")),
        sds_cert: first_sds_name(common),
    }
}

/// Classify one transport socket: `Ok(None)` = plaintext, `Ok(Some(ctx))` =
/// TLS, `Err(name)` = another socket (by name or type URL).
pub(super) fn transport_socket<J: Json>(ts: &J) -> Result<Option<TlsContext>, String> {
    let name = ts.get("name").and_then(J::as_str).unwrap_or("");
    let cfg = ts.get("typed_config").or_else(|| ts.get("config"));
    let type_url = cfg
        .and_then(|c| c.get("@type"))
        .and_then(J::as_str)
        .unwrap_or("");
    if name.contains("raw_buffer") || type_url.ends_with("RawBuffer") {
        return Ok(None);
    }
    if name == "tls"
        || name.ends_with("transport_sockets.tls")
        || type_url.ends_with("UpstreamTlsContext")
        || type_url.ends_with("DownstreamTlsContext")
    {
        return Ok(Some(tls_context(cfg.unwrap_or(J::null()))));
    }
    // Wrappers (internal_upstream, tap, …) hold the real socket inside.
    if let Some(inner) = cfg.and_then(|c| c.get("transport_socket")) {
        return transport_socket(inner);
    }
    if name.is_empty() && type_url.is_empty() {
        return Ok(None);
    }
    Err(if name.is_empty() {
        type_url.to_string()
    } else {
        name.to_string()
    })
}

/// The downstream TLS a filter chain terminates (v2 `tls_context`, v3 a TLS
/// `transport_socket`), if any.
pub(super) fn chain_tls<J: Json>(fc: &J) -> Option<DownstreamTls> {
    if let Some(tc) = fc.get("tls_context") {
        return Some(downstream_tls(tc));
    }
    let ts = fc.get("transport_socket")?;
    match transport_socket(ts) {
        Ok(Some(_)) => Some(downstream_tls(filter_config(ts))),
        _ => None,
    }
}
