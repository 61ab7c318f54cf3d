//! The application containers: a small httpbin-like HTTP/1.1 server per
//! container port, run in-process (one tokio listener each).
//!
//! Behaviour is set by pod annotations under `lab.mesh503.io/` (see
//! tests/lab/README.md): `listen` (`127.0.0.1` binds the pod's localhost
//! instead of its IP), `status` (answer every request with this code),
//! `delay` (e.g. `250ms`, before answering) and `keepalive-timeout` (close an
//! idle keep-alive connection after this long — the race behind intermittent
//! `503 UC` when it is shorter than Envoy's idle timeout).
//!
//! Paths: `/status/<code>`, `/delay/<seconds>`, `/get`, `/headers`, `/ip`,
//! anything else → 200 (or `status`). Each request is logged to the
//! container's log file.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AppBehaviour {
    pub status: Option<u16>,
    pub delay: Option<Duration>,
    pub keepalive_timeout: Option<Duration>,
}

/// One running app container: its listeners and log.
pub struct App {
    tasks: Vec<JoinHandle<()>>,
    pub log_path: PathBuf,
    pub addrs: Vec<SocketAddr>,
}

impl Drop for App {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl App {
    /// Bind every address and serve. Must be called inside a tokio runtime.
    pub async fn start(
        name: &str,
        addrs: &[SocketAddr],
        behaviour: AppBehaviour,
        log_path: PathBuf,
    ) -> anyhow::Result<App> {
        let log = Arc::new(Mutex::new(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&log_path)?,
        ));
        let mut tasks = Vec::new();
        for addr in addrs {
            let listener = TcpListener::bind(addr)
                .await
                .map_err(|e| anyhow::anyhow!("app {name}: cannot bind {addr}: {e}"))?;
            let b = behaviour.clone();
            let log = log.clone();
            let local = *addr;
            tasks.push(tokio::spawn(async move {
                loop {
                    let Ok((sock, peer)) = listener.accept().await else {
                        continue;
                    };
                    let _ = sock.set_nodelay(true);
                    let b = b.clone();
                    let log = log.clone();
                    tokio::spawn(async move {
                        let _ = serve_conn(sock, peer, local, b, log).await;
                    });
                }
            }));
        }
        if let Ok(mut f) = log.lock() {
            let _ = writeln!(f, "app {name} listening on {addrs:?}");
        }
        Ok(App {
            tasks,
            log_path,
            addrs: addrs.to_vec(),
        })
    }
}

