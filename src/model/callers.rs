//! Model stage: who calls a target, found from the target's side, and what
//! each caller's proxy does with the requests ([`TargetRoutes`]).
//!
//! Callers are classes of namespaces that see the target's host and get the
//! same view of it — the same VirtualService per port and the same
//! DestinationRules ([`crate::istio::routing::Routing::callers_of`]: service
//! exportTo, Sidecar imports, VirtualService and DestinationRule exportTo) —
//! plus the client sidecars the snapshot read. Each class is computed for a
//! representative client: a read client sidecar of its namespaces, else a
//! pod with a sidecar there, else a workload without labels. A read client
//! whose labels may change its view (a Sidecar or DestinationRule with a
//! workload selector, `sourceLabels`) is a caller of its own.
//!
//! Gateways are callers too: every Gateway a VirtualService routing to the
//! target binds, computed for one of its pods (or, without one in the
//! snapshot, for a pod in the Gateway's namespace with its selector's
//! labels), per VirtualService host and server port; and every Gateway
//! server host that names the target itself.
//!
//! Memoized per Service on the [`Mesh`] ([`Mesh::target_routes`]).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use crate::istio::host;
use crate::istio::routing::callers::OTHER_NAMESPACES;
use crate::istio::routing::{self, GatewayView, RouteView};

use super::pods::PodKey;
use super::services::Service;
use super::Mesh;

/// How a caller was found.
#[derive(Debug, Clone, PartialEq)]
pub enum CallerSource {
    /// From config: its namespaces see the host and get these
    /// VirtualServices (per port) and DestinationRules.
    Config {
        virtual_services: Vec<String>,
        destination_rules: Vec<String>,
    },
    /// A client sidecar the snapshot read, and why it was read.
    Client { proxy: String, because: String },
}

/// Namespaces whose workloads get one view of the target, and the client
/// that view is computed for.
#[derive(Debug, Clone, PartialEq)]
pub struct Caller {
    pub namespaces: Vec<String>,
    /// Also stands for every namespace the snapshot does not mention.
    pub other_namespaces: bool,
    /// Every namespace gets this view (one class for all).
    pub every_namespace: bool,
    /// The representative client's namespace and labels.
    pub namespace: String,
    pub labels: BTreeMap<String, String>,
    /// The pod those labels are from (`None`: a workload without labels).
    pub pod: Option<PodKey>,
    pub found: Vec<CallerSource>,
    /// Read client sidecars (proxy labels) that stand for this caller.
    pub proxies: Vec<String>,
    /// Workload labels could change the view in these namespaces.
    pub label_dependent: bool,
}

impl Caller {
    /// The client Istio's routing is asked about.
    pub fn client(&self) -> routing::Client<'_> {
        routing::Client {
            namespace: &self.namespace,
            labels: &self.labels,
        }
    }

    /// `namespace foo`, `namespaces bar, baz and every namespace the snapshot does not mention`.
    pub fn name(&self) -> String {
        let others = "every namespace the snapshot does not mention";
        if self.every_namespace {
            return "every namespace".to_string();
        }
        match (self.namespaces.len(), self.other_namespaces) {
            (0, _) => others.to_string(),
            (1, false) => format!("namespace {}", self.namespaces[0]),
            (_, false) => format!("namespaces {}", self.namespaces.join(", ")),
            (_, true) => format!(
                "namespace{} {} and {others}",
                if self.namespaces.len() > 1 { "s" } else { "" },
                self.namespaces.join(", ")
            ),
        }
    }

    /// Who the routes were computed for.
    pub fn representative(&self) -> String {
        match &self.pod {
            Some(p) => format!("pod {p}"),
            None if self.namespace == OTHER_NAMESPACES => {
                "a workload without labels in such a namespace".to_string()
            }
            None => format!("a workload without labels in namespace {}", self.namespace),
        }
    }

    /// How it was found, in words.
    pub fn how_found(&self) -> String {
        let mut parts = Vec::new();
        for f in &self.found {
            match f {
                CallerSource::Config {
                    virtual_services,
                    destination_rules,
                } => parts.push(format!(
                    "from config: {} see{} the host{}{}",
                    self.name(),
                    if self.namespaces.len() == 1 && !self.other_namespaces && !self.every_namespace
                    {
                        "s"
                    } else {
                        ""
                    },
                    if virtual_services.is_empty() {
                        ", no VirtualService applies".to_string()
                    } else {
                        format!(", VirtualService {}", virtual_services.join(", "))
                    },
                    if destination_rules.is_empty() {
                        ", no DestinationRule applies".to_string()
                    } else {
                        format!(", DestinationRule {}", destination_rules.join(", "))
                    }
                )),
                CallerSource::Client { proxy, because } => parts.push(format!(
                    "the snapshot read its client sidecar {proxy} ({because})"
                )),
            }
        }
        format!(
            "{}; routes computed for {}",
            parts.join("; "),
            self.representative()
        )
    }
}

