//! Completion (beside the diagnosis pipeline): live names — namespaces,
//! Services, Deployments and Pods listed from the cluster the words point
//! at, and context names from the kubeconfig. List calls only (GET), one
//! page each.
//!
//! A TAB must never hang the shell: everything (kubeconfig, credentials,
//! connection, every list) runs on its own thread under one deadline
//! ([`DEFAULT_TIMEOUT`], or `MESH503_COMPLETE_TIMEOUT` in seconds), and the
//! caller stops waiting at the deadline even if that thread is stuck (an
//! `exec` credential plugin blocks outside the async runtime's reach).
//!
//! Errors are never printed (kubectl shows a helper's stderr on the user's
//! terminal mid-line); like cobra's `CompDebug`, they are appended to the
//! file named by `BASH_COMP_DEBUG_FILE` when that variable is set.
//!
//! The kubeconfig is read by `collect::kubeconfig`, as for `diagnose`
//! (kubectl's rules, `--context` checked); completion only bounds the
//! client's timeouts by its deadline and leaves an HTTP proxy out.

use super::words::Conn;
use super::{Kind, Need, Source};
use crate::collect::api::error_chain as chain;
use crate::collect::{kubeconfig, CollectOptions};
use kube::core::params::ListParams;
use kube::core::Request;
use serde_json::Value;
use std::time::Duration;

/// How long a completion may wait for the cluster, in all.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);

/// At most this many names per list (one page; a longer list is cut).
const LIMIT: u32 = 500;

/// The cluster named by the connection flags among the words, else the
/// environment (KUBECONFIG, ~/.kube/config, in-cluster).
#[derive(Debug, Clone)]
pub struct Cluster {
    pub timeout: Duration,
}

impl Cluster {
    /// The deadline from `MESH503_COMPLETE_TIMEOUT` (seconds, e.g. `0.5`, at
    /// most 30), else [`DEFAULT_TIMEOUT`].
    pub fn from_env() -> Cluster {
        let timeout = std::env::var("MESH503_COMPLETE_TIMEOUT")
            .ok()
            .and_then(|s| s.trim().parse::<f64>().ok())
            .filter(|s| s.is_finite() && *s > 0.0)
            .map_or(DEFAULT_TIMEOUT, |s| Duration::from_secs_f64(s.min(30.0)));
        Cluster { timeout }
    }
}

impl Source for Cluster {
    fn fetch(&self, conn: &Conn, needs: &[Need]) -> Result<Vec<Vec<String>>, String> {
        let result = self.fetch_within_deadline(conn, needs);
        if let Err(e) = &result {
            debug(&format!("no live names for {needs:?}: {e}"));
        }
        result
    }
}

impl Cluster {
    fn fetch_within_deadline(
        &self,
        conn: &Conn,
        needs: &[Need],
    ) -> Result<Vec<Vec<String>>, String> {
        let (tx, rx) = std::sync::mpsc::channel();
        let (conn, needs, timeout) = (conn.clone(), needs.to_vec(), self.timeout);
        std::thread::Builder::new()
            .name("mesh503-complete".into())
            .spawn(move || {
                let _ = tx.send(fetch_blocking(&conn, &needs, timeout));
            })
            .map_err(|e| format!("cannot start a thread: {e}"))?;
        // The thread's own timer fires at `timeout`; this is the backstop for
        // a thread blocked where that timer cannot interrupt it.
        rx.recv_timeout(timeout + Duration::from_millis(200))
            .unwrap_or_else(|_| Err(format!("no answer within {timeout:?}")))
    }
}

