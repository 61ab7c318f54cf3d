//! One running Envoy sidecar: its process, the config published for it on
//! the lab's xDS server (`ads.rs`), and when it runs that config.
//!
//! Readiness is what the xDS stream says, not a fixed wait: a sidecar is
//! ready when every resource published for it was sent and acknowledged
//! (or rejected: [`ConfigRejected`]), Envoy's `/ready` says LIVE, nothing
//! warms and every listener is bound. The admin reads are a few hundred
//! bytes whatever the config's size; the wait's ceiling grows with the
//! number of resources ([`Sidecar::ready_timeout`]).

use crate::ads::{self, Resources, SyncStatus};
use crate::envoy::{bootstrap, spawn_with_pdeathsig, SidecarSpec};
use crate::istiod::{xds, SidecarXds};
use anyhow::{anyhow, bail, Context};
use prost_reflect::DescriptorPool;
use serde_json::Value;
use std::collections::BTreeSet;
use std::io::{Read, Seek, SeekFrom};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Envoy refused (part of) the config last published: its NACK messages.
/// [`Sidecar::wait_ready`] and [`Sidecar::update`] fail with this error
/// (find it with `downcast_ref`); the rest of the config still applies.
#[derive(Debug, Clone)]
pub struct ConfigRejected {
    pub pid: u32,
    pub lines: Vec<String>,
}

impl std::fmt::Display for ConfigRejected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "envoy (pid {}) rejected config:\n{}",
            self.pid,
            self.lines.join("\n")
        )
    }
}

impl std::error::Error for ConfigRejected {}

/// One running Envoy. Dropping it stops the process (SIGTERM, then SIGKILL
/// after 2 s), reaps it and removes its config from the xDS server.
pub struct Sidecar {
    child: Mutex<Option<Child>>,
    pid: u32,
    dir: PathBuf,
    admin: SocketAddr,
    node_id: String,
    generation: u64,
    http: reqwest::Client,
    /// Names of the listeners last published (to check they are bound).
    listeners: Mutex<BTreeSet<String>>,
    /// Resources last published (the readiness wait's ceiling grows with it).
    resources: Mutex<usize>,
    /// This Envoy's API (to encode resources).
    pool: std::sync::Arc<DescriptorPool>,
}

impl std::fmt::Debug for Sidecar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sidecar")
            .field("pid", &self.pid)
            .field("dir", &self.dir)
            .field("admin", &self.admin)
            .finish()
    }
}

/// The rendered config as protobuf, per type and name. Errors name the
/// resource that does not fit Envoy's API.
pub fn encode(pool: &DescriptorPool, x: &SidecarXds) -> anyhow::Result<Resources> {
    let mut res = Resources::default();
    let groups: [(&'static str, &[Value], &str); 5] = [
        (xds::TYPE_CLUSTER, &x.clusters, "name"),
        (xds::TYPE_CLA, &x.endpoints, "cluster_name"),
        (xds::TYPE_LISTENER, &x.listeners, "name"),
        (xds::TYPE_ROUTE, &x.routes, "name"),
        (xds::TYPE_SECRET, &x.secrets, "name"),
    ];
    for (type_url, list, key) in groups {
        let by_name = res.by_type.entry(type_url).or_default();
        for r in list {
            let name = r[key].as_str().unwrap_or("").to_string();
            let (_, bytes) = crate::xds_proto::encode(pool, r).with_context(|| {
                format!(
                    "{} {name:?} cannot be sent to Envoy",
                    type_url.rsplit('.').next().unwrap_or(type_url)
                )
            })?;
            by_name.insert(name, bytes.into());
        }
    }
    // Secrets are awaited only when something asks for them over SDS.
    let needles: Vec<(String, String)> = x
        .secrets
        .iter()
        .filter_map(|s| s["name"].as_str())
        .map(|n| (n.to_string(), format!("\"name\":\"{n}\",\"sds_config\"")))
        .collect();
    for r in x.clusters.iter().chain(&x.listeners) {
        if res.awaited_secrets.len() == needles.len() {
            break;
        }
        let text = r.to_string();
        for (name, needle) in &needles {
            if text.contains(needle.as_str()) {
                res.awaited_secrets.insert(name.clone());
            }
        }
    }
    Ok(res)
}

/// Pre-SDS releases (< 1.5) read the mounted `istio.default` secret: write
/// the certificates where the config points (relative to the sidecar dir).
fn write_cert_files(dir: &Path, x: &SidecarXds) -> anyhow::Result<()> {
    for s in &x.secrets {
        let decode = |v: &Value| {
            v["inline_bytes"]
                .as_str()
                .and_then(crate::pki::base64_decode)
        };
        let files: Vec<(&str, Option<Vec<u8>>)> = match s["name"].as_str() {
            Some(xds::SDS_DEFAULT) => vec![
                (
                    xds::CERT_CHAIN_FILE,
                    decode(&s["tls_certificate"]["certificate_chain"]),
                ),
                (xds::KEY_FILE, decode(&s["tls_certificate"]["private_key"])),
            ],
            Some(xds::SDS_ROOT) => vec![(
                xds::ROOT_CERT_FILE,
                decode(&s["validation_context"]["trusted_ca"]),
            )],
            _ => vec![],
        };
        for (rel, data) in files {
            let Some(data) = data else { continue };
            let path = dir.join(rel);
            if std::fs::read(&path).ok().as_deref() == Some(data.as_slice()) {
                continue;
            }
            let parent = path
                .parent()
                .ok_or_else(|| anyhow!("no parent for {}", path.display()))?;
            std::fs::create_dir_all(parent)?;
            let tmp = parent.join(format!(
                ".tmp.{}",
                path.file_name().and_then(|n| n.to_str()).unwrap_or("x")
            ));
            std::fs::write(&tmp, &data).with_context(|| format!("writing {}", tmp.display()))?;
            std::fs::rename(&tmp, &path)
                .with_context(|| format!("renaming into {}", path.display()))?;
        }
    }
    Ok(())
}

fn file_len(p: &Path) -> u64 {
    std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)
}

