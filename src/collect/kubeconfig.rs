//! Collect stage: the client configuration, loaded once: kubeconfig (`--kubeconfig`, else
//! `KUBECONFIG` with its list of files, else `~/.kube/config`, else
//! in-cluster), `--context` checked against the contexts that exist, the
//! request timeout applied to the client's own connect/write timeouts,
//! and the HTTP proxy from the environment honoured only where it applies.
//!
//! The one kubeconfig reader of the plugin: `diagnose`, `tls-check` and
//! live completion (`complete::live`, with its own deadline and silence)
//! all load through here.

use kube::config::{KubeConfigOptions, Kubeconfig};

use super::api::error_chain;
use super::error::CollectError;
use super::CollectOptions;

/// The loaded configuration and what it says.
pub struct Loaded {
    pub config: kube::Config,
    /// The context used, if known.
    pub context: Option<String>,
    /// `-n`, else the context's namespace, else `default`.
    pub namespace: String,
    /// The API server URL, for messages.
    pub url: String,
}

const HINT: &str = "pass --kubeconfig FILE or set KUBECONFIG; list contexts with \
                    `kubectl config get-contexts` and pick one with --context";

fn bad(origin: String, e: &dyn std::error::Error) -> CollectError {
    CollectError::Kubeconfig {
        origin,
        message: error_chain(e),
        hint: HINT.to_string(),
    }
}

/// Refuses a `--context` the kubeconfig does not have, listing those it has.
fn check_context(kc: &Kubeconfig, context: &str, origin: &str) -> Result<(), CollectError> {
    if kc.contexts.iter().any(|c| c.name == context) {
        return Ok(());
    }
    Err(CollectError::ContextNotFound {
        context: context.to_string(),
        origin: origin.to_string(),
        available: kc.contexts.iter().map(|c| c.name.clone()).collect(),
    })
}

/// The context names of the kubeconfig `path` (else `KUBECONFIG`'s files,
/// else `~/.kube/config`), sorted, without duplicates (no network).
pub fn contexts(path: Option<&std::path::Path>) -> Result<Vec<String>, CollectError> {
    let (kc, origin) = match path {
        Some(p) => (Kubeconfig::read_from(p), p.display().to_string()),
        None => (
            Kubeconfig::read(),
            "the default kubeconfig (KUBECONFIG or ~/.kube/config)".to_string(),
        ),
    };
    let kc = kc.map_err(|e| bad(origin, &e))?;
    let mut names: Vec<String> = kc.contexts.into_iter().map(|c| c.name).collect();
    names.sort();
    names.dedup();
    Ok(names)
}

/// Loads the client configuration (no network).
pub async fn load(opts: &CollectOptions) -> Result<Loaded, CollectError> {
    let kopts = KubeConfigOptions {
        context: opts.context.clone(),
        ..KubeConfigOptions::default()
    };
    let (mut config, context) = if let Some(path) = &opts.kubeconfig {
        let origin = path.display().to_string();
        let kc = Kubeconfig::read_from(path).map_err(|e| bad(origin.clone(), &e))?;
        if let Some(c) = &opts.context {
            check_context(&kc, c, &origin)?;
        }
        let context = opts.context.clone().or_else(|| kc.current_context.clone());
        let config = kube::Config::from_custom_kubeconfig(kc, &kopts)
            .await
            .map_err(|e| bad(origin, &e))?;
        (config, context)
    } else if let Some(c) = &opts.context {
        let origin = "the default kubeconfig (KUBECONFIG or ~/.kube/config)".to_string();
        let kc = Kubeconfig::read().map_err(|e| bad(origin.clone(), &e))?;
        check_context(&kc, c, &origin)?;
        let config = kube::Config::from_custom_kubeconfig(kc, &kopts)
            .await
            .map_err(|e| bad(origin, &e))?;
        (config, Some(c.clone()))
    } else {
        let context = Kubeconfig::read().ok().and_then(|k| k.current_context);
        let config = kube::Config::infer().await.map_err(|e| {
            bad(
                "the environment (KUBECONFIG, ~/.kube/config, in-cluster service account)".into(),
                &e,
            )
        })?;
        (config, context)
    };
    // Connecting and writing follow --request-timeout (bounded by Settings,
    // so no overflow in the client's timer arithmetic). Reads are bounded by
    // the run's own timers instead (ReadApi per request, the sidecar's
    // deadline for a port-forward or a log): the client's read timeout is an
    // idle limit on the connection, and a port-forward may be legitimately
    // silent while Envoy renders a large config dump.
    if let Some(t) = opts.request_timeout {
        config.connect_timeout = Some(t);
        config.write_timeout = Some(t);
    }
    if config.proxy_url.is_some()
        && !proxy_applies(
            &config.cluster_url,
            std::env::var("NO_PROXY")
                .ok()
                .or_else(|| std::env::var("no_proxy").ok())
                .as_deref(),
        )
    {
        config.proxy_url = None;
    }
    let namespace = opts
        .namespace
        .clone()
        .unwrap_or_else(|| config.default_namespace.clone());
    if let Err(reason) = crate::target::dns1123_label(&namespace) {
        return Err(CollectError::Kubeconfig {
            origin: context
                .as_deref()
                .map(|c| format!("context {c:?}"))
                .unwrap_or_else(|| "the kubeconfig".into()),
            message: format!("its namespace {namespace:?} is not a valid namespace: {reason}"),
            hint: "pass -n NAMESPACE, or fix the context's namespace".into(),
        });
    }
    let url = config.cluster_url.to_string();
    Ok(Loaded {
        config,
        context,
        namespace,
        url,
    })
}

