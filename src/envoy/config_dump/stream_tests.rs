//! Tests of the streaming reader ([`super::stream`]): it gives what the tree
//! parser gives, on every config dump the repository holds (recorded from
//! lab Envoys: the fuzz seeds, the snapshots' dumps, the benches' full
//! dumps; and, through [`parse_checked`], every hand-written dump of the
//! unit tests), each read twice: as written, and re-rendered with every
//! object's keys in reverse order (so `@type` comes last: the fallback, and
//! the lists out of the tree parser's order).
//!
//! Place in the flow: test-only (envoy/ parsers).

use std::path::{Path, PathBuf};

use proptest::prelude::*;
use serde_json::{json, Value};

use super::stream::{self, DumpDocument};
use super::{parse_config_dump, ConfigDump, DumpError};

/// The tree parser's result for `v`, after checking that the streaming
/// reader gives the same on `v` as written and with its keys reversed.
pub(crate) fn parse_checked(v: &Value) -> Result<ConfigDump, DumpError> {
    assert_same_value(v);
    parse_config_dump(v)
}

/// `v` rendered as JSON with every object's keys in reverse order.
fn reversed(v: &Value) -> String {
    match v {
        Value::Object(m) => {
            let fields: Vec<String> = m
                .iter()
                .rev()
                .map(|(k, x)| format!("{}:{}", Value::String(k.clone()), reversed(x)))
                .collect();
            format!("{{{}}}", fields.join(","))
        }
        Value::Array(a) => {
            let items: Vec<String> = a.iter().map(reversed).collect();
            format!("[{}]", items.join(","))
        }
        other => other.to_string(),
    }
}

fn assert_same_value(v: &Value) {
    assert_same(&serde_json::to_vec(v).unwrap(), "as written");
    assert_same(reversed(v).as_bytes(), "keys reversed");
}

/// Both readers on `bytes`: the same dump, the same top-level facts, or
/// both refuse the JSON. Returns the streamed document.
fn assert_same(bytes: &[u8], what: &str) -> Option<DumpDocument> {
    let tree = serde_json::from_slice::<Value>(bytes);
    let streamed = stream::from_slice(bytes);
    let from_reader = stream::from_reader(std::io::BufReader::new(bytes));
    let text = || String::from_utf8_lossy(&bytes[..bytes.len().min(300)]).into_owned();
    match (tree, streamed, from_reader) {
        (Ok(v), Ok(doc), Ok(doc2)) => {
            assert_eq!(doc, doc2, "from_slice vs from_reader ({what}): {}", text());
            // The two-thread reader of large documents, whatever the size:
            // the same document, or it leaves it to the one-thread reader.
            if let Some(two) = super::parallel::read(bytes) {
                assert_eq!(two, doc, "two threads vs one ({what}): {}", text());
            }
            assert_eq!(
                doc.dump,
                parse_config_dump(&v),
                "stream vs tree ({what}): {}",
                text()
            );
            let schema = v.get("schema").and_then(Value::as_str);
            assert_eq!(doc.top.schema.as_deref(), schema, "{what}");
            assert_eq!(
                doc.top.cluster_statuses,
                v.get("cluster_statuses").is_some(),
                "{what}"
            );
            assert_eq!(
                doc.top.configs_list,
                v.get("configs").is_some_and(Value::is_array),
                "{what}"
            );
            Some(doc)
        }
        (Err(_), Err(_), Err(_)) => None,
        // Nesting past serde_json's limit (128) inside what the streaming
        // reader skips unread: only the tree parser refuses it.
        (Err(e), Ok(_), Ok(_)) if e.to_string().starts_with("recursion limit exceeded") => None,
        (t, s, r) => panic!(
            "the readers disagree on {} ({what}): tree {:?}, stream {:?}, reader {:?}",
            text(),
            t.map(|_| "ok"),
            s.map(|_| "ok"),
            r.map(|_| "ok")
        ),
    }
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn files(dir: &str, suffix: &str) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(repo().join(dir))
        .unwrap_or_else(|e| panic!("{dir}: {e}"))
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(suffix))
        .collect();
    out.sort();
    out
}

