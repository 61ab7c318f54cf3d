//! The lab's xDS server: ADS over gRPC, state of the world, as istiod
//! serves it (istio/istio `pilot/pkg/xds/ads.go` `StreamAggregatedResources`),
//! plus SDS on the same server for the `sds-grpc` cluster (pilot-agent's
//! SDS server in a pod, `security/pkg/nodeagent/sds`).
//!
//! One server per process, on 127.0.0.1, on its own thread and runtime.
//! Each sidecar's config is published here as protobuf bytes per resource
//! (`publish`); a stream for that node (Envoy's `node.id`) sends what
//! changed and records ACKs and NACKs, which is how the lab knows a sidecar
//! runs what was published (`status`).
//!
//! Protocol (envoy `api/envoy/service/discovery/v3/discovery.proto`,
//! xDS protocol doc "ACK/NACK and resource type instance version"):
//! - Listener and Cluster are wildcard types: every response carries all
//!   of them (sent again only when the set changed).
//! - ClusterLoadAssignment, RouteConfiguration and Secret are sent per
//!   requested name, only when the resource changed since last sent.
//! - A request whose `response_nonce` is the last one sent is an ACK, or a
//!   NACK when it carries `error_detail`; an older nonce is stale and
//!   ignored. A rejected resource is not sent again until it changes (like
//!   istiod, which pushes on config changes, not on NACKs).
//!
//! Why state of the world and not delta: it is what istiod serves every
//! modelled release (delta xDS became the default only in recent ones),
//! Envoy rejects and reports per resource either way (`error_state` of the
//! rejected listener or cluster, the rest applies), and non-wildcard types
//! are already sent per changed resource; only a change of the cluster or
//! listener set resends the whole set (a few MB at 5,000 services, which
//! Envoy compares by hash and applies in well under a second).

use bytes::Bytes;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use crate::istiod::xds::{TYPE_CLA, TYPE_CLUSTER, TYPE_LISTENER, TYPE_ROUTE, TYPE_SECRET};

// ------------------------------------------------------------ messages

/// The fields of `envoy.config.core.v3.Node` the server reads.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Node {
    #[prost(string, tag = "1")]
    pub id: String,
}

/// `google.rpc.Status` (the NACK's `error_detail`).
#[derive(Clone, PartialEq, prost::Message)]
pub struct RpcStatus {
    #[prost(int32, tag = "1")]
    pub code: i32,
    #[prost(string, tag = "2")]
    pub message: String,
}

/// `envoy.service.discovery.v3.DiscoveryRequest` (fields 1–6).
#[derive(Clone, PartialEq, prost::Message)]
pub struct DiscoveryRequest {
    #[prost(string, tag = "1")]
    pub version_info: String,
    #[prost(message, optional, tag = "2")]
    pub node: Option<Node>,
    #[prost(string, repeated, tag = "3")]
    pub resource_names: Vec<String>,
    #[prost(string, tag = "4")]
    pub type_url: String,
    #[prost(string, tag = "5")]
    pub response_nonce: String,
    #[prost(message, optional, tag = "6")]
    pub error_detail: Option<RpcStatus>,
}

/// `envoy.config.core.v3.ControlPlane`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ControlPlane {
    #[prost(string, tag = "1")]
    pub identifier: String,
}

/// `envoy.service.discovery.v3.DiscoveryResponse` (fields 1, 2, 4–6).
#[derive(Clone, PartialEq, prost::Message)]
pub struct DiscoveryResponse {
    #[prost(string, tag = "1")]
    pub version_info: String,
    #[prost(message, repeated, tag = "2")]
    pub resources: Vec<prost_types::Any>,
    #[prost(string, tag = "4")]
    pub type_url: String,
    #[prost(string, tag = "5")]
    pub nonce: String,
    #[prost(message, optional, tag = "6")]
    pub control_plane: Option<ControlPlane>,
}

// ------------------------------------------------------------ published state

