//! A mesh of any size for benchmarks: `mesh503-lab generate --services N`.
//!
//! The scenario is the seed's modern break (as
//! `tests/scenarios/seed-strict-no-automtls.yaml`: STRICT mTLS mesh-wide,
//! `enableAutoMtls: false`, and a DestinationRule for `foo/httpbin` without
//! `tls`, so its clients send plaintext to a STRICT server: `503 UC`) in a
//! mesh of N Services, each with a Deployment and a DestinationRule that
//! sets `ISTIO_MUTUAL` (so every other service is healthy), namespaces of
//! [`SERVICES_PER_NAMESPACE`] services, each with a namespace-wide STRICT
//! PeerAuthentication.
//!
//! Only `foo/sleep`, `foo/httpbin` and (with `--envoys E`) E − 2 other
//! services (one replica each) run a real Envoy; every other pod is injected in the
//! API but annotated `lab.mesh503.io/proxy: "none"` (no Envoy, no app; see
//! tests/lab/README.md). Every real Envoy carries all N outbound clusters.

use serde_json::{json, Value};
use std::fmt::Write as _;

/// Generated services per namespace (`mesh-000`, `mesh-001`, …).
pub const SERVICES_PER_NAMESPACE: usize = 50;

/// What to generate.
#[derive(Debug, Clone)]
pub struct MeshSpec {
    /// Services in total, `foo/httpbin` and `foo/sleep` included (≥ 2).
    pub services: usize,
    /// Replicas of each generated service's Deployment.
    pub pods_per_service: usize,
    /// Pods running a real Envoy (≥ 2: `foo/sleep` and `foo/httpbin`).
    pub envoys: usize,
    /// The modelled Istio release (`1.24`).
    pub istio_version: String,
}

impl Default for MeshSpec {
    fn default() -> Self {
        MeshSpec {
            services: 100,
            pods_per_service: 3,
            envoys: 2,
            istio_version: "1.24".into(),
        }
    }
}

impl MeshSpec {
    /// Refuse sizes the generator cannot honour, naming the option.
    pub fn validate(&self) -> anyhow::Result<()> {
        if self.services < 2 {
            anyhow::bail!(
                "--services {}: needs at least 2 (foo/httpbin and foo/sleep)",
                self.services
            );
        }
        if self.services > 100_000 {
            anyhow::bail!("--services {}: at most 100000", self.services);
        }
        if self.pods_per_service == 0 || self.pods_per_service > 100 {
            anyhow::bail!(
                "--pods-per-service {}: must be 1 to 100",
                self.pods_per_service
            );
        }
        if self.envoys < 2 || self.envoys > self.services {
            anyhow::bail!(
                "--envoys {}: must be 2 (foo/sleep and foo/httpbin) to --services ({})",
                self.envoys,
                self.services
            );
        }
        if crate::istiod::world::parse_version(&self.istio_version).is_none() {
            anyhow::bail!(
                "--istio-version {:?}: expected MAJOR.MINOR such as 1.24",
                self.istio_version
            );
        }
        Ok(())
    }
}

/// The generated services' namespace and name, in order.
pub fn generated_service(i: usize) -> (String, String) {
    (
        format!("mesh-{:03}", i / SERVICES_PER_NAMESPACE),
        format!("svc-{i:05}"),
    )
}

/// The scenario's objects.
pub fn objects(spec: &MeshSpec) -> anyhow::Result<Vec<Value>> {
    spec.validate()?;
    let mut out = vec![
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "istio-system"}}),
        json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "istio", "namespace": "istio-system",
                "labels": {"lab.mesh503.io/istio-version": spec.istio_version}},
            "data": {"mesh": "accessLogFile: /dev/stdout\nenableAutoMtls: false\nrootNamespace: istio-system"}}),
        json!({"apiVersion": "security.istio.io/v1", "kind": "PeerAuthentication",
            "metadata": {"name": "default", "namespace": "istio-system"},
            "spec": {"mtls": {"mode": "STRICT"}}}),
        json!({"apiVersion": "networking.istio.io/v1", "kind": "DestinationRule",
            "metadata": {"name": "default", "namespace": "istio-system"},
            "spec": {"host": "*.local", "trafficPolicy": {"tls": {"mode": "ISTIO_MUTUAL"}}}}),
        namespace("foo"),
    ];
    // The seed's break: a DR for httpbin without tls replaces the mesh-wide one.
    out.push(
        json!({"apiVersion": "networking.istio.io/v1", "kind": "DestinationRule",
        "metadata": {"name": "httpbin", "namespace": "foo"},
        "spec": {"host": "httpbin", "trafficPolicy": {
            "connectionPool": {"tcp": {"maxConnections": 100},
                "http": {"http1MaxPendingRequests": 100, "maxRequestsPerConnection": 10}},
            "outlierDetection": {"consecutive5xxErrors": 5, "interval": "10s",
                "baseEjectionTime": "30s", "maxEjectionPercent": 50}}}}),
    );
    out.extend(workload("foo", "httpbin", 8000, 8080, 1, None));
    out.extend(workload("foo", "sleep", 80, 80, 1, None));
    let generated = spec.services - 2;
    let real_extra = spec.envoys - 2;
    let mut ns_done = String::new();
    for i in 0..generated {
        let (ns, name) = generated_service(i);
        if ns != ns_done {
            out.push(namespace(&ns));
            out.push(
                json!({"apiVersion": "security.istio.io/v1", "kind": "PeerAuthentication",
                "metadata": {"name": "default", "namespace": ns},
                "spec": {"mtls": {"mode": "STRICT"}}}),
            );
            ns_done = ns.clone();
        }
        out.push(
            json!({"apiVersion": "networking.istio.io/v1", "kind": "DestinationRule",
            "metadata": {"name": name, "namespace": ns},
            "spec": {"host": name, "trafficPolicy": {"tls": {"mode": "ISTIO_MUTUAL"},
                "connectionPool": {"tcp": {"maxConnections": 100}}}}}),
        );
        // The first `real_extra` services run one pod with a real Envoy.
        let (proxy, replicas) = if i < real_extra {
            (None, 1)
        } else {
            (Some("none"), spec.pods_per_service)
        };
        out.extend(workload(&ns, &name, 8000, 8080, replicas, proxy));
    }
    Ok(out)
}

