//! `GET …/pods/{name}/log`: a container's log file from the [`PodRuntime`],
//! with `container`, `tailLines`, `limitBytes`, `timestamps`, `previous`,
//! `sinceSeconds`/`sinceTime` and `follow`.
//!
//! The lab's log files carry no per-line times, so `sinceSeconds` and
//! `sinceTime` are approximated by the file: a file last written before the
//! cut-off yields nothing, otherwise all of it (subject to `tailLines`).
//! `timestamps=true` prefixes each line with the file's modification time.

use std::collections::HashMap;
use std::convert::Infallible;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::{Body, Bytes};
use axum::http::header;
use axum::response::Response;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio::sync::mpsc;

use crate::runtime::PodRuntime;
use crate::store::{parse_rfc3339, rfc3339, unix_now, ApiError};

use super::{Ctx, Target};

fn names(pod: &Value, field: &str) -> Vec<String> {
    pod.pointer(&format!("/spec/{field}"))
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|c| c.get("name").and_then(Value::as_str))
                .map(String::from)
                .collect()
        })
        .unwrap_or_default()
}

fn rfc3339_nanos(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let base = rfc3339(d.as_secs() as i64);
    format!("{}.{:09}Z", base.trim_end_matches('Z'), d.subsec_nanos())
}

/// Pick the container (or the Status error a real API server gives).
fn pick_container(pod: &Value, name: &str, asked: Option<&str>) -> Result<String, ApiError> {
    let containers = names(pod, "containers");
    let init = names(pod, "initContainers");
    let ephemeral = names(pod, "ephemeralContainers");
    match asked.filter(|c| !c.is_empty()) {
        Some(c) => {
            if containers
                .iter()
                .chain(&init)
                .chain(&ephemeral)
                .any(|n| n == c)
            {
                Ok(c.to_string())
            } else {
                Err(ApiError::bad_request(format!(
                    "container {c} is not valid for pod {name}"
                )))
            }
        }
        None if containers.len() == 1 => Ok(containers[0].clone()),
        None => {
            let mut msg = format!(
                "a container name must be specified for pod {name}, choose one of: [{}]",
                containers.join(" ")
            );
            if !init.is_empty() {
                msg.push_str(&format!(
                    " or one of the init containers: [{}]",
                    init.join(" ")
                ));
            }
            Err(ApiError::bad_request(msg))
        }
    }
}

fn waiting_reason(pod: &Value, container: &str) -> String {
    ["containerStatuses", "initContainerStatuses"]
        .iter()
        .filter_map(|f| {
            pod.pointer(&format!("/status/{f}"))
                .and_then(Value::as_array)
        })
        .flatten()
        .find(|s| s.get("name").and_then(Value::as_str) == Some(container))
        .and_then(|s| s.pointer("/state/waiting/reason").and_then(Value::as_str))
        .unwrap_or("ContainerCreating")
        .to_string()
}

/// Lines of `text` after applying the query options (not `follow`).
fn select(text: &str, q: &HashMap<String, String>, mtime: SystemTime) -> String {
    let mut lines: Vec<&str> = text.split_inclusive('\n').collect();
    let now = unix_now();
    let file_time = mtime
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(now);
    let since = q
        .get("sinceSeconds")
        .and_then(|s| s.parse::<i64>().ok())
        .map(|s| now - s)
        .or_else(|| q.get("sinceTime").and_then(|t| parse_rfc3339(t)));
    if since.is_some_and(|cut| file_time < cut) {
        lines.clear();
    }
    if let Some(n) = q.get("tailLines").and_then(|t| t.parse::<i64>().ok()) {
        let n = n.max(0) as usize;
        if lines.len() > n {
            lines.drain(..lines.len() - n);
        }
    }
    let mut out = String::new();
    let stamp = rfc3339_nanos(mtime);
    let timestamps = super::status::query_flag(q, "timestamps");
    for l in lines {
        if timestamps {
            out.push_str(&stamp);
            out.push(' ');
        }
        out.push_str(l);
    }
    if let Some(limit) = q.get("limitBytes").and_then(|l| l.parse::<usize>().ok()) {
        if out.len() > limit {
            let mut cut = limit;
            while !out.is_char_boundary(cut) {
                cut -= 1;
            }
            out.truncate(cut);
        }
    }
    out
}

fn text(code: u16, body: Body) -> Response {
    Response::builder()
        .status(code)
        .header(header::CONTENT_TYPE, "text/plain")
        .body(body)
        .expect("valid response")
}

