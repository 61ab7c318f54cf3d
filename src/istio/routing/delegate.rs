//! Delegate VirtualServices: a root's `http[i].delegate` replaced by the
//! delegate's routes, each merged with the root route — as istiod does it
//! before anything else looks at VirtualServices.
//!
//! Place in the flow: a pure helper (istio/routing), run once by
//! [`super::query::Routing::new`]; every later question sees merged roots only.
//!
//! Sources (istio/istio): `pilot/pkg/model/virtualservice.go`
//! `mergeVirtualServicesIfNeeded` (1.6–1.29; `virtualservice_controller.go`
//! `mergeVirtualServices` from 1.30, same rules), `mergeHTTPRoutes`,
//! `mergeHTTPRoute`, `mergeHTTPMatchRequests`, `mergeHTTPMatchRequest`,
//! `hasConflict`, `stringMatchConflict`; `pilot/pkg/features/pilot.go`
//! `PILOT_ENABLE_VIRTUAL_SERVICE_DELEGATE` (default false in 1.6–1.7, true
//! from 1.8).
//!
//! Rules: a VS without hosts is a delegate and never applies on its own. A
//! delegate reference whose VS does not exist (or has hosts), or is not
//! exported to the root's namespace, drops only that root route. A delegate
//! route whose matches conflict with the root's is dropped. Until 1.10 the
//! delegate's namespace had to be written; from 1.11 it defaults to the
//! root's. In 1.6–1.7 (feature off) roots and delegates are both ignored; we
//! assume the same before 1.6, where the field did not exist.

use std::collections::BTreeMap;

use super::virtual_service::{HttpMatch, HttpRoute, RouteOrigin, StringMatch, VirtualService};
use super::RoutingOptions;

/// What the merge did to a root VirtualService's routes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DelegateNote {
    /// No delegate VS `delegate` (`ns/name`; a VS with hosts is not a delegate):
    /// root route `route` is dropped.
    NotFound {
        root: String,
        route: usize,
        delegate: String,
    },
    /// The delegate is not exported to the root's namespace: the route is dropped.
    NotExported {
        root: String,
        route: usize,
        delegate: String,
        export_to: Vec<String>,
    },
    /// Istio 1.8–1.10 needed `delegate.namespace`: the route is dropped.
    NamespaceRequired {
        root: String,
        route: usize,
        name: String,
    },
    /// Delegate route `delegate_route` conflicts with the root's matches: dropped.
    MatchConflict {
        root: String,
        route: usize,
        delegate: String,
        delegate_route: usize,
    },
    /// Delegation is off in this release: the root VS is ignored entirely.
    DelegationDisabled { root: String },
}

/// VirtualServices after the merge.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Merged {
    /// Every VS with hosts (roots merged), oldest first (creation time, name, namespace).
    pub virtual_services: Vec<VirtualService>,
    /// The delegates (no hosts), never applied on their own.
    pub delegates: Vec<VirtualService>,
    pub notes: Vec<DelegateNote>,
}

