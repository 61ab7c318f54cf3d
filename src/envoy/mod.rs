//! Parsers for what Envoy's admin API and access logs emit, for every Envoy
//! generation Istio has shipped (v2 `envoy.admin.v2alpha` dumps of Istio
//! 1.1–1.5 through today's v3).
//!
//! Place in the flow: collect → snapshot → model → analyze → report; envoy/
//! (like istio/) is a pure helper. collect uses it to choose what to read
//! (callers in logs, traffic in `/clusters`); model parses the snapshot's
//! proxy evidence with it. envoy/ parses only what Envoy emits and makes no
//! Istio decisions (those are in `istio::tls` and friends).
//!
//! - [`config_dump`]: `/config_dump` (full or `?resource=`): clusters with their
//!   client TLS, circuit breakers and outlier detection; listeners and their
//!   filter chains; EDS endpoints; bootstrap; rejected (NACKed) updates;
//! - [`clusters`]: `/clusters` (text and JSON): per-host counters and health
//!   flags, and traffic to a service;
//! - [`stats`]: `/stats` text, and Istio's stats inclusion list;
//! - [`metrics`]: Istio's standard metrics (`istio_requests_total`, TCP
//!   connections) in every spelling;
//! - [`access_log`]: istio-proxy access log lines (TEXT of every era, JSON),
//!   and the callers they name.
//!
//! All pure: no I/O, never panic on input.

pub mod access_log;
pub mod clusters;
pub mod config_dump;
pub mod metrics;
pub mod stats;
