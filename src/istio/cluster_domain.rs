//! The cluster's DNS domain (`cluster.local` unless the cluster says
//! otherwise), read from what Istio itself was told: the one place that
//! knows where a domain is written.
//!
//! Place in the flow: a pure helper (istio/). collect records the domain in
//! the snapshot's resolved target (from the server pods, else their
//! sidecars' `/server_info`); the model derives it for snapshots that have
//! none, with the same functions, plus what the proxies' dumps say.
//!
//! Sources: istio/istio
//! `manifests/charts/istio-control/istio-discovery/files/injection-template.yaml`
//! (`--domain $(POD_NAMESPACE).svc.{{ .Values.global.proxy.clusterDomain }}`
//! on the `istio-proxy` container), `pkg/model/proxy.go` (the node id
//! `TYPE~IP~POD.NAMESPACE~NAMESPACE.svc.DOMAIN`, `ParseServiceNodeWithMetadata`),
//! `pilot/pkg/model/service.go` `BuildSubsetKey` (`outbound|port|subset|host`).

use serde_json::Value;

use super::sidecar::sidecar_container;

/// Kubernetes' default cluster domain.
pub use super::host::DEFAULT_DOMAIN_SUFFIX as DEFAULT_DOMAIN;

/// A DNS domain as Kubernetes accepts one (lowercase DNS-1123 labels).
fn is_domain(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

/// What follows `.svc.` in `NS.svc.DOMAIN`, when it is a domain.
fn domain_after_svc(s: &str) -> Option<String> {
    let (_, domain) = s.split_once(".svc.")?;
    let domain = domain.trim_end_matches('.');
    is_domain(domain).then(|| domain.to_string())
}

/// The domain the pod's `istio-proxy` container (classic or native) was
/// started with: `--domain NS.svc.DOMAIN` or `--domain=…`.
pub fn domain_from_pod(pod: &Value) -> Option<String> {
    let (c, _) = sidecar_container(pod)?;
    let args: Vec<&str> = c
        .get("args")
        .and_then(Value::as_array)?
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let value = args.iter().enumerate().find_map(|(i, a)| {
        if *a == "--domain" {
            args.get(i + 1).copied()
        } else {
            a.strip_prefix("--domain=")
        }
    })?;
    domain_after_svc(value)
}

/// The domain in an Istio node id (`sidecar~10.0.0.4~httpbin-1.foo~foo.svc.cluster.local`).
pub fn domain_of_node_id(node_id: &str) -> Option<String> {
    domain_after_svc(node_id.split('~').nth(3)?)
}

/// The domain in a sidecar's `/server_info` (`node.id`).
pub fn domain_from_server_info(server_info: &Value) -> Option<String> {
    domain_of_node_id(server_info.pointer("/node/id")?.as_str()?)
}

/// `NAME.NS.svc.DOMAIN` → `DOMAIN`, when `(NS, NAME)` is a Service `known`
/// accepts (a cluster name alone could be any ServiceEntry host).
pub fn domain_of_service_host(host: &str, known: impl Fn(&str, &str) -> bool) -> Option<String> {
    let (name, rest) = host.split_once('.')?;
    let (ns, rest) = rest.split_once('.')?;
    let domain = rest.strip_prefix("svc.")?;
    (is_domain(domain) && known(ns, name)).then(|| domain.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn from_the_sidecars_arguments() {
        let pod = |args: Value| json!({"spec": {"containers": [{"name": "app"}, {"name": "istio-proxy", "args": args}]}});
        let p = pod(json!([
            "proxy",
            "sidecar",
            "--domain",
            "$(POD_NAMESPACE).svc.corp.example",
            "--proxyLogLevel=warning"
        ]));
        assert_eq!(domain_from_pod(&p).as_deref(), Some("corp.example"));
        let p = pod(json!([
            "proxy",
            "sidecar",
            "--domain=foo.svc.cluster.local"
        ]));
        assert_eq!(domain_from_pod(&p).as_deref(), Some("cluster.local"));
        assert_eq!(domain_from_pod(&pod(json!(["proxy", "sidecar"]))), None);
        assert_eq!(
            domain_from_pod(&pod(json!(["--domain", "foo.svc.bad/../x"]))),
            None,
            "not a domain"
        );
        let native = json!({"spec": {"containers": [{"name": "app"}], "initContainers": [
            {"name": "istio-proxy", "restartPolicy": "Always", "args": ["--domain", "x.svc.mesh.internal"]}]}});
        assert_eq!(domain_from_pod(&native).as_deref(), Some("mesh.internal"));
    }

    #[test]
    fn from_node_ids_and_cluster_names() {
        let si = json!({"node": {"id": "sidecar~10.0.0.4~httpbin-1.foo~foo.svc.cluster.local"}});
        assert_eq!(
            domain_from_server_info(&si).as_deref(),
            Some("cluster.local")
        );
        assert_eq!(
            domain_of_node_id("sidecar~10.0.0.1~a.b~b.svc.corp.example").as_deref(),
            Some("corp.example")
        );
        assert_eq!(domain_of_node_id("router~10.0.0.1~gw.istio-system~"), None);
        assert_eq!(
            domain_from_server_info(&json!({"node": {"id": "router~x"}})),
            None
        );
        let known = |ns: &str, name: &str| (ns, name) == ("foo", "httpbin");
        assert_eq!(
            domain_of_service_host("httpbin.foo.svc.corp.example", known).as_deref(),
            Some("corp.example")
        );
        assert_eq!(
            domain_of_service_host("other.foo.svc.corp.example", known),
            None
        );
        assert_eq!(domain_of_service_host("httpbin.foo.svc.", known), None);
    }
}