/// One sidecar's config as protobuf: type URL → name → encoded resource.
#[derive(Debug, Default, Clone)]
pub struct Resources {
    pub by_type: BTreeMap<&'static str, BTreeMap<String, Bytes>>,
    /// Secrets the config references over SDS (the others are served but
    /// not awaited: a pre-SDS release never asks for them).
    pub awaited_secrets: BTreeSet<String>,
}

#[derive(Clone)]
struct Res {
    hash: u64,
    bytes: Bytes,
}

/// What one stream has delivered of one type.
#[derive(Default)]
struct Delivery {
    /// Names asked for (empty for a wildcard type: all).
    subscribed: BTreeSet<String>,
    /// Non-wildcard: hash of each resource last sent.
    sent: HashMap<String, u64>,
    /// Wildcard: hash of the set last sent.
    sent_set: Option<u64>,
    nonce: String,
    nonce_epoch: u64,
    /// Waiting for the ACK or NACK of `nonce`.
    pending: bool,
}

#[derive(Default)]
struct Published {
    resources: BTreeMap<String, Res>,
    set_hash: u64,
}

/// A rejected push: type, the epoch it belonged to, Envoy's message.
#[derive(Clone)]
struct Rejection {
    epoch: u64,
    type_url: String,
    message: String,
}

#[derive(Default)]
struct NodeInner {
    /// Bumps whenever the published config changes.
    epoch: u64,
    version: String,
    types: BTreeMap<&'static str, Published>,
    awaited_secrets: BTreeSet<String>,
    /// (stream id, type URL) → delivery.
    deliveries: HashMap<(u64, String), Delivery>,
    rejections: Vec<Rejection>,
    closed: bool,
}

struct NodeEntry {
    /// Registration (so a sidecar only unregisters its own).
    generation: u64,
    inner: Mutex<NodeInner>,
    /// Wakes the node's streams when the config changes (value: epoch).
    wake: tokio::sync::watch::Sender<u64>,
    /// Wakes waiters when a stream sent something or got an ACK/NACK.
    progress: tokio::sync::Notify,
}

/// Whether a sidecar runs the config last published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncStatus {
    /// Everything published was sent and acknowledged.
    Synced,
    /// Not yet: why.
    Pending(String),
    /// Envoy rejected (part of) the current config: its messages.
    Rejected(Vec<String>),
}

const WILDCARD: [&str; 2] = [TYPE_CLUSTER, TYPE_LISTENER];
/// istiod's push order (`pilot/pkg/xds/ads.go` `PushOrder`): clusters,
/// endpoints, listeners, routes, secrets.
const PUSH_ORDER: [&str; 5] = [
    TYPE_CLUSTER,
    TYPE_CLA,
    TYPE_LISTENER,
    TYPE_ROUTE,
    TYPE_SECRET,
];

fn hash_bytes(b: &[u8]) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    b.hash(&mut h);
    h.finish()
}

fn set_hash(resources: &BTreeMap<String, Res>) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for (n, r) in resources {
        n.hash(&mut h);
        r.hash.hash(&mut h);
    }
    h.finish()
}

