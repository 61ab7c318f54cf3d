//! What each fuzz target does with its input, shared by the libFuzzer
//! targets (`fuzz/fuzz_targets/*.rs`, nightly) and the replay test of the
//! main suite (`tests/fuzz_replay.rs`, stable), so that both run exactly the
//! same calls on the committed corpus and regressions.
//!
//! Every function takes raw bytes and must return without panicking. The
//! properties checked beyond "no panic" are asserted here; the time and
//! memory bounds are libFuzzer's (`-timeout`, `-rss_limit_mb`, see
//! fuzz/README.md).
//!
//! Entry points are the plugin's readers of untrusted input. `snapshot` and
//! `tls_check` call one function each of modules that are being restructured
//! (`snapshot`, `analyze`): when they move, only the path changes here.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::str::FromStr;

use kubectl_mesh503::envoy::access_log::{self, LogFormatSpec};
use kubectl_mesh503::envoy::clusters;
use kubectl_mesh503::envoy::config_dump::{self, ConfigDump};
use kubectl_mesh503::envoy::{metrics, stats};
use kubectl_mesh503::istio::authn::{
    Authn, AuthnApi, LegacyPolicy, MtlsMode, PeerAuthentication, ServerQuery, ServicePort,
};
use kubectl_mesh503::istio::destination_rule::{self as dr, DestinationRule};
use kubectl_mesh503::istio::mesh_config::MeshConfig;
use kubectl_mesh503::istio::{sidecar, tls, Meta};
use serde_json::Value;

/// What a target does with one input.
pub type Harness = fn(&[u8]);

/// Every target, by the name of its corpus directory.
pub const TARGETS: &[(&str, Harness)] = &[
    ("config_dump", config_dump),
    ("clusters", clusters),
    ("stats", stats),
    ("access_log", access_log),
    ("snapshot", snapshot),
    ("istio_objects", istio_objects),
    ("target", target),
    ("duration", duration),
    ("tls_check", tls_check),
];

/// The harness function of a target directory name.
pub fn target_fn(name: &str) -> Option<Harness> {
    TARGETS.iter().find(|(n, _)| *n == name).map(|(_, f)| *f)
}

/// Admin and log text arrive as bytes; the plugin reads them as UTF-8 text
/// (lossily where it cannot refuse them), so the harness does the same.
fn text(data: &[u8]) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(data)
}

/// `/config_dump` (full or `?resource=`, v2 or v3) as JSON: the parser, then
/// the typed accessors and Istio's TLS reading of what it found.
pub fn config_dump(data: &[u8]) {
    let streamed = config_dump::stream::from_slice(data);
    let v = match serde_json::from_slice::<Value>(data) {
        Ok(v) => v,
        Err(e) => {
            // Nesting past serde_json's limit inside what the streaming
            // reader skips unread is the one thing only the tree refuses.
            let deep = e.to_string().starts_with("recursion limit exceeded");
            assert!(
                streamed.is_err() || deep,
                "the streaming reader took what is not JSON"
            );
            return;
        }
    };
    // The streaming reader (tls-check --config-dump) gives what the tree
    // parser gives, except on a repeated `@type` (see its module doc).
    let streamed = streamed.expect("the streaming reader refused JSON");
    if !repeats_a_key(data) {
        assert_eq!(streamed.dump, config_dump::parse_config_dump(&v));
    }
    let Ok(dump) = config_dump::parse_config_dump(&v) else {
        assert!(!v.is_object() || !v["configs"].is_array() && !v["configs"].is_null());
        return;
    };
    exercise_dump(&dump);
    let mut merged = dump.clone();
    merged.merge(dump.clone());
    assert!(merged.clusters.len() >= dump.clusters.len());
}

