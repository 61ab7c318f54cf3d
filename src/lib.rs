//! kubectl-mesh503: why does an Istio mesh answer 503?
//!
//! The crate is a pipeline, one module per stage (docs/architecture.md):
//! `collect` (read-only cluster I/O) → [`snapshot::Snapshot`] (the evidence
//! bundle) → [`model::Mesh`] (the only typed view of a snapshot, with the
//! decisions Istio makes computed once) → `analyze` (pure: the catalog of
//! causes, one rule each, ranked) → `report` (table or JSON).
//! `istio` and `envoy` are pure helpers: Istio's config semantics and
//! parsers for what Envoy's admin API and access logs emit.
//! `cli` turns flags into [`cli::Settings`], `run` drives the stages, and
//! [`error::Error`] maps every failure to a documented exit code.

pub mod analyze;
pub mod cli;
pub mod collect;
pub mod complete;
pub mod envoy;
pub mod error;
pub mod istio;
pub mod model;
pub mod report;
pub mod run;
pub mod snapshot;
pub mod target;
pub mod words;