/// Istio-style version text `<UTC time>/<counter>`.
fn version_text(counter: u64) -> String {
    let t = time::OffsetDateTime::now_utc();
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z/{counter}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

static NONCE: AtomicU64 = AtomicU64::new(1);
static STREAM: AtomicU64 = AtomicU64::new(1);
static GENERATION: AtomicU64 = AtomicU64::new(1);

impl NodeInner {
    /// The response a delivery needs now, if any.
    fn respond(&mut self, stream: u64, type_url: &str) -> Option<DiscoveryResponse> {
        let epoch = self.epoch;
        let version = self.version.clone();
        let empty = Published::default();
        let published = self.types.get(type_url).unwrap_or(&empty);
        let d = self.deliveries.get_mut(&(stream, type_url.to_string()))?;
        let mut recreated = Vec::new();
        let resources: Vec<(&String, &Res)> = if WILDCARD.contains(&type_url) {
            if d.sent_set == Some(published.set_hash) {
                return None;
            }
            d.sent_set = Some(published.set_hash);
            // A cluster Envoy re-creates warms until it gets its endpoints
            // again: note which ones, so their assignments are resent
            // (istiod follows every cluster push with endpoints).
            for (n, r) in &published.resources {
                if d.sent.get(n) != Some(&r.hash) {
                    recreated.push(n.clone());
                }
            }
            d.sent = published
                .resources
                .iter()
                .map(|(n, r)| (n.clone(), r.hash))
                .collect();
            published.resources.iter().collect()
        } else {
            let mut out = Vec::new();
            for n in &d.subscribed {
                if let Some(r) = published.resources.get(n) {
                    if d.sent.get(n) != Some(&r.hash) {
                        out.push((n, r));
                    }
                }
            }
            if out.is_empty() {
                return None;
            }
            for (n, r) in &out {
                d.sent.insert((*n).clone(), r.hash);
            }
            out
        };
        let nonce = NONCE.fetch_add(1, Ordering::Relaxed).to_string();
        d.nonce = nonce.clone();
        d.nonce_epoch = epoch;
        d.pending = true;
        let response = DiscoveryResponse {
            version_info: version,
            resources: resources
                .into_iter()
                .map(|(_, r)| prost_types::Any {
                    type_url: type_url.to_string(),
                    value: r.bytes.to_vec(),
                })
                .collect(),
            type_url: type_url.to_string(),
            nonce,
            control_plane: Some(ControlPlane {
                identifier: "mesh503-lab".into(),
            }),
        };
        if type_url == TYPE_CLUSTER && !recreated.is_empty() {
            // EDS service name = cluster name (istiod's).
            for ((_, t), cla) in self.deliveries.iter_mut() {
                if t == TYPE_CLA {
                    for n in &recreated {
                        cla.sent.remove(n);
                    }
                }
            }
        }
        Some(response)
    }

    fn on_request(
        &mut self,
        stream: u64,
        first_of_type: bool,
        req: DiscoveryRequest,
    ) -> Option<DiscoveryResponse> {
        let key = (stream, req.type_url.clone());
        if first_of_type {
            self.deliveries.insert(key.clone(), Delivery::default());
        }
        let epoch = self.epoch;
        let d = self.deliveries.entry(key).or_default();
        if !req.response_nonce.is_empty() {
            if req.response_nonce != d.nonce {
                return None; // stale: a newer response is on its way
            }
            d.pending = false;
            if let Some(err) = req.error_detail {
                let rej = Rejection {
                    epoch: d.nonce_epoch,
                    type_url: req.type_url.clone(),
                    message: err.message,
                };
                if rej.epoch == epoch {
                    self.rejections.push(rej);
                }
            }
        }
        let d = self.deliveries.get_mut(&(stream, req.type_url.clone()))?;
        d.subscribed = req
            .resource_names
            .into_iter()
            .filter(|n| n != "*")
            .collect();
        self.respond(stream, &req.type_url)
    }

    fn status(&self) -> SyncStatus {
        let rejected: Vec<String> = self
            .rejections
            .iter()
            .filter(|r| r.epoch == self.epoch)
            .map(|r| format!("{} rejected: {}", short(&r.type_url), r.message))
            .collect();
        if !rejected.is_empty() {
            return SyncStatus::Rejected(rejected);
        }
        for t in PUSH_ORDER {
            let published = self.types.get(t);
            let deliveries: Vec<&Delivery> = self
                .deliveries
                .iter()
                .filter(|((_, dt), _)| dt == t)
                .map(|(_, d)| d)
                .collect();
            if deliveries.iter().any(|d| d.pending) {
                return SyncStatus::Pending(format!("{} not acknowledged yet", short(t)));
            }
            if WILDCARD.contains(&t) {
                let want = published
                    .map(|p| p.set_hash)
                    .unwrap_or_else(|| set_hash(&BTreeMap::new()));
                if !deliveries.iter().any(|d| d.sent_set == Some(want)) {
                    return SyncStatus::Pending(format!("{} not delivered yet", short(t)));
                }
                continue;
            }
            let Some(published) = published else { continue };
            for (name, r) in &published.resources {
                if t == TYPE_SECRET && !self.awaited_secrets.contains(name) {
                    continue;
                }
                if !deliveries.iter().any(|d| d.sent.get(name) == Some(&r.hash)) {
                    return SyncStatus::Pending(format!("{} {name} not delivered yet", short(t)));
                }
            }
        }
        SyncStatus::Synced
    }
}

fn short(type_url: &str) -> &str {
    type_url.rsplit('.').next().unwrap_or(type_url)
}

// ------------------------------------------------------------ server

#[derive(Default)]
struct ServerState {
    nodes: Mutex<HashMap<String, Arc<NodeEntry>>>,
}

impl ServerState {
    fn node(&self, id: &str) -> Option<Arc<NodeEntry>> {
        self.nodes.lock().ok()?.get(id).cloned()
    }
}

/// The process's xDS server.
pub struct AdsServer {
    addr: SocketAddr,
    state: Arc<ServerState>,
}

/// Start the server on first use.
pub fn server() -> anyhow::Result<&'static AdsServer> {
    static SERVER: OnceLock<AdsServer> = OnceLock::new();
    static START: Mutex<()> = Mutex::new(());
    if let Some(s) = SERVER.get() {
        return Ok(s);
    }
    let _one = START
        .lock()
        .map_err(|_| anyhow::anyhow!("xDS server start poisoned"))?;
    if let Some(s) = SERVER.get() {
        return Ok(s);
    }
    let listener = std::net::TcpListener::bind("127.0.0.1:0")
        .map_err(|e| anyhow::anyhow!("binding the lab's xDS server: {e}"))?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    let state = Arc::new(ServerState::default());
    let shared = state.clone();
    std::thread::Builder::new()
        .name("mesh503-xds".into())
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("mesh503-lab: xDS server runtime: {e}");
                    return;
                }
            };
            rt.block_on(async move {
                let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
                    return;
                };
                let incoming =
                    tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
                let res = tonic::transport::Server::builder()
                    .add_service(grpc::Ads(shared.clone()))
                    .add_service(grpc::Sds(shared))
                    .serve_with_incoming(incoming)
                    .await;
                if let Err(e) = res {
                    eprintln!("mesh503-lab: xDS server stopped: {e}");
                }
            });
        })?;
    let _ = SERVER.set(AdsServer { addr, state });
    SERVER
        .get()
        .ok_or_else(|| anyhow::anyhow!("xDS server not started"))
}

