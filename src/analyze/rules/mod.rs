//! Analyze stage: the rules, one file per cause. Each is a pure function of
//! the [`Mesh`](crate::model::Mesh) returning findings, declared in
//! [`catalog`](super::catalog), with table-driven unit tests on a
//! `MeshBuilder` (the cases that must fire and the near misses that must not).
//! `common` and `tls_paths` are shared helpers, not causes.

pub mod app_not_listening;
pub mod circuit_breaker_overflow;
pub mod client_without_sidecar;
pub mod common;
pub mod mtls_plaintext_to_strict;
pub mod mtls_to_plaintext_server;
pub mod no_healthy_upstream;
pub mod port_protocol_undeclared;
pub mod proxy_config_differs;
pub mod subset_not_found;
pub mod tls_origination_to_sidecar;
pub mod tls_paths;
pub mod upstream_connection_reset;
