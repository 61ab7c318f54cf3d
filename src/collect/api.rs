//! Thin, read-only access to the Kubernetes API: `get` and `list` of raw JSON
//! (objects are kept verbatim for the snapshot), Istio API discovery at one
//! version per kind, and the classification of failures.
//!
//! Only GET requests are built here; nothing in this module can write.
//! Safety rails, all here so no caller can forget them:
//! - every path is built by [`Collection`] from validated parts (namespaces
//!   and names as Kubernetes validates them), so no value can add a path
//!   segment or a query;
//! - every answer is read with a size cap ([`API_BODY_LIMIT`]) and within
//!   the run's [`Budget`];
//! - every returned object's `kind` is checked against what was asked for.

use http_body_util::{BodyExt, Limited};
use kube::core::params::{GetParams, ListParams};
use kube::core::Request;
use serde_json::Value;

use super::budget::{Budget, Limit};
use crate::snapshot::ServedResource;
use crate::target::{dns1123_label, dns1123_subdomain};

/// The API groups whose kinds make up Istio's configuration.
pub const ISTIO_GROUPS: &[&str] = &[
    "networking.istio.io",
    "security.istio.io",
    "authentication.istio.io",
];

/// Page size for list calls.
const PAGE: u32 = 500;

/// Cap on one API answer (one list page of 500 objects is a few MB).
pub const API_BODY_LIMIT: usize = 64 * 1024 * 1024;

/// Cap on an error answer's body.
const ERROR_BODY_LIMIT: usize = 1024 * 1024;

/// A failed API call.
#[derive(Debug, thiserror::Error)]
pub enum ApiCallError {
    /// The client or the server failed (the server's `Status` is inside
    /// `kube::Error::Api`).
    #[error("{}", describe_kube_error(.0))]
    Kube(#[source] kube::Error),
    /// No answer in time.
    #[error("{0}")]
    Timeout(Limit),
    /// The answer was larger than [`API_BODY_LIMIT`].
    #[error("the answer is larger than {} MiB; not read", .limit / (1024 * 1024))]
    TooLarge { limit: usize },
    /// The API answered with another kind of object than asked for.
    #[error("the API answered with a {found:?} where a {expected:?} was asked for")]
    WrongKind { expected: String, found: String },
    /// A path part that Kubernetes would never accept (never sent).
    #[error("{what} {value:?} is not a valid Kubernetes name ({reason}); not requested")]
    InvalidName {
        what: &'static str,
        value: String,
        reason: String,
    },
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

    /// 401: the credentials were refused.
    pub fn is_unauthorized(&self) -> bool {
        self.status_code() == Some(401)
    }

    /// 404 (also a plain-text `404 page not found` for an uninstalled kind), or
    /// reason `NotFound`.
    pub fn is_not_found(&self) -> bool {
        matches!(self, ApiCallError::Kube(kube::Error::Api(s)) if s.is_not_found() || s.code == 404)
    }

    /// The API server could not be reached or did not answer in time
    /// (connection refused, DNS, TLS, a timeout). An answered error is not one.
    pub fn is_unreachable(&self) -> bool {
        match self {
            ApiCallError::Timeout(_) => true,
            ApiCallError::Kube(e) => is_connection_error(e),
            _ => false,
        }
    }
}

/// A kube error that means the API server was not reached at all.
pub fn is_connection_error(e: &kube::Error) -> bool {
    matches!(
        e,
        kube::Error::HyperError(_)
            | kube::Error::Service(_)
            | kube::Error::RustlsTls(_)
            | kube::Error::TlsRequired
            | kube::Error::Auth(_)
            | kube::Error::ProxyProtocolDisabled { .. }
            | kube::Error::ProxyProtocolUnsupported { .. }
    )
}

/// How a failed list or get that the run can survive is recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// 404: the kind (or the object) is not there. Not a gap for a kind.
    NotFound,
    /// 403, with the server's words.
    Forbidden(String),
    /// Anything else the server answered, with its words.
    Other(String),
}

