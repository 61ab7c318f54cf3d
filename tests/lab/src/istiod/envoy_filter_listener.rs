//! EnvoyFilter patches on listeners, following istio/istio
//! `pilot/pkg/networking/core/envoyfilter/listener_patch.go` (1.10.0 to
//! 1.31) function by function: `patchListeners` (REMOVE/MERGE per
//! listener, then ADD), `patchFilterChains` / `patchFilterChain`
//! (REMOVE/MERGE, transport socket merge, ADD), `patchNetworkFilters` /
//! `patchNetworkFilter` (ADD, INSERT_FIRST/BEFORE/AFTER, REPLACE, REMOVE,
//! MERGE), `patchHTTPFilters` / `mergeHTTPFilter` (the same inside an
//! HTTP connection manager), and the matchers `listenerMatch`,
//! `filterChainMatch`, `networkFilterMatch`, `httpFilterMatch`.
//!
//! Patch contexts (`listener_builder.go` `patchListeners`): a sidecar's
//! `virtualInbound` is SIDECAR_INBOUND and its other listeners
//! SIDECAR_OUTBOUND; a LISTENER ADD lands with the outbound listeners
//! (context SIDECAR_OUTBOUND or ANY) or the bound inbound ones
//! (SIDECAR_INBOUND); a gateway's listeners are GATEWAY (ADD with GATEWAY
//! or ANY).

use super::envoy_filter::{merge_any, merge_typed_config, proto_merge, Patch};
use serde_json::Value;
use std::collections::BTreeSet;

const HCM: &str = "envoy.filters.network.http_connection_manager";

fn is_virtual(l: &Value) -> bool {
    l["name"] == "virtualInbound" || l["name"] == "virtualOutbound"
}

/// `listenerMatch`.
fn listener_match(l: &Value, p: &Patch) -> bool {
    let m = &p.listener;
    if !m.is_object() {
        return true;
    }
    if let Some(n) = m["name"].as_str().filter(|s| !s.is_empty()) {
        if l["name"] != n {
            return false;
        }
    }
    if p.apply_to != "LISTENER" && is_virtual(l) {
        return true;
    }
    match m["port_number"].as_u64() {
        Some(n) if n != 0 => l["address"]["socket_address"]["port_value"].as_u64() == Some(n),
        _ => true,
    }
}

/// `filterChainMatch` (the listener is already matched).
fn filter_chain_match(l: &Value, fc: &Value, p: &Patch) -> bool {
    let m = &p.listener;
    if !m.is_object() {
        return true;
    }
    let fcm = &fc["filter_chain_match"];
    let port = m["port_number"].as_u64().unwrap_or(0);
    if is_virtual(l) && port > 0 && fcm["destination_port"].as_u64().unwrap_or(0) != port {
        return false;
    }
    let c = &m["filter_chain"];
    if !c.is_object() {
        return true;
    }
    if let Some(n) = c["name"].as_str().filter(|s| !s.is_empty()) {
        if fc["name"] != n {
            return false;
        }
    }
    if let Some(sni) = c["sni"].as_str().filter(|s| !s.is_empty()) {
        let names = fcm["server_names"].as_array();
        if !names.is_some_and(|a| a.iter().any(|x| x == sni)) {
            return false;
        }
    }
    if let Some(t) = c["transport_protocol"].as_str().filter(|s| !s.is_empty()) {
        if fcm["transport_protocol"] != t {
            return false;
        }
    }
    if let Some(aps) = c["application_protocols"]
        .as_str()
        .filter(|s| !s.is_empty())
    {
        let have = fcm["application_protocols"].as_array();
        for ap in aps.split(',') {
            if !have.is_some_and(|a| a.iter().any(|x| x == ap)) {
                return false;
            }
        }
    }
    match c["destination_port"].as_u64() {
        Some(n) if n > 0 => fcm["destination_port"].as_u64() == Some(n),
        _ => true,
    }
}

/// `match.listener.filter_chain.filter` (Null when absent).
fn filter_match_spec(p: &Patch) -> &Value {
    &p.listener["filter_chain"]["filter"]
}

fn has_network_filter_match(p: &Patch) -> bool {
    filter_match_spec(p).is_object()
}

fn network_filter_match(f: &Value, p: &Patch) -> bool {
    !has_network_filter_match(p) || filter_match_spec(p)["name"] == f["name"]
}

fn has_http_filter_match(p: &Patch) -> bool {
    has_network_filter_match(p) && filter_match_spec(p)["sub_filter"].is_object()
}

fn http_filter_match(f: &Value, p: &Patch) -> bool {
    !has_http_filter_match(p) || filter_match_spec(p)["sub_filter"]["name"] == f["name"]
}

