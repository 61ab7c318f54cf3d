//! Object endpoints: list (selectors, pagination, Tables), watch, get,
//! create, replace, patch, delete, and the status and scale subresources.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderMap, Method};
use axum::response::Response;
use serde_json::{json, Value};
use tokio::sync::{broadcast, mpsc};

use crate::store::{with_version, ApiError, WatchEvent};

use super::patch::{apply_patch, PatchKind};
use super::selectors::{FieldSelector, LabelSelector};
use super::status::{json_response, json_response_as, query_flag, status_value, wants_table};
use super::tables::{self, IncludeObject};
use super::{Ctx, Target};

pub(crate) async fn handle(
    ctx: Arc<Ctx>,
    target: Target,
    method: Method,
    q: HashMap<String, String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if target.t.is_review() {
        let result = match (method.as_str(), target.name.is_some()) {
            ("POST", false) => parse_body(&headers, &body)
                .and_then(|b| check_body(&target, b, None))
                .map(|b| super::rbac::review(ctx.rules.as_ref(), target.t.kind, b)),
            _ => Err(ApiError::method_not_allowed(format!(
                "{} can only be created",
                target.t.plural
            ))),
        };
        return match result {
            Ok(body) => json_response_as(201, &body, "application/json"),
            Err(e) => target.error(&e),
        };
    }
    let result = match (
        method.as_str(),
        target.name.is_some(),
        target.sub.as_deref(),
    ) {
        ("GET", false, None) if query_flag(&q, "watch") => {
            return watch(ctx, &target, &q, &headers)
        }
        ("GET", false, None) => list(&ctx, &target, &q, &headers),
        ("GET", true, Some("scale")) => get_object(&ctx, &target).map(|o| (200, scale_of(&o))),
        ("GET", true, _) => {
            get_object(&ctx, &target).map(|o| (200, present(&target, &q, &headers, o)))
        }
        ("POST", false, None) => create(&ctx, &target, &q, &headers, &body),
        ("PUT", true, _) => replace(&ctx, &target, &q, &headers, &body),
        ("PATCH", true, _) => patch(&ctx, &target, &q, &headers, &body),
        ("DELETE", true, None) => delete(&ctx, &target, &q),
        ("DELETE", false, None) => delete_collection(&ctx, &target, &q),
        _ => Err(ApiError::method_not_allowed(format!(
            "the server does not allow this method on the requested resource ({method})"
        ))),
    };
    match result {
        Ok((code, body)) => json_response_as(code, &body, &content_type_for(&body)),
        Err(e) => target.error(&e),
    }
}

fn content_type_for(body: &Value) -> String {
    match (
        body.get("kind").and_then(Value::as_str),
        body.get("apiVersion").and_then(Value::as_str),
    ) {
        (Some("Table"), Some(av)) => {
            let v = av.rsplit('/').next().unwrap_or("v1");
            format!("application/json;as=Table;v={v};g=meta.k8s.io")
        }
        _ => "application/json".to_string(),
    }
}

fn dry_run(q: &HashMap<String, String>) -> bool {
    q.get("dryRun").is_some_and(|v| v == "All")
}

/// The stored object as the request's version sees it.
fn convert(target: &Target, obj: Value) -> Value {
    let mut obj = with_version(obj, target.t.group, &target.version);
    if let Some(m) = obj.as_object_mut() {
        m.insert("kind".into(), json!(target.t.kind));
    }
    obj
}

/// One object, as a Table if asked.
fn present(target: &Target, q: &HashMap<String, String>, headers: &HeaderMap, obj: Value) -> Value {
    let obj = convert(target, obj);
    match wants_table(headers) {
        Some(tv) => tables::table(
            &target.t,
            tv,
            &[obj],
            IncludeObject::parse(q.get("includeObject").map(String::as_str)),
            None,
            None,
            true,
        ),
        None => obj,
    }
}