/// A gateway that routes requests towards the target.
#[derive(Debug, Clone, PartialEq)]
pub struct GatewayCaller {
    /// The Gateway (`ns/name`).
    pub gateway: String,
    /// The gateway pod routes are computed for (namespace, labels).
    pub namespace: String,
    pub labels: BTreeMap<String, String>,
    /// `None`: no pod of the gateway in the snapshot (its namespace and
    /// selector stand in).
    pub pod: Option<PodKey>,
    pub paths: Vec<GatewayPath>,
}

impl GatewayCaller {
    pub fn client(&self) -> routing::Client<'_> {
        routing::Client {
            namespace: &self.namespace,
            labels: &self.labels,
        }
    }

    /// `gateway foo/web-gateway (pod istio-system/istio-ingressgateway-1)`.
    pub fn name(&self) -> String {
        match &self.pod {
            Some(p) => format!("gateway {} (pod {p})", self.gateway),
            None => format!(
                "gateway {} (no pod of it in the snapshot: computed for its selector in namespace {})",
                self.gateway, self.namespace
            ),
        }
    }
}

/// One host and server port of a gateway, and what the gateway does there.
#[derive(Debug, Clone, PartialEq)]
pub struct GatewayPath {
    /// The VirtualService that made it a path to the target (`None`: a
    /// server host naming the target itself).
    pub vs: Option<String>,
    pub host: String,
    pub port: u32,
    pub view: GatewayView,
}

/// A VirtualService binding gateways that the snapshot has no Gateway for.
#[derive(Debug, Clone, PartialEq)]
pub struct MissingGateway {
    pub vs: String,
    pub gateway: String,
    pub hosts: Vec<String>,
}

/// Every caller of one target Service and what its proxy does.
#[derive(Debug, Clone, PartialEq)]
pub struct TargetRoutes {
    pub callers: Vec<Caller>,
    /// `views[i]`: caller `i`'s view of each target port, `(port, view)`.
    pub views: Vec<Vec<(u16, RouteView)>>,
    pub gateways: Vec<GatewayCaller>,
    pub missing_gateways: Vec<MissingGateway>,
}

/// Memoized [`TargetRoutes`] per Service FQDN, and the routing's
/// namespace index (built once per model); a clone starts empty.
#[derive(Debug, Default)]
pub struct Cache {
    routes: Mutex<HashMap<String, Arc<TargetRoutes>>>,
    namespaces: std::sync::OnceLock<crate::istio::routing::NamespaceIndex>,
}

impl Clone for Cache {
    fn clone(&self) -> Cache {
        Cache::default()
    }
}

