//! `VirtualService` (networking.istio.io v1alpha3, v1beta1 and v1 share the
//! schema) as written and as istiod resolves it, and its exportTo tiers.
//!
//! Place in the flow: a pure helper (istio/routing); [`super::query::Routing`]
//! parses every VirtualService once, [`super::delegate`] merges delegates,
//! [`super::select`] decides what applies.
//!
//! Sources (istio/istio): `pilot/pkg/model/virtualservice.go`
//! (`resolveVirtualServiceShortnames`, 1.8–1.29; `ResolveVirtualServiceShortnames`
//! from 1.30): every host — top-level, route destination, mirror — is
//! resolved with `pilot/pkg/model/config.go` `ResolveShortnameToFQDN` in the
//! VirtualService's own namespace, and every gateway name with
//! `resolveGatewayName` (`name` → `<vs ns>/name`, `./name` → `<vs ns>/name`,
//! legacy `name.ns.svc.cluster.local` → `ns/name`, `mesh` kept). Same logic in
//! 1.1–1.7 inline in `push_context.go` `initVirtualServices`.
//! istio/api `networking/v1alpha3/virtual_service.proto` for the fields.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::super::host;
use super::super::object::{Meta, ObjectError, ObjectRef, Reader};
use super::RoutingOptions;

/// The pseudo-gateway that stands for every sidecar.
pub const MESH_GATEWAY: &str = "mesh";

/// A parsed VirtualService.
#[derive(Debug, Clone, PartialEq)]
pub struct VirtualService {
    pub meta: Meta,
    /// `spec.hosts` as written.
    pub hosts_written: Vec<String>,
    /// `spec.hosts` resolved (short names in the VS's namespace) and lowercased.
    pub hosts: Vec<String>,
    /// `spec.gateways` resolved to `mesh` or `ns/name`; empty = `[mesh]`.
    pub gateways: Vec<String>,
    /// `spec.exportTo` as written.
    pub export_to: Vec<String>,
    pub http: Vec<HttpRoute>,
    pub tcp: Vec<L4Route>,
    pub tls: Vec<L4Route>,
}

/// Where an HTTP route came from: the VS itself or a delegate merged into it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteOrigin {
    Own,
    /// Route `delegate_index` of delegate `delegate` (`ns/name`), merged into
    /// root route `root_index`.
    Delegate {
        delegate: String,
        root_index: usize,
        delegate_index: usize,
    },
}

/// One `spec.http[i]` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpRoute {
    /// Position in `spec.http` of the VS as written (for delegates: of the root).
    pub index: usize,
    pub name: Option<String>,
    pub origin: RouteOrigin,
    pub matches: Vec<HttpMatch>,
    pub route: Vec<RouteDestination>,
    pub redirect: bool,
    /// `directResponse.status`.
    pub direct_response: Option<u32>,
    /// `delegate: {name, namespace}` (namespace as written, may be empty).
    pub delegate: Option<(String, String)>,
    /// `mirror`.
    pub mirror: Option<Destination>,
    /// `mirrors[].destination`.
    pub mirrors: Vec<Destination>,
    pub fault: Option<Fault>,
}

/// `HTTPMatchRequest`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct HttpMatch {
    pub name: Option<String>,
    pub uri: Option<StringMatch>,
    pub scheme: Option<StringMatch>,
    pub method: Option<StringMatch>,
    pub authority: Option<StringMatch>,
    pub headers: BTreeMap<String, StringMatch>,
    pub without_headers: BTreeMap<String, StringMatch>,
    pub query_params: BTreeMap<String, StringMatch>,
    pub ignore_uri_case: bool,
    pub port: Option<u32>,
    pub source_labels: BTreeMap<String, String>,
    pub source_namespace: Option<String>,
    /// Resolved like `spec.gateways`.
    pub gateways: Vec<String>,
}

/// `StringMatch` (one of exact, prefix, regex).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StringMatch {
    Exact(String),
    Prefix(String),
    Regex(String),
    /// An empty or unknown match object (matches presence in Envoy's terms).
    Any,
}

