//! The mesh configuration (`istio` ConfigMap, key `mesh`) and Istio versions.
//!
//! Sources: istio/api `mesh/v1alpha1/config.proto` (field names and
//! defaults); istio/istio `pkg/config/mesh/mesh.go` (`DefaultMeshConfig`:
//! `enableAutoMtls` false in 1.4–1.5, true from 1.6; the 1.5 installer
//! profiles set `enableAutoMtls: true`), `pilot/pkg/model/telemetry_logging.go`
//! (access log file/encoding/format).

use std::cmp::Ordering;
use std::fmt;

use serde_json::Value;

use super::object::{Meta, ObjectError, Reader};

/// An Istio version `major.minor[.patch]`, parsed leniently from
/// `1.0.2`, `1.24.1`, `1.5`, `v1.18.2`, `1.18.2-distroless`, `1.20.8-0.el8`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IstioVersion {
    pub major: u32,
    pub minor: u32,
    pub patch: Option<u32>,
}

impl IstioVersion {
    pub const fn new(major: u32, minor: u32, patch: Option<u32>) -> IstioVersion {
        IstioVersion {
            major,
            minor,
            patch,
        }
    }

    /// `None` if the text does not start with `[v]<major>.<minor>`.
    pub fn parse(s: &str) -> Option<IstioVersion> {
        let s = s.trim();
        let s = s
            .strip_prefix('v')
            .or_else(|| s.strip_prefix('V'))
            .unwrap_or(s);
        let mut parts = s.splitn(3, '.');
        let major = parts.next()?.parse().ok()?;
        let minor_txt = parts.next()?;
        let minor = leading_number(minor_txt)?;
        // `1.4-alpha.945b…`: a pre-release suffix on the minor ends the version.
        let patch = if minor_txt.bytes().all(|c| c.is_ascii_digit()) {
            parts.next().and_then(leading_number)
        } else {
            None
        };
        Some(IstioVersion {
            major,
            minor,
            patch,
        })
    }

    /// `self >= major.minor` (patch ignored).
    pub fn at_least(&self, major: u32, minor: u32) -> bool {
        (self.major, self.minor) >= (major, minor)
    }
}

fn leading_number(s: &str) -> Option<u32> {
    let digits: String = s.chars().take_while(|c| c.is_ascii_digit()).collect();
    if digits.is_empty() {
        None
    } else {
        digits.parse().ok()
    }
}

impl PartialOrd for IstioVersion {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for IstioVersion {
    /// A missing patch sorts before `.0`.
    fn cmp(&self, other: &Self) -> Ordering {
        (self.major, self.minor, self.patch).cmp(&(other.major, other.minor, other.patch))
    }
}

impl fmt::Display for IstioVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.patch {
            Some(p) => write!(f, "{}.{}.{}", self.major, self.minor, p),
            None => write!(f, "{}.{}", self.major, self.minor),
        }
    }
}

/// `outboundTrafficPolicy.mode`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutboundMode {
    AllowAny,
    RegistryOnly,
    Other(String),
}

/// `accessLogEncoding`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccessLogEncoding {
    Text,
    Json,
}

/// `defaultConfig.proxyStatsMatcher`: extra Envoy stats to keep (on top of
/// Istio's built-in inclusion list; see `envoy::stats`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProxyStatsMatcher {
    pub inclusion_prefixes: Vec<String>,
    pub inclusion_suffixes: Vec<String>,
    pub inclusion_regexps: Vec<String>,
}

/// Why the mesh config could not be read.
#[derive(Debug, thiserror::Error)]
pub enum MeshConfigError {
    #[error(transparent)]
    Object(#[from] ObjectError),
    #[error("{object}: `data.mesh` is not valid YAML: {source}")]
    Yaml {
        object: String,
        #[source]
        source: serde_yaml::Error,
    },
    #[error("{object}: `data.mesh` must be a YAML mapping")]
    NotAMapping { object: String },
}

/// The fields of `MeshConfig` the analysis uses. `None` = not written, Istio's
/// default applies (see the accessor methods).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MeshConfig {
    pub enable_auto_mtls: Option<bool>,
    pub root_namespace: Option<String>,
    pub outbound_traffic_policy_mode: Option<String>,
    pub access_log_file: Option<String>,
    pub access_log_encoding: Option<String>,
    pub access_log_format: Option<String>,
    pub proxy_stats_matcher: Option<ProxyStatsMatcher>,
    /// The whole parsed `mesh` document (JSON form).
    pub raw: Value,
}

