//! Redaction that cannot miss: secrets planted in every place a cluster can
//! hold them (object env and args, annotations, the mesh config, pod
//! templates, Secrets and ProxyConfigs, `/server_info` node metadata,
//! config dumps, access-log paths, pilot-agent's config dump in the log,
//! stats text, gap texts) and none of them survives in the saved file; and
//! redacting the shipped recordings does not change their diagnosis.

use kubectl_mesh503::analyze::analyze;
use kubectl_mesh503::snapshot::file::SavePath;
use kubectl_mesh503::snapshot::{Gap, ProxyEvidence, ProxyRole, Snapshot};
use serde_json::json;
use std::path::PathBuf;

/// Every planted secret has this marker, so one search finds any survivor.
const S: &str = "PLANTED";

fn secret(n: u32) -> String {
    format!("{S}{n}x9q")
}

fn planted_snapshot() -> Snapshot {
    let pod = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "app-1", "namespace": "foo",
            "labels": {"app": "app"},
            "annotations": {
                "kubectl.kubernetes.io/last-applied-configuration": format!("{{\"env\":\"{}\"}}", secret(1)),
                "example.com/api-token": secret(2),
                "vault.hashicorp.com/agent-inject-secret-db": secret(3),
                "sidecar.istio.io/statsInclusionPrefixes": "cluster.outbound",
                "proxy.istio.io/config": format!("proxyMetadata:\n  DB_PASS: {}\nholdApplicationUntilProxyStarts: true\n", secret(4)),
            }},
        "spec": {
            "containers": [
                {"name": "app", "image": "app:1",
                 "args": ["--db-password", secret(5), format!("--token={}", secret(6))],
                 "command": ["/bin/app", secret(7)],
                 "env": [{"name": "API_KEY", "value": secret(8)},
                         {"name": "PLAIN", "value": secret(9)},
                         {"name": "FROM_SECRET", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}],
                 "livenessProbe": {"exec": {"command": ["check", secret(10)]}}},
                {"name": "istio-proxy", "image": "docker.io/istio/proxyv2:1.24.0",
                 "args": ["proxy", "sidecar", "--domain", "$(POD_NAMESPACE).svc.cluster.local", format!("--authToken={}", secret(11))],
                 "env": [{"name": "ISTIO_META_DB", "value": secret(12)}]}
            ],
            "initContainers": [{"name": "init", "image": "i", "args": [secret(13)], "env": [{"name": "X", "value": secret(14)}]}]
        },
        "status": {"phase": "Running", "podIP": "10.0.0.4"}
    });
    let deploy = json!({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "app", "namespace": "foo"},
        "spec": {"template": {
            "metadata": {"annotations": {"example.com/password": secret(15)}},
            "spec": {"containers": [{"name": "app", "env": [{"name": "E", "value": secret(16)}], "args": [secret(17)]}]}}}
    });
    let mesh = json!({
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "istio", "namespace": "istio-system"},
        "data": {
            "mesh": format!("enableAutoMtls: true\ndefaultConfig:\n  proxyMetadata:\n    CLOUD_KEY: {}\n  discoveryAddress: istiod.istio-system.svc:15012\n# {}\n", secret(18), secret(19)),
            "other": secret(20)
        }
    });
    let secret_obj = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "namespace": "foo"},
        "data": {"k": secret(21)}, "stringData": {"k": secret(22)}});
    let proxy_config = json!({"apiVersion": "networking.istio.io/v1beta1", "kind": "ProxyConfig",
        "metadata": {"name": "pc", "namespace": "foo"}, "spec": {"environmentVariables": {"K": secret(23)}}});
    let envoy_filter = json!({"apiVersion": "networking.istio.io/v1alpha3", "kind": "EnvoyFilter",
        "metadata": {"name": "lua", "namespace": "foo"},
        "spec": {"configPatches": [{"patch": {"value": {"inline_code": format!("local token = \"{}\"\nlocal k = \"-----BEGIN PRIVATE KEY-----\\nMII{}\\n-----END PRIVATE KEY-----\"", secret(24), secret(25)),
            "request_headers_to_add": [{"header": {"key": "authorization", "value": format!("Bearer {}", secret(26))}}]}}}]}});
    let server_info = json!({
        "command_line_options": {"service_node": "sidecar~10.0.0.4~app-1.foo~foo.svc.cluster.local"},
        "node": {"id": "sidecar~10.0.0.4~app-1.foo~foo.svc.cluster.local", "metadata": {
            "ISTIO_VERSION": "1.24.0",
            "NAMESPACE": "foo",
            "LABELS": {"app": "app"},
            "ANNOTATIONS": {"kubectl.kubernetes.io/last-applied-configuration": secret(27), "sidecar.istio.io/inject": "true"},
            "PROXY_CONFIG": {"proxyMetadata": {"DB": secret(28)}, "concurrency": 2},
            "DB_URL": format!("postgres://user:{}@db:5432/x", secret(29)),
            "CUSTOM_FLAG": secret(30),
        }}
    });
    let dump = json!({"configs": [{"@type": "type.googleapis.com/envoy.admin.v3.ClustersConfigDump.DynamicCluster",
        "cluster": {"name": "outbound|80||ext.foo.svc.cluster.local",
            "transport_socket": {"typed_config": {"common_tls_context": {"tls_certificates": [{"private_key": {"inline_string": format!("-----BEGIN RSA PRIVATE KEY-----\nMII{}\n-----END RSA PRIVATE KEY-----", secret(31))}}]}}},
            "metadata": {"filter_metadata": {"x": {"api_key": secret(32)}}}}}]});
    let log = format!(
        concat!(
            "[2024-05-01T10:00:01.000Z] \"GET /reset?token={} HTTP/1.1\" 200 - via_upstream - \"-\" 0 30 2 1 \"-\" \"curl\" \"id\" \"app.foo:80\" \"10.0.0.4:80\" inbound|80|| 127.0.0.6:1 10.0.0.4:80 10.0.0.9:50000 - default\n",
            "{{\"path\":\"/x?sig={}\",\"response_code\":200,\"authority\":\"app.foo:80\"}}\n",
            "2024-05-01T10:00:00.000Z info Effective config: binaryPath: /usr/local/bin/envoy\n",
            "proxyMetadata:\n  DB_URL: {}\n",
            "2024-05-01T10:00:00.000Z info jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ{}In0.c2ln\n",
            "2024-05-01T10:00:00.000Z info creds AKIAABCDEFGHIJKLMNOP password={}\n",
        ),
        secret(33),
        secret(34),
        secret(35),
        secret(36),
        secret(37),
    );
    Snapshot {
        schema: kubectl_mesh503::snapshot::SCHEMA.into(),
        tool_version: "t".into(),
        taken_at: "t".into(),
        target: "svc/app".into(),
        namespace: "foo".into(),
        istio_namespace: "istio-system".into(),
        objects: vec![pod, deploy, mesh, secret_obj, proxy_config, envoy_filter],
        proxies: vec![ProxyEvidence {
            namespace: "foo".into(),
            pod: "app-1".into(),
            role: ProxyRole::Server,
            chosen_because: "test".into(),
            server_info: Some(server_info),
            clusters_config: Some(dump.clone()),
            listeners_config: None,
            endpoints_config: Some(dump),
            clusters: Some(format!("outbound|80||x::https://u:{}@h::1\n", secret(38))),
            stats: Some(format!(
                "cluster.x.upstream_cx_overflow: 1\nx.ghp_{}abcdefghijklmnopqrstuvwxyz: 1\n",
                secret(39)
            )),
            log_tail: Some(log),
            gaps: vec![Gap {
                source: "pod foo/app-1".into(),
                reason: format!("GET https://a:{}@api failed", secret(40)),
            }],
            metrics: Some(format!(
                "istio_requests_total{{request_host=\"Bearer {}\"}} 1\n",
                secret(41)
            )),
            scope: None,
        }],
        gaps: vec![Gap {
            source: "x".into(),
            reason: format!("token={}", secret(42)),
        }],
        ..Snapshot::default()
    }
}