impl Mesh {
    /// The callers of a target Service and their views of its ports
    /// (the target's ports, or the one asked for).
    pub fn target_routes(&self, svc: &Service) -> Arc<TargetRoutes> {
        let key = svc.fqdn.clone();
        if let Some(v) = self
            .route_cache
            .routes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
        {
            return v.clone();
        }
        let v = Arc::new(self.compute_target_routes(svc));
        self.route_cache
            .routes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(key)
            .or_insert(v)
            .clone()
    }

    fn compute_target_routes(&self, svc: &Service) -> TargetRoutes {
        let callers = self.callers_of_service(svc);
        let ports: Vec<u16> = svc
            .ports
            .iter()
            .map(|p| p.number)
            .filter(|n| !self.is_target(&svc.key) || self.target.only_port.is_none_or(|o| o == *n))
            .collect();
        let views = callers
            .iter()
            .map(|c| {
                ports
                    .iter()
                    .map(|p| {
                        (
                            *p,
                            self.routing
                                .routes_for(c.client(), &svc.fqdn, u32::from(*p)),
                        )
                    })
                    .collect()
            })
            .collect();
        let (gateways, missing_gateways) = self.gateway_callers(svc);
        TargetRoutes {
            callers,
            views,
            gateways,
            missing_gateways,
        }
    }

    /// Caller classes from config, each with a representative client, and
    /// the read clients whose labels may give them a view of their own.
    fn callers_of_service(&self, svc: &Service) -> Vec<Caller> {
        let index = self
            .route_cache
            .namespaces
            .get_or_init(|| self.routing.namespace_index());
        let info = self.routing.callers_of_indexed(&svc.fqdn, index);
        let groups = self.client_groups();
        let mut out: Vec<Caller> = Vec::new();
        let one_view = info.classes.len() == 1;
        for class in &info.classes {
            let mut vss: Vec<String> = class
                .virtual_services
                .iter()
                .filter_map(|(_, v)| v.clone())
                .collect();
            vss.dedup();
            // A set: a class can hold every namespace of a large mesh.
            let in_class: std::collections::HashSet<&str> =
                class.namespaces.iter().map(String::as_str).collect();
            let client = groups.iter().find(|g| {
                g.pod
                    .is_some_and(|p| in_class.contains(p.key.namespace.as_str()))
            });
            let pod = client.and_then(|g| g.pod).or_else(|| {
                let ns = &class.namespaces;
                self.first_pod_in(ns, |p| p.has_sidecar() && !svc.selects(p))
                    .or_else(|| self.first_pod_in(ns, |p| p.has_sidecar()))
            });
            let namespace = match (pod, class.namespaces.first()) {
                (Some(p), _) => p.key.namespace.clone(),
                (None, Some(ns)) => ns.clone(),
                (None, None) => OTHER_NAMESPACES.to_string(),
            };
            out.push(Caller {
                namespaces: class.namespaces.clone(),
                other_namespaces: class.other_namespaces,
                every_namespace: one_view && class.other_namespaces,
                namespace,
                labels: pod.map(|p| p.labels.clone()).unwrap_or_default(),
                pod: pod.map(|p| p.key.clone()),
                found: vec![CallerSource::Config {
                    virtual_services: vss,
                    destination_rules: class.destination_rules.clone(),
                }],
                proxies: Vec::new(),
                label_dependent: class.label_dependent,
            });
        }
        for g in &groups {
            let ns = g
                .proxy
                .pod
                .as_ref()
                .map(|k| k.namespace.clone())
                .unwrap_or_default();
            let source = CallerSource::Client {
                proxy: g.proxy.label.clone(),
                because: g.proxy.chosen_because.clone(),
            };
            let class = out.iter_mut().find(|c| c.namespaces.contains(&ns));
            match class {
                Some(c) if !c.label_dependent || c.pod.as_ref() == g.proxy.pod.as_ref() => {
                    c.found.push(source);
                    c.proxies.push(g.proxy.label.clone());
                }
                _ => out.push(Caller {
                    namespaces: vec![ns.clone()],
                    other_namespaces: false,
                    every_namespace: false,
                    namespace: ns,
                    labels: g.pod.map(|p| p.labels.clone()).unwrap_or_default(),
                    pod: g.proxy.pod.clone(),
                    found: vec![source],
                    proxies: vec![g.proxy.label.clone()],
                    label_dependent: true,
                }),
            }
        }
        out
    }