/// The last `max` bytes of a file, as text.
fn tail(p: &Path, max: u64) -> String {
    let Ok(mut f) = std::fs::File::open(p) else {
        return String::new();
    };
    let len = file_len(p);
    let _ = f.seek(SeekFrom::Start(len.saturating_sub(max)));
    let mut s = String::new();
    let _ = f.read_to_string(&mut s);
    s
}

impl Sidecar {
    /// Publish the config on the lab's xDS server, write the bootstrap and
    /// spawn Envoy with stdout+stderr appended to `dir/istio-proxy.log`.
    /// Returns at once; use [`Sidecar::wait_ready`].
    pub fn start(
        envoy_bin: &Path,
        dir: &Path,
        spec: &SidecarSpec,
        xds: &SidecarXds,
    ) -> anyhow::Result<Sidecar> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let dir = dir.canonicalize()?;
        let server = ads::server()?;
        let boot = serde_json::to_string_pretty(&bootstrap(spec, server.addr()))?;
        std::fs::write(dir.join("bootstrap.json"), boot)?;
        let node_id = spec.node_id();
        let generation = server.register(&node_id);
        let log_path = dir.join("istio-proxy.log");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .with_context(|| format!("opening {}", log_path.display()))?;
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(5))
            .build()?;
        let mut sc = Sidecar {
            pid: 0,
            child: Mutex::new(None),
            admin: spec.admin_addr(),
            node_id,
            generation,
            dir: dir.clone(),
            http,
            listeners: Mutex::new(BTreeSet::new()),
            resources: Mutex::new(0),
            pool: crate::xds_proto::pool_for(envoy_bin)?,
        };
        // Dropping `sc` on an error below unregisters the node.
        sc.publish(xds)?;
        let mut cmd = Command::new(envoy_bin);
        cmd.current_dir(&dir)
            .arg("-c")
            .arg("bootstrap.json")
            .args(["--service-cluster", &spec.service_cluster])
            .args(["--service-node", &spec.node_id()])
            .args(["--concurrency", "1"])
            .args(["--log-level", "warning"])
            // Istio's default `proxyComponentLogLevel` (silences deprecated-field warnings).
            .args(["--component-log-level", "misc:error"])
            .args(["--drain-time-s", "45", "--drain-strategy", "immediate"])
            .args(["--local-address-ip-version", "v4"])
            .args(["--file-flush-interval-msec", "1000"])
            .arg("--disable-hot-restart")
            .arg("--allow-unknown-static-fields")
            .args([
                "--log-format",
                "%Y-%m-%dT%T.%fZ\t%l\tenvoy %n %g:%#\t%v\tthread=%t",
            ])
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        let child = spawn_with_pdeathsig(cmd)
            .with_context(|| format!("starting {}", envoy_bin.display()))?;
        sc.pid = child.id();
        sc.child = Mutex::new(Some(child));
        Ok(sc)
    }

    /// Publish a new config; false when it is what the sidecar already has.
    pub fn publish(&self, x: &SidecarXds) -> anyhow::Result<bool> {
        write_cert_files(&self.dir, x)?;
        let res = encode(&self.pool, x)?;
        let count: usize = res.by_type.values().map(|m| m.len()).sum();
        let names: BTreeSet<String> = res
            .by_type
            .get(xds::TYPE_LISTENER)
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default();
        let changed = ads::server()?.publish(&self.node_id, res)?;
        *self.listeners.lock().map_err(|_| anyhow!("poisoned"))? = names;
        *self.resources.lock().map_err(|_| anyhow!("poisoned"))? = count;
        Ok(changed)
    }

    /// How long a readiness wait may take: 20 s plus 4 ms per resource
    /// (≈ 60 s for two resources per service at 5,000 services).
    pub fn ready_timeout(&self) -> Duration {
        let n = self.resources.lock().map(|n| *n).unwrap_or(0) as u64;
        Duration::from_secs(20) + Duration::from_millis(4 * n)
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.join("istio-proxy.log")
    }

    /// `<pod localhost>:15000`.
    pub fn admin_addr(&self) -> SocketAddr {
        self.admin
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The sidecar's directory (bootstrap, log, pre-1.5 certificates).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// GET an admin path (e.g. `/config_dump?resource=dynamic_active_clusters`) as text.
    pub async fn admin_get(&self, path_and_query: &str) -> anyhow::Result<String> {
        let url = format!("http://{}{}", self.admin, path_and_query);
        let resp = self
            .http
            .get(&url)
            .send()
            .await
            .with_context(|| format!("GET {url}"))?;
        let status = resp.status();
        let body = resp.text().await?;
        if !status.is_success() {
            bail!("GET {url}: {status}: {body}");
        }
        Ok(body)
    }

    /// The exit status once Envoy exited (reaps it: no zombie remains).
    pub fn exited(&self) -> Option<std::process::ExitStatus> {
        let mut g = self.child.lock().ok()?;
        g.as_mut()?.try_wait().ok().flatten()
    }

    /// Wait until Envoy runs the config published last: every resource
    /// sent and acknowledged, `/ready` LIVE, nothing warming, every
    /// listener bound. Fails at once when Envoy exits or NACKs the config.
    pub async fn wait_ready(&self, timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        let server = ads::server()?;
        let mut last;
        loop {
            if let Some(status) = self.exited() {
                bail!(
                    "envoy (pid {}) exited with {status}; log {}:\n{}",
                    self.pid,
                    self.log_path().display(),
                    tail(&self.log_path(), 3000)
                );
            }
            match server.status(&self.node_id) {
                SyncStatus::Rejected(lines) => {
                    return Err(anyhow::Error::new(ConfigRejected {
                        pid: self.pid,
                        lines,
                    }))
                }
                SyncStatus::Pending(why) => last = why,
                SyncStatus::Synced => match self.check_admin().await {
                    Ok(()) => return Ok(()),
                    Err(e) => last = format!("{e:#}"),
                },
            }
            if Instant::now() >= deadline {
                bail!(
                    "envoy (pid {}) not ready after {timeout:?}: {last}; log tail:\n{}",
                    self.pid,
                    tail(&self.log_path(), 2000)
                );
            }
            // Woken by the xDS stream's progress; admin state settles by itself.
            server
                .progress(&self.node_id, Duration::from_millis(100))
                .await;
        }
    }

    /// The few admin facts the xDS stream cannot tell: Envoy finished
    /// initialising, nothing warms, every listener is bound.
    async fn check_admin(&self) -> anyhow::Result<()> {
        let ready = self.admin_get("/ready").await?;
        if ready.trim() != "LIVE" {
            bail!("/ready says {}", ready.trim());
        }
        let stats = self
            .admin_get("/stats?filter=%5E(cluster_manager%5C.warming_clusters%7Clistener_manager%5C.total_listeners_warming)%24")
            .await?;
        for line in stats.lines() {
            if let Some((name, v)) = line.split_once(':') {
                if v.trim() != "0" {
                    bail!("{name} is {}", v.trim());
                }
            }
        }
        let want = self
            .listeners
            .lock()
            .map_err(|_| anyhow!("poisoned"))?
            .clone();
        if want.is_empty() {
            return Ok(());
        }
        let bound: Value = serde_json::from_str(&self.admin_get("/listeners?format=json").await?)?;
        let names: BTreeSet<&str> = bound["listener_statuses"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|l| l["name"].as_str())
            .collect();
        if let Some(missing) = want.iter().find(|l| !names.contains(l.as_str())) {
            bail!("listener {missing} not bound yet");
        }
        Ok(())
    }

    /// Hot update: publish the new config and wait until Envoy runs it
    /// (returns at once when nothing changed).
    pub async fn update(&self, xds: &SidecarXds) -> anyhow::Result<()> {
        if !self.publish(xds)? {
            return Ok(());
        }
        self.wait_ready(self.ready_timeout()).await?;
        // The main thread has applied the update; Envoy's workers get
        // changed clusters by a posted thread-local update, which a loaded
        // machine may run a little later (seen once: a request right after
        // the ACK used the old cluster). Give them a moment.
        tokio::time::sleep(Duration::from_millis(50)).await;
        Ok(())
    }

    /// Stop Envoy now (SIGTERM, SIGKILL after 2 s) and reap it. Idempotent.
    pub fn stop(&self) {
        let Ok(mut guard) = self.child.lock() else {
            return;
        };
        let Some(mut child) = guard.take() else {
            return;
        };
        if matches!(child.try_wait(), Ok(Some(_))) {
            return;
        }
        // SAFETY: plain kill(2) on our own child's pid (not yet reaped).
        unsafe {
            libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(2);
        while Instant::now() < deadline {
            if matches!(child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for Sidecar {
    fn drop(&mut self) {
        self.stop();
        if let Ok(server) = ads::server() {
            server.unregister(&self.node_id, self.generation);
        }
    }
}
