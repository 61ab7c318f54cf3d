//! Cause `NO_HEALTHY_UPSTREAM` (rule; declared in the catalog): the client
//! sidecar has no endpoint it may send to.
//!
//! Envoy answers `503 UH` (`no_healthy_upstream`) when a cluster has no host
//! or every host is out of load balancing. Outlier detection ejects hosts
//! (`/clusters` `health_flags::/failed_outlier_check`, host_utility.cc), and
//! Istio sets the panic threshold to `minHealthPercent` (default 0) when
//! `outlierDetection` is configured (cluster_traffic_policy.go
//! `applyOutlierDetection`), so Envoy never falls back to ejected hosts: every
//! host ejected is a warning (ejection follows other errors). A cluster with
//! no host, or a Service with no ready endpoint, is an error.

use super::common::{client_503s, sample_line, with_flag};
use crate::analyze::catalog::Cause;
use crate::analyze::confidence::{Confidence, Weight};
use crate::analyze::finding::{Evidence, Finding, Fix, Severity, SourceRef};
use crate::analyze::fix::FixKind;
use crate::envoy::clusters::ClusterStatus;
use crate::model::decisions::outbound_cluster_name;
use crate::model::{ClientGroup, Mesh, Service, ServicePort};

pub fn check(mesh: &Mesh) -> Vec<Finding> {
    let mut out = Vec::new();
    for (svc, port) in mesh.target_ports() {
        for g in mesh.client_groups() {
            out.extend(one(mesh, svc, port, &g));
        }
    }
    out
}

/// Clusters the client's routes send to that have no endpoint by config
/// (a subset selecting no ready pod, a Service without ready endpoint):
/// `SUBSET_SELECTS_NO_PODS` and `SERVICE_WITHOUT_ENDPOINTS` explain their
/// `UH`, not stale config.
fn empty_by_config(mesh: &Mesh, svc: &Service, port: &ServicePort, g: &ClientGroup) -> Vec<String> {
    let c = g.client();
    let view = mesh.routing().routes_for(
        crate::istio::routing::Client {
            namespace: &c.namespace,
            labels: &c.labels,
        },
        &svc.fqdn,
        u32::from(port.number),
    );
    view.routes
        .iter()
        .flat_map(|r| r.destinations.iter())
        .chain(view.default_route.iter())
        .filter(|d| d.status.expected().is_some_and(|x| x.flag == "UH"))
        .map(|d| d.cluster_name.clone())
        .collect()
}

