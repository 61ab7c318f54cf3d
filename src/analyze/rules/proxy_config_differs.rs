//! Cause `PROXY_CONFIG_DIFFERS` (rule; declared in the catalog): the rule the
//! API says applies is not the one the client's cluster was built from.
//!
//! istiod stamps each outbound cluster with the DestinationRule that shaped
//! it (`metadata.filter_metadata.istio.config`, util.go
//! `BuildConfigInfoMetadata`; `istioctl x describe` reads the same field).
//! When it names a rule other than the model's lookup selects, the proxy has
//! not received the current config (push pending or rejected) or the tool
//! cannot see everything istiod sees (RBAC, exportTo). A cluster naming a
//! rule while the API shows none for the host is the same disagreement: the
//! rule was deleted since, or the tool may not see it (a refused list is
//! named).

use super::tls_paths::callers;
use crate::analyze::catalog::Cause;
use crate::analyze::confidence::{Confidence, Weight};
use crate::analyze::finding::{Evidence, Finding, SourceRef};
use crate::model::decisions::outbound_cluster_name;
use crate::model::Mesh;

pub fn check(mesh: &Mesh) -> Vec<Finding> {
    let mut out = client_side(mesh);
    out.extend(server_side(mesh));
    out
}

/// A server sidecar whose inbound listener accepts another mode than the
/// policies the API shows decide (issue 8: Istio 1.5, no policy: the
/// explanation said PERMISSIVE while the proxy ran DISABLE, and nothing
/// said so). The same two reasons as a client's: a push pending or
/// rejected, or policies the tool cannot see (a refused list is named).
/// The analysis already believes the listener ([`ServerSide::mode`]); this
/// says that config and proxy disagree, so config-based text may not hold.
///
/// [`ServerSide::mode`]: crate::model::decisions::ServerSide::mode
fn server_side(mesh: &Mesh) -> Vec<Finding> {
    let mut out = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for (svc, port) in mesh.target_ports() {
        for pod in mesh.backing_pods(svc) {
            let server = mesh.server_side(svc, port, pod);
            let (Some(observed), Some(policy)) = (&server.observed, &server.policy) else {
                continue;
            };
            let runs = observed.as_peer_auth_mode();
            if !server.sidecar || runs == policy.mode {
                continue;
            }
            if !seen.insert((pod.key.clone(), server.port.number)) {
                continue;
            }
            let label = mesh
                .proxy_of(&pod.key)
                .map_or_else(|| pod.key.to_string(), |p| p.label.clone());
            let hidden = ["peerauthentications", "policies", "meshpolicies"]
                .iter()
                .any(|r| mesh.list_forbidden(r, &pod.key.namespace));
            let api_says = if hidden {
                format!(
                    "the policies the tool could read decide {} (some authentication policies could not be listed: RBAC)",
                    policy.mode
                )
            } else {
                format!("the policies in the API decide {}", policy.explain())
            };
            out.push(
                Finding::new(
                    Cause::ProxyConfigDiffers,
                    format!("{}:{} at {label}", svc.fqdn, port.number),
                    format!(
                        "{label}'s sidecar accepts {runs} on port {} ({}), but {api_says}",
                        server.port.number, observed.source_listener
                    ),
                    &Confidence::of(&[Weight::ProxyRunsOtherRule]),
                )
                .explain([
                    "The proxy has not received the current config yet (istiod push pending or rejected), or the policies the tool could read are not all istiod sees (RBAC), or this Istio release decides differently from what the tool models.".to_string(),
                    "What the listener accepts is what callers meet: the other findings use it. Check `istioctl proxy-status` and `istioctl x describe pod` for this pod.".to_string(),
                ])
                .evidence([Evidence::new(
                    SourceRef::ConfigDump(label.clone()),
                    format!(
                        "{} on port {}: accepts mTLS {}, plaintext {}",
                        observed.source_listener,
                        server.port.number,
                        observed.accepts_mtls,
                        observed.accepts_plaintext
                    ),
                )]),
            );
        }
    }
    out
}

