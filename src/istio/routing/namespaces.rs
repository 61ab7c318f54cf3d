//! Which namespaces can see a host differently, indexed once per routing
//! view so that asking for every host of a mesh (`scan`) does not re-read
//! every object per host.
//!
//! Place in the flow: part of `istio::routing` (pure); built by
//! [`Routing::namespace_index`], kept by the model's route cache (a clone
//! of the model starts without it, so a candidate fix's changed routing
//! gets its own), read by `callers_of`.

use std::collections::{BTreeSet, HashMap};

use super::super::host;
use super::query::Routing;

/// The namespaces the snapshot mentions, and per host the namespaces whose
/// Istio objects for that host (or whose exportTo lists) may give their
/// clients a view of it of their own.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NamespaceIndex {
    /// Every namespace the snapshot mentions (objects and exportTo lists).
    pub known: BTreeSet<String>,
    /// Namespaces with a view of their own for every host: Sidecars,
    /// Gateways, delegate VirtualServices (and their exportTo), the root.
    always: BTreeSet<String>,
    /// Exact host → namespaces of the Services, ServiceEntries,
    /// VirtualServices and DestinationRules for it, and their exportTo.
    exact: HashMap<String, BTreeSet<String>>,
    /// The same for wildcard hosts (`*.example.com`, `*.local`).
    wildcard: Vec<(String, BTreeSet<String>)>,
}

fn named(ns: &str) -> bool {
    !ns.is_empty() && !matches!(ns, "*" | "." | "~")
}

impl NamespaceIndex {
    fn note(&mut self, host: &str, ns: &str, export_to: &[String]) {
        let mut set: BTreeSet<String> = export_to.iter().cloned().collect();
        set.insert(ns.to_string());
        let slot = if host::is_wildcard(host) {
            match self.wildcard.iter_mut().find(|(h, _)| h == host) {
                Some((_, s)) => s,
                None => {
                    self.wildcard.push((host.to_string(), BTreeSet::new()));
                    &mut self.wildcard.last_mut().expect("just pushed").1
                }
            }
        } else {
            self.exact.entry(host.to_string()).or_default()
        };
        slot.extend(set);
    }

    fn always(&mut self, ns: &str, export_to: &[String]) {
        self.always.insert(ns.to_string());
        self.always.extend(export_to.iter().cloned());
    }

    /// The namespaces whose clients may see `host` differently from a
    /// namespace no Istio object for the host mentions: those holding a
    /// VirtualService or DestinationRule whose hosts name it, a Service or
    /// ServiceEntry for it, any Sidecar, Gateway or delegate VirtualService,
    /// those the exportTo of any of these names, the root namespace, and the
    /// host's own namespace (`exportTo: "."`, a Sidecar's `./*`). Every
    /// other namespace gets the same routes (`routes_for`: Sidecar scope,
    /// exportTo, service choice, the VirtualService for the host) and the
    /// same rules (`destination_rule::decide`: client namespace, service
    /// namespace, root) as a namespace the snapshot does not mention.
    pub fn with_own_view(&self, host: &str, domain_suffix: &str) -> BTreeSet<String> {
        let names = |h: &str| host::matches(h, host) || host::matches(host, h);
        let mut out = self.always.clone();
        if let Some(s) = self.exact.get(host) {
            out.extend(s.iter().cloned());
        }
        if host::is_wildcard(host) {
            for (h, s) in &self.exact {
                if names(h) {
                    out.extend(s.iter().cloned());
                }
            }
        }
        for (h, s) in &self.wildcard {
            if names(h) {
                out.extend(s.iter().cloned());
            }
        }
        // `name.ns.svc.<domain>`: its namespace, even with no Service there.
        let svc = format!(".svc.{domain_suffix}");
        if let Some((_, ns)) = host.strip_suffix(&svc).and_then(|h| h.rsplit_once('.')) {
            out.insert(ns.to_string());
        }
        out
    }
}

impl Routing {
    /// The index of namespaces (see [`NamespaceIndex`]), from every object.
    pub fn namespace_index(&self) -> NamespaceIndex {
        let mut ix = NamespaceIndex::default();
        let mut known = BTreeSet::new();
        let mut add = |ns: &str, export_to: &[String]| {
            for n in std::iter::once(ns).chain(export_to.iter().map(String::as_str)) {
                if named(n) {
                    known.insert(n.to_string());
                }
            }
        };
        for s in &self.registry.services {
            add(&s.namespace, &s.export_to);
            ix.note(&s.hostname, &s.namespace, &s.export_to);
        }
        self.registry
            .workloads
            .iter()
            .for_each(|w| add(&w.namespace, &[]));
        for v in &self.virtual_services {
            add(&v.meta.namespace, &v.export_to);
            for h in &v.hosts {
                ix.note(h, &v.meta.namespace, &v.export_to);
            }
        }
        for v in &self.delegates {
            add(&v.meta.namespace, &v.export_to);
            ix.always(&v.meta.namespace, &v.export_to);
        }
        for d in &self.destination_rules {
            add(&d.meta.namespace, &d.export_to);
            ix.note(&d.host_fqdn, &d.meta.namespace, &d.export_to);
        }
        for s in &self.sidecars {
            add(&s.meta.namespace, &[]);
            ix.always(&s.meta.namespace, &[]);
        }
        for g in &self.gateways {
            add(&g.meta.namespace, &[]);
            ix.always(&g.meta.namespace, &[]);
        }
        add(&self.opts.root_namespace, &[]);
        ix.always(&self.opts.root_namespace, &[]);
        ix.known = known;
        ix
    }
}
