//! `Gateway` objects (networking.istio.io): servers, the gateway pods they
//! select, the hosts a VirtualService may bind on them, and how Envoy picks
//! a virtual host for a request's authority.
//!
//! Place in the flow: a pure helper (istio/routing) for
//! [`super::query::Routing::gateway_routes`].
//!
//! Sources (istio/istio): `pilot/pkg/model/push_context.go` `mergeGateways`
//! (no selector → every gateway workload; else the selector must be a subset
//! of the pod's labels; all namespaces unless `PILOT_SCOPE_GATEWAY_TO_NAMESPACE`);
//! `pilot/pkg/model/gateway.go` `sanitizeServerHostNamespace` (`./host` →
//! `<gateway ns>/host`, `*/host` → `host`, `*/*` → `*`);
//! `pkg/config/host/names.go` `NamesForNamespace` (a `ns/host` server host
//! counts only for VirtualServices of that namespace) and `Intersection` (the
//! more specific of two matching hosts); `pilot/pkg/networking/core/gateway.go`
//! `buildGatewayHTTPRouteConfig` (virtual hosts per intersecting host; no
//! virtual host at all → a `blackhole` one with no routes). Envoy:
//! `source/common/router/config_impl.cc` `RouteMatcher::findVirtualHost`
//! (exact domain, then the longest `*.suffix`, then `prefix*`, then `*`;
//! no match → `404 NR route_not_found`).

use std::collections::BTreeMap;

use serde_json::Value;

use super::super::host;
use super::super::object::{labels_match, Meta, ObjectError, ObjectRef, Reader};
use super::registry::Protocol;

/// A parsed Gateway.
#[derive(Debug, Clone, PartialEq)]
pub struct Gateway {
    pub meta: Meta,
    /// `spec.selector`; `None` or empty = every gateway workload.
    pub selector: Option<BTreeMap<String, String>>,
    pub servers: Vec<Server>,
}

/// One `spec.servers[i]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Server {
    pub index: usize,
    pub port: u32,
    pub port_name: Option<String>,
    pub protocol: Protocol,
    /// Hosts after `sanitizeServerHostNamespace` (`ns/host` or `host`), lowercased.
    pub hosts: Vec<String>,
    /// `tls.mode`, when the server has `tls`.
    pub tls_mode: Option<String>,
    pub https_redirect: bool,
}

impl Gateway {
    /// Parse a raw Gateway.
    pub fn from_value(v: &Value) -> Result<Gateway, ObjectError> {
        let meta = Meta::from_value(v)?;
        let id = meta.id();
        let r = Reader::new(&id, v);
        let selector = r.str_map("spec.selector")?;
        let mut servers = Vec::new();
        for (i, s) in r.opt_array("spec.servers")?.iter().enumerate() {
            let rel = format!("spec.servers[{i}]");
            if !s.is_object() {
                return Err(r.type_err(&rel, "an object", s));
            }
            let owned = r.at(s, &rel);
            let sr = owned.reader();
            let port = sr
                .opt_u32("port.number")?
                .ok_or_else(|| sr.missing("port.number"))?;
            let hosts = sanitize_hosts(&sr.str_list("hosts")?, &meta.namespace);
            servers.push(Server {
                index: i,
                port,
                port_name: sr.opt_str("port.name")?,
                protocol: Protocol::parse(&sr.opt_str("port.protocol")?.unwrap_or_default()),
                hosts,
                tls_mode: match sr.opt_object("tls")? {
                    Some(_) => Some(sr.opt_str("tls.mode")?.unwrap_or_else(|| "SIMPLE".into())),
                    None => None,
                },
                https_redirect: sr.opt_bool("tls.httpsRedirect")?.unwrap_or(false),
            });
        }
        Ok(Gateway {
            meta,
            selector: if selector.is_empty() {
                None
            } else {
                Some(selector)
            },
            servers,
        })
    }

    pub fn object_ref(&self) -> ObjectRef {
        self.meta.object_ref()
    }

    /// `ns/name`, the form VirtualServices bind to.
    pub fn key(&self) -> String {
        self.meta.key()
    }

    /// Does it apply to a gateway pod with these labels?
    pub fn selects(&self, pod_labels: &BTreeMap<String, String>) -> bool {
        self.selector
            .as_ref()
            .is_none_or(|s| labels_match(s, pod_labels))
    }
}

/// `sanitizeServerHostNamespace`.
fn sanitize_hosts(hosts: &[String], gw_ns: &str) -> Vec<String> {
    let mut out = Vec::new();
    for h in hosts {
        let h = h.to_ascii_lowercase();
        match h.split_once('/') {
            Some((".", name)) => out.push(format!("{gw_ns}/{name}")),
            Some(("*", "*")) => return vec!["*".to_string()],
            Some(("*", name)) => out.push(name.to_string()),
            _ => out.push(h),
        }
    }
    out
}

/// `NamesForNamespace`: the server's hosts that VirtualServices of `vs_ns`
/// may use (a `ns/host` entry counts only for namespace `ns`).
pub fn hosts_for_namespace(server: &Server, vs_ns: &str) -> Vec<String> {
    server
        .hosts
        .iter()
        .filter_map(|h| match h.split_once('/') {
            Some((ns, name)) if ns == vs_ns || ns == "*" => Some(name.to_string()),
            Some(_) => None,
            None => Some(h.clone()),
        })
        .collect()
}

/// `Names.Intersection`: for every matching pair, the more specific host
/// (a host that is a subset of the other), without duplicates.
pub fn intersect(server_hosts: &[String], vs_hosts: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for s in server_hosts {
        for v in vs_hosts {
            let pick = if host::matches(v, s) {
                Some(s)
            } else if host::matches(s, v) {
                Some(v)
            } else {
                None
            };
            if let Some(p) = pick {
                if !out.contains(p) {
                    out.push(p.clone());
                }
            }
        }
    }
    out
}

/// Envoy's virtual-host choice for a request authority (port stripped):
/// exact, then the longest `*.suffix`, then the longest `prefix*`, then `*`.
pub fn envoy_domain_match<'a>(domains: &'a [String], authority: &str) -> Option<&'a str> {
    let a = authority.to_ascii_lowercase();
    if let Some(d) = domains.iter().find(|d| **d == a) {
        return Some(d);
    }
    let suffix = domains
        .iter()
        .filter(|d| {
            d.len() > 1 && d.starts_with('*') && a.ends_with(&d[1..]) && a.len() > d.len() - 1
        })
        .max_by_key(|d| d.len());
    if let Some(d) = suffix {
        return Some(d);
    }
    let prefix = domains
        .iter()
        .filter(|d| d.len() > 1 && d.ends_with('*') && a.starts_with(&d[..d.len() - 1]))
        .max_by_key(|d| d.len());
    if let Some(d) = prefix {
        return Some(d);
    }
    domains.iter().find(|d| *d == "*").map(String::as_str)
}
