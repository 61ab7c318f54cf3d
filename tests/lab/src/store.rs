//! The lab's object store: plain Kubernetes objects as `serde_json::Value`,
//! one per (group, kind, namespace, name) whatever version they were written
//! in. Thread-safe and cheap to clone; every change bumps a global
//! resourceVersion that subscribers (the controller, the istiod model, API
//! watches) can wait on.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::{json, Map, Value};
use tokio::sync::{broadcast, watch};

use crate::resources::{split_api_version, Registry, ResourceType};

/// An API error, as a Kubernetes `Status` would carry it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub code: u16,
    /// NotFound, AlreadyExists, Conflict, Forbidden, Unauthorized, BadRequest,
    /// Invalid, MethodNotAllowed, Gone, …
    pub reason: String,
    pub message: String,
    /// Status `details` the API server sets itself (validation errors:
    /// `{name, kind, causes}`); None: the lab derives them from the path.
    pub details: Option<Value>,
}

impl ApiError {
    pub fn new(code: u16, reason: &str, message: impl Into<String>) -> ApiError {
        ApiError {
            code,
            reason: reason.to_string(),
            message: message.into(),
            details: None,
        }
    }
    /// `pods "x" not found` (`what` is the plural, qualified by group for non-core types).
    pub fn not_found(what: &str, name: &str) -> ApiError {
        Self::new(404, "NotFound", format!("{what} \"{name}\" not found"))
    }
    pub fn already_exists(what: &str, name: &str) -> ApiError {
        Self::new(
            409,
            "AlreadyExists",
            format!("{what} \"{name}\" already exists"),
        )
    }
    pub fn conflict(what: &str, name: &str) -> ApiError {
        Self::new(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {what} \"{name}\": the object has been modified; please apply your changes to the latest version and try again"
            ),
        )
    }
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        Self::new(400, "BadRequest", message)
    }
    pub fn invalid(message: impl Into<String>) -> ApiError {
        Self::new(422, "Invalid", message)
    }
    pub fn method_not_allowed(message: impl Into<String>) -> ApiError {
        Self::new(405, "MethodNotAllowed", message)
    }
    pub fn forbidden(message: impl Into<String>) -> ApiError {
        Self::new(403, "Forbidden", message)
    }
    pub fn unauthorized() -> ApiError {
        Self::new(401, "Unauthorized", "Unauthorized")
    }
    pub fn gone(message: impl Into<String>) -> ApiError {
        Self::new(410, "Expired", message)
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}): {}", self.reason, self.code, self.message)
    }
}

impl std::error::Error for ApiError {}

/// What happened to an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Added,
    Modified,
    Deleted,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

/// One change, as API watches stream it.
#[derive(Debug, Clone)]
pub struct WatchEvent {
    /// The global resourceVersion of the change.
    pub rv: u64,
    pub event: EventType,
    pub group: String,
    pub kind: String,
    pub object: Value,
}

impl WatchEvent {
    pub fn namespace(&self) -> Option<&str> {
        self.object
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
    }
}

/// How many past changes a watch can resume from.
const HISTORY: usize = 4096;

type TypeKey = (String, String);
type ObjKey = (String, String);

struct State {
    rv: u64,
    objects: BTreeMap<TypeKey, BTreeMap<ObjKey, Value>>,
    history: VecDeque<WatchEvent>,
}

struct Inner {
    registry: Registry,
    state: Mutex<State>,
    changes: watch::Sender<u64>,
    events: broadcast::Sender<WatchEvent>,
}

/// The object store. Cheap to clone (Arc inside), thread-safe, usable from
/// sync and async code (no lock is held across an await).
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

/// One page of a list ([`Store::list_page`]).
#[derive(Debug)]
pub struct ListPage {
    pub items: Vec<Value>,
    /// How many more objects match after this page.
    pub remaining: usize,
    pub rv: u64,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("resource_version", &self.resource_version())
            .finish()
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Apply,
    Create,
    Replace,
}

impl Store {
    pub fn new(registry: Registry) -> Store {
        let (changes, _) = watch::channel(0);
        let (events, _) = broadcast::channel(HISTORY);
        Store {
            inner: Arc::new(Inner {
                registry,
                state: Mutex::new(State {
                    rv: 0,
                    objects: BTreeMap::new(),
                    history: VecDeque::new(),
                }),
                changes,
                events,
            }),
        }
    }

