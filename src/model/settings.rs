//! Model stage: mesh-wide settings: the mesh config with Istio's defaults for
//! the running release, the Istio version, the root namespace, auto mTLS,
//! and the cluster domain, each with where it came from.

use crate::envoy::config_dump::ClusterKind;
use serde_json::Value;

use crate::istio::cluster_domain::{domain_from_pod, domain_of_service_host, DEFAULT_DOMAIN};
use crate::istio::mesh_config::{IstioVersion, MeshConfig};

use super::pods::PodKey;
use super::proxies::Proxy;
use super::services::ServiceKey;

/// Whether the mesh config was read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MeshConfigSource {
    /// `ConfigMap <istio ns>/istio` read and parsed.
    Read,
    /// Present but unparseable: Istio's defaults are assumed (the error).
    Unparseable(String),
    /// Not in the snapshot: Istio's defaults are assumed.
    NotInSnapshot,
}

/// Where the Istio version came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionSource {
    /// The highest `istio-proxy` image tag among the pods.
    SidecarImage,
    /// `node.metadata.ISTIO_VERSION` in a proxy's `/server_info`.
    ProxyServerInfo,
    Unknown,
}

/// The mesh config and what follows from it for the running release.
#[derive(Debug, Clone, PartialEq)]
pub struct MeshSettings {
    pub config: MeshConfig,
    pub source: MeshConfigSource,
    /// Namespace holding the `istio` ConfigMap.
    pub istio_namespace: String,
    pub version: Option<IstioVersion>,
    pub version_source: VersionSource,
    /// `enableAutoMtls`, or the release's default when unset.
    pub auto_mtls: bool,
    /// `rootNamespace`, default `istio-system`.
    pub root_namespace: String,
}

impl MeshSettings {
    pub fn new(
        config: MeshConfig,
        source: MeshConfigSource,
        istio_namespace: &str,
        version: Option<IstioVersion>,
        version_source: VersionSource,
    ) -> MeshSettings {
        MeshSettings {
            auto_mtls: config.auto_mtls(version),
            root_namespace: config.root_namespace().to_string(),
            config,
            source,
            istio_namespace: istio_namespace.to_string(),
            version,
            version_source,
        }
    }

    /// Was `ConfigMap istio` read?
    pub fn read(&self) -> bool {
        self.source == MeshConfigSource::Read
    }
}

/// Where the cluster domain came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DomainSource {
    /// The target `collect` resolved (snapshot v2), with where it read the
    /// domain (`--domain of pod foo/httpbin-1's istio-proxy`, …).
    ResolvedTarget(String),
    /// A pod's `istio-proxy` argument `--domain NS.svc.<domain>`, by pod.
    SidecarArgs(String),
    /// A proxy's node id (`sidecar~ip~pod.ns~ns.svc.<domain>`), by proxy.
    ProxyNode(String),
    /// An outbound cluster name for a Service in the snapshot, by proxy.
    ProxyCluster(String),
    /// Nothing said: Kubernetes' default `cluster.local`.
    Default,
}

/// The DNS suffix of Services (`cluster.local` by default).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterDomain {
    pub suffix: String,
    pub source: DomainSource,
}

impl ClusterDomain {
    pub fn default_domain() -> ClusterDomain {
        ClusterDomain {
            suffix: DEFAULT_DOMAIN.to_string(),
            source: DomainSource::Default,
        }
    }

    /// The resolved target's domain if there is one; else, in the order
    /// `collect` reads them (`istio::cluster_domain`), a pod's sidecar
    /// `--domain` (`(pod, domain)` pairs), then the first proxy whose node
    /// id names it; else an outbound cluster of a known Service; else
    /// `cluster.local`.
    pub fn derive(
        resolved: Option<(String, String)>,
        sidecar_args: &[(String, String)],
        proxies: &[Proxy],
        services: &[ServiceKey],
    ) -> ClusterDomain {
        if let Some((suffix, read_from)) = resolved.filter(|(d, _)| !d.is_empty()) {
            return ClusterDomain {
                suffix,
                source: DomainSource::ResolvedTarget(read_from),
            };
        }
        if let Some((pod, suffix)) = sidecar_args.first() {
            return ClusterDomain {
                suffix: suffix.clone(),
                source: DomainSource::SidecarArgs(pod.clone()),
            };
        }
        for p in proxies {
            if let Some(d) = &p.node_domain {
                return ClusterDomain {
                    suffix: d.clone(),
                    source: DomainSource::ProxyNode(p.label.clone()),
                };
            }
        }
        for p in proxies {
            let Some(dump) = &p.dump else { continue };
            for c in &dump.clusters {
                let ClusterKind::Outbound { host, .. } = &c.kind else {
                    continue;
                };
                let known = |ns: &str, name: &str| {
                    services.iter().any(|s| s.name == name && s.namespace == ns)
                };
                if let Some(d) = domain_of_service_host(host, known) {
                    return ClusterDomain {
                        suffix: d,
                        source: DomainSource::ProxyCluster(p.label.clone()),
                    };
                }
            }
        }
        ClusterDomain::default_domain()
    }
}

/// `(ns/pod, domain)` for each pod whose `istio-proxy` names the domain.
pub(super) fn sidecar_domains(objects: &[Value]) -> Vec<(String, String)> {
    objects
        .iter()
        .filter(|o| o["kind"] == "Pod")
        .filter_map(|o| {
            let d = domain_from_pod(o)?;
            let key = PodKey::new(
                o["metadata"]["namespace"].as_str().unwrap_or(""),
                o["metadata"]["name"].as_str().unwrap_or(""),
            );
            Some((key.to_string(), d))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_domain_in_the_order_collect_reads_it() {
        let known = [ServiceKey::new("foo", "httpbin")];
        let args = [("foo/httpbin-1".to_string(), "args.example".to_string())];
        let d = ClusterDomain::derive(
            Some(("resolved.example".into(), "node id of pod foo/x".into())),
            &args,
            &[],
            &known,
        );
        assert_eq!(d.suffix, "resolved.example");
        assert_eq!(
            d.source,
            DomainSource::ResolvedTarget("node id of pod foo/x".into())
        );
        let d = ClusterDomain::derive(None, &args, &[], &known);
        assert_eq!(
            (d.suffix.as_str(), d.source),
            (
                "args.example",
                DomainSource::SidecarArgs("foo/httpbin-1".into())
            )
        );
        assert_eq!(
            ClusterDomain::derive(None, &[], &[], &known),
            ClusterDomain::default_domain()
        );
    }
}