fn one(mesh: &Mesh, svc: &Service, port: &ServicePort, g: &ClientGroup) -> Option<Finding> {
    let p = g.proxy;
    let cluster_name = outbound_cluster_name(port.number, &svc.fqdn);
    let explained = empty_by_config(mesh, svc, port, g);
    let uh: Vec<_> = with_flag(&client_503s(p, port.number, &svc.fqdn), "UH")
        .into_iter()
        .filter(|e| {
            e.upstream_cluster
                .as_ref()
                .is_none_or(|c| !explained.contains(c))
        })
        .collect();
    let status = p.clusters.as_ref().and_then(|c| c.get(&cluster_name));
    let all_ejected =
        status.is_some_and(|s| !s.hosts.is_empty() && s.hosts.iter().all(|h| h.is_ejected()));
    let empty = status.is_some_and(|s| s.hosts.is_empty()) && !explained.contains(&cluster_name);
    if uh.is_empty() && !all_ejected && !empty {
        return None;
    }
    let mut confidence = Confidence::default();
    let mut evidence = Vec::new();
    if !uh.is_empty() {
        confidence.add(Weight::ClientLog);
        evidence.push(Evidence::new(
            SourceRef::AccessLog(p.label.clone()),
            format!(
                "{} answered 503 UH (no healthy upstream); e.g. {}",
                crate::words::counts(uh.len(), "request"),
                sample_line(&uh)
            ),
        ));
    }
    let subject = format!("{}:{} from {}", svc.fqdn, port.number, p.label);
    if let (true, Some(s)) = (all_ejected, status) {
        confidence.add(Weight::HostHealth);
        evidence.push(ejected_evidence(&p.label, &cluster_name, s));
        let od = mesh
            .client_tls(&g.client(), svc, port.number)
            .policy
            .as_ref()
            .and_then(|pol| pol.outlier.clone());
        return Some(
            Finding::new(
                Cause::NoHealthyUpstream,
                subject,
                format!("every endpoint of {}:{} is ejected by outlier detection in {}'s sidecar", svc.fqdn, port.number, p.label),
                &confidence,
            )
            .with_severity(Severity::Warning)
            .explain([
                format!("outlierDetection {} ejects hosts after consecutive errors; with maxEjectionPercent {} every host can be ejected, and Istio sets Envoy's panic threshold to minHealthPercent (default 0), so no traffic is sent until baseEjectionTime passes.",
                    od.as_ref().map(|_| "in the DestinationRule").unwrap_or(""),
                    od.as_ref().and_then(|o| o.max_ejection_percent).map(|p| p.to_string()).unwrap_or_else(|| "100".into())),
                "The ejections are a consequence: look for the errors that caused them (other findings, the server's logs).".into(),
            ])
            .evidence(evidence)
            .fix(Some(Fix::advice(
                FixKind::TuneOutlierDetection,
                format!(
                    "fix the underlying errors; lower maxEjectionPercent (e.g. 50) or raise {} in the DestinationRule's outlierDetection (the field Istio {} reads)",
                    crate::analyze::fix::release::consecutive_errors_field(mesh),
                    mesh.settings.version.map(|v| v.to_string()).unwrap_or_else(|| "(version unknown)".into())
                ),
            ))),
        );
    }
    let ready = mesh.ready_endpoints(&svc.key);
    if empty {
        confidence.add(Weight::HostHealth);
        evidence.push(Evidence::new(
            SourceRef::AdminClusters(p.label.clone()),
            format!("{cluster_name} has no hosts"),
        ));
    }
    confidence.add_if(ready == 0, Weight::ConfigCertain);
    evidence.push(Evidence::new(
        SourceRef::Endpoints(svc.key.clone()),
        crate::words::counts(ready, "ready endpoint"),
    ));
    let why = if ready == 0 {
        format!(
            "Service {} has no ready endpoint: its selector matches no ready pod.",
            svc.key
        )
    } else {
        "The Service has ready endpoints and the routes the sidecar takes lead to clusters that should have them, yet it sees none healthy: stale config or failing health.".to_string()
    };
    let fix = if ready == 0 {
        Fix::advice(
            FixKind::ReadyEndpoints,
            format!(
                "make pods matching {}'s selector ready (kubectl get endpointslices -n {} -l kubernetes.io/service-name={})",
                svc.key.name, svc.key.namespace, svc.key.name
            ),
        )
    } else {
        Fix::advice(
            FixKind::Investigate,
            format!(
                "compare what {} runs with the API (istioctl proxy-status; istioctl proxy-config endpoints {} --cluster \"{cluster_name}\")",
                p.label, p.label
            ),
        )
    };
    Some(
        Finding::new(
            Cause::NoHealthyUpstream,
            subject,
            format!(
                "{}'s sidecar has no healthy endpoint for {}:{}",
                p.label, svc.fqdn, port.number
            ),
            &confidence,
        )
        .explain([why])
        .evidence(evidence)
        .fix(Some(fix)),
    )
}

