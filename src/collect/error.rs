//! Why a collection failed as a whole (exit 3). Anything smaller — a list
//! that is forbidden, a sidecar that does not answer — is a gap, not one of
//! these. Each variant carries or makes its own hint.

use super::api::ApiCallError;

#[derive(Debug, thiserror::Error)]
pub enum CollectError {
    /// The client configuration could not be loaded or used.
    #[error("cannot use the Kubernetes client configuration from {origin}: {message}")]
    Kubeconfig {
        origin: String,
        message: String,
        hint: String,
    },
    /// `--context` names a context the kubeconfig does not have.
    #[error("context {context:?} does not exist in {origin}; available: {}", if .available.is_empty() { "none".to_string() } else { .available.join(", ") })]
    ContextNotFound {
        context: String,
        origin: String,
        available: Vec<String>,
    },
    /// The API server cannot be reached, or does not answer in time.
    #[error("cannot reach the Kubernetes API server at {url}: {source}")]
    Connect { url: String, source: ApiCallError },
    /// The API server refused the credentials (401).
    #[error("the Kubernetes API server at {url} refused the credentials: {source}")]
    Unauthorized { url: String, source: ApiCallError },
    /// The target (or a `--from` client) does not exist.
    #[error("{what} not found in namespace {namespace:?}")]
    TargetNotFound {
        what: String,
        namespace: String,
        hint: String,
    },
    /// Reading the target itself is forbidden.
    #[error("not allowed to read {what}: {message}")]
    Forbidden {
        what: String,
        message: String,
        hint: String,
    },
    /// Reading the target failed otherwise.
    #[error("cannot read {what}: {source}")]
    Api { what: String, source: ApiCallError },
    /// The run's `--timeout` passed before collection was done.
    #[error("the run's time limit of {limit} (--timeout) was reached while {during}")]
    OutOfTime { during: String, limit: String },
    /// The API answered at first, then stopped answering: what was read is
    /// not the whole picture, so no diagnosis is given.
    #[error("the Kubernetes API server at {url} stopped answering while {during}: {reason}")]
    ApiLost {
        url: String,
        during: String,
        reason: String,
        /// The timeout flag that ended the wait, if it was a timeout.
        flag: Option<&'static str>,
    },
}

impl CollectError {
    pub fn hint(&self) -> String {
        match self {
            CollectError::Kubeconfig { hint, .. }
            | CollectError::TargetNotFound { hint, .. }
            | CollectError::Forbidden { hint, .. } => hint.clone(),
            CollectError::ContextNotFound { .. } => {
                "list contexts with `kubectl config get-contexts`; pick one with --context".into()
            }
            CollectError::Connect { source, .. } => match source {
                ApiCallError::Timeout(limit) => format!(
                    "the API server accepted the connection but did not answer; check that it is up \
                     (`kubectl cluster-info`), or give it more time with {}",
                    limit.flag()
                ),
                _ => "check --context and --kubeconfig (`kubectl config current-context`, \
                      `kubectl cluster-info`) and that the cluster is up"
                    .into(),
            },
            CollectError::Unauthorized { .. } => {
                "the token or client certificate in the kubeconfig is missing, wrong or expired: \
                 log in again (e.g. refresh the cloud provider's credentials) and check with \
                 `kubectl auth whoami` or `kubectl get --raw /version`"
                    .into()
            }
            CollectError::OutOfTime { .. } => "allow more time with --timeout (e.g. --timeout 2m), or read fewer sidecars (--max-clients, --from)".into(),
            CollectError::Api { .. } => "check the API server's health (`kubectl get --raw /readyz`)".into(),
            CollectError::ApiLost { flag, .. } => match flag {
                Some(flag) => format!(
                    "the API server stopped answering in the middle of the run; retry when it is \
                     healthy (`kubectl get --raw /readyz`), or allow more time with {flag}"
                ),
                None => "the API server went away in the middle of the run; retry when it is healthy \
                      (`kubectl get --raw /readyz`)"
                    .into(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_say_what_to_do() {
        let e = CollectError::TargetNotFound {
            what: "service \"httpbin\"".into(),
            namespace: "foo".into(),
            hint: "list what exists with `kubectl get svc -n foo`; pick the namespace with -n"
                .into(),
        };
        assert_eq!(
            e.to_string(),
            "service \"httpbin\" not found in namespace \"foo\""
        );
        assert!(e.hint().contains("kubectl get svc -n foo"));
        let e = CollectError::ContextNotFound {
            context: "nope".into(),
            origin: "k.yaml".into(),
            available: vec!["lab".into(), "prod".into()],
        };
        assert!(
            e.to_string().contains("\"nope\" does not exist")
                && e.to_string().contains("lab, prod"),
            "{e}"
        );
        let e = CollectError::Connect {
            url: "http://x".into(),
            source: ApiCallError::Timeout(super::super::budget::Limit::Request(
                std::time::Duration::from_secs(10),
            )),
        };
        assert!(e.to_string().contains("--request-timeout"), "{e}");
        assert!(e.hint().contains("--request-timeout"), "{}", e.hint());
    }
}