fn namespace(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": name, "labels": {"istio-injection": "enabled"}}})
}

/// ServiceAccount, Service and Deployment of one workload.
fn workload(
    ns: &str,
    name: &str,
    port: u16,
    target: u16,
    replicas: usize,
    proxy: Option<&str>,
) -> Vec<Value> {
    let mut template_meta = json!({"labels": {"app": name, "version": "v1"}});
    if let Some(p) = proxy {
        template_meta["annotations"] = json!({"lab.mesh503.io/proxy": p});
    }
    vec![
        json!({"apiVersion": "v1", "kind": "ServiceAccount",
            "metadata": {"name": name, "namespace": ns}}),
        json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": ns, "labels": {"app": name}},
            "spec": {"selector": {"app": name},
                "ports": [{"name": "http", "port": port, "targetPort": target}]}}),
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": ns},
            "spec": {"replicas": replicas,
                "selector": {"matchLabels": {"app": name}},
                "template": {"metadata": template_meta,
                    "spec": {"serviceAccountName": name,
                        "containers": [{"name": name, "image": "docker.io/kennethreitz/httpbin",
                            "ports": [{"containerPort": target}]}]}}}}),
    ]
}

/// The scenario as multi-document YAML, with a header saying what it is.
pub fn to_yaml(spec: &MeshSpec) -> anyhow::Result<String> {
    let objects = objects(spec)?;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# Generated by `mesh503-lab generate --services {} --pods-per-service {} --envoys {} \
         --istio-version {}`.\n# The seed's break (a DestinationRule for foo/httpbin without tls \
         under STRICT mTLS,\n# enableAutoMtls: false) in a mesh of {} services: \
         `curl --from foo/sleep http://httpbin.foo:8000/get` → 503 UC.",
        spec.services, spec.pods_per_service, spec.envoys, spec.istio_version, spec.services
    );
    for o in &objects {
        out.push_str("---\n");
        out.push_str(&serde_yaml::to_string(o)?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_the_break() {
        let spec = MeshSpec {
            services: 120,
            pods_per_service: 3,
            envoys: 3,
            istio_version: "1.24".into(),
        };
        let objs = objects(&spec).unwrap();
        let count = |k: &str| objs.iter().filter(|o| o["kind"] == k).count();
        assert_eq!(count("Service"), 120);
        assert_eq!(count("Deployment"), 120);
        // One per generated service, httpbin's (the break) and the mesh-wide rule.
        assert_eq!(count("DestinationRule"), 120);
        // Mesh-wide + one per generated namespace (118 services / 50 → 3).
        assert_eq!(count("PeerAuthentication"), 4);
        let httpbin = objs
            .iter()
            .find(|o| o["kind"] == "DestinationRule" && o["metadata"]["name"] == "httpbin")
            .unwrap();
        assert!(httpbin["spec"]["trafficPolicy"].get("tls").is_none());
        let real: Vec<&Value> = objs
            .iter()
            .filter(|o| {
                o["kind"] == "Deployment"
                    && o["spec"]["template"]["metadata"]["annotations"]["lab.mesh503.io/proxy"]
                        .is_null()
            })
            .collect();
        assert_eq!(real.len(), 3, "sleep, httpbin and one more");
        // The YAML reads back as the same objects.
        let yaml = to_yaml(&spec).unwrap();
        let back = crate::scenario::parse(&yaml, "generated").unwrap();
        assert_eq!(back, objs);
    }

    #[test]
    fn bad_sizes_are_named() {
        for (spec, word) in [
            (
                MeshSpec {
                    services: 1,
                    ..Default::default()
                },
                "--services",
            ),
            (
                MeshSpec {
                    envoys: 1,
                    ..Default::default()
                },
                "--envoys",
            ),
            (
                MeshSpec {
                    pods_per_service: 0,
                    ..Default::default()
                },
                "--pods-per-service",
            ),
            (
                MeshSpec {
                    istio_version: "latest".into(),
                    ..Default::default()
                },
                "--istio-version",
            ),
        ] {
            let e = objects(&spec).unwrap_err().to_string();
            assert!(e.contains(word), "{e}");
        }
    }
}
