//! Whether a proxy logs requests, and with which logger, by direction: the
//! Telemetry API (`telemetry.istio.io` Telemetry `accessLogging`) when it
//! configures anything for the proxy, else mesh config `accessLogFile`.
//! Istio's default install sets neither, so access logs are off.
//!
//! Sources (istio/istio 1.31.0-rc.0, same shape since 1.12.0):
//! - `pilot/pkg/model/telemetry.go` `AccessLogging`, `applicableTelemetries`,
//!   `mergeLogs`, `matchWorkloadMode`: Telemetries of the root namespace,
//!   then of the proxy's namespace (the first without selector in each),
//!   then those whose `selector.matchLabels` select the proxy, in that order
//!   (later ones override). Outbound listeners are the CLIENT class, inbound
//!   ones SERVER. No applicable `accessLogging` and no mesh
//!   `defaultProviders.accessLogging` = "not configured by Telemetry".
//! - `pilot/pkg/networking/core/accesslog.go` `setHTTPAccessLog`,
//!   `setListenerAccessLog`, `buildAccessLogFromTelemetry`: not configured
//!   → mesh `accessLogFile`; configured → one logger per enabled provider,
//!   none when `disabled: true` (even if `accessLogFile` is set); the
//!   listener-level logger adds the `NR` response flag filter; a
//!   `filter.expression` becomes a CEL extension filter.
//! - `pilot/pkg/model/telemetry_logging.go` `telemetryAccessLog`: the
//!   built-in provider `envoy` (`pkg/config/mesh/mesh.go`
//!   `DefaultMeshConfig`: file `/dev/stdout`) uses the mesh config's format
//!   and encoding.
//!
//! LAB DIFFERENCES: only file providers are modelled (the built-in `envoy`
//! and mesh `extensionProviders[].envoyFileAccessLog`, whose `logFormat` is
//! ignored: the mesh format is used); gRPC/OpenTelemetry providers are
//! skipped; when several file providers apply, the first by name is used.
//! Telemetry `targetRefs` are ignored; the Telemetry API is read from 1.12
//! (the CRD is served from 1.10).

use super::accesslog;
use super::version::IstioVersion;
use super::world::{self, labels, namespace, selects, string_map, MeshConfig, World};
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// The file access loggers of one proxy, by direction.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AccessLogs {
    /// Outbound (CLIENT) HCMs and tcp_proxies.
    pub client: Option<Value>,
    /// Inbound (SERVER) HCMs and tcp_proxies.
    pub server: Option<Value>,
    /// Listener-level logger (no filter chain matched, `NR`), outbound.
    pub client_listener: Option<Value>,
    /// Listener-level logger, inbound (`virtualInbound`).
    pub server_listener: Option<Value>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Client,
    Server,
}

/// One provider's outcome after merging (`loggingSpec`).
#[derive(Debug, Clone, Default)]
struct Spec {
    disabled: bool,
    filter: Option<String>,
}

/// The raw mesh config (`data.mesh` of the `istio` ConfigMap).
fn raw_mesh(world: &World) -> Value {
    world
        .istio_configmap()
        .and_then(|cm| cm["data"]["mesh"].as_str())
        .and_then(|s| serde_yaml::from_str::<Value>(s).ok())
        .filter(Value::is_object)
        .unwrap_or_else(|| json!({}))
}

fn has_selector(t: &Value) -> bool {
    !string_map(&t["spec"]["selector"]["matchLabels"]).is_empty()
        || t["spec"]["targetRefs"]
            .as_array()
            .is_some_and(|a| !a.is_empty())
        || t["spec"]["targetRef"].is_object()
}