    pub fn registry(&self) -> &Registry {
        &self.inner.registry
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.inner.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The current global resourceVersion (0 before any write).
    pub fn resource_version(&self) -> u64 {
        self.lock().rv
    }

    /// Create or replace by (group, kind, namespace, name). Fills
    /// metadata.uid, metadata.resourceVersion, metadata.creationTimestamp
    /// (kept on replace) and metadata.generation; namespaced kinds without a
    /// namespace get "default". On create, a uid or creationTimestamp the
    /// object already carries is kept (scenarios may pin them).
    pub fn apply(&self, obj: Value) -> Result<Value, ApiError> {
        self.write(Mode::Apply, obj, false)
    }

    /// Create; AlreadyExists if present.
    pub fn create(&self, obj: Value) -> Result<Value, ApiError> {
        self.write(Mode::Create, obj, false)
    }

    /// Replace; NotFound if absent, Conflict on a stale resourceVersion if given.
    pub fn replace(&self, obj: Value) -> Result<Value, ApiError> {
        self.write(Mode::Replace, obj, false)
    }

    /// [`Store::create`], but with `dry_run` nothing is stored.
    pub fn create_opts(&self, obj: Value, dry_run: bool) -> Result<Value, ApiError> {
        self.write(Mode::Create, obj, dry_run)
    }

    /// [`Store::replace`], but with `dry_run` nothing is stored.
    pub fn replace_opts(&self, obj: Value, dry_run: bool) -> Result<Value, ApiError> {
        self.write(Mode::Replace, obj, dry_run)
    }

    /// Delete, returning the object as it was.
    pub fn delete(
        &self,
        group: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<Value, ApiError> {
        self.delete_opts(group, kind, namespace, name, false)
    }

    /// [`Store::delete`], but with `dry_run` nothing is removed.
    /// Deleting a Namespace also deletes every object in it.
    pub fn delete_opts(
        &self,
        group: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
        dry_run: bool,
    ) -> Result<Value, ApiError> {
        let t = self.type_of(group, kind)?;
        let ns = effective_namespace(t, namespace);
        let mut st = self.lock();
        let tkey = (group.to_string(), kind.to_string());
        let okey = (ns.clone(), name.to_string());
        let Some(existing) = st.objects.get(&tkey).and_then(|m| m.get(&okey)).cloned() else {
            return Err(ApiError::not_found(&t.qualified_plural(), name));
        };
        if dry_run {
            return Ok(existing);
        }
        let mut removed = Vec::new();
        if let Some(m) = st.objects.get_mut(&tkey) {
            m.remove(&okey);
        }
        removed.push((tkey, existing.clone()));
        if group.is_empty() && kind == "Namespace" {
            for (tk, objs) in st.objects.iter_mut() {
                let keys: Vec<ObjKey> = objs.keys().filter(|(n, _)| n == name).cloned().collect();
                for k in keys {
                    if let Some(o) = objs.remove(&k) {
                        removed.push((tk.clone(), o));
                    }
                }
            }
        }
        let mut last = 0;
        for ((g, k), mut obj) in removed {
            st.rv += 1;
            last = st.rv;
            set_rv(&mut obj, st.rv);
            self.record(&mut st, EventType::Deleted, g, k, obj);
        }
        drop(st);
        self.inner.changes.send_replace(last);
        Ok(existing)
    }

    pub fn get(
        &self,
        group: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Option<Value> {
        let t = self.registry().by_kind(group, kind)?;
        let ns = effective_namespace(t, namespace);
        let st = self.lock();
        st.objects
            .get(&(group.to_string(), kind.to_string()))
            .and_then(|m| m.get(&(ns, name.to_string())))
            .cloned()
    }

    /// Objects of a kind, in one namespace or (None) all of them, sorted by
    /// namespace then name.
    pub fn list(&self, group: &str, kind: &str, namespace: Option<&str>) -> Vec<Value> {
        self.list_with_rv(group, kind, namespace).0
    }

    /// One page of a list, as an API server backed by a range read serves it:
    /// the objects of a kind (in `namespace`, or all) after the key `after`
    /// in (namespace, name) order that `keep` accepts, at most `limit`
    /// cloned; with how many more `keep` accepts and the resourceVersion.
    /// Only the page is copied, so a paged list of N objects costs O(N), not
    /// O(N²/limit) (kube-apiserver serves a `continue` page from a range
    /// read of etcd or its watch cache, never re-reading the start).
    pub fn list_page(
        &self,
        group: &str,
        kind: &str,
        namespace: Option<&str>,
        after: Option<&ObjKey>,
        limit: Option<usize>,
        keep: impl Fn(&Value) -> bool,
    ) -> ListPage {
        use std::ops::Bound::{Excluded, Unbounded};
        let st = self.lock();
        let mut page = ListPage {
            items: Vec::new(),
            remaining: 0,
            rv: st.rv,
        };
        let Some(m) = st.objects.get(&(group.to_string(), kind.to_string())) else {
            return page;
        };
        let start = after.map_or(Unbounded, |k| Excluded(k.clone()));
        let matching = m
            .range((start, Unbounded))
            .filter(|((ns, _), _)| namespace.is_none_or(|want| want == ns))
            .filter(|(_, v)| keep(v));
        for (_, v) in matching {
            if limit.is_some_and(|l| page.items.len() >= l) {
                page.remaining += 1;
            } else {
                page.items.push(v.clone());
            }
        }
        page
    }

    /// [`Store::list`] plus the resourceVersion the list is consistent with.
    pub fn list_with_rv(
        &self,
        group: &str,
        kind: &str,
        namespace: Option<&str>,
    ) -> (Vec<Value>, u64) {
        let st = self.lock();
        let items = st
            .objects
            .get(&(group.to_string(), kind.to_string()))
            .map(|m| {
                m.iter()
                    .filter(|((ns, _), _)| namespace.is_none_or(|want| want == ns))
                    .map(|(_, v)| v.clone())
                    .collect()
            })
            .unwrap_or_default();
        (items, st.rv)
    }

    /// Every stored object.
    pub fn all(&self) -> Vec<Value> {
        let st = self.lock();
        st.objects
            .values()
            .flat_map(|m| m.values().cloned())
            .collect()
    }

    /// Bumps on every change (the value is the latest resourceVersion); the
    /// lab's controller and istiod model wait on it.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.inner.changes.subscribe()
    }

    /// Events of a kind after `since_rv` (kept for the last few thousand
    /// changes) plus a receiver for later ones, with no gap between the two.
    /// `since_rv` older than the kept history is a 410 Gone, as on a real
    /// API server.
    pub fn watch_since(
        &self,
        group: &str,
        kind: &str,
        since_rv: u64,
    ) -> Result<(Vec<WatchEvent>, broadcast::Receiver<WatchEvent>), ApiError> {
        let st = self.lock();
        let rx = self.inner.events.subscribe();
        if let Some(oldest) = st.history.front() {
            if since_rv + 1 < oldest.rv {
                return Err(ApiError::gone(format!(
                    "too old resource version: {since_rv} ({})",
                    oldest.rv - 1
                )));
            }
        }
        let replay = st
            .history
            .iter()
            .filter(|e| e.rv > since_rv && e.group == group && e.kind == kind)
            .cloned()
            .collect();
        Ok((replay, rx))
    }

    /// Atomically read-modify-write one object: `f` edits a copy of the
    /// stored object (NotFound if absent); the result is stored as by
    /// [`Store::replace`] unless `dry_run`.
    pub fn update_with<F>(
        &self,
        group: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
        dry_run: bool,
        f: F,
    ) -> Result<Value, ApiError>
    where
        F: FnOnce(&mut Value) -> Result<(), ApiError>,
    {
        let t = self.type_of(group, kind)?.clone();
        let ns = effective_namespace(&t, namespace);
        let st = self.lock();
        let tkey = (group.to_string(), kind.to_string());
        let okey = (ns, name.to_string());
        let Some(existing) = st.objects.get(&tkey).and_then(|m| m.get(&okey)).cloned() else {
            return Err(ApiError::not_found(&t.qualified_plural(), name));
        };
        let mut obj = existing.clone();
        f(&mut obj)?;
        // The edit must not move the object.
        let mut obj = self.normalize(&t, obj)?;
        crate::validation::validate(&t, &obj)?;
        if obj.pointer("/metadata/name").and_then(Value::as_str) != Some(name) {
            return Err(ApiError::invalid(format!(
                "{} \"{name}\" is invalid: metadata.name: Invalid value: field is immutable",
                t.qualified_plural()
            )));
        }
        if meta_str(&obj, "namespace") != meta_str(&existing, "namespace") {
            return Err(ApiError::invalid(format!(
                "{} \"{name}\" is invalid: metadata.namespace: Invalid value: field is immutable",
                t.qualified_plural()
            )));
        }
        if let Some(rv) = meta_str(&obj, "resourceVersion") {
            if Some(rv) != meta_str(&existing, "resourceVersion") {
                return Err(ApiError::conflict(&t.qualified_plural(), name));
            }
        }
        carry_over(&mut obj, &existing);
        if unchanged(&obj, &existing) {
            return Ok(existing);
        }
        if dry_run {
            return Ok(obj);
        }
        Ok(self.commit(st, tkey, okey, obj, EventType::Modified))
    }

    fn type_of(&self, group: &str, kind: &str) -> Result<&ResourceType, ApiError> {
        self.registry().by_kind(group, kind).ok_or_else(|| {
            ApiError::new(
                404,
                "NotFound",
                format!("the server could not find the requested resource (kind {kind:?} in group {group:?})"),
            )
        })
    }

    /// Check the type is served, fix apiVersion/kind/namespace, make sure
    /// metadata is an object with a name.
    fn normalize(&self, t: &ResourceType, mut obj: Value) -> Result<Value, ApiError> {
        let Some(map) = obj.as_object_mut() else {
            return Err(ApiError::bad_request("object is not a JSON object"));
        };
        let meta = map
            .entry("metadata")
            .or_insert_with(|| Value::Object(Map::new()));
        if !meta.is_object() {
            return Err(ApiError::bad_request("metadata is not an object"));
        }
        let meta = meta.as_object_mut().expect("checked");
        if t.namespaced {
            let ns_missing = meta
                .get("namespace")
                .and_then(Value::as_str)
                .is_none_or(str::is_empty);
            if ns_missing {
                meta.insert("namespace".into(), json!("default"));
            }
        } else {
            meta.remove("namespace");
        }
        let has_name = meta
            .get("name")
            .and_then(Value::as_str)
            .is_some_and(|n| !n.is_empty());
        if !has_name {
            match meta.get("generateName").and_then(Value::as_str) {
                Some(prefix) if !prefix.is_empty() => {
                    let name = format!("{prefix}{}", random_suffix());
                    meta.insert("name".into(), json!(name));
                }
                _ => {
                    return Err(ApiError::invalid(format!(
                        "{} \"\" is invalid: metadata.name: Required value: name or generateName is required",
                        t.kind
                    )))
                }
            }
        }
        Ok(obj)
    }

    fn write(&self, mode: Mode, obj: Value, dry_run: bool) -> Result<Value, ApiError> {
        let api_version = obj
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let kind = obj
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let t = self
            .registry()
            .resolve(&api_version, &kind)
            .map_err(|m| ApiError::new(404, "NotFound", m))?
            .clone();
        if t.read_only_empty() || t.is_review() {
            return Err(ApiError::method_not_allowed(format!(
                "the lab API server holds no {}",
                t.plural
            )));
        }
        let mut obj = self.normalize(&t, obj)?;
        crate::validation::validate(&t, &obj)?;
        let name = meta_str(&obj, "name").unwrap_or_default().to_string();
        let ns = meta_str(&obj, "namespace").unwrap_or_default().to_string();
        let tkey = (t.group.to_string(), t.kind.to_string());
        let okey = (ns, name.clone());
        let st = self.lock();
        let existing = st.objects.get(&tkey).and_then(|m| m.get(&okey)).cloned();
        let event = match (&existing, mode) {
            (Some(_), Mode::Create) => {
                return Err(ApiError::already_exists(&t.qualified_plural(), &name))
            }
            (None, Mode::Replace) => return Err(ApiError::not_found(&t.qualified_plural(), &name)),
            (Some(old), Mode::Replace) => {
                if let Some(rv) = meta_str(&obj, "resourceVersion") {
                    if !rv.is_empty() && Some(rv) != meta_str(old, "resourceVersion") {
                        return Err(ApiError::conflict(&t.qualified_plural(), &name));
                    }
                }
                carry_over(&mut obj, old);
                if unchanged(&obj, old) {
                    return Ok(old.clone());
                }
                EventType::Modified
            }
            (Some(old), Mode::Apply) => {
                carry_over(&mut obj, old);
                if unchanged(&obj, old) {
                    return Ok(old.clone());
                }
                EventType::Modified
            }
            (None, m) => {
                let meta = obj["metadata"].as_object_mut().expect("normalized");
                let keep = m == Mode::Apply;
                if !keep || !meta.get("uid").is_some_and(Value::is_string) {
                    meta.insert("uid".into(), json!(new_uid()));
                }
                if !keep || !meta.get("creationTimestamp").is_some_and(Value::is_string) {
                    meta.insert("creationTimestamp".into(), json!(now_rfc3339()));
                }
                meta.insert("generation".into(), json!(1));
                EventType::Added
            }
        };
        if dry_run {
            return Ok(obj);
        }
        Ok(self.commit(st, tkey, okey, obj, event))
    }

    fn commit(
        &self,
        mut st: MutexGuard<'_, State>,
        tkey: TypeKey,
        okey: ObjKey,
        mut obj: Value,
        event: EventType,
    ) -> Value {
        st.rv += 1;
        let rv = st.rv;
        set_rv(&mut obj, rv);
        st.objects
            .entry(tkey.clone())
            .or_default()
            .insert(okey, obj.clone());
        self.record(&mut st, event, tkey.0, tkey.1, obj.clone());
        drop(st);
        self.inner.changes.send_replace(rv);
        obj
    }

    fn record(&self, st: &mut State, event: EventType, group: String, kind: String, object: Value) {
        let ev = WatchEvent {
            rv: st.rv,
            event,
            group,
            kind,
            object,
        };
        if st.history.len() >= HISTORY {
            st.history.pop_front();
        }
        st.history.push_back(ev.clone());
        // No receivers is fine.
        let _ = self.inner.events.send(ev);
    }
}

fn effective_namespace(t: &ResourceType, namespace: Option<&str>) -> String {
    if t.namespaced {
        match namespace {
            Some(ns) if !ns.is_empty() => ns.to_string(),
            _ => "default".to_string(),
        }
    } else {
        String::new()
    }
}

fn meta_str<'a>(obj: &'a Value, field: &str) -> Option<&'a str> {
    obj.get("metadata")?.get(field)?.as_str()
}