/// A destination as written and resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    pub host_written: String,
    /// Resolved in the VS's namespace and lowercased.
    pub host: String,
    pub subset: Option<String>,
    pub port: Option<u32>,
}

/// `HTTPRouteDestination` / `RouteDestination`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteDestination {
    /// `None` when the entry has no `destination` (invalid, but seen in the wild).
    pub destination: Option<Destination>,
    /// `weight`; absent = 0 (proto default).
    pub weight: u32,
}

/// `HTTPFaultInjection`.
#[derive(Debug, Clone, PartialEq)]
pub struct Fault {
    pub abort: Option<Abort>,
    pub delay: bool,
}

/// `HTTPFaultInjection.Abort`.
#[derive(Debug, Clone, PartialEq)]
pub struct Abort {
    pub http_status: Option<u32>,
    pub grpc_status: Option<String>,
    /// `percentage.value` (0–100); `None` when not written.
    pub percent: Option<f64>,
}

/// A `tcp` or `tls` route.
#[derive(Debug, Clone, PartialEq)]
pub struct L4Route {
    pub index: usize,
    pub matches: Vec<L4Match>,
    pub route: Vec<RouteDestination>,
}

/// `L4MatchAttributes` / `TLSMatchAttributes`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct L4Match {
    pub port: Option<u32>,
    pub source_labels: BTreeMap<String, String>,
    pub source_namespace: Option<String>,
    pub gateways: Vec<String>,
    pub destination_subnets: Vec<String>,
    /// TLS routes only.
    pub sni_hosts: Vec<String>,
}

/// How visible a VirtualService is to one namespace, in the order istiod
/// lists them (`SelectVirtualServices`, `VirtualServicesForGateway`):
/// private ones of that namespace first, then those exported to it by name,
/// then public ones; creation time orders each tier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum VsTier {
    /// In the namespace, exported to `.` or to its own namespace.
    Private,
    /// Exported to the namespace by name (Istio ≥ 1.8).
    ExportedToNamespace,
    /// Exported to `*` (the default).
    Public,
}

impl HttpRoute {
    /// Every mirror destination (`mirror` then `mirrors`).
    pub fn all_mirrors(&self) -> impl Iterator<Item = &Destination> {
        self.mirror.iter().chain(self.mirrors.iter())
    }
}

impl VirtualService {
    /// Parse a raw VirtualService; short hosts resolve with `domain_suffix`.
    pub fn from_value(v: &Value, domain_suffix: &str) -> Result<VirtualService, ObjectError> {
        let meta = Meta::from_value(v)?;
        let id = meta.id();
        if !meta.kind.is_empty() && meta.kind != "VirtualService" {
            return Err(ObjectError::WrongKind {
                object: id,
                expected: "VirtualService".into(),
            });
        }
        let r = Reader::new(&id, v);
        let ns = meta.namespace.clone();
        let hosts_written = r.str_list("spec.hosts")?;
        let hosts = hosts_written
            .iter()
            .map(|h| resolve_host(h, &ns, domain_suffix))
            .collect();
        let gateways = r
            .str_list("spec.gateways")?
            .iter()
            .map(|g| resolve_gateway_name(g, &ns))
            .collect();
        let ctx = Ctx {
            ns: &ns,
            domain: domain_suffix,
        };
        let mut http = Vec::new();
        for (i, item) in r.opt_array("spec.http")?.iter().enumerate() {
            let rel = format!("spec.http[{i}]");
            let owned = object_at(&r, item, &rel)?;
            http.push(parse_http(&owned.reader(), i, &ctx)?);
        }
        let tcp = parse_l4_list(&r, "spec.tcp", &ctx)?;
        let tls = parse_l4_list(&r, "spec.tls", &ctx)?;
        Ok(VirtualService {
            export_to: r.str_list("spec.exportTo")?,
            meta,
            hosts_written,
            hosts,
            gateways,
            http,
            tcp,
            tls,
        })
    }

    pub fn object_ref(&self) -> ObjectRef {
        self.meta.object_ref()
    }

    /// `ns/name`.
    pub fn key(&self) -> String {
        self.meta.key()
    }

