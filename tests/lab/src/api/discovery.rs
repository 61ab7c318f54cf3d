//! Discovery (legacy and aggregated `apidiscovery.k8s.io/v2`), `/version`,
//! and the minimal OpenAPI v3 documents kubectl reads to learn that the
//! server validates fields itself (the `fieldValidation` query parameter).

use axum::http::HeaderMap;
use serde_json::{json, Value};

use crate::resources::{Registry, ResourceType};

use super::status::accept_ranges;

/// Which aggregated discovery version the client asked for, if any:
/// `application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList`
/// (or `v2beta1`). A plain `application/json` listed first means legacy.
pub fn wants_aggregated(headers: &HeaderMap) -> Option<&'static str> {
    for r in accept_ranges(headers) {
        let plain = r.params.is_empty();
        if r.mime == "application/json"
            && r.param("g") == Some("apidiscovery.k8s.io")
            && r.param("as") == Some("APIGroupDiscoveryList")
        {
            match r.param("v") {
                Some("v2") => return Some("v2"),
                Some("v2beta1") => return Some("v2beta1"),
                _ => continue,
            }
        }
        if plain && (r.mime == "application/json" || r.mime == "*/*") {
            return None;
        }
    }
    None
}

/// The Content-Type echoing the negotiated aggregated discovery type.
pub fn aggregated_content_type(version: &str) -> String {
    format!("application/json;g=apidiscovery.k8s.io;v={version};as=APIGroupDiscoveryList")
}

/// `GET /version`.
pub fn version_info(server_version: &str) -> Value {
    let trimmed = server_version.trim_start_matches('v');
    let mut parts = trimmed.split(['.', '-', '+']);
    let major = parts.next().unwrap_or("1").to_string();
    let minor = parts.next().unwrap_or("0").to_string();
    json!({
        "major": major,
        "minor": minor,
        "gitVersion": server_version,
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2025-01-01T00:00:00Z",
        "goVersion": "go1.24.0",
        "compiler": "gc",
        "platform": "linux/amd64",
    })
}

/// Kind of a subresource's response.
fn sub_kind(sub: &str, t: &ResourceType) -> (&'static str, &'static str, String) {
    match sub {
        "log" => ("", "v1", "PodLogOptions".into()),
        "portforward" => ("", "v1", "PodPortForwardOptions".into()),
        "scale" => ("autoscaling", "v1", "Scale".into()),
        _ => (t.group, "", t.kind.to_string()),
    }
}

/// Legacy `APIResourceList` for `/api/v1` or `/apis/<group>/<version>`.
pub fn resource_list(registry: &Registry, group: &str, version: &str) -> Value {
    let gv = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    let mut resources = Vec::new();
    for t in registry.types_in(group, version) {
        let mut r = json!({
            "name": t.plural,
            "singularName": t.singular,
            "namespaced": t.namespaced,
            "kind": t.kind,
            "verbs": t.verbs,
        });
        if !t.short_names.is_empty() {
            r["shortNames"] = json!(t.short_names);
        }
        if !t.categories().is_empty() {
            r["categories"] = json!(t.categories());
        }
        resources.push(r);
        for (sub, verbs) in t.subresources() {
            let (g, v, kind) = sub_kind(sub, t);
            let mut r = json!({
                "name": format!("{}/{sub}", t.plural),
                "singularName": "",
                "namespaced": t.namespaced,
                "kind": kind,
                "verbs": verbs,
            });
            if sub == "scale" {
                r["group"] = json!(g);
                r["version"] = json!(v);
            }
            resources.push(r);
        }
    }
    json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": gv,
        "resources": resources,
    })
}

/// Legacy `GET /api`.
pub fn api_versions(server_addr: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_addr}],
    })
}

fn api_group(group: &str, versions: &[&str]) -> Value {
    let vs: Vec<Value> = versions
        .iter()
        .map(|v| json!({"groupVersion": format!("{group}/{v}"), "version": v}))
        .collect();
    json!({
        "name": group,
        "versions": vs,
        "preferredVersion": vs[0],
    })
}

