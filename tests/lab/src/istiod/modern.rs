//! Release switches applied to a sidecar's built resources as a whole, so
//! the per-resource builders stay as they are: what changed in 1.10–1.29
//! that touches several builders at once. Each rule names its source
//! (istio/istio at the tag given).

use super::services::Protocol;
use super::Ctx;
use serde_json::{json, Value};

/// The name the inbound passthrough cluster had before 1.23.
const OLD_PASSTHROUGH: &str = "InboundPassthroughClusterIpv4";

/// Apply every switch.
pub fn apply(ctx: &Ctx, clusters: &mut [Value], routes: &mut [Value]) {
    // The 1.23 passthrough rename is built in (inbound_chains::passthrough_cluster).
    for c in clusters.iter_mut() {
        inbound_bind(ctx, c);
        if !ctx.version.track_remaining() {
            for t in c["circuit_breakers"]["thresholds"]
                .as_array_mut()
                .into_iter()
                .flatten()
            {
                if let Some(m) = t.as_object_mut() {
                    m.remove("track_remaining");
                }
            }
        }
    }
    for r in routes.iter_mut() {
        inbound_retries(ctx, r);
        absolute_fqdn(ctx, r);
    }
}

/// The source address of the sidecar's connections to its own app: from
/// 1.10 inbound clusters bind 127.0.0.6 (`InboundPassthroughBindIpv4`;
/// istio/istio 1.10.0 `cluster_builder.go` `buildInboundClusterForPortOrUDS`:
/// "iptables will redirect our own traffic to localhost back to us if we do
/// not use the magic upstream bind config"); before, they connected to
/// 127.0.0.1 from 127.0.0.1. The lab binds the same addresses, so apps and
/// `UPSTREAM_LOCAL_ADDRESS` in server logs show what a pod shows, and no
/// pod IP can be mistaken for them.
fn inbound_bind(ctx: &Ctx, c: &mut Value) {
    let name = c["name"].as_str().unwrap_or("");
    let inbound = name.starts_with("inbound|")
        || name == OLD_PASSTHROUGH
        || name == "InboundPassthroughCluster";
    if !inbound {
        return;
    }
    let source = if ctx.version.inbound_to_pod_ip() {
        "127.0.0.6"
    } else {
        "127.0.0.1"
    };
    c["upstream_bind_config"] = json!({"source_address": {"address": source, "port_value": 0}});
}

/// The default inbound route retries `reset-before-request` twice from 1.24
/// (see `IstioVersion::inbound_retry_policy`).
fn inbound_retries(ctx: &Ctx, rc: &mut Value) {
    let name = rc["name"].as_str().unwrap_or("");
    let Some(port) = name
        .strip_prefix("inbound|")
        .and_then(|r| r.split('|').next())
        .and_then(|p| p.parse::<u16>().ok())
    else {
        return;
    };
    // Before 1.10 the route name carries the service port; match either.
    let grpc = ctx
        .inbound_ports
        .iter()
        .find(|p| {
            p.port == port
                || p.service
                    .as_deref()
                    .is_some_and(|s| s.ends_with(&format!(":{port}")))
        })
        .is_some_and(|p| p.protocol == Protocol::Grpc);
    let Some(policy) = ctx.version.inbound_retry_policy(grpc) else {
        return;
    };
    for vh in rc["virtual_hosts"].as_array_mut().into_iter().flatten() {
        for r in vh["routes"].as_array_mut().into_iter().flatten() {
            if r["name"] == "default" && r["route"].is_object() {
                r["route"]["retry_policy"] = policy.clone();
            }
        }
    }
}