#[test]
fn no_planted_secret_survives_in_the_saved_file() {
    let mut snap = planted_snapshot();
    let before = serde_json::to_string(&snap).unwrap();
    for n in 1..=42 {
        assert!(before.contains(&secret(n)), "secret {n} is planted");
    }
    snap.redact();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("snap.json");
    snap.save(&SavePath::check(&path).unwrap()).unwrap();
    let saved = std::fs::read_to_string(&path).unwrap();
    let survivors: Vec<u32> = (1..=42).filter(|n| saved.contains(&secret(*n))).collect();
    assert!(
        survivors.is_empty(),
        "secrets {survivors:?} survive:\n{saved}"
    );
    assert!(!saved.contains(S), "no trace of a planted value");
    // What the analysis needs stays.
    for keep in [
        "\"sidecar.istio.io/statsInclusionPrefixes\": \"cluster.outbound\"",
        "holdApplicationUntilProxyStarts: true",
        "enableAutoMtls: true",
        "\"ISTIO_VERSION\": \"1.24.0\"",
        "--domain",
        "API_KEY",
        "secretKeyRef",
        "cluster.x.upstream_cx_overflow: 1",
        "GET /reset?",
        "outbound|80||ext.foo.svc.cluster.local",
    ] {
        assert!(saved.contains(keep), "{keep:?} kept:\n{saved}");
    }
    let log = snap.proxies[0].log_tail.as_deref().unwrap();
    assert!(log.contains("\"authority\":\"app.foo:80\""), "{log}");
    // Access-log lines still parse as they did: same entries, same fields.
    use kubectl_mesh503::envoy::access_log::parse_log;
    let original = planted_snapshot().proxies[0].log_tail.clone().unwrap();
    let (a, _) = parse_log(&original);
    let (b, _) = parse_log(log);
    assert_eq!(a.len(), b.len(), "{log}");
    assert!(!b.is_empty());
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(
            (x.response_code, &x.authority, &x.downstream_remote_address),
            (y.response_code, &y.authority, &y.downstream_remote_address)
        );
    }
    // Redaction is idempotent.
    let mut again: Snapshot = serde_json::from_str(&saved).unwrap();
    again.redact();
    assert_eq!(again, snap);
}

