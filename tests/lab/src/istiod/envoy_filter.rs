//! EnvoyFilter (`networking.istio.io/v1alpha3`): which filters apply to a
//! proxy, in which order, and the CLUSTER patches. Listener patches
//! (LISTENER, FILTER_CHAIN, NETWORK_FILTER, HTTP_FILTER) are in
//! `envoy_filter_listener.rs`; the proto-merge semantics in
//! [`proto_merge`] / [`merge_any`].
//!
//! Read from istio/istio (1.10.0 to 1.31):
//! - `pilot/pkg/model/push_context.go` `EnvoyFilters`: filters of the root
//!   namespace (mesh-wide) plus the proxy's namespace, kept when their
//!   `workloadSelector.labels` are a subset of the proxy's labels (no
//!   selector: every proxy of that namespace, or of the mesh for the root
//!   namespace; `policyattachment.go`: a filter with `targetRefs` never
//!   applies to a sidecar); ordered by `priority`, then root namespace
//!   first, then creation time, then `name.namespace`. Patches whose
//!   `match.proxy.proxyVersion` regex does not match the proxy's
//!   ISTIO_VERSION are dropped (`proxyMatch`).
//! - `pilot/pkg/networking/core/envoyfilter/cluster_patch.go`
//!   `ApplyClusterMerge`, `InsertedClusters`, `clusterMatch`: REMOVE drops a
//!   matching cluster, MERGE merges (a `transport_socket` in the patch
//!   merges into the cluster's socket of the same name, or into the
//!   matching `transport_socket_matches` entry, and the rest of the patch is
//!   then ignored, as in `mergeTransportSocketCluster`), ADD appends (an
//!   ADD with context ANY only for SIDECAR_OUTBOUND and GATEWAY).
//!   `match.cluster`: `name` exactly, else the parts of
//!   `direction|port|subset|host` (`service` is the host; for inbound
//!   clusters the Services of the port), `portNumber`, `subset`.
//! - Contexts: inbound clusters and `virtualInbound` are SIDECAR_INBOUND,
//!   every other sidecar resource SIDECAR_OUTBOUND, gateway resources GATEWAY.
//! - `pkg/proto/merge` (MERGE): message fields merge recursively, repeated
//!   fields append (MERGE_AND_REPLACE_LIST: replace), scalars and `Any`
//!   values are replaced; `util.MergeAnyWithAny` (filter MERGE): two
//!   `typed_config`s of the same `@type` merge field by field, of different
//!   types the existing one is kept.
//!
//! Patch values are written as Istio takes them (proto JSON, camelCase or
//! snake_case); keys are normalised to the snake_case Envoy's config dump
//! shows, except inside map-valued fields (`filter_metadata`,
//! `typed_per_filter_config`, …) and `TypedStruct` values.
//!
//! Not modelled (LAB DIFFERENCES): LISTENER_FILTER, ROUTE_CONFIGURATION,
//! VIRTUAL_HOST, HTTP_ROUTE, EXTENSION_CONFIG and BOOTSTRAP patches are
//! ignored; no validation webhook rejects a malformed EnvoyFilter (Envoy
//! does, by NACK); `match.proxy.metadata` is not matched.

use super::world::{self, labels, namespace, string_map};
use super::Ctx;
use serde_json::{Map, Value};
use std::collections::BTreeSet;

/// One config patch of one EnvoyFilter, ready to apply.
#[derive(Debug, Clone)]
pub struct Patch {
    /// `<namespace>/<name>` of its EnvoyFilter.
    pub filter: String,
    pub apply_to: String,
    /// `ANY`, `SIDECAR_INBOUND`, `SIDECAR_OUTBOUND`, `GATEWAY`.
    pub context: String,
    /// `match.listener` (Null when absent), keys normalised.
    pub listener: Value,
    /// `match.cluster` (Null when absent), keys normalised.
    pub cluster: Value,
    pub operation: String,
    /// `patch.value`, keys normalised to snake_case.
    pub value: Value,
}

impl Patch {
    pub fn context_matches(&self, pctx: &str) -> bool {
        self.context == "ANY" || self.context == pctx
    }

    pub fn is_merge(&self) -> bool {
        self.operation == "MERGE" || self.operation == "MERGE_AND_REPLACE_LIST"
    }

    pub fn replace_lists(&self) -> bool {
        self.operation == "MERGE_AND_REPLACE_LIST"
    }
}

fn root_first_key(o: &Value, root: &str) -> (i64, bool, String, String) {
    (
        o["spec"]["priority"].as_i64().unwrap_or(0),
        namespace(o) != root,
        world::created(o).to_string(),
        format!("{}.{}", world::name(o), namespace(o)),
    )
}

/// The proxy's version as pilot-agent reports it (`ISTIO_VERSION`).
fn proxy_version(ctx: &Ctx) -> String {
    format!("{}.{}.0", ctx.version.major, ctx.version.minor)
}

fn version_matches(pattern: &str, version: &str) -> bool {
    if pattern.is_empty() {
        return true;
    }
    regex::Regex::new(pattern).is_ok_and(|re| re.is_match(version))
}

