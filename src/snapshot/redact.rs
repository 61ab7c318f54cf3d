//! One redaction policy for everything a snapshot holds, applied to the
//! whole snapshot before it is analysed or saved (a saved snapshot is meant
//! for bug reports).
//!
//! The policy, by place:
//!
//! | where | kept | redacted |
//! |---|---|---|
//! | object annotations (objects, pod templates, `server_info` `node.metadata.ANNOTATIONS`) | Istio's and Kubernetes' operational keys ([`ANNOTATION_ALLOW`]) | every other value (`last-applied-configuration`, user annotations) |
//! | `proxy.istio.io/config`, mesh `defaultConfig`, `server_info` `PROXY_CONFIG` | the config | `proxyMetadata` values (they become the proxy's environment) |
//! | containers (`containers`, `initContainers`, `ephemeralContainers`) | names, images, ports, `valueFrom`/`envFrom` references; Istio's own containers' args | every `env[].value`; other containers' `args` and `command`; probe and hook `exec` commands |
//! | ConfigMaps | `mesh` and `meshNetworks` of Istio's, with the above | every other data value |
//! | Secrets (never collected; defence in depth) | names | `data`, `stringData` |
//! | Istio `ProxyConfig` | | `spec.environmentVariables` values |
//! | `server_info` `node.metadata` | Istio's own keys ([`NODE_METADATA_ALLOW`]), labels | any other key's value (`ISTIO_META_*` environment passed through) |
//! | logs | the lines | query strings of request paths, `proxyMetadata` blocks |
//! | everywhere (every JSON string, every text) | | values under a key that names a secret (`password`, `token`, `secret`, `apiKey`, `authorization`, …), `{name: <such a key>, value: …}` pairs, and anything shaped like a credential: PEM private keys (also base64), JWTs, `Bearer`/`Basic` values, `user:password@` in URLs, well-known token formats |
//!
//! Names stay (a secret's name is not the secret): the analysis and the
//! reader still see which env var, annotation or key existed.

use std::sync::LazyLock;

use regex::Regex;
use serde_json::{Map, Value};

use super::Snapshot;
use crate::istio::sidecar::SIDECAR_CONTAINER;

/// What replaces a redacted value.
/// No spaces: it can stand inside an access-log field without changing how
/// the line splits.
pub const REDACTED: &str = "<redacted-by-kubectl-mesh503>";

/// Annotation keys (prefixes, or exact keys) whose values are kept.
pub const ANNOTATION_ALLOW: &[&str] = &[
    "sidecar.istio.io/",
    "traffic.sidecar.istio.io/",
    "status.sidecar.istio.io/",
    "readiness.status.sidecar.istio.io/",
    "proxy.istio.io/",
    "networking.istio.io/",
    "security.istio.io/",
    "inject.istio.io/",
    "ambient.istio.io/",
    "topology.istio.io/",
    "istio.io/",
    "prometheus.io/",
    "kubectl.kubernetes.io/default-container",
    "kubectl.kubernetes.io/default-logs-container",
    "kubectl.kubernetes.io/restartedAt",
    "deployment.kubernetes.io/",
    "endpoints.kubernetes.io/",
    "service.kubernetes.io/",
];

