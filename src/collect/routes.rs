//! The objects the routes towards the target depend on, beyond the target:
//! every Service a route destination of the VirtualServices for the target
//! names (looked up by name; found ones with their EndpointSlices and
//! pods, absent ones recorded as such), and the pods of the Gateways those
//! VirtualServices bind (listed by the Gateway's selector, all
//! namespaces). Recorded in [`RouteLookups`] so the analysis can tell a
//! Service that does not exist from one that was never read.
//!
//! Which VirtualServices count: those whose hosts name one of the target's
//! Services, or whose routes send to one (a gateway's VirtualService for
//! `shop.example.com` routing to `shop`). Hosts are resolved as istiod
//! resolves them ([`crate::istio::routing::VirtualService`]). Reads are
//! bounded: at most [`MAX_ROUTE_SERVICES`] Services and
//! [`MAX_GATEWAYS`] Gateways; what is left out is a gap.

use std::collections::BTreeSet;

use serde_json::Value;

use super::api::{Collection, Failure};
use super::error::CollectError;
use super::objects;
use super::resolve::Resolved;
use super::Run;
use crate::istio::routing::VirtualService;
use crate::snapshot::{ObjectRef, RouteLookups};

/// Services looked up for routes, at most.
pub const MAX_ROUTE_SERVICES: usize = 20;
/// Gateways whose pods are listed, at most.
pub const MAX_GATEWAYS: usize = 5;

/// What to look up for the routes towards `targets` (FQDNs): Services as
/// `(namespace, name)` and Gateways as `ns/name`.
pub fn route_reads(
    objects: &[Value],
    targets: &[String],
    domain: &str,
) -> (Vec<(String, String)>, Vec<String>) {
    let vss: Vec<VirtualService> = objects
        .iter()
        .filter(|o| {
            o["kind"] == "VirtualService"
                && o["apiVersion"]
                    .as_str()
                    .is_some_and(|a| a.starts_with("networking.istio.io/"))
        })
        .filter_map(|o| VirtualService::from_value(o, domain).ok())
        .collect();
    let have: BTreeSet<(String, String)> = objects
        .iter()
        .filter(|o| o["kind"] == "Service")
        .map(|o| {
            (
                objects::namespace(o).to_string(),
                objects::name(o).to_string(),
            )
        })
        .collect();
    let mut services: Vec<(String, String)> = Vec::new();
    let mut gateways: Vec<String> = Vec::new();
    for vs in &vss {
        let dests: Vec<&str> = vs
            .http
            .iter()
            .flat_map(|r| {
                r.route
                    .iter()
                    .filter_map(|d| d.destination.as_ref())
                    .chain(r.all_mirrors())
            })
            .chain(
                vs.tcp
                    .iter()
                    .chain(&vs.tls)
                    .flat_map(|r| r.route.iter().filter_map(|d| d.destination.as_ref())),
            )
            .map(|d| d.host.as_str())
            .collect();
        let relevant = targets.iter().any(|t| {
            vs.hosts
                .iter()
                .any(|h| crate::istio::host::matches(h, t) || crate::istio::host::matches(t, h))
                || dests.contains(&t.as_str())
        });
        if !relevant {
            continue;
        }
        for h in dests {
            let Some(key) = service_of(h, domain) else {
                continue;
            };
            if !have.contains(&key) && !services.contains(&key) {
                services.push(key);
            }
        }
        for g in vs.gateways.iter().filter(|g| *g != "mesh") {
            if !gateways.contains(g) {
                gateways.push(g.clone());
            }
        }
    }
    (services, gateways)
}

/// `name.ns.svc.<domain>` → `(ns, name)`, valid Kubernetes names only.
fn service_of(host: &str, domain: &str) -> Option<(String, String)> {
    let rest = host.strip_suffix(&format!(".svc.{domain}"))?;
    let (name, ns) = rest.split_once('.')?;
    (crate::target::dns1123_label(ns).is_ok() && crate::target::dns1123_label(name).is_ok())
        .then(|| (ns.to_string(), name.to_string()))
}

