//! What the user names on the command line: the target of a diagnosis
//! ([`Target`]) and the clients to read (`--from`, [`ClientRef`]).
//!
//! Parsing is pure and strict: anything that is not one of the accepted forms
//! is an error that lists the accepted forms, so a typo never turns into a
//! silent "not found" later on.

use std::fmt;
use std::str::FromStr;

/// What to diagnose.
///
/// Accepted forms (kind prefixes are case-insensitive):
///
/// | input | meaning |
/// |---|---|
/// | `svc/NAME`, `service/NAME`, `services/NAME` | a Service in the namespace (`-n`) |
/// | `deploy/NAME`, `deployment/NAME`, `deployments/NAME` (also `….apps/NAME`) | a Deployment in the namespace |
/// | `pod/NAME`, `po/NAME`, `pods/NAME` | a Pod in the namespace |
/// | `httpbin.foo.svc.cluster.local[:PORT]`, `httpbin.foo[:PORT]` | a host; its namespace comes from the host |
/// | `httpbin:8000` | a host without namespace: the Service `httpbin` in `-n`, port 8000 |
/// | `httpbin` | **a bare word is a Service name** in the namespace (`-n`), as if `svc/httpbin` |
///
/// A bare word is read as a Service because that is what a caller's URL
/// names (`http://httpbin/…`) and what Istio's config refers to; Deployments
/// and Pods must be spelled with their prefix.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Target {
    Service {
        name: String,
    },
    Deployment {
        name: String,
    },
    Pod {
        name: String,
    },
    /// A host as a client would call it. The host is lowercased.
    Host {
        host: String,
        port: Option<u16>,
    },
}

/// The sample of accepted target forms, for error messages.
pub const TARGET_FORMS: &str = "svc/NAME, deploy/NAME, pod/NAME, a bare service NAME, \
or a host like NAME.NAMESPACE[.svc.cluster.local][:PORT]";

/// The accepted `--from` forms, for error messages.
pub const CLIENT_FORMS: &str = "pod/NAME, deploy/NAME, NAMESPACE/pod/NAME or NAMESPACE/deploy/NAME";

/// Why a target or `--from` value was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    #[error("empty {what}; expected {forms}")]
    Empty {
        what: &'static str,
        forms: &'static str,
    },
    #[error("unknown kind {kind:?} in {input:?}; expected {forms}")]
    UnknownKind {
        input: String,
        kind: String,
        forms: &'static str,
    },
    #[error("invalid name {name:?} in {input:?}: {reason}")]
    InvalidName {
        input: String,
        name: String,
        reason: String,
    },
    #[error("invalid port {port:?} in {input:?}: expected a number from 1 to 65535")]
    InvalidPort { input: String, port: String },
    #[error("cannot read {input:?}: {reason}; expected {forms}")]
    Malformed {
        input: String,
        reason: String,
        forms: &'static str,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Service,
    Deployment,
    Pod,
}

fn kind_of(prefix: &str) -> Option<Kind> {
    match prefix.to_ascii_lowercase().as_str() {
        "svc" | "service" | "services" => Some(Kind::Service),
        "deploy" | "deployment" | "deployments" | "deployment.apps" | "deployments.apps" => {
            Some(Kind::Deployment)
        }
        "po" | "pod" | "pods" => Some(Kind::Pod),
        _ => None,
    }
}