/// The dumps a snapshot holds (each proxy's three `?resource=` reads).
fn snapshot_dumps(path: &Path) -> Vec<Value> {
    let v: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    let mut out = Vec::new();
    for p in v["proxies"].as_array().into_iter().flatten() {
        for key in ["clusters_config", "listeners_config", "endpoints_config"] {
            if p.get(key).is_some_and(|d| !d.is_null()) {
                out.push(p[key].clone());
            }
        }
    }
    out
}

#[test]
fn every_recorded_dump_reads_the_same_streamed() {
    let mut documents = 0;
    let mut clusters = 0;
    // Files that are one document each: the fuzz seeds of the parser and of
    // tls-check (a dump, or a list of them), the benches' full dumps.
    let mut whole = files("fuzz/corpus/config_dump", ".json");
    whole.extend(files("fuzz/corpus/tls_check", ".json"));
    whole.extend(files("benches/data", ".json"));
    for f in &whole {
        let bytes = std::fs::read(f).unwrap();
        let name = f.display().to_string();
        if let Some(doc) = assert_same(&bytes, &name) {
            clusters += doc.dump.map(|d| d.clusters.len()).unwrap_or(0);
        }
        if let Ok(v) = serde_json::from_slice::<Value>(&bytes) {
            assert_same(reversed(&v).as_bytes(), &name);
            for d in v.as_array().into_iter().flatten() {
                assert_same_value(d);
            }
        }
        documents += 1;
    }
    // The lab recordings: every proxy's dumps, and the snapshot itself
    // (an object without `configs`, with a `schema`).
    let mut snapshots = files("docs/examples", ".snapshot.json");
    snapshots.extend(files("tests/recordings", ".snapshot.json"));
    snapshots.extend(files("fuzz/corpus/snapshot", ".json"));
    for f in &snapshots {
        let doc = assert_same(&std::fs::read(f).unwrap(), &f.display().to_string()).unwrap();
        assert!(doc.top.schema.is_some() && !doc.top.configs_list);
        for d in snapshot_dumps(f) {
            assert_same_value(&d);
            clusters += parse_config_dump(&d).map(|d| d.clusters.len()).unwrap_or(0);
            documents += 1;
        }
    }
    assert!(
        documents >= 100 && clusters >= 150,
        "too few fixtures found: {documents} documents, {clusters} clusters"
    );
}

/// A full dump whose lists carry what the tree parser reports: a missing
/// cluster, a cluster without a name, a listener with neither name nor
/// address, an endpoint assignment without a cluster name, an element that
/// is not an object, a list that is not a list; routes and secrets skipped
/// however odd their content.
fn malformed_dump() -> Value {
    json!({"configs": [
        {"@type": "type.googleapis.com/envoy.admin.v3.BootstrapConfigDump",
         "bootstrap": {"node": {"id": "sidecar~10.0.0.1~sleep-1.foo~foo.svc.cluster.local"}}},
        {"@type": "type.googleapis.com/envoy.admin.v3.ClustersConfigDump",
         "version_info": "v7",
         "static_clusters": [{"cluster": {"name": "prometheus_stats", "type": "STATIC"}}],
         "dynamic_active_clusters": [
            {"cluster": {"name": "outbound|80||a.foo.svc.cluster.local"}},
            {"version_info": "x"},
            {"cluster": {"type": "EDS"}},
            7,
            {"cluster": {"name": "outbound|80||b.foo.svc.cluster.local"},
             "error_state": {"details": "bad", "failed_configuration": {"name": "outbound|80||b.foo.svc.cluster.local"}}}],
         "dynamic_warming_clusters": "not a list"},
        {"@type": "type.googleapis.com/envoy.admin.v3.ListenersConfigDump",
         "dynamic_listeners": [
            {"name": "virtualInbound", "active_state": {"listener": {"name": "virtualInbound",
                "address": {"socket_address": {"address": "0.0.0.0", "port_value": 15006}}}}},
            {"name": "x"},
            {"active_state": {"listener": {}}}]},
        {"@type": "type.googleapis.com/envoy.admin.v3.RoutesConfigDump",
         "dynamic_route_configs": [{"route_config": {"name": 3, "virtual_hosts": {"x": [[[]]]}}}]},
        {"@type": "type.googleapis.com/envoy.admin.v3.SecretsConfigDump", "dynamic_active_secrets": [1, "a"]},
        {"@type": "type.googleapis.com/envoy.admin.v3.EndpointsConfigDump",
         "dynamic_endpoint_configs": [
            {"endpoint_config": {"cluster_name": "outbound|80||a.foo.svc.cluster.local",
             "endpoints": [{"lb_endpoints": [{"endpoint": {"address": {"socket_address": {"address": "10.0.0.2", "port_value": 80}}}}]}]}},
            {"endpoint_config": {"endpoints": []}}]},
        {"@type": "type.googleapis.com/envoy.admin.v9.Future"},
        {"no_type": true},
        "a string",
        {"@type": 3, "dynamic_active_clusters": []}
    ]})
}