/// Every accessor over every element, except the lookups by name that walk
/// the whole dump (a few of those, not one per element: the analysis looks up
/// a few names, and the harness must stay linear for `fuzz/scale.sh`).
fn exercise_dump(dump: &ConfigDump) {
    for (i, c) in dump.clusters.iter().enumerate() {
        assert!(
            i >= 8 || dump.cluster(&c.name).is_some(),
            "cluster {} not found",
            c.name
        );
        let _ = c.default_thresholds();
        let _ = c.client_tls.is_plaintext();
        let _ = tls::describe_cluster_tls(&c.client_tls);
        let eps: Vec<tls::EndpointView> = dump
            .endpoints
            .get(&c.name)
            .into_iter()
            .flatten()
            .map(|e| tls::EndpointView {
                labelled_istio: e.has_istio_tls_mode(),
                server: None,
            })
            .collect();
        let verdict = tls::cluster_verdict(&c.client_tls, &eps);
        let _ = verdict.reason();
        for labelled in [true, false] {
            let _ = tls::observed_wire(&c.client_tls, labelled);
        }
    }
    for (i, l) in dump.listeners.iter().enumerate() {
        assert!(
            i >= 8 || dump.listener(&l.name).is_some(),
            "listener {} not found",
            l.name
        );
        let _ = l.access_log_formats();
        let _ = tls::is_sidecar_inbound(l);
    }
    for (i, (port, mode)) in tls::inbound_modes(&dump.listeners).into_iter().enumerate() {
        let _ = mode.as_peer_auth_mode();
        if i < 8 {
            let _ = tls::inbound_mode_for(&dump.listeners, port);
        }
    }
    let _ = tls::inbound_catch_all(&dump.listeners);
    for eps in dump.endpoints.values() {
        for e in eps {
            let _ = e.host_port();
        }
    }
    for r in &dump.rejected {
        let _ = r.resource_name();
        let _ = r.previous_version_serves();
    }
    if let Some(b) = &dump.bootstrap {
        let _ = b.proxy_type();
        let inc = b.stats_inclusion();
        for c in dump.clusters.iter().take(8) {
            let _ = inc.includes(&format!("cluster.{}.upstream_rq_pending_overflow", c.name));
        }
    }
}

/// `/clusters`, text or JSON (`?format=json`), and the traffic a proxy shows
/// to each service it names.
pub fn clusters(data: &[u8]) {
    let t = text(data);
    let Ok(cl) = clusters::parse_clusters(&t) else {
        assert!(t.trim_start().starts_with('{'), "only JSON input can fail");
        return;
    };
    // (Each `traffic_to` walks every cluster: a few calls, not one per cluster.)
    let mut traffic_calls = 0;
    for (name, c) in &cl.clusters {
        assert_eq!(name, &c.name);
        let _ = c.ejected_hosts();
        let _ = c.healthy_hosts();
        let _ = c.total("rq_total");
        let _ = c.limit("max_pending_requests");
        for h in &c.hosts {
            let _ = h.is_healthy();
            let _ = h.is_ejected();
        }
        let kind = config_dump::ClusterKind::parse(name);
        if let (config_dump::ClusterKind::Outbound { host, port, .. }, true) =
            (kind, traffic_calls < 8)
        {
            traffic_calls += 1;
            let labels: Vec<&str> = host.split('.').collect();
            if let [svc, ns, rest @ ..] = labels.as_slice() {
                let t = cl.traffic_to(svc, ns, Some(port));
                // A service host (`NAME.NS.svc[.DOMAIN]`) counts for its service.
                let service_host = rest.first() == Some(&"svc");
                assert!(t.clusters.contains(name) || !service_host, "{name}");
                let _ = clusters::traffic_to(&t_text(&t), svc, ns, None);
            }
        }
    }
}

fn t_text(t: &clusters::ServiceTraffic) -> String {
    t.clusters
        .iter()
        .map(|c| format!("{c}::default_priority::max_connections::1\n"))
        .collect()
}

/// `/stats` (and `/stats/prometheus`) text: the counters, Istio's standard
/// metrics, and the stats inclusion list (the first line is used as an
/// inclusion regex, as `sidecar.istio.io/statsInclusionRegexps` would be).
pub fn stats(data: &[u8]) {
    let t = text(data);
    let s = stats::parse_stats(&t);
    for (name, _) in s.values.iter().take(64) {
        let _ = s.get(name);
        let _ = s.present(name);
        let mut half = name.len() / 2;
        while !name.is_char_boundary(half) {
            half -= 1;
        }
        let (prefix, suffix) = name.split_at(half);
        let _ = s.sum_matching(prefix, suffix);
        let _ = s.with_prefix(prefix).count();
    }
    let regex = t.lines().next().unwrap_or("").to_string();
    let inc = stats::StatsInclusion::istio_default().with_extra(&[], &[], &[regex]);
    for name in s.values.keys().take(16) {
        let _ = inc.includes(name);
    }
    let m = metrics::parse_istio_metrics(&t);
    let lines = t.lines().count();
    for (n, _) in &m.unreadable {
        assert!(*n >= 1 && *n <= lines);
    }
    for metric in [
        metrics::IstioMetric::RequestsTotal,
        metrics::IstioMetric::TcpConnectionsOpened,
        metrics::IstioMetric::TcpConnectionsClosed,
    ] {
        let _ = m.of(metric).count();
        let _ = m.sum(|r| r.metric == metric && r.has_flag("UF"));
    }
}

