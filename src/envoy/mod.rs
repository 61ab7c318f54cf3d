//! Parsers for what Envoy's admin API and access logs emit, for every Envoy
//! generation Istio has shipped (v2 `envoy.admin.v2alpha` dumps of Istio
//! 1.1–1.5 through today's v3).
//!
//! - [`config_dump`]: `/config_dump` (full or `?resource=`): clusters with their
//!   client TLS, circuit breakers and outlier detection; listeners and what each
//!   inbound port accepts; EDS endpoints; bootstrap;
//! - [`clusters`]: `/clusters` (text and JSON): per-host counters and health flags;
//! - [`stats`]: `/stats` text, and Istio's stats inclusion list;
//! - [`access_log`]: istio-proxy access log lines (TEXT of every era, JSON).
//!
//! All pure: no I/O, never panic on input.

pub mod access_log;
pub mod clusters;
pub mod config_dump;
pub mod stats;
