//! Thin, read-only access to the Kubernetes API: `get` and `list` of raw JSON
//! (objects are kept verbatim for the snapshot), Istio API discovery, and the
//! classification of failures into "not served", "forbidden", "unreachable".
//!
//! Only GET requests are built here; nothing in this module can write.

use std::time::Duration;

use kube::core::params::{GetParams, ListParams};
use kube::core::Request;
use serde_json::Value;

use crate::snapshot::ServedResource;

/// The API groups whose kinds make up Istio's configuration.
pub const ISTIO_GROUPS: &[&str] = &[
    "networking.istio.io",
    "security.istio.io",
    "authentication.istio.io",
];

/// Page size for list calls.
const PAGE: u32 = 500;

/// A failed API call.
#[derive(Debug, thiserror::Error)]
pub enum ApiCallError {
    /// The client or the server failed (the server's `Status` is inside
    /// `kube::Error::Api`).
    #[error("{}", describe_kube_error(.0))]
    Kube(#[source] kube::Error),
    /// No answer within `--request-timeout`.
    #[error("no answer within {}s (--request-timeout)", .0.as_secs_f64())]
    Timeout(Duration),
}

/// Readable text for a kube error: the HTTP status and the server's message
/// when the server answered, else the error chain.
pub fn describe_kube_error(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) => {
            let mut out = String::new();
            if s.code != 0 {
                out.push_str(&format!("HTTP {}", s.code));
            }
            if !s.reason.is_empty() && s.reason != "Failed to parse error data" {
                if !out.is_empty() {
                    out.push(' ');
                }
                out.push_str(&s.reason);
            }
            let msg = s.message.trim();
            if !msg.is_empty() {
                if !out.is_empty() {
                    out.push_str(": ");
                }
                out.push_str(msg);
            }
            if out.is_empty() {
                "the API server refused the request".to_string()
            } else {
                out
            }
        }
        other => error_chain(other),
    }
}

/// `err: source: source …`, without repeating a source already in the text.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        cur = s.source();
    }
    out
}

impl ApiCallError {
    /// The HTTP status the API server answered with, if it answered.
    pub fn status_code(&self) -> Option<u16> {
        match self {
            ApiCallError::Kube(kube::Error::Api(s)) if s.code != 0 => Some(s.code),
            _ => None,
        }
    }

    /// 403, or a `Status` with reason `Forbidden`.
    pub fn is_forbidden(&self) -> bool {
        matches!(self, ApiCallError::Kube(kube::Error::Api(s)) if s.is_forbidden())
    }

    /// 404 (also a plain-text `404 page not found` for an uninstalled kind), or
    /// reason `NotFound`.
    pub fn is_not_found(&self) -> bool {
        matches!(self, ApiCallError::Kube(kube::Error::Api(s)) if s.is_not_found() || s.code == 404)
    }

    /// The API server could not be reached or did not answer at all
    /// (connection refused, DNS, TLS, timeout). An answered error is not one.
    pub fn is_unreachable(&self) -> bool {
        match self {
            ApiCallError::Timeout(_) => true,
            ApiCallError::Kube(e) => matches!(
                e,
                kube::Error::HyperError(_)
                    | kube::Error::Service(_)
                    | kube::Error::RustlsTls(_)
                    | kube::Error::TlsRequired
                    | kube::Error::Auth(_)
                    | kube::Error::ProxyProtocolDisabled { .. }
                    | kube::Error::ProxyProtocolUnsupported { .. }
            ),
        }
    }
}

/// How a failed list or get should be recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// 404: the kind (or the object) is not there. Not a gap for a kind.
    NotFound,
    /// 403, with the server's words.
    Forbidden(String),
    /// The server is not reachable at all.
    Unreachable(String),
    /// Anything else, with its words.
    Other(String),
}

/// Classifies a failed call.
pub fn classify(e: &ApiCallError) -> Failure {
    if e.is_not_found() {
        Failure::NotFound
    } else if e.is_forbidden() {
        Failure::Forbidden(e.to_string())
    } else if e.is_unreachable() {
        Failure::Unreachable(e.to_string())
    } else {
        Failure::Other(e.to_string())
    }
}

/// One Istio kind in one served version: what to list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kind {
    pub group: String,
    pub version: String,
    pub kind: String,
    pub plural: String,
    pub namespaced: bool,
}

impl Kind {
    pub fn api_version(&self) -> String {
        api_version(&self.group, &self.version)
    }

    /// `virtualservices.networking.istio.io/v1`, for gaps and progress.
    pub fn describe(&self) -> String {
        format!("{}.{}/{}", self.plural, self.group, self.version)
    }

    pub fn served(&self) -> ServedResource {
        ServedResource {
            group: self.group.clone(),
            version: self.version.clone(),
            kind: self.kind.clone(),
            plural: self.plural.clone(),
            namespaced: self.namespaced,
        }
    }
}