    /// A VirtualService without hosts is a delegate: istiod never applies it
    /// on its own (virtualservice.go `mergeVirtualServicesIfNeeded`).
    pub fn is_delegate(&self) -> bool {
        self.hosts.is_empty()
    }

    /// Has an HTTP route with `delegate` (a root).
    pub fn is_root(&self) -> bool {
        self.http.iter().any(|h| h.delegate.is_some())
    }

    /// The gateways it binds to; empty `spec.gateways` means `mesh` only
    /// (push_context.go `getGatewayNames`).
    pub fn bound_gateways(&self) -> Vec<&str> {
        if self.gateways.is_empty() {
            vec![MESH_GATEWAY]
        } else {
            self.gateways.iter().map(String::as_str).collect()
        }
    }

    /// Applies to sidecars: `gateways` empty or listing `mesh`. A VS that
    /// names gateways without `mesh` applies to those gateways only.
    pub fn binds_mesh(&self) -> bool {
        self.bound_gateways().contains(&MESH_GATEWAY)
    }

    /// Its tier for clients (or gateway pods) in `namespace`; `None` = not
    /// visible there.
    ///
    /// Istio ≥ 1.8 (push_context.go `initVirtualServices`): exportTo (or the
    /// mesh default, `*`) containing `*` → public; containing `~` → nobody;
    /// `.` or its own namespace → private to it; other names → exported to
    /// those namespaces. Istio 1.1–1.7 read only the first exportTo entry:
    /// `.` → private, anything else → public (1.6.0 `initVirtualServices`:
    /// "we currently only process the first element").
    pub fn tier_for(&self, namespace: &str, opts: &RoutingOptions) -> Option<VsTier> {
        let list: Vec<&str> = if self.export_to.is_empty() {
            opts.default_vs_export_to
                .iter()
                .map(String::as_str)
                .collect()
        } else {
            self.export_to.iter().map(String::as_str).collect()
        };
        let own = self.meta.namespace.as_str();
        if list.is_empty() {
            return Some(VsTier::Public);
        }
        if !opts.at_least(1, 8) {
            return match list[0] {
                "." if namespace == own => Some(VsTier::Private),
                "." => None,
                _ => Some(VsTier::Public),
            };
        }
        if list.contains(&"*") {
            return Some(VsTier::Public);
        }
        if list.contains(&"~") {
            return None;
        }
        let names: BTreeSet<&str> = list
            .iter()
            .map(|e| if *e == "." { own } else { e })
            .collect();
        if namespace == own && names.contains(own) {
            Some(VsTier::Private)
        } else if names.contains(namespace) {
            Some(VsTier::ExportedToNamespace)
        } else {
            None
        }
    }
}

/// Resolve a VS host the way istiod does (short names in `ns`), lowercased
/// (route.go `separateVSHostsAndServices` lowercases before comparing).
pub fn resolve_host(h: &str, ns: &str, domain: &str) -> String {
    host::fqdn(h, ns, domain).to_ascii_lowercase()
}

/// istio/istio `pilot/pkg/model/config.go` `resolveGatewayName`: `mesh`
/// stays; `name` → `<ns>/name`; `./name` → `<ns>/name`; `ns2/name` stays;
/// the legacy `name.ns2[.svc.cluster.local]` → `ns2/name`.
pub fn resolve_gateway_name(gw: &str, vs_ns: &str) -> String {
    if gw == MESH_GATEWAY {
        return gw.to_string();
    }
    match gw.split_once('/') {
        Some((".", name)) => format!("{vs_ns}/{name}"),
        Some(_) => gw.to_string(),
        None => match gw.split_once('.') {
            None => format!("{vs_ns}/{gw}"),
            Some((name, rest)) => match rest.split_once('.') {
                None => format!("{rest}/{name}"),
                Some((ns, _)) => format!("{ns}/{name}"),
            },
        },
    }
}

struct Ctx<'a> {
    ns: &'a str,
    domain: &'a str,
}