fn set_rv(obj: &mut Value, rv: u64) {
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.insert("resourceVersion".into(), json!(rv.to_string()));
    }
}

/// `a == b` ignoring the top-level fields `top` and the `metadata` fields
/// `meta`, without copying either object (a mesh has tens of thousands).
pub(crate) fn eq_except(a: &Value, b: &Value, top: &[&str], meta: &[&str]) -> bool {
    fn eq_map(
        a: &serde_json::Map<String, Value>,
        b: &serde_json::Map<String, Value>,
        skip: &[&str],
        inner: &dyn Fn(&str, &Value, &Value) -> bool,
    ) -> bool {
        let keys = |m: &serde_json::Map<String, Value>| {
            m.keys().filter(|k| !skip.contains(&k.as_str())).count()
        };
        keys(a) == keys(b)
            && a.iter()
                .filter(|(k, _)| !skip.contains(&k.as_str()))
                .all(|(k, v)| b.get(k).is_some_and(|w| inner(k, v, w)))
    }
    match (a, b) {
        (Value::Object(a), Value::Object(b)) => eq_map(a, b, top, &|k, v, w| {
            if k != "metadata" {
                return v == w;
            }
            match (v, w) {
                (Value::Object(x), Value::Object(y)) => eq_map(x, y, meta, &|_, p, q| p == q),
                _ => v == w,
            }
        }),
        _ => a == b,
    }
}