/// Every patch that applies to this proxy, in Istio's order.
pub fn patches(ctx: &Ctx) -> Vec<Patch> {
    let root = ctx.mesh.root_namespace.as_str();
    let proxy_labels = labels(ctx.pod);
    let mut filters: Vec<&Value> = ctx
        .world
        .of_kind("networking.istio.io", "EnvoyFilter")
        .filter(|f| namespace(f) == root || namespace(f) == ctx.ns)
        .filter(|f| {
            f["spec"]["targetRefs"]
                .as_array()
                .is_none_or(|a| a.is_empty())
        })
        .filter(|f| {
            let sel = string_map(&f["spec"]["workloadSelector"]["labels"]);
            world::selects(&sel, &proxy_labels)
        })
        .collect();
    filters.sort_by_key(|f| root_first_key(f, root));
    let version = proxy_version(ctx);
    let mut out = Vec::new();
    for f in filters {
        let key = format!("{}/{}", namespace(f), world::name(f));
        for cp in f["spec"]["configPatches"].as_array().into_iter().flatten() {
            let Some(patch) = cp.get("patch").filter(|p| p.is_object()) else {
                continue;
            };
            let m = &cp["match"];
            if !version_matches(m["proxy"]["proxyVersion"].as_str().unwrap_or(""), &version) {
                continue;
            }
            out.push(Patch {
                filter: key.clone(),
                apply_to: cp["applyTo"].as_str().unwrap_or("INVALID").to_string(),
                context: m["context"].as_str().unwrap_or("ANY").to_string(),
                listener: normalize(&m["listener"]),
                cluster: normalize(&m["cluster"]),
                operation: patch["operation"].as_str().unwrap_or("INVALID").to_string(),
                value: normalize(&patch["value"]),
            });
        }
    }
    out
}

/// Apply every EnvoyFilter that selects this proxy to its clusters and
/// listeners. Returns `<ns>/<name>` of the filters that changed something.
pub fn apply(ctx: &Ctx, clusters: &mut Vec<Value>, listeners: &mut Vec<Value>) -> Vec<String> {
    let patches = patches(ctx);
    if patches.is_empty() {
        return Vec::new();
    }
    let router = super::gateway::is_router(ctx.pod);
    let mut applied = BTreeSet::new();
    patch_clusters(ctx, router, &patches, clusters, &mut applied);
    super::envoy_filter_listener::patch_listeners(router, &patches, listeners, &mut applied);
    applied.into_iter().collect()
}

fn cluster_context(ctx: &Ctx, router: bool, c: &Value) -> &'static str {
    let name = c["name"].as_str().unwrap_or("");
    if router {
        "GATEWAY"
    } else if name.starts_with("inbound|")
        || name == super::inbound_chains::passthrough_cluster(ctx.version)
    {
        "SIDECAR_INBOUND"
    } else {
        "SIDECAR_OUTBOUND"
    }
}

/// `clusterMatch`.
fn cluster_match(c: &Value, p: &Patch) -> bool {
    let m = &p.cluster;
    if !m.is_object() {
        return true;
    }
    let name = c["name"].as_str().unwrap_or("");
    if let Some(want) = m["name"].as_str().filter(|s| !s.is_empty()) {
        return want == name;
    }
    let parts: Vec<&str> = name.split('|').collect();
    let (direction, port, subset, host) = if parts.len() == 4 {
        (
            parts[0],
            parts[1].parse::<u64>().unwrap_or(0),
            parts[2],
            parts[3],
        )
    } else {
        ("", 0, "", "")
    };
    let mut hosts = vec![host.to_string()];
    if direction == "inbound" {
        let svcs = &c["metadata"]["filter_metadata"]["istio"]["services"];
        let inbound: Vec<String> = svcs
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| s["host"].as_str().map(str::to_string))
            .collect();
        if !inbound.is_empty() {
            hosts = inbound;
        }
    }
    if let Some(s) = m["subset"].as_str().filter(|s| !s.is_empty()) {
        if s != subset {
            return false;
        }
    }
    if let Some(s) = m["service"].as_str().filter(|s| !s.is_empty()) {
        if !hosts.iter().any(|h| h == s) {
            return false;
        }
    }
    match m["port_number"].as_u64() {
        Some(n) if n != 0 => n == port,
        _ => true,
    }
}

fn patch_clusters(
    ctx: &Ctx,
    router: bool,
    patches: &[Patch],
    clusters: &mut Vec<Value>,
    applied: &mut BTreeSet<String>,
) {
    let cps: Vec<&Patch> = patches.iter().filter(|p| p.apply_to == "CLUSTER").collect();
    if cps.is_empty() {
        return;
    }
    clusters.retain_mut(|c| {
        let pctx = cluster_context(ctx, router, c);
        for p in &cps {
            if !p.context_matches(pctx) || !cluster_match(c, p) {
                continue;
            }
            if p.operation == "REMOVE" {
                applied.insert(p.filter.clone());
                return false;
            }
            if p.is_merge() {
                applied.insert(p.filter.clone());
                if !merge_transport_socket_cluster(c, p) {
                    proto_merge(c, &p.value, p.replace_lists());
                }
            }
        }
        true
    });
    let contexts: &[&str] = if router {
        &["GATEWAY"]
    } else {
        &["SIDECAR_OUTBOUND", "SIDECAR_INBOUND"]
    };
    for pctx in contexts {
        for p in cps.iter().filter(|p| p.operation == "ADD") {
            if p.context == "ANY" && *pctx != "SIDECAR_OUTBOUND" && *pctx != "GATEWAY" {
                continue;
            }
            if p.context_matches(pctx) {
                applied.insert(p.filter.clone());
                let mut c = p.value.clone();
                if c.get("@type").is_none() {
                    c["@type"] = Value::String(super::xds::TYPE_CLUSTER.into());
                }
                clusters.push(c);
            }
        }
    }
}