fn ejected_evidence(label: &str, cluster: &str, s: &ClusterStatus) -> Evidence {
    Evidence::new(
        SourceRef::AdminClusters(label.to_string()),
        format!(
            "{cluster}: {} of {} flagged failed_outlier_check ({})",
            s.ejected_hosts().len(),
            crate::words::counts(s.hosts.len(), "host"),
            s.hosts
                .iter()
                .map(|h| h.address.clone())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::builder::*;
    use crate::model::services::{Endpoint, EndpointSet, EndpointSource};
    use crate::model::ServiceKey;
    use crate::snapshot::ProxyRole;

    const CLUSTER: &str = "outbound|8000||httpbin.foo.svc.cluster.local";
    const V2: &str = "outbound|8000|v2|httpbin.foo.svc.cluster.local";

    fn slice(ready: bool) -> EndpointSet {
        EndpointSet {
            service: ServiceKey::new("foo", "httpbin"),
            source: EndpointSource::Slice("httpbin-x".into()),
            endpoints: vec![Endpoint {
                addresses: vec!["10.0.0.2".into()],
                ready: Some(ready),
                pod: None,
            }],
        }
    }

    fn mesh(client: crate::model::Proxy, ready: bool) -> crate::model::Mesh {
        MeshBuilder::new()
            .target(httpbin())
            .pod(httpbin_pod())
            .pod(sleep_pod())
            .endpoints(slice(ready))
            .proxy(client)
            .build()
    }

    fn client() -> crate::model::Proxy {
        proxy(&sleep_pod(), ProxyRole::Client)
    }

    #[test]
    fn fires_and_near_misses() {
        type Want = Option<(Severity, u8)>;
        let cases: Vec<(&str, crate::model::Mesh, Want)> = vec![
            (
                "every host ejected: a warning",
                mesh(
                    client().with_hosts(CLUSTER, &[("10.0.0.2:8080", &["failed_outlier_check"])]),
                    true,
                ),
                Some((Severity::Warning, 60)),
            ),
            (
                "UH and no ready endpoint: an error",
                mesh(
                    client().with_log(vec![entry(503, "UH", Some(CLUSTER))]),
                    false,
                ),
                Some((Severity::Error, 80)),
            ),
            (
                "no host at all",
                mesh(client().with_hosts(CLUSTER, &[]), false),
                Some((Severity::Error, 99)),
            ),
            (
                "near miss: one of two hosts ejected",
                mesh(
                    client().with_hosts(
                        CLUSTER,
                        &[
                            ("10.0.0.2:8080", &["failed_outlier_check"]),
                            ("10.0.0.3:8080", &[]),
                        ],
                    ),
                    true,
                ),
                None,
            ),
            (
                "near miss: UH towards another service",
                mesh(
                    client().with_log(vec![entry(
                        503,
                        "UH",
                        Some("outbound|80||other.foo.svc.cluster.local"),
                    )]),
                    true,
                ),
                None,
            ),
            (
                "near miss: UH on a subset cluster whose labels select no pod (SUBSET_SELECTS_NO_PODS)",
                {
                    let mut d = dr("foo", "httpbin", "httpbin", None);
                    d["spec"]["subsets"] = serde_json::json!([{"name": "v2", "labels": {"version": "v2"}}]);
                    MeshBuilder::new()
                        .target(httpbin())
                        .pod(httpbin_pod())
                        .pod(sleep_pod())
                        .endpoints(slice(true))
                        .object(d)
                        .object(serde_json::json!({"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
                            "metadata": {"name": "httpbin", "namespace": "foo"},
                            "spec": {"hosts": ["httpbin"], "http": [{"route": [{"destination": {"host": "httpbin", "subset": "v2"}}]}]}}))
                        .proxy(client().with_log(vec![entry(503, "UH", Some(V2))]))
                        .build()
                },
                None,
            ),
            (
                "near miss: healthy hosts",
                mesh(
                    client().with_hosts(CLUSTER, &[("10.0.0.2:8080", &[])]),
                    true,
                ),
                None,
            ),
        ];
        for (name, m, want) in cases {
            let f = check(&m);
            assert_eq!(
                f.first().map(|f| (f.severity, f.confidence)),
                want,
                "{name}: {f:#?}"
            );
        }
    }
}
