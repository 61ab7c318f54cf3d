//! The `Sidecar` resource (networking.istio.io): which one applies to a
//! workload, which hosts and VirtualServices its egress listeners import,
//! and its outbound traffic policy.
//!
//! Place in the flow: a pure helper (istio/routing); [`super::query`] asks it
//! whether a host is visible to a client and whether a VirtualService is
//! imported. Gateways ignore Sidecar resources (push_context.go
//! `doGetSidecarScope`: "Gateways always use default sidecar scope").
//!
//! Sources (istio/istio): `pilot/pkg/model/push_context.go`
//! `initSidecarScopes` (selector Sidecars first, then namespace-wide ones,
//! each by creation time; the root namespace's selector-less Sidecar is the
//! mesh default) and `doGetSidecarScope` (first selector match in the
//! workload's namespace, else its namespace-wide one, else the root's, else
//! none = import `*/*`); `pilot/pkg/model/sidecar.go`
//! `convertIstioListenerToWrapper` (`ns/host` entries; `.` = the workload's
//! namespace; an entry without exactly one `/` is ignored; `~`-prefixed
//! exclusions from 1.31), `hostClassification.Matches` (service hosts),
//! `hostClassification.VSMatches` (VirtualService hosts, matched both ways),
//! `selectServices`, `SelectVirtualServices`, `GetEgressListenerForRDS` (the
//! listener for the port, else the port-less one); `initSidecarScopeInternalIndexes`
//! (`outboundTrafficPolicy` from the Sidecar, else the mesh config).

use std::collections::BTreeMap;

use serde_json::Value;

use super::super::host;
use super::super::mesh_config::OutboundMode;
use super::super::object::{labels_match, Meta, ObjectError, ObjectRef, Reader};
use super::virtual_service::VirtualService;
use super::RoutingOptions;

/// A parsed Sidecar.
#[derive(Debug, Clone, PartialEq)]
pub struct SidecarResource {
    pub meta: Meta,
    /// `workloadSelector.labels`; `None` = namespace-wide.
    pub workload_selector: Option<BTreeMap<String, String>>,
    /// `egress`; empty = one port-less listener importing `*/*`.
    pub egress: Vec<EgressListener>,
    /// `outboundTrafficPolicy.mode`, when written.
    pub outbound_mode: Option<OutboundMode>,
}

/// One `egress` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct EgressListener {
    pub port: Option<u32>,
    pub hosts: Vec<EgressHost>,
    /// Entries Istio ignores (not of the form `namespace/host`).
    pub invalid_hosts: Vec<String>,
}

/// One `namespace/host` entry of an egress listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EgressHost {
    pub written: String,
    /// `*`, `.`, a namespace, or `~` (no namespace).
    pub namespace: String,
    pub host: String,
    /// A `~ns/host` exclusion (Istio ≥ 1.31).
    pub excluded: bool,
}

/// Why this Sidecar applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SidecarWhy {
    /// Its workloadSelector selects the workload (the oldest such wins).
    SelectorMatches,
    /// The workload's namespace-wide Sidecar (no selector matched).
    NamespaceDefault,
    /// The root namespace's selector-less Sidecar (the namespace has none that applies).
    RootNamespaceDefault,
    /// No Sidecar applies: everything exported to the namespace is imported.
    NoSidecar,
}

/// The Sidecar that applies to a workload.
#[derive(Debug, Clone, PartialEq)]
pub struct SidecarChoice<'a> {
    pub sidecar: Option<&'a SidecarResource>,
    pub why: SidecarWhy,
    /// Other Sidecars of the namespace that lost (selector did not match, or older won).
    pub passed_over: Vec<ObjectRef>,
}

/// Whether a Sidecar imports a service on a port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Import {
    /// Imported by `entry` of the listener for `listener_port` (`None` = port-less).
    Imported {
        listener_port: Option<u32>,
        entry: String,
    },
    /// A `~` entry excludes it.
    Excluded { entry: String },
    /// No entry of the listener matches.
    NotImported { listener_port: Option<u32> },
    /// No egress listener serves this port.
    NoListener,
}