/// `v1` for the core group, `group/version` otherwise.
pub fn api_version(group: &str, version: &str) -> String {
    if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    }
}

/// URL path of a collection: `/api/v1/namespaces/NS/pods`, `/apis/G/V/PLURAL`.
pub fn collection_path(
    group: &str,
    version: &str,
    plural: &str,
    namespace: Option<&str>,
) -> String {
    let base = if group.is_empty() {
        format!("/api/{version}")
    } else {
        format!("/apis/{group}/{version}")
    };
    match namespace {
        Some(ns) => format!("{base}/namespaces/{ns}/{plural}"),
        None => format!("{base}/{plural}"),
    }
}

/// Sets `apiVersion` and `kind` on a list item (list responses omit them).
pub fn with_type(mut item: Value, api_version: &str, kind: &str) -> Value {
    if let Value::Object(map) = &mut item {
        map.insert("apiVersion".into(), Value::String(api_version.to_string()));
        map.insert("kind".into(), Value::String(kind.to_string()));
    }
    item
}

/// The kinds of one discovery document (`/apis/G/V`), subresources skipped,
/// only kinds that can be listed.
pub fn kinds_from_resource_list(group: &str, version: &str, list: &Value) -> Vec<Kind> {
    let mut out = Vec::new();
    for r in list
        .get("resources")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let name = r.get("name").and_then(Value::as_str).unwrap_or("");
        let kind = r.get("kind").and_then(Value::as_str).unwrap_or("");
        if name.is_empty() || kind.is_empty() || name.contains('/') {
            continue;
        }
        let listable = match r.get("verbs").and_then(Value::as_array) {
            Some(verbs) => verbs.iter().any(|v| v.as_str() == Some("list")),
            None => true,
        };
        if !listable {
            continue;
        }
        out.push(Kind {
            group: group.to_string(),
            version: version.to_string(),
            kind: kind.to_string(),
            plural: name.to_string(),
            namespaced: r.get("namespaced").and_then(Value::as_bool).unwrap_or(true),
        });
    }
    out
}

