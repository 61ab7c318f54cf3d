//! Rejected (NACKed) configuration: the `error_state` (`UpdateFailureState`)
//! Envoy keeps next to a dynamic listener, cluster or endpoint assignment
//! whose last update it refused, e.g. a listener with an EnvoyFilter-inserted
//! Lua script that does not validate.
//!
//! Place in the flow: part of the pure `/config_dump` parser (envoy/); the
//! facts are carried to the model, where a later rule turns them into a
//! finding about rejected or stale config.
//!
//! Sources: envoyproxy/envoy `api/envoy/admin/v3/config_dump_shared.proto`
//! (`UpdateFailureState`: `failed_configuration`, `last_update_attempt`,
//! `details`, and from v3 `version_info`; `ListenersConfigDump.DynamicListener`,
//! `ClustersConfigDump.DynamicCluster`, `EndpointsConfigDump.DynamicEndpointConfig`
//! each with an `error_state`). Shapes seen in real dumps: a 1.18 sidecar
//! whose `virtualInbound` has only an `error_state` (name, details,
//! `last_update_attempt`, the whole `failed_configuration`), followed by a
//! nameless entry holding another `error_state` for the same listener; Envoy
//! 1.40 shows a NACKed listener with both `active_state` and `error_state`.

use super::json::{s, Json};

/// The xDS type of a resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ResourceType {
    Listener,
    Cluster,
    /// A `ClusterLoadAssignment` (EDS).
    Endpoints,
}

impl std::fmt::Display for ResourceType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ResourceType::Listener => "listener",
            ResourceType::Cluster => "cluster",
            ResourceType::Endpoints => "endpoint assignment",
        })
    }
}

/// What Envoy kept of an update it rejected (`UpdateFailureState`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UpdateFailure {
    /// `details`: Envoy's reason (`Proto constraint validation failed (…)`).
    pub details: Option<String>,
    /// `last_update_attempt` (RFC 3339), when the update was tried.
    pub last_update_attempt: Option<String>,
    /// `version_info` of the rejected update (v3 only; absent in older Envoys).
    pub version_info: Option<String>,
    /// Whether `failed_configuration` is present (Envoy may omit it).
    pub has_failed_configuration: bool,
    /// The resource name inside `failed_configuration` (`name`, or
    /// `cluster_name` for an endpoint assignment).
    pub failed_name: Option<String>,
}

/// One rejected resource in a dump.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectedResource {
    pub resource_type: ResourceType,
    /// The dynamic entry's own `name`; `None` for the nameless entries Envoy
    /// also prints (see [`RejectedResource::resource_name`]).
    pub name: Option<String>,
    pub failure: UpdateFailure,
    /// `version_info` of the version still in force, when there is one (the
    /// listener's `active_state`, the cluster or assignment next to the error).
    pub active_version: Option<String>,
    /// `last_updated` of that version.
    pub active_last_updated: Option<String>,
    /// Where the entry is in the dump (`configs[2].dynamic_listeners[17]`).
    pub path: String,
}

impl RejectedResource {
    /// The entry's name, else the name inside the rejected configuration.
    pub fn resource_name(&self) -> Option<&str> {
        self.name.as_deref().or(self.failure.failed_name.as_deref())
    }

    /// An older version of the resource is still serving (the proxy runs
    /// stale config); `false` when the rejected update is all there is (for a
    /// listener: the port is not served at all).
    pub fn previous_version_serves(&self) -> bool {
        self.active_version.is_some() || self.active_last_updated.is_some()
    }
}

/// Parse an `error_state` object.
pub(super) fn update_failure<J: Json>(es: &J) -> UpdateFailure {
    let failed = es.get("failed_configuration").filter(|f| f.is_object());
    UpdateFailure {
        details: s(es, "details"),
        last_update_attempt: s(es, "last_update_attempt"),
        version_info: s(es, "version_info"),
        has_failed_configuration: failed.is_some(),
        failed_name: failed.and_then(|f| s(f, "name").or_else(|| s(f, "cluster_name"))),
    }
}

/// The rejection recorded next to a dynamic cluster or endpoint assignment
/// (`wrapper` holds `error_state` and, if a version still serves,
/// `version_info` / `last_updated` and the resource under `resource_key`).
pub(super) fn wrapper_rejection<J: Json>(
    wrapper: &J,
    resource_type: ResourceType,
    resource_key: &str,
    name_key: &str,
    path: &str,
) -> Option<RejectedResource> {
    let failure = update_failure(wrapper.get("error_state")?);
    let active = wrapper.get(resource_key).filter(|r| r.is_object());
    Some(RejectedResource {
        resource_type,
        name: s(wrapper, "name").or_else(|| active.and_then(|r| s(r, name_key))),
        failure,
        active_version: active.and(s(wrapper, "version_info")),
        active_last_updated: active.and(s(wrapper, "last_updated")),
        path: path.to_string(),
    })
}