/// Merge delegates into their roots (see the module docs for the rules).
pub fn merge(all: Vec<VirtualService>, opts: &RoutingOptions) -> Merged {
    let (delegates, mut with_hosts): (Vec<_>, Vec<_>) =
        all.into_iter().partition(VirtualService::is_delegate);
    let by_key: BTreeMap<String, &VirtualService> =
        delegates.iter().map(|d| (d.key(), d)).collect();
    let mut notes = Vec::new();
    let enabled = opts.at_least(1, 8);
    with_hosts.retain(|vs| {
        if vs.is_root() && !enabled {
            notes.push(DelegateNote::DelegationDisabled { root: vs.key() });
            return false;
        }
        true
    });
    for vs in with_hosts.iter_mut().filter(|v| v.is_root()) {
        let root_key = vs.key();
        let root_ns = vs.meta.namespace.clone();
        let mut out = Vec::new();
        for route in std::mem::take(&mut vs.http) {
            let Some((name, ns)) = route.delegate.clone() else {
                out.push(route);
                continue;
            };
            let ns = if ns.is_empty() {
                if !opts.at_least(1, 11) {
                    notes.push(DelegateNote::NamespaceRequired {
                        root: root_key.clone(),
                        route: route.index,
                        name,
                    });
                    continue;
                }
                root_ns.clone()
            } else {
                ns
            };
            let key = format!("{ns}/{name}");
            let Some(d) = by_key.get(&key) else {
                notes.push(DelegateNote::NotFound {
                    root: root_key.clone(),
                    route: route.index,
                    delegate: key,
                });
                continue;
            };
            if !delegate_visible(d, &root_ns, opts) {
                notes.push(DelegateNote::NotExported {
                    root: root_key.clone(),
                    route: route.index,
                    delegate: key,
                    export_to: d.export_to.clone(),
                });
                continue;
            }
            for (j, sub) in d.http.iter().enumerate() {
                match merge_route(&route, sub, &key, j) {
                    Some(m) => out.push(m),
                    None => notes.push(DelegateNote::MatchConflict {
                        root: root_key.clone(),
                        route: route.index,
                        delegate: key.clone(),
                        delegate_route: j,
                    }),
                }
            }
        }
        vs.http = out;
    }
    with_hosts.sort_by(|a, b| a.meta.age_order(&b.meta));
    Merged {
        virtual_services: with_hosts,
        delegates,
        notes,
    }
}

/// The delegate's exportTo (`.` = its own namespace; empty = the mesh
/// default) must contain `*` or the root's namespace.
fn delegate_visible(d: &VirtualService, root_ns: &str, opts: &RoutingOptions) -> bool {
    let list = if d.export_to.is_empty() {
        &opts.default_vs_export_to
    } else {
        &d.export_to
    };
    if list.is_empty() {
        return true;
    }
    list.iter()
        .any(|e| e == "*" || e == root_ns || (e == "." && d.meta.namespace == root_ns))
}

/// `mergeHTTPRoute`: `None` when the delegate route's matches conflict.
fn merge_route(root: &HttpRoute, sub: &HttpRoute, delegate: &str, j: usize) -> Option<HttpRoute> {
    let matches = merge_matches(&root.matches, &sub.matches)?;
    let name = match (&root.name, &sub.name) {
        (r, None) => r.clone(),
        (Some(r), Some(s)) => Some(format!("{r}-{s}")),
        (None, Some(s)) => Some(s.clone()),
    };
    let mut out = sub.clone();
    out.index = root.index;
    out.origin = RouteOrigin::Delegate {
        delegate: delegate.to_string(),
        root_index: root.index,
        delegate_index: j,
    };
    out.name = name;
    out.matches = matches;
    out.delegate = None;
    if out.direct_response.is_none() {
        out.direct_response = root.direct_response;
    }
    if out.fault.is_none() {
        out.fault = root.fault.clone();
    }
    if out.mirror.is_none() {
        out.mirror = root.mirror.clone();
    }
    if out.mirrors.is_empty() {
        out.mirrors = root.mirrors.clone();
    }
    Some(out)
}

/// `mergeHTTPMatchRequests`: each delegate match must fit at least one root
/// match; every fitting pair yields a merged match.
fn merge_matches(root: &[HttpMatch], sub: &[HttpMatch]) -> Option<Vec<HttpMatch>> {
    if root.is_empty() {
        return Some(sub.to_vec());
    }
    if sub.is_empty() {
        return Some(root.to_vec());
    }
    let mut out = Vec::new();
    for s in sub {
        let mut found = false;
        for r in root {
            if has_conflict(r, s) {
                continue;
            }
            out.push(merge_match(r, s));
            found = true;
        }
        if !found {
            return None;
        }
    }
    if out.is_empty() {
        None
    } else {
        Some(out)
    }
}

