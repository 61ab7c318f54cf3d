//! Cause `VIRTUAL_SERVICE_SHADOWED` (rule; declared in the catalog): a
//! VirtualService names the target's host, but another one wins the host
//! for some callers, so its routes never apply to them. A warning: it fails
//! no request by itself (the winner's routes decide), but whoever edits the
//! shadowed one sees no effect.
//!
//! istiod gives a sidecar one virtual host per `host:port`, from the first
//! VirtualService claiming the host in its order — private to the client's
//! namespace, exported to it by name, public; creation time within each —
//! and drops the later ones as duplicate domains (`httproute.go`
//! `BuildSidecarOutboundVirtualHosts`); an exact host beats a wildcard from
//! 1.21 (`sidecar.go` `computeWildcardHostVirtualServiceIndex`). Decided in
//! [`crate::istio::routing::select`]. Gateways merge same-host
//! VirtualServices instead, so nothing is shadowed there.

use std::collections::BTreeMap;

use super::routes::object;
use crate::analyze::catalog::Cause;
use crate::analyze::confidence::{Confidence, Weight};
use crate::analyze::finding::{Evidence, Finding, Fix, SourceRef};
use crate::analyze::fix::FixKind;
use crate::istio::routing::explain::shadow_text;
use crate::istio::routing::VsShadowReason;
use crate::model::{Caller, Mesh};

pub fn check(mesh: &Mesh) -> Vec<Finding> {
    // (host, shadowed VS, winner) → (reason, callers).
    let mut found: BTreeMap<(String, String, String), (VsShadowReason, Vec<Caller>)> =
        BTreeMap::new();
    for svc in mesh.target_services() {
        let tr = mesh.target_routes(svc);
        for (caller, views) in tr.callers.iter().zip(&tr.views) {
            for (_, view) in views {
                for (vs, reason) in &view.shadowed {
                    let winner = match reason {
                        VsShadowReason::EarlierVsWon { winner, .. }
                        | VsShadowReason::LessSpecificHost { winner, .. } => winner.clone(),
                        _ => continue,
                    };
                    let e = found
                        .entry((svc.fqdn.clone(), vs.clone(), winner))
                        .or_insert_with(|| (reason.clone(), Vec::new()));
                    if !e.1.contains(caller) {
                        e.1.push(caller.clone());
                    }
                }
            }
        }
    }
    found
        .into_iter()
        .map(|((host, vs, winner), (reason, callers))| {
            let names: Vec<String> = callers.iter().map(Caller::name).collect();
            let mut evidence = vec![
                Evidence::new(object("VirtualService", &vs), format!("names {host}; does not apply")),
                Evidence::new(object("VirtualService", &winner), format!("wins {host}")),
            ];
            evidence.extend(
                callers
                    .iter()
                    .map(|c| Evidence::new(SourceRef::Caller(c.name()), c.how_found())),
            );
            Finding::new(
                Cause::VirtualServiceShadowed,
                format!("{host}: VirtualService {vs} from {}", names.join("; ")),
                format!(
                    "VirtualService {vs} never applies to {host} for {}: {winner} wins the host",
                    names.join("; ")
                ),
                &Confidence::of(&[Weight::ConfigAdvisory]),
            )
            .explain([
                format!("{}.", shadow_text(&vs, &reason)),
                "Requests follow the winner's routes; edits to the shadowed VirtualService change nothing for these callers.".to_string(),
            ])
            .evidence(evidence)
            .fix(Some(Fix::advice(
                FixKind::EditRoute,
                format!("keep one VirtualService per host: merge the routes of {vs} into {winner}, or delete {vs}"),
            )))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyze::finding::Severity;
    use crate::model::builder::*;
    use serde_json::{json, Value};

    fn vs(name: &str, created: &str, gateways: Option<Value>) -> Value {
        let mut v = json!({"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
            "metadata": {"name": name, "namespace": "foo", "creationTimestamp": created},
            "spec": {"hosts": ["httpbin"], "http": [{"route": [{"destination": {"host": "httpbin"}}]}]}});
        if let Some(g) = gateways {
            v["spec"]["gateways"] = g;
        }
        v
    }

    fn mesh(objects: Vec<Value>) -> Mesh {
        let mut b = MeshBuilder::new().target(httpbin()).pod(httpbin_pod());
        for o in objects {
            b = b.object(o);
        }
        b.build()
    }

    #[test]
    fn fires_and_near_misses() {
        let cases: Vec<(&str, Mesh, usize)> = vec![
            (
                "two VirtualServices for one host: the newer is shadowed",
                mesh(vec![
                    vs("old", "2024-01-01T00:00:00Z", None),
                    vs("new", "2025-01-01T00:00:00Z", None),
                ]),
                1,
            ),
            (
                "near miss: one VirtualService",
                mesh(vec![vs("only", "2024-01-01T00:00:00Z", None)]),
                0,
            ),
            (
                "near miss: the other is bound to a gateway only",
                mesh(vec![
                    vs("mesh", "2024-01-01T00:00:00Z", None),
                    vs("edge", "2023-01-01T00:00:00Z", Some(json!(["gw"]))),
                ]),
                0,
            ),
        ];
        for (name, m, want) in cases {
            let f = check(&m);
            assert_eq!(f.len(), want, "{name}: {f:#?}");
            assert!(f.iter().all(|f| f.severity == Severity::Warning), "{name}");
        }
        let f = &check(&mesh(vec![
            vs("old", "2024-01-01T00:00:00Z", None),
            vs("new", "2025-01-01T00:00:00Z", None),
        ]))[0];
        assert!(
            f.claim.contains("foo/new") && f.claim.contains("foo/old wins"),
            "{}",
            f.claim
        );
    }
}