fn fetch_blocking(
    conn: &Conn,
    needs: &[Need],
    timeout: Duration,
) -> Result<Vec<Vec<String>>, String> {
    if needs.iter().all(|n| *n == Need::Contexts) {
        let names = contexts(conn)?;
        return Ok(needs.iter().map(|_| names.clone()).collect());
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    rt.block_on(async {
        tokio::time::timeout(timeout, fetch_all(conn, needs, timeout))
            .await
            .map_err(|_| format!("no answer within {timeout:?}"))?
    })
}

async fn fetch_all(
    conn: &Conn,
    needs: &[Need],
    timeout: Duration,
) -> Result<Vec<Vec<String>>, String> {
    let (client, default_ns) = client(conn, timeout).await?;
    let calls = needs.iter().map(|need| {
        let client = client.clone();
        let default_ns = default_ns.as_str();
        async move {
            match need {
                Need::Contexts => contexts(conn),
                Need::Namespaces => list_names(&client, "/api/v1/namespaces").await,
                Need::Objects { kind, namespace } => {
                    let ns = namespace.as_deref().unwrap_or(default_ns);
                    list_names(&client, &objects_path(*kind, ns)?).await
                }
            }
        }
    });
    futures::future::try_join_all(calls).await
}

/// The list URL of `kind` in namespace `ns` (checked to be a DNS label, so a
/// typed `-n` can never change the path).
fn objects_path(kind: Kind, ns: &str) -> Result<String, String> {
    let valid = !ns.is_empty()
        && ns.len() <= 63
        && ns
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !valid {
        return Err(format!("{ns:?} is not a namespace name"));
    }
    Ok(match kind {
        Kind::Service => format!("/api/v1/namespaces/{ns}/services"),
        Kind::Deployment => format!("/apis/apps/v1/namespaces/{ns}/deployments"),
        Kind::Pod => format!("/api/v1/namespaces/{ns}/pods"),
    })
}

/// A client for the kubeconfig and context among the words (kubectl's
/// rules: `--kubeconfig` alone, else KUBECONFIG's files, else
/// ~/.kube/config, else in-cluster), and the context's namespace.
async fn client(conn: &Conn, timeout: Duration) -> Result<(kube::Client, String), String> {
    let opts = CollectOptions {
        kubeconfig: conn.kubeconfig.clone(),
        context: conn.context.clone(),
        request_timeout: Some(timeout),
        ..CollectOptions::default()
    };
    let mut loaded = kubeconfig::load(&opts).await.map_err(|e| e.to_string())?;
    loaded.config.read_timeout = Some(timeout);
    // This build has no HTTP proxy support (kube's `socks5`/`http-proxy`
    // features are off): rather than fail outright, try the API directly.
    loaded.config.proxy_url = None;
    let client = kubeconfig::client(&loaded, &opts).map_err(|e| e.to_string())?;
    Ok((client, loaded.namespace))
}

/// `metadata.name` of each item of one page of a list.
async fn list_names(client: &kube::Client, path: &str) -> Result<Vec<String>, String> {
    let req = Request::new(path)
        .list(&ListParams::default().limit(LIMIT))
        .map_err(|e| chain(&e))?;
    let list: Value = client
        .request(req)
        .await
        .map_err(|e| format!("GET {path}: {}", chain(&e)))?;
    let mut names: Vec<String> = list["items"]
        .as_array()
        .ok_or_else(|| format!("GET {path}: the answer is not a list"))?
        .iter()
        .filter_map(|item| item["metadata"]["name"].as_str().map(str::to_string))
        .collect();
    names.sort();
    Ok(names)
}

/// Context names of the kubeconfig the words point at (no network).
fn contexts(conn: &Conn) -> Result<Vec<String>, String> {
    kubeconfig::contexts(conn.kubeconfig.as_deref()).map_err(|e| e.to_string())
}

/// Appends `msg` to `$BASH_COMP_DEBUG_FILE` (cobra's completion debug file)
/// when set; otherwise says nothing.
pub fn debug(msg: &str) {
    use std::io::Write;
    if let Some(path) = std::env::var_os("BASH_COMP_DEBUG_FILE") {
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
        {
            let _ = writeln!(f, "[kubectl_complete-mesh503] {msg}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_namespace_cannot_change_the_path() {
        assert_eq!(
            objects_path(Kind::Deployment, "foo").unwrap(),
            "/apis/apps/v1/namespaces/foo/deployments"
        );
        for bad in ["", "a/b", "../x", "A", "x?watch=1"] {
            assert!(objects_path(Kind::Pod, bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn contexts_come_from_the_kubeconfig_without_network() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        std::fs::write(
            &path,
            "apiVersion: v1\nkind: Config\nclusters: []\nusers: []\n\
             contexts:\n- name: prod\n  context: {cluster: x, user: y}\n\
             - name: lab\n  context: {cluster: x, user: y}\n",
        )
        .unwrap();
        let conn = Conn {
            kubeconfig: Some(path),
            ..Conn::default()
        };
        let cluster = Cluster {
            timeout: Duration::from_secs(5),
        };
        assert_eq!(
            cluster.fetch(&conn, &[Need::Contexts]).unwrap(),
            vec![vec!["lab".to_string(), "prod".to_string()]]
        );
    }

    #[test]
    fn an_unreadable_kubeconfig_is_an_error_not_a_panic() {
        let conn = Conn {
            kubeconfig: Some("/nonexistent/kubeconfig".into()),
            ..Conn::default()
        };
        let cluster = Cluster {
            timeout: Duration::from_secs(5),
        };
        assert!(cluster.fetch(&conn, &[Need::Namespaces]).is_err());
        assert!(cluster.fetch(&conn, &[Need::Contexts]).is_err());
    }

    #[test]
    fn a_server_that_never_answers_is_cut_at_the_deadline() {
        // Accepts the connection, never answers: the deadline must end it.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        std::fs::write(&path, silent_kubeconfig(port)).unwrap();
        let conn = Conn {
            kubeconfig: Some(path),
            ..Conn::default()
        };
        let cluster = Cluster {
            timeout: Duration::from_millis(300),
        };
        let started = std::time::Instant::now();
        let err = cluster.fetch(&conn, &[Need::Namespaces]).unwrap_err();
        assert!(err.contains("no answer"), "{err}");
        // Bounded, not a speed target: the deadline plus the backstop.
        assert!(started.elapsed() < Duration::from_secs(10));
        drop(listener);
    }

    fn silent_kubeconfig(port: u16) -> String {
        format!(
            "apiVersion: v1\nkind: Config\n\
             clusters:\n- name: c\n  cluster: {{server: \"http://127.0.0.1:{port}\"}}\n\
             contexts:\n- name: c\n  context: {{cluster: c, user: u, namespace: foo}}\n\
             current-context: c\nusers:\n- name: u\n  user: {{}}\n"
        )
    }
}
