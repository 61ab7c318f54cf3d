//! Model stage: the seam between the snapshot's schema and the model.
//!
//! Snapshot v2 (being built in `snapshot`/`collect`) adds optional fields:
//! the target as `collect` resolved it (Services, port, cluster domain) and
//! each proxy's Istio standard metrics. The model reads them only through
//! these accessors, so the switch is a change to this file alone. With a v1
//! snapshot they are absent and the model falls back to what v1 carries
//! (the target as typed, resolved again here; no metrics).

use crate::snapshot::{ProxyEvidence, RouteLookups, Snapshot};

use super::services::ServiceKey;

/// The target as `collect` resolved it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedTarget {
    pub services: Vec<ServiceKey>,
    /// The one port asked for (`host:port`), if any.
    pub port: Option<u16>,
    pub cluster_domain: Option<String>,
}

/// The resolved target of a v2 snapshot; `None` for v1 (no such field yet).
pub fn resolved_target(_snapshot: &Snapshot) -> Option<ResolvedTarget> {
    None
}

/// A proxy's Istio standard metrics (Prometheus text, `:15020/stats/prometheus`)
/// in a v2 snapshot; `None` for v1 (no such field yet).
pub fn metrics_text(_proxy: &ProxyEvidence) -> Option<&str> {
    None
}

/// What collection looked up for the routes towards the target (v2 from
/// the routes step on); `None` when it did not.
pub fn route_lookups(snapshot: &Snapshot) -> Option<&RouteLookups> {
    snapshot.resolved.as_ref().and_then(|r| r.routes.as_ref())
}