/// Legacy `GET /apis`.
pub fn api_group_list(registry: &Registry) -> Value {
    let groups: Vec<Value> = registry
        .groups()
        .into_iter()
        .filter(|(g, _)| !g.is_empty())
        .map(|(g, vs)| api_group(g, &vs))
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// Legacy `GET /apis/<group>`, `None` if the group is not served.
pub fn api_group_doc(registry: &Registry, group: &str) -> Option<Value> {
    let (g, vs) = registry
        .groups()
        .into_iter()
        .find(|(g, _)| *g == group && !g.is_empty())?;
    let mut v = api_group(g, &vs);
    v["kind"] = json!("APIGroup");
    v["apiVersion"] = json!("v1");
    Some(v)
}

fn aggregated_group(registry: &Registry, group: &str, versions: &[&str]) -> Value {
    let vs: Vec<Value> = versions
        .iter()
        .map(|v| {
            let resources: Vec<Value> = registry
                .types_in(group, v)
                .into_iter()
                .map(|t| {
                    let subs: Vec<Value> = t
                        .subresources()
                        .into_iter()
                        .map(|(sub, verbs)| {
                            let (g, sv, kind) = sub_kind(sub, t);
                            let sv = if sv.is_empty() { *v } else { sv };
                            json!({
                                "subresource": sub,
                                "responseKind": {"group": g, "version": sv, "kind": kind},
                                "verbs": verbs,
                            })
                        })
                        .collect();
                    let mut r = json!({
                        "resource": t.plural,
                        "responseKind": {"group": t.group, "version": v, "kind": t.kind},
                        "scope": if t.namespaced { "Namespaced" } else { "Cluster" },
                        "singularResource": t.singular,
                        "verbs": t.verbs,
                    });
                    if !t.short_names.is_empty() {
                        r["shortNames"] = json!(t.short_names);
                    }
                    if !t.categories().is_empty() {
                        r["categories"] = json!(t.categories());
                    }
                    if !subs.is_empty() {
                        r["subresources"] = json!(subs);
                    }
                    r
                })
                .collect();
            json!({"version": v, "resources": resources, "freshness": "Current"})
        })
        .collect();
    let metadata = if group.is_empty() {
        json!({"creationTimestamp": null})
    } else {
        json!({"name": group, "creationTimestamp": null})
    };
    json!({"metadata": metadata, "versions": vs})
}

/// Aggregated discovery for `/api` (`core == true`) or `/apis`.
pub fn aggregated(registry: &Registry, core: bool, version: &str) -> Value {
    let items: Vec<Value> = registry
        .groups()
        .into_iter()
        .filter(|(g, _)| g.is_empty() == core)
        .map(|(g, vs)| aggregated_group(registry, g, &vs))
        .collect();
    json!({
        "kind": "APIGroupDiscoveryList",
        "apiVersion": format!("apidiscovery.k8s.io/{version}"),
        "metadata": {},
        "items": items,
    })
}

fn gv_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

fn fnv(s: &str) -> String {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x100000001b3);
    }
    format!("{h:016X}")
}

/// `GET /openapi/v3`: one entry per served group version.
pub fn openapi_v3_root(registry: &Registry, server_version: &str) -> Value {
    let mut paths = serde_json::Map::new();
    for (g, vs) in registry.groups() {
        for v in vs {
            let doc = openapi_v3_gv(registry, g, v, server_version)
                .map(|d| d.to_string())
                .unwrap_or_default();
            let p = gv_path(g, v);
            paths.insert(
                p.clone(),
                json!({"serverRelativeURL": format!("/openapi/v3/{p}?hash={}", fnv(&doc))}),
            );
        }
    }
    json!({"paths": paths})
}