impl Run<'_> {
    /// Look up what the routes towards the target name; see the module doc.
    pub(super) async fn route_lookups(
        &mut self,
        r: &Resolved,
        domain: &str,
    ) -> Result<RouteLookups, CollectError> {
        let targets: Vec<String> = r
            .services
            .iter()
            .map(|s| {
                format!(
                    "{}.{}.svc.{domain}",
                    objects::name(s),
                    objects::namespace(s)
                )
            })
            .collect();
        let (services, gateways) = route_reads(&self.snap.objects, &targets, domain);
        let mut out = RouteLookups::default();
        if services.len() > MAX_ROUTE_SERVICES {
            self.gap(
                "services named by routes to the target",
                format!(
                    "only {MAX_ROUTE_SERVICES} of {} were looked up; not read: {}",
                    services.len(),
                    services[MAX_ROUTE_SERVICES..]
                        .iter()
                        .map(|(ns, n)| format!("{ns}/{n}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            );
        }
        for (ns, name) in services.into_iter().take(MAX_ROUTE_SERVICES) {
            self.route_service(&ns, &name, &mut out).await?;
        }
        for g in gateways.into_iter().take(MAX_GATEWAYS) {
            if self.gateway_pods(&g).await? {
                out.gateway_pods_listed.push(g);
            }
        }
        Ok(out)
    }

    /// One Service a route names: found (with endpoints and pods) or absent.
    async fn route_service(
        &mut self,
        ns: &str,
        name: &str,
        out: &mut RouteLookups,
    ) -> Result<(), CollectError> {
        let what = format!("service {ns}/{name} (named by a route to the target)");
        self.say(&format!("reading {what}"));
        let got = match Collection::core("services", "Service", Some(ns)) {
            Ok(c) => self.api.get(&c, name).await,
            Err(e) => Err(e),
        };
        let key = ObjectRef {
            namespace: ns.to_string(),
            name: name.to_string(),
        };
        let svc = match got {
            Ok(v) => v,
            Err(e) => {
                match self.survivable(&format!("reading {what}"), e)? {
                    Failure::NotFound => out.absent.push(key),
                    Failure::Forbidden(t) | Failure::Other(t) => self.gap(format!("get {what}"), t),
                }
                return Ok(());
            }
        };
        self.add_object(svc.clone());
        self.endpoints_of_service(&svc).await?;
        if let Some(sel) = objects::service_selector(&svc) {
            let sel = objects::selector_string(&sel);
            for p in self.pods_by_selector(ns, &sel, false).await? {
                self.add_object(p);
            }
        }
        out.found.push(key);
        Ok(())
    }

    /// The pods a Gateway (`ns/name`) configures, by its selector, in every
    /// namespace; `false` when they could not be listed.
    async fn gateway_pods(&mut self, gateway: &str) -> Result<bool, CollectError> {
        let Some((ns, name)) = gateway.split_once('/') else {
            return Ok(false);
        };
        let Some(gw) = self.snap.objects.iter().find(|o| {
            o["kind"] == "Gateway" && objects::namespace(o) == ns && objects::name(o) == name
        }) else {
            return Ok(false);
        };
        let sel = objects::string_map(gw, "/spec/selector");
        if sel.is_empty() {
            return Ok(false);
        }
        let sel = objects::selector_string(&sel);
        let coll = Collection::core("pods", "Pod", None);
        let what = format!("pods with {sel} (all namespaces; gateway {gateway})");
        match self.list_or_gap(&what, coll, Some(&sel), false).await? {
            Some(pods) => {
                pods.into_iter().for_each(|p| self.add_object(p));
                Ok(true)
            }
            None => Ok(false),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn route_reads_follow_the_virtual_services_for_the_target() {
        let objects = vec![
            json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "httpbin", "namespace": "foo"}}),
            json!({"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
                "metadata": {"name": "split", "namespace": "foo"},
                "spec": {"hosts": ["httpbin"], "http": [{"route": [
                    {"destination": {"host": "httpbin"}, "weight": 90},
                    {"destination": {"host": "httpbin-canary"}, "weight": 10}]}]}}),
            json!({"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
                "metadata": {"name": "edge", "namespace": "foo"},
                "spec": {"hosts": ["shop.example.com"], "gateways": ["web-gateway"],
                         "http": [{"route": [{"destination": {"host": "httpbin.foo.svc.cluster.local"}}]}]}}),
            json!({"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
                "metadata": {"name": "unrelated", "namespace": "bar"},
                "spec": {"hosts": ["other"], "http": [{"route": [{"destination": {"host": "elsewhere"}}]}]}}),
        ];
        let (services, gateways) = route_reads(
            &objects,
            &["httpbin.foo.svc.cluster.local".into()],
            "cluster.local",
        );
        assert_eq!(
            services,
            vec![("foo".to_string(), "httpbin-canary".to_string())]
        );
        assert_eq!(gateways, vec!["foo/web-gateway".to_string()]);
        assert_eq!(
            service_of("a.b.svc.cluster.local", "cluster.local"),
            Some(("b".into(), "a".into()))
        );
        assert_eq!(service_of("a.example.com", "cluster.local"), None);
        assert_eq!(service_of("A_B.c.svc.cluster.local", "cluster.local"), None);
    }
}
