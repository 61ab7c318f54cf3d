//! Model stage: mesh-wide settings: the mesh config with Istio's defaults for
//! the running release, the Istio version, the root namespace, auto mTLS,
//! and the cluster domain, each with where it came from.

use crate::envoy::config_dump::ClusterKind;
use crate::istio::host::DEFAULT_DOMAIN_SUFFIX;
use crate::istio::mesh_config::{IstioVersion, MeshConfig};

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
            suffix: DEFAULT_DOMAIN_SUFFIX.to_string(),
            source: DomainSource::Default,
        }
    }

    /// The resolved target's domain if there is one; else the first proxy
    /// whose node id names it; else an outbound cluster of a known Service;
    /// else `cluster.local`.
    pub fn derive(
        resolved: Option<(String, String)>,
        proxies: &[Proxy],
        services: &[ServiceKey],
    ) -> ClusterDomain {
        if let Some((suffix, read_from)) = resolved.filter(|(d, _)| !d.is_empty()) {
            return ClusterDomain {
                suffix,
                source: DomainSource::ResolvedTarget(read_from),
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
                if let Some(d) = domain_of_service_host(host, services) {
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

/// `svc.ns.svc.example.org` → `example.org` when `ns/svc` is a known Service.
fn domain_of_service_host(host: &str, services: &[ServiceKey]) -> Option<String> {
    let (name, rest) = host.split_once('.')?;
    let (ns, rest) = rest.split_once('.')?;
    let domain = rest.strip_prefix("svc.")?;
    (!domain.is_empty() && services.iter().any(|s| s.name == name && s.namespace == ns))
        .then(|| domain.to_string())
}

/// The domain in an Istio node id: `sidecar~10.0.0.1~pod.ns~ns.svc.cluster.local`.
pub fn domain_of_node_id(node_id: &str) -> Option<String> {
    let dns = node_id.split('~').nth(3)?;
    let (_, domain) = dns.split_once(".svc.")?;
    (!domain.is_empty()).then(|| domain.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domain_from_node_ids_and_cluster_names() {
        assert_eq!(
            domain_of_node_id("sidecar~127.12.0.4~httpbin-1.foo~foo.svc.cluster.local").as_deref(),
            Some("cluster.local")
        );
        assert_eq!(
            domain_of_node_id("sidecar~10.0.0.1~a.b~b.svc.corp.example").as_deref(),
            Some("corp.example")
        );
        assert_eq!(domain_of_node_id("router~10.0.0.1~gw.istio-system~"), None);
        let known = [ServiceKey::new("foo", "httpbin")];
        assert_eq!(
            domain_of_service_host("httpbin.foo.svc.corp.example", &known).as_deref(),
            Some("corp.example")
        );
        assert_eq!(
            domain_of_service_host("other.foo.svc.corp.example", &known),
            None
        );
        let d = ClusterDomain::derive(
            Some(("resolved.example".into(), "node id of pod foo/x".into())),
            &[],
            &known,
        );
        assert_eq!(d.suffix, "resolved.example");
        assert_eq!(
            d.source,
            DomainSource::ResolvedTarget("node id of pod foo/x".into())
        );
        assert_eq!(
            ClusterDomain::derive(None, &[], &known),
            ClusterDomain::default_domain()
        );
    }
}