fn shipped() -> Vec<PathBuf> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut out = Vec::new();
    for dir in ["docs/examples", "tests/recordings"] {
        for e in std::fs::read_dir(root.join(dir)).unwrap() {
            let p = e.unwrap().path();
            if p.to_string_lossy().ends_with(".snapshot.json") {
                out.push(p);
            }
        }
    }
    out.sort();
    assert!(out.len() >= 6, "{out:?}");
    out
}

#[test]
fn redaction_does_not_change_a_diagnosis() {
    for p in shipped() {
        let snap = Snapshot::load(&p).unwrap();
        let mut redacted = snap.clone();
        redacted.redact();
        assert_eq!(
            serde_json::to_value(analyze(&snap)).unwrap(),
            serde_json::to_value(analyze(&redacted)).unwrap(),
            "{}",
            p.display()
        );
    }
}

#[test]
fn every_shipped_v1_recording_loads_as_v2_and_diagnoses_as_before() {
    for p in shipped() {
        let text = std::fs::read_to_string(&p).unwrap();
        let raw: Snapshot = serde_json::from_str(&text).unwrap();
        assert_eq!(raw.schema, "mesh503.io/snapshot/v1", "{}", p.display());
        let loaded = Snapshot::load(&p).unwrap();
        assert_eq!(loaded.schema, kubectl_mesh503::snapshot::SCHEMA);
        let keys: std::collections::BTreeSet<_> = loaded
            .objects
            .iter()
            .map(kubectl_mesh503::snapshot::object_key)
            .collect();
        assert_eq!(
            keys.len(),
            loaded.objects.len(),
            "one copy per object: {}",
            p.display()
        );
        assert!(loaded.objects.len() <= raw.objects.len());
        assert_eq!(
            serde_json::to_value(analyze(&raw)).unwrap(),
            serde_json::to_value(analyze(&loaded)).unwrap(),
            "same diagnosis: {}",
            p.display()
        );
    }
}
