//! kubectl-mesh503: why does an Istio mesh answer 503?
//!
//! The crate is a pipeline, one module per stage:
//! `collect` (read-only cluster I/O) → [`snapshot::Snapshot`] (the evidence
//! bundle) → `analyze` (pure: findings, ranked) → `report` (table or JSON).
//! `istio` and `envoy` are pure helpers for `analyze`: Istio's config
//! semantics and parsers for what Envoy's admin API and access logs emit.
//! `cli` turns flags into [`cli::Settings`], `run` drives the stages, and
//! [`error::Error`] maps every failure to a documented exit code.

pub mod analyze;
pub mod cli;
pub mod collect;
pub mod envoy;
pub mod error;
pub mod istio;
pub mod report;
pub mod run;
pub mod snapshot;
pub mod target;
