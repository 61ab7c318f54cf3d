//! A kubeconfig pointing kubectl and kube-rs at the lab's API server.

use std::path::Path;

use serde_json::json;

/// Write a kubeconfig with cluster "mesh503-lab", context "mesh503-lab" and
/// user "lab" (with `token` as bearer token if given), current context set,
/// and the context's namespace if given.
pub fn write_kubeconfig(
    path: &Path,
    server_url: &str,
    token: Option<&str>,
    namespace: Option<&str>,
) -> std::io::Result<()> {
    let user = match token {
        Some(t) => json!({"token": t}),
        None => json!({}),
    };
    let mut context = json!({"cluster": "mesh503-lab", "user": "lab"});
    if let Some(ns) = namespace {
        context["namespace"] = json!(ns);
    }
    let config = json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "mesh503-lab", "cluster": {"server": server_url}}],
        "users": [{"name": "lab", "user": user}],
        "contexts": [{"name": "mesh503-lab", "context": context}],
        "current-context": "mesh503-lab",
        "preferences": {},
    });
    let yaml = serde_yaml::to_string(&config).map_err(std::io::Error::other)?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(path, yaml)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_a_loadable_config() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/kubeconfig");
        write_kubeconfig(&path, "http://127.0.0.1:1234", Some("s3cret"), Some("foo")).unwrap();
        let v: serde_json::Value =
            serde_yaml::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(v["current-context"], "mesh503-lab");
        assert_eq!(
            v["clusters"][0]["cluster"]["server"],
            "http://127.0.0.1:1234"
        );
        assert_eq!(v["users"][0]["name"], "lab");
        assert_eq!(v["users"][0]["user"]["token"], "s3cret");
        assert_eq!(v["contexts"][0]["context"]["namespace"], "foo");
        write_kubeconfig(&path, "http://127.0.0.1:1", None, None).unwrap();
        let v: serde_json::Value =
            serde_yaml::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert!(v["users"][0]["user"].get("token").is_none());
        assert!(v["contexts"][0]["context"].get("namespace").is_none());
    }
}