/// Why a string is not a valid Kubernetes name, in words for an error message.
///
/// Kubernetes validates names with `IsDNS1123Subdomain` (most object names:
/// lowercase alphanumerics, `-` and `.`, each dot-separated part starting and
/// ending alphanumeric, at most 253 characters) and `IsDNS1123Label`
/// (namespaces, Service names: one such part, at most 63 characters);
/// kubernetes/apimachinery `pkg/util/validation/validation.go`. Everything
/// that goes into an API path is checked with these first, so a value like
/// `foo?x=1` or `foo/secrets/x` can never change the request.
pub fn dns1123_subdomain(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("the name is empty".to_string());
    }
    if name.len() > 253 {
        return Err("longer than 253 characters".to_string());
    }
    if name.chars().any(|c| c.is_ascii_uppercase()) {
        return Err(format!(
            "Kubernetes names are lowercase; did you mean {:?}?",
            name.to_ascii_lowercase()
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-' || *c == '.'))
    {
        return Err(if c == ':' {
            "a port is only accepted on a host, e.g. httpbin.foo:8000".to_string()
        } else {
            format!("{c:?} is not allowed (only a-z, 0-9, '-' and '.')")
        });
    }
    for part in name.split('.') {
        let ok = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
        if !ok(part.chars().next()) || !ok(part.chars().last()) {
            return Err(
                "each '.'-separated part must start and end with a letter or digit".to_string(),
            );
        }
    }
    Ok(())
}

/// A DNS-1123 label: a namespace or a Service name. See [`dns1123_subdomain`].
pub fn dns1123_label(name: &str) -> Result<(), String> {
    dns1123_subdomain(name)?;
    if name.contains('.') || name.len() > 63 {
        return Err("must be a single DNS label (no '.', at most 63 characters)".to_string());
    }
    Ok(())
}

/// Checks a Kubernetes object name (DNS-1123 subdomain).
fn check_object_name(input: &str, name: &str) -> Result<(), TargetError> {
    dns1123_subdomain(name).map_err(|reason| TargetError::InvalidName {
        input: input.to_string(),
        name: name.to_string(),
        reason,
    })
}

/// Checks a DNS-1123 label (a namespace, a Service name, one host label).
fn check_label(input: &str, label: &str, what: &str) -> Result<(), TargetError> {
    check_object_name(input, label)?;
    if label.contains('.') || label.len() > 63 {
        return Err(TargetError::InvalidName {
            input: input.to_string(),
            name: label.to_string(),
            reason: format!("a {what} is a single DNS label (no '.', at most 63 characters)"),
        });
    }
    Ok(())
}

fn parse_port(input: &str, port: &str) -> Result<u16, TargetError> {
    match port.parse::<u16>() {
        Ok(p) if p > 0 && port.chars().all(|c| c.is_ascii_digit()) => Ok(p),
        _ => Err(TargetError::InvalidPort {
            input: input.to_string(),
            port: port.to_string(),
        }),
    }
}

impl FromStr for Target {
    type Err = TargetError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let input = s.trim();
        if input.is_empty() {
            return Err(TargetError::Empty {
                what: "target",
                forms: TARGET_FORMS,
            });
        }
        if let Some((prefix, name)) = input.split_once('/') {
            let kind = kind_of(prefix).ok_or_else(|| TargetError::UnknownKind {
                input: input.to_string(),
                kind: prefix.to_string(),
                forms: TARGET_FORMS,
            })?;
            if name.contains('/') {
                return Err(TargetError::Malformed {
                    input: input.to_string(),
                    reason: "more than one '/'".to_string(),
                    forms: TARGET_FORMS,
                });
            }
            check_object_name(input, name)?;
            let name = name.to_string();
            return Ok(match kind {
                Kind::Service => {
                    check_label(input, &name, "service name")?;
                    Target::Service { name }
                }
                Kind::Deployment => Target::Deployment { name },
                Kind::Pod => Target::Pod { name },
            });
        }
        // A host, with an optional port.
        let (host, port) = match input.rsplit_once(':') {
            Some((h, p)) => (h, Some(parse_port(input, p)?)),
            None => (input, None),
        };
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        if host.is_empty() {
            return Err(TargetError::Malformed {
                input: input.to_string(),
                reason: "no host before the port".to_string(),
                forms: TARGET_FORMS,
            });
        }
        for label in host.split('.') {
            check_label(input, label, "host label")?;
        }
        if !host.contains('.') && port.is_none() {
            return Ok(Target::Service { name: host });
        }
        Ok(Target::Host { host, port })
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Service { name } => write!(f, "svc/{name}"),
            Target::Deployment { name } => write!(f, "deploy/{name}"),
            Target::Pod { name } => write!(f, "pod/{name}"),
            Target::Host {
                host,
                port: Some(p),
            } => write!(f, "{host}:{p}"),
            Target::Host { host, port: None } => write!(f, "{host}"),
        }
    }
}