/// `node.metadata` keys Istio's agent sets itself (istio/istio
/// `pkg/model/context.go` `NodeMetadata`, `BootstrapNodeMetadata`); any other
/// upper-case key came from an `ISTIO_META_*` environment variable and is
/// redacted. Lower-case keys are pod labels (Istio ≤ 1.1 put them there).
pub const NODE_METADATA_ALLOW: &[&str] = &[
    "ANNOTATIONS",
    "APP_CONTAINERS",
    "AUTO_REGISTER_GROUP",
    "CLUSTER_ID",
    "CONFIG_NAMESPACE",
    "DNS_AUTO_ALLOCATE",
    "DNS_CAPTURE",
    "ENABLE_HBONE",
    "ENVOY_PROMETHEUS_PORT",
    "ENVOY_STATUS_PORT",
    "EXCHANGE_KEYS",
    "GENERATOR",
    "HTTP10",
    "INCLUDE_INBOUND_PORTS",
    "INSTANCE_IPS",
    "INTERCEPTION_MODE",
    "ISTIO_PROXY_SHA",
    "ISTIO_PROXY_VERSION",
    "ISTIO_VERSION",
    "LABELS",
    "MESH_ID",
    "NAME",
    "NAMESPACE",
    "NETWORK",
    "NODE_NAME",
    "OUTLIER_LOG_PATH",
    "OWNER",
    "PILOT_SAN",
    "PLATFORM_METADATA",
    "POD_NAME",
    "POD_PORTS",
    "PROXY_CONFIG",
    "PROXY_VIRTUAL_SERVICES",
    "REQUESTED_NETWORK_VIEW",
    "SERVICE_ACCOUNT",
    "STS_PORT",
    "UNPRIVILEGED_POD",
    "WORKLOAD_NAME",
];

/// Containers injected by Istio, whose arguments are Istio's own.
const ISTIO_CONTAINERS: &[&str] = &[SIDECAR_CONTAINER, "istio-init", "istio-validation"];

/// Redacts a whole snapshot in place (idempotent).
pub fn redact_snapshot(s: &mut Snapshot) {
    for o in &mut s.objects {
        redact_object(o);
    }
    for p in &mut s.proxies {
        if let Some(si) = &mut p.server_info {
            redact_server_info(si);
        }
        for dump in [
            &mut p.clusters_config,
            &mut p.listeners_config,
            &mut p.endpoints_config,
        ]
        .into_iter()
        .flatten()
        {
            scrub_json(dump);
        }
        for text in [&mut p.clusters, &mut p.stats, &mut p.metrics]
            .into_iter()
            .flatten()
        {
            *text = scrub_text(text, false);
        }
        if let Some(log) = &mut p.log_tail {
            *log = redact_log(log);
        }
        for g in &mut p.gaps {
            g.reason = scrub_text(&g.reason, true);
        }
    }
    for g in &mut s.gaps {
        g.reason = scrub_text(&g.reason, true);
    }
    if let Some(v) = &mut s.server_version {
        scrub_json(v);
    }
}

fn redacted() -> Value {
    Value::String(REDACTED.to_string())
}

/// One Kubernetes object.
pub fn redact_object(o: &mut Value) {
    let kind = o
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let name = o
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    if let Some(a) = o.pointer_mut("/metadata/annotations") {
        redact_annotations(a);
    }
    match kind.as_str() {
        "Pod" => {
            if let Some(spec) = o.get_mut("spec") {
                redact_pod_spec(spec);
            }
        }
        "ConfigMap" => redact_configmap(o, &name),
        "Secret" => {
            for k in ["data", "stringData"] {
                if let Some(d) = o.get_mut(k).and_then(Value::as_object_mut) {
                    d.values_mut().for_each(|v| *v = redacted());
                }
            }
        }
        "ProxyConfig" => {
            if let Some(env) = o
                .pointer_mut("/spec/environmentVariables")
                .and_then(Value::as_object_mut)
            {
                env.values_mut().for_each(|v| *v = redacted());
            }
        }
        _ => {}
    }
    // A workload's pod template (Deployment, ReplicaSet, Job, …; CronJob).
    for tpl in ["/spec/template", "/spec/jobTemplate/spec/template"] {
        if let Some(t) = o.pointer_mut(tpl) {
            if let Some(a) = t.pointer_mut("/metadata/annotations") {
                redact_annotations(a);
            }
            if let Some(spec) = t.get_mut("spec") {
                redact_pod_spec(spec);
            }
        }
    }
    scrub_json(o);
}

fn annotation_allowed(key: &str) -> bool {
    ANNOTATION_ALLOW.iter().any(|a| {
        if a.ends_with('/') {
            key.starts_with(a)
        } else {
            key == *a
        }
    })
}