/// The served versions of `group` in an `/apis` `APIGroupList`.
pub fn group_versions(groups: &Value, group: &str) -> Vec<String> {
    groups
        .get("groups")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|g| g.get("name").and_then(Value::as_str) == Some(group))
        .flat_map(|g| {
            g.get("versions")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|v| v.get("version").and_then(Value::as_str))
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Read-only access to the API with `--request-timeout` applied to every call.
#[derive(Clone)]
pub struct ReadApi {
    client: kube::Client,
    timeout: Option<Duration>,
}

impl ReadApi {
    pub fn new(client: kube::Client, timeout: Option<Duration>) -> Self {
        ReadApi { client, timeout }
    }

    pub fn client(&self) -> &kube::Client {
        &self.client
    }

    pub fn timeout(&self) -> Option<Duration> {
        self.timeout
    }

    async fn bounded<T>(
        &self,
        fut: impl std::future::Future<Output = Result<T, kube::Error>>,
    ) -> Result<T, ApiCallError> {
        match self.timeout {
            Some(t) => match tokio::time::timeout(t, fut).await {
                Ok(r) => r.map_err(ApiCallError::Kube),
                Err(_) => Err(ApiCallError::Timeout(t)),
            },
            None => fut.await.map_err(ApiCallError::Kube),
        }
    }

    /// `GET path` as JSON.
    pub async fn get_path(&self, path: &str) -> Result<Value, ApiCallError> {
        let req = http::Request::get(path)
            .body(Vec::new())
            .map_err(|e| ApiCallError::Kube(kube::Error::HttpError(e)))?;
        self.bounded(self.client.request::<Value>(req)).await
    }

    /// `GET collection/name` as JSON, verbatim.
    pub async fn get(&self, collection: &str, name: &str) -> Result<Value, ApiCallError> {
        let req = Request::new(collection)
            .get(name, &GetParams::default())
            .map_err(|e| ApiCallError::Kube(kube::Error::BuildRequest(e)))?;
        self.bounded(self.client.request::<Value>(req)).await
    }

    /// Lists a collection (all pages), setting `apiVersion` and `kind` on
    /// every item.
    pub async fn list(
        &self,
        collection: &str,
        label_selector: Option<&str>,
        api_version: &str,
        kind: &str,
    ) -> Result<Vec<Value>, ApiCallError> {
        let mut items = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let lp = ListParams {
                label_selector: label_selector.map(str::to_string),
                limit: Some(PAGE),
                continue_token: token.take(),
                ..ListParams::default()
            };
            let req = Request::new(collection)
                .list(&lp)
                .map_err(|e| ApiCallError::Kube(kube::Error::BuildRequest(e)))?;
            let page: Value = self.bounded(self.client.request::<Value>(req)).await?;
            if let Some(Value::Array(list)) = page.get("items") {
                items.extend(
                    list.iter()
                        .cloned()
                        .map(|i| with_type(i, api_version, kind)),
                );
            }
            token = page
                .pointer("/metadata/continue")
                .and_then(Value::as_str)
                .filter(|t| !t.is_empty())
                .map(str::to_string);
            if token.is_none() {
                break;
            }
        }
        Ok(items)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn api_err(code: u16, reason: &str, message: &str) -> ApiCallError {
        let status = kube::core::Status::failure(message, reason).with_code(code);
        ApiCallError::Kube(kube::Error::Api(status.boxed()))
    }

    #[test]
    fn classification() {
        let forbidden = api_err(
            403,
            "Forbidden",
            "peerauthentications.security.istio.io is forbidden: User \"dev\" cannot list resource",
        );
        assert!(forbidden.is_forbidden());
        assert!(!forbidden.is_unreachable());
        match classify(&forbidden) {
            Failure::Forbidden(text) => {
                assert!(text.starts_with("HTTP 403 Forbidden: "), "{text}");
                assert!(text.contains("cannot list"), "{text}");
            }
            other => panic!("{other:?}"),
        }
        // An uninstalled kind answers plain text; kube reconstructs a Status.
        let plain404 = api_err(404, "Failed to parse error data", "404 page not found");
        assert_eq!(classify(&plain404), Failure::NotFound);
        assert_eq!(plain404.to_string(), "HTTP 404: 404 page not found");
        assert_eq!(
            classify(&api_err(404, "NotFound", "services \"x\" not found")),
            Failure::NotFound
        );
        assert!(matches!(
            classify(&api_err(500, "InternalError", "boom")),
            Failure::Other(_)
        ));
        let t = ApiCallError::Timeout(Duration::from_secs(2));
        assert!(matches!(classify(&t), Failure::Unreachable(_)));
        assert_eq!(t.to_string(), "no answer within 2s (--request-timeout)");
    }

    #[test]
    fn paths() {
        assert_eq!(
            collection_path("", "v1", "pods", Some("foo")),
            "/api/v1/namespaces/foo/pods"
        );
        assert_eq!(
            collection_path("", "v1", "namespaces", None),
            "/api/v1/namespaces"
        );
        assert_eq!(
            collection_path("networking.istio.io", "v1alpha3", "destinationrules", None),
            "/apis/networking.istio.io/v1alpha3/destinationrules"
        );
        assert_eq!(api_version("", "v1"), "v1");
        assert_eq!(api_version("apps", "v1"), "apps/v1");
    }

    #[test]
    fn list_items_get_their_type() {
        let v = with_type(
            json!({"metadata": {"name": "x"}}),
            "security.istio.io/v1",
            "PeerAuthentication",
        );
        assert_eq!(v["apiVersion"], "security.istio.io/v1");
        assert_eq!(v["kind"], "PeerAuthentication");
        assert_eq!(v["metadata"]["name"], "x");
    }

    #[test]
    fn discovery_documents() {
        let groups = json!({"kind": "APIGroupList", "groups": [
            {"name": "apps", "versions": [{"groupVersion": "apps/v1", "version": "v1"}]},
            {"name": "networking.istio.io", "versions": [
                {"groupVersion": "networking.istio.io/v1", "version": "v1"},
                {"groupVersion": "networking.istio.io/v1beta1", "version": "v1beta1"},
                {"groupVersion": "networking.istio.io/v1alpha3", "version": "v1alpha3"}]}
        ]});
        assert_eq!(
            group_versions(&groups, "networking.istio.io"),
            vec!["v1", "v1beta1", "v1alpha3"]
        );
        assert!(group_versions(&groups, "security.istio.io").is_empty());

        let list = json!({"kind": "APIResourceList", "groupVersion": "authentication.istio.io/v1alpha1",
        "resources": [
            {"name": "meshpolicies", "kind": "MeshPolicy", "namespaced": false, "verbs": ["get", "list"]},
            {"name": "policies", "kind": "Policy", "namespaced": true, "verbs": ["get", "list", "watch"]},
            {"name": "policies/status", "kind": "Policy", "namespaced": true, "verbs": ["get"]},
            {"name": "nolist", "kind": "NoList", "namespaced": true, "verbs": ["get"]}
        ]});
        let kinds = kinds_from_resource_list("authentication.istio.io", "v1alpha1", &list);
        assert_eq!(kinds.len(), 2);
        assert_eq!(kinds[0].kind, "MeshPolicy");
        assert!(!kinds[0].namespaced);
        assert_eq!(
            kinds[1].describe(),
            "policies.authentication.istio.io/v1alpha1"
        );
        assert_eq!(kinds[1].api_version(), "authentication.istio.io/v1alpha1");
    }
}