/// `mergeTransportSocketCluster`: true when the patch's transport socket
/// was handled here (the rest of the patch is then not merged).
fn merge_transport_socket_cluster(c: &mut Value, p: &Patch) -> bool {
    let Some(pts) = p.value.get("transport_socket").filter(|t| t.is_object()) else {
        return false;
    };
    let pname = &pts["name"];
    if let Some(matches) = c
        .get_mut("transport_socket_matches")
        .and_then(Value::as_array_mut)
        .filter(|m| !m.is_empty())
    {
        if let Some(tsm) = matches
            .iter_mut()
            .find(|m| m["transport_socket"].is_object() && &m["transport_socket"]["name"] == pname)
        {
            merge_typed_config(&mut tsm["transport_socket"], pts);
        }
        // No socket of that name: dropped, as Istio does (both fields would be invalid).
        return true;
    }
    if c["transport_socket"].is_object() && &c["transport_socket"]["name"] == pname {
        merge_typed_config(&mut c["transport_socket"], pts);
    } else {
        c["transport_socket"] = pts.clone();
    }
    true
}

/// Merge `src.typed_config` into `dst.typed_config` (`MergeAnyWithAny`).
pub fn merge_typed_config(dst: &mut Value, src: &Value) {
    if let (Some(d), Some(s)) = (dst.get_mut("typed_config"), src.get("typed_config")) {
        merge_any(d, s);
    }
}

/// `util.MergeAnyWithAny` + merge: same `@type` → merged field by field
/// (true); different types → `dst` unchanged (false).
pub fn merge_any(dst: &mut Value, src: &Value) -> bool {
    if dst.get("@type") != src.get("@type") {
        return false;
    }
    if let (Some(d), Some(s)) = (dst.as_object_mut(), src.as_object()) {
        for (k, v) in s.iter().filter(|(k, _)| k.as_str() != "@type") {
            match d.get_mut(k) {
                Some(dv) => proto_merge(dv, v, false),
                None => {
                    d.insert(k.clone(), v.clone());
                }
            }
        }
    }
    true
}

/// `proto.Merge` on proto JSON (module doc).
pub fn proto_merge(dst: &mut Value, src: &Value, replace_lists: bool) {
    match (dst, src) {
        (Value::Object(d), Value::Object(s)) if !s.contains_key("@type") => {
            for (k, v) in s {
                match d.get_mut(k) {
                    Some(dv) => proto_merge(dv, v, replace_lists),
                    None => {
                        d.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (Value::Array(d), Value::Array(s)) if !replace_lists => d.extend(s.iter().cloned()),
        (d, s) => *d = s.clone(),
    }
}

/// Map fields whose values are messages (`Any`): keys kept, values normalised.
const ANY_MAP_FIELDS: &[&str] = &[
    "typed_filter_metadata",
    "typed_per_filter_config",
    "typed_extension_protocol_options",
];
/// Fields holding user data (`Struct` maps): kept as written.
const DATA_FIELDS: &[&str] = &["filter_metadata", "per_filter_config", "fields"];

fn snake(key: &str) -> String {
    if key.starts_with('@') || key.contains(['.', '-', '/', ':']) {
        return key.to_string();
    }
    let mut out = String::with_capacity(key.len() + 4);
    for ch in key.chars() {
        if ch.is_ascii_uppercase() {
            out.push('_');
            out.push(ch.to_ascii_lowercase());
        } else {
            out.push(ch);
        }
    }
    out
}

/// camelCase → snake_case keys (module doc).
pub fn normalize(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let typed_struct = m
                .get("@type")
                .and_then(Value::as_str)
                .is_some_and(|t| t.ends_with("TypedStruct"));
            let mut out = Map::new();
            for (k, val) in m {
                let key = snake(k);
                let new = if DATA_FIELDS.contains(&key.as_str()) || (typed_struct && key == "value")
                {
                    val.clone()
                } else if ANY_MAP_FIELDS.contains(&key.as_str()) {
                    match val {
                        Value::Object(inner) => Value::Object(
                            inner
                                .iter()
                                .map(|(ik, iv)| (ik.clone(), normalize(iv)))
                                .collect(),
                        ),
                        other => other.clone(),
                    }
                } else {
                    normalize(val)
                };
                out.insert(key, new);
            }
            Value::Object(out)
        }
        Value::Array(a) => Value::Array(a.iter().map(normalize).collect()),
        other => other.clone(),
    }
}