/// An annotation map: values outside [`ANNOTATION_ALLOW`] redacted,
/// `proxy.istio.io/config` without `proxyMetadata` values.
pub fn redact_annotations(a: &mut Value) {
    let Some(map) = a.as_object_mut() else { return };
    for (k, v) in map.iter_mut() {
        if !annotation_allowed(k) {
            *v = redacted();
        } else if k == "proxy.istio.io/config" {
            if let Some(text) = v.as_str() {
                *v = Value::String(redact_yaml(text, &["proxyMetadata"]));
            }
        }
    }
}

/// Parses YAML, redacts the values of the maps at `paths` (each a
/// `/`-separated path), scrubs it, and writes it back; unparseable YAML is
/// redacted whole (it cannot be checked).
fn redact_yaml(text: &str, paths: &[&str]) -> String {
    let Ok(mut v) = serde_yaml::from_str::<Value>(text) else {
        return REDACTED.to_string();
    };
    for p in paths {
        let pointer = format!("/{p}");
        if let Some(m) = v.pointer_mut(&pointer).and_then(Value::as_object_mut) {
            m.values_mut().for_each(|x| *x = redacted());
        }
    }
    scrub_json(&mut v);
    serde_yaml::to_string(&v).unwrap_or_else(|_| REDACTED.to_string())
}

fn redact_configmap(o: &mut Value, name: &str) {
    let istio = name == "istio" || name.starts_with("istio-");
    if let Some(data) = o.get_mut("data").and_then(Value::as_object_mut) {
        for (k, v) in data.iter_mut() {
            match (istio, k.as_str(), v.as_str()) {
                (true, "mesh", Some(t)) => {
                    *v = Value::String(redact_yaml(t, &["defaultConfig/proxyMetadata"]))
                }
                (true, "meshNetworks", Some(t)) => *v = Value::String(redact_yaml(t, &[])),
                _ => *v = redacted(),
            }
        }
    }
    if let Some(b) = o.get_mut("binaryData").and_then(Value::as_object_mut) {
        b.values_mut().for_each(|v| *v = redacted());
    }
}

/// A pod spec (of a Pod or a template).
fn redact_pod_spec(spec: &mut Value) {
    for list in ["containers", "initContainers", "ephemeralContainers"] {
        let Some(cs) = spec.get_mut(list).and_then(Value::as_array_mut) else {
            continue;
        };
        for c in cs {
            redact_container(c);
        }
    }
}

fn redact_container(c: &mut Value) {
    let istio = c
        .get("name")
        .and_then(Value::as_str)
        .is_some_and(|n| ISTIO_CONTAINERS.contains(&n));
    if let Some(env) = c.get_mut("env").and_then(Value::as_array_mut) {
        for e in env {
            if let Some(v) = e.get_mut("value") {
                *v = redacted();
            }
        }
    }
    for key in ["args", "command"] {
        let Some(items) = c.get_mut(key).and_then(Value::as_array_mut) else {
            continue;
        };
        for item in items {
            if istio {
                if let Some(s) = item.as_str() {
                    *item = Value::String(scrub_arg(s));
                }
            } else {
                *item = redacted();
            }
        }
    }
    // Probe and lifecycle `exec` commands run inside the app.
    for p in [
        "/livenessProbe/exec/command",
        "/readinessProbe/exec/command",
        "/startupProbe/exec/command",
        "/lifecycle/postStart/exec/command",
        "/lifecycle/preStop/exec/command",
    ] {
        if let Some(cmd) = c.pointer_mut(p).and_then(Value::as_array_mut) {
            cmd.iter_mut().for_each(|x| *x = redacted());
        }
    }
}

/// `--flag=value` with a secret-like flag loses its value; the rest is scrubbed.
fn scrub_arg(arg: &str) -> String {
    if let Some((flag, _)) = arg.split_once('=') {
        if flag.starts_with('-') && is_secret_key(flag) {
            return format!("{flag}={REDACTED}");
        }
    }
    scrub_text(arg, true)
}