/// The separator between the listener (or config dump) and the log text in an
/// `access_log` input.
pub const LOG_SEPARATOR: u8 = 0;

/// An istio-proxy log tail. Input: `LISTENER_JSON \0 LOG` (the formats are
/// those of the parsed listener, or of every listener of a config dump), or
/// just `LOG` (Istio's built-in formats only).
pub fn access_log(data: &[u8]) {
    let (formats, log) = match data.iter().position(|b| *b == LOG_SEPARATOR) {
        Some(i) => (formats_of(&data[..i]), &data[i + 1..]),
        None => (Vec::new(), data),
    };
    let log = text(log);
    let nonblank = log.lines().filter(|l| !l.trim().is_empty()).count();
    let (entries, skipped) = access_log::parse_log(&log);
    assert_eq!(entries.len() + skipped, nonblank);
    let (entries, skipped) = access_log::parse_log_with(&log, &formats);
    assert_eq!(entries.len() + skipped, nonblank);
    for e in &entries {
        let _ = access_log::tls_failure_reason(e);
        let _ = access_log::is_received(e);
        let _ = access_log::downstream_ip(e);
        let _ = (
            e.is_tcp(),
            e.is_inbound(),
            e.details_kind(),
            e.reset_reason(),
        );
    }
    let callers = access_log::callers_in_log(&log, &formats, &["10.0.0.1".to_string()]);
    let total: u64 = callers.iter().map(|c| c.requests).sum();
    assert!(total <= entries.len() as u64);
    let _ = access_log::merge_callers([callers.clone(), callers]);
}

fn formats_of(json: &[u8]) -> Vec<LogFormatSpec> {
    let Ok(v) = serde_json::from_slice::<Value>(json) else {
        return Vec::new();
    };
    if let Ok(l) = config_dump::parse_listener(&v, "fuzz") {
        return l.access_log_formats();
    }
    if let Some(s) = v.as_str() {
        // A mesh `accessLogFormat`: JSON or a text template.
        return vec![access_log::json_format_from_str(s)
            .unwrap_or_else(|| LogFormatSpec::Text(s.to_string()))];
    }
    match config_dump::parse_config_dump(&v) {
        Ok(d) => d
            .listeners
            .iter()
            .flat_map(|l| l.access_log_formats())
            .collect(),
        Err(_) => access_log::json_format_from_value(&v).into_iter().collect(),
    }
}

/// A saved snapshot (`diagnose --snapshot FILE`), then the whole analysis.
/// Kept to one call each: `snapshot` and `analyze` are being restructured.
pub fn snapshot(data: &[u8]) {
    let Ok(t) = std::str::from_utf8(data) else {
        return; // Snapshot::load reads UTF-8 text and refuses anything else
    };
    let Ok(snap) = kubectl_mesh503::snapshot::Snapshot::from_json(t, "fuzz") else {
        return;
    };
    let _ = kubectl_mesh503::analyze::analyze(&snap);
}