/// `accessLogging` lists that apply to a pod, broadest first.
fn applicable_logging(world: &World, mesh: &MeshConfig, pod: &Value) -> Vec<Vec<Value>> {
    let mut all: Vec<&Value> = world.of_kind("telemetry.istio.io", "Telemetry").collect();
    all.sort_by_key(|o| world::age_key(o));
    let ns = namespace(pod);
    let root = mesh.root_namespace.as_str();
    let logging = |t: &Value| {
        t["spec"]["accessLogging"]
            .as_array()
            .filter(|a| !a.is_empty())
            .cloned()
    };
    let ns_wide = |n: &str| {
        all.iter()
            .find(|t| namespace(t) == n && !has_selector(t))
            .copied()
    };
    let mut out = Vec::new();
    if let Some(l) = ns_wide(root).and_then(logging) {
        out.push(l);
    }
    if ns != root {
        if let Some(l) = ns_wide(ns).and_then(logging) {
            out.push(l);
        }
    }
    let pod_labels = labels(pod);
    for t in all.iter().filter(|t| namespace(t) == ns) {
        let sel: BTreeMap<String, String> = string_map(&t["spec"]["selector"]["matchLabels"]);
        if !sel.is_empty() && selects(&sel, &pod_labels) {
            if let Some(l) = logging(t) {
                out.push(l);
            }
        }
    }
    out
}

fn matches_mode(entry: &Value, mode: Mode) -> bool {
    match entry["match"]["mode"].as_str() {
        None | Some("CLIENT_AND_SERVER") => true,
        Some("CLIENT") => mode == Mode::Client,
        Some("SERVER") => mode == Mode::Server,
        Some(_) => false,
    }
}