#[test]
fn malformed_elements_are_skipped_and_listed_with_their_paths() {
    let v = malformed_dump();
    assert_same_value(&v);
    let doc = stream::from_slice(&serde_json::to_vec(&v).unwrap()).unwrap();
    let d = doc.dump.unwrap();
    let names: Vec<&str> = d.clusters.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "prometheus_stats",
            "outbound|80||a.foo.svc.cluster.local",
            "outbound|80||b.foo.svc.cluster.local"
        ]
    );
    let paths: Vec<String> = d
        .problems
        .iter()
        .map(|p| match p {
            DumpError::Element { path, .. } => path.clone(),
            other => other.to_string(),
        })
        .collect();
    assert_eq!(
        paths,
        [
            "configs[1].dynamic_active_clusters[1]",
            "configs[1].dynamic_active_clusters[2].cluster.name",
            "configs[1].dynamic_active_clusters[3]",
            "configs[2].dynamic_listeners[1]",
            "configs[2].dynamic_listeners[2].active_state.listener.name",
            "configs[5].dynamic_endpoint_configs[1].endpoint_config.cluster_name",
            "configs[6]",
            "configs[7]",
            "configs[8]",
            "configs[9]",
        ]
    );
    assert_eq!(d.rejected.len(), 1);
    assert_eq!(d.rejected[0].path, "configs[1].dynamic_active_clusters[4]");
    assert_eq!(d.endpoints.len(), 1);
    assert!(d.bootstrap.is_some());
    assert_eq!(d.listeners.len(), 1);
}

/// `@type` after the lists (not what Envoy prints): the element is read
/// whole, and the result is the one with `@type` first, lists in any order.
#[test]
fn type_not_first_falls_back_to_reading_the_element_whole() {
    let first = r#"{"configs": [{"@type": "type.googleapis.com/envoy.admin.v3.ClustersConfigDump",
        "version_info": "v1",
        "static_clusters": [{"cluster": {"name": "s"}}],
        "dynamic_active_clusters": [{"cluster": {"name": "a"}}, {"cluster": {}}]}]}"#;
    let last = r#"{"configs": [{
        "dynamic_active_clusters": [{"cluster": {"name": "a"}}, {"cluster": {}}],
        "static_clusters": [{"cluster": {"name": "s"}}],
        "version_info": "v1",
        "@type": "type.googleapis.com/envoy.admin.v3.ClustersConfigDump"}]}"#;
    let a = assert_same(first.as_bytes(), "first")
        .unwrap()
        .dump
        .unwrap();
    let b = assert_same(last.as_bytes(), "last").unwrap().dump.unwrap();
    assert_eq!(a, b);
    assert_eq!(a.clusters[0].name, "s", "static clusters come first");
    assert_eq!(
        a.problems,
        [DumpError::Element {
            path: "configs[0].dynamic_active_clusters[1].cluster.name".into(),
            reason: "missing cluster name".into()
        }]
    );
    // Streamed (`@type` first) with the lists out of order: the same order.
    let swapped = r#"{"configs": [{"@type": "type.googleapis.com/envoy.admin.v3.ClustersConfigDump",
        "dynamic_active_clusters": [{"cluster": {"name": "a"}}, {"cluster": {}}],
        "static_clusters": [{"cluster": {"name": "s"}}], "version_info": "v1"}]}"#;
    assert_eq!(
        assert_same(swapped.as_bytes(), "swapped")
            .unwrap()
            .dump
            .unwrap(),
        a
    );
}