/// Whether an HTTP proxy should be used for `url`: never for loopback, never
/// for hosts listed in `no_proxy` (`*`, exact host, or a domain suffix).
pub fn proxy_applies(url: &http::Uri, no_proxy: Option<&str>) -> bool {
    let host = url
        .host()
        .unwrap_or("")
        .trim_start_matches('[')
        .trim_end_matches(']');
    if host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
    {
        return false;
    }
    for entry in no_proxy.unwrap_or("").split(',').map(str::trim) {
        if entry.is_empty() {
            continue;
        }
        if entry == "*" {
            return false;
        }
        let entry = entry.split(':').next().unwrap_or(entry);
        let domain = entry.trim_start_matches('.');
        if host == domain || host.ends_with(&format!(".{domain}")) {
            return false;
        }
    }
    true
}

/// The `User-Agent` of every API request, as kubectl spells its own
/// (`kubectl-mesh503/v0.1.0 (linux/x86_64)`).
pub fn user_agent() -> String {
    format!(
        "kubectl-mesh503/v{} ({}/{})",
        env!("CARGO_PKG_VERSION"),
        std::env::consts::OS,
        std::env::consts::ARCH
    )
}

/// Builds the API client from a loaded configuration (no network).
pub fn client(loaded: &Loaded, opts: &CollectOptions) -> Result<kube::Client, CollectError> {
    let origin = match (&opts.kubeconfig, &loaded.context) {
        (Some(p), Some(c)) => format!("{} (context {c:?})", p.display()),
        (Some(p), None) => p.display().to_string(),
        (None, Some(c)) => format!("context {c:?}"),
        (None, None) => "the environment".to_string(),
    };
    let mut config = loaded.config.clone();
    // Audit logs name who read (kubectl sends `kubectl/vX (os/arch) …`).
    if let Ok(v) = http::HeaderValue::from_str(&user_agent()) {
        config.headers.push((http::header::USER_AGENT, v));
    }
    kube::Client::try_from(config).map_err(|e| {
        let hint = if matches!(e, kube::Error::ProxyProtocolDisabled { .. }) {
            "this build cannot use an HTTP(S) proxy: unset HTTPS_PROXY, or add the API server to NO_PROXY"
        } else {
            "check the cluster's certificate data and the user's credentials in the kubeconfig"
        };
        CollectError::Kubeconfig {
            origin,
            message: error_chain(&e),
            hint: hint.to_string(),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxies_not_for_loopback() {
        let u: http::Uri = "https://127.0.0.1:6443".parse().unwrap();
        assert!(!proxy_applies(&u, None));
        let u: http::Uri = "https://[::1]:6443".parse().unwrap();
        assert!(!proxy_applies(&u, None));
        let u: http::Uri = "https://api.example.com:6443".parse().unwrap();
        assert!(proxy_applies(&u, None));
        assert!(!proxy_applies(&u, Some("foo, .example.com")));
        assert!(!proxy_applies(&u, Some("api.example.com:6443")));
        assert!(!proxy_applies(&u, Some("*")));
        assert!(proxy_applies(&u, Some("example.org")));
    }

    #[tokio::test]
    async fn a_missing_context_is_named_with_the_available_ones() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("kc.yaml");
        std::fs::write(
            &p,
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: {server: \"http://127.0.0.1:9\"}\n\
             contexts:\n- name: lab\n  context: {cluster: c, user: u}\n- name: prod\n  context: {cluster: c, user: u}\n\
             current-context: lab\nusers:\n- name: u\n  user: {}\n",
        )
        .unwrap();
        let opts = CollectOptions {
            kubeconfig: Some(p.clone()),
            context: Some("nope".into()),
            ..CollectOptions::default()
        };
        let e = load(&opts).await.err().expect("refused");
        let text = e.to_string();
        assert!(matches!(e, CollectError::ContextNotFound { .. }), "{text}");
        assert!(
            text.contains("\"nope\"") && text.contains("lab, prod"),
            "{text}"
        );
        let opts = CollectOptions {
            kubeconfig: Some(p),
            context: Some("prod".into()),
            namespace: Some("foo".into()),
            ..CollectOptions::default()
        };
        let l = load(&opts).await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(l.context.as_deref(), Some("prod"));
        assert_eq!(l.namespace, "foo");
    }
}