fn object_at<'a>(
    r: &Reader<'a>,
    v: &'a Value,
    rel: &str,
) -> Result<super::super::object::OwnedReader<'a>, ObjectError> {
    if !v.is_object() {
        return Err(r.type_err(rel, "an object", v));
    }
    Ok(r.at(v, rel))
}

fn parse_http(r: &Reader<'_>, index: usize, ctx: &Ctx<'_>) -> Result<HttpRoute, ObjectError> {
    let mut matches = Vec::new();
    for (i, m) in r.opt_array("match")?.iter().enumerate() {
        let owned = object_at(r, m, &format!("match[{i}]"))?;
        matches.push(parse_http_match(&owned.reader(), ctx)?);
    }
    let mirror = match r.opt_object("mirror")? {
        Some(m) => {
            let owned = r.at(m, "mirror");
            Some(parse_destination(&owned.reader(), ctx)?)
        }
        None => None,
    };
    let mut mirrors = Vec::new();
    for (i, m) in r.opt_array("mirrors")?.iter().enumerate() {
        let owned = object_at(r, m, &format!("mirrors[{i}]"))?;
        let mr = owned.reader();
        if let Some(d) = mr.opt_object("destination")? {
            let dst = mr.at(d, "destination");
            mirrors.push(parse_destination(&dst.reader(), ctx)?);
        }
    }
    let delegate = match r.opt_object("delegate")? {
        Some(_) => Some((
            r.req_str("delegate.name")?,
            r.opt_str("delegate.namespace")?.unwrap_or_default(),
        )),
        None => None,
    };
    Ok(HttpRoute {
        index,
        name: r.opt_str("name")?,
        origin: RouteOrigin::Own,
        matches,
        route: parse_route_destinations(r, "route", ctx)?,
        redirect: r.opt_object("redirect")?.is_some(),
        direct_response: r.opt_u32("directResponse.status")?,
        delegate,
        mirror,
        mirrors,
        fault: parse_fault(r)?,
    })
}

fn parse_http_match(r: &Reader<'_>, ctx: &Ctx<'_>) -> Result<HttpMatch, ObjectError> {
    Ok(HttpMatch {
        name: r.opt_str("name")?,
        uri: parse_string_match(r, "uri")?,
        scheme: parse_string_match(r, "scheme")?,
        method: parse_string_match(r, "method")?,
        authority: parse_string_match(r, "authority")?,
        headers: parse_string_match_map(r, "headers")?,
        without_headers: parse_string_match_map(r, "withoutHeaders")?,
        query_params: parse_string_match_map(r, "queryParams")?,
        ignore_uri_case: r.opt_bool("ignoreUriCase")?.unwrap_or(false),
        port: r.opt_u32("port")?.filter(|p| *p != 0),
        source_labels: r.str_map("sourceLabels")?,
        source_namespace: r.opt_str("sourceNamespace")?.filter(|s| !s.is_empty()),
        gateways: r
            .str_list("gateways")?
            .iter()
            .map(|g| resolve_gateway_name(g, ctx.ns))
            .collect(),
    })
}

fn parse_string_match(r: &Reader<'_>, rel: &str) -> Result<Option<StringMatch>, ObjectError> {
    if r.opt_object(rel)?.is_none() {
        return Ok(None);
    }
    for (key, make) in [
        ("exact", StringMatch::Exact as fn(String) -> StringMatch),
        ("prefix", StringMatch::Prefix),
        ("regex", StringMatch::Regex),
    ] {
        let path = if rel.is_empty() {
            key.to_string()
        } else {
            format!("{rel}.{key}")
        };
        if let Some(s) = r.opt_str(&path)? {
            return Ok(Some(make(s)));
        }
    }
    Ok(Some(StringMatch::Any))
}

fn parse_string_match_map(
    r: &Reader<'_>,
    rel: &str,
) -> Result<BTreeMap<String, StringMatch>, ObjectError> {
    let mut out = BTreeMap::new();
    if let Some(Value::Object(m)) = r.opt_object(rel)? {
        for k in m.keys() {
            // Header names may contain dots; read the entry directly.
            let entry = &m[k];
            let path = format!("{rel}[{k}]");
            let owned = object_at(r, entry, &path)?;
            let sr = owned.reader();
            let sm = parse_string_match(&sr, "")?.unwrap_or(StringMatch::Any);
            out.insert(k.clone(), sm);
        }
    }
    Ok(out)
}

