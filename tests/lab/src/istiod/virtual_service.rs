//! HTTP routes of an outbound virtual host: the VirtualService for the host
//! if one applies, else Istio's default route (istio/istio
//! `pilot/pkg/networking/core/route/route.go` `BuildSidecarVirtualHostWrapper`,
//! `translateRoute`, `BuildDefaultHTTPOutboundRoute`).
//!
//! A route to a destination host/subset/port becomes cluster
//! `outbound|port|subset|host` whether or not that cluster exists: a subset
//! no DestinationRule defines gives Envoy's `503 NC` (cluster_not_found),
//! as in a real mesh.

use super::services::{exported, host_matches, resolve_host, Service};
use super::world::{self, namespace, string_list};
use super::xds::outbound_cluster_name;
use super::Ctx;
use serde_json::{json, Value};

/// The VirtualService for a host the client sees: gateways unset or
/// containing `mesh`, exported to the client's namespace, exact host before
/// wildcard, oldest first.
pub fn for_host<'a>(ctx: &Ctx<'a>, hostname: &str) -> Option<&'a Value> {
    let mut all: Vec<&Value> = ctx
        .world
        .of_kind("networking.istio.io", "VirtualService")
        .collect();
    all.sort_by_key(|o| world::age_key(o));
    let applies = |vs: &Value| {
        let gws = string_list(&vs["spec"]["gateways"]);
        (gws.is_empty() || gws.iter().any(|g| g == "mesh"))
            && exported(
                &string_list(&vs["spec"]["exportTo"]),
                namespace(vs),
                &ctx.ns,
            )
    };
    let hosts = |vs: &Value| -> Vec<String> {
        string_list(&vs["spec"]["hosts"])
            .iter()
            .map(|h| resolve_host(h, namespace(vs)))
            .collect()
    };
    all.iter()
        .find(|vs| applies(vs) && hosts(vs).iter().any(|h| h == hostname))
        .or_else(|| {
            all.iter().find(|vs| {
                applies(vs)
                    && hosts(vs)
                        .iter()
                        .any(|h| h.starts_with('*') && host_matches(h, hostname))
            })
        })
        .copied()
}

/// Envoy routes for `svc:port` as seen by the client.
pub fn routes(ctx: &Ctx, svc: &Service, port: u16) -> Vec<Value> {
    match for_host(ctx, &svc.hostname) {
        Some(vs) => vs_routes(ctx, vs, svc, port),
        None => vec![default_route(ctx, svc, port)],
    }
}

fn default_route(ctx: &Ctx, svc: &Service, port: u16) -> Value {
    let cluster = outbound_cluster_name(port, "", &svc.hostname);
    let mut action = json!({"cluster": cluster, "timeout": "0s"});
    if let Some(rp) = ctx.version.default_retry_policy() {
        action["retry_policy"] = rp;
    }
    if ctx.version.at_least(8) {
        action["max_stream_duration"] =
            json!({"max_stream_duration": "0s", "grpc_timeout_header_max": "0s"});
    }
    json!({
        "match": {"prefix": "/"},
        "route": action,
        "decorator": {"operation": format!("{}:{port}/*", svc.hostname)},
        "name": "default",
    })
}

fn vs_routes(ctx: &Ctx, vs: &Value, svc: &Service, port: u16) -> Vec<Value> {
    let vs_ns = namespace(vs);
    let config = ctx
        .version
        .config_path("virtual-service", vs_ns, world::name(vs));
    let mut out = Vec::new();
    for http in vs["spec"]["http"].as_array().into_iter().flatten() {
        let matches: Vec<Value> = match http["match"].as_array() {
            Some(m) if !m.is_empty() => m.clone(),
            _ => vec![Value::Null],
        };
        // A match on another port does not apply to this virtual host.
        let matches: Vec<Value> = matches
            .into_iter()
            .filter(|m| m["port"].as_u64().is_none_or(|p| p == u64::from(port)))
            .collect();
        for m in matches {
            let mut r = json!({"match": route_match(&m)});
            if let Some(dr) = http.get("directResponse").filter(|d| d.is_object()) {
                let mut d = json!({"status": dr["status"].as_u64().unwrap_or(200)});
                if let Some(body) = dr["body"]["string"].as_str() {
                    d["body"] = json!({"inline_string": body});
                }
                r["direct_response"] = d;
            } else if let Some(redirect) = http.get("redirect").filter(|d| d.is_object()) {
                let mut d = json!({});
                if let Some(u) = redirect["uri"].as_str() {
                    d["path_redirect"] = json!(u);
                }
                if let Some(a) = redirect["authority"].as_str() {
                    d["host_redirect"] = json!(a);
                }
                r["redirect"] = d;
            } else {
                r["route"] = route_action(ctx, http, vs_ns, &svc.hostname, port);
            }
            if let Some(n) = http["name"].as_str() {
                r["name"] = json!(n);
            }
            if let Some(c) = &config {
                r["metadata"] = json!({"filter_metadata": {"istio": {"config": c}}});
            }
            r["decorator"] = json!({"operation": format!("{}:{port}/*", svc.hostname)});
            out.push(r);
        }
    }
    if out.is_empty() {
        // A VirtualService with no HTTP route that applies: Istio still
        // routes the host with its default route.
        out.push(default_route(ctx, svc, port));
    }
    out
}

fn string_match(m: &Value) -> Option<Value> {
    if let Some(s) = m["exact"].as_str() {
        Some(json!({"exact": s}))
    } else if let Some(s) = m["prefix"].as_str() {
        Some(json!({"prefix": s}))
    } else {
        m["regex"]
            .as_str()
            .map(|s| json!({"safe_regex": {"regex": s}}))
    }
}

