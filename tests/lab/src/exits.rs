//! Containers that exited, as the kubelet reports them in a pod's status.
//!
//! When a sidecar's Envoy dies (SIGKILL, a crash), the lab reaps the process
//! at once (no zombie) and the pod's status says so, as the kubelet's
//! `convertToAPIContainerStatuses` (kubernetes/kubernetes
//! `pkg/kubelet/kubelet_pods.go`, v1.33.0) would after the container exited:
//! the container `ready: false`, `started: false`, `state.terminated` with
//! the exit code (128 + signal for a signal, as the container runtime
//! reports it: 137 for SIGKILL) and reason `Error` (`Completed` for exit 0);
//! the pod's `Ready` and `ContainersReady` conditions `False`, so its
//! endpoints turn unready. The phase stays `Running` (restartPolicy
//! `Always`), and kubectl's STATUS column shows the reason (`Error`).
//!
//! Difference from a cluster (tests/lab/README.md): the kubelet would
//! restart the container (with back-off, `restartCount` + 1); the lab
//! leaves it terminated, so a test can look at a dead sidecar.

use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;

/// (namespace, pod) → container name → its `state.terminated`.
pub type Exits = HashMap<(String, String), BTreeMap<String, Value>>;

/// The `state.terminated` of a container whose process ended with `status`.
pub fn terminated(status: ExitStatus, started_at: &str, finished_at: &str) -> Value {
    let (code, signal) = match (status.code(), status.signal()) {
        (Some(c), _) => (c, None),
        (None, Some(s)) => (128 + s, Some(s)),
        (None, None) => (1, None),
    };
    let mut t = json!({
        "exitCode": code,
        "reason": if code == 0 { "Completed" } else { "Error" },
        "startedAt": started_at,
        "finishedAt": finished_at,
    });
    if let Some(s) = signal {
        t["signal"] = json!(s);
    }
    t
}

/// Marks the exited containers of `pod` (its status already computed) as
/// terminated, and the pod unready if any did.
pub fn apply(pod: &mut Value, exited: &BTreeMap<String, Value>) {
    let mut any = false;
    for list in ["containerStatuses", "initContainerStatuses"] {
        let Some(statuses) = pod["status"][list].as_array_mut() else {
            continue;
        };
        for s in statuses {
            let Some(t) = s["name"].as_str().and_then(|n| exited.get(n)) else {
                continue;
            };
            let mut t = t.clone();
            t["containerID"] = s["containerID"].clone();
            s["ready"] = json!(false);
            s["started"] = json!(false);
            s["state"] = json!({ "terminated": t });
            any = true;
        }
    }
    if !any {
        return;
    }
    let since = exited
        .values()
        .filter_map(|t| t["finishedAt"].as_str())
        .max()
        .unwrap_or("")
        .to_string();
    for c in pod["status"]["conditions"]
        .as_array_mut()
        .into_iter()
        .flatten()
    {
        if c["type"] == "Ready" || c["type"] == "ContainersReady" {
            c["status"] = json!("False");
            c["reason"] = json!("ContainersNotReady");
            c["lastTransitionTime"] = json!(since);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_killed_container_is_terminated_and_its_pod_unready() {
        let sigkill = ExitStatus::from_raw(9); // wait status: killed by signal 9
        let t = terminated(sigkill, "t0", "t1");
        assert_eq!(
            t,
            json!({"exitCode": 137, "reason": "Error", "signal": 9, "startedAt": "t0", "finishedAt": "t1"})
        );
        assert_eq!(
            terminated(ExitStatus::from_raw(0), "t0", "t1")["reason"],
            "Completed"
        );
        let mut pod = json!({"status": {
            "conditions": [{"type": "Ready", "status": "True"}, {"type": "PodScheduled", "status": "True"}],
            "containerStatuses": [
                {"name": "app", "ready": true, "started": true, "state": {"running": {}}},
                {"name": "istio-proxy", "ready": true, "started": true, "containerID": "lab://x", "state": {"running": {}}}]}});
        let exited = BTreeMap::from([("istio-proxy".to_string(), t)]);
        apply(&mut pod, &exited);
        let s = &pod["status"];
        assert_eq!(s["containerStatuses"][0]["ready"], true);
        assert_eq!(s["containerStatuses"][1]["ready"], false);
        assert_eq!(
            s["containerStatuses"][1]["state"]["terminated"]["exitCode"],
            137
        );
        assert_eq!(
            s["containerStatuses"][1]["state"]["terminated"]["containerID"],
            "lab://x"
        );
        assert_eq!(s["conditions"][0]["status"], "False");
        assert_eq!(s["conditions"][1]["status"], "True");
    }
}