/// Whether an update changes nothing but (possibly) the resourceVersion: a
/// no-op, which like on a real API server gets no new resourceVersion and
/// wakes no subscriber.
fn unchanged(new: &Value, old: &Value) -> bool {
    eq_except(new, old, &[], &["resourceVersion"])
}

/// On an update: keep uid and creationTimestamp, bump generation when
/// anything outside metadata and status changed.
fn carry_over(obj: &mut Value, old: &Value) {
    let body_changed = !eq_except(obj, old, &["metadata", "status", "apiVersion"], &[]);
    let old_meta = &old["metadata"];
    let old_gen = old_meta
        .get("generation")
        .and_then(Value::as_i64)
        .unwrap_or(1);
    let meta = obj["metadata"].as_object_mut().expect("normalized");
    for field in ["uid", "creationTimestamp"] {
        match old_meta.get(field) {
            Some(v) => {
                meta.insert(field.into(), v.clone());
            }
            None => {
                meta.remove(field);
            }
        }
    }
    let generation = if body_changed { old_gen + 1 } else { old_gen };
    meta.insert("generation".into(), json!(generation));
}

/// Rewrite an object's apiVersion to another served version of its group.
pub fn with_version(mut obj: Value, group: &str, version: &str) -> Value {
    if let Some(m) = obj.as_object_mut() {
        let av = if group.is_empty() {
            version.to_string()
        } else {
            format!("{group}/{version}")
        };
        m.insert("apiVersion".into(), json!(av));
    }
    obj
}