pub(crate) async fn logs(ctx: Arc<Ctx>, target: &Target, q: &HashMap<String, String>) -> Response {
    let name = target.name.clone().unwrap_or_default();
    let ns = target.namespace.clone().unwrap_or_else(|| "default".into());
    let Some(pod) = ctx.store.get("", "Pod", Some(&ns), &name) else {
        return target.error(&ApiError::not_found("pods", &name));
    };
    let container = match pick_container(&pod, &name, q.get("container").map(String::as_str)) {
        Ok(c) => c,
        Err(e) => return target.error(&e),
    };
    if super::status::query_flag(q, "previous") {
        return target.error(&ApiError::bad_request(format!(
            "previous terminated container \"{container}\" in pod \"{name}\" not found"
        )));
    }
    let runtime: Arc<dyn PodRuntime> = ctx.runtime.clone();
    let Some(path) = runtime.log_path(&ns, &name, &container) else {
        return target.error(&ApiError::bad_request(format!(
            "container \"{container}\" in pod \"{name}\" is waiting to start: {}",
            waiting_reason(&pod, &container)
        )));
    };
    let (content, mtime) = match read_all(&path).await {
        Ok(c) => c,
        Err(e) => {
            return target.error(&ApiError::bad_request(format!(
                "failed to read log of container \"{container}\" in pod \"{name}\": {e}"
            )))
        }
    };
    let first = select(&String::from_utf8_lossy(&content), q, mtime);
    if !super::status::query_flag(q, "follow") {
        return text(200, Body::from(first));
    }
    // follow: the selection so far, then whatever the file grows by.
    let (tx, rx) = mpsc::channel::<Bytes>(16);
    let shutdown = ctx.shutdown.clone();
    let timestamps = super::status::query_flag(q, "timestamps");
    let store = ctx.store.clone();
    tokio::spawn(async move {
        let stop = super::stopped(shutdown);
        tokio::pin!(stop);
        if !first.is_empty() && tx.send(Bytes::from(first)).await.is_err() {
            return;
        }
        let mut offset = content.len() as u64;
        loop {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                _ = tx.closed() => return,
                _ = &mut stop => return,
            }
            if store.get("", "Pod", Some(&ns), &name).is_none() {
                return;
            }
            match read_from(&path, &mut offset).await {
                Ok(chunk) if !chunk.is_empty() => {
                    let chunk = if timestamps {
                        let stamp = rfc3339_nanos(SystemTime::now());
                        String::from_utf8_lossy(&chunk)
                            .split_inclusive('\n')
                            .map(|l| format!("{stamp} {l}"))
                            .collect::<String>()
                            .into_bytes()
                    } else {
                        chunk
                    };
                    if tx.send(Bytes::from(chunk)).await.is_err() {
                        return;
                    }
                }
                Ok(_) => {}
                Err(_) => return,
            }
        }
    });
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|b| (Ok::<Bytes, Infallible>(b), rx))
    });
    text(200, Body::from_stream(stream))
}

async fn read_all(path: &PathBuf) -> std::io::Result<(Vec<u8>, SystemTime)> {
    let content = tokio::fs::read(path).await?;
    let mtime = tokio::fs::metadata(path)
        .await?
        .modified()
        .unwrap_or_else(|_| SystemTime::now());
    Ok((content, mtime))
}

/// Bytes appended since `offset` (from the start if the file shrank).
async fn read_from(path: &PathBuf, offset: &mut u64) -> std::io::Result<Vec<u8>> {
    let mut f = tokio::fs::File::open(path).await?;
    let len = f.metadata().await?.len();
    if len < *offset {
        *offset = 0;
    }
    if len == *offset {
        return Ok(Vec::new());
    }
    f.seek(std::io::SeekFrom::Start(*offset)).await?;
    let mut buf = Vec::with_capacity((len - *offset) as usize);
    f.take(len - *offset).read_to_end(&mut buf).await?;
    *offset += buf.len() as u64;
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn container_choice() {
        let pod = json!({"spec": {"containers": [{"name": "app"}, {"name": "istio-proxy"}],
                                   "initContainers": [{"name": "istio-init"}]}});
        assert_eq!(
            pick_container(&pod, "p", Some("istio-proxy")).unwrap(),
            "istio-proxy"
        );
        assert_eq!(
            pick_container(&pod, "p", Some("istio-init")).unwrap(),
            "istio-init"
        );
        let e = pick_container(&pod, "p", None).unwrap_err();
        assert_eq!(
            e.message,
            "a container name must be specified for pod p, choose one of: [app istio-proxy] or one of the init containers: [istio-init]"
        );
        assert_eq!(pick_container(&pod, "p", Some("x")).unwrap_err().code, 400);
        let single = json!({"spec": {"containers": [{"name": "app"}]}});
        assert_eq!(pick_container(&single, "p", None).unwrap(), "app");
    }

    #[test]
    fn selection_options() {
        let text = "a\nb\nc\n";
        let now = SystemTime::now();
        let q = |pairs: &[(&str, &str)]| -> HashMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        assert_eq!(select(text, &q(&[]), now), "a\nb\nc\n");
        assert_eq!(select(text, &q(&[("tailLines", "2")]), now), "b\nc\n");
        assert_eq!(select(text, &q(&[("tailLines", "0")]), now), "");
        assert_eq!(select(text, &q(&[("limitBytes", "3")]), now), "a\nb");
        let old = now - Duration::from_secs(3600);
        assert_eq!(select(text, &q(&[("sinceSeconds", "60")]), old), "");
        assert_eq!(
            select(text, &q(&[("sinceSeconds", "60")]), now),
            "a\nb\nc\n"
        );
        let stamped = select("x\n", &q(&[("timestamps", "true")]), now);
        assert!(stamped.ends_with("Z x\n"), "{stamped}");
        assert!(parse_rfc3339(stamped.split(' ').next().unwrap()).is_some());
    }
}