fn get_object(ctx: &Ctx, target: &Target) -> Result<Value, ApiError> {
    let name = target.name.as_deref().unwrap_or_default();
    if target.t.read_only_empty() {
        return Err(ApiError::not_found(&target.t.qualified_plural(), name));
    }
    ctx.store
        .get(
            target.t.group,
            target.t.kind,
            target.namespace.as_deref(),
            name,
        )
        .ok_or_else(|| ApiError::not_found(&target.t.qualified_plural(), name))
}

fn selectors(
    target: &Target,
    q: &HashMap<String, String>,
) -> Result<(LabelSelector, FieldSelector), ApiError> {
    let labels = LabelSelector::parse(q.get("labelSelector").map(String::as_str).unwrap_or(""))?;
    let fields = FieldSelector::parse(
        q.get("fieldSelector").map(String::as_str).unwrap_or(""),
        &target.t,
    )?;
    Ok((labels, fields))
}

fn key_of(obj: &Value) -> (String, String) {
    let m = |f: &str| {
        obj.pointer(&format!("/metadata/{f}"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    (m("namespace"), m("name"))
}

fn encode_continue(key: &(String, String)) -> String {
    format!("{}\u{0}{}", key.0, key.1)
        .bytes()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn decode_continue(token: &str) -> Result<(String, String), ApiError> {
    let bad = || {
        ApiError::bad_request("continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)")
    };
    if !token.len().is_multiple_of(2) {
        return Err(bad());
    }
    let bytes: Result<Vec<u8>, _> = (0..token.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&token[i..i + 2], 16))
        .collect();
    let s = String::from_utf8(bytes.map_err(|_| bad())?).map_err(|_| bad())?;
    let (ns, name) = s.split_once('\u{0}').ok_or_else(bad)?;
    Ok((ns.to_string(), name.to_string()))
}

fn list(
    ctx: &Ctx,
    target: &Target,
    q: &HashMap<String, String>,
    headers: &HeaderMap,
) -> Result<(u16, Value), ApiError> {
    let (labels, fields) = selectors(target, q)?;
    let after = match q.get("continue").filter(|t| !t.is_empty()) {
        Some(token) => Some(decode_continue(token)?),
        None => None,
    };
    let limit = q
        .get("limit")
        .and_then(|l| l.parse::<usize>().ok())
        .filter(|l| *l > 0);
    let page = if target.t.read_only_empty() {
        crate::store::ListPage {
            items: Vec::new(),
            remaining: 0,
            rv: ctx.store.resource_version(),
        }
    } else {
        ctx.store.list_page(
            target.t.group,
            target.t.kind,
            target.namespace.as_deref(),
            after.as_ref(),
            limit,
            |o| labels.matches(o) && fields.matches(o),
        )
    };
    let (items, rv) = (page.items, page.rv);
    let (continue_token, remaining) = if page.remaining > 0 {
        (
            items.last().map(|o| encode_continue(&key_of(o))),
            Some(page.remaining),
        )
    } else {
        (None, None)
    };
    let items: Vec<Value> = items.into_iter().map(|o| convert(target, o)).collect();
    if let Some(tv) = wants_table(headers) {
        return Ok((
            200,
            tables::table(
                &target.t,
                tv,
                &items,
                IncludeObject::parse(q.get("includeObject").map(String::as_str)),
                Some(rv.to_string()),
                continue_token,
                true,
            ),
        ));
    }
    let mut meta = json!({"resourceVersion": rv.to_string()});
    if let Some(c) = continue_token {
        meta["continue"] = json!(c);
        meta["remainingItemCount"] = json!(remaining.unwrap_or(0));
    }
    Ok((
        200,
        json!({
            "apiVersion": target.api_version(),
            "kind": format!("{}List", target.t.kind),
            "metadata": meta,
            "items": items,
        }),
    ))
}

/// Parse a request body (JSON, or YAML if the Content-Type says so).
fn parse_body(headers: &HeaderMap, body: &[u8]) -> Result<Value, ApiError> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json")
        .to_ascii_lowercase();
    if ct.contains("protobuf") {
        return super::protobuf::decode(body);
    }
    let parsed = if ct.contains("yaml") {
        serde_yaml::from_slice::<Value>(body).map_err(|e| e.to_string())
    } else {
        serde_json::from_slice::<Value>(body).map_err(|e| e.to_string())
    };
    let v = parsed
        .map_err(|e| ApiError::bad_request(format!("the object provided is unrecognized: {e}")))?;
    if !v.is_object() {
        return Err(ApiError::bad_request(
            "the object provided is not a JSON object",
        ));
    }
    Ok(v)
}

/// Check a written object against the URL (kind, group, namespace, name)
/// and fill what the URL implies.
fn check_body(
    target: &Target,
    mut obj: Value,
    name_in_url: Option<&str>,
) -> Result<Value, ApiError> {
    let expected = target.api_version();
    if let Some(av) = obj.get("apiVersion").and_then(Value::as_str) {
        let (g, _) = crate::resources::split_api_version(av);
        if g != target.t.group {
            return Err(ApiError::bad_request(format!(
                "the API version in the data ({av}) does not match the expected API version ({expected})"
            )));
        }
    }
    if let Some(kind) = obj.get("kind").and_then(Value::as_str) {
        if kind != target.t.kind {
            return Err(ApiError::bad_request(format!(
                "the kind in the data ({kind}) does not match the expected kind ({})",
                target.t.kind
            )));
        }
    }
    obj["apiVersion"] = json!(expected);
    obj["kind"] = json!(target.t.kind);
    if !obj.get("metadata").is_some_and(Value::is_object) {
        obj["metadata"] = json!({});
    }
    if target.t.namespaced {
        let url_ns = target.namespace.as_deref().unwrap_or("default");
        match obj.pointer("/metadata/namespace").and_then(Value::as_str) {
            Some(ns) if !ns.is_empty() && ns != url_ns => {
                return Err(ApiError::bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request",
                ))
            }
            _ => obj["metadata"]["namespace"] = json!(url_ns),
        }
    }
    if let Some(url_name) = name_in_url {
        match obj.pointer("/metadata/name").and_then(Value::as_str) {
            Some(n) if n != url_name => {
                return Err(ApiError::bad_request(format!(
                    "the name of the object ({n}) does not match the name on the URL ({url_name})"
                )))
            }
            Some(_) => {}
            None => obj["metadata"]["name"] = json!(url_name),
        }
    }
    Ok(obj)
}

fn has_status_subresource(target: &Target) -> bool {
    target.t.subresources().iter().any(|(s, _)| *s == "status")
}

fn create(
    ctx: &Ctx,
    target: &Target,
    q: &HashMap<String, String>,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(u16, Value), ApiError> {
    if target.t.read_only_empty() {
        return Err(ApiError::method_not_allowed(format!(
            "the lab API server holds no {}",
            target.t.plural
        )));
    }
    let obj = check_body(target, parse_body(headers, body)?, None)?;
    let stored = ctx.store.create_opts(obj, dry_run(q))?;
    Ok((201, convert(target, stored)))
}

fn replace(
    ctx: &Ctx,
    target: &Target,
    q: &HashMap<String, String>,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(u16, Value), ApiError> {
    let name = target.name.as_deref().unwrap_or_default();
    if target.t.read_only_empty() {
        return Err(ApiError::not_found(&target.t.qualified_plural(), name));
    }
    let sub = target.sub.as_deref();
    let new = parse_body(headers, body)?;
    if sub == Some("scale") {
        let replicas = new.pointer("/spec/replicas").cloned().unwrap_or(json!(0));
        let out = update(ctx, target, q, |o| {
            o["spec"]["replicas"] = replicas;
            Ok(())
        })?;
        return Ok((200, scale_of(&out)));
    }
    let new = check_body(target, new, Some(name))?;
    let keep_status = has_status_subresource(target);
    let out = update(ctx, target, q, move |o| {
        let old = o.clone();
        let given_rv = new.pointer("/metadata/resourceVersion").cloned();
        if sub == Some("status") {
            o["status"] = new.get("status").cloned().unwrap_or(Value::Null);
        } else {
            *o = new;
            if keep_status {
                match old.get("status") {
                    Some(s) => o["status"] = s.clone(),
                    None => {
                        if let Some(m) = o.as_object_mut() {
                            m.remove("status");
                        }
                    }
                }
            }
        }
        // Only a resourceVersion the client sent is a precondition.
        match given_rv {
            Some(rv) if rv.as_str().is_some_and(|s| !s.is_empty()) => {
                o["metadata"]["resourceVersion"] = rv
            }
            _ => o["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"].clone(),
        }
        Ok(())
    })?;
    Ok((200, convert(target, out)))
}

fn update<F>(
    ctx: &Ctx,
    target: &Target,
    q: &HashMap<String, String>,
    f: F,
) -> Result<Value, ApiError>
where
    F: FnOnce(&mut Value) -> Result<(), ApiError>,
{
    ctx.store.update_with(
        target.t.group,
        target.t.kind,
        target.namespace.as_deref(),
        target.name.as_deref().unwrap_or_default(),
        dry_run(q),
        f,
    )
}

fn patch(
    ctx: &Ctx,
    target: &Target,
    q: &HashMap<String, String>,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(u16, Value), ApiError> {
    let name = target.name.as_deref().unwrap_or_default();
    if target.t.read_only_empty() {
        return Err(ApiError::not_found(&target.t.qualified_plural(), name));
    }
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let kind = PatchKind::from_content_type(ct, target.t.is_custom()).ok_or_else(|| {
        ApiError::new(
            415,
            "UnsupportedMediaType",
            format!("the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json (got {ct:?})"),
        )
    })?;
    let patch_doc: Value = match kind {
        PatchKind::Apply => serde_yaml::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))?,
        _ => serde_json::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?,
    };
    let sub = target.sub.as_deref();
    if sub == Some("scale") {
        let out = update(ctx, target, q, |o| {
            let mut scale = scale_of(o);
            apply_patch(kind, &mut scale, &patch_doc)?;
            o["spec"]["replicas"] = scale.pointer("/spec/replicas").cloned().unwrap_or(json!(0));
            Ok(())
        })?;
        return Ok((200, scale_of(&out)));
    }
    let exists = ctx
        .store
        .get(
            target.t.group,
            target.t.kind,
            target.namespace.as_deref(),
            name,
        )
        .is_some();
    if kind == PatchKind::Apply && !exists && sub.is_none() {
        // Server-side apply of a new object is a create.
        if q.get("fieldManager").is_none_or(|m| m.is_empty()) {
            return Err(ApiError::bad_request(
                "PATCH, application/apply-patch+yaml requires fieldManager to be set",
            ));
        }
        let obj = check_body(target, patch_doc, Some(name))?;
        let stored = ctx.store.create_opts(obj, dry_run(q))?;
        return Ok((201, convert(target, stored)));
    }
    let keep_status = has_status_subresource(target);
    let out = update(ctx, target, q, |o| {
        let old = o.clone();
        // Patches see the object in the version they were sent for.
        *o = convert(target, std::mem::take(o));
        apply_patch(kind, o, &patch_doc)?;
        if sub == Some("status") {
            let status = o.get("status").cloned();
            *o = old;
            match status {
                Some(s) => o["status"] = s,
                None => {
                    if let Some(m) = o.as_object_mut() {
                        m.remove("status");
                    }
                }
            }
        } else if keep_status {
            match old.get("status") {
                Some(s) => o["status"] = s.clone(),
                None => {
                    if let Some(m) = o.as_object_mut() {
                        m.remove("status");
                    }
                }
            }
        }
        Ok(())
    })?;
    Ok((200, convert(target, out)))
}

fn delete(
    ctx: &Ctx,
    target: &Target,
    q: &HashMap<String, String>,
) -> Result<(u16, Value), ApiError> {
    let name = target.name.as_deref().unwrap_or_default();
    if target.t.read_only_empty() {
        return Err(ApiError::not_found(&target.t.qualified_plural(), name));
    }
    let gone = ctx.store.delete_opts(
        target.t.group,
        target.t.kind,
        target.namespace.as_deref(),
        name,
        dry_run(q),
    )?;
    Ok((200, convert(target, gone)))
}

fn delete_collection(
    ctx: &Ctx,
    target: &Target,
    q: &HashMap<String, String>,
) -> Result<(u16, Value), ApiError> {
    let (labels, fields) = selectors(target, q)?;
    let mut deleted = Vec::new();
    if !target.t.read_only_empty() {
        for o in ctx
            .store
            .list(target.t.group, target.t.kind, target.namespace.as_deref())
        {
            if !(labels.matches(&o) && fields.matches(&o)) {
                continue;
            }
            let (ns, name) = key_of(&o);
            let ns = (!ns.is_empty()).then_some(ns);
            if let Ok(gone) = ctx.store.delete_opts(
                target.t.group,
                target.t.kind,
                ns.as_deref(),
                &name,
                dry_run(q),
            ) {
                deleted.push(convert(target, gone));
            }
        }
    }
    Ok((
        200,
        json!({
            "apiVersion": target.api_version(),
            "kind": format!("{}List", target.t.kind),
            "metadata": {"resourceVersion": ctx.store.resource_version().to_string()},
            "items": deleted,
        }),
    ))
}

/// The autoscaling/v1 Scale of a Deployment or ReplicaSet.
fn scale_of(o: &Value) -> Value {
    let meta = o.get("metadata").cloned().unwrap_or_default();
    let mut scale_meta = serde_json::Map::new();
    for f in [
        "name",
        "namespace",
        "uid",
        "resourceVersion",
        "creationTimestamp",
    ] {
        if let Some(v) = meta.get(f) {
            scale_meta.insert(f.into(), v.clone());
        }
    }
    let selector = o
        .pointer("/spec/selector/matchLabels")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default();
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": scale_meta,
        "spec": {"replicas": o.pointer("/spec/replicas").cloned().unwrap_or(json!(1))},
        "status": {
            "replicas": o.pointer("/status/replicas").cloned().unwrap_or(json!(0)),
            "selector": selector,
        },
    })
}

