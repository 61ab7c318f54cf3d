//! Fixes in the release's own language: the API version the cluster serves
//! for each kind (API discovery, `served_resources` in the snapshot), else
//! the one the running Istio release installs, and the field names that
//! release reads.
//!
//! Sources: istio/istio `manifests/charts/base/crds/crd-all.gen.yaml` per tag
//! (networking v1beta1 from 1.8 in the default profile, v1 from 1.22;
//! security v1beta1 from 1.5, v1 from 1.22; authentication v1alpha1 until
//! 1.5); istio/api#1189 (`consecutive5xxErrors` and
//! `consecutiveGatewayErrors` replace `consecutiveErrors`, Istio 1.5);
//! istio/api#2207 (DestinationRule `workloadSelector`, Istio 1.14).

use crate::istio::mesh_config::IstioVersion;
use crate::model::Mesh;

fn version(mesh: &Mesh) -> Option<IstioVersion> {
    mesh.settings.version
}

fn at_least(mesh: &Mesh, major: u32, minor: u32) -> bool {
    version(mesh).is_none_or(|v| v.at_least(major, minor))
}

/// `apiVersion` for a new DestinationRule.
pub fn destination_rule_api(mesh: &Mesh) -> String {
    mesh.config
        .preferred_api_version("DestinationRule")
        .unwrap_or_else(|| match version(mesh) {
            Some(v) if v.at_least(1, 22) => "networking.istio.io/v1".into(),
            Some(v) if v.at_least(1, 8) => "networking.istio.io/v1beta1".into(),
            // Served by every release, and what an unknown one surely serves.
            _ => "networking.istio.io/v1alpha3".into(),
        })
}

/// `apiVersion` for a new PeerAuthentication; `None` before Istio 1.5
/// (legacy MeshPolicy/Policy only).
pub fn peer_authentication_api(mesh: &Mesh) -> Option<String> {
    if let Some(v) = mesh.config.preferred_api_version("PeerAuthentication") {
        return Some(v);
    }
    match version(mesh) {
        Some(v) if !v.at_least(1, 5) => None,
        Some(v) if v.at_least(1, 22) => Some("security.istio.io/v1".into()),
        _ => Some("security.istio.io/v1beta1".into()),
    }
}

/// The outlierDetection field that counts consecutive errors:
/// `consecutiveErrors` before Istio 1.5, `consecutive5xxErrors` from 1.5.
pub fn consecutive_errors_field(mesh: &Mesh) -> &'static str {
    if at_least(mesh, 1, 5) {
        "consecutive5xxErrors"
    } else {
        "consecutiveErrors"
    }
}

/// Does the release read DestinationRule `workloadSelector` (1.14+)?
pub fn destination_rule_selector(mesh: &Mesh) -> bool {
    at_least(mesh, 1, 14)
}
