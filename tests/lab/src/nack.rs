//! Config a real Envoy refused (a NACK) and config delivery the lab froze.
//!
//! A NACK is not a lab failure when an EnvoyFilter shaped the config: Istio
//! pushes what the filter says and the sidecar rejects it, keeping its last
//! good listener or cluster (or none), with `error_state` in its
//! `config_dump`. The lab then waits until Envoy has settled on what it
//! accepted and records the rejection; nothing is written by hand.
//!
//! Freezing (`lab.mesh503.io/freeze-config: "true"` on a pod) stands for a
//! proxy that stopped receiving pushes (a stuck xDS stream): from the moment
//! the annotation is on the pod, the lab stops pushing to that sidecar, so
//! its config stays whatever it had while the API moves on.

use crate::controller::LAB_PREFIX;
use crate::envoy::Sidecar;
use anyhow::{anyhow, bail};
use serde_json::Value;
use std::time::{Duration, Instant};

/// The pod annotation that freezes config delivery to its sidecar.
pub const FREEZE_ANNOTATION: &str = "freeze-config";

/// Is config delivery to this pod's sidecar frozen?
pub fn frozen(pod: &Value) -> bool {
    pod["metadata"]["annotations"][format!("{LAB_PREFIX}{FREEZE_ANNOTATION}")].as_str()
        == Some("true")
}

/// One rejected push, as the lab saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nack {
    /// `<namespace>/<pod>`.
    pub pod: String,
    /// EnvoyFilters that shaped the rejected config (`<ns>/<name>`).
    pub envoy_filters: Vec<String>,
    /// Envoy's log lines about the rejection.
    pub log: Vec<String>,
    /// Listeners and clusters shown with an `error_state` in `config_dump`.
    pub rejected: Vec<String>,
}

impl std::fmt::Display for Nack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let what = if self.rejected.is_empty() {
            // Envoy named nothing in config_dump (a rejected resource it
            // never had, e.g. a route configuration).
            "the whole update".to_string()
        } else {
            self.rejected.join(", ")
        };
        write!(
            f,
            "sidecar of {} rejected config shaped by EnvoyFilter(s) {} ({what}): {}",
            self.pod,
            self.envoy_filters.join(", "),
            self.log.first().map(String::as_str).unwrap_or("")
        )
    }
}

/// Names of dynamic listeners and clusters with an `error_state`, and
/// whether anything is still warming.
fn dump_state(dump: &Value) -> (Vec<String>, bool) {
    let mut rejected = Vec::new();
    let mut warming = false;
    for c in dump["configs"].as_array().into_iter().flatten() {
        let t = c["@type"].as_str().unwrap_or("");
        if t.ends_with("ListenersConfigDump") {
            for l in c["dynamic_listeners"].as_array().into_iter().flatten() {
                // Envoy 1.40 lists a rejected listener twice: under its name
                // (with its active state, if any) and as a nameless entry whose
                // `failed_configuration` names it.
                if let Some(es) = l.get("error_state") {
                    let name = l["name"]
                        .as_str()
                        .or_else(|| es["failed_configuration"]["name"].as_str())
                        .unwrap_or("?");
                    let entry = format!("listener {name}");
                    if !rejected.contains(&entry) {
                        rejected.push(entry);
                    }
                }
                warming |= l.get("warming_state").is_some();
            }
        } else if t.ends_with("ClustersConfigDump") {
            warming |= c["dynamic_warming_clusters"]
                .as_array()
                .is_some_and(|a| !a.is_empty());
            for dc in c["dynamic_active_clusters"]
                .as_array()
                .into_iter()
                .flatten()
            {
                if dc.get("error_state").is_some() {
                    rejected.push(format!(
                        "cluster {}",
                        dc["cluster"]["name"].as_str().unwrap_or("?")
                    ));
                }
            }
        }
    }
    (rejected, warming)
}

/// After Envoy logged a rejection: wait until nothing warms and the set of
/// rejected resources holds still, then report them.
pub async fn settle(sidecar: &Sidecar, timeout: Duration) -> anyhow::Result<Vec<String>> {
    let deadline = Instant::now() + timeout;
    let mut last: Option<Vec<String>> = None;
    loop {
        let text = sidecar.admin_get("/config_dump").await?;
        let dump: Value =
            serde_json::from_str(&text).map_err(|e| anyhow!("config_dump is not JSON: {e}"))?;
        let (rejected, warming) = dump_state(&dump);
        if !warming && last.as_ref() == Some(&rejected) {
            return Ok(rejected);
        }
        last = if warming { None } else { Some(rejected) };
        if Instant::now() >= deadline {
            bail!(
                "sidecar (pid {}) did not settle after a rejection",
                sidecar.pid()
            );
        }
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
}
