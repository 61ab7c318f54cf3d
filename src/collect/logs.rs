//! The `istio-proxy` container log: fetching its tail (pods/log) and finding,
//! in a server sidecar's access log, who called it.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, LogParams};
use serde_json::Value;

use super::objects::SIDECAR;

/// Cap on the bytes of one log tail.
const LOG_LIMIT_BYTES: i64 = 8 * 1024 * 1024;

/// `GET …/pods/NAME/log?container=istio-proxy&tailLines=N`.
pub async fn sidecar_log_tail(
    pods: &Api<Pod>,
    pod: &str,
    tail_lines: i64,
) -> Result<String, kube::Error> {
    let lp = LogParams {
        container: Some(SIDECAR.to_string()),
        tail_lines: Some(tail_lines),
        limit_bytes: Some(LOG_LIMIT_BYTES),
        ..LogParams::default()
    };
    pods.logs(pod, &lp).await
}

/// A downstream peer seen in an access log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub ip: String,
    /// Access log lines with this downstream address.
    pub requests: u64,
    /// Of those, answered 5xx.
    pub server_errors: u64,
    /// Of those, answered 503.
    pub unavailable: u64,
}

/// One access-log line reduced to what client discovery needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessEntry {
    pub downstream_ip: IpAddr,
    pub upstream_cluster: String,
    pub response_code: Option<u16>,
}

/// Splits an Envoy text access-log line into fields; `"…"` is one field
/// (returned without quotes, flagged `true`).
fn fields(line: &str) -> Vec<(String, bool)> {
    let mut out = Vec::new();
    let mut chars = line.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
            continue;
        }
        if c == '"' {
            chars.next();
            let mut s = String::new();
            for c in chars.by_ref() {
                if c == '"' {
                    break;
                }
                s.push(c);
            }
            out.push((s, true));
        } else {
            let mut s = String::new();
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                s.push(c);
                chars.next();
            }
            out.push((s, false));
        }
    }
    out
}

fn socket_ip(s: &str) -> Option<IpAddr> {
    s.parse::<SocketAddr>()
        .map(|a| a.ip())
        .ok()
        .or_else(|| s.parse::<IpAddr>().ok())
}

/// Parses one access-log line, text or JSON, loosely.
///
/// Text: Istio's default format ends with `"%UPSTREAM_HOST%" %UPSTREAM_CLUSTER%
/// %UPSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_REMOTE_ADDRESS%
/// [%REQUESTED_SERVER_NAME% [%ROUTE_NAME%]]`, so the downstream remote address
/// is the fourth unquoted field after the last quoted one (older formats end
/// earlier; as a fallback the third-from-last field is tried). The response
/// code is the field after the first quoted one. JSON (`accessLogEncoding:
/// JSON`): `downstream_remote_address`, `upstream_cluster`, `response_code`.
pub fn parse_access_line(line: &str) -> Option<AccessEntry> {
    let line = line.trim();
    if line.starts_with('{') {
        let v: Value = serde_json::from_str(line).ok()?;
        let downstream_ip = socket_ip(v.get("downstream_remote_address")?.as_str()?)?;
        let upstream_cluster = v
            .get("upstream_cluster")
            .and_then(Value::as_str)
            .unwrap_or("-")
            .to_string();
        let response_code = match v.get("response_code") {
            Some(Value::Number(n)) => n.as_u64().and_then(|n| u16::try_from(n).ok()),
            Some(Value::String(s)) => s.parse().ok(),
            _ => None,
        };
        return Some(AccessEntry {
            downstream_ip,
            upstream_cluster,
            response_code,
        });
    }
    let f = fields(line);
    let first_quoted = f.iter().position(|(_, q)| *q)?;
    let last_quoted = f.iter().rposition(|(_, q)| *q)?;
    let response_code = f
        .get(first_quoted + 1)
        .filter(|(_, q)| !q)
        .and_then(|(s, _)| s.parse::<u16>().ok());
    let tail = &f[last_quoted + 1..];
    if tail.iter().any(|(_, q)| *q) {
        return None;
    }
    let (cluster, ip) = match (tail.first(), tail.get(3).and_then(|(s, _)| socket_ip(s))) {
        (Some((c, _)), Some(ip)) => (c.clone(), ip),
        _ => {
            // Fallback: the third-from-last field of the line.
            let n = f.len();
            if n < 3 || f[n - 3].1 || n - 3 <= last_quoted {
                return None;
            }
            let ip = socket_ip(&f[n - 3].0)?;
            (tail.first().map(|(c, _)| c.clone()).unwrap_or_default(), ip)
        }
    };
    Some(AccessEntry {
        downstream_ip: ip,
        upstream_cluster: cluster,
        response_code,
    })
}

/// Whether a log entry is traffic the sidecar received from outside the pod
/// (inbound), as opposed to calls the pod's own app made (outbound).
fn is_inbound(e: &AccessEntry) -> bool {
    let c = e.upstream_cluster.as_str();
    !(c.starts_with("outbound|") || c == "PassthroughCluster" || c == "BlackHoleCluster")
}

