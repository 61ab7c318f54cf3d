//! What the API server needs from the running lab beyond stored objects:
//! container logs and where a port-forward connects. Kept as a trait so the
//! API module does not depend on how sidecars and apps are run.

use std::net::SocketAddr;
use std::path::PathBuf;

pub trait PodRuntime: Send + Sync + 'static {
    /// File holding the container's stdout+stderr (`istio-proxy` is Envoy's
    /// output, access log included; the app container's log otherwise).
    /// `None` when the pod or container does not exist or has no log yet.
    fn log_path(&self, namespace: &str, pod: &str, container: &str) -> Option<PathBuf>;

    /// Where a port-forward to `port` of the pod connects, in the order to
    /// try (kubelet dials `localhost:port` inside the pod's network namespace).
    /// Empty when the pod is unknown or not running.
    fn forward_targets(&self, namespace: &str, pod: &str, port: u16) -> Vec<SocketAddr>;
}

/// A runtime with no pods: every log is missing, every forward fails.
pub struct NoPods;

impl PodRuntime for NoPods {
    fn log_path(&self, _: &str, _: &str, _: &str) -> Option<PathBuf> {
        None
    }
    fn forward_targets(&self, _: &str, _: &str, _: u16) -> Vec<SocketAddr> {
        Vec::new()
    }
}