/// Kubernetes/Istio objects as the API server returns them (one object or a
/// list): every typed reader on every object, then Istio's decisions over the
/// ones that parsed. Input that is not JSON is read as the mesh config's YAML.
pub fn istio_objects(data: &[u8]) {
    let Ok(v) = serde_json::from_slice::<Value>(data) else {
        if let Ok(cfg) = MeshConfig::from_yaml(&text(data)) {
            exercise_mesh(&cfg);
        }
        return;
    };
    let objects = match v {
        Value::Array(a) => a,
        other => vec![other],
    };
    let mut drs = Vec::new();
    let mut pas = Vec::new();
    let mut legacy = Vec::new();
    let mut mesh = MeshConfig::default();
    for o in &objects {
        if let Ok(m) = Meta::from_value(o) {
            let _ = (m.id(), m.key(), m.group(), m.object_ref());
            let _ = m.age_order(&m);
        }
        if let Ok(r) = DestinationRule::from_value_with_domain(o, "cluster.local") {
            let _ = (r.object_ref(), r.key(), r.top_level_tls_mode());
            drs.push(r);
        }
        if let Ok(r) = DestinationRule::from_value_with_domain(o, "corp.example") {
            drs.push(r);
        }
        if let Ok(p) = PeerAuthentication::from_value(o) {
            pas.push(p);
        }
        if let Ok(p) = LegacyPolicy::from_value(o) {
            legacy.push(p);
        }
        if let Ok(m) = MeshConfig::from_configmap(o) {
            exercise_mesh(&m);
            mesh = m;
        }
        let _ = sidecar::has_sidecar(o);
        let _ = sidecar::sidecar_version(o);
    }
    exercise_rules(&drs, &mesh);
    exercise_authn(&pas, &legacy, &drs, &mesh);
}

fn exercise_mesh(m: &MeshConfig) {
    let _ = (m.auto_mtls(None), m.root_namespace(), m.outbound_mode());
    let _ = (m.access_log_enabled(), m.access_log_encoding());
}

/// The DestinationRule lookup for a client in each rule's namespace calling
/// each rule's host, and the effective policy on each port the rules name.
fn exercise_rules(drs: &[DestinationRule], mesh: &MeshConfig) {
    let labels = BTreeMap::new();
    for r in drs.iter().take(8) {
        let fqdn = r.host_fqdn.clone();
        let svc_ns = fqdn.split('.').nth(1).unwrap_or("").to_string();
        for client_ns in [r.meta.namespace.as_str(), "default"] {
            let lk = dr::lookup(
                drs,
                client_ns,
                &labels,
                &fqdn,
                &svc_ns,
                mesh.root_namespace(),
            );
            let _ = lk.why_none.as_deref();
            let Some(sel) = lk.selection else { continue };
            let mut ports: Vec<u32> = vec![80];
            if let Some(tp) = &r.traffic_policy {
                ports.extend(tp.port_level_settings.iter().filter_map(|p| p.port));
            }
            let subsets: Vec<Option<&str>> = std::iter::once(None)
                .chain(r.subsets.iter().map(|s| Some(s.name.as_str())))
                .chain(std::iter::once(Some("no-such-subset")))
                .collect();
            for port in ports.iter().take(4) {
                for subset in subsets.iter().take(4) {
                    let eff = dr::effective_policy(&sel, *port, *subset);
                    let _ = eff.describe_tls(&sel);
                    for mode in [MtlsMode::Strict, MtlsMode::Permissive, MtlsMode::Disable] {
                        let d = tls::decide_for(&tls::ClientTlsInput {
                            rule_tls: eff.tls.as_ref(),
                            auto_mtls: mesh.auto_mtls(None),
                            service_mode: mode,
                            endpoints: tls::EndpointLabels::Mixed,
                            service: tls::ServiceKind::Mesh,
                        });
                        let _ = (d.wire_for(true), d.wire_for(false), d.sends_istio_mtls());
                    }
                }
            }
            let _ = sel.explain();
        }
    }
}

/// Every authentication era over the parsed policies, for the namespaces and
/// labels they name.
fn exercise_authn(
    pas: &[PeerAuthentication],
    legacy: &[LegacyPolicy],
    drs: &[DestinationRule],
    mesh: &MeshConfig,
) {
    let mut namespaces: Vec<&str> = pas.iter().map(|p| p.meta.namespace.as_str()).collect();
    namespaces.extend(legacy.iter().map(|p| p.meta.namespace.as_str()));
    namespaces.extend(drs.iter().map(|r| r.meta.namespace.as_str()));
    namespaces.sort_unstable();
    namespaces.dedup();
    let labels: Vec<BTreeMap<String, String>> = std::iter::once(BTreeMap::new())
        .chain(pas.iter().filter_map(|p| p.selector.clone()))
        .take(3)
        .collect();
    for api in [
        AuthnApi::PeerAuthentication,
        AuthnApi::Transitional,
        AuthnApi::Legacy,
    ] {
        let authn = Authn::new(
            api,
            mesh.root_namespace(),
            "cluster.local",
            pas.to_vec(),
            legacy.to_vec(),
        );
        for ns in namespaces.iter().take(4) {
            let _ = authn.namespace_mode(ns).explain();
            let svc = ServicePort {
                name: "httpbin",
                number: 8000,
                port_name: Some("http"),
            };
            let _ = authn.service_mode(ns, svc);
            for l in &labels {
                for port in [None, Some(8080)] {
                    let q = ServerQuery {
                        namespace: ns,
                        labels: l,
                        container_port: port,
                        service: Some(svc),
                    };
                    let _ = authn.server_mode(&q).explain();
                }
            }
        }
    }
}