/// Classifies an answered failure (unreachable and 401 are handled before).
pub fn classify(e: &ApiCallError) -> Failure {
    if e.is_not_found() {
        Failure::NotFound
    } else if e.is_forbidden() {
        Failure::Forbidden(e.to_string())
    } else {
        Failure::Other(e.to_string())
    }
}

/// One Istio kind at the version it is listed at.
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

    pub fn collection(&self, namespace: Option<&str>) -> Result<Collection, ApiCallError> {
        Collection::new(
            &self.group,
            &self.version,
            &self.plural,
            &self.kind,
            namespace,
        )
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

/// A collection URL built from validated parts, with the type of its items.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Collection {
    path: String,
    api_version: String,
    kind: String,
}

fn check(what: &'static str, value: &str, ok: Result<(), String>) -> Result<(), ApiCallError> {
    ok.map_err(|reason| ApiCallError::InvalidName {
        what,
        value: value.to_string(),
        reason,
    })
}

fn check_version(v: &str) -> Result<(), String> {
    if !v.is_empty()
        && v.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    {
        Ok(())
    } else {
        Err("an API version is lowercase letters and digits".to_string())
    }
}

impl Collection {
    /// `/api/v1/namespaces/NS/pods`, `/apis/G/V/PLURAL`: every part checked.
    pub fn new(
        group: &str,
        version: &str,
        plural: &str,
        kind: &str,
        namespace: Option<&str>,
    ) -> Result<Collection, ApiCallError> {
        if !group.is_empty() {
            check("API group", group, dns1123_subdomain(group))?;
        }
        check("API version", version, check_version(version))?;
        check("resource", plural, dns1123_label(plural))?;
        let base = if group.is_empty() {
            format!("/api/{version}")
        } else {
            format!("/apis/{group}/{version}")
        };
        let path = match namespace {
            Some(ns) => {
                check("namespace", ns, dns1123_label(ns))?;
                format!("{base}/namespaces/{ns}/{plural}")
            }
            None => format!("{base}/{plural}"),
        };
        Ok(Collection {
            path,
            api_version: api_version(group, version),
            kind: kind.to_string(),
        })
    }

    /// A core (`v1`) collection.
    pub fn core(
        plural: &str,
        kind: &str,
        namespace: Option<&str>,
    ) -> Result<Collection, ApiCallError> {
        Collection::new("", "v1", plural, kind, namespace)
    }

    pub fn path(&self) -> &str {
        &self.path
    }