/// Group of a stored object's apiVersion.
pub fn group_of(obj: &Value) -> &str {
    split_api_version(obj.get("apiVersion").and_then(Value::as_str).unwrap_or("")).0
}

fn random_u64() -> u64 {
    use std::collections::hash_map::RandomState;
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default(),
    );
    h.finish()
}

/// A random RFC 4122 version-4 UID.
pub fn new_uid() -> String {
    let a = random_u64().to_be_bytes();
    let b = random_u64().to_be_bytes();
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&a);
    bytes[8..].copy_from_slice(&b);
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// Five characters for generateName, from Kubernetes' alphabet.
fn random_suffix() -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut n = random_u64();
    (0..5)
        .map(|_| {
            let c = ALPHABET[(n % ALPHABET.len() as u64) as usize] as char;
            n /= ALPHABET.len() as u64;
            c
        })
        .collect()
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}

/// Now as RFC 3339 in UTC with second precision (`2025-01-02T03:04:05Z`).
pub fn now_rfc3339() -> String {
    rfc3339(unix_now())
}

/// Unix seconds as RFC 3339 in UTC (`2025-01-02T03:04:05Z`).
pub fn rfc3339(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60
    )
}

/// Parse RFC 3339 (`Z` or `±hh:mm` offsets, optional fraction) to Unix seconds.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    let s = s.trim();
    if s.len() < 20 {
        return None;
    }
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<i64> { s.get(r)?.parse().ok() };
    if b[4] != b'-' || b[7] != b'-' || !(b[10] == b'T' || b[10] == b't' || b[10] == b' ') {
        return None;
    }
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, se) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let mut rest = &s[19..];
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.chars().take_while(char::is_ascii_digit).count();
        rest = &frac[digits..];
    }
    let offset = match rest {
        "Z" | "z" => 0,
        _ if rest.len() == 6 => {
            let sign = match &rest[..1] {
                "+" => 1,
                "-" => -1,
                _ => return None,
            };
            let oh: i64 = rest[1..3].parse().ok()?;
            let om: i64 = rest[4..6].parse().ok()?;
            sign * (oh * 3600 + om * 60)
        }
        _ => return None,
    };
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    Some(days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + se - offset)
}