/// The list operations shared by network and HTTP filters. `matcher` says
/// whether an element is the one the patch names; `has_match` whether the
/// patch names one at all. Returns whether the list changed.
fn list_op(
    list: &mut Vec<Value>,
    p: &Patch,
    has_match: bool,
    matcher: &dyn Fn(&Value) -> bool,
) -> bool {
    let value = p.value.clone();
    match p.operation.as_str() {
        "ADD" => list.push(value),
        "INSERT_FIRST" => list.insert(0, value),
        "INSERT_AFTER" | "INSERT_BEFORE" if !has_match => {
            // Without a filter to match: AFTER is an ADD, BEFORE an insert at the start.
            if p.operation == "INSERT_AFTER" {
                list.push(value)
            } else {
                list.insert(0, value)
            }
        }
        "INSERT_AFTER" | "INSERT_BEFORE" => {
            let Some(i) = list.iter().position(matcher) else {
                return false;
            };
            let at = if p.operation == "INSERT_AFTER" {
                i + 1
            } else {
                i
            };
            list.insert(at, value);
        }
        "REPLACE" if has_match => {
            let Some(i) = list.iter().position(matcher) else {
                return false;
            };
            list[i] = value;
        }
        "REMOVE" if has_match => {
            let before = list.len();
            list.retain(|f| !matcher(f));
            return list.len() != before;
        }
        _ => return false,
    }
    true
}

/// MERGE of a network or HTTP filter (`patchNetworkFilter`, `mergeHTTPFilter`):
/// a filter without `typed_config` is skipped; the patch may rename it.
fn merge_filter(f: &mut Value, p: &Patch) -> bool {
    if !f["typed_config"].is_object() {
        return false;
    }
    if let Some(n) = p.value["name"].as_str().filter(|s| !s.is_empty()) {
        f["name"] = Value::String(n.to_string());
    }
    if let Some(tc) = p.value.get("typed_config").filter(|t| t.is_object()) {
        merge_any(&mut f["typed_config"], tc);
    }
    true
}

struct Walk<'a> {
    pctx: &'static str,
    patches: &'a [Patch],
    applied: &'a mut BTreeSet<String>,
}