impl AdsServer {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Register a node (a sidecar about to start); returns its generation.
    pub fn register(&self, node_id: &str) -> u64 {
        let generation = GENERATION.fetch_add(1, Ordering::Relaxed);
        let entry = Arc::new(NodeEntry {
            generation,
            inner: Mutex::new(NodeInner::default()),
            wake: tokio::sync::watch::channel(0).0,
            progress: tokio::sync::Notify::new(),
        });
        if let Ok(mut nodes) = self.state.nodes.lock() {
            if let Some(old) = nodes.insert(node_id.to_string(), entry) {
                close(&old);
            }
        }
        generation
    }

    /// Remove a node's config (if still `generation`'s): its streams end.
    pub fn unregister(&self, node_id: &str, generation: u64) {
        if let Ok(mut nodes) = self.state.nodes.lock() {
            if nodes.get(node_id).map(|n| n.generation) == Some(generation) {
                if let Some(old) = nodes.remove(node_id) {
                    close(&old);
                }
            }
        }
    }

    /// Publish a node's whole config. Returns false when nothing changed
    /// (nothing is sent then).
    pub fn publish(&self, node_id: &str, res: Resources) -> anyhow::Result<bool> {
        let node = self
            .state
            .node(node_id)
            .ok_or_else(|| anyhow::anyhow!("xDS node {node_id} is not registered"))?;
        let epoch = {
            let mut inner = node
                .inner
                .lock()
                .map_err(|_| anyhow::anyhow!("xDS node state poisoned"))?;
            let mut types: BTreeMap<&'static str, Published> = BTreeMap::new();
            for (t, by_name) in res.by_type {
                let resources: BTreeMap<String, Res> = by_name
                    .into_iter()
                    .map(|(n, bytes)| {
                        let hash = hash_bytes(&bytes);
                        (n, Res { hash, bytes })
                    })
                    .collect();
                let set_hash = set_hash(&resources);
                types.insert(
                    t,
                    Published {
                        resources,
                        set_hash,
                    },
                );
            }
            let same = inner.epoch > 0
                && inner.awaited_secrets == res.awaited_secrets
                && inner.types.len() == types.len()
                && inner
                    .types
                    .iter()
                    .zip(types.iter())
                    .all(|((ta, a), (tb, b))| ta == tb && a.set_hash == b.set_hash);
            if same {
                return Ok(false);
            }
            inner.epoch += 1;
            inner.version = version_text(inner.epoch);
            inner.types = types;
            inner.awaited_secrets = res.awaited_secrets;
            inner.epoch
        };
        node.wake.send_replace(epoch);
        Ok(true)
    }