fn client_side(mesh: &Mesh) -> Vec<Finding> {
    let mut out = Vec::new();
    for (svc, port) in mesh.target_ports() {
        if mesh.backing_pods(svc).next().is_none() {
            continue;
        }
        let cluster_name = outbound_cluster_name(port.number, &svc.fqdn);
        for caller in callers(mesh, svc) {
            let Some(c) = caller.proxy.and_then(|p| p.cluster(&cluster_name)) else {
                continue;
            };
            let lookup = mesh.destination_rule_lookup(&caller.client, svc);
            let Some((ns, name)) = &c.istio_config_ref else {
                continue;
            };
            let api_says = match lookup.selection.as_ref() {
                Some(sel)
                    if sel
                        .rules
                        .iter()
                        .any(|r| &r.meta.namespace == ns && &r.meta.name == name) =>
                {
                    continue;
                }
                Some(sel) => format!(
                    "the API says {} applies",
                    sel.rules
                        .iter()
                        .map(|r| r.key())
                        .collect::<Vec<_>>()
                        .join(" + ")
                ),
                // The proxy names a rule the API did not show: deleted since
                // (a push pending or refused) or hidden from the tool.
                None if mesh.list_forbidden("destinationrules", ns) => format!(
                    "the tool may not list DestinationRules in {ns} (RBAC), so it could not see it"
                ),
                None => "the API shows no DestinationRule for this host".to_string(),
            };
            out.push(
                Finding::new(
                    Cause::ProxyConfigDiffers,
                    format!("{}:{} from {}{}", svc.fqdn, port.number, caller.label, caller.replicas),
                    format!(
                        "{}'s sidecar built {cluster_name} from {ns}/{name}, but {api_says}",
                        caller.label
                    ),
                    &Confidence::of(&[Weight::ProxyRunsOtherRule]),
                )
                .explain([
                    "The proxy has not received the current config yet (istiod push pending or rejected), or the objects the tool could read are not all istiod sees (RBAC, exportTo).".to_string(),
                    "Check `istioctl proxy-status` for this pod; findings based on config may not match what the proxy does.".to_string(),
                ])
                .evidence([Evidence::new(
                    SourceRef::ConfigDump(caller.label.clone()),
                    format!(
                        "cluster {} metadata istio.config = {}",
                        c.name,
                        c.istio_config.as_deref().unwrap_or("-")
                    ),
                )]),
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envoy::config_dump::ClientTlsConfig;
    use crate::model::builder::*;
    use crate::snapshot::ProxyRole;

    fn client_built_from(rule: Option<(&str, &str)>) -> crate::model::Proxy {
        let mut c = cluster(
            8000,
            "httpbin.foo.svc.cluster.local",
            ClientTlsConfig::Plaintext,
        );
        if let Some((ns, name)) = rule {
            c.istio_config = Some(format!(
                "/apis/networking.istio.io/v1/namespaces/{ns}/destination-rule/{name}"
            ));
            c.istio_config_ref = Some((ns.into(), name.into()));
        }
        proxy(&sleep_pod(), ProxyRole::Client).with_cluster(c)
    }

    fn mesh(rule_in_api: bool, built_from: Option<(&str, &str)>) -> crate::model::Mesh {
        let mut b = MeshBuilder::new()
            .target(httpbin())
            .pod(httpbin_pod())
            .pod(sleep_pod())
            .proxy(client_built_from(built_from));
        if rule_in_api {
            b = b.object(dr("foo", "httpbin", "httpbin", tls("ISTIO_MUTUAL")));
        }
        b.build()
    }

    #[test]
    fn fires_and_near_misses() {
        let cases = [
            (
                "the cluster was built from a rule the API no longer selects",
                mesh(true, Some(("foo", "httpbin-old"))),
                true,
            ),
            (
                "near miss: built from the rule the API selects",
                mesh(true, Some(("foo", "httpbin"))),
                false,
            ),
            (
                "near miss: the cluster names no rule",
                mesh(true, None),
                false,
            ),
            (
                "the cluster names a rule the API does not show (deleted, or hidden from the tool)",
                mesh(false, Some(("foo", "httpbin"))),
                true,
            ),
            (
                "near miss: no rule in the API and none named by the cluster",
                mesh(false, None),
                false,
            ),
        ];
        for (name, m, fires) in cases {
            let f = check(&m);
            assert_eq!(!f.is_empty(), fires, "{name}: {f:#?}");
        }
        let f = &check(&mesh(true, Some(("foo", "httpbin-old"))))[0];
        assert!(
            f.claim
                .contains("from foo/httpbin-old, but the API says foo/httpbin applies"),
            "{}",
            f.claim
        );
        assert_eq!(f.confidence, 70);
        assert!(f.fixes.is_none());
        let f = &check(&mesh(false, Some(("foo", "httpbin"))))[0];
        assert!(
            f.claim
                .ends_with("from foo/httpbin, but the API shows no DestinationRule for this host"),
            "{}",
            f.claim
        );
    }

    fn server_mesh(policy: Option<&str>, accepts: (bool, bool)) -> crate::model::Mesh {
        let mut b = MeshBuilder::new()
            .target(httpbin())
            .pod(httpbin_pod())
            .pod(sleep_pod())
            .proxy(
                proxy(&httpbin_pod(), ProxyRole::Server)
                    .with_inbound(8080, inbound(accepts.0, accepts.1)),
            );
        if let Some(mode) = policy {
            b = b.object(pa("foo", "default", mode, None));
        }
        b.build()
    }

    #[test]
    fn a_server_listener_that_disagrees_with_the_policies() {
        let f = check(&server_mesh(Some("STRICT"), (true, true)));
        assert_eq!(f.len(), 1, "{f:#?}");
        assert!(
            f[0].claim.contains("accepts PERMISSIVE on port 8080")
                && f[0].claim.contains("the policies in the API decide STRICT"),
            "{}",
            f[0].claim
        );
        // Near misses: the listener runs what the policies decide.
        assert!(check(&server_mesh(Some("STRICT"), (true, false))).is_empty());
        assert!(check(&server_mesh(Some("PERMISSIVE"), (true, true))).is_empty());
    }
}