/// A host read as a Kubernetes service: where to find the Service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceHost {
    pub name: String,
    pub namespace: String,
    pub port: Option<u16>,
}

impl Target {
    /// For a [`Target::Host`], the Service it names: `NAME` (in
    /// `default_namespace`), `NAME.NS`, `NAME.NS.svc` or `NAME.NS.svc.DOMAIN`.
    /// `None` for hosts that are not service hosts (`www.example.com`) and for
    /// the other variants.
    pub fn service_host(&self, default_namespace: &str) -> Option<ServiceHost> {
        let Target::Host { host, port } = self else {
            return None;
        };
        let labels: Vec<&str> = host.split('.').collect();
        let (name, namespace) = match labels.as_slice() {
            [name] => (*name, default_namespace),
            [name, ns] => (*name, *ns),
            [name, ns, "svc", ..] => (*name, *ns),
            _ => return None,
        };
        Some(ServiceHost {
            name: name.to_string(),
            namespace: namespace.to_string(),
            port: *port,
        })
    }
}

/// A client named with `--from`.
///
/// The string is the object name, or `NAMESPACE/NAME` when the user wrote a
/// namespace (`bar/deploy/sleep` → `Deployment("bar/sleep")`). A `/` never
/// occurs in a Kubernetes name, so the two cannot be confused; use
/// [`ClientRef::name`] and [`ClientRef::namespace`] rather than reading the
/// string. Without a namespace, the client is looked up in the namespace of
/// the run (`-n`, else the kubeconfig context's). `NAME.NS` is deliberately
/// not accepted: pod and deployment names may contain dots.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ClientRef {
    Pod(String),
    Deployment(String),
}

impl ClientRef {
    fn raw(&self) -> &str {
        match self {
            ClientRef::Pod(s) | ClientRef::Deployment(s) => s,
        }
    }

    /// The object name.
    pub fn name(&self) -> &str {
        let raw = self.raw();
        raw.rsplit_once('/').map_or(raw, |(_, n)| n)
    }

    /// The namespace written by the user, if any.
    pub fn namespace(&self) -> Option<&str> {
        self.raw().split_once('/').map(|(ns, _)| ns)
    }

    /// The namespace to look in: the written one, else `default_namespace`.
    pub fn namespace_or<'a>(&'a self, default_namespace: &'a str) -> &'a str {
        self.namespace().unwrap_or(default_namespace)
    }
}

impl FromStr for ClientRef {
    type Err = TargetError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let input = s.trim();
        if input.is_empty() {
            return Err(TargetError::Empty {
                what: "--from value",
                forms: CLIENT_FORMS,
            });
        }
        let parts: Vec<&str> = input.split('/').collect();
        let (namespace, prefix, name) = match parts.as_slice() {
            [prefix, name] => (None, *prefix, *name),
            [ns, prefix, name] => (Some(*ns), *prefix, *name),
            _ => {
                return Err(TargetError::Malformed {
                    input: input.to_string(),
                    reason: "expected KIND/NAME with an optional NAMESPACE/ in front".to_string(),
                    forms: CLIENT_FORMS,
                })
            }
        };
        let kind = match kind_of(prefix) {
            Some(Kind::Pod) => Kind::Pod,
            Some(Kind::Deployment) => Kind::Deployment,
            _ => {
                return Err(TargetError::UnknownKind {
                    input: input.to_string(),
                    kind: prefix.to_string(),
                    forms: CLIENT_FORMS,
                })
            }
        };
        check_object_name(input, name)?;
        if let Some(ns) = namespace {
            check_label(input, ns, "namespace")?;
        }
        let raw = match namespace {
            Some(ns) => format!("{ns}/{name}"),
            None => name.to_string(),
        };
        Ok(match kind {
            Kind::Pod => ClientRef::Pod(raw),
            _ => ClientRef::Deployment(raw),
        })
    }
}

