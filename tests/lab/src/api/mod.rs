//! The lab's Kubernetes API server: plain HTTP on 127.0.0.1 (random port),
//! speaking the real wire protocol well enough for the installed `kubectl`
//! and kube-rs clients: discovery (legacy and aggregated), OpenAPI v3 stubs,
//! lists/gets with selectors, pagination, watches and server-side Tables,
//! writes (create, replace, patch, delete, dry-run), pod logs, WebSocket
//! port-forward (`v4.channel.k8s.io`), bearer-token auth and an RBAC
//! allowlist.

pub mod discovery;
pub mod logs;
pub mod objects;
pub mod patch;
pub mod portforward;
pub mod protobuf;
pub mod rbac;
pub mod request_log;
pub mod selectors;
pub mod status;
pub mod tables;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{FromRequestParts, Request, State};
use axum::http::{header, HeaderMap, Method};
use axum::response::Response;
use axum::serve::ListenerExt;
use axum::Router;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::resources::ResourceType;
use crate::runtime::PodRuntime;
use crate::store::{ApiError, Store};

use status::{
    error_response, json_response, json_response_as, page_not_found, parse_query, status_response,
    text_response, Details,
};

/// How the API server behaves beyond serving the store.
#[derive(Debug, Clone)]
pub struct ApiOptions {
    /// A ClusterRole object: if set, anything outside its rules answers a
    /// 403 Forbidden Status (discovery, /version and OpenAPI always allowed).
    pub rbac: Option<Value>,
    /// If set, requests without `Authorization: Bearer <token>` answer 401.
    pub token: Option<String>,
    /// The `gitVersion` /version reports, e.g. "v1.33.0".
    pub server_version: String,
    /// The user a valid `token` authenticates as (`lab`, the kubeconfig's user).
    pub token_user: String,
    /// Where every request is recorded (a fresh in-memory log when None).
    pub request_log: Option<Arc<request_log::RequestLog>>,
}

impl Default for ApiOptions {
    fn default() -> Self {
        ApiOptions {
            rbac: None,
            token: None,
            server_version: "v1.33.0".to_string(),
            token_user: "lab".to_string(),
            request_log: None,
        }
    }
}

/// Shared state of the request handlers.
pub(crate) struct Ctx {
    pub store: Store,
    pub runtime: Arc<dyn PodRuntime>,
    pub opts: ApiOptions,
    pub rules: Option<rbac::Rules>,
    /// Flips to true on shutdown; long streams (watch, log follow,
    /// port-forward) end when it does.
    pub shutdown: watch::Receiver<bool>,
    pub addr: SocketAddr,
    pub requests: Arc<request_log::RequestLog>,
}