impl SidecarResource {
    /// Parse a raw Sidecar.
    pub fn from_value(v: &Value, opts: &RoutingOptions) -> Result<SidecarResource, ObjectError> {
        let meta = Meta::from_value(v)?;
        let id = meta.id();
        let r = Reader::new(&id, v);
        let workload_selector = match r.opt_object("spec.workloadSelector")? {
            Some(_) => Some(r.str_map("spec.workloadSelector.labels")?),
            None => None,
        };
        let mut egress = Vec::new();
        for (i, e) in r.opt_array("spec.egress")?.iter().enumerate() {
            let rel = format!("spec.egress[{i}]");
            if !e.is_object() {
                return Err(r.type_err(&rel, "an object", e));
            }
            let owned = r.at(e, &rel);
            let er = owned.reader();
            let mut hosts = Vec::new();
            let mut invalid_hosts = Vec::new();
            for h in er.str_list("hosts")? {
                match parse_egress_host(&h, opts) {
                    Some(eh) => hosts.push(eh),
                    None => invalid_hosts.push(h),
                }
            }
            egress.push(EgressListener {
                port: er.opt_u32("port.number")?.filter(|p| *p != 0),
                hosts,
                invalid_hosts,
            });
        }
        let outbound_mode =
            r.opt_str("spec.outboundTrafficPolicy.mode")?
                .map(|m| match m.as_str() {
                    "REGISTRY_ONLY" => OutboundMode::RegistryOnly,
                    "ALLOW_ANY" => OutboundMode::AllowAny,
                    other => OutboundMode::Other(other.to_string()),
                });
        Ok(SidecarResource {
            meta,
            workload_selector,
            egress,
            outbound_mode,
        })
    }

    pub fn object_ref(&self) -> ObjectRef {
        self.meta.object_ref()
    }

    /// The egress listener that serves `port`: the one with that port, else
    /// the port-less one (`GetEgressListenerForRDS`). No `egress` = `*/*`.
    fn listener_for(&self, port: u32) -> Option<ListenerView<'_>> {
        if self.egress.is_empty() {
            return Some(ListenerView::ImportAll);
        }
        self.egress
            .iter()
            .find(|l| l.port == Some(port))
            .or_else(|| self.egress.iter().find(|l| l.port.is_none()))
            .map(ListenerView::Listener)
    }

    /// Does this Sidecar, for a workload in `workload_ns`, import the service
    /// `svc_host` of namespace `svc_ns` on `port` (`selectServices`)?
    pub fn imports_service(
        &self,
        workload_ns: &str,
        svc_host: &str,
        svc_ns: &str,
        port: u32,
    ) -> Import {
        let listener = match self.listener_for(port) {
            None => return Import::NoListener,
            Some(ListenerView::ImportAll) => {
                return Import::Imported {
                    listener_port: None,
                    entry: "*/*".into(),
                }
            }
            Some(ListenerView::Listener(l)) => l,
        };
        let ns_of = |h: &EgressHost| -> String {
            match h.namespace.as_str() {
                "." => workload_ns.to_string(),
                other => other.to_string(),
            }
        };
        if let Some(ex) = listener.hosts.iter().find(|h| {
            h.excluded
                && (ns_of(h) == svc_ns || ns_of(h) == "*")
                && host::matches(&h.host, svc_host)
        }) {
            return Import::Excluded {
                entry: ex.written.clone(),
            };
        }
        let hit = |ns: &str| {
            listener
                .hosts
                .iter()
                .find(|h| !h.excluded && ns_of(h) == ns && service_host_matches(&h.host, svc_host))
        };
        match hit(svc_ns).or_else(|| hit("*")) {
            Some(h) => Import::Imported {
                listener_port: listener.port,
                entry: h.written.clone(),
            },
            None => Import::NotImported {
                listener_port: listener.port,
            },
        }
    }

    /// Does this Sidecar import VirtualService `vs` for traffic on `port`
    /// (`SelectVirtualServices`: an entry of the VS's namespace or `*`
    /// whose host matches one of the VS's hosts, in either direction)?
    pub fn imports_virtual_service(
        &self,
        workload_ns: &str,
        vs: &VirtualService,
        port: u32,
    ) -> bool {
        let listener = match self.listener_for(port) {
            None => return false,
            Some(ListenerView::ImportAll) => return true,
            Some(ListenerView::Listener(l)) => l,
        };
        let vs_ns = vs.meta.namespace.as_str();
        let ns_of = |h: &EgressHost| -> String {
            match h.namespace.as_str() {
                "." => workload_ns.to_string(),
                other => other.to_string(),
            }
        };
        let excluded = |vh: &str| {
            listener.hosts.iter().any(|h| {
                h.excluded && (ns_of(h) == vs_ns || ns_of(h) == "*") && host::matches(&h.host, vh)
            })
        };
        vs.hosts.iter().any(|vh| {
            !excluded(vh)
                && listener.hosts.iter().any(|h| {
                    !h.excluded
                        && (ns_of(h) == vs_ns || ns_of(h) == "*")
                        && vs_host_matches(&h.host, vh)
                })
        })
    }
}