/// The downstream peers of a server sidecar's log: inbound lines only, the
/// pod's own addresses (`own_ips`) and loopback excluded. Sorted by number of
/// requests, most first.
pub fn callers_in_log(log: &str, own_ips: &[String]) -> Vec<Caller> {
    let own: Vec<IpAddr> = own_ips.iter().filter_map(|s| s.parse().ok()).collect();
    let mut by_ip: BTreeMap<IpAddr, Caller> = BTreeMap::new();
    for e in log.lines().filter_map(parse_access_line) {
        if !is_inbound(&e) || e.downstream_ip.is_loopback() || own.contains(&e.downstream_ip) {
            continue;
        }
        let c = by_ip.entry(e.downstream_ip).or_insert_with(|| Caller {
            ip: e.downstream_ip.to_string(),
            requests: 0,
            server_errors: 0,
            unavailable: 0,
        });
        c.requests += 1;
        if let Some(code) = e.response_code {
            if code >= 500 {
                c.server_errors += 1;
            }
            if code == 503 {
                c.unavailable += 1;
            }
        }
    }
    let mut out: Vec<Caller> = by_ip.into_values().collect();
    out.sort_by(|a, b| b.requests.cmp(&a.requests).then_with(|| a.ip.cmp(&b.ip)));
    out
}

/// Merges callers found in several logs (same IP → counts added).
pub fn merge_callers(lists: impl IntoIterator<Item = Vec<Caller>>) -> Vec<Caller> {
    let mut by_ip: BTreeMap<String, Caller> = BTreeMap::new();
    for c in lists.into_iter().flatten() {
        let e = by_ip.entry(c.ip.clone()).or_insert_with(|| Caller {
            ip: c.ip.clone(),
            requests: 0,
            server_errors: 0,
            unavailable: 0,
        });
        e.requests += c.requests;
        e.server_errors += c.server_errors;
        e.unavailable += c.unavailable;
    }
    let mut out: Vec<Caller> = by_ip.into_values().collect();
    out.sort_by(|a, b| b.requests.cmp(&a.requests).then_with(|| a.ip.cmp(&b.ip)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    // Istio ≥1.x default TEXT format, inbound line of a server sidecar (STRICT, plaintext caller).
    const NR: &str = r#"[2024-05-01T10:00:00.123Z] "- - -" 0 NR filter_chain_not_found - "-" 0 0 0 - "-" "-" "-" "-" "-" - - 10.244.0.12:80 10.244.0.9:51234 - -"#;
    // Inbound HTTP line with a route name.
    const OK: &str = r#"[2024-05-01T10:00:01.000Z] "GET /ip HTTP/1.1" 200 - via_upstream - "-" 0 30 2 1 "-" "curl/8.5.0" "5f0c" "httpbin.foo:8000" "10.244.0.12:80" inbound|80|| 127.0.0.6:45555 10.244.0.12:80 10.244.0.9:50000 outbound_.8000_._.httpbin.foo.svc.cluster.local default"#;
    // Outbound line made by the server app itself: downstream is the pod's own IP.
    const OUT: &str = r#"[2024-05-01T10:00:02.000Z] "GET /x HTTP/1.1" 503 UH no_healthy_upstream - "-" 0 19 0 - "-" "curl" "abc" "other:80" "-" outbound|80||other.foo.svc.cluster.local - 10.96.0.5:80 10.244.0.12:40000 - default"#;
    // Istio 1.0-era format (no details fields, no server name or route).
    const OLD: &str = r#"[2018-08-01T10:00:00.000Z] "GET /headers HTTP/1.1" 503 UC 0 57 1 - "-" "curl/7.60.0" "a-b-c" "httpbin.foo:8000" "127.0.0.1:80" inbound|8000||httpbin.foo.svc.cluster.local - 10.244.0.12:80 10.244.0.10:40100"#;

    #[test]
    fn text_lines() {
        let e = parse_access_line(OK).unwrap();
        assert_eq!(e.downstream_ip.to_string(), "10.244.0.9");
        assert_eq!(e.upstream_cluster, "inbound|80||");
        assert_eq!(e.response_code, Some(200));

        let e = parse_access_line(NR).unwrap();
        assert_eq!(e.downstream_ip.to_string(), "10.244.0.9");
        assert_eq!(e.upstream_cluster, "-");
        assert_eq!(e.response_code, Some(0));

        let e = parse_access_line(OLD).unwrap();
        assert_eq!(e.downstream_ip.to_string(), "10.244.0.10");
        assert_eq!(e.response_code, Some(503));

        assert_eq!(
            parse_access_line("2024-05-01T10:00:00Z info envoy config: all clusters initialized"),
            None
        );
        assert_eq!(parse_access_line(""), None);
    }

    #[test]
    fn json_lines() {
        let line = r#"{"downstream_remote_address":"10.244.0.9:51234","upstream_cluster":"inbound|80||","response_code":503,"response_flags":"UC"}"#;
        let e = parse_access_line(line).unwrap();
        assert_eq!(e.downstream_ip.to_string(), "10.244.0.9");
        assert_eq!(e.response_code, Some(503));
        let v6 = r#"{"downstream_remote_address":"[fd00::9]:51234","upstream_cluster":null,"response_code":"200"}"#;
        let e = parse_access_line(v6).unwrap();
        assert_eq!(e.downstream_ip.to_string(), "fd00::9");
        assert_eq!(e.upstream_cluster, "-");
        assert_eq!(e.response_code, Some(200));
        assert_eq!(parse_access_line(r#"{"level":"info","msg":"x"}"#), None);
    }

    #[test]
    fn callers() {
        let log = [NR, OK, OUT, OK, OLD, "garbage"].join("\n");
        let callers = callers_in_log(&log, &["10.244.0.12".to_string()]);
        assert_eq!(
            callers,
            vec![
                Caller {
                    ip: "10.244.0.9".into(),
                    requests: 3,
                    server_errors: 0,
                    unavailable: 0
                },
                Caller {
                    ip: "10.244.0.10".into(),
                    requests: 1,
                    server_errors: 1,
                    unavailable: 1
                },
            ]
        );
        let merged = merge_callers([callers.clone(), callers]);
        assert_eq!(merged[0].requests, 6);
        assert_eq!(merged[1].unavailable, 2);
    }
}