    /// Gateways bound by VirtualServices that route to `svc` (or whose
    /// servers name its host), each with its paths; and bound gateways the
    /// snapshot does not have.
    fn gateway_callers(&self, svc: &Service) -> (Vec<GatewayCaller>, Vec<MissingGateway>) {
        let fqdn = svc.fqdn.to_ascii_lowercase();
        // (gateway, vs, host) triples to ask about.
        let mut wanted: Vec<(String, Option<String>, String)> = Vec::new();
        let mut missing = Vec::new();
        for vs in &self.routing.virtual_services {
            let names_target = vs.hosts.contains(&fqdn);
            let routes_target = vs
                .http
                .iter()
                .flat_map(|r| r.route.iter())
                .chain(vs.tcp.iter().chain(&vs.tls).flat_map(|r| r.route.iter()))
                .filter_map(|d| d.destination.as_ref())
                .any(|d| d.host == fqdn);
            if !(names_target || routes_target) {
                continue;
            }
            for gw in vs.gateways.iter().filter(|g| *g != "mesh") {
                if !self.routing.gateways.iter().any(|g| g.key() == *gw) {
                    missing.push(MissingGateway {
                        vs: vs.key(),
                        gateway: gw.clone(),
                        hosts: vs.hosts.clone(),
                    });
                    continue;
                }
                for h in vs.hosts.iter().filter(|h| !host::is_wildcard(h)) {
                    wanted.push((gw.clone(), Some(vs.key()), h.clone()));
                }
            }
        }
        for g in &self.routing.gateways {
            let names_target = g.servers.iter().flat_map(|s| s.hosts.iter()).any(|h| {
                let bare = h.rsplit_once('/').map_or(h.as_str(), |(_, h)| h);
                bare != "*" && host::matches(bare, &fqdn)
            });
            if names_target {
                wanted.push((g.key(), None, fqdn.clone()));
            }
        }
        let mut out: Vec<GatewayCaller> = Vec::new();
        for (gw, vs, h) in wanted {
            let idx = match out.iter().position(|c| c.gateway == gw) {
                Some(i) => i,
                None => match self.gateway_caller(&gw) {
                    Some(c) => {
                        out.push(c);
                        out.len() - 1
                    }
                    // Its pods were listed and there are none: nothing runs it.
                    None => continue,
                },
            };
            let Some(g) = self.routing.gateways.iter().find(|g| g.key() == gw) else {
                continue;
            };
            let mut ports: Vec<u32> = g.servers.iter().map(|s| s.port).collect();
            ports.sort_unstable();
            ports.dedup();
            for port in ports {
                let caller = &out[idx];
                if caller
                    .paths
                    .iter()
                    .any(|p| p.host == h && p.port == port && (p.vs == vs || vs.is_none()))
                {
                    continue;
                }
                let view = self.routing.gateway_routes(caller.client(), &h, port);
                if matches!(
                    view.outcome,
                    routing::GatewayOutcome::NoServer | routing::GatewayOutcome::NotHttp { .. }
                ) {
                    continue;
                }
                out[idx].paths.push(GatewayPath {
                    vs: vs.clone(),
                    host: h.clone(),
                    port,
                    view,
                });
            }
        }
        out.retain(|c| !c.paths.is_empty());
        (out, missing)
    }