/// A running API server. Dropping it stops serving.
pub struct ApiServer {
    addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl ApiServer {
    /// Bind 127.0.0.1:0 and serve in a tokio task.
    pub async fn start(
        store: Store,
        runtime: Arc<dyn PodRuntime>,
        opts: ApiOptions,
    ) -> anyhow::Result<ApiServer> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (tx, rx) = watch::channel(false);
        let rules = opts.rbac.as_ref().map(rbac::Rules::from_cluster_role);
        let requests = opts.request_log.clone().unwrap_or_default();
        let ctx = Arc::new(Ctx {
            requests,
            store,
            runtime,
            opts,
            rules,
            shutdown: rx.clone(),
            addr,
        });
        let app = Router::new().fallback(handle).with_state(ctx);
        let listener = listener.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        let mut stop = rx;
        let task = tokio::spawn(async move {
            let signal = async move {
                let _ = stop.wait_for(|v| *v).await;
            };
            if let Err(e) = axum::serve(listener, app)
                .with_graceful_shutdown(signal)
                .await
            {
                tracing::warn!("lab API server stopped: {e}");
            }
        });
        Ok(ApiServer {
            addr,
            shutdown: tx,
            task: Some(task),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stop accepting, end open streams, and wait (briefly) for open
    /// connections to finish.
    pub async fn shutdown(mut self) {
        self.shutdown.send_replace(true);
        if let Some(mut task) = self.task.take() {
            if tokio::time::timeout(Duration::from_secs(2), &mut task)
                .await
                .is_err()
            {
                task.abort();
            }
        }
    }
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        self.shutdown.send_replace(true);
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// What a resource path names.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub t: ResourceType,
    pub version: String,
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub sub: Option<String>,
}

impl Target {
    pub fn api_version(&self) -> String {
        self.t.api_version(&self.version)
    }

    /// Status details naming this target.
    pub fn details(&self) -> Details {
        Details {
            name: self.name.clone(),
            group: self.t.group.to_string(),
            kind: Some(self.t.plural.to_string()),
        }
    }

    pub fn error(&self, err: &ApiError) -> Response {
        status_response(err, &self.details())
    }
}

fn is_health(path: &str) -> bool {
    ["/healthz", "/readyz", "/livez"]
        .iter()
        .any(|p| path == *p || path.strip_prefix(p).is_some_and(|r| r.starts_with('/')))
}

fn authorized(headers: &HeaderMap, token: &str) -> bool {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|t| t.trim() == token)
}

/// Answer a request and record it in the request log.
async fn handle(State(ctx): State<Arc<Ctx>>, req: Request) -> Response {
    let record = request_record(&ctx, &req);
    let resp = serve(ctx.clone(), req).await;
    ctx.requests.record(request_log::RequestRecord {
        code: resp.status().as_u16(),
        ..record
    });
    resp
}

/// What the request log says about a request before it is answered.
fn request_record(ctx: &Ctx, req: &Request) -> request_log::RequestRecord {
    let headers = req.headers();
    let header = |h: &str| headers.get(h).and_then(|v| v.to_str().ok());
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    let method = req.method().clone();
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let target = match segs.as_slice() {
        ["api", v, rest @ ..] if !rest.is_empty() => parse_target(ctx, "", v, rest),
        ["apis", g, v, rest @ ..] if !rest.is_empty() => parse_target(ctx, g, v, rest),
        _ => None,
    };
    let q = parse_query(req.uri().query());
    let verb = target
        .as_ref()
        .and_then(|t| verb_for(&method, t, &q, headers))
        .map(str::to_string)
        .unwrap_or_else(|| method.as_str().to_ascii_lowercase());
    request_log::RequestRecord {
        seq: 0,
        time: crate::store::now_rfc3339(),
        verb,
        method: method.to_string(),
        path,
        query,
        user: request_log::identity(
            header("authorization"),
            ctx.opts.token.as_deref(),
            &ctx.opts.token_user,
        ),
        impersonated_user: header("impersonate-user").map(str::to_string),
        user_agent: header("user-agent").unwrap_or("").to_string(),
        resource: target.as_ref().map(|t| match &t.sub {
            Some(sub) => format!("{}/{sub}", t.t.plural),
            None => t.t.plural.to_string(),
        }),
        namespace: target.as_ref().and_then(|t| t.namespace.clone()),
        name: target.as_ref().and_then(|t| t.name.clone()),
        code: 0,
    }
}

async fn serve(ctx: Arc<Ctx>, req: Request) -> Response {
    let path = req.uri().path().to_string();
    if is_health(&path) {
        return text_response(200, "ok");
    }
    if let Some(token) = &ctx.opts.token {
        if !authorized(req.headers(), token) {
            return error_response(&ApiError::unauthorized());
        }
    }
    let q = parse_query(req.uri().query());
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let registry = ctx.store.registry();
    let get = req.method() == Method::GET;
    match segs.as_slice() {
        ["version"] if get => {
            return json_response(200, &discovery::version_info(&ctx.opts.server_version))
        }
        ["api"] if get => {
            return match discovery::wants_aggregated(req.headers()) {
                Some(v) => json_response_as(
                    200,
                    &discovery::aggregated(registry, true, v),
                    &discovery::aggregated_content_type(v),
                ),
                None => json_response(200, &discovery::api_versions(&ctx.addr.to_string())),
            };
        }
        ["apis"] if get => {
            return match discovery::wants_aggregated(req.headers()) {
                Some(v) => json_response_as(
                    200,
                    &discovery::aggregated(registry, false, v),
                    &discovery::aggregated_content_type(v),
                ),
                None => json_response(200, &discovery::api_group_list(registry)),
            };
        }
        ["apis", group] if get => {
            return match discovery::api_group_doc(registry, group) {
                Some(doc) => json_response(200, &doc),
                None => page_not_found(),
            };
        }
        ["openapi", "v3"] if get => {
            return json_response(
                200,
                &discovery::openapi_v3_root(registry, &ctx.opts.server_version),
            )
        }
        ["openapi", "v3", rest @ ..] if get => {
            let gv = match rest {
                ["api", v] => Some(("", *v)),
                ["apis", g, v] => Some((*g, *v)),
                _ => None,
            };
            return match gv.and_then(|(g, v)| {
                discovery::openapi_v3_gv(registry, g, v, &ctx.opts.server_version)
            }) {
                Some(doc) => json_response(200, &doc),
                None => page_not_found(),
            };
        }
        _ => {}
    }
    let (group, version, rest): (&str, &str, &[&str]) = match segs.as_slice() {
        ["api", v, rest @ ..] => ("", v, rest),
        ["apis", g, v, rest @ ..] => (g, v, rest),
        _ => return page_not_found(),
    };
    if registry.types_in(group, version).is_empty() {
        return page_not_found();
    }
    if rest.is_empty() {
        return if get {
            json_response(200, &discovery::resource_list(registry, group, version))
        } else {
            page_not_found()
        };
    }
    let Some(target) = parse_target(&ctx, group, version, rest) else {
        return page_not_found();
    };
    let method = req.method().clone();
    let verb = match verb_for(&method, &target, &q, req.headers()) {
        Some(v) => v,
        None => {
            return target.error(&ApiError::method_not_allowed(format!(
                "the server does not allow this method on the requested resource ({method} {path})"
            )))
        }
    };
    // Reviewing one's own access is always allowed (system:basic-user).
    if let Some(rules) = ctx.rules.as_ref().filter(|_| !target.t.is_review()) {
        let resource = match &target.sub {
            Some(sub) => format!("{}/{sub}", target.t.plural),
            None => target.t.plural.to_string(),
        };
        let attrs = rbac::Attributes {
            verb,
            group: target.t.group,
            resource,
            namespace: target.namespace.as_deref(),
            name: target.name.as_deref(),
        };
        if !rules.allows(&attrs) {
            let msg = rbac::forbidden_message(&attrs, &target.t.qualified_plural());
            return target.error(&ApiError::forbidden(msg));
        }
    }
    match target.sub.as_deref() {
        Some("log") => {
            return if get {
                logs::logs(ctx.clone(), &target, &q).await
            } else {
                target.error(&ApiError::method_not_allowed("pods/log only answers GET"))
            }
        }
        Some("portforward") => {
            let raw_query = req.uri().query().unwrap_or_default().to_string();
            let (mut parts, _body) = req.into_parts();
            let ws = axum::extract::ws::WebSocketUpgrade::from_request_parts(&mut parts, &()).await;
            return portforward::portforward(ctx.clone(), &target, &raw_query, &parts.headers, ws)
                .await;
        }
        _ => {}
    }
    let headers = req.headers().clone();
    let body = match axum::body::to_bytes(req.into_body(), 64 << 20).await {
        Ok(b) => b,
        Err(e) => {
            return error_response(&ApiError::bad_request(format!(
                "unable to read the request body: {e}"
            )))
        }
    };
    objects::handle(ctx, target, method, q, headers, body).await
}

/// The RBAC verb of a request, `None` if the method is not allowed there.
fn verb_for(
    method: &Method,
    target: &Target,
    q: &HashMap<String, String>,
    _headers: &HeaderMap,
) -> Option<&'static str> {
    let sub = target.sub.as_deref();
    let item = target.name.is_some();
    Some(match (method.as_str(), sub) {
        // A WebSocket port-forward is a GET that needs `create`, as on
        // Kubernetes >= 1.31 (AuthorizePodWebsocketUpgradeCreatePermission).
        ("GET" | "POST", Some("portforward")) => "create",
        ("GET", Some(_)) => "get",
        ("GET", None) if item => "get",
        ("GET", None) if status::query_flag(q, "watch") => "watch",
        ("GET", None) => "list",
        ("POST", None) if !item => "create",
        ("PUT", _) if item => "update",
        ("PATCH", _) if item => "patch",
        ("DELETE", None) if item => "delete",
        ("DELETE", None) => "deletecollection",
        _ => return None,
    })
}

fn parse_target(ctx: &Ctx, group: &str, version: &str, rest: &[&str]) -> Option<Target> {
    let registry = ctx.store.registry();
    let find = |plural: &str| {
        registry
            .by_plural(group, plural)
            .filter(|t| t.serves(version))
            .cloned()
    };
    let (t, namespace, tail): (ResourceType, Option<String>, &[&str]) = match rest {
        ["namespaces", ns, plural, tail @ ..] if find(plural).is_some_and(|t| t.namespaced) => {
            (find(plural)?, Some(ns.to_string()), tail)
        }
        [plural, tail @ ..] => {
            let t = find(plural)?;
            if t.namespaced && !tail.is_empty() {
                return None;
            }
            (t, None, tail)
        }
        [] => return None,
    };
    let (name, sub) = match tail {
        [] => (None, None),
        [name] => (Some(name.to_string()), None),
        [name, sub] => {
            if !t.subresources().iter().any(|(s, _)| s == sub) {
                return None;
            }
            (Some(name.to_string()), Some(sub.to_string()))
        }
        _ => return None,
    };
    Some(Target {
        t,
        version: version.to_string(),
        namespace,
        name,
        sub,
    })
}

/// Resolves once the server shuts down (or is dropped).
pub(crate) async fn stopped(mut rx: watch::Receiver<bool>) {
    let _ = rx.wait_for(|v| *v).await.is_ok();
}