impl MeshConfig {
    /// Parse the `istio` ConfigMap object (`data.mesh` is YAML text; an absent
    /// key means all defaults; `data.meshNetworks` is ignored).
    pub fn from_configmap(v: &Value) -> Result<MeshConfig, MeshConfigError> {
        let meta = Meta::from_value(v)?;
        let id = meta.id();
        let r = Reader::new(&id, v);
        match r.opt_str("data.mesh")? {
            Some(text) => Self::from_yaml_named(&text, &id),
            None => Ok(MeshConfig::default()),
        }
    }

    /// Parse the YAML text of `data.mesh`.
    pub fn from_yaml(text: &str) -> Result<MeshConfig, MeshConfigError> {
        Self::from_yaml_named(text, "mesh config")
    }

    fn from_yaml_named(text: &str, object: &str) -> Result<MeshConfig, MeshConfigError> {
        let raw: Value = if text.trim().is_empty() {
            Value::Object(Default::default())
        } else {
            serde_yaml::from_str(text).map_err(|source| MeshConfigError::Yaml {
                object: object.to_string(),
                source,
            })?
        };
        let raw = match raw {
            Value::Null => Value::Object(Default::default()),
            v @ Value::Object(_) => v,
            _ => {
                return Err(MeshConfigError::NotAMapping {
                    object: object.to_string(),
                })
            }
        };
        let owned_id = format!("{object} data.mesh");
        let r = Reader::new(&owned_id, &raw);
        let proxy_stats_matcher = match r.opt_object("defaultConfig.proxyStatsMatcher")? {
            Some(_) => Some(ProxyStatsMatcher {
                inclusion_prefixes: r
                    .str_list("defaultConfig.proxyStatsMatcher.inclusionPrefixes")?,
                inclusion_suffixes: r
                    .str_list("defaultConfig.proxyStatsMatcher.inclusionSuffixes")?,
                inclusion_regexps: r
                    .str_list("defaultConfig.proxyStatsMatcher.inclusionRegexps")?,
            }),
            None => None,
        };
        Ok(MeshConfig {
            enable_auto_mtls: r.opt_bool("enableAutoMtls")?,
            root_namespace: r.opt_str("rootNamespace")?,
            outbound_traffic_policy_mode: r.opt_str("outboundTrafficPolicy.mode")?,
            access_log_file: r.opt_str("accessLogFile")?,
            access_log_encoding: r.opt_scalar_string("accessLogEncoding")?,
            access_log_format: r.opt_str("accessLogFormat")?,
            proxy_stats_matcher,
            raw: raw.clone(),
        })
    }

    /// Whether client sidecars use auto mTLS.
    ///
    /// Written value wins. Absent: `true` for Istio ≥1.5 (the 1.5 installer
    /// profiles set it; `DefaultMeshConfig` has it true from 1.6), `false`
    /// before (auto mTLS was added, off by default, in 1.4; it did not exist
    /// earlier). `None` version = assume a current Istio.
    pub fn auto_mtls(&self, version: Option<IstioVersion>) -> bool {
        if let Some(b) = self.enable_auto_mtls {
            return b;
        }
        auto_mtls_default(version)
    }

    /// `rootNamespace`, default `istio-system`.
    pub fn root_namespace(&self) -> &str {
        match &self.root_namespace {
            Some(s) if !s.is_empty() => s,
            _ => "istio-system",
        }
    }

    /// `outboundTrafficPolicy.mode`, default `ALLOW_ANY`.
    pub fn outbound_mode(&self) -> OutboundMode {
        match self.outbound_traffic_policy_mode.as_deref() {
            None | Some("ALLOW_ANY") | Some("") => OutboundMode::AllowAny,
            Some("REGISTRY_ONLY") => OutboundMode::RegistryOnly,
            Some(other) => OutboundMode::Other(other.to_string()),
        }
    }

    /// Access logging through mesh config is on when `accessLogFile` is non-empty.
    /// (A `Telemetry` resource can also turn it on; not visible here.)
    pub fn access_log_enabled(&self) -> bool {
        self.access_log_file
            .as_deref()
            .is_some_and(|f| !f.trim().is_empty())
    }

    /// `accessLogEncoding`, default TEXT (proto enum TEXT = 0, JSON = 1).
    pub fn access_log_encoding(&self) -> AccessLogEncoding {
        match self.access_log_encoding.as_deref() {
            Some("JSON") | Some("1") => AccessLogEncoding::Json,
            _ => AccessLogEncoding::Text,
        }
    }
}