fn route_match(m: &Value) -> Value {
    let mut out = json!({});
    let uri = &m["uri"];
    if let Some(s) = uri["exact"].as_str() {
        out["path"] = json!(s);
    } else if let Some(s) = uri["prefix"].as_str() {
        out["prefix"] = json!(s);
    } else if let Some(s) = uri["regex"].as_str() {
        out["safe_regex"] = json!({"regex": s});
    } else {
        out["prefix"] = json!("/");
    }
    if m["ignoreUriCase"].as_bool() == Some(true) {
        out["case_sensitive"] = json!(false);
    }
    let headers: Vec<Value> = m["headers"]
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(name, sm)| string_match(sm).map(|s| json!({"name": name, "string_match": s})))
        .collect();
    if !headers.is_empty() {
        out["headers"] = json!(headers);
    }
    out
}

fn route_action(ctx: &Ctx, http: &Value, vs_ns: &str, default_host: &str, port: u16) -> Value {
    let dests: Vec<(String, u64)> = http["route"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|d| {
            (
                destination_cluster(ctx, &d["destination"], vs_ns, default_host, port),
                d["weight"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    let mut action = json!({"timeout": http["timeout"].as_str().unwrap_or("0s")});
    match dests.len() {
        0 => action["cluster"] = json!("BlackHoleCluster"),
        1 => action["cluster"] = json!(dests[0].0),
        _ => {
            let weighted: Vec<Value> = dests
                .iter()
                .filter(|(_, w)| *w > 0)
                .map(|(c, w)| json!({"name": c, "weight": w}))
                .collect();
            if weighted.is_empty() {
                action["cluster"] = json!(dests[0].0);
            } else if weighted.len() == 1 {
                action["cluster"] = weighted[0]["name"].clone();
            } else {
                action["weighted_clusters"] = json!({"clusters": weighted});
            }
        }
    }
    match http.get("retries").filter(|r| r.is_object()) {
        Some(r) => {
            let attempts = r["attempts"].as_u64().unwrap_or(0);
            if attempts > 0 {
                let mut rp = ctx
                    .version
                    .default_retry_policy()
                    .unwrap_or_else(|| json!({}));
                rp["num_retries"] = json!(attempts);
                rp["retry_on"] = json!(r["retryOn"]
                    .as_str()
                    .unwrap_or(rp["retry_on"].as_str().unwrap_or("5xx")));
                if let Some(t) = r["perTryTimeout"].as_str() {
                    rp["per_try_timeout"] = json!(t);
                }
                action["retry_policy"] = rp;
            }
        }
        None => {
            if let Some(rp) = ctx.version.default_retry_policy() {
                action["retry_policy"] = rp;
            }
        }
    }
    if ctx.version.at_least(8) {
        action["max_stream_duration"] =
            json!({"max_stream_duration": "0s", "grpc_timeout_header_max": "0s"});
    }
    action
}

/// `destination: {host, subset, port}` → cluster name. Port: as written,
/// else the destination service's only port, else the listener's port.
fn destination_cluster(
    ctx: &Ctx,
    dest: &Value,
    vs_ns: &str,
    default_host: &str,
    port: u16,
) -> String {
    let host = resolve_host(dest["host"].as_str().unwrap_or(default_host), vs_ns);
    let dport = dest["port"]["number"]
        .as_u64()
        .map(|p| p as u16)
        .unwrap_or_else(|| {
            let target = ctx.services.iter().find(|s| s.hostname == host);
            match target {
                Some(t) if t.ports.len() == 1 => t.ports[0].port,
                _ => port,
            }
        });
    outbound_cluster_name(dport, dest["subset"].as_str().unwrap_or(""), &host)
}

/// The routes a VirtualService bound to a gateway gives a server on `port`
/// (istio/istio `route.go` `BuildHTTPRoutesForVirtualService` for a
/// gateway): its HTTP routes whose match port is unset or `port`, with no
/// default route added; destinations name their host (resolved in the
/// VirtualService's namespace).
pub fn gateway_routes(ctx: &Ctx, vs: &Value, port: u16) -> Vec<Value> {
    let vs_ns = namespace(vs);
    let config = ctx
        .version
        .config_path("virtual-service", vs_ns, world::name(vs));
    let mut out = Vec::new();
    for http in vs["spec"]["http"].as_array().into_iter().flatten() {
        let matches: Vec<Value> = match http["match"].as_array() {
            Some(m) if !m.is_empty() => m.clone(),
            _ => vec![Value::Null],
        };
        for m in matches
            .into_iter()
            .filter(|m| m["port"].as_u64().is_none_or(|p| p == u64::from(port)))
        {
            let mut r = json!({"match": route_match(&m)});
            if let Some(dr) = http.get("directResponse").filter(|d| d.is_object()) {
                r["direct_response"] = json!({"status": dr["status"].as_u64().unwrap_or(200)});
            } else {
                let first = http["route"][0]["destination"]["host"]
                    .as_str()
                    .unwrap_or("");
                r["route"] = route_action(ctx, http, vs_ns, first, port);
                let host = resolve_host(first, vs_ns);
                r["decorator"] = json!({"operation": format!("{host}:{port}/*")});
            }
            if let Some(n) = http["name"].as_str() {
                r["name"] = json!(n);
            }
            if let Some(c) = &config {
                r["metadata"] = json!({"filter_metadata": {"istio": {"config": c}}});
            }
            out.push(r);
        }
    }
    out
}
