//! Collect stage for `scan [-n NS | -A]`: config only, for every Service at
//! once. No sidecar is read (no port-forward, no log). Each kind is listed
//! once for the scope — cluster-wide with `-A`, else in the namespace —
//! never per Service: Services, EndpointSlices (core Endpoints when the
//! cluster serves no EndpointSlices), Pods, plus what every collection
//! reads (Istio config cluster-wide, namespaces, the mesh ConfigMap).
//!
//! The snapshot's `resolved` target names no Service (the analysis picks
//! each in turn); its route lookups vouch for every Service listed (their
//! pods and endpoints were listed with them), for Services routes name
//! outside the scope (looked up by name, bounded as for `diagnose`), and for
//! the Gateways whose pods were listed.

use std::collections::BTreeSet;

use super::api::Collection;
use super::error::CollectError;
use super::objects;
use super::resolve::Resolved;
use super::{CollectOptions, Run, Session};
use crate::istio::cluster_domain::{domain_from_pod, DEFAULT_DOMAIN};
use crate::snapshot::{ObjectRef, ResolvedTarget, Snapshot};

/// The target text of a scan snapshot: `scan -A` or `scan -n NS`.
pub fn scan_target_text(all_namespaces: bool, namespace: &str) -> String {
    if all_namespaces {
        "scan -A".to_string()
    } else {
        format!("scan -n {namespace}")
    }
}

/// Lists what a config-only scan of the namespace (or all, `-A`) needs.
pub async fn collect_for_scan(
    session: &Session,
    opts: &CollectOptions,
    progress: &dyn Fn(&str),
) -> Result<Snapshot, CollectError> {
    let all = opts.all_namespaces;
    let ns = session.namespace.clone();
    let mut run = Run::new(session, opts, progress, scan_target_text(all, &ns));
    run.preflight().await?;
    let scope = (!all).then_some(ns.as_str());
    let where_ = scope.map_or("(all namespaces)".to_string(), |n| format!("in {n}"));
    let services = run
        .list_or_gap(
            &format!("services {where_}"),
            Collection::core("services", "Service", scope),
            None,
            true,
        )
        .await?
        .unwrap_or_default();
    let slices = Collection::new(
        "discovery.k8s.io",
        "v1",
        "endpointslices",
        "EndpointSlice",
        scope,
    );
    let slices = run
        .list_or_gap(&format!("endpointslices {where_}"), slices, None, false)
        .await?;
    let endpoints = match slices {
        Some(s) => s,
        None => run
            .list_or_gap(
                &format!("endpoints {where_}"),
                Collection::core("endpoints", "Endpoints", scope),
                None,
                true,
            )
            .await?
            .unwrap_or_default(),
    };
    let pods = run.pods_in(scope.unwrap_or("")).await?.unwrap_or_default();
    let domain = pods
        .iter()
        .find_map(domain_from_pod)
        .unwrap_or_else(|| DEFAULT_DOMAIN.to_string());
    let mut wanted: BTreeSet<String> = services
        .iter()
        .map(|s| objects::namespace(s).to_string())
        .collect();
    wanted.insert(ns.clone());
    wanted.insert(opts.istio_namespace.clone());
    for o in endpoints.into_iter().chain(pods) {
        run.add_object(o);
    }
    for s in &services {
        run.add_object(s.clone());
    }
    run.namespaces(&wanted).await?;
    run.mesh_config().await?;
    run.list_istio_fallback(&wanted).await?;
    let resolved = Resolved {
        namespace: ns.clone(),
        services: services.clone(),
        ..Resolved::default()
    };
    let mut routes = run.route_lookups(&resolved, &domain).await?;
    routes.found.extend(services.iter().map(|s| ObjectRef {
        namespace: objects::namespace(s).to_string(),
        name: objects::name(s).to_string(),
    }));
    if all {
        // Every pod was listed: every Gateway's pods with them.
        for g in run.snap.objects.iter().filter(|o| o["kind"] == "Gateway") {
            let key = format!("{}/{}", objects::namespace(g), objects::name(g));
            if !routes.gateway_pods_listed.contains(&key) {
                routes.gateway_pods_listed.push(key);
            }
        }
    }
    run.snap.resolved = Some(ResolvedTarget {
        namespace: ns,
        services: vec![],
        server_pods: vec![],
        port: None,
        cluster_domain: domain,
        cluster_domain_source: "--domain of a listed pod's istio-proxy, else the default"
            .to_string(),
        missing: std::mem::take(&mut run.missing),
        routes: Some(routes),
        callers: vec![],
    });
    run.snap.redact();
    Ok(run.snap)
}