/// `diagnose TARGET` and `--from CLIENT`: the parsers, and a printed target
/// parses back to itself.
pub fn target(data: &[u8]) {
    let Ok(s) = std::str::from_utf8(data) else {
        return; // command-line arguments reach the parsers as UTF-8 strings
    };
    if let Ok(t) = kubectl_mesh503::target::Target::from_str(s) {
        let printed = t.to_string();
        let again = kubectl_mesh503::target::Target::from_str(&printed)
            .unwrap_or_else(|e| panic!("{s:?} printed as {printed:?}, which fails: {e}"));
        assert_eq!(again, t, "{s:?} printed as {printed:?}");
        let _ = t.service_host("default");
    }
    if let Ok(c) = kubectl_mesh503::target::ClientRef::from_str(s) {
        let _ = (c.name(), c.namespace(), c.namespace_or("default"));
    }
}

/// `--request-timeout` / `--proxy-timeout` values.
pub fn duration(data: &[u8]) {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let _ = kubectl_mesh503::cli::duration::parse(s);
}

/// `tls-check --config-dump FILE…` (offline): one dump, or a JSON list of
/// dumps (one per pod), each read by the streaming reader as tls-check
/// reads a file. One call: `analyze` is being restructured.
pub fn tls_check(data: &[u8]) {
    let Ok(v) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let files: Vec<Vec<u8>> = match &v {
        Value::Array(a) => a.iter().map(|d| serde_json::to_vec(d).unwrap()).collect(),
        _ => vec![data.to_vec()],
    };
    let dumps: Vec<(String, ConfigDump)> = files
        .iter()
        .enumerate()
        .filter_map(|(i, bytes)| {
            let dump = config_dump::stream::from_slice(bytes).ok()?.dump.ok()?;
            Some((format!("dump-{i}.json"), dump))
        })
        .collect();
    let _ = kubectl_mesh503::analyze::tls_check::from_config_dumps(dumps);
}

/// Whether some object of the JSON `data` has a key twice (there the tree
/// parser keeps the last value and the streaming reader may not).
fn repeats_a_key(data: &[u8]) -> bool {
    use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
    struct Repeats<'a>(&'a mut bool);
    impl<'de> DeserializeSeed<'de> for Repeats<'_> {
        type Value = ();
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
            d.deserialize_any(self)
        }
    }
    impl<'de> Visitor<'de> for Repeats<'_> {
        type Value = ();
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("JSON")
        }
        fn visit_bool<E>(self, _: bool) -> Result<(), E> {
            Ok(())
        }
        fn visit_i64<E>(self, _: i64) -> Result<(), E> {
            Ok(())
        }
        fn visit_u64<E>(self, _: u64) -> Result<(), E> {
            Ok(())
        }
        fn visit_f64<E>(self, _: f64) -> Result<(), E> {
            Ok(())
        }
        fn visit_str<E>(self, _: &str) -> Result<(), E> {
            Ok(())
        }
        fn visit_unit<E>(self) -> Result<(), E> {
            Ok(())
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
            while seq.next_element_seed(Repeats(&mut *self.0))?.is_some() {}
            Ok(())
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
            let mut keys = std::collections::HashSet::new();
            while let Some(k) = map.next_key::<String>()? {
                if !keys.insert(k) {
                    *self.0 = true;
                }
                map.next_value_seed(Repeats(&mut *self.0))?;
            }
            Ok(())
        }
    }
    let mut found = false;
    let mut de = serde_json::Deserializer::from_slice(data);
    let _ = Repeats(&mut found).deserialize(&mut de);
    found
}