// Howard Hinnant's civil-date algorithms.
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dr(name: &str, ns: Option<&str>, host: &str) -> Value {
        let mut v = json!({
            "apiVersion": "networking.istio.io/v1alpha3",
            "kind": "DestinationRule",
            "metadata": {"name": name},
            "spec": {"host": host},
        });
        if let Some(ns) = ns {
            v["metadata"]["namespace"] = json!(ns);
        }
        v
    }

    #[test]
    fn pages_cover_every_match_once_and_count_the_rest() {
        let s = Store::new(Registry::for_istio(24));
        for ns in ["a", "b"] {
            for i in 0..5 {
                s.apply(dr(
                    &format!("r{i}"),
                    Some(ns),
                    if i % 2 == 0 { "even" } else { "odd" },
                ))
                .unwrap();
            }
        }
        let g = "networking.istio.io";
        let even = |v: &Value| v["spec"]["host"] == "even";
        let key = |v: &Value| {
            (
                v["metadata"]["namespace"].as_str().unwrap().to_string(),
                v["metadata"]["name"].as_str().unwrap().to_string(),
            )
        };
        // 6 even rules over a and b, pages of 4: 4 then 2.
        let p1 = s.list_page(g, "DestinationRule", None, None, Some(4), even);
        assert_eq!(p1.items.len(), 4);
        assert_eq!(p1.remaining, 2);
        let last = key(p1.items.last().unwrap());
        let p2 = s.list_page(g, "DestinationRule", None, Some(&last), Some(4), even);
        assert_eq!(p2.remaining, 0);
        let mut all: Vec<_> = p1.items.iter().chain(&p2.items).map(key).collect();
        assert_eq!(all.len(), 6);
        all.dedup();
        assert_eq!(all.len(), 6, "no object twice");
        assert!(
            all.windows(2).all(|w| w[0] < w[1]),
            "sorted by namespace, name"
        );
        // One namespace, no limit.
        let b = s.list_page(g, "DestinationRule", Some("b"), None, None, |_| true);
        assert_eq!(b.items.len(), 5);
        assert!(b.items.iter().all(|v| v["metadata"]["namespace"] == "b"));
        assert_eq!(b.rv, s.resource_version());
    }

    #[test]
    fn apply_fills_metadata_and_keeps_identity_on_replace() {
        let s = Store::new(Registry::for_istio(24));
        let a = s.apply(dr("r", None, "a")).unwrap();
        assert_eq!(a["metadata"]["namespace"], "default");
        assert_eq!(a["metadata"]["generation"], 1);
        let uid = a["metadata"]["uid"].as_str().unwrap().to_string();
        assert_eq!(uid.len(), 36);
        let created = a["metadata"]["creationTimestamp"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(parse_rfc3339(&created).is_some());
        let rv1: u64 = a["metadata"]["resourceVersion"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();

        let b = s.apply(dr("r", Some("default"), "b")).unwrap();
        assert_eq!(b["metadata"]["uid"], uid.as_str());
        assert_eq!(b["metadata"]["creationTimestamp"], created.as_str());
        assert_eq!(b["metadata"]["generation"], 2);
        let rv2: u64 = b["metadata"]["resourceVersion"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!(rv2 > rv1);
        // Same object again: a no-op, no new resourceVersion, no wake-up.
        let mut rx = s.subscribe();
        rx.borrow_and_update();
        let c = s.apply(dr("r", None, "b")).unwrap();
        assert_eq!(c, b);
        assert!(!rx.has_changed().unwrap());
        // Only status changed: new resourceVersion, same generation.
        let mut with_status = dr("r", None, "b");
        with_status["status"] = json!({"observedGeneration": 2});
        let d = s.apply(with_status).unwrap();
        assert_eq!(d["metadata"]["generation"], 2);
        assert_ne!(
            d["metadata"]["resourceVersion"],
            b["metadata"]["resourceVersion"]
        );
        assert_eq!(
            s.list("networking.istio.io", "DestinationRule", None).len(),
            1
        );
    }

    #[test]
    fn create_replace_delete_errors() {
        let s = Store::new(Registry::for_istio(24));
        s.create(dr("r", Some("foo"), "a")).unwrap();
        let e = s.create(dr("r", Some("foo"), "a")).unwrap_err();
        assert_eq!((e.code, e.reason.as_str()), (409, "AlreadyExists"));
        assert_eq!(
            e.message,
            "destinationrules.networking.istio.io \"r\" already exists"
        );
        let e = s.replace(dr("nope", Some("foo"), "a")).unwrap_err();
        assert_eq!((e.code, e.reason.as_str()), (404, "NotFound"));
        let mut stale = dr("r", Some("foo"), "x");
        stale["metadata"]["resourceVersion"] = json!("999999");
        let e = s.replace(stale).unwrap_err();
        assert_eq!((e.code, e.reason.as_str()), (409, "Conflict"));
        let cur = s
            .get("networking.istio.io", "DestinationRule", Some("foo"), "r")
            .unwrap();
        let mut fresh = dr("r", Some("foo"), "y");
        fresh["metadata"]["resourceVersion"] = cur["metadata"]["resourceVersion"].clone();
        assert_eq!(s.replace(fresh).unwrap()["spec"]["host"], "y");
        let gone = s
            .delete("networking.istio.io", "DestinationRule", Some("foo"), "r")
            .unwrap();
        assert_eq!(gone["spec"]["host"], "y");
        assert!(s
            .get("networking.istio.io", "DestinationRule", Some("foo"), "r")
            .is_none());
        let e = s
            .delete("networking.istio.io", "DestinationRule", Some("foo"), "r")
            .unwrap_err();
        assert_eq!(e.code, 404);
    }

    #[test]
    fn unserved_versions_and_kinds_are_refused() {
        let s = Store::new(Registry::for_istio(0));
        let mut v = dr("r", None, "a");
        v["apiVersion"] = json!("networking.istio.io/v1");
        assert_eq!(s.apply(v).unwrap_err().code, 404);
        let pa = json!({"apiVersion": "security.istio.io/v1beta1", "kind": "PeerAuthentication",
            "metadata": {"name": "default"}});
        assert!(s.apply(pa).is_err());
        let mp = json!({"apiVersion": "authentication.istio.io/v1alpha1", "kind": "MeshPolicy",
            "metadata": {"name": "default", "namespace": "ignored"}});
        let stored = s.apply(mp).unwrap();
        assert!(stored["metadata"].get("namespace").is_none());
    }

    #[test]
    fn versions_share_one_object_and_list_is_sorted() {
        let s = Store::new(Registry::for_istio(24));
        let mut v1 = dr("b", Some("z"), "a");
        v1["apiVersion"] = json!("networking.istio.io/v1");
        s.apply(v1).unwrap();
        s.apply(dr("b", Some("z"), "c")).unwrap();
        s.apply(dr("a", Some("z"), "c")).unwrap();
        s.apply(dr("c", Some("a"), "c")).unwrap();
        let names: Vec<String> = s
            .list("networking.istio.io", "DestinationRule", None)
            .iter()
            .map(|o| {
                format!(
                    "{}/{}",
                    o["metadata"]["namespace"].as_str().unwrap(),
                    o["metadata"]["name"].as_str().unwrap()
                )
            })
            .collect();
        assert_eq!(names, vec!["a/c", "z/a", "z/b"]);
        assert_eq!(
            s.list("networking.istio.io", "DestinationRule", Some("z"))
                .len(),
            2
        );
        assert_eq!(s.all().len(), 3);
    }

    #[test]
    fn namespace_delete_cascades_and_subscribers_see_changes() {
        let s = Store::new(Registry::for_istio(24));
        let mut rx = s.subscribe();
        s.apply(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "foo"}}))
            .unwrap();
        assert!(rx.has_changed().unwrap());
        let _ = *rx.borrow_and_update();
        s.apply(dr("r", Some("foo"), "a")).unwrap();
        s.apply(dr("r", Some("bar"), "a")).unwrap();
        assert!(rx.has_changed().unwrap());
        s.delete("", "Namespace", None, "foo").unwrap();
        assert_eq!(
            s.list("networking.istio.io", "DestinationRule", None).len(),
            1
        );
        assert_eq!(*rx.borrow_and_update(), s.resource_version());
    }

    #[test]
    fn watch_since_replays_history() {
        let s = Store::new(Registry::for_istio(24));
        s.apply(dr("a", None, "a")).unwrap();
        let rv = s.resource_version();
        s.apply(dr("b", None, "a")).unwrap();
        s.delete("networking.istio.io", "DestinationRule", None, "a")
            .unwrap();
        let (replay, mut rx) = s
            .watch_since("networking.istio.io", "DestinationRule", rv)
            .unwrap();
        let kinds: Vec<_> = replay.iter().map(|e| e.event).collect();
        assert_eq!(kinds, vec![EventType::Added, EventType::Deleted]);
        s.apply(dr("c", None, "a")).unwrap();
        assert_eq!(rx.try_recv().unwrap().object["metadata"]["name"], "c");
    }

    #[test]
    fn update_with_is_atomic_and_checks_identity() {
        let s = Store::new(Registry::for_istio(24));
        s.apply(dr("r", Some("foo"), "a")).unwrap();
        let out = s
            .update_with(
                "networking.istio.io",
                "DestinationRule",
                Some("foo"),
                "r",
                false,
                |o| {
                    o["spec"]["host"] = json!("b");
                    Ok(())
                },
            )
            .unwrap();
        assert_eq!(out["metadata"]["generation"], 2);
        let e = s
            .update_with(
                "networking.istio.io",
                "DestinationRule",
                Some("foo"),
                "r",
                false,
                |o| {
                    o["metadata"]["name"] = json!("other");
                    Ok(())
                },
            )
            .unwrap_err();
        assert_eq!(e.code, 422);
        let dry = s
            .update_with(
                "networking.istio.io",
                "DestinationRule",
                Some("foo"),
                "r",
                true,
                |o| {
                    o["spec"]["host"] = json!("dry");
                    Ok(())
                },
            )
            .unwrap();
        assert_eq!(dry["spec"]["host"], "dry");
        let stored = s
            .get("networking.istio.io", "DestinationRule", Some("foo"), "r")
            .unwrap();
        assert_eq!(stored["spec"]["host"], "b");
    }

    #[test]
    fn rfc3339_round_trip() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_735_787_045), "2025-01-02T03:04:05Z");
        assert_eq!(parse_rfc3339("2025-01-02T03:04:05Z"), Some(1_735_787_045));
        assert_eq!(
            parse_rfc3339("2025-01-02T04:04:05.123+01:00"),
            Some(1_735_787_045)
        );
        assert_eq!(
            parse_rfc3339("2024-02-29T00:00:00Z").map(rfc3339).unwrap(),
            "2024-02-29T00:00:00Z"
        );
        assert!(parse_rfc3339("yesterday").is_none());
    }
}