/// From 1.27 outbound virtual hosts also match `<fqdn>.` and `<fqdn>.:<port>`
/// right after the FQDN pair (`GenerateAltVirtualHosts`).
fn absolute_fqdn(ctx: &Ctx, rc: &mut Value) {
    if !ctx.version.absolute_fqdn_domains() {
        return;
    }
    let Ok(port) = rc["name"].as_str().unwrap_or("").parse::<u16>() else {
        return;
    };
    for vh in rc["virtual_hosts"].as_array_mut().into_iter().flatten() {
        let Some(host) = vh["name"]
            .as_str()
            .and_then(|n| n.strip_suffix(&format!(":{port}")))
            .map(str::to_string)
        else {
            continue;
        };
        if host.parse::<std::net::IpAddr>().is_ok() || host.contains('*') {
            continue;
        }
        let Some(domains) = vh["domains"].as_array_mut() else {
            continue;
        };
        let at = domains
            .iter()
            .position(|d| *d == json!(format!("{host}:{port}")))
            .map(|i| i + 1)
            .unwrap_or(domains.len());
        let abs = [json!(format!("{host}.")), json!(format!("{host}.:{port}"))];
        if !domains.contains(&abs[0]) {
            domains.splice(at..at, abs);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::istiod::{render_sidecar, SidecarXds, World};
    use crate::pki::Pki;

    /// httpbin (sidecar, port 8080 behind Service httpbin:8000) in `foo`.
    fn render(version: &str) -> SidecarXds {
        let pod = json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "httpbin-1", "namespace": "foo", "labels": {"app": "httpbin", "security.istio.io/tlsMode": "istio"}},
            "spec": {"serviceAccountName": "httpbin", "containers": [
                {"name": "httpbin", "ports": [{"containerPort": 8080}]}, {"name": "istio-proxy"}]},
            "status": {"podIP": "127.10.0.8"}});
        let w = World::new(vec![
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "istio", "namespace": "istio-system",
                    "labels": {"lab.mesh503.io/istio-version": version}}, "data": {"mesh": ""}}),
            pod.clone(),
            json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "httpbin", "namespace": "foo"},
                    "spec": {"selector": {"app": "httpbin"}, "ports": [{"name": "http", "port": 8000, "targetPort": 8080}]}}),
        ]);
        render_sidecar(&w, &pod, &Pki::new().unwrap()).unwrap()
    }

    fn named<'a>(list: &'a [Value], name: &str) -> Option<&'a Value> {
        list.iter().find(|v| v["name"] == name)
    }

    #[test]
    fn switches_show_in_rendered_config() {
        let old = render("1.22");
        let new = render("1.31");
        // 1.23: InboundPassthroughCluster, in the cluster and the catch-all chains.
        assert!(named(&old.clusters, OLD_PASSTHROUGH).is_some());
        assert!(named(&new.clusters, OLD_PASSTHROUGH).is_none());
        assert!(named(&new.clusters, "InboundPassthroughCluster").is_some());
        let inbound = named(&new.listeners, "virtualInbound").unwrap().to_string();
        assert!(
            inbound.contains("\"InboundPassthroughCluster\"") && !inbound.contains(OLD_PASSTHROUGH)
        );
        // 1.10+: the app is reached from 127.0.0.6.
        let c = named(&new.clusters, "inbound|8080||").unwrap();
        assert_eq!(
            c["upstream_bind_config"]["source_address"]["address"],
            "127.0.0.6"
        );
        // 1.24: inbound retries; 1.22: none.
        let route = |x: &SidecarXds| {
            named(&x.routes, "inbound|8080||").unwrap()["virtual_hosts"][0]["routes"][0]["route"]
                .clone()
        };
        assert_eq!(
            route(&new)["retry_policy"]["retry_on"],
            "reset-before-request"
        );
        assert!(route(&old).get("retry_policy").is_none());
        // 1.29: no track_remaining on default thresholds.
        let t = |x: &SidecarXds| {
            named(&x.clusters, "inbound|8080||").unwrap()["circuit_breakers"]["thresholds"][0]
                .clone()
        };
        assert_eq!(t(&old)["track_remaining"], true);
        assert!(t(&new).get("track_remaining").is_none());
        // 1.27: absolute FQDN domains right after the FQDN pair.
        let doms = |x: &SidecarXds| {
            named(&x.routes, "8000").unwrap()["virtual_hosts"][0]["domains"].clone()
        };
        assert_eq!(doms(&new)[2], "httpbin.foo.svc.cluster.local.");
        assert_eq!(doms(&new)[3], "httpbin.foo.svc.cluster.local.:8000");
        assert!(!doms(&old).to_string().contains("local.\""));
    }

    #[test]
    fn before_1_10_the_app_is_reached_from_127_0_0_1() {
        let x = render("1.9");
        let c = x
            .clusters
            .iter()
            .find(|c| c["name"].as_str().unwrap().starts_with("inbound|8000|"))
            .unwrap();
        assert_eq!(
            c["upstream_bind_config"]["source_address"]["address"],
            "127.0.0.1"
        );
    }
}