    /// Does the node run what was published last?
    pub fn status(&self, node_id: &str) -> SyncStatus {
        match self.state.node(node_id) {
            None => SyncStatus::Pending(format!("xDS node {node_id} is not registered")),
            Some(n) => match n.inner.lock() {
                Ok(inner) => inner.status(),
                Err(_) => SyncStatus::Pending("xDS node state poisoned".into()),
            },
        }
    }

    /// Wait (up to `max`) for a stream of the node to make progress.
    pub async fn progress(&self, node_id: &str, max: Duration) {
        if let Some(n) = self.state.node(node_id) {
            let _ = tokio::time::timeout(max, n.progress.notified()).await;
        } else {
            tokio::time::sleep(max).await;
        }
    }
}

fn close(node: &NodeEntry) {
    if let Ok(mut inner) = node.inner.lock() {
        inner.closed = true;
    }
    node.wake.send_modify(|e| *e += 1);
    node.progress.notify_waiters();
}

/// Serve one gRPC stream (ADS, or SDS) until the client goes away or the
/// node is unregistered.
async fn serve_stream(
    state: Arc<ServerState>,
    mut inbound: tonic::Streaming<DiscoveryRequest>,
    tx: tokio::sync::mpsc::Sender<Result<DiscoveryResponse, tonic::Status>>,
) {
    let first = match inbound.message().await {
        Ok(Some(r)) => r,
        _ => return,
    };
    let node_id = first
        .node
        .as_ref()
        .map(|n| n.id.clone())
        .unwrap_or_default();
    let Some(node) = state.node(&node_id) else {
        let _ = tx
            .send(Err(tonic::Status::unavailable(format!(
                "unknown node {node_id:?}"
            ))))
            .await;
        return;
    };
    let stream = STREAM.fetch_add(1, Ordering::Relaxed);
    let _cleanup = StreamGuard {
        node: node.clone(),
        stream,
    };
    let mut wake = node.wake.subscribe();
    wake.borrow_and_update();
    let mut seen: HashSet<String> = HashSet::new();
    let mut next = Some(first);
    loop {
        let mut out = Vec::new();
        {
            let Ok(mut inner) = node.inner.lock() else {
                return;
            };
            if inner.closed {
                return;
            }
            match next.take() {
                Some(req) => {
                    let first_of_type = seen.insert(req.type_url.clone());
                    out.extend(inner.on_request(stream, first_of_type, req));
                }
                None => {
                    for t in PUSH_ORDER {
                        if seen.contains(t) {
                            out.extend(inner.respond(stream, t));
                        }
                    }
                }
            }
        }
        for r in out {
            if tx.send(Ok(r)).await.is_err() {
                return;
            }
        }
        node.progress.notify_waiters();
        tokio::select! {
            m = inbound.message() => match m {
                Ok(Some(r)) => next = Some(r),
                _ => return,
            },
            c = wake.changed() => if c.is_err() { return },
        }
    }
}

