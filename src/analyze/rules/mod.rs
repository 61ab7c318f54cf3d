//! Analyze stage: the rules, one file per cause. Each is a pure function of
//! the [`Mesh`](crate::model::Mesh) returning findings, declared in
//! [`catalog`](super::catalog), with table-driven unit tests on a
//! `MeshBuilder` (the cases that must fire and the near misses that must not).
//! `common`, `routes` and `tls_paths` are shared helpers, not causes.

pub mod app_not_listening;
pub mod circuit_breaker_overflow;
pub mod client_without_sidecar;
pub mod common;
pub mod config_rejected;
pub mod fault_injection_503;
pub mod gateway_route_missing;
pub mod mtls_plaintext_to_strict;
pub mod mtls_to_plaintext_server;
pub mod no_healthy_upstream;
pub mod port_protocol_undeclared;
pub mod proxy_config_differs;
pub mod route_to_unknown_host;
pub mod route_unreachable;
pub mod routes;
pub mod service_without_endpoints;
pub mod subset_not_found;
pub mod subset_selects_no_pods;
pub mod tls_origination_to_sidecar;
pub mod tls_paths;
pub mod unexplained_503s;
pub mod upstream_connection_reset;
pub mod virtual_service_shadowed;
