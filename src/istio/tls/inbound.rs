//! What a server sidecar accepts on each inbound port, read from the inbound
//! listeners it really runs: Istio's inbound-mode semantics over the filter
//! chains the Envoy parser reports.
//!
//! Place in the flow: part of `istio::tls` (a pure helper), moved here from
//! the Envoy parser (envoy/ reports chains; istio/ says what they mean).
//! `diagnose` compares it with the predicted server mode; `tls-check` lists it.
//!
//! Sources: istio/istio `pilot/pkg/networking/core/listener_inbound.go`
//! (`virtualInbound` on 15006 with per-port chains matched on
//! `destination_port` and `transport_protocol`, the passthrough catch-all,
//! the 15006 blackhole chain), authn `BuildInboundFilterChain` (STRICT: TLS
//! chains requiring a client certificate only; PERMISSIVE: TLS and
//! raw_buffer chains; DISABLE: plaintext only); Istio ≤1.3 per-IP inbound
//! listeners `<ip>_<port>` (`buildSidecarInboundListeners`).

use std::collections::BTreeMap;

use super::{server_accepts, Wire};
use crate::envoy::config_dump::{FilterChain, Listener, ListenerState};
use crate::istio::authn::MtlsMode;

/// Is this an inbound (server-side) listener of a sidecar? `virtualInbound`,
/// direction INBOUND, or (Istio ≤1.2, no direction) a per-IP listener whose
/// chains send to `inbound|` clusters.
pub fn is_sidecar_inbound(l: &Listener) -> bool {
    if l.name == "virtualInbound" {
        return true;
    }
    match l.traffic_direction.as_deref() {
        Some("INBOUND") => true,
        Some("OUTBOUND") => false,
        _ => l
            .filter_chains
            .iter()
            .any(|fc| fc.clusters.iter().any(|c| c.starts_with("inbound|"))),
    }
}

/// What an inbound port accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundMode {
    /// A chain terminates TLS for this port (Istio mTLS when `require_client_certificate`).
    pub accepts_mtls: bool,
    pub accepts_plaintext: bool,
    /// Some chain terminating TLS requires a client certificate.
    pub requires_client_cert: bool,
    /// A chain matches TLS without terminating it (passthrough to the app).
    pub passes_tls_through: bool,
    /// Listener(s) the chains came from.
    pub source_listener: String,
}

impl InboundMode {
    fn empty() -> InboundMode {
        InboundMode {
            accepts_mtls: false,
            accepts_plaintext: false,
            requires_client_cert: false,
            passes_tls_through: false,
            source_listener: String::new(),
        }
    }

    /// `STRICT` / `PERMISSIVE` / `DISABLE` in PeerAuthentication terms.
    pub fn as_peer_auth_mode(&self) -> MtlsMode {
        match (self.accepts_mtls, self.accepts_plaintext) {
            (true, false) => MtlsMode::Strict,
            (true, true) => MtlsMode::Permissive,
            _ => MtlsMode::Disable,
        }
    }

    /// Does the port accept `wire`? As [`server_accepts`] for the mode, except
    /// that user TLS reaches the app (unknown) where a chain passes TLS through.
    pub fn accepts(&self, wire: Wire) -> Option<bool> {
        if wire == Wire::OtherTls && self.passes_tls_through {
            return None;
        }
        server_accepts(self.as_peer_auth_mode(), wire)
    }

    fn fold_chain(&mut self, fc: &FilterChain, listener: &str) {
        if fc.terminates_tls() {
            self.accepts_mtls = true;
            if fc
                .tls
                .as_ref()
                .is_some_and(|t| t.require_client_certificate)
            {
                self.requires_client_cert = true;
            }
        }
        if fc.accepts_plaintext() {
            self.accepts_plaintext = true;
        }
        if fc.passes_tls_through() {
            self.passes_tls_through = true;
        }
        if !self.source_listener.split(',').any(|l| l == listener) {
            if !self.source_listener.is_empty() {
                self.source_listener.push(',');
            }
            self.source_listener.push_str(listener);
        }
    }
}

fn serving(l: &Listener) -> bool {
    matches!(l.state, ListenerState::Active | ListenerState::Static)
}

/// Per inbound port, what the server sidecar accepts.
///
/// Modern sidecars (Istio ≥1.4 `virtualInbound` on 15006): chains with a
/// `destination_port` belong to that port — STRICT leaves only TLS chains,
/// PERMISSIVE has TLS and raw_buffer chains, DISABLE only raw_buffer.
/// Chains without a port are the catch-all (see [`inbound_catch_all`]); the
/// blackhole chain for port 15006 itself is skipped.
/// Legacy sidecars (Istio ≤1.4): per-IP listeners such as `10.52.2.21_9080`;
/// one chain with `tls_context.require_client_certificate: true` = STRICT, a
/// TLS chain (ALPN `istio`) plus a plaintext chain = PERMISSIVE.
/// Only active listeners with a socket address count (a rejected
/// `virtualInbound` accepts nothing; internal listeners such as `main_internal`
/// behind HBONE are not on the sidecar inbound path).
pub fn inbound_modes(listeners: &[Listener]) -> BTreeMap<u16, InboundMode> {
    let mut out: BTreeMap<u16, InboundMode> = BTreeMap::new();
    for l in listeners.iter().filter(|l| serving(l)) {
        // Internal listeners (`main_internal`, HBONE) have no socket address and are
        // not on the sidecar's inbound path.
        let Some(listener_port) = l.port else {
            continue;
        };
        if !is_sidecar_inbound(l) {
            continue;
        }
        let virtual_inbound =
            l.name == "virtualInbound" || (listener_port == 15006 && l.use_original_dst);
        for fc in &l.filter_chains {
            let port = match (fc.destination_port, virtual_inbound) {
                (Some(15006), true) | (None, true) => continue,
                (Some(p), _) => p,
                (None, false) => listener_port,
            };
            out.entry(port)
                .or_insert_with(InboundMode::empty)
                .fold_chain(fc, &l.name);
        }
    }
    out
}

/// What `virtualInbound` does with ports that have no chains of their own
/// (Istio's passthrough catch-all). `None` if there is no active virtualInbound.
pub fn inbound_catch_all(listeners: &[Listener]) -> Option<InboundMode> {
    let l = listeners
        .iter()
        .find(|l| l.name == "virtualInbound" && serving(l))?;
    let mut mode = InboundMode::empty();
    for fc in l
        .filter_chains
        .iter()
        .filter(|fc| fc.destination_port.is_none())
        .chain(l.default_filter_chain.iter())
    {
        mode.fold_chain(fc, &l.name);
    }
    Some(mode)
}

/// The mode for one port: its own chains, else the catch-all.
pub fn inbound_mode_for(listeners: &[Listener], port: u16) -> Option<InboundMode> {
    inbound_modes(listeners)
        .remove(&port)
        .or_else(|| inbound_catch_all(listeners))
}