impl<'a> Walk<'a> {
    /// This context's patches of one kind, in order.
    fn of(&self, apply_to: &str) -> Vec<&'a Patch> {
        let patches: &'a [Patch] = self.patches;
        patches
            .iter()
            .filter(|p| p.apply_to == apply_to && p.context_matches(self.pctx))
            .collect()
    }

    /// `patchListener`: false when the listener is removed.
    fn listener(&mut self, l: &mut Value) -> bool {
        for p in self.of("LISTENER") {
            if !listener_match(l, p) {
                continue;
            }
            if p.operation == "REMOVE" {
                self.applied.insert(p.filter.clone());
                return false;
            }
            if p.is_merge() {
                self.applied.insert(p.filter.clone());
                proto_merge(l, &p.value, p.replace_lists());
            }
        }
        self.filter_chains(l);
        true
    }

    /// `patchFilterChains`.
    fn filter_chains(&mut self, l: &mut Value) {
        let snapshot = l.clone();
        if let Some(chains) = l["filter_chains"].as_array_mut() {
            for fc in chains.iter_mut().filter(|fc| !fc["filters"].is_null()) {
                self.filter_chain(&snapshot, fc);
            }
        }
        if l["default_filter_chain"]["filters"].is_array() {
            let mut d = l["default_filter_chain"].take();
            self.filter_chain(&snapshot, &mut d);
            if !d["filters"].is_null() {
                l["default_filter_chain"] = d;
            } else if let Some(m) = l.as_object_mut() {
                m.remove("default_filter_chain");
            }
        }
        for p in self.of("FILTER_CHAIN") {
            if p.operation != "ADD" || !listener_match(&snapshot, p) {
                continue;
            }
            self.applied.insert(p.filter.clone());
            if !l["filter_chains"].is_array() {
                l["filter_chains"] = Value::Array(Vec::new());
            }
            if let Some(a) = l["filter_chains"].as_array_mut() {
                a.push(p.value.clone());
            }
        }
        if let Some(chains) = l["filter_chains"].as_array_mut() {
            chains.retain(|fc| !fc["filters"].is_null());
        }
    }

    /// `patchFilterChain`.
    fn filter_chain(&mut self, l: &Value, fc: &mut Value) {
        for p in self.of("FILTER_CHAIN") {
            if !listener_match(l, p) || !filter_chain_match(l, fc, p) {
                continue;
            }
            if p.operation == "REMOVE" {
                self.applied.insert(p.filter.clone());
                fc["filters"] = Value::Null;
                return;
            }
            if p.is_merge() {
                self.applied.insert(p.filter.clone());
                // `mergeTransportSocketListener`: a socket of the same name merges its config.
                let pts = &p.value["transport_socket"];
                if pts.is_object()
                    && fc["transport_socket"].is_object()
                    && fc["transport_socket"]["name"] == pts["name"]
                {
                    merge_typed_config(&mut fc["transport_socket"], pts);
                } else {
                    proto_merge(fc, &p.value, p.replace_lists());
                }
            }
        }
        self.network_filters(l, fc);
    }

    /// `patchNetworkFilters` + `patchNetworkFilter`.
    fn network_filters(&mut self, l: &Value, fc: &mut Value) {
        let chain_matches = |p: &&Patch| listener_match(l, p) && filter_chain_match(l, fc, p);
        let ps: Vec<&Patch> = self
            .of("NETWORK_FILTER")
            .into_iter()
            .filter(chain_matches)
            .collect();
        let hps: Vec<&Patch> = self
            .of("HTTP_FILTER")
            .into_iter()
            .filter(chain_matches)
            .collect();
        let Some(filters) = fc["filters"].as_array_mut() else {
            return;
        };
        for p in &ps {
            let m = |f: &Value| network_filter_match(f, p);
            if list_op(filters, p, has_network_filter_match(p), &m) {
                self.applied.insert(p.filter.clone());
            }
        }
        for f in filters.iter_mut() {
            for p in ps.iter().filter(|p| p.operation == "MERGE") {
                if network_filter_match(f, p) && merge_filter(f, p) {
                    self.applied.insert(p.filter.clone());
                }
            }
            if f["name"] == HCM && f["typed_config"].is_object() {
                self.http_filters(&hps, f);
            }
        }
    }

    /// `patchHTTPFilters` + `mergeHTTPFilter` inside one HCM.
    fn http_filters(&mut self, hps: &[&Patch], hcm: &mut Value) {
        let ps: Vec<&Patch> = hps
            .iter()
            .copied()
            .filter(|p| network_filter_match(hcm, p))
            .collect();
        if ps.is_empty() {
            return;
        }
        let tc = &mut hcm["typed_config"];
        if !tc["http_filters"].is_array() {
            tc["http_filters"] = Value::Array(Vec::new());
        }
        let Some(list) = tc["http_filters"].as_array_mut() else {
            return;
        };
        for p in &ps {
            let m = |h: &Value| http_filter_match(h, p);
            if list_op(list, p, has_http_filter_match(p), &m) {
                self.applied.insert(p.filter.clone());
            }
        }
        for h in list.iter_mut() {
            for p in ps.iter().filter(|p| p.operation == "MERGE") {
                if http_filter_match(h, p) && merge_filter(h, p) {
                    self.applied.insert(p.filter.clone());
                }
            }
        }
    }
}

/// Patch a proxy's listeners in place (module doc).
pub fn patch_listeners(
    router: bool,
    patches: &[Patch],
    listeners: &mut Vec<Value>,
    applied: &mut BTreeSet<String>,
) {
    let relevant = ["LISTENER", "FILTER_CHAIN", "NETWORK_FILTER", "HTTP_FILTER"];
    if !patches
        .iter()
        .any(|p| relevant.contains(&p.apply_to.as_str()))
    {
        return;
    }
    listeners.retain_mut(|l| {
        let pctx = if router {
            "GATEWAY"
        } else if l["traffic_direction"] == "INBOUND" {
            "SIDECAR_INBOUND"
        } else {
            "SIDECAR_OUTBOUND"
        };
        Walk {
            pctx,
            patches,
            applied,
        }
        .listener(l)
    });
    let add_contexts: &[&str] = if router {
        &["GATEWAY"]
    } else {
        &["SIDECAR_OUTBOUND", "SIDECAR_INBOUND"]
    };
    for pctx in add_contexts {
        for p in patches
            .iter()
            .filter(|p| p.apply_to == "LISTENER" && p.operation == "ADD")
        {
            if p.context == "ANY" && *pctx != "SIDECAR_OUTBOUND" && *pctx != "GATEWAY" {
                continue;
            }
            if p.context_matches(pctx) {
                applied.insert(p.filter.clone());
                let mut l = p.value.clone();
                if l.get("@type").is_none() {
                    l["@type"] = Value::String(super::xds::TYPE_LISTENER.into());
                }
                listeners.push(l);
            }
        }
    }
}
