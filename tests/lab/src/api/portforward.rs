//! `GET …/pods/{name}/portforward?ports=P[,Q…]` over WebSocket, subprotocol
//! `v4.channel.k8s.io` (what kube-rs negotiates when it offers v5 and v4;
//! port-forward has no v5 semantics on a real kubelet either).
//!
//! Frames are binary `[channel][payload]`. Port index i uses data channel 2i
//! and error channel 2i+1; the server first sends the port (u16 little
//! endian) on both. Bytes then flow between the WebSocket and a TCP
//! connection to the first of `runtime.forward_targets(ns, pod, port)` that
//! accepts. A failed connect is reported as text on the error channel. When
//! every port's upstream has closed (or failed), the server closes the
//! WebSocket with a proper close handshake.
//!
//! kubectl's own `port-forward` speaks SPDY (tunnelled over WebSocket as
//! `SPDY/3.1+portforward.k8s.io`, or a plain SPDY upgrade); that is not
//! implemented: such requests get a 400 Status saying so.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::http::{header, HeaderMap};
use axum::response::Response;
use futures::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};

use crate::store::ApiError;

use super::{Ctx, Target};

pub const PROTOCOL: &str = "v4.channel.k8s.io";

/// The message kubectl users see: its SPDY-based port-forward is not served.
pub const SPDY_UNSUPPORTED: &str = "the mesh503 lab API server does not implement kubectl port-forward (SPDY/3.1 port-forward protocol, plain or tunnelled over WebSocket); it serves port-forward only as WebSocket v4.channel.k8s.io, as kube-rs clients use it";

/// All `ports` values of the query (repeated and/or comma-separated).
pub fn parse_ports(raw_query: &str) -> Result<Vec<u16>, ApiError> {
    let mut ports = Vec::new();
    for pair in raw_query.split('&') {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        if k != "ports" {
            continue;
        }
        let v = super::status::url_decode(v);
        for p in v.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match p.parse::<u16>() {
                Ok(n) if n > 0 => ports.push(n),
                _ => {
                    return Err(ApiError::bad_request(format!(
                        "unable to parse \"{p}\" as a port: must be in the range 1 to 65535"
                    )))
                }
            }
        }
    }
    if ports.is_empty() {
        return Err(ApiError::bad_request(
            "query parameter \"port\" is required",
        ));
    }
    Ok(ports)
}

pub(crate) async fn portforward(
    ctx: Arc<Ctx>,
    target: &Target,
    raw_query: &str,
    headers: &HeaderMap,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let name = target.name.clone().unwrap_or_default();
    let ns = target.namespace.clone().unwrap_or_else(|| "default".into());
    let Some(pod) = ctx.store.get("", "Pod", Some(&ns), &name) else {
        return target.error(&ApiError::not_found("pods", &name));
    };
    let offered: Vec<String> = headers
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|p| p.trim().to_string())
        .collect();
    let spdy_upgrade = headers
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|u| u.to_ascii_lowercase().starts_with("spdy"));
    let ws = match ws {
        Ok(ws) if offered.iter().any(|p| p == PROTOCOL) => ws,
        _ if spdy_upgrade || offered.iter().any(|p| p.starts_with("SPDY")) => {
            return target.error(&ApiError::bad_request(SPDY_UNSUPPORTED))
        }
        Ok(_) => {
            return target.error(&ApiError::bad_request(format!(
            "no supported WebSocket subprotocol among {offered:?}; this server speaks {PROTOCOL}"
        )))
        }
        Err(e) => {
            return target.error(&ApiError::bad_request(format!(
                "port-forward needs a WebSocket upgrade ({PROTOCOL}): {e}"
            )))
        }
    };
    let ports = match parse_ports(raw_query) {
        Ok(p) => p,
        Err(e) => return target.error(&e),
    };
    let uid = pod
        .pointer("/metadata/uid")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let targets: Vec<Vec<SocketAddr>> = ports
        .iter()
        .map(|p| ctx.runtime.forward_targets(&ns, &name, *p))
        .collect();
    let shutdown = ctx.shutdown.clone();
    ws.protocols([PROTOCOL])
        .on_upgrade(move |socket| session(socket, ports, targets, uid, shutdown))
}

enum Out {
    Frame(Vec<u8>),
    Done,
}

fn frame(channel: u8, payload: &[u8]) -> Message {
    let mut v = Vec::with_capacity(payload.len() + 1);
    v.push(channel);
    v.extend_from_slice(payload);
    Message::Binary(v.into())
}

async fn connect(targets: &[SocketAddr]) -> Result<TcpStream, String> {
    let mut last = "no running container listens on that port".to_string();
    for addr in targets {
        match TcpStream::connect(addr).await {
            Ok(s) => {
                let _ = s.set_nodelay(true);
                return Ok(s);
            }
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                last = "connection refused".into();
            }
            Err(e) => last = e.to_string(),
        }
    }
    Err(last)
}