    pub fn kind(&self) -> &str {
        &self.kind
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

/// Checks an object's `kind` (if it has one) and sets its type.
fn typed(item: Value, api_version: &str, kind: &str) -> Result<Value, ApiCallError> {
    match item.get("kind").and_then(Value::as_str) {
        Some(k) if k != kind => Err(ApiCallError::WrongKind {
            expected: kind.to_string(),
            found: k.to_string(),
        }),
        _ if !item.is_object() => Err(ApiCallError::WrongKind {
            expected: kind.to_string(),
            found: "non-object".to_string(),
        }),
        _ => Ok(with_type(item, api_version, kind)),
    }
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
        if !listable || dns1123_label(name).is_err() {
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

/// The served versions of `group` in an `/apis` `APIGroupList`, preferred
/// version first, then the rest in the server's (priority) order.
pub fn group_versions(groups: &Value, group: &str) -> Vec<String> {
    let Some(g) = groups
        .get("groups")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find(|g| g.get("name").and_then(Value::as_str) == Some(group))
    else {
        return Vec::new();
    };
    let mut out: Vec<String> = Vec::new();
    if let Some(p) = g
        .pointer("/preferredVersion/version")
        .and_then(Value::as_str)
    {
        out.push(p.to_string());
    }
    for v in g
        .get("versions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|v| v.get("version").and_then(Value::as_str))
    {
        if !out.iter().any(|o| o == v) {
            out.push(v.to_string());
        }
    }
    out.retain(|v| check_version(v).is_ok());
    out
}

/// One version per kind: each version's kinds in order (preferred first),
/// a kind taken from the first version that serves it.
pub fn one_version_per_kind(per_version: Vec<Vec<Kind>>) -> Vec<Kind> {
    let mut out: Vec<Kind> = Vec::new();
    for kinds in per_version {
        for k in kinds {
            if !out.iter().any(|o| o.group == k.group && o.kind == k.kind) {
                out.push(k);
            }
        }
    }
    out
}

/// Read-only access to the API within the run's [`Budget`].
#[derive(Clone)]
pub struct ReadApi {
    client: kube::Client,
    budget: Budget,
}

impl ReadApi {
    pub fn new(client: kube::Client, budget: Budget) -> Self {
        ReadApi { client, budget }
    }

    pub fn client(&self) -> &kube::Client {
        &self.client
    }

    pub fn budget(&self) -> &Budget {
        &self.budget
    }

    /// Sends one GET and reads its JSON answer, bounded in time and size.
    async fn send(&self, req: http::Request<Vec<u8>>) -> Result<Value, ApiCallError> {
        let (deadline, limit) = self.budget.request();
        let work = async {
            let resp = self
                .client
                .send(req.map(kube::client::Body::from))
                .await
                .map_err(ApiCallError::Kube)?;
            let status = resp.status();
            let cap = if status.is_success() {
                API_BODY_LIMIT
            } else {
                ERROR_BODY_LIMIT
            };
            let body = Limited::new(resp.into_body(), cap)
                .collect()
                .await
                .map_err(|e| {
                    if e.downcast_ref::<http_body_util::LengthLimitError>()
                        .is_some()
                    {
                        ApiCallError::TooLarge { limit: cap }
                    } else {
                        ApiCallError::Kube(kube::Error::Service(e))
                    }
                })?
                .to_bytes();
            if !status.is_success() {
                return Err(ApiCallError::Kube(kube::Error::Api(
                    status_error(status, &body).boxed(),
                )));
            }
            serde_json::from_slice::<Value>(&body)
                .map_err(|e| ApiCallError::Kube(kube::Error::SerdeError(e)))
        };
        Budget::bound(deadline, work)
            .await
            .unwrap_or(Err(ApiCallError::Timeout(limit)))
    }

    /// `GET path` as JSON; `kind` (e.g. `APIGroupList`) checked when given.
    pub async fn get_path(&self, path: &str, kind: Option<&str>) -> Result<Value, ApiCallError> {
        let req = http::Request::get(path)
            .body(Vec::new())
            .map_err(|e| ApiCallError::Kube(kube::Error::HttpError(e)))?;
        let v = self.send(req).await?;
        match (kind, v.get("kind").and_then(Value::as_str)) {
            (Some(want), Some(found)) if want != found => Err(ApiCallError::WrongKind {
                expected: want.to_string(),
                found: found.to_string(),
            }),
            _ => Ok(v),
        }
    }

    /// `GET collection/name`, its kind checked.
    pub async fn get(&self, coll: &Collection, name: &str) -> Result<Value, ApiCallError> {
        check("name", name, dns1123_subdomain(name))?;
        let req = Request::new(coll.path())
            .get(name, &GetParams::default())
            .map_err(|e| ApiCallError::Kube(kube::Error::BuildRequest(e)))?;
        typed(self.send(req).await?, &coll.api_version, &coll.kind)
    }

    /// Lists a collection (all pages); every item's kind checked and set.
    pub async fn list(
        &self,
        coll: &Collection,
        label_selector: Option<&str>,
    ) -> Result<Vec<Value>, ApiCallError> {
        self.list_selected(coll, label_selector, None).await
    }

    /// [`Api::list`] with a field selector too (`status.podIP=…`): the
    /// server filters, so the answer does not grow with the cluster.
    pub async fn list_selected(
        &self,
        coll: &Collection,
        label_selector: Option<&str>,
        field_selector: Option<&str>,
    ) -> Result<Vec<Value>, ApiCallError> {
        self.list_until(coll, label_selector, field_selector, &|_| false)
            .await
    }

    /// [`Api::list_selected`] that stops asking for more pages once `enough`
    /// says the items so far suffice (a bounded sample).
    pub async fn list_until(
        &self,
        coll: &Collection,
        label_selector: Option<&str>,
        field_selector: Option<&str>,
        enough: &(dyn Fn(&[Value]) -> bool + Sync),
    ) -> Result<Vec<Value>, ApiCallError> {
        let list_kind = format!("{}List", coll.kind);
        let mut items = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let lp = ListParams {
                label_selector: label_selector.map(str::to_string),
                field_selector: field_selector.map(str::to_string),
                limit: Some(PAGE),
                continue_token: token.take(),
                ..ListParams::default()
            };
            let req = Request::new(coll.path())
                .list(&lp)
                .map_err(|e| ApiCallError::Kube(kube::Error::BuildRequest(e)))?;
            let mut page = self.send(req).await?;
            if let Some(k) = page.get("kind").and_then(Value::as_str) {
                if k != list_kind {
                    return Err(ApiCallError::WrongKind {
                        expected: list_kind,
                        found: k.to_string(),
                    });
                }
            }
            if let Some(Value::Array(list)) = page.get_mut("items").map(Value::take) {
                for i in list {
                    items.push(typed(i, &coll.api_version, &coll.kind)?);
                }
            }
            token = page
                .pointer("/metadata/continue")
                .and_then(Value::as_str)
                .filter(|t| !t.is_empty())
                .map(str::to_string);
            if token.is_none() || enough(&items) {
                break;
            }
        }
        Ok(items)
    }
}

/// The `Status` of an error answer, like kube's own handling: the JSON
/// `Status` when there is one, else one made from the status and the text.
fn status_error(status: http::StatusCode, body: &[u8]) -> kube::core::Status {
    if let Ok(s) = serde_json::from_slice::<kube::core::Status>(body) {
        if s.code != 0 || !s.reason.is_empty() {
            return s;
        }
    }
    let text = String::from_utf8_lossy(body);
    let text: String = text.trim().chars().take(500).collect();
    kube::core::Status::failure(&text, "Failed to parse error data").with_code(status.as_u16())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::time::Duration;

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
        let plain404 = api_err(404, "Failed to parse error data", "404 page not found");
        assert_eq!(classify(&plain404), Failure::NotFound);
        assert_eq!(plain404.to_string(), "HTTP 404: 404 page not found");
        assert!(matches!(
            classify(&api_err(500, "InternalError", "boom")),
            Failure::Other(_)
        ));
        assert!(api_err(401, "Unauthorized", "Unauthorized").is_unauthorized());
        let t = ApiCallError::Timeout(Limit::Request(Duration::from_secs(2)));
        assert!(t.is_unreachable());
        assert_eq!(t.to_string(), "no answer within 2s (--request-timeout)");
    }

    #[test]
    fn paths_are_built_from_valid_parts_only() {
        let p = |g, v, r, ns| Collection::new(g, v, r, "X", ns).map(|c| c.path().to_string());
        assert_eq!(
            p("", "v1", "pods", Some("foo")).unwrap(),
            "/api/v1/namespaces/foo/pods"
        );
        assert_eq!(
            p("", "v1", "namespaces", None).unwrap(),
            "/api/v1/namespaces"
        );
        assert_eq!(
            p("networking.istio.io", "v1alpha3", "destinationrules", None).unwrap(),
            "/apis/networking.istio.io/v1alpha3/destinationrules"
        );
        for (g, v, r, ns) in [
            ("", "v1", "configmaps", Some("foo/secrets/topsecret?")),
            ("", "v1", "services", Some("foo?x=1")),
            ("", "v1", "x/../secrets", None),
            ("a/b", "v1", "x", None),
            ("", "v1?", "x", None),
        ] {
            assert!(
                matches!(p(g, v, r, ns), Err(ApiCallError::InvalidName { .. })),
                "{g} {v} {r} {ns:?}"
            );
        }
        assert_eq!(api_version("", "v1"), "v1");
        assert_eq!(api_version("apps", "v1"), "apps/v1");
    }

    #[test]
    fn kinds_are_checked() {
        let svc = json!({"kind": "Service", "metadata": {"name": "x"}});
        assert_eq!(typed(svc, "v1", "Service").unwrap()["apiVersion"], "v1");
        let ns = json!({"kind": "Namespace", "metadata": {"name": "foo"}});
        let e = typed(ns, "v1", "Service").unwrap_err();
        assert!(
            e.to_string().contains("\"Namespace\" where a \"Service\""),
            "{e}"
        );
        assert!(typed(json!("x"), "v1", "Service").is_err());
        let untyped = typed(
            json!({"metadata": {"name": "x"}}),
            "security.istio.io/v1",
            "PeerAuthentication",
        )
        .unwrap();
        assert_eq!(untyped["kind"], "PeerAuthentication");
    }

    #[test]
    fn discovery_prefers_one_version_per_kind() {
        let groups = json!({"kind": "APIGroupList", "groups": [
            {"name": "apps", "versions": [{"groupVersion": "apps/v1", "version": "v1"}]},
            {"name": "networking.istio.io", "versions": [
                {"groupVersion": "networking.istio.io/v1alpha3", "version": "v1alpha3"},
                {"groupVersion": "networking.istio.io/v1", "version": "v1"},
                {"groupVersion": "networking.istio.io/v1beta1", "version": "v1beta1"}],
             "preferredVersion": {"groupVersion": "networking.istio.io/v1", "version": "v1"}}
        ]});
        assert_eq!(
            group_versions(&groups, "networking.istio.io"),
            vec!["v1", "v1alpha3", "v1beta1"]
        );
        assert!(group_versions(&groups, "security.istio.io").is_empty());
        let k = |v: &str, kind: &str| Kind {
            group: "networking.istio.io".into(),
            version: v.into(),
            kind: kind.into(),
            plural: kind.to_lowercase() + "s",
            namespaced: true,
        };
        let kinds = one_version_per_kind(vec![
            vec![k("v1", "DestinationRule"), k("v1", "VirtualService")],
            vec![
                k("v1alpha3", "DestinationRule"),
                k("v1alpha3", "EnvoyFilter"),
            ],
            vec![k("v1beta1", "DestinationRule"), k("v1beta1", "ProxyConfig")],
        ]);
        let got: Vec<(String, String)> = kinds
            .iter()
            .map(|k| (k.kind.clone(), k.version.clone()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("DestinationRule".into(), "v1".into()),
                ("VirtualService".into(), "v1".into()),
                ("EnvoyFilter".into(), "v1alpha3".into()),
                ("ProxyConfig".into(), "v1beta1".into()),
            ]
        );

        let list = json!({"kind": "APIResourceList", "groupVersion": "authentication.istio.io/v1alpha1",
        "resources": [
            {"name": "meshpolicies", "kind": "MeshPolicy", "namespaced": false, "verbs": ["get", "list"]},
            {"name": "policies", "kind": "Policy", "namespaced": true, "verbs": ["get", "list", "watch"]},
            {"name": "policies/status", "kind": "Policy", "namespaced": true, "verbs": ["get"]},
            {"name": "nolist", "kind": "NoList", "namespaced": true, "verbs": ["get"]},
            {"name": "../secrets", "kind": "Evil", "namespaced": true, "verbs": ["list"]}
        ]});
        let kinds = kinds_from_resource_list("authentication.istio.io", "v1alpha1", &list);
        assert_eq!(kinds.len(), 2);
        assert_eq!(kinds[0].kind, "MeshPolicy");
        assert!(!kinds[0].namespaced);
        assert_eq!(
            kinds[1].describe(),
            "policies.authentication.istio.io/v1alpha1"
        );
    }

    #[test]
    fn error_bodies_become_statuses() {
        let s = status_error(http::StatusCode::NOT_FOUND, b"404 page not found");
        assert_eq!(s.code, 404);
        let s = status_error(
            http::StatusCode::FORBIDDEN,
            br#"{"kind":"Status","apiVersion":"v1","status":"Failure","message":"no","reason":"Forbidden","code":403}"#,
        );
        assert!(s.is_forbidden());
    }
}