/// A key written twice keeps its last value, as in a `serde_json::Value`.
#[test]
fn repeated_keys_keep_the_last_value() {
    let doc = r#"{"configs": [{"@type": "type.googleapis.com/envoy.admin.v3.ClustersConfigDump",
          "version_info": "old", "dynamic_active_clusters": [{"cluster": {"name": "dropped"}}],
          "dynamic_active_clusters": [{"cluster": {"name": "kept"}}], "version_info": 3}],
        "configs": [{"@type": "type.googleapis.com/envoy.admin.v3.ClustersConfigDump",
          "version_info": "old", "dynamic_active_clusters": [{"cluster": {"name": "dropped"}}],
          "dynamic_active_clusters": [{"cluster": {"name": "kept"}}], "version_info": "new"}],
        "schema": "mesh503.io/snapshot/v2", "schema": 1}"#;
    let d = assert_same(doc.as_bytes(), "repeated").unwrap();
    assert_eq!(d.top.schema, None);
    let d = d.dump.unwrap();
    assert_eq!(d.clusters.len(), 1);
    assert_eq!(d.clusters[0].name, "kept");
    assert_eq!(
        d.type_versions.values().collect::<Vec<_>>(),
        [&"new".to_string()]
    );
    let not_a_list = r#"{"configs": [], "configs": {"a": 1}}"#;
    let d = assert_same(not_a_list.as_bytes(), "configs").unwrap();
    assert_eq!(d.dump, Err(DumpError::ConfigsNotAList));
}