/// `/server_info`: node metadata by [`NODE_METADATA_ALLOW`], then scrubbed.
pub fn redact_server_info(si: &mut Value) {
    if let Some(md) = si
        .pointer_mut("/node/metadata")
        .and_then(Value::as_object_mut)
    {
        redact_node_metadata(md);
    }
    scrub_json(si);
}

fn redact_node_metadata(md: &mut Map<String, Value>) {
    for (k, v) in md.iter_mut() {
        let upper = k
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
        match k.as_str() {
            "ANNOTATIONS" => redact_annotations(v),
            "PROXY_CONFIG" => {
                if let Some(m) = v.get_mut("proxyMetadata").and_then(Value::as_object_mut) {
                    m.values_mut().for_each(|x| *x = redacted());
                }
            }
            _ if !upper || NODE_METADATA_ALLOW.contains(&k.as_str()) => {}
            _ => *v = redacted(),
        }
    }
}

/// Keys (JSON, YAML, flags, `key=value`) whose value is a secret.
pub fn is_secret_key(key: &str) -> bool {
    let k: String = key
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect();
    const BENIGN: &[&str] = &[
        "credentialname",
        "secretname",
        "secretnamespace",
        "secretref",
        "sdssecretconfig",
        "tokenexpirationseconds",
    ];
    const SECRET: &[&str] = &[
        "password",
        "passwd",
        "passphrase",
        "secret",
        "token",
        "apikey",
        "privatekey",
        "accesskey",
        "authorization",
        "credential",
        "cookie",
    ];
    !BENIGN.contains(&k.as_str()) && SECRET.iter().any(|s| k.contains(s))
}

/// Every string of a JSON document: secret-named keys' values, the `value`
/// of a `{name: <secret-like>, value}` pair, and credential-shaped text.
pub fn scrub_json(v: &mut Value) {
    match v {
        Value::String(s) => {
            let clean = scrub_text(s, true);
            if clean != *s {
                *s = clean;
            }
        }
        Value::Array(a) => a.iter_mut().for_each(scrub_json),
        Value::Object(m) => {
            let named_secret = ["name", "key", "header"]
                .iter()
                .any(|k| m.get(*k).and_then(Value::as_str).is_some_and(is_secret_key));
            for (k, val) in m.iter_mut() {
                let secret_value = is_secret_key(k) || (named_secret && k == "value");
                if secret_value && val.is_string() {
                    *val = redacted();
                } else {
                    scrub_json(val);
                }
            }
        }
        _ => {}
    }
}

macro_rules! re {
    ($s:expr) => {
        LazyLock::new(|| Regex::new($s).expect("a valid pattern"))
    };
}

static PEM_KEY: LazyLock<Regex> =
    re!(r"(?s)-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----.*?(?:-----END [A-Z0-9 ]*PRIVATE KEY-----|\z)");
