//! Where a pod's Istio sidecar lives: the one answer to "does this pod run
//! a sidecar, and which container is it?", shared by `collect` and the model.
//!
//! Classic injection puts `istio-proxy` in `spec.containers`. Native sidecars
//! (the default from Istio 1.27 on clusters with Kubernetes sidecar
//! containers; per pod `sidecar.istio.io/nativeSidecar`, mesh-wide
//! `ENABLE_NATIVE_SIDECARS`) put it in `spec.initContainers` with
//! `restartPolicy: Always`. Sources: istio/istio
//! `pkg/kube/inject/inject.go` (`EnableNativeSidecar`, the container moved to
//! initContainers with `restartPolicy: Always`); Kubernetes KEP-753.
//! An init container named `istio-proxy` without `restartPolicy: Always`
//! would run to completion before the app starts: it is not a sidecar.

use super::mesh_config::IstioVersion;
use serde_json::Value;

/// The name Istio's injector gives the sidecar container.
pub const SIDECAR_CONTAINER: &str = "istio-proxy";

/// How the sidecar was injected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SidecarKind {
    /// `istio-proxy` in `spec.containers`.
    Classic,
    /// `istio-proxy` in `spec.initContainers` with `restartPolicy: Always`.
    Native,
}

/// The pod's `istio-proxy` container and how it was injected, if any.
pub fn sidecar_container(pod: &Value) -> Option<(&Value, SidecarKind)> {
    let named = |c: &&Value| c.get("name").and_then(Value::as_str) == Some(SIDECAR_CONTAINER);
    let spec = pod.get("spec")?;
    if let Some(c) = spec
        .get("containers")
        .and_then(Value::as_array)
        .and_then(|cs| cs.iter().find(named))
    {
        return Some((c, SidecarKind::Classic));
    }
    spec.get("initContainers")
        .and_then(Value::as_array)
        .and_then(|cs| cs.iter().find(named))
        .filter(|c| c.get("restartPolicy").and_then(Value::as_str) == Some("Always"))
        .map(|c| (c, SidecarKind::Native))
}

/// Does the pod run an Istio sidecar (classic or native)?
pub fn has_sidecar(pod: &Value) -> bool {
    sidecar_container(pod).is_some()
}

/// The Istio version the pod's sidecar runs, from its image tag
/// (`docker.io/istio/proxyv2:1.28.0`, `…:v1.0.0`); `None` for a digest or
/// a tag that is not a version.
pub fn sidecar_version(pod: &Value) -> Option<IstioVersion> {
    let (c, _) = sidecar_container(pod)?;
    let image = c.get("image")?.as_str()?;
    let image = image.split('@').next()?;
    let (_, tag) = image.rsplit_once(':')?;
    if tag.contains('/') {
        return None; // a registry port, not a tag
    }
    IstioVersion::parse(tag.trim_start_matches('v'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn classic_and_native_sidecars() {
        let classic = json!({"spec": {"containers": [{"name": "app"}, {"name": "istio-proxy", "image": "istio/proxyv2:1.24.1"}]}});
        assert_eq!(
            sidecar_container(&classic).map(|c| c.1),
            Some(SidecarKind::Classic)
        );
        let native = json!({"spec": {"containers": [{"name": "app"}],
            "initContainers": [{"name": "istio-init"}, {"name": "istio-proxy", "restartPolicy": "Always", "image": "istio/proxyv2:1.28.0"}]}});
        assert_eq!(
            sidecar_container(&native).map(|c| c.1),
            Some(SidecarKind::Native)
        );
        assert!(has_sidecar(&native));
        assert_eq!(
            sidecar_version(&native).map(|v| v.to_string()),
            Some("1.28.0".into())
        );
    }

    #[test]
    fn near_misses_are_not_sidecars() {
        // istio-init alone (the CNI-less init step), an init container named
        // istio-proxy that runs to completion, an app container with a similar name.
        for pod in [
            json!({"spec": {"containers": [{"name": "app"}], "initContainers": [{"name": "istio-init"}]}}),
            json!({"spec": {"containers": [{"name": "app"}], "initContainers": [{"name": "istio-proxy"}]}}),
            json!({"spec": {"containers": [{"name": "istio-proxy-exporter"}]}}),
            json!({"metadata": {"name": "no-spec"}}),
        ] {
            assert!(!has_sidecar(&pod), "{pod}");
        }
    }

    #[test]
    fn versions_from_image_tags() {
        let p = |image: &str| json!({"spec": {"containers": [{"name": "istio-proxy", "image": image}]}});
        assert_eq!(
            sidecar_version(&p("docker.io/istio/proxyv2:v1.0.0")).map(|v| v.to_string()),
            Some("1.0.0".into())
        );
        assert_eq!(sidecar_version(&p("registry:5000/istio/proxyv2")), None);
        assert_eq!(sidecar_version(&p("istio/proxyv2@sha256:abcd")), None);
    }
}