enum ListenerView<'a> {
    ImportAll,
    Listener(&'a EgressListener),
}

/// `hostClassification.Matches`: equal, or the service host is within a
/// wildcard entry (`*` imports everything).
fn service_host_matches(entry: &str, svc_host: &str) -> bool {
    entry.eq_ignore_ascii_case(svc_host) || host::matches(entry, svc_host)
}

/// `hostClassification.VSMatches` (classic VirtualServices): equal, or
/// wildcard matching in either direction.
fn vs_host_matches(entry: &str, vs_host: &str) -> bool {
    entry.eq_ignore_ascii_case(vs_host)
        || host::matches(entry, vs_host)
        || host::matches(vs_host, entry)
}

fn parse_egress_host(h: &str, opts: &RoutingOptions) -> Option<EgressHost> {
    if h.matches('/').count() != 1 {
        return None;
    }
    let (ns, name) = h.split_once('/')?;
    let (namespace, excluded) = match ns.strip_prefix('~') {
        Some(rest) if opts.at_least(1, 31) => {
            (if rest.is_empty() { "*" } else { rest }.to_string(), true)
        }
        _ => (ns.to_string(), false),
    };
    Some(EgressHost {
        written: h.to_string(),
        namespace,
        host: name.to_ascii_lowercase(),
        excluded,
    })
}

/// The Sidecar that applies to a workload in `namespace` with `labels`.
pub fn choose<'a>(
    sidecars: &'a [SidecarResource],
    namespace: &str,
    labels: &BTreeMap<String, String>,
    root_ns: &str,
) -> SidecarChoice<'a> {
    let mut in_ns: Vec<&SidecarResource> = sidecars
        .iter()
        .filter(|s| s.meta.namespace == namespace)
        .collect();
    // Selector Sidecars first, then namespace-wide ones; oldest first in each.
    in_ns.sort_by(|a, b| {
        (
            a.workload_selector.is_none(),
            &a.meta.creation_timestamp,
            &a.meta.name,
        )
            .cmp(&(
                b.workload_selector.is_none(),
                &b.meta.creation_timestamp,
                &b.meta.name,
            ))
    });
    let winner = in_ns.iter().copied().find(|s| match &s.workload_selector {
        Some(sel) => labels_match(sel, labels),
        None => true,
    });
    let passed_over = |w: Option<&SidecarResource>| -> Vec<ObjectRef> {
        in_ns
            .iter()
            .filter(|s| w.is_none_or(|w| w.meta.name != s.meta.name))
            .map(|s| s.object_ref())
            .collect()
    };
    if let Some(w) = winner {
        let why = if w.workload_selector.is_some() {
            SidecarWhy::SelectorMatches
        } else {
            SidecarWhy::NamespaceDefault
        };
        return SidecarChoice {
            sidecar: Some(w),
            why,
            passed_over: passed_over(Some(w)),
        };
    }
    let mut root: Vec<&SidecarResource> = sidecars
        .iter()
        .filter(|s| s.meta.namespace == root_ns && s.workload_selector.is_none())
        .collect();
    root.sort_by(|a, b| a.meta.age_order(&b.meta));
    match root.first() {
        Some(r) => SidecarChoice {
            sidecar: Some(r),
            why: SidecarWhy::RootNamespaceDefault,
            passed_over: passed_over(None),
        },
        None => SidecarChoice {
            sidecar: None,
            why: SidecarWhy::NoSidecar,
            passed_over: passed_over(None),
        },
    }
}

impl SidecarChoice<'_> {
    /// The outbound policy in force: the Sidecar's, else the mesh's.
    pub fn outbound_mode(&self, mesh: &OutboundMode) -> OutboundMode {
        self.sidecar
            .and_then(|s| s.outbound_mode.clone())
            .unwrap_or_else(|| mesh.clone())
    }
}