/// Forget a stream's deliveries when it ends.
struct StreamGuard {
    node: Arc<NodeEntry>,
    stream: u64,
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        if let Ok(mut inner) = self.node.inner.lock() {
            inner.deliveries.retain(|(s, _), _| *s != self.stream);
        }
        self.node.progress.notify_waiters();
    }
}

/// The gRPC services (what tonic-build would generate for
/// `AggregatedDiscoveryService` and `SecretDiscoveryService`; only the
/// state-of-the-world streams are served, the others answer UNIMPLEMENTED).
mod grpc {
    use super::{serve_stream, DiscoveryRequest, DiscoveryResponse, ServerState};
    use std::convert::Infallible;
    use std::future::Future;
    use std::pin::Pin;
    use std::sync::Arc;
    use std::task::{Context, Poll};
    use tonic::body::Body;
    use tonic::codegen::http;

    type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

    const ADS_PATH: &str =
        "/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources";
    const SDS_PATH: &str = "/envoy.service.secret.v3.SecretDiscoveryService/StreamSecrets";

    struct Streamer(Arc<ServerState>);

    impl tonic::server::StreamingService<DiscoveryRequest> for Streamer {
        type Response = DiscoveryResponse;
        type ResponseStream =
            tokio_stream::wrappers::ReceiverStream<Result<DiscoveryResponse, tonic::Status>>;
        type Future = BoxFuture<Result<tonic::Response<Self::ResponseStream>, tonic::Status>>;

        fn call(
            &mut self,
            request: tonic::Request<tonic::Streaming<DiscoveryRequest>>,
        ) -> Self::Future {
            let state = self.0.clone();
            Box::pin(async move {
                let (tx, rx) = tokio::sync::mpsc::channel(16);
                tokio::spawn(serve_stream(state, request.into_inner(), tx));
                Ok(tonic::Response::new(
                    tokio_stream::wrappers::ReceiverStream::new(rx),
                ))
            })
        }
    }

    fn route(
        state: &Arc<ServerState>,
        path: &str,
        req: http::Request<Body>,
    ) -> BoxFuture<Result<http::Response<Body>, Infallible>> {
        if req.uri().path() == path {
            let svc = Streamer(state.clone());
            Box::pin(async move {
                let codec =
                    tonic_prost::ProstCodec::<DiscoveryResponse, DiscoveryRequest>::default();
                let mut grpc = tonic::server::Grpc::new(codec)
                    .max_decoding_message_size(64 << 20)
                    .max_encoding_message_size(usize::MAX);
                Ok(grpc.streaming(svc, req).await)
            })
        } else {
            Box::pin(async move {
                Ok(tonic::Status::unimplemented("not served by the lab").into_http())
            })
        }
    }

    macro_rules! service {
        ($name:ident, $svc:literal, $path:expr) => {
            #[derive(Clone)]
            pub struct $name(pub Arc<ServerState>);

            impl tonic::server::NamedService for $name {
                const NAME: &'static str = $svc;
            }

            impl tonic::codegen::Service<http::Request<Body>> for $name {
                type Response = http::Response<Body>;
                type Error = Infallible;
                type Future = BoxFuture<Result<Self::Response, Infallible>>;

                fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
                    Poll::Ready(Ok(()))
                }

                fn call(&mut self, req: http::Request<Body>) -> Self::Future {
                    route(&self.0, $path, req)
                }
            }
        };
    }

    service!(
        Ads,
        "envoy.service.discovery.v3.AggregatedDiscoveryService",
        ADS_PATH
    );
    service!(
        Sds,
        "envoy.service.secret.v3.SecretDiscoveryService",
        SDS_PATH
    );
}