static PEM_B64: LazyLock<Regex> = re!(r"LS0tLS1CRUdJTi[A-Za-z0-9+/=]*");
static JWT: LazyLock<Regex> = re!(r"eyJ[A-Za-z0-9_-]{4,}\.eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*");
static AUTH_SCHEME: LazyLock<Regex> = re!(r"(?i)\b(bearer|basic)(\s+|%20)[A-Za-z0-9._~+/=-]{6,}");
static URL_USERINFO: LazyLock<Regex> =
    re!(r#"([A-Za-z][A-Za-z0-9+.-]*://)[^/\s:@"'<>]+:[^/\s@"'<>]+@"#);
static KNOWN_TOKENS: LazyLock<Regex> = re!(concat!(
    r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b|\bgh[pousr]_[A-Za-z0-9]{20,}|\bgithub_pat_[A-Za-z0-9_]{20,}",
    r"|\bxox[abprs]-[A-Za-z0-9-]{10,}|\bglpat-[A-Za-z0-9_-]{20,}|\bAIza[0-9A-Za-z_-]{35}",
    r"|\b[rs]k_(?:live|test)_[0-9A-Za-z]{16,}"
));
/// `password=x`, `"token": "x"`, `api_key: x` in free text. The key has no
/// `.`, so a host such as `token-service.foo:8000` is not taken for one.
static KEY_VALUE: LazyLock<Regex> = re!(concat!(
    r#"(?i)([A-Za-z0-9_-]*(?:password|passwd|passphrase|secret|token|api[_-]?key|access[_-]?key|private[_-]?key|authorization|credential|cookie)[A-Za-z0-9_-]*"?)"#,
    r#"(\s*[=:]\s*"?)([^\s&,;"'}<>]+)"#
));

/// Credential-shaped text redacted; `key_values` also redacts
/// `secret-like-key=value` pairs (off for `/stats`, whose lines are all
/// `name: value`).
pub fn scrub_text(text: &str, key_values: bool) -> String {
    let mut out = std::borrow::Cow::Borrowed(text);
    let mut apply = |re: &Regex, rep: &str| {
        if re.is_match(&out) {
            out = std::borrow::Cow::Owned(re.replace_all(&out, rep).into_owned());
        }
    };
    apply(&PEM_KEY, REDACTED);
    apply(&PEM_B64, REDACTED);
    apply(&JWT, REDACTED);
    apply(&AUTH_SCHEME, &format!("${{1}}${{2}}{REDACTED}"));
    apply(&URL_USERINFO, &format!("${{1}}{REDACTED}@"));
    apply(&KNOWN_TOKENS, REDACTED);
    if key_values && KEY_VALUE.is_match(&out) {
        // `name:8080` after a secret-like word is a host and port (a Service
        // called `token-store`), not a secret: digits after `:` stay.
        let replaced = KEY_VALUE.replace_all(&out, |c: &regex::Captures| {
            let port_like = c[2].trim() == ":" && c[3].bytes().all(|b| b.is_ascii_digit());
            if port_like {
                c[0].to_string()
            } else {
                format!("{}{}{REDACTED}", &c[1], &c[2])
            }
        });
        out = std::borrow::Cow::Owned(replaced.into_owned());
    }
    out.into_owned()
}

static QUERY: LazyLock<Regex> = re!(r#"(^|[\s"'=\[(])(/[^\s"'?]*)\?([^\s"']*)"#);
static PROXY_METADATA_JSON: LazyLock<Regex> = re!(r#"("proxyMetadata"\s*:\s*)\{[^}]*\}"#);

/// A log tail: query strings of request paths, `proxyMetadata` (as JSON or
/// as a YAML block, as pilot-agent prints its effective config), then the
/// general scrub.
pub fn redact_log(log: &str) -> String {
    let mut out = String::with_capacity(log.len());
    let mut yaml_block: Option<usize> = None;
    for line in log.split_inclusive('\n') {
        let body = line.trim_end_matches(['\n', '\r']);
        let indent = body.len() - body.trim_start().len();
        if let Some(block) = yaml_block {
            if indent > block && !body.trim().is_empty() {
                match body.split_once(':') {
                    Some((k, _)) => out.push_str(&format!("{k}: {REDACTED}")),
                    None => out.push_str(REDACTED),
                }
                out.push_str(&line[body.len()..]);
                continue;
            }
            yaml_block = None;
        }
        if body.trim_end().ends_with("proxyMetadata:") {
            yaml_block = Some(indent);
        }
        let l = QUERY.replace_all(line, |c: &regex::Captures| {
            if c[3].starts_with("<redacted") {
                c[0].to_string()
            } else {
                format!("{}{}?{REDACTED}", &c[1], &c[2])
            }
        });
        let l = PROXY_METADATA_JSON.replace_all(&l, format!("${{1}}\"{REDACTED}\""));
        out.push_str(&scrub_text(&l, true));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn credential_shapes() {
        let cases = [
            "-----BEGIN RSA PRIVATE KEY-----\nMIIEabc\n-----END RSA PRIVATE KEY-----",
            "LS0tLS1CRUdJTiBQUklWQVRFIEtFWS0tLS0tCk1JSUV",
            "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.sig_part-1",
            "Authorization: Bearer abcdef123456",
            "https://admin:hunter2@db.example.com/x",
            "AKIAABCDEFGHIJKLMNOP",
            "ghp_abcdefghijklmnopqrstuvwxyz0123",
            "password=hunter2",
            "{\"api_key\": \"hunter2\"}",
        ];
        for c in cases {
            let s = scrub_text(c, true);
            for secret in [
                "MIIEabc",
                "sig_part",
                "abcdef123456",
                "hunter2",
                "IJKLMNOP",
                "uvwxyz0123",
                "LS0tLS1CRUdJTiBQ",
            ] {
                assert!(!s.contains(secret), "{c:?} → {s:?}");
            }
        }
        // Ordinary Istio text survives.
        for keep in [
            "outbound|8000||httpbin.foo.svc.cluster.local",
            "spiffe://cluster.local/ns/foo/sa/sleep",
            "[2024-05-01T10:00:00.123Z] \"GET /ip HTTP/1.1\" 503 UC upstream_reset_before_response_started{connection_termination}",
            "\"authority\":\"httpbin.foo:8000\"",
            "\"authority\":\"token-store:8080\"",
            "outbound|8080||token-store.foo.svc.cluster.local",
        ] {
            assert_eq!(scrub_text(keep, true), keep);
        }
    }

    #[test]
    fn secret_keys() {
        for k in [
            "password",
            "DB_PASSWORD",
            "apiKey",
            "api-key",
            "client_secret",
            "Authorization",
            "access_token",
            "privateKey",
        ] {
            assert!(is_secret_key(k), "{k}");
        }
        for k in [
            "credentialName",
            "secretName",
            "name",
            "authority",
            "key",
            "tokenExpirationSeconds",
            "serviceAccountName",
        ] {
            assert!(!is_secret_key(k), "{k}");
        }
    }

    #[test]
    fn log_queries_and_proxy_metadata() {
        let log = concat!(
            "[2024-05-01T10:00:01.000Z] \"GET /reset?token=s3cr3t&x=1 HTTP/1.1\" 200 - via_upstream - \"-\" 0 30 2 1 \"-\" \"curl\" \"id\" \"httpbin.foo:8000\"\n",
            "{\"path\":\"/x?sig=abcd1234\",\"response_code\":200}\n",
            "2024-05-01T10:00:00.000Z info Effective config: binaryPath: /usr/local/bin/envoy\n",
            "proxyMetadata:\n",
            "  DB_URL: postgres://u:p@h/db\n",
            "  PLAIN: visible-value\n",
            "serviceCluster: sleep\n",
            "{\"proxyMetadata\":{\"K\":\"leak\"}}\n",
        );
        let out = redact_log(log);
        for leak in ["s3cr3t", "x=1", "abcd1234", "visible-value", "u:p@", "leak"] {
            assert!(!out.contains(leak), "{leak}: {out}");
        }
        assert!(out.contains("\"GET /reset?"), "{out}");
        assert!(out.contains("serviceCluster: sleep"), "{out}");
        assert!(out.contains("  PLAIN: "), "keys stay: {out}");
        assert_eq!(out.lines().count(), log.lines().count());
    }

    #[test]
    fn annotations_by_allowlist() {
        let mut a = json!({
            "kubectl.kubernetes.io/last-applied-configuration": "{\"env\":\"x\"}",
            "sidecar.istio.io/statsInclusionPrefixes": "cluster.outbound",
            "example.com/owner-token": "t0k",
            "proxy.istio.io/config": "holdApplicationUntilProxyStarts: true\nproxyMetadata:\n  SECRET_THING: leak\n"
        });
        redact_annotations(&mut a);
        assert_eq!(
            a["kubectl.kubernetes.io/last-applied-configuration"],
            REDACTED
        );
        assert_eq!(
            a["sidecar.istio.io/statsInclusionPrefixes"],
            "cluster.outbound"
        );
        assert_eq!(a["example.com/owner-token"], REDACTED);
        let pc = a["proxy.istio.io/config"].as_str().unwrap();
        assert!(
            pc.contains("holdApplicationUntilProxyStarts: true") && !pc.contains("leak"),
            "{pc}"
        );
    }
}