fn parse_destination(r: &Reader<'_>, ctx: &Ctx<'_>) -> Result<Destination, ObjectError> {
    let written = r.req_str("host")?;
    Ok(Destination {
        host: resolve_host(&written, ctx.ns, ctx.domain),
        host_written: written,
        subset: r.opt_str("subset")?.filter(|s| !s.is_empty()),
        port: r.opt_u32("port.number")?.filter(|p| *p != 0),
    })
}

fn parse_route_destinations(
    r: &Reader<'_>,
    rel: &str,
    ctx: &Ctx<'_>,
) -> Result<Vec<RouteDestination>, ObjectError> {
    let mut out = Vec::new();
    for (i, d) in r.opt_array(rel)?.iter().enumerate() {
        let owned = object_at(r, d, &format!("{rel}[{i}]"))?;
        let dr = owned.reader();
        let destination = match dr.opt_object("destination")? {
            Some(v) => {
                let o = dr.at(v, "destination");
                Some(parse_destination(&o.reader(), ctx)?)
            }
            None => None,
        };
        let weight = match dr.opt_i64("weight")? {
            Some(w) if w < 0 => return Err(dr.invalid("weight", format!("{w} is negative"))),
            Some(w) => u32::try_from(w).unwrap_or(u32::MAX),
            None => 0,
        };
        out.push(RouteDestination {
            destination,
            weight,
        });
    }
    Ok(out)
}

fn parse_fault(r: &Reader<'_>) -> Result<Option<Fault>, ObjectError> {
    if r.opt_object("fault")?.is_none() {
        return Ok(None);
    }
    let abort = match r.opt_object("fault.abort")? {
        None => None,
        Some(_) => {
            let percent = match r.get("fault.abort.percentage.value") {
                None => None,
                Some(Value::Number(n)) => n.as_f64(),
                Some(other) => {
                    return Err(r.type_err("fault.abort.percentage.value", "a number", other))
                }
            };
            // `percent` (int, deprecated) is what Istio ≤ 1.x also accepted.
            let legacy = r.opt_u32("fault.abort.percent")?.map(f64::from);
            Some(Abort {
                http_status: r.opt_u32("fault.abort.httpStatus")?,
                grpc_status: r.opt_scalar_string("fault.abort.grpcStatus")?,
                percent: percent.or(legacy),
            })
        }
    };
    Ok(Some(Fault {
        abort,
        delay: r.opt_object("fault.delay")?.is_some(),
    }))
}

fn parse_l4_list(r: &Reader<'_>, rel: &str, ctx: &Ctx<'_>) -> Result<Vec<L4Route>, ObjectError> {
    let mut out = Vec::new();
    for (i, item) in r.opt_array(rel)?.iter().enumerate() {
        let path = format!("{rel}[{i}]");
        let owned = object_at(r, item, &path)?;
        let lr = owned.reader();
        let mut matches = Vec::new();
        for (j, m) in lr.opt_array("match")?.iter().enumerate() {
            let mo = object_at(&lr, m, &format!("match[{j}]"))?;
            let mr = mo.reader();
            matches.push(L4Match {
                port: mr.opt_u32("port")?.filter(|p| *p != 0),
                source_labels: mr.str_map("sourceLabels")?,
                source_namespace: mr.opt_str("sourceNamespace")?.filter(|s| !s.is_empty()),
                gateways: mr
                    .str_list("gateways")?
                    .iter()
                    .map(|g| resolve_gateway_name(g, ctx.ns))
                    .collect(),
                destination_subnets: mr.str_list("destinationSubnets")?,
                sni_hosts: mr.str_list("sniHosts")?,
            });
        }
        out.push(L4Route {
            index: i,
            matches,
            route: parse_route_destinations(&lr, "route", ctx)?,
        });
    }
    Ok(out)
}