#[test]
fn documents_that_are_not_dumps() {
    for (text, want) in [
        ("{}", Ok(ConfigDump::default())),
        ("[]", Err(DumpError::NotAnObject)),
        ("[{\"configs\": []}, 1]", Err(DumpError::NotAnObject)),
        ("\"configs\"", Err(DumpError::NotAnObject)),
        ("null", Err(DumpError::NotAnObject)),
        ("{\"configs\": 3}", Err(DumpError::ConfigsNotAList)),
        ("{\"configs\": null}", Err(DumpError::ConfigsNotAList)),
        ("{\"configs\": []}", Ok(ConfigDump::default())),
    ] {
        let doc = assert_same(text.as_bytes(), text).unwrap();
        assert_eq!(doc.dump, want, "{text}");
    }
    let clusters = assert_same(br#"{"cluster_statuses": []}"#, "clusters").unwrap();
    assert!(clusters.top.cluster_statuses && !clusters.top.configs_list);
}

/// Not JSON, cut short, or followed by more: an error from serde_json with
/// the line and column, never a partial dump.
#[test]
fn truncated_or_invalid_json_is_an_error_with_its_position() {
    let full = serde_json::to_string_pretty(&malformed_dump()).unwrap();
    let cut = &full[..full.len() * 2 / 3];
    let e = stream::from_slice(cut.as_bytes()).unwrap_err();
    assert!(e.is_eof(), "{e}");
    assert!(e.line() > 10, "{e}");
    let e = stream::from_reader(std::io::BufReader::new(cut.as_bytes())).unwrap_err();
    assert!(e.is_eof(), "{e}");
    let garbage = full.replacen("\"dynamic_listeners\"", "dynamic_listeners", 1);
    let e = stream::from_slice(garbage.as_bytes()).unwrap_err();
    assert!(e.is_syntax() && e.line() > 1 && e.column() > 0, "{e}");
    let trailing = format!("{full} {{}}");
    assert!(stream::from_slice(trailing.as_bytes())
        .unwrap_err()
        .is_syntax());
    for bad in [
        "",
        "{",
        "{\"configs\": [",
        "\0",
        "{\"configs\": [{\"@type\": \"x\"}],}",
    ] {
        assert_same(bad.as_bytes(), bad);
        assert!(stream::from_slice(bad.as_bytes()).is_err(), "{bad:?}");
    }
    // Past the nesting limit: an error where a resource is read; skipped
    // unread (a document that is not an object, a route table) otherwise.
    let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
    assert_same(deep.as_bytes(), "deep");
    let doc = stream::from_slice(deep.as_bytes()).unwrap();
    assert_eq!(doc.dump, Err(DumpError::NotAnObject));
    let nested = format!(
        r#"{{"configs": [{{"@type": "type.googleapis.com/envoy.admin.v3.ClustersConfigDump", "dynamic_active_clusters": [{{"cluster": {}1{}}}]}}]}}"#,
        "[".repeat(130),
        "]".repeat(130)
    );
    assert_same(nested.as_bytes(), "nested");
    assert!(stream::from_slice(nested.as_bytes()).is_err());
}

const TYPES: &[&str] = &[
    "type.googleapis.com/envoy.admin.v3.ClustersConfigDump",
    "type.googleapis.com/envoy.admin.v2alpha.ClustersConfigDump",
    "type.googleapis.com/envoy.admin.v3.ListenersConfigDump",
    "type.googleapis.com/envoy.admin.v2alpha.ListenersConfigDump",
    "type.googleapis.com/envoy.admin.v3.EndpointsConfigDump",
    "type.googleapis.com/envoy.admin.v3.RoutesConfigDump",
    "type.googleapis.com/envoy.admin.v3.BootstrapConfigDump",
    "type.googleapis.com/envoy.admin.v3.ClustersConfigDump.DynamicCluster",
    "type.googleapis.com/envoy.admin.v3.ListenersConfigDump.DynamicListener",
];
const LIST_KEYS: &[&str] = &[
    "static_clusters",
    "dynamic_active_clusters",
    "dynamic_warming_clusters",
    "static_listeners",
    "dynamic_listeners",
    "dynamic_active_listeners",
    "dynamic_draining_listeners",
    "dynamic_endpoint_configs",
    "static_endpoint_configs",
    "version_info",
];
const KEYS: &[&str] = &[
    "cluster",
    "listener",
    "endpoint_config",
    "name",
    "cluster_name",
    "error_state",
    "active_state",
    "warming_state",
    "failed_configuration",
    "version_info",
    "last_updated",
    "bootstrap",
    "address",
];

/// `configs[]` elements of every kept kind, with lists of arbitrary content.
fn arb_dump() -> impl Strategy<Value = Value> {
    let inner = || {
        crate::istio::testutil::arb_json(
            &["outbound|80||a", "x", "inbound|80||"],
            KEYS,
            "[a-z|]{0,4}",
            "[a-z_]{1,4}",
            (3, 24, 4),
        )
    };
    let list = prop::collection::vec(inner(), 0..4).prop_map(Value::Array);
    let field = prop_oneof![list, inner()];
    let element = (
        prop::sample::select(TYPES),
        prop::collection::btree_map(prop::sample::select(LIST_KEYS), field, 0..4),
    )
        .prop_map(|(t, fields)| {
            let mut m = serde_json::Map::new();
            m.insert("@type".into(), json!(t));
            m.extend(fields.into_iter().map(|(k, v)| (k.to_string(), v)));
            Value::Object(m)
        });
    prop::collection::vec(element, 0..5).prop_map(|c| json!({ "configs": c }))
}

proptest! {
    #[test]
    fn arbitrary_dumps_read_the_same_streamed(v in arb_dump()) {
        assert_same_value(&v);
    }
}

#[test]
fn the_two_thread_reader_reads_recorded_dumps_and_leaves_odd_ones() {
    // A recorded full dump: read on two threads, the same as on one.
    let path = repo().join("benches/data/seed-sleep.config_dump.json");
    let bytes = std::fs::read(&path).unwrap();
    let two = super::parallel::read(&bytes).expect("a dump with a configs list");
    assert_eq!(two, stream::from_slice(&bytes).unwrap());
    assert!(!two.dump.as_ref().unwrap().clusters.is_empty());
    // No configs list, or not JSON: the one-thread reader's job.
    for odd in [
        r#"{}"#,
        r#"{"configs": {}}"#,
        r#"{"configs": [1, {"@type": "x"}"#,
        "[]",
    ] {
        assert!(super::parallel::read(odd.as_bytes()).is_none(), "{odd}");
    }
}