/// `GET /openapi/v3/api/v1` or `/openapi/v3/apis/<g>/<v>`: paths with the
/// operations and their `x-kubernetes-group-version-kind`, and the
/// `fieldValidation` parameter on writes, so kubectl leaves validation to the
/// server instead of demanding an OpenAPI v2 schema. Schemas are open objects.
pub fn openapi_v3_gv(
    registry: &Registry,
    group: &str,
    version: &str,
    server_version: &str,
) -> Option<Value> {
    let types = registry.types_in(group, version);
    if types.is_empty() {
        return None;
    }
    let prefix = format!("/{}", gv_path(group, version));
    let mut paths = serde_json::Map::new();
    let mut schemas = serde_json::Map::new();
    for t in types {
        let gvk = json!({"group": t.group, "version": version, "kind": t.kind});
        let schema_name = format!(
            "{}.{}.{}",
            if t.group.is_empty() {
                "io.k8s.api.core"
            } else {
                t.group
            },
            version,
            t.kind
        );
        schemas.insert(
            schema_name.clone(),
            json!({
                "type": "object",
                "x-kubernetes-group-version-kind": [gvk],
                "x-kubernetes-preserve-unknown-fields": true,
                "properties": {
                    "apiVersion": {"type": "string"},
                    "kind": {"type": "string"},
                    "metadata": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                    "spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                    "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                },
            }),
        );
        let body = json!({"content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{schema_name}")}}}});
        let ok = json!({"200": {"description": "OK", "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{schema_name}")}}}}});
        let field_validation = json!({
            "name": "fieldValidation", "in": "query", "schema": {"type": "string", "uniqueItems": true},
            "description": "fieldValidation instructs the server on how to handle objects in the request containing unknown or duplicate fields."
        });
        let dry_run = json!({"name": "dryRun", "in": "query", "schema": {"type": "string", "uniqueItems": true}});
        let op = |action: &str, with_body: bool| {
            let mut o = json!({
                "x-kubernetes-action": action,
                "x-kubernetes-group-version-kind": gvk,
                "responses": ok,
                "parameters": if with_body { json!([dry_run, field_validation]) } else { json!([]) },
            });
            if with_body {
                o["requestBody"] = body.clone();
            }
            o
        };
        let (collection, item) = if t.namespaced {
            (
                format!("{prefix}/namespaces/{{namespace}}/{}", t.plural),
                format!("{prefix}/namespaces/{{namespace}}/{}/{{name}}", t.plural),
            )
        } else {
            (
                format!("{prefix}/{}", t.plural),
                format!("{prefix}/{}/{{name}}", t.plural),
            )
        };
        paths.insert(
            collection,
            json!({"get": op("list", false), "post": op("post", true)}),
        );
        paths.insert(
            item,
            json!({
                "get": op("get", false),
                "put": op("put", true),
                "patch": op("patch", true),
                "delete": op("delete", false),
            }),
        );
    }
    Some(json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": server_version},
        "paths": paths,
        "components": {"schemas": schemas},
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::{header, HeaderValue};

    #[test]
    fn negotiates_aggregated_discovery() {
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT, HeaderValue::from_static(
            "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json"));
        assert_eq!(wants_aggregated(&h), Some("v2"));
        h.insert(header::ACCEPT, HeaderValue::from_static(
            "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json"));
        assert_eq!(wants_aggregated(&h), Some("v2beta1"));
        h.insert(
            header::ACCEPT,
            HeaderValue::from_static("application/json, */*"),
        );
        assert_eq!(wants_aggregated(&h), None);
    }

    #[test]
    fn discovery_documents() {
        let r = Registry::for_istio(24);
        let core = resource_list(&r, "", "v1");
        let names: Vec<&str> = core["resources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["name"].as_str().unwrap())
            .collect();
        for want in [
            "pods",
            "pods/log",
            "pods/portforward",
            "pods/status",
            "services",
            "secrets",
        ] {
            assert!(names.contains(&want), "{want} missing from {names:?}");
        }
        let groups = api_group_list(&r);
        let net = groups["groups"]
            .as_array()
            .unwrap()
            .iter()
            .find(|g| g["name"] == "networking.istio.io")
            .unwrap();
        assert_eq!(net["preferredVersion"]["version"], "v1");
        let agg = aggregated(&r, false, "v2");
        assert_eq!(agg["kind"], "APIGroupDiscoveryList");
        let agg_core = aggregated(&r, true, "v2");
        assert_eq!(agg_core["items"].as_array().unwrap().len(), 1);
        let pods = agg_core["items"][0]["versions"][0]["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["resource"] == "pods")
            .unwrap();
        assert_eq!(pods["scope"], "Namespaced");
        assert_eq!(pods["shortNames"], json!(["po"]));
        assert!(api_group_doc(&r, "authentication.istio.io").is_none());
        assert!(api_group_doc(&Registry::for_istio(1), "authentication.istio.io").is_some());
    }

    #[test]
    fn openapi_v3_lists_patch_with_field_validation() {
        let r = Registry::for_istio(24);
        let root = openapi_v3_root(&r, "v1.33.0");
        assert!(
            root["paths"]["apis/networking.istio.io/v1alpha3"]["serverRelativeURL"]
                .as_str()
                .unwrap()
                .starts_with("/openapi/v3/apis/networking.istio.io/v1alpha3?hash=")
        );
        let doc = openapi_v3_gv(&r, "networking.istio.io", "v1alpha3", "v1.33.0").unwrap();
        let patch = &doc["paths"]
            ["/apis/networking.istio.io/v1alpha3/namespaces/{namespace}/destinationrules/{name}"]
            ["patch"];
        assert_eq!(
            patch["x-kubernetes-group-version-kind"]["kind"],
            "DestinationRule"
        );
        assert!(patch["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "fieldValidation" && p["in"] == "query"));
        assert!(openapi_v3_gv(&r, "authentication.istio.io", "v1alpha1", "v1.33.0").is_none());
    }
}