/// The `enableAutoMtls` default for an Istio version (see [`MeshConfig::auto_mtls`]).
pub fn auto_mtls_default(version: Option<IstioVersion>) -> bool {
    match version {
        None => true,
        Some(v) => v.at_least(1, 5),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn versions() {
        assert_eq!(
            IstioVersion::parse("1.0.2"),
            Some(IstioVersion::new(1, 0, Some(2)))
        );
        assert_eq!(
            IstioVersion::parse("1.24.1"),
            Some(IstioVersion::new(1, 24, Some(1)))
        );
        assert_eq!(
            IstioVersion::parse("1.5"),
            Some(IstioVersion::new(1, 5, None))
        );
        assert_eq!(
            IstioVersion::parse("v1.18.2-distroless"),
            Some(IstioVersion::new(1, 18, Some(2)))
        );
        assert_eq!(
            IstioVersion::parse("1.20.8-0.el8"),
            Some(IstioVersion::new(1, 20, Some(8)))
        );
        assert_eq!(
            IstioVersion::parse("1.4-alpha.945b2e081e817e63fab6c1112c55d585073b0b7a"),
            Some(IstioVersion::new(1, 4, None))
        );
        assert_eq!(
            IstioVersion::parse("1.3.0-rc.2"),
            Some(IstioVersion::new(1, 3, Some(0)))
        );
        assert_eq!(IstioVersion::parse("latest"), None);
        assert_eq!(IstioVersion::parse("1"), None);
        assert!(IstioVersion::parse("1.10.0").unwrap() > IstioVersion::parse("1.9.9").unwrap());
        assert!(IstioVersion::parse("1.5").unwrap() < IstioVersion::parse("1.5.0").unwrap());
        assert_eq!(IstioVersion::new(1, 5, None).to_string(), "1.5");
    }

    #[test]
    fn configmap_fields() {
        let cm = json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "istio", "namespace": "istio-system"},
            "data": {
                "mesh": "accessLogFile: /dev/stdout\naccessLogEncoding: JSON\nenableAutoMtls: false\nrootNamespace: mesh-root\noutboundTrafficPolicy:\n  mode: REGISTRY_ONLY\ndefaultConfig:\n  proxyStatsMatcher:\n    inclusionPrefixes: [cluster.outbound]\n",
                "meshNetworks": "networks: {}"
            }
        });
        let m = MeshConfig::from_configmap(&cm).unwrap();
        assert!(m.access_log_enabled());
        assert_eq!(m.access_log_encoding(), AccessLogEncoding::Json);
        assert!(!m.auto_mtls(None));
        assert_eq!(m.root_namespace(), "mesh-root");
        assert_eq!(m.outbound_mode(), OutboundMode::RegistryOnly);
        assert_eq!(
            m.proxy_stats_matcher.unwrap().inclusion_prefixes,
            vec!["cluster.outbound".to_string()]
        );
    }

    #[test]
    fn defaults_by_version() {
        let m = MeshConfig::from_yaml("").unwrap();
        assert_eq!(m.root_namespace(), "istio-system");
        assert_eq!(m.outbound_mode(), OutboundMode::AllowAny);
        assert_eq!(m.access_log_encoding(), AccessLogEncoding::Text);
        assert!(!m.access_log_enabled());
        assert!(m.auto_mtls(None));
        assert!(m.auto_mtls(IstioVersion::parse("1.6.0")));
        assert!(m.auto_mtls(IstioVersion::parse("1.5")));
        assert!(!m.auto_mtls(IstioVersion::parse("1.4.3")));
        assert!(!m.auto_mtls(IstioVersion::parse("1.1.1")));
        let on = MeshConfig::from_yaml("enableAutoMtls: true").unwrap();
        assert!(on.auto_mtls(IstioVersion::parse("1.4.0")));
        let cm = json!({"kind": "ConfigMap", "metadata": {"name": "istio", "namespace": "istio-system"}, "data": {}});
        assert!(MeshConfig::from_configmap(&cm).unwrap().auto_mtls(None));
    }

    #[test]
    fn errors_name_the_configmap() {
        let cm = json!({"kind": "ConfigMap", "metadata": {"name": "istio", "namespace": "istio-system"}, "data": {"mesh": "a: [unclosed"}});
        let e = MeshConfig::from_configmap(&cm).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("ConfigMap istio-system/istio: `data.mesh` is not valid YAML"),
            "{e}"
        );
        let e = MeshConfig::from_yaml("- a\n- b").unwrap_err();
        assert!(matches!(e, MeshConfigError::NotAMapping { .. }));
        let e = MeshConfig::from_yaml("enableAutoMtls: [1]").unwrap_err();
        assert!(e.to_string().contains("enableAutoMtls"), "{e}");
    }
}
