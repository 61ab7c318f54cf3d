//! Cause `ROUTE_UNREACHABLE` (rule; declared in the catalog): a route of
//! the VirtualService that applies to the target's host comes after a
//! catch-all route, so no request ever takes it. A warning: the requests
//! are served by the catch-all, which may not be what the author meant.
//!
//! Envoy tries a virtual host's routes in order and takes the first match
//! (`source/common/router/config_impl.cc`); istiod stops emitting routes
//! after a catch-all (`route.go` `BuildHTTPRoutesForVirtualService`,
//! `IsCatchAllRoute`: prefix `/`, regex `.*` or no URI, and no header,
//! query, method, authority or scheme matcher). On gateways same-host
//! VirtualServices are merged with catch-all routes moved last
//! (`SortVHostRoutes`). Decided in [`crate::istio::routing::select`].

use std::collections::BTreeMap;

use super::routes::object;
use crate::analyze::catalog::Cause;
use crate::analyze::confidence::{Confidence, Weight};
use crate::analyze::finding::{Evidence, Finding, Fix, SourceRef};
use crate::analyze::fix::FixKind;
use crate::istio::routing::explain::reachability_text;
use crate::istio::routing::{Reachability, RouteInfo};
use crate::model::Mesh;

/// (host, vs, route) → (text, catch-all vs, catch-all route, who).
type Found = BTreeMap<(String, String, usize), (String, String, usize, Vec<String>)>;

pub fn check(mesh: &Mesh) -> Vec<Finding> {
    let mut found: Found = BTreeMap::new();
    let mut add = |host: &str, r: &RouteInfo, who: String| {
        let Reachability::AfterCatchAll { vs, route } = &r.reachability else {
            return;
        };
        let e = found
            .entry((host.to_string(), r.vs.clone(), r.index))
            .or_insert_with(|| (reachability_text(r), vs.clone(), *route, Vec::new()));
        if !e.3.contains(&who) {
            e.3.push(who);
        }
    };
    for svc in mesh.target_services() {
        let tr = mesh.target_routes(svc);
        for (caller, views) in tr.callers.iter().zip(&tr.views) {
            for (_, view) in views {
                for r in &view.routes {
                    add(&svc.fqdn, r, caller.name());
                }
            }
        }
        for g in &tr.gateways {
            for p in &g.paths {
                for r in &p.view.routes {
                    add(&p.host, r, g.name());
                }
            }
        }
    }
    found
        .into_iter()
        .map(|((host, vs, index), (text, ca_vs, ca_route, who))| {
            let mut evidence = vec![
                Evidence::new(object("VirtualService", &vs), format!("route {index} for {host}")),
                Evidence::new(
                    object("VirtualService", &ca_vs),
                    format!("route {ca_route} matches every request"),
                ),
            ];
            evidence.extend(who.iter().map(|w| Evidence::new(SourceRef::Caller(w.clone()), "takes the catch-all route instead")));
            Finding::new(
                Cause::RouteUnreachable,
                format!("{host}: route {index} of {vs}"),
                format!(
                    "route {index} of VirtualService {vs} is never taken: route {ca_route} of {ca_vs} before it matches every request"
                ),
                &Confidence::of(&[Weight::ConfigAdvisory]),
            )
            .explain([
                format!("{text}."),
                format!("Envoy takes the first matching route; requests for {host} from {} go to the catch-all.", who.join("; ")),
            ])
            .evidence(evidence)
            .fix(Some(Fix::advice(
                FixKind::EditRoute,
                format!("move route {index} of {vs} before route {ca_route} of {ca_vs}, or narrow the catch-all's match"),
            )))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::builder::*;
    use serde_json::{json, Value};

    fn vs(http: Value) -> Value {
        json!({"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
            "metadata": {"name": "httpbin", "namespace": "foo"},
            "spec": {"hosts": ["httpbin"], "http": http}})
    }

    fn mesh(o: Value) -> Mesh {
        MeshBuilder::new()
            .target(httpbin())
            .pod(httpbin_pod())
            .object(o)
            .build()
    }

    #[test]
    fn fires_and_near_misses() {
        let all = json!({"route": [{"destination": {"host": "httpbin"}}]});
        let api = json!({"match": [{"uri": {"prefix": "/api"}}], "route": [{"destination": {"host": "httpbin"}}]});
        let hdr = json!({"match": [{"headers": {"x-user": {"exact": "a"}}}], "route": [{"destination": {"host": "httpbin"}}]});
        let cases = [
            (
                "a route after a catch-all",
                vs(json!([all.clone(), api.clone()])),
                1,
            ),
            (
                "near miss: the specific route first",
                vs(json!([api, all.clone()])),
                0,
            ),
            (
                "near miss: a header match is no catch-all",
                vs(json!([hdr, all])),
                0,
            ),
        ];
        for (name, o, want) in cases {
            let f = check(&mesh(o));
            assert_eq!(f.len(), want, "{name}: {f:#?}");
            if want == 1 {
                assert_eq!(f[0].severity, crate::analyze::finding::Severity::Warning);
                assert!(
                    f[0].claim.contains("route 1 of VirtualService foo/httpbin"),
                    "{}",
                    f[0].claim
                );
            }
        }
    }
}