/// `?watch=true`: the current state as ADDED events (unless resuming from a
/// resourceVersion), then changes as they happen, until the client goes,
/// `timeoutSeconds` pass, or the server shuts down.
fn watch(
    ctx: Arc<Ctx>,
    target: &Target,
    q: &HashMap<String, String>,
    headers: &HeaderMap,
) -> Response {
    let (labels, fields) = match selectors(target, q) {
        Ok(s) => s,
        Err(e) => return target.error(&e),
    };
    let table = wants_table(headers);
    let include = IncludeObject::parse(q.get("includeObject").map(String::as_str));
    let since: Option<u64> = q
        .get("resourceVersion")
        .and_then(|v| v.parse().ok())
        .filter(|v| *v > 0);
    let timeout = q
        .get("timeoutSeconds")
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(1800);
    let group = target.t.group;
    let kind = target.t.kind;
    // Streaming lists (sendInitialEvents=true) always start with the
    // current state and mark its end with a BOOKMARK.
    let initial_events = query_flag(q, "sendInitialEvents");
    let since = since.filter(|_| !initial_events);
    let (initial, start_rv) = match since {
        Some(rv) => (Vec::new(), rv),
        None if target.t.read_only_empty() => (Vec::new(), ctx.store.resource_version()),
        None => ctx
            .store
            .list_with_rv(group, kind, target.namespace.as_deref()),
    };
    let (tx, rx) = mpsc::channel::<Bytes>(64);
    let target = target.clone();
    let watched = ctx.store.watch_since(group, kind, start_rv);
    let shutdown = ctx.shutdown.clone();
    tokio::spawn(async move {
        let stop = super::stopped(shutdown);
        tokio::pin!(stop);
        let mut first = true;
        let frame = |event: &str, obj: Value, first: &mut bool| -> Bytes {
            let obj = match (event, table) {
                ("ERROR", _) | (_, None) => obj,
                (_, Some(tv)) => {
                    let with_cols = std::mem::replace(first, false);
                    tables::table(&target.t, tv, &[obj], include, None, None, with_cols)
                }
            };
            let mut line =
                serde_json::to_vec(&json!({"type": event, "object": obj})).unwrap_or_default();
            line.push(b'\n');
            Bytes::from(line)
        };
        let (replay, mut events) = match watched {
            Ok(w) => w,
            Err(e) => {
                let status = status_value(&e, &Default::default());
                let _ = tx.send(frame("ERROR", status, &mut first)).await;
                return;
            }
        };
        let ns = target.namespace.clone();
        let wanted = |o: &Value| {
            let in_ns = ns.as_deref().is_none_or(|n| {
                o.pointer("/metadata/namespace").and_then(Value::as_str) == Some(n)
            });
            in_ns && labels.matches(o) && fields.matches(o)
        };
        for o in initial {
            if wanted(&o) {
                let o = convert(&target, o);
                if tx.send(frame("ADDED", o, &mut first)).await.is_err() {
                    return;
                }
            }
        }
        if initial_events {
            let bookmark = json!({
                "apiVersion": target.api_version(),
                "kind": target.t.kind,
                "metadata": {
                    "resourceVersion": start_rv.to_string(),
                    "annotations": {"k8s.io/initial-events-end": "true"},
                },
            });
            let mut line = serde_json::to_vec(&json!({"type": "BOOKMARK", "object": bookmark}))
                .unwrap_or_default();
            line.push(b'\n');
            if tx.send(Bytes::from(line)).await.is_err() {
                return;
            }
        }
        let send_event = |ev: WatchEvent| -> Option<(&'static str, Value)> {
            if ev.group != group || ev.kind != kind || !wanted(&ev.object) {
                return None;
            }
            Some((ev.event.as_str(), convert(&target, ev.object)))
        };
        for ev in replay {
            if let Some((t, o)) = send_event(ev) {
                if tx.send(frame(t, o, &mut first)).await.is_err() {
                    return;
                }
            }
        }
        let deadline = tokio::time::sleep(Duration::from_secs(timeout));
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                _ = &mut deadline => return,
                _ = tx.closed() => return,
                _ = &mut stop => return,
                ev = events.recv() => match ev {
                    Ok(ev) => {
                        if let Some((t, o)) = send_event(ev) {
                            if tx.send(frame(t, o, &mut first)).await.is_err() {
                                return;
                            }
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        let e = ApiError::gone("the watch fell behind; list again");
                        let _ = tx.send(frame("ERROR", status_value(&e, &Default::default()), &mut first)).await;
                        return;
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                },
            }
        }
    });
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|b| (Ok::<Bytes, Infallible>(b), rx))
    });
    let ct = match table {
        Some(tv) => format!("application/json;as=Table;v={tv};g=meta.k8s.io"),
        None => "application/json".to_string(),
    };
    Response::builder()
        .status(200)
        .header(header::CONTENT_TYPE, ct)
        .header(header::CACHE_CONTROL, "no-cache, private")
        .body(Body::from_stream(stream))
        .unwrap_or_else(|_| json_response(500, &json!({})))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continue_tokens_round_trip() {
        let key = ("foo".to_string(), "bar-1".to_string());
        let tok = encode_continue(&key);
        assert_eq!(decode_continue(&tok).unwrap(), key);
        assert!(decode_continue("zz").is_err());
        assert!(decode_continue("abc").is_err());
    }
}