async fn serve_conn(
    sock: TcpStream,
    peer: SocketAddr,
    local: SocketAddr,
    b: AppBehaviour,
    log: Arc<Mutex<std::fs::File>>,
) -> std::io::Result<()> {
    if b.keepalive_timeout.is_some() {
        // Closing below must reset the connection, as a server's close does
        // when a request is already on its way.
        sock.set_zero_linger()?;
    }
    let (r, mut w) = sock.into_split();
    let mut r = BufReader::new(r);
    let mut idle_since = std::time::Instant::now();
    loop {
        let mut line = String::new();
        let n = r.read_line(&mut line).await?;
        // The keep-alive race, made deterministic: a connection idle longer
        // than `keepalive_timeout` counts as closed by the app, and a request
        // arriving on it is met by the close (RST), exactly what a proxy that
        // reuses a pooled connection sees when the server's idle close and
        // its request cross (Envoy: 503 UC, connection termination).
        if let Some(t) = b.keepalive_timeout {
            if n > 0 && idle_since.elapsed() > t {
                if let Ok(mut f) = log.lock() {
                    let _ = writeln!(
                        f,
                        "{peer} closed after {:?} idle (keepalive-timeout {t:?})",
                        idle_since.elapsed()
                    );
                }
                return Ok(());
            }
        }
        if n == 0 {
            return Ok(());
        }
        let mut parts = line.split_whitespace();
        let method = parts.next().unwrap_or("").to_string();
        let path = parts.next().unwrap_or("/").to_string();
        let mut headers: Vec<(String, String)> = Vec::new();
        loop {
            let mut h = String::new();
            if r.read_line(&mut h).await? == 0 {
                return Ok(());
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
            }
        }
        let header = |k: &str| {
            headers
                .iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.as_str())
        };
        // Drain a body so the next request on the connection parses.
        if let Some(len) = header("content-length").and_then(|v| v.parse::<usize>().ok()) {
            let mut body = vec![0u8; len];
            r.read_exact(&mut body).await?;
        } else if header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
            loop {
                let mut size = String::new();
                r.read_line(&mut size).await?;
                let n = usize::from_str_radix(size.trim().split(';').next().unwrap_or("0"), 16)
                    .unwrap_or(0);
                let mut chunk = vec![0u8; n + 2];
                r.read_exact(&mut chunk).await?;
                if n == 0 {
                    break;
                }
            }
        }
        let close = header("connection").is_some_and(|v| v.eq_ignore_ascii_case("close"));

        let mut status = b.status.unwrap_or(200);
        let mut delay = b.delay;
        let p = path.split('?').next().unwrap_or("/");
        if let Some(code) = p.strip_prefix("/status/").and_then(|c| c.parse().ok()) {
            status = code;
        }
        if let Some(secs) = p
            .strip_prefix("/delay/")
            .and_then(|c| c.parse::<f64>().ok())
        {
            delay = Some(Duration::from_secs_f64(secs.min(30.0)));
        }
        if let Some(d) = delay {
            tokio::time::sleep(d).await;
        }
        let hdr_json: serde_json::Map<String, serde_json::Value> = headers
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
            .collect();
        let body = serde_json::json!({
            "method": method, "url": path, "headers": hdr_json,
            "origin": peer.ip().to_string(), "served_by": local.to_string(),
        })
        .to_string();
        let reason = match status {
            200 => "OK",
            404 => "Not Found",
            500 => "Internal Server Error",
            503 => "Service Unavailable",
            _ => "Status",
        };
        let resp = format!(
            "HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nserver: mesh503-lab-app\r\n{}\r\n{body}",
            body.len(),
            if close { "connection: close\r\n" } else { "" }
        );
        w.write_all(resp.as_bytes()).await?;
        idle_since = std::time::Instant::now();
        if let Ok(mut f) = log.lock() {
            let _ = writeln!(f, "{peer} \"{method} {path}\" {status}");
        }
        if close {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn serves_status_and_resets_requests_on_idle_connections() {
        let dir = tempfile::tempdir().unwrap();
        let addr: SocketAddr = "127.0.0.1:0".parse().unwrap();
        // Bind to an ephemeral port first to learn a free one.
        let probe = std::net::TcpListener::bind(addr).unwrap();
        let addr = probe.local_addr().unwrap();
        drop(probe);
        let _app = App::start(
            "t",
            &[addr],
            AppBehaviour {
                keepalive_timeout: Some(Duration::from_millis(100)),
                ..Default::default()
            },
            dir.path().join("app.log"),
        )
        .await
        .unwrap();
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET /status/418 HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .unwrap();
        let mut buf = vec![0u8; 1024];
        let n = s.read(&mut buf).await.unwrap();
        assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 418 "));
        // A request within the timeout is served on the same connection.
        s.write_all(b"GET /get HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .unwrap();
        let n = s.read(&mut buf).await.unwrap();
        assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200 "));
        // Idle past the keep-alive timeout: the next request meets a reset.
        tokio::time::sleep(Duration::from_millis(300)).await;
        s.write_all(b"GET /get HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .unwrap();
        match s.read(&mut buf).await {
            Ok(0) => {}
            Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset),
            Ok(n) => panic!(
                "expected a reset, got {:?}",
                String::from_utf8_lossy(&buf[..n])
            ),
        }
        let log = std::fs::read_to_string(dir.path().join("app.log")).unwrap();
        assert!(log.contains("\"GET /status/418\" 418"), "{log}");
    }
}