/// `mergeHTTPMatchRequest`: the delegate's fields, the root's where unset;
/// maps merged with the delegate winning.
fn merge_match(root: &HttpMatch, sub: &HttpMatch) -> HttpMatch {
    let mut out = sub.clone();
    out.name = match (&root.name, &sub.name) {
        (r, None) => r.clone(),
        (Some(r), Some(s)) => Some(format!("{r}-{s}")),
        (None, Some(s)) => Some(s.clone()),
    };
    out.uri = sub.uri.clone().or_else(|| root.uri.clone());
    out.scheme = sub.scheme.clone().or_else(|| root.scheme.clone());
    out.method = sub.method.clone().or_else(|| root.method.clone());
    out.authority = sub.authority.clone().or_else(|| root.authority.clone());
    let merge_map = |r: &BTreeMap<String, StringMatch>, s: &BTreeMap<String, StringMatch>| {
        let mut m = r.clone();
        m.extend(s.iter().map(|(k, v)| (k.clone(), v.clone())));
        m
    };
    out.headers = merge_map(&root.headers, &sub.headers);
    out.without_headers = merge_map(&root.without_headers, &sub.without_headers);
    out.query_params = merge_map(&root.query_params, &sub.query_params);
    out.port = sub.port.or(root.port);
    let mut labels = root.source_labels.clone();
    labels.extend(sub.source_labels.clone());
    out.source_labels = labels;
    out.source_namespace = sub
        .source_namespace
        .clone()
        .or_else(|| root.source_namespace.clone());
    if out.gateways.is_empty() {
        out.gateways = root.gateways.clone();
    }
    out
}

/// `hasConflict`: the delegate match must be a narrowing of the root's.
fn has_conflict(root: &HttpMatch, leaf: &HttpMatch) -> bool {
    let pairs = [
        (&root.uri, &leaf.uri),
        (&root.scheme, &leaf.scheme),
        (&root.method, &leaf.method),
        (&root.authority, &leaf.authority),
    ];
    if pairs
        .iter()
        .any(|(r, l)| string_match_conflict(r.as_ref(), l.as_ref()))
    {
        return true;
    }
    let map_conflict = |r: &BTreeMap<String, StringMatch>, l: &BTreeMap<String, StringMatch>| {
        l.iter()
            .any(|(k, lv)| string_match_conflict(r.get(k), Some(lv)))
    };
    if map_conflict(&root.headers, &leaf.headers)
        || map_conflict(&root.without_headers, &leaf.without_headers)
        || map_conflict(&root.query_params, &leaf.query_params)
    {
        return true;
    }
    if root.ignore_uri_case != leaf.ignore_uri_case {
        return true;
    }
    if let (Some(r), Some(l)) = (root.port, leaf.port) {
        if r != l {
            return true;
        }
    }
    if let Some(rns) = &root.source_namespace {
        if leaf.source_namespace.as_ref() != Some(rns) {
            return true;
        }
    }
    if leaf
        .source_labels
        .iter()
        .any(|(k, v)| root.source_labels.get(k).is_some_and(|rv| rv != v))
    {
        return true;
    }
    if !root.gateways.is_empty() && !leaf.gateways.is_empty() {
        if root.gateways.len() < leaf.gateways.len() {
            return true;
        }
        if leaf.gateways.iter().any(|g| !root.gateways.contains(g)) {
            return true;
        }
    }
    false
}

/// `stringMatchConflict`: no conflict when either side is unset; a regex on
/// either side conflicts with anything; an exact root needs the same exact
/// leaf; a prefix root needs a leaf (prefix or exact) under it.
fn string_match_conflict(root: Option<&StringMatch>, leaf: Option<&StringMatch>) -> bool {
    let (Some(root), Some(leaf)) = (root, leaf) else {
        return false;
    };
    match (root, leaf) {
        (StringMatch::Regex(_), _) | (_, StringMatch::Regex(_)) => true,
        (StringMatch::Exact(r), StringMatch::Exact(l)) => r != l,
        (StringMatch::Exact(_), _) => true,
        (StringMatch::Prefix(p), StringMatch::Prefix(l) | StringMatch::Exact(l)) => {
            !l.starts_with(p.as_str())
        }
        _ => true,
    }
}