impl fmt::Display for ClientRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self {
            ClientRef::Pod(_) => "pod",
            ClientRef::Deployment(_) => "deploy",
        };
        match self.namespace() {
            Some(ns) => write!(f, "{ns}/{kind}/{}", self.name()),
            None => write!(f, "{kind}/{}", self.name()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Target {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn kind_prefixes() {
        for p in ["svc", "service", "services", "SVC", "Service"] {
            assert_eq!(
                t(&format!("{p}/httpbin")),
                Target::Service {
                    name: "httpbin".into()
                }
            );
        }
        for p in [
            "deploy",
            "deployment",
            "deployments",
            "deployment.apps",
            "deployments.apps",
        ] {
            assert_eq!(
                t(&format!("{p}/sleep")),
                Target::Deployment {
                    name: "sleep".into()
                }
            );
        }
        for p in ["pod", "po", "pods"] {
            assert_eq!(
                t(&format!("{p}/sleep-5b7d-x1")),
                Target::Pod {
                    name: "sleep-5b7d-x1".into()
                }
            );
        }
    }

    #[test]
    fn hosts() {
        assert_eq!(
            t("httpbin.foo.svc.cluster.local"),
            Target::Host {
                host: "httpbin.foo.svc.cluster.local".into(),
                port: None
            }
        );
        assert_eq!(
            t("httpbin.foo.svc.cluster.local:8000"),
            Target::Host {
                host: "httpbin.foo.svc.cluster.local".into(),
                port: Some(8000)
            }
        );
        assert_eq!(
            t("httpbin.foo"),
            Target::Host {
                host: "httpbin.foo".into(),
                port: None
            }
        );
        assert_eq!(
            t("httpbin.foo:8000"),
            Target::Host {
                host: "httpbin.foo".into(),
                port: Some(8000)
            }
        );
        assert_eq!(
            t("httpbin:8000"),
            Target::Host {
                host: "httpbin".into(),
                port: Some(8000)
            }
        );
        assert_eq!(
            t("HTTPBIN.Foo."),
            Target::Host {
                host: "httpbin.foo".into(),
                port: None
            }
        );
    }

    #[test]
    fn bare_word_is_a_service() {
        assert_eq!(
            t("httpbin"),
            Target::Service {
                name: "httpbin".into()
            }
        );
    }

    #[test]
    fn display_round_trips() {
        for s in [
            "svc/httpbin",
            "deploy/sleep",
            "pod/sleep-1",
            "httpbin.foo:8000",
            "httpbin.foo.svc.cluster.local",
        ] {
            assert_eq!(t(s).to_string(), s);
            assert_eq!(t(&t(s).to_string()), t(s));
        }
    }

    #[test]
    fn target_errors() {
        let e = "cm/x".parse::<Target>().unwrap_err();
        assert!(matches!(e, TargetError::UnknownKind { ref kind, .. } if kind == "cm"));
        let msg = e.to_string();
        assert!(
            msg.contains("svc/NAME") && msg.contains("deploy/NAME") && msg.contains("pod/NAME")
        );
        assert!(msg.contains("cm/x"));

        assert!(matches!(
            "".parse::<Target>(),
            Err(TargetError::Empty { .. })
        ));
        assert!(matches!(
            "svc/".parse::<Target>(),
            Err(TargetError::InvalidName { .. })
        ));
        assert!(matches!(
            "svc/a/b".parse::<Target>(),
            Err(TargetError::Malformed { .. })
        ));
        let e = "svc/HttpBin".parse::<Target>().unwrap_err();
        assert!(e.to_string().contains("\"httpbin\""), "{e}");
        let e = "svc/httpbin:8000".parse::<Target>().unwrap_err();
        assert!(e.to_string().contains("httpbin.foo:8000"), "{e}");
        assert!(matches!(
            "svc/a.b".parse::<Target>(),
            Err(TargetError::InvalidName { .. })
        ));
        assert!(matches!(
            "httpbin.foo:0".parse::<Target>(),
            Err(TargetError::InvalidPort { .. })
        ));
        assert!(matches!(
            "httpbin.foo:99999".parse::<Target>(),
            Err(TargetError::InvalidPort { .. })
        ));
        assert!(matches!(
            "httpbin.foo:+80".parse::<Target>(),
            Err(TargetError::InvalidPort { .. })
        ));
        assert!(matches!(
            ":80".parse::<Target>(),
            Err(TargetError::Malformed { .. })
        ));
        assert!(matches!(
            "http_bin".parse::<Target>(),
            Err(TargetError::InvalidName { .. })
        ));
        assert!(matches!(
            "a..b".parse::<Target>(),
            Err(TargetError::InvalidName { .. })
        ));
        assert!(matches!(
            "-a.b".parse::<Target>(),
            Err(TargetError::InvalidName { .. })
        ));
    }

    #[test]
    fn service_host() {
        let sh = |s: &str| t(s).service_host("dflt");
        assert_eq!(
            sh("httpbin.foo.svc.cluster.local:8000"),
            Some(ServiceHost {
                name: "httpbin".into(),
                namespace: "foo".into(),
                port: Some(8000)
            })
        );
        assert_eq!(sh("httpbin.foo.svc").unwrap().namespace, "foo");
        assert_eq!(sh("httpbin.foo").unwrap().namespace, "foo");
        assert_eq!(sh("httpbin:80").unwrap().namespace, "dflt");
        assert_eq!(sh("www.example.com"), None);
        assert_eq!(sh("svc/httpbin"), None);
    }

    #[test]
    fn client_refs() {
        let c = |s: &str| {
            s.parse::<ClientRef>()
                .unwrap_or_else(|e| panic!("{s}: {e}"))
        };
        assert_eq!(c("pod/sleep-1"), ClientRef::Pod("sleep-1".into()));
        assert_eq!(c("po/sleep-1"), ClientRef::Pod("sleep-1".into()));
        assert_eq!(c("pods/sleep-1"), ClientRef::Pod("sleep-1".into()));
        assert_eq!(c("deploy/sleep"), ClientRef::Deployment("sleep".into()));
        assert_eq!(c("deployment/sleep"), ClientRef::Deployment("sleep".into()));
        assert_eq!(
            c("deployments/sleep"),
            ClientRef::Deployment("sleep".into())
        );
        let x = c("bar/deploy/sleep");
        assert_eq!(x, ClientRef::Deployment("bar/sleep".into()));
        assert_eq!(x.name(), "sleep");
        assert_eq!(x.namespace(), Some("bar"));
        assert_eq!(x.namespace_or("foo"), "bar");
        assert_eq!(x.to_string(), "bar/deploy/sleep");
        let y = c("pod/sleep-1");
        assert_eq!(y.namespace(), None);
        assert_eq!(y.namespace_or("foo"), "foo");
        assert_eq!(y.name(), "sleep-1");
        assert_eq!(y.to_string(), "pod/sleep-1");
    }

    #[test]
    fn kubernetes_names() {
        for ok in ["foo", "a", "istio-system", "a.b", "x1-2.y3"] {
            assert_eq!(dns1123_subdomain(ok), Ok(()), "{ok}");
        }
        for bad in [
            "",
            "foo?x=1",
            "foo/secrets/topsecret?",
            "a..b",
            "a.-b",
            "-a",
            "a-",
            "Foo",
            "a b",
            "%2e%2e",
        ] {
            assert!(dns1123_subdomain(bad).is_err(), "{bad:?}");
        }
        assert!(dns1123_subdomain(&"a".repeat(254)).is_err());
        assert!(dns1123_label("a.b").is_err());
        assert!(dns1123_label(&"a".repeat(64)).is_err());
        assert_eq!(dns1123_label(&"a".repeat(63)), Ok(()));
    }

    #[test]
    fn client_ref_errors() {
        let e = "svc/httpbin".parse::<ClientRef>().unwrap_err();
        assert!(matches!(e, TargetError::UnknownKind { .. }));
        assert!(e.to_string().contains("deploy/NAME"), "{e}");
        assert!(matches!(
            "sleep".parse::<ClientRef>(),
            Err(TargetError::Malformed { .. })
        ));
        assert!(matches!(
            "a/b/pod/c".parse::<ClientRef>(),
            Err(TargetError::Malformed { .. })
        ));
        assert!(matches!(
            "Bar/pod/c".parse::<ClientRef>(),
            Err(TargetError::InvalidName { .. })
        ));
        assert!(matches!(
            "".parse::<ClientRef>(),
            Err(TargetError::Empty { .. })
        ));
    }
}