    /// The pod a Gateway configures (the first in the snapshot), or a
    /// stand-in with its selector in its namespace when its pods were not
    /// listed; `None` when they were and there are none.
    fn gateway_caller(&self, gateway: &str) -> Option<GatewayCaller> {
        let pods = self.routing.gateway_pods(gateway);
        let g = self.routing.gateways.iter().find(|g| g.key() == gateway);
        if pods.is_empty() && self.route_reads.gateway_pods_listed.contains(gateway) {
            return None;
        }
        Some(match pods.first() {
            Some(w) => GatewayCaller {
                gateway: gateway.to_string(),
                namespace: w.namespace.clone(),
                labels: w.labels.clone(),
                pod: Some(PodKey::new(&w.object.namespace, &w.object.name)),
                paths: Vec::new(),
            },
            None => GatewayCaller {
                gateway: gateway.to_string(),
                namespace: g.map(|g| g.meta.namespace.clone()).unwrap_or_default(),
                labels: g.and_then(|g| g.selector.clone()).unwrap_or_default(),
                pod: None,
                paths: Vec::new(),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::istio::sidecar::SidecarKind;
    use crate::model::builder::*;
    use crate::snapshot::ProxyRole;
    use serde_json::{json, Value};

    fn sidecar_pod(ns: &str, name: &str, app: &str, ip: &str) -> crate::model::Pod {
        pod(ns, name, app, ip, Some(SidecarKind::Classic))
    }

    fn gateway() -> Value {
        json!({"apiVersion": "networking.istio.io/v1", "kind": "Gateway",
            "metadata": {"name": "web", "namespace": "foo"},
            "spec": {"selector": {"istio": "ingressgateway"},
                     "servers": [{"port": {"number": 80, "name": "http", "protocol": "HTTP"}, "hosts": ["shop.example.com"]}]}})
    }

    fn edge_vs() -> Value {
        json!({"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
            "metadata": {"name": "edge", "namespace": "foo"},
            "spec": {"hosts": ["shop.example.com"], "gateways": ["web"],
                     "http": [{"route": [{"destination": {"host": "httpbin", "port": {"number": 8000}}}]}]}})
    }

    fn gw_pod() -> crate::model::Pod {
        let mut p = pod("istio-system", "ingress-1", "ingress", "10.0.0.50", None);
        p.labels.insert("istio".into(), "ingressgateway".into());
        p
    }

    #[test]
    fn one_view_for_every_namespace_and_a_representative_pod() {
        let m = MeshBuilder::new()
            .target(httpbin())
            .pod(httpbin_pod())
            .pod(sleep_pod())
            .build();
        let tr = m.target_routes(&m.target_ports()[0].0.clone());
        assert_eq!(tr.callers.len(), 1, "{:#?}", tr.callers);
        let c = &tr.callers[0];
        assert_eq!(c.name(), "every namespace");
        // A pod that is not the target's own stands for the class.
        assert_eq!(c.pod, Some(PodKey::new("foo", "sleep-1")));
        assert!(c
            .how_found()
            .contains("routes computed for pod foo/sleep-1"));
        assert_eq!(tr.views[0].len(), 1);
    }

    #[test]
    fn a_rule_kept_to_its_namespace_splits_the_callers() {
        let mut d = dr("foo", "httpbin", "httpbin", None);
        d["spec"]["exportTo"] = json!(["."]);
        let m = MeshBuilder::new()
            .target(httpbin())
            .pod(httpbin_pod())
            .pod(sidecar_pod("bar", "web-1", "web", "10.0.0.7"))
            .object(d)
            .build();
        let tr = m.target_routes(&m.target_ports()[0].0.clone());
        let names: Vec<String> = tr.callers.iter().map(Caller::name).collect();
        assert!(names.contains(&"namespace foo".to_string()), "{names:?}");
        let other = tr
            .callers
            .iter()
            .find(|c| c.namespaces.contains(&"bar".to_string()))
            .unwrap();
        assert!(other.other_namespaces && !other.every_namespace);
        assert_eq!(other.pod, Some(PodKey::new("bar", "web-1")));
        assert!(
            other.how_found().contains("no DestinationRule applies"),
            "{}",
            other.how_found()
        );
    }

    #[test]
    fn read_clients_join_their_class_or_stand_alone_when_labels_matter() {
        let sc = json!({"apiVersion": "networking.istio.io/v1", "kind": "Sidecar",
            "metadata": {"name": "narrow", "namespace": "foo"},
            "spec": {"workloadSelector": {"labels": {"app": "other"}}, "egress": [{"hosts": ["./*"]}]}});
        let a = sidecar_pod("foo", "sleep-1", "sleep", "10.0.0.1");
        let mut b = sidecar_pod("foo", "curl-1", "curl", "10.0.0.3");
        b.controller = None;
        let m = MeshBuilder::new()
            .target(httpbin())
            .pod(httpbin_pod())
            .pod(a.clone())
            .pod(b.clone())
            .proxy(proxy(&a, ProxyRole::Client))
            .proxy(proxy(&b, ProxyRole::Client))
            .object(sc)
            .build();
        let tr = m.target_routes(&m.target_ports()[0].0.clone());
        let foo = tr
            .callers
            .iter()
            .find(|c| c.pod.as_ref() == Some(&a.key))
            .expect("sleep stands for its class");
        assert!(foo.label_dependent);
        assert_eq!(foo.proxies, vec!["foo/sleep-1".to_string()]);
        let own = tr
            .callers
            .iter()
            .find(|c| c.pod.as_ref() == Some(&b.key))
            .expect("curl is a caller of its own: a Sidecar selects by labels in foo");
        assert!(matches!(own.found[0], CallerSource::Client { .. }));
    }

    #[test]
    fn gateways_routing_to_the_target_are_callers() {
        let with_pod = MeshBuilder::new()
            .target(httpbin())
            .pod(httpbin_pod())
            .pod(gw_pod())
            .object(gateway())
            .object(edge_vs())
            .build();
        let tr = with_pod.target_routes(&with_pod.target_ports()[0].0.clone());
        assert_eq!(tr.gateways.len(), 1);
        let g = &tr.gateways[0];
        assert_eq!(g.gateway, "foo/web");
        assert_eq!(g.pod, Some(PodKey::new("istio-system", "ingress-1")));
        assert_eq!(g.paths.len(), 1);
        assert_eq!(g.paths[0].host, "shop.example.com");
        assert_eq!(g.paths[0].vs.as_deref(), Some("foo/edge"));

        // No pod in the snapshot: its selector in its namespace stands in…
        let stand_in = MeshBuilder::new()
            .target(httpbin())
            .pod(httpbin_pod())
            .object(gateway())
            .object(edge_vs())
            .build();
        let tr = stand_in.target_routes(&stand_in.target_ports()[0].0.clone());
        assert_eq!(tr.gateways[0].pod, None);
        assert_eq!(tr.gateways[0].namespace, "foo");
        assert!(tr.gateways[0]
            .name()
            .contains("no pod of it in the snapshot"));

        // …unless its pods were listed and there are none: nothing runs it.
        let mut b = MeshBuilder::new()
            .target(httpbin())
            .pod(httpbin_pod())
            .object(gateway())
            .object(edge_vs())
            .looked_up(&[], &[]);
        b = b.gateway_pods_listed("foo/web");
        let none = b.build();
        let tr = none.target_routes(&none.target_ports()[0].0.clone());
        assert!(tr.gateways.is_empty(), "{:#?}", tr.gateways);

        // A gateway the snapshot does not have.
        let missing = MeshBuilder::new()
            .target(httpbin())
            .pod(httpbin_pod())
            .object(edge_vs())
            .build();
        let tr = missing.target_routes(&missing.target_ports()[0].0.clone());
        assert_eq!(tr.missing_gateways.len(), 1);
        assert_eq!(tr.missing_gateways[0].gateway, "foo/web");
    }
}