fn provider_names(entry: &Value) -> Vec<String> {
    entry["providers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p["name"].as_str().map(str::to_string))
        .collect()
}

/// `mergeLogs` for one mode: provider name → spec.
fn merge(logs: &[Vec<Value>], defaults: &[String], mode: Mode) -> BTreeMap<String, Spec> {
    let mut providers = BTreeMap::new();
    if logs.is_empty() {
        for d in defaults {
            providers.insert(d.clone(), Spec::default());
        }
        return providers;
    }
    let mut in_scope: Vec<String> = defaults.to_vec();
    let mut filters: BTreeMap<String, Spec> = BTreeMap::new();
    for level in logs {
        let mut names = Vec::new();
        for entry in level.iter().filter(|e| matches_mode(e, mode)) {
            for p in provider_names(entry) {
                filters.insert(
                    p.clone(),
                    Spec {
                        disabled: false,
                        filter: entry["filter"]["expression"].as_str().map(str::to_string),
                    },
                );
                names.push(p);
            }
        }
        if !names.is_empty() {
            in_scope = names;
        }
    }
    let mut parent: Vec<String> = defaults.to_vec();
    for level in logs {
        for entry in level {
            let mut names = provider_names(entry);
            if names.is_empty() {
                names = parent.clone();
            }
            parent = names.clone();
            for p in names {
                if !in_scope.contains(&p) || !matches_mode(entry, mode) {
                    continue;
                }
                if entry["disabled"].as_bool() == Some(true) {
                    providers.insert(
                        p,
                        Spec {
                            disabled: true,
                            filter: None,
                        },
                    );
                } else {
                    providers.insert(p.clone(), filters.get(&p).cloned().unwrap_or_default());
                }
            }
        }
    }
    providers
}

/// Is `name` a file access log provider (built-in `envoy`, or a mesh
/// `extensionProviders` entry with `envoyFileAccessLog`)?
fn is_file_provider(raw: &Value, name: &str) -> bool {
    let declared = raw["extensionProviders"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| {
            p["name"]
                .as_str()
                .is_some_and(|n| n.eq_ignore_ascii_case(name))
        });
    match declared {
        Some(p) => p["envoyFileAccessLog"].is_object(),
        None => name.eq_ignore_ascii_case("envoy"),
    }
}

/// The file logger the mesh config's format gives, with `filter` added.
fn file_logger(mesh: &MeshConfig, v: IstioVersion, filter: Option<Value>) -> Option<Value> {
    let on = MeshConfig {
        access_log_file: Some("/dev/stdout".into()),
        ..mesh.clone()
    };
    let mut al = accesslog::access_log(&on, v)?;
    if let Some(f) = filter {
        al["filter"] = f;
    }
    Some(al)
}

fn cel_filter(expr: &str) -> Value {
    json!({"extension_filter": {"name": "envoy.access_loggers.extension_filters.cel",
        "typed_config": {"@type": "type.googleapis.com/envoy.extensions.access_loggers.filters.cel.v3.ExpressionFilter",
            "expression": expr}}})
}

fn nr_filter() -> Value {
    json!({"response_flag_filter": {"flags": ["NR"]}})
}

/// (request logger, listener logger) for one mode, when Telemetry decides.
fn from_telemetry(
    raw: &Value,
    mesh: &MeshConfig,
    v: IstioVersion,
    specs: &BTreeMap<String, Spec>,
) -> (Option<Value>, Option<Value>) {
    let Some((_, spec)) = specs
        .iter()
        .find(|(name, s)| !s.disabled && is_file_provider(raw, name))
    else {
        return (None, None);
    };
    let cel = spec.filter.as_deref().map(cel_filter);
    let listener_filter = match &cel {
        Some(c) => json!({"and_filter": {"filters": [nr_filter(), c]}}),
        None => nr_filter(),
    };
    // Listener logs use the 1.9+ format in every release (see accesslog.rs).
    let lv = if v.at_least(9) { v } else { (1, 9).into() };
    (
        file_logger(mesh, v, cel),
        file_logger(mesh, lv, Some(listener_filter)),
    )
}

/// The file access loggers of a pod's sidecar, by direction.
pub fn access_logs(world: &World, mesh: &MeshConfig, v: IstioVersion, pod: &Value) -> AccessLogs {
    let legacy = AccessLogs {
        client: accesslog::access_log(mesh, v),
        server: accesslog::access_log(mesh, v),
        client_listener: accesslog::listener_access_log(mesh, v),
        server_listener: accesslog::listener_access_log(mesh, v),
    };
    if !v.telemetry_access_logging() {
        return legacy;
    }
    let raw = raw_mesh(world);
    let defaults: Vec<String> = world::string_list(&raw["defaultProviders"]["accessLogging"]);
    let logs = applicable_logging(world, mesh, pod);
    if logs.is_empty() && defaults.is_empty() {
        return legacy;
    }
    let (client, client_listener) =
        from_telemetry(&raw, mesh, v, &merge(&logs, &defaults, Mode::Client));
    let (server, server_listener) =
        from_telemetry(&raw, mesh, v, &merge(&logs, &defaults, Mode::Server));
    AccessLogs {
        client,
        server,
        client_listener,
        server_listener,
    }
}

const FILE_LOGGER: &str = "envoy.access_loggers.file";

/// Replace the file loggers in `list` by `want` (or drop them).
fn set_file_logger(list: &mut Value, want: Option<&Value>) {
    let Some(items) = list.as_array_mut() else {
        return;
    };
    let had = items.iter().any(|a| a["name"] == FILE_LOGGER);
    items.retain(|a| a["name"] != FILE_LOGGER);
    if let (true, Some(w)) = (had, want) {
        items.insert(0, w.clone());
    }
}

/// The builders put the client logger (or, when only the server side logs,
/// the server one) wherever a proxy logs; this gives each listener the
/// logger of its direction: `traffic_direction: INBOUND` is SERVER,
/// everything else CLIENT.
pub fn apply(listeners: &mut [Value], logs: &AccessLogs) {
    for l in listeners {
        let inbound = l["traffic_direction"] == "INBOUND";
        let (req, lis) = if inbound {
            (logs.server.as_ref(), logs.server_listener.as_ref())
        } else {
            (logs.client.as_ref(), logs.client_listener.as_ref())
        };
        if l["access_log"].is_array() {
            set_file_logger(&mut l["access_log"], lis);
            if l["access_log"].as_array().is_some_and(Vec::is_empty) {
                if let Some(m) = l.as_object_mut() {
                    m.remove("access_log");
                }
            }
        }
        super::metrics::for_each_network_filter(l, |f, _| {
            let tc = &mut f["typed_config"];
            if tc["access_log"].is_array() {
                set_file_logger(&mut tc["access_log"], req);
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn world(mesh: &str, extra: Vec<Value>) -> (World, Value) {
        let pod = json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "hb-1", "namespace": "foo", "labels": {"app": "httpbin"}}});
        let mut objects = vec![
            json!({"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "istio", "namespace": "istio-system"}, "data": {"mesh": mesh}}),
            pod.clone(),
        ];
        objects.extend(extra);
        (World::new(objects), pod)
    }

    fn tel(ns: &str, name: &str, spec: Value) -> Value {
        json!({"apiVersion": "telemetry.istio.io/v1", "kind": "Telemetry",
            "metadata": {"name": name, "namespace": ns, "creationTimestamp": "2026-01-01T00:00:00Z"}, "spec": spec})
    }

    fn logs(w: &World, pod: &Value, minor: u32) -> AccessLogs {
        access_logs(w, &w.mesh_config(), (1, minor).into(), pod)
    }

    #[test]
    fn off_by_default_on_by_mesh_config_or_telemetry() {
        let (w, p) = world("", vec![]);
        assert_eq!(logs(&w, &p, 31), AccessLogs::default());
        let (w, p) = world("accessLogFile: /dev/stdout\n", vec![]);
        let l = logs(&w, &p, 31);
        assert!(l.client.is_some() && l.server.is_some());
        let envoy = json!({"accessLogging": [{"providers": [{"name": "envoy"}]}]});
        let (w, p) = world("", vec![tel("istio-system", "mesh-default", envoy.clone())]);
        let l = logs(&w, &p, 31);
        assert!(l.client.is_some() && l.server.is_some());
        assert_eq!(
            l.server_listener.unwrap()["filter"]["response_flag_filter"]["flags"][0],
            "NR"
        );
        // Before 1.12 the Telemetry API does not drive access logs.
        assert_eq!(logs(&w, &p, 11), AccessLogs::default());
        // defaultProviders turns them on without any Telemetry.
        let (w, p) = world("defaultProviders: {accessLogging: [envoy]}\n", vec![]);
        assert!(logs(&w, &p, 31).client.is_some());
    }

    #[test]
    fn narrower_scopes_disable_or_select_a_mode() {
        let envoy = json!({"accessLogging": [{"providers": [{"name": "envoy"}]}]});
        // A namespace Telemetry disabling logs beats the mesh-wide one and accessLogFile.
        let (w, p) = world(
            "accessLogFile: /dev/stdout\n",
            vec![
                tel("istio-system", "mesh-default", envoy.clone()),
                tel("foo", "off", json!({"accessLogging": [{"disabled": true}]})),
            ],
        );
        assert_eq!(logs(&w, &p, 31), AccessLogs::default());
        // Workload selector, server side only, with a filter.
        let (w, p) = world(
            "",
            vec![tel(
                "foo",
                "hb",
                json!({"selector": {"matchLabels": {"app": "httpbin"}},
                "accessLogging": [{"providers": [{"name": "envoy"}], "match": {"mode": "SERVER"},
                                   "filter": {"expression": "response.code >= 500"}}]}),
            )],
        );
        let l = logs(&w, &p, 31);
        assert!(l.client.is_none());
        let s = l.server.unwrap();
        assert_eq!(
            s["filter"]["extension_filter"]["typed_config"]["expression"],
            "response.code >= 500"
        );
        // A selector that does not match leaves logs off.
        let (w, p) = world(
            "",
            vec![tel(
                "foo",
                "other",
                json!({"selector": {"matchLabels": {"app": "x"}}, "accessLogging": [{"providers": [{"name": "envoy"}]}]}),
            )],
        );
        assert_eq!(logs(&w, &p, 31), AccessLogs::default());
    }
}