/// One port: connect, then pump upstream → WebSocket until upstream EOF,
/// while a writer pumps WebSocket → upstream.
async fn run_port(
    index: usize,
    port: u16,
    targets: Vec<SocketAddr>,
    uid: String,
    mut inbound: mpsc::UnboundedReceiver<Vec<u8>>,
    out: mpsc::Sender<Out>,
) {
    let data_ch = (2 * index) as u8;
    let err_ch = data_ch + 1;
    let stream = match connect(&targets).await {
        Ok(s) => s,
        Err(e) => {
            let msg =
                format!("error forwarding port {port} to pod {uid}, uid : failed to connect: {e}");
            let _ = out
                .send(Out::Frame(vec_frame(err_ch, msg.as_bytes())))
                .await;
            let _ = out.send(Out::Done).await;
            return;
        }
    };
    let (mut rd, mut wr) = stream.into_split();
    let writer = tokio::spawn(async move {
        while let Some(chunk) = inbound.recv().await {
            if wr.write_all(&chunk).await.is_err() {
                break;
            }
        }
        let _ = wr.shutdown().await;
    });
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        match rd.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if out
                    .send(Out::Frame(vec_frame(data_ch, &buf[..n])))
                    .await
                    .is_err()
                {
                    break;
                }
            }
        }
    }
    writer.abort();
    let _ = out.send(Out::Done).await;
}

fn vec_frame(channel: u8, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(payload.len() + 1);
    v.push(channel);
    v.extend_from_slice(payload);
    v
}

async fn session(
    socket: WebSocket,
    ports: Vec<u16>,
    targets: Vec<Vec<SocketAddr>>,
    uid: String,
    shutdown: watch::Receiver<bool>,
) {
    let stop = super::stopped(shutdown);
    tokio::pin!(stop);
    let (mut sink, mut stream) = socket.split();
    for (i, port) in ports.iter().enumerate() {
        let le = port.to_le_bytes();
        for ch in [2 * i as u8, 2 * i as u8 + 1] {
            if sink.send(frame(ch, &le)).await.is_err() {
                return;
            }
        }
    }
    let (out_tx, mut out_rx) = mpsc::channel::<Out>(64);
    let mut inbound = Vec::new();
    let mut tasks = Vec::new();
    for (i, (port, t)) in ports.iter().zip(targets).enumerate() {
        let (tx, rx) = mpsc::unbounded_channel();
        inbound.push(tx);
        tasks.push(tokio::spawn(run_port(
            i,
            *port,
            t,
            uid.clone(),
            rx,
            out_tx.clone(),
        )));
    }
    drop(out_tx);
    let mut done = 0;
    let mut client_closed = false;
    loop {
        tokio::select! {
            out = out_rx.recv() => match out {
                Some(Out::Frame(f)) => {
                    if sink.send(Message::Binary(f.into())).await.is_err() {
                        client_closed = true;
                        break;
                    }
                }
                Some(Out::Done) => {
                    done += 1;
                    if done == ports.len() {
                        break;
                    }
                }
                None => break,
            },
            msg = stream.next() => match msg {
                Some(Ok(Message::Binary(b))) if b.len() > 1 => {
                    let ch = b[0] as usize;
                    if ch.is_multiple_of(2) {
                        if let Some(tx) = inbound.get(ch / 2) {
                            let _ = tx.send(b[1..].to_vec());
                        }
                    }
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => {
                    client_closed = true;
                    break;
                }
                Some(Ok(_)) => {}
            },
            _ = &mut stop => break,
        }
    }
    drop(inbound);
    for t in &tasks {
        t.abort();
    }
    if client_closed {
        // Flush tungstenite's queued reply to the client's Close.
        let _ = sink.close().await;
        return;
    }
    // We close: send Close, then wait (briefly) for the client's reply so
    // the TCP connection ends cleanly.
    let _ = sink
        .send(Message::Close(Some(CloseFrame {
            code: 1000,
            reason: "".into(),
        })))
        .await;
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(Ok(m)) = stream.next().await {
            if matches!(m, Message::Close(_)) {
                break;
            }
        }
    })
    .await;
    let _ = sink.close().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_query() {
        assert_eq!(parse_ports("ports=15000").unwrap(), vec![15000]);
        assert_eq!(
            parse_ports("ports=15000%2C15001").unwrap(),
            vec![15000, 15001]
        );
        assert_eq!(parse_ports("ports=1&ports=2,3").unwrap(), vec![1, 2, 3]);
        assert_eq!(parse_ports("x=1").unwrap_err().code, 400);
        assert_eq!(parse_ports("ports=0").unwrap_err().code, 400);
        assert_eq!(parse_ports("ports=http").unwrap_err().code, 400);
    }
}
